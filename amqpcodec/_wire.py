"""Wire primitives: strings, field tables, field arrays and their dialects.

How this works: every reader takes ``(buf, off, end)`` and returns ``(value, new_off)``;
``end`` is the bound of the enclosing frame, so a length field can never make a reader
look (or allocate) past the frame it belongs to. Writers return ``bytes`` or append to a
``bytearray``. The generated code in ``spec.py`` inlines the fixed-size work with
precompiled ``struct.Struct`` objects and calls in here only for tables and for the
error paths.

Field tables are lossless: a decoded :class:`FieldTable` remembers the type letter of
every value whose letter is not the one the default mapping would choose again, and a
table decoded on its own (a method argument, :func:`decode_table`) also keeps the bytes
it came from. While nothing in it changes, encoding it writes those bytes back: a copy,
and exact whatever they held (a repeated key, a boolean octet other than 0 or 1). Every
decoded table and array holds a *cell*, ``[dialect, parent's cell]``; a change to any of
them (the mutating methods are overridden) clears its cell and every cell above it, so a
change deep inside a nested table is noticed by the table that kept the bytes.
"""

from __future__ import annotations

import datetime
import enum
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from decimal import Context, Decimal
from typing import Any, Final

from ._errors import DecodeError, EncodeError

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "RABBITMQ",
    "STRICT",
    "Dialect",
    "FieldArray",
    "FieldTable",
    "check_table",
    "decode_array",
    "decode_longstr",
    "decode_shortstr",
    "decode_table",
    "encode_array",
    "encode_longstr",
    "encode_shortstr",
    "encode_table",
    "encode_timestamp",
    "read_table",
    "table_unchanged",
    "write_table",
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
# The largest double that still packs as a float32 (it rounds down to FLT_MAX).
_F32_MAX: Final = 3.4028235677973362e38

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_EPOCH_NAIVE = datetime.datetime(1970, 1, 1)
_ONE_SECOND = datetime.timedelta(seconds=1)
# The largest timestamp that still makes a datetime; larger ones decode as int.
_MAX_DATETIME_SECONDS: Final = 253402300799  # 9999-12-31T23:59:59Z
# Below this (the year 3000), datetime.fromtimestamp is the cheaper way to the same
# datetime on every platform (Windows' gmtime stops a little after it).
_FROMTIMESTAMP_BELOW: Final = 32503680000
_from_timestamp = datetime.datetime.fromtimestamp
_UTC = datetime.timezone.utc
# Decimals are scaled in a context of our own: the thread's context (a user may lower its
# precision) must not round a value on the wire. 28 digits hold any u8 scale + i32 value.
_DECIMAL_CONTEXT: Final = Context(prec=28)


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


class _DecodedTable(dict[str, Any]):
    """What the decoder fills: FieldTable's layout without its change hooks (a store
    through an overridden ``__setitem__`` costs a Python call per entry). The finished
    table becomes a FieldTable by a ``__class__`` assignment."""

    __slots__ = ("_cell", "_types", "_wire")

    _types: dict[str, str] | None  # made on first use: most tables need none
    _cell: Any  # see the module's docstring
    _wire: bytes | None


class _DecodedArray(list[Any]):
    """What the decoder fills before it becomes a FieldArray (see _DecodedTable)."""

    __slots__ = ("_cell", "_types", "_wire")

    _types: dict[int, str] | None
    _cell: Any
    _wire: bytes | None


def _changed(container: _DecodedTable | _DecodedArray) -> None:
    """A decoded table or array changed: it and every table around it lose their bytes."""
    cell = container._cell
    if cell.__class__ is list:
        while cell is not None:
            cell[0] = None
            cell = cell[1]
    else:
        container._cell = None


def _intact(cell: Any, dialect: Dialect) -> bool:
    """Whether a container with this cell is unchanged since it was decoded in ``dialect``."""
    return cell is dialect or (cell.__class__ is list and cell[0] is dialect)


class FieldTable(_DecodedTable):
    """A decoded field table: a ``dict`` that also remembers non-default type letters.

    ``types`` maps a key to the letter its value arrived with, for the values whose
    letter the default mapping would not choose again (``B`` for a small int, ``S`` for
    bytes, ...). Encoding uses a remembered letter while the value still fits it.
    Use :meth:`set_typed` to choose a letter yourself (changing ``types`` directly is not
    noticed by a decoded table, which re-encodes the bytes it came from while unchanged).
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._types = None
        self._cell = None
        self._wire = None

    @property
    def types(self) -> dict[str, str]:
        types = self._types
        if types is None:
            types = self._types = {}
        return types

    @types.setter
    def types(self, types: dict[str, str]) -> None:
        self._types = types

    def set_typed(self, key: str, value: Any, letter: str) -> None:
        """Set ``key`` to ``value``, to be encoded with type letter ``letter``."""
        self[key] = value
        self.types[key] = letter

    def __repr__(self) -> str:
        if not self._types:
            return f"FieldTable({dict.__repr__(self)})"
        return f"FieldTable({dict.__repr__(self)}, types={self.types!r})"

    # Every change goes through one of these: the table no longer has the bytes it came from.
    def __setitem__(self, key: str, value: Any) -> None:
        _changed(self)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        _changed(self)
        dict.__delitem__(self, key)

    def __ior__(self, other: Any) -> FieldTable:  # type: ignore[override,misc]
        _changed(self)
        dict.update(self, other)
        return self

    def clear(self) -> None:
        _changed(self)
        dict.clear(self)

    def pop(self, *args: Any) -> Any:
        _changed(self)
        return dict.pop(self, *args)

    def popitem(self) -> tuple[str, Any]:
        _changed(self)
        return dict.popitem(self)

    def setdefault(self, key: str, default: Any = None) -> Any:
        _changed(self)
        return dict.setdefault(self, key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        _changed(self)
        dict.update(self, *args, **kwargs)


class FieldArray(_DecodedArray):
    """A decoded field array: a ``list`` that remembers non-default type letters by index."""

    __slots__ = ()

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._types = None
        self._cell = None
        self._wire = None

    @property
    def types(self) -> dict[int, str]:
        types = self._types
        if types is None:
            types = self._types = {}
        return types

    @types.setter
    def types(self, types: dict[int, str]) -> None:
        self._types = types

    def __repr__(self) -> str:
        if not self._types:
            return f"FieldArray({list.__repr__(self)})"
        return f"FieldArray({list.__repr__(self)}, types={self.types!r})"

    def __setitem__(self, index: Any, value: Any) -> None:
        _changed(self)
        list.__setitem__(self, index, value)

    def __delitem__(self, index: Any) -> None:
        _changed(self)
        list.__delitem__(self, index)

    def __iadd__(self, other: Any) -> FieldArray:  # type: ignore[misc]
        _changed(self)
        list.extend(self, other)
        return self

    def __imul__(self, count: Any) -> FieldArray:  # type: ignore[misc]
        _changed(self)
        return list.__imul__(self, count)

    def append(self, value: Any) -> None:
        _changed(self)
        list.append(self, value)

    def extend(self, values: Any) -> None:
        _changed(self)
        list.extend(self, values)

    def insert(self, index: Any, value: Any) -> None:
        _changed(self)
        list.insert(self, index, value)

    def pop(self, *args: Any) -> Any:
        _changed(self)
        return list.pop(self, *args)

    def remove(self, value: Any) -> None:
        _changed(self)
        list.remove(self, value)

    def clear(self) -> None:
        _changed(self)
        list.clear(self)

    def sort(self, *args: Any, **kwargs: Any) -> None:
        _changed(self)
        list.sort(self, *args, **kwargs)

    def reverse(self) -> None:
        _changed(self)
        list.reverse(self)


def table_unchanged(value: Any) -> bool:
    """Whether ``value`` is None or a decoded table that kept its bytes and is unchanged
    (the check a content-properties block makes before writing its own bytes back)."""
    if value is None:
        return True
    if value.__class__ is not FieldTable:
        return False
    cell = value._cell
    return cell is not None and (cell.__class__ is not list or cell[0] is not None)


# ---------------------------------------------------------------------------------------
# Readers of field values: (buf, off, stop, dialect, max_depth, depth) -> (value, off,
# default), where ``default`` says whether the default mapping would choose this value's
# letter again (if not, the table remembers the letter).

_Reader = Callable[[Any, int, int, "Dialect", int, int], tuple[Any, int, bool | None]]


def _past_end(off: int) -> DecodeError:
    return DecodeError("field value runs past the end of its table", _FRAME_ERROR, off)


def _fixed_reader(packer: struct.Struct, default: bool) -> _Reader:
    size = packer.size
    unpack = packer.unpack_from

    def read(
        buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
    ) -> tuple[Any, int, bool]:
        if off + size > stop:
            raise _past_end(off)
        return unpack(buf, off)[0], off + size, default

    return read


def _read_int64_written(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    """The dialect's own 64-bit letter: default unless the value would fit an ``I``."""
    if off + 8 > stop:
        raise _past_end(off)
    (value,) = _I64.unpack_from(buf, off)
    return value, off + 8, not -(2**31) <= value < 2**31


def _read_float(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    if off + 4 > stop:
        raise _past_end(off)
    (value,) = _F32.unpack_from(buf, off)
    if value != value:  # NaN: converting to double would quiet a signalling NaN
        (bits,) = _U32.unpack_from(buf, off)
        value = _float32_nan(bits)
    return value, off + 4, False


def _float32_nan(bits: int) -> float:
    """The double that carries the sign and payload of the float32 NaN ``bits`` as is."""
    sign, payload = bits >> 31, bits & 0x7FFFFF
    return float(_F64.unpack(_U64.pack(sign << 63 | 0x7FF << 52 | payload << 29))[0])


def _float32_bytes(value: float) -> bytes:
    """A float32; a NaN keeps its payload bits (the C cast would set the quiet bit)."""
    if value == value:
        return _F32.pack(value)
    (bits,) = _U64.unpack(_F64.pack(value))
    payload = bits >> 29 & 0x7FFFFF or 0x400000  # a payload of 0 would be infinity
    return _U32.pack((bits >> 63) << 31 | 0x7F800000 | payload)


def _read_bool(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    if off >= stop:
        raise _past_end(off)
    value = buf[off]
    return value != 0, off + 1, value <= 1  # only 0 and 1 re-encode to the same octet


def _read_longstr(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    if off + 4 > stop:
        raise _past_end(off)
    end = off + 4 + _U32.unpack_from(buf, off)[0]
    if end > stop:
        raise _past_end(off)
    try:
        return buf[off + 4 : end].decode(), end, True
    except UnicodeDecodeError:
        return bytes(buf[off + 4 : end]), end, False


def _read_bytes(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    if off + 4 > stop:
        raise _past_end(off)
    end = off + 4 + _U32.unpack_from(buf, off)[0]
    if end > stop:
        raise _past_end(off)
    return bytes(buf[off + 4 : end]), end, True


def _read_shortstr(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    text, off = decode_shortstr(buf, off, stop)
    return text, off, False


def _read_timestamp(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    if off + 8 > stop:
        raise _past_end(off)
    (seconds,) = _U64.unpack_from(buf, off)
    if seconds < _FROMTIMESTAMP_BELOW:
        return _from_timestamp(seconds, _UTC), off + 8, True
    if seconds > _MAX_DATETIME_SECONDS:
        return seconds, off + 8, False
    return _EPOCH + datetime.timedelta(seconds=seconds), off + 8, True


def _read_decimal(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    if off + 5 > stop:
        raise _past_end(off)
    scale, digits = _DECIMAL.unpack_from(buf, off)
    return Decimal(digits).scaleb(-scale, _DECIMAL_CONTEXT), off + 5, True


def _read_void(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool]:
    return None, off, True


# The nested readers say None for "default": the caller links the nested cell to its own.
def _read_nested_table(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool | None]:
    table, off = _read_table(buf, off, stop, d, m, depth + 1)
    return table, off, None


def _read_nested_array(
    buf: Any, off: int, stop: int, d: Dialect, m: int, depth: int
) -> tuple[Any, int, bool | None]:
    array, off = _read_array(buf, off, stop, d, m, depth + 1)
    return array, off, None


_READERS: Final[dict[_Kind, _Reader]] = {
    _Kind.BOOL: _read_bool,
    _Kind.INT8: _fixed_reader(_I8, False),
    _Kind.UINT8: _fixed_reader(_U8, False),
    _Kind.INT16: _fixed_reader(_I16, False),
    _Kind.UINT16: _fixed_reader(_U16, False),
    _Kind.INT32: _fixed_reader(_I32, True),
    _Kind.UINT32: _fixed_reader(_U32, False),
    _Kind.INT64: _fixed_reader(_I64, False),
    _Kind.UINT64: _fixed_reader(_U64, False),
    _Kind.FLOAT: _read_float,
    _Kind.DOUBLE: _fixed_reader(_F64, True),
    _Kind.DECIMAL: _read_decimal,
    _Kind.SHORTSTR: _read_shortstr,
    _Kind.LONGSTR: _read_longstr,
    _Kind.BYTES: _read_bytes,
    _Kind.ARRAY: _read_nested_array,
    _Kind.TIMESTAMP: _read_timestamp,
    _Kind.TABLE: _read_nested_table,
    _Kind.VOID: _read_void,
}


def _read_table(
    buf: Any, off: int, end: int, dialect: Dialect, max_depth: int, depth: int
) -> tuple[FieldTable, int]:
    if depth >= max_depth:
        raise DecodeError(f"field tables nest deeper than {max_depth}", _SYNTAX_ERROR, off)
    if off + 4 > end:
        raise DecodeError(
            "field table length runs past the end of its frame", _FRAME_ERROR, min(off, end)
        )
    stop = off + 4 + _U32.unpack_from(buf, off)[0]
    if stop > end:
        raise DecodeError("field table runs past the end of its frame", _FRAME_ERROR, off)
    off += 4
    table = _new_table(_DecodedTable)
    types: dict[str, str] | None = None
    table._types = None
    table._wire = None
    cell = None  # a list once a nested table or array links to it
    readers = dialect._readers
    while off < stop:
        letter_at = off + 1 + buf[off]
        if letter_at >= stop:
            raise DecodeError("field table entry runs past the end of the table", 501, off)
        key = buf[off + 1 : letter_at].decode("utf-8", "surrogateescape")
        letter = buf[letter_at]
        # The two commonest letters, the same in every dialect, are read inline.
        if letter == 83 and letter_at + 5 <= stop:  # S: long string
            off = letter_at + 5 + _U32.unpack_from(buf, letter_at + 1)[0]
            if off <= stop:
                try:
                    table[key] = buf[letter_at + 5 : off].decode()
                    if types and key in types:
                        del types[key]
                    continue
                except UnicodeDecodeError:
                    pass
        elif letter == 73 and letter_at + 5 <= stop:  # I: signed 32-bit
            table[key] = _I32.unpack_from(buf, letter_at + 1)[0]
            off = letter_at + 5
            if types and key in types:
                del types[key]
            continue
        reader = readers.get(letter)
        if reader is None:
            raise DecodeError(f"unknown field type {chr(letter)!r} for key {key!r}", 502, letter_at)
        if reader is _read_nested_table:  # one call less for a nested table
            value, off = _read_table(buf, letter_at + 1, stop, dialect, max_depth, depth + 1)
            default = None
        else:
            value, off, default = reader(buf, letter_at + 1, stop, dialect, max_depth, depth)
        table[key] = value
        if default is False:
            if types is None:
                types = table._types = {}
            types[key] = chr(letter)
            continue
        if default is None:  # a nested table or array: its changes are this table's
            if cell is None:
                cell = [dialect, None]
            own = value._cell  # becomes [its state, this cell]: see _changed
            if own.__class__ is list:
                own[1] = cell
            else:
                value._cell = [own, cell]
        if types and key in types:  # a repeated key: the last one wins, letter too
            del types[key]
    table._cell = dialect if cell is None else cell
    table.__class__ = FieldTable
    return table, off  # type: ignore[return-value]


# decode_table for a caller that keeps the bytes around the table itself (a content
# properties block) as ``bytes`` or ``bytearray`` (the readers slice and ``.decode()``:
# a memoryview goes through decode_table): the table keeps none of its own, and no
# wrapper call is spent.
# ``depth`` is the nesting so far (0); the default max_depth of 64 fits any interpreter
# stack, a larger one should go through decode_table.
read_table: Final = _read_table


def _read_array(
    buf: Any, off: int, end: int, dialect: Dialect, max_depth: int, depth: int
) -> tuple[FieldArray, int]:
    # The same checks as _read_table, written out: a shared helper costs a call per
    # table on the decoder's hot path (measured 4 % of a table round trip).
    if depth >= max_depth:
        raise DecodeError(f"field arrays nest deeper than {max_depth}", _SYNTAX_ERROR, off)
    if off + 4 > end:
        raise DecodeError(
            "field array length runs past the end of its frame", _FRAME_ERROR, min(off, end)
        )
    stop = off + 4 + _U32.unpack_from(buf, off)[0]
    if stop > end:
        raise DecodeError("field array runs past the end of its frame", _FRAME_ERROR, off)
    off += 4
    array = _new_array(_DecodedArray)
    types: dict[int, str] | None = None
    array._types = None
    array._wire = None
    cell = None
    readers = dialect._readers
    append = array.append
    while off < stop:
        letter = buf[off]
        # The two commonest letters are read inline, as in _read_table.
        if letter == 73 and off + 5 <= stop:  # I: signed 32-bit
            append(_I32.unpack_from(buf, off + 1)[0])
            off += 5
            continue
        if letter == 83 and off + 5 <= stop:  # S: long string
            next_off = off + 5 + _U32.unpack_from(buf, off + 1)[0]
            if next_off <= stop:
                try:
                    append(buf[off + 5 : next_off].decode())
                    off = next_off
                    continue
                except UnicodeDecodeError:
                    pass
        reader = readers.get(letter)
        if reader is None:
            raise DecodeError(f"unknown field type {chr(letter)!r} in array", 502, off)
        value, next_off, default = reader(buf, off + 1, stop, dialect, max_depth, depth)
        if default is False:
            if types is None:
                types = array._types = {}
            types[len(array)] = chr(buf[off])
        elif default is None:
            if cell is None:
                cell = [dialect, None]
            own = value._cell  # becomes [its state, this cell]: see _changed
            if own.__class__ is list:
                own[1] = cell
            else:
                value._cell = [own, cell]
        array.append(value)
        off = next_off
    array._cell = dialect if cell is None else cell
    array.__class__ = FieldArray
    return array, off  # type: ignore[return-value]


_new_table = dict.__new__
_new_array = list.__new__


# ---------------------------------------------------------------------------------------
# Writers of field values. The plain-Python mapping is one dict look-up on the value's
# exact type; subclasses and remembered letters take the slower general path.


class _Problem(Exception):
    """A value that cannot be encoded; encode_table/encode_array name where it was."""

    def __init__(self, reason: str, value: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.value = value
        self.path = ""


_Writer = Callable[[bytearray, Any, "Dialect", int, int], None]
_LETTER_LENGTH = struct.Struct(">BI")  # a type letter and a 32-bit length
_LETTER_I32 = struct.Struct(">Bi")
_LETTER_I64 = struct.Struct(">Bq")
_LETTER_F64 = struct.Struct(">Bd")
_LETTER_U64 = struct.Struct(">BQ")


def _write_str(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise _Problem("not encodable as UTF-8", value) from None
    out += _LETTER_LENGTH.pack(83, len(raw))  # S
    out += raw


def _write_int(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    if -2147483648 <= value <= 2147483647:
        out += _LETTER_I32.pack(73, value)  # I
    elif -(2**63) <= value < 2**63:
        out += _LETTER_I64.pack(d._int64_letter, value)
    else:
        raise _Problem(f"integer {value} does not fit in 64 bits", value)


def _write_bool(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    out += b"t\x01" if value else b"t\x00"


def _write_float(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    out += _LETTER_F64.pack(100, value)  # d


def _write_bytes(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    size = value.nbytes if isinstance(value, memoryview) else len(value)
    if size > 0xFFFFFFFF:
        raise _Problem(f"byte array of {size} bytes is too long", value)
    out += _LETTER_LENGTH.pack(d._bytes_letter, size)
    out += value


def _write_none(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    out.append(86)  # V


def _write_nested_table(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    out.append(70)  # F
    _write_table(out, value, d, m, depth + 1)


def _write_nested_array(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    out.append(65)  # A
    _write_array(out, value, d, m, depth + 1)


def _write_decimal(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    out.append(68)  # D
    out += _decimal_bytes(value)


def _write_datetime(out: bytearray, value: Any, d: Dialect, m: int, depth: int) -> None:
    out += _LETTER_U64.pack(84, _seconds(value))  # T


_WRITERS: Final[dict[type, _Writer]] = {
    str: _write_str,
    int: _write_int,
    bool: _write_bool,
    float: _write_float,
    bytes: _write_bytes,
    bytearray: _write_bytes,
    memoryview: _write_bytes,
    type(None): _write_none,
    dict: _write_nested_table,
    FieldTable: _write_nested_table,
    list: _write_nested_array,
    tuple: _write_nested_array,
    FieldArray: _write_nested_array,
    Decimal: _write_decimal,
    datetime.datetime: _write_datetime,
}


def _write_table(out: bytearray, table: Any, d: Dialect, max_depth: int, depth: int) -> None:
    if table.__class__ is FieldTable:  # decoded and unchanged: the bytes it came from
        wire = table._wire
        if wire is not None and _intact(table._cell, d):
            out += wire
            return
    if depth >= max_depth:
        raise _Problem(f"tables nest deeper than {max_depth}", table)
    if type(table) is not dict and not isinstance(table, Mapping):
        raise _Problem("expected a mapping for a field table", table)
    start = len(out)
    out += b"\0\0\0\0"
    # (A plain dict has no letters; getattr would raise and catch an AttributeError.)
    types = (
        table._types
        if table.__class__ is FieldTable
        else None
        if type(table) is dict
        else getattr(table, "types", None)
    )
    for key, value in table.items():
        try:
            # The argument-free encode is the fast path; surrogateescape is only needed
            # (and tried) when a key holds lone surrogates.
            raw = key.encode() if type(key) is str else key.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            try:
                raw = key.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raise _Problem(f"key {key!r} is not a str of UTF-8", key) from None
        except AttributeError:
            raise _Problem(f"key {key!r} is not a str of UTF-8", key) from None
        try:
            if len(raw) > 255:
                raise _Problem(f"key of {len(raw)} UTF-8 bytes is longer than 255", key)
            out.append(len(raw))
            out += raw
            letter = types.get(key) if types else None
            if letter is None:
                kind = type(value)
                # The two commonest values are written inline (as _write_str/_write_int).
                if kind is str:
                    try:
                        text = value.encode()
                    except UnicodeEncodeError:  # lone surrogates, as surrogateescape made
                        text = value.encode("utf-8", "surrogateescape")
                    out += _LETTER_LENGTH.pack(83, len(text))
                    out += text
                elif kind is int and -2147483648 <= value <= 2147483647:
                    out += _LETTER_I32.pack(73, value)
                # Then the next commonest, also as their writers do, a call less each.
                elif kind is bool:
                    out += b"t\x01" if value else b"t\x00"
                elif kind is dict:
                    out.append(70)  # F
                    _write_table(out, value, d, max_depth, depth + 1)
                elif value is None:
                    out.append(86)  # V
                else:
                    writer = _WRITERS.get(kind)
                    if writer is None:
                        _write_general(out, value, None, d, max_depth, depth)
                    else:
                        writer(out, value, d, max_depth, depth)
            else:
                _write_general(out, value, letter, d, max_depth, depth)
        except _Problem as problem:
            problem.path = f"[{key!r}]{problem.path}"
            raise
        except UnicodeEncodeError:
            unencodable = _Problem("not encodable as UTF-8", value)
            unencodable.path = f"[{key!r}]"
            raise unencodable from None
    _U32.pack_into(out, start, len(out) - start - 4)


def _write_array(out: bytearray, array: Any, d: Dialect, max_depth: int, depth: int) -> None:
    if array.__class__ is FieldArray:  # decoded and unchanged: the bytes it came from
        wire = array._wire
        if wire is not None and _intact(array._cell, d):
            out += wire
            return
    if depth >= max_depth:
        raise _Problem(f"arrays nest deeper than {max_depth}", array)
    start = len(out)
    out += b"\0\0\0\0"
    types = array._types if array.__class__ is FieldArray else getattr(array, "types", None)
    for index, value in enumerate(array):
        try:
            letter = types.get(index) if types else None
            writer = _WRITERS.get(type(value)) if letter is None else None
            if writer is None:
                _write_general(out, value, letter, d, max_depth, depth)
            else:
                writer(out, value, d, max_depth, depth)
        except _Problem as problem:
            problem.path = f"[{index}]{problem.path}"
            raise
    _U32.pack_into(out, start, len(out) - start - 4)


def _default_kind(value: Any) -> _Kind:
    """The documented mapping from a plain Python value (or a subclass) to a kind."""
    if isinstance(value, str):
        return _Kind.LONGSTR
    if isinstance(value, bool):
        return _Kind.BOOL
    if isinstance(value, int):
        return _Kind.INT32 if -(2**31) <= value < 2**31 else _Kind.INT64
    if value is None:
        return _Kind.VOID
    if isinstance(value, Mapping):
        return _Kind.TABLE
    if isinstance(value, (list, tuple)):
        return _Kind.ARRAY
    if isinstance(value, float):
        return _Kind.DOUBLE
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _Kind.BYTES
    if isinstance(value, Decimal):
        return _Kind.DECIMAL
    if isinstance(value, datetime.datetime):
        return _Kind.TIMESTAMP
    raise _Problem(f"{type(value).__name__} has no field-table type", value)


def _fits(kind: _Kind, value: Any) -> bool:
    """Whether ``value`` can still be written as ``kind`` (a remembered letter)."""
    if kind in _INT_RANGES:
        if type(value) is not int:
            return False
        low, high = _INT_RANGES[kind]
        return low <= value <= high
    if kind is _Kind.BOOL:
        return isinstance(value, bool)
    if kind is _Kind.DOUBLE:
        return isinstance(value, float)
    if kind is _Kind.FLOAT:  # too large for float32: fall back to a double
        return isinstance(value, float) and not _F32_MAX < abs(value) < math.inf
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


def _write_general(
    out: bytearray, value: Any, letter: str | None, d: Dialect, max_depth: int, depth: int
) -> None:
    """Write with a remembered letter while the value fits it, else by the mapping."""
    kind = d._kinds.get(ord(letter)) if letter else None
    if kind is None or not _fits(kind, value):
        kind = _default_kind(value)
        if kind is _Kind.BYTES and _Kind.BYTES not in d._letters:
            kind = _Kind.LONGSTR
        code = d._letters[kind]
    else:
        code = ord(letter)  # type: ignore[arg-type]
    out.append(code)
    if kind is _Kind.LONGSTR or kind is _Kind.BYTES:
        try:
            raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
        except UnicodeEncodeError:
            raise _Problem("not encodable as UTF-8", value) from None
        out += _U32.pack(len(raw) if not isinstance(raw, memoryview) else raw.nbytes)
        out += raw
    elif kind is _Kind.SHORTSTR:
        if not isinstance(value, str):
            value = bytes(value).decode("utf-8", "surrogateescape")
        try:
            out += encode_shortstr(value)
        except EncodeError as exc:
            raise _Problem(str(exc).partition(": ")[2], value) from None
    elif kind is _Kind.BOOL:
        out.append(1 if value else 0)
    elif kind is _Kind.TABLE:
        _write_table(out, value, d, max_depth, depth + 1)
    elif kind is _Kind.ARRAY:
        _write_array(out, value, d, max_depth, depth + 1)
    elif kind is _Kind.VOID:
        pass
    elif kind is _Kind.DOUBLE:
        out += _F64.pack(value)
    elif kind is _Kind.FLOAT:
        out += _float32_bytes(value)
    elif kind is _Kind.TIMESTAMP:
        out += _U64.pack(_seconds(value))
    elif kind is _Kind.DECIMAL:
        out += _decimal_bytes(value)
    else:
        low, high = _INT_RANGES[kind]
        if not low <= value <= high:
            raise _Problem(f"integer {value} does not fit in 64 bits", value)
        out += _INT_STRUCTS[kind].pack(value)


def _seconds(value: Any) -> int:
    """Seconds since the epoch of an int or a datetime (naive means UTC), as u64."""
    if isinstance(value, datetime.datetime):
        epoch = _EPOCH_NAIVE if value.tzinfo is None else _EPOCH
        seconds: int = (value - epoch) // _ONE_SECOND
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    else:
        raise _Problem("expected an int or a datetime for a timestamp", value)
    if not 0 <= seconds <= 0xFFFFFFFFFFFFFFFF:
        raise _Problem(f"timestamp {value!r} is out of range", value)
    return seconds


def _decimal_bytes(value: Decimal) -> bytes:
    """Scale octet and signed 32-bit digits (protocol-facts §6, decimal)."""
    _sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise _Problem(f"{value!r} is not a finite decimal", value)
    # Bound the work before any arithmetic: i32 digits have at most 10 decimal places,
    # so a longer digit string or a positive exponent over 9 cannot fit (and 10**huge
    # would take minutes).
    if len(digits) > 10 or (exponent > 9 and any(digits)):
        raise _Problem(f"decimal {value} does not fit scale u8 + i32", value)
    # At most 10 digits and an exponent of at most 9 (when not zero): both are exact.
    if exponent >= 0:
        number = int(value)
        exponent = 0
    else:
        number = int(value.scaleb(-exponent, _DECIMAL_CONTEXT))
    if -exponent > 255 or not -(2**31) <= number < 2**31:
        raise _Problem(f"decimal {value} does not fit scale u8 + i32", value)
    return _DECIMAL.pack(-exponent, number)


# ---------------------------------------------------------------------------------------
# Dialects


class Dialect:
    """A set of field-value type letters.

    :data:`RABBITMQ` (the default) is what RabbitMQ, Qpid and nearly every client use
    (it also reads the grammar's ``U``, signed 16-bit, which RabbitMQ itself refuses);
    :data:`STRICT` is the AMQP 0-9-1 grammar read literally (``s`` is a short string,
    ``U`` a signed 16-bit, ``l`` an unsigned 64-bit, no ``x``).
    """

    __slots__ = ("_bytes_letter", "_int64_letter", "_kinds", "_letters", "_readers", "name")

    def __init__(self, name: str, letters: Mapping[str, _Kind], int64_letter: str) -> None:
        self.name: str = name
        self._kinds: dict[int, _Kind] = {ord(k): v for k, v in letters.items()}
        # Kind -> the letter written for it; RabbitMQ reads both l and L, writes l.
        self._letters: dict[_Kind, int] = {}
        for letter, kind in letters.items():
            self._letters.setdefault(kind, ord(letter))
        self._letters[_Kind.INT64] = self._int64_letter = ord(int64_letter)
        self._bytes_letter = self._letters.get(_Kind.BYTES, self._letters[_Kind.LONGSTR])
        self._readers: dict[int, _Reader] = {
            code: _READERS[kind] for code, kind in self._kinds.items()
        }
        self._readers[self._int64_letter] = _read_int64_written

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
        # The 0-9-1 grammar's signed 16-bit letter: RabbitMQ writes s, but U takes no other
        # meaning here, so a table that uses it decodes (and keeps its letter).
        "U": _Kind.INT16,
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


# ---------------------------------------------------------------------------------------
# Checking a table without building it: the same walk and the same errors as _read_table,
# for a caller that decodes the table only when it is first read (a content-properties
# block): malformed bytes still raise when the frame is decoded.

_FIXED_SIZES: Final = {
    _Kind.BOOL: 1,
    _Kind.INT8: 1,
    _Kind.UINT8: 1,
    _Kind.INT16: 2,
    _Kind.UINT16: 2,
    _Kind.INT32: 4,
    _Kind.UINT32: 4,
    _Kind.INT64: 8,
    _Kind.UINT64: 8,
    _Kind.FLOAT: 4,
    _Kind.DOUBLE: 8,
    _Kind.DECIMAL: 5,
    _Kind.TIMESTAMP: 8,
    _Kind.VOID: 0,
}


def _check_value(
    buf: Any, kind: _Kind, off: int, stop: int, d: Dialect, max_depth: int, depth: int
) -> int:
    """The offset after a value of ``kind`` at ``off``, raising as its reader would."""
    size = _FIXED_SIZES.get(kind)
    if size is not None:
        if off + size > stop:
            raise _past_end(off)
        return off + size
    if kind is _Kind.LONGSTR or kind is _Kind.BYTES:
        if off + 4 > stop:
            raise _past_end(off)
        end: int = off + 4 + _U32.unpack_from(buf, off)[0]
        if end > stop:
            raise _past_end(off)
        return end
    if kind is _Kind.SHORTSTR:
        return decode_shortstr(buf, off, stop)[1]
    if kind is _Kind.TABLE:
        return check_table(buf, off, stop, d, max_depth, depth + 1)
    return _check_array(buf, off, stop, d, max_depth, depth + 1)


def check_table(buf: Any, off: int, end: int, dialect: Dialect, max_depth: int, depth: int) -> int:
    """The offset after the field table at ``off``; raises what decoding it would raise."""
    if depth >= max_depth:
        raise DecodeError(f"field tables nest deeper than {max_depth}", _SYNTAX_ERROR, off)
    if off + 4 > end:
        raise DecodeError(
            "field table length runs past the end of its frame", _FRAME_ERROR, min(off, end)
        )
    stop = off + 4 + _U32.unpack_from(buf, off)[0]
    if stop > end:
        raise DecodeError("field table runs past the end of its frame", _FRAME_ERROR, off)
    off += 4
    kinds = dialect._kinds
    while off < stop:
        letter_at = off + 1 + buf[off]
        if letter_at >= stop:
            raise DecodeError("field table entry runs past the end of the table", 501, off)
        letter = buf[letter_at]
        if letter == 83:  # S: long string, inline as in the reader
            if letter_at + 5 > stop:
                raise _past_end(letter_at + 1)
            off = letter_at + 5 + _U32.unpack_from(buf, letter_at + 1)[0]
            if off > stop:
                raise _past_end(letter_at + 1)
            continue
        if letter == 73:  # I: signed 32-bit
            off = letter_at + 5
            if off > stop:
                raise _past_end(letter_at + 1)
            continue
        kind = kinds.get(letter)
        if kind is None:
            key = str(buf[off + 1 : letter_at], "utf-8", "surrogateescape")
            raise DecodeError(f"unknown field type {chr(letter)!r} for key {key!r}", 502, letter_at)
        off = _check_value(buf, kind, letter_at + 1, stop, dialect, max_depth, depth)
    return off


def _check_array(buf: Any, off: int, end: int, dialect: Dialect, max_depth: int, depth: int) -> int:
    if depth >= max_depth:
        raise DecodeError(f"field arrays nest deeper than {max_depth}", _SYNTAX_ERROR, off)
    if off + 4 > end:
        raise DecodeError(
            "field array length runs past the end of its frame", _FRAME_ERROR, min(off, end)
        )
    stop = off + 4 + _U32.unpack_from(buf, off)[0]
    if stop > end:
        raise DecodeError("field array runs past the end of its frame", _FRAME_ERROR, off)
    off += 4
    kinds = dialect._kinds
    while off < stop:
        kind = kinds.get(buf[off])
        if kind is None:
            raise DecodeError(f"unknown field type {chr(buf[off])!r} in array", 502, off)
        off = _check_value(buf, kind, off + 1, stop, dialect, max_depth, depth)
    return off


# ---------------------------------------------------------------------------------------
# The public readers and writers


def decode_shortstr(buf: Any, off: int, end: int) -> tuple[str, int]:
    """Read a short string. Invalid UTF-8 decodes with ``surrogateescape`` (lossless)."""
    if off >= end:
        raise DecodeError("short string runs past the end of its frame", _FRAME_ERROR, off)
    stop = off + 1 + buf[off]
    if stop > end:
        raise DecodeError("short string runs past the end of its frame", _FRAME_ERROR, off)
    return str(buf[off + 1 : stop], "utf-8", "surrogateescape"), stop


def decode_longstr(buf: Any, off: int, end: int) -> tuple[bytes, int]:
    """Read a long string as bytes."""
    if off + 4 > end:
        raise DecodeError("long string length runs past the end of its frame", _FRAME_ERROR, off)
    stop = off + 4 + _U32.unpack_from(buf, off)[0]
    if stop > end:
        raise DecodeError("long string runs past the end of its frame", _FRAME_ERROR, off)
    return bytes(buf[off + 4 : stop]), stop


def decode_table(
    buf: Any,
    off: int,
    end: int,
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[FieldTable, int]:
    """Read a field table (a u32 byte length, then name/type/value triples).

    The table keeps a copy of its bytes, written back by the encoders while it is
    unchanged (see the module's docstring)."""
    if buf.__class__ is not bytes and buf.__class__ is not bytearray:
        return _on_a_copy(decode_table, buf, off, end, dialect, max_depth)
    try:
        table, stop = _read_table(buf, off, end, dialect, max_depth, 0)
    except RecursionError:  # a max_depth larger than the interpreter's stack allows
        raise _too_deep_to_decode(off) from None
    wire = buf[off:stop]
    table._wire = wire if wire.__class__ is bytes else bytes(wire)
    return table, stop


def decode_array(
    buf: Any,
    off: int,
    end: int,
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> tuple[FieldArray, int]:
    """Read a field array (a u32 byte length, then type/value pairs); like a table, it
    keeps a copy of its bytes."""
    if buf.__class__ is not bytes and buf.__class__ is not bytearray:
        return _on_a_copy(decode_array, buf, off, end, dialect, max_depth)
    try:
        array, stop = _read_array(buf, off, end, dialect, max_depth, 0)
    except RecursionError:  # a max_depth larger than the interpreter's stack allows
        raise _too_deep_to_decode(off) from None
    wire = buf[off:stop]
    array._wire = wire if wire.__class__ is bytes else bytes(wire)
    return array, stop


def _on_a_copy(
    decode: Callable[..., tuple[Any, int]],
    buf: Any,
    off: int,
    end: int,
    dialect: Dialect,
    max_depth: int,
) -> tuple[Any, int]:
    """Decode from ``bytes`` of ``buf[off:end]`` (a memoryview or another buffer): the
    readers take strings out with ``bytes.decode``, which such buffers lack. One copy of
    at most a frame; offsets, in results and errors, are those in ``buf``."""
    with memoryview(buf) as view:
        data = bytes(view.cast("B")[off:end])
    try:
        value, stop = decode(data, 0, len(data), dialect, max_depth)
    except DecodeError as exc:
        exc.offset += off
        raise
    return value, stop + off


def _too_deep_to_decode(off: int) -> DecodeError:
    return DecodeError("field tables nest deeper than the recursion limit", _SYNTAX_ERROR, off)


def _too_deep_to_encode(field: str, value: Any) -> EncodeError:
    return EncodeError(f"{field}: nests deeper than the recursion limit", field, value)


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
    try:
        return _seconds(value)
    except _Problem as problem:
        raise EncodeError(f"{field}: {problem.reason}", field, value) from None


def encode_table(
    table: Mapping[str, Any] | None,
    field: str = "table",
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """A field table with its 32-bit length."""
    if table.__class__ is FieldTable:  # decoded and unchanged: the bytes it came from
        wire = table._wire
        if wire is not None and _intact(table._cell, dialect):
            return wire
    if not table and (table is None or isinstance(table, Mapping)):
        return b"\0\0\0\0"
    out = bytearray()
    try:
        _write_table(out, table, dialect, max_depth, 0)
    except _Problem as problem:
        name = field + problem.path
        raise EncodeError(f"{name}: {problem.reason}", name, problem.value) from None
    except RecursionError:  # a max_depth larger than the interpreter's stack allows
        raise _too_deep_to_encode(field, table) from None
    return bytes(out)


def write_table(
    out: bytearray,
    table: Mapping[str, Any] | None,
    field: str = "table",
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> None:
    """Append a field table with its 32-bit length to ``out`` (as encode_table's bytes)."""
    if not table and (table is None or isinstance(table, Mapping)):
        out += b"\0\0\0\0"
        return
    try:
        _write_table(out, table, dialect, max_depth, 0)
    except _Problem as problem:
        name = field + problem.path
        raise EncodeError(f"{name}: {problem.reason}", name, problem.value) from None
    except RecursionError:  # a max_depth larger than the interpreter's stack allows
        raise _too_deep_to_encode(field, table) from None


def encode_array(
    array: Sequence[Any],
    field: str = "array",
    dialect: Dialect = RABBITMQ,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> bytes:
    """A field array with its 32-bit length."""
    out = bytearray()
    try:
        _write_array(out, array, dialect, max_depth, 0)
    except _Problem as problem:
        name = field + problem.path
        raise EncodeError(f"{name}: {problem.reason}", name, problem.value) from None
    except RecursionError:  # a max_depth larger than the interpreter's stack allows
        raise _too_deep_to_encode(field, array) from None
    return bytes(out)
