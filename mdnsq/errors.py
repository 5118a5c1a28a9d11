"""The exceptions a caller can catch, all importable from ``mdnsq``.

One base class, so ``except mdnsq.MdnsqError`` catches everything this library raises on
purpose (but TypeError for a call made with the wrong kinds of arguments); each subclass also
derives from the builtin a caller would naturally expect.
"""

from __future__ import annotations


class MdnsqError(Exception):
    """Base class of every error mdnsq raises on purpose."""


class MalformedPacket(MdnsqError, ValueError):
    """A packet's header or question section cannot be read.

    ``offset`` is where in the packet the problem was found (None when unknown).
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (at offset {offset})")
        self.reason = message
        self.offset = offset


class NetworkError(MdnsqError, OSError):
    """No usable interface, or a socket could not be opened or configured."""


class InvalidArgument(MdnsqError, ValueError):
    """An argument mdnsq cannot use: a name, service type or instance label that cannot be
    written as a DNS name, an unknown record type, a field or setting out of range, a message
    too big to send. Raised before anything is sent."""


class QuerierClosed(MdnsqError):
    """A call made on a Querier after close() (a call already running when it closed returns
    what it found instead, and so does a browse or watch made before)."""
