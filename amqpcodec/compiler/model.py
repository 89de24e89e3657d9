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

import builtins
import keyword
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = [
    "DEFAULT_LIMITS",
    "BitGroup",
    "Constant",
    "Field",
    "FixedRun",
    "IntItem",
    "Method",
    "ProtocolClass",
    "Spec",
    "SpecError",
    "SpecLimits",
    "VarField",
    "parse_spec",
]


class SpecError(ValueError):
    """The XML is not a usable AMQP spec; the message names the offending element."""


@dataclass(frozen=True)
class SpecLimits:
    """The most a spec file may hold; beyond any of them it is refused with SpecError.

    The defaults are far above what the published 0-9-1 files need (137 KB, 11 classes,
    about 70 methods and 250 fields) and keep the generated module small enough to
    compile in well under a second. Pass another ``SpecLimits`` to ``load_spec`` for a
    larger file.
    """

    max_bytes: int = 4 * 1024 * 1024
    """Size of the XML file; checked before any of it is parsed."""
    max_name_length: int = 64
    """Characters in any name (class, method, field, constant, domain)."""
    max_constants: int = 1024
    max_domains: int = 1024
    max_classes: int = 256
    max_methods: int = 1024
    """Methods across all classes."""
    max_fields: int = 8192
    """Method fields and content properties across all classes."""


DEFAULT_LIMITS: Final = SpecLimits()

_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
# The encodings expat reads itself. Any other name in the XML declaration would make the
# parser ask Python's codec registry, whose codecs (rot13, base64, idna, utf-32...) fail
# in ways of their own: the file must be one of these, or have no declaration.
_XML_ENCODINGS = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}
)
_DECLARED_ENCODING = re.compile(
    rb"(?:\xef\xbb\xbf)?<\?xml[^>]{0,200}?\bencoding\s*=\s*[\"']([^\"']{0,64})[\"']"
)
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
    {
        "encode",
        "decode",
        "fields",
        "encode_arguments",
        "decode_arguments",
        "content",
        "expects_reply",
    }
)
# Names the generated methods use for parameters and locals (``decode`` keeps each field
# in a local of the field's name) or take from builtins and the module: a field of that
# name would shadow them. ``bits0``, ``bits1``, ... are matched by _BITS_LOCAL.
_GENERATED_LOCALS = frozenset({"self", "cls", "buf", "off", "end", "n", "str", "bytes", "struct"})
_BITS_LOCAL = re.compile(r"bits[0-9]+\Z")
# Module-level names of the generated module that a class or constant must not replace.
# (Builtins are refused too: the generated code catches TypeError, IndexError, ...)
_MODULE_NAMES = frozenset(
    {
        "Any",
        "ClassVar",
        "DecodeError",
        "EncodeError",
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
    label: str = ""  # one line saying what the field means (the XML's label attribute)


@dataclass(frozen=True)
class IntItem:
    """A fixed-size integer inside a run."""

    field: Field
    code: str  # struct code


@dataclass(frozen=True)
class BitGroup:
    """Up to eight consecutive bit fields packed into one octet, first bit in 0x01."""

    fields: tuple[Field, ...]

    @property
    def stray_mask(self) -> int:
        """The octet's bits that name no field: a peer may set them, and they are kept."""
        return 0xFF & ~((1 << len(self.fields)) - 1)


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
    label: str = ""  # one line saying what the method does

    @property
    def full_name(self) -> str:
        return f"{self.class_name}.{self.name}"

    @property
    def bit_groups(self) -> tuple[BitGroup, ...]:
        """The bit groups in wire order; group ``k`` is packed in the local ``bits{k}``."""
        return tuple(
            item
            for segment in self.layout
            if isinstance(segment, FixedRun)
            for item in segment.items
            if isinstance(item, BitGroup)
        )

    @property
    def keeps_stray_bits(self) -> bool:
        """Whether a bit group has unnamed bits, kept in ``_stray`` for re-encoding."""
        return any(group.stray_mask for group in self.bit_groups)

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
    label: str = ""  # one line saying what the class is for

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


def _shown(name: str | None) -> str:
    """A name for an error message: a hostile file's 50 MB name is cut short."""
    if name is not None and len(name) > 80:
        return repr(name[:60])[:-1] + f"...' ({len(name)} characters)"
    return repr(name)


def _where(element: ET.Element, parents: tuple[str, ...] = ()) -> str:
    path = "/".join((*parents, f"{element.tag}[@name={_shown(element.get('name'))}]"))
    return path


def _name(element: ET.Element, parents: tuple[str, ...], limits: SpecLimits) -> str:
    name = element.get("name")
    if name is None or not _NAME.match(name):
        raise SpecError(f"{_where(element, parents)}: name must match [a-z][a-z0-9-]*")
    if len(name) > limits.max_name_length:
        raise SpecError(
            f"{_where(element, parents)}: name is longer than {limits.max_name_length} characters"
        )
    return name


# A label is one line of plain text that ends up inside a generated docstring: no quote,
# backslash or control character can end the string or start an escape.
_LABEL = re.compile(r"[^\x00-\x1f\x7f\"\\]{1,200}\Z")


def _label(element: ET.Element, parents: tuple[str, ...]) -> str:
    label = element.get("label")
    if label is None:
        return ""
    if not _LABEL.match(label) or label != label.strip():
        raise SpecError(
            f"{_where(element, parents)}: label must be one line of at most 200 characters"
            " without quotes, backslashes or surrounding spaces"
        )
    return label


def _count(elements: list[ET.Element], limit: int, what: str, where: str) -> list[ET.Element]:
    if len(elements) > limit:
        raise SpecError(f"{where}: more than {limit} {what} ({len(elements)})")
    return elements


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


def _chassis(
    method: ET.Element, parents: tuple[str, ...], keep: Callable[[ET.Element], bool]
) -> frozenset[str]:
    """The sides that receive a method: ``client``, ``server``, nothing else."""
    sides = set()
    for el in method.findall("chassis"):
        if keep(el):
            if el.get("name") not in ("client", "server"):
                raise SpecError(f"{_where(el, parents)}: chassis must be client or server")
            sides.add(str(el.get("name")))
    return frozenset(sides)


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
    parent: ET.Element,
    domains: dict[str, str],
    parents: tuple[str, ...],
    strict: bool,
    limits: SpecLimits,
) -> tuple[Field, ...]:
    fields: list[Field] = []
    seen: set[str] = set()
    for el in parent.findall("field"):
        name = _name(el, parents, limits)
        if strict and el.get("extension") is not None:
            # The strict profile keeps the wire layout: an extension field inside an
            # official method is the reserved field the official XML has there.
            name = f"reserved-{sum(f.reserved for f in fields) + 1}"
            el = ET.Element("field", {**el.attrib, "name": name, "reserved": "1"})
            del el.attrib["extension"]
            el.attrib.pop("label", None)  # it described the extension, not a reserved field
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
                label=_label(el, parents),
            )
        )
    return tuple(fields)


def parse_spec(
    source: str | Path, *, strict: bool = False, limits: SpecLimits = DEFAULT_LIMITS
) -> Spec:
    """Parse an AMQP spec XML file (ours or a published one) into the IR.

    ``strict=True`` leaves out everything marked ``extension="..."`` (the RabbitMQ
    additions), giving the plain 0-9-1 profile of our file. A file beyond ``limits``
    is refused; the file is read at most ``limits.max_bytes + 1`` bytes far.
    """
    path = Path(source)
    try:
        with path.open("rb") as file:
            raw = file.read(limits.max_bytes + 1)
    except OSError as exc:
        raise SpecError(f"{path}: cannot read XML: {exc}") from None
    if len(raw) > limits.max_bytes:
        raise SpecError(f"{path}: the file is larger than {limits.max_bytes} bytes")
    declared = _DECLARED_ENCODING.match(raw)
    if declared is not None:
        encoding = declared.group(1).decode("ascii", "replace").strip().lower()
        if encoding.replace("_", "-") not in _XML_ENCODINGS:
            raise SpecError(
                f"{path}: cannot read XML: encoding {encoding!r} is not supported"
                " (UTF-8, US-ASCII or ISO-8859-1)"
            )
    try:
        parser = ET.XMLParser()
        parser.feed(raw)
        root = parser.close()
    # A codec the declaration check let through can still fail its own way: whatever
    # the parser raises is the file's fault.
    except (ET.ParseError, LookupError, ValueError, UnicodeError, TypeError) as exc:
        raise SpecError(f"{path}: cannot read XML: {exc}") from None
    return parse_element(root, strict=strict, source=path.name, limits=limits)


def parse_element(
    root: ET.Element,
    *,
    strict: bool = False,
    source: str = "",
    limits: SpecLimits = DEFAULT_LIMITS,
) -> Spec:
    """Parse an already-read ``<amqp>`` element; see :func:`parse_spec`."""
    if root.tag != "amqp":
        raise SpecError(f"root element is <{_shown(root.tag)[1:-1]}>, expected <amqp>")

    def keep(el: ET.Element) -> bool:
        return not (strict and el.get("extension") is not None)

    top = ("amqp",)
    module_names: set[str] = set(_MODULE_NAMES)

    def claim(py_name: str, el: ET.Element, parents: tuple[str, ...]) -> None:
        """Reserve a module-level name of the generated code; a second claim is an error.

        Builtins and keywords are refused: ``none`` would be the class ``None`` and
        ``type-error`` a class ``TypeError`` that the generated code's except clauses
        would catch instead of the builtin."""
        if keyword.iskeyword(py_name) or hasattr(builtins, py_name):
            raise SpecError(f"{_where(el, parents)}: {py_name} is a Python builtin or keyword")
        if py_name in module_names:
            raise SpecError(f"{_where(el, parents)}: {py_name} is already defined")
        module_names.add(py_name)

    constants: list[Constant] = []
    seen_constants: set[str] = set()
    for el in _count(root.findall("constant"), limits.max_constants, "constants", "amqp"):
        if not keep(el):
            continue
        name = _name(el, top, limits)
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
    seen_domains: set[str] = set()
    for el in _count(root.findall("domain"), limits.max_domains, "domains", "amqp"):
        name = _name(el, top, limits)
        if name in seen_domains:
            raise SpecError(f"{_where(el, top)}: domain defined twice")
        seen_domains.add(name)
        native = el.get("type")
        if native not in NATIVE_TYPES:
            raise SpecError(f"{_where(el, top)}: type={native!r} is not a native AMQP type")
        if name in NATIVE_TYPES and native != name:
            raise SpecError(f"{_where(el, top)}: redefines a native type")
        domains[name] = native

    classes: list[ProtocolClass] = []
    class_ids: set[int] = set()
    method_count = field_count = 0
    for cel in _count(root.findall("class"), limits.max_classes, "classes", "amqp"):
        if not keep(cel):
            continue
        cname = _name(cel, top, limits)
        cindex = _int(cel, "index", top, _MAX_ID)
        cparents = (*top, f"class[@name={cname!r}]")
        if cindex in class_ids or any(c.name == cname for c in classes):
            raise SpecError(f"{_where(cel, top)}: duplicate class name or index")
        class_ids.add(cindex)
        claim(camel_name(cname), cel, top)
        field_count += len(_count(cel.findall("field"), limits.max_fields, "fields", "amqp"))
        method_count += len(_count(cel.findall("method"), limits.max_methods, "methods", "amqp"))
        if field_count > limits.max_fields or method_count > limits.max_methods:
            raise SpecError(
                f"{_where(cel, top)}: the spec has more than {limits.max_methods} methods"
                f" or {limits.max_fields} fields"
            )
        properties = _fields(cel, domains, cparents, strict, limits)
        if properties:
            claim(camel_name(cname) + "Properties", cel, top)
        raw_methods: list[tuple[ET.Element, str, int, tuple[str, ...]]] = []
        for mel in cel.findall("method"):
            if not keep(mel):
                continue
            mname = _name(mel, cparents, limits)
            if keyword.iskeyword(camel_name(mname)) or camel_name(mname) == "Method":
                # "none" would be a class None; "method" would replace the base class
                # that the methods after it in the class body name.
                raise SpecError(f"{_where(mel, cparents)}: {camel_name(mname)} is reserved")
            mindex = _int(mel, "index", cparents, _MAX_ID)
            field_count += len(mel.findall("field"))
            if field_count > limits.max_fields:
                raise SpecError(f"{_where(mel, cparents)}: more than {limits.max_fields} fields")
            responses = tuple(_name(r, cparents, limits) for r in mel.findall("response"))
            if len(set(responses)) != len(responses):
                raise SpecError(f"{_where(mel, cparents)}: a response is named twice")
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
            fields = _fields(mel, domains, mparents, strict, limits)
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
                    chassis=_chassis(mel, mparents, keep),
                    fields=fields,
                    extension=mel.get("extension") is not None,
                    deprecated=_flag(mel, "deprecated"),
                    layout=_layout(fields),
                    label=_label(mel, cparents),
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
                label=_label(cel, top),
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
