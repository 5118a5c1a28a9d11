"""Real mDNS peers that nobody on this team wrote: python-zeroconf and Avahi, in lab hosts.

Goal: interop tests that would catch a querier which only agrees with itself. Each peer is a
separate process with its own mDNS stack in its own network namespace ("host" on the lab
bridge, see tests/netlab.py), so unicast replies to port 5353 reach the querier and IPv6
multicast works (it does not on lo).

Plan:
- ZeroconfPeer: tests/peers/zeroconf_peer.py driven by JSON lines over stdin/stdout
  (register / unregister / update / quit). Goodbyes: quit or SIGINT. Vanish silently: SIGKILL.
  Ready is a line it prints, never a sleep. python-zeroconf drops a packet byte-identical to one
  it received in the last second, so tests vary their questions; it registers a subtype only
  under the subtype, and it cannot publish a label containing a dot (it splits names on every
  "."), so subtypes and dotted instance names are Avahi's job here.
- AvahiPeer: avahi-daemon 0.8 without D-Bus, in a private mount namespace where a temp folder
  is bind-mounted on /etc/avahi/services and a tmpfs holds /run/avahi-daemon. Ready when its
  log says each service was established. Services change at run time through .service files
  (renamed into place: Avahi also reloads on inotify) and SIGHUP; removal sends goodbyes.
  Avahi drops records that overflow a 512-byte legacy unicast reply (the sample printer's TXT).
- AvahiBrowser: a second avahi-daemon (D-Bus on, private dbus-daemon) in another host, for
  `avahi-browse -p -r -t`, the reference the CLI's --parsable output is compared with.
Costs: a zeroconf peer is ready in ~0.3 s, an Avahi peer in ~1.6 s; fixtures that do not
mutate their peer are module-scoped.

Fixtures (registered through tests/conftest.py): ``peer_lab`` (module), ``zeroconf_peer`` and
``avahi_peer`` (module, ``peer.sample`` published, read-only), ``make_zeroconf_peer`` /
``make_avahi_peer`` (function-scoped factories for tests that mutate a peer), ``avahi_browser``
(module). ``peer_lab`` owns the bridge: do not combine it with the function-scoped ``lab``
fixture in one test. Peers on one link publish distinct instance names (sample_services(tag)).
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, NoReturn
from xml.sax.saxutils import escape as xml_escape

import pytest

from tests import netlab

HERE = Path(__file__).resolve().parent
ZEROCONF_SCRIPT = HERE / "peers" / "zeroconf_peer.py"
START_TIMEOUT = 10.0


class PeerError(RuntimeError):
    """A peer did not start or did not do what it was told; the message carries its log."""


# --- services -------------------------------------------------------------------------------


def escape_label(label: str) -> str:
    """mdnsq's text form of one label: `.` and `\\` escaped (the codec's rule, redone here)."""
    return label.replace("\\", "\\\\").replace(".", "\\.")


@dataclass(frozen=True, eq=False)
class Service:
    """One DNS-SD service instance as a peer publishes it."""

    instance: str
    type: str  # "_ipp._tcp", without .local
    port: int
    txt: Mapping[str, str | None] = field(default_factory=dict)
    subtypes: tuple[str, ...] = ()  # "_printer"; Avahi only
    host_ttl: int = 120  # python-zeroconf only (Avahi's are fixed)
    other_ttl: int = 4500

    @property
    def full_type(self) -> str:
        return f"{self.type}.local"

    @property
    def name(self) -> str:
        """The full instance name in mdnsq's text form (instance label escaped)."""
        return f"{escape_label(self.instance)}.{self.full_type}"

    @property
    def txt_properties(self) -> dict[str, bytes | None]:
        """What an RFC 6763 §6 reader should see: lower-case keys, bytes values."""
        return {k.lower(): (None if v is None else v.encode()) for k, v in self.txt.items()}

    def spec(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "type": self.type,
            "port": self.port,
            "txt": dict(self.txt),
            "host_ttl": self.host_ttl,
            "other_ttl": self.other_ttl,
        }


class SampleServices(NamedTuple):
    printer: Service
    web: Service
    ssh: Service


def sample_services(tag: str, *, dots: bool = True) -> SampleServices:
    """The standard services, their instance names suffixed with ``tag``.

    Two peers on one link must not publish the same instance name (Avahi renames its copy
    "name #2"), so every peer's names carry its own host name. ``dots=False`` for
    python-zeroconf: it splits names on every "." when writing them, so it cannot publish a
    label that contains a dot ("Dr. Who" goes out as two labels, "Dr" and " Who").
    """
    dot = "." if dots else ""
    printer = Service(
        f"Dr{dot} Who’s Café Printer ({tag})",
        "_ipp._tcp",
        631,
        txt={
            "txtvers": "1",
            "rp": "ipp/print",
            "note": "Büro 3 – Café, 2. Stock",
            "pdl": "application/pdf,image/urf,image/pwg-raster",
            "Duplex": None,  # boolean attribute: key alone
            "blob1": "a" * 240,  # long TXT: two strings near the 255-byte limit
            "blob2": "b" * 240,
        },
        subtypes=("_universal",),
    )
    web = Service(
        f"web{dot}server v2{dot}0 ({tag})", "_http._tcp", 8080, txt={"path": "/index.html"}
    )
    ssh = Service(f"shell box ({tag})", "_ssh._tcp", 22)
    return SampleServices(printer, web, ssh)


# --- lab --------------------------------------------------------------------------------------


_host_numbers = itertools.cycle(range(2, 254))


@dataclass
class PeerLab(netlab.Lab):
    """A Lab that hands out host numbers and stops its peers before deleting their hosts."""

    peers: list[Any] = field(default_factory=list)

    def new_host(self) -> tuple[str, int]:
        # Numbers are unique across labs in this process, skipping hosts that still exist.
        for _ in range(252):
            n = next(_host_numbers)
            if not os.path.exists(f"/run/netns/h{n}"):
                return self.add_host(n), n
        raise PeerError("no free lab host number")

    def remove_host(self, name: str) -> None:
        # Deleting the namespace deletes its veth end, so the bridge port goes too.
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        if name in self.hosts:
            self.hosts.remove(name)

    def close(self) -> None:
        for peer in reversed(self.peers):
            peer.close()
        self.peers.clear()
        super().close()


def _tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError as exc:
        return f"<no log: {exc}>"


def _stop(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> None:
    """Signal a child and reap it; SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        except ProcessLookupError:
            proc.wait(5)


class JsonLines:
    """JSON lines from a child's stdout, each read against a deadline (select, never blocking)."""

    def __init__(self, fd: int, what: str, context: Callable[[], str] = lambda: "") -> None:
        self.fd = fd
        self.what = what
        self.context = context  # appended to an error, e.g. the child's log tail
        self._buffer = b""

    def read(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                raise PeerError(f"{self.what} said nothing in time{self.context()}")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise PeerError(f"{self.what} exited{self.context()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        result: dict[str, Any] = json.loads(line)
        return result


class LabProcess:
    """A child (in a lab host, usually) that reports in JSON lines on stdout: the flooder, the
    wire witness, small scripts. Its first line must be ``first`` ({"event": first}) if given;
    it is read against deadlines and always stopped (killed if still running, pipes closed)."""

    def __init__(
        self, proc: subprocess.Popen[bytes], what: str, first: str | None = None, wait: float = 30
    ) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self._lines = JsonLines(proc.stdout.fileno(), what, lambda: f" (exit status {proc.poll()})")
        if first is not None:
            try:
                line = self.line(wait)
                assert line.get("event") == first, f"{what} said {line!r} instead of {first}"
            except BaseException:
                self.stop()
                raise

    def line(self, timeout: float) -> dict[str, Any]:
        return self._lines.read(time.monotonic() + timeout)

    def tell(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def lines_until_exit(self, timeout: float) -> list[dict[str, Any]]:
        """Close its stdin (the signal to finish) and read what it prints until it exits."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        lines = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                lines.append(self._lines.read(deadline))
            except PeerError:  # exited (or silent past the deadline): every line is read
                return lines

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


# --- python-zeroconf --------------------------------------------------------------------------


class ZeroconfPeer:
    """python-zeroconf in its own process, in lab host ``host`` (or on lo when host is None)."""

    def __init__(
        self,
        *,
        hostname: str,
        host: str | None,
        ipv4: str,
        ipv6: str | None = None,
        ipv6_index: int | None = None,
    ) -> None:
        netlab.require_private_netns()
        self.hostname = hostname
        self.host = host
        self.ipv4 = ipaddress.IPv4Address(ipv4)
        self.ipv6 = ipaddress.IPv6Address(ipv6) if ipv6 else None
        self.sample = sample_services(hostname, dots=False)
        self.services: list[Service] = []
        self._dir = Path(tempfile.mkdtemp(prefix="zcpeer-"))
        self.log_path = self._dir / "stderr.log"
        argv = [sys.executable, str(ZEROCONF_SCRIPT), "--hostname", hostname]
        argv += ["--listen", ipv4, "--address", ipv4]
        if ipv6 and ipv6_index is not None:
            argv += ["--listen-v6", str(ipv6_index), "--address", ipv6]
        prefix = ["ip", "netns", "exec", host] if host else []
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [*prefix, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
            )
        assert self.proc.stdout is not None
        self._lines = JsonLines(
            self.proc.stdout.fileno(), "zeroconf peer", lambda: f"; log:\n{_tail(self.log_path)}"
        )
        try:
            line = self._lines.read(time.monotonic() + START_TIMEOUT)
            if line.get("event") != "ready":
                raise PeerError(f"zeroconf peer said {line!r} instead of ready")
        except BaseException:
            self.close()
            raise

    @classmethod
    def in_lab(
        cls, lab: PeerLab, services: Sequence[Service] = (), *, sample: bool = False
    ) -> ZeroconfPeer:
        """A peer in a new lab host; ``sample`` publishes sample_services(its host name) too."""
        host, n = lab.new_host()
        peer = cls(
            hostname=f"zc-{host}",
            host=host,
            ipv4=f"192.0.2.{n}",
            ipv6=netlab.link_local("eth0", host),
            ipv6_index=netlab.ifindex("eth0", host),
        )
        lab.peers.append(peer)
        if sample:
            services = (*peer.sample, *services)
        if services:
            peer.register(*services)
        return peer

    @classmethod
    def on_loopback(cls, hostname: str = "zc-lo", services: Sequence[Service] = ()) -> ZeroconfPeer:
        """A peer in the test namespace itself (IPv4 only: IPv6 multicast does not work on lo)."""
        peer = cls(hostname=hostname, host=None, ipv4="127.0.0.1")
        if services:
            peer.register(*services)
        return peer

    @property
    def host_name(self) -> str:
        return f"{self.hostname}.local"

    @property
    def addresses(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [self.ipv4, *([self.ipv6] if self.ipv6 else [])]

    # The control protocol.

    def command(self, op: str, timeout: float = START_TIMEOUT, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
        self.proc.stdin.flush()
        reply = self._lines.read(time.monotonic() + timeout)
        if not reply.get("ok"):
            raise PeerError(f"zeroconf peer refused {op}: {reply.get('error')}")
        return reply

    def register(self, *services: Service) -> None:
        """Publish services; they are answerable when this returns (announcements follow)."""
        self.command("register", services=[s.spec() for s in services])
        self.services.extend(services)

    def unregister(self, *services: Service) -> None:
        """Withdraw services; their goodbyes have been sent when this returns."""
        self.command("unregister", services=[[s.instance, s.type] for s in services])
        for s in services:
            self.services.remove(s)

    def update(self, old: Service, new: Service) -> None:
        """Re-announce ``old`` (same instance and type) with ``new``'s TXT / port."""
        assert (old.instance, old.type) == (new.instance, new.type)
        self.command("update", service=new.spec())
        self.services[self.services.index(old)] = new

    def running(self) -> bool:
        return self.proc.poll() is None

    def quit(self, timeout: float = START_TIMEOUT) -> None:
        """Goodbyes for every service, then exit (like a clean shutdown)."""
        if self.running():
            assert self.proc.stdin is not None
            self.proc.stdin.write(b'{"op": "quit"}\n')
            self.proc.stdin.flush()
            self.proc.wait(timeout)

    def interrupt(self, timeout: float = START_TIMEOUT) -> None:
        """Ctrl-C: python-zeroconf sends goodbyes on the way out (SIGTERM would not)."""
        _stop(self.proc, signal.SIGINT, timeout)

    def vanish(self) -> None:
        """Disappear without a goodbye; records must age out by TTL."""
        _stop(self.proc, signal.SIGKILL, 5)

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                self.quit(timeout=3)
        _stop(self.proc, signal.SIGKILL, 5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# --- Avahi ------------------------------------------------------------------------------------

AVAHI_DAEMON = "avahi-daemon"

# Runs as `ip netns exec HOST unshare --mount --propagation private sh -ec SCRIPT x DIR`:
# the mounts exist only for this daemon. /run/avahi-daemon may not exist on the machine
# (the package creates it at boot), so then a tmpfs on /run provides it.
_AVAHI_SH = """
d="$1"
mount --bind "$d/services" /etc/avahi/services
if [ -d /run/avahi-daemon ]; then
    mount -t tmpfs tmpfs /run/avahi-daemon
else
    mount -t tmpfs tmpfs /run
    mkdir /run/avahi-daemon
fi
exec avahi-daemon --no-drop-root --no-chroot --no-rlimits -f "$d/avahi-daemon.conf"
"""


def avahi_installed() -> bool:
    return shutil.which(AVAHI_DAEMON) is not None


def require_avahi() -> None:
    """Skip when Avahi is missing on a developer machine; fail in CI, where it must be."""
    if avahi_installed():
        return
    missing("avahi-daemon is not installed (run `make peers`)")


def missing(message: str) -> NoReturn:
    """A peer that is not installed: skipped on a developer's machine, a failure in CI."""
    if os.environ.get("CI", "") not in ("", "0", "false"):
        pytest.fail(message)
    pytest.skip(message)


def service_file(service: Service) -> str:
    """An Avahi .service file (XML) for one service."""
    lines = [
        '<?xml version="1.0" standalone="no"?>',
        '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">',
        "<service-group>",
        f"  <name>{xml_escape(service.instance)}</name>",
        "  <service>",
        f"    <type>{xml_escape(service.type)}</type>",
    ]
    lines += [f"    <subtype>{sub}._sub.{service.type}</subtype>" for sub in service.subtypes]
    lines.append(f"    <port>{service.port}</port>")
    for key, value in service.txt.items():
        entry = key if value is None else f"{key}={value}"
        lines.append(f"    <txt-record>{xml_escape(entry)}</txt-record>")
    lines += ["  </service>", "</service-group>", ""]
    return "\n".join(lines)


def avahi_config(hostname: str, *, dbus: bool) -> str:
    return "\n".join(
        [
            "[server]",
            f"host-name={hostname}",
            "domain-name=local",
            "use-ipv4=yes",
            "use-ipv6=yes",
            "allow-interfaces=eth0",
            f"enable-dbus={'yes' if dbus else 'no'}",
            "ratelimit-interval-usec=1000000",
            "ratelimit-burst=1000",
            "[wide-area]",
            "enable-wide-area=no",
            "[publish]",
            "publish-workstation=no",
            "publish-hinfo=no",
            "publish-addresses=yes",
            "[reflector]",
            "[rlimits]",
            "",
        ]
    )


class AvahiPeer:
    """avahi-daemon publishing static services in lab host ``host``."""

    def __init__(
        self,
        lab: PeerLab,
        services: Sequence[Service] = (),
        *,
        sample: bool = False,
        dbus_address: str | None = None,
    ) -> None:
        """Start avahi-daemon in a new lab host; ``sample`` publishes sample_services too."""
        netlab.require_private_netns()
        if not avahi_installed():
            raise PeerError("avahi-daemon is not installed (run `make peers`)")
        self.lab = lab
        self.host, n = lab.new_host()
        self.hostname = f"avahi-{self.host}"
        self.ipv4 = ipaddress.IPv4Address(f"192.0.2.{n}")
        self.ipv6 = ipaddress.IPv6Address(netlab.link_local("eth0", self.host))
        self.sample = sample_services(self.hostname)
        if sample:
            services = (*self.sample, *services)
        self.services: list[Service] = []
        self._files: dict[int, Path] = {}
        self._counter = 0
        self._dir = Path(tempfile.mkdtemp(prefix="avahipeer-"))
        (self._dir / "services").mkdir()
        (self._dir / "avahi-daemon.conf").write_text(
            avahi_config(self.hostname, dbus=dbus_address is not None)
        )
        self.log_path = self._dir / "daemon.log"
        for service in services:
            self._write(service)
        env = dict(os.environ)
        if dbus_address:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = dbus_address
        argv = ["unshare", "--mount", "--propagation", "private"]
        argv += ["sh", "-ec", _AVAHI_SH, "avahi-peer", str(self._dir)]
        with open(self.log_path, "wb") as log:
            self.proc = lab.popen(
                self.host, argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        lab.peers.append(self)
        try:
            self._wait_for(lambda text: "Server startup complete" in text, "startup")
            self._wait_established(services)
        except BaseException:
            self.close()
            raise

    @property
    def host_name(self) -> str:
        return f"{self.hostname}.local"

    @property
    def addresses(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return [self.ipv4, self.ipv6]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_for(
        self, done: Callable[[str], bool], what: str, timeout: float = START_TIMEOUT
    ) -> None:
        # Avahi reports on its log only; poll it with a deadline (10 ms steps, no fixed sleep).
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if done(text):
                return
            if self.proc.poll() is not None:
                raise PeerError(f"avahi-daemon exited ({self.proc.returncode}):\n{text[-3000:]}")
            if time.monotonic() > deadline:
                raise PeerError(f"avahi-daemon: no {what} within {timeout} s:\n{text[-3000:]}")
            time.sleep(0.01)

    def _wait_established(self, services: Sequence[Service], before: str = "") -> None:
        def established(text: str) -> bool:
            new = text[len(before) :].splitlines()
            lines = [ln for ln in new if "successfully established" in ln]
            return all(any(f'Service "{s.instance}" (' in ln for ln in lines) for s in services)

        self._wait_for(established, "service established")

    def _write(self, service: Service) -> None:
        self._counter += 1
        path = self._dir / "services" / f"svc{self._counter}.service"
        # Avahi also watches the folder with inotify: rename a finished file into place so it
        # never loads a half-written one.
        staging = self._dir / f"svc{self._counter}.tmp"
        staging.write_text(service_file(service), encoding="utf-8")
        staging.rename(path)
        self._files[id(service)] = path
        self.services.append(service)

    def add(self, *services: Service) -> None:
        """Publish more services at run time (.service files + SIGHUP); wait until established."""
        before = self.log()
        for service in services:
            self._write(service)
        self.proc.send_signal(signal.SIGHUP)
        self._wait_established(services, before)

    def remove(self, *services: Service) -> None:
        """Withdraw services at run time; Avahi sends goodbyes (TTL 0) for them."""
        before = self.log()
        for service in services:
            self._files.pop(id(service)).unlink()
            self.services.remove(service)
        self.proc.send_signal(signal.SIGHUP)
        self._wait_for(
            lambda text: (
                text.count("vanished, removing services")
                - before.count("vanished, removing services")
                >= len(services)
            ),
            "service removal",
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def vanish(self) -> None:
        """Disappear without goodbyes."""
        _stop(self.proc, signal.SIGKILL, 5)

    def close(self) -> None:
        _stop(self.proc, signal.SIGTERM, 5)
        if self in self.lab.peers:
            self.lab.peers.remove(self)
        shutil.rmtree(self._dir, ignore_errors=True)


# --- avahi-browse, the reference querier -----------------------------------------------------

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


def avahi_unescape(text: str) -> str:
    """Undo avahi-browse -p escaping: `\\DDD` is a decimal byte, `\\X` is X; bytes are UTF-8."""
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 4].isdigit() and len(text[i + 1 : i + 4]) == 3:
            out.append(int(text[i + 1 : i + 4]))
            i += 4
        elif text[i] == "\\" and i + 1 < len(text):
            out += text[i + 1].encode()
            i += 2
        else:
            out += text[i].encode()
            i += 1
    return out.decode("utf-8", errors="replace")


def browser_installed() -> bool:
    return all(shutil.which(tool) for tool in (AVAHI_DAEMON, "avahi-browse", "dbus-daemon"))


def read_line(fd: int, deadline: float, what: str) -> bytes:
    """One line, read byte by byte: what follows it stays in the pipe for the next reader."""
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise PeerError(f"{what}: no line in time (got {line!r})")
        chunk = os.read(fd, 1)
        if not chunk:
            raise PeerError(f"{what} exited (got {line!r})")
        line += chunk
    return line


class AvahiBrowser:
    """``avahi-browse`` against a second avahi-daemon (D-Bus on) in its own lab host.

    avahi-browse talks to the daemon only over D-Bus, so a private dbus-daemon (a system bus on
    a socket in a temp folder, open policy) is started first; nothing touches the machine's bus.
    """

    def __init__(self, lab: PeerLab) -> None:
        netlab.require_private_netns()
        if not browser_installed():
            raise PeerError("avahi-daemon, avahi-browse and dbus-daemon are needed (make peers)")
        self._dir = Path(tempfile.mkdtemp(prefix="avahibrowser-"))
        socket_path = self._dir / "system_bus_socket"
        config = self._dir / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=socket_path))
        self.bus_address = f"unix:path={socket_path}"
        self.bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.daemon: AvahiPeer | None = None
        try:
            assert self.bus.stdout is not None
            deadline = time.monotonic() + START_TIMEOUT
            read_line(self.bus.stdout.fileno(), deadline, "dbus-daemon")
            self.daemon = AvahiPeer(lab, dbus_address=self.bus_address)
        except BaseException:
            self.close()
            raise

    def browse(self, *args: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
        """Run ``avahi-browse -p -r -t ARGS`` (parsable, resolved, terminate when done).

        It runs in the daemon's host, so interface names in its output are that host's
        ("eth0"): avahi-browse turns the daemon's interface indexes into names locally.
        """
        assert self.daemon is not None
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}
        return subprocess.run(
            ["ip", "netns", "exec", self.daemon.host, "avahi-browse", "-p", "-r", "-t", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.close()
            self.daemon.lab.remove_host(self.daemon.host)
            self.daemon = None
        _stop(self.bus, signal.SIGTERM, 5)
        if self.bus.stdout is not None:
            self.bus.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer_lab() -> Iterator[PeerLab]:
    netlab.require_private_netns()
    lab = PeerLab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="module")
def zeroconf_peer(peer_lab: PeerLab) -> ZeroconfPeer:
    """python-zeroconf publishing its sample services on the bridge; shared, do not mutate."""
    return ZeroconfPeer.in_lab(peer_lab, sample=True)


@pytest.fixture(scope="module")
def avahi_peer(peer_lab: PeerLab) -> AvahiPeer:
    """avahi-daemon publishing its sample services on the bridge; shared, do not mutate."""
    require_avahi()
    return AvahiPeer(peer_lab, sample=True)


@pytest.fixture
def make_zeroconf_peer(peer_lab: PeerLab) -> Iterator[Callable[..., ZeroconfPeer]]:
    made: list[ZeroconfPeer] = []

    def make(services: Sequence[Service] = (), *, sample: bool = False) -> ZeroconfPeer:
        peer = ZeroconfPeer.in_lab(peer_lab, services, sample=sample)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()
        if peer in peer_lab.peers:
            peer_lab.peers.remove(peer)
        if peer.host:
            peer_lab.remove_host(peer.host)


@pytest.fixture
def make_avahi_peer(peer_lab: PeerLab) -> Iterator[Callable[..., AvahiPeer]]:
    require_avahi()
    made: list[AvahiPeer] = []

    def make(services: Sequence[Service] = (), *, sample: bool = False) -> AvahiPeer:
        peer = AvahiPeer(peer_lab, services, sample=sample)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()
        peer_lab.remove_host(peer.host)


@pytest.fixture(scope="module")
def avahi_browser(peer_lab: PeerLab) -> Iterator[AvahiBrowser]:
    """avahi-browse with its own avahi-daemon and private D-Bus, on the bridge."""
    if not browser_installed():
        missing("avahi-browse/dbus-daemon not installed (run `make peers`)")
    browser = AvahiBrowser(peer_lab)
    yield browser
    browser.close()
