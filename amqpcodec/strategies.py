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
import secrets
import types
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

try:
    from hypothesis import assume
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument
except ImportError as exc:  # pragma: no cover - the test environment has Hypothesis
    raise ImportError(
        "amqpcodec.strategies needs Hypothesis: pip install 'amqpcodec[hypothesis]'",
        name=exc.name,
    ) from exc

from . import spec as _default_spec
from ._base import Method, Properties
from ._content import Message
from ._errors import AMQPError
from ._frames import (
    FRAME_OVERHEAD,
    BodyFrame,
    Frame,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
    decode_frame,
)
from ._refusals import EXCHANGE_TYPES, RabbitMQRules, Refusal, has_non_finite
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
    "Mutant",
    "Mutation",
    "RabbitMQRules",
    "Refusal",
    "Stream",
    "StreamFrame",
    "after_handshake",
    "field_arrays",
    "field_tables",
    "field_values",
    "frame_streams",
    "frames",
    "handshake_end",
    "handshakes",
    "messages",
    "method_arguments",
    "methods",
    "mutants",
    "mutate",
    "mutated_streams",
    "mutations",
    "properties",
    "streams",
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
    sender: str | None = None,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[Method]:
    """Method instances with drawn arguments.

    ``classes`` keeps the methods of these classes (names such as ``"basic"`` or ids
    such as ``60``); ``content`` keeps the methods that do (True) or do not (False)
    carry content; ``sender`` keeps what a ``"client"`` or a ``"server"`` may send,
    the same word as in :func:`streams`. ``direction`` is the deprecated spelling that
    named the receiver instead: ``direction="server"`` is ``sender="client"``.
    """
    if direction is not None:
        warnings.warn(
            "methods(direction=) is deprecated: say sender= (direction named the receiver;"
            " direction='server' is sender='client')",
            DeprecationWarning,
            stacklevel=2,
        )
        if direction not in _ROLES:
            raise InvalidArgument(f"direction={direction!r}: expected 'client', 'server' or None")
        if sender is not None and sender == direction:
            raise InvalidArgument(f"sender={sender!r} and direction={direction!r} disagree")
        sender = _peer(direction)
    if sender is not None and sender not in _ROLES:
        raise InvalidArgument(f"sender={sender!r}: expected 'client', 'server' or None")
    receiver = None if sender is None else _peer(sender)
    wanted = (
        None
        if classes is None
        else frozenset(c.lower() if isinstance(c, str) else c for c in classes)
    )
    return _methods(wanted, content, receiver, spec_module or _default_spec, tables)


@functools.lru_cache(maxsize=256)
def _methods(
    wanted: frozenset[str | int] | None,
    content: bool | None,
    receiver: str | None,
    module: types.ModuleType,
    tables: st.SearchStrategy[FieldTable] | None,
) -> st.SearchStrategy[Method]:
    chosen = [
        method_class
        for method_class in module.METHODS.values()
        if (
            wanted is None or method_class.CLASS_ID in wanted or _class_name(method_class) in wanted
        )
        and (content is None or content == method_class.CONTENT)
        and (receiver is None or receiver in method_class.CHASSIS)
    ]
    if not chosen:
        sender = None if receiver is None else _peer(receiver)
        raise InvalidArgument(
            f"no method matches classes={wanted!r}, content={content!r}, sender={sender!r}"
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


@dataclass(frozen=True, slots=True)
class StreamFrame:
    """One frame of a :class:`Stream`: the frame, its bytes and where they sit.

    ``frame`` is None for raw bytes that :func:`after_handshake` was given and that are
    not one whole frame. ``refusal`` is what a broker following RabbitMQ's rules is
    expected to answer this frame with (a :class:`Refusal`: reply code, reason, channel
    or connection), None when it accepts it; it is only judged in client streams.
    """

    frame: Frame | None
    data: bytes
    start: int
    end: int
    handshake: bool
    refusal: Refusal | None


@dataclass(frozen=True, eq=False)
class Stream:
    """A drawn stream as a structured value: its frames, their byte boundaries, where
    the handshake ends, and per frame the refusal a broker following RabbitMQ's rules
    is expected to answer with. ``encode()`` gives the bytes.

    ``declared`` lists the ``("queue" | "exchange", name)`` pairs the stream declares
    (in order), so a harness can delete them afterwards.
    """

    sender: str
    frames: tuple[StreamFrame, ...]
    handshake_end: int
    declared: tuple[tuple[str, str], ...] = ()

    @functools.cached_property
    def _data(self) -> bytes:
        return b"".join(item.data for item in self.frames)

    def encode(self) -> bytes:
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    @property
    def boundaries(self) -> tuple[int, ...]:
        """The offset where each frame starts, then the stream's length."""
        return (*(item.start for item in self.frames), len(self._data))

    @property
    def refusals(self) -> tuple[StreamFrame, ...]:
        """The frames a broker following RabbitMQ's rules refuses, in order."""
        return tuple(item for item in self.frames if item.refusal is not None)

    @property
    def refusal(self) -> Refusal | None:
        """The first refusal expected (None: the broker accepts the whole stream)."""
        return next((item.refusal for item in self.frames if item.refusal), None)

    def __repr__(self) -> str:
        return (
            f"Stream({self.sender!r}, {len(self.frames)} frames, {len(self._data)} bytes, "
            f"handshake_end={self.handshake_end}, refusal={self.refusal})"
        )


def _make_stream(
    sender: str,
    handshake: Sequence[Frame],
    rest: Sequence[Frame | bytes],
    username: str | None,
) -> Stream:
    """A :class:`Stream` of ``handshake`` then ``rest``, judged by :class:`RabbitMQRules`."""
    rules = RabbitMQRules(username) if sender == "client" else None
    items: list[StreamFrame] = []
    off = 0
    end = 0
    for index, frame in enumerate((*handshake, *rest)):
        in_handshake = index < len(handshake)
        if isinstance(frame, bytes):
            data, frame_value = frame, _whole_frame(frame)
        else:
            data, frame_value = frame.encode(), frame
        refusal = None
        if rules is not None and frame_value is not None:
            refusal = rules.check(frame_value)
        items.append(StreamFrame(frame_value, data, off, off + len(data), in_handshake, refusal))
        off += len(data)
        if in_handshake:
            end = off
    declared = tuple(rules.declared) if rules is not None else ()
    return Stream(sender, tuple(items), end, declared)


def _whole_frame(data: bytes) -> Frame | None:
    """The frame ``data`` is, exactly; None when it is anything else."""
    try:
        decoded = decode_frame(data)
    except AMQPError:
        return None
    return decoded[0] if decoded is not None and decoded[1] == len(data) else None


_SENDER_ALIASES = {"client": "client", "server": "server"}


def _sender(sender: str | None, role: str | None, default: str = "client") -> str:
    """The ``sender`` argument, taking the deprecated ``role=`` spelling too."""
    if role is not None:
        warnings.warn(
            "role= is deprecated: say sender= (the side that sends the stream)",
            DeprecationWarning,
            stacklevel=3,
        )
        if sender is not None and sender != role:
            raise InvalidArgument(f"sender={sender!r} and role={role!r} disagree")
        sender = role
    chosen = default if sender is None else sender
    _peer(chosen)
    return chosen


def _given(draw: st.DrawFn, value: Any, default: st.SearchStrategy[Any]) -> Any:
    """``value`` itself, a draw from it when it is a strategy, or a draw from ``default``."""
    if value is None:
        return draw(default)
    if isinstance(value, st.SearchStrategy):
        return draw(value)
    return value


@dataclass(frozen=True)
class _Login:
    """The handshake's values: a value, a strategy, or None (drawn)."""

    username: Any = None
    password: Any = None
    virtual_host: Any = None
    client_properties: Any = None
    heartbeat: Any = None


def _check_login(sender: str, login: _Login) -> None:
    if sender == "server" and any(
        value is not None
        for value in (login.username, login.password, login.virtual_host, login.client_properties)
    ):
        raise InvalidArgument(
            "username, password, virtual_host and client_properties belong to client streams"
        )
    if isinstance(login.heartbeat, int) and not 0 <= login.heartbeat <= 0xFFFF:
        raise InvalidArgument(f"heartbeat={login.heartbeat} must be between 0 and 65535")


def _draw_handshake(
    draw: st.DrawFn,
    sender: str,
    names: dict[str, Any],
    login: _Login,
    limit: int,
    top: int,
    stream_tables: st.SearchStrategy[FieldTable],
) -> tuple[list[Frame], str | None]:
    """The handshake frames ``sender`` sends, and the username it logs in with."""
    heartbeat = _given(draw, login.heartbeat, st.integers(0, 600))
    if sender == "server":
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
            heartbeat=heartbeat,
        )
        opening = [start, tune, names["connection.open-ok"]()]
        return [MethodFrame(0, method) for method in opening], None
    user = _given(draw, login.username, _no_nul(16))
    password = _given(draw, login.password, _no_nul(16))
    if draw(st.booleans()):
        mechanism = "PLAIN"
        response = b"\0" + user.encode() + b"\0" + password.encode()
    else:
        mechanism = "AMQPLAIN"
        response = encode_table({"LOGIN": user, "PASSWORD": password})[4:]
    start_ok = names["connection.start-ok"](
        client_properties=_given(draw, login.client_properties, stream_tables),
        mechanism=mechanism,
        response=response,
        locale="en_US",
    )
    tune_ok = names["connection.tune-ok"](
        channel_max=draw(st.integers(top, max(top, _DEFAULT_CHANNEL_MAX))),
        frame_max=limit,
        heartbeat=heartbeat,
    )
    virtual_host = _given(draw, login.virtual_host, st.one_of(st.just("/"), _shortstrs(32)))
    opening = [start_ok, tune_ok, names["connection.open"](virtual_host=virtual_host)]
    return [ProtocolHeader(), *(MethodFrame(0, m) for m in opening)], user


_NAMED_FIELDS = ("queue", "exchange", "destination", "source")


def _prefixed(method: Method, prefix: str) -> Method:
    """``method`` with ``prefix`` in front of every queue and exchange name it gives
    (not the default exchange's empty name), and a queue it declares exclusive."""
    fields = method.FIELDS
    if not any(name in fields for name in _NAMED_FIELDS):
        return method
    arguments = {name: getattr(method, name) for name in fields}
    for name in _NAMED_FIELDS:
        value = arguments.get(name)
        if isinstance(value, str) and value and not value.startswith(prefix):
            arguments[name] = _clip_utf8(prefix + value)
    if method.NAME == "queue.declare" and not arguments["passive"]:
        arguments["exclusive"] = True
    renamed: Method = type(method)(**arguments)
    return renamed


def _check_prefix(prefix: str | None) -> None:
    if prefix is not None and (not prefix or len(prefix.encode()) > 64):
        raise InvalidArgument(f"name_prefix={prefix!r} must be 1 to 64 UTF-8 bytes")


def frame_streams(
    sender: str | None = None,
    *,
    role: str | None = None,
    **options: Any,
) -> st.SearchStrategy[bytes]:
    """The bytes of :func:`streams` (same arguments): ``streams(...).map(Stream.encode)``.

    ``role=`` is the deprecated spelling of ``sender``.
    """
    chosen = _sender(sender, role)
    return streams(chosen, **options).map(Stream.encode)


def streams(
    sender: str = "client",
    *,
    frame_max: int | None = None,
    heartbeat: int | st.SearchStrategy[int] | None = None,
    username: str | st.SearchStrategy[str] | None = None,
    password: str | st.SearchStrategy[str] | None = None,
    virtual_host: str | st.SearchStrategy[str] | None = None,
    client_properties: Any = None,
    max_channels: int = 3,
    channels: st.SearchStrategy[int] | None = None,
    max_items: int = 12,
    max_body_size: int | None = None,
    heartbeats: bool = True,
    close: bool | None = None,
    responses: bool = True,
    accepted_by: str | None = None,
    name_prefix: str | None = None,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[Stream]:
    """Whole streams that ``sender`` (``"client"`` or ``"server"``) could send, start to
    end, as :class:`Stream` values (``.encode()`` gives the bytes).

    A client stream opens with the protocol header, Connection.StartOk (PLAIN or
    AMQPLAIN), TuneOk and Open; a server stream with Connection.Start (offering PLAIN
    and AMQPLAIN, version 0-9), Tune and OpenOk. The handshake's values are drawn unless
    given (each a value or a strategy): ``username``, ``password``, ``virtual_host`` and
    ``client_properties`` (e.g. ``{"capabilities": {"authentication_failure_close":
    True}}``) for a client; ``heartbeat`` for both (TuneOk or Tune).

    Then up to ``max_channels`` channels are opened (a client sends Channel.Open, a
    server the Open-Ok of the client's; numbers from ``channels``, default 1-2047) and up
    to ``max_items`` methods that ``sender`` sends (``methods(sender=...)``), content
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
    justify. ``accepted_by="rabbitmq"`` draws only what RabbitMQ accepts (client streams;
    the login defaults to guest/guest on ``/``): declarations, bindings, publishes,
    consumers, gets, qos, transactions and confirms that refer to what the stream
    declared, so refusals are not noise. ``name_prefix`` puts a prefix in front of every
    queue and exchange name a client stream gives (queues it declares are exclusive);
    :attr:`Stream.declared` lists what to delete afterwards. Sizes stay bounded: bodies up
    to ``max_body_size`` bytes (default: three body frames), tables at most two levels.
    """
    _peer(sender)
    if max_channels < 0 or max_items < 0:
        raise InvalidArgument("max_channels and max_items must be at least 0")
    if frame_max is not None:
        _check_frame_max(frame_max)
        if frame_max == 0:
            raise InvalidArgument("frame_max=0: a stream needs a frame_max to split content at")
    if accepted_by not in (None, "rabbitmq"):
        raise InvalidArgument(f"accepted_by={accepted_by!r}: expected 'rabbitmq' or None")
    if accepted_by is not None and sender != "client":
        raise InvalidArgument("accepted_by= judges client streams only")
    if name_prefix is not None and sender != "client":
        raise InvalidArgument("name_prefix= applies to client streams only")
    _check_prefix(name_prefix)
    login = _Login(username, password, virtual_host, client_properties, heartbeat)
    _check_login(sender, login)
    if accepted_by is not None:
        login = _Login(
            "guest" if username is None else username,
            "guest" if password is None else password,
            "/" if virtual_host is None else virtual_host,
            client_properties,
            heartbeat,
        )
    module = _default_spec if spec_module is None else spec_module
    names = _require(module, _HANDSHAKE | _CHANNEL_LIFECYCLE)
    stream_tables = field_tables(max_depth=2, max_size=3) if tables is None else tables
    channel_numbers = st.integers(1, _DEFAULT_CHANNEL_MAX) if channels is None else channels
    on_zero, on_channels = _body_methods(module, sender, responses)
    zero_methods = _drawn_methods(on_zero, stream_tables) if on_zero else None
    channel_methods = _drawn_methods(on_channels, stream_tables) if on_channels else None
    connection_close = method_arguments(names["connection.close"], tables=stream_tables)
    channel_close = method_arguments(names["channel.close"], tables=stream_tables)
    if accepted_by is not None:
        _require(module, _ACCEPTED_NEEDS)
    prefix = name_prefix

    @st.composite
    def streams(draw: st.DrawFn) -> Stream:
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
        handshake, user = _draw_handshake(draw, sender, names, login, limit, top, stream_tables)

        def method_frame(channel: int, method: Method) -> MethodFrame:
            if prefix is not None:
                method = _prefixed(method, prefix)
            if len(method.encode()) > chunk:  # too big for the stream's frame_max: draw again
                assume(False)
            return MethodFrame(channel, method)

        channel_open = names["channel.open" if sender == "client" else "channel.open-ok"]
        if accepted_by is not None:
            accepted = _accepted_items(
                draw, module, numbers, max_items, heartbeats, user, prefix, bodies, chunk
            )
            for number in numbers:
                if draw(st.booleans()):
                    accepted.append(MethodFrame(number, names["channel.close"](200, "", 0, 0)))
            if close or (close is None and draw(st.booleans())):
                accepted.append(MethodFrame(0, names["connection.close"](200, "", 0, 0)))
            return _make_stream(sender, handshake, accepted, user)

        # One queue of frames per channel (channel 0 first), merged in a drawn order.
        queues: dict[int, list[Frame]] = {0: []}
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
                    queues[0].append(HeartbeatFrame())
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
            method = method_frame(number, method).method  # the size check, the prefix
            body = draw(bodies)
            queues[number] += _split(number, method, props, body, chunk)
        for number in numbers:
            if draw(st.booleans()):  # the channel ends here: nothing follows its Close
                close_channel = names["channel.close"](**draw(channel_close))
                queues[number].append(method_frame(number, close_channel))
        pending = [queue[::-1] for queue in queues.values() if queue]
        rest: list[Frame | bytes] = []
        while pending:
            index = draw(st.integers(0, len(pending) - 1))
            rest.append(pending[index].pop())
            if not pending[index]:
                del pending[index]
        if close or (close is None and draw(st.booleans())):
            rest.append(method_frame(0, names["connection.close"](**draw(connection_close))))
        return _make_stream(sender, handshake, rest, user)

    return streams()


def handshakes(
    sender: str = "client",
    *,
    channels: int = 0,
    frame_max: int | None = None,
    heartbeat: int | st.SearchStrategy[int] | None = None,
    username: str | st.SearchStrategy[str] | None = None,
    password: str | st.SearchStrategy[str] | None = None,
    virtual_host: str | st.SearchStrategy[str] | None = None,
    client_properties: Any = None,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[Stream]:
    """A valid handshake of ``sender`` (as in :func:`streams`), then channels 1 to
    ``channels`` opened (Channel.Open from a client, Open-Ok from a server). The whole
    of it counts as the handshake (:attr:`Stream.handshake_end` is its length)."""
    return after_handshake(
        None,
        sender,
        channels=channels,
        frame_max=frame_max,
        heartbeat=heartbeat,
        username=username,
        password=password,
        virtual_host=virtual_host,
        client_properties=client_properties,
        spec_module=spec_module,
        tables=tables,
    )


def after_handshake(
    items: st.SearchStrategy[Any] | None,
    sender: str = "client",
    *,
    channels: int = 1,
    min_items: int = 1,
    max_items: int = 8,
    frame_max: int | None = None,
    heartbeat: int | st.SearchStrategy[int] | None = None,
    username: str | st.SearchStrategy[str] | None = None,
    password: str | st.SearchStrategy[str] | None = None,
    virtual_host: str | st.SearchStrategy[str] | None = None,
    client_properties: Any = None,
    name_prefix: str | None = None,
    spec_module: types.ModuleType | None = None,
    tables: st.SearchStrategy[FieldTable] | None = None,
) -> st.SearchStrategy[Stream]:
    """ "A valid handshake, then X": the handshake of ``sender`` with its values (see
    :func:`streams`), channels 1 to ``channels`` opened, then ``min_items`` to
    ``max_items`` items drawn from ``items``, in order, as a :class:`Stream`.

    An item may be a :class:`~amqpcodec.Method` (sent on channel 0 when it belongs to
    the connection class, else on one of the open channels), a frame, a
    :class:`MessageFrames`, raw ``bytes`` (sent as they are: a mutated frame, garbage),
    or a list or tuple of those (``name_prefix`` applies to methods and method frames).
    Everything after the channels' Open is what :func:`mutations` changes when it spares
    the handshake.
    """
    _peer(sender)
    if channels < 0 or not 0 <= min_items <= max_items:
        raise InvalidArgument("channels must be at least 0 and 0 <= min_items <= max_items")
    if frame_max is not None:
        _check_frame_max(frame_max)
        if frame_max == 0:
            raise InvalidArgument("frame_max=0: a stream needs a frame_max")
    if name_prefix is not None and sender != "client":
        raise InvalidArgument("name_prefix= applies to client streams only")
    _check_prefix(name_prefix)
    login = _Login(username, password, virtual_host, client_properties, heartbeat)
    _check_login(sender, login)
    module = _default_spec if spec_module is None else spec_module
    names = _require(module, _HANDSHAKE | _CHANNEL_LIFECYCLE)
    stream_tables = field_tables(max_depth=2, max_size=3) if tables is None else tables
    connection_class = _connection_class(module)
    numbers = list(range(1, channels + 1))
    channel_open = names["channel.open" if sender == "client" else "channel.open-ok"]

    def placed(item: Any, draw: st.DrawFn) -> list[Frame | bytes]:
        if isinstance(item, list | tuple):
            return [part for element in item for part in placed(element, draw)]
        if isinstance(item, bytes | bytearray | memoryview):
            return [bytes(item)]
        if isinstance(item, MessageFrames):
            return list(item.frames)
        if isinstance(item, Method):
            if name_prefix is not None:
                item = _prefixed(item, name_prefix)
            if connection_class == item.CLASS_ID or not numbers:
                return [MethodFrame(0, item)]
            return [MethodFrame(draw(st.sampled_from(numbers)), item)]
        if isinstance(item, MethodFrame) and name_prefix is not None:
            return [MethodFrame(item.channel, _prefixed(item.method, name_prefix))]
        if isinstance(item, Frame):
            return [item]
        raise InvalidArgument(f"after_handshake() cannot send {type(item).__name__}: {item!r}")

    @st.composite
    def after_handshake(draw: st.DrawFn) -> Stream:
        limit = draw(_FRAME_MAXES) if frame_max is None else frame_max
        top = max(numbers, default=1)
        handshake, user = _draw_handshake(draw, sender, names, login, limit, top, stream_tables)
        handshake += [MethodFrame(number, channel_open()) for number in numbers]
        rest: list[Frame | bytes] = []
        if items is not None:
            for _ in range(draw(st.integers(min_items, max_items))):
                rest += placed(draw(items), draw)
        return _make_stream(sender, handshake, rest, user)

    return after_handshake()


# ---------------------------------------------------------------------------------------
# What RabbitMQ accepts (streams(accepted_by="rabbitmq"))

_ACCEPTED_NEEDS = frozenset(
    (
        "queue.declare",
        "queue.bind",
        "queue.unbind",
        "queue.purge",
        "queue.delete",
        "exchange.declare",
        "exchange.delete",
        "exchange.bind",
        "exchange.unbind",
        "basic.publish",
        "basic.qos",
        "basic.consume",
        "basic.cancel",
        "basic.get",
        "basic.recover",
        "basic.ack",
        "basic.nack",
        "channel.flow",
        "tx.select",
        "tx.commit",
        "tx.rollback",
        "confirm.select",
    )
)
_ACCEPTED_SOURCES = ("amq.direct", "amq.fanout", "amq.topic", "amq.headers")
_ACCEPTED_PREFIX = "amqpcodec-fuzz."
_routing_keys = _shortstrs(24)


def _accepted_items(
    draw: st.DrawFn,
    module: types.ModuleType,
    numbers: Sequence[int],
    max_items: int,
    heartbeats: bool,
    user: str | None,
    prefix: str | None,
    bodies: st.SearchStrategy[bytes],
    chunk: int,
) -> list[Frame | bytes]:
    """Frames after the handshake that RabbitMQ accepts, one operation at a time, drawn
    against a :class:`RabbitMQRules` model of what the stream did so far."""
    by_name = _by_name(module)
    rules = RabbitMQRules(user)
    rules.open = True
    out: list[Frame | bytes] = []
    for number in numbers:
        opening = MethodFrame(number, by_name["channel.open"]())
        rules.check(opening)
        out.append(opening)
    if not numbers:
        return out
    # A token keeps exclusive queue names apart across connections. Not drawn:
    # Hypothesis repeats its own draws across examples on purpose, and two connections
    # declaring the same exclusive queue would refuse each other (405).
    token = secrets.token_hex(6)
    base = f"{_ACCEPTED_PREFIX if prefix is None else prefix}{token}."
    serial = iter(range(1, 1 << 30))
    # The broker runs each channel on its own, so an operation refers only to what its
    # own channel declared (or to the predefined exchanges): the order holds there.
    owned: dict[int, tuple[set[str], set[str]]] = {n: (set(), set()) for n in numbers}
    for _ in range(draw(st.integers(0, max_items))):
        if heartbeats and draw(st.integers(0, 7)) == 0:
            out.append(HeartbeatFrame())
            continue
        number = draw(st.sampled_from(numbers))
        channel = rules.channels[number]
        queues, exchanges = (sorted(names) for names in owned[number])
        frames = _accepted_operation(
            draw, by_name, channel, number, queues, exchanges, base, serial
        )
        if frames is None:
            frames = _accepted_publish(
                draw, by_name, rules, number, queues, exchanges, bodies, chunk, module
            )
        for frame in frames:
            refusal = rules.check(frame)
            if refusal is not None:  # the generator and the model disagree: a bug here
                raise AssertionError(f"accepted_by='rabbitmq' drew a refused {frame!r}: {refusal}")
            out.append(frame)
            if isinstance(frame, MethodFrame):
                _own(owned[number], frame.method)
    return out


def _own(owned: tuple[set[str], set[str]], method: Any) -> None:
    """Record what ``method`` declared or deleted on its channel."""
    queues, exchanges = owned
    name = method.NAME
    if name == "queue.declare" and not method.passive:
        queues.add(method.queue)
    elif name == "queue.delete":
        queues.discard(method.queue)
    elif name == "exchange.declare" and not method.passive:
        exchanges.add(method.exchange)
    elif name == "exchange.delete":
        exchanges.discard(method.exchange)


def _accepted_operation(
    draw: st.DrawFn,
    by_name: dict[str, Any],
    channel: Any,
    number: int,
    queues: list[str],
    mine: list[str],
    base: str,
    serial: Any,
) -> list[Frame] | None:
    """One operation other than a publish (None: publish instead)."""
    sources = [*_ACCEPTED_SOURCES, *mine]
    options = ["publish", "declare-queue", "declare-exchange", "qos", "recover", "flow"]
    if queues:
        options += ["passive-queue", "get", "consume", "purge", "delete-queue", "bind-queue"]
    if mine:
        options += ["passive-exchange", "bind-exchange", "delete-exchange"]
    if channel.consumer_tags:
        options.append("cancel")
    options.append("tx-select" if not channel.confirming else "ack")
    if channel.transactional:
        options += ["commit", "rollback"]
    else:
        options.append("confirm")
    choice = draw(st.sampled_from(options))
    no_wait = draw(st.booleans())
    m: Method
    if choice == "publish":
        return None
    if choice == "declare-queue":
        name = f"{base}q{next(serial)}"
        ttl = draw(st.one_of(st.none(), st.integers(0, 2**31 - 1)))
        arguments: dict[str, Any] = {} if ttl is None else {"x-message-ttl": ttl}
        m = by_name["queue.declare"](
            queue=name, exclusive=True, no_wait=no_wait, arguments=arguments
        )
    elif choice == "declare-exchange":
        name = f"{base}x{next(serial)}"
        kind = draw(st.sampled_from(EXCHANGE_TYPES))
        m = by_name["exchange.declare"](exchange=name, type=kind, no_wait=no_wait)
    elif choice == "passive-queue":
        m = by_name["queue.declare"](queue=draw(st.sampled_from(queues)), passive=True)
    elif choice == "passive-exchange":
        m = by_name["exchange.declare"](exchange=draw(st.sampled_from(mine)), passive=True)
    elif choice == "qos":
        m = by_name["basic.qos"](0, draw(st.integers(0, 0xFFFF)), draw(st.booleans()))
    elif choice == "recover":
        m = by_name["basic.recover"](requeue=True)
    elif choice == "flow":
        m = by_name["channel.flow"](active=True)
    elif choice == "get":
        m = by_name["basic.get"](queue=draw(st.sampled_from(queues)), no_ack=True)
    elif choice == "consume":
        tag = draw(st.sampled_from(("", f"ctag{next(serial)}")))
        m = by_name["basic.consume"](
            queue=draw(st.sampled_from(queues)),
            consumer_tag=tag,
            no_local=draw(st.booleans()),
            no_ack=True,
            no_wait=no_wait and bool(tag),
        )
    elif choice == "cancel":
        tag = draw(st.sampled_from(sorted(channel.consumer_tags)))
        m = by_name["basic.cancel"](consumer_tag=tag, no_wait=no_wait)
    elif choice == "purge":
        m = by_name["queue.purge"](queue=draw(st.sampled_from(queues)), no_wait=no_wait)
    elif choice == "delete-queue":
        m = by_name["queue.delete"](queue=draw(st.sampled_from(queues)), no_wait=no_wait)
    elif choice == "bind-queue" or choice == "unbind-queue":
        m = by_name["queue.unbind" if draw(st.booleans()) else "queue.bind"](
            queue=draw(st.sampled_from(queues)),
            exchange=draw(st.sampled_from(sources)),
            routing_key=draw(_routing_keys),
        )
    elif choice == "bind-exchange":
        m = by_name["exchange.unbind" if draw(st.booleans()) else "exchange.bind"](
            destination=draw(st.sampled_from(mine)),
            source=draw(st.sampled_from(sources)),
            routing_key=draw(_routing_keys),
            no_wait=no_wait,
        )
    elif choice == "delete-exchange":
        m = by_name["exchange.delete"](exchange=draw(st.sampled_from(mine)), no_wait=no_wait)
    elif choice == "tx-select":
        m = by_name["tx.select"]()
    elif choice == "commit":
        m = by_name["tx.commit"]()
    elif choice == "rollback":
        m = by_name["tx.rollback"]()
    elif choice == "confirm":
        m = by_name["confirm.select"](nowait=no_wait)
    else:  # "ack": every outstanding delivery (there are none: consumers do not ack)
        name = draw(st.sampled_from(("basic.ack", "basic.nack")))
        m = by_name[name](delivery_tag=0, multiple=True)
    return [MethodFrame(number, m)]


def _accepted_publish(
    draw: st.DrawFn,
    by_name: dict[str, Any],
    rules: RabbitMQRules,
    number: int,
    queues: list[str],
    mine: list[str],
    bodies: st.SearchStrategy[bytes],
    chunk: int,
    module: types.ModuleType,
) -> list[Frame]:
    exchange = draw(st.sampled_from(["", *_ACCEPTED_SOURCES, *mine]))
    keys = [draw(_routing_keys), *queues]
    publish = by_name["basic.publish"](
        exchange=exchange,
        routing_key=draw(st.sampled_from(keys)),
        mandatory=draw(st.booleans()),
    )
    props = draw(properties(60, spec_module=module, tables=field_tables(max_depth=2, max_size=3)))
    fixes: dict[str, Any] = {}
    if getattr(props, "expiration", None) is not None:
        fixes["expiration"] = str(draw(st.integers(0, 2**32 - 1)))
    if getattr(props, "user_id", None) is not None:
        fixes["user_id"] = rules.username
    if has_non_finite(getattr(props, "headers", None)):
        fixes["headers"] = None
    if getattr(props, "delivery_mode", None) not in (None, 1, 2):
        fixes["delivery_mode"] = draw(st.sampled_from((1, 2)))
    if fixes:
        props = type(props)(**{**{f: getattr(props, f) for f in props.FIELDS}, **fixes})
    if len(props.encode()) + 12 > chunk or len(publish.encode()) > chunk:
        props = type(props)()
    return list(_split(number, publish, props, draw(bodies), chunk))


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
    return _mutate_at(data, kind, choose, donor)[0]


def _mutate_at(
    data: bytes, kind: str, choose: Choose, donor: Callable[[], bytes]
) -> tuple[bytes, Mutation]:
    """``data`` with one mutation of ``kind`` applied, and what was done: the kind
    really applied (a bit flip when ``kind`` needs a frame and there is none) and the
    offset of the first byte it changed, inserted or removed."""
    size = len(data)
    if size == 0:
        return bytes([choose(256)]), Mutation("insert", 0)
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
        return bytes(buf), Mutation(kind, at)
    spans = _frame_spans(data)
    has_header = data[:4] == b"AMQP" and bool(spans)
    frames = spans[1:] if has_header else spans
    if kind in ("length", "payload-int", "frame-end", "channel", "type") and not frames:
        return _mutate_at(data, "bit-flip", choose, donor)
    if kind in ("splice", "duplicate", "drop", "swap") and not spans:
        return _mutate_at(data, "bit-flip", choose, donor)
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
        return bytes(buf), Mutation(kind, at)
    if kind in ("duplicate", "drop", "swap"):
        index = choose(len(spans))
        start, end = spans[index]
        if kind == "duplicate":
            buf[end:end] = data[start:end]
            return bytes(buf), Mutation(kind, end)
        if kind == "drop":
            del buf[start:end]
        elif index + 1 < len(spans):
            _, after = spans[index + 1]
            buf[start:after] = data[end:after] + data[start:end]
        return bytes(buf), Mutation(kind, start)
    start, end = frames[choose(len(frames))]
    payload = end - start - 8
    if kind == "length":
        options = (payload - 1, payload + 1, payload + 1 + choose(64), choose(2**32))
        new = _pick(choose, [*_INTERESTING_SIZES, *(n for n in options if 0 <= n < 2**32)])
        buf[start + 3 : start + 7] = new.to_bytes(4, "big")
        return bytes(buf), Mutation(kind, start + 3)
    if kind == "frame-end":
        value = choose(255)
        buf[end - 1] = value if value < 0xCE else value + 1
        return bytes(buf), Mutation(kind, end - 1)
    if kind == "channel":
        old = int.from_bytes(data[start + 1 : start + 3], "big")
        new = _pick(choose, (0, 1, (old + 1) & 0xFFFF, (old - 1) & 0xFFFF, 0xFFFF, choose(65536)))
        buf[start + 1 : start + 3] = new.to_bytes(2, "big")
        return bytes(buf), Mutation(kind, start + 1)
    if kind == "type":
        buf[start] = _pick(choose, (*_INTERESTING_TYPES, choose(256)))
        return bytes(buf), Mutation(kind, start)
    # payload-int
    if payload == 0:
        return _mutate_at(data, "length", choose, donor)
    at = start + 7 + choose(payload)
    width = _pick(choose, [w for w in (1, 2, 4, 8) if at + w <= end - 1])
    top = 2 ** (8 * width) - 1
    value = _pick(choose, (0, 1, top, top >> 1, (top >> 1) + 1, choose(17), choose(top + 1)))
    buf[at : at + width] = value.to_bytes(width, "big")
    return bytes(buf), Mutation(kind, at)


@dataclass(frozen=True, slots=True)
class Mutation:
    """One edit a mutation made: its kind (one of :data:`MUTATIONS`) and the offset
    of the first byte it changed, inserted or removed, in the stream as it was then."""

    kind: str
    offset: int

    def __str__(self) -> str:
        return f"{self.kind}@{self.offset}"


@dataclass(frozen=True, eq=False)
class Mutant:
    """A mutated stream: ``data`` (also ``encode()``), the :class:`Mutation` s that
    made it from ``original``, in order, and ``spared``: how many leading bytes
    (the handshake) no mutation touched."""

    data: bytes
    mutations: tuple[Mutation, ...]
    original: bytes
    spared: int = 0

    def encode(self) -> bytes:
        return self.data

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(m.kind for m in self.mutations)

    def __repr__(self) -> str:
        done = ", ".join(map(str, self.mutations))
        return f"Mutant({len(self.data)} bytes, [{done}], spared={self.spared})"


def handshake_end(data: bytes) -> int:
    """Where the handshake of a stream ends: the offset after Connection.Open (a
    client's stream) or Connection.Open-Ok (a server's), or 0 when the stream has
    neither among its leading whole frames."""
    for start, end in _frame_spans(data):
        if end - start >= 12 and data[start] == 1:
            index = int.from_bytes(data[start + 7 : start + 11], "big")
            if index in (0x000A0028, 0x000A0029):  # connection.open, connection.open-ok
                return end
    return 0


def _check_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(kinds))
    unknown = sorted(set(chosen) - set(MUTATIONS))
    if unknown or not chosen:
        raise InvalidArgument(f"mutation kinds {unknown or chosen!r}: expected some of {MUTATIONS}")
    return chosen


def _apply(
    data: bytes,
    spared: int,
    count: int,
    kinds: tuple[str, ...],
    choose: Choose,
    donor: Callable[[], bytes],
) -> Mutant:
    """``count`` mutations of ``data`` after its first ``spared`` bytes."""
    head, tail = data[:spared], data[spared:]
    done: list[Mutation] = []
    for _ in range(count):
        tail, mutation = _mutate_at(tail, kinds[choose(len(kinds))], choose, donor)
        done.append(Mutation(mutation.kind, mutation.offset + spared))
    return Mutant(head + tail, tuple(done), data, spared)


def mutate(
    data: bytes,
    rng: _random.Random,
    *,
    count: int = 1,
    donors: Sequence[bytes] = (),
    kinds: Iterable[str] = MUTATIONS,
    spare: int = 0,
) -> bytes:
    """``data`` with ``count`` mutations drawn by ``rng``: the fast path for long runs.

    Needs no Hypothesis machinery per case (this module still imports Hypothesis).
    ``splice`` takes its frame from one of ``donors`` (default: ``data`` itself).
    ``spare`` bytes at the start are left alone (``handshake_end(data)`` spares the
    handshake).
    """
    chosen = _check_kinds(kinds)

    def donor() -> bytes:
        return donors[rng.randrange(len(donors))] if donors else data

    return _apply(data, spare, count, chosen, rng.randrange, donor).data


def _stream_bytes(value: Any) -> tuple[bytes, int]:
    """(bytes, handshake end) of a drawn bytes value or :class:`Stream`."""
    if isinstance(value, Stream):
        return value.encode(), value.handshake_end
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        return data, handshake_end(data)
    raise InvalidArgument(f"mutations() needs bytes or Stream values, not {type(value).__name__}")


def mutants(
    streams: st.SearchStrategy[Any],
    *,
    max_mutations: int = 3,
    donors: st.SearchStrategy[Any] | None = None,
    kinds: Iterable[str] = MUTATIONS,
    spare_handshake: bool = False,
) -> st.SearchStrategy[Mutant]:
    """Streams drawn from ``streams`` (bytes or :class:`Stream` values) with 1 to
    ``max_mutations`` mutations, as :class:`Mutant` values that say what was done
    (kind and offset of each edit) beside the bytes. ``spare_handshake=True`` mutates
    only what follows the handshake (:attr:`Stream.handshake_end`, or
    :func:`handshake_end` of bytes), so the mutated part reaches a broker that checks
    the login first. Otherwise as :func:`mutations`."""
    if max_mutations < 1:
        raise InvalidArgument(f"max_mutations={max_mutations} must be at least 1")
    chosen = _check_kinds(kinds)
    others = streams if donors is None else donors

    @st.composite
    def mutants(draw: st.DrawFn) -> Mutant:
        data, end = _stream_bytes(draw(streams))

        def choose(n: int) -> int:
            return draw(st.integers(0, n - 1))

        def donor() -> bytes:
            return _stream_bytes(draw(others))[0]

        count = draw(st.integers(1, max_mutations))
        return _apply(data, end if spare_handshake else 0, count, chosen, choose, donor)

    return mutants()


def mutations(
    streams: st.SearchStrategy[Any],
    *,
    max_mutations: int = 3,
    donors: st.SearchStrategy[Any] | None = None,
    kinds: Iterable[str] = MUTATIONS,
    spare_handshake: bool = False,
) -> st.SearchStrategy[bytes]:
    """Streams drawn from ``streams`` with 1 to ``max_mutations`` mutations (see
    :data:`MUTATIONS`) applied in turn, as bytes (:func:`mutants` says what was done
    too). ``splice`` takes a frame from a stream drawn from ``donors`` (default:
    ``streams`` again). Point it at anything that yields valid bytes or
    :class:`Stream` values: :func:`frame_streams`, :func:`streams`, recorded traffic
    (``st.sampled_from(captures)``), :func:`messages` encoded. ``spare_handshake=True``
    leaves the handshake alone. Shrinking heads for fewer, earlier, smaller edits."""
    return mutants(
        streams,
        max_mutations=max_mutations,
        donors=donors,
        kinds=kinds,
        spare_handshake=spare_handshake,
    ).map(Mutant.encode)


def mutated_streams(
    sender: str | None = None,
    *,
    role: str | None = None,
    max_mutations: int = 3,
    spare_handshake: bool = False,
    **stream_options: Any,
) -> st.SearchStrategy[bytes]:
    """:func:`frame_streams` of ``sender`` (keyword options passed on) with mutations:
    ``mutations(streams(sender, ...), max_mutations=..., spare_handshake=...)``.
    ``role=`` is the deprecated spelling of ``sender``."""
    chosen = _sender(sender, role)
    return mutations(
        streams(chosen, **stream_options),
        max_mutations=max_mutations,
        spare_handshake=spare_handshake,
    )
