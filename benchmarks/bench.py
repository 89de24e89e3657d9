"""amqpcodec side by side with pamqp, pika and py-amqp: one process, one run.

    .venv/bin/python benchmarks/bench.py [--rounds N] [--sample-ms MS] [--only NAME]
        [--capture PATH [--capture-baseline DIR] [--capture-rounds N]]

Each row does one operation with amqpcodec and with each peer that offers it, the
libraries interleaved round by round and timed in CPU time (``timing.py`` says how), and
prints microseconds per operation (the median over the rounds) and the ratio
peer/amqpcodec (above 1: amqpcodec is faster) as the median and the range over the
rounds. Before anything is timed, every peer's output is checked once to be equivalent
to amqpcodec's (same frames, same values), so the rows compare the same work.

Adding a row: write a ``bench_*`` function that checks the outputs agree, then calls
``row(operation, ours, {peer name: callable | timing.Command(argv) | "why not offered"})``
and, for a bar, appends ``Bar(text, operation prefix, numerator, denominator, goal)`` to
``BARS``; list the function in ``BENCHES``. ``--only NAME`` runs only the functions
whose name contains NAME.

How each peer is driven (its own code paths, nothing re-implemented):

- pika 1.4.4: ``pika.frame.Method/Header/Body(...).marshal()`` split as
  ``Connection._send_message`` does; ``pika.frame.decode_frame`` over a buffer trimmed
  as ``Connection._on_data_available`` does; ``pika.channel.ContentFrameAssembler``;
  ``pika.data.encode_table``/``decode_table``.
- pamqp 4: ``pamqp.frame.marshal``/``unmarshal`` (trimming the buffer after each frame);
  ``pamqp.encode.field_table``/``pamqp.decode.field_table``. pamqp has no content
  assembly and no body splitting, so those rows have no pamqp column.
- py-amqp 5: ``amqp.method_framing.frame_writer`` into a list; ``TCPTransport.read_frame``
  with an in-memory socket (``io.BytesIO.read`` as ``recv``), arguments decoded with
  ``amqp.serialization.loads`` and properties with ``decode_properties_basic`` as its
  channel does; ``amqp.method_framing.frame_handler`` for assembly;
  ``amqp.serialization.dumps``/``loads`` with format ``F`` for tables.

Streams are fed in 64 KiB reads to every decoder. Not a test: nothing here fails on a
number. The bars are the speed bars of DESIGN.md and the README, printed met / NOT met.

Also timed: the hand-specialised ``ceiling.py`` (the fastest straight-line code for the
publish and deliver workloads, checked equal to amqpcodec's output) as a column next to
the generated code; ``Connection.send_message`` + ``data_to_send`` against bare
``encode_message``, and ``Connection.receive_data`` against a bare ``FrameDecoder`` (and
one followed by a ``ContentAssembler``); ``python -X importtime -c "import amqpcodec"``
against ``import json`` in fresh interpreters; the peak extra memory (tracemalloc) of sending and
of receiving a 64 MiB message through a Connection; with ``--capture PATH``,
``amqpcodec decode`` (text, ``--json``, ``--summary``) against tshark on that capture
(``bench_capture`` says how; ``benchmarks/record_capture.py`` makes one).
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import gc
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from struct import unpack_from
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import amqp.basic_message
import amqp.method_framing
import amqp.serialization
import amqp.spec
import amqp.transport
import ceiling  # benchmarks/ is on sys.path when this file runs
import pamqp
import pamqp.body
import pamqp.commands
import pamqp.decode
import pamqp.encode
import pamqp.exceptions
import pamqp.frame
import pamqp.header
import pika
import pika.channel
import pika.data
import pika.frame
import pika.spec
from timing import BARS, OURS, ROWS, SETTINGS, Bar, Command, format_bars, format_table, row

import amqpcodec
from amqpcodec import (
    BodyFrame,
    Connection,
    ContentAssembler,
    FrameDecoder,
    HeaderFrame,
    Message,
    MethodFrame,
    Role,
    encode_message,
    encode_message_parts,
    grammar,
    spec,
)
from amqpcodec._wire import decode_table, encode_table
from amqpcodec.events import ChannelOpened, ConnectionOpened, MessageReceived

READ_SIZE = 65536
FRAME_MAX = 131072

CHANNEL = 1
EXCHANGE = "amq.direct"
ROUTING_KEY = "bench.key"
HEADERS = {"x-retry": 1, "source": "bench"}
BODY_1K = bytes(range(256)) * 4
BODY_1M = bytes(range(256)) * 4096
MESSAGES = 10_000

UTC = datetime.timezone.utc
TABLE: dict[str, Any] = {
    "int": 42,
    "str": "hello world",
    "bool": True,
    "table": {"key": "value", "n": 7},
    "array": [1, "two", False],
    "large": 2**40,
    "negative": -1700,  # pamqp 3.3 (the newest on Python 3.10) cannot encode -128..-1
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    "void": None,
    "decimal": Decimal("3.14"),
}


# ---------------------------------------------------------------------------------------
# Normalised views, for checking that every library did the same work


def norm(value: Any) -> Any:
    """A library-neutral form of a decoded field value."""
    if isinstance(value, datetime.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return ("T", int(aware.timestamp()))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    if isinstance(value, dict):
        return {str(k): norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [norm(v) for v in value]
    if isinstance(value, bool):
        return ("bool", value)
    return value


def same(got: object, expected: object, what: str) -> None:
    if got != expected:
        raise SystemExit(f"{what}: output differs from amqpcodec's\n{got!r}\n{expected!r}")


def frame_view(frame: object) -> tuple[Any, ...]:
    """An amqpcodec frame in the neutral form the peers' frames are compared in."""
    if isinstance(frame, MethodFrame):
        m = frame.method
        if isinstance(m, spec.Basic.Deliver):
            args = (m.consumer_tag, m.delivery_tag, m.redelivered, m.exchange, m.routing_key)
        else:
            assert isinstance(m, spec.Basic.Publish)
            args = (m.exchange, m.routing_key, m.mandatory, m.immediate)
        return ("method", frame.channel, m.NAME, args)
    if isinstance(frame, HeaderFrame):
        p = frame.properties
        assert isinstance(p, spec.BasicProperties)
        props = (p.content_type, p.delivery_mode, norm(p.headers), p.message_id)
        return ("header", frame.channel, frame.body_size, props)
    assert isinstance(frame, BodyFrame)
    return ("body", frame.channel, bytes(frame.payload))


def decoded_view(data: bytes) -> list[tuple[Any, ...]]:
    decoder = FrameDecoder(max_frame_size=0)
    frames = decoder.feed(data)
    assert decoder.buffered == 0
    return [frame_view(f) for f in frames]


# ---------------------------------------------------------------------------------------
# 1. Encode a publish: method + header with 4 properties + 1 KiB body


def bench_publish() -> None:
    method = spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)
    props = spec.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=HEADERS, message_id="m-1"
    )

    def ours() -> bytes:
        return encode_message(CHANNEL, method, props, BODY_1K, FRAME_MAX)

    pika_method = pika.spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)
    pika_props = pika.spec.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=HEADERS, message_id="m-1"
    )
    pika_send = _pika_send_message(FRAME_MAX)

    def with_pika() -> bytes:
        return b"".join(pika_send(CHANNEL, pika_method, pika_props, BODY_1K))

    pamqp_method = pamqp.commands.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)
    pamqp_props = pamqp.commands.Basic.Properties(
        content_type="application/json", delivery_mode=2, headers=HEADERS, message_id="m-1"
    )
    marshal = pamqp.frame.marshal

    def with_pamqp() -> bytes:
        header = pamqp.header.ContentHeader(0, len(BODY_1K), pamqp_props)
        return b"".join(
            (
                marshal(pamqp_method, CHANNEL),
                marshal(header, CHANNEL),
                marshal(pamqp.body.ContentBody(BODY_1K), CHANNEL),
            )
        )

    out: list[bytes] = []
    writer = _pyamqp_writer(FRAME_MAX, out)
    dumps = amqp.serialization.dumps

    def with_pyamqp() -> bytes:
        del out[:]
        message = amqp.basic_message.Message(
            BODY_1K,
            content_type="application/json",
            delivery_mode=2,
            application_headers=HEADERS,
            message_id="m-1",
        )
        # as Channel.basic_publish -> send_method does
        args = dumps("Bssbb", (0, EXCHANGE, ROUTING_KEY, False, False))
        writer(1, CHANNEL, amqp.spec.Basic.Publish, args, message)
        return b"".join(out)

    def with_ceiling() -> bytes:
        return ceiling.publish(
            CHANNEL, EXCHANGE, ROUTING_KEY, "application/json", 2, HEADERS, "m-1", BODY_1K
        )

    expected = decoded_view(ours())
    for name, fn in (("pika", with_pika), ("pamqp", with_pamqp), ("py-amqp", with_pyamqp)):
        same(decoded_view(fn()), expected, f"publish/{name}")
    same(with_ceiling(), ours(), "publish/ceiling")  # byte for byte
    row(
        "encode a publish (method + header, 4 properties + 1 KiB body)",
        ours,
        {"pika": with_pika, "pamqp": with_pamqp, "py-amqp": with_pyamqp, CEILING: with_ceiling},
    )
    BARS.append(Bar("encode a publish vs pika", "encode a publish", "pika", OURS, 3.0))


def bench_grammar() -> None:
    """The construct grammar (amqpcodec.grammar): the second, declarative reading. Slow by
    design; timed per frame because a 10,000-message stream would take seconds a pass."""
    props = spec.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=HEADERS, message_id="m-1"
    )
    publish = encode_message(
        CHANNEL, spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY), props, BODY_1K, 0
    )
    deliver = encode_message(
        CHANNEL,
        spec.Basic.Deliver("ctag", 1, False, EXCHANGE, ROUTING_KEY),
        props,
        BODY_1K,
        FRAME_MAX,
    )
    containers = grammar.FrameStream.parse(publish).frames

    def ours_encode() -> bytes:
        return encode_message(
            CHANNEL,
            spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY),
            props,
            BODY_1K,
            0,
        )

    def grammar_encode() -> bytes:
        return b"".join(grammar.Frame.build(frame) for frame in containers)

    def ours_decode() -> list[Any]:
        return FrameDecoder(0).feed(deliver)

    def grammar_decode() -> Any:
        return grammar.FrameStream.parse(deliver).frames

    same(grammar_encode(), ours_encode(), "publish/grammar")  # byte for byte
    same(len(grammar_decode()), len(ours_decode()), "deliver/grammar")
    row(
        "grammar: encode one publish (method + header + 1 KiB body frames)",
        ours_encode,
        {GRAMMAR: grammar_encode},
    )
    row(
        "grammar: decode one delivery (method + header + 1 KiB body frames)",
        ours_decode,
        {GRAMMAR: grammar_decode},
    )


def _pika_send_message(frame_max: int) -> Callable[..., list[bytes]]:
    """pika.connection.Connection._send_message, minus the socket."""
    body_max_length = frame_max - pika.spec.FRAME_HEADER_SIZE - pika.spec.FRAME_END_SIZE

    def send(channel: int, method: Any, properties: Any, body: bytes) -> list[bytes]:
        length = len(body)
        frames = [
            pika.frame.Method(channel, method).marshal(),
            pika.frame.Header(channel, length, properties).marshal(),
        ]
        for start in range(0, length, body_max_length):
            frames.append(pika.frame.Body(channel, body[start : start + body_max_length]).marshal())
        return frames

    return send


class _Connection:
    """What py-amqp's frame_writer and frame_handler need of a connection."""

    def __init__(self, frame_max: int) -> None:
        self.frame_max = frame_max
        self.bytes_recv = 0
        self.bytes_sent = 0


class _Transport:
    def __init__(self, write: Callable[[Any], object]) -> None:
        self.write = write


def _pyamqp_writer(frame_max: int, out: list[bytes]) -> Callable[..., Any]:
    # frame_writer hands write() a view of a buffer it reuses: keep a copy.
    return amqp.method_framing.frame_writer(
        _Connection(frame_max), _Transport(lambda data: out.append(bytes(data)))
    )


# ---------------------------------------------------------------------------------------
# 2 and 3. Decode 10,000 deliveries, into frames and into messages


def deliver_stream() -> bytes:
    props = spec.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=HEADERS, message_id="m-1"
    )
    return b"".join(
        encode_message(
            CHANNEL,
            spec.Basic.Deliver("ctag", tag, False, EXCHANGE, ROUTING_KEY),
            props,
            BODY_1K,
            FRAME_MAX,
        )
        for tag in range(1, MESSAGES + 1)
    )


def reads(stream: bytes) -> list[bytes]:
    return [stream[i : i + READ_SIZE] for i in range(0, len(stream), READ_SIZE)]


def ours_frames(chunks: list[bytes]) -> list[Any]:
    decoder = FrameDecoder(max_frame_size=FRAME_MAX)
    frames: list[Any] = []
    for chunk in chunks:
        frames += decoder.feed(chunk)
    return frames


def ours_messages(chunks: list[bytes]) -> list[Any]:
    decoder = FrameDecoder(max_frame_size=FRAME_MAX)
    assemble = ContentAssembler().feed
    messages = []
    for chunk in chunks:
        for frame in decoder.feed(chunk):
            result = assemble(frame)
            if result is not None:
                messages.append(result)
    return messages


def pika_frames(chunks: list[bytes]) -> list[Any]:
    """pika.connection.Connection._on_data_available's loop."""
    decode_frame = pika.frame.decode_frame
    buffer = b""
    frames = []
    for chunk in chunks:
        buffer += chunk
        while buffer:
            consumed, frame = decode_frame(buffer)
            if not frame:
                break
            buffer = buffer[consumed:]
            frames.append(frame)
    return frames


def pika_messages(chunks: list[bytes]) -> list[Any]:
    decode_frame = pika.frame.decode_frame
    process = pika.channel.ContentFrameAssembler().process
    buffer = b""
    messages = []
    for chunk in chunks:
        buffer += chunk
        while buffer:
            consumed, frame = decode_frame(buffer)
            if not frame:
                break
            buffer = buffer[consumed:]
            result = process(frame)  # pika's Channel hands content frames to its assembler
            if result is not None:
                messages.append(result)
    return messages


def pamqp_frames(chunks: list[bytes]) -> list[Any]:
    unmarshal = pamqp.frame.unmarshal
    incomplete = pamqp.exceptions.UnmarshalingException
    buffer = b""
    frames = []
    for chunk in chunks:
        buffer += chunk
        while buffer:
            try:
                consumed, channel, frame = unmarshal(buffer)
            except incomplete:
                break
            buffer = buffer[consumed:]
            frames.append((channel, frame))
    return frames


_DELIVER_ARGS = "sLbss"  # amqp.channel.Channel._METHODS, basic.deliver


def _pyamqp_transport(stream: bytes) -> Any:
    transport = object.__new__(amqp.transport.TCPTransport)
    transport._read_buffer = b""
    transport._quick_recv = io.BytesIO(stream).read
    transport.raise_on_initial_eintr = True
    return transport


def pyamqp_frames(stream: bytes, count: int) -> list[Any]:
    read_frame = _pyamqp_transport(stream).read_frame
    loads = amqp.serialization.loads
    decode_properties = amqp.serialization.decode_properties_basic
    frames: list[Any] = []
    for _ in range(count):
        frame_type, channel, payload = read_frame()
        if frame_type == 1:
            method_sig = unpack_from(">HH", payload, 0)
            args, _ = loads(_DELIVER_ARGS, payload, 4)
            frames.append((1, channel, method_sig, args))
        elif frame_type == 2:
            (body_size,) = unpack_from(">Q", payload, 4)
            frames.append((2, channel, body_size, decode_properties(payload, 12)[0]))
        else:
            frames.append((frame_type, channel, payload))
    return frames


def pyamqp_messages(stream: bytes, count: int) -> list[Any]:
    read_frame = _pyamqp_transport(stream).read_frame
    loads = amqp.serialization.loads
    messages: list[Any] = []

    def callback(channel: int, method_sig: Any, buf: bytes, content: Any) -> None:
        # amqp.abstract_channel.AbstractChannel.dispatch_method's decoding
        args, _ = loads(_DELIVER_ARGS, buf, 4)
        messages.append((channel, method_sig, args, content))

    on_frame = amqp.method_framing.frame_handler(_Connection(FRAME_MAX), callback)
    for _ in range(count):
        on_frame(read_frame())
    return messages


def bench_decode() -> None:
    stream = deliver_stream()
    chunks = reads(stream)
    frame_count = 3 * MESSAGES

    expected = [frame_view(f) for f in ours_frames(chunks)]
    assert len(expected) == frame_count

    def view_pika(f: Any) -> tuple[Any, ...]:
        if isinstance(f, pika.frame.Method):
            m = f.method
            args = (m.consumer_tag, m.delivery_tag, m.redelivered, m.exchange, m.routing_key)
            return ("method", f.channel_number, m.NAME.replace("Basic.", "basic.").lower(), args)
        if isinstance(f, pika.frame.Header):
            p = f.properties
            props = (p.content_type, p.delivery_mode, norm(p.headers), p.message_id)
            return ("header", f.channel_number, f.body_size, props)
        return ("body", f.channel_number, bytes(f.fragment))

    def view_pamqp(item: Any) -> tuple[Any, ...]:
        channel, f = item
        if isinstance(f, pamqp.commands.Basic.Deliver):
            args = (f.consumer_tag, f.delivery_tag, f.redelivered, f.exchange, f.routing_key)
            return ("method", channel, "basic.deliver", args)
        if isinstance(f, pamqp.header.ContentHeader):
            p = f.properties
            props = (p.content_type, p.delivery_mode, norm(p.headers), p.message_id)
            return ("header", channel, f.body_size, props)
        return ("body", channel, bytes(f.value))

    def view_pyamqp(f: Any) -> tuple[Any, ...]:
        if f[0] == 1:
            assert f[2] == (60, 60)
            return ("method", f[1], "basic.deliver", tuple(f[3]))
        if f[0] == 2:
            p = f[3]
            props = (
                p.get("content_type"),
                p.get("delivery_mode"),
                norm(p.get("application_headers")),
                p.get("message_id"),
            )
            return ("header", f[1], f[2], props)
        return ("body", f[1], bytes(f[2]))

    def view_ceiling(f: tuple[Any, ...]) -> tuple[Any, ...]:
        if f[0] == "method":
            return ("method", f[1], "basic.deliver", f[2])
        if f[0] == "header":
            content_type, delivery_mode, headers, message_id = f[3]
            return ("header", f[1], f[2], (content_type, delivery_mode, norm(headers), message_id))
        return f

    same([view_ceiling(f) for f in ceiling.deliver_frames(chunks)], expected, "frames/ceiling")
    same([view_pika(f) for f in pika_frames(chunks)], expected, "frames/pika")
    same([view_pamqp(f) for f in pamqp_frames(chunks)], expected, "frames/pamqp")
    same([view_pyamqp(f) for f in pyamqp_frames(stream, frame_count)], expected, "frames/py-amqp")
    row(
        f"decode {MESSAGES:,} deliveries (1 KiB bodies) into frames",
        lambda: ours_frames(chunks),
        {
            "pika": lambda: pika_frames(chunks),
            "pamqp": lambda: pamqp_frames(chunks),
            "py-amqp": lambda: pyamqp_frames(stream, frame_count),
            CEILING: lambda: ceiling.deliver_frames(chunks),
        },
    )
    BARS.append(
        Bar("decode a Basic.Deliver stream into frames vs pika", "decode 10,000", "pika", OURS, 3.0)
    )

    def message_view(m: Message) -> tuple[Any, ...]:
        return (m.channel, frame_view(MethodFrame(m.channel, m.method))[3], m.body)

    expected_messages = [message_view(m) for m in ours_messages(chunks)]
    assert len(expected_messages) == MESSAGES
    got = [
        (mf.channel_number, view_pika(mf)[3], body) for mf, _header, body in pika_messages(chunks)
    ]
    same(got, expected_messages, "messages/pika")
    got = [
        (channel, tuple(args), bytes(content.body))
        for channel, _sig, args, content in pyamqp_messages(stream, frame_count)
    ]
    same(got, expected_messages, "messages/py-amqp")
    row(
        f"decode {MESSAGES:,} deliveries (1 KiB bodies) into messages",
        lambda: ours_messages(chunks),
        {
            "pika": lambda: pika_messages(chunks),
            "pamqp": "no content assembly",
            "py-amqp": lambda: pyamqp_messages(stream, frame_count),
        },
    )
    BARS.append(
        Bar(
            "decode it into messages vs pika (frames + assembler)",
            f"decode {MESSAGES:,} deliveries (1 KiB bodies) into messages",
            "pika",
            OURS,
            2.5,
        )
    )


# ---------------------------------------------------------------------------------------
# 3b. A relay (a proxy, a recorder, a capture filter): decode every frame, then either
# re-encode it unchanged or read the properties of each message


def ours_relay(chunks: list[bytes]) -> list[bytes]:
    decoder = FrameDecoder(max_frame_size=FRAME_MAX)
    return [b"".join([frame.encode() for frame in decoder.feed(chunk)]) for chunk in chunks]


def pika_relay(chunks: list[bytes]) -> list[bytes]:
    return [b"".join([frame.marshal() for frame in pika_frames([chunk])]) for chunk in chunks]


def pamqp_relay(chunks: list[bytes]) -> list[bytes]:
    marshal = pamqp.frame.marshal
    return [
        b"".join([marshal(frame, channel) for channel, frame in pamqp_frames([chunk])])
        for chunk in chunks
    ]


def _read_ours(messages: list[Any], which: str) -> int:
    read = 0
    for message in messages:
        properties = message.properties
        if which == "one":
            read += properties.content_type is not None
        else:
            for name in properties.FIELDS:
                read += getattr(properties, name) is not None
    return read


def _read_pika(messages: list[Any], which: str) -> int:
    names = [name for name in pika.spec.BasicProperties().__dict__ if not name.startswith("_")]
    read = 0
    for _method, header, _body in messages:
        properties = header.properties
        if which == "one":
            read += properties.content_type is not None
        else:
            for name in names:
                read += getattr(properties, name) is not None
    return read


def bench_relay() -> None:
    stream = deliver_stream()
    # Whole frames per read, so that a peer that decodes frame by frame sees the same cuts.
    frame_size = len(stream) // MESSAGES
    chunks = [stream[i : i + frame_size * 60] for i in range(0, len(stream), frame_size * 60)]
    same(b"".join(ours_relay(chunks)), stream, "relay/amqpcodec is byte-exact")
    peers: dict[str, Any] = {}
    for name, fn in (("pika", pika_relay), ("pamqp", pamqp_relay)):
        got = b"".join(fn(chunks))
        peers[name] = (lambda fn=fn: fn(chunks)) if got == stream else "not byte-exact"
    row(
        f"decode and re-encode {MESSAGES:,} deliveries (a relay)", lambda: ours_relay(chunks), peers
    )
    pieces = reads(stream)
    for which in ("never", "one", "all"):
        if which == "never":
            ours, theirs = (lambda: ours_messages(pieces)), (lambda: pika_messages(pieces))
        else:
            ours = lambda w=which: _read_ours(ours_messages(pieces), w)  # noqa: E731
            theirs = lambda w=which: _read_pika(pika_messages(pieces), w)  # noqa: E731
            assert ours() == theirs()
        label = {"never": "never read", "one": "one read", "all": "all read"}[which]
        row(
            f"decode {MESSAGES:,} deliveries into messages, properties {label}",
            ours,
            {"pika": theirs},
        )


# ---------------------------------------------------------------------------------------
# 4. Field-table round trip


def bench_table() -> None:
    def ours() -> Any:
        data = encode_table(TABLE)
        return decode_table(data, 0, len(data))[0]

    def with_pika() -> Any:
        pieces: list[bytes] = []
        pika.data.encode_table(pieces, TABLE)
        return pika.data.decode_table(b"".join(pieces), 0)[0]

    def with_pamqp() -> Any:
        return pamqp.decode.field_table(pamqp.encode.field_table(TABLE))[1]

    def with_pyamqp() -> Any:
        data = amqp.serialization.dumps("F", (TABLE,))
        return amqp.serialization.loads("F", data, 0)[0][0]

    expected = norm(TABLE)
    same(norm(ours()), expected, "table/amqpcodec")
    for name, fn in (("pika", with_pika), ("pamqp", with_pamqp), ("py-amqp", with_pyamqp)):
        same(norm(fn()), expected, f"table/{name}")
    row(
        "field table round trip (10 entries: int, str, bool, table, array, large int,"
        " negative, timestamp, void, decimal)",
        ours,
        {"pika": with_pika, "pamqp": with_pamqp, "py-amqp": with_pyamqp},
    )
    BARS.append(Bar("field-table round trip vs pika", "field table", "pika", OURS, 2.5))


# ---------------------------------------------------------------------------------------
# 5. A 1 MiB body at frame_max 131072


def bench_split() -> None:
    method = spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)
    props = spec.BasicProperties(content_type="application/octet-stream")
    body = BODY_1M

    def to_bytes() -> bytes:
        return encode_message(CHANNEL, method, props, body, FRAME_MAX)

    def to_parts() -> list[Any]:
        return encode_message_parts(CHANNEL, method, props, body, FRAME_MAX)

    def one_copy() -> bytes:
        return bytes(bytearray(body))

    pika_method = pika.spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)
    pika_props = pika.spec.BasicProperties(content_type="application/octet-stream")
    pika_send = _pika_send_message(FRAME_MAX)
    out: list[bytes] = []
    writer = _pyamqp_writer(FRAME_MAX, out)
    args = amqp.serialization.dumps("Bssbb", (0, EXCHANGE, ROUTING_KEY, False, False))

    def pyamqp_parts() -> list[bytes]:
        del out[:]
        message = amqp.basic_message.Message(body, content_type="application/octet-stream")
        writer(1, CHANNEL, amqp.spec.Basic.Publish, args, message)
        return out

    expected = to_bytes()
    same(b"".join(to_parts()), expected, "split/parts")
    same(one_copy(), body, "split/copy")
    same(
        decoded_view(b"".join(pika_send(CHANNEL, pika_method, pika_props, body))),
        decoded_view(expected),
        "split/pika",
    )
    same(decoded_view(b"".join(pyamqp_parts())), decoded_view(expected), "split/py-amqp")

    row(
        "1 MiB body at frame_max 131072 → bytes",
        to_bytes,
        {
            "pika": lambda: b"".join(pika_send(CHANNEL, pika_method, pika_props, body)),
            "py-amqp": lambda: b"".join(pyamqp_parts()),
            COPY: one_copy,
        },
    )
    row(
        "1 MiB body at frame_max 131072 → list of parts",
        to_parts,
        {
            "pika": lambda: pika_send(CHANNEL, pika_method, pika_props, body),
            "py-amqp": pyamqp_parts,
            COPY: one_copy,
        },
    )
    for form, goal in (("bytes", 1.5), ("list of parts", 0.1)):
        BARS.append(
            Bar(
                f"split a 1 MiB body into {form}, cost / one copy",
                f"1 MiB body at frame_max 131072 → {form}",
                OURS,
                COPY,
                goal,
                higher=False,
            )
        )


COPY = "one copy, bytes(bytearray(body)) (the yardstick)"
CEILING = "ceiling (benchmarks/ceiling.py)"
GRAMMAR = "amqpcodec.grammar (construct)"


# ---------------------------------------------------------------------------------------
# 6. Through Connection: the bare codec is the yardstick


def opened_pair(frame_max: int = FRAME_MAX) -> tuple[Connection, Connection]:
    """A client and a server Connection, handshake done in memory, channel 1 open."""
    client = Connection(Role.CLIENT, frame_max=frame_max)
    server = Connection(Role.SERVER, frame_max=frame_max)

    def pump() -> list[Any]:
        events: list[Any] = []
        while True:
            to_server, to_client = client.data_to_send(), server.data_to_send()
            if not to_server and not to_client:
                return events
            if to_server:
                events += server.receive_data(to_server)
            if to_client:
                events += client.receive_data(to_client)

    assert any(isinstance(e, ConnectionOpened) for e in pump())
    client.open_channel(CHANNEL)
    assert ChannelOpened(CHANNEL) in pump()
    return client, server


def bench_connection() -> None:
    client, _server = opened_pair()
    method = spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)
    props = spec.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=HEADERS, message_id="m-1"
    )

    def send() -> bytes:
        client.send_message(CHANNEL, method, props, BODY_1K)
        return client.data_to_send()

    def bare() -> bytes:
        return encode_message(CHANNEL, method, props, BODY_1K, FRAME_MAX)

    same(send(), bare(), "connection/send")
    row("publish through Connection.send_message + data_to_send", send, {BARE_ENCODE: bare})
    BARS.append(
        Bar(
            "Connection: send_message over encode_message, cost ratio",
            "publish through Connection",
            OURS,
            BARE_ENCODE,
            1.3,
            higher=False,
        )
    )

    chunks = reads(deliver_stream())

    def receive() -> list[Any]:
        events: list[Any] = []
        for chunk in chunks:
            events += client.receive_data(chunk)
        return events

    got = receive()
    assert len(got) == MESSAGES and all(isinstance(e, MessageReceived) for e in got)
    same(
        [(e.method, e.properties, e.body) for e in got[:3]],
        [(m.method, m.properties, m.body) for m in ours_messages(chunks)[:3]],
        "connection/receive",
    )
    row(
        f"receive {MESSAGES:,} deliveries through Connection.receive_data",
        receive,
        {
            BARE_DECODE: lambda: ours_frames(chunks),
            BARE_ASSEMBLE: lambda: ours_messages(chunks),
        },
    )
    for peer in (BARE_DECODE, BARE_ASSEMBLE):
        BARS.append(
            Bar(
                f"Connection: receive_data over {peer}, cost ratio",
                f"receive {MESSAGES:,} deliveries through Connection",
                OURS,
                peer,
                1.3,
                higher=False,
            )
        )


BARE_ENCODE = "bare encode_message"
BARE_DECODE = "bare FrameDecoder"
BARE_ASSEMBLE = "FrameDecoder + ContentAssembler"


def bench_connection_server() -> None:
    """The server's side: publishes, alone and with an ack after each (a client that
    consumes and publishes on one connection), received through Connection."""
    client, server = opened_pair()
    method = spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)
    props = spec.BasicProperties(
        content_type="application/json", delivery_mode=2, headers=HEADERS, message_id="m-1"
    )
    for acks in (False, True):
        for tag in range(1, MESSAGES + 1):
            client.send_message(CHANNEL, method, props, BODY_1K)
            if acks:
                client.send_method(CHANNEL, spec.Basic.Ack(tag))
        chunks = reads(client.data_to_send())

        def receive(chunks: list[bytes] = chunks) -> list[Any]:
            events: list[Any] = []
            for chunk in chunks:
                events += server.receive_data(chunk)
            return events

        got = receive()
        expected = ours_messages(chunks)  # messages, and the ack frames as they are
        assert len(got) == len(expected) == MESSAGES * (2 if acks else 1)
        same(
            [(e.method, getattr(e, "body", None)) for e in got[:4]],
            [(m.method, getattr(m, "body", None)) for m in expected[:4]],
            "connection/server receive",
        )
        row(
            f"receive {MESSAGES:,} publishes{' and acks' if acks else ''} through"
            " Connection.receive_data (server)",
            receive,
            {
                BARE_DECODE: lambda chunks=chunks: ours_frames(chunks),
                BARE_ASSEMBLE: lambda chunks=chunks: ours_messages(chunks),
            },
        )


# ---------------------------------------------------------------------------------------
# 7. Import time and memory (not rows of the table: printed under the bars)

EXTRA: list[tuple[str, str, bool]] = []  # (what, measured, bar met)


def importtime_us(statement: str, env: dict[str, str]) -> list[tuple[int, int, str]]:
    """``python -X importtime -c statement``: (self µs, cumulative µs, module) per line,
    the module name indented two spaces per level of nesting, as Python prints it."""
    stderr = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stderr
    lines = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        self_us, cumulative, name = line[len("import time:") :].split("|")
        lines.append((int(self_us), int(cumulative), name[1:]))
    return lines


def import_cost(module: str, env: dict[str, str]) -> int:
    """Cumulative µs of ``import module`` at the top level (0: already imported at start)."""
    lines = importtime_us(f"import {module}", env)
    return next((cumulative for _, cumulative, name in lines if name == module), 0)


IMPORT_RUNS = 9


def process_cpu_us(statement: str, env: dict[str, str]) -> float:
    """CPU time (user + system, µs) of a whole ``python -c statement`` process."""
    child = subprocess.Popen([sys.executable, "-c", statement], env=env)
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"python -c {statement!r} failed")
    return (usage.ru_utime + usage.ru_stime) * 1e6


def bench_import() -> None:
    """``python -X importtime -c "import amqpcodec"`` against ``import json``: the
    cumulative time of the top-level import, median and range over IMPORT_RUNS rounds of
    fresh interpreters, the two alternating. importtime reads a wall clock, which load
    elsewhere inflates, so each round also takes the CPU time of whole processes
    (``python -c "import amqpcodec"`` minus ``python -c "pass"``, likewise for json).
    Bytecode is cached (as in an installed package; pip compiles it, and the standard
    library's json has it) in a temporary PYTHONPYCACHEPREFIX warmed once; the time
    without any bytecode is shown too. The modules with the largest own (self) time
    under ``import amqpcodec`` (medians) are listed: the candidates for importing lazily."""
    root = str(Path(__file__).resolve().parent.parent)
    plain = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    plain["PYTHONPATH"] = root
    ours: list[float] = []
    json: list[float] = []
    ours_cpu: list[float] = []
    json_cpu: list[float] = []
    self_times: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory() as cache:
        cached = {**plain, "PYTHONPYCACHEPREFIX": cache}
        import_cost("amqpcodec", cached)  # warm the cache
        for _ in range(IMPORT_RUNS):
            lines = importtime_us("import amqpcodec", cached)
            top = next(i for i, (_, _, name) in enumerate(lines) if name == "amqpcodec")
            ours.append(lines[top][1])
            # amqpcodec's subtree: the lines after the previous top-level import
            start = max((i for i in range(top) if not lines[i][2].startswith(" ")), default=-1)
            for self_us, _, name in lines[start + 1 : top + 1]:
                self_times.setdefault(name.strip(), []).append(self_us)
            json.append(import_cost("json", cached))
            base = process_cpu_us("pass", cached)
            ours_cpu.append(process_cpu_us("import amqpcodec", cached) - base)
            json_cpu.append(process_cpu_us("import json", cached) - base)
    with tempfile.TemporaryDirectory() as empty:
        cold = {**plain, "PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        uncached = statistics.median(import_cost("amqpcodec", cold) for _ in range(3))
    heaviest = sorted(
        ((statistics.median(times), name) for name, times in self_times.items()), reverse=True
    )[:8]

    def figures(what: str, ours: list[float], json: list[float], extra: str) -> None:
        ms = 1000.0
        bar = 2 * statistics.median(json) + 30 * ms
        EXTRA.append(
            (
                f"{what} (median of {IMPORT_RUNS}, bar ≤ 2 x json + 30 ms)",
                f"{statistics.median(ours) / ms:.1f} ms (range {min(ours) / ms:.1f}-"
                f"{max(ours) / ms:.1f}) vs {statistics.median(json) / ms:.1f} ms (range"
                f" {min(json) / ms:.1f}-{max(json) / ms:.1f}), bar {bar / ms:.1f} ms" + extra,
                statistics.median(ours) <= bar,
            )
        )

    figures(
        '`python -X importtime -c "import amqpcodec"` vs `import json`',
        ours,
        json,
        f"; without cached bytecode {uncached / 1000:.1f} ms; largest self times: "
        + ", ".join(f"{name} {us / 1000:.1f} ms" for us, name in heaviest),
    )
    figures(
        'CPU time of `python -c "import amqpcodec"` vs `import json`, minus `python -c pass`',
        ours_cpu,
        json_cpu,
        "",
    )


def bench_first_feed() -> None:
    """A fresh decoder's first feed: a whole stream (a capture, a file) in one call."""
    stream = deliver_stream()
    chunks = reads(stream)

    def one_call() -> list[Any]:
        return FrameDecoder(max_frame_size=FRAME_MAX).feed(stream)

    same(decoded_view(stream), [frame_view(f) for f in ours_frames(chunks)], "one feed")
    row(
        "decode 10,000 deliveries in one feed of a fresh FrameDecoder",
        one_call,
        {"the same in 64 KiB reads": lambda: ours_frames(chunks)},
    )
    extra = peak_extra(one_call) / peak_extra(lambda: ours_frames(chunks))
    EXTRA.append(
        (
            "decode 10,000 deliveries in one feed: peak extra memory (tracemalloc)",
            f"{extra:.2f} x that of 64 KiB reads (goal ≤ 1.1 x)",
            extra <= 1.1,
        )
    )


def peak_extra(fn: Callable[[], object]) -> int:
    """Peak bytes allocated while ``fn`` runs, over what was allocated before."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
        del result
    finally:
        tracemalloc.stop()
    return peak - before


def bench_memory() -> None:
    size = 64 * 1024 * 1024
    body = bytes(size)  # allocated before measuring: the body is the caller's
    method = spec.Basic.Publish(exchange=EXCHANGE, routing_key=ROUTING_KEY)

    def send() -> bytes:
        client, _server = opened_pair()
        client.send_message(CHANNEL, method, None, body)
        return client.data_to_send()

    sent = send()

    # Receive on the server side, as a broker would, in 64 KiB reads made on the fly.
    def receive() -> list[Any]:
        _client, server = opened_pair()
        events: list[Any] = []
        view = memoryview(sent)
        for start in range(0, len(sent), READ_SIZE):
            events += server.receive_data(bytes(view[start : start + READ_SIZE]))
        assert len(events) == 1 and len(events[0].body) == size
        return events

    for what, fn, bar in (("send", send, 1.2), ("receive", receive, 2.2)):
        extra = peak_extra(fn) / size
        EXTRA.append(
            (
                f"{what} a 64 MiB message through Connection: peak extra memory (tracemalloc)",
                f"{extra:.2f} x the body (bar ≤ {bar} x)",
                extra <= bar,
            )
        )


# ---------------------------------------------------------------------------------------
# Captures: `amqpcodec decode` against tshark on the same file (--capture PATH)


class CaptureSettings:
    # a pcap made with benchmarks/record_capture.py; the variable serves compare.py
    path = (
        Path(os.environ["AMQPCODEC_BENCH_CAPTURE"])
        if "AMQPCODEC_BENCH_CAPTURE" in os.environ
        else None
    )
    baseline: Path | None = None  # a directory holding another amqpcodec package
    rounds = 5
    pycache: str | None = None  # the decode processes' PYTHONPYCACHEPREFIX, made on first use


CAPTURE = CaptureSettings()
TSHARK_OOO = ["-o", "tcp.reassemble_out_of_order:TRUE"]


# Runs a program with its output discarded and prints its exit status, CPU time (user +
# system, s) and peak RSS (KiB). A program started straight from the benchmark would
# report the benchmark's own peak RSS if larger: Linux keeps the peak of the memory a
# process had before exec (and a vfork child's is the parent's), so the program is
# started from this small fresh interpreter instead (its peak, about 9 MB, is a floor).
_LAUNCHER = """\
import json, os, sys
null = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0) for fd in (1, 2)]
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ, file_actions=null)
_, status, usage = os.wait4(pid, 0)
cpu = usage.ru_utime + usage.ru_stime
print(json.dumps([os.waitstatus_to_exitcode(status), cpu, usage.ru_maxrss]))
"""


class Process(Command):
    """A program timed by its own CPU time (user + system) and peak RSS, from ``os.wait4``
    in a small launcher process (``_LAUNCHER`` says why)."""

    def __init__(
        self, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None
    ) -> None:
        super().__init__(argv)
        self.env = env
        self.cwd = cwd
        self.peaks: list[int] = []  # ru_maxrss of each sample, KiB

    def calibrate(self) -> None:
        self.sample()  # warm up the page cache
        self.peaks.clear()

    def sample(self) -> float:
        launcher = [sys.executable, "-I", "-c", _LAUNCHER, *self.argv]
        out = subprocess.run(
            launcher, env=self.env, cwd=self.cwd, capture_output=True, text=True, check=True
        ).stdout
        status, cpu_s, peak_kib = json.loads(out)
        if status:
            raise SystemExit(f"{' '.join(self.argv)} exited {status}")
        self.peaks.append(peak_kib)
        return float(cpu_s) * 1e6


def _decode_process(path: Path, options: list[str], tree: Path | None = None) -> Process:
    """``python -m amqpcodec decode PATH OPTIONS`` with the amqpcodec package of ``tree``,
    by default the first PYTHONPATH entry (compare.py's worker sets it to the earlier
    commit's tree) or else this tree. The program runs in that directory, because
    ``python -m`` puts the working directory first on sys.path."""
    env = dict(os.environ)
    # Bytecode cached, as in an installed package (pip compiles it): without it each run
    # compiles every module from source first, about 70 ms, and a machine may forbid
    # writing it (PYTHONDONTWRITEBYTECODE). The first run (the warm-up) fills the cache.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = _bytecode_cache()
    if tree is None:
        first = env.get("PYTHONPATH", "").split(os.pathsep)[0]
        tree = Path(first) if first else Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = str(tree)
    argv = [sys.executable, "-m", "amqpcodec", "decode", str(path.resolve()), *options]
    return Process(argv, env, str(tree))


def _bytecode_cache() -> str:
    if CAPTURE.pycache is None:
        CAPTURE.pycache = tempfile.mkdtemp(prefix="amqpcodec-bench-pycache-")
        atexit.register(shutil.rmtree, CAPTURE.pycache, True)
    return CAPTURE.pycache


def _count_frames(argv: list[str]) -> int:
    """AMQP frames that ``tshark ... -T fields -e amqp.type`` lists (protocol headers,
    which have no frame type, not counted)."""
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return sum(len(line.split(",")) for line in out.split())


def bench_capture() -> None:
    """``amqpcodec decode`` (text, ``--json``, ``--summary``) against tshark on the capture
    given with ``--capture PATH`` (benchmarks/record_capture.py makes one), each a whole
    process timed by its CPU time and peak RSS (``os.wait4``), amqpcodec and tshark
    alternating round by round, amqpcodec's bytecode cached as in an installed package.
    The yardstick is ``tshark -r FILE -Y amqp``; beside it the same with out-of-order
    TCP segments reassembled (tshark's default leaves the AMQP frames in and after them
    undissected, so it does less work on a capture that has any), and the tshark
    commands whose output matches ours (``-V -O amqp`` for text, ``-T json -J amqp`` for
    JSON). Before timing, amqpcodec's frame count is checked against tshark's.
    ``--capture-baseline DIR`` adds another amqpcodec (the package in DIR, e.g. an older
    commit's from ``git archive``) as a column: before and after in one run, with their
    peak RSS. The capture may also be given as the environment variable
    AMQPCODEC_BENCH_CAPTURE (which compare.py passes on)."""
    path = CAPTURE.path
    if path is None:
        print(
            "capture rows skipped: no --capture PATH (benchmarks/record_capture.py makes one)",
            file=sys.stderr,
        )
        return
    tshark = shutil.which("tshark")
    if tshark is None:
        print("capture rows skipped: tshark is not installed", file=sys.stderr)
        return
    from amqpcodec import ProtocolHeader
    from amqpcodec.capture import FrameRecord, read_capture

    ours_count = sum(
        isinstance(r, FrameRecord) and not isinstance(r.frame, ProtocolHeader)
        for r in read_capture(path)
    )
    fields = [tshark, "-r", str(path), "-T", "fields", "-e", "amqp.type"]
    theirs = _count_frames([*fields[:1], *TSHARK_OOO, *fields[1:]])
    plain = _count_frames(fields)
    same(theirs, ours_count, "AMQP frames: tshark (out-of-order reassembled) vs amqpcodec")
    size = path.stat().st_size / 1e6
    print(
        f"capture {path}: {size:.1f} MB, {ours_count:,} AMQP frames (tshark with out-of-order"
        f" reassembly: the same; tshark by default: {plain:,})",
        file=sys.stderr,  # stdout may be compare.py's channel to its worker
    )
    yardstick = "tshark -Y amqp"
    ooo = "tshark -Y amqp, out-of-order reassembled"
    rounds, SETTINGS.rounds = SETTINGS.rounds, CAPTURE.rounds
    try:
        for what, options, equivalent in (
            ("--summary", ["--summary"], None),
            ("text", [], ["-V", "-O", "amqp"]),
            ("--json", ["--json"], ["-T", "json", "-J", "amqp"]),
        ):
            ours = _decode_process(path, options)
            peers: dict[str, Process] = {
                yardstick: Process([tshark, "-r", str(path), "-Y", "amqp"]),
                ooo: Process([tshark, *TSHARK_OOO, "-r", str(path), "-Y", "amqp"]),
            }
            if equivalent is not None:
                name = f"tshark -Y amqp {' '.join(equivalent)}, out-of-order reassembled"
                argv = [tshark, *TSHARK_OOO, "-r", str(path), "-Y", "amqp", *equivalent]
                peers[name] = Process(argv)
            if CAPTURE.baseline is not None:
                peers[f"amqpcodec from {CAPTURE.baseline}"] = _decode_process(
                    path, options, CAPTURE.baseline
                )
            operation = f"amqpcodec decode {what}: a {size:.0f} MB capture of 1 KiB messages"
            row(operation, ours, dict(peers))
            for name in (yardstick, ooo):  # the goal: amqpcodec at or below tshark
                BARS.append(
                    Bar(f"decode {what}, CPU time: {name} / amqpcodec", operation, name, OURS, 1.0)
                )
            if not ours.peaks or not all(p.peaks for p in peers.values()):
                continue  # compare.py times only amqpcodec
            mb = 1024.0
            peaks = ", ".join(
                f"{n} {statistics.median(p.peaks) / mb:.0f} MB" for n, p in peers.items()
            )
            EXTRA.append(
                (
                    f"decode {what}: peak RSS (median over the rounds)",
                    f"amqpcodec {statistics.median(ours.peaks) / mb:.0f} MB; {peaks}",
                    statistics.median(ours.peaks) <= statistics.median(peers[yardstick].peaks),
                )
            )
    finally:
        SETTINGS.rounds = rounds


# ---------------------------------------------------------------------------------------


def versions() -> Iterable[str]:
    yield f"Python {platform.python_version()} ({platform.python_implementation()})"
    yield f"machine: {platform.platform()}, {platform.machine()}, {platform.processor() or '?'}"
    yield f"date: {datetime.datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    yield (
        f"amqpcodec {amqpcodec.__version__}, pika {pika.__version__},"
        f" pamqp {pamqp.__version__}, py-amqp {amqp.__version__}"
    )
    yield (
        f"CPU time per operation (time.process_time_ns), libraries interleaved in"
        f" {SETTINGS.rounds} rounds of about {SETTINGS.sample_s * 1000:.0f} ms per sample;"
        f" ratios are the median and range over the rounds"
    )


BENCHES: list[Callable[[], None]] = [
    bench_publish,
    bench_decode,
    bench_relay,
    bench_table,
    bench_split,
    bench_grammar,
    bench_connection,
    bench_connection_server,
    bench_first_feed,
    bench_import,
    bench_memory,
    bench_capture,
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=SETTINGS.rounds, help="rounds per row")
    parser.add_argument(
        "--sample-ms", type=float, default=SETTINGS.sample_s * 1000, help="CPU ms per sample"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only the bench_* functions whose name contains NAME (repeatable)",
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="also put the output in README.md, between its bench.py output markers",
    )
    parser.add_argument(
        "--capture",
        type=Path,
        metavar="PATH",
        help="a capture for the decode-vs-tshark rows (benchmarks/record_capture.py)",
    )
    parser.add_argument(
        "--capture-baseline",
        type=Path,
        metavar="DIR",
        help="also time the amqpcodec package in DIR on the capture (before/after)",
    )
    parser.add_argument(
        "--capture-rounds", type=int, default=CAPTURE.rounds, help="rounds of the capture rows"
    )
    args = parser.parse_args(argv)
    CAPTURE.path = args.capture or CAPTURE.path
    CAPTURE.baseline = args.capture_baseline
    CAPTURE.rounds = args.capture_rounds
    SETTINGS.rounds = args.rounds
    SETTINGS.sample_s = args.sample_ms / 1000
    header = list(versions())
    print("\n".join(header), end="\n\n")
    for bench in BENCHES:
        if not args.only or any(name in bench.__name__ for name in args.only):
            bench()
    report = [
        *format_table(),
        "",
        "Bars (DESIGN.md; judged on the median ratio):",
        "",
        *format_bars(EXTRA),
    ]
    print("\n".join(report))
    if args.write_readme:
        write_readme(["```", *header, "```", "", *report])
    del ROWS[:]


README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- begin bench.py output -->", "<!-- end bench.py output -->"


def write_readme(lines: list[str]) -> None:
    """Replace what stands between the README's two markers with ``lines``."""
    text = README.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[end:], "utf-8")


if __name__ == "__main__":
    main()
