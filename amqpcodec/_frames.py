"""Frames: the protocol header, method, content header, body and heartbeat frames.

How this works: a frame is a 7-byte header (type, channel, payload size), the payload
and the frame-end octet 0xCE [PDF §2.3.5, §4.2.3]. :func:`decode_frame` decodes one
frame from ``(data, offset)``: None means the frame is not all there yet, an exception
means it is malformed. :class:`FrameDecoder` keeps one ``bytearray``, appends what it is
fed, decodes every complete frame and deletes the consumed prefix once per feed, so any
split of the input gives the same frames in linear time. The declared payload size is
checked against ``max_frame_size`` as soon as the 7 header bytes are in, before any
payload is waited for.

``frame_max`` counts the whole frame, header and frame-end included, so a body frame
carries at most ``frame_max - 8`` bytes [XML connection.tune frame-max; Errata #11].
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from . import spec
from ._base import Method, Properties
from ._errors import DecodeError, EncodeError

Buffer: TypeAlias = bytes | bytearray | memoryview

__all__ = [
    "FRAME_OVERHEAD",
    "BodyFrame",
    "Frame",
    "FrameDecoder",
    "HeaderFrame",
    "HeartbeatFrame",
    "MethodFrame",
    "ProtocolHeader",
    "decode_frame",
    "encode_frame",
    "encode_message",
    "encode_message_parts",
]

FRAME_OVERHEAD: Final = 8
"""Bytes a frame adds to its payload: the 7-byte header and the frame-end octet."""
DEFAULT_MAX_FRAME_SIZE: Final = 131072
"""RabbitMQ's default frame_max; the decoder's limit unless told otherwise."""

_HEADER = struct.Struct(">BHI")
_U32 = struct.Struct(">I")
_METHOD_HEADER = struct.Struct(">BHIHH")  # frame header + class id + method id
_CONTENT_HEADER = struct.Struct(">HHQ")  # class id, weight, body size
# The end octet of one frame and the start of the next, packed together when encoding.
_END_AND_HEADER = struct.Struct(">BBHI")
_END_AND_CONTENT_HEADER = struct.Struct(">BBHIHHQ")
_FRAME_END: Final = 0xCE
_FRAME_MIN_SIZE: Final = spec.FRAME_MIN_SIZE
_END = b"\xce"
_HEARTBEAT_BYTES: Final = b"\x08\x00\x00\x00\x00\x00\x00\xce"
_AMQP = b"AMQP"

_TYPE_METHOD: Final = spec.FRAME_METHOD
_TYPE_HEADER: Final = spec.FRAME_HEADER
_TYPE_BODY: Final = spec.FRAME_BODY
_TYPE_HEARTBEAT: Final = spec.FRAME_HEARTBEAT
_KNOWN_TYPES: Final = frozenset({_TYPE_METHOD, _TYPE_HEADER, _TYPE_BODY, _TYPE_HEARTBEAT})
_METHODS = spec.METHODS_BY_INDEX
_new = object.__new__
_PROPERTIES = spec.PROPERTIES


@dataclass(slots=True)
class ProtocolHeader:
    """The 8 octets that open a connection: ``AMQP``, protocol id, major, minor, revision."""

    major: int = 0
    minor: int = 9
    revision: int = 1
    protocol_id: int = 0

    def encode(self) -> bytes:
        try:
            return _AMQP + bytes((self.protocol_id, self.major, self.minor, self.revision))
        except ValueError:
            raise EncodeError(f"protocol header {self!r} has a part outside 0..255") from None

    @property
    def version(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.revision)

    @property
    def is_0_9_1(self) -> bool:
        return self.protocol_id == 0 and self.version == (0, 9, 1)


@dataclass(slots=True)
class MethodFrame:
    """A method on a channel (channel 0 for the connection class)."""

    channel: int
    method: Method

    def encode(self) -> bytes:
        payload = self.method.encode()
        try:
            return _HEADER.pack(_TYPE_METHOD, self.channel, len(payload)) + payload + _END
        except struct.error:
            raise _bad_channel(self.channel) from None


@dataclass(slots=True)
class HeaderFrame:
    """A content header: the body size and the content properties."""

    channel: int
    body_size: int
    properties: Properties = field(default_factory=spec.BasicProperties)
    class_id: int = 60

    def encode(self) -> bytes:
        try:
            payload = _CONTENT_HEADER.pack(self.class_id, 0, self.body_size)
        except struct.error:
            raise EncodeError(
                f"content header: body_size {self.body_size!r} or class_id {self.class_id!r}"
                " is out of range",
                "body_size",
                self.body_size,
            ) from None
        payload += self.properties.encode()
        try:
            return _HEADER.pack(_TYPE_HEADER, self.channel, len(payload)) + payload + _END
        except struct.error:
            raise _bad_channel(self.channel) from None


@dataclass(slots=True)
class BodyFrame:
    """A piece of a content body."""

    channel: int
    payload: bytes | bytearray | memoryview

    def encode(self) -> bytes:
        size = _nbytes(self.payload)
        try:
            return _HEADER.pack(_TYPE_BODY, self.channel, size) + bytes(self.payload) + _END
        except struct.error:
            raise _bad_channel(self.channel) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BodyFrame):
            return NotImplemented
        return self.channel == other.channel and bytes(self.payload) == bytes(other.payload)


@dataclass(slots=True)
class HeartbeatFrame:
    """A heartbeat: type 8 on channel 0 with an empty payload [Errata #12, #29]."""

    def encode(self) -> bytes:
        return _HEARTBEAT_BYTES


Frame: TypeAlias = ProtocolHeader | MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame


def _bad_channel(channel: object) -> EncodeError:
    return EncodeError(f"channel {channel!r} is not between 0 and 65535", "channel", channel)


def _nbytes(data: bytes | bytearray | memoryview) -> int:
    return data.nbytes if isinstance(data, memoryview) else len(data)


def encode_frame(frame: Frame) -> bytes:
    """The bytes of ``frame`` (the same as ``frame.encode()``)."""
    return frame.encode()


# ---------------------------------------------------------------------------------------
# Decoding


def decode_frame(
    data: Buffer, offset: int = 0, *, max_frame_size: int = 0
) -> tuple[Frame, int] | None:
    """Decode one frame at ``offset``: ``(frame, offset after it)``, or None if incomplete.

    A protocol header (``AMQP`` + 4 octets) is recognised too. ``max_frame_size`` (0: no
    limit) bounds the whole frame, as a negotiated frame_max does; it is checked against
    the declared size before the payload is needed. Malformed data raises DecodeError.
    """
    with memoryview(data) as view:
        view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
        frames: list[Frame] = []
        end = _decode_frames(view, offset, len(view), max_frame_size, frames, True)
        return (frames[0], end) if frames else None


def _decode_frames(
    buf: bytes | memoryview, off: int, size: int, limit: int, frames: list[Frame], one: bool
) -> int:
    """Append the whole frames in ``buf[off:size]`` to ``frames`` and return the offset
    after the last: the decoder's hot loop. ``one``: stop after one frame, and accept a
    protocol header (as decode_frame does; a FrameDecoder only takes one at the start)."""
    unpack_header = _HEADER.unpack_from
    append = frames.append
    new = _new
    frame: Any
    view = buf.__class__ is not bytes  # a slice of bytes is bytes already: no second call
    methods = _METHODS
    unpack_index = _U32.unpack_from
    properties_classes = _PROPERTIES
    unpack_content_header = _CONTENT_HEADER.unpack_from
    while size - off >= 7:
        frame_type, channel, payload_size = unpack_header(buf, off)
        if frame_type == 0x41 and one:
            header = _protocol_header(buf, off, size - off)
            if header is None:
                break
            append(header[0])
            return header[1]
        if limit and payload_size + 8 > limit:
            if frame_type not in _KNOWN_TYPES:
                raise _unknown_type(frame_type, off)
            raise DecodeError(
                f"frame of {payload_size + 8} bytes is larger than the frame_max of {limit}",
                spec.FRAME_ERROR,
                off,
            )
        start = off + 7
        end = start + payload_size
        if end >= size:
            if frame_type not in _KNOWN_TYPES:
                raise _unknown_type(frame_type, off)
            break
        if buf[end] != _FRAME_END:
            if frame_type not in _KNOWN_TYPES:
                raise _unknown_type(frame_type, off)
            raise DecodeError(
                f"frame-end octet is 0x{buf[end]:02x}, not 0xce", spec.FRAME_ERROR, end
            )
        # Frames are built with object.__new__ and two stores, cheaper than __init__.
        if frame_type == _TYPE_BODY:
            frame = new(BodyFrame)
            frame.channel = channel
            frame.payload = bytes(buf[start:end]) if view else buf[start:end]
            append(frame)
        elif frame_type == _TYPE_METHOD:
            # _decode_method inlined for a known method (a call per frame saved); the
            # function handles, and raises for, everything else.
            method_class = methods.get(unpack_index(buf, start)[0]) if end - start >= 4 else None
            frame = new(MethodFrame)
            frame.channel = channel
            if method_class is None:
                frame.method = _decode_method(buf, start, end)
            else:
                try:
                    frame.method = method_class.decode(buf, start + 4, end)
                except DecodeError as exc:
                    raise _in_method(exc, method_class, end) from None
            append(frame)
        elif frame_type == _TYPE_HEADER:
            # _decode_header inlined for a well-formed content header, as above.
            if end - start < 14:
                raise _short_header(start)
            class_id, weight, body_size = unpack_content_header(buf, start)
            properties_class = properties_classes.get(class_id)
            if weight or properties_class is None:
                append(_decode_header(buf, channel, start, end))  # raises
            try:
                properties = properties_class.decode(buf, start + 12, end)  # type: ignore[union-attr]
            except DecodeError as exc:
                exc.offset = min(exc.offset, end)  # see _decode_header
                raise
            frame = new(HeaderFrame)
            frame.channel = channel
            frame.body_size = body_size
            frame.properties = properties
            frame.class_id = class_id
            append(frame)
        elif frame_type == _TYPE_HEARTBEAT:
            append(_decode_heartbeat(channel, payload_size, off))
        else:
            raise _unknown_type(frame_type, off)
        off = end + 1
        if one:
            break
    else:
        # Fewer than 7 bytes: only a protocol header can be recognised (or refused) yet.
        if one and size > off and buf[off] == 0x41:
            header = _protocol_header(buf, off, size - off)
            if header is not None:
                append(header[0])
                return header[1]
    return off


def _unknown_type(frame_type: int, off: int) -> DecodeError:
    return DecodeError(f"unknown frame type {frame_type}", spec.FRAME_ERROR, off)


def _protocol_header(buf: bytes | memoryview, off: int, available: int) -> tuple[Frame, int] | None:
    """A peer's protocol header (or a server refusing ours) [PDF §4.2.2]."""
    if buf[off : off + min(4, available)] != _AMQP[: min(4, available)]:
        raise DecodeError("data is neither an AMQP frame nor a protocol header", 501, off)
    if available < 8:
        return None
    protocol_id, major, minor, revision = buf[off + 4 : off + 8]
    return ProtocolHeader(major, minor, revision, protocol_id), off + 8


def _decode_method(buf: bytes | memoryview, start: int, end: int) -> Method:
    if end - start < 4:
        raise DecodeError("method frame is too short for its class and method ids", 501, start)
    (index,) = _U32.unpack_from(buf, start)
    method_class = _METHODS.get(index)
    if method_class is None:
        raise DecodeError(
            f"unknown method {index >> 16}.{index & 0xFFFF}",
            spec.NOT_IMPLEMENTED,
            start,
            index >> 16,
            index & 0xFFFF,
        )
    try:
        return method_class.decode(buf, start + 4, end)
    except DecodeError as exc:
        raise _in_method(exc, method_class, end) from None


def _in_method(exc: DecodeError, method_class: type[Method], end: int) -> DecodeError:
    """A method's DecodeError, with the method's ids and an offset inside its frame."""
    exc.class_id, exc.method_id = method_class.CLASS_ID, method_class.METHOD_ID
    exc.offset = min(exc.offset, end)  # see _decode_header
    return exc


def _short_header(start: int) -> DecodeError:
    return DecodeError("content header frame is too short", spec.FRAME_ERROR, start)


def _decode_header(buf: bytes | memoryview, channel: int, start: int, end: int) -> HeaderFrame:
    if end - start < 14:
        raise _short_header(start)
    class_id, weight, body_size = _CONTENT_HEADER.unpack_from(buf, start)
    if weight != 0:  # [PDF §4.2.6.1] weight must be zero; RabbitMQ answers 505
        raise DecodeError(f"content header weight is {weight}, not 0", 505, start + 2)
    properties_class = _PROPERTIES.get(class_id)
    if properties_class is None:
        raise DecodeError(f"content header for class {class_id}, which has no content", 505, start)
    try:
        properties = properties_class.decode(buf, start + 12, end)
    except DecodeError as exc:
        # The generated readers notice a truncated field only after reading on past
        # the frame (into the buffer behind it); the truncation is at the frame's end.
        exc.offset = min(exc.offset, end)
        raise
    frame: HeaderFrame = _new(HeaderFrame)
    frame.channel = channel
    frame.body_size = body_size
    frame.properties = properties
    frame.class_id = class_id
    return frame


_HEARTBEAT = HeartbeatFrame()


def _decode_heartbeat(channel: int, payload_size: int, off: int) -> HeartbeatFrame:
    if payload_size:  # RabbitMQ closes with 501 [assembler analyze_frame]
        raise DecodeError("heartbeat frame has a payload", spec.FRAME_ERROR, off + 3)
    if channel:  # [PDF §4.2.3] heartbeats belong to channel 0: command-invalid
        raise DecodeError(f"heartbeat frame on channel {channel}", spec.COMMAND_INVALID, off + 1)
    return _HEARTBEAT


class FrameDecoder:
    """Incremental frame decoder: feed it bytes in any split, get whole frames back.

    ``max_frame_size`` is the largest whole frame accepted (a negotiated frame_max; 0 for
    no limit); it may be changed between feeds. A protocol header is accepted only as
    the first thing in the stream. After a DecodeError the decoder stays failed: it
    never resynchronises silently.
    """

    __slots__ = ("_buffer", "_consumed", "_error", "_started", "max_frame_size")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.max_frame_size: int = max_frame_size
        self._buffer = bytearray()
        self._consumed = 0  # stream offset of _buffer[0], for error offsets
        self._started = False
        self._error: DecodeError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a whole frame."""
        return len(self._buffer)

    @property
    def offset(self) -> int:
        """Stream offset of the first byte not yet decoded."""
        return self._consumed

    def feed(self, data: Buffer) -> list[Frame]:
        """Add ``data`` and return every frame it completes.

        On malformed data this raises DecodeError; the frames of this feed that came
        before the bad one are in the exception's ``frames``."""
        if self._error is not None:
            raise DecodeError(
                f"the stream failed earlier: {self._error}",
                self._error.reply_code,
                self._error.offset,
            )
        buf = self._buffer
        if type(data) is bytes:
            if self._started:
                return self._feed_bytes(data, [], 0)
            if not buf and data and (data[0] != 0x41 or len(data) >= 8):
                return self._feed_first(data)
        buf += data
        size = len(buf)
        frames: list[Frame] = []
        off = 0
        limit = self.max_frame_size
        try:
            with memoryview(buf) as view:
                if not self._started:
                    if not size:
                        return frames
                    self._started = True
                    if buf[0] == 0x41:  # a protocol header opens the stream
                        header = _protocol_header(view, 0, size)
                        if header is None:
                            self._started = False
                            return frames
                        frames.append(header[0])
                        off = 8
                off = _decode_frames(view, off, size, limit, frames, False)
        except DecodeError as exc:
            exc.offset += self._consumed
            exc.frames = frames
            self._error = exc
            raise
        if off:
            del buf[:off]
            self._consumed += off
        return frames

    def _feed_first(self, data: bytes) -> list[Frame]:
        """The first feed, when ``data`` itself settles whether a protocol header opens
        the stream: then the frames are decoded in place as on every later feed."""
        self._started = True
        frames: list[Frame] = []
        if data[0] != 0x41:
            return self._feed_bytes(data, frames, 0)
        try:
            header = _protocol_header(data, 0, len(data))
        except DecodeError as exc:
            exc.frames = frames
            self._error = exc
            raise
        frames.append(header[0])  # type: ignore[index]
        return self._feed_bytes(data, frames, 8)

    def _feed_bytes(self, data: bytes, frames: list[Frame], pos: int) -> list[Frame]:
        """feed() for ``bytes`` once the stream has started: whole frames are decoded
        straight from ``data`` (slicing ``bytes`` is cheaper than slicing a view, and they
        are never copied into the buffer). The buffer only ever holds one incomplete
        frame: it is completed from the head of ``data`` first, and the incomplete frame
        at the end of ``data`` is kept for the next feed."""
        buf = self._buffer
        limit = self.max_frame_size
        size = len(data)
        start = self._consumed + len(buf)  # stream offset of data[0]
        # data[:pos] is decoded (a protocol header) or has gone into the buffer
        if buf:
            held = len(buf)
            if held < 7:  # the pending frame's header first, then exactly its size
                pos = min(7 - held, size)
                buf += data[:pos]
                held += pos
            if held >= 7:
                take = min(_U32.unpack_from(buf, 3)[0] + 8 - held, size - pos)
                buf += memoryview(data)[pos : pos + take]
                pos += take
            try:
                with memoryview(buf) as view:
                    used = _decode_frames(view, 0, len(buf), limit, frames, False)
            except DecodeError as exc:
                exc.offset += self._consumed
                exc.frames = frames
                self._error = exc
                raise
            if not used:  # still incomplete: all of data is in the buffer
                return frames
            self._consumed += used
            del buf[:]
        try:
            off = _decode_frames(data, pos, size, limit, frames, False)
        except DecodeError as exc:
            exc.offset += start
            exc.frames = frames
            self._error = exc
            raise
        if off < size:
            buf += memoryview(data)[off:]
        self._consumed = start + off
        return frames


# ---------------------------------------------------------------------------------------
# Messages


def encode_message_parts(
    channel: int,
    method: Method,
    properties: Properties | None,
    body: bytes | bytearray | memoryview,
    frame_max: int,
) -> list[bytes | bytearray | memoryview]:
    """The frames of a message as a list of buffers; the body is never copied.

    The list holds ``body`` itself, or ``memoryview`` slices of it when it takes more
    than one body frame: pass it to ``socket.sendmsg`` or ``writelines``, and keep the
    body unchanged until it is sent. ``frame_max`` 0 means no limit.
    """
    if not method.CONTENT:
        raise EncodeError(f"{method.NAME} does not carry content", "method", method)
    if body.__class__ is bytes:  # the common case, before the general checks
        body_size = len(body)
    elif not isinstance(body, (bytes, bytearray, memoryview)):
        raise EncodeError(f"body must be bytes-like, not {type(body).__name__}", "body", body)
    elif isinstance(body, memoryview):
        if not body.c_contiguous:  # b"".join needs one block
            raise EncodeError("body must be a contiguous buffer", "body", body)
        body_size = body.nbytes
    else:
        body_size = len(body)
    if 0 < frame_max < _FRAME_MIN_SIZE:  # connection.tune frame-max: minimum
        raise EncodeError(f"frame_max {frame_max} is below the minimum of 4096", "frame_max")
    payload = method.encode()
    if properties is None:
        properties = _PROPERTIES[method.CLASS_ID]()
    props = properties.encode()
    try:
        method_head = _HEADER.pack(_TYPE_METHOD, channel, len(payload))
        header_head = _END_AND_CONTENT_HEADER.pack(
            _FRAME_END, _TYPE_HEADER, channel, len(props) + 12, method.CLASS_ID, 0, body_size
        )
    except struct.error:
        raise _bad_channel(channel) from None
    if frame_max:
        if len(payload) + FRAME_OVERHEAD > frame_max or len(props) + 20 > frame_max:
            _check_fits(len(payload), len(props) + 12, frame_max)
        chunk = frame_max - FRAME_OVERHEAD
    else:
        chunk = 0xFFFFFFFF
    if body_size <= chunk:  # the common case: at most one body frame, no slicing
        if body_size:
            body_head = _END_AND_HEADER.pack(_FRAME_END, _TYPE_BODY, channel, body_size)
            return [method_head, payload, header_head, props, body_head, body, _END]
        return [method_head, payload, header_head, props, _END]
    parts: list[bytes | bytearray | memoryview] = [method_head, payload, header_head, props]
    try:
        view = memoryview(body).cast("B")
    except TypeError:
        raise EncodeError("body must be a contiguous buffer", "body", body) from None
    pack = _END_AND_HEADER.pack
    for start in range(0, body_size, chunk):
        piece = view[start : start + chunk]
        parts += (pack(_FRAME_END, _TYPE_BODY, channel, len(piece)), piece)
    parts.append(_END)
    return parts


def _check_fits(method_size: int, header_size: int, frame_max: int) -> None:
    for what, size in (("method", method_size), ("content header", header_size)):
        if size + FRAME_OVERHEAD > frame_max:
            raise EncodeError(
                f"{what} frame of {size + 8} bytes does not fit in frame_max {frame_max}",
                "frame_max",
                frame_max,
            )


def encode_message(
    channel: int,
    method: Method,
    properties: Properties | None,
    body: bytes | bytearray | memoryview,
    frame_max: int,
) -> bytes:
    """Method frame, content header frame and body frames of at most ``frame_max - 8``
    bytes each (none for an empty body), as one ``bytes``. ``frame_max`` 0: no limit."""
    return b"".join(encode_message_parts(channel, method, properties, body, frame_max))
