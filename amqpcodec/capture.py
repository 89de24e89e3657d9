"""Reading AMQP 0-9-1 traffic out of packet captures, raw byte streams and hex dumps.

How this works: a capture is read packet by packet (dpkt parses the pcap and pcapng
containers and the Ethernet / Linux cooked / loopback / IP / TCP headers; nothing is
read whole). Packets are grouped into TCP connections by their address pair; a
connection is AMQP when one of its ports is an AMQP port or when its first payload
is the ``AMQP`` protocol header. Each direction of a connection has a reassembler,
which puts segments in sequence order, drops what was already delivered
(retransmissions, overlaps: the first copy wins) and reports a *gap* when bytes are
missing from the capture (the peer acknowledged them, too much arrived beyond them,
or the capture ended). The in-order bytes go to a frame stream, which decodes frames
strictly with :func:`amqpcodec.decode_frame`.

A frame stream that cannot know where a frame starts (the capture began after the
connection's SYN, or bytes are missing) *hunts*: it resynchronises on the next position
where a plausible frame header is followed by the frame-end octet at its declared end
and the frame decodes, and reports how many bytes it skipped. Only this capture-reading
mode hunts; once in step, decoding is as strict as everywhere else, and a malformed
frame ends that direction (or, with ``resync_on_error``, is reported and hunted past).

Frame size limit: before a connection's ``connection.tune-ok`` is seen (and for a
capture that starts later) frames may be up to ``max_frame_size`` (16 MiB by default,
far above RabbitMQ's 128 KiB default); from tune-ok on, the negotiated ``frame_max``
is the limit (0 there means the default bound), so an oversized frame is reported as
the protocol error it is. Memory is bounded by the largest frame (or, with
``messages=True``, the largest message) plus one packet, never by the file.
"""

from __future__ import annotations

import enum
import heapq
import io
import os
import re
import socket
import stat
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Final, TypeAlias

from . import spec
from ._content import ContentAssembler, Message
from ._errors import AMQPError, DecodeError, RemoteProtocolError
from ._frames import BodyFrame, Frame, HeaderFrame, MethodFrame, ProtocolHeader, decode_frame

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_PORTS",
    "CaptureError",
    "CaptureReader",
    "CaptureStats",
    "ConnectionInfo",
    "Direction",
    "Endpoint",
    "FrameRecord",
    "MessageRecord",
    "Notice",
    "NoticeKind",
    "Record",
    "read_capture",
]

DEFAULT_PORTS: Final = (5672,)
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
"""The frame size limit before a connection's tune-ok (or when none was captured)."""
DEFAULT_REORDER_LIMIT: Final = 8 * 1024 * 1024
"""Out-of-order bytes held per direction before the missing bytes are declared a gap."""

_MAX_RECORD: Final = 64 * 1024 * 1024  # no sane pcap/pcapng record is larger
_CHUNK: Final = 1024 * 1024  # read size for raw byte streams
_SNIFF: Final = 4096
_SEQ_MOD: Final = 1 << 32
_SEQ_MASK: Final = _SEQ_MOD - 1
_HALF_SEQ: Final = 1 << 31
_AMQP = b"AMQP"

# tcpdump.org link-layer header types (the values stored in files)
_LINK_NULL: Final = 0
_LINK_ETHERNET: Final = 1
_LINK_RAW: Final = 101
_LINK_LOOP: Final = 108
_LINK_LINUX_SLL: Final = 113
_LINK_IPV4: Final = 228
_LINK_IPV6: Final = 229
_LINK_LINUX_SLL2: Final = 276
_LINK_RAW_OLD: Final = (12, 14)  # DLT_RAW as some platforms wrote it
_LINK_NAMES: Final = {
    _LINK_NULL: "BSD loopback",
    _LINK_ETHERNET: "Ethernet",
    _LINK_RAW: "raw IP",
    _LINK_LOOP: "OpenBSD loopback",
    _LINK_LINUX_SLL: "Linux cooked (SLL)",
    _LINK_IPV4: "raw IPv4",
    _LINK_IPV6: "raw IPv6",
    _LINK_LINUX_SLL2: "Linux cooked v2 (SLL2)",
    12: "raw IP",
    14: "raw IP",
}

_PCAP_MAGICS: Final = frozenset(
    {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
)
_PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"

_FRAME_HEADER = struct.Struct(">BHI")
_FRAME_TYPES: Final = frozenset(
    {spec.FRAME_METHOD, spec.FRAME_HEADER, spec.FRAME_BODY, spec.FRAME_HEARTBEAT}
)
# Where a hunt may find a frame: a frame type octet or the "A" of a protocol header.
_CANDIDATE = re.compile(rb"[\x01\x02\x03\x08A]")


class CaptureError(AMQPError):
    """The input cannot be read: not a capture, an unsupported link type, a damaged
    file, or dpkt (the ``capture`` extra) is not installed."""


class Direction(enum.Enum):
    """Which way a frame travelled."""

    CLIENT_TO_SERVER = "c2s"
    SERVER_TO_CLIENT = "s2c"
    UNKNOWN = "unknown"
    """A raw stream or hex dump whose content did not say which side sent it."""

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
    completed the frame, None for inputs without time. ``offset`` is where the frame
    starts in its direction's byte stream, ``size`` its length on the wire.
    """

    time: float | None
    connection: ConnectionInfo
    direction: Direction
    frame: Frame
    offset: int
    size: int

    @property
    def channel(self) -> int | None:
        """The frame's channel; 0 for a heartbeat, None for a protocol header."""
        if isinstance(self.frame, ProtocolHeader):
            return None
        return getattr(self.frame, "channel", 0)


@dataclass(slots=True)
class MessageRecord:
    """A whole message (method, content header, body) assembled from its frames.
    ``time`` is that of its last frame, ``offset`` that of its method frame."""

    time: float | None
    connection: ConnectionInfo
    direction: Direction
    message: Message
    offset: int

    @property
    def channel(self) -> int:
        return self.message.channel


class NoticeKind(enum.Enum):
    GAP = "gap"
    """Bytes of the stream are missing from the capture (``size`` of them)."""
    SKIPPED = "skipped"
    """Bytes were passed over to find the next frame (after a mid-stream start, a gap or
    an error), or were not decoded (after an error)."""
    TRUNCATED = "truncated"
    """The stream ended inside a frame."""
    ERROR = "error"
    """Malformed data or a broken content sequence; ``error`` holds the exception."""


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


Record: TypeAlias = FrameRecord | MessageRecord | Notice


@dataclass(slots=True)
class CaptureStats:
    """What the reader saw, filled in while it reads."""

    format: str = ""
    """``pcap``, ``pcapng``, ``hex`` or ``raw``."""
    packets: int = 0
    """Packets in the capture (0 for raw and hex input)."""
    ignored_packets: int = 0
    """Packets that are not TCP of an AMQP connection (other traffic, IP fragments,
    unsupported link types, undecodable headers)."""
    connections: list[ConnectionInfo] = field(default_factory=list)
    first_time: float | None = None
    """Timestamp of the first packet of the capture."""
    bytes_read: int = 0
    size: int | None = None
    """Size of the input file when known."""
    warnings: list[str] = field(default_factory=list)
    """Problems with the input that did not stop reading (a truncated capture file)."""


Progress: TypeAlias = Callable[[int, int | None], None]


def read_capture(source: str | os.PathLike[str] | IO[bytes], **options: Any) -> Iterator[Record]:
    """Records from a capture file, raw stream or hex dump; see :class:`CaptureReader`."""
    return CaptureReader(**options).read(source)


class CaptureReader:
    """Reads AMQP frames (or messages) out of captures, raw byte streams and hex dumps.

    Options:

    - ``ports``: TCP ports that mark a connection as AMQP (any one of them); a
      connection on another port is found when it starts with the protocol header.
    - ``messages``: assemble content into :class:`MessageRecord`\\ s instead of
      yielding its method, header and body frames.
    - ``max_frame_size``: the frame size limit until a connection's tune-ok says
      otherwise (module docstring).
    - ``resync_on_error``: after a malformed frame, report it and hunt for the next
      frame instead of giving up on that direction.
    - ``input_format``: ``auto`` (sniffed), ``pcap``, ``pcapng``, ``hex`` or ``raw``.
    - ``direction``: for a raw stream, which way it went (``Direction`` or ``"c2s"`` /
      ``"s2c"``); by default it is guessed from the first method that only one side
      sends.
    - ``progress``: called now and then with (bytes read, total size or None).

    ``stats`` describes what was read so far.
    """

    def __init__(
        self,
        *,
        ports: Iterable[int] = DEFAULT_PORTS,
        messages: bool = False,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        resync_on_error: bool = False,
        input_format: str = "auto",
        direction: Direction | str | None = None,
        progress: Progress | None = None,
        reorder_limit: int = DEFAULT_REORDER_LIMIT,
    ) -> None:
        if input_format not in ("auto", "pcap", "pcapng", "hex", "raw"):
            raise ValueError(f"unknown input format {input_format!r}")
        self.ports = frozenset(ports)
        self.messages = messages
        self.max_frame_size = max_frame_size
        self.resync_on_error = resync_on_error
        self.input_format = input_format
        self.direction = Direction(direction) if direction is not None else None
        self.progress = progress
        self.reorder_limit = reorder_limit
        self.stats = CaptureStats()

    def read(self, source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Record]:
        """Yield the records of ``source`` (a path or a binary file object) in capture
        order. Raises CaptureError at once if it is not something this reader
        understands, and while iterating if it turns out to be damaged."""
        self.stats = CaptureStats()
        if not isinstance(source, (str, os.PathLike)):
            return self._read(source)
        try:
            stream: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed by _closing
        except OSError as exc:
            raise CaptureError(f"cannot open {os.fspath(source)!r}: {exc.strerror}") from None
        try:
            records = self._read(stream)
        except BaseException:
            stream.close()
            raise
        return _closing(records, stream)

    def _read(self, stream: IO[bytes]) -> Iterator[Record]:
        self.stats.size = _file_size(stream)
        head = _read_exactly(stream, _SNIFF)
        source = _Input(stream, head, self.stats)
        fmt = self.input_format if self.input_format != "auto" else self._sniff(head)
        self.stats.format = fmt
        if fmt == "pcap":
            return self._tcp(_pcap_packets(source, self.stats))
        if fmt == "pcapng":
            return self._tcp(_pcapng_packets(source, self.stats))
        if fmt == "hex":
            return self._hex(source)
        return self._raw(source)

    def _sniff(self, head: bytes) -> str:
        if head[:4] in _PCAP_MAGICS:
            return "pcap"
        if head[:4] == _PCAPNG_MAGIC:
            return "pcapng"
        if _looks_like_hex(head):
            return "hex"
        if _looks_like_frames(head, self.max_frame_size):
            return "raw"
        if not head:
            raise CaptureError("the input is empty")
        raise CaptureError(
            "not a pcap or pcapng capture, a hex dump or a raw AMQP stream"
            f" (it starts with {head[:8].hex(' ')})"
        )

    # -- TCP captures ---------------------------------------------------------------------

    def _tcp(self, packets: Iterator[tuple[float, int, bytes]]) -> Iterator[Record]:
        tracker = _TCPTracker(self)
        stats = self.stats
        report = self.progress
        next_report = 0.0
        for count, (ts, linktype, data) in enumerate(packets):
            if stats.first_time is None:
                stats.first_time = ts
            yield from tracker.packet(ts, linktype, data)
            if report is not None and not count & 255:
                now = time.monotonic()
                if now >= next_report:
                    report(stats.bytes_read, stats.size)
                    next_report = now + 0.25
        yield from tracker.finish()

    # -- raw byte streams and hex dumps -------------------------------------------------

    def _raw(self, source: _Input) -> Iterator[Record]:
        resolver = _DirectionResolver(self)
        half = resolver.half(0)
        while True:
            chunk = source.read(_CHUNK)
            if not chunk:
                break
            yield from resolver.resolve(half.data(chunk, None))
            self._report()
        yield from resolver.resolve(half.finish(None), final=True)

    def _hex(self, source: _Input) -> Iterator[Record]:
        text = io.TextIOWrapper(io.BufferedReader(source), encoding="ascii", newline=None)
        parser = _HexParser()
        resolver: _DirectionResolver | None = None
        halves: dict[int, _Half] = {}
        try:
            for number, line in enumerate(text, 1):
                try:
                    pieces = parser.line(line)
                except ValueError as exc:
                    raise CaptureError(f"hex dump line {number}: {exc}") from None
                for side, gap, data in pieces:
                    if resolver is None:
                        resolver = _DirectionResolver(self, parser.nodes)
                    half = halves.get(side)
                    if half is None:
                        half = halves[side] = resolver.half(side)
                    if gap:
                        yield from resolver.resolve(half.gap(gap, None))
                    yield from resolver.resolve(half.data(data, None))
                if not number & 1023:
                    self._report()
        except UnicodeDecodeError:
            raise CaptureError("the hex dump contains bytes that are not ASCII text") from None
        if resolver is None:
            raise CaptureError("the hex dump holds no data")
        for side in sorted(halves):
            yield from resolver.resolve(halves[side].finish(None), final=side == max(halves))

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.stats.bytes_read, self.stats.size)


# ---------------------------------------------------------------------------------------
# Input


class _Input(io.RawIOBase):
    """The input with its sniffed head put back; counts what was read and refuses the
    absurd reads a damaged capture header would ask for."""

    def __init__(self, stream: IO[bytes], head: bytes, stats: CaptureStats) -> None:
        super().__init__()
        self._stream = stream
        self._head = head
        self._stats = stats
        self.cut = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view, view.cast("B") as target:
            data = self.read(len(target))
            target[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("the input is never read whole")
        if size > _MAX_RECORD:
            raise CaptureError(f"a capture record of {size} bytes: the file is damaged")
        data = b""
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        while len(data) < size:
            more = self._stream.read(size - len(data))
            if not more:
                if data:
                    self.cut = True  # the file ends inside something
                break
            data += more
        self._stats.bytes_read += len(data)
        return data


def _closing(records: Iterator[Record], stream: IO[bytes]) -> Iterator[Record]:
    with stream:
        yield from records


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    out = b""
    while len(out) < size:
        piece = stream.read(size - len(out))
        if not piece:
            break
        out += piece
    return out


def _file_size(stream: IO[bytes]) -> int | None:
    try:
        info = os.fstat(stream.fileno())
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _looks_like_frames(head: bytes, limit: int) -> bool:
    if head[:4] == _AMQP:
        return True
    if len(head) < 7 or head[0] not in _FRAME_TYPES:
        return False
    size: int = _FRAME_HEADER.unpack_from(head)[2]
    if limit and size + 8 > limit:
        return False
    return 7 + size >= len(head) or head[7 + size] == spec.FRAME_END


def _dpkt() -> Any:
    try:
        import dpkt
    except ImportError:
        raise CaptureError(
            "reading pcap and pcapng files needs dpkt: pip install 'amqpcodec[capture]'"
        ) from None
    return dpkt


def _pcap_packets(source: _Input, stats: CaptureStats) -> Iterator[tuple[float, int, bytes]]:
    dpkt = _dpkt()
    try:
        reader = dpkt.pcap.Reader(source)
    except (ValueError, dpkt.Error) as exc:
        raise CaptureError(f"not a readable pcap file: {exc}") from None
    linktype = reader.datalink()
    if linktype not in _LINK_NAMES:
        raise CaptureError(_unsupported_link(linktype))
    packets = iter(reader)
    while True:
        try:
            ts, data = next(packets)
        except StopIteration:
            break
        except (dpkt.Error, struct.error):
            source.cut = True
            break
        stats.packets += 1
        yield float(ts), linktype, data
    if source.cut:
        stats.warnings.append("the capture file ends in the middle of a packet record")


def _unsupported_link(linktype: int) -> str:
    names = ", ".join(sorted(set(_LINK_NAMES.values())))
    return f"link-layer type {linktype} is not supported (supported: {names})"


# pcapng block types and options [pcapng draft §4]
_PCAPNG_SHB: Final = 0x0A0D0D0A
_PCAPNG_IDB: Final = 1
_PCAPNG_PB: Final = 2
_PCAPNG_SPB: Final = 3
_PCAPNG_EPB: Final = 6
_OPT_TSRESOL: Final = 9
_OPT_TSOFFSET: Final = 14


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    divisor: float = 1e6
    offset: int = 0


def _pcapng_packets(source: _Input, stats: CaptureStats) -> Iterator[tuple[float, int, bytes]]:
    """Packets of a pcapng file, read block by block with dpkt's block classes.

    dpkt's own pcapng.Reader uses the first interface's link type and time resolution
    for every packet and ignores later sections; a capture of several interfaces
    (Wireshark with more than one selected) needs each packet's own interface.
    """
    dpkt = _dpkt()
    ng = dpkt.pcapng
    order = "<"
    interfaces: list[_Interface] = []
    warned: set[int] = set()
    started = False
    while True:
        header = source.read(8)
        if len(header) < 8:
            if header:
                stats.warnings.append("the capture file ends in the middle of a pcapng block")
            return
        if header[:4] == _PCAPNG_MAGIC:  # a section header block starts a new section
            bom = source.read(4)
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise CaptureError("not a readable pcapng file: bad byte-order magic")
            (length,) = struct.unpack(order + "I", header[4:])
            if length < 28 or length % 4:
                raise CaptureError(f"the pcapng file is damaged: a section header of {length}")
            source.read(length - 12)
            interfaces = []
            started = True
            continue
        if not started:
            raise CaptureError("not a readable pcapng file: no section header block")
        block_type, length = struct.unpack(order + "II", header)
        if length < 12 or length % 4:
            raise CaptureError(f"the pcapng file is damaged: a block of {length} bytes")
        body = source.read(length - 8)
        if len(body) < length - 8:
            stats.warnings.append("the capture file ends in the middle of a pcapng block")
            return
        block = header + body
        little = order == "<"
        stamp: int | None = None
        try:
            if block_type == _PCAPNG_IDB:
                idb = (ng.InterfaceDescriptionBlockLE if little else ng.InterfaceDescriptionBlock)(
                    block
                )
                iface = _Interface(idb.linktype, idb.snaplen)
                for opt in idb.opts:
                    if opt.code == _OPT_TSRESOL and opt.data:
                        value = opt.data[0]
                        iface.divisor = float((2 if value & 0x80 else 10) ** (value & 0x7F))
                    elif opt.code == _OPT_TSOFFSET and len(opt.data) == 8:
                        iface.offset = struct.unpack(order + "q", opt.data)[0]
                interfaces.append(iface)
                continue
            if block_type in (_PCAPNG_EPB, _PCAPNG_PB):
                if block_type == _PCAPNG_EPB:
                    cls = ng.EnhancedPacketBlockLE if little else ng.EnhancedPacketBlock
                else:
                    cls = ng.PacketBlockLE if little else ng.PacketBlock
                packet = cls(block)
                index, stamp, data = (
                    packet.iface_id,
                    packet.ts_high << 32 | packet.ts_low,
                    packet.pkt_data,
                )
            elif block_type == _PCAPNG_SPB:
                (original,) = struct.unpack_from(order + "I", block, 8)
                index, data = 0, block[12 : 12 + min(original, length - 16)]
            else:
                continue  # name resolution, statistics, decryption secrets, custom blocks
        except (dpkt.Error, struct.error):
            raise CaptureError(f"the pcapng file is damaged: block type {block_type}") from None
        if index >= len(interfaces):
            raise CaptureError(f"the pcapng file is damaged: a packet on interface {index}")
        iface = interfaces[index]
        stats.packets += 1
        if iface.linktype not in _LINK_NAMES:
            stats.ignored_packets += 1
            if iface.linktype not in warned:
                warned.add(iface.linktype)
                stats.warnings.append(_unsupported_link(iface.linktype) + "; its packets skipped")
            continue
        ts = iface.offset + stamp / iface.divisor if stamp is not None else 0.0
        yield ts, iface.linktype, bytes(data)


# ---------------------------------------------------------------------------------------
# TCP: connections and reassembly


class _Reassembler:
    """Puts the segments of one direction of a TCP connection in order.

    Stream offsets count payload bytes from the first one (after the SYN, or the first
    segment seen when the SYN was not captured) and do not wrap as sequence numbers
    do. ``segment``/``ack``/``flush`` return chunks ``(data, size, time)``: data is None
    for a gap of ``size`` missing bytes.
    """

    __slots__ = (
        "_count",
        "_heap",
        "_pending",
        "acked",
        "fin",
        "limit",
        "next_seq",
        "offset",
        "syn_seen",
    )

    def __init__(self, limit: int = DEFAULT_REORDER_LIMIT) -> None:
        self.next_seq: int | None = None  # sequence number of stream offset ``offset``
        self.offset = 0  # stream offset of the next byte to deliver
        self.syn_seen = False
        self.acked = 0  # highest stream offset the peer acknowledged
        self.fin: int | None = None  # stream offset of the FIN
        self.limit = limit
        self._heap: list[tuple[int, int, bytes, float | None]] = []
        self._pending = 0
        self._count = 0

    @property
    def pending(self) -> int:
        """Bytes held back waiting for missing ones before them."""
        return self._pending

    def syn(self, seq: int) -> None:
        if self.next_seq is None:
            self.next_seq = (seq + 1) & _SEQ_MASK
            self.syn_seen = True

    def _distance(self, seq: int) -> int:
        assert self.next_seq is not None
        return ((seq - self.next_seq + _HALF_SEQ) & _SEQ_MASK) - _HALF_SEQ

    def segment(self, seq: int, data: bytes, ts: float | None) -> list[Chunk]:
        if self.next_seq is None:
            self.next_seq = seq  # no SYN: the stream starts here
        rel = self._distance(seq)
        out: list[Chunk] = []
        if rel <= 0:
            if -rel >= len(data):
                return out  # a retransmission of what was delivered
            if rel:
                data = data[-rel:]
            self._deliver(data, ts, out)
            if self._heap:
                self._drain(out)
            return out
        self._count += 1
        heapq.heappush(self._heap, (self.offset + rel, self._count, data, ts))
        self._pending += len(data)
        while self._pending > self.limit:
            self._skip_to_first(out)
        return out

    def ack(self, ack: int) -> list[Chunk]:
        """The peer acknowledged everything before ``ack``: bytes before it that the
        capture does not have were lost from the capture, not from the connection."""
        if self.next_seq is None:
            return []
        rel = self._distance(ack)
        if rel <= 0:
            return []
        target = self.offset + rel
        if self.fin is not None:
            target = min(target, self.fin)
        self.acked = max(self.acked, target)
        out: list[Chunk] = []
        while self._heap and self._heap[0][0] < target:
            self._skip_to_first(out)
        return out

    def finish(self, seq: int) -> None:
        """A FIN at sequence number ``seq``."""
        if self.next_seq is not None and self.fin is None:
            self.fin = self.offset + self._distance(seq)

    def flush(self) -> list[Chunk]:
        """The connection is over: deliver what is held, reporting every gap."""
        out: list[Chunk] = []
        while self._heap:
            self._skip_to_first(out)
        end = self.acked if self.fin is None else min(self.acked, self.fin)
        # An acknowledgement one past the data is a FIN we did not capture, not data.
        if end - self.offset > (1 if self.fin is None else 0):
            out.append((None, end - self.offset, None))
            self._advance(end - self.offset)
        return out

    def _deliver(self, data: bytes, ts: float | None, out: list[Chunk]) -> None:
        out.append((data, len(data), ts))
        self._advance(len(data))

    def _advance(self, size: int) -> None:
        assert self.next_seq is not None
        self.offset += size
        self.next_seq = (self.next_seq + size) & _SEQ_MASK

    def _drain(self, out: list[Chunk]) -> None:
        heap = self._heap
        while heap and heap[0][0] <= self.offset:
            start, _, data, ts = heapq.heappop(heap)
            self._pending -= len(data)
            if start + len(data) <= self.offset:
                continue  # wholly overlapped by what was delivered
            self._deliver(data[self.offset - start :], ts, out)

    def _skip_to_first(self, out: list[Chunk]) -> None:
        start, _, _, ts = self._heap[0]
        if start > self.offset:
            out.append((None, start - self.offset, ts))
            self._advance(start - self.offset)
        self._drain(out)


Chunk: TypeAlias = tuple[bytes | None, int, float | None]


class _Conn:
    """One AMQP connection: its two directions."""

    __slots__ = ("c2s", "client", "info", "isn", "reset", "s2c")

    def __init__(self, reader: CaptureReader, info: ConnectionInfo, client: Any) -> None:
        self.info = info
        self.client = client  # (address bytes, port)
        self.c2s = _Half(reader, info, Direction.CLIENT_TO_SERVER, self)
        self.s2c = _Half(reader, info, Direction.SERVER_TO_CLIENT, self)
        self.isn: int | None = None  # the client's SYN sequence number
        self.reset = False

    def frame_max(self, value: int, default: int) -> None:
        """connection.tune-ok fixed the frame size limit of both directions."""
        limit = value or default
        self.c2s.set_limit(limit)
        self.s2c.set_limit(limit)

    @property
    def done(self) -> bool:
        if self.reset:
            return True
        c2s, s2c = self.c2s.tcp, self.s2c.tcp
        return c2s.fin is not None and s2c.fin is not None and not c2s.pending + s2c.pending

    def packet(self, from_client: bool, tcp: Any, ts: float, dpkt: Any) -> list[Record]:
        half, other = (self.c2s, self.s2c) if from_client else (self.s2c, self.c2s)
        flags = tcp.flags
        seq = tcp.seq
        records: list[Record] = []
        if flags & dpkt.tcp.TH_SYN:
            half.tcp.syn(seq)
            if from_client and not flags & dpkt.tcp.TH_ACK:
                self.isn = seq
            seq = (seq + 1) & _SEQ_MASK
        payload = tcp.data
        if payload:
            half.chunks(half.tcp.segment(seq, bytes(payload), ts), records)
        if flags & dpkt.tcp.TH_FIN:
            half.tcp.finish((seq + len(payload)) & _SEQ_MASK)
        if flags & dpkt.tcp.TH_ACK:
            other.chunks(other.tcp.ack(tcp.ack), records)
        if flags & dpkt.tcp.TH_RST:
            self.reset = True
        return records

    def close(self) -> list[Record]:
        records: list[Record] = []
        for half in (self.c2s, self.s2c):
            half.chunks(half.tcp.flush(), records)
            records += half.finish(None)
        return records


class _TCPTracker:
    """Finds the AMQP connections among the packets and feeds their directions."""

    _MEMORY: Final = 65536  # flows remembered as closed / not AMQP / only a SYN so far

    def __init__(self, reader: CaptureReader) -> None:
        self.reader = reader
        self.dpkt = _dpkt()
        self.conns: dict[Any, _Conn] = {}
        self.closed: OrderedDict[Any, None] = OrderedDict()
        self.other: OrderedDict[Any, None] = OrderedDict()
        self.syns: OrderedDict[Any, dict[Any, int]] = OrderedDict()

    def _network(self, linktype: int, data: bytes) -> Any:
        dpkt = self.dpkt
        if linktype == _LINK_ETHERNET:
            return dpkt.ethernet.Ethernet(data).data
        if linktype == _LINK_LINUX_SLL:
            return dpkt.sll.SLL(data).data
        if linktype == _LINK_LINUX_SLL2:
            return dpkt.sll2.SLL2(data).data
        if linktype in (_LINK_NULL, _LINK_LOOP):
            return dpkt.loopback.Loopback(data).data
        if not data:
            return None
        if data[0] >> 4 == 4:
            return dpkt.ip.IP(data)
        if data[0] >> 4 == 6:
            return dpkt.ip6.IP6(data)
        return None

    def packet(self, ts: float, linktype: int, data: bytes) -> list[Record]:
        dpkt = self.dpkt
        stats = self.reader.stats
        try:
            ip = self._network(linktype, data)
        except (dpkt.Error, struct.error, ValueError, IndexError):
            ip = None
        if isinstance(ip, dpkt.ip.IP):
            if ip.mf or ip.offset:
                ip = None  # a fragment: TCP over loopback and LANs is not fragmented
        elif not isinstance(ip, dpkt.ip6.IP6):
            ip = None
        tcp = ip.data if ip is not None else None
        if not isinstance(tcp, dpkt.tcp.TCP):
            stats.ignored_packets += 1
            return []
        src, dst = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        key = (src, dst) if src < dst else (dst, src)
        flags = tcp.flags
        pure_syn = flags & dpkt.tcp.TH_SYN and not flags & dpkt.tcp.TH_ACK
        records: list[Record] = []
        conn = self.conns.get(key)
        if conn is not None and pure_syn and conn.isn != tcp.seq and src == conn.client:
            records += self._close(key, conn)  # the address pair is reused
            conn = None
        if conn is None:
            if key in self.closed and not pure_syn:
                stats.ignored_packets += 1
                return records
            conn = self._new(key, src, dst, ip, tcp, ts)
            if conn is None:
                stats.ignored_packets += 1
                return records
        records += conn.packet(src == conn.client, tcp, ts, dpkt)
        if conn.done:
            records += self._close(key, conn)
        return records

    def _new(self, key: Any, src: Any, dst: Any, ip: Any, tcp: Any, ts: float) -> _Conn | None:
        dpkt = self.dpkt
        ports = self.reader.ports
        flags = tcp.flags
        syn = flags & dpkt.tcp.TH_SYN
        if key in self.other and not (syn and not flags & dpkt.tcp.TH_ACK):
            return None
        self.other.pop(key, None)
        client: Any = None
        if tcp.dport in ports and tcp.sport not in ports:
            client = src
        elif tcp.sport in ports and tcp.dport not in ports:
            client = dst
        elif tcp.dport in ports:  # both: the SYN's sender is the client
            client = dst if syn and flags & dpkt.tcp.TH_ACK else src
        elif tcp.data:
            if bytes(tcp.data[:4]) != _AMQP:
                _remember(self.other, key, None, self._MEMORY)
                self.syns.pop(key, None)
                return None
            client = src  # the protocol header opens a connection from the client
        if client is None or (not tcp.data and not syn):
            if syn:  # keep the handshake until the first payload says what this is
                _remember(self.syns, key, {}, self._MEMORY)
                self.syns[key][src] = tcp.seq
            return None
        server = dst if client == src else src
        family = socket.AF_INET6 if len(ip.src) == 16 else socket.AF_INET
        info = ConnectionInfo(
            len(self.reader.stats.connections),
            Endpoint(socket.inet_ntop(family, client[0]), client[1]),
            Endpoint(socket.inet_ntop(family, server[0]), server[1]),
        )
        self.reader.stats.connections.append(info)
        conn = _Conn(self.reader, info, client)
        for side, seq in self.syns.pop(key, {}).items():
            (conn.c2s if side == client else conn.s2c).tcp.syn(seq)
            if side == client:
                conn.isn = seq
        self.conns[key] = conn
        return conn

    def _close(self, key: Any, conn: _Conn) -> list[Record]:
        del self.conns[key]
        _remember(self.closed, key, None, self._MEMORY)
        return conn.close()

    def finish(self) -> Iterator[Record]:
        for key, conn in sorted(self.conns.items(), key=lambda item: item[1].info.index):
            yield from self._close(key, conn)


def _remember(memory: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    """Put ``key`` in a bounded memory, forgetting the oldest entry when it is full."""
    if key in memory:
        memory.move_to_end(key)
        return
    memory[key] = value
    if len(memory) > size:
        memory.popitem(last=False)


# ---------------------------------------------------------------------------------------
# Frame streams


# Why a stream hunts, as its notices say it.
_INPUT_START: Final = "the input may start inside a frame"
_MID_CONNECTION: Final = "the capture starts mid-connection"
_AFTER_GAP: Final = "after bytes missing from the capture"
_AFTER_ERROR: Final = "after a malformed frame"


class _State(enum.Enum):
    SYNC = 1
    HUNT = 2
    FAILED = 3


class _FrameStream:
    """Bytes of one direction in, frames and notices out (module docstring)."""

    __slots__ = (
        "at_start",
        "base",
        "buf",
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
        self.buf += data
        while (self.state is _State.SYNC or self._hunt(out, False)) and self._decode(out):
            pass  # _decode found a malformed frame and wants to hunt past it

    def gap(self, size: int, out: list[Any]) -> None:
        if self.state is _State.FAILED:
            return
        start = self.base + len(self.buf)
        out.append(_Note(NoticeKind.GAP, start, size, f"{size} bytes missing from the capture"))
        self.skipped += len(self.buf)
        self.buf.clear()
        self.base = start + size
        self.reason = _AFTER_GAP
        self.state = _State.HUNT

    def finish(self, out: list[Any]) -> None:
        # A hunt may be waiting for the end of a plausible frame that will never come.
        while self.state is _State.HUNT and self.buf and self._hunt(out, True):
            if not self._decode(out):
                break
        buffered = len(self.buf)
        if self.state is _State.FAILED:
            if self.ignored:
                out.append(
                    _Note(
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
                    _Note(
                        NoticeKind.SKIPPED,
                        self.base + buffered,
                        skipped,
                        f"{skipped} bytes ({self.reason}) to the end of the stream held no frame",
                    )
                )
        elif buffered:
            out.append(
                _Note(
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
                if start == _AMQP[: len(start)]:
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
                try:
                    decode_frame(buf, pos, max_frame_size=limit)
                except DecodeError:
                    pass
                else:
                    break
            pos += 1
        self._drop(pos)
        skipped, self.skipped = self.skipped, 0
        if skipped or self.reason != _INPUT_START:
            where = self.base
            text = f"skipped {skipped} bytes to the next frame, at offset {where} ({self.reason})"
            if not skipped:
                text = f"first frame at offset {where} ({self.reason})"
            out.append(_Note(NoticeKind.SKIPPED, where, skipped, text))
        self.state = _State.SYNC
        self.at_start = True
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
        off = 0
        base = self.base
        limit = self.limit
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
            out.append(_Note(NoticeKind.ERROR, base + off, 0, text, exc))
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


@dataclass(slots=True)
class _Note:
    kind: NoticeKind
    offset: int
    size: int
    message: str
    error: AMQPError | None = None


class _Half:
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
        conn: _Conn | None = None,
    ) -> None:
        self.reader = reader
        self.info = info
        self.direction = direction
        self.conn = conn
        self.tcp = _Reassembler(reader.reorder_limit)
        self.stream: _FrameStream | None = None
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

    def _stream(self, hunting: bool, reason: str) -> _FrameStream:
        if self.stream is None:
            self.stream = _FrameStream(self._limit, hunting, reason, self.reader.resync_on_error)
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
            stream = self._stream(True, _INPUT_START)
        else:
            stream = self._stream(not self.tcp.syn_seen, _MID_CONNECTION)
        out: list[Any] = []
        stream.feed(data, out)
        return self._records(out, ts)

    def gap(self, size: int, ts: float | None) -> list[Record]:
        stream = self._stream(True, _AFTER_GAP)
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
            if isinstance(item, _Note):
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


class _DirectionResolver:
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
        self.halves: dict[int, _Half] = {}
        self.held: list[Record] = []
        self.held_bytes = 0
        self.first: Direction | None = None  # the direction of side 0, once known
        if reader.direction is not None:
            self._decide(reader.direction)

    def half(self, side: int) -> _Half:
        direction = _PROVISIONAL[side] if self.first is None else self._of(side)
        half = self.halves[side] = _Half(self.reader, self.info, direction)
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


_HEX_PAIR = re.compile(r"^[0-9A-Fa-f]{2}$")
_HEX_QUAD = re.compile(r"^[0-9A-Fa-f]{4}$")
_PLAIN_HEX = re.compile(r"^(?:(?:0x)?[0-9A-Fa-f]{2})+$")
_DUMP_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<offset>[0-9A-Fa-f]{6,16})(?P<colon>:?) +(?P<rest>.*)$"
)
_OFFSET_ONLY = re.compile(r"^[0-9A-Fa-f]{6,16}$")
_NODE_LINE = re.compile(r"^Node (?P<node>[01]): (?P<address>.+):(?P<port>\d+)$")


class _HexParser:
    """Hex dump lines -> pieces ``(side, gap before, bytes)``.

    Two layouts: plain hex (``xxd -p``, space-separated bytes, optional ``0x``), and
    offset-prefixed dumps (Wireshark's and tshark's "Follow TCP Stream" hex output,
    ``hexdump -C``, ``xxd``), whose offsets are checked for gaps and overlaps. In the
    follow-stream output the second node's lines are indented. ``hexdump``'s ``*``
    (the line above repeats up to the next offset) and its closing offset-only line are
    understood.
    """

    _REPEAT_CHUNK: Final = 64 * 1024

    def __init__(self) -> None:
        self.layout: str | None = None
        self.expected: dict[int, int] = {}
        self.nodes: dict[int, Endpoint] = {}
        self.last = b""  # the previous line's bytes, for "*"
        self.repeat = False

    def line(self, line: str) -> list[tuple[int, int, bytes]]:
        stripped = line.strip()
        if not stripped or stripped.startswith(("=", "Follow:", "Filter:", "#")):
            return []
        node = _NODE_LINE.match(stripped)
        if node:
            address = node["address"].strip("[]")
            self.nodes[int(node["node"])] = Endpoint(address, int(node["port"]))
            return []
        if self.layout is None:
            self.layout = "dump" if self._dump(line) is not None else "plain"
        if self.layout == "plain":
            return [(0, 0, self._plain(stripped))]
        if stripped == "*":
            self.repeat = True
            return []
        if _OFFSET_ONLY.match(stripped):  # hexdump's last line: where the data ended
            return self._repeated(0, int(stripped, 16))
        parsed = self._dump(line)
        if parsed is None:
            raise ValueError(f"not an offset-prefixed hex dump line: {stripped[:60]!r}")
        side, offset, data = parsed
        pieces = self._repeated(side, offset)
        expected = self.expected.get(side, offset)
        gap = 0
        if offset > expected:
            gap = offset - expected
        elif offset < expected:
            data = data[expected - offset :]  # bytes shown twice
            offset = expected
        self.expected[side] = offset + len(data)
        self.last = data
        pieces.append((side, gap, data))
        return pieces

    def _repeated(self, side: int, offset: int) -> list[tuple[int, int, bytes]]:
        """The bytes a ``*`` line stood for, up to ``offset``."""
        if not self.repeat:
            return []
        self.repeat = False
        start = self.expected.get(side, offset)
        if not self.last or offset <= start:
            return []
        count = offset - start
        block = self.last * max(1, self._REPEAT_CHUNK // len(self.last))
        pieces = []
        while count > 0:
            piece = block[:count]
            pieces.append((side, 0, piece))
            count -= len(piece)
        self.expected[side] = offset
        return pieces

    @staticmethod
    def _plain(stripped: str) -> bytes:
        tokens = stripped.split()
        digits = []
        for token in tokens:
            if not _PLAIN_HEX.match(token):
                raise ValueError(f"not hex: {token[:20]!r}")
            digits.append(token.replace("0x", ""))
        return bytes.fromhex("".join(digits))

    @staticmethod
    def _dump(line: str) -> tuple[int, int, bytes] | None:
        match = _DUMP_LINE.match(line.rstrip("\r\n"))
        if match is None:
            return None
        rest = match["rest"]
        tokens = rest.split()
        if not tokens:
            return None
        if match["colon"] and _HEX_QUAD.match(tokens[0]):
            region = rest[:40]  # xxd: 8 groups of 4 digits, then the text column
            pieces = region.split()
            if not all(_HEX_QUAD.match(p) or _HEX_PAIR.match(p) for p in pieces):
                return None
        else:
            region = rest[:49]  # 16 bytes "xx " with a gap after 8, then the text column
            pieces = region.split()
            if not pieces or not all(_HEX_PAIR.match(p) for p in pieces):
                return None
        side = 1 if match["indent"] else 0
        return side, int(match["offset"], 16), bytes.fromhex("".join(pieces))


def _looks_like_hex(head: bytes) -> bool:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    lines = text.splitlines()
    if len(head) == _SNIFF and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    parser = _HexParser()
    seen = False
    for line in lines[:50]:
        try:
            if parser.line(line):
                seen = True
        except ValueError:
            return False
    return seen or bool(parser.nodes)
