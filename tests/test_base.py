"""The shared behaviour of generated methods and properties (amqpcodec._base)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from amqpcodec import EncodeError, Method, Properties, spec


@pytest.mark.parametrize("base", [Method, Properties])
def test_the_bases_leave_encoding_to_the_generated_classes(base: Any) -> None:
    with pytest.raises(NotImplementedError):
        base.encode(object.__new__(base))
    with pytest.raises(NotImplementedError):
        base.decode(b"", 0, 0)


@pytest.mark.parametrize(
    ("method", "field", "words"),
    [
        (spec.Basic.Ack(delivery_tag=-1), "basic.ack.delivery_tag", "between 0 and"),
        (spec.Basic.Ack(delivery_tag=1.0), "basic.ack.delivery_tag", "expected an int"),  # type: ignore[arg-type]
        (spec.Basic.Publish(exchange=b"x"), "basic.publish.exchange", "expected str"),  # type: ignore[arg-type]
        (spec.Basic.Publish(routing_key="\ud800" * 2), "basic.publish.routing_key", "UTF-8"),
        (spec.Connection.Secure(challenge=5), "connection.secure.challenge", "expected bytes"),  # type: ignore[arg-type]
        (spec.Queue.Declare(arguments=[1]), "queue.declare.arguments", "expected a mapping"),  # type: ignore[arg-type]
    ],
)
def test_encode_errors_name_the_field(method: Method, field: str, words: str) -> None:
    with pytest.raises(EncodeError) as info:
        method.encode()
    assert info.value.field == field
    assert words in str(info.value)


def test_a_datetime_timestamp_property_encodes() -> None:
    when = datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)
    properties = spec.BasicProperties(timestamp=when)  # type: ignore[arg-type]
    decoded = spec.BasicProperties.decode(properties.encode(), 0, len(properties.encode()))
    assert decoded.timestamp == int(when.timestamp())
    with pytest.raises(EncodeError) as info:
        spec.BasicProperties(timestamp="now").encode()  # type: ignore[arg-type]
    assert info.value.field.endswith("timestamp")
