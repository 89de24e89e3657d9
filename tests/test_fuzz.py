"""Fuzzing ourselves: nothing but DecodeError / RemoteProtocolError out of the decoder
and the Connection, whatever the bytes and however they are split; bounded memory and
nesting.

The inputs: random bytes, random bytes after a valid protocol header, mutations of the
recorded captures in tests/data/captures and of ``strategies.frame_streams`` (both
roles), fed in random chunk sizes to a FrameDecoder and to a Connection of the role that
receives them (the harness is tests/fuzz_long.py's, which runs the same thing a million
times). ``HYPOTHESIS_PROFILE=fuzz`` runs each test 20,000 times.
"""

from __future__ import annotations

import contextlib
import random
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fuzz_long import capture_streams, feed_connection, feed_decoder, make_case
from hypothesis import given
from hypothesis import strategies as st

from amqpcodec import (
    Connection,
    DecodeError,
    FrameDecoder,
    HeaderFrame,
    MethodFrame,
    ProtocolHeader,
    RemoteProtocolError,
    Role,
    encode_message,
    spec,
)
from amqpcodec import strategies as amqp_st
from amqpcodec._wire import DEFAULT_MAX_DEPTH, decode_table
from amqpcodec.events import ConnectionOpened, MessageReceived

CAPTURES = Path(__file__).parent / "data" / "captures"
HEADER = ProtocolHeader().encode()


def client_opening(frame_max: int) -> bytes:
    """What a pipelining client sends up to Channel.Open on channel 1, without waiting."""
    c = spec.Connection
    return (
        HEADER
        + MethodFrame(0, c.StartOk({}, "PLAIN", b"\0guest\0guest", "en_US")).encode()
        + MethodFrame(0, c.TuneOk(2047, frame_max, 0)).encode()
        + MethodFrame(0, c.Open("/")).encode()
        + MethodFrame(1, spec.Channel.Open()).encode()
    )


SERVER, CLIENT = Role.SERVER, Role.CLIENT
CAPTURED = capture_streams()  # (receiving role, bytes) of each recorded direction
TOO_SLOW = 10.0  # seconds for one input: far above anything seen, so only a hang trips it


def check(receiver: Role, data: bytes, rnd: random.Random) -> None:
    """Feed ``data`` to a FrameDecoder and to a Connection; the harness raises on
    anything but our errors, and the clock catches a hang."""
    started = time.perf_counter()
    assert feed_decoder(data, random.Random(rnd.random())) in ("ok", "DecodeError")
    outcome = feed_connection(receiver, data, random.Random(rnd.random()))
    assert outcome in ("ok", "DecodeError", "RemoteProtocolError")
    assert time.perf_counter() - started < TOO_SLOW


# ---------------------------------------------------------------------------------------
# Random and mutated bytes


@given(st.binary(max_size=2000), st.sampled_from([SERVER, CLIENT]), st.randoms())
def test_random_bytes(data: bytes, receiver: Role, rnd: random.Random) -> None:
    check(receiver, data, rnd)


@given(st.binary(max_size=2000), st.randoms())
def test_random_bytes_after_a_protocol_header(data: bytes, rnd: random.Random) -> None:
    check(SERVER, HEADER + data, rnd)


@given(
    st.lists(
        st.tuples(st.sampled_from([1, 2, 3, 8]), st.integers(0, 3), st.binary(max_size=40)),
        max_size=8,
    ),
    st.randoms(),
)
def test_random_frame_shaped_records(
    records: list[tuple[int, int, bytes]], rnd: random.Random
) -> None:
    """Right frame types, small channels, right sizes and frame ends: the payloads
    (method ids, arguments, property flags, tables) get the random bytes."""
    body = b"".join(
        bytes((kind,))
        + channel.to_bytes(2, "big")
        + len(payload).to_bytes(4, "big")
        + payload
        + b"\xce"
        for kind, channel, payload in records
    )
    check(SERVER, HEADER + body, rnd)
    check(CLIENT, body, rnd)


@pytest.mark.parametrize(
    "index", range(len(CAPTURED)), ids=[p.name for p in sorted(CAPTURES.glob("*.bin"))]
)
@given(data=st.data(), rnd=st.randoms())
def test_mutated_capture(index: int, data: st.DataObject, rnd: random.Random) -> None:
    receiver, stream = CAPTURED[index]
    donors = st.sampled_from([raw for _, raw in CAPTURED])
    mutated = data.draw(amqp_st.mutations(st.just(stream), donors=donors, max_mutations=4))
    check(receiver, mutated, rnd)


@pytest.mark.parametrize("role", ["client", "server"])
@given(data=st.data(), rnd=st.randoms())
def test_mutated_frame_streams(role: str, data: st.DataObject, rnd: random.Random) -> None:
    channels = st.integers(1, 3)  # the channels feed_connection opens for a client
    stream = amqp_st.frame_streams(role, channels=channels, responses=data.draw(st.booleans()))
    mutated = data.draw(amqp_st.mutations(stream, max_mutations=4))
    check(SERVER if role == "client" else CLIENT, mutated, rnd)


@pytest.mark.parametrize("role", ["client", "server"])
@given(data=st.data(), rnd=st.randoms())
def test_valid_frame_streams_are_taken_whole(
    role: str, data: st.DataObject, rnd: random.Random
) -> None:
    """Unmutated and without responses, a stream is accepted start to end."""
    stream = data.draw(amqp_st.frame_streams(role, channels=st.integers(1, 3), responses=False))
    assert feed_decoder(stream, rnd) == "ok"
    assert feed_connection(SERVER if role == "client" else CLIENT, stream, rnd) == "ok"


def test_the_long_run_cases() -> None:
    """A few thousand cases of the long run (tests/fuzz_long.py), as CI's smoke test."""
    rnd = random.Random(2024)
    pool = CAPTURED
    donors = [raw for _, raw in pool]
    for _ in range(2000):
        _, receiver, data = make_case(rnd, pool, donors)
        check(receiver, data, rnd)


# ---------------------------------------------------------------------------------------
# Any split, one answer (the tuning bug the stream strategy found)


def test_frames_after_tune_ok_in_the_same_read_use_the_negotiated_frame_max() -> None:
    """A pipelining client: Tune-Ok for 8192, Open, Channel.Open and a 5000-byte body
    frame, all in one read. Fed whole it used to fail (every frame of the read was held
    to the pre-tuning 4096); fed byte by byte it passed."""
    data = client_opening(8192) + encode_message(1, spec.Basic.Publish(), None, b"x" * 5000, 8192)
    results = []
    for size in (len(data), 1, 7, 100):
        server = Connection(SERVER)
        events = []
        for at in range(0, len(data), size):
            events += server.receive_data(data[at : at + size])
        results.append(events)
    assert isinstance(results[0][-1], MessageReceived)
    assert all(events == results[0] for events in results)


def test_before_tuning_frames_are_still_held_to_the_minimum() -> None:
    big = MethodFrame(0, spec.Connection.StartOk({"x": "y" * 5000}, "PLAIN", b"", "")).encode()
    for size in (len(big), 1):
        server = Connection(SERVER)
        server.receive_data(HEADER)
        # The minimum frame size plus the 8 bytes a server tolerates, as RabbitMQ does.
        with pytest.raises(
            DecodeError,
            match=r"larger than the frame_max of 4096 \(plus the frame_max_tolerance of 8\)",
        ):
            for at in range(0, len(big), size):
                server.receive_data(big[at : at + size])


# ---------------------------------------------------------------------------------------
# Memory: one feed never holds much more than the frame limit


def peak_of(call: Callable[..., object], *args: object) -> int:
    """The tracemalloc peak above what was allocated before ``call(*args)``."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    with contextlib.suppress(RemoteProtocolError):
        call(*args)
    return tracemalloc.get_traced_memory()[1] - before


SMALL = 16 * 1024  # "a small constant": frame objects, the exception, the view


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


@pytest.mark.parametrize("declared", [2**32 - 1, 2**31, 131065, 10**9])
def test_a_forged_frame_size_costs_nothing(traced: None, declared: int) -> None:
    forged = b"\x03\x00\x01" + declared.to_bytes(4, "big") + b"\x00" * 100
    decoder = FrameDecoder(131072)
    assert peak_of(decoder.feed, forged) < SMALL
    server = Connection(SERVER)
    server.receive_data(HEADER)
    assert peak_of(server.receive_data, forged) < SMALL


def test_a_frame_at_the_limit_then_junk(traced: None) -> None:
    """A declared size just under the limit is waited for: the buffer grows to the limit
    and no further, then the missing frame end fails it."""
    limit = 131072
    decoder = FrameDecoder(limit)
    decoder.feed(b"\x03\x00\x01" + (limit - 8).to_bytes(4, "big"))
    chunk = b"\x00" * 65536
    peaks = []
    with pytest.raises(DecodeError, match="frame-end"):
        for _ in range(4):
            peaks.append(peak_of(decoder.feed, chunk))
            assert decoder.buffered <= limit + len(chunk)
            if len(peaks) > 2:
                break
        decoder.feed(chunk)
    assert max(peaks) < limit + len(chunk) + SMALL


def test_a_large_valid_stream_in_chunks(traced: None) -> None:
    """16 MiB of body frames at frame_max 131072, fed 64 KiB at a time: each feed's peak
    is bounded by the frame limit, the chunk and the frames it returns."""
    limit = 131072
    body = bytes(range(256)) * (16 * 4096)
    stream = encode_message(1, spec.Basic.Deliver(), None, body, limit)
    decoder = FrameDecoder(limit)
    chunk = 65536
    worst = 0
    for at in range(0, len(stream), chunk):
        worst = max(worst, peak_of(decoder.feed, stream[at : at + chunk]))
    assert worst < limit + 2 * chunk + SMALL, worst


def test_a_connection_with_many_messages_in_chunks(traced: None) -> None:
    """A client stream of 2,000 messages of 3 KiB, fed to a server 64 KiB at a time."""
    head = client_opening(131072)
    one = encode_message(1, spec.Basic.Publish(routing_key="q"), None, b"m" * 3072, 131072)
    stream = head + one * 2000
    server = Connection(SERVER)
    chunk = 65536
    worst = 0
    for at in range(0, len(stream), chunk):
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        events = server.receive_data(stream[at : at + chunk])
        worst = max(worst, tracemalloc.get_traced_memory()[1] - before)
        del events
        server.data_to_send()
    # The events of one feed hold about one chunk of bodies, plus their objects.
    assert worst < 131072 + 3 * chunk + 64 * 1024, worst


# ---------------------------------------------------------------------------------------
# Nesting depth


def nested(depth: int, letter: bytes = b"F") -> bytes:
    """A field table holding tables (``F``) or arrays (``A``) nested ``depth`` deep,
    as bytes (built outside in, in linear time)."""
    parts = []
    size = 4  # the innermost container: empty
    for level in range(depth - 1, -1, -1):
        # An array holds bare values; a table (and the outermost level) keyed ones.
        item = b"\x01kF" if letter == b"F" or level == 0 else b"A"
        if level == 0 and letter == b"A":
            item = b"\x01kA"
        parts.append(len(item) + size)
        parts.append(item)
        size += 4 + len(item)
    out = bytearray()
    for length, item in zip(parts[-2::-2], parts[-1::-2], strict=True):
        out += length.to_bytes(4, "big") + item
    return bytes(out) + b"\x00\x00\x00\x00"


@pytest.mark.parametrize("letter", [b"F", b"A"])
@pytest.mark.parametrize("depth", [DEFAULT_MAX_DEPTH + 1, 1000, 100_000])
def test_deep_nesting_is_a_decode_error(letter: bytes, depth: int) -> None:
    raw = nested(depth, letter)
    with pytest.raises(DecodeError, match="nest deeper"):
        decode_table(raw, 0, len(raw))


def test_nesting_at_the_limit_decodes() -> None:
    raw = nested(DEFAULT_MAX_DEPTH - 1)
    _, end = decode_table(raw, 0, len(raw))
    assert end == len(raw)


def deep_frames(depth: int) -> list[bytes]:
    """A Queue.Declare whose arguments, and a content header whose headers, nest."""
    declare = spec.Queue.Declare(queue="q").encode()[:-4] + nested(depth)
    frame = b"\x01\x00\x01" + len(declare).to_bytes(4, "big") + declare + b"\xce"
    props = spec.BasicProperties(headers={}).encode()[:-4] + nested(depth)
    payload = HeaderFrame(1, 0).encode()[7:19] + props
    header = b"\x02\x00\x01" + len(payload).to_bytes(4, "big") + payload + b"\xce"
    return [frame, header]


@pytest.mark.parametrize("which", ["queue.declare arguments", "content header headers"])
def test_a_table_nested_1000_deep_in_a_frame(which: str) -> None:
    frame = deep_frames(1000)[which.startswith("content")]
    before = MethodFrame(1, spec.Basic.Publish()).encode() if which.startswith("content") else b""
    with pytest.raises(DecodeError, match="nest deeper"):
        FrameDecoder(0).feed(before + frame)
    # And through a server Connection, after the handshake and a channel.open.
    c = spec.Connection
    server = Connection(SERVER)
    events = server.receive_data(
        HEADER
        + MethodFrame(0, c.StartOk({}, "PLAIN", b"\0u\0p", "en_US")).encode()
        + MethodFrame(0, c.TuneOk(2047, 131072, 0)).encode()
        + MethodFrame(0, c.Open("/")).encode()
        + MethodFrame(1, spec.Channel.Open()).encode()
        + before
    )
    assert isinstance(events[1], ConnectionOpened)
    with pytest.raises(RemoteProtocolError, match="nest deeper"):
        server.receive_data(frame)
