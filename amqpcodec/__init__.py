"""amqpcodec: a pure-Python AMQP 0-9-1 wire-protocol codec.

The whole public API is imported here; everything else is private.
"""

from __future__ import annotations

from . import spec
from ._base import Method, Properties
from ._errors import AMQPError, DecodeError, EncodeError, LocalProtocolError, RemoteProtocolError
from ._wire import RABBITMQ, STRICT, Dialect, FieldArray, FieldTable
from .spec import BasicProperties, ReplyCode

__version__ = "0.1.0"

__all__ = [
    "RABBITMQ",
    "STRICT",
    "AMQPError",
    "BasicProperties",
    "DecodeError",
    "Dialect",
    "EncodeError",
    "FieldArray",
    "FieldTable",
    "LocalProtocolError",
    "Method",
    "Properties",
    "RemoteProtocolError",
    "ReplyCode",
    "__version__",
    "spec",
]
