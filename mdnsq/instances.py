# Browse and watch: the tasks that follow a service type's instances (tasks.py has the others and
# the Task interface the Querier drives). Both are incremental, because a link may hold
# thousands of instances and a peer can send records of any of them in every packet: the
# Querier tells them which names were filed or removed and which PTR records of the type
# changed (RecordCache.take_changed_keys), and a wake-up patches the listing of instances and
# reads again only the instances those touch. Reading all of them on every wake-up was linear
# in the instances on the link (adr/005 §2 has the figures). tests/test_incremental_tasks.py
# checks both against versions that read everything again, over random link histories.
# Their completion rules are with the others in tasks.py.
from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mdnsq.cache import CacheEntry, Key, RecordCache, rrset_id
from mdnsq.names import name_key
from mdnsq.records import Question, RecordType, SRVRecord
from mdnsq.service import (
    ServiceEvent,
    ServiceInfo,
    base_type,
    build_service_info,
    denies_txt,
    instance_key,
)
from mdnsq.tasks import (
    ADDRESS_TYPES,
    MAX_RESOLVING,
    PARTIAL_AFTER,
    REFRESH_SUPPRESS,
    RESOLVE_HOLD,
    RESOLVE_REST,
    SETTLE,
    SUPPRESS,
    WATCH_MAX_INTERVAL,
    Task,
    addresses_heard,
    all_addresses_known,
    missing_questions,
)

__all__ = ["HEAP_SLACK", "BrowseTask", "WatchTask", "ask_refresh"]


class BrowseTask(Task):
    """Yields each instance once, when complete and its addresses have settled; at the
    deadline, the partial ones with an SRV.

    Settled is resolve_host's rule: both address types (those of ``types``) present with the
    cache-flush bit or denied by NSEC, or ``settle`` after its first address arrived.
    Responders send the families apart (Avahi answers a query over IPv6 with the AAAA alone,
    the same query over IPv4 with both), and an instance yielded on the first would lack the
    other address."""

    follows_changes = True
    continuous = True

    def __init__(
        self,
        service_type: str,
        settle: float = SETTLE,
        types: tuple[RecordType, ...] = ADDRESS_TYPES,
    ) -> None:
        super().__init__(service_type)
        self.service_type = service_type
        self.settle = settle
        self.types = types
        self.yielded: set[str] = set()
        self.complete_since: dict[str, float] = {}  # instance key -> first seen complete
        # Instances are read again only when a name they were read from changed (see
        # changed()): reading every instance on every wake-up cost ~0.9 ms an instance whose
        # TXT record holds thousands of empty strings (90 ms a wake-up for 100 of them).
        self.stale: set[str] | None = None  # instances to read again; None: all (first pass)
        self.depends: dict[str, set[str]] = {}  # name key -> instances read from its records
        self.names_of: dict[str, tuple[str, ...]] = {}  # instance -> the name keys it read
        # The service type's PTR records (instance key -> (instance name, its PTR entries)),
        # and each instance's first: read once, then patched from the keys that change
        # (_patch), and read again only where a patch cannot place a record.
        self.type_key = name_key(service_type)
        # An instance of the type is one label under its base type (RFC 6763 §4.1; a subtype's
        # PTR records point there too). Other PTR targets name no instance of it: a broken
        # responder's, or "Office Printer" alone from a packet cut before its pointer, which
        # was reported with an empty type.
        self.instance_suffix = "." + name_key(base_type(service_type))
        self.listed: dict[str, tuple[str, list[CacheEntry]]] | None = None
        self.firsts: dict[str, tuple[str, CacheEntry]] | None = None
        # The instances the last pass walked (a browse's firsts, a watch's listing), and each
        # one's place among them (see _to_read).
        self.walked: dict[str, Any] | None = None
        self.place: dict[str, int] = {}
        self.next_place = 0
        # Keys of the type's PTR records that changed since the listing was read (the cache
        # logs them while the type is wanted, as it is while this task runs; True: inserted),
        # and the instances a patch of the listing removed, for the next pass to forget. The
        # listing used to be read again in full on any change to them: a watch's wake-up cost
        # 13.5 ms with 4,000 instances, for one PTR record more.
        self.ptr_rrset = rrset_id(service_type, RecordType.PTR)
        self.news: dict[Key, bool] = {}
        self.gone: set[str] = set()
        # Instances that may still need questions (needs()): every instance a pass read or a
        # patch touched since needs() last found it resolved. Walking all of them cost 0.9-2.3 ms
        # a wake-up for a watch of 4,000 instances.
        self.open: set[str] = set()
        # Turns at the MAX_RESOLVING slots (needs()): since when each instance holds one, until
        # when a released one rests and how long it rested last, and when the next holder
        # may be released for an instance that waits (inf: nobody waits).
        self.holding: dict[str, float] = {}
        self.resting: dict[str, tuple[float, float]] = {}
        self.release_at = math.inf

    def changed(self, names: Iterable[str], keys: Mapping[Key, bool] | None = None) -> None:
        stale = self.stale
        if stale is None:  # not read yet: everything will be
            self.listed = self.firsts = None
            return
        if keys is None:  # which PTR records changed is not known: read them all again
            if self.type_key in names:
                self.listed = self.firsts = None
        elif keys and self.listed is not None:
            rrset = self.ptr_rrset
            news = self.news
            for key, inserted in keys.items():
                if key[0] == rrset:
                    if inserted:
                        news.pop(key, None)  # last in the order now
                        news[key] = True
                    elif key not in news:
                        news[key] = False
        depends = self.depends
        for name in names:
            found = depends.get(name)
            if found:
                stale.update(found)

    def _depend(self, key: str, names: tuple[str, ...]) -> None:
        """Instance ``key`` was read from the records of ``names`` (none: forget it)."""
        for name in self.names_of.pop(key, ()):
            keys = self.depends.get(name)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.depends[name]
        if names:
            self.names_of[key] = names
            for name in names:
                self.depends.setdefault(name, set()).add(key)

    def listing(self, cache: RecordCache, now: float) -> dict[str, tuple[str, list[CacheEntry]]]:
        """Instance key -> (instance name, its PTR entries), in the cache's order; not to be
        changed."""
        found = self.listed
        if found is not None and self.news:
            found = self._patch(cache, now)
        if found is None:
            self.news = {}
            found = {}
            for entry in cache.entries(self.service_type, RecordType.PTR, now):
                target: str = getattr(entry.record, "target", "")
                key = self._instance_key(target)
                if key is None:
                    continue
                if key in found:
                    found[key][1].append(entry)
                else:
                    found[key] = (target, [entry])
            self.listed = found
        return found

    def _instance_key(self, target: str) -> str | None:
        """The key of the instance a PTR target names, or None if it names none of this type."""
        return instance_key(target, self.instance_suffix)

    def _patch(
        self, cache: RecordCache, now: float
    ) -> dict[str, tuple[str, list[CacheEntry]]] | None:
        """Bring the listing up to date from the PTR keys that changed, as a fresh read would
        have it, or None where that needs a fresh read: an instance's first PTR record gone
        while others remain (its place may move), or a key the listing does not hold that
        was not inserted last (its place is unknown). The instances touched are marked
        stale, those removed gone; the listing, firsts and place change in place, so the
        next pass still reads only what changed (_to_read)."""
        listed = self.listed
        firsts = self.firsts
        stale = self.stale
        assert listed is not None
        news, self.news = self.news, {}
        if stale is None:
            return self._unpatched()
        place = self.place
        for key, inserted in news.items():
            target = key[2]
            instance = self._instance_key(target) if isinstance(target, str) else None
            if instance is None:
                continue  # never listed (see listing())
            entry = cache.entry(key)
            if entry is not None and entry.expires <= now:
                entry = None  # a fresh read would not list it
            group = listed.get(instance)
            ptrs = group[1] if group is not None else []
            at = next((i for i, old in enumerate(ptrs) if old.key == key), -1)
            if at >= 0:
                if entry is not None and not inserted:
                    ptrs[at] = entry  # refreshed, flushed or said goodbye: in place
                    if at == 0 and firsts is not None:
                        firsts[instance] = (listed[instance][0], entry)
                    stale.add(instance)
                    self.open.add(instance)
                    continue
                if at == 0 and len(ptrs) > 1:
                    return self._unpatched()
                del ptrs[at]  # removed, or moved to the end
                stale.add(instance)
                if not ptrs:
                    del listed[instance]
                    if firsts is not None:
                        del firsts[instance]
                    place.pop(instance, None)
                    self.gone.add(instance)
            if entry is None:
                continue
            if not inserted:
                return self._unpatched()
            stale.add(instance)
            self.open.add(instance)
            group = listed.get(instance)
            if group is not None:
                group[1].append(entry)
                continue
            listed[instance] = (target, [entry])
            if firsts is not None:
                firsts[instance] = (target, entry)
            place[instance] = self.next_place
            self.next_place += 1
            self.gone.discard(instance)
        return listed

    def _unpatched(self) -> dict[str, tuple[str, list[CacheEntry]]] | None:
        self.listed = self.firsts = None
        return None

    def instances(self, cache: RecordCache, now: float) -> dict[str, tuple[str, CacheEntry]]:
        """Instance key -> (instance name, its first PTR entry); not to be changed."""
        listed = self.listing(cache, now)
        firsts = self.firsts
        if firsts is None:
            firsts = self.firsts = {key: (name, ptrs[0]) for key, (name, ptrs) in listed.items()}
        return firsts

    def _unresolved(self, key: str, ptr: CacheEntry) -> bool:
        """Whether this instance still needs questions about it."""
        return key not in self.yielded and not ptr.goodbye

    def _to_read(
        self, current: dict[str, Any], stale: set[str] | None, due: Iterable[str]
    ) -> list[tuple[str, Any]] | None:
        """The instances a pass must look at, in listing order: while ``current`` is what the
        last pass walked (the PTR records unchanged) and the changed names are known, only
        those in ``stale`` or ``due``. None: the pass walks all of ``current``, which is
        remembered as walked. Walking every instance on every wake-up cost 3 ms with 4,000
        of them, and 27 ms in a watch when they were a peer's bare PTR records."""
        if current is self.walked and stale is not None:
            keys = {k for k in stale if k in current}
            keys.update(k for k in due if k in current)
            place = self.place
            return [(k, current[k]) for k in sorted(keys, key=place.__getitem__)]
        if current is not self.walked:
            self.walked = current
            self.place = {k: i for i, k in enumerate(current)}
            self.next_place = len(current)
        return None

    def _yield_new(self, cache: RecordCache, now: float, partial: bool) -> None:
        settling: dict[str, float] = {}  # only instances still complete and waiting
        current = self.instances(cache, now)  # first: a patch marks instances stale
        gone, self.gone = self.gone, set()
        stale, self.stale = (None if partial else self.stale), set()
        # While the PTR records are as last walked (or patched since), every instance not
        # yielded was read then, or said goodbye: only the stale and the settling ones need a
        # look.
        todo = self._to_read(current, stale, self.complete_since)
        if todo is None:
            for key in [k for k in self.names_of if k not in current]:
                self._depend(key, ())
            todo = list(current.items())
        else:
            for key in gone:
                self._depend(key, ())
        self.open.update(key for key, _ in todo)
        for key, (target, ptr) in todo:
            if key in self.yielded:
                continue
            if ptr.goodbye:
                self._depend(key, ())  # not read now: read it afresh if it comes back
                continue
            if (
                stale is not None
                and key not in stale
                and key in self.names_of
                and key not in self.complete_since
            ):
                continue  # read before, nothing it was read from changed, not settling
            info = build_service_info(cache, target, now, ptr)
            self._depend(key, (key,) if info is None else (key, name_key(info.host)))
            if info is not None:
                self._offer(cache, key, info, now, partial, settling)
        self.complete_since = settling

    def _offer(
        self,
        cache: RecordCache,
        key: str,
        info: ServiceInfo,
        now: float,
        partial: bool,
        settling: dict[str, float],
    ) -> None:
        """Yield an instance read now if it is complete and settled (at the deadline, if it
        has an SRV at all); note it in ``settling`` if it is complete and must wait."""
        if not partial:
            if not info.complete:
                return
            # From when its first address arrived (resolve_host's rule): heard long ago, at
            # once; heard in the pass before the first look, not (that is no cache answer).
            since = addresses_heard(cache, info.host, now, info.interface)
            if since is None:
                since = self.complete_since.get(key, now)
            if not (
                now >= since + self.settle or all_addresses_known(cache, info.host, now, self.types)
            ):
                settling[key] = since
                return
        self.yielded.add(key)
        self.out.append(info)

    def update(self, cache: RecordCache, now: float) -> None:
        self._yield_new(cache, now, partial=False)

    def wake_at(self, cache: RecordCache, now: float) -> float:
        settled = min(self.complete_since.values(), default=math.inf) + self.settle
        return min(settled, self.release_at)

    def needs(self, cache: RecordCache, now: float) -> Iterable[Question]:
        wanted = [Question(self.service_type, RecordType.PTR)]
        chosen: list[tuple[str, list[Question]]] = []
        waiting: list[tuple[str, list[Question]]] = []
        holding, resting = self.holding, self.resting
        current = self.instances(cache, now)
        # A watch walks its listing, a browse the firsts: the same keys in the same order.
        # Neither walked yet: the next pass reads (and opens) them all.
        walked = self.walked is current or self.walked is self.listed
        items: Iterable[tuple[str, Any]] = current.items()
        if walked:
            found = self.open
            for key in [k for k in found if k not in current]:
                found.discard(key)
            if 4 * len(found) < len(current):
                items = [(k, current[k]) for k in sorted(found, key=self.place.__getitem__)]
            else:  # most are open (a flood of bare PTR records): no sort, stop at the first 16
                items = ((k, v) for k, v in current.items() if k in found)
        for key, (target, ptr) in items:
            if self._unresolved(key, ptr):
                missing = missing_questions(cache, target, now)
                if missing:
                    rest = resting.get(key)
                    if rest is not None and rest[0] > now:
                        continue
                    if len(chosen) < MAX_RESOLVING:
                        chosen.append((key, missing))
                    else:
                        waiting.append((key, missing))
                        if len(waiting) >= MAX_RESOLVING:
                            break
                    continue
            elif walked:
                self.open.discard(key)
            holding.pop(key, None)  # answered: a turn it needs later starts afresh
        self._take_turns(chosen, waiting, now, len(current))
        for _, missing in chosen:
            wanted.extend(missing)
        return wanted

    def _take_turns(
        self,
        chosen: list[tuple[str, list[Question]]],
        waiting: list[tuple[str, list[Question]]],
        now: float,
        listed: int,
    ) -> None:
        """Give the slots of holders that had RESOLVE_HOLD to instances that wait, in order."""
        holding, resting = self.holding, self.resting
        if waiting:
            for i, (key, _) in enumerate(chosen):
                if not waiting:
                    break
                if now - holding.get(key, now) >= RESOLVE_HOLD:
                    last = resting.get(key, (0.0, RESOLVE_REST / 4))[1]
                    rest = min(4 * last, WATCH_MAX_INTERVAL)
                    resting[key] = (now + rest, rest)
                    del holding[key]
                    chosen[i] = waiting.pop(0)
        for key, _ in chosen:
            holding.setdefault(key, now)
        self.release_at = (
            min(holding[key] for key, _ in chosen) + RESOLVE_HOLD if waiting else math.inf
        )
        if len(holding) + len(resting) > 2 * listed + 64:
            held = {key for key, _ in chosen}
            for key in [k for k in holding if k not in held]:
                del holding[key]  # resolved, gone, or past the walk: a turn starts afresh
            for key in [k for k, (until, _) in resting.items() if until <= now]:
                del resting[key]

    def finish(self, cache: RecordCache, now: float) -> None:
        self._yield_new(cache, now, partial=True)


def ask_refresh(entry: CacheEntry, point: int, until: float, wanted: dict[Question, float]) -> int:
    """Refresh ``entry`` if its refresh point number ``point`` comes by ``until`` (RFC 6762
    §5.2): add its question to ``wanted`` with its same-question suppression window, and
    return the number of the next point after that (points that passed unseen are skipped);
    else ``point``."""
    due = entry.refresh_time(point)
    if due is None or due > until:
        return point
    while due is not None and due <= until:
        point += 1
        due = entry.refresh_time(point)
    record = entry.record
    # An NSEC record here says the instance has no TXT record (_entries_of): the question
    # that brings it again is TXT's.
    rtype = RecordType.TXT if record.type == RecordType.NSEC else record.type
    question = Question(record.name, rtype)  # equal whatever the name case
    window = min(SUPPRESS, REFRESH_SUPPRESS * entry.ttl)
    wanted[question] = min(window, wanted.get(question, window))
    return point


def _handed_out(info: ServiceInfo) -> ServiceInfo:
    """``info`` with a TXT dict of its own, for a caller to keep or change (once an event)."""
    return dataclasses.replace(info, txt=dict(info.txt))


def _removed(info: ServiceInfo) -> ServiceEvent:
    """The last info reported, gone: nothing of it is left to expire (it said the seconds left
    as of that report, up to 75 minutes, as if the instance lived on)."""
    return ServiceEvent("removed", dataclasses.replace(info, ttl=0))


# Stale items a heap of times may hold beyond twice its live ones, before it is rebuilt.
HEAP_SLACK = 64


class _Times:
    """Instance -> a time, whose earliest is found without a pass over all of them: a heap of
    (time, instance) pushes, stale ones dropped when they come to the top, and the heap rebuilt
    when they outnumber the live ones. A pass cost up to 0.6 ms a wake-up at 4,000 instances."""

    __slots__ = ("heap", "times")

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[str]:
        return iter(self.times)

    def get(self, key: str) -> float | None:
        return self.times.get(key)

    def set(self, key: str, time: float) -> None:
        self.times[key] = time
        if time < math.inf:
            heapq.heappush(self.heap, (time, key))
            if len(self.heap) > 2 * len(self.times) + HEAP_SLACK:
                self.heap = [(t, k) for k, t in self.times.items() if t < math.inf]
                heapq.heapify(self.heap)

    def pop(self, key: str) -> None:
        self.times.pop(key, None)

    def first(self) -> float:
        heap, times = self.heap, self.times
        while heap and times.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else math.inf

    def take_until(self, now: float) -> list[str]:
        """The instances whose time is ``now`` or earlier; they keep it until set again."""
        heap, times = self.heap, self.times
        found: dict[str, None] = {}
        while heap and heap[0][0] <= now:
            time, key = heapq.heappop(heap)
            if times.get(key) == time:
                found[key] = None
        return list(found)


class WatchTask(BrowseTask):
    """Reports added / updated / removed by comparing the cache with what it reported last.

    Incrementally: the Querier says which names changed (records filed, expired or evicted),
    and a wake-up reads again only the instances whose instance or host name changed, whose
    PTR records changed, or whose partial-report deadline came; refresh queries and the next
    wake-up come from times kept per instance. Reading every instance on every wake-up cost
    20-30 us an instance in `update`, and as much again in `refreshes` and `wake_at` (33 ms a
    received batch with 500 instances: adr/005)."""

    max_interval = WATCH_MAX_INTERVAL

    def __init__(self, service_type: str) -> None:
        super().__init__(service_type)
        self.reported: dict[str, ServiceInfo] = {}  # in the order first reported
        # Instances not reported yet -> their partial-report deadline (PARTIAL_AFTER after they
        # were first read).
        self.pending = _Times()
        # Cache entry key -> (reception time, refresh points acted on, expiry) for the records
        # watched. Kept while the record lives, even when no instance reads it for a while: a
        # record that comes back (its SRV pointing at that host again) is not asked about twice
        # for one refresh point.
        self.refreshed: dict[Any, tuple[float, int, float]] = {}
        self.marks: dict[str, tuple[tuple[float, float, bool], ...]] = {}  # its PTRs, as read
        self.due = _Times()  # instance -> its next refresh point
        self.ends = _Times()  # instance -> when its first record expires
        # Pending instances read after their partial-report deadline with nothing to report
        # (a PTR alone): read again only when a name of theirs changes, as wake_at assumes.
        self.overdue: set[str] = set()
        self.kept_of: dict[str, tuple[str, ...]] = {}  # reported instance -> its names kept

    def _entries_of(
        self, cache: RecordCache, now: float, target: str, ptrs: list[CacheEntry]
    ) -> list[CacheEntry]:
        """The records an instance's report is read from: its PTRs, SRV, TXT and addresses,
        and an NSEC record saying it has no TXT record (service.txt_denial), which stands for
        one: left out, it was never refreshed, and each time it expired the watch reported
        the instance incomplete, then complete again."""
        found = list(ptrs)
        for rtype in (RecordType.SRV, RecordType.TXT):
            for entry in cache.entries(target, rtype, now):
                found.append(entry)
                srv = entry.record
                if isinstance(srv, SRVRecord):
                    found.extend(cache.entries(srv.target, RecordType.A, now))
                    found.extend(cache.entries(srv.target, RecordType.AAAA, now))
        found.extend(e for e in cache.entries(target, RecordType.NSEC, now) if denies_txt(e))
        return found

    def _depend(self, key: str, names: tuple[str, ...]) -> None:
        """As BrowseTask's; and a reported instance's names are kept in the cache: evicted by
        unrelated traffic (a busy link fills the cache), its SRV record was missing, and the
        watch reported a live instance removed."""
        old = self.kept_of.get(key, ())
        super()._depend(key, names)
        new = names if key in self.reported else ()
        if new != old:
            self._keep(old, -1)
            self._keep(new, +1)
            if new:
                self.kept_of[key] = new
            else:
                self.kept_of.pop(key, None)

    def kept_names(self) -> Iterator[str]:
        for names in self.kept_of.values():
            yield from names

    def _forget(self, key: str) -> None:
        self._depend(key, ())
        self.marks.pop(key, None)
        self.due.pop(key)
        self.ends.pop(key)

    def update(self, cache: RecordCache, now: float) -> None:
        current = self.listing(cache, now)  # first: a patch marks instances stale
        gone, self.gone = self.gone, set()
        stale, self.stale = self.stale, set()
        pending = self.pending
        overdue = self.overdue
        # Only the stale instances and those whose deadline came, while the PTR records are
        # unchanged: no instance came or went, no mark changed.
        came = [k for k in pending.take_until(now) if k not in overdue]
        todo = self._to_read(current, stale, came)
        if todo is None:
            for key in [k for k in self.reported if k not in current]:
                self.out.append(_removed(self.reported.pop(key)))
            for key in [k for k in pending if k not in current]:
                pending.pop(key)
            overdue.intersection_update(pending)
            for key in [k for k in self.names_of if k not in current]:
                self._forget(key)
            todo = list(current.items())
        elif gone:
            # Removed from the listing by a patch: reported gone in the order they were
            # reported, as the full pass above does (a pass over those reported, only when
            # some instance went).
            for key in [k for k in self.reported if k in gone]:
                self.out.append(_removed(self.reported.pop(key)))
            for key in gone:
                pending.pop(key)
                overdue.discard(key)
                self._forget(key)
        self.open.update(key for key, _ in todo)
        for key, (target, ptrs) in todo:
            mark = tuple((e.received, e.expires, e.goodbye) for e in ptrs)
            deadline = pending.get(key)
            if (
                stale is not None
                and key not in stale
                and self.marks.get(key) == mark
                and (deadline is None or now < deadline or key in overdue)
            ):
                continue
            self.marks[key] = mark
            if key not in self.reported and all(e.goodbye for e in ptrs):
                # Going (a goodbye nobody rescued, §10.1), as browse takes it: not added, to be
                # removed a second later. A rescue is a new mark: it is read again then.
                pending.pop(key)
            else:
                info = build_service_info(cache, target, now, ptrs[0])
                if info is None and key in self.reported:
                    # No SRV record names its host any more: it expired (its four refresh
                    # queries went unanswered: the peer vanished, or the link was down), or it
                    # says "decidedly not available" (RFC 2782). Gone until an SRV record names
                    # a host again; unreported, it is asked about again (needs()) and then
                    # added afresh. Kept as reported, it kept its old host and port, and was
                    # never asked about: its PTR record (TTL 4500) outlives its SRV (120), and
                    # as a known answer it kept the responder silent.
                    self.out.append(_removed(self.reported.pop(key)))
                self._report(key, info, now)
            entries = self._entries_of(cache, now, target, ptrs)
            # Its own name, and its hosts' (the SRV targets, whether or not their addresses
            # are known yet).
            names = {key}
            for entry in entries:
                srv = entry.record
                if isinstance(srv, SRVRecord):
                    names.add(name_key(srv.target))
            self._depend(key, tuple(names))
            self.due.set(key, self._next_refresh(entries))
            self.ends.set(key, min((e.expires for e in entries), default=math.inf))
            deadline = pending.get(key)
            if deadline is None:
                overdue.discard(key)
            elif now >= deadline:
                overdue.add(key)

    def _report(self, key: str, info: ServiceInfo | None, now: float) -> None:
        # The watch keeps the info it built, to compare with; the caller gets its own copy of
        # the TXT dict: a caller editing info.txt made a false "updated", or hid a real one.
        old = self.reported.get(key)
        if old is not None:
            if info is not None and not info.same_content(old):
                self.reported[key] = info
                self.out.append(ServiceEvent("updated", _handed_out(info)))
            return
        deadline = self.pending.get(key)
        if deadline is None:
            deadline = now + PARTIAL_AFTER
            self.pending.set(key, deadline)
        if info is not None and (info.complete or now >= deadline):
            self.pending.pop(key)
            self.reported[key] = info
            self.out.append(ServiceEvent("added", _handed_out(info)))

    def _unresolved(self, key: str, ptr: CacheEntry) -> bool:
        old = self.reported.get(key)
        return old is None or not old.complete

    def _refresh_point(self, entry: CacheEntry) -> int:
        """How many refresh points of this reception were acted on (0 after each refresh)."""
        progress = self.refreshed.get(entry.key)
        return progress[1] if progress is not None and progress[0] == entry.received else 0

    def _next_refresh(self, entries: list[CacheEntry]) -> float:
        due = math.inf
        for entry in entries:
            at = entry.refresh_time(self._refresh_point(entry))
            if at is not None and at < due:
                due = at
        return due

    def refreshes(
        self, cache: RecordCache, now: float, ahead: float = 0.0
    ) -> dict[Question, float]:
        wanted: dict[Question, float] = {}
        current = self.listing(cache, now)
        until = now + ahead
        # One not in the listing went from it since the last pass, which forgets it.
        for key in [k for k in self.due.take_until(until) if k in current]:
            target, ptrs = current[key]
            entries = self._entries_of(cache, now, target, ptrs)
            for entry in entries:
                point = self._refresh_point(entry)
                passed = ask_refresh(entry, point, until, wanted)
                if passed != point:
                    self.refreshed[entry.key] = (entry.received, passed, entry.expires)
            self.due.set(key, self._next_refresh(entries))
        if len(self.refreshed) > 8 * len(current) + 64:
            # Forget the progress of records that expired (a new reception starts afresh).
            self.refreshed = {k: v for k, v in self.refreshed.items() if v[2] > now}
        return wanted

    def wake_at(self, cache: RecordCache, now: float) -> float:
        wake = min(self.due.first(), self.ends.first())
        deadline = self.pending.first()
        if deadline <= now:
            # A deadline not taken by a pass at this time (update() was not called first):
            # look at them all. Deadlines past are left out: those fire when their SRV
            # arrives.
            return min([wake, *(t for t in self.pending.times.values() if t > now)])
        return min(wake, deadline)

    def finish(self, cache: RecordCache, now: float) -> None:
        pass
