"""AMQP spec XML -> a frozen intermediate representation.

How this works: :func:`parse_spec` reads the published element vocabulary (``amqp``,
``constant``, ``domain``, ``class``, ``method``, ``field``, ``response``, ``chassis``),
validates every name, number and type it takes from the file, and computes once every
derived fact the emitters need: Python names, the native type behind each domain, and
each method's *layout*, the sequence of fixed-size runs (one ``struct.Struct`` each, with
bit groups packed into octets) and variable-size fields. Emitters only walk this IR.

Because generated source is executed (``load_spec``), nothing from the XML reaches the
output except names that passed :data:`_NAME` and numbers that were parsed as ints.
"""

from __future__ import annotations

import keyword
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BitGroup",
    "Constant",
    "Field",
    "FixedRun",
    "IntItem",
    "Method",
    "ProtocolClass",
    "Spec",
    "SpecError",
    "VarField",
    "parse_spec",
]


class SpecError(ValueError):
    """The XML is not a usable AMQP spec; the message names the offending element."""


_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
# Native argument types [PDF §4.2.5] and their struct codes (None: variable size).
NATIVE_TYPES: dict[str, str | None] = {
    "bit": None,
    "octet": "B",
    "short": "H",
    "long": "I",
    "longlong": "Q",
    "timestamp": "Q",
    "shortstr": None,
    "longstr": None,
    "table": None,
}
# Attribute names on generated method classes that a field must not shadow.
_RESERVED_ATTRIBUTES = frozenset(
    {"encode", "decode", "fields", "encode_arguments", "decode_arguments", "content"}
)
# Names the generated methods use for parameters and locals (``decode`` keeps each field
# in a local of the field's name) or take from builtins and the module: a field of that
# name would shadow them. ``bits0``, ``bits1``, ... are matched by _BITS_LOCAL.
_GENERATED_LOCALS = frozenset({"self", "cls", "buf", "off", "end", "n", "str", "bytes", "struct"})
_BITS_LOCAL = re.compile(r"bits[0-9]+\Z")
# Module-level names of the generated module that a class or constant must not replace.
_MODULE_NAMES = frozenset(
    {
        "Any",
        "ClassVar",
        "DecodeError",
        "Final",
        "Mapping",
        "Method",
        "Properties",
        "ReplyCode",
        "METHODS",
        "METHODS_BY_INDEX",
        "METHODS_BY_NAME",
        "PORT",
        "PROPERTIES",
        "PROTOCOL_VERSION",
    }
)
_MAX_ID = 0xFFFF


@dataclass(frozen=True)
class Field:
    """One method argument or content property."""

    name: str  # as in the XML: "routing-key"
    py_name: str  # "routing_key"; keywords get a trailing underscore
    type: str  # native type: "bit", "octet", ..., "table"
    domain: str  # the XML domain, or the type when the field names a type directly
    reserved: bool
    extension: bool


@dataclass(frozen=True)
class IntItem:
    """A fixed-size integer inside a run."""

    field: Field
    code: str  # struct code


@dataclass(frozen=True)
class BitGroup:
    """Up to eight consecutive bit fields packed into one octet, first bit in 0x01."""

    fields: tuple[Field, ...]


@dataclass(frozen=True)
class FixedRun:
    """Consecutive fixed-size fields read and written with one ``struct.Struct``."""

    items: tuple[IntItem | BitGroup, ...]

    @property
    def format(self) -> str:
        return ">" + "".join(item.code if isinstance(item, IntItem) else "B" for item in self.items)

    @property
    def size(self) -> int:
        return sum(
            {"B": 1, "H": 2, "I": 4, "Q": 8}[item.code] if isinstance(item, IntItem) else 1
            for item in self.items
        )


@dataclass(frozen=True)
class VarField:
    """A variable-size field: shortstr, longstr or table."""

    field: Field


Segment = FixedRun | VarField


@dataclass(frozen=True)
class Method:
    name: str  # "get-ok"
    index: int
    class_name: str  # "basic"
    class_index: int
    py_name: str  # "GetOk"
    synchronous: bool
    content: bool
    responses: tuple[str, ...]  # method names in the same class
    chassis: frozenset[str]  # "client", "server": the sides that receive it
    fields: tuple[Field, ...]
    extension: bool
    deprecated: bool
    layout: tuple[Segment, ...]

    @property
    def full_name(self) -> str:
        return f"{self.class_name}.{self.name}"

    @property
    def has_no_wait(self) -> bool:
        return any(f.name in ("no-wait", "nowait") for f in self.fields)


@dataclass(frozen=True)
class ProtocolClass:
    name: str
    index: int
    py_name: str  # "Basic"
    methods: tuple[Method, ...]
    properties: tuple[Field, ...]
    extension: bool

    def method(self, name: str) -> Method:
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)


@dataclass(frozen=True)
class Constant:
    name: str  # "frame-min-size"
    py_name: str  # "FRAME_MIN_SIZE"
    value: int
    error_class: str | None  # "soft-error", "hard-error" or None
    extension: bool


@dataclass(frozen=True)
class Spec:
    major: int
    minor: int
    revision: int
    port: int
    constants: tuple[Constant, ...]
    domains: tuple[tuple[str, str], ...]  # (domain, native type), in file order
    classes: tuple[ProtocolClass, ...]
    source: str = field(default="")

    @property
    def methods(self) -> Iterator[Method]:
        for cls in self.classes:
            yield from cls.methods

    def method(self, full_name: str) -> Method:
        class_name, _, method_name = full_name.partition(".")
        for cls in self.classes:
            if cls.name == class_name:
                return cls.method(method_name)
        raise KeyError(full_name)


# ---------------------------------------------------------------------------------------


def python_name(name: str) -> str:
    """``routing-key`` -> ``routing_key``; a keyword gets a trailing underscore."""
    py = name.replace("-", "_")
    return py + "_" if keyword.iskeyword(py) else py


def camel_name(name: str) -> str:
    """``get-ok`` -> ``GetOk``."""
    return "".join(part.capitalize() for part in name.split("-"))


def _where(element: ET.Element, parents: tuple[str, ...] = ()) -> str:
    path = "/".join((*parents, f"{element.tag}[@name={element.get('name')!r}]"))
    return path


def _name(element: ET.Element, parents: tuple[str, ...]) -> str:
    name = element.get("name")
    if name is None or not _NAME.match(name):
        raise SpecError(f"{_where(element, parents)}: name must match [a-z][a-z0-9-]*")
    return name


def _int(element: ET.Element, attribute: str, parents: tuple[str, ...], high: int) -> int:
    raw = element.get(attribute)
    if raw is None or not re.fullmatch(r"[0-9]{1,20}", raw.strip()):
        raise SpecError(f"{_where(element, parents)}: {attribute}={raw!r} is not an integer")
    value = int(raw)
    if value > high:
        raise SpecError(f"{_where(element, parents)}: {attribute}={value} is out of range")
    return value


def _flag(element: ET.Element, attribute: str) -> bool:
    return element.get(attribute, "0") in ("1", "true", "yes")


def _layout(fields: tuple[Field, ...]) -> tuple[Segment, ...]:
    """Group fields into fixed runs and variable fields [PDF §4.2.5.2 bit packing]."""
    segments: list[Segment] = []
    run: list[IntItem | BitGroup] = []
    bits: list[Field] = []

    def close_bits() -> None:
        if bits:
            run.append(BitGroup(tuple(bits)))
            bits.clear()

    for f in fields:
        if f.type == "bit":
            if len(bits) == 8:
                close_bits()
            bits.append(f)
            continue
        close_bits()
        code = NATIVE_TYPES[f.type]
        if code is not None:
            run.append(IntItem(f, code))
        else:
            if run:
                segments.append(FixedRun(tuple(run)))
                run = []
            segments.append(VarField(f))
    close_bits()
    if run:
        segments.append(FixedRun(tuple(run)))
    return tuple(segments)


def _fields(
    parent: ET.Element, domains: dict[str, str], parents: tuple[str, ...], strict: bool = False
) -> tuple[Field, ...]:
    fields: list[Field] = []
    seen: set[str] = set()
    for el in parent.findall("field"):
        name = _name(el, parents)
        if strict and el.get("extension") is not None:
            # The strict profile keeps the wire layout: an extension field inside an
            # official method is the reserved field the official XML has there.
            name = f"reserved-{sum(f.reserved for f in fields) + 1}"
            el = ET.Element("field", {**el.attrib, "name": name, "reserved": "1"})
            del el.attrib["extension"]
        domain = el.get("domain") or el.get("type")
        if domain is None or domain not in domains:
            raise SpecError(f"{_where(el, parents)}: unknown domain or type {domain!r}")
        py = python_name(name)
        if (
            py in seen
            or py in _RESERVED_ATTRIBUTES
            or py in _GENERATED_LOCALS
            or _BITS_LOCAL.match(py)
        ):
            raise SpecError(f"{_where(el, parents)}: duplicate or reserved field name")
        seen.add(py)
        fields.append(
            Field(
                name=name,
                py_name=py,
                type=domains[domain],
                domain=domain,
                reserved=_flag(el, "reserved"),
                extension=el.get("extension") is not None,
            )
        )
    return tuple(fields)


def parse_spec(source: str | Path, *, strict: bool = False) -> Spec:
    """Parse an AMQP spec XML file (ours or a published one) into the IR.

    ``strict=True`` leaves out everything marked ``extension="..."`` (the RabbitMQ
    additions), giving the plain 0-9-1 profile of our file.
    """
    path = Path(source)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise SpecError(f"{path}: cannot read XML: {exc}") from None
    return parse_element(root, strict=strict, source=path.name)


def parse_element(root: ET.Element, *, strict: bool = False, source: str = "") -> Spec:
    """Parse an already-read ``<amqp>`` element; see :func:`parse_spec`."""
    if root.tag != "amqp":
        raise SpecError(f"root element is <{root.tag}>, expected <amqp>")

    def keep(el: ET.Element) -> bool:
        return not (strict and el.get("extension") is not None)

    top = ("amqp",)
    module_names: set[str] = set(_MODULE_NAMES)

    def claim(py_name: str, el: ET.Element, parents: tuple[str, ...]) -> None:
        """Reserve a module-level name of the generated code; a second claim is an error."""
        if py_name in module_names:
            raise SpecError(f"{_where(el, parents)}: {py_name} is already defined")
        module_names.add(py_name)

    constants: list[Constant] = []
    seen_constants: set[str] = set()
    for el in root.findall("constant"):
        if not keep(el):
            continue
        name = _name(el, top)
        if name in seen_constants:
            raise SpecError(f"{_where(el, top)}: duplicate constant")
        seen_constants.add(name)
        claim(python_name(name).upper(), el, top)
        error_class = el.get("class")
        if error_class not in (None, "soft-error", "hard-error"):
            raise SpecError(f"{_where(el, top)}: class={error_class!r} is not an error class")
        constants.append(
            Constant(
                name=name,
                py_name=python_name(name).upper(),
                value=_int(el, "value", top, 2**32 - 1),
                error_class=error_class,
                extension=el.get("extension") is not None,
            )
        )

    domains: dict[str, str] = {t: t for t in NATIVE_TYPES}
    for el in root.findall("domain"):
        name = _name(el, top)
        native = el.get("type")
        if native not in NATIVE_TYPES:
            raise SpecError(f"{_where(el, top)}: type={native!r} is not a native AMQP type")
        if name in NATIVE_TYPES and native != name:
            raise SpecError(f"{_where(el, top)}: redefines a native type")
        domains[name] = native

    classes: list[ProtocolClass] = []
    class_ids: set[int] = set()
    for cel in root.findall("class"):
        if not keep(cel):
            continue
        cname = _name(cel, top)
        cindex = _int(cel, "index", top, _MAX_ID)
        cparents = (*top, f"class[@name={cname!r}]")
        if cindex in class_ids or any(c.name == cname for c in classes):
            raise SpecError(f"{_where(cel, top)}: duplicate class name or index")
        class_ids.add(cindex)
        claim(camel_name(cname), cel, top)
        properties = _fields(cel, domains, cparents, strict)
        if properties:
            claim(camel_name(cname) + "Properties", cel, top)
        raw_methods: list[tuple[ET.Element, str, int, tuple[str, ...]]] = []
        for mel in cel.findall("method"):
            if not keep(mel):
                continue
            mname = _name(mel, cparents)
            mindex = _int(mel, "index", cparents, _MAX_ID)
            responses = tuple(_name(r, cparents) for r in mel.findall("response"))
            raw_methods.append((mel, mname, mindex, responses))
        names = {m[1] for m in raw_methods}
        py_names = {camel_name(m[1]) for m in raw_methods}
        if len(py_names) != len(raw_methods) or len({m[2] for m in raw_methods}) != len(names):
            raise SpecError(f"{_where(cel, top)}: duplicate method name or index")
        methods: list[Method] = []
        for mel, mname, mindex, responses in raw_methods:
            mparents = (*cparents, f"method[@name={mname!r}]")
            for response in responses:
                if response not in names:
                    raise SpecError(f"{_where(mel, cparents)}: unknown response {response!r}")
            fields = _fields(mel, domains, mparents, strict)
            methods.append(
                Method(
                    name=mname,
                    index=mindex,
                    class_name=cname,
                    class_index=cindex,
                    py_name=camel_name(mname),
                    synchronous=_flag(mel, "synchronous"),
                    content=_flag(mel, "content"),
                    responses=responses,
                    chassis=frozenset(
                        _name(ch, mparents) for ch in mel.findall("chassis") if keep(ch)
                    ),
                    fields=fields,
                    extension=mel.get("extension") is not None,
                    deprecated=_flag(mel, "deprecated"),
                    layout=_layout(fields),
                )
            )
        for prop in properties:
            if prop.type == "bit":
                raise SpecError(f"{_where(cel, top)}: bit properties are not supported")
        classes.append(
            ProtocolClass(
                name=cname,
                index=cindex,
                py_name=camel_name(cname),
                methods=tuple(methods),
                properties=properties,
                extension=cel.get("extension") is not None,
            )
        )

    return Spec(
        major=_int(root, "major", (), 255),
        minor=_int(root, "minor", (), 255),
        revision=_int(root, "revision", (), 255),
        port=_int(root, "port", (), _MAX_ID) if root.get("port") else 5672,
        constants=tuple(constants),
        domains=tuple((k, v) for k, v in domains.items() if k not in NATIVE_TYPES),
        classes=tuple(classes),
        source=source,
    )
