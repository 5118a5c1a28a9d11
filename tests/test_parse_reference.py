"""The parser's names against a slow reference decoder written for reading, not for speed.

parse_message caches names per packet in several ways (by offset, failures by label, long runs
of labels remembered for pointers into them), each a chance to return a different name than the
bytes say. The reference reads every name afresh, label by label. Packets here hold only
questions, A and PTR records and records of an unknown type, so the reference needs no RDATA
rules beyond "a PTR target is a name that fills its RDATA" and "a record whose name fails is
skipped" (an owner name, if it can be stepped over in place). Pointer chains stay far below the
hop limit (the one rule whose outcome depends on what was cached before), and every other rule
is the same for any reading order.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from fuzz import adversarial
from mdnsq import MalformedPacket, parse_message
from mdnsq.names import escape_label_bytes

_RR = struct.Struct("!HHIH")


class Fails(Exception):
    pass


def ref_name(data: bytes, pos: int, limit: int) -> tuple[str, int]:
    """(text, offset after the name in place); labels in place end at ``limit``, a pointer
    may lead anywhere in the packet; a target reached twice is a loop."""
    labels: list[bytes] = []
    after = None
    bound = limit
    followed: set[int] = set()
    wire = 1  # the terminator
    while True:
        if pos >= bound:
            raise Fails("past bounds")
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
            if pos + 1 >= bound:
                raise Fails("pointer cut off")
            target = (length & 0x3F) << 8 | data[pos + 1]
            if after is None:
                after = pos + 2
            if target >= len(data) or target in followed:
                raise Fails("pointer past the end or loop")
            followed.add(target)
            pos, bound = target, len(data)
            continue
        if length >= 0x40:
            raise Fails("label type")
        if pos + 1 + length > bound:
            raise Fails("label cut off")
        labels.append(data[pos + 1 : pos + 1 + length])
        wire += length + 1
        if wire > 255:
            raise Fails("too long")
        pos += length + 1
    return ".".join(escape_label_bytes(label) for label in labels), after or pos


def ref_step_over(data: bytes, pos: int, fixed: int) -> int | None:
    """The offset after the name at ``pos`` read in place (labels, then a terminator or a
    pointer, not followed), if ``fixed`` bytes follow it inside the packet; else None."""
    while pos < len(data):
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length >= 0xC0:
            pos += 2
            break
        if length >= 0x40:
            return None
        pos += length + 1
    else:
        return None
    return pos if pos + fixed <= len(data) else None


def ref_parse(data: bytes) -> tuple[list[str], list[tuple[str, int, object]], int] | None:
    """(question names, (owner, type, PTR target or RDATA) per kept record, skipped); None
    where parse_message must raise MalformedPacket."""
    if len(data) < 12:
        return None
    qd, an, ns, ar = struct.unpack_from("!4H", data, 4)
    pos = 12
    questions = []
    skipped = 0
    for _ in range(qd):
        try:
            name, pos = ref_name(data, pos, len(data))
        except Fails:
            # A question stepped over in place is skipped and counted; else the packet fails.
            after = ref_step_over(data, pos, 4)
            if after is None:
                return None
            pos = after + 4
            skipped += 1
            continue
        if pos + 4 > len(data):
            return None
        questions.append(name)
        pos += 4
    records: list[tuple[str, int, object]] = []
    for _ in range(an + ns + ar):
        # A record whose header cannot be read (its owner name not even in place) loses the
        # way to the next one: the parse ends there, counted once. An owner name that fails
        # but can be stepped over loses its record only.
        try:
            name, pos = ref_name(data, pos, len(data))
        except Fails:
            after = ref_step_over(data, pos, 10)
            if after is None:
                return questions, records, skipped + 1
            pos = after + 10 + _RR.unpack_from(data, after)[3]
            if pos > len(data):
                return questions, records, skipped + 1
            skipped += 1
            continue
        if pos + 10 > len(data):
            return questions, records, skipped + 1
        rtype, _rclass, _ttl, rdlength = _RR.unpack_from(data, pos)
        start, pos = pos + 10, pos + 10 + rdlength
        if pos > len(data):
            return questions, records, skipped + 1
        if rtype == 12:
            try:
                target, after = ref_name(data, start, pos)
            except Fails:
                skipped += 1
                continue
            if after != pos:
                skipped += 1
                continue
            records.append((name, rtype, target))
        elif rtype == 1:
            if rdlength != 4:
                skipped += 1
                continue
            records.append((name, rtype, data[start:pos]))
        else:
            records.append((name, rtype, data[start:pos]))
    return questions, records, skipped


def ours(data: bytes) -> tuple[list[str], list[tuple[str, int, object]], int] | None:
    try:
        message = parse_message(data)
    except MalformedPacket:
        return None
    records: list[tuple[str, int, object]] = []
    for record in message.answers + message.authorities + message.additionals:
        rtype = int(record.type)
        if rtype == 12:
            records.append((record.name, rtype, record.target))  # type: ignore[attr-defined]
        elif rtype == 1:
            records.append((record.name, rtype, record.address.packed))  # type: ignore[attr-defined]
        else:
            records.append((record.name, rtype, record.rdata))  # type: ignore[attr-defined]
    return [q.name for q in message.questions], records, message.skipped


def test_every_hostile_shape_reads_as_the_reference_reads_it() -> None:
    # The run memo once sliced escaped text by byte offsets (max_labels_escaped: 1 record and
    # 1 skipped instead of 545 records); no other test looked at the names of these packets.
    for name, build in adversarial.BUILDERS.items():
        if "nsec" in name:
            continue  # root names and bitmaps: tests/test_nsec_bitmap.py reads those
        packet = build()
        assert ours(packet) == ref_parse(packet), name


# Label contents that stress the decoder: plain, not UTF-8 (alone and next to valid UTF-8), NUL;
# ASCII needing \. and \\ escapes; and those that send a run down the slow path: control bytes,
# labels of 32 bytes or more. A name draws from one pool, so that long runs of each kind the
# parser remembers for pointers into them are common.
_PLAIN = [b"a", b"xyz", b"\xff", b"\xc3\xa9", b"\xc3", b"\xe9\xff", b"\x00"]
_DOTTED = [b"a", b"xyz", b".", b"\\", b"a.b", b"\x00"]
_OTHER = [b".", b"\\", b"\x01", b"A" * 40]
_POOLS = [_PLAIN, _DOTTED, _PLAIN + _DOTTED + _OTHER]


@st.composite
def packets(draw: st.DrawFn) -> bytes:
    """Questions and records whose names are runs of labels ending in the root or in a pointer.
    A record may instead carry a run as opaque RDATA (an unknown type): never read in place,
    only entered by pointers, in any order. Pointers mostly lead to where a label or a name's
    end is, sometimes anywhere in the packet."""
    count = draw(st.integers(1, 12))
    boundaries: list[int] = []
    pending: list[tuple[int, int]] = []  # (offset of a pointer's two bytes, target choice)
    packet = bytearray(12)
    qd = draw(st.integers(0, count))
    for i in range(count):
        kind = "question" if i < qd else draw(st.sampled_from(["owner", "ptr", "opaque"]))
        name = bytearray()
        name_at = len(packet) + (0 if kind in ("question", "owner") else 11)
        labels = draw(st.integers(0, 40))
        contents = st.sampled_from(draw(st.sampled_from(_POOLS)))
        for _ in range(labels):
            content = draw(contents)
            boundaries.append(name_at + len(name))
            name += bytes([len(content)]) + content
        boundaries.append(name_at + len(name))
        if draw(st.booleans()):
            pending.append((name_at + len(name), draw(st.integers(0, 10_000))))
            name += b"\xc0\x00"
        else:
            name += b"\x00"
        if kind == "question":
            packet += name + struct.pack("!HH", 12, 1)
        elif kind == "owner":
            packet += name + _RR.pack(1, 1, 120, 4) + bytes([192, 0, 2, i])
        else:
            packet += b"\x00" + _RR.pack(12 if kind == "ptr" else 65280, 1, 120, len(name)) + name
    for at, choice in pending:
        if choice % 4:
            target = boundaries[choice % len(boundaries)]
        else:
            target = 12 + choice % (len(packet) - 12)
        packet[at : at + 2] = bytes([0xC0 | target >> 8, target & 0xFF])
    packet[0:12] = struct.pack("!6H", 0, 0x8400, qd, count - qd, 0, 0)
    return bytes(packet)


@settings(max_examples=1500, deadline=None)
@given(packets())
def test_names_with_pointers_into_runs_read_as_the_reference_reads_them(data: bytes) -> None:
    assert ours(data) == ref_parse(data)


def test_pointers_into_a_run_in_an_order_that_stops_walks_at_cached_labels() -> None:
    # A run of 20 labels as opaque RDATA, entered by pointers at labels 19, 2 and 5: the walk
    # from label 2 ends at label 19's cached name, and the entry at label 5 falls inside it.
    # Only runs that end at a terminator or a pointer may be remembered: one that ended at a
    # cached label would hand the next entry a label to walk (a crash, once).
    run = b"\x02ab" * 20 + b"\x00"
    run_at = 12 + 11
    packet = bytearray(b"\x00" + _RR.pack(65280, 1, 120, len(run)) + run)
    for label in (19, 2, 5, 0, 15, 1):
        target = run_at + 3 * label
        packet += b"\x00" + _RR.pack(12, 1, 120, 2) + bytes([0xC0 | target >> 8, target & 0xFF])
    data = struct.pack("!6H", 0, 0x8400, 0, 7, 0, 0) + bytes(packet)
    assert ours(data) == ref_parse(data)
    assert [r[2] for r in ref_parse(data)[1][1:]] == [  # type: ignore[index]
        ".".join(["ab"] * (20 - label)) for label in (19, 2, 5, 0, 15, 1)
    ]


def _ptr_records_into(run: bytes, offsets: list[int]) -> bytes:
    """A packet: ``run`` as the opaque RDATA of its first record, then one PTR record per
    entry of ``offsets`` whose target is a bare pointer to the run's byte at that offset."""
    run_at = 12 + 11
    packet = bytearray(b"\x00" + _RR.pack(65280, 1, 120, len(run)) + run)
    for offset in offsets:
        target = run_at + offset
        packet += b"\x00" + _RR.pack(12, 1, 120, 2) + bytes([0xC0 | target >> 8, target & 0xFF])
    return struct.pack("!6H", 0, 0x8400, 0, 1 + len(offsets), 0, 0) + bytes(packet)


def test_entries_one_label_before_a_failed_one_fail_too() -> None:
    # Entered last label first, each entry is one label before a label whose name is cached:
    # here cached as not decoding (the run ends in a label of unknown type), so each fails.
    run = b"\x02ab" * 10 + b"\x41"
    data = _ptr_records_into(run, [3 * label for label in range(9, -1, -1)])
    assert ours(data) == ref_parse(data) == ([], [("", 65280, run)], 10)


def test_entries_one_label_before_a_cached_one_keep_the_255_byte_limit() -> None:
    # A run whose name is 255 (then 256) wire bytes, entered at its third label, its second,
    # then its start: the last two are each one label before a label whose name is cached.
    for extra, kept in ((0, 3), (1, 2)):
        first = bytes([4 + extra]) + b"x" * (4 + extra)
        run = first + b"\x02ab" * 83 + b"\x00"
        assert len(run) == 255 + extra
        data = _ptr_records_into(run, [len(first) + 3, len(first), 0])
        assert ours(data) == ref_parse(data)
        assert len(ref_parse(data)[1]) == 1 + kept  # type: ignore[index]


_ESCAPING = [b".", b"\\", b"a.b\\c", b"\\.", b"\xff.", b"\xc3\xa9\\"]


def test_one_label_that_needs_escapes_before_a_name_read_already() -> None:
    # The shape of most new names ("Office.Printer" + pointer) with a label that needs
    # escaping: as an owner name, as a PTR target, and entered by pointers one label before a
    # label whose name is cached (a run of such labels, last label first).
    packet = bytearray(b"\x05local\x00" + struct.pack("!HH", 12, 1))
    for i, content in enumerate(_ESCAPING):
        label = bytes([len(content)]) + content
        packet += label + b"\xc0\x0c" + _RR.pack(1, 1, 120, 4) + bytes([192, 0, 2, i])
        packet += b"\x00" + _RR.pack(12, 1, 120, len(label) + 2) + label + b"\xc0\x0c"
    run = b"".join(bytes([len(c)]) + c for c in _ESCAPING) + b"\x00"
    run_at = 12 + len(packet) + 11
    packet += b"\x00" + _RR.pack(65280, 1, 120, len(run)) + run
    starts = [sum(len(c) + 1 for c in _ESCAPING[:i]) for i in range(len(_ESCAPING))]
    for start in reversed(starts):
        target = run_at + start
        packet += b"\x00" + _RR.pack(12, 1, 120, 2) + bytes([0xC0 | target >> 8, target & 0xFF])
    count = 2 * len(_ESCAPING) + 1 + len(starts)
    data = struct.pack("!6H", 0, 0x8400, 1, count, 0, 0) + bytes(packet)
    assert ours(data) == ref_parse(data)
    texts = [r"\.", "\\\\", r"a\.b\\c", r"\\\.", r"\255\.", "é\\\\"]
    records = ref_parse(data)[1]  # type: ignore[index]
    assert [r[0] for r in records[0 : 2 * len(texts) : 2]] == [f"{t}.local" for t in texts]
    assert [r[2] for r in records[1 : 2 * len(texts) : 2]] == [f"{t}.local" for t in texts]
    assert [r[2] for r in records[2 * len(texts) + 1 :]] == [
        ".".join(texts[i:]) for i in reversed(range(len(texts)))
    ]
