"""The exception hierarchy.

Everything amqpcodec raises on purpose derives from :class:`AMQPError`. Errors about
what *we* were asked to send are :class:`LocalProtocolError`/:class:`EncodeError`;
errors about what the *peer* sent are :class:`RemoteProtocolError`/:class:`DecodeError`.
Both kinds carry the AMQP reply code that belongs in the Connection.Close a caller
would send because of them.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AMQPError",
    "DecodeError",
    "EncodeError",
    "LocalProtocolError",
    "RemoteProtocolError",
]

# Reply codes used as defaults here; the full set lives in spec.ReplyCode.
_FRAME_ERROR = 501
_SYNTAX_ERROR = 502
_COMMAND_INVALID = 503


class AMQPError(Exception):
    """Base class of every exception amqpcodec raises on purpose."""


class _ProtocolError(AMQPError):
    """An error with the reply code (and culprit method) a Close would carry."""

    def __init__(
        self,
        message: str,
        reply_code: int = _COMMAND_INVALID,
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        super().__init__(message)
        self.reply_code = reply_code
        self.class_id = class_id
        self.method_id = method_id


class RemoteProtocolError(_ProtocolError):
    """The peer broke the protocol.

    ``reply_code``, ``class_id`` and ``method_id`` are what to put in the
    Connection.Close (or Channel.Close) sent because of it; ``events`` holds the events
    a ``Connection.receive_data`` call produced before the violation.
    """

    def __init__(
        self,
        message: str,
        reply_code: int = _COMMAND_INVALID,
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        super().__init__(message, reply_code, class_id, method_id)
        self.events: list[Any] = []


class DecodeError(RemoteProtocolError):
    """Bytes that cannot be decoded. ``offset`` is where in the input the problem is.

    ``frames`` holds the whole frames a :class:`~amqpcodec.FrameDecoder` decoded in the
    same ``feed`` before the bad one, so that none is lost whatever the input's split.
    """

    def __init__(
        self,
        message: str,
        reply_code: int = _FRAME_ERROR,
        offset: int = 0,
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        super().__init__(message, reply_code, class_id, method_id)
        self.offset = offset
        self.frames: list[Any] = []


class LocalProtocolError(_ProtocolError):
    """We were asked to do something the protocol forbids; nothing was queued.

    ``reply_code``, ``class_id`` and ``method_id`` say what the protocol calls it.
    """


class EncodeError(LocalProtocolError, ValueError):
    """A value that cannot be encoded. ``field`` names where it was, ``value`` is the value."""

    def __init__(self, message: str, field: str = "", value: object = None) -> None:
        super().__init__(message, _SYNTAX_ERROR)
        self.field = field
        self.value = value
