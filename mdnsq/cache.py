# The record cache one Querier shares between all its calls.
#
# Operations: add the records of one received packet (with the interface it arrived on), look up
# the live records of a (name, type), list known answers for a question, expire what is due.
#
# Goals:
# - RFC 6762 semantics: TTL expiry; a goodbye (TTL 0) expires a record one second later (§10.1);
#   a record with the cache-flush bit expires the other records of its name/type/class *on the
#   same interface* that were received more than one second earlier, also after one second (§10.2).
#   That takes a walk over the bucket, so one rrset is walked at most once per FLUSH_GAP; a flush
#   record that comes sooner is applied by the next walk as of its own time, before anything it
#   flushes could expire. What expires, and when, is as if every flush record had walked at once
#   (tests/test_cache.py compares the two over random histories); only the expiry times that
#   readers see may lag by up to FLUSH_GAP. Every read applies the held-back flushes that are due,
#   so a reader that never adds or expires (process() and cached()) sees what expired. A caller
#   that keeps what it read asks flush_due() when to look again, and take_changed() which names a
#   held-back flush touched.
# - Bounded: at most MAX_RRSET records of one name, type and class (PTR aside), and at most
#   `max_records` entries. Past that, the entries received longest ago are
#   evicted, a sixteenth of the bound at a time (one pass over the oldest, not one per record),
#   skipping names a caller is waiting for (`want`) unless fewer than that many others are left.
#   Not "closest to expiry": a flood of junk with long TTLs would then evict every real answer
#   (TTL 120) the moment it arrived. Under a flood, passively cached records go first; what a
#   running call asked about stays.
# - Cheap on the hot path, and invisible to the cyclic GC: adding a record is a few dict operations
#   and one heap push, and the cache keeps no objects, only tuples of str/int/float/bytes. Python's
#   GC stops tracking such tuples after a look or two, so a cache of 10^5 records costs no
#   collection time. Keeping the parser's record objects (tuple subclasses, never untracked) and
#   an entry object per record made every full collection rescan them all: a third of parse+cache
#   time for a 20,000-packet stream (figures in adr/005-querier.md).
#   No clock inside: callers pass `now` (monotonic seconds), which keeps it deterministic.
#
# Plan: every entry has a key (bucket, interface, *record data). The bucket is one string,
# chr(type) + chr(class) + name_key(name): a str is never GC-tracked (a tuple would be one more
# tracked object per record), and its fixed-width head keeps it unambiguous. The data is the
# record's tuple after its (name, class, ttl, cache_flush) head (mdnsq.records' layout), so two
# receptions of the same data on one interface share one key whatever their TTL or name case.
# The value is a plain tuple (cache_flush, received, expires, ttl, goodbye, name as received,
# filed). The new records of one batch with the same TTL and flush bit share one, with no name:
# no tracked object per record but its key. Their name as received is kept in `_names` where it
# is not the name key itself (most names are lower case already). Readers get CacheEntry
# snapshots with a record rebuilt from key + value (reads are rare next to writes in a busy
# network). `_entries` keeps keys in order of last reception (the eviction order); `_buckets`
# maps bucket -> its key (a bucket of one) or a dict of keys.
# Expiry is filed lazily in groups: `_due` maps a time to the keys filed under it and a heap
# holds those times. The records of one received batch share `now`, so a batch of 50 packets
# makes a few groups, not 200 heap items. An entry refreshed to a later expiry stays where it is
# filed and is filed again when its group comes up; an earlier expiry (goodbye, flush) files it
# again at once, and `filed` says which group is current. The groups are rebuilt when stale keys
# outnumber live entries.
from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from itertools import islice
from typing import Any, Final, NamedTuple

from mdnsq.errors import InvalidArgument
from mdnsq.names import name_key
from mdnsq.records import Message, Record, RecordType, UnknownRecord

__all__ = ["CacheEntry", "RecordCache", "rrset_id"]

_heappush = heapq.heappush
_new = tuple.__new__

# §10.1 / §10.2: a goodbye or a flushed record lives on for one more second.
GRACE = 1.0
# An rrset's records are scanned for a flush at most this often; less than GRACE (_request_flush).
FLUSH_GAP = 0.25
# Records of one name, type and class (all interfaces together) the cache holds, PTR aside (a
# service type can have thousands of instances): past it, the least recently received go.
# Every call about a name reads all of its records on each wake-up, so one name must not hold
# thousands: 4,000 A records for a host a watch follows made each packet that added one more
# cost 14 ms. An honest host has a handful of addresses.
MAX_RRSET = 64
# Refresh points (fraction of TTL, RFC 6762 §5.2) and the most added to each.
REFRESH_POINTS = (0.80, 0.85, 0.90, 0.95)
REFRESH_JITTER = 0.02

Bucket = str  # chr(type) + chr(class) + name_key(name)
_NO_NAMES: frozenset[str] = frozenset()
Key = tuple[Any, ...]
_NO_KEYS: Mapping[Key, bool] = {}  # returned when nothing changed: never written to
Members = Key | dict[Key, None]


class CacheEntry(NamedTuple):
    """One cached record as received on one interface: an immutable snapshot.

    ``key`` identifies the entry across refreshes; ``seq`` is expiry bookkeeping (the time of
    the expiry group the entry is filed in).
    """

    record: Record
    interface: int
    received: float
    expires: float
    ttl: int
    goodbye: bool
    seq: float
    key: Key

    def remaining(self, now: float) -> float:
        """Seconds of TTL left at ``now`` (the Querier's clock: ``q.now()``)."""
        return self.expires - now

    @property
    def jitter(self) -> float:
        """The share of the TTL added to each refresh point (RFC 6762 §5.2: up to 2 %)."""
        # Per-record and per-process (str hashing is salted), so hosts and records spread out,
        # without storing anything: the entry stays a tuple the GC can ignore.
        return (hash(self.key) % 1024) / 1024 * REFRESH_JITTER

    def refresh_time(self, point: int) -> float | None:
        """When refresh query number ``point`` (0..3) is due; None past the last or for goodbyes."""
        if self.goodbye or point >= len(REFRESH_POINTS):
            return None
        return self.received + self.ttl * (REFRESH_POINTS[point] + self.jitter)


def _record_classes() -> dict[int, type[Record]]:
    """Record type -> record class, for rebuilding records from stored fields."""
    found: dict[int, type[Record]] = {}
    pending = list(Record.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        rtype = cls.__dict__.get("type")
        if isinstance(rtype, int):
            found[int(rtype)] = cls
    return found


_CLASSES = _record_classes()
# Record class -> the head of its buckets in class IN, the class of nearly every record.
_HEAD_IN = {cls: chr(rtype) + chr(1) for rtype, cls in _CLASSES.items() if cls is not UnknownRecord}


def _bucket(lowered: str, rtype: int, rclass: int) -> Bucket:
    return chr(rtype) + chr(rclass) + lowered


def rrset_id(name: str, rtype: int, rclass: int = 1) -> Bucket:
    """What the keys of the entries of (name, type, class) start with (``key[0]``)."""
    return _bucket(name_key(name), rtype, rclass)


_OPT_HEAD = chr(41)


def _shared_ptr(record: Record) -> bool:
    """A DNS-SD PTR record (of a service type, a subtype or the type enumeration): shared by
    every host offering the type (RFC 6763 §4.1), so its cache-flush bit, which "MUST NOT ever
    be set in any shared resource record" (RFC 6762 §10.2), flushes nothing. Some embedded
    responders set it on every record: honoured, one device's announcement removed every
    other device's instance of the type a second later, until the next PTR query (up to an
    hour into a watch)."""
    return record.type == RecordType.PTR and name_key(record.name).endswith(
        ("._tcp.local", "._udp.local")
    )


def _head_of(record: Record) -> str:
    return chr(int(record.type)) + chr(record[1])


# What the cache stores per entry: a plain tuple of atomic values, never a record object.
# (cache_flush, received, expires, ttl, goodbye, name as received or None (then see
# `_names`), expiry group filed in)
Stored = tuple[bool, float, float, int, bool, str | None, float]
_FLUSH: Final = 0
_RECEIVED: Final = 1
_EXPIRES: Final = 2
_TTL: Final = 3
_GOODBYE: Final = 4
_NAME: Final = 5
_FILED: Final = 6


def _keys_in(members: Members) -> Iterable[Key]:
    return members if isinstance(members, dict) else (members,)


def _view(key: Key, s: Stored, names: dict[Key, str]) -> CacheEntry:
    bucket = key[0]
    cls = _CLASSES.get(ord(bucket[0]), UnknownRecord)
    name = s[_NAME]
    if name is None:  # filed inline: in `_names`, or the name key itself
        name = names.get(key) or bucket[2:]
    record: Record = _new(cls, (name, ord(bucket[1]), s[_TTL], s[_FLUSH]) + key[2:])  # noqa: RUF005
    return _new(
        CacheEntry,
        (record, key[1], s[_RECEIVED], s[_EXPIRES], s[_TTL], s[_GOODBYE], s[_FILED], key),
    )


class RecordCache:
    """TTL-bounded, size-bounded store of received records; not thread-safe (the Querier locks)."""

    def __init__(self, max_records: int = 4096, *, report_changes: bool = False) -> None:
        # NaN passed the old `< 1` check and the cache never evicted; a str failed deep inside.
        if not isinstance(max_records, int) or isinstance(max_records, bool):
            raise TypeError(f"max_records must be an int, not {type(max_records).__name__}")
        if max_records < 1:
            raise InvalidArgument("max_records must be at least 1")
        self.max_records = max_records
        # Name keys whose records changed other than by a record filed or an expiry (evicted,
        # trimmed, or flushed by a held-back flush record) since take_changed() was last called,
        # when asked for.
        self._changed_names: set[str] | None = set() if report_changes else None
        # The PTR rrsets of wanted names (when reporting changes), as buckets for one lookup a
        # record. Every change to one of their entries is logged by key, in the order the changes
        # happened, with True where the key was (re)inserted, so at the end of its bucket's
        # order: a browse of 4,000 instances patches its listing from the keys that changed
        # instead of reading all 4,000 again whenever one PTR record arrives.
        self._follow: set[Bucket] = set()
        self._changed_keys: dict[Key, bool] = {}
        self._entries: dict[Key, Stored] = {}  # oldest reception first
        # the name as received of an entry filed inline, where it is not bucket[2:]
        self._names: dict[Key, str] = {}
        # bucket -> its one key, or a dict of its keys (a dict per bucket of one would double
        # the tracked objects a new name costs)
        self._buckets: dict[Bucket, Members] = {}
        # Expiry: entries are filed in groups by expiry time (the records of a batch share
        # `now`, so their TTLs give a handful of groups), a heap holds the group times.
        self._heap: list[float] = []
        self._due: dict[float, list[Key]] = {}
        self._stale = 0  # keys in groups whose entry is gone or filed elsewhere
        self._wanted: dict[str, int] = {}  # name_key -> how many callers wait for it
        # §10.2 flushes: rrset (bucket, interface) -> when it was last scanned, and the times of
        # flush records for it that came within FLUSH_GAP of that scan, to apply as of then.
        self._scanned: dict[tuple[Bucket, int], float] = {}
        self._requests: dict[tuple[Bucket, int], list[float]] = {}
        self._requests_due = float("inf")
        self.flush_gap = FLUSH_GAP  # 0: every flush record scans at once (the tests' reference)
        self.evicted = 0
        self.flushed = 0

    def __len__(self) -> int:
        return len(self._entries)

    # -- adding ---------------------------------------------------------------------------

    def add(self, record: Record, interface: int, now: float) -> CacheEntry | None:
        """Store or refresh one record; returns its entry (None for a goodbye of nothing)."""
        key = self._add(record, interface, now)
        if key is None:
            return None
        stored = self._entries.get(key)
        return None if stored is None else _view(key, stored, self._names)

    def add_all(self, records: Iterable[Record], interface: int, now: float) -> int:
        """Add the records of one packet; returns how many were stored or refreshed."""
        return self.add_received(((Message(answers=tuple(records)), interface),), now)

    def add_received(self, batch: Iterable[tuple[Message, int]], now: float) -> int:
        """Add the answers and additional records of received responses, each with the
        interface it arrived on (questions and authorities are not for caching); returns how
        many records were stored or refreshed. One call per received batch: the setup below
        is paid once, not twice per packet."""
        # Three cases make most of a busy link: the first record of its (name, type, class) (a
        # new instance, a new host), a new record without the cache-flush bit in a bucket we
        # know (a new instance's PTR), and a refresh that flushes nothing. None needs flush or
        # goodbye logic, so they are filed inline here, without a method call. Everything else
        # goes to _add_to.
        if self._requests:
            self._apply_requests(now)
        stored = 0
        entries = self._entries
        buckets = self._buckets
        names = self._names
        due = self._due
        follow = self._follow
        head_in = _HEAD_IN
        # TTL -> (value, expiry group) for such records without / with the flush bit: a batch
        # shares `now`, so its new records of one TTL share one value tuple and one group.
        plain: dict[int, tuple[Stored, list[Key]]] = {}
        flushed: dict[int, tuple[Stored, list[Key]]] = {}
        for message, interface in batch:
            records = message[3]  # Message.answers, then .additionals
            if message[5]:
                records = records + message[5] if records else message[5]
            for record in records:
                name = record[0]
                head = head_in.get(record.__class__) if record[1] == 1 else None
                if head is None:
                    head = _head_of(record)
                    if head[0] == _OPT_HEAD:
                        continue  # EDNS0's pseudo-record: never cached (RFC 6891 §6.1.1)
                # name_key, inlined: DNS case-insensitivity is ASCII only (RFC 4343).
                lowered = name.lower() if name.isascii() else name_key(name)
                bucket = head + lowered
                if len(record) == 5:  # one data field: PTR, A, AAAA, TXT, CNAME
                    key = (bucket, interface, record[4])
                else:
                    key = (bucket, interface) + record[4:]  # noqa: RUF005 (faster than *)
                members = buckets.get(bucket)
                ttl = record[2]
                if members is None:
                    if not ttl:
                        continue  # a goodbye for a record we do not hold
                    shared = flushed if record[3] else plain
                elif (old := entries.get(key)) is None and ttl and not record[3]:
                    shared = plain
                elif (
                    old is not None
                    and ttl
                    and (expires := now + ttl) >= old[_EXPIRES]
                    and not (record[3] and isinstance(members, dict))
                ):
                    # A refresh to a later expiry that flushes nothing (see _add_to): it moves to
                    # the end of the eviction order, with the newest name spelling and TTL.
                    del entries[key]
                    entries[key] = (record[3], now, expires, ttl, False, name, old[_FILED])
                    if follow and bucket in follow:
                        self._changed_keys.setdefault(key, False)
                    stored += 1
                    continue
                else:
                    if self._add_to(record, bucket, key, members, interface, now) is not None:
                        stored += 1
                    if self._due is not due:  # filing again for an earlier expiry rebuilt them
                        due = self._due
                        plain, flushed = {}, {}
                    continue
                new = shared.get(ttl)
                if new is None:
                    expires = now + ttl
                    group = due.get(expires)
                    if group is None:
                        group = due[expires] = []
                        _heappush(self._heap, expires)
                    value = (record[3], now, expires, ttl, False, None, expires)
                    new = shared[ttl] = (value, group)
                entries[key] = new[0]
                new[1].append(key)
                if follow and bucket in follow:
                    self._inserted(key)
                if members is None:
                    buckets[bucket] = key  # a bucket of one is the key itself, not a dict
                elif isinstance(members, dict):
                    members[key] = None
                    if len(members) > MAX_RRSET and bucket[0] != "\x0c":
                        self._trim(members)
                        if self._due is not due:  # the trim rebuilt the groups
                            due = self._due
                            plain, flushed = {}, {}
                else:
                    buckets[bucket] = {members: None, key: None}
                if lowered != name:
                    names[key] = name
                if len(entries) > self.max_records:
                    self._evict()
                    if self._due is not due:  # the eviction rebuilt the groups
                        due = self._due
                        plain, flushed = {}, {}
                stored += 1
        return stored

    def _add(self, record: Record, interface: int, now: float) -> Key | None:
        bucket = _head_of(record) + name_key(record.name)
        key = (bucket, interface) + record[4:]  # noqa: RUF005
        return self._add_to(record, bucket, key, self._buckets.get(bucket), interface, now)

    def _add_to(
        self,
        record: Record,
        bucket: Bucket,
        key: Key,
        members: Members | None,
        interface: int,
        now: float,
    ) -> Key | None:
        entries = self._entries
        old = entries.get(key)
        # A goodbye flushes nothing, flush bit or not: it says this one record is going (RFC
        # 6762 §10.1), not that the rrset is complete. Avahi sends its unique records' goodbyes
        # with the bit set: read as a flush, one address withdrawn took the host's others.
        # Nor does a DNS-SD PTR record (_shared_ptr).
        if (
            members is not None
            and record.cache_flush
            and record.ttl
            and (old is None or (isinstance(members, dict) and len(members) > 1))
            and not _shared_ptr(record)
        ):
            self._request_flush(bucket, members, key, now)
            # Again: filing what it flushed may have rebuilt the expiry groups, and filed this
            # entry too. Its group as read before would be gone, and it would never expire.
            old = entries.get(key)
        ttl = record.ttl
        if old is not None and self._follow and bucket in self._follow:
            self._changed_keys.setdefault(key, False)
        if ttl == 0:
            if old is None:
                return None
            if not old[_GOODBYE]:
                expires = min(old[_EXPIRES], now + GRACE)
                filed = self._file(expires, key) if expires < old[_EXPIRES] else old[_FILED]
                entries[key] = (
                    old[_FLUSH],
                    old[_RECEIVED],
                    expires,
                    old[_TTL],
                    True,
                    old[_NAME],
                    filed,
                )
            return key
        expires = now + ttl
        if old is not None:
            # Same data: a refresh. It moves to the end of the eviction order and keeps the
            # newest name spelling and TTL. A later expiry is not re-filed (see expire).
            filed = self._file(expires, key) if expires < old[_EXPIRES] else old[_FILED]
            del entries[key]
            entries[key] = (record.cache_flush, now, expires, ttl, False, record.name, filed)
            return key
        entries[key] = (record.cache_flush, now, expires, ttl, False, record.name, expires)
        if self._follow and bucket in self._follow:
            self._inserted(key)
        if members is None:
            self._buckets[bucket] = key
        elif isinstance(members, dict):
            members[key] = None
            if len(members) > MAX_RRSET and bucket[0] != "\x0c":
                self._trim(members)
        else:
            self._buckets[bucket] = {members: None, key: None}
        self._file_new(expires, key)
        if len(entries) > self.max_records:
            self._evict()
        return key

    def _file_new(self, expires: float, key: Key) -> None:
        group = self._due.get(expires)
        if group is None:
            group = self._due[expires] = []
            _heappush(self._heap, expires)
        group.append(key)

    def _file(self, expires: float, key: Key) -> float:
        """File an entry again for an earlier expiry; returns the group time to store (its
        item in the older group becomes stale)."""
        if self._stale >= len(self._entries) + 64:
            self._rebuild_heap()  # first: a rebuild after filing would lose the new item
        self._stale += 1  # after: the rebuild filed the entry at its old time, now stale
        self._file_new(expires, key)
        return expires

    def _request_flush(self, bucket: Bucket, members: Members, key: Key, now: float) -> None:
        """A record with the cache-flush bit arrived for (bucket, key's interface): flush the
        rrset's other records received more than a second ago (§10.2). A scan walks the whole
        bucket, so an rrset is scanned at most once per FLUSH_GAP: a flush record that comes
        sooner is noted, and applied as of its own time by the next scan, which runs before
        anything it flushes could expire (FLUSH_GAP < GRACE). Scanned on every flush record, a
        bucket of 4,000 records under one name made each one-record packet cost 450 us."""
        rrset = (bucket, key[1])
        last = self._scanned.get(rrset)
        if last == now:
            return  # the same batch: its other records cannot be a second old
        gap = self.flush_gap
        if last is not None and now < last + gap:
            times = self._requests.setdefault(rrset, [])
            if not times or times[-1] != now:
                times.append(now)
            self._requests_due = min(self._requests_due, last + gap)
            return
        times = self._requests.pop(rrset, [])
        times.append(now)
        self._scanned[rrset] = now
        self._flush(_keys_in(members), key, rrset[1], times)
        if len(self._scanned) > 1024:  # forget scans too old to hold a request back
            self._scanned = {r: t for r, t in self._scanned.items() if t + gap > now}

    def _apply_requests(self, now: float) -> None:
        """Scan the rrsets whose noted flush records are due (see _request_flush)."""
        if now < self._requests_due:
            return
        due = self._requests_due = float("inf")
        gap = self.flush_gap
        for rrset in list(self._requests):
            last = self._scanned.get(rrset, -due)
            if now < last + gap:
                self._requests_due = min(self._requests_due, last + gap)
                continue
            times = self._requests.pop(rrset)
            # As of the latest noted time, not now: a flush record in the batch being filed
            # must still scan as of its own time (at most two walks per gap, then).
            self._scanned[rrset] = times[-1]
            members = self._buckets.get(rrset[0])
            if members is not None:
                flushed = self.flushed
                self._flush(_keys_in(members), None, rrset[1], times)
                if self.flushed != flushed and self._changed_names is not None:
                    self._changed_names.add(rrset[0][2:])

    def _flush(
        self, members: Iterable[Key], key: Key | None, interface: int, times: list[float]
    ) -> None:
        """Flush, as of each of ``times`` (ascending), the records of ``members`` on
        ``interface`` other than ``key`` received more than a second before it: each expires a
        second after the first such time, unless it expires sooner anyway."""
        latest = times[-1] - GRACE
        entries = self._entries
        for other in members:
            if other[1] != interface or other == key:
                continue
            s = entries[other]
            received = s[_RECEIVED]
            if received >= latest:
                continue
            for when in times:
                if received < when - GRACE:
                    break
            expires = when + GRACE
            if s[_EXPIRES] > expires:
                if self._follow and other[0] in self._follow:
                    self._changed_keys.setdefault(other, False)
                filed = self._file(expires, other)
                entries[other] = (*s[:_EXPIRES], expires, s[_TTL], s[_GOODBYE], s[_NAME], filed)
                self.flushed += 1

    # -- removing -------------------------------------------------------------------------

    def _inserted(self, key: Key) -> None:
        """Log a key of a followed bucket that was just inserted: last in its bucket's order."""
        log = self._changed_keys
        log.pop(key, None)
        log[key] = True

    def _remove(self, key: Key) -> Stored:
        stored = self._entries.pop(key)
        self._names.pop(key, None)
        bucket = key[0]
        if self._follow and bucket in self._follow:
            self._changed_keys.setdefault(key, False)
        members = self._buckets[bucket]
        if isinstance(members, dict):
            del members[key]
            if members:
                return stored
        del self._buckets[bucket]
        return stored

    def _trim(self, members: dict[Key, None]) -> None:
        """A bucket past MAX_RRSET loses its least recently received records, down to three
        quarters of it: one sort per 16 records filed, not a walk per record."""
        entries = self._entries
        by_age = sorted(members, key=lambda other: entries[other][_RECEIVED])
        self._drop(by_age[: len(members) - MAX_RRSET + MAX_RRSET // 4])

    def _evict(self) -> None:
        """Down to the bound less a sixteenth, in one pass over the oldest entries. One entry at
        a time, each eviction walked the entries from the front: past the slots that earlier
        evictions had emptied (a dict keeps them until it is resized: 3.9 us each at 4,096
        entries), and past every wanted entry (135 ms for a packet of 400 records under a name
        being resolved, once the cache was full of them: tests/test_robust_cache.py)."""
        entries = self._entries
        wanted = self._wanted
        goal = len(entries) - self.max_records + self.max_records // 16
        if goal <= 0:
            return
        if not wanted:
            victims = list(islice(entries, goal))  # oldest reception first
        else:
            victims = []
            held: list[Key] = []  # the oldest wanted entries, for when too few others are left
            for key in entries:
                if key[0][2:] not in wanted:
                    victims.append(key)
                    if len(victims) == goal:
                        break
                elif len(held) < goal:
                    held.append(key)
            else:
                # Fewer than `goal` entries that no call waits for: the oldest wanted go too.
                victims += held[: goal - len(victims)]
        self._drop(victims)

    def _drop(self, victims: list[Key]) -> None:
        """Evict these entries (a trim's or an eviction's): counted, their names reported, and
        the expiry groups rebuilt when the keys left in them outnumber the live ones."""
        for key in victims:
            self._remove(key)
        if self._changed_names is not None:
            self._changed_names.update([key[0][2:] for key in victims])
        self.evicted += len(victims)
        self._stale += len(victims)  # their keys stay in their expiry groups
        if self._stale > len(self._entries) + 64:
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        """Expiry groups of live entries only, each filed under its own expiry time."""
        due: dict[float, list[Key]] = {}
        entries = self._entries
        for key, s in entries.items():
            expires = s[_EXPIRES]
            group = due.get(expires)
            if group is None:
                due[expires] = [key]
            else:
                group.append(key)
            if s[_FILED] != expires:
                entries[key] = (*s[:_FILED], expires)  # same position in the eviction order
        self._due = due
        self._heap = list(due)
        heapq.heapify(self._heap)
        self._stale = 0

    def expire(self, now: float) -> list[CacheEntry]:
        """Drop every entry whose time is up; returns them (for callers that report removals)."""
        if self._requests:
            self._apply_requests(now)
        removed: list[CacheEntry] = []
        heap = self._heap
        due = self._due
        entries = self._entries
        while heap and heap[0] <= now:
            filed = heapq.heappop(heap)
            for key in due.pop(filed):
                s = entries.get(key)
                if s is None or s[_FILED] != filed:
                    self._stale -= 1  # removed, or filed again for an earlier expiry
                elif s[_EXPIRES] > now:  # refreshed since it was filed: file it at its time
                    entries[key] = (*s[:_FILED], s[_EXPIRES])  # same eviction position
                    self._file_new(s[_EXPIRES], key)
                else:
                    removed.append(_view(key, s, self._names))
                    self._remove(key)
        return removed

    def reconfirm(
        self,
        now: float,
        within: float,
        received_before: float = float("inf"),
        batch: Iterable[tuple[Message, int]] | None = None,
        *,
        interfaces: AbstractSet[int] | None = None,
        keys: Iterable[Key] | None = None,
    ) -> int:
        """Every record received before ``received_before`` (or only the records of ``batch``,
        as add_received takes them; or only those received on ``interfaces``; or only the
        entries of ``keys``) must be heard again within ``within`` seconds or it goes:
        the network may be another one (RFC 6762 §10.3: after a change of topology, adjust the
        remaining TTL of the records to a few seconds). A record heard again gets its TTL
        back, as any refresh does. Returns how many expiries came down; their names are
        reported as changed, as a flush's are."""
        limit = now + within
        entries = self._entries
        if keys is not None:
            if batch is not None or received_before != float("inf") or interfaces is not None:
                raise TypeError("reconfirm selects by keys alone")
        elif interfaces is not None:
            if batch is not None or received_before != float("inf"):
                raise TypeError("reconfirm selects by interfaces, or by batch or time: not both")
            keys = [k for k in entries if k[1] in interfaces]
        elif batch is None:
            keys = [k for k, s in entries.items() if s[_RECEIVED] < received_before]
        else:
            keys = [
                (_head_of(record) + name_key(record.name), interface) + record[4:]  # noqa: RUF005
                for message, interface in batch
                for record in message[3] + message[5]  # answers, additionals
            ]
        changed = self._changed_names
        follow = self._follow
        shortened = 0
        for key in keys:
            s = entries.get(key)  # as a rebuild of the expiry groups by an earlier _file left it
            if s is None or s[_EXPIRES] <= limit:
                continue
            if follow and key[0] in follow:
                self._changed_keys.setdefault(key, False)
            if changed is not None:
                changed.add(key[0][2:])
            filed = self._file(limit, key)
            entries[key] = (*s[:_EXPIRES], limit, s[_TTL], s[_GOODBYE], s[_NAME], filed)
            shortened += 1
        return shortened

    def clear(self) -> None:
        """Forget every record (wanted names stay wanted: their callers still wait)."""
        for bucket in self._follow:
            members = self._buckets.get(bucket)
            if members is not None:
                for key in _keys_in(members):
                    self._changed_keys.setdefault(key, False)
        self._entries.clear()
        self._names.clear()
        self._buckets.clear()
        self._heap.clear()
        self._due.clear()
        self._stale = 0
        self._scanned.clear()
        self._requests.clear()
        self._requests_due = float("inf")

    def take_changed(self) -> AbstractSet[str]:
        """Name keys whose records were evicted, trimmed or flushed by a held-back flush record
        since the last call (``report_changes``): a caller that follows changes reads again
        what they touch, not everything. Called for every received batch, so nothing changed
        allocates nothing."""
        names = self._changed_names
        if not names:
            return _NO_NAMES
        self._changed_names = set()
        return names

    def take_changed_keys(self) -> Mapping[Key, bool]:
        """The keys of the PTR records of wanted names that were filed, refreshed, flushed or
        removed since the last call (``report_changes``), in the order they changed; True
        where the key was inserted (then it is last in its rrset's order, see entries()).
        The name keys of the same changes are reported as before (the batch, expire(),
        take_changed()): these say which records of a long PTR rrset to read again."""
        keys = self._changed_keys
        if not keys:
            return _NO_KEYS
        self._changed_keys = {}
        return keys

    def entry(self, key: Key) -> CacheEntry | None:
        """The entry under ``key`` (from take_changed_keys or a CacheEntry), live or not."""
        s = self._entries.get(key)
        return None if s is None else _view(key, s, self._names)

    def flush_due(self) -> float:
        """When held-back flush records are next applied (at the next add_received() or
        expire() from then on): a caller that keeps what it read must look again by then."""
        return self._requests_due if self._requests else float("inf")

    # -- what callers are waiting for -------------------------------------------------------

    def want(self, name: str) -> None:
        """A caller waits for records of ``name``: eviction leaves them alone, and (when
        reporting changes) changes to its PTR records are logged by key."""
        key = name_key(name)
        self._wanted[key] = self._wanted.get(key, 0) + 1
        if self._changed_names is not None:
            self._follow.add(_bucket(key, RecordType.PTR, 1))

    def unwant(self, name: str) -> None:
        """One caller of want(``name``) is done; once none is, its records may be evicted."""
        key = name_key(name)
        left = self._wanted.get(key, 0) - 1
        if left > 0:
            self._wanted[key] = left
        else:
            self._wanted.pop(key, None)
            self._follow.discard(_bucket(key, RecordType.PTR, 1))

    # -- reading --------------------------------------------------------------------------

    def entries(self, name: str, rtype: int, now: float, rclass: int = 1) -> list[CacheEntry]:
        """Live entries for (name, type, class), in order of first reception."""
        if now >= self._requests_due:  # a held-back flush: due, even if nothing else runs
            self._apply_requests(now)
        members = self._buckets.get(_bucket(name_key(name), rtype, rclass))
        if members is None:
            return []
        entries = self._entries
        names = self._names
        if not isinstance(members, dict):
            s = entries[members]
            return [_view(members, s, names)] if s[_EXPIRES] > now else []
        return [_view(k, s, names) for k in members if (s := entries[k])[_EXPIRES] > now]

    def size(self, name: str, rtype: int, rclass: int = 1) -> int:
        """How many entries (name, type, class) holds, expired ones not yet removed included:
        a bound read without building a view of each."""
        members = self._buckets.get(_bucket(name_key(name), rtype, rclass))
        if members is None:
            return 0
        return len(members) if isinstance(members, dict) else 1

    def entries_for_name(self, name: str, now: float) -> list[CacheEntry]:
        """Live entries of every type for a name (for ANY queries)."""
        if now >= self._requests_due:
            self._apply_requests(now)
        wanted = name_key(name)
        entries = self._entries
        names = self._names
        return [
            _view(k, s, names)
            for bucket, members in self._buckets.items()
            if bucket[2:] == wanted
            for k in _keys_in(members)
            if (s := entries[k])[_EXPIRES] > now
        ]

    def records(self, name: str, rtype: int, now: float) -> list[Record]:
        """The live records of (name, type), without their reception details."""
        return [e.record for e in self.entries(name, rtype, now)]

    def known_answers(
        self, name: str, rtype: int, now: float, interface: int | None = None
    ) -> list[CacheEntry]:
        """Entries worth listing as known answers (§7.1): more than half their TTL left, heard
        on ``interface`` (the link the query goes out on; None: any link, each record once,
        with its longest life)."""
        found: dict[tuple[Any, ...], CacheEntry] = {}
        for e in self.entries(name, rtype, now):
            if interface is not None and e.interface != interface:
                continue
            if not e.goodbye and e.expires - now > e.ttl / 2:
                data = (e.key[0], *e.key[2:])
                kept = found.get(data)
                if kept is None or e.expires > kept.expires:
                    found[data] = e
        return list(found.values())

    def __iter__(self) -> Iterator[CacheEntry]:
        names = self._names
        return iter([_view(k, s, names) for k, s in self._entries.items()])
