"""UDP transports: move mDNS datagrams between the network and pooled buffers.

Goals:
- Run beside Avahi or mDNSResponder: port 5353 with SO_REUSEADDR + SO_REUSEPORT, the group
  (224.0.0.251 / ff02::fb) joined on every selected interface; or an ephemeral port for one-shot
  queries (RFC 6762 §5.1), which then hears only unicast replies.
- Say where each datagram came from: source (address, port), arrival interface index and
  whether it was sent to the mDNS group (RFC 6762 §11: then it is from the link, whatever its
  source), from IP_PKTINFO / IPV6_PKTINFO ancillary data read by ``recvmsg_into``.
- Never hand out half a packet: a datagram larger than the buffer (MSG_TRUNC) is dropped and
  counted.
- Block with a deadline, without busy-waiting or threads: the socket stays non-blocking, a read
  is tried first and ``poll`` waits only when nothing is queued (EINTR is retried by CPython,
  PEP 475). A timeout returns None.
- An error on one interface (join, send) is logged and skipped; only "nothing usable" raises
  NetworkError (with the errno of the failure). Receive errors that describe the network
  rather than the socket (ENOBUFS, an ICMP error from an earlier send, ...) are counted and
  waited through; others raise NetworkError. Only the selected interfaces are heard
  (IP_MULTICAST_ALL off, PKTINFO checked).
- A send the network drops is a failed send, not a silent success: IP_RECVERR / IPV6_RECVERR
  (Linux) make sendto report ENOBUFS from a full or dropping device queue, which Linux otherwise
  only counts (SndbufErrors). Their price: ICMP errors about earlier sends are queued on the
  socket, charged to its receive buffer, and keep poll() reporting POLLERR until read. They are
  drained (bounded) whenever a wait sees POLLERR or a read finds the socket empty, and counted
  (``drained_errors``); a send that failed on such a stale report is retried once.
- Ride out bursts: the socket asks for a 1 MiB receive buffer (``receive_buffer``; Linux
  doubles the request and caps it at net.core.rmem_max) instead of the 208 KiB default. In a
  full-rate flood of the mDNS group the default overflows whenever the process is off the CPU
  for a millisecond or two, and the answer a call waits for is dropped with the junk; the buffer
  is a limit, so it costs memory only while datagrams wait (adr/004, "Receive buffer").
- The transport never parses DNS: ``receive_with`` lends the pooled view to a handler (the
  querier passes the parser), ``receive_batch`` does so for every datagram already queued with
  one pooled buffer, ``receive`` returns an owned copy.

Costs per 306-byte datagram (CPython 3.11, bench/memray_receive.py, adr/001 and adr/002):
``receive`` allocates 935 B in 11 allocations, of which 339 B is the copy it returns and 323 B
in 8 allocations are ``recvmsg_into``'s own objects; ``receive_with`` adds one 184-byte view to
what the handler allocates. Nothing buffer-sized. CPU: ~5.7 µs a packet for ``receive`` over
lo, about half of it the system call.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import math
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, Protocol, TypeVar

from mdnsq.errors import InvalidArgument, NetworkError
from mdnsq.interfaces import (
    Interface,
    InterfaceSpec,
    check_spec,
    list_interfaces,
    select_interfaces,
)
from mdnsq.locks import OwnedLock
from mdnsq.pool import BufferPool, _let_go

__all__ = [
    "DEFAULT_RECEIVE_BUFFER",
    "MDNS_GROUP_V4",
    "MDNS_GROUP_V6",
    "MDNS_PORT",
    "Datagram",
    "Transport",
    "TransportStats",
    "UDPv4Transport",
    "UDPv6Transport",
]

log = logging.getLogger(__name__)

MDNS_PORT = 5353
MDNS_GROUP_V4 = "224.0.0.251"
MDNS_GROUP_V6 = "ff02::fb"
_GROUP_V4 = socket.inet_aton(MDNS_GROUP_V4)
_GROUP_V6 = socket.inet_pton(socket.AF_INET6, MDNS_GROUP_V6)
DEFAULT_RECEIVE_BUFFER = 1 << 20  # bytes asked for with SO_RCVBUF (see the module docstring)
_TTL = 255  # RFC 6762 §11: receivers may check it, so always send with the maximum

T = TypeVar("T")
# (view, source, interface index, sent to the mDNS group, arrival time) -> what receive_with
# returns. The arrival is the kernel's, in time.time() seconds (0.0 where the platform gives
# none): a datagram may wait in the socket for as long as nobody receives.
Handler = Callable[[memoryview, tuple[str, int], int, bool, float], T]

_IP_PKTINFO: int = getattr(socket, "IP_PKTINFO", 8)
_IPV6_RECVPKTINFO: int = getattr(socket, "IPV6_RECVPKTINFO", 49)
_IPV6_PKTINFO: int = getattr(socket, "IPV6_PKTINFO", 50)
_SO_REUSEPORT: int | None = getattr(socket, "SO_REUSEPORT", None)
_LINUX = sys.platform.startswith("linux")
# linux/in.h and linux/in6.h values; Python 3.11's socket module does not export them.
_IP_MULTICAST_ALL: int | None = 49 if _LINUX else None
_IPV6_MULTICAST_ALL: int | None = 29 if _LINUX else None
_IP_RECVERR: int | None = getattr(socket, "IP_RECVERR", 11) if _LINUX else None
_IPV6_RECVERR: int | None = getattr(socket, "IPV6_RECVERR", 25) if _LINUX else None
# Arrival times. Between two calls nobody reads the socket, and what queued meanwhile (an hour
# of a link's traffic fits in the receive buffer) must be filed as of when it came, not as news
# (ADR 001). SIOCGSTAMPNS (Linux) gives the kernel's arrival time of the datagram just read; it
# is asked only while the socket may hold old datagrams (not read dry for STAMP_AFTER), so the
# hot path of a socket read as datagrams come pays nothing (SO_TIMESTAMPNS would put a control
# message on every one: +200 B and 4 allocations a datagram).
_SIOCGSTAMPNS = 0x8907  # linux/sockios.h
_TIMESPEC = struct.Struct("@ll")  # the ioctl's old timespec: { long tv_sec; long tv_nsec; }
STAMP_AFTER = 1.0
_MSG_ERRQUEUE = int(getattr(socket, "MSG_ERRQUEUE", 0x2000))
_MAX_DRAIN = 64  # queued errors read per drain; a longer queue keeps POLLERR up for the next
# struct sock_extended_err (16 bytes) + the offender's sockaddr_in6, plus the PKTINFO that
# also comes with an ICMP report: room to read the errno for the debug log.
_ERR_ANCSIZE = socket.CMSG_SPACE(16 + 28) + socket.CMSG_SPACE(20)
_POLLERR = select.POLLERR
_RECVERRS = frozenset(o for o in (_IP_RECVERR, _IPV6_RECVERR) if o is not None)  # cmsg types
_EE_ERRNO = struct.Struct("@I")  # struct sock_extended_err { __u32 ee_errno; ... }
_IFINDEX_V4 = struct.Struct("@i")  # struct in_pktinfo { int ipi_ifindex; ... }
_IFINDEX_V6 = struct.Struct("@16xI")  # struct in6_pktinfo { in6_addr; unsigned ipi6_ifindex; }
# Where the header's destination sits in that data: in_pktinfo's ipi_addr follows the index
# and ipi_spec_dst; in6_pktinfo's ipi6_addr comes first.
_DEST_AT_V4, _DEST_AT_V6 = 8, 0
_monotonic = time.monotonic
# recvmsg errors that describe the network or an earlier send, not this socket (see _recv_into).
_TRANSIENT_ERRORS = frozenset(
    {
        errno.ENOBUFS,
        errno.ENOMEM,
        errno.ECONNREFUSED,
        errno.ENETDOWN,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ETIMEDOUT,
    }
)
_MAX_TRANSIENT_IN_A_ROW = 64
_MAX_LATE_READS = 64  # reads past a deadline while datagrams are queued (see _recv_into)
_MAX_WAIT = 86_400.0  # seconds of one poll(), well under its 2^31 ms limit (see _wait)
_new_tuple = tuple.__new__
_unpack_timespec = _TIMESPEC.unpack_from
_time = time.time
_MSG_TRUNC = int(socket.MSG_TRUNC)  # a plain int: `flags & IntFlag` builds an enum per call


def _only_joined_groups(sock: socket.socket, level: int, option: int | None) -> None:
    """Linux delivers a group joined by ANY socket on ANY interface to every socket bound to
    the port (IP_MULTICAST_ALL defaults to 1), so Avahi's memberships would leak packets
    from unselected interfaces into this socket. Turn that off where the kernel allows."""
    if option is None:
        return
    try:
        sock.setsockopt(level, option, 0)
    except OSError as exc:  # kernels before 4.20 lack the IPv6 one
        log.debug("cannot restrict multicast to joined groups: %s", exc)


def _devices_in_group(family: int, group: str) -> set[int] | None:
    """Linux: the indexes of the interfaces whose device is in ``group`` now, from
    /proc/net/igmp or /proc/net/igmp6 (this network namespace's); None if unreadable. A
    device unregistered and made again under its index (a link recreated, moved to another
    namespace and back), or whose IPv6 was torn down (an MTU below 1280 for a moment), is out
    of the group while the socket's own list still holds the membership: a join then fails
    with EADDRINUSE, and only this tells the two apart."""
    try:
        if family == socket.AF_INET:
            with open("/proc/net/igmp", encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
            # The group as the kernel prints its __be32: %08X of the number in host order.
            wanted = f"{struct.unpack('=I', socket.inet_aton(group))[0]:08X}"
            found: set[int] = set()
            index = -1
            for line in lines:
                fields = line.split()
                if not fields:
                    continue
                if not line[0].isspace():
                    index = int(fields[0])  # a device: "Idx Device : Count Querier"
                elif fields[0].upper() == wanted:
                    found.add(index)
            return found
        with open("/proc/net/igmp6", encoding="ascii") as f:
            wanted = socket.inet_pton(socket.AF_INET6, group).hex()
            return {
                int(fields[0])
                for fields in (line.split() for line in f)
                if len(fields) > 2 and fields[2].lower() == wanted
            }
    except (OSError, ValueError):
        return None


def _stamp_arrivals(sock: socket.socket) -> bool:
    """Have the kernel note each datagram's arrival (the first SIOCGSTAMPNS turns that on, and
    says ENOENT: nothing read yet); whether the platform gives arrival times."""
    if not _LINUX:
        return False
    try:
        fcntl.ioctl(sock.fileno(), _SIOCGSTAMPNS, bytes(_TIMESPEC.size))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            log.debug("cannot read arrival times: %s", exc)
            return False
    return True


def _report_errors(sock: socket.socket, level: int, option: int | None) -> bool:
    """Ask Linux to report a send the device queue dropped (ENOBUFS) instead of counting
    it and returning success. True when the option is on: errors then also queue up."""
    if option is None:
        return False
    try:
        sock.setsockopt(level, option, 1)
    except OSError as exc:
        log.debug("cannot turn on error reports: %s", exc)
        return False
    return True


class Datagram(NamedTuple):
    """One received datagram, owned by the caller."""

    data: bytes
    source: tuple[str, int]
    interface: int
    # Sent to 224.0.0.251 / ff02::fb rather than to one of our addresses; False when the
    # platform did not say.
    to_group: bool = False
    # When the kernel received it, in time.time() seconds; 0.0 when the platform did not say.
    arrived: float = 0.0


class TransportStats(NamedTuple):
    """Counters since the transport was opened (a snapshot)."""

    received: int
    dropped_oversize: int
    dropped_interface: int
    receive_errors: int
    sent: int
    send_errors: int
    join_errors: int
    drained_errors: int = 0  # ICMP (and other) reports read off the socket's error queue


class Transport(Protocol):
    """What the querier needs from a transport (a fake one implements this in tests)."""

    @property
    def family(self) -> int: ...  # socket.AF_INET or AF_INET6 (a plain attribute will do)

    interfaces: list[Interface]

    def send(
        self, data: bytes, dest: tuple[str, int] | None = None, interface: int | None = None
    ) -> None:
        """Send to ``dest``, or to the group on every interface or on ``interface`` alone
        (each link's queries carry that link's known answers). NetworkError when nothing
        was sent."""

    def receive(self, timeout: float | None) -> Datagram | None:
        """One datagram as owned bytes, or None at the timeout."""

    def receive_with(self, handler: Handler[T], timeout: float | None) -> T | None:
        """One datagram handed to ``handler`` as a view of a pooled buffer, valid only during
        the call (the zero-copy path); what the handler returns, or None at the timeout."""

    def receive_batch(self, handler: Handler[T], limit: int, out: list[T]) -> None:
        """Up to ``limit`` datagrams already queued, without waiting, each through
        ``handler``, what it returns appended to ``out``."""

    def fileno(self) -> int:
        """The socket's descriptor, for select()."""

    def close(self) -> None:
        """Leave the group and close the socket; idempotent."""

    def stats(self) -> TransportStats:
        """What it dropped before any parsing, and the errors it waited through."""

    def __enter__(self) -> Transport: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _UDPTransport:
    """Shared machinery of the IPv4 and IPv6 transports."""

    family: int = socket.AF_INET
    group: str = MDNS_GROUP_V4
    _ancsize: int = 0
    # Where the arrival interface index is in the ancillary data (set per family).
    _pktinfo_level: int = 0
    _pktinfo_type: int = 0
    _unpack_index: Callable[[bytes], tuple[int]] = _IFINDEX_V4.unpack_from
    _dest_group: bytes = _GROUP_V4  # the group, packed, and its offset in the PKTINFO data
    _dest_at: int = _DEST_AT_V4
    _scoped: bool = False  # IPv6: sources carry a "%scope" to strip
    # Group membership: the option level, and the options that join and leave (set per family).
    _group_level: int = 0
    _join_option: int = 0
    _leave_option: int = 0

    def __init__(
        self,
        interfaces: InterfaceSpec = None,
        port: int = MDNS_PORT,
        pool: BufferPool | None = None,
        receive_buffer: int | None = DEFAULT_RECEIVE_BUFFER,
    ) -> None:
        """``receive_buffer``: bytes of SO_RCVBUF to ask for (never less than the system
        default; None leaves the default)."""
        if not 0 <= port <= 65535:
            raise InvalidArgument(f"port {port} is out of range")
        if receive_buffer is not None and receive_buffer <= 0:
            raise InvalidArgument(f"receive_buffer must be positive, not {receive_buffer}")
        spec = check_spec(interfaces)
        selected = select_interfaces(spec, self.family)
        self._spec = spec  # the selection, made again by follow_interfaces()
        self.port = port
        self._pool = pool if pool is not None else BufferPool()
        self._received_blocks = 0  # received = 256 * blocks + small, see BufferPool
        self._received_small = 0
        self._dropped_oversize = 0
        self._dropped_interface = 0
        self._receive_errors = 0
        self._sent = 0
        self._send_errors = 0
        self._join_errors = 0
        self._drained_errors = 0
        self._recverr = False  # error reports on (set by _configure where the platform has them)
        self._closed = False
        # Threads inside poll() now, under _wait_lock with _closed. While any is, close() leaves
        # _wake_r open and the last one out closes it: a poll() entered just as close() ran
        # then still finds it readable and returns. Closed under it, its number could be reused
        # by an unrelated descriptor before that poll() began, and a receive without a timeout
        # would block on a stranger's file for good.
        self._wait_lock = OwnedLock()  # reentrant: close() from a signal handler on a waiter
        self._waiters = 0
        self._mcast_if: int | None = None
        # Arrival times (see STAMP_AFTER): when the socket was last read dry, whether the
        # datagrams being read may be old, and the buffer SIOCGSTAMPNS writes into.
        self._stamps = False
        self._read_dry = -math.inf
        self._stamping = False
        self._stamp_buf = bytearray(_TIMESPEC.size)
        # IP_MULTICAST_IF belongs to the socket: a send sets it and sends under this lock, or
        # another thread's send could move it in between (a datagram out twice on one link and
        # never on the other). Reentrant for a signal handler that sends.
        self._send_lock = OwnedLock()
        try:
            self._sock = socket.socket(self.family, socket.SOCK_DGRAM)
            self._configure(self._sock)
            self._stamps = _stamp_arrivals(self._sock)
            if receive_buffer is not None:
                self._grow_receive_buffer(receive_buffer)
            self._sock.bind(self._bind_address(port))
            self.interfaces, failed = self._join_all(selected) if port else (selected, None)
            self._indexes = frozenset(i.index for i in self.interfaces)
            # index -> (up, addresses) as last listed, for follow_interfaces to tell a change
            self._seen = {i.index: (i.up, i.addresses) for i in self.interfaces}
            # Without ancillary data (other platforms) only a single interface is certain.
            self._default_index = self.interfaces[0].index if len(self.interfaces) == 1 else 0
            if not self.interfaces:
                if failed is None:
                    raise NetworkError("could not join the mDNS group on any selected interface")
                raise NetworkError(
                    failed.errno,
                    "could not join the mDNS group on any selected interface: "
                    f"{failed.strerror or failed}",
                )
            self._sock.setblocking(False)
            self._pollers = threading.local()
            # close() writes here to wake every thread blocked in _wait on this transport
            # (closing a descriptor does not wake a poll() on it in another thread).
            # A socket pair rather than os.pipe(): sockets close themselves if a transport is
            # dropped without close(), raw descriptors would leak.
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_w.setblocking(False)
        except BaseException as exc:
            for opened in (getattr(self, name, None) for name in ("_sock", "_wake_r", "_wake_w")):
                if opened is not None:
                    opened.close()
            self._closed = True
            if isinstance(exc, OSError) and not isinstance(exc, NetworkError):
                raise NetworkError(exc.errno, f"cannot open mDNS socket: {exc.strerror}") from exc
            raise

    # -- per-family hooks -----------------------------------------------------------------------

    def _configure(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def _bind_address(self, port: int) -> tuple[str, int]:
        raise NotImplementedError

    def _membership(self, interface: Interface) -> bytes:
        """The request that joins or leaves the group on ``interface``."""
        raise NotImplementedError

    def _join(self, interface: Interface) -> None:
        self._sock.setsockopt(self._group_level, self._join_option, self._membership(interface))

    def _leave(self, interface: Interface) -> None:
        self._sock.setsockopt(self._group_level, self._leave_option, self._membership(interface))

    def _set_multicast_if(self, interface: Interface) -> None:
        raise NotImplementedError

    def _unicast_dest(
        self, dest: tuple[str, int], interface: int | None
    ) -> tuple[str, int] | tuple[str, int, int, int]:
        return dest

    def _source(self, address: tuple[str, int]) -> tuple[str, int]:
        return address

    # -- setup ----------------------------------------------------------------------------------

    def _reuse(self, sock: socket.socket) -> None:
        if not self.port:
            # An ephemeral port (one-shot) is ours alone: with SO_REUSEADDR the kernel may hand
            # out a port another such socket holds, and the unicast replies to our questions
            # then go to one of the two (RFC 6762 §6.7: legacy replies come to our port).
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if _SO_REUSEPORT is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_REUSEPORT, 1)
            except OSError as exc:  # old kernels, some sandboxes
                log.debug("SO_REUSEPORT unavailable: %s", exc)

    def _grow_receive_buffer(self, size: int) -> None:
        sock = self._sock
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= size:
            return  # the system default is already larger: never shrink it
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        except OSError as exc:  # a sandbox may refuse; the default still works
            log.debug("cannot set a %d-byte receive buffer: %s", size, exc)

    def _join_all(self, selected: list[Interface]) -> tuple[list[Interface], OSError | None]:
        """The interfaces joined, and the last join error for the message if none was."""
        joined = []
        failed = None
        for interface in selected:
            try:
                self._join(interface)
            except OSError as exc:
                self._join_errors += 1
                # Without its traceback: the frames there hold self (and `failed`), a cycle
                # that would keep the socket open until a garbage collection.
                failed = exc.with_traceback(None)
                log.warning("cannot join %s on %s: %s", self.group, interface.name, exc)
            else:
                joined.append(interface)
        return joined, failed

    # -- public API -----------------------------------------------------------------------------

    def follow_interfaces(self, listed: list[Interface] | None = None) -> bool:
        """Make the constructor's selection again, with the interfaces as they are now: join
        the group on interfaces that qualify now, leave those gone or no longer wanted, and
        take their current addresses. Whether anything changed since the last look: the set
        of interfaces, one going down or up, or their addresses (the network may be another).

        An interface that is still there but down (a link flap, Wi-Fi associating again) is
        kept, as the kernel keeps its membership: leaving it would leave the Querier deaf
        there once it is up, until the next call. One that is gone is dropped, also when it
        was named: it is joined again once it is back. When nothing qualifies now, those
        still there are kept as they are and only the gone ones dropped, perhaps all: the
        transport then has no interface (a send raises NetworkError) until one qualifies.
        Safe while other threads receive and send: the socket stays, and the interface list
        is replaced, never edited in place. ``listed``: the interfaces as just listed, when
        the caller has them (one listing for several sockets).
        """
        if self._closed:
            raise NetworkError("transport is closed")
        if listed is None:
            listed = list_interfaces()
        try:
            selected: list[Interface] | None = select_interfaces(
                self._spec, self.family, listed, missing_ok=True
            )
        except NetworkError as exc:
            log.debug("%r: %s; keeping the interfaces still there", self, exc)
            selected = None
        present = {i.index: i for i in listed}
        fresh = {i.index: i for i in selected or ()}
        before = {i.index for i in self.interfaces}
        joined = [i for i in selected or () if i.index not in before]
        rejoined = False
        if self.port:
            joined = self._join_all(joined)[0]
            in_group = _devices_in_group(self.family, self.group) if _LINUX else None
            for interface in self.interfaces:
                current = fresh.get(interface.index)
                if (
                    in_group is None
                    or current is None
                    or not current.up
                    or interface.index in in_group
                ):
                    continue
                # Out of the group, with our membership still on the socket (see
                # _devices_in_group): deaf there for good unless joined again.
                with contextlib.suppress(OSError):
                    self._leave(interface)
                try:
                    self._join(current)
                except OSError as exc:
                    self._join_errors += 1
                    log.warning("cannot join %s on %s: %s", self.group, current.name, exc)
                else:
                    rejoined = True
                    log.info("%s on %s: joined again", self.group, current.name)
        kept = [
            fresh.get(i.index, i)  # with its current addresses; a held one as it was joined
            for i in self.interfaces
            if i.index in fresh
            or (
                i.index in present
                and (selected is None or (not present[i.index].up and not i.loopback))
            )
        ] + joined
        after = {i.index for i in kept}
        for interface in self.interfaces:
            if interface.index not in after and self.port:
                try:
                    self._leave(interface)
                except OSError as exc:  # gone with its interface (ENODEV): nothing to leave
                    log.debug("leaving %s on %s: %s", self.group, interface.name, exc)
        self.interfaces = kept
        self._indexes = frozenset(after)
        self._default_index = kept[0].index if len(kept) == 1 else 0
        self._mcast_if = None
        seen = {i.index: (present[i.index].up, present[i.index].addresses) for i in kept}
        changed = seen != self._seen or rejoined
        self._seen = seen
        if after != before:
            names = ", ".join(i.name for i in kept) or "no interface"
            log.info("%s on %s now", self.group, names)
        return changed

    def fileno(self) -> int:
        return self._sock.fileno()

    def shares_port(self) -> bool | None:
        """Linux: whether another socket of this network namespace and family is bound to our
        port (an mDNS daemon beside us); None when unknown (elsewhere, or an ephemeral port).
        Unicast to a shared port reaches one of the sockets only (RFC 6762 §15.1)."""
        if not _LINUX or self.port != MDNS_PORT or self._closed:
            return None
        try:
            mine = os.fstat(self._sock.fileno()).st_ino
            path = "/proc/net/udp" if self.family == socket.AF_INET else "/proc/net/udp6"
            with open(path, encoding="ascii") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    port = int(fields[1].rsplit(":", 1)[1], 16)
                    if port == MDNS_PORT and int(fields[9]) != mine:
                        return True
        except (OSError, ValueError, IndexError, StopIteration):
            return None
        return False

    @property
    def local_port(self) -> int:
        """The port actually bound (the ephemeral one when constructed with port=0)."""
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def receive_buffer_size(self) -> int:
        """SO_RCVBUF as the kernel reports it (Linux: twice what was granted)."""
        size: int = self._sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        return size

    def close(self) -> None:
        """Close the socket; a receive blocked in another thread raises NetworkError at once."""
        with self._wait_lock:
            if self._closed:
                return
            self._closed = True
            waiting = self._waiters
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._sock.close()
        self._wake_w.close()  # _wake_r stays readable: it holds the byte, then end of file
        if not waiting:
            self._wake_r.close()

    def __enter__(self) -> _UDPTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ",".join(i.name for i in self.interfaces)
        state = "closed" if self._closed else f"fd={self._sock.fileno()}"
        return f"<{type(self).__name__} port={self.port} interfaces={names} {state}>"

    def stats(self) -> TransportStats:
        return TransportStats(
            received=self._received_blocks * 256 + self._received_small,
            dropped_oversize=self._dropped_oversize,
            dropped_interface=self._dropped_interface,
            receive_errors=self._receive_errors,
            sent=self._sent,
            send_errors=self._send_errors,
            join_errors=self._join_errors,
            drained_errors=self._drained_errors,
        )

    def send(
        self, data: bytes, dest: tuple[str, int] | None = None, interface: int | None = None
    ) -> None:
        """Send to ``dest``, or to the mDNS group on every selected interface.

        ``interface`` (an index) narrows a multicast send to one interface, and gives the
        scope of an IPv6 link-local ``dest``. Raises NetworkError only when nothing was sent.
        """
        if self._closed:
            raise NetworkError("transport is closed")
        if dest is not None:
            try:
                self._sendto(data, self._unicast_dest(dest, interface))
            except OSError as exc:
                self._send_errors += 1
                raise NetworkError(exc.errno, f"send to {dest[0]} failed: {exc.strerror}") from exc
            self._sent += 1
            return
        targets = self.interfaces
        if interface is not None:
            targets = [i for i in targets if i.index == interface]
            if not targets:
                raise NetworkError(f"interface index {interface} is not selected")
        if not targets:  # all gone for the moment (follow_interfaces)
            raise NetworkError(errno.ENODEV, f"no interface to send to {self.group} on now")
        group = (self.group, MDNS_PORT)
        failures: list[str] = []
        last: OSError | None = None
        for target in targets:
            try:
                with self._send_lock:
                    if self._mcast_if != target.index:
                        self._set_multicast_if(target)
                        self._mcast_if = target.index
                    self._sendto(data, group)
            except OSError as exc:
                self._send_errors += 1
                last = exc
                failures.append(f"{target.name}: {exc.strerror or exc}")
                log.warning("send to %s on %s failed: %s", self.group, target.name, exc)
            else:
                self._sent += 1
        if last is not None and len(failures) == len(targets):
            # The errno of the last failure, so a caller can tell ENOBUFS from ENETUNREACH.
            raise NetworkError(
                last.errno, "multicast send failed on every interface: " + "; ".join(failures)
            )

    def _sendto(self, data: bytes, address: tuple[str, int] | tuple[str, int, int, int]) -> None:
        """sendto, retried once if it failed on a stale report rather than on this datagram.

        With error reports on, an ICMP error about an earlier datagram (a peer's closed port)
        is returned by the next sendto, which then sends nothing. Draining the queue tells that
        case apart: a real failure (ENOBUFS, ENETUNREACH) left nothing queued and is raised.
        ECONNREFUSED is always such a report (UDP's send path never makes it), retried even
        when another thread's drain emptied the queue first.
        """
        try:
            self._sock.sendto(data, address)
        except OSError as exc:
            if not (self._recverr and (self._drain_errors() or exc.errno == errno.ECONNREFUSED)):
                raise
            self._sock.sendto(data, address)

    def receive(self, timeout: float | None) -> Datagram | None:
        """The next datagram as an owned copy, or None once ``timeout`` seconds have passed."""
        # The buffer never reaches code outside this method, so it is never lent: the copy
        # is made through a temporary slice of its long-lived view (adr/002).
        # The buffer is taken inside the try (here and below): taken before it, a
        # KeyboardInterrupt delivered as _acquire returned left it counted in use for good.
        pool = self._pool
        slot = None
        written = -1
        try:
            slot = pool._acquire()
            self._check_behind()
            got = self._recv_into(slot.data, timeout)
            if got is None:
                return None
            nbytes, source, index, to_group, arrived, written = got
            # tuple.__new__ directly: NamedTuple's own __new__ is a Python function.
            data = slot.lend[:nbytes].tobytes()
            return _new_tuple(Datagram, (data, source, index, to_group, arrived))
        finally:
            if slot is not None:
                pool._return(slot, written)

    def receive_with(self, handler: Handler[T], timeout: float | None) -> T | None:
        """Call ``handler(view, source, interface, to_group, arrived)`` on the next datagram,
        in place (``to_group``: it was sent to the mDNS group, not to one of our addresses;
        ``arrived``: when, in time.time() seconds, 0.0 if the platform does not say).

        The view is valid only during the call: it is released afterwards, and a view derived
        from it that outlives the call makes this raise BufferError (the buffer is then wiped
        and never reused). Returns what the handler returns, None on timeout.
        """
        # What ``with self._pool.buffer() as buf`` does, minus the Lease object, the bound
        # methods of a with statement and a full-size view: the handler is lent one view of
        # exactly the datagram.
        pool = self._pool
        slot = view = None
        written = -1
        failing = False
        try:
            slot = pool._acquire()
            self._check_behind()
            got = self._recv_into(slot.data, timeout)
            if got is None:
                return None
            nbytes, source, index, to_group, arrived, written = got
            view = slot.lend_view(nbytes)
            return handler(view, source, index, to_group, arrived)
        except BaseException:
            failing = True
            raise
        finally:
            if slot is not None:
                if view is not None:
                    pool._reclaim(slot, view, written, failing)
                else:
                    pool._return(slot, -1)

    def receive_batch(self, handler: Handler[T], limit: int, out: list[T]) -> None:
        """Call ``handler(view, source, interface, to_group, arrived)`` on each datagram already
        queued, in place, appending what it returns to ``out``; stop when the socket is empty
        or after ``limit``. Never waits.

        One pooled buffer serves the whole batch: each view is released and checked for
        escape (as in ``receive_with``) before the next datagram is read into the buffer, which
        is zeroed and returned once, at the end. An error raises after the datagrams before it
        were handled; their results are already in ``out``.
        """
        # Against receive_with per datagram: one acquire / zero / return per batch instead of
        # per datagram, ~0.7 us a datagram of a 50-datagram burst (adr/005).
        pool = self._pool
        slot = None
        high = 0  # how far into the buffer the datagrams handled so far were written
        zero = -1  # what to zero at the end: all of it, unless the batch ended by its limit
        view = None  # lent to the handler right now
        escaped = False
        failing = False
        try:
            slot = pool._acquire()
            self._check_behind()
            while True:
                if limit <= 0:
                    zero = high  # every read returned a datagram, so `high` is exact
                    break
                limit -= 1
                # None: the socket is empty, but datagrams dropped on the way (too big, wrong
                # interface) may have written the buffer: zeroed in full.
                got = self._recv_into(slot.data, 0)
                if got is None:
                    break
                nbytes, source, index, to_group, arrived, written = got
                if written > high:
                    high = written
                view = slot.lend_view(nbytes)
                out.append(handler(view, source, index, to_group, arrived))
                lent, view = view, None
                if _let_go(slot, lent):
                    escaped = True
                    break
        except BaseException:
            failing = True
            raise
        finally:
            if slot is None:
                pass
            elif view is not None:  # the handler raised while holding it
                pool._reclaim(slot, view, -1, failing)
            elif escaped:
                pool._discard(slot, failing)  # raises BufferError
            else:
                pool._return(slot, zero)

    # -- receive loop ---------------------------------------------------------------------------

    def _check_behind(self) -> None:
        """Before a read: the socket was not read dry for STAMP_AFTER, so what is queued may
        be old; its datagrams' arrival times are read until one is recent."""
        if self._stamps and not self._stamping and _monotonic() - self._read_dry > STAMP_AFTER:
            self._stamping = True

    def _arrival(self) -> float:
        """The kernel's arrival time (time.time() seconds) of the datagram just read. Once one
        is recent, those queued behind it are newer still: reading times stops."""
        buf = self._stamp_buf
        try:
            fcntl.ioctl(self._sock.fileno(), _SIOCGSTAMPNS, buf, True)
        except OSError as exc:
            log.debug("cannot read arrival times: %s", exc)
            self._stamps = self._stamping = False
            return 0.0
        seconds, nanoseconds = _unpack_timespec(buf)
        arrived: float = seconds + nanoseconds * 1e-9
        if _time() - arrived <= STAMP_AFTER:
            self._stamping = False
            self._read_dry = _monotonic()  # caught up as of this datagram
        return arrived

    def _recv_into(
        self, buf: memoryview | bytearray, timeout: float | None
    ) -> tuple[int, tuple[str, int], int, bool, float, int] | None:
        """(length, source, interface index, sent to the group, arrival, bytes of buf written)
        of the next datagram.

        The hot path is one recvmsg_into and a few comparisons; the clock is read once per
        receive call (_check_behind) and once the socket turns out to be empty or a datagram
        was dropped (the deadline then counts from that moment, a few microseconds late at
        most). Arrival times are right when one thread at a time receives on a transport, as
        the Querier does: the kernel gives the time of the socket's last read, whoever made it.
        """
        if self._closed:
            raise NetworkError("transport is closed")
        sock = self._sock
        # A one-item tuple as the buffer list: it comes from CPython's tuple free list (no
        # allocation), and unlike a list kept on self it is private to this call, so two
        # threads may receive on one transport.
        iov = (buf,)
        deadline = None
        written = 0  # furthest any dropped datagram reached into buf: zeroed with the rest
        errors = 0
        late = 0
        while True:
            try:
                nbytes, ancdata, flags, address = sock.recvmsg_into(iov, self._ancsize)
            except BlockingIOError:
                # Empty, no error pending: the errors so far were not "in a row". (With error
                # reports on, a peer spoofing ICMP errors sets one between waits at will.)
                errors = 0
                now = _monotonic()
                self._read_dry = now  # whatever comes next is news
                self._stamping = False
                if timeout is not None and deadline is None:
                    deadline = now + timeout
                if not self._wait(deadline):
                    return None
                continue
            except OSError as exc:
                # A UDP socket reports some conditions (a full or failing network stack, an
                # ICMP error queued by an earlier send) on the next read. They say nothing
                # about the next datagram: count them and keep waiting, unless they repeat
                # without end. Anything else is the socket itself failing.
                errors += 1
                if exc.errno not in _TRANSIENT_ERRORS or (
                    errors > _MAX_TRANSIENT_IN_A_ROW and not self._reported()
                ):
                    raise NetworkError(exc.errno, f"receive failed: {exc.strerror}") from exc
                if errors > _MAX_TRANSIENT_IN_A_ROW:
                    errors = 0  # a flood of reports, each behind its own error: read on
                self._receive_errors += 1
                log.debug("transient receive error: %s", exc)
            else:
                if flags & _MSG_TRUNC:
                    written = len(buf)  # the whole buffer was written
                    self._dropped_oversize += 1
                    log.debug("dropped a datagram larger than %d bytes from %s", len(buf), address)
                else:
                    index = self._default_index
                    to_group = False  # unknown: taken as unicast, which is checked more
                    if ancdata:
                        level, kind, data = ancdata[0]  # the one kind of ancillary data enabled
                        if kind == self._pktinfo_type and level == self._pktinfo_level:
                            index = self._unpack_index(data)[0]
                            # The header's destination; a comparison in place, no new object.
                            to_group = data.startswith(self._dest_group, self._dest_at)
                    arrived = self._arrival() if self._stamping else 0.0
                    if index == 0 or index in self._indexes:
                        self._received_small += 1
                        if self._received_small == 256:
                            self._received_blocks += 1
                            self._received_small = 0
                        if self._scoped:
                            address = self._source(address)
                        return (
                            nbytes,
                            address,
                            index,
                            to_group,
                            arrived,
                            written if written > nbytes else nbytes,
                        )
                    # Unicast to our port through an interface that was not selected.
                    self._dropped_interface += 1
                    if nbytes > written:
                        written = nbytes
            # Errors and dropped datagrams must not hold the caller long past its deadline: past
            # it, reading goes on only while datagrams are already queued (so a dropped one does
            # not make timeout 0 look like an empty socket in a flood), at most _MAX_LATE_READS.
            if timeout is not None:
                if deadline is None:
                    deadline = _monotonic() + timeout
                if _monotonic() >= deadline:
                    late += 1
                    if late > _MAX_LATE_READS:
                        return None

    def _wait(self, deadline: float | None) -> bool:
        """Block until the socket is readable; False once the deadline has passed.

        Raises NetworkError if the transport is closed meanwhile (close() wakes the poll).
        """
        if deadline is None:
            ms = -1
        else:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                # The socket is empty and time is up; but a caller's own select (the
                # querier's epoll) may have woken for POLLERR alone, which only draining the
                # error queue clears. Without it that select would return at once, forever.
                if self._recverr:
                    self._drain_errors()
                return False
            # poll() takes milliseconds; round up so a short wait cannot spin at 0 ms. It takes
            # at most 2^31 - 1 of them (24.8 days): a longer wait goes a day at a time.
            ms = math.ceil(min(remaining, _MAX_WAIT) * 1000)
        counted = False
        try:
            with self._wait_lock:  # see __init__: close() must not close _wake_r under us
                # One poll object per thread: poll objects refuse concurrent use, select()
                # fails past fd 1023, and a new poll object per wait would cost allocations
                # on every idle wait.
                poller: select.poll | None = getattr(self._pollers, "poller", None)
                if poller is None and not self._closed:
                    poller = select.poll()
                    # (A signal handler's close() may land in here, on this very thread: the
                    # lock is reentrant for it. The closed socket's number is then -1.)
                    with contextlib.suppress(ValueError):
                        poller.register(self._sock.fileno(), select.POLLIN)
                        poller.register(self._wake_r.fileno(), select.POLLIN)
                        self._pollers.poller = poller
                # Checked last, after anything a handler may interrupt (before, the check).
                if self._closed or poller is None:
                    raise NetworkError("transport closed while waiting")
                self._waiters += 1
                counted = True
            events = poller.poll(ms)
        finally:
            if counted:
                with self._wait_lock:
                    self._waiters -= 1
                    last = self._closed and not self._waiters
                if last:
                    self._wake_r.close()
        if self._closed:
            raise NetworkError("transport closed while waiting")
        if self._recverr:
            for _, mask in events:
                if mask & _POLLERR:  # queued errors: poll would report them again at once
                    self._drain_errors()
                    break
        return bool(events) or deadline is None or _monotonic() < deadline

    def _reported(self) -> bool:
        """Errors in a row: did reports stand behind them? Each report is read once, so many
        in a row with reports queued are a flood of them (anyone on the link can send ICMP
        errors; 64 of them in a row failed a call, now and then); without reports, the socket
        fails the same way without end."""
        return self._recverr and self._drain_errors() > 0

    def _drain_errors(self) -> int:
        """Read and discard what is queued on the socket's error queue; how many were read.

        While anything is queued there, poll() reports POLLERR (a wait would return at once:
        a busy loop), and the queue is charged to the receive buffer (a peer sending ICMP
        errors could crowd out datagrams). The reports say nothing a querier can act on: a
        responder's port was closed, a host unreachable. At most _MAX_DRAIN per call.
        """
        sock = self._sock
        drained = 0
        while drained < _MAX_DRAIN:
            try:
                _, ancdata, _, source = sock.recvmsg(0, _ERR_ANCSIZE, _MSG_ERRQUEUE)
            except BlockingIOError:
                break  # empty
            except OSError as exc:
                log.debug("cannot read the error queue: %s", exc)
                break
            drained += 1
            if log.isEnabledFor(logging.DEBUG):
                # struct sock_extended_err starts with the errno; the IP_RECVERR cmsg holds it.
                codes = [
                    _EE_ERRNO.unpack_from(data)[0]
                    for _, kind, data in ancdata
                    if kind in _RECVERRS and len(data) >= 4
                ]
                log.debug(
                    "drained a queued error about a datagram to %s: %s",
                    source,
                    ", ".join(errno.errorcode.get(c, str(c)) for c in codes) or "no report",
                )
        self._drained_errors += drained
        return drained


class UDPv4Transport(_UDPTransport):
    """mDNS over IPv4 (224.0.0.251)."""

    family = socket.AF_INET
    group = MDNS_GROUP_V4
    _ancsize = socket.CMSG_SPACE(12)  # struct in_pktinfo
    _pktinfo_level = socket.IPPROTO_IP
    _pktinfo_type = _IP_PKTINFO
    _unpack_index = _IFINDEX_V4.unpack_from
    _group_level = socket.IPPROTO_IP
    _join_option = socket.IP_ADD_MEMBERSHIP
    _leave_option = socket.IP_DROP_MEMBERSHIP

    def _configure(self, sock: socket.socket) -> None:
        self._reuse(sock)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, _TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, _TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
        _only_joined_groups(sock, socket.IPPROTO_IP, _IP_MULTICAST_ALL)
        self._recverr = _report_errors(sock, socket.IPPROTO_IP, _IP_RECVERR)

    def _bind_address(self, port: int) -> tuple[str, int]:
        return ("", port)

    def _membership(self, interface: Interface) -> bytes:
        address = socket.inet_aton(str(interface.ipv4[0].ip))
        if _LINUX:  # struct ip_mreqn: picks the interface by index, exact even for shared addresses
            return _GROUP_V4 + address + struct.pack("@i", interface.index)
        return _GROUP_V4 + address  # struct ip_mreq

    def _set_multicast_if(self, interface: Interface) -> None:
        if _LINUX:
            # By index: an address here becomes the source of every query, and once the link
            # is renumbered (a laptop waking on another network) each send fails with
            # ENETUNREACH. Without one the kernel takes the interface's address at each send,
            # except on loopback, whose host-scoped 127.0.0.1 it never picks (0.0.0.0 then).
            address = bytes(4)
            if interface.loopback:
                address = socket.inet_aton(str(interface.ipv4[0].ip))
            value = bytes(4) + address + struct.pack("@i", interface.index)
        else:
            value = socket.inet_aton(str(interface.ipv4[0].ip))
        self._sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, value)


class UDPv6Transport(_UDPTransport):
    """mDNS over IPv6 (ff02::fb). Sources are reported without scope; the index is the scope."""

    family = socket.AF_INET6
    group = MDNS_GROUP_V6
    _ancsize = socket.CMSG_SPACE(20)  # struct in6_pktinfo
    _pktinfo_level = socket.IPPROTO_IPV6
    _pktinfo_type = _IPV6_PKTINFO
    _unpack_index = _IFINDEX_V6.unpack_from
    _dest_group = _GROUP_V6
    _dest_at = _DEST_AT_V6
    _scoped = True
    _group_level = socket.IPPROTO_IPV6
    _join_option = socket.IPV6_JOIN_GROUP
    _leave_option = socket.IPV6_LEAVE_GROUP

    def _configure(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        self._reuse(sock)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, _TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, _TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
        _only_joined_groups(sock, socket.IPPROTO_IPV6, _IPV6_MULTICAST_ALL)
        self._recverr = _report_errors(sock, socket.IPPROTO_IPV6, _IPV6_RECVERR)

    def _bind_address(self, port: int) -> tuple[str, int]:
        return ("::", port)

    def _membership(self, interface: Interface) -> bytes:
        return _GROUP_V6 + struct.pack("@I", interface.index)  # struct ipv6_mreq

    def _set_multicast_if(self, interface: Interface) -> None:
        self._sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, interface.index)

    def _unicast_dest(
        self, dest: tuple[str, int], interface: int | None
    ) -> tuple[str, int] | tuple[str, int, int, int]:
        host, port = dest[0], dest[1]
        if "%" in host:
            return (host, port, 0, 0)  # the caller gave the scope in the text form
        scope = 0
        if host.lower().startswith(("fe8", "fe9", "fea", "feb")):  # fe80::/10
            interfaces = self.interfaces  # empty while all are gone (follow_interfaces)
            if interface is None and interfaces:
                interface = interfaces[0].index
            scope = interface or 0
        return (host, port, 0, scope)

    def _source(self, address: tuple[str, int]) -> tuple[str, int]:
        host = address[0]
        if "%" in host:
            host = host[: host.index("%")]
        return (host, address[1])


if TYPE_CHECKING:  # mypy proves both classes satisfy the protocol the querier is written against

    def _is_transport(v4: UDPv4Transport, v6: UDPv6Transport) -> tuple[Transport, Transport]:
        return v4, v6
