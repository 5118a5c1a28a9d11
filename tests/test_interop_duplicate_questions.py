"""Duplicate question suppression (RFC 6762 §7.3) on a real link, with other queriers asking.

The rules are tested exactly on the fake network (tests/test_querier.py); here: another mdnsq
querier in a lab host, watching the same type 0.3 s behind ours, so it sees our question shortly
before its own is due (fewer questions go on the wire, both still see the service); and a
python-zeroconf ServiceBrowser asking alongside (its QM questions are noticed, and the watch still
works).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mdnsq import Querier
from tests import netlab
from tests.peers import LabProcess, PeerLab, ZeroconfPeer

ROOT = Path(__file__).resolve().parents[1]
WATCH = 8.0  # our queries at 0, 1, 3 and 7 s

pytestmark = pytest.mark.netns

OTHER_MDNSQ = r"""
import json, sys, time
import mdnsq
q = mdnsq.Querier(["eth0"], "v4")
print(json.dumps({"event": "ready"}), flush=True)
sys.stdin.readline()
time.sleep(float(sys.argv[1]))  # the scenario: this querier's schedule runs 0.3 s behind
seen = [event.info.name for event in q.watch("_http._tcp", timeout=float(sys.argv[2]))]
print(json.dumps({"event": "done", "seen": seen, "stats": q.stats()}), flush=True)
q.close()
"""

ZEROCONF_BROWSER = r"""
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, Zeroconf
zc = Zeroconf(interfaces=[sys.argv[1]], ip_version=IPVersion.V4Only)
seen = []
class Listener:
    def add_service(self, zc, type_, name): seen.append(name)
    def remove_service(self, zc, type_, name): pass
    def update_service(self, zc, type_, name): pass
browser = ServiceBrowser(zc, "_http._tcp.local.", Listener())
print(json.dumps({"event": "ready"}), flush=True)
sys.stdin.readline()
print(json.dumps({"event": "done", "seen": seen}), flush=True)
zc.close()
"""


@pytest.fixture
def other_host(peer_lab: PeerLab) -> Iterator[tuple[str, int]]:
    host, n = peer_lab.new_host()
    yield host, n
    peer_lab.remove_host(host)


def start(peer_lab: PeerLab, host: str, code: str, *args: str) -> LabProcess:
    """Run ``code`` in lab host ``host``; returns once it says it is ready."""
    argv = [sys.executable, "-c", code, *args]
    proc = peer_lab.popen(host, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    return LabProcess(proc, "lab process", first="ready")


def test_two_mdnsq_queriers_watching_one_type_share_their_questions(
    peer_lab: PeerLab, zeroconf_peer: ZeroconfPeer, other_host: tuple[str, int]
) -> None:
    web = zeroconf_peer.sample.web
    other = start(peer_lab, other_host[0], OTHER_MDNSQ, "0.3", str(WATCH))
    try:
        with Querier([netlab.BRIDGE], "v4") as q:
            other.tell("go")
            seen = [event.info.name for event in q.watch("_http._tcp", timeout=WATCH)]
            ours = q.stats()
        line = other.line(30)
    finally:
        other.stop()
    theirs = line["stats"]
    figures = {
        k: (ours.get(k, 0), theirs.get(k, 0))
        for k in ("questions_sent", "questions_suppressed_by_peers", "peer_questions_seen")
    }
    print(f"\nDUPLICATE QUESTIONS (ours, theirs): {figures}")
    assert web.name in seen and web.name in line["seen"]
    # Alone, each would send its PTR question 4 times in 8 s (0, 1, 3, 7, after a random
    # 20-120 ms start): 8 on the wire. Here about 4: the other querier hears each of ours
    # 0.2-0.4 s before its own is due and skips its own. (Before the random start, the other
    # sent its first question before reading ours, and the two took turns: 5.)
    sent = ours.get("questions_sent", 0) + theirs.get("questions_sent", 0)
    skipped = sum(side.get("questions_suppressed_by_peers", 0) for side in (ours, theirs))
    assert sent <= 6 and skipped >= 2, figures


def test_a_zeroconf_browser_asking_alongside_is_noticed_and_the_watch_still_works(
    peer_lab: PeerLab, zeroconf_peer: ZeroconfPeer, other_host: tuple[str, int]
) -> None:
    web = zeroconf_peer.sample.web
    host, n = other_host
    browser = start(peer_lab, host, ZEROCONF_BROWSER, f"192.0.2.{n}")
    try:
        with Querier([netlab.BRIDGE], "v4") as q:
            seen = [event.info.name for event in q.watch("_http._tcp", timeout=WATCH)]
            stats = q.stats()
        browser.tell("go")
        line = browser.line(30)
    finally:
        browser.stop()
    print(
        "\nZEROCONF BROWSER ALONGSIDE: "
        + json.dumps({k: stats.get(k, 0) for k in ("questions_sent", "peer_questions_seen")})
    )
    assert web.name in seen
    assert web.name.rstrip(".") in [name.rstrip(".") for name in line["seen"]]
    assert stats.get("peer_questions_seen", 0) >= 1
