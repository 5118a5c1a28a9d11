# The Querier: asks questions, receives answers into one shared cache, and tells each caller when
# its answer is complete (by its task's rules, tasks.py and instances.py). It owns time: deadlines,
# retransmission, refresh, expiry.
#
# Goals:
# - Synchronous and thread-free: a call blocks its own thread until its answer is complete or its
#   deadline passes. Nothing runs in the background; used from one thread it starts no thread.
# - Shared by many threads ("leader/follower"): of all threads waiting inside a Querier, one at a
#   time (the leader) releases the lock and waits on the sockets; it parses each packet once,
#   files the records in the cache under the lock and wakes everyone through a Condition. The
#   others wait on that Condition with their own next deadline, so nobody polls. Whoever leaves
#   wakes the rest, so a new leader steps up at once.
# - On the wire (RFC 6762): queries from port 5353 with ID 0 (or, one_shot, from an ephemeral port
#   with a random ID: legacy unicast, §6.7); retransmission 1 s after the first query, then
#   doubling (a watch caps the gap at 60 minutes and refreshes records at 80/85/90/95 % of TTL);
#   the first query of a continuous series (browse, watch, service_types) 20-120 ms late (§5.2);
#   known answers with more than half their TTL left (§7.1), split with TC by build_queries, and
#   only those heard on the link a packet goes to (one packet per link, §14); the
#   same question is not sent twice within a second by two callers (both see the one answer);
#   a refresh query's window is 2.5 % of the record's TTL, so short TTLs get all four refreshes.
#   Duplicate question suppression (§7.3): a QM question another host asked on a link within
#   the last second (over each address family we send there), with no known answer we would
#   not list ourselves, counts as sent by us on that link (its answers are multicast there: we
#   hear them too); asked on every link, it is not sent at all. Our own queries, looped back by the
#   kernel, are told apart by source address and exact bytes.
# - Receive filters, each counted in stats(): queries ignored, malformed packets, opcode/rcode
#   not 0, source port not 5353 (except replies to our one-shot query, which must echo our ID),
#   unicast from sources off the link of the arrival interface (§11), packets from interfaces
#   not selected; and, counted by the transports and summed in stats(), datagrams too big
#   for a buffer, unicast through an interface not selected, and socket errors waited through.
# - Load shedding: a socket under pressure (a receive pass read MAX_BATCH datagrams without it
#   running dry, or spent PASS_BUDGET of CPU time reading) carries a flood we cannot parse in
#   full (~1 ms per 9000-byte packet), and the kernel then drops at random, our answers too.
#   Until no pass has found it full for PRESSURE_HOLD seconds, a datagram is parsed only if it
#   holds, in wire form and ASCII case-insensitively, the first label of a name some call
#   waits for (a packet carrying the name holds that label literally: compression only
#   replaces suffixes). Queries (QR clear) and everything else are dropped unparsed and
#   counted ("shed_under_pressure"): a copy, lower() and a few `in` tests, microseconds at C
#   speed. Passive caching (§10) of unrelated records pauses while a flood lasts; without
#   pressure every response is parsed as before.
#
# §11: a datagram sent to 224.0.0.251 / ff02::fb is from the local link by definition (the
# transport reads its destination from PKTINFO); only unicast is checked against the subnets
# of the arrival interface (IPv6 link-local and IPv4 169.254/16 sources always pass), so a host
# outside every subnet of the link (a /32 address with an on-link route) is still heard.
#
# Time: `clock` and `wait` are injectable so tests drive TTLs and retransmission with a fake
# clock and never sleep. The default clock counts time the machine spends suspended (see
# boot_clock): a TTL is time in the world, and time.monotonic stands still during suspend.
#
# A Querier may outlive its network (ADR 005 §9-§13): after a sleep (the boot clock ran ahead of
# time.monotonic), a renumbered link (a source off every known subnet makes it list the
# interfaces again) or update_interfaces(), every call starts its series of queries again;
# after a sleep, what was cached must also be heard again within WAKE_RECONFIRM (§10.3), and
# after update_interfaces() what was heard on a link gone or down. A
# failing transport is tried with every query, so a link that comes back is used at once.
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import math
import operator
import random
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from types import TracebackType
from typing import Any, Literal, overload

from mdnsq.arguments import (
    asked_name,
    checked_timeout,
    host_args,
    parse_ip_version,
    parse_type,
    query_args,
    service_args,
    timeout_seconds,
    type_args,
)
from mdnsq.cache import CacheEntry, RecordCache
from mdnsq.errors import (
    InvalidArgument,
    MalformedPacket,
    MdnsqError,
    NetworkError,
    QuerierClosed,
)
from mdnsq.instances import BrowseTask, WatchTask
from mdnsq.interfaces import Interface, InterfaceSpec, check_spec, list_interfaces
from mdnsq.locks import OwnedLock
from mdnsq.names import name_key, name_to_wire_labels, normalize_name
from mdnsq.parser import parse_message
from mdnsq.records import (
    FLAG_QR,
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    Record,
    RecordType,
    SRVRecord,
    TXTRecord,
)
from mdnsq.service import (
    Address,
    ServiceEvent,
    ServiceInfo,
)
from mdnsq.tasks import (
    ADDRESS_TYPES,
    FIRST_DELAY,
    FIRST_INTERVAL,
    REFRESH_GAP,
    SETTLE,
    SUPPRESS,
    Ask,
    HostTask,
    QueryTask,
    ServiceTask,
    Task,
    TypesTask,
)
from mdnsq.transport import MDNS_PORT, Handler, Transport, UDPv4Transport, UDPv6Transport
from mdnsq.writer import build_queries

__all__ = ["IPVersion", "Querier"]

_NO_NAMES: frozenset[str] = frozenset()

log = logging.getLogger(__name__)

IPVersion = Literal["any", "v4", "v6", 4, 6]

MIN_WAIT = 0.001  # floor of every wait, so no bug in a wake-up time can make a loop spin
# Ceiling of one wait: epoll takes at most 2^31 ms (24.8 days) and Condition.wait about 292
# years; past them both raise OverflowError. A longer timeout is waited out a day at a time
# (each wake-up re-evaluates and waits again; process() returns).
MAX_WAIT = 86_400.0
# A source off every subnet we know for its interface makes us list the interfaces again (the
# machine may be on another network now), at most this often: spoofed off-link floods are
# one of the hostile kinds, and a listing costs ~0.4 ms.
RELINK_GAP = 5.0
# The boot clock ran ahead of time.monotonic by more than this: the machine slept, and may have
# woken on another network.
SLEPT = 1.0
# After a sleep, every cached record must be heard again within this or it goes (RFC 6762
# §10.3): the calls ask again at once and double from 1 s, so a link that takes up to half of
# this to come back after the wake (Wi-Fi associating, DHCP) loses nothing.
WAKE_RECONFIRM = 60.0
# §10.5, passive observation of failures: a record another host asked for (QM, not listed
# among its known answers) and nobody answered, POOF_QUERIES times, goes POOF_WINDOW after the
# first of those queries unless heard again by then (at least POOF_LATE after the last one).
# A query within POOF_QUIET of the record's last reception proves nothing: a responder
# multicasts a record at most once a second per link (§6).
POOF_QUERIES = 2
POOF_WINDOW = 10.0
POOF_LATE = 1.0
POOF_QUIET = 1.0
POOF_BURST = 0.5  # queries for a record closer than this count once (one asker, two paths)
# Records of one name and type beyond this are not looked at: a query for a type with
# thousands of instances cost ms each, under the lock (their SRV questions are looked at).
POOF_MAX_RRSET = 64
SHARED_RECHECK = 30.0  # how often unicast_response looks whether port 5353 is shared
CLOSE_WAIT = 5.0  # seconds close() waits for the receiver to leave select() (it wakes it)
MAX_RECEIVE_ERRORS = 5  # receive failures in a row on one transport before a call gives up
MAX_BATCH = 64  # packets read per transport per wake-up (others wait their turn)
# Load shedding: a pass that reads MAX_BATCH datagrams without the socket running dry puts it
# under pressure, which ends PRESSURE_HOLD seconds after the last such pass (a flooded socket
# runs dry now and then too, and each return to full parsing costs a pass of ~1 ms packets).
PRESSURE_HOLD = 0.5
# ... and so does a pass that has spent this long reading, on the clock and in this thread's
# CPU time both: its first MAX_BATCH datagrams of a flood of ~1 ms packets took ~30 ms to
# parse, while the socket's buffer overflowed in a few, losing an answer that came then (an
# IPv6 flood aimed at the querier, 1 run in ~20). Honest responses parse in ~20 us, so a pass
# of them never comes near it, unless the scheduler stops the thread mid-pass: on a busy
# machine (two cores, four processes) a pass of 50 honest packets took over 5 ms on the clock
# and shed the next 0.5 s of traffic (the throughput benchmark accepted 432 of 2,400). The CPU
# clock is read only once the wall clock says the budget is spent.
PASS_BUDGET = 0.005
MAX_KNOWN_ANSWERS = 200  # per packet of questions: about five packets of known answers at most
QUESTION_BUDGET = 1200  # bytes of questions per query packet; known answers fill the rest
# RFC 6762 §17: a query packet is at most the link's MTU less the IP and UDP headers; sent in
# fragments it may carry one record, and multicast fragments are often lost (a TC packet whose
# first fragment is lost makes the responders answer all it would have suppressed). A transport
# may say its own limit (`max_payload`); else a 1500-byte MTU less 28 bytes of IPv4 and UDP
# headers, or 48 of IPv6 and UDP.
PAYLOAD_V4 = 1472
PAYLOAD_V6 = 1452
# A datagram that waited in the socket longer than this (nobody received: between two calls,
# or while a browse's consumer was busy) is filed as of its arrival, not as news: its TTL ran
# meanwhile, a later flush in the same backlog flushes it (§10.2), a goodbye in it is already
# over, and a peer's old query says nothing about now (§7.3). Fresher ones are filed together
# as of the pass, the fast way.
LATE_AFTER = 1.0
LATE_GROUP = 0.05  # late datagrams this close in arrival are filed as of the first of them
CATCH_UP_ROUNDS = 64  # batches a call's catch-up reads (4,096 datagrams: a full 1 MiB buffer)
_DROP = object()
# What the receive handler hands on: (message, interface), with the arrival on our clock when
# the datagram came late (LATE_AFTER).
Received = tuple[Message, int] | tuple[Message, int, float]
_arrival = operator.itemgetter(2)
_wall = time.time  # the clock of the kernel's arrival times (a test may replace it)
_cpu = time.thread_time  # what a receive pass spends (a test may replace it)
# Query packets we sent, kept to recognise them looped back (§7.3): at least this many, and
# twice one transmission's (a packet per link on a machine with many).
MAX_OWN_QUERIES = 32
# A name sent by send_query() stays one the shedder lets through (a needle) this long, for its
# answers to reach the cache though no call waits for them (RFC 6762 §6: answers come within
# 120 ms, or 500 ms for aggregated shared answers); at most this many such names at a time.
SENT_NEEDLE_HOLD = 2.0
MAX_SENT_NEEDLES = 64
_OPCODE_RCODE = 0x780F  # header flag bits of the opcode (4) and the rcode (4)

_LINK_LOCAL_V4 = IPv4Network("169.254.0.0/16")
Network = IPv4Network | IPv6Network


def boot_clock() -> Callable[[], float]:
    """Seconds that go on while the machine is suspended, where the platform has such a clock.

    TTLs are time in the world. time.monotonic stands still during suspend on Linux, so a record
    cached just before an hour's sleep would come back fresh after it: the address of the
    printer on the last network. CLOCK_BOOTTIME (Linux) goes on; elsewhere time.monotonic.
    """
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    if boottime is None:
        return time.monotonic
    return functools.partial(time.clock_gettime, boottime)


def _series_start(now: float, deadline: float) -> float:
    """When a series of queries starts: a random 20-120 ms late (RFC 6762 §5.2), but within
    the first half of a shorter call, which would otherwise not ask at all."""
    return now + min(random.uniform(*FIRST_DELAY), (deadline - now) / 2)


def _list_interfaces() -> list[Interface] | None:
    """The interfaces as they are now, or None (logged) when the system will not say."""
    try:
        return list_interfaces()
    except NetworkError as exc:
        log.debug("cannot list the interfaces again: %s", exc)
        return None


def _summary(message: Message, most: int = 6) -> str:
    """A response's records, briefly, for a debug line."""
    records = message.answers + message.additionals
    text = ", ".join(
        f"{r.name} {r.type.name}" + (" goodbye" if not r.ttl else "") for r in records[:most]
    )
    return text + (f" and {len(records) - most} more" if len(records) > most else "") or "nothing"


def _takes_interface(send: Callable[..., object]) -> bool:
    """Whether a transport's send() takes ``interface=`` (a transport written before it did
    gets one packet for all its links)."""
    try:
        parameters = inspect.signature(send).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "interface" or p.kind == p.VAR_KEYWORD for p in parameters)


def _needle(name: str) -> bytes | None:
    """The first label of ``name`` as it appears on the wire (length byte + label), lower case:
    every packet carrying the name holds these bytes literally at least once."""
    try:
        labels = name_to_wire_labels(name)
    except ValueError:
        return None
    return bytes((len(labels[0]),)) + labels[0].lower() if labels else None


def _loose(record: Record) -> tuple[Any, ...]:
    """A record's identity with every name in it compared without ASCII case."""
    return (record.key, *(f.lower() if isinstance(f, str) else f for f in record[4:]))


def _indexes(transport: Transport) -> list[int]:
    return [interface.index for interface in transport.interfaces]


def _chunks(questions: list[Question], budget: int = QUESTION_BUDGET) -> Iterator[list[Question]]:
    """Questions in groups that fit one packet of ``budget`` bytes (each group gets its own
    known answers)."""
    chunk: list[Question] = []
    size = 12
    for question in questions:
        # Upper bound of the wire size: text length + 2 for the labels, + 4 for type and class.
        need = len(question.name.encode()) + 6
        if chunk and size + need > budget:
            yield chunk
            chunk, size = [], 12
        chunk.append(question)
        size += need
    if chunk:
        yield chunk


# -- the Querier ------------------------------------------------------------------------------


class Querier:
    """A multicast DNS querier with one shared cache; safe to share between threads.

    ``interfaces``: names, indexes or addresses (default: every multicast-capable interface).
    ``ip_version``: "any", "v4" or "v6". ``one_shot``: query from an ephemeral port (legacy
    unicast, RFC 6762 §5.1) instead of sharing port 5353. ``unicast_response``: set the QU bit on
    the first query of each question (§5.4), unless another program shares port 5353 (§15.1).
    ``transports``, ``clock`` and ``wait`` replace the sockets, the clock (default:
    boot_clock()) and the readiness wait (tests drive a Querier without a network).
    """

    def __init__(
        self,
        interfaces: InterfaceSpec = None,
        ip_version: IPVersion | str = "any",
        one_shot: bool = False,
        *,
        unicast_response: bool = False,
        cache_size: int = 4096,
        settle: float = SETTLE,
        transports: Sequence[Transport] | None = None,
        clock: Callable[[], float] | None = None,
        wait: Callable[[float | None], object] | None = None,
    ) -> None:
        # Checked (once: an iterator would be spent by the first socket) before any opens.
        families = parse_ip_version(ip_version)
        # The address types a call waits for once the first address came: over one family
        # alone, that family's (tasks.all_addresses_known).
        self._settle_types = tuple(t for t, on in zip(ADDRESS_TYPES, families, strict=True) if on)
        spec = check_spec(interfaces)
        settle = checked_timeout(settle, "settle")
        if not 0 <= settle < math.inf:
            raise InvalidArgument(f"settle must be a finite number of seconds >= 0, not {settle}")
        self.one_shot = one_shot
        self.unicast_response = unicast_response
        self.settle = settle
        self._clock = boot_clock() if clock is None else clock
        # How far the boot clock is ahead of time.monotonic: it grows by the time spent asleep
        # (a caller's clock says nothing of sleep).
        self._sleep_visible = clock is None
        self._asleep_before = self._clock() - time.monotonic()
        # The last wake seen (records received before it are reconfirmed until
        # _reconfirm_by, WAKE_RECONFIRM after it was seen).
        self._woke_at = -math.inf
        self._reconfirm_by = -math.inf
        # Bumped when the network may be another one (after sleep, a renumbered or new link):
        # each call then starts its series of queries again (_send), not at its next doubling.
        self._epoch = 0
        self._cache = RecordCache(cache_size, report_changes=True)
        # Code that can run on a thread while that thread is inside the lock, a signal handler or
        # the garbage collector, asks (_is_owned) instead of waiting for itself forever, and an
        # interrupted call asks before it lets go (_drive, _lead; mdnsq/locks.py says why).
        self._lock = OwnedLock()
        self._cond = threading.Condition(self._lock)
        self._leader = 0  # the receiving thread's ident (see _lead), 0 while nobody receives
        self._closed = False
        self._released = False  # sockets, selectors and the wake-up pair closed (_release)
        self._tasks: set[Task] = set()
        # Tasks of iterators the garbage collector closed on a thread inside the lock (see
        # _drive); that thread retires them before it next lets go of the lock for long
        # (_await, process, the end of a call, close).
        self._orphans: list[Task] = []
        self._recent: dict[tuple[tuple[str, int, int], bool], float] = {}
        # §7.3: (question key, transport, interface) -> when another host asked it (QM); the
        # receiver queues the queries it sees for the lock holder; our own sent packets (bytes),
        # to recognise them when the kernel loops them back.
        self._peer_asked: dict[tuple[tuple[str, int, int], Transport, int], float] = {}
        # A peer's query, where it came from, and when (on our clock)
        self._peer_queries: list[tuple[Message, Transport, int, float]] = []
        self._own_queries: dict[bytes, None] = {}
        self._port_shared = False  # another socket shares our port 5353 (_port_to_ourselves)
        self._shared_checked = -math.inf
        # §10.5: (cache entry key, transport) -> (peers' queries for it gone unanswered, time of
        # the first, of the last)
        self._unanswered: dict[tuple[Any, Transport], tuple[int, float, float]] = {}
        self._ids: dict[int, None] = {}  # one-shot query IDs still accepted (bounded, ordered)
        self._stats: Counter[str] = Counter()
        self._receive_errors: dict[Transport, int] = {}
        self._onlink_memo: dict[tuple[str, int], bool] = {}
        # Load shedding (see the top of the module): needle -> how many waits use it, and an
        # immutable snapshot the receiver reads without the lock.
        self._needle_counts: dict[bytes, int] = {}
        self._needles: tuple[bytes, ...] = ()
        self._sent_names: dict[str, float] = {}  # send_query() name -> until when it is wanted
        self._public_selector: selectors.BaseSelector | None = None
        if transports is None:
            self._transports = self._open(spec, families, one_shot)
            self._owns_transports = True
        else:
            self._transports = list(transports)
            self._owns_transports = False
        # The subnets of each interface (the §11 on-link check) and our own addresses per
        # transport (to recognise our queries looped back), as the interfaces were listed;
        # re-read when a source is off every subnet we know (_relink), since a machine may
        # wake on another network with the same interface and new addresses, and when the
        # caller asks (update_interfaces).
        self._links: dict[int, list[Network]] = {}
        self._own_addresses: dict[Transport, frozenset[str]] = {}
        self._listed: set[int] = set()
        self._learn_links()
        self._relinked = -math.inf
        self._pressure = dict.fromkeys(self._transports, False)
        self._pressed = dict.fromkeys(self._transports, -math.inf)  # last full receive pass
        self._pass_ends = math.inf  # when the receive pass under way is over its budget
        self._pass_cpu_ends = math.inf  # ... and as the thread's CPU time (_cpu) says
        # Per receive pass: arrival times (time.time()) before this are late (LATE_AFTER), and
        # what to add to one to put it on our clock.
        self._late_before = 0.0
        self._wall_to_clock = 0.0
        self._late_seen = False
        self._filed_at = -math.inf  # the latest time records were filed as of
        self._handlers = {t: self._make_handler(t) for t in self._transports}
        # Transports whose send() can aim at one interface get a packet per link (_transmit).
        self._per_link = {t: _takes_interface(t.send) for t in self._transports}
        self._wait_hook = wait
        # close() writes a byte here to wake the receiver out of select(). A socket pair, not
        # os.pipe(): sockets close themselves when a Querier is dropped without close(), raw
        # descriptors leaked two per Querier.
        wake: list[socket.socket] = []
        selector: selectors.BaseSelector | None = None
        try:
            wake.extend(socket.socketpair())
            for end in wake:
                end.setblocking(False)
            selector = selectors.DefaultSelector()
            selector.register(wake[0], selectors.EVENT_READ, None)
            if wait is None:
                for transport in self._transports:
                    selector.register(transport.fileno(), selectors.EVENT_READ, transport)
        except OSError as exc:  # out of descriptors, say: give back what was opened
            for end in wake:
                end.close()
            if selector is not None:
                selector.close()
            if self._owns_transports:
                for transport in self._transports:
                    transport.close()
            raise NetworkError(exc.errno, f"cannot set up the Querier: {exc.strerror}") from exc
        self._selector = selector
        self._wake_r, self._wake_w = wake

    @staticmethod
    def _open(
        spec: tuple[str | int, ...] | None, families: tuple[bool, bool], one_shot: bool
    ) -> list[Transport]:
        want_v4, want_v6 = families
        port = 0 if one_shot else MDNS_PORT
        opened: list[Transport] = []
        errors: list[NetworkError] = []
        kinds: list[type[UDPv4Transport] | type[UDPv6Transport]] = []
        if want_v4:
            kinds.append(UDPv4Transport)
        if want_v6:
            kinds.append(UDPv6Transport)
        for kind in kinds:
            try:
                opened.append(kind(spec, port=port))
            except NetworkError as exc:
                errors.append(exc)
                # Worth saying when the caller named the interfaces; routine by default.
                level = logging.DEBUG if spec is None else logging.INFO
                log.log(level, "no %s transport: %s", kind.__name__, exc)
        if not opened:
            raise errors[0]
        return opened

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Querier:
        self._check_open()  # `with q:` on a closed Querier failed only at its first call
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether close() was called (calls made from now on raise QuerierClosed)."""
        return self._closed

    def __repr__(self) -> str:
        if self._closed:
            return "<mdnsq.Querier closed>"
        links = sorted({i.name for t in self._transports for i in t.interfaces})
        families = "+".join(
            "IPv6" if t.family == socket.AF_INET6 else "IPv4" for t in self._transports
        )
        mode = " one_shot" if self.one_shot else ""
        return f"<mdnsq.Querier {families} on {', '.join(links) or 'no interface'}{mode}>"

    def close(self) -> None:
        """Wake every waiting call (each returns what it found) and release the sockets.

        Also from a signal handler: when the handler interrupted a call on its own thread, the
        Querier is marked closed and that call returns at once, releasing the sockets as it
        unwinds (waiting here for it would wait forever)."""
        if self._leader == threading.get_ident() or self._lock._is_owned():
            if not self._closed:
                self._closed = True
                self._wake()  # the receiver may be this very call
                if self._lock._is_owned():
                    self._cond.notify_all()
            return
        lock = self._lock  # as in process(): not `with self._cond`
        try:
            lock.acquire()
            if self._released:
                return
            self._closed = True
            self._retire_orphans()
            self._wake()
            self._cond.notify_all()
            # The leader may be inside select(); the byte above wakes it. Wait for it to leave
            # before the sockets it watches are closed under it.
            end = time.monotonic() + CLOSE_WAIT
            while self._leader and time.monotonic() < end:
                self._cond.wait(0.05)
            self._release()
        finally:
            try:  # noqa: SIM105 (suppress() would be a call, and an interrupt point)
                lock.release()
            except RuntimeError:  # not held: interrupted waiting for it
                pass

    def _wake(self) -> None:
        """Make the receiver's select() return at once (close() writes one byte)."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _release(self) -> None:
        """Under the lock, closed, nobody receiving: close sockets, selectors, wake-up pair."""
        if self._released:
            return
        self._released = True
        self._selector.close()
        if self._public_selector is not None:
            self._public_selector.close()
        if self._owns_transports:
            for transport in self._transports:
                transport.close()
        self._wake_r.close()
        self._wake_w.close()

    def _check_open(self) -> None:
        if self._closed:
            raise QuerierClosed("this Querier is closed")

    # -- select-loop integration ----------------------------------------------------------

    def fileno(self) -> int:
        """A descriptor that is readable when a packet is waiting: then call process().

        With one transport it is that socket; with several (IPv4 + IPv6) it is an epoll/kqueue
        descriptor watching all of them, which select/poll report readable like a socket.
        """
        self._check_open()
        if len(self._transports) == 1:
            return self._transports[0].fileno()
        with self._lock:
            if self._public_selector is None:
                selector = selectors.DefaultSelector()
                if not hasattr(selector, "fileno"):
                    selector.close()
                    raise MdnsqError("fileno() with several transports needs epoll or kqueue")
                for transport in self._transports:
                    selector.register(transport.fileno(), selectors.EVENT_READ)
                self._public_selector = selector
            fd: int = self._public_selector.fileno()  # type: ignore[attr-defined]
            return fd

    def process(self, timeout: float | None = 0.0) -> int:
        """Receive what arrived (waiting up to ``timeout``, at most a day) into the cache;
        returns packets used.

        When another thread is already receiving for this Querier it returns 0, after waiting
        up to ``timeout`` for that thread's news (at once it was: `while True: q.process(1.0)`
        in a thread of its own spun a core while a call on another thread received).
        """
        seconds = timeout_seconds(timeout, none_ok=True)
        if seconds is not None:
            # _receive reads infinity as "until something arrives"; -inf was that too.
            timeout = min(max(seconds, 0.0), MAX_WAIT)
        # Not `with self._cond`: Condition's enter and exit are Python functions, which an
        # interrupt can split from the lock's own (the lock left held by nobody's call); and
        # the release ignores a lock an interrupted wait did not take back (see _drive).
        lock = self._lock
        try:
            lock.acquire()
            self._check_open()
            if self._leader:
                if timeout is None or timeout > 0:
                    self._cond.wait(MAX_WAIT if timeout is None else timeout)
                return 0
            if self._orphans:
                self._retire_orphans()
            if self._sent_names:
                self._forget_sent(self._clock())
            before = self._stats["accepted"]
            try:
                self._lead(timeout)
            finally:
                if self._closed:  # by a signal handler while this thread received
                    self._release()
            return self._stats["accepted"] - before
        finally:
            try:  # noqa: SIM105 (suppress() would be a call, and an interrupt point)
                lock.release()
            except RuntimeError:  # not held: interrupted waiting for it
                pass

    def update_interfaces(self) -> bool:
        """Follow the network interfaces as they are now; whether anything changed since the
        last look (an interface came or went, went down or up, or has new addresses), in
        which case every call starts its queries again: the network may be another one.

        A Querier keeps the interfaces it opened with. Call this from any thread, while other
        calls run, when the network may have changed (say, every minute, or on a signal from
        the system): the sockets it opened join the group on interfaces that qualify now
        (with the selection given to the constructor) and leave those gone, and every
        interface's addresses are read again. An interface that is down but still there is
        kept; one named to the constructor that is gone is left, and joined again once it is
        back. What was heard on a link gone or down must be heard again within
        WAKE_RECONFIRM (RFC 6762 §10.3). It sends nothing itself; a family that had no
        socket when the Querier opened still has none (open a new Querier for it).
        """
        with self._lock:
            self._check_open()
            listed = _list_interfaces()
            changed = False
            before = {i.index for t in self._transports for i in t.interfaces}
            if self._owns_transports and listed is not None:
                for transport in self._transports:
                    if not isinstance(transport, UDPv4Transport | UDPv6Transport):
                        continue
                    try:
                        changed = transport.follow_interfaces(listed) or changed
                    except NetworkError as exc:  # closed meanwhile (a signal handler's close())
                        log.debug("%r not followed: %s", transport, exc)
            if listed is not None:
                # RFC 6762 §10.3: what was heard on a link now gone or down must be heard
                # again within WAKE_RECONFIRM, as after a sleep. Left to its TTL, a cable
                # pulled kept the other network's services listed for up to 75 minutes (a
                # PTR record's TTL), or until their SRV records expired.
                up = {i.index: i.up for i in listed}
                after = {i.index for t in self._transports for i in t.interfaces}
                # (only our own sockets' indexes are the machine's: _learn_links)
                ours = after & self._listed
                lost = (before - after) | {i for i in ours if up.get(i) is False}
                if lost:
                    shortened = self._cache.reconfirm(
                        self._clock(), WAKE_RECONFIRM, interfaces=lost
                    )
                    if shortened:
                        self._stats["reconfirmed_link_lost"] += shortened
            if self._learn_links(listed) or changed:
                self._network_changed("the interfaces changed")
                self._cond.notify_all()  # waiting calls ask again; wake the receiver too
                self._wake()
            return changed

    def send_query(self, name: str, type: int | str) -> None:
        """Send one query now and return: with fileno() and process(), this is the
        non-blocking way to ask (answers land in the cache; read them with cached())."""
        question = Question(asked_name(name), parse_type(type))
        with self._lock:
            self._check_open()
            now = self._clock()
            self._transmit([question], now)
            # Wanted for a while: under pressure (a busy link, or one pass that read a
            # backlog of MAX_BATCH), only names some call waits for are parsed, and no call
            # waits for this one; its answer was shed like junk.
            sent = self._sent_names
            if question.name not in sent:
                self._want(question.name)
            sent.pop(question.name, None)
            sent[question.name] = now + SENT_NEEDLE_HOLD
            if len(sent) > MAX_SENT_NEEDLES:
                self._unwant(next(iter(sent)))
                del sent[next(iter(sent))]

    def cached(self, name: str, rtype: int | str) -> list[Record]:
        """The live records of (name, type) in this Querier's cache, without asking anything."""
        return [e.record for e in self.cached_entries(name, rtype)]

    def cached_entries(self, name: str, rtype: int | str) -> list[CacheEntry]:
        """Like cached(), with reception details (interface, time, TTL); the entries are
        immutable snapshots, safe to keep while other threads use the Querier. Their times
        are on the Querier's clock: ``entry.remaining(q.now())`` is the TTL left."""
        rt = parse_type(rtype, asking=False)
        with self._lock:
            now = self._clock()
            if self._sleep_visible:
                self._notice_sleep(now)
            return self._cache.entries(normalize_name(name), rt, now)

    def now(self) -> float:
        """The Querier's clock, in seconds (boot_clock() unless one was given): the time base
        of cache entries, which may differ from time.monotonic() by the time spent asleep."""
        return self._clock()

    @property
    def cache(self) -> RecordCache:
        """The shared cache (lock-free access is only safe while no call is running)."""
        return self._cache

    def stats(self) -> Counter[str]:
        """Counters: packets received/accepted/dropped (by reason; "shed_under_pressure" were
        dropped unparsed during a flood), queries sent, questions suppressed (by our own recent
        query, or "questions_suppressed_by_peers": another host's, §7.3, once per link it was
        not sent on), records other hosts asked for in vain ("flushed_unanswered", §10.5),
        cache size. Summed
        over the sockets, what they drop before the Querier sees it ("dropped_oversize":
        larger than a buffer; "dropped_interface": unicast through an interface not selected)
        and the errors they read and wait through ("transient_receive_errors": ENOBUFS, an
        ICMP report returned by a read; "drained_error_reports": ICMP reports read off the
        error queue). "packets_sent" counts query packets, one per link where a socket
        sends to its links one by one (each with its own known answers); "send_errors"
        counts, per query, each socket none of whose links took every packet;
        "interface_send_errors", summed over the sockets, every send to one interface that
        failed, also while another interface took the packet (one link's full queue). A
        Counter: one that never moved is not listed, and reads 0 (a plain dict raised KeyError
        for ``stats()["send_errors"]`` until the first failure). Safe in a signal handler, as
        close() is."""
        if self._lock._is_owned():  # a handler that interrupted this thread inside the lock
            return self._counters()
        with self._lock:
            return self._counters()

    def _counters(self) -> Counter[str]:
        result = Counter(self._stats)
        result["cache_records"] = len(self._cache)
        result["cache_evicted"] = self._cache.evicted
        result["cache_flushed"] = self._cache.flushed
        for transport in self._transports:
            counts = transport.stats()
            for name, value in (
                ("dropped_oversize", counts.dropped_oversize),
                ("dropped_interface", counts.dropped_interface),
                ("transient_receive_errors", counts.receive_errors),
                ("drained_error_reports", counts.drained_errors),
                ("interface_send_errors", counts.send_errors),
            ):
                if value:
                    result[name] += value
        return result

    # -- public calls ---------------------------------------------------------------------

    @overload
    def query(
        self, name: str, type: Literal["A", RecordType.A], timeout: float = ...
    ) -> list[ARecord]: ...

    @overload
    def query(
        self, name: str, type: Literal["AAAA", RecordType.AAAA], timeout: float = ...
    ) -> list[AAAARecord]: ...

    @overload
    def query(
        self, name: str, type: Literal["PTR", RecordType.PTR], timeout: float = ...
    ) -> list[PTRRecord]: ...

    @overload
    def query(
        self, name: str, type: Literal["CNAME", RecordType.CNAME], timeout: float = ...
    ) -> list[CNAMERecord]: ...

    @overload
    def query(
        self, name: str, type: Literal["SRV", RecordType.SRV], timeout: float = ...
    ) -> list[SRVRecord]: ...

    @overload
    def query(
        self, name: str, type: Literal["TXT", RecordType.TXT], timeout: float = ...
    ) -> list[TXTRecord]: ...

    @overload
    def query(
        self, name: str, type: Literal["HINFO", RecordType.HINFO], timeout: float = ...
    ) -> list[HINFORecord]: ...

    @overload
    def query(
        self, name: str, type: Literal["NSEC", RecordType.NSEC], timeout: float = ...
    ) -> list[NSECRecord]: ...

    @overload
    def query(self, name: str, type: int | str, timeout: float = ...) -> list[Record]: ...

    def query(self, name: str, type: int | str, timeout: float = 1.0) -> list[Any]:
        """Records answering (name, type), each with the whole seconds of its TTL left (0 for
        one that said goodbye); typed by the type's record class when the type is a literal
        (``list[AAAARecord]`` for "AAAA"). Returns early only for unique (cache-flush)
        answers, or, one_shot, once the first answer has settled (legacy replies carry no
        flush bit)."""
        asked, rtype, seconds = query_args(name, type, timeout)
        task = QueryTask(asked, rtype, self.settle, self.one_shot)
        self._run(task, seconds)
        return task.result

    def resolve_host(self, name: str, timeout: float = 2.0) -> list[Address]:
        """IPv4/IPv6 addresses of ``name`` ('.local' added to a bare host name)."""
        host, seconds = host_args(name, timeout)
        task = HostTask(host, self.settle, self._settle_types)
        self._run(task, seconds)
        return task.result

    def resolve_service(
        self,
        name: str | None = None,
        timeout: float = 2.0,
        *,
        instance: str | None = None,
        type: str | None = None,
    ) -> ServiceInfo | None:
        """Resolve one instance: by full name, or by raw ``instance`` label + ``type``. In a
        full name, unescaped dots before a .local service type belong to the instance label.

        A full name that ends in a service type ('Office Printer._ipp._tcp') gets '.local',
        as service types do. Returns as soon as SRV, TXT and an address are known and the
        host's addresses have settled as resolve_host settles them (up to ``settle`` seconds
        for the other address type after the first); at the deadline, what is known if at
        least the SRV record arrived; otherwise None.
        """
        full, seconds = service_args(name, timeout, instance, type)
        task = ServiceTask(full, self.settle, self._settle_types)
        self._run(task, seconds)
        return task.result

    def browse(self, service_type: str, timeout: float = 3.0) -> Generator[ServiceInfo, None, None]:
        """Yield each instance of a type (or subtype) as soon as it is resolved, until timeout.

        Resolved: SRV, TXT and the host's addresses, settled as resolve_host settles them (up
        to ``settle`` seconds for the other address type after the first). An instance is a PTR
        record's target one label under the type (a subtype's: under its base type, RFC 6763
        §4.1); a PTR record pointing anywhere else names none and is left out."""
        stype, seconds = type_args(service_type, timeout, none_ok=False)
        self._check_open()  # now, not at the first next(): a call after close() raises
        task = BrowseTask(stype, self.settle, self._settle_types)
        return self._drive(task, seconds)

    def watch(
        self, service_type: str, timeout: float | None = None
    ) -> Generator[ServiceEvent, None, None]:
        """Yield ServiceEvents (added / updated / removed) until timeout, close() or break.

        Instances as browse() finds them. Events wait in order while the caller is busy
        elsewhere, each true when it was made: an instance added then may be removed next."""
        stype, seconds = type_args(service_type, timeout)
        self._check_open()
        task = WatchTask(stype)
        return self._drive(task, seconds)

    def service_types(self, timeout: float = 3.0) -> list[str]:
        """Service types announced on the link (RFC 6763 §9), e.g. '_http._tcp.local'."""
        task = TypesTask()
        self._run(task, checked_timeout(timeout))
        return task.result

    # -- the engine -----------------------------------------------------------------------

    def _run(self, task: Task, timeout: float | None) -> None:
        self._check_open()
        for _ in self._drive(task, timeout):
            pass

    def _drive(self, task: Task, timeout: float | None) -> Generator[Any, None, None]:
        # Every acquire and release is inside the try, and the finally asks whether this thread
        # holds the lock rather than assuming: a KeyboardInterrupt (a signal's handler runs as
        # a call returns) may come between any two steps.
        lock = self._lock
        held = True  # False once the garbage collector closed this call on another's watch
        waiting = False  # inside _await: only then can this call be the thread receiving
        try:
            lock.acquire()
            if self._closed:  # since the call (a browse made before close(), run after)
                return
            start = self._clock()
            deadline = math.inf if timeout is None else start + max(0.0, timeout)
            task.epoch = self._epoch
            self._tasks.add(task)
            for name in task.protects:
                self._want(name)
            if not self._leader:
                # Before the first look at the cache: file what queued while nobody received.
                # A goodbye that came between two calls was answered over (a withdrawn address
                # returned at once), and an old backlog read later was news to the next call.
                waiting = True
                self._lead(0, catch_up=True)
                waiting = False
            while True:
                now = self._clock()
                if self._sleep_visible:
                    self._notice_sleep(now)
                removed = self._cache.expire(now)
                self._changed({name_key(e.record.name) for e in removed})
                task.update(self._cache, now)
                if task.keep_changes:
                    self._apply_keep(task)
                if task.done or self._closed or now >= deadline:
                    task.finish(self._cache, now)
                    task.finished = True
                if task.out:
                    out, task.out = task.out, []
                    try:
                        lock.release()
                        yield from out
                    except GeneratorExit:
                        # Closed: by break or close(), or by the garbage collector, which runs
                        # in whichever thread allocated, perhaps one inside this lock. Then
                        # never wait for the lock; this thread retires the task on its way out.
                        if lock._is_owned():
                            held = False
                            self._orphans.append(task)
                        else:
                            lock.acquire()
                        raise
                    except BaseException:
                        if not lock._is_owned():
                            lock.acquire()
                        raise
                    lock.acquire()
                    if not task.finished:
                        continue
                if task.finished:
                    return
                next_send = self._send(task, now, deadline)
                wake = min(
                    deadline, next_send, task.wake_at(self._cache, now), self._cache.flush_due()
                )
                # A wake time in the past would make this loop spin; never wait less than 1 ms.
                waiting = True
                self._await(max(wake - now, MIN_WAIT))
                waiting = False
        finally:
            if held:
                # A KeyboardInterrupt (a script stopped by Ctrl-C while other threads use the
                # Querier) may land here too, at any call or function entry: the lock then
                # stayed held, and every other thread's call waited for it forever, whatever
                # its deadline. Only calls that are safe to repeat come before the release,
                # inside a loop that runs them again after an interruption (raised once they
                # are done); the release itself ignores the error of a lock not held rather
                # than asking first, which would be one more point to land on.
                interrupted: BaseException | None = None
                try:
                    while True:
                        try:
                            if not lock._is_owned():
                                lock.acquire()  # interrupted waiting, or just after letting go
                            self._end_call(task, waiting)
                            break
                        except BaseException as e:
                            if interrupted is None:
                                interrupted = e
                finally:  # also when a second interrupt lands on the loop's jump back
                    try:  # noqa: SIM105 (suppress() would be a call, and an interrupt point)
                        lock.release()
                    except RuntimeError:  # not held: interrupted waiting for it
                        pass
                if interrupted is not None:
                    raise interrupted

    def _end_call(self, task: Task, waiting: bool) -> None:
        """Under the lock, as a call ends however it ended: retire its task. Safe to run again
        after an interruption (a task half retired is not retired twice; it may keep a name
        wanted)."""
        if waiting and self._leader == threading.get_ident():
            # Interrupted while receiving, before _lead could say it had stopped: left set,
            # nobody would receive again. (Not when the collector closed this call while its
            # thread received for another one: that one still receives, and the mark is what
            # keeps others and close() off its selector.)
            self._leader = 0
            self._cond.notify_all()
        self._retire(task)
        if self._orphans:
            self._retire_orphans()
        if self._closed and not self._leader:  # closed by a signal handler, perhaps
            self._release()

    def _retire(self, task: Task) -> None:
        """Under the lock: ``task``'s call has ended; forget what it asked and waited for."""
        if task in self._tasks:
            self._tasks.discard(task)
            for name in task.protects:
                self._unwant(name)
            for ask in task.asks.values():
                self._unwant(ask.question.name)
            task.asks.clear()
            if task.keep_changes:  # first: kept_names() counts them, the cache not yet
                self._apply_keep(task)
            for name in task.kept_names():
                self._unwant(name)
        if self._tasks:
            self._cond.notify_all()  # I may have been the leader: let another step up

    def _retire_orphans(self) -> None:
        """Under the lock: retire the tasks of iterators the collector closed on this thread
        while it held the lock (see _drive)."""
        while self._orphans:
            self._retire(self._orphans.pop())

    def _apply_keep(self, task: Task) -> None:
        """Under the lock: the cache spares what ``task`` came to read, no longer what it
        stopped reading (Task.keep_changes)."""
        # Wanted as a call's names are: the cache spares them, and the shedder lets their
        # refresh answers through (with the cache's alone, a flood shed every answer to the
        # refreshes of a host's address, which expired: a false update).
        changes, task.keep_changes = task.keep_changes, []
        for name, delta in changes:
            if delta > 0:
                self._want(name)
            else:
                self._unwant(name)

    def _new_id(self) -> int:
        """Under the lock: a random one-shot query ID, accepted in replies for the next 64
        transmissions."""
        qid = random.randint(1, 0xFFFF)
        self._ids[qid] = None
        if len(self._ids) > 64 * max(1, len(self._transports)):  # 64 sends, an ID a socket
            del self._ids[next(iter(self._ids))]
        return qid

    def _forget_sent(self, now: float) -> None:
        """Under the lock: send_query() names past their SENT_NEEDLE_HOLD are wanted no more."""
        sent = self._sent_names
        for name in [n for n, until in sent.items() if until <= now]:
            del sent[name]
            self._unwant(name)

    def _want(self, name: str) -> None:
        """Under the lock: a call waits for ``name``; the cache spares it, the shedder lets
        packets that mention it through."""
        self._cache.want(name)
        needle = _needle(name)
        if needle is not None:
            count = self._needle_counts.get(needle, 0)
            self._needle_counts[needle] = count + 1
            if not count:
                self._needles = tuple(self._needle_counts)

    def _unwant(self, name: str) -> None:
        self._cache.unwant(name)
        needle = _needle(name)
        if needle is None or needle not in self._needle_counts:
            return
        self._needle_counts[needle] -= 1
        if not self._needle_counts[needle]:
            del self._needle_counts[needle]
            self._needles = tuple(self._needle_counts)

    def _await(self, timeout: float) -> None:
        """Under the lock: become the receiver, or wait for the receiver's news."""
        if self._orphans:
            self._retire_orphans()
        if timeout <= 0:
            return
        if self._leader:
            self._cond.wait(None if math.isinf(timeout) else min(timeout, MAX_WAIT))
            return
        self._lead(None if math.isinf(timeout) else timeout)

    def _lead(self, timeout: float | None, catch_up: bool = False) -> None:
        """Under the lock: receive (waiting up to ``timeout``), then file what came. With
        ``catch_up``, only read what is already queued, without the wait hook or a count."""
        batch: list[Received] = []
        lock = self._lock
        try:
            # Inside the try: an interrupt just after this left a leader that never received,
            # and every later call waited for its news until its deadline, hearing nothing.
            self._leader = threading.get_ident()
            if not catch_up:
                self._stats["receive_waits"] += 1
            lock.release()
            batch = self._receive(timeout, catch_up)
        finally:
            # The lock back and the mark cleared, whatever interrupts this: an interrupt
            # after `_is_owned()` said no and before the acquire left the mark set and the
            # lock free (and process()'s `with` raised RuntimeError letting it go).
            interrupted: BaseException | None = None
            try:
                while True:  # inline: a function's entry is one more point for an interrupt
                    try:
                        if not lock._is_owned():
                            lock.acquire()
                        break
                    except BaseException as e:
                        if interrupted is None:
                            interrupted = e
            finally:
                self._leader = 0
            if interrupted is not None:
                self._cond.notify_all()  # a receiver that leaves wakes the others
                raise interrupted
            filing = self._clock() if self._sleep_visible else 0.0
            if batch:
                self._apply(batch)
            if self._sleep_visible:
                # After filing: a backlog that waited in the socket through the sleep is filed
                # as of its arrival (Linux), before `filing`, and reconfirmed with the rest;
                # what came after the wake is filed as of now, and kept.
                self._notice_sleep(self._clock(), filing)
            if self._peer_queries:
                self._note_peer_queries(self._clock())
            # Whoever waits for the news (a call, a process() call, close()); with nobody
            # waiting this is a check of an empty list, once per pass.
            self._cond.notify_all()

    def _receive(self, timeout: float | None, catch_up: bool = False) -> list[Received]:
        """Without the lock (leader only): wait for readiness, then parse every queued packet."""
        if catch_up:
            ready = self._transports  # what is queued already: read without waiting
        elif self._wait_hook is not None:
            self._wait_hook(timeout)
            ready = [] if self._closed else self._transports
        elif timeout == 0:
            ready = self._transports  # process() from a select loop: just try each socket
        else:
            if timeout is not None:
                timeout = None if math.isinf(timeout) else min(timeout, MAX_WAIT)
            ready = []
            for key, _ in self._selector.select(timeout):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(512)
                else:
                    ready.append(key.data)
        batch: list[Received] = []
        pressure, pressed = self._pressure, self._pressed
        wall = _wall()
        self._wall_to_clock = self._clock() - wall
        self._late_before = wall - LATE_AFTER
        for transport in ready:
            handler = self._handlers[transport]
            now = self._clock()
            if pressure[transport] and now >= pressed[transport] + PRESSURE_HOLD:
                pressure[transport] = False
                log.debug("%r is quiet again: parsing every packet", transport)
            before = len(batch)
            self._pass_ends = now + PASS_BUDGET
            self._pass_cpu_ends = _cpu() + PASS_BUDGET
            rounds = 1
            try:
                transport.receive_batch(handler, MAX_BATCH, batch)
                # A catch-up reads all that is queued, not one batch (up to CATCH_UP_ROUNDS of
                # them): a goodbye behind the first MAX_BATCH datagrams was answered over.
                while (
                    catch_up
                    and len(batch) - before == rounds * MAX_BATCH
                    and rounds < CATCH_UP_ROUNDS
                ):
                    transport.receive_batch(handler, MAX_BATCH, batch)
                    rounds += 1
            except OSError as exc:
                if len(batch) > before:  # datagrams came before the error: not in a row
                    self._receive_errors.pop(transport, None)
                self._receive_error(transport, exc)
                continue
            finally:
                self._pass_ends = math.inf
            self._receive_errors.pop(transport, None)
            if len(batch) - before == rounds * MAX_BATCH:
                self._press(transport, now)  # every batch full: the socket is not dry
        if batch:
            batch = [item for item in batch if item is not _DROP]
            self._stats["received"] += len(batch)  # the dropped ones are counted as they drop
        return batch

    def _press(self, transport: Transport, at: float) -> None:
        """Without the lock (leader only): ``transport`` is flooded as of ``at``; shed unrelated
        packets until PRESSURE_HOLD after the last time this is said."""
        self._pressed[transport] = at
        if not self._pressure[transport]:
            self._pressure[transport] = True
            self._stats["pressure_episodes"] += 1
            log.debug("%r keeps filling up: shedding unrelated packets", transport)

    def _receive_error(self, transport: Transport, exc: OSError) -> None:
        """A failed receive loses one datagram (counted); one that keeps failing is an error
        of the call, because select() would report the socket ready again at once."""
        self._stats["receive_errors"] += 1
        failures = self._receive_errors[transport] = self._receive_errors.get(transport, 0) + 1
        log.debug("receive on %r failed: %s", transport, exc)
        if failures >= MAX_RECEIVE_ERRORS:
            if isinstance(exc, NetworkError):
                raise exc
            raise NetworkError(
                exc.errno, f"receiving keeps failing: {exc.strerror or exc}"
            ) from exc

    def _make_handler(self, transport: Transport) -> Handler[Any]:
        # Per packet, in order of cost: a packet that passes touches no counter here (the
        # receiver counts what it returns: "received" of the accepted ones per batch), the
        # on-link memo is read without a method call, Message fields by index.
        stats = self._stats
        links = self._links
        ephemeral = self.one_shot
        onlink = self._onlink_memo
        parse = parse_message
        pressure = self._pressure
        clock = self._clock
        # Our own queries come back from one of self._own_addresses[transport], byte for byte
        # (another host's identical query, from its own address, is a peer's).

        def handle(
            view: memoryview,
            source: tuple[str, int],
            interface: int,
            to_group: bool,
            arrived: float,
        ) -> Any:
            if (
                not pressure[transport]
                and clock() > self._pass_ends
                and _cpu() > self._pass_cpu_ends
            ):
                self._press(transport, clock())  # over budget: shed the rest of it
            if source[1] != MDNS_PORT and not ephemeral:
                stats["received"] += 1
                stats["dropped_source_port"] += 1
                return _DROP
            if interface and interface not in links:
                stats["received"] += 1
                stats["dropped_other_interface"] += 1
                return _DROP
            # §11: sent to the group, it is from the link whatever its source (a host numbered
            # outside the link's subnets, a /32 with an on-link route); unicast may be routed.
            # A one-shot reply proves it instead by echoing the random ID of a query only the
            # link heard: every one-shot reply is unicast, and the subnet test dropped those of
            # an interface numbered /32, or of Avahi answering from a global IPv6 address an
            # interface with only a link-local one. Its ID is read before anything is parsed.
            if ephemeral:
                if len(view) < 2 or (view[0] << 8 | view[1]) not in self._ids:
                    stats["received"] += 1
                    stats["dropped_wrong_id"] += 1
                    return _DROP
            elif not to_group:
                ok = onlink.get((source[0], interface))
                if not ok and (ok is not None or not self._on_link(source[0], interface)):
                    stats["received"] += 1
                    stats["dropped_off_link"] += 1
                    return _DROP
            if (
                len(view) > 2
                and not view[2] & 0x80
                and (not to_group or not self._tasks or ephemeral or pressure[transport])
            ):
                # A query (QR clear) matters only to a call about to ask (§7.3, below), and
                # only if it went to the group: one sent to us alone may be answered to its
                # sender alone (§5.5), as a QU question may. With no call running (read
                # without the lock, as below), on a one-shot querier, or under pressure, it
                # is dropped unparsed too: a query of 1,123 questions costs ~1.7 ms to parse.
                stats["received"] += 1
                stats["ignored_queries"] += 1
                return _DROP
            if pressure[transport]:
                data = view.tobytes().lower()  # <= 9000 bytes; find() has no case folding
                for needle in self._needles:
                    if needle in data:
                        break
                else:
                    stats["received"] += 1
                    stats["shed_under_pressure"] += 1
                    return _DROP
            try:
                message = parse(view)
            except MalformedPacket:
                stats["received"] += 1
                stats["dropped_malformed"] += 1
                return _DROP
            flags = message[1]  # Message.flags; one read instead of three properties
            if not flags & FLAG_QR or flags & _OPCODE_RCODE:
                stats["received"] += 1
                stats["ignored_queries" if not flags & FLAG_QR else "dropped_opcode_rcode"] += 1
                if (
                    not flags  # a standard query (not a response, opcode 0)
                    and self._tasks  # some call may be about to ask (read without the lock)
                    and not message[4]  # a probe (authority records) is not a question to share
                    and not (
                        source[0] in self._own_addresses[transport]
                        and view.tobytes() in self._own_queries
                    )
                ):
                    at = arrived + self._wall_to_clock if arrived else clock()
                    self._peer_queries.append((message, transport, interface, at))
                return _DROP
            if message[6]:  # Message.skipped
                stats["skipped_records"] += message[6]
            if arrived and arrived < self._late_before:
                self._late_seen = True
                return (message, interface, arrived + self._wall_to_clock)
            return (message, interface)

        return handle

    def _on_link(self, address: str, interface: int) -> bool:
        """Decide and memoise (the receive handler reads the memo itself before calling)."""
        nets = self._links.get(interface)
        try:
            ip: IPv4Address | IPv6Address = ip_address(address)
        except ValueError:
            return False
        if (ip.version == 6 and ip.is_link_local) or ip in _LINK_LOCAL_V4:
            result = True
        elif not nets:
            result = True  # arrival interface unknown: nothing to check against
        else:
            result = any(ip in net for net in nets if net.version == ip.version)
            if not result and self._relink(interface):
                nets = self._links[interface]
                result = any(ip in net for net in nets if net.version == ip.version)
        if len(self._onlink_memo) > 1024:
            self._onlink_memo.clear()
        self._onlink_memo[(address, interface)] = result
        return result

    def _notice_sleep(self, now: float, fresh_from: float | None = None) -> None:
        """Under the lock: the boot clock ran ahead of time.monotonic, so the machine slept
        and may have woken on another network. Looked at as each call starts and wakes, and
        after each receive pass: a resolve answered from the cache sends nothing to notice it
        by. What was cached before must be heard again within WAKE_RECONFIRM; the other
        calls wake to ask again and to read their records' new expiries. Records filed as of
        ``fresh_from`` or later (this pass's, read after the wake) are kept; a late backlog
        filed in the window after (as of its arrival, before the wake) is reconfirmed then
        (_apply)."""
        asleep = now - time.monotonic()
        if asleep > self._asleep_before + SLEPT:
            self._network_changed(f"the machine slept {asleep - self._asleep_before:.0f} s")
            self._asleep_before = asleep
            self._woke_at = now if fresh_from is None else fresh_from
            self._reconfirm_by = now + WAKE_RECONFIRM
            self._stats["reconfirmed_after_sleep"] += self._cache.reconfirm(
                now, WAKE_RECONFIRM, self._woke_at
            )
            self._cond.notify_all()
            if self._leader and self._leader != threading.get_ident():
                self._wake()  # the receiver waits in select(), where no notify reaches it

    def _network_changed(self, why: str) -> None:
        """Every call asks again soon (see _send). Under the lock, or on the receiving thread,
        which wakes the others when it files its batch."""
        self._epoch += 1
        log.info("%s: asking again", why)

    def _learn_links(self, listed: list[Interface] | None = None) -> bool:
        """Take the subnets and our own addresses from the transports' interfaces, or from
        ``listed`` (the interfaces as listed just now) for those it has; whether any
        subnets changed. An interface listed with no address of a family keeps the subnets of
        that family we knew (a DHCP lease renewing): none would make every source of that
        family off-link, or every source on-link when it has no address at all. The receive
        handler reads ``_links`` without the lock, so it is changed in place, new keys first."""
        fresh = {i.index: i for i in listed or ()}
        links: dict[int, list[Network]] = {}
        for transport in self._transports:
            current = list(transport.interfaces)
            if isinstance(transport, UDPv4Transport | UDPv6Transport):  # the machine's
                current = [fresh.get(i.index, i) for i in current]
            for interface in current:
                nets = links.setdefault(interface.index, [])
                nets.extend(a.network for a in interface.addresses if a.network not in nets)
            self._own_addresses[transport] = frozenset(
                str(a.ip) for interface in current for a in interface.addresses
            )
        for index, nets in links.items():
            for version in (4, 6):
                if not any(n.version == version for n in nets):
                    nets.extend(n for n in self._links.get(index, ()) if n.version == version)
        changed = links != self._links
        self._links.update(links)
        for index in [i for i in list(self._links) if i not in links]:
            self._links.pop(index, None)
        # Only interfaces of our own sockets are the machine's to list again (a caller's
        # transport may describe any link).
        self._listed = {
            interface.index
            for transport in self._transports
            if isinstance(transport, UDPv4Transport | UDPv6Transport)
            for interface in transport.interfaces
        }
        self._onlink_memo.clear()
        return changed

    def _relink(self, index: int) -> bool:
        """List the interfaces again, at most every RELINK_GAP seconds, and take their subnets;
        whether any changed. A laptop that wakes on another network keeps its interface and
        gets new addresses: without this, every response on the new network was dropped as
        off-link. Called by the receiver (without the lock) for a source off every subnet."""
        now = self._clock()
        if index not in self._listed or now - self._relinked < RELINK_GAP:
            return False
        self._relinked = now
        listed = _list_interfaces()
        if listed is None or not self._learn_links(listed):
            return False
        nets = {str(n) for v in self._links.values() for n in v}
        self._network_changed("on " + ", ".join(sorted(nets)) + " now")
        return True

    def _note_peer_queries(self, now: float) -> None:
        """Under the lock: remember the QM questions other hosts asked (RFC 6762 §7.3), unless
        their known answers hold a record we would not list ourselves (then the responder may
        stay silent about it, and our own question is still needed); and watch for records
        they asked for in vain (§10.5, _note_unanswered)."""
        queries, self._peer_queries = self._peer_queries, []
        # Only what some call is asking matters to §7.3, and a query may hold hundreds of
        # questions and known answers: the answers are grouped by key once per query, so the
        # work is linear in the query (not questions x answers).
        wanted: set[tuple[str, int]] = set()
        for task in self._tasks:
            wanted.update(task.asks)
        asked = self._peer_asked
        if len(asked) > 1024:
            for key in [k for k, t in asked.items() if now - t >= SUPPRESS]:
                del asked[key]
        gone: dict[Any, float] = {}
        for message, transport, interface, at in queries:
            by_key: dict[tuple[str, int, int], list[Record]] = {}
            for record in message.answers:
                by_key.setdefault(record.key, []).append(record)
            # (A query with TC set, whose known answers go on in the next packets, is not
            # queued: only flags 0 are.)
            self._note_unanswered(message, transport, interface, at, now, by_key, gone)
            if not wanted or now - at >= SUPPRESS:
                continue  # or asked long ago (it waited in the socket): it says nothing of now
            for question in message.questions:
                if question.unicast_response or question.type == RecordType.ANY:
                    continue
                qkey = question.key
                if (qkey[0], qkey[1]) not in wanted:
                    continue
                theirs = by_key.get(qkey)
                if theirs:
                    # What our packet on that link would list (§7.3): that link's records.
                    link = self._packet_link(transport, interface)
                    known = self._cache.known_answers(*qkey[:2], now, link)
                    ours = {e.record for e in known}
                    if not all(r in ours for r in theirs):
                        continue
                key = (qkey, transport, interface)
                asked[key] = max(asked.get(key, -math.inf), min(at, now))
                self._stats["peer_questions_seen"] += 1
        if gone:
            shortened = 0
            for key, until in gone.items():
                shortened += self._cache.reconfirm(now, max(0.0, until - now), keys=(key,))
            if shortened:
                self._stats["flushed_unanswered"] += shortened
                log.debug("%d record(s) other hosts asked for in vain will go (§10.5)", shortened)
                self._changed(frozenset())

    def _note_unanswered(
        self,
        message: Message,
        transport: Transport,
        interface: int,
        at: float,
        now: float,
        by_key: dict[tuple[str, int, int], list[Record]],
        gone: dict[Any, float],
    ) -> None:
        """RFC 6762 §10.5: a peer's QM question that a cached record of ours answers, on the
        link it was asked on, and that does not list it as a known answer, should bring that
        record by multicast. Counted per address family (socket), once per POOF_BURST (a
        peer on two paths asks twice at once): when every socket of ours on that link has
        seen POOF_QUERIES such questions with no reception of the record since the first, the
        record is noted in ``gone`` to expire POOF_WINDOW after the first (a reception before
        then restores its TTL, as any refresh does). Over one family alone proves nothing: a
        responder may listen on one (an IPv6-only device among IPv4-only askers such as
        python-zeroconf's default) and its records were taken away and found again, over
        and over. A device that vanished without a goodbye left its records for up to their
        TTL (75 minutes for a PTR record) while other hosts asked for them."""
        cache = self._cache
        tracked = self._unanswered
        if len(tracked) > 4096:
            tracked.clear()  # bounded against a flood of queries; a few misses cost nothing
        for question in message.questions:
            if question.unicast_response or question.type == RecordType.ANY:
                continue  # a QU answer may go to the asker alone
            size = cache.size(question.name, question.type, question.rclass)
            if not size or size > POOF_MAX_RRSET:
                continue
            entries = cache.entries(question.name, question.type, now, question.rclass)
            # Their known answers, compared without case in names of the data too: a
            # responder seeing its record listed so stays silent (Avahi, mDNSResponder and
            # python-zeroconf compare names so), and that silence is no failure.
            theirs = {_loose(r) for r in by_key.get(question.key, ())}
            for entry in entries:
                if (
                    entry.interface != interface
                    or entry.goodbye
                    or entry.received >= at - POOF_QUIET
                    or (theirs and _loose(entry.record) in theirs)
                ):
                    continue
                count, first, last = tracked.get((entry.key, transport), (0, at, -math.inf))
                if entry.received > first or at - first > POOF_WINDOW:
                    # Heard since (that one was answered), or too long ago to be the same
                    # failure: the RFC's queries fall within ten seconds.
                    count, first, last = 0, at, -math.inf
                if at - last < POOF_BURST:
                    continue  # the same query over two paths, or a burst: one
                count += 1
                tracked[entry.key, transport] = (count, first, at)
                if count < POOF_QUERIES:
                    continue
                firsts = []
                for other in self._sockets_on(interface):
                    if other is transport:
                        continue
                    seen = tracked.get((entry.key, other))
                    if (
                        seen is None
                        or seen[0] < POOF_QUERIES
                        or entry.received > seen[1]
                        or at - seen[1] > POOF_WINDOW
                    ):
                        break
                    firsts.append(seen[1])
                else:
                    until = max(min([first, *firsts]) + POOF_WINDOW, at + POOF_LATE)
                    gone[entry.key] = min(until, gone.get(entry.key, until))

    def _asked_on(self, qkey: tuple[str, int, int], links: Iterable[int], now: float) -> bool:
        """Did other hosts ask this, within SUPPRESS, on each of ``links`` (none: no), over
        each address family we send there? A responder may answer over the family it was
        asked alone, and be reachable over one (as mDNSResponder judges it)."""
        asked = self._peer_asked
        seen = False
        for link in links:
            for transport in self._sockets_on(link):
                last = asked.get((qkey, transport, link))
                if last is None or now - last >= SUPPRESS:
                    return False
                seen = True
        return seen

    def _sockets_on(self, link: int) -> Iterator[Transport]:
        """Our sockets that send and listen on ``link``: one per address family, mostly."""
        for transport in self._transports:
            if any(i.index == link for i in transport.interfaces):
                yield transport

    def _apply(self, batch: list[Received]) -> None:
        self._stats["accepted"] += len(batch)
        if log.isEnabledFor(logging.DEBUG):  # the CLI's -vv: what was heard, per response
            for item in batch:
                log.debug("heard on interface %s: %s", item[1], _summary(item[0]))
        # The question section of a response is ignored; authority records are for probing.
        cache = self._cache
        now = self._clock()
        fresh: list[Any] = batch
        if self._late_seen:
            # Those that waited in the socket as of their arrival, in order (several sockets'
            # backlogs interleave), those within LATE_GROUP of each other as of the first of
            # them (one at a time, a receiver that fell behind in a flood fell further), then
            # the fresh ones as of now.
            self._late_seen = False
            late = sorted((item for item in batch if len(item) == 3), key=_arrival)
            self._stats["filed_late"] += len(late)
            group: list[tuple[Message, int]] = []
            group_at = -math.inf
            for message, interface, at in late:
                if at - group_at > LATE_GROUP:
                    if group:
                        cache.add_received(group, group_at)
                        group = []
                    group_at = self._filed_at = min(max(at, self._filed_at), now)
                group.append((message, interface))
            if group:
                cache.add_received(group, group_at)
            if now < self._reconfirm_by:
                # What arrived before a wake seen in the last WAKE_RECONFIRM is reconfirmed
                # with the rest, by its arrival: it is filed no earlier than the last filing,
                # which may be after the wake (another socket's fresh packets).
                before = [(m, i) for m, i, at in late if at < self._woke_at]
                if before:
                    shortened = cache.reconfirm(now, self._reconfirm_by - now, batch=before)
                    self._stats["reconfirmed_after_sleep"] += shortened
            fresh = [item for item in batch if len(item) == 2]
        if fresh:
            # Not after late ones alone: the next pass may read more of the same backlog, and
            # filed "no earlier than now" it would be news again.
            self._filed_at = now
        cache.add_received(fresh, now)
        self._changed(
            {
                name_key(record.name)
                for item in batch
                for record in item[0].answers + item[0].additionals
            }
            if any(task.follows_changes for task in self._tasks)
            else _NO_NAMES  # nothing allocated per batch when nobody follows
        )

    def _changed(self, names: AbstractSet[str]) -> None:
        """Under the lock, after the cache was filed or expired: tell the tasks that follow
        changes (browse, watch) the names whose records that filed or removed, with what the
        cache reports itself: names it evicted, trimmed or flushed by a held-back flush record
        (under a flood it evicts on every batch, and "anything may have changed" made a watch
        of 500 instances read them all on each wake-up: 16 ms instead of 0.25), and which PTR
        records of wanted names changed. Both reports are taken every time, followed or not."""
        reported = self._cache.take_changed()
        if reported:
            names = names | reported
        keys = self._cache.take_changed_keys()
        if names or keys:
            for task in self._tasks:
                if task.follows_changes:
                    task.changed(names, keys)

    def _send(self, task: Task, now: float, deadline: float) -> float:
        """Send what the task needs now; returns when its next retransmission is due."""
        asks = task.asks
        if task.epoch != self._epoch:
            # The network may be another one: ask again as a series starts and double from
            # there, instead of at the next doubling, up to an hour away.
            task.epoch = self._epoch
            restart = _series_start(now, deadline)
            for ask in asks.values():
                ask.next_at = min(ask.next_at, restart)
                ask.interval = FIRST_INTERVAL
        start = now
        if task.continuous and not task.started_asking:
            task.started_asking = True
            start = _series_start(now, deadline)
        wanted: set[tuple[str, int]] = set()
        for question in task.needs(self._cache, now):
            key = (name_key(question.name), int(question.type))
            wanted.add(key)
            if key not in asks:
                asks[key] = Ask(question, start)
                self._want(question.name)
        for key in [k for k in asks if k not in wanted]:
            self._unwant(asks.pop(key).question.name)
        due: list[Question] = []
        next_at = math.inf
        for ask in asks.values():
            if ask.next_at <= now:
                question = ask.question
                if ask.sent == 0 and self.unicast_response and self._port_to_ourselves(now):
                    question = Question(question.name, question.type, unicast_response=True)
                due.append(question)
                ask.count_sent(now, task.max_interval)
            next_at = min(next_at, ask.next_at)
        # Refreshes go in rounds REFRESH_GAP apart: a round also asks what comes due within
        # the gap; anything due before the next round may go waits in ``held`` (rare: only a
        # refresh point that came with no round due, e.g. of records read in the meantime).
        round_due = now >= task.refresh_at
        windows = task.refreshes(self._cache, now, REFRESH_GAP if round_due else 0.0)
        if windows or task.held:
            held = task.held
            for question, window in windows.items():
                held[question] = min(window, held.get(question, window))
            if round_due:
                windows, task.held = held, {}
                task.refresh_at = now + REFRESH_GAP
                due.extend(windows)
            else:
                windows = {}
                next_at = min(next_at, task.refresh_at)
        if due:
            self._transmit(due, now, windows, task)
        return next_at

    def _port_to_ourselves(self, now: float) -> bool:
        """Whether no other socket (an mDNS daemon beside us) shares our port 5353, looked at
        at most every SHARED_RECHECK: unicast to a shared port reaches one of the sockets
        only, so a QU question's answers could go to the daemon, and RFC 6762 §15.1 says not
        to ask for them then."""
        if now >= self._shared_checked + SHARED_RECHECK:
            self._shared_checked = now
            shared = any(getattr(t, "shares_port", lambda: None)() for t in self._transports)
            if shared and not self._port_shared:
                log.info("another program shares port 5353: no unicast replies asked for")
            self._port_shared = shared
        return not self._port_shared

    def _alone(self, transport: Transport) -> bool:
        """Whether queries go to each of ``transport``'s links alone (see _transmit)."""
        return (
            not self.one_shot
            and self._per_link.get(transport, False)
            and bool(transport.interfaces)
        )

    def _packet_link(self, transport: Transport, interface: int | None) -> int | None:
        """The link whose known answers our packet to ``interface`` through ``transport``
        lists: that one when the packet goes there alone or the transport has no other;
        None (any link's) when one packet goes to several."""
        if self._alone(transport):
            return interface
        links = transport.interfaces
        return links[0].index if len(links) == 1 else None

    def _known_answers(self, chunk: list[Question], now: float, link: int | None) -> list[Record]:
        """What the cache holds for a packet's questions (§7.1), as heard on ``link`` (None:
        on any), at most MAX_KNOWN_ANSWERS."""
        if self.one_shot:
            return []
        entries: list[CacheEntry] = []
        for question in chunk:
            if question.type != RecordType.ANY:
                entries.extend(self._cache.known_answers(question.name, question.type, now, link))
        if len(entries) > MAX_KNOWN_ANSWERS:
            # Whatever the cache holds (an on-link host can plant thousands of records), our
            # queries stay a few packets: keep the longest-lived known answers.
            self._stats["known_answers_capped"] += len(entries) - MAX_KNOWN_ANSWERS
            entries.sort(key=lambda e: e.expires, reverse=True)
            del entries[MAX_KNOWN_ANSWERS:]
        # Remaining TTL to the nearest second: truncated, a record of TTL 1 with 0.6 s left
        # went out with TTL 0, and one of TTL 3 with 1.6 s left as 1, less than the half a
        # responder wants to see before it stays silent (§7.1).
        return [e.record.with_ttl(int(e.expires - now + 0.5)) for e in entries]

    def _transmit(
        self,
        questions: list[Question],
        now: float,
        windows: dict[Question, float] | None = None,
        sender: Task | None = None,
    ) -> None:
        """Send questions, except those sent within their suppression window (SUPPRESS, or
        the shorter one in ``windows`` for a refresh of a short-lived record). What goes out,
        or counts as sent because a peer asked it, counts as sent for every running task but
        ``sender`` (whose due questions these are: their schedule moved on already)."""
        if self._closed:
            return
        recent = self._recent
        if len(recent) > 512:
            for key in [k for k, t in recent.items() if now - t >= SUPPRESS]:
                del recent[key]
        # Where the packets go: to each of a transport's links alone (`interface=`), for the
        # known answers are those heard on the link a packet goes out on (§7.1, §14). Listed
        # from every link, a copy heard on link B told link A's responder we had its record:
        # it stayed silent, and link A's copy aged out or, when that packet had been lost, was
        # never learned (a resolve missing a TXT record asked for it in vain). One-shot
        # queries carry no known answers: one send per transport, as from a transport whose
        # send() takes no interface (then with the known answers of any of its links).
        targets: list[tuple[Transport, int, int | None, bool]] = []  # ..., link, alone
        for transport in self._transports:
            cap = int(
                getattr(
                    transport,
                    "max_payload",
                    PAYLOAD_V4 if transport.family == socket.AF_INET else PAYLOAD_V6,
                )
            )
            if self._alone(transport):
                targets.extend((transport, cap, i.index, True) for i in transport.interfaces)
            else:
                targets.append((transport, cap, self._packet_link(transport, None), False))
        fresh: list[Question] = []
        asked: list[tuple[str, int]] = []
        seen: set[tuple[tuple[str, int, int], bool]] = set()
        # §7.3, per link: a question another host asked on a link is not sent there, and one
        # asked on every link we would send it on is not sent at all (each counted as
        # "questions_suppressed_by_peers", once per link it stayed off).
        held_back: dict[int, set[Question]] = {}  # target's position -> questions not sent
        for question in questions:
            key = (question.key, question.unicast_response)
            last = recent.get(key)
            window = SUPPRESS if not windows else windows.get(question, SUPPRESS)
            if key in seen or (last is not None and now - last < window):
                self._stats["questions_suppressed"] += 1
                continue
            seen.add(key)
            recent[key] = now
            asked.append((key[0][0], key[0][1]))
            if self._peer_asked and not question.unicast_response:
                off = [
                    n
                    for n, (transport, _, link, alone) in enumerate(targets)
                    if self._asked_on(
                        question.key,
                        (link,) if alone and link is not None else _indexes(transport),
                        now,
                    )
                ]
                if off:
                    links: set[int | None] = set()
                    for n in off:
                        transport, _, link, alone = targets[n]
                        links.update((link,) if alone else _indexes(transport) or (link,))
                    self._stats["questions_suppressed_by_peers"] += len(links)
                    if len(off) == len(targets):
                        continue
                    for n in off:
                        held_back.setdefault(n, set()).add(question)
            fresh.append(question)
        if asked and self._tasks:
            # §5.2: the gaps between queries of one question on the link at least double. Each
            # call keeps its own schedule; without this, two watches of one type started 1.5 s
            # apart each doubled apart from the other and the link saw the question twice as
            # often. Treated as sent: no earlier than a gap from now, and the gap doubles
            # (never restarted; a new call's first query is only held back by SUPPRESS).
            for task in self._tasks:
                if task is sender or not task.asks:
                    continue
                for qkey in asked:
                    ask = task.asks.get(qkey)
                    if ask is not None:
                        ask.count_sent(now, task.max_interval)
        if not fresh:
            return
        qid = self._new_id() if self.one_shot else 0

        # Each target's questions (those not held back there) in groups; each link's known
        # answers for each group, once (IPv4 and IPv6 on one link share them), and the packets
        # built once per cap (PAYLOAD_V4 / PAYLOAD_V6, or a transport's own max_payload), link
        # and questions. Questions are counted once; known answers once per link they went to.
        budget = min(QUESTION_BUDGET, *(t[1] for t in targets))
        plan: list[tuple[int, int | None, tuple[Question, ...]]] = [
            (
                cap,
                link,
                tuple(fresh)
                if n not in held_back
                else tuple(q for q in fresh if q not in held_back[n]),
            )
            for n, (_, cap, link, _) in enumerate(targets)
        ]
        known_for: dict[tuple[int | None, tuple[Question, ...]], list[Record]] = {}
        built_for: dict[tuple[int, int | None, tuple[Question, ...]], list[bytes]] = {}
        went: set[Question] = set()
        unsendable: set[Question] = set()
        first = min(plan, key=lambda p: p[0])
        for cap, link, mine in sorted(set(plan), key=lambda p: p != first):
            packets = built_for[cap, link, mine] = []
            for chunk in _chunks(list(mine), budget):
                group = (link, tuple(chunk))
                count_known = group not in known_for
                if count_known:
                    known_for[group] = self._known_answers(chunk, now, link)
                known = known_for[group]
                try:
                    built = build_queries(chunk, known, id=qid, max_size=cap)
                except ValueError as exc:  # a name too long to ask about; skip, never crash
                    if not unsendable.issuperset(chunk):
                        unsendable.update(chunk)
                        log.debug("cannot build a query for %s: %s", chunk, exc)
                    continue
                if count_known:
                    # build_queries leaves out a known answer too big for any packet: count
                    # what went.
                    sent = sum(int.from_bytes(packet[6:8], "big") for packet in built)
                    if sent:
                        self._stats["known_answers_sent"] += sent
                    if sent < len(known):
                        self._stats["known_answers_too_big"] += len(known) - sent
                went.update(chunk)
                packets.extend(built)
        if went:
            self._stats["questions_sent"] += len(went)
        if unsendable - went:
            self._stats["unsendable_questions"] += len(unsendable - went)
        own = self._own_queries
        for packets in built_for.values():
            for packet in packets:
                own.pop(packet, None)  # to the end: the newest is kept longest
                own[packet] = None
        keep = max(MAX_OWN_QUERIES, 2 * sum(map(len, built_for.values())))  # many links
        while len(own) > keep:
            del own[next(iter(own))]
        # A transport whose sends fail (link down, no route) is still tried with every query:
        # the link may be back, and a skipped query is an answer missed until the next one,
        # up to an hour later for a watch. A query no link of a transport took whole is a
        # send error (each link's failure the transport counts: "interface_send_errors").
        took: dict[Transport, bool] = {}
        previous: Transport | None = None
        for (transport, _, link, alone), step in zip(targets, plan, strict=True):
            packets = built_for[step]
            if not packets:
                continue  # held back on this link (§7.3), or nothing could be built
            if qid and previous is not None and transport is not previous:
                # One-shot: an ID per socket. The same bytes over IPv4 and IPv6 looked like
                # one packet repeated to python-zeroconf, which answers a packet once a second:
                # it answered over one family only.
                other = self._new_id().to_bytes(2, "big")
                packets = [other + packet[2:] for packet in packets]
            previous = transport
            took.setdefault(transport, False)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "asking %s on %s (%d packet(s), %d known answer(s))",
                    ", ".join(f"{q.name} {q.type.name}" for q in step[2]),
                    f"interface {link}" if alone else repr(transport),
                    len(packets),
                    sum(int.from_bytes(p[6:8], "big") for p in packets),
                )
            for packet in packets:
                try:
                    if alone:
                        transport.send(packet, interface=link)
                    else:
                        transport.send(packet)
                except (NetworkError, OSError) as exc:
                    log.debug("query not sent on %r (link %s): %s", transport, link, exc)
                    break
                self._stats["packets_sent"] += 1
            else:
                took[transport] = True
        failed = sum(not ok for ok in took.values())
        if failed:
            self._stats["send_errors"] += failed
