"""Real clients against the server role: pika's BlockingConnection and py-amqp, served by
the minimal broker in ``mini_broker.py`` on a localhost socket, at frame_max 4096."""

from __future__ import annotations

import amqp
import pika
import pytest
from mini_broker import MiniBroker

from amqpcodec import spec
from amqpcodec.events import (
    ChannelOpened,
    ConnectionClosed,
    ConnectionOpened,
    MessageReceived,
    ProtocolHeaderReceived,
)

BODY = bytes(range(256)) * 195 + bytes(80)  # 50,000 bytes: 13 body frames at frame_max 4096
assert len(BODY) == 50_000


def published(broker: MiniBroker) -> list[MessageReceived]:
    return [
        e
        for e in broker.events
        if isinstance(e, MessageReceived) and isinstance(e.method, spec.Basic.Publish)
    ]


def test_pika_blocking_connection() -> None:
    with MiniBroker() as broker:
        host, port = broker.address
        parameters = pika.ConnectionParameters(
            host=host,
            port=port,
            frame_max=4096,
            credentials=pika.PlainCredentials("guest", "guest"),
            connection_attempts=1,
            socket_timeout=5,
            blocked_connection_timeout=5,
        )
        connection = pika.BlockingConnection(parameters)
        channel = connection.channel()
        result = channel.queue_declare(queue="")
        queue = result.method.queue
        assert queue.startswith("amq.gen-")
        channel.confirm_delivery()
        properties = pika.BasicProperties(content_type="application/octet-stream", headers={"n": 1})
        channel.basic_publish("", queue, BODY, properties, mandatory=True)

        # basic.get, then ack
        method, got_properties, body = channel.basic_get(queue)
        assert body == BODY and got_properties.headers == {"n": 1}
        channel.basic_ack(method.delivery_tag)
        assert channel.basic_get(queue) == (None, None, None)

        # consume and deliver, then ack
        channel.basic_publish("", queue, BODY)
        for method, _, body in channel.consume(queue, inactivity_timeout=5):
            assert body == BODY
            channel.basic_ack(method.delivery_tag)
            break
        channel.cancel()

        # an unroutable mandatory publish comes back as basic.return
        with pytest.raises(pika.exceptions.UnroutableError):
            channel.basic_publish("", "nowhere", b"x", mandatory=True)

        # a passive declare of a missing queue closes the channel with 404
        other = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            other.queue_declare("missing", passive=True)
        assert info.value.reply_code == 404
        channel.close()
        connection.close()

    events = broker.events
    assert events[0] == ProtocolHeaderReceived(0, 9, 1)
    assert ConnectionOpened(4096, 2047, 60, "/") in events
    assert ChannelOpened(1) in events
    assert [len(m.body) for m in published(broker)] == [50_000, 50_000, 1]
    assert published(broker)[0].confirm_tag == 1
    assert isinstance(events[-1], ConnectionClosed) and events[-1].reply_code == 200
    assert broker.largest_frame_sent == 4096


def test_py_amqp() -> None:
    with MiniBroker() as broker:
        host, port = broker.address
        connection = amqp.Connection(
            host=f"{host}:{port}",
            userid="guest",
            password="guest",
            frame_max=4096,
            connect_timeout=10,
            read_timeout=10,  # a broker failure fails the test instead of hanging it
            write_timeout=10,
        )
        connection.connect()
        assert connection.frame_max == 4096
        channel = connection.channel()
        queue, _, _ = channel.queue_declare(queue="amqpcodec-test", auto_delete=True)
        assert queue == "amqpcodec-test"
        channel.basic_publish(
            amqp.Message(
                BODY, content_type="application/octet-stream", application_headers={"n": 1}
            ),
            exchange="",
            routing_key=queue,
        )

        message = channel.basic_get(queue)
        assert message.body == BODY
        assert message.properties["application_headers"] == {"n": 1}
        channel.basic_ack(message.delivery_tag)
        assert channel.basic_get(queue) is None

        received: list[amqp.Message] = []
        channel.basic_consume(queue, callback=received.append)
        channel.basic_publish(amqp.Message(BODY), exchange="", routing_key=queue)
        while not received:
            connection.drain_events(timeout=5)
        assert received[0].body == BODY
        channel.basic_ack(received[0].delivery_tag)

        # Publisher confirms, as py-amqp does them.
        channel.confirm_select()
        channel.basic_publish(amqp.Message(b"confirmed"), exchange="", routing_key=queue)
        channel.close()
        connection.close()

    credentials = [e for e in broker.events if isinstance(e, ConnectionOpened)]
    assert credentials == [ConnectionOpened(4096, 2047, 0, "/")]  # py-amqp asks for none
    assert [len(m.body) for m in published(broker)] == [50_000, 50_000, 9]
    assert isinstance(broker.events[-1], ConnectionClosed)
    assert broker.largest_frame_sent == 4096


def test_a_wrong_password_is_refused_with_403() -> None:
    with MiniBroker(authenticate=lambda c: c.password == "right") as broker:
        host, port = broker.address
        parameters = pika.ConnectionParameters(
            host=host,
            port=port,
            credentials=pika.PlainCredentials("guest", "wrong"),
            connection_attempts=1,
            socket_timeout=5,
        )
        # pika reads the Close 403 it asked for with authentication_failure_close.
        with pytest.raises(pika.exceptions.ProbableAuthenticationError, match="403"):
            pika.BlockingConnection(parameters)
    assert broker.errors == [] and broker.refusals == 1
