"""The capture reader: the input's format sniffed, then packets through TCP
reassembly, or raw bytes and hex dumps straight to frame streams."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Final, TypeAlias

from ._direction import Clock, DirectionResolver, Half
from ._hexdump import HexParser, looks_like_hex, text_lines
from ._input import (
    COMPRESSIONS,
    SNIFF,
    Input,
    closing,
    decompressing,
    file_size,
    read_head,
)
from ._limits import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_HEX_REPEAT,
    DEFAULT_MAX_LISTED_CONNECTIONS,
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_PORTS,
    DEFAULT_REORDER_LIMIT,
)
from ._pcap import PCAP_MAGICS, PCAPNG_MAGIC, pcap_packets, pcapng_packets
from ._records import CaptureError, CaptureStats, ConnectionInfo, Direction, Record
from ._stream import looks_like_frames
from ._tcp import TCPTracker

__all__ = ["CaptureReader", "Progress", "read_capture"]

_CHUNK: Final = 1024 * 1024  # read size for raw byte streams

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
      otherwise (the ``amqpcodec.capture`` package docstring).
    - ``resync_on_error``: after a malformed frame, report it and hunt for the next
      frame instead of giving up on that direction.
    - ``input_format``: ``auto`` (sniffed), ``pcap``, ``pcapng``, ``hex`` or ``raw``.
    - ``direction``: for a raw stream, which way it went (``Direction`` or ``"c2s"`` /
      ``"s2c"``); by default it is guessed from the first method that only one side
      sends.
    - ``progress``: called now and then with (bytes read, total size or None).
    - ``reorder_limit``: out-of-order bytes held per direction (each segment counted
      at what it costs in memory) before the missing bytes are declared a gap.
    - ``memory_limit``: what the reader may hold across connections (256 MiB): each
      connection's bookkeeping (``CONNECTION_COST``), reorder buffers, partial frames
      and messages in progress. Beyond it the least recently active connections are
      dropped (a ``EVICTED`` notice each; their messages in progress are given out as
      partial), and messages in progress on the connection being read are given out
      as partial; the frame being read is bounded by ``max_frame_size`` and its
      reorder buffer by ``reorder_limit``, whatever this limit.
    - ``tcp_events``: report each SYN, FIN and RST of an AMQP connection as a
      :class:`Notice` of kind ``TCP`` (who opened and who closed it, when).
    - ``max_hex_repeat``: how many bytes the ``*`` lines of a hex dump may stand for,
      all together (64 MiB); beyond it the dump is refused with CaptureError.
    - ``max_listed_connections``: how many connections ``stats.connections`` lists
      (65,536, about 300 bytes each); later ones are read, numbered and counted in
      ``stats.connection_count`` all the same, and a warning says they are not listed.

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
        max_hex_repeat: int = DEFAULT_MAX_HEX_REPEAT,
        tcp_events: bool = False,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        max_listed_connections: int = DEFAULT_MAX_LISTED_CONNECTIONS,
    ) -> None:
        if input_format not in ("auto", "pcap", "pcapng", "hex", "raw"):
            raise ValueError(f"unknown input format {input_format!r}")
        self.ports: frozenset[int] = frozenset(ports)
        self.messages = messages
        self.max_frame_size = max_frame_size
        self.resync_on_error = resync_on_error
        self.input_format = input_format
        self.direction: Direction | None = Direction(direction) if direction is not None else None
        self.progress = progress
        self.reorder_limit = reorder_limit
        self.max_hex_repeat = max_hex_repeat
        self.tcp_events = tcp_events
        self.memory_limit = memory_limit
        self.max_listed_connections = max_listed_connections
        self.stats: CaptureStats = CaptureStats()
        self.clock: Clock = Clock()

    def read(self, source: str | os.PathLike[str] | IO[bytes]) -> Iterator[Record]:
        """Yield the records of ``source`` (a path or a binary file object) in capture
        order. Raises CaptureError at once if it is not something this reader
        understands, and while iterating if it turns out to be damaged."""
        self.stats = CaptureStats()
        self.clock.time = self.clock.packet = None
        if not isinstance(source, (str, os.PathLike)):
            return self._read(source)
        try:
            stream: IO[bytes] = open(source, "rb")  # noqa: SIM115 - closed by closing
        except OSError as exc:
            raise CaptureError(f"cannot open {os.fspath(source)!r}: {exc.strerror}") from None
        try:
            records = self._read(stream)
        except BaseException:
            stream.close()
            raise
        return closing(records, stream)

    def _read(self, stream: IO[bytes]) -> Iterator[Record]:
        self.stats.size = file_size(stream)
        head = read_head(stream, SNIFF, _decided)
        source = Input(stream, head, self.stats)
        for magic, name in COMPRESSIONS:
            if head.startswith(magic):
                self.stats.compression = name
                inner = decompressing(name, source)
                head = Input(inner, b"", self.stats, count=False).read(SNIFF)
                source = Input(inner, head, self.stats, count=False)
                break
        fmt = self.input_format if self.input_format != "auto" else self._sniff(head)
        self.stats.format = fmt
        if fmt == "pcap":
            return self._tcp(pcap_packets(source, self.stats))
        if fmt == "pcapng":
            return self._tcp(pcapng_packets(source, self.stats))
        if fmt == "hex":
            return self._hex(source)
        return self._raw(source)

    def _sniff(self, head: bytes) -> str:
        if head[:4] in PCAP_MAGICS:
            return "pcap"
        if head[:4] == PCAPNG_MAGIC:
            return "pcapng"
        if looks_like_hex(head):
            return "hex"
        if looks_like_frames(head, self.max_frame_size):
            return "raw"
        if not head:
            raise CaptureError("the input is empty")
        raise CaptureError(
            "not a pcap or pcapng capture, a hex dump or a raw AMQP stream"
            f" (it starts with {head[:8].hex(' ')})"
        )

    # -- TCP captures ---------------------------------------------------------------------

    def _tcp(self, packets: Iterator[tuple[float, int, bytes]]) -> Iterator[Record]:
        tracker = TCPTracker(self)
        stats = self.stats
        report = self.progress
        next_report = 0.0
        clock = self.clock
        packet = tracker.packet
        count = 0
        for ts, linktype, data in packets:
            if stats.first_time is None:
                stats.first_time = ts
            clock.time, clock.packet = ts, stats.packets
            records = packet(ts, linktype, data)
            if records:
                yield from records
            if report is not None:
                if not count & 255:
                    now = time.monotonic()
                    if now >= next_report:
                        report(stats.bytes_read, stats.size)
                        next_report = now + 0.25
                count += 1
        yield from tracker.finish()

    # -- raw byte streams and hex dumps -------------------------------------------------

    def _raw(self, source: Input) -> Iterator[Record]:
        resolver = DirectionResolver(self)
        half = resolver.half(0)
        while True:
            chunk = source.read(_CHUNK)
            if not chunk:
                break
            yield from resolver.resolve(half.data(chunk))
            self._report()
        yield from resolver.resolve(half.finish(), final=True)

    def _hex(self, source: Input) -> Iterator[Record]:
        parser = HexParser(self.max_hex_repeat)
        resolver: DirectionResolver | None = None
        halves: dict[int, Half] = {}
        for side, gap, data in self._hex_pieces(source, parser):
            if resolver is None:
                resolver = DirectionResolver(self, parser.nodes)
            half = halves.get(side)
            if half is None:
                half = halves[side] = resolver.half(side)
            if gap:
                yield from resolver.resolve(half.gap(gap))
            yield from resolver.resolve(half.data(data))
        if resolver is None:
            raise CaptureError("the hex dump holds no data")
        for side in sorted(halves):
            yield from resolver.resolve(halves[side].finish(), final=side == max(halves))

    def _hex_pieces(self, source: Input, parser: HexParser) -> Iterator[tuple[int, int, bytes]]:
        chunks = iter(lambda: source.read(_CHUNK), b"")
        number = 1
        try:
            for text, end in text_lines(chunks, parser.LINE_LIMIT):
                try:
                    yield from parser.piece(text, end)
                except ValueError as exc:
                    raise CaptureError(f"hex dump line {number}: {exc}") from None
                if end:
                    number += 1
                    if not number & 1023:
                        self._report()
        except UnicodeDecodeError:
            raise CaptureError("the hex dump contains bytes that are not ASCII text") from None

    def found(self, info: ConnectionInfo) -> None:
        """A connection was found: count it, and list it while the list has room."""
        stats = self.stats
        stats.connection_count += 1
        if len(stats.connections) < self.max_listed_connections:
            stats.connections.append(info)
        elif stats.connection_count == self.max_listed_connections + 1:
            stats.warnings.append(
                f"more than {self.max_listed_connections} connections"
                " (max_listed_connections): the later ones are decoded but not listed"
            )

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.stats.bytes_read, self.stats.size)


def _decided(head: bytes) -> bool:
    """Whether a live input's first bytes already say it is a pcap or pcapng capture
    (the container's own header is read as the packets are)."""
    return len(head) >= 4 and (head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC)
