"""The spec compiler: freshness, a golden output, run-time loading, hostile input, and a
cross-check of our spec file against the published ones.

The cross-check needs ``../shared/reference/`` beside the repository (CI has it; a fresh
clone does not, and those tests skip there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqpcodec import Method, spec
from amqpcodec import strategies as amqp_st
from amqpcodec.compiler import SpecError, generate_python, load_spec, model, parse_spec
from amqpcodec.compiler.model import Spec

ROOT = Path(__file__).resolve().parents[1]
SPEC_XML = ROOT / "spec" / "amqp0-9-1.xml"
DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden"
VENDOR_XML = DATA / "vendor-extension.xml"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


# ---------------------------------------------------------------------------------------
# Freshness and the golden output


def test_committed_spec_module_is_fresh() -> None:
    expected = generate_python(parse_spec(SPEC_XML))
    assert (ROOT / "amqpcodec" / "spec.py").read_text(encoding="utf-8") == expected


def test_check_command_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amqpcodec.compiler", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    # Against an edited copy of the spec, spec.py is stale: --check says so, writes nothing.
    edited = tmp_path / "edited.xml"
    text = SPEC_XML.read_text(encoding="utf-8")
    edited.write_text(text.replace('value="4096"', 'value="8192"'), encoding="utf-8")
    before = (ROOT / "amqpcodec" / "spec.py").stat().st_mtime_ns
    result = subprocess.run(
        [sys.executable, "-m", "amqpcodec.compiler", "--check", "--spec", str(edited)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "stale: " in result.stderr and "spec.py" in result.stderr
    assert (ROOT / "amqpcodec" / "spec.py").stat().st_mtime_ns == before


def test_output_is_deterministic() -> None:
    assert generate_python(parse_spec(SPEC_XML)) == generate_python(parse_spec(SPEC_XML))


def test_golden_tiny_spec() -> None:
    """tests/data/golden/tiny_spec.py is the reviewed output for tiny.xml.

    After an intended change to the emitter: AMQPCODEC_UPDATE_GOLDEN=1 pytest this test,
    then read the diff of tiny_spec.py before committing it.
    """
    generated = generate_python(parse_spec(GOLDEN / "tiny.xml"))
    expected_path = GOLDEN / "tiny_spec.py"
    if os.environ.get("AMQPCODEC_UPDATE_GOLDEN"):
        expected_path.write_text(generated, encoding="utf-8")
    assert generated == expected_path.read_text(encoding="utf-8")


def test_golden_tiny_spec_loads_and_works() -> None:
    tiny = load_spec(GOLDEN / "tiny.xml")
    declare = tiny.Queue.Declare(queue="q", durable=True, arguments={"x": 1})
    assert declare.encode() == bytes.fromhex("0032000a 0000 0171 02 00000007 0178 4900000001")
    assert (tiny.Queue.DeclareOk,) == tiny.Queue.Declare.RESPONSES
    assert tiny.Queue.Purge(global_=True).encode() == bytes.fromhex("0032001e 01")
    assert tiny.Basic.RecoverOk.SYNCHRONOUS
    assert tiny.ReplyCode.FRAME_ERROR.is_hard_error
    assert not tiny.ReplyCode.NOT_FOUND.is_hard_error
    assert tiny.BasicProperties(priority=1).encode() == b"\x20\x00\x01"
    strict = load_spec(GOLDEN / "tiny.xml", strict=True)
    assert (50, 30) not in strict.METHODS
    assert not hasattr(strict, "NO_ROUTE")


# ---------------------------------------------------------------------------------------
# load_spec on a vendor extension


@pytest.fixture(scope="module")
def vendor() -> ModuleType:
    return load_spec(VENDOR_XML)


def test_vendor_module_has_the_shape_of_spec(vendor: ModuleType) -> None:
    for name in ("METHODS", "METHODS_BY_INDEX", "METHODS_BY_NAME", "PROPERTIES", "ReplyCode"):
        assert hasattr(vendor, name), name
    assert vendor.__name__ == "amqpcodec.spec_vendor_extension"
    assert vendor.PORT == 5673
    assert vendor.ReplyCode.VENDOR_FAILURE == 550
    assert vendor.ReplyCode.VENDOR_FAILURE.is_hard_error
    assert not vendor.ReplyCode.QUOTA_EXCEEDED.is_hard_error
    configure = vendor.METHODS[(61440, 10)]
    assert configure is vendor.Stream.Configure
    assert issubclass(configure, Method)
    assert (vendor.Stream.ConfigureOk,) == configure.RESPONSES
    assert {"reserved_1"} == configure.RESERVED
    assert vendor.Stream.Deliver.CONTENT
    assert {61440: vendor.StreamProperties} == vendor.PROPERTIES
    assert len(vendor.StreamProperties.FIELDS) == 17
    assert load_spec(VENDOR_XML, name="acme").__name__ == "acme"


def test_vendor_arguments_of_every_type(vendor: ModuleType) -> None:
    configure = vendor.Stream.Configure(
        stream="s",
        durable=True,
        no_wait=True,
        max_age=2**64 - 1,
        max_bytes=5,
        segment_size=6,
        replicas=7,
        credentials=b"\x00secret",
        arguments={"k": [1, "v"]},
        tiered=True,
        reserved_1=9,
    )
    encoded = configure.encode()
    assert encoded[:4] == b"\xf0\x00\x00\x0a"
    assert vendor.Stream.Configure.decode(encoded, 4, len(encoded)) == configure


@given(data=st.data())
def test_vendor_round_trips(data: st.DataObject) -> None:
    module = VENDOR_MODULE
    method = data.draw(amqp_st.methods(spec_module=module))
    encoded = method.encode()
    assert (
        module.METHODS[(method.CLASS_ID, method.METHOD_ID)].decode(encoded, 4, len(encoded))
        == method
    )
    properties = data.draw(amqp_st.properties(61440, spec_module=module))
    encoded = properties.encode()
    decoded = module.StreamProperties.decode(encoded, 0, len(encoded))
    assert decoded == properties
    assert decoded.encode() == encoded


VENDOR_MODULE = load_spec(VENDOR_XML)


# ---------------------------------------------------------------------------------------
# Hostile XML: only SpecError, naming the element

TEMPLATE = """<?xml version="1.0"?>
<amqp major="0" minor="9" revision="1">
  <constant name="frame-end" value="206"/>
  {constants}
  <domain name="short" type="short"/>
  {domains}
  <class name="{class_name}" index="{class_index}">
    {properties}
    <method name="{method_name}" index="{method_index}">
      <field name="{field_name}" {field_type}/>
      <field name="other" type="shortstr"/>
    </method>
    {methods}
  </class>
  {classes}
</amqp>
"""
GOOD: dict[str, str] = {
    "constants": "",
    "domains": "",
    "class_name": "thing",
    "class_index": "100",
    "properties": "",
    "method_name": "act",
    "method_index": "10",
    "field_name": "value",
    "field_type": 'type="short"',
    "methods": "",
    "classes": "",
}


def hostile(**changes: str) -> str:
    return TEMPLATE.format(**{**GOOD, **changes})


HOSTILE: list[tuple[str, str, str]] = [
    # (id, XML, what the message must name)
    (
        "class name injection",
        hostile(class_name="x&quot;; import os"),
        "class[@name='x\"; import os']",
    ),
    ("method name injection", hostile(method_name="a')\nimport os#"), "method[@name="),
    ("field name injection", hostile(field_name="x=__import__('os')"), "field[@name="),
    ("upper-case name", hostile(method_name="Act"), "method[@name='Act']"),
    ("name with underscore", hostile(field_name="a_b"), "field[@name='a_b']"),
    ("empty name", hostile(class_name=""), "class[@name='']"),
    ("constant name", hostile(constants='<constant name="1x" value="1"/>'), "constant[@name='1x']"),
    ("domain name", hostile(domains='<domain name="Q" type="short"/>'), "domain[@name='Q']"),
    ("class index too big", hostile(class_index="70000"), "index=70000 is out of range"),
    ("method index too big", hostile(method_index="65536"), "method[@name='act']"),
    ("negative index", hostile(class_index="-1"), "index='-1' is not an integer"),
    ("float index", hostile(class_index="1e3"), "index='1e3' is not an integer"),
    ("hex index", hostile(method_index="0x10"), "index='0x10' is not an integer"),
    ("huge index", hostile(class_index="9" * 400), "class[@name='thing']"),
    ("constant value", hostile(constants='<constant name="x" value="4294967296"/>'), "[@name='x']"),
    ("expression value", hostile(constants='<constant name="x" value="2**8"/>'), "[@name='x']"),
    ("error class", hostile(constants='<constant name="x" value="1" class="fatal"/>'), "x"),
    ("unknown type", hostile(field_type='type="float"'), "field[@name='value']: unknown"),
    ("unknown domain", hostile(field_type='domain="nope"'), "field[@name='value']: unknown"),
    ("no type", hostile(field_type=""), "field[@name='value']: unknown"),
    (
        "domain of unknown type",
        hostile(domains='<domain name="d" type="int"/>'),
        "domain[@name='d']",
    ),
    ("redefined native type", hostile(domains='<domain name="bit" type="long"/>'), "'bit'"),
    (
        "duplicate class index",
        hostile(classes='<class name="other" index="100"/>'),
        "class[@name='other']",
    ),
    ("duplicate class name", hostile(classes='<class name="thing" index="101"/>'), "thing"),
    (
        "duplicate method index",
        hostile(methods='<method name="again" index="10"/>'),
        "class[@name='thing']",
    ),
    (
        "duplicate method name",
        hostile(methods='<method name="act" index="11"/>'),
        "class[@name='thing']",
    ),
    (
        "methods equal once camel-cased",
        hostile(method_name="a-1", methods='<method name="a1" index="11"/>'),
        "class[@name='thing']",
    ),
    ("duplicate field", hostile(field_name="other"), "field[@name='other']"),
    (
        "duplicate constant",
        hostile(constants='<constant name="frame-end" value="1"/>'),
        "frame-end",
    ),
    ("field shadows self", hostile(field_name="self"), "field[@name='self']"),
    ("field shadows cls", hostile(field_name="cls"), "field[@name='cls']"),
    ("field shadows off", hostile(field_name="off"), "field[@name='off']"),
    ("field shadows str", hostile(field_name="str"), "field[@name='str']"),
    ("field shadows bits", hostile(field_name="bits1"), "field[@name='bits1']"),
    ("field shadows encode", hostile(field_name="encode"), "field[@name='encode']"),
    ("class shadows Method", hostile(class_name="method"), "Method is already defined"),
    ("class shadows ReplyCode", hostile(class_name="reply-code"), "ReplyCode"),
    (
        "constant shadows METHODS",
        hostile(constants='<constant name="methods" value="1"/>'),
        "METHODS",
    ),
    (
        "classes equal once camel-cased",
        hostile(class_name="a-1", classes='<class name="a1" index="101"/>'),
        "class[@name='a1']",
    ),
    (
        "properties class collides",
        hostile(
            class_name="x-properties",
            classes='<class name="x" index="101"><field name="p" type="short"/></class>',
        ),
        "class[@name='x']",
    ),
    ("bit property", hostile(properties='<field name="flag" type="bit"/>'), "class[@name='thing']"),
    (
        "unknown response",
        hostile(methods='<method name="ask" index="11"><response name="nope"/></method>'),
        "unknown response 'nope'",
    ),
    ("bad major", hostile().replace('major="0"', 'major="x"'), "major='x'"),
    ("wrong root", "<spec><class name='a' index='1'/></spec>", "root element is <spec>"),
    ("not XML", "this is not xml <", "cannot read XML"),
    ("empty file", "", "cannot read XML"),
    (
        "external entity",
        '<?xml version="1.0"?><!DOCTYPE amqp [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<amqp major="0" minor="9" revision="1"><constant name="x" value="&e;"/></amqp>',
        "cannot read XML",
    ),
    (
        "entity expansion",
        '<?xml version="1.0"?><!DOCTYPE amqp ['
        + '<!ENTITY a0 "aaaaaaaaaa">'
        + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
        + ']><amqp major="0" minor="9" revision="1"><constant name="x" value="&a9;"/></amqp>',
        "cannot read XML",  # expat's amplification limit, not 10 GB of "a"
    ),
]


HOSTILE += [
    # Names that became Python's None/True/False, or replaced builtins and library names
    # the generated code relies on.
    *[
        (f"class named {n}", hostile(class_name=n), f"{n.capitalize()} is a Python builtin")
        for n in ("none", "true", "false")
    ],
    *[
        (f"method named {n}", hostile(method_name=n), f"{n.capitalize()} is reserved")
        for n in ("none", "true", "false", "method")
    ],
    *[
        (f"class named {n}", hostile(class_name=n), "is a Python builtin")
        for n in (
            "type-error",
            "attribute-error",
            "index-error",
            "value-error",
            "unicode-encode-error",
            "not-implemented-error",
            "exception",
        )
    ],
    ("class named encode-error", hostile(class_name="encode-error"), "EncodeError is already"),
    ("class named decode-error", hostile(class_name="decode-error"), "DecodeError is already"),
    (
        "properties named like a builtin",
        # BaseException: a builtin on every supported Python (BaseExceptionGroup is 3.11+)
        hostile(class_name="base-exception", properties='<field name="p" type="short"/>'),
        "class[@name='base-exception']",
    ),
    ("field shadows expects_reply", hostile(field_name="expects-reply"), "expects-reply"),
    (
        "domain defined twice",
        hostile(domains='<domain name="d" type="short"/><domain name="d" type="long"/>'),
        "domain[@name='d']: domain defined twice",
    ),
    (
        "native domain defined twice",
        hostile(domains='<domain name="short" type="short"/>'),
        "domain[@name='short']: domain defined twice",
    ),
    (
        "unknown chassis",
        hostile(methods='<method name="m" index="11"><chassis name="broker"/></method>'),
        "chassis must be client or server",
    ),
    (
        "response named twice",
        hostile(
            methods='<method name="ask" index="11"><response name="act"/>'
            '<response name="act"/></method>'
        ),
        "a response is named twice",
    ),
    ("long name", hostile(field_name="a" * 65), "name is longer than 64 characters"),
    (
        "too many constants",
        hostile(constants="".join(f'<constant name="c{i}" value="1"/>' for i in range(1024))),
        "more than 1024 constants",
    ),
    (
        "too many domains",
        hostile(domains="".join(f'<domain name="d{i}" type="short"/>' for i in range(1024))),
        "more than 1024 domains",
    ),
    (
        "too many classes",
        hostile(classes="".join(f'<class name="c{i}" index="{i + 200}"/>' for i in range(256))),
        "more than 256 classes",
    ),
    (
        "too many methods",
        hostile(methods="".join(f'<method name="m{i}" index="{i + 20}"/>' for i in range(1024))),
        "more than 1024 methods",
    ),
    (
        "too many fields",
        hostile(
            classes="".join(
                f'<class name="c{c}" index="{c + 200}"><method name="m" index="1">'
                + "".join(f'<field name="f{i}" type="bit"/>' for i in range(100))
                + "</method></class>"
                for c in range(82)
            )
        ),
        "8192 fields",
    ),
]


# What refusing a hostile file may cost: Python-level calls (functions and builtins) per
# byte of XML, and memory at the peak. The most a refusal makes is about 0.7 calls a byte
# (8192 fields, each checked once); work that grew faster than the input (a check
# repeated per pair of fields, an expansion) would pass 2 at once. The peak is the read
# buffer (limits.max_bytes) and expat's entity-amplification threshold (8 MiB) at most.
MAX_CALLS_PER_BYTE = 2
MAX_REFUSAL_PEAK = 32 * 1024 * 1024


def refusal_cost(path: Path) -> tuple[SpecError, int, int]:
    """``load_spec(path)``'s error, the calls it made and its peak allocation."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    tracemalloc.start()
    sys.setprofile(count)
    try:
        load_spec(path)
    except SpecError as exc:
        error = exc
    else:
        raise AssertionError(f"{path} loaded")
    finally:
        sys.setprofile(None)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, calls, peak


@pytest.mark.parametrize(
    ("xml", "named"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_hostile_xml_raises_only_spec_error(tmp_path: Path, xml: str, named: str) -> None:
    path = tmp_path / "hostile.xml"
    path.write_text(xml, encoding="utf-8")
    error, calls, peak = refusal_cost(path)
    assert named in str(error)
    assert calls <= 1000 + MAX_CALLS_PER_BYTE * len(xml.encode()), calls
    assert peak <= MAX_REFUSAL_PEAK, peak
    with pytest.raises(SpecError):
        parse_spec(path, strict=True)


def test_refusal_cost_sees_work_that_grows_faster_than_the_input(tmp_path: Path) -> None:
    """The bound above fails for a refusal whose work is quadratic in the input."""
    path = tmp_path / "hostile.xml"
    fields = "".join(f'<field name="f{i}" type="bit"/>' for i in range(300))
    path.write_text(
        hostile(
            methods=f'<method name="m" index="20">{fields}<field name="f0" type="bit"/></method>'
        )
    )
    parse_element = model.parse_element

    def quadratic(root: Any, **options: Any) -> Spec:
        for _ in root.iter():
            for other in root.iter():
                other.get("name")  # every element again, per element
        return parse_element(root, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(model, "parse_element", quadratic)
        error, calls, _peak = refusal_cost(path)
    assert "field[@name='f0']" in str(error)
    assert calls > 1000 + MAX_CALLS_PER_BYTE * path.stat().st_size


# XML declarations naming encodings that Python's codec registry knows but that are not
# text encodings expat can use: each made the parser raise its own error.
ODD_ENCODINGS = (
    "wTF-8",
    "mbcs",
    "hex",
    "rot13",
    "base64",
    "UTF-7",
    "utf-32",
    "idna",
    "punycode",
    "utf-16",
    "zlib",
    "uu",
    "undefined",
    "cp65001",
    "x" * 100,
)


@pytest.mark.parametrize("encoding", ODD_ENCODINGS)
def test_odd_xml_encodings_raise_only_spec_error(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "odd.xml"
    path.write_text(
        hostile().replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>'),
        encoding="utf-8",
    )
    with pytest.raises(SpecError, match="cannot read XML"):
        load_spec(path)


@pytest.mark.parametrize("encoding", ["UTF-8", "us-ascii", "ISO-8859-1", "latin_1"])
def test_plain_xml_encodings_load(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "plain.xml"
    xml = hostile().replace('<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>')
    path.write_bytes(xml.encode("ascii"))
    assert load_spec(path).Thing.Act(value=1).value == 1


def test_a_utf16_file_with_a_byte_order_mark_loads(tmp_path: Path) -> None:
    path = tmp_path / "utf16.xml"
    path.write_bytes(hostile().replace('<?xml version="1.0"?>', "").encode("utf-16"))
    assert load_spec(path).Thing.Act(value=1).value == 1


def test_method_named_like_a_builtin_still_raises_decode_errors(tmp_path: Path) -> None:
    """Method classes live in their class's namespace: TypeError there replaces nothing."""
    import amqpcodec

    path = tmp_path / "builtin-method.xml"
    path.write_text(hostile(method_name="type-error"), encoding="utf-8")
    module = load_spec(path)
    method = module.Thing.TypeError(value=7, other="o")
    payload = method.encode()
    assert module.Thing.TypeError.decode(payload, 4, len(payload)) == method
    with pytest.raises(amqpcodec.DecodeError):
        module.Thing.TypeError.decode(payload[:-1], 4, len(payload) - 1)


def test_a_50_mb_class_name_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge-name.xml"
    path.write_text(hostile(class_name="a" * 50_000_000), encoding="ascii")
    with pytest.raises(SpecError, match="larger than 4194304 bytes") as info:
        load_spec(path)
    assert len(str(info.value)) < 300


def test_a_long_name_is_refused_and_cut_short_in_the_message(tmp_path: Path) -> None:
    from amqpcodec.compiler import SpecLimits

    path = tmp_path / "long-name.xml"
    path.write_text(hostile(class_name="a" * 5_000_000), encoding="ascii")
    with pytest.raises(SpecError, match="longer than 64 characters") as info:
        load_spec(path, limits=SpecLimits(max_bytes=8_000_000))
    assert "(5000000 characters)" in str(info.value)
    assert len(str(info.value)) < 300


def test_1_3_million_constants_are_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "constants.xml"
    constants = "".join(f'<constant name="c{i}" value="{i}"/>' for i in range(1_300_000))
    path.write_text(hostile(constants=constants), encoding="ascii")
    with pytest.raises(SpecError, match="larger than"):
        load_spec(path)


def test_limits_are_a_setting(tmp_path: Path) -> None:
    from amqpcodec.compiler import SpecLimits

    path = tmp_path / "constants.xml"
    constants = "".join(f'<constant name="c{i}" value="{i}"/>' for i in range(2000))
    path.write_text(hostile(constants=constants), encoding="ascii")
    with pytest.raises(SpecError, match="more than 1024 constants"):
        load_spec(path)
    assert load_spec(path, limits=SpecLimits(max_constants=4096)).C1999 == 1999
    with pytest.raises(SpecError, match="larger than 1000 bytes"):
        load_spec(path, limits=SpecLimits(max_bytes=1000))


def test_the_good_template_compiles(tmp_path: Path) -> None:
    path = tmp_path / "good.xml"
    path.write_text(hostile(), encoding="utf-8")
    module = load_spec(path)
    act = module.Thing.Act(value=7, other="o")
    assert module.Thing.Act.decode(act.encode(), 4, len(act.encode())) == act


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read XML"):
        load_spec(tmp_path / "missing.xml")


_ATTRIBUTE_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "0", "1", "65535", "65536", "-1", "x y", "a'b", 'a"b', "bit", "table"]),
    st.integers(-5, 2**33).map(str),
)


@given(st.data())
def test_mutated_specs_give_spec_errors_or_working_modules(data: st.DataObject) -> None:
    """Any attribute of the tiny spec set to anything: a SpecError, or a module that works."""
    import xml.etree.ElementTree as ET

    root = ET.parse(GOLDEN / "tiny.xml").getroot()
    elements = [el for el in root.iter() if el.attrib]
    for _ in range(data.draw(st.integers(1, 3))):
        element = data.draw(st.sampled_from(elements))
        attribute = data.draw(st.sampled_from(sorted(element.attrib)))
        element.set(attribute, data.draw(_ATTRIBUTE_VALUES))
    from amqpcodec.compiler.model import parse_element

    try:
        model = parse_element(root)
    except SpecError:
        return
    module = _exec(model)
    for method_class in module.METHODS.values():
        encoded = method_class().encode()
        assert method_class.decode(encoded, 4, len(encoded)) == method_class()
    for properties_class in module.PROPERTIES.values():
        assert properties_class.decode(b"\0\0", 0, 2) == properties_class()


def _exec(model: Spec) -> ModuleType:
    module = ModuleType("amqpcodec.spec_mutated")
    exec(compile(generate_python(model), "<mutated>", "exec"), module.__dict__)
    return module


# ---------------------------------------------------------------------------------------
# The strict 0-9-1 profile


def test_strict_profile() -> None:
    strict = load_spec(SPEC_XML, strict=True)
    assert not hasattr(strict, "Confirm")
    assert all(class_id != 85 for class_id, _ in strict.METHODS)
    assert not hasattr(strict.Basic, "Nack")
    assert not hasattr(strict.Exchange, "Bind")
    assert not hasattr(strict.Connection, "Blocked")
    assert not hasattr(strict.Connection, "UpdateSecret")
    assert not hasattr(strict, "NO_ROUTE")
    assert "NO_ROUTE" not in strict.ReplyCode.__members__
    declare = strict.Exchange.Declare
    assert declare.FIELDS[5:7] == ("reserved_2", "reserved_3")
    assert {"reserved_2", "reserved_3"} <= declare.RESERVED
    # The wire is the same: the strict reserved bits are RabbitMQ's auto-delete/internal.
    assert (
        declare(exchange="x", reserved_2=True, reserved_3=True).encode()
        == spec.Exchange.Declare(exchange="x", auto_delete=True, internal=True).encode()
    )
    assert {"server"} == strict.Basic.Ack.CHASSIS  # broker-sent acks are an extension
    assert {"server"} == strict.Basic.Cancel.CHASSIS
    assert len(strict.METHODS) == len(spec.METHODS) - 11


# ---------------------------------------------------------------------------------------
# Cross-check with the published spec files (when ../shared/reference is present)

needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"no reference files at {REFERENCE} (a fresh clone)"
)

Fact = tuple[Any, ...]


def facts(model: Spec) -> dict[Fact, Any]:
    """Every fact the codec depends on, keyed by where it is."""
    out: dict[Fact, Any] = {}
    for constant in model.constants:
        out[("constant", constant.name)] = (constant.value, constant.error_class)
    for cls in model.classes:
        out[("class", cls.name)] = cls.index
        for number, prop in enumerate(cls.properties):
            out[("class", cls.name, "property", number)] = (prop.name, prop.type, prop.reserved)
        for method in cls.methods:
            where = ("method", method.full_name)
            out[(*where, "index")] = method.index
            out[(*where, "synchronous")] = method.synchronous
            out[(*where, "content")] = method.content
            out[(*where, "responses")] = method.responses
            out[(*where, "chassis")] = tuple(sorted(method.chassis))
            out[(*where, "deprecated")] = method.deprecated
            for number, f in enumerate(method.fields):
                out[(*where, "field", number)] = (f.name, f.type, f.reserved)
    return out


def differences(ours: Spec, theirs: Spec) -> dict[Fact, tuple[Any, Any]]:
    mine, published = facts(ours), facts(theirs)
    absent = "<absent>"
    return {
        key: (mine.get(key, absent), published.get(key, absent))
        for key in set(mine) | set(published)
        if mine.get(key, absent) != published.get(key, absent)
    }


# The differences spec/README.md lists ("Differences from the published XML files"), as
# (ours, published). Anything else that differs fails the cross-check.
RECOVER_ERRATUM = {  # errata #28: basic.recover is synchronous, answered by recover-ok
    ("method", "basic.recover", "synchronous"): (True, False),
    ("method", "basic.recover", "responses"): (("recover-ok",), ()),
}
UPDATE_SECRET_CHASSIS = {  # the published chassis of update-secret(-ok) is inverted
    ("method", "connection.update-secret", "chassis"): (("server",), ("client",)),
    ("method", "connection.update-secret-ok", "chassis"): (("client",), ("server",)),
}
# spec/README.md "Protocol facts that differ": the 14th Basic property is cluster-id,
# reserved="1" in ours (RabbitMQ's JSON name) and an unmarked `reserved` as published.
# The wire is the same (a shortstr at flag 0x0004).
BASIC_PROPERTY_14 = {
    ("class", "basic", "property", 13): (
        ("cluster-id", "shortstr", True),
        ("reserved", "shortstr", False),
    ),
}
ALLOWED: dict[str, dict[Fact, tuple[Any, Any]]] = {
    # compared with our full file
    "amqp0-9-1.extended.xml": {**RECOVER_ERRATUM, **UPDATE_SECRET_CHASSIS, **BASIC_PROPERTY_14},
    "amqp0-9-1.stripped.extended.xml": {
        **RECOVER_ERRATUM,
        **UPDATE_SECRET_CHASSIS,
        **BASIC_PROPERTY_14,
    },
    # amqp091-go's copy already marks basic.recover synchronous (spec/README.md, errata row)
    "amqp091-go/amqp0-9-1.stripped.extended.xml": {
        ("method", "basic.recover", "responses"): (("recover-ok",), ()),
        **UPDATE_SECRET_CHASSIS,
        **BASIC_PROPERTY_14,
    },
    # compared with our strict profile: "the only remaining difference is the
    # basic.recover erratum"
    "amqp0-9-1.xml": {**RECOVER_ERRATUM, **BASIC_PROPERTY_14},
    "amqp0-9-1.stripped.xml": {**RECOVER_ERRATUM, **BASIC_PROPERTY_14},
}


@pytest.fixture(scope="module")
def ours() -> Spec:
    return parse_spec(SPEC_XML)


@pytest.fixture(scope="module")
def ours_strict() -> Spec:
    return parse_spec(SPEC_XML, strict=True)


@needs_reference
@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_published_xml_differs_only_as_documented(name: str, ours: Spec, ours_strict: Spec) -> None:
    published = parse_spec(REFERENCE / name)
    mine = ours if "extended" in name else ours_strict
    found = differences(mine, published)
    assert found == ALLOWED[name]
    # The comparison reached everything: every class, method and field of the file.
    assert sum(1 for _ in published.methods) == sum(1 for _ in mine.methods)
    assert {c.name for c in published.classes} == {c.name for c in mine.classes}


@needs_reference
@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_published_xml_loads_as_a_working_module(name: str) -> None:
    module = load_spec(REFERENCE / name)
    for method_class in module.METHODS.values():
        method = method_class()
        encoded = method.encode()
        assert method_class.decode(encoded, 4, len(encoded)) == method
        ours = spec.METHODS[(method_class.CLASS_ID, method_class.METHOD_ID)]
        # Same wire layout: our default arguments decode with the published module.
        ours_encoded = ours().encode()
        assert method_class.decode(ours_encoded, 4, len(ours_encoded)).encode() == ours_encoded


def _json_files() -> Iterator[Path]:
    yield REFERENCE / "amqp-rabbitmq-0.9.1.json"
    yield REFERENCE / "rabbitmq-codegen" / "amqp-rabbitmq-0.9.1.json"


@needs_reference
@pytest.mark.parametrize("path", list(_json_files()), ids=lambda p: p.parent.name + "/" + p.name)
def test_rabbitmq_json_agrees(path: Path) -> None:
    """Ids, argument types and order, content flags; not names, not the access class."""
    document = json.loads(path.read_text(encoding="utf-8"))
    domains = dict(document["domains"])

    def wire_types(arguments: list[dict[str, Any]]) -> tuple[str, ...]:
        return tuple(a.get("type") or domains[a["domain"]] for a in arguments)

    seen = set()
    for cls in document["classes"]:
        if cls["name"] == "access":  # legacy class 30, left out (spec/README.md)
            assert cls["id"] == 30
            continue
        for method in cls["methods"]:
            key = (cls["id"], method["id"])
            seen.add(key)
            ours = spec.METHODS[key]
            assert f"{cls['name']}.{method['name']}" == ours.NAME
            assert wire_types(method["arguments"]) == ours.FIELD_TYPES, ours.NAME
            assert bool(method.get("content")) == ours.CONTENT, ours.NAME
            # The JSON marks requests only: exactly the methods with a response.
            assert bool(ours.RESPONSES) == bool(method.get("synchronous")), ours.NAME
        if cls.get("properties"):
            assert wire_types(cls["properties"]) == spec.PROPERTIES[cls["id"]].FIELD_TYPES
    assert seen == set(spec.METHODS)
    for constant in document["constants"]:
        name = constant["name"].replace("-", "_")
        if name == "FRAME_MIN_SIZE":  # 8192 in RabbitMQ 4.1+'s JSON (spec/README.md)
            assert constant["value"] in (4096, 8192)
            continue
        assert getattr(spec, name) == constant["value"], name
        if "class" in constant:
            assert spec.ReplyCode(constant["value"]).is_hard_error == (
                constant["class"] == "hard-error"
            )
