"""CPU per received packet on loopback: naive, pooled, zero-copy + parse, and python-zeroconf.

One sender process streams the same 306-byte DNS-SD response (ID varied per packet, because
python-zeroconf ignores a packet identical to one it saw within the last second) to
224.0.0.251:5353 on lo, in bursts of 100 - what a querier sees after asking a busy network -
waiting until the receiving socket's queue is empty (rx_queue in /proc/net/udp) before the next
burst, so no receiver is ever measured while the kernel drops packets. CPU is the receiving
process's CPU time (user + system, all threads) from first to last packet, divided by packets
received. The receivers take turns in interleaved rounds so that load from elsewhere on the
machine falls on all of them alike; all figures come from one run, so compare the ratios.

``make bench`` streams 200,000 packets per receiver (4 rounds of 50,000); the quick pass in
``make test`` 1,000 in one round (MDNSQ_BENCH_PACKETS overrides). Must run inside
tests/netns-run.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from memray_receive import load_packet, naive_receive  # bench/ is on sys.path under pytest

from mdnsq import UDPv4Transport, parse_message
from tests import netlab

FULL_RUN = 200_000
QUICK_RUN = 1_000
ROUNDS_FULL = 4
IDLE_END = 2.0  # a receiver stops after this long without a packet (only if packets were lost)
RUN_LIMIT = 600.0  # a hang guard for one receiver's run, never reached
OUT = Path(__file__).parent / "out"

SENDER = textwrap.dedent(
    """
    import socket, struct, sys, time
    count, path, burst = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    packet = bytearray(open(path, "rb").read())

    def queued():
        total = 0
        with open("/proc/net/udp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[1].endswith(":14E9"):
                    total += int(fields[4].split(":")[1], 16)
        return total

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    for i in range(count):
        if i % burst == 0:
            while queued():
                time.sleep(0.0002)
        struct.pack_into("!H", packet, 0, i & 0xFFFF)
        s.sendto(packet, ("224.0.0.251", 5353))
    """
)
BURST = 100  # ~120 KB of kernel accounting: fits the default receive buffer

ZEROCONF = textwrap.dedent(
    """
    import resource, sys
    from zeroconf import Zeroconf

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    zc = Zeroconf(interfaces=["127.0.0.1"])
    print("ready", cpu(), flush=True)
    sys.stdin.readline()  # "start": the sender is about to run
    start = cpu()
    sys.stdin.readline()  # "stop": every packet has been read
    print("cpu", cpu() - start, flush=True)
    zc.close()
    """
)

NAIVE = "naive: bytearray(9000) per packet, owned copy"
POOLED = "pooled receive(): owned copy"
POOLED_PARSE = "pooled receive() + parse_message(copy)"
ZERO_COPY = "zero-copy receive_with(parse_message)"
ZEROCONF_NAME = "python-zeroconf 0.154 (its own loop, parses)"


def packets_to_send(benchmark: Any) -> int:
    if "MDNSQ_BENCH_PACKETS" in os.environ:
        return int(os.environ["MDNSQ_BENCH_PACKETS"])
    return QUICK_RUN if benchmark.disabled else FULL_RUN


def start_sender(count: int) -> subprocess.Popen[bytes]:
    packet_file = OUT / "stream-packet.bin"
    packet_file.write_bytes(load_packet())
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, str(count), str(packet_file), str(BURST)]
    )


def udp_5353_queue() -> tuple[int, int]:
    """(bytes queued, packets dropped) over the sockets bound to port 5353."""
    queued = drops = 0
    with open("/proc/net/udp") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[1].endswith(":14E9"):
                queued += int(fields[4].split(":")[1], 16)
                drops += int(fields[-1])
    return queued, drops


def run_in_process(count: int, receive_one: Callable[[], object]) -> tuple[int, float]:
    """(packets received, CPU seconds) for a receive function running in this process."""
    received = 0
    sender = start_sender(count)
    start = time.process_time()
    started = time.monotonic()
    # The idle cut-off counts from the last packet, or from the sender's exit if none came: a
    # sender still starting (an interpreter, on a busy machine) is not one that lost packets.
    last: float | None = None
    while received < count:
        if receive_one() is None:
            now = time.monotonic()
            if last is None and sender.poll() is not None:
                last = now
            if (last is not None and now - last > IDLE_END) or now - started > RUN_LIMIT:
                break
            continue
        received += 1
        last = time.monotonic()
    cpu = time.process_time() - start
    sender.wait(timeout=60)
    return received, cpu


def run_zeroconf(count: int) -> tuple[int, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ZEROCONF],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().startswith("ready")
        _, drops_before = udp_5353_queue()
        proc.stdin.write("start\n")
        proc.stdin.flush()
        sender = start_sender(count)
        sender.wait(timeout=600)
        deadline = time.monotonic() + 60
        while udp_5353_queue()[0] and time.monotonic() < deadline:
            time.sleep(0.01)  # waiting for zeroconf's loop to drain its socket
        _, drops_after = udp_5353_queue()
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        cpu = float(proc.stdout.readline().split()[1])
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return count - (drops_after - drops_before), cpu


def per_packet_us(received: int, cpu: float) -> float:
    return cpu / max(received, 1) * 1e6


def test_receive_throughput(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    netlab.require_private_netns()
    OUT.mkdir(parents=True, exist_ok=True)
    count = packets_to_send(benchmark)
    rounds = ROUNDS_FULL if count >= 10_000 else 1
    per_round = count // rounds
    runs: dict[str, list[tuple[int, float]]] = {}

    def parse(
        view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
    ) -> object:
        return parse_message(view)

    def one_round() -> None:
        with UDPv4Transport(interfaces=["lo"]) as t:
            sock, ancsize = t._sock, t._ancsize
            poller = select.poll()
            poller.register(sock, select.POLLIN)

            def naive() -> object:
                try:
                    return naive_receive(sock, ancsize)
                except BlockingIOError:
                    poller.poll(100)
                    return None

            def pooled_parse() -> object:
                got = t.receive(0.1)
                return None if got is None else parse_message(got.data)

            paths: dict[str, Callable[[], object]] = {
                NAIVE: naive,
                POOLED: lambda: t.receive(0.1),
                POOLED_PARSE: pooled_parse,
                ZERO_COPY: lambda: t.receive_with(parse, 0.1),
            }
            for name, receive_one in paths.items():
                runs.setdefault(name, []).append(run_in_process(per_round, receive_one))
        runs.setdefault(ZEROCONF_NAME, []).append(run_zeroconf(per_round))

    def run_all() -> None:
        for _ in range(rounds):
            one_round()

    benchmark.pedantic(run_all, rounds=1, iterations=1)

    totals = {name: (sum(r for r, _ in rs), sum(c for _, c in rs)) for name, rs in runs.items()}
    naive_us = per_packet_us(*totals[NAIVE])
    zc_us = per_packet_us(*totals[ZEROCONF_NAME])
    lines = [
        f"receive CPU per packet: {per_round} packets of 306 bytes over lo, in bursts of "
        f"{BURST}, x {rounds} interleaved round(s)",
        f"{'path':48} {'packets':>8} {'µs/pkt':>7} {'rounds min-max':>15} "
        f"{'vs naive':>9} {'vs zeroconf':>12}",
    ]
    for name, (received, cpu) in totals.items():
        us = per_packet_us(received, cpu)
        spread = [per_packet_us(r, c) for r, c in runs[name]]
        lines.append(
            f"{name:48} {received:8d} {us:7.2f} {min(spread):7.2f}-{max(spread):<7.2f} "
            f"{us / naive_us:8.2f}x {us / zc_us:11.2f}x"
        )
    table = "\n".join(lines)
    (OUT / "receive-throughput.txt").write_text(table + "\n")
    benchmark.extra_info["table"] = table
    if not benchmark.disabled:
        with capsys.disabled():
            print("\n" + table)

    for name, (received, _) in totals.items():
        # Flow control keeps every receiver from dropping: all (or nearly all) packets arrive.
        assert received >= per_round * rounds * 0.99, f"{name} received only {received}"
