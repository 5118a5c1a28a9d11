"""Edges of the command line found by reviews (thirteenth and fourteenth sessions): each test
fails on the code before its fix. No network: a stand-in Querier, or one on tests/fakes.py's
FakeNet, hands the CLI its answers."""

from __future__ import annotations

import base64
import dataclasses
import errno
import io
import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest

from mdnsq import PTRRecord, Querier, RecordType, TXTRecord, UnknownRecord, cli, cli_output
from mdnsq.service import ServiceEvent, ServiceInfo
from tests.fakes import FakeNet, aaaa, ptr, response, service_records, srv

# main() arms the CLI's watchdog, an ITIMER_REAL/SIGALRM alarm, for every network command (stand-in
# Querier or not) and disarms it on the way out: pytest-timeout's default (signal) method uses that
# same alarm, so a hang after such a call went uncaught. Its thread method does not.
pytestmark = pytest.mark.timeout(method="thread")

TYPE = "_test._tcp.local"
SUBTYPE = "_printer._sub._test._tcp.local"
W = ServiceInfo(
    name=f"W.{TYPE}", instance="W", type=TYPE, host="wh.local", port=80, txt={"a": b"1"}, ttl=120
)


class StandIn:
    """What the CLI asks of a Querier: PTR answers per type, watch events per type."""

    def __init__(
        self,
        ptrs: dict[str, list[PTRRecord]] | None = None,
        events: dict[str, list[ServiceEvent]] | None = None,
    ) -> None:
        self.ptrs = ptrs or {}
        self.events = events or {}

    def query(self, name: str, type: RecordType, timeout: float) -> list[PTRRecord]:
        assert type == RecordType.PTR
        return self.ptrs.get(name, [])

    def cached_entries(self, name: str, rtype: RecordType) -> list[Any]:
        return []

    def watch(self, service_type: str, timeout: float | None) -> Iterator[ServiceEvent]:
        return iter(self.events.get(service_type, []))


def test_browse_no_resolve_lists_only_instances_of_the_type() -> None:
    """It printed every PTR target (a host name, another type's instance, a name two labels
    under the type) and counted them as found: exit 0 with nothing of the type there."""
    records = [
        PTRRecord(name=TYPE, ttl=4500, target=f"Honest.{TYPE}"),
        PTRRecord(name=TYPE, ttl=4500, target="printer.local"),
        PTRRecord(name=TYPE, ttl=4500, target="Other._other._udp.local"),
        PTRRecord(name=TYPE, ttl=4500, target=f"Deep.x.{TYPE}"),
    ]
    for kept, expected in ((records, ["Honest"]), (records[1:], [])):
        stream = io.StringIO()
        out = cli_output.make_output(stream, json=False, parsable=True)
        q = StandIn(ptrs={TYPE: kept, SUBTYPE: kept})
        found = cli._browse_names(q, [TYPE, SUBTYPE], out, cli.Deadline(1.0))  # type: ignore[arg-type]
        lines = stream.getvalue().splitlines()
        assert [line.split(";")[3] for line in lines] == expected  # once, type and subtype
        assert found is bool(expected)


def _merge_in_order(order: Sequence[int]) -> Any:
    """A stand-in for cli._merge that takes items from the sources in ``order`` (by index)."""

    def merge(sources: Sequence[Iterable[Any]]) -> Iterator[Any]:
        iterators = [iter(source) for source in sources]
        for index in order:
            yield next(iterators[index])

    return merge


def test_watching_a_type_and_its_subtype_reports_an_instance_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An instance under both was added twice, and reported removed when the peer withdrew it
    from the subtype alone, while the type's watch still had it."""
    changed = dataclasses.replace(W, port=81)
    events = {
        TYPE: [ServiceEvent("added", W), ServiceEvent("updated", changed)],
        SUBTYPE: [
            ServiceEvent("added", W),
            ServiceEvent("updated", changed),
            ServiceEvent("removed", changed),
        ],
    }
    monkeypatch.setattr(cli, "_merge", _merge_in_order([0, 1, 0, 1, 1]))
    stream = cli._one_stream(StandIn(events=events), [TYPE, SUBTYPE], cli.Deadline(1.0))  # type: ignore[arg-type]
    assert [(e.kind, e.info.port) for e in stream] == [("added", 80), ("updated", 81)]
    # Withdrawn from both: removed once, when the last watch says so.
    events[TYPE].append(ServiceEvent("removed", changed))
    monkeypatch.setattr(cli, "_merge", _merge_in_order([0, 1, 1, 0, 1, 0]))
    stream = cli._one_stream(StandIn(events=events), [TYPE, SUBTYPE], cli.Deadline(1.0))  # type: ignore[arg-type]
    assert [e.kind for e in stream] == ["added", "updated", "removed"]


def test_a_type_and_its_subtype_read_from_two_links_are_one_instance_not_an_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each watch reads an instance from the link of its own first PTR record, and once the
    interface counted as content (a watch's info moving to another link is an update), the
    type's word (link 2) and the subtype's (link 3) alternated as false updates. Only the
    watch whose word is shown updates it; when that one lets go, the next one's word is shown,
    an update only if it differs."""
    on_a, on_b = dataclasses.replace(W, interface=2), dataclasses.replace(W, interface=3)
    moved_a, moved_b = (dataclasses.replace(info, port=81) for info in (on_a, on_b))
    events = {
        TYPE: [ServiceEvent("added", on_a), ServiceEvent("updated", moved_a)],
        SUBTYPE: [ServiceEvent("added", on_b), ServiceEvent("updated", moved_b)],
    }
    monkeypatch.setattr(cli, "_merge", _merge_in_order([0, 1, 0, 1]))
    stream = cli._one_stream(StandIn(events=events), [TYPE, SUBTYPE], cli.Deadline(1.0))  # type: ignore[arg-type]
    assert [(e.kind, e.info.interface, e.info.port) for e in stream] == [
        ("added", 2, 80),
        ("updated", 2, 81),  # before: also "updated" on 3 after each, with nothing changed
    ]
    # The type's watch lets go: the subtype's word is shown, an update (another link).
    events[TYPE].append(ServiceEvent("removed", moved_a))
    monkeypatch.setattr(cli, "_merge", _merge_in_order([0, 1, 0, 1, 0]))
    stream = cli._one_stream(StandIn(events=events), [TYPE, SUBTYPE], cli.Deadline(1.0))  # type: ignore[arg-type]
    assert [(e.kind, e.info.interface) for e in stream][-1] == ("updated", 3)
    # The same word from both (one link): the type's watch letting go is no event at all.
    events = {
        TYPE: [ServiceEvent("added", on_a), ServiceEvent("removed", on_a)],
        SUBTYPE: [ServiceEvent("added", on_a)],
    }
    monkeypatch.setattr(cli, "_merge", _merge_in_order([0, 1, 0]))
    stream = cli._one_stream(StandIn(events=events), [TYPE, SUBTYPE], cli.Deadline(1.0))  # type: ignore[arg-type]
    assert [e.kind for e in stream] == ["added"]


def test_a_closed_stdout_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """`mdnsq ... >&-` leaves sys.stdout None: AttributeError with a traceback, exit 1."""
    packet = tmp_path / "p.bin"
    packet.write_bytes(bytes(12))
    monkeypatch.setattr(sys, "stdout", None)
    assert cli.main(["decode", str(packet)]) == cli.EXIT_USAGE
    assert "standard output is closed" in capsys.readouterr().err


def test_direction_controls_from_the_network_are_escaped() -> None:
    """U+202E in a peer's instance name printed the rest of the line (host, port) reversed."""
    assert cli_output.clean("a\u202eb") == "a\\226\\128\\174b"
    assert cli_output.clean("x\u2067y\u200fz") == "x\\226\\129\\167y\\226\\128\\143z"
    assert cli_output.clean("👩\u200d💻") == "👩\u200d💻"  # a joiner inside an emoji is kept


# -- fourteenth session ---------------------------------------------------------------------


class _Bytes(io.BytesIO):
    def close(self) -> None:  # the TextIOWrapper must not close what the test reads
        pass


def run_cli(
    monkeypatch: pytest.MonkeyPatch, argv: Sequence[str], *packets: bytes
) -> tuple[int, str]:
    """``mdnsq ARGV`` in-process against a Querier on a FakeNet that hears ``packets`` 10 ms
    after it starts; (exit status, what it wrote to stdout as UTF-8)."""
    net = FakeNet()

    def querier(args: Any, out: cli_output.Output) -> Querier:
        transport = net.transport()
        q = Querier(transports=[transport], clock=net.clock, wait=net.wait)
        for packet in packets:
            net.later(0.01, packet, transport)
        out.attach(q)
        return q

    monkeypatch.setattr(cli, "_querier", querier)
    raw = _Bytes()
    stream = io.TextIOWrapper(raw, encoding="utf-8")
    status = cli.main(list(argv), stream)
    stream.flush()
    return status, raw.getvalue().decode()


OFFICE = service_records("Office", TYPE, "office.local", 631, "192.0.2.8")
OFFICE_V6 = aaaa("office.local", "2001:db8::8")


class _Full(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_is_one_line_and_not_nothing_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """`> /dev/full`: a traceback, and exit 1, which says "nothing found"."""
    packet = tmp_path / "p.bin"
    packet.write_bytes(bytes(12))
    assert cli.main(["decode", str(packet)], _Full()) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "mdnsq: cannot write the results: No space left on device\n"


class _WriteOnly:
    class buffer:
        @staticmethod
        def read() -> bytes:
            raise OSError(errno.EBADF, "Bad file descriptor")


@pytest.mark.parametrize("stdin", [None, _WriteOnly()])
def test_decode_with_no_readable_stdin_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: Any
) -> None:
    """`mdnsq decode <&-` raised AttributeError, a write-only stdin OSError: tracebacks."""
    monkeypatch.setattr(sys, "stdin", stdin)
    assert cli.main(["decode"], io.StringIO()) == cli.EXIT_USAGE
    assert "standard input" in capsys.readouterr().err


def test_with_stderr_closed_messages_do_not_land_in_the_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """print(file=None) writes to stdout: `2>&-` put error lines into the NDJSON stream."""
    monkeypatch.setattr(sys, "stderr", None)
    out = io.StringIO()
    assert cli.main(["decode", "/nonexistent/p.bin", "--json"], out) == cli.EXIT_USAGE
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["browse", "_a._tcp", "-t", "2", "_b._tcp"], "types", ["_a._tcp", "_b._tcp"]),
        (["resolve", "a.local", "-6", "b.local"], "hosts", ["a.local", "b.local"]),
        (["watch", "_a._tcp", "--json", "_b._tcp"], "types", ["_a._tcp", "_b._tcp"]),
        (["browse", "-4", "_a._tcp", "--json"], "types", ["_a._tcp"]),
    ],
)
def test_arguments_may_follow_options(argv: list[str], field: str, value: list[str]) -> None:
    """argparse refused a list of arguments that goes on after an option."""
    args = cli.parse_arguments(cli.build_parser(), argv)
    assert args.command == argv[0]
    assert getattr(args, field) == value


def test_an_unknown_option_is_still_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.parse_arguments(cli.build_parser(), ["browse", "_a._tcp", "--bogus", "_b._tcp"])
    assert exit.value.code == cli.EXIT_USAGE
    assert "mdnsq browse --help" in capsys.readouterr().err


def test_json_records_hold_their_own_fields_in_one_form() -> None:
    """TXT carried its wire RDATA too, as text or {"base64"} depending on the bytes."""
    record = TXTRecord(name=f"W.{TYPE}", ttl=1, strings=[b"path=/", b"k=" + b"v" * 200])
    fields = cli_output.record_json(record)
    assert "rdata" not in fields and fields["strings"][0] == "path=/"
    for rdata in (b"ab", b"\xff\x00"):
        unknown = UnknownRecord(name="h.local", ttl=1, type=99, rdata=rdata)
        encoded = base64.b64encode(rdata).decode()
        assert cli_output.record_json(unknown)["rdata"] == {"base64": encoded}


def test_browse_lists_an_instance_of_a_type_and_its_subtype_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sub = ptr(SUBTYPE, f"Office.{TYPE}")
    status, out = run_cli(
        monkeypatch, ["browse", TYPE, SUBTYPE, "--json"], response(*OFFICE, OFFICE_V6, sub)
    )
    assert status == cli.EXIT_FOUND
    assert [json.loads(line)["instance"] for line in out.splitlines()] == ["Office"]


@pytest.mark.parametrize(("flag", "shown"), [("-4", ["192.0.2.8"]), ("-6", ["2001:db8::8"])])
def test_ip_version_flags_show_only_that_family(
    monkeypatch: pytest.MonkeyPatch, flag: str, shown: list[str]
) -> None:
    """-4 / -6 chose the socket only: `resolve -4 --parsable` printed an IPv6 link-local
    address (without its scope), as avahi-resolve -4 never does."""
    packet = response(*OFFICE, OFFICE_V6)
    for argv in (
        ["resolve", flag, "office.local", "--parsable"],
        ["browse", flag, TYPE, "--json"],
        ["lookup", flag, f"Office.{TYPE}", "--json"],
    ):
        status, out = run_cli(monkeypatch, argv, packet)
        assert status == cli.EXIT_FOUND, argv
        if argv[0] == "resolve":
            assert [line.split("\t")[1] for line in out.splitlines()] == shown
        else:
            assert [a.split("%")[0] for a in json.loads(out)["addresses"]] == shown, argv


def test_browse_no_resolve_lists_in_a_stable_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The types' answers came in the order their threads ended: any order, run to run."""
    other = "_other._tcp.local"
    records = {
        TYPE: [ptr(TYPE, f"{n}.{TYPE}") for n in ("b", "C", "a")],
        other: [ptr(other, f"x.{other}")],
    }
    monkeypatch.setattr(cli, "_merge", lambda sources: reversed([*_merge_all(sources)]))
    stream = io.StringIO()
    out = cli_output.make_output(stream, json=False, parsable=True)
    cli._browse_names(StandIn(ptrs=records), [TYPE, other], out, cli.Deadline(1.0))  # type: ignore[arg-type]
    assert [line.split(";")[3] for line in stream.getvalue().splitlines()] == ["a", "b", "C", "x"]


def _merge_all(sources: Iterable[Iterable[Any]]) -> Iterator[Any]:
    for source in sources:
        yield from source


def test_query_takes_other_mnemonics_and_refuses_meta_types(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MX was an unknown type; TYPE0 and OPT went out as questions."""
    assert RecordType.parse("mx") == 15 and RecordType.parse("CAA") == 257
    for rtype in ("TYPE0", "OPT", "AXFR", "250"):
        status, out = run_cli(monkeypatch, ["query", "h.local", rtype])
        assert status == cli.EXIT_USAGE and out == ""
    assert "no question asks for type" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--json", "decode", "f"], ["-v", "browse", "_a._tcp", "_b._tcp"]]
)
def test_a_command_option_before_the_command_is_still_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The intermixed re-parse read only the words after the command, and dropped these:
    `mdnsq --json decode F` printed text and exited 0."""
    with pytest.raises(SystemExit) as exit:
        cli.parse_arguments(cli.build_parser(), argv)
    assert exit.value.code == cli.EXIT_USAGE
    assert "unrecognized arguments" in capsys.readouterr().err


def test_txt_keys_that_are_not_utf8_are_json_strings() -> None:
    assert cli_output.txt_json({"k\udcff": b"1", "a": None}) == {"k\\255": "1", "a": None}


# -- seventeenth session ----------------------------------------------------------------------


class _TypesLater:
    """A stand-in Querier on a stopped clock that its calls move on: the type listing finds
    nothing in its first round (its query or the answer lost, as on Wi-Fi), _http._tcp in the
    second, and _ipp._tcp, a device that announced itself late, from the third on."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.rounds: list[tuple[float, float]] = []

    def __enter__(self) -> _TypesLater:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def service_types(self, timeout: float) -> list[str]:
        self.rounds.append((self.clock[0] - 100.0, timeout))
        self.clock[0] += timeout  # it lists until its deadline
        return ["_http._tcp.local", "_ipp._tcp.local"][: len(self.rounds) - 1]

    def browse(self, service_type: str, timeout: float) -> Iterator[ServiceInfo]:
        instance = "Web" if service_type.startswith("_http") else "Printer"
        info = ServiceInfo(
            name=f"{instance}.{service_type}", instance=instance, type=service_type,
            host="h.local", port=80, interface=2,
        )  # fmt: skip
        return iter([info])


def test_browse_all_lists_types_until_its_deadline_and_browses_each_as_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It listed types for its first second only, then browsed what that found: one lost
    query or answer (the retransmission came after that second), or a device announcing
    itself later, and `browse --all -t 5` found nothing and exited 1 after about 1.2 s. Now
    the listing goes on in rounds of 1, 2, 4 s (one query each: the doubling of a continuous
    query), and a type is browsed as soon as a round names it."""
    clock = [100.0]
    found = _TypesLater(clock)
    monkeypatch.setattr(cli, "_querier", lambda args, out: found)
    monkeypatch.setattr(cli, "time", type("T", (), {"monotonic": staticmethod(lambda: clock[0])}))
    raw = _Bytes()
    stream = io.TextIOWrapper(raw, encoding="utf-8")
    assert cli.main(["browse", "--all", "--json", "-t", "5"], stream) == cli.EXIT_FOUND
    stream.flush()
    lines = [json.loads(line) for line in raw.getvalue().decode().splitlines()]
    assert sorted((obj["name"], obj["type"]) for obj in lines) == [  # two threads: any order
        ("Printer._ipp._tcp.local", "_ipp._tcp.local"),
        ("Web._http._tcp.local", "_http._tcp.local"),
    ]
    assert found.rounds == [(0.0, 1.0), (1.0, 2.0), (3.0, 2.0)]  # the last cut at the deadline


def test_browse_all_leaves_half_of_a_short_deadline_to_browse_the_types() -> None:
    # With `-t 1` the first round of listing types took the whole second: no type was
    # browsed, and `mdnsq browse --all -t 1` found nothing where `browse _http._tcp -t 1` did.
    asked: list[float] = []

    class Types:
        def service_types(self, timeout: float) -> list[str]:
            asked.append(timeout)
            return ["_http._tcp.local"]

    deadline = cli.Deadline(1.0)
    first = next(cli._all_types(Types(), deadline))  # type: ignore[arg-type]
    assert first == "_http._tcp.local"
    assert asked[0] <= 0.5 and deadline.left() > 0.4


def test_lookup_of_a_service_that_says_it_is_unavailable_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # It said "nothing found before the deadline; check that the device is on this link",
    # though the device had answered: its SRV record's target is "." (RFC 2782).
    gone = srv(f"Gone.{TYPE}", ".", 0)
    status, out = run_cli(monkeypatch, ["lookup", "Gone", TYPE, "-t", "2"], response(gone))
    assert (status, out) == (cli.EXIT_NOTHING, "")
    err = capsys.readouterr().err
    assert "says it is not available" in err and "check that the device" not in err


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("peerhost", "try 'peerhost.local'"),
        ("Web._http._tcp", "try 'Web._http._tcp.local'"),
        ("foo\\.", "try 'foo\\..local'"),  # one label "foo.": escaped as typed
        ("192.0.2.1", "query '1.2.0.192.in-addr.arpa' PTR"),  # not '192.0.2.1.local'
        ("fe80::1", "query '1.0.0.0"),
    ],
)
def test_a_query_outside_local_hints_at_local(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, hint: str
) -> None:
    # `query` asks for the name as typed (resolve adds .local); its "nothing found" said to
    # check that the device was on this link.
    status, _ = run_cli(monkeypatch, ["query", name, "A", "-t", "0.5"])
    assert status == cli.EXIT_NOTHING
    assert hint in capsys.readouterr().err


def test_browse_with_types_and_all_says_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    # It said "give one or more service types, or --all" when both were given.
    assert cli.main(["browse", "--all", "_http._tcp"]) == cli.EXIT_USAGE
    assert "not both" in capsys.readouterr().err


def test_vv_lines_are_cleaned_like_the_results(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # At -vv every name any host sends reaches stderr: one holding an escape sequence and a
    # newline cleared the screen and forged a line.
    evil = service_records("Evil\x1b[2J\nmdnsq: forged", TYPE, "h.local", 80, "192.0.2.9")
    logger = logging.getLogger("mdnsq")
    handlers, level = list(logger.handlers), logger.level
    try:
        run_cli(monkeypatch, ["lookup", "Other", TYPE, "-t", "1", "-vv"], response(*evil))
    finally:
        logger.handlers[:], logger.level = handlers, level
    err = capsys.readouterr().err
    assert "heard on interface" in err and "\x1b" not in err
    assert not any(line.startswith("mdnsq: forged") for line in err.splitlines())


def test_lookup_says_on_stderr_when_the_service_has_no_address(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The SRV and TXT records answered, the host never did: exit 0 (the service is there)
    with a block and no address line read like a success; stderr now says what is missing.
    (Found in a black-box run against python-zeroconf.)"""
    _, s, t, _ = OFFICE
    status, out = run_cli(monkeypatch, ["lookup", "Office", TYPE, "-t", "3"], response(s, t))
    assert status == cli.EXIT_FOUND and "office.local" in out
    assert capsys.readouterr().err == (
        "mdnsq: Office._test._tcp.local: no address heard for office.local\n"
    )
    status, out = run_cli(
        monkeypatch, ["lookup", "Office", TYPE, "-t", "3", "-6"], response(*OFFICE[1:])
    )
    assert status == cli.EXIT_FOUND
    assert "no IPv6 address heard for office.local" in capsys.readouterr().err
    status, out = run_cli(monkeypatch, ["lookup", "Office", TYPE, "-t", "3"], response(*OFFICE))
    assert status == cli.EXIT_FOUND and capsys.readouterr().err == ""


def test_lookup_of_a_full_name_with_a_type_hints_at_the_instance_label(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With TYPE, INSTANCE is the raw label, so a full name given with its type was asked
    as one label nobody publishes, and the hint said to check the link."""
    status, _ = run_cli(monkeypatch, ["lookup", "svc one._c1._tcp.local", "_c1._tcp", "-t", "1"])
    assert status == cli.EXIT_NOTHING
    err = capsys.readouterr().err
    assert "try 'svc one' _c1._tcp, or the full name without a TYPE" in err
