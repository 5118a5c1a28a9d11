"""A private test network: hosts as network namespaces on one bridged link.

Every helper here refuses to work unless the test run is inside the namespace that
``tests/netns-run`` created (``make test`` does that), so nothing can reach a real
interface. Layout of a lab::

    test namespace (the querier)          host namespaces (peers)
    br0 192.0.2.254/24, fe80::/64  <-->  lan<N> ==veth== eth0 192.0.2.<N>/24 in "h<N>"

Multicast from any host reaches the bridge and every other host. IPv6 duplicate
address detection is off (netns-run), so link-local addresses are usable at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

CLONE_NEWNET = 0x40000000
BRIDGE = "br0"
BRIDGE_V4 = "192.0.2.254"
BRIDGE_MAC = "02:00:00:6d:64:fe"  # locally administered, fixed (see Lab._ensure_bridge)


class NotIsolated(RuntimeError):
    """Raised when a test would open a socket outside the private namespace."""


def current_netns() -> str:
    return os.readlink("/proc/self/ns/net")


def require_private_netns() -> None:
    """Fail loudly (never skip) when not inside tests/netns-run's namespace."""
    outer = os.environ.get("MDNSQ_OUTER_NETNS")
    if not outer:
        raise NotIsolated(
            "network tests must run inside tests/netns-run (use `make test`); "
            "MDNSQ_OUTER_NETNS is not set"
        )
    if current_netns() == outer:
        raise NotIsolated("still in the outer network namespace; refusing to send packets")


def ip(*args: str, netns: str | None = None) -> str:
    require_private_netns()
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    return done.stdout


def sysctl(setting: str, netns: str | None = None) -> None:
    require_private_netns()  # without ``netns``, the setting is this namespace's
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "sysctl", "-qw", setting], check=True, capture_output=True)


def ifindex(name: str, netns: str | None = None) -> int:
    require_private_netns()
    # /sys shows the outer namespace's interfaces here, so ask the kernel through a socket call.
    with in_netns(netns):
        return socket.if_nametoindex(name)


def link_local(name: str, netns: str | None = None) -> str:
    """The fe80:: address of an interface (without scope)."""
    out = ip("-6", "-o", "addr", "show", "dev", name, "scope", "link", netns=netns)
    for line in out.splitlines():
        parts = line.split()
        return parts[parts.index("inet6") + 1].split("/")[0]
    raise RuntimeError(f"{name} has no link-local address")


_libc = ctypes.CDLL(None, use_errno=True)


def wait_link_gone(dev: str, limit: float = 5.0) -> None:
    """Wait until ``dev`` no longer exists. Deleting a namespace deletes its veth ends in the
    background, so a host number used by an earlier test may still have its old veth."""
    import time

    require_private_netns()
    deadline = time.monotonic() + limit
    while subprocess.run(["ip", "link", "show", dev], capture_output=True).returncode == 0:
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{dev} is still there after {limit} s")
        time.sleep(0.01)


@contextlib.contextmanager
def in_netns(name: str | None) -> Iterator[None]:
    """Switch the calling thread into host ``name``'s network namespace for a moment.

    Sockets opened inside keep that namespace after the switch back (Linux semantics), so
    a test can hold sockets in several hosts at once. ``None`` means "stay where we are".
    """
    if name is None:
        yield
        return
    require_private_netns()
    with open("/proc/thread-self/ns/net") as home, open(f"/run/netns/{name}") as target:
        if _libc.setns(target.fileno(), CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        try:
            yield
        finally:
            if _libc.setns(home.fileno(), CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))


def peer_v4(host: str, timeout: float = 3.0) -> socket.socket:
    """A socket in ``host`` on port 5353 that hears the IPv4 mDNS group on its eth0 (and not
    itself), to play a peer; ``timeout`` bounds each receive."""
    with in_netns(host):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", 5353))
    mreqn = socket.inet_aton("224.0.0.251") + bytes(4) + struct.pack("@i", ifindex("eth0", host))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.settimeout(timeout)
    return sock


@dataclass
class Lab:
    """A bridged link with peer hosts; ``close()`` deletes the hosts and their veths."""

    hosts: list[str] = field(default_factory=list)
    _bridge_up: bool = False

    @property
    def bridge_index(self) -> int:
        return ifindex(BRIDGE)

    def _ensure_bridge(self) -> None:
        if self._bridge_up:
            return
        require_private_netns()
        existing = subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True)
        if existing.returncode != 0:
            ip("link", "add", BRIDGE, "type", "bridge", "mcast_snooping", "0")
            # A bridge takes the lowest MAC of its ports unless one is set, so adding or
            # deleting a host would change br0's MAC while the hosts' neighbour caches hold
            # the old one, and their unicast replies would vanish for half a minute.
            ip("link", "set", BRIDGE, "address", BRIDGE_MAC)
            ip("addr", "add", f"{BRIDGE_V4}/24", "dev", BRIDGE)
            ip("link", "set", BRIDGE, "multicast", "on", "up")
        self._bridge_up = True

    def add_host(self, n: int, extra_v4: Sequence[str] = ()) -> str:
        """Create host ``h<n>`` with 192.0.2.<n>/24 and a link-local IPv6 address."""
        if not 1 <= n <= 253:
            raise ValueError("host number must be 1..253")
        self._ensure_bridge()
        name = f"h{n}"
        wait_link_gone(f"lan{n}")
        ip("netns", "add", name)
        self.hosts.append(name)
        sysctl("net.ipv6.conf.all.accept_dad=0", name)
        sysctl("net.ipv6.conf.default.accept_dad=0", name)
        ip("link", "add", f"lan{n}", "type", "veth", "peer", "name", "eth0", "netns", name)
        ip("link", "set", f"lan{n}", "master", BRIDGE, "up")
        ip("link", "set", "lo", "up", netns=name)
        ip("addr", "add", f"192.0.2.{n}/24", "dev", "eth0", netns=name)
        for address in extra_v4:
            ip("addr", "add", address, "dev", "eth0", netns=name)
        ip("link", "set", "eth0", "multicast", "on", "up", netns=name)
        ip("route", "add", "224.0.0.0/4", "dev", "eth0", netns=name)
        self.wait_link_local(BRIDGE)
        self.wait_link_local("eth0", name)
        return name

    def wait_link_local(self, dev: str, netns: str | None = None) -> None:
        # The kernel assigns fe80:: when the link comes up; with DAD off this is immediate
        # but still asynchronous, so poll (bounded) instead of sleeping.
        import time

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            out = ip("-6", "-o", "addr", "show", "dev", dev, "scope", "link", netns=netns)
            if "inet6" in out and "tentative" not in out:
                return
            time.sleep(0.01)
        raise RuntimeError(f"no usable link-local address on {dev} ({netns})")

    def close(self) -> None:
        require_private_netns()  # outside it, "ip link del br0" would delete a real bridge
        for name in reversed(self.hosts):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.hosts.clear()
        if self._bridge_up:
            subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
            self._bridge_up = False

    def popen(self, host: str, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a process inside ``host``'s network namespace."""
        require_private_netns()
        return subprocess.Popen(["ip", "netns", "exec", host, *argv], **kwargs)  # type: ignore[call-overload]
