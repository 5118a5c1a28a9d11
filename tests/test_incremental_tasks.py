"""The incremental watch and browse (mdnsq.instances.WatchTask, BrowseTask) against the ones that
read everything again on every call, over random histories of a link: instances appearing,
changing, sharing hosts, saying goodbye, expiring silently, and a cache small enough to evict.
Both see the same cache at the same times; the incremental one is also told which names
changed, as the Querier tells it. Every event, yielded instance, refresh question, wake-up time
and question it needs must be the same."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from mdnsq import instances
from mdnsq.cache import CacheEntry, RecordCache
from mdnsq.instances import BrowseTask, WatchTask, ask_refresh
from mdnsq.names import name_key
from mdnsq.records import Message, Question, Record, RecordType, SRVRecord
from mdnsq.service import ServiceEvent, ServiceInfo, build_service_info
from mdnsq.tasks import (
    PARTIAL_AFTER,
    REFRESH_GAP,
    SETTLE,
    WATCH_MAX_INTERVAL,
)
from tests.fakes import a, aaaa, ptr, srv, txt

STYPE = "_http._tcp.local"


class FullScanWatch(BrowseTask):
    """The watch as it was before it became incremental: every instance read again on every
    call. Kept here as the reference the incremental one must agree with, with one change
    (marked below): it forgot a record's refresh progress while no instance read the record,
    and asked about the same refresh point again when the record came back (an SRV pointing
    at that host again). The incremental watch keeps progress while the record lives. What
    one due refresh asks (ask_refresh) did not change, and is shared."""

    max_interval = WATCH_MAX_INTERVAL

    def __init__(self, service_type: str) -> None:
        super().__init__(service_type)
        self.reported: dict[str, ServiceInfo] = {}
        self.pending: dict[str, float] = {}
        # Cache entry key -> (reception time, refresh points acted on) for the records watched.
        self.refreshed: dict[Any, tuple[float, int]] = {}

    def instances(self, cache: RecordCache, now: float) -> dict[str, tuple[str, CacheEntry]]:
        self.listed = self.firsts = None  # read afresh every time, as before
        return super().instances(cache, now)

    def update(self, cache: RecordCache, now: float) -> None:
        current = self.instances(cache, now)
        for key in [k for k in self.reported if k not in current]:
            self.out.append(instances._removed(self.reported.pop(key)))
        for key in [k for k in self.pending if k not in current]:
            del self.pending[key]
        for key, (target, ptr_entry) in current.items():
            info = build_service_info(cache, target, now, ptr_entry)
            if info is None and key in self.reported:  # SRV expired, or names the root
                self.out.append(instances._removed(self.reported.pop(key)))
            old = self.reported.get(key)
            assert self.listed is not None
            if old is None and all(e.goodbye for e in self.listed[key][1]):
                self.pending.pop(key, None)  # changed: going, not added (nineteenth session)
                continue
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
        current = self.instances(cache, now)  # read afresh, and the listing with it
        assert self.listed is not None
        for _, ptrs in self.listed.values():  # the PTR records that name an instance
            yield from ptrs
        for target, _ in current.values():
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

    def refreshes(
        self, cache: RecordCache, now: float, ahead: float = 0.0
    ) -> dict[Question, float]:
        wanted: dict[Question, float] = {}
        progress: dict[Any, tuple[float, int]] = {}
        for entry in self._relevant(cache, now):
            point = ask_refresh(entry, self._refresh_point(entry), now + ahead, wanted)
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


class FullScanBrowse(BrowseTask):
    """The browse as it was before it became incremental: every instance read again on every
    call, kept as the reference the incremental one must agree with. What did not change
    (when an instance read is yielded, needs, wake-up, finish) is inherited."""

    def instances(self, cache: RecordCache, now: float) -> dict[str, tuple[str, CacheEntry]]:
        self.listed = self.firsts = None  # read afresh every time, as before
        return super().instances(cache, now)

    def _yield_new(self, cache: RecordCache, now: float, partial: bool) -> None:
        settling: dict[str, float] = {}  # only instances still complete and waiting
        for key, (target, ptr_entry) in self.instances(cache, now).items():
            if key in self.yielded or ptr_entry.goodbye:
                continue
            info = build_service_info(cache, target, now, ptr_entry)
            if info is not None:
                self._offer(cache, key, info, now, partial, settling)
        self.complete_since = settling


def _history(seed: int) -> Iterator[tuple[float, list[Record] | None, int]]:
    """(time, records received then or None for time passing alone, interface). One seed in
    two uses a second interface and spells PTR targets in two cases, so that one instance has
    several PTR records, in the order the cache keeps them."""
    rnd = random.Random(seed)
    varied = seed % 2 == 1
    now = 1000.0
    hosts = [f"h{i}.local" for i in range(4)]
    for _ in range(60):
        # Steps under FLUSH_GAP and around the grace second, so that flush records are held
        # back and applied later.
        now += rnd.choice([0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 1.05, 3.0, 10.0, 40.0, 90.0])
        interface = rnd.choice([1, 2]) if varied else 1
        if rnd.random() < 0.3:
            yield now, None, interface
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
                target = name.upper() if varied and rnd.random() < 0.3 else name
                if rnd.random() < 0.1:  # a target that names no instance of the type
                    target = rnd.choice([f"Inst {i}", f"x.{name}", f"Inst\\.{STYPE}"])
                flush = varied and rnd.random() < 0.2
                records.append(ptr(STYPE, target, ttl=long_ttl, flush=flush))
            elif kind == 1:
                if rnd.random() < 0.1:  # "decidedly not available" (RFC 2782)
                    host = "."
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
        yield now, records, interface


def _tell(task: BrowseTask, cache: RecordCache, names: set[str]) -> None:
    """Tell ``task`` what changed, as Querier._changed does: ``names`` (of the records filed
    or expired) and what the cache reports itself."""
    names |= cache.take_changed()
    keys = cache.take_changed_keys()
    if names or keys:
        task.changed(names, keys)


def _following(
    cache: RecordCache, task: BrowseTask, records: list[Record], now: float, interface: int = 1
) -> None:
    """Receive ``records`` and tell ``task`` what changed, as the Querier does."""
    cache.add_received([(Message(answers=tuple(records)), interface)], now)
    _tell(task, cache, {name_key(r.name) for r in records})


def _replay(seed: int, task: BrowseTask) -> Iterator[tuple[RecordCache, float]]:
    """Play history ``seed`` into a cache (small enough to evict, one seed in three), telling
    ``task`` what changed as the Querier does; yields (cache, time) after each step, for both
    tasks to be asked there."""
    cache = RecordCache(max_records=20 if seed % 3 == 0 else 4096, report_changes=True)
    cache.want(STYPE)
    for now, records, interface in _history(seed):
        if records is not None:
            _following(cache, task, records, now, interface)
        _tell(task, cache, {name_key(e.record.name) for e in cache.expire(now)})
        yield cache, now


def _asked(seed: int) -> Iterator[bool]:
    """Whether the tasks are asked after each step: in the Querier a task may wake after
    several batches, so the changes of several steps reach it at once (one seed in two)."""
    rnd = random.Random(seed * 7919)
    while True:
        yield seed % 4 < 2 or rnd.random() < 0.4


def _same_listing(task: BrowseTask, cache: RecordCache, now: float) -> None:
    """The listing the task keeps (patched from the PTR keys that changed) is what reading
    the PTR records afresh gives, order included (the order instances are reported in)."""

    def shape(listing: dict[str, tuple[str, list[CacheEntry]]]) -> list[Any]:
        # Not CacheEntry.seq: expiry bookkeeping that moves without the record changing.
        return [
            (key, name, [(e.key, e.received, e.expires, e.goodbye, e.record) for e in ptrs])
            for key, (name, ptrs) in listing.items()
        ]

    assert shape(task.listing(cache, now)) == shape(BrowseTask(STYPE).listing(cache, now)), now
    assert list(task.instances(cache, now)) == list(task.listing(cache, now))


def _count_reads(cache: RecordCache) -> list[str]:
    """From now on, the name key of every cache.entries() call, in order."""
    reads: list[str] = []
    entries = cache.entries

    def counting(name: str, rtype: int, now: float, rclass: int = 1) -> list[CacheEntry]:
        reads.append(name_key(name))
        return entries(name, rtype, now, rclass)

    cache.entries = counting  # type: ignore[method-assign]
    return reads


def _events(out: list[Any]) -> list[tuple[str, ServiceInfo]]:
    return [(e.kind, e.info) for e in out]


@pytest.mark.parametrize("seed", range(300))
def test_incremental_watch_agrees_with_reading_everything_again(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if seed % 5 == 0:  # heaps of times rebuilt at every chance
        monkeypatch.setattr(instances, "HEAP_SLACK", 0)
    new, reference = WatchTask(STYPE), FullScanWatch(STYPE)
    for (cache, now), asked in zip(_replay(seed, new), _asked(seed), strict=False):
        if not asked:
            continue
        if seed % 3 == 1:  # needs() first: patched there, read again by update()
            assert list(new.needs(cache, now)) == list(reference.needs(cache, now))
        new.update(cache, now)
        _same_listing(new, cache, now)
        reference.update(cache, now)
        assert _events(new.out) == _events(reference.out), now
        new.out.clear()
        reference.out.clear()
        assert list(new.needs(cache, now)) == list(reference.needs(cache, now))
        # As the Querier asks: a round also takes what comes due within REFRESH_GAP.
        ahead = REFRESH_GAP if int(now * 20) % 2 else 0.0
        assert new.refreshes(cache, now, ahead) == reference.refreshes(cache, now, ahead), now
        assert new.wake_at(cache, now) == reference.wake_at(cache, now), now


def test_a_watch_reads_again_only_what_changed() -> None:
    """With 200 instances known, a wake-up after one instance's TXT changed reads that
    instance's records, not everyone's, nor the PTR records (counted in cache reads)."""
    cache = RecordCache()
    for i in range(200):
        name, host = f"Inst {i}.{STYPE}", f"h{i}.local"
        records = [ptr(STYPE, name), srv(name, host, 80), txt(name, b"v=1"), a(host, "192.0.2.1")]
        cache.add_received([(Message(answers=tuple(records)), 1)], 1000.0)
    watch = WatchTask(STYPE)
    watch.update(cache, 1000.0)
    assert len(watch.out) == 200
    watch.out.clear()
    reads = _count_reads(cache)
    changed = txt(f"Inst 7.{STYPE}", b"v=2")
    cache.add_received([(Message(answers=(changed,)), 1)], 1001.0)
    watch.changed({name_key(changed.name)})
    watch.update(cache, 1001.0)
    assert [e.kind for e in watch.out] == ["updated"]
    assert watch.out[0].info.txt == {"v": b"2"}
    assert set(reads) == {f"inst 7.{STYPE}", "h7.local"}  # not even the PTR records
    # needs() walks only the instances that may still need questions: none, once it has
    # found them resolved.
    assert list(watch.needs(cache, 1001.0)) == [Question(STYPE, RecordType.PTR)]
    assert watch.open == set()


def test_a_watch_of_bare_ptr_records_reads_them_once_after_their_deadline() -> None:
    # A peer's PTR records with nothing behind them stay pending (no report to make). They
    # were read again on every wake-up once their partial-report deadline had passed: 27 ms a
    # wake-up for 4,000 of them, whatever arrived. Now once, at the deadline, and again only
    # when a name of theirs changes.
    cache = RecordCache()
    for i in range(50):
        cache.add_received([(Message(answers=(ptr(STYPE, f"Bare {i}.{STYPE}"),)), 1)], 1000.0)
    watch = WatchTask(STYPE)
    watch.update(cache, 1000.0)
    reads = _count_reads(cache)
    later = 1000.0 + PARTIAL_AFTER
    watch.update(cache, later)
    assert set(reads) == {f"bare {i}.{STYPE}" for i in range(50)}  # each, at its deadline
    reads.clear()
    for step in range(1, 4):
        other = a("elsewhere.local", "192.0.2.9")
        cache.add_received([(Message(answers=(other,)), 1)], later + step)
        watch.changed({name_key(other.name)})
        watch.update(cache, later + step)
    assert reads == [] and watch.out == []
    fresh = ptr(STYPE, f"New.{STYPE}")  # the PTR records change: the listing is read again
    cache.add_received([(Message(answers=(fresh,)), 1)], later + 4)
    watch.changed({name_key(STYPE), name_key(fresh.target)})
    watch.update(cache, later + 4)
    assert set(reads) == {name_key(STYPE), f"new.{STYPE}"}
    name = f"Bare 7.{STYPE}"
    cache.add_received([(Message(answers=(srv(name, "h7.local", 80),)), 1)], later + 5)
    watch.changed({name_key(name)})
    watch.update(cache, later + 5)
    assert [(e.kind, e.info.name) for e in watch.out] == [("added", name)]


@pytest.mark.parametrize("seed", range(300))
def test_incremental_browse_agrees_with_reading_everything_again(seed: int) -> None:
    new, reference = BrowseTask(STYPE), FullScanBrowse(STYPE)
    for (cache, now), asked in zip(_replay(seed, new), _asked(seed), strict=False):
        if not asked:
            continue
        if seed % 3 == 1:  # needs() first: patched there, read again by update()
            assert list(new.needs(cache, now)) == list(reference.needs(cache, now))
        new.update(cache, now)
        _same_listing(new, cache, now)
        reference.update(cache, now)
        assert new.out == reference.out, now
        assert list(new.needs(cache, now)) == list(reference.needs(cache, now))
        assert new.wake_at(cache, now) == reference.wake_at(cache, now), now
    new.finish(cache, now)
    reference.finish(cache, now)
    assert new.out == reference.out


def test_a_browse_does_not_read_unchanged_instances_again() -> None:
    """100 instances that never complete (no address), each with a TXT record of thousands of
    empty strings: a wake-up after an unrelated record arrived reads none of them again."""
    cache = RecordCache()
    for i in range(100):
        name = f"Inst {i}.{STYPE}"
        strings = [b""] * 2000 + [b"k=%d" % i]
        records = (ptr(STYPE, name), srv(name, f"nohost{i}.local", 80), txt(name, *strings))
        cache.add_received([(Message(answers=records), 1)], 1000.0)
    browse = BrowseTask(STYPE)
    browse.update(cache, 1000.0)
    reads = _count_reads(cache)
    other = a("elsewhere.local", "192.0.2.9")
    cache.add_received([(Message(answers=(other,)), 1)], 1001.0)
    browse.changed({name_key(other.name)})
    browse.update(cache, 1001.0)
    assert reads == []  # nothing of any instance, nor the PTR records
    assert browse.out == []


def test_a_browse_reads_again_an_instance_that_changed_while_its_ptr_said_goodbye() -> None:
    # Found by the random histories (2 seeds in 1,500): news about an instance whose PTR was
    # a goodbye at the time was used up unread, so it was never read again when it came back.
    cache = RecordCache()
    name, host = f"Inst 1.{STYPE}", "h1.local"
    cache.add_received([(Message(answers=(ptr(STYPE, name), srv(name, host, 80))), 1)], 1000.0)
    cache.add_received([(Message(answers=(txt(name, b"v=1"),)), 1)], 1000.0)
    browse = BrowseTask(STYPE)
    browse.update(cache, 1000.0)  # SRV and TXT, no address: not complete
    steps = [
        (1000.1, ptr(STYPE, name, ttl=0)),  # goodbye
        (1000.2, a(host, "192.0.2.1")),  # complete now, while the PTR says goodbye
        (1000.3, ptr(STYPE, name)),  # back
    ]
    for now, record in steps:
        cache.add_received([(Message(answers=(record,)), 1)], now)
        browse.changed({name_key(record.name)})
        browse.update(cache, now)
    browse.update(cache, 1000.3 + SETTLE)
    assert [info.name for info in browse.out] == [name]


def test_a_patched_listing_is_read_afresh_where_a_patch_cannot_place_a_record() -> None:
    # Read without expire() first (the Querier always expires first), the listing misses a
    # PTR record whose time is up but which the cache still holds. Refreshed, that record
    # keeps its place in the rrset, before the others: a patch cannot know where, and reads
    # the PTR records again. A record whose time is up goes from the listing, as from a read.
    cache = RecordCache(report_changes=True)
    cache.want(STYPE)
    x, y = f"X.{STYPE}", f"Y.{STYPE}"
    browse = BrowseTask(STYPE)
    _following(cache, browse, [ptr(STYPE, x, ttl=2), ptr(STYPE, y)], 1000.0)
    browse.update(cache, 1003.0)  # X's time is up, not expired
    assert list(browse.listing(cache, 1003.0)) == [name_key(y)]
    _following(cache, browse, [ptr(STYPE, x)], 1003.0)  # refreshed: before Y in the rrset
    _same_listing(browse, cache, 1003.0)
    assert list(browse.listing(cache, 1003.0)) == [name_key(x), name_key(y)]
    _following(cache, browse, [ptr(STYPE, y, ttl=2)], 1004.0)
    browse.update(cache, 1004.0)
    _following(cache, browse, [ptr(STYPE, y, ttl=0)], 1007.0)  # a goodbye after its time
    _same_listing(browse, cache, 1007.0)
    assert list(browse.listing(cache, 1007.0)) == [name_key(x)]


def test_instances_that_went_are_forgotten_without_reading_the_others() -> None:
    # Patched out of the listing, an instance leaves nothing behind in what the browse keeps
    # about the names it read, and the other instances are not read again.
    cache = RecordCache(report_changes=True)
    cache.want(STYPE)
    browse = BrowseTask(STYPE)
    for i in range(20):
        name = f"Inst {i}.{STYPE}"
        records = [ptr(STYPE, name, ttl=2 if i < 5 else 4500), srv(name, f"h{i}.local", 80)]
        _following(cache, browse, records, 1000.0)
    browse.update(cache, 1000.0)
    assert len(browse.names_of) == 20  # read, not complete (no TXT, no address)
    walked = browse.walked
    reads = _count_reads(cache)
    cache.expire(1002.5)  # the first five PTR records run out
    keys = cache.take_changed_keys()
    browse.changed({name_key(STYPE)}, keys)
    browse.update(cache, 1002.5)
    assert len(browse.listing(cache, 1002.5)) == 15
    assert browse.walked is walked  # patched, not read again
    assert set(browse.names_of) == {name_key(f"Inst {i}.{STYPE}") for i in range(5, 20)}
    assert all(k in browse.names_of for keys_ in browse.depends.values() for k in keys_)
    assert name_key(STYPE) not in reads  # the PTR records were not read again
    assert reads == []  # nor any instance that did not change


def test_a_watch_wakes_for_the_next_partial_report_deadline_not_one_past() -> None:
    # A deadline that came is taken by the next update(); asked before it, wake_at() still
    # leaves out deadlines past (they fire when their SRV arrives) and finds the next one.
    cache = RecordCache()
    watch = WatchTask(STYPE)
    cache.add_received([(Message(answers=(ptr(STYPE, f"A.{STYPE}"),)), 1)], 1000.0)
    watch.update(cache, 1000.0)
    cache.add_received([(Message(answers=(ptr(STYPE, f"B.{STYPE}"),)), 1)], 1001.0)
    watch.changed({name_key(STYPE)})
    watch.update(cache, 1001.0)
    assert watch.wake_at(cache, 1001.0) == 1000.0 + PARTIAL_AFTER
    assert watch.wake_at(cache, 1000.0 + PARTIAL_AFTER) == 1001.0 + PARTIAL_AFTER
    watch.update(cache, 1000.0 + PARTIAL_AFTER)
    assert watch.wake_at(cache, 1000.0 + PARTIAL_AFTER) == 1001.0 + PARTIAL_AFTER


def test_a_watch_keeps_its_heaps_of_times_bounded() -> None:
    # Each time an instance is read, its next refresh point and first expiry are pushed: the
    # stale ones, up to an hour ahead with a TTL of 4,500 s, must not pile up meanwhile.
    cache = RecordCache()
    watch = WatchTask(STYPE)
    now = 1000.0
    for step in range(400):
        now += 1.0
        name = f"Inst {step % 5}.{STYPE}"
        records = [ptr(STYPE, name), srv(name, "h.local", 80, ttl=4500), txt(name, b"v=1")]
        records.append(a("h.local", "192.0.2.1", ttl=4500))
        cache.add_received([(Message(answers=tuple(records)), 1)], now)
        watch.changed({name_key(r.name) for r in records})
        watch.update(cache, now)
        watch.refreshes(cache, now)
        watch.wake_at(cache, now)
    assert len(watch.due) == len(watch.ends) == 5
    assert len(watch.due.heap) <= 2 * 5 + instances.HEAP_SLACK
    assert len(watch.ends.heap) <= 2 * 5 + instances.HEAP_SLACK
