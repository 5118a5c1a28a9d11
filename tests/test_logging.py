"""The library logs under `mdnsq` and prints nothing unless the program configured logging."""

from __future__ import annotations

import subprocess
import sys

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
