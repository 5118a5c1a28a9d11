# One-call functions: open a Querier, ask, close. For scripts that ask one thing; anything that
# asks repeatedly should keep a Querier (its cache answers follow-up questions without waiting).
# Each checks its arguments (arguments.py) before the Querier opens any socket.
from __future__ import annotations

from typing import Any, Literal, overload

from mdnsq.arguments import checked_timeout, host_args, query_args, service_args, type_args
from mdnsq.interfaces import InterfaceSpec
from mdnsq.querier import IPVersion, Querier
from mdnsq.records import (
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    NSECRecord,
    PTRRecord,
    Record,
    RecordType,
    SRVRecord,
    TXTRecord,
)
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


@overload
def query(
    name: str,
    type: Literal["A", RecordType.A],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[ARecord]: ...


@overload
def query(
    name: str,
    type: Literal["AAAA", RecordType.AAAA],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[AAAARecord]: ...


@overload
def query(
    name: str,
    type: Literal["PTR", RecordType.PTR],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[PTRRecord]: ...


@overload
def query(
    name: str,
    type: Literal["CNAME", RecordType.CNAME],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[CNAMERecord]: ...


@overload
def query(
    name: str,
    type: Literal["SRV", RecordType.SRV],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[SRVRecord]: ...


@overload
def query(
    name: str,
    type: Literal["TXT", RecordType.TXT],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[TXTRecord]: ...


@overload
def query(
    name: str,
    type: Literal["HINFO", RecordType.HINFO],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[HINFORecord]: ...


@overload
def query(
    name: str,
    type: Literal["NSEC", RecordType.NSEC],
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[NSECRecord]: ...


@overload
def query(
    name: str,
    type: int | str,
    timeout: float = ...,
    *,
    interfaces: InterfaceSpec = ...,
    ip_version: IPVersion | str = ...,
    one_shot: bool = ...,
) -> list[Record]: ...


def query(
    name: str,
    type: int | str,
    timeout: float = 1.0,
    *,
    interfaces: InterfaceSpec = None,
    ip_version: IPVersion | str = "any",
    one_shot: bool = False,
) -> list[Any]:
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
