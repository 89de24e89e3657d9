"""amqpcodec: a pure-Python AMQP 0-9-1 wire-protocol codec.

The whole public API is imported here; everything else is private.
"""

from __future__ import annotations

from . import events, spec
from ._base import Method, Properties
from ._connection import Connection, Credentials
from ._content import ContentAssembler, Message
from ._errors import AMQPError, DecodeError, EncodeError, LocalProtocolError, RemoteProtocolError
from ._frames import (
    FRAME_OVERHEAD,
    BodyFrame,
    Frame,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
    decode_frame,
    encode_frame,
    encode_message,
    encode_message_parts,
)
from ._settings import ClientSettings, ServerSettings
from ._state import ChannelState, ConnectionState, Role
from ._wire import RABBITMQ, STRICT, Dialect, FieldArray, FieldTable
from .spec import BasicProperties, ReplyCode

__version__ = "0.1.0"

__all__ = [
    "FRAME_OVERHEAD",
    "RABBITMQ",
    "STRICT",
    "AMQPError",
    "BasicProperties",
    "BodyFrame",
    "ChannelState",
    "ClientSettings",
    "Connection",
    "ConnectionState",
    "ContentAssembler",
    "Credentials",
    "DecodeError",
    "Dialect",
    "EncodeError",
    "FieldArray",
    "FieldTable",
    "Frame",
    "FrameDecoder",
    "HeaderFrame",
    "HeartbeatFrame",
    "LocalProtocolError",
    "Message",
    "Method",
    "MethodFrame",
    "Properties",
    "ProtocolHeader",
    "RemoteProtocolError",
    "ReplyCode",
    "Role",
    "ServerSettings",
    "__version__",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "encode_message_parts",
    "events",
    "spec",
]
