"""A Querier that lives while the network changes under it, on real sockets in the lab.

A laptop wakes on another network (the link renumbered), a link appears or goes away (a VPN, a
USB adapter, Wi-Fi associating after the program started), a link goes down and comes back.
"""

from __future__ import annotations

import concurrent.futures
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import mdnsq.interfaces
import mdnsq.querier
import mdnsq.tasks
from mdnsq import MdnsqError, Querier, cli
from mdnsq.interfaces import Interface
from tests import netlab
from tests.fakes import a, response
from tests.waiting import wait_for

GROUP = ("224.0.0.251", 5353)
HOST, LINK = "h23", "lan23"  # the second link's host, and its end of the link here
BRIDGE_HOST = "h22"  # a host on the lab's bridge beside it


@pytest.fixture
def second_link(lab: netlab.Lab) -> Iterator[str]:
    """Host h23 on a link of its own (198.51.100.0/24), not the lab's bridge: a link that
    appears after the Querier opened. Deleting the host deletes the link."""
    assert lab.add_host(22) == BRIDGE_HOST  # the bridge, so the Querier has a link to start on
    netlab.wait_link_gone(LINK)
    netlab.ip("netns", "add", HOST)
    lab.hosts.append(HOST)
    netlab.ip("link", "add", LINK, "type", "veth", "peer", "name", "eth0", "netns", HOST)
    netlab.ip("addr", "add", "198.51.100.254/24", "dev", LINK)
    netlab.ip("addr", "add", "198.51.100.9/24", "dev", "eth0", netns=HOST)
    netlab.ip("link", "set", "lo", "up", netns=HOST)
    yield HOST


def bring_up(host: str) -> None:
    netlab.ip("link", "set", LINK, "multicast", "on", "up")
    netlab.ip("link", "set", "eth0", "multicast", "on", "up", netns=host)
    netlab.ip("route", "add", "224.0.0.0/4", "dev", "eth0", netns=host)


@pytest.mark.netns
def test_a_querier_hears_its_link_after_the_link_is_renumbered(
    lab: netlab.Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A laptop that wakes on another network: the same interface, a new subnet at both ends.
    Responses from the new subnet were dropped as off-link for the Querier's lifetime. (Sent
    unicast to us: multicast ones are from the link whatever their source, RFC 6762 §11.)"""
    listings = []

    def list_interfaces() -> list[Interface]:
        listings.append(time.monotonic())
        return mdnsq.interfaces.list_interfaces()

    monkeypatch.setattr(mdnsq.querier, "list_interfaces", list_interfaces)
    host = lab.add_host(21, extra_v4=["203.0.113.5/32"])  # an address off every subnet
    with Querier(interfaces=[netlab.BRIDGE], ip_version="v4") as q:
        for dev, netns, old, new in (
            (netlab.BRIDGE, None, "192.0.2.254/24", "198.51.100.254/24"),
            ("eth0", host, "192.0.2.21/24", "198.51.100.21/24"),
        ):
            netlab.ip("addr", "add", new, "dev", dev, netns=netns)
            netlab.ip("addr", "del", old, "dev", dev, netns=netns)
        with netlab.in_netns(host):
            moved, spoofer = (
                socket.socket(type=socket.SOCK_DGRAM),
                socket.socket(type=socket.SOCK_DGRAM),
            )
        with moved, spoofer:
            moved.bind(("198.51.100.21", 5353))
            spoofer.bind(("203.0.113.5", 5353))
            ours = ("198.51.100.254", 5353)
            spoofer.sendto(response(a("spoofed.local", "203.0.113.5")), ours)
            moved.sendto(response(a("moved.local", "198.51.100.21")), ours)
            found = q.query("moved.local", "A", timeout=3.0)
        assert [str(r.address) for r in found] == ["198.51.100.21"]  # type: ignore[attr-defined]
        assert q.cached("spoofed.local", "A") == []
        # The answer was queued before the call and read before its first look at the cache
        # (nothing needed asking): a query of our own must leave from the new address too.
        q.send_query("other.local", "A")
        stats = q.stats()
        assert stats["dropped_off_link"] == 1
        assert stats["packets_sent"] >= 1 and "send_errors" not in stats
        assert len(listings) == 1  # the spoofed packet listed them; the next waited RELINK_GAP


@pytest.mark.netns
def test_a_querier_hears_its_link_after_its_ipv6_prefix_changes(lab: netlab.Lab) -> None:
    """The IPv6 twin (a provider handing out a new prefix): a response from a global address in
    the new prefix, unicast to ours. Link-local sources were never in question."""
    host = lab.add_host(27)
    old, new = "2001:db8:1::", "2001:db8:2::"
    netlab.ip("-6", "addr", "add", f"{old}fe/64", "dev", netlab.BRIDGE, "nodad")
    netlab.ip("-6", "addr", "add", f"{old}27/64", "dev", "eth0", "nodad", netns=host)
    with Querier(interfaces=[netlab.BRIDGE], ip_version="v6") as q:
        for dev, netns, suffix in ((netlab.BRIDGE, None, "fe"), ("eth0", host, "27")):
            netlab.ip("-6", "addr", "add", f"{new}{suffix}/64", "dev", dev, "nodad", netns=netns)
            netlab.ip("-6", "addr", "del", f"{old}{suffix}/64", "dev", dev, netns=netns)
        with netlab.in_netns(host):
            moved = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        with moved:
            moved.bind((f"{new}27", 5353))
            scope = netlab.ifindex("eth0", host)
            packet = response(a("moved6.local", "192.0.2.27"))
            moved.sendto(packet, (f"{new}fe", 5353, 0, scope))
            found = q.query("moved6.local", "A", timeout=3.0)
        assert [str(r.address) for r in found] == ["192.0.2.27"]  # type: ignore[attr-defined]
        assert "dropped_off_link" not in q.stats()


@pytest.mark.netns
def test_a_link_without_its_ipv4_address_for_a_moment_keeps_its_subnet(lab: netlab.Lab) -> None:
    # A DHCP lease renewing: the address goes and comes back. Meanwhile the subnet we knew
    # stays; forgetting it made every IPv4 source on the link off-link until a new listing.
    host = lab.add_host(26)
    with Querier(interfaces=[netlab.BRIDGE], ip_version="v4") as q:
        netlab.ip("addr", "del", f"{netlab.BRIDGE_V4}/24", "dev", netlab.BRIDGE)
        try:
            q.update_interfaces()  # lists br0 without an IPv4 address
            with netlab.peer_v4(host) as near:
                near.sendto(response(a("near.local", "192.0.2.26")), GROUP)
                wait_for(lambda: q.process(0.1) + q.stats().get("dropped_off_link", 0) > 0)
        finally:
            netlab.ip("addr", "add", f"{netlab.BRIDGE_V4}/24", "dev", netlab.BRIDGE)
        assert [str(r.address) for r in q.cached("near.local", "A")] == ["192.0.2.26"]  # type: ignore[attr-defined]
        assert "dropped_off_link" not in q.stats()


@pytest.mark.netns
def test_a_link_that_appears_is_used_once_the_querier_follows_the_interfaces(
    second_link: str,
) -> None:
    with Querier(ip_version="v4") as q:
        [transport] = q._transports
        assert [i.name for i in transport.interfaces] == [netlab.BRIDGE]
        bring_up(second_link)
        with netlab.peer_v4(second_link) as far:
            far.sendto(response(a("far.local", "198.51.100.9")), GROUP)
            assert q.query("far.local", "A", timeout=0.5) == []  # not joined there yet
            # Followed while a call runs in another thread; that call hears the new link.
            waits = q.stats()["receive_waits"]
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                running = pool.submit(q.query, "far.local", "A", timeout=10.0)
                wait_for(lambda: q.stats()["receive_waits"] > waits, what="the call waiting")
                assert q.update_interfaces() is True
                assert [i.name for i in transport.interfaces] == [netlab.BRIDGE, LINK]
                far.sendto(response(a("far.local", "198.51.100.9")), GROUP)
                found = running.result()
            assert [str(r.address) for r in found] == ["198.51.100.9"]  # type: ignore[attr-defined]
            q.send_query("probe.local", "A")  # and queries go out there too
            while True:  # (the socket's timeout bounds this) past any earlier query of ours
                data, source = far.recvfrom(9000)
                if mdnsq.parse_message(data).questions[0].name == "probe.local":
                    break
            assert source == ("198.51.100.254", 5353)
        assert q.update_interfaces() is False  # nothing changed since
        netlab.ip("link", "del", LINK)  # the link goes away (a VPN closing)
        assert q.update_interfaces() is True
        assert [i.name for i in transport.interfaces] == [netlab.BRIDGE]
        before = q.stats().get("send_errors", 0)
        q.query("gone.local", "A", timeout=0.1)
        assert q.stats().get("send_errors", 0) == before  # no send to the vanished link


@pytest.mark.netns
def test_a_running_watch_asks_on_a_new_link_at_once(
    second_link: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its retransmissions an hour apart, as a watch's are after a few hours: the new link must
    # not wait for the next one.
    monkeypatch.setattr(mdnsq.tasks, "FIRST_INTERVAL", 3600.0)
    with Querier(ip_version="v4") as q, concurrent.futures.ThreadPoolExecutor(1) as pool:
        watching = pool.submit(lambda: list(q.watch("_http._tcp", timeout=30)))
        wait_for(lambda: q.stats().get("questions_sent", 0) >= 1, what="the first query")
        bring_up(second_link)
        with netlab.peer_v4(second_link) as far:
            assert q.update_interfaces() is True
            data, source = far.recvfrom(9000)  # a timeout here: an hour to go
            q.close()
        watching.result()
    assert source == ("198.51.100.254", 5353)
    assert mdnsq.parse_message(data).questions[0].name == "_http._tcp.local"


@pytest.mark.netns
@pytest.mark.parametrize("ip_version", ["v4", "v6"])
def test_a_link_that_no_longer_qualifies_is_left(
    lab: netlab.Lab, second_link: str, ip_version: str
) -> None:
    bring_up(second_link)
    group = "224.0.0.251" if ip_version == "v4" else "ff02::fb"
    if ip_version == "v6":
        lab.wait_link_local(LINK)

    def joined() -> bool:
        return group in netlab.ip("maddr", "show", "dev", LINK)

    with Querier(ip_version=ip_version) as q:
        [transport] = q._transports
        assert LINK in [i.name for i in transport.interfaces] and joined()
        if ip_version == "v4":  # its address goes (a DHCP lease not renewed)
            netlab.ip("addr", "del", "198.51.100.254/24", "dev", LINK)
        else:
            netlab.ip("-6", "addr", "flush", "dev", LINK, "scope", "link")
        assert q.update_interfaces() is True
        assert LINK not in [i.name for i in transport.interfaces]
        assert not joined()  # the membership is dropped, not just forgotten


@pytest.mark.netns
def test_a_named_link_that_goes_away_is_left_and_joined_again_once_back(
    second_link: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Fifteenth session, finding 2: with the interfaces named, a link that went away made
    every later update_interfaces() fail as a whole ("no interface matches"): the gone link
    stayed, each query warned of a failed send on it, and changes to the other links were
    not followed either."""
    bring_up(second_link)
    with Querier(interfaces=[netlab.BRIDGE, LINK], ip_version="v4") as q:
        [transport] = q._transports
        netlab.ip("link", "del", LINK)  # a USB adapter pulled out
        assert q.update_interfaces() is True
        assert [i.name for i in transport.interfaces] == [netlab.BRIDGE]
        with caplog.at_level(logging.WARNING, logger="mdnsq"):
            q.query("gone.local", "A", timeout=0.1)
        assert caplog.records == []  # no "send to 224.0.0.251 on lan23 failed"
        assert "send_errors" not in q.stats()
        netlab.ip("link", "add", LINK, "type", "veth", "peer", "name", "eth0", "netns", HOST)
        netlab.ip("addr", "add", "198.51.100.254/24", "dev", LINK)
        netlab.ip("addr", "add", "198.51.100.9/24", "dev", "eth0", netns=HOST)
        bring_up(second_link)  # plugged in again
        assert q.update_interfaces() is True
        assert [i.name for i in transport.interfaces] == [netlab.BRIDGE, LINK]
        assert "224.0.0.251" in netlab.ip("maddr", "show", "dev", LINK)


@pytest.mark.netns
@pytest.mark.parametrize("how", ["pulled out", "down"])
def test_what_was_heard_on_a_link_lost_must_be_heard_again_within_a_minute(
    second_link: str, how: str
) -> None:
    """RFC 6762 §10.3. A link gone or down kept what was heard there to its TTL: up to 75
    minutes of another network's services (a PTR record's TTL). Now it is reconfirmed as
    after a sleep; what was heard on the links still up keeps its TTL."""
    bring_up(second_link)
    with Querier(ip_version="v4") as q:
        with netlab.peer_v4(second_link) as far, netlab.peer_v4(BRIDGE_HOST) as near:
            far.sendto(response(a("far.local", "198.51.100.9", ttl=4500)), GROUP)
            near.sendto(response(a("near.local", "192.0.2.22", ttl=4500)), GROUP)
            assert q.query("far.local", "A", timeout=3.0)
            assert q.query("near.local", "A", timeout=3.0)
        if how == "down":
            netlab.ip("link", "set", LINK, "down")
        else:
            netlab.ip("link", "del", LINK)
        assert q.update_interfaces() is True
        [far_entry] = q.cached_entries("far.local", "A")
        [near_entry] = q.cached_entries("near.local", "A")
        assert far_entry.remaining(q.now()) <= mdnsq.querier.WAKE_RECONFIRM
        assert near_entry.remaining(q.now()) > 4000
        assert q.stats()["reconfirmed_link_lost"] == 1


@pytest.mark.netns
def test_a_link_that_is_down_when_the_querier_follows_is_kept(second_link: str) -> None:
    # Down is not gone: the kernel keeps the membership, and the link comes back (a flap,
    # Wi-Fi associating again). Leaving it would leave the Querier deaf there once it is up.
    bring_up(second_link)
    with Querier(ip_version="v4") as q:
        [transport] = q._transports
        assert [i.name for i in transport.interfaces] == [netlab.BRIDGE, LINK]
        netlab.ip("link", "set", netlab.BRIDGE, "down")
        assert q.update_interfaces() is True  # a change: br0 went down
        assert [i.name for i in transport.interfaces] == [netlab.BRIDGE, LINK]
        assert q.update_interfaces() is False  # still down: no news
        netlab.ip("link", "set", netlab.BRIDGE, "up")
        assert q.update_interfaces() is True  # up again, perhaps on another network: ask again
        assert q.update_interfaces() is False
        with netlab.peer_v4(BRIDGE_HOST) as near:
            near.sendto(response(a("near.local", "192.0.2.22")), GROUP)
            found = q.query("near.local", "A", timeout=3.0)
        assert [str(r.address) for r in found] == ["192.0.2.22"]  # type: ignore[attr-defined]


def test_the_cli_watch_follows_the_interfaces_until_it_ends() -> None:
    calls: list[float] = []

    class Querier:  # what the follower uses of one
        def update_interfaces(self) -> bool:
            calls.append(time.monotonic())
            return False

    def following() -> bool:
        return any(t.name == "mdnsq-follow-interfaces" for t in threading.enumerate())

    querier: Any = Querier()
    with cli._following_interfaces(querier, 0.001):
        wait_for(lambda: len(calls) >= 3, what="three looks at the interfaces")
    wait_for(lambda: not following(), what="the follower stopping with the watch")

    class Closed:
        def update_interfaces(self) -> bool:
            raise MdnsqError("Querier is closed")

    closed: Any = Closed()
    with cli._following_interfaces(closed, 0.001):
        wait_for(lambda: not following(), what="the follower stopping at a closed Querier")
