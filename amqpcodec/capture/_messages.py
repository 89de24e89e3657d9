"""Content assembly for captures: whole messages, and partial ones that bytes missing
from the capture cut through.

The rules are those of :class:`amqpcodec.ContentAssembler` [PDF §4.2.6], with the same
errors. What a capture adds: a message in progress when bytes go missing is not
dropped. It is marked *cut*; body frames that come after the gap on its channel still
count towards it, and it is given out as a partial :class:`MessageRecord` (what is
known: method, properties, the bytes present and how many are missing) when another
method starts on the channel, a frame does not fit it, or the stream ends. A body is
held once: body frames are written into one buffer whose bytes become the message.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from .. import spec
from .._base import Method
from .._content import DEFAULT_MAX_BODY_SIZE, Message
from .._errors import RemoteProtocolError
from .._frames import BodyFrame, Frame, HeaderFrame, MethodFrame
from ._records import FrameRecord, MessageRecord, Notice, NoticeKind, Record

if TYPE_CHECKING:
    from ._direction import Half

__all__ = ["MessageAssembler"]


class _Pending:
    """A message in progress on one channel."""

    __slots__ = ("body", "cut", "header", "method", "offset", "packet", "received", "time")

    def __init__(self, method: Method, offset: int, time: float | None, packet: int | None):
        self.method = method
        self.offset = offset  # of the method frame
        self.time = time  # of the method frame
        self.packet = packet
        self.header: HeaderFrame | None = None
        self.body: io.BytesIO | bytes | None = None  # bytes: a body in one frame so far
        self.received = 0
        self.cut = False  # bytes missing from the capture came after the method


class MessageAssembler:
    """Frames of one direction in, frame and message records out."""

    __slots__ = ("clean", "half", "held", "max_body_size", "pending")

    def __init__(self, half: Half, max_body_size: int = DEFAULT_MAX_BODY_SIZE) -> None:
        self.half = half
        self.max_body_size = max_body_size
        self.pending: dict[int, _Pending] = {}
        self.held = 0  # body bytes held for the messages in progress
        # Channels whose content sequence can be trusted: all of them on a stream read
        # from its start (None); after bytes were lost, those where a method was seen since.
        self.clean: set[int] | None = None

    def _take(self, channel: int) -> _Pending:
        pending = self.pending.pop(channel)
        self.held -= pending.received
        return pending

    def lost(self) -> None:
        """Bytes of the stream were lost: the messages in progress are cut, and content
        frames whose method was lost are to be expected."""
        for pending in self.pending.values():
            pending.cut = True
        self.clean = set()

    def finish(self) -> list[Record]:
        """Give out every message in progress as partial: the stream ended."""
        records: list[Record] = []
        for channel in sorted(self.pending):
            self._partial(channel, records)
        return records

    def feed(self, frame: Frame, offset: int, size: int, records: list[Record]) -> None:
        cls = frame.__class__
        if cls is BodyFrame:
            self._body(frame, offset, size, records)  # type: ignore[arg-type]
        elif cls is HeaderFrame:
            self._header(frame, offset, size, records)  # type: ignore[arg-type]
        elif cls is MethodFrame:
            self._method(frame, offset, size, records)  # type: ignore[arg-type]
        else:
            records.append(self._frame(frame, offset, size))

    def _method(self, frame: MethodFrame, offset: int, size: int, records: list[Record]) -> None:
        channel = frame.channel
        method = frame.method
        if self.clean is not None:
            self.clean.add(channel)
        pending = self.pending.get(channel)
        if pending is not None:
            if pending.cut:
                self._partial(channel, records)
            else:
                self._take(channel)
                text = f"{method.NAME} on channel {channel} in the middle of a content"
                self._error(text, spec.UNEXPECTED_FRAME, method, offset, records)
        if not method.CONTENT:
            records.append(self._frame(frame, offset, size))
        elif channel == 0:
            text = f"{method.NAME} on channel 0"
            self._error(text, spec.CHANNEL_ERROR, method, offset, records)
            records.append(self._frame(frame, offset, size))
        else:
            clock = self.half.clock
            self.pending[channel] = _Pending(method, offset, clock.time, clock.packet)

    def _header(self, frame: HeaderFrame, offset: int, size: int, records: list[Record]) -> None:
        channel = frame.channel
        pending = self.pending.get(channel)
        if channel == 0:  # [PDF §4.2.6.1] content header channel must not be zero
            problem = ("content header on channel 0", spec.CHANNEL_ERROR)
        elif pending is None or pending.header is not None:
            problem = (f"unexpected content header on channel {channel}", spec.UNEXPECTED_FRAME)
        elif frame.class_id != pending.method.CLASS_ID:
            problem = (
                f"content header of class {frame.class_id} after {pending.method.NAME}",
                spec.UNEXPECTED_FRAME,
            )
        elif frame.body_size > self.max_body_size:
            problem = (
                f"body of {frame.body_size} bytes is over the limit of {self.max_body_size}",
                spec.FRAME_ERROR,
            )
        elif pending.cut and pending.received:
            # Body bytes came before this header: it belongs to a later message.
            problem = ("", 0)
        else:
            pending.header = frame
            if pending.received >= frame.body_size:
                self._complete(channel, records)
            return
        self._misfit(frame, offset, size, problem, records)

    def _body(self, frame: BodyFrame, offset: int, size: int, records: list[Record]) -> None:
        channel = frame.channel
        pending = self.pending.get(channel)
        payload = frame.payload
        if channel == 0:
            problem = ("content body on channel 0", spec.CHANNEL_ERROR)
        elif pending is None or (pending.header is None and not pending.cut):
            problem = (f"unexpected content body on channel {channel}", spec.UNEXPECTED_FRAME)
        elif pending.header is not None and (
            pending.received + len(payload) > pending.header.body_size
        ):  # RabbitMQ: 501 "exceeds remaining content size"
            received, body_size = pending.received + len(payload), pending.header.body_size
            problem = (
                f"content body of {received} bytes is longer than the declared {body_size}",
                spec.FRAME_ERROR,
            )
        else:
            self._add(pending, payload)
            if pending.header is not None and pending.received == pending.header.body_size:
                self._complete(channel, records)
            return
        self._misfit(frame, offset, size, problem, records)

    def _add(self, pending: _Pending, payload: bytes | bytearray | memoryview) -> None:
        body = pending.body
        if body is None:
            pending.body = bytes(payload)  # one frame so far: no buffer (no copy of bytes)
        elif isinstance(body, bytes):
            buffer = pending.body = io.BytesIO()
            buffer.write(body)
            buffer.write(payload)
        else:
            body.write(payload)
        pending.received += len(payload)
        self.held += len(payload)

    def _misfit(
        self,
        frame: Frame,
        offset: int,
        size: int,
        problem: tuple[str, int],
        records: list[Record],
    ) -> None:
        """A content frame that does not fit what is in progress on its channel."""
        channel = getattr(frame, "channel", 0)
        pending = self.pending.get(channel)
        if pending is not None and pending.cut:
            self._partial(channel, records)  # the rest of it is what went missing
        elif not (self.clean is not None and channel not in self.clean):
            # Not an orphan whose start was lost: it breaks the content rules.
            text, reply_code = problem
            culprit = pending.method if pending is not None else None
            if pending is not None:
                self._take(channel)
            self._error(text, reply_code, culprit, offset, records)
        records.append(self._frame(frame, offset, size))

    def _error(
        self,
        text: str,
        reply_code: int,
        method: Method | None,
        offset: int,
        records: list[Record],
    ) -> None:
        exc = RemoteProtocolError(
            text,
            reply_code,
            method.CLASS_ID if method else 0,
            method.METHOD_ID if method else 0,
        )
        half, clock = self.half, self.half.clock
        message = f"content out of order at offset {offset}: {exc}"
        records.append(
            Notice(
                clock.time,
                half.info,
                half.direction,
                NoticeKind.ERROR,
                offset,
                0,
                message,
                exc,
                clock.packet,
            )
        )

    def _frame(self, frame: Frame, offset: int, size: int) -> FrameRecord:
        half, clock = self.half, self.half.clock
        return FrameRecord(clock.time, half.info, half.direction, frame, offset, size, clock.packet)

    def _complete(self, channel: int, records: list[Record]) -> None:
        pending = self._take(channel)
        records.append(self._record(channel, pending, 0))

    def _partial(self, channel: int, records: list[Record]) -> None:
        pending = self._take(channel)
        header = pending.header
        missing = None if header is None else header.body_size - pending.received
        records.append(self._record(channel, pending, missing))

    def _record(self, channel: int, pending: _Pending, missing: int | None) -> MessageRecord:
        body = pending.body
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        else:
            data = body.getvalue()  # the buffer itself, not a copy (CPython)
        pending.body = None
        header = pending.header
        properties = header.properties if header is not None else spec.BasicProperties()
        half, clock = self.half, self.half.clock
        return MessageRecord(
            clock.time,
            half.info,
            half.direction,
            Message(channel, pending.method, properties, data),
            pending.offset,
            clock.packet,
            pending.time,
            pending.packet,
            missing,
        )
