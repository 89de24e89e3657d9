"""Base classes of the generated method and property classes.

The generated code in ``spec.py`` does the encoding and decoding; what lives here is the
behaviour every method shares and that is not worth generating: value equality, a
readable repr, and turning a failed encode into an :class:`EncodeError` that names the
field and the value.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from ._errors import EncodeError

__all__ = ["LAZY", "Method", "Properties", "Record"]

_INT_BITS = {"octet": 8, "short": 16, "long": 32, "longlong": 64, "timestamp": 64}


class Record:
    """Fields, equality and repr shared by methods and content properties."""

    __slots__ = ()

    NAME: ClassVar[str]
    FIELDS: ClassVar[tuple[str, ...]]
    """Python names of every field, in wire order (reserved fields included)."""
    FIELD_TYPES: ClassVar[tuple[str, ...]]
    """The native AMQP type of each field in FIELDS."""
    RESERVED: ClassVar[frozenset[str]]
    """Python names of the reserved fields."""
    _NONE_IS_ABSENT: ClassVar[bool] = False
    """Whether None is a valid value of every field (content properties: absent)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.FIELDS)

    __hash__: ClassVar[None] = None  # type: ignore[assignment]  # mutable, compared by value

    def _repr_fields(self) -> list[str]:
        return [
            f"{name}={getattr(self, name)!r}"
            for name in self.FIELDS
            if name not in self.RESERVED or getattr(self, name)
        ]

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(self._repr_fields())})"

    def _encode_error(self) -> EncodeError:
        """Find the field that made encoding fail and describe it."""
        for name, kind in zip(self.FIELDS, self.FIELD_TYPES, strict=True):
            value = getattr(self, name)
            if value is None and self._NONE_IS_ABSENT:
                continue
            problem = _problem(kind, value)
            if problem:
                field = f"{self.NAME}.{name}"
                return EncodeError(f"{field}: {problem} (got {value!r})", field, value)
        return EncodeError(f"{self.NAME}: cannot encode {self!r}", self.NAME, self)


def _problem(kind: str, value: Any) -> str:
    """What is wrong with ``value`` as an AMQP ``kind``, or '' when nothing is."""
    if kind in _INT_BITS:
        if kind == "timestamp" and isinstance(value, datetime.datetime):
            return ""
        if not isinstance(value, int) or isinstance(value, bool):
            return f"expected an int for {kind}"
        if not 0 <= value < 2 ** _INT_BITS[kind]:
            return f"{kind} must be between 0 and {2 ** _INT_BITS[kind] - 1}"
        return ""
    if kind == "shortstr":
        if not isinstance(value, str):
            return "expected str for shortstr"
        try:
            size = len(value.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            return "not encodable as UTF-8"
        return f"short string of {size} UTF-8 bytes is longer than 255" if size > 255 else ""
    if kind == "longstr":
        # The generated encoders concatenate bytes; a str has to be encoded by the caller.
        if not isinstance(value, (bytes, bytearray, memoryview)):
            return "expected bytes for longstr"
        return ""
    if kind == "table":  # None encodes as the empty table
        return "" if value is None or isinstance(value, Mapping) else "expected a mapping for table"
    return ""


class _Lazy:
    """The value of a table property not decoded yet (see Properties)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LAZY"

    def __reduce__(self) -> str:  # copies and pickles are this one object
        return "LAZY"


LAZY: Final = _Lazy()


class Method(Record):
    """One AMQP method. Subclasses are generated, one per method, in ``spec.py``."""

    __slots__ = ()

    CLASS_ID: ClassVar[int]
    METHOD_ID: ClassVar[int]
    INDEX: ClassVar[int]
    """``CLASS_ID << 16 | METHOD_ID``."""
    SYNCHRONOUS: ClassVar[bool]
    CONTENT: ClassVar[bool]
    RESPONSES: ClassVar[tuple[type[Method], ...]]
    CHASSIS: ClassVar[frozenset[str]]
    """The sides that receive this method: "client", "server" or both."""

    def encode(self) -> bytes:
        """The method frame payload: class id, method id and the arguments."""
        raise NotImplementedError

    @classmethod
    def decode(cls, buf: Any, off: int, end: int) -> Method:
        """Decode the arguments in ``buf[off:end]`` (after the two ids); all must be used."""
        raise NotImplementedError

    @property
    def expects_reply(self) -> bool:
        """Whether the peer must answer: a request with responses, and no-wait not set."""
        # confirm.select spells its no-wait bit "nowait" (RabbitMQ's extension XML).
        no_wait = getattr(self, "no_wait", False) or getattr(self, "nowait", False)
        return bool(self.RESPONSES) and not no_wait

    def __repr__(self) -> str:
        # ``Basic.Publish(...)``, as the CLI prints it: evaluates back to an equal method
        # with ``from amqpcodec.spec import *`` (and FieldTable, FieldArray, datetime and
        # decimal.Decimal for table values) in scope.
        return f"{type(self).__qualname__}({', '.join(self._repr_fields())})"


class Properties(Record):
    """Content properties of one class (``BasicProperties``); None means absent.

    A decoded block keeps the bytes it came from (``_wire``) and the objects it was
    decoded into (``_seen``): while every property is still that object, encoding writes
    the bytes back, exactly as they arrived (flag words included) and at the cost of a copy.
    A table property is checked when the block is decoded but built only when first read
    (until then its slot holds :data:`LAZY` and ``_seen`` its offset in ``_wire``).
    """

    __slots__ = ("_seen", "_wire")

    _seen: list[Any]
    _wire: bytes | None

    CLASS_ID: ClassVar[int]
    _NONE_IS_ABSENT: ClassVar[bool] = True

    def __copy__(self) -> Properties:
        """A copy with a snapshot of its own (reading a table property writes to it)."""
        copied = object.__new__(type(self))
        for klass in type(self).__mro__:
            for name in getattr(klass, "__slots__", ()):
                with contextlib.suppress(AttributeError):  # _seen, if not decoded
                    object.__setattr__(copied, name, object.__getattribute__(self, name))
        if self._wire is not None:
            copied._seen = list(self._seen)
        return copied

    def encode(self) -> bytes:
        """The property flags and the property list, as in a content header."""
        raise NotImplementedError

    @classmethod
    def decode(cls, buf: Any, off: int, end: int) -> Properties:
        """Decode flags and properties in ``buf[off:end]``; all bytes must be used."""
        raise NotImplementedError

    def _repr_fields(self) -> list[str]:
        return [
            f"{name}={getattr(self, name)!r}"
            for name in self.FIELDS
            if getattr(self, name) is not None
        ]
