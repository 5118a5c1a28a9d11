"""Found by the nineteenth session's review of the cache, tasks and DNS-SD assembly.

Each test drives a Querier over tests/fakes.py's in-memory network on a fake clock (no
sockets, no sleeping) or a RecordCache alone, and failed on the code as reviewed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv6Address

import pytest

from mdnsq import Message, Querier, Record, RecordType, build_queries
from mdnsq.interfaces import Interface
from mdnsq.names import name_key
from mdnsq.records import Question
from tests.fakes import (
    IFINDEX,
    LAN,
    FakeNet,
    FakeTransport,
    a,
    aaaa,
    fake_querier,
    ptr,
    response,
    service_records,
    srv,
    txt,
)

HTTP = "_http._tcp.local"

pytestmark = pytest.mark.usefixtures("no_first_delay")

Responder = Callable[[Message, FakeNet, FakeTransport], None]


def device(records: Sequence[Record], start: float) -> Responder:
    """A responder for ``records``: answers every question about them, honouring the known
    answers (RFC 6762 §7.1); an answer to a PTR question carries the rest as additionals
    (RFC 6763 §12.1)."""

    def answer(message: Message, net: FakeNet, transport: FakeTransport) -> None:
        answers: list[Record] = []
        for question in message.questions:
            for record in records:
                if name_key(record.name) != name_key(question.name) or record.type != question.type:
                    continue
                if any(k == record and k.ttl >= record.ttl / 2 for k in message.answers):
                    continue  # a known answer: stay silent about it
                answers.append(record)
        if answers:
            extra = [r for r in records if r not in answers]
            net.later(0.05, response(*answers, additionals=extra), transport)

    return answer


Event = tuple[str, float, str]


def watch_events(net: FakeNet, q: Querier, timeout: float) -> list[Event]:
    start = net.clock()
    return [
        (e.kind, round(net.clock() - start, 2), e.info.instance) for e in q.watch(HTTP, timeout)
    ]


# -- 1. the cache-flush bit on a shared PTR record ---------------------------------------------


def test_a_ptr_record_with_the_flush_bit_does_not_remove_other_hosts_instances(
    net: FakeNet,
) -> None:
    """Two live devices, A and B, both answering everything. B (a responder that sets the
    cache-flush bit on every record, as several embedded stacks do) re-announces its PTR
    record at 130 s. A service type's PTR rrset is shared (RFC 6763 §4.1; RFC 6762 §10.2: the
    bit "MUST NOT ever be set in any shared resource record"): B's announcement says nothing
    about A. The cache flushes A's PTR record a second later; the watch reports A removed
    and learns it again only at its next PTR query (255 s here; up to an hour later in a
    long-running watch)."""
    q = fake_querier(net)
    start = net.clock()
    dev_a = service_records("A", HTTP, "a.local", 80, "192.0.2.1")
    dev_b = service_records("B", HTTP, "b.local", 80, "192.0.2.2")
    net.responders += [device(dev_a, start), device(dev_b, start)]
    flushing_ptr = ptr(HTTP, f"B.{HTTP}", flush=True)
    net.later(130, response(flushing_ptr, additionals=dev_b[1:]))
    events = watch_events(net, q, 300)
    assert [e for e in events if e[0] == "removed"] == []


# -- 3. a watch started in an instance's goodbye second ---------------------------------------


def test_a_watch_started_in_a_ptr_goodbye_second_reports_nothing_about_that_instance(
    net: FakeNet,
) -> None:
    """The device said goodbye for its PTR record 0.2 s before the watch starts (RFC 6762
    §10.1: the record is deleted a second later). Browse leaves such an instance out ("it is
    going", README); the watch reports it "added" and 0.8 s later "removed": two events, for
    an instance that had already left before the call began."""
    q = fake_querier(net)
    transport = net.transports[0]
    records = service_records("Leaving", HTTP, "leaving.local", 80, "192.0.2.5")
    transport.inject(response(records[0], additionals=records[1:]))
    q.process()
    net.clock.advance(5)
    transport.inject(response(records[0].with_ttl(0)))
    q.process()
    net.clock.advance(0.2)
    assert [info.instance for info in q.browse(HTTP, timeout=0.5)] == []
    assert watch_events(net, q, 3) == []


# -- 4. resolve_service takes the first address family that arrives ----------------------------


def test_resolve_service_waits_for_the_other_address_family_as_resolve_host_does(
    net: FakeNet,
) -> None:
    """ADR 005 §3: Avahi answers a query over IPv6 with the AAAA record alone and the same
    query over IPv4 with both; browse settles for that reason (resolve_host's rule: both
    types with the cache-flush bit, or SETTLE after the first address). resolve_service
    finishes on the first complete info: 10 ms before the A record arrives, it returns the
    IPv6 address alone, where resolve_host, asked the same, returns both."""
    name = f"Office.{HTTP}"
    record_srv, record_txt = srv(name, "office.local", 80), txt(name, b"x=1")
    v4, v6 = a("office.local", "192.0.2.8"), aaaa("office.local", "2001:db8::8")

    def avahi(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if any(qq.type in (RecordType.SRV, RecordType.A) for qq in message.questions):
            n.later(0.03, response(record_srv, record_txt, v6), t)  # the answer over IPv6
            n.later(0.04, response(record_srv, record_txt, v4, v6), t)  # the one over IPv4

    net.responders.append(avahi)
    q = fake_querier(net)
    assert q.resolve_host("office.local", timeout=3) == [
        IPv4Address("192.0.2.8"),
        IPv6Address("2001:db8::8"),
    ]
    q.cache.clear()
    net.clock.advance(2)
    info = q.resolve_service(name, timeout=3)
    assert info is not None
    assert set(info.addresses) == {IPv4Address("192.0.2.8"), IPv6Address("2001:db8::8")}


def test_only_dns_sd_ptr_records_ignore_the_flush_bit() -> None:
    """A subtype's and the type enumeration's PTR records are shared too; a reverse-address
    PTR record is unique (RFC 6762 §10.2): its flush bit still flushes."""
    from mdnsq.cache import RecordCache

    for owner, flushes in (
        ("_printer._sub._http._tcp.local", False),
        ("_services._dns-sd._udp.local", False),
        ("_HTTP._TCP.local", False),
        ("5.2.0.192.in-addr.arpa", True),
    ):
        cache = RecordCache()
        cache.add(ptr(owner, "old.local"), 2, 100.0)
        cache.add(ptr(owner, "new.local", flush=True), 2, 105.0)
        left = sorted(r.target for r in cache.records(owner, RecordType.PTR, 106.5))
        assert left == (["new.local"] if flushes else ["new.local", "old.local"]), owner


def _a_device(
    net: FakeNet, instance: str
) -> tuple[Querier, float, Sequence[Record], str, FakeTransport]:
    """A Querier and a device answering everything about ``instance`` (see device())."""
    q = fake_querier(net)
    start = net.clock()
    records = service_records(instance, HTTP, f"{instance.lower()}.local", 80, "192.0.2.5")
    net.responders.append(device(records, start))
    return q, start, records, f"{instance}.{HTTP}", net.transports[0]


# -- 2. passive observation of failures (RFC 6762 §10.5) --------------------------------------


def peer_query(name: str, rtype: RecordType) -> bytes:
    [packet] = build_queries([Question(name, rtype)])
    return packet


def test_a_record_other_hosts_ask_for_in_vain_is_flushed_within_ten_seconds(
    net: FakeNet,
) -> None:
    """RFC 6762 §10.5: a host that sees two or more queries its cached record would answer,
    and no multicast answer with it within ten seconds, SHOULD flush it. The device answered
    once and then lost power; from 20 s on two other hosts ask for its SRV record, 1 s apart,
    and nobody answers. The watch goes on listing it until the record's TTL runs out
    (120 s): queries are read only for §7.3, never for §10.5."""
    q, start, _, name, transport = _a_device(net, "Gone")

    def unplug(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if n.clock() - start > 1:  # the power is off: it answers nothing more
            del net.responders[:]

    net.responders.insert(0, unplug)
    net.later(
        20, peer_query(name, RecordType.SRV), transport, source=("192.0.2.77", 5353), to_group=True
    )
    net.later(
        21, peer_query(name, RecordType.SRV), transport, source=("192.0.2.78", 5353), to_group=True
    )
    events = watch_events(net, q, 130)
    assert events[0] == ("added", 0.05, "Gone")
    assert [e[0] for e in events[1:]] == ["removed"]
    assert events[1][1] <= 32


def _asked_in_vain(
    net: FakeNet, *queries: tuple[float, bytes, int, tuple[str, int]]
) -> tuple[Querier, float]:
    """A Querier holding an SRV record heard at 0 on IFINDEX (TTL 120), a call running (peer
    queries are read only then), and ``queries`` (delay, packet, interface, source) from
    other hosts to the group, nobody answering; returns it and the SRV record's expiry."""
    transport = net.transport(interfaces=[LAN, OTHER_LINK])
    q = fake_querier(net)
    transport.inject(response(srv(f"Gone.{HTTP}", "gone.local", 80)), to_group=True)
    q.process(0)
    for delay, packet, interface, source in queries:
        net.later(delay, packet, transport, source=source, interface=interface, to_group=True)
    q.query("other.local", "A", timeout=40)  # the call during which the queries come
    [entry] = q.cached_entries(f"Gone.{HTTP}", "SRV") or [None]
    return q, (entry.expires if entry is not None else -1.0)


PEER_A, PEER_B = ("192.0.2.77", 5353), ("192.0.2.78", 5353)
OTHER_LINK = Interface(name="fake1", index=7, addresses=(IPv4Interface("198.51.100.1/24"),))
SRV_Q = peer_query(f"Gone.{HTTP}", RecordType.SRV)


def test_two_unanswered_peer_queries_make_the_record_go_ten_seconds_after_the_first(
    net: FakeNet,
) -> None:
    q, expires = _asked_in_vain(net, (20, SRV_Q, IFINDEX, PEER_A), (21, SRV_Q, IFINDEX, PEER_B))
    assert expires == -1.0  # gone by the end of the call (at 40 s), not at 120 s
    assert q.stats()["flushed_unanswered"] == 1


@pytest.mark.parametrize(
    "why",
    ["one query", "listed as known", "qu", "other link", "truncated", "too soon"],
)
def test_what_does_not_count_as_a_query_asked_in_vain(net: FakeNet, why: str) -> None:
    """Only a QM question the responder should answer by multicast on that link counts: not
    one listing the record as a known answer (§7.1: the responder stays silent), a QU one (the
    answer may go to the asker alone), one on another link, one whose known answers go on in
    another packet (TC), nor one within a second of the record's reception (§6: the responder
    multicasts a record at most once a second)."""
    name = f"Gone.{HTTP}"
    known = build_queries(
        [Question(name, RecordType.SRV)], [srv(name, "gone.local", 80).with_ttl(100)]
    )[0]
    qu = build_queries([Question(name, RecordType.SRV, unicast_response=True)])[0]
    truncated = bytes([0, 0, 0x02, 0]) + SRV_Q[4:]  # TC: known answers go on in the next
    second = {
        "one query": None,
        "listed as known": (21.0, known, IFINDEX, PEER_B),
        "qu": (21.0, qu, IFINDEX, PEER_B),
        "other link": (21.0, SRV_Q, 7, ("198.51.100.2", 5353)),
        "truncated": (21.0, truncated, IFINDEX, PEER_B),
        "too soon": (0.5, SRV_Q, IFINDEX, PEER_B),
    }[why]
    first = (20.0 if why != "too soon" else 0.4, SRV_Q, IFINDEX, PEER_A)
    queries = [first] if second is None else [first, second]
    q, expires = _asked_in_vain(net, *queries)
    assert expires > 100, why
    assert q.stats()["flushed_unanswered"] == 0


def test_a_device_that_answers_the_peers_queries_is_kept(net: FakeNet) -> None:
    """The watch of a live device sees nothing removed while other hosts keep asking."""
    q, _, records, name, transport = _a_device(net, "Alive")
    for at in range(20, 200, 7):  # another host asks; the device answers it, to the group
        net.later(at, peer_query(name, RecordType.SRV), transport, source=PEER_A, to_group=True)
        net.later(at + 0.05, response(records[1]), transport, to_group=True)
    events = watch_events(net, q, 220)
    assert [e[0] for e in events] == ["added"]
    assert q.stats().get("flushed_unanswered", 0) == 0


def test_unanswered_over_one_family_of_two_flushes_nothing(net: FakeNet) -> None:
    """A responder may listen over one family: an IPv6-only device among IPv4-only askers
    (python-zeroconf's default) never hears their queries. Counted over IPv4 alone, its
    records were taken away and found again, over and over; the link counts as asked in
    vain when every family of ours there saw it."""
    import socket

    v4 = net.transport(interfaces=[LAN])
    v6 = net.transport(family=socket.AF_INET6, interfaces=[LAN])
    q = Querier(transports=[v4, v6], clock=net.clock, wait=net.wait)
    v6.inject(response(srv(f"Gone.{HTTP}", "gone.local", 80)), ("fe80::5", 5353), to_group=True)
    q.process(0)
    for at in (20, 22, 24):
        net.later(at, SRV_Q, v4, source=PEER_A, to_group=True)
    q.query("other.local", "A", timeout=40)
    assert [e.record.port for e in q.cached_entries(f"Gone.{HTTP}", "SRV")] == [80]
    assert q.stats()["flushed_unanswered"] == 0
    for at in (20, 22):  # now over IPv6 too: gone ten seconds after the first IPv4 query
        net.later(at, SRV_Q, v6, source=("fe80::77", 5353), to_group=True)
        net.later(at, SRV_Q, v4, source=PEER_A, to_group=True)
    q.query("other.local", "A", timeout=40)
    assert q.cached_entries(f"Gone.{HTTP}", "SRV") == []
    assert q.stats()["flushed_unanswered"] == 1


def test_queries_in_one_burst_count_once(net: FakeNet) -> None:
    """A peer on two paths to the link asks twice at once: one query, not two."""
    q, expires = _asked_in_vain(net, (20.0, SRV_Q, IFINDEX, PEER_A), (20.1, SRV_Q, IFINDEX, PEER_B))
    assert expires > 100
    assert q.stats()["flushed_unanswered"] == 0
