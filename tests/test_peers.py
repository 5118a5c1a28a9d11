"""Self-tests of the interop peers (tests/peers.py), independent of mdnsq's own code.

The peers are the yardstick for the querier, so they are checked with dnspython and plain
sockets: they answer over IPv4 and IPv6 on the bridge, names with dots/spaces/UTF-8 survive as
one label (Avahi), goodbyes go out when a peer withdraws a service, a vanished peer says
nothing, and closing leaves no process behind.
"""

from __future__ import annotations

import os
import random
import select
import socket
import struct
import time
from collections.abc import Callable

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import pytest

from tests import netlab
from tests.peers import (
    AvahiBrowser,
    AvahiPeer,
    PeerLab,
    Service,
    ZeroconfPeer,
    avahi_installed,
    avahi_unescape,
    service_file,
)

MDNS_V4 = "224.0.0.251"
MDNS_V6 = "ff02::fb"

Messages = list[tuple[str, dns.message.Message]]


def _socket(v6: bool, port: int = 0) -> socket.socket:
    idx = socket.if_nametoindex(netlab.BRIDGE)
    if v6:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, idx)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        if port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::", port))
            mreq = socket.inet_pton(socket.AF_INET6, MDNS_V6) + struct.pack("@I", idx)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        return sock
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bridge = socket.inet_aton(netlab.BRIDGE_V4)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, bridge)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    if port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", port))
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(MDNS_V4) + bridge
        )
    return sock


def _collect(
    sock: socket.socket, timeout: float, done: Callable[[Messages], bool] = lambda m: False
) -> Messages:
    got: Messages = []
    deadline = time.monotonic() + timeout
    while not done(got):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([sock], [], [], remaining)[0]:
            break
        data, source = sock.recvfrom(9000)
        try:
            message = dns.message.from_wire(data)
        except dns.exception.FormError:
            # python-zeroconf writes an empty TXT as RDLENGTH 0, which dnspython rejects.
            continue
        got.append((source[0].split("%")[0], message))
    return got


def ask(name: str, rdtype: str, *, v6: bool, from_peer: str, timeout: float = 3.0) -> Messages:
    """A legacy-unicast query (RFC 6762 §6.7) over the bridge; replies from ``from_peer``."""
    query = dns.message.make_query(name, rdtype)
    query.flags = 0
    query.id = random.randrange(1, 65536)  # python-zeroconf drops repeats of a recent packet
    with _socket(v6) as sock:
        dest = (MDNS_V6, 5353, 0, socket.if_nametoindex(netlab.BRIDGE)) if v6 else (MDNS_V4, 5353)
        sock.sendto(query.to_wire(), dest)
        got = _collect(sock, timeout, lambda m: any(src == from_peer for src, _ in m))
    return [(src, msg) for src, msg in got if src == from_peer]


def records(messages: Messages) -> list[tuple[dns.name.Name, int, int, object]]:
    out = []
    for _, msg in messages:
        for section in (msg.answer, msg.additional):
            for rrset in section:
                out.extend((rrset.name, rrset.rdtype, rrset.ttl, rdata) for rdata in rrset)
    return out


@pytest.fixture(scope="module")
def zc(peer_lab: PeerLab) -> ZeroconfPeer:
    return ZeroconfPeer.in_lab(peer_lab, sample=True)


@pytest.fixture(scope="module")
def avahi(peer_lab: PeerLab) -> AvahiPeer:
    if not avahi_installed():
        pytest.skip("avahi-daemon not installed")
    return AvahiPeer(peer_lab, sample=True)


def _check_printer(peer: ZeroconfPeer | AvahiPeer, messages: Messages, v6: bool) -> None:
    assert messages, "no reply"
    printer = peer.sample.printer
    found = records(messages)
    ptrs = [r for n, t, _, r in found if t == dns.rdatatype.PTR]
    targets = [r.target for r in ptrs]  # type: ignore[attr-defined]
    assert any(t.labels[0].decode() == printer.instance for t in targets), targets
    srvs = [r for n, t, _, r in found if t == dns.rdatatype.SRV]
    if srvs:  # both peers include SRV with the PTR answer
        assert srvs[0].port == printer.port  # type: ignore[attr-defined]
        assert srvs[0].target.to_text() == f"{peer.host_name}."  # type: ignore[attr-defined]
    txts = [r for n, t, _, r in found if t == dns.rdatatype.TXT]
    if txts:
        strings = list(txts[0].strings)  # type: ignore[attr-defined]
        assert b"blob1=" + b"a" * 240 in strings
        assert "note=Büro 3 – Café, 2. Stock".encode() in strings
    addresses = {str(r) for n, t, _, r in found if t in (dns.rdatatype.A, dns.rdatatype.AAAA)}
    assert str(peer.ipv6 if v6 else peer.ipv4) in addresses


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_zeroconf_peer_answers_browse_over_bridge(zc: ZeroconfPeer, v6: bool) -> None:
    source = str(zc.ipv6 if v6 else zc.ipv4)
    messages = ask("_ipp._tcp.local.", "PTR", v6=v6, from_peer=source)
    _check_printer(zc, messages, v6)


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_avahi_peer_answers_browse_over_bridge(avahi: AvahiPeer, v6: bool) -> None:
    source = str(avahi.ipv6 if v6 else avahi.ipv4)
    messages = ask("_ipp._tcp.local.", "PTR", v6=v6, from_peer=source)
    _check_printer(avahi, messages, v6)


def test_avahi_keeps_dots_inside_one_label(avahi: AvahiPeer) -> None:
    web = avahi.sample.web
    assert "." in web.instance
    messages = ask("_http._tcp.local.", "PTR", v6=False, from_peer=str(avahi.ipv4))
    targets = [r.target for _, t, _, r in records(messages) if t == dns.rdatatype.PTR]  # type: ignore[attr-defined]
    assert [t.labels[0].decode() for t in targets] == [web.instance]
    assert web.name.startswith("web\\.server v2\\.0 (")


def test_avahi_publishes_subtype(avahi: AvahiPeer) -> None:
    messages = ask("_universal._sub._ipp._tcp.local.", "PTR", v6=False, from_peer=str(avahi.ipv4))
    _check_printer(avahi, messages, v6=False)


def test_service_file_escapes_xml() -> None:
    text = service_file(Service("a <b> & c", "_x._tcp", 1, txt={"k": "<v>", "flag": None}))
    assert "<name>a &lt;b&gt; &amp; c</name>" in text
    assert "<txt-record>k=&lt;v&gt;</txt-record>" in text
    assert "<txt-record>flag</txt-record>" in text


def _goodbyes(messages: Messages, source: str) -> list[str]:
    """Instance labels whose PTR came with TTL 0 (service-type PTRs left out)."""
    return [
        rdata.target.labels[0].decode()  # type: ignore[attr-defined]
        for name, rtype, ttl, rdata in records([m for m in messages if m[0] == source])
        if rtype == dns.rdatatype.PTR and ttl == 0 and name.labels[0] != b"_services"
    ]


def test_zeroconf_unregister_and_interrupt_send_goodbyes(peer_lab: PeerLab) -> None:
    one = Service("goodbye one", "_gb._tcp", 1, txt={"v": "1"})
    two = Service("goodbye two", "_gb._tcp", 2, txt={"v": "2"})
    peer = ZeroconfPeer.in_lab(peer_lab, [one, two])
    source = str(peer.ipv4)
    with _socket(v6=False, port=5353) as listener:
        peer.unregister(one)  # returns after its goodbyes went out
        got = _collect(listener, 2.0, lambda m: one.instance in _goodbyes(m, source))
        assert _goodbyes(got, source) == [one.instance]
        peer.interrupt()
        assert peer.proc.returncode == 130
        got = _collect(listener, 2.0, lambda m: two.instance in _goodbyes(m, source))
        assert two.instance in _goodbyes(got, source)


def test_zeroconf_vanish_sends_nothing(peer_lab: PeerLab) -> None:
    service = Service("vanishing", "_gb._tcp", 3, txt={"v": "3"})
    peer = ZeroconfPeer.in_lab(peer_lab, [service])
    with _socket(v6=False, port=5353) as listener:
        # No wait for its announcements first: they carry TTL > 0, so they never count as goodbyes.
        peer.vanish()
        assert not peer.running()
        assert _goodbyes(_collect(listener, 0.5), str(peer.ipv4)) == []


def test_avahi_adds_and_removes_services_at_run_time(avahi: AvahiPeer) -> None:
    extra = Service("Späť.Extra service", "_extra._tcp", 4242, txt={"a": "1"})
    source = str(avahi.ipv4)
    with _socket(v6=False, port=5353) as listener:
        avahi.add(extra)
        messages = ask("_extra._tcp.local.", "PTR", v6=False, from_peer=source)
        targets = [r.target for _, t, _, r in records(messages) if t == dns.rdatatype.PTR]  # type: ignore[attr-defined]
        assert [t.labels[0].decode() for t in targets] == [extra.instance], avahi.log()
        avahi.remove(extra)
        got = _collect(listener, 3.0, lambda m: extra.instance in _goodbyes(m, source))
        assert _goodbyes(got, source) == [extra.instance]
    assert extra not in avahi.services


def _processes() -> list[str]:
    """Command lines of every process in this PID namespace (netns-run mounts its own /proc)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out.append(f.read().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                pass
    return out


def test_closing_peers_leaves_no_process_or_host(
    peer_lab: PeerLab,
    make_zeroconf_peer: Callable[..., ZeroconfPeer],
    request: pytest.FixtureRequest,
) -> None:
    zc_peer = make_zeroconf_peer([Service("closing", "_close._tcp", 1, txt={"v": "1"})])
    peers: list[ZeroconfPeer | AvahiPeer] = [zc_peer]
    if avahi_installed():
        make_avahi_peer = request.getfixturevalue("make_avahi_peer")
        peers.append(make_avahi_peer([Service("closing too", "_close._tcp", 2)]))
    for peer in peers:
        peer.close()
        assert peer.proc.returncode is not None
        peer_lab.remove_host(peer.host or "")
        assert not os.path.exists(f"/run/netns/{peer.host}")
    pids = {str(peer.proc.pid) for peer in peers}
    assert not pids & set(os.listdir("/proc"))
    # Still-running peers of this module are the fixtures' own, nothing else.
    left = [c for c in _processes() if "avahi-daemon" in c or "zeroconf_peer" in c]
    assert len(left) == len([p for p in peer_lab.peers if p.running()])


def test_avahi_browse_reference_sees_both_peers(
    avahi_browser: AvahiBrowser, avahi: AvahiPeer, zc: ZeroconfPeer
) -> None:
    result = avahi_browser.browse("-k", "_ipp._tcp")
    assert result.returncode == 0, result.stderr
    resolved = [line.split(";") for line in result.stdout.splitlines() if line.startswith("=;")]
    by_key = {(avahi_unescape(f[3]), f[2]): f for f in resolved}
    for peer in (avahi, zc):
        printer = peer.sample.printer
        fields = by_key[(printer.instance, "IPv4")]
        assert fields[1] == "eth0"  # interface names are the browser host's
        assert fields[4:9] == ["_ipp._tcp", "local", peer.host_name, str(peer.ipv4), "631"]
        assert f'"blob1={"a" * 240}"' in fields[9]
    assert avahi_unescape(r"Dr\.\032Who\226\128\153s") == "Dr. Who’s"
