# The arguments of each public call, checked and normalised in one place, without a socket.
# The Querier's calls use them; the one-call functions (api.py) and the command line run the
# same checks before they open any socket (which joins the group): a typo then costs nothing on
# the wire, and is the caller's InvalidArgument, not the NetworkError of a machine without
# multicast.
from __future__ import annotations

import math
import numbers
import operator
from typing import cast

from mdnsq.errors import InvalidArgument
from mdnsq.names import normalize_name
from mdnsq.records import RecordType, record_type
from mdnsq.service import (
    instance_name,
    normalize_host,
    normalize_service_type,
    typed_instance_name,
)

__all__ = [
    "asked_name",
    "checked_timeout",
    "host_args",
    "parse_ip_version",
    "parse_type",
    "query_args",
    "service_args",
    "timeout_seconds",
    "type_args",
]

# Types no question may ask for: reserved 0, EDNS0's pseudo-record (RFC 6891 §6.1.1), and the
# transaction and zone-transfer types (TKEY, TSIG, IXFR, AXFR, MAILB, MAILA), which mean
# nothing on a link.
_UNASKABLE = frozenset((0, 41, 249, 250, 251, 252, 253, 254))


def parse_ip_version(ip_version: str | int) -> tuple[bool, bool]:
    """(IPv4 wanted, IPv6 wanted)."""
    value = str(ip_version).lower()
    if value == "any":
        return True, True
    if value in ("v4", "4", "ipv4"):
        return True, False
    if value in ("v6", "6", "ipv6"):
        return False, True
    raise InvalidArgument(f"ip_version must be 'any', 'v4' or 'v6', not {ip_version!r}")


def asked_name(name: str) -> str:
    """A name to ask about: the root is nobody's on a link, and asking it sent ". SRV?"."""
    text = normalize_name(name)
    if not text:
        raise InvalidArgument(f"no name to ask about in {name!r}")
    return text


def parse_type(rtype: int | str, asking: bool = True) -> RecordType:
    if isinstance(rtype, str):
        parsed = RecordType.parse(rtype)
    elif isinstance(rtype, bool):  # True asked for an A record
        raise TypeError("a record type must be str or int, not bool")
    else:
        # InvalidArgument outside 0..65535, as parse() for text; int() made 1.5 an A question.
        try:
            parsed = record_type(operator.index(rtype))
        except TypeError:
            raise TypeError(
                f"a record type must be str or int, not {type(rtype).__name__}"
            ) from None
    if asking and parsed in _UNASKABLE:  # (cached() may read any type back)
        raise InvalidArgument(f"no question asks for type {parsed.name}")
    return parsed


def timeout_seconds(
    timeout: float | None, none_ok: bool = False, what: str = "timeout"
) -> float | None:
    """A call's timeout: a number (at most 0: answer from the cache at once), or None where it
    means "until closed". NaN read as 0 before: a computed timeout gone wrong looked like an
    empty network."""
    if timeout is None and none_ok:
        return None
    if not isinstance(timeout, numbers.Real) or isinstance(timeout, bool):
        raise TypeError(f"{what} must be a number of seconds, not {type(timeout).__name__}")
    try:
        seconds = float(timeout)
    except OverflowError:  # an int or Fraction past float's range: as good as infinite
        seconds = math.inf if timeout > 0 else -math.inf
    if seconds != seconds:
        raise InvalidArgument(f"{what} is NaN")
    return seconds


def checked_timeout(timeout: float, what: str = "timeout") -> float:
    return cast(float, timeout_seconds(timeout, what=what))  # None: TypeError without none_ok


def query_args(name: str, type: int | str, timeout: float) -> tuple[str, RecordType, float]:
    return asked_name(name), parse_type(type), checked_timeout(timeout)


def host_args(name: str, timeout: float) -> tuple[str, float]:
    return normalize_host(name), checked_timeout(timeout)


def service_args(
    name: str | None, timeout: float, instance: str | None, type: str | None
) -> tuple[str, float]:
    """resolve_service's instance name, from a full name or an instance label and a type."""
    if name is None:
        if instance is None or type is None:
            raise TypeError("resolve_service needs a name, or instance= and type=")
        full = instance_name(instance, type)
    else:
        if instance is not None or type is not None:
            raise TypeError("give either a name or instance= and type=, not both")
        if not isinstance(name, str):
            raise TypeError(f"a name must be str, not {name.__class__.__name__}")
        # Read as typed first: dots around and doubled in the instance are its own, and
        # normalized as a name first, the empty labels between them were refused.
        full = asked_name(typed_instance_name(name))
    return full, checked_timeout(timeout)


def type_args(
    service_type: str, timeout: float | None, none_ok: bool = True
) -> tuple[str, float | None]:
    """browse's (a number) and watch's (None: until closed) type and timeout."""
    return normalize_service_type(service_type), timeout_seconds(timeout, none_ok)
