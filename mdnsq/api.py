# One-call functions: open a Querier, ask, close. For scripts that ask one thing; anything that
# asks repeatedly should keep a Querier (its cache answers follow-up questions without waiting).
# Each checks its arguments (arguments.py) before the Querier opens any socket.
from __future__ import annotations

from mdnsq.arguments import checked_timeout, host_args, query_args, service_args, type_args
from mdnsq.interfaces import InterfaceSpec
from mdnsq.querier import IPVersion, Querier
from mdnsq.records import Record
from mdnsq.service import Address, ServiceInfo

__all__ = ["browse", "query", "resolve_host", "resolve_service", "service_types"]


def resolve_host(
    name: str,
    timeout: float = 2.0,
    *,
    interfaces: InterfaceSpec = None,
    ip_version: IPVersion | str = "any",
    one_shot: bool = False,
) -> list[Address]:
    """Addresses of a .local host name; empty when nobody answered in time."""
    host_args(name, timeout)
    with Querier(interfaces, ip_version, one_shot) as q:
        return q.resolve_host(name, timeout)


def browse(
    service_type: str,
    timeout: float = 3.0,
    *,
    interfaces: InterfaceSpec = None,
    ip_version: IPVersion | str = "any",
    one_shot: bool = False,
) -> list[ServiceInfo]:
    """Every instance of a service type found within ``timeout`` seconds."""
    type_args(service_type, timeout, none_ok=False)
    with Querier(interfaces, ip_version, one_shot) as q:
        return list(q.browse(service_type, timeout))


def resolve_service(
    name: str | None = None,
    timeout: float = 2.0,
    *,
    instance: str | None = None,
    type: str | None = None,
    interfaces: InterfaceSpec = None,
    ip_version: IPVersion | str = "any",
    one_shot: bool = False,
) -> ServiceInfo | None:
    """One instance, by full name or by ``instance=`` label and ``type=``; None if unanswered."""
    service_args(name, timeout, instance, type)
    with Querier(interfaces, ip_version, one_shot) as q:
        return q.resolve_service(name, timeout, instance=instance, type=type)


def query(
    name: str,
    type: int | str,
    timeout: float = 1.0,
    *,
    interfaces: InterfaceSpec = None,
    ip_version: IPVersion | str = "any",
    one_shot: bool = False,
) -> list[Record]:
    """Records of one (name, type), e.g. query("printer.local", "AAAA")."""
    query_args(name, type, timeout)
    with Querier(interfaces, ip_version, one_shot) as q:
        return q.query(name, type, timeout)


def service_types(
    timeout: float = 3.0,
    *,
    interfaces: InterfaceSpec = None,
    ip_version: IPVersion | str = "any",
    one_shot: bool = False,
) -> list[str]:
    """Service types announced on the link, e.g. ['_http._tcp.local', '_ipp._tcp.local']."""
    checked_timeout(timeout)
    with Querier(interfaces, ip_version, one_shot) as q:
        return q.service_types(timeout)
