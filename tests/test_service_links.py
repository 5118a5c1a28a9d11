"""One instance name heard on two links (fifteenth session's review, finding 1; RFC 6762 §14:
records heard on one link say nothing about another).

A machine on two networks (Wi-Fi and Ethernet, a VPN, a container bridge) may see two devices
publish one default name, one on each. A ServiceInfo mixed them: the newest SRV record of
either link (a watch swapped devices at each announcement), the newest TXT record of either,
the addresses of the SRV target from both. Now an info is read from one interface: the one
of the instance's first PTR record when it has an SRV record there, else the one of the SRV
record filed first; its TXT record and addresses only as received there. browse, watch and
resolve_service still give one info per name.

The cache tests need no network; the Querier tests run on tests/fakes.py's FakeNet; the last
test puts a python-zeroconf peer on each of two bridges (inside tests/netns-run)."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Interface, IPv6Address

import pytest

from mdnsq import Message, NetworkError, Querier, Record, RecordType, encode_message
from mdnsq.cache import RecordCache
from mdnsq.interfaces import Interface
from mdnsq.names import name_key
from mdnsq.records import NSECRecord, Question
from mdnsq.service import ServiceInfo, build_service_info, service_unavailable
from mdnsq.tasks import missing_questions
from tests.fakes import (
    IFINDEX,
    LAN,
    PEER,
    FakeNet,
    FakeTransport,
    a,
    aaaa,
    ptr,
    response,
    srv,
    txt,
)

IPP = "_ipp._tcp.local"
NAME = f"Shared Printer.{IPP}"
A_LINK, B_LINK = 2, 3
T0 = 1000.0

pytestmark = pytest.mark.usefixtures("no_first_delay")


def file(cache: RecordCache, interface: int, now: float, *records: object) -> None:
    cache.add_all(records, interface, now)  # type: ignore[arg-type]


def device_a(cache: RecordCache, now: float, port: int = 631) -> None:
    file(
        cache,
        A_LINK,
        now,
        ptr(IPP, NAME),
        srv(NAME, "zc-a.local", port),
        txt(NAME, b"where=link A"),
        a("zc-a.local", "192.0.2.2"),
    )


def device_b(cache: RecordCache, now: float, host: str = "zc-b.local") -> None:
    file(
        cache,
        B_LINK,
        now,
        ptr(IPP, NAME),
        srv(NAME, host, 9100),
        txt(NAME, b"where=link B"),
        a(host, "198.51.100.1"),
    )


def info_at(cache: RecordCache, now: float, with_ptr: bool = True) -> ServiceInfo:
    first_ptr = cache.entries(IPP, RecordType.PTR, now)[0] if with_ptr else None
    info = build_service_info(cache, NAME, now, first_ptr)
    assert info is not None
    return info


def test_a_later_srv_record_from_another_link_does_not_take_over() -> None:
    """The newest SRV record of any link won: each announcement of either device swapped
    host, port and TXT, and a watch reported that as an update."""
    cache = RecordCache()
    device_a(cache, T0)
    device_b(cache, T0 + 1)
    for with_ptr in (True, False):
        info = info_at(cache, T0 + 1, with_ptr)
        assert (info.host, info.port, info.interface) == ("zc-a.local", 631, A_LINK)
        assert info.txt == {"where": b"link A"}
        assert info.addresses == (IPv4Address("192.0.2.2"),)


def test_the_choice_stays_while_both_links_refresh_their_records() -> None:
    cache = RecordCache()
    device_a(cache, T0)
    device_b(cache, T0 + 1)
    for step, refresh in enumerate([device_b, device_a, device_b, device_b]):
        now = T0 + 10 * (step + 1)
        refresh(cache, now)
        for with_ptr in (True, False):
            assert info_at(cache, now, with_ptr).interface == A_LINK


def test_a_txt_record_from_the_other_link_is_not_borrowed() -> None:
    """What a TXT refresh query gets back from the other link's device: it replaced the TXT
    of the device whose host and port the info showed."""
    cache = RecordCache()
    device_a(cache, T0)
    device_b(cache, T0 + 1)
    file(cache, B_LINK, T0 + 2, txt(NAME, b"where=link B (TXT refresh)"))
    info = info_at(cache, T0 + 2)
    assert info.interface == A_LINK
    assert info.txt == {"where": b"link A"}


def test_without_a_txt_record_on_its_link_an_info_is_incomplete() -> None:
    cache = RecordCache()
    file(
        cache,
        A_LINK,
        T0,
        ptr(IPP, NAME),
        srv(NAME, "zc-a.local", 631),
        a("zc-a.local", "192.0.2.2"),
    )
    file(cache, B_LINK, T0 + 1, txt(NAME, b"where=link B"))
    info = info_at(cache, T0 + 1)
    assert info.interface == A_LINK
    assert info.txt == {}
    assert not info.complete


def test_addresses_come_only_from_the_link_of_the_srv_record() -> None:
    """Two devices with one host name (two `raspberrypi.local`, one a link): the service on
    link A listed link B's address, first."""
    cache = RecordCache()
    file(cache, B_LINK, T0, a("pi.local", "198.51.100.1"), aaaa("pi.local", "fe80::b"))
    file(
        cache,
        A_LINK,
        T0 + 1,
        ptr(IPP, NAME),
        srv(NAME, "pi.local", 631),
        txt(NAME, b"where=link A"),
        a("pi.local", "192.0.2.2"),
        aaaa("pi.local", "fe80::a"),
    )
    info = info_at(cache, T0 + 1)
    assert info.interface == A_LINK
    assert info.addresses == (IPv4Address("192.0.2.2"), IPv6Address(f"fe80::a%{A_LINK}"))
    assert info.complete


def test_a_new_srv_record_on_the_chosen_link_keeps_the_link_its_ptr_came_from() -> None:
    """The device on link A moves to another port: its new SRV record is filed after link B's,
    and flushes the old one a second later. Its PTR record keeps its place, so browse and
    watch (which pass it) stay with that device."""
    cache = RecordCache()
    device_a(cache, T0)
    device_b(cache, T0 + 1)
    file(cache, A_LINK, T0 + 2, srv(NAME, "zc-a.local", 632))
    for now in (T0 + 2, T0 + 4):
        info = info_at(cache, now)
        assert (info.interface, info.port) == (A_LINK, 632)


def test_when_the_chosen_link_has_no_srv_record_left_the_other_link_answers() -> None:
    cache = RecordCache()
    file(cache, A_LINK, T0, ptr(IPP, NAME), srv(NAME, "zc-a.local", 631, ttl=10))
    device_b(cache, T0 + 1)
    assert info_at(cache, T0 + 5).interface == A_LINK
    info = info_at(cache, T0 + 11)  # link A's SRV record expired; its PTR record lives on
    assert (info.interface, info.host, info.port) == (B_LINK, "zc-b.local", 9100)
    assert info.txt == {"where": b"link B"} and info.complete


def test_a_link_whose_device_is_decidedly_not_available_gives_way_to_the_other() -> None:
    """Link A's device says its service is gone (SRV target the root, RFC 2782) while link B's
    is there: the info is link B's, with or without the PTR record (a watch passes it; the
    checks for "not available" do not), so a watch never reports removed what another link
    still offers. With neither link's device there, there is no info."""
    cache = RecordCache()
    device_a(cache, T0)
    device_b(cache, T0 + 1)
    file(cache, A_LINK, T0 + 2, srv(NAME, ".", 0))
    for with_ptr in (True, False):
        info = info_at(cache, T0 + 4, with_ptr)
        assert (info.interface, info.host, info.port) == (B_LINK, "zc-b.local", 9100)
    assert not service_unavailable(cache, NAME, T0 + 4)
    file(cache, B_LINK, T0 + 5, srv(NAME, ".", 0))
    assert build_service_info(cache, NAME, T0 + 7) is None
    assert service_unavailable(cache, NAME, T0 + 7)


def test_on_one_link_the_srv_record_is_chosen_as_before() -> None:
    """Lowest priority, highest weight, newest; a goodbye counts for its last second."""
    cache = RecordCache()
    file(cache, A_LINK, T0, srv(NAME, "old.local", 631, flush=False))
    file(cache, A_LINK, T0 + 1, srv(NAME, "new.local", 631, flush=False))
    assert info_at(cache, T0 + 1, with_ptr=False).host == "new.local"
    file(cache, A_LINK, T0 + 2, srv(NAME, "new.local", 631, ttl=0))
    assert info_at(cache, T0 + 2.5, with_ptr=False).host == "new.local"
    assert info_at(cache, T0 + 3.5, with_ptr=False).host == "old.local"


def no_txt(types: tuple[RecordType, ...] = (RecordType.SRV,), ttl: int = 90) -> NSECRecord:
    """The NSEC record of a responder whose instance has no TXT record (RFC 6762 §6.1)."""
    return NSECRecord(name=NAME, ttl=ttl, next_name=NAME, types=types, cache_flush=True)


def test_an_nsec_record_denying_txt_reads_as_the_empty_txt_record_on_its_link() -> None:
    """RFC 6763 §6.1: clients MUST treat "no TXT record" as a TXT record of one empty string;
    in mDNS a responder says "no such record" with NSEC. It was read for addresses only, so
    such an instance was never complete: resolve_service asked for TXT until its deadline
    and returned it incomplete, and a watch never reported it complete. On the NSEC record's
    own link only, as a TXT record would be; one that lists TXT denies nothing."""
    cache = RecordCache()
    file(cache, A_LINK, T0, srv(NAME, "box.local", 631), a("box.local", "192.0.2.2"))
    assert not info_at(cache, T0, with_ptr=False).complete
    file(cache, B_LINK, T0, no_txt())  # another link's word
    assert not info_at(cache, T0, with_ptr=False).complete
    assert Question(NAME, RecordType.TXT) in missing_questions(cache, NAME, T0)
    file(cache, A_LINK, T0, no_txt((RecordType.SRV, RecordType.TXT)))  # lists TXT: no denial
    assert not info_at(cache, T0, with_ptr=False).complete
    file(cache, A_LINK, T0 + 1, no_txt())  # flushes the one above a second later
    info = info_at(cache, T0 + 2, with_ptr=False)
    assert (
        info.complete and info.txt == {} and info.ttl == 89
    )  # the NSEC record's 90 s, from T0 + 1
    assert missing_questions(cache, NAME, T0 + 2) == []
    assert (info.host, info.port, info.addresses) == ("box.local", 631, (IPv4Address("192.0.2.2"),))
    file(cache, A_LINK, T0 + 3, txt(NAME, b"a=1"))  # a TXT record after all: it counts
    assert info_at(cache, T0 + 3, with_ptr=False).txt == {"a": b"1"}


def test_resolve_service_of_an_instance_without_txt_returns_with_the_first_answer() -> None:
    net = FakeNet()
    transport = net.transport()
    q = Querier(transports=[transport], clock=net.clock, wait=net.wait)
    start = net.clock()

    def responder(message: Message, n: FakeNet, t: FakeTransport) -> None:
        extra = [no_txt(), a("box.local", "192.0.2.2")]
        n.later(0.02, response(srv(NAME, "box.local", 631), additionals=extra), t)

    net.responders.append(responder)
    info = q.resolve_service(NAME, timeout=5)
    assert info is not None and info.complete and info.txt == {}
    assert net.clock() - start < 1  # it waited out the 5 s, asking for TXT at 0, 1 and 3 s
    transport.close()


def test_a_watch_refreshes_the_nsec_record_standing_for_txt(net: FakeNet) -> None:
    """The NSEC record that says "no TXT record" was not among the records a watch refreshes
    or tracks: each time it expired (TTL 120), the watch reported the instance incomplete,
    asked for TXT and reported it complete again, two false updates every two minutes. A
    responder that sends it only in answer to a TXT question, as here."""
    q = Querier(transports=[net.transport()], clock=net.clock, wait=net.wait)
    start = net.clock()
    txt_asked: list[float] = []

    def responder(message: Message, n: FakeNet, t: FakeTransport) -> None:
        for question in message.questions:
            if question.type == RecordType.PTR:
                extra = [srv(NAME, "box.local", 631), a("box.local", "192.0.2.2")]
                n.later(0.02, response(ptr(IPP, NAME), additionals=extra), t)
            elif question.type == RecordType.TXT:
                txt_asked.append(n.clock() - start)
                n.later(0.02, response(no_txt(types=(RecordType.SRV,), ttl=120)), t)
            elif question.type == RecordType.SRV:
                n.later(0.02, response(srv(NAME, "box.local", 631)), t)
            elif question.type == RecordType.A:
                n.later(0.02, response(a("box.local", "192.0.2.2")), t)

    net.responders.append(responder)
    events = [(e.kind, e.info.complete) for e in q.watch("_ipp._tcp", timeout=1000)]
    assert events == [("added", True)]
    assert len(txt_asked) >= 8  # refreshed: the first ask, then about every 100 s


# -- through the Querier, on two fake links -------------------------------------------------

OTHER = Interface(name="fake1", index=B_LINK, addresses=(IPv4Interface("198.51.100.254/24"),))
PEER_B = ("198.51.100.1", 5353)


def two_links(net: FakeNet) -> tuple[Querier, FakeTransport]:
    assert IFINDEX == A_LINK
    transport = net.transport(interfaces=[LAN, OTHER])
    return Querier(transports=[transport], clock=net.clock, wait=net.wait), transport


def announcement(link: str, host: str, port: int, address: str) -> bytes:
    return response(
        ptr(IPP, NAME),
        additionals=[srv(NAME, host, port), txt(NAME, f"where={link}".encode()), a(host, address)],
    )


def test_a_watch_reports_the_info_moving_to_the_other_link_with_the_same_content(
    net: FakeNet,
) -> None:
    """One IPv4-only device heard on both links (Ethernet and Wi-Fi of one LAN), then link A's
    records expire (the cable pulled): the info is read from link B, the same in all but its
    interface. Nothing was reported, so the caller's info, and the watch's `removed` at the
    end, named link A."""
    q, transport = two_links(net)
    same = announcement("both", "zc.local", 631, "192.0.2.2")
    net.later(0.05, same, transport, PEER, A_LINK)
    net.later(0.10, same, transport, PEER_B, B_LINK)

    start = net.clock()

    def answer_on_b(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if n.clock() > start + 60:  # the refreshes; link A answers no more
            n.later(0.02, same, t, PEER_B, B_LINK)

    net.responders.append(answer_on_b)
    events = [(e.kind, e.info.interface) for e in q.watch("_ipp._tcp", timeout=200)]
    assert events == [("added", A_LINK), ("updated", B_LINK)]


def test_a_watch_does_not_report_the_other_links_device_as_an_update(net: FakeNet) -> None:
    """It reported 'updated' with the host, port and TXT of the device on the other link
    whenever that one announced itself, and again when the first did."""
    q, transport = two_links(net)
    a_says = announcement("link A", "zc-a.local", 631, "192.0.2.2")
    b_says = announcement("link B", "zc-b.local", 9100, "198.51.100.1")
    net.later(0.05, a_says, transport, PEER, A_LINK)
    for at in (0.5, 3.0, 6.0):
        net.later(at, b_says, transport, PEER_B, B_LINK)
    net.later(4.0, a_says, transport, PEER, A_LINK)
    net.later(5.0, response(txt(NAME, b"where=link B, refreshed")), transport, PEER_B, B_LINK)
    # Its own link's changes are still read: a new TXT record, then one more address.
    net.later(7.0, response(txt(NAME, b"where=link A, moved")), transport, PEER, A_LINK)
    net.later(8.0, response(aaaa("zc-a.local", "fe80::a")), transport, PEER, A_LINK)
    events = [
        (e.kind, e.info.interface, e.info.port, e.info.txt["where"], len(e.info.addresses))
        for e in q.watch("_ipp._tcp", timeout=9)
    ]
    assert events == [
        ("added", A_LINK, 631, b"link A", 1),
        ("updated", A_LINK, 631, b"link A, moved", 1),
        ("updated", A_LINK, 631, b"link A, moved", 2),
    ]


def test_browse_and_resolve_service_give_one_links_device(net: FakeNet) -> None:
    q, transport = two_links(net)
    transport.inject(announcement("link A", "pi.local", 631, "192.0.2.2"), PEER, A_LINK)
    transport.inject(announcement("link B", "pi.local", 9100, "198.51.100.1"), PEER_B, B_LINK)
    q.process(0)
    [info] = list(q.browse("_ipp._tcp", timeout=1))
    again = q.resolve_service(NAME, timeout=1)
    for got in (info, again):
        assert got is not None
        assert (got.interface, got.port, dict(got.txt)) == (A_LINK, 631, {"where": b"link A"})
        assert got.addresses == (IPv4Address("192.0.2.2"),)


# -- finding 4: a full name without .local ---------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "asked"),
    [
        ("Office Printer._ipp._tcp", "Office Printer._ipp._tcp.local"),
        ("Dr\\. Who._IPP._TCP.", "Dr\\. Who._IPP._TCP.local"),
        ("Office Printer._ipp._tcp.local", "Office Printer._ipp._tcp.local"),
        ("Game._quake._udp", "Game._quake._udp.local"),
    ],
)
def test_resolve_service_adds_local_to_a_name_that_ends_in_a_service_type(
    net: FakeNet, typed: str, asked: str
) -> None:
    """Asked as typed, 'Office Printer._ipp._tcp. SRV?' went out, nobody answered, and the
    call returned None at its deadline, though service types go without '.local'."""
    transport = net.transport()
    q = Querier(transports=[transport], clock=net.clock, wait=net.wait)

    def responder(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if any(qq.name.lower() == asked.lower() for qq in message.questions):
            n.later(
                0.05,
                response(srv(asked, "p.local", 631), txt(asked, b"a=1"), a("p.local", "192.0.2.7")),
                t,
            )

    net.responders.append(responder)
    start = net.clock()
    info = q.resolve_service(typed, timeout=3)
    assert info is not None and info.complete and info.port == 631
    assert net.clock() - start < 1  # answered, not the deadline
    first = transport.sent_messages()[0]
    assert Question(asked, RecordType.SRV) in first.questions


def test_resolve_service_asks_other_names_as_given(net: FakeNet) -> None:
    transport = net.transport()
    q = Querier(transports=[transport], clock=net.clock, wait=net.wait)
    for typed in ("Office._ipp._tcp.example", "_ipp._tcp", "x._tcp"):
        transport.sent.clear()
        assert q.resolve_service(typed, timeout=0.5) is None
        [name] = {qq.name for m in transport.sent_messages() for qq in m.questions}
        assert name == typed


# -- two real links, a python-zeroconf peer on each -----------------------------------------


def test_two_devices_of_one_name_on_two_bridges() -> None:
    """The review's repro (multi.py): before, one browse showed link A's device with both
    links' addresses or link B's, and a watch swapped between them."""
    from tests import netlab
    from tests.peers import PeerLab, Service, ZeroconfPeer

    netlab.require_private_netns()
    lab = PeerLab()
    bridge, host = "br15", "x15"
    try:
        first = ZeroconfPeer.in_lab(
            lab, [Service("Shared Printer", "_ipp._tcp", 631, txt={"where": "A"})]
        )
        netlab.ip("link", "add", bridge, "type", "bridge", "mcast_snooping", "0")
        netlab.ip("addr", "add", "198.51.100.254/24", "dev", bridge)
        netlab.ip("link", "set", bridge, "multicast", "on", "up")
        netlab.ip("netns", "add", host)
        netlab.sysctl("net.ipv6.conf.all.accept_dad=0", host)
        netlab.sysctl("net.ipv6.conf.default.accept_dad=0", host)
        netlab.ip("link", "add", "lan15", "type", "veth", "peer", "name", "eth0", "netns", host)
        netlab.ip("link", "set", "lan15", "master", bridge, "up")
        netlab.ip("link", "set", "lo", "up", netns=host)
        netlab.ip("addr", "add", "198.51.100.1/24", "dev", "eth0", netns=host)
        netlab.ip("link", "set", "eth0", "multicast", "on", "up", netns=host)
        netlab.ip("route", "add", "224.0.0.0/4", "dev", "eth0", netns=host)
        lab.wait_link_local(bridge)
        lab.wait_link_local("eth0", host)
        second = ZeroconfPeer(
            hostname=first.hostname,  # one host name too: two `raspberrypi.local`
            host=host,
            ipv4="198.51.100.1",
            ipv6=netlab.link_local("eth0", host),
            ipv6_index=netlab.ifindex("eth0", host),
        )
        lab.peers.append(second)
        second.register(Service("Shared Printer", "_ipp._tcp", 9100, txt={"where": "B"}))
        links = [netlab.BRIDGE, bridge]
        index = {netlab.ifindex(netlab.BRIDGE): first, netlab.ifindex(bridge): second}
        with Querier(links) as q:
            events = list(q.watch("_ipp._tcp", timeout=3))
            [info] = list(q.browse("_ipp._tcp", timeout=1))
            resolved = q.resolve_service(f"Shared Printer.{IPP}", timeout=1)
        # An update may bring an address that came apart; never the other link's device.
        assert [e.kind for e in events][:1] == ["added"], events
        assert {e.kind for e in events} <= {"added", "updated"}, events
        for got in [e.info for e in events] + [info, resolved]:
            assert got is not None and got.interface == events[0].info.interface
            peer = index[got.interface]
            assert got.port == (631 if peer is first else 9100)
            assert dict(got.txt) == {"where": b"A" if peer is first else b"B"}
            plain = {ipaddress.ip_address(str(x).split("%")[0]) for x in got.addresses}
            assert plain <= {peer.ipv4, peer.ipv6}, got.addresses
            assert peer.ipv4 in plain
    finally:
        lab.close()  # stops both peers
        subprocess.run(["ip", "netns", "del", host], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def link_responder(
    link: int, peer: tuple[str, int], records: list[object], start: float = -1.0
) -> Callable[[Message, FakeNet, FakeTransport], None]:
    """A responder on one link: it hears only the queries sent there, answers from ``start``
    on, and stays silent about a record the query lists as a known answer with at least half
    its TTL (RFC 6762 §7.1, as Avahi, mDNSResponder and python-zeroconf do)."""
    held = [r for r in records if isinstance(r, Record)]

    def respond(message: Message, n: FakeNet, t: FakeTransport) -> None:
        if t.link not in (None, link) or n.clock() < start:
            return
        out = [
            r
            for question in message.questions
            for r in held
            if r.key == (name_key(question.name), question.type, question.rclass)
            and not any(k == r and k.ttl >= r.ttl / 2 for k in message.answers)
        ]
        if out:
            n.later(0.02, response(*out), t, peer, link, to_group=True)

    return respond


def test_a_known_answer_heard_on_one_link_is_not_listed_on_the_other(net: FakeNet) -> None:
    """Link A's announcement lost its TXT record; link B's device (the same one: Wi-Fi and
    Ethernet of one LAN) was heard whole. The info is read from link A and its TXT question
    went out on both links with link B's TXT record as a known answer: link A's responder
    stayed silent, and resolve_service waited out its timeout with an incomplete info."""
    q, transport = two_links(net)
    on_a = [ptr(IPP, NAME), srv(NAME, "d.local", 631), txt(NAME, b"a=1"), a("d.local", "192.0.2.5")]
    on_b = [*on_a[:3], a("d.local", "198.51.100.5")]
    net.later(0.0, response(on_a[1], on_a[3]), transport, PEER, A_LINK, to_group=True)
    net.later(0.1, response(*on_b), transport, PEER_B, B_LINK, to_group=True)
    net.clock.advance(0.2)
    assert q.process(0) >= 1
    net.responders += [link_responder(A_LINK, PEER, on_a), link_responder(B_LINK, PEER_B, on_b)]
    start = net.clock()
    info = q.resolve_service(NAME, timeout=3)
    assert info is not None and info.interface == A_LINK
    assert info.complete and info.txt == {"a": b"1"}
    assert net.clock() - start < 1
    assert set(transport.sent_links) == {A_LINK, B_LINK}  # a packet per link


def test_refreshes_carry_each_link_s_own_known_answers(net: FakeNet) -> None:
    """A device on both links, heard on link B a minute after link A. The refreshes of link
    A's records (at 80-95 % of their TTL) listed link B's younger copies as known answers:
    both responders stayed silent, link A's records expired, and the watch reported the
    device moving to link B and back though it never left link A."""
    q, transport = two_links(net)
    on_a = [ptr(IPP, NAME), srv(NAME, "d.local", 631), txt(NAME, b"a=1"), a("d.local", "192.0.2.5")]
    on_b = [*on_a[:3], a("d.local", "198.51.100.5")]
    start = net.clock()
    net.later(60, response(*on_b), transport, PEER_B, B_LINK, to_group=True)
    net.responders += [
        link_responder(A_LINK, PEER, on_a),
        link_responder(B_LINK, PEER_B, on_b, start=start + 1),  # heard first at 60 s
    ]
    events = [(e.kind, e.info.interface) for e in q.watch("_ipp._tcp", timeout=1200)]
    assert events == [("added", A_LINK)]


def query_packet(name: str, rtype: RecordType, *answers: Record) -> bytes:
    question = Question(name, rtype)
    return encode_message(Message(id=0, flags=0, questions=[question], answers=answers))


def test_a_peer_s_known_answer_from_another_link_does_not_stand_for_our_question(
    net: FakeNet,
) -> None:
    """§7.3: a peer's query stands for ours only if it lists no known answer our packet on
    that link would not. Judged by the records of any link, a peer on link A listing the TXT
    record we had only from link B was taken as asking for us: our retransmission at 1 s
    was skipped and the resolve ended without link A's TXT record."""
    q, transport = two_links(net)
    the_txt = txt(NAME, b"a=1")
    on_a = [srv(NAME, "d.local", 631), a("d.local", "192.0.2.5")]
    on_b = [ptr(IPP, NAME), on_a[0], the_txt, a("d.local", "198.51.100.5")]
    transport.inject(response(*on_a), PEER, A_LINK, to_group=True)  # its TXT record lost
    transport.inject(response(*on_b), PEER_B, B_LINK, to_group=True)
    q.process(0)
    start = net.clock()
    asking = query_packet(NAME, RecordType.TXT, the_txt)
    net.later(0.5, asking, transport, ("192.0.2.77", 5353), A_LINK, to_group=True)
    net.later(0.5, asking, transport, ("198.51.100.77", 5353), B_LINK, to_group=True)
    net.responders.append(link_responder(A_LINK, PEER, [*on_a, the_txt], start=start + 0.6))
    info = q.resolve_service(NAME, timeout=2.9)
    assert info is not None and info.txt == {"a": b"1"}
    assert net.clock() - start < 1.1  # the retransmission at 1 s was answered


def test_known_answers_are_counted_once_for_each_link_they_went_to(net: FakeNet) -> None:
    # An IPv4 and an IPv6 socket on one link (the default) counted the cap twice; a link's
    # known answers other than the first link's were not counted at all.
    v4, v6 = net.transport(), net.transport(family=socket.AF_INET6)
    q = Querier(transports=[v4, v6], clock=net.clock, wait=net.wait)
    for i in range(250):
        q.cache.add(ptr(IPP, f"i{i}.{IPP}"), A_LINK, net.clock())
    q.send_query(IPP, "PTR")
    stats = q.stats()
    assert (stats["known_answers_sent"], stats["known_answers_capped"]) == (200, 50)

    q, transport = two_links(net)
    for i in range(3):
        q.cache.add(ptr(IPP, f"i{i}.{IPP}"), B_LINK, net.clock())
    q.send_query(IPP, "PTR")
    carried = {
        link: len(m.answers)
        for link, m in zip(transport.sent_links, transport.sent_messages(), strict=True)
    }
    assert carried == {A_LINK: 0, B_LINK: 3}
    assert q.stats()["known_answers_sent"] == 3


def test_a_packet_of_a_query_no_link_took_is_a_send_error(net: FakeNet) -> None:
    """Known answers for two packets (§7.2); every link refuses the second. It went nowhere,
    but the first packet's send on one link had marked the whole query sent."""

    class Refusing(FakeTransport):
        def send(
            self, data: bytes, dest: tuple[str, int] | None = None, interface: int | None = None
        ) -> None:
            if data[4:6] == b"\0\0":  # no question: a continuation packet
                raise NetworkError("refused")
            super().send(data, dest, interface)

    transport = Refusing(interfaces=[LAN, OTHER])
    try:
        q = Querier(transports=[transport], clock=net.clock, wait=net.wait)
        for link in (A_LINK, B_LINK):
            for i in range(60):
                q.cache.add(ptr(IPP, f"{'x' * 60} {i}.{IPP}"), link, net.clock())
        q.send_query(IPP, "PTR")
        assert transport.sent_links == [A_LINK, B_LINK]  # each link's first packet
        assert q.stats()["send_errors"] == 1
    finally:
        transport.close()


def test_a_transport_whose_send_takes_no_interface_gets_one_packet_for_its_links(
    net: FakeNet,
) -> None:
    # A transport written to the Transport protocol before send() took interface=: every
    # call raised TypeError.
    class OldStyle(FakeTransport):
        def send(self, data: bytes, dest: tuple[str, int] | None = None) -> None:  # type: ignore[override]
            super().send(data, dest)

    transport = OldStyle(interfaces=[LAN, OTHER])
    try:
        q = Querier(transports=[transport], clock=net.clock, wait=net.wait)
        q.cache.add(ptr(IPP, f"Seen.{IPP}"), B_LINK, net.clock())
        q.query(IPP, "PTR", timeout=0.5)
        assert transport.sent_links == [None]
        assert len(transport.sent_messages()[0].answers) == 1  # any link's known answers
    finally:
        transport.close()
