"""The querier against real peers: python-zeroconf and Avahi, IPv4 and IPv6 over the bridge.

Issue 4 §4. The peers are module-scoped and never mutated here (tests that change a peer live
in test_interop_querier_events.py). Every call gets a generous deadline; a test asserts what
came back and, for the early-completion tests, that the call returned well before its deadline.

python-zeroconf drops a query byte-identical to one it received in the last second (even
across IPv4/IPv6); a fresh Querier sends the same bytes each time, so a test following another
one's identical question is answered after the querier's retransmission (1 s later) instead.
Deadlines allow for that; the early-completion tests ask questions nobody else asks.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable

import pytest

import mdnsq
from mdnsq import AAAARecord, ARecord, Querier, ServiceInfo, TXTRecord
from tests import netlab
from tests.peers import AvahiPeer, Service, ZeroconfPeer

Peer = ZeroconfPeer | AvahiPeer
BR = [netlab.BRIDGE]

PEERS = ["zeroconf", "avahi"]
FAMILIES = ["v4", "v6"]


@pytest.fixture(params=PEERS)
def peer(request: pytest.FixtureRequest) -> Peer:
    result: Peer = request.getfixturevalue(f"{request.param}_peer")
    return result


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    result: str = request.param
    return result


def plain(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address without its IPv6 scope."""
    return str(address).split("%")[0]


def expected_address(peer: Peer, family: str) -> str:
    return str(peer.ipv4 if family == "v4" else peer.ipv6)


def check_info(info: ServiceInfo | None, peer: Peer, service: Service, family: str) -> None:
    """Every ServiceInfo field against what the peer published."""
    assert info is not None, f"{service.name} not resolved"
    assert info.name == service.name
    assert info.instance == service.instance
    assert info.type == service.full_type
    assert info.host.lower() == peer.host_name.lower()
    assert info.port == service.port
    assert (info.priority, info.weight) == (0, 0)
    assert dict(info.txt) == service.txt_properties
    assert expected_address(peer, family) in [plain(a) for a in info.addresses]
    bridge = socket.if_nametoindex(netlab.BRIDGE)
    assert info.interface == bridge
    for address in info.addresses:
        if isinstance(address, ipaddress.IPv6Address) and address.is_link_local:
            assert address.scope_id == str(bridge)
    assert 0 < info.ttl <= 4500


def test_resolve_host(peer: Peer, family: str) -> None:
    addresses = mdnsq.resolve_host(peer.host_name, timeout=5.0, interfaces=BR, ip_version=family)
    assert expected_address(peer, family) in [plain(a) for a in addresses]
    for address in addresses:
        if isinstance(address, ipaddress.IPv6Address):
            assert address.scope_id == str(socket.if_nametoindex(netlab.BRIDGE))
    # Nothing that is not the peer's: both families may come back, but only its own addresses.
    assert {plain(a) for a in addresses} <= {str(a) for a in peer.addresses}


def test_browse(peer: Peer, family: str) -> None:
    infos = mdnsq.browse("_ipp._tcp", timeout=2.0, interfaces=BR, ip_version=family)
    mine = [i for i in infos if i.name == peer.sample.printer.name]
    assert len(mine) == 1, [i.name for i in infos]
    check_info(mine[0], peer, peer.sample.printer, family)
    assert len({i.name for i in infos}) == len(infos), "an instance was reported twice"


def test_browse_generator_yields_each_instance_as_it_resolves(peer: Peer, family: str) -> None:
    wanted = peer.sample.web
    started = time.monotonic()
    with Querier(BR, family) as q:
        for info in q.browse("_http._tcp.local.", timeout=10.0):
            if info.name == wanted.name:
                break
        else:
            pytest.fail(f"{wanted.name} not browsed")
    assert time.monotonic() - started < 5.0, "the generator held the instance back"
    check_info(info, peer, wanted, family)


def test_resolve_service_by_full_name(peer: Peer, family: str) -> None:
    service = peer.sample.printer
    info = mdnsq.resolve_service(service.name, timeout=5.0, interfaces=BR, ip_version=family)
    check_info(info, peer, service, family)


def test_resolve_service_by_instance_and_type(peer: Peer, family: str) -> None:
    service = peer.sample.web
    info = mdnsq.resolve_service(
        instance=service.instance,
        type=service.type + ".local.",
        timeout=5.0,
        interfaces=BR,
        ip_version=family,
    )
    check_info(info, peer, service, family)


def test_query_address_and_txt(peer: Peer, family: str) -> None:
    rtype = "A" if family == "v4" else "AAAA"
    with Querier(BR, family) as q:
        records = q.query(peer.host_name, rtype, timeout=5.0)
        assert records, f"no {rtype} for {peer.host_name}"
        kind = ARecord if family == "v4" else AAAARecord
        assert all(isinstance(r, kind) for r in records)
        assert expected_address(peer, family) in [plain(r.address) for r in records]  # type: ignore[attr-defined]
        txt = q.query(peer.sample.printer.name, "TXT", timeout=5.0)
    assert len(txt) == 1 and isinstance(txt[0], TXTRecord)
    assert dict(txt[0].properties) == peer.sample.printer.txt_properties
    assert b"blob2=" + b"b" * 240 in txt[0].strings


def test_query_type_nobody_has_returns_empty_at_deadline(peer: Peer) -> None:
    started = time.monotonic()
    assert mdnsq.query(peer.host_name, "HINFO", timeout=1.0, interfaces=BR, ip_version="v4") == []
    assert time.monotonic() - started < 3.0  # the deadline is kept


def test_service_types(peer: Peer, family: str) -> None:
    types = mdnsq.service_types(timeout=2.0, interfaces=BR, ip_version=family)
    for service in peer.sample:
        assert service.full_type in types
    assert len(set(types)) == len(types)


def test_subtype_browse(avahi_peer: AvahiPeer) -> None:
    # python-zeroconf cannot publish one instance under both type and subtype; Avahi can.
    infos = mdnsq.browse("_universal._sub._ipp._tcp", timeout=2.0, interfaces=BR, ip_version="v4")
    mine = [i for i in infos if i.name == avahi_peer.sample.printer.name]
    assert len(mine) == 1
    check_info(mine[0], avahi_peer, avahi_peer.sample.printer, "v4")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda q, p: q.resolve_service(p.sample.ssh.name, timeout=10.0), id="service"),
        pytest.param(lambda q, p: q.resolve_host(p.host_name, timeout=10.0), id="host"),
    ],
)
def test_early_completion(peer: Peer, call: Callable[[Querier, Peer], object]) -> None:
    """A complete answer ends the call long before its 10 s deadline."""
    with Querier(BR, "any") as q:
        started = time.monotonic()
        result = call(q, peer)
        elapsed = time.monotonic() - started
    assert result
    assert elapsed < 5.0, f"took {elapsed:.2f} s of a 10 s deadline"


def test_resolve_service_after_browse_is_answered_from_the_cache(peer: Peer) -> None:
    wanted = peer.sample.ssh
    with Querier(BR, "v4") as q:
        browsing = q.browse("_ssh._tcp", timeout=10.0)
        assert any(i.name == wanted.name for i in browsing)
        browsing.close()
        sent_before = q.stats()["packets_sent"]
        assert sent_before > 0
        started = time.monotonic()
        info = q.resolve_service(wanted.name, timeout=5.0)
        assert time.monotonic() - started < 2.0  # of 5 s: it did not wait
        assert q.stats()["packets_sent"] == sent_before  # nothing asked: the cache had it all
    check_info(info, peer, wanted, "v4")


def test_100_threads_share_one_querier(peer: Peer) -> None:
    names = [peer.sample.printer.name, peer.sample.web.name, peer.sample.ssh.name]
    services = {s.name: s for s in peer.sample}
    results: dict[int, ServiceInfo | None] = {}
    errors: list[BaseException] = []
    threads_before = set(threading.enumerate())
    with Querier(BR, "v4") as q:
        barrier = threading.Barrier(100)

        def worker(i: int) -> None:
            try:
                barrier.wait(10)
                results[i] = q.resolve_service(names[i % 3], timeout=15.0)
            except BaseException as exc:  # reported below, with the thread's index
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(results) == 100
    for i, info in results.items():
        check_info(info, peer, services[names[i % 3]], "v4")
    assert set(threading.enumerate()) == threads_before  # the Querier started no thread


@pytest.mark.parametrize("family", FAMILIES)
def test_one_shot_gets_the_legacy_unicast_reply(peer: Peer, family: str) -> None:
    # The web service: Avahi drops records that do not fit a 512-byte legacy unicast reply,
    # so the printer's long TXT record never comes back to a one-shot querier from Avahi.
    service = peer.sample.web
    with Querier(BR, family, one_shot=True) as q:
        info = q.resolve_service(service.name, timeout=5.0)
        addresses = q.resolve_host(peer.host_name, timeout=5.0)
    check_info(info, peer, service, family)
    assert expected_address(peer, family) in [plain(a) for a in addresses]


def test_default_interfaces_find_the_peers(
    zeroconf_peer: ZeroconfPeer, avahi_peer: AvahiPeer
) -> None:
    # No interfaces given: the querier picks the usable ones itself (here br0, not lo).
    with Querier() as q:
        for peer in (zeroconf_peer, avahi_peer):
            addresses = q.resolve_host(peer.host_name, timeout=5.0)
            # Whichever family answers first wins the settle window (Avahi may hold back its
            # A record for a second after multicasting it), so any of its addresses will do.
            found = {plain(a) for a in addresses}
            assert found and found <= {str(a) for a in peer.addresses}, (peer.host_name, found)


def test_one_shot_avahi_long_txt_partial_answer_at_the_deadline(avahi_peer: AvahiPeer) -> None:
    # Avahi drops records that do not fit a 512-byte legacy unicast reply, so the printer's
    # long TXT never reaches a one-shot querier: the call keeps its deadline and returns what
    # it has (SRV and address), as the contract says.
    printer = avahi_peer.sample.printer
    with Querier(BR, "v4", one_shot=True) as q:
        started = time.monotonic()
        info = q.resolve_service(printer.name, timeout=2.0)
        elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert info is not None
    assert (info.host, info.port) == (avahi_peer.host_name, printer.port)
    assert str(avahi_peer.ipv4) in [plain(a) for a in info.addresses]
    assert dict(info.txt) == {}
