"""Name text form: escaping round trips, validation, comparison keys."""

from __future__ import annotations

import struct
from typing import Any

import dns.message
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdnsq import (
    InvalidArgument,
    PTRRecord,
    SRVRecord,
    encode_message,
    escape_label,
    join_name,
    name_key,
    names,
    normalize_name,
    parse_message,
    split_name,
    unescape_label,
)
from mdnsq.names import name_to_wire_labels
from mdnsq.records import Message

DR_WHO = "Dr. Who's Printer"


def round_trip_through_the_wire(name: str) -> tuple[str, list[bytes]]:
    """Encode a PTR to ``name``; return the name mdnsq reads back and dnspython's labels."""
    record = PTRRecord(name="_ipp._tcp.local", ttl=120, target=name)
    wire = encode_message(Message(flags=0x8400, answers=[record]))
    (parsed,) = parse_message(wire).answers
    assert isinstance(parsed, PTRRecord)
    theirs = dns.message.from_wire(wire).answer[0][0].target.labels[:-1]
    return parsed.target, list(theirs)


def test_dr_whos_printer_survives_a_round_trip() -> None:
    name = join_name(escape_label(DR_WHO), "_ipp._tcp.local")
    assert name == "Dr\\. Who's Printer._ipp._tcp.local"
    back, their_labels = round_trip_through_the_wire(name)
    assert back == name
    assert their_labels == [b"Dr. Who's Printer", b"_ipp", b"_tcp", b"local"]
    assert split_name(back)[0] == DR_WHO


def test_utf8_labels_are_text() -> None:
    instance = "Dr. Who’s Café Printer ☕"
    name = join_name(escape_label(instance), "_ipp._tcp.local")
    back, their_labels = round_trip_through_the_wire(name)
    assert back == name
    assert their_labels[0] == instance.encode()
    assert split_name(back) == [instance, "_ipp", "_tcp", "local"]


def test_backslashes_are_escaped_and_come_back() -> None:
    label = "back\\slash.and.dots\\"
    escaped = escape_label(label)
    assert escaped == "back\\\\slash\\.and\\.dots\\\\"
    assert unescape_label(escaped) == label
    back, their_labels = round_trip_through_the_wire(escaped + ".local")
    assert back == escaped + ".local"
    assert their_labels[0] == label.encode()


def test_invalid_utf8_comes_out_as_decimal_escapes_and_goes_back_byte_for_byte() -> None:
    raw_label = b"\xff\xfeok\xc3"  # not UTF-8 (bad start bytes, a cut-off sequence)
    owner = bytes([len(raw_label)]) + raw_label + b"\x05local\x00"
    rdata = b"\x04host\x05local\x00"
    wire = struct.pack("!6H", 0, 0x8400, 0, 1, 0, 0) + owner + struct.pack("!HHIH", 12, 1, 120, 12)
    wire += rdata
    (record,) = parse_message(wire).answers
    assert record.name == "\\255\\254ok\\195.local"
    assert name_to_wire_labels(record.name) == [raw_label, b"local"]
    again = encode_message(Message(flags=0x8400, answers=[record]))
    # The raw label goes back byte for byte; the target's "local" now points at the owner's.
    local_at = 12 + 1 + len(raw_label)
    compressed = b"\x04host" + (0xC000 | local_at).to_bytes(2, "big")
    head = struct.pack("!HHIH", 12, 1, 120, len(compressed))
    assert again == wire[: 12 + len(owner)] + head + compressed
    assert parse_message(again).answers == (record,)
    assert escape_label(unescape_label("\\255\\254ok\\195")) == "\\255\\254ok\\195"


def test_decimal_escapes_of_ascii_normalize_to_the_character() -> None:
    assert normalize_name("\\065bc.local") == "Abc.local"
    assert normalize_name("a\\.b.local.") == "a\\.b.local"
    assert normalize_name("\\q.local") == "q.local"


def test_trailing_dot_is_optional_unless_escaped() -> None:
    assert normalize_name("host.local.") == "host.local"
    assert normalize_name("host.local") == "host.local"
    assert normalize_name("dot\\.") == "dot\\."
    assert split_name("dot\\.") == ["dot."]
    assert normalize_name("") == "" and normalize_name(".") == ""
    assert split_name(".") == []


@pytest.mark.parametrize(
    "bad",
    [
        "a..local",
        ".local",
        "x" * 64 + ".local",
        ".".join(["x" * 63] * 4) + ".local",
        "dangling\\",
        "big\\256.local",
    ],
)
def test_invalid_names_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_name(bad)


def test_longest_legal_name() -> None:
    name = ".".join(["x" * 63] * 3 + ["y" * 61])
    assert normalize_name(name) == name
    with pytest.raises(ValueError):
        normalize_name(name + "y")


def test_name_key_lowercases_ascii_only() -> None:
    assert name_key("Office-Printer._HTTP._tcp.Local") == "office-printer._http._tcp.local"
    assert name_key("CAFÉ.local") == "cafÉ.local"  # RFC 4343: only A-Z fold


def test_split_and_join() -> None:
    assert split_name("a\\.b.c.local") == ["a.b", "c", "local"]
    assert join_name("a\\.b", "c.local.") == "a\\.b.c.local"
    assert join_name("", "local") == "local"
    with pytest.raises(ValueError):
        unescape_label("two.labels")


def test_records_normalize_their_names() -> None:
    record = SRVRecord(
        name="Box._http._tcp.local.", ttl=1, priority=0, weight=0, port=80, target="box.local."
    )
    assert record.name == "Box._http._tcp.local" and record.target == "box.local"


def read_escaped(text: str) -> list[bytes]:
    """The reference for names._split_raw: the wire labels of an escaped name, read one
    character at a time, as a person reads it (what names._split_raw did before it worked in
    C passes)."""
    labels: list[bytes] = []
    current = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                raise ValueError("dangling backslash")
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and digits.isdigit() and digits.isascii():
                if int(digits) > 255:
                    raise ValueError("escape out of range")
                current.append(int(digits))
                i += 4
                continue
            current += text[i + 1].encode("utf-8", "surrogateescape")
            i += 2
        elif ch == ".":
            labels.append(bytes(current))
            current.clear()
            i += 1
        else:
            current += ch.encode("utf-8", "surrogateescape")
            i += 1
    labels.append(bytes(current))
    return labels


# The pieces escaped names are made of, the awkward ones several times: runs of backslashes
# pair up left to right, \DDD needs exactly three ASCII digits (and may be out of range), a
# digit written by one escape must not pair with an earlier backslash, and the surrogates the
# fast split uses as stand-ins (U+D800, U+D801; no name can hold them) may appear.
_NAME_PIECES = [
    "\\",
    "\\",
    ".",
    "a",
    "1",
    "2",
    "0",
    "9",
    "\udcff",
    "é",
    "٣",
    "\\.",
    "\\\\",
    "\\255",
    "\\256",
    "\\046",
    "\\092",
    "\\12",
    "\\٢٥٥",
    "\ue000",
    "\ud800",
    "\ud801",
]


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(_NAME_PIECES), min_size=1, max_size=14))
def test_escaped_names_split_as_a_character_by_character_reader_splits_them(
    pieces: list[str],
) -> None:
    text = "".join(pieces)

    def outcome(split: Any) -> tuple[str, object]:
        try:
            return "ok", split(text)
        except ValueError:
            return "error", None

    assert outcome(names._split_raw) == outcome(read_escaped)


# -- found in the fourteenth session's review of the codec ----------------------------------


def test_a_host_of_two_labels_whose_first_ends_in_a_backslash_gets_no_second_local() -> None:
    """normalize_host looked for a dot that is not escaped by deleting every "\\.": in
    "x\\\\.local" (labels 'x\\' and 'local', an SRV target a peer may send) that removed the
    separator, and resolve_host(info.host) asked about "x\\\\.local.local"."""
    from mdnsq.service import normalize_host

    assert split_name("x\\\\.local") == ["x\\", "local"]
    assert normalize_host("x\\\\.local") == "x\\\\.local"
    assert normalize_host("a\\\\.b") == "a\\\\.b"
    assert normalize_host("x\\\\") == "x\\\\.local"
    assert normalize_host("x\\.y") == "x\\.y.local"  # one label holding a dot


def test_join_name_refuses_a_part_ending_in_a_lone_backslash() -> None:
    """Alone, "Office\\" is refused; joined, its backslash escaped the joining dot and the
    name's labels became ['Office._ipp', '_tcp', 'local']."""
    with pytest.raises(InvalidArgument):
        join_name("Office\\", "_ipp._tcp.local")
    assert split_name(join_name("Office\\\\", "_ipp._tcp.local")) == [
        "Office\\",
        "_ipp",
        "_tcp",
        "local",
    ]


@pytest.mark.parametrize("value", [5, None, b"h.local"])
def test_a_name_that_is_not_text_is_a_type_error(value: Any) -> None:
    from mdnsq.service import normalize_host, normalize_service_type

    for function in (normalize_name, normalize_host, normalize_service_type):
        with pytest.raises(TypeError):
            function(value)
