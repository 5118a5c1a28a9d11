"""Random histories of odd, mutated and hostile packets through a Querier's whole receive path
(checks, parser, cache, tasks) while a watch and other calls run.

fuzz/ proves the parser alone: only MalformedPacket escapes it. What it cannot show is a record
that parses but then breaks what comes after: a cache left inconsistent (an entry that never
expires, a bucket that lost a key), a task that raises on a TXT it did not expect, a watch that
reports an instance twice or removes one it never added, a call that leaves its wants behind.
Here every packet is built from the names a watch follows (escaped dots, UTF-8, case variants;
the type, a subtype, the type enumeration), then maybe mutated, and arrives over IPv4 on two
interfaces or over IPv6 (one history in five on a one-shot querier, answered by a replier);
after every event the cache's internal state is checked against the invariants its header
states, and at the end every packet must be accounted for in the stats and every packet sent
must be a sound query. All on tests/fakes.py's in-memory network and fake clock: no sockets,
no sleeping; a seed is the same history in every process (same_in_every_process).
"""

from __future__ import annotations

import contextlib
import random
import socket
import zlib
from collections import Counter
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from unittest import mock

import pytest

from fuzz import adversarial
from mdnsq import (
    AAAARecord,
    ARecord,
    Message,
    NSECRecord,
    PTRRecord,
    Querier,
    Question,
    Record,
    RecordCache,
    ServiceEvent,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
    encode_message,
    parse_message,
)
from mdnsq.cache import MAX_RRSET, REFRESH_JITTER, CacheEntry
from mdnsq.interfaces import Interface
from mdnsq.names import name_key, split_name, unescape_label
from mdnsq.service import build_service_info
from tests.fakes import IFINDEX, LAN, PEER, FakeNet, FakeTransport, Responder, close_all

STYPE = "_http._tcp.local"
SUBTYPE = f"_printer._sub.{STYPE}"
META = "_services._dns-sd._udp.local"
# Instance labels in text form (escaped), as browse reports them.
INSTANCES = ("web", "Office Printer", "Dr\\. Who's Printer", "Café ☕", "x" * 63, "a\\\\b")
HOSTS = ("h0.local", "h1.local", "H1.local", "printer.local")
SECOND = Interface(
    name="fake1",
    index=IFINDEX + 1,
    addresses=(IPv4Interface("198.51.100.254/24"), IPv6Interface("fe80::1:254/64")),
)
SECOND_PEER = ("198.51.100.1", 5353)
V6_PEER = ("fe80::1", 5353)  # link-local: on the link of any interface
DURATION = 40.0  # seconds of traffic; the calls run a little longer, so all of it arrives
# Sources the receive handler drops before parsing, and the counter each one lands in.
DROPPED_SOURCES = {
    "dropped_off_link": (("203.0.113.9", 5353), IFINDEX),
    "dropped_source_port": (("192.0.2.1", 40000), IFINDEX),
    "dropped_other_interface": (PEER, 99),
}
HOSTILE = sorted(
    name
    for name in adversarial.BUILDERS
    if name not in ("query_of_escaped_labels", "query_of_pointers")  # ~2 ms each, parse only
)
DROP_KEYS = (
    "dropped_source_port",
    "dropped_other_interface",
    "dropped_off_link",
    "ignored_queries",
    "shed_under_pressure",
    "dropped_malformed",
    "dropped_opcode_rcode",
    "dropped_wrong_id",
)


def instance_name(rng: random.Random) -> str:
    name = f"{rng.choice(INSTANCES)}.{STYPE}"
    # DNS names compare without case (ASCII only: "É" is not "é", RFC 4343).
    return name.upper() if rng.random() < 0.1 else name


def random_record(rng: random.Random) -> Record:
    """One record a peer on this link might send about the watched type, or junk beside it."""
    ttl = rng.choice((0, 1, 2, 3, 120, 4500, 0x7FFFFFFF))
    flush = rng.random() < 0.5
    name = instance_name(rng)
    host = rng.choice(HOSTS)
    kind = rng.randrange(10)
    if kind < 3:
        roll = rng.random()
        if roll < 0.15:  # a type enumeration's, listing a type or something else
            owner, target = META, rng.choice((STYPE, "_ipp._tcp.local", host, name, "_x"))
        else:  # an instance of the type or its subtype, or (rarely) something else
            owner = SUBTYPE if roll < 0.35 else STYPE
            target = name if rng.random() < 0.95 else rng.choice((host, "Office Printer"))
        return PTRRecord(name=owner, ttl=ttl, target=target, cache_flush=rng.random() < 0.1)
    if kind == 3:
        return SRVRecord(
            name=name,
            ttl=ttl,
            priority=rng.randrange(3),
            weight=rng.randrange(3),
            port=rng.choice((0, 80, 8080, 65535)),
            target=rng.choice((*HOSTS, "", name)),
            cache_flush=flush,
        )
    if kind == 4:
        strings = rng.choice(
            ((), (b"",), (b"path=/",), (b"=x", b"noval", b"k=" + bytes(200)), (b"\xff\xfe=1",))
        )
        return TXTRecord(name=name, ttl=ttl, strings=strings, cache_flush=flush)
    if kind == 5:
        address = IPv4Address(f"192.0.2.{rng.randrange(1, 5)}")
        return ARecord(name=rng.choice((host, name)), ttl=ttl, address=address, cache_flush=flush)
    if kind == 6:
        address6 = IPv6Address(rng.choice(("fe80::1", "fe80::2", "2001:db8::1")))
        return AAAARecord(name=host, ttl=ttl, address=address6, cache_flush=flush)
    if kind == 7:
        types = rng.choice(((1,), (28,), (1, 28), (33, 16), ()))
        owner = rng.choice((host, name))
        return NSECRecord(name=owner, ttl=ttl, next_name=owner, types=types, cache_flush=True)
    if kind == 8:
        # A type nobody asks about, or a record of another class under a watched name.
        return UnknownRecord(
            name=rng.choice((name, STYPE)),
            ttl=ttl,
            type=rng.choice((65, 99, 65535)),
            rdata=bytes(rng.randrange(4)),
            rclass=rng.choice((1, 3, 255)),
        )
    # Junk: a long-lived unrelated name, so small caches evict.
    return ARecord(
        name=f"junk{rng.randrange(10**6)}.local", ttl=4500, address=IPv4Address("192.0.2.99")
    )


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A few byte-level edits: what a buggy device or a bad link makes of a good packet."""
    packet = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(5)
        at = rng.randrange(len(packet))
        if choice == 0:
            packet[at] = rng.randrange(256)
        elif choice == 1:
            packet[at] ^= 1 << rng.randrange(8)
        elif choice == 2:
            del packet[max(at, 12) :]  # cut off
        elif choice == 3:
            packet[at] = 0xC0  # a pointer where a label or a length was
        else:
            packet[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(packet)


def random_packet(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.03:
        return adversarial.BUILDERS[rng.choice(HOSTILE)]()
    if roll < 0.06:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    records = [random_record(rng) for _ in range(rng.randint(1, 8))]
    split = rng.randint(0, len(records))
    flags = rng.choice((0x8400, 0x8400, 0x8400, 0x8000, 0x0000, 0x8401, 0x8C00))
    questions = [Question(STYPE, 12)] if rng.random() < 0.2 else []
    data = encode_message(
        Message(
            flags=flags,
            questions=questions,
            answers=records[:split],
            additionals=records[split:],
        )
    )
    return mutate(rng, data) if rng.random() < 0.3 else data


def schedule(rng: random.Random, net: FakeNet, count: int) -> Counter[str]:
    """``count`` packets over DURATION seconds, some in bursts at one instant; returns how many
    were sent from each kind of source the receive handler drops unparsed."""
    start = net.clock()
    first, second, third = net.transports
    dropped: Counter[str] = Counter()
    when = 0.0
    for _ in range(count):
        if rng.random() < 0.7:
            when = rng.uniform(0, DURATION)  # else the same instant as the last: a batch
        data = random_packet(rng)
        roll = rng.random()
        if roll < 0.06:
            kind = rng.choice(sorted(DROPPED_SOURCES))
            source, interface = DROPPED_SOURCES[kind]
            dropped[kind] += 1
            net.later(when, data, first, source, interface)
        elif roll < 0.25:
            net.later(when, data, second, SECOND_PEER, SECOND.index)
        elif roll < 0.4:
            net.later(when, data, third, V6_PEER, IFINDEX)
        elif roll < 0.41:
            dropped["dropped_off_link"] += 1
            net.later(when, data, third, ("2001:db8:99::1", 5353), IFINDEX)
        else:
            net.later(when, data, first, PEER, IFINDEX)
    assert net.clock() == start
    return dropped


def check_cache(cache: RecordCache) -> None:
    """The cache's state against the invariants its header states (it reads internals: a
    failure here names the broken structure, where the public reads would only drift)."""
    entries = cache._entries
    assert len(entries) <= cache.max_records
    for key, stored in entries.items():
        members = cache._buckets[key[0]]
        assert key == members if not isinstance(members, dict) else key in members
        filed, expires = stored[6], stored[2]
        # Filed in a group that comes up no later than it expires, and holds it.
        assert filed <= expires, (key, stored)
        assert key in cache._due[filed], (key, stored)
    for bucket, members in cache._buckets.items():
        if isinstance(members, dict):
            assert members, bucket
            assert all(key in entries and key[0] == bucket for key in members)
            if bucket[0] != "\x0c":
                assert len(members) <= MAX_RRSET
        else:
            assert members in entries and members[0] == bucket
    assert set(cache._names) <= set(entries)
    assert set(cache._due) <= set(cache._heap)
    # Every group item is the current filing of a live entry or counted as stale.
    assert cache._stale == sum(len(group) for group in cache._due.values()) - len(entries)


class Watched:
    """What a watch of ``asked`` (the type or its subtype) said so far, checked as it is said:
    an instance is added before it is updated or removed, and never added twice without a
    removal between."""

    def __init__(self, asked: str) -> None:
        self.asked = asked
        self.live: dict[str, ServiceEvent] = {}
        self.kinds: Counter[str] = Counter()

    def see(self, event: ServiceEvent, q: Querier, now: float, fresh: bool) -> None:
        """``fresh``: the watch's consumer did nothing else since the clock last moved. Events
        wait in the watch while its consumer is busy elsewhere, and are true as of when they
        were made: an instance added then may have gone since (its removal comes next)."""
        info = event.info
        key = name_key(info.name)
        self.kinds[event.kind] += 1
        assert name_key(info.type) == STYPE  # as the peer spelled it
        assert key.endswith("." + STYPE)  # (mutations make other instance names)
        assert 0 <= info.port <= 65535
        if event.kind == "added":
            assert key not in self.live, event
            self.live[key] = event
        else:
            assert key in self.live, event
            if event.kind == "removed":
                del self.live[key]
            else:
                assert event.kind == "updated"
                assert event.info != self.live[key].info, "an update that changes nothing"
                self.live[key] = event
        if fresh:
            # A live instance has its PTR record in the cache; a removed one has none left, or
            # no SRV record that names a host: it expired, or says the instance is decidedly
            # not available (RFC 2782: target ".").
            listed = key in live_ptrs(q, self.asked, now)
            if event.kind == "removed":
                assert not listed or build_service_info(q.cache, info.name, now) is None, event
            else:
                assert listed, event

    def check_end(self, q: Querier, now: float) -> None:
        # Nothing is reported live that the cache no longer lists.
        listed = live_ptrs(q, self.asked, now)
        assert set(self.live) <= listed, sorted(set(self.live) - listed)


def live_ptrs(q: Querier, asked: str, now: float) -> set[str]:
    """Keys of the targets of the live PTR records of the watched type."""
    return {name_key(getattr(e.record, "target", "")) for e in q.cache.entries(asked, 12, now)}


def calls(rng: random.Random, q: Querier) -> None:
    """One other call, sharing the cache and the network with the watch."""
    roll = rng.randrange(6)
    timeout = rng.choice((0.0, 0.3, 1.5))
    if roll == 0:
        if rng.random() < 0.5:
            info = q.resolve_service(instance_name(rng), timeout=timeout)
        else:  # the instance label as a person writes it
            label = unescape_label(rng.choice(INSTANCES))
            info = q.resolve_service(instance=label, type="_http._tcp", timeout=timeout)
            assert info is None or name_key(info.instance) == name_key(label)
        assert info is None or name_key(info.type) == STYPE
    elif roll == 1:
        for info in q.browse(rng.choice((STYPE, SUBTYPE)), timeout=timeout):
            assert name_key(info.type) == STYPE  # as the peer spelled it
    elif roll == 2:
        for address in q.resolve_host(rng.choice(HOSTS), timeout=timeout):
            assert isinstance(address, (IPv4Address, IPv6Address))
    elif roll == 3:
        rtype = rng.choice(("A", "PTR", "TXT", "NSEC", "ANY"))
        for record in q.query(rng.choice((STYPE, *HOSTS)), rtype, timeout=timeout):
            assert isinstance(record, Record)
    elif roll == 4:
        for found in q.service_types(timeout=timeout):
            service, protocol, domain = split_name(name_key(found))  # (mutations make others)
            assert service[0] == "_" and protocol in ("_tcp", "_udp") and domain == "local"
    else:
        q.process(0)


@pytest.fixture
def net() -> Iterator[FakeNet]:
    net = FakeNet()
    yield net
    close_all(net.transports)


def replier(rng: random.Random, replies: Counter[str]) -> Responder:
    """A responder for a one-shot querier: most queries get a random packet back, with the
    query's ID, from an ephemeral port, within 0.3 s."""

    def reply(message: Message, net: FakeNet, transport: FakeTransport) -> None:
        if rng.random() < 0.3:
            return
        data = bytearray(random_packet(rng))
        if len(data) >= 2:
            data[:2] = message.id.to_bytes(2, "big")
        source = V6_PEER if transport.family == socket.AF_INET6 else PEER
        interface = transport.interfaces[0].index
        if source == PEER and interface == SECOND.index:
            source = SECOND_PEER
        replies["sent"] += 1
        net.later(rng.uniform(0.001, 0.3), bytes(data), transport, (source[0], 40001), interface)

    return reply


@contextlib.contextmanager
def same_in_every_process(seed: int) -> Iterator[None]:
    """Refresh jitter comes from salted str hashes, one-shot query IDs from the random module:
    both pinned here, so a seed is the same history in every process and a failure reproduces
    (24 seeds once failed under some hash seeds only)."""

    def jitter(entry: CacheEntry) -> float:
        return zlib.crc32(repr(entry.key).encode()) % 1024 / 1024 * REFRESH_JITTER

    with (
        mock.patch.object(CacheEntry, "jitter", property(jitter)),
        mock.patch("mdnsq.querier.random", random.Random(seed)),
    ):
        yield


def run_history(net: FakeNet, seed: int) -> tuple[Counter[str], Counter[str]]:
    """One random history, checked as it goes; returns the watch's event kinds and what the
    Querier and its cache counted."""
    with same_in_every_process(seed):
        return _run_history(net, seed)


def _run_history(net: FakeNet, seed: int) -> tuple[Counter[str], Counter[str]]:
    rng = random.Random(seed)
    # One seed in five: a one-shot querier (legacy unicast, RFC 6762 §5.1). It takes only
    # replies that carry a query's ID, so a responder answers its queries with random packets.
    one_shot = seed % 5 == 4
    first = net.transport(interfaces=[LAN])
    second = net.transport(interfaces=[SECOND])
    third = net.transport(family=socket.AF_INET6, interfaces=[LAN])
    q = Querier(
        transports=[first, second, third],  # type: ignore[list-item]
        one_shot=one_shot,
        clock=net.clock,
        wait=net.wait,
        cache_size=rng.choice((24, 64, 4096)),
    )
    sent = rng.randint(60, 240)
    dropped = schedule(rng, net, sent)
    replies = Counter[str]()
    if one_shot:
        net.responders.append(replier(random.Random(~seed), replies))
    watched = Watched(rng.choice((STYPE, SUBTYPE)))
    end = net.clock() + DURATION + 5
    watch = q.watch(watched.asked, timeout=end - net.clock())
    busy_until = None  # when the last other call returned
    for event in watch:
        now = net.clock()
        watched.see(event, q, now, fresh=busy_until is None or now > busy_until)
        check_cache(q.cache)
        # Not past the watch's deadline: it reads the cache once more when it ends, and a
        # call after that would change the cache that check_end() compares it with.
        if rng.random() < 0.5 and now < end:
            calls(rng, q)
            busy_until = net.clock()
            check_cache(q.cache)
    watched.check_end(q, net.clock())
    if one_shot:  # replies to the last queries may still be on their way: let them arrive
        while net._schedule:
            net.wait(None)
            q.process(0)
    # The watch ran to its deadline: everything scheduled has arrived and been read.
    assert not net._schedule
    q.process(0)
    assert not any(t._queue for t in net.transports)
    check_cache(q.cache)

    # Every call ended, and took its wants and its followed rrsets with it.
    assert not q._tasks
    assert not q.cache._wanted and not q.cache._follow
    # Every packet read is counted once: accepted, or dropped for one stated reason; the
    # sources that are dropped unparsed, exactly as many as were sent.
    stats = Counter(q.stats())
    assert stats["received"] == sent + replies["sent"] == sum(t.received for t in net.transports)
    assert stats["received"] == stats["accepted"] + sum(stats[k] for k in DROP_KEYS)
    if one_shot:
        dropped.pop("dropped_source_port", None)  # any port may answer a one-shot query
        # A one-shot reply shows it is from the link by echoing a query's random ID, read
        # before anything else: such a source's packet is dropped for its ID (unless its
        # random first bytes happen to be one), never as off-link.
        dropped.pop("dropped_off_link", None)
        assert stats["dropped_off_link"] == 0, stats
    for kind, count in dropped.items():
        assert stats[kind] == count, (kind, stats)
    stats.update(evicted=q.cache.evicted, flushed=q.cache.flushed)
    # What the Querier sent stays a well-formed query (FakeNet parsed each one already).
    for transport in net.transports:
        for data, _ in transport.sent:
            message = parse_message(data)
            assert len(data) <= 1460 and not message.flags & 0xF80F, message
            assert all(record.ttl > 0 for record in message.answers), message  # known answers
    q.close()
    return watched.kinds, stats


@pytest.mark.parametrize("seed", range(100))
def test_a_watch_and_other_calls_survive_a_random_history(net: FakeNet, seed: int) -> None:
    run_history(net, seed)


def test_the_histories_reach_every_stage() -> None:
    """A few histories together do what the test is for: the watch reports every kind of
    event, packets are dropped for each reason, records are skipped, evicted and flushed."""
    kinds: Counter[str] = Counter()
    stats: Counter[str] = Counter()
    for seed in range(8):
        net = FakeNet()
        try:
            seen, counted = run_history(net, seed)
        finally:
            close_all(net.transports)
        kinds.update(seen)
        stats.update(counted)
    assert kinds["added"] and kinds["updated"] and kinds["removed"], kinds
    reasons = ("dropped_malformed", "dropped_opcode_rcode", "dropped_wrong_id")  # last: one-shot
    for reason in (*DROPPED_SOURCES, *reasons):
        assert stats[reason], (reason, stats)
    for counted in ("accepted", "skipped_records", "evicted", "flushed", "questions_sent"):
        assert stats[counted], (counted, stats)
