"""The CLI's formatters and `decode`, without a network: hand-built records and ServiceInfo values.

What a script relies on is checked field by field: avahi-browse's escaping of instance names, the
NDJSON field names and the base64 marker for TXT bytes, dig-style decode output, and the one-line
error for input that is not a packet.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import signal
import time
import unicodedata
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdnsq import (
    AAAARecord,
    ARecord,
    HINFORecord,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    RecordType,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    cli,
    cli_output,
    encode_message,
    escape_label,
)
from mdnsq.service import ServiceEvent, ServiceInfo

# main() arms the CLI's watchdog, an ITIMER_REAL/SIGALRM alarm, for every network command (stand-in
# Querier or not) and disarms it on the way out: pytest-timeout's default (signal) method uses that
# same alarm, so a hang after such a call went uncaught. Its thread method does not.
pytestmark = pytest.mark.timeout(method="thread")

DATA = Path(__file__).parent / "data" / "cli"

PRINTER = ServiceInfo(
    name="Café Printer – 2nd floor._ipp._tcp.local",
    instance="Café Printer – 2nd floor",
    type="_ipp._tcp.local",
    host="demo-printer.local",
    port=631,
    addresses=(IPv4Address("192.0.2.1"), IPv6Address("fe80::1%1")),
    txt={"txtvers": b"1", "ty": b"Demo Colour Laser", "scan": None, "bin": b"\xff\x00"},
    interface=1,
    ttl=120,
)


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(argv, stdout=out)
    return status, out.getvalue()


# --- escaping ------------------------------------------------------------------------------------


def test_parsable_label_keeps_utf8_and_escapes_only_what_is_ambiguous() -> None:
    # avahi-browse would print "Caf\\195\\169\\032Printer..." here; mdnsq keeps UTF-8 as published.
    assert cli_output.parsable_label("Café Printer – 2nd. floor;x") == (
        "Café Printer – 2nd\\. floor\\059x"
    )
    assert cli_output.parsable_label("Web-Server_1") == "Web-Server_1"
    assert cli_output.parsable_label("Dr. Who") == "Dr\\. Who"  # the label stays one label
    assert cli_output.parsable_label("a\\b") == "a\\\\b"
    assert cli_output.parsable_label("a;b") == "a\\059b"  # so ';' never splits a field
    assert cli_output.parsable_label("x\udcff") == "x\\255"  # an undecodable byte off the wire
    assert cli_output.parsable_label("tab\tnl\n") == "tab\\009nl\\010"  # no raw controls


def test_clean_neutralises_terminal_control_characters() -> None:
    assert cli_output.clean("Café – ok") == "Café – ok"
    assert cli_output.clean("evil\x1b[2Jname\n") == "evil\\027[2Jname\\010"
    assert cli_output.clean("bad\udcc3byte") == "bad\\195byte"


def test_quote_bytes_is_dig_style_and_keeps_utf8() -> None:
    assert cli_output.quote_bytes(b"ty=Caf\xc3\xa9") == '"ty=Café"'
    assert cli_output.quote_bytes(b'a"b\\c') == '"a\\"b\\\\c"'
    assert cli_output.quote_bytes(b"\xff\x00") == '"\\255\\000"'


def test_bytes_json_uses_text_or_the_base64_marker() -> None:
    assert cli_output.bytes_json(b"Caf\xc3\xa9") == "Café"
    assert cli_output.bytes_json(b"\xff\x00") == {"base64": base64.b64encode(b"\xff\x00").decode()}
    assert cli_output.jsonable("x\udcff") == {"base64": "eP8="}


# --- records --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "rdata"),
    [
        (ARecord(name="h.local", ttl=120, address="192.0.2.1"), "192.0.2.1"),
        (AAAARecord(name="h.local", ttl=120, address="fe80::1"), "fe80::1"),
        (
            PTRRecord(name="_ipp._tcp.local", ttl=4500, target="A\\.B._ipp._tcp.local"),
            "A\\.B._ipp._tcp.local.",
        ),
        (
            SRVRecord(
                name="x._ipp._tcp.local", ttl=120, priority=1, weight=2, port=631, target="h.local"
            ),
            "1 2 631 h.local.",
        ),
        (TXTRecord(name="x.local", ttl=1, strings=(b"a=1", b"", b'q"')), '"a=1" "" "q\\""'),
        (HINFORecord(name="x.local", ttl=1, cpu=b"ARM", os=b"Linux"), '"ARM" "Linux"'),
        (
            NSECRecord(name="h.local", ttl=1, next_name="h.local", types=frozenset({28, 1})),
            "h.local. A AAAA",
        ),
        (UnknownRecord(name="h.local", ttl=1, type=65, rdata=b"\x01\x02"), "\\# 2 0102"),
    ],
)
def test_rdata_text_per_type(record: object, rdata: str) -> None:
    assert cli_output.rdata_text(record) == rdata  # type: ignore[arg-type]


def test_record_json_has_the_api_field_names() -> None:
    srv = SRVRecord(
        name="x._ipp._tcp.local",
        ttl=120,
        priority=0,
        weight=5,
        port=631,
        target="h.local",
        cache_flush=True,
    )
    assert cli_output.record_json(srv) == {
        "name": "x._ipp._tcp.local",
        "type": "SRV",
        "rclass": 1,
        "ttl": 120,
        "cache_flush": True,
        "priority": 0,
        "weight": 5,
        "port": 631,
        "target": "h.local",
    }
    txt = TXTRecord(name="x.local", ttl=1, strings=(b"ok=1", b"\xfe"))
    assert cli_output.record_json(txt)["strings"] == ["ok=1", {"base64": "/g=="}]
    nsec = NSECRecord(name="h.local", ttl=1, next_name="h.local", types=frozenset({47, 1}))
    assert cli_output.record_json(nsec)["types"] == ["A", "NSEC"]


# --- services: the three formats -----------------------------------------------------------------


def test_human_service_block() -> None:
    out = io.StringIO()
    fmt = cli_output.HumanOutput(out)
    fmt.service(PRINTER)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Café Printer – 2nd floor  (_ipp._tcp.local on ")
    assert lines[1].split() == ["host", "demo-printer.local:631"]
    # a link-local scope shown as the interface's name, which ping and ssh accept
    iface = cli_output.interface_name(1)
    assert lines[2].split() == ["address", "192.0.2.1", f"fe80::1%{iface}"]
    assert lines[3].split(None, 1) == [
        "txt",
        'txtvers=1  ty="Demo Colour Laser"  scan  bin="\\255\\000"',
    ]
    # the value column is aligned
    assert len({line.index(line.split()[1]) for line in lines[1:]}) == 1
    assert fmt.count == 1


def test_json_service_has_every_api_field() -> None:
    out = io.StringIO()
    cli_output.JsonOutput(out).service(PRINTER)
    (line,) = out.getvalue().splitlines()
    assert "Café" in line  # UTF-8, not \u escapes
    obj = json.loads(line)
    # The keys are the public API of ServiceInfo, no more and no less: every public field and
    # property (a new one must be added to cli_output.SERVICE_FIELDS), nothing private such as
    # ``_has_txt``; in a stable order: the dataclass's fields as declared, then the properties.
    fields = [field.name for field in dataclasses.fields(ServiceInfo)]
    properties = [name for name, value in vars(ServiceInfo).items() if isinstance(value, property)]
    public = [name for name in fields + properties if not name.startswith("_")]
    assert "complete" in public  # what README documents
    assert list(obj) == public
    assert obj["complete"] is False  # built by hand: no TXT record was seen
    assert json.loads(_json_line(dataclasses.replace(PRINTER, _has_txt=True)))["complete"] is True
    assert obj["instance"] == "Café Printer – 2nd floor"
    assert obj["addresses"] == ["192.0.2.1", "fe80::1%1"]
    assert obj["txt"] == {
        "txtvers": "1",
        "ty": "Demo Colour Laser",
        "scan": None,
        "bin": {"base64": "/wA="},
    }
    assert obj["port"] == 631 and obj["ttl"] == 120


def _json_line(info: ServiceInfo) -> str:
    out = io.StringIO()
    cli_output.JsonOutput(out).service(info)
    (line,) = out.getvalue().splitlines()
    return line


def test_json_event_nests_the_info() -> None:
    out = io.StringIO()
    cli_output.JsonOutput(out).event(ServiceEvent("removed", PRINTER))
    obj = json.loads(out.getvalue())
    assert obj["kind"] == "removed"
    assert obj["info"]["name"] == PRINTER.name


def test_parsable_service_lines() -> None:
    out = io.StringIO()
    cli_output.ParsableOutput(out).service(PRINTER)
    iface = cli_output.interface_name(1)
    name = "Café Printer – 2nd floor"
    txt = '"bin=\\255\\000" "scan" "ty=Demo Colour Laser" "txtvers=1"'  # last to first, as avahi
    assert out.getvalue().splitlines() == [
        f"+;{iface};IPv4;{name};_ipp._tcp;local",
        f"+;{iface};IPv6;{name};_ipp._tcp;local",
        f"=;{iface};IPv4;{name};_ipp._tcp;local;demo-printer.local;192.0.2.1;631;{txt}",
        f"=;{iface};IPv6;{name};_ipp._tcp;local;demo-printer.local;fe80::1;631;{txt}",
    ]


def test_parsable_txt_keeps_utf8_and_escapes_quotes_and_controls() -> None:
    assert cli_output.parsable_txt(b'q="x"') == '"q=\\"x\\""'
    assert cli_output.parsable_txt(b"tab=a\tb") == '"tab=a\\009b"'
    assert cli_output.parsable_txt("note=café;x\\y".encode()) == '"note=café;x\\\\y"'
    assert cli_output.parsable_txt(b"Second=two words") == '"Second=two words"'
    assert cli_output.parsable_txt(b"bin=\xff\x00") == '"bin=\\255\\000"'


def test_parsable_escapes_a_semicolon_in_a_host_name_and_json_line_breaks() -> None:
    spoof = dataclasses.replace(
        PRINTER, host="evil;192.0.2.66;80;x.local", addresses=PRINTER.addresses[:1]
    )
    out = io.StringIO()
    cli_output.ParsableOutput(out).service(spoof)
    resolved = out.getvalue().splitlines()[1].split(";")
    assert resolved[6:9] == ["evil\\059192.0.2.66\\05980\\059x.local", "192.0.2.1", "631"]
    out = io.StringIO()
    cli_output.JsonOutput(out).service(dataclasses.replace(PRINTER, host="a\u2028b\x85.local"))
    [line] = out.getvalue().splitlines()  # one result, one line, whatever reads it
    assert json.loads(line)["host"] == "a\u2028b\x85.local" and "\\u2028" in line


WATCHED = ServiceInfo(
    name="w._http._tcp.local",
    instance="w",
    type="_http._tcp.local",
    host="h.local",
    port=80,
    addresses=(IPv4Address("192.0.2.9"),),
    interface=None,
)
V4 = (IPv4Address("192.0.2.9"),)
V6 = (IPv6Address("2001:db8::9"),)


def _watch_lines(events: list[tuple[str, ServiceInfo]], protocol: str | None = None) -> list[str]:
    out = io.StringIO()
    fmt = cli_output.ParsableOutput(out, protocol)
    for kind, info in events:
        fmt.event(ServiceEvent(kind, info))  # type: ignore[arg-type]
    return out.getvalue().splitlines()


def test_parsable_watch_events() -> None:
    # An update of an instance no '+' was printed for opens it first, so its '-' pairs with it.
    assert _watch_lines([("updated", WATCHED), ("removed", WATCHED)]) == [
        "+;n/a;IPv4;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        "-;n/a;IPv4;w;_http._tcp;local",
    ]


def test_parsable_watch_removal_closes_what_was_opened() -> None:
    """Added over IPv4 only, then IPv6 too, then removed once its addresses are gone: the '-'
    lines were one IPv4 line (from the addresses the removal carried) and none for IPv6, so a
    script keeping avahi-browse's state held the IPv6 entry for ever."""
    both = dataclasses.replace(WATCHED, addresses=V4 + V6)
    gone = dataclasses.replace(WATCHED, addresses=())
    events = [("added", WATCHED), ("updated", both), ("removed", gone)]
    assert _watch_lines(events) == [
        "+;n/a;IPv4;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        "+;n/a;IPv6;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        "=;n/a;IPv6;w;_http._tcp;local;h.local;2001:db8::9;80;",
        "-;n/a;IPv4;w;_http._tcp;local",
        "-;n/a;IPv6;w;_http._tcp;local",
    ]
    # removed while only its IPv6 address is left: the IPv4 line is closed too
    v6 = dataclasses.replace(WATCHED, addresses=V6)
    assert _watch_lines([("added", both), ("removed", v6)])[-2:] == [
        "-;n/a;IPv4;w;_http._tcp;local",
        "-;n/a;IPv6;w;_http._tcp;local",
    ]


def test_parsable_watch_update_closes_a_protocol_whose_addresses_went() -> None:
    """An update that leaves no IPv6 address closes the IPv6 line at once (a script drops the
    IPv6 address it had), and the removal then closes only what is still open."""
    both = dataclasses.replace(WATCHED, addresses=V4 + V6)
    assert _watch_lines([("added", both), ("updated", WATCHED), ("removed", both)]) == [
        "+;n/a;IPv4;w;_http._tcp;local",
        "+;n/a;IPv6;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        "=;n/a;IPv6;w;_http._tcp;local;h.local;2001:db8::9;80;",
        "-;n/a;IPv6;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        "-;n/a;IPv4;w;_http._tcp;local",
    ]


def test_parsable_watch_reopens_a_protocol_whose_printed_address_went() -> None:
    """The host said goodbye for its addresses: the update carried none. The IPv4 pair stayed
    open (the instance is there) with no new '=' line, so a script kept the dead address as
    current; it is now closed and opened again. A changed address of a kept pair is the same."""
    gone = dataclasses.replace(WATCHED, addresses=())
    moved = dataclasses.replace(WATCHED, addresses=(IPv4Address("192.0.2.10"),))
    assert _watch_lines([("added", WATCHED), ("updated", gone), ("updated", moved)]) == [
        "+;n/a;IPv4;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        "-;n/a;IPv4;w;_http._tcp;local",
        "+;n/a;IPv4;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.10;80;",
    ]
    assert _watch_lines([("added", WATCHED), ("updated", moved)])[2:] == [
        "-;n/a;IPv4;w;_http._tcp;local",
        "+;n/a;IPv4;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.10;80;",
    ]
    # An address added to those printed: the '=' lines are enough.
    more = dataclasses.replace(WATCHED, addresses=(*V4, IPv4Address("192.0.2.10")))
    assert [line[0] for line in _watch_lines([("added", WATCHED), ("updated", more)])] == list(
        "+==="
    )


def test_parsable_leaves_out_empty_txt_strings_as_avahi_browse_does() -> None:
    """A service without properties publishes one empty string (RFC 6763 §6.1); avahi's TXT
    parser drops empty strings and avahi-browse prints an empty column. mdnsq printed ""."""

    class Cached:  # the Querier's cache, as ParsableOutput reads the published strings
        def __init__(self, strings: list[bytes]) -> None:
            self.strings = strings

        def cached(self, name: str, rtype: RecordType) -> list[TXTRecord]:
            return [TXTRecord(name=name, ttl=4500, strings=self.strings)]

    for strings, txt, column in (
        ([b""], {}, ""),
        ([b"", b"a=1", b""], {"a": b"1"}, '"a=1"'),
    ):
        out = io.StringIO()
        fmt = cli_output.ParsableOutput(out)
        fmt.attach(Cached(strings))  # type: ignore[arg-type]
        fmt.service(dataclasses.replace(WATCHED, txt=txt))
        assert out.getvalue().splitlines()[-1].split(";")[-1] == column


def test_parsable_watch_follows_the_interface_and_ignores_unknown_removals() -> None:
    moved = dataclasses.replace(WATCHED, interface=1)
    iface = cli_output.interface_name(1)
    other = dataclasses.replace(WATCHED, name="x._http._tcp.local", instance="x")
    lines = _watch_lines(
        [("removed", other), ("added", WATCHED), ("updated", moved), ("removed", moved)]
    )
    assert lines == [
        "+;n/a;IPv4;w;_http._tcp;local",
        "=;n/a;IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        "-;n/a;IPv4;w;_http._tcp;local",
        f"+;{iface};IPv4;w;_http._tcp;local",
        f"=;{iface};IPv4;w;_http._tcp;local;h.local;192.0.2.9;80;",
        f"-;{iface};IPv4;w;_http._tcp;local",
    ]
    # -6 fixes the protocol column: families coming and going change nothing
    both = dataclasses.replace(WATCHED, addresses=V4 + V6)
    lines = _watch_lines([("added", WATCHED), ("updated", both), ("removed", moved)], "IPv6")
    assert [line for line in lines if line[0] in "+-"] == [
        "+;n/a;IPv6;w;_http._tcp;local",
        "-;n/a;IPv6;w;_http._tcp;local",
    ]


_FAMILIES = st.sampled_from([(), V4, V6, V4 + V6])


@settings(max_examples=300)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["added", "updated", "removed"]),
            st.sampled_from(["a", "b", "A"]),  # instance names are case-insensitive
            _FAMILIES,
            st.sampled_from([None, 1, 2]),
        ),
        max_size=12,
    ),
    protocol=st.sampled_from([None, "IPv4", "IPv6"]),
)
def test_parsable_watch_pairs_every_plus_with_one_minus(
    events: list[tuple[str, str, tuple[IPv4Address | IPv6Address, ...], int | None]],
    protocol: str | None,
) -> None:
    """What a script keeping avahi-browse -p state relies on: no '-' without an open '+', no
    second '+' for what is open, and after each event what is open is what the instance has now."""
    out = io.StringIO()
    fmt = cli_output.ParsableOutput(out, protocol)
    open_lines: set[str] = set()
    current: dict[str, set[str]] = {}
    for kind, label, addresses, interface in events:
        info = dataclasses.replace(
            WATCHED,
            name=f"{label}._http._tcp.local",
            instance=label,
            addresses=addresses,
            interface=interface,
        )
        start = len(out.getvalue())
        fmt.event(ServiceEvent(kind, info))  # type: ignore[arg-type]
        for line in out.getvalue()[start:].splitlines():
            head = ";".join(line.split(";")[1:6]).lower()  # an instance key is case-insensitive
            if line[0] == "+":
                assert head not in open_lines, line
                open_lines.add(head)
            elif line[0] == "-":
                assert head in open_lines, line
                open_lines.remove(head)
        key = label.lower()
        if kind == "removed":
            current.pop(key, None)
        else:
            fresh = io.StringIO()
            cli_output.ParsableOutput(fresh, protocol).service(info)
            lines = fresh.getvalue().splitlines()
            current[key] = {";".join(x.split(";")[1:6]).lower() for x in lines if x[0] == "+"}
        assert open_lines == set().union(*current.values())
    for label in {label.lower() for _, label, _, _ in events}:
        gone = dataclasses.replace(WATCHED, name=f"{label}._http._tcp.local", addresses=())
        fmt.event(ServiceEvent("removed", gone))
    lines = out.getvalue().splitlines()
    assert len([x for x in lines if x[0] == "-"]) == len([x for x in lines if x[0] == "+"])


def test_split_type_handles_subtypes_and_domains() -> None:
    assert cli_output.split_type("_ipp._tcp.local") == ("_ipp._tcp", "local")
    assert cli_output.split_type("_printer._sub._http._tcp.local") == (
        "_printer._sub._http._tcp",
        "local",
    )


# --- decode ---------------------------------------------------------------------------------------


def test_decode_corpus_packet_like_dig() -> None:
    status, text = run(["decode", str(DATA / "generated" / "zeroconf-reply-any-ipp-legacy-v4.bin")])
    assert status == cli.EXIT_FOUND
    lines = text.splitlines()
    assert lines[0] == ";; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 20753"
    assert lines[1] == ";; flags: qr aa; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 2"
    assert ";Dr. Who’s Café Printer._ipp._tcp.local.  IN  ANY" in lines
    srv = next(line for line in lines if " SRV " in line).split()
    assert srv[-7:] == ["120", "IN", "SRV", "0", "0", "631", "zcpeer.local."]
    assert lines[-1] == ";; MSG SIZE: 483 bytes"


def test_decode_marks_cache_flush_and_escaped_dots() -> None:
    status, text = run(["decode", str(DATA / "generated" / "avahi-reply-any-ipp-v4.bin")])
    assert status == 0
    srv = next(line for line in text.splitlines() if " SRV " in line)
    assert srv.startswith("Dr\\. Who’s Café Printer._ipp._tcp.local. ")
    assert srv.endswith("avahipeer.local.  ; cache-flush")


def test_decode_opt_pseudosection() -> None:
    status, text = run(["decode", str(DATA / "dnssd.js" / "multiple_announce_with_OPT.bin")])
    assert status == 0
    assert ";; OPT PSEUDOSECTION:" in text
    assert "; EDNS: version: 0, flags: ; udp: 1440" in text
    assert "; OPTION 4 (Owner): 00 0b 00 23 14 d9 c5 d0" in text
    assert "CLASS1440" not in text  # not repeated as a record


@pytest.mark.parametrize("path", sorted(DATA.glob("*/*.bin")), ids=lambda p: p.name)
def test_decode_json_round_trips_counts(path: Path) -> None:
    status, text = run(["decode", "--json", str(path)])
    assert status == 0
    (line,) = text.splitlines()
    obj = json.loads(line)
    data = path.read_bytes()
    counts = [int.from_bytes(data[i : i + 2], "big") for i in (4, 6, 8, 10)]
    sections = ("questions", "answers", "authorities", "additionals")
    assert [len(obj[s]) for s in sections] == counts
    assert obj["size"] == len(data)


def test_decode_reads_hex_text(tmp_path: Path) -> None:
    packet = encode_message(
        Message(
            id=7, questions=[Question("_http._tcp.local", RecordType.PTR, unicast_response=True)]
        )
    )
    for text in (packet.hex(), "0x" + packet.hex(":"), packet.hex(" ", 2) + "\n"):
        path = tmp_path / "p.hex"
        path.write_text(text)
        status, out = run(["decode", str(path)])
        assert status == 0, text
        assert ";_http._tcp.local.  IN  PTR  ; QU: unicast response requested" in out


def test_decode_raw_flag_skips_hex_detection(tmp_path: Path) -> None:
    path = tmp_path / "p"
    path.write_bytes(b"abcdef0123456789abcd")  # 20 bytes that happen to be hex digits
    status, _ = run(["decode", str(path)])
    assert status == cli.EXIT_NOTHING  # read as hex: 10 bytes, too short for a header
    status, out = run(["decode", "--raw", str(path)])
    assert status == cli.EXIT_NOTHING or out  # read as a 20-byte packet: parsed or reported


def test_decode_garbage_names_the_problem_and_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.bin"
    path.write_bytes(
        bytes(4) + b"\x00\x01" + bytes(6) + b"\xc0"
    )  # 1 question, name is a cut pointer
    status, out = run(["decode", str(path)])
    err = capsys.readouterr().err
    assert status == cli.EXIT_NOTHING and out == ""
    assert err.startswith("mdnsq: malformed packet: ")
    assert "offset 12" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty input"),
        (b"  \n", "empty input"),
        (b"0011 2", "odd number of digits (5)"),
        (b"00 1g", "not hex text: 'g' at offset 4"),
        (b"\x0a\x0d\x0d\x0a" + bytes(40), "this is a pcapng capture file, not one DNS message"),
    ],
)
def test_decode_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "in"
    path.write_bytes(content)
    status, _ = run(["decode", "--hex", str(path)] if b"g" in content else ["decode", str(path)])
    err = capsys.readouterr().err
    assert status == cli.EXIT_NOTHING
    assert message in err and err.count("\n") == 1


def test_decode_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _ = run(["decode", "/nonexistent/packet.bin"])
    assert status == cli.EXIT_USAGE
    assert "cannot read /nonexistent/packet.bin" in capsys.readouterr().err


# --- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["browse"],
        ["browse", "--all", "_http._tcp"],
        ["browse", "--json", "--parsable", "_http._tcp"],
        ["resolve"],
        ["query", "x.local"],
        ["query", "x.local", "NOTATYPE"],
        ["types", "--timeout", "0"],
        ["types", "--timeout", "soon"],
        ["watch"],
        ["decode", "--hex", "--raw"],
        ["query", "x.local", "A", "--parsable"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status, _ = run(argv)
    except SystemExit as e:  # argparse's own errors
        status = int(e.code or 0)
    err = capsys.readouterr().err
    assert status == cli.EXIT_USAGE
    assert err.startswith("mdnsq") and err.count("\n") == 1 and "--help" in err


@pytest.mark.parametrize("command", [*cli._COMMANDS, None])
def test_help_has_examples(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"] if command else ["--help"])
    assert e.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_watchdog_stops_a_call_that_overruns_the_deadline(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A command that ignores its deadline (the library never should): the CLI still ends.
    def stuck(args: object, out: cli_output.Output, deadline: cli.Deadline) -> bool:
        out.service_type("_found-before._tcp.local")
        time.sleep(60)
        return True

    monkeypatch.setitem(cli._NETWORK_COMMANDS, "types", stuck)
    status, out = run(["types", "--timeout", "0.1"])
    assert status == cli.EXIT_FOUND  # it did print something before the deadline
    assert out == "_found-before._tcp.local\n"
    assert capsys.readouterr().err == "mdnsq: stopped at the --timeout deadline (0.1 s)\n"


def test_a_timeout_too_long_for_a_timer_runs_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--timeout 1e12 is past what an interval timer holds: the watchdog raised OverflowError
    and the command died with a traceback before asking anything."""
    seen: list[float] = []

    def quick(args: object, out: cli_output.Output, deadline: cli.Deadline) -> bool:
        seen.append(deadline.left())
        out.service_type("_found._tcp.local")
        return True

    monkeypatch.setitem(cli._NETWORK_COMMANDS, "types", quick)
    handler = signal.getsignal(signal.SIGALRM)
    status, out = run(["types", "--timeout", "1e12"])
    assert status == cli.EXIT_FOUND and out == "_found._tcp.local\n"
    assert seen and seen[0] > 1e11
    assert signal.getsignal(signal.SIGALRM) == handler  # the watchdog's handler not left set


CORPUS = Path(__file__).parent / "data"
CORPUS_INDEX = [json.loads(line) for line in (CORPUS / "index.jsonl").read_text().splitlines()]


def test_decode_every_corpus_message(capsys: pytest.CaptureFixture[str]) -> None:
    # Every real message in the shared corpus decodes, in both formats, with the header's counts;
    # the bare question/record fragments are not messages and fail with one line.
    messages = [e for e in CORPUS_INDEX if e["kind"] == "message"]
    assert len(messages) > 250
    for entry in CORPUS_INDEX:
        path = str(CORPUS / entry["path"])
        status, text = run(["decode", path])
        err = capsys.readouterr().err
        if entry["kind"] != "message":
            assert status == cli.EXIT_NOTHING and err.count("\n") == 1, path
            continue
        assert status == 0 and err == "", (path, err)
        counts = ", ".join(
            f"{title}: {n}"
            for title, n in zip(
                ("QUERY", "ANSWER", "AUTHORITY", "ADDITIONAL"), entry["counts"], strict=True
            )
        )
        assert text.splitlines()[1].endswith(f"; {counts}"), path
        status, text = run(["decode", "--json", path])
        obj = json.loads(text)
        sections = ("questions", "answers", "authorities", "additionals")
        assert [len(obj[s]) for s in sections] == entry["counts"], path


# -- machine formats under any names a peer can send -------------------------------------------

# Text as the parser makes it: any characters, and bytes that are not UTF-8 as surrogates.
_PEER_TEXT = st.text(
    st.one_of(st.characters(codec="utf-8"), st.sampled_from([";", "\\", ".", "\n", "\t"])),
    max_size=20,
) | st.binary(max_size=20).map(lambda raw: raw.decode("utf-8", "surrogateescape"))


def _avahi_labels(field: str) -> list[str]:
    """avahi's reading of a --parsable name field: \\DDD is a byte, \\X is X, an unescaped
    dot ends a label."""
    labels = [bytearray()]
    i = 0
    while i < len(field):
        digits = field[i + 1 : i + 4]
        if field[i] == "\\" and len(digits) == 3 and digits.isdigit():
            labels[-1].append(int(digits))
            i += 4
        elif field[i] == "\\":
            labels[-1] += field[i + 1].encode("utf-8", "surrogateescape")
            i += 2
        elif field[i] == ".":
            labels.append(bytearray())
            i += 1
        else:
            labels[-1] += field[i].encode("utf-8", "surrogateescape")
            i += 1
    return [label.decode("utf-8", "surrogateescape") for label in labels]


@settings(max_examples=500)
@given(
    instance=_PEER_TEXT,
    host_labels=st.lists(_PEER_TEXT.filter(bool), min_size=1, max_size=3),
    strings=st.lists(st.binary(max_size=12), max_size=3),
    port=st.integers(0, 65535),
)
def test_machine_formats_keep_one_line_per_result_and_every_field_in_place(
    instance: str, host_labels: list[str], strings: list[bytes], port: int
) -> None:
    """Whatever a peer puts in an instance label, a host name or TXT, a script reading the
    --parsable fields by position (or the NDJSON keys) reads the address and port it was
    meant to: found by this test, a host name holding ';' shifted the fields after it."""
    txt = {f"k{i}": s for i, s in enumerate(strings)}
    host = ".".join(escape_label(label) for label in [*host_labels, "local"])  # as parsed
    info = ServiceInfo(
        name=f"{escape_label(instance)}._http._tcp.local",
        instance=instance,
        type="_http._tcp.local",
        host=host,
        port=port,
        addresses=(IPv4Address("192.0.2.9"), IPv6Address("fe80::1")),
        txt=txt,
        interface=None,
    )
    out = io.StringIO()
    cli_output.ParsableOutput(out).service(info)
    lines = out.getvalue().split("\n")
    assert lines.pop() == "" and len(lines) == 4
    for line in lines:
        unsafe = [c for c in line if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")]
        assert not unsafe, line  # no control character reaches the terminal or the script
        fields = line.split(";", 9)
        assert _avahi_labels(fields[3]) == [instance]
        assert fields[4:6] == ["_http._tcp", "local"]
        if fields[0] == "=":
            assert len(fields) == 10
            assert _avahi_labels(fields[6]) == [*host_labels, "local"]
            assert fields[7] in ("192.0.2.9", "fe80::1") and fields[8] == str(port)
        else:
            assert len(fields) == 6
    out = io.StringIO()
    cli_output.JsonOutput(out).service(info)
    [line] = out.getvalue().splitlines()
    found = json.loads(line)
    assert found["port"] == port and found["addresses"] == ["192.0.2.9", "fe80::1"]
    assert found["host"] == cli_output.jsonable(host)
    assert found["instance"] == cli_output.jsonable(instance)
