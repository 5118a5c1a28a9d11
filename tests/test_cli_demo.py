"""`make demo` end to end: demo/run.py in a namespace of its own, as the Makefile runs it.

The demo makes its own peer namespace and addresses, so it gets a fresh tests/netns-run
(nested in the test namespace) and cannot collide with a lab another test left behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_types_browse_and_resolve(private_netns: None) -> None:
    done = subprocess.run(
        [str(REPO / "tests" / "netns-run"), sys.executable, str(REPO / "demo" / "run.py")],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    sections = out.split("$ mdnsq ")[1:]
    assert [s.splitlines()[0] for s in sections] == [
        "types",
        "browse --all",
        "resolve demo-host.local",
    ]
    types, browse, resolve = sections
    assert types.splitlines()[1:4] == ["_http._tcp.local", "_ipp._tcp.local", "_ssh._tcp.local"]
    assert "Café Printer – 2nd floor  (_ipp._tcp.local on demo0)" in browse
    assert "Demo Web Server  (_http._tcp.local on demo0)" in browse
    assert "demo-host  (_ssh._tcp.local on demo0)" in browse
    assert resolve.splitlines()[1].startswith("demo-host.local  192.0.2.1  fe80::")
    assert all("(exit status 0)" in s for s in sections)
    assert done.stderr == ""
