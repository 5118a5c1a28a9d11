"""From the nineteenth session's review of the transports: an interface that comes back under
the same index is joined again. Every socket test runs inside tests/netns-run.

Layout: host namespace ``rtr`` with ``eth0`` (192.0.2.1/24), linked to ``vtr`` here
(192.0.2.254/24), whose index is pinned to VTR_INDEX so a test can make it again under it.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest

from mdnsq import UDPv4Transport, UDPv6Transport
from tests import netlab

HOST, MINE = "rtr", "vtr"
VTR_INDEX = 4242
WAIT = 2.0  # for a datagram already on its way; never reached on success


def _make_link() -> None:
    netlab.ip(
        "link", "add", MINE, "index", str(VTR_INDEX), "type", "veth",
        "peer", "name", "eth0", "netns", HOST,
    )  # fmt: skip
    netlab.ip("addr", "add", "192.0.2.1/24", "dev", "eth0", netns=HOST)
    netlab.ip("link", "set", "eth0", "multicast", "on", "up", netns=HOST)
    netlab.ip("route", "add", "224.0.0.0/4", "dev", "eth0", netns=HOST)
    _configure_mine()
    netlab.Lab().wait_link_local("eth0", HOST)


def _configure_mine() -> None:
    netlab.ip("addr", "add", "192.0.2.254/24", "dev", MINE)
    netlab.ip("link", "set", MINE, "multicast", "on", "up")
    netlab.Lab().wait_link_local(MINE)


@pytest.fixture
def link(private_netns: None) -> Iterator[None]:
    netlab.wait_link_gone(MINE)
    netlab.ip("netns", "add", HOST)
    try:
        _make_link()
        yield
    finally:
        for ns in (HOST, "rtr2"):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", MINE], capture_output=True)


def peer_sends(family: int, payload: bytes) -> None:
    """The host on the other end sends ``payload`` to the mDNS group from port 5353."""
    with netlab.in_netns(HOST):
        sock = socket.socket(family, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            sock.bind(("192.0.2.1", 5353))
            sock.sendto(payload, ("224.0.0.251", 5353))
        else:
            index = netlab.ifindex("eth0", HOST)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            sock.bind(("::", 5353))
            sock.sendto(payload, ("ff02::fb", 5353))


def _recreate() -> None:
    """The link deleted and made again under the same index (`ip link add ... index N`)."""
    subprocess.run(["ip", "netns", "del", HOST], capture_output=True)
    netlab.wait_link_gone(MINE)
    netlab.ip("netns", "add", HOST)
    _make_link()


def _netns_round_trip() -> None:
    """The interface moved to another namespace and back (a container runtime, a test
    harness): Linux keeps its index, and it comes back without its addresses."""
    netlab.ip("netns", "add", "rtr2")
    netlab.ip("link", "set", MINE, "netns", "rtr2")
    netlab.ip("link", "set", MINE, "netns", "1", netns="rtr2")  # pid 1: netns-run's namespace
    _configure_mine()


def _ipv6_mtu_dip() -> None:
    """The MTU set below 1280 for a moment: Linux tears IPv6 down on the interface and builds
    it again when the MTU is back; same index, same name, same addresses."""
    netlab.ip("link", "set", MINE, "mtu", "1200")
    netlab.ip("link", "set", MINE, "mtu", "1500")
    netlab.Lab().wait_link_local(MINE)


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        (UDPv4Transport, _recreate),
        (UDPv6Transport, _recreate),
        (UDPv4Transport, _netns_round_trip),
        (UDPv6Transport, _netns_round_trip),
        (UDPv6Transport, _ipv6_mtu_dip),
    ],
    ids=["v4-recreated", "v6-recreated", "v4-netns-round-trip", "v6-netns-round-trip", "v6-mtu"],
)
def test_follow_interfaces_joins_again_an_interface_whose_membership_the_kernel_dropped(
    link: None, kind: type[UDPv4Transport] | type[UDPv6Transport], change: Callable[[], None]
) -> None:
    """The kernel drops the group from a device that is unregistered (or whose IPv6 is torn
    down), but not from the socket's own list of memberships. An interface that came back
    under the same index was in `before`, so follow_interfaces never joined it again, and the
    transport stayed deaf there for good (a join says EADDRINUSE). It now reads which devices
    are in the group (/proc/net/igmp, igmp6) and joins again where ours is missing."""
    family = kind.family
    with kind(interfaces=[MINE]) as transport:
        peer_sends(family, b"before")
        got = transport.receive(WAIT)
        assert got is not None and got.data == b"before"
        change()
        assert socket.if_nametoindex(MINE) == VTR_INDEX
        transport.follow_interfaces()
        assert [i.index for i in transport.interfaces] == [VTR_INDEX]
        peer_sends(family, b"after")
        got = transport.receive(WAIT)
        assert got is not None and got.data == b"after", "deaf on the link it lists as joined"


def test_a_querier_beside_another_mdns_socket_does_not_ask_for_unicast_replies(link: None) -> None:
    """RFC 6762 §15.1: unicast to port 5353 reaches one of the sockets bound to it,
    so an implementation that is not alone on the port SHOULD NOT ask for QU replies (detect
    it by binding without SO_REUSEADDR/SO_REUSEPORT first). With a socket bound as Avahi binds
    (both options, same user), Linux splits unicast to 5353 between the two by a hash of the
    sender (20 senders: 13 to the other socket, 7 to the transport); Avahi under its own
    user, or a daemon without SO_REUSEPORT, loses all of it to the newest socket. The
    Querier asked QU all the same, and a share of the answers it asked for went to the
    daemon; it now looks (/proc/net/udp) and asks QM. Alone on the port, it asks QU."""
    from mdnsq import Querier, parse_message

    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # avahi-daemon, bound first
    daemon.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    daemon.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    daemon.bind(("", 5353))
    peer = netlab.peer_v4(HOST, timeout=WAIT)
    try:
        with Querier(interfaces=[MINE], ip_version="v4", unicast_response=True) as q:
            q.query("nobody.local", "A", timeout=0.05)
            first = parse_message(peer.recvfrom(9000)[0])
        assert not first.questions[0].unicast_response, (
            "QU asked while another socket shares port 5353"
        )
        daemon.close()
        with Querier(interfaces=[MINE], ip_version="v4", unicast_response=True) as q:
            q.query("alone.local", "A", timeout=0.05)
            first = parse_message(peer.recvfrom(9000)[0])
        assert first.questions[0].unicast_response
    finally:
        peer.close()
        daemon.close()
