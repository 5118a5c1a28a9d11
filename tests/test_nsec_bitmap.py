"""NSEC type bitmaps (RFC 4034 §4.1.2): the parser's check, the canonical form it stores, and the
record's decoder (C passes, a memo of bitmaps seen), against a reader that walks every bit."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import adversarial
from mdnsq import NSECRecord, encode_message, parse_message
from mdnsq import records as records_module
from mdnsq.parser import _clear_memos
from mdnsq.records import bitmap_types, type_bitmap

_RR = struct.Struct("!HHIH")
_OWNER = b"\x01h\x05local\x00"


def reference_types(bitmap: bytes) -> frozenset[int] | None:
    """The types of ``bitmap``, bit by bit; None when it is malformed."""
    types = set()
    pos = 0
    while pos < len(bitmap):
        if pos + 2 > len(bitmap):
            return None
        window, size = bitmap[pos], bitmap[pos + 1]
        if not 1 <= size <= 32 or pos + 2 + size > len(bitmap):
            return None
        for i, byte in enumerate(bitmap[pos + 2 : pos + 2 + size]):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(window * 256 + i * 8 + bit)
        pos += 2 + size
    return frozenset(types)


def packet(*bitmaps: bytes) -> bytes:
    """One NSEC record per bitmap (next name: the owner, by pointer), then an A record."""
    body = _OWNER + _RR.pack(47, 0x8001, 120, 2 + len(bitmaps[0])) + b"\xc0\x0c" + bitmaps[0]
    for bitmap in bitmaps[1:]:
        body += b"\xc0\x0c" + _RR.pack(47, 0x8001, 120, 2 + len(bitmap)) + b"\xc0\x0c" + bitmap
    body += b"\xc0\x0c" + _RR.pack(1, 0x8001, 120, 4) + bytes([192, 0, 2, 1])
    return struct.pack("!6H", 0, 0x8400, 0, len(bitmaps) + 1, 0, 0) + body


windows = st.lists(
    st.tuples(st.integers(0, 255), st.binary(min_size=1, max_size=32)), min_size=0, max_size=4
)


@st.composite
def bitmaps(draw: st.DrawFn) -> bytes:
    """Mostly well-formed bitmaps (any windows, in any order, dense or sparse), sometimes with
    a length out of range or cut off, sometimes random bytes."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=70))
    data = b"".join(bytes([w, len(b)]) + b for w, b in draw(windows))
    if kind == 1 and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == 2:
        return data + bytes([draw(st.integers(0, 255)), draw(st.sampled_from([0, 33, 200]))])
    return data


@settings(max_examples=600, deadline=None)
@given(st.lists(bitmaps(), min_size=1, max_size=5), st.booleans())
def test_bitmaps_read_as_the_bit_by_bit_reader_reads_them(maps: list[bytes], cold: bool) -> None:
    if cold:
        _clear_memos()
    message = parse_message(packet(*maps))
    expected = [reference_types(m) for m in maps]
    nsec = [r for r in message.answers if isinstance(r, NSECRecord)]
    assert [r.types for r in nsec] == [t for t in expected if t is not None]
    assert message.skipped == expected.count(None)
    assert message.answers[-1].type == 1
    for record in nsec:
        # Stored canonical, so records compare by their types however the wire spelled them.
        assert record.bitmap == type_bitmap(record.types)
        assert record == NSECRecord(name="h.local", ttl=1, next_name="h.local", types=record.types)


def test_a_bitmap_seen_before_reads_the_same_and_is_shared() -> None:
    full = b"\x00\x20" + b"\xff" * 32
    _clear_memos()
    first = parse_message(packet(full, full))
    again = parse_message(packet(full))
    assert first.answers[0].types == frozenset(range(256))
    assert first.answers[0].types is first.answers[1].types is again.answers[0].types


def test_a_bad_window_after_good_ones_skips_the_record() -> None:
    good = b"\x00\x04\x40\x00\x00\x08"  # A and AAAA
    message = parse_message(packet(good, good + b"\x01\x21" + b"\xff" * 33, good))
    assert [r.types for r in message.answers if isinstance(r, NSECRecord)] == [
        frozenset({1, 28}),
        frozenset({1, 28}),
    ]
    assert message.skipped == 1


def test_windows_above_zero_and_out_of_order_are_read() -> None:
    bitmap = b"\x01\x01\x80" + b"\x00\x01\x40"  # type 256, then type 1
    assert parse_message(packet(bitmap)).answers[0].types == frozenset({256, 1})


def test_any_spelling_of_a_type_set_is_stored_canonical() -> None:
    canonical = b"\x00\x04\x40\x00\x00\x08" + b"\x01\x01\x80"  # A, AAAA; 256
    spellings = [
        canonical,
        b"\x01\x01\x80" + b"\x00\x04\x40\x00\x00\x08",  # windows out of order
        b"\x00\x05\x40\x00\x00\x08\x00" + b"\x01\x02\x80\x00",  # trailing zero bytes
        b"\x00\x01\x40" + b"\x01\x01\x80" + b"\x00\x04\x00\x00\x00\x08",  # window 0 twice
        b"\x00\x04\x40\x00\x00\x08" + b"\x02\x01\x00" + b"\x01\x01\x80",  # an empty window
    ]
    message = parse_message(packet(*spellings))
    nsec = message.answers[:-1]
    assert message.skipped == 0 and len(nsec) == len(spellings)
    assert {r.bitmap for r in nsec} == {canonical}
    assert len(set(nsec)) == 1
    assert all(r.types == frozenset({1, 28, 256}) for r in nsec)
    # What is written is the canonical form, whatever was received.
    again = parse_message(encode_message(message))
    assert [r.bitmap for r in again.answers[:-1]] == [canonical] * len(spellings)


def test_an_empty_bitmap_is_no_types() -> None:
    record = parse_message(packet(b"")).answers[0]
    assert isinstance(record, NSECRecord)
    assert record.bitmap == b"" and record.types == frozenset()


def test_the_parse_decodes_no_bitmap() -> None:
    """The receive path never reads an NSEC record's types unless a call asks about its name:
    a bitmap of 65,536 types costs the parse a check and a copy, not a frozenset."""
    _clear_memos()
    (record,) = parse_message(adversarial.many_nsec_windows()).answers
    assert not records_module._TYPES
    assert isinstance(record, NSECRecord) and len(record.types) == 65536
    assert len(records_module._TYPES) == 1


@settings(max_examples=300, deadline=None)
@given(st.frozensets(st.integers(0, 0xFFFF), max_size=300))
def test_type_bitmap_and_bitmap_types_are_inverses(types: frozenset[int]) -> None:
    bitmap = type_bitmap(types)
    assert reference_types(bitmap) == types == bitmap_types(bitmap)
    assert type_bitmap(sorted(types, reverse=True)) == bitmap


def test_the_hostile_nsec_shapes_read_as_the_bit_by_bit_reader_reads_them() -> None:
    for name in ("full_nsec_bitmaps", "many_nsec_windows", "nsec_tiny_windows"):
        data = adversarial.BUILDERS[name]()
        _clear_memos()
        records = parse_message(data).answers
        pos = 12
        for record in records:
            # Root owner, header, root next name, then the bitmap to the RDATA's end.
            (rdlength,) = struct.unpack_from("!H", data, pos + 9)
            bitmap = data[pos + 12 : pos + 11 + rdlength]
            assert isinstance(record, NSECRecord) and record.types == reference_types(bitmap)
            pos += 11 + rdlength
        assert pos == len(data), name


@settings(max_examples=300, deadline=None)
@given(
    st.frozensets(st.integers(0, 0xFFFF), max_size=60),
    st.lists(st.integers(0, 0xFFFF), max_size=20),
)
def test_has_type_answers_as_types_does(types: frozenset[int], probes: list[int]) -> None:
    record = NSECRecord(name="h.local", ttl=120, next_name="h.local", types=types)
    for rtype in [*probes, *types, 1, 28, 0, 0xFFFF]:
        assert record.has_type(rtype) == (rtype in types)
        # Near each type: the neighbours in its byte and the next window.
        for near in (rtype - 1, rtype + 1, rtype + 8, rtype + 256):
            if 0 <= near <= 0xFFFF:
                assert record.has_type(near) == (near in types)


def test_the_address_check_decodes_no_bitmap() -> None:
    """A peer's NSEC record for a name being resolved, listing every type but the addresses:
    the check on each wake-up reads window 0 only."""
    records_module._TYPES.clear()
    everything = frozenset(range(0x10000)) - {1, 28}
    record = NSECRecord(name="h.local", ttl=120, next_name="h.local", types=everything)
    records_module._TYPES.clear()
    assert not record.has_type(1) and not record.has_type(28) and record.has_type(0xFFFF)
    assert not records_module._TYPES
