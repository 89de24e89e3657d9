"""The events a :class:`amqpcodec.Connection` reports. See :mod:`amqpcodec._events`."""

from __future__ import annotations

from ._events import (
    AnyEvent,
    ChannelClosed,
    ChannelOpened,
    Confirmed,
    ConnectionBlocked,
    ConnectionClosed,
    ConnectionOpened,
    ConnectionUnblocked,
    ContentMethod,
    Event,
    FlowChanged,
    HeartbeatTimeout,
    MessageReceived,
    MethodReceived,
    ProtocolHeaderReceived,
)

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
