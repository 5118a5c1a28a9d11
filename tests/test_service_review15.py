"""The DNS-SD layer as the fifteenth session's codec review found it (/tmp/review/codec2), and
the question left unasked by that session's one-link ServiceInfo (ADR 005 §17). Each test fails
on the code before its fix, but those marked as guards. No network: tests/fakes.py's FakeNet
and FakeClock, or the cache alone."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

import pytest

import mdnsq
import mdnsq.querier
from mdnsq import Message, Querier, RecordType
from mdnsq.cache import RecordCache
from mdnsq.interfaces import Interface
from mdnsq.records import Question
from mdnsq.service import build_service_info, normalize_service_type
from mdnsq.tasks import missing_questions
from tests.fakes import (
    IFINDEX,
    LAN,
    PEER,
    FakeNet,
    FakeTransport,
    a,
    fake_querier,
    ptr,
    response,
    service_records,
    srv,
    txt,
)
from tests.test_cli_edges import run_cli

SSH = "_ssh._tcp.local"
HTTP = "_http._tcp.local"
T0 = 1000.0

pytestmark = pytest.mark.usefixtures("no_first_delay")


# -- finding 1: an empty TXT record after a partial report -----------------------------------


@pytest.mark.parametrize("strings", [(b"",), ()], ids=["one empty string", "no strings"])
def test_a_watch_reports_an_empty_txt_record_that_comes_after_the_instance(
    net: FakeNet, strings: tuple[bytes, ...]
) -> None:
    """RFC 6763 §6.1's empty TXT record (one zero byte; `_ssh._tcp`, `_smb._tcp`, Avahi's
    services without TXT data) reads as `{}`, as no TXT record does: the watch reported the
    instance incomplete after 2 s and never said it became complete."""
    q = fake_querier(net)
    name, host = f"box.{SSH}", "box.local"
    net.later(0.05, response(ptr(SSH, name), srv(name, host, 22), a(host, "192.0.2.5")))
    net.later(3.0, response(txt(name, *strings)))
    start = net.clock()
    events = [
        (e.kind, round(net.clock() - start, 2), e.info.complete, dict(e.info.txt))
        for e in q.watch("_ssh._tcp", timeout=6)
    ]
    assert events == [("added", 2.05, False, {}), ("updated", 3.0, True, {})]


def test_knowing_a_txt_record_is_content() -> None:
    cache = RecordCache()
    name = f"box.{SSH}"
    cache.add_all([srv(name, "box.local", 22), a("box.local", "192.0.2.5")], IFINDEX, T0)
    before = build_service_info(cache, name, T0)
    cache.add_all([txt(name, b"")], IFINDEX, T0 + 1)
    after = build_service_info(cache, name, T0 + 1)
    assert before is not None and after is not None
    assert (before.complete, after.complete) == (False, True)
    assert before.txt == after.txt == {}
    assert not after.same_content(before) and not before.same_content(after)
    # Equal infos are equally complete (tests/test_robust_pipeline.py finds no update equal to
    # what it updates); one written by hand with a txt still equals the one read.
    assert before != dataclasses.replace(after, ttl=before.ttl)  # not by the TTL countdown
    cache.add_all([txt(name, b"k=v")], IFINDEX, T0 + 3)
    read = build_service_info(cache, name, T0 + 3)
    assert read is not None and read.txt == {"k": b"v"}
    assert read == dataclasses.replace(read, _has_txt=False)


def test_guard_a_refresh_of_an_empty_txt_record_is_no_update(net: FakeNet) -> None:
    q = fake_querier(net)
    name, host = f"box.{SSH}", "box.local"
    records = response(ptr(SSH, name), srv(name, host, 22), txt(name, b""), a(host, "192.0.2.5"))
    for at in (0.05, 3.0, 6.0):
        net.later(at, records)
    events = [(e.kind, e.info.complete) for e in q.watch("_ssh._tcp", timeout=8)]
    assert events == [("added", True)]


# -- finding 2: a caller's edits to info.txt -------------------------------------------------


def test_a_caller_editing_info_txt_makes_no_false_update(net: FakeNet) -> None:
    """The peer announces the same records again at 5 s: nothing changed, nothing to report.
    The watch compared with the very dict it had handed the caller, and reported 'updated'."""
    q = fake_querier(net)
    records = response(*service_records("web", HTTP, "web.local", 80, "192.0.2.7"))
    net.later(0.05, records)
    net.later(5.0, records)
    kinds = []
    for event in q.watch("_http._tcp", timeout=8):
        kinds.append(event.kind)
        assert isinstance(event.info.txt, dict)
        event.info.txt["seen"] = b"yes"  # a caller's note, on a frozen info
        json.dumps({k: None for k in event.info.txt})
    assert kinds == ["added"]


def test_a_caller_editing_info_txt_does_not_hide_a_real_update(net: FakeNet) -> None:
    """The caller's dict made equal to what the peer sends next: the watch missed the change."""
    q = fake_querier(net)
    name = f"web.{HTTP}"
    net.later(0.05, response(*service_records("web", HTTP, "web.local", 80, "192.0.2.7")))
    net.later(5.0, response(txt(name, b"path=/new")))
    net.later(7.0, response(txt(name, b"path=/newer")))
    events = []
    for event in q.watch("_http._tcp", timeout=9):
        events.append((event.kind, dict(event.info.txt)))
        if event.kind == "added":
            event.info.txt.clear()
            event.info.txt["path"] = b"/new"
        else:
            event.info.txt["path"] = b"/newer"
    assert events == [
        ("added", {"path": b"/"}),
        ("updated", {"path": b"/new"}),
        ("updated", {"path": b"/newer"}),
    ]


def test_guard_info_txt_stays_a_plain_dict_that_json_writes(net: FakeNet) -> None:
    q = fake_querier(net)
    p, s, _, addr = service_records("web", HTTP, "web.local", 80, "192.0.2.7")
    net.later(0.05, response(p, s, txt(f"web.{HTTP}", b"v=1", b"flag"), addr))
    [event] = list(q.watch("_http._tcp", timeout=1))
    [info] = list(q.browse("_http._tcp", timeout=1))
    resolved = q.resolve_service(f"web.{HTTP}", timeout=1)
    assert resolved is not None
    for got in (event.info, info, resolved):
        assert type(got.txt) is dict
        assert got.txt == {"v": b"1", "flag": None}
        assert json.dumps({k: v and v.decode() for k, v in got.txt.items()})


# -- finding 3: service types are checked (RFC 6763 §7) --------------------------------------

BAD_TYPES = [
    "_http._tpc",  # a typo
    "http.tcp",
    "_http._tcp.example.com",  # a unicast domain: it became '..._tcp.example.com.local'
    "_http._tcp.example",
    "_http._tcp.local.local",
    "Office Printer._ipp._tcp",  # an instance's name
    "Office Printer._ipp._tcp.local",
    "_x._sub._http",  # a subtype without its protocol
    "_x._sub._http.local",
    "_a._b._http._tcp",  # two labels before the type, not '<subtype>._sub'
    "_x._sctp",
    "_._tcp",
    "x._tcp",
    "_http._tcp._sub",
    "_services._dns-sd._udp",  # the type enumeration (RFC 6763 §9): service_types() asks it
]


@pytest.mark.parametrize("bad", BAD_TYPES)
def test_what_is_not_a_service_type_is_an_invalid_argument(bad: str) -> None:
    with pytest.raises(mdnsq.InvalidArgument) as caught:
        normalize_service_type(bad)
    message = str(caught.value)
    assert repr(bad) in message and "'_name._tcp' or '_name._udp'" in message


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("_http._tcp.example.com", ".local only"),
        ("Office._ipp._tcp", "resolve_service"),
        ("_services._dns-sd._udp.local", "service_types()"),
    ],
)
def test_the_message_names_the_likely_mistake(typed: str, hint: str) -> None:
    with pytest.raises(mdnsq.InvalidArgument, match=f"{typed!r}.*{hint}"):
        normalize_service_type(typed)


BAD_CALLS: dict[str, Any] = {
    "browse": lambda q, t: list(q.browse(t, timeout=1)),
    "watch": lambda q, t: list(q.watch(t, timeout=1)),
    "resolve_service": lambda q, t: q.resolve_service(instance="Office", type=t, timeout=1),
}


@pytest.mark.parametrize("call", BAD_CALLS)
@pytest.mark.parametrize("bad", ["_http._tpc", "_http._tcp.example.com", "_x._sub._http"])
def test_every_call_taking_a_type_refuses_a_bad_one_before_sending(call: str, bad: str) -> None:
    with FakeTransport() as transport, Querier(transports=[transport]) as q:
        with pytest.raises(mdnsq.InvalidArgument):
            BAD_CALLS[call](q, bad)
        assert transport.sent == []


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("_http._tcp", "_http._tcp.local"),
        (" _http._tcp.local. ", "_http._tcp.local"),
        ("_HTTP._TCP.LOCAL", "_HTTP._TCP.LOCAL"),
        ("_quake._udp", "_quake._udp.local"),
        ("_printer._sub._http._tcp", "_printer._sub._http._tcp.local"),
        ("_printer._SUB._http._tcp.local.", "_printer._SUB._http._tcp.local"),
        # RFC 6763 §7.1: "Subtype strings are not required to begin with an underscore".
        ("printer._sub._http._tcp", "printer._sub._http._tcp.local"),
        ("Dr\\. Who._sub._ipp._tcp", "Dr\\. Who._sub._ipp._tcp.local"),
    ],
)
def test_guard_service_types_as_people_type_them(typed: str, normal: str) -> None:
    assert normalize_service_type(typed) == normal


def test_guard_service_types_still_asks_the_type_enumeration(net: FakeNet) -> None:
    """service_types() asks '_services._dns-sd._udp.local' itself, and what it lists browse
    takes as it is (so `mdnsq browse --all` passes it on)."""
    q = fake_querier(net)
    meta = "_services._dns-sd._udp.local"
    listed = ["_ipp._tcp.local", HTTP, "_IPP._UDP.local", "_http._tcp.example", f"x.{HTTP}"]
    net.later(0.05, response(*(ptr(meta, t) for t in listed)))
    types = q.service_types(timeout=1)
    assert types == [HTTP, "_ipp._tcp.local", "_IPP._UDP.local"]
    assert [normalize_service_type(t) for t in types] == types
    asked = {qq.name for m in net.transports[0].sent_messages() for qq in m.questions}
    assert asked == {meta}
    assert len(q.query(meta, "PTR", timeout=0)) == len(listed)


@pytest.mark.parametrize(
    "argv",
    [
        ["browse", "_http._tpc"],
        ["browse", "_http._tcp", "_http._tcp.example.com"],
        ["browse", "--no-resolve", "_x._sub._http"],
        ["watch", "Office._ipp._tcp"],
        ["lookup", "Office", "_ipp._tpc"],
        ["lookup", "Office._ipp._tcp.example.com"],
    ],
)
def test_the_cli_exits_2_for_a_bad_service_type(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """It browsed the bad type, found nothing and exited 1, 'nothing found'."""
    status, out = run_cli(monkeypatch, [*argv, "-t", "1"])
    assert (status, out) == (2, "")
    err = capsys.readouterr().err
    assert "not a DNS-SD service type" in err and "'_name._tcp'" in err
    assert err.count("\n") == 1


# -- the gap of ADR 005 §17: asking for what the info's own link lacks ------------------------

IPP = "_ipp._tcp.local"
NAME = f"Shared Printer.{IPP}"
A_LINK, B_LINK = IFINDEX, 3
OTHER = Interface(name="fake1", index=B_LINK, addresses=(IPv4Interface("198.51.100.254/24"),))
PEER_B = ("198.51.100.1", 5353)


def test_missing_questions_look_at_the_link_of_the_srv_record() -> None:
    cache = RecordCache()
    cache.add_all([srv(NAME, "p.local", 631), a("p.local", "192.0.2.2")], A_LINK, T0)
    cache.add_all([txt(NAME, b"where=B"), a("q.local", "198.51.100.1")], B_LINK, T0)
    assert missing_questions(cache, NAME, T0) == [Question(NAME, RecordType.TXT)]
    # And the addresses: the SRV target's are known on the other link only.
    cache = RecordCache()
    cache.add_all([srv(NAME, "p.local", 631), txt(NAME, b"where=A")], A_LINK, T0)
    cache.add_all([a("p.local", "198.51.100.1")], B_LINK, T0)
    assert missing_questions(cache, NAME, T0) == [
        Question("p.local", RecordType.A),
        Question("p.local", RecordType.AAAA),
    ]


def test_guard_missing_questions_with_everything_on_its_link() -> None:
    cache = RecordCache()
    cache.add_all([srv(NAME, "p.local", 631), txt(NAME, b""), a("p.local", "192.0.2.2")], 2, T0)
    assert missing_questions(cache, NAME, T0) == []
    cache = RecordCache()
    cache.add_all([txt(NAME, b"")], B_LINK, T0)  # no SRV record: TXT is known somewhere
    assert missing_questions(cache, NAME, T0) == [Question(NAME, RecordType.SRV)]


def two_links(net: FakeNet) -> tuple[Querier, FakeTransport]:
    transport = net.transport(interfaces=[LAN, OTHER])
    return Querier(transports=[transport], clock=net.clock, wait=net.wait), transport


def answer_txt_on_link_a(net: FakeNet, asked: list[float]) -> None:
    """The device on link A answers a TXT question (its first answer was lost)."""
    start = net.clock()

    def responder(message: Message, n: FakeNet, t: FakeTransport) -> None:
        # It hears the query sent on link A (queries go to each link in turn).
        if t.link in (None, A_LINK) and Question(NAME, RecordType.TXT) in message.questions:
            asked.append(round(n.clock() - start, 2))
            n.later(0.05, response(txt(NAME, b"where=A")), t, PEER, A_LINK)

    net.responders.append(responder)


def test_resolve_service_asks_for_the_txt_record_its_link_lacks(net: FakeNet) -> None:
    """Link A, whose SRV record the info is read from, has SRV and an address; only link B
    has a TXT record. No TXT question went out (one was known, elsewhere), and the call
    returned an incomplete info at its deadline."""
    q, transport = two_links(net)
    transport.inject(response(srv(NAME, "p.local", 631), a("p.local", "192.0.2.2")), PEER, A_LINK)
    transport.inject(response(txt(NAME, b"where=B")), PEER_B, B_LINK)
    q.process(0)
    net.clock.advance(1)  # the address heard a second ago has settled (resolve_host's rule)
    asked: list[float] = []
    answer_txt_on_link_a(net, asked)
    start = net.clock()
    info = q.resolve_service(NAME, timeout=3)
    assert info is not None and info.complete
    assert (info.interface, dict(info.txt)) == (A_LINK, {"where": b"A"})
    assert info.addresses == (IPv4Address("192.0.2.2"),)
    assert asked == [0.0] and net.clock() - start == pytest.approx(0.05)


def test_browse_asks_for_the_txt_record_its_link_lacks(net: FakeNet) -> None:
    """The same through browse, which reads the instance from its PTR record's link: it
    yielded the instance without TXT at its deadline."""
    q, transport = two_links(net)
    records = (ptr(IPP, NAME), srv(NAME, "p.local", 631), a("p.local", "192.0.2.2"))
    transport.inject(response(*records), PEER, A_LINK)
    transport.inject(response(txt(NAME, b"where=B")), PEER_B, B_LINK)
    q.process(0)
    asked: list[float] = []
    answer_txt_on_link_a(net, asked)
    [info] = list(q.browse("_ipp._tcp", timeout=3))
    assert info.complete and (info.interface, dict(info.txt)) == (A_LINK, {"where": b"A"})
    assert asked and asked[0] < 0.2
