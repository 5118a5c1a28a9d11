"""UDP transports over lo (IPv4) and the lab bridge (IPv4 and IPv6), against plain peer sockets;
and what a Querier on those sockets makes of unicast answers (RFC 6762 §11).

Every test here opens sockets, so each takes ``private_netns`` or ``lab``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mdnsq import (
    BufferPool,
    Datagram,
    NetworkError,
    Querier,
    RecordType,
    UDPv4Transport,
    UDPv6Transport,
    parse_message,
)
from mdnsq.interfaces import Interface
from mdnsq.transport import _MAX_LATE_READS, DEFAULT_RECEIVE_BUFFER
from tests import netlab
from tests.fakes import a, response
from tests.waiting import poll_until, wait_for

GROUP4 = ("224.0.0.251", 5353)
GROUP6 = "ff02::fb"
WAIT = 3.0  # generous upper bound for a packet that is already on its way; never reached on success


def unstamped(got: Datagram | None) -> Datagram | None:
    """A received datagram without its arrival time, which no test can write down."""
    return None if got is None else got._replace(arrived=0.0)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def fds_opened_since(before: set[str]) -> set[str]:
    """Descriptors open now that were not before (unrelated ones closing meanwhile, e.g. by
    the garbage collector finishing an earlier test's socket, do not count)."""
    return open_fds() - before


def lo_index() -> int:
    return socket.if_nametoindex("lo")


# -- IPv4 over lo -------------------------------------------------------------------------------


@pytest.fixture
def lo4(private_netns: None) -> Iterator[UDPv4Transport]:
    with UDPv4Transport(interfaces=["lo"]) as transport:
        yield transport


def test_send_and_receive_over_lo_reports_source_and_interface(lo4: UDPv4Transport) -> None:
    with UDPv4Transport(interfaces=["lo"], port=0) as sender:
        sender.send(b"hello over lo")
        sender_port = sender.local_port
    assert sender_port not in (0, 5353)
    got = lo4.receive(WAIT)
    assert unstamped(got) == Datagram(
        b"hello over lo", ("127.0.0.1", sender_port), lo_index(), to_group=True
    )
    assert isinstance(got.data, bytes)
    assert lo4.stats().received == 1


def test_timeout_returns_none_and_zero_timeout_polls(lo4: UDPv4Transport) -> None:
    assert lo4.receive(0) is None
    assert lo4.receive(0.05) is None
    assert lo4.receive_with(lambda view, source, index, to_group, arrived: 1, 0.01) is None
    lo4.send(b"queued")
    assert lo4.receive(WAIT) is not None  # our own multicast, looped back
    assert lo4.fileno() >= 0
    lo4.send(b"queued again")
    readable = select.select([lo4.fileno()], [], [], WAIT)[0]  # a caller's own select loop
    assert readable == [lo4.fileno()]
    assert unstamped(lo4.receive(0)) == Datagram(
        b"queued again", ("127.0.0.1", 5353), lo_index(), to_group=True
    )


@pytest.mark.parametrize("timeout", [1e7, float("inf")])
def test_a_timeout_longer_than_poll_takes_waits_for_the_datagram(
    lo4: UDPv4Transport, timeout: float
) -> None:
    """poll() takes at most 2^31 ms (24.8 days): a longer timeout raised OverflowError, and
    an infinite one could not be rounded to milliseconds at all."""
    main_native_id = threading.get_native_id()
    blocked_when_sent = []
    with UDPv4Transport(interfaces=["lo"], port=0) as sender:

        def send_once_blocked() -> None:
            # Only a datagram that arrives while receive waits in poll() exercises the long
            # wait: one already queued is read before any poll(). Sent in any case, so a
            # receive that never reached poll() still returns.
            blocked_when_sent.append(
                poll_until(lambda: blocked_in_poll(main_native_id), WAIT, step=0.001)
            )
            sender.send(b"late")

        later = threading.Thread(target=send_once_blocked)
        later.start()
        try:
            got = lo4.receive(timeout)
        finally:
            later.join()
    assert blocked_when_sent == [True]
    assert got is not None and got.data == b"late"


def test_counters_stay_exact_past_the_small_int_range(private_netns: None) -> None:
    pool = BufferPool(size=512)
    with UDPv4Transport(interfaces=["lo"], pool=pool) as t:
        for i in range(600):
            t.send(b"n%d" % i)
            got = t.receive(WAIT) if i % 2 else t.receive_with(lambda v, s, x, g, a: bytes(v), WAIT)
            assert got is not None
        assert t.stats().received == 600
        assert t.stats().sent == 600
        assert pool.stats().acquisitions == 600
        assert pool.stats().in_use == 0


def test_two_threads_can_receive_on_one_transport(private_netns: None) -> None:
    payloads = {b"packet %03d " % i + bytes([i % 251]) * (i % 200) for i in range(200)}
    got: list[bytes] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    all_in = threading.Event()  # set by whoever takes the last datagram
    give_up = time.monotonic() + 10 * WAIT  # a hang guard for a lost datagram, never reached
    with UDPv4Transport(interfaces=["lo"]) as t:

        def take(use_view: bool) -> None:
            try:
                receive_all(use_view)
            except BaseException as exc:  # reported below, not lost in the thread
                failures.append(exc)

        def receive_all(use_view: bool) -> None:
            # Short waits only so that each thread sees the other take the last datagram: the
            # count, not an idle spell, says when they are done.
            while not all_in.is_set() and time.monotonic() < give_up:
                if use_view:
                    data = t.receive_with(
                        lambda view, source, index, to_group, arrived: view.tobytes(), 0.05
                    )
                else:
                    d = t.receive(0.05)
                    data = None if d is None else d.data
                if data is None:
                    continue
                with lock:
                    got.append(data)
                    if len(got) >= len(payloads):
                        all_in.set()

        threads = [threading.Thread(target=take, args=(flag,)) for flag in (True, False)]
        for th in threads:
            th.start()
        for payload in sorted(payloads):
            t.send(payload)
        for th in threads:
            th.join()
    assert failures == []
    assert sorted(got) == sorted(payloads)  # each datagram once, intact


def test_two_transports_on_5353_both_receive_multicast(private_netns: None) -> None:
    with (
        UDPv4Transport(interfaces=["lo"]) as a,
        UDPv4Transport(interfaces=["lo"]) as b,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
    ):
        peer.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        peer.sendto(b"to everyone", GROUP4)
        got_a, got_b = a.receive(WAIT), b.receive(WAIT)
    assert got_a is not None and got_b is not None
    assert got_a.data == got_b.data == b"to everyone"


def test_receive_with_lends_an_exact_view_and_releases_it(lo4: UDPv4Transport) -> None:
    lo4.send(b"zero copy")
    kept: list[memoryview] = []

    def handler(
        view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
    ) -> tuple[bytes, int]:
        kept.append(view)
        return view.tobytes(), index

    assert lo4.receive_with(handler, WAIT) == (b"zero copy", lo_index())
    with pytest.raises(ValueError, match="released"):
        kept[0].tobytes()


@pytest.fixture
def lo_one_buffer(private_netns: None) -> Iterator[tuple[UDPv4Transport, BufferPool]]:
    """A transport on lo whose pool keeps one small buffer: a wipe, a drop or a reuse shows."""
    pool = BufferPool(size=512, preallocate=1, max_idle=1)
    with UDPv4Transport(interfaces=["lo"], pool=pool) as t:
        yield t, pool


def test_a_handler_keeping_a_slice_is_caught(
    lo_one_buffer: tuple[UDPv4Transport, BufferPool],
) -> None:
    t, pool = lo_one_buffer
    t.send(b"keep me")
    kept: list[memoryview] = []
    with pytest.raises(BufferError):
        t.receive_with(lambda view, source, index, to_group, arrived: kept.append(view[:4]), WAIT)
    assert kept[0].tobytes() == bytes(4)  # wiped, and the buffer left the pool
    assert (pool.stats().trimmed, pool.stats().in_use) == (1, 0)
    t.send(b"next")
    assert unstamped(t.receive(WAIT)) == Datagram(
        b"next", ("127.0.0.1", 5353), lo_index(), to_group=True
    )
    assert kept[0].tobytes() == bytes(4)


def test_handler_exception_propagates_and_buffer_returns(
    lo_one_buffer: tuple[UDPv4Transport, BufferPool],
) -> None:
    t, pool = lo_one_buffer
    t.send(b"boom")

    def handler(
        view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
    ) -> None:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError):
        t.receive_with(handler, WAIT)
    s = pool.stats()
    assert (s.in_use, s.idle, s.misses) == (0, 1, 0)
    t.send(b"ok")
    with pool.buffer() as buf:  # the packet bytes were wiped on the way back
        assert buf.tobytes() == bytes(512)
    assert unstamped(t.receive(WAIT)) == Datagram(
        b"ok", ("127.0.0.1", 5353), lo_index(), to_group=True
    )


def _queue(t: UDPv4Transport, *payloads: bytes) -> None:
    """Send to ourselves; lo delivers each one during its sendto, in order (the select only
    guards against that changing)."""
    for payload in payloads:
        t.send(payload)
    assert select.select([t.fileno()], [], [], WAIT)[0]


def test_receive_batch_handles_what_is_queued_in_order_up_to_its_limit(
    lo_one_buffer: tuple[UDPv4Transport, BufferPool],
) -> None:
    t, pool = lo_one_buffer
    _queue(t, b"one", b"two" * 100, b"three", b"x" * 600, b"four", b"five")
    lengths: list[int] = []

    def handler(
        view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
    ) -> bytes:
        lengths.append(len(view))
        assert source[1] == 5353 and index == lo_index()
        return view.tobytes()

    out: list[bytes] = []
    t.receive_batch(handler, 3, out)
    assert out == [b"one", b"two" * 100, b"three"]
    assert lengths == [3, 300, 5]  # each view exactly its datagram
    # One buffer for the batch, zeroed as far as the batch wrote (300 bytes) and returned.
    s = pool.stats()
    assert (s.acquisitions, s.in_use, s.misses) == (1, 0, 0)
    with pool.buffer() as buf:
        assert buf.tobytes() == bytes(512)
    t.receive_batch(handler, 10, out)  # the oversize one is dropped on the way
    assert out[3:] == [b"four", b"five"]
    assert t.stats().dropped_oversize == 1
    with pool.buffer() as buf:  # it had filled the whole buffer: wiped too
        assert buf.tobytes() == bytes(512)
    t.receive_batch(handler, 10, out)  # empty: returns at once, adds nothing
    assert len(out) == 5 and pool.stats().in_use == 0


def test_receive_batch_catches_a_kept_view_and_keeps_what_came_before(
    lo_one_buffer: tuple[UDPv4Transport, BufferPool],
) -> None:
    t, pool = lo_one_buffer
    _queue(t, b"fine", b"keep me", b"after")
    kept: list[memoryview] = []

    def handler(
        view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
    ) -> bytes:
        if view.tobytes() == b"keep me":
            kept.append(view[:4])
        return view.tobytes()

    out: list[bytes] = []
    with pytest.raises(BufferError):
        t.receive_batch(handler, 10, out)
    assert out == [b"fine", b"keep me"]
    assert kept[0].tobytes() == bytes(4)  # wiped before "after" could be read into it
    assert (pool.stats().trimmed, pool.stats().in_use) == (1, 0)
    assert unstamped(t.receive(WAIT)) == Datagram(
        b"after", ("127.0.0.1", 5353), lo_index(), to_group=True
    )


def test_receive_batch_handler_exception_propagates_and_buffer_returns(
    lo_one_buffer: tuple[UDPv4Transport, BufferPool],
) -> None:
    t, pool = lo_one_buffer
    _queue(t, b"fine", b"boom", b"after")

    def handler(
        view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
    ) -> bytes:
        if view.tobytes() == b"boom":
            raise RuntimeError("handler failed")
        return view.tobytes()

    out: list[bytes] = []
    with pytest.raises(RuntimeError):
        t.receive_batch(handler, 10, out)
    assert out == [b"fine"]
    s = pool.stats()
    assert (s.in_use, s.idle, s.trimmed) == (0, 1, 0)
    with pool.buffer() as buf:
        assert buf.tobytes() == bytes(512)
    assert unstamped(t.receive(WAIT)) == Datagram(
        b"after", ("127.0.0.1", 5353), lo_index(), to_group=True
    )


def test_oversize_datagram_is_counted_and_dropped(private_netns: None) -> None:
    pool = BufferPool(size=512)
    with UDPv4Transport(interfaces=["lo"], pool=pool) as t:
        t.send(b"x" * 513)
        t.send(b"fits")
        got = t.receive(WAIT)
        assert got is not None and got.data == b"fits"
        assert t.stats().dropped_oversize == 1
        assert t.stats().received == 1
        t.send(b"y" * 600)
        assert t.receive(0.1) is None  # only the oversize one arrived: dropped, then timeout
        assert t.stats().dropped_oversize == 2
        t.send(b"z" * 700)
        t.send(b"tiny")
        assert (
            t.receive_with(lambda view, source, index, to_group, arrived: view.tobytes(), WAIT)
            == b"tiny"
        )
        # The dropped datagram filled the whole buffer; none of it may reach the next holder.
        with pool.buffer() as buf:
            assert buf.tobytes() == bytes(512)


def _burst_survivors(transport: UDPv4Transport, count: int) -> int:
    """Queue ``count`` 1000-byte datagrams while nobody reads, then count what was kept."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for _ in range(count):
            sender.sendto(b"x" * 1000, ("127.0.0.1", transport.local_port))  # lo: delivered now
    kept = 0
    while transport.receive(0) is not None:
        kept += 1
    return kept


def test_the_receive_buffer_holds_a_burst_the_default_drops(private_netns: None) -> None:
    """A burst arriving while the process is off the CPU (a flood, a busy machine) is kept
    whole in the 1 MiB buffer asked for by default, where the system default drops part."""
    with UDPv4Transport(interfaces=["lo"], port=0, receive_buffer=None) as plain:
        default_size = plain.receive_buffer_size
        count = 600  # ~1.2 MiB of queued memory (each 1000-byte datagram costs ~2 KiB)
        kept_plain = _burst_survivors(plain, count)
    with UDPv4Transport(interfaces=["lo"], port=0) as grown:
        if grown.receive_buffer_size < 4 * default_size:
            pytest.skip(f"net.core.rmem_max caps SO_RCVBUF at {grown.receive_buffer_size}")
        assert grown.receive_buffer_size >= DEFAULT_RECEIVE_BUFFER  # Linux reports it doubled
        kept_grown = _burst_survivors(grown, count)
    assert kept_plain < count
    assert kept_grown == count


def test_the_receive_buffer_is_never_shrunk(private_netns: None) -> None:
    with UDPv4Transport(interfaces=["lo"], port=0, receive_buffer=None) as plain:
        default_size = plain.receive_buffer_size
    with UDPv4Transport(interfaces=["lo"], port=0, receive_buffer=1024) as small:
        assert small.receive_buffer_size == default_size
    with pytest.raises(ValueError, match="receive_buffer"):
        UDPv4Transport(interfaces=["lo"], port=0, receive_buffer=0)


def test_dropped_datagrams_cannot_hold_receive_past_its_deadline(private_netns: None) -> None:
    pool = BufferPool(size=64)
    with UDPv4Transport(interfaces=["lo"], pool=pool) as t:
        for _ in range(100):
            t.send(b"o" * 100)
        select.select([t.fileno()], [], [], WAIT)
        # Past the deadline it reads on only while datagrams are queued, and at most 64 more.
        assert t.receive(0) is None
        assert t.stats().dropped_oversize == 1 + _MAX_LATE_READS


def test_a_dropped_datagram_does_not_make_timeout_zero_look_empty(private_netns: None) -> None:
    pool = BufferPool(size=64)
    with UDPv4Transport(interfaces=["lo"], pool=pool) as t:
        t.send(b"o" * 100)
        t.send(b"fits")
        select.select([t.fileno()], [], [], WAIT)
        assert (
            t.receive_with(lambda view, source, index, to_group, arrived: view.tobytes(), 0)
            == b"fits"
        )
        assert t.stats().dropped_oversize == 1


class FlakySocket:
    """The transport's socket with the next recvmsg_into calls failing as scripted."""

    def __init__(self, real: socket.socket, failures: list[OSError]) -> None:
        self.real, self.failures = real, failures

    def recvmsg_into(self, *args: object) -> object:
        if self.failures:
            raise self.failures.pop(0)
        return self.real.recvmsg_into(*args)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_transient_receive_errors_are_counted_and_waited_through(lo4: UDPv4Transport) -> None:
    real = lo4._sock
    failures = [OSError(errno.ENOBUFS, "no buffer space"), OSError(errno.ECONNREFUSED, "icmp")]
    lo4._sock = FlakySocket(real, failures)  # type: ignore[assignment]
    try:
        lo4.send(b"after the errors")
        assert unstamped(lo4.receive(WAIT)) == Datagram(
            b"after the errors", ("127.0.0.1", 5353), lo_index(), to_group=True
        )
        assert lo4.stats().receive_errors == 2
        lo4._sock.failures = [OSError(errno.ENOBUFS, "again")] * 100  # type: ignore[attr-defined]
        with pytest.raises(NetworkError):  # endless: give up rather than spin
            lo4.receive(WAIT)
    finally:
        lo4._sock = real


def test_other_receive_errors_raise_network_error(lo4: UDPv4Transport) -> None:
    real = lo4._sock
    lo4._sock = FlakySocket(real, [OSError(errno.EIO, "i/o error")])  # type: ignore[assignment]
    try:
        with pytest.raises(NetworkError) as caught:
            lo4.receive(WAIT)
        assert caught.value.errno == errno.EIO
        assert isinstance(caught.value, OSError)
    finally:
        lo4._sock = real


def test_one_shot_transport_gets_the_unicast_reply(lo4: UDPv4Transport) -> None:
    with UDPv4Transport(port=0, interfaces=["lo"]) as one_shot:
        one_shot.send(b"question")
        query = lo4.receive(WAIT)
        assert query is not None and query.data == b"question"
        assert query.source[1] != 5353
        lo4.send(b"answer", dest=query.source)
        assert unstamped(one_shot.receive(WAIT)) == Datagram(
            b"answer", ("127.0.0.1", 5353), lo_index()
        )
        assert one_shot.stats().sent == 1


def test_a_signal_during_the_wait_does_not_end_it(lo4: UDPv4Transport) -> None:
    """EINTR: the wait resumes after the handler, and sees what the handler sent."""
    import threading

    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    handled = []
    blocked_when_signalled = []
    main_native_id = threading.get_native_id()

    def on_signal(signum: int, frame: object) -> None:
        handled.append(signum)
        sender.sendto(b"sent from a signal handler", ("127.0.0.1", 5353))

    def poke() -> None:
        # Signal only once the receive is inside poll(), or EINTR is never exercised.
        blocked_when_signalled.append(
            poll_until(lambda: blocked_in_poll(main_native_id), WAIT, step=0.001)
        )
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)

    # SIGUSR1 from a helper thread, not SIGALRM: pytest-timeout owns the interval timer.
    previous = signal.signal(signal.SIGUSR1, on_signal)
    poker = threading.Thread(target=poke)
    try:
        poker.start()
        got = lo4.receive(10.0)
    finally:
        poker.join()
        signal.signal(signal.SIGUSR1, previous)
        sender.close()
    assert blocked_when_signalled == [True]
    assert handled == [signal.SIGUSR1]
    assert got is not None and got.data == b"sent from a signal handler"


def blocked_in_poll(thread_id: int) -> bool:
    with open(f"/proc/self/task/{thread_id}/wchan") as wchan:
        return "poll" in wchan.read()


def test_close_wakes_a_receive_blocked_in_another_thread(private_netns: None) -> None:
    outcome = _close_under_waiters(1)
    assert len(outcome) == 1 and isinstance(outcome[0], NetworkError)


def _in_thread(receive: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``receive`` in a daemon thread (a failure must not hang pytest); what it returned
    or raised lands in the list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(receive())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


class _ClosingSocket:
    """The transport's socket, but its next read first runs ``then`` (a close() from another
    thread landing at that moment) and finds the socket empty: the interleaving of a close()
    between a receive's check of ``closed`` and its poll(), made certain."""

    def __init__(self, sock: socket.socket, then: Callable[[], None]) -> None:
        self._sock = sock
        self._then = then

    def recvmsg_into(self, *args: Any) -> Any:
        self._then()
        raise BlockingIOError

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@pytest.mark.parametrize("waited_before", [True, False])
def test_close_just_before_a_wait_whose_descriptors_are_reused_does_not_hang(
    private_netns: None, waited_before: bool
) -> None:
    """A close() landing after a receive without a timeout found the socket empty, but before
    it polled. A thread that had waited before polled the descriptor numbers it had registered,
    which the process had already given to a new socket pair with nothing to read, and blocked
    for good; a thread waiting for the first time raised ValueError (descriptor -1)."""
    t = UDPv4Transport(interfaces=["lo"])
    reused: list[socket.socket] = []

    def close_and_reuse() -> None:
        t.close()
        for _ in range(3):  # the lowest free numbers: the socket's and the wake-up pair's
            reused.extend(socket.socketpair())

    def receive() -> object:
        if waited_before:  # this thread's poller then holds the descriptor numbers
            assert t.receive(0.001) is None
        t._sock = _ClosingSocket(t._sock, close_and_reuse)  # type: ignore[assignment]
        return t.receive(None)

    receiver, outcome = _in_thread(receive)
    receiver.join(WAIT)
    hung = receiver.is_alive()
    for sock in reused:
        with contextlib.suppress(OSError):
            sock.send(b"x")  # frees a receiver blocked on them, so the test can end
        sock.close()
    receiver.join(WAIT)
    assert not hung
    assert len(outcome) == 1 and isinstance(outcome[0], NetworkError)


def _close_under_waiters(waiting: int) -> list[object]:
    """Close a transport while ``waiting`` threads are blocked in its poll(); what each got."""
    t = UDPv4Transport(interfaces=["lo"])
    native_ids: list[int] = []

    def wait_forever() -> object:
        native_ids.append(threading.get_native_id())
        return t.receive(None)

    started = [_in_thread(wait_forever) for _ in range(waiting)]
    waiters = [waiter for waiter, _ in started]
    assert poll_until(
        lambda: len(native_ids) == waiting and all(blocked_in_poll(i) for i in native_ids),
        WAIT,
        0.001,
    )
    t.close()
    for waiter in waiters:
        waiter.join(WAIT)
        assert not waiter.is_alive()
    return [got for _, outcome in started for got in outcome]


def test_close_while_threads_wait_frees_every_descriptor_once_they_leave(
    private_netns: None,
) -> None:
    """The wake-up descriptor stays open while a receiver is inside poll(), and is closed by
    the last one out: none is left behind, none is closed under a poll."""
    before = open_fds()
    for _ in range(20):
        outcome = _close_under_waiters(3)
        assert len(outcome) == 3 and all(isinstance(o, NetworkError) for o in outcome)
    assert fds_opened_since(before) == set()


class _ClosingPollers:
    """The transport's per-thread pollers, but reading them runs close() first: a signal
    handler's close() landing on the waiting thread itself, inside the wait's locked step."""

    def __init__(self, transport: UDPv4Transport) -> None:
        self._transport = transport

    def __getattr__(self, name: str) -> Any:
        self._transport.close()
        raise AttributeError(name)


def test_close_from_a_signal_handler_on_the_waiting_thread_does_not_deadlock(
    private_netns: None,
) -> None:
    """close() takes the lock the wait holds while it checks and registers; a plain lock made
    a handler's close() on that thread wait for itself forever."""
    t = UDPv4Transport(interfaces=["lo"])
    t._pollers = _ClosingPollers(t)  # type: ignore[assignment]
    receiver, outcome = _in_thread(lambda: t.receive(1.0))
    receiver.join(WAIT)
    assert not receiver.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], NetworkError)
    assert t.closed


def test_close_is_idempotent_and_leaves_no_fd(private_netns: None) -> None:
    before = open_fds()
    transports = [
        UDPv4Transport(interfaces=["lo"]),
        UDPv4Transport(interfaces=["lo"], port=0),
    ]
    assert len(open_fds() - before) >= 2
    for t in transports:
        t.close()
        t.close()
    assert fds_opened_since(before) == set()
    with UDPv4Transport(interfaces=["lo"]) as t:
        pass
    assert t.closed
    assert fds_opened_since(before) == set()
    with pytest.raises(NetworkError):
        t.receive(0)
    with pytest.raises(NetworkError):
        t.send(b"x")


def test_a_transport_dropped_without_close_leaves_no_fd(private_netns: None) -> None:
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # "unclosed socket": expected here
        gc.collect()  # earlier tests' garbage must not close its descriptors during ours
        before = open_fds()
        t = UDPv4Transport(interfaces=["lo"])
        t.send(b"x")
        assert t.receive(1.0) is not None
        del t
        gc.collect()
    assert fds_opened_since(before) == set()


def test_a_failed_constructor_leaves_no_fd(private_netns: None) -> None:
    before = open_fds()
    with pytest.raises(NetworkError):
        UDPv4Transport(interfaces=["no-such-if"])
    with pytest.raises(NetworkError, match="link-local"):
        UDPv6Transport()  # only lo here: IPv6 mDNS has nowhere to go
    with pytest.raises(ValueError):
        UDPv6Transport(interfaces=["lo"], port=70000)
    assert fds_opened_since(before) == set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("", 5353))  # no SO_REUSEADDR: nobody may share the port
        before = open_fds()
        with pytest.raises(NetworkError, match="cannot open"):
            UDPv4Transport(interfaces=["lo"])
        assert fds_opened_since(before) == set()


def test_join_error_on_one_interface_is_skipped(
    lab: netlab.Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab.add_host(1)
    real_join = UDPv4Transport._join

    def join(self: UDPv4Transport, interface: Interface) -> None:
        if interface.name == "lo":
            raise OSError(99, "simulated join failure")
        real_join(self, interface)

    monkeypatch.setattr(UDPv4Transport, "_join", join)
    with UDPv4Transport(interfaces=["lo", netlab.BRIDGE]) as t:
        assert [i.name for i in t.interfaces] == [netlab.BRIDGE]
        assert t.stats().join_errors == 1
    with pytest.raises(NetworkError, match="any selected"):
        UDPv4Transport(interfaces=["lo"])


# -- the lab bridge: IPv4 and IPv6 against a peer socket in host h1 ------------------------------


def peer6(host: str) -> socket.socket:
    with netlab.in_netns(host):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", 5353))
    index = netlab.ifindex("eth0", host)
    mreq = socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", index)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    s.settimeout(WAIT)
    return s


def test_ipv4_over_the_bridge_both_ways(lab: netlab.Lab) -> None:
    host = lab.add_host(1)
    with netlab.peer_v4(host, WAIT) as peer, UDPv4Transport(interfaces=[netlab.BRIDGE]) as t:
        peer.sendto(b"from h1", GROUP4)
        got = t.receive(WAIT)
        assert unstamped(got) == Datagram(
            b"from h1", ("192.0.2.1", 5353), lab.bridge_index, to_group=True
        )
        t.send(b"from the querier")
        data, source = peer.recvfrom(9000)
        assert (data, source) == (b"from the querier", ("192.0.2.254", 5353))


def test_ipv6_over_the_bridge_both_ways(lab: netlab.Lab) -> None:
    host = lab.add_host(1)
    peer_ll = netlab.link_local("eth0", host)
    with peer6(host) as peer, UDPv6Transport(interfaces=[netlab.BRIDGE]) as t:
        assert t.interfaces[0].name == netlab.BRIDGE
        peer.sendto(b"from h1 over v6", (GROUP6, 5353))
        got = t.receive(WAIT)
        # Link-local source without scope: the interface index is the scope.
        assert unstamped(got) == Datagram(
            b"from h1 over v6", (peer_ll, 5353), lab.bridge_index, to_group=True
        )
        t.send(b"v6 query")
        data, source = peer.recvfrom(9000)
        assert data == b"v6 query"
        assert source[0].split("%")[0] == netlab.link_local(netlab.BRIDGE)
        # From 5353, as over IPv4: a query from another port is a legacy one (RFC 6762 §6.7),
        # answered with unicast and capped TTLs, and the group's goodbyes are never heard.
        assert source[1] == 5353
        t.send(b"v6 unicast", dest=got.source, interface=got.interface)
        data, source = peer.recvfrom(9000)
        assert data == b"v6 unicast"
        assert source[1] == 5353


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_the_handler_is_told_whether_a_datagram_was_sent_to_the_group(
    lab: netlab.Lab, family: int
) -> None:
    """Fifteenth session, finding 3: RFC 6762 §11 takes what was sent to 224.0.0.251 /
    ff02::fb as from the link, whatever its source. The destination comes with the arrival
    interface in the PKTINFO the transport already reads."""
    host = lab.add_host(1)
    if family == socket.AF_INET:
        peer, kind = netlab.peer_v4(host, WAIT), UDPv4Transport
        group: tuple[Any, ...] = GROUP4
        ours: tuple[Any, ...] = (netlab.BRIDGE_V4, 5353)
    else:
        peer, kind = peer6(host), UDPv6Transport
        scope = netlab.ifindex("eth0", host)
        group = (GROUP6, 5353, 0, scope)
        ours = (netlab.link_local(netlab.BRIDGE), 5353, 0, scope)
    with peer, kind(interfaces=[netlab.BRIDGE]) as t:
        peer.sendto(b"to the group", group)
        peer.sendto(b"to us", ours)

        def seen(
            view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
        ) -> Any:
            return view.tobytes(), to_group

        got = [t.receive_with(seen, WAIT), t.receive_with(seen, WAIT)]
        assert got == [(b"to the group", True), (b"to us", False)]
        peer.sendto(b"copied", group)
        copy = t.receive(WAIT)
        assert copy is not None and copy.to_group


def test_ipv6_oversize_is_dropped(lab: netlab.Lab) -> None:
    host = lab.add_host(1)
    pool = BufferPool(size=256)
    with peer6(host) as peer, UDPv6Transport(interfaces=[netlab.BRIDGE], pool=pool) as t:
        peer.sendto(b"z" * 1000, (GROUP6, 5353))
        peer.sendto(b"small", (GROUP6, 5353))
        got = t.receive(WAIT)
        assert got is not None and got.data == b"small"
        assert t.stats().dropped_oversize == 1


def test_only_selected_interfaces_are_heard(lab: netlab.Lab) -> None:
    lab.add_host(1)
    with (
        UDPv4Transport(interfaces=["lo"]) as on_lo,
        UDPv4Transport(interfaces=[netlab.BRIDGE]) as on_bridge,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
    ):
        peer.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        peer.sendto(b"multicast on lo", GROUP4)
        assert on_lo.receive(WAIT) is not None
        # on_lo's membership on lo must not leak lo's multicast into on_bridge's socket
        # (Linux IP_MULTICAST_ALL), so the kernel never delivers it at all.
        assert on_bridge.receive(0.2) is None
        assert on_bridge.stats().dropped_interface == 0
    with UDPv4Transport(interfaces=[netlab.BRIDGE]) as on_bridge:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.sendto(b"unicast via lo", ("127.0.0.1", 5353))
        assert on_bridge.receive(0.2) is None
        assert on_bridge.stats().dropped_interface == 1


def test_a_datagram_dropped_for_its_interface_leaves_nothing_behind(lab: netlab.Lab) -> None:
    host = lab.add_host(1)
    pool = BufferPool(size=2048, preallocate=1, max_idle=1)
    with (
        netlab.peer_v4(host, WAIT) as peer,
        UDPv4Transport(interfaces=[netlab.BRIDGE], pool=pool) as t,
    ):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as local:
            local.sendto(b"u" * 1000, ("127.0.0.1", 5353))  # via lo: read, then dropped
        select.select([t.fileno()], [], [], WAIT)
        peer.sendto(b"from h1", GROUP4)
        got = t.receive(WAIT)
        assert got is not None and got.data == b"from h1"
        assert t.stats().dropped_interface == 1
        # The dropped datagram was written further into the buffer than the one returned.
        with pool.buffer() as buf:
            assert buf.tobytes() == bytes(2048)


def test_multicast_goes_out_on_every_selected_interface(lab: netlab.Lab) -> None:
    host = lab.add_host(1)
    with netlab.peer_v4(host, WAIT) as peer, UDPv4Transport(interfaces=["lo", netlab.BRIDGE]) as t:
        t.send(b"everywhere")
        # Our own copies come back through multicast loop, one per outgoing interface.
        arrivals = {t.receive(WAIT), t.receive(WAIT)}
        assert {a.interface for a in arrivals if a} == {lo_index(), lab.bridge_index}
        assert peer.recvfrom(9000)[0] == b"everywhere"
        assert t.stats().sent == 2
        t.send(b"bridge only", interface=lab.bridge_index)
        assert peer.recvfrom(9000)[0] == b"bridge only"
        with pytest.raises(NetworkError):
            t.send(b"x", interface=9999)


def test_a_send_error_on_one_interface_does_not_stop_the_others(
    lab: netlab.Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = lab.add_host(1)
    real = UDPv4Transport._set_multicast_if

    def set_if(self: UDPv4Transport, interface: Interface) -> None:
        if interface.name == "lo":
            raise OSError(101, "simulated: network unreachable")
        real(self, interface)

    monkeypatch.setattr(UDPv4Transport, "_set_multicast_if", set_if)
    with netlab.peer_v4(host, WAIT) as peer, UDPv4Transport(interfaces=["lo", netlab.BRIDGE]) as t:
        t.send(b"still sent")
        assert peer.recvfrom(9000)[0] == b"still sent"
        assert (t.stats().sent, t.stats().send_errors) == (1, 1)
        with pytest.raises(NetworkError, match="every interface"):
            t.send(b"nowhere", interface=lo_index())


def test_ipv6_close_leaves_no_fd(lab: netlab.Lab) -> None:
    lab.add_host(1)
    before = open_fds()
    t = UDPv6Transport(interfaces=[netlab.BRIDGE])
    t.close()
    t.close()
    assert fds_opened_since(before) == set()


# -- TTL / hop limit 255 on everything sent (RFC 6762 §11) ----------------------------------------

IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # linux/in.h; Python 3.11 does not export it


def receive_with_hop_limit(peer: socket.socket, level: int, kind: int) -> tuple[bytes, int]:
    """The next datagram ``peer`` receives, with the IPv4 TTL / IPv6 hop limit it arrived with
    (ancillary data: the peer turned on IP_RECVTTL / IPV6_RECVHOPLIMIT)."""
    data, ancdata, _, _ = peer.recvmsg(9000, socket.CMSG_SPACE(4))
    limits = [
        struct.unpack("@i", value[:4])[0] for lv, kd, value in ancdata if (lv, kd) == (level, kind)
    ]
    assert len(limits) == 1, ancdata
    return data, limits[0]


@pytest.mark.parametrize("port", [5353, 0], ids=["port-5353", "one-shot"])
def test_ipv4_sends_with_ttl_255_as_a_peer_receives_it(lab: netlab.Lab, port: int) -> None:
    """RFC 6762 §11: everything mDNS sends, unicast too, leaves with TTL 255, so that a receiver
    may drop packets with a lower one as coming from off the link. Linux sends multicast with
    TTL 1 unless told, so a lost setsockopt would make every query look forged to such a
    receiver, and no other test would notice (peers here accept any TTL). The bridge does not
    route, so the TTL arrives as it was sent."""
    host = lab.add_host(1)
    with (
        netlab.peer_v4(host, WAIT) as peer,
        UDPv4Transport(interfaces=[netlab.BRIDGE], port=port) as t,
    ):
        peer.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        assert t._sock.getsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL) == 255
        assert t._sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 255
        t.send(b"to the group")
        got = receive_with_hop_limit(peer, socket.IPPROTO_IP, socket.IP_TTL)
        assert got == (b"to the group", 255)
        t.send(b"to the peer", dest=("192.0.2.1", 5353))
        got = receive_with_hop_limit(peer, socket.IPPROTO_IP, socket.IP_TTL)
        assert got == (b"to the peer", 255)


@pytest.mark.parametrize("port", [5353, 0], ids=["port-5353", "one-shot"])
def test_ipv6_sends_with_hop_limit_255_as_a_peer_receives_it(lab: netlab.Lab, port: int) -> None:
    """The IPv6 twin of the TTL test: multicast hop limit (default 1) and unicast hop limit."""
    host = lab.add_host(1)
    peer_ll = netlab.link_local("eth0", host)
    with peer6(host) as peer, UDPv6Transport(interfaces=[netlab.BRIDGE], port=port) as t:
        peer.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        assert t._sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS) == 255
        assert t._sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS) == 255
        t.send(b"to the group")
        got = receive_with_hop_limit(peer, socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)
        assert got == (b"to the group", 255)
        t.send(b"to the peer", dest=(peer_ll, 5353), interface=lab.bridge_index)
        got = receive_with_hop_limit(peer, socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT)
        assert got == (b"to the peer", 255)


# -- a Querier on port 5353 and unicast answers (RFC 6762 §5.4, §6, §11) ------------------------


def test_a_querier_on_5353_takes_a_unicast_answer_from_its_link_and_drops_one_from_off_it(
    lab: netlab.Lab,
) -> None:
    """A responder may answer a query from port 5353 by unicast to that port (a QU question, or
    its own choice, §6). The socket must hear unicast to its address, not only the group (bound
    to 224.0.0.251 it would not), and the Querier must take such an answer from port 5353 as
    it takes a multicast one. But a unicast response from a source off the link is a packet
    from a router's far side, and is dropped (§11); the IPv4 on-link test is by subnet."""
    host = lab.add_host(1, extra_v4=["203.0.113.5/32"])  # an address off the bridge's subnet
    with (
        netlab.peer_v4(host, WAIT) as responder,
        Querier(interfaces=[netlab.BRIDGE], ip_version="v4") as q,
    ):
        q.send_query("u.local", "A")
        while True:  # the query, by multicast (a stray earlier packet would be skipped)
            data, asker = responder.recvfrom(9000)
            if ("u.local", RecordType.A) in [
                (x.name, x.type) for x in parse_message(data).questions
            ]:
                break
        assert asker == (netlab.BRIDGE_V4, 5353)
        responder.sendto(response(a("u.local", "192.0.2.1")), asker)  # unicast, from 5353
        found = q.resolve_host("u.local", timeout=WAIT)
        assert [str(address) for address in found] == ["192.0.2.1"]
        stats = q.stats()
        assert stats["accepted"] == 1
        assert "dropped_off_link" not in stats and "dropped_source_port" not in stats

        with netlab.in_netns(host):
            far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with far:
            far.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # beside the responder
            far.bind(("203.0.113.5", 5353))
            far.sendto(response(a("far.local", "203.0.113.5")), asker)

            def handled() -> bool:  # dropped as off-link, or (wrongly) taken
                q.process(0.1)
                now = q.stats()
                return now.get("dropped_off_link", 0) + now["accepted"] > 1

            wait_for(handled, WAIT, "the off-link datagram never reached the Querier")
        stats = q.stats()
        assert q.cached("far.local", "A") == []
        assert stats["dropped_off_link"] == 1
        assert stats["accepted"] == 1


def test_a_querier_on_a_link_numbered_outside_its_subnets_hears_its_multicast_answers(
    lab: netlab.Lab,
) -> None:
    """Fifteenth session, finding 3: an interface with a /32 address and the LAN behind an
    on-link route (`ip addr add X/32; ip route add LAN dev eth`). Every IPv4 source was off
    its subnets, so every answer was dropped; sent to the group, an answer is from the link
    (§11). A unicast one from the same host is still checked, and dropped."""
    host = lab.add_host(1)
    netlab.ip("addr", "del", f"{netlab.BRIDGE_V4}/24", "dev", netlab.BRIDGE)
    netlab.ip("addr", "add", f"{netlab.BRIDGE_V4}/32", "dev", netlab.BRIDGE)
    netlab.ip("route", "add", "192.0.2.0/24", "dev", netlab.BRIDGE)
    with (
        netlab.peer_v4(host, WAIT) as responder,
        Querier(interfaces=[netlab.BRIDGE], ip_version="v4") as q,
    ):
        responder.sendto(response(a("slash32.local", "192.0.2.1")), GROUP4)
        found = q.query("slash32.local", "A", timeout=WAIT)
        assert [str(r.address) for r in found] == ["192.0.2.1"]  # type: ignore[attr-defined]
        assert "dropped_off_link" not in q.stats()
        responder.sendto(response(a("unicast.local", "192.0.2.1")), (netlab.BRIDGE_V4, 5353))
        wait_for(lambda: q.process(0.1) + q.stats().get("dropped_off_link", 0) > 0)
        assert q.cached("unicast.local", "A") == []
