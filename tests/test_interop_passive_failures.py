"""Passive observation of failures (RFC 6762 §10.5) on a real link, with a real querier asking.

The rules are tested exactly on the fake network (tests/test_dns_sd_review19.py); here a
python-zeroconf responder publishes a service, an mdnsq watch holds it, and python-zeroconf in
another lab host asks for the instance's records again and again:

- the responder is killed with SIGKILL (no goodbye): the other host's queries go unanswered, and
  the watch reports the instance removed about ten seconds after them, not when its SRV record
  expires (120 s);
- the control: the responder lives and answers every query by multicast; over a longer time
  nothing is flushed and nothing removed;
- a v4-only responder (python-zeroconf's default) and a v6-only asker: the queries that reach the
  link over IPv6 go unanswered because the responder does not speak IPv6, not because it is
  gone; a dual-stack watch keeps the live instance (it dropped it before unanswered queries
  were counted per address family).

Which real querier: python-zeroconf 0.154's ``ServiceInfo.request``, each round in a new
``Zeroconf`` (like a command run again and again). Seen on the wire (an AF_PACKET capture on
the bridge) and in mdnsq's stats, while writing this:
- it asks SRV and TXT only when its cache lacks them, so those questions never carry known
  answers (A and AAAA list theirs); a request its cache can answer sends nothing at all, so a
  python-zeroconf that heard the device before it died never asks: the asker here is one that
  did not (a new Zeroconf each round, an empty cache);
- its first query of a request is QU by default, which §10.5 ignores (the answer may go to the
  asker alone), the next ones QM, ~1.06 s apart (the one at 0.27 s is dropped by its own
  question history). ``question_type=QM`` makes every query QM, so the live responder of the
  control answers every one by multicast (python-zeroconf holds it up to ~1 s, its once a
  second rate limit) and the dead one leaves every one unanswered;
- a ServiceBrowser asks PTR with known answers, and Avahi's browser likewise from its cache
  (per interface and address family): neither asks for the SRV record of an instance it knows,
  so neither would exercise the rule for it.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mdnsq import Querier, ServiceEvent
from tests import netlab
from tests.peers import LabProcess, PeerLab, Service, ZeroconfPeer

ROOT = Path(__file__).resolve().parents[1]
BR = [netlab.BRIDGE]
ASK_FOR = 13.0  # seconds of asking in the controls: two unanswered queries would flush by 10-11 s

pytestmark = pytest.mark.netns

# One round: a new Zeroconf (empty cache), a request of ROUND ms sending QM queries at 0, ~1.3
# and ~2.4 s until answered. "asking" before each round, "asked" after it; stdin closed or the
# process killed: it stops.
ASKER = r"""
import json, select, sys, time
from zeroconf import DNSQuestionType, IPVersion, ServiceInfo, Zeroconf
interface, family, type_, name = sys.argv[1:5]
version = IPVersion.V4Only if family == "v4" else IPVersion.V6Only
where = int(interface) if interface.isdigit() else interface
def emit(**line):
    print(json.dumps(line), flush=True)
emit(event="ready")
while not select.select([sys.stdin], [], [], 0)[0]:
    emit(event="asking", at=time.monotonic())
    zc = Zeroconf(interfaces=[where], ip_version=version)
    try:
        info = ServiceInfo(type_, name)
        found = info.request(zc, 3000, question_type=DNSQuestionType.QM)
    finally:
        zc.close()
    emit(event="asked", found=found, port=info.port)
"""


@contextmanager
def asking(peer_lab: PeerLab, service: Service, family: str = "v4") -> Iterator[LabProcess]:
    """python-zeroconf in a new lab host asking for ``service`` over ``family`` until the block
    ends (then killed: a querier has no goodbyes to send)."""
    host, n = peer_lab.new_host()
    where = f"192.0.2.{n}" if family == "v4" else str(netlab.ifindex("eth0", host))
    argv = [sys.executable, "-c", ASKER, where, family, service.full_type + ".", service.name + "."]
    try:
        proc = peer_lab.popen(host, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        asker = LabProcess(proc, "zeroconf asker", first="ready")
        try:
            yield asker
        finally:
            asker.stop()
    finally:
        peer_lab.remove_host(host)


@contextmanager
def watching(q: Querier, service_type: str) -> Iterator[queue.Queue[tuple[float, ServiceEvent]]]:
    """q.watch(service_type) in a thread; its events, with their time.monotonic(), in a queue.
    The Querier is closed on the way out (that ends the watch)."""
    events: queue.Queue[tuple[float, ServiceEvent]] = queue.Queue()

    def consume() -> None:
        for event in q.watch(service_type):
            events.put((time.monotonic(), event))

    consumer = threading.Thread(target=consume)
    consumer.start()
    try:
        yield events
    finally:
        q.close()
        consumer.join(10)
    assert not consumer.is_alive()


def added(events: queue.Queue[tuple[float, ServiceEvent]], service: Service) -> float:
    """Wait for the watch to add ``service``; when it did."""
    at, event = events.get(timeout=20)
    assert (event.kind, event.info.name) == ("added", service.name)
    assert event.info.port == service.port
    return at


def ask_for_a_while(
    asker: LabProcess, seconds: float, stop: Callable[[], bool] = lambda: False
) -> tuple[float, list[bool]]:
    """Read the asker's lines until it starts a round ``seconds`` after its first (or ``stop``
    holds after a round); when the first round started, and each round's outcome."""
    first = asker.line(10)
    assert first["event"] == "asking"
    found: list[bool] = []
    while True:
        line = asker.line(10)
        if line["event"] == "asked":
            found.append(line["found"])
            if stop():
                break
        elif line["at"] - first["at"] >= seconds:
            break
    return first["at"], found


def test_a_peer_that_vanished_goes_when_another_host_asks_for_it_in_vain(
    make_zeroconf_peer: Callable[..., ZeroconfPeer], peer_lab: PeerLab
) -> None:
    """The peer is killed (no goodbye); another host asks for its SRV and TXT records (QM, no
    known answers) and nobody answers: the watch reports the instance removed ten seconds after
    the first of those queries that counts, not when the SRV record expires (120 s). Measured:
    11.28-11.40 s after the asker's first round began (5 runs): its first query, sent within a
    second of the record's last reception, proves nothing (§6) and does not count; the next
    one, ~1.3 s into the round, does."""
    service = Service("gone quiet", "_pfgone._tcp", 4711, txt={"v": "1"})
    peer = make_zeroconf_peer([service])
    with Querier(BR, "v4") as q, watching(q, service.type) as events:
        added(events, service)
        (srv,) = q.cached_entries(service.name, "SRV")
        assert srv.ttl == 120
        peer.vanish()
        with asking(peer_lab, service) as asker:
            first_ask = asker.line(10)
            assert first_ask["event"] == "asking"
            removed_at, removed = events.get(timeout=30)
            flushed = q.stats()["flushed_unanswered"]
            assert asker.line(10)["found"] is False  # nobody answered it either
        assert q.cached_entries(service.name, "SRV") == []
    assert not peer.running()
    assert (removed.kind, removed.info.name) == ("removed", service.name)
    assert flushed > 0  # SRV and TXT: 2
    took = removed_at - first_ask["at"]
    print(f"\nREMOVED {took:.2f} s after the other host began asking (SRV TTL 120 s)")
    # Not before the responder had ten seconds to answer the first query (sent after the
    # asker's first round began), and well before the SRV record's 120 s.
    assert 10.0 <= took < 20.0, took


def test_a_live_peer_asked_for_by_another_host_stays(
    make_zeroconf_peer: Callable[..., ZeroconfPeer], peer_lab: PeerLab
) -> None:
    """The control: the same asker and the same watch, the peer alive. Every query is answered
    by multicast (within ~1.1 s: python-zeroconf's rate limit holds a repeat); in ASK_FOR
    seconds (about twelve rounds, some 12 queries) nothing is flushed and nothing removed."""
    service = Service("still here", "_pflive._tcp", 4712, txt={"v": "1"})
    make_zeroconf_peer([service])
    with Querier(BR, "v4") as q, watching(q, service.type) as events:
        added(events, service)
        (srv,) = q.cached_entries(service.name, "SRV")
        queries_before = q.stats()["ignored_queries"]
        with asking(peer_lab, service) as asker:
            _, found = ask_for_a_while(asker, ASK_FOR)
        stats = q.stats()
        (renewed,) = q.cached_entries(service.name, "SRV")
        assert events.empty(), [(e.kind, e.info.name) for _, e in list(events.queue)]
    assert len(found) >= 8 and all(found), found  # answered, every round
    assert stats["ignored_queries"] - queries_before >= len(found)  # the querier read them
    assert renewed.received > srv.received  # and heard the answers
    assert stats["flushed_unanswered"] == 0


def test_a_live_v4_only_peer_stays_while_a_v6_only_host_asks_for_it(
    peer_lab: PeerLab,
) -> None:
    """A v4-only python-zeroconf responder (its default IP version), alive; a v6-only
    python-zeroconf host asks for its records; the watch runs over both families (mdnsq's
    default). The v6 queries cannot be answered by a responder that does not listen on IPv6.
    Counted against the records heard over IPv4 (same interface), they removed the live
    instance 12-13 s after the asker started (and the watch's own query added it again ~0.1 s
    later), in every run before unanswered queries were counted per address family (7985781):
    the link now counts as asked in vain when every socket of ours there saw it so.

    The same with Avahi 0.8 as the asker, at its defaults (dual stack, `avahi-browse TYPE`),
    was seen outside this file: Avahi keeps a cache per address family, so its v4 PTR queries
    list the instance as a known answer (the responder stays silent) while its v6 ones do not;
    the watch dropped the live instance 33 s into the browse, before the same change."""
    service = Service("v4 only", "_pfv4only._tcp", 4713, txt={"v": "1"})
    host, n = peer_lab.new_host()
    peer: ZeroconfPeer | None = None
    try:
        peer = ZeroconfPeer(hostname=f"zc-{host}", host=host, ipv4=f"192.0.2.{n}")  # IPv4 only
        peer.register(service)
        with Querier(BR) as q, watching(q, service.type) as events:
            added(events, service)
            with asking(peer_lab, service, "v6") as asker:
                _, found = ask_for_a_while(asker, ASK_FOR, stop=lambda: not events.empty())
            stats = q.stats()
            seen = [(e.kind, e.info.name) for _, e in list(events.queue)]
        assert peer.running()
        assert not any(found)  # nothing answers over IPv6
        assert seen == [], seen
        assert stats["flushed_unanswered"] == 0
    finally:
        if peer is not None:
            peer.close()
        peer_lab.remove_host(host)
