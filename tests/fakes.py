"""A network that exists only in memory, for driving a Querier without sockets or sleeping.

- FakeClock: monotonic seconds that move only when told (or when FakeNet.wait moves them).
- FakeTransport: implements the Transport contract. Packets a test injects are queued; its
  fileno() is a real pipe that is readable while the queue is not empty, so a Querier can also
  select() on it for real (the thread tests do that, with the real clock).
- FakeNet: a schedule of future deliveries plus responders. Passed to Querier(wait=net.wait),
  its wait() jumps the clock to the next delivery or to the end of the timeout.
- Helpers to build responses (encode_message) and to read what the Querier sent (parse_message).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from types import TracebackType
from typing import Any, TypeVar

import pytest

import mdnsq.querier
from mdnsq import Querier
from mdnsq.interfaces import Interface
from mdnsq.parser import parse_message
from mdnsq.records import (
    FLAG_AA,
    FLAG_QR,
    AAAARecord,
    ARecord,
    Message,
    PTRRecord,
    Record,
    SRVRecord,
    TXTRecord,
)
from mdnsq.transport import Datagram, Handler, TransportStats
from mdnsq.writer import encode_message

T = TypeVar("T")

IFINDEX = 2
LAN = Interface(
    name="fake0",
    index=IFINDEX,
    addresses=(IPv4Interface("192.0.2.254/24"), IPv6Interface("fe80::254/64")),
)
PEER = ("192.0.2.1", 5353)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _close_fds(*fds: int) -> None:
    for fd in fds:
        os.close(fd)


class FakeTransport:
    """Transport contract in memory. ``sent`` records (data, dest) of every send."""

    def __init__(
        self,
        family: int = socket.AF_INET,
        interfaces: Iterable[Interface] = (LAN,),
        on_send: Callable[[FakeTransport, bytes, tuple[str, int] | None], None] | None = None,
    ) -> None:
        self.family = family
        self.interfaces = list(interfaces)
        self.on_send = on_send
        self.sent: list[tuple[bytes, tuple[str, int] | None]] = []
        # The interface index of each send (None: every interface), and of the one on_send
        # is told about.
        self.sent_links: list[int | None] = []
        self.link: int | None = None
        self._queue: deque[tuple[bytes, tuple[str, int], int, bool]] = deque()
        self._lock = threading.Lock()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        # Closed with the transport if a test drops it without close(): 33 such pipes piled up
        # in a full run, and holes among them broke the descriptor-limit test's assumption
        # that every descriptor above the lowest free one is free.
        self._closer = weakref.finalize(self, _close_fds, self._r, self._w)
        self.closed = False
        self.received = 0

    # test side
    def inject(
        self,
        data: bytes,
        source: tuple[str, int] = PEER,
        interface: int = IFINDEX,
        to_group: bool = False,
        arrived: float = 0.0,
    ) -> None:
        """Queue a datagram; ``to_group``: sent to the mDNS group (by default it is taken as
        unicast, as a real transport takes one whose destination it was not told); ``arrived``:
        when the kernel had it, in time.time() seconds (0.0: unknown, taken as just now)."""
        with self._lock:
            self._queue.append((data, source, interface, to_group, arrived))
            os.write(self._w, b"p")

    def sent_messages(self) -> list[Message]:
        return [parse_message(data) for data, _ in self.sent]

    # Transport contract
    def send(
        self, data: bytes, dest: tuple[str, int] | None = None, interface: int | None = None
    ) -> None:
        if self.closed:
            raise OSError("closed")
        self.sent.append((data, dest))
        self.sent_links.append(interface)
        if self.on_send is not None:
            self.link = interface
            self.on_send(self, data, dest)

    def _pop(self) -> tuple[bytes, tuple[str, int], int, bool, float] | None:
        with self._lock:
            if not self._queue:
                return None
            os.read(self._r, 1)
            self.received += 1
            return self._queue.popleft()

    def receive(self, timeout: float | None) -> Datagram | None:
        got = self._pop()
        return None if got is None else Datagram(*got)

    def receive_with(
        self,
        handler: Handler[T],
        timeout: float | None,
    ) -> T | None:
        got = self._pop()
        if got is None:
            return None
        data, source, interface, to_group, arrived = got
        buf = bytearray(data)  # like the pool: a mutable buffer the handler must not keep
        view = memoryview(buf)
        try:
            return handler(view, source, interface, to_group, arrived)
        finally:
            view.release()
            buf[:] = b"\xff" * len(buf)

    def receive_batch(
        self,
        handler: Handler[T],
        limit: int,
        out: list[T],
    ) -> None:
        # In terms of receive_with, so a subclass that fails receive_with fails batches too.
        for _ in range(limit):
            item = self.receive_with(handler, 0)
            if item is None:
                return
            out.append(item)

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._closer()

    def stats(self) -> TransportStats:
        return TransportStats(
            received=self.received,
            dropped_oversize=0,
            dropped_interface=0,
            receive_errors=0,
            sent=len(self.sent),
            send_errors=0,
            join_errors=0,
        )

    def __enter__(self) -> FakeTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


Responder = Callable[[Message, "FakeNet", FakeTransport], None]


class FakeNet:
    """Scheduled deliveries and responders on a FakeClock; ``wait`` is the Querier's wait hook."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self.transports: list[FakeTransport] = []
        self.responders: list[Responder] = []
        self._schedule: list[tuple[float, int, FakeTransport, bytes, tuple[str, int], int]] = []
        self._seq = itertools.count()
        self.waits: list[float | None] = []

    def transport(self, **kwargs: Any) -> FakeTransport:
        transport = FakeTransport(on_send=self._on_send, **kwargs)
        self.transports.append(transport)
        return transport

    def _on_send(self, transport: FakeTransport, data: bytes, dest: tuple[str, int] | None) -> None:
        message = parse_message(data)
        for responder in self.responders:
            responder(message, self, transport)

    def later(
        self,
        delay: float,
        data: bytes,
        transport: FakeTransport | None = None,
        source: tuple[str, int] = PEER,
        interface: int = IFINDEX,
        to_group: bool = False,
    ) -> None:
        target = transport or self.transports[0]
        when = self.clock.now + delay
        item = (when, next(self._seq), target, data, source, interface, to_group)
        heapq.heappush(self._schedule, item)

    def _deliver_due(self) -> None:
        while self._schedule and self._schedule[0][0] <= self.clock.now:
            _, _, transport, data, source, interface, to_group = heapq.heappop(self._schedule)
            transport.inject(data, source, interface, to_group=to_group)

    def wait(self, timeout: float | None) -> None:
        self.waits.append(timeout)
        self._deliver_due()
        if any(t._queue for t in self.transports):
            return
        end = float("inf") if timeout is None else self.clock.now + timeout
        if self._schedule and self._schedule[0][0] <= end:
            self.clock.now = max(self.clock.now, self._schedule[0][0])
            self._deliver_due()
            return
        if end == float("inf"):
            raise AssertionError("the Querier would wait forever: nothing is scheduled")
        self.clock.now = end


def fake_querier(net: FakeNet, **kwargs: Any) -> Querier:
    """A Querier on ``net``: its first transport (made if it has none), clock and wait."""
    transport = net.transports[0] if net.transports else net.transport()
    return Querier(transports=[transport], clock=net.clock, wait=net.wait, **kwargs)


@pytest.fixture
def net() -> Iterator[FakeNet]:
    """A FakeNet whose transports are closed after the test (conftest.py shares it)."""
    the_net = FakeNet()
    yield the_net
    for transport in the_net.transports:
        transport.close()


@pytest.fixture
def no_first_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A series' first query at once, without its random 20-120 ms start (RFC 6762 §5.2), so
    times count from it exactly; a test of the delay puts it back. Opt in per module with
    ``pytestmark = pytest.mark.usefixtures("no_first_delay")``."""
    monkeypatch.setattr(mdnsq.querier, "FIRST_DELAY", (0.0, 0.0))


# -- building packets ------------------------------------------------------------------------


def response(
    *answers: Record,
    additionals: Iterable[Record] = (),
    flags: int = FLAG_QR | FLAG_AA,
    id: int = 0,
) -> bytes:
    return encode_message(Message(id=id, flags=flags, answers=answers, additionals=additionals))


def a(name: str, address: str, ttl: int = 120, flush: bool = True) -> ARecord:
    return ARecord(name=name, ttl=ttl, address=IPv4Address(address), cache_flush=flush)


def aaaa(name: str, address: str, ttl: int = 120, flush: bool = True) -> AAAARecord:
    return AAAARecord(name=name, ttl=ttl, address=IPv6Address(address), cache_flush=flush)


def ptr(name: str, target: str, ttl: int = 4500, flush: bool = False) -> PTRRecord:
    return PTRRecord(name=name, ttl=ttl, target=target, cache_flush=flush)


def srv(name: str, target: str, port: int, ttl: int = 120, flush: bool = True) -> SRVRecord:
    return SRVRecord(
        name=name, ttl=ttl, priority=0, weight=0, port=port, target=target, cache_flush=flush
    )


def txt(name: str, *strings: bytes, ttl: int = 4500, flush: bool = True) -> TXTRecord:
    return TXTRecord(name=name, ttl=ttl, strings=strings, cache_flush=flush)


def service_records(
    instance: str, stype: str, host: str, port: int, address: str, ttl: int = 120
) -> tuple[PTRRecord, SRVRecord, TXTRecord, ARecord]:
    """PTR, SRV, TXT and A of one instance (names already escaped/normalized)."""
    name = f"{instance}.{stype}"
    return (
        ptr(stype, name, ttl=4500),
        srv(name, host, port, ttl=ttl),
        txt(name, b"path=/", ttl=4500),
        a(host, address, ttl=ttl),
    )


def questions_of(messages: Iterable[Message]) -> list[tuple[str, int]]:
    return [(q.name, int(q.type)) for m in messages for q in m.questions]


def close_all(transports: Iterable[FakeTransport]) -> None:
    for transport in transports:
        with contextlib.suppress(OSError):
            transport.close()
