"""The interop scenario (see scenario.py) with AMQPStorm."""

from __future__ import annotations

import datetime
import decimal
import time

import amqpstorm
import scenario as sc


def connect(
    host: str, port: int, user: str, password: str, heartbeat: int = 0
) -> amqpstorm.Connection:
    return amqpstorm.Connection(host, user, password, port=port, heartbeat=heartbeat, timeout=10)


def properties(n: int) -> dict[str, object]:
    return {"content_type": sc.CONTENT_TYPE, "delivery_mode": 2, "headers": sc.headers(n)}


def basic(connection: amqpstorm.Connection, consume_first: bool = False) -> None:
    channel = connection.channel()
    queue = channel.queue.declare("", exclusive=True)["queue"]
    channel.confirm_deliveries()
    received: list[amqpstorm.Message] = []

    def on_message(message: amqpstorm.Message) -> None:
        received.append(message)
        message.ack()

    def publish() -> None:
        for n in range(len(sc.SIZES)):
            message = amqpstorm.Message.create(channel, sc.body(n), properties(n))
            # in confirm mode publish waits for the broker's answer: True for an ack
            if message.publish(queue, mandatory=True) is not True:
                raise sc.Mismatch(f"message {n} was not confirmed")

    if not consume_first:
        publish()
    channel.basic.consume(on_message, queue)
    if consume_first:  # consume while each publish waits for its confirm
        publish()
    deadline = time.monotonic() + 30
    while len(received) < len(sc.SIZES) and time.monotonic() < deadline:
        channel.process_data_events(to_tuple=False, auto_decode=False)
        time.sleep(0.01)
    if len(received) != len(sc.SIZES):
        raise sc.Mismatch(f"{len(received)} of {len(sc.SIZES)} messages came back")
    for n, message in enumerate(received):
        props = message.properties
        sc.check(
            n,
            message.body,
            props.get("content_type"),
            props.get("delivery_mode"),
            props.get("headers"),
        )
    channel.close()


TABLE = {
    "longstr": "text",
    "bytes": bytearray(b"\x00\xff"),  # pamqp writes a bytearray as x, and refuses bytes
    "int": 7,
    "negative": -70_000,
    "long": 2**40,
    "bool": False,
    "double": 2.5,
    "decimal": decimal.Decimal("3.14"),
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "void": None,
    "table": {"inner": {"deep": 1}},
    "array": [1, "two", True, None, [3]],
}


def tables(connection: amqpstorm.Connection) -> None:
    channel = connection.channel()
    queue = channel.queue.declare("", exclusive=True)["queue"]
    amqpstorm.Message.create(channel, b"t", {"headers": TABLE}).publish(queue)
    message = None
    for _ in range(100):
        message = channel.basic.get(queue, no_ack=True, auto_decode=False)
        if message is not None:
            break
        time.sleep(0.05)
    if message is None:
        raise sc.Mismatch("the message did not come back")
    sc.check_tables(TABLE, message.properties.get("headers"))
    channel.close()


def run(scenario: str, host: str, port: int, user: str, password: str) -> None:
    if scenario == "auth":
        try:
            connect(host, port, user, password).close()
        except amqpstorm.AMQPConnectionError as exc:
            if "ACCESS_REFUSED" not in str(exc) and "403" not in str(exc):
                raise sc.Mismatch(f"refused without 403: {exc!r}") from exc
            return
        raise sc.Mismatch("logged in with a wrong password")
    connection = connect(host, port, user, password, heartbeat=1 if scenario == "heartbeat" else 0)
    if scenario == "heartbeat":
        time.sleep(sc.IDLE_SECONDS)  # amqpstorm's own thread answers heartbeats
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
