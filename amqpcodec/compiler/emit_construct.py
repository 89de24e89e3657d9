"""Emit ``grammar.py``: the protocol as a ``construct`` grammar, from the same IR.

The grammar is the declarative mirror of the fast codec in ``spec.py``: one ``Struct`` per
method's arguments, a ``Struct`` per content class's properties, field values, tables
and arrays in both type-letter dialects, and the frames around them. Every fact comes
from the IR in ``model.py`` (ids, field order, native types, bit groups, property flag
positions, frame type and frame-end constants), except the field-table type letters,
which are not in the XML: they come from the two dialects in ``amqpcodec._wire``, the
one place the fast codec reads them from too.

Each function is a generator that yields lines; the output is deterministic, formatted
as ``ruff format`` would format it, and never imports construct at generation time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from .._wire import RABBITMQ, STRICT, Dialect
from .model import (
    BitGroup,
    Constant,
    Field,
    FixedRun,
    IntItem,
    Method,
    ProtocolClass,
    Spec,
    SpecError,
    camel_name,
)

__all__ = ["emit_grammar_module", "generate_construct"]

_INDENT = "    "
_WIDTH = 100
# Native AMQP types [PDF §4.2.5] -> grammar objects. Bits are handled by their group.
_NATIVE = {
    "octet": "Int8ub",
    "short": "Int16ub",
    "long": "Int32ub",
    "longlong": "Int64ub",
    "timestamp": "Timestamp",
    "shortstr": "ShortStr",
    "longstr": "LongStr",
    "table": "FieldTable",
}
_RESERVED_DEFAULTS = {
    "octet": "0",
    "short": "0",
    "long": "0",
    "longlong": "0",
    "timestamp": "0",
    "shortstr": '""',
    "longstr": 'b""',
    "table": "[]",
}
# What a dialect's value kind (``amqpcodec._wire._Kind`` names) reads as. ``{table}`` and
# ``{array}`` are the dialect's own table and array, reached lazily (they recurse).
_KINDS = {
    "BOOL": "Flag",
    "INT8": "Int8sb",
    "UINT8": "Int8ub",
    "INT16": "Int16sb",
    "UINT16": "Int16ub",
    "INT32": "Int32sb",
    "UINT32": "Int32ub",
    "INT64": "Int64sb",
    "UINT64": "Int64ub",
    "FLOAT": "Float32b",
    "DOUBLE": "Float64b",
    "DECIMAL": "DecimalValue",
    "SHORTSTR": "ShortStr",
    "LONGSTR": "LongStr",
    "BYTES": "LongStr",
    "ARRAY": "LazyBound(lambda: {array})",
    "TIMESTAMP": "Timestamp",
    "TABLE": "LazyBound(lambda: {table})",
    "VOID": "Pass",
}
# (dialect, prefix of its public names, prefix of its private names)
_DIALECTS: tuple[tuple[Dialect, str, str], ...] = (
    (RABBITMQ, "", "_RABBITMQ"),
    (STRICT, "Strict", "_STRICT"),
)
_FRAME_TYPES = ("method", "header", "body", "heartbeat")
_PAYLOADS = {
    "method": "MethodPayload",
    "header": "ContentHeader",
    "body": "GreedyBytes",
    "heartbeat": "Terminated",
}
# The construct names the grammar may use; only the ones it does use are imported.
_IMPORTS = (
    "Check",
    "Computed",
    "Const",
    "Construct",
    "Default",
    "Enum",
    "Error",
    "ExprAdapter",
    "Flag",
    "FlagsEnum",
    "Float32b",
    "Float64b",
    "FocusedSeq",
    "GreedyBytes",
    "GreedyRange",
    "If",
    "IfThenElse",
    "Int16sb",
    "Int16ub",
    "Int32sb",
    "Int32ub",
    "Int64sb",
    "Int64ub",
    "Int8sb",
    "Int8ub",
    "LazyBound",
    "Optional",
    "Pass",
    "Prefixed",
    "Rebuild",
    "Struct",
    "Switch",
    "Terminated",
    "this",
)


def generate_construct(spec: Spec) -> str:
    """The source of ``grammar.py`` for ``spec``."""
    return "\n".join(emit_grammar_module(spec)) + "\n"


def emit_grammar_module(spec: Spec) -> Iterator[str]:
    """Yield the lines of ``grammar.py`` for ``spec``."""
    _check_names(spec)
    body = list(_body(spec))
    used = set(re.findall(r"\b\w+\b", "\n".join(body)))
    yield from _header(spec, [name for name in _IMPORTS if name in used])
    yield from _list("__all__", [_q(name) for name in _sorted(_exports(spec))])
    yield from body


def _check_names(spec: Spec) -> None:
    """Generated names (``BasicPublish``, ``BasicProperties``) must not collide with each
    other or with the fixed ones (class ``frame`` + method ``stream`` is ``FrameStream``)."""
    taken = set(_IMPORTS) | set(_fixed_exports())
    for cls in spec.classes:
        names = [_method_name(m) for m in cls.methods]
        names += [_properties_name(cls)] if cls.properties else []
        for name in names:
            if name in taken:
                raise SpecError(f"class {cls.name}: grammar name {name} is already taken")
            taken.add(name)


def _body(spec: Spec) -> Iterator[str]:
    yield from _helpers()
    yield from _primitives()
    for dialect, public, private in _DIALECTS:
        yield from _field_values(dialect, public, private)
    for cls in spec.classes:
        yield ""
        yield f"# {cls.name} ({cls.index})"
        for method in cls.methods:
            yield from _method_struct(method)
    yield ""
    yield from _dict("methods", "dict[tuple[int, int], Construct]", _method_entries(spec))
    for cls in spec.classes:
        if cls.properties:
            yield from _properties_struct(cls)
    yield ""
    entries = [(str(cls.index), _properties_name(cls)) for cls in spec.classes if cls.properties]
    yield from _dict("properties", "dict[int, Construct]", entries)
    yield from _frames(spec)


# ---------------------------------------------------------------------------------------
# Layout helpers: every construct below is either one line or one item a line with a
# trailing comma, so ``ruff format`` leaves the output as it is.


def _q(value: str) -> str:
    """A double-quoted literal, as ruff format writes it (names are validated ASCII)."""
    return json.dumps(value)


def _call(indent: str, head: str, args: list[str], tail: str = "") -> Iterator[str]:
    """``head(args)tail`` on one line, or one argument a line when it is too long."""
    line = f"{indent}{head}({', '.join(args)}){tail}"
    if len(line) <= _WIDTH:
        yield line
        return
    yield f"{indent}{head}("
    for arg in args:
        yield f"{indent}{_INDENT}{arg},"
    yield f"{indent}){tail}"


def _named(indent: str, name: str, head: str, args: list[str]) -> Iterator[str]:
    """A struct member ``"name" / head(args),``; ruff splits a long one at the ``/``."""
    line = f"{indent}{_q(name)} / {head}({', '.join(args)}),"
    if len(line) <= _WIDTH:
        yield line
        return
    yield f"{indent}{_q(name)}"
    yield from _call(indent, f"/ {head}", args, ",")


def _list(target: str, items: list[str]) -> Iterator[str]:
    yield f"{target} = ["
    for item in items:
        yield f"{_INDENT}{item},"
    yield "]"


def _dict(target: str, annotation: str, entries: Iterable[tuple[str, str]]) -> Iterator[str]:
    yield f"{target}: {annotation} = {{"
    for key, value in entries:
        yield f"{_INDENT}{key}: {value},"
    yield "}"


def _struct(target: str, members: Iterable[str]) -> Iterator[str]:
    """``target = Struct(...)`` with the given member lines (already indented)."""
    lines = list(members)
    if not lines:
        yield f"{target} = Struct()"
        return
    yield f"{target} = Struct("
    yield from lines
    yield ")"


# ---------------------------------------------------------------------------------------
# The module around the grammar


def _sorted(names: Iterable[str]) -> list[str]:
    """isort's order, as ruff wants imports and ``__all__``: CONSTANTS, Classes, the rest,
    each in natural order (``Int8ub`` before ``Int16ub``)."""

    def key(name: str) -> tuple[int, list[tuple[int, str]]]:
        kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
        parts = re.split(r"(\d+)", name)
        return kind, [(int(p), "") if p.isdigit() else (-1, p) for p in parts]

    return sorted(names, key=key)


def _header(spec: Spec, imports: list[str]) -> Iterator[str]:
    version = f"{spec.major}-{spec.minor}-{spec.revision}"
    yield f"# Generated by amqpcodec.compiler from {spec.source or 'an AMQP spec'}. Do not edit."
    yield "# Regenerate with: python -m amqpcodec.compiler"
    yield f'"""AMQP {version} as a construct grammar: every frame, method and property.'
    yield from _DOCSTRING
    yield ""
    yield "from __future__ import annotations"
    yield ""
    yield "from collections.abc import Callable"
    yield "from typing import Any"
    yield ""
    yield "from construct import ("
    for name in _sorted(imports):
        yield f"{_INDENT}{name},"
    yield ")"
    yield ""


_DOCSTRING = (
    "",
    "The declarative mirror of ``amqpcodec.spec``, generated from the same spec XML: for",
    "scripts that dissect or hand-build AMQP with construct, and the independent second",
    "reading the fast codec is tested against. It needs the ``construct`` extra and is",
    "never imported by ``import amqpcodec``; import it as ``from amqpcodec import grammar``.",
    "It uses construct's ordinary (checked) parsers, so it is slow: not a hot path.",
    "",
    "Names:",
    "",
    "- ``Frame``: one frame, ``type`` (``FrameType``: ``METHOD``, ``HEADER``, ``BODY``,",
    "  ``HEARTBEAT``), ``channel``, ``payload`` and the frame-end octet, checked with",
    "  ``Const``. The payload is a ``MethodPayload`` (``class_id``, ``method_id``,",
    "  ``arguments``), a ``ContentHeader`` (``class_id``, ``weight`` (must be 0),",
    "  ``body_size``, ``properties``), the body bytes, or nothing (heartbeat).",
    "- ``ProtocolHeader``: ``AMQP`` then ``protocol_id``, ``major``, ``minor``, ``revision``.",
    "- ``FrameStream``: a whole direction of a connection, an optional protocol header then",
    "  frames up to the end of the data.",
    "- ``methods[(class_id, method_id)]``: the ``Struct`` of one method's arguments, also",
    "  bound to a name such as ``BasicPublish``. Fields have the Python names of",
    "  ``amqpcodec.spec`` (reserved fields included, defaulting to zero); each group of",
    "  consecutive bits is one octet, a ``FlagsEnum`` member named ``bits`` (``bits_2``, ...",
    "  for later groups) whose first bit is the least significant [PDF §4.2.5.2].",
    "- ``properties[class_id]``: the content properties of a class, such as",
    "  ``BasicProperties``: flag word(s) (``flags``, rebuilt from the properties that are",
    "  not None, first property at 0x8000, bit 0 the continuation bit), then each property",
    "  present.",
    "- ``FieldValue``, ``FieldTable``, ``FieldArray``, ``FieldType``: field values with",
    "  RabbitMQ's type letters; ``StrictFieldValue``, ``StrictFieldTable``,",
    "  ``StrictFieldArray``, ``StrictFieldType``: the letters of the 0-9-1 grammar. A value",
    "  is ``Container(type=letter, value=...)``, a table a list of",
    "  ``Container(name=..., type=..., value=...)``, an array a list of values. Long strings",
    "  (``S``, ``x``) are bytes, decimals ``Container(scale=..., value=...)``, timestamps",
    "  POSIX seconds.",
    "- ``ShortStr``, ``LongStr``, ``Timestamp``, ``DecimalValue``: the primitive types.",
    "",
    "Errors: malformed input raises a ``construct.ConstructError`` subclass where the fast",
    "codec raises ``amqpcodec.DecodeError``:",
    "",
    "- ``StreamError``: the data ends inside a frame (``decode_frame`` returns None for an",
    "  incomplete frame; a length that overruns its frame is DecodeError 501).",
    "- ``ConstError``: a frame-end octet other than 0xCE (501), a content header weight",
    "  other than 0 (505), a protocol header not starting with ``AMQP``.",
    "- ``ExplicitError``: an unknown frame type (501), method (540), content class (505) or",
    "  field type letter (502).",
    "- ``TerminatedError``: bytes left over in a payload, a table or an array, or a frame",
    "  that does not parse inside a ``FrameStream`` (501).",
    "- ``CheckError``: property flags naming no property, or a continuation bit (501).",
    "",
    "Differences from the fast codec: the grammar checks no channel numbers (a heartbeat",
    "on channel 5 parses) and has no frame size or nesting limit of its own, but construct",
    "recurses: tables nested about 60 deep reach Python's recursion limit, which",
    "``GreedyRange`` turns into a ``TerminatedError`` (the fast codec allows 64). It",
    "rejects a continuation flag word after the last property (the fast codec skips empty",
    "ones) and reads a payload before the frame-end octet. Like the fast codec it ignores",
    "unknown bits in a bit-group octet and reads short strings as UTF-8 with",
    "``surrogateescape``, so any bytes round-trip. Building raises construct errors too",
    "(``MappingError`` for an unknown type letter or flag, ``FormatFieldError`` for an",
    "integer out of range); a missing key raises ``KeyError``.",
    '"""',
)


def _fixed_exports() -> list[str]:
    """The public names every grammar has, whatever the spec."""
    names = ["Frame", "FrameStream", "FrameType", "MethodPayload", "ContentHeader"]
    names += ["ProtocolHeader", "ShortStr", "LongStr", "Timestamp", "DecimalValue"]
    names += ["methods", "properties"]
    for _, public, _ in _DIALECTS:
        names += [f"{public}{n}" for n in ("FieldType", "FieldValue", "FieldTable", "FieldArray")]
    return names


def _exports(spec: Spec) -> list[str]:
    names = _fixed_exports()
    names += [_method_name(m) for m in spec.methods]
    names += [_properties_name(cls) for cls in spec.classes if cls.properties]
    return names


def _helpers() -> Iterator[str]:
    i1, i2, i3 = _INDENT, _INDENT * 2, _INDENT * 3
    yield ""
    yield ""
    yield "def _utf8_decode(obj: bytes, context: Any) -> str:"
    yield f'{i1}return obj.decode("utf-8", "surrogateescape")'
    yield ""
    yield ""
    yield "def _utf8_encode(obj: str, context: Any) -> bytes:"
    yield f'{i1}return obj.encode("utf-8", "surrogateescape")'
    yield ""
    yield ""
    yield "def _flag_word(words: tuple[dict[str, int], ...], index: int) -> Callable[[Any], int]:"
    yield f'{i1}"""Rebuild a property flag word from the properties that are not None.'
    yield ""
    yield f"{i1}Bit 0 is set when a property of a later word is present [PDF §4.2.6.1]."
    yield f'{i1}"""'
    yield ""
    yield f"{i1}def flag_word(this: Any) -> int:"
    yield f"{i2}word = 0"
    yield f"{i2}for name, mask in words[index].items():"
    yield f"{i3}if this.get(name) is not None:"
    yield f"{i3}{i1}word |= mask"
    yield f"{i2}for later in words[index + 1 :]:"
    yield f"{i3}if any(this.get(name) is not None for name in later):"
    yield f"{i3}{i1}word |= 1"
    yield f"{i2}return word"
    yield ""
    yield f"{i1}return flag_word"


def _primitives() -> Iterator[str]:
    yield ""
    yield ""
    yield "# Primitive types [PDF §4.2.5]. Integers are construct's Int8ub ... Int64ub."
    yield "ShortStr = ExprAdapter(Prefixed(Int8ub, GreedyBytes), _utf8_decode, _utf8_encode)"
    yield "LongStr = Prefixed(Int32ub, GreedyBytes)"
    yield "Timestamp = Int64ub  # POSIX seconds"
    yield "# Decimal: a scale octet and a signed 32-bit value, value * 10**-scale [Errata #3]."
    yield 'DecimalValue = Struct("scale" / Int8ub, "value" / Int32sb)'


# ---------------------------------------------------------------------------------------
# Field values, tables and arrays, once per dialect


def _field_values(dialect: Dialect, public: str, private: str) -> Iterator[str]:
    """``FieldType``, ``FieldValue``, ``FieldArray``, ``FieldTable`` for one dialect."""
    kinds = dialect._kinds  # letter (as an int) -> kind, in the dialect's own order
    table, array = f"{public}FieldTable", f"{public}FieldArray"
    field_type, values, pair = f"{public}FieldType", f"{private}_VALUES", f"{private}_FIELD"
    for letter in kinds:
        if not chr(letter).isalpha() or not chr(letter).isascii():
            raise SpecError(f"dialect {dialect.name}: type letter {chr(letter)!r}")
    yield ""
    yield f"# Field values with the {dialect.name} type letters [PDF §4.2.5.5; Errata #3]"
    letters = [f"{chr(c)}=0x{c:02X}" for c in kinds]
    yield from _call("", f"{field_type} = Enum", ["Int8ub", *letters])
    yield f"{values} = {{"
    for letter, kind in kinds.items():
        if kind.name not in _KINDS:
            raise SpecError(f"dialect {dialect.name}: no grammar for {chr(letter)!r} ({kind.name})")
        grammar = _KINDS[kind.name].format(table=table, array=array)
        yield f"{_INDENT}{_q(chr(letter))}: {grammar},"
    yield "}"
    yield f"{pair} = ("
    yield f'{_INDENT}"type" / {field_type},'
    yield f'{_INDENT}"value" / Switch(this.type, {values}, default=Error),'
    yield ")"
    yield f"{public}FieldValue = Struct(*{pair})"
    # Annotated: the lambdas above refer to them before they are assigned.
    yield f"{array}: Construct = Prefixed("
    yield f"{_INDENT}Int32ub,"
    yield f'{_INDENT}FocusedSeq("items", "items" / GreedyRange({public}FieldValue), Terminated),'
    yield ")"
    yield f"{table}: Construct = Prefixed("
    yield f"{_INDENT}Int32ub,"
    yield from _call(
        _INDENT,
        "FocusedSeq",
        ['"pairs"', f'"pairs" / GreedyRange(Struct("name" / ShortStr, *{pair}))', "Terminated"],
        ",",
    )
    yield ")"


# ---------------------------------------------------------------------------------------
# Methods


def _method_name(method: Method) -> str:
    return camel_name(method.class_name) + method.py_name


def _method_entries(spec: Spec) -> Iterator[tuple[str, str]]:
    for method in spec.methods:
        yield f"({method.class_index}, {method.index})", _method_name(method)


def _method_struct(method: Method) -> Iterator[str]:
    names = {f.py_name for f in method.fields}
    members: list[str] = []
    groups = 0
    for segment in method.layout:
        if not isinstance(segment, FixedRun):
            members += _field_member(segment.field, _NATIVE[segment.field.type])
            continue
        for item in segment.items:
            if isinstance(item, IntItem):
                members += _field_member(item.field, _NATIVE[item.field.type])
                continue
            groups += 1
            group = "bits" if groups == 1 else f"bits_{groups}"
            if group in names:
                raise SpecError(f"{method.full_name}: a field is named {group!r}")
            members += _bit_group(group, item)
    yield from _struct(_method_name(method), members)


def _field_member(f: Field, grammar: str) -> list[str]:
    if f.reserved:  # zero or empty unless given, like spec.py's keyword arguments
        return list(_named(_INDENT, f.py_name, "Default", [grammar, _RESERVED_DEFAULTS[f.type]]))
    return [f"{_INDENT}{_q(f.py_name)} / {grammar},"]


def _bit_group(name: str, group: BitGroup) -> Iterator[str]:
    """One octet of bits, the first bit in 0x01 [PDF §4.2.5.2]."""
    flags = [f"{f.py_name}={1 << bit}" for bit, f in enumerate(group.fields)]
    yield from _named(_INDENT, name, "FlagsEnum", ["Int8ub", *flags])


# ---------------------------------------------------------------------------------------
# Content properties


def _properties_name(cls: ProtocolClass) -> str:
    return f"{cls.py_name}Properties"


def _flag_position(index: int) -> tuple[int, int]:
    """(flag word, bit mask) of the property at ``index`` [PDF §4.2.6.1]."""
    return index // 15, 1 << (15 - index % 15)


def _hex(mask: int) -> str:
    """A flag-word mask as ruff format writes hex literals: ``0x8000``, ``0x00FF``."""
    return f"0x{mask:04X}"


def _word_name(word: int) -> str:
    return "flags" if word == 0 else f"flags_{word + 1}"


def _properties_struct(cls: ProtocolClass) -> Iterator[str]:
    fields = cls.properties
    words = (len(fields) + 14) // 15
    masks_name = f"_{cls.name.upper().replace('-', '_')}_FLAG_WORDS"
    for word in range(words):
        if _word_name(word) in {f.py_name for f in fields}:
            raise SpecError(f"class {cls.name}: a property is named {_word_name(word)!r}")
    yield ""
    yield f"# Content properties of class {cls.name} ({cls.index}) [PDF §4.2.6.1]"
    yield f"{masks_name} = ("
    for word in range(words):
        yield f"{_INDENT}{{"
        for index, f in enumerate(fields):
            if _flag_position(index)[0] == word:
                yield f"{_INDENT * 2}{_q(f.py_name)}: {_hex(_flag_position(index)[1])},"
        yield f"{_INDENT}}},"
    yield ")"
    yield from _struct(_properties_name(cls), _property_members(cls, masks_name))


def _property_members(cls: ProtocolClass, masks_name: str) -> Iterator[str]:
    fields = cls.properties
    words = (len(fields) + 14) // 15
    for word in range(words):
        rebuild = f"Rebuild(Int16ub, _flag_word({masks_name}, {word}))"
        if word == 0:
            yield f"{_INDENT}{_q(_word_name(0))} / {rebuild},"
        else:  # a later word is there only when the one before has the continuation bit
            args = [f"this.{_word_name(word - 1)} & 1", rebuild, "Computed(0)"]
            yield from _named(_INDENT, _word_name(word), "IfThenElse", args)
    known = 0
    for index in range(len(fields)):
        if _flag_position(index)[0] == words - 1:
            known |= _flag_position(index)[1]
    # The last word names no further property and has no continuation bit.
    yield f"{_INDENT}Check((this.{_word_name(words - 1)} & {_hex(~known & 0xFFFF)}) == 0),"
    for index, f in enumerate(fields):
        word, mask = _flag_position(index)
        condition = f"this.{_word_name(word)} & {_hex(mask)}"
        yield from _named(_INDENT, f.py_name, "If", [condition, _NATIVE[f.type]])


# ---------------------------------------------------------------------------------------
# Frames


def _constant(spec: Spec, name: str) -> Constant:
    for constant in spec.constants:
        if constant.name == name:
            return constant
    raise SpecError(f"the spec has no constant {name!r}, which the frame grammar needs")


def _frames(spec: Spec) -> Iterator[str]:
    types = [(kind.upper(), _constant(spec, f"frame-{kind}").value) for kind in _FRAME_TYPES]
    frame_end = _constant(spec, "frame-end").value
    if frame_end > 0xFF or any(value > 0xFF for _, value in types):
        raise SpecError("frame types and the frame-end octet must fit in an octet")
    yield ""
    yield "# Frames [PDF §2.3.5, 4.2.3]"
    yield from _call("", "FrameType = Enum", ["Int8ub", *(f"{k}={v}" for k, v in types)])
    yield "MethodPayload = Struct("
    yield f'{_INDENT}"class_id" / Int16ub,'
    yield f'{_INDENT}"method_id" / Int16ub,'
    key = "lambda this: (this.class_id, this.method_id)"
    yield f'{_INDENT}"arguments" / Switch({key}, methods, default=Error),'
    yield f"{_INDENT}Terminated,"
    yield ")"
    yield "ContentHeader = Struct("
    yield f'{_INDENT}"class_id" / Int16ub,'
    yield f'{_INDENT}"weight" / Const(0, Int16ub),'
    yield f'{_INDENT}"body_size" / Int64ub,'
    yield f'{_INDENT}"properties" / Switch(this.class_id, properties, default=Error),'
    yield f"{_INDENT}Terminated,"
    yield ")"
    yield "_FRAME_PAYLOADS = {"
    for kind in _FRAME_TYPES:
        yield f"{_INDENT}{_q(kind.upper())}: {_PAYLOADS[kind]},"
    yield "}"
    yield "Frame = Struct("
    yield f'{_INDENT}"type" / FrameType,'
    yield f'{_INDENT}"channel" / Int16ub,'
    payload = "Switch(this.type, _FRAME_PAYLOADS, default=Error)"
    yield f'{_INDENT}"payload" / Prefixed(Int32ub, {payload}),'
    yield f'{_INDENT}Const(b"\\x{frame_end:02x}"),'
    yield ")"
    yield "ProtocolHeader = Struct("
    yield f'{_INDENT}Const(b"AMQP"),'
    for name in ("protocol_id", "major", "minor", "revision"):
        yield f"{_INDENT}{_q(name)} / Int8ub,"
    yield ")"
    yield "FrameStream = Struct("
    yield f'{_INDENT}"protocol_header" / Optional(ProtocolHeader),'
    yield f'{_INDENT}"frames" / GreedyRange(Frame),'
    yield f"{_INDENT}Terminated,"
    yield ")"
