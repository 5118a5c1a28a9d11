"""The `mdnsq` command as a subprocess in the test namespace, against python-zeroconf and Avahi.

Every output format is checked field by field against what the peer publishes. The runs that
ask the same question are started together: a python-zeroconf peer drops a packet identical to
one it saw in the last second, but its multicast answer reaches every querier on the link.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mdnsq import NetworkError, cli
from mdnsq.cli_output import parsable_label, parsable_txt
from tests import peers
from tests.peers import (
    AvahiBrowser,
    AvahiPeer,
    Service,
    ZeroconfPeer,
    avahi_unescape,
)

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "cli"
# Process start-up on a busy 2-core machine, on top of a command's own --timeout.
STARTUP_SLACK = 2.0


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "LC_ALL": "C.UTF-8"}


def _argv(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "mdnsq", *args]


class Run:
    """One finished command: exit status, output, and how long it took."""

    def __init__(self, args: Sequence[str], status: int, out: str, err: str, elapsed: float):
        self.args, self.status, self.out, self.err, self.elapsed = args, status, out, err, elapsed

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


def mdnsq(*args: str, stdin: bytes | None = None) -> Run:
    (run,) = mdnsq_together([args], stdin=stdin)
    return run


def mdnsq_together(commands: Sequence[Sequence[str]], stdin: bytes | None = None) -> list[Run]:
    """Start the commands at once and wait for all of them."""
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            _argv(args),
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
        for args in commands
    ]
    runs = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(stdin, timeout=30)
        elapsed = time.monotonic() - start
        runs.append(Run(args, proc.returncode, out.decode(), err.decode(), elapsed))
    return runs


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The next stdout line of a running command, or fail after ``timeout``."""
    assert proc.stdout is not None
    return peers.read_line(proc.stdout.fileno(), time.monotonic() + timeout, "mdnsq").decode()


# --- browse, in the three formats ----------------------------------------------------------------


@pytest.fixture(scope="module")
def browsed(zeroconf_peer: ZeroconfPeer) -> dict[str, Run]:
    formats = {"human": [], "json": ["--json"], "parsable": ["--parsable"]}
    runs = mdnsq_together([["browse", "_ipp._tcp", "-t", "2", *opts] for opts in formats.values()])
    return dict(zip(formats, runs, strict=True))


def test_browse_human(browsed: dict[str, Run], zeroconf_peer: ZeroconfPeer) -> None:
    run, printer = browsed["human"], zeroconf_peer.sample.printer
    assert run.status == 0, run.err
    lines = run.lines
    head = lines.index(f"{printer.instance}  (_ipp._tcp.local on br0)")
    block = {line.split()[0]: line.split(None, 1)[1] for line in lines[head + 1 : head + 4]}
    assert block["host"] == f"{zeroconf_peer.host_name}:631"
    assert block["address"].split() == [f"{zeroconf_peer.ipv4}", f"{zeroconf_peer.ipv6}%br0"]
    txt = block["txt"]
    assert txt.startswith('txtvers=1  rp=ipp/print  note="Büro 3 – Café, 2. Stock"  ')
    assert "  duplex  " in txt  # a key without '='
    assert run.err == ""


def test_browse_json(browsed: dict[str, Run], zeroconf_peer: ZeroconfPeer) -> None:
    run, printer = browsed["json"], zeroconf_peer.sample.printer
    assert run.status == 0, run.err
    (info,) = [obj for obj in run.json() if obj["instance"] == printer.instance]
    assert info["name"] == printer.name
    assert info["type"] == "_ipp._tcp.local"
    assert info["host"] == zeroconf_peer.host_name
    assert (info["port"], info["priority"], info["weight"]) == (631, 0, 0)
    v6 = [a for a in info["addresses"] if ":" in a]
    assert str(zeroconf_peer.ipv4) in info["addresses"]
    assert [a.split("%")[0] for a in v6] == [str(zeroconf_peer.ipv6)]
    assert info["txt"] == {
        k: (None if v is None else v.decode()) for k, v in printer.txt_properties.items()
    }
    assert info["interface"] == "br0"
    assert 0 < info["ttl"] <= printer.other_ttl


def test_browse_parsable(browsed: dict[str, Run], zeroconf_peer: ZeroconfPeer) -> None:
    run, printer = browsed["parsable"], zeroconf_peer.sample.printer
    assert run.status == 0, run.err
    name = parsable_label(printer.instance)
    mine = [line.split(";") for line in run.lines if line.split(";")[3] == name]
    assert ["+", "br0", "IPv4", name, "_ipp._tcp", "local"] in mine
    resolved = {fields[7]: fields for fields in mine if fields[0] == "="}
    assert set(resolved) == {str(zeroconf_peer.ipv4), str(zeroconf_peer.ipv6)}
    for address, fields in resolved.items():
        protocol = "IPv6" if ":" in address else "IPv4"
        assert fields[:9] == [
            "=",
            "br0",
            protocol,
            name,
            "_ipp._tcp",
            "local",
            zeroconf_peer.host_name,
            address,
            "631",
        ]
        strings = [(k if v is None else f"{k}={v}").encode() for k, v in printer.txt.items()]
        # TXT last to first, the way avahi-browse lists it; ';' inside TXT is not escaped.
        assert ";".join(fields[9:]) == " ".join(parsable_txt(s) for s in reversed(strings))


def test_browse_no_resolve(zeroconf_peer: ZeroconfPeer) -> None:
    web = zeroconf_peer.sample.web
    args = ["browse", "_http._tcp", "--no-resolve", "-t", "2", "--interface", "br0"]
    as_json, parsable = mdnsq_together([[*args, "--json"], [*args, "--parsable"]])
    assert as_json.status == 0, as_json.err
    assert {"instance": web.instance, "type": "_http._tcp.local", "interface": "br0"} in (
        as_json.json()
    )
    assert f"+;br0;IPv4;{parsable_label(web.instance)};_http._tcp;local" in parsable.lines
    assert not any(line.startswith("=") for line in parsable.lines)


def test_types(zeroconf_peer: ZeroconfPeer) -> None:
    human, as_json = mdnsq_together([["types", "-t", "2"], ["types", "-t", "2", "--json"]])
    expected = {"_ipp._tcp.local", "_http._tcp.local", "_ssh._tcp.local"}
    assert human.status == 0 and expected <= set(human.lines)
    assert as_json.status == 0 and expected <= {obj["type"] for obj in as_json.json()}


# --- --parsable against avahi-browse itself -------------------------------------------------------


def test_parsable_matches_avahi_browse(
    zeroconf_peer: ZeroconfPeer, avahi_peer: AvahiPeer, avahi_browser: AvahiBrowser
) -> None:
    done = avahi_browser.browse("-k", "_ipp._tcp")
    assert done.returncode == 0, done.stderr
    theirs = done.stdout.splitlines()
    mine = mdnsq("browse", "_ipp._tcp", "--parsable", "-t", "2")
    assert mine.status == 0, mine.err

    def lines(output: list[str], instance: str) -> tuple[set[str], set[str]]:
        """('+' lines, '=' lines without protocol and address) and the addresses shown.

        The interface column differs by construction (eth0 in the browser's host, br0 here).
        Avahi prints one '=' line per protocol it heard the service on, with whichever address
        it resolved first (python-zeroconf's A record over IPv6 puts an IPv4 address on its
        IPv6 line); mdnsq prints one per address. Everything else must be equal.
        """
        rows = [[avahi_unescape(f) for f in line.split(";")] for line in output]
        rows = [r for r in rows if r[3] == instance]
        found = {";".join([r[0], r[2], *r[3:]]) for r in rows if r[0] == "+"}
        resolved = {";".join([*r[3:7], *r[8:]]) for r in rows if r[0] == "="}
        return found | resolved, {r[7] for r in rows if r[0] == "="}

    for peer in (zeroconf_peer, avahi_peer):
        name = peer.sample.printer.instance  # with '.', ' ', '(' and UTF-8
        expected, their_addresses = lines(theirs, name)
        assert len(expected) == 3, theirs  # '+' over IPv4 and IPv6, the same '=' fields
        got, addresses = lines(mine.lines, name)
        assert got == expected
        assert their_addresses <= addresses == {str(a) for a in peer.addresses}


# --- resolve, lookup, query -----------------------------------------------------------------------


def test_resolve(zeroconf_peer: ZeroconfPeer) -> None:
    host = zeroconf_peer.host_name
    # A deadline far beyond four interpreters starting at once on a busy machine, so that
    # returning once the addresses are in and waiting the deadline out stay far apart.
    human, as_json, parsable, one_shot = mdnsq_together(
        [
            ["resolve", host, "-t", "10"],
            ["resolve", host, "--json", "-t", "10"],
            ["resolve", host, "--parsable", "-t", "10"],
            ["resolve", host, "--one-shot", "-t", "10"],  # legacy unicast from an ephemeral port
        ]
    )
    v4, v6 = str(zeroconf_peer.ipv4), str(zeroconf_peer.ipv6)
    assert human.status == 0, human.err
    assert human.lines == [f"{host}  {v4}  {v6}%br0"]
    (obj,) = as_json.json()
    assert obj["name"] == host
    assert [a.split("%")[0] for a in obj["addresses"]] == [v4, v6]
    assert parsable.lines == [f"{host}\t{v4}", f"{host}\t{v6}"]
    assert one_shot.status == 0 and one_shot.lines == human.lines
    # It returns once the addresses are in (it does not wait out its 10 s deadline).
    assert human.elapsed < 6.0, human.elapsed


def test_lookup_by_full_name_and_by_instance_and_type(avahi_peer: AvahiPeer) -> None:
    printer = avahi_peer.sample.printer  # Avahi publishes "Dr. Who’s ..." as one label
    assert "." in printer.instance
    typed = f"{printer.instance}._ipp._tcp.local"  # dots unescaped, as a person types it
    by_name, by_parts = mdnsq_together(
        [["lookup", typed, "--json"], ["lookup", printer.instance, "_ipp._tcp", "--json"]]
    )
    for run in (by_name, by_parts):
        assert run.status == 0, run.err
        (info,) = run.json()
        assert info["instance"] == printer.instance
        assert info["name"] == printer.name  # the dot escaped in the full name
        assert info["host"] == avahi_peer.host_name and info["port"] == 631
        assert info["txt"]["note"] == printer.txt["note"]


def test_lookup_parsable_keeps_utf8_and_escapes_the_dot(avahi_peer: AvahiPeer) -> None:
    printer = avahi_peer.sample.printer
    run = mdnsq("lookup", printer.instance, "_ipp._tcp", "--parsable", "-4")
    assert run.status == 0, run.err
    name = parsable_label(printer.instance)
    assert name.startswith("Dr\\. Who’s Café")  # UTF-8 as published, the dot escaped
    assert run.lines[0] == f"+;br0;IPv4;{name};_ipp._tcp;local"
    assert run.lines[1].startswith(f"=;br0;IPv4;{name};_ipp._tcp;local;{avahi_peer.host_name};")


def test_query(zeroconf_peer: ZeroconfPeer) -> None:
    printer = zeroconf_peer.sample.printer
    as_json, human = mdnsq_together(
        [["query", printer.name, "SRV", "--json"], ["query", printer.name, "srv"]]
    )
    assert as_json.status == 0, as_json.err
    (srv,) = as_json.json()
    assert srv == {
        "name": printer.name,
        "type": "SRV",
        "rclass": 1,
        "ttl": srv["ttl"],
        "cache_flush": True,
        "priority": 0,
        "weight": 0,
        "port": 631,
        "target": zeroconf_peer.host_name,
    }
    assert 0 < srv["ttl"] <= printer.host_ttl
    (line,) = human.lines
    assert line.startswith(f"{printer.name}.  ")
    assert line.endswith(f"  IN  SRV  0 0 631 {zeroconf_peer.host_name}.  ; cache-flush")


# --- deadlines, exit statuses, Ctrl-C -------------------------------------------------------------


def test_nothing_found_exits_1_at_the_deadline(private_netns: None) -> None:
    run = mdnsq("browse", "_nothing-here._tcp", "--timeout", "1")
    assert run.status == 1
    assert run.out == ""
    assert run.err.count("\n") == 1 and "nothing found before the deadline (1 s)" in run.err
    assert 1.0 <= run.elapsed < 1.0 + STARTUP_SLACK


def test_browse_all_keeps_its_deadline(zeroconf_peer: ZeroconfPeer) -> None:
    run = mdnsq("browse", "--all", "--json", "--timeout", "2.5")
    assert run.status == 0, run.err
    assert {obj["type"] for obj in run.json()} >= {"_ipp._tcp.local", "_http._tcp.local"}
    assert run.elapsed < 2.5 + STARTUP_SLACK
    assert run.err == ""  # in particular, the watchdog never had to step in


def test_network_error_exits_3(private_netns: None) -> None:
    run = mdnsq("types", "--interface", "nosuch0")
    assert run.status == 3
    assert run.err.count("\n") == 1
    assert run.err.startswith("mdnsq: network error: ") and "nosuch0" in run.err
    # The interface was named: the hint lists those that would do, not "choose one with
    # --interface NAME" again.
    listed = run.err.rstrip().partition("interfaces that would do here: ")[2]
    assert listed == cli._usable_interfaces("any")  # what the default selection takes here
    # With none named, it says to choose one.
    assert cli._network_hint(NetworkError("no interface qualifies")).endswith("--interface NAME")


def test_port_held_exclusively_suggests_one_shot(private_netns: None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("0.0.0.0", 5353))  # no SO_REUSEADDR: a program that does not share
        run = mdnsq("types", "-4", "--timeout", "1")
    assert run.status == 3
    assert run.err.count("\n") == 1 and run.err.rstrip().endswith("try --one-shot")


def test_usage_error_exits_2(private_netns: None) -> None:
    run = mdnsq("browse")
    assert run.status == 2 and run.out == ""
    assert (
        run.err == "mdnsq: give one or more service types, or --all (see 'mdnsq browse --help')\n"
    )


def test_ctrl_c_exits_130_promptly_without_traceback(zeroconf_peer: ZeroconfPeer) -> None:
    proc = subprocess.Popen(
        _argv(["watch", "_http._tcp", "--json"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        event = json.loads(read_line(proc, 10))  # running and answered: now interrupt it
        assert event["kind"] == "added"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        status = proc.wait(5)
        waited = time.monotonic() - sent
    finally:
        proc.kill()
        proc.wait()
    assert status == 130
    assert waited < 2.0
    assert proc.stderr is not None
    assert b"Traceback" not in proc.stderr.read()


def test_watch_reports_added_and_removed(make_avahi_peer: Any) -> None:
    # Avahi, not python-zeroconf: a zeroconf service withdrawn while its announcements are still
    # going out is announced again by the next one (seen with 0.154), so "removed" never comes.
    peer = make_avahi_peer()
    service = Service("watch me ünïcode", "_watchtest._tcp", 4321, txt={"v": "1"})
    args = ["watch", "_watchtest._tcp", "--timeout", "20"]
    as_json, parsable = (
        subprocess.Popen(
            _argv([*args, *opts]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
        )
        for opts in (["--json"], ["--parsable"])
    )
    name = parsable_label(service.instance)
    try:
        peer.add(service)
        added = json.loads(read_line(as_json, 10))
        assert added["kind"] == "added"
        assert added["info"]["instance"] == service.instance
        assert added["info"]["port"] == 4321 and added["info"]["txt"] == {"v": "1"}
        first = read_line(parsable, 10).rstrip("\n").split(";")
        assert first[0] == "+" and first[1:2] + first[3:] == [
            "br0",
            name,
            "_watchtest._tcp",
            "local",
        ]
        peer.remove(service)  # goodbye packets
        while (event := json.loads(read_line(as_json, 10)))["kind"] == "updated":
            pass  # e.g. the second address arrived after "added"
        assert event["kind"] == "removed"
        assert event["info"]["name"] == service.name
        lines = []
        while not (line := read_line(parsable, 10)).startswith("-"):
            lines.append(line.rstrip("\n").split(";"))
        resolved = [fields for fields in lines if fields[0] == "="]
        assert resolved and all(
            fields[1:]
            == [
                "br0",
                fields[2],
                name,
                "_watchtest._tcp",
                "local",
                peer.host_name,
                fields[7],
                "4321",
                '"v=1"',
            ]
            for fields in resolved
        )
        assert line.split(";")[3] == name
        for proc in (as_json, parsable):
            proc.send_signal(signal.SIGINT)
            assert proc.wait(5) == 130
    finally:
        for proc in (as_json, parsable):
            proc.kill()
            proc.wait()


# --- decode ---------------------------------------------------------------------------------


def test_decode_hex_on_stdin(private_netns: None) -> None:
    packet = (DATA / "jmdns" / "a_record_before_srv.bin").read_bytes()
    run = mdnsq("decode", stdin=packet.hex().encode() + b"\n")
    assert run.status == 0, run.err
    assert ";; flags: qr aa; QUERY: 0, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 8" in run.lines
    assert any(" A     192.168.88.236" in line for line in run.lines)


def test_decode_garbage_on_stdin(private_netns: None) -> None:
    run = mdnsq("decode", stdin=bytes(range(5)))
    assert run.status == 1 and run.out == ""
    assert run.err.startswith("mdnsq: malformed packet: ") and "offset" in run.err
    assert run.err.count("\n") == 1
