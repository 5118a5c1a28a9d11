"""Goodbyes that can be rescued (RFC 6762 §10.1), and services at the root target (RFC 2782).

- A record received with TTL 0 is deleted one second later, so that another responder can
  rescue it within that second. Until then every reader (resolve_host, query, resolve_service,
  browse, watch) still sees it; a rescue within the second is no event at all, and a goodbye
  nobody rescues is one event, when the cache deletes the record. Nobody asks about a record
  during its last second, for a refresh or otherwise.
- An SRV record whose target is the root name "." says the service is decidedly not available
  at this domain: nobody asks for the root's addresses, resolve_service returns None as soon
  as it knows, and browse and watch leave the instance out.

Driven over the in-memory network of tests/fakes.py on a fake clock: nothing sleeps, and every
time below is exact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest

from mdnsq import Message, Querier, RecordType, service
from mdnsq.cache import RecordCache
from mdnsq.records import Record, SRVRecord
from mdnsq.service import build_service_info
from mdnsq.tasks import all_addresses_known, missing_questions
from tests.fakes import (
    FakeNet,
    FakeTransport,
    a,
    fake_querier,
    ptr,
    questions_of,
    response,
    service_records,
    srv,
    txt,
)

HTTP = "_http._tcp.local"
NAME = f"Office.{HTTP}"
HOST = "office.local"
ADDR = "192.0.2.8"
ROOT_NAMES = ("", ".")

pytestmark = pytest.mark.usefixtures("no_first_delay")


Asked = list[tuple[float, str, int]]


def log_questions(net: FakeNet, start: float) -> Asked:
    """Every question sent from now on, as (time since ``start``, name, type)."""
    asked: Asked = []

    def responder(message: Message, n: FakeNet, t: FakeTransport) -> None:
        for name, rtype in questions_of([message]):
            asked.append((round(n.clock() - start, 3), name, rtype))

    net.responders.append(responder)
    return asked


def answer_first_query(net: FakeNet, *records: Record) -> None:
    """The first query sent is answered 50 ms later with ``records``; nothing else is."""
    answered: list[int] = []

    def once(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if not answered:
            answered.append(1)
            n.later(0.05, response(records[0], additionals=records[1:]), t)

    net.responders.append(once)


def prime(net: FakeNet, q: Querier, *packets: bytes) -> None:
    """Receive these packets now, one after the other."""
    for packet in packets:
        net.transports[0].inject(packet)
        q.process()


Event = tuple[str, float, str, list[str], dict[str, bytes | None]]


def watch(
    net: FakeNet, q: Querier, timeout: float, on_added: Callable[[], None] | None = None
) -> list[Event]:
    """Watch HTTP for ``timeout`` seconds; (kind, time, host, addresses, txt) of each event.
    ``on_added`` runs after the first "added" event."""
    start = net.clock()
    events: list[Event] = []
    for event in q.watch(HTTP, timeout=timeout):
        info = event.info
        addresses = sorted(str(x) for x in info.addresses)
        events.append(
            (event.kind, round(net.clock() - start, 3), info.host, addresses, dict(info.txt))
        )
        if event.kind == "added" and on_added is not None and len(events) == 1:
            on_added()
    return events


def address_questions(asked: Asked, host: str) -> list[tuple[float, int]]:
    return [
        (when, rtype)
        for when, name, rtype in asked
        if name.lower() == host and rtype in (RecordType.A, RecordType.AAAA)
    ]


def root_questions(asked: Asked) -> list[tuple[float, str, int]]:
    return [
        (when, name, rtype)
        for when, name, rtype in asked
        if name in ROOT_NAMES and rtype in (RecordType.A, RecordType.AAAA)
    ]


ADDED: Event = ("added", 0.05, HOST, [ADDR], {"path": b"/"})

# -- bug 5: a goodbye is a record's last second, not its end (RFC 6762 §10.1) -------------------


def test_watch_reports_nothing_for_an_address_goodbye_rescued_within_the_second(
    net: FakeNet,
) -> None:
    q = fake_querier(net)
    answer_first_query(net, *service_records("Office", HTTP, HOST, 8080, ADDR))
    asked = log_questions(net, net.clock())
    transport = net.transports[0]

    def goodbye_then_rescue() -> None:
        net.later(1.0, response(a(HOST, ADDR, ttl=0)), transport)  # at 1.05
        net.later(1.5, response(a(HOST, ADDR)), transport)  # at 1.55: another responder's

    assert watch(net, q, 10, goodbye_then_rescue) == [ADDED]
    [entry] = q.cached_entries(HOST, "A")
    assert not entry.goodbye
    assert address_questions(asked, HOST) == []  # nobody asked while it was going


def test_watch_reports_an_address_goodbye_nobody_rescued_once_when_the_second_is_over(
    net: FakeNet,
) -> None:
    q = fake_querier(net)
    answer_first_query(net, *service_records("Office", HTTP, HOST, 8080, ADDR))
    asked = log_questions(net, net.clock())
    transport = net.transports[0]

    def goodbye() -> None:
        net.later(1.0, response(a(HOST, ADDR, ttl=0)), transport)  # at 1.05

    events = watch(net, q, 10, goodbye)
    assert events == [ADDED, ("updated", 2.05, HOST, [], {"path": b"/"})]
    # Not asked during its last second; asked again once it was gone (the instance has no
    # address now), as after any expiry.
    questions = address_questions(asked, HOST)
    assert questions
    assert min(when for when, _ in questions) == 2.05


def test_watch_asks_no_refresh_for_an_address_that_said_goodbye(net: FakeNet) -> None:
    """The A record's first refresh point (80 % of TTL 10, plus up to 2 % jitter) falls in
    its last second after a goodbye: no refresh query for a record that is going away."""
    q = fake_querier(net)
    p, s, t, _ = service_records("Office", HTTP, HOST, 8080, ADDR)
    answer_first_query(net, p, s, t, a(HOST, ADDR, ttl=10))  # refresh from 8.05 to 8.25
    asked = log_questions(net, net.clock())
    transport = net.transports[0]

    def goodbye() -> None:
        net.later(7.9, response(a(HOST, ADDR, ttl=0)), transport)  # at 7.95, gone at 8.95

    events = watch(net, q, 12, goodbye)
    assert events == [
        ("added", 0.05, HOST, [ADDR], {"path": b"/"}),
        ("updated", 8.95, HOST, [], {"path": b"/"}),
    ]
    assert [when for when, _ in address_questions(asked, HOST) if when < 8.95] == []


def test_watch_refreshes_a_rescued_address_from_its_new_reception(net: FakeNet) -> None:
    """A rescue is a fresh reception: its refresh points count from it."""
    q = fake_querier(net)
    p, s, t, _ = service_records("Office", HTTP, HOST, 8080, ADDR)
    answer_first_query(net, p, s, t, a(HOST, ADDR, ttl=10))
    asked = log_questions(net, net.clock())
    transport = net.transports[0]

    def goodbye_then_rescue() -> None:
        net.later(7.9, response(a(HOST, ADDR, ttl=0)), transport)  # at 7.95
        net.later(8.4, response(a(HOST, ADDR, ttl=10)), transport)  # at 8.45: points from 16.45

    events = watch(net, q, 17, goodbye_then_rescue)
    assert events == [("added", 0.05, HOST, [ADDR], {"path": b"/"})]
    refreshes = [when for when, rtype in address_questions(asked, HOST) if rtype == RecordType.A]
    assert refreshes
    assert 16.45 <= min(refreshes) <= 16.45 + 0.2 + 0.04


def test_watch_reports_nothing_for_a_txt_goodbye_rescued_within_the_second(net: FakeNet) -> None:
    q = fake_querier(net)
    answer_first_query(net, *service_records("Office", HTTP, HOST, 8080, ADDR))
    asked = log_questions(net, net.clock())
    transport = net.transports[0]

    def goodbye_then_rescue() -> None:
        net.later(1.0, response(txt(NAME, b"path=/", ttl=0)), transport)
        net.later(1.5, response(txt(NAME, b"path=/")), transport)

    assert watch(net, q, 10, goodbye_then_rescue) == [ADDED]
    assert [x for x in asked if x[1] == NAME] == []


def test_watch_reports_a_txt_goodbye_nobody_rescued_once_when_the_second_is_over(
    net: FakeNet,
) -> None:
    q = fake_querier(net)
    answer_first_query(net, *service_records("Office", HTTP, HOST, 8080, ADDR))
    transport = net.transports[0]

    def goodbye() -> None:
        net.later(1.0, response(txt(NAME, b"path=/", ttl=0)), transport)

    events = watch(net, q, 10, goodbye)
    assert events == [ADDED, ("updated", 2.05, HOST, [ADDR], {})]


def test_watch_reports_nothing_for_an_srv_goodbye_rescued_within_the_second(net: FakeNet) -> None:
    q = fake_querier(net)
    answer_first_query(net, *service_records("Office", HTTP, HOST, 8080, ADDR))
    asked = log_questions(net, net.clock())
    transport = net.transports[0]

    def goodbye_then_rescue() -> None:
        net.later(1.0, response(srv(NAME, HOST, 8080, ttl=0)), transport)
        net.later(1.5, response(srv(NAME, HOST, 8080)), transport)

    assert watch(net, q, 10, goodbye_then_rescue) == [ADDED]
    assert [x for x in asked if x[1] == NAME] == []


def test_resolve_host_during_the_goodbye_second_still_returns_the_address(net: FakeNet) -> None:
    q = fake_querier(net)
    prime(net, q, response(a(HOST, ADDR)), response(a(HOST, ADDR, ttl=0)))
    net.clock.advance(0.5)
    start = net.clock()
    assert q.resolve_host(HOST, timeout=2) == [IPv4Address(ADDR)]
    assert net.clock() == start  # from the cache, at once
    assert net.transports[0].sent == []
    net.clock.advance(0.5)  # the second is over: gone
    assert q.resolve_host(HOST, timeout=2) == []


def test_query_during_the_goodbye_second_still_returns_the_record(net: FakeNet) -> None:
    q = fake_querier(net)
    prime(net, q, response(a(HOST, ADDR)), response(a(HOST, ADDR, ttl=0)))
    net.clock.advance(0.5)
    [record] = q.query(HOST, "A", timeout=1)
    assert record.address == IPv4Address(ADDR)  # type: ignore[attr-defined]
    assert net.transports[0].sent == []


def test_resolve_service_during_an_srv_goodbye_second_still_returns_the_service(
    net: FakeNet,
) -> None:
    q = fake_querier(net)
    records = service_records("Office", HTTP, HOST, 8080, ADDR)
    prime(net, q, response(*records), response(srv(NAME, HOST, 8080, ttl=0)))
    net.clock.advance(0.5)
    start = net.clock()
    info = q.resolve_service(NAME, timeout=2)
    assert info is not None
    assert (info.host, info.port, info.addresses) == (HOST, 8080, (IPv4Address(ADDR),))
    assert info.ttl == 0  # what is left of its last second
    assert net.clock() == start
    assert net.transports[0].sent == []
    net.clock.advance(0.5)
    assert q.resolve_service(NAME, timeout=2) is None  # gone, and nobody answers


def test_resolve_service_during_a_txt_goodbye_second_still_returns_the_txt(net: FakeNet) -> None:
    q = fake_querier(net)
    records = service_records("Office", HTTP, HOST, 8080, ADDR)
    prime(net, q, response(*records), response(txt(NAME, b"path=/", ttl=0)))
    net.clock.advance(0.5)
    info = q.resolve_service(NAME, timeout=2)
    assert info is not None and info.complete
    assert info.txt == {"path": b"/"}
    assert net.transports[0].sent == []


def test_resolve_service_during_an_address_goodbye_second_asks_nothing(net: FakeNet) -> None:
    q = fake_querier(net)
    records = service_records("Office", HTTP, HOST, 8080, ADDR)
    prime(net, q, response(*records), response(a(HOST, ADDR, ttl=0)))
    net.clock.advance(0.5)
    info = q.resolve_service(NAME, timeout=2)
    assert info is not None and info.addresses == (IPv4Address(ADDR),)
    assert net.transports[0].sent == []


def test_browse_during_an_address_goodbye_second_yields_the_address(net: FakeNet) -> None:
    q = fake_querier(net)
    records = service_records("Office", HTTP, HOST, 8080, ADDR)
    prime(net, q, response(*records), response(a(HOST, ADDR, ttl=0)))
    net.clock.advance(0.5)
    start = net.clock()
    found = [(info.name, info.addresses, net.clock() - start) for info in q.browse(HTTP, 3)]
    assert found == [(NAME, (IPv4Address(ADDR),), 0.0)]


# -- bug 6: an SRV record at the root target (RFC 2782) -----------------------------------------

GONE = f"Gone.{HTTP}"


def answer_srv_txt(net: FakeNet, *records: Record) -> None:
    """Every query about GONE's SRV or TXT is answered 50 ms later with ``records``."""

    def responder(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if any(qq.name == GONE for qq in message.questions):
            n.later(0.05, response(*records), t)

    net.responders.append(responder)


@pytest.mark.parametrize("root", ROOT_NAMES)
def test_resolve_service_of_a_root_target_returns_none_at_once(
    net: FakeNet, root: str, caplog: pytest.LogCaptureFixture
) -> None:
    q = fake_querier(net)
    answer_srv_txt(net, srv(GONE, root, 0), txt(GONE, b"path=/"))
    asked = log_questions(net, net.clock())
    start = net.clock()
    with caplog.at_level(logging.DEBUG, logger="mdnsq"):
        assert q.resolve_service(GONE, timeout=3) is None
    assert round(net.clock() - start, 3) == 0.05  # as soon as the SRV record came
    assert root_questions(asked) == []
    assert [r for r in caplog.records if r.name.startswith("mdnsq") and GONE in r.getMessage()]


def test_resolve_service_of_a_root_target_needs_no_txt(net: FakeNet) -> None:
    q = fake_querier(net)
    answer_srv_txt(net, srv(GONE, ".", 0))  # the TXT record never comes
    asked = log_questions(net, net.clock())
    start = net.clock()
    assert q.resolve_service(GONE, timeout=3) is None
    assert round(net.clock() - start, 3) == 0.05
    assert root_questions(asked) == []
    assert [when for when, _, _ in asked] == [0.0, 0.0]  # SRV and TXT, asked once


def test_resolve_service_of_a_cached_root_target_returns_none_without_asking(
    net: FakeNet,
) -> None:
    q = fake_querier(net)
    prime(net, q, response(srv(GONE, ".", 0), txt(GONE, b"path=/")))
    start = net.clock()
    assert q.resolve_service(GONE, timeout=3) is None
    assert net.clock() == start
    assert net.transports[0].sent == []


def test_browse_leaves_out_an_instance_at_the_root_target(
    net: FakeNet, caplog: pytest.LogCaptureFixture
) -> None:
    q = fake_querier(net)
    good = service_records("Office", HTTP, HOST, 8080, ADDR)
    answer_first_query(
        net, good[0], ptr(HTTP, GONE), *good[1:], srv(GONE, ".", 0), txt(GONE, b"path=/")
    )
    asked = log_questions(net, net.clock())
    with caplog.at_level(logging.DEBUG, logger="mdnsq"):
        found = [info.name for info in q.browse(HTTP, timeout=3)]
    assert found == [NAME]
    assert root_questions(asked) == []
    assert [x for x in asked if x[1] == GONE] == []  # nothing more to know about it
    assert [r for r in caplog.records if r.name.startswith("mdnsq") and GONE in r.getMessage()]


def test_watch_never_adds_an_instance_at_the_root_target(net: FakeNet) -> None:
    q = fake_querier(net)
    good = service_records("Office", HTTP, HOST, 8080, ADDR)
    answer_first_query(
        net, good[0], ptr(HTTP, GONE), *good[1:], srv(GONE, ".", 0), txt(GONE, b"path=/")
    )
    asked = log_questions(net, net.clock())
    events = watch(net, q, 10)  # well past the partial-report deadline (PARTIAL_AFTER)
    assert events == [ADDED]
    assert root_questions(asked) == []


def test_watch_adds_an_instance_once_its_srv_leaves_the_root_target(net: FakeNet) -> None:
    q = fake_querier(net)
    answer_first_query(net, ptr(HTTP, GONE), srv(GONE, ".", 0), txt(GONE, b"path=/"))
    net.later(3.05, response(srv(GONE, HOST, 8080), a(HOST, ADDR)))
    asked = log_questions(net, net.clock())
    events = watch(net, q, 10)
    assert events == [("added", 3.05, HOST, [ADDR], {"path": b"/"})]
    assert root_questions(asked) == []


def _move_to_root() -> tuple[FakeNet, Querier, Callable[[], None]]:
    net = FakeNet()
    q = fake_querier(net)
    answer_first_query(net, *service_records("Office", HTTP, HOST, 8080, ADDR))

    def to_root() -> None:  # the responder says the service is no longer available
        net.later(1.0, response(srv(NAME, ".", 0)), net.transports[0])  # at 1.05, flushing

    return net, q, to_root


def test_watch_never_reports_an_instance_moved_to_the_root_target_as_updated() -> None:
    net, q, to_root = _move_to_root()
    asked = log_questions(net, net.clock())
    try:
        events = watch(net, q, 10, to_root)
    finally:
        net.transports[0].close()
    assert events[0] == ADDED
    assert [e for e in events if e[0] != "removed"] == [ADDED]  # no "updated" to host ''
    assert root_questions(asked) == []


def test_watch_reports_an_instance_moved_to_the_root_target_as_removed() -> None:
    net, q, to_root = _move_to_root()
    try:
        events = watch(net, q, 10, to_root)
    finally:
        net.transports[0].close()
    assert [(kind, when) for kind, when, *_ in events] == [("added", 0.05), ("removed", 1.05)]


# -- the rules, on the cache alone ---------------------------------------------------------------


def _cache_with(*records: Record, now: float = 1000.0) -> RecordCache:
    cache = RecordCache()
    cache.add_all(records, 2, now)
    return cache


def test_an_instance_going_away_needs_no_question_until_its_records_are_gone() -> None:
    records = service_records("Office", HTTP, HOST, 8080, ADDR)
    cache = _cache_with(*records)
    goodbyes = [r.with_ttl(0) for r in records[1:]]  # SRV, TXT, A
    cache.add_all(goodbyes, 2, 1000.5)
    assert missing_questions(cache, NAME, 1001.0) == []
    assert all_addresses_known(cache, HOST, 1001.0) is False  # no AAAA, as before the goodbye
    info = build_service_info(cache, NAME, 1001.0)
    assert info is not None and info.complete and info.ttl == 0
    cache.expire(1001.5)
    assert [(q.name, q.type) for q in missing_questions(cache, NAME, 1001.5)] == [
        (NAME, RecordType.SRV),
        (NAME, RecordType.TXT),
    ]
    assert build_service_info(cache, NAME, 1001.5) is None


@pytest.mark.parametrize("root", ROOT_NAMES)
def test_the_root_target_is_never_asked_about(root: str) -> None:
    cache = _cache_with(srv(GONE, root, 0))
    assert service.service_unavailable(cache, GONE, 1000.0)
    assert missing_questions(cache, GONE, 1000.0) == []  # not even its TXT record
    assert build_service_info(cache, GONE, 1000.0) is None


def test_the_best_srv_record_says_whether_the_service_is_available() -> None:
    """Picked as build_service_info picks the host: lowest priority, highest weight, newest.
    A stray root record ranked below a real one hides nothing; a newer one at the same rank
    replaces the target, as a new host would."""
    stray = SRVRecord(name=GONE, ttl=120, priority=10, weight=0, port=0, target=".")
    cache = _cache_with(srv(GONE, HOST, 80), stray, a(HOST, ADDR), txt(GONE, b"x=1"))
    assert not service.service_unavailable(cache, GONE, 1000.0)
    info = build_service_info(cache, GONE, 1000.0)
    assert info is not None and info.complete and info.host == HOST
    assert missing_questions(cache, GONE, 1000.0) == []
    cache.add(srv(GONE, ".", 0, flush=False), 2, 1000.5)
    assert service.service_unavailable(cache, GONE, 1000.5)
    assert build_service_info(cache, GONE, 1000.5) is None
