"""Found in the thirteenth session's review of the command line: each test fails on the code
before its fix. No network: a stand-in Querier hands the CLI's functions their answers."""

from __future__ import annotations

import dataclasses
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest

from mdnsq import PTRRecord, RecordType, cli, cli_output
from mdnsq.service import ServiceEvent, ServiceInfo

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
        assert [line.split(";")[3] for line in lines] == expected * 2
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
