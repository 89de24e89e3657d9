"""The spec's one-line labels: every field has one, they reach the docstrings, hostile ones fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from amqpcodec import spec
from amqpcodec.compiler import SpecError, bundled_spec, generate_python, load_spec, parse_spec

SPEC = parse_spec(bundled_spec())


def test_every_class_method_field_and_property_has_a_label() -> None:
    missing = [cls.name for cls in SPEC.classes if not cls.label]
    for cls in SPEC.classes:
        missing += [f"{cls.name}.properties.{f.name}" for f in cls.properties if not f.label]
        for method in cls.methods:
            if not method.label:
                missing.append(method.full_name)
            missing += [f"{method.full_name}.{f.name}" for f in method.fields if not f.label]
    assert missing == []


def test_labels_reach_the_generated_docstrings() -> None:
    doc = spec.Basic.Publish.__doc__
    assert doc is not None
    publish = SPEC.classes[[c.name for c in SPEC.classes].index("basic")].method("publish")
    assert publish.label in " ".join(doc.split())
    for f in publish.fields:
        assert f"{f.py_name} ({f.type}): {f.label}" in " ".join(doc.split())
    props = spec.BasicProperties.__doc__
    assert props is not None and "delivery_mode (octet): " in props
    assert spec.Basic.__doc__ is not None and "Methods of class basic (60)." in spec.Basic.__doc__


def _xml(tmp_path: Path, label: str, where: str = "field") -> Path:
    attr = f' label="{label}"'
    path = tmp_path / "spec.xml"
    path.write_text(
        '<amqp major="0" minor="9" revision="1">'
        '<domain name="short" type="short"/>'
        f'<class name="c" index="10"{attr if where == "class" else ""}>'
        f'<method name="m" index="10"{attr if where == "method" else ""}>'
        '<chassis name="server"/>'
        f'<field name="f" domain="short"{attr if where == "field" else ""}/>'
        "</method></class></amqp>",
        "utf-8",
    )
    return path


@pytest.mark.parametrize("where", ["class", "method", "field"])
def test_a_label_is_carried_where_it_stands(tmp_path: Path, where: str) -> None:
    module = load_spec(_xml(tmp_path, "Plain words; with (some) punctuation.", where))
    cls = module.METHODS[(10, 10)]
    doc = {"class": module.C.__doc__, "method": cls.__doc__, "field": cls.__doc__}[where]
    assert "Plain words; with (some) punctuation." in doc


def test_without_labels_the_docstrings_are_as_before(tmp_path: Path) -> None:
    path = tmp_path / "spec.xml"
    path.write_text(
        '<amqp major="0" minor="9" revision="1"><domain name="short" type="short"/>'
        '<class name="c" index="10"><method name="m" index="10"><chassis name="server"/>'
        '<field name="f" domain="short"/></method></class></amqp>',
        "utf-8",
    )
    source = generate_python(parse_spec(path))
    assert "Fields:" not in source
    assert '        Received by the server."""' in source


@pytest.mark.parametrize(
    "label",
    [
        'ends the docstring """ early',
        "a \\ backslash",
        "two\nlines",
        "tab\there",
        " leading space",
        "x" * 201,
        "",
    ],
)
@pytest.mark.parametrize("where", ["class", "method", "field"])
def test_a_hostile_label_is_a_spec_error(tmp_path: Path, label: str, where: str) -> None:
    # Character references, so that the parsed attribute holds exactly the raw text.
    escaped = label.replace('"', "&quot;").replace("\n", "&#10;").replace("\t", "&#9;")
    with pytest.raises(SpecError, match="label must be one line"):
        parse_spec(_xml(tmp_path, escaped, where))


def test_strict_profile_drops_the_label_of_an_extension_field() -> None:
    strict = parse_spec(bundled_spec(), strict=True)
    declare = next(c for c in strict.classes if c.name == "exchange").method("declare")
    reserved = [f for f in declare.fields if f.reserved]
    assert len(reserved) == 3
    assert [f.label for f in reserved[1:]] == ["", ""]
