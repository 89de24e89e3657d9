"""Content assembly: method + content header + body frames -> one message.

How this works: content travels as a content-carrying method frame, then a content
header of the same class, then body frames until ``body_size`` bytes have arrived
[PDF §4.2.6]. Content on different channels may interleave; on one channel nothing may
come between the frames of one content. :class:`ContentAssembler` keeps one partial
message per channel and hands back every other frame unchanged, so a caller can feed it
everything a :class:`~amqpcodec.FrameDecoder` produces.

Reply codes follow RabbitMQ (protocol-facts §12): 505 UNEXPECTED_FRAME for frames out of
order, 501 FRAME_ERROR for a body that overshoots its declared size or is over the
``max_body_size`` bound, 504 CHANNEL_ERROR for content frames on channel 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from . import spec
from ._base import Method, Properties
from ._errors import RemoteProtocolError
from ._frames import BodyFrame, Frame, HeaderFrame, MethodFrame

__all__ = ["DEFAULT_MAX_BODY_SIZE", "ContentAssembler", "Message"]

_new = object.__new__

DEFAULT_MAX_BODY_SIZE: Final = 512 * 1024 * 1024
"""RabbitMQ's hard limit on a message body (``?MAX_MSG_SIZE``)."""


@dataclass(slots=True)
class Message:
    """A whole message: its method (publish, deliver, get-ok, return), properties, body."""

    channel: int
    method: Method
    properties: Properties
    body: bytes


@dataclass(slots=True)
class _Partial:
    method: Method
    header: HeaderFrame | None = None
    received: int = 0
    chunks: list[bytes | bytearray | memoryview] = field(default_factory=list)


class ContentAssembler:
    """Turns a frame sequence into methods and whole messages, channel by channel."""

    __slots__ = ("_partial", "max_body_size")

    def __init__(self, max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> None:
        self.max_body_size: int = max_body_size
        self._partial: dict[int, _Partial] = {}

    def in_progress(self, channel: int) -> bool:
        """Whether a message is partly received on ``channel``."""
        return channel in self._partial

    def discard(self, channel: int) -> None:
        """Forget a partial message on ``channel`` (the channel closed)."""
        self._partial.pop(channel, None)

    def feed(self, frame: Frame) -> Frame | Message | None:
        """Take one frame. Returns a finished Message, the frame itself when it is not
        content, or None while a message is still incomplete."""
        cls = frame.__class__  # exact classes first: the common case, no isinstance chain
        if cls is BodyFrame:
            return self._body(frame)  # type: ignore[arg-type]
        if cls is HeaderFrame:
            return self._header(frame)  # type: ignore[arg-type]
        if isinstance(frame, MethodFrame):
            channel = frame.channel
            if channel in self._partial:
                raise self._error(
                    f"{frame.method.NAME} on channel {channel} in the middle of a content",
                    channel,
                    frame.method,
                )
            if frame.method.CONTENT:
                if channel == 0:
                    raise RemoteProtocolError(
                        f"{frame.method.NAME} on channel 0",
                        spec.CHANNEL_ERROR,
                        frame.method.CLASS_ID,
                        frame.method.METHOD_ID,
                    )
                partial: _Partial = _new(_Partial)  # as _Partial(method), without __init__
                partial.method = frame.method
                partial.header = None
                partial.received = 0
                partial.chunks = []
                self._partial[channel] = partial
                return None
            return frame
        if isinstance(frame, HeaderFrame):
            return self._header(frame)
        if isinstance(frame, BodyFrame):
            return self._body(frame)
        return frame

    def _error(
        self, message: str, channel: int, method: Method | None = None
    ) -> RemoteProtocolError:
        partial = self._partial.get(channel)
        culprit = method or (partial.method if partial else None)
        return RemoteProtocolError(
            message,
            spec.UNEXPECTED_FRAME,
            culprit.CLASS_ID if culprit else 0,
            culprit.METHOD_ID if culprit else 0,
        )

    def _header(self, frame: HeaderFrame) -> Message | None:
        channel = frame.channel
        if channel == 0:  # [PDF §4.2.6.1] content header channel must not be zero
            raise RemoteProtocolError("content header on channel 0", spec.CHANNEL_ERROR)
        partial = self._partial.get(channel)
        if partial is None or partial.header is not None:
            raise self._error(f"unexpected content header on channel {channel}", channel)
        if frame.class_id != partial.method.CLASS_ID:
            raise self._error(
                f"content header of class {frame.class_id} after {partial.method.NAME}", channel
            )
        if frame.body_size > self.max_body_size:
            raise RemoteProtocolError(
                f"body of {frame.body_size} bytes is over the limit of {self.max_body_size}",
                spec.FRAME_ERROR,
                partial.method.CLASS_ID,
                partial.method.METHOD_ID,
            )
        if frame.body_size == 0:
            del self._partial[channel]
            return Message(channel, partial.method, frame.properties, b"")
        partial.header = frame
        return None

    def _body(self, frame: BodyFrame) -> Message | None:
        channel = frame.channel
        if channel == 0:
            raise RemoteProtocolError("content body on channel 0", spec.CHANNEL_ERROR)
        partial = self._partial.get(channel)
        if partial is None or partial.header is None:
            raise self._error(f"unexpected content body on channel {channel}", channel)
        payload = frame.payload
        partial.received += len(payload)
        body_size = partial.header.body_size
        if partial.received > body_size:  # RabbitMQ: 501 "exceeds remaining content size"
            raise RemoteProtocolError(
                f"content body of {partial.received} bytes is longer than the declared {body_size}",
                spec.FRAME_ERROR,
                partial.method.CLASS_ID,
                partial.method.METHOD_ID,
            )
        if partial.received < body_size:
            partial.chunks.append(payload)
            return None
        del self._partial[channel]
        chunks = partial.chunks
        if chunks:
            chunks.append(payload)
            body = b"".join(chunks)
        else:  # the whole body in one frame: no join
            body = payload if payload.__class__ is bytes else bytes(payload)
        message: Message = _new(Message)
        message.channel = channel
        message.method = partial.method
        message.properties = partial.header.properties
        message.body = body
        return message
