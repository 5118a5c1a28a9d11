"""What goes on the wire when: packet sizes per address family (RFC 6762 §17) and one
question's schedule shared by the calls asking it (§5.2). Fake network and clock, no sockets.

Found in the fifteenth session's wire review (adr/005-querier.md §17): F3, query packets were
filled to 1460 bytes over IPv6 too (1508 with its headers: fragments on a 1500-byte link); F4,
two watches of one type kept two schedules, so the link saw the question twice as often.
"""

from __future__ import annotations

import itertools
import math
import socket
from ipaddress import IPv4Address

import pytest

import mdnsq.querier
from mdnsq import FLAG_TC, Message, Querier, RecordType
from mdnsq.instances import WatchTask
from mdnsq.names import name_key
from mdnsq.querier import MIN_WAIT
from mdnsq.records import Question
from mdnsq.tasks import HostTask, Task
from tests.fakes import IFINDEX, FakeNet, FakeTransport, a, ptr, response

HTTP = "_http._tcp.local"
# A 1500-byte MTU less the IP and UDP headers: 20 + 8 over IPv4, 40 + 8 over IPv6.
PAYLOAD_V4, PAYLOAD_V6 = 1472, 1452
CAPS = {socket.AF_INET: PAYLOAD_V4, socket.AF_INET6: PAYLOAD_V6}

pytestmark = pytest.mark.usefixtures("no_first_delay")


def querier(net: FakeNet, *transports: FakeTransport) -> Querier:
    return Querier(transports=list(transports), clock=net.clock, wait=net.wait)


def cache_pointers(q: Querier, net: FakeNet, count: int) -> list[str]:
    """``count`` PTR records of HTTP whose instance labels are 10 bytes: 25 bytes a known
    answer, so 57 of them after the question make 1459 bytes (the review's capture)."""
    targets = [f"inst-{i:05d}.{HTTP}" for i in range(count)]
    for target in targets:
        q.cache.add(ptr(HTTP, target), IFINDEX, net.clock())
    return targets


def check_split(transport: FakeTransport, cap: int, targets: list[str]) -> list[int]:
    """Every packet within ``cap``, the question in the first, every known answer once, TC
    on all but the last (§7.2); the packets' sizes."""
    sizes = [len(data) for data, _ in transport.sent]
    messages = transport.sent_messages()
    assert len(messages) > 1
    assert max(sizes) <= cap, sizes
    assert [bool(m.flags & FLAG_TC) for m in messages] == [True] * (len(messages) - 1) + [False]
    assert messages[0].questions == (Question(HTTP, RecordType.PTR),)
    assert all(m.questions == () for m in messages[1:])
    sent = [r.target for m in messages for r in m.answers]  # type: ignore[attr-defined]
    assert sorted(sent) == targets
    return sizes


# -- F3: packet size per family (RFC 6762 §17) -------------------------------------------------


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["v4", "v6"])
def test_known_answers_fill_packets_up_to_the_family_cap_and_no_further(
    net: FakeNet, family: int
) -> None:
    """1460 bytes of DNS over IPv6 is 1508 on the wire: fragments on a 1500-byte link, and
    multicast fragments get lost. The first packet was 1459 bytes over both families; now at
    most 1452 over IPv6 and 1472 over IPv4 (a 1500-byte MTU less IP and UDP headers)."""
    cap = CAPS[family]
    transport = net.transport(family=family)
    q = querier(net, transport)
    targets = cache_pointers(q, net, 150)
    q.query(HTTP, "PTR", timeout=0.5)
    sizes = check_split(transport, cap, targets)
    assert sizes[0] > cap - 25  # filled: not one more 25-byte known answer would fit
    assert q.stats()["known_answers_sent"] == 150


def test_each_family_gets_its_own_packets_and_equal_caps_share_them(
    net: FakeNet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One query over IPv4 and IPv6 at once ("any"): each transport's packets within its cap,
    each carrying every known answer; built once per cap, not once per transport."""
    v4, v4b, v6 = (net.transport(family=f) for f in (socket.AF_INET,) * 2 + (socket.AF_INET6,))
    q = querier(net, v4, v6, v4b)
    targets = cache_pointers(q, net, 150)
    builds: list[int] = []
    real = mdnsq.querier.build_queries

    def counting(*args: object, **kwargs: int) -> list[bytes]:
        builds.append(kwargs.get("max_size", 0))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mdnsq.querier, "build_queries", counting)
    q.query(HTTP, "PTR", timeout=0.5)
    assert sorted(builds) == [PAYLOAD_V6, PAYLOAD_V4]
    for transport in (v4, v4b, v6):
        check_split(transport, CAPS[transport.family], targets)
    assert v4.sent == v4b.sent
    assert len(v4.sent_messages()[0].answers) == 57  # 1459 bytes: fits IPv4, not IPv6
    assert len(v6.sent_messages()[0].answers) == 56
    stats = q.stats()  # one query, counted once
    assert stats["questions_sent"] == 1 and stats["known_answers_sent"] == 150


def test_a_transport_that_says_its_payload_limit_gets_packets_within_it(net: FakeNet) -> None:
    """`max_payload` on a transport (a link with a smaller MTU, say) wins over its family's
    default, questions included: a chunk of questions alone must fit too."""
    transport = net.transport(family=socket.AF_INET)
    transport.max_payload = 400  # type: ignore[attr-defined]
    q = querier(net, transport)
    targets = cache_pointers(q, net, 40)
    q.query(HTTP, "PTR", timeout=0.5)
    check_split(transport, 400, targets)
    transport.sent.clear()
    hosts = [f"a-host-name-of-some-length-{i:03d}.local" for i in range(30)]
    with q._lock:  # a batch of questions, as a browse resolving 16 instances asks
        q._transmit([Question(h, RecordType.A) for h in hosts], net.clock())
    assert len(transport.sent) > 1
    assert all(len(data) <= 400 for data, _ in transport.sent)
    assert [qu.name for m in transport.sent_messages() for qu in m.questions] == hosts
    assert "unsendable_questions" not in q.stats()


# -- F4: one schedule per question on the link (RFC 6762 §5.2) ---------------------------------


class Calls:
    """Several calls running at once on one Querier, driven from one thread: at each step,
    every call whose time came does what Querier._drive does for its own (expire, update,
    _send, next wake-up), and between steps the fake network delivers and the Querier files
    what arrived. Threads would do the same in an order no test can fix."""

    def __init__(self, q: Querier, net: FakeNet) -> None:
        self.q, self.net = q, net
        self.calls: dict[Task, list[float]] = {}  # task -> [deadline, next wake-up]

    def start(self, task: Task, timeout: float) -> Task:
        q, now = self.q, self.net.clock()
        with q._lock:
            task.epoch = q._epoch
            q._tasks.add(task)
            for name in task.protects:
                q._want(name)
        self.calls[task] = [now + timeout, now]
        return task

    def wake(self) -> float:
        return min((times[1] for times in self.calls.values()), default=math.inf)

    def run(self, until: float) -> None:
        """Step the calls until ``until`` (fake time)."""
        q, net = self.q, self.net
        while True:
            target = min(self.wake(), until)
            while net.clock() < target:
                # The fake wait jumps to the next delivery or to the target; what arrived
                # wakes every call, as the receiver's notify_all does.
                if q.process(target - net.clock()):
                    for times in self.calls.values():
                        times[1] = min(times[1], net.clock())
                    break
            now = net.clock()
            if self.wake() > now:
                return  # at ``until``, nobody due
            for task, times in list(self.calls.items()):
                if times[1] > now:
                    continue
                with q._lock:
                    q._changed({name_key(e.record.name) for e in q._cache.expire(now)})
                    task.update(q._cache, now)
                    if task.keep_changes:
                        q._apply_keep(task)
                    if task.done or now >= times[0]:
                        task.finish(q._cache, now)
                        q._retire(task)
                        del self.calls[task]
                        continue
                    next_send = q._send(task, now, times[0])
                    wake = min(times[0], next_send, task.wake_at(q._cache, now))
                    times[1] = max(wake, now + MIN_WAIT)

    def end(self) -> None:
        with self.q._lock:
            for task in self.calls:
                self.q._retire(task)
        self.calls.clear()


def question_times(net: FakeNet, start: float, name: str, rtype: RecordType) -> list[float]:
    """When the question (name, rtype) goes on the wire, from ``start`` (filled as it goes)."""
    times: list[float] = []

    def record(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if any(qu.name == name and qu.type == rtype for qu in message.questions):
            times.append(round(n.clock() - start, 3))

    net.responders.append(record)
    return times


def test_two_watches_of_one_type_keep_the_gaps_on_the_link_growing(net: FakeNet) -> None:
    """Two watches of _http._tcp, the second 1.5 s after the first, each doubled on its own:
    the link saw the PTR question at 0, 1, 2.5, 4.5, 7, 8.5, 15, 16.5, 31, 32.5 (gaps that
    shrink, 10 in 34 s against 6 for one watch; the review measured the same on a real link).
    A question sent by one call now counts as sent by every other call asking it: 0, 1, 2.5,
    4.5, 8.5, 16.5, 32.5."""
    q = querier(net, net.transport())
    start = net.clock()
    times = question_times(net, start, HTTP, RecordType.PTR)
    calls = Calls(q, net)
    calls.start(WatchTask(HTTP), 34)
    calls.run(start + 1.5)
    calls.start(WatchTask(HTTP), 34 - 1.5)
    calls.run(start + 34)
    calls.end()
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps)), times
    assert len(times) <= 7, times
    assert times[:2] == [0, 1]  # the first watch's own start is untouched


def test_a_call_started_while_another_asks_the_same_question_is_not_held_back(
    net: FakeNet,
) -> None:
    """The shared schedule delays nobody's answer: a second resolve of a name a first call is
    asking about gets the answer to the first's query, asks at once itself when the question
    was last sent over a second ago, and answers from the cache at once."""
    transport = net.transport()
    q = querier(net, transport)
    start = net.clock()
    host = "printer.local"
    times = question_times(net, start, host, RecordType.A)
    online = {"at": math.inf}

    def printer(message: Message, n: FakeNet, t: FakeTransport) -> None:
        asked = any(qu.name == host and qu.type == RecordType.A for qu in message.questions)
        if asked and n.clock() >= online["at"]:
            n.later(0.3, response(a(host, "192.0.2.7")), t)

    net.responders.append(printer)
    calls = Calls(q, net)
    first = calls.start(HostTask(host, q.settle), 30)
    calls.run(start + 2.5)
    assert times == [0, 1]  # nobody answered
    # Sent 1.5 s ago: the second call asks at once, and its answer comes 0.3 s later.
    online["at"] = start + 2.5
    assert q.resolve_host(host, timeout=5) == [IPv4Address("192.0.2.7")]
    assert times == [0, 1, 2.5]
    assert net.clock() - start == pytest.approx(2.5 + 0.3 + q.settle)
    # In the cache now: a third call answers at once, sending nothing.
    before = net.clock()
    assert q.resolve_host(host, timeout=5) == [IPv4Address("192.0.2.7")]
    assert net.clock() == before and times == [0, 1, 2.5]
    calls.run(start + 5)
    assert first.done and first.result == [IPv4Address("192.0.2.7")]  # type: ignore[attr-defined]
    calls.end()


def test_a_second_call_inside_the_suppression_second_gets_the_first_ones_answer(
    net: FakeNet,
) -> None:
    """Started 0.1 s after the first call's query, the second does not repeat it (SUPPRESS)
    and takes the answer that query brings."""
    transport = net.transport()
    q = querier(net, transport)
    start = net.clock()
    host = "printer.local"
    times = question_times(net, start, host, RecordType.A)

    def printer(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if any(qu.name == host and qu.type == RecordType.A for qu in message.questions):
            n.later(0.4, response(a(host, "192.0.2.7")), t)

    net.responders.append(printer)
    calls = Calls(q, net)
    calls.start(HostTask(host, q.settle), 30)
    calls.run(start + 0.1)
    assert q.resolve_host(host, timeout=5) == [IPv4Address("192.0.2.7")]
    assert times == [0]
    assert net.clock() - start == pytest.approx(0.4 + q.settle)
    calls.end()
