"""The construct grammar (``amqpcodec/grammar.py``) against the fast codec.

Two readings of one spec must agree: bytes from the fast codec parse with the grammar into
the same values, and the grammar builds the same bytes from those values; every frame of
the recorded captures parses and rebuilds byte for byte; malformed input raises
construct's errors, each matching a DecodeError of the fast codec.

The expected grammar values are computed here from the fast codec's *decoded* objects
(a decoded FieldTable's ``.types`` gives the letters that are not the default ones), with
the layout rules written out once more (bit groups, property flag positions), so a wrong
mask or group in either reading shows up.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import shutil
import struct
import subprocess
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import construct
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import amqpcodec
from amqpcodec import grammar, spec
from amqpcodec import strategies as amqp_st
from amqpcodec._base import Method, Properties
from amqpcodec._wire import (
    RABBITMQ,
    STRICT,
    Dialect,
    FieldTable,
    decode_array,
    decode_table,
    encode_array,
    encode_table,
)
from amqpcodec.compiler import SpecError, load_spec, parse_spec
from amqpcodec.compiler.__main__ import DEFAULT_SPEC
from amqpcodec.compiler.emit_construct import generate_construct

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = sorted((ROOT / "tests" / "data" / "captures").glob("*.bin"))
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def slow(max_examples: int) -> settings:
    """Settings for tests that run construct's (slow) parsers many times."""
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


# ---------------------------------------------------------------------------------------
# Strategies: the shared ones, per method class and content class


CHANNELS = st.integers(0, 0xFFFF)


def methods_of(cls: type[Method]) -> st.SearchStrategy[Method]:
    return amqp_st.method_arguments(cls).map(lambda arguments: cls(**arguments))


# ---------------------------------------------------------------------------------------
# What the grammar should read: computed from the fast codec's decoded objects


def default_letter(value: Any, dialect: Dialect) -> str:
    """The type letter the documented mapping gives a plain Python value."""
    if isinstance(value, bool):
        return "t"
    if isinstance(value, int):
        return "I" if -(2**31) <= value < 2**31 else "l" if dialect is RABBITMQ else "L"
    if value is None:
        return "V"
    if isinstance(value, str):
        return "S"
    if isinstance(value, bytes):
        return "x" if dialect is RABBITMQ else "S"
    if isinstance(value, float):
        return "d"
    if isinstance(value, Decimal):
        return "D"
    if isinstance(value, datetime.datetime):
        return "T"
    if isinstance(value, Mapping):
        return "F"
    assert isinstance(value, list), value
    return "A"


def grammar_value(value: Any, letter: str | None, dialect: Dialect) -> dict[str, Any]:
    letter = letter or default_letter(value, dialect)
    if letter in ("S", "x"):
        value = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    elif letter == "D":
        sign, digits, exponent = value.as_tuple()
        number = int("".join(map(str, digits)))
        value = {"scale": -exponent, "value": -number if sign else number}
    elif letter == "T" and isinstance(value, datetime.datetime):
        value = (value - EPOCH) // datetime.timedelta(seconds=1)
    elif letter == "F":
        value = grammar_table(value, dialect)
    elif letter == "A":
        value = grammar_array(value, dialect)
    return {"type": letter, "value": value}


def grammar_table(table: Mapping[str, Any], dialect: Dialect = RABBITMQ) -> list[dict[str, Any]]:
    types = getattr(table, "types", {})
    return [{"name": k, **grammar_value(v, types.get(k), dialect)} for k, v in table.items()]


def grammar_array(array: list[Any], dialect: Dialect = RABBITMQ) -> list[dict[str, Any]]:
    types = getattr(array, "types", {})
    return [grammar_value(v, types.get(i), dialect) for i, v in enumerate(array)]


def grammar_arguments(method: Method) -> dict[str, Any]:
    """Arguments as the grammar nests them: runs of bits in octets ``bits``, ``bits_2``..."""
    arguments: dict[str, Any] = {}
    group: dict[str, bool] | None = None
    groups = 0
    for name, kind in zip(method.FIELDS, method.FIELD_TYPES, strict=True):
        value = getattr(method, name)
        if kind != "bit":
            group = None
            arguments[name] = grammar_table(value) if kind == "table" else value
            continue
        if group is None or len(group) == 8:  # [PDF 4.2.5.2] at most 8 bits an octet
            groups += 1
            group = arguments["bits" if groups == 1 else f"bits_{groups}"] = {}
        group[name] = value
    return arguments


def grammar_properties(properties: Properties) -> dict[str, Any]:
    """Properties with their flag word(s): property i is bit 15 - i % 15 of word i // 15."""
    values: dict[str, Any] = {}
    words = [0] * ((len(properties.FIELDS) + 14) // 15)
    for index, (name, kind) in enumerate(
        zip(properties.FIELDS, properties.FIELD_TYPES, strict=True)
    ):
        value = getattr(properties, name)
        if value is not None:
            words[index // 15] |= 1 << (15 - index % 15)
            for earlier in range(index // 15):
                words[earlier] |= 1
        values[name] = grammar_table(value) if kind == "table" and value is not None else value
    flags = {"flags" if w == 0 else f"flags_{w + 1}": word for w, word in enumerate(words)}
    return flags | values


def grammar_frame(frame: amqpcodec.Frame) -> dict[str, Any]:
    if isinstance(frame, amqpcodec.MethodFrame):
        method = frame.method
        payload: Any = {
            "class_id": method.CLASS_ID,
            "method_id": method.METHOD_ID,
            "arguments": grammar_arguments(method),
        }
        return {"type": "METHOD", "channel": frame.channel, "payload": payload}
    if isinstance(frame, amqpcodec.HeaderFrame):
        payload = {
            "class_id": frame.class_id,
            "weight": 0,
            "body_size": frame.body_size,
            "properties": grammar_properties(frame.properties),
        }
        return {"type": "HEADER", "channel": frame.channel, "payload": payload}
    if isinstance(frame, amqpcodec.BodyFrame):
        return {"type": "BODY", "channel": frame.channel, "payload": bytes(frame.payload)}
    if isinstance(frame, amqpcodec.HeartbeatFrame):
        return {"type": "HEARTBEAT", "channel": 0, "payload": None}
    assert isinstance(frame, amqpcodec.ProtocolHeader)
    return {
        "protocol_id": frame.protocol_id,
        "major": frame.major,
        "minor": frame.minor,
        "revision": frame.revision,
    }


def canon(obj: Any) -> Any:
    """Comparable form: Containers as dicts without construct's ``_`` keys, bools and
    floats tagged (True is not 1; NaN compares by its bits), enum strings as str."""
    if isinstance(obj, dict):
        return {k: canon(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [canon(v) for v in obj]
    if isinstance(obj, bool):
        return ("bool", obj)
    if isinstance(obj, float):
        return ("float", struct.pack(">d", obj))
    if isinstance(obj, str):
        return str(obj)
    return obj


def assert_frame_agrees(data: bytes) -> None:
    """The fast codec's reading of one frame is the grammar's, and builds the same bytes."""
    result = amqpcodec.decode_frame(data)
    assert result is not None and result[1] == len(data)
    expected = grammar_frame(result[0])
    assert canon(grammar.Frame.parse(data)) == canon(expected)
    assert grammar.Frame.build(expected) == data


# ---------------------------------------------------------------------------------------
# Generated frames, properties and tables


@pytest.mark.parametrize("key", sorted(spec.METHODS), ids=lambda k: spec.METHODS[k].NAME)
@slow(25)
@given(data=st.data())
def test_method_frames_agree(key: tuple[int, int], data: st.DataObject) -> None:
    method = data.draw(methods_of(spec.METHODS[key]))
    channel = data.draw(CHANNELS)
    assert_frame_agrees(amqpcodec.MethodFrame(channel, method).encode())
    assert grammar.methods[key] is getattr(grammar, type(method).__qualname__.replace(".", ""))


@slow(300)
@given(
    properties=amqp_st.properties(),
    channel=CHANNELS,
    body_size=st.integers(0, 2**64 - 1),
)
def test_content_header_frames_agree(
    properties: spec.BasicProperties, channel: int, body_size: int
) -> None:
    assert_frame_agrees(amqpcodec.HeaderFrame(channel, body_size, properties).encode())


@given(channel=CHANNELS, payload=st.binary(max_size=300))
def test_body_frames_agree(channel: int, payload: bytes) -> None:
    assert_frame_agrees(amqpcodec.BodyFrame(channel, payload).encode())


def test_heartbeat_and_protocol_header() -> None:
    assert_frame_agrees(amqpcodec.HeartbeatFrame().encode())
    header = amqpcodec.ProtocolHeader()
    assert canon(grammar.ProtocolHeader.parse(header.encode())) == grammar_frame(header)
    assert grammar.ProtocolHeader.build(grammar_frame(header)) == b"AMQP\x00\x00\x09\x01"


@pytest.mark.parametrize(
    ("dialect", "table_grammar"),
    [(RABBITMQ, grammar.FieldTable), (STRICT, grammar.StrictFieldTable)],
    ids=["rabbitmq", "strict"],
)
@slow(150)
@given(data=st.data())
def test_field_tables_agree(dialect: Dialect, table_grammar: Any, data: st.DataObject) -> None:
    raw = encode_table(data.draw(amqp_st.field_tables(dialect)), dialect=dialect)
    decoded, _ = decode_table(raw, 0, len(raw), dialect)
    expected = grammar_table(decoded, dialect)
    assert canon(table_grammar.parse(raw)) == canon(expected)
    assert table_grammar.build(expected) == raw


@pytest.mark.parametrize(
    ("dialect", "array_grammar", "value_grammar"),
    [
        (RABBITMQ, grammar.FieldArray, grammar.FieldValue),
        (STRICT, grammar.StrictFieldArray, grammar.StrictFieldValue),
    ],
    ids=["rabbitmq", "strict"],
)
@slow(100)
@given(data=st.data())
def test_field_arrays_and_values_agree(
    dialect: Dialect, array_grammar: Any, value_grammar: Any, data: st.DataObject
) -> None:
    raw = encode_array(data.draw(amqp_st.field_arrays(dialect)), dialect=dialect)
    decoded, _ = decode_array(raw, 0, len(raw), dialect)
    expected = grammar_array(decoded, dialect)
    assert canon(array_grammar.parse(raw)) == canon(expected)
    assert array_grammar.build(expected) == raw
    if len(decoded) == 1:  # one value without the array's length: a FieldValue
        assert canon(value_grammar.parse(raw[4:])) == canon(expected[0])
        assert value_grammar.build(expected[0]) == raw[4:]


def test_values_the_shared_strategies_leave_out() -> None:
    """NaN, surrogate-escaped text and long strings that are not UTF-8 do not decode back
    equal, so the shared strategies do not draw them; both readings still agree."""
    table = FieldTable({"nan": float("nan"), "\udcff": "\udc80", "raw": b"\xff"})
    table.set_typed("f", float("nan"), "f")
    table.set_typed("S", b"\xfe", "S")
    method = spec.Queue.Declare(queue="\udcff\udcfe", arguments=table)
    assert_frame_agrees(amqpcodec.MethodFrame(1, method).encode())
    properties = spec.BasicProperties(content_type="\udc80", headers=table)
    assert_frame_agrees(amqpcodec.HeaderFrame(1, 0, properties).encode())


def test_every_type_letter_of_both_dialects() -> None:
    assert set(grammar.FieldType.encmapping) == set(RABBITMQ.letters)
    assert set(grammar.StrictFieldType.encmapping) == set(STRICT.letters)
    # The letters that differ between the dialects [protocol-facts 6].
    assert grammar.FieldValue.parse(b"s\xff\xfe").value == -2
    assert grammar.StrictFieldValue.parse(b"s\x02hi").value == "hi"
    assert grammar.FieldValue.parse(b"l" + b"\xff" * 8).value == -1
    assert grammar.StrictFieldValue.parse(b"l" + b"\xff" * 8).value == 2**64 - 1
    assert grammar.StrictFieldValue.parse(b"U\xff\xfe").value == -2
    assert grammar.FieldValue.parse(b"x\x00\x00\x00\x01z").value == b"z"
    with pytest.raises(construct.ExplicitError):
        grammar.StrictFieldValue.parse(b"x\x00\x00\x00\x01z")
    assert grammar.FieldValue.parse(b"U\xff\xfe").value == -2  # the grammar's U, read too
    with pytest.raises(construct.ExplicitError):
        grammar.FieldValue.parse(b"Z\xff\xfe")
    # Golden vectors [protocol-facts 15].
    assert grammar.FieldValue.parse(bytes.fromhex("44 02 ff ff ff 6a")).value == {
        "scale": 2,
        "value": -150,
    }
    table = bytes.fromhex("00 00 00 0b 01 61 74 01 01 6e 49 00 00 00 01")
    assert canon(grammar.FieldTable.parse(table)) == canon(
        [{"name": "a", "type": "t", "value": True}, {"name": "n", "type": "I", "value": 1}]
    )


# ---------------------------------------------------------------------------------------
# Recorded captures


def test_there_are_captures() -> None:
    assert len(CAPTURES) >= 16


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_capture_frames_parse_and_rebuild(path: Path) -> None:
    data = path.read_bytes()
    fast = amqpcodec.FrameDecoder(max_frame_size=0).feed(data)
    stream = io.BytesIO(data)
    walked: list[tuple[Any, bytes]] = []
    if data.startswith(b"AMQP"):
        header = grammar.ProtocolHeader.parse_stream(stream)
        walked.append((header, data[:8]))
        assert grammar.ProtocolHeader.build(header) == data[:8]
    while stream.tell() < len(data):
        start = stream.tell()
        frame = grammar.Frame.parse_stream(stream)
        walked.append((frame, data[start : stream.tell()]))
    assert len(walked) == len(fast)
    for fast_frame, (parsed, raw) in zip(fast, walked, strict=True):
        expected = grammar_frame(fast_frame)
        assert canon(parsed) == canon(expected)
        if isinstance(fast_frame, amqpcodec.ProtocolHeader):
            continue
        assert grammar.Frame.build(parsed) == raw
        assert grammar.Frame.build(expected) == raw
    # The whole direction at once.
    whole = grammar.FrameStream.parse(data)
    assert len(whole.frames) + (whole.protocol_header is not None) == len(fast)
    assert grammar.FrameStream.build(whole) == data


# ---------------------------------------------------------------------------------------
# Malformed input: construct's errors where the fast codec raises DecodeError


def _frame(frame_type: int, channel: int, payload: bytes, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + end


def _sized(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


_DECLARE = spec.Queue.Declare(queue="q", arguments={"k": 1}).encode()  # ends in an 11-byte table
assert _DECLARE.endswith(_sized(b"\x01kI\x00\x00\x00\x01"))
_PUBLISH = spec.Basic.Publish(routing_key="rk").encode()
_HEADER = struct.pack(">HHQ", 60, 0, 5) + spec.BasicProperties(delivery_mode=2).encode()
MALFORMED = {
    # name: (frame bytes, construct error, reply code of the fast codec's DecodeError)
    "bad frame end": (_frame(8, 0, b"", b"\xcf"), construct.ConstError, 501),
    "unknown frame type": (_frame(5, 0, b""), construct.ExplicitError, 501),
    "unknown method": (_frame(1, 1, b"\x00\x3c\x03\xe7"), construct.ExplicitError, 540),
    "unknown type letter": (
        _frame(1, 1, _DECLARE.replace(b"kI", b"kZ")),
        construct.ExplicitError,
        502,
    ),
    "unknown letter in an array": (
        _frame(1, 1, _DECLARE[:-11] + _sized(b"\x01kA" + _sized(b"Z"))),
        construct.ExplicitError,
        502,
    ),
    "bytes left after the arguments": (
        _frame(1, 1, _PUBLISH + b"\x00"),
        construct.TerminatedError,
        501,
    ),
    "arguments cut short": (_frame(1, 1, _PUBLISH[:-2]), construct.StreamError, 501),
    "table longer than its frame": (
        _frame(1, 1, _DECLARE[:-11] + b"\x00\x00\x01\x00"),
        construct.StreamError,
        501,
    ),
    "content header weight": (
        _frame(2, 1, _HEADER[:2] + b"\x00\x01" + _HEADER[4:]),
        construct.ConstError,
        505,
    ),
    "content header for a class without content": (
        _frame(2, 1, b"\x00\x0a" + _HEADER[2:]),
        construct.ExplicitError,
        505,
    ),
    "unknown property flag": (
        _frame(2, 1, _HEADER[:12] + b"\x10\x02" + _HEADER[14:]),
        construct.CheckError,
        501,
    ),
    "heartbeat with a payload": (_frame(8, 0, b"\x00"), construct.TerminatedError, 501),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_frames_raise_construct_errors(name: str) -> None:
    data, error, reply_code = MALFORMED[name]
    with pytest.raises(error):
        grammar.Frame.parse(data)
    with pytest.raises(amqpcodec.DecodeError) as info:
        amqpcodec.decode_frame(data)
    assert info.value.reply_code == reply_code
    assert reply_code in ERROR_MAPPING[error]
    # Inside a stream, a frame that does not parse stops the stream short of its end.
    with pytest.raises(construct.ConstructError):
        grammar.FrameStream.parse(amqpcodec.HeartbeatFrame().encode() + data)


def test_truncation_is_a_stream_error_where_the_fast_codec_waits() -> None:
    frames = [
        _frame(1, 1, _DECLARE),
        _frame(2, 1, _HEADER),
        _frame(3, 1, b"hello"),
        amqpcodec.HeartbeatFrame().encode(),
    ]
    for frame in frames:
        for cut in range(len(frame)):
            assert amqpcodec.decode_frame(frame[:cut]) is None
            with pytest.raises(construct.StreamError):
                grammar.Frame.parse(frame[:cut])


def test_building_bad_values_raises_construct_errors() -> None:
    with pytest.raises(construct.MappingError):  # no such type letter
        grammar.FieldValue.build({"type": "Z", "value": 1})
    with pytest.raises(construct.ConstructError):  # does not fit an octet
        grammar.BasicQos.build({"prefetch_size": 0, "prefetch_count": 70000, "bits": {}})
    with pytest.raises(construct.MappingError):  # no such flag
        grammar.BasicAck.build({"delivery_tag": 1, "bits": {"requeue": True}})


def _capture_frames() -> list[bytes]:
    frames = []
    for path in CAPTURES:
        data = path.read_bytes()
        stream = io.BytesIO(data)
        if data.startswith(b"AMQP"):
            stream.seek(8)
        while stream.tell() < len(data):
            start = stream.tell()
            grammar.Frame.parse_stream(stream)
            if stream.tell() - start < 2000:
                frames.append(data[start : stream.tell()])
    return frames


CAPTURE_FRAMES = _capture_frames()


# How construct's errors map to the fast codec's: DecodeError reply codes, None where
# decode_frame says the frame is incomplete (the grammar cannot wait for more data).
ERROR_MAPPING: dict[type[Exception], set[int | None]] = {
    construct.StreamError: {None, 501},
    construct.ConstError: {501, 505},
    construct.ExplicitError: {501, 502, 505, 540},
    construct.TerminatedError: {None, 501},  # None: a heartbeat payload before its end
    construct.CheckError: {501},
}


def assert_readings_agree(data: bytes) -> None:
    """Parse ``data`` both ways: the same frame, or errors that correspond."""
    try:
        parsed, error = grammar.Frame.parse(data), None
    except construct.ConstructError as exc:
        parsed, error = None, type(exc)
    try:
        result = amqpcodec.decode_frame(data)
        code = None
    except amqpcodec.DecodeError as exc:
        result, code = None, exc.reply_code
    if result is not None and isinstance(result[0], amqpcodec.ProtocolHeader):
        expected = grammar_frame(result[0])  # decode_frame knows headers, Frame does not
        assert canon(grammar.ProtocolHeader.parse(data)) == expected
    elif result is not None:
        assert parsed is not None, error
        assert canon(parsed) == canon(grammar_frame(result[0]))
    elif parsed is not None:  # the grammar does not check channels [PDF 4.2.3]
        assert (parsed.type, code) == ("HEARTBEAT", 503)
    elif code is None and error not in (construct.StreamError, construct.TerminatedError):
        # decode_frame waits for the rest of the frame; the grammar, which cannot wait,
        # judged the bytes it has: decode_frame must judge them alike once the frame is there.
        assert error is not None
        size = int.from_bytes(data[3:7], "big")
        assert 7 + size + 1 > len(data)
        if size <= 1 << 16:
            completed = data[: 7 + size].ljust(7 + size, b"\0") + b"\xce"
            with pytest.raises(amqpcodec.DecodeError) as refused:
                amqpcodec.decode_frame(completed)
            assert refused.value.reply_code in ERROR_MAPPING[error], (error, refused.value)
    else:
        assert error is not None and code in ERROR_MAPPING[error], (error, code)


@slow(1000)
@given(
    frame=st.sampled_from(CAPTURE_FRAMES),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=3),
)
@example(
    frame=b"\x01\x00\x01\x00\x00\x00\x08\x002\x00)\x00\x00\x00\x00\xce", edits=[(6, 9), (7, 1)]
)
def test_mutated_frames_agree(frame: bytes, edits: list[tuple[int, int]]) -> None:
    """Captured frames changed in a few octets: both readings agree or both refuse."""
    data = bytearray(frame)
    for position, value in edits:
        data[position % len(data)] = value
    assert_readings_agree(bytes(data))


@slow(300)
@given(st.binary(max_size=64))
def test_random_bytes_agree(data: bytes) -> None:
    assert_readings_agree(data)
    for parser in (grammar.FrameStream, grammar.FieldTable, grammar.StrictFieldTable):
        with contextlib.suppress(construct.ConstructError):
            parser.parse(data)


# ---------------------------------------------------------------------------------------
# The module, the generator and the README example


def test_import_amqpcodec_does_not_import_construct() -> None:
    code = (
        "import sys, amqpcodec, amqpcodec.spec, amqpcodec.compiler.__main__\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'construct')\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_public_names() -> None:
    assert all(hasattr(grammar, name) for name in grammar.__all__)
    assert set(grammar.methods) == set(spec.METHODS)
    assert set(grammar.properties) == set(spec.PROPERTIES)
    assert grammar.methods[(60, 40)] is grammar.BasicPublish
    assert grammar.properties[60] is grammar.BasicProperties


def test_grammar_is_fresh_and_deterministic() -> None:
    source = generate_construct(parse_spec(DEFAULT_SPEC))
    assert source == generate_construct(parse_spec(DEFAULT_SPEC))
    assert (ROOT / "amqpcodec" / "grammar.py").read_text(encoding="utf-8") == source


WIDE_SPEC = """<?xml version="1.0"?>
<amqp major="0" minor="9" revision="1">
  <constant name="frame-method" value="1"/>
  <constant name="frame-header" value="2"/>
  <constant name="frame-body" value="3"/>
  <constant name="frame-heartbeat" value="8"/>
  <constant name="frame-end" value="206"/>
  <constant name="frame-error" value="501" class="hard-error"/>
  <domain name="flag" type="bit"/>
  <class name="wide-class" index="70">
    {properties}
    <method name="many-bits" index="10">
      {bits}
      <field name="number" domain="octet" reserved="1"/>
      <field name="last" domain="bit"/>
      <field name="t" domain="table"/>
    </method>
  </class>
</amqp>
"""


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], str]:
    """A spec with 17 properties (two flag words) and 10 bits in a row (two octets)."""
    kinds = ["shortstr", "octet", "short", "long", "longlong", "timestamp", "longstr", "table"]
    properties = "\n".join(
        f'<field name="property-number-{i}" domain="{kinds[i % len(kinds)]}"/>' for i in range(17)
    )
    bits = "\n".join(f'<field name="a-rather-long-bit-name-{i}" domain="flag"/>' for i in range(10))
    path = tmp_path_factory.mktemp("wide") / "wide.xml"
    path.write_text(WIDE_SPEC.format(properties=properties, bits=bits), encoding="utf-8")
    source = generate_construct(parse_spec(path))
    namespace: dict[str, Any] = {"__name__": "wide_grammar"}
    exec(compile(source, "<wide grammar>", "exec"), namespace)
    return load_spec(path), namespace, source


@slow(100)
@given(data=st.data())
def test_wide_spec_flag_words_and_bit_groups(
    wide: tuple[Any, dict[str, Any], str], data: st.DataObject
) -> None:
    fast, wide_grammar, _ = wide
    properties = data.draw(amqp_st.properties(70, spec_module=fast))
    expected = grammar_properties(properties)
    raw = wide_grammar["properties"][70].build(expected)
    decoded = fast.WideClassProperties.decode(raw, 0, len(raw))
    assert canon(grammar_properties(decoded)) == canon(expected)
    assert canon(wide_grammar["properties"][70].parse(raw)) == canon(expected)
    assert decoded.encode() == raw
    method = data.draw(methods_of(fast.WideClass.ManyBits))
    raw = method.encode()
    expected = {"class_id": 70, "method_id": 10, "arguments": grammar_arguments(method)}
    assert canon(wide_grammar["MethodPayload"].parse(raw)) == canon(expected)
    assert wide_grammar["MethodPayload"].build(expected) == raw


def test_wide_spec_flag_word_only_after_a_continuation_bit(
    wide: tuple[Any, dict[str, Any], str],
) -> None:
    """A flag word follows only a word with bit 0 set [PDF 4.2.6.1]. Only classes with
    more than 15 properties have a second word, so the standard spec is not affected."""
    fast, wide_grammar, _ = wide
    properties = fast.WideClassProperties(property_number_0="x")
    raw = wide_grammar["properties"][70].build(grammar_properties(properties))
    assert raw == b"\x80\x00\x01x"
    assert properties.encode() == raw


def test_generated_names_must_not_collide(tmp_path: Path) -> None:
    methods = '<method name="stream" index="10"/>'
    xml = WIDE_SPEC.replace("wide-class", "frame").replace("{properties}", "")
    xml = xml[: xml.index("<method")] + methods + xml[xml.index("</class>") :]
    path = tmp_path / "frame-stream.xml"
    path.write_text(xml, encoding="utf-8")
    with pytest.raises(SpecError, match="FrameStream"):
        generate_construct(parse_spec(path))


def test_wide_spec_grammar_is_formatted(wide: tuple[Any, dict[str, Any], str]) -> None:
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is None:
        pytest.skip("ruff is not installed")
    _, _, source = wide
    name = str(ROOT / "amqpcodec" / "grammar_wide.py")  # for ruff's settings; not written
    formatted = subprocess.run(
        [ruff, "format", "--stdin-filename", name, "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    assert formatted == source
    subprocess.run(
        [ruff, "check", "--stdin-filename", name, "-"], input=source, text=True, check=True
    )


README_EXAMPLE = """\
import amqpcodec
from amqpcodec import grammar

data = open("tests/data/captures/pika_publish_props.c2s.bin", "rb").read()
frames = grammar.FrameStream.parse(data).frames  # a construct ListContainer
publish = next(f for f in frames if f.type == "METHOD" and f.payload.class_id == 60)
header = next(f for f in frames if f.type == "HEADER")
print(publish.payload.arguments.routing_key)  # amqpcodec.record.publish_props

publish.payload.arguments.routing_key = "elsewhere"
publish.payload.arguments.bits.mandatory = True
header.payload.properties.priority = 9  # the flag word follows what is not None
header.payload.properties.headers = None
raw = grammar.Frame.build(publish) + grammar.Frame.build(header)

method_frame, header_frame = amqpcodec.FrameDecoder().feed(raw)
assert method_frame.method == amqpcodec.spec.Basic.Publish(routing_key="elsewhere", mandatory=True)
assert header_frame.properties.priority == 9 and header_frame.properties.headers is None
"""


def test_readme_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example of the README section "The construct grammar" runs."""
    monkeypatch.chdir(ROOT)
    exec(compile(README_EXAMPLE, "README example", "exec"), {"__name__": "__readme__"})
