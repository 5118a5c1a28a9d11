"""The library logs under `mdnsq` and prints nothing unless the program configured logging."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from tests.fakes import FakeNet, a, fake_querier, response

WARN = "import logging; logging.getLogger('mdnsq.transport').warning('send to ff02::fb failed')"


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stderr


def test_warnings_are_silent_in_a_script_that_never_configured_logging() -> None:
    assert run(f"import mdnsq; {WARN}") == ""


def test_warnings_reach_a_script_that_configured_logging() -> None:
    stderr = run(f"import logging; logging.basicConfig(); import mdnsq; {WARN}")
    assert stderr == "WARNING:mdnsq.transport:send to ff02::fb failed\n"


def test_debug_lines_say_what_was_asked_and_heard(
    net: FakeNet, caplog: pytest.LogCaptureFixture
) -> None:
    # The CLI's -vv (and its "nothing found" hint) promised packet-level detail; the library
    # logged only unusual events, so a failed lookup showed nothing at all.
    net.responders.append(
        lambda message, n, t: n.later(0.02, response(a("p.local", "192.0.2.5")), t)
    )
    q = fake_querier(net)
    with caplog.at_level(logging.DEBUG, logger="mdnsq"):
        assert q.resolve_host("p.local", timeout=2)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("asking p.local A, p.local AAAA on interface 2") for line in lines)
    assert "heard on interface 2: p.local A" in lines
