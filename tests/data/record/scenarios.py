"""Client scenarios recorded by record.py.

Each scenario talks to the local broker (127.0.0.1 or ::1 only) with guest/guest,
uses its own queue name and deletes that queue before it returns.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from decimal import Decimal

import amqp
import pika
from pika.exceptions import ChannelClosedByBroker

HOST = "127.0.0.1"
HOST6 = "::1"
PORT = 5672
QUEUE_PREFIX = "amqpcodec.record."


def _params(host: str = HOST, **kwargs: object) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=host,
        port=PORT,
        credentials=pika.PlainCredentials("guest", "guest"),
        **kwargs,
    )


def _roundtrip(
    ch: pika.adapters.blocking_connection.BlockingChannel,
    queue: str,
    body: bytes,
    props: pika.BasicProperties | None = None,
) -> None:
    """Publish ``body`` to ``queue`` via the default exchange and basic_get it back."""
    ch.basic_publish(exchange="", routing_key=queue, body=body, properties=props)
    for _ in range(50):  # the message may need a moment to be routed
        _method, _props, got = ch.basic_get(queue, auto_ack=True)
        if got is not None:
            assert got == body, "body came back different"
            return
        time.sleep(0.02)
    raise RuntimeError(f"message never arrived on {queue}")


def pika_handshake_close() -> None:
    conn = pika.BlockingConnection(_params())
    conn.close()


HEADERS = {
    "str": "hello wörld",
    "int_small": 42,
    "int_large": 2**40 + 7,  # > 2**31: encoded as a 64-bit 'l'
    "int_negative": -12345,
    "int_negative_large": -(2**33),
    "bool_true": True,
    "bool_false": False,
    # no float: pika 1.4.4 cannot encode one (UnsupportedAMQPFieldException);
    # pyamqp_session carries a float ('d') instead
    "decimal": Decimal("123.45"),
    "datetime": datetime.datetime(2024, 5, 17, 12, 30, 45),
    "nested": {"a": 1, "b": "two", "c": {"deep": True}},
    "list": [1, "two", True, None, [4, 5], {"k": "v"}],
    "none": None,
    "bytes": b"\x00\x01\x02binary\xff",
}


def pika_publish_props() -> None:
    queue = QUEUE_PREFIX + "publish_props"
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="utf-8",
        headers=HEADERS,
        delivery_mode=2,
        priority=5,
        correlation_id="corr-0001",
        reply_to="amqpcodec.reply",
        expiration="60000",
        message_id="msg-0001",
        timestamp=1700000000,
        type="amqpcodec.test",
        user_id="guest",  # must equal the authenticated user
        app_id="amqpcodec-recorder",
    )
    conn = pika.BlockingConnection(_params())
    ch = conn.channel()
    ch.queue_declare(queue)
    _roundtrip(ch, queue, b'{"hello": "world"}', props)
    ch.queue_delete(queue)
    conn.close()


def pika_large_body() -> None:
    queue = QUEUE_PREFIX + "large_body"
    body = bytes(i % 251 for i in range(100_000))
    conn = pika.BlockingConnection(_params(frame_max=4096))
    ch = conn.channel()
    ch.queue_declare(queue)
    _roundtrip(ch, queue, body, pika.BasicProperties(content_type="application/octet-stream"))
    _roundtrip(ch, queue, b"")
    ch.queue_delete(queue)
    conn.close()


def pika_heartbeat() -> None:
    conn = pika.BlockingConnection(_params(heartbeat=1))
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.25)
    conn.close()


def pika_channel_error() -> None:
    queue = QUEUE_PREFIX + "channel_error"
    conn = pika.BlockingConnection(_params())
    ch = conn.channel()
    try:
        ch.queue_declare(QUEUE_PREFIX + "does-not-exist", passive=True)
    except ChannelClosedByBroker as exc:
        assert exc.reply_code == 404, exc
    else:
        raise RuntimeError("passive declare of a missing queue succeeded")
    ch2 = conn.channel()
    ch2.queue_declare(queue)
    _roundtrip(ch2, queue, b"after the channel error")
    ch2.queue_delete(queue)
    ch2.close()
    conn.close()


def pyamqp_session() -> None:
    queue = QUEUE_PREFIX + "pyamqp"
    conn = amqp.Connection(host=f"{HOST}:{PORT}", userid="guest", password="guest")
    conn.connect()
    ch = conn.channel()
    ch.queue_declare(queue, auto_delete=False)
    bodies = [b"first py-amqp message", "second, ünïcode".encode()]
    for i, body in enumerate(bodies):
        msg = amqp.Message(
            body,
            content_type="text/plain",
            delivery_mode=2,
            message_id=f"pyamqp-{i}",
            # py-amqp writes float as 'd', int >= 2**31 as 'L', bytes as 'S'
            application_headers={
                "seq": i,
                "source": "py-amqp",
                "float": 2.5 * (i + 1),
                "big": 2**40 + i,
                "raw": b"\x00\xff",
            },
        )
        ch.basic_publish(msg, exchange="", routing_key=queue)
    got: list[bytes] = []
    for _ in range(100):
        if len(got) == len(bodies):
            break
        msg = ch.basic_get(queue, no_ack=True)
        if msg is None:
            time.sleep(0.02)
        else:
            got.append(msg.body)
    assert got == bodies, got
    ch.queue_delete(queue)
    ch.close()
    conn.close()


def two_connections() -> None:
    queues = [QUEUE_PREFIX + "two_connections.a", QUEUE_PREFIX + "two_connections.b"]
    conns = [pika.BlockingConnection(_params()) for _ in queues]
    chans = [c.channel() for c in conns]
    for ch, queue in zip(chans, queues, strict=True):
        ch.queue_declare(queue)
    for ch, queue in zip(chans, queues, strict=True):
        _roundtrip(ch, queue, f"via {queue}".encode())
    for ch, queue in zip(chans, queues, strict=True):
        ch.queue_delete(queue)
    for c in conns:
        c.close()


def ipv6_loopback() -> None:
    conn = pika.BlockingConnection(_params(host=HOST6))
    ch = conn.channel()
    ch.close()
    conn.close()


SCENARIOS: dict[str, Callable[[], None]] = {
    f.__name__: f
    for f in (
        pika_handshake_close,
        pika_publish_props,
        pika_large_body,
        pika_heartbeat,
        pika_channel_error,
        pyamqp_session,
        two_connections,
        ipv6_loopback,
    )
}
