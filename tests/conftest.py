"""Fixtures shared by the whole suite.

Tests that open sockets take ``private_netns`` (directly or through ``lab``); it fails, never
skips, when the run is not inside tests/netns-run's private namespace.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import mdnsq.querier
from mdnsq import Message, parse_message
from tests import netlab

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci")

# A run started in the background by a non-interactive shell (`nohup make test &`, some CI
# runners) ignores SIGINT, and every child would inherit that: a CLI or peer under test would
# never see the Ctrl-C the tests send it, and three tests failed so. A handler here (not an
# ignore) is reset to the default in each child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def private_netns() -> None:
    netlab.require_private_netns()


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every parse a Querier does (one made while the fixture is active)."""
    counter = [0]

    def counting(data: Any) -> Message:
        counter[0] += 1
        return parse_message(data)

    monkeypatch.setattr(mdnsq.querier, "parse_message", counting)
    return counter


@pytest.fixture
def lab(private_netns: None) -> Iterator[netlab.Lab]:
    the_lab = netlab.Lab()
    try:
        yield the_lab
    finally:
        the_lab.close()


# The fake network the Querier tests run on; see tests/fakes.py.
from tests.fakes import net, no_first_delay  # noqa: E402

# Interop peers (python-zeroconf, Avahi) in lab hosts; see tests/peers.py.
from tests.peers import (  # noqa: E402
    avahi_browser,
    avahi_peer,
    make_avahi_peer,
    make_zeroconf_peer,
    peer_lab,
    zeroconf_peer,
)

__all__ = [
    "avahi_browser",
    "avahi_peer",
    "make_avahi_peer",
    "make_zeroconf_peer",
    "net",
    "no_first_delay",
    "peer_lab",
    "zeroconf_peer",
]
