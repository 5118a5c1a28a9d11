"""Found in the thirteenth session's review of the codec: each test fails on the code before
its fix."""

from __future__ import annotations

import struct

import pytest

from mdnsq import (
    AAAARecord,
    ARecord,
    HINFORecord,
    InvalidArgument,
    MalformedPacket,
    PTRRecord,
    Question,
    RecordType,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    build_query,
    join_name,
    normalize_name,
    parse_message,
)

OWNER = b"\x04host\x05local\x00"  # at offset 12
LAST = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 120, 4) + bytes([192, 0, 2, 1])


def _rr(owner: bytes, rtype: int, rdata: bytes) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 0x8001, 120, len(rdata)) + rdata


@pytest.mark.parametrize(
    ("rtype", "rdata"),
    [
        (12, b"\x01x\xc0\x0c"),  # PTR: a label and a pointer
        (12, b"\x01x\x01y\xc0\x0c"),  # PTR: two labels and a pointer
        (12, b"\x01x\x00"),  # PTR: a name in full
        (5, b"\x01y\xc0\x0c"),  # CNAME
        (33, struct.pack("!HHH", 0, 0, 80) + b"\xc0\x0c"),  # SRV
        (33, struct.pack("!HHH", 0, 0, 80) + b"\x01z\xc0\x0c"),
    ],
)
def test_a_name_that_does_not_fill_its_rdata_loses_its_record(rtype: int, rdata: bytes) -> None:
    """PTR, CNAME and SRV records kept bytes after their target and dropped them: RDLENGTH is
    wrong, as for an A record of 5 bytes, and the record is skipped and counted."""
    for extra, kept in ((b"", 2), (b"\xde\xad", 1)):
        header = struct.pack("!6H", 0, 0x8400, 0, 2, 0, 0)
        message = parse_message(header + _rr(OWNER, rtype, rdata + extra) + LAST)
        assert len(message.answers) == kept
        assert message.skipped == 2 - kept
        assert message.answers[-1].type == RecordType.A  # the record after it is kept


@pytest.mark.parametrize(
    "bad_owner",
    [
        b"\xff\xf0",  # a pointer past the end
        None,  # a pointer to itself
        b"\xc0\x00",  # a pointer to the ID, whose first byte (0x41) is a label of type 0x40
        b"\x01a\xff\xf0",  # a label, then a pointer past the end
    ],
)
def test_an_owner_name_that_leads_nowhere_loses_only_its_record(bad_owner: bytes | None) -> None:
    """The name is stepped over in place and the header after it says where the next record
    starts: the answers after it (the SRV and address a resolve waits for) were all lost."""
    good = _rr(OWNER, 1, bytes([192, 0, 2, 1]))
    at = 12 + len(good)
    owner = struct.pack("!H", 0xC000 | at) if bad_owner is None else bad_owner
    bad = _rr(owner, 16, b"\x05hello")
    srv = _rr(
        b"\x06Office\x04_ipp\x04_tcp\xc0\x11", 33, struct.pack("!HHH", 0, 0, 631) + b"\xc0\x0c"
    )
    aaaa = _rr(b"\xc0\x0c", 28, bytes(16))
    packet = struct.pack("!6H", 0x4100, 0x8400, 0, 4, 0, 0) + good + bad + srv + aaaa
    message = parse_message(packet)
    assert [r.type for r in message.answers] == [RecordType.A, RecordType.SRV, RecordType.AAAA]
    assert message.skipped == 1
    # A name that cannot be stepped over still ends the parse (the way on is lost).
    cut = struct.pack("!6H", 0, 0x8400, 0, 2, 0, 0) + good + b"\x41" + bytes(20)
    assert parse_message(cut).skipped == 1 and len(parse_message(cut).answers) == 1


def test_a_question_that_leads_nowhere_is_skipped_and_counted() -> None:
    """A response's question section is ignored (issue 4 §2); its bad name made the whole
    response MalformedPacket."""
    question = b"\xff\xf0" + struct.pack("!HH", 1, 1)
    packet = struct.pack("!6H", 0, 0x8400, 2, 1, 0, 0) + question + b"\x01x\x00\x00\x01\x00\x01"
    packet += _rr(OWNER, 1, bytes([192, 0, 2, 1]))
    message = parse_message(packet)
    assert message.questions == (Question("x", RecordType.A),)
    assert len(message.answers) == 1 and message.skipped == 1
    # One that cannot be stepped over, or has no room for its type and class, still cannot.
    for question in (b"\x41" + bytes(8), b"\xff\xf0\x00"):
        with pytest.raises(MalformedPacket):
            parse_message(struct.pack("!6H", 0, 0x8400, 1, 0, 0, 0) + question)


@pytest.mark.parametrize("name", ["a\ud800b.local", "x\\.\ud801.local", "\udc00.local"])
def test_a_name_with_a_surrogate_that_stands_for_no_byte_is_invalid(name: str) -> None:
    """Only U+DC80..U+DCFF stand for bytes (surrogateescape); another lone surrogate (which
    json.loads makes) raised UnicodeEncodeError, not an mdnsq error."""
    for call in (
        lambda: normalize_name(name),
        lambda: join_name(name, "local"),
        lambda: build_query(name, RecordType.A),
        lambda: PTRRecord(name="_http._tcp.local", ttl=1, target=name),
    ):
        with pytest.raises(InvalidArgument):
            call()
    assert normalize_name("\udcff.local") == "\\255.local"  # a byte that is not UTF-8: fine


def test_record_fields_of_the_wrong_kind_are_refused() -> None:
    """bytes(5) is five NUL bytes: TXTRecord(strings=b"path=/") made six strings of NULs and
    HINFORecord(cpu=3) three NUL bytes."""
    with pytest.raises(TypeError):
        TXTRecord(name="x.local", ttl=1, strings=b"path=/")
    with pytest.raises(TypeError):
        TXTRecord(name="x.local", ttl=1, strings=[5])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        HINFORecord(name="x.local", ttl=1, cpu=3, os=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        UnknownRecord(name="x.local", ttl=1, type=99, rdata=4)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SRVRecord(name="x.local", ttl=1, priority=0, weight=0, port="http", target="h.local")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        ARecord(name="x.local", ttl=1, address="300.1.1.1")
    with pytest.raises(InvalidArgument):
        AAAARecord(name="x.local", ttl=1, address="fe80::g")
    # What is right is still taken: any bytes-like value, any integer.
    record = TXTRecord(name="x.local", ttl=True + 1, strings=[bytearray(b"a=1"), memoryview(b"b")])
    assert record.strings == (b"a=1", b"b") and record.ttl == 2


def test_questions_after_a_skipped_one_read_known_bad_labels_safely() -> None:
    """Found by `make fuzz` once a bad question no longer ended the parse: a later name's walk
    stopped at a label cached as bad that runs past the end, and looking one label further
    read past the packet (IndexError, caught by the parser's catch-all as a parser bug)."""
    packet = bytes.fromhex(
        "00008400c0b9c0bbc0bdc0bfc0c1c0c3c0c5c0c7c0c9c04bc0cdc0cfc0d100008400000000010000c0d3"
        "c0d5c0d7c0d9c0dbc0ddc0dfc0e1c0e3c0e5c0e7c0e9c0ebc0edc0efc0f1c0f3c0f5c0f7c0f9c0fbc0fd"
        "c000007800c0c1c0c3c0c5c0c7c0c9c0cbc0cdc0cfc0d10000840000002e012e012e012e012e012e012e"
        "012e012e012e012e012e012e012e012e012e012e012e01d2fed1fad1fed1fe2e012e012e012e012e012e"
        "012e012e012e012e012e012e012e012e012e012e012e012e012e012e012e012e012e012e012e012e012e"
        "012e012e010004c0000203c01400010001000000780004c0000204c01600010001013001300130013001"
        "30013001300130017830"
    )
    with pytest.raises(MalformedPacket) as failure:
        parse_message(packet)
    assert "unreadable packet" not in str(failure.value)  # the catch-all's words: a bug
