"""The generated method codec: round trips, binding names, vectors and malformed input.

Arguments are drawn from the spec's own metadata (``amqpcodec.strategies``), so a method
added to the XML is covered here without editing this file.
"""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import amqpcodec
from amqpcodec import DecodeError, EncodeError, FieldTable, Method, spec
from amqpcodec import strategies as amqp_st
from amqpcodec.compiler import load_spec

DATA = Path(__file__).parent / "data"
ALL_METHODS = sorted(spec.METHODS.values(), key=lambda m: m.INDEX)
WITH_ARGUMENTS = [m for m in ALL_METHODS if m.FIELDS]


def method_id(method_class: type[Method]) -> str:
    return method_class.NAME


def decode_method(data: bytes, module: ModuleType = spec) -> Method:
    """Decode a method frame payload (class id, method id, arguments)."""
    class_id, method_id = struct.unpack_from(">HH", data)
    method: Method = module.METHODS[(class_id, method_id)].decode(data, 4, len(data))
    return method


@pytest.fixture(scope="module")
def vendor() -> ModuleType:
    return load_spec(DATA / "vendor-extension.xml")


# ---------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("method_class", ALL_METHODS, ids=method_id)
@given(data=st.data())
def test_every_method_round_trips(method_class: type[Method], data: st.DataObject) -> None:
    method = method_class(**data.draw(amqp_st.method_arguments(method_class)))
    encoded = method.encode()
    assert encoded[:4] == struct.pack(">HH", method_class.CLASS_ID, method_class.METHOD_ID)
    decoded = decode_method(encoded)
    assert type(decoded) is method_class
    assert decoded == method
    assert decoded.encode() == encoded
    # Offsets are honoured: the arguments inside a larger buffer, read as a memoryview.
    framed = memoryview(b"\x01\x00\x01xxxx" + encoded + b"\xce")
    assert method_class.decode(framed, 7 + 4, 7 + len(encoded)) == method


@given(amqp_st.methods())
def test_drawn_methods_round_trip(method: Method) -> None:
    encoded = method.encode()
    assert decode_method(encoded) == method
    assert decode_method(encoded).encode() == encoded


@given(amqp_st.properties())
def test_basic_properties_round_trip(properties: spec.BasicProperties) -> None:
    encoded = properties.encode()
    decoded = spec.BasicProperties.decode(encoded, 0, len(encoded))
    assert decoded == properties
    assert decoded.encode() == encoded
    padded = b"\0\0" + encoded + b"\xff"
    assert spec.BasicProperties.decode(padded, 2, 2 + len(encoded)) == properties


@given(amqp_st.methods(spec_module=load_spec(DATA / "vendor-extension.xml")))
def test_vendor_methods_round_trip(method: Method) -> None:
    module = type(method).__module__
    assert module.startswith("amqpcodec.spec_vendor")
    encoded = method.encode()
    decoded = type(method).decode(encoded, 4, len(encoded))
    assert decoded == method
    assert decoded.encode() == encoded


def test_method_strategy_filters() -> None:
    def drawn(strategy: st.SearchStrategy[Method]) -> set[type[Method]]:
        seen: set[type[Method]] = set()
        given(strategy)(lambda m: seen.add(type(m)))()
        return seen

    content = drawn(amqp_st.methods(content=True))
    assert content <= {spec.Basic.Publish, spec.Basic.Return, spec.Basic.Deliver, spec.Basic.GetOk}
    assert all(m.CLASS_ID == 60 for m in drawn(amqp_st.methods(classes=["basic"])))
    assert all(m.CLASS_ID in (20, 85) for m in drawn(amqp_st.methods(classes=[20, "Confirm"])))
    assert all("client" in m.CHASSIS for m in drawn(amqp_st.methods(direction="client")))
    assert all("server" in m.CHASSIS for m in drawn(amqp_st.methods(direction="server")))
    assert drawn(amqp_st.methods(classes=["tx"], direction="server")) <= {
        spec.Tx.Select,
        spec.Tx.Commit,
        spec.Tx.Rollback,
    }
    with pytest.raises(InvalidArgument):
        amqp_st.methods(direction="broker").example()
    with pytest.raises(InvalidArgument):
        amqp_st.methods(classes=["nope"]).example()
    with pytest.raises(InvalidArgument):
        amqp_st.properties(class_id=10).example()


def test_direction_filter_is_the_chassis() -> None:
    # Basic.Deliver is received by the client only; Basic.Ack by both (confirms).
    client = {m for m in ALL_METHODS if "client" in m.CHASSIS}
    assert spec.Basic.Deliver in client
    assert spec.Basic.Publish not in client
    assert {"client", "server"} == spec.Basic.Ack.CHASSIS
    assert {"server"} == spec.Connection.UpdateSecret.CHASSIS


# ---------------------------------------------------------------------------------------
# Binding names (DESIGN.md "Public API")


def test_design_example() -> None:
    m = spec.Basic.Publish(exchange="amq.direct", routing_key="rk", mandatory=True)
    assert (m.CLASS_ID, m.METHOD_ID) == (60, 40)
    assert m.NAME == "basic.publish"
    assert (m.SYNCHRONOUS, m.CONTENT) == (False, True)
    assert (spec.Queue.DeclareOk,) == spec.Queue.Declare.RESPONSES
    assert spec.METHODS[(60, 40)] is spec.Basic.Publish
    properties = spec.BasicProperties(content_type="text/plain", headers={"a": 1}, delivery_mode=2)
    assert properties.priority is None
    assert properties.headers == {"a": 1}
    assert amqpcodec.ReplyCode.NOT_FOUND == 404
    assert amqpcodec.BasicProperties is spec.BasicProperties


def test_names_and_keywords() -> None:
    assert spec.Basic.Qos(global_=True).global_ is True
    assert "global_" in spec.Basic.Qos.FIELDS
    assert spec.Basic.Publish(routing_key="k").routing_key == "k"
    assert spec.Queue.Declare(no_wait=True).no_wait is True
    assert spec.Connection.Close(reply_code=320).reply_code == 320
    assert spec.Confirm.Select(nowait=True).nowait is True  # named as published
    with pytest.raises(TypeError):  # reserved fields are keyword-only
        spec.Connection.Open("/", "x")  # type: ignore[misc]


def test_method_metadata_is_consistent() -> None:
    for method_class in ALL_METHODS:
        assert method_class.INDEX == method_class.CLASS_ID << 16 | method_class.METHOD_ID
        assert spec.METHODS_BY_INDEX[method_class.INDEX] is method_class
        assert spec.METHODS_BY_NAME[method_class.NAME] is method_class
        class_name = method_class.NAME.partition(".")[0]
        namespace = getattr(spec, class_name.capitalize())
        assert namespace.CLASS_ID == method_class.CLASS_ID
        assert getattr(namespace, method_class.__name__) is method_class
        assert len(method_class.FIELDS) == len(method_class.FIELD_TYPES)
        assert set(method_class.FIELDS) >= method_class.RESERVED
        assert method_class.CHASSIS and {"client", "server"} >= method_class.CHASSIS
        for response in method_class.RESPONSES:
            assert response.CLASS_ID == method_class.CLASS_ID
            assert method_class.SYNCHRONOUS  # replies: see spec/README.md on channel.flow-ok


def test_content_methods() -> None:
    # protocol-facts §7: exactly four methods carry content.
    assert {m for m in ALL_METHODS if m.CONTENT} == {
        spec.Basic.Publish,
        spec.Basic.Return,
        spec.Basic.Deliver,
        spec.Basic.GetOk,
    }
    assert {60: spec.BasicProperties} == spec.PROPERTIES
    assert len(spec.BasicProperties.FIELDS) == 14


def test_errata_and_extensions() -> None:
    assert spec.Basic.Recover.SYNCHRONOUS
    assert (spec.Basic.RecoverOk,) == spec.Basic.Recover.RESPONSES
    assert (spec.Exchange.UnbindOk.CLASS_ID, spec.Exchange.UnbindOk.METHOD_ID) == (40, 51)
    assert spec.FRAME_HEARTBEAT == 8
    assert (spec.FRAME_METHOD, spec.FRAME_HEADER, spec.FRAME_BODY) == (1, 2, 3)
    assert (spec.FRAME_END, spec.FRAME_MIN_SIZE) == (206, 4096)
    assert (spec.Basic.GetOk, spec.Basic.GetEmpty) == spec.Basic.Get.RESPONSES
    assert (spec.Confirm.SelectOk,) == spec.Confirm.Select.RESPONSES
    assert (spec.Basic.Nack.CLASS_ID, spec.Basic.Nack.METHOD_ID) == (60, 120)
    assert spec.Exchange.Declare.FIELDS[5:7] == ("auto_delete", "internal")


def test_reply_codes() -> None:
    # protocol-facts §11, 312 NO_ROUTE included.
    assert {code.name: int(code) for code in spec.ReplyCode} == {
        "REPLY_SUCCESS": 200,
        "CONTENT_TOO_LARGE": 311,
        "NO_ROUTE": 312,
        "NO_CONSUMERS": 313,
        "CONNECTION_FORCED": 320,
        "INVALID_PATH": 402,
        "ACCESS_REFUSED": 403,
        "NOT_FOUND": 404,
        "RESOURCE_LOCKED": 405,
        "PRECONDITION_FAILED": 406,
        "FRAME_ERROR": 501,
        "SYNTAX_ERROR": 502,
        "COMMAND_INVALID": 503,
        "CHANNEL_ERROR": 504,
        "UNEXPECTED_FRAME": 505,
        "RESOURCE_ERROR": 506,
        "NOT_ALLOWED": 530,
        "NOT_IMPLEMENTED": 540,
        "INTERNAL_ERROR": 541,
    }
    assert spec.ReplyCode.CONNECTION_FORCED.is_hard_error
    assert not spec.ReplyCode.NOT_FOUND.is_hard_error
    assert not spec.ReplyCode.NO_ROUTE.is_hard_error


def test_expects_reply() -> None:
    assert spec.Queue.Declare().expects_reply
    assert not spec.Queue.Declare(no_wait=True).expects_reply
    assert spec.Queue.Unbind().expects_reply  # errata #24: no no-wait bit at all
    assert not spec.Basic.Publish().expects_reply
    assert not spec.Queue.DeclareOk().expects_reply


# ---------------------------------------------------------------------------------------
# protocol-facts §15 vectors: the method payload is the frame minus 7 header bytes and
# the frame end; the header frame's properties follow 12 bytes of class, weight, size.


def payload(frame_hex: str, skip: int = 0) -> bytes:
    frame = bytes.fromhex(frame_hex)
    assert frame[-1] == 0xCE and len(frame) == 8 + struct.unpack_from(">I", frame, 3)[0]
    return frame[7 + skip : -1]


@pytest.mark.parametrize(
    ("method", "frame"),
    [
        (
            spec.Queue.Declare(
                queue="some_queue",
                passive=True,
                durable=True,
                exclusive=True,
                auto_delete=True,
                no_wait=True,
            ),
            "01 0001 00000016 0032 000a 0000 0a736f6d655f7175657565 1f 00000000 ce",
        ),
        (
            spec.Basic.Publish(exchange="", routing_key="rk"),
            "01 0001 0000000b 003c 0028 0000 00 02726b 00 ce",
        ),
        (
            spec.Connection.Close(reply_code=320, reply_text="CONNECTION_FORCED"),
            "01 0000 0000001c 000a 0032 0140 11434f4e4e454354494f4e5f464f52434544 0000 0000 ce",
        ),
    ],
    ids=["queue.declare", "basic.publish", "connection.close"],
)
def test_method_vectors(method: Method, frame: str) -> None:
    assert method.encode() == payload(frame)
    assert decode_method(payload(frame)) == method


def test_content_header_properties_vector() -> None:
    frame = "02 0001 0000001a 003c 0000 0000000000000005 9000 0a746578742f706c61696e 02 ce"
    properties = spec.BasicProperties(content_type="text/plain", delivery_mode=2)
    assert properties.encode() == payload(frame, skip=12)
    data = payload(frame, skip=12)
    assert spec.BasicProperties.decode(data, 0, len(data)) == properties


# ---------------------------------------------------------------------------------------
# Edge cases


def test_max_unsigned_longlong_delivery_tag() -> None:
    top = 2**64 - 1
    deliver = spec.Basic.Deliver(consumer_tag="c", delivery_tag=top, exchange="e")
    decoded = decode_method(deliver.encode())
    assert isinstance(decoded, spec.Basic.Deliver)
    assert decoded.delivery_tag == top
    assert spec.Basic.Ack(delivery_tag=top).encode() == bytes.fromhex(
        "003c0050 ffffffffffffffff 00"
    )
    with pytest.raises(EncodeError, match="between 0 and 18446744073709551615"):
        spec.Basic.Ack(delivery_tag=2**64).encode()


def test_ten_consecutive_bits_use_two_octets(vendor: ModuleType) -> None:
    # PDF §4.2.5.2: the first bit is 0x01 of the first octet; the ninth starts a new octet.
    configure = vendor.Stream.Configure
    bits = configure.FIELDS[2:12]
    assert set(configure.FIELD_TYPES[2:12]) == {"bit"}
    start = 4 + 2 + 1  # ids, reserved short, empty shortstr
    for position, name in enumerate(bits):
        encoded = configure(**{name: True}).encode()
        assert encoded[start : start + 2] == (1 << position).to_bytes(2, "little")
        assert getattr(decode_method(encoded, vendor), name) is True
        assert sum(getattr(decode_method(encoded, vendor), other) for other in bits) == 1
    every = configure(**dict.fromkeys(bits, True), tiered=True).encode()
    assert every[start : start + 2] == b"\xff\x03"
    assert every[-1] == 0x01  # a bit after other fields starts its own octet


def test_seventeen_properties_use_two_flag_words(vendor: ModuleType) -> None:
    properties = vendor.StreamProperties
    assert properties(content_type="a").encode() == b"\x80\x00\x01a"
    # The 16th property is the first of the second word; bit 0 of the first says so.
    assert properties(span="x").encode() == b"\x00\x01\x80\x00\x01x"
    assert properties(content_type="a", legacy="z").encode() == b"\x80\x01\x40\x00\x01a\x01z"
    data = properties(span="x").encode()
    assert properties.decode(data, 0, len(data)) == properties(span="x")
    with pytest.raises(DecodeError):  # the second word's unknown bits
        properties.decode(b"\x00\x01\x20\x00", 0, 4)
    with pytest.raises(DecodeError):  # the second word is missing
        properties.decode(b"\x00\x01", 0, 2)


@given(amqp_st.properties(class_id=61440, spec_module=load_spec(DATA / "vendor-extension.xml")))
def test_vendor_properties_round_trip(properties: Any) -> None:
    encoded = properties.encode()
    assert type(properties).decode(encoded, 0, len(encoded)) == properties


def test_property_flags_continuation_word() -> None:
    # Bit 0 says another flag word follows (PDF §4.2.6.1). Basic has 14 properties, so
    # any further word must be empty; RabbitMQ never writes one (protocol-facts §7).
    decode = spec.BasicProperties.decode
    expected = spec.BasicProperties(content_type="a")
    assert decode(b"\x80\x01\x00\x00\x01a", 0, 6) == expected
    assert decode(b"\x80\x01\x00\x01\x00\x00\x01a", 0, 8) == expected  # a chain of words
    with pytest.raises(DecodeError) as info:
        decode(b"\x80\x01\x00\x04\x01a", 0, 6)
    assert (info.value.reply_code, info.value.offset) == (501, 2)
    with pytest.raises(DecodeError):
        decode(b"\x80\x01", 0, 2)


def test_unknown_property_flag_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="unknown property flags") as info:
        spec.BasicProperties.decode(b"\x00\x02", 0, 2)
    assert info.value.reply_code == 501


@pytest.mark.parametrize("method_class", WITH_ARGUMENTS, ids=method_id)
def test_truncated_arguments_are_decode_errors(method_class: type[Method]) -> None:
    encoded = method_class().encode()
    for cut in range(4, len(encoded)):
        with pytest.raises(DecodeError) as info:
            method_class.decode(encoded, 4, cut)
        assert info.value.reply_code == 501
        assert 4 <= info.value.offset <= cut
        # The method's own checks name it; a table's reader names the table.
        assert method_class.NAME in str(info.value) or "field table" in str(info.value)


@pytest.mark.parametrize("method_class", ALL_METHODS, ids=method_id)
def test_trailing_bytes_are_decode_errors(method_class: type[Method]) -> None:
    encoded = method_class().encode() + b"\x00\x00"
    with pytest.raises(DecodeError, match="2 bytes left over") as info:
        method_class.decode(encoded, 4, len(encoded))
    assert (info.value.reply_code, info.value.offset) == (501, len(encoded) - 2)


@given(amqp_st.methods(), st.data())
def test_drawn_methods_cut_anywhere_are_decode_errors(method: Method, data: st.DataObject) -> None:
    encoded = method.encode()
    if len(encoded) == 4:
        return
    cut = data.draw(st.integers(4, len(encoded) - 1))
    with pytest.raises(DecodeError):
        type(method).decode(encoded, 4, cut)
    with pytest.raises(DecodeError):
        type(method).decode(encoded[:cut], 4, cut)


@given(st.binary(max_size=48))
def test_random_bytes_raise_only_decode_errors(data: bytes) -> None:
    for method_class in ALL_METHODS:
        with contextlib.suppress(DecodeError):
            method_class.decode(data, 0, len(data))
    with contextlib.suppress(DecodeError):
        spec.BasicProperties.decode(data, 0, len(data))


# ---------------------------------------------------------------------------------------
# Encode errors


@pytest.mark.parametrize(
    ("method", "field", "reason"),
    [
        (spec.Basic.Publish(exchange="x" * 256), "basic.publish.exchange", "longer than 255"),
        (spec.Queue.Declare(queue="é" * 128), "queue.declare.queue", "256 UTF-8 bytes"),
        (spec.Basic.Qos(prefetch_count=65536), "basic.qos.prefetch_count", "between 0 and 65535"),
        (spec.Basic.Qos(prefetch_size=-1), "basic.qos.prefetch_size", "between 0 and"),
        (spec.Basic.Ack(delivery_tag=1.5), "basic.ack.delivery_tag", "expected an int"),  # type: ignore[arg-type]
        (spec.Basic.Ack(delivery_tag=None), "basic.ack.delivery_tag", "expected an int"),  # type: ignore[arg-type]
        (spec.Queue.Declare(queue=b"q"), "queue.declare.queue", "expected str"),  # type: ignore[arg-type]
        (spec.Queue.Declare(queue="\ud800"), "queue.declare.queue", "not encodable"),
        (spec.Connection.StartOk(response="x"), "connection.start-ok.response", "expected bytes"),  # type: ignore[arg-type]
        (spec.Queue.Declare(arguments=[1]), "queue.declare.arguments", "expected a mapping"),  # type: ignore[arg-type]
        (
            spec.Queue.Declare(arguments={"x-args": {"bad": object()}}),
            "queue.declare.arguments['x-args']['bad']",
            "no field-table type",
        ),
        (spec.Connection.Open(reserved_1=7), "connection.open.reserved_1", "expected str"),  # type: ignore[arg-type]
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_encode_errors_name_method_field_and_value(method: Method, field: str, reason: str) -> None:
    with pytest.raises(EncodeError, match=reason) as info:
        method.encode()
    assert info.value.field == field
    assert str(info.value).startswith(field)
    name = field.partition("[")[0].rpartition(".")[2]
    expected = getattr(method, name)
    if "[" in field:
        assert type(info.value.value) is object
    else:
        assert info.value.value is expected


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        (spec.BasicProperties(priority=256), "basic.properties.priority"),
        (spec.BasicProperties(delivery_mode="2"), "basic.properties.delivery_mode"),  # type: ignore[arg-type]
        (spec.BasicProperties(content_type=1), "basic.properties.content_type"),  # type: ignore[arg-type]
        (spec.BasicProperties(headers={"k": 2**64}), "basic.properties.headers['k']"),
        (spec.BasicProperties(timestamp=-1), "basic.properties.timestamp"),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_property_encode_errors_name_the_field(properties: Any, field: str) -> None:
    with pytest.raises(EncodeError) as info:
        properties.encode()
    assert info.value.field == field


WRONG_VALUES = st.one_of(
    st.none(),
    st.just(object()),
    st.floats(),
    st.integers(min_value=2**64),
    st.integers(max_value=-1),
    st.binary(max_size=3),
    st.text(min_size=256, max_size=300),
    st.just("\udfff"),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.just(object()), min_size=1, max_size=1),
)


@given(st.sampled_from(WITH_ARGUMENTS), st.data())
def test_any_wrong_value_is_an_encode_error_naming_its_field(
    method_class: type[Method], data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(method_class.FIELDS))
    value = data.draw(WRONG_VALUES)
    method = method_class(**{name: value})
    try:
        method.encode()
    except EncodeError as exc:  # anything else (struct.error, TypeError, ...) fails the test
        assert exc.field.startswith(f"{method_class.NAME}.{name}")
    else:
        # Only values the field's type can take got through: bits take any truth value,
        # longstrs bytes, tables None (the empty table).
        kind = method_class.FIELD_TYPES[method_class.FIELDS.index(name)]
        assert (
            kind == "bit"
            or (kind == "longstr" and isinstance(value, bytes))
            or (kind == "table" and value is None)
        )


# ---------------------------------------------------------------------------------------
# repr, equality, reserved values


def test_repr_is_readable() -> None:
    publish = spec.Basic.Publish(exchange="x", routing_key="rk")
    assert repr(publish) == (
        "Basic.Publish(exchange='x', routing_key='rk', mandatory=False, immediate=False)"
    )
    assert repr(spec.Connection.Open(virtual_host="/")) == "Connection.Open(virtual_host='/')"
    assert repr(spec.Connection.Open(reserved_2=True)) == (
        "Connection.Open(virtual_host='', reserved_2=True)"
    )
    assert repr(spec.Tx.Select()) == "Tx.Select()"
    properties = spec.BasicProperties(content_type="text/plain", delivery_mode=2)
    assert repr(properties) == "BasicProperties(content_type='text/plain', delivery_mode=2)"


def _repr_namespace() -> dict[str, object]:
    import datetime
    import decimal

    from amqpcodec import FieldArray, FieldTable

    namespace: dict[str, object] = {}
    exec("from amqpcodec.spec import *", namespace)
    namespace.update(FieldTable=FieldTable, FieldArray=FieldArray, datetime=datetime)
    namespace["Decimal"] = decimal.Decimal
    return namespace


@pytest.mark.parametrize("method_class", list(spec.METHODS.values()), ids=lambda m: m.NAME)
def test_repr_evaluates_back_to_an_equal_method(method_class: type[Method]) -> None:
    method = method_class()
    assert eval(repr(method), _repr_namespace()) == method
    # Decoded values too: tables keep their type letters in FieldTable and FieldArray.
    decoded = spec.METHODS[(method.CLASS_ID, method.METHOD_ID)].decode(
        method.encode(), 4, len(method.encode())
    )
    assert eval(repr(decoded), _repr_namespace()) == decoded


def test_repr_of_decoded_tables_evaluates_back() -> None:
    import datetime
    import decimal

    arguments = {
        "s": "x",
        "i": 5,
        "b": True,
        "t": {"n": [1, "a", None]},
        "d": decimal.Decimal("1.25"),
        "ts": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        "raw": b"\x00\xff",
    }
    method = spec.Queue.Declare(queue="q", arguments=arguments)
    raw = method.encode()
    decoded = spec.Queue.Declare.decode(raw, 4, len(raw))
    again = eval(repr(decoded), _repr_namespace())
    assert again == decoded and again.encode() == raw
    properties = spec.BasicProperties(headers=arguments, timestamp=7, priority=1)
    assert eval(repr(properties), _repr_namespace()) == properties


def test_equality_is_by_value() -> None:
    assert spec.Basic.Ack(delivery_tag=1) == spec.Basic.Ack(delivery_tag=1)
    assert spec.Basic.Ack(delivery_tag=1) != spec.Basic.Ack(delivery_tag=2)
    assert spec.Basic.Ack(delivery_tag=1) != spec.Basic.Ack(delivery_tag=1, multiple=True)
    assert spec.Tx.Select() != spec.Tx.SelectOk()  # same (no) fields, different methods
    assert spec.Tx.Select() != "tx.select"
    assert spec.Queue.Declare(arguments={"a": 1}) == spec.Queue.Declare(arguments=FieldTable(a=1))
    assert spec.BasicProperties() == spec.BasicProperties()
    assert spec.BasicProperties(priority=1) != spec.BasicProperties(priority=2)
    with pytest.raises(TypeError):  # mutable: compared by value, so not hashable
        hash(spec.Basic.Ack())


def test_decoded_reserved_values_are_kept() -> None:
    # pika sends insist=1 (reserved-2) and capabilities="" in Connection.Open.
    data = bytes.fromhex("000a0028 012f 00 01")
    decoded = decode_method(data)
    assert isinstance(decoded, spec.Connection.Open)
    assert (decoded.virtual_host, decoded.reserved_2) == ("/", True)
    assert decoded.encode() == data
    assert decoded != spec.Connection.Open(virtual_host="/")
    data = bytes.fromhex("0014000b 00000003 616263")  # channel.open-ok, reserved-1 "abc"
    decoded = decode_method(data)
    assert isinstance(decoded, spec.Channel.OpenOk)
    assert decoded.reserved_1 == b"abc"
    assert decoded.encode() == data


def test_reserved_fields_default_to_zero_and_empty() -> None:
    assert spec.Connection.Open().encode() == bytes.fromhex("000a0028 00 00 00")
    assert spec.Basic.Get(queue="q").encode() == bytes.fromhex("003c0046 0000 0171 00")
    assert spec.Basic.Get(queue="q", reserved_1=7).encode() == bytes.fromhex(
        "003c0046 0007 0171 00"
    )


def test_expects_reply_honours_both_spellings_of_no_wait() -> None:
    assert spec.Queue.Declare().expects_reply
    assert not spec.Queue.Declare(no_wait=True).expects_reply
    assert spec.Confirm.Select().expects_reply
    assert not spec.Confirm.Select(nowait=True).expects_reply
    assert not spec.Basic.Publish().expects_reply
