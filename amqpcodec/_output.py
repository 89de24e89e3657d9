"""How records are shown: one line of text, or one JSON object, per record.

``amqpcodec decode`` and ``amqpcodec proxy`` print with these writers so that both
tools show a frame the same way. A writer takes :mod:`amqpcodec.capture` records
(``FrameRecord``, ``MessageRecord``, ``Notice``); a tool that is not reading a capture
builds them itself (``FrameRecord(time, ConnectionInfo(index), direction, frame,
offset, size)``).

``JSON_FIELDS`` describes every key of the JSON form; ``decode --help`` prints it.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import io
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO

from ._base import Method, Properties
from ._frames import BodyFrame, HeaderFrame, HeartbeatFrame, MethodFrame, ProtocolHeader
from .capture import (
    ConnectionInfo,
    Direction,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
)

__all__ = [
    "JSON_FIELDS",
    "JSONWriter",
    "Style",
    "TextWriter",
    "json_record",
    "jsonable",
]

TEXT_LIMIT: Final = 100  # characters of a string value shown in text output


class Style:
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
        self.arrows = {d: d.arrow if self.unicode else d.ascii_arrow for d in Direction}

    def arrow(self, direction: Direction) -> str:
        return self.arrows[direction]


# ---------------------------------------------------------------------------------------
# Text


TIME_FORMATS: Final = ("relative", "absolute", "local", "delta")
BODY_MODES: Final = ("auto", "text", "hex", "none")

# Fields that carry credentials, shown only with show_credentials: the SASL response
# (PLAIN holds the password) and the OAuth token of connection.update-secret.
CREDENTIALS: Final[dict[tuple[int, int], tuple[str, ...]]] = {
    (10, 11): ("response",),
    (10, 70): ("new_secret",),
}
_JSON_BODY_LIMIT: Final = 64 * 1024  # larger JSON bodies are not pretty-printed


class TextWriter:
    """Writes one line per record to ``out`` (a pretty-printed JSON body adds lines).

    - ``time_format``: ``relative`` seconds since ``epoch()`` (the capture's first
      packet; by default the first record written), ``absolute`` UTC date and time,
      ``local`` date and time in the local zone with its offset, ``delta`` seconds
      since the previous record written.
    - ``preview``: body bytes shown (0 for none).
    - ``body``: ``auto`` (text when the content type or the bytes say so, JSON
      pretty-printed when the content type is JSON, else hex), ``text``, ``hex``,
      ``none`` (the size only).
    - ``show_credentials``: show connection.start-ok's response and
      connection.update-secret's secret instead of ``<redacted N bytes>``.
    - ``flush``: flush ``out`` after every record (a pipe, a live capture).

    The packet number (``[12]``, the capture's frame number as Wireshark counts) leads
    the text when the record has one. Memory: the content type and bytes left of each
    content in progress (one entry per connection, direction and channel with a body
    under way) and the number of each connection introduced so far.
    """

    def __init__(
        self,
        out: TextIO,
        *,
        epoch: Callable[[], float | None] | None = None,
        absolute: bool = False,
        time_format: str = "relative",
        preview: int = 64,
        body: str = "auto",
        show_credentials: bool = False,
        flush: bool = False,
    ) -> None:
        if time_format not in TIME_FORMATS:
            raise ValueError(f"unknown time format {time_format!r}")
        if body not in BODY_MODES:
            raise ValueError(f"unknown body mode {body!r}")
        self.out = out
        self.style = Style(out)
        self.epoch = epoch
        self.time_format = "absolute" if absolute else time_format
        self.preview = preview
        self.body = body
        self.show_credentials = show_credentials
        self.flush = flush
        self._first: float | None = None
        self._previous: float | None = None
        # Connections already introduced: an int each (the reader keeps more per connection).
        self._seen: set[int] = set()
        self._contents: dict[tuple[int, Direction, int], tuple[str | None, int]] = {}

    def write(self, record: Record) -> None:
        self.out.write(self.format(record))
        if self.flush:
            self.out.flush()

    def format(self, record: Record) -> str:
        """The line(s) for ``record``, each ending in a newline."""
        lines = ""
        connection = record.connection
        if connection.index not in self._seen:
            self._seen.add(connection.index)
            if connection.client is not None:
                lines += (
                    f"# connection #{connection.index}: client {connection.client},"
                    f" server {connection.server}\n"
                )
        style = self.style
        time = record.time
        if self.time_format == "relative" and time is not None:
            epoch = self.epoch() if self.epoch is not None else None
            if epoch is None:
                if self._first is None:
                    self._first = time
                epoch = self._first
            stamp = f"{time - epoch:10.6f}"
        else:
            stamp = self._time(time)
        arrow = style.arrows[record.direction]
        extra: list[str] = []
        if isinstance(record, FrameRecord):
            frame = record.frame
            cls = frame.__class__
            if cls is MethodFrame:
                channel = f"ch{frame.channel}"  # type: ignore[union-attr]
            elif cls is ProtocolHeader or isinstance(frame, ProtocolHeader):
                channel = ""
            else:
                channel = f"ch{record.channel}"
            text = self._frame(record, extra)
            if record.truncated:
                text += " (truncated: the capture holds only its start)"
        elif isinstance(record, MessageRecord):
            channel = f"ch{record.channel}"
            message = record.message
            text = method_text(message.method, style, self.show_credentials)
            props = properties_text(message.properties, style)
            if record.missing is None:
                text += " | properties not captured"
            elif props:
                text += f" | {props}"
            whole = not record.partial
            shown = self._body(message.body, _content_type(message.properties), whole, extra)
            text += f" | body: {shown}"
            if record.partial:
                # A gap cut through the message: what is there, and what is not.
                lost = "an unknown number of" if record.missing is None else record.missing
                text += f" present, {lost} bytes missing (partial)"
        else:
            channel = ""
            text = notice_text(record)
        packet = record.packet
        number = f"[{packet}] " if packet is not None else ""
        line = f"{stamp} #{connection.index} {arrow} {channel:<5} {number}{text}\n"
        if extra:
            line += "".join(f"      {item}\n" for item in extra)
        return lines + line if lines else line

    def _frame(self, record: FrameRecord, extra: list[str]) -> str:
        frame = record.frame
        style = self.style
        if isinstance(frame, MethodFrame):
            return method_text(frame.method, style, self.show_credentials)
        key = (record.connection.index, record.direction, getattr(frame, "channel", 0))
        if isinstance(frame, HeaderFrame):
            # Held while the body is in progress (bounded by the contents in progress;
            # gone when the body is complete, or replaced by the next header).
            if frame.body_size:
                self._contents[key] = (_content_type(frame.properties), frame.body_size)
            else:
                self._contents.pop(key, None)
            props = properties_text(frame.properties, style)
            return f"Content header: body_size={frame.body_size}" + (f", {props}" if props else "")
        if isinstance(frame, BodyFrame):
            content_type, left = self._contents.pop(key, (None, 0))
            left -= len(frame.payload)
            if left > 0:
                self._contents[key] = (content_type, left)
            return "Content body: " + self._body(frame.payload, content_type, False, extra)
        if isinstance(frame, HeartbeatFrame):
            return "Heartbeat"
        assert isinstance(frame, ProtocolHeader)
        name = f"AMQP {frame.major}-{frame.minor}-{frame.revision}"
        if frame.protocol_id:
            name += f" (protocol id {frame.protocol_id})"
        return f"Protocol header {name}"

    def _body(
        self,
        body: bytes | bytearray | memoryview,
        content_type: str | None,
        whole: bool,
        extra: list[str],
    ) -> str:
        return body_text(body, self.style, self.preview, self.body, content_type, whole, extra)

    def _time(self, value: float | None) -> str:
        if value is None:
            return " " * 9 + "-"
        if self.time_format == "absolute":
            moment = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
            return moment.strftime("%Y-%m-%d %H:%M:%S.%fZ")
        if self.time_format == "local":
            moment = datetime.datetime.fromtimestamp(value).astimezone()
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f%z")
        if self.time_format == "delta":
            previous = self._previous if self._previous is not None else value
            self._previous = value
            return f"{value - previous:10.6f}"
        epoch = self.epoch() if self.epoch is not None else None
        if epoch is None:
            if self._first is None:
                self._first = value
            epoch = self._first
        return f"{value - epoch:10.6f}"


def _content_type(properties: Properties) -> str | None:
    value = getattr(properties, "content_type", None)
    return value if isinstance(value, str) else None


def frame_text(record: FrameRecord, style: Style, preview: int) -> str:
    """One frame as text, without the time and connection columns."""
    writer = TextWriter(io.StringIO(), preview=preview)
    writer.style = style
    return writer._frame(record, [])


def notice_text(notice: Notice) -> str:
    if notice.kind is NoticeKind.ERROR:
        return f"!! {notice.message}"
    return f"** {notice.message}"


def method_text(method: Method, style: Style, show_credentials: bool = False) -> str:
    layout = _METHOD_LAYOUTS.get(method.__class__)
    if layout is None:
        layout = _method_layout(method)
    name, fields, secret = layout
    hidden = () if show_credentials else secret
    parts = []
    for field, reserved in fields:
        value = getattr(method, field)
        if reserved and not value:
            continue
        parts.append(f"{field}={_field_text(value, style, field in hidden)}")
    return f"{name}({', '.join(parts)})"


# Per method class: its name, its fields with whether each is reserved, and the fields
# that carry credentials. One entry per method class (bounded by the spec).
_METHOD_LAYOUTS: dict[type, tuple[str, tuple[tuple[str, bool], ...], tuple[str, ...]]] = {}


def _method_layout(method: Method) -> tuple[str, tuple[tuple[str, bool], ...], tuple[str, ...]]:
    cls = type(method)
    fields = tuple((name, name in method.RESERVED) for name in method.FIELDS)
    layout = (cls.__qualname__, fields, CREDENTIALS.get((method.CLASS_ID, method.METHOD_ID), ()))
    _METHOD_LAYOUTS[cls] = layout
    return layout


def _field_text(value: Any, style: Style, hidden: bool) -> str:
    if hidden:
        return f"<redacted {_size(value)} bytes>"
    return value_text(value, style)


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogateescape"))
    return len(value) if isinstance(value, (bytes, bytearray, memoryview)) else 0


def properties_text(properties: Properties, style: Style) -> str:
    parts = []
    for name, stamp in _properties_layout(properties):
        value = getattr(properties, name)
        if value is None:
            continue
        text = value_text(value, style)
        if stamp and isinstance(value, int):
            text += f" ({_utc(value)})"
        parts.append(f"{name}={text}")
    return ", ".join(parts)


# Per properties class: its fields, with whether each is a timestamp.
_PROPERTIES_LAYOUTS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _properties_layout(properties: Properties) -> tuple[tuple[str, bool], ...]:
    layout = _PROPERTIES_LAYOUTS.get(properties.__class__)
    if layout is None:
        layout = tuple(
            (name, kind == "timestamp")
            for name, kind in zip(properties.FIELDS, properties.FIELD_TYPES, strict=True)
        )
        _PROPERTIES_LAYOUTS[properties.__class__] = layout
    return layout


def _utc(seconds: int) -> str:
    try:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return "out of range"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def body_text(
    body: bytes | bytearray | memoryview,
    style: Style,
    preview: int,
    mode: str = "auto",
    content_type: str | None = None,
    whole: bool = True,
    extra: list[str] | None = None,
) -> str:
    """``18 bytes '{"hello": ...}'``: the size, then up to ``preview`` bytes as text
    (a string literal), hex, or (``auto``) whichever the content type or the bytes call
    for. In ``auto`` mode a whole JSON body goes pretty-printed into ``extra``."""
    size = len(body)
    text = f"{size} byte{'' if size == 1 else 's'}"
    if mode == "none" or preview <= 0 or not size:
        return text
    head = bytes(body[:preview])
    more = style.more if size > preview else ""
    kind = mode
    if mode == "auto":
        kind = _body_kind(body, content_type)
        if kind == "json" and whole and extra is not None and size <= _JSON_BODY_LIMIT:
            try:
                value = json.loads(bytes(body))
            except ValueError:
                kind = "text"
            else:
                extra.extend(json.dumps(value, indent=2, ensure_ascii=False).splitlines())
                return f"{text} (JSON)"
        if kind == "json":
            kind = "text"
    if kind == "text":
        shown = head.decode("utf-8", "backslashreplace")
        return f"{text} {shown!r}{more}"
    return f"{text} {head.hex(' ')}{more}"


_TEXT_TYPES: Final = ("text/", "application/xml", "application/x-www-form-urlencoded")


def _body_kind(body: bytes | bytearray | memoryview, content_type: str | None) -> str:
    """``json``, ``text`` or ``hex`` for a body, by its content type, else its bytes."""
    if content_type is not None:
        media = content_type.split(";", 1)[0].strip().lower()
        if media == "application/json" or media.endswith("+json"):
            return "json"
        if media.startswith(_TEXT_TYPES) or media.endswith("+xml"):
            return "text"
    sample = bytes(body[:512])
    try:
        decoded = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the sample's end
            return "hex"
        decoded = sample[: exc.start].decode("utf-8")
    if all(ch.isprintable() or ch in "\t\r\n" for ch in decoded):
        return "text"
    return "hex"


def value_text(value: Any, style: Style) -> str:
    cls = value.__class__
    if cls is str and value.isascii():  # the common case of the isinstance chain below
        if len(value) > TEXT_LIMIT:
            return repr(value[:TEXT_LIMIT]) + style.more
        return repr(value)
    if cls is int or cls is bool or value is None:
        return repr(value)
    if isinstance(value, str):
        raw = _undecodable(value)
        if raw is None:
            if len(value) > TEXT_LIMIT:
                return repr(value[:TEXT_LIMIT]) + style.more
            return repr(value)
        value = raw  # the bytes were not UTF-8: show them as they arrived
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        if len(data) > TEXT_LIMIT:
            return repr(data[:TEXT_LIMIT]) + style.more
        return repr(data)
    if isinstance(value, dict) or isinstance(value, Mapping):  # noqa: SIM101 - dict is quick
        items = ", ".join(
            f"{value_text(key, style)}: {value_text(item, style)}" for key, item in value.items()
        )
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(item, style) for item in value) + "]"
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return repr(value)


# ---------------------------------------------------------------------------------------
# JSON

JSON_FIELDS: Final = """\
Every record is one JSON object on one line.
  packet      the capture's packet (frame) number where the record ends, counted
              from 1 as Wireshark does (null for raw and hex input)
  time        capture timestamp, seconds since the epoch (null for raw and hex input)
  connection  connection number, counted from 0 in order of appearance
  client      client address "host:port" (null when the input does not say)
  server      server address "host:port" (null when the input does not say)
  direction   "c2s", "s2c" or "unknown"
  offset      where the frame (message: its method frame) starts in its direction's bytes
  type        "protocol-header", "method", "header", "body", "heartbeat",
              "message" (with --messages) or "notice"
  size        bytes on the wire (frames and notices)
  channel     the channel number (all but protocol-header and notice)
method and message:
  method      "class.method", e.g. "basic.publish"
  class_id, method_id   numeric ids
  arguments   {field name: value} with every field, reserved ones included
header:   class_id, body_size, properties {name: value} (absent properties left out)
body:     payload_size, payload_base64
frames:   truncated (true: a packet cut by the capture's snapshot length held only the
          start of the frame; the frame is what those bytes hold)
message:  properties, body_size (bytes present), body_base64, method_time and
          method_packet (of its method frame; time and packet are of its last frame),
          partial (bytes of it are missing from the capture), missing (how many;
          null when even its content header was lost and properties are unknown)
protocol-header: protocol_id, major, minor, revision
notice:   kind ("gap", "skipped", "truncated", "error"; "tcp" for SYN/FIN/RST with
          --tcp; "evicted" when a connection's state went over the memory budget),
          message (the explanation)
Credentials (connection.start-ok response, connection.update-secret new_secret)
are {"redacted": SIZE} unless --show-credentials; --body none leaves out
payload_base64 and body_base64.
Values: tables are objects, arrays lists, decimals strings (exact), timestamps
ISO 8601 strings, byte strings a string when they are UTF-8 else {"base64": "..."},
non-finite floats the strings "nan", "inf", "-inf"."""


class JSONWriter:
    """Writes one JSON object per record and line to ``out`` (``JSON_FIELDS``);
    ``body="none"`` leaves the body bytes out, ``show_credentials`` as for
    :class:`TextWriter`."""

    def __init__(
        self,
        out: TextIO,
        *,
        body: str = "auto",
        show_credentials: bool = False,
        flush: bool = False,
    ) -> None:
        if body not in BODY_MODES:
            raise ValueError(f"unknown body mode {body!r}")
        self.out = out
        self.body = body
        self.show_credentials = show_credentials
        self.flush = flush
        self._connection: ConnectionInfo | None = None
        self._middle = ""  # the connection's part of the line

    def write(self, record: Record) -> None:
        # The line is put together from its parts (the same text json.dumps gives the
        # whole of json_record): the connection's part is kept for the next record, and a
        # body's base64 text, which needs no escaping, is not scanned by the encoder.
        connection = record.connection
        if connection is not self._connection:
            self._connection = connection
            client, server = _endpoints(connection)
            self._middle = (
                f', "connection": {connection.index}, "client": {_ENCODER.encode(client)},'
                f' "server": {_ENCODER.encode(server)}, "direction": '
            )
        rest = _json_rest(record, self.show_credentials)
        payload = None
        if self.body == "none":
            rest.pop("body_base64", None)
            rest.pop("payload_base64", None)
        else:
            payload = rest.pop("payload_base64", None)  # the last key, where it is
        time = record.time
        if time.__class__ is float and math.isfinite(time):
            stamp = float.__repr__(time)
        else:
            stamp = _ENCODER.encode(time)
        line = (
            f'{{"packet": {_json_int(record.packet)}, "time": {stamp}{self._middle}'
            f'{_DIRECTION_TEXT[record.direction]}, "offset": {_json_int(record.offset)}, '
            + _ENCODER.encode(rest)[1:]
        )
        if payload is not None:
            line = f'{line[:-1]}, "payload_base64": "{payload}"}}'
        self.out.write(line + "\n")
        if self.flush:
            self.out.flush()


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False)  # what json.dumps(ensure_ascii=False) uses
_DIRECTIONS: Final = {d: d.value for d in Direction}
_DIRECTION_TEXT: Final = {d: f'"{d.value}"' for d in Direction}


def _json_int(value: int | None) -> str:
    """``value`` as json.dumps writes it."""
    return int.__repr__(value) if value.__class__ is int else _ENCODER.encode(value)


def _endpoints(connection: ConnectionInfo) -> tuple[str | None, str | None]:
    return (
        str(connection.client) if connection.client else None,
        str(connection.server) if connection.server else None,
    )


def json_record(
    record: Record,
    *,
    show_credentials: bool = False,
    endpoints: tuple[str | None, str | None] | None = None,
) -> dict[str, Any]:
    """The JSON object for ``record`` (``JSON_FIELDS``). ``endpoints``: the text of its
    connection's client and server, when the caller has it already."""
    connection = record.connection
    client, server = _endpoints(connection) if endpoints is None else endpoints
    data: dict[str, Any] = {
        "packet": record.packet,
        "time": record.time,
        "connection": connection.index,
        "client": client,
        "server": server,
        "direction": _DIRECTIONS[record.direction],
        "offset": record.offset,
    }
    data.update(_json_rest(record, show_credentials))
    return data


def _json_rest(record: Record, show_credentials: bool) -> dict[str, Any]:
    """The keys of a record's JSON object after ``offset``."""
    if isinstance(record, FrameRecord):
        data: dict[str, Any] = {"size": record.size, "truncated": record.truncated}
        data.update(_json_frame(record, show_credentials))
    elif isinstance(record, MessageRecord):
        message = record.message
        data = {"type": "message", "channel": message.channel}
        data.update(_json_method(message.method, show_credentials))
        data["properties"] = _json_properties(message.properties)
        data["body_size"] = len(message.body)
        data["body_base64"] = base64.b64encode(message.body).decode("ascii")
        data["method_time"] = record.method_time
        data["method_packet"] = record.method_packet
        data["partial"] = record.partial
        data["missing"] = record.missing
    else:
        data = {
            "type": "notice",
            "kind": record.kind.value,
            "size": record.size,
            "message": record.message,
        }
    return data


def _json_frame(record: FrameRecord, show_credentials: bool) -> dict[str, Any]:
    frame = record.frame
    if isinstance(frame, MethodFrame):
        method = _json_method(frame.method, show_credentials)
        return {"type": "method", "channel": frame.channel, **method}
    if isinstance(frame, HeaderFrame):
        return {
            "type": "header",
            "channel": frame.channel,
            "class_id": frame.class_id,
            "body_size": frame.body_size,
            "properties": _json_properties(frame.properties),
        }
    if isinstance(frame, BodyFrame):
        payload = frame.payload
        if payload.__class__ is not bytes:
            payload = bytes(payload)
        return {
            "type": "body",
            "channel": frame.channel,
            "payload_size": len(payload),
            "payload_base64": binascii.b2a_base64(payload, newline=False).decode("ascii"),
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


def _json_method(method: Method, show_credentials: bool = False) -> dict[str, Any]:
    layout = _METHOD_LAYOUTS.get(method.__class__)
    if layout is None:
        layout = _method_layout(method)
    _, fields, secret = layout
    arguments: dict[str, Any] = {}
    if show_credentials or not secret:
        for name, _reserved in fields:
            arguments[name] = jsonable(getattr(method, name))
    else:
        for name, _reserved in fields:
            value = getattr(method, name)
            arguments[name] = {"redacted": _size(value)} if name in secret else jsonable(value)
    return {
        "method": method.NAME,
        "class_id": method.CLASS_ID,
        "method_id": method.METHOD_ID,
        "arguments": arguments,
    }


def _json_properties(properties: Properties) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, _stamp in _properties_layout(properties):
        value = getattr(properties, name)
        if value is not None:
            data[name] = jsonable(value)
    return data


def _json_key(key: Any) -> str:
    """A table key as a JSON object key: bytes that are not UTF-8 as ``\\xNN`` escapes
    (an object key cannot be ``{"base64": ...}``)."""
    text = str(key)
    raw = _undecodable(text)
    return text if raw is None else raw.decode("utf-8", "backslashreplace")


def _undecodable(text: str) -> bytes | None:
    """The bytes of a string that the decoder kept with ``surrogateescape`` because
    they are not UTF-8; None for a proper string."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return None


def jsonable(value: Any) -> Any:
    """A JSON value for an AMQP value: tables become objects, arrays lists; Decimal a
    string (exact); timestamps ISO 8601; strings and bytes a string when they are
    UTF-8, else ``{"base64": ...}``; non-finite floats strings."""
    cls = value.__class__
    if (cls is str and value.isascii()) or cls is int or cls is bool or value is None:
        return value  # the common cases of the chain below
    if isinstance(value, str):
        raw = _undecodable(value)
        return value if raw is None else {"base64": base64.b64encode(raw).decode("ascii")}
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {_json_key(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
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
