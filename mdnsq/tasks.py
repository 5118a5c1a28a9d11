# What each call waits for: the questions it still needs, when its answer is complete, and its
# result, all read from the cache. Tasks do no I/O and hold no lock or clock of their own: the
# Querier (querier.py) sends their questions, files what arrives, and calls their methods under
# its lock with the time it read. Browse and watch, the tasks that follow a service type's
# instances as they change, are in instances.py.
#
# Completion rules (issue 4): query finishes SETTLE after its first unique answer (records with
# the cache-flush bit), or at once when the cache held them before it asked; shared answers (a
# PTR) are collected until the deadline. resolve_host finishes SETTLE after its first address,
# or at once when the cache held one before it asked or both address types are known whole
# (cache-flush bit, or denied by NSEC);
# resolve_service when SRV, TXT and an address are known, or at once when the SRV record's
# target is the root (RFC 2782: decidedly not available; the result is None). browse yields each
# instance once it is complete and its addresses have settled by resolve_host's rule; watch
# compares the cache with what it reported and keeps the records it watches fresh.
#
# Goodbyes (RFC 6762 §10.1): a record received with TTL 0 is deleted one second later, so that
# another responder can rescue it. Until the cache deletes it, every task reads it as it reads
# any live record, and none asks about it again: whoever can rescue it answers the goodbye on
# their own, the one that said goodbye will not, and a device that shuts down says goodbye for
# all its records at once, to every querier on the link. When the second is over the record is
# gone, and what it leaves missing is asked about as after any expiry. A rescue within the
# second is only a refresh. Refresh queries (RFC 6762 §5.2) skip goodbyes: CacheEntry.refresh_time.
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from mdnsq.cache import CacheEntry, Key, RecordCache
from mdnsq.names import name_key
from mdnsq.records import NSECRecord, Question, Record, RecordType, SRVRecord
from mdnsq.service import (
    SERVICES_META,
    Address,
    ServiceInfo,
    addresses_for,
    build_service_info,
    is_root,
    is_service_type,
    service_unavailable,
    srv_unavailable,
    txt_denial,
)

__all__ = [
    "ADDRESS_TYPES",
    "FIRST_DELAY",
    "FIRST_INTERVAL",
    "MAX_RESOLVING",
    "PARTIAL_AFTER",
    "REFRESH_GAP",
    "REFRESH_SUPPRESS",
    "RESOLVE_HOLD",
    "RESOLVE_REST",
    "SETTLE",
    "SUPPRESS",
    "WATCH_MAX_INTERVAL",
    "Ask",
    "HostTask",
    "QueryTask",
    "ServiceTask",
    "SettleTask",
    "Task",
    "TypesTask",
    "addresses_heard",
    "all_addresses_known",
    "missing_questions",
]

FIRST_INTERVAL = 1.0  # §5.2: at least one second between the first two queries
# §5.2: a continuous series (browse, watch, service_types) starts 20-120 ms late, at random, so
# hosts started by one event (a power cut, cron, a script on every machine) do not ask at the
# same instant. A resolve asks at once: its caller waits for the answer.
FIRST_DELAY = (0.020, 0.120)
WATCH_MAX_INTERVAL = 3600.0  # §5.2: doubling up to 60 minutes
SUPPRESS = 1.0  # the same question is not sent again this soon, whoever asks
# ... except a refresh of a short-lived record (RFC 6762 §5.2): its four refresh points are 5 % of
# the TTL apart (0.1 s at TTL 2), so its window is half that gap, never more than SUPPRESS. It
# still merges the same refresh asked by several watches at one moment.
REFRESH_SUPPRESS = 0.025
# A call's refresh questions go out in rounds at least this far apart, each round carrying the
# refreshes due by then and those due within the gap, asked that much early. Sent as they came
# due, each record's points jittered apart from the others', a peer re-announcing ten instances
# with TTL 1 every second made a watch send 68 packets a second (tests/test_robust_querier.py).
# Under 0.05 s: the points of a TTL of 2 s, 0.1 s apart, still go out in windows of 0.05 s.
REFRESH_GAP = 0.04
SETTLE = 0.2  # after the first address (or unique answer), wait this long for more
PARTIAL_AFTER = 2.0  # a watch reports an instance without TXT/address after this long
# A browse asks about at most this many unresolved instances at a time: a flood of fresh PTR
# records must not turn into a flood of our questions (the rest wait for a free slot).
MAX_RESOLVING = 16
# ... and an instance keeps its slot this long while others wait for one (asked at 0 and 1 s,
# then unanswered: its host is gone, or never answers); released, it rests before it may have
# one again, RESOLVE_REST at first and four times as long each time, up to WATCH_MAX_INTERVAL
# (a host that comes back announces itself, RFC 6762 §8.3: the rests only bound our asking).
# Without turns, 16 instances that never resolve (PTR records of hosts that vanished silently
# outlive their SRV records, 4500 s against 120) kept every other instance from being asked
# about, for as long as they were listed.
RESOLVE_HOLD = 2.0
RESOLVE_REST = 60.0


class Ask:
    """One question's retransmission state inside a task."""

    __slots__ = ("interval", "next_at", "question", "sent")

    def __init__(self, question: Question, now: float) -> None:
        self.question = question
        self.next_at = now
        self.interval = FIRST_INTERVAL
        self.sent = 0

    def count_sent(self, now: float, max_interval: float) -> None:
        """The question went out now (or counts as out: another call sent it, or a peer asked
        it, RFC 6762 §7.3): next no earlier than the current gap from now, which then doubles.
        A next send already further off stays (§5.2: gaps on the link only grow)."""
        self.sent += 1
        self.next_at = max(self.next_at, now + self.interval)
        self.interval = min(self.interval * 2, max_interval)


class Task:
    """Base: a call's questions, completion test and output. Methods run under the lock."""

    max_interval = math.inf
    follows_changes = False  # whether the Querier calls changed() (a watch)
    continuous = False  # a §5.2 series: its first questions wait FIRST_DELAY

    def __init__(self, *protects: str) -> None:
        # Names whose records the cache must not evict while this task runs.
        self.protects = protects
        # Names it comes to read as it goes (a watch: its reported instances and their hosts),
        # wanted as its protects are: each +1 / -1, applied and emptied by the Querier after
        # every update(); what kept_names() lists is given back when the task retires.
        self.keep_changes: list[tuple[str, int]] = []
        self.asks: dict[tuple[str, int], Ask] = {}
        # Refresh questions waiting for the next round (REFRESH_GAP), and when it may go.
        self.held: dict[Question, float] = {}
        self.refresh_at = -math.inf
        self.out: list[Any] = []
        self.done = False
        self.finished = False
        self.started_asking = False
        self.epoch = 0  # the Querier's network epoch this task's schedule is for

    def update(self, cache: RecordCache, now: float) -> None:
        """Look at the cache; set ``done`` and/or append to ``out``."""

    def _keep(self, names: Iterable[str], delta: int) -> None:
        """Want (+1) or no longer want (-1) these names (see keep_changes)."""
        self.keep_changes.extend((name, delta) for name in names)

    def kept_names(self) -> Iterable[str]:
        """The names kept now, once per keeping (keep_changes applied or not)."""
        return ()

    def changed(self, names: Iterable[str], keys: Mapping[Key, bool] | None = None) -> None:
        """Records of these names (name keys) were filed, removed, evicted or flushed; ``keys``
        (RecordCache.take_changed_keys) says which PTR records of a wanted name, when known."""

    def needs(self, cache: RecordCache, now: float) -> Iterable[Question]:
        """The questions still worth asking (re-evaluated on every step)."""
        return ()

    def refreshes(
        self, cache: RecordCache, now: float, ahead: float = 0.0
    ) -> dict[Question, float]:
        """One-off questions to send now (a watch refreshing records near the end of their
        TTL), each with its own same-question suppression window; with ``ahead``, also those
        that come due within that many seconds (asked early, in the same round)."""
        return {}

    def wake_at(self, cache: RecordCache, now: float) -> float:
        """When this task wants to look again even if nothing arrives."""
        return math.inf

    def finish(self, cache: RecordCache, now: float) -> None:
        """Deadline, completion or close: compute the final result / last outputs."""


class SettleTask(Task):
    """A call about one name that, once answered, waits ``settle`` for more answers unless it
    can tell the answer is whole (``started``: the first look, at the cache alone)."""

    def __init__(self, name: str, settle: float) -> None:
        super().__init__(name)
        self.name = name
        self.settle = settle
        self.first_at: float | None = None
        self.started = True

    def wake_at(self, cache: RecordCache, now: float) -> float:
        return math.inf if self.first_at is None else self.first_at + self.settle


class QueryTask(SettleTask):
    """Finishes early only on a unique answer (cache-flush bit): a shared one may have more
    answerers. A one-shot querier's answers are legacy unicast replies, which never carry the
    bit (RFC 6762 §6.7): there (``one_shot``) the call ends ``settle`` after the first answer,
    as resolve_host does, and always asks."""

    def __init__(self, name: str, rtype: RecordType, settle: float, one_shot: bool = False) -> None:
        super().__init__(name, settle)
        self.rtype = rtype
        self.one_shot = one_shot
        self.result: list[Record] = []

    def _entries(self, cache: RecordCache, now: float) -> list[CacheEntry]:
        if self.rtype == RecordType.ANY:
            entries = cache.entries_for_name(self.name, now)
        else:
            entries = cache.entries(self.name, self.rtype, now)
        return entries  # goodbyes too: live for one more second (RFC 6762 §10.1)

    def update(self, cache: RecordCache, now: float) -> None:
        entries = self._entries(cache, now)
        if self.one_shot:
            unique = bool(entries)  # settled, never taken at once: the cache may hold shared
        else:
            unique = bool(entries) and self.rtype != RecordType.ANY
            unique = unique and all(e.record.cache_flush for e in entries)
        if unique and self.started and not self.one_shot:
            self.done = True  # answered from the cache: responders would stay silent anyway
        elif unique and self.first_at is None:
            self.first_at = now
        elif unique and self.first_at is not None and now >= self.first_at + self.settle:
            self.done = True
        self.started = False

    def needs(self, cache: RecordCache, now: float) -> Iterable[Question]:
        return (Question(self.name, self.rtype),)

    def finish(self, cache: RecordCache, now: float) -> None:
        # Each record once (two links' copies are equal), with the whole seconds of TTL left,
        # as dig shows a cached answer's: a record heard a minute before the call said the TTL
        # it came with, and a script keeping it kept it a minute too long.
        # Of copies from several links (equal records), the longest-lived, in first order.
        best: dict[Record, int] = {}
        for entry in self._entries(cache, now):
            # To the nearest second: truncated, an answer heard 5 ms ago said 119 of its 120.
            left = 0 if entry.goodbye else max(0, int(entry.expires - now + 0.5))
            if left > best.get(entry.record, -1):
                best[entry.record] = left  # the key, and its place, stay the first copy's
        self.result = [r if r.ttl == left else r.with_ttl(left) for r, left in best.items()]


ADDRESS_TYPES = (RecordType.A, RecordType.AAAA)


def all_addresses_known(
    cache: RecordCache,
    name: str,
    now: float,
    types: tuple[RecordType, ...] = ADDRESS_TYPES,
) -> bool:
    """Both address types (or those of ``types``: a Querier listening over one family waits
    for that one's) settled by the responder: present with the cache-flush bit (a unique
    RRset is sent whole, RFC 6762 §10.2) or denied by its NSEC record (§6.1). A record that
    said goodbye counts for its last second, as every reader counts it. Over IPv6 alone,
    Avahi sends no A record and no NSEC: waiting for A cost every call `settle` for nothing."""
    # has_type, not types: a peer's NSEC record may list 65,536 types, and this runs on every
    # wake-up of a call about the name.
    nsec = [
        e.record
        for e in cache.entries(name, RecordType.NSEC, now)
        if isinstance(e.record, NSECRecord)
    ]
    for rtype in types:
        entries = cache.entries(name, rtype, now)
        if any(e.record.cache_flush for e in entries):
            continue
        if not entries and nsec and not any(r.has_type(rtype) for r in nsec):
            continue
        return False
    return True


def addresses_heard(
    cache: RecordCache, host: str, now: float, interface: int | bool | None = False
) -> float | None:
    """When the first live address of ``host`` arrived (on ``interface``: None is the link a
    transport could not name; False, any); None if it has none. The settle window runs from
    then: from the cache at once when heard long enough ago, and not at once when the answer
    came in the very pass before the call's first look (a fresh Querier's socket held half of
    a dual-stack answer: taken as "from the cache", the info lacked the other family)."""
    return min(
        (
            e.received
            for rtype in ADDRESS_TYPES
            for e in cache.entries(host, rtype, now)
            if interface is False or (e.interface or None) == interface
        ),
        default=None,
    )


class HostTask(SettleTask):
    def __init__(
        self, name: str, settle: float, types: tuple[RecordType, ...] = ADDRESS_TYPES
    ) -> None:
        super().__init__(name, settle)
        self.types = types
        self.result: list[Address] = []

    def update(self, cache: RecordCache, now: float) -> None:
        heard = addresses_heard(cache, self.name, now)
        self.first_at = heard
        if heard is not None and (
            now >= heard + self.settle or all_addresses_known(cache, self.name, now, self.types)
        ):
            self.done = True

    def needs(self, cache: RecordCache, now: float) -> Iterable[Question]:
        return (Question(self.name, RecordType.A), Question(self.name, RecordType.AAAA))

    def finish(self, cache: RecordCache, now: float) -> None:
        self.result = addresses_for(cache, self.name, now)


def missing_questions(cache: RecordCache, name: str, now: float) -> list[Question]:
    """What is still unknown about an instance: SRV, TXT, then the targets' addresses. A record
    that said goodbye is known until the cache deletes it (see the top of this module); an
    instance whose SRV record's target is the root needs nothing more, and the root's
    addresses are never asked for.

    TXT and addresses count only on the interface of an SRV record, as build_service_info
    reads them (RFC 6762 §14): asked only when no interface had them, an info whose link
    lacked a TXT record the other link had stayed incomplete. Every link with an SRV record
    is looked at, not only the one an info would be built from: browse and watch choose that
    one with the instance's PTR record, which this does not get, and the question goes out
    on every interface anyway."""
    wanted = []
    srvs = cache.entries(name, RecordType.SRV, now)
    if not srvs:
        wanted.append(Question(name, RecordType.SRV))
    elif srv_unavailable(srvs):
        return []
    txt_links = {e.interface for e in cache.entries(name, RecordType.TXT, now)}
    if (not srvs and not txt_links) or any(
        e.interface not in txt_links and txt_denial(cache, name, now, e.interface) is None
        for e in srvs
    ):
        wanted.append(Question(name, RecordType.TXT))
    for entry in srvs:
        srv = entry.record
        assert isinstance(srv, SRVRecord)
        if not is_root(srv.target) and not addresses_for(cache, srv.target, now, entry.interface):
            wanted.append(Question(srv.target, RecordType.A))
            wanted.append(Question(srv.target, RecordType.AAAA))
    return wanted


class ServiceTask(SettleTask):
    """Done when SRV, TXT and an address are known and the host's addresses have settled, by
    resolve_host's rule: both types present with the cache-flush bit or denied by NSEC, else
    ``settle`` after the first address arrived. Avahi answers a query over IPv6 with the AAAA
    record alone and over IPv4 with both: taken on the first, the info lacked the IPv4
    address that arrived 10 ms later."""

    def __init__(
        self, name: str, settle: float = SETTLE, types: tuple[RecordType, ...] = ADDRESS_TYPES
    ) -> None:
        super().__init__(name, settle)
        self.types = types
        self.result: ServiceInfo | None = None

    def update(self, cache: RecordCache, now: float) -> None:
        if service_unavailable(cache, self.name, now):
            self.done = True  # nothing to wait for: the answer is None (see finish)
            return
        info = build_service_info(cache, self.name, now)
        self.first_at = None
        if info is not None and info.complete:
            heard = addresses_heard(cache, info.host, now, info.interface)
            if heard is None:
                heard = now
            if now >= heard + self.settle or all_addresses_known(cache, info.host, now, self.types):
                self.done = True
            else:
                self.first_at = heard  # wake_at: settled then

    def needs(self, cache: RecordCache, now: float) -> Iterable[Question]:
        return missing_questions(cache, self.name, now)

    def finish(self, cache: RecordCache, now: float) -> None:
        self.result = build_service_info(cache, self.name, now)


class TypesTask(Task):
    continuous = True

    def __init__(self) -> None:
        super().__init__(SERVICES_META)
        self.result: list[str] = []

    def needs(self, cache: RecordCache, now: float) -> Iterable[Question]:
        return (Question(SERVICES_META, RecordType.PTR),)

    def finish(self, cache: RecordCache, now: float) -> None:
        found: dict[str, str] = {}
        for entry in cache.entries(SERVICES_META, RecordType.PTR, now):
            target: str = getattr(entry.record, "target", "")
            # A goodbye counts for its last second, as for every call: another host offering
            # the type may rescue it (the record is the same from every host).
            if is_service_type(target):
                found.setdefault(name_key(target), target)
        self.result = sorted(found.values(), key=name_key)
