"""Found in the thirteenth session's review of the query side: each test fails on the code
before its fix (fake network and clock, as tests/test_querier.py; nothing sleeps)."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface

import pytest

import mdnsq.querier
from mdnsq import InvalidArgument, Message, Querier, RecordType
from mdnsq.interfaces import Interface
from mdnsq.tasks import MAX_RESOLVING, RESOLVE_HOLD
from tests.fakes import (
    IFINDEX,
    LAN,
    PEER,
    FakeNet,
    FakeTransport,
    a,
    ptr,
    response,
    service_records,
)

HTTP = "_http._tcp.local"


@pytest.fixture(autouse=True)
def no_first_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mdnsq.querier, "FIRST_DELAY", (0.0, 0.0))


@pytest.fixture
def net() -> Iterator[FakeNet]:
    the_net = FakeNet()
    yield the_net
    for transport in the_net.transports:
        transport.close()


def make(net: FakeNet, **kwargs: object) -> Querier:
    transport = net.transports[0] if net.transports else net.transport()
    return Querier(transports=[transport], clock=net.clock, wait=net.wait, **kwargs)  # type: ignore[arg-type]


def test_a_watch_reports_an_instance_whose_srv_expired_and_finds_it_again(net: FakeNet) -> None:
    """Real responders give PTR and TXT 4500 s, SRV and A 120 s. With the link down from 90
    to 200 s the SRV and A records expire unrefreshed: the watch said nothing, kept the old
    host and port, and never asked again (the PTR, a known answer, kept the responder quiet)."""
    q = make(net)
    recs = service_records("Box", HTTP, "box.local", 8080, "192.0.2.5", ttl=120)
    asked: list[tuple[float, str, RecordType]] = []
    start = net.clock()

    def responder(message: Message, n: FakeNet, transport: FakeTransport) -> None:
        now = n.clock() - start
        if 90 <= now < 200:
            return  # the link is down
        known = set(message.answers)
        out = []
        for question in message.questions:
            asked.append((now, question.name, question.type))
            out += [
                r
                for r in recs
                if r.type == question.type and r.name == question.name and r not in known
            ]
        if out:
            n.later(0.02, response(*out), transport)

    net.responders.append(responder)
    events = [(round(net.clock() - start), e.kind, e.info.port) for e in q.watch(HTTP, 1000)]
    assert events[0] == (0, "added", 8080)
    # Removed when the SRV record expired (120 s, its refreshes lost), added once back.
    assert events[1] == (120, "removed", 8080)
    assert events[2][1:] == ("added", 8080) and 200 <= events[2][0] < 260
    assert all(kind != "removed" for _, kind, _ in events[3:])
    assert any(
        t >= 200 and name == f"Box.{HTTP}" and rtype == RecordType.SRV for t, name, rtype in asked
    )
    assert q.cached(f"Box.{HTTP}", "SRV")  # and it holds the record again


@pytest.mark.parametrize("call", ["browse", "watch"])
def test_instances_that_never_resolve_do_not_starve_the_others(net: FakeNet, call: str) -> None:
    """MAX_RESOLVING instances listed first that nobody answers for (their hosts vanished:
    PTR records outlive SRV records) held every slot: a live instance after them was never
    asked about. Now a slot held RESOLVE_HOLD goes to an instance that waits."""
    q = make(net)
    transport = net.transports[0]
    dead = [ptr(HTTP, f"Dead{i}.{HTTP}") for i in range(MAX_RESOLVING)]
    transport.inject(response(*dead))
    q.process(0)
    live = f"Live.{HTTP}"
    recs = service_records("Live", HTTP, "live.local", 80, "192.0.2.9")
    asked: list[float] = []
    start = net.clock()

    def responder(message: Message, n: FakeNet, t: FakeTransport) -> None:
        out = []
        for question in message.questions:
            if question.name == live:
                asked.append(n.clock() - start)
            out += [r for r in recs[1:] if r.type == question.type and r.name == question.name]
            if question.type == RecordType.PTR and recs[0] not in message.answers:
                out.append(recs[0])
        if out:
            n.later(0.02, response(*out), t)

    net.responders.append(responder)
    if call == "browse":
        found = [(info.name, net.clock() - start) for info in q.browse(HTTP, timeout=5)]
        assert [name for name, _ in found] == [live]
        assert found[0][1] < RESOLVE_HOLD + 0.5
    else:
        events = [(e.kind, e.info.name) for e in q.watch(HTTP, timeout=600)]
        assert ("added", live) in events
    assert asked and RESOLVE_HOLD <= asked[0] < RESOLVE_HOLD + 0.1
    # The dead ones are still asked about, on the usual doubling (0, 1, 3, 7 ... s): 10 times
    # each for SRV and TXT in 600 s; a turn given away costs one more round, not a storm.
    dead_questions = sum(
        1
        for message in transport.sent_messages()
        for question in message.questions
        if question.name.startswith("Dead")
    )
    assert dead_questions <= MAX_RESOLVING * 2 * 12


def test_a_one_shot_query_returns_once_its_answer_settled(net: FakeNet) -> None:
    """Legacy unicast replies carry no cache-flush bit (RFC 6762 §6.7), so a one-shot query()
    never saw a unique answer and always ran to its deadline."""
    q = make(net, one_shot=True)

    def legacy(message: Message, n: FakeNet, t: FakeTransport) -> None:
        for question in message.questions:
            record = a(question.name, "192.0.2.5", ttl=10, flush=False)
            n.later(0.01, response(record, id=message.id), t, source=("192.0.2.1", 5353))

    net.responders.append(legacy)
    start = net.clock()
    [record] = q.query("p.local", "A", timeout=5.0)
    assert record.address == IPv4Address("192.0.2.5")  # type: ignore[attr-defined]
    assert net.clock() - start < 0.5


def test_a_record_heard_on_two_interfaces_is_one_known_answer(net: FakeNet) -> None:
    """One transport on two links heard the same PTR records on both: each went out twice
    as a known answer in every query."""
    other = Interface(name="fake1", index=3, addresses=(IPv4Interface("198.51.100.254/24"),))
    transport = net.transport(interfaces=[LAN, other])
    q = Querier(transports=[transport], clock=net.clock, wait=net.wait)
    records = [ptr(HTTP, f"I{i}.{HTTP}") for i in range(3)]
    transport.inject(response(*records), source=PEER, interface=IFINDEX)
    transport.inject(response(*records), source=("198.51.100.1", 5353), interface=3)
    q.process(0)
    assert len(q.cache) == 6  # kept apart: each interface's copy expires on its own
    transport.sent.clear()
    list(q.browse(HTTP, timeout=0.5))
    first = transport.sent_messages()[0]
    assert sorted(r.target for r in first.answers) == sorted(r.target for r in records)  # type: ignore[attr-defined]
    assert q.stats()["known_answers_sent"] == 3


@pytest.mark.parametrize("name", ["", "."])
def test_no_question_about_the_root(net: FakeNet, name: str) -> None:
    """query("") asked ". A?" and resolve_service("") ". SRV?" and ". TXT?" on the link."""
    q = make(net)
    with pytest.raises(InvalidArgument):
        q.query(name, "A", timeout=1)
    with pytest.raises(InvalidArgument):
        q.resolve_service(name, timeout=1)
    assert net.transports[0].sent_messages() == []
