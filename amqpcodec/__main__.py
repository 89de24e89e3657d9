"""The command line: ``amqpcodec decode FILE`` (the same as ``python -m amqpcodec decode``).

``decode`` prints the AMQP frames of a pcap/pcapng capture, a hex dump or a raw byte
stream, one line per frame (or per message with ``--messages``, or one JSON object
per line with ``--json``), or counts them (``--summary``).

Exit status: 0 when everything decoded; 1 when a stream was malformed (what decoded
before the bad spot is printed first); 2 when the input cannot be read at all (not a
capture, no such file, dpkt missing) or the command line is wrong.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import decimal
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, Final, TextIO

from ._base import Method, Properties
from ._frames import BodyFrame, HeaderFrame, HeartbeatFrame, MethodFrame, ProtocolHeader
from .capture import (
    DEFAULT_MAX_FRAME_SIZE,
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

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_MALFORMED: Final = 1
EXIT_UNREADABLE: Final = 2

_PROGRESS_FROM: Final = 32 * 1024 * 1024  # show progress for inputs at least this big
_TEXT_LIMIT: Final = 100  # characters of a string value shown in text output


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "decode":
        try:
            return _decode(args)
        except BrokenPipeError:
            # The reader of our output went away (`| head`); say nothing more.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_MALFORMED
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse stops first
    return EXIT_UNREADABLE  # pragma: no cover


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port {port} is not between 1 and 65535")
    return port


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amqpcodec", description="AMQP 0-9-1 wire-protocol tools."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    decode = commands.add_parser(
        "decode",
        help="print the AMQP frames in a capture, hex dump or raw byte stream",
        description=(
            "Print the AMQP 0-9-1 frames in a pcap or pcapng capture (TCP reassembled per"
            " connection and direction), a hex dump (plain hex, or Wireshark's"
            " 'Follow TCP Stream' hex output) or a raw byte stream of one direction."
            " Exit status: 0 decoded, 1 a stream is malformed, 2 the input is unreadable."
        ),
    )
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
        "--direction",
        choices=("c2s", "s2c"),
        help="which way a raw stream went (default: guessed from the methods in it)",
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
    decode.add_argument(
        "--absolute-time",
        action="store_true",
        help="show capture timestamps as UTC date and time instead of seconds since the"
        " first packet",
    )
    decode.add_argument(
        "--preview",
        type=int,
        default=64,
        metavar="BYTES",
        help="body bytes shown in text output (default 64; 0 for none)",
    )
    return parser


def _decode(args: argparse.Namespace) -> int:
    show_progress = (
        not args.json and sys.stderr.isatty() and (args.summary or not sys.stdout.isatty())
    )
    reader = CaptureReader(
        ports=args.port or DEFAULT_PORTS,
        messages=args.messages,
        max_frame_size=args.max_frame_size,
        resync_on_error=args.resync,
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
        records = _watch(reader.read(source), errors)
        if args.json:
            for record in records:
                out.write(json.dumps(_json_record(record), ensure_ascii=False) + "\n")
        elif args.summary:
            summary = _Summary()
            for record in records:
                summary.add(record)
            summary.write(out, name, reader.stats, _Style(out))
        else:
            _write_text(records, out, reader.stats, args)
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
        return EXIT_OK
    for notice in errors[:10]:
        where = f"connection {notice.connection}, {notice.direction.value}"
        print(f"amqpcodec: error: {name}: {where}: {notice.message}", file=sys.stderr)
    if len(errors) > 10:
        print(f"amqpcodec: error: {name}: and {len(errors) - 10} more", file=sys.stderr)
    return EXIT_MALFORMED


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
# Text


class _Style:
    """Arrows and ellipses in Unicode when the output can show them, else in ASCII."""

    def __init__(self, stream: TextIO) -> None:
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "→…".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            self.unicode = False
        else:
            self.unicode = True
        self.more = "…" if self.unicode else "..."

    def arrow(self, direction: Direction) -> str:
        return direction.arrow if self.unicode else direction.ascii_arrow


def _write_text(
    records: Iterator[Record], out: TextIO, stats: CaptureStats, args: argparse.Namespace
) -> None:
    style = _Style(out)
    seen: set[int] = set()
    write = out.write
    for record in records:
        connection = record.connection
        if connection.index not in seen:
            seen.add(connection.index)
            if connection.client is not None:
                write(
                    f"# connection #{connection.index}: client {connection.client},"
                    f" server {connection.server}\n"
                )
        stamp = _time(record.time, stats, args.absolute_time)
        arrow = style.arrow(record.direction)
        if isinstance(record, FrameRecord):
            channel = "" if isinstance(record.frame, ProtocolHeader) else f"ch{record.channel}"
            text = _frame_text(record, style, args.preview)
        elif isinstance(record, MessageRecord):
            channel = f"ch{record.channel}"
            text = _message_text(record, style, args.preview)
        else:
            channel = ""
            text = _notice_text(record)
        write(f"{stamp} #{connection.index} {arrow} {channel:<5} {text}\n")


def _time(value: float | None, stats: CaptureStats, absolute: bool) -> str:
    if value is None:
        return " " * 9 + "-"
    if absolute:
        moment = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"{value - (stats.first_time or 0.0):10.6f}"


def _frame_text(record: FrameRecord, style: _Style, preview: int) -> str:
    frame = record.frame
    if isinstance(frame, MethodFrame):
        return _method_text(frame.method, style)
    if isinstance(frame, HeaderFrame):
        props = _properties_text(frame.properties, style)
        return f"Content header: body_size={frame.body_size}" + (f", {props}" if props else "")
    if isinstance(frame, BodyFrame):
        return "Content body: " + _body_text(frame.payload, style, preview)
    if isinstance(frame, HeartbeatFrame):
        return "Heartbeat"
    assert isinstance(frame, ProtocolHeader)
    name = f"AMQP {frame.major}-{frame.minor}-{frame.revision}"
    if frame.protocol_id:
        name += f" (protocol id {frame.protocol_id})"
    return f"Protocol header {name}"


def _message_text(record: MessageRecord, style: _Style, preview: int) -> str:
    message = record.message
    text = _method_text(message.method, style)
    props = _properties_text(message.properties, style)
    if props:
        text += f" | {props}"
    return f"{text} | body: {_body_text(message.body, style, preview)}"


def _notice_text(notice: Notice) -> str:
    if notice.kind is NoticeKind.ERROR:
        return f"!! {notice.message}"
    return f"** {notice.message}"


def _method_text(method: Method, style: _Style) -> str:
    arguments = ", ".join(
        f"{name}={_value(getattr(method, name), style)}"
        for name in method.FIELDS
        if name not in method.RESERVED or getattr(method, name)
    )
    return f"{type(method).__qualname__}({arguments})"


def _properties_text(properties: Properties, style: _Style) -> str:
    parts = []
    for name, kind in zip(properties.FIELDS, properties.FIELD_TYPES, strict=True):
        value = getattr(properties, name)
        if value is None:
            continue
        text = _value(value, style)
        if kind == "timestamp" and isinstance(value, int):
            text += f" ({_utc(value)})"
        parts.append(f"{name}={text}")
    return ", ".join(parts)


def _utc(seconds: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _body_text(body: bytes | bytearray | memoryview, style: _Style, preview: int) -> str:
    size = len(body)
    text = f"{size} byte{'' if size == 1 else 's'}"
    if preview <= 0 or not size:
        return text
    shown = repr(bytes(body[:preview]))
    return f"{text} {shown}{style.more if size > preview else ''}"


def _value(value: Any, style: _Style) -> str:
    if isinstance(value, str):
        if len(value) > _TEXT_LIMIT:
            return repr(value[:_TEXT_LIMIT]) + style.more
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) > _TEXT_LIMIT:
            return repr(data[:_TEXT_LIMIT]) + style.more
        return repr(data)
    if isinstance(value, Mapping):
        items = ", ".join(f"{key!r}: {_value(item, style)}" for key, item in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item, style) for item in value) + "]"
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return repr(value)


# ---------------------------------------------------------------------------------------
# JSON


def _json_record(record: Record) -> dict[str, Any]:
    connection = record.connection
    data: dict[str, Any] = {
        "time": record.time,
        "connection": connection.index,
        "client": str(connection.client) if connection.client else None,
        "server": str(connection.server) if connection.server else None,
        "direction": record.direction.value,
        "offset": record.offset,
    }
    if isinstance(record, FrameRecord):
        data["size"] = record.size
        data.update(_json_frame(record))
    elif isinstance(record, MessageRecord):
        message = record.message
        data["type"] = "message"
        data["channel"] = message.channel
        data.update(_json_method(message.method))
        data["properties"] = _json_properties(message.properties)
        data["body_size"] = len(message.body)
        data["body_base64"] = base64.b64encode(message.body).decode("ascii")
    else:
        data["type"] = "notice"
        data["kind"] = record.kind.value
        data["size"] = record.size
        data["message"] = record.message
    return data


def _json_frame(record: FrameRecord) -> dict[str, Any]:
    frame = record.frame
    if isinstance(frame, MethodFrame):
        return {"type": "method", "channel": frame.channel, **_json_method(frame.method)}
    if isinstance(frame, HeaderFrame):
        return {
            "type": "header",
            "channel": frame.channel,
            "class_id": frame.class_id,
            "body_size": frame.body_size,
            "properties": _json_properties(frame.properties),
        }
    if isinstance(frame, BodyFrame):
        payload = bytes(frame.payload)
        return {
            "type": "body",
            "channel": frame.channel,
            "payload_size": len(payload),
            "payload_base64": base64.b64encode(payload).decode("ascii"),
        }
    if isinstance(frame, HeartbeatFrame):
        return {"type": "heartbeat", "channel": 0}
    assert isinstance(frame, ProtocolHeader)
    return {
        "type": "protocol-header",
        "protocol_id": frame.protocol_id,
        "major": frame.major,
        "minor": frame.minor,
        "revision": frame.revision,
    }


def _json_method(method: Method) -> dict[str, Any]:
    return {
        "method": method.NAME,
        "class_id": method.CLASS_ID,
        "method_id": method.METHOD_ID,
        "arguments": {name: _jsonable(getattr(method, name)) for name in method.FIELDS},
    }


def _json_properties(properties: Properties) -> dict[str, Any]:
    return {
        name: _jsonable(getattr(properties, name))
        for name in properties.FIELDS
        if getattr(properties, name) is not None
    }


def _jsonable(value: Any) -> Any:
    """A JSON value for an AMQP value: tables become objects, arrays lists; Decimal a
    string (exact); timestamps ISO 8601; bytes a string when they are UTF-8, else
    ``{"base64": ...}``; non-finite floats strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(data).decode("ascii")}
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return repr(value)


# ---------------------------------------------------------------------------------------
# Summary


class _Summary:
    """Counts by frame kind or method and by direction, in order of first appearance."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[Direction, int]] = {}
        self.frames: dict[Direction, int] = {}
        self.bytes: dict[Direction, int] = {}
        self.messages = 0
        self.notices: dict[NoticeKind, list[int]] = {}
        self.per_connection: dict[int, dict[Direction, int]] = {}

    def add(self, record: Record) -> None:
        direction = record.direction
        if isinstance(record, Notice):
            counts = self.notices.setdefault(record.kind, [0, 0])
            counts[0] += 1
            counts[1] += record.size
            return
        if isinstance(record, FrameRecord):
            key = _row_name(record)
            self.frames[direction] = self.frames.get(direction, 0) + 1
            self.bytes[direction] = self.bytes.get(direction, 0) + record.size
            per = self.per_connection.setdefault(record.connection.index, {})
            per[direction] = per.get(direction, 0) + 1
        else:
            key = f"Message {type(record.message.method).__qualname__}"
            self.messages += 1
            per = self.per_connection.setdefault(record.connection.index, {})
        row = self.rows.setdefault(key, {})
        row[direction] = row.get(direction, 0) + 1

    def write(self, out: TextIO, name: str, stats: CaptureStats, style: _Style) -> None:
        packets = ""
        if stats.format in ("pcap", "pcapng"):
            packets = f", {stats.packets} packets ({stats.ignored_packets} not AMQP)"
        frames = sum(self.frames.values())
        out.write(f"{name}: {stats.format}{packets}\n")
        out.write(
            f"connections: {len(stats.connections)}, frames: {frames}"
            + (f", messages: {self.messages}" if self.messages else "")
            + "\n"
        )
        for info in stats.connections:
            out.write(
                f"  {_connection_line(info, self.per_connection.get(info.index, {}), style)}\n"
            )
        directions = [d for d in Direction if any(d in row for row in self.rows.values())]
        if directions:
            width = max(len(key) for key in self.rows)
            heads = "".join(f"{style.arrow(d):>8}" for d in directions)
            out.write(f"\n  {'':<{width}}{heads}\n")
            for key, row in self.rows.items():
                cells = "".join(f"{row.get(d, 0):>8}" for d in directions)
                out.write(f"  {key:<{width}}{cells}\n")
            totals = "".join(f"{self.bytes.get(d, 0):>8}" for d in directions)
            out.write(f"  {'frame bytes':<{width}}{totals}\n")
        if self.notices:
            out.write("\n")
            for kind, (count, size) in self.notices.items():
                label, unit = _NOTICE_LABELS[kind]
                extra = f" ({size} bytes {unit})" if unit else ""
                out.write(f"  {label}: {count}{extra}\n")


_NOTICE_LABELS: Final = {
    NoticeKind.GAP: ("gaps in the capture", "missing"),
    NoticeKind.SKIPPED: ("resynchronisations", "skipped"),
    NoticeKind.TRUNCATED: ("streams ending inside a frame", "left over"),
    NoticeKind.ERROR: ("errors", ""),
}


def _connection_line(info: ConnectionInfo, frames: dict[Direction, int], style: _Style) -> str:
    counts = ", ".join(f"{style.arrow(d)} {n}" for d, n in frames.items())
    return f"{info}: {counts or 'no frames'}"


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


if __name__ == "__main__":
    sys.exit(main())
