"""Message -> wire bytes, with name compression; query builders.

Operations: ``encode_message`` for any Message; ``build_query`` for the common one-question case;
``build_queries`` to spread a long known-answer list over several packets (RFC 6762 §7.2: TC set on
every packet but the last).

Goals: never produce a packet over 9000 bytes, IP and UDP headers included (RFC 6762 §17);
compress every name that RFC 6762 §18.14 lets us compress (question names, owner names,
PTR/CNAME/SRV targets) and leave the NSEC next name uncompressed, as §18.14 advises senders.
Compression is exact-case: a pointer is only used for a suffix with the very same labels, so the
receiver reads back exactly the names we were given.

Plan: one ``_Writer`` with a bytearray and a suffix -> offset table. A name is read only up to
its first suffix already written, so the work is the labels written out, not labels x names.
``mark()``/``rollback()`` let ``build_queries`` try a record and take it back if the packet
would get too big.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from struct import Struct

from mdnsq.errors import InvalidArgument
from mdnsq.names import (
    MAX_LABEL,
    MAX_LABELS,
    MAX_NAME_WIRE,
    escape_label_bytes,
    name_to_wire_labels,
)
from mdnsq.records import (
    FLAG_TC,
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    Record,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
)

__all__ = ["MAX_PACKET", "build_queries", "build_query", "encode_message"]

# RFC 6762 §17: 9000 bytes is the whole packet, IP and UDP headers included. The message gets
# what is left under IPv6's 48 bytes of headers (IPv4's 28 would leave 8972), whichever family
# carries it. Receiving stays liberal: the pool's buffers take 9000 bytes of message.
MAX_PACKET = 9000 - 48
_POINTER_LIMIT = 0x3FFF

_HEADER = Struct("!6H")
_RR_TAIL = Struct("!HHIH")
_Q_TAIL = Struct("!HH")
_SRV_HEAD = Struct("!HHH")


def _suffixes(name: str) -> list[tuple[str, bytes]]:
    """(key of the suffix starting at label i, wire bytes of label i) for every label, the
    whole name validated first. The general path (and the NSEC next name's): _unwritten takes
    the names it can vouch for without it."""
    if "\\" not in name:
        if not name:
            return []
        parts = name.split(".")
        try:
            labels = [p.encode("utf-8", "surrogateescape") for p in parts]
        except UnicodeEncodeError:
            name_to_wire_labels(name)  # raises InvalidArgument, as for any unencodable name
            raise
        for label in labels:
            if not 0 < len(label) <= 63:
                # Let the validating path produce the error message.
                name_to_wire_labels(name)
        out = []
        pos = 0
        for part, label in zip(parts, labels, strict=True):
            out.append((name[pos:], label))
            pos += len(part) + 1
        if sum(len(label) + 1 for label in labels) + 1 > 255 or len(labels) > 128:
            name_to_wire_labels(name)
        return out
    raw = name_to_wire_labels(name)
    # Escaped names: each suffix is keyed by its canonical text, so a plain tail
    # ("_ipp._tcp.local") shares its pointer with the same tail of an unescaped name. Sliced
    # from one text: joining the keys label by label copied the tail again for each one.
    texts = [escape_label_bytes(label) for label in raw]
    canonical = ".".join(texts)
    out = []
    pos = 0
    for text, label in zip(texts, raw, strict=True):
        out.append((canonical[pos:], label))
        pos += len(text) + 1
    return out


# An escaped "\\" or "." inside a label, replaced by two characters no encodable name holds
# (surrogates below U+DC80), so that every "." left separates labels, at the same offsets.
_STAND_IN_BACKSLASH = "\ud800\ud800"
_STAND_IN_DOT = "\ud801\ud801"


def _unwritten(name: str, names: dict[str, int]) -> tuple[list[tuple[str, bytes]], int | None]:
    """(key, wire bytes) of each label of ``name`` in front of its longest suffix already
    written, and that suffix's offset (None: none is, the name ends at the root)."""
    front = _front_labels(name, names)
    if front is not None:
        return front
    out: list[tuple[str, bytes]] = []
    for key, label in _suffixes(name):
        offset = names.get(key)
        if offset is not None:
            return out, offset
        out.append((key, label))
    return out, None


def _front_labels(
    name: str, names: dict[str, int]
) -> tuple[list[tuple[str, bytes]], int | None] | None:
    """_unwritten's answer, reading only the labels in front of the first suffix written:
    reading all of them cost labels x names, and their keys' characters labels x length (a
    9000-byte packet whose owners are suffixes of a long escaped name, each one label longer
    than the last: 21 ms to encode). The keys are then slices of ``name``, which are
    _suffixes' keys when the name is canonical text, as records' constructors and the parser
    make it: the labels read here are checked to be, and the rest is a key written already.
    None for any other name, and for one breaking a limit (_suffixes has its error)."""
    if not name:
        return [], None
    if "\\" in name:
        return _escaped_front_labels(name, names)
    if name[0] == "." or name[-1] == "." or ".." in name:
        return None  # an empty label: _suffixes has the error (or the old trailing-dot reading)
    get = names.get
    out = []
    offset = None
    key = name
    start = 0
    while True:
        end = name.find(".", start)
        try:
            label = (key if end < 0 else name[start:end]).encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return None
        if len(label) > MAX_LABEL:
            return None
        out.append((key, label))
        if end < 0:
            break
        start = end + 1
        key = name[start:]
        offset = get(key)
        if offset is not None:
            break
    # The whole name's limits: the rest of it is a key written already, so valid.
    size = len(name) if name.isascii() else len(name.encode("utf-8", "surrogateescape"))
    if size + 2 > MAX_NAME_WIRE or name.count(".") >= MAX_LABELS:
        return None
    return out, offset


def _escaped_front_labels(
    name: str, names: dict[str, int]
) -> tuple[list[tuple[str, bytes]], int | None] | None:
    """_front_labels for a name holding escapes: the keys first (a slice and a lookup a
    label), then the labels in front, unescaped in one split and checked canonical."""
    if name.isascii():
        size = len(name)
    else:
        try:
            size = len(name.encode())
        except UnicodeEncodeError:
            return None  # a lone surrogate, which canonical text writes as \DDD
    scan = name.replace("\\\\", _STAND_IN_BACKSLASH).replace("\\.", _STAND_IN_DOT)
    if scan[0] == "." or scan[-1] == "." or ".." in scan:
        return None
    get = names.get
    keys = [name]
    offset = None
    end = scan.find(".")
    while end >= 0:
        key = name[end + 1 :]
        offset = get(key)
        if offset is not None:
            break
        keys.append(key)
        end = scan.find(".", end + 1)
    front = name if end < 0 else name[:end]
    try:
        labels = name_to_wire_labels(front)
    except InvalidArgument:
        return None
    if ".".join(map(escape_label_bytes, labels)) != front or len(labels) != len(keys):
        return None  # another spelling: its suffixes' keys are not slices of it
    # The whole name's limits, from its text: every label is canonical now (read above, or in
    # a key written already), so each \DDD, \\ and \. is one byte and each dot a length byte.
    size -= 3 * scan.count("\\") + (scan.count("\ud800") + scan.count("\ud801")) // 2
    if size + 2 > MAX_NAME_WIRE or scan.count(".") >= MAX_LABELS:
        return None
    return list(zip(keys, labels, strict=True)), offset


class _Writer:
    def __init__(self) -> None:
        self.buf = bytearray(12)
        self.names: dict[str, int] = {}
        self._added: list[str] = []

    def mark(self) -> tuple[int, int]:
        return len(self.buf), len(self._added)

    def rollback(self, mark: tuple[int, int]) -> None:
        size, added = mark
        del self.buf[size:]
        for key in self._added[added:]:
            del self.names[key]
        del self._added[added:]

    def name(self, name: str, compress: bool = True) -> None:
        buf = self.buf
        if not compress:
            for _key, label in _suffixes(name):
                buf.append(len(label))
                buf += label
            buf.append(0)
            return
        names = self.names
        # The whole name written before, spelled as its key (a name the parser produced
        # always is): one lookup instead of reading its labels again.
        offset = names.get(name)
        if offset is None:
            labels, offset = _unwritten(name, names)
            for key, label in labels:
                here = len(buf)
                if here <= _POINTER_LIMIT:
                    names[key] = here
                    self._added.append(key)
                buf.append(len(label))
                buf += label
            if offset is None:
                buf.append(0)
                return
        buf += (0xC000 | offset).to_bytes(2, "big")

    def question(self, question: Question) -> None:
        self.name(question.name)
        qclass = question.rclass | (0x8000 if question.unicast_response else 0)
        self.buf += _Q_TAIL.pack(int(question.type), qclass)

    def record(self, record: Record, *, known_answer: bool = False) -> None:
        buf = self.buf
        self.name(record.name)
        # RFC 6762 §10.2: the cache-flush bit MUST NOT be set in a Known-Answer list.
        flush = record.cache_flush and not known_answer
        rclass = record.rclass | (0x8000 if flush else 0)
        header_at = len(buf)
        buf += _RR_TAIL.pack(int(record.type), rclass, record.ttl, 0)
        start = len(buf)
        if isinstance(record, (PTRRecord, CNAMERecord)):
            self.name(record.target)
        elif isinstance(record, SRVRecord):
            buf += _SRV_HEAD.pack(record.priority, record.weight, record.port)
            self.name(record.target)
        elif isinstance(record, TXTRecord):
            buf += record.rdata or b"\x00"  # RFC 6763 §6.1: never an empty RDATA
        elif isinstance(record, (ARecord, AAAARecord)):
            buf += record.packed
        elif isinstance(record, NSECRecord):
            self.name(record.next_name, compress=False)
            buf += record.bitmap  # canonical already (NSECRecord)
        elif isinstance(record, HINFORecord):
            for item in (record.cpu, record.os):  # HINFORecord already checked the 255-byte limit
                buf.append(len(item))
                buf += item
        elif isinstance(record, UnknownRecord):
            buf += record.rdata
        else:
            raise TypeError(f"cannot encode {record!r}")
        rdlength = len(buf) - start
        if rdlength > 0xFFFF:
            raise InvalidArgument("RDATA longer than 65535 bytes")
        buf[header_at + 8 : header_at + 10] = rdlength.to_bytes(2, "big")

    def finish(
        self, ident: int, flags: int, counts: tuple[int, int, int, int], max_size: int
    ) -> bytes:
        if len(self.buf) > max_size:
            raise InvalidArgument(f"message would be {len(self.buf)} bytes, more than {max_size}")
        self.buf[0:12] = _HEADER.pack(ident, flags, *counts)
        return bytes(self.buf)


def encode_message(message: Message) -> bytes:
    """Wire form of ``message``; ValueError if it would exceed MAX_PACKET (8952) bytes, the
    most an mDNS packet carries (RFC 6762 §17), or break a limit."""
    writer = _Writer()
    for question in message.questions:
        writer.question(question)
    for record in message.records:
        writer.record(record)
    counts = (
        len(message.questions),
        len(message.answers),
        len(message.authorities),
        len(message.additionals),
    )
    # No count can pass 0xFFFF: every entry takes at least 5 bytes, so finish() refuses first.
    return writer.finish(message.id, message.flags, counts, MAX_PACKET)


def build_query(
    name: str,
    type: int,
    *,
    unicast_response: bool = False,
    known_answers: Iterable[Record] = (),
    id: int = 0,
) -> bytes:
    """One query packet asking one question, with known answers (RFC 6762 §7.1)."""
    question = Question(name, type, unicast_response=unicast_response)
    return encode_message(Message(id=id, questions=(question,), answers=tuple(known_answers)))


def build_queries(
    questions: Sequence[Question],
    known_answers: Iterable[Record] = (),
    *,
    id: int = 0,
    max_size: int = 1452,
) -> list[bytes]:
    """Query packets of at most ``max_size`` bytes carrying all questions and known answers.

    The questions go in the first packet; known answers fill it and spill into further packets
    with no questions. Every packet but the last has TC set (RFC 6762 §7.2), so responders wait
    for the rest. Known answers go out without the cache-flush bit (§10.2). A known answer too
    big for a packet of its own is left out: known answers only save the responder an answer,
    and one the peer cannot be told about it simply sends again.
    ValueError if the questions alone do not fit in ``max_size``.

    The default, 1452, is what a 1500-byte MTU carries unfragmented under either family's IP
    and UDP headers (RFC 6762 §17: 48 bytes over IPv6; IPv4's 28 would allow 1472).
    """
    max_size = min(max_size, MAX_PACKET)
    packets: list[bytes] = []
    writer = _Writer()
    for question in questions:
        writer.question(question)
    if len(writer.buf) > max_size:
        raise InvalidArgument(
            f"the questions alone need {len(writer.buf)} bytes, more than {max_size}"
        )
    n_questions = len(questions)
    n_answers = 0
    for record in known_answers:
        mark = writer.mark()
        writer.record(record, known_answer=True)
        if len(writer.buf) <= max_size:
            n_answers += 1
            continue
        writer.rollback(mark)
        alone = _Writer()
        alone.record(record, known_answer=True)
        if len(alone.buf) > max_size:
            continue
        packets.append(writer.finish(id, FLAG_TC, (n_questions, n_answers, 0, 0), max_size))
        writer = alone
        n_questions = 0
        n_answers = 1
    packets.append(writer.finish(id, 0, (n_questions, n_answers, 0, 0), max_size))
    return packets
