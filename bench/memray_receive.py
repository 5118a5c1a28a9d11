"""Allocations per receive, measured with memray, for three ways of receiving one packet.

(a) naive:     a fresh ``bytearray(9000)`` per call, then an owned copy of the packet
(b) pooled:    ``UDPv4Transport.receive`` (pooled buffer, owned copy of the packet)
(c) zero-copy: ``UDPv4Transport.receive_with(parse)``, parsing straight from the pooled view
(d) batch:     ``UDPv4Transport.receive_batch(parse, 10, out)``, the querier's path: ten queued
               packets a call into a fresh list, one pooled buffer; figures per packet
plus (p) ``parse_message(bytes)`` alone, the size of "the parsed result" that (c) is judged by.

Method: the packets are queued on the socket before the tracker starts (so the sender's
allocations are not counted), the tracked loop receives them one per call, and every
allocation record memray reports (``trace_python_allocators=True``: pymalloc and malloc both)
is summed and divided by the number of calls. Results of each call are dropped at once, so the
figures are allocations made, not memory held. Only one memray Tracker may run at a time.

Used by bench/bench_receive_alloc.py (targets asserted) and ``make profile`` (run as a script:
writes bench/out/receive.bin and a flame graph bench/out/receive-flamegraph.html).
Must run inside tests/netns-run: it sends on lo.
"""

from __future__ import annotations

import collections
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import alloc_count
import memray

from mdnsq import UDPv4Transport, parse_message
from mdnsq.transport import MDNS_GROUP_V4, MDNS_PORT

PACKET_PATHS = (
    Path(__file__).parent / "data" / "dnssd-response-306.bin",
    Path("/work/shared/reference/dnssd-response-306.bin"),
)
ALLOCATING = {
    memray.AllocatorType.MALLOC,
    memray.AllocatorType.CALLOC,
    memray.AllocatorType.REALLOC,
    memray.AllocatorType.PYMALLOC_MALLOC,
    memray.AllocatorType.PYMALLOC_CALLOC,
    memray.AllocatorType.PYMALLOC_REALLOC,
    memray.AllocatorType.POSIX_MEMALIGN,
    memray.AllocatorType.ALIGNED_ALLOC,
    memray.AllocatorType.MEMALIGN,
    memray.AllocatorType.VALLOC,
    memray.AllocatorType.PVALLOC,
    memray.AllocatorType.MMAP,
}


BATCH = 10  # packets per receive_batch call in path (d)
BATCHED = "d batch receive_batch(parse)"


def load_packet() -> bytes:
    for path in PACKET_PATHS:
        if path.exists():
            return path.read_bytes()
    raise FileNotFoundError("dnssd-response-306.bin not found in bench/data or /work/shared")


# Native frames that mark memray's own cost on CPython 3.11: its profile hook makes the
# interpreter build a frame object for every Python call (plain 3.11 never does), so those
# allocations exist only while tracing and are reported apart.
TRACER_FRAMES = {"call_trace", "call_trace_protected", "trace_function_entry"}


def tracer_only(native: list[str]) -> bool:
    """True for an allocation that exists only because memray's profile hook is installed.

    Three kinds on CPython 3.11: frame objects (and line tables) built for the hook; bound
    builtin methods that ``trace_call_function`` creates to report a C call; and iterators
    made by plain UNPACK_SEQUENCE, which tracing runs instead of the specialised
    UNPACK_SEQUENCE_TUPLE / _TWO_TUPLE that unpack a tuple without one.
    """
    if TRACER_FRAMES.intersection(native):
        return True
    if "PyCMethod_New" in native:
        after = native[native.index("PyCMethod_New") + 1 :]
        if after[:1] == ["trace_call_function"]:
            return True
    return "tuple_iter" in native and "unpack_iterable" in native


@dataclass
class AllocReport:
    name: str
    calls: int
    count: int = 0
    total: int = 0
    largest: int = 0
    tracer_count: int = 0
    tracer_bytes: int = 0
    # The same loop counted again with no tracer at all (alloc_count.py), when available.
    untraced_count: int | None = None
    untraced_bytes: int | None = None
    sites: collections.Counter[str] = field(default_factory=collections.Counter)
    site_bytes: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def per_call_count(self) -> float:
        return self.count / self.calls

    @property
    def per_call_bytes(self) -> float:
        return self.total / self.calls

    def breakdown(self, top: int = 15) -> str:
        lines = [
            f"{self.name}: {self.per_call_bytes:.0f} B in {self.per_call_count:.1f} allocations "
            f"per call, largest {self.largest} B (memray's tracer added "
            f"{self.tracer_bytes / self.calls:.0f} B in {self.tracer_count / self.calls:.1f} "
            "tracer-only objects per call, left out)"
        ]
        if self.untraced_count is not None and self.untraced_bytes is not None:
            lines.append(
                f"  cross-check without any tracer: {self.untraced_bytes / self.calls:.0f} B in "
                f"{self.untraced_count / self.calls:.1f} allocations per call"
            )
        for site, n in self.sites.most_common(top):
            per_call = self.site_bytes[site] / self.calls
            lines.append(f"  {n / self.calls:5.2f}/call {per_call:6.0f} B/call  {site}")
        return "\n".join(lines)


def _site(record: memray.AllocationRecord) -> str:
    """The innermost Python frame and the C function that asked for memory."""
    frames = record.stack_trace(max_stacks=1)
    where = "<no Python frame>"
    if frames:
        func, file, line = frames[0]
        where = f"{func} ({Path(file).name}:{line})"
    native = [f[0] for f in record.native_stack_trace(max_stacks=4)]
    allocator = next((n for n in native if not n.startswith(("gc_alloc", "_PyObject_", "Py"))), "?")
    return f"{where} [{allocator}]"


def track(name: str, calls: int, body: Callable[[], None], path: Path) -> AllocReport:
    """Run ``body`` (which makes ``calls`` calls) under memray and sum what it allocated."""
    if path.exists():
        path.unlink()
    with memray.Tracker(str(path), trace_python_allocators=True, native_traces=True):
        body()
    report = AllocReport(name, calls)
    for record in memray.FileReader(str(path)).get_allocation_records():
        if record.allocator not in ALLOCATING:
            continue
        # Keep only allocations made under the measured loop (not memray's own start/stop).
        frames = record.stack_trace()
        if not any(func == "_measured_loop" for func, _, _ in frames):
            continue
        n = record.n_allocations
        if tracer_only([f[0] for f in record.native_stack_trace()]):
            report.tracer_count += n
            report.tracer_bytes += record.size
            continue
        report.count += n
        report.total += record.size
        report.largest = max(report.largest, record.size // max(n, 1))
        site = _site(record)
        report.sites[site] += n
        report.site_bytes[site] += record.size
    return report


def _queue(sender: socket.socket, packet: bytes, n: int) -> None:
    for _ in range(n):
        sender.sendto(packet, (MDNS_GROUP_V4, MDNS_PORT))


def _sender() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    return s


def naive_receive(sock: socket.socket, ancsize: int) -> tuple[bytes, tuple[str, int], int]:
    """What a first attempt looks like: a new 9000-byte buffer for every datagram."""
    buf = bytearray(9000)
    nbytes, ancdata, _flags, address = sock.recvmsg_into([buf], ancsize)
    index = int.from_bytes(ancdata[0][2][:4], sys.byteorder) if ancdata else 0
    return bytes(buf[:nbytes]), address, index


def _measured_loop(step: Callable[[], object], calls: int) -> None:
    for _ in range(calls):
        if step() is None:
            raise RuntimeError("a queued packet did not arrive")


def measure_all(
    calls: int = 100, warmup: int = 20, out_dir: Path | None = None
) -> dict[str, AllocReport]:
    """Reports for paths a, b, c, d and p (see the module comment)."""
    packet = load_packet()
    tmp = Path(tempfile.mkdtemp(prefix="mdnsq-memray-")) if out_dir is None else out_dir
    tmp.mkdir(parents=True, exist_ok=True)
    reports: dict[str, AllocReport] = {}
    counter = alloc_count.load()
    with UDPv4Transport(interfaces=["lo"]) as transport, _sender() as sender:
        sock = transport._sock
        ancsize = transport._ancsize

        def parse(
            view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
        ) -> object:
            return parse_message(view)

        steps: dict[str, Callable[[], object]] = {
            # The transport's socket is non-blocking; the packets are queued before each loop.
            "a naive": lambda: naive_receive(sock, ancsize),
            "b pooled receive": lambda: transport.receive(1.0),
            "c zero-copy receive_with(parse)": lambda: transport.receive_with(parse, 1.0),
        }

        def batch() -> object:
            out: list[object] = []
            transport.receive_batch(parse, BATCH, out)
            return out if len(out) == BATCH else None

        steps[BATCHED] = batch
        for name, step in steps.items():
            per_step = BATCH if name == BATCHED else 1  # packets a step receives
            for _ in range(0, warmup, 100):  # the socket queue holds ~200 packets
                _queue(sender, packet, 100)
                _measured_loop(step, 100 // per_step)
            _queue(sender, packet, calls)
            reports[name] = track(
                name,
                calls,
                lambda step=step, n=calls // per_step: _measured_loop(step, n),
                tmp / "alloc.bin",
            )
            if counter is not None:
                _queue(sender, packet, calls)
                counter.start()
                _measured_loop(step, calls // per_step)
                untraced = counter.stop()
                reports[name].untraced_count, reports[name].untraced_bytes = untraced
        parse_step = lambda: parse_message(packet)  # noqa: E731
        _measured_loop(parse_step, warmup)
        name = "p parse_message(bytes) alone"
        reports[name] = track(
            name, calls, lambda: _measured_loop(parse_step, calls), tmp / "alloc.bin"
        )
        if counter is not None:
            counter.start()
            _measured_loop(parse_step, calls)
            reports[name].untraced_count, reports[name].untraced_bytes = counter.stop()
    return reports


def profile(out_dir: Path, calls: int = 2000) -> Path:
    """Record the zero-copy hot path and render memray's flame graph next to it."""
    packet = load_packet()
    out_dir.mkdir(parents=True, exist_ok=True)
    capture = out_dir / "receive.bin"
    html = out_dir / "receive-flamegraph.html"
    for stale in (capture, html):
        if stale.exists():
            stale.unlink()
    with UDPv4Transport(interfaces=["lo"]) as transport, _sender() as sender:

        def parse(
            view: memoryview, source: tuple[str, int], index: int, to_group: bool, arrived: float
        ) -> object:
            return parse_message(view)

        with memray.Tracker(str(capture), trace_python_allocators=True):
            for start in range(0, calls, 100):
                _queue(sender, packet, 100)
                for _ in range(min(100, calls - start)):
                    transport.receive(1.0)
                    _queue(sender, packet, 1)
                    transport.receive_with(parse, 1.0)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "memray",
            "flamegraph",
            "--temporary-allocation-threshold",
            "8",  # freed within 8 other allocations: the per-packet churn
            "--no-web",
            "-f",
            "-o",
            str(html),
            str(capture),
        ],
        check=True,
    )
    return html


def main() -> None:
    out = Path(os.environ.get("MDNSQ_BENCH_OUT", Path(__file__).parent / "out"))
    for report in measure_all(out_dir=out / "memray").values():
        print(report.breakdown())
        print()
    print("flame graph:", profile(out))


if __name__ == "__main__":
    main()
