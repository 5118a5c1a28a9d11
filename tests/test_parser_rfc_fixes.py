"""Two codec rules from the RFCs the parser broke, each against the bytes and a reference reader.

- RFC 2181 §8: a TTL with its top bit set is read as 0 (dnspython does the same); the OPT
  pseudo-record is exempt, its TTL field holds the extended RCODE, version and flags (RFC 6891).
  Record constructors refuse such a TTL, so mdnsq never builds what it would read back as 0.
- RFC 3597 §4: a receiver decompresses the names inside the RDATA of the RFC 1035 types (and of
  RP, AFSDB, RT, PX, KX and DNAME), so the RDATA mdnsq keeps is self-contained: equal records
  compare equal, different ones unequal, and a record written again is read back by any peer.
  A record whose names do not decode, or whose fixed fields do not fill its RDATA exactly, is
  skipped and counted as any malformed record is.
"""

from __future__ import annotations

import struct

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.MX
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import adversarial
from mdnsq import (
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    InvalidArgument,
    Message,
    NSECRecord,
    PTRRecord,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    encode_message,
    parse_message,
)
from tests.test_robust_parse import HOSTILE_FACTOR, parse_work

_RR = struct.Struct("!HHIH")
_SOA_TAIL = struct.pack("!5I", 2024010101, 3600, 600, 86400, 60)

# The minimal case from the report: a PTR whose target is "x.local", then an MX for "mx.local"
# whose exchange is the pointer c029 to its own owner name (offset 41).
MX_POINTER_HEX = (
    "000084000000000200000000025f73056c6f63616c00000c00010000007800090178056c6f63616c00"
    "026d78056c6f63616c00000f0001000000780004000ac029"
)


def header(an: int = 0, ns: int = 0, ar: int = 0, qd: int = 0) -> bytes:
    return struct.pack("!6H", 0, 0x8400, qd, an, ns, ar)


def wire(name: str) -> bytes:
    """Uncompressed wire form of a plain ASCII name."""
    out = bytearray()
    for label in name.split(".") if name else []:
        out.append(len(label))
        out += label.encode()
    return bytes(out) + b"\x00"


def pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 120, rclass: int = 1) -> bytes:
    return owner + _RR.pack(rtype, rclass, ttl, len(rdata)) + rdata


A_RDATA = bytes([192, 0, 2, 1])
A_RECORD = ARecord(name="a.local", ttl=120, address="192.0.2.1")


# --- Bug A: TTL with the top bit set -----------------------------------------------------------


def one_record(
    rtype: int, rdata: bytes, ttl: int, rclass: int = 1, owner: str = "h.local"
) -> bytes:
    return header(an=1) + rr(wire(owner), rtype, rdata, ttl, rclass)


# One honest RDATA per decoded branch of the parser, and two that are kept as raw bytes.
RDATA_BY_TYPE = {
    1: A_RDATA,
    28: bytes(15) + b"\x01",
    12: wire("x.h.local"),
    33: struct.pack("!HHH", 0, 0, 80) + wire("h.local"),
    16: b"\x03a=1",
    13: b"\x03ARM\x05Linux",
    47: wire("h.local") + b"\x00\x04\x40\x00\x00\x08",
    5: wire("c.local"),
    15: b"\x00\x0a" + wire("mx.local"),
    99: b"\x01\x02",
}


@pytest.mark.parametrize("rtype", sorted(RDATA_BY_TYPE))
@pytest.mark.parametrize("ttl", [0x80000000, 0x80000078, 0xFFFFFFFF])
def test_ttl_with_top_bit_set_is_read_as_zero(rtype: int, ttl: int) -> None:
    message = parse_message(one_record(rtype, RDATA_BY_TYPE[rtype], ttl))
    assert message.skipped == 0
    (record,) = message.answers
    assert record.ttl == 0


@pytest.mark.parametrize("ttl", [0, 1, 120, 4500, 0x7FFFFFFF])
def test_ttl_up_to_2_pow_31_minus_1_is_kept(ttl: int) -> None:
    (record,) = parse_message(one_record(1, A_RDATA, ttl)).answers
    assert record.ttl == ttl


def test_ttl_rule_agrees_with_dnspython() -> None:
    packet = (
        header(an=3)
        + rr(wire("a.local"), 1, A_RDATA, ttl=0xFFFFFFFF)
        + rr(pointer(12), 1, bytes([192, 0, 2, 2]), ttl=0x7FFFFFFF)
        + rr(pointer(12), 1, bytes([192, 0, 2, 3]), ttl=0x80000001)
    )
    ours = [r.ttl for r in parse_message(packet).answers]
    theirs = [rrset.ttl for rrset in dns.message.from_wire(packet, one_rr_per_rrset=True).answer]
    assert ours == theirs == [0, 0x7FFFFFFF, 0]


def test_opt_ttl_field_is_kept_whole() -> None:
    """The OPT TTL is extended RCODE (top byte), version and flags (DO = 0x8000): not a TTL.
    An extended RCODE of 128 or more sets the top bit, which must survive."""
    flags = 0x80008000  # extended RCODE 0x80, version 0, DO
    packet = (
        header(an=1, ar=1) + rr(wire("a.local"), 1, A_RDATA) + rr(b"\x00", 41, b"", flags, 1232)
    )
    message = parse_message(packet)
    (opt,) = message.additionals
    assert opt.type == 41 and opt.ttl == flags and opt.rclass == 1232
    assert message.answers[0].ttl == 120


@pytest.mark.parametrize("ttl", [0x80000000, 0xFFFFFFFF])
def test_constructors_refuse_a_ttl_a_peer_would_read_as_zero(ttl: int) -> None:
    with pytest.raises(InvalidArgument, match="ttl"):
        ARecord(name="h.local", ttl=ttl, address="192.0.2.1")
    with pytest.raises(InvalidArgument, match="ttl"):
        PTRRecord(name="_http._tcp.local", ttl=ttl, target="x._http._tcp.local")
    with pytest.raises(InvalidArgument, match="ttl"):
        UnknownRecord(name="h.local", ttl=ttl, type=99, rdata=b"")
    with pytest.raises(InvalidArgument, match="ttl"):
        A_RECORD.with_ttl(ttl)


def test_opt_built_by_hand_keeps_its_whole_ttl_field_and_round_trips() -> None:
    opt = UnknownRecord(name="", ttl=0xFFFFFFFF, type=41, rdata=b"", rclass=1232)
    assert opt.with_ttl(0x80008000).ttl == 0x80008000
    largest = A_RECORD.with_ttl(0x7FFFFFFF)
    again = parse_message(encode_message(Message(answers=[largest], additionals=[opt])))
    assert [r.ttl for r in again.records] == [0x7FFFFFFF, 0xFFFFFFFF]


# --- Bug B: compressed names inside RDATA ------------------------------------------------------


def test_mx_exchange_behind_a_pointer_is_stored_uncompressed() -> None:
    message = parse_message(bytes.fromhex(MX_POINTER_HEX))
    assert message.skipped == 0
    ptr, mx = message.answers
    assert ptr == PTRRecord(name="_s.local", ttl=120, target="x.local")
    assert isinstance(mx, UnknownRecord) and mx.type == 15 and mx.name == "mx.local"
    assert mx.rdata == b"\x00\x0a" + b"\x02mx\x05local\x00"
    # Readable on its own, as any peer reads it (no pointer left inside).
    exchange = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.MX, mx.rdata, 0, len(mx.rdata))
    assert isinstance(exchange, dns.rdtypes.ANY.MX.MX)
    assert exchange.preference == 10 and exchange.exchange == dns.name.from_text("mx.local.")


def mx_packet(target_name: str, compressed: bool) -> bytes:
    """An A record for ``target_name`` at offset 12, then an MX for "mail.local" whose exchange
    is that name: a pointer to offset 12, or written out."""
    exchange = pointer(12) if compressed else wire(target_name)
    return (
        header(an=2)
        + rr(wire(target_name), 1, A_RDATA)
        + rr(wire("mail.local"), 15, b"\x00\x0a" + exchange)
    )


def test_mx_with_the_same_pointer_to_different_exchanges_compare_unequal() -> None:
    """The same RDATA bytes (000a c00c) in two packets, pointing at different names."""
    one = parse_message(mx_packet("mx1.local", compressed=True)).answers[1]
    two = parse_message(mx_packet("mx2.other", compressed=True)).answers[1]
    assert one != two
    assert len({one, two}) == 2


def test_mx_compressed_or_not_compare_equal() -> None:
    compressed = parse_message(mx_packet("mx1.local", compressed=True)).answers[1]
    plain = parse_message(mx_packet("mx1.local", compressed=False)).answers[1]
    assert compressed == plain and hash(compressed) == hash(plain)
    assert compressed.rdata == plain.rdata == b"\x00\x0a" + wire("mx1.local")  # type: ignore[attr-defined]


def test_parse_encode_parse_round_trip_keeps_the_mx() -> None:
    first = parse_message(bytes.fromhex(MX_POINTER_HEX))
    packet = encode_message(first)
    again = parse_message(packet)
    assert again.answers == first.answers
    assert [r.rdata for r in again.answers if r.type == 15] == [  # type: ignore[attr-defined]
        b"\x00\x0a\x02mx\x05local\x00"
    ]
    # An independent reader of the packet we wrote sees the same exchange.
    theirs = dns.message.from_wire(packet, one_rr_per_rrset=True)
    (mx,) = [rd for rrset in theirs.answer for rd in rrset if rrset.rdtype == dns.rdatatype.MX]
    assert mx.exchange == dns.name.from_text("mx.local.")


def test_soa_with_compressed_mname_and_rname() -> None:
    # "ns.local" at 12 ("local" at 15); MNAME a pointer to it, RNAME "admin" + pointer to "local".
    soa_rdata = pointer(12) + b"\x05admin" + pointer(15) + _SOA_TAIL
    packet = header(an=2) + rr(wire("ns.local"), 1, A_RDATA) + rr(pointer(15), 6, soa_rdata)
    message = parse_message(packet)
    assert message.skipped == 0
    soa = message.answers[1]
    assert isinstance(soa, UnknownRecord) and soa.type == 6 and soa.name == "local"
    assert soa.rdata == wire("ns.local") + wire("admin.local") + _SOA_TAIL
    (theirs,) = dns.message.from_wire(packet, one_rr_per_rrset=True).answer[1]
    assert theirs.to_wire() == soa.rdata
    again = parse_message(encode_message(message))
    assert again.answers == message.answers
    assert again.answers[1].rdata == soa.rdata  # type: ignore[attr-defined]


def test_malformed_mx_is_skipped_and_counted_and_the_next_record_kept() -> None:
    """A pointer past the end of the packet inside an MX: that record only is lost."""
    packet = (
        header(an=2)
        + rr(wire("mx.local"), 15, b"\x00\x0a" + pointer(0x3FF))
        + rr(wire("a.local"), 1, A_RDATA)
    )
    message = parse_message(packet)
    assert message.skipped == 1
    assert message.answers == (A_RECORD,)


# (type, RDATA, why it is malformed): every one is skipped and counted, and the A record after
# it kept. The packet is "ns.local" at 12 (an A record), then the record at the root, its RDATA
# at offset 47 (RDATA_AT), then an A record for "a.local".
RDATA_AT = 12 + 10 + 10 + 4 + 1 + 10
MALFORMED = [
    (15, b"\x00\x0a", "MX without an exchange"),
    (15, b"\x00", "MX cut inside its preference"),
    (15, b"\x00\x0a" + pointer(12) + b"\x00", "MX with a byte after its exchange"),
    (15, b"\x00\x0a\x05mx", "MX exchange label past the RDATA"),
    (15, b"\x00\x0a\x02mx" + pointer(RDATA_AT + 2), "MX exchange looping to itself"),
    (15, b"\x00\x0a\x02mx\x80", "MX exchange with an unknown label type"),
    (2, b"", "NS without a name"),
    (2, pointer(12) + b"\x01", "NS with a byte after its name"),
    (2, pointer(0x3FFF), "NS pointer past the end"),
    (5, pointer(0x3FFF), "CNAME pointer past the end (already so)"),
    (6, pointer(12) + pointer(12) + _SOA_TAIL[:-1], "SOA one byte short"),
    (6, pointer(12) + pointer(12) + _SOA_TAIL + b"\x00", "SOA one byte long"),
    (6, pointer(12) + _SOA_TAIL, "SOA without its RNAME"),
    (14, pointer(12), "MINFO with one name"),
    (17, pointer(12), "RP with one name"),
    (18, b"\x00\x01", "AFSDB without a name"),
    (21, b"\x00\x01" + pointer(0x3FFF), "RT pointer past the end"),
    (26, b"\x00\x01" + pointer(12), "PX with one name"),
    (36, b"\x00", "KX cut inside its preference"),
    (39, pointer(12) + pointer(12), "DNAME with two names"),
]


@pytest.mark.parametrize(("rtype", "rdata", "why"), MALFORMED, ids=[m[2] for m in MALFORMED])
def test_malformed_name_rdata_is_skipped_and_counted(rtype: int, rdata: bytes, why: str) -> None:
    packet = (
        header(an=3)
        + rr(wire("ns.local"), 1, A_RDATA)
        + rr(b"\x00", rtype, rdata)
        + rr(wire("a.local"), 1, A_RDATA)
    )
    assert packet[RDATA_AT : RDATA_AT + len(rdata)] == rdata
    message = parse_message(packet)
    assert message.skipped == 1, why
    assert message.answers[-1] == A_RECORD and len(message.answers) == 2


# Each type with names in its RDATA: (fixed bytes before the names, names, fixed bytes after).
NAME_TYPES = {
    2: (b"", 1, b""),  # NS
    3: (b"", 1, b""),  # MD
    4: (b"", 1, b""),  # MF
    6: (b"", 2, _SOA_TAIL),  # SOA
    7: (b"", 1, b""),  # MB
    8: (b"", 1, b""),  # MG
    9: (b"", 1, b""),  # MR
    14: (b"", 2, b""),  # MINFO
    15: (b"\x00\x0a", 1, b""),  # MX
    17: (b"", 2, b""),  # RP
    18: (b"\x00\x01", 1, b""),  # AFSDB
    21: (b"\x00\x02", 1, b""),  # RT
    26: (b"\x00\x03", 2, b""),  # PX
    36: (b"\x00\x04", 1, b""),  # KX
    39: (b"", 1, b""),  # DNAME
}
# dnspython's types among them (MD, MF, MB, MG, MR and MINFO it keeps as generic RDATA). It
# refuses compressed names in KX and DNAME (RFC 2230 and RFC 6672 forbid senders to compress
# them; mdnsq reads them anyway), so it is the reference for those only uncompressed.
DNSPYTHON_TYPES = {2, 6, 15, 17, 18, 21, 26, 36, 39}
DNSPYTHON_DECOMPRESSES = DNSPYTHON_TYPES - {36, 39}


def names_packet(rtype: int, compressed: bool) -> tuple[bytes, bytes]:
    """(packet, the RDATA expected): an A record for "host.example.local" at offset 12 ("example"
    at 17, "local" at 25), then a record of ``rtype`` at the root whose names are, in turn,
    a bare pointer to it, "mail" + a pointer to "example.local", "x" + a pointer into the
    RDATA's own first name. Or the same names written out."""
    before, count, after = NAME_TYPES[rtype]
    first = 12 + len(wire("host.example.local")) + 10 + 4 + 1 + 10  # this RDATA's offset
    names = ["host.example.local", "mail.example.local", "x.host.example.local"][:count]
    if compressed:
        parts = [pointer(12), b"\x04mail" + pointer(17)][:count]
        if count == 2 and rtype != 6:  # (MINFO, RP, PX: the second name into the first)
            parts[1] = b"\x01x" + pointer(first + len(before))
            names[1] = "x.host.example.local"
        body = b"".join(parts)
    else:
        if count == 2 and rtype != 6:
            names[1] = "x.host.example.local"
        body = b"".join(wire(n) for n in names)
    rdata = before + body + after
    packet = header(an=2) + rr(wire("host.example.local"), 1, A_RDATA) + rr(b"\x00", rtype, rdata)
    assert packet[first : first + len(rdata)] == rdata
    return packet, before + b"".join(wire(n) for n in names) + after


@pytest.mark.parametrize("rtype", sorted(NAME_TYPES))
def test_every_type_with_names_in_rdata_is_decompressed(rtype: int) -> None:
    packet, expected = names_packet(rtype, compressed=True)
    message = parse_message(packet)
    assert message.skipped == 0
    record = message.answers[1]
    assert isinstance(record, UnknownRecord) and record.type == rtype
    assert record.rdata == expected
    plain = parse_message(names_packet(rtype, compressed=False)[0]).answers[1]
    assert record == plain and hash(record) == hash(plain)
    if rtype in DNSPYTHON_DECOMPRESSES:
        (theirs,) = dns.message.from_wire(packet, one_rr_per_rrset=True).answer[1]
        assert theirs.to_wire() == record.rdata
    again = parse_message(encode_message(message))
    assert again.answers == message.answers and again.skipped == 0


def test_names_are_copied_byte_for_byte() -> None:
    """Case, labels holding "." or "\\" and bytes that are not UTF-8 come out as they went in."""
    target = b"\x03M.X\x02\\\xff\x05Local\x00"
    packet = header(an=2) + rr(target, 1, A_RDATA) + rr(b"\x00", 15, b"\x00\x01" + pointer(12))
    mx = parse_message(packet).answers[1]
    assert mx.rdata == b"\x00\x01" + target  # type: ignore[attr-defined]
    lower = (
        header(an=2) + rr(target.lower(), 1, A_RDATA) + rr(b"\x00", 15, b"\x00\x01" + pointer(12))
    )
    assert parse_message(lower).answers[1].rdata == b"\x00\x01" + target.lower()  # type: ignore[attr-defined]


def test_names_reached_through_chains_and_other_rdata() -> None:
    """An exchange reached through a pointer to a pointer, and one pointing into another
    record's RDATA (an SRV target), and an RDATA name pointed at by a later owner name."""
    srv_rdata = struct.pack("!HHH", 0, 0, 80) + wire("srv.local")
    packet = bytearray(header(an=5))
    packet += rr(wire("a.local"), 1, A_RDATA)  # "a.local" at 12, "local" at 14
    srv_at = len(packet) + 2 + 10
    packet += rr(pointer(14), 33, srv_rdata)  # "srv.local" at srv_at + 6
    mx_at = len(packet) + 2 + 10
    packet += rr(pointer(12), 15, b"\x00\x05" + pointer(srv_at + 6))
    hop = len(packet) + 1 + 10 + 2  # the MX exchange below: a pointer to mx_at + 2 (a pointer)
    packet += rr(b"\x00", 15, b"\x00\x06" + pointer(mx_at + 2))
    packet += rr(pointer(hop), 1, A_RDATA)
    message = parse_message(bytes(packet))
    assert message.skipped == 0
    mx1, mx2 = message.answers[2], message.answers[3]
    assert mx1.rdata == b"\x00\x05" + wire("srv.local")  # type: ignore[attr-defined]
    assert mx2.rdata == b"\x00\x06" + wire("srv.local")  # type: ignore[attr-defined]
    assert message.answers[4].name == "srv.local"


def test_other_records_are_unchanged() -> None:
    """The decoded types and raw unknown types read as before; CNAME keeps its target."""
    packet = (
        header(an=4)
        + rr(wire("c.local"), 5, pointer(14))
        + rr(pointer(12), 99, b"\x00" + pointer(12))
        + rr(pointer(12), 13, b"\x01a\x01b")
        + rr(pointer(12), 12, pointer(12))
    )
    message = parse_message(packet)
    assert message.skipped == 0
    assert message.answers[0] == CNAMERecord(name="c.local", ttl=120, target="local")
    assert message.answers[1].rdata == b"\x00\xc0\x0c"  # type: ignore[attr-defined]
    assert message.answers[2] == HINFORecord(name="c.local", ttl=120, cpu=b"a", os=b"b")
    assert message.answers[3] == PTRRecord(name="c.local", ttl=120, target="c.local")


# Labels of lower-case letters, digits, "-" and "_" (dnspython compresses case-insensitively,
# so a name with capitals could point at one spelled otherwise and read back as that).
_labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=12)
_names = st.lists(_labels, min_size=1, max_size=5).map(lambda labels: ".".join(labels) + ".local.")


@st.composite
def dnspython_rdatas(draw: st.DrawFn) -> tuple[int, str]:
    rtype = draw(st.sampled_from(sorted(DNSPYTHON_TYPES)))
    n = [draw(_names) for _ in range(2)]
    number = draw(st.integers(0, 0xFFFF))
    text = {
        2: f"{n[0]}",
        6: f"{n[0]} {n[1]} 1 2 3 4 5",
        15: f"{number} {n[0]}",
        17: f"{n[0]} {n[1]}",
        18: f"{number} {n[0]}",
        21: f"{number} {n[0]}",
        26: f"{number} {n[0]} {n[1]}",
        36: f"{number} {n[0]}",
        39: f"{n[0]}",
    }[rtype]
    return rtype, text


@settings(max_examples=200)
@given(st.lists(st.tuples(_names, dnspython_rdatas()), min_size=1, max_size=8))
def test_dnspython_compressed_messages_read_as_dnspython_reads_them(
    items: list[tuple[str, tuple[int, str]]],
) -> None:
    """dnspython compresses the names of these types when it writes a message; mdnsq's RDATA
    must be what dnspython writes for the record alone (uncompressed), in every case."""
    message = dns.message.Message(id=0)
    expected = []
    for owner, (rtype, text) in items:
        rd = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.RdataType(rtype), text)
        rrset = dns.rrset.from_rdata(dns.name.from_text(owner), 120, rd)
        message.answer.append(rrset)
        expected.append((owner.rstrip("."), rtype, rd.to_wire()))
    packet = message.to_wire()
    ours = parse_message(packet)
    assert ours.skipped == 0
    assert [(r.name, int(r.type), r.rdata) for r in ours.answers] == expected  # type: ignore[attr-defined]
    again = parse_message(encode_message(ours))
    assert again.answers == ours.answers


# --- Work stays linear ------------------------------------------------------------------------


def mx_into_long_names(runs: int, label: bytes = b"\x01x", backward: bool = False) -> bytes:
    """``runs`` question names of 127 labels, then MX records whose exchanges point into them
    at every label in turn (or from the last label to the first): each a new name of up to
    255 bytes to write out."""
    packet = bytearray(header())
    starts = []
    for _ in range(runs):
        starts.append(len(packet))
        packet += label * 127 + b"\x00" + struct.pack("!HH", 12, 1)
    count = 0
    while len(packet) + 16 <= adversarial.MAX_PACKET:
        index = count % 126
        if backward:
            index = 125 - index
        target = starts[(count // 126) % runs] + len(label) * (1 + index)
        packet += pointer(12) + _RR.pack(15, 1, 120, 4) + b"\x00\x0a" + pointer(target)
        count += 1
    packet[0:12] = header(qd=runs, an=count)
    return bytes(packet)


def mx_into_a_pointer_chain() -> bytes:
    """A chain of 125 label + pointer hops (as adversarial.label_chain), then MX records whose
    exchanges point at its top or just below: each names 125 labels reached by 125 pointers."""
    chain = adversarial.label_chain()
    # Keep the chain's carrier record (type 99, the first) and replace every PTR after it.
    first_end = 12 + 3 + 10 + struct.unpack_from("!H", chain, 12 + 3 + 8)[0]
    links = [first_end - 4 * k for k in range(1, 9)]  # the last links: "a" + pointer, 4 bytes
    packet = bytearray(chain[:first_end])
    count = 1
    while len(packet) + 16 <= adversarial.MAX_PACKET:
        packet += pointer(12) + _RR.pack(15, 1, 120, 4) + b"\x00\x0a" + pointer(links[count % 8])
        count += 1
    packet[0:12] = header(an=count)
    return bytes(packet)


HOSTILE = {
    "mx_into_long_names": lambda: mx_into_long_names(4),
    "mx_into_long_names_backward": lambda: mx_into_long_names(4, backward=True),
    "mx_into_long_names_backward_escaped": lambda: mx_into_long_names(4, b"\x01\xff", True),
    "mx_into_long_names_dotted": lambda: mx_into_long_names(4, b"\x01."),
    "mx_into_a_pointer_chain": mx_into_a_pointer_chain,
}


@pytest.fixture(scope="module")
def honest_work() -> int:
    return parse_work(adversarial.honest_ptrs())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_expanding_names_stays_linear(name: str, honest_work: int) -> None:
    packet = HOSTILE[name]()
    assert len(packet) <= adversarial.MAX_PACKET
    message = parse_message(packet)
    mx = [record for record in message.answers if record.type == 15]
    assert message.skipped == 0 and len(mx) > 450
    for record in mx:
        rdata = record.rdata  # type: ignore[attr-defined]
        assert len(rdata) <= 2 + 255 and rdata.endswith(b"\x00") and b"\xc0" not in rdata[2:]
    work = parse_work(packet)
    assert work <= HOSTILE_FACTOR * honest_work, f"{name}: {work / honest_work:.1f}x"


def test_records_keep_their_classes() -> None:
    """Nothing here changed which class a record is built as."""
    kinds = {
        1: ARecord,
        28: AAAARecord,
        12: PTRRecord,
        33: SRVRecord,
        16: TXTRecord,
        13: HINFORecord,
        47: NSECRecord,
        5: CNAMERecord,
        15: UnknownRecord,
        99: UnknownRecord,
    }
    for rtype, rdata in RDATA_BY_TYPE.items():
        (record,) = parse_message(one_record(rtype, rdata, 120)).answers
        assert type(record) is kinds[rtype]
