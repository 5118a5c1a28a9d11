"""The properties every fuzz input is checked against (no atheris here, so tests can replay them).

1. Only MalformedPacket escapes parse_message, and never the parser's catch-all ("unreadable
   packet (...)"), which exists only to contain a parser bug: seeing it *is* a bug.
2. Round trip, for everything that parsed: m1 = parse(data); w1 = encode(m1); m2 = parse(w1).
   Stable means
   - encode(m1) succeeds, or fails only with the documented ValueError for a message that would
     exceed MAX_PACKET, 8952 bytes (possible: a compressed NSEC next name or a pointer into
     RDATA expands);
   - m2 has nothing skipped, and id, flags, questions and every record of every section are equal
     to m1's *field by field* (stricter than ==, which ignores TTL and name case), except the one
     documented normalisation: a TXT record with no strings is written as one empty string
     (RFC 6763 §6.1);
   - encode(m2) == w1 byte for byte (encoding has reached its fixpoint after one round).
"""

from __future__ import annotations

from typing import Any

from mdnsq.errors import MalformedPacket
from mdnsq.parser import parse_message
from mdnsq.records import Message, TXTRecord
from mdnsq.writer import MAX_PACKET, encode_message

CATCH_ALL = "unreadable packet ("

MALFORMED = "malformed"
PARSED = "parsed"
TOO_BIG = "too_big"


class PropertyViolation(AssertionError):
    """A fuzz input broke one of the properties above."""


# The public data attributes of each record class (the contract in the team brief), so the
# check does not depend on how a record is laid out inside.
_DATA = {
    "ARecord": ("address",),
    "AAAARecord": ("address",),
    "PTRRecord": ("target",),
    "CNAMERecord": ("target",),
    "SRVRecord": ("priority", "weight", "port", "target"),
    "TXTRecord": ("strings",),
    "HINFORecord": ("cpu", "os"),
    "NSECRecord": ("next_name", "types"),
    "UnknownRecord": ("rdata",),
}


def _canon_record(record: Any) -> tuple[Any, ...]:
    kind = type(record).__name__
    head = (kind, record.name, int(record.type), record.rclass, record.ttl, record.cache_flush)
    data = tuple(getattr(record, attr) for attr in _DATA[kind])
    if isinstance(record, TXTRecord) and not data[0]:
        data = ((b"",),)
    return head + data


def canon(message: Message) -> tuple[Any, ...]:
    """Everything a round trip must keep, with exact names and TTLs."""
    return (
        message.id,
        message.flags,
        tuple((q.name, int(q.type), q.rclass, q.unicast_response) for q in message.questions),
        tuple(_canon_record(r) for r in message.answers),
        tuple(_canon_record(r) for r in message.authorities),
        tuple(_canon_record(r) for r in message.additionals),
    )


def check(data: bytes) -> str:
    """Check one input; returns MALFORMED, PARSED or TOO_BIG, raises PropertyViolation."""
    try:
        first = parse_message(data)
    except MalformedPacket as exc:
        if str(exc.reason).startswith(CATCH_ALL):
            raise PropertyViolation(f"parser bug caught by its catch-all: {exc}") from exc
        return MALFORMED
    try:
        wire = encode_message(first)
    except ValueError as exc:
        if f"more than {MAX_PACKET}" in str(exc):
            return TOO_BIG
        raise PropertyViolation(f"encode_message refused a parsed message: {exc!r}") from exc
    try:
        second = parse_message(wire)
    except MalformedPacket as exc:
        raise PropertyViolation(f"our own encoding does not parse: {exc}") from exc
    if second.skipped:
        raise PropertyViolation(f"our own encoding has {second.skipped} unreadable records")
    if canon(second) != canon(first):
        raise PropertyViolation(f"round trip changed the message:\n{first!r}\n{second!r}")
    again = encode_message(second)
    if again != wire:
        raise PropertyViolation("encoding is not a fixpoint after one round trip")
    return PARSED
