"""What the parser hands out: RecordType, Question, records and Message, as the brief specifies."""

from __future__ import annotations

import operator
import pickle
from ipaddress import IPv4Address, IPv6Address

import pytest

from mdnsq import (
    FLAG_AA,
    FLAG_QR,
    FLAG_TC,
    AAAARecord,
    ARecord,
    InvalidArgument,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    Record,
    RecordType,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    encode_message,
    parse_message,
)


def test_record_type_accepts_any_16_bit_value() -> None:
    assert RecordType(28) is RecordType.AAAA
    odd = RecordType(65)
    assert odd.name == "TYPE65" and odd == 65 and RecordType(65) is odd
    assert RecordType(65535).name == "TYPE65535"
    with pytest.raises(ValueError):
        RecordType(65536)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("aaaa", 28), ("AAAA", 28), ("TYPE65", 65), ("type65", 65), ("28", 28), (" ptr ", 12)],
)
def test_record_type_parse(text: str, expected: int) -> None:
    assert RecordType.parse(text) == expected


@pytest.mark.parametrize(
    "junk", ["", "bogus", "TYPE", "TYPE70000", "-1", "12x", "A A", "\u017foa", "\u0661\u0662"]
)
def test_record_type_parse_rejects_junk(junk: str) -> None:
    # "\u017foa" (long s) upper-cased to SOA.
    with pytest.raises(ValueError):
        RecordType.parse(junk)


def test_record_type_parse_of_no_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        RecordType.parse(1)  # type: ignore[arg-type]


def test_equality_and_hash_ignore_ttl_and_ascii_case() -> None:
    a = PTRRecord(name="_HTTP._tcp.local", ttl=4500, target="X._http._tcp.local")
    b = PTRRecord(name="_http._tcp.local", ttl=0, target="X._http._tcp.local")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a.key == b.key == ("_http._tcp.local", RecordType.PTR, 1)
    c = PTRRecord(name="_http._tcp.local", ttl=0, target="Y._http._tcp.local")
    assert a != c
    assert a != PTRRecord(name="_http._tcp.local", ttl=0, target="X._http._tcp.local", rclass=3)


def test_records_and_questions_have_no_order() -> None:
    # Tuple order before: of two equal records each was less than the other (by TTL), and
    # sorting an SRV beside an A record raised comparing bytes with an int.
    a1 = ARecord(name="h.local", ttl=120, address="192.0.2.1")
    a2 = ARecord(name="h.local", ttl=60, address="192.0.2.1")
    srv = SRVRecord(
        name="x._http._tcp.local", ttl=120, priority=0, weight=0, port=80, target="h.local"
    )
    assert a1 == a2
    pairs = [(a1, a2), (a1, srv), (Question("h.local", 1), Question("g.local", 1))]
    pairs += [(a1, ("a",)), (("a",), a1)]  # a plain tuple on either side too
    for left, right in pairs:
        for compare in (operator.lt, operator.le, operator.gt, operator.ge):
            with pytest.raises(TypeError):
                compare(left, right)
    assert sorted([srv, a1], key=lambda r: r.key) == [a1, srv]  # a key sorts them


def test_records_of_different_kinds_never_compare_equal() -> None:
    txt = TXTRecord(name="h.local", ttl=1, strings=[b"\x01\x02\x03\x04"])
    unknown = UnknownRecord(name="h.local", ttl=1, type=99, rdata=b"\x04\x01\x02\x03\x04")
    assert txt != unknown and txt[4] == unknown[5]  # the same data, another kind
    assert ARecord(name="h.local", ttl=1, address="1.2.3.4") != (
        "h.local",
        1,
        1,
        False,
        b"\x01\x02\x03\x04",
    )


def test_records_are_immutable() -> None:
    record = ARecord(name="h.local", ttl=1, address="192.0.2.1")
    with pytest.raises(AttributeError):
        record.ttl = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        record.extra = 1  # type: ignore[attr-defined]


def test_addresses_are_ipaddress_objects() -> None:
    a = ARecord(name="h.local", ttl=1, address=IPv4Address("192.0.2.1"))
    aaaa = AAAARecord(name="h.local", ttl=1, address="fe80::1")
    assert a.address == IPv4Address("192.0.2.1") and a.type is RecordType.A
    assert aaaa.address == IPv6Address("fe80::1") and isinstance(aaaa, Record)


def test_txt_properties_follow_rfc_6763() -> None:
    txt = TXTRecord(
        name="p._ipp._tcp.local",
        ttl=1,
        strings=[b"Note=first", b"note=second", b"Scan", b"empty=", b"=novalue", b"", b"path=/a=b"],
    )
    assert dict(txt.properties) == {
        "note": b"first",
        "scan": None,
        "empty": b"",
        "path": b"/a=b",
    }


def test_unknown_record_keeps_its_type() -> None:
    record = UnknownRecord(name="h.local", ttl=1, type=65, rdata=b"\x00")
    assert record.type == 65 and record.type.name == "TYPE65" and record.rdata == b"\x00"
    assert record.key == ("h.local", 65, 1)


def test_nsec_types() -> None:
    nsec = NSECRecord(name="h.local", ttl=1, next_name="h.local", types=[1, 28, 1])
    assert nsec.types == frozenset({1, 28})
    assert "AAAA" in repr(nsec)


def test_message_properties() -> None:
    message = Message(id=7, flags=FLAG_QR | FLAG_AA | FLAG_TC | (2 << 11) | 3)
    assert message.is_response and message.authoritative and message.truncated
    assert message.opcode == 2 and message.rcode == 3 and message.id == 7
    assert message.skipped == 0 and message.records == ()


def test_question_fields_and_equality() -> None:
    q = Question("Host.local.", RecordType.A, unicast_response=True)
    assert (q.name, q.type, q.rclass, q.unicast_response) == ("Host.local", 1, 1, True)
    assert q == Question("host.local", 1, 1, True) and hash(q) == hash(
        Question("HOST.local", 1, 1, True)
    )
    assert q != Question("host.local", 1)


def test_with_ttl_and_pickle() -> None:
    record = ARecord(name="h.local", ttl=120, address="192.0.2.1", cache_flush=True)
    shorter = record.with_ttl(60)
    assert shorter.ttl == 60 and shorter == record and shorter.cache_flush
    message = Message(flags=FLAG_QR, answers=[record], questions=[Question("h.local", 1)])
    assert pickle.loads(pickle.dumps(message)) == message
    assert pickle.loads(pickle.dumps(record)).ttl == 120


def test_parsed_records_are_the_same_objects_people_build() -> None:
    built = [
        PTRRecord(name="_http._tcp.local", ttl=4500, target="A._http._tcp.local"),
        ARecord(name="a.local", ttl=120, address="192.0.2.9", cache_flush=True),
    ]
    parsed = parse_message(encode_message(Message(flags=FLAG_QR, answers=built))).answers
    assert parsed == tuple(built)
    assert [type(r) for r in parsed] == [PTRRecord, ARecord]
    assert [repr(r) for r in parsed] == [repr(r) for r in built]


def test_equality_ignores_the_cache_flush_bit() -> None:
    """A shared and a unique copy of the same data are the same record to a cache."""
    shared = ARecord(name="h.local", ttl=120, address="192.0.2.1")
    unique = ARecord(name="h.local", ttl=120, address="192.0.2.1", cache_flush=True)
    assert shared == unique and hash(shared) == hash(unique)


# -- found in the fourteenth session's review of the codec ----------------------------------


def test_txt_keys_that_differ_stay_apart() -> None:
    """Keys were decoded as ASCII with "replace": "é" and "è" both became two U+FFFD, one key,
    and the second was dropped as a duplicate (RFC 6763 §6.4: only equal keys are)."""
    record = TXTRecord(
        name="x._http._tcp.local",
        ttl=1,
        strings=["é=1".encode(), "è=2".encode(), b"k\xff=3", b"k\xfe=4", "É=5".encode(), b"A=6"],
    )
    assert record.properties == {
        "é": b"1",
        "è": b"2",
        "k" + chr(0xDCFF): b"3",  # bytes that are not UTF-8 as surrogate escapes, as in names
        "k" + chr(0xDCFE): b"4",
        "É": b"5",  # case folded in ASCII only, as in names (RFC 4343)
        "a": b"6",
    }


@pytest.mark.parametrize("rtype", [1, 5, 12, 13, 16, 28, 33, 47])
def test_unknown_record_refuses_a_type_with_its_own_class(rtype: int) -> None:
    """Sent, it came back as that class's record, unequal to what was sent, or was skipped by
    the receiver (an SRV of one byte)."""
    with pytest.raises(InvalidArgument):
        UnknownRecord(name="h.local", ttl=120, type=rtype, rdata=b"\x00")
    for rclass in (1, 3):  # the parser decodes them in any class
        record = UnknownRecord(name="h.local", ttl=120, type=99, rdata=b"\x00", rclass=rclass)
        again = parse_message(encode_message(Message(flags=0x8400, answers=[record])))
        assert again.answers == (record,)


def test_a_txt_key_of_a_byte_and_one_spelling_its_escape_stay_apart() -> None:
    """With undecodable bytes written as \\DDD, the ASCII key "\\128" and the byte 0x80
    were one key, and the second was dropped."""
    record = TXTRecord(name="x._http._tcp.local", ttl=1, strings=[b"\\128=1", b"\x80=2"])
    assert record.properties == {"\\128": b"1", "\udc80": b"2"}
