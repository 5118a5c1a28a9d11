# Argument checks of the one-call functions and the Querier: a caller's mistake is caught before
# any socket opens (which joins the group), and is the caller's error, not the network's.
from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import pytest

import mdnsq
from mdnsq import InvalidArgument, Querier, RecordType, cli
from mdnsq.names import escape_label
from mdnsq.service import instance_name
from tests.fakes import FakeNet, response, service_records


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to open the Querier's sockets, refused (no socket opens in these tests)."""
    attempts: list[object] = []

    def refuse(*args: object) -> list[object]:
        attempts.append(args)
        raise mdnsq.NetworkError("no sockets in this test")

    monkeypatch.setattr(Querier, "_open", staticmethod(refuse))
    return attempts


BAD_CALLS: list[tuple[str, Callable[[], object], type[Exception]]] = [
    ("resolve_host: empty name", lambda: mdnsq.resolve_host(""), InvalidArgument),
    ("resolve_host: NaN", lambda: mdnsq.resolve_host("p.local", math.nan), InvalidArgument),
    ("browse: bad type", lambda: mdnsq.browse("_http._tpc"), InvalidArgument),
    ("browse: str timeout", lambda: mdnsq.browse("_http._tcp", "3"), TypeError),  # type: ignore[arg-type]
    ("resolve_service: no name", lambda: mdnsq.resolve_service(), TypeError),
    ("resolve_service: root", lambda: mdnsq.resolve_service("."), InvalidArgument),
    (
        "resolve_service: bad type",
        lambda: mdnsq.resolve_service(instance="Printer", type="http"),
        InvalidArgument,
    ),
    ("query: bad type", lambda: mdnsq.query("x.local", "AAAAX"), InvalidArgument),
    ("query: bool type", lambda: mdnsq.query("x.local", True), TypeError),
    ("query: meta type", lambda: mdnsq.query("x.local", "AXFR"), InvalidArgument),
    ("service_types: NaN", lambda: mdnsq.service_types(math.nan), InvalidArgument),
    ("ip_version", lambda: mdnsq.resolve_host("p.local", ip_version="v5"), InvalidArgument),
    ("no interface", lambda: mdnsq.resolve_host("p.local", interfaces=[]), InvalidArgument),
    ("empty interface", lambda: mdnsq.browse("_http._tcp", interfaces=""), InvalidArgument),
]


@pytest.mark.parametrize(
    ("call", "error"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_one_call_functions_check_their_arguments_before_opening_sockets(
    opened: list[object], call: Callable[[], object], error: type[Exception]
) -> None:
    # Before: sockets first, then the check; with no usable interface a typo in the service
    # type was a NetworkError, and the CLI exited 3 ("check that an interface is up").
    with pytest.raises(error):
        call()
    assert opened == []


def test_good_arguments_do_reach_the_sockets(opened: list[object]) -> None:
    # The guard of the test above: the fixture does see an attempt.
    with pytest.raises(mdnsq.NetworkError):
        mdnsq.resolve_host("p.local", 0.5)
    assert len(opened) == 1


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"cache_size": math.nan}, TypeError),  # never evicted: 1,000 records kept of 16
        ({"cache_size": "x"}, TypeError),
        ({"cache_size": 0}, InvalidArgument),
        ({"settle": "x"}, TypeError),  # accepted, then a browse failed adding it to a float
        ({"settle": math.nan}, InvalidArgument),
        ({"settle": -1.0}, InvalidArgument),
        ({"settle": math.inf}, InvalidArgument),
        ({"ip_version": "v5"}, InvalidArgument),
    ],
)
def test_querier_settings_are_checked_before_sockets_open(
    opened: list[object], settings: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Querier(**settings)
    assert opened == []


@pytest.mark.parametrize(("name", "rtype"), [("", "A"), (".", "SRV"), ("x.local", True)])
def test_send_query_asks_nothing_that_query_refuses(net: FakeNet, name: str, rtype: Any) -> None:
    # send_query() skipped query()'s check: "" and "." sent a question for the root, and
    # True an A question.
    q = Querier(transports=[net.transport()], clock=net.clock, wait=net.wait)
    with pytest.raises((InvalidArgument, TypeError)):
        q.send_query(name, rtype)
    with pytest.raises((InvalidArgument, TypeError)):
        q.query(name, rtype, timeout=0)
    assert net.transports[0].sent == []


@pytest.mark.parametrize(
    "argv",
    [
        ["browse", "_http._tpc"],
        ["watch", "_http._tcp", "bad type"],
        ["resolve", "good.local", ""],
        ["lookup", "Printer", "http"],
        ["query", "x.local", "AXFR"],
        ["query", ".", "A"],
        ["types", "--interface", ""],
    ],
)
def test_the_command_line_s_typos_are_usage_errors_with_nothing_opened(
    opened: list[object], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Exit 3 before ("network error ... check that an interface with multicast is up") on a
    # machine without multicast, and the group joined first everywhere.
    assert cli.main(argv) == cli.EXIT_USAGE, capsys.readouterr().err
    assert opened == []


def test_resolve_help_names_the_format_its_parsable_lines_have(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Its -p said 'avahi-browse -p -r' while its own epilog said avahi-resolve (which it is).
    with pytest.raises(SystemExit):
        cli.main(["resolve", "--help"])
    text = capsys.readouterr().out
    assert "format of 'avahi-resolve'" in text and "avahi-browse" not in text


@pytest.mark.parametrize(
    "typed",
    [
        "Dr. Who's Printer._ipp._tcp",
        "Dr. Who's Printer._ipp._tcp.local.",
        "Dr\\. Who's Printer._ipp._tcp",
    ],
)
def test_resolve_service_reads_a_typed_full_name_as_the_cli_does(net: FakeNet, typed: str) -> None:
    """An instance is one label (RFC 6763 §4.3): unescaped dots before the service type are
    part of it, as `mdnsq lookup` reads them. Read as labels, the name was nobody's and the
    call waited out its timeout for None."""
    published = instance_name("Dr. Who's Printer", "_ipp._tcp")
    label = escape_label("Dr. Who's Printer")
    records = service_records(label, "_ipp._tcp.local", "who.local", 631, "192.0.2.9")
    assert records[1].name == published  # the SRV record
    net.responders.append(lambda m, n, t: n.later(0.02, response(*records[1:]), t))
    q = Querier(transports=[net.transport()], clock=net.clock, wait=net.wait)
    info = q.resolve_service(typed, timeout=2)
    assert info is not None and info.instance == "Dr. Who's Printer" and info.port == 631


@pytest.mark.parametrize(
    "name",
    [
        "Dr. Who._ipp._tcp.example.com",  # another domain: as given (was InvalidArgument)
        "A.B._ipp._tcp.lan",
        f"{'a' * 40}.{'b' * 40}._http._tcp",  # 81 bytes as one label: as given
        "Foo._printer._sub._ipp._tcp",  # a subtype's labels are no instance's
    ],
)
def test_a_full_name_that_is_no_typed_instance_is_asked_as_given(name: str) -> None:
    from mdnsq.arguments import service_args
    from mdnsq.service import instance_with_domain

    assert service_args(name, 1, None, None)[0] == instance_with_domain(name)


@pytest.mark.parametrize(
    "name",
    [
        "Dr. Who._ipp._tcp",
        "Dr\\. Who._ipp._tcp.local",
        "a.b.c._http._udp",
        "X._printer._sub._http._tcp",
        "trailing dot.._http._tcp",
        ".leading dot._http._tcp.local.",
    ],
)
def test_the_cli_s_lookup_reads_a_full_name_as_the_library_does(name: str) -> None:
    # Two splitters gave two readings: the CLI asked a subtype's labels as an instance.
    from mdnsq.arguments import service_args
    from mdnsq.service import typed_instance_name

    try:
        target = cli._lookup_target(name, None)
    except cli._UsageError:
        assert typed_instance_name(name) == service_args(name, 1, None, None)[0]
        assert "_sub" in name  # the only one here that names no instance
        return
    assert service_args(None, 1, **target)[0] == typed_instance_name(name)


@pytest.mark.parametrize(
    ("typed", "instance"),
    [
        ("trailing dot.._t._tcp", "trailing dot."),
        (".leading dot._t._tcp", ".leading dot"),
        (".._t._tcp.local", "."),
        ("a..b\\.c._t._tcp", "a..b.c"),
    ],
)
def test_dots_around_and_doubled_in_a_typed_instance_belong_to_it(
    typed: str, instance: str
) -> None:
    """Avahi publishes such instances, and `browse` lists them; typed as a person reads them,
    they raised InvalidArgument ("empty label") and the CLI exited 2, though unescaped dots
    before the service type belong to the one-label instance."""
    from mdnsq.arguments import service_args
    from mdnsq.service import instance_name

    assert service_args(typed, 1, None, None)[0] == instance_name(instance, "_t._tcp")


def test_an_empty_instance_before_a_type_is_still_refused() -> None:
    from mdnsq.arguments import service_args

    with pytest.raises(InvalidArgument):
        service_args("._t._tcp", 1, None, None)


@pytest.mark.parametrize("function", [Querier.query, mdnsq.query])
def test_query_s_overloads_name_the_record_class_of_each_literal_type(function: Any) -> None:
    """`q.query(name, "AAAA")` is typed list[AAAARecord], so a script reads `.address`
    without isinstance; each overload must name the class the parser builds for its type."""
    import typing

    import mdnsq.records

    overloads = typing.get_overloads(function)
    assert len(overloads) == 9  # eight decoded types, and any other type
    checked = set()
    for overload in overloads[:-1]:
        hints = typing.get_type_hints(overload, vars(sys.modules[function.__module__]))
        literals = typing.get_args(hints["type"])
        (record_class,) = typing.get_args(hints["return"])
        assert issubclass(record_class, mdnsq.records.Record)
        text, member = literals
        assert RecordType.parse(text) == member == record_class.type
        checked.add(member)
    assert len(checked) == 8
