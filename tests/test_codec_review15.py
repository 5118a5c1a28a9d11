"""Fifteenth session: the slowest input of a 9000-byte fuzz run (adr/004, "Fifteenth session").

Its shape is fuzz/adversarial.escaped_suffixes_of_a_skipped_question: owners that are suffixes
of a long escaped name, each one label longer than the last, that nothing wrote whole first.
The writer built and escaped every suffix of every such name (labels x names, and the square
of the length in characters: 21 ms to encode). It now reads only the labels in front of the
first suffix already written. Work is counted here, not timed, and the bytes must not change.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import adversarial
from mdnsq import (
    FLAG_QR,
    ARecord,
    InvalidArgument,
    Message,
    PTRRecord,
    Question,
    RecordType,
    build_queries,
    encode_message,
    escape_label,
    join_name,
    parse_message,
    writer,
)
from mdnsq.names import escape_label_bytes, name_to_wire_labels
from tests.test_parse_reference import ours, ref_parse

# encode_message of the shape's message, and of two other orders of it, by the writer before
# this session (641b9d0): (bytes, SHA-1).
BEFORE = {
    "as parsed": (8454, "32a1bb9813574a84b105692fce29bf3012f4084a"),
    "reversed": (8454, "70dba02333aa50a3cd6d576cb7734f65139318a0"),
    "answers only": (8436, "8fe31d532be515ebdc58eb251bab6489b4d012bd"),
}


def shape_message() -> Message:
    return parse_message(adversarial.escaped_suffixes_of_a_skipped_question())


def orders(message: Message) -> dict[str, Message]:
    return {
        "as parsed": message,
        "reversed": Message(
            flags=message.flags, questions=message.questions[::-1], answers=message.answers[::-1]
        ),
        "answers only": Message(flags=message.flags, answers=message.answers),
    }


def test_the_shape_encodes_byte_for_byte_as_before() -> None:
    for order, message in orders(shape_message()).items():
        wire = encode_message(message)
        assert (len(wire), hashlib.sha1(wire).hexdigest()) == BEFORE[order], order
        assert parse_message(wire).records == message.records


def inline_labels(wire: bytes) -> int:
    """Labels written out in the question and owner names of ``wire`` (not behind pointers):
    what an encoder cannot avoid reading."""
    qd, an, ns, ar = struct.unpack_from("!4H", wire, 4)
    pos = 12
    labels = 0

    def name() -> None:
        nonlocal pos, labels
        while wire[pos] and wire[pos] < 0xC0:
            labels += 1
            pos += wire[pos] + 1
        pos += 1 if wire[pos] == 0 else 2

    for _ in range(qd):
        name()
        pos += 4
    for _ in range(an + ns + ar):
        name()
        pos += 10 + struct.unpack_from("!H", wire, pos + 8)[0]
    assert pos == len(wire)
    return labels


def count_label_reads(monkeypatch: pytest.MonkeyPatch, call: Callable[[], bytes]) -> int:
    """Labels the writer escaped plus names it split (each split reads every label of its
    name) during ``call()``."""
    reads = 0
    escape, split = writer.escape_label_bytes, writer.name_to_wire_labels

    def counting_escape(label: bytes) -> str:
        nonlocal reads
        reads += 1
        return escape(label)

    def counting_split(name: str) -> list[bytes]:
        nonlocal reads
        labels = split(name)
        reads += len(labels)
        return labels

    monkeypatch.setattr(writer, "escape_label_bytes", counting_escape)
    monkeypatch.setattr(writer, "name_to_wire_labels", counting_split)
    call()
    return reads


def test_the_shape_reads_each_label_it_writes_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Linear in what is written: each label written out is escaped once and split once.
    Before: 14,294 label reads for 245 labels written (every suffix of every name)."""
    message = shape_message()
    wire = encode_message(message)
    reads = count_label_reads(monkeypatch, lambda: encode_message(message))
    written = inline_labels(wire)
    print(f"{reads} label reads, {written} labels written")
    assert reads <= 2 * written


@pytest.mark.parametrize("labels", [30, 60, 120])
def test_suffixes_written_one_label_longer_each_read_each_label_once(
    monkeypatch: pytest.MonkeyPatch, labels: int
) -> None:
    """Records made by their constructors (no parser): owners that are the suffixes of one
    escaped name, shortest first. Each owner writes one new label and a pointer, so the reads
    stay at two per label however long the name (before: labels x labels / 2)."""
    long_name = ".".join(["\\255"] * labels + ["local"])
    owners = [long_name.split(".", i)[-1] for i in range(labels, -1, -1)]
    records = [ARecord(name=o, ttl=120, address=bytes([192, 0, 2, 1])) for o in owners]
    message = Message(flags=FLAG_QR, answers=records)
    wire = encode_message(message)
    assert inline_labels(wire) == labels + 1
    assert parse_message(wire).answers == tuple(records)
    reads = count_label_reads(monkeypatch, lambda: encode_message(message))
    assert reads <= 2 * (labels + 1)


# The writer's keys before this session, for any name: the canonical text of each suffix of a
# name holding escapes, slices of the name otherwise; the first key written ends the name.
def reference_unwritten(
    name: str, names: dict[str, int]
) -> tuple[list[tuple[str, bytes]], int | None]:
    if "\\" in name:
        labels = name_to_wire_labels(name)
        suffixes = [
            (".".join(escape_label_bytes(label) for label in labels[i:]), labels[i])
            for i in range(len(labels))
        ]
    else:
        suffixes = writer._suffixes(name)  # that branch is unchanged
    out = []
    for key, label in suffixes:
        if key in names:
            return out, names[key]
        out.append((key, label))
    return out, None


def encode_both(make: Callable[[], Any]) -> tuple[Any, Any]:
    """``make()`` with this writer, then with the reference keys: each a result or the error."""

    def outcome() -> Any:
        try:
            return make()
        except InvalidArgument as error:
            return str(error)

    ours_now = outcome()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(writer, "_unwritten", reference_unwritten)
        reference = outcome()
    return ours_now, reference


def test_every_hostile_shape_encodes_as_the_reference_keys_do() -> None:
    for name, build in adversarial.BUILDERS.items():
        for order, message in orders(parse_message(build())).items():
            now, before = encode_both(lambda m=message: encode_message(m))
            assert now == before, (name, order)


def raw_record(name: str, index: int) -> ARecord:
    """A record whose owner is ``name`` exactly as given, as no constructor would leave it (a
    spelling other than the canonical one, a trailing dot, a lone surrogate)."""
    record: ARecord = tuple.__new__(ARecord, (name, 1, 120, False, bytes([192, 0, 2, index])))
    return record


_LABELS = ["local", "_tcp", "a", "\\255", "\\.", "\\\\", "Dr\\. Who", "é", "\\195\\169"]
_ODD = ["\\097", "\\e", "\udcff", "a\\", "\\256", "", "x" * 64]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_LABELS + _ODD), min_size=1, max_size=12), max_size=14),
    st.lists(st.sampled_from(_LABELS), min_size=1, max_size=120),
    st.data(),
)
def test_any_names_in_any_order_encode_as_the_reference_keys_do(
    names: list[list[str]], long: list[str], data: st.DataObject
) -> None:
    """Names that share suffixes with each other and with one long name, in any order,
    canonical or not (the writer takes those the general way), valid or not (same error)."""
    long_name = ".".join(long)
    texts = [".".join(labels) for labels in names]
    texts += [long_name.split(".", i)[-1] for i in data.draw(st.lists(st.integers(0, 119)))]
    texts = data.draw(st.permutations(texts))
    records = [raw_record(text, i & 0xFF) for i, text in enumerate(texts)]
    message = Message(flags=FLAG_QR, answers=tuple(records))
    now, before = encode_both(lambda: encode_message(message))
    assert now == before
    now, before = encode_both(lambda: build_queries([], records, max_size=600))
    assert now == before


@pytest.mark.parametrize(
    "front, suffix",
    [
        ("x" * 60, ".".join(["\\255"] * 100 + ["local"])),  # 61 + 207 bytes
        (".".join(["\\255"] * 6), ".".join(["a" * 60] * 4)),  # 12 + 245
        ("b" * 9, ".".join(["a" * 60] * 4)),  # 10 + 245: 255, the most there is
        ("b" * 10, ".".join(["a" * 60] * 4)),  # 11 + 245
    ],
)
def test_a_name_past_255_bytes_fails_though_its_suffix_was_written(front: str, suffix: str) -> None:
    """Only the front label is read, so the limit is counted from the text: the same error as
    before, or the same bytes at exactly 255."""
    records = [raw_record(suffix, 1), raw_record(f"{front}.{suffix}", 2)]
    message = Message(flags=FLAG_QR, answers=tuple(records))
    now, before = encode_both(lambda: encode_message(message))
    assert now == before
    assert isinstance(now, bytes) == (front == "b" * 9)


def test_an_escaped_name_holding_a_lone_surrogate_takes_the_canonical_keys() -> None:
    """A plain name keys its suffixes by its own text, "\\udcff" too; a name with escapes
    keys them by canonical text, where that byte is "\\255". So the second name below must
    not point at the first one's "\\udcff", though it ends with the same text."""
    records = [raw_record("a.\udcff", 1), raw_record("\\255.\udcff", 2)]
    message = Message(flags=FLAG_QR, answers=tuple(records))
    now, before = encode_both(lambda: encode_message(message))
    assert now == before
    assert inline_labels(now) == 4


def test_instance_names_still_share_the_service_type_and_host_pointers() -> None:
    service = "_ipp._tcp.local"
    instance = join_name(escape_label("Dr. Who's Printer"), service)
    records = [
        PTRRecord(name=service, ttl=4500, target=instance),
        ARecord(name="h\\.1.local", ttl=120, address="192.0.2.1"),
    ]
    question = Question(instance, RecordType.ANY)
    wire = encode_message(Message(flags=FLAG_QR, questions=[question], answers=records))
    # The question's labels, then the PTR owner a pointer, its target a pointer to the
    # question, the A owner one label ("h.1") and a pointer to "local".
    assert inline_labels(wire) == 4 + 1
    assert parse_message(wire).answers == tuple(records)


@pytest.mark.parametrize("byte", range(256))
def test_one_byte_labels_entered_one_earlier_each_time_read_as_the_reference(byte: int) -> None:
    """The parser's text of each one-byte label (a table since this session) against the
    reference decoder: a run of 40 such labels, records pointing into it last label first."""
    packet = bytearray(adversarial.header(qd=1))
    packet += bytes([1, byte]) * 40 + b"\x00" + struct.pack("!HH", 1, 1)
    count = 0
    for label in range(39, -1, -1):
        packet += adversarial.pointer(12 + 2 * label)
        packet += struct.pack("!HHIH", 1, 1, 120, 4) + bytes([192, 0, 2, label])
        count += 1
    packet[0:12] = adversarial.header(qd=1, an=count)
    assert ours(bytes(packet)) == ref_parse(bytes(packet))
