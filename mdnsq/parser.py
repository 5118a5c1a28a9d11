"""Wire bytes -> Message, reading a memoryview in place.

Operations: ``parse_message(data)`` for any bytes-like object, e.g. a memoryview over a pooled
receive buffer. The result owns everything it holds (str, int, bytes, tuples), so the caller may
zero and reuse the buffer as soon as the call returns.

Goals, in order:
1. Any input is safe. The header or a question that cannot be read raises MalformedPacket, nothing
   else. A record whose RDATA is bad is skipped and counted in ``Message.skipped``; parsing resumes
   at the next record by RDLENGTH. A record whose header is cut off ends the parse (counted) and
   keeps what was read.
2. Bounded work: every name is at most 255 wire bytes, 128 labels and ``_MAX_HOPS`` compression
   pointers, so a name costs O(1) and a packet of n bytes holds at most n/2 names: work is linear
   in the packet. Header counts are only loop bounds (each iteration consumes bytes), never an
   allocation size.
3. Real devices: compression pointers may point forward (RFC 6762 §18.14 allows compressed NSEC
   next-names, and some stacks point anywhere in the packet); only "inside the packet" is required.
4. Speed: one pass, struct.unpack_from on the view, a per-packet cache of names by offset so a
   shared suffix (".local", "_http._tcp.local") is decoded once, records built with one
   tuple.__new__ each.

Not measured yet: packets with hundreds of distinct non-ASCII names (the slow escaping path).
"""

from __future__ import annotations

from struct import Struct
from struct import error as StructError
from typing import Any

from mdnsq.errors import MalformedPacket
from mdnsq.names import MAX_LABELS, MAX_NAME_WIRE, escape_label, escape_label_bytes
from mdnsq.records import (
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    Record,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    record_type,
)

__all__ = ["parse_message"]

_MAX_HOPS = 126  # compression pointers followed for one name; plenty for any honest packet

_HEADER = Struct("!6H").unpack_from
_RR_HEADER = Struct("!HHIH").unpack_from
_QUESTION_TAIL = Struct("!HH").unpack_from
_SRV_HEAD = Struct("!HHH").unpack_from

_new = tuple.__new__

_T_A = 1
_T_CNAME = 5
_T_PTR = 12
_T_HINFO = 13
_T_TXT = 16
_T_AAAA = 28
_T_SRV = 33
_T_NSEC = 47


class _Bad(Exception):
    """Internal: this name / record cannot be read. Never escapes the module."""


# Types whose record is built as (head..., name) from a single name in RDATA.
_NAME_RDATA: dict[int, type[Record]] = {_T_PTR: PTRRecord, _T_CNAME: CNAMERecord}


def _read_name(
    view: memoryview, pos: int, limit: int, end: int, cache: dict[int, tuple[str, int, int]]
) -> tuple[str, int]:
    """Decode the name at ``pos``; return (text, offset after it in place).

    ``limit`` bounds the labels read in place (the RDATA end for names in RDATA); after a
    compression pointer the bound is the packet end. ``cache`` maps an offset to (text, wire
    length, label count) of a name already decoded from there.
    """
    labels: list[str] = []
    start = pos
    after = -1
    wire = 1  # the root label
    hops = 0
    while True:
        if pos >= limit:
            raise _Bad("name runs past its bounds")
        length = view[pos]
        if length == 0:
            if after < 0:
                after = pos + 1
            text = ".".join(labels)
            break
        if length < 0x40:
            first = pos + 1
            pos = first + length
            if pos > limit:
                raise _Bad("label runs past its bounds")
            wire += length + 1
            if wire > MAX_NAME_WIRE:
                raise _Bad("name longer than 255 bytes")
            try:
                label = str(view[first:pos], "utf-8")
            except UnicodeDecodeError:
                label = escape_label_bytes(bytes(view[first:pos]))
            else:
                if "." in label or "\\" in label:
                    label = escape_label(label)
            labels.append(label)
            if len(labels) > MAX_LABELS:
                raise _Bad("name has more than 128 labels")
            continue
        if length < 0xC0:
            raise _Bad("unknown label type")
        if pos + 1 >= limit:
            raise _Bad("compression pointer cut off")
        target = (length & 0x3F) << 8 | view[pos + 1]
        if after < 0:
            after = pos + 2
        hit = cache.get(target)
        if hit is not None:
            suffix, suffix_wire, suffix_labels = hit
            wire += suffix_wire - 1
            if wire > MAX_NAME_WIRE:
                raise _Bad("name longer than 255 bytes")
            if len(labels) + suffix_labels > MAX_LABELS:
                raise _Bad("name has more than 128 labels")
            if labels:
                text = ".".join(labels)
                if suffix:
                    text = text + "." + suffix
            else:
                text = suffix
            cache[start] = (text, wire, len(labels) + suffix_labels)
            return text, after
        hops += 1
        if hops > _MAX_HOPS:
            raise _Bad("too many compression pointers")
        if target >= end:
            raise _Bad("compression pointer past the end")
        pos = target
        limit = end
    cache[start] = (text, wire, len(labels))
    return text, after


def _read_types(view: memoryview, pos: int, end: int) -> frozenset[int]:
    """NSEC type bitmap (RFC 4034 §4.1.2)."""
    types: list[int] = []
    while pos < end:
        if pos + 2 > end:
            raise _Bad("NSEC window header cut off")
        window = view[pos] << 8
        size = view[pos + 1]
        pos += 2
        if size == 0 or size > 32 or pos + size > end:
            raise _Bad("bad NSEC bitmap length")
        for i in range(size):
            byte = view[pos + i]
            if byte:
                base = window | (i << 3)
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        types.append(base | bit)
        pos += size
    return frozenset(types)


def _read_strings(view: memoryview, pos: int, end: int) -> tuple[bytes, ...]:
    """A run of character-strings filling [pos, end) exactly."""
    strings: list[bytes] = []
    while pos < end:
        first = pos + 1
        pos = first + view[pos]
        if pos > end:
            raise _Bad("character-string overruns RDATA")
        strings.append(bytes(view[first:pos]))
    return tuple(strings)


def parse_message(data: bytes | bytearray | memoryview) -> Message:
    """Parse one DNS message. Raises only MalformedPacket; keeps no reference to ``data``."""
    try:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
    except (TypeError, ValueError) as exc:
        raise MalformedPacket(f"not a readable byte buffer: {exc}") from None
    try:
        return _parse(view)
    except MalformedPacket:
        raise
    except Exception as exc:  # pragma: no cover - even a parser bug escapes as MalformedPacket
        raise MalformedPacket(f"unreadable packet ({exc.__class__.__name__}: {exc})") from None


def _parse(view: memoryview) -> Message:
    end = len(view)
    if end < 12:
        raise MalformedPacket("packet shorter than the 12-byte header", 0)
    ident, flags, qdcount, ancount, nscount, arcount = _HEADER(view, 0)
    cache: dict[int, tuple[str, int, int]] = {}
    pos = 12

    questions: list[Question] = []
    for _ in range(qdcount):
        try:
            name, pos = _read_name(view, pos, end, end, cache)
        except _Bad as exc:
            raise MalformedPacket(f"bad question name: {exc}", pos) from None
        if pos + 4 > end:
            raise MalformedPacket("question cut off", pos)
        qtype, qclass = _QUESTION_TAIL(view, pos)
        pos += 4
        questions.append(
            _new(Question, (name, record_type(qtype), qclass & 0x7FFF, qclass > 0x7FFF))
        )

    sections: tuple[list[Record], list[Record], list[Record]] = ([], [], [])
    skipped = 0
    stop = False
    for section, count in zip(sections, (ancount, nscount, arcount), strict=True):
        append = section.append
        while count and not stop:
            count -= 1
            try:
                name, pos = _read_name(view, pos, end, end, cache)
                rtype, rclass, ttl, rdlength = _RR_HEADER(view, pos)
            except (_Bad, StructError):
                skipped += 1
                stop = True
                break
            start = pos + 10
            pos = start + rdlength
            if pos > end:
                skipped += 1
                stop = True
                break
            head: tuple[Any, ...] = (name, rclass & 0x7FFF, ttl, rclass > 0x7FFF)
            try:
                if rtype in (_T_PTR, _T_CNAME):
                    target, _ = _read_name(view, start, pos, end, cache)
                    record = _new(_NAME_RDATA[rtype], (*head, target))
                elif rtype == _T_SRV:
                    if rdlength < 7:
                        raise _Bad("SRV too short")
                    priority, weight, port = _SRV_HEAD(view, start)
                    target, _ = _read_name(view, start + 6, pos, end, cache)
                    record = _new(SRVRecord, (*head, priority, weight, port, target))
                elif rtype == _T_TXT:
                    record = _new(TXTRecord, (*head, _read_strings(view, start, pos)))
                elif rtype == _T_A:
                    if rdlength != 4:
                        raise _Bad("A record RDATA is not 4 bytes")
                    record = _new(ARecord, (*head, bytes(view[start:pos])))
                elif rtype == _T_AAAA:
                    if rdlength != 16:
                        raise _Bad("AAAA record RDATA is not 16 bytes")
                    record = _new(AAAARecord, (*head, bytes(view[start:pos])))
                elif rtype == _T_NSEC:
                    next_name, after = _read_name(view, start, pos, end, cache)
                    record = _new(NSECRecord, (*head, next_name, _read_types(view, after, pos)))
                elif rtype == _T_HINFO:
                    strings = _read_strings(view, start, pos)
                    if len(strings) != 2:
                        raise _Bad("HINFO needs exactly two strings")
                    record = _new(HINFORecord, (*head, *strings))
                else:
                    record = _new(
                        UnknownRecord, (*head, record_type(rtype), bytes(view[start:pos]))
                    )
            except (_Bad, StructError, IndexError):
                skipped += 1
                continue
            append(record)
        if stop:
            break

    return _new(
        Message,
        (
            ident,
            flags,
            tuple(questions),
            tuple(sections[0]),
            tuple(sections[1]),
            tuple(sections[2]),
            skipped,
        ),
    )
