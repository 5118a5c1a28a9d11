"""Domain names as text: escaping, splitting, joining, comparing.

Goals:
- One text form everywhere: labels joined by ``.``, no trailing dot (input may have one).
  A label that itself contains ``.`` or ``\\`` is written ``\\.`` / ``\\\\``, so DNS-SD instance
  names such as ``Dr. Who's Printer`` survive a round trip. Labels are UTF-8; bytes that are not
  valid UTF-8 are written ``\\DDD`` (decimal), so any label read off the wire can be written back
  byte for byte.
- Internally an unescaped label is a ``str`` in which undecodable bytes are lone surrogates
  (``surrogateescape``); ``label.encode("utf-8", "surrogateescape")`` gives the wire bytes back.
- Limits (RFC 1035 §2.3.4, RFC 6762 §18): labels 1..63 bytes, names <= 255 bytes on the wire,
  <= 128 labels.

Costs: everything here is linear in the length of the name. The parser does not call these helpers
on its hot path; it produces the same text form directly (see mdnsq/parser.py).
"""

from __future__ import annotations

from mdnsq.errors import InvalidArgument

MAX_LABEL = 63
MAX_NAME_WIRE = 255
MAX_LABELS = 128

_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
# A byte that is not UTF-8, as decoded with "surrogateescape" (U+DC80..U+DCFF), to its \DDD
# text form: one str.translate turns a whole run of them into text. The table also maps every
# Latin-1 character to itself: a character missing from the table costs translate a KeyError
# raised and cleared in C, and most characters of such a name are dots and ASCII (a name of
# 127 escaped labels: 23 -> 16 us).
SURROGATE_ESCAPES: dict[int, str | int] = {i: i for i in range(256)}
SURROGATE_ESCAPES.update({0xDC00 + b: f"\\{b:03d}" for b in range(128, 256)})


def name_key(name: str) -> str:
    """The form to compare names by: DNS case-insensitivity is ASCII only (RFC 4343)."""
    if name.isascii():
        return name.lower()
    return name.translate(_ASCII_LOWER)


def escape_label(label: str) -> str:
    """Text form of one unescaped label: ``.``, ``\\`` and undecodable bytes escaped."""
    if "\\" in label:
        label = label.replace("\\", "\\\\")
    if "." in label:
        label = label.replace(".", "\\.")
    if not label.isascii():
        label = label.translate(SURROGATE_ESCAPES)
    return label


def escape_label_bytes(raw: bytes) -> str:
    """Text form of a label read off the wire."""
    return escape_label(raw.decode("utf-8", "surrogateescape"))


def _split_raw(text: str) -> list[bytes]:
    """Wire bytes of each label of an escaped name (no validation of lengths)."""
    if "\\" not in text:
        if not text:
            return []
        try:
            return [part.encode("utf-8", "surrogateescape") for part in text.split(".")]
        except UnicodeEncodeError:
            raise _unencodable(text) from None
    if _ESCAPED_BACKSLASH in text or _ESCAPED_DOT in text:
        raise InvalidArgument(f"name {text!r} holds a character that cannot be encoded")
    # A step per escape instead of per character (a name of 127 labels "\." each: 55 -> 20
    # us; "Office\.Printer" 15 times: 28 -> 4 us; 127 labels "\255": 61 -> 55 us).
    # Escaped backslashes, then escaped dots, become stand-ins that cannot be separators (left
    # to right, as a reader pairs the backslashes); every backslash left then starts \DDD (its
    # byte, as surrogateescape decodes it) or escapes the one character after it.
    name = text
    text = text.replace("\\\\", _ESCAPED_BACKSLASH).replace("\\.", _ESCAPED_DOT)
    if "\\" in text:
        pieces = text.split("\\")
        out = [pieces[0]]
        for piece in pieces[1:]:
            if not piece:  # (no two backslashes are left side by side)
                raise InvalidArgument(f"dangling backslash in name {name!r}")
            digits = piece[:3]
            if len(digits) == 3 and digits.isdigit() and digits.isascii():
                value = int(digits)
                if value > 255:
                    raise InvalidArgument(f"escape \\{digits} out of range in name {name!r}")
                out.append(_BYTE_TEXT[value])
                out.append(piece[3:])
            else:
                out.append(piece)  # an escaped character stands for itself
        text = "".join(out)
    try:
        return [
            part.replace(_ESCAPED_DOT, ".")
            .replace(_ESCAPED_BACKSLASH, "\\")
            .encode("utf-8", "surrogateescape")
            for part in text.split(".")
        ]
    except UnicodeEncodeError:
        raise _unencodable(name) from None


def _unencodable(name: str) -> InvalidArgument:
    # Of the surrogates only U+DC80..U+DCFF stand for bytes (surrogateescape); any other one
    # (json.loads('"\\ud800"') makes them) has no wire form.
    return InvalidArgument(f"name {name!r} holds a character that cannot be encoded")


# Stand-ins for an escaped "\\" and "." while a name is split at its dots: surrogates that no
# name can hold (of the surrogates, only U+DC80..U+DCFF, bytes that are not UTF-8, encode).
_ESCAPED_BACKSLASH = "\ud800"
_ESCAPED_DOT = "\ud801"
# A byte value to the character that stands for it: "." and "\\" as their stand-ins, other
# ASCII as itself, and 128..255 as surrogateescape decodes them.
_BYTE_TEXT = [
    _ESCAPED_DOT
    if b == 46
    else _ESCAPED_BACKSLASH
    if b == 92
    else chr(b if b < 128 else 0xDC00 + b)
    for b in range(256)
]


def name_to_wire_labels(name: str) -> list[bytes]:
    """Validated wire labels of a name (trailing dot allowed); ValueError if it breaks a limit."""
    text = _strip_dot(name)
    labels = _split_raw(text)
    wire = 1
    for label in labels:
        size = len(label)
        if size == 0:
            raise InvalidArgument(f"empty label in name {name!r}")
        if size > MAX_LABEL:
            raise InvalidArgument(f"label longer than {MAX_LABEL} bytes in name {name!r}")
        wire += size + 1
    if wire > MAX_NAME_WIRE:
        raise InvalidArgument(f"name longer than {MAX_NAME_WIRE} bytes on the wire: {name!r}")
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"name has more than {MAX_LABELS} labels: {name!r}")
    return labels


def _strip_dot(text: str) -> str:
    """Drop one trailing dot unless it is escaped (``a\\.`` keeps it)."""
    if text.endswith(".") and text != ".":
        backslashes = len(text) - 1 - len(text[:-1].rstrip("\\"))
        if backslashes % 2 == 0:
            return text[:-1]
        return text
    if text == ".":
        return ""
    return text


def unescape_label(text: str) -> str:
    """The label an escaped single-label text stands for (``\\.`` -> ``.``, ``\\DDD`` -> byte)."""
    labels = _split_raw(text)
    if len(labels) != 1:
        raise InvalidArgument(f"{text!r} is not a single label (an unescaped '.' separates labels)")
    return labels[0].decode("utf-8", "surrogateescape")


def split_name(name: str) -> list[str]:
    """Unescaped labels of a name, validated; the root name gives ``[]``."""
    return [label.decode("utf-8", "surrogateescape") for label in name_to_wire_labels(name)]


def split_typed(name: str) -> list[str]:
    """The unescaped labels of a name as a person typed it, empty ones kept (leading, trailing
    and doubled dots) and no limit checked: split_name validates."""
    return [label.decode("utf-8", "surrogateescape") for label in _split_raw(_strip_dot(name))]


def normalize_name(text: str) -> str:
    """Canonical text form: trailing dot stripped, escapes minimal, limits checked (ValueError)."""
    if not isinstance(text, str):
        raise TypeError(f"a name must be str, not {type(text).__name__}")
    if "\\" not in text:
        stripped = text[:-1] if text.endswith(".") else text
        if (
            stripped
            and ".." not in stripped
            and stripped[0] != "."
            and stripped[-1] != "."
            and stripped.isascii()
            and len(stripped) < MAX_NAME_WIRE - 1
        ):
            labels = stripped.split(".")
            if len(labels) <= MAX_LABELS and max(map(len, labels)) <= MAX_LABEL:
                return stripped
    return ".".join(escape_label_bytes(label) for label in name_to_wire_labels(text))


def join_name(*parts: str) -> str:
    """Join names in text form, e.g. ``escape_label(instance)`` and ``"_ipp._tcp.local"``.

    Every part is text form, so a raw instance label with dots must go through ``escape_label``
    first; empty parts and trailing dots are ignored. The result is validated like
    ``normalize_name``.
    """
    # Each part checked on its own first: joined, a part ending in a lone backslash ("Office\\")
    # would escape the joining dot and merge two labels instead of being refused.
    pieces = [
        p for p in (_strip_dot(normalize_name(part) if part else part) for part in parts) if p
    ]
    return normalize_name(".".join(pieces))
