"""BufferPool: reuse, zeroing, return on every path, use-after-exit, threads, growth, trimming."""

from __future__ import annotations

import gc
import select
import threading

import pytest

from mdnsq import BufferPool, PoolStats, UDPv4Transport
from mdnsq import pool as pool_module

WAIT = 3.0  # upper bound for a datagram already on its way over lo; never reached on success


@pytest.fixture(params=["export-count", "fallback"])
def detection(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run escape tests in both modes: CPython's export count, and one view per loan."""
    if request.param == "fallback":
        monkeypatch.setattr(pool_module, "_export_counter", lambda view: None)
    return str(request.param)


def test_this_interpreter_uses_the_export_count() -> None:
    with BufferPool(size=16).buffer():
        pass
    assert pool_module._Slot(16).exports is not None


def test_buffers_are_reused_after_warm_up() -> None:
    pool = BufferPool(size=512, preallocate=1)
    seen = set()
    for _ in range(100):
        with pool.buffer() as buf:
            seen.add(id(buf.obj))
    assert len(seen) == 1
    s = pool.stats()
    assert (s.acquisitions, s.hits, s.misses, s.in_use, s.high_water) == (100, 100, 0, 0, 1)


def test_view_covers_the_whole_buffer_and_is_writable() -> None:
    pool = BufferPool(size=300)
    with pool.buffer() as buf:
        assert isinstance(buf, memoryview)
        assert len(buf) == 300 and not buf.readonly
        buf[:3] = b"abc"
        assert bytes(buf[:3]) == b"abc"


@pytest.mark.parametrize("tell_written", [True, False])
def test_short_packet_after_long_one_shows_no_old_bytes(tell_written: bool) -> None:
    pool = BufferPool(size=9000, preallocate=1, max_idle=1)
    long_packet = bytes(range(256)) * 35  # 8960 bytes, none of them zero after the first
    lease = pool.buffer()
    with lease as buf:
        buf[: len(long_packet)] = long_packet
        if tell_written:
            lease.written = len(long_packet)
    with pool.buffer() as buf:
        buf[:5] = b"short"
        assert bytes(buf[:5]) == b"short"
        assert buf[5:].tobytes() == bytes(9000 - 5)


@pytest.mark.parametrize("written", [1, 63, 64, 65, 306, 511, 512, 4095, 4096, 8999, 9000])
def test_written_bytes_are_zeroed_at_every_tier_boundary(written: int) -> None:
    pool = BufferPool(size=9000, preallocate=1, max_idle=1)
    lease = pool.buffer()
    with lease as buf:
        buf[:written] = b"\xff" * written
        lease.written = written
    with pool.buffer() as buf:
        assert buf.tobytes() == bytes(9000)


def test_buffer_returns_and_is_zeroed_when_the_block_raises() -> None:
    pool = BufferPool(size=64, preallocate=1, max_idle=1)
    with pytest.raises(KeyError), pool.buffer() as buf:
        buf[:6] = b"secret"
        raise KeyError("boom")
    assert pool.stats().in_use == 0
    assert pool.stats().idle == 1
    with pool.buffer() as buf:
        assert buf.tobytes() == bytes(64)
    assert pool.stats().misses == 0


def test_using_the_view_after_the_block_fails_loudly(detection: str) -> None:
    pool = BufferPool(size=64)
    with pool.buffer() as buf:
        kept = buf
    with pytest.raises(ValueError, match="released"):
        kept[0]
    with pytest.raises(ValueError, match="released"):
        kept[0] = 1
    with pytest.raises(ValueError, match="released"):
        bytes(kept)


def test_a_kept_slice_is_detected_and_the_buffer_is_never_lent_again(detection: str) -> None:
    pool = BufferPool(size=64, preallocate=1, max_idle=1)
    with pytest.raises(BufferError, match="kept past"), pool.buffer() as buf:
        buf[:6] = b"secret"
        kept = buf[:6]  # a derived view survives the release of its parent...
    assert kept.tobytes() == bytes(6)  # ...but sees a wiped buffer
    s = pool.stats()
    assert (s.in_use, s.trimmed, s.idle) == (0, 1, 0)
    with pool.buffer() as buf:
        buf[:4] = b"next"
    assert kept.tobytes() == bytes(6)  # and never the next packet


def test_a_kept_bytearray_or_ctypes_alias_is_detected(detection: str) -> None:
    import ctypes

    pool = BufferPool(size=64, preallocate=1, max_idle=1)
    with pytest.raises(BufferError), pool.buffer() as buf:
        buf[:4] = b"keep"
        pinned = (ctypes.c_char * 64).from_buffer(buf)
    assert pinned.raw == bytes(64)
    with pytest.raises(BufferError), pool.buffer() as buf:
        raw = buf.obj
    assert raw == bytes(64)
    assert pool.stats().trimmed == 2


def test_an_export_held_on_the_view_itself_is_detected(detection: str) -> None:
    import struct

    pool = BufferPool(size=64, preallocate=1, max_idle=1)
    with pytest.raises(BufferError), pool.buffer() as buf:
        buf[:2] = b"\x01\x02"
        unpacker = struct.iter_unpack("B", buf)  # holds a buffer export until exhausted
    assert pool.stats().in_use == 0
    del unpacker


def test_a_released_view_kept_by_an_earlier_holder_blames_nobody_later(detection: str) -> None:
    pool = BufferPool(size=64, preallocate=1, max_idle=1)
    with pool.buffer() as buf:
        stale = buf  # released at exit; harmless, and must not count against the next holder
    for _ in range(3):
        with pool.buffer() as buf:
            buf[:2] = b"ok"
    assert pool.stats().trimmed == 0
    del stale


def test_a_kept_slice_while_raising_lets_the_real_error_through(detection: str) -> None:
    pool = BufferPool(size=64, preallocate=1, max_idle=1)
    kept = []
    with pytest.raises(KeyError), pool.buffer() as buf:
        kept.append(buf[:4])  # e.g. a parser's local, alive in the traceback
        raise KeyError("the real error")
    s = pool.stats()
    assert (s.in_use, s.trimmed, s.idle) == (0, 1, 0)  # dropped quietly, never lent again
    assert kept[0].tobytes() == bytes(4)


def test_a_lease_cannot_be_entered_twice() -> None:
    pool = BufferPool(size=64)
    lease = pool.buffer()
    with lease, pytest.raises(RuntimeError), lease:
        pass  # pragma: no cover


def test_growth_is_counted_as_misses_and_idle_buffers_are_trimmed() -> None:
    pool = BufferPool(size=128, preallocate=2, max_idle=3)
    leases = [pool.buffer() for _ in range(6)]
    views = [lease.__enter__() for lease in leases]
    assert len({id(v.obj) for v in views}) == 6
    s = pool.stats()
    assert (s.acquisitions, s.hits, s.misses, s.in_use, s.high_water, s.idle) == (6, 2, 4, 6, 6, 0)
    for lease in leases:
        lease.__exit__(None, None, None)
    s = pool.stats()
    assert (s.in_use, s.idle, s.trimmed, s.high_water) == (0, 3, 3, 6)
    with pool.buffer():
        pass
    assert pool.stats().misses == 4  # served from the kept idle buffers
    del leases, views
    gc.collect()
    assert pool.stats().lost == 0  # the trimmed buffers were given back, then let go


def test_stats_is_a_snapshot() -> None:
    pool = BufferPool(size=16)
    before = pool.stats()
    assert isinstance(before, PoolStats)
    with pool.buffer():
        assert pool.stats().in_use == 1
    assert before.in_use == 0 and before.acquisitions == 0


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError):
        BufferPool(size=0)
    with pytest.raises(ValueError):
        BufferPool(max_idle=-1)


def test_32_threads_of_10000_acquisitions_lose_nothing() -> None:
    threads_n, per_thread = 32, 10_000
    pool = BufferPool(size=256, preallocate=4, max_idle=8)
    errors: list[str] = []
    start = threading.Barrier(threads_n)

    def worker(tag: int) -> None:
        start.wait()
        mark = bytes([tag + 1]) * 8
        for _ in range(per_thread):
            lease = pool.buffer()
            with lease as buf:
                if buf[:8] != bytes(8):  # a previous holder's bytes leaked through
                    errors.append(f"dirty buffer in thread {tag}")
                    return
                buf[:8] = mark
                if buf[:8] != mark:  # someone else writes into the buffer we hold
                    errors.append(f"shared buffer in thread {tag}")
                    return
                lease.written = 8

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = pool.stats()
    assert s.acquisitions == threads_n * per_thread
    assert s.hits + s.misses == s.acquisitions
    assert s.in_use == 0
    assert 1 <= s.high_water <= threads_n
    assert s.idle <= 8
    # Every buffer ever created is either idle now or was trimmed: none lost.
    assert s.misses + min(4, 8) == s.idle + s.trimmed
    assert s.lost == 0


# -- buffers lost: freed while still lent ----------------------------------------------------
# in_use alone cannot show a buffer that was never given back: it stops counting as lent when
# it is freed. ``lost`` counts those (the weak reference's callback), so a receive path that
# forgets to return its buffer shows up as lost == 1 instead of passing unseen.


def test_a_buffer_lent_and_dropped_is_counted_lost() -> None:
    pool = BufferPool(size=64, preallocate=1)
    lease = pool.buffer()
    lease.acquire()
    assert (pool.stats().in_use, pool.stats().lost) == (1, 0)
    del lease  # never released: the buffer is freed while lent
    gc.collect()
    s = pool.stats()
    assert (s.in_use, s.lost, s.idle, s.trimmed) == (0, 1, 0, 0)
    slot = pool._acquire()  # the transport's own path: a slot taken and never returned
    assert pool.stats().misses == 1
    del slot
    gc.collect()
    assert pool.stats().lost == 2
    assert "lost=2" in repr(pool)


def test_buffers_given_back_trimmed_or_dropped_for_an_escape_are_not_lost(detection: str) -> None:
    pool = BufferPool(size=64, preallocate=0, max_idle=0)
    for _ in range(3):
        with pool.buffer():
            pass  # each one trimmed on its way back (max_idle=0) and freed
    kept: list[memoryview] = []
    with pytest.raises(BufferError), pool.buffer() as buf:
        kept.append(buf[:4])  # escapes: the buffer is dropped, loudly
    kept.clear()
    gc.collect()
    s = pool.stats()
    assert (s.acquisitions, s.trimmed, s.in_use, s.idle, s.lost) == (4, 4, 0, 0, 0)
    del pool
    gc.collect()  # a pool freed with its idle buffers loses nothing either (no error raised)


def test_the_transports_receive_paths_give_every_buffer_back(private_netns: None) -> None:
    """receive, receive_with and receive_batch (the querier's path), with and without a
    datagram: the one pooled buffer serves every call, and none is lost."""
    pool = BufferPool(size=512, preallocate=1, max_idle=1)

    def copy(
        view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
    ) -> bytes:
        return view.tobytes()

    with UDPv4Transport(interfaces=["lo"], pool=pool) as t:
        for _ in range(3):
            t.send(b"plain")
            got = t.receive(WAIT)
            assert got is not None and got.data == b"plain"
            t.send(b"lent")
            assert t.receive_with(copy, WAIT) == b"lent"
            for payload in (b"one", b"two", b"three"):
                t.send(payload)
            assert select.select([t.fileno()], [], [], WAIT)[0]
            out: list[bytes] = []
            t.receive_batch(copy, 10, out)
            assert out == [b"one", b"two", b"three"]
            # Empty socket: each path returns at once, and still gives its buffer back.
            assert t.receive(0) is None
            assert t.receive_with(copy, 0) is None
            t.receive_batch(copy, 10, out)
            assert len(out) == 3
    gc.collect()
    s = pool.stats()
    assert (s.acquisitions, s.misses, s.in_use, s.idle, s.trimmed) == (18, 0, 0, 1, 0)
    assert s.lost == 0
