"""The incremental watch (mdnsq.tasks.WatchTask) against the watch that reads everything again
on every call, over random histories of a link: instances appearing, changing, sharing hosts,
saying goodbye, expiring silently, and a cache small enough to evict. Both see the same cache at
the same times; the incremental one is also told which names changed, as the Querier tells it.
Every event, refresh question, wake-up time and question it needs must be the same."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from mdnsq.cache import CacheEntry, RecordCache
from mdnsq.names import name_key
from mdnsq.records import Message, Question, Record, RecordType, SRVRecord
from mdnsq.service import ServiceEvent, ServiceInfo, build_service_info
from mdnsq.tasks import (
    PARTIAL_AFTER,
    REFRESH_SUPPRESS,
    SUPPRESS,
    WATCH_MAX_INTERVAL,
    BrowseTask,
    WatchTask,
)
from tests.fakes import a, aaaa, ptr, srv, txt

STYPE = "_http._tcp.local"


class FullScanWatch(BrowseTask):
    """The watch as it was before it became incremental: every instance read again on every
    call. Kept here as the reference the incremental one must agree with, with one change
    (marked below): it forgot a record's refresh progress while no instance read the record,
    and asked about the same refresh point again when the record came back (an SRV pointing
    at that host again). The incremental watch keeps progress while the record lives."""

    max_interval = WATCH_MAX_INTERVAL

    def __init__(self, service_type: str) -> None:
        super().__init__(service_type)
        self.reported: dict[str, ServiceInfo] = {}
        self.pending: dict[str, float] = {}
        # Cache entry key -> (reception time, refresh points acted on) for the records watched.
        self.refreshed: dict[Any, tuple[float, int]] = {}

    def update(self, cache: RecordCache, now: float) -> None:
        current = self.instances(cache, now)
        for key in [k for k in self.reported if k not in current]:
            self.out.append(ServiceEvent("removed", self.reported.pop(key)))
        for key in [k for k in self.pending if k not in current]:
            del self.pending[key]
        for key, (target, ptr_entry) in current.items():
            info = build_service_info(cache, target, now, ptr_entry)
            old = self.reported.get(key)
            if old is not None:
                if info is not None and not info.same_content(old):
                    self.reported[key] = info
                    self.out.append(ServiceEvent("updated", info))
                continue
            since = self.pending.setdefault(key, now)
            if info is not None and (info.complete or now >= since + PARTIAL_AFTER):
                del self.pending[key]
                self.reported[key] = info
                self.out.append(ServiceEvent("added", info))

    def _unresolved(self, key: str, ptr_entry: CacheEntry) -> bool:
        old = self.reported.get(key)
        return old is None or not old.complete

    def _relevant(self, cache: RecordCache, now: float) -> Iterator[CacheEntry]:
        yield from cache.entries(self.service_type, RecordType.PTR, now)
        for target, _ in self.instances(cache, now).values():
            for rtype in (RecordType.SRV, RecordType.TXT):
                for entry in cache.entries(target, rtype, now):
                    yield entry
                    srv = entry.record
                    if isinstance(srv, SRVRecord):
                        yield from cache.entries(srv.target, RecordType.A, now)
                        yield from cache.entries(srv.target, RecordType.AAAA, now)

    def _refresh_point(self, entry: CacheEntry) -> int:
        """How many refresh points of this reception were acted on (0 after each refresh)."""
        received, point = self.refreshed.get(entry.key, (entry.received, 0))
        return point if received == entry.received else 0

    def refreshes(self, cache: RecordCache, now: float) -> dict[Question, float]:
        wanted: dict[Question, float] = {}
        progress: dict[Any, tuple[float, int]] = {}
        for entry in self._relevant(cache, now):
            point = self._refresh_point(entry)
            due = entry.refresh_time(point)
            if due is not None and due <= now:
                while due is not None and due <= now:  # skip points that passed unseen
                    point += 1
                    due = entry.refresh_time(point)
                record = entry.record
                question = Question(record.name, record.type)  # equal whatever the name case
                window = min(SUPPRESS, REFRESH_SUPPRESS * entry.ttl)
                wanted[question] = min(window, wanted.get(question, window))
            progress[entry.key] = (entry.received, point)
        self.refreshed.update(progress)  # changed: was `= progress` (see the docstring)
        return wanted

    def wake_at(self, cache: RecordCache, now: float) -> float:
        wake = math.inf
        for entry in self._relevant(cache, now):
            due = entry.refresh_time(self._refresh_point(entry))
            if due is not None:
                wake = min(wake, due)
            wake = min(wake, entry.expires)
        for since in self.pending.values():
            if since + PARTIAL_AFTER > now:  # later ones fire when their SRV arrives
                wake = min(wake, since + PARTIAL_AFTER)
        return wake

    def finish(self, cache: RecordCache, now: float) -> None:
        pass


def _history(seed: int) -> Iterator[tuple[float, list[Record] | None]]:
    """(time, records received then, or None for time passing alone)."""
    rnd = random.Random(seed)
    now = 1000.0
    hosts = [f"h{i}.local" for i in range(4)]
    for _ in range(60):
        now += rnd.choice([0.0, 0.05, 0.5, 1.0, 3.0, 10.0, 40.0, 90.0])
        if rnd.random() < 0.3:
            yield now, None
            continue
        records: list[Record] = []
        for _ in range(rnd.randint(1, 4)):
            i = rnd.randrange(8)
            name = f"Inst {i}.{STYPE}"
            host = rnd.choice(hosts) if rnd.random() < 0.5 else f"own{i}.local"
            ttl = rnd.choice([0, 2, 10, 120])
            long_ttl = rnd.choice([0, 20, 4500])
            kind = rnd.randrange(6)
            if kind == 0:
                records.append(ptr(STYPE, name, ttl=long_ttl))
            elif kind == 1:
                records.append(srv(name, host, rnd.choice([80, 81]), ttl=ttl))
            elif kind == 2:
                records.append(txt(name, rnd.choice([b"v=1", b"v=2"]), ttl=long_ttl))
            elif kind == 3:
                address = f"192.0.2.{rnd.randint(1, 3)}"
                records.append(a(host, address, ttl=ttl, flush=rnd.random() < 0.7))
            elif kind == 4:
                records.append(aaaa(host, f"2001:db8::{rnd.randint(1, 3)}", ttl=ttl))
            else:  # a whole instance at once, as a responder announces it
                records += [
                    ptr(STYPE, name, ttl=long_ttl or 4500),
                    srv(name, host, 80, ttl=ttl or 120),
                    txt(name, b"v=1", ttl=long_ttl or 4500),
                    a(host, f"192.0.2.{i + 1}", ttl=ttl or 120),
                ]
        yield now, records


def _events(out: list[Any]) -> list[tuple[str, ServiceInfo]]:
    return [(e.kind, e.info) for e in out]


@pytest.mark.parametrize("seed", range(150))
def test_incremental_watch_agrees_with_reading_everything_again(seed: int) -> None:
    cache = RecordCache(max_records=20 if seed % 3 == 0 else 4096)
    cache.want(STYPE)
    new, reference = WatchTask(STYPE), FullScanWatch(STYPE)
    for now, records in _history(seed):
        if records is not None:
            evicted = cache.evicted
            cache.add_received([(Message(answers=tuple(records)), 1)], now)
            names = {name_key(r.name) for r in records}
            new.changed(None if cache.evicted != evicted else names)
        removed = cache.expire(now)
        if removed:
            new.changed({name_key(e.record.name) for e in removed})
        new.update(cache, now)
        reference.update(cache, now)
        assert _events(new.out) == _events(reference.out), now
        new.out.clear()
        reference.out.clear()
        assert list(new.needs(cache, now)) == list(reference.needs(cache, now))
        assert new.refreshes(cache, now) == reference.refreshes(cache, now), now
        assert new.wake_at(cache, now) == reference.wake_at(cache, now), now


def test_a_watch_reads_again_only_what_changed() -> None:
    """With 200 instances known, a wake-up after one instance's TXT changed reads that
    instance's records, not everyone's (counted in cache reads)."""
    cache = RecordCache()
    for i in range(200):
        name, host = f"Inst {i}.{STYPE}", f"h{i}.local"
        records = [ptr(STYPE, name), srv(name, host, 80), txt(name, b"v=1"), a(host, "192.0.2.1")]
        cache.add_received([(Message(answers=tuple(records)), 1)], 1000.0)
    watch = WatchTask(STYPE)
    watch.update(cache, 1000.0)
    assert len(watch.out) == 200
    watch.out.clear()
    reads = []
    entries = cache.entries

    def counting(name: str, rtype: int, now: float, rclass: int = 1) -> list[CacheEntry]:
        reads.append(name_key(name))
        return entries(name, rtype, now, rclass)

    cache.entries = counting  # type: ignore[method-assign]
    changed = txt(f"Inst 7.{STYPE}", b"v=2")
    cache.add_received([(Message(answers=(changed,)), 1)], 1001.0)
    watch.changed({name_key(changed.name)})
    watch.update(cache, 1001.0)
    assert [e.kind for e in watch.out] == ["updated"]
    assert watch.out[0].info.txt == {"v": b"2"}
    assert set(reads) == {STYPE, f"inst 7.{STYPE}", "h7.local"}
