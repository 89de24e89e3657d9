"""``amqpcodec decode FILE``: print, or count, the AMQP frames of a capture.

``decode`` prints the AMQP frames of a pcap/pcapng capture, a hex dump or a raw byte
stream, one line per frame (or per message with ``--messages``, or one JSON object
per line with ``--json``), or counts them (``--summary``). Formatting is in
:mod:`amqpcodec._output`, shared with ``amqpcodec proxy``.

Exit status: 0 when everything decoded (also when the reader of the output went away,
as with ``| head``); 1 when a stream was malformed (what decoded before the bad spot is
printed first); 2 when the input cannot be read at all (not a capture, no such file,
dpkt missing, an unsupported link type, a hex dump whose ``*`` lines stand for too much)
or the command line is wrong; 3 when the capture could be read only in part (the file
is cut short, a packet record is damaged, packets of an unsupported link type were
skipped), what it held decoded (3 wins over 1: the damage may be why a stream broke).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import textwrap
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, Final, TextIO

from ._filter import RecordFilter
from ._frames import BodyFrame, HeaderFrame, HeartbeatFrame, MethodFrame, ProtocolHeader
from ._output import BODY_MODES, JSON_FIELDS, TIME_FORMATS, JSONWriter, Style, TextWriter
from .capture import (
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LISTED_CONNECTIONS,
    DEFAULT_PORTS,
    CaptureError,
    CaptureReader,
    CaptureStats,
    ConnectionInfo,
    Direction,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
)

if TYPE_CHECKING:
    from ._export import Exporter

__all__ = ["add_arguments", "run"]

EXIT_OK: Final = 0
EXIT_MALFORMED: Final = 1
EXIT_UNREADABLE: Final = 2
EXIT_INCOMPLETE: Final = 3

_PROGRESS_FROM: Final = 32 * 1024 * 1024  # show progress for inputs at least this big

DESCRIPTION: Final = textwrap.fill(
    "Print the AMQP 0-9-1 frames in a pcap or pcapng capture (TCP reassembled per"
    " connection and direction), a hex dump (plain hex, or Wireshark's"
    " 'Follow TCP Stream' hex output) or a raw byte stream of one direction."
    " Exit status: 0 decoded, 1 a stream is malformed, 2 the input is unreadable,"
    " 3 the capture could be read only in part."
)
EXAMPLES: Final = """\
examples:
  amqpcodec decode capture.pcap                      every frame, one line each
  amqpcodec decode --messages --body text capture.pcap   whole messages, bodies as text
  amqpcodec decode --connection 1 --method 'basic.*' capture.pcap
  amqpcodec decode --method channel.close --method connection.close capture.pcap
  amqpcodec decode --direction s2c --since 2.5 --until 3 --time delta capture.pcap
  amqpcodec decode --summary capture.pcapng          counts per method, per connection
  amqpcodec decode --json capture.pcap | jq 'select(.method == "basic.nack")'
  amqpcodec decode --export bodies/ capture.pcap     each body into bodies/
  amqpcodec decode --tcp --method 'connection.*' capture.pcap   who closed, and how
  tcpdump -i lo -U -w - port 5672 | amqpcodec decode -   live, a line per frame
"""
EPILOG: Final = EXAMPLES + "\nJSON output (--json):\n" + JSON_FIELDS


def run(args: argparse.Namespace) -> int:
    """Run ``decode`` with parsed arguments; returns the exit status."""
    try:
        return _decode(args)
    except BrokenPipeError:
        # The reader of our output went away (`| head`); say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} is not between 1 and 65535")
    return port


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def add_selection_arguments(shown: argparse._ArgumentGroup) -> None:
    """--connection, --channel and --method, shared by ``decode`` and ``proxy``."""
    shown.add_argument(
        "--connection",
        action="append",
        type=_natural,
        metavar="N",
        help="only connection N (the #N of the output, counted from 0; repeatable)",
    )
    shown.add_argument(
        "--channel",
        action="append",
        type=_natural,
        metavar="N",
        help="only frames on channel N (repeatable); notices stay",
    )
    shown.add_argument(
        "--method",
        action="append",
        metavar="PATTERN",
        help="only methods whose name matches the glob PATTERN, in either spelling:"
        " basic.*, Basic.Publish, channel.close, queue.declare-ok (repeatable)",
    )


def add_arguments(decode: argparse.ArgumentParser) -> None:
    """The options of ``decode``."""
    decode.add_argument("file", metavar="FILE", help="the input file; - reads standard input")
    output = decode.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="one JSON object per line")
    output.add_argument(
        "--summary", action="store_true", help="counts by method and direction instead of frames"
    )
    decode.add_argument(
        "--messages",
        action="store_true",
        help="show assembled messages (method, properties, body) instead of their frames",
    )
    decode.add_argument(
        "--port",
        action="append",
        type=_port,
        metavar="PORT",
        help=f"a TCP port that carries AMQP (repeatable; default {DEFAULT_PORTS[0]}); a"
        " connection on any port is also found by its protocol header",
    )
    decode.add_argument(
        "--format",
        choices=("auto", "pcap", "pcapng", "hex", "raw"),
        default="auto",
        help="the input format (default: recognised from the content)",
    )
    decode.add_argument(
        "--max-frame-size",
        type=int,
        default=DEFAULT_MAX_FRAME_SIZE,
        metavar="BYTES",
        help="largest frame accepted before a connection's tune-ok sets frame_max"
        f" (default {DEFAULT_MAX_FRAME_SIZE})",
    )
    decode.add_argument(
        "--resync",
        action="store_true",
        help="after a malformed frame, skip to the next plausible frame instead of"
        " giving up on that direction",
    )
    shown = decode.add_argument_group(
        "what to show",
        "Filters choose frames (or, with --messages, messages); they combine with 'and',"
        " repeated values of one filter with 'or', and apply to text, --json, --messages"
        " and --summary.",
    )
    add_selection_arguments(shown)
    shown.add_argument(
        "--direction",
        choices=("c2s", "s2c"),
        help="only frames sent that way (client to server, server to client); for a raw"
        " stream, the way it went (default: guessed from the methods in it)",
    )
    shown.add_argument(
        "--since",
        type=float,
        metavar="SECONDS",
        help="only records at or after SECONDS since the first packet",
    )
    shown.add_argument(
        "--until",
        type=float,
        metavar="SECONDS",
        help="only records at or before SECONDS since the first packet",
    )
    shown.add_argument(
        "--time",
        choices=TIME_FORMATS,
        default="relative",
        help="relative: seconds since the first packet (default); absolute: UTC date and"
        " time; local: date and time in the local zone, with its offset; delta: seconds"
        " since the previous record shown",
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
        help="how bodies are shown: auto (default: text when the content type or the bytes"
        " say so, JSON pretty-printed when the content type is JSON, else hex), text, hex,"
        " none (the size only; --json leaves the bytes out)",
    )
    shown.add_argument(
        "--export",
        metavar="DIR",
        help="write each message body to DIR/c<connection>-ch<channel>-<kind>-<tag or"
        " number>.body with its method and properties in a .json beside it (implies"
        " --messages)",
    )
    shown.add_argument(
        "--show-credentials",
        action="store_true",
        help="show connection.start-ok's response (the password with PLAIN) and"
        " connection.update-secret's secret instead of redacting them",
    )
    decode.add_argument(
        "--preview",
        type=int,
        default=64,
        metavar="BYTES",
        help="body bytes shown in text output (default 64; 0 for none)",
    )
    decode.add_argument(
        "--tcp",
        action="store_true",
        help="also show each connection's TCP SYN, FIN and RST (who opened and who closed"
        " the socket, when)",
    )
    decode.add_argument(
        "-l",
        "--line-buffered",
        action="store_true",
        help="flush the output after every record (the default when reading a pipe or"
        " standard input)",
    )


def _decode(args: argparse.Namespace) -> int:
    show_progress = (
        not args.json and sys.stderr.isatty() and (args.summary or not sys.stdout.isatty())
    )
    reader = CaptureReader(
        ports=args.port or DEFAULT_PORTS,
        messages=args.messages or args.export is not None,
        max_frame_size=args.max_frame_size,
        resync_on_error=args.resync,
        tcp_events=args.tcp,
        input_format=args.format,
        direction=args.direction,
        progress=_Progress(sys.stderr) if show_progress else None,
    )
    name = "standard input" if args.file == "-" else args.file
    source: str | IO[bytes] = sys.stdin.buffer if args.file == "-" else args.file
    out = sys.stdout
    if hasattr(out, "reconfigure"):  # a terminal or pipe that cannot show some character
        out.reconfigure(errors="backslashreplace")
    errors: list[Notice] = []
    try:
        chosen = _filter(args)
        records: Iterator[Record] = _watch(reader.read(source), errors)
        stats = reader.stats  # read() starts a new one
        if chosen.active:
            records = chosen.apply(records, lambda: stats.first_time)
        flush = args.line_buffered or _is_pipe(source)
        exporter = None
        if args.export is not None:
            from ._export import Exporter

            try:
                exporter = Exporter(args.export)
            except OSError as exc:
                raise CaptureError(f"cannot write to {args.export!r}: {exc.strerror}") from None
            records = _exporting(records, exporter)
        if args.json:
            json_writer = JSONWriter(
                out, body=args.body, show_credentials=args.show_credentials, flush=flush
            )
            for record in records:
                json_writer.write(record)
        elif args.summary:
            summary = _Summary(reader.max_listed_connections)
            for record in records:
                summary.add(record)
            summary.write(out, name, stats, Style(out), chosen.connections)
        else:
            writer = TextWriter(
                out,
                epoch=lambda: stats.first_time,
                time_format=args.time,
                preview=args.preview,
                body=args.body,
                show_credentials=args.show_credentials,
                flush=flush,
            )
            for record in records:
                writer.write(record)
    except CaptureError as exc:
        out.flush()
        _clear_progress(show_progress)
        print(f"amqpcodec: error: {name}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    out.flush()
    _clear_progress(show_progress)
    for warning in reader.stats.warnings:
        print(f"amqpcodec: warning: {name}: {warning}", file=sys.stderr)
    if not errors:
        return EXIT_INCOMPLETE if reader.stats.incomplete else EXIT_OK
    for notice in errors[:10]:
        where = f"connection {notice.connection}, {notice.direction.value}"
        print(f"amqpcodec: error: {name}: {where}: {notice.message}", file=sys.stderr)
    if len(errors) > 10:
        print(f"amqpcodec: error: {name}: and {len(errors) - 10} more", file=sys.stderr)
    return EXIT_INCOMPLETE if reader.stats.incomplete else EXIT_MALFORMED


def _filter(args: argparse.Namespace) -> RecordFilter:
    return RecordFilter(
        connections=frozenset(args.connection or ()),
        channels=frozenset(args.channel or ()),
        methods=tuple(args.method or ()),
        direction=Direction(args.direction) if args.direction else None,
        since=args.since,
        until=args.until,
    )


def _exporting(records: Iterator[Record], exporter: Exporter) -> Iterator[Record]:
    for record in records:
        if isinstance(record, MessageRecord):
            try:
                exporter.write(record)
            except OSError as exc:
                raise CaptureError(f"cannot export a message: {exc}") from None
        yield record


def _is_pipe(source: str | IO[bytes]) -> bool:
    """Whether the input is a pipe or standard input, which may be a live capture
    (``tcpdump -U -w - | amqpcodec decode -``): then each record is flushed."""
    if not isinstance(source, str):
        return True
    try:
        return stat.S_ISFIFO(os.stat(source).st_mode)
    except OSError:
        return False


def _watch(records: Iterator[Record], errors: list[Notice]) -> Iterator[Record]:
    for record in records:
        if isinstance(record, Notice) and record.kind is NoticeKind.ERROR:
            errors.append(record)
        yield record


class _Progress:
    """``decoding: 45% (90.0 of 200.0 MB)`` on one line of a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def __call__(self, done: int, total: int | None) -> None:
        if total is None or total < _PROGRESS_FROM:
            return
        mb = 1024 * 1024
        percent = 100 * done // total
        self.stream.write(f"\rdecoding: {percent:3d}% ({done / mb:.1f} of {total / mb:.1f} MB)")
        self.stream.flush()
        self.shown = True


def _clear_progress(shown: bool) -> None:
    if shown:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


# ---------------------------------------------------------------------------------------
# Summary


class _Summary:
    """Counts by frame kind or method and by direction, in order of first appearance.

    ``add`` keeps one counter per (connection, direction, row) and one byte count per
    (connection, direction), in order of first appearance; ``write`` derives the tables
    from them (the per-record work is two dictionary updates). Memory: the counters of
    the connections the reader lists (``listed``: its ``max_listed_connections``); the
    records of later connections count in the totals only."""

    def __init__(self, listed: int = DEFAULT_MAX_LISTED_CONNECTIONS) -> None:
        self.listed = listed
        self.counts: dict[tuple[int, Direction, str], int] = {}
        self.sizes: dict[tuple[int, Direction], int] = {}
        self.messages = 0
        self.notices: dict[NoticeKind, list[int]] = {}
        # Derived by _tally() (also settable, as a test does for _table):
        self.rows: dict[str, dict[Direction, int]] = {}
        self.frames: dict[Direction, int] = {}
        self.bytes: dict[Direction, int] = {}
        self.per_connection: dict[int, dict[Direction, int]] = {}
        self.per_method: dict[int, dict[str, dict[Direction, int]]] = {}
        self.per_bytes: dict[int, dict[Direction, int]] = {}

    def add(self, record: Record) -> None:
        if isinstance(record, FrameRecord):
            frame: Any = record.frame
            name = _ROW_NAMES.get(frame.__class__)
            if name is _METHOD_ROW:
                name = frame.method.__class__.__qualname__
            elif name is None:
                name = _row_name(record)  # a subclass of a frame class
            index = record.connection.index
            if index >= self.listed:
                index = _UNLISTED
            key = (index, record.direction, name)
            counts = self.counts
            counts[key] = counts.get(key, 0) + 1
            place = (index, record.direction)
            sizes = self.sizes
            sizes[place] = sizes.get(place, 0) + record.size
        elif isinstance(record, Notice):
            counts_size = self.notices.setdefault(record.kind, [0, 0])
            counts_size[0] += 1
            counts_size[1] += record.size
        else:
            name = f"Message {type(record.message.method).__qualname__}"
            self.messages += 1
            index = record.connection.index
            key = (index if index < self.listed else _UNLISTED, record.direction, name)
            self.counts[key] = self.counts.get(key, 0) + 1

    def _tally(self) -> None:
        """The tables ``write`` prints, from the counters."""
        for (index, direction, name), count in self.counts.items():
            listed = index != _UNLISTED
            for rows in (self.rows, self.per_method.setdefault(index, {}) if listed else {}):
                row = rows.setdefault(name, {})
                row[direction] = row.get(direction, 0) + count
            if not name.startswith("Message "):
                if listed:
                    per = self.per_connection.setdefault(index, {})
                    per[direction] = per.get(direction, 0) + count
                self.frames[direction] = self.frames.get(direction, 0) + count
        for (index, direction), size in self.sizes.items():
            self.bytes[direction] = self.bytes.get(direction, 0) + size
            if index != _UNLISTED:
                sizes = self.per_bytes.setdefault(index, {})
                sizes[direction] = sizes.get(direction, 0) + size

    def write(
        self,
        out: TextIO,
        name: str,
        stats: CaptureStats,
        style: Style,
        only: frozenset[int] = frozenset(),
    ) -> None:
        self._tally()
        packets = ""
        if stats.format in ("pcap", "pcapng"):
            packets = f", {stats.packets} packets ({stats.ignored_packets} not AMQP)"
        frames = sum(self.frames.values())
        out.write(f"{name}: {stats.format}{packets}\n")
        count = (
            len([c for c in stats.connections if c.index in only])
            if only
            else max(stats.connection_count, len(stats.connections))
        )
        out.write(
            f"connections: {count}"
            f", frames: {frames}" + (f", messages: {self.messages}" if self.messages else "") + "\n"
        )
        for info in stats.connections:
            if only and info.index not in only:
                continue
            out.write(
                f"  {_connection_line(info, self.per_connection.get(info.index, {}), style)}\n"
            )
        unlisted = stats.connection_count - len(stats.connections)
        if unlisted > 0 and not only:
            out.write(f"  and {unlisted} more, not listed (max_listed_connections)\n")
        directions = [d for d in Direction if any(d in row for row in self.rows.values())]
        if directions:
            self._table(out, self.rows, self.bytes, directions, style)
        if len(self.per_method) > 1:
            for index, rows in self.per_method.items():
                out.write(f"\nconnection #{index}:")
                self._table(out, rows, self.per_bytes.get(index, {}), directions, style)
        if self.notices:
            out.write("\n")
            for kind, (count, size) in self.notices.items():
                label, unit = _NOTICE_LABELS.get(kind, (kind.value, ""))
                extra = f" ({size} bytes {unit})" if unit else ""
                out.write(f"  {label}: {count}{extra}\n")

    @staticmethod
    def _table(
        out: TextIO,
        rows: dict[str, dict[Direction, int]],
        sizes: dict[Direction, int],
        directions: list[Direction],
        style: Style,
    ) -> None:
        # Columns as wide as their widest figure, at least two spaces apart, so that
        # numbers of any size never run together.
        width = max(len(key) for key in [*rows, "frame bytes"])
        heads = [style.arrow(d).strip() for d in directions]
        cells = max(
            [len(head) for head in heads]
            + [len(str(n)) for row in rows.values() for n in row.values()]
            + [len(str(n)) for n in sizes.values()]
        )
        out.write(f"\n  {'':<{width}}" + "".join(f"  {head:>{cells}}" for head in heads) + "\n")
        for key, row in rows.items():
            figures = "".join(f"  {row.get(d, 0):>{cells}}" for d in directions)
            out.write(f"  {key:<{width}}{figures}\n")
        totals = "".join(f"  {sizes.get(d, 0):>{cells}}" for d in directions)
        out.write(f"  {'frame bytes':<{width}}{totals}\n")


_NOTICE_LABELS: Final = {
    NoticeKind.GAP: ("gaps in the capture", "missing"),
    NoticeKind.SKIPPED: ("resynchronisations", "skipped"),
    NoticeKind.TRUNCATED: ("streams ending inside a frame", "left over"),
    NoticeKind.TCP: ("TCP SYN, FIN and RST", ""),
    NoticeKind.EVICTED: ("connections dropped over the memory budget", "held"),
    NoticeKind.ERROR: ("errors", ""),
}


def _connection_line(info: ConnectionInfo, frames: dict[Direction, int], style: Style) -> str:
    counts = ", ".join(f"{style.arrow(d)} {n}" for d, n in frames.items())
    return f"{info}: {counts or 'no frames'}"


_UNLISTED: Final = -1  # the summary's counters of connections the reader does not list
_METHOD_ROW: Final = "method"
_ROW_NAMES: Final[dict[type, str]] = {
    MethodFrame: _METHOD_ROW,
    HeaderFrame: "Content header",
    BodyFrame: "Content body",
    HeartbeatFrame: "Heartbeat",
    ProtocolHeader: "Protocol header",
}


def _row_name(record: FrameRecord) -> str:
    frame = record.frame
    if isinstance(frame, MethodFrame):
        return type(frame.method).__qualname__
    if isinstance(frame, HeaderFrame):
        return "Content header"
    if isinstance(frame, BodyFrame):
        return "Content body"
    if isinstance(frame, HeartbeatFrame):
        return "Heartbeat"
    return "Protocol header"
