"""The receive path: whole messages taken straight from the bytes against the general path.

Every test feeds the same bytes, in the same pieces, to two Connections in the same
state: one as it is, one with ``_whole_messages`` off, so that every frame goes through
the FrameDecoder, the state checks and the ContentAssembler. After each piece the two
must agree on everything: the events (down to the bytes of each method and properties),
the error (class, text, reply code, ids, offset, the events it carries), the state of
the connection and of every channel, the bodies held, what is queued to go out, and how
far the input was read.
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Callable
from typing import Any

import pytest
from connection_pair import client_handshake_bytes, method_bytes, opened_pair
from hypothesis import given, settings
from hypothesis import strategies as st

from amqpcodec import (
    BodyFrame,
    Connection,
    ConnectionState,
    ContentAssembler,
    FrameDecoder,
    HeartbeatFrame,
    Method,
    MethodFrame,
    RemoteProtocolError,
    Role,
    spec,
)
from amqpcodec.events import MessageReceived, MethodReceived

C, Ch, B = spec.Connection, spec.Channel, spec.Basic
CLIENT, SERVER = Role.CLIENT, Role.SERVER
FRAME_MAX = 4096
MAX_BODY = 12_000
MAX_HELD = 20_000

# ---------------------------------------------------------------------------------------
# Two connections in one state


def _client() -> Connection:
    """A client with channels 1-3 open; channel 2 in confirm mode; basic.get waiting on
    channels 1 and 3 (twice each: pipelined)."""
    pair = opened_pair(
        {
            "frame_max": FRAME_MAX,
            "pipelining": True,
            "max_body_size": MAX_BODY,
            "max_total_body_size": MAX_HELD,
        }
    )
    for channel in (1, 2, 3):
        pair.open_channel(channel)
    pair.client.send_method(2, spec.Confirm.Select(nowait=True))
    for channel in (1, 3, 1, 3):
        pair.client.send_method(channel, B.Get(queue="q"))
    pair.client.data_to_send()
    return pair.client


def _server() -> Connection:
    """A server with channels 1-3 open; channel 2 in confirm mode."""
    pair = opened_pair(
        None, frame_max=FRAME_MAX, max_body_size=MAX_BODY, max_total_body_size=MAX_HELD
    )
    for channel in (1, 2, 3):
        pair.open_channel(channel)
    pair.client.send_method(2, spec.Confirm.Select(nowait=True))
    pair.pump()
    return pair.server


_PROTOTYPES = {CLIENT: _client(), SERVER: _server()}


# What receiving never changes is shared by the copies (deepcopy is most of these tests' time).
_SHARED = ("_settings", "_peer_properties", "_start", "_start_ok", "_credentials", "_content_in")


def twins(role: Role, prototype: Connection | None = None) -> tuple[Connection, Connection]:
    """(as it is, the general path only), in the state of ``prototype`` (by default the
    role's above)."""
    prototype = prototype or _PROTOTYPES[role]
    shared = [getattr(prototype, name) for name in _SHARED if hasattr(prototype, name)]
    fast, slow = (copy.deepcopy(prototype, {id(v): v for v in shared}) for _ in "ab")
    slow._whole_messages = False
    return fast, slow


# ---------------------------------------------------------------------------------------
# What must agree


def _event_view(event: Any) -> Any:
    if isinstance(event, MessageReceived):
        return (
            event,
            type(event.method),
            event.method.encode(),
            event.properties.encode(),
            type(event.body),
        )
    return event


def _outcome(conn: Connection, data: bytes) -> tuple[Any, ...]:
    try:
        events = conn.receive_data(data)
    except RemoteProtocolError as exc:
        return (
            type(exc),
            str(exc),
            exc.reply_code,
            exc.class_id,
            exc.method_id,
            getattr(exc, "offset", None),
            [_event_view(e) for e in exc.events],
        )
    return ("events", [_event_view(e) for e in events])


def _state(conn: Connection) -> tuple[Any, ...]:
    channels = {
        number: (
            ch.state,
            list(ch.requests),
            ch.content_request,
            list(ch.peer_requests),
            ch.paused,
            ch.confirming,
            ch.received_tag,
            ch.publish_tag,
            sorted(ch.unconfirmed),
        )
        for number, ch in conn._channels.items()
    }
    partial = {
        number: (p.method, p.header, p.received, b"".join(bytes(c) for c in p.chunks))
        for number, p in conn._assembler._partial.items()
    }
    open_ = conn.state not in (ConnectionState.ERROR, ConnectionState.CLOSED)
    return (
        conn.state,
        conn._end,
        channels,
        partial,
        conn._held,
        conn.data_to_send(),
        # How far the input was read, by the decoder or not, while it is still read (at
        # an error or a close the general path has decoded the whole read, the message
        # path stopped after the run of frames that ended it).
        *((conn._decoder.buffered, conn._decoder.offset + conn._skipped) if open_ else ()),
        conn._received_since_tick,
    )


def feed_both(
    role: Role, pieces: list[bytes], prototype: Connection | None = None
) -> tuple[list[Any], Connection]:
    """Feed ``pieces`` to twins, comparing after each; the outcomes and the fast one."""
    fast, slow = twins(role, prototype)
    outcomes = []
    for piece in pieces:
        got = _outcome(fast, piece)
        assert got == _outcome(slow, piece)
        assert _state(fast) == _state(slow)
        outcomes.append(got)
        if got[0] != "events":
            break
    return outcomes, fast


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def every_split(role: Role, data: bytes) -> None:
    """One shot, byte at a time, and cut in two at every offset."""
    feed_both(role, [data])
    feed_both(role, [data[i : i + 1] for i in range(len(data))])
    for cut in range(1, len(data)):
        feed_both(role, [data[:cut], data[cut:]])


# ---------------------------------------------------------------------------------------
# Frames, well or badly made

_HEADER = struct.Struct(">BHI")


def frame(frame_type: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return _HEADER.pack(frame_type, channel, len(payload)) + payload + bytes([end])


def content_header(
    channel: int,
    body_size: int,
    properties: spec.BasicProperties | None = None,
    class_id: int = 60,
    weight: int = 0,
) -> bytes:
    props = (properties or spec.BasicProperties()).encode()
    return frame(2, channel, struct.pack(">HHQ", class_id, weight, body_size) + props)


def message(
    channel: int,
    method: Method,
    body: bytes,
    properties: spec.BasicProperties | None = None,
    pieces: list[int] | None = None,
) -> bytes:
    """The frames of a message; ``pieces``: the sizes of its body frames (by default as
    many of frame_max - 8 as it takes; if they add up to more than the body, the frames
    carry more than the content header declares)."""
    data = MethodFrame(channel, method).encode() + content_header(channel, len(body), properties)
    if pieces is None:
        chunk = FRAME_MAX - 8
        pieces = [min(chunk, len(body) - at) for at in range(0, len(body), chunk)]
    payload = body.ljust(sum(pieces), b"!")
    at = 0
    for size in pieces:
        data += BodyFrame(channel, payload[at : at + size]).encode()
        at += size
    return data


PROPERTIES = [
    spec.BasicProperties(),
    spec.BasicProperties(content_type="text/plain", delivery_mode=2),
    spec.BasicProperties(
        content_type="application/json",
        headers={"a": 1, "nested": {"b": [1, "two", b"x"]}, "s": "é"},
        priority=5,
        correlation_id="c",
        reply_to="r",
        expiration="60000",
        message_id="m",
        timestamp=1_700_000_000,
        type="t",
        user_id="guest",
        app_id="app",
        cluster_id="",
    ),
]

# The content methods each role receives: the fast path takes all of them.
CONTENT_IN = {
    CLIENT: [
        B.Deliver("ctag", 7, True, "ex", "rk"),
        B.Return(312, "NO_ROUTE", "ex", "rk"),
        B.GetOk(9, False, "ex", "rk", 3),
    ],
    SERVER: [B.Publish(exchange="ex", routing_key="rk", mandatory=True)],
}


def deliveries(role: Role, count: int = 3, body: bytes = b"hello") -> bytes:
    method = CONTENT_IN[role][0]
    return b"".join(message(1 + n % 3, method, body, PROPERTIES[n % 3]) for n in range(count))


# ---------------------------------------------------------------------------------------
# Well-formed streams take the message path


@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_whole_messages_skip_the_decoder(role: Role) -> None:
    data = b"".join(
        message(channel, method, b"x" * size, properties)
        for channel in (1, 2, 3)
        for method in CONTENT_IN[role]
        for size in (0, 1, FRAME_MAX - 8, FRAME_MAX - 7, 9000)
        for properties in PROPERTIES
        if type(method) is not B.GetOk
    )
    (outcome,), fast = feed_both(role, [data])
    # No frame of it went through the decoder.
    assert fast._decoder.offset == _PROTOTYPES[role]._decoder.offset
    assert fast._skipped - _PROTOTYPES[role]._skipped == len(data)
    assert [type(e[0]) for e in outcome[1]] == [MessageReceived] * 3 * 5 * 3 * (
        len(CONTENT_IN[role]) - (role is CLIENT)
    )


@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_messages_equal_frame_decoder_and_content_assembler(role: Role) -> None:
    data = deliveries(role, 6, b"b" * 5000)
    fast, _ = twins(role)
    events = []
    for piece in split(data, list(range(0, len(data), 777))):
        events += fast.receive_data(piece)
    assemble = ContentAssembler().feed
    messages = [m for f in FrameDecoder(FRAME_MAX).feed(data) if (m := assemble(f)) is not None]
    assert [(e.channel, e.method, e.properties, e.body) for e in events] == [
        (m.channel, m.method, m.properties, m.body) for m in messages
    ]


def test_publishes_on_a_confirm_channel_are_numbered() -> None:
    publish = CONTENT_IN[SERVER][0]
    data = message(2, publish, b"a") + message(1, publish, b"b") + message(2, publish, b"")
    (outcome,), _ = feed_both(SERVER, [data])
    assert [e[0].confirm_tag for e in outcome[1]] == [1, None, 2]


def test_a_get_ok_answers_the_oldest_basic_get() -> None:
    get_ok = CONTENT_IN[CLIENT][2]
    data = message(1, get_ok, b"a") + message(1, get_ok, b"b") + message(1, get_ok, b"c")
    (outcome,), fast = feed_both(CLIENT, [data])
    # Two gets were waiting on channel 1: the third get-ok answers nothing.
    assert outcome[2] == 503 and "answers no request" in outcome[1]
    assert [e[0].request for e in outcome[-1]] == [B.Get(queue="q")] * 2
    assert fast.state is ConnectionState.ERROR


@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_every_split_of_a_stream_of_messages(role: Role) -> None:
    methods = CONTENT_IN[role]
    data = (
        b"".join(
            message(1, methods[n % len(methods)], b"m" * size, PROPERTIES[n % 3], pieces)
            for n, (size, pieces) in enumerate([(3, None), (0, None), (9, [2, 0, 7]), (1, None)])
        )
        + HeartbeatFrame().encode()
    )
    every_split(role, data)


# ---------------------------------------------------------------------------------------
# Everything the message path must leave to the general path, in every split


def _over(size: int) -> bytes:
    return b"o" * size


def body_frames(channel: int, size: int) -> bytes:
    chunk = FRAME_MAX - 8
    return b"".join(frame(3, channel, _over(min(chunk, size - at))) for at in range(0, size, chunk))


HOSTILE: dict[str, Callable[[Role, Method], bytes]] = {
    # Not whole messages on an open channel: other frames in between, other channels.
    "heartbeat inside": lambda r, m: (
        MethodFrame(1, m).encode()
        + HeartbeatFrame().encode()
        + content_header(1, 2)
        + frame(3, 1, b"ab")
    ),
    "interleaved channels": lambda r, m: (
        MethodFrame(1, m).encode()
        + MethodFrame(3, m).encode()
        + content_header(3, 1)
        + content_header(1, 1)
        + frame(3, 3, b"c")
        + frame(3, 1, b"a")
    ),
    "header on another channel": lambda r, m: MethodFrame(1, m).encode() + content_header(3, 1),
    "header on another channel, body on the first": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(3, 1) + frame(3, 1, b"x")
    ),
    "second body frame on another channel": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 3) + frame(3, 1, b"a") + frame(3, 3, b"bc")
    ),
    "body on another channel": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 1) + frame(3, 3, b"x")
    ),
    "method instead of body": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 2) + message(1, m, b"x")
    ),
    "body frames of two channels": lambda r, m: (
        message(1, m, b"abc", pieces=[1])
        + message(3, m, b"de", pieces=[1])
        + frame(3, 1, b"bc")
        + frame(3, 3, b"e")
    ),
    "channel 0": lambda r, m: message(0, m, b"x"),
    "content method ids in a body": lambda r, m: (
        message(4, m, b"\0<\0<\0<\0002\0<\0G\0<\0(") + HeartbeatFrame().encode()
    ),
    "channel not open": lambda r, m: message(4, m, b"x"),
    "content on channel 0 after a method": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(0, 1)
    ),
    "no method": lambda r, m: content_header(1, 1) + frame(3, 1, b"x") + message(1, m, b"y"),
    "two methods": lambda r, m: MethodFrame(1, m).encode() + message(1, m, b"y"),
    "body after an empty body": lambda r, m: message(1, m, b"") + frame(3, 1, b"x"),
    # Malformed frames: end octet, size against frame_max (plus the server's tolerance).
    "method end octet": lambda r, m: (
        frame(1, 1, MethodFrame(1, m).encode()[7:-1], 0) + content_header(1, 0)
    ),
    "header end octet": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 1)[:-1] + b"\x00" + frame(3, 1, b"x")
    ),
    "body end octet": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 1) + frame(3, 1, b"x", 0xCF)
    ),
    "second body end octet": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 2) + frame(3, 1, b"x") + frame(3, 1, b"y", 0)
    ),
    "body frame at frame_max": lambda r, m: message(1, m, _over(FRAME_MAX - 8)),
    "body frame 1 over frame_max": lambda r, m: message(1, m, _over(FRAME_MAX - 7)),
    "body frame 8 over frame_max": lambda r, m: message(1, m, _over(FRAME_MAX), pieces=[FRAME_MAX]),
    "body frame 9 over frame_max": lambda r, m: message(
        1, m, _over(FRAME_MAX + 1), pieces=[FRAME_MAX + 1]
    ),
    "second body frame over frame_max": lambda r, m: message(
        1, m, _over(FRAME_MAX + 20), pieces=[10, FRAME_MAX + 10]
    ),
    "method frame over frame_max": lambda r, m: (
        frame(1, 1, MethodFrame(1, m).encode()[7:-1] + b"\0" * FRAME_MAX) + content_header(1, 0)
    ),
    "header frame over frame_max": lambda r, m: (
        MethodFrame(1, m).encode()
        + content_header(1, 1, spec.BasicProperties(headers={"h": "x" * FRAME_MAX}))
        + frame(3, 1, b"x")
    ),
    # Content header checks.
    "header too short": lambda r, m: (
        MethodFrame(1, m).encode() + frame(2, 1, b"\0<\0\0\0\0\0\0\0\0\0") + frame(3, 1, b"x")
    ),
    "header of another class": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 1, class_id=50) + frame(3, 1, b"x")
    ),
    "header of an unknown class": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 1, class_id=99) + frame(3, 1, b"x")
    ),
    "header weight": lambda r, m: (
        MethodFrame(1, m).encode() + content_header(1, 1, weight=1) + frame(3, 1, b"x")
    ),
    "body over max_body_size": lambda r, m: message(1, m, _over(MAX_BODY + 1)),
    "body at max_body_size": lambda r, m: message(1, m, _over(MAX_BODY)),
    "bodies over max_total_body_size": lambda r, m: (
        MethodFrame(3, m).encode()
        + content_header(3, MAX_BODY)  # held while channel 3's body arrives
        + message(2, m, _over(MAX_HELD - MAX_BODY))  # the room left: taken
        + message(1, m, _over(MAX_HELD - MAX_BODY + 1))  # over: channel 1 is closed, 406
        + body_frames(3, MAX_BODY)
        + message(2, m, _over(MAX_HELD - MAX_BODY + 1))  # fits now
    ),
    "body longer than declared": lambda r, m: message(1, m, b"abc", pieces=[4]),
    "second body frame longer than declared": lambda r, m: message(1, m, b"abc", pieces=[2, 2]),
    "empty body frames": lambda r, m: message(1, m, b"ab", pieces=[0, 1, 0, 0, 1]),
    # Arguments and properties that do not decode.
    "method arguments truncated": lambda r, m: (
        frame(1, 1, MethodFrame(1, m).encode()[7:-2]) + content_header(1, 0)
    ),
    "method arguments left over": lambda r, m: (
        frame(1, 1, MethodFrame(1, m).encode()[7:-1] + b"!") + content_header(1, 0)
    ),
    "method ids only": lambda r, m: frame(1, 1, MethodFrame(1, m).encode()[7:11]),
    "method frame shorter than its ids": lambda r, m: frame(1, 1, b"\0<\0"),
    "properties truncated": lambda r, m: (
        MethodFrame(1, m).encode()
        + frame(2, 1, struct.pack(">HHQ", 60, 0, 1) + b"\x80\x00\x05ab")
        + frame(3, 1, b"x")
    ),
    "properties flags unknown": lambda r, m: (
        MethodFrame(1, m).encode()
        + frame(2, 1, struct.pack(">HHQ", 60, 0, 1) + b"\x00\x02")
        + frame(3, 1, b"x")
    ),
    "properties table nested deep": lambda r, m: (
        MethodFrame(1, m).encode()
        + frame(
            2,
            1,
            struct.pack(">HHQ", 60, 0, 1) + b"\x20\x00" + _deep_table(1000),
        )
        + frame(3, 1, b"x")
    ),
    "method without content truncated": lambda r, m: (
        message(1, m, b"a") + frame(1, 1, method_bytes(1, B.Ack(1))[7:-2]) + message(1, m, b"b")
    ),
    "method without content left over": lambda r, m: (
        message(1, m, b"a") + frame(1, 1, method_bytes(1, B.Ack(1))[7:-1] + b"!")
    ),
    "method text past its frame": lambda r, m: (
        (message(1, m, b"a") + frame(1, 1, method_bytes(1, Ch.Close(200, "bye"))[7:-1] + b"\x09"))
        + message(1, m, b"b")
    ),
    "unknown method": lambda r, m: (
        message(1, m, b"a") + frame(1, 1, b"\0<\0\xff") + message(1, m, b"b")
    ),
    "unknown frame type after a message": lambda r, m: message(1, m, b"x") + frame(9, 1, b""),
    "protocol header after a message": lambda r, m: message(1, m, b"x") + b"AMQP\x00\x00\x09\x01",
    # State changes between messages.
    "channel closed between": lambda r, m: (
        message(1, m, b"a")
        + method_bytes(1, Ch.Close(200, "bye", 0, 0))
        + message(1, m, b"b")
        + message(2, m, b"c")
    ),
    "connection closed between": lambda r, m: (
        message(1, m, b"a") + method_bytes(0, C.Close(320, "bye", 0, 0)) + message(1, m, b"b")
    ),
    "flow between": lambda r, m: (
        message(1, m, b"a") + method_bytes(1, Ch.Flow(active=False)) + message(1, m, b"b")
    ),
}


def _deep_table(depth: int) -> bytes:
    table = b""
    for _ in range(depth):
        table = struct.pack(">I", len(table) + 3) + b"\x01kF" + table
    return table


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_hostile_streams_in_one_shot_and_in_pieces(role: Role, name: str) -> None:
    for method in CONTENT_IN[role]:
        data = HOSTILE[name](role, method)
        for stream in (data, deliveries(role, 2) + data + deliveries(role, 1)):
            feed_both(role, [stream])
            if stream is data and len(data) < 2000:
                feed_both(role, [data[i : i + 1] for i in range(len(data))])
            for cut in _boundaries(stream):
                feed_both(role, [stream[:cut], stream[cut:]])


def _boundaries(data: bytes) -> list[int]:
    """Cuts around every frame boundary and inside every frame header, and one in the
    middle of every payload (the stream's framing is read as if it were all well made)."""
    cuts, at = [], 0
    while len(data) - at >= 7:
        size = int.from_bytes(data[at + 3 : at + 7], "big")
        cuts += [at - 1, at, at + 1, at + 3, at + 6, at + 7, at + 8, at + 7 + size // 2]
        at += 8 + size
    return [cut for cut in cuts if 0 < cut < len(data)]


# ---------------------------------------------------------------------------------------
# Generated streams, mutated, in random pieces


@st.composite
def _content(draw: st.DrawFn, role: Role) -> bytes:
    method = draw(st.sampled_from(CONTENT_IN[role]))
    channel = draw(st.sampled_from([1, 1, 2, 3, 4]))
    body = b"b" * draw(st.sampled_from([0, 1, 10, FRAME_MAX - 8, FRAME_MAX - 7, 9000]))
    properties = draw(st.sampled_from(PROPERTIES))
    pieces = None
    if body and draw(st.booleans()):
        pieces = draw(st.lists(st.integers(0, len(body)), min_size=1, max_size=4))
        pieces.append(len(body) - sum(pieces) if sum(pieces) < len(body) else 0)
    return message(channel, method, body, properties, pieces)


def _others(role: Role) -> st.SearchStrategy[bytes]:
    methods = [
        method_bytes(1, B.Ack(1)),
        method_bytes(2, B.Ack(1, multiple=True)),
        method_bytes(3, Ch.Flow(active=False)),
        method_bytes(1, Ch.Close(200, "bye", 0, 0)),
        method_bytes(0, C.Close(320, "bye", 0, 0)),
        method_bytes(4, Ch.Open()),
        HeartbeatFrame().encode(),
    ]
    if role is CLIENT:
        methods.append(method_bytes(1, B.Cancel("ctag", no_wait=True)))
    else:
        methods.append(method_bytes(3, B.Get(queue="q")))
    return st.sampled_from(methods)


@st.composite
def peer_stream(draw: st.DrawFn, role: Role) -> tuple[bytes, list[int]]:
    items = draw(
        st.lists(st.one_of(_content(role), _content(role), _others(role)), min_size=1, max_size=8)
    )
    stream = bytearray(b"".join(items))
    structure = _structure(bytes(stream))
    for position, value in draw(
        st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3)
    ):
        if position % 2:
            stream[position % len(stream)] = value
        else:
            stream[structure[position // 2 % len(structure)]] = value
    cuts = draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=6))
    return bytes(stream), cuts


def _structure(stream: bytes) -> list[int]:
    """Offsets of every byte that is not body payload."""
    offsets, at = [], 0
    while at < len(stream):
        end = at + 8 + int.from_bytes(stream[at + 3 : at + 7], "big")
        offsets += [*range(at, at + 7), end - 1] if stream[at] == 3 else range(at, end)
        at = end
    return offsets


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_generated_streams_agree(data: st.DataObject) -> None:
    role = data.draw(st.sampled_from([CLIENT, SERVER]))
    stream, cuts = data.draw(peer_stream(role))
    feed_both(role, split(stream, cuts))


# ---------------------------------------------------------------------------------------
# The other entry points into the tuned path


def test_the_read_that_tunes_goes_on_with_whole_messages() -> None:
    # A client may send everything up to its first publishes without waiting.
    server = Connection(SERVER)
    header, start_ok, tune_ok, open_ = client_handshake_bytes()
    server.receive_data(header + start_ok)
    publish = CONTENT_IN[SERVER][0]
    data = tune_ok + open_ + method_bytes(1, Ch.Open()) + message(1, publish, b"hello") * 3
    events = server.receive_data(bytearray(data[:-1]))
    assert [type(e).__name__ for e in events] == [
        "ConnectionOpened",
        "ChannelOpened",
        "MessageReceived",
        "MessageReceived",
    ]
    assert server._skipped > 0 and server._decoder.buffered
    (last,) = server.receive_data(memoryview(b"\xce"))
    assert isinstance(last, MessageReceived) and last.body == b"hello"


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_any_buffer_type_gives_bytes_bodies(kind: Callable[[bytes], Any]) -> None:
    data = deliveries(CLIENT, 3)
    fast, slow = twins(CLIENT)
    got = fast.receive_data(kind(data))
    assert got == slow.receive_data(kind(data))
    assert [type(e.body) for e in got] == [bytes] * 3  # type: ignore[union-attr]


def test_a_header_frame_split_inside_its_first_seven_bytes() -> None:
    data = deliveries(SERVER, 2)
    for cut in range(1, 8):
        feed_both(SERVER, [data[:cut], data[cut:5], data[5:]])
        feed_both(SERVER, [data[:cut]] + [data[cut:][i : i + 3] for i in range(0, len(data), 3)])


def test_with_no_frame_max_any_frame_size_is_taken() -> None:
    pair = opened_pair({"frame_max": 0}, frame_max=0)
    pair.open_channel(1)
    assert pair.client.frame_max == 0 and pair.client._decoder.max_frame_size == 0
    deliver = CONTENT_IN[CLIENT][0]
    data = message(1, deliver, b"x" * 200_000, pieces=[200_000]) + message(1, deliver, b"y")
    (outcome,), fast = feed_both(CLIENT, [data], pair.client)
    assert [len(e[0].body) for e in outcome[1]] == [200_000, 1]
    assert fast._skipped - pair.client._skipped == len(data)
    feed_both(CLIENT, split(data, [5, 100, 150_000, 200_010]), pair.client)


@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_messages_after_other_frames_take_the_message_path_again(role: Role) -> None:
    method = CONTENT_IN[role][0]
    heartbeat = HeartbeatFrame().encode()  # through the decoder, as a run of frames
    between = method_bytes(1, B.Ack(1)) + heartbeat + method_bytes(1, B.Ack(2))
    data = message(1, method, b"a") + between + message(3, method, b"b") + between
    (outcome,), fast = feed_both(role, [data])
    # The second ack goes with the heartbeat: the run ends only at a message.
    through_decoder = len(heartbeat) + len(method_bytes(1, B.Ack(2)))
    assert fast._skipped - _PROTOTYPES[role]._skipped == len(data) - 2 * through_decoder
    assert [type(v) for v in outcome[1] if not isinstance(v, tuple)] == [MethodReceived] * 4
    assert [v[0].body for v in outcome[1] if isinstance(v, tuple)] == [b"a", b"b"]


@pytest.mark.parametrize("others", [16, 17])
def test_a_message_is_looked_for_within_16_frames_of_other_ones(others: int) -> None:
    method = CONTENT_IN[CLIENT][0]
    first, second = message(1, method, b"a"), message(1, method, b"b")
    data = first + HeartbeatFrame().encode() * others + second
    (outcome,), fast = feed_both(CLIENT, [data])
    assert [v[0].body for v in outcome[1] if isinstance(v, tuple)] == [b"a", b"b"]
    # Further on, the rest of the read goes through the decoder.
    taken = len(first) + (len(second) if others <= 16 else 0)
    assert fast._skipped - _PROTOTYPES[CLIENT]._skipped == taken


@pytest.mark.parametrize("closing", ["channel", "connection"])
def test_messages_after_our_close_are_discarded_alike(closing: str) -> None:
    pair = opened_pair()
    pair.open_channel(1)
    pair.open_channel(2)
    if closing == "channel":
        pair.client.close_channel(1)
        close_ok = method_bytes(1, Ch.CloseOk())
    else:
        pair.client.close()
        close_ok = method_bytes(0, C.CloseOk())
    pair.client.data_to_send()
    deliver = CONTENT_IN[CLIENT][0]
    data = (
        message(1, deliver, b"a") + message(2, deliver, b"b") + close_ok + message(2, deliver, b"c")
    )
    for cut in _boundaries(data):
        feed_both(CLIENT, [data[:cut], data[cut:]], pair.client)
    outcomes, _ = feed_both(CLIENT, [data], pair.client)
    bodies = [v[0].body for v in outcomes[0][1] if isinstance(v, tuple)]
    assert bodies == ([b"b", b"c"] if closing == "channel" else [])
