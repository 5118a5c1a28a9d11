# The record cache one Querier shares between all its calls.
#
# Operations: add the records of one received packet (with the interface it arrived on), look up
# the live records of a (name, type), list known answers for a question, expire what is due.
#
# Goals:
# - RFC 6762 semantics: TTL expiry; a goodbye (TTL 0) expires a record one second later (§10.1);
#   a record with the cache-flush bit expires the other records of its name/type/class *on the
#   same interface* that were received more than one second earlier, also after one second (§10.2).
# - Bounded: at most `max_records` entries; past that the entries closest to expiry are evicted,
#   so a flood of junk cannot grow memory without limit (it can only push real records out early).
# - Cheap on the hot path: adding a record is a couple of dict operations and one heap push;
#   expiry is O(k log n) for k expired entries. No clock inside: callers pass `now` (monotonic
#   seconds), which keeps the cache deterministic and trivially testable.
#
# Plan: buckets keyed by record.key -> {(record, interface): CacheEntry}; records compare without
# TTL, so a refresh of the same data finds its entry. A heap of (expires, seq, entry) holds expiry
# times lazily: an entry whose expiry changed leaves a stale heap item that is skipped on pop, and
# the heap is rebuilt when stale items outnumber live ones.
from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mdnsq.names import name_key
from mdnsq.records import Record

__all__ = ["CacheEntry", "RecordCache"]

# §10.1 / §10.2: a goodbye or a flushed record lives on for one more second.
GRACE = 1.0
# Refresh points (fraction of TTL, RFC 6762 §5.2) and the random extra added to each.
REFRESH_POINTS = (0.80, 0.85, 0.90, 0.95)
REFRESH_JITTER = 0.02


@dataclass(eq=False)
class CacheEntry:
    """One cached record as received on one interface."""

    record: Record
    interface: int
    received: float
    expires: float
    ttl: int
    goodbye: bool = False
    # How many of the REFRESH_POINTS have been acted on (by a watch that refreshes this entry).
    refreshes: int = 0
    jitter: float = field(default_factory=lambda: random.uniform(0.0, REFRESH_JITTER))

    def remaining(self, now: float) -> float:
        return self.expires - now

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
        self._buckets: dict[tuple[str, int, int], dict[tuple[Record, int], CacheEntry]] = {}
        self._heap: list[tuple[float, int, CacheEntry]] = []
        self._seq = itertools.count()
        self._count = 0
        # Bumped on every visible change, so waiters can tell "nothing new" cheaply.
        self.version = 0
        self.evicted = 0
        self.flushed = 0

    def __len__(self) -> int:
        return self._count

    # -- adding ---------------------------------------------------------------------------

    def add(self, record: Record, interface: int, now: float) -> CacheEntry | None:
        """Store or refresh one record; returns its entry (None for a goodbye of nothing)."""
        key = record.key
        bucket = self._buckets.get(key)
        if record.cache_flush and bucket:
            self._flush(bucket, record, interface, now)
        ekey = (record, interface)
        entry = bucket.get(ekey) if bucket else None
        ttl = record.ttl
        if ttl == 0:
            if entry is None:
                return None
            if not entry.goodbye:
                entry.goodbye = True
                self._set_expiry(entry, min(entry.expires, now + GRACE))
                self.version += 1
            return entry
        if entry is not None:
            # Same data (records compare without TTL): a refresh. The record object is replaced
            # so readers see the newest TTL and name spelling.
            entry.record = record
            entry.received = now
            entry.ttl = ttl
            entry.goodbye = False
            entry.refreshes = 0
            entry.jitter = random.uniform(0.0, REFRESH_JITTER)
            self._set_expiry(entry, now + ttl)
            self.version += 1
            return entry
        if bucket is None:
            bucket = self._buckets[key] = {}
        entry = CacheEntry(record, interface, now, now + ttl, ttl)
        bucket[ekey] = entry
        self._count += 1
        heapq.heappush(self._heap, (entry.expires, next(self._seq), entry))
        self.version += 1
        if self._count > self.max_records:
            self._evict()
        return entry

    def add_all(self, records: Iterable[Record], interface: int, now: float) -> int:
        """Add the records of one packet; returns how many were stored or refreshed."""
        stored = 0
        for record in records:
            if self.add(record, interface, now) is not None:
                stored += 1
        return stored

    def _flush(
        self,
        bucket: dict[tuple[Record, int], CacheEntry],
        record: Record,
        interface: int,
        now: float,
    ) -> None:
        cutoff = now - GRACE
        for entry in bucket.values():
            if (
                entry.interface == interface
                and entry.received < cutoff
                and entry.expires > now + GRACE
                and entry.record != record
            ):
                self._set_expiry(entry, now + GRACE)
                self.flushed += 1
                self.version += 1

    def _set_expiry(self, entry: CacheEntry, expires: float) -> None:
        entry.expires = expires
        heapq.heappush(self._heap, (expires, next(self._seq), entry))
        if len(self._heap) > 2 * self._count + 64:
            self._heap = [
                (e.expires, next(self._seq), e)
                for bucket in self._buckets.values()
                for e in bucket.values()
            ]
            heapq.heapify(self._heap)

    # -- removing -------------------------------------------------------------------------

    def _remove(self, entry: CacheEntry) -> bool:
        bucket = self._buckets.get(entry.record.key)
        if bucket is None or bucket.get((entry.record, entry.interface)) is not entry:
            return False
        del bucket[(entry.record, entry.interface)]
        if not bucket:
            del self._buckets[entry.record.key]
        self._count -= 1
        self.version += 1
        return True

    def _evict(self) -> None:
        while self._count > self.max_records and self._heap:
            expires, _, entry = heapq.heappop(self._heap)
            if expires == entry.expires and self._remove(entry):
                self.evicted += 1

    def expire(self, now: float) -> list[CacheEntry]:
        """Drop every entry whose time is up; returns them (a watch reports removals from this)."""
        removed: list[CacheEntry] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires, _, entry = heapq.heappop(heap)
            if expires == entry.expires and self._remove(entry):
                removed.append(entry)
        return removed

    def next_expiry(self) -> float | None:
        """The earliest time an entry may expire (may be a stale heap item: only a hint)."""
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._buckets.clear()
        self._heap.clear()
        self._count = 0
        self.version += 1

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
