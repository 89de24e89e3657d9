"""The interop scenario (see scenario.py) with pika's BlockingConnection."""

from __future__ import annotations

import datetime
import decimal

import pika
import pika.exceptions
import scenario as sc


def connect(
    host: str, port: int, user: str, password: str, heartbeat: int = 0, frame_max: int = 131072
) -> pika.BlockingConnection:
    parameters = pika.ConnectionParameters(
        host=host,
        port=port,
        credentials=pika.PlainCredentials(user, password),
        heartbeat=heartbeat,
        frame_max=frame_max,
        connection_attempts=1,
        socket_timeout=10,
        blocked_connection_timeout=60,
    )
    return pika.BlockingConnection(parameters)


def properties(n: int) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type=sc.CONTENT_TYPE, delivery_mode=2, headers=sc.headers(n)
    )


def basic(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.confirm_delivery()
    for n in range(len(sc.SIZES)):
        # in confirm mode basic_publish waits for the broker's ack and raises on a nack
        channel.basic_publish("", queue, sc.body(n), properties(n), mandatory=True)
    deliveries = channel.consume(queue, inactivity_timeout=30)
    for n in range(len(sc.SIZES)):
        method, props, body = next(deliveries)
        if method is None:
            raise sc.Mismatch(f"only {n} of {len(sc.SIZES)} messages came back")
        sc.check(n, body, props.content_type, props.delivery_mode, props.headers)
        channel.basic_ack(method.delivery_tag)
    channel.cancel()
    channel.close()


def confirm_consume(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.confirm_delivery()
    received: list[tuple[bytes, pika.BasicProperties]] = []

    def on_message(ch, method, props, body):  # type: ignore[no-untyped-def]
        received.append((body, props))
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message)
    # each publish waits for its confirm; deliveries arrive meanwhile
    for n in range(len(sc.SIZES)):
        channel.basic_publish("", queue, sc.body(n), properties(n), mandatory=True)
    deadline = 300
    while len(received) < len(sc.SIZES) and deadline:
        connection.process_data_events(time_limit=0.1)
        deadline -= 1
    if len(received) != len(sc.SIZES):
        raise sc.Mismatch(f"{len(received)} of {len(sc.SIZES)} messages came back")
    for n, (body, props) in enumerate(received):
        sc.check(n, body, props.content_type, props.delivery_mode, props.headers)
    channel.close()


TABLE = {
    "longstr": "text",
    "bytes": b"\x00\xff",
    "int": 7,
    "negative": -70_000,
    "long": 2**40,
    "bool": False,
    "decimal": decimal.Decimal("3.14"),
    "timestamp": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "void": None,
    "table": {"inner": {"deep": 1}},
    "array": [1, "two", True, None, [3]],
}


def tables(connection: pika.BlockingConnection) -> None:
    channel = connection.channel()
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.basic_publish("", queue, b"t", pika.BasicProperties(headers=TABLE))
    method, props, _ = channel.basic_get(queue, auto_ack=True)
    if method is None:
        raise sc.Mismatch("the message did not come back")
    sc.check_tables(TABLE, props.headers)
    channel.close()


def run(scenario: str, host: str, port: int, user: str, password: str) -> None:
    if scenario == "auth":
        try:
            connect(host, port, user, password).close()
        except pika.exceptions.ProbableAuthenticationError as exc:
            if "ACCESS_REFUSED" not in str(exc) and "403" not in str(exc):
                raise sc.Mismatch(f"refused without 403: {exc!r}") from exc
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
    negotiated = connection._impl.params.frame_max  # pika keeps the tuned value there
    if scenario == "frame-max-4096" and negotiated != 4096:
        raise sc.Mismatch(f"frame_max {negotiated} negotiated, asked for 4096")
    if scenario == "heartbeat":
        connection.sleep(sc.IDLE_SECONDS)  # pika answers heartbeats while it sleeps
        basic(connection)
    elif scenario == "confirm-consume":
        confirm_consume(connection)
    elif scenario == "tables":
        tables(connection)
    else:
        basic(connection)
    connection.close()


if __name__ == "__main__":
    sc.main(run)
