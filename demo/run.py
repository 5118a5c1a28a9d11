"""`make demo`: a throw-away network with sample services, browsed by the mdnsq command.

Runs as the first process of the private namespaces that tests/netns-run creates, so no packet
can leave the machine: it adds one more namespace ("demo-peer", 192.0.2.1 and a link-local IPv6
address) joined to ours (192.0.2.254) by a veth pair, starts demo/responder.py there, waits for its
"ready" line, runs the mdnsq commands a newcomer would try, and tears everything down (the kernel
removes whatever is left when netns-run's namespaces go away).
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = "demo-peer"
PEER_V4 = "192.0.2.1"
OUR_V4 = "192.0.2.254"
# The console script `make install` puts next to the interpreter; `python -m mdnsq` from this
# checkout when it is missing, so the demo also runs from a tree that was never installed.
SCRIPT = Path(sys.executable).parent / "mdnsq"
MDNSQ = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "mdnsq"]
COMMANDS = [
    ["types"],
    ["browse", "--all"],
    ["resolve", "demo-host.local"],
]


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def require_private_netns() -> None:
    outer = os.environ.get("MDNSQ_OUTER_NETNS")
    if not outer or os.readlink("/proc/self/ns/net") == outer:
        sys.exit(
            "demo: run me through tests/netns-run (`make demo`); refusing to use a real network"
        )


def build_network() -> tuple[int, str]:
    """The peer namespace and its link; returns the peer's eth0 index and link-local address."""
    ip("netns", "add", PEER)
    for setting in ("all", "default"):
        subprocess.run(
            ["ip", "netns", "exec", PEER, "sysctl", "-qw", f"net.ipv6.conf.{setting}.accept_dad=0"],
            check=True,
        )
    ip("link", "add", "demo0", "type", "veth", "peer", "name", "eth0", "netns", PEER)
    ip("addr", "add", f"{OUR_V4}/24", "dev", "demo0")
    ip("link", "set", "demo0", "multicast", "on", "up")
    ip("-n", PEER, "link", "set", "lo", "up")
    ip("-n", PEER, "addr", "add", f"{PEER_V4}/24", "dev", "eth0")
    ip("-n", PEER, "link", "set", "eth0", "multicast", "on", "up")
    ip("-n", PEER, "route", "add", "224.0.0.0/4", "dev", "eth0")
    index = int(ip("-n", PEER, "-o", "link", "show", "eth0").split(":", 1)[0])
    # The kernel adds fe80:: when the link comes up (at once, with DAD off, but asynchronously):
    # poll the kernel's state, bounded, rather than guess a sleep.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = ip("-n", PEER, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link")
        if "inet6" in out and "tentative" not in out:
            return index, out.split()[3].split("/")[0]
        time.sleep(0.01)
    raise RuntimeError("the demo peer got no link-local IPv6 address")


def main() -> int:
    require_private_netns()
    index, link_local = build_network()
    responder = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            PEER,
            sys.executable,
            str(HERE / "responder.py"),
            "--address",
            PEER_V4,
            "--ifindex",
            str(index),
            "--address6",
            link_local,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert responder.stdout is not None
        if responder.stdout.readline().strip() != "ready":
            print("demo: the responder did not start (see its messages above)", file=sys.stderr)
            return 1
        print(
            f"demo: a python-zeroconf responder on {PEER_V4} / {link_local} advertises 3 services\n"
        )
        status = 0
        for argv in COMMANDS:
            print("$ mdnsq " + shlex.join(argv), flush=True)
            done = subprocess.run([*MDNSQ, *argv], cwd=HERE.parent)
            print(f"(exit status {done.returncode})\n", flush=True)
            status = status or done.returncode
        return status
    finally:
        responder.send_signal(signal.SIGINT)  # goodbyes, then exit
        try:
            responder.wait(5)
        except subprocess.TimeoutExpired:
            responder.kill()
            responder.wait()
        subprocess.run(["ip", "netns", "del", PEER], check=False)


if __name__ == "__main__":
    sys.exit(main())
