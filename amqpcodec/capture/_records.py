"""What a capture reader yields: frame, message and notice records, the connections
they belong to, and the statistics of a read."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from .._content import Message
from .._errors import AMQPError
from .._frames import Frame, ProtocolHeader

__all__ = [
    "CaptureError",
    "CaptureStats",
    "ConnectionInfo",
    "Direction",
    "Endpoint",
    "FrameRecord",
    "MessageRecord",
    "Notice",
    "NoticeKind",
    "Record",
]


class CaptureError(AMQPError):
    """The input cannot be read: not a capture, an unsupported link type, a damaged
    file, or dpkt (the ``capture`` extra) is not installed."""


class Direction(enum.Enum):
    """Which way a frame travelled."""

    CLIENT_TO_SERVER = "c2s"
    SERVER_TO_CLIENT = "s2c"
    UNKNOWN = "unknown"
    """A raw stream or hex dump whose content did not say which side sent it."""

    # Members are singletons compared by identity: hashing by identity is consistent
    # with that, and is a C slot instead of Enum's Python-level hash of the name (the
    # capture tools key their per-record counters by direction).
    __hash__: Callable[[object], int] = object.__hash__  # type: ignore[assignment]

    @property
    def arrow(self) -> str:
        return _ARROWS[self]

    @property
    def ascii_arrow(self) -> str:
        return _ASCII_ARROWS[self]

    def reverse(self) -> Direction:
        return _REVERSE[self]


_ARROWS: Final = {
    Direction.CLIENT_TO_SERVER: "C→S",
    Direction.SERVER_TO_CLIENT: "S→C",
    Direction.UNKNOWN: " ? ",
}
_ASCII_ARROWS: Final = {
    Direction.CLIENT_TO_SERVER: "C->S",
    Direction.SERVER_TO_CLIENT: "S->C",
    Direction.UNKNOWN: " ?? ",
}
_REVERSE: Final = {
    Direction.CLIENT_TO_SERVER: Direction.SERVER_TO_CLIENT,
    Direction.SERVER_TO_CLIENT: Direction.CLIENT_TO_SERVER,
    Direction.UNKNOWN: Direction.UNKNOWN,
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a TCP connection."""

    address: str
    port: int

    def __str__(self) -> str:
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A TCP connection found in the input. ``index`` counts AMQP connections in order
    of first appearance from 0 (as tshark's ``tcp.stream`` does when the capture holds
    only AMQP). Endpoints are None when the input does not say (raw bytes, hex)."""

    index: int
    client: Endpoint | None = None
    server: Endpoint | None = None

    def __str__(self) -> str:
        if self.client is None or self.server is None:
            return f"#{self.index}"
        return f"#{self.index} {self.client} -> {self.server}"


@dataclass(slots=True)
class FrameRecord:
    """A frame, where it was found and when it was complete.

    ``time`` is the capture timestamp (seconds since the epoch) of the packet that
    completed the frame, None for inputs without time; ``packet`` is that packet's
    number in the capture (from 1, as Wireshark numbers frames), None for inputs
    without packets. ``offset`` is where the frame starts in its direction's byte
    stream, ``size`` its length on the wire. ``truncated``: the capture holds only the
    start of the frame (a packet cut by the snapshot length), and the frame is what
    those bytes hold (a method whose arguments fit; a body frame with the bytes there).
    """

    time: float | None
    connection: ConnectionInfo
    direction: Direction
    frame: Frame
    offset: int
    size: int
    packet: int | None = None
    truncated: bool = False

    @property
    def channel(self) -> int | None:
        """The frame's channel; 0 for a heartbeat, None for a protocol header."""
        if isinstance(self.frame, ProtocolHeader):
            return None
        return getattr(self.frame, "channel", 0)


@dataclass(slots=True)
class MessageRecord:
    """A message (method, content header, body) assembled from its frames.

    ``time`` and ``packet`` are those of its last frame, ``method_time`` and
    ``method_packet`` those of its method frame, ``offset`` is where its method frame
    starts. ``missing`` is how many bytes of the body the capture lacks: 0 for a whole
    message; more for a *partial* one that bytes missing from the capture cut through,
    whose ``message.body`` holds the bytes that are there; None when even the content
    header was lost (then ``message.properties`` are empty, not known).
    """

    time: float | None
    connection: ConnectionInfo
    direction: Direction
    message: Message
    offset: int
    packet: int | None = None
    method_time: float | None = None
    method_packet: int | None = None
    missing: int | None = 0

    @property
    def partial(self) -> bool:
        """Whether bytes of the message are missing from the capture."""
        return self.missing != 0

    @property
    def channel(self) -> int:
        return self.message.channel


class NoticeKind(enum.Enum):
    """What a :class:`Notice` is about."""

    __hash__: Callable[[object], int] = object.__hash__  # type: ignore[assignment]  # as Direction's

    GAP = "gap"
    """Bytes of the stream are missing from the capture (``size`` of them)."""
    SKIPPED = "skipped"
    """Bytes were passed over to find the next frame (after a mid-stream start, a gap or
    an error), or were not decoded (after an error)."""
    TRUNCATED = "truncated"
    """The stream ended inside a frame."""
    ERROR = "error"
    """Malformed data or a broken content sequence; ``error`` holds the exception."""
    TCP = "tcp"
    """A SYN, FIN or RST segment (``message`` says which, and who sent it)."""
    EVICTED = "evicted"
    """The reader's memory budget was exceeded: the partial state of a connection
    (``size`` bytes held for it) was dropped; what it held is not decoded."""


@dataclass(slots=True)
class Notice:
    """Something about the stream rather than a frame in it: a gap, a resync, an error."""

    time: float | None
    connection: ConnectionInfo
    direction: Direction
    kind: NoticeKind
    offset: int
    size: int
    message: str
    error: AMQPError | None = None
    packet: int | None = None


Record: TypeAlias = FrameRecord | MessageRecord | Notice


@dataclass(slots=True)
class CaptureStats:
    """What the reader saw, filled in while it reads."""

    format: str = ""
    """``pcap``, ``pcapng``, ``hex`` or ``raw``."""
    compression: str | None = None
    """``gzip``, ``bzip2`` or ``xz`` when the input was compressed."""
    packets: int = 0
    """Packets in the capture (0 for raw and hex input)."""
    ignored_packets: int = 0
    """Packets that are not TCP of an AMQP connection (other traffic, IP fragments,
    unsupported link types, undecodable headers)."""
    connections: list[ConnectionInfo] = field(default_factory=list)
    """The AMQP connections found, in order of first appearance: the first
    ``max_listed_connections`` of them (the reader's setting)."""
    connection_count: int = 0
    """AMQP connections found, listed or not."""
    first_time: float | None = None
    """Timestamp of the first packet of the capture."""
    bytes_read: int = 0
    size: int | None = None
    """Size of the input file when known."""
    warnings: list[str] = field(default_factory=list)
    """Problems with the input that did not stop reading (a truncated capture file)."""
    incomplete: list[str] = field(default_factory=list)
    """Why part of the capture could not be read (the file is cut short, a packet record
    is damaged, packets of an unsupported link type were skipped); also in ``warnings``.
    What could be read was."""
