"""Lossless decoding: any frame the decoder accepts re-encodes to the bytes it came from.

The frames here are drawn on purpose with what a value cannot show: boolean octets other
than 0 and 1, field tables that repeat a key, empty continuation property-flag words,
and bits set beyond a method's bit group. They are built byte by byte from the layout
the spec gives (not with the encoder under test), fed in any split, and every frame
must encode back to its bytes; so must the messages assembled from them.
"""

from __future__ import annotations

import copy
import pickle
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqpcodec import (
    ContentAssembler,
    DecodeError,
    FrameDecoder,
    HeaderFrame,
    Message,
    MethodFrame,
    decode_frame,
    encode_message,
    spec,
)
from amqpcodec import strategies as amqp_st
from amqpcodec._base import LAZY

KEYS = st.sampled_from([b"a", b"b", b"x-death", b""])


def _shortstr(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def _sized(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def _values(depth: int) -> st.SearchStrategy[bytes]:
    """Typed field values (letter + bytes), the odd ones often."""
    scalars = st.one_of(
        st.integers(0, 255).map(lambda octet: b"t" + bytes([octet])),
        st.binary(min_size=4, max_size=4).map(lambda raw: b"I" + raw),
        st.binary(min_size=1, max_size=1).map(lambda raw: b"b" + raw),
        st.text(max_size=8).map(lambda text: b"S" + _sized(text.encode())),
        st.binary(max_size=6).map(lambda raw: b"x" + _sized(raw)),
        st.just(b"V"),
    )
    if depth == 0:
        return scalars
    return st.one_of(
        scalars,
        _tables(depth - 1).map(lambda raw: b"F" + raw),
        st.lists(_values(depth - 1), max_size=4).map(lambda items: b"A" + _sized(b"".join(items))),
    )


def _tables(depth: int = 2) -> st.SearchStrategy[bytes]:
    """A field table whose keys repeat often."""
    entries = st.tuples(KEYS, _values(depth)).map(lambda kv: _shortstr(kv[0]) + kv[1])
    return st.lists(entries, max_size=6).map(lambda items: _sized(b"".join(items)))


def _bit_octets(method: Any, payload: bytes) -> list[tuple[int, int]]:
    """(offset, count of bits) of every bit-group octet in a method payload, found by
    walking the method's fields [PDF §4.2.5.2: up to 8 consecutive bits share an octet]."""
    sizes = {"octet": 1, "short": 2, "long": 4, "longlong": 8, "timestamp": 8}
    groups: list[tuple[int, int]] = []
    off, in_group = 4, 0
    for kind in method.FIELD_TYPES:
        if kind == "bit":
            if in_group and groups[-1][1] < 8:
                groups[-1] = (groups[-1][0], groups[-1][1] + 1)
            else:
                groups.append((off, 1))
                off += 1
            in_group = 1
            continue
        in_group = 0
        if kind in sizes:
            off += sizes[kind]
        elif kind == "shortstr":
            off += 1 + payload[off]
        else:  # longstr, table
            off += 4 + struct.unpack_from(">I", payload, off)[0]
    return groups


@st.composite
def stray_bit_methods(draw: st.DrawFn) -> bytes:
    """A method frame payload with bits set beyond its bit groups."""
    method = draw(amqp_st.methods().filter(lambda m: not m.CONTENT))
    payload = bytearray(method.encode())
    for off, count in _bit_octets(method, bytes(payload)):
        payload[off] |= draw(st.integers(0, 255)) & ~((1 << count) - 1) & 0xFF
    return bytes(payload)


@st.composite
def property_blocks(draw: st.DrawFn) -> bytes:
    """Basic properties with empty continuation flag words and an odd headers table."""
    flags = 0
    body = b""
    if draw(st.booleans()):
        flags |= 0x8000
        body += _shortstr(b"text/plain")
    if draw(st.booleans()):
        flags |= 0x2000
        body += draw(_tables())
    if draw(st.booleans()):
        flags |= 0x1000
        body += bytes([draw(st.integers(0, 255))])
    empty_words = draw(st.integers(0, 3))
    words = [flags | (1 if empty_words else 0)]
    words += [1] * (empty_words - 1) + [0] * (empty_words > 0)
    return struct.pack(f">{len(words)}H", *words) + body


def _frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + b"\xce"


@st.composite
def odd_streams(draw: st.DrawFn) -> bytes:
    out = [_frame(1, 1, draw(stray_bit_methods())) for _ in range(draw(st.integers(0, 3)))]
    for _ in range(draw(st.integers(1, 3))):
        body = draw(st.binary(max_size=20))
        publish = spec.Basic.Publish(exchange="x", routing_key="rk")
        out.append(_frame(1, 2, publish.encode()))
        header = struct.pack(">HHQ", 60, 0, len(body)) + draw(property_blocks())
        out.append(_frame(2, 2, header))
        if body:
            out.append(_frame(3, 2, body))
    declare = spec.Queue.Declare(queue="q").encode()[:-4] + draw(_tables())
    out.append(_frame(1, 3, declare))
    return b"".join(out)


@given(odd_streams(), st.data())
def test_every_accepted_frame_re_encodes_to_its_bytes(stream: bytes, data: st.DataObject) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    decoder = FrameDecoder()
    frames = []
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        frames += decoder.feed(stream[start:stop])
    assert b"".join(frame.encode() for frame in frames) == stream
    # decode_frame, frame by frame, over a memoryview: the same bytes again
    off, again = 0, []
    view = memoryview(stream)
    while off < len(stream):
        decoded = decode_frame(view, off)
        assert decoded is not None
        frame, off = decoded
        again.append(frame.encode())
    assert b"".join(again) == stream


@given(odd_streams())
def test_assembled_messages_re_encode_to_their_bytes(stream: bytes) -> None:
    assembler = ContentAssembler()
    out = []
    for frame in FrameDecoder().feed(stream):
        result = assembler.feed(frame)
        if isinstance(result, Message):
            out.append(
                encode_message(result.channel, result.method, result.properties, result.body, 0)
            )
        elif result is not None:
            out.append(result.encode())
    assert b"".join(out) == stream


def test_the_issue_examples() -> None:
    """One of each: t octet 2, a repeated key, an empty flag word, a stray bit."""
    table = _sized(b"\x01at\x02" + b"\x01aI\x00\x00\x00\x07")
    properties = struct.pack(">HH", 0x2001, 0) + table
    stream = (
        _frame(1, 1, spec.Basic.Publish().encode()[:-1] + b"\x84")  # mandatory + bit 7
        + _frame(2, 1, struct.pack(">HHQ", 60, 0, 0) + properties)
    )
    method_frame, header_frame = FrameDecoder().feed(stream)
    assert isinstance(method_frame, MethodFrame) and isinstance(header_frame, HeaderFrame)
    assert method_frame.method == spec.Basic.Publish(immediate=False, mandatory=False)
    assert header_frame.properties == spec.BasicProperties(headers={"a": 7})
    assert method_frame.encode() + header_frame.encode() == stream


def test_a_changed_property_is_encoded_from_the_values() -> None:
    properties = struct.pack(">HH", 0x9001, 0) + _shortstr(b"a/b") + b"\x02"
    decoded = spec.BasicProperties.decode(properties, 0, len(properties))
    assert decoded.encode() == properties
    decoded.delivery_mode = 1
    assert decoded.encode() == struct.pack(">H", 0x9000) + _shortstr(b"a/b") + b"\x01"
    decoded.delivery_mode = 2
    decoded.content_type = "".join(["a/", "b"])  # equal, but not the decoded object
    assert decoded.encode() == spec.BasicProperties(content_type="a/b", delivery_mode=2).encode()


def test_a_changed_headers_table_is_seen_by_its_properties() -> None:
    table = _sized(b"\x01at\x02")
    properties = struct.pack(">H", 0x2000) + table
    decoded = spec.BasicProperties.decode(properties, 0, len(properties))
    assert decoded.encode() == properties
    assert decoded.headers is not None
    decoded.headers["b"] = 1  # type: ignore[index]
    expected = spec.BasicProperties(headers={"a": True, "b": 1}).encode()
    assert decoded.encode() == expected


def test_stray_bits_stay_when_a_flag_changes() -> None:
    payload = spec.Basic.Publish().encode()[:-1] + b"\xf0"
    method = spec.Basic.Publish.decode(payload, 4, len(payload))
    method.mandatory = True
    assert method.encode() == payload[:-1] + b"\xf1"


# ---------------------------------------------------------------------------------------
# A relay: a table property is checked when its frame is decoded, decoded when first read


def _headers_block(table: bytes) -> bytes:
    return struct.pack(">H", 0xA000) + _shortstr(b"a/b") + table


def _nested(depth: int) -> bytes:
    table = _sized(b"")
    for _ in range(depth):
        table = _sized(b"\x01nF" + table)
    return table


def test_a_table_nested_1000_deep_in_a_header_fails_at_feed() -> None:
    header = _frame(2, 1, struct.pack(">HHQ", 60, 0, 0) + _headers_block(_nested(1000)))
    with pytest.raises(DecodeError, match="nest deeper than 64") as info:
        FrameDecoder().feed(header)
    assert info.value.reply_code == 502


@pytest.mark.parametrize(
    "table",
    [_sized(b"\x01nZ"), _sized(b"\x01nS\x00\x00\x00\x09x"), b"\x00\x00\x01\x00", _sized(b"\x05n")],
)
def test_a_malformed_headers_table_fails_at_feed(table: bytes) -> None:
    header = _frame(2, 1, struct.pack(">HHQ", 60, 0, 0) + _headers_block(table))
    with pytest.raises(DecodeError):
        FrameDecoder().feed(header)


def test_the_headers_table_is_decoded_when_first_read() -> None:
    table = _sized(b"\x01at\x02" + b"\x01nF" + _sized(b"\x01kI\x00\x00\x00\x05"))
    block = _headers_block(table)
    decoded = spec.BasicProperties.decode(block, 0, len(block))
    assert decoded._headers is LAZY  # nothing built yet
    copied = copy.copy(decoded)
    assert copied.headers == {"a": True, "n": {"k": 5}}
    assert copied.encode() == block
    assert decoded._headers is LAZY  # the copy's read is its own
    assert copy.copy(spec.BasicProperties(priority=1)) == spec.BasicProperties(priority=1)
    assert pickle.loads(pickle.dumps(decoded)).encode() == block
    assert copy.deepcopy(decoded) == decoded
    assert decoded.encode() == block
    assert decoded.headers == {"a": True, "n": {"k": 5}}
    assert decoded.encode() == block  # read, unchanged: still the bytes
    assert decoded == spec.BasicProperties(content_type="a/b", headers={"a": True, "n": {"k": 5}})
    assert (
        repr(decoded)
        == "BasicProperties(content_type='a/b', headers=" + repr(decoded.headers) + ")"
    )
    decoded.headers["n"]["k"] = 6  # type: ignore[index]
    assert (
        decoded.encode()
        == spec.BasicProperties(content_type="a/b", headers={"a": True, "n": {"k": 6}}).encode()
    )


def test_a_headers_table_set_before_it_is_read_replaces_it() -> None:
    block = _headers_block(_sized(b"\x01at\x02"))
    decoded = spec.BasicProperties.decode(block, 0, len(block))
    decoded.headers = {"b": 1}
    assert decoded.encode() == spec.BasicProperties(content_type="a/b", headers={"b": 1}).encode()
    decoded = spec.BasicProperties.decode(block, 0, len(block))
    decoded.headers = None
    assert decoded.encode() == spec.BasicProperties(content_type="a/b").encode()
