"""Answers from a capture: what each connection negotiated, what went wrong and what was
left hanging. ``analyze(source)`` reads a capture once and returns a :class:`Report`.

How this works: the capture is read with ``messages=True``; each connection gets a
:class:`_Tracker` that follows, per channel, the protocol's open obligations: requests
waiting for their reply, publishes waiting for a confirm (tagged 1, 2, ... from
``confirm.select``), deliveries waiting for an ack (by ``delivery_tag``, settled one by
one or, with ``multiple``, everything up to the tag), RPC calls waiting for a message
with their ``correlation_id``. When an obligation is met its latency becomes a sample;
when a channel or connection ends with obligations open, they are reported.

Protocol violations: each direction is replayed through a :class:`amqpcodec.Connection`
of the role that receives it (a server for what the client sent, a client for what the
server sent), and every :class:`RemoteProtocolError` is reported with its reply code
and packet number. A connection whose handshake is not in the capture, or that lost
bytes, or whose state the reader dropped to keep within its ``memory_limit``, cannot be
replayed from that point: the report says so.

What cannot be known is said, not guessed: a capture that starts mid-connection has no
negotiated parameters, no channel opens, no consumer registrations before it; bytes
missing from the capture may have held acks, confirms or replies, so obligations
reported open after a gap may have been met; the same holds after the reader dropped a
connection's state (an ``EVICTED`` notice). Each connection's ``unknown`` lists these.

Bounds: memory follows the open state, not the file. Per connection the tracker holds
at most ``max_open`` entries in each open-obligation table (unconfirmed publishes,
unacknowledged deliveries, pending requests, pending RPC calls; 100,000 by default); when
a table is full its oldest entry is dropped and counted in ``forgotten``. Lists in the
report (channel lives, errors, nacks, never-acked deliveries, consumers, violations)
keep their first ``max_items`` entries (1,000 by default) and count the rest. Latency
percentiles come from a reservoir of at most ``max_samples`` samples (10,000 by
default; exact up to that count, ``exact: false`` beyond); count and max are always
exact. Replay holds what a Connection holds: the largest message. Work per record is
constant except that one ``multiple`` ack settles everything it covers once.
"""

from __future__ import annotations

import os
import random
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Final, Literal

from .. import spec
from .._base import Method
from .._connection import Connection
from .._errors import AMQPError, RemoteProtocolError
from .._frames import MethodFrame, ProtocolHeader, encode_message
from .._state import Role
from ._limits import DEFAULT_PORTS
from ._reader import CaptureReader
from ._records import (
    ConnectionInfo,
    Direction,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
)

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MAX_OPEN",
    "DEFAULT_MAX_SAMPLES",
    "ConnectionReport",
    "Latency",
    "Report",
    "analyze",
]

DEFAULT_MAX_OPEN: Final = 100_000
DEFAULT_MAX_ITEMS: Final = 1_000
DEFAULT_MAX_SAMPLES: Final = 10_000

C2S: Final = Direction.CLIENT_TO_SERVER
S2C: Final = Direction.SERVER_TO_CLIENT
DIRECT_REPLY_TO: Final = "amq.rabbitmq.reply-to"
_FIRST_ERROR_CODE: Final = 300  # reply codes below are not errors [XML constants]

Side = Literal["client", "server"]


def method_name(class_id: int, method_id: int) -> str | None:
    """``basic.publish`` for 60/40; None for 0/0 (no method) and unknown ids."""
    method = spec.METHODS.get((class_id, method_id))
    return method.NAME if method is not None else None


# ---------------------------------------------------------------------------------------
# What the report holds


@dataclass(slots=True)
class Latency:
    """Seconds. ``exact`` is false once more samples arrived than the reservoir keeps
    (p50 and p95 are then estimates; count and max stay exact)."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    max: float | None = None
    exact: bool = True


class _Samples:
    """A bounded reservoir of latency samples (Vitter's algorithm R, seeded so that a
    report is reproducible)."""

    __slots__ = ("count", "kept", "largest", "limit", "rng")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.largest: float | None = None
        self.kept: list[float] = []
        self.rng = random.Random(0)

    def add(self, value: float | None) -> None:
        if value is None:
            return
        value = max(value, 0.0)  # packets of two directions may be stamped out of order
        self.count += 1
        if self.largest is None or value > self.largest:
            self.largest = value
        if len(self.kept) < self.limit:
            self.kept.append(value)
        else:
            slot = self.rng.randrange(self.count)
            if slot < self.limit:
                self.kept[slot] = value

    def summary(self) -> Latency:
        if not self.kept:
            return Latency(count=self.count)
        ordered = sorted(self.kept)
        return Latency(
            count=self.count,
            p50=_percentile(ordered, 0.50),
            p95=_percentile(ordered, 0.95),
            max=self.largest,
            exact=self.count <= self.limit,
        )


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-len(ordered) * q // 1))  # ceil(n * q), at least 1
    return ordered[int(rank) - 1]


@dataclass(slots=True)
class Where:
    """When and in which packet something happened (None where the input does not say)."""

    time: float | None
    packet: int | None


@dataclass(slots=True)
class ChannelLife:
    channel: int
    opened: Where | None = None
    """None when the open is not in the capture (it started later)."""
    closed: Where | None = None
    closed_by: Side | None = None
    reply_code: int | None = None
    reply_text: str | None = None
    ended: str = ""
    """``closed`` (channel.close-ok), ``connection closed``, ``reopened, its close not
    in the capture``, or ``open at the end of the capture``."""


@dataclass(slots=True)
class ErrorReport:
    """A channel.close or connection.close with a reply code other than 200."""

    level: Literal["channel", "connection"]
    channel: int
    by: Side
    reply_code: int
    reply_text: str
    class_id: int
    method_id: int
    caused_by: str | None
    """The method that caused it, named (``basic.publish`` for 60/40), None for 0/0."""
    cause_packet: int | None
    """The packet of the last such method the other side sent on that channel (for a
    connection error: on any channel or on channel 0), if seen."""
    time: float | None
    packet: int | None


@dataclass(slots=True)
class Tag:
    channel: int
    tag: int
    time: float | None
    packet: int | None
    consumer_tag: str | None = None


@dataclass(slots=True)
class Confirms:
    channels: list[int] = field(default_factory=list)
    published: int = 0
    acked: int = 0
    nacked: list[Tag] = field(default_factory=list)
    nacked_count: int = 0
    unconfirmed: list[Tag] = field(default_factory=list)
    """Publishes the capture never saw confirmed, at the end of their channel or of
    the capture."""
    unconfirmed_count: int = 0
    latency: Latency = field(default_factory=Latency)


@dataclass(slots=True)
class Consumer:
    channel: int
    consumer_tag: str
    queue: str | None
    no_ack: bool | None
    """None when the consume is not in the capture."""
    prefetch_count: int | None
    prefetch_global: bool | None
    deliveries: int = 0
    max_in_flight: int = 0
    """The most deliveries it had unacknowledged at once (0 with no_ack)."""
    started: Where | None = None
    cancelled: Where | None = None
    cancelled_by: Side | None = None


@dataclass(slots=True)
class RPC:
    calls: int = 0
    answered: int = 0
    direct_reply_to: int = 0
    """Calls whose reply_to was amq.rabbitmq.reply-to."""
    latency: Latency = field(default_factory=Latency)
    unanswered: list[Tag] = field(default_factory=list)
    served: int = 0
    """Requests delivered here (with reply_to) that this connection answered."""
    serve_latency: Latency = field(default_factory=Latency)


@dataclass(slots=True)
class Silence:
    seconds: float
    since: Where
    until: Where | None
    """None: the silence lasted to the end of the connection."""


@dataclass(slots=True)
class Heartbeats:
    interval: int | None
    """The negotiated heartbeat in seconds (0: off; None: not in the capture)."""
    longest_silence: dict[str, Silence | None] = field(default_factory=dict)
    """Per direction (``c2s``/``s2c``): the longest time between two of its frames,
    or from its last frame to the end of the connection."""
    last_frame: dict[str, Where | None] = field(default_factory=dict)
    ended: str = ""
    """How the connection ended: ``close handshake``, a TCP notice, ``capture ended``, or
    ``state dropped by the reader`` (its memory_limit; later packets of the connection
    are read as another one)."""
    silent_first: str | None = None
    """When the connection died without a close handshake: the direction that fell
    silent first (``c2s``: the client stopped sending)."""


@dataclass(slots=True)
class Violation:
    direction: str
    reply_code: int
    message: str
    class_id: int
    method_id: int
    time: float | None
    packet: int | None


@dataclass(slots=True)
class ConnectionReport:
    connection: int
    client: str | None
    server: str | None
    negotiated: dict[str, Any] = field(default_factory=dict)
    channels_opened: int = 0
    channels_closed: int = 0
    channels: list[ChannelLife] = field(default_factory=list)
    errors: list[ErrorReport] = field(default_factory=list)
    confirms: Confirms = field(default_factory=Confirms)
    consumers: list[Consumer] = field(default_factory=list)
    unacked: list[Tag] = field(default_factory=list)
    """Deliveries never acknowledged (consumers without no_ack, basic.get without it)."""
    unacked_count: int = 0
    cancelled_by_server: list[Consumer] = field(default_factory=list)
    requests: dict[str, Latency] = field(default_factory=dict)
    """Request -> reply latency per synchronous method name."""
    unanswered_requests: list[Tag] = field(default_factory=list)
    rpc: RPC = field(default_factory=RPC)
    heartbeats: Heartbeats = field(default_factory=lambda: Heartbeats(None))
    violations: list[Violation] = field(default_factory=list)
    violations_checked: str = ""
    """``all``, or what stopped the replay (and from which packet)."""
    unknown: list[str] = field(default_factory=list)
    """What the capture could not tell about this connection."""
    more: dict[str, int] = field(default_factory=dict)
    """Entries left out of a list over ``max_items``, per list name."""
    forgotten: dict[str, int] = field(default_factory=dict)
    """Open obligations dropped from a full table (``max_open``), per table."""


@dataclass(slots=True)
class Report:
    source: str
    format: str
    packets: int
    first_time: float | None
    """The capture's first packet; the report's times are seconds since the epoch."""
    connections: list[ConnectionReport]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``amqpcodec report --json``)."""
        return asdict(self)


# ---------------------------------------------------------------------------------------
# Reading


def analyze(
    source: str | os.PathLike[str] | IO[bytes],
    *,
    ports: tuple[int, ...] | list[int] = DEFAULT_PORTS,
    max_open: int = DEFAULT_MAX_OPEN,
    max_items: int = DEFAULT_MAX_ITEMS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    check_violations: bool = True,
    **reader_options: Any,
) -> Report:
    """Read the capture ``source`` and report on each AMQP connection in it (module
    docstring). ``reader_options`` go to :class:`CaptureReader`. Raises
    :class:`CaptureError` when the input cannot be read."""
    reader_options.setdefault("tcp_events", True)  # who closed the socket, and how
    reader = CaptureReader(ports=ports, messages=True, **reader_options)
    records = reader.read(source)
    return analyze_records(
        records,
        source=_name(source),
        stats_of=lambda: (
            reader.stats.format,
            reader.stats.packets,
            reader.stats.first_time,
            reader.stats.warnings,
        ),
        max_open=max_open,
        max_items=max_items,
        max_samples=max_samples,
        check_violations=check_violations,
    )


def _name(source: object) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def analyze_records(
    records: Iterator[Record],
    *,
    source: str = "",
    stats_of: Callable[[], tuple[str, int, float | None, list[str]]] = lambda: ("", 0, None, []),
    max_open: int = DEFAULT_MAX_OPEN,
    max_items: int = DEFAULT_MAX_ITEMS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    check_violations: bool = True,
) -> Report:
    """:func:`analyze` over records already read (``messages=True`` records)."""
    limits = _Limits(max_open, max_items, max_samples)
    trackers: dict[int, _Tracker] = {}
    for record in records:
        index = record.connection.index
        tracker = trackers.get(index)
        if tracker is None:
            tracker = trackers[index] = _Tracker(record.connection, limits, check_violations)
        tracker.record(record)
    fmt, packets, first_time, warnings = stats_of()
    return Report(
        source=source,
        format=fmt,
        packets=packets,
        first_time=first_time,
        connections=[trackers[i].finish() for i in sorted(trackers)],
        warnings=list(warnings),
    )


@dataclass(frozen=True, slots=True)
class _Limits:
    max_open: int
    max_items: int
    max_samples: int


class _Bounded(OrderedDict[Any, Any]):
    """An open-obligation table of at most ``limit`` entries; the oldest go first."""

    def __init__(self, limit: int, name: str, forgotten: dict[str, int]) -> None:
        super().__init__()
        self.limit = limit
        self.name = name
        self.forgotten = forgotten

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > self.limit:
            self.popitem(last=False)
            self.forgotten[self.name] = self.forgotten.get(self.name, 0) + 1

    def settle(self, tag: int, multiple: bool) -> list[Any]:
        """Take out what an ack (or nack, reject) of ``tag`` settles, in a table keyed
        by ascending tags: with ``multiple``, everything up to it, 0 meaning everything
        [XML basic.ack multiple]; else that one, if it is here."""
        if not multiple:
            return [self.pop(tag)] if tag in self else []
        settled = []
        while self:
            if tag and next(iter(self)) > tag:
                break
            settled.append(self.popitem(last=False)[1])
        return settled


class _Channel:
    """Open state of one channel."""

    __slots__ = (
        "confirm",
        "consumers",
        "get_no_ack",
        "in_flight",
        "last_sent",
        "life",
        "next_publish",
        "open_by_consumer",
        "prefetch",
        "unconfirmed",
    )

    def __init__(self, life: ChannelLife, limits: _Limits, forgotten: dict[str, int]) -> None:
        self.life = life
        self.confirm = False
        self.next_publish = 1
        self.unconfirmed = _Bounded(limits.max_open, "unconfirmed publishes", forgotten)
        self.in_flight = _Bounded(limits.max_open, "unacknowledged deliveries", forgotten)
        self.prefetch: tuple[int, bool] | None = None
        self.consumers: dict[str, Consumer] = {}
        # Deliveries in flight per consumer tag (bounded by the consumers on the channel).
        self.open_by_consumer: dict[str | None, int] = {}
        self.get_no_ack: list[bool] = []
        # The last method each side sent here: the likely cause of a close by the other.
        self.last_sent: dict[Direction, tuple[Method, int | None]] = {}


def _side(direction: Direction) -> Side:
    return "client" if direction is C2S else "server"


class _Tracker:
    """Everything known about one connection while its records go by."""

    def __init__(self, info: ConnectionInfo, limits: _Limits, check: bool) -> None:
        self.limits = limits
        self.report = ConnectionReport(
            connection=info.index,
            client=str(info.client) if info.client else None,
            server=str(info.server) if info.server else None,
        )
        rep = self.report
        self.channels: dict[int, _Channel] = {}
        # The last method each side sent on channel 0 (see _Channel.last_sent).
        self.connection_sent: dict[Direction, tuple[Method, int | None]] = {}
        self.requests: dict[str, _Samples] = {}
        self.pending = _Bounded(limits.max_open, "pending requests", rep.forgotten)
        self.rpc_calls = _Bounded(limits.max_open, "pending RPC calls", rep.forgotten)
        self.rpc_served = _Bounded(limits.max_open, "RPC requests being served", rep.forgotten)
        self.rpc_latency = _Samples(limits.max_samples)
        self.serve_latency = _Samples(limits.max_samples)
        self.confirm_latency = _Samples(limits.max_samples)
        self.header_seen = False
        self.started: dict[Direction, bool] = {}
        self.closed_cleanly = False
        self.ended: str = ""
        self.end_time: float | None = None
        self.last: dict[Direction, Where] = {}
        self.silence: dict[Direction, Silence] = {}
        self.tuned_heartbeat: int | None = None
        self.frame_max = 131072
        self.gap_after: dict[Direction, int | None] = {}
        # Where the reader dropped this connection's state, while nothing read after it
        # says that reading went on (the whole connection was dropped).
        self.dropped: Where | None = None
        # Replay needs both directions in order, which only a packet capture gives.
        self.replay = _Replay(self) if check and info.client is not None else None
        if not check:
            rep.violations_checked = "not checked"
        elif self.replay is None:
            rep.violations_checked = "not checked: a raw stream or hex dump has no packets"

    # -- helpers --------------------------------------------------------------------------

    def _item(self, items: list[Any], name: str, item: Any) -> None:
        if len(items) < self.limits.max_items:
            items.append(item)
        else:
            self.report.more[name] = self.report.more.get(name, 0) + 1

    def _unknown(self, text: str) -> None:
        if text not in self.report.unknown:
            self._item(self.report.unknown, "unknown", text)

    def _channel(self, number: int, where: Where | None) -> _Channel:
        channel = self.channels.get(number)
        if channel is None:
            life = ChannelLife(number)
            if where is None:
                self._unknown(
                    "channels used before the capture started (their opens, confirm mode,"
                    " prefetch and consumers are not in it)"
                )
            channel = self.channels[number] = _Channel(life, self.limits, self.report.forgotten)
            channel.life.opened = where
            if where is not None:
                self.report.channels_opened += 1
        return channel

    # -- records --------------------------------------------------------------------------

    def record(self, record: Record) -> None:
        direction = record.direction
        where = Where(record.time, getattr(record, "packet", None))
        if record.time is not None:
            self.end_time = record.time  # records come in capture order
        if isinstance(record, Notice):
            self.dropped = None
            self._notice(record, where)
            return
        if not (isinstance(record, MessageRecord) and record.partial):
            self.dropped = None  # not the messages a drop gives out: reading went on
        if direction not in self.started:
            self.started[direction] = True
            first_is_header = isinstance(record, FrameRecord) and isinstance(
                record.frame, ProtocolHeader
            )
            if direction is C2S and not first_is_header and not self.header_seen:
                self._unknown(
                    "the capture starts after the connection opened: negotiated parameters"
                    " and client/server products are not in it"
                )
        self._activity(direction, where)
        if self.replay is not None:
            if isinstance(record, FrameRecord) and record.truncated:
                # A frame whose end is missing: the gap notice follows it.
                text = f"bytes missing from the capture ({direction.value})"
                self.replay.stop(text, where)
            self.replay.record(record, where)
        if isinstance(record, MessageRecord):
            self._message(record, where)
            return
        frame = record.frame
        if isinstance(frame, ProtocolHeader):
            self.header_seen = True
        elif isinstance(frame, MethodFrame):
            self._method(direction, frame.channel, frame.method, where)

    def _activity(self, direction: Direction, where: Where) -> None:
        last = self.last.get(direction)
        if last is not None and last.time is not None and where.time is not None:
            gap = where.time - last.time
            longest = self.silence.get(direction)
            if longest is None or gap > longest.seconds:
                self.silence[direction] = Silence(gap, last, where)
        if where.time is not None or last is None:
            self.last[direction] = where

    def _notice(self, notice: Notice, where: Where) -> None:
        direction = notice.direction.value
        if notice.kind is NoticeKind.GAP:
            self._unknown(
                f"{notice.size} bytes missing from the capture ({direction}"
                + (f", packet {where.packet}" if where.packet is not None else "")
                + "): acks, confirms or replies in them are unknown, so obligations"
                " reported open may have been met"
            )
            if self.replay is not None:
                self.replay.stop(f"bytes missing from the capture ({direction})", where)
        elif notice.kind is NoticeKind.EVICTED:
            # The reader let go of this connection's state (its memory_limit): what
            # follows is read without it, so it is judged as after a gap, not against
            # the state that was dropped.
            self._unknown(
                f"state dropped by the reader ({direction}"
                + (f", packet {where.packet}" if where.packet is not None else "")
                + f"): {notice.message}; what came after is judged without it, so"
                " obligations reported open may have been met"
            )
            if self.replay is not None:
                self.replay.stop(f"state dropped by the reader ({direction})", where)
            self.dropped = where
        elif notice.kind is NoticeKind.SKIPPED and notice.size == 0 and notice.offset == 0:
            pass  # the stream starts on a frame boundary: nothing skipped
        elif notice.kind is NoticeKind.ERROR:
            self._unknown(f"malformed data ({direction}): {notice.message}")
            if self.replay is not None:
                self.replay.stop(f"malformed data ({direction})", where)
        elif notice.kind is NoticeKind.TCP and "SYN" not in notice.message and not self.ended:
            at = f" [{where.packet}]" if where.packet is not None else ""
            self.ended = notice.message + at

    def _message(self, record: MessageRecord, where: Where) -> None:
        message = record.message
        method = message.method
        direction = record.direction
        # The method frame's time and packet: what latency counts from and to.
        method_time = getattr(record, "method_time", None)
        method_packet = getattr(record, "method_packet", None)
        method_where = Where(
            record.time if method_time is None else method_time,
            where.packet if method_packet is None else method_packet,
        )
        self._method(direction, message.channel, method, method_where)
        props = message.properties
        if getattr(record, "partial", False):
            self._unknown(
                f"a {method.NAME} message only partly captured ({direction.value}"
                + (f", packet {where.packet}" if where.packet is not None else "")
                + ")"
            )
        correlation_id = getattr(props, "correlation_id", None)
        reply_to = getattr(props, "reply_to", None)
        if direction is C2S and isinstance(method, spec.Basic.Publish):
            if correlation_id is not None and reply_to:
                self.report.rpc.calls += 1
                if reply_to.startswith(DIRECT_REPLY_TO):
                    self.report.rpc.direct_reply_to += 1
                self.rpc_calls.put(
                    correlation_id, Tag(message.channel, 0, method_where.time, where.packet)
                )
            elif correlation_id is not None and correlation_id in self.rpc_served:
                began = self.rpc_served.pop(correlation_id)
                self.report.rpc.served += 1
                self.serve_latency.add(_elapsed(began, method_where))
        elif direction is S2C and isinstance(method, (spec.Basic.Deliver, spec.Basic.GetOk)):
            if correlation_id is not None and correlation_id in self.rpc_calls:
                call = self.rpc_calls.pop(correlation_id)
                self.report.rpc.answered += 1
                self.rpc_latency.add(_elapsed(Where(call.time, call.packet), method_where))
            elif correlation_id is not None and reply_to:
                self.rpc_served.put(correlation_id, method_where)

    # -- methods --------------------------------------------------------------------------

    def _method(self, direction: Direction, number: int, method: Method, where: Where) -> None:
        self._replies(direction, number, method, where)
        if number == 0:
            self._connection_method(direction, method, where)
            self.connection_sent[direction] = (method, where.packet)
            return
        if isinstance(method, spec.Channel.Open):
            old = self.channels.pop(number, None)
            if old is not None:
                self._end_channel(old, None, None, "reopened, its close not in the capture")
            opened = self.channels[number] = _Channel(
                ChannelLife(number, opened=where), self.limits, self.report.forgotten
            )
            opened.last_sent[direction] = (method, where.packet)
            self.report.channels_opened += 1
            return
        channel = self._channel(number, None)
        if isinstance(method, spec.Channel.Close):
            self._close(direction, method, where, "channel", number, channel)
        elif isinstance(method, spec.Channel.CloseOk):
            self._end_channel(channel, where, None, "closed")
            self.channels.pop(number, None)
        elif direction is C2S:
            self._client_method(channel, method, where)
        else:
            self._server_method(channel, method, where)
        channel.last_sent[direction] = (method, where.packet)

    def _connection_method(self, direction: Direction, method: Method, where: Where) -> None:
        neg = self.report.negotiated
        if isinstance(method, spec.Connection.Start):
            _product(neg, "server", method.server_properties)
            neg["mechanisms"] = _text(method.mechanisms)
        elif isinstance(method, spec.Connection.StartOk):
            _product(neg, "client", method.client_properties)
            neg["mechanism"] = _text(method.mechanism)
        elif isinstance(method, spec.Connection.Tune):
            neg["proposed"] = {
                "channel_max": method.channel_max,
                "frame_max": method.frame_max,
                "heartbeat": method.heartbeat,
            }
        elif isinstance(method, spec.Connection.TuneOk):
            neg["channel_max"] = method.channel_max
            neg["frame_max"] = method.frame_max
            neg["heartbeat"] = method.heartbeat
            neg["packet"] = where.packet
            self.tuned_heartbeat = method.heartbeat
            self.frame_max = method.frame_max or self.frame_max
        elif isinstance(method, spec.Connection.Open):
            neg["virtual_host"] = method.virtual_host
        elif isinstance(method, spec.Connection.Close):
            self._close(direction, method, where, "connection", 0, None)
        elif isinstance(method, spec.Connection.CloseOk):
            self.closed_cleanly = True
            self.ended = "close handshake"
            # Closing the connection closes its channels [XML connection.close].
            for channel in self.channels.values():
                self._end_channel(channel, where, None, "connection closed")
            self.channels.clear()

    def _close(
        self,
        direction: Direction,
        method: spec.Channel.Close | spec.Connection.Close,
        where: Where,
        level: Literal["channel", "connection"],
        number: int,
        channel: _Channel | None,
    ) -> None:
        if channel is not None and channel.life.closed_by is None:
            channel.life.closed_by = _side(direction)
            channel.life.reply_code = method.reply_code
            channel.life.reply_text = _text(method.reply_text)
        if method.reply_code < _FIRST_ERROR_CODE:
            return  # 200, or 0 as py-amqp sends: a normal close
        cause = method_name(method.class_id, method.method_id)
        # The method that caused it was the other side's latest of that kind: on that
        # channel, or for a connection error, on any channel or on channel 0.
        sender = direction.reverse()
        if channel is not None:
            sent = [channel.last_sent.get(sender)]
        else:
            sent = [each.last_sent.get(sender) for each in self.channels.values()]
            sent.append(self.connection_sent.get(sender))
        ids = (method.class_id, method.method_id)
        cause_packet: int | None = None
        for last in sent:
            if last is None:
                continue
            culprit, packet = last
            if ids != (culprit.CLASS_ID, culprit.METHOD_ID) or packet is None:
                continue
            if cause_packet is None or packet > cause_packet:
                cause_packet = packet
        error = ErrorReport(
            level=level,
            channel=number,
            by=_side(direction),
            reply_code=method.reply_code,
            reply_text=_text(method.reply_text),
            class_id=method.class_id,
            method_id=method.method_id,
            caused_by=cause,
            cause_packet=cause_packet,
            time=where.time,
            packet=where.packet,
        )
        self._item(self.report.errors, "errors", error)

    def _client_method(self, channel: _Channel, method: Method, where: Where) -> None:
        number = channel.life.channel
        if isinstance(method, spec.Confirm.Select):
            if not channel.confirm:
                channel.confirm = True
                channel.next_publish = 1
                if number not in self.report.confirms.channels:
                    self._item(self.report.confirms.channels, "confirm channels", number)
        elif isinstance(method, spec.Basic.Publish):
            if channel.confirm:
                tag = channel.next_publish
                channel.next_publish += 1
                self.report.confirms.published += 1
                channel.unconfirmed.put(tag, Tag(number, tag, where.time, where.packet))
        elif isinstance(method, spec.Basic.Qos):
            channel.prefetch = (method.prefetch_count, bool(method.global_))
        elif isinstance(method, spec.Basic.Consume):
            channel.consumers[f"\0pending:{method.consumer_tag}"] = Consumer(
                channel=number,
                consumer_tag=method.consumer_tag,
                queue=method.queue,
                no_ack=bool(method.no_ack),
                prefetch_count=channel.prefetch[0] if channel.prefetch else 0,
                prefetch_global=channel.prefetch[1] if channel.prefetch else None,
                started=where,
            )
            if method.no_wait:
                self._consume_ok(channel, method.consumer_tag)
        elif isinstance(method, spec.Basic.Get):
            channel.get_no_ack.append(bool(method.no_ack))
            del channel.get_no_ack[:-16]  # one get waits at a time; keep a few
        elif isinstance(method, (spec.Basic.Ack, spec.Basic.Nack, spec.Basic.Reject)):
            multiple = bool(getattr(method, "multiple", False))
            self._settle(channel, method.delivery_tag, multiple)
        elif isinstance(method, spec.Basic.Cancel):
            consumer = channel.consumers.get(method.consumer_tag)
            if consumer is not None and consumer.cancelled is None:
                consumer.cancelled = where
                consumer.cancelled_by = "client"

    def _server_method(self, channel: _Channel, method: Method, where: Where) -> None:
        number = channel.life.channel
        if isinstance(method, (spec.Basic.Ack, spec.Basic.Nack)):
            self._confirm(channel, method, where)
        elif isinstance(method, spec.Basic.ConsumeOk):
            self._consume_ok(channel, method.consumer_tag)
        elif isinstance(method, spec.Basic.Deliver):
            consumer = self._consumer(channel, method.consumer_tag)
            consumer.deliveries += 1
            if not consumer.no_ack:
                tag = Tag(number, method.delivery_tag, where.time, where.packet)
                tag.consumer_tag = method.consumer_tag
                channel.in_flight.put(method.delivery_tag, tag)
                counts = channel.open_by_consumer
                counts[method.consumer_tag] = counts.get(method.consumer_tag, 0) + 1
                consumer.max_in_flight = max(consumer.max_in_flight, counts[method.consumer_tag])
        elif isinstance(method, spec.Basic.GetOk):
            no_ack = channel.get_no_ack.pop(0) if channel.get_no_ack else None
            if not no_ack:
                tag = Tag(number, method.delivery_tag, where.time, where.packet, "basic.get")
                channel.in_flight.put(method.delivery_tag, tag)
        elif isinstance(method, spec.Basic.GetEmpty):
            if channel.get_no_ack:
                channel.get_no_ack.pop(0)
        elif isinstance(method, spec.Basic.Cancel):
            consumer = self._consumer(channel, method.consumer_tag)
            consumer.cancelled = where
            consumer.cancelled_by = "server"
            self._item(self.report.cancelled_by_server, "cancelled by server", consumer)

    def _consumer(self, channel: _Channel, tag: str) -> Consumer:
        """The consumer the server names; one whose consume is not in the capture is
        added, with what is not known of it left None."""
        consumer = channel.consumers.get(tag)
        if consumer is None:
            number = channel.life.channel
            consumer = channel.consumers[tag] = Consumer(number, tag, None, None, None, None)
            self._unknown(
                f"consumer {tag!r} on channel {number} started before the capture: its"
                " queue, no_ack and prefetch are not in it"
            )
        return consumer

    def _consume_ok(self, channel: _Channel, tag: str) -> None:
        pending = next(
            (k for k in channel.consumers if k.startswith("\0pending:")),
            None,
        )
        if pending is None:
            return
        consumer = channel.consumers.pop(pending)
        consumer.consumer_tag = tag
        channel.consumers[tag] = consumer

    def _settle(self, channel: _Channel, delivery_tag: int, multiple: bool) -> None:
        counts = channel.open_by_consumer
        for tag in channel.in_flight.settle(delivery_tag, multiple):
            if tag.consumer_tag in counts:
                counts[tag.consumer_tag] -= 1

    def _confirm(
        self, channel: _Channel, method: spec.Basic.Ack | spec.Basic.Nack, where: Where
    ) -> None:
        confirms = self.report.confirms
        if not channel.confirm:
            self._unknown(
                f"confirms on channel {channel.life.channel} for publishes made before the"
                " capture started"
            )
            return
        for tag in channel.unconfirmed.settle(method.delivery_tag, bool(method.multiple)):
            self.confirm_latency.add(_elapsed(Where(tag.time, tag.packet), where))
            if isinstance(method, spec.Basic.Nack):
                confirms.nacked_count += 1
                nack = Tag(tag.channel, tag.tag, where.time, where.packet)
                self._item(confirms.nacked, "nacked", nack)
            else:
                confirms.acked += 1

    def _replies(self, direction: Direction, number: int, method: Method, where: Where) -> None:
        """Request -> reply latency: a synchronous method waits on its channel for one
        of its responses from the other side."""
        waiting = self.pending.get((direction.reverse(), number))
        if waiting is not None:
            request, began = waiting
            if type(method) in request.RESPONSES:
                del self.pending[(direction.reverse(), number)]
                samples = self.requests.get(request.NAME)
                if samples is None:
                    samples = self.requests[request.NAME] = _Samples(self.limits.max_samples)
                samples.add(_elapsed(began, where))
        if isinstance(method, (spec.Channel.Close, spec.Connection.Close)):
            # A close ends whatever was waiting on that channel (or connection).
            for key in [k for k in self.pending if number == 0 or k[1] == number]:
                del self.pending[key]
        if method.SYNCHRONOUS and method.RESPONSES and not _no_wait(method):
            self.pending.put((direction, number), (method, where))

    def _end_channel(
        self, channel: _Channel, where: Where | None, by: Side | None, how: str
    ) -> None:
        life = channel.life
        life.ended = how
        if where is not None:
            life.closed = where
            self.report.channels_closed += 1
        if by is not None and life.closed_by is None:
            life.closed_by = by
        self._item(self.report.channels, "channels", life)
        for tag in channel.unconfirmed.values():
            self.report.confirms.unconfirmed_count += 1
            self._item(self.report.confirms.unconfirmed, "unconfirmed", tag)
        for tag in channel.in_flight.values():
            self.report.unacked_count += 1
            self._item(self.report.unacked, "unacked", tag)
        for key, consumer in channel.consumers.items():
            if not key.startswith("\0"):
                self._item(self.report.consumers, "consumers", consumer)

    # -- the end --------------------------------------------------------------------------

    def finish(self) -> ConnectionReport:
        rep = self.report
        if not self.closed_cleanly and not self.ended:
            if self.dropped is not None:
                at = f" [{self.dropped.packet}]" if self.dropped.packet is not None else ""
                self.ended = "state dropped by the reader" + at
            else:
                self.ended = "capture ended"
        for channel in list(self.channels.values()):
            self._end_channel(channel, None, None, "open at the end of the capture")
        self.channels.clear()
        if not self.closed_cleanly and self.ended == "capture ended":
            self._unknown(
                "the capture ends before the connection closed: open channels,"
                " unconfirmed publishes and unacknowledged deliveries are as of its end"
            )
        for (_direction, number), (request, began) in self.pending.items():
            tag = Tag(number, 0, began.time, began.packet, request.NAME)
            self._item(rep.unanswered_requests, "unanswered requests", tag)
        rep.requests = {name: samples.summary() for name, samples in self.requests.items()}
        rep.confirms.latency = self.confirm_latency.summary()
        rep.rpc.latency = self.rpc_latency.summary()
        rep.rpc.serve_latency = self.serve_latency.summary()
        for call in self.rpc_calls.values():
            self._item(rep.rpc.unanswered, "unanswered RPC calls", call)
        rep.heartbeats = self._heartbeats()
        if self.replay is not None:
            rep.violations_checked = self.replay.finish()
        return rep

    def _heartbeats(self) -> Heartbeats:
        beats = Heartbeats(self.tuned_heartbeat, ended=self.ended)
        end_time = self.end_time
        for direction in (C2S, S2C):
            last = self.last.get(direction)
            beats.last_frame[direction.value] = last
            longest = self.silence.get(direction)
            if not self.closed_cleanly and last is not None and last.time is not None:
                tail = (end_time or last.time) - last.time
                if longest is None or tail > longest.seconds:
                    longest = Silence(tail, last, None)
            beats.longest_silence[direction.value] = longest
        if not self.closed_cleanly:
            c2s, s2c = self.last.get(C2S), self.last.get(S2C)
            if (
                c2s is not None
                and s2c is not None
                and c2s.time is not None
                and s2c.time is not None
            ) and c2s.time != s2c.time:
                beats.silent_first = "c2s" if c2s.time < s2c.time else "s2c"
        return beats


def _elapsed(began: Where, now: Where) -> float | None:
    if began.time is None or now.time is None:
        return None
    return now.time - began.time


def _product(negotiated: dict[str, Any], side: Side, properties: Mapping[str, Any]) -> None:
    """What a peer says of itself in its Connection.Start(-Ok) properties."""
    for key in ("product", "version", "platform"):
        negotiated[f"{side}_{key}"] = _text(properties.get(key))


def _no_wait(method: Method) -> bool:
    return bool(getattr(method, "no_wait", False) or getattr(method, "nowait", False))


def _text(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


# ---------------------------------------------------------------------------------------
# Protocol violations


class _Replay:
    """Each direction of a connection fed to a Connection of the receiving role; each
    Connection is also told what its own side sent, so that its state follows the
    real conversation. What a Connection answers by itself (the handshake, close-ok) is
    thrown away, and the real side's copy of it refused quietly."""

    def __init__(self, tracker: _Tracker) -> None:
        self.tracker = tracker
        self.receivers = {
            C2S: Connection(Role.SERVER),
            S2C: Connection(Role.CLIENT),
        }
        self.stopped = ""
        self.started = False
        self.broken: set[Direction] = set()

    def stop(self, why: str, where: Where) -> None:
        if not self.stopped:
            at = f" at packet {where.packet}" if where.packet is not None else ""
            self.stopped = f"up to {why}{at}"

    def record(self, record: Record, where: Where) -> None:
        if self.stopped or isinstance(record, Notice):
            return
        direction = record.direction
        if not self.started:
            if isinstance(record, FrameRecord) and isinstance(record.frame, ProtocolHeader):
                self.started = True
            else:
                self.stopped = "not checked: the capture starts after the connection opened"
                return
        if direction not in self.receivers:
            return  # a raw stream whose direction is unknown
        receiver = self.receivers[direction]
        sender = self.receivers[direction.reverse()]
        for data, at in self._pieces(record, where):
            if direction in self.broken:
                break
            try:
                receiver.receive_data(data)
            except RemoteProtocolError as exc:
                self.broken.add(direction)
                self.tracker._item(
                    self.tracker.report.violations,
                    "violations",
                    Violation(
                        direction=direction.value,
                        reply_code=exc.reply_code,
                        message=str(exc),
                        class_id=exc.class_id,
                        method_id=exc.method_id,
                        time=at.time,
                        packet=at.packet,
                    ),
                )
            except AMQPError:
                self.broken.add(direction)
            receiver.data_to_send()
        self._mirror(sender, record)
        sender.data_to_send()

    def _pieces(self, record: Record, where: Where) -> list[tuple[bytes, Where]]:
        """The bytes to replay, each with where it was captured: a message's method
        frame at its own packet, then its header and body frames."""
        if isinstance(record, FrameRecord):
            return [(record.frame.encode(), where)]
        if isinstance(record, MessageRecord) and not record.partial:
            m = record.message
            data = encode_message(m.channel, m.method, m.properties, m.body, self.tracker.frame_max)
            size = len(MethodFrame(m.channel, m.method).encode())
            at = Where(
                where.time if record.method_time is None else record.method_time,
                where.packet if record.method_packet is None else record.method_packet,
            )
            return [(data[:size], at), (data[size:], where)]
        return []

    @staticmethod
    def _mirror(sender: Connection, record: Record) -> None:
        """Tell the sending side's Connection what it sent; a refusal means it already
        sent that itself (handshake, close-ok) or its peer is the one at fault (caught
        on the receiving side)."""
        try:
            if isinstance(record, MessageRecord):
                m = record.message
                sender.send_message(m.channel, m.method, m.properties, m.body)
            elif isinstance(record, FrameRecord) and isinstance(record.frame, MethodFrame):
                sender.send_method(record.frame.channel, record.frame.method)
        except AMQPError:
            pass

    def finish(self) -> str:
        if self.stopped:
            return self.stopped
        return "all" if self.started else "not checked: no frames"
