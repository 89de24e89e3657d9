"""Emit ``spec.py``: the fast codec, one class per method, from the IR.

Every function here is a generator that yields lines of source; they are composed with
``yield from`` and do no spec look-ups of their own (everything comes from the IR in
``model.py``). The output is deterministic and formatted as ``ruff format`` would.

Encoding builds the payload with as few ``struct`` calls as the layout allows: the
length octet of a short string (or the length word of a long string) joins the struct
run before it. Decoding is straight-line code over ``(buf, off)``; a truncated or
overlong argument list surfaces as ``struct.error``/``IndexError`` or as an offset that
does not land on ``end``, and both become a :class:`DecodeError`.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

from .model import BitGroup, Field, FixedRun, IntItem, Method, ProtocolClass, Spec

__all__ = ["emit_spec_module", "struct_name"]

_PY_TYPES = {
    "bit": "bool",
    "octet": "int",
    "short": "int",
    "long": "int",
    "longlong": "int",
    # Properties accept a datetime when encoding (naive means UTC); decoding gives int.
    "timestamp": "int | datetime.datetime",
    "shortstr": "str",
    "longstr": "bytes",
    "table": "Mapping[str, Any]",
}
_DEFAULTS = {
    "bit": "False",
    "octet": "0",
    "short": "0",
    "long": "0",
    "longlong": "0",
    "timestamp": "0",
    "shortstr": '""',
    "longstr": 'b""',
    "table": "None",
}
_SIZES = {"B": 1, "H": 2, "I": 4, "Q": 8}
_INDENT = "    "


def _q(value: object) -> str:
    """A double-quoted literal, as ruff format writes it (names are validated ASCII)."""
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def struct_name(fmt: str) -> str:
    """The module-level name of the precompiled ``struct.Struct`` for ``fmt``."""
    return "_S_" + fmt.lstrip(">")


def _formats(spec: Spec) -> set[str]:
    """Every struct format the generated code uses."""
    found = {">B", ">H", ">I", ">Q", ">HH"}
    for method in spec.methods:
        found.update(fmt for fmt, _ in _encode_parts(method) if fmt)
        found.update(fmt for fmt, _ in _decode_runs(method))
    return found


def _encode_parts(method: Method) -> list[tuple[str, list[str]]]:
    """The pieces ``encode`` concatenates: ("pack format", args) or ("", [expression])."""
    parts: list[tuple[str, list[str]]] = []
    fmt, args = ">HH", [str(method.class_index), str(method.index)]
    for segment in method.layout:
        if isinstance(segment, FixedRun):
            for item in segment.items:
                if isinstance(item, IntItem):
                    fmt += item.code
                    args.append(f"self.{item.field.py_name}")
                else:
                    fmt += "B"
                    args.append(f"bits{_group_number(method, item)}")
            continue
        f = segment.field
        if f.type in ("shortstr", "longstr"):
            fmt += "B" if f.type == "shortstr" else "I"
            args.append(f"len({_local(f)})")
            parts.append((fmt, args))
            parts.append(("", [_local(f)]))
        else:
            if fmt != ">":
                parts.append((fmt, args))
            label = _q(f"{method.full_name}.{f.py_name}")
            parts.append(("", [f"_encode_table(self.{f.py_name}, {label})"]))
        fmt, args = ">", []
    if fmt != ">":
        parts.append((fmt, args))
    return parts


def _decode_runs(method: Method) -> list[tuple[str, list[str]]]:
    """The struct unpacks of ``decode``: (format, target names)."""
    runs: list[tuple[str, list[str]]] = []
    fmt, names = ">", []
    for segment in method.layout:
        if isinstance(segment, FixedRun):
            for i, item in enumerate(segment.items):
                fmt += item.code if isinstance(item, IntItem) else "B"
                if isinstance(item, IntItem):
                    names.append(item.field.py_name)
                else:
                    names.append(f"bits{_group_number(method, item)}")
                del i
            continue
        kind = segment.field.type
        if kind in ("shortstr", "longstr"):
            fmt += "B" if kind == "shortstr" else "I"
            names.append("n")
            runs.append((fmt, names))
            fmt, names = ">", []
        elif fmt != ">":
            runs.append((fmt, names))
            fmt, names = ">", []
    if fmt != ">":
        runs.append((fmt, names))
    return runs


def _group_number(method: Method, group: BitGroup) -> int:
    number = 0
    for segment in method.layout:
        if isinstance(segment, FixedRun):
            for item in segment.items:
                if item is group:
                    return number
                if isinstance(item, BitGroup):
                    number += 1
    raise AssertionError("bit group not in its method")


def _local(field: Field) -> str:
    return f"v_{field.py_name}"


def _signature(
    fields: tuple[Field, ...], types: dict[str, str], defaults: dict[str, str]
) -> list[str]:
    public = [f for f in fields if not f.reserved]
    reserved = [f for f in fields if f.reserved]
    params = ["self"]
    params += [f"{f.py_name}: {types[f.type]} = {defaults[f.type]}" for f in public]
    if reserved:
        params.append("*")
        params += [f"{f.py_name}: {types[f.type]} = {defaults[f.type]}" for f in reserved]
    return params


def _wrap_def(indent: str, head: str, params: list[str], tail: str) -> Iterator[str]:
    """A ``def`` line, split one parameter a line when it is longer than 100."""
    line = f"{indent}{head}({', '.join(params)}){tail}"
    if len(line) <= 100:
        yield line
        return
    yield f"{indent}{head}("
    for param in params:
        yield f"{indent}{_INDENT}{param},"
    yield f"{indent}){tail}"


def _wrap_call(
    indent: str, prefix: str, call: str, args: list[str], suffix: str = ""
) -> Iterator[str]:
    """``prefix call(args)suffix``, split one argument a line when too long."""
    line = f"{indent}{prefix}{call}({', '.join(args)}){suffix}"
    if len(line) <= 100:
        yield line
        return
    yield f"{indent}{prefix}{call}("
    for arg in args:
        yield f"{indent}{_INDENT}{arg},"
    yield f"{indent}){suffix}"


def _slots(fields: tuple[Field, ...], indent: str, extra: tuple[str, ...] = ()) -> Iterator[str]:
    names = sorted(_q(name) for name in (*(f.py_name for f in fields), *extra))
    if not names:
        yield f"{indent}__slots__ = ()"
        return
    line = f"{indent}__slots__ = ({', '.join(names)}{',' if len(names) == 1 else ''})"
    if len(line) <= 100:
        yield line
        return
    yield f"{indent}__slots__ = ("
    for name in names:
        yield f"{indent}{_INDENT}{name},"
    yield f"{indent})"


def _tuple_literal(
    indent: str, target: str, items: list[str], annotation: str = ""
) -> Iterator[str]:
    inner = ", ".join(items) + ("," if len(items) == 1 else "")
    line = f"{indent}{target}{annotation} = ({inner})"
    if len(line) <= 100:
        yield line
        return
    yield f"{indent}{target}{annotation} = ("
    for item in items:
        yield f"{indent}{_INDENT}{item},"
    yield f"{indent})"


def _list_literal_at(indent: str, target: str, items: list[str]) -> Iterator[str]:
    line = f"{indent}{target} = [{', '.join(items)}]"
    if len(line) <= 100:
        yield line
        return
    yield f"{indent}{target} = ["
    for item in items:
        yield f"{indent}{_INDENT}{item},"
    yield f"{indent}]"


def _list_literal(target: str, items: list[str]) -> Iterator[str]:
    yield f"{target} = ["
    for item in items:
        yield f"{_INDENT}{item},"
    yield "]"


# ---------------------------------------------------------------------------------------
# Methods


def _method_class(method: Method, cls: ProtocolClass) -> Iterator[str]:
    i1, i2, i3 = _INDENT, _INDENT * 2, _INDENT * 3
    flags = [
        "synchronous" if method.synchronous else "asynchronous",
        *(["carries content"] if method.content else []),
        *(["RabbitMQ extension"] if method.extension else []),
        *(["deprecated"] if method.deprecated else []),
    ]
    receivers = " and ".join(sorted(method.chassis)) or "nobody"
    yield f"{i1}class {method.py_name}(Method):"
    yield f'{i2}"""{method.full_name} ({method.class_index}, {method.index}): {", ".join(flags)}.'
    yield ""
    if method.label:
        yield from _wrapped(method.label, i2, i2)
        yield ""
    listing = list(_field_listing(method.fields, "Fields", i2))
    if listing:
        yield f"{i2}Received by the {receivers}."
        yield from listing
        yield f'{i2}"""'
    else:
        yield f'{i2}Received by the {receivers}."""'
    yield ""
    yield from _slots(method.fields, i2, ("_stray",) if method.keeps_stray_bits else ())
    yield f"{i2}CLASS_ID: ClassVar[int] = {method.class_index}"
    yield f"{i2}METHOD_ID: ClassVar[int] = {method.index}"
    yield f"{i2}INDEX: ClassVar[int] = 0x{method.class_index << 16 | method.index:08X}"
    yield f"{i2}NAME: ClassVar[str] = {_q(method.full_name)}"
    yield f"{i2}SYNCHRONOUS: ClassVar[bool] = {method.synchronous}"
    yield f"{i2}CONTENT: ClassVar[bool] = {method.content}"
    yield f"{i2}RESPONSES: ClassVar[tuple[type[Method], ...]] = ()"
    chassis = ", ".join(_q(c) for c in sorted(method.chassis))
    yield f"{i2}CHASSIS: ClassVar[frozenset[str]] = frozenset({{{chassis}}})"
    ann = ": ClassVar[tuple[str, ...]]"
    yield from _tuple_literal(i2, "FIELDS", [_q(f.py_name) for f in method.fields], ann)
    yield from _tuple_literal(i2, "FIELD_TYPES", [_q(f.type) for f in method.fields], ann)
    reserved = ", ".join(_q(f.py_name) for f in method.fields if f.reserved)
    reserved_set = f"frozenset({{{reserved}}})" if reserved else "frozenset()"
    yield f"{i2}RESERVED: ClassVar[frozenset[str]] = {reserved_set}"
    public = [_q(f.py_name) for f in method.fields if not f.reserved]
    yield from _tuple_literal(i2, "__match_args__", public)
    yield ""
    yield from _method_init(method, i2, i3)
    yield ""
    yield from _method_encode(method, i2, i3)
    yield ""
    yield from _method_decode(method, cls, i2, i3)


def _method_init(method: Method, i2: str, i3: str) -> Iterator[str]:
    types = dict(_PY_TYPES, table="Mapping[str, Any] | None", timestamp="int")
    yield from _wrap_def(
        i2, "def __init__", _signature(method.fields, types, _DEFAULTS), " -> None:"
    )
    if not method.fields:
        yield f"{i3}pass"
    if method.keeps_stray_bits:
        yield f"{i3}self._stray = 0"
    for f in method.fields:
        if f.type == "table":
            value = f"{{}} if {f.py_name} is None else {f.py_name}"
            line = f"{i3}self.{f.py_name}: Mapping[str, Any] = {value}"
            if len(line) <= 100:
                yield line
            else:
                yield f"{i3}self.{f.py_name}: Mapping[str, Any] = ("
                yield f"{i3}{_INDENT}{value}"
                yield f"{i3})"
        else:  # annotated, so that type checkers need not infer it
            yield f"{i3}self.{f.py_name}: {types[f.type]} = {f.py_name}"


def _method_encode(method: Method, i2: str, i3: str) -> Iterator[str]:
    i4 = i3 + _INDENT
    yield f"{i2}def encode(self) -> bytes:"
    if not method.fields:
        yield f"{i3}return {struct_name('>HH')}.pack({method.class_index}, {method.index})"
        return
    yield f"{i3}try:"
    # Locals first: string bytes and packed bit octets, then one pack per run.
    for segment in method.layout:
        if isinstance(segment, FixedRun):
            for item in segment.items:
                if isinstance(item, BitGroup):
                    several = len(method.bit_groups) > 1
                    yield from _bits_lines(item, _group_number(method, item), i4, several)
            continue
        f = segment.field
        if f.type == "shortstr":
            yield f'{i4}{_local(f)} = self.{f.py_name}.encode("utf-8", "surrogateescape")'
        elif f.type == "longstr":
            yield f"{i4}{_local(f)} = self.{f.py_name}"
    parts = [
        f"{struct_name(fmt)}.pack({', '.join(args)})" if fmt else args[0]
        for fmt, args in _encode_parts(method)
    ]
    for index, part in enumerate(parts):
        if len(i4) + len(part) > 90 and part.startswith("_S_"):
            call, _, args = part.partition("(")
            yield from _wrap_call(i4, f"p{index} = ", call, args[:-1].split(", "))
            parts[index] = f"p{index}"
    # One join allocates once where a + chain makes a bytes per +; the + chain stays for
    # a part too long for the join's indentation (ruff format would wrap it).
    if len(parts) >= 4 and all(len(i4) + 9 + len(part) <= 100 for part in parts):
        yield f'{i4}return b"".join('
        yield f"{i4}{_INDENT}("
        for part in parts:
            yield f"{i4}{_INDENT * 2}{part},"
        yield f"{i4}{_INDENT})"
        yield f"{i4})"
        yield f"{i3}except (struct.error, AttributeError, TypeError, UnicodeEncodeError):"
        yield f"{i4}raise self._encode_error() from None"
        return
    line = f"{i4}return {' + '.join(parts)}"
    if len(line) <= 100:
        yield line
    elif len(i4 + _INDENT) + len(" + ".join(parts)) <= 100:
        yield f"{i4}return ("
        yield f"{i4}{_INDENT}{' + '.join(parts)}"
        yield f"{i4})"
    else:
        yield f"{i4}return ("
        yield f"{i4}{_INDENT}{parts[0]}"
        for part in parts[1:]:
            yield f"{i4}{_INDENT}+ {part}"
        yield f"{i4})"
    yield f"{i3}except (struct.error, AttributeError, TypeError, UnicodeEncodeError):"
    yield f"{i4}raise self._encode_error() from None"


def _bits_lines(group: BitGroup, number: int, indent: str, several: bool) -> Iterator[str]:
    first, *rest = group.fields
    yield f"{indent}bits{number} = 1 if self.{first.py_name} else 0"
    for bit, f in enumerate(rest, 1):
        yield f"{indent}if self.{f.py_name}:"
        yield f"{indent}{_INDENT}bits{number} |= {1 << bit}"
    if group.stray_mask:  # the unnamed bits a decoded method arrived with
        if several:
            yield f"{indent}bits{number} |= self._stray >> {8 * number} & 0xFF"
        else:
            yield f"{indent}bits{number} |= self._stray"


def _stray_expression(method: Method) -> str:
    """The decoder's value of ``_stray``: every group's unnamed bits, group k at 8k."""
    parts = []
    for number, group in enumerate(method.bit_groups):
        if group.stray_mask:
            bits = f"bits{number} & 0x{group.stray_mask:02X}"
            parts.append(f"({bits}) << {8 * number}" if number else bits)
    return " | ".join(parts)


def _method_decode(method: Method, cls: ProtocolClass, i2: str, i3: str) -> Iterator[str]:
    i4 = i3 + _INDENT
    qualname = f"{cls.py_name}.{method.py_name}"
    yield f"{i2}@classmethod"
    yield f"{i2}def decode(cls, buf: Any, off: int, end: int) -> {qualname}:"
    name = _q(method.full_name)
    if method.fields:
        yield f"{i3}try:"
        runs = iter(_decode_runs(method))
        run: tuple[str, list[str]] | None = None
        fixed_pending = False
        for segment in method.layout:
            if isinstance(segment, FixedRun):
                fixed_pending = True
                continue
            f = segment.field
            if f.type in ("shortstr", "longstr"):
                run = next(runs)
                yield from _unpack_lines(run, i4)
                fixed_pending = False
                if f.type == "shortstr":
                    yield f'{i4}{f.py_name} = str(buf[off : off + n], "utf-8", "surrogateescape")'
                else:
                    yield f"{i4}if off + n > end:"
                    yield f"{i4}{_INDENT}raise _truncated({name}, off, end)"
                    yield f"{i4}{f.py_name} = bytes(buf[off : off + n])"
                yield f"{i4}off += n"
            else:
                if fixed_pending:
                    yield from _unpack_lines(next(runs), i4)
                    fixed_pending = False
                yield f"{i4}{f.py_name}, off = _decode_table(buf, off, end)"
        if fixed_pending:
            yield from _unpack_lines(next(runs), i4)
        yield f"{i3}except (struct.error, IndexError):"
        yield f"{i4}raise _truncated({name}, off, end) from None"
    yield f"{i3}if off != end:"
    yield f"{i4}raise _length_mismatch({name}, off, end)"
    yield f"{i3}self = _new(cls)"
    for segment in method.layout:
        if isinstance(segment, FixedRun):
            for item in segment.items:
                if isinstance(item, IntItem):
                    yield f"{i3}self.{item.field.py_name} = {item.field.py_name}"
                else:
                    number = _group_number(method, item)
                    for bit, f in enumerate(item.fields):
                        yield f"{i3}self.{f.py_name} = (bits{number} & {1 << bit}) != 0"
        else:
            yield f"{i3}self.{segment.field.py_name} = {segment.field.py_name}"
    if method.keeps_stray_bits:
        yield f"{i3}self._stray = {_stray_expression(method)}"
    yield f"{i3}return self"


def _unpack_lines(run: tuple[str, list[str]], indent: str) -> Iterator[str]:
    fmt, names = run
    if fmt == ">B":  # a lone octet (a string length): indexing beats struct
        yield f"{indent}{names[0]} = buf[off]"
        yield f"{indent}off += 1"
        return
    size = sum(_SIZES[c] for c in fmt[1:])
    targets = ", ".join(names) + ("," if len(names) == 1 else "")
    if len(names) == 1:
        targets = f"({targets})"
    call = f"{struct_name(fmt)}.unpack_from(buf, off)"
    if len(f"{indent}{targets} = {call}") <= 100:
        yield f"{indent}{targets} = {call}"
    elif len(f"{indent}{targets} = (") <= 100:  # ruff format wraps the call first
        yield f"{indent}{targets} = ("
        yield f"{indent}{_INDENT}{call}"
        yield f"{indent})"
    else:  # then the targets, one a line
        yield f"{indent}("
        for name in names:
            yield f"{indent}{_INDENT}{name},"
        yield f"{indent}) = {call}"
    yield f"{indent}off += {size}"


# ---------------------------------------------------------------------------------------
# Content properties


def _flag_position(index: int) -> tuple[int, int]:
    """(flag word, bit mask) of the property at ``index`` [PDF §4.2.6.1]."""
    return index // 15, 1 << (15 - index % 15)


def _wrapped(text: str, first: str, rest: str) -> Iterator[str]:
    yield from textwrap.wrap(
        text, 100, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )


def _field_listing(fields: tuple[Field, ...], heading: str, indent: str) -> Iterator[str]:
    """Docstring lines naming each field that has a label: its type and meaning."""
    labelled = [f for f in fields if f.label]
    if labelled:
        yield ""
        yield f"{indent}{heading}:"
    for f in labelled:
        inner = indent + _INDENT
        yield from _wrapped(f"{f.py_name} ({f.type}): {f.label}", inner, inner + _INDENT)


def _properties_class(cls: ProtocolClass) -> Iterator[str]:
    i1, i2, i3 = _INDENT, _INDENT * 2, _INDENT * 3
    i4 = i3 + _INDENT
    name = f"{cls.py_name}Properties"
    fields = cls.properties
    yield f"class {name}(Properties):"
    listing = list(_field_listing(fields, "Properties", i1))
    summary = f"Content properties of class {cls.name} ({cls.index}); None means absent."
    if listing:
        yield f'{i1}"""{summary}'
        yield from listing
        yield f'{i1}"""'
    else:
        yield f'{i1}"""{summary}"""'
    yield ""
    plain = tuple(f for f in fields if f.type != "table")
    yield from _slots(plain, i1, tuple(_lazy_slot(f) for f in fields if f.type == "table"))
    yield f"{i1}CLASS_ID: ClassVar[int] = {cls.index}"
    yield f"{i1}NAME: ClassVar[str] = {_q(cls.name + '.properties')}"
    ann = ": ClassVar[tuple[str, ...]]"
    yield from _tuple_literal(i1, "FIELDS", [_q(f.py_name) for f in fields], ann)
    yield from _tuple_literal(i1, "FIELD_TYPES", [_q(f.type) for f in fields], ann)
    reserved = ", ".join(_q(f.py_name) for f in fields if f.reserved)
    reserved_set = f"frozenset({{{reserved}}})" if reserved else "frozenset()"
    yield f"{i1}RESERVED: ClassVar[frozenset[str]] = {reserved_set}"
    yield ""
    types = {k: f"{v} | None" for k, v in _PY_TYPES.items()}
    defaults = dict.fromkeys(_PY_TYPES, "None")
    yield from _wrap_def(i1, "def __init__", _signature(fields, types, defaults), " -> None:")
    yield f"{i2}self._wire = None"
    for f in fields:
        if f.type == "table":
            yield f"{i2}self.{_lazy_slot(f)}: Any = {f.py_name}"
        else:
            yield f"{i2}self.{f.py_name}: {types[f.type]} = {f.py_name}"
    # A table property is decoded when first read (its bytes were checked when the block
    # was decoded): until then its slot holds _LAZY, and the snapshot its offset.
    for index, f in enumerate(fields):
        if f.type == "table":
            yield ""
            yield f"{i1}@property"
            yield f"{i1}def {f.py_name}(self) -> {types['table']}:"
            yield f"{i2}value = self.{_lazy_slot(f)}"
            yield f"{i2}if value is _LAZY:  # the snapshot holds its offset in the block"
            yield f"{i3}wire, seen = self._wire, self._seen"
            read = f"_read_table(wire, seen[{index}], len(wire), _RABBITMQ, _MAX_DEPTH, 0)"
            yield f"{i3}value, _ = {read}  # type: ignore[arg-type]"
            yield f"{i3}seen[{index}] = self.{_lazy_slot(f)} = value"
            yield f"{i2}return value  # type: ignore[no-any-return]"
            yield ""
            yield f"{i1}@{f.py_name}.setter"
            yield f"{i1}def {f.py_name}(self, value: {types['table']}) -> None:"
            yield f"{i2}self.{_lazy_slot(f)} = value"
    yield ""
    # encode
    words = (len(fields) + 14) // 15 or 1
    # A decoded block whose properties are all still the objects it was decoded into (and
    # whose tables are unchanged) is written back as the bytes it came from. Otherwise the
    # properties go into one bytearray (octets and string lengths appended, the table
    # written in place); a length or an octet over 255 is a ValueError there.
    yield f"{i1}def encode(self) -> bytes:"
    yield f"{i2}wire = self._wire"
    yield f"{i2}if wire is not None:"
    yield f"{i3}seen = self._seen"
    checks: list[list[str]] = []  # each check's lines, as ruff format wraps them
    for index, f in enumerate(fields):
        if f.type == "table":
            slot = f"self.{_lazy_slot(f)}"
            lazy = f"{slot} is _LAZY"
            same = f"or ({slot} is seen[{index}] and _table_unchanged({slot}))"
            if len(f"{i4}and ({lazy} {same})") <= 100:
                checks.append([f"({lazy} {same})"])
            else:
                checks.append(["(", f"{_INDENT}{lazy}", f"{_INDENT}{same}", ")"])
        else:
            checks.append([f"self.{f.py_name} is seen[{index}]"])
    if checks:
        yield f"{i3}if ("
        for number, lines in enumerate(checks):
            yield f"{i4}{'and ' if number else ''}{lines[0]}"
            yield from (f"{i4}{line}" for line in lines[1:])
        yield f"{i3}):"
        yield f"{i4}return wire"
    else:
        yield f"{i3}return wire"
    yield f"{i2}out = bytearray()"
    for w in range(words):
        yield f"{i2}flags{w} = 0"
    yield f"{i2}try:"
    for index, f in enumerate(fields):
        word, mask = _flag_position(index)
        yield f"{i3}{_local(f)} = self.{f.py_name}"
        yield f"{i3}if {_local(f)} is not None:"
        yield f"{i4}flags{word} |= 0x{mask:04X}"
        yield from _encode_property(f, i4, f"{cls.name}.properties.{f.py_name}")
    if any(f.type in ("table", "timestamp") for f in fields):
        yield f"{i2}except EncodeError:  # already names the property"
        yield f"{i3}raise"
    errors = "struct.error, AttributeError, TypeError, UnicodeEncodeError, ValueError"
    yield f"{i2}except ({errors}):"
    yield f"{i3}raise self._encode_error() from None"
    # Write a flag word only when it or a later one has a bit set, and set the
    # continuation bit (0x0001) in every word before the last one written.
    for last in range(words - 1, 0, -1):
        flag_args = ", ".join([*(f"flags{w} | 1" for w in range(last)), f"flags{last}"])
        yield f"{i2}if flags{last}:"
        yield f"{i3}return _S_{'H' * (last + 1)}.pack({flag_args}) + out"
    yield f"{i2}return _S_H.pack(flags0) + out"
    yield ""
    # decode
    yield f"{i1}@classmethod"
    yield f"{i1}def decode(cls, buf: Any, off: int, end: int) -> {name}:"
    label = _q(f"{cls.name} properties")
    yield f"{i2}start = off"
    yield f"{i2}try:"
    for w in range(words):
        if w:
            yield f"{i3}flags{w} = 0"
            yield f"{i3}if flags{w - 1} & 1:"
            yield f"{i4}(flags{w},) = _S_H.unpack_from(buf, off)"
            yield f"{i4}off += 2"
        else:
            yield f"{i3}(flags0,) = _S_H.unpack_from(buf, off)"
            yield f"{i3}off += 2"
    last = words - 1
    known = 0
    for index in range(len(fields)):
        word, mask = _flag_position(index)
        if word == last:
            known |= mask
    yield f"{i3}if flags{last} & 0x{(~known & 0xFFFF) & ~1:04X}:"
    yield f"{i4}raise _unknown_properties({label}, off)"
    yield f"{i3}if flags{last} & 1:"
    yield f"{i4}off = _skip_flag_words({label}, buf, off, end)"
    # Properties are checked in groups of up to four flags of one word: an absent group
    # costs one test (most properties are absent from most messages).
    for group in _flag_groups(len(fields)):
        indent = i3
        if len(group) > 1:
            word = _flag_position(group[0])[0]
            group_mask = sum(_flag_position(index)[1] for index in group)
            yield f"{i3}if flags{word} & 0x{group_mask:04X}:"
            indent = i4
        for index in group:
            word, mask = _flag_position(index)
            yield f"{indent}if flags{word} & 0x{mask:04X}:"
            yield from _decode_property(fields[index], indent + _INDENT, label)
            yield f"{indent}else:"
            yield from _absent(fields[index], indent + _INDENT)
        if len(group) > 1:
            yield f"{i3}else:"
            for index in group:
                yield from _absent(fields[index], i4)
    yield f"{i2}except (struct.error, IndexError):"
    yield f"{i3}raise _truncated({label}, off, end) from None"
    yield f"{i2}if off != end:"
    yield f"{i3}raise _length_mismatch({label}, off, end)"
    yield f"{i2}self = _new(cls)"
    for f in fields:
        if f.type == "table":
            yield f"{i2}self.{_lazy_slot(f)} = {_local(f)}"
        else:
            yield f"{i2}self.{f.py_name} = {_local(f)}"
    # What encode compares against, and the bytes it writes back while nothing changed.
    seen = [f"{_local(f)}_at" if f.type == "table" else _local(f) for f in fields]
    yield from _list_literal_at(i2, "self._seen", seen)
    yield f"{i2}wire = buf[start:end]"
    yield f"{i2}self._wire = wire if wire.__class__ is bytes else bytes(wire)"
    yield f"{i2}return self"


def _lazy_slot(f: Field) -> str:
    """The slot behind a table property, which is a property decoded when first read."""
    return f"_{f.py_name}"


def _absent(f: Field, indent: str) -> Iterator[str]:
    yield f"{indent}{_local(f)} = None"
    if f.type == "table":
        yield f"{indent}{_local(f)}_at = None"


def _flag_groups(count: int) -> list[list[int]]:
    """Property indexes in runs of up to four that share a flag word."""
    groups: list[list[int]] = []
    for index in range(count):
        if not groups or len(groups[-1]) == 4 or index % 15 == 0:
            groups.append([])
        groups[-1].append(index)
    return groups


def _encode_property(f: Field, indent: str, label: str) -> Iterator[str]:
    value = _local(f)
    if f.type == "shortstr":
        yield f'{indent}raw = {value}.encode("utf-8", "surrogateescape")'
        yield f"{indent}out.append(len(raw))"
        yield f"{indent}out += raw"
    elif f.type == "longstr":
        yield f"{indent}out += _S_I.pack(len({value}))"
        yield f"{indent}out += {value}"
    elif f.type == "table":
        yield f"{indent}_write_table(out, {value}, {_q(label)})"
    elif f.type == "timestamp":
        yield f"{indent}out += _S_Q.pack(_encode_timestamp({value}, {_q(label)}))"
    elif f.type == "octet":
        yield f"{indent}out.append({value})"
    else:
        code = {"short": "H", "long": "I", "longlong": "Q"}[f.type]
        yield f"{indent}out += _S_{code}.pack({value})"


def _decode_property(f: Field, indent: str, label: str) -> Iterator[str]:
    target = _local(f)
    if f.type == "shortstr":
        yield f"{indent}n = buf[off]"
        args = 'buf[off + 1 : off + 1 + n], "utf-8", "surrogateescape"'
        if len(f"{indent}{target} = str({args})") <= 100:
            yield f"{indent}{target} = str({args})"
        else:  # as ruff format wraps it
            yield f"{indent}{target} = str("
            yield f"{indent}{_INDENT}{args}"
            yield f"{indent})"
        yield f"{indent}off += 1 + n"
    elif f.type == "longstr":
        yield f"{indent}(n,) = _S_I.unpack_from(buf, off)"
        yield f"{indent}if off + 4 + n > end:"
        yield f"{indent}{_INDENT}raise _truncated({label}, off, end)"
        yield f"{indent}{target} = bytes(buf[off + 4 : off + 4 + n])"
        yield f"{indent}off += 4 + n"
    elif f.type == "table":  # checked now, decoded from the block's bytes when first read
        yield f"{indent}{target} = _LAZY"
        yield f"{indent}{target}_at = off - start"
        yield f"{indent}off = _check_table(buf, off, end, _RABBITMQ, _MAX_DEPTH, 0)"
    elif f.type == "octet":  # indexing beats struct
        yield f"{indent}{target} = buf[off]"
        yield f"{indent}off += 1"
    else:
        code = {"short": "H", "long": "I", "longlong": "Q", "timestamp": "Q"}[f.type]
        yield f"{indent}({target},) = _S_{code}.unpack_from(buf, off)"
        yield f"{indent}off += {_SIZES[code]}"


# ---------------------------------------------------------------------------------------
# The module


def _header(spec: Spec) -> Iterator[str]:
    yield f"# Generated by amqpcodec.compiler from {spec.source or 'an AMQP spec'}. Do not edit."
    yield "# Regenerate with: python -m amqpcodec.compiler"
    yield f'"""AMQP {spec.major}-{spec.minor}-{spec.revision}: constants, methods and properties.'
    yield ""
    yield "One class per method, in a namespace per class (``Basic.Publish``); ``METHODS`` maps"
    yield "``(class_id, method_id)`` to the method class. Generated from the spec XML."
    yield '"""'
    yield ""
    yield "from __future__ import annotations"
    yield ""
    if any(f.type == "timestamp" for c in spec.classes for f in c.properties):
        yield "import datetime"
    yield "import enum"
    yield "import struct"
    yield "from collections.abc import Mapping"
    yield "from typing import Any, ClassVar, Final"
    yield ""
    yield "from amqpcodec._base import LAZY as _LAZY"
    yield "from amqpcodec._base import Method, Properties"
    yield "from amqpcodec._errors import DecodeError, EncodeError"
    yield "from amqpcodec._wire import DEFAULT_MAX_DEPTH as _MAX_DEPTH"
    yield "from amqpcodec._wire import RABBITMQ as _RABBITMQ"
    yield "from amqpcodec._wire import check_table as _check_table"
    yield "from amqpcodec._wire import decode_table as _decode_table"
    yield "from amqpcodec._wire import encode_table as _encode_table"
    yield "from amqpcodec._wire import encode_timestamp as _encode_timestamp"
    yield "from amqpcodec._wire import read_table as _read_table"
    yield "from amqpcodec._wire import table_unchanged as _table_unchanged"
    yield "from amqpcodec._wire import write_table as _write_table"
    yield ""


def _exports(spec: Spec) -> list[str]:
    names = [c.py_name for c in spec.constants]
    names += ["ReplyCode", "METHODS", "METHODS_BY_INDEX", "METHODS_BY_NAME", "PROPERTIES"]
    names += ["PROTOCOL_VERSION", "PORT"]
    names += [cls.py_name for cls in spec.classes]
    names += [f"{cls.py_name}Properties" for cls in spec.classes if cls.properties]
    # isort order, as ruff wants __all__: CONSTANTS, then Classes, then the rest.
    return sorted(names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))


def _constants(spec: Spec) -> Iterator[str]:
    yield f"PROTOCOL_VERSION: Final = ({spec.major}, {spec.minor}, {spec.revision})"
    yield f"PORT: Final = {spec.port}"
    for c in spec.constants:
        yield f"{c.py_name}: Final = {c.value}"
    yield ""
    yield ""
    yield "class ReplyCode(enum.IntEnum):"
    yield f'{_INDENT}"""Reply codes of Connection.Close, Channel.Close and Basic.Return."""'
    yield ""
    for c in spec.constants:
        if c.error_class is not None or c.name.startswith("reply-"):
            yield f"{_INDENT}{c.py_name} = {c.value}"
    yield ""
    yield f"{_INDENT}@property"
    yield f"{_INDENT}def is_hard_error(self) -> bool:"
    yield f'{_INDENT * 2}"""A connection exception (as opposed to a channel exception)."""'
    yield f"{_INDENT * 2}return self in _HARD_ERRORS"
    yield ""
    yield ""
    hard = [f"ReplyCode.{c.py_name}" for c in spec.constants if c.error_class == "hard-error"]
    yield "_HARD_ERRORS: Final[frozenset[int]] = frozenset("
    yield f"{_INDENT}{{"
    for name in hard:
        yield f"{_INDENT * 2}{name},"
    yield f"{_INDENT}}}"
    yield ")"


def _helpers() -> Iterator[str]:
    yield "_new = object.__new__"
    yield ""
    yield ""
    # The reply code is a literal: a spec file need not define a frame-error constant.
    # A shortstr's length can carry ``off`` past ``end`` before a read fails; the error
    # points at the end of the arguments then, never beyond them.
    yield "def _truncated(what: str, off: int, end: int) -> DecodeError:"
    yield f"{_INDENT}if off > end:"
    yield f"{_INDENT * 2}off = end"
    yield f'{_INDENT}return DecodeError(f"{{what}}: arguments are truncated", 501, off)'
    yield ""
    yield ""
    yield "def _length_mismatch(what: str, off: int, end: int) -> DecodeError:"
    yield f"{_INDENT}if off > end:"
    yield f"{_INDENT * 2}return _truncated(what, end, end)"
    yield f'{_INDENT}message = f"{{what}}: {{end - off}} bytes left over after the arguments"'
    yield f"{_INDENT}return DecodeError(message, 501, off)"
    yield ""
    yield ""
    yield "def _unknown_properties(what: str, off: int) -> DecodeError:"
    yield f'{_INDENT}return DecodeError(f"{{what}}: unknown property flags set", 501, off)'
    yield ""
    yield ""
    yield "def _skip_flag_words(what: str, buf: Any, off: int, end: int) -> int:"
    yield f'{_INDENT}"""Read further flag words; they name no property, so must be empty."""'
    yield f"{_INDENT}while True:"
    yield f"{_INDENT * 2}if off + 2 > end:"
    yield f"{_INDENT * 3}raise _truncated(what, off, end)"
    yield f"{_INDENT * 2}(flags,) = _S_H.unpack_from(buf, off)"
    yield f"{_INDENT * 2}off += 2"
    yield f"{_INDENT * 2}if flags & 0xFFFE:"
    yield f"{_INDENT * 3}raise _unknown_properties(what, off - 2)"
    yield f"{_INDENT * 2}if not flags & 1:"
    yield f"{_INDENT * 3}return off"


def emit_spec_module(spec: Spec) -> Iterator[str]:
    """Yield the lines of ``spec.py`` for ``spec``."""
    yield from _header(spec)
    yield from _list_literal("__all__", [_q(n) for n in _exports(spec)])
    yield ""
    yield from _constants(spec)
    yield ""
    flag_formats = {
        ">" + "H" * (words + 1)
        for c in spec.classes
        for words in range(max(1, (len(c.properties) + 14) // 15))
    }
    formats = sorted(_formats(spec) | flag_formats, key=lambda f: (len(f), f))
    for fmt in formats:
        yield f"{struct_name(fmt)} = struct.Struct({_q(fmt)})"
    yield from _helpers()
    for cls in spec.classes:
        yield ""
        yield ""
        yield f"class {cls.py_name}:"
        if cls.label:
            yield f'{_INDENT}"""Methods of class {cls.name} ({cls.index}).'
            yield ""
            yield from _wrapped(cls.label, _INDENT, _INDENT)
            yield f'{_INDENT}"""'
        else:
            yield f'{_INDENT}"""Methods of class {cls.name} ({cls.index})."""'
        yield ""
        yield f"{_INDENT}CLASS_ID: Final = {cls.index}"
        yield f"{_INDENT}NAME: Final = {_q(cls.name)}"
        for method in cls.methods:
            yield ""
            yield from _method_class(method, cls)
    for cls in spec.classes:
        if cls.properties:
            yield ""
            yield ""
            yield from _properties_class(cls)
    yield ""
    yield ""
    for cls in spec.classes:
        for method in cls.methods:
            if method.responses:
                targets = [f"{cls.py_name}.{cls.method(r).py_name}" for r in method.responses]
                yield from _tuple_literal("", f"{cls.py_name}.{method.py_name}.RESPONSES", targets)
    yield ""
    yield "METHODS: Final[dict[tuple[int, int], type[Method]]] = {"
    for cls in spec.classes:
        for method in cls.methods:
            key = f"({method.class_index}, {method.index})"
            yield f"{_INDENT}{key}: {cls.py_name}.{method.py_name},"
    yield "}"
    by_index = "{m.INDEX: m for m in METHODS.values()}"
    yield f"METHODS_BY_INDEX: Final[dict[int, type[Method]]] = {by_index}"
    yield "METHODS_BY_NAME: Final[dict[str, type[Method]]] = {m.NAME: m for m in METHODS.values()}"
    yield "PROPERTIES: Final[dict[int, type[Properties]]] = {"
    for cls in spec.classes:
        if cls.properties:
            yield f"{_INDENT}{cls.index}: {cls.py_name}Properties,"
    yield "}"
