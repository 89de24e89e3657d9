"""Differential tests against pika's generated codec (``pika.spec``), both directions.

Every method class pika knows is found generically (``pika.amqp_object.Method``
subclasses with an ``INDEX``) and paired with ours by ``INDEX``. Field names are paired
by position: both follow the wire order, only the names differ (pika's ``ticket``,
``nowait``, ``global_qos``, ... are our ``reserved_1``, ``no_wait``, ``global_``).

What pika cannot represent is left out of the drawn values, not of the comparison:
pika's tables take no floats and no timestamps beyond ``datetime``, so tables use the
letters both sides round-trip (``t b B s u I i l L D S x A F V``).
"""

from __future__ import annotations

import inspect
import struct
from typing import Any

import pika.amqp_object
import pika.spec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from amqpcodec import DecodeError, Method, decode_frame, spec
from amqpcodec import strategies as amqp_st

PIKA_TABLES = amqp_st.field_tables(letters="tbBsuIilLDSxAFV")
ACCESS_CLASS = 30  # legacy access.request/request-ok: pika has them, we leave them out


def _pika_methods() -> list[type[pika.amqp_object.Method]]:
    found = set()
    for namespace in vars(pika.spec).values():
        if isinstance(namespace, type) and issubclass(namespace, pika.amqp_object.Class):
            for member in vars(namespace).values():
                if (
                    isinstance(member, type)
                    and issubclass(member, pika.amqp_object.Method)
                    and isinstance(getattr(member, "INDEX", None), int)
                ):
                    found.add(member)
    return sorted(found, key=lambda m: m.INDEX)


PIKA_METHODS = _pika_methods()
SHARED = [m for m in PIKA_METHODS if m.INDEX in spec.METHODS_BY_INDEX]


def pika_id(pika_class: type[Any]) -> str:
    return str(pika_class.NAME)


def pika_fields(pika_class: type[Any]) -> tuple[str, ...]:
    """pika's argument names, in wire order (its constructor takes them in that order)."""
    return tuple(inspect.signature(pika_class.__init__).parameters)[1:]


def _squash(name: str) -> str:
    return name.replace("_", "")


def name_map(
    ours: type[Method] | type[spec.BasicProperties], pika_class: type[Any]
) -> dict[str, str]:
    """Our field name -> pika's, by position, checked to be the same field."""
    theirs = pika_fields(pika_class)
    assert len(theirs) == len(ours.FIELDS), (ours.NAME, theirs)
    for mine, their in zip(ours.FIELDS, theirs, strict=True):
        # Reserved fields keep their legacy names in pika; the others match once the
        # underscores are gone ("no_wait"/"nowait"), or pika adds a word ("global_qos").
        assert mine in ours.RESERVED or _squash(their).startswith(_squash(mine)), (mine, their)
    return dict(zip(ours.FIELDS, theirs, strict=True))


# pika 1.4.4's Connection.UpdateSecret.decode reads the secret into ``mechanisms`` (a
# copy of Connection.Start's decoder), never into ``new_secret``. Where pika *reads* a
# field under another attribute, this says which; test_pika_update_secret_quirk pins it.
PIKA_DECODED_AS = {("connection.update-secret", "new_secret"): "mechanisms"}


def decoded_value(decoded: Any, ours: type[Method], name: str, names: dict[str, str]) -> Any:
    return getattr(decoded, PIKA_DECODED_AS.get((ours.NAME, name), names[name]))


def ours_for(pika_class: type[Any]) -> type[Method]:
    return spec.METHODS_BY_INDEX[pika_class.INDEX]


_PIKA_TYPES: dict[str, type] = {"bit": bool, "longstr": bytes, "shortstr": str, "table": dict}


def same(kind: str, ours: Any, theirs: Any) -> bool:
    """Whether pika's decoded value is ours, with the Python type pika uses for ``kind``."""
    return bool(ours == theirs) and isinstance(theirs, _PIKA_TYPES.get(kind, int))


def pika_encode(method: Any) -> bytes:
    """A method frame payload as pika writes it: class id, method id, arguments."""
    return struct.pack(">I", method.INDEX) + b"".join(method.encode())


def pika_decode(pika_class: type[Any], payload: bytes) -> Any:
    """pika's reading of a method frame payload (some pika constructors need arguments)."""
    method = object.__new__(pika_class)
    return method.decode(payload, 4)


def decode_ours(payload: bytes) -> Method:
    class_id, method_id = struct.unpack_from(">HH", payload)
    method: Method = spec.METHODS[(class_id, method_id)].decode(payload, 4, len(payload))
    return method


# ---------------------------------------------------------------------------------------
# Coverage of pika's method list


def test_every_pika_method_is_paired() -> None:
    assert len(PIKA_METHODS) == 66  # pika 1.4.4's spec
    missing = {m.NAME for m in PIKA_METHODS if m.INDEX not in spec.METHODS_BY_INDEX}
    assert missing == {"Access.Request", "Access.RequestOk"}
    assert len(SHARED) == len(spec.METHODS) == 64  # and pika knows every method we do


@pytest.mark.parametrize("pika_class", PIKA_METHODS, ids=pika_id)
def test_access_methods_are_unknown_to_us(pika_class: type[Any]) -> None:
    if pika_class.INDEX >> 16 != ACCESS_CLASS:
        assert pika_class in SHARED
        return
    payload = pika_encode(pika_class())
    frame = struct.pack(">BHI", 1, 1, len(payload)) + payload + b"\xce"
    with pytest.raises(DecodeError, match="unknown method 30"):
        decode_frame(frame)


def _fixed_value(kind: str) -> Any:
    """One non-default value of each type, to visit every method without Hypothesis."""
    return {
        "bit": True,
        "octet": 0xFF,
        "short": 0xFFFF,
        "long": 0xFFFFFFFF,
        "longlong": 2**64 - 1,
        "timestamp": 2**64 - 1,
        "shortstr": "ä" * 127,
        "longstr": b"\x00\xff",
        "table": {"k": [1, "v", {"n": None}], "b": True},
    }[kind]


def test_visit_every_method_both_directions() -> None:
    visited = 0
    for pika_class in SHARED:
        ours = ours_for(pika_class)
        names = name_map(ours, pika_class)
        values = {
            name: _fixed_value(kind)
            for name, kind in zip(ours.FIELDS, ours.FIELD_TYPES, strict=True)
        }
        theirs = pika_class(**{names[name]: value for name, value in values.items()})
        payload = pika_encode(theirs)
        assert payload == ours(**values).encode()
        decoded = pika_decode(pika_class, payload)
        for name, kind in zip(ours.FIELDS, ours.FIELD_TYPES, strict=True):
            theirs = decoded_value(decoded, ours, name, names)
            assert same(kind, values[name], theirs), (ours.NAME, name)
        visited += 1
    assert visited == 64


def test_pika_update_secret_quirk() -> None:
    """pika's decoder puts the new secret in ``mechanisms``; when pika fixes that, drop
    the entry in PIKA_DECODED_AS."""
    payload = spec.Connection.UpdateSecret(new_secret=b"token", reason="r").encode()
    decoded = pika_decode(pika.spec.Connection.UpdateSecret, payload)
    assert decoded.mechanisms == b"token"
    assert not hasattr(decoded, "new_secret")
    assert decoded.reason == "r"


# ---------------------------------------------------------------------------------------
# Drawn arguments, both directions


@pytest.mark.parametrize("pika_class", SHARED, ids=pika_id)
@given(data=st.data())
def test_pika_encodes_we_decode(pika_class: type[Any], data: st.DataObject) -> None:
    ours = ours_for(pika_class)
    names = name_map(ours, pika_class)
    arguments = data.draw(amqp_st.method_arguments(ours, tables=PIKA_TABLES))
    payload = pika_encode(pika_class(**{names[k]: v for k, v in arguments.items()}))
    decoded = decode_ours(payload)
    assert type(decoded) is ours
    for name in ours.FIELDS:
        assert getattr(decoded, name) == arguments[name], name
    assert decoded == ours(**arguments)


@pytest.mark.parametrize("pika_class", SHARED, ids=pika_id)
@given(data=st.data())
def test_we_encode_pika_decodes(pika_class: type[Any], data: st.DataObject) -> None:
    ours = ours_for(pika_class)
    names = name_map(ours, pika_class)
    method = ours(**data.draw(amqp_st.method_arguments(ours, tables=PIKA_TABLES)))
    payload = method.encode()
    assert struct.unpack_from(">I", payload)[0] == pika_class.INDEX
    decoded = pika_decode(pika_class, payload)
    for name, kind in zip(ours.FIELDS, ours.FIELD_TYPES, strict=True):
        theirs = decoded_value(decoded, ours, name, names)
        assert same(kind, getattr(method, name), theirs), (name, getattr(method, name), theirs)


# ---------------------------------------------------------------------------------------
# Content properties

PROPERTY_NAMES = name_map(spec.BasicProperties, pika.spec.BasicProperties)
PIKA_PROPERTIES = amqp_st.properties(tables=PIKA_TABLES)


@given(PIKA_PROPERTIES)
def test_pika_encodes_our_properties_decode(properties: spec.BasicProperties) -> None:
    values = {name: getattr(properties, name) for name in spec.BasicProperties.FIELDS}
    theirs = pika.spec.BasicProperties(**{PROPERTY_NAMES[k]: v for k, v in values.items()})
    encoded = b"".join(theirs.encode())
    assert spec.BasicProperties.decode(encoded, 0, len(encoded)) == properties


@given(PIKA_PROPERTIES)
def test_we_encode_pika_properties_decode(properties: spec.BasicProperties) -> None:
    encoded = properties.encode()
    decoded = pika.spec.BasicProperties()
    decoded.decode(encoded)
    fields = zip(spec.BasicProperties.FIELDS, spec.BasicProperties.FIELD_TYPES, strict=True)
    for name, kind in fields:
        ours, theirs = getattr(properties, name), getattr(decoded, PROPERTY_NAMES[name])
        assert theirs is None if ours is None else same(kind, ours, theirs), name
