"""The transport against real peers: a query sent through UDPv4Transport / UDPv6Transport is
answered by python-zeroconf and by Avahi, and the reply arrives on the bridge's index.

Only the transport and the codec are used (no querier): this pins down sockets, group joins,
multicast interface, TTL and the source port, the things a peer silently ignores when wrong
(Avahi drops queries from 0.0.0.0 and responses from ports other than 5353).
"""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from mdnsq import (
    Message,
    PTRRecord,
    RecordType,
    SRVRecord,
    UDPv4Transport,
    UDPv6Transport,
    build_query,
    parse_message,
)
from mdnsq.names import name_key, split_name
from tests import netlab
from tests.peers import AvahiPeer, ZeroconfPeer

_ids = itertools.count(0x4D00)  # python-zeroconf drops a byte-identical repeat within 1 s


def exchange(
    transport: UDPv4Transport | UDPv6Transport,
    name: str,
    rtype: RecordType,
    source: str,
    *,
    query_id: int = 0,
    timeout: float = 4.0,
) -> tuple[Message, tuple[str, int], int] | None:
    """Send one query; return the first response from ``source`` that answers it."""
    transport.send(build_query(name, rtype, id=query_id))
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        datagram = transport.receive(remaining)
        if datagram is None:
            break
        message = parse_message(datagram.data)
        # Skip the peer's unsolicited announcements: wait for an answer to our question.
        answered = any(
            r.type == rtype and name_key(r.name) == name_key(name) for r in message.answers
        )
        if datagram.source[0] == source and message.is_response and answered:
            return message, datagram.source, datagram.interface
    return None


def _check_browse_answer(
    reply: tuple[Message, tuple[str, int], int] | None,
    peer: ZeroconfPeer | AvahiPeer,
    port: int,
) -> None:
    assert reply is not None, "no answer from the peer"
    message, source, interface = reply
    assert source[1] == port
    assert interface == socket.if_nametoindex(netlab.BRIDGE)
    ptrs = [
        r
        for r in message.answers
        if isinstance(r, PTRRecord) and name_key(r.name) == "_ipp._tcp.local"
    ]
    printer = peer.sample.printer
    assert [split_name(r.target)[0] for r in ptrs] == [printer.instance]
    assert ptrs[0].target.lower() == printer.name.lower()
    srvs = [
        r
        for r in message.records
        if isinstance(r, SRVRecord) and name_key(r.name) == name_key(printer.name)
    ]
    assert [(s.port, s.target.lower()) for s in srvs] == [(printer.port, peer.host_name.lower())]


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_zeroconf_answers_a_query_sent_through_the_transport(
    zeroconf_peer: ZeroconfPeer, family: str
) -> None:
    cls = UDPv4Transport if family == "v4" else UDPv6Transport
    source = str(zeroconf_peer.ipv4 if family == "v4" else zeroconf_peer.ipv6)
    with cls(interfaces=[netlab.BRIDGE]) as transport:
        reply = exchange(transport, "_ipp._tcp.local", RecordType.PTR, source, query_id=next(_ids))
    _check_browse_answer(reply, zeroconf_peer, 5353)


@pytest.mark.parametrize("family", ["v4", "v6"])
def test_avahi_answers_a_query_sent_through_the_transport(
    avahi_peer: AvahiPeer, family: str
) -> None:
    cls = UDPv4Transport if family == "v4" else UDPv6Transport
    source = str(avahi_peer.ipv4 if family == "v4" else avahi_peer.ipv6)
    with cls(interfaces=[netlab.BRIDGE]) as transport:
        reply = exchange(transport, "_ipp._tcp.local", RecordType.PTR, source)
    _check_browse_answer(reply, avahi_peer, 5353)


@pytest.mark.parametrize("peer_name", ["zeroconf_peer", "avahi_peer"])
def test_one_shot_port_gets_a_legacy_unicast_reply(
    peer_name: str, request: pytest.FixtureRequest
) -> None:
    peer = request.getfixturevalue(peer_name)
    with UDPv4Transport(interfaces=[netlab.BRIDGE], port=0) as transport:
        query_id = next(_ids)
        reply = exchange(
            transport, f"{peer.hostname}.local", RecordType.A, str(peer.ipv4), query_id=query_id
        )
    assert reply is not None
    message, source, _ = reply
    assert source[1] == 5353
    assert message.id == query_id  # §6.7: a legacy unicast reply echoes the ID
    assert [str(r.address) for r in message.answers if r.type == RecordType.A] == [str(peer.ipv4)]
