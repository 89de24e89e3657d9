"""Frames: classes, encode/decode, the incremental FrameDecoder, message splitting.

Byte vectors are protocol-facts §15; reply codes are the frame layer's table in the
README (protocol-facts §12). No test here measures time: the large-stream tests only
have to finish, which a decoder that re-copies its buffer per feed would not.
"""

from __future__ import annotations

import array
import contextlib
import itertools
import struct
import tracemalloc
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import amqpcodec
from amqpcodec import (
    BodyFrame,
    DecodeError,
    EncodeError,
    Frame,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
    decode_frame,
    encode_frame,
    encode_message,
    encode_message_parts,
    spec,
)
from amqpcodec import strategies as amqp_st

_HEADER = struct.Struct(">BHI")


def raw_frame(frame_type: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    """A frame built by hand, so that malformed ones can be built too."""
    return _HEADER.pack(frame_type, channel, len(payload)) + payload + end


def feed_all(decoder: FrameDecoder, pieces: Sequence[bytes | memoryview]) -> list[Frame]:
    frames: list[Frame] = []
    for piece in pieces:
        frames += decoder.feed(piece)
    return frames


def chunks(data: bytes, size: int) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield view[start : start + size]


# ---------------------------------------------------------------------------------------
# Sample frames: one of each kind, with the awkward values (empty, largest, tables)

TABLE = {
    "str": "text",
    "bytes": b"\x00\xff",
    "int": 7,
    "big": 2**40,
    "neg": -3,
    "bool": True,
    "void": None,
    "float": 0.5,
    "nested": {"a": [1, "x", False]},
}
ALL_PROPERTIES = spec.BasicProperties(
    content_type="application/json",
    content_encoding="gzip",
    headers=TABLE,
    delivery_mode=2,
    priority=9,
    correlation_id="corr",
    reply_to="amq.rabbitmq.reply-to",
    expiration="60000",
    message_id="m-1",
    timestamp=1_700_000_000,
    type="t",
    user_id="guest",
    app_id="app",
    cluster_id="c",
)

SAMPLE_FRAMES: list[Frame] = [
    ProtocolHeader(),
    ProtocolHeader(1, 0, 0, protocol_id=3),
    MethodFrame(
        0,
        spec.Connection.Start(
            version_major=0,
            version_minor=9,
            server_properties={"product": "RabbitMQ", "capabilities": {"basic.nack": True}},
            mechanisms=b"PLAIN AMQPLAIN",
            locales=b"en_US",
        ),
    ),
    MethodFrame(0, spec.Connection.Close(320, "CONNECTION_FORCED", 0, 0)),
    MethodFrame(0, spec.Connection.CloseOk()),
    MethodFrame(65535, spec.Channel.Open()),
    MethodFrame(1, spec.Queue.Declare(queue="q", durable=True, arguments=TABLE)),
    MethodFrame(1, spec.Basic.Publish(exchange="amq.direct", routing_key="rk", mandatory=True)),
    MethodFrame(2, spec.Basic.Deliver("ctag", 2**64 - 1, True, "ex", "rk" * 100)),
    MethodFrame(3, spec.Basic.Ack(delivery_tag=42, multiple=True)),
    HeaderFrame(1, 0),
    HeaderFrame(1, 5, spec.BasicProperties(content_type="text/plain", delivery_mode=2)),
    HeaderFrame(7, 2**64 - 1, ALL_PROPERTIES),
    BodyFrame(1, b""),
    BodyFrame(1, b"hello"),
    BodyFrame(65535, bytes(range(256)) * 40),
    HeartbeatFrame(),
]
SAMPLE_IDS = [f"{i}-{type(f).__name__}" for i, f in enumerate(SAMPLE_FRAMES)]
SAMPLE_STREAM_FRAMES = [f for f in SAMPLE_FRAMES if not isinstance(f, ProtocolHeader)]
SAMPLE_STREAM = ProtocolHeader().encode() + b"".join(f.encode() for f in SAMPLE_STREAM_FRAMES)


# ---------------------------------------------------------------------------------------
# Strategies (amqpcodec.strategies: every method, every table type letter)

methods = amqp_st.methods()
content_methods = amqp_st.methods(content=True)
basic_properties = amqp_st.properties()
channels = st.integers(0, 65535)
frames: st.SearchStrategy[Frame] = st.one_of(
    st.builds(MethodFrame, channels, methods),
    st.builds(HeaderFrame, channels, st.integers(0, 2**64 - 1), basic_properties),
    st.builds(BodyFrame, channels, st.binary(max_size=300)),
    st.just(HeartbeatFrame()),
)


# ---------------------------------------------------------------------------------------
# Frame classes


@pytest.mark.parametrize("frame", SAMPLE_FRAMES, ids=SAMPLE_IDS)
def test_round_trip(frame: Frame) -> None:
    data = frame.encode()
    assert isinstance(data, bytes)
    assert encode_frame(frame) == data
    assert decode_frame(data) == (frame, len(data))
    assert decode_frame(bytearray(data)) == (frame, len(data))
    decoded, end = decode_frame(b"junk" + data + b"more", offset=4) or (None, 0)
    assert (decoded, end) == (frame, 4 + len(data))
    assert decoded is not None
    assert decoded.encode() == data


@given(frames)
def test_round_trip_generated(frame: Frame) -> None:
    data = frame.encode()
    assert decode_frame(data) == (frame, len(data))
    assert FrameDecoder(max_frame_size=0).feed(data) == [frame]


def test_frame_equality() -> None:
    publish = spec.Basic.Publish(routing_key="rk")
    assert MethodFrame(1, publish) == MethodFrame(1, spec.Basic.Publish(routing_key="rk"))
    assert MethodFrame(1, publish) != MethodFrame(2, publish)
    assert MethodFrame(1, publish) != MethodFrame(1, spec.Basic.Publish(routing_key="other"))
    assert HeaderFrame(1, 5) == HeaderFrame(1, 5, spec.BasicProperties(), 60)
    assert HeaderFrame(1, 5) != HeaderFrame(1, 6)
    assert HeaderFrame(1, 5) != HeaderFrame(1, 5, spec.BasicProperties(priority=1))
    # A body is its bytes, whatever buffer type holds them.
    assert BodyFrame(1, b"ab") == BodyFrame(1, bytearray(b"ab"))
    assert BodyFrame(1, b"ab") == BodyFrame(1, memoryview(b"xaby")[1:3])
    assert BodyFrame(1, b"ab") != BodyFrame(1, b"abc")
    assert BodyFrame(1, b"ab") != BodyFrame(2, b"ab")
    assert HeartbeatFrame() == HeartbeatFrame()
    assert ProtocolHeader() == ProtocolHeader(0, 9, 1, 0)
    assert ProtocolHeader() != ProtocolHeader(1, 0, 0, 3)
    kinds: list[object] = [
        ProtocolHeader(),
        MethodFrame(1, publish),
        HeaderFrame(1, 0),
        BodyFrame(1, b""),
        HeartbeatFrame(),
    ]
    for i, a in enumerate(kinds):
        for j, b in enumerate(kinds):
            assert (a == b) == (i == j)
    assert BodyFrame(1, b"") != "not a frame"


def test_frame_repr() -> None:
    assert repr(ProtocolHeader()) == "ProtocolHeader(major=0, minor=9, revision=1, protocol_id=0)"
    assert repr(HeartbeatFrame()) == "HeartbeatFrame()"
    assert repr(BodyFrame(1, b"hi")) == "BodyFrame(channel=1, payload=b'hi')"
    method = repr(MethodFrame(1, spec.Basic.Publish(routing_key="rk")))
    assert method.startswith("MethodFrame(channel=1, method=Basic.Publish(")
    assert "routing_key='rk'" in method
    header = repr(HeaderFrame(1, 5, spec.BasicProperties(content_type="text/plain")))
    assert header == (
        "HeaderFrame(channel=1, body_size=5,"
        " properties=BasicProperties(content_type='text/plain'), class_id=60)"
    )


def test_protocol_header_fields() -> None:
    assert ProtocolHeader().version == (0, 9, 1)
    assert ProtocolHeader().is_0_9_1
    assert not ProtocolHeader(1, 0, 0, protocol_id=3).is_0_9_1
    assert not ProtocolHeader(0, 9, 0).is_0_9_1
    with pytest.raises(EncodeError):
        ProtocolHeader(256, 0, 0).encode()


@pytest.mark.parametrize(
    "frame",
    [
        MethodFrame(65536, spec.Basic.Ack()),
        MethodFrame(-1, spec.Basic.Ack()),
        HeaderFrame(65536, 0),
        BodyFrame(65536, b""),
        HeaderFrame(1, -1),
        HeaderFrame(1, 2**64),
    ],
    ids=repr,
)
def test_encode_out_of_range(frame: Frame) -> None:
    with pytest.raises(EncodeError) as info:
        frame.encode()
    assert info.value.field in ("channel", "body_size")


# ---------------------------------------------------------------------------------------
# protocol-facts §15 byte vectors

VECTORS: list[tuple[str, Frame]] = [
    ("41 4d 51 50 00 00 09 01", ProtocolHeader()),
    ("08 00 00 00 00 00 00 ce", HeartbeatFrame()),
    (
        "01 00 01 00 00 00 16 00 32 00 0a 00 00 0a 73 6f 6d 65 5f 71 75 65 75 65 1f 00 00 00 00 ce",
        MethodFrame(
            1,
            spec.Queue.Declare(
                queue="some_queue",
                passive=True,
                durable=True,
                exclusive=True,
                auto_delete=True,
                no_wait=True,
            ),
        ),
    ),
    (
        "01 00 01 00 00 00 0b 00 3c 00 28 00 00 00 02 72 6b 00 ce",
        MethodFrame(1, spec.Basic.Publish(exchange="", routing_key="rk")),
    ),
    (
        "02 00 01 00 00 00 1a 00 3c 00 00 00 00 00 00 00 00 00 05 90 00 0a 74 65 78 74 2f 70"
        " 6c 61 69 6e 02 ce",
        HeaderFrame(1, 5, spec.BasicProperties(content_type="text/plain", delivery_mode=2)),
    ),
    ("03 00 01 00 00 00 05 68 65 6c 6c 6f ce", BodyFrame(1, b"hello")),
    (
        "01 00 00 00 00 00 1c 00 0a 00 32 01 40 11 43 4f 4e 4e 45 43 54 49 4f 4e 5f 46 4f 52"
        " 43 45 44 00 00 00 00 ce",
        MethodFrame(0, spec.Connection.Close(320, "CONNECTION_FORCED", 0, 0)),
    ),
]


@pytest.mark.parametrize(("hex_bytes", "frame"), VECTORS, ids=[repr(f)[:40] for _, f in VECTORS])
def test_byte_vectors(hex_bytes: str, frame: Frame) -> None:
    data = bytes.fromhex(hex_bytes)
    assert frame.encode() == data
    assert decode_frame(data) == (frame, len(data))


def test_publish_vector_as_message() -> None:
    """§7's worked example: publish + header + body is what encode_message produces."""
    expected = bytes.fromhex("".join(hex_bytes for hex_bytes, _ in VECTORS[3:6]))
    message = encode_message(
        1,
        spec.Basic.Publish(exchange="", routing_key="rk"),
        spec.BasicProperties(content_type="text/plain", delivery_mode=2),
        b"hello",
        4096,
    )
    assert message == expected


# ---------------------------------------------------------------------------------------
# decode_frame: incomplete is None


@pytest.mark.parametrize("frame", SAMPLE_FRAMES, ids=SAMPLE_IDS)
def test_every_proper_prefix_is_incomplete(frame: Frame) -> None:
    data = frame.encode()
    for cut in range(len(data)):
        assert decode_frame(data[:cut]) is None, cut
        assert decode_frame(b"xx" + data[:cut], 2) is None, cut
    assert decode_frame(data) == (frame, len(data))


def test_decode_frame_takes_any_buffer() -> None:
    data = b"".join(f.encode() for f in SAMPLE_STREAM_FRAMES)
    for buffer in (data, bytearray(data), memoryview(data), memoryview(array.array("B", data))):
        offset, decoded = 0, []
        while (result := decode_frame(buffer, offset)) is not None:
            decoded.append(result[0])
            offset = result[1]
        assert decoded == SAMPLE_STREAM_FRAMES
        assert offset == len(data)
    # A buffer of wider items is read as its bytes.
    words = array.array("H", HeartbeatFrame().encode())
    assert decode_frame(memoryview(words)) == (HeartbeatFrame(), 8)


# ---------------------------------------------------------------------------------------
# FrameDecoder: any split gives the same frames


def test_one_shot_stream() -> None:
    decoder = FrameDecoder(max_frame_size=0)
    assert decoder.feed(SAMPLE_STREAM) == [ProtocolHeader(), *SAMPLE_STREAM_FRAMES]
    assert decoder.buffered == 0
    assert decoder.offset == len(SAMPLE_STREAM)
    assert decoder.feed(b"") == []


def test_byte_at_a_time_stream() -> None:
    decoder = FrameDecoder(max_frame_size=0)
    got = feed_all(decoder, list(chunks(SAMPLE_STREAM, 1)))
    assert got == [ProtocolHeader(), *SAMPLE_STREAM_FRAMES]
    assert decoder.buffered == 0


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.integers(1, len(SAMPLE_STREAM) - 1), max_size=60))
def test_any_split_of_the_sample_stream(cuts: set[int]) -> None:
    points = [0, *sorted(cuts), len(SAMPLE_STREAM)]
    pieces = [SAMPLE_STREAM[a:b] for a, b in itertools.pairwise(points)]
    got = feed_all(FrameDecoder(max_frame_size=0), pieces)
    assert got == [ProtocolHeader(), *SAMPLE_STREAM_FRAMES]


@given(st.lists(frames, max_size=12), st.data())
def test_any_split_of_generated_frames(generated: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(f.encode() for f in generated)
    cuts = data.draw(st.sets(st.integers(0, len(stream)), max_size=20)) if stream else set()
    points = [0, *sorted(cuts), len(stream)]
    decoder = FrameDecoder(max_frame_size=0)
    got = feed_all(decoder, [stream[a:b] for a, b in itertools.pairwise(points)])
    assert got == generated
    assert decoder.buffered == 0


def test_feed_accepts_any_buffer_type() -> None:
    data = HeartbeatFrame().encode()
    for buffer in (data, bytearray(data), memoryview(data)):
        assert FrameDecoder().feed(buffer) == [HeartbeatFrame()]


def _big_body_stream(total: int, payload_size: int) -> tuple[bytes, list[BodyFrame]]:
    """Body frames of ``payload_size`` bytes (a few distinct payloads, varying channels)
    adding up to about ``total`` bytes."""
    patterns = [bytes([i]) * payload_size for i in range(3)]
    patterns.append(bytes(range(256)) * (payload_size // 256) + bytes(payload_size % 256))
    count = total // (payload_size + 8)
    body_frames = [BodyFrame(1 + i % 5, patterns[i % len(patterns)]) for i in range(count)]
    stream = b"".join(f.encode() for f in body_frames[: len(patterns) * 5])
    # The frames repeat with a period of 20, so the stream is the period repeated.
    period = len(stream)
    stream = stream * (count // 20) + stream[: (count % 20) * (payload_size + 8)]
    assert len(stream) == count * (payload_size + 8) and period
    return stream, body_frames


def test_100_mib_in_64k_chunks_equals_one_shot() -> None:
    frame_max = 131072
    stream, expected = _big_body_stream(100 * 1024 * 1024, frame_max - 8)
    one_shot = FrameDecoder(max_frame_size=frame_max).feed(stream)
    assert len(one_shot) == len(expected)
    assert one_shot == expected
    decoder = FrameDecoder(max_frame_size=frame_max)
    count = 0
    for piece in chunks(stream, 64 * 1024):
        for frame in decoder.feed(piece):
            assert frame == one_shot[count]
            count += 1
        assert decoder.buffered < frame_max
    assert count == len(one_shot)
    assert decoder.buffered == 0
    assert decoder.offset == len(stream)


@pytest.mark.parametrize("opening", [b"", b"AMQP\x00\x00\x09\x01"])
def test_a_first_feed_of_bytes_is_decoded_in_place(opening: bytes) -> None:
    """A fresh decoder's first feed holds no copy of the data: the peak is the frames."""
    stream, expected = _big_body_stream(8 * 1024 * 1024, 4096)
    data = opening + stream
    tracemalloc.start()
    try:
        frames = FrameDecoder().feed(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert frames[len(frames) - len(expected) :] == expected
    assert (ProtocolHeader() in frames) == bool(opening)
    # The frames hold the bodies (one copy of the data); a second copy was the buffer.
    assert peak < 1.25 * len(data)


@pytest.mark.parametrize(
    "first", [b"A", b"AMQ", b"AMQP\x00\x00\x09", b"\x08", b"AMQP\x00\x00\x09\x01\x08\x00"]
)
def test_any_first_feed_then_the_rest_gives_the_same_frames(first: bytes) -> None:
    data = b"AMQP\x00\x00\x09\x01" + HeartbeatFrame().encode() * 3
    if not data.startswith(first):
        data = first + HeartbeatFrame().encode()[1:] + HeartbeatFrame().encode()
    decoder = FrameDecoder()
    frames = decoder.feed(first) + decoder.feed(data[len(first) :])
    assert frames == FrameDecoder().feed(data)
    assert decoder.offset == len(data)


def test_a_first_feed_that_is_not_amqp_fails_at_once() -> None:
    decoder = FrameDecoder()
    with pytest.raises(DecodeError) as info:
        decoder.feed(b"HTTP/1.1 200 OK\r\n")
    assert info.value.offset == 0
    assert info.value.frames == []
    with pytest.raises(DecodeError):
        decoder.feed(HeartbeatFrame().encode())


@pytest.mark.parametrize(("chunk", "total"), [(1, 1 << 20), (7, 4 << 20)])
def test_small_chunks_over_large_frames_finish(chunk: int, total: int) -> None:
    """Byte-at-a-time and 7-byte feeding of MiB-sized streams made of 128 KiB frames.

    A decoder that copied or re-scanned its buffer on each feed would do about
    total * frame_size / (2 * chunk) byte operations here (64 GB for the 1-byte case):
    it would not finish. The buffer never holds more than one frame."""
    frame_max = 131072
    stream, expected = _big_body_stream(total, frame_max - 8)
    decoder = FrameDecoder(max_frame_size=frame_max)
    feed = decoder.feed
    got: list[Frame] = []
    most = 0
    for piece in chunks(stream, chunk):
        got += feed(piece)
        most = max(most, decoder.buffered)
    assert got == expected
    assert most <= frame_max
    assert decoder.buffered == 0


# ---------------------------------------------------------------------------------------
# The frame size limit: checked with 7 bytes in


FORGED_2GIB = _HEADER.pack(3, 1, 0x7FFFFFF8)  # a body frame claiming 2 GiB


def test_forged_size_rejected_after_seven_bytes() -> None:
    tracemalloc.start()
    try:
        decoder = FrameDecoder(max_frame_size=131072)
        with pytest.raises(DecodeError) as info:
            decoder.feed(FORGED_2GIB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.reply_code == 501
    assert info.value.offset == 0
    assert peak < 64 * 1024


def test_forged_size_rejected_byte_by_byte_at_the_seventh() -> None:
    decoder = FrameDecoder(max_frame_size=131072)
    for byte in FORGED_2GIB[:6]:
        assert decoder.feed(bytes([byte])) == []
    with pytest.raises(DecodeError) as info:
        decoder.feed(FORGED_2GIB[6:])
    assert info.value.reply_code == 501


def test_forged_size_offset_is_absolute() -> None:
    decoder = FrameDecoder(max_frame_size=4096)
    first = ProtocolHeader().encode() + HeartbeatFrame().encode() + b"\x08\x00"
    assert decoder.feed(first) == [ProtocolHeader(), HeartbeatFrame()]
    with pytest.raises(DecodeError) as info:
        decoder.feed(b"\x00" + FORGED_2GIB[3:])
    assert (info.value.reply_code, info.value.offset) == (501, 16)


def test_decode_frame_limit() -> None:
    with pytest.raises(DecodeError) as info:
        decode_frame(FORGED_2GIB, max_frame_size=4096)
    assert info.value.reply_code == 501
    assert decode_frame(FORGED_2GIB) is None  # no limit: merely incomplete


@pytest.mark.parametrize("frame_max", [4096, 8192, 131072])
def test_limit_counts_the_whole_frame(frame_max: int) -> None:
    """frame_max includes the 7-byte header and the end octet (Errata #11)."""
    fits = BodyFrame(1, bytes(frame_max - 8)).encode()
    assert len(fits) == frame_max
    assert FrameDecoder(max_frame_size=frame_max).feed(fits) == [BodyFrame(1, bytes(frame_max - 8))]
    assert decode_frame(fits, max_frame_size=frame_max) is not None
    over = BodyFrame(1, bytes(frame_max - 7)).encode()
    with pytest.raises(DecodeError) as info:
        FrameDecoder(max_frame_size=frame_max).feed(over[:7])
    assert info.value.reply_code == 501
    with pytest.raises(DecodeError):
        decode_frame(over, max_frame_size=frame_max)


def test_limit_can_change_between_feeds() -> None:
    decoder = FrameDecoder(max_frame_size=4096)
    with pytest.raises(DecodeError):
        FrameDecoder(max_frame_size=4096).feed(BodyFrame(1, bytes(5000)).encode())
    decoder.max_frame_size = 8192  # after connection.tune
    assert decoder.feed(BodyFrame(1, bytes(5000)).encode()) == [BodyFrame(1, bytes(5000))]
    decoder.max_frame_size = 0
    assert decoder.feed(BodyFrame(1, bytes(200_000)).encode()) == [BodyFrame(1, bytes(200_000))]


def test_default_limit_is_rabbitmq_frame_max() -> None:
    decoder = FrameDecoder()
    assert decoder.max_frame_size == 131072
    assert decoder.feed(BodyFrame(1, bytes(131064)).encode()) == [BodyFrame(1, bytes(131064))]
    with pytest.raises(DecodeError):
        decoder.feed(BodyFrame(1, bytes(131065)).encode())


# ---------------------------------------------------------------------------------------
# Protocol header


@pytest.mark.parametrize(
    ("data", "header"),
    [
        (b"AMQP\x00\x00\x09\x01", ProtocolHeader()),
        (b"AMQP\x03\x01\x00\x00", ProtocolHeader(1, 0, 0, protocol_id=3)),  # AMQP 1.0 SASL
        (b"AMQP\x01\x01\x00\x09", ProtocolHeader(1, 0, 9, protocol_id=1)),  # old 0-9
        (b"AMQP\x00\x00\x09\x00", ProtocolHeader(0, 9, 0)),
    ],
)
def test_protocol_header_at_stream_start(data: bytes, header: ProtocolHeader) -> None:
    """A server that refuses our version answers with its own header (PDF §4.2.2)."""
    rest = MethodFrame(0, spec.Connection.CloseOk()).encode()
    for cut in range(len(data) + 1):
        decoder = FrameDecoder()
        got = decoder.feed(data[:cut])
        got += decoder.feed(data[cut:] + rest)
        assert got == [header, MethodFrame(0, spec.Connection.CloseOk())], cut
    decoded = decode_frame(data)
    assert decoded == (header, 8)
    assert decoded[0].is_0_9_1 == (header == ProtocolHeader())


def test_protocol_header_split_byte_by_byte() -> None:
    decoder = FrameDecoder()
    got = feed_all(decoder, [bytes([b]) for b in b"AMQP\x00\x00\x09\x01"])
    assert got == [ProtocolHeader()]
    assert decoder.offset == 8


@pytest.mark.parametrize(
    "start",
    [b"HTTP/1.1 400 Bad Request\r\n", b"GET / HTTP/1.1\r\n", b"AMQX\x00\x00\x09\x01"],
)
def test_not_amqp_fails(start: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        FrameDecoder().feed(start)
    assert (info.value.reply_code, info.value.offset) == (501, 0)
    with pytest.raises(DecodeError):
        decode_frame(start)
    decoder = FrameDecoder()  # the same, a byte at a time: it fails by the 8th byte
    with pytest.raises(DecodeError) as info:
        for byte in start[:8]:
            decoder.feed(bytes([byte]))
    assert (info.value.reply_code, info.value.offset) == (501, 0)


def test_protocol_header_mid_stream_is_an_error() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(HeartbeatFrame().encode()) == [HeartbeatFrame()]
    with pytest.raises(DecodeError) as info:
        decoder.feed(ProtocolHeader().encode())
    assert (info.value.reply_code, info.value.offset) == (501, 8)


def test_second_protocol_header_is_an_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(DecodeError) as info:
        decoder.feed(ProtocolHeader().encode() * 2)
    assert (info.value.reply_code, info.value.offset) == (501, 8)


# ---------------------------------------------------------------------------------------
# Malformed frames: DecodeError with the documented reply code and a stream offset

_ACK = spec.Basic.Ack(delivery_tag=7).encode()
_PROPS_EMPTY = struct.pack(">HHQH", 60, 0, 0, 0)


def _header_payload(class_id: int = 60, weight: int = 0, flags: int = 0) -> bytes:
    return struct.pack(">HHQH", class_id, weight, 0, flags)


def _declare_with_table(table_items: bytes) -> bytes:
    """queue.declare whose arguments table holds ``table_items``."""
    return b"\x00\x32\x00\x0a\x00\x00\x01q\x00" + struct.pack(">I", len(table_items)) + table_items


def _nested(depth: int) -> bytes:
    """Table entries nesting ``depth`` tables: {"k": {"k": ...}}."""
    inner = b""
    for _ in range(depth):
        inner = b"\x01kF" + struct.pack(">I", len(inner)) + inner
    return inner


# (situation, frame bytes, reply code, offset in the frame or None for "inside it")
MALFORMED: list[tuple[str, bytes, int, int | None]] = [
    ("bad frame-end", raw_frame(3, 1, b"ab", end=b"\x00"), 501, 9),
    ("frame-end missing", raw_frame(8, 0, b"", end=b"\x08"), 501, 7),
    ("unknown frame type 4", raw_frame(4, 1, b""), 501, 0),
    ("unknown frame type 0", raw_frame(0, 0, b""), 501, 0),
    ("unknown frame type 0xce", raw_frame(0xCE, 0, b""), 501, 0),
    ("heartbeat with payload", raw_frame(8, 0, b"x"), 501, None),
    ("heartbeat on channel 1", raw_frame(8, 1, b""), 503, None),
    ("method with trailing bytes", raw_frame(1, 1, _ACK + b"\x00"), 501, None),
    ("method arguments truncated", raw_frame(1, 1, _ACK[:-3]), 501, None),
    ("method without ids", raw_frame(1, 1, b"\x00\x3c"), 501, None),
    ("empty method frame", raw_frame(1, 1, b""), 501, None),
    ("unknown method 60.99", raw_frame(1, 1, b"\x00\x3c\x00\x63"), 540, 7),
    ("unknown class 99.10", raw_frame(1, 1, b"\x00\x63\x00\x0a"), 540, 7),
    ("content header weight 1", raw_frame(2, 1, _header_payload(weight=1)), 505, None),
    ("content header for class 10", raw_frame(2, 1, _header_payload(class_id=10)), 505, None),
    ("content header too short", raw_frame(2, 1, b"\x00\x3c\x00"), 501, None),
    ("properties truncated", raw_frame(2, 1, struct.pack(">HHQH", 60, 0, 0, 0x8000)), 501, None),
    ("properties trailing bytes", raw_frame(2, 1, _PROPS_EMPTY + b"\x00"), 501, None),
    ("table runs past frame", raw_frame(1, 1, b"\x00\x32\x00\x0a" + bytes(4) + b"\xff"), 501, None),
    # A short string whose length runs past the frame: the offset stays inside the frame
    # even though the bytes after the frame would satisfy the length.
    ("shortstr past frame end", raw_frame(1, 1, b"\x00\x3c\x00\x28\x00\x00\x09"), 501, None),
    ("property past frame end", raw_frame(2, 1, _header_payload(flags=0xC000)), 501, None),
    ("table past frame end", raw_frame(2, 1, _header_payload(flags=0xA000) + b"\xff"), 501, None),
    ("unknown table type letter", raw_frame(1, 1, _declare_with_table(b"\x01kZ")), 502, None),
    ("tables nested too deep", raw_frame(1, 1, _declare_with_table(_nested(100))), 502, None),
]


def _check_error(error: DecodeError, code: int, start: int, rel: int | None, size: int) -> None:
    assert error.reply_code == code, error
    if rel is None:
        assert start <= error.offset < start + size, (error.offset, start, size)
    else:
        assert error.offset == start + rel, (error.offset, start + rel)


@pytest.mark.parametrize(
    ("data", "code", "rel"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_frame(data: bytes, code: int, rel: int | None) -> None:
    # decode_frame, at the start and at an offset
    with pytest.raises(DecodeError) as info:
        decode_frame(data)
    _check_error(info.value, code, 0, rel, len(data))
    assert info.value.offset == decode_offset(data, 0)
    with pytest.raises(DecodeError) as info:
        decode_frame(b"\x00" * 5 + data, 5)
    _check_error(info.value, code, 5, rel, len(data))

    # FrameDecoder: offsets count from the start of the stream, across feeds
    prefix = ProtocolHeader().encode() + b"".join(f.encode() for f in SAMPLE_STREAM_FRAMES)
    decoder = FrameDecoder(max_frame_size=0)
    assert len(decoder.feed(prefix + data[:3])) == len(SAMPLE_STREAM_FRAMES) + 1
    with pytest.raises(DecodeError) as info:
        decoder.feed(data[3:])
    _check_error(info.value, code, len(prefix), rel, len(data))
    first = info.value

    # ... and it stays failed, whatever comes next
    for more in (b"", HeartbeatFrame().encode(), data):
        with pytest.raises(DecodeError) as info:
            decoder.feed(more)
        assert (info.value.reply_code, info.value.offset) == (first.reply_code, first.offset)

    # a byte at a time: the same error
    decoder = FrameDecoder(max_frame_size=0)
    with pytest.raises(DecodeError) as info:
        for byte in prefix + data:
            decoder.feed(bytes([byte]))
    assert (info.value.reply_code, info.value.offset) == (first.reply_code, first.offset)


def decode_offset(data: bytes, offset: int) -> int:
    try:
        decode_frame(data, offset)
    except DecodeError as exc:
        return exc.offset
    raise AssertionError("no error")


def test_unknown_method_error_names_the_ids() -> None:
    with pytest.raises(DecodeError) as info:
        decode_frame(raw_frame(1, 1, b"\x00\x3c\x00\x63"))
    assert (info.value.class_id, info.value.method_id) == (60, 99)


def test_argument_error_names_the_method() -> None:
    with pytest.raises(DecodeError) as info:
        decode_frame(raw_frame(1, 1, _ACK + b"\x00"))
    assert (info.value.class_id, info.value.method_id) == (60, 80)
    assert "basic.ack" in str(info.value)


def test_decode_error_is_a_remote_protocol_error() -> None:
    with pytest.raises(amqpcodec.RemoteProtocolError):
        decode_frame(raw_frame(4, 1, b""))
    assert issubclass(DecodeError, amqpcodec.AMQPError)


def test_unknown_type_is_reported_before_its_payload() -> None:
    """An unknown type is refused on its header, without waiting for a payload."""
    with pytest.raises(DecodeError) as info:
        FrameDecoder(max_frame_size=0).feed(_HEADER.pack(4, 1, 1000))
    assert info.value.reply_code == 501


# ---------------------------------------------------------------------------------------
# Random and mutated input raises only DecodeError


def _feed_until_error(decoder: FrameDecoder, pieces: Sequence[bytes]) -> list[Frame]:
    got: list[Frame] = []
    try:
        for piece in pieces:
            got += decoder.feed(piece)
    except DecodeError as exc:
        assert exc.reply_code in (501, 502, 503, 505, 540), exc
        assert 0 <= exc.offset <= sum(map(len, pieces))
        with pytest.raises(DecodeError):
            decoder.feed(b"\x08\x00\x00\x00\x00\x00\x00\xce")
    return got


def _split(data: bytes, cuts: set[int]) -> list[bytes]:
    points = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.binary(max_size=400), st.sets(st.integers(0, 400), max_size=10), st.booleans())
def test_random_bytes_raise_only_decode_error(
    data: bytes, cuts: set[int], with_header: bool
) -> None:
    if with_header:
        data = ProtocolHeader().encode() + data
    _feed_until_error(FrameDecoder(max_frame_size=4096), _split(data, cuts))
    with contextlib.suppress(DecodeError):
        decode_frame(data, max_frame_size=4096)


@given(st.lists(st.binary(min_size=7, max_size=30), max_size=8))
def test_random_frame_like_bytes_raise_only_decode_error(pieces: list[bytes]) -> None:
    """Random payloads behind plausible headers reach the method and header decoders."""
    stream = b""
    for i, piece in enumerate(pieces):
        frame_type = (1, 2, 3, 8)[piece[0] % 4]
        if frame_type == 1 and i % 2:  # a real method id, so argument decoding runs
            index = sorted(spec.METHODS)[piece[1] % len(spec.METHODS)]
            piece = struct.pack(">HH", *index) + piece[2:]
        elif frame_type == 2 and i % 2:
            piece = b"\x00\x3c\x00\x00" + piece[2:]
        stream += raw_frame(frame_type, piece[1] % 3, piece)
    _feed_until_error(FrameDecoder(max_frame_size=0), [stream])


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(frames, min_size=1, max_size=6),
    st.lists(
        st.tuples(
            st.sampled_from(["set", "insert", "delete"]), st.integers(0), st.integers(0, 255)
        ),
        min_size=1,
        max_size=6,
    ),
    st.sets(st.integers(0, 2000), max_size=6),
)
def test_mutated_stream_raises_only_decode_error(
    generated: list[Frame], mutations: list[tuple[str, int, int]], cuts: set[int]
) -> None:
    data = bytearray(b"".join(f.encode() for f in generated))
    for kind, position, value in mutations:
        position %= len(data) + 1
        if kind == "insert":
            data[position:position] = bytes([value])
        elif position < len(data):
            if kind == "set":
                data[position] = value
            else:
                del data[position]
    assume(data)
    mutated = bytes(data)
    _feed_until_error(FrameDecoder(max_frame_size=1 << 20), _split(mutated, cuts))
    try:
        offset = 0
        while (result := decode_frame(mutated, offset, max_frame_size=1 << 20)) is not None:
            offset = result[1]
    except DecodeError:
        pass


def _outcome(pieces: Sequence[bytes | bytearray], frame_max: int) -> tuple[object, ...]:
    """Frames, then the error (reply code, offset, frames before it) or the end state."""
    decoder = FrameDecoder(max_frame_size=frame_max)
    got: list[Frame] = []
    try:
        for piece in pieces:
            got += decoder.feed(piece)
    except DecodeError as exc:
        return (got, exc.reply_code, exc.offset, exc.frames)
    return (got, decoder.buffered, decoder.offset)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(frames, min_size=1, max_size=6),
    st.integers(0, 2000),
    st.integers(0, 255),
    st.sets(st.integers(0, 2000), max_size=8),
    st.sampled_from([0, 4096, 200]),
)
def test_bytes_and_bytearray_feeds_agree(
    generated: list[Frame], position: int, value: int, cuts: set[int], frame_max: int
) -> None:
    """feed() decodes ``bytes`` in place (only an incomplete frame is buffered) and other
    buffers through its bytearray: both give the same frames, errors and offsets."""
    data = bytearray(b"".join(f.encode() for f in generated))
    if position < len(data):
        data[position] = value  # sometimes a malformed stream
    pieces = _split(bytes(data), cuts)
    expected = _outcome([bytearray(p) for p in pieces], frame_max)
    assert _outcome(pieces, frame_max) == expected
    mixed = [p if i % 2 else bytearray(p) for i, p in enumerate(pieces)]
    assert _outcome(mixed, frame_max) == expected


# ---------------------------------------------------------------------------------------
# encode_message: splitting at frame_max

PUBLISH = spec.Basic.Publish(exchange="ex", routing_key="rk")
PROPERTIES = spec.BasicProperties(content_type="text/plain", delivery_mode=2)


def _decode_message(data: bytes) -> list[Frame]:
    decoder = FrameDecoder(max_frame_size=0)
    decoded = decoder.feed(data)
    assert decoder.buffered == 0
    return decoded


def _body_sizes(decoded: list[Frame]) -> list[int]:
    sizes = []
    for frame in decoded[2:]:
        assert isinstance(frame, BodyFrame)
        assert frame.channel == 5
        sizes.append(len(frame.payload))
    return sizes


@pytest.mark.parametrize(
    ("frame_max", "size", "sizes"),
    [
        (4096, 10_000, [4088, 4088, 1824]),
        (4096, 0, []),
        (4096, 1, [1]),
        (4096, 4087, [4087]),
        (4096, 4088, [4088]),
        (4096, 4089, [4088, 1]),
        (4096, 3 * 4088, [4088] * 3),
        (131072, 1 << 20, [131064] * 8 + [(1 << 20) - 8 * 131064]),
        (0, 10_000, [10_000]),
        (0, 1 << 20, [1 << 20]),
        (0, 0, []),
    ],
)
def test_encode_message_splits_at_frame_max(frame_max: int, size: int, sizes: list[int]) -> None:
    body = bytes(i % 251 for i in range(size))
    data = encode_message(5, PUBLISH, PROPERTIES, body, frame_max)
    decoded = _decode_message(data)
    assert decoded[:2] == [MethodFrame(5, PUBLISH), HeaderFrame(5, size, PROPERTIES)]
    assert _body_sizes(decoded) == sizes
    assert b"".join(bytes(f.payload) for f in decoded[2:] if isinstance(f, BodyFrame)) == body
    if frame_max:
        assert all(len(f.encode()) <= frame_max for f in decoded)
    assert data == b"".join(f.encode() for f in decoded)


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
@pytest.mark.parametrize("size", [0, 100, 10_000])
def test_encode_message_body_types(kind: type, size: int) -> None:
    body = bytes(i % 256 for i in range(size))
    expected = encode_message(5, PUBLISH, PROPERTIES, body, 4096)
    assert encode_message(5, PUBLISH, PROPERTIES, kind(body), 4096) == expected
    parts = encode_message_parts(5, PUBLISH, PROPERTIES, kind(body), 4096)
    assert b"".join(parts) == expected


def test_encode_message_body_of_wider_items() -> None:
    words = array.array("H", range(3000))  # 6000 bytes: two body frames at 4096
    expected = encode_message(5, PUBLISH, None, words.tobytes(), 4096)
    assert encode_message(5, PUBLISH, None, memoryview(words), 4096) == expected
    small = array.array("H", range(10))
    expected = encode_message(5, PUBLISH, None, small.tobytes(), 4096)
    assert encode_message(5, PUBLISH, None, memoryview(small), 4096) == expected


def test_encode_message_default_properties() -> None:
    data = encode_message(1, PUBLISH, None, b"x", 4096)
    assert _decode_message(data)[1] == HeaderFrame(1, 1, spec.BasicProperties())


@pytest.mark.parametrize("body_kind", [bytes, bytearray])
def test_encode_message_parts_share_the_callers_buffer(body_kind: type) -> None:
    body = body_kind(bytes(i % 256 for i in range(10_000)))
    parts = encode_message_parts(5, PUBLISH, PROPERTIES, body, 4096)
    views = [p for p in parts if isinstance(p, memoryview)]
    assert [v.nbytes for v in views] == [4088, 4088, 1824]
    for view in views:
        assert view.obj is body
    assert sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in parts) == len(
        encode_message(5, PUBLISH, PROPERTIES, body, 4096)
    )
    assert b"".join(parts) == encode_message(5, PUBLISH, PROPERTIES, body, 4096)
    if isinstance(body, bytearray):  # slices are views, not copies
        body[0] = 0xFF
        assert views[0][0] == 0xFF


def test_encode_message_parts_one_frame_body_is_the_body_itself() -> None:
    body = b"x" * 100
    parts = encode_message_parts(5, PUBLISH, PROPERTIES, body, 4096)
    assert any(p is body for p in parts)
    assert b"".join(parts) == encode_message(5, PUBLISH, PROPERTIES, body, 4096)


def test_encode_message_parts_of_a_memoryview_share_its_buffer() -> None:
    backing = bytearray(20_000)
    body = memoryview(backing)[1000:11000]
    parts = encode_message_parts(5, PUBLISH, None, body, 4096)
    views = [p for p in parts if isinstance(p, memoryview)]
    assert [v.nbytes for v in views] == [4088, 4088, 1824]
    assert all(v.obj is backing for v in views)


@given(
    content_methods,
    basic_properties,
    st.binary(max_size=20_000),
    st.sampled_from([0, 4096, 4097, 5000, 8192, 131072]),
    st.integers(1, 65535),
)
def test_encode_message_round_trip(
    method: amqpcodec.Method,
    properties: amqpcodec.Properties,
    body: bytes,
    frame_max: int,
    channel: int,
) -> None:
    try:
        data = encode_message(channel, method, properties, body, frame_max)
    except EncodeError:
        assume(False)  # a generated header too big for frame_max
        return
    assert b"".join(encode_message_parts(channel, method, properties, body, frame_max)) == data
    decoder = FrameDecoder(max_frame_size=frame_max)
    decoded = decoder.feed(data)
    assert decoded[:2] == [
        MethodFrame(channel, method),
        HeaderFrame(channel, len(body), properties),
    ]
    payloads = [f.payload for f in decoded[2:] if isinstance(f, BodyFrame)]
    assert len(payloads) == len(decoded) - 2
    assert b"".join(payloads) == body
    assert all(payloads)  # no empty body frames
    if frame_max:
        assert all(len(p) == frame_max - 8 for p in payloads[:-1])


@pytest.mark.parametrize(
    "method",
    [spec.Basic.Ack(), spec.Queue.Declare(), spec.Connection.Close(200, "", 0, 0)],
    ids=repr,
)
def test_encode_message_non_content_method(method: amqpcodec.Method) -> None:
    with pytest.raises(EncodeError) as info:
        encode_message(1, method, None, b"x", 4096)
    assert info.value.field == "method"
    with pytest.raises(EncodeError):
        encode_message_parts(1, method, None, b"x", 4096)


def test_encode_message_header_too_big_for_frame_max() -> None:
    properties = spec.BasicProperties(headers={"h": "x" * 5000})
    with pytest.raises(EncodeError) as info:
        encode_message(1, PUBLISH, properties, b"x", 4096)
    assert info.value.field == "frame_max"
    # With room for it, the same message is fine, and a header exactly at the limit too.
    assert encode_message(1, PUBLISH, properties, b"x", 8192)
    header_size = len(HeaderFrame(1, 1, properties).encode())
    assert encode_message(1, PUBLISH, properties, b"x", header_size)
    with pytest.raises(EncodeError):
        encode_message(1, PUBLISH, properties, b"x", header_size - 1)
    assert encode_message(1, PUBLISH, properties, b"x", 0)  # no limit


@pytest.mark.parametrize(
    ("channel", "body", "frame_max", "field"),
    [
        (1, "text", 4096, "body"),
        (1, None, 4096, "body"),
        (1, [1, 2], 4096, "body"),
        (65536, b"x", 4096, "channel"),
        (-1, b"x", 4096, "channel"),
        (1, b"x", 4095, "frame_max"),
        (1, b"x", 8, "frame_max"),
        (1, memoryview(bytes(9000))[::2], 4096, "body"),  # not contiguous
        (1, memoryview(bytes(20))[::2], 4096, "body"),
    ],
    ids=repr,
)
def test_encode_message_rejects(channel: int, body: object, frame_max: int, field: str) -> None:
    with pytest.raises(EncodeError) as info:
        encode_message(channel, PUBLISH, None, body, frame_max)  # type: ignore[arg-type]
    assert info.value.field == field


def test_frames_before_a_bad_one_travel_on_the_error() -> None:
    heartbeat = amqpcodec.HeartbeatFrame().encode()
    decoder = amqpcodec.FrameDecoder()
    with pytest.raises(amqpcodec.DecodeError) as info:
        decoder.feed(heartbeat + heartbeat + b"\x09\x00\x00\x00\x00\x00\x00\xce")
    assert info.value.frames == [amqpcodec.HeartbeatFrame(), amqpcodec.HeartbeatFrame()]
    assert info.value.offset == 16
