"""Receive buffers that are allocated once and lent out, never re-allocated per packet.

Goals:
- A receive costs no large allocation: each buffer is a ``bytearray`` (9000 bytes by default,
  the largest mDNS packet RFC 6762 §17 allows) created once and reused.
- Nothing of one packet is visible to the next holder: on every exit path the bytes that were
  written are zeroed before the buffer goes back.
- A view used after its block ended fails loudly instead of reading the next packet: the
  holder gets a fresh ``memoryview`` that is released on exit, and any view *derived* from it
  (``buf[:n]``, a ctypes ``from_buffer``) or ``buf.obj`` still alive at exit is detected: the
  buffer is then wiped, never lent again, and BufferError is raised.
- Safe to share between threads; stats are exact, not sampled.

Plan: a LIFO free-list (a ``deque``) under one lock (``OwnedLock``). Under load the pool grows
(each growth counted as a miss); on return at most ``max_idle`` idle buffers are kept and the
rest are dropped for the garbage collector (counted as ``trimmed``).

Escape detection without per-lease allocations: every lent view is a slice of one long-lived
``lend`` view per buffer, so all of them share its managed buffer (CPython's ``managedbuffer``),
which counts the views not yet released. After the lent view is released that count must be
back to one (``lend`` itself); a kept ``buf.obj`` shows up on the bytearray's reference count.
The count is read in place through ctypes after a self-check at buffer creation; where that
check fails (not CPython, other object layouts) each loan gets its own
``memoryview(bytearray)`` instead (one more allocation), which lets go of the bytearray when
released, so the bytearray's reference count alone polices escapes.

Costs per lease (CPython 3.11, bench/memray_receive.py): the lease object and one memoryview;
no buffer-sized temporary; counters stay in cached small ints. Zeroing copies from preallocated
zero bytearrays of power-of-two lengths: at most twice the bytes written (the whole buffer when
the writer did not say) and no allocation. A generator ``@contextmanager`` was rejected: a
generator and its frame per use.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple

from mdnsq.errors import InvalidArgument
from mdnsq.locks import OwnedLock

__all__ = ["BufferPool", "Lease", "PoolStats"]

DEFAULT_SIZE = 9000
_MIN_ZERO_TIER = 64


class PoolStats(NamedTuple):
    """A consistent snapshot of a pool's counters.

    - ``acquisitions``: loans so far; ``hits`` were served from an idle buffer, ``misses``
      grew the pool by one buffer.
    - ``in_use``: buffers lent now; ``high_water``: the most ever lent at once.
    - ``idle``: buffers waiting to be lent; ``trimmed``: buffers let go on their way back (more
      than ``max_idle`` idle, or a view of them escaped its block).
    - ``lost``: buffers freed while still lent, i.e. never given back: a holder dropped its
      buffer (an interrupt between the pool and its holder, or a receive path that forgot to
      return it). ``in_use`` cannot show these, as a lost buffer stops counting as lent when it
      is freed; a non-zero ``lost`` is the trace they leave. Counted by the buffer's weak
      reference callback, so it costs nothing per loan.
    - ``size``: each buffer's length in bytes.
    """

    acquisitions: int
    hits: int
    misses: int
    in_use: int
    high_water: int
    idle: int
    trimmed: int
    size: int
    lost: int


def _exports_offset() -> int:
    # struct _PyManagedBufferObject { PyObject_HEAD; int flags; Py_ssize_t exports; ... }
    offset = object.__basicsize__ + ctypes.sizeof(ctypes.c_int)
    align = ctypes.alignment(ctypes.c_ssize_t)
    return (offset + align - 1) // align * align


_EXPORTS_OFFSET = _exports_offset()


def _export_counter(view: memoryview) -> ctypes.c_ssize_t | None:
    """A live view of the count of unreleased views sharing ``view``'s buffer, or None.

    CPython shares one managedbuffer between a memoryview and all its slices and counts the
    unreleased ones in it. Reading that count is the only allocation-free way to see whether
    a slice outlived its block, so it is read in place through ctypes; the layout is checked
    on the spot (one view, then two, then one again) and anything unexpected - another
    interpreter, a free-threaded build - returns None and the pool uses its fallback.
    The caller keeps ``view`` alive, and with it the managed buffer the count lives in.
    """
    referents = gc.get_referents(view)
    if len(referents) != 1 or type(referents[0]).__name__ != "managedbuffer":
        return None
    mbuf = referents[0]
    cell = ctypes.c_ssize_t.from_address(id(mbuf) + _EXPORTS_OFFSET)
    if cell.value != 1:
        return None
    probe = view[:1]
    seen_two = cell.value == 2
    probe.release()
    if not (seen_two and cell.value == 1):
        return None
    return cell


_TIERS: dict[int, list[tuple[int, bytearray]]] = {}
_TIERS_LOCK = threading.Lock()


def _zero_tiers(size: int) -> list[tuple[int, bytearray]]:
    """Zero sources for a buffer size, shared by every pool of that size (they are only ever
    read), one bytearray per distinct length: ~25 KB for 9000-byte buffers."""
    with _TIERS_LOCK:
        tiers = _TIERS.get(size)
        if tiers is None:
            by_length: dict[int, bytearray] = {}
            tiers = []
            for bits in range(size.bit_length() + 1):
                length = min(size, max(_MIN_ZERO_TIER, 1 << bits))
                tiers.append((length, by_length.setdefault(length, bytearray(length))))
            _TIERS[size] = tiers
        return tiers


class _Losses:
    """The callback of every pooled buffer's weak reference: when a buffer still counted as lent
    is freed, it was lost on its way back; it is taken off the lent set and counted.

    Kept apart from the pool so the callback does not keep the pool alive (the pool holds its
    idle buffers, which hold their weak references, which hold the callback). It runs only
    when a buffer dies (trimmed, dropped, lost, or with its pool), never per loan.
    """

    __slots__ = ("lent", "lock", "lost")

    def __init__(self, lent: set[weakref.ref[_Slot]], lock: OwnedLock) -> None:
        self.lent = lent
        self.lock = lock
        self.lost = 0

    def __call__(self, ref: weakref.ref[_Slot]) -> None:
        with self.lock:
            if ref in self.lent:
                self.lent.discard(ref)
                self.lost += 1


class _Slot:
    """One pooled buffer with its long-lived views and what it looks like when idle."""

    __slots__ = ("__weakref__", "data", "data_refs", "exports", "lend", "ref")

    def __init__(self, size: int, lost: Callable[[weakref.ref[_Slot]], None] | None = None) -> None:
        # Its own weak reference, made once: the pool counts a lent buffer by it (no
        # allocation per loan), and ``lost`` hears when a buffer dies without coming back.
        self.ref = weakref.ref(self, lost)
        hash(self.ref)  # now, while alive: a dead reference never hashed cannot be
        self.data = bytearray(size)
        # Every lent view is a slice of this one; never released, it keeps alive the managed
        # buffer whose count ``exports`` reads.
        self.lend = memoryview(self.data)
        self.exports = _export_counter(self.lend)
        self.data_refs = sys.getrefcount(self.data)

    def lend_view(self, length: int) -> memoryview:
        if self.exports is None:
            # Fallback: a managed buffer per loan; it lets go of the bytearray when its last
            # view is released, so the bytearray's reference count alone polices escapes.
            return memoryview(self.data)[:length]
        return self.lend[:length]

    def escaped(self) -> bool:
        """After the lent view was released: does anything else still see the buffer?"""
        if sys.getrefcount(self.data) != self.data_refs:
            return True  # a kept ``.obj``, or (fallback) a view's managed buffer
        return self.exports is not None and self.exports.value != 1  # 1: self.lend itself


def _let_go(slot: _Slot, view: memoryview) -> bool:
    """Release a lent view; True if anything still sees the buffer (it escaped)."""
    try:
        view.release()
    except BufferError:
        return True  # something holds an export of the view itself
    return slot.escaped()


class Lease:
    """One loan of a pooled buffer: the context manager returned by :meth:`BufferPool.buffer`.

    ``with pool.buffer() as buf`` is the way to use it. ``acquire()`` / ``release()`` are the
    same two steps for a hot loop: a ``with`` statement on a Python object costs two
    bound-method allocations per use, which this pair avoids.

    Set ``written`` to how many bytes were written at the start of the buffer to zero only
    those on release; left at -1 the whole buffer is zeroed.
    """

    __slots__ = ("_pool", "_slot", "_view", "written")

    def __init__(self, pool: BufferPool) -> None:
        self._pool = pool
        self._slot: _Slot | None = None
        self._view: memoryview | None = None
        self.written = -1

    def acquire(self) -> memoryview:
        if self._slot is not None:
            raise RuntimeError("a Lease can be entered only once at a time")
        slot = self._pool._acquire()
        self._slot = slot
        view = slot.lend_view(self._pool._size)
        self._view = view
        return view

    def release(self, failing: bool = False) -> None:
        """Give the buffer back; ``failing``: the block is raising (see BufferPool._reclaim)."""
        slot = self._slot
        view = self._view
        if slot is None or view is None:
            return
        self._slot = None
        self._view = None
        written = self.written
        self.written = -1
        self._pool._reclaim(slot, view, written, failing)

    def __enter__(self) -> memoryview:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release(failing=exc_type is not None)


class BufferPool:
    """A thread-safe pool of fixed-size receive buffers.

    ``size`` is each buffer's length; ``preallocate`` buffers are created up front; at most
    ``max_idle`` idle buffers are kept when load drops again.
    """

    def __init__(self, size: int = DEFAULT_SIZE, preallocate: int = 2, max_idle: int = 8) -> None:
        if size < 1:
            raise InvalidArgument("buffer size must be positive")
        if preallocate < 0 or max_idle < 0:
            raise InvalidArgument("preallocate and max_idle must not be negative")
        self._size = size
        self._max_idle = max_idle
        self._lock = OwnedLock()
        # A deque, not a list: a list's pop/append pair reallocates its item array when the
        # length crosses a resize threshold; a deque's fixed blocks never do at these sizes.
        # The buffers lent now, by their weak references: in_use is how many. A buffer lost
        # on its way between the pool and its holder (a KeyboardInterrupt as _acquire returned,
        # or as a finally block began to give it back: Python cannot shield those steps) is
        # freed by its reference count, and its reference's callback takes it off the count.
        # A plain counter stayed off for good.
        # Such a loss is counted as ``lost`` (see PoolStats).
        self._lent: set[weakref.ref[_Slot]] = set()
        self._losses = _Losses(self._lent, self._lock)
        self._free: deque[_Slot] = deque(
            _Slot(size, self._losses) for _ in range(min(preallocate, max_idle))
        )
        # Counted as 256 * _acq_blocks + _acq_small: the small part stays among CPython's
        # cached small ints, so counting allocates an int once per 256 acquisitions instead
        # of on every one (see adr/002).
        self._acq_blocks = 0
        self._acq_small = 0
        self._misses = 0
        self._high_water = 0
        self._trimmed = 0
        # _tiers[n.bit_length()] = (length, that many zero bytes) with length > n, so zeroing
        # n written bytes is one same-size bytearray slice assignment: a memcpy, with neither
        # a temporary (a bytearray source is not copied first, a bytes one would be) nor a
        # new slice object; about twice as fast as the same copy through memoryviews.
        self._tiers = _zero_tiers(size)
        self._full_zeros = self._tiers[-1][1]

    @property
    def size(self) -> int:
        """Bytes per buffer: the largest datagram a receive can take whole."""
        return self._size

    def buffer(self) -> Lease:
        """``with pool.buffer() as buf:`` lends a buffer as a memoryview for the block."""
        return Lease(self)

    def stats(self) -> PoolStats:
        """Counters of the free-list (a leak shows as buffers in use that never come back)."""
        with self._lock:
            acquisitions = self._acq_blocks * 256 + self._acq_small
            return PoolStats(
                acquisitions=acquisitions,
                hits=acquisitions - self._misses,
                misses=self._misses,
                in_use=len(self._lent),
                high_water=self._high_water,
                idle=len(self._free),
                trimmed=self._trimmed,
                size=self._size,
                lost=self._losses.lost,
            )

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"<BufferPool size={s.size} in_use={s.in_use} idle={s.idle} misses={s.misses}"
            f" lost={s.lost}>"
        )

    # -- shared by Lease and the transport's own loop ------------------------------------------
    # The lock is taken inside the try, and the finally lets go of it first thing, a release
    # an RLock refuses (RuntimeError) unless this thread holds it: a KeyboardInterrupt
    # delivered just after acquire() returned (CPython runs signal handlers as a call returns)
    # left it held, and every later receive and stats() waited for it forever; and a check
    # before the release would be one more point for an interrupt to skip it. Not ``with``:
    # its bound __exit__ is one more allocation per loan, over the budget of adr/002.

    def _acquire(self) -> _Slot:
        lock = self._lock
        try:
            lock.acquire()
            self._acq_small += 1
            if self._acq_small == 256:
                self._acq_blocks += 1
                self._acq_small = 0
            if self._free:
                slot = self._free.pop()
                self._lend(slot)
                return slot
            self._misses += 1
        finally:
            try:  # noqa: SIM105 (suppress() would be a call, and an interrupt point, before it)
                lock.release()
            except RuntimeError:  # not taken: interrupted while waiting for it
                pass
        # Grow outside the lock: allocating 9 KB must not stall other threads.
        slot = _Slot(self._size, self._losses)
        try:
            lock.acquire()
            self._lend(slot)
        finally:
            try:  # noqa: SIM105 (suppress() would be a call, and an interrupt point, before it)
                lock.release()
            except RuntimeError:  # not taken: interrupted while waiting for it
                pass
        return slot

    def _lend(self, slot: _Slot) -> None:
        """Under the lock: count ``slot`` as lent."""
        lent = self._lent
        lent.add(slot.ref)
        if len(lent) > self._high_water:
            self._high_water = len(lent)

    def _reclaim(self, slot: _Slot, view: memoryview, written: int, failing: bool) -> None:
        """Take back a lent view: release it, check nothing else still sees the buffer,
        zero what was written, and return the buffer (or drop it, loudly, if it escaped).

        When the holder's block is raising (``failing``), its traceback's frames may still
        hold views (a parser's locals): the buffer is then dropped quietly, so the real error
        propagates instead of a BufferError.
        """
        if _let_go(slot, view):
            self._discard(slot, failing)
        else:
            self._return(slot, written)

    def _discard(self, slot: _Slot, failing: bool) -> None:
        """A lent view escaped: the next holder would share this memory. Wipe it, let it go,
        and fail loudly (quietly if the holder is already raising, see _reclaim)."""
        slot.data[:] = self._full_zeros
        self._drop(slot)
        if not failing:
            raise BufferError("a view of a pooled buffer was kept past its `with` block")

    def _return(self, slot: _Slot, written: int) -> None:
        """Zero the ``written`` bytes (all of them if negative) and give the buffer back."""
        lock = self._lock
        try:
            lock.acquire()
            self._lent.discard(slot.ref)  # first: an interrupt after it loses a buffer at most
            if written < 0 or written >= self._size:
                slot.data[:] = self._full_zeros
            elif written:
                length, zeros = self._tiers[written.bit_length()]
                slot.data[:length] = zeros
            if len(self._free) < self._max_idle:
                self._free.append(slot)
            else:
                self._trimmed += 1
        finally:
            try:  # noqa: SIM105 (suppress() would be a call, and an interrupt point, before it)
                lock.release()
            except RuntimeError:  # not taken: interrupted while waiting for it
                pass

    def _drop(self, slot: _Slot) -> None:
        with self._lock:
            self._lent.discard(slot.ref)
            self._trimmed += 1
