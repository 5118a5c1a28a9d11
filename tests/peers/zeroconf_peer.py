"""python-zeroconf as a responder that a test drives over stdin/stdout.

Run as a subprocess (inside a lab host, or on lo) by tests/peers.py. Why a subprocess: a
peer must be a separate mDNS stack with its own sockets and its own namespace, and the test
must be able to kill it without goodbyes (SIGKILL) or stop it with goodbyes (SIGINT).

Protocol: one JSON object per line each way. After start-up the peer prints
``{"event": "ready"}``; then each command gets exactly one reply line, ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. Commands (``op``):
    register   {"services": [SERVICE, ...]}  registered concurrently, without probing
    unregister {"services": [[instance, type], ...]}  goodbyes sent before the reply
    update     {"service": SERVICE}  new TXT (or port) for a registered service
    quit       goodbyes for everything, then exit 0
SERVICE = {"instance", "type" ("_http._tcp"), "port", "txt" {key: str | null},
           "host_ttl", "other_ttl", "server" (optional host name)}.
SIGINT behaves like quit; SIGKILL vanishes silently. (SIGTERM would also skip goodbyes.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from zeroconf import IPVersion, ServiceInfo, Zeroconf

_TIMEOUT = 10.0


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Responder:
    def __init__(self, zc: Zeroconf, hostname: str, addresses: list[str]) -> None:
        self.zc = zc
        self.hostname = hostname
        self.addresses = addresses
        self.services: dict[tuple[str, str], ServiceInfo] = {}
        # Announcements still going out, per service: a goodbye must cancel them, or a late
        # announcement would bring the withdrawn service back with its full TTL.
        self._announcing: dict[tuple[str, str], asyncio.Future[Any]] = {}

    def _info(self, spec: dict[str, Any]) -> ServiceInfo:
        full_type = spec["type"].rstrip(".")
        if not full_type.endswith(".local"):
            full_type += ".local"
        full_type += "."
        txt = {k.encode(): (None if v is None else v.encode()) for k, v in spec["txt"].items()}
        server = spec.get("server") or self.hostname
        return ServiceInfo(
            full_type,
            f"{spec['instance']}.{full_type}",
            port=spec["port"],
            properties=txt,
            server=f"{server}.local.",
            host_ttl=spec.get("host_ttl", 120),
            other_ttl=spec.get("other_ttl", 4500),
            parsed_addresses=self.addresses,
        )

    def _run(self, coro: Any) -> Any:
        assert self.zc.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.zc.loop).result(_TIMEOUT)

    def register(self, specs: list[dict[str, Any]]) -> None:
        infos = [self._info(spec) for spec in specs]

        keys = [(spec["instance"], spec["type"]) for spec in specs]

        async def go() -> None:
            # Probing is skipped (lab names are unique); the announcements keep running in the
            # background, but the records are answerable as soon as this returns.
            for key, info in zip(keys, infos, strict=True):
                task = await self.zc.async_register_service(info, cooperating_responders=True)
                self._announcing[key] = task

        self._run(go())
        for key, info in zip(keys, infos, strict=True):
            self.services[key] = info

    def _purge_pending_answers(self, info: ServiceInfo) -> None:
        """Drop queued multicast answers about a service being withdrawn.

        python-zeroconf queues multicast answers for up to ~1.5 s (aggregation, and the one-per-
        second rate limit) and does not purge them on unregister, so an answer to a query that
        came just before would follow the goodbyes and bring the service back with its full TTL.
        (Internals of python-zeroconf 0.15x; runs on its event loop.)
        """
        key = info.key

        def about(record: Any) -> bool:
            return bool(record.key == key or getattr(record, "alias", "").lower() == key)

        for queue in (self.zc.out_queue, self.zc.out_delay_queue):
            for group in queue.queue:
                for record in [r for r in group.answers if about(r)]:
                    del group.answers[record]
                for additionals in group.answers.values():
                    additionals.difference_update({r for r in additionals if about(r)})

    def unregister(self, keys: list[list[str]]) -> None:
        infos = [self.services.pop((instance, type_)) for instance, type_ in keys]

        async def go() -> None:
            for instance, type_ in keys:
                pending = self._announcing.pop((instance, type_), None)
                if pending is not None:
                    pending.cancel()
            for info in infos:
                self._purge_pending_answers(info)
            waits = [await self.zc.async_unregister_service(info) for info in infos]
            await asyncio.gather(*waits)

        self._run(go())

    def update(self, spec: dict[str, Any]) -> None:
        info = self._info(spec)
        key = (spec["instance"], spec["type"])
        self.services[key] = info

        async def go() -> None:
            pending = self._announcing.pop(key, None)
            if pending is not None:
                pending.cancel()
            self._announcing[key] = await self.zc.async_update_service(info)

        self._run(go())

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "register":
            self.register(cmd["services"])
        elif op == "unregister":
            self.unregister(cmd["services"])
        elif op == "update":
            self.update(cmd["service"])
        elif op == "ping":
            pass
        else:
            raise ValueError(f"unknown op {op!r}")
        return {"ok": True}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hostname", required=True, help="host label, without .local")
    parser.add_argument("--listen", action="append", default=[], help="IPv4 address to serve on")
    parser.add_argument("--listen-v6", action="append", type=int, default=[], help="ifindex")
    parser.add_argument("--address", action="append", default=[], help="address to publish")
    args = parser.parse_args()
    interfaces: list[str | int] = [*args.listen, *args.listen_v6]
    if args.listen and args.listen_v6:
        version = IPVersion.All
    elif args.listen_v6:
        version = IPVersion.V6Only
    else:
        version = IPVersion.V4Only
    zc = Zeroconf(interfaces=interfaces, ip_version=version)
    responder = Responder(zc, args.hostname, args.address)
    emit({"event": "ready"})
    code = 0
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            if cmd["op"] == "quit":
                break
            try:
                reply = responder.handle(cmd)
            except Exception as exc:  # reported to the test, which decides
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            emit(reply)
    except KeyboardInterrupt:
        code = 130
    finally:
        zc.close()  # goodbyes for every registered service, then sockets closed
    emit({"event": "closed"})
    return code


if __name__ == "__main__":
    sys.exit(main())
