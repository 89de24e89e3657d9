"""One direction's bytes in, frames and notices out, hunting for frames where it
cannot know where one starts.

A frame stream decodes frames strictly with :func:`amqpcodec.decode_frame`. One that
cannot know where a frame starts (the capture began after the connection's SYN, or
bytes are missing) *hunts*: it resynchronises on the next position where a plausible
frame header is followed by the frame-end octet at its declared end and the frame
decodes, and reports how many bytes it skipped. Only this capture-reading mode hunts;
once in step, decoding is as strict as everywhere else, and a malformed frame ends that
direction (or, with ``resync_on_error``, is reported and hunted past).

The work of a hunt is bounded whatever the bytes. Finding candidates is one regular
expression scan; checking a candidate's header and frame-end octet costs the same for
any size; a body frame is plausible on those checks alone (any payload is valid); only
method and content-header candidates are decoded to be sure, which costs their size
(a heartbeat's decoding costs the same for any size).
That decoding is paid from a credit: each byte fed to the stream adds ``HUNT_CREDIT``
(4) bytes, up to ``4 * limit``, and each decoded candidate costs its payload size. A
candidate the credit cannot pay for yet waits for more input (which the bytes of the
frame itself always pay for, so a real frame is never passed over for want of credit,
unless the stream ends first). The bytes decoded while hunting are therefore at most
four times the input, and a candidate is decoded at most once.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from typing import Any, Final

from .. import spec
from .._errors import AMQPError, DecodeError
from .._frames import BodyFrame, _decode_frames, decode_frame
from ._limits import DEFAULT_MAX_FRAME_SIZE
from ._records import NoticeKind

__all__ = [
    "AFTER_GAP",
    "AMQP",
    "INPUT_START",
    "MID_CONNECTION",
    "Cut",
    "FrameStream",
    "Note",
    "looks_like_frames",
]

AMQP: Final = b"AMQP"
FRAME_END: Final = bytes([spec.FRAME_END])
_FRAME_HEADER = struct.Struct(">BHI")
_FRAME_TYPES: Final = frozenset(
    {spec.FRAME_METHOD, spec.FRAME_HEADER, spec.FRAME_BODY, spec.FRAME_HEARTBEAT}
)
# Where a hunt may find a frame: a frame type octet or the "A" of a protocol header.
_CANDIDATE = re.compile(rb"[\x01\x02\x03\x08A]")

# Why a stream hunts, as its notices say it.
INPUT_START: Final = "the input may start inside a frame"
MID_CONNECTION: Final = "the capture starts mid-connection"
AFTER_GAP: Final = "after bytes missing from the capture"
_AFTER_ERROR: Final = "after a malformed frame"

HUNT_CREDIT: Final = 4  # bytes of candidate decoding paid for by each byte of input


class _State(enum.Enum):
    SYNC = 1
    HUNT = 2
    FAILED = 3


class FrameStream:
    """Bytes of one direction in, frames and notices out (module docstring)."""

    __slots__ = (
        "at_start",
        "base",
        "buf",
        "credit",
        "drop",
        "hunt_work",
        "ignored",
        "limit",
        "reason",
        "resync_on_error",
        "skipped",
        "state",
    )

    def __init__(self, limit: int, hunting: bool, reason: str, resync_on_error: bool) -> None:
        self.buf = bytearray()
        self.base = 0  # stream offset of buf[0]
        self.credit = 0  # bytes of candidate decoding the hunt may still spend
        self.drop = 0  # bytes still to pass over: the rest of a frame cut by a gap
        self.hunt_work = 0  # bytes of candidates decoded while hunting, in all
        self.limit = limit
        self.state = _State.HUNT if hunting else _State.SYNC
        self.reason = reason  # why we are hunting, for the notice
        self.at_start = True  # a protocol header may come next
        self.skipped = 0  # bytes passed over in the current hunt
        self.ignored = 0  # bytes not decoded after an error
        self.resync_on_error = resync_on_error

    def feed(self, data: bytes, out: list[Any]) -> None:
        if self.state is _State.FAILED:
            self.ignored += len(data)
            return
        if self.drop:
            passed = min(self.drop, len(data))
            self.drop -= passed
            self.base += passed
            data = data[passed:]
        cap = HUNT_CREDIT * (self.limit or DEFAULT_MAX_FRAME_SIZE)
        self.credit = min(self.credit + HUNT_CREDIT * len(data), cap)
        if not self.buf and self.state is _State.SYNC and not self.at_start:
            # The whole frames at the start of the data decoded where they are; only
            # what follows them is buffered.
            used = self._decode_run(data, out)
            if used:
                self.base += used
                if used == len(data):
                    return
                data = data[used:]
        self.buf += data
        while (self.state is _State.SYNC or self._hunt(out, False)) and self._decode(out):
            pass  # _decode found a malformed frame and wants to hunt past it

    def gap(self, size: int, out: list[Any]) -> None:
        if self.state is _State.FAILED:
            return
        frame_end = None
        if self.state is _State.SYNC and len(self.buf) >= 7 and self.buf[0] != 0x41:
            frame_end = self._cut(out)
        start = self.base + len(self.buf)
        out.append(Note(NoticeKind.GAP, start, size, f"{size} bytes missing from the capture"))
        self.base = start + size
        if frame_end is not None and frame_end >= self.base:
            # The frame cut short ends after the gap: the next one starts where it ends,
            # so the stream stays in step (a packet cut by the snapshot length).
            self.buf.clear()
            self.drop = frame_end - self.base
            return
        self.skipped += len(self.buf)
        self.buf.clear()
        self.drop = 0
        self.reason = AFTER_GAP
        self.state = _State.HUNT

    def _cut(self, out: list[Any]) -> int:
        """The bytes after the start of a frame are missing (a packet cut by the capture's
        snapshot length, or lost): give what the captured bytes hold. A method or
        content header whose payload is all there is decoded (only the frame-end octet
        is missing); a body frame gives the bytes there; otherwise a notice names the
        method whose arguments do not fit."""
        buf = self.buf
        frame_type, channel, payload_size = _FRAME_HEADER.unpack_from(buf)
        have = len(buf) - 7
        end: int = 7 + payload_size
        frame: Any = None
        if frame_type == spec.FRAME_BODY:
            frame = BodyFrame(channel, bytes(buf[7 : min(end, len(buf))]))
        elif frame_type in (spec.FRAME_METHOD, spec.FRAME_HEADER) and have >= payload_size:
            try:
                result = decode_frame(bytes(buf[:end]) + FRAME_END)
            except DecodeError:
                result = None
            frame = result[0] if result is not None else None
        if frame is not None:
            out.append(Cut(frame, self.base, min(end + 1, len(buf))))
            return self.base + end + 1
        what = "frame"
        if frame_type == spec.FRAME_METHOD and have >= 4:
            ids = struct.unpack_from(">HH", buf, 7)
            method = spec.METHODS.get(ids)
            what = f"{method.NAME} frame" if method is not None else f"method {ids} frame"
        elif frame_type == spec.FRAME_HEADER:
            what = "content header"
        text = (
            f"{what} on channel {channel} cut short: {min(have, payload_size)} of its"
            f" {payload_size} payload bytes are in the capture"
        )
        out.append(Note(NoticeKind.TRUNCATED, self.base, len(buf), text))
        return self.base + end + 1

    def finish(self, out: list[Any]) -> None:
        # A hunt may be waiting for the end of a plausible frame that will never come.
        while self.state is _State.HUNT and self.buf and self._hunt(out, True):
            if not self._decode(out):
                break
        buffered = len(self.buf)
        if self.state is _State.FAILED:
            if self.ignored:
                out.append(
                    Note(
                        NoticeKind.SKIPPED,
                        self.base,
                        self.ignored,
                        f"{self.ignored} bytes after the error were not decoded",
                    )
                )
        elif self.state is _State.HUNT:
            skipped = self.skipped + buffered
            if skipped:
                out.append(
                    Note(
                        NoticeKind.SKIPPED,
                        self.base + buffered,
                        skipped,
                        f"{skipped} bytes ({self.reason}) to the end of the stream held no frame",
                    )
                )
        elif buffered:
            out.append(
                Note(
                    NoticeKind.TRUNCATED,
                    self.base,
                    buffered,
                    f"the stream ends inside a frame ({buffered} bytes of it)",
                )
            )
        self.buf.clear()

    def _hunt(self, out: list[Any], final: bool) -> bool:
        """Look for the next plausible frame; True once in step with the stream.

        A candidate whose declared end is not in yet is waited for, unless ``final``
        (the stream is over)."""
        buf = self.buf
        size = len(buf)
        limit = self.limit
        pos = 0
        while True:
            match = _CANDIDATE.search(buf, pos)
            if match is None:
                self._drop(size)
                return False
            pos = match.start()
            if buf[pos] == 0x41:  # "A": a protocol header?
                start = buf[pos : pos + 4]
                if start == AMQP[: len(start)]:
                    if size - pos >= 8:
                        break
                    if not final:
                        self._drop(pos)  # wait for the rest of it
                        return False
                pos += 1
                continue
            if size - pos < 7:
                if final:
                    pos += 1
                    continue
                self._drop(pos)
                return False
            payload_size = _FRAME_HEADER.unpack_from(buf, pos)[2]
            if limit and payload_size + 8 > limit:
                pos += 1
                continue
            end = pos + 7 + payload_size
            if end >= size:
                if final:
                    pos += 1
                    continue
                self._drop(pos)  # plausible so far: wait for its end
                return False
            if buf[end] == spec.FRAME_END:
                if buf[pos] == spec.FRAME_BODY:
                    break  # any payload is a valid body
                if buf[pos] == spec.FRAME_HEARTBEAT:  # decoding it costs the same for any size
                    if self._decodes(pos):
                        break
                elif payload_size <= self.credit:
                    self.credit -= payload_size
                    self.hunt_work += payload_size
                    if self._decodes(pos):
                        break
                elif not final:
                    self._drop(pos)  # wait until the input pays for decoding it
                    return False
            pos += 1
        self._drop(pos)
        skipped, self.skipped = self.skipped, 0
        if skipped or self.reason != INPUT_START:
            where = self.base
            text = f"skipped {skipped} bytes to the next frame, at offset {where} ({self.reason})"
            if not skipped:
                text = f"first frame at offset {where} ({self.reason})"
            out.append(Note(NoticeKind.SKIPPED, where, skipped, text))
        self.state = _State.SYNC
        self.at_start = True
        return True

    def _decodes(self, pos: int) -> bool:
        try:
            decode_frame(self.buf, pos, max_frame_size=self.limit)
        except DecodeError:
            return False
        return True

    def _drop(self, count: int) -> None:
        if count:
            del self.buf[:count]
            self.base += count
            self.skipped += count

    def _decode(self, out: list[Any]) -> bool:
        """Decode the whole frames in the buffer; True when a malformed one was skipped
        and the stream is hunting again (``resync_on_error``)."""
        buf = self.buf
        size = len(buf)
        base = self.base
        limit = self.limit
        off = 0
        if not self.at_start and size:
            off = self._decode_run(buf, out)
            if off:
                del buf[:off]
                self.base = base = base + off
                size = len(buf)
                off = 0
        try:
            while size - off >= 7 or (self.at_start and off < size):
                if buf[off] == 0x41 and not self.at_start:
                    raise DecodeError(
                        "a protocol header in the middle of the stream", spec.FRAME_ERROR, off
                    )
                result = decode_frame(buf, off, max_frame_size=limit)
                if result is None:
                    break
                frame, end = result
                out.append((frame, base + off, end - off))
                off = end
                self.at_start = False
        except DecodeError as exc:
            exc.offset += base
            text = f"malformed frame at offset {base + off}: {exc}"
            out.append(Note(NoticeKind.ERROR, base + off, 0, text, exc))
            if self.resync_on_error:
                del buf[: off + 1]
                self.base = base + off + 1
                self.skipped = 1
                self.state = _State.HUNT
                self.reason = _AFTER_ERROR
                return True
            self.state = _State.FAILED
            self.ignored = size - off
            self.base = base + off
            buf.clear()
            return False
        if off:
            del buf[:off]
            self.base = base + off
        return False

    def _decode_run(self, buf: bytes | bytearray, out: list[Any]) -> int:
        """The fast part of decoding: the run of whole frames at the start of ``buf``
        (found by their headers), decoded in one call of the frame decoder's loop and
        added to ``out`` as if at ``self.base``. Returns where it stopped: at the end of
        the run, or at a frame that does not decode, which ``_decode`` then decodes
        alone (and so raises what it always raised)."""
        size = len(buf)
        if size < 7:
            return 0
        limit = self.limit
        unpack = _FRAME_HEADER.unpack_from
        frame_type, _, payload_size = unpack(buf, 0)
        pos = payload_size + 8
        if pos > size or frame_type == 0x41 or (limit and pos > limit):
            return 0  # incomplete, or for _decode to report
        ends = [pos]
        while size - pos >= 7:
            frame_type, _, payload_size = unpack(buf, pos)
            end = pos + payload_size + 8
            if end > size or frame_type == 0x41 or (limit and payload_size + 8 > limit):
                break
            ends.append(end)
            pos = end
        frames: list[Any] = []
        try:
            if buf.__class__ is bytes:
                _decode_frames(buf, 0, pos, limit, frames, False)
            else:
                with memoryview(buf) as view:
                    _decode_frames(view, 0, pos, limit, frames, False)
        except DecodeError:
            del ends[len(frames) :]  # frames holds those before the malformed one
        base = self.base
        off = 0
        append = out.append
        for frame, end in zip(frames, ends, strict=True):
            append((frame, base + off, end - off))
            off = end
        return off


@dataclass(slots=True)
class Cut:
    """A frame whose end is missing from the capture, as far as its bytes go."""

    frame: Any
    offset: int
    size: int


@dataclass(slots=True)
class Note:
    kind: NoticeKind
    offset: int
    size: int
    message: str
    error: AMQPError | None = None


def looks_like_frames(head: bytes, limit: int) -> bool:
    if head[:4] == AMQP:
        return True
    if len(head) < 7 or head[0] not in _FRAME_TYPES:
        return False
    size: int = _FRAME_HEADER.unpack_from(head)[2]
    if limit and size + 8 > limit:
        return False
    return 7 + size >= len(head) or head[7 + size] == spec.FRAME_END
