"""Which network interfaces exist, and which of them mDNS should use.

Goals: no runtime dependency (no netifaces, no psutil), no reading of /sys or /proc (in a network
namespace /sys can describe another namespace), and an answer the kernel itself gives.

Plan: call getifaddrs(3) through ctypes and read each ``struct sockaddr`` by hand. Linux's
sockaddr starts with a 16-bit family; the BSDs and macOS start with an 8-bit ``sa_len`` then an
8-bit family. ``sockaddr_in`` and ``sockaddr_in6`` then agree on the offsets this module reads.
Interface flags differ too (IFF_MULTICAST is 0x1000 on Linux, 0x8000 on the BSDs).

Selection (``select_interfaces``): an explicit list picks interfaces by name, index or one of
their addresses (with a ``%scope``, only on the interface so named), and of those, per family,
the ones usable for it (a named interface without IPv6 still carries IPv4 mDNS); the default
is every interface that is up, multicast-capable, not
point-to-point (VPN tunnels) and has an address of the wanted family (for IPv6 a link-local
one: ff02::fb is link-scoped), with loopback used only when nothing else qualifies (so IPv4 still
works on an isolated machine). Ports of a bridge or bond (Linux: interfaces with a master, read
from rtnetlink) are left out too: their link is the master's, and on a Docker or libvirt host
they would otherwise send IPv6 queries out of every container's veth.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_address

from mdnsq.errors import InvalidArgument, NetworkError

__all__ = ["Interface", "list_interfaces", "select_interfaces"]

log = logging.getLogger(__name__)

_IFF_UP = 0x1
_IFF_LOOPBACK = 0x8
_IFF_POINTOPOINT = 0x10
_IFF_MULTICAST = 0x1000 if sys.platform.startswith("linux") else 0x8000
_HAS_SA_LEN = not sys.platform.startswith(("linux", "win", "cygwin"))

# What callers may pass to pick interfaces: names, indexes or addresses (one or several), or
# None for the default selection.
InterfaceSpec = Iterable[str | int] | str | int | None


@dataclass(frozen=True)
class Interface:
    """A network interface as the kernel reported it when it was listed."""

    name: str
    index: int
    addresses: tuple[IPv4Interface | IPv6Interface, ...] = ()
    up: bool = True
    multicast: bool = True
    loopback: bool = False
    point_to_point: bool = False
    enslaved: bool = False  # a bridge or bond port (Linux); the master carries its link

    @property
    def ipv4(self) -> tuple[IPv4Interface, ...]:
        """Its IPv4 addresses with their prefixes (the subnets of the §11 on-link check)."""
        return tuple(a for a in self.addresses if isinstance(a, IPv4Interface))

    @property
    def ipv6(self) -> tuple[IPv6Interface, ...]:
        """Its IPv6 addresses with their prefixes, link-local ones included."""
        return tuple(a for a in self.addresses if isinstance(a, IPv6Interface))

    def has_family(self, family: int) -> bool:
        """Whether it has an address of ``family`` (AF_INET or AF_INET6)."""
        if family == socket.AF_INET:
            return bool(self.ipv4)
        if family == socket.AF_INET6:
            return bool(self.ipv6)
        return False

    def usable_for(self, family: int) -> bool:
        """Can mDNS run over ``family`` here? IPv6 mDNS is link-local (ff02::fb), so it needs
        a link-local address: lo, with only ::1, has no route for the group at all."""
        if family == socket.AF_INET6:
            return any(a.ip.is_link_local for a in self.ipv6)
        return self.has_family(family)


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_ifu", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _libc() -> ctypes.CDLL:
    path = ctypes.util.find_library("c") if not sys.platform.startswith("linux") else None
    return ctypes.CDLL(path, use_errno=True)


def _family(sa: int) -> int:
    if _HAS_SA_LEN:
        return ctypes.c_uint8.from_address(sa + 1).value
    return ctypes.c_uint16.from_address(sa).value


def _raw_address(sa: int | None) -> tuple[int, bytes] | None:
    """(family, packed address) of an AF_INET/AF_INET6 sockaddr, None for anything else."""
    if not sa:
        return None
    family = _family(sa)
    if family == socket.AF_INET:
        return family, ctypes.string_at(sa + 4, 4)
    if family == socket.AF_INET6:
        return family, ctypes.string_at(sa + 8, 16)
    return None


def _prefix_length(mask: bytes) -> int:
    return sum(bin(byte).count("1") for byte in mask)


def list_interfaces() -> list[Interface]:
    """Every interface of this network namespace with its IPv4/IPv6 addresses, in kernel order."""
    if sys.platform.startswith(("win", "cygwin")):
        raise NetworkError("listing interfaces needs getifaddrs(3), which this platform lacks")
    libc = _libc()
    libc.getifaddrs.argtypes = [ctypes.POINTER(ctypes.POINTER(_IfAddrs))]
    libc.getifaddrs.restype = ctypes.c_int
    libc.freeifaddrs.argtypes = [ctypes.POINTER(_IfAddrs)]
    libc.freeifaddrs.restype = None
    head = ctypes.POINTER(_IfAddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        err = ctypes.get_errno()
        raise NetworkError(err, f"getifaddrs failed: {os.strerror(err)}")
    order: list[str] = []
    flags: dict[str, int] = {}
    addresses: dict[str, list[IPv4Interface | IPv6Interface]] = {}
    try:
        node = head
        while node:
            entry = node.contents
            name = (entry.ifa_name or b"").decode("utf-8", "surrogateescape")
            if name not in flags:
                order.append(name)
                addresses[name] = []
            flags[name] = flags.get(name, 0) | entry.ifa_flags
            raw = _raw_address(entry.ifa_addr)
            if raw is not None:
                family, packed = raw
                mask = _raw_address(entry.ifa_netmask)
                prefix = _prefix_length(mask[1]) if mask else (32 if len(packed) == 4 else 128)
                if family == socket.AF_INET:
                    addresses[name].append(IPv4Interface((IPv4Address(packed), prefix)))
                else:
                    addresses[name].append(IPv6Interface((IPv6Address(packed), prefix)))
            node = entry.ifa_next
    finally:
        libc.freeifaddrs(head)
    ports = _enslaved_indexes()
    # One interface per index. An IPv4 address with a label (`ip addr add ... label br0:1`,
    # keepalived's and old eth0:1 set-ups) comes under the label's name, which Linux maps to
    # the device's own index: listed apart, the same link was selected twice (the second join
    # failed) and, since re-listings key by index, the alias alone replaced the device, whose
    # own subnet then counted as off-link (every answer from it dropped).
    merged: dict[int, tuple[str, int, list[IPv4Interface | IPv6Interface]]] = {}
    for name in order:
        try:
            index = socket.if_nametoindex(name)
        except OSError:
            continue  # vanished between the two calls
        found = merged.get(index)
        if found is None:
            try:
                device = socket.if_indextoname(index)
            except OSError:
                device = name
            merged[index] = (device, flags[name], list(addresses[name]))
        else:
            found[2].extend(a for a in addresses[name] if a not in found[2])
            merged[index] = (found[0], found[1] | flags[name], found[2])
    return [
        Interface(
            name=name,
            index=index,
            addresses=tuple(found),
            up=bool(f & _IFF_UP),
            multicast=bool(f & _IFF_MULTICAST),
            loopback=bool(f & _IFF_LOOPBACK),
            point_to_point=bool(f & _IFF_POINTOPOINT),
            enslaved=index in ports,
        )
        for index, (name, f, found) in merged.items()
    ]


_RTM_NEWLINK, _RTM_GETLINK = 16, 18
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_IFLA_MASTER = 10
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")  # length, type


def _enslaved_indexes() -> frozenset[int]:
    """Indexes of interfaces that have a master (bridge or bond ports), asked of rtnetlink.

    getifaddrs does not say it and /sys may describe another network namespace; an empty set
    (nothing left out) on any other platform or error.
    """
    if not sys.platform.startswith("linux"):
        return frozenset()
    ports: set[int] = set()
    request = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    header = _NLMSG.pack(
        _NLMSG.size + len(request), _RTM_GETLINK, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
    )
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0) as sock:  # NETLINK_ROUTE
            sock.settimeout(1.0)
            sock.send(header + request)
            while True:
                data = sock.recv(65536)
                pos = 0
                while pos + _NLMSG.size <= len(data):
                    length, kind = _NLMSG.unpack_from(data, pos)[:2]
                    if length < _NLMSG.size or kind in (_NLMSG_DONE, _NLMSG_ERROR):
                        return frozenset(ports)
                    if kind == _RTM_NEWLINK:
                        index = _IFINFO.unpack_from(data, pos + _NLMSG.size)[2]
                        attr = pos + _NLMSG.size + _IFINFO.size
                        end = min(pos + length, len(data))
                        while attr + _RTATTR.size <= end:
                            alen, atype = _RTATTR.unpack_from(data, attr)
                            if alen < _RTATTR.size:
                                break
                            if atype == _IFLA_MASTER:
                                ports.add(index)
                            attr += (alen + 3) & ~3
                    pos += (length + 3) & ~3
                if not data:
                    return frozenset(ports)
    except (OSError, struct.error):
        return frozenset()


def _matches(interface: Interface, wanted: str | int) -> bool:
    if isinstance(wanted, int):
        return interface.index == wanted
    if interface.name == wanted:
        return True
    text, _, scope = wanted.partition("%")
    try:
        address = ip_address(text)
    except ValueError:
        return wanted.isdigit() and interface.index == int(wanted)
    # Link-local addresses repeat from link to link (fe80::1 on every router): a scope
    # names the one link meant.
    if scope and scope != interface.name and scope != str(interface.index):
        return False
    return any(a.ip == address for a in interface.addresses)


def check_spec(wanted: object) -> tuple[str | int, ...] | None:
    """The items of an interface selection, checked once (an iterator would be spent by the
    first transport): None for the default, else names, indexes or addresses.

    Raises TypeError for anything else: bytes would be read as a list of indexes, a bool as
    index 0 or 1; InvalidArgument for an empty selection or an empty name.
    """
    if wanted is None:
        return None
    if isinstance(wanted, str | int) and not isinstance(wanted, bool):
        wanted = (wanted,)
    if isinstance(wanted, bytes | bytearray | memoryview):
        raise TypeError(f"interfaces must be names as str, not {type(wanted).__name__}")
    if isinstance(wanted, bool) or not isinstance(wanted, Iterable):
        raise TypeError(
            f"interfaces must be a name, an index, an address or an iterable of them, "
            f"not {type(wanted).__name__}"
        )
    items = tuple(wanted)
    for item in items:
        if not isinstance(item, str | int) or isinstance(item, bool):
            raise TypeError(
                f"an interface is a name, an index or an address (str or int), "
                f"not {type(item).__name__}: {item!r}"
            )
    # The caller's mistake, not the network's: it was a NetworkError ("check that an
    # interface with multicast is up"), and the CLI's `-i ''` exited 3, not 2.
    if not items:
        raise InvalidArgument("no interface given (None means every multicast interface)")
    if "" in items:
        raise InvalidArgument("an interface name is empty")
    return items


def _choose(
    wanted: tuple[str | int, ...], family: int, known: list[Interface], missing_ok: bool
) -> tuple[list[Interface], list[Interface]]:
    """(the named interfaces usable for ``family``, those named but not usable for it)."""
    named: list[Interface] = []
    for item in wanted:
        found = [i for i in known if _matches(i, item)]
        if not found and not missing_ok:
            raise NetworkError(f"no interface matches {item!r}")
        named.extend(i for i in found if i not in named)
    chosen = [i for i in named if i.usable_for(family)]
    return chosen, [i for i in named if i not in chosen]


def select_interfaces(
    wanted: InterfaceSpec,
    family: int,
    available: list[Interface] | None = None,
    *,
    missing_ok: bool = False,
) -> list[Interface]:
    """The interfaces a transport of ``family`` should use (see the module comment).

    Of an explicit list, those usable for ``family``; the others are left out, logged at
    INFO. Raises NetworkError when nothing is usable or a named interface does not exist,
    and TypeError for items that are not str or int. ``missing_ok``: the selection made
    again later (an interface named may be gone for the moment; nothing is logged).
    """
    items = check_spec(wanted)
    known = list_interfaces() if available is None else available
    what = "IPv6 link-local" if family == socket.AF_INET6 else "IPv4"
    if items is not None:
        chosen, skipped = _choose(items, family, known, missing_ok)
        if not chosen:
            if not skipped:
                raise NetworkError(f"no interface matches {', '.join(map(repr, items))} now")
            names = ", ".join(i.name for i in skipped)
            raise NetworkError(
                f"interface {names} has no {what} address"
                if len(skipped) == 1
                else f"interfaces {names} have no {what} address"
            )
        if not missing_ok:  # made again (follow_interfaces): said once already
            version = 6 if family == socket.AF_INET6 else 4
            for interface in skipped:
                log.info(
                    "%s has no %s address: not used for mDNS over IPv%d",
                    interface.name,
                    what,
                    version,
                )
        return chosen
    usable = [i for i in known if i.up and i.multicast and i.usable_for(family)]
    chosen = [i for i in usable if not (i.loopback or i.point_to_point or i.enslaved)]
    if not chosen:
        chosen = [i for i in usable if i.loopback]
    if not chosen:
        raise NetworkError(f"no interface is up and multicast-capable with an {what} address")
    return chosen
