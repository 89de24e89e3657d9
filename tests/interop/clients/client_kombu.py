"""The interop scenario (see scenario.py) with kombu (its pyamqp transport)."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import time
from typing import Any

import amqp.exceptions
import kombu
import scenario as sc


def connect(host: str, port: int, user: str, password: str, heartbeat: int = 0) -> kombu.Connection:
    connection = kombu.Connection(
        hostname=host,
        port=port,
        userid=user,
        password=password,
        transport="pyamqp",
        heartbeat=heartbeat,
        connect_timeout=10,
        transport_options={"confirm_publish": True},  # publish waits for the broker's ack
    )
    connection.connect()
    return connection


def drain_until(connection: kombu.Connection, done: Any) -> None:
    deadline = time.monotonic() + 30
    while not done() and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=1)


def basic(connection: kombu.Connection, consume_first: bool = False) -> None:
    channel = connection.channel()
    queue = kombu.Queue("", exclusive=True, channel=channel)
    queue.declare()  # the server-named queue's name lands in queue.name
    if not queue.name:
        raise sc.Mismatch("kombu did not learn the server-named queue's name")
    producer = kombu.Producer(channel)
    received: list[kombu.Message] = []

    def on_message(_body: Any, message: kombu.Message) -> None:
        received.append(message)
        message.ack()

    def publish() -> None:
        for n in range(len(sc.SIZES)):
            producer.publish(
                sc.body(n),
                exchange="",
                routing_key=queue.name,
                content_type=sc.CONTENT_TYPE,
                content_encoding="binary",
                delivery_mode=2,
                headers=sc.headers(n),
                mandatory=True,
            )

    # auto_declare would declare "amq.gen-..." again by name, which RabbitMQ refuses (403)
    consumer = kombu.Consumer(
        channel,
        queues=[queue],
        callbacks=[on_message],
        accept=[sc.CONTENT_TYPE],
        auto_declare=False,
    )
    if consume_first:  # consume while each publish waits for its confirm
        consumer.consume()
        publish()
    else:
        publish()
        consumer.consume()
    drain_until(connection, lambda: len(received) >= len(sc.SIZES))
    if len(received) != len(sc.SIZES):
        raise sc.Mismatch(f"{len(received)} of {len(sc.SIZES)} messages came back")
    for n, message in enumerate(received):
        got = b"" if message.body == "" else message.body  # py-amqp's empty body is ""
        sc.check(
            n, got, message.content_type, message.properties.get("delivery_mode"), message.headers
        )
    consumer.cancel()
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


def tables(connection: kombu.Connection) -> None:
    channel = connection.channel()
    queue = kombu.Queue("", exclusive=True, channel=channel)
    queue.declare()
    kombu.Producer(channel).publish(
        b"t",
        routing_key=queue.name,
        headers=TABLE,
        content_type="application/data",
        content_encoding="binary",
    )
    message = None
    for _ in range(100):
        message = queue.get(no_ack=True)
        if message is not None:
            break
        time.sleep(0.05)
    if message is None:
        raise sc.Mismatch("the message did not come back")
    sc.check_tables(TABLE, message.headers)
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
    connection = connect(host, port, user, password, heartbeat=1 if scenario == "heartbeat" else 0)
    if scenario == "heartbeat":
        # kombu, like py-amqp below it, sends heartbeats when the application calls heartbeat_check
        deadline = time.monotonic() + sc.IDLE_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.2)
            connection.heartbeat_check()
        basic(connection)
    elif scenario == "confirm-consume":
        basic(connection, consume_first=True)
    elif scenario == "tables":
        tables(connection)
    else:
        basic(connection)
    connection.release()


if __name__ == "__main__":
    sc.main(run)
