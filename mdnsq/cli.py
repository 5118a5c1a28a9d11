# The `mdnsq` command (also `python -m mdnsq`): ask the local network from a shell or a script.
#
# Goals
# - A thin shell over the public API: each command is one or two calls on one `mdnsq.Querier`
#   (or the codec, for `decode`), so nothing the tool does is impossible from Python.
# - Safe to script: `--timeout` is a hard deadline; one exit status per outcome (EXIT_* below)
#   with a one-line stderr message that says what to do; `--json` is NDJSON flushed per result;
#   no traceback on Ctrl-C (exit 130) or when the reader of a pipe goes away.
# Plan
# - argparse, one sub-parser per command; options go after the command (`mdnsq browse -4 ...`).
# - `_cmd_<name>(args, ...) -> bool` says whether anything was found; `main` turns that, and the
#   exceptions the library raises on purpose, into exit statuses. Formatting: cli_output.py.
# - The deadline is computed once; every call gets the time that is left. A SIGALRM watchdog a
#   moment after the deadline is the backstop that keeps the promise even if a call overran.
# - Several types (or hosts) are asked in parallel: one thread per call on one shared Querier
#   (see _merge), because a Querier call blocks until its own deadline.

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import functools
import io
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType
from typing import IO, TYPE_CHECKING, NoReturn, TypeVar, cast

from mdnsq import cli_output
from mdnsq.errors import MalformedPacket, MdnsqError, NetworkError
from mdnsq.names import name_key

if TYPE_CHECKING:
    from mdnsq import Querier, Record, ServiceEvent, ServiceInfo
    from mdnsq.cli_output import IPAddress

EXIT_FOUND = 0
EXIT_NOTHING = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a process stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE

DEFAULT_TIMEOUT = 3.0
# How long after the deadline the watchdog stops a call that overran (the library should not
# need it).
WATCHDOG_GRACE = 0.5
# An interval timer holds about 9.2e9 s (int64 nanoseconds); setitimer() raises OverflowError
# past it (--timeout 1e12). A deadline decades away needs no watchdog in this run.
WATCHDOG_MAX = 1e9
# Start-up counted against --timeout beyond the CPU time the process has used: Python's
# start-up is mostly CPU, and what is not (waiting for a core, reading files) is counted up
# to this. A process that waited before it exec'd mdnsq (`sh -c 'sleep 4; exec mdnsq ...'`,
# bash running the last command of `bash -c` in place) keeps the rest of its timeout.
START_WAIT = 0.5

PROG = "mdnsq"

_DESCRIPTION = """\
Ask the local network over multicast DNS (RFC 6762) and DNS-SD (RFC 6763).

Exit status: 0 something was found, 1 nothing was found before the deadline (or decode could
not read the packet), 2 usage error (also: standard output closed or not writable), 3 network
error (e.g. no usable interface), 130 interrupted (Ctrl-C), 141 the reader of the output went
away ('| head -1'). Options and arguments may come in any order after the command.
"""

_EPILOG = """\
examples:
  mdnsq types                          service types advertised on the network
  mdnsq browse _http._tcp              web servers, with host, port, addresses and TXT
  mdnsq browse --all --json            every service, one JSON object per line
  mdnsq resolve printer.local          addresses of a host
  mdnsq lookup 'Office Printer._ipp._tcp.local'
  mdnsq query printer.local AAAA       raw records of any type
  mdnsq watch _ipp._tcp                printers coming and going, until Ctrl-C
  mdnsq decode packet.bin              print a captured packet like dig does

'mdnsq COMMAND --help' describes each command and its options.
"""

_FORMATS_HELP = """\
output formats:
  (default)   for people: one block or aligned line per result, UTF-8 names as they are.
  --json      NDJSON: one JSON object per line, flushed as each result arrives, with the field
              names of the Python API: browse and lookup give mdnsq.ServiceInfo's fields (the
              interface by name), watch {"kind", "info"} as ServiceEvent, query one record per
              line (name, type, rclass, ttl, cache_flush and the type's own fields), resolve
              {"name", "addresses"}, types {"type"}, decode the whole Message. Text is UTF-8,
              not \\u-escaped, but for characters some readers take as line ends (U+0085,
              U+2028, U+2029, the other C1 controls). A TXT value (or a name) that is not valid
              UTF-8 is written as {"base64": "<standard base64 of the bytes>"}, and so is raw
              RDATA always; a TXT key without '=' has the value null.
"""

_PARSABLE_BROWSE_HELP = """\
  --parsable  the lines 'avahi-browse -p -r -k' prints: '+;iface;IPv4;name;type;domain'
              when an instance is found, '=;iface;IPv4;name;type;domain;host;address;port;"txt"'
              when it is resolved, and '-;...' when it goes away (watch). Names and TXT are
              UTF-8 as published (avahi-browse writes every byte outside [A-Za-z0-9_-] as
              \\DDD); only what would make a line ambiguous is escaped, the way avahi does it,
              so avahi's unescaping still reads it: in the instance name '.', '\\' and ';'
              become '\\.', '\\\\' and \\059, in host names, types and domains ';' becomes
              \\059; in TXT strings '"' and '\\' are backslashed; control characters, marks
              and overrides of text direction and bytes that are not UTF-8 are \\DDD (three
              decimal digits).
              The TXT strings come last to first, as avahi-browse lists them. One more
              difference: avahi-browse prints one '=' line per protocol with one address
              (sometimes an IPv4 address on its IPv6 line); mdnsq prints one '=' line per
              address, with that address's family as protocol (or the one asked over, with
              -4 / -6).
"""

_PARSABLE_RESOLVE_HELP = """\
  --parsable  one line per address, HOST<TAB>ADDRESS, as avahi-resolve prints it (an IPv6
              link-local address without its %scope).
"""

_COMMANDS: dict[str, tuple[str, str]] = {
    "browse": (
        "find the instances of service types, resolved (host, port, addresses, TXT)",
        """\
examples:
  mdnsq browse _http._tcp
  mdnsq browse _ipp._tcp _ipps._tcp --timeout 5
  mdnsq browse --all --parsable        the same lines as 'avahi-browse -a -p -r -k -t'
  mdnsq browse _ssh._tcp --no-resolve  instance names only
""",
    ),
    "resolve": (
        "addresses of .local host names",
        """\
examples:
  mdnsq resolve printer.local
  mdnsq resolve -6 nas.local printer.local --json
""",
    ),
    "lookup": (
        "one service instance: SRV, TXT and addresses",
        """\
INSTANCE is a full service name ('Office Printer._ipp._tcp.local', the '.local' is optional), or an
instance name as it is followed by its TYPE in a second argument, which needs no escaping of dots.

examples:
  mdnsq lookup 'Office Printer._ipp._tcp.local'
  mdnsq lookup 'Dr. Who’s Café Printer' _ipp._tcp --json
""",
    ),
    "query": (
        "raw records of any type for a name",
        """\
TYPE is a mnemonic (A, AAAA, PTR, SRV, TXT, HINFO, NSEC, ANY, MX, NAPTR, CAA, ...), TYPE<n> or
a number.

examples:
  mdnsq query printer.local A
  mdnsq query _services._dns-sd._udp.local PTR
  mdnsq query 'Office Printer._ipp._tcp.local' TXT --json
""",
    ),
    "types": (
        "the service types advertised on the network",
        """\
examples:
  mdnsq types
  mdnsq types --timeout 1 --json
""",
    ),
    "watch": (
        "follow service instances as they are added, updated and removed",
        """\
Runs until Ctrl-C, or until --timeout if given; one line per event.

examples:
  mdnsq watch _ipp._tcp
  mdnsq watch _http._tcp --json --timeout 60
  mdnsq watch _http._tcp --parsable    '+' / '=' / '-' lines as 'avahi-browse -p -r' prints them
""",
    ),
    "decode": (
        "decode one DNS packet (raw bytes or hex text) and print it like dig does",
        """\
The input is a file or standard input ('-', the default). It may be the raw bytes of one DNS message
(a UDP payload, e.g. exported from Wireshark) or the same bytes as hex text (whitespace, ':' and a
leading '0x' are ignored); the format is detected unless --hex or --raw says which. A packet that
cannot be read gives one line naming the problem and its byte offset, and exit status 1.

examples:
  mdnsq decode capture.bin
  xxd -p capture.bin | mdnsq decode
  mdnsq decode --json capture.bin
""",
    ),
}


class _UsageError(Exception):
    """A problem with the command line found after argparse was done."""


class _Overrun(BaseException):
    """Raised by the watchdog: a call ran past the deadline (BaseException so no library
    ``except Exception`` swallows it)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr that points at --help."""

    commands: Mapping[str, argparse.ArgumentParser]  # the top parser's: command -> its parser

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def build_parser() -> _Parser:
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from mdnsq import __version__

    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")

    network = _Parser(add_help=False)
    group = network.add_argument_group("network options")
    family = group.add_mutually_exclusive_group()
    family.add_argument(
        "-4",
        dest="ip_version",
        action="store_const",
        const="v4",
        help="IPv4 only: ask over IPv4, show IPv4 addresses",
    )
    family.add_argument(
        "-6",
        dest="ip_version",
        action="store_const",
        const="v6",
        help="IPv6 only: ask over IPv6, show IPv6 addresses",
    )
    group.add_argument(
        "-i",
        "--interface",
        metavar="NAME",
        action="append",
        dest="interfaces",
        help="ask on this interface (name, index or address); repeat for more (default: every "
        "multicast-capable interface)",
    )
    group.add_argument(
        "--one-shot",
        action="store_true",
        help="send from an ephemeral port instead of 5353 (RFC 6762 §5.1): works next to another "
        "mDNS daemon, but answers come by unicast only",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="report what the library notices on stderr (-vv: also every query sent and "
        "every response heard)",
    )
    network.set_defaults(ip_version="any")

    def timeout_option(default: float | None) -> _Parser:
        p = _Parser(add_help=False)
        shown = "none: until Ctrl-C" if default is None else f"{default:g}"
        p.add_argument(
            "-t",
            "--timeout",
            metavar="SECONDS",
            type=_positive_seconds,
            default=default,
            help=f"hard deadline for the whole command (default: {shown})",
        )
        return p

    def output_options(parsable: bool, like: str = "'avahi-browse -p -r'") -> _Parser:
        p = _Parser(add_help=False)
        formats = p.add_argument_group("output format (see 'mdnsq --help' for details)")
        exclusive = formats.add_mutually_exclusive_group()
        exclusive.add_argument(
            "--json", action="store_true", help="one JSON object per line (NDJSON)"
        )
        if parsable:
            exclusive.add_argument(
                "-p",
                "--parsable",
                action="store_true",
                help=f"lines in the format of {like}",
            )
        return p

    one_shot_timeout = timeout_option(DEFAULT_TIMEOUT)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, parents: Sequence[_Parser], parsable_help: str = ""
    ) -> argparse.ArgumentParser:
        summary, epilog = _COMMANDS[name]
        return subparsers.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=epilog + "\n" + _FORMATS_HELP + parsable_help,
            parents=list(parents),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    browse_parsable = [network, one_shot_timeout, output_options(True)]
    browse = command("browse", browse_parsable, _PARSABLE_BROWSE_HELP)
    browse.add_argument(
        "types", metavar="TYPE", nargs="*", help="service type, e.g. _http._tcp or _ipp._tcp.local"
    )
    browse.add_argument("-a", "--all", action="store_true", help="every advertised service type")
    browse.add_argument(
        "--no-resolve",
        dest="resolve",
        action="store_false",
        help="instance names only (no SRV, TXT or address lookups)",
    )

    resolve = command(
        "resolve",
        [network, one_shot_timeout, output_options(True, "'avahi-resolve'")],
        _PARSABLE_RESOLVE_HELP,
    )
    resolve.add_argument("hosts", metavar="HOST", nargs="+", help="a host name, e.g. printer.local")

    lookup = command("lookup", browse_parsable, _PARSABLE_BROWSE_HELP)
    lookup.add_argument("instance", metavar="INSTANCE", help="service instance name")
    lookup.add_argument(
        "type", metavar="TYPE", nargs="?", help="service type, when INSTANCE is the instance alone"
    )

    query = command("query", [network, one_shot_timeout, output_options(False)])
    query.add_argument("name", metavar="NAME", help="the name to ask about")
    query.add_argument("rtype", metavar="TYPE", help="record type, e.g. A, AAAA, SRV, TXT, ANY")

    command("types", [network, one_shot_timeout, output_options(False)])

    watch = command(
        "watch", [network, timeout_option(None), output_options(True)], _PARSABLE_BROWSE_HELP
    )
    watch.add_argument("types", metavar="TYPE", nargs="+", help="service type, e.g. _http._tcp")

    decode = command("decode", [output_options(False)])
    decode.add_argument(
        "file", metavar="FILE", nargs="?", default="-", help="packet file, or - for standard input"
    )
    how = decode.add_mutually_exclusive_group()
    how.add_argument(
        "--hex",
        dest="input_format",
        action="store_const",
        const="hex",
        help="the input is hex text",
    )
    how.add_argument(
        "--raw",
        dest="input_format",
        action="store_const",
        const="raw",
        help="the input is raw bytes",
    )
    parser.commands = subparsers.choices
    return parser


# --- time ------------------------------------------------------------------------------------


class Deadline:
    """The command's single deadline; every library call gets what is left of it. It counts
    from ``start`` (time.monotonic() seconds: when the process started, see _main), or now."""

    def __init__(self, seconds: float | None, start: float | None = None) -> None:
        if start is None:
            start = time.monotonic()
        self.end = None if seconds is None else start + seconds

    def remaining(self) -> float | None:
        """Seconds left; None when there is no deadline (watch without --timeout)."""
        if self.end is None:
            return None
        return max(0.0, self.end - time.monotonic())

    def left(self) -> float:
        """Seconds left, for calls that need a finite timeout (every command but watch)."""
        remaining = self.remaining()
        assert remaining is not None, "one-shot commands always have a deadline"
        return remaining


def _process_age() -> float | None:
    """Seconds of start-up to count against --timeout, or None where that cannot be read.

    On Linux: the time since the process started, from its start time in /proc/self/stat
    (field 22, clock ticks since boot) against CLOCK_BOOTTIME, the clock the kernel counts it
    on; Python's start-up and the imports take 0.3-0.5 s on a loaded machine, and --timeout
    promises a deadline for the whole command. But that start is the fork, which exec keeps:
    a shell that slept 4 s before exec'ing mdnsq -t 3 left it nothing. So at most the time
    the process ran (fields 14 and 15) or waited for a core to run on (/proc/self/schedstat,
    where the kernel keeps it: 2 s of 2.2 under a load of 6 busy loops a core), plus
    START_WAIT for the rest (reading files)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        # Field 2, the command name in parentheses, may hold spaces and ')': count after it.
        fields = stat[stat.rindex(b")") + 2 :].split()
        tick = os.sysconf("SC_CLK_TCK")
        started = int(fields[19]) / tick
        busy = (int(fields[11]) + int(fields[12])) / tick
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    try:
        with open("/proc/self/schedstat", "rb") as f:
            busy += int(f.read().split()[1]) / 1e9  # nanoseconds runnable, waiting for a core
    except (OSError, ValueError, IndexError):
        pass  # a kernel without scheduler statistics: CPU time alone
    return max(0.0, min(age, busy + START_WAIT))


@contextlib.contextmanager
def _watchdog(deadline: Deadline) -> Iterator[None]:
    """Stop whatever runs WATCHDOG_GRACE after the deadline: the CLI's promise must hold."""
    left = deadline.remaining()
    if left is None or left > WATCHDOG_MAX or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: FrameType | None) -> None:
        raise _Overrun

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, left + WATCHDOG_GRACE)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


T = TypeVar("T")


def _merge(
    sources: Sequence[Iterable[T]], more: Iterable[Iterable[T]] | None = None
) -> Iterator[T]:
    """Items of several blocking Querier calls in the order they arrive; ``more`` yields more
    sources while they run (browse --all: a browse for each type as it is first listed).

    A Querier call blocks its thread until its deadline, and the API has no call that browses
    several types at once; but a Querier may be shared by threads (one of them receives for all),
    so each source gets a thread and the results meet in a queue. One source needs no thread.
    Threads are daemons: after Ctrl-C, closing the Querier ends their calls and nobody waits.
    """
    if len(sources) == 1 and more is None:
        yield from sources[0]
        return
    results: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()

    def pump(source: Iterable[object], kind: int) -> None:
        try:
            for item in source:
                results.put((kind, item))
        except BaseException as e:  # handed to the main thread, which raises it
            results.put((_FAILED, e))
        finally:
            results.put((_ENDED, None))

    def start(source: Iterable[object], kind: int = _ITEM) -> None:
        threading.Thread(target=pump, args=(source, kind), daemon=True).start()

    for source in sources:
        start(source)
    if more is not None:
        start(more, _SOURCE)
    running = len(sources) + (more is not None)
    while running:
        kind, item = results.get()
        if kind == _ITEM:
            yield cast(T, item)
        elif kind == _SOURCE:
            start(cast(Iterable[T], item))
            running += 1
        elif kind == _ENDED:
            running -= 1
        else:
            raise cast(BaseException, item)


_ITEM, _SOURCE, _ENDED, _FAILED = range(4)  # what _merge's threads hand over


def _later(call: Callable[[], T]) -> Iterator[T]:
    """A call as a one-item source for _merge (it runs when its thread starts)."""
    yield call()


# --- commands --------------------------------------------------------------------------------


def _cmd_decode(args: argparse.Namespace, out: cli_output.Output) -> bool:
    from mdnsq import parse_message

    data = _read_input(args.file)
    packet = cli_output.packet_bytes(data, args.input_format)
    message = parse_message(packet)
    out.message(message, size=len(packet))
    return True


def _read_input(path: str) -> bytes:
    try:
        if path == "-":
            if sys.stdin is None:  # started with `<&-`
                raise _UsageError("standard input is closed: give the packet as a FILE")
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        what = "standard input" if path == "-" else path
        raise _UsageError(f"cannot read {what}: {e.strerror or e}") from None


def _nothing_hint(args: argparse.Namespace) -> str:
    """What to try when nothing was found. `query` asks for the name as typed (other commands
    add .local): a name outside .local and the reverse zones is nobody's on a link."""
    if args.command == "lookup" and args.type is not None:
        from mdnsq.service import typed_instance_parts

        parts = typed_instance_parts(args.instance)
        if parts is not None:  # a full name, and a TYPE: the name was asked as one label
            label = ".".join(parts[0])
            return (
                f"with a TYPE, INSTANCE is the instance label alone: try '{label}' "
                f"{args.type}, or the full name without a TYPE"
            )
    if args.command == "query":
        import ipaddress

        from mdnsq import join_name, normalize_name, split_name

        try:
            address = ipaddress.ip_address(args.name.partition("%")[0])
        except ValueError:
            pass
        else:  # who has this address: its reverse name (RFC 6762 §4)
            return f"to ask who has {address}, query '{address.reverse_pointer}' PTR"
        name = normalize_name(args.name)  # checked before the query (asked_name)
        labels = split_name(name)
        if labels and name_key(labels[-1]) not in ("local", "arpa"):
            return f"mDNS names end in .local: try '{join_name(name, 'local')}'"
    return (
        "try a longer --timeout, check that the device is on this link, "
        "or add -vv to see what was asked and heard"
    )


def _querier(args: argparse.Namespace, out: cli_output.Output) -> Querier:
    """The command's Querier. Commands check what was typed before they call this: a typo is
    a usage error (exit 2) then, with nothing sent, not a network error on a machine without
    multicast (exit 3)."""
    from mdnsq import Querier

    q = Querier(interfaces=args.interfaces, ip_version=args.ip_version, one_shot=args.one_shot)
    out.attach(q)
    return q


# browse --all lists the types in rounds of 1, 2, 4 ... s (the first at most half a short
# deadline) until its deadline (a round asks once, at its start: the retransmission schedule
# of one continuous query) and browses each type as soon as a round names it. A single first
# round of 1 s lost every type when its one query or the answer was lost (the retransmission
# came after it), or a device announced itself later. --no-resolve lists at the end anyway,
# so it lists types for half the time.
TYPES_ROUND = 1.0


def _all_types(q: Querier, deadline: Deadline) -> Iterator[str]:
    """Each service type on the link, as a round first lists it, until the deadline. The
    first round takes at most half of what is left: with `-t 1` it took all of it, and no
    type was browsed at all (the answers come in 20-120 ms; the Querier never repeats the
    question within a second, however short the rounds)."""
    seen: set[str] = set()
    length = min(TYPES_ROUND, deadline.left() / 2)
    while (left := deadline.left()) > 0:
        for stype in q.service_types(timeout=min(length, left)):
            if name_key(stype) not in seen:
                seen.add(name_key(stype))
                yield stype
        length = max(length, TYPES_ROUND / 2) * 2


def _cmd_browse(args: argparse.Namespace, out: cli_output.Output, deadline: Deadline) -> bool:
    if args.all and args.types:
        raise _UsageError("give service types or --all, not both")
    if not args.all and not args.types:
        raise _UsageError("give one or more service types, or --all")
    from mdnsq import normalize_service_type

    for service_type in args.types:
        normalize_service_type(service_type)
    with _querier(args, out) as q:
        if not args.resolve:
            types = args.types
            if args.all:
                types = q.service_types(timeout=deadline.left() / 2)
            return _browse_names(q, types, out, deadline)
        # Generators are made here, so a bad type raises (exit 2) before any thread starts.
        browses = [q.browse(t, timeout=deadline.left()) for t in args.types]
        more = None
        if args.all:
            more = (q.browse(t, timeout=deadline.left()) for t in _all_types(q, deadline))
        shown: set[str] = set()
        for info in _merge(browses, more):
            key = name_key(info.name)
            if key not in shown:  # a type and its subtype (or one type twice) list it twice
                shown.add(key)
                out.service(_of_family(info, args.ip_version))
    return out.count > 0


def _of_family(info: ServiceInfo, ip_version: str) -> ServiceInfo:
    """``info`` with only the addresses of the family -4 / -6 asked for: AAAA records arrive
    over IPv4 too, and avahi-resolve -4 shows no IPv6 address (without its scope, the
    --parsable form of a link-local one cannot even be used)."""
    if ip_version == "any":
        return info
    kept = _family(info.addresses, ip_version)
    return info if len(kept) == len(info.addresses) else dataclasses.replace(info, addresses=kept)


def _family(addresses: Sequence[IPAddress], ip_version: str) -> tuple[IPAddress, ...]:
    if ip_version == "any":
        return tuple(addresses)
    version = 4 if ip_version == "v4" else 6
    return tuple(a for a in addresses if a.version == version)


def _ptrs_of(query: Callable[[str], Sequence[Record]], name: str) -> tuple[str, Sequence[Record]]:
    return name, query(name)


def _browse_names(
    q: Querier, types: Sequence[str], out: cli_output.Output, deadline: Deadline
) -> bool:
    """browse --no-resolve: the PTR records of each type, without SRV/TXT/address queries."""
    from mdnsq import PTRRecord, RecordType, normalize_service_type, split_instance_name
    from mdnsq.service import base_type, instance_key

    names = [normalize_service_type(t) for t in types]
    ptrs = functools.partial(q.query, type=RecordType.PTR, timeout=deadline.left())
    # PTR records are shared, so each query runs to the deadline: nothing is lost by waiting
    # for all of them before listing, in a stable order: the types as given, the instances of
    # each by name (threads ending at one deadline finish in any order). _later keeps each
    # answer with the type it answers.
    answers = dict(_merge([_later(functools.partial(_ptrs_of, ptrs, name)) for name in names]))
    shown: set[str] = set()
    for name in names:
        suffix = "." + name_key(base_type(name))
        records = [r for r in answers.get(name, ()) if isinstance(r, PTRRecord)]
        for record in sorted(records, key=lambda r: name_key(r.target)):
            key = instance_key(record.target, suffix)
            if key is None:
                continue  # names no instance of the type: browse and watch leave it out too
            if key in shown:
                continue  # listed under its type and a subtype given too
            shown.add(key)
            instance, service_type = split_instance_name(record.target)
            # The cache says which interface each answer came in on (avahi-browse shows it).
            entries = q.cached_entries(record.name, RecordType.PTR)
            interface = next((e.interface for e in entries if e.record == record), None)
            out.instance(instance, service_type, interface)
    return out.count > 0


def _cmd_resolve(args: argparse.Namespace, out: cli_output.Output, deadline: Deadline) -> bool:
    found: set[str] = set()
    from mdnsq.service import normalize_host

    for host in args.hosts:
        normalize_host(host)
    with _querier(args, out) as q:

        def resolve(host: str) -> tuple[str, tuple[IPAddress, ...]]:
            return host, _family(q.resolve_host(host, timeout=deadline.left()), args.ip_version)

        sources = [_later(functools.partial(resolve, host)) for host in args.hosts]
        for host, addresses in _merge(sources):
            if addresses:
                out.host(host, addresses)
                found.add(host)
    missing = [h for h in args.hosts if h not in found]
    if missing and found:
        _fail("no answer before the deadline for " + ", ".join(missing))
    return bool(found)


def _lookup_target(instance: str, service_type: str | None) -> dict[str, str]:
    """resolve_service's arguments for what was typed.

    With TYPE, INSTANCE is the raw instance label. Without it, INSTANCE is a full name, read
    as the library reads one (service.typed_instance_parts: unescaped dots before the service
    type belong to the instance, 'Dr. Who._ipp._tcp' is the instance 'Dr. Who').
    """
    if service_type is not None:
        return {"instance": instance, "type": service_type}
    from mdnsq import escape_label, join_name, normalize_service_type, split_name
    from mdnsq.service import typed_instance_parts

    parts = typed_instance_parts(instance)
    if parts is None:
        labels = split_name(instance)
        protos = [i for i, label in enumerate(labels) if name_key(label) in ("_tcp", "_udp")]
        if protos and protos[-1] >= 2:  # a type in another domain: say what is wrong with it
            normalize_service_type(join_name(*map(escape_label, labels[protos[-1] - 1 :])))
        raise _UsageError(
            f"{instance!r} is not a service instance name (expected e.g. "
            "'Office Printer._ipp._tcp.local', or an instance and its type as two arguments)"
        )
    return {"instance": ".".join(parts[0]), "type": parts[1]}


def _cmd_lookup(args: argparse.Namespace, out: cli_output.Output, deadline: Deadline) -> bool:
    target = _lookup_target(args.instance, args.type)
    from mdnsq.service import instance_name, srv_unavailable

    full = instance_name(target["instance"], target["type"])  # checked before any socket
    with _querier(args, out) as q:
        info = q.resolve_service(timeout=deadline.left(), **target)
        if info is None and srv_unavailable(q.cached_entries(full, "SRV")):
            # Not "nothing found ... check that the device is on this link": it answered.
            raise MdnsqError(
                f"{full}: the service says it is not available "
                "(its SRV record's target is '.', RFC 2782)"
            )
    if info is not None:
        shown = _of_family(info, args.ip_version)
        out.service(shown)
        if not shown.addresses:
            # Found (exit 0: its SRV record answered), but nothing to connect to: say so, as
            # avahi-resolve says it failed. Printed alone, the block without an address line
            # read like a success.
            family = {"v4": "IPv4 ", "v6": "IPv6 "}.get(args.ip_version, "")
            _fail(
                f"{cli_output.clean(shown.name)}: no {family}address heard for "
                f"{cli_output.clean(shown.host)}"
            )
        elif not shown.complete:
            _fail(f"{cli_output.clean(shown.name)}: no TXT record heard before the deadline")
    return info is not None


def _cmd_query(args: argparse.Namespace, out: cli_output.Output, deadline: Deadline) -> bool:
    from mdnsq import RecordType

    try:
        rtype = RecordType.parse(args.rtype)
    except ValueError:
        raise _UsageError(
            f"unknown record type {args.rtype!r} (try A, AAAA, PTR, SRV, TXT, ANY, another "
            "mnemonic such as MX, or TYPE<n>)"
        ) from None
    from mdnsq.arguments import asked_name, parse_type

    asked_name(args.name)  # both checked before any socket opens
    parse_type(rtype)
    with _querier(args, out) as q:
        records = q.query(args.name, rtype, timeout=deadline.left())
    if records:
        out.records(records)
    return bool(records)


def _cmd_types(args: argparse.Namespace, out: cli_output.Output, deadline: Deadline) -> bool:
    with _querier(args, out) as q:
        for service_type in q.service_types(timeout=deadline.left()):
            out.service_type(service_type)
    return out.count > 0


# How often a watch looks at the network interfaces (a listing costs ~0.4 ms): a watch may run
# for days while links come and go (Querier.update_interfaces).
FOLLOW_INTERFACES = 30.0


@contextlib.contextmanager
def _following_interfaces(q: Querier, every: float) -> Iterator[None]:
    """Follow the interfaces every ``every`` seconds from a daemon thread while the block runs."""
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(every):
            try:
                q.update_interfaces()
            except MdnsqError:  # closed under us: the watch is ending
                return

    thread = threading.Thread(target=follow, name="mdnsq-follow-interfaces", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def _cmd_watch(args: argparse.Namespace, out: cli_output.Output, deadline: Deadline) -> bool:
    from mdnsq import normalize_service_type

    for service_type in args.types:
        normalize_service_type(service_type)
    with _querier(args, out) as q, _following_interfaces(q, FOLLOW_INTERFACES):
        for event in _one_stream(q, args.types, deadline, args.ip_version):
            out.event(event)
    return out.count > 0


def _one_stream(
    q: Querier, types: Sequence[str], deadline: Deadline, ip_version: str = "any"
) -> Iterator[ServiceEvent]:
    """The events of one watch per type, as one watch's: an instance that several report (a
    type and its subtype) is added when the first reports it, removed when the last one does,
    and updated only when what it shows changes (its addresses of the family -4 / -6 asked
    for). Merged as they came, an instance withdrawn from the subtype alone read as removed
    while the type's watch still had it."""
    from mdnsq import ServiceEvent

    def tagged(index: int, service_type: str) -> Iterator[tuple[int, ServiceEvent]]:
        for event in q.watch(service_type, timeout=deadline.remaining()):
            yield index, event

    # What each watch says of each instance, and which watch's word is shown: each watch
    # reads an instance from the link of its own first PTR record, and two watches on two
    # links, same content, made a false "updated" when their words alternated.
    said: dict[str, dict[int, ServiceInfo]] = {}
    shown: dict[str, tuple[int, ServiceInfo]] = {}
    for index, event in _merge([tagged(i, t) for i, t in enumerate(types)]):
        event = ServiceEvent(event.kind, _of_family(event.info, ip_version))
        key = name_key(event.info.name)
        words = said.setdefault(key, {})
        if event.kind == "removed":
            words.pop(index, None)
            held = shown.get(key)
            if words:  # another watched type still lists it
                if held is not None and held[0] == index:  # its word is shown: the next one's
                    other = min(words)
                    shown[key] = (other, words[other])
                    if not words[other].same_content(held[1]):
                        yield ServiceEvent("updated", words[other])
                continue
            del said[key]
            if shown.pop(key, None) is not None:
                yield event
            continue
        words[index] = event.info
        held = shown.get(key)
        if held is None:
            shown[key] = (index, event.info)
            yield event
        elif held[0] == index and not event.info.same_content(held[1]):
            shown[key] = (index, event.info)
            yield ServiceEvent("updated", event.info)


_Command = Callable[[argparse.Namespace, cli_output.Output, Deadline], bool]
_NETWORK_COMMANDS: dict[str, _Command] = {
    "browse": _cmd_browse,
    "resolve": _cmd_resolve,
    "lookup": _cmd_lookup,
    "query": _cmd_query,
    "types": _cmd_types,
    "watch": _cmd_watch,
}


# --- main ------------------------------------------------------------------------------------


class _CleanFormatter(logging.Formatter):
    """Log lines as the results are printed (cli_output.clean): at -vv every name any host on
    the link sends reaches the terminal, and one holding an escape sequence or a newline
    cleared the screen or forged a line."""

    def format(self, record: logging.LogRecord) -> str:
        return cli_output.clean(super().format(record))


def _setup_logging(verbose: int) -> None:
    """The library logs under `mdnsq`; a command shows it only when asked (one line per failure
    otherwise, from _fail)."""
    logger = logging.getLogger("mdnsq")
    if verbose == 0:
        # Any handler keeps logging's last-resort handler from printing warnings to stderr.
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CleanFormatter(f"{PROG}: %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose == 1 else logging.DEBUG)


def _network_hint(
    error: NetworkError, named: Sequence[str] | None = None, ip_version: str = "any"
) -> str:
    if error.errno == errno.EADDRINUSE:
        return "another program holds port 5353 without sharing it: try --one-shot"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "this user may not open the socket (a firewall or sandbox?)"
    if named:  # telling them to choose one with --interface, as they had, helped nobody
        return f"interfaces that would do here: {_usable_interfaces(ip_version)}"
    return "check that an interface with multicast is up, or choose one with --interface NAME"


def _usable_interfaces(ip_version: str) -> str:
    """Those the default selection would take for -4, -6 or either (select_interfaces)."""
    import socket

    from mdnsq.interfaces import select_interfaces

    families = {"v4": [socket.AF_INET], "v6": [socket.AF_INET6]}
    names: list[str] = []
    for family in families.get(ip_version, [socket.AF_INET, socket.AF_INET6]):
        with contextlib.suppress(NetworkError):  # none for this family
            names += [i.name for i in select_interfaces(None, family) if i.name not in names]
    return ", ".join(names) or "none"


def _fail(message: str) -> None:
    if sys.stderr is None:
        return  # started with `2>&-`: print(file=None) would write into the results on stdout
    with contextlib.suppress(OSError, ValueError):
        print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def console() -> int:
    """The `mdnsq` console script and `python -m mdnsq`: main() on sys.argv, its deadline
    counted from the start of the process (Python's start-up and the imports included)."""
    return main(from_process_start=True)


def main(
    argv: Sequence[str] | None = None,
    stdout: IO[str] | None = None,
    *,
    from_process_start: bool = False,
) -> int:
    """Run one command (``argv``: default sys.argv); returns the exit status. Its deadline
    counts from this call: a program calling main may have run for hours (console() counts
    from the process's start)."""
    stream = stdout if stdout is not None else sys.stdout
    if stream is None:  # started with stdout closed (`mdnsq ... >&-`): nowhere to answer
        _fail("standard output is closed: nowhere to write what is found")
        return EXIT_USAGE
    try:
        return _main(argv, stream, from_process_start)
    except KeyboardInterrupt:
        # Ctrl-C: the Querier's context manager has closed its sockets on the way out.
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`mdnsq browse --all | head -1`); stop quietly, and keep the
        # interpreter's final flush of stdout from complaining about the closed pipe.
        _silence(stream)
        return EXIT_BROKEN_PIPE
    except cli_output.OutputFailed as e:
        # Not 1: a script would read "nothing found" (`> /dev/full`, an I/O error).
        _fail(f"cannot write the results: {e}")
        _silence(stream)
        return EXIT_USAGE


def _silence(stream: IO[str]) -> None:
    """Point stdout at /dev/null when it is what failed: what is still buffered for it can no
    longer fail (and complain) when the interpreter flushes it at exit."""
    if stream is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def parse_arguments(parser: _Parser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, options and arguments in any order after the command: argparse alone
    refused `browse _http._tcp -t 2 _ipp._tcp` (a list of arguments that goes on after an
    option), which GNU tools and avahi-browse take."""
    words = _joined_timeouts(list(sys.argv[1:] if argv is None else argv))
    args, rest = parser.parse_known_args(words)
    if rest:
        # Only the command's own parser can take them intermixed (argparse refuses that
        # for a parser with sub-commands). Before the command there are only --help and
        # --version, which exit, so the command is the first word that is not an option.
        at = words.index(args.command)
        if at:  # the command's options given before it: not taken there, as before
            parser.error(f"unrecognized arguments: {' '.join(words[:at])}")
        args = parser.commands[args.command].parse_intermixed_args(words[at + 1 :])
        args.command = words[at]
    return args


def _joined_timeouts(words: list[str]) -> list[str]:
    """`-t -1` as `--timeout=-1`, so that the value's own check says what is wrong with it.
    argparse takes a word that starts with '-' for an option (a negative number too, since -4
    and -6 look like one), and said "-t/--timeout: expected one argument"."""
    joined: list[str] = []
    for at, word in enumerate(words):
        if word == "--":
            return joined + words[at:]
        if joined and _is_timeout_option(joined[-1]) and word.startswith("-"):
            try:
                float(word)
            except ValueError:
                pass
            else:
                joined[-1] = f"--timeout={word}"
                continue
        joined.append(word)
    return joined


def _is_timeout_option(word: str) -> bool:
    """-t, --timeout, or an abbreviation argparse takes for it (no other option starts --t)."""
    return word == "-t" or (len(word) > 2 and "--timeout".startswith(word))


def _main(argv: Sequence[str] | None, stream: IO[str], from_process_start: bool) -> int:
    # Where the process's start is unknown, from here: the best there is.
    start = time.monotonic() - ((_process_age() or 0.0) if from_process_start else 0.0)
    parser = build_parser()
    args = parse_arguments(parser, argv)
    _setup_logging(getattr(args, "verbose", 0))
    machine = getattr(args, "json", False) or getattr(args, "parsable", False)
    if isinstance(stream, io.TextIOWrapper):
        # Machine formats are UTF-8 whatever the locale says; for people, a character the
        # terminal cannot show becomes an escape rather than an error.
        if machine:
            stream.reconfigure(encoding="utf-8", errors="surrogateescape")
        else:
            stream.reconfigure(errors="backslashreplace")
    out = cli_output.make_output(
        stream,
        json=getattr(args, "json", False),
        parsable=getattr(args, "parsable", False),
        name_width=max(map(len, getattr(args, "hosts", [""]))),
        protocol={"v4": "IPv4", "v6": "IPv6"}.get(getattr(args, "ip_version", "")),
    )
    try:
        if args.command == "decode":
            found = _cmd_decode(args, out)
        else:
            deadline = Deadline(args.timeout, start)
            with _watchdog(deadline):
                try:
                    found = _NETWORK_COMMANDS[args.command](args, out, deadline)
                except _Overrun:
                    found = out.count > 0
                    _fail(f"stopped at the --timeout deadline ({args.timeout:g} s)")
        out.close()
    except _UsageError as e:
        _fail(f"{e} (see '{PROG} {args.command} --help')")
        return EXIT_USAGE
    except MalformedPacket as e:
        where = "" if e.offset is None else f" at byte offset {e.offset} (0x{e.offset:x})"
        _fail(
            f"malformed packet: {e.reason}{where}; is the input one DNS message "
            "(the UDP payload, no Ethernet/IP/UDP headers)?"
        )
        return EXIT_NOTHING
    except cli_output.BadInput as e:
        _fail(f"{e}; give one DNS message as raw bytes or hex text (see '{PROG} decode --help')")
        return EXIT_NOTHING
    except NetworkError as e:
        hint = _network_hint(
            e, getattr(args, "interfaces", None), getattr(args, "ip_version", "any")
        )
        _fail(f"network error: {e}; {hint}")
        return EXIT_NETWORK
    except ValueError as e:
        # The library rejects bad names and types with ValueError before any packet is sent.
        _fail(f"{e} (see '{PROG} {args.command} --help')")
        return EXIT_USAGE
    except MdnsqError as e:
        _fail(str(e))
        return EXIT_NOTHING
    if found:
        return EXIT_FOUND
    if args.command != "decode":
        _fail(
            f"nothing found before the deadline ({args.timeout:g} s); {_nothing_hint(args)}"
            if args.timeout is not None
            else "nothing found"
        )
    return EXIT_NOTHING
