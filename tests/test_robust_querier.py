"""Hostile traffic against the Querier, deterministically: an in-memory network (tests/fakes.py)
and a fake clock, so each attack found by the real floods (test_robust_flood.py) has a small,
exact test of its own.
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from mdnsq import ARecord, Message, PTRRecord, Querier, encode_message
from tests.fakes import (
    FakeNet,
    a,
    ptr,
    response,
    service_records,
    srv,
)

STYPE = "_http._tcp.local"
NAME = f"web.{STYPE}"
HOST = "web.local"
JUNK_TTL = 4500


def junk_packets(count: int, per_packet: int = 300, start: int = 0) -> list[bytes]:
    """Valid responses full of distinct, long-lived, unrelated A records."""
    packets = []
    for p in range(start, start + count):
        records = tuple(
            ARecord(name=f"j{p}-{i}.local", ttl=JUNK_TTL, address=IPv4Address(0xC6336400 + i % 256))
            for i in range(per_packet)
        )
        packets.append(encode_message(Message(flags=0x8400, answers=records)))
        assert len(packets[-1]) <= 9000
    return packets


def drain(q: Querier, injected: int) -> None:
    """Receive everything injected (process() reads at most one batch per call)."""
    for _ in range(injected):
        if q.stats().get("received", 0) >= injected:
            return
        q.process(0)
    raise AssertionError("the querier did not read what was injected")


@pytest.fixture
def net() -> FakeNet:
    return FakeNet()


def make_querier(net: FakeNet, **kwargs: object) -> Querier:
    transport = net.transport()
    return Querier(transports=[transport], clock=net.clock, wait=net.wait, **kwargs)  # type: ignore[arg-type]


def answer_web(net: FakeNet) -> None:
    records = service_records("web", STYPE, HOST, 8080, "192.0.2.1")

    def responder(message: Message, net: FakeNet, transport: object) -> None:
        if any(q.name == NAME for q in message.questions):
            net.later(0.05, response(*records[1:]))

    net.responders.append(responder)


# Found by the floods: the cache used to evict the entries closest to expiry, so once it was
# full of long-TTL junk every real record with a shorter TTL (SRV/A: 120) was evicted the moment
# it was added, and resolve_service failed for as long as the junk lived (75 minutes).


def test_a_cache_full_of_long_lived_junk_does_not_lock_out_real_answers(net: FakeNet) -> None:
    answer_web(net)
    q = make_querier(net, cache_size=1000)
    transport = net.transports[0]
    for packet in junk_packets(4):
        transport.inject(packet)
    q.process(0)
    assert 1000 - 1000 // 16 <= len(q.cache) <= 1000  # full (evicting a sixteenth at a time)
    info = q.resolve_service(NAME, timeout=3.0)
    assert info is not None and info.port == 8080


def test_junk_arriving_with_the_answer_does_not_evict_it(net: FakeNet) -> None:
    """The answer and a burst of junk are read in the same wake-up (as in a flood)."""
    records = service_records("web", STYPE, HOST, 8080, "192.0.2.1")

    def responder(message: Message, net: FakeNet, transport: object) -> None:
        if any(q.name == NAME for q in message.questions):
            net.later(0.05, response(*records[1:]))
            for packet in junk_packets(4, start=1000 + len(net.transports[0].sent)):
                net.later(0.05, packet)

    net.responders.append(responder)
    q = make_querier(net, cache_size=1000)
    info = q.resolve_service(NAME, timeout=3.0)
    assert info is not None and info.port == 8080


def test_the_cache_bound_holds_under_junk(net: FakeNet) -> None:
    q = make_querier(net, cache_size=1000)
    for packet in junk_packets(10):
        net.transports[0].inject(packet)
    drain(q, 10)
    stats = q.stats()
    assert 1000 - 1000 // 16 <= stats["cache_records"] <= 1000
    assert stats["cache_evicted"] == 10 * 300 - stats["cache_records"]


# Found by the PTR flood: the querier used to hand every due question to one build_queries
# call, which raises ValueError past 1460 bytes, so browse() died when ~40+ instances appeared.


def test_browse_survives_a_hundred_instances_announced_at_once(net: FakeNet) -> None:
    pointers = [
        ptr(STYPE, f"printer number {i:03d} on the third floor.{STYPE}") for i in range(100)
    ]

    def responder(message: Message, net: FakeNet, transport: object) -> None:
        if any(q.name == STYPE for q in message.questions):
            net.later(0.05, response(*pointers))

    net.responders.append(responder)
    q = make_querier(net)
    found = list(q.browse(STYPE, timeout=3.0))
    assert found == []  # nobody answers SRV/TXT; the point is that browse returns normally


def test_goodbyes_for_held_records_then_a_fresh_answer_resolve_again(net: FakeNet) -> None:
    """Someone sends goodbyes for records we hold; the owner answers again: resolvable."""
    answer_web(net)
    q = make_querier(net)
    assert q.resolve_service(NAME, timeout=3.0) is not None
    goodbye = response(
        srv(NAME, HOST, 8080, ttl=0), a(HOST, "192.0.2.1", ttl=0), ptr(STYPE, NAME, ttl=0)
    )
    for _ in range(200):
        net.transports[0].inject(goodbye)
    q.process(0)
    net.clock.advance(2.0)  # past the one-second goodbye grace: the records are gone
    assert q.cached(NAME, "SRV") == []
    info = q.resolve_service(NAME, timeout=3.0)
    assert info is not None and info.port == 8080


def test_spoofed_off_link_answers_are_dropped_and_counted(net: FakeNet) -> None:
    q = make_querier(net)
    forged = response(srv(NAME, HOST, 6666), a(HOST, "203.0.113.66"))
    for _ in range(50):
        net.transports[0].inject(forged, source=("198.51.100.7", 5353))
    q.process(0)
    assert q.cached(NAME, "SRV") == []
    assert q.stats()["dropped_off_link"] == 50


def test_known_answer_queries_from_others_make_us_send_nothing(net: FakeNet) -> None:
    q = make_querier(net)
    storm = encode_message(
        Message(
            questions=(),
            answers=tuple(
                PTRRecord(name=STYPE, ttl=4500, target=f"k{i}.{STYPE}") for i in range(60)
            ),
        )
    )
    for _ in range(500):
        net.transports[0].inject(storm)
    drain(q, 500)
    assert net.transports[0].sent == []
    assert q.stats()["ignored_queries"] == 500


# Found here: every cached answer with more than half its TTL left went out as a known answer,
# uncapped, so 3,000 planted PTRs made one 3.5 s browse send 216 packets / 308 KB. Fixed in
# e4b1aa0 (known answers capped at 200 per query): now 18 packets.


def test_planted_answers_do_not_make_our_queries_a_flood(net: FakeNet) -> None:
    q = make_querier(net)
    transport = net.transports[0]
    for p in range(30):
        records = [ptr(STYPE, f"fake instance {p}-{i}.{STYPE}") for i in range(100)]
        transport.inject(response(*records))
    drain(q, 30)
    assert len(q.cache) == 3000
    transport.sent.clear()
    for _ in q.browse(STYPE, timeout=3.5):
        pass
    # Queries at 0, 1 and 3 s: allow a generous 10 packets per round.
    assert len(transport.sent) <= 30


# Found by tests/test_robust_pipeline.py: every refresh point of every record went out as it
# came (RFC 6762 §5.2 plans four per record, 5 % of its TTL apart, each record jittered), so a
# peer re-announcing ten instances with TTL 1 every second made a watch send 68 packets a
# second, from one packet of the peer's. Refreshes now go out in rounds (REFRESH_GAP).


def test_short_ttls_re_announced_do_not_make_our_refreshes_a_flood(net: FakeNet) -> None:
    q = make_querier(net)
    transport = net.transports[0]
    records = []
    for i in range(10):
        name = f"i{i}.{STYPE}"
        records += service_records(f"i{i}", STYPE, f"h{i}.local", 80, "192.0.2.1", ttl=1)
        records[-4] = ptr(STYPE, name, ttl=1)
        records[-2] = records[-2].with_ttl(1)
    for second in range(10):
        net.later(second + 0.001, response(*records), transport)
    events = [event.kind for event in q.watch(STYPE, timeout=10)]
    assert events.count("added") == 10 and "removed" not in events
    # Rounds at least REFRESH_GAP apart would allow 250 in 10 s; 41 go out (681 before).
    assert len(transport.sent) <= 100, len(transport.sent)
