"""Hypothesis strategies for AMQP 0-9-1: values, methods, properties, frames and streams.

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

On top of those: :func:`frames` (any frame type), :func:`messages` (a message split at a
frame_max), :func:`frame_streams` (the bytes a client or a server could send, handshake
first) and, for invalid input, :func:`mutations` / :func:`mutated_streams` (bit flips,
truncation, edited lengths, bad frame ends and channels, spliced frames) and
:func:`mutate` for plain ``random`` loops.
"""

from __future__ import annotations

import datetime
import functools
import random as _random
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from . import spec as _default_spec
from ._base import Method, Properties
from ._content import Message
from ._frames import (
    FRAME_OVERHEAD,
    BodyFrame,
    Frame,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
)
from ._wire import (
    _INT_RANGES,
    _MAX_DATETIME_SECONDS,
    RABBITMQ,
    Dialect,
    FieldArray,
    FieldTable,
    _Kind,
    encode_table,
)

__all__ = [
    "FRAME_KINDS",
    "MUTATIONS",
    "MessageFrames",
    "field_arrays",
    "field_tables",
    "field_values",
    "frame_streams",
    "frames",
    "messages",
    "method_arguments",
    "methods",
    "mutate",
    "mutated_streams",
    "mutations",
    "properties",
]

_MAX_LONGSTR = 256  # bytes in a drawn longstr; enough to cross every length boundary we test

_UINT_RANGES = {"octet": 8, "short": 16, "long": 32, "longlong": 64, "timestamp": 64}
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


# =======================================================================================
# Frames, messages, whole streams, and mutations of them
#
# How this works: frames() and messages() draw frame objects from the methods and
# properties above. frame_streams() draws what one side of a connection sends, as bytes:
# the handshake, then a few channels whose frames interleave (content split at the
# frame_max the stream negotiated), heartbeats, and a close. The invalid input is made by
# mutation operators that edit a valid stream at the frame level (length field, frame
# end, channel, type; frames dropped, repeated, swapped or spliced in from another
# stream) or at the byte level (bit flips, truncation). The operators take a
# ``choose(n) -> 0..n-1`` function, so the same code serves Hypothesis (mutations(),
# which shrinks towards small choices) and plain ``random`` loops (mutate(), for runs of
# millions of cases).


_methods_strategy = methods  # frames() and messages() take a ``methods=`` argument

FRAME_KINDS: tuple[str, ...] = ("method", "header", "body", "heartbeat")
"""The frame kinds :func:`frames` draws by default; ``"protocol-header"`` is the fifth."""
_ALL_FRAME_KINDS = (*FRAME_KINDS, "protocol-header")

_MAX_CHANNEL = 65535
_DEFAULT_CHANNEL_MAX = 2047  # what RabbitMQ and amqpcodec propose in connection.tune
_DEFAULT_FRAME_MAX = 131072  # likewise

# The connection methods a stream's handshake and close are made of; every other
# method of the connection class (RabbitMQ's blocked, unblocked, update-secret) may come
# once the connection is open. Likewise channel.open/close and their -ok open and end a
# channel's frames; every other channel-level method comes in between.
_HANDSHAKE = frozenset(
    f"connection.{name}"
    for name in (
        "start",
        "start-ok",
        "secure",
        "secure-ok",
        "tune",
        "tune-ok",
        "open",
        "open-ok",
        "close",
        "close-ok",
    )
)
_CHANNEL_LIFECYCLE = frozenset(
    ("channel.open", "channel.open-ok", "channel.close", "channel.close-ok")
)
_ROLES = ("client", "server")


def _peer(role: str) -> str:
    if role not in _ROLES:
        raise InvalidArgument(f"role={role!r}: expected 'client' or 'server'")
    return "server" if role == "client" else "client"


@functools.lru_cache(maxsize=16)
def _by_name(module: types.ModuleType) -> dict[str, Any]:
    """Method classes by name (``Any``: they are built with their own keyword arguments)."""
    return {method_class.NAME: method_class for method_class in module.METHODS.values()}


def _connection_class(module: types.ModuleType) -> int | None:
    """The id of the connection class (10), or None in a spec without one."""
    return next(
        (m.CLASS_ID for m in module.METHODS.values() if m.NAME.startswith("connection.")), None
    )


def _require(module: types.ModuleType, names: Iterable[str]) -> dict[str, Any]:
    known = _by_name(module)
    missing = sorted(set(names) - set(known))
    if missing:
        raise InvalidArgument(f"the spec module has no {', '.join(missing)}: streams need them")
    return known


@functools.lru_cache(maxsize=16)
def _responses(module: types.ModuleType) -> frozenset[type[Method]]:
    """Methods that answer a request: a stream without the request cannot send them."""
    return frozenset(r for m in module.METHODS.values() for r in m.RESPONSES)


def _quiet(strategy: st.SearchStrategy[Any], name: str) -> st.SearchStrategy[Any]:
    """``strategy`` under a short repr. Hypothesis reprs the branches of a one_of while
    shrinking, and the repr of methods() spells out every method (over 200 kB)."""

    def draw_it(draw: st.DrawFn) -> Any:
        return draw(strategy)

    draw_it.__name__ = draw_it.__qualname__ = name
    return st.composite(draw_it)()


def _any_properties() -> st.SearchStrategy[Properties]:
    """Properties of any content class: ``st.from_type(amqpcodec.Properties)``."""
    return st.one_of([properties(class_id) for class_id in sorted(_default_spec.PROPERTIES)])


def _check_frame_max(frame_max: int) -> int:
    if frame_max and not 4096 <= frame_max <= 0xFFFFFFFF:  # connection.tune frame-max
        raise InvalidArgument(f"frame_max={frame_max} must be 0 or between 4096 and 2**32-1")
    return frame_max - FRAME_OVERHEAD if frame_max else 0xFFFFFFFF


def _channel_numbers(channels: st.SearchStrategy[int] | None) -> st.SearchStrategy[int]:
    return st.integers(1, _MAX_CHANNEL) if channels is None else channels


def _protocol_headers() -> st.SearchStrategy[ProtocolHeader]:
    octets = st.integers(0, 255)
    return st.one_of(
        st.just(ProtocolHeader()),
        st.builds(ProtocolHeader, octets, octets, octets, octets),
    )


def _bodies(max_size: int, chunk: int) -> st.SearchStrategy[bytes]:
    """Bodies up to ``max_size`` bytes whose sizes often sit on a body-frame boundary.

    The bytes repeat a short drawn pattern: a body's content matters far less than its
    size here, and drawing 100 KiB byte by byte would make every example slow."""
    edges = sorted(
        {
            n
            for k in (1, 2, 3)
            for n in (k * chunk - 1, k * chunk, k * chunk + 1)
            if 0 <= n <= max_size
        }
    )
    sizes = st.one_of(
        st.integers(0, min(64, max_size)),
        *([st.sampled_from(edges)] if edges else []),
        st.integers(0, max_size),
    )

    def fill(size: int, pattern: bytes) -> bytes:
        return (pattern * (size // len(pattern) + 1))[:size]

    return st.builds(fill, sizes, st.binary(min_size=1, max_size=16))


def frames(
    kinds: Iterable[str] = FRAME_KINDS,
    *,
    channels: st.SearchStrategy[int] | None = None,
    any_channel: bool = False,
    methods: st.SearchStrategy[Method] | None = None,
    max_body: int = 256,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[Frame]:
    """Single frames of the given ``kinds`` (``"method"``, ``"header"``, ``"body"``,
    ``"heartbeat"``, ``"protocol-header"``), each valid on its own.

    Connection-class methods and heartbeats are on channel 0, everything else on a
    channel from ``channels`` (default 1-65535); ``any_channel=True`` puts every frame
    on any channel 0-65535 instead (which makes many of them invalid). ``methods``
    replaces the method strategy (default :func:`methods` over the whole spec). Content
    headers carry :func:`properties` of a content class of the spec and any body size;
    body frames carry up to ``max_body`` bytes.
    """
    module = _default_spec if spec_module is None else spec_module
    chosen = list(dict.fromkeys(kinds))
    unknown = sorted(set(chosen) - set(_ALL_FRAME_KINDS))
    if unknown or not chosen:
        raise InvalidArgument(f"kinds={chosen!r}: expected some of {_ALL_FRAME_KINDS}")
    channel = st.integers(0, _MAX_CHANNEL) if any_channel else _channel_numbers(channels)
    connection_class = _connection_class(module)
    options: list[st.SearchStrategy[Frame]] = []
    if "method" in chosen:
        drawn = _quiet(
            _methods_strategy(spec_module=module, tables=tables) if methods is None else methods,
            "methods",
        )

        def method_frame(method: Method, number: int) -> Frame:
            if not any_channel and connection_class == method.CLASS_ID:
                number = 0
            return MethodFrame(number, method)

        options.append(st.builds(method_frame, drawn, channel))
    if "header" in chosen:
        body_sizes = st.one_of(st.integers(0, 2**20), st.integers(0, 2**64 - 1))
        options.extend(
            st.builds(
                HeaderFrame,
                channel,
                body_sizes,
                _quiet(properties(class_id, spec_module=module, tables=tables), "properties"),
                st.just(class_id),
            )
            for class_id in sorted(module.PROPERTIES)
        )
    if "body" in chosen:
        options.append(st.builds(BodyFrame, channel, st.binary(max_size=max_body)))
    if "heartbeat" in chosen:  # a frame object has no channel: mutations() moves it
        options.append(st.just(HeartbeatFrame()))
    if "protocol-header" in chosen:
        options.append(_protocol_headers())
    choice = st.one_of(options)

    # A composite only to keep the repr short: methods() spells out every method.
    @st.composite
    def frames(draw: st.DrawFn) -> Frame:
        return draw(choice)

    return frames()


def _split(
    channel: int, method: Method, props: Properties, body: bytes, chunk: int
) -> tuple[Frame, ...]:
    """A message's frames, split here independently of :func:`amqpcodec.encode_message`."""
    pieces = [BodyFrame(channel, body[i : i + chunk]) for i in range(0, len(body), chunk)]
    return (
        MethodFrame(channel, method),
        HeaderFrame(channel, len(body), props, method.CLASS_ID),
        *pieces,
    )


@dataclass(frozen=True, eq=False)
class MessageFrames:
    """A message drawn by :func:`messages`, and the frames it travels in.

    ``frames`` is the method frame, the content header frame and the body frames of at
    most ``frame_max - 8`` bytes each (none for an empty body); ``encode()`` is their
    bytes, the same as :func:`amqpcodec.encode_message` gives; ``message`` is what a
    :class:`~amqpcodec.ContentAssembler` must make of them.
    """

    channel: int
    method: Method
    properties: Properties
    body: bytes
    frame_max: int
    frames: tuple[Frame, ...]

    @property
    def message(self) -> Message:
        return Message(self.channel, self.method, self.properties, self.body)

    def encode(self) -> bytes:
        return b"".join(frame.encode() for frame in self.frames)


def messages(
    frame_max: int = 4096,
    *,
    channels: st.SearchStrategy[int] | None = None,
    methods: st.SearchStrategy[Method] | None = None,
    max_body_size: int | None = None,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[MessageFrames]:
    """Messages split into frames at ``frame_max`` (0: no limit), as :class:`MessageFrames`.

    ``methods`` defaults to every content method of the spec (publish, deliver,
    get-ok, return), ``channels`` to 1-65535. Bodies are up to ``max_body_size`` bytes
    (default: enough for three body frames), with sizes that often sit on a
    frame boundary. Method and header frames always fit in ``frame_max``.
    """
    chunk = _check_frame_max(frame_max)
    if max_body_size is None:
        max_body_size = 3 * chunk + 1 if frame_max else 3 * 4088 + 1
    if max_body_size < 0:
        raise InvalidArgument(f"max_body_size={max_body_size} must be at least 0")
    module = _default_spec if spec_module is None else spec_module
    drawn = _quiet(
        _methods_strategy(content=True, spec_module=module, tables=tables)
        if methods is None
        else methods,
        "methods",
    )
    bodies = _bodies(max_body_size, chunk)
    numbers = _channel_numbers(channels)

    @st.composite
    def messages(draw: st.DrawFn) -> MessageFrames:
        method = draw(drawn)
        if not method.CONTENT:
            raise InvalidArgument(f"messages(methods=...) drew {method.NAME}, which has no content")
        props = draw(properties(method.CLASS_ID, spec_module=module, tables=tables))
        # A method or header too big for frame_max cannot be sent at all: draw again.
        fits = len(method.encode()) <= chunk and len(props.encode()) + 12 <= chunk
        assume(fits)
        channel = draw(numbers)
        body = draw(bodies)
        parts = _split(channel, method, props, body, chunk)
        return MessageFrames(channel, method, props, body, frame_max, parts)

    return messages()


# ---------------------------------------------------------------------------------------
# Streams


_FRAME_MAXES = st.one_of(
    st.sampled_from((4096, 4096, 8192, _DEFAULT_FRAME_MAX)),
    st.integers(4096, _DEFAULT_FRAME_MAX),
)


def _no_nul(max_size: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=max_size)


def _body_methods(
    module: types.ModuleType, role: str, responses: bool
) -> tuple[list[Any], list[Any]]:
    """What ``role`` may send once the connection is open: (channel 0, channel > 0)."""
    peer = _peer(role)
    connection_class = _connection_class(module)
    answers = _responses(module)
    on_zero: list[Any] = []
    on_channels: list[Any] = []
    for method_class in module.METHODS.values():
        name = method_class.NAME
        if peer not in method_class.CHASSIS or name in _HANDSHAKE or name in _CHANNEL_LIFECYCLE:
            continue
        if not responses and method_class in answers:
            continue
        if connection_class == method_class.CLASS_ID:
            # A connection method both sides receive (blocked, unblocked) is one that
            # brokers send: RabbitMQ answers one from a client with a connection error.
            if role == "client" and len(method_class.CHASSIS) > 1:
                continue
            on_zero.append(method_class)
        else:
            on_channels.append(method_class)
    return on_zero, on_channels


def _drawn_methods(
    chosen: Sequence[Any], tables: st.SearchStrategy[FieldTable] | None
) -> st.SearchStrategy[Method]:
    every = st.one_of([method_arguments(m, tables=tables).map(_build(m)) for m in chosen])
    return _quiet(every, "methods")


def frame_streams(
    role: str = "client",
    *,
    frame_max: int | None = None,
    max_channels: int = 3,
    channels: st.SearchStrategy[int] | None = None,
    max_items: int = 12,
    max_body_size: int | None = None,
    heartbeats: bool = True,
    close: bool | None = None,
    responses: bool = True,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[bytes]:
    """Byte streams that a ``role`` (``"client"`` or ``"server"``) could send, start to end.

    A client stream opens with the protocol header, Connection.StartOk (PLAIN or
    AMQPLAIN), TuneOk and Open; a server stream with Connection.Start (offering PLAIN
    and AMQPLAIN, version 0-9), Tune and OpenOk. Then up to ``max_channels`` channels are
    opened (a client sends Channel.Open, a server the Open-Ok of the client's; numbers
    from ``channels``, default 1-2047) and up to
    ``max_items`` methods that go the role's way (``methods(direction=...)``), content
    messages among them, heartbeats (``heartbeats=True``) and RabbitMQ's connection
    extensions on channel 0; a channel may end with Channel.Close. The frames of
    different channels interleave (content too, as the protocol allows), and the stream
    ends with Connection.Close when ``close`` is True (None: sometimes).

    The stream is tuned to ``frame_max`` (default: drawn, 4096 to 131072): a client's
    TuneOk asks for it, a server's Tune proposes it, and content is split at it. A client
    asks for channel_max between its highest channel and 2047, the default proposal
    of RabbitMQ (and amqpcodec), so the stream suits a broker with default settings.

    ``responses=False`` leaves out the methods that answer a request of the peer
    (queue.declare-ok, basic.get-ok, channel.flow-ok, ...), which the stream alone cannot
    justify: a client stream is then accepted, start to end, by a server that sends
    nothing back but what it must. Sizes stay bounded: bodies up to ``max_body_size``
    bytes (default: three body frames), tables at most two levels deep.
    """
    _peer(role)
    if max_channels < 0 or max_items < 0:
        raise InvalidArgument("max_channels and max_items must be at least 0")
    if frame_max is not None:
        _check_frame_max(frame_max)
        if frame_max == 0:
            raise InvalidArgument("frame_max=0: a stream needs a frame_max to split content at")
    module = _default_spec if spec_module is None else spec_module
    names = _require(module, _HANDSHAKE | _CHANNEL_LIFECYCLE)
    stream_tables = field_tables(max_depth=2, max_size=3) if tables is None else tables
    channel_numbers = st.integers(1, _DEFAULT_CHANNEL_MAX) if channels is None else channels
    on_zero, on_channels = _body_methods(module, role, responses)
    zero_methods = _drawn_methods(on_zero, stream_tables) if on_zero else None
    channel_methods = _drawn_methods(on_channels, stream_tables) if on_channels else None
    connection_close = method_arguments(names["connection.close"], tables=stream_tables)
    channel_close = method_arguments(names["channel.close"], tables=stream_tables)

    @st.composite
    def frame_streams(draw: st.DrawFn) -> bytes:
        limit = draw(_FRAME_MAXES) if frame_max is None else frame_max
        chunk = limit - FRAME_OVERHEAD
        body_limit = 3 * chunk if max_body_size is None else max_body_size
        bodies = _bodies(body_limit, chunk)
        numbers = draw(
            st.lists(
                channel_numbers, unique=True, min_size=min(1, max_channels), max_size=max_channels
            )
        )
        top = max(numbers, default=1)

        def method_frame(channel: int, method: Method) -> bytes:
            payload = method.encode()
            if len(payload) > chunk:  # too big for the stream's frame_max: draw again
                assume(False)
            return MethodFrame(channel, method).encode()

        out = bytearray()
        if role == "client":
            out += ProtocolHeader().encode()
            user, password = draw(_no_nul(16)), draw(_no_nul(16))
            if draw(st.booleans()):
                mechanism = "PLAIN"
                response = b"\0" + user.encode() + b"\0" + password.encode()
            else:
                mechanism = "AMQPLAIN"
                response = encode_table({"LOGIN": user, "PASSWORD": password})[4:]
            start_ok = names["connection.start-ok"](
                client_properties=draw(stream_tables),
                mechanism=mechanism,
                response=response,
                locale="en_US",
            )
            tune_ok = names["connection.tune-ok"](
                channel_max=draw(st.integers(top, max(top, _DEFAULT_CHANNEL_MAX))),
                frame_max=limit,
                heartbeat=draw(st.integers(0, 600)),
            )
            virtual_host = draw(st.one_of(st.just("/"), _shortstrs(32)))
            opening = [start_ok, tune_ok, names["connection.open"](virtual_host=virtual_host)]
            channel_open = names["channel.open"]
        else:
            start = names["connection.start"](
                version_major=0,
                version_minor=9,
                server_properties=draw(stream_tables),
                mechanisms=draw(st.sampled_from((b"PLAIN AMQPLAIN", b"AMQPLAIN PLAIN"))),
                locales=b"en_US",
            )
            tune = names["connection.tune"](
                channel_max=draw(st.one_of(st.just(0), st.integers(top, _MAX_CHANNEL))),
                frame_max=limit,
                heartbeat=draw(st.integers(0, 600)),
            )
            opening = [start, tune, names["connection.open-ok"]()]
            channel_open = names["channel.open-ok"]
        for method in opening:
            out += method_frame(0, method)

        # One queue of frames per channel (channel 0 first), merged in a drawn order.
        queues: dict[int, list[bytes]] = {0: []}
        for number in numbers:
            queues[number] = [method_frame(number, channel_open())]
        # Items go to a channel three times in four, else to channel 0 (a heartbeat or
        # a connection method), when each is possible.
        on_zero = zero_methods is not None or heartbeats
        for _ in range(draw(st.integers(0, max_items)) if numbers or on_zero else 0):
            to_zero = on_zero and (not numbers or draw(st.integers(0, 3)) == 0)
            number = 0 if to_zero else draw(st.sampled_from(numbers))
            if number == 0:
                if zero_methods is None or (heartbeats and draw(st.booleans())):
                    queues[0].append(HeartbeatFrame().encode())
                else:
                    queues[0].append(method_frame(0, draw(zero_methods)))
                continue
            if channel_methods is None:
                continue
            method = draw(channel_methods)
            if not method.CONTENT:
                queues[number].append(method_frame(number, method))
                continue
            props = draw(properties(method.CLASS_ID, spec_module=module, tables=stream_tables))
            if len(props.encode()) + 12 > chunk:
                props = type(props)()
            method_frame(number, method)  # the size check
            body = draw(bodies)
            queues[number] += (f.encode() for f in _split(number, method, props, body, chunk))
        for number in numbers:
            if draw(st.booleans()):  # the channel ends here: nothing follows its Close
                close_channel = names["channel.close"](**draw(channel_close))
                queues[number].append(method_frame(number, close_channel))
        pending = [queue[::-1] for queue in queues.values() if queue]
        while pending:
            index = draw(st.integers(0, len(pending) - 1))
            out += pending[index].pop()
            if not pending[index]:
                del pending[index]
        if close or (close is None and draw(st.booleans())):
            out += method_frame(0, names["connection.close"](**draw(connection_close)))
        return bytes(out)

    return frame_streams()


# ---------------------------------------------------------------------------------------
# Mutations

MUTATIONS: tuple[str, ...] = (
    "bit-flip",
    "byte",
    "truncate",
    "delete",
    "insert",
    "length",
    "payload-int",
    "frame-end",
    "channel",
    "type",
    "splice",
    "duplicate",
    "drop",
    "swap",
)
"""The mutation operators, by name: byte-level (``bit-flip``, ``byte``: one byte set to
a value that means something in AMQP, ``truncate``, ``delete``/``insert`` a few bytes)
and frame-level (``length``: the frame's size field; ``payload-int``: 1, 2, 4 or 8
bytes inside a payload, where string, table and body-size lengths live; ``frame-end``;
``channel``; ``type``; ``splice``: a frame of another stream inserted or substituted;
``duplicate``, ``drop`` and ``swap`` of whole frames)."""

Choose = Callable[[int], int]
"""``choose(n)`` returns an int in ``range(n)``: a Hypothesis draw or ``Random.randrange``."""

_INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x03, 0x08, 0x41, 0x7F, 0x80, 0xCE, 0xFF)
_INTERESTING_SIZES = (
    0,
    1,
    4,
    7,
    8,
    12,
    14,
    255,
    256,
    4087,
    4088,
    4089,
    131064,
    131065,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
)
_INTERESTING_TYPES = (0, 1, 2, 3, 4, 8, 0x41, 0xCE, 0xFF)


def _frame_spans(data: bytes | bytearray) -> list[tuple[int, int]]:
    """Where the frames of a valid stream are: ``(start, end)`` pairs, the protocol
    header first if there is one. The walk stops at the first thing that is not a frame
    (size field and frame-end octet disagree)."""
    spans: list[tuple[int, int]] = []
    size = len(data)
    off = 0
    if data[:4] == b"AMQP" and size >= 8:
        spans.append((0, 8))
        off = 8
    while size - off >= 8:
        end = off + 7 + int.from_bytes(data[off + 3 : off + 7], "big")
        if end >= size or data[end] != 0xCE:
            break
        spans.append((off, end + 1))
        off = end + 1
    return spans


def _pick(choose: Choose, options: Sequence[int]) -> int:
    return options[choose(len(options))]


def _mutate_once(data: bytes, kind: str, choose: Choose, donor: Callable[[], bytes]) -> bytes:
    """``data`` with one mutation of ``kind`` applied (a bit flip when ``kind`` needs a
    frame and there is none)."""
    size = len(data)
    if size == 0:
        return bytes([choose(256)])
    buf = bytearray(data)
    if kind in ("bit-flip", "byte", "truncate", "delete", "insert"):
        at = choose(size)
        if kind == "byte":
            value = choose(len(_INTERESTING_BYTES) + 256)
            buf[at] = _INTERESTING_BYTES[value] if value < len(_INTERESTING_BYTES) else value - 10
        elif kind == "truncate":
            del buf[at:]
        elif kind == "delete":
            del buf[at : at + 1 + choose(16)]
        elif kind == "insert":
            buf[at:at] = bytes(choose(256) for _ in range(1 + choose(16)))
        else:
            buf[at] ^= 1 << choose(8)
        return bytes(buf)
    spans = _frame_spans(data)
    has_header = data[:4] == b"AMQP" and bool(spans)
    frames = spans[1:] if has_header else spans
    if kind in ("length", "payload-int", "frame-end", "channel", "type") and not frames:
        return _mutate_once(data, "bit-flip", choose, donor)
    if kind in ("splice", "duplicate", "drop", "swap") and not spans:
        return _mutate_once(data, "bit-flip", choose, donor)
    if kind == "splice":
        other = donor()
        pieces = _frame_spans(other) or [(0, len(other))]
        start, end = pieces[choose(len(pieces))]
        piece = other[start:end]
        if choose(2):  # substitute a frame of ours
            at, stop = spans[choose(len(spans))]
        else:  # insert between two frames
            at = stop = _pick(choose, [s for s, _ in spans] + [spans[-1][1]])
        buf[at:stop] = piece
        return bytes(buf)
    if kind in ("duplicate", "drop", "swap"):
        index = choose(len(spans))
        start, end = spans[index]
        if kind == "duplicate":
            buf[end:end] = data[start:end]
        elif kind == "drop":
            del buf[start:end]
        elif index + 1 < len(spans):
            _, after = spans[index + 1]
            buf[start:after] = data[end:after] + data[start:end]
        return bytes(buf)
    start, end = frames[choose(len(frames))]
    payload = end - start - 8
    if kind == "length":
        options = (payload - 1, payload + 1, payload + 1 + choose(64), choose(2**32))
        new = _pick(choose, [*_INTERESTING_SIZES, *(n for n in options if 0 <= n < 2**32)])
        buf[start + 3 : start + 7] = new.to_bytes(4, "big")
    elif kind == "frame-end":
        value = choose(255)
        buf[end - 1] = value if value < 0xCE else value + 1
    elif kind == "channel":
        old = int.from_bytes(data[start + 1 : start + 3], "big")
        new = _pick(choose, (0, 1, (old + 1) & 0xFFFF, (old - 1) & 0xFFFF, 0xFFFF, choose(65536)))
        buf[start + 1 : start + 3] = new.to_bytes(2, "big")
    elif kind == "type":
        buf[start] = _pick(choose, (*_INTERESTING_TYPES, choose(256)))
    else:  # payload-int
        if payload == 0:
            return _mutate_once(data, "length", choose, donor)
        at = start + 7 + choose(payload)
        width = _pick(choose, [w for w in (1, 2, 4, 8) if at + w <= end - 1])
        top = 2 ** (8 * width) - 1
        value = _pick(choose, (0, 1, top, top >> 1, (top >> 1) + 1, choose(17), choose(top + 1)))
        buf[at : at + width] = value.to_bytes(width, "big")
    return bytes(buf)


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(kinds))
    unknown = sorted(set(chosen) - set(MUTATIONS))
    if unknown or not chosen:
        raise InvalidArgument(f"mutation kinds {unknown or chosen!r}: expected some of {MUTATIONS}")
    return chosen


def mutate(
    data: bytes,
    rng: _random.Random,
    *,
    count: int = 1,
    donors: Sequence[bytes] = (),
    kinds: Iterable[str] = MUTATIONS,
) -> bytes:
    """``data`` with ``count`` mutations drawn by ``rng``: the fast path for long runs.

    Needs no Hypothesis machinery per case (this module still imports Hypothesis).
    ``splice`` takes its frame from one of ``donors`` (default: ``data`` itself).
    """
    chosen = _check_kinds(kinds)

    def donor() -> bytes:
        return donors[rng.randrange(len(donors))] if donors else data

    for _ in range(count):
        data = _mutate_once(data, chosen[rng.randrange(len(chosen))], rng.randrange, donor)
    return data


def mutations(
    streams: st.SearchStrategy[bytes],
    *,
    max_mutations: int = 3,
    donors: st.SearchStrategy[bytes] | None = None,
    kinds: Iterable[str] = MUTATIONS,
) -> st.SearchStrategy[bytes]:
    """Streams drawn from ``streams`` with 1 to ``max_mutations`` mutations (see
    :data:`MUTATIONS`) applied in turn. ``splice`` takes a frame from a stream drawn
    from ``donors`` (default: ``streams`` again). Point it at anything that yields
    valid bytes: :func:`frame_streams`, recorded traffic (``st.sampled_from(captures)``),
    :func:`messages` encoded. Shrinking heads for fewer, earlier, smaller edits."""
    if max_mutations < 1:
        raise InvalidArgument(f"max_mutations={max_mutations} must be at least 1")
    chosen = _check_kinds(kinds)
    others = streams if donors is None else donors

    @st.composite
    def mutations(draw: st.DrawFn) -> bytes:
        data = draw(streams)

        def choose(n: int) -> int:
            return draw(st.integers(0, n - 1))

        def donor() -> bytes:
            return draw(others)

        for _ in range(draw(st.integers(1, max_mutations))):
            data = _mutate_once(data, chosen[choose(len(chosen))], choose, donor)
        return data

    return mutations()


def mutated_streams(
    role: str = "client", *, max_mutations: int = 3, **stream_options: Any
) -> st.SearchStrategy[bytes]:
    """:func:`frame_streams` of ``role`` (keyword options passed on) with mutations:
    ``mutations(frame_streams(role, ...), max_mutations=...)``."""
    return mutations(frame_streams(role, **stream_options), max_mutations=max_mutations)
