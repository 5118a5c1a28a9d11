"""What waits in the socket while nobody receives (fifteenth session's review, F1 and F2).

A Querier receives only while a call runs. Between calls the kernel queues the link's traffic
(an hour of it fits in the receive buffer), and the next call read that backlog as news: a
record whose TTL ran out in the socket came back live, a renumbered host's old address outlived
the new one's flush (both filed at one instant), a goodbye was answered over from the cache,
and a peer's query of long ago silenced our own. Now the transport reads the kernel's arrival
time of datagrams that may be old (SIOCGSTAMPNS, while the socket was not read dry for
STAMP_AFTER), the Querier files one that waited longer than LATE_AFTER as of then, and a call
reads what is queued before its first look at the cache.

The Querier tests run on tests/fakes.py's FakeNet, with the wall clock the arrival times are
read against held still; the transport test opens a socket inside tests/netns-run.
"""

from __future__ import annotations

import select
import time
from ipaddress import IPv4Address

import pytest

import mdnsq.querier
import mdnsq.tasks
import mdnsq.transport
from mdnsq import Message, RecordType, UDPv4Transport
from mdnsq.records import Question
from mdnsq.writer import encode_message
from tests.fakes import FakeNet, a, fake_querier, response

WALL = 1_700_000_000.0  # time.time() as the Querier reads it in these tests
LO = ["lo"]


@pytest.fixture(autouse=True)
def still_wall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mdnsq.querier, "_wall", lambda: WALL)


# Other hosts' traffic queued with what a test looks at: more than a receive batch (64), so
# the backlog takes several passes to read (the review of the first version: past one batch,
# the rest was filed as news, and a call answered before reading it).
BEHIND = [0, 150]


def chatter(net: FakeNet, count: int, start: float, end: float) -> None:
    """``count`` responses about other hosts, arriving evenly from ``start`` to ``end``."""
    for i in range(count):
        at = start + (end - start) * i / max(1, count)
        net.transports[0].inject(response(a(f"n{i}.local", "192.0.2.99")), arrived=at)


@pytest.mark.parametrize("behind", BEHIND)
def test_a_record_whose_ttl_ran_out_in_the_socket_is_no_answer(net: FakeNet, behind: int) -> None:
    q = fake_querier(net)
    chatter(net, behind, WALL - 20, WALL - 7)
    net.transports[0].inject(response(a("gone.local", "192.0.2.50", ttl=2)), arrived=WALL - 6)
    chatter(net, behind, WALL - 5.5, WALL - 3)
    assert q.resolve_host("gone.local", timeout=0.5) == []
    assert q.stats()["filed_late"] == 1 + 2 * behind


def test_a_fresh_datagram_is_filed_as_news(net: FakeNet) -> None:
    """The guard: within LATE_AFTER a datagram is filed with the pass, the fast way."""
    q = fake_querier(net)
    net.transports[0].inject(response(a("here.local", "192.0.2.51", ttl=2)), arrived=WALL - 0.1)
    assert q.resolve_host("here.local", timeout=0.5) == [IPv4Address("192.0.2.51")]
    assert "filed_late" not in q.stats()


@pytest.mark.parametrize("behind", BEHIND)
def test_a_renumbered_hosts_old_address_is_flushed_by_the_new_one_queued_after_it(
    net: FakeNet, behind: int
) -> None:
    """Both announcements carry the cache-flush bit, three seconds apart (RFC 6762 §10.2):
    filed at one instant, the old address was "received within the last second" and stayed
    for its whole TTL, listed first."""
    q = fake_querier(net)
    transport = net.transports[0]
    transport.inject(response(a("moved.local", "192.0.2.60")), arrived=WALL - 8)
    chatter(net, behind, WALL - 7.5, WALL - 5.5)
    transport.inject(response(a("moved.local", "192.0.2.61")), arrived=WALL - 5)
    assert q.resolve_host("moved.local", timeout=0.5) == [IPv4Address("192.0.2.61")]
    (entry,) = q.cached_entries("moved.local", "A")
    assert entry.remaining(q.now()) == pytest.approx(115)  # TTL 120, five seconds in the socket


@pytest.mark.parametrize("behind", BEHIND)
def test_a_goodbye_queued_between_two_calls_is_read_before_the_cache_answers(
    net: FakeNet, behind: int
) -> None:
    q = fake_querier(net)
    transport = net.transports[0]
    transport.inject(response(a("printer.local", "192.0.2.1")))
    assert q.resolve_host("printer.local", timeout=0.5) == [IPv4Address("192.0.2.1")]
    net.clock.advance(10)  # nobody receives: the printer withdraws its address meanwhile
    chatter(net, behind, WALL - 9, WALL - 3)
    transport.inject(response(a("printer.local", "192.0.2.1", ttl=0)), arrived=WALL - 2.5)
    assert q.resolve_host("printer.local", timeout=0.5) == []


def test_a_peer_query_that_waited_in_the_socket_does_not_silence_ours(net: FakeNet) -> None:
    """A browse's first query waits 20-120 ms (RFC 6762 §5.2); a peer's query of the same
    question read meanwhile counts as ours (§7.3). One that came five seconds before the call
    says nothing of now."""
    q = fake_querier(net)
    asked = Question("_http._tcp.local", RecordType.PTR)
    query = encode_message(Message(questions=(asked,)))
    net.transports[0].inject(query, source=("192.0.2.9", 5353), to_group=True, arrived=WALL - 5)
    assert list(q.browse("_http._tcp", timeout=0.5)) == []
    assert any(asked in m.questions for m in net.transports[0].sent_messages())


def test_a_datagram_reports_when_it_arrived_not_when_it_was_read(
    private_netns: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linux turns on its arrival stamps a moment after the first socket asks (deferred
    work); until then SIOCGSTAMPNS gives the time of the read, 38 us after ``before_read``
    in one fresh-clone run. So a few datagrams may go by first (every one is asked about here:
    STAMP_AFTER < 0); a transport giving read times would never pass."""
    monkeypatch.setattr(mdnsq.transport, "STAMP_AFTER", -1.0)
    seen = []
    with UDPv4Transport(interfaces=LO) as receiver, UDPv4Transport(LO, port=0) as sender:
        for _ in range(100):
            before_send = time.time()
            sender.send(b"stamped")
            assert select.select([receiver.fileno()], [], [], 10)[0], "nothing arrived"
            before_read = time.time()
            got = receiver.receive(0)
            assert got is not None and got.data == b"stamped"
            seen.append(got.arrived - before_read)
            if got.arrived <= before_read:
                break
    assert before_send - 0.01 <= got.arrived <= before_read, seen


def test_a_socket_read_dry_moments_ago_reads_no_arrival_times(
    private_netns: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hot path pays nothing: once the socket was read dry within STAMP_AFTER (an hour
    here, so the machine's speed does not matter), what comes next is news and no time is
    asked of the kernel."""
    monkeypatch.setattr(mdnsq.transport, "STAMP_AFTER", 3600.0)
    with UDPv4Transport(interfaces=LO) as receiver, UDPv4Transport(LO, port=0) as sender:
        sender.send(b"first")
        assert select.select([receiver.fileno()], [], [], 10)[0], "nothing arrived"
        first = receiver.receive(0)  # never read dry before: its time is read
        assert receiver.receive(0) is None  # read dry now
        sender.send(b"second")
        assert select.select([receiver.fileno()], [], [], 10)[0], "nothing arrived"
        second = receiver.receive(0)
    assert first is not None and first.arrived > 0
    assert second is not None and second.data == b"second" and second.arrived == 0.0


def test_a_burst_that_waited_is_filed_in_one_go(
    net: FakeNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Work, not time: late datagrams within LATE_GROUP of each other share one filing. One
    filing each made a receiver that fell behind in a flood slower still."""
    q = fake_querier(net)
    filings: list[int] = []
    add_received = q.cache.add_received

    def counted(batch: object, now: float) -> int:
        items = list(batch)  # type: ignore[call-overload]
        filings.append(len(items))
        return add_received(items, now)

    monkeypatch.setattr(q.cache, "add_received", counted)
    chatter(net, 200, WALL - 10, WALL - 10 + 0.01)
    assert q.query("n0.local", "A", timeout=0.5)
    assert q.stats()["filed_late"] == 200
    assert [n for n in filings if n] == [200]  # the catch-up read them all: one filing
