"""One direction of a connection: its frame stream, content assembly and records; and,
for raw streams and hex dumps, finding out which direction that was."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .. import spec
from .._frames import MethodFrame, ProtocolHeader
from ._messages import MessageAssembler
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
from ._stream import AFTER_GAP, INPUT_START, MID_CONNECTION, Cut, FrameStream

if TYPE_CHECKING:
    from ._reader import CaptureReader
    from ._reassembly import Chunk
    from ._tcp import Conn

__all__ = ["Clock", "DirectionResolver", "Half"]


class Clock:
    """Where the reader is: the time and number of the packet being read (both None
    for inputs without packets; after the last packet, those of the last)."""

    __slots__ = ("packet", "time")

    def __init__(self) -> None:
        self.time: float | None = None
        self.packet: int | None = None


class Half:
    """One direction of a connection: reassembly, frame stream, content assembly.

    Records take the time and number of the packet being read when they are made, so
    they come out in capture order whatever order the segments arrived in."""

    __slots__ = (
        "_limit",
        "clock",
        "conn",
        "direction",
        "info",
        "messages",
        "reader",
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
        self.clock = reader.clock
        self.info = info
        self.direction = direction
        self.conn = conn
        self.tcp = Reassembler(reader.reorder_limit)
        self.stream: FrameStream | None = None
        self._limit = reader.max_frame_size
        self.messages = MessageAssembler(self) if reader.messages else None

    def set_limit(self, value: int) -> None:
        self._limit = value
        if self.stream is not None:
            self.stream.limit = value

    def _stream(self, hunting: bool, reason: str) -> FrameStream:
        if self.stream is None:
            self.stream = FrameStream(self._limit, hunting, reason, self.reader.resync_on_error)
            if hunting and self.messages is not None:
                self.messages.lost()
        return self.stream

    def chunks(self, chunks: list[Chunk], records: list[Record]) -> None:
        for data, size, _ in chunks:
            if data is None:
                records += self.gap(size)
            else:
                records += self.data(data)

    def data(self, data: bytes) -> list[Record]:
        if self.conn is None:
            stream = self._stream(True, INPUT_START)
        else:
            stream = self._stream(not self.tcp.syn_seen, MID_CONNECTION)
        out: list[Any] = []
        stream.feed(data, out)
        return self._records(out)

    def gap(self, size: int) -> list[Record]:
        stream = self._stream(True, AFTER_GAP)
        out: list[Any] = []
        stream.gap(size, out)
        return self._records(out)

    def finish(self) -> list[Record]:
        if self.stream is None:
            return []
        out: list[Any] = []
        self.stream.finish(out)
        records = self._records(out)
        if self.messages is not None:
            records += self.messages.finish()
        return records

    @property
    def held(self) -> int:
        """What this direction holds: its reorder buffer, frame buffer, message bodies."""
        held = self.tcp.pending
        if self.stream is not None:
            held += len(self.stream.buf)
        if self.messages is not None:
            held += self.messages.held
        return held

    def drop(self, text: str, size: int | None = None) -> list[Record]:
        """The memory budget is spent: give out the messages in progress as partial and
        drop them. ``size``: what is dropped, when it is more than those (the whole
        connection); a notice says so unless nothing is."""
        messages = self.messages
        if size is None:
            size = messages.held if messages is not None else 0
            if not size:
                return []
        offset = self.stream.base if self.stream is not None else 0
        records: list[Record] = [self.notice(NoticeKind.EVICTED, offset, size, text)]
        if messages is not None:
            records += messages.finish()
            messages.lost()
        return records

    def notice(self, kind: NoticeKind, offset: int, size: int, text: str) -> Notice:
        clock = self.clock
        return Notice(
            clock.time, self.info, self.direction, kind, offset, size, text, None, clock.packet
        )

    def _records(self, items: list[Any]) -> list[Record]:
        info, direction = self.info, self.direction
        ts, packet = self.clock.time, self.clock.packet
        records: list[Record] = []
        append = records.append
        messages = self.messages
        for item in items:
            if item.__class__ is tuple:
                frame, offset, size = item
                conn = self.conn
                tune_ok = frame.__class__ is MethodFrame and frame.method.__class__ is _TUNE_OK
                if tune_ok and conn is not None:
                    conn.frame_max(frame.method.frame_max, self.reader.max_frame_size)
                if messages is None:
                    append(FrameRecord(ts, info, direction, frame, offset, size, packet))
                else:
                    messages.feed(frame, offset, size, records)
            elif item.__class__ is Cut:
                append(
                    FrameRecord(
                        ts, info, direction, item.frame, item.offset, item.size, packet, True
                    )
                )
            else:
                append(
                    Notice(
                        ts,
                        info,
                        direction,
                        item.kind,
                        item.offset,
                        item.size,
                        item.message,
                        item.error,
                        packet,
                    )
                )
                if messages is not None and item.kind in _LOSSES:
                    messages.lost()
        if messages is not None and messages.held > self.reader.memory_limit:
            limit = self.reader.memory_limit
            text = (
                f"messages in progress hold {messages.held} bytes, more than memory_limit"
                f" ({limit}): they are given out as partial"
            )
            records += self.drop(text)
        return records


_TUNE_OK: Final = spec.Connection.TuneOk
_LOSSES: Final = (NoticeKind.GAP, NoticeKind.ERROR)


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
        self.reader.found(self.info)
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
