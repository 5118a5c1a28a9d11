"""Real packets (tests/data, see PROVENANCE.md) parsed by mdnsq and by dnspython must agree.

dnspython is the reference: for every corpus message it accepts, mdnsq yields the same questions
and records (name as wire labels, type, class with the QU / cache-flush bit, TTL, data), in the
same order.
For the messages dnspython rejects, the tests say what mdnsq keeps and why.
"""

from __future__ import annotations

import ipaddress
import json
import struct
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest

from mdnsq import (
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    Message,
    NSECRecord,
    PTRRecord,
    RecordType,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    encode_message,
    parse_message,
)
from mdnsq.names import name_to_wire_labels

DATA = Path(__file__).parent / "data"
INDEX = [json.loads(line) for line in (DATA / "index.jsonl").read_text().splitlines() if line]
MESSAGES = [row for row in INDEX if row["kind"] == "message"]
ACCEPTED = [row for row in MESSAGES if row["dnspython_ok"] is True]
REJECTED = [row for row in MESSAGES if row["dnspython_ok"] is not True]


def load(row: dict[str, Any]) -> bytes:
    return (DATA / row["path"]).read_bytes()


def labels(name: str) -> tuple[bytes, ...]:
    return tuple(name_to_wire_labels(name))


def dns_labels(name: dns.name.Name) -> tuple[bytes, ...]:
    assert name.is_absolute()
    return tuple(name.labels[:-1])


def _bitmap_types(windows: Any) -> frozenset[int]:
    types = set()
    for window, bitmap in windows:
        for i, byte in enumerate(bitmap):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    types.add(window * 256 + i * 8 + bit)
    return frozenset(types)


def dns_rdata_view(rd: Any, rdtype: int, wire: bytes) -> Any:
    """Comparable form of a dnspython rdata."""
    if isinstance(rd, dns.rdata.GenericRdata) and rdtype in (1, 28, 33):
        # Class 0x8001 (cache-flush) is not IN to dnspython, so IN-only types come back generic;
        # decode them again as IN, from where their bytes sit in the packet (pointers are absolute).
        offset = wire.find(rd.data)
        assert offset >= 0
        rd = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, offset, len(rd.data))
    if rdtype == 1:
        return ipaddress.IPv4Address(rd.address).packed
    if rdtype == 28:
        return ipaddress.IPv6Address(rd.address).packed
    if rdtype in (5, 12):
        return dns_labels(rd.target)
    if rdtype == 33:
        return (rd.priority, rd.weight, rd.port, dns_labels(rd.target))
    if rdtype == 16:
        return tuple(rd.strings)
    if rdtype == 13:
        return (rd.cpu, rd.os)
    if rdtype == 47:
        return (dns_labels(rd.next), _bitmap_types(rd.windows))
    return rd.to_wire()


def mdnsq_rdata_view(record: Any) -> Any:
    if isinstance(record, (ARecord, AAAARecord)):
        return record.address.packed
    if isinstance(record, (PTRRecord, CNAMERecord)):
        return labels(record.target)
    if isinstance(record, SRVRecord):
        return (record.priority, record.weight, record.port, labels(record.target))
    if isinstance(record, TXTRecord):
        return record.strings
    if isinstance(record, HINFORecord):
        return (record.cpu, record.os)
    if isinstance(record, NSECRecord):
        return (labels(record.next_name), record.types)
    assert isinstance(record, UnknownRecord)
    return record.rdata


def dnspython_view(wire: bytes) -> tuple[list[Any], list[Any], int]:
    """(questions, records, edns) as dnspython reads ``wire``; OPT left out (dnspython lifts it)."""
    msg = dns.message.from_wire(wire, one_rr_per_rrset=True)
    questions = [(dns_labels(q.name), q.rdtype, q.rdclass) for q in msg.question]
    records = []
    for index, section in enumerate((msg.answer, msg.authority, msg.additional)):
        for rrset in section:
            for rd in rrset:
                records.append(
                    (
                        index,
                        dns_labels(rrset.name),
                        int(rrset.rdtype),
                        int(rrset.rdclass),
                        rrset.ttl,
                        dns_rdata_view(rd, int(rrset.rdtype), wire),
                    )
                )
    return questions, records, msg.edns


def mdnsq_view(message: Message) -> tuple[list[Any], list[Any]]:
    questions = [
        (labels(q.name), int(q.type), q.rclass | (0x8000 if q.unicast_response else 0))
        for q in message.questions
    ]
    records = []
    for index, section in enumerate((message.answers, message.authorities, message.additionals)):
        for r in section:
            if r.type == RecordType.OPT:
                continue
            records.append(
                (
                    index,
                    labels(r.name),
                    int(r.type),
                    r.rclass | (0x8000 if r.cache_flush else 0),
                    r.ttl,
                    mdnsq_rdata_view(r),
                )
            )
    return questions, records


def assert_same_as_dnspython(wire: bytes, message: Message | None = None) -> Message:
    """Parse ``wire`` with both libraries and check they agree; return mdnsq's Message."""
    if message is None:
        message = parse_message(wire)
    want_questions, want_records, edns = dnspython_view(wire)
    got_questions, got_records = mdnsq_view(message)
    assert got_questions == want_questions
    assert got_records == want_records
    assert message.skipped == 0
    opts = [r for r in message.additionals if r.type == RecordType.OPT]
    assert len(opts) == (1 if edns >= 0 else 0)
    return message


def test_corpus_is_what_the_index_says() -> None:
    assert len(MESSAGES) == 281
    assert len(ACCEPTED) == 267
    assert len(REJECTED) == 14


@pytest.mark.parametrize("row", ACCEPTED, ids=[row["path"] for row in ACCEPTED])
def test_same_as_dnspython(row: dict[str, Any]) -> None:
    wire = load(row)
    message = assert_same_as_dnspython(wire)
    assert [len(message.questions), *(len(s) for s in _sections(message))] == row["counts"]


def _empty_txt_as_one_empty_string(message: Message) -> Message:
    def fix(section: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(
            TXTRecord(
                name=r.name, ttl=r.ttl, strings=[b""], rclass=r.rclass, cache_flush=r.cache_flush
            )
            if isinstance(r, TXTRecord) and not r.strings
            else r
            for r in section
        )

    return Message(
        message.id,
        message.flags,
        message.questions,
        fix(message.answers),
        fix(message.authorities),
        fix(message.additionals),
    )


def _sections(message: Message) -> tuple[tuple[Any, ...], ...]:
    return (message.answers, message.authorities, message.additionals)


@pytest.mark.parametrize("row", MESSAGES, ids=[row["path"] for row in MESSAGES])
def test_reencoding_gives_the_same_message(row: dict[str, Any]) -> None:
    """What mdnsq writes, mdnsq reads back as the same records (TTLs included).

    One deliberate difference: an empty TXT RDATA is written as one empty string (RFC 6763 §6.1).
    """
    message = parse_message(load(row))
    again = parse_message(encode_message(message))
    assert again == _empty_txt_as_one_empty_string(message)
    assert [r.ttl for r in again.records] == [r.ttl for r in message.records]
    assert [r.name for r in again.records] == [r.name for r in message.records]


COMPRESSED_NSEC = [row for row in REJECTED if row["dnspython_ok"] == "DecompressionForbidden"]
EMPTY_TXT = [row for row in REJECTED if row["dnspython_ok"] == "FormError"]


def test_rejections_are_the_two_known_kinds() -> None:
    assert len(COMPRESSED_NSEC) == 10
    assert len(EMPTY_TXT) == 4


@pytest.mark.parametrize("row", COMPRESSED_NSEC, ids=[row["path"] for row in COMPRESSED_NSEC])
def test_compressed_nsec_next_name_is_read(row: dict[str, Any]) -> None:
    """RFC 6762 §18.14 lets an NSEC next name be compressed; dnspython refuses, mdnsq reads it.

    mDNS NSEC records name themselves as the next name (RFC 6762 §6.1), which the test checks.
    """
    message = parse_message(load(row))
    assert message.skipped == 0
    assert [len(message.questions), *(len(s) for s in _sections(message))] == row["counts"]
    nsecs = [r for r in message.records if isinstance(r, NSECRecord)]
    assert nsecs
    for nsec in nsecs:
        assert nsec.next_name == nsec.name
        assert nsec.types
    twin = DATA / row["path"].replace(".bin", ".uncompressed.bin")
    if twin.exists():
        # dnssd.js ships the same message without compression: identical records, and dnspython
        # agrees with mdnsq on the twin.
        uncompressed = assert_same_as_dnspython(twin.read_bytes())
        assert mdnsq_view(uncompressed) == mdnsq_view(message)
    else:
        # Everything but the NSEC next name is plain: dnspython must agree once we re-encode with
        # mdnsq, which writes NSEC next names uncompressed (RFC 6762 §18.14 advice for senders).
        assert_same_as_dnspython(encode_message(message))


@pytest.mark.parametrize("row", EMPTY_TXT, ids=[row["path"] for row in EMPTY_TXT])
def test_empty_txt_rdata_is_kept(row: dict[str, Any]) -> None:
    """python-zeroconf sends the ssh TXT with RDLENGTH 0: dnspython refuses, mdnsq keeps it."""
    wire = load(row)
    message = parse_message(wire)
    assert message.skipped == 0
    txts = [r for r in message.records if isinstance(r, TXTRecord) and r.name.startswith("Secure")]
    assert txts
    assert all(t.strings == () and dict(t.properties) == {} for t in txts)
    # Re-encoded, the TXT becomes one empty string (RFC 6763 §6.1); dnspython agrees on the rest.
    again = assert_same_as_dnspython(encode_message(message))
    names = {t.name for t in txts}
    again_txts = [t for t in again.records if isinstance(t, TXTRecord) and t.name in names]
    assert [t.strings for t in again_txts] == [(b"",)] * len(txts)


def _skip_name(body: bytearray, pos: int) -> int:
    """Offset after the name at ``pos``, moving its compression pointer 12 bytes on."""
    while body[pos]:
        if body[pos] >= 0xC0:
            pointer = ((body[pos] & 0x3F) << 8 | body[pos + 1]) + 12
            body[pos : pos + 2] = (0xC000 | pointer).to_bytes(2, "big")
            return pos + 2
        pos += body[pos] + 1
    return pos + 1


def _relocate(fragment: bytes, question: bool) -> bytes:
    """The fragments were cut from offset 0 of their packets; shift their pointers past a header."""
    body = bytearray(fragment)
    pos = _skip_name(body, 0)
    if not question:
        rtype = int.from_bytes(body[pos : pos + 2], "big")
        if rtype in (12, 5):
            _skip_name(body, pos + 10)
        elif rtype == 33:
            _skip_name(body, pos + 16)
    return bytes(body)


FRAGMENTS = [row for row in INDEX if row["kind"] != "message"]


@pytest.mark.parametrize("row", FRAGMENTS, ids=[row["path"] for row in FRAGMENTS])
def test_fragment_wrapped_in_a_header(row: dict[str, Any]) -> None:
    """A bare question / record from dnssd.js parses once given a header, the same as dnspython."""
    body = load(row)
    question = row["kind"] == "question-fragment"
    header = struct.pack("!6H", 0, 0x8400, 1 if question else 0, 0 if question else 1, 0, 0)
    wire = header + _relocate(body, question)
    try:
        dns.message.from_wire(wire, one_rr_per_rrset=True)
    except Exception:
        # dnspython refuses a few (an OPT record outside the additional section, HINFO with
        # unusual strings); mdnsq must still read them without skipping.
        message = parse_message(wire)
        assert message.skipped == 0
        assert len(message.questions) + len(message.answers) == 1
    else:
        assert_same_as_dnspython(wire)


def test_reference_packet_fields() -> None:
    """The benchmark packet, spelled out field by field (see bench/data/PROVENANCE.md)."""
    wire = (Path(__file__).parent.parent / "bench" / "data" / "dnssd-response-306.bin").read_bytes()
    message = assert_same_as_dnspython(wire)
    assert message.flags == 0x8400 and message.is_response and message.authoritative
    (ptr,) = message.answers
    srv, txt, a, aaaa = message.additionals
    assert isinstance(ptr, PTRRecord) and ptr.target == "Office Printer._http._tcp.local"
    assert ptr.ttl == 4500 and not ptr.cache_flush
    assert isinstance(srv, SRVRecord) and (srv.port, srv.target) == (631, "printer-3f2a.local")
    assert srv.cache_flush and srv.ttl == 120
    assert isinstance(txt, TXTRecord) and txt.properties["ty"] == b"Example LaserJet 4200"
    assert txt.properties["uuid"] == b"6f1c2c1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f"
    assert isinstance(a, ARecord) and str(a.address) == "192.168.1.50"
    assert isinstance(aaaa, AAAARecord) and str(aaaa.address) == "fe80::1c2d:3eff:fe4f:5a6b"
