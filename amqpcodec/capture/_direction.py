"""One direction of a connection: its frame stream, content assembly and records; and,
for raw streams and hex dumps, finding out which direction that was."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .. import spec
from .._content import ContentAssembler, Message
from .._errors import RemoteProtocolError
from .._frames import BodyFrame, Frame, HeaderFrame, MethodFrame, ProtocolHeader
from ._reassembly import Reassembler
from ._records import (
    ConnectionInfo,
    Direction,
    Endpoint,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
)
from ._stream import AFTER_GAP, INPUT_START, MID_CONNECTION, FrameStream, Note

if TYPE_CHECKING:
    from ._reader import CaptureReader
    from ._reassembly import Chunk
    from ._tcp import Conn

__all__ = ["DirectionResolver", "Half"]


class Half:
    """One direction of a connection: reassembly, frame stream, content assembly."""

    __slots__ = (
        "_limit",
        "assembler",
        "clean",
        "conn",
        "direction",
        "info",
        "reader",
        "starts",
        "stream",
        "tcp",
    )

    def __init__(
        self,
        reader: CaptureReader,
        info: ConnectionInfo,
        direction: Direction,
        conn: Conn | None = None,
    ) -> None:
        self.reader = reader
        self.info = info
        self.direction = direction
        self.conn = conn
        self.tcp = Reassembler(reader.reorder_limit)
        self.stream: FrameStream | None = None
        self._limit = reader.max_frame_size
        self.assembler = ContentAssembler() if reader.messages else None
        # Channels whose content sequence can be trusted: all of them on a stream read
        # from its start (None); after a resync, those where a method was seen since.
        self.clean: set[int] | None = None
        self.starts: dict[int, int] = {}  # channel -> offset of its content method

    def set_limit(self, value: int) -> None:
        self._limit = value
        if self.stream is not None:
            self.stream.limit = value

    def _stream(self, hunting: bool, reason: str) -> FrameStream:
        if self.stream is None:
            self.stream = FrameStream(self._limit, hunting, reason, self.reader.resync_on_error)
            if hunting:
                self._lost()
        return self.stream

    def chunks(self, chunks: list[Chunk], records: list[Record]) -> None:
        for data, size, ts in chunks:
            if data is None:
                records += self.gap(size, ts)
            else:
                records += self.data(data, ts)

    def data(self, data: bytes, ts: float | None) -> list[Record]:
        if self.conn is None:
            stream = self._stream(True, INPUT_START)
        else:
            stream = self._stream(not self.tcp.syn_seen, MID_CONNECTION)
        out: list[Any] = []
        stream.feed(data, out)
        return self._records(out, ts)

    def gap(self, size: int, ts: float | None) -> list[Record]:
        stream = self._stream(True, AFTER_GAP)
        out: list[Any] = []
        stream.gap(size, out)
        return self._records(out, ts)

    def finish(self, ts: float | None) -> list[Record]:
        if self.stream is None:
            return []
        out: list[Any] = []
        self.stream.finish(out)
        return self._records(out, ts)

    def _lost(self) -> None:
        """Bytes were lost: partial messages are gone, orphan content is expected."""
        if self.assembler is not None:
            self.assembler = ContentAssembler()
            self.clean = set()
            self.starts.clear()

    def _records(self, items: list[Any], ts: float | None) -> list[Record]:
        info, direction = self.info, self.direction
        records: list[Record] = []
        for item in items:
            if isinstance(item, Note):
                records.append(
                    Notice(
                        ts,
                        info,
                        direction,
                        item.kind,
                        item.offset,
                        item.size,
                        item.message,
                        item.error,
                    )
                )
                if item.kind is NoticeKind.GAP or item.kind is NoticeKind.ERROR:
                    self._lost()
                continue
            frame, offset, size = item
            tune_ok = type(frame) is MethodFrame and type(frame.method) is spec.Connection.TuneOk
            if tune_ok and self.conn is not None:
                self.conn.frame_max(frame.method.frame_max, self.reader.max_frame_size)
            if self.assembler is None:
                records.append(FrameRecord(ts, info, direction, frame, offset, size))
            else:
                self._assemble(frame, offset, size, ts, records)
        return records

    def _assemble(
        self, frame: Frame, offset: int, size: int, ts: float | None, records: list[Record]
    ) -> None:
        assembler = self.assembler
        assert assembler is not None
        channel = getattr(frame, "channel", 0)
        if self.clean is not None and isinstance(frame, MethodFrame):
            self.clean.add(channel)
        interrupts = isinstance(frame, MethodFrame) and assembler.in_progress(channel)
        result: Frame | Message | None
        try:
            result = assembler.feed(frame)
        except RemoteProtocolError as exc:
            # Content frames whose start was lost (mid-stream start, gap) are expected
            # orphans; anything else breaks the content rules [PDF §4.2.6].
            orphan = isinstance(frame, (HeaderFrame, BodyFrame))
            if not (orphan and self.clean is not None and channel not in self.clean):
                self._content_error(exc, offset, ts, records)
            assembler.discard(channel)
            self.starts.pop(channel, None)
            result = frame
            if interrupts:
                # The method that cut the content short counts on its own. With nothing
                # in progress on its channel (never channel 0), feeding it cannot fail.
                result = assembler.feed(frame)
        if result is None:
            if isinstance(frame, MethodFrame):
                self.starts[channel] = offset
        elif isinstance(result, Message):
            start = self.starts.pop(channel, offset)
            records.append(MessageRecord(ts, self.info, self.direction, result, start))
        else:
            records.append(FrameRecord(ts, self.info, self.direction, result, offset, size))

    def _content_error(
        self, exc: RemoteProtocolError, offset: int, ts: float | None, records: list[Record]
    ) -> None:
        text = f"content out of order at offset {offset}: {exc}"
        records.append(
            Notice(ts, self.info, self.direction, NoticeKind.ERROR, offset, 0, text, exc)
        )


# ---------------------------------------------------------------------------------------
# Raw streams and hex dumps: which way did the bytes go?


class DirectionResolver:
    """Holds records back until the content says which side sent which stream.

    A stream is client-to-server when it starts with the protocol header or its first
    one-sided method is one only the server receives (``CHASSIS``). A few records at
    most are held; without an answer by then, the first side of a hex dump is taken as
    the client (Wireshark lists the connection's first sender first) and a lone raw
    stream stays UNKNOWN. While undecided, records of side 0 are marked
    CLIENT_TO_SERVER and those of side 1 SERVER_TO_CLIENT; deciding relabels them.
    """

    _HOLD_RECORDS: Final = 64
    _HOLD_BYTES: Final = 4 * 1024 * 1024

    def __init__(self, reader: CaptureReader, nodes: dict[int, Endpoint] | None = None) -> None:
        self.reader = reader
        self.nodes = nodes if nodes is not None else {}
        self.info = ConnectionInfo(0)
        self.halves: dict[int, Half] = {}
        self.held: list[Record] = []
        self.held_bytes = 0
        self.first: Direction | None = None  # the direction of side 0, once known
        if reader.direction is not None:
            self._decide(reader.direction)

    def half(self, side: int) -> Half:
        direction = _PROVISIONAL[side] if self.first is None else self._of(side)
        half = self.halves[side] = Half(self.reader, self.info, direction)
        return half

    def _of(self, side: int) -> Direction:
        assert self.first is not None
        return self.first if side == 0 else self.first.reverse()

    def _decide(self, first: Direction) -> None:
        self.first = first
        if first is not Direction.UNKNOWN and len(self.nodes) == 2:
            client = 0 if first is Direction.CLIENT_TO_SERVER else 1
            self.info = ConnectionInfo(0, self.nodes[client], self.nodes[1 - client])
        self.reader.stats.connections.append(self.info)
        for side, half in self.halves.items():
            half.direction = self._of(side)
            half.info = self.info
        for record in self.held:
            record.direction = self._of(0 if record.direction is _PROVISIONAL[0] else 1)
            record.connection = self.info

    def resolve(self, records: list[Record], final: bool = False) -> list[Record]:
        if self.first is not None:
            return records
        self.held += records
        for record in records:
            self.held_bytes += record.size if isinstance(record, FrameRecord) else 0
            hint = _direction_hint(record)
            if hint is not None:
                side = 0 if record.direction is _PROVISIONAL[0] else 1
                self._decide(hint if side == 0 else hint.reverse())
                break
        else:
            full = len(self.held) >= self._HOLD_RECORDS or self.held_bytes >= self._HOLD_BYTES
            if not (final or full):
                return []
            single = len(self.halves) < 2 and len(self.nodes) < 2
            self._decide(Direction.UNKNOWN if single else Direction.CLIENT_TO_SERVER)
        held, self.held = self.held, []
        return held


_PROVISIONAL: Final = {0: Direction.CLIENT_TO_SERVER, 1: Direction.SERVER_TO_CLIENT}


def _direction_hint(record: Record) -> Direction | None:
    if isinstance(record, MessageRecord):
        method = record.message.method
    elif isinstance(record, FrameRecord):
        frame = record.frame
        if isinstance(frame, ProtocolHeader):
            return Direction.CLIENT_TO_SERVER
        if not isinstance(frame, MethodFrame):
            return None
        method = frame.method
    else:
        return None
    receivers = method.CHASSIS
    if "client" not in receivers:
        return Direction.CLIENT_TO_SERVER
    if "server" not in receivers:
        return Direction.SERVER_TO_CLIENT
    return None
