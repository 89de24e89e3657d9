"""Events: what :meth:`Connection.receive_data` and :meth:`Connection.tick` report.

Each event is a small frozen, slotted dataclass that compares by value. An event is the
same class whichever side it happens on: when the server closes channel 3, the server's
Connection reports ``ChannelClosed(3, ..., closed_by=Role.SERVER)`` as the CloseOk
arrives and the client's reports an equal event as it answers the Close. Fields that
name a side use :class:`Role`, never "us" or "the peer", so a client-server pair test
can compare the two lists.

:data:`AnyEvent` is the union of every event class: ``match`` on it and end with
``assert_never`` to have mypy or pyright check that every event is handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from . import spec
from ._base import Method
from ._state import Role

__all__ = [
    "AnyEvent",
    "ChannelClosed",
    "ChannelOpened",
    "Confirmed",
    "ConnectionBlocked",
    "ConnectionClosed",
    "ConnectionOpened",
    "ConnectionUnblocked",
    "ContentMethod",
    "Event",
    "FlowChanged",
    "HeartbeatTimeout",
    "MessageReceived",
    "MethodReceived",
    "ProtocolHeaderReceived",
]

ContentMethod: TypeAlias = (
    spec.Basic.Publish | spec.Basic.Deliver | spec.Basic.GetOk | spec.Basic.Return
)
"""The four methods that carry content."""


class Event:
    """Base class of every event."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class ProtocolHeaderReceived(Event):
    """The peer sent a protocol header: the client's opening, or a server refusing ours
    with the version it offers instead [PDF §4.2.2]."""

    major: int
    minor: int
    revision: int
    protocol_id: int = 0


@dataclass(frozen=True, slots=True)
class ConnectionOpened(Event):
    """Connection.Open-Ok: the handshake is done. The values are the negotiated ones
    (0 means no limit; a heartbeat of 0 means none)."""

    frame_max: int
    channel_max: int
    heartbeat: int
    virtual_host: str = "/"


@dataclass(frozen=True, slots=True)
class ConnectionClosed(Event):
    """The connection is over; close the socket once ``data_to_send()`` is written.

    ``closed_by`` is the role that sent the Close whose reply code and text these are,
    or None when the connection ended without a Close handshake (``lost``): end of
    file, a missed heartbeat, a refused protocol header. ``unconfirmed`` maps each
    channel that was in confirm mode to the tags of our publishes that will now never be
    confirmed.
    """

    reply_code: int
    reply_text: str
    class_id: int = 0
    method_id: int = 0
    closed_by: Role | None = None
    unconfirmed: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def lost(self) -> bool:
        """True when there was no Close handshake."""
        return self.closed_by is None


@dataclass(frozen=True, slots=True)
class ConnectionBlocked(Event):
    """Connection.Blocked: the broker stopped reading from publishers (resource alarm).
    ``send_message`` refuses Basic.Publish until ConnectionUnblocked."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionUnblocked(Event):
    """Connection.Unblocked: the broker reads again."""


@dataclass(frozen=True, slots=True)
class ChannelOpened(Event):
    """Channel.Open-Ok: the channel can be used."""

    channel: int


@dataclass(frozen=True, slots=True)
class ChannelClosed(Event):
    """The channel is closed and its number free again. ``closed_by`` sent the Close
    whose reply code, text and failing method these are (404 NOT_FOUND, ...).

    ``unconfirmed``: the tags of our publishes on the channel that will never be
    confirmed (RabbitMQ drops publishes that cross its Channel.Close without a word).
    ``unanswered``: our synchronous requests that will never get their reply.
    """

    channel: int
    reply_code: int
    reply_text: str
    class_id: int = 0
    method_id: int = 0
    closed_by: Role | None = None
    unconfirmed: tuple[int, ...] = ()
    unanswered: tuple[Method, ...] = ()


@dataclass(frozen=True, slots=True)
class MethodReceived(Event):
    """A method without content that the connection does not handle itself.

    ``request`` is our request that this method answers (Queue.Declare for a
    Queue.DeclareOk, Basic.Get for a Basic.GetEmpty), None when it answers nothing.
    """

    channel: int
    method: Method
    request: Method | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived(Event):
    """A method with content (publish, deliver, get-ok, return) and its whole body.

    ``confirm_tag`` is the publish sequence number of a Basic.Publish received on a
    channel in confirm mode (what the server acks); None otherwise. ``request`` is the
    Basic.Get a Basic.GetOk answers; None otherwise.
    """

    channel: int
    method: ContentMethod
    properties: spec.BasicProperties
    body: bytes
    confirm_tag: int | None = None
    request: Method | None = None


@dataclass(frozen=True, slots=True)
class FlowChanged(Event):
    """Channel.Flow was agreed: ``active`` False means the side that asked will not
    accept content on the channel until it asks again with True."""

    channel: int
    active: bool


@dataclass(frozen=True, slots=True)
class Confirmed(Event):
    """Publisher confirms: the broker acked (``ack``) or nacked these publish delivery
    tags on ``channel``; a ``multiple`` ack is expanded to every tag it covers."""

    channel: int
    delivery_tags: tuple[int, ...]
    ack: bool = True


@dataclass(frozen=True, slots=True)
class HeartbeatTimeout(Event):
    """Nothing arrived for two heartbeat intervals: the peer is gone [PDF §4.2.7]. Close
    the socket; a ConnectionClosed (lost) follows in the same list."""

    silent_for: float


AnyEvent: TypeAlias = (
    ProtocolHeaderReceived
    | ConnectionOpened
    | ConnectionClosed
    | ConnectionBlocked
    | ConnectionUnblocked
    | ChannelOpened
    | ChannelClosed
    | MethodReceived
    | MessageReceived
    | FlowChanged
    | Confirmed
    | HeartbeatTimeout
)
"""Every event class: what ``receive_data`` and ``tick`` return items of."""
