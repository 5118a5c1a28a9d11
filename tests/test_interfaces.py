"""Interface listing (getifaddrs through ctypes) and the default / explicit selection rules."""

from __future__ import annotations

import logging
import socket
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

import pytest

from mdnsq import Interface, InvalidArgument, NetworkError, list_interfaces
from mdnsq.interfaces import InterfaceSpec, select_interfaces
from tests import netlab

LO = Interface("lo", 1, (IPv4Interface("127.0.0.1/8"), IPv6Interface("::1/128")), loopback=True)
ETH = Interface("eth0", 2, (IPv4Interface("192.0.2.7/24"), IPv6Interface("fe80::7/64")))
WLAN_V6_ONLY = Interface("wlan0", 3, (IPv6Interface("fe80::3/64"),))
TUN = Interface("tun0", 4, (IPv4Interface("192.0.2.66/32"),), point_to_point=True)
DOWN = Interface("eth1", 5, (IPv4Interface("192.0.2.8/24"),), up=False)
NO_MCAST = Interface("eth2", 6, (IPv4Interface("192.0.2.9/24"),), multicast=False)
ALL = [LO, ETH, WLAN_V6_ONLY, TUN, DOWN, NO_MCAST]


def test_default_skips_loopback_tunnels_down_and_non_multicast() -> None:
    assert select_interfaces(None, socket.AF_INET, ALL) == [ETH]
    assert select_interfaces(None, socket.AF_INET6, ALL) == [ETH, WLAN_V6_ONLY]


def test_default_falls_back_to_loopback_only_when_nothing_else_qualifies() -> None:
    assert select_interfaces(None, socket.AF_INET, [LO, TUN, DOWN]) == [LO]


def test_ipv6_needs_a_link_local_address() -> None:
    # lo's ::1 gives ff02::fb no route: IPv6 mDNS cannot run there, so it never qualifies.
    with pytest.raises(NetworkError, match="link-local"):
        select_interfaces(None, socket.AF_INET6, [LO, TUN])
    with pytest.raises(NetworkError, match="link-local"):
        select_interfaces(["lo"], socket.AF_INET6, ALL)
    global_only = Interface("eth3", 7, (IPv6Interface("2001:db8::7/64"),))
    assert not global_only.usable_for(socket.AF_INET6)
    assert global_only.has_family(socket.AF_INET6)


def test_nothing_usable_raises_network_error() -> None:
    with pytest.raises(NetworkError):
        select_interfaces(None, socket.AF_INET, [TUN, DOWN, NO_MCAST])
    with pytest.raises(NetworkError):
        select_interfaces(None, socket.AF_INET6, [TUN])


@pytest.mark.parametrize("wanted", ["eth0", 2, "2", "192.0.2.7", "fe80::7", "fe80::7%eth0"])
def test_explicit_selection_by_name_index_or_address(wanted: str | int) -> None:
    assert select_interfaces([wanted], socket.AF_INET, ALL) == [ETH]
    assert select_interfaces(wanted, socket.AF_INET, ALL) == [ETH]  # a bare one, as transports take


def test_explicit_selection_keeps_order_and_drops_duplicates() -> None:
    chosen = select_interfaces(["wlan0", "eth0", 2], socket.AF_INET6, ALL)
    assert chosen == [WLAN_V6_ONLY, ETH]


def test_explicit_selection_errors_name_the_problem() -> None:
    with pytest.raises(NetworkError, match="nope"):
        select_interfaces(["nope"], socket.AF_INET, ALL)
    with pytest.raises(NetworkError, match="no IPv4 address"):
        select_interfaces(["wlan0"], socket.AF_INET, ALL)
    with pytest.raises(NetworkError, match="no IPv6 link-local address"):
        select_interfaces(["tun0"], socket.AF_INET6, ALL)


@pytest.mark.parametrize("wanted", [[], (), "", ["eth0", ""]])
def test_an_empty_selection_is_the_caller_s_mistake(wanted: InterfaceSpec) -> None:
    # A NetworkError before: the CLI's `-i ''` said to check that an interface is up, exit 3.
    with pytest.raises(InvalidArgument):
        select_interfaces(wanted, socket.AF_INET, ALL)


def test_address_helpers() -> None:
    assert ETH.ipv4 == (IPv4Interface("192.0.2.7/24"),)
    assert ETH.ipv6 == (IPv6Interface("fe80::7/64"),)
    assert not WLAN_V6_ONLY.has_family(socket.AF_INET)


@pytest.mark.parametrize("bsd", [False, True])
def test_sockaddr_layouts_of_linux_and_the_bsds(bsd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux: a 16-bit family first; BSD/macOS: 8-bit sa_len, 8-bit family. Then the same."""
    import ctypes
    import struct

    from mdnsq import interfaces

    monkeypatch.setattr(interfaces, "_HAS_SA_LEN", bsd)

    def head(family: int, length: int) -> bytes:
        return bytes([length, family]) if bsd else struct.pack("=H", family)

    v4 = head(socket.AF_INET, 16) + b"\x14\xe9" + bytes([192, 0, 2, 7]) + bytes(8)
    v6 = (
        head(socket.AF_INET6, 28)
        + b"\x14\xe9"
        + bytes(4)
        + socket.inet_pton(socket.AF_INET6, "fe80::7")
        + struct.pack("=I", 2)
    )
    link = head(17 if not bsd else 18, 20) + bytes(18)  # AF_PACKET / AF_LINK: skipped
    buffers = [ctypes.create_string_buffer(raw, len(raw)) for raw in (v4, v6, link)]
    found = [interfaces._raw_address(ctypes.addressof(b)) for b in buffers]
    assert found[0] == (socket.AF_INET, bytes([192, 0, 2, 7]))
    assert found[1] == (socket.AF_INET6, socket.inet_pton(socket.AF_INET6, "fe80::7"))
    assert found[2] is None
    assert interfaces._raw_address(None) is None
    assert interfaces._prefix_length(bytes([255, 255, 255, 0])) == 24


def test_listing_in_the_private_namespace_sees_lo(private_netns: None) -> None:
    found = {i.name: i for i in list_interfaces()}
    lo = found["lo"]
    assert lo.index == socket.if_nametoindex("lo")
    assert lo.up and lo.multicast and lo.loopback and not lo.point_to_point
    assert IPv4Interface("127.0.0.1/8") in lo.addresses
    assert IPv6Interface("::1/128") in lo.addresses


def test_listing_sees_the_lab_bridge_with_prefixes(lab: netlab.Lab) -> None:
    lab.add_host(1)
    found = {i.name: i for i in list_interfaces()}
    br = found[netlab.BRIDGE]
    assert br.index == lab.bridge_index
    assert br.up and br.multicast and not br.loopback
    assert IPv4Interface("192.0.2.254/24") in br.addresses
    assert IPv6Interface(f"{netlab.link_local(netlab.BRIDGE)}/64") in br.addresses
    assert select_interfaces(None, socket.AF_INET) == [br]
    assert select_interfaces(["192.0.2.254"], socket.AF_INET6) == [br]


def test_listing_sees_point_to_point_links(private_netns: None) -> None:
    # A tun device is what a VPN client creates: up, multicast-flagged, point-to-point.
    netlab.ip("tuntap", "add", "dev", "ptp0", "mode", "tun")
    try:
        netlab.ip("link", "set", "ptp0", "multicast", "on", "up")
        netlab.ip("addr", "add", "192.0.2.201", "peer", "192.0.2.202", "dev", "ptp0")
        found = {i.name: i for i in list_interfaces()}
        assert found["ptp0"].point_to_point and found["ptp0"].multicast
        assert IPv4Interface("192.0.2.201/32") in found["ptp0"].addresses
        assert found["ptp0"] not in select_interfaces(None, socket.AF_INET)
    finally:
        netlab.ip("link", "del", "ptp0")


def test_default_skips_bridge_ports_but_an_explicit_choice_keeps_them() -> None:
    port = Interface("veth1", 8, (IPv6Interface("fe80::8/64"),), enslaved=True)
    assert select_interfaces(None, socket.AF_INET6, [ETH, port]) == [ETH]
    assert select_interfaces(["veth1"], socket.AF_INET6, [ETH, port]) == [port]


def test_listing_marks_the_lab_bridge_ports_as_enslaved(lab: netlab.Lab) -> None:
    lab.add_host(7)
    listed = {i.name: i for i in list_interfaces()}
    # lan7 has only a link-local IPv6 address, like a container's veth on a Docker host.
    assert listed["lan7"].enslaved and listed["lan7"].usable_for(socket.AF_INET6)
    assert not listed[netlab.BRIDGE].enslaved
    assert [i.name for i in select_interfaces(None, socket.AF_INET6)] == [netlab.BRIDGE]


# -- fifteenth session's review (adr/001) -----------------------------------------------------


def test_an_explicit_list_uses_per_family_the_named_interfaces_that_have_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Finding 1: one named interface without IPv6 took IPv6 away from all of them (and the
    Querier silently had no IPv6 socket); one without IPv4 took IPv4 away."""
    with caplog.at_level(logging.INFO, logger="mdnsq.interfaces"):
        assert select_interfaces(["eth0", "wlan0"], socket.AF_INET, ALL) == [ETH]
    assert "wlan0 has no IPv4 address" in caplog.text
    assert select_interfaces(["eth0", "wlan0"], socket.AF_INET6, ALL) == [ETH, WLAN_V6_ONLY]
    assert select_interfaces(["wlan0", "tun0"], socket.AF_INET6, ALL) == [WLAN_V6_ONLY]
    assert select_interfaces(["wlan0", "tun0"], socket.AF_INET, ALL) == [TUN]
    with pytest.raises(NetworkError, match="nope"):  # a name that matches nothing still is one
        select_interfaces(["eth0", "nope"], socket.AF_INET, ALL)
    # None of them usable for the family: that family has nothing (the Querier opens without it).
    with pytest.raises(NetworkError, match="interfaces lo, tun0 have no IPv6 link-local address"):
        select_interfaces(["lo", "tun0"], socket.AF_INET6, ALL)


@pytest.mark.parametrize(
    "wanted",
    [[1.5], [None], [b"lo"], [True], [2, False], b"lo", bytearray(b"lo"), True, 1.5, object()],
)
def test_an_interface_is_named_by_str_or_int_and_nothing_else(wanted: Any) -> None:
    """Finding 6: bytes were read as a list of indexes, True as index 1, a float or None as an
    item raised AttributeError."""
    with pytest.raises(TypeError, match="interface"):
        select_interfaces(wanted, socket.AF_INET, ALL)


def test_a_scoped_address_picks_only_the_interface_of_its_scope() -> None:
    """Finding 7: the scope was dropped, and fe80::1 (every router's, say) matched every
    interface that held it."""
    first = Interface("eth0", 2, (IPv6Interface("fe80::1/64"),))
    second = Interface("eth1", 3, (IPv6Interface("fe80::1/64"),))
    both = [first, second]
    assert select_interfaces("fe80::1%eth1", socket.AF_INET6, both) == [second]
    assert select_interfaces("fe80::1%3", socket.AF_INET6, both) == [second]
    assert select_interfaces("fe80::1%eth0", socket.AF_INET6, both) == [first]
    assert select_interfaces("fe80::1", socket.AF_INET6, both) == both
    with pytest.raises(NetworkError, match="no interface matches"):
        select_interfaces("fe80::1%eth9", socket.AF_INET6, both)
