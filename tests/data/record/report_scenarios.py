"""Client scenarios behind the captures that ``amqpcodec report`` is tested on.

Each scenario talks to the local broker on 127.0.0.1:5672 (guest/guest) with real
clients (pika, py-amqp), uses its own queue names, and returns

    (client ports, facts)

``client ports`` are the local ports of the connections it made, so that
``record_report.py`` can keep exactly those connections in the capture (other people's
traffic to the same broker is dropped). ``facts`` is what the scenario knows it did
(tags left unacknowledged, nacks provoked, errors caused); it is written beside the
capture as ``NAME.facts.json`` and the report tests assert against it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import amqp
import pika
import pika.exceptions

HOST = "127.0.0.1"
PORT = 5672

Facts = dict[str, Any]
Result = tuple[list[int], Facts]


def _name(what: str) -> str:
    return f"amqpcodec.report.{what}.{uuid.uuid4().hex[:8]}"


def _params(**kwargs: Any) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=HOST, port=PORT, credentials=pika.PlainCredentials("guest", "guest"), **kwargs
    )


def _port(conn: pika.BlockingConnection) -> int:
    sock = conn._impl._transport._sock  # pika keeps its socket here
    return int(sock.getsockname()[1])


def _cleanup(*queues: str) -> None:
    """Delete queues over a connection that is not kept in the capture."""
    conn = pika.BlockingConnection(_params())
    ch = conn.channel()
    for queue in queues:
        ch.queue_delete(queue)
    conn.close()


def _pump(conn: pika.BlockingConnection, until: Callable[[], bool], limit: float = 5) -> None:
    deadline = time.monotonic() + limit
    while not until():
        if time.monotonic() > deadline:
            raise RuntimeError("the broker did not answer in time")
        conn.process_data_events(time_limit=0.05)


def work_queue() -> Result:
    """A worker with prefetch 3 and manual acks (one ack with multiple=True), which
    leaves two deliveries unacknowledged; an auditor consuming with no_ack."""
    work, audit = _name("work"), _name("audit")
    conn = pika.BlockingConnection(_params())
    ch = conn.channel()
    ch.queue_declare(work)
    for n in range(5):
        ch.basic_publish("", work, f"job {n}".encode())
    ch.basic_qos(prefetch_count=3)
    got: list[int] = []
    ch.basic_consume(
        work, lambda _c, method, _p, _b: got.append(method.delivery_tag), consumer_tag="worker"
    )
    _pump(conn, lambda: len(got) == 3)
    ch.basic_ack(2, multiple=True)  # acknowledges 1 and 2
    _pump(conn, lambda: len(got) == 5)
    ch.basic_ack(4)  # 3 and 5 are never acknowledged
    auditing = conn.channel()
    auditing.queue_declare(audit)
    for n in range(2):
        auditing.basic_publish("", audit, f"audit {n}".encode())
    seen: list[int] = []
    auditing.basic_consume(
        audit,
        lambda _c, method, _p, _b: seen.append(method.delivery_tag),
        auto_ack=True,
        consumer_tag="auditor",
    )
    _pump(conn, lambda: len(seen) == 2)
    ports = [_port(conn)]
    conn.close()
    _cleanup(work, audit)
    return ports, {
        "queues": {"worker": work, "auditor": audit},
        "channels": {"worker": ch.channel_number, "auditor": auditing.channel_number},
        "prefetch": {"worker": 3},
        "delivered": {"worker": got, "auditor": seen},
        "acked": {"worker": [1, 2, 4]},
        "ack_multiple": [2],
        "unacked": {"worker": [3, 5]},
        "no_ack": ["auditor"],
        "max_in_flight": {"worker": 3},
    }


def confirms_nacks() -> Result:
    """Publisher confirms against a queue of at most one message that rejects
    publishes over it: the first publish is acked, the next two are nacked."""
    queue = _name("confirms")
    conn = pika.BlockingConnection(_params())
    ch = conn.channel()
    ch.queue_declare(queue, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    outcome = []
    for n in range(3):
        try:
            ch.basic_publish("", queue, f"message {n}".encode())
        except pika.exceptions.NackError:
            outcome.append("nack")
        else:
            outcome.append("ack")
    ports = [_port(conn)]
    conn.close()
    _cleanup(queue)
    return ports, {
        "queue": queue,
        "channel": 1,
        "published": 3,
        "acked": [n + 1 for n, o in enumerate(outcome) if o == "ack"],
        "nacked": [n + 1 for n, o in enumerate(outcome) if o == "nack"],
        "unconfirmed": [],
    }


def rpc_direct_reply() -> Result:
    """Three calls over direct reply-to: the client consumes amq.rabbitmq.reply-to
    (no_ack) and publishes requests with reply_to and correlation_id; a server on a
    second connection answers each."""
    queue = _name("rpc")
    server = pika.BlockingConnection(_params())
    s_ch = server.channel()
    s_ch.queue_declare(queue)

    def answer(ch: Any, method: Any, props: Any, body: bytes) -> None:
        reply = pika.BasicProperties(correlation_id=props.correlation_id)
        ch.basic_publish("", props.reply_to, body.upper(), reply)
        ch.basic_ack(method.delivery_tag)

    s_ch.basic_consume(queue, answer, consumer_tag="rpc-server")
    client = pika.BlockingConnection(_params())
    c_ch = client.channel()
    replies: dict[str, bytes] = {}
    c_ch.basic_consume(
        "amq.rabbitmq.reply-to",
        lambda _c, _m, props, body: replies.__setitem__(props.correlation_id, body),
        auto_ack=True,
        consumer_tag="rpc-client",
    )
    ids = []
    for n in range(3):
        cid = f"call-{n}"
        ids.append(cid)
        props = pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id=cid)
        c_ch.basic_publish("", queue, f"request {n}".encode(), props)
        deadline = time.monotonic() + 5
        while cid not in replies:
            if time.monotonic() > deadline:
                raise RuntimeError("no reply")
            server.process_data_events(time_limit=0.02)
            client.process_data_events(time_limit=0.02)
    ports = [_port(server), _port(client)]
    client.close()
    server.close()
    _cleanup(queue)
    return ports, {
        "queue": queue,
        "calls": 3,
        "correlation_ids": ids,
        "client_connection": 1,
        "server_connection": 0,
    }


def consumer_cancel() -> Result:
    """A consumer whose queue is deleted from another channel: the broker cancels it
    with basic.cancel (the consumer_cancel_notify capability pika announces)."""
    queue = _name("cancel")
    conn = pika.BlockingConnection(_params())
    ch = conn.channel()
    ch.queue_declare(queue)
    ch.basic_consume(queue, lambda *_: None, consumer_tag="doomed")
    other = conn.channel()
    other.queue_delete(queue)
    cancelled: list[str] = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    _pump(conn, lambda: bool(cancelled))
    ports = [_port(conn)]
    conn.close()
    return ports, {
        "queue": queue,
        "consumer_tag": "doomed",
        "channel": ch.channel_number,
        "cancelled_by": "server",
    }


def heartbeat_stop() -> Result:
    """heartbeat=1: heartbeats flow both ways for about 2.5 s, then the client stops
    reading and writing; the broker gives up on it and closes the socket."""
    conn = pika.BlockingConnection(_params(heartbeat=1))
    ports = [_port(conn)]
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.1)
    time.sleep(5)  # silent: no heartbeats from the client
    with contextlib.suppress(pika.exceptions.AMQPError):
        conn.close()
    return ports, {"heartbeat": 1, "silent_first": "c2s", "closed_by": "server"}


def three_connections() -> Result:
    """Three connections at once: #0 publishes and gets a message; #1 publishes to a
    missing exchange (channel.close 404 caused by basic.publish, 60/40); #2 declares a
    missing queue passively (channel.close 404 caused by queue.declare, 50/10)."""
    queue = _name("three")
    conns = [pika.BlockingConnection(_params()) for _ in range(3)]
    ch0 = conns[0].channel()
    ch0.queue_declare(queue)
    ch0.basic_publish("", queue, b"hello")
    for _ in range(50):
        if ch0.basic_get(queue, auto_ack=True)[2] is not None:
            break
        time.sleep(0.02)
    ch1 = conns[1].channel()
    missing = _name("missing-exchange")
    ch1.basic_publish(missing, "rk", b"lost")
    with contextlib.suppress(pika.exceptions.ChannelClosedByBroker, RuntimeError):
        _pump(conns[1], lambda: False, limit=1)
    ch2 = conns[2].channel()
    with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
        ch2.queue_declare(_name("missing-queue"), passive=True)
    ports = [_port(c) for c in conns]
    for c in conns:
        c.close()
    _cleanup(queue)
    return ports, {
        "connections": 3,
        "errors": [
            {
                "connection": 1,
                "channel": 1,
                "reply_code": 404,
                "caused_by": "basic.publish",
                "class_id": 60,
                "method_id": 40,
            },
            {
                "connection": 2,
                "channel": 1,
                "reply_code": 404,
                "caused_by": "queue.declare",
                "class_id": 50,
                "method_id": 10,
            },
        ],
    }


def snaplen_errors() -> Result:
    """Recorded with a snaplen of 120: two passive declares of missing queues (two
    channel.close 404), a publish of a 300-byte body and its basic.get."""
    queue = _name("snap")
    conn = pika.BlockingConnection(_params())
    for _ in range(2):
        ch = conn.channel()
        with contextlib.suppress(pika.exceptions.ChannelClosedByBroker):
            ch.queue_declare(_name("missing"), passive=True)
    ch = conn.channel()
    ch.queue_declare(queue)
    ch.basic_publish("", queue, b"x" * 300)
    for _ in range(50):
        if ch.basic_get(queue, auto_ack=True)[2] is not None:
            break
        time.sleep(0.02)
    ports = [_port(conn)]
    conn.close()
    _cleanup(queue)
    return ports, {"snaplen": 120, "channel_close_404": 2, "body_size": 300}


class _SmallWrites:
    """Makes py-amqp's socket send in pieces of ``size`` bytes, each its own TCP
    segment (py-amqp sets TCP_NODELAY; a short pause lets each go out alone), so that
    a message spans several packets."""

    def __init__(self, conn: amqp.Connection, size: int) -> None:
        sock = conn.transport.sock

        def write(data: bytes) -> None:
            view = memoryview(data)
            for at in range(0, len(view), size):
                sock.sendall(view[at : at + size])
                time.sleep(0.002)

        conn.transport._write = write


def split_message() -> Result:
    """py-amqp writing in 200-byte segments: a binary routing key that is not UTF-8
    (mandatory, unroutable: it comes back in basic.return), then one 1500-byte message
    published and fetched. record_report.py derives the kernel-drop and mid-frame
    captures from this one."""
    queue = _name("split")
    conn = amqp.Connection(f"{HOST}:{PORT}", userid="guest", password="guest")
    conn.connect()
    port = int(conn.sock.getsockname()[1])
    _SmallWrites(conn, 200)
    ch = conn.channel()
    ch.queue_declare(queue)
    key = b"\xff\xferk-nowhere"
    ch.basic_publish(amqp.Message(b"binary key"), exchange="", routing_key=key, mandatory=True)
    # py-amqp cannot decode the key in basic.return; the capture has it
    with contextlib.suppress(TimeoutError, UnicodeDecodeError):
        conn.drain_events(timeout=1)
    body = bytes(range(256)) * 5 + b"end of the body"
    ch.basic_publish(amqp.Message(body, content_type="application/octet-stream"), "", queue)
    got = None
    for _ in range(50):
        got = ch.basic_get(queue, no_ack=True)
        if got is not None:
            break
        time.sleep(0.02)
    assert got is not None and got.body == body
    ch.queue_delete(queue)
    conn.close()
    return [port], {
        "queue": queue,
        "binary_routing_key_hex": key.hex(),
        "body_size": len(body),
        "segment_size": 200,
    }


SCENARIOS: dict[str, Callable[[], Result]] = {
    "work_queue": work_queue,
    "confirms_nacks": confirms_nacks,
    "rpc_direct_reply": rpc_direct_reply,
    "consumer_cancel": consumer_cancel,
    "heartbeat_stop": heartbeat_stop,
    "three_connections": three_connections,
    "snaplen_errors": snaplen_errors,
    "split_message": split_message,
}
