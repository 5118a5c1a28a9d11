"""mdnsq: ask the local network over multicast DNS and DNS-SD, synchronously.

Each block below belongs to one module; see README.md for how a packet travels through them.
"""

from __future__ import annotations

from mdnsq.errors import MalformedPacket, MdnsqError, NetworkError

__all__ = [
    "MalformedPacket",
    "MdnsqError",
    "NetworkError",
]

__version__ = "0.1.0"
