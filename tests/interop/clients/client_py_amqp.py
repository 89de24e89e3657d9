"""The interop scenario (see scenario.py) with py-amqp."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import time
from typing import Any

import amqp
import amqp.exceptions
import scenario as sc


def connect(
    host: str, port: int, user: str, password: str, heartbeat: int = 0, frame_max: int = 131072
) -> amqp.Connection:
    connection = amqp.Connection(
        host=f"{host}:{port}",
        userid=user,
        password=password,
        heartbeat=heartbeat,
        frame_max=frame_max,
        confirm_publish=True,  # basic_publish waits for the broker's ack, raises on a nack
        connect_timeout=10,
    )
    connection.connect()
    return connection


def message(n: int) -> amqp.Message:
    return amqp.Message(
        sc.body(n),
        content_type=sc.CONTENT_TYPE,
        delivery_mode=2,
        application_headers=sc.headers(n),
    )


def drain_until(connection: amqp.Connection, done: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not done():
        if time.monotonic() > deadline:
            raise sc.Mismatch(f"timed out waiting for {what}")
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=1)


def consume(connection: amqp.Connection, channel: amqp.Channel, queue: str, publish: Any) -> None:
    received: list[amqp.Message] = []

    def on_message(msg: amqp.Message) -> None:
        received.append(msg)
        channel.basic_ack(msg.delivery_tag)

    channel.basic_consume(queue, callback=on_message)
    publish()
    drain_until(connection, lambda: len(received) >= len(sc.SIZES), "the deliveries")
    for n, msg in enumerate(received):
        props = msg.properties
        # py-amqp hands an empty body back as "" (str), any other as bytes
        got = b"" if msg.body == "" else msg.body
        sc.check(
            n,
            got,
            props.get("content_type"),
            props.get("delivery_mode"),
            props.get("application_headers"),
        )


def basic(connection: amqp.Connection, consume_first: bool = False) -> None:
    channel = connection.channel()
    queue, _, _ = channel.queue_declare(queue="", exclusive=True)

    def publish() -> None:
        for n in range(len(sc.SIZES)):
            channel.basic_publish(message(n), exchange="", routing_key=queue, mandatory=True)

    if consume_first:  # consume while each publish waits for its confirm
        consume(connection, channel, queue, publish)
    else:
        publish()
        consume(connection, channel, queue, lambda: None)
    channel.close()


TABLE = {
    "longstr": "text",
    "int": 7,
    "negative": -70_000,
    "long": 2**40,
    "bool": False,
    "double": 2.5,
    "decimal": decimal.Decimal("3.14"),
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5),
    "void": None,
    "table": {"inner": {"deep": 1}},
    "array": [1, "two", True, None, [3]],
}


def tables(connection: amqp.Connection) -> None:
    channel = connection.channel()
    queue, _, _ = channel.queue_declare(queue="", exclusive=True)
    channel.basic_publish(amqp.Message(b"t", application_headers=TABLE), "", queue)
    msg = channel.basic_get(queue, no_ack=True)
    if msg is None:
        raise sc.Mismatch("the message did not come back")
    sc.check_tables(TABLE, msg.properties.get("application_headers"))
    channel.close()


def run(scenario: str, host: str, port: int, user: str, password: str) -> None:
    if scenario == "auth":
        try:
            connect(host, port, user, password).close()
        except amqp.exceptions.AccessRefused as exc:
            if exc.reply_code != 403:
                raise sc.Mismatch(f"refused with {exc.reply_code}") from exc
            return
        raise sc.Mismatch("logged in with a wrong password")
    connection = connect(
        host,
        port,
        user,
        password,
        heartbeat=1 if scenario == "heartbeat" else 0,
        frame_max=4096 if scenario == "frame-max-4096" else 131072,
    )
    if scenario == "frame-max-4096" and connection.frame_max != 4096:
        raise sc.Mismatch(f"frame_max {connection.frame_max} negotiated, asked for 4096")
    if scenario == "heartbeat":
        # py-amqp sends heartbeats only when the application calls heartbeat_tick
        deadline = time.monotonic() + sc.IDLE_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.2)
            connection.heartbeat_tick()
        basic(connection)
    elif scenario == "confirm-consume":
        basic(connection, consume_first=True)
    elif scenario == "tables":
        tables(connection)
    else:
        basic(connection)
    connection.close()


if __name__ == "__main__":
    sc.main(run)
