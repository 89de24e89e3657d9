"""Content assembly: method + content header + body frames -> Message, per channel.

Reply codes follow protocol-facts §12 as the README's table documents them: 505 for
frames out of order, 501 for a body longer than declared or over ``max_body_size``,
504 for content on channel 0.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import amqpcodec
from amqpcodec import (
    BodyFrame,
    ContentAssembler,
    Frame,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    Message,
    MethodFrame,
    ProtocolHeader,
    RemoteProtocolError,
    encode_message,
    spec,
)

PUBLISH = spec.Basic.Publish(exchange="ex", routing_key="rk")
DELIVER = spec.Basic.Deliver("ctag", 1, False, "ex", "rk")
PROPS = spec.BasicProperties(content_type="text/plain", message_id="m1")


def feed(assembler: ContentAssembler, frames: Iterable[Frame]) -> list[Frame | Message]:
    """Everything the assembler hands back, in order (None means 'not yet')."""
    out: list[Frame | Message] = []
    for frame in frames:
        result = assembler.feed(frame)
        if result is not None:
            out.append(result)
    return out


def content(channel: int, method: amqpcodec.Method, body: bytes, pieces: int = 1) -> list[Frame]:
    frames: list[Frame] = [MethodFrame(channel, method), HeaderFrame(channel, len(body), PROPS)]
    step = max(1, -(-len(body) // pieces))
    frames += [BodyFrame(channel, body[i : i + step]) for i in range(0, len(body), step)]
    return frames


def test_one_message() -> None:
    assembler = ContentAssembler()
    frames = content(1, PUBLISH, b"hello world", pieces=3)
    assert len(frames) == 5
    assert [assembler.feed(f) for f in frames[:-1]] == [None] * 4
    assert assembler.in_progress(1)
    message = assembler.feed(frames[-1])
    assert message == Message(1, PUBLISH, PROPS, b"hello world")
    assert isinstance(message, Message)
    assert type(message.body) is bytes
    assert not assembler.in_progress(1)


@pytest.mark.parametrize(
    "payloads",
    [
        [b"abc"],
        [bytearray(b"abc")],
        [memoryview(b"abc")],
        [b"a", bytearray(b"b"), memoryview(b"c")],
    ],
    ids=["bytes", "bytearray", "memoryview", "mixed"],
)
def test_body_is_bytes_whatever_the_payload_type(payloads: list[bytes]) -> None:
    assembler = ContentAssembler()
    assembler.feed(MethodFrame(1, PUBLISH))
    assembler.feed(HeaderFrame(1, 3, PROPS))
    results = [assembler.feed(BodyFrame(1, p)) for p in payloads]
    message = results[-1]
    assert isinstance(message, Message)
    assert type(message.body) is bytes
    assert message.body == b"abc"


def test_zero_body_ends_at_the_header() -> None:
    assembler = ContentAssembler()
    assert assembler.feed(MethodFrame(1, PUBLISH)) is None
    assert assembler.feed(HeaderFrame(1, 0, PROPS)) == Message(1, PUBLISH, PROPS, b"")
    assert not assembler.in_progress(1)
    # A body frame now has no content to belong to.
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(BodyFrame(1, b""))
    assert info.value.reply_code == 505


def test_other_frames_pass_through() -> None:
    assembler = ContentAssembler()
    frames: list[Frame] = [
        ProtocolHeader(),
        MethodFrame(0, spec.Connection.Tune(2047, 131072, 60)),
        MethodFrame(1, spec.Basic.Ack(delivery_tag=3)),
        HeartbeatFrame(),
    ]
    assert feed(assembler, frames) == frames
    for frame in frames:
        assert assembler.feed(frame) is frame


def test_interleaving_across_channels() -> None:
    one = content(1, DELIVER, b"A" * 10, pieces=3)
    two = content(2, PUBLISH, b"B" * 7, pieces=2)
    three = content(3, spec.Basic.GetOk(5, False, "", "q", 0), b"", pieces=1)
    heartbeat = HeartbeatFrame()
    ack = MethodFrame(4, spec.Basic.Ack(delivery_tag=1))
    close = MethodFrame(0, spec.Connection.Blocked("low memory"))
    # Round-robin the three contents frame by frame, with channel-0 and other-channel
    # frames in between: all of that is allowed (PDF §4.2.6).
    stream: list[Frame] = []
    for i in range(max(len(one), len(two), len(three))):
        for frames in (one, two, three):
            if i < len(frames):
                stream.append(frames[i])
        stream += [heartbeat, ack] if i % 2 else [close]
    assembler = ContentAssembler()
    got = feed(assembler, stream)
    messages = [m for m in got if isinstance(m, Message)]
    assert messages == [
        Message(3, three[0].method, PROPS, b""),  # type: ignore[union-attr]
        Message(2, PUBLISH, PROPS, b"B" * 7),
        Message(1, DELIVER, PROPS, b"A" * 10),
    ]
    others = [f for f in got if not isinstance(f, Message)]
    assert others == [f for f in stream if f in (heartbeat, ack, close)]
    assert not any(assembler.in_progress(c) for c in (1, 2, 3))


def test_heartbeat_mid_content() -> None:
    assembler = ContentAssembler()
    frames = content(1, PUBLISH, b"xyz", pieces=3)
    out: list[Frame | Message | None] = []
    for frame in frames:
        out.append(assembler.feed(frame))
        out.append(assembler.feed(HeartbeatFrame()))
    assert out[-2] == Message(1, PUBLISH, PROPS, b"xyz")
    assert out[1::2] == [HeartbeatFrame()] * len(frames)


def test_channel_reused_after_a_message() -> None:
    assembler = ContentAssembler()
    first = feed(assembler, content(1, PUBLISH, b"one"))
    second = feed(assembler, content(1, PUBLISH, b"two", pieces=3))
    assert first == [Message(1, PUBLISH, PROPS, b"one")]
    assert second == [Message(1, PUBLISH, PROPS, b"two")]


def test_discard_forgets_a_partial_message() -> None:
    assembler = ContentAssembler()
    feed(assembler, content(1, PUBLISH, b"abcdef", pieces=2)[:3])
    assert assembler.in_progress(1)
    assembler.discard(1)
    assert not assembler.in_progress(1)
    assembler.discard(1)  # forgetting nothing is fine
    assert feed(assembler, content(1, PUBLISH, b"ok")) == [Message(1, PUBLISH, PROPS, b"ok")]


# ---------------------------------------------------------------------------------------
# Rejections (issue 3, item 5)


def rejection(
    frames: list[Frame], assembler: ContentAssembler | None = None
) -> RemoteProtocolError:
    """Feed ``frames``; the last one must be refused, every earlier one accepted."""
    assembler = assembler or ContentAssembler()
    feed(assembler, frames[:-1])
    with pytest.raises(RemoteProtocolError) as info:
        assembler.feed(frames[-1])
    assert not isinstance(info.value, amqpcodec.DecodeError)  # the bytes were fine
    return info.value


def test_body_overshoot_is_501() -> None:
    error = rejection(
        [
            MethodFrame(1, PUBLISH),
            HeaderFrame(1, 5, PROPS),
            BodyFrame(1, b"abc"),
            BodyFrame(1, b"def"),
        ]
    )
    assert (error.reply_code, error.class_id, error.method_id) == (501, 60, 40)


def test_body_overshoot_in_one_frame_is_501() -> None:
    error = rejection([MethodFrame(1, DELIVER), HeaderFrame(1, 2, PROPS), BodyFrame(1, b"abc")])
    assert (error.reply_code, error.class_id, error.method_id) == (501, 60, 60)


def test_missing_header_is_505() -> None:
    error = rejection([MethodFrame(1, PUBLISH), MethodFrame(1, PUBLISH)])
    assert error.reply_code == 505
    error = rejection([MethodFrame(1, PUBLISH), MethodFrame(1, spec.Basic.Ack())])
    assert (error.reply_code, error.class_id, error.method_id) == (505, 60, 80)


def test_body_before_header_is_505() -> None:
    error = rejection([MethodFrame(1, PUBLISH), BodyFrame(1, b"x")])
    assert (error.reply_code, error.class_id, error.method_id) == (505, 60, 40)


def test_header_of_wrong_class_is_505() -> None:
    error = rejection([MethodFrame(1, PUBLISH), HeaderFrame(1, 1, PROPS, class_id=90)])
    assert (error.reply_code, error.class_id, error.method_id) == (505, 60, 40)


def test_header_without_content_method_is_505() -> None:
    assert rejection([HeaderFrame(1, 1, PROPS)]).reply_code == 505
    # ... also after a non-content method on the channel,
    assert rejection([MethodFrame(1, spec.Basic.Ack()), HeaderFrame(1, 1, PROPS)]).reply_code == 505
    # ... and a second header for one content.
    second: list[Frame] = [
        MethodFrame(1, PUBLISH),
        HeaderFrame(1, 5, PROPS),
        HeaderFrame(1, 5, PROPS),
    ]
    assert rejection(second).reply_code == 505


def test_body_with_no_content_is_505() -> None:
    assert rejection([BodyFrame(1, b"x")]).reply_code == 505
    # after a finished message
    done = content(1, PUBLISH, b"abc")
    assert rejection([*done, BodyFrame(1, b"d")]).reply_code == 505
    # on another channel than the content in progress
    assert rejection([*content(1, PUBLISH, b"abc")[:2], BodyFrame(2, b"a")]).reply_code == 505


@pytest.mark.parametrize(
    "method",
    [PUBLISH, spec.Basic.Ack(), spec.Channel.Close(200, "", 0, 0)],
    ids=lambda m: m.NAME,
)
def test_method_mid_content_is_505(method: amqpcodec.Method) -> None:
    partial = content(1, DELIVER, b"abcdef", pieces=2)[:3]  # method, header, half the body
    error = rejection([*partial, MethodFrame(1, method)])
    assert (error.reply_code, error.class_id, error.method_id) == (
        505,
        method.CLASS_ID,
        method.METHOD_ID,
    )
    # between the method and the header too
    error = rejection([MethodFrame(1, DELIVER), MethodFrame(1, method)])
    assert error.reply_code == 505


@pytest.mark.parametrize(
    "frame",
    [MethodFrame(0, PUBLISH), HeaderFrame(0, 1, PROPS), BodyFrame(0, b"x")],
    ids=lambda f: type(f).__name__,
)
def test_content_on_channel_0_is_504(frame: Frame) -> None:
    """PDF §4.2.6.1: content on channel 0 is a channel error (RabbitMQ says 505)."""
    assert rejection([frame]).reply_code == 504


def test_max_body_size_checked_on_the_header() -> None:
    assembler = ContentAssembler(max_body_size=1000)
    assert assembler.max_body_size == 1000
    assert feed(assembler, content(1, PUBLISH, bytes(1000), pieces=4)) == [
        Message(1, PUBLISH, PROPS, bytes(1000))
    ]
    error = rejection([MethodFrame(1, PUBLISH), HeaderFrame(1, 1001, PROPS)], assembler)
    assert (error.reply_code, error.class_id, error.method_id) == (501, 60, 40)


def test_default_max_body_size_is_rabbitmqs() -> None:
    """512 MiB (RabbitMQ's ?MAX_MSG_SIZE): refused on the header, before any body."""
    assembler = ContentAssembler()
    assert assembler.max_body_size == 512 * 1024 * 1024
    assert (
        feed(assembler, [MethodFrame(1, PUBLISH), HeaderFrame(1, 512 * 1024 * 1024, PROPS)]) == []
    )
    assembler = ContentAssembler()
    error = rejection([MethodFrame(1, PUBLISH), HeaderFrame(1, 2**64 - 1, PROPS)], assembler)
    assert error.reply_code == 501


def test_errors_leave_other_channels_alone() -> None:
    assembler = ContentAssembler()
    feed(assembler, content(2, PUBLISH, b"abcd", pieces=2)[:3])
    with pytest.raises(RemoteProtocolError):
        assembler.feed(BodyFrame(1, b"x"))
    assert assembler.feed(BodyFrame(2, b"cd")) == Message(2, PUBLISH, PROPS, b"abcd")


# ---------------------------------------------------------------------------------------
# Through the whole stack: encode_message -> bytes -> FrameDecoder -> ContentAssembler


@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.binary(max_size=9000)),
        max_size=6,
    ),
    st.sampled_from([0, 4096, 8192]),
    st.randoms(use_true_random=False),
)
def test_encoded_messages_reassemble(
    messages: list[tuple[int, bytes]], frame_max: int, rng: random.Random
) -> None:
    """Messages on several channels, their frames interleaved at random (order kept per
    channel), come back whole and in per-channel order."""
    per_channel: dict[int, list[bytes]] = {}
    queues: list[list[bytes]] = []
    for channel, body in messages:
        per_channel.setdefault(channel, []).append(body)
        data = encode_message(channel, PUBLISH, PROPS, body, frame_max)
        decoded = FrameDecoder(max_frame_size=frame_max).feed(data)
        queues.append([f.encode() for f in decoded])
    # A channel's messages stay in order: merge each channel's frames into one queue.
    by_channel: dict[int, list[bytes]] = {}
    for (channel, _), frames in zip(messages, queues, strict=True):
        by_channel.setdefault(channel, []).extend(frames)
    streams = list(by_channel.values())
    wire = bytearray()
    while any(streams):
        stream = rng.choice([s for s in streams if s])
        wire += stream.pop(0)
        if rng.random() < 0.2:
            wire += HeartbeatFrame().encode()
    assembler = ContentAssembler()
    decoder = FrameDecoder(max_frame_size=frame_max)
    got = feed(assembler, decoder.feed(bytes(wire)))
    received: dict[int, list[bytes]] = {}
    for item in got:
        if isinstance(item, Message):
            assert item.method == PUBLISH
            assert item.properties == PROPS
            received.setdefault(item.channel, []).append(item.body)
        else:
            assert item == HeartbeatFrame()
    assert received == per_channel
