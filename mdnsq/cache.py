# The record cache one Querier shares between all its calls.
#
# Operations: add the records of one received packet (with the interface it arrived on), look up
# the live records of a (name, type), list known answers for a question, expire what is due.
#
# Goals:
# - RFC 6762 semantics: TTL expiry; a goodbye (TTL 0) expires a record one second later (§10.1);
#   a record with the cache-flush bit expires the other records of its name/type/class *on the
#   same interface* that were received more than one second earlier, also after one second (§10.2).
# - Bounded: at most `max_records` entries. Past that, the entry received longest ago is evicted,
#   skipping names a caller is waiting for (`want`). Not "closest to expiry": a flood of junk with
#   long TTLs would then evict every real answer (TTL 120) the moment it arrived. Under a flood,
#   passively cached records go first; what a running call asked about stays.
# - Cheap on the hot path: adding a record is a couple of dict operations and one heap push;
#   expiry is O(k log n) for k expired entries. No clock inside: callers pass `now` (monotonic
#   seconds), which keeps the cache deterministic and trivially testable.
#
# Plan: buckets keyed by record.key -> {(record, interface): CacheEntry}; records compare without
# TTL, so a refresh of the same data finds its entry. A heap of (expires, seq, entry) holds expiry
# times lazily: an entry whose expiry changed leaves a stale heap item that is skipped on pop, and
# the heap is rebuilt when stale items outnumber live ones. An insertion-ordered dict of entries
# (refreshes move to the end) gives the eviction order.
from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable, Iterator
from typing import Any

from mdnsq.names import name_key
from mdnsq.records import Record

__all__ = ["CacheEntry", "RecordCache"]

_heappush = heapq.heappush

# §10.1 / §10.2: a goodbye or a flushed record lives on for one more second.
GRACE = 1.0
# Refresh points (fraction of TTL, RFC 6762 §5.2) and the random extra added to each.
REFRESH_POINTS = (0.80, 0.85, 0.90, 0.95)
REFRESH_JITTER = 0.02


class CacheEntry:
    """One cached record as received on one interface."""

    __slots__ = (
        "_bucket",
        "_ekey",
        "_jitter",
        "_seq",
        "expires",
        "goodbye",
        "interface",
        "received",
        "record",
        "refreshes",
        "ttl",
    )

    def __init__(
        self,
        record: Record,
        interface: int,
        received: float,
        ttl: int,
        bucket: tuple[str, int, int] = ("", 0, 0),
        ekey: tuple[Any, ...] = (),
        seq: int = 0,
    ) -> None:
        self.record = record
        self.interface = interface
        self.received = received
        self.expires = received + ttl
        self.ttl = ttl
        self.goodbye = False
        # How many of the REFRESH_POINTS have been acted on (by a watch that refreshes this entry).
        self.refreshes = 0
        self._jitter = -1.0  # drawn on first use: most entries are never refreshed
        self._seq = seq  # which heap item is this entry's (older ones are stale)
        self._bucket = bucket
        self._ekey = ekey

    def __repr__(self) -> str:
        return (
            f"CacheEntry({self.record!r}, interface={self.interface}, received={self.received}, "
            f"expires={self.expires}, goodbye={self.goodbye})"
        )

    def remaining(self, now: float) -> float:
        return self.expires - now

    @property
    def jitter(self) -> float:
        if self._jitter < 0:
            self._jitter = random.uniform(0.0, REFRESH_JITTER)
        return self._jitter

    def next_refresh(self) -> float | None:
        """When the next refresh query for this record is due, None after the last one."""
        if self.goodbye or self.refreshes >= len(REFRESH_POINTS):
            return None
        return self.received + self.ttl * (REFRESH_POINTS[self.refreshes] + self.jitter)


class RecordCache:
    """TTL-bounded, size-bounded store of received records; not thread-safe (the Querier locks)."""

    def __init__(self, max_records: int = 4096) -> None:
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        self.max_records = max_records
        self._buckets: dict[tuple[str, int, int], dict[tuple[Any, ...], CacheEntry]] = {}
        self._heap: list[tuple[float, int, CacheEntry]] = []
        self._next_seq = itertools.count().__next__
        self._count = 0
        self._order: dict[CacheEntry, None] = {}  # oldest received first
        self._wanted: dict[str, int] = {}  # name_key -> how many callers wait for it
        self.evicted = 0
        self.flushed = 0

    def __len__(self) -> int:
        return self._count

    # -- adding ---------------------------------------------------------------------------

    def add(self, record: Record, interface: int, now: float) -> CacheEntry | None:
        """Store or refresh one record; returns its entry (None for a goodbye of nothing)."""
        key = (name_key(record.name), record.type, record.rclass)
        bucket = self._buckets.get(key)
        # Within a bucket records differ only by their data: records are tuples laid out as
        # (name, rclass, ttl, cache_flush, *data) (mdnsq.records), and hashing that slice runs in C
        # where Record.__hash__ would run Python code for every packet. One flat tuple (not a
        # pair) because every object an entry keeps alive is more work for the cyclic GC.
        ekey = (interface,) + record[4:]  # noqa: RUF005 (concatenation is faster than unpacking)
        entry = None
        if bucket:
            if record.cache_flush:
                self._flush(bucket, ekey, now)
            entry = bucket.get(ekey)
        ttl = record.ttl
        if ttl == 0:
            if entry is None:
                return None
            if not entry.goodbye:
                entry.goodbye = True
                if entry.expires > now + GRACE:
                    self._shorten(entry, now + GRACE)
            return entry
        if entry is not None:
            # Same data: a refresh. The record object is replaced so readers see the newest TTL
            # and name spelling. A later expiry needs no heap push (see expire()).
            expires = now + ttl
            entry.record = record
            entry.received = now
            entry.ttl = ttl
            entry.goodbye = False
            entry.refreshes = 0
            entry._jitter = -1.0
            if expires < entry.expires:
                self._shorten(entry, expires)
            else:
                entry.expires = expires
            order = self._order
            del order[entry]
            order[entry] = None
            return entry
        if bucket is None:
            bucket = self._buckets[key] = {}
        seq = self._next_seq()
        entry = bucket[ekey] = CacheEntry(record, interface, now, ttl, key, ekey, seq)
        _heappush(self._heap, (entry.expires, seq, entry))
        self._order[entry] = None
        self._count += 1
        if self._count > self.max_records:
            self._evict()
        return entry

    def add_all(self, records: Iterable[Record], interface: int, now: float) -> int:
        """Add the records of one packet; returns how many were stored or refreshed."""
        stored = 0
        add = self.add
        for record in records:
            if add(record, interface, now) is not None:
                stored += 1
        return stored

    def _flush(
        self, bucket: dict[tuple[Any, ...], CacheEntry], ekey: tuple[Any, ...], now: float
    ) -> None:
        # Same interface (ekey[0]), other data, received more than a second ago.
        cutoff = now - GRACE
        interface = ekey[0]
        for other, entry in bucket.items():
            if (
                other[0] == interface
                and entry.received < cutoff
                and entry.expires > now + GRACE
                and other != ekey
            ):
                self._shorten(entry, now + GRACE)
                self.flushed += 1

    def _shorten(self, entry: CacheEntry, expires: float) -> None:
        """An earlier expiry needs its own heap item; the old one becomes stale."""
        entry.expires = expires
        seq = entry._seq = self._next_seq()
        _heappush(self._heap, (expires, seq, entry))
        if len(self._heap) > 2 * self._count + 64:
            self._rebuild_heap()

    # -- removing -------------------------------------------------------------------------

    def _remove(self, entry: CacheEntry) -> bool:
        bucket = self._buckets.get(entry._bucket)
        if bucket is None or bucket.get(entry._ekey) is not entry:
            return False
        del bucket[entry._ekey]
        if not bucket:
            del self._buckets[entry._bucket]
        del self._order[entry]
        self._count -= 1
        return True

    def _pop_due(self, limit: float) -> CacheEntry | None:
        """Pop the next entry whose current expiry is <= limit (heap items may be stale:
        an entry refreshed to a later expiry keeps its old item, which is re-filed here)."""
        heap = self._heap
        while heap and heap[0][0] <= limit:
            _, seq, entry = heapq.heappop(heap)
            if seq != entry._seq:
                continue  # superseded by an earlier-expiry item
            if entry.expires > limit:
                entry._seq = self._next_seq()
                _heappush(heap, (entry.expires, entry._seq, entry))
                continue
            if self._remove(entry):
                return entry
        return None

    def _evict(self) -> None:
        wanted = self._wanted
        while self._count > self.max_records:
            victim = None
            for entry in self._order:
                if entry._bucket[0] not in wanted:
                    victim = entry
                    break
            if victim is None:  # everything is wanted: the oldest goes anyway
                victim = next(iter(self._order))
            self._remove(victim)
            self.evicted += 1
        if len(self._heap) > 2 * self._count + 64:
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        heap = self._heap = []
        for entry in self._order:
            entry._seq = self._next_seq()
            heap.append((entry.expires, entry._seq, entry))
        heapq.heapify(heap)

    # -- what callers are waiting for -------------------------------------------------------

    def want(self, name: str) -> None:
        """A caller waits for records of ``name``: eviction leaves them alone."""
        key = name_key(name)
        self._wanted[key] = self._wanted.get(key, 0) + 1

    def unwant(self, name: str) -> None:
        key = name_key(name)
        left = self._wanted.get(key, 0) - 1
        if left > 0:
            self._wanted[key] = left
        else:
            self._wanted.pop(key, None)

    def expire(self, now: float) -> list[CacheEntry]:
        """Drop every entry whose time is up; returns them (a watch reports removals from this)."""
        removed: list[CacheEntry] = []
        while (entry := self._pop_due(now)) is not None:
            removed.append(entry)
        return removed

    def next_expiry(self) -> float | None:
        """The earliest time an entry may expire (may be a stale heap item: only a hint)."""
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._buckets.clear()
        self._heap.clear()
        self._order.clear()
        self._count = 0

    # -- reading --------------------------------------------------------------------------

    def entries(self, name: str, rtype: int, now: float, rclass: int = 1) -> list[CacheEntry]:
        """Live entries for (name, type, class), oldest first."""
        bucket = self._buckets.get((name_key(name), rtype, rclass))
        if not bucket:
            return []
        return [e for e in bucket.values() if e.expires > now]

    def entries_for_name(self, name: str, now: float) -> list[CacheEntry]:
        """Live entries of every type for a name (for ANY queries)."""
        key = name_key(name)
        return [
            e
            for bkey, bucket in self._buckets.items()
            if bkey[0] == key
            for e in bucket.values()
            if e.expires > now
        ]

    def records(self, name: str, rtype: int, now: float) -> list[Record]:
        return [e.record for e in self.entries(name, rtype, now)]

    def known_answers(self, name: str, rtype: int, now: float) -> list[CacheEntry]:
        """Entries worth listing as known answers (§7.1): more than half their TTL left."""
        return [
            e
            for e in self.entries(name, rtype, now)
            if not e.goodbye and e.expires - now > e.ttl / 2
        ]

    def __iter__(self) -> Iterator[CacheEntry]:
        for bucket in list(self._buckets.values()):
            yield from list(bucket.values())
