"""Real socket errors, provoked in the private namespace rather than injected (issue 6 §3).

- ENOBUFS on send: a `pfifo limit 0` qdisc on br0 drops every packet at the device queue. Linux
  reports that to sendto only on a socket with IP_RECVERR / IPV6_RECVERR (otherwise it counts
  SndbufErrors and returns success), so these tests also prove the transport turns them on.
- ENOBUFS on join: net.ipv4.igmp_max_memberships (per network namespace) caps the groups a
  socket may join; at 0 every IP_ADD_MEMBERSHIP fails with ENOBUFS.
- ICMP errors queued by IP_RECVERR (a closed port, or spoofed by a hostile peer): poll reports
  POLLERR until the error queue is read, so an undrained queue turns every wait into a busy
  loop. CPU time across a blocked call is the evidence (a spinning call uses ~all of its wall
  time; the bound is a correctness bound, far above an idle call's few milliseconds).
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import resource
import select
import socket
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import Any

import pytest

from mdnsq import (
    ARecord,
    BufferPool,
    MdnsqError,
    NetworkError,
    Querier,
    UDPv4Transport,
    UDPv6Transport,
)
from tests import netlab
from tests.fakes import response
from tests.test_faults import cpu_and_wall
from tests.test_transport import fds_opened_since, open_fds
from tests.waiting import poll_until

pytestmark = pytest.mark.netns

WAIT = 3.0  # upper bound for something already on its way; never reached on success
CPU_BOUND = 0.2  # seconds of CPU a 1-1.5 s blocked call may use (spinning would use ~1 s)
GROUP4 = ("224.0.0.251", 5353)
KINDS: dict[str, type[UDPv4Transport] | type[UDPv6Transport]] = {
    "v4": UDPv4Transport,
    "v6": UDPv6Transport,
}


@contextlib.contextmanager
def dropping_queue(dev: str) -> Iterator[None]:
    """Every packet sent through ``dev`` is dropped at its queue (NET_XMIT_DROP -> ENOBUFS).

    pfifo with limit 0 also turns off the empty-queue bypass, so nothing gets through."""
    netlab.require_private_netns()
    subprocess.run(
        ["tc", "qdisc", "add", "dev", dev, "root", "pfifo", "limit", "0"],
        check=True,
        capture_output=True,
    )
    try:
        yield
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", dev, "root"], capture_output=True)


@contextlib.contextmanager
def sysctl_set(name: str, value: str) -> Iterator[None]:
    netlab.require_private_netns()
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path) as f:
        previous = f.read().strip()
    netlab.sysctl(f"{name}={value}")
    try:
        yield
    finally:
        netlab.sysctl(f"{name}={previous}")


def peer_socket(host: str, ip_version: str) -> socket.socket:
    """A socket in ``host`` that hears the mDNS group on its eth0."""
    index = netlab.ifindex("eth0", host)
    with netlab.in_netns(host):
        if ip_version == "v4":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("", 5353))
            mreqn = socket.inet_aton(GROUP4[0]) + bytes(4) + struct.pack("@i", index)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::", 5353))
            mreq = socket.inet_pton(socket.AF_INET6, "ff02::fb") + struct.pack("@I", index)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    s.settimeout(WAIT)
    return s


# -- ENOBUFS on send ------------------------------------------------------------------------


@pytest.mark.parametrize("ip_version", ["v4", "v6"])
def test_a_send_the_device_queue_drops_raises_enobufs(lab: netlab.Lab, ip_version: str) -> None:
    host = lab.add_host(1)
    with (
        peer_socket(host, ip_version) as peer,
        KINDS[ip_version]([netlab.BRIDGE]) as t,
    ):
        with dropping_queue(netlab.BRIDGE), pytest.raises(NetworkError) as caught:
            t.send(b"dropped at the queue")
        assert caught.value.errno == errno.ENOBUFS
        assert isinstance(caught.value, MdnsqError) and isinstance(caught.value, OSError)
        assert (t.stats().sent, t.stats().send_errors) == (0, 1)
        t.send(b"after the queue is back")
        # The first datagram never left: the peer's first one is the second.
        assert peer.recvfrom(9000)[0] == b"after the queue is back"
        assert (t.stats().sent, t.stats().send_errors) == (1, 1)


def test_a_send_dropped_on_one_of_two_links_is_counted(lab: netlab.Lab) -> None:
    """The link whose queue drops a query raises nothing while the other link takes it, so
    Querier.stats() said nothing of it: only the transport counted it. Summed now, as
    "interface_send_errors"; "send_errors" stays for packets no interface took."""
    lab.add_host(1)
    with (
        UDPv4Transport([netlab.BRIDGE, "lo"]) as transport,
        Querier(transports=[transport]) as q,
        dropping_queue(netlab.BRIDGE),
    ):
        q.send_query("nobody.local", "A")
        stats = q.stats()
    assert stats["interface_send_errors"] == transport.stats().send_errors == 1
    assert "send_errors" not in stats and stats["packets_sent"] == 1


@pytest.mark.parametrize("ip_version", ["v4", "v6"])
def test_a_resolve_whose_sends_are_all_dropped_returns_empty_at_its_deadline(
    lab: netlab.Lab, ip_version: str
) -> None:
    """The decided behaviour (adr/004): a send error is counted, the call waits for answers
    until its deadline (retransmitting), and returns what it has: here nothing."""
    lab.add_host(1)
    fds_before = open_fds()
    threads_before = set(threading.enumerate())
    pool = BufferPool()
    transport = KINDS[ip_version]([netlab.BRIDGE], pool=pool)
    try:
        with Querier(transports=[transport]) as q, dropping_queue(netlab.BRIDGE):
            result, cpu, wall = cpu_and_wall(lambda: q.resolve_host("nobody", timeout=1.5))
            stats = q.stats()
        tstats = transport.stats()
    finally:
        transport.close()
    print(f"ENOBUFS resolve ({ip_version}): {wall:.2f} s, {cpu:.3f} s CPU, {stats}, {tstats}")
    assert result == []
    assert 1.4 <= wall < 3.0
    assert cpu < CPU_BOUND
    assert stats["send_errors"] >= 2 and stats.get("packets_sent", 0) == 0  # first + retry
    assert tstats.send_errors == stats["send_errors"] and tstats.sent == 0
    assert stats["interface_send_errors"] == tstats.send_errors
    assert pool.stats().in_use == 0
    assert fds_opened_since(fds_before) == set()
    assert set(threading.enumerate()) == threads_before


# -- ENOBUFS on join ------------------------------------------------------------------------


def test_a_join_refused_with_enobufs_is_a_clear_network_error(private_netns: None) -> None:
    fds_before = open_fds()
    with sysctl_set("net.ipv4.igmp_max_memberships", "0"):
        with pytest.raises(NetworkError) as caught:
            UDPv4Transport(["lo"])
        with pytest.raises(NetworkError) as from_querier:
            Querier(interfaces=["lo"], ip_version="v4")
    for exc in (caught.value, from_querier.value):
        assert exc.errno == errno.ENOBUFS
        assert "could not join the mDNS group" in str(exc)
        assert isinstance(exc, MdnsqError)
    assert fds_opened_since(fds_before) == set()
    with UDPv4Transport(["lo"]) as t:  # restored: joins again
        assert t.stats().join_errors == 0


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_running_out_of_descriptors_anywhere_is_a_clear_network_error(
    private_netns: None,
) -> None:
    """EMFILE at each step of opening (the interface list, the socket, its wake-up pair, the
    Querier's own): a NetworkError like any socket that cannot be opened, and nothing left
    open, until the limit allows the whole Querier."""
    gc.collect()  # earlier tests' garbage (a Querier not yet collected) would close meanwhile
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fds_before = open_fds()
    # A limit below the n-th free descriptor leaves exactly n to open, holes included: earlier
    # tests may hold descriptors above the lowest free one.
    held = {int(fd) for fd in fds_before if _is_open(int(fd))}  # not the listing's own
    free = [fd for fd in range(len(held) + 16) if fd not in held]
    failures: list[NetworkError] = []
    for allowed in range(16):
        q: Querier | None = None
        resource.setrlimit(resource.RLIMIT_NOFILE, (free[allowed], hard))
        try:
            q = Querier(interfaces=["lo"], ip_version="v4")
        except NetworkError as exc:
            failures.append(exc)
        finally:  # listing /proc/self/fd below takes a descriptor too
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if q is not None:
            q.close()
            break
        assert fds_opened_since(fds_before) == set(), f"left open with {allowed} to spare"
    assert 3 <= len(failures) < 16  # it failed at several steps, then opened
    assert all(exc.errno == errno.EMFILE for exc in failures)
    assert len({str(exc) for exc in failures}) >= 2
    assert fds_opened_since(fds_before) == set()


def test_a_join_refused_on_one_interface_leaves_the_others(lab: netlab.Lab) -> None:
    lab.add_host(1)
    with (
        sysctl_set("net.ipv4.igmp_max_memberships", "1"),
        UDPv4Transport(["lo", netlab.BRIDGE]) as t,
    ):
        assert [i.name for i in t.interfaces] == ["lo"]
        assert t.stats().join_errors == 1
        t.send(b"still works on lo")
        got = t.receive(WAIT)
        assert got is not None and got.data == b"still works on lo"


def test_a_transport_that_lost_an_interface_at_join_is_freed_without_the_collector(
    lab: netlab.Lab,
) -> None:
    """The join error kept for the message must not tie the transport into a reference cycle:
    dropped without close(), its socket would stay open until a garbage collection."""
    lab.add_host(1)
    with sysctl_set("net.ipv4.igmp_max_memberships", "1"):
        gc.disable()
        try:
            fds_before = open_fds()
            t = UDPv4Transport(["lo", netlab.BRIDGE])
            assert t.stats().join_errors == 1
            gone = weakref.ref(t)
            del t
            assert gone() is None
            assert fds_opened_since(fds_before) == set()
        finally:
            gc.enable()


# -- queued ICMP errors ---------------------------------------------------------------------


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_for_pollerr(fd: int) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    events = poller.poll(WAIT * 1000)
    assert events and events[0][1] & select.POLLERR, events


def pollerr_now(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return any(mask & select.POLLERR for _, mask in poller.poll(0))


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def spoofed_port_unreachable(victim: str = "127.0.0.2", dest: str = "127.0.0.1") -> bytes:
    """ICMP port unreachable about a datagram victim:5353 -> dest:9, which the victim never
    sent: what a hostile host on the link can send at will."""
    payload = b"\0" * 12
    udp = struct.pack("!4H", 5353, 9, 8 + len(payload), 0) + payload
    src, dst = socket.inet_aton(victim), socket.inet_aton(dest)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + ip + udp
    return icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]


@pytest.mark.parametrize("ip_version", ["v4", "v6"])
def test_an_icmp_error_is_drained_and_the_wait_does_not_spin(
    lab: netlab.Lab, ip_version: str
) -> None:
    t: UDPv4Transport | UDPv6Transport
    if ip_version == "v4":
        t, dest = UDPv4Transport(["lo"]), ("127.0.0.1", closed_udp_port())
    else:  # nothing listens on port 9 in h1: it answers with an ICMPv6 port unreachable
        host = lab.add_host(1)
        t, dest = UDPv6Transport([netlab.BRIDGE]), (netlab.link_local("eth0", host), 9)
    with t:
        t.send(b"to nobody", dest=dest)
        wait_for_pollerr(t.fileno())  # the port unreachable is queued on the socket
        got, cpu, wall = cpu_and_wall(lambda: t.receive(1.0))
        stats = t.stats()
        print(f"queued ICMP error ({ip_version}): {wall:.2f} s, {cpu:.3f} s CPU, {stats}")
        assert got is None
        assert cpu < CPU_BOUND
        assert stats.drained_errors == 1
        assert stats.receive_errors == 1  # ECONNREFUSED, reported once by the read
        assert not pollerr_now(t.fileno())
        t.send(b"a real datagram")
        got = t.receive(WAIT)
        assert got is not None and got.data == b"a real datagram"


def test_a_send_after_an_icmp_error_is_not_lost(private_netns: None) -> None:
    """The queued error is returned by the next sendto, which sends nothing: it is retried."""
    with UDPv4Transport(["lo"]) as t:
        t.send(b"to nobody", dest=("127.0.0.1", closed_udp_port()))
        wait_for_pollerr(t.fileno())
        t.send(b"the next query")
        got = t.receive(WAIT)
        assert got is not None and got.data == b"the next query"
        stats = t.stats()
        assert (stats.sent, stats.send_errors, stats.drained_errors) == (2, 0, 1)


class DrainedByAnotherThread:
    """The transport's socket, as seen when a receiving thread (woken by the same POLLERR)
    drains the error queue between this thread's failed sendto and its own drain."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.drained = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def sendto(self, *args: Any) -> int:
        try:
            return self.sock.sendto(*args)
        except OSError:
            with contextlib.suppress(BlockingIOError):
                while True:
                    self.sock.recvmsg(0, 256, socket.MSG_ERRQUEUE)
                    self.drained += 1
            raise


def test_a_send_after_an_icmp_error_another_thread_drained_is_not_lost(
    private_netns: None,
) -> None:
    with UDPv4Transport(["lo"]) as t:
        t.send(b"to nobody", dest=("127.0.0.1", closed_udp_port()))
        wait_for_pollerr(t.fileno())
        t._sock = racing = DrainedByAnotherThread(t._sock)  # type: ignore[assignment]
        t.send(b"the next query")
        assert racing.drained == 1  # the race did happen: this thread's drain found nothing
        got = t.receive(WAIT)
        assert got is not None and got.data == b"the next query"
        assert (t.stats().sent, t.stats().send_errors) == (2, 0)


def test_spoofed_icmp_errors_during_a_query_neither_spin_nor_hide_the_answer(
    private_netns: None,
) -> None:
    pool = BufferPool()
    transport = UDPv4Transport(["lo"], pool=pool)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    answerer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answerer.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    answerer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    answerer.bind(("127.0.0.1", 5353))  # RFC 6762 §6: responses come from port 5353
    # Shared (no cache-flush) answer: the query does not end early, so the whole second of
    # waiting after the burst is measured.
    answer = response(
        ARecord(name="spoofed.local", ttl=120, address=IPv4Address("192.0.2.9"), cache_flush=False)
    )
    burst = 100
    q = Querier(transports=[transport])

    def attack() -> None:
        poll_until(lambda: bool(q._tasks), WAIT)  # the call is inside the Querier
        # About 127.0.0.2:5353, so that only the Querier's wildcard socket matches it, not
        # the answerer bound to 127.0.0.1:5353.
        for _ in range(burst):
            raw.sendto(spoofed_port_unreachable(), ("127.0.0.1", 0))
        answerer.sendto(answer, GROUP4)

    attacker = threading.Thread(target=attack)
    try:
        attacker.start()
        records, cpu, wall = cpu_and_wall(lambda: q.query("spoofed.local", "A", timeout=1.0))
        attacker.join()
        stats = transport.stats()
    finally:
        q.close()
        transport.close()
        raw.close()
        answerer.close()
    print(f"{burst} spoofed ICMP errors: {wall:.2f} s, {cpu:.3f} s CPU, {stats}")
    assert [str(r.address) for r in records if isinstance(r, ARecord)] == ["192.0.2.9"]
    assert cpu < CPU_BOUND
    assert stats.drained_errors == burst
    assert pool.stats().in_use == 0


FLOODER = """
import socket, sys
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
packet = bytes.fromhex(sys.argv[1])
print("flooding", flush=True)
while True:
    raw.sendto(packet, ("127.0.0.1", 0))
"""


def test_an_icmp_flood_never_fails_a_blocking_receive(private_netns: None) -> None:
    """Each spoofed error that lands between a drain and the next read is reported by that read
    (ECONNREFUSED). They are transient, not "the same error without end": only errors with no
    empty read between them count towards giving up. (Counted over the whole call, a
    flood made receive(2.5) raise within a fraction of a second.)"""
    with UDPv4Transport(["lo"]) as t:
        flooder = subprocess.Popen(
            [sys.executable, "-c", FLOODER, spoofed_port_unreachable().hex()],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert flooder.stdout is not None and flooder.stdout.readline() == "flooding\n"
            got = t.receive(1.0)
        finally:
            flooder.kill()
            flooder.wait()
        stats = t.stats()
    print(f"ICMP flood during receive(1.0): {stats}")
    assert got is None
    # The flood did reach the read, more often than one call's limit of errors in a row.
    assert stats.receive_errors > 64 and stats.drained_errors > stats.receive_errors


def test_an_ipv6_join_refused_is_a_clear_network_error(lab: netlab.Lab) -> None:
    """IPv6 has no membership cap; its join allocates from optmem_max (per namespace), so at
    0 it fails with ENOMEM."""
    lab.add_host(1)
    with sysctl_set("net.core.optmem_max", "0"), pytest.raises(NetworkError) as caught:
        UDPv6Transport([netlab.BRIDGE])
    assert caught.value.errno == errno.ENOMEM
    assert "could not join the mDNS group" in str(caught.value)
    with UDPv6Transport([netlab.BRIDGE]) as t:
        assert t.stats().join_errors == 0
