"""Receive buffers that are allocated once and lent out, never re-allocated per packet.

Goals:
- A receive costs no large allocation: each buffer is a ``bytearray`` (9000 bytes by default,
  the largest mDNS packet RFC 6762 §17 allows) created once and reused.
- Nothing of one packet is visible to the next holder: on every exit path the bytes that were
  written are zeroed before the buffer goes back.
- A view kept after its block ended fails loudly instead of reading the next packet: the
  holder gets a fresh ``memoryview`` that is released on exit.
- Safe to share between threads; stats are exact, not sampled.

Plan: a LIFO free-list (``list``) under one ``threading.Lock``. Under load the pool grows (each
growth counted as a miss); on return at most ``max_idle`` idle buffers are kept and the rest are
dropped for the garbage collector (counted as ``trimmed``).

Costs per lease (CPython 3.11, measured in bench/bench_receive_alloc.py): one small lease
object, one memoryview with its managed buffer, and one int for the acquisition counter; no
buffer-sized temporary. Zeroing uses preallocated zero views of power-of-two lengths, so it
copies at most twice the bytes written (the whole buffer when the writer did not say how much
it wrote) and allocates nothing.
A generator ``@contextmanager`` was rejected: it costs a generator frame and more per use.

Views *derived* from the lent view (``buf[:n]``, ``buf.obj``, a ctypes ``from_buffer``) are
not revoked by the release; they are detected on exit instead (the buffer's reference count is
above its idle value), and then the buffer is wiped, dropped from the pool and BufferError is
raised. Code that slices must release its slices inside the block (the transport does).
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import NamedTuple

__all__ = ["BufferPool", "Lease", "PoolStats"]

DEFAULT_SIZE = 9000
_MIN_ZERO_TIER = 64


class PoolStats(NamedTuple):
    """A consistent snapshot of a pool's counters."""

    acquisitions: int
    hits: int
    misses: int
    in_use: int
    high_water: int
    idle: int
    trimmed: int
    size: int


class _Slot:
    """One pooled buffer, a long-lived view used only for zeroing, and its idle refcount."""

    __slots__ = ("baseline", "data", "view")

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)
        self.view = memoryview(self.data)
        self.baseline = sys.getrefcount(self.data)

    def escaped(self) -> bool:
        """True when something besides the pool still refers to the buffer.

        Each lease view has its own managed buffer, and every view sliced from it keeps that
        managed buffer (and so a reference to the bytearray) alive; so a view or ``.obj``
        kept past the block shows up here as a raised reference count.
        """
        return sys.getrefcount(self.data) != self.baseline


class Lease:
    """The context manager returned by :meth:`BufferPool.buffer`.

    Set ``written`` to the number of bytes written at the start of the buffer to zero only
    those on exit; left at -1 the whole buffer is zeroed.
    """

    __slots__ = ("_pool", "_slot", "_view", "written")

    def __init__(self, pool: BufferPool) -> None:
        self._pool = pool
        self._slot: _Slot | None = None
        self._view: memoryview | None = None
        self.written = -1

    def __enter__(self) -> memoryview:
        if self._slot is not None:
            raise RuntimeError("a Lease can be entered only once at a time")
        slot = self._pool._acquire()
        self._slot = slot
        view = memoryview(slot.data)  # its own managed buffer, so escapes are detectable
        self._view = view
        return view

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        slot = self._slot
        view = self._view
        if slot is None or view is None:
            return
        self._slot = None
        self._view = None
        written = self.written
        self.written = -1
        try:
            view.release()
        except BufferError:
            escaped = True  # something holds an export of the view itself
        else:
            del view
            escaped = slot.escaped()
        if escaped:
            # The next holder would share this memory: wipe it, let it go, and fail loudly.
            self._pool._zero(slot, -1)
            self._pool._discard()
            raise BufferError("a view of a pooled buffer was kept past its `with` block")
        self._pool._zero(slot, written)
        self._pool._release(slot)


class BufferPool:
    """A thread-safe pool of fixed-size receive buffers.

    ``size`` is each buffer's length; ``preallocate`` buffers are created up front; at most
    ``max_idle`` idle buffers are kept when load drops again.
    """

    def __init__(self, size: int = DEFAULT_SIZE, preallocate: int = 2, max_idle: int = 8) -> None:
        if size < 1:
            raise ValueError("buffer size must be positive")
        if preallocate < 0 or max_idle < 0:
            raise ValueError("preallocate and max_idle must not be negative")
        self._size = size
        self._max_idle = max_idle
        self._lock = threading.Lock()
        self._free: list[_Slot] = [_Slot(size) for _ in range(min(preallocate, max_idle))]
        self._acquisitions = 0
        self._misses = 0
        self._in_use = 0
        self._high_water = 0
        self._trimmed = 0
        # _tiers[n.bit_length()] = (length, zero view of that length) with length >= n+1,
        # so zeroing n written bytes needs neither a new slice object nor a temporary.
        zeros = memoryview(bytes(size))
        self._full_zeros = zeros
        tiers: list[tuple[int, memoryview]] = []
        for bits in range(size.bit_length() + 1):
            length = min(size, max(_MIN_ZERO_TIER, 1 << bits))
            tiers.append((length, zeros[:length]))
        self._tiers = tiers

    @property
    def size(self) -> int:
        return self._size

    def buffer(self) -> Lease:
        """``with pool.buffer() as buf:`` lends a buffer as a memoryview for the block."""
        return Lease(self)

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(
                acquisitions=self._acquisitions,
                hits=self._acquisitions - self._misses,
                misses=self._misses,
                in_use=self._in_use,
                high_water=self._high_water,
                idle=len(self._free),
                trimmed=self._trimmed,
                size=self._size,
            )

    def __repr__(self) -> str:
        s = self.stats()
        return f"<BufferPool size={s.size} in_use={s.in_use} idle={s.idle} misses={s.misses}>"

    # -- used by Lease ------------------------------------------------------------------------

    def _acquire(self) -> _Slot:
        with self._lock:
            self._acquisitions += 1
            self._in_use += 1
            if self._in_use > self._high_water:
                self._high_water = self._in_use
            if self._free:
                return self._free.pop()
            self._misses += 1
        # Grow outside the lock: allocating 9 KB must not stall other threads.
        return _Slot(self._size)

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            self._in_use -= 1
            if len(self._free) < self._max_idle:
                self._free.append(slot)
            else:
                self._trimmed += 1

    def _discard(self) -> None:
        with self._lock:
            self._in_use -= 1
            self._trimmed += 1

    def _zero(self, slot: _Slot, written: int) -> None:
        if written < 0 or written >= self._size:
            slot.view[:] = self._full_zeros
        elif written:
            length, zeros = self._tiers[written.bit_length()]
            slot.view[:length] = zeros
