"""Wire bytes -> Message, reading a memoryview in place.

Operations: ``parse_message(data)`` for any bytes-like object, e.g. a memoryview over a pooled
receive buffer. The result owns everything it holds (str, int, bytes, tuples), so the caller may
zero and reuse the buffer as soon as the call returns. That includes the meaning of the bytes:
names a sender compressed inside the RDATA of NS, SOA, MX and the other types kept as raw RDATA
whose layout is known (RFC 3597 §4; _NAMES_IN_RDATA) are written out in full. A TTL with its
top bit set is read as 0 (RFC 2181 §8), except in OPT, where that field is not a TTL.

Goals, in order:
1. Any input is safe. The header or a question that cannot be read raises MalformedPacket, nothing
   else. A record whose RDATA is bad is skipped and counted in ``Message.skipped``; parsing resumes
   at the next record by RDLENGTH. A record whose header is cut off ends the parse (counted) and
   keeps what was read.
2. Bounded work: every name is at most 255 wire bytes, 128 labels and ``_MAX_HOPS`` compression
   pointers, so a name costs O(1) and a packet of n bytes holds at most n/2 names: work is linear
   in the packet. Header counts are only loop bounds (each iteration consumes bytes), never an
   allocation size.
3. Real devices: compression pointers may point forward (RFC 6762 §18.14 allows compressed NSEC
   next-names, and some stacks point anywhere in the packet); only "inside the packet" is required.
4. Speed (pure Python, so every bytecode counts): one pass; struct.unpack_from on the view; a
   per-packet cache of decoded names by offset, so a shared suffix (".local", "_http._tcp.local")
   is decoded once and an owner name that is a bare pointer costs one dict lookup; each run of
   labels is decoded with one str(view[a:b]) call (not one per label); records built with one
   tuple.__new__ each, without validation; TXT RDATA kept whole (checked, split on access).

Costs on hostile packets are in adr/004 (fuzz/adversarial.py builds 31 shapes): each runs
within 3x the lines of an honest packet of the same size (tests/test_robust_parse.py asserts
it; 2.8x the most, a query of 1,123 new escaped names, where one string per name is the
floor; most at 1-2x). Long runs of labels are remembered per packet, so a pointer into one
decoded before is a slice of its text, not a second walk. Failures are cached as widely as the
bytes allow (a pointer loop fails on its first lap back; a name that fails marks every label of
its run that must fail too), so records entering a bad run at each label in turn cost a lookup
each, not a walk.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from codecs import charmap_decode
from operator import itemgetter
from struct import Struct
from struct import error as StructError

from mdnsq.errors import MalformedPacket
from mdnsq.names import MAX_NAME_WIRE, SURROGATE_ESCAPES, escape_label
from mdnsq.records import _TYPES as _DECODED_TYPES
from mdnsq.records import (
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    bitmap_windows,
    record_type,
    windows_bitmap,
)

__all__ = ["parse_message"]

_MAX_HOPS = 126  # compression pointers followed for one name; plenty for any honest packet

_HEADER = Struct("!6H").unpack_from
_RR_HEADER = Struct("!HHIH").unpack_from
_QUESTION_TAIL = Struct("!HH").unpack_from
_SRV_HEAD = Struct("!HHH").unpack_from

_new = tuple.__new__

# Wire length of long or escaped names already checked (text -> bytes): a pointer entering a long
# name one label before the last one would otherwise measure the whole suffix again (linear per
# pointer, quadratic per packet in C passes). A memo of a pure function, shared by all threads
# (a lost entry costs only a recount), and small: only names near the 255-byte limit get here.
_WIRES: dict[str, int] = {}
_MAX_WIRES = 256

# Runs of at least this many labels are remembered (``runs``) so that a pointer into one later is
# a slice of its text, not a second walk and decode. Shorter runs cost little to walk again.
_RUN_MIN = 8
# A remembered run: (offset of its first label's text, offset of the byte ending it, its text,
# its bytes, how an offset in the run maps to its text). _PLAIN: ASCII, length bytes as dots,
# each byte one character. _ESCAPED: ASCII as on the wire, with "." and "\\" in labels (each
# two characters of the text). _UNICODE: length bytes as dots, not ASCII (cut at the dots).
Run = tuple[int, int, str, bytes, int]
_PLAIN, _ESCAPED, _UNICODE = 0, 1, 2
_RUN_FIRST = itemgetter(0)


class _Bad(Exception):
    """Internal: this name / record cannot be read. Never escapes the module."""


# Cached under an offset whose name does not decode. Decoded text never holds a lone surrogate
# outside U+DC80..U+DCFF (and those are written as \\DDD), so this cannot be a real name.
_BAD = "\ud800"


# A byte to its text when no byte above 127 is part of a UTF-8 character; see _decode_escaped.
_BYTE_ESCAPES = {b: chr(b) if b < 128 else f"\\{b:03d}" for b in range(256)}

# NSEC type bitmaps as received -> canonical (mostly themselves): a memo shared by all threads
# (a lost entry costs only a check), cleared when full as _WIRES is.
_BITMAPS: dict[bytes, bytes] = {}
_MAX_BITMAPS = 64

# Length bytes of short labels (1..31) and backslash map to "."; see _read_name.
_DOTS = bytes(46 if 0 < i < 32 or i == 92 else i for i in range(256))

# Only the length bytes of short labels map to "."; deleting all but 1..31 leaves those.
_LENGTHS = bytes(46 if 0 < i < 32 else i for i in range(256))
_NOT_CONTROL = bytes(i for i in range(256) if not 0 < i < 32)


def _run_labels_slow(view: memoryview, run: int, stop: int) -> list[tuple[int, str]]:
    """(offset, text) of each label in ``view[run:stop]``, escaping what needs it.

    The offsets let _read_name cache the name that starts at every label of the run, so a
    record pointing into the middle of it later is a lookup, not a second escaping pass
    (otherwise pointers into each label of a long escaped name cost labels x labels).
    """
    parts = []
    pos = run
    while pos < stop:
        first = pos + 1
        parts.append((pos, _label_text(view[first : first + view[pos]])))
        pos = first + view[pos]
    return parts


def _read_name(
    view: memoryview,
    pos: int,
    limit: int,
    end: int,
    names: dict[int, str],
    runs: list[Run],
    depth: int = 0,
) -> tuple[str, int]:
    """Decode the name at ``pos``; return (text, offset after it in place).

    ``limit`` bounds the labels read in place (the RDATA end for names in RDATA); a compression
    pointer may lead anywhere before ``end``. ``names`` maps the offset of every name decoded so
    far to its text (``_BAD``: known not to decode); ``runs`` holds the long runs of labels
    decoded so far (see _enter_run).

    A pointer to an offset not decoded yet is followed by recursion, so the suffix found there
    is cached under that offset too: however many records point into a chain of pointers, each
    link is walked once per packet (work linear in the packet, not in records x hops). An
    offset is marked ``_BAD`` while its name is being read, so a pointer loop fails on its
    first lap back, and the failure stays cached: a loop costs one lap, once per packet. The
    wire length is kept only for names near the limit (``_WIRES``), no label count for any: an
    ASCII suffix's text is never shorter than its wire form minus 2, so the 255-byte check is
    exact only when that bound is close (and 255 bytes cannot hold more than 127 labels, so the
    128-label limit always holds).
    """
    start = pos
    text = ""
    inner: list[tuple[int, str]] | None = None  # (offset, label) of labels whose names to cache
    # (Not when the next label's name is cached: walking one label is cheaper. Pointers that
    # enter a run one label earlier each time take that way, and caching inner labels on
    # every entry would make them quadratic.)
    if (
        depth
        and runs
        and pos + view[pos] + 1 not in names
        and (entered := _enter_run(pos, runs)) is not None
    ):
        # Inside a long run decoded before: its text from here, and the byte that ended it
        # (a terminator or a pointer, never a label: the block below is skipped). Entered a
        # second time, the names at its labels are all cached, as a walk would (see below).
        text, pos = entered
        length = view[pos]
        if -pos in names:
            inner = _inner_labels(view, start, pos, text)
        else:
            names[-pos] = ""
    else:
        stop = pos + MAX_NAME_WIRE  # the labels, plus the terminator or pointer, fit in 255
        if stop > limit:
            stop = limit
        if pos >= stop:
            raise _Bad("name runs past its bounds")
        length = view[pos]
    if 0 < length < 0x40:
        first = pos + 1
        pos = first + length
        if pos >= stop:
            raise _Bad("name longer than 255 bytes" if pos < limit else "label past bounds")
        length = view[pos]
        if not 0 < length < 0x40 or (depth and pos in names):
            # A run of one label: the most common shape ("Office Printer" + pointer), or,
            # reached by a pointer, one label before a label whose name is cached (see the
            # walk below). Bytes that are not UTF-8 decode to surrogates, which are not
            # printable (see _decode_escaped).
            text = _label_text(view[first:pos])
        else:
            labels = 1
            short = pos - first < 32
            # Reached by a pointer (depth), the run ends early at a label whose name is cached,
            # as if at a pointer to it: pointers entering a long run one label earlier each
            # time would otherwise walk it to its end each time.
            while 0 < length < 0x40 and not (depth and pos in names):
                if length > 31:
                    short = False
                labels += 1
                last = pos
                pos += length + 1
                if pos >= stop:
                    if pos < limit:
                        _run_too_long(view, start, pos, limit, names)
                        raise _Bad("name longer than 255 bytes")
                    if limit == end:
                        # Past the end of the packet: so is the name at every label walked,
                        # whatever reads it (only an RDATA limit is particular to one reading).
                        _mark_bad(view, start, pos, names)
                    raise _Bad("label runs past its bounds")
                length = view[pos]
            # One copy of the run, length bytes turned into dots by one translate. The dots
            # counted must be exactly the inner length bytes: a "." or "\\" or a control
            # character inside a label adds one.
            if short:
                raw = view[first:pos].tobytes()
                dotted = raw.translate(_DOTS)
                if dotted.count(46) == labels - 1:
                    # Bytes that are not UTF-8 become \DDD, in one pass over the run.
                    text = dotted.decode() if dotted.isascii() else _decode_escaped(dotted)
                    if length == 0:
                        # The last label is a name of its own, and the one most pointed
                        # at from inside a run ("local" of "_http._tcp.local", by host
                        # names): cache it too, as the slice of the text it is.
                        names[last] = text[text.rfind(".") + 1 :]
                    if labels >= _RUN_MIN and not 0 < length < 0x40:
                        # Every dot of this text is a length byte: remember the run.
                        kind = _PLAIN if dotted.isascii() else _UNICODE
                        insort(runs, (first, pos, text, dotted, kind), key=_RUN_FIRST)
                elif len(raw.translate(None, _NOT_CONTROL)) == labels - 1:
                    # No control byte inside a label: the extra dots were "." or "\\". Escape
                    # them in place, then turn the length bytes into dots, still in C passes.
                    dotted = raw.replace(b"\\", b"\\\\").replace(b".", b"\\.").translate(_LENGTHS)
                    text = dotted.decode() if dotted.isascii() else _decode_escaped(dotted)
                    if labels >= _RUN_MIN and not 0 < length < 0x40 and raw.isascii():
                        insort(runs, (first, pos, text, raw, _ESCAPED), key=_RUN_FIRST)
            # Otherwise (a control byte or a label of 32 bytes or more) the slow path below.
            if not text:
                # Label by label, escaping each: caching the name at every label costs little
                # next to that, and spares a second pass for a pointer into the middle.
                inner = _run_labels_slow(view, start, pos)
                text = ".".join(label for _, label in inner)
            elif depth and labels > 1:  # (a walk of one label has no inner label to cache)
                # Reached by a pointer: into the middle of a run, perhaps. The second time
                # the same run is entered so, cache the name at each of its labels (a name of
                # 127 labels pointed into at every label would walk 127 x 126 / 2 labels).
                # Not the first time: a packet of long names each pointed into once would
                # pay for caching 126 names per pointer. The run is known by where its walk
                # ended (its end, or a cached label), kept negated: never a real offset.
                # A walk ended at a cached label that is not the run's last (the last is
                # cached on first read) caches at once: the run was entered there before,
                # and pointers each entering earlier would each end at a new label.
                # (A cached label that runs past the end is a name known bad: failed below.)
                after = pos + length + 1
                if -pos in names or (0 < length < 0x40 and after < end and view[after]):
                    inner = _inner_labels(view, start, pos, text)
                else:
                    names[-pos] = ""
    if length == 0:
        names[start] = text
        if inner:
            _cache_inner(inner, "", names)
        return text, pos + 1
    # A failure from here on that follows from the bytes alone fails the name at every label
    # walked too (each ends the same way): all are cached as bad (_mark_bad), or records
    # entering the run one label later each would walk it again each time. Not a pointer cut
    # off by an RDATA's end, nor the hop limit: those depend on how the name is read.
    if length < 0x40:
        # The run was ended at a cached name (depth > 0, so the offset returned is not used).
        suffix = names.get(pos)
        if suffix is None or suffix is _BAD:
            _mark_bad(view, start, pos, names)
            raise _Bad("a label leads to a name that does not decode")
    else:
        if length < 0xC0:
            _mark_bad(view, start, pos, names)
            raise _Bad("unknown label type")
        if pos + 1 >= limit:
            if limit == end:
                _mark_bad(view, start, pos, names)
            raise _Bad("compression pointer cut off")
        target = (length & 0x3F) << 8 | view[pos + 1]
        suffix = names.get(target)
        if suffix is None:
            if target >= end:
                _mark_bad(view, start, pos, names)
                raise _Bad("compression pointer past the end")
            if target in (start, pos):
                # Back to this name's first label, or at itself: a loop, known without
                # following it, which cost a second read of the name and its failure. (Not
                # any offset in between: one inside a label's bytes reads them afresh.)
                _mark_bad(view, start, pos, names)
                raise _Bad("compression pointer loop")
            if depth >= _MAX_HOPS:
                raise _Bad("too many compression pointers")
            suffix = _follow(view, target, names, runs, depth + 1)
        elif suffix is _BAD:
            if target != start:  # (a loop back to where this read began: no one else entered)
                _mark_bad(view, start, pos, names)
            raise _Bad("compression pointer to a name that does not decode (or a loop)")
    if suffix and pos == start:
        # A bare pointer: the name it leads to was checked for length when it was read.
        text = suffix
    elif suffix:
        # Labels here, then the suffix. Wire bytes: pos - start for the labels, plus the
        # suffix's wire length, which is at most len(suffix) + 2 for ASCII text (escapes only
        # make the text longer), and at most 4 * len(suffix) + 2 for any text (no character
        # takes more than 4 UTF-8 bytes).
        bound = pos - start + len(suffix) + 2
        if bound > MAX_NAME_WIRE or (
            bound + 3 * len(suffix) > MAX_NAME_WIRE and not suffix.isascii()
        ):
            text, wire = _near_limit(text, pos - start, suffix)
            if not text:
                _mark_bad(view, start, start + wire - MAX_NAME_WIRE, names)
                raise _Bad("name longer than 255 bytes")
        else:
            text = f"{text}.{suffix}"
    names[start] = text
    if inner:
        _cache_inner(inner, suffix, names)
    return text, pos + 2


def _near_limit(text: str, here: int, suffix: str) -> tuple[str, int]:
    """``text`` (``here`` wire bytes of labels) joined to ``suffix``, with the name's exact
    wire length, for names whose text says they may be near the 255-byte limit; ("", wire
    length) when they are past it."""
    wire = _WIRES.get(suffix)
    if wire is None:
        wire = _wire_length(suffix)
    wire += here
    if wire > MAX_NAME_WIRE:
        return "", wire
    text = f"{text}.{suffix}"
    if len(_WIRES) >= _MAX_WIRES:
        _WIRES.clear()
    _WIRES[text] = wire
    return text, wire


def _follow(
    view: memoryview, target: int, names: dict[int, str], runs: list[Run], depth: int = 1
) -> str:
    """The name at ``target``, where a pointer leads and no name is cached yet, read one
    level down (``depth``). Callers with a bare pointer (an owner name, a PTR target) call it
    directly, without a level for the pointer itself, whose own offset stays uncached (a name
    read there later is a lookup).

    One label before a label whose name is cached is built by _label_then: pointers entering
    a long name one label earlier each time (each a new name of up to 255 bytes) cost a third
    less that way. Anything else is _read_name's, with ``target`` marked bad while it is read,
    and replaced by its text when that succeeds: a pointer back to it from inside is a loop and
    fails at once. Left to run, each lap of a loop walked and decoded the whole run again up to
    the hop limit: ~6 ms a looping name of 230 bytes, 125-230 ms a 9000-byte packet of them."""
    end = len(view)
    if target >= end:
        raise _Bad("compression pointer past the end")
    if (
        view[target] > 0xBF
        and target + 1 < end
        and (view[target] & 0x3F) << 8 | view[target + 1] == target
    ):
        raise _Bad("compression pointer to itself")  # at once: no read to fail in
    text = _label_then(view, target, end, names, pointer=False)
    if text is not None:
        return text
    names[target] = _BAD
    return _read_name(view, target, end, end, names, runs, depth)[0]


def _decode_escaped(raw: bytes) -> str:
    """Text of bytes that are not all ASCII, each byte that is not UTF-8 as \\DDD. Such a byte
    decodes to a surrogate, which is not printable: checking that is cheaper than raising and
    catching a UnicodeDecodeError (~0.7 us a name)."""
    text = raw.decode("utf-8", "surrogateescape")
    if text.isprintable():
        return text
    if len(text) == len(raw):
        # One character per byte: no byte above 127 was UTF-8, so each is \DDD. A charmap
        # decode of the bytes does that in half the time of translating the surrogates.
        return charmap_decode(raw, "strict", _BYTE_ESCAPES)[0]
    return text.translate(SURROGATE_ESCAPES)


def _enter_run(pos: int, runs: list[Run]) -> tuple[str, int] | None:
    """(text from ``pos`` to the end of a remembered run, offset of the byte ending the run)
    when ``pos`` is a label inside one, else None.

    A name read from a label inside a run reads the same labels to the same end as the run
    did (a walk stopping early at a cached label gives the same text), so its text is a slice:
    records pointing into long names each once (or a name looping back into its own run)
    otherwise walk and decode the run again each time. Non-ASCII text is cut at the dot
    before the label (found by counting length bytes)."""
    i = bisect_right(runs, pos, key=_RUN_FIRST) - 1
    if i < 0:
        return None
    first, run_end, text, data, kind = runs[i]
    at = pos - first  # the label's length byte
    if pos >= run_end:
        return None
    if kind == _ESCAPED:
        # Length bytes are the only bytes below 32 here; each "." or "\\" before this one
        # is two characters of the text.
        if not 0 < data[at] < 32:
            return None
        return text[at + 1 + data.count(b".", 0, at) + data.count(b"\\", 0, at) :], run_end
    if data[at] != 46:
        return None
    if kind == _PLAIN:
        return text[at + 1 :], run_end
    dots = data.count(46, 0, at) + 1
    return text.split(".", dots)[dots], run_end


def _mark_bad(view: memoryview, pos: int, cutoff: int, names: dict[int, str]) -> None:
    """Cache as bad the name at every label from ``pos`` (a label of a run already walked)
    up to ``cutoff``, all known to fail as the name at ``pos`` did (too long: each holds the
    bytes that made it so; or the run ends in something that does not decode). Otherwise
    records entering such a run one label later each would walk it again each time (run
    length x labels per run: 1.6-9 ms for 9000 bytes)."""
    while pos < cutoff:
        names[pos] = _BAD
        pos += view[pos] + 1


def _run_too_long(
    view: memoryview, start: int, pos: int, limit: int, names: dict[int, str]
) -> None:
    """A run of labels from ``start`` passed 255 bytes at ``pos``: walk on to where it ends
    (or to a label whose name is known), and cache as bad every label at least 255 bytes
    before that, as _mark_bad does. Once per run: every later entry into that part of it is
    a lookup."""
    while pos < limit and pos not in names:
        length = view[pos]
        if not 0 < length < 0x40:
            break
        pos += length + 1
    if pos > limit:
        pos = limit  # a label cut off by the limit: its name fails anyway, count to the limit
    _mark_bad(view, start, pos - MAX_NAME_WIRE + 1, names)


def _inner_labels(view: memoryview, start: int, stop: int, text: str) -> list[tuple[int, str]]:
    """(offset, label) of each label of the run ``view[start:stop]`` that the fast path decoded
    as ``text``: split at its dots, unless a dot may be an escaped one."""
    if "\\." in text or "\\\\" in text:
        return _run_labels_slow(view, start, stop)
    parts = []
    pos = start
    for label in text.split("."):
        parts.append((pos, label))
        pos += view[pos] + 1
    return parts


def _cache_inner(parts: list[tuple[int, str]], suffix: str, names: dict[int, str]) -> None:
    """Cache the name starting at each inner label of a run decoded label by label."""
    tail = suffix
    for offset, label in reversed(parts[1:]):
        tail = f"{label}.{tail}" if tail else label
        names.setdefault(offset, tail)


def _label_text(label: memoryview) -> str:
    """The text of one label: "." and "\\" escaped, bytes that are not UTF-8 as \\DDD (they
    decode to surrogates, which are not printable: see _decode_escaped)."""
    text = str(label, "utf-8", "surrogateescape")
    if "." in text or "\\" in text:
        return escape_label(text)
    if text.isascii() or text.isprintable():
        return text
    return text.translate(SURROGATE_ESCAPES)


# The text of each one-byte label, as _label_text makes it.
_ONE_BYTE_LABELS = [_label_text(memoryview(bytes([b]))) for b in range(256)]


def _name_at(
    view: memoryview, pos: int, end: int, names: dict[int, str], runs: list[Run]
) -> tuple[str, int]:
    """The name at ``pos`` of a question (the record loop has the same shapes inline), and the
    offset after it. The commonest shapes first: one pointer to a name read already (the
    questions of a query about one name after the first), the root, one label and a pointer."""
    if pos >= end:
        raise _Bad("name runs past the end")
    length = view[pos]
    if length > 0xBF:
        if pos + 1 >= end:
            raise _Bad("compression pointer cut off")
        at = (length & 0x3F) << 8 | view[pos + 1]
        name = names.get(at)
        if name is None:
            name = _follow(view, at, names, runs)
        elif name is _BAD:
            raise _Bad("compression pointer to a name that does not decode (or a loop)")
        return name, pos + 2
    if length == 0:
        return "", pos + 1
    after = pos + length + 1
    if after < end and view[after] > 0xBF:
        text = _label_then(view, pos, end, names)
        if text:
            return text, after + 2
    return _read_name(view, pos, end, end, names, runs)


def _label_then(
    view: memoryview, pos: int, limit: int, names: dict[int, str], pointer: bool = True
) -> str | None:
    """The name at ``pos`` when it is one label and then a name read already: after a pointer
    (``pointer``; the commonest RDATA name and new owner name, "Office._http._tcp.local",
    "host.local"), or at the next label (a pointer into a run whose next label is cached, see
    _follow). Cached under ``pos``. None for _read_name to do it all: another shape, a name
    past 255 bytes. A label holding "." or "\\" is escaped here as _read_name would. _Bad for
    a pointer back to the label or at itself: a loop."""
    length = view[pos]
    after = pos + 1 + length
    if not 0 < length < 0x40:
        return None
    if pointer:
        if after + 1 >= limit or view[after] < 0xC0:
            return None
        target = (view[after] & 0x3F) << 8 | view[after + 1]
        suffix = names.get(target)
        if suffix is None and target in (pos, after):
            names[pos] = _BAD
            raise _Bad("compression pointer loop")  # back to its label, or at itself
        if not suffix or suffix is _BAD:
            return None
        label = _label_text(view[pos + 1 : after])
    else:
        suffix = names.get(after)
        if not suffix or suffix is _BAD:
            return None
        # A pointer into a run, one label before a cached name: one-byte labels are the most
        # new names a packet holds (a fifth of their cost was decoding the one byte).
        label = (
            _ONE_BYTE_LABELS[view[after - 1]] if length == 1 else _label_text(view[pos + 1 : after])
        )
    # The wire bound as in _read_name: the label's length + 1 bytes, then the suffix's.
    bound = length + len(suffix) + 3
    if bound > MAX_NAME_WIRE or (bound + 3 * len(suffix) > MAX_NAME_WIRE and not suffix.isascii()):
        text = _near_limit(label, length + 1, suffix)[0]
        if not text:
            return None
    else:
        text = f"{label}.{suffix}"
    names[pos] = text
    return text


def _wire_length(name: str) -> int:
    """Wire length of a name the parser decoded (so valid and not empty): each escape stands
    for one byte, each dot for a length byte. In C-level passes: this runs once per pointer to
    a long name, and a packet of pointers to names of 127 escaped labels must stay linear.

    Every backslash starts an escape or is the second of a ``\\\\``, so once those are
    removed, each backslash left starts ``\\.`` (one byte for two characters) or ``\\DDD``
    (one for four)."""
    plain = name.replace("\\\\", "")
    escapes = plain.count("\\")
    digits = escapes - plain.count("\\.")
    size = len(name.encode("utf-8", "surrogateescape"))
    return size - (len(name) - len(plain)) // 2 - escapes - 2 * digits + 2


def _read_bitmap(view: memoryview, pos: int, end: int) -> bytes:
    """NSEC type bitmap (RFC 4034 §4.1.2), checked and made canonical, not decoded: the record
    decodes it when asked (NSECRecord.types). A decode here cost 1.6-3 ms for a packet of
    bitmaps with thousands of types (fuzz/adversarial: full_nsec_bitmaps, many_nsec_windows,
    nsec_tiny_windows), which nothing on the receive path reads. Windows out of order or
    repeated, and trailing zero bytes, are read as a liberal reader would (their union), and
    stored canonical so that equal type sets compare equal."""
    raw = view[pos:end].tobytes()
    known = _BITMAPS.get(raw)
    if known is not None:
        return known
    size = len(raw)
    at = 0
    last = -1
    canonical = True
    while at < size:
        if at + 2 > size:
            raise _Bad("NSEC window header cut off")
        window = raw[at]
        length = raw[at + 1]
        at += 2 + length
        if length == 0 or length > 32 or at > size:
            raise _Bad("bad NSEC bitmap length")
        if window <= last or raw[at - 1] == 0:
            canonical = False
        last = window
    bitmap = raw if canonical else _canonical_bitmap(raw)
    if len(_BITMAPS) >= _MAX_BITMAPS:
        _BITMAPS.clear()
    _BITMAPS[raw] = bitmap
    return bitmap


def _canonical_bitmap(raw: bytes) -> bytes:
    """A checked bitmap whose windows are out of order, repeated or end in zero bytes, in the
    canonical form: a step per window, as the check is."""
    windows: dict[int, int] = {}
    for window, bits in bitmap_windows(raw):
        windows[window] = windows.get(window, 0) | int.from_bytes(bits.ljust(32, b"\x00"), "big")
    return windows_bitmap(windows)


def _clear_memos() -> None:
    """Forget the memos shared between parses (for measuring a packet as if seen first)."""
    _WIRES.clear()
    _BITMAPS.clear()
    _DECODED_TYPES.clear()


def _check_strings(view: memoryview, pos: int, end: int) -> int:
    """Number of character-strings filling [pos, end) exactly; _Bad if one overruns."""
    count = 0
    while pos < end:
        pos += view[pos] + 1
        count += 1
    if pos != end:
        raise _Bad("character-string overruns RDATA")
    return count


def parse_message(data: bytes | bytearray | memoryview) -> Message:
    """Parse one DNS message. Raises only MalformedPacket; keeps no reference to ``data``."""
    kind = data.__class__
    if kind is bytes or kind is bytearray:
        view = memoryview(data)
    elif isinstance(data, memoryview) and data.format == "B" and data.ndim == 1:
        # The receive path hands in a pooled view: reading it as it is saves a second view
        # (184 bytes) per packet, and nothing made from it outlives this call.
        view = data
    else:
        try:
            view = memoryview(data)
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
        except (TypeError, ValueError) as exc:
            raise MalformedPacket(f"not a readable byte buffer: {exc}") from None
    end = len(view)
    if end < 12:
        raise MalformedPacket("packet shorter than the 12-byte header", 0)
    try:
        ident, flags, qdcount, ancount, nscount, arcount = _HEADER(view, 0)
        names: dict[int, str] = {}
        runs: list[Run] = []
        wires: dict[int, bytes] = {}  # see _wire_name
        read_name = _read_name
        rr_header = _RR_HEADER
        new = _new
        pos = 12

        questions = []
        skipped = 0
        while qdcount:
            qdcount -= 1
            try:
                name, pos = _name_at(view, pos, end, names, runs)
            except _Bad as exc:
                # Stepped over in place, a question whose pointer leads nowhere is skipped
                # and counted like a record: a response's answers do not depend on it.
                after = _step_over(view, pos, end, 4)
                if after < 0:
                    raise MalformedPacket(f"bad question name: {exc}", pos) from None
                pos = after + 4
                skipped += 1
                continue
            if pos + 4 > end:
                raise MalformedPacket("question cut off", pos)
            qtype, qclass = _QUESTION_TAIL(view, pos)
            pos += 4
            rtype = record_type(qtype)
            questions.append(new(Question, (name, rtype, qclass & 0x7FFF, qclass > 0x7FFF)))

        answers: list[object] = []
        authorities: list[object] = []
        additionals: list[object] = []
        cut = False
        for section, remaining in (
            (answers, ancount),
            (authorities, nscount),
            (additionals, arcount),
        ):
            while remaining:
                remaining -= 1
                # Record header. Anything wrong here loses the way to the next record: stop.
                try:
                    # _name_at's shapes, inline: a call per record costs an honest response
                    # 6-11 % of its parse.
                    length = view[pos]
                    if length > 0xBF:
                        # Owner names are most often one pointer to a name already read.
                        at = (length & 0x3F) << 8 | view[pos + 1]
                        name = names.get(at)  # type: ignore[assignment]
                        if name is None:
                            name = _follow(view, at, names, runs)
                        elif name is _BAD:
                            raise _Bad("owner name does not decode")
                        pos += 2
                    elif length == 0:  # the root: nothing to decode or cache
                        name = ""
                        pos += 1
                    elif view[pos + length + 1] > 0xBF and (
                        # A new name is most often one label and a pointer ("host" + ".local").
                        name := _label_then(view, pos, end, names)  # type: ignore[assignment]
                    ):
                        pos += length + 3
                    else:
                        name, pos = read_name(view, pos, end, end, names, runs)
                    rtype, rclass, ttl, rdlength = rr_header(view, pos)
                    if ttl > 0x7FFFFFFF and rtype != 41:
                        # RFC 2181 §8: a TTL with the top bit set is read as 0 (not cached for
                        # 68 years). Not OPT's: that field is extended RCODE and flags.
                        ttl = 0
                except (_Bad, StructError, IndexError):
                    # An owner name whose pointer leads nowhere (past the end, a loop, over
                    # 255 bytes) loses only its record when the name can be stepped over in
                    # place: the header and RDLENGTH after it still say where the next record
                    # starts. (A cut-off header fails here too: fewer than 10 bytes are left.)
                    pos = _step_over(view, pos, end, 10)
                    if pos < 0:
                        cut = True
                        break
                    pos += 10 + rr_header(view, pos)[3]
                    if pos > end:
                        cut = True
                        break
                    skipped += 1
                    continue
                start = pos + 10
                pos = start + rdlength
                if pos > end:
                    cut = True
                    break
                # RDATA. Anything wrong here costs this record only.
                try:
                    if rtype == 12:  # PTR
                        if rdlength == 2 and view[start] > 0xBF:
                            # A bare pointer (a service type in a type enumeration, a chain
                            # of them in hostile packets): one lookup.
                            at = (view[start] & 0x3F) << 8 | view[start + 1]
                            target = names.get(at)
                            if target is None:
                                target = _follow(view, at, names, runs)
                            elif target is _BAD:
                                raise _Bad("PTR target does not decode")
                        else:
                            target = _label_then(view, start, pos, names)
                            if target is None:
                                target, after = read_name(view, start, pos, end, names, runs)
                            else:
                                after = start + view[start] + 3  # the label, then a pointer
                            if after != pos:  # bytes after the name: RDLENGTH is wrong
                                raise _Bad("PTR target does not fill its RDATA")
                        record: object = new(
                            PTRRecord, (name, rclass & 0x7FFF, ttl, rclass > 0x7FFF, target)
                        )
                    elif rtype == 33:  # SRV
                        if rdlength < 7:
                            raise _Bad("SRV too short")
                        priority, weight, port = _SRV_HEAD(view, start)
                        target = _label_then(view, start + 6, pos, names)
                        if target is None:
                            target, after = read_name(view, start + 6, pos, end, names, runs)
                        else:
                            after = start + view[start + 6] + 9
                        if after != pos:
                            raise _Bad("SRV target does not fill its RDATA")
                        record = new(
                            SRVRecord,
                            (
                                name,
                                rclass & 0x7FFF,
                                ttl,
                                rclass > 0x7FFF,
                                priority,
                                weight,
                                port,
                                target,
                            ),
                        )
                    elif rtype == 16:  # TXT: checked here, split into strings on access
                        check = start
                        while check < pos:
                            check += view[check] + 1
                        if check != pos:
                            raise _Bad("TXT character-string overruns RDATA")
                        rdata = view[start:pos].tobytes()
                        record = new(
                            TXTRecord, (name, rclass & 0x7FFF, ttl, rclass > 0x7FFF, rdata)
                        )
                    elif rtype == 1:  # A
                        if rdlength != 4:
                            raise _Bad("A record RDATA is not 4 bytes")
                        packed = view[start:pos].tobytes()
                        record = new(ARecord, (name, rclass & 0x7FFF, ttl, rclass > 0x7FFF, packed))
                    elif rtype == 28:  # AAAA
                        if rdlength != 16:
                            raise _Bad("AAAA record RDATA is not 16 bytes")
                        packed = view[start:pos].tobytes()
                        record = new(
                            AAAARecord, (name, rclass & 0x7FFF, ttl, rclass > 0x7FFF, packed)
                        )
                    else:
                        record = _other_record(
                            view, name, rtype, rclass, ttl, start, pos, names, runs, wires
                        )
                except (_Bad, StructError, IndexError):
                    skipped += 1
                    continue
                section.append(record)
            if cut:
                skipped += 1
                break
    except MalformedPacket:
        raise
    except Exception as exc:  # pragma: no cover - even a parser bug escapes as MalformedPacket
        raise MalformedPacket(f"unreadable packet ({exc.__class__.__name__}: {exc})") from None
    return new(
        Message,
        (
            ident,
            flags,
            tuple(questions) if questions else (),
            tuple(answers) if answers else (),
            tuple(authorities) if authorities else (),
            tuple(additionals) if additionals else (),
            skipped,
        ),
    )


def _step_over(view: memoryview, pos: int, end: int, fixed: int) -> int:
    """The offset after the name at ``pos``, stepped over in place, if ``fixed`` bytes follow
    it inside the packet; else -1."""
    try:
        after = _skip_name(view, pos, end)
    except _Bad:
        return -1
    return after if after + fixed <= end else -1


def _skip_name(view: memoryview, pos: int, end: int) -> int:
    """The offset just after the name at ``pos``, read in place only (no pointer followed)."""
    while pos < end:
        length = view[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            if pos + 2 > end:
                break
            return pos + 2
        if length >= 0x40:
            break
        pos += length + 1
    raise _Bad("NSEC next name cannot be skipped")


def _other_record(
    view: memoryview,
    name: str,
    rtype: int,
    rclass: int,
    ttl: int,
    start: int,
    end: int,
    names: dict[int, str],
    runs: list[Run],
    wires: dict[int, bytes],
) -> object:
    """The record types rarer than PTR, SRV, TXT, A and AAAA."""
    head = (name, rclass & 0x7FFF, ttl, rclass > 0x7FFF)
    if rtype == 47:  # NSEC; the next name may be compressed (RFC 6762 §18.14)
        if start >= end:  # no next name: one exception, not the reader's and then the skip's
            raise _Bad("NSEC RDATA empty")
        try:
            next_name, after = _read_name(view, start, end, len(view), names, runs)
        except _Bad:
            # Devices send next names whose pointers lead nowhere. In mDNS the next name is
            # the owner's own name (RFC 6762 §6.1) and only the type bitmap carries meaning,
            # so keep the record: skip the name in place and stand in the owner name.
            next_name, after = name, _skip_name(view, start, end)
        return _new(NSECRecord, (*head, next_name, _read_bitmap(view, after, end)))
    if rtype == 5:  # CNAME
        target, after = _read_name(view, start, end, len(view), names, runs)
        if after != end:
            raise _Bad("CNAME target does not fill its RDATA")
        return _new(CNAMERecord, (*head, target))
    if rtype == 13:  # HINFO
        if _check_strings(view, start, end) != 2:
            raise _Bad("HINFO needs exactly two strings")
        split = start + 1 + view[start]
        cpu = view[start + 1 : split].tobytes()
        os = view[split + 1 : end].tobytes()
        return _new(HINFORecord, (*head, cpu, os))
    layout = _NAMES_IN_RDATA.get(rtype)
    if layout is None:
        rdata = view[start:end].tobytes()
    else:
        rdata = _expand_names(view, start, end, layout, names, runs, wires)
    return _new(UnknownRecord, (*head, record_type(rtype), rdata))


# Types kept as UnknownRecord whose RDATA holds domain names, which a sender may compress:
# type -> (bytes of fixed fields before the names, number of names, bytes of fixed fields after).
# RFC 3597 §4: a receiver MUST decompress those of the RFC 1035 types, and SHOULD those of RP,
# AFSDB, RT and PX; KX and DNAME forbid senders to compress, and are read the same liberal way.
# (CNAME, PTR, SRV and NSEC are decoded records, their names read as names.)
_NAMES_IN_RDATA: dict[int, tuple[int, int, int]] = {
    2: (0, 1, 0),  # NS
    3: (0, 1, 0),  # MD
    4: (0, 1, 0),  # MF
    6: (0, 2, 20),  # SOA: MNAME, RNAME, serial, refresh, retry, expire, minimum
    7: (0, 1, 0),  # MB
    8: (0, 1, 0),  # MG
    9: (0, 1, 0),  # MR
    14: (0, 2, 0),  # MINFO: RMAILBX, EMAILBX
    15: (2, 1, 0),  # MX: preference, exchange
    17: (0, 2, 0),  # RP: mbox, txt
    18: (2, 1, 0),  # AFSDB: subtype, hostname
    21: (2, 1, 0),  # RT: preference, intermediate host
    26: (2, 2, 0),  # PX: preference, MAP822, MAPX400
    36: (2, 1, 0),  # KX: preference, exchanger
    39: (0, 1, 0),  # DNAME
}


def _expand_names(
    view: memoryview,
    start: int,
    end: int,
    layout: tuple[int, int, int],
    names: dict[int, str],
    runs: list[Run],
    wires: dict[int, bytes],
) -> bytes:
    """The RDATA at [start, end) with its names written out in full (no pointer left), so the
    bytes kept mean the same outside this packet: records compare by what they say, and are
    written again as they were meant. _Bad (the record is skipped) if a name does not decode or
    the fields do not fill the RDATA exactly.

    A name is checked by _read_name, with its bounds and memos, before _wire_name copies it.
    Two shapes skip both, as a lookup in ``wires`` (names already written out, so known good):
    a bare pointer to such a name (the commonest compressed name), and a bare pointer to one
    label before one (records pointing into a long name one label earlier each time)."""
    before, count, after = layout
    pos = start + before
    out = view[start:pos].tobytes()
    packet_end = len(view)
    while count:
        count -= 1
        if pos + 1 < end and view[pos] > 0xBF:
            target = (view[pos] & 0x3F) << 8 | view[pos + 1]
            wire = wires.get(target)
            if wire is None and target < packet_end and 0 < (length := view[target]) < 0x40:
                suffix = wires.get(target + length + 1)
                if suffix is not None and len(suffix) + length < MAX_NAME_WIRE:
                    wire = wires[target] = view[target : target + length + 1].tobytes() + suffix
            if wire is not None:
                out += wire
                pos += 2
                continue
        after_name = _read_name(view, pos, end, packet_end, names, runs)[1]
        out += _wire_name(view, pos, wires)
        pos = after_name
    if pos + after != end:
        raise _Bad("fixed fields do not fill the RDATA")
    return out + view[pos:end].tobytes() if after else out


def _wire_name(view: memoryview, pos: int, wires: dict[int, bytes]) -> bytes:
    """The uncompressed wire form of the name at ``pos``, which _read_name has read, so its
    labels and pointers lead to a terminator within 255 bytes.

    Remembered per packet (``wires``) under every offset walked, labels and pointers alike:
    a later name reaching any of them (a pointer into a long name, or to the top of a chain)
    costs a lookup, so each offset is walked at most once per packet, however long a chain of
    pointers the memos of _read_name let through. Work linear in the packet, as for its text.
    """
    wire = wires.get(pos)
    if wire is not None:
        return wire
    walked = []
    for _ in range(len(view)):  # (a guard only: a name that decoded cannot loop)
        length = view[pos]
        if not length:
            wire = b"\x00"
            break
        walked.append(pos)
        pos = (length & 0x3F) << 8 | view[pos + 1] if length > 0xBF else pos + length + 1
        wire = wires.get(pos)
        if wire is not None:
            break
    else:
        raise _Bad("name does not end")
    for at in reversed(walked):
        length = view[at]
        if length < 0x40:
            wire = view[at : at + length + 1].tobytes() + wire
        wires[at] = wire
    if len(wire) > MAX_NAME_WIRE:
        raise _Bad("name longer than 255 bytes")  # (cannot happen: _read_name checked it)
    return wire
