"""Found in the fifteenth session's review of the transports and interface selection (adr/001,
"Fifteenth session's review"): each test fails on the code before its fix.

Two links from the test namespace to one host r15: t15a (192.0.2.254/24 and a link-local
address) and t15b (198.51.100.254/24 and a link-local address, either left out on request).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mdnsq import NetworkError, Querier, UDPv4Transport, UDPv6Transport
from tests import netlab
from tests.fakes import PEER, FakeTransport, a, response
from tests.waiting import wait_for

HOST, A, B = "r15", "t15a", "t15b"
WAIT = 3.0  # an upper bound for what is already on its way; never reached on success

Links = Callable[..., None]


def add_link(mine: str, theirs: str, net: str, v4: bool = True, v6: bool = True) -> None:
    netlab.ip("link", "add", mine, "type", "veth", "peer", "name", theirs, "netns", HOST)
    if not v6:
        netlab.ip("link", "set", "dev", mine, "addrgenmode", "none")  # no fe80:: address
    if v4:
        netlab.ip("addr", "add", f"{net}.254/24", "dev", mine)
    netlab.ip("addr", "add", f"{net}.1/24", "dev", theirs, netns=HOST)
    netlab.ip("link", "set", mine, "multicast", "on", "up")
    netlab.ip("link", "set", theirs, "multicast", "on", "up", netns=HOST)
    if v6:

        def link_local() -> bool:
            out = netlab.ip("-6", "-o", "addr", "show", "dev", mine, "scope", "link")
            return "inet6" in out and "tentative" not in out

        wait_for(link_local, what=f"a link-local address on {mine}")


@pytest.fixture
def links(private_netns: None) -> Iterator[Links]:
    """``links(b_v4=..., b_v6=...)`` makes t15a and t15b; deleting r15 deletes both."""
    for dev in (A, B):
        netlab.wait_link_gone(dev)
    netlab.ip("netns", "add", HOST)

    def make(b_v4: bool = True, b_v6: bool = True) -> None:
        add_link(A, "eth0", "192.0.2")
        add_link(B, "eth1", "198.51.100", v4=b_v4, v6=b_v6)

    try:
        yield make
    finally:
        subprocess.run(["ip", "netns", "del", HOST], capture_output=True)


def selection(q: Querier) -> dict[int, list[str]]:
    return {t.family: [i.name for i in t.interfaces] for t in q._transports}


# -- finding 1: a named interface without one family took that family from all of them ---------


@pytest.mark.parametrize("without", ["IPv6", "IPv4"])
def test_a_named_interface_without_a_family_leaves_that_family_to_the_others(
    links: Links, without: str
) -> None:
    """`--interface t15a --interface t15b` with t15b lacking IPv6 gave the Querier no IPv6
    socket at all, though t15a has a link-local address; lacking IPv4, t15a lost IPv4."""
    links(b_v4=without != "IPv4", b_v6=without != "IPv6")
    with Querier(interfaces=[A, B]) as q:
        if without == "IPv6":
            assert selection(q) == {socket.AF_INET: [A, B], socket.AF_INET6: [A]}
        else:
            assert selection(q) == {socket.AF_INET: [A], socket.AF_INET6: [A, B]}
        assert q.update_interfaces() is False  # the same selection, made again


def test_an_iterator_of_interfaces_serves_both_families_and_every_later_look(
    links: Links,
) -> None:
    """The IPv4 socket used up an iterator, and the IPv6 one found an empty list."""
    links()
    with Querier(interfaces=iter([A, B])) as q:
        assert selection(q) == {socket.AF_INET: [A, B], socket.AF_INET6: [A, B]}
        assert q.update_interfaces() is False
        assert selection(q) == {socket.AF_INET: [A, B], socket.AF_INET6: [A, B]}


# -- finding 2: an interface that goes away is dropped, also when nothing else qualifies --------


def test_the_last_interface_of_a_family_going_away_is_dropped_and_joined_again_later(
    links: Links,
) -> None:
    """Default selection, IPv6: t15a is the only link with a link-local address. Once it was
    gone nothing qualified, follow_interfaces() raised and kept it, and every query logged
    `send to ff02::fb on t15a failed: No such device`."""
    links(b_v6=False)
    with UDPv6Transport() as t:
        assert [i.name for i in t.interfaces] == [A]
        netlab.ip("link", "del", A)
        assert t.follow_interfaces() is True
        assert t.interfaces == []
        with pytest.raises(NetworkError, match="no interface"):
            t.send(b"nowhere to go")
        add_link(A, "eth0", "192.0.2")
        assert t.follow_interfaces() is True
        assert [i.name for i in t.interfaces] == [A]
        assert "ff02::fb" in netlab.ip("maddr", "show", "dev", A)


# -- finding 3: sent to the group, a response is from the link (RFC 6762 §11) ------------------


def test_the_on_link_check_applies_to_unicast_only() -> None:
    """A response from outside every subnet of its interface was dropped even when it came to
    the group, which only hosts on the link can send to. Unicast may be routed: still checked."""
    with FakeTransport() as transport, Querier(transports=[transport]) as q:
        far = ("198.51.100.7", 5353)  # off the fake link's 192.0.2.0/24
        transport.inject(response(a("group.local", "198.51.100.7")), far, to_group=True)
        transport.inject(response(a("unicast.local", "198.51.100.7")), far)
        transport.inject(response(a("near.local", "192.0.2.1")), PEER)
        assert q.process() == 2
        assert [str(r.address) for r in q.cached("group.local", "A")] == ["198.51.100.7"]  # type: ignore[attr-defined]
        assert q.cached("unicast.local", "A") == []
        assert q.stats()["dropped_off_link"] == 1


# -- finding 4: two threads sending on one transport --------------------------------------------


class _Sniffer:
    """Datagrams this host sends out of ``dev``, seen by a packet socket on it."""

    def __init__(self, dev: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((dev, 0))
        self.sock.setblocking(False)

    def payloads(self, prefix: bytes) -> Counter[bytes]:
        seen: Counter[bytes] = Counter()
        while True:
            try:
                frame, address = self.sock.recvfrom(65535)
            except BlockingIOError:
                return seen
            if address[2] == socket.PACKET_OUTGOING and prefix in frame:
                seen[frame[frame.index(prefix) :]] += 1


def test_two_threads_sending_on_one_transport_each_reach_every_interface(links: Links) -> None:
    """IP_MULTICAST_IF belongs to the socket. Thread A set it to t15b for its second
    datagram, thread B set it to t15a for its first, then A's sendto left on t15a: A's query
    went out on t15a and never on t15b (or B's did, whichever came first). The interleaving
    is forced: A waits, after setting t15b, until B has moved the interface, is done, or
    waits for the send lock; B, after moving it, waits until A's send returned."""
    links()
    b_moved, a_sent = threading.Event(), threading.Event()
    with UDPv4Transport([A, B]) as t, contextlib.ExitStack() as closing:
        sniffers = {dev: _Sniffer(dev) for dev in (A, B)}
        for sniffer in sniffers.values():
            closing.enter_context(sniffer.sock)
        real_set = t._set_multicast_if

        def send_a() -> None:
            t.send(b"PAYLOAD-A")
            a_sent.set()

        def send_b() -> None:
            t.send(b"PAYLOAD-B")
            b_moved.set()  # (if it never had to move the interface)

        a_thread = threading.Thread(target=send_a, name="A")
        b_thread = threading.Thread(target=send_b, name="B")

        def set_multicast_if(interface: Any) -> None:
            real_set(interface)
            who = threading.current_thread().name
            if who == "A" and interface.name == B:
                b_thread.start()
                b_moved.wait(WAIT)
            elif who == "B" and interface.name == A:
                b_moved.set()
                a_sent.wait(WAIT)

        class Watched:  # the send lock, telling A when B waits for it
            def __init__(self, lock: Any) -> None:
                self.lock = lock

            def __enter__(self) -> Any:
                if threading.current_thread().name == "B":
                    b_moved.set()
                return self.lock.__enter__()

            def __exit__(self, *exc: Any) -> Any:
                return self.lock.__exit__(*exc)

        t._set_multicast_if = set_multicast_if  # type: ignore[method-assign]
        t._send_lock = Watched(getattr(t, "_send_lock", threading.RLock()))  # type: ignore[assignment]

        a_thread.start()
        a_thread.join(2 * WAIT)
        b_thread.join(2 * WAIT)
        assert not a_thread.is_alive() and not b_thread.is_alive()
        seen = {dev: sniffer.payloads(b"PAYLOAD-") for dev, sniffer in sniffers.items()}
    expected = Counter([b"PAYLOAD-A", b"PAYLOAD-B"])
    assert seen == {A: expected, B: expected}


# -- finding 5: what the sockets drop shows in Querier.stats() ----------------------------------


def test_the_querier_counts_what_its_sockets_drop_and_the_errors_they_wait_through(
    links: Links,
) -> None:
    """The transports drop datagrams too big for a buffer and unicast that came through an
    interface not selected before the Querier sees them; their counters were reachable only
    through the private q._transports, and stats() said nothing of them."""
    links()
    with Querier(interfaces=["lo"], ip_version="v4") as q:
        [transport] = q._transports
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
            peer.bind(("127.0.0.1", 0))
            closed_port = peer.getsockname()[1]
            peer.sendto(b"x" * 9100, ("127.0.0.1", 5353))  # larger than a pooled buffer
            peer.sendto(b"through t15b", ("198.51.100.254", 5353))  # t15b is not selected
        # An ICMP "port unreachable" about a datagram of ours: read as an error, waited through.
        transport.send(b"to a closed port", dest=("127.0.0.1", closed_port))

        def counted() -> bool:
            q.process(0.05)
            stats = q.stats()
            errors = stats.get("transient_receive_errors", 0) + stats.get(
                "drained_error_reports", 0
            )
            return errors > 0 and stats.get("dropped_interface", 0) > 0

        wait_for(counted, what="the drops and the error counted")
        stats = q.stats()
        assert stats["dropped_oversize"] == 1
        assert stats["dropped_interface"] == 1
        own = transport.stats()
        assert stats.get("transient_receive_errors", 0) == own.receive_errors
        assert stats.get("drained_error_reports", 0) == own.drained_errors


# -- finding 6: the wrong kinds of interface raise TypeError -------------------------------------


@pytest.mark.parametrize("interfaces", [b"lo", [b"lo"], [1.5], [None], True, [True]])
def test_a_querier_given_the_wrong_kind_of_interface_raises_type_error(
    private_netns: None, interfaces: Any
) -> None:
    """The README promises TypeError for arguments of the wrong kind: b"lo" was read as the
    indexes 108 and 111 (NetworkError), True as index 1 (lo), 1.5 raised AttributeError."""
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(TypeError):
        Querier(interfaces=interfaces)
    assert set(os.listdir("/proc/self/fd")) <= before  # raised before any socket was opened


def test_a_named_interface_left_out_for_a_family_is_logged(
    links: Links, caplog: pytest.LogCaptureFixture
) -> None:
    links(b_v6=False)
    with caplog.at_level(logging.INFO, logger="mdnsq"), Querier(interfaces=[A, B]) as q:
        assert selection(q)[socket.AF_INET6] == [A]
    assert f"{B} has no IPv6 link-local address" in caplog.text
