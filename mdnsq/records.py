"""The objects a DNS message is made of: RecordType, Question, the record classes, Message.

Goals:
- Cheap to build in bulk: the parser makes every one of these per packet, so each is a tuple
  subclass with no per-instance dict. The parser builds them with one ``tuple.__new__`` call (no
  validation: what it read off the wire is already valid); the keyword constructors are for
  people and validate their input.
- Immutable and hashable, so records can be set members and cache keys. Equality and hash ignore
  the TTL and the ASCII case of the owner name (RFC 4343), which is what a cache and duplicate
  suppression need.
- Own their data: a record holds str, int and bytes only, never a view into a receive buffer.

Layout: every record tuple starts ``(name, rclass, ttl, cache_flush)`` followed by its type's data.
The record type is a class attribute except for UnknownRecord, which stores it. A and AAAA keep the
packed address (``packed``); ``address`` builds the ``ipaddress`` object when asked, which keeps
parsing cheap.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from itertools import compress
from operator import index, itemgetter
from typing import TYPE_CHECKING, Any, TypeVar

from mdnsq.errors import InvalidArgument
from mdnsq.names import name_key, normalize_name

FLAG_QR = 0x8000
FLAG_AA = 0x0400
FLAG_TC = 0x0200

CLASS_IN = 1

_R = TypeVar("_R", bound="Record")


def _make_field(index: int, doc: str) -> Any:
    """A fast read-only accessor for tuple slot ``index`` (C-level when the runtime offers one)."""
    getter: Callable[[int, str], Any] | None = getattr(collections, "_tuplegetter", None)
    if getter is not None:
        return getter(index, doc)
    return property(itemgetter(index), doc=doc)


class RecordType(IntEnum):
    """DNS RR types mDNS uses. Any value 0..65535 is accepted: unknown ones become ``TYPE<n>``."""

    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    HINFO = 13
    TXT = 16
    AAAA = 28
    SRV = 33
    OPT = 41
    NSEC = 47
    # Types no question on a link asks for (the querier refuses them), named so that a refusal
    # and a decoded packet say which: they were "unknown" to `query` and TYPE250 in `decode`.
    TKEY = 249
    TSIG = 250
    IXFR = 251
    AXFR = 252
    MAILB = 253
    MAILA = 254
    ANY = 255

    @classmethod
    def _missing_(cls, value: object) -> RecordType | None:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
            return _pseudo_member(int(value))
        return None

    @classmethod
    def parse(cls, text: str) -> RecordType:
        """``"aaaa"``, ``"TYPE65"`` or ``"28"`` -> RecordType; InvalidArgument (a ValueError)
        for any other text, TypeError for what is not text."""
        if not isinstance(text, str):  # an int here raised AttributeError from .strip()
            raise TypeError(f"a record type's name is a str, not {type(text).__name__}")
        # ASCII only: str.upper() made "ſoa" (long s) SOA and "ﬀ..." two letters.
        word = text.strip().upper() if text.isascii() else ""
        member = cls.__members__.get(word)
        if member is not None:
            return member
        value = _MNEMONICS.get(word)
        if value is not None:
            return cls(value)  # a TYPE<n> member: shown by number, as the parser shows it
        digits = word[4:] if word.startswith("TYPE") else word
        if digits.isdigit() and len(digits) <= 5:  # ASCII: word is
            value = int(digits)
            if value <= 0xFFFF:
                return cls(value)
        raise InvalidArgument(f"not a DNS record type: {text!r}")

    def __str__(self) -> str:
        return self.name


# Other types' mnemonics (IANA's registry) that people type: `mdnsq query host.local MX`.
_MNEMONICS = {
    "MX": 15,
    "RP": 17,
    "AFSDB": 18,
    "LOC": 29,
    "NAPTR": 35,
    "KX": 36,
    "DNAME": 39,
    "SSHFP": 44,
    "RRSIG": 46,
    "DNSKEY": 48,
    "TLSA": 52,
    "SVCB": 64,
    "HTTPS": 65,
    "URI": 256,
    "CAA": 257,
}

# Fast int -> RecordType for the parser (enum call overhead is ~10x a dict lookup). The enum's
# own map, so the TYPE<n> members made so far are found too: a packet of 800 records of an
# unknown type must not pay 800 enum calls (fuzz/adversarial.tiny_records).
_MEMBERS: dict[int, RecordType] = RecordType._value2member_map_  # type: ignore[assignment]
# TYPE<n> members kept in that map, at most: the map lives as long as the process, and every
# value a peer sends would otherwise stay in it (all 65,536: 24 MB, ~0.7 s of enum calls, from
# 80 packets of 817 records, each of a type not seen before). Past the cap a member is made for
# the record (0.3 us) and equal to, but not the same object as, another of its value.
MAX_PSEUDO_MEMBERS = 1024
_pseudo_count = 0


def _pseudo_member(value: int) -> RecordType:
    """The TYPE<n> member for a value no name was declared for, without the Enum call."""
    global _pseudo_count
    member = int.__new__(RecordType, value)
    member._name_ = f"TYPE{value}"
    member._value_ = value
    if _pseudo_count >= MAX_PSEUDO_MEMBERS:
        return member
    kept = _MEMBERS.setdefault(value, member)
    if kept is member:
        _pseudo_count += 1  # a lost race between threads only lets the count run short
    return kept


def record_type(value: int) -> RecordType:
    """RecordType for a wire value, without the Enum call."""
    found = _MEMBERS.get(value)
    if found is None:
        if not 0 <= value <= 0xFFFF:
            raise InvalidArgument(f"not a DNS record type: {value}")
        return _pseudo_member(value)
    return found


def _whole(value: int, what: str) -> int:
    """An integer field: int() turned "http" into a ValueError and 120.7 into 120."""
    try:
        return index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(value).__name__}") from None


def _bytes(value: bytes, what: str) -> bytes:
    """A bytes field: bytes(5) is five NUL bytes, and HINFO cpu=3 became three of them."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    return bytes(value)


def _address(kind: type[IPv4Address] | type[IPv6Address], value: Any) -> bytes:
    try:
        return kind(value).packed
    except ValueError as exc:  # AddressValueError: a value, not its kind, is wrong
        raise InvalidArgument(str(exc)) from None


def _check_u16(value: int, what: str) -> int:
    value = _whole(value, what)
    if not 0 <= value <= 0xFFFF:
        raise InvalidArgument(f"{what} must be 0..65535, got {value}")
    return value


def _check_class(rclass: int) -> int:
    rclass = _whole(rclass, "rclass")
    if not 0 <= rclass <= 0x7FFF:
        raise InvalidArgument(
            f"rclass must be 0..32767 (the top bit is the QU / cache-flush bit), got {rclass}"
        )
    return rclass


# RFC 2181 §8: a TTL is 0..2**31-1, and one with the top bit set is read as 0 (mdnsq's parser
# does so too), so a record is not built with one. OPT (41) is exempt: its "TTL" is extended
# RCODE, version and flags (RFC 6891), all 32 bits of the field.
_MAX_TTL = 0x7FFFFFFF
_OPT = 41


def _check_ttl(ttl: int, limit: int = _MAX_TTL) -> int:
    ttl = _whole(ttl, "ttl")
    if not 0 <= ttl <= limit:
        raise InvalidArgument(f"ttl must be 0..{limit} (RFC 2181 §8), got {ttl}")
    return ttl


def _rebuild(cls: type[Any], items: tuple[Any, ...]) -> Any:
    return tuple.__new__(cls, items)


class _Tuple(tuple[Any, ...]):
    """Base of the codec's tuples: pickles them by their fields (tuple's own pickling would
    call ``__new__`` with one positional tuple, which the keyword constructors refuse), and
    gives them no order (below)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.__class__, tuple(self)))

    # No order: tuple's compared the fields by position, TTL included, while equality leaves
    # the TTL and the name's case out (two equal records were each less than the other), and
    # raised on the bytes of one type against the int of another. Sort by a key instead.
    # Raised, not NotImplemented, which let a plain tuple on the other side compare.
    def __lt__(self, other: object) -> bool:
        raise _unordered(self, other, "<")

    def __le__(self, other: object) -> bool:
        raise _unordered(self, other, "<=")

    def __gt__(self, other: object) -> bool:
        raise _unordered(self, other, ">")

    def __ge__(self, other: object) -> bool:
        raise _unordered(self, other, ">=")


def _unordered(left: object, right: object, op: str) -> TypeError:
    return TypeError(
        f"'{op}' not supported between {type(left).__name__} and {type(right).__name__}: "
        "records, questions and messages have no order (sort by a key, e.g. r.key)"
    )


class Question(_Tuple):
    """One question: name, type, class and the QU ("unicast response wanted") bit."""

    __slots__ = ()

    if TYPE_CHECKING:
        name: str
        type: RecordType
        rclass: int
        unicast_response: bool
    else:
        name = _make_field(0, "owner name (text form)")
        type = _make_field(1, "RecordType asked for")
        rclass = _make_field(2, "class without the QU bit")
        unicast_response = _make_field(3, "QU bit (RFC 6762 §5.4)")

    def __new__(
        cls, name: str, type: int, rclass: int = CLASS_IN, unicast_response: bool = False
    ) -> Question:
        return tuple.__new__(
            cls,
            (
                normalize_name(name),
                record_type(_check_u16(type, "type")),
                _check_class(rclass),
                bool(unicast_response),
            ),
        )

    @property
    def key(self) -> tuple[str, int, int]:
        """(name_key(name), type, rclass): what it asks for, whatever the name's case."""
        return (name_key(self[0]), self[1], self[2])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return False  # also against plain tuples, which would otherwise compare by value
        assert isinstance(other, Question)
        return self[1:] == other[1:] and (
            self[0] == other[0] or name_key(self[0]) == name_key(other[0])
        )

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((name_key(self[0]), *self[1:]))

    def __repr__(self) -> str:
        qu = ", unicast_response=True" if self[3] else ""
        cls = "" if self[2] == CLASS_IN else f", rclass={self[2]}"
        return f"Question({self[0]!r}, {self[1].name}{cls}{qu})"


class Record(_Tuple):
    """Common base of all resource records (for isinstance and typing)."""

    __slots__ = ()
    _data_names: tuple[str, ...] = ()

    if TYPE_CHECKING:
        name: str
        type: RecordType
        rclass: int
        ttl: int
        cache_flush: bool
    else:
        name = _make_field(0, "owner name (text form)")
        rclass = _make_field(1, "class without the cache-flush bit")
        ttl = _make_field(2, "time to live, seconds")
        cache_flush = _make_field(3, "cache-flush bit (RFC 6762 §10.2)")

    @property
    def key(self) -> tuple[str, int, int]:
        """What a cache files this record under: (name_key(name), type, rclass)."""
        return (name_key(self[0]), self.type, self[1])

    def with_ttl(self: _R, ttl: int) -> _R:
        """The same record with another TTL (e.g. the remaining TTL of a known answer)."""
        limit = 0xFFFFFFFF if self.type == _OPT else _MAX_TTL
        return tuple.__new__(
            self.__class__, (self[0], self[1], _check_ttl(ttl, limit), self[3], *self[4:])
        )

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return False  # also against plain tuples, which would otherwise compare by value
        assert isinstance(other, Record)
        return (
            self[4:] == other[4:]
            and self[1] == other[1]
            and (self[0] == other[0] or name_key(self[0]) == name_key(other[0]))
        )

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.__class__, name_key(self[0]), self[1], *self[4:]))

    def _data_repr(self) -> str:
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in self._data_names)

    def __repr__(self) -> str:
        extra = ""
        if self[1] != CLASS_IN:
            extra += f", rclass={self[1]}"
        if self[3]:
            extra += ", cache_flush=True"
        cls = self.__class__.__name__
        return f"{cls}(name={self[0]!r}, ttl={self[2]}, {self._data_repr()}{extra})"


def _head(
    name: str, ttl: int, rclass: int, cache_flush: bool, max_ttl: int = _MAX_TTL
) -> tuple[str, int, int, bool]:
    return (
        normalize_name(name),
        _check_class(rclass),
        _check_ttl(ttl, max_ttl),
        bool(cache_flush),
    )


class ARecord(Record):
    """An IPv4 address (RFC 1035). Kept packed, as on the wire: an ipaddress object is made
    only when ``address`` is read."""

    __slots__ = ()
    type = RecordType.A
    _data_names = ("address",)

    if TYPE_CHECKING:
        packed: bytes
    else:
        packed = _make_field(4, "the address as 4 bytes")

    def __new__(
        cls,
        *,
        name: str,
        ttl: int,
        address: IPv4Address | str | bytes | int,
        rclass: int = CLASS_IN,
        cache_flush: bool = False,
    ) -> ARecord:
        return tuple.__new__(
            cls, (*_head(name, ttl, rclass, cache_flush), _address(IPv4Address, address))
        )

    @property
    def address(self) -> IPv4Address:
        """A new IPv4Address at each read (records keep the packed bytes)."""
        return IPv4Address(self[4])


class AAAARecord(Record):
    """An IPv6 address (RFC 3596), kept packed as ARecord keeps its address. A link-local
    address has no scope here: ServiceInfo adds the interface it was heard on."""

    __slots__ = ()
    type = RecordType.AAAA
    _data_names = ("address",)

    if TYPE_CHECKING:
        packed: bytes
    else:
        packed = _make_field(4, "the address as 16 bytes")

    def __new__(
        cls,
        *,
        name: str,
        ttl: int,
        address: IPv6Address | str | bytes | int,
        rclass: int = CLASS_IN,
        cache_flush: bool = False,
    ) -> AAAARecord:
        return tuple.__new__(
            cls, (*_head(name, ttl, rclass, cache_flush), _address(IPv6Address, address))
        )

    @property
    def address(self) -> IPv6Address:
        """A new IPv6Address at each read, without a scope."""
        return IPv6Address(self[4])


class PTRRecord(Record):
    """A pointer: in DNS-SD, from a service type to one of its instances (RFC 6763 §4.1)."""

    __slots__ = ()
    type = RecordType.PTR
    _data_names = ("target",)

    if TYPE_CHECKING:
        target: str
    else:
        target = _make_field(4, "the name pointed to")

    def __new__(
        cls, *, name: str, ttl: int, target: str, rclass: int = CLASS_IN, cache_flush: bool = False
    ) -> PTRRecord:
        return tuple.__new__(cls, (*_head(name, ttl, rclass, cache_flush), normalize_name(target)))


class CNAMERecord(Record):
    """An alias (RFC 1035); mDNS queriers rarely meet one, but a cache must keep it apart."""

    __slots__ = ()
    type = RecordType.CNAME
    _data_names = ("target",)

    if TYPE_CHECKING:
        target: str
    else:
        target = _make_field(4, "the canonical name")

    def __new__(
        cls, *, name: str, ttl: int, target: str, rclass: int = CLASS_IN, cache_flush: bool = False
    ) -> CNAMERecord:
        return tuple.__new__(cls, (*_head(name, ttl, rclass, cache_flush), normalize_name(target)))


class SRVRecord(Record):
    """Where a service instance runs (RFC 2782): the host's name and port, and the priority
    and weight that choose among several."""

    __slots__ = ()
    type = RecordType.SRV
    _data_names = ("priority", "weight", "port", "target")

    if TYPE_CHECKING:
        priority: int
        weight: int
        port: int
        target: str
    else:
        priority = _make_field(4, "lower is preferred")
        weight = _make_field(5, "share among equal priorities")
        port = _make_field(6, "TCP/UDP port of the service")
        target = _make_field(7, "host name that offers it")

    def __new__(
        cls,
        *,
        name: str,
        ttl: int,
        priority: int,
        weight: int,
        port: int,
        target: str,
        rclass: int = CLASS_IN,
        cache_flush: bool = False,
    ) -> SRVRecord:
        return tuple.__new__(
            cls,
            (
                *_head(name, ttl, rclass, cache_flush),
                _check_u16(priority, "priority"),
                _check_u16(weight, "weight"),
                _check_u16(port, "port"),
                normalize_name(target),
            ),
        )


def txt_properties(strings: Iterable[bytes]) -> dict[str, bytes | None]:
    """RFC 6763 §6.3-6.5: key=value pairs; keys case-insensitive, first wins, bare key -> None."""
    props: dict[str, bytes | None] = {}
    for item in strings:
        if not item or item[0] == 0x3D:  # empty string, or "=value" with no key: ignored (§6.4)
            continue
        key, sep, value = item.partition(b"=")
        if key.isascii():
            text = key.decode("ascii").lower()
        else:
            # §6.4 asks for printable US-ASCII keys; devices send UTF-8 too. UTF-8, bytes that
            # are not UTF-8 kept as surrogate escapes (as ServiceInfo.instance keeps them: no
            # text stands for two keys), case folded in ASCII only. Decoded as ASCII with
            # "replace", "é" and "è" were one key, and the second was dropped.
            text = name_key(key.decode("utf-8", "surrogateescape"))
        if text not in props:
            props[text] = value if sep else None
    return props


def split_strings(rdata: bytes) -> tuple[bytes, ...]:
    """The character-strings of a TXT RDATA that the parser already checked."""
    strings = []
    pos = 0
    end = len(rdata)
    while pos < end:
        first = pos + 1
        pos = first + rdata[pos]
        strings.append(rdata[first:pos])
    return tuple(strings)


class TXTRecord(Record):
    """TXT record. It keeps the RDATA as on the wire (checked, owned bytes) and splits it into
    strings when asked: most TXT records are cached and compared far more often than read."""

    __slots__ = ()
    type = RecordType.TXT
    _data_names = ("strings",)

    if TYPE_CHECKING:
        rdata: bytes
    else:
        rdata = _make_field(4, "the RDATA: length-prefixed character-strings")

    def __new__(
        cls,
        *,
        name: str,
        ttl: int,
        strings: Iterable[bytes],
        rclass: int = CLASS_IN,
        cache_flush: bool = False,
    ) -> TXTRecord:
        if isinstance(strings, (bytes, bytearray, memoryview, str)):
            # One value where a list of them belongs: iterating bytes gives ints.
            raise TypeError("strings must be an iterable of bytes values, not one value")
        rdata = bytearray()
        for item in strings:
            item = _bytes(item, "a TXT string")
            if len(item) > 255:
                raise InvalidArgument("a TXT character-string is at most 255 bytes")
            rdata.append(len(item))
            rdata += item
        return tuple.__new__(cls, (*_head(name, ttl, rclass, cache_flush), bytes(rdata)))

    @property
    def strings(self) -> tuple[bytes, ...]:
        """The character-strings, split from the RDATA at each read (not cached)."""
        return split_strings(self[4])

    @property
    def properties(self) -> Mapping[str, bytes | None]:
        """The DNS-SD key/value pairs (RFC 6763 §6): a key without '=' maps to None, the
        first of equal keys wins."""
        return txt_properties(split_strings(self[4]))


class HINFORecord(Record):
    """Host information (RFC 1035): CPU and operating system, as bytes (no encoding is
    promised)."""

    __slots__ = ()
    type = RecordType.HINFO
    _data_names = ("cpu", "os")

    if TYPE_CHECKING:
        cpu: bytes
        os: bytes
    else:
        cpu = _make_field(4, "CPU type")
        os = _make_field(5, "operating system")

    def __new__(
        cls,
        *,
        name: str,
        ttl: int,
        cpu: bytes,
        os: bytes,
        rclass: int = CLASS_IN,
        cache_flush: bool = False,
    ) -> HINFORecord:
        cpu, os = _bytes(cpu, "cpu"), _bytes(os, "os")
        if len(cpu) > 255 or len(os) > 255:
            raise InvalidArgument("HINFO strings are at most 255 bytes")
        return tuple.__new__(cls, (*_head(name, ttl, rclass, cache_flush), cpu, os))


# NSEC type bitmaps decoded (bitmap -> types): a memo of a pure function, shared by all threads
# (a lost entry costs only a decode), cleared when full. Honest bitmaps are a handful of values
# ("no A", "no AAAA"); 64 full ones (256 types each) hold about 0.6 MB.
_TYPES: dict[bytes, frozenset[int]] = {}
_MAX_TYPES = 64
# "0" and "1" to the bytes 0 and 1: a bitmap's bits, written out by format(), as selectors.
_ZERO_ONE = bytes.maketrans(b"01", b"\x00\x01")


def bitmap_windows(bitmap: bytes) -> Iterator[tuple[int, bytes]]:
    """(window number, its bits) of a well-formed type bitmap, in the order written."""
    at = 0
    while at < len(bitmap):
        size = bitmap[at + 1]
        yield bitmap[at], bitmap[at + 2 : at + 2 + size]
        at += 2 + size


def bitmap_types(bitmap: bytes) -> frozenset[int]:
    """The types of a well-formed RFC 4034 §4.1.2 type bitmap. In C passes (the bits, written
    out as bytes of 0 or 1, pick the types out of a range) and remembered: a step per bit in
    Python cost 4.5 ms for a packet of full bitmaps (fuzz/adversarial.full_nsec_bitmaps)."""
    types = _TYPES.get(bitmap)
    if types is not None:
        return types
    found: list[int] = []
    for window, bits in bitmap_windows(bitmap):
        first, size = window << 8, 8 * len(bits)
        ones = format(int.from_bytes(bits, "big"), f"0{size}b").encode().translate(_ZERO_ONE)
        found.extend(compress(range(first, first + size), ones))
    types = frozenset(found)
    if len(_TYPES) >= _MAX_TYPES:
        _TYPES.clear()
    _TYPES[bitmap] = types
    return types


def type_bitmap(types: Iterable[int]) -> bytes:
    """The canonical RFC 4034 §4.1.2 bitmap of ``types``. Equal type sets give equal bitmaps,
    so NSEC records compare by their bitmap bytes."""
    windows: dict[int, int] = {}
    for t in types:
        window, low = divmod(t, 256)
        windows[window] = windows.get(window, 0) | 1 << (255 - low)
    return windows_bitmap(windows)


def windows_bitmap(windows: dict[int, int]) -> bytes:
    """The canonical bitmap of window number -> its 256 bits as an int (type 0 of a window
    the top bit): windows in increasing order, none empty, no trailing zero bytes."""
    out = []
    for window in sorted(windows):
        bits = windows[window].to_bytes(32, "big").rstrip(b"\x00")
        if bits:
            out.append(bytes((window, len(bits))) + bits)
    return b"".join(out)


class NSECRecord(Record):
    """A negative answer (RFC 6762 §6.1): the types that exist for ``name``, so a querier knows
    that the others do not. Holds the canonical type bitmap; ``types`` decodes it when asked,
    which keeps the parse of a bitmap of 65,536 types to a check and a copy."""

    __slots__ = ()
    type = RecordType.NSEC
    _data_names = ("next_name", "types")

    if TYPE_CHECKING:
        next_name: str
        bitmap: bytes
    else:
        next_name = _make_field(4, "next owner name (mDNS: the record's own name)")
        bitmap = _make_field(5, "the type bitmap, canonical (see type_bitmap)")

    def __new__(
        cls,
        *,
        name: str,
        ttl: int,
        next_name: str,
        types: Iterable[int],
        rclass: int = CLASS_IN,
        cache_flush: bool = False,
    ) -> NSECRecord:
        bitmap = type_bitmap([_check_u16(t, "type") for t in types])
        return tuple.__new__(
            cls, (*_head(name, ttl, rclass, cache_flush), normalize_name(next_name), bitmap)
        )

    @property
    def types(self) -> frozenset[int]:
        """The types that exist for this name."""
        return bitmap_types(self[5])

    def has_type(self, rtype: int) -> bool:
        """``rtype in self.types`` without decoding the bitmap: a step per window before
        ``rtype``'s, so none for the address types (window 0), however many types it lists."""
        # Not bitmap_windows(): no slice per window, as the address check is made per wake-up.
        bitmap = self[5]
        window, low = divmod(int(rtype), 256)
        at = 0
        while at < len(bitmap):
            if bitmap[at] >= window:
                if bitmap[at] > window or low >> 3 >= bitmap[at + 1]:
                    return False
                return bool(bitmap[at + 2 + (low >> 3)] & 0x80 >> (low & 7))
            at += 2 + bitmap[at + 1]
        return False

    def _data_repr(self) -> str:
        names = ", ".join(sorted(str(record_type(t)) for t in self.types))
        return f"next_name={self[4]!r}, types={{{names}}}"


# The types the parser decodes into their own record classes (A, CNAME, HINFO, PTR, TXT, AAAA,
# SRV, NSEC), in any class.
_DECODED_TYPES = frozenset((1, 5, 12, 13, 16, 28, 33, 47))


class UnknownRecord(Record):
    """Any type mdnsq does not decode: the RDATA bytes as they were on the wire, except that the
    parser writes out in full the names a sender compressed in the RDATA of NS, SOA, MX and the
    other types whose layout it knows (RFC 3597 §4), so the bytes hold no pointer."""

    __slots__ = ()
    _data_names = ("type", "rdata")

    if TYPE_CHECKING:
        rdata: bytes
    else:
        type = _make_field(4, "RecordType (possibly a TYPE<n> pseudo-member)")
        rdata = _make_field(5, "raw RDATA")

    def __new__(
        cls,
        *,
        name: str,
        ttl: int,
        type: int,
        rdata: bytes,
        rclass: int = CLASS_IN,
        cache_flush: bool = False,
    ) -> UnknownRecord:
        rtype = record_type(_check_u16(type, "type"))
        if rtype in _DECODED_TYPES:
            # Sent, it would come back as that class's record, unequal to this one (or be
            # skipped by the receiver, RDATA unchecked here): build that record instead.
            raise InvalidArgument(f"type {rtype.name} has its own record class")
        max_ttl = 0xFFFFFFFF if rtype == _OPT else _MAX_TTL
        head = _head(name, ttl, rclass, cache_flush, max_ttl)
        return tuple.__new__(cls, (*head, rtype, _bytes(rdata, "rdata")))


class Message(_Tuple):
    """A whole DNS message. ``skipped`` counts records (and questions) the parser dropped as
    malformed."""

    __slots__ = ()

    if TYPE_CHECKING:
        id: int
        flags: int
        questions: tuple[Question, ...]
        answers: tuple[Record, ...]
        authorities: tuple[Record, ...]
        additionals: tuple[Record, ...]
        skipped: int
    else:
        id = _make_field(0, "message ID (0 for multicast)")
        flags = _make_field(1, "the 16 flag bits of the header")
        questions = _make_field(2, "Question tuple")
        answers = _make_field(3, "answer section")
        authorities = _make_field(4, "authority section (probes put proposed records here)")
        additionals = _make_field(5, "additional section")
        skipped = _make_field(6, "records and questions dropped as malformed while parsing")

    def __new__(
        cls,
        id: int = 0,
        flags: int = 0,
        questions: Iterable[Question] = (),
        answers: Iterable[Record] = (),
        authorities: Iterable[Record] = (),
        additionals: Iterable[Record] = (),
        skipped: int = 0,
    ) -> Message:
        return tuple.__new__(
            cls,
            (
                _check_u16(id, "id"),
                _check_u16(flags, "flags"),
                tuple(questions),
                tuple(answers),
                tuple(authorities),
                tuple(additionals),
                int(skipped),
            ),
        )

    @property
    def is_response(self) -> bool:
        """The QR bit: a response (else a query, whose records are known answers)."""
        return bool(self[1] & FLAG_QR)

    @property
    def opcode(self) -> int:
        """The header's opcode; mDNS messages with any but 0 are ignored (RFC 6762 §18.3)."""
        return int((self[1] >> 11) & 0xF)

    @property
    def rcode(self) -> int:
        """The header's response code; mDNS responses with any but 0 are ignored (§18.11)."""
        return int(self[1] & 0xF)

    @property
    def truncated(self) -> bool:
        """The TC bit: in a query, more known answers follow in the next packets (§7.2)."""
        return bool(self[1] & FLAG_TC)

    @property
    def authoritative(self) -> bool:
        """The AA bit, which mDNS responses set (RFC 6762 §18.4); not checked on receipt."""
        return bool(self[1] & FLAG_AA)

    @property
    def records(self) -> tuple[Record, ...]:
        """answers + authorities + additionals."""
        result: tuple[Record, ...] = self[3] + self[4] + self[5]
        return result

    def __repr__(self) -> str:
        return (
            f"Message(id={self[0]}, flags={self[1]:#06x}, questions={self[2]!r}, "
            f"answers={self[3]!r}, authorities={self[4]!r}, additionals={self[5]!r}, "
            f"skipped={self[6]})"
        )
