"""`make demo`'s sample services: python-zeroconf advertising a printer, a web server, an SSH host.

Runs inside a host namespace that demo/run.py made (never on a real network). Prints one line,
``ready``, once every service is answerable, so the demo waits for a signal instead of sleeping;
SIGINT or SIGTERM withdraws the services (goodbye packets) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from types import FrameType

from zeroconf import IPVersion, ServiceInfo, Zeroconf

# (instance, type, port, host, TXT). The printer's name has spaces and UTF-8 on purpose (not a
# dot: python-zeroconf would split the label there).
SERVICES = [
    (
        "Café Printer – 2nd floor",
        "_ipp._tcp",
        631,
        "demo-printer",
        {"txtvers": "1", "rp": "ipp/print", "ty": "Demo Colour Laser", "note": "near the café"},
    ),
    ("Demo Web Server", "_http._tcp", 8080, "demo-web", {"path": "/"}),
    ("demo-host", "_ssh._tcp", 22, "demo-host", {}),
]


def build(
    instance: str, kind: str, port: int, host: str, txt: dict[str, str], addresses: list[str]
) -> ServiceInfo:
    full_type = f"{kind}.local."
    return ServiceInfo(
        full_type,
        f"{instance}.{full_type}",
        port=port,
        properties=txt,
        server=f"{host}.local.",
        parsed_addresses=addresses,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--address", action="append", required=True, help="IPv4 address to serve on and publish"
    )
    parser.add_argument("--ifindex", type=int, help="also serve IPv6 on this interface")
    parser.add_argument("--address6", action="append", default=[], help="IPv6 address to publish")
    args = parser.parse_args()

    interfaces: list[str | int] = list(args.address)
    if args.ifindex is not None:
        interfaces.append(args.ifindex)
    version = IPVersion.All if args.ifindex is not None else IPVersion.V4Only
    zc = Zeroconf(interfaces=interfaces, ip_version=version)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        infos = [build(*spec, [*args.address, *args.address6]) for spec in SERVICES]

        async def register_all() -> None:
            # Names in the demo network are unique, so no probing: ready in a fraction of a second.
            for info in infos:
                await zc.async_register_service(info, cooperating_responders=True)

        assert zc.loop is not None
        asyncio.run_coroutine_threadsafe(register_all(), zc.loop).result(10)
        print("ready", flush=True)
        while not stop.wait(3600):
            pass
    finally:
        zc.close()  # goodbyes for every service
    return 0


if __name__ == "__main__":
    sys.exit(main())
