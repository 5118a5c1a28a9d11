"""A bounded flooder: hostile mDNS traffic as fast as one Python process can send it.

Run inside a lab host (tests/netlab.py), never on a real interface:
    ip netns exec hN python -m tests.hostile --seconds 3 --kinds unrelated,garbage ...
It prints one JSON line ``{"event": "started"}`` when its sockets are ready (tests wait for it,
no sleeping), then sends until ``--seconds`` have passed or ``--max-packets`` were sent, and
prints a JSON report: packets and bytes sent per kind, send errors (ENOBUFS...), elapsed time.

Kinds (round-robin, one packet of each in turn, so every kind gets its share of the rate):
- unrelated: valid responses, 4 records of a fresh instance each time (TTL 4500: long-lived junk
  that an expiry-ordered cache would keep in preference to the real, shorter-lived records)
- many: 9000-byte responses of ~400 A records with fresh names (cache pressure, IP fragments)
- garbage: random bytes, 12..1500 long
- oversized: 9500-byte datagrams (more than the 9000-byte receive buffers)
- hostile: the parser-costly packets of fuzz/adversarial.py
- goodbyes: TTL-0 records of --service (PTR, SRV, A), i.e. goodbyes for records the querier holds
- spoofed: --service's SRV and A with a wrong port / address, cache-flush, from --spoof-from
  (an address outside the link's subnet), which the querier must drop (RFC 6762 §11)
- queries: queries for --service with a long known-answer list (a known-answer storm)
- flush: cache-flush responses for --ask-name with changing data (a cache-flush storm)
- ptrs: PTR records of --storm-type, a fresh instance each time, TTL 1 (each one is a new
  instance a browse/watch might want to resolve)
"""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import random
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz import adversarial
from mdnsq import (
    FLAG_AA,
    FLAG_QR,
    ARecord,
    Message,
    PTRRecord,
    Question,
    Record,
    RecordType,
    SRVRecord,
    TXTRecord,
    encode_message,
)

GROUP = ("224.0.0.251", 5353)
RESPONSE = FLAG_QR | FLAG_AA
ALL_KINDS = (
    "unrelated",
    "many",
    "garbage",
    "oversized",
    "hostile",
    "goodbyes",
    "spoofed",
    "queries",
    "flush",
    "ptrs",
)
SPOOF_PORT = 6666
SPOOF_ADDRESS = "203.0.113.66"


def _response(*records: Record) -> bytes:
    return encode_message(Message(flags=RESPONSE, answers=records))


class Packets:
    """Endless packet streams, one per kind; names carry a counter so nothing repeats."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.n = itertools.count()
        self.hostile = [build() for build in adversarial.BUILDERS.values()]

    def unrelated(self) -> bytes:
        i = next(self.n)
        name = f"junk {i}._flood{i % 50}._tcp.local"
        host = f"junk-{i}.local"
        return _response(
            PTRRecord(name=f"_flood{i % 50}._tcp.local", ttl=4500, target=name),
            SRVRecord(name=name, ttl=4500, priority=0, weight=0, port=i & 0xFFFF, target=host),
            TXTRecord(name=name, ttl=4500, strings=(b"junk=%d" % i,)),
            ARecord(name=host, ttl=4500, address=IPv4Address(0xC0000200 + (i & 0xFF))),
        )

    def many(self) -> bytes:
        i = next(self.n)
        records = [
            ARecord(name=f"m{i}-{j}.local", ttl=4500, address=IPv4Address(0xC6336400 + (j & 0xFF)))
            for j in range(420)
        ]
        while True:
            try:
                return _response(*records)
            except ValueError:  # over 9000 bytes: drop a few
                del records[-10:]

    def garbage(self) -> bytes:
        return self.rng.randbytes(self.rng.randint(12, 1500))

    def oversized(self) -> bytes:
        return struct.pack("!6H", 0, RESPONSE, 0, 1, 0, 0) + bytes(9488)

    def hostile_packet(self) -> bytes:
        return self.hostile[next(self.n) % len(self.hostile)]

    def _service_records(self, ttl: int, port: int, address: str) -> list[Record]:
        args = self.args
        stype = args.service.split(".", 1)[1]
        return [
            PTRRecord(name=stype, ttl=ttl, target=args.service),
            SRVRecord(
                name=args.service,
                ttl=ttl,
                priority=0,
                weight=0,
                port=port,
                target=args.host,
                cache_flush=ttl > 0,
            ),
            ARecord(name=args.host, ttl=ttl, address=IPv4Address(address), cache_flush=ttl > 0),
        ]

    def goodbyes(self) -> bytes:
        return _response(*self._service_records(0, self.args.port, self.args.address))

    def spoofed(self) -> bytes:
        return _response(*self._service_records(4500, SPOOF_PORT, SPOOF_ADDRESS))

    def queries(self) -> bytes:
        i = next(self.n)
        known = tuple(
            PTRRecord(name="_http._tcp.local", ttl=4500, target=f"known {i}-{j}._http._tcp.local")
            for j in range(40)
        )
        questions = (
            Question(self.args.service, RecordType.SRV),
            Question(self.args.ask_name, RecordType.A),
        )
        return encode_message(Message(questions=questions, answers=known))

    def flush(self) -> bytes:
        i = next(self.n)
        return _response(
            ARecord(
                name=self.args.ask_name,
                ttl=120,
                address=IPv4Address(0xC0000200 + (i & 0xFF)),
                cache_flush=True,
            ),
            SRVRecord(
                name=f"flush {i & 0xFF}.{self.args.storm_type}",
                ttl=120,
                priority=0,
                weight=0,
                port=i & 0xFFFF,
                target="flush.local",
                cache_flush=True,
            ),
        )

    def ptrs(self) -> bytes:
        i = next(self.n)
        return _response(
            PTRRecord(name=self.args.storm_type, ttl=1, target=f"storm {i}.{self.args.storm_type}")
        )

    def stream(self, kinds: list[str]) -> Iterator[tuple[str, bytes]]:
        makers: dict[str, Callable[[], bytes]] = {
            "unrelated": self.unrelated,
            "many": self.many,
            "garbage": self.garbage,
            "oversized": self.oversized,
            "hostile": self.hostile_packet,
            "goodbyes": self.goodbyes,
            "spoofed": self.spoofed,
            "queries": self.queries,
            "flush": self.flush,
            "ptrs": self.ptrs,
        }
        # Build a pool of packets up front so the send loop is as fast as Python allows; the
        # pool is large enough that names keep changing (the cache sees thousands of records).
        pool = {kind: [makers[kind]() for _ in range(_variants(kind, self.args))] for kind in kinds}
        return self._cycle(kinds, pool)

    @staticmethod
    def _cycle(kinds: list[str], pool: dict[str, list[bytes]]) -> Iterator[tuple[str, bytes]]:
        for round_ in itertools.count():
            for kind in kinds:
                variants = pool[kind]
                yield kind, variants[round_ % len(variants)]


def _variants(kind: str, args: argparse.Namespace) -> int:
    # The 9000-byte kinds are costly to build and each already carries hundreds of records.
    variants: int = args.variants
    heavy = {"many": 24, "hostile": len(adversarial.BUILDERS), "oversized": 1}
    return min(variants, heavy.get(kind, variants))


def _socket(bind: str, ifindex: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    mreqn = bytes(4) + socket.inet_aton(bind) + struct.pack("@i", ifindex)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
    sock.bind((bind, 5353))
    return sock


def _socket_v6(ifindex: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    sock.bind(("::", 5353))  # from this host's link-local address on --ifname
    return sock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-packets", type=int, default=2_000_000)
    parser.add_argument("--kinds", default=",".join(ALL_KINDS))
    parser.add_argument("--source", required=True, help="this host's on-link address")
    parser.add_argument("--spoof-from", help="an off-link address on this host (for spoofed)")
    parser.add_argument("--ifname", default="eth0")
    parser.add_argument("--service", default="x._http._tcp.local", help="instance to attack")
    parser.add_argument("--host", default="x.local", help="its SRV target")
    parser.add_argument("--port", type=int, default=80, help="its port")
    parser.add_argument("--address", default="192.0.2.1", help="its IPv4 address")
    parser.add_argument("--ask-name", default="nobody.local", help="name for flush/queries")
    parser.add_argument("--storm-type", default="_storm._tcp.local", help="type for ptrs")
    parser.add_argument("--variants", type=int, default=400, help="distinct packets per kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ipv6",
        action="store_true",
        help="flood over IPv6 from the link-local address (--to: ff02::fb or a link-local one)",
    )
    parser.add_argument(
        "--to",
        default=GROUP[0],
        help="destination address (default the mDNS group; a unicast address floods one host only)",
    )
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        parser.error(f"unknown kinds: {sorted(unknown)}")
    ifindex = socket.if_nametoindex(args.ifname)
    if args.ipv6:
        # No "spoofed" here: every link-local source is on-link, so there is nothing to spoof.
        main_sock = _socket_v6(ifindex)
        spoof_sock = None
    else:
        main_sock = _socket(args.source, ifindex)
        spoof_sock = _socket(args.spoof_from, ifindex) if args.spoof_from else None
    stream = Packets(args).stream(kinds)  # builds every packet before "started"
    sent: Counter[str] = Counter()
    sent_bytes: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    destination: tuple[str, int] | tuple[str, int, int, int] = (args.to, 5353)
    if args.ipv6:
        destination = (args.to, 5353, 0, ifindex)
    print(json.dumps({"event": "started"}), flush=True)
    start = time.monotonic()
    deadline = start + args.seconds
    total = 0
    for kind, packet in stream:
        if total >= args.max_packets or (total & 63 == 0 and time.monotonic() >= deadline):
            break
        sock = spoof_sock if kind == "spoofed" and spoof_sock is not None else main_sock
        total += 1
        try:
            sock.sendto(packet, destination)
        except OSError as exc:
            errors[errno.errorcode.get(exc.errno or 0, str(exc.errno))] += 1
            continue
        sent[kind] += 1
        sent_bytes[kind] += len(packet)
    elapsed = time.monotonic() - start
    report = {
        "event": "done",
        "seconds": round(elapsed, 3),
        "sent": dict(sent),
        "sent_total": sum(sent.values()),
        "bytes_total": sum(sent_bytes.values()),
        "send_errors": dict(errors),
        "packets_per_second": round(sum(sent.values()) / elapsed) if elapsed else 0,
    }
    print(json.dumps(report), flush=True)
    main_sock.close()
    if spoof_sock is not None:
        spoof_sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
