"""The querier watching real peers change: services added and withdrawn (goodbyes), records
kept alive by refresh while the peer lives and expired by TTL when it vanishes silently.

Issue 4 §4. Each test publishes its own service type, so no test sees another's events and
python-zeroconf never gets a byte-identical repeat of a recent question.
"""

from __future__ import annotations

import queue
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from mdnsq import Querier, ServiceEvent
from tests import netlab
from tests.peers import AvahiPeer, Service, ZeroconfPeer
from tests.waiting import wait_for

BR = [netlab.BRIDGE]


def next_event(
    events: Iterator[ServiceEvent], kind: str, name: str, log: list[tuple[float, ServiceEvent]]
) -> ServiceEvent:
    """The next event of ``kind`` for ``name``; every event seen on the way goes into ``log``."""
    for event in events:
        log.append((time.monotonic(), event))
        if event.kind == kind and event.info.name == name:
            return event
    pytest.fail(f"watch ended without {kind} {name}; saw {[(e.kind, e.info.name) for _, e in log]}")


@pytest.mark.parametrize("family", ["v4", "v6"])
@pytest.mark.parametrize("peer_kind", ["zeroconf", "avahi"])
def test_watch_sees_a_service_added_then_removed(
    peer_kind: str, family: str, request: pytest.FixtureRequest
) -> None:
    peer: ZeroconfPeer | AvahiPeer = request.getfixturevalue(f"{peer_kind}_peer")
    service = Service(
        f"Wätch {family}.{peer.hostname}", f"_w{family}{peer_kind[0]}._tcp", 7000, txt={"k": "v"}
    )
    if isinstance(peer, ZeroconfPeer):
        service = Service(service.instance.replace(".", " "), service.type, 7000, txt={"k": "v"})
        add: Callable[[Service], None] = peer.register
        remove: Callable[[Service], None] = peer.unregister
    else:
        add, remove = peer.add, peer.remove
    log: list[tuple[float, ServiceEvent]] = []
    with Querier(BR, family) as q:
        events = q.watch(service.type, timeout=20.0)
        # Publish while the watch runs: the querier sees the announcement or its own query's answer.
        adder = threading.Thread(target=add, args=(service,))
        adder.start()
        try:
            added = next_event(events, "added", service.name, log)
        finally:
            adder.join()
        assert added.info.instance == service.instance
        assert added.info.port == service.port
        assert added.info.host.lower() == peer.host_name.lower()
        assert added.info.interface == socket.if_nametoindex(netlab.BRIDGE)
        remove(service)  # returns after the peer sent its goodbyes
        withdrawn = time.monotonic()
        removed = next_event(events, "removed", service.name, log)
        assert removed.info.instance == service.instance
    # The goodbye lands as remove() returns and the record goes one second later (RFC 6762
    # §10.1): 1.00 s after remove() returned in every run measured, for both peers and both
    # families. A querier that does not hear the group's goodbyes learns of the removal only
    # when the record ages out: 10 s for Avahi, whose legacy-unicast answers to a query from
    # a port other than 5353 carry TTL 10 (so the former bound of 10 s let that pass), and
    # far longer for python-zeroconf.
    assert log[-1][0] - withdrawn < 3.0, "the goodbye was not acted on; the record aged out"
    assert next(e.kind for _, e in log if e.info.name == service.name) == "added"


class SteppedClock:
    """Real time plus what the test adds: the Querier's clock, so a 120 s TTL passes in
    an instant while the packets stay real."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def watch_until_the_srv_record_expires(
    peer: ZeroconfPeer | AvahiPeer, service: Service, family: str, ttls: tuple[int, int]
) -> None:
    """Watch ``service`` on a SteppedClock: stepped to 83 % of its SRV record's TTL, the
    refresh query is answered and the record lives on; the peer then vanishes without a
    goodbye, the refreshes at 85-95 % go out unanswered, and the instance is removed once the
    SRV record expires, not sooner. ``ttls``: the SRV and PTR records' TTLs as published."""
    clock = SteppedClock()
    sockets: list[int] = []

    def wait(timeout: float | None) -> None:
        # Real readiness, but never blind to a step of the clock for more than 50 ms.
        select.select(sockets, [], [], 0.05 if timeout is None else min(timeout, 0.05))

    events: queue.Queue[tuple[float, ServiceEvent]] = queue.Queue()
    with Querier(BR, family, clock=clock, wait=wait) as q:
        sockets.append(q.fileno())

        def consume() -> None:
            for event in q.watch(service.type):
                events.put((q.now(), event))
                if event.kind == "removed":
                    return

        consumer = threading.Thread(target=consume)
        consumer.start()
        try:
            _, added = events.get(timeout=20)
            assert (added.kind, added.info.name) == ("added", service.name)
            (srv,) = q.cached_entries(service.name, "SRV")
            (ptr,) = q.cached_entries(service.type + ".local", "PTR")
            assert (srv.ttl, ptr.ttl) == ttls

            def step_to(fraction: float, entry_received: float) -> None:
                clock.offset += entry_received + fraction * srv.ttl - q.now()

            # Alive: the refresh query at 80-82 % of the TTL is answered and the record lives on.
            step_to(0.83, srv.received)
            wait_for(
                lambda: q.cached_entries(service.name, "SRV")[0].received > srv.received,
                10.0,
                "the peer's answer to the refresh query did not renew the SRV record",
            )
            (srv,) = q.cached_entries(service.name, "SRV")
            assert events.empty()

            # Vanished: the refreshes at 85, 90 and 95 % go unanswered, then the SRV expires.
            peer.vanish()
            for fraction in (0.83, 0.88, 0.93, 0.98):
                sent = q.stats()["questions_sent"]
                step_to(fraction, srv.received)
                wait_for(
                    lambda sent=sent: q.stats()["questions_sent"] > sent,
                    10.0,
                    f"no refresh query at {fraction:.0%} of the TTL",
                )
            assert events.empty()
            step_to(1.01, srv.received)
            at, removed = events.get(timeout=10)
        finally:
            q.close()
            consumer.join(10)
    assert (removed.kind, removed.info.name) == ("removed", service.name)
    assert at >= srv.expires  # by the SRV record's TTL, nothing sooner
    assert not peer.running()
    assert not consumer.is_alive()


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_record_expires_by_ttl_when_the_peer_vanishes(
    family: str, make_zeroconf_peer: Callable[..., ZeroconfPeer]
) -> None:
    """python-zeroconf, every record with one TTL. On the stepped clock: on the real one, a
    short TTL (5 s) left a 1 s refresh window for a peer that may hold a shared answer ~0.6 s
    (aggregation), and a timer to kill it that had to fire between two TTLs."""
    ttl = 120
    service = Service(
        f"short lived {family}",
        f"_ttl{family}._tcp",
        1,
        txt={"v": "1"},
        host_ttl=ttl,
        other_ttl=ttl,
    )
    peer = make_zeroconf_peer([service])
    watch_until_the_srv_record_expires(peer, service, family, (ttl, ttl))


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_avahi_record_expires_by_ttl_when_it_vanishes(
    family: str, make_avahi_peer: Callable[..., AvahiPeer]
) -> None:
    """Avahi's own TTLs, which no option shortens: SRV and addresses 120 s, PTR and TXT 4500 s.
    The instance must go when its SRV record expires, though its PTR record lives on: the
    python-zeroconf test above gives every record one TTL and cannot tell the two apart."""
    service = Service(f"Vänish {family}", f"_van{family}._tcp", 9, txt={"v": "1"})
    peer = make_avahi_peer([service])
    watch_until_the_srv_record_expires(peer, service, family, (120, 4500))


def test_zeroconf_on_loopback_v4() -> None:
    netlab.require_private_netns()
    service = Service("loop back printer", "_lo._tcp", 515, txt={"q": "1"})
    peer = ZeroconfPeer.on_loopback("zc-lo", [service])
    try:
        with Querier(["lo"], "v4") as q:
            info = q.resolve_service(service.name, timeout=5.0)
            addresses = q.resolve_host("zc-lo.local", timeout=5.0)
    finally:
        peer.close()
    assert info is not None and info.port == 515 and dict(info.txt) == {"q": b"1"}
    assert info.host == "zc-lo.local"
    assert [str(a) for a in info.addresses] == ["127.0.0.1"]
    assert [str(a) for a in addresses] == ["127.0.0.1"]


def test_watch_reports_a_txt_update(zeroconf_peer: ZeroconfPeer) -> None:
    old = Service("txt changer", "_upd._tcp", 8000, txt={"state": "idle"})
    new = Service("txt changer", "_upd._tcp", 8000, txt={"state": "printing", "job": "42"})
    zeroconf_peer.register(old)
    log: list[tuple[float, ServiceEvent]] = []
    try:
        with Querier(BR, "v4") as q:
            events = q.watch(old.type, timeout=20.0)
            added = next_event(events, "added", old.name, log)
            assert dict(added.info.txt) == old.txt_properties
            zeroconf_peer.update(old, new)  # re-announced with the cache-flush bit
            updated = next_event(events, "updated", old.name, log)
            while dict(updated.info.txt) != new.txt_properties:
                updated = next_event(events, "updated", old.name, log)
    finally:
        zeroconf_peer.unregister(new)
    assert [e.kind for _, e in log if e.kind == "removed"] == []


def test_empty_txt_from_zeroconf_completes_a_resolve(zeroconf_peer: ZeroconfPeer) -> None:
    # python-zeroconf writes a service without TXT data as a TXT record with RDLENGTH 0 (RFC 6763
    # §6.1 asks for one empty string); dnspython rejects that, a querier must not.
    service = Service("no txt at all", "_notxt._tcp", 99)
    zeroconf_peer.register(service)
    try:
        with Querier(BR, "v4") as q:
            started = time.monotonic()
            info = q.resolve_service(service.name, timeout=10.0)
            elapsed = time.monotonic() - started
    finally:
        zeroconf_peer.unregister(service)
    assert info is not None and info.port == 99 and dict(info.txt) == {}
    assert elapsed < 5.0, "the empty TXT record did not count as the TXT answer"
