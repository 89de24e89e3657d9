"""The events a :class:`amqpcodec.Connection` reports. See :mod:`amqpcodec._events`."""

from __future__ import annotations

from ._events import (
    ChannelClosed,
    ChannelOpened,
    Confirmed,
    ConnectionBlocked,
    ConnectionClosed,
    ConnectionOpened,
    ConnectionUnblocked,
    Event,
    FlowChanged,
    HeartbeatTimeout,
    MessageReceived,
    MethodReceived,
    ProtocolHeaderReceived,
)

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
