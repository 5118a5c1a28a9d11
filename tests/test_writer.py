"""Encoding: compression, the QU and cache-flush bits, size limits, known-answer splitting."""

from __future__ import annotations

import dns.message
import pytest

from mdnsq import (
    FLAG_QR,
    AAAARecord,
    ARecord,
    HINFORecord,
    InvalidArgument,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    RecordType,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    build_queries,
    build_query,
    encode_message,
    parse_message,
    writer,
)

SERVICE = "_http._tcp.local"


def ptr(i: int, ttl: int = 4500) -> PTRRecord:
    return PTRRecord(name=SERVICE, ttl=ttl, target=f"Instance {i:03d}.{SERVICE}")


def test_every_record_kind_round_trips_and_dnspython_agrees() -> None:
    records = [
        ptr(1),
        SRVRecord(
            name=f"Instance 001.{SERVICE}",
            ttl=120,
            priority=1,
            weight=2,
            port=8080,
            target="host.local",
            cache_flush=True,
        ),
        TXTRecord(name=f"Instance 001.{SERVICE}", ttl=4500, strings=[b"a=1", b"flag", b""]),
        ARecord(name="host.local", ttl=120, address="192.0.2.7", cache_flush=True),
        AAAARecord(name="host.local", ttl=120, address="fe80::1", cache_flush=True),
        HINFORecord(name="host.local", ttl=120, cpu=b"ARM", os=b"Linux"),
        NSECRecord(name="host.local", ttl=120, next_name="host.local", types={1, 28}),
        UnknownRecord(name="host.local", ttl=5, type=99, rdata=b"\x01\x02"),
    ]
    message = Message(flags=FLAG_QR | 0x0400, answers=records[:2], additionals=records[2:])
    wire = encode_message(message)
    again = parse_message(wire)
    assert again == message
    assert [r.ttl for r in again.records] == [r.ttl for r in records]
    theirs = dns.message.from_wire(wire, one_rr_per_rrset=True)
    assert len(theirs.answer) + len(theirs.additional) == len(records)
    assert str(theirs.additional[0][0].strings[1], "ascii") == "flag"


def test_names_are_compressed() -> None:
    records = [ptr(i) for i in range(20)]
    wire = encode_message(Message(flags=FLAG_QR, answers=records))
    # Each extra PTR costs its owner pointer (2), header (10), the instance label and a pointer.
    per_record = 2 + 10 + 1 + len("Instance 000") + 2
    assert len(wire) == 12 + (len(SERVICE) + 2 + 10 + 1 + len("Instance 000") + 2) + 19 * per_record
    assert parse_message(wire).answers == tuple(records)


def test_escaped_instance_names_share_the_service_type_pointer() -> None:
    """'Dr\\. Who' needs escaping; its plain tail must still point at the PTR owner's name."""
    target = f"Dr\\. Who's Printer.{SERVICE}"
    records = [
        PTRRecord(name=SERVICE, ttl=4500, target=target),
        SRVRecord(name=target, ttl=120, priority=0, weight=0, port=631, target="h.local"),
    ]
    wire = encode_message(Message(flags=FLAG_QR, answers=records))
    label = len("Dr. Who's Printer")
    ptr_rr = len(SERVICE) + 2 + 10 + 1 + label + 2  # owner, header, label + pointer to owner
    srv_rr = 2 + 10 + 6 + 1 + 1 + 2  # owner pointer, header, SRV head, "h" + pointer to "local"
    assert len(wire) == 12 + ptr_rr + srv_rr
    assert parse_message(wire).answers == tuple(records)


def test_a_name_written_before_is_one_lookup_not_a_second_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Owners that are suffixes of a long escaped name already written (as a parser returns
    them, in canonical text) become pointers without splitting and unescaping each one again:
    re-encoding 75 such records cost 12 ms, linear in their labels, against 0.3 ms now."""
    long_name = ".".join(["\\255"] * 100 + ["local"])
    owners = [long_name.split(".", i)[-1] for i in range(1, 75)]
    records = [ARecord(name=o, ttl=120, address=bytes([192, 0, 2, 1])) for o in owners]
    message = Message(flags=FLAG_QR, questions=[Question(long_name, RecordType.A)], answers=records)
    reads: list[str] = []
    escape, split = writer.escape_label_bytes, writer.name_to_wire_labels
    monkeypatch.setattr(writer, "escape_label_bytes", lambda b: reads.append("escape") or escape(b))
    monkeypatch.setattr(writer, "name_to_wire_labels", lambda n: reads.append(n) or split(n))
    wire = encode_message(message)
    # The question's 101 labels split once and escaped once; every owner was a lookup.
    assert reads == [long_name] + ["escape"] * 101
    assert parse_message(wire).answers == tuple(records)
    assert len(wire) == 12 + (100 * 2 + 7) + 4 + len(records) * (2 + 10 + 4)


def test_nsec_next_name_is_not_compressed() -> None:
    nsec = NSECRecord(name="host.local", ttl=120, next_name="host.local", types={1})
    wire = encode_message(Message(flags=FLAG_QR, answers=[nsec]))
    assert wire.count(b"\x04host\x05local\x00") == 2
    dns.message.from_wire(wire)  # dnspython refuses compressed NSEC names: it must accept this


def test_qu_bit_and_cache_flush_bit_are_the_top_bit_of_the_class() -> None:
    wire = build_query("host.local", RecordType.A, unicast_response=True)
    assert wire[-2:] == b"\x80\x01"
    assert parse_message(wire).questions[0].unicast_response
    record = ARecord(name="host.local", ttl=120, address="192.0.2.1", cache_flush=True)
    wire = encode_message(Message(flags=FLAG_QR, answers=[record]))
    assert b"\x00\x01\x80\x01\x00\x00\x00\x78" in wire


def test_build_query_with_known_answers() -> None:
    known = [ptr(1, ttl=3000), ptr(2, ttl=3000)]
    wire = build_query(SERVICE, RecordType.PTR, known_answers=known, id=0)
    message = parse_message(wire)
    assert message.questions == (Question(SERVICE, RecordType.PTR),)
    assert message.answers == tuple(known)
    assert not message.is_response and not message.truncated


def test_encoding_never_exceeds_9000_bytes_with_the_ip_and_udp_headers() -> None:
    """RFC 6762 §17: 9000 bytes is the whole packet: 8952 of message under IPv6's headers."""
    big = [TXTRecord(name=f"i{i}.{SERVICE}", ttl=1, strings=[b"x" * 255] * 4) for i in range(10)]
    with pytest.raises(ValueError, match="8952"):
        encode_message(Message(flags=FLAG_QR, answers=big))
    assert len(encode_message(Message(flags=FLAG_QR, answers=big[:8]))) <= 8952
    # A message of 8,953 bytes (9,001 on the wire over IPv6) is refused; one of 8,952 is not.
    head = 12 + len(SERVICE) + 2 + 10  # header, owner name, record header
    for rdata, refused in ((8952 - head, False), (8953 - head, True)):
        record = UnknownRecord(name=SERVICE, ttl=1, type=99, rdata=b"x" * rdata)
        message = Message(flags=FLAG_QR, answers=(record,))
        if refused:
            with pytest.raises(InvalidArgument):
                encode_message(message)
        else:
            assert len(encode_message(message)) == 8952


def test_build_queries_splits_known_answers_with_tc_on_all_but_the_last() -> None:
    questions = [Question(SERVICE, RecordType.PTR), Question("_ipp._tcp.local", RecordType.PTR)]
    known = [ptr(i) for i in range(200)]
    packets = build_queries(questions, known, max_size=512)
    assert len(packets) > 3
    messages = [parse_message(p) for p in packets]
    assert all(len(p) <= 512 for p in packets)
    assert [m.truncated for m in messages] == [True] * (len(packets) - 1) + [False]
    assert messages[0].questions == tuple(questions)
    assert all(m.questions == () for m in messages[1:])
    assert [r for m in messages for r in m.answers] == known
    # Each packet compresses on its own: every one is readable alone.
    for packet in packets:
        dns.message.from_wire(packet)


def test_build_queries_by_default_fits_a_1500_byte_link_under_ipv6() -> None:
    """RFC 6762 §17: 1452 bytes of DNS is what IPv6 carries unfragmented over a 1500-byte MTU
    (IPv4 would take 1472). The default was 1460: 57 known answers of 25 bytes made 1459."""
    known = [PTRRecord(name=SERVICE, ttl=4500, target=f"i-{i:08d}.{SERVICE}") for i in range(120)]
    packets = build_queries([Question(SERVICE, RecordType.PTR)], known)
    sizes = [len(p) for p in packets]
    assert max(sizes) <= 1452 and sizes[0] > 1452 - 25, sizes
    assert [r for p in packets for r in parse_message(p).answers] == known


def test_build_queries_without_known_answers_is_one_packet() -> None:
    packets = build_queries([Question("host.local", RecordType.A)])
    assert len(packets) == 1 and not parse_message(packets[0]).truncated


def test_build_queries_refuses_questions_that_cannot_fit() -> None:
    questions = [Question(f"{'q' * 60}.n{i}.local", RecordType.TXT) for i in range(10)]
    with pytest.raises(ValueError):
        build_queries(questions, max_size=300)


def test_a_known_answer_too_big_for_any_packet_is_left_out() -> None:
    # Known answers only spare the responder an answer; the question must still go out.
    huge = TXTRecord(name="x.local", ttl=100, strings=[b"y" * 255] * 3)
    small = [ptr(i, ttl=3000) for i in range(3)]
    question = Question("x.local", RecordType.TXT)
    packets = build_queries([question], [small[0], huge, *small[1:]], max_size=300)
    messages = [parse_message(p) for p in packets]
    assert messages[0].questions == (question,)
    assert [r for m in messages for r in m.answers] == small
    assert all(len(p) <= 300 for p in packets)


def test_known_answers_never_carry_the_cache_flush_bit() -> None:
    # RFC 6762 §10.2: "MUST NOT be set in any resource records in the Known-Answer list".
    record = ARecord(name="host.local", ttl=120, address="192.0.2.1", cache_flush=True)
    (packet,) = build_queries([Question("host.local", RecordType.A)], [record])
    assert b"\x00\x01\x00\x01\x00\x00\x00\x78" in packet
    assert not parse_message(packet).answers[0].cache_flush


def test_bad_values_are_refused_when_building_records() -> None:
    with pytest.raises(ValueError):
        TXTRecord(name="x.local", ttl=1, strings=[b"z" * 256])
    with pytest.raises(ValueError):
        ARecord(name="x.local", ttl=-1, address="192.0.2.1")
    with pytest.raises(ValueError):
        SRVRecord(name="x.local", ttl=1, priority=0, weight=0, port=70000, target="h.local")
    with pytest.raises(ValueError):
        Question("x.local", 1, rclass=0x8001)
