"""One test per attack on the parser, each a hand-built packet (RFC 6762 §18, RFC 1035 §4.1.4).

An attack in the header raises MalformedPacket; a question or record whose name is attacked is
skipped and counted while the rest of the packet survives, as long as the name can be stepped over
in place (else the way on is lost: MalformedPacket in a question, the end of the parse in a
record). Nothing else may escape, and nothing may hang.
"""

from __future__ import annotations

import struct

import pytest

from mdnsq import (
    ARecord,
    MalformedPacket,
    NSECRecord,
    PTRRecord,
    RecordType,
    SRVRecord,
    TXTRecord,
    parse_message,
)
from mdnsq.names import escape_label_bytes


def header(qd: int = 0, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x8400) -> bytes:
    return struct.pack("!6H", 0, flags, qd, an, ns, ar)


def wire_name(*labels: bytes) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def rr(name: bytes, rtype: int, rdata: bytes, ttl: int = 120, rclass: int = 1) -> bytes:
    return name + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


A_LOCAL = rr(wire_name(b"host", b"local"), 1, bytes([192, 0, 2, 7]))


def question(name: bytes, qtype: int = 12) -> bytes:
    return name + struct.pack("!HH", qtype, 1)


def assert_question_skipped(packet: bytes) -> None:
    """The packet's last question was refused: skipped and counted, the others kept (until
    the thirteenth session the whole packet was dropped: a response's answers with it)."""
    message = parse_message(packet)
    assert message.skipped == 1
    assert len(message.questions) == struct.unpack_from("!H", packet, 4)[0] - 1


# --- attacks in the question section: the question is skipped ----------------------------------


def test_pointer_loop() -> None:
    """Two pointers pointing at each other never terminate without a hop limit."""
    # offset 12: pointer to 14; offset 14: pointer to 12.
    packet = header(qd=1) + pointer(14) + pointer(12) + b"\x00\x0c\x00\x01"
    # The name is the pointer at 12; the pointer at 14 is read as its type (0xC00C).
    assert_question_skipped(packet)


def test_pointer_to_itself() -> None:
    packet = header(qd=1) + pointer(12) + b"\x00\x0c\x00\x01"
    assert_question_skipped(packet)


def test_pointer_past_the_end() -> None:
    packet = header(qd=1) + wire_name(b"a")[:-1] + pointer(0x3FFF) + b"\x00\x0c\x00\x01"
    assert_question_skipped(packet)


def test_label_length_overflow() -> None:
    """A label length byte larger than what is left of the packet."""
    packet = header(qd=1) + b"\x3fshort"
    with pytest.raises(MalformedPacket):
        parse_message(packet)


def test_label_type_0x40_and_0x80_rejected() -> None:
    for bad in (0x40, 0x80):
        packet = header(qd=1) + bytes([bad]) + b"a" * 70 + b"\x00\x00\x0c\x00\x01"
        with pytest.raises(MalformedPacket, match="label type"):
            parse_message(packet)


def test_name_over_255_bytes() -> None:
    # 5 labels of 63 bytes: 5 * 64 + 1 = 321 wire bytes.
    packet = header(qd=1) + question(wire_name(*[b"x" * 63] * 5))
    assert_question_skipped(packet)


def test_name_over_255_bytes_through_pointers() -> None:
    """The limit counts the whole name, also the part reached through a compression pointer."""
    long_suffix = wire_name(*[b"y" * 63] * 3)  # 193 bytes
    prefix = bytes([63]) + b"z" * 63 + pointer(12)  # 64 more bytes -> 257
    packet = header(qd=2) + question(long_suffix) + question(prefix)
    assert_question_skipped(packet)


def test_name_of_exactly_255_bytes_is_fine() -> None:
    name = wire_name(*[b"x" * 63] * 3, b"y" * 61)  # 3*64 + 62 + 1 = 255
    assert len(name) == 255
    message = parse_message(header(qd=1) + question(name))
    assert len(message.questions[0].name) == 3 * 64 + 61


def test_more_than_128_labels() -> None:
    """129 one-byte labels. Every label costs at least 2 wire bytes, so more than 128 labels also
    breaks the 255-byte limit; the parser must refuse it by one rule or the other."""
    packet = header(qd=1) + question(wire_name(*[b"a"] * 129))
    assert_question_skipped(packet)


def test_127_labels_is_fine() -> None:
    message = parse_message(header(qd=1) + question(wire_name(*[b"a"] * 127)))
    assert message.questions[0].name == ".".join(["a"] * 127)


def test_truncated_header() -> None:
    for size in range(12):
        with pytest.raises(MalformedPacket, match="header"):
            parse_message(header(qd=1)[:size])


def test_header_counts_far_larger_than_the_packet() -> None:
    """65535 questions claimed, one present: dropped quickly, nothing preallocated."""
    packet = header(qd=0xFFFF, an=0xFFFF, ns=0xFFFF, ar=0xFFFF) + question(
        wire_name(b"a", b"local")
    )
    with pytest.raises(MalformedPacket):
        parse_message(packet)


def test_header_record_counts_far_larger_than_the_packet_keep_what_is_there() -> None:
    """Records claimed but missing: the parsed ones survive, the cut-off is counted once."""
    packet = header(an=0xFFFF, ns=0xFFFF, ar=0xFFFF) + A_LOCAL
    message = parse_message(packet)
    assert len(message.answers) == 1
    assert message.skipped == 1


def test_question_cut_off_after_its_name() -> None:
    packet = header(qd=1) + wire_name(b"a", b"local") + b"\x00\x0c"
    with pytest.raises(MalformedPacket, match="question cut off"):
        parse_message(packet)


# --- attacks in a record: the record is skipped, the packet survives ---------------------------


def test_rdlength_overrun() -> None:
    """RDLENGTH larger than the rest of the packet: stop there, keep what came before."""
    bad = wire_name(b"x", b"local") + struct.pack("!HHIH", 1, 1, 120, 400) + b"\x01\x02\x03\x04"
    message = parse_message(header(an=2) + A_LOCAL + bad)
    assert [r.name for r in message.answers] == ["host.local"]
    assert message.skipped == 1


def test_rdata_overrunning_its_own_rdlength_is_skipped_and_parsing_resumes() -> None:
    """A PTR whose target runs past RDLENGTH: skipped, and the next record (by RDLENGTH) is read."""
    target = wire_name(b"printer", b"local")  # 15 bytes, RDLENGTH says 5
    bad = wire_name(b"_x", b"local") + struct.pack("!HHIH", 12, 1, 4500, 5) + target[:5]
    message = parse_message(header(an=1, ar=1) + bad + A_LOCAL)
    assert message.answers == ()
    assert [r.name for r in message.additionals] == ["host.local"]
    assert message.skipped == 1


def test_txt_string_overrun() -> None:
    """A TXT character-string longer than the RDATA left: skipped, neighbours kept."""
    bad_txt = rr(wire_name(b"svc", b"local"), 16, b"\x05ab=c" + b"\x20only-a-few")
    message = parse_message(header(an=3) + A_LOCAL + bad_txt + A_LOCAL)
    assert len(message.answers) == 2
    assert message.skipped == 1


def test_bad_record_skipped_and_counted_while_the_rest_survives() -> None:
    """Each kind of bad RDATA costs one record, never the packet."""
    owner = wire_name(b"dev", b"local")
    bad_records = [
        rr(owner, 1, b"\x01\x02\x03"),  # A with 3 bytes
        rr(owner, 28, b"\x00" * 15),  # AAAA with 15 bytes
        rr(owner, 33, b"\x00\x00\x00"),  # SRV too short for its fixed part
        rr(owner, 12, pointer(0x3FF0)),  # PTR target pointing past the end
        rr(owner, 47, wire_name(b"dev", b"local") + b"\x00\x21" + b"\x00" * 33),  # bitmap > 32
        rr(owner, 13, b"\x03x86"),  # HINFO with one string
    ]
    packet = header(an=len(bad_records) + 2) + A_LOCAL + b"".join(bad_records) + A_LOCAL
    message = parse_message(packet)
    assert [r.name for r in message.answers] == ["host.local", "host.local"]
    assert message.skipped == len(bad_records)


def test_record_header_cut_off_keeps_what_was_parsed() -> None:
    packet = header(an=2) + A_LOCAL + wire_name(b"x", b"local") + b"\x00\x01\x00"
    message = parse_message(packet)
    assert len(message.answers) == 1
    assert message.skipped == 1


def test_pointer_loop_in_rdata_skips_the_record() -> None:
    owner_at = 12
    ptr_rr = wire_name(b"_s", b"local") + struct.pack("!HHIH", 12, 1, 10, 2)
    loop_at = owner_at + len(ptr_rr)
    packet = header(an=2) + ptr_rr + pointer(loop_at) + A_LOCAL
    message = parse_message(packet)
    assert [r.type for r in message.answers] == [RecordType.A]
    assert message.skipped == 1


# --- what real devices do and the parser must accept -------------------------------------------


def test_forward_pointers_inside_nsec_accepted() -> None:
    """RFC 6762 §18.14: an NSEC next name may be compressed, even pointing forward."""
    nsec_owner = wire_name(b"host", b"local")
    # NSEC: next name = pointer forward to the A record owner; bitmap: window 0, A and AAAA.
    bitmap = b"\x00\x04\x40\x00\x00\x08"
    a_owner_offset = 12 + len(nsec_owner) + 10 + 2 + len(bitmap)  # where the A record starts
    nsec_rdata = pointer(a_owner_offset) + bitmap
    nsec = rr(nsec_owner, 47, nsec_rdata, rclass=0x8001)
    packet = header(an=2) + nsec + A_LOCAL
    assert packet[a_owner_offset : a_owner_offset + 5] == b"\x04host"
    message = parse_message(packet)
    assert message.skipped == 0
    first, second = message.answers
    assert isinstance(first, NSECRecord) and first.next_name == "host.local"
    assert first.types == {1, 28} and first.cache_flush
    assert isinstance(second, ARecord)


def test_nsec_next_name_pointing_past_the_end_keeps_the_record_and_packet() -> None:
    """A next name that can't be decoded loses only itself: the bitmap and the rest survive.

    In mDNS the next name is the owner's own name (RFC 6762 §6.1), so the owner stands in.
    """
    nsec_owner = wire_name(b"host", b"local")
    bitmap = b"\x00\x04\x40\x00\x00\x08"
    nsec = rr(nsec_owner, 47, pointer(0x3FF0) + bitmap, rclass=0x8001)
    message = parse_message(header(an=2) + nsec + A_LOCAL)
    assert message.skipped == 0
    first, second = message.answers
    assert isinstance(first, NSECRecord)
    assert first.next_name == "host.local" and first.types == {1, 28}
    assert isinstance(second, ARecord)


def test_nsec_with_unskippable_next_name_is_skipped_alone() -> None:
    nsec = rr(wire_name(b"host", b"local"), 47, b"\x40\x00")  # label type 0x40, nothing after
    message = parse_message(header(an=2) + nsec + A_LOCAL)
    assert message.skipped == 1
    assert [type(r) for r in message.answers] == [ARecord]


def test_forward_pointer_in_owner_name_accepted() -> None:
    """Some stacks point anywhere in the packet; inside it is all that is required."""
    srv_target_offset = 12 + 2 + 10 + 6
    target = wire_name(b"box", b"local")
    srv = pointer(srv_target_offset) + struct.pack("!HHIH", 33, 1, 120, 6 + len(target))
    srv += struct.pack("!HHH", 0, 0, 80) + target
    message = parse_message(header(an=1) + srv)
    (record,) = message.answers
    assert isinstance(record, SRVRecord)
    assert record.name == record.target == "box.local"


def test_mixed_good_and_bad_records_in_every_section() -> None:
    bad = rr(wire_name(b"x"), 1, b"\x00")
    ptr = rr(wire_name(b"_s", b"local"), 12, wire_name(b"i", b"_s", b"local"))
    txt = rr(wire_name(b"i", b"_s", b"local"), 16, b"\x03a=b")
    packet = header(an=2, ns=2, ar=2) + ptr + bad + bad + txt + bad + A_LOCAL
    message = parse_message(packet)
    assert [type(r) for r in message.answers] == [PTRRecord]
    assert [type(r) for r in message.authorities] == [TXTRecord]
    assert [type(r) for r in message.additionals] == [ARecord]
    assert message.skipped == 3


def test_junk_input_types_raise_malformed_packet() -> None:
    for junk in (b"", bytearray(5), memoryview(b"\x00" * 11)):
        with pytest.raises(MalformedPacket):
            parse_message(junk)
    with pytest.raises(MalformedPacket):
        parse_message("not bytes")  # type: ignore[arg-type]


def test_result_holds_no_reference_to_the_buffer() -> None:
    """The caller may zero and reuse the buffer right after parsing."""
    buf = bytearray(header(an=1) + A_LOCAL)
    view = memoryview(buf)
    message = parse_message(view)
    view.release()
    buf[:] = bytes(len(buf))  # would raise BufferError if a view were still exported
    buf.extend(b"more")
    (record,) = message.answers
    assert record.name == "host.local" and str(record.address) == "192.0.2.7"


def test_many_records_pointing_into_a_pointer_loop_are_each_skipped() -> None:
    """The loop is walked once; the failure is remembered, so 600 records cost 600 lookups."""
    loop_at = 12 + 3 + 10
    first = wire_name(b"a") + struct.pack("!HHIH", 99, 1, 120, 4) + pointer(loop_at + 2)
    first += pointer(loop_at)
    refs = b"".join(
        pointer(12) + struct.pack("!HHIH", 12, 1, 120, 2) + pointer(loop_at) for _ in range(600)
    )
    message = parse_message(header(an=601) + first + refs)
    assert len(message.answers) == 1  # the type-99 record itself is only opaque bytes
    assert message.skipped == 600


def test_records_pointing_into_the_middle_of_a_long_name() -> None:
    """Owners pointing at each label boundary of a 127-label name read the right suffixes."""
    name = b"\x01x" * 126 + b"\x01y\x00"
    packet = bytearray(header(qd=1) + name + b"\x00\x0c\x00\x01")
    for i in range(127):
        packet += pointer(12 + 2 * i) + struct.pack("!HHIH", 1, 1, 120, 4) + bytes(4)
    packet[6:8] = (127).to_bytes(2, "big")
    message = parse_message(bytes(packet))
    assert message.skipped == 0
    assert [r.name.count(".") for r in message.answers] == list(range(126, -1, -1))


def test_escaped_suffix_long_as_text_but_within_255_wire_bytes_is_accepted() -> None:
    """The 255-byte limit counts wire bytes, not the (longer) escaped text."""
    dots = b"." * 60
    first = question(wire_name(dots, dots, dots))  # 184 wire bytes, 362 characters of text
    second = question(bytes([60]) + b"a" * 60 + pointer(12))  # 61 + 184 = 245 wire bytes
    message = parse_message(header(qd=2) + first + second)
    assert message.questions[1].name == "a" * 60 + "." + ".".join(["\\." * 60] * 3)
    too_long = question(bytes([63]) + b"b" * 63 + bytes([10]) + b"c" * 10 + pointer(12))
    assert_question_skipped(header(qd=2) + first + too_long)  # 64 + 11 + 184 = 259


@pytest.mark.parametrize(
    "label", [b"\xff", "é".encode(), "😀".encode(), b"."], ids=["escaped", "utf8", "emoji", "dot"]
)
def test_255_byte_limit_along_a_chain_of_names_whose_text_is_longer(label: bytes) -> None:
    """A question name of 240 wire bytes whose text is longer than that, or not ASCII; then
    PTR records whose targets are one more label ("p", 2 bytes) and a pointer to the target
    before: 242, 244, ... 254 bytes are kept, 256 is skipped, and so is everything built on
    it. Each name's wire length is remembered (parser._WIRES) for the next one to add to: a
    wrong memo would shift the cut. Parsed twice, so the second parse meets a warm memo."""
    piece = label * (40 // len(label))
    small = label * (16 // len(label))
    base = wire_name(*[piece] * 5, small, small)  # 5 * 41 + 2 * 17 + 1 = 240 bytes
    assert len(base) == 240
    packet = bytearray(header(qd=1, an=10) + question(base))
    target = 12
    for _ in range(10):
        record = rr(b"\x00", 12, b"\x01p" + pointer(target))
        target = len(packet) + 11  # this record's RDATA: 1 byte of owner, 10 of header
        packet += record
    for _ in range(2):
        message = parse_message(bytes(packet))
        text = message.questions[0].name
        assert not text.isascii() or len(text) > len(base)  # past the cheap bound
        assert message.skipped == 3  # 256 bytes, and the two built on it
        assert [r.target for r in message.answers] == [
            ".".join(["p"] * k + [text]) for k in range(1, 8)
        ]


@pytest.mark.parametrize("order", ["forward", "backward", "interleaved"])
def test_pointers_into_every_label_of_mixed_long_names_read_the_right_suffixes(order: str) -> None:
    """Runs entered twice or more through pointers are cached at every label: the cached names
    must be exactly what reading from that label gives, whatever the labels hold (ASCII,
    UTF-8, bytes that are not UTF-8, a label too long for the one-pass path) and whatever the
    order of the pointers."""
    kinds = [b"ab", "é".encode(), b"\xff", b"x" * 40, b"q\xfe"]
    names = [[kinds[(i + shift) % len(kinds)] for i in range(20)] for shift in range(3)]
    packet = bytearray(header(qd=len(names)))
    starts = []
    for labels in names:
        starts.append(len(packet))
        packet += question(wire_name(*labels))
    targets = []  # (offset, expected name)
    for start, labels in zip(starts, names, strict=True):
        offset = start
        for i, label in enumerate(labels):
            expected = ".".join(escape_label_bytes(part) for part in labels[i:])
            targets.append((offset, expected))
            offset += 1 + len(label)
    if order == "backward":
        targets.reverse()
    elif order == "interleaved":
        targets = targets[::2] + targets[1::2]
    for offset, _ in targets:
        packet += pointer(offset) + struct.pack("!HHIH", 1, 1, 120, 4) + bytes(4)
    packet[6:8] = len(targets).to_bytes(2, "big")
    message = parse_message(bytes(packet))
    assert message.skipped == 0
    assert [r.name for r in message.answers] == [expected for _, expected in targets]
    assert [q.name for q in message.questions] == [
        ".".join(escape_label_bytes(part) for part in labels) for labels in names
    ]


def test_255_byte_limit_through_a_pointer_to_an_escaped_name_counts_wire_bytes() -> None:
    """120 labels of one byte that is not UTF-8: 241 wire bytes, 479 characters of text."""
    escaped = question(wire_name(*[b"\xff"] * 120))
    fits = question(bytes([12]) + b"a" * 12 + pointer(12))  # 13 + 241 = 254
    message = parse_message(header(qd=2) + escaped + fits)
    assert message.questions[1].name == "a" * 12 + "." + ".".join(["\\255"] * 120)
    too_long = question(bytes([14]) + b"a" * 14 + pointer(12))  # 15 + 241 = 256
    assert_question_skipped(header(qd=2) + escaped + too_long)


@pytest.mark.parametrize(
    "kind",
    [b"\\123", b"\\.", b"\xff1", b".\\", b"\\\\", b"a\\255", "é".encode()],
    ids=[
        "backslash-digits",
        "backslash-dot",
        "byte-then-digit",
        "dot-backslash",
        "two",
        "text",
        "utf8",
    ],
)
def test_255_byte_limit_counts_every_kind_of_escape_as_its_wire_bytes(kind: bytes) -> None:
    """A suffix whose text mixes escapes that look alike ("\\\\123" is a backslash and three
    digits, not one escaped byte): a prefix that brings the name to 255 wire bytes fits, one
    byte more does not."""
    labels = [kind] * (200 // (len(kind) + 1))
    base = wire_name(*labels)
    room = 255 - len(base) - 1  # bytes left for the prefix label's content
    expected = ".".join(escape_label_bytes(label) for label in labels)
    fits = question(bytes([room]) + b"a" * room + pointer(12))
    message = parse_message(header(qd=2) + question(base) + fits)
    assert message.questions[1].name == "a" * room + "." + expected
    too_long = question(bytes([room + 1]) + b"a" * (room + 1) + pointer(12))
    assert_question_skipped(header(qd=2) + question(base) + too_long)


def test_unknown_types_do_not_grow_the_record_type_table_without_bound() -> None:
    """Every record of a type nobody named becomes a TYPE<n> member. The enum's table of them
    lives as long as the process: a peer sending each of the 65,536 types once would leave 24
    MB in it. It keeps at most MAX_PSEUDO_MEMBERS; past that, records still carry an equal
    member of the right value and name."""
    from mdnsq import records

    before = len(records._MEMBERS)
    count = 700
    for start in range(20000, 20000 + 4 * count, count):
        types = range(start, start + count)
        data = header(qd=1, an=count) + wire_name(b"h", b"local") + struct.pack("!HH", start, 1)
        data += b"".join(rr(b"\x00", rtype, b"") for rtype in types)
        message = parse_message(data)
        assert [int(r.type) for r in message.answers] == list(types)
        assert [r.type.name for r in message.answers] == [f"TYPE{t}" for t in types]
        assert message.questions[0].type == start
        assert isinstance(message.answers[-1].type, RecordType)
    assert RecordType(20000 + 4 * count - 1) == 20000 + 4 * count - 1
    assert len(records._MEMBERS) - before <= records.MAX_PSEUDO_MEMBERS
    assert 4 * count > records.MAX_PSEUDO_MEMBERS
