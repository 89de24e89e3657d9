"""Wire primitives: short strings, field tables, field arrays and their two dialects.

Vectors come from ``protocol-facts.md`` §6 and §15; the byte-exact properties are checked
against raw bytes built here with ``struct``, not against our own encoder.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import struct
import sys
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from types import FrameType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqpcodec import RABBITMQ, STRICT, DecodeError, Dialect, EncodeError, FieldArray, FieldTable
from amqpcodec import strategies as amqp_st
from amqpcodec._wire import (
    DEFAULT_MAX_DEPTH,
    check_table,
    decode_array,
    decode_longstr,
    decode_shortstr,
    decode_table,
    encode_array,
    encode_longstr,
    encode_shortstr,
    encode_table,
    write_table,
)

UTC = datetime.timezone.utc
DIALECTS = [RABBITMQ, STRICT]


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def shortstr(raw: bytes) -> bytes:
    return bytes([len(raw)]) + raw


def longstr(raw: bytes) -> bytes:
    return u32(len(raw)) + raw


def table_bytes(*entries: tuple[bytes, bytes]) -> bytes:
    """A table from (name, letter + value) pairs."""
    body = b"".join(shortstr(name) + value for name, value in entries)
    return u32(len(body)) + body


def decode_all(data: bytes, dialect: Dialect = RABBITMQ, **kwargs: Any) -> FieldTable:
    """Decode a table that must use every byte of ``data``."""
    table, off = decode_table(data, 0, len(data), dialect, **kwargs)
    assert off == len(data)
    return table


def value_bytes(value: Any, dialect: Dialect = RABBITMQ) -> bytes:
    """The letter and value bytes that ``value`` encodes to, inside a table."""
    data = encode_table({"v": value}, dialect=dialect)
    assert data[4:6] == b"\x01v"
    return data[6:]


# ---------------------------------------------------------------------------------------
# protocol-facts §15 vectors


def test_table_vector() -> None:
    data = bytes.fromhex("0000000b 0161 7401 016e 4900000001")
    assert encode_table({"a": True, "n": 1}) == data
    table = decode_all(data)
    assert table == {"a": True, "n": 1}
    assert table.types == {}  # both letters are what the mapping picks again
    assert encode_table(table) == data


def test_decimal_vector() -> None:
    assert value_bytes(Decimal("-1.50")) == bytes.fromhex("4402ffffff6a")
    value = decode_all(table_bytes((b"v", bytes.fromhex("4402ffffff6a"))))["v"]
    assert value == Decimal("-1.50")
    assert value.as_tuple().exponent == -2  # the scale survives, not just the value


def test_array_vector() -> None:
    data = bytes.fromhex("41 0000000b 4900000001 5300000001 78")
    assert value_bytes([1, "x"]) == data
    assert b"A" + encode_array([1, "x"]) == data
    array, off = decode_array(data, 1, len(data))
    assert (array, off) == ([1, "x"], len(data))
    assert array.types == {}


def test_empty_table_and_array() -> None:
    assert encode_table({}) == encode_table(None) == encode_table(FieldTable()) == u32(0)
    assert encode_array([]) == encode_array(FieldArray()) == u32(0)
    table, off = decode_table(b"\0\0\0\0", 0, 4)
    assert (table, off, type(table)) == ({}, 4, FieldTable)
    array, off = decode_array(b"\0\0\0\0", 0, 4)
    assert (array, off, type(array)) == ([], 4, FieldArray)


# ---------------------------------------------------------------------------------------
# Short and long strings


def test_shortstr_of_255_bytes_is_the_limit() -> None:
    assert encode_shortstr("a" * 255) == b"\xff" + b"a" * 255
    assert encode_shortstr("é" * 127 + "a") == b"\xff" + "é".encode() * 127 + b"a"
    assert decode_shortstr(b"\xff" + b"a" * 255, 0, 256) == ("a" * 255, 256)


@pytest.mark.parametrize("text", ["a" * 256, "é" * 128], ids=["ascii", "two-byte"])
def test_shortstr_over_255_utf8_bytes_names_the_field(text: str) -> None:
    with pytest.raises(EncodeError) as info:
        encode_shortstr(text, "queue.declare.queue")
    assert info.value.field == "queue.declare.queue"
    assert info.value.value == text
    assert "256 UTF-8 bytes" in str(info.value)


def test_shortstr_errors_are_encode_errors() -> None:
    with pytest.raises(EncodeError, match="expected str"):
        encode_shortstr(b"bytes", "f")  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="not encodable"):
        encode_shortstr("\ud800", "f")  # a lone surrogate that surrogateescape cannot map


def test_invalid_utf8_shortstr_round_trips_losslessly() -> None:
    # Our documented decision: invalid UTF-8 decodes with surrogateescape, so it
    # re-encodes to the very same bytes instead of failing or being replaced.
    raw = b"\x04a\xff\xfe\xc3"
    text, off = decode_shortstr(raw, 0, len(raw))
    assert (text, off) == ("a\udcff\udcfe\udcc3", 5)
    assert encode_shortstr(text) == raw


def test_invalid_utf8_in_keys_and_values_round_trips() -> None:
    data = table_bytes((b"k\xff", b"S" + longstr(b"\xc3(")), (b"ok", b"S" + longstr(b"\xc3\xa9")))
    table = decode_all(data)
    assert table == {"k\udcff": b"\xc3(", "ok": "é"}
    assert table.types == {"k\udcff": "S"}  # bytes that came as S go back as S
    assert encode_table(table) == data


def test_strings_past_the_end_are_decode_errors() -> None:
    with pytest.raises(DecodeError) as info:
        decode_shortstr(b"\x05abc", 0, 4)
    assert (info.value.reply_code, info.value.offset) == (501, 0)
    with pytest.raises(DecodeError):
        decode_shortstr(b"", 0, 0)
    with pytest.raises(DecodeError):
        decode_longstr(b"\x00\x00\x00\x05abc", 0, 7)
    with pytest.raises(DecodeError):
        decode_longstr(b"\x00\x00", 0, 2)
    # The frame bound wins over the buffer: bytes beyond ``end`` are not ours.
    with pytest.raises(DecodeError):
        decode_longstr(b"\x00\x00\x00\x03abc", 0, 6)


def test_longstr_accepts_bytes_likes_and_str() -> None:
    expected = b"\x00\x00\x00\x02hi"
    for value in (b"hi", bytearray(b"hi"), memoryview(b"hi"), "hi"):
        assert encode_longstr(value) == expected
    with pytest.raises(EncodeError):
        encode_longstr(5, "x")  # type: ignore[arg-type]
    assert decode_longstr(expected, 0, 6) == (b"hi", 6)


# ---------------------------------------------------------------------------------------
# The plain-Python mapping (README "Field tables")

AWARE = datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=UTC)
SECONDS = int(AWARE.timestamp())


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (True, b"t\x01"),
        (False, b"t\x00"),
        (0, b"I" + struct.pack(">i", 0)),
        (-(2**31), b"I" + struct.pack(">i", -(2**31))),
        (2**31 - 1, b"I" + struct.pack(">i", 2**31 - 1)),
        (2**31, b"l" + struct.pack(">q", 2**31)),
        (-(2**31) - 1, b"l" + struct.pack(">q", -(2**31) - 1)),
        (2**63 - 1, b"l" + struct.pack(">q", 2**63 - 1)),
        (-(2**63), b"l" + struct.pack(">q", -(2**63))),
        (1.5, b"d" + struct.pack(">d", 1.5)),
        (Decimal("12.345"), b"D\x03" + struct.pack(">i", 12345)),
        (Decimal("7E+2"), b"D\x00" + struct.pack(">i", 700)),
        ("é", b"S" + longstr("é".encode())),
        (b"\x00\xff", b"x" + longstr(b"\x00\xff")),
        (bytearray(b"ab"), b"x" + longstr(b"ab")),
        (memoryview(b"ab"), b"x" + longstr(b"ab")),
        (AWARE, b"T" + struct.pack(">Q", SECONDS)),
        (AWARE.replace(tzinfo=None), b"T" + struct.pack(">Q", SECONDS)),  # naive means UTC
        ({"k": 1}, b"F" + table_bytes((b"k", b"I\x00\x00\x00\x01"))),
        ([], b"A" + u32(0)),
        ((1,), b"A" + u32(5) + b"I\x00\x00\x00\x01"),
        (None, b"V"),
    ],
    ids=repr,
)
def test_plain_python_mapping(value: Any, encoded: bytes) -> None:
    assert value_bytes(value) == encoded
    decoded = decode_all(encode_table({"v": value}))["v"]
    if isinstance(value, datetime.datetime):
        assert decoded == AWARE  # decodes aware, in UTC
    elif isinstance(value, (bytearray, memoryview)):
        assert decoded == bytes(value)
    elif isinstance(value, tuple):
        assert decoded == list(value)
    else:
        assert decoded == value
        assert type(decoded) is type(value) or isinstance(value, (dict, list))


def test_strict_dialect_mapping_differences() -> None:
    # The 0-9-1 grammar read literally: L is the signed 64-bit letter, no x for bytes.
    assert value_bytes(2**40, STRICT) == b"L" + struct.pack(">q", 2**40)
    assert value_bytes(b"ab", STRICT) == b"S" + longstr(b"ab")
    assert decode_all(table_bytes((b"v", b"S" + longstr(b"ab"))), STRICT) == {"v": "ab"}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (2**63, "does not fit in 64 bits"),
        (-(2**63) - 1, "does not fit in 64 bits"),
        (object(), "has no field-table type"),
        ({1, 2}, "has no field-table type"),
        (Decimal("NaN"), "not a finite decimal"),
        (Decimal("Infinity"), "not a finite decimal"),
        (Decimal("1E-256"), "does not fit"),
        (Decimal(2**31), "does not fit"),
        (datetime.datetime(1969, 12, 31, tzinfo=UTC), "out of range"),
        ("\ud800", "not encodable"),
    ],
    ids=repr,
)
def test_unencodable_values_are_encode_errors_naming_the_path(value: Any, reason: str) -> None:
    with pytest.raises(EncodeError, match=reason) as info:
        encode_table({"outer": {"list": [1, value]}}, "basic.properties.headers")
    assert info.value.field == "basic.properties.headers['outer']['list'][1]"
    assert info.value.value is value
    assert not isinstance(info.value, TypeError)


def test_bad_keys_and_non_mappings_are_encode_errors() -> None:
    with pytest.raises(EncodeError, match="not a str"):
        encode_table({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(EncodeError, match="longer than 255"):
        encode_table({"k" * 256: 1})
    with pytest.raises(EncodeError, match="expected a mapping"):
        encode_table([("a", 1)], "arguments")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Remembered type letters


def test_the_0_9_1_grammar_u_reads_as_signed_16_bit_in_rabbitmq_dialect() -> None:
    # The letter is free in RabbitMQ's table (it writes ``s``): a capture of a client that
    # sends the grammar's ``U`` must decode, and re-encode with its letter.
    data = table_bytes((b"u", b"U\xff\xfe"), (b"s", b"s\x00\x02"))
    table = decode_all(data)
    assert table == {"u": -2, "s": 2}
    assert table.types == {"u": "U", "s": "s"}
    assert encode_table(table) == data
    assert encode_table(FieldTable(table)) == table_bytes(
        (b"u", b"I\xff\xff\xff\xfe"), (b"s", b"I\x00\x00\x00\x02")
    )
    rebuilt = FieldTable()
    rebuilt.set_typed("u", -2, "U")
    assert encode_table(rebuilt) == table_bytes((b"u", b"U\xff\xfe"))
    array = b"\x00\x00\x00\x03U\x80\x00"
    assert decode_array(array, 0, len(array))[0] == [-32768]


def test_remembered_letters_are_used_while_the_value_fits() -> None:
    table = FieldTable()
    table.set_typed("b", 200, "B")
    table.set_typed("f", 0.5, "f")
    table.set_typed("big", 300, "B")  # no longer fits an octet: the mapping decides
    table.set_typed("wide", 1e300, "f")  # too large for float32: written as a double
    assert encode_table(table) == table_bytes(
        (b"b", b"B\xc8"),
        (b"f", b"f" + struct.pack(">f", 0.5)),
        (b"big", b"I" + struct.pack(">i", 300)),
        (b"wide", b"d" + struct.pack(">d", 1e300)),
    )
    array = FieldArray([7, "s"])
    array.types = {0: "u"}
    assert encode_array(array) == u32(9) + b"u\x00\x07" + b"S" + longstr(b"s")


def test_typed_value_that_is_not_utf8_encodable_is_an_encode_error() -> None:
    table = FieldTable()
    table.set_typed("k", "\ud800", "S")
    with pytest.raises(EncodeError, match="not encodable"):
        encode_table(table)
    array = FieldArray(["\ud800"])
    array.types = {0: "x"}
    with pytest.raises(EncodeError, match="not encodable"):
        encode_array(array)


@pytest.mark.parametrize("bits", [0x7F800001, 0xFF800001, 0x7FC00000, 0x7FBFFFFF, 0xFFFFFFFF])
def test_float32_nan_payloads_survive(bits: int) -> None:
    # float32 -> double -> float32 through C casts would set the quiet bit of a
    # signalling NaN; the codec carries the payload itself.
    data = table_bytes((b"v", b"f" + u32(bits)))
    table = decode_all(data)
    assert math.isnan(table["v"])
    assert encode_table(table) == data


def test_duplicate_keys_last_one_wins() -> None:
    # protocol-facts §6: undefined by the spec, RabbitMQ keeps both; a dict keeps the last.
    data = table_bytes((b"a", b"B\x01"), (b"a", b"I\x00\x00\x00\x02"))
    table = decode_all(data)
    assert table == {"a": 2}
    assert table.types == {}  # the letter went with the value it belonged to


def test_bool_octets_other_than_0_and_1_survive_until_the_table_changes() -> None:
    # Any non-zero octet is true (PDF §4.2.5.5); a bool cannot keep which one it was,
    # but the decoded table keeps its bytes while unchanged.
    data = table_bytes((b"v", b"t\x02"))
    table = decode_all(data)
    assert table == {"v": True}
    assert encode_table(table) == data
    out = bytearray()
    write_table(out, table)
    assert out == data
    table["w"] = False  # a changed table is written from its values: true is 1
    assert encode_table(table) == table_bytes((b"v", b"t\x01"), (b"w", b"t\x00"))


def test_a_repeated_key_keeps_both_entries_on_the_wire() -> None:
    data = table_bytes((b"a", b"B\x01"), (b"b", b"V"), (b"a", b"I\x00\x00\x00\x02"))
    table = decode_all(data)
    assert table == {"a": 2, "b": None}
    assert encode_table(table) == data
    del table["b"]
    assert encode_table(table) == table_bytes((b"a", b"I\x00\x00\x00\x02"))


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.__setitem__("k", 1),
        lambda t: t.__delitem__("n"),
        lambda t: t.pop("n"),
        lambda t: t.pop("missing", None),
        lambda t: t.popitem(),
        lambda t: t.clear(),
        lambda t: t.setdefault("k", 1),
        lambda t: t.update(k=1),
        lambda t: t.__ior__({"k": 1}),
        lambda t: t.set_typed("k", 1, "b"),
        lambda t: t["n"].__setitem__("k", 1),
        lambda t: t["n"]["deeper"].append(1),
        lambda t: t["n"]["deeper"].__setitem__(0, 2),
        lambda t: t["n"]["deeper"].__delitem__(0),
        lambda t: t["n"]["deeper"].__iadd__([1]),
        lambda t: t["n"]["deeper"].__imul__(2),
        lambda t: t["n"]["deeper"].extend([1]),
        lambda t: t["n"]["deeper"].insert(0, 1),
        lambda t: t["n"]["deeper"].pop(),
        lambda t: t["n"]["deeper"].remove(True),
        lambda t: t["n"]["deeper"].clear(),
        lambda t: t["n"]["deeper"].sort(),
        lambda t: t["n"]["deeper"].reverse(),
    ],
)
def test_any_change_makes_a_decoded_table_encode_its_values(change: Any) -> None:
    """A change anywhere inside is seen by the table that kept the bytes."""
    data = table_bytes((b"n", b"F" + table_bytes((b"deeper", b"A\x00\x00\x00\x04t\x02t\x00"))))
    table = decode_all(data)
    assert encode_table(table) == data
    change(table)
    assert encode_table(table) == encode_table(_rebuilt(table))
    assert encode_table(table) != data  # the nested true is written as 1 now


def _rebuilt(value: Any) -> Any:
    """A copy built by hand: it has no bytes to write back."""
    if isinstance(value, dict):
        table = FieldTable({k: _rebuilt(v) for k, v in value.items()})
        table.types = dict(value.types)
        return table
    if isinstance(value, list):
        array = FieldArray(_rebuilt(v) for v in value)
        array.types = dict(value.types)
        return array
    return value


def test_a_decoded_table_is_rewritten_in_another_dialect() -> None:
    data = table_bytes((b"v", b"t\x02"), (b"n", b"b\xff"))
    table = decode_all(data)
    assert encode_table(table, dialect=STRICT) == table_bytes((b"v", b"t\x01"), (b"n", b"b\xff"))
    assert encode_table(table) == data


def test_a_decoded_array_keeps_its_bytes() -> None:
    data = b"\x00\x00\x00\x04t\x05t\x00"
    array, _ = decode_array(data, 0, len(data))
    assert array == [True, False]
    assert encode_array(array) == data
    array.append(True)
    assert encode_array(array) == b"\x00\x00\x00\x06t\x01t\x00t\x01"


# ---------------------------------------------------------------------------------------
# Every type letter of both dialects, from raw bytes: decode, then re-encode byte-exact


def _fixed(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


def _long(raw: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return raw.map(longstr)


# Random bytes are rarely UTF-8; S values and names need both kinds.
_TEXT_OR_BYTES = st.binary(max_size=40) | st.text(max_size=12).map(
    lambda text: text.encode("utf-8", "surrogatepass")
)


_SCALAR_RAW: dict[str, dict[str, st.SearchStrategy[bytes]]] = {
    "rabbitmq": {
        "t": st.sampled_from([b"\x00", b"\x01"]),
        "b": _fixed(1),
        "B": _fixed(1),
        "s": _fixed(2),
        "U": _fixed(2),
        "u": _fixed(2),
        "I": _fixed(4),
        "i": _fixed(4),
        "l": _fixed(8),
        "L": _fixed(8),
        "f": _fixed(4),
        "d": _fixed(8),
        "D": _fixed(5),
        "S": _long(_TEXT_OR_BYTES),
        "x": _long(st.binary(max_size=40)),
        "T": _fixed(8),
        "V": st.just(b""),
    },
    "strict-0-9-1": {
        "t": st.sampled_from([b"\x00", b"\x01"]),
        "b": _fixed(1),
        "B": _fixed(1),
        "U": _fixed(2),
        "u": _fixed(2),
        "I": _fixed(4),
        "i": _fixed(4),
        "L": _fixed(8),
        "l": _fixed(8),
        "f": _fixed(4),
        "d": _fixed(8),
        "D": _fixed(5),
        "s": (st.binary(max_size=255) | _TEXT_OR_BYTES).map(shortstr),
        "S": _long(_TEXT_OR_BYTES),
        "T": _fixed(8),
        "V": st.just(b""),
    },
}


def _raw_values(dialect: Dialect) -> st.SearchStrategy[bytes]:
    """Letter + value bytes of any type letter of ``dialect``, nested tables and arrays."""
    scalars = _SCALAR_RAW[dialect.name]
    assert set(scalars) | {"A", "F"} == set(dialect.letters)  # every letter is covered
    leaves = st.one_of(
        [raw.map(lambda v, c=letter: c.encode() + v) for letter, raw in scalars.items()]
    )

    def nest(children: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
        arrays = st.lists(children, max_size=4).map(lambda vs: b"A" + longstr(b"".join(vs)))
        names = st.lists(st.binary(max_size=8), unique=True, max_size=4)
        tables = names.flatmap(
            lambda ks: st.lists(children, min_size=len(ks), max_size=len(ks)).map(
                lambda vs: b"F" + table_bytes(*zip(ks, vs, strict=True))
            )
        )
        return arrays | tables

    return st.recursive(leaves, nest, max_leaves=12)


RAW_VALUES = {dialect.name: _raw_values(dialect) for dialect in DIALECTS}


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@given(data=st.data())
def test_every_type_letter_decodes_and_reencodes_byte_exact(
    dialect: Dialect, data: st.DataObject
) -> None:
    names = data.draw(st.lists(st.binary(max_size=8), unique=True, max_size=6))
    values = [data.draw(RAW_VALUES[dialect.name]) for _ in names]
    raw = table_bytes(*zip(names, values, strict=True))
    table = decode_all(raw, dialect)
    assert encode_table(table, dialect=dialect) == raw
    assert (
        encode_table(decode_all(encode_table(table, dialect=dialect), dialect), dialect=dialect)
        == raw
    )


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@given(data=st.data())
def test_every_type_letter_in_arrays(dialect: Dialect, data: st.DataObject) -> None:
    values = data.draw(st.lists(RAW_VALUES[dialect.name], max_size=6))
    raw = longstr(b"".join(values))
    array, off = decode_array(raw, 0, len(raw), dialect)
    assert off == len(raw)
    assert encode_array(array, dialect=dialect) == raw


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@given(data=st.data())
def test_drawn_tables_round_trip(dialect: Dialect, data: st.DataObject) -> None:
    table = data.draw(amqp_st.field_tables(dialect))
    raw = encode_table(table, dialect=dialect)
    decoded = decode_all(raw, dialect)
    assert decoded == table
    assert encode_table(decoded, dialect=dialect) == raw


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_strategies_use_every_letter(dialect: Dialect) -> None:
    seen: set[str] = set()

    @given(amqp_st.field_tables(dialect, max_depth=1, max_size=8))
    def collect(table: FieldTable) -> None:
        seen.update(_letters_of(table, dialect))

    collect()
    assert seen == set(dialect.letters) - {"A", "F"}


def _letters_of(table: FieldTable, dialect: Dialect) -> set[str]:
    """The type letters the top-level entries of ``table`` encode with."""
    letters = set()
    for key, value in table.items():
        single = FieldTable()
        if key in table.types:
            single.set_typed(key, value, table.types[key])
        else:
            single[key] = value
        raw = encode_table(single, dialect=dialect)
        letters.add(chr(raw[5 + len(key.encode("utf-8", "surrogateescape"))]))
    return letters


# ---------------------------------------------------------------------------------------
# Malformed input


def _nested(depth: int, letter: bytes) -> bytes:
    """A table (letter F) or array (letter A) nested ``depth`` levels, built iteratively."""
    data = u32(0)
    for _ in range(depth - 1):
        body = (b"\x01k" if letter == b"F" else b"") + letter + data
        data = u32(len(body)) + body
    return data


@pytest.mark.parametrize("letter", [b"F", b"A"])
@pytest.mark.parametrize("max_depth", [DEFAULT_MAX_DEPTH, 10**6])
def test_nesting_1000_deep_is_a_decode_error(letter: bytes, max_depth: int) -> None:
    data = _nested(1000, letter)
    decode: Callable[..., Any] = decode_table if letter == b"F" else decode_array
    with pytest.raises(DecodeError) as info:  # never RecursionError, whatever the setting
        decode(data, 0, len(data), RABBITMQ, max_depth)
    assert info.value.reply_code == 502


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
@given(data=st.data())
def test_check_table_accepts_and_refuses_exactly_what_decoding_does(
    dialect: Dialect, data: st.DataObject
) -> None:
    """check_table walks a table without building it; a content-properties block checks its
    table so, and decodes it on first read: the two must agree on every input."""
    names = data.draw(st.lists(st.binary(max_size=8), max_size=4))
    values = [data.draw(RAW_VALUES[dialect.name]) for _ in names]
    raw = bytearray(table_bytes(*zip(names, values, strict=True)))
    for _ in range(data.draw(st.integers(0, 3))):  # damage it, or not
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    end = data.draw(st.integers(0, len(raw)))
    max_depth = data.draw(st.integers(1, 4))
    try:
        expected: Any = decode_table(raw, 0, end, dialect, max_depth)[1]
    except DecodeError as exc:
        expected = (str(exc), exc.reply_code, exc.offset)
    try:
        got: Any = check_table(raw, 0, end, dialect, max_depth, 0)
    except DecodeError as exc:
        got = (str(exc), exc.reply_code, exc.offset)
    assert got == expected


def test_nesting_limit_is_exactly_the_setting() -> None:
    assert decode_all(_nested(DEFAULT_MAX_DEPTH, b"F"))
    with pytest.raises(DecodeError, match="deeper than 64"):
        decode_all(_nested(DEFAULT_MAX_DEPTH + 1, b"F"))
    assert decode_all(_nested(10, b"F"), max_depth=10)
    with pytest.raises(DecodeError, match="deeper than 9"):
        decode_all(_nested(10, b"F"), max_depth=9)


def _python_nested(depth: int) -> dict[str, Any]:
    top: dict[str, Any] = {}
    inner = top
    for _ in range(depth - 1):
        inner["k"] = inner = {}
    return top


def test_encoding_past_64_levels_is_an_encode_error() -> None:
    assert encode_table(_python_nested(DEFAULT_MAX_DEPTH)) == _nested(DEFAULT_MAX_DEPTH, b"F")
    with pytest.raises(EncodeError, match="nest deeper than 64"):
        encode_table(_python_nested(DEFAULT_MAX_DEPTH + 1))
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(EncodeError):
        encode_table(loop)
    with pytest.raises(EncodeError):  # a limit beyond the interpreter's stack
        encode_table(_python_nested(5000), max_depth=10**6)


@pytest.mark.parametrize(
    ("dialect", "letter"),
    [(RABBITMQ, b"Z"), (RABBITMQ, b"N"), (STRICT, b"x"), (STRICT, b"\x00")],
)
def test_unknown_type_letter_is_a_decode_error_with_its_offset(
    dialect: Dialect, letter: bytes
) -> None:
    data = b"junk" + table_bytes((b"ok", b"V"), (b"key", letter + b"\x00\x00"))
    with pytest.raises(DecodeError) as info:
        decode_table(data, 4, len(data), dialect)
    assert info.value.offset == 4 + 4 + 4 + 4  # junk, length, "ok" entry, "key" name
    assert info.value.reply_code == 502
    array = b"\x00" + longstr(b"V" + letter + b"\x00")
    with pytest.raises(DecodeError) as info:
        decode_array(array, 1, len(array), dialect)
    assert info.value.offset == 1 + 4 + 1


@given(amqp_st.field_tables(max_depth=2), st.data())
def test_truncation_anywhere_is_a_decode_error(table: FieldTable, data: st.DataObject) -> None:
    raw = encode_table(table)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode_table(raw[:cut], 0, cut)
    # The frame bound counts, not the buffer: the same cut with the bytes still there.
    with pytest.raises(DecodeError):
        decode_table(raw, 0, cut)
    # With the table's length fixed up, the inner checks find the cut, unless it falls
    # between two entries: then what decodes is exactly the entries before it.
    if cut >= 4:
        try:
            partial = decode_all(u32(cut - 4) + raw[4:cut])
        except DecodeError:
            return
        assert partial == dict(list(table.items())[: len(partial)])


def test_every_prefix_of_the_golden_table_is_a_decode_error() -> None:
    for cut in range(len(GOLDEN)):
        with pytest.raises(DecodeError):
            decode_table(GOLDEN, 0, cut)


@given(st.binary(max_size=64), st.sampled_from(DIALECTS))
def test_random_bytes_raise_only_decode_errors(data: bytes, dialect: Dialect) -> None:
    for decode in (decode_table, decode_array):
        with contextlib.suppress(DecodeError):
            decode(data, 0, len(data), dialect)


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x00\x00\x00" + b"\x00" * 16,  # the table itself
        table_bytes((b"k", b"S\x80\x00\x00\x00abc")),  # a long string value
        table_bytes((b"k", b"x\xff\xff\xff\xffabc")),  # a byte array value
        table_bytes((b"k", b"A\x80\x00\x00\x00")),  # a nested array
        table_bytes((b"k", b"F\x80\x00\x00\x00")),  # a nested table
    ],
    ids=["table", "S", "x", "A", "F"],
)
def test_a_length_claiming_2_gib_fails_fast_without_allocating(data: bytes) -> None:
    """Refused from the claim alone: a few lines of Python run (counted by a trace
    function, not a clock), and no buffer of the claimed size is made."""
    lines = 0

    def count(frame: FrameType, event: str, arg: object) -> Callable[..., object]:
        nonlocal lines
        lines += event == "line"
        return count

    tracemalloc.start()
    sys.settrace(count)
    try:
        with pytest.raises(DecodeError) as info:
            decode_table(data, 0, len(data))
    finally:
        sys.settrace(None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert lines < 1000, lines  # about 100 today; a loop over the claim would be 10**9
    assert peak < 64 * 1024
    assert info.value.reply_code == 501


def test_field_value_past_the_table_end_is_a_decode_error() -> None:
    # The entry's bytes exist in the buffer, but the table's own length ends earlier.
    data = u32(4) + b"\x01kI\x00\x00\x00\x01"
    with pytest.raises(DecodeError, match="past the end of its table"):
        decode_table(data, 0, len(data))


# ---------------------------------------------------------------------------------------
# RabbitMQ's table_codec golden vector (protocol-facts §6): every letter RabbitMQ writes,
# S I D T F b l s t x B u i V A, built here by hand.

GOLDEN = table_bytes(
    (b"longstr", b"S" + longstr(b"Here is a long string")),
    (b"signedint", b"I" + struct.pack(">i", 12345)),
    (b"decimal", b"D" + struct.pack(">Bi", 3, 123456)),
    (b"timestamp", b"T" + struct.pack(">Q", 109876543209876)),
    (
        b"table",
        b"F"
        + table_bytes(
            (b"one", b"I" + struct.pack(">i", 54321)),
            (b"two", b"S" + longstr(b"A long string")),
        ),
    ),
    (b"byte", b"b" + struct.pack(">b", -128)),
    (b"long", b"l" + struct.pack(">q", 1234567890)),
    (b"short", b"s" + struct.pack(">h", 655)),
    (b"bool", b"t\x01"),
    (b"binary", b"x" + longstr(b"a binary string")),
    (b"unsignedbyte", b"B" + struct.pack(">B", 250)),
    (b"unsignedshort", b"u" + struct.pack(">H", 65530)),
    (b"unsignedint", b"i" + struct.pack(">I", 4294967290)),
    (b"void", b"V"),
    (
        b"array",
        b"A"
        + longstr(
            b"I" + struct.pack(">i", 54321) + b"S" + longstr(b"A long string"),
        ),
    ),
)


def _golden_table() -> FieldTable:
    table = FieldTable()
    table["longstr"] = "Here is a long string"
    table["signedint"] = 12345
    table["decimal"] = Decimal("123.456")
    table.set_typed("timestamp", 109876543209876, "T")  # past year 9999: stays an int
    table["table"] = {"one": 54321, "two": "A long string"}
    table.set_typed("byte", -128, "b")
    table.set_typed("long", 1234567890, "l")  # fits an I, so the letter must be recorded
    table.set_typed("short", 655, "s")
    table["bool"] = True
    table["binary"] = b"a binary string"
    table.set_typed("unsignedbyte", 250, "B")
    table.set_typed("unsignedshort", 65530, "u")
    table.set_typed("unsignedint", 4294967290, "i")
    table["void"] = None
    table["array"] = [54321, "A long string"]
    return table


def test_rabbitmq_golden_table() -> None:
    assert encode_table(_golden_table()) == GOLDEN
    decoded = decode_all(GOLDEN)
    assert decoded == _golden_table()
    assert list(decoded) == list(_golden_table())  # order kept
    assert decoded.types == _golden_table().types
    assert encode_table(decoded) == GOLDEN


@pytest.mark.parametrize(
    "value", ["1E+10000000", "1E+10", "12345678901", "-1E+100000000000", "1." + "0" * 300]
)
def test_decimals_too_large_fail_at_once(value: str) -> None:
    with pytest.raises(EncodeError):
        encode_table({"d": Decimal(value)})


@pytest.mark.parametrize(
    ("value", "scale", "digits"), [("0E+100000000", 0, 0), ("2E+9", 0, 2 * 10**9)]
)
def test_decimals_with_a_positive_exponent(value: str, scale: int, digits: int) -> None:
    assert encode_table({"d": Decimal(value)})[-5:] == struct.pack(">Bi", scale, digits)
