"""A TCP relay that decodes the AMQP traffic passing through it: ``amqpcodec proxy``.

How this works: each client that connects to the listening address gets its own
connection to the upstream broker, and two pumps copy bytes, one per direction. Every
chunk read is written on unchanged before it is decoded, so the proxy never alters or
holds back the traffic; decoding happens beside it. Each direction keeps a buffer of at
most one frame: a frame's declared size is checked against the limit (16 MiB before the
client's Connection.Tune-Ok, then the negotiated frame_max plus the 8 bytes RabbitMQ
tolerates) before its payload is buffered, and a frame over it is reported and skipped
without being held. A frame that does not decode is reported and skipped when its
frame-end octet shows where it ends; otherwise decoding of that direction stops (the
bytes still flow). With ``check``, each decoded frame is encoded again and compared with
the bytes that arrived; a difference is reported as a mismatch.

Records are the ones :mod:`amqpcodec.capture` produces (``FrameRecord``,
``MessageRecord``, ``Notice``), so the command prints them with the same writers as
``amqpcodec decode``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from . import spec
from ._content import ContentAssembler, Message
from ._decode import add_selection_arguments
from ._errors import AMQPError, RemoteProtocolError
from ._filter import RecordFilter
from ._frames import Frame, MethodFrame, decode_frame
from ._output import BODY_MODES, TIME_FORMATS, JSONWriter, TextWriter
from ._serving import Listener, serve_until_signalled
from .capture import (
    DEFAULT_MAX_FRAME_SIZE,
    ConnectionInfo,
    Direction,
    Endpoint,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
)

__all__ = ["Mismatch", "Proxy", "ProxyStats", "add_arguments", "run"]

READ_SIZE: Final = 64 * 1024
FRAME_MAX_TOLERANCE: Final = 8
"""Bytes over the negotiated frame_max a frame may have (RabbitMQ accepts 8)."""
MAX_MISMATCHES_KEPT: Final = 100
_FRAME_END: Final = spec.FRAME_END
_FRAME_TYPES: Final = frozenset(
    {spec.FRAME_METHOD, spec.FRAME_HEADER, spec.FRAME_BODY, spec.FRAME_HEARTBEAT}
)

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_UNUSABLE: Final = 2


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A frame whose re-encoding differs from the bytes that carried it."""

    connection: int
    direction: Direction
    offset: int
    received: bytes
    encoded: bytes

    @property
    def first_difference(self) -> int:
        for index, (a, b) in enumerate(zip(self.received, self.encoded, strict=False)):
            if a != b:
                return index
        return min(len(self.received), len(self.encoded))


@dataclass(slots=True)
class ProxyStats:
    """What the proxy has seen so far, over all connections."""

    connections: int = 0
    frames: int = 0
    """Frames decoded."""
    checked: int = 0
    """Frames re-encoded and compared (with ``check``)."""
    mismatches: int = 0
    errors: int = 0
    """Frames (or streams) that did not decode, and content out of order."""
    bytes_relayed: dict[Direction, int] = field(
        default_factory=lambda: {Direction.CLIENT_TO_SERVER: 0, Direction.SERVER_TO_CLIENT: 0}
    )


class _Decoding:
    """One direction of one connection: a buffer of at most one frame, the decoder and
    (with ``messages``) the content assembler."""

    def __init__(self, proxy: Proxy, info: ConnectionInfo, direction: Direction) -> None:
        self.proxy = proxy
        self.info = info
        self.direction = direction
        self.buffer = bytearray()
        self.offset = 0  # stream offset of buffer[0]
        self.skip = 0  # bytes of an oversized frame still to pass over
        self.limit = proxy.max_frame_size
        self.stopped = False
        self.assembler = ContentAssembler(proxy.max_message_size) if proxy.messages else None
        self.starts: dict[int, int] = {}  # channel -> offset of its content method
        self.peer: _Decoding | None = None

    def feed(self, data: bytes) -> None:
        if self.stopped:
            return
        if self.skip:
            passed = min(self.skip, len(data))
            self.skip -= passed
            self.offset += passed
            data = data[passed:]
        buffer = self.buffer
        buffer += data
        pos = 0
        size = len(buffer)
        while size - pos >= 7 and not self.stopped:
            if buffer[pos : pos + 4] == b"AMQP":
                need = 8
            elif buffer[pos] not in _FRAME_TYPES:
                self._error(
                    f"unknown frame type {buffer[pos]} at offset {self.offset + pos}; not"
                    " decoding this direction any further",
                    size - pos,
                    pos,
                )
                self.stopped = True
                break
            else:
                need = int.from_bytes(buffer[pos + 3 : pos + 7], "big") + 8
                if self.limit and need > self.limit:
                    self._error(
                        f"frame of {need} bytes at offset {self.offset + pos} is over the"
                        f" limit of {self.limit}; skipped",
                        need,
                        pos,
                    )
                    passed = min(need, size - pos)
                    pos += passed
                    self.skip = need - passed
                    continue
            if size - pos < need:
                break
            try:
                result = decode_frame(buffer, pos)
            except AMQPError as exc:
                if buffer[pos + need - 1] == _FRAME_END:
                    self._error(f"{exc}; frame skipped", need, pos)
                else:
                    self._error(f"{exc}; not decoding this direction any further", need, pos)
                    self.stopped = True
                pos += need
                continue
            assert result is not None  # the whole frame is in the buffer
            frame, end = result
            self._frame(frame, pos, end)
            pos = end
        del buffer[:pos]
        self.offset += pos
        if self.stopped:
            buffer.clear()

    def _frame(self, frame: Frame, pos: int, end: int) -> None:
        proxy = self.proxy
        stats = proxy.stats
        stats.frames += 1
        offset = self.offset + pos
        if proxy.check:
            stats.checked += 1
            received = bytes(self.buffer[pos:end])
            encoded = frame.encode()
            if encoded != received:
                mismatch = Mismatch(self.info.index, self.direction, offset, received, encoded)
                proxy.report_mismatch(mismatch, self.info)
        if type(frame) is MethodFrame and type(frame.method) is spec.Connection.TuneOk:
            frame_max = frame.method.frame_max
            limit = frame_max + FRAME_MAX_TOLERANCE if frame_max else proxy.max_frame_size
            self.limit = limit
            if self.peer is not None:
                self.peer.limit = limit
        now = time.time()
        if self.assembler is None:
            proxy.emit(FrameRecord(now, self.info, self.direction, frame, offset, end - pos))
            return
        channel = getattr(frame, "channel", 0)
        try:
            result = self.assembler.feed(frame)
        except RemoteProtocolError as exc:
            self.assembler.discard(channel)
            self.starts.pop(channel, None)
            self._error(f"content out of order at offset {offset}: {exc}", 0, pos)
            return
        if result is None:
            self.starts[channel] = offset
        elif isinstance(result, Message):
            start = self.starts.pop(channel, offset)
            proxy.emit(MessageRecord(now, self.info, self.direction, result, start))
        else:
            proxy.emit(FrameRecord(now, self.info, self.direction, result, offset, end - pos))

    def _error(self, message: str, size: int, pos: int) -> None:
        self.proxy.stats.errors += 1
        notice = Notice(
            time.time(),
            self.info,
            self.direction,
            NoticeKind.ERROR,
            self.offset + pos,
            size,
            message,
        )
        self.proxy.emit(notice)

    def finish(self) -> None:
        """The stream ended: say so if it ended inside a frame."""
        left = len(self.buffer) + self.skip
        if left and not self.stopped:
            self.proxy.emit(
                Notice(
                    time.time(),
                    self.info,
                    self.direction,
                    NoticeKind.TRUNCATED,
                    self.offset,
                    left,
                    f"the stream ended inside a frame ({left} bytes)",
                )
            )
        self.buffer.clear()


class Proxy(Listener):
    """A relay from ``listen`` to ``upstream`` that decodes what passes, both ways.

    ``on_record`` receives every record (``FrameRecord``, or ``MessageRecord`` with
    ``messages=True``, and ``Notice`` for errors and mismatches) as it is decoded; by
    default nothing is printed. ``check`` re-encodes every frame and counts mismatches
    (``stats.mismatches``; the first :data:`MAX_MISMATCHES_KEPT` in ``mismatches``).
    Memory per connection is two read buffers plus, per direction, one frame of at most
    ``max_frame_size`` (before tuning; after it, the negotiated frame_max + 8) and, with
    ``messages``, one message of at most ``max_message_size`` per channel in progress.

    Start it with ``async with Proxy(...) as proxy:`` or, for synchronous tests, ``with
    Proxy(...) as proxy:`` (a background thread); ``proxy.port`` is the listening port.
    """

    _KIND = "proxy"

    def __init__(
        self,
        upstream: tuple[str, int],
        listen: tuple[str, int] = ("127.0.0.1", 0),
        *,
        check: bool = False,
        messages: bool = False,
        on_record: Callable[[Record], None] | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_message_size: int = 128 * 1024 * 1024,
    ) -> None:
        super().__init__(*listen)
        self.upstream: tuple[str, int] = upstream
        self.check: bool = check
        self.messages: bool = messages
        self.on_record: Callable[[Record], None] | None = on_record
        self.max_frame_size: int = max_frame_size
        self.max_message_size: int = max_message_size
        self.stats: ProxyStats = ProxyStats()
        self.mismatches: list[Mismatch] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The listening port (the one picked when asked for port 0), once started."""
        return self._port

    # -- records ----------------------------------------------------------------------

    def emit(self, record: Record) -> None:
        if self.on_record is not None:
            self.on_record(record)

    def report_mismatch(self, mismatch: Mismatch, info: ConnectionInfo) -> None:
        self.stats.mismatches += 1
        if len(self.mismatches) < MAX_MISMATCHES_KEPT:
            self.mismatches.append(mismatch)
        where = mismatch.first_difference
        self.emit(
            Notice(
                time.time(),
                info,
                mismatch.direction,
                NoticeKind.ERROR,
                mismatch.offset,
                len(mismatch.received),
                f"check: the frame at offset {mismatch.offset} re-encodes differently"
                f" ({len(mismatch.received)} bytes received, {len(mismatch.encoded)}"
                f" encoded; first difference at byte {where}: received"
                f" {mismatch.received[where : where + 16].hex()}, encoded"
                f" {mismatch.encoded[where : where + 16].hex()})",
            )
        )

    # -- asyncio lifecycle ------------------------------------------------------------

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, self.host, self._port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        await server.wait_closed()

    # -- relaying ---------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        index = self.stats.connections
        self.stats.connections += 1
        peer = writer.get_extra_info("peername") or ("?", 0)
        info = ConnectionInfo(index, Endpoint(str(peer[0]), int(peer[1])), Endpoint(*self.upstream))
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError as exc:
                self.stats.errors += 1
                self.emit(
                    Notice(
                        time.time(),
                        info,
                        Direction.CLIENT_TO_SERVER,
                        NoticeKind.ERROR,
                        0,
                        0,
                        f"cannot connect to the upstream {info.server}: {exc}",
                    )
                )
                return
            c2s = _Decoding(self, info, Direction.CLIENT_TO_SERVER)
            s2c = _Decoding(self, info, Direction.SERVER_TO_CLIENT)
            c2s.peer, s2c.peer = s2c, c2s
            try:
                await asyncio.gather(
                    self._pump(reader, up_writer, c2s), self._pump(up_reader, writer, s2c)
                )
            finally:
                up_writer.close()
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decoding: _Decoding
    ) -> None:
        relayed = self.stats.bytes_relayed
        try:
            while True:
                try:
                    data = await reader.read(READ_SIZE)
                except OSError:
                    data = b""
                if not data:
                    break
                writer.write(data)  # first pass the bytes on, exactly as they came
                relayed[decoding.direction] += len(data)
                decoding.feed(data)
                await writer.drain()
        except OSError:
            pass  # the other side went away; its own pump ends too
        finally:
            decoding.finish()
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
                else:  # pragma: no cover - TCP sockets can
                    writer.close()


# ---------------------------------------------------------------------------------------
# The command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``proxy`` beside ``--listen``/``--upstream``/``--check``: those of
    ``amqpcodec decode`` that make sense for live traffic, with the same meaning."""
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    output.add_argument("--quiet", action="store_true", help="print nothing but findings")
    parser.add_argument(
        "--messages",
        action="store_true",
        help="show assembled messages (method, properties, body) instead of their frames",
    )
    shown = parser.add_argument_group(
        "what to show", "Filters as in 'amqpcodec decode': they combine with 'and'."
    )
    add_selection_arguments(shown)
    shown.add_argument("--direction", choices=("c2s", "s2c"), help="only frames sent that way")
    shown.add_argument(
        "--time",
        choices=TIME_FORMATS,
        default="relative",
        help="relative: seconds since the first record (default); absolute: UTC date and"
        " time; local: in the local zone; delta: seconds since the previous record shown",
    )
    shown.add_argument(
        "--absolute-time",
        action="store_const",
        const="absolute",
        dest="time",
        help="the same as --time absolute",
    )
    shown.add_argument(
        "--body",
        choices=BODY_MODES,
        default="auto",
        help="how bodies are shown: auto (default), text, hex, none",
    )
    shown.add_argument(
        "--show-credentials",
        action="store_true",
        help="show connection.start-ok's response (the password with PLAIN) and"
        " connection.update-secret's secret instead of redacting them",
    )
    parser.add_argument(
        "--preview",
        type=int,
        default=64,
        metavar="BYTES",
        help="body bytes shown in text output (default 64; 0 for none)",
    )


def run(args: argparse.Namespace) -> int:
    """``amqpcodec proxy``: relay and print until interrupted. Exit status 0 when every
    frame decoded (and, with --check, re-encoded to the same bytes); 1 otherwise; 2 when
    the listening address cannot be used."""
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="backslashreplace")
    writer: JSONWriter | TextWriter | None = None
    shown = RecordFilter(
        connections=frozenset(args.connection or ()),
        channels=frozenset(args.channel or ()),
        methods=tuple(args.method or ()),
        direction=Direction(args.direction) if args.direction else None,
    )
    if args.json:
        writer = JSONWriter(out, body=args.body, show_credentials=args.show_credentials, flush=True)
    elif not args.quiet:
        writer = TextWriter(
            out,
            time_format=args.time,
            preview=args.preview,
            body=args.body,
            show_credentials=args.show_credentials,
            flush=True,
        )

    def on_record(record: Record) -> None:
        if not shown.matches(record):
            return
        if writer is not None:
            writer.write(record)
        elif isinstance(record, Notice):
            print(TextWriter(out).format(record), end="", flush=True)

    proxy = Proxy(
        args.upstream,
        args.listen,
        check=args.check,
        messages=args.messages,
        on_record=on_record,
    )
    try:
        asyncio.run(serve_until_signalled(proxy, lambda: _announce(proxy)))
    except OSError as exc:
        print(f"amqpcodec: error: cannot listen on {_address(args.listen)}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    stats = proxy.stats
    print(
        f"amqpcodec proxy: {stats.connections} connections, {stats.frames} frames decoded,"
        f" {stats.checked} checked, {stats.mismatches} mismatches, {stats.errors} errors",
        file=sys.stderr,
    )
    return EXIT_FINDINGS if stats.mismatches or stats.errors else EXIT_OK


def _address(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _announce(proxy: Proxy) -> None:
    print(
        f"amqpcodec proxy: listening on {_address((proxy.host, proxy.port))},"
        f" relaying to {_address(proxy.upstream)}",
        file=sys.stderr,
        flush=True,
    )
