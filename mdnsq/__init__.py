"""mdnsq: ask the local network over multicast DNS and DNS-SD, synchronously.

Each block below belongs to one module; see README.md for how a packet travels through them.
"""

from __future__ import annotations

import logging

from mdnsq.api import browse, query, resolve_host, resolve_service, service_types
from mdnsq.cache import CacheEntry, RecordCache
from mdnsq.errors import (
    InvalidArgument,
    MalformedPacket,
    MdnsqError,
    NetworkError,
    QuerierClosed,
)
from mdnsq.interfaces import Interface, list_interfaces
from mdnsq.names import (
    escape_label,
    join_name,
    name_key,
    normalize_name,
    split_name,
    unescape_label,
)
from mdnsq.parser import parse_message
from mdnsq.pool import BufferPool, PoolStats
from mdnsq.querier import Querier
from mdnsq.records import (
    FLAG_AA,
    FLAG_QR,
    FLAG_TC,
    AAAARecord,
    ARecord,
    CNAMERecord,
    HINFORecord,
    Message,
    NSECRecord,
    PTRRecord,
    Question,
    Record,
    RecordType,
    SRVRecord,
    TXTRecord,
    UnknownRecord,
)
from mdnsq.service import (
    ServiceEvent,
    ServiceInfo,
    normalize_service_type,
    split_instance_name,
)
from mdnsq.transport import Datagram, Transport, TransportStats, UDPv4Transport, UDPv6Transport
from mdnsq.writer import build_queries, build_query, encode_message

__all__ = [
    "FLAG_AA",
    "FLAG_QR",
    "FLAG_TC",
    "AAAARecord",
    "ARecord",
    "BufferPool",
    "CNAMERecord",
    "CacheEntry",
    "Datagram",
    "HINFORecord",
    "Interface",
    "InvalidArgument",
    "MalformedPacket",
    "MdnsqError",
    "Message",
    "NSECRecord",
    "NetworkError",
    "PTRRecord",
    "PoolStats",
    "Querier",
    "QuerierClosed",
    "Question",
    "Record",
    "RecordCache",
    "RecordType",
    "SRVRecord",
    "ServiceEvent",
    "ServiceInfo",
    "TXTRecord",
    "Transport",
    "TransportStats",
    "UDPv4Transport",
    "UDPv6Transport",
    "UnknownRecord",
    "browse",
    "build_queries",
    "build_query",
    "encode_message",
    "escape_label",
    "join_name",
    "list_interfaces",
    "name_key",
    "normalize_name",
    "normalize_service_type",
    "parse_message",
    "query",
    "resolve_host",
    "resolve_service",
    "service_types",
    "split_instance_name",
    "split_name",
    "unescape_label",
]

__version__ = "0.1.0"

# A library's logger gets a do-nothing handler (the logging HOWTO): without one, logging's last
# resort prints its warnings (a failed send, a refused join) on the stderr of every script that
# never configured logging. A script that configures logging sees them as before.
logging.getLogger(__name__).addHandler(logging.NullHandler())
