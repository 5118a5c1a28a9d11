"""Found in the thirteenth session's review of the receive and send path: each test fails on
the code before its fix. Sockets only inside the private namespace (``private_netns``)."""

from __future__ import annotations

import gc
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from mdnsq import BufferPool, NetworkError, Querier, UDPv4Transport
from mdnsq.interfaces import list_interfaces, select_interfaces
from tests import netlab

PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@pytest.fixture
def interrupts() -> Iterator[list[bool]]:
    """A timer that raises one KeyboardInterrupt at the first tick (every 0.3 ms) after
    ``armed[0]`` is set, as one Ctrl-C would (Python's own SIGINT handler raises it the same
    way, as a call returns): at a random point of the call. One per arming: a second one,
    landing in the clean-up after the first, is beyond what Python code can shield. Armed and
    disarmed by item assignment, which no handler can interrupt."""
    armed = [False]

    def handler(signum: int, frame: FrameType | None) -> None:
        if armed[0]:
            armed[0] = False
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    # No automatic collection meanwhile: an interrupt landing in a gc callback (Hypothesis
    # times collections with one) is swallowed there, as a warning about an ignored error.
    collecting = gc.isenabled()
    gc.disable()
    signal.setitimer(signal.ITIMER_REAL, 0.0003, 0.0003)
    try:
        yield armed
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, previous)
        if collecting:
            gc.enable()


# The interrupts fixture takes over ITIMER_REAL/SIGALRM, the alarm pytest-timeout's default (signal)
# method relies on: a hang here went uncaught. The thread method does not use it.
@pytest.mark.timeout(method="thread")
@pytest.mark.parametrize("method", ["receive", "receive_with", "receive_batch"])
def test_interrupts_anywhere_in_a_receive_leave_no_buffer_in_use(
    private_netns: None, interrupts: list[bool], method: str
) -> None:
    """A KeyboardInterrupt between taking the pool's lock and entering the try left the lock
    held (every later receive and stats() waited forever), and one between taking a buffer
    and giving it back left it counted in use for good."""
    pool = BufferPool(max_idle=2, preallocate=0)
    with UDPv4Transport(["lo"], port=0, pool=pool) as transport:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out: list[int] = []
        caught = 0
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                for _ in range(4):
                    sender.sendto(b"\0" * 300, ("127.0.0.1", transport.local_port))
                interrupts[0] = True
                if method == "receive":
                    transport.receive(0)
                elif method == "receive_with":
                    transport.receive_with(
                        lambda view, source, index, to_group, arrived: len(view), 0
                    )
                else:
                    out.clear()
                    transport.receive_batch(
                        lambda view, source, index, to_group, arrived: len(view), 64, out
                    )
                interrupts[0] = False
            except KeyboardInterrupt:
                interrupts[0] = False
                caught += 1
        sender.close()
    assert caught > 50  # the interrupts did land
    free = pool._lock.acquire(timeout=1)  # (a repr of the pool would wait for the lock)
    if free:
        pool._lock.release()
    assert free, "the pool's lock was left held"
    assert pool.stats().in_use == 0


@pytest.mark.timeout(method="thread")  # the interrupts fixture owns the alarm (see above)
def test_a_call_after_an_interrupted_one_meets_its_deadline(
    private_netns: None, interrupts: list[bool]
) -> None:
    """The Querier's lock noted its owner in Python after acquiring: an interrupt in between
    left it held by nobody, and the next call waited forever whatever its timeout."""
    q = Querier(interfaces=["lo"], ip_version="v4")
    if True:  # not `with`: closing waits for the lock, and a failure must not hang the run
        stop = threading.Event()

        def chatter() -> None:  # responses keep arriving, so the receive path runs
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            packet = bytes.fromhex("000084000000000100000000") + b"\x01x\x05local\x00"
            packet += bytes.fromhex("00010001000000780004c0000201")
            while not stop.is_set():
                sender.sendto(packet, ("224.0.0.251", 5353))
                time.sleep(0.0005)
            sender.close()

        thread = threading.Thread(target=chatter, daemon=True)
        thread.start()
        caught = 0
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                interrupts[0] = True
                q.query("nobody.local", "A", timeout=0.02)
                interrupts[0] = False
            except KeyboardInterrupt:
                interrupts[0] = False
                caught += 1
        stop.set()
        thread.join()
        assert caught > 50
        # Nobody is left marked as receiving (then no call would receive again), no call
        # left registered.
        assert q._leader == 0 and not q._tasks
        outcome: list[Any] = []
        waiter = threading.Thread(target=lambda: outcome.append(q.resolve_host("no.local", 0.3)))
        waiter.start()
        waiter.join(10)
        assert outcome == [[]], "the call after the interrupts did not return"
        q.close()


def test_one_shot_ports_are_not_shared(private_netns: None) -> None:
    """With SO_REUSEADDR on an ephemeral port the kernel handed two one-shot transports the
    same port, and the unicast replies to one went to the other."""
    old = PORT_RANGE.read_text()
    PORT_RANGE.write_text("40000 40001")
    try:
        with UDPv4Transport(["lo"], port=0) as a, UDPv4Transport(["lo"], port=0) as b:
            assert {a.local_port, b.local_port} == {40000, 40001}
            with pytest.raises(NetworkError):  # the range is used up: no third one
                UDPv4Transport(["lo"], port=0)
    finally:
        PORT_RANGE.write_text(old)


def test_an_address_with_a_label_belongs_to_its_device(private_netns: None) -> None:
    """`ip addr add ... label v13a:1` made a second interface of the same index: selected
    twice, and on a re-listing (by index) the alias replaced the device, whose own subnet then
    counted as off-link."""
    netlab.ip("link", "add", "v13a", "type", "veth", "peer", "name", "v13b")
    try:
        netlab.ip("addr", "add", "192.0.2.10/24", "dev", "v13a")
        netlab.ip("addr", "add", "198.51.100.10/24", "dev", "v13a", "label", "v13a:1")
        netlab.ip("link", "set", "v13a", "up")
        netlab.ip("link", "set", "v13b", "up")
        index = socket.if_nametoindex("v13a")
        [link] = [i for i in list_interfaces() if i.index == index]
        assert link.name == "v13a"
        assert {str(a) for a in link.addresses if a.version == 4} == {
            "192.0.2.10/24",
            "198.51.100.10/24",
        }
        assert [i.index for i in select_interfaces(None, socket.AF_INET)].count(index) == 1
        with UDPv4Transport(["v13a"]) as transport:
            assert transport.stats().join_errors == 0
            assert transport.follow_interfaces() is False  # nothing changed
    finally:
        netlab.ip("link", "del", "v13a")
