"""Hypothesis strategies for AMQP 0-9-1 field values, methods and content properties.

Needs the ``hypothesis`` extra; ``import amqpcodec`` alone never imports Hypothesis. ::

    from hypothesis import given
    from amqpcodec import strategies as amqp_st

    @given(amqp_st.methods(direction="server"))  # anything a broker may receive
    def test_broker_survives(method):
        send_to_broker(method.encode())

Every strategy is derived from a spec module's metadata (``METHODS``, each method's
``FIELDS``, ``FIELD_TYPES`` and ``RESERVED``, and ``PROPERTIES``), so a method added to
the spec XML is drawn without changes here. ``spec_module=`` takes a module made by
:func:`amqpcodec.compiler.load_spec`; the default is :mod:`amqpcodec.spec`.

Values follow the wire types: ``bit`` is a bool, ``octet``/``short``/``long``/
``longlong``/``timestamp`` an int over the full unsigned range, ``shortstr`` a str of at
most 255 UTF-8 bytes, ``longstr`` bytes, ``table`` a :func:`field_tables` table.
Reserved arguments are usually zero or empty and sometimes random, since a decoder must
keep whatever arrives in them. Tables and arrays use every type letter of their dialect
(recorded with :meth:`~amqpcodec.FieldTable.set_typed` and
:attr:`~amqpcodec.FieldArray.types`) next to plain Python values, and only values that
decode back to an equal value: encode, decode and re-encode gives the same bytes.
"""

from __future__ import annotations

import datetime
import functools
import types
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from . import spec as _default_spec
from ._base import Method, Properties
from ._wire import _MAX_DATETIME_SECONDS, RABBITMQ, Dialect, FieldArray, FieldTable, _Kind

__all__ = [
    "field_arrays",
    "field_tables",
    "field_values",
    "method_arguments",
    "methods",
    "properties",
]

_MAX_LONGSTR = 256  # bytes in a drawn longstr; enough to cross every length boundary we test

_UINT_RANGES = {"octet": 8, "short": 16, "long": 32, "longlong": 64, "timestamp": 64}
_INT_RANGES = {
    _Kind.INT8: (-(2**7), 2**7 - 1),
    _Kind.UINT8: (0, 2**8 - 1),
    _Kind.INT16: (-(2**15), 2**15 - 1),
    _Kind.UINT16: (0, 2**16 - 1),
    _Kind.INT32: (-(2**31), 2**31 - 1),
    _Kind.UINT32: (0, 2**32 - 1),
    _Kind.INT64: (-(2**63), 2**63 - 1),
    _Kind.UINT64: (0, 2**64 - 1),
}
_UTC = datetime.timezone.utc


def _clip_utf8(text: str) -> str:
    """``text`` cut to at most 255 UTF-8 bytes, at a character boundary."""
    raw = text.encode("utf-8")
    return text if len(raw) <= 255 else raw[:255].decode("utf-8", "ignore")


def _shortstrs(max_chars: int = 255) -> st.SearchStrategy[str]:
    # Valid Unicode only: lone surrogates from surrogateescape can pair up into a
    # different character when encoded, so they would not decode back equal.
    return st.text(st.characters(codec="utf-8"), max_size=max_chars).map(_clip_utf8)


def _invalid_utf8() -> st.SearchStrategy[bytes]:
    """Bytes that are not UTF-8 (0xFF never is): an ``S`` value that decodes as bytes."""
    return st.builds(lambda a, b: a + b"\xff" + b, st.binary(max_size=16), st.binary(max_size=16))


def _datetimes() -> st.SearchStrategy[datetime.datetime]:
    """Aware UTC datetimes on whole seconds: what a ``T`` value decodes to."""
    return st.datetimes(
        min_value=datetime.datetime(1970, 1, 1),
        max_value=datetime.datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.just(_UTC),
    ).map(lambda value: value.replace(microsecond=0))


def _decimals() -> st.SearchStrategy[Decimal]:
    """Every decimal a ``D`` value can hold: scale 0-255, signed 32-bit digits."""
    return st.builds(
        lambda digits, scale: Decimal(digits).scaleb(-scale),
        st.integers(-(2**31), 2**31 - 1),
        st.integers(0, 255),
    )


class _Values:
    """The strategies of one (dialect, letters, max_size) choice, by nesting depth."""

    def __init__(self, dialect: Dialect, letters: str | None, max_size: int) -> None:
        known = dialect.letters
        chosen = known if letters is None else letters
        unknown = sorted(set(chosen) - set(known))
        if unknown:
            raise InvalidArgument(f"letters {unknown} are not in {dialect!r} ({known})")
        if max_size < 0:
            raise InvalidArgument(f"max_size={max_size} must be at least 0")
        self.dialect = dialect
        self.max_size = max_size
        self.letters = sorted(set(chosen))
        self.kinds = {letter: dialect._kinds[ord(letter)] for letter in self.letters}
        allowed = set(self.kinds.values())
        int64 = chr(dialect._int64_letter)
        self.plain_int64 = int64 in self.letters
        self.plain_int32 = "I" in self.letters
        self.plain_bytes = _Kind.BYTES in allowed
        self.allowed = allowed
        # Built once per depth: each level refers to the one below, not to fresh copies.
        self._cache: dict[tuple[str, int], st.SearchStrategy[Any]] = {}

    def _cached(
        self, what: str, depth: int, build: Callable[[], st.SearchStrategy[Any]]
    ) -> st.SearchStrategy[Any]:
        key = (what, depth)
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def typed(self, letter: str, depth: int) -> st.SearchStrategy[Any]:
        """Values that encode under ``letter`` and decode back equal."""
        kind = self.kinds[letter]
        if kind in _INT_RANGES:
            low, high = _INT_RANGES[kind]
            return st.integers(low, high)
        simple: dict[_Kind, Callable[[], st.SearchStrategy[Any]]] = {
            _Kind.BOOL: st.booleans,
            # NaN is never equal to itself; -0.0 and infinities are fine.
            _Kind.FLOAT: lambda: st.floats(width=32, allow_nan=False),
            _Kind.DOUBLE: lambda: st.floats(allow_nan=False),
            _Kind.DECIMAL: _decimals,
            _Kind.SHORTSTR: _shortstrs,
            # Valid UTF-8 decodes as str, anything else as bytes (letter remembered).
            _Kind.LONGSTR: lambda: st.one_of(_shortstrs(), _invalid_utf8()),
            _Kind.BYTES: lambda: st.binary(max_size=_MAX_LONGSTR),
            # Up to year 9999 a timestamp decodes as a datetime, beyond it as an int.
            _Kind.TIMESTAMP: lambda: st.one_of(
                _datetimes(), st.integers(_MAX_DATETIME_SECONDS + 1, 2**64 - 1)
            ),
            _Kind.VOID: st.none,
            _Kind.TABLE: lambda: self.tables(depth - 1),
            _Kind.ARRAY: lambda: self.arrays(depth - 1),
        }
        return simple[kind]()

    def plain(self, depth: int) -> st.SearchStrategy[Any]:
        """Plain Python values whose default letter is allowed (the documented mapping)."""
        return self._cached("plain", depth, lambda: self._plain(depth))

    def _plain(self, depth: int) -> st.SearchStrategy[Any]:
        options: list[st.SearchStrategy[Any]] = []
        if _Kind.BOOL in self.allowed:
            options.append(st.booleans())
        if self.plain_int32:
            options.append(st.integers(-(2**31), 2**31 - 1))
        if self.plain_int64:
            options.append(st.integers(-(2**63), -(2**31) - 1))
            options.append(st.integers(2**31, 2**63 - 1))
        if _Kind.DOUBLE in self.allowed:
            options.append(st.floats(allow_nan=False))
        if _Kind.DECIMAL in self.allowed:
            options.append(_decimals())
        if _Kind.LONGSTR in self.allowed:
            options.append(_shortstrs())
        if self.plain_bytes:  # without a bytes letter, bytes go out as S and come back str
            options.append(st.binary(max_size=_MAX_LONGSTR))
        if _Kind.TIMESTAMP in self.allowed:
            options.append(_datetimes())
        if _Kind.VOID in self.allowed:
            options.append(st.none())
        if depth > 0 and _Kind.TABLE in self.allowed:
            keys = _shortstrs(16)
            options.append(st.dictionaries(keys, self.plain(depth - 1), max_size=self.max_size))
        if depth > 0 and _Kind.ARRAY in self.allowed:
            options.append(st.lists(self.plain(depth - 1), max_size=self.max_size))
        return st.one_of(options) if options else st.nothing()

    def entries(self, depth: int) -> st.SearchStrategy[tuple[str | None, Any]]:
        """(letter to record, value) pairs; None means a plain value, letter by mapping."""
        return self._cached("entries", depth, lambda: self._entries(depth))

    def _entries(self, depth: int) -> st.SearchStrategy[tuple[str | None, Any]]:
        options: list[st.SearchStrategy[tuple[str | None, Any]]] = [
            st.tuples(st.none(), self.plain(depth))
        ]
        for letter in self.letters:
            if depth <= 0 and self.kinds[letter] in (_Kind.TABLE, _Kind.ARRAY):
                continue
            options.append(st.tuples(st.just(letter), self.typed(letter, depth)))
        return st.one_of(options)

    def values(self, depth: int) -> st.SearchStrategy[Any]:
        return self._cached("values", depth, lambda: self.entries(depth).map(lambda e: e[1]))

    def tables(self, depth: int) -> st.SearchStrategy[FieldTable]:
        def build() -> st.SearchStrategy[FieldTable]:
            keys = _shortstrs(16)
            return st.dictionaries(keys, self.entries(depth), max_size=self.max_size).map(_table)

        return self._cached("tables", depth, build)

    def arrays(self, depth: int) -> st.SearchStrategy[FieldArray]:
        def build() -> st.SearchStrategy[FieldArray]:
            return st.lists(self.entries(depth), max_size=self.max_size).map(_array)

        return self._cached("arrays", depth, build)


@functools.lru_cache(maxsize=64)
def _values(dialect: Dialect, letters: str | None, max_size: int) -> _Values:
    """One shared :class:`_Values` per choice: building strategies again is what costs."""
    return _Values(dialect, letters, max_size)


def _table(items: dict[str, tuple[str | None, Any]]) -> FieldTable:
    table = FieldTable()
    for key, (letter, value) in items.items():
        if letter is None:
            table[key] = value
        else:
            table.set_typed(key, value, letter)
    return table


def _array(entries: list[tuple[str | None, Any]]) -> FieldArray:
    array = FieldArray(value for _, value in entries)
    array.types = {index: letter for index, (letter, _) in enumerate(entries) if letter}
    return array


def _check_depth(max_depth: int, least: int) -> None:
    if max_depth < least:
        raise InvalidArgument(f"max_depth={max_depth} must be at least {least}")


def field_values(
    dialect: Dialect = RABBITMQ,
    max_depth: int = 3,
    *,
    letters: str | None = None,
    max_size: int = 4,
) -> st.SearchStrategy[Any]:
    """Any value a field table can hold: scalars, tables and arrays.

    ``max_depth`` bounds the nesting of tables and arrays (0: scalars only);
    ``letters`` restricts the type letters used (default: all of ``dialect``);
    ``max_size`` bounds the entries of each table and array.
    """
    _check_depth(max_depth, 0)
    return _values(dialect, letters, max_size).values(max_depth)


def field_tables(
    dialect: Dialect = RABBITMQ,
    max_depth: int = 3,
    *,
    letters: str | None = None,
    max_size: int = 4,
) -> st.SearchStrategy[FieldTable]:
    """Field tables nested at most ``max_depth`` deep (1: no nested containers)."""
    _check_depth(max_depth, 1)
    return _values(dialect, letters, max_size).tables(max_depth - 1)


def field_arrays(
    dialect: Dialect = RABBITMQ,
    max_depth: int = 3,
    *,
    letters: str | None = None,
    max_size: int = 4,
) -> st.SearchStrategy[FieldArray]:
    """Field arrays nested at most ``max_depth`` deep (1: no nested containers)."""
    _check_depth(max_depth, 1)
    return _values(dialect, letters, max_size).arrays(max_depth - 1)


def _wire_values(kind: str, tables: st.SearchStrategy[FieldTable]) -> st.SearchStrategy[Any]:
    """Values of one native argument type (protocol-facts §5)."""
    if kind == "bit":
        return st.booleans()
    if kind in _UINT_RANGES:
        return st.integers(0, 2 ** _UINT_RANGES[kind] - 1)
    if kind == "shortstr":
        return _shortstrs()
    if kind == "longstr":
        return st.binary(max_size=_MAX_LONGSTR)
    if kind == "table":
        return tables
    raise InvalidArgument(f"unknown AMQP type {kind!r}")


_EMPTY: dict[str, Any] = {
    "bit": False,
    "shortstr": "",
    "longstr": b"",
    **dict.fromkeys(_UINT_RANGES, 0),
}


def _mostly(default: Any, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``default`` three times in four, otherwise a drawn value (shrinks to ``default``)."""
    return st.integers(0, 3).flatmap(lambda n: values if n == 3 else st.just(default))


@functools.lru_cache(maxsize=1024)
def method_arguments(
    method_class: type[Method], *, tables: st.SearchStrategy[FieldTable] | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``method_class``: every field, reserved ones included.

    ``method_class(**arguments)`` builds the method. ``tables`` replaces the strategy
    for table arguments (default :func:`field_tables` with its defaults).
    """
    table_values = field_tables() if tables is None else tables
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, kind in zip(method_class.FIELDS, method_class.FIELD_TYPES, strict=True):
        values = _wire_values(kind, table_values)
        if name in method_class.RESERVED:
            values = _mostly(FieldTable() if kind == "table" else _EMPTY[kind], values)
        fields[name] = values
    return st.fixed_dictionaries(fields)


def _build(method_class: type[Method]) -> Callable[[dict[str, Any]], Method]:
    return lambda arguments: method_class(**arguments)


def _class_name(method_class: type[Method]) -> str:
    return method_class.NAME.partition(".")[0]


def methods(
    classes: Iterable[str | int] | None = None,
    content: bool | None = None,
    direction: str | None = None,
    *,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[Method]:
    """Method instances with drawn arguments.

    ``classes`` keeps the methods of these classes (names such as ``"basic"`` or ids
    such as ``60``); ``content`` keeps the methods that do (True) or do not (False)
    carry content; ``direction`` keeps what a ``"client"`` or a ``"server"`` receives
    (the method's chassis).
    """
    wanted = (
        None
        if classes is None
        else frozenset(c.lower() if isinstance(c, str) else c for c in classes)
    )
    return _methods(wanted, content, direction, spec_module or _default_spec, tables)


@functools.lru_cache(maxsize=256)
def _methods(
    wanted: frozenset[str | int] | None,
    content: bool | None,
    direction: str | None,
    module: types.ModuleType,
    tables: st.SearchStrategy[FieldTable] | None,
) -> st.SearchStrategy[Method]:
    if direction not in (None, "client", "server"):
        raise InvalidArgument(f"direction={direction!r}: expected 'client', 'server' or None")
    chosen = [
        method_class
        for method_class in module.METHODS.values()
        if (
            wanted is None or method_class.CLASS_ID in wanted or _class_name(method_class) in wanted
        )
        and (content is None or content == method_class.CONTENT)
        and (direction is None or direction in method_class.CHASSIS)
    ]
    if not chosen:
        raise InvalidArgument(
            f"no method matches classes={wanted!r}, content={content!r}, direction={direction!r}"
        )
    return st.one_of([method_arguments(m, tables=tables).map(_build(m)) for m in chosen])


@functools.lru_cache(maxsize=64)
def properties(
    class_id: int = 60,
    *,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[Properties]:
    """Content properties of class ``class_id`` (``BasicProperties`` by default).

    Each property is absent (None) or drawn; reserved ones are mostly absent.
    """
    module = _default_spec if spec_module is None else spec_module
    try:
        properties_class: type[Properties] = module.PROPERTIES[class_id]
    except KeyError:
        raise InvalidArgument(f"class {class_id} has no content properties") from None
    table_values = field_tables() if tables is None else tables
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, kind in zip(properties_class.FIELDS, properties_class.FIELD_TYPES, strict=True):
        values = _wire_values(kind, table_values)
        if name in properties_class.RESERVED:
            fields[name] = _mostly(None, values)
        else:
            fields[name] = st.none() | values
    return st.fixed_dictionaries(fields).map(lambda kwargs: properties_class(**kwargs))
