# DNS-SD vocabulary (RFC 6763): what a resolved service instance looks like, how service types and
# instance names are spelled, and how a ServiceInfo is assembled from cached records.
#
# Goals: accept what people type ("_ipp._tcp", "_ipp._tcp.local.", "_printer._sub._http._tcp",
# "Dr. Who's Printer" as a raw instance label) and hand back plain, immutable values with
# ipaddress objects. Assembly reads only the cache, so the same code serves browse, resolve and
# watch, and "answered from the cache without waiting" falls out for free.
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Literal

from mdnsq.cache import CacheEntry, RecordCache
from mdnsq.errors import InvalidArgument
from mdnsq.names import (
    escape_label,
    join_name,
    name_key,
    normalize_name,
    split_name,
    split_typed,
)
from mdnsq.records import AAAARecord, ARecord, NSECRecord, RecordType, SRVRecord, TXTRecord

__all__ = [
    "Address",
    "ServiceEvent",
    "ServiceInfo",
    "addresses_for",
    "build_service_info",
    "instance_key",
    "instance_name",
    "instance_with_domain",
    "normalize_host",
    "normalize_service_type",
    "service_unavailable",
    "split_instance_name",
    "srv_unavailable",
    "typed_instance_name",
    "typed_instance_parts",
]

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SERVICES_META = "_services._dns-sd._udp.local"


@dataclass(frozen=True)
class ServiceInfo:
    """One resolved DNS-SD service instance.

    ``name`` is the full instance name with the instance label escaped (pass it back to
    ``resolve_service``); ``instance`` is that label as a person reads it. ``addresses`` holds
    IPv4 and IPv6 addresses; an IPv6 link-local address carries the interface index as its scope
    (``fe80::1%3``) because it is meaningless without it. ``ttl`` is the whole seconds left before
    the first of the service's SRV/TXT/PTR records would expire. Everything in it was heard on
    ``interface`` (RFC 6762 §14): one name on two links is one info, from one of them.
    """

    name: str
    instance: str
    type: str
    host: str
    port: int
    priority: int = 0
    weight: int = 0
    addresses: tuple[Address, ...] = ()
    txt: dict[str, bytes | None] = field(default_factory=dict, hash=False)  # hashable info
    interface: int | None = None
    ttl: int = 0

    @property
    def complete(self) -> bool:
        """SRV, TXT and at least one address are known (what resolve_service waits for)."""
        return bool(self.host) and bool(self.addresses) and self._has_txt

    # Set by build_service_info; not part of equality (an empty TXT record is still a TXT record).
    _has_txt: bool = field(default=False, repr=False, compare=False)
    # What equality compares instead: a TXT record is known, or txt shows one was (so an info
    # written by hand with its txt equals the one read from the network). Infos that differ
    # only in it are not equal: one is complete and the other not, and a watch reports that.
    _txt_known: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_txt_known", self._has_txt or bool(self.txt))

    def same_content(self, other: ServiceInfo) -> bool:
        """Equal apart from the TTL countdown (what a watch calls 'updated'). Whether a TXT
        record is known counts too: the empty one (RFC 6763 §6.1) reads as the ``{}`` of none,
        and a watch that reported an instance before its TXT record never reported it
        complete. So does the interface: an info read from another link once its own link's
        records are gone (an IPv4-only device heard on Ethernet and Wi-Fi, and the cable
        pulled) kept the caller's info, and its `removed`, naming a link that had gone."""
        return (
            self.interface == other.interface
            and (self.host == other.host or name_key(self.host) == name_key(other.host))
            and self.port == other.port
            and self.priority == other.priority
            and self.weight == other.weight
            and self._has_txt == other._has_txt
            and set(self.addresses) == set(other.addresses)
            and dict(self.txt) == dict(other.txt)
        )


EventKind = Literal["added", "updated", "removed"]


@dataclass(frozen=True)
class ServiceEvent:
    """What a watch reports: an instance appeared, changed, or went away (goodbye or expiry).
    A removed event carries the info last reported, with ``ttl`` 0."""

    kind: EventKind
    info: ServiceInfo


_PROTOCOLS = ("_tcp", "_udp")
_TYPE_FORM = (
    "a service type is '_name._tcp' or '_name._udp', optionally followed by '.local' and "
    "preceded by '<subtype>._sub.' (e.g. '_http._tcp', '_printer._sub._http._tcp.local')"
)


def _is_type(labels: list[str]) -> bool:
    """Whether ``labels`` (without the domain) are '_name', '_tcp' or '_udp' (RFC 6763 §7),
    after '<subtype>', '_sub' for a subtype (§7.1: any label; most start with '_')."""
    if len(labels) == 4 and name_key(labels[1]) == "_sub":
        labels = labels[2:]
    return (
        len(labels) == 2
        and len(labels[0]) > 1
        and labels[0][0] == "_"
        and name_key(labels[1]) in _PROTOCOLS
    )


def normalize_service_type(service_type: str) -> str:
    """'_ipp._tcp' / '_ipp._tcp.local.' / '_printer._sub._http._tcp' -> '..._tcp.local'.

    Anything else is refused (InvalidArgument) before anything is sent: accepted, a typo
    ('_http._tpc'), an instance name or a unicast domain ('_http._tcp.example.com' became
    '....example.com.local') was asked about, and the call waited out its timeout."""
    text = normalize_name(_stripped(service_type, "a service type"))
    if not text:
        raise InvalidArgument("empty service type")
    labels = split_name(text)
    body = labels[:-1] if name_key(labels[-1]) == "local" else labels
    if not _is_type(body):
        raise InvalidArgument(f"not a DNS-SD service type: {service_type!r}{_hint(body)}")
    if body is labels:
        labels.append("local")
    return join_name(*(escape_label(label) for label in labels))


def _hint(labels: list[str]) -> str:
    """What normalize_service_type says about a name it refuses: the likely mistake first."""
    keys = [name_key(label) for label in labels]
    if keys == ["_services", "_dns-sd", "_udp"]:
        return f"; service_types() (mdnsq types) lists the types (RFC 6763 §9), and {_TYPE_FORM}"
    if any(key in _PROTOCOLS for key in keys[1:-1]):
        return f"; mDNS answers for .local only, and {_TYPE_FORM}"
    if len(keys) == 3 and keys[2] in _PROTOCOLS and keys[1][:1] == "_":
        return f"; an instance's name goes to resolve_service (mdnsq lookup), and {_TYPE_FORM}"
    return f"; {_TYPE_FORM}"


def is_service_type(name: str) -> bool:
    """Whether a type enumeration's PTR target is a service type (RFC 6763 §7, §9):
    "_service._tcp.local" or "_service._udp.local". Anything else a peer lists there (a
    host name, an instance, a cut name) is no type to browse."""
    labels = split_name(name)
    return len(labels) == 3 and name_key(labels[2]) == "local" and _is_type(labels[:2])


def base_type(service_type: str) -> str:
    """The type an instance of a (sub)type is registered under: drop '<sub>._sub.'."""
    labels = split_name(service_type)
    if len(labels) > 2 and name_key(labels[1]) == "_sub":
        labels = labels[2:]
    return join_name(*(escape_label(label) for label in labels))


def instance_key(target: str, suffix: str) -> str | None:
    """The name key of the instance a PTR target names, if it is one label under the type
    whose key, with a leading dot, is ``suffix`` (RFC 6763 §4.1); else None (a host name,
    another type's instance, a deeper name)."""
    key = name_key(target)
    if not key.endswith(suffix) or len(key) == len(suffix):
        return None
    label = key[: -len(suffix)]
    if "\\" not in label:
        return None if "." in label else key
    # An escaped dot is no label boundary, and "x\\" ends a label where "x\" escapes.
    return key if "." + name_key(split_instance_name(key)[1]) == suffix else None


def normalize_host(name: str) -> str:
    """Host names without a domain get '.local' (mDNS answers nothing else)."""
    text = normalize_name(_stripped(name, "a host name"))
    if not text:
        raise InvalidArgument("empty host name")
    if len(split_name(text)) == 1:  # not "." in text: "x\\.local" is two labels, "x\\" and "local"
        text += ".local"
    return text


def _stripped(text: str, what: str) -> str:
    """``text`` without surrounding white space; TypeError, not AttributeError, for a non-str."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be str, not {type(text).__name__}")
    return text.strip()


def instance_name(instance: str, service_type: str) -> str:
    """Full escaped instance name from a raw instance label and a service type."""
    if not isinstance(instance, str):
        raise TypeError(f"an instance label must be str, not {type(instance).__name__}")
    if not instance:
        raise InvalidArgument("empty instance name")
    return join_name(escape_label(instance), base_type(normalize_service_type(service_type)))


def instance_with_domain(name: str) -> str:
    """A full instance name in text form, with '.local' added when it ends in a service type
    ('Office Printer._ipp._tcp'), as service types get it: asked as given, such a name is
    nobody's on a link and the call waited out its timeout. Other names are as given."""
    labels = split_name(name)
    if len(labels) >= 3 and _is_type(labels[-2:]):
        return join_name(name, "local")
    return name


def typed_instance_parts(name: str) -> tuple[list[str], str] | None:
    """A full instance name as a person types it, split: (the labels before the service type,
    the service type), or None when it does not end in a .local service type (or one without
    a domain) with at least one label before it, or names a subtype. An instance is one label
    (RFC 6763 §4.3), so several labels before the type are one instance with unescaped dots
    ('Dr. Who._ipp._tcp': ['Dr', ' Who']). So are leading, trailing and doubled dots, whose
    empty labels no name may hold ('Dot.._ipp._tcp': ['Dot', ''], the instance 'Dot.')."""
    try:
        labels = split_name(name)
    except ValueError:  # InvalidArgument: an empty label, or a name too long
        try:
            labels = split_typed(name)
        except ValueError:  # a dangling backslash, an escape out of range
            return None
    protos = [i for i, label in enumerate(labels) if name_key(label) in ("_tcp", "_udp")]
    if not protos or protos[-1] < 2:
        return None
    k = protos[-1] - 1  # the service label
    if (
        [name_key(label) for label in labels[k + 2 :]] not in ([], ["local"])
        or not _is_type(labels[k : k + 2])
        or any(name_key(label) == "_sub" for label in labels[:k])
    ):
        return None
    return labels[:k], join_name(*(escape_label(label) for label in labels[k:]))


def typed_instance_name(name: str) -> str:
    """resolve_service's reading of a full name: unescaped dots before a .local service type
    belong to the instance (typed_instance_parts), as the CLI's lookup reads them; read as
    labels, the name was nobody's and the call waited out its timeout for None. Other names
    are asked as given, with '.local' added as instance_with_domain adds it."""
    parts = typed_instance_parts(name)
    if parts is not None and len(parts[0]) > 1:
        try:
            return instance_name(".".join(parts[0]), parts[1])
        except InvalidArgument:  # too long as one label: the labels as given
            pass
    return instance_with_domain(name)


def split_instance_name(name: str) -> tuple[str, str]:
    """'Office\\.1._ipp._tcp.local' -> ('Office.1', '_ipp._tcp.local')."""
    labels = split_name(name)
    if len(labels) < 2:
        return (labels[0] if labels else name), ""
    return labels[0], join_name(*(escape_label(label) for label in labels[1:]))


def _scoped(entry: CacheEntry) -> Address:
    record = entry.record
    if isinstance(record, AAAARecord):
        addr = record.address
        if addr.is_link_local and addr.scope_id is None and entry.interface:
            return ipaddress.IPv6Address(f"{addr}%{entry.interface}")
        return addr
    assert isinstance(record, ARecord)
    return record.address


def addresses_for(
    cache: RecordCache, host: str, now: float, interface: int | None = None
) -> list[Address]:
    """Every live address of a host, IPv4 first, in arrival order, without duplicates; with
    ``interface``, only those received on it (a ServiceInfo's: see build_service_info).

    An address that said goodbye is listed until the cache deletes it, one second later (RFC
    6762 §10.1: another responder may rescue it until then). The SRV and TXT records below are
    read the same way."""
    seen: dict[Address, None] = {}
    for rtype in (RecordType.A, RecordType.AAAA):
        for entry in cache.entries(host, rtype, now):
            if interface is None or entry.interface == interface:
                seen.setdefault(_scoped(entry), None)
    return list(seen)


def _left(entry: CacheEntry, now: float) -> float:
    """Seconds of TTL left; none for one that said goodbye (it lives its last second only
    for another responder to rescue it, RFC 6762 §10.1)."""
    return 0.0 if entry.goodbye else entry.expires - now


def is_root(name: str) -> bool:
    """The root name, as the parser gives it ('') or as people write it ('.')."""
    return name in ("", ".")


def _best_srv(entries: list[CacheEntry], ptr: CacheEntry | None = None) -> CacheEntry | None:
    """The SRV record a ServiceInfo is built from. Records heard on one link say nothing about
    another (RFC 6762 §14), so it comes from one interface: the one the instance's first PTR
    record (``ptr``, as browse and watch pass it) came from if an SRV record came from there
    too, else the one of the SRV record filed first (the cache lists them in order of first
    reception). Both stay put while the link's records are refreshed, so a watch does not swap
    two devices of one name on two links: the PTR record keeps its place when its device
    changes its port or host (a new SRV record, filed after the other link's). On that
    interface: the lowest priority, then the highest weight, then the newest (a new target
    replaces the old one at once, as a responder's flush means it to). Goodbyes count, for
    their last second, as everywhere: a rescue leaves the choice as it was. A link whose
    best SRV record says "decidedly not available" (the root, RFC 2782) is passed over for
    one whose device is there; with none, that record is the answer."""
    live = [e for e in entries if isinstance(e.record, SRVRecord)]
    if not live:
        return None

    def rank(e: CacheEntry) -> tuple[int, int, float]:
        rec = e.record
        assert isinstance(rec, SRVRecord)
        return (rec.priority, -rec.weight, -e.received)

    best: dict[int, CacheEntry] = {}  # interface -> its best, in order of first reception
    for e in live:
        held = best.get(e.interface)
        if held is None or rank(e) < rank(held):
            best[e.interface] = e
    there = []  # the links whose device is there
    for e in best.values():
        rec = e.record
        assert isinstance(rec, SRVRecord)
        if not is_root(rec.target):
            there.append(e)
    if not there:
        return next(iter(best.values()))
    if ptr is not None:
        for e in there:
            if e.interface == ptr.interface:
                return e
    return there[0]


def srv_unavailable(entries: list[CacheEntry]) -> bool:
    """Whether the best of an instance's SRV records (as build_service_info picks it without a
    PTR record) has the root as its target: RFC 2782, "the service is decidedly not available
    at this domain". Nothing more about such an instance is worth asking, and it has no
    ServiceInfo."""
    best = _best_srv(entries)
    if best is None:
        return False
    record = best.record
    assert isinstance(record, SRVRecord)
    return is_root(record.target)


def service_unavailable(cache: RecordCache, name: str, now: float) -> bool:
    """srv_unavailable, for the SRV records the cache holds for instance ``name``."""
    return srv_unavailable(cache.entries(name, RecordType.SRV, now))


def denies_txt(entry: CacheEntry) -> bool:
    """Whether ``entry`` is an NSEC record that does not list TXT: its responder says the
    instance has no TXT record (RFC 6762 §6.1), which RFC 6763 §6.1 has clients treat as the
    empty one."""
    record = entry.record
    return isinstance(record, NSECRecord) and not record.has_type(RecordType.TXT)


def txt_denial(cache: RecordCache, name: str, now: float, interface: int) -> CacheEntry | None:
    """An NSEC record of ``name`` heard on ``interface`` that denies TXT (denies_txt); None if
    there is none."""
    for entry in cache.entries(name, RecordType.NSEC, now):
        if entry.interface == interface and denies_txt(entry):
            return entry
    return None


def build_service_info(
    cache: RecordCache, name: str, now: float, ptr: CacheEntry | None = None
) -> ServiceInfo | None:
    """Assemble what the cache knows about an instance; None until its SRV record is known,
    and None while that record's target is the root (service_unavailable).

    Read from one interface, the SRV record's (_best_srv, which ``ptr``, the instance's first
    PTR entry, helps choose): its TXT record and its host's addresses only as received there.
    Two devices of one name on two links used to make one info of both (the host and port of
    one, the TXT of the other, the addresses of both)."""
    srv_entry = _best_srv(cache.entries(name, RecordType.SRV, now), ptr)
    if srv_entry is None:
        return None
    srv = srv_entry.record
    assert isinstance(srv, SRVRecord)
    if is_root(srv.target):
        log.debug("%s: not available (its SRV record's target is the root, RFC 2782)", name)
        return None
    link = srv_entry.interface
    txt_entries = [e for e in cache.entries(name, RecordType.TXT, now) if e.interface == link]
    txt: dict[str, bytes | None] = {}
    remaining = [_left(srv_entry, now)]
    has_txt = bool(txt_entries)
    if txt_entries:
        newest = max(txt_entries, key=lambda e: e.received)
        record = newest.record
        assert isinstance(record, TXTRecord)
        txt = dict(record.properties)
        remaining.append(_left(newest, now))
    else:
        denial = txt_denial(cache, name, now, link)
        if denial is not None:  # no TXT record: as the empty one
            has_txt = True
            remaining.append(_left(denial, now))
    if ptr is not None and ptr.interface == link:
        remaining.append(_left(ptr, now))
    instance, stype = split_instance_name(srv.name)
    return ServiceInfo(
        name=srv.name,
        instance=instance,
        type=stype,
        host=srv.target,
        port=srv.port,
        priority=srv.priority,
        weight=srv.weight,
        addresses=tuple(addresses_for(cache, srv.target, now, link)),
        txt=txt,
        interface=link or None,
        ttl=max(0, int(min(remaining) + 0.5)),  # the nearest second, as query() gives
        _has_txt=has_txt,
    )
