"""Events: what :meth:`Connection.receive_data` and :meth:`Connection.tick` report.

Each event is a small slotted dataclass that compares by value. An event is the same
class whichever side it happens on: when the server closes channel 3, the server's
Connection reports ``ChannelClosed(3, ..., closed_by=Role.SERVER)`` as the CloseOk
arrives and the client's reports an equal event as it answers the Close. Fields that
name a side use :class:`Role`, never "us" or "the peer", so a client-server pair test
can compare the two lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._base import Method, Properties
from ._state import Role

__all__ = [
    "ChannelClosed",
    "ChannelOpened",
    "Confirmed",
    "ConnectionBlocked",
    "ConnectionClosed",
    "ConnectionOpened",
    "ConnectionUnblocked",
    "Event",
    "FlowChanged",
    "HeartbeatTimeout",
    "MessageReceived",
    "MethodReceived",
    "ProtocolHeaderReceived",
]


class Event:
    """Base class of every event."""

    __slots__ = ()


@dataclass(slots=True)
class ProtocolHeaderReceived(Event):
    """The peer sent a protocol header: the client's opening, or a server refusing ours
    with the version it offers instead [PDF §4.2.2]."""

    major: int
    minor: int
    revision: int
    protocol_id: int = 0


@dataclass(slots=True)
class ConnectionOpened(Event):
    """Connection.Open-Ok: the handshake is done. The values are the negotiated ones
    (0 means no limit; a heartbeat of 0 means none)."""

    frame_max: int
    channel_max: int
    heartbeat: int
    virtual_host: str = "/"


@dataclass(slots=True)
class ConnectionClosed(Event):
    """The connection is over; close the socket once ``data_to_send()`` is written.

    ``closed_by`` is the role that sent the Close whose reply code and text these are,
    or None when the connection ended without a Close handshake (``lost``): end of
    file, a missed heartbeat, a refused protocol header.
    """

    reply_code: int
    reply_text: str
    class_id: int = 0
    method_id: int = 0
    closed_by: Role | None = None

    @property
    def lost(self) -> bool:
        """True when there was no Close handshake."""
        return self.closed_by is None


@dataclass(slots=True)
class ConnectionBlocked(Event):
    """Connection.Blocked: the broker stopped reading from publishers (resource alarm)."""

    reason: str = ""


@dataclass(slots=True)
class ConnectionUnblocked(Event):
    """Connection.Unblocked: the broker reads again."""


@dataclass(slots=True)
class ChannelOpened(Event):
    """Channel.Open-Ok: the channel can be used."""

    channel: int


@dataclass(slots=True)
class ChannelClosed(Event):
    """The channel is closed and its number free again. ``closed_by`` sent the Close
    whose reply code, text and failing method these are (404 NOT_FOUND, ...)."""

    channel: int
    reply_code: int
    reply_text: str
    class_id: int = 0
    method_id: int = 0
    closed_by: Role | None = None


@dataclass(slots=True)
class MethodReceived(Event):
    """A method without content that the connection does not handle itself."""

    channel: int
    method: Method


@dataclass(slots=True)
class MessageReceived(Event):
    """A method with content (publish, deliver, get-ok, return) and its whole body.

    ``confirm_tag`` is the publish sequence number of a Basic.Publish received on a
    channel in confirm mode (what the server acks); None otherwise.
    """

    channel: int
    method: Method
    properties: Properties
    body: bytes
    confirm_tag: int | None = None


@dataclass(slots=True)
class FlowChanged(Event):
    """Channel.Flow was agreed: ``active`` False means the side that asked will not
    accept content on the channel until it asks again with True."""

    channel: int
    active: bool


@dataclass(slots=True)
class Confirmed(Event):
    """Publisher confirms: the broker acked (``ack``) or nacked these publish delivery
    tags on ``channel``; a ``multiple`` ack is expanded to every tag it covers."""

    channel: int
    delivery_tags: tuple[int, ...]
    ack: bool = True


@dataclass(slots=True)
class HeartbeatTimeout(Event):
    """Nothing arrived for two heartbeat intervals: the peer is gone [PDF §4.2.7]. Close
    the socket; a ConnectionClosed (lost) follows in the same list."""

    silent_for: float
