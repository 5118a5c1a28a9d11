"""mdnsq: ask the local network over multicast DNS and DNS-SD, synchronously.

Each block below belongs to one module; see README.md for how a packet travels through them.
"""

from __future__ import annotations

from mdnsq.errors import MalformedPacket, MdnsqError, NetworkError
from mdnsq.interfaces import Interface, list_interfaces
from mdnsq.pool import BufferPool, PoolStats
from mdnsq.transport import Datagram, Transport, TransportStats, UDPv4Transport, UDPv6Transport

__all__ = [
    "BufferPool",
    "Datagram",
    "Interface",
    "MalformedPacket",
    "MdnsqError",
    "NetworkError",
    "PoolStats",
    "Transport",
    "TransportStats",
    "UDPv4Transport",
    "UDPv6Transport",
    "list_interfaces",
]

__version__ = "0.1.0"
