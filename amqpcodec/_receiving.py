"""The receive path: bytes to events, with whole messages taken straight from the bytes.

How this works: before tuning, :meth:`Receiving._receive_untuned` gives the
:class:`~amqpcodec.FrameDecoder` one whole frame at a time. Once tuned,
:meth:`Receiving._receive_tuned` takes each read in runs. Where a content-carrying method
that the peer may send on an open channel (basic.deliver, basic.return and basic.get-ok
to a client; basic.publish to a server) starts a read's next frame, and its content
header and body frames follow on the same channel, all whole within the read, the
message is checked and decoded right there into a ``MessageReceived``, with no frame
objects and no ContentAssembler in between: :meth:`Receiving._receive_messages`. A
method without content on a channel (an ack between publishes) is decoded there too and
handed to the channel layer as the general path's frame loop hands it. Every other run
of frames (up to the next message within a few frames, or the end of the read), and any
message that is incomplete or fails any check, goes the general way, FrameDecoder ->
frames -> :meth:`Receiving._receive_frames` (state checks, ContentAssembler, the
handlers of the other layers), which raises the same error at the same frame as it
always did. The message path only takes what the general path would accept without a
state change other than its own bookkeeping, so the two give the same events and the
same state for any bytes in any split; the tests compare them.

The walk over frame boundaries needs only each frame's 7-byte header: the decoder judges
every frame it is given, and is given them in order and only at frame boundaries, so it
holds at most the one incomplete frame at the end of a read, whose header the walk keeps
(``_walk_head``, ``_walk_left``) to find where the next read's first frame starts. The
bytes the decoder is not given are counted (``_skipped``) so that its errors still give
offsets in the whole stream.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Final

from . import spec
from ._channels import _GET_OK, _PUBLISH, ChannelLayer, _method_received
from ._core import _CS_OPEN, _H_OPEN, CS, Buffer, _new
from ._errors import DecodeError
from ._events import AnyEvent, MessageReceived
from ._frames import BodyFrame, HeaderFrame, MethodFrame, ProtocolHeader
from ._handshake import Handshake

__all__ = ["Receiving"]

_HEADER: Final = struct.Struct(">BHI")  # frame type, channel, payload size [PDF §4.2.3]
_U32: Final = struct.Struct(">I")
# A method frame's header and the method's class and method ids (as one index).
_METHOD_HEADER: Final = struct.Struct(">BHII")
# A content header frame's header, class id, weight and body size [PDF §4.2.6.1].
_CONTENT_HEADER: Final = struct.Struct(">BHIHHQ")
_FRAME_END: Final = 0xCE
_NO_LIMIT: Final = 1 << 32  # above any payload size (a 32-bit field): frame_max 0
_METHODS: Final = spec.METHODS_BY_INDEX
_RUN_LOOKAHEAD: Final = 16  # frames a run of other frames is walked for a message's start
_TYPE_METHOD: Final = spec.FRAME_METHOD
_TYPE_HEADER: Final = spec.FRAME_HEADER
_TYPE_BODY: Final = spec.FRAME_BODY


class Receiving(Handshake, ChannelLayer):
    """The receive path of a Connection, over its handshake and channel layers."""

    _whole_messages: bool = True
    """Take whole messages straight from the bytes; False: every frame goes through the
    FrameDecoder (the general path, which the tests compare the message path with)."""

    def _receive_untuned(self, data: Buffer, events: list[AnyEvent]) -> Buffer:
        """Before tuning, give the decoder one whole frame at a time, so that the frames
        that follow Tune / Tune-Ok in the same read are held to the negotiated frame_max
        rather than the minimum: any split of the input gives the same result. Returns
        the bytes left once tuned (or nothing)."""
        view = memoryview(data).cast("B")
        size = len(view)
        start = pos = 0
        while pos < size:
            pos = self._walk_frame(view, pos, size)
            if self._walk_head:  # not complete in this read
                break
            self._feed_decoder(view[start:pos], events)
            start = pos
            if self._state is CS.CLOSED:
                return b""
            if not self._untuned:
                return view[pos:]
        if start < size:
            self._feed_decoder(view[start:], events)
        return b""

    def _walk_frame(self, data: bytes | memoryview, pos: int, size: int) -> int:
        """Walk the frame that starts at ``pos`` (or that an earlier read began, whose
        header ``_walk_head`` holds) as far as ``data[:size]`` goes: the position after
        it, or ``size`` with ``_walk_head`` still set while it is incomplete."""
        head = self._walk_head  # the header of the frame being walked, up to 7 bytes
        if len(head) < 7:
            take = min(7 - len(head), size - pos)
            head += data[pos : pos + take]
            pos += take
            if len(head) < 7:
                return pos
            # A protocol header (a server refusing ours) is 8 bytes; a frame is its
            # declared size plus 8 (the decoder judges that size, not this walk).
            self._walk_left = 1 if head[:4] == b"AMQP" else int.from_bytes(head[3:7], "big") + 1
        take = min(self._walk_left, size - pos)
        pos += take
        self._walk_left -= take
        if not self._walk_left:
            head.clear()
        return pos

    def _receive_tuned(self, data: Buffer, events: list[AnyEvent]) -> None:
        """Once tuned: whole messages straight from the bytes, the rest in runs of frames
        through the decoder."""
        if not self._whole_messages:  # every frame through the decoder
            self._feed_decoder(data, events)
            return
        if data.__class__ is not bytes:
            data = bytes(data)  # one copy, as the decoder's buffer would make
        size = len(data)
        pos = 0
        if self._walk_head:  # first the rest of the frame the decoder holds the start of
            pos = self._walk_frame(data, 0, size)
            self._feed_decoder(data if pos == size else memoryview(data)[:pos], events)
            if pos == size or self._state is CS.CLOSED:
                return
        while True:
            if self._state is _CS_OPEN:
                pos = self._receive_messages(data, pos, size, events)
                if pos == size:
                    return
            end = self._walk_run(data, pos, size)
            self._feed_decoder(data if pos == 0 and end == size else data[pos:end], events)
            if self._state is CS.CLOSED:
                return
            if end == size:
                # The decoder holds the frame left incomplete at the end, if any (it held
                # nothing before): its header tells where the next read's first one starts.
                held = self._decoder.buffered
                if held:
                    self._walk_frame(data, size - held, size)
                return
            pos = end

    def _walk_run(self, data: bytes, pos: int, size: int) -> int:
        """The end of the run of frames from ``pos`` that goes to the decoder: up to the
        next frame that may start a whole message within the next few, or the end of
        ``data``. (Only a few are looked at: a read of other frames, acks say, then costs
        the walk over them nothing, while messages among a few other frames each still
        take the message path.)"""
        candidates = self._content_in  # (the state may be OPEN by the end of the run)
        unpack_u32 = _U32.unpack_from
        unpack_method_header = _METHOD_HEADER.unpack_from
        if size - pos < 7:
            return size
        end: int = pos + 8 + unpack_u32(data, pos + 3)[0]  # the run takes its first frame
        for _ in range(_RUN_LOOKAHEAD):
            if end > size:
                break
            at = end
            if size - at >= 11:
                frame_type, _, payload_size, index = unpack_method_header(data, at)
                if frame_type == _TYPE_METHOD and index in candidates:
                    return at
            elif size - at >= 7:
                payload_size = unpack_u32(data, at + 3)[0]
            else:
                break
            end = at + 8 + payload_size
        return size

    def _receive_messages(self, data: bytes, pos: int, size: int, events: list[AnyEvent]) -> int:
        """The whole messages that start at ``pos``, one after another, taken straight from
        ``data`` into MessageReceived events: the position of the first frame that does
        not start one (the connection must be OPEN, which a message does not change).

        Each check of the general path is made here, in its terms, before anything is
        committed: a message that fails one, or is not all in ``data``, is left to the
        general path, which raises or acts as it always does."""
        start = pos
        content_in = self._content_in
        channels = self._channels
        assembler = self._assembler
        in_progress = assembler._partial
        max_body_size = assembler.max_body_size
        # Every message taken here is held and released at once: the bodies held across
        # channels stay as they are, and a body may take the room left [max_total_body_size].
        room = self._max_held - self._held
        limit = self._decoder.max_frame_size  # frame_max plus the tolerance (0: none)
        max_payload = limit - 8 if limit else _NO_LIMIT
        unpack_header = _HEADER.unpack_from
        unpack_method_header = _METHOD_HEADER.unpack_from
        unpack_content_header = _CONTENT_HEADER.unpack_from
        new = _new
        methods = _METHODS
        plain_in = self._plain_in
        while size - pos >= 11:
            # A whole method frame.
            frame_type, channel, payload_size, index = unpack_method_header(data, pos)
            end = pos + 7 + payload_size  # the frame-end octet
            if (
                frame_type != _TYPE_METHOD
                or payload_size < 4
                or end >= size
                or payload_size > max_payload
                or data[end] != _FRAME_END
            ):
                break
            entry = content_in.get(index)
            if entry is None:
                # A method without content on a channel: decoded here and handed to the
                # channel layer as the general path's frame loop would hand it, so that
                # the messages between such methods (publish, ack, publish...) still
                # take this path rather than a decoder call for each method.
                method_class = methods.get(index)
                if method_class is None or method_class.CONTENT or not channel:
                    break
                try:
                    method = method_class.decode(data, pos + 11, end)
                except DecodeError:
                    break
                ch = channels.get(channel)
                if (
                    method_class in plain_in
                    and ch is not None
                    and ch.state is _H_OPEN
                    and channel not in in_progress
                ):  # the common case of _receive_channel_method, which it tests first
                    events.append(_method_received(channel, method))
                else:
                    frame = new(MethodFrame)
                    frame.channel = channel
                    frame.method = method
                    self._receive_channel_method(frame, events)
                    room = self._max_held - self._held  # a channel.close gives back its share
                pos = end + 1
                continue
            # On an open channel with no content in progress [PDF §4.2.6].
            ch = channels.get(channel)
            if ch is None or ch.state is not _H_OPEN or channel in in_progress:
                break
            method_class, properties_class = entry
            if method_class is _GET_OK:  # it answers our basic.get [XML "synchronous"]
                requests = ch.requests
                if not requests or _GET_OK not in requests[0].RESPONSES:
                    break
            # The content header frame on the same channel, of the method's class, with
            # weight 0 and a body size within max_body_size and the room held.
            header_at = end + 1
            if size - header_at < 21:
                break
            frame_type, header_channel, payload_size, class_id, weight, body_size = (
                unpack_content_header(data, header_at)
            )
            header_end = header_at + 7 + payload_size
            if (
                frame_type != _TYPE_HEADER
                or header_channel != channel
                or payload_size < 14
                or header_end >= size
                or payload_size > max_payload
                or data[header_end] != _FRAME_END
            ):
                break
            if (
                class_id != method_class.CLASS_ID
                or weight
                or body_size > max_body_size
                or (body_size and body_size > room)
            ):
                break
            # The body frames: exactly body_size bytes, on the same channel.
            next_at = header_end + 1
            if not body_size:
                body = b""
            else:
                if size - next_at < 7:
                    break
                frame_type, body_channel, payload_size = unpack_header(data, next_at)
                body_end = next_at + 7 + payload_size
                if (
                    frame_type != _TYPE_BODY
                    or body_channel != channel
                    or body_end >= size
                    or payload_size > max_payload
                    or data[body_end] != _FRAME_END
                ):
                    break
                if payload_size == body_size:  # the whole body in one frame
                    body = data[next_at + 7 : body_end]
                    next_at = body_end + 1
                else:  # in several frames (or one too long, which _gather_body refuses)
                    gathered = _gather_body(data, next_at, size, channel, body_size, max_payload)
                    if gathered is None:
                        break
                    body, next_at = gathered
            try:
                method = method_class.decode(data, pos + 11, end)
                properties = properties_class.decode(data, header_at + 19, header_end)
            except DecodeError:
                break
            # Everything checked: commit, as the general path would.
            tag = request = None
            if method_class is _PUBLISH:
                if ch.confirming:
                    ch.received_tag = tag = ch.received_tag + 1
            elif method_class is _GET_OK:
                ch.content_request = request = ch.requests.popleft()
            event = new(MessageReceived)
            _set_channel(event, channel)
            _set_method(event, method)
            _set_properties(event, properties)
            _set_body(event, body)
            _set_confirm_tag(event, tag)
            _set_request(event, request)
            events.append(event)
            pos = next_at
        self._skipped += pos - start
        return pos

    def _feed_decoder(self, data: Buffer, events: list[AnyEvent]) -> None:
        try:
            frames: list[Any] = self._decoder.feed(data)
        except DecodeError as exc:
            self._receive_frames(exc.frames, events)  # as in receive_data
            if self._state is CS.CLOSED:
                return
            self._explain_size(exc)
            exc.offset += self._skipped  # the decoder counts only the bytes it was given
            raise
        self._receive_frames(frames, events)

    def _explain_size(self, exc: DecodeError) -> None:
        """The decoder knows one limit; say that it is frame_max plus the tolerance."""
        if self._tolerance and exc.reply_code == spec.FRAME_ERROR:
            limit = f"the frame_max of {self._decoder.max_frame_size}"
            if exc.args and isinstance(exc.args[0], str) and exc.args[0].endswith(limit):
                exc.args = (
                    exc.args[0][: -len(limit)]
                    + f"the frame_max of {self._frame_max} (plus the frame_max_tolerance"
                    f" of {self._tolerance})",
                )

    def _receive_frames(self, frames: list[Any], events: list[AnyEvent]) -> None:
        # The loop inlines the commonest cases, content on an open channel; the rest goes
        # to the _receive_* methods. (``Any``: frames are told apart by exact class, on
        # which mypy does not narrow.)
        channels = self._channels
        assembler = self._assembler
        assemble = assembler.feed
        # What assemble() would call for the two content frame classes, without its dispatch.
        assemble_body = assembler._body
        assemble_header = assembler._header
        plain_in = self._plain_in
        for frame in frames:
            cls = frame.__class__
            if cls is BodyFrame or cls is HeaderFrame:
                ch = channels.get(frame.channel)
                if ch is None or ch.state is not _H_OPEN or self._state is not _CS_OPEN:
                    self._receive_content(frame, events)
                    continue
                if cls is BodyFrame:
                    message = assemble_body(frame)
                else:
                    message = assemble_header(frame)
                    if message is None:  # the body follows: hold it within the budget
                        held = self._held + frame.body_size
                        if held > self._max_held:
                            self._refuse_content(frame.channel, frame.body_size)
                            continue
                        self._held = held
                if message is not None:
                    self._held -= len(message.body)
                    method = message.method
                    tag = request = None
                    mcls = method.__class__
                    if mcls is _PUBLISH:
                        if ch.confirming:
                            ch.received_tag = tag = ch.received_tag + 1
                    elif mcls is _GET_OK:
                        request = ch.content_request
                    # MessageReceived(channel, method, properties, body, tag, request),
                    # without the frozen dataclass's __init__ and its six object.__setattr__
                    event = _new(MessageReceived)
                    _set_channel(event, message.channel)
                    _set_method(event, method)
                    _set_properties(event, message.properties)
                    _set_body(event, message.body)
                    _set_confirm_tag(event, tag)
                    _set_request(event, request)
                    events.append(event)
            elif cls is MethodFrame:
                channel = frame.channel
                if not channel:
                    self._receive_connection_method(frame.method, events)
                    continue
                method = frame.method
                if method.CONTENT and method.__class__ in plain_in:
                    ch = channels.get(channel)
                    if ch is not None and ch.state is _H_OPEN and self._state is _CS_OPEN:
                        assemble(frame)  # 505 if a content is in progress on the channel
                        continue
                self._receive_channel_method(frame, events)
            elif cls is ProtocolHeader:
                self._receive_protocol_header(frame, events)
            # A heartbeat only proves the peer is alive, which any byte does.


def _gather_body(
    data: bytes, at: int, size: int, channel: int, body_size: int, max_payload: int
) -> tuple[bytes, int] | None:
    """A body in several body frames from ``at``: the body and the position after
    its last frame, or None when they are not all whole in ``data`` or fail a check."""
    unpack_header = _HEADER.unpack_from
    pieces = []
    received = 0
    while received < body_size:
        if size - at < 7:
            return None
        frame_type, body_channel, payload_size = unpack_header(data, at)
        end = at + 7 + payload_size
        received += payload_size
        if (
            frame_type != _TYPE_BODY
            or body_channel != channel
            or received > body_size
            or end >= size
            or payload_size > max_payload
            or data[end] != _FRAME_END
        ):
            return None
        pieces.append(data[at + 7 : end])
        at = end + 1
    return b"".join(pieces), at


# The slots of MessageReceived, set directly on the hot paths: MessageReceived(channel,
# method, properties, body, confirm_tag, request) without the frozen dataclass's
# __init__ and its six object.__setattr__.
_slots: Final[Mapping[str, Any]] = MessageReceived.__dict__
_set_channel: Final = _slots["channel"].__set__
_set_method: Final = _slots["method"].__set__
_set_properties: Final = _slots["properties"].__set__
_set_body: Final = _slots["body"].__set__
_set_confirm_tag: Final = _slots["confirm_tag"].__set__
_set_request: Final = _slots["request"].__set__
