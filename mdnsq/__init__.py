"""mdnsq: ask the local network over multicast DNS and DNS-SD, synchronously.

Each block below belongs to one module; see README.md for how a packet travels through them.
"""

from __future__ import annotations

from mdnsq.errors import MalformedPacket, MdnsqError, NetworkError
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
    "Datagram",
    "HINFORecord",
    "Interface",
    "MalformedPacket",
    "MdnsqError",
    "Message",
    "NSECRecord",
    "NetworkError",
    "PTRRecord",
    "PoolStats",
    "Question",
    "Record",
    "RecordType",
    "SRVRecord",
    "TXTRecord",
    "Transport",
    "TransportStats",
    "UDPv4Transport",
    "UDPv6Transport",
    "UnknownRecord",
    "build_queries",
    "build_query",
    "encode_message",
    "escape_label",
    "join_name",
    "list_interfaces",
    "name_key",
    "normalize_name",
    "parse_message",
    "split_name",
    "unescape_label",
]

__version__ = "0.1.0"
