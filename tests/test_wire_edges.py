"""Field tables at their edges: repeated keys, remembered letters that no longer fit,
subclasses of the plain types, truncated values of every fixed size, the strict dialect's
fallbacks and the long-string writer's errors."""

from __future__ import annotations

import collections
import datetime
import struct
from decimal import Decimal
from typing import Any

import pytest

from amqpcodec import RABBITMQ, STRICT, DecodeError, EncodeError, FieldArray, FieldTable
from amqpcodec._wire import decode_array, decode_table, encode_array, encode_longstr, encode_table


def entry(key: bytes, letter: bytes, value: bytes) -> bytes:
    return bytes([len(key)]) + key + letter + value


def table(*entries: bytes) -> bytes:
    body = b"".join(entries)
    return struct.pack(">I", len(body)) + body


def roundtrip(data: bytes, dialect: Any = RABBITMQ) -> FieldTable:
    decoded, end = decode_table(data, 0, len(data), dialect)
    assert end == len(data)
    return decoded


def test_reprs_show_remembered_letters() -> None:
    plain = FieldTable({"a": 1})
    assert repr(plain) == "FieldTable({'a': 1})"
    plain.set_typed("b", 2, "B")
    assert repr(plain) == "FieldTable({'a': 1, 'b': 2}, types={'b': 'B'})"
    array = FieldArray([1, 2])
    assert repr(array) == "FieldArray([1, 2])"
    array.types[1] = "u"
    assert repr(array) == "FieldArray([1, 2], types={1: 'u'})"
    assert repr(RABBITMQ) == "<Dialect rabbitmq>"
    assert set(STRICT.letters) == set("tbBUuIiLlfdDsSATFV")
    assert set(RABBITMQ.letters) == set("tbBsUuIilLfdDSxATFV")


@pytest.mark.parametrize(
    ("first", "second", "expected", "letters"),
    [
        # the last value wins, and so does its letter (or its lack of one)
        (entry(b"k", b"B", b"\x05"), entry(b"k", b"I", struct.pack(">i", 7)), 7, {}),
        (entry(b"k", b"B", b"\x05"), entry(b"k", b"S", struct.pack(">I", 1) + b"x"), "x", {}),
        (entry(b"k", b"B", b"\x05"), entry(b"k", b"V", b""), None, {}),
        (entry(b"k", b"I", struct.pack(">i", 7)), entry(b"k", b"B", b"\x05"), 5, {"k": "B"}),
    ],
)
def test_a_repeated_key_keeps_the_last_value_and_letter(
    first: bytes, second: bytes, expected: Any, letters: dict[str, str]
) -> None:
    decoded = roundtrip(table(first, second))
    assert decoded == {"k": expected}
    assert decoded.types == letters


@pytest.mark.parametrize(
    ("letter", "size"),
    [
        (b"b", 1),
        (b"B", 1),
        (b"s", 2),
        (b"u", 2),
        (b"I", 4),
        (b"i", 4),
        (b"l", 8),
        (b"L", 8),
        (b"f", 4),
        (b"d", 8),
        (b"D", 5),
        (b"T", 8),
        (b"t", 1),
        (b"S", 4),
        (b"x", 4),
    ],
)
def test_every_fixed_part_cut_short_is_a_decode_error(letter: bytes, size: int) -> None:
    for cut in range(size):
        data = table(entry(b"k", letter, b"\x00" * cut))
        with pytest.raises(DecodeError) as info:
            decode_table(data, 0, len(data))
        assert info.value.reply_code == 501
        assert 0 <= info.value.offset <= len(data)


def test_a_string_longer_than_its_table_is_a_decode_error() -> None:
    for letter in (b"S", b"x"):
        data = table(entry(b"k", letter, struct.pack(">I", 100) + b"abc"))
        with pytest.raises(DecodeError):
            decode_table(data, 0, len(data))


def test_an_array_with_an_unknown_letter() -> None:
    data = struct.pack(">I", 2) + b"Z\x00"
    with pytest.raises(DecodeError) as info:
        decode_array(data, 0, len(data))
    assert info.value.reply_code == 502 and info.value.offset == 4


class MyDict(collections.UserDict[str, Any]):
    pass


class MyStr(str):
    pass


class MyInt(int):
    pass


UTC = datetime.timezone.utc


@pytest.mark.parametrize(
    ("value", "letter", "decoded"),
    [
        (MyStr("x"), b"S", "x"),
        (MyInt(5), b"I", 5),
        (MyInt(2**40), b"l", 2**40),
        (MyDict({"a": 1}), b"F", {"a": 1}),
        (collections.OrderedDict(a=1), b"F", {"a": 1}),
        (bytearray(b"ab"), b"x", b"ab"),
        (memoryview(b"ab"), b"x", b"ab"),
        ((1, 2), b"A", [1, 2]),
        (datetime.datetime(2020, 1, 1), b"T", datetime.datetime(2020, 1, 1, tzinfo=UTC)),
    ],
)
def test_subclasses_and_other_plain_types_follow_the_mapping(
    value: Any, letter: bytes, decoded: Any
) -> None:
    data = encode_table({"k": value})
    assert data[6:7] == letter
    assert roundtrip(data) == {"k": decoded}  # naive datetimes are taken as UTC


@pytest.mark.parametrize(
    ("letter", "value", "written"),
    [
        ("B", 300, b"I"),  # no longer fits an octet
        ("B", True, b"t"),  # a bool is not an int here
        ("f", "text", b"S"),
        ("T", "text", b"S"),
        ("D", 1.5, b"d"),
        ("F", [1], b"A"),
        ("A", {"a": 1}, b"F"),
        ("V", 0, b"I"),
        ("t", 1, b"I"),
        ("Q", 1, b"I"),  # a letter the dialect does not know
    ],
)
def test_a_remembered_letter_that_no_longer_fits_falls_back(
    letter: str, value: Any, written: bytes
) -> None:
    typed = FieldTable()
    typed.set_typed("k", value, letter)
    assert encode_table(typed)[6:7] == written


@pytest.mark.parametrize(
    ("letter", "value"),
    [
        ("T", 1700000000),
        ("T", datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)),
        ("x", "text"),
        ("S", b"\xff\xfe"),
        ("D", Decimal("-1.5")),
        ("F", {"a": 1}),
        ("A", [1]),
        ("V", None),
        ("d", 1.5),
        ("t", False),
    ],
)
def test_a_remembered_letter_that_still_fits_is_kept(letter: str, value: Any) -> None:
    typed = FieldTable()
    typed.set_typed("k", value, letter)
    data = encode_table(typed)
    assert data[6:7] == letter.encode()
    assert encode_table(roundtrip(data)) == data


def test_the_strict_dialect_writes_bytes_as_long_strings_and_64_bits_as_L() -> None:
    data = encode_table({"b": b"\xff", "n": 2**40}, dialect=STRICT)
    assert b"bS" in data and b"nL" in data
    decoded = roundtrip(data, STRICT)
    assert decoded == {"b": b"\xff", "n": 2**40}
    assert encode_table(decoded, dialect=STRICT) == data
    short = FieldTable()
    short.set_typed("s", b"abc", "s")  # bytes under a short-string letter
    assert roundtrip(encode_table(short, dialect=STRICT), STRICT) == {"s": "abc"}
    long = FieldTable()
    long.set_typed("s", "x" * 300, "s")
    with pytest.raises(EncodeError) as info:
        encode_table(long, dialect=STRICT)
    assert info.value.field == "table['s']"


def test_arrays_remember_letters_and_name_the_index_on_errors() -> None:
    array = FieldArray([1, "x"])
    array.types[0] = "B"
    data = encode_array(array)
    assert data[4:6] == b"B\x01"
    with pytest.raises(EncodeError) as info:
        encode_array([1, [2, object()]])
    assert info.value.field == "array[1][1]"


def test_long_string_writer_errors_name_the_field() -> None:
    assert encode_longstr("é") == b"\x00\x00\x00\x02\xc3\xa9"
    assert encode_longstr(memoryview(b"ab")) == b"\x00\x00\x00\x02ab"
    with pytest.raises(EncodeError) as info:
        encode_longstr("\ud800", "response")
    assert info.value.field == "response"
    with pytest.raises(EncodeError):
        encode_longstr(5, "response")  # type: ignore[arg-type]


def test_keys_that_are_not_text() -> None:
    for key in (1, b"k", "\ud800"):
        with pytest.raises(EncodeError):
            encode_table({key: 1})  # type: ignore[dict-item]
    assert roundtrip(encode_table({"\udcff": 1})) == {"\udcff": 1}  # escaped bytes survive


def test_decimals_ignore_the_threads_context() -> None:
    """A lowered precision (a user's decimal.getcontext()) rounds nothing on the wire."""
    import decimal

    data = table(entry(b"d", b"D", struct.pack(">Bi", 2, 1234567891)))
    with decimal.localcontext() as context:
        context.prec = 3
        assert decode_table(data, 0, len(data))[0]["d"] == Decimal("12345678.91")
        assert encode_table({"d": Decimal("12345678.91")}) == data
    for value, scale, digits in [
        (Decimal("-0.5"), 1, -5),
        (Decimal("-0"), 0, 0),
        (Decimal("7E+3"), 0, 7000),
        (Decimal("0E+20"), 0, 0),
        (Decimal("2147483647"), 0, 2**31 - 1),
        (Decimal("-2147483.648"), 3, -(2**31)),
    ]:
        assert encode_table({"d": value}) == table(
            entry(b"d", b"D", struct.pack(">Bi", scale, digits))
        )
    with pytest.raises(EncodeError, match="does not fit"):
        encode_table({"d": Decimal("2147483648")})


@pytest.mark.parametrize(
    "seconds",
    [0, 1, 1704164645, 32503679999, 32503680000, 253402300799],
)
def test_timestamps_decode_to_the_same_datetime_on_either_side_of_the_year_3000(
    seconds: int,
) -> None:
    data = table(entry(b"t", b"T", struct.pack(">Q", seconds)))
    value = decode_table(data, 0, len(data))[0]["t"]
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    assert value == epoch + datetime.timedelta(seconds=seconds)
    assert value.tzinfo is datetime.timezone.utc
    assert encode_table({"t": value}) == data


@pytest.mark.parametrize(
    "data",
    [
        table(entry(b"k", b"S", struct.pack(">I", 2) + b"ok"), entry(b"n", b"I", b"\0\0\0\7")),
        table(entry(b"a", b"A", struct.pack(">I", 12) + b"I\0\0\0\1" + b"S\0\0\0\2\xff\xfe")),
        table(entry(b"k", b"S", struct.pack(">I", 9) + b"x")),  # runs past the table
        table(entry(b"k", b"Z", b"")),  # unknown letter
        table(entry(b"a", b"A", struct.pack(">I", 5) + b"I\0\0")),  # truncated array entry
    ],
)
def test_every_buffer_type_decodes_alike_at_any_offset(data: bytes) -> None:
    """bytes and bytearray are read in place, a memoryview through a copy of its table:
    the same values, letters and end offset, or the same error at the same offset."""

    def outcome(buffer: Any, at: int) -> Any:
        try:
            decoded, end = decode_table(buffer, at, len(buffer))
        except DecodeError as exc:
            return ("error", str(exc), exc.offset - at, exc.reply_code)
        return (decoded, repr(decoded), end - at, encode_table(decoded))

    expected = outcome(data, 0)
    padded = b"\x01\x02\x03" + data
    for buffer in (bytearray(padded), memoryview(padded), memoryview(bytearray(padded))):
        assert outcome(buffer, 3) == expected


def test_an_array_string_that_is_not_utf8_stays_bytes_with_its_letter() -> None:
    raw = struct.pack(">I", 12) + b"I\0\0\0\1" + b"S\0\0\0\2\xff\xfe"
    array, end = decode_array(raw, 0, len(raw))
    assert array == [1, b"\xff\xfe"] and end == len(raw)
    assert encode_array(array) == raw
    assert decode_array(memoryview(b"\0" + raw), 1, 1 + len(raw)) == (array, 1 + len(raw))
    with pytest.raises(DecodeError) as info:
        decode_array(memoryview(b"\0" + raw[:-1]), 1, len(raw))
    assert info.value.offset == 1
