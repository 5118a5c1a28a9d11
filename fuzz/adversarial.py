"""Hand-built hostile packets of (up to) 9000 bytes, for seeds, work-bound tests and benchmarks.

Each builder returns wire bytes that mdnsq must parse (or reject) with work linear in the size:
a chain of compression pointers re-used by hundreds of records, a chain of label+pointer hops,
a name of the maximum label count re-used by every record, several such names pointed into at
every label, many such names (escaped or not) each pointed into once, thousands of tiny records,
and an "honest" packet of the same size and record count as the baseline the others are
compared with.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

MAX_PACKET = 9000
_RR = struct.Struct("!HHIH")

__all__ = [
    "BUILDERS",
    "dead_end_from_each_label",
    "empty_nsec_records",
    "escaped_labels_before_pointers",
    "escaped_suffixes_of_a_skipped_question",
    "full_nsec_bitmaps",
    "header",
    "honest_ptrs",
    "label_chain",
    "labels_before_pointers",
    "long_names_pointed_once",
    "long_names_pointed_once_dotted",
    "long_names_pointed_once_escaped",
    "looping_long_names",
    "looping_long_names_escaped",
    "many_nsec_windows",
    "max_labels",
    "max_labels_escaped",
    "nsec_tiny_windows",
    "off_the_end_from_each_label",
    "owner_label_loops",
    "owner_pointer_loops",
    "pointer",
    "pointer_chain",
    "pointers_into_long_names",
    "pointers_into_long_names_backward",
    "pointers_into_long_names_backward_dotted",
    "pointers_into_long_names_backward_escaped",
    "pointers_into_long_names_zigzag",
    "ptr_label_loops",
    "query_of_escaped_labels",
    "query_of_pointers",
    "tiny_records",
    "too_long_from_each_label",
    "too_long_with_suffix_from_each_label",
]


def header(qd: int = 0, an: int = 0, ns: int = 0, ar: int = 0, flags: int = 0x8400) -> bytes:
    return struct.pack("!6H", 0, flags, qd, an, ns, ar)


def pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def _chain_packet(with_labels: bool, hops: int = 125, reuse_top: bool = True) -> bytes:
    """Record 0 (type 99, owner "a" at offset 12) carries a chain of ``hops`` pointers in its
    RDATA, each pointing at the previous one (optionally behind a one-byte label); every further
    record is a PTR whose target is a pointer into that chain, so a parser without memoised
    pointer targets walks the whole chain once per record."""
    start = 12 + 3 + 10  # after the header, the owner name "a" and the RR header
    body = bytearray()
    links: list[int] = []
    for i in range(hops):
        links.append(start + len(body))
        body += (b"\x01a" if with_labels else b"") + pointer(12 if i == 0 else links[-2])
    records = bytearray(b"\x01a\x00" + _RR.pack(99, 1, 120, len(body)) + body)
    count = 1
    i = 0
    while 12 + len(records) + 14 <= MAX_PACKET:
        target = links[-1] if reuse_top else links[-1 - (i % 8)]
        records += pointer(12) + _RR.pack(12, 1, 120, 2) + pointer(target)
        count += 1
        i += 1
    return header(an=count) + bytes(records)


def pointer_chain() -> bytes:
    """~620 PTR records whose targets each follow a chain of 125 bare compression pointers."""
    return _chain_packet(with_labels=False)


def label_chain() -> bytes:
    """~600 PTR records whose targets each follow 125 label+pointer hops (names of 126 labels)."""
    return _chain_packet(with_labels=True)


def honest_ptrs(size: int = MAX_PACKET) -> bytes:
    """The baseline: same layout and record count as pointer_chain, every target one hop away.
    ``size`` bounds the packet: the writer refuses more than 8952 bytes, so a baseline for a
    round trip (parse, encode, parse) must be that small."""
    body = b"".join(pointer(12) for _ in range(125))
    records = bytearray(b"\x01a\x00" + _RR.pack(99, 1, 120, len(body)) + body)
    count = 1
    while 12 + len(records) + 14 <= size:
        records += pointer(12) + _RR.pack(12, 1, 120, 2) + pointer(12)
        count += 1
    return header(an=count) + bytes(records)


def max_labels(label: bytes = b"\x01x") -> bytes:
    """A question name of 127 one-byte labels (the most that fits in 255 bytes), then records
    whose owner names point into it at every label boundary in turn."""
    return _long_names(1, 127, label, first=0)


def max_labels_escaped() -> bytes:
    """max_labels with every label a byte that is not UTF-8 (shown as \\255): every name needs
    escaping."""
    return max_labels(b"\x01\xff")


def _long_names(
    runs: int, per_name: int, label: bytes = b"\x01x", *, order: str = "forward", first: int = 1
) -> bytes:
    """``runs`` question names of 127 labels, then A records whose owners point into them:
    ``per_name`` labels of one name, from label ``first`` on (``order`` "backward": the last of
    those first; "zigzag": first, last, second, last but one, ...), then of the next name,
    round and round."""
    packet = bytearray(header())
    starts = []
    for _ in range(runs):
        starts.append(len(packet))
        packet += label * 127 + b"\x00" + struct.pack("!HH", 12, 1)
    count = 0
    while len(packet) + 16 <= MAX_PACKET:
        index = count % per_name
        if order == "backward":
            index = per_name - 1 - index
        elif order == "zigzag":
            index = index // 2 if index % 2 == 0 else per_name - 1 - index // 2
        owner = starts[(count // per_name) % runs] + len(label) * (first + index)
        packet += pointer(owner) + _RR.pack(1, 1, 120, 4) + bytes([192, 0, 2, count & 0xFF])
        count += 1
    packet[0:12] = header(qd=runs, an=count)
    return bytes(packet)


def pointers_into_long_names() -> bytes:
    """Four names of 127 labels, each pointed into at every label: a parser that walks from
    each target to the end of its name does 4 x 127 x 126 / 2 label steps."""
    return _long_names(4, 126)


def pointers_into_long_names_backward() -> bytes:
    """pointers_into_long_names from the last label to the first: each pointer enters the run
    one label earlier than the one before, so caching from where it is entered helps nothing."""
    return _long_names(4, 126, order="backward")


def pointers_into_long_names_backward_escaped() -> bytes:
    """The same with labels that are not UTF-8 (each shown as \\255)."""
    return _long_names(4, 126, b"\x01\xff", order="backward")


def pointers_into_long_names_backward_dotted() -> bytes:
    """The same with every label a dot (shown as \\.): one label before a cached name took
    the general reader for a label that needs escaping (1.19 ms against 0.73 for "x" labels)."""
    return _long_names(4, 126, b"\x01.", order="backward")


def pointers_into_long_names_zigzag() -> bytes:
    """Pointers into 125 labels of four long names, first and last label alternately, working
    inwards: each pointer from the front stops at a different cached label."""
    return _long_names(4, 125, order="zigzag")


def long_names_pointed_once() -> bytes:
    """As many names of 127 labels as fit with one record each pointing into it: caching the
    name at every label of every name pointed into would cost 126 names per record."""
    return _long_names(33, 1)


def long_names_pointed_once_escaped() -> bytes:
    """long_names_pointed_once with labels that are not UTF-8 (each shown as \\255)."""
    return _long_names(33, 1, b"\x01\xff")


def long_names_pointed_once_dotted() -> bytes:
    """long_names_pointed_once with every label a dot (shown as \\.)."""
    return _long_names(33, 1, b"\x01.")


def tiny_records() -> bytes:
    """As many records as fit: root owner name, unknown type, empty RDATA (11 bytes each)."""
    count = (MAX_PACKET - 12) // 11
    return header(an=count) + (b"\x00" + _RR.pack(65280, 1, 120, 0)) * count


def empty_nsec_records() -> bytes:
    """As many NSEC records as fit with empty RDATA, each skipped as malformed: the costliest
    record to reject (two exceptions each, 0.85 ms, before the empty RDATA was checked first)."""
    count = (MAX_PACKET - 12) // 11
    return header(an=count) + (b"\x00" + _RR.pack(47, 1, 120, 0)) * count


def _query_of(name: Callable[[int], bytes]) -> bytes:
    """A query: the question "local", then as many questions as fit whose names are
    ``name(i)`` followed by a pointer to "local" (questions are the smallest items a packet
    holds: 4 bytes and a name)."""
    body = bytearray(b"\x05local\x00" + struct.pack("!HH", 1, 1))
    count = 1
    while True:
        question = name(count) + pointer(12) + struct.pack("!HH", 1, 1)
        if 12 + len(body) + len(question) > MAX_PACKET:
            break
        body += question
        count += 1
    return header(qd=count, flags=0) + bytes(body)  # flags 0: a query


def query_of_pointers() -> bytes:
    """A query of 1,497 questions, each name one pointer to the first."""
    return _query_of(lambda i: b"")


def query_of_escaped_labels() -> bytes:
    """A query of 1,123 questions, each name one label that is not UTF-8 and a pointer: each
    a new name to decode and escape."""
    return _query_of(lambda i: b"\x01\xff")


def full_nsec_bitmaps() -> bytes:
    """As many NSEC records as fit, each bitmap window 0 with all 256 types but one, a
    different one each: no two alike, so no memo of bitmaps helps (4.5 ms when every bit
    was a step in Python)."""
    records = []
    size = 0
    while 12 + size + 48 <= MAX_PACKET:
        n = len(records)
        bitmap = bytearray(b"\xff" * 32)
        bitmap[n % 32] ^= 0x80 >> (n // 32 % 8)
        rdata = b"\x00\x00\x20" + bytes(bitmap)  # next name: the root
        records.append(b"\x00" + _RR.pack(47, 1, 120, len(rdata)) + rdata)
        size += len(records[-1])
    return header(an=len(records)) + b"".join(records)


def many_nsec_windows() -> bytes:
    """One NSEC record whose bitmap has all 256 windows full: every one of the 65,536 types."""
    windows = b"".join(bytes([w, 32]) + b"\xff" * 32 for w in range(256))
    rdata = b"\x00" + windows[: (MAX_PACKET - 12 - 11 - 1) // 34 * 34]
    return header(an=1) + b"\x00" + _RR.pack(47, 1, 120, len(rdata)) + rdata


def nsec_tiny_windows() -> bytes:
    """NSEC records whose bitmaps are all 256 windows of one byte each, a different byte
    pattern in every record: the most windows a packet holds (3 bytes each), no two bitmaps
    alike (5.0 ms when the parser decoded every window; now it decodes none)."""
    records = []
    size = 0
    room = MAX_PACKET - 12
    while room - size > 12 + 3:
        n = len(records)
        count = min(256, (room - size - 12) // 3)
        bitmap = b"".join(bytes((w, 1, (7 * n + w) % 255 + 1)) for w in range(count))
        rdata = b"\x00" + bitmap  # next name: the root
        records.append(b"\x00" + _RR.pack(47, 1, 120, len(rdata)) + rdata)
        size += len(records[-1])
    return header(an=len(records)) + b"".join(records)


def _root_ptr(rdata: bytes) -> bytes:
    """A PTR record with the root as owner (nothing to decode) and ``rdata`` as its target."""
    return b"\x00" + _RR.pack(12, 1, 120, len(rdata)) + rdata


def _each_record(record: Callable[[int], bytes]) -> bytes:
    """As many records as fit, each ``record(offset)`` for the offset it starts at."""
    packet = bytearray(header())
    count = 0
    while len(packet) + len(item := record(len(packet))) <= MAX_PACKET:
        packet += item
        count += 1
    packet[0:12] = header(an=count)
    return bytes(packet)


def owner_pointer_loops() -> bytes:
    """Records whose owner name is a pointer to itself (thirteenth session: a bad owner name
    that can be stepped over now loses only its record, so a packet can hold 749 of them)."""
    return _each_record(lambda at: pointer(at) + _RR.pack(99, 1, 120, 0))


def owner_label_loops() -> bytes:
    """Records whose owner name is a label and a pointer back to that label: each a new loop."""
    return _each_record(lambda at: b"\x01a" + pointer(at) + _RR.pack(99, 1, 120, 0))


def ptr_label_loops() -> bytes:
    """PTR records whose target is a label and a pointer back to that label (1.6 ms before
    the thirteenth session: each loop was read a second time to fail)."""
    return _each_record(lambda at: _root_ptr(b"\x01a" + pointer(at + 11)))


def _looping_long_names(label: bytes) -> bytes:
    """As many PTR records as fit whose target is a run of long labels ending in a pointer
    back to its own second label: a loop, each lap walking (and decoding) the whole run
    again until the hop limit (found by `make fuzz`: 21 ms for one such name of 472 bytes)."""
    packet = bytearray(header())
    count = 0
    run = label * (230 // len(label))
    while len(packet) + 12 + len(run) + 2 <= MAX_PACKET:
        rdata_at = len(packet) + 11  # root owner (1 byte) and the record header (10)
        rdata = run + pointer(rdata_at + len(label))
        packet += _root_ptr(rdata)
        count += 1
    packet[0:12] = header(an=count)
    return bytes(packet)


def looping_long_names() -> bytes:
    return _looping_long_names(b"\x01x")


def looping_long_names_escaped() -> bytes:
    """looping_long_names with labels that are not UTF-8 (each shown as \\255)."""
    return _looping_long_names(b"\x01\xff")


def too_long_from_each_label() -> bytes:
    """One PTR target of 1,000 labels (2,000 bytes: far past the 255-byte limit) and as many
    records as fit pointing into it at each label in turn, first to last: each entry used to
    walk 255 bytes before failing (9.3 ms for 9000 bytes)."""
    packet = bytearray(header())
    run = b"\x01a" * 1000 + b"\x00"
    start = len(packet) + 11
    packet += _root_ptr(run)
    count = 1
    label = 0
    while len(packet) + 13 <= MAX_PACKET:
        packet += _root_ptr(pointer(start + 2 * label))
        count += 1
        label += 1
    packet[0:12] = header(an=count)
    return bytes(packet)


def too_long_with_suffix_from_each_label() -> bytes:
    """Runs of 120 labels that end in a pointer to a 61-byte name (301 bytes in all), each
    followed by records pointing into it at each label in turn: every entry up to the 24th
    label fails the 255-byte check only once its suffix is added (3.3 ms for 9000 bytes)."""
    packet = bytearray(header(qd=1))
    packet += bytes([59]) + b"x" * 59 + b"\x00" + struct.pack("!HH", 12, 1)
    count = 0
    while len(packet) + 11 + 242 + 13 * 120 <= MAX_PACKET:
        run = b"\x01a" * 120 + pointer(12)
        start = len(packet) + 11
        packet += _root_ptr(run)
        count += 1
        for label in range(120):
            packet += _root_ptr(pointer(start + 2 * label))
            count += 1
    packet[0:12] = header(qd=1, an=count)
    return bytes(packet)


def _trailing_run(labels: int, ending: bytes) -> bytes:
    """As many records as fit, their PTR targets pointing at each label in turn of a run of
    ``labels`` one-byte labels at the end of the packet, followed by ``ending``."""
    count = (MAX_PACKET - 12 - 2 * labels - len(ending)) // 13
    run_at = 12 + 13 * count
    packet = bytearray(header(an=count))
    for i in range(count):
        packet += _root_ptr(pointer(run_at + 2 * (i % labels)))
    return bytes(packet + b"\x01a" * labels + ending)


def off_the_end_from_each_label() -> bytes:
    """Records entering a run of 127 labels that ends with the packet, unterminated: each
    entry walked to the end to fail (1.6 ms for 9000 bytes)."""
    return _trailing_run(127, b"")


def dead_end_from_each_label() -> bytes:
    """The same with the run (120 labels) ending in a label of unknown type (0x41) instead
    of the packet's end: each entry walked to it to fail (2.2 ms for 9000 bytes)."""
    return _trailing_run(120, b"\x41")


def _labels_before_pointers(label: bytes) -> bytes:
    """A question "_x.local", then as many A records as fit whose owner is ``label`` and a
    pointer to it: the commonest honest name shape (a new instance, a new host), at the
    packet's density."""
    packet = bytearray(header(qd=1)) + b"\x02_x\x05local\x00" + struct.pack("!HH", 1, 1)
    count = 0
    while len(packet) + len(label) + 16 <= MAX_PACKET:
        packet += label + pointer(12) + _RR.pack(1, 1, 120, 4) + bytes([192, 0, 2, count & 0xFF])
        count += 1
    packet[0:12] = header(qd=1, an=count)
    return bytes(packet)


def labels_before_pointers() -> bytes:
    return _labels_before_pointers(b"\x01a")


def escaped_labels_before_pointers() -> bytes:
    """labels_before_pointers with a label that is not UTF-8 (shown as \\255): each used to
    raise and catch a UnicodeDecodeError."""
    return _labels_before_pointers(b"\x01\xff")


# Where the records of escaped_suffixes_of_a_skipped_question point: (question, first label,
# last label), each stretch entered backward, as in the fuzzer's input.
_SKIPPED_QUESTION_STRETCHES = ((0, 126, 1), (1, 126, 10), (0, 114, 8), (2, 27, 0), (3, 125, 0))


def escaped_suffixes_of_a_skipped_question() -> bytes:
    """The slowest input of a 9000-byte fuzz run (fifteenth session: `MDNSQ_FUZZ_MAX_LEN=9000`,
    749,001 inputs; 7,423 bytes), rebuilt without its debris and filled to 9000 bytes: a
    mutation of pointers_into_long_names_backward_escaped. Four questions of 127 labels that
    are not UTF-8 (\\255), the second with a 128th label (a NUL byte): 257 bytes, so that
    question is skipped while the names inside it stay valid. Then A records whose owners
    point into the questions backward, stretch by stretch (the first question's entered a
    second time): each owner one label longer than the one before, up to 634 characters, and
    a new name at each offset not entered before (387 of 496). For the parser, each new name
    costs its label and a string (the per-new-name floor, adr/004). For the writer, the skipped
    question's suffixes reach it one label longer each time, never written whole: it used to
    build and escape every suffix of every such name (10-21 ms to encode the fuzzer's input)."""
    questions = [
        b"\x01\xff" * 127,
        b"\x01\xff" * 127 + b"\x01\x00",
        b"\x01\xff" * 127,
        b"\x01\xff" * 127,
    ]
    packet = bytearray(header())
    starts = []
    for labels in questions:
        starts.append(len(packet))
        packet += labels + b"\x00" + struct.pack("!HH", 12, 1)
    count = 0
    for question, first, last in _SKIPPED_QUESTION_STRETCHES:
        for label in range(first, last - 1, -1):
            if len(packet) + 16 > MAX_PACKET:
                break
            owner = starts[question] + 2 * label
            packet += pointer(owner) + _RR.pack(1, 1, 120, 4) + bytes([192, 0, 2, count & 0xFF])
            count += 1
    packet[0:12] = header(qd=len(questions), an=count)
    return bytes(packet)


BUILDERS: dict[str, Callable[[], bytes]] = {
    "pointer_chain": pointer_chain,
    "label_chain": label_chain,
    "max_labels": max_labels,
    "max_labels_escaped": max_labels_escaped,
    "tiny_records": tiny_records,
    "pointers_into_long_names": pointers_into_long_names,
    "pointers_into_long_names_backward": pointers_into_long_names_backward,
    "pointers_into_long_names_backward_escaped": pointers_into_long_names_backward_escaped,
    "pointers_into_long_names_backward_dotted": pointers_into_long_names_backward_dotted,
    "pointers_into_long_names_zigzag": pointers_into_long_names_zigzag,
    "long_names_pointed_once": long_names_pointed_once,
    "long_names_pointed_once_escaped": long_names_pointed_once_escaped,
    "long_names_pointed_once_dotted": long_names_pointed_once_dotted,
    "looping_long_names": looping_long_names,
    "looping_long_names_escaped": looping_long_names_escaped,
    "too_long_from_each_label": too_long_from_each_label,
    "too_long_with_suffix_from_each_label": too_long_with_suffix_from_each_label,
    "off_the_end_from_each_label": off_the_end_from_each_label,
    "dead_end_from_each_label": dead_end_from_each_label,
    "labels_before_pointers": labels_before_pointers,
    "escaped_labels_before_pointers": escaped_labels_before_pointers,
    "full_nsec_bitmaps": full_nsec_bitmaps,
    "query_of_pointers": query_of_pointers,
    "query_of_escaped_labels": query_of_escaped_labels,
    "many_nsec_windows": many_nsec_windows,
    "nsec_tiny_windows": nsec_tiny_windows,
    "empty_nsec_records": empty_nsec_records,
    "owner_pointer_loops": owner_pointer_loops,
    "owner_label_loops": owner_label_loops,
    "ptr_label_loops": ptr_label_loops,
    "escaped_suffixes_of_a_skipped_question": escaped_suffixes_of_a_skipped_question,
    "honest_ptrs": honest_ptrs,
}
