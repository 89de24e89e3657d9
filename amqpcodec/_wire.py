"""Wire primitives: strings, field tables, field arrays and their dialects.

How this works: every reader takes ``(buf, off, end)`` and returns ``(value, new_off)``;
``end`` is the bound of the enclosing frame, so a length field can never make a reader
look (or allocate) past the frame it belongs to. Writers return ``bytes`` or append to a
``bytearray``. The generated code in ``spec.py`` inlines the fixed-size work with
precompiled ``struct.Struct`` objects and calls in here only for tables and for the
error paths.

Field tables are lossless: a decoded :class:`FieldTable` remembers the type letter of
every value whose letter is not the one the default mapping would choose again, so
encoding a decoded table reproduces its bytes exactly.
"""

from __future__ import annotations

import datetime
import enum
import struct
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from ._errors import DecodeError, EncodeError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "RABBITMQ",
    "STRICT",
    "Dialect",
    "FieldArray",
    "FieldTable",
    "decode_array",
    "decode_longstr",
    "decode_shortstr",
    "decode_table",
    "encode_array",
    "encode_longstr",
    "encode_shortstr",
    "encode_table",
    "encode_timestamp",
]

DEFAULT_MAX_DEPTH: Final = 64
"""How deeply tables and arrays may nest before decoding or encoding refuses."""

_FRAME_ERROR: Final = 501
_SYNTAX_ERROR: Final = 502

_U8 = struct.Struct(">B")
_I8 = struct.Struct(">b")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_DECIMAL = struct.Struct(">Bi")

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)
_ONE_SECOND = datetime.timedelta(seconds=1)
# The largest timestamp that still makes a datetime; larger ones decode as int.
_MAX_DATETIME_SECONDS: Final = 253402300799  # 9999-12-31T23:59:59Z


class _Kind(enum.IntEnum):
    """What a type letter means, independent of which letter a dialect uses for it."""

    BOOL = 1
    INT8 = 2
    UINT8 = 3
    INT16 = 4
    UINT16 = 5
    INT32 = 6
    UINT32 = 7
    INT64 = 8
    UINT64 = 9
    FLOAT = 10
    DOUBLE = 11
    DECIMAL = 12
    SHORTSTR = 13
    LONGSTR = 14
    BYTES = 15
    ARRAY = 16
    TIMESTAMP = 17
    TABLE = 18
    VOID = 19


_INT_RANGES: Final = {
    _Kind.INT8: (-(2**7), 2**7 - 1),
    _Kind.UINT8: (0, 2**8 - 1),
    _Kind.INT16: (-(2**15), 2**15 - 1),
    _Kind.UINT16: (0, 2**16 - 1),
    _Kind.INT32: (-(2**31), 2**31 - 1),
    _Kind.UINT32: (0, 2**32 - 1),
    _Kind.INT64: (-(2**63), 2**63 - 1),
    _Kind.UINT64: (0, 2**64 - 1),
}
_INT_STRUCTS: Final = {
    _Kind.INT8: _I8,
    _Kind.UINT8: _U8,
    _Kind.INT16: _I16,
    _Kind.UINT16: _U16,
    _Kind.INT32: _I32,
    _Kind.UINT32: _U32,
    _Kind.INT64: _I64,
    _Kind.UINT64: _U64,
}


class Dialect:
    """A set of field-value type letters.

    :data:`RABBITMQ` (the default) is what RabbitMQ, Qpid and nearly every client use;
    :data:`STRICT` is the AMQP 0-9-1 grammar read literally (``s`` is a short string,
    ``U`` a signed 16-bit, ``l`` an unsigned 64-bit, no ``x``).
    """

    __slots__ = ("_kinds", "_letters", "int64_letter", "name")

    def __init__(self, name: str, letters: Mapping[str, _Kind], int64_letter: str) -> None:
        self.name = name
        self._kinds: dict[int, _Kind] = {ord(k): v for k, v in letters.items()}
        # Kind -> letter to write; for RabbitMQ both l and L read as INT64, l is written.
        self._letters: dict[_Kind, int] = {}
        for letter, kind in letters.items():
            self._letters.setdefault(kind, ord(letter))
        self._letters[_Kind.INT64] = ord(int64_letter)
        self.int64_letter = int64_letter

    def __repr__(self) -> str:
        return f"<Dialect {self.name}>"

    @property
    def letters(self) -> str:
        """Every type letter this dialect reads."""
        return "".join(sorted(chr(c) for c in self._kinds))


RABBITMQ: Final = Dialect(
    "rabbitmq",
    {
        "t": _Kind.BOOL,
        "b": _Kind.INT8,
        "B": _Kind.UINT8,
        "s": _Kind.INT16,
        "u": _Kind.UINT16,
        "I": _Kind.INT32,
        "i": _Kind.UINT32,
        "l": _Kind.INT64,
        "L": _Kind.INT64,  # RabbitMQ reads L as signed 64-bit too
        "f": _Kind.FLOAT,
        "d": _Kind.DOUBLE,
        "D": _Kind.DECIMAL,
        "S": _Kind.LONGSTR,
        "x": _Kind.BYTES,
        "A": _Kind.ARRAY,
        "T": _Kind.TIMESTAMP,
        "F": _Kind.TABLE,
        "V": _Kind.VOID,
    },
    int64_letter="l",
)
STRICT: Final = Dialect(
    "strict-0-9-1",
    {
        "t": _Kind.BOOL,
        "b": _Kind.INT8,
        "B": _Kind.UINT8,
        "U": _Kind.INT16,
        "u": _Kind.UINT16,
        "I": _Kind.INT32,
        "i": _Kind.UINT32,
        "L": _Kind.INT64,
        "l": _Kind.UINT64,
        "f": _Kind.FLOAT,
        "d": _Kind.DOUBLE,
        "D": _Kind.DECIMAL,
        "s": _Kind.SHORTSTR,
        "S": _Kind.LONGSTR,
        "A": _Kind.ARRAY,
        "T": _Kind.TIMESTAMP,
        "F": _Kind.TABLE,
        "V": _Kind.VOID,
    },
    int64_letter="L",
)


class FieldTable(dict[str, Any]):
    """A decoded field table: a ``dict`` that also remembers non-default type letters.

    ``types`` maps a key to the letter its value arrived with, for the values whose
    letter the default mapping would not choose again (``B`` for a small int, ``S`` for
    bytes, ...). Encoding uses a remembered letter while the value still fits it.
    Use :meth:`set_typed` to choose a letter yourself.
    """

    __slots__ = ("types",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types: dict[str, str] = {}

    def set_typed(self, key: str, value: Any, letter: str) -> None:
        """Set ``key`` to ``value``, to be encoded with type letter ``letter``."""
        self[key] = value
        self.types[key] = letter

    def __repr__(self) -> str:
        if not self.types:
            return f"FieldTable({dict.__repr__(self)})"
        return f"FieldTable({dict.__repr__(self)}, types={self.types!r})"


class FieldArray(list[Any]):
    """A decoded field array: a ``list`` that remembers non-default type letters by index."""

    __slots__ = ("types",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.types: dict[int, str] = {}

    def __repr__(self) -> str:
        if not self.types:
            return f"FieldArray({list.__repr__(self)})"
        return f"FieldArray({list.__repr__(self)}, types={self.types!r})"


# ---------------------------------------------------------------------------------------
# Readers


def decode_shortstr(buf: Any, off: int, end: int) -> tuple[str, int]:
    """Read a short string. Invalid UTF-8 decodes with ``surrogateescape`` (lossless)."""
    if off >= end:
        raise DecodeError("short string runs past the end of its frame", offset=off)
    n = buf[off]
    off += 1
    if off + n > end:
        raise DecodeError("short string runs past the end of its frame", offset=off - 1)
    return str(buf[off : off + n], "utf-8", "surrogateescape"), off + n


def decode_longstr(buf: Any, off: int, end: int) -> tuple[bytes, int]:
    """Read a long string as bytes."""
    if off + 4 > end:
        raise DecodeError("long string length runs past the end of its frame", offset=off)
    (n,) = _U32.unpack_from(buf, off)
    off += 4
    if off + n > end:
        raise DecodeError(
            f"long string of {n} bytes runs past the end of its frame", offset=off - 4
        )
    return bytes(buf[off : off + n]), off + n


def decode_table(
    buf: Any,
    off: int,
    end: int,
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
    _depth: int = 0,
) -> tuple[FieldTable, int]:
    """Read a field table (a u32 byte length, then name/type/value triples)."""
    if _depth >= max_depth:
        raise DecodeError(f"field tables nest deeper than {max_depth}", _SYNTAX_ERROR, off)
    if off + 4 > end:
        raise DecodeError("field table length runs past the end of its frame", offset=off)
    (size,) = _U32.unpack_from(buf, off)
    off += 4
    stop = off + size
    if stop > end:
        raise DecodeError(
            f"field table of {size} bytes runs past the end of its frame", offset=off - 4
        )
    table = FieldTable()
    types = table.types
    kinds = dialect._kinds
    while off < stop:
        n = buf[off]
        off += 1
        key = str(buf[off : off + n], "utf-8", "surrogateescape")
        off += n
        if off >= stop:
            raise DecodeError("field table entry runs past the end of the table", offset=off)
        letter = buf[off]
        kind = kinds.get(letter)
        if kind is None:
            raise DecodeError(
                f"unknown field type {chr(letter)!r} for key {key!r}", _SYNTAX_ERROR, off
            )
        value, off, default = _decode_value(buf, off + 1, stop, kind, dialect, max_depth, _depth)
        table[key] = value
        if not default:
            types[key] = chr(letter)
        elif key in types:  # a duplicate key: the last one wins, letters too
            del types[key]
    if off != stop:
        raise DecodeError("field table entry runs past the end of the table", offset=stop)
    return table, off


def decode_array(
    buf: Any,
    off: int,
    end: int,
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
    _depth: int = 0,
) -> tuple[FieldArray, int]:
    """Read a field array (a u32 byte length, then type/value pairs)."""
    if _depth >= max_depth:
        raise DecodeError(f"field arrays nest deeper than {max_depth}", _SYNTAX_ERROR, off)
    if off + 4 > end:
        raise DecodeError("field array length runs past the end of its frame", offset=off)
    (size,) = _U32.unpack_from(buf, off)
    off += 4
    stop = off + size
    if stop > end:
        raise DecodeError(
            f"field array of {size} bytes runs past the end of its frame", offset=off - 4
        )
    array = FieldArray()
    kinds = dialect._kinds
    while off < stop:
        letter = buf[off]
        kind = kinds.get(letter)
        if kind is None:
            raise DecodeError(f"unknown field type {chr(letter)!r} in array", _SYNTAX_ERROR, off)
        value, off, default = _decode_value(buf, off + 1, stop, kind, dialect, max_depth, _depth)
        if not default:
            array.types[len(array)] = chr(letter)
        array.append(value)
    if off != stop:
        raise DecodeError("field array entry runs past the end of the array", offset=stop)
    return array, off


def _decode_value(
    buf: Any, off: int, stop: int, kind: _Kind, dialect: Dialect, max_depth: int, depth: int
) -> tuple[Any, int, bool]:
    """Read one field value of ``kind``; also say whether its letter is the default one."""
    if kind is _Kind.LONGSTR:
        raw, off = decode_longstr(buf, off, stop)
        try:
            return raw.decode("utf-8"), off, True
        except UnicodeDecodeError:
            return raw, off, False
    if kind is _Kind.INT32:
        if off + 4 > stop:
            raise DecodeError("field value runs past the end of its table", offset=off)
        return _I32.unpack_from(buf, off)[0], off + 4, True
    if kind is _Kind.BOOL:
        if off >= stop:
            raise DecodeError("field value runs past the end of its table", offset=off)
        value = buf[off]
        # Only 0 and 1 re-encode to the same octet.
        return value != 0, off + 1, value <= 1
    if kind is _Kind.TABLE:
        return (*decode_table(buf, off, stop, dialect, max_depth, depth + 1), True)
    if kind is _Kind.ARRAY:
        return (*decode_array(buf, off, stop, dialect, max_depth, depth + 1), True)
    if kind is _Kind.VOID:
        return None, off, True
    if kind is _Kind.DOUBLE:
        if off + 8 > stop:
            raise DecodeError("field value runs past the end of its table", offset=off)
        return _F64.unpack_from(buf, off)[0], off + 8, True
    if kind is _Kind.TIMESTAMP:
        if off + 8 > stop:
            raise DecodeError("field value runs past the end of its table", offset=off)
        (seconds,) = _U64.unpack_from(buf, off)
        if seconds > _MAX_DATETIME_SECONDS:
            return seconds, off + 8, False
        return _EPOCH + datetime.timedelta(seconds=seconds), off + 8, True
    if kind is _Kind.DECIMAL:
        if off + 5 > stop:
            raise DecodeError("field value runs past the end of its table", offset=off)
        scale, digits = _DECIMAL.unpack_from(buf, off)
        return Decimal(digits).scaleb(-scale), off + 5, True
    if kind is _Kind.BYTES:
        raw, off = decode_longstr(buf, off, stop)
        return raw, off, True
    if kind is _Kind.SHORTSTR:
        text, off = decode_shortstr(buf, off, stop)
        return text, off, False
    if kind is _Kind.FLOAT:
        if off + 4 > stop:
            raise DecodeError("field value runs past the end of its table", offset=off)
        return _F32.unpack_from(buf, off)[0], off + 4, False
    # The remaining kinds are integers.
    packer = _INT_STRUCTS[kind]
    if off + packer.size > stop:
        raise DecodeError("field value runs past the end of its table", offset=off)
    value = packer.unpack_from(buf, off)[0]
    default = kind is _Kind.INT64 and dialect._letters[_Kind.INT64] == buf[off - 1]
    if default and -(2**31) <= value < 2**31:
        default = False  # the default mapping would write it as I
    return value, off + packer.size, default


# ---------------------------------------------------------------------------------------
# Writers


def encode_shortstr(value: str, field: str = "shortstr") -> bytes:
    """A short string with its length octet. Over 255 UTF-8 bytes is an EncodeError."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except AttributeError:
        raise EncodeError(f"{field}: expected str, got {value!r}", field, value) from None
    except UnicodeEncodeError:
        raise EncodeError(f"{field}: {value!r} is not encodable as UTF-8", field, value) from None
    if len(raw) > 255:
        raise EncodeError(
            f"{field}: short string of {len(raw)} UTF-8 bytes is longer than 255", field, value
        )
    return _U8.pack(len(raw)) + raw


def encode_longstr(value: bytes | bytearray | memoryview | str, field: str = "longstr") -> bytes:
    """A long string with its 32-bit length. ``str`` is encoded as UTF-8."""
    if isinstance(value, str):
        try:
            value = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise EncodeError(
                f"{field}: {value!r} is not encodable as UTF-8", field, value
            ) from None
    elif not isinstance(value, (bytes, bytearray, memoryview)):
        raise EncodeError(f"{field}: expected bytes, got {value!r}", field, value)
    n = len(value) if not isinstance(value, memoryview) else value.nbytes
    if n > 0xFFFFFFFF:
        raise EncodeError(f"{field}: long string of {n} bytes is too long", field, value)
    return _U32.pack(n) + bytes(value)


def encode_timestamp(value: int | datetime.datetime, field: str = "timestamp") -> int:
    """Seconds since the epoch for a timestamp given as int or datetime (naive = UTC)."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            seconds = (value - _EPOCH_NAIVE) // _ONE_SECOND
        else:
            seconds = (value - _EPOCH) // _ONE_SECOND
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise EncodeError(f"{field}: expected int or datetime, got {value!r}", field, value)
    if not 0 <= seconds <= 0xFFFFFFFFFFFFFFFF:
        raise EncodeError(f"{field}: timestamp {value!r} is out of range", field, value)
    return seconds


def encode_table(
    table: Mapping[str, Any] | None,
    field: str = "table",
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """A field table with its 32-bit length."""
    out = bytearray()
    _write_table(out, table, field, dialect, max_depth, 0)
    return bytes(out)


def encode_array(
    array: Sequence[Any],
    field: str = "array",
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """A field array with its 32-bit length."""
    out = bytearray()
    _write_array(out, array, field, dialect, max_depth, 0)
    return bytes(out)


def _write_table(
    out: bytearray,
    table: Mapping[str, Any] | None,
    field: str,
    dialect: Dialect,
    max_depth: int,
    depth: int,
) -> None:
    if depth >= max_depth:
        raise EncodeError(f"{field}: tables nest deeper than {max_depth}", field, table)
    start = len(out)
    out += b"\0\0\0\0"
    if table:
        if not isinstance(table, Mapping):
            raise EncodeError(f"{field}: expected a mapping, got {table!r}", field, table)
        types: Mapping[str, str] = getattr(table, "types", None) or {}
        for key, value in table.items():
            name = f"{field}[{key!r}]"
            if not isinstance(key, str):
                raise EncodeError(f"{name}: table keys must be str", name, key)
            out += encode_shortstr(key, name)
            _write_value(out, value, types.get(key), name, dialect, max_depth, depth)
    _U32.pack_into(out, start, len(out) - start - 4)


def _write_array(
    out: bytearray,
    array: Sequence[Any],
    field: str,
    dialect: Dialect,
    max_depth: int,
    depth: int,
) -> None:
    if depth >= max_depth:
        raise EncodeError(f"{field}: arrays nest deeper than {max_depth}", field, array)
    start = len(out)
    out += b"\0\0\0\0"
    types: Mapping[int, str] = getattr(array, "types", None) or {}
    for i, value in enumerate(array):
        _write_value(out, value, types.get(i), f"{field}[{i}]", dialect, max_depth, depth)
    _U32.pack_into(out, start, len(out) - start - 4)


def _default_kind(value: Any, field: str, dialect: Dialect) -> _Kind:
    """The documented mapping from a plain Python value to a field type."""
    if isinstance(value, str):
        return _Kind.LONGSTR
    if isinstance(value, bool):
        return _Kind.BOOL
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return _Kind.INT32
        if -(2**63) <= value < 2**63:
            return _Kind.INT64
        raise EncodeError(f"{field}: integer {value} does not fit in 64 bits", field, value)
    if value is None:
        return _Kind.VOID
    if isinstance(value, Mapping):
        return _Kind.TABLE
    if isinstance(value, (list, tuple)):
        return _Kind.ARRAY
    if isinstance(value, float):
        return _Kind.DOUBLE
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _Kind.BYTES if _Kind.BYTES in dialect._letters else _Kind.LONGSTR
    if isinstance(value, Decimal):
        return _Kind.DECIMAL
    if isinstance(value, datetime.datetime):
        return _Kind.TIMESTAMP
    raise EncodeError(
        f"{field}: {type(value).__name__} {value!r} has no field-table type", field, value
    )


def _fits(kind: _Kind, value: Any) -> bool:
    """Whether ``value`` can still be written as ``kind`` (a remembered letter)."""
    if kind in _INT_RANGES:
        if type(value) is not int:
            return False
        low, high = _INT_RANGES[kind]
        return low <= value <= high
    if kind is _Kind.BOOL:
        return isinstance(value, bool)
    if kind in (_Kind.FLOAT, _Kind.DOUBLE):
        return isinstance(value, float)
    if kind in (_Kind.LONGSTR, _Kind.SHORTSTR, _Kind.BYTES):
        return isinstance(value, (str, bytes, bytearray, memoryview))
    if kind is _Kind.TIMESTAMP:
        return isinstance(value, (int, datetime.datetime)) and not isinstance(value, bool)
    if kind is _Kind.DECIMAL:
        return isinstance(value, Decimal)
    if kind is _Kind.TABLE:
        return isinstance(value, Mapping)
    if kind is _Kind.ARRAY:
        return isinstance(value, (list, tuple))
    return value is None  # VOID


def _write_value(
    out: bytearray,
    value: Any,
    letter: str | None,
    field: str,
    dialect: Dialect,
    max_depth: int,
    depth: int,
) -> None:
    kind = dialect._kinds.get(ord(letter)) if letter else None
    if kind is None or not _fits(kind, value):
        kind = _default_kind(value, field, dialect)
        out.append(dialect._letters[kind])
    else:
        out.append(ord(letter))  # type: ignore[arg-type]
    if kind is _Kind.LONGSTR:
        out += encode_longstr(value, field)
    elif kind is _Kind.INT32:
        out += _I32.pack(value)
    elif kind is _Kind.BOOL:
        out.append(1 if value else 0)
    elif kind is _Kind.TABLE:
        _write_table(out, value, field, dialect, max_depth, depth + 1)
    elif kind is _Kind.ARRAY:
        _write_array(out, value, field, dialect, max_depth, depth + 1)
    elif kind is _Kind.VOID:
        pass
    elif kind is _Kind.DOUBLE:
        out += _F64.pack(value)
    elif kind is _Kind.FLOAT:
        out += _F32.pack(value)
    elif kind is _Kind.TIMESTAMP:
        out += _U64.pack(encode_timestamp(value, field))
    elif kind is _Kind.DECIMAL:
        out += _encode_decimal(value, field)
    elif kind is _Kind.BYTES:
        out += encode_longstr(value, field)
    elif kind is _Kind.SHORTSTR:
        if not isinstance(value, str):
            value = bytes(value).decode("utf-8", "surrogateescape")
        out += encode_shortstr(value, field)
    else:
        out += _INT_STRUCTS[kind].pack(value)


def _encode_decimal(value: Decimal, field: str) -> bytes:
    """Scale octet and signed 32-bit digits (protocol-facts §6, decimal)."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise EncodeError(f"{field}: {value!r} is not a finite decimal", field, value)
    number = int("".join(map(str, digits)) or "0")
    if exponent > 0:
        number *= 10**exponent
        exponent = 0
    if sign:
        number = -number
    if -exponent > 255 or not -(2**31) <= number < 2**31:
        raise EncodeError(f"{field}: decimal {value} does not fit scale u8 + i32", field, value)
    return _DECIMAL.pack(-exponent, number)
