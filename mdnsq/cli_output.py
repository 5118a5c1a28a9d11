# How the `mdnsq` command writes what it found: for people, as NDJSON, or as avahi-browse lines.
#
# Goals
# - Every result is written and flushed as soon as it is known (a script on a pipe sees it).
# - Nothing read off the network reaches a terminal raw: control characters (a label may hold
#   ESC or a newline) become \DDD in the human and parsable formats; JSON escapes them itself.
# - --json mirrors the Python API: the attribute names of ServiceInfo / ServiceEvent / records;
#   bytes are text when they are valid UTF-8, otherwise {"base64": "..."}.
# - --parsable has the line shapes `avahi-browse -p -r -k` prints, so scripts can switch, but
#   like every machine format of mdnsq it is UTF-8 as published, not avahi's \DDD for every
#   byte outside [A-Za-z0-9_-]. Only what would make a line ambiguous is escaped, with avahi's
#   own escapes so avahi's unescaping still reads it: in names '\' -> '\\', '.' -> '\.' (the
#   label stays one label), ';' -> \059; in TXT '"' and '\' backslashed; control characters
#   and bytes that are not UTF-8 as \DDD everywhere.
# Plan: one class per format behind the small `Output` interface the commands call; helpers
# that turn one value into text are module functions, so tests can check them directly.

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import socket
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from mdnsq.names import SURROGATE_ESCAPES, name_key, split_name

if TYPE_CHECKING:
    from mdnsq import Message, Querier, Record, ServiceEvent, ServiceInfo

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutputFailed(Exception):
    """Writing the results failed (other than the reader going away); holds the OSError."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))
        self.error = error


class BadInput(ValueError):
    """`decode` was given something that is not one packet as bytes or hex text."""


# --- values to text ------------------------------------------------------------------------------


def _escape_char(ch: str) -> str:
    if "\udc80" <= ch <= "\udcff":  # an undecodable byte kept by surrogateescape
        return f"\\{ord(ch) - 0xDC00:03d}"
    return "".join(f"\\{b:03d}" for b in ch.encode("utf-8"))


# Marks and overrides of text direction: a peer's name holding U+202E printed the rest of the
# line (host, port) reversed on a terminal that handles right-to-left text.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f"  # Arabic letter mark, left-to-right and right-to-left marks
    "\u202a\u202b\u202c\u202d\u202e"  # embeddings, pop, overrides
    "\u2066\u2067\u2068\u2069"  # isolates
)


def _is_unsafe(ch: str) -> bool:
    # Cc: C0/C1 controls and DEL; Cs: lone surrogates; Zl/Zp: line and paragraph separators.
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS


def clean(text: str) -> str:
    """Text safe to print on a terminal: control characters and undecodable bytes as \\DDD."""
    if text.isprintable():
        return text
    return "".join(_escape_char(ch) if _is_unsafe(ch) else ch for ch in text)


def quote_bytes(data: bytes) -> str:
    """A DNS character-string as dig shows it: in quotes, '"' and '\\' escaped, UTF-8 kept."""
    text = data.decode("utf-8", "surrogateescape")
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif _is_unsafe(ch):
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def parsable_label(label: str) -> str:
    """An instance name for --parsable: UTF-8 kept; '\\', '.', ';' and controls escaped."""
    out = []
    for ch in label:
        if ch in ".\\":
            out.append("\\" + ch)
        elif ch == ";":
            out.append("\\059")
        elif _is_unsafe(ch):
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    return "".join(out)


def parsable_name(name: str) -> str:
    """A domain name for --parsable, in its text form (a dot or backslash inside a label is
    escaped already, as avahi writes it): ';' and controls as \\DDD. A host name is the peer's
    to choose, and a ';' in it shifted the address and port fields after it."""
    return clean(name).replace(";", "\\059")


def parsable_txt(data: bytes) -> str:
    """One TXT string for --parsable: quoted, UTF-8 kept, '"' and '\\' backslashed, bytes that
    are controls or not UTF-8 as \\DDD."""
    return quote_bytes(data)


def bytes_json(data: bytes) -> str | dict[str, str]:
    """TXT bytes for JSON: text when valid UTF-8, otherwise the documented base64 marker."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def jsonable(value: Any) -> Any:
    """Plain JSON values for what the API returns (addresses, bytes, enums, records, mappings)."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum members as plain numbers
    if isinstance(value, str):
        if any("\udc80" <= ch <= "\udcff" for ch in value):
            return bytes_json(value.encode("utf-8", "surrogateescape"))
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes_json(bytes(value))
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(jsonable(v) for v in value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def type_name(rtype: int) -> str:
    from mdnsq import RecordType

    return RecordType(rtype).name


_CLASSES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}


def class_name(rclass: int) -> str:
    return _CLASSES.get(rclass, f"CLASS{rclass}")


def fqdn(name: str) -> str:
    """A name as dig writes it: with the trailing dot."""
    return clean(name) + "."


def rdata_text(record: Record) -> str:
    """The RDATA column of a record, in dig's presentation style (names with their dot)."""
    from mdnsq import (
        AAAARecord,
        ARecord,
        CNAMERecord,
        HINFORecord,
        NSECRecord,
        PTRRecord,
        SRVRecord,
        TXTRecord,
    )

    if isinstance(record, ARecord | AAAARecord):
        return str(record.address)
    if isinstance(record, PTRRecord | CNAMERecord):
        return fqdn(record.target)
    if isinstance(record, SRVRecord):
        return f"{record.priority} {record.weight} {record.port} {fqdn(record.target)}"
    if isinstance(record, TXTRecord):
        return " ".join(quote_bytes(s) for s in record.strings)
    if isinstance(record, HINFORecord):
        return f"{quote_bytes(record.cpu)} {quote_bytes(record.os)}"
    if isinstance(record, NSECRecord):
        types = " ".join(type_name(t) for t in sorted(record.types))
        return f"{fqdn(record.next_name)} {types}".rstrip()
    rdata: bytes = getattr(record, "rdata", b"")
    # RFC 3597's generic form for types without a presentation format.
    return f"\\# {len(rdata)} {rdata.hex()}".rstrip()


_OPT = 41
_EDNS_OPTIONS = {3: "NSID", 4: "Owner", 8: "Client Subnet", 10: "Cookie", 12: "Padding"}


def opt_lines(record: Record) -> list[str]:
    """An EDNS OPT pseudo-record as dig shows it (RFC 6891: class = UDP size, TTL = flags)."""
    version = (record.ttl >> 16) & 0xFF
    flags = "do" if record.ttl & 0x8000 else ""
    lines = [f"; EDNS: version: {version}, flags: {flags}; udp: {record.rclass}"]
    rdata: bytes = getattr(record, "rdata", b"")
    pos = 0
    while pos + 4 <= len(rdata):
        code = int.from_bytes(rdata[pos : pos + 2], "big")
        size = int.from_bytes(rdata[pos + 2 : pos + 4], "big")
        value = rdata[pos + 4 : pos + 4 + size]
        pos += 4 + size
        lines.append(f"; OPTION {code} ({_EDNS_OPTIONS.get(code, 'unknown')}): {value.hex(' ')}")
    if pos != len(rdata):
        lines.append(f"; {len(rdata) - pos} trailing byte(s): {rdata[pos:].hex(' ')}")
    return lines


def record_row(record: Record) -> list[str]:
    """dig's columns: name, TTL, class, type, RDATA; the mDNS cache-flush bit as a comment."""
    rdata = rdata_text(record)
    if record.cache_flush:
        rdata += "  ; cache-flush"
    return [
        fqdn(record.name),
        str(record.ttl),
        class_name(record.rclass),
        type_name(record.type),
        rdata,
    ]


def record_json(record: Record) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": record.name,
        "type": type_name(record.type),
        "rclass": record.rclass,
        "ttl": record.ttl,
        "cache_flush": record.cache_flush,
    }
    # The record's own data fields, as the API names them (TXT: "strings" alone, not also its
    # wire RDATA). Raw RDATA is always {"base64": ...}: as text when it happened to be UTF-8,
    # the field's JSON type changed with the data.
    for attr in record._data_names:
        if attr == "type":
            continue
        value = getattr(record, attr)
        if attr == "types":
            value = [type_name(t) for t in sorted(value)]
        elif attr == "rdata":
            value = {"base64": base64.b64encode(value).decode("ascii")}
        fields[attr] = value
    return {k: jsonable(v) for k, v in fields.items()}


def align(rows: Sequence[Sequence[str]], sep: str = "  ") -> list[str]:
    """Rows as lines with every column but the last padded to its widest cell."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append(sep.join(cells).rstrip())
    return lines


def interface_name(interface: object) -> str:
    """An interface index (or name) as avahi-browse shows it."""
    if interface is None:
        return "n/a"
    if isinstance(interface, int):
        try:
            return socket.if_indextoname(interface)
        except OSError:
            return str(interface)
    return clean(str(interface))


def split_type(service_type: str) -> tuple[str, str]:
    """'_ipp._tcp.local' -> ('_ipp._tcp', 'local'): avahi-browse's type and domain columns."""
    labels = split_name(service_type)
    for i, label in enumerate(labels):
        if label.lower() in ("_tcp", "_udp"):
            return ".".join(labels[: i + 1]), ".".join(labels[i + 1 :]) or "local"
    return service_type, "local"


def txt_strings(txt: Mapping[str, bytes | None]) -> list[bytes]:
    """TXT strings rebuilt from ServiceInfo.txt (key alone when its value is None)."""
    return [
        key.encode("utf-8", "surrogateescape") + (b"" if value is None else b"=" + value)
        for key, value in txt.items()
    ]


def txt_human(txt: Mapping[str, bytes | None]) -> str:
    """TXT pairs for people: key=value, values with spaces or odd bytes quoted."""
    parts = []
    for key, value in txt.items():
        text = clean(key)
        if value is not None:
            shown = value.decode("utf-8", "surrogateescape")
            if shown.isprintable() and " " not in shown and '"' not in shown:
                text += "=" + shown
            else:
                text += "=" + quote_bytes(value)
        parts.append(text)
    return "  ".join(parts)


def address_text(address: IPAddress) -> str:
    """An address for people: a link-local IPv6 scope as the interface name (fe80::1%eth0)."""
    scope = getattr(address, "scope_id", None)
    if scope and scope.isdigit():
        return f"{type(address)(address.packed)}%{interface_name(int(scope))}"
    return str(address)


# --- decode input --------------------------------------------------------------------------------

_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_CAPTURE_MAGIC = {
    b"\xd4\xc3\xb2\xa1": "pcap",
    b"\xa1\xb2\xc3\xd4": "pcap",
    b"\x4d\x3c\xb2\xa1": "pcap",
    b"\xa1\xb2\x3c\x4d": "pcap",
    b"\x0a\x0d\x0d\x0a": "pcapng",
}
_HEX_TOKEN = re.compile(rb"[^\s:]+")


def packet_bytes(data: bytes, input_format: str | None) -> bytes:
    """The packet in ``data``: raw bytes, or hex text (detected unless ``input_format`` says)."""
    if not data or (input_format != "raw" and not data.strip()):
        raise BadInput("empty input")
    if input_format is None and data[:4] in _CAPTURE_MAGIC:  # --raw decodes it regardless
        raise BadInput(
            f"this is a {_CAPTURE_MAGIC[data[:4]]} capture file, not one DNS message; export the "
            "packet's UDP payload (Wireshark: Copy > ...as Hex Stream) and decode that"
        )
    if input_format == "raw":
        return data
    try:
        digits = _hex_digits(data)
    except BadInput:
        if input_format == "hex":
            raise
        return data  # not hex text, so the packet itself
    if len(digits) % 2:
        raise BadInput(f"hex text has an odd number of digits ({len(digits)})")
    return binascii.unhexlify(digits)


def _hex_digits(data: bytes) -> bytes:
    """The hex digits of ``data``; whitespace, ':' and a leading '0x' of each token are ignored."""
    digits = bytearray()
    for match in _HEX_TOKEN.finditer(data):
        token, start = match.group(), match.start()
        if token[:2] in (b"0x", b"0X"):
            token, start = token[2:], start + 2
        for i, byte in enumerate(token):
            if byte not in _HEX_DIGITS:
                shown = repr(chr(byte)) if 0x20 < byte < 0x7F else f"byte 0x{byte:02x}"
                raise BadInput(f"not hex text: {shown} at offset {start + i}")
        digits += token
    return bytes(digits)


# --- the three formats ---------------------------------------------------------------------------

_OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}
_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_FLAG_BITS = (
    ("qr", 0x8000),
    ("aa", 0x0400),
    ("tc", 0x0200),
    ("rd", 0x0100),
    ("ra", 0x0080),
    ("ad", 0x0020),
    ("cd", 0x0010),
)


class Output:
    """What the commands call; each method writes one result and flushes it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.count = 0  # results written, so the command knows whether anything was found

    def _write(self, lines: Iterable[str]) -> None:
        try:
            for line in lines:
                self.stream.write(line + "\n")
            self.stream.flush()
        except BrokenPipeError:
            raise  # the reader went away: main() stops quietly
        except OSError as e:
            raise OutputFailed(e) from e  # a full disk, an I/O error: not "nothing found"
        self.count += 1

    def service(self, info: ServiceInfo) -> None:
        raise NotImplementedError

    def instance(self, instance: str, service_type: str, interface: object) -> None:
        """A service instance that was found but not resolved (browse --no-resolve)."""
        raise NotImplementedError

    def event(self, event: ServiceEvent) -> None:
        raise NotImplementedError

    def host(self, name: str, addresses: Sequence[IPAddress]) -> None:
        raise NotImplementedError

    def service_type(self, name: str) -> None:
        raise NotImplementedError

    def records(self, records: Sequence[Record]) -> None:
        raise NotImplementedError

    def message(self, message: Message, size: int) -> None:
        raise NotImplementedError

    def attach(self, querier: Querier) -> None:
        """The Querier the results come from (for formats that need more than ServiceInfo)."""

    def close(self) -> None:
        self.stream.flush()


class HumanOutput(Output):
    """For people: a block per service, aligned lines elsewhere; names as they are (UTF-8)."""

    def __init__(self, stream: IO[str], name_width: int = 0) -> None:
        super().__init__(stream)
        self.name_width = name_width

    def service(self, info: ServiceInfo) -> None:
        lines = [] if self.count == 0 else [""]
        lines.append(
            f"{clean(info.instance)}  ({clean(info.type)} on {interface_name(info.interface)})"
        )
        where = f"{clean(info.host)}:{info.port}"
        if info.priority or info.weight:
            where += f"  (priority {info.priority}, weight {info.weight})"
        rows = [["  host", where]]
        if info.addresses:
            rows.append(["  address", "  ".join(map(address_text, info.addresses))])
        txt = txt_human(info.txt)
        if txt:
            rows.append(["  txt", txt])
        self._write([*lines, *align(rows)])

    def instance(self, instance: str, service_type: str, interface: object) -> None:
        self._write([f"{clean(service_type):<20}  {clean(instance)}"])

    def event(self, event: ServiceEvent) -> None:
        info = event.info
        stamp = time.strftime("%H:%M:%S")
        line = f"{stamp}  {event.kind:<7}  {clean(info.type)}  {clean(info.instance)}"
        if event.kind != "removed" and info.host:
            line += f"  {clean(info.host)}:{info.port}"
            if info.addresses:
                line += "  " + " ".join(map(address_text, info.addresses))
        self._write([line])

    def host(self, name: str, addresses: Sequence[IPAddress]) -> None:
        shown = "  ".join(map(address_text, addresses))
        self._write([f"{clean(name):<{self.name_width}}  {shown}"])

    def service_type(self, name: str) -> None:
        self._write([clean(name)])

    def records(self, records: Sequence[Record]) -> None:
        self._write(align([record_row(r) for r in records]))

    def message(self, message: Message, size: int) -> None:
        flags = " ".join(name for name, bit in _FLAG_BITS if message.flags & bit)
        lines = [
            f";; ->>HEADER<<- opcode: {_OPCODES.get(message.opcode, message.opcode)}, "
            f"status: {_RCODES.get(message.rcode, message.rcode)}, id: {message.id}",
            f";; flags: {flags}; QUERY: {len(message.questions)}, ANSWER: {len(message.answers)}, "
            f"AUTHORITY: {len(message.authorities)}, ADDITIONAL: {len(message.additionals)}",
        ]
        if message.skipped:
            lines.append(f";; WARNING: {message.skipped} malformed record(s) skipped")
        if message.questions:
            lines += ["", ";; QUESTION SECTION:"]
            rows = [
                [
                    ";" + fqdn(q.name),
                    class_name(q.rclass),
                    type_name(q.type),
                    "; QU: unicast response requested" if q.unicast_response else "",
                ]
                for q in message.questions
            ]
            lines += align(rows)
        # EDNS OPT is not a record but header extension: dig shows it as a pseudo-section.
        opts = [r for r in message.additionals if r.type == _OPT]
        if opts:
            lines += ["", ";; OPT PSEUDOSECTION:"]
            for opt in opts:
                lines += opt_lines(opt)
        sections = (
            ("ANSWER", message.answers),
            ("AUTHORITY", message.authorities),
            ("ADDITIONAL", tuple(r for r in message.additionals if r.type != _OPT)),
        )
        # One alignment over every record, so the columns line up across sections as in dig.
        table = align([record_row(r) for _, records in sections for r in records])
        for title, records in sections:
            if records:
                lines += ["", f";; {title} SECTION:", *table[: len(records)]]
                table = table[len(records) :]
        lines += ["", f";; MSG SIZE: {size} bytes"]
        self._write(lines)


# Characters JSON may hold raw that some readers take as line ends (Python's splitlines(),
# editors): NEL and the C1 controls, the Unicode line and paragraph separators.
_LINE_BREAKERS = re.compile("[\x80-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    """JSON text with the characters above as \\uXXXX escapes: one result, one line, for
    any reader (a peer's name holding U+0085 split a result in two for splitlines())."""
    if text.isascii():
        return text
    return _LINE_BREAKERS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class JsonOutput(Output):
    """NDJSON: one object per result, the Python API's field names, flushed per line."""

    def _emit(self, obj: Mapping[str, Any]) -> None:
        self._write([_one_line(json.dumps(obj, ensure_ascii=False))])

    def service(self, info: ServiceInfo) -> None:
        self._emit(service_json(info))

    def instance(self, instance: str, service_type: str, interface: object) -> None:
        self._emit(
            {
                "instance": jsonable(instance),
                "type": jsonable(service_type),
                "interface": interface_name(interface),
            }
        )

    def event(self, event: ServiceEvent) -> None:
        self._emit({"kind": event.kind, "info": service_json(event.info)})

    def host(self, name: str, addresses: Sequence[IPAddress]) -> None:
        self._emit({"name": jsonable(name), "addresses": [str(a) for a in addresses]})

    def service_type(self, name: str) -> None:
        self._emit({"type": jsonable(name)})

    def records(self, records: Sequence[Record]) -> None:
        for record in records:
            self._emit(record_json(record))

    def message(self, message: Message, size: int) -> None:
        self._emit(message_json(message, size))


# The public attributes of ServiceInfo, as README documents them: its fields in their order,
# then its properties. Written out, not read off dataclasses.fields(), which holds private
# fields (``_has_txt``) and no properties (``complete``); a test compares it with the class.
SERVICE_FIELDS = (
    "name",
    "instance",
    "type",
    "host",
    "port",
    "priority",
    "weight",
    "addresses",
    "txt",
    "interface",
    "ttl",
    "complete",
)


def service_json(info: ServiceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SERVICE_FIELDS:
        value = getattr(info, name)
        if name == "txt":
            out[name] = txt_json(value)
        elif name == "interface" and isinstance(value, int):
            out[name] = interface_name(value)
        else:
            out[name] = jsonable(value)
    return out


def txt_json(txt: Mapping[str, bytes | None]) -> dict[str, Any]:
    """TXT as {key: value}: value text, {"base64": ...}, or null for a key without '='."""
    # A key is a JSON string: bytes of it that are not UTF-8 (surrogate escapes) as \DDD.
    return {
        (key if key.isascii() else key.translate(SURROGATE_ESCAPES)): (
            None if value is None else bytes_json(value)
        )
        for key, value in txt.items()
    }


def message_json(message: Message, size: int) -> dict[str, Any]:
    return {
        "id": message.id,
        "flags": message.flags,
        "opcode": message.opcode,
        "rcode": message.rcode,
        "is_response": message.is_response,
        "authoritative": message.authoritative,
        "truncated": message.truncated,
        "questions": [
            {
                "name": q.name,
                "type": type_name(q.type),
                "rclass": q.rclass,
                "unicast_response": q.unicast_response,
            }
            for q in message.questions
        ],
        "answers": [record_json(r) for r in message.answers],
        "authorities": [record_json(r) for r in message.authorities],
        "additionals": [record_json(r) for r in message.additionals],
        "skipped": message.skipped,
        "size": size,
    }


class ParsableOutput(Output):
    """`avahi-browse -p -r` lines: '+' found, '=' resolved (one per address), '-' removed.

    The protocol column is the one asked over when -4 / -6 fixed it (``protocol``); otherwise
    ServiceInfo does not say which family an answer came over, so each line takes its address's.

    A watch pairs its lines as a script keeping avahi-browse's state needs: each '+' (one per
    interface and protocol) is closed by one '-' with the same columns, and no '-' comes without
    its '+'. The protocols follow the addresses, which change while a service stays, so what was
    opened is remembered per instance: an update opens the pairs its addresses add, closes those
    they no longer have (their addresses are gone), then lists the addresses; a removal closes
    what is open, whatever addresses it still carries. A pair kept whose '=' lines named an
    address now gone (its host said goodbye for it) is closed and opened again before the
    addresses are listed: '=' lines only add to what a script holds, and with no address left
    the pair stays open (the instance is there) and the dead address stayed current.
    """

    def __init__(self, stream: IO[str], protocol: str | None = None) -> None:
        super().__init__(stream)
        self.protocol = protocol
        self.querier: Querier | None = None
        # instance key -> (interface, protocol) -> the columns of the '+' line printed for it,
        # and the addresses its '=' lines named since
        self._open: dict[str, dict[tuple[str, str], tuple[str, frozenset[IPAddress]]]] = {}

    def attach(self, querier: Querier) -> None:
        self.querier = querier

    def _txt(self, info: ServiceInfo) -> list[bytes]:
        """The TXT strings as published: ServiceInfo.txt has lower-cased keys and drops repeats,
        but avahi-browse prints the strings, so take them from the Querier's cache when it has
        the record that ServiceInfo.txt was made from."""
        if self.querier is not None:
            from mdnsq import RecordType, TXTRecord

            for record in self.querier.cached(info.name, RecordType.TXT):
                if isinstance(record, TXTRecord) and dict(record.properties) == dict(info.txt):
                    return list(record.strings)
        return txt_strings(info.txt)

    def _protocol(self, address: IPAddress) -> str:
        return self.protocol or ("IPv4" if address.version == 4 else "IPv6")

    def _protocols(self, addresses: Sequence[IPAddress]) -> list[str]:
        found = {self._protocol(a) for a in addresses}
        return sorted(found) or [self.protocol or "IPv4"]

    def _head(self, mark: str, info: ServiceInfo, protocol: str) -> str:
        service_type, domain = split_type(info.type)
        return ";".join(
            [
                mark,
                interface_name(info.interface),
                protocol,
                parsable_label(info.instance),
                parsable_name(service_type),
                parsable_name(domain),
            ]
        )

    def _resolved(self, info: ServiceInfo) -> list[str]:
        # avahi-browse lists the TXT strings last to first (its string lists are built by
        # prepending); the interface column already says what an IPv6 scope would.
        # Empty strings are left out, as avahi's TXT parser drops them: the TXT record of
        # one empty string (a service without properties, RFC 6763 §6.1) is an empty column.
        txt = " ".join(parsable_txt(s) for s in reversed(self._txt(info)) if s)
        lines = []
        for address in info.addresses:
            plain = str(type(address)(address.packed))  # no scope: the interface column says it
            tail = [parsable_name(info.host), plain, str(info.port), txt]
            lines.append(self._head("=", info, self._protocol(address)) + ";" + ";".join(tail))
        return lines

    def _pairs(self, info: ServiceInfo) -> dict[tuple[str, str], str]:
        """(interface, protocol) -> the '+' line's columns after the mark, for ``info``."""
        interface = interface_name(info.interface)
        return {
            (interface, p): self._head("+", info, p)[2:] for p in self._protocols(info.addresses)
        }

    def service(self, info: ServiceInfo) -> None:
        found = ["+;" + columns for columns in self._pairs(info).values()]
        self._write(found + self._resolved(info))

    def instance(self, instance: str, service_type: str, interface: object) -> None:
        kind, domain = split_type(service_type)
        fields = ["+", interface_name(interface), self.protocol or "IPv4", parsable_label(instance)]
        self._write([";".join([*fields, parsable_name(kind), parsable_name(domain)])])

    def event(self, event: ServiceEvent) -> None:
        info = event.info
        key = name_key(info.name)
        opened = self._open.pop(key, {})
        if event.kind == "removed":
            if opened:  # nothing was printed for an instance never opened: nothing to close
                self._write(["-;" + columns for columns, _ in opened.values()])
            return
        # added, or updated (an 'added' again, from another type's watch, is an update too)
        now = self._pairs(info)
        named: dict[tuple[str, str], frozenset[IPAddress]] = {
            pair: frozenset(a for a in info.addresses if self._protocol(a) == pair[1])
            for pair in now
        }
        closed = [
            "-;" + columns
            for pair, (columns, before) in opened.items()
            if pair not in now or not before <= named[pair]
        ]
        fresh = [
            "+;" + columns
            for pair, columns in now.items()
            if pair not in opened or not opened[pair][1] <= named[pair]
        ]
        self._open[key] = {pair: (columns, named[pair]) for pair, columns in now.items()}
        self._write(closed + fresh + self._resolved(info))

    def host(self, name: str, addresses: Sequence[IPAddress]) -> None:
        # avahi-resolve's format: name TAB address, one line per address.
        self._write([f"{clean(name)}\t{type(a)(a.packed)}" for a in addresses])

    def service_type(self, name: str) -> None:
        self._write([clean(name)])


def make_output(
    stream: IO[str],
    *,
    json: bool = False,
    parsable: bool = False,
    name_width: int = 0,
    protocol: str | None = None,
) -> Output:
    if json:
        return JsonOutput(stream)
    if parsable:
        return ParsableOutput(stream, protocol)
    return HumanOutput(stream, name_width)
