"""The interop scenario (see scenario.py) with aio-pika (on aiormq and pamqp)."""

from __future__ import annotations

import asyncio
import datetime
import decimal
from urllib.parse import quote

import aio_pika
import aiormq.exceptions
import scenario as sc


async def connect(
    host: str, port: int, user: str, password: str, heartbeat: int = 0
) -> aio_pika.abc.AbstractConnection:
    url = f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
    return await aio_pika.connect(f"{url}?heartbeat={heartbeat}", timeout=10)


def message(n: int) -> aio_pika.Message:
    return aio_pika.Message(
        sc.body(n),
        content_type=sc.CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=sc.headers(n),
    )


async def publish_all(channel: aio_pika.abc.AbstractChannel, queue: str) -> None:
    for n in range(len(sc.SIZES)):
        confirmation = await channel.default_exchange.publish(
            message(n), routing_key=queue, mandatory=True
        )
        if not isinstance(confirmation, aiormq.spec.Basic.Ack):
            raise sc.Mismatch(f"message {n} confirmed with {confirmation!r}")


async def basic(connection: aio_pika.abc.AbstractConnection, consume_first: bool = False) -> None:
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue("", exclusive=True)
    received: asyncio.Queue[aio_pika.abc.AbstractIncomingMessage] = asyncio.Queue()
    if consume_first:  # consume while the publishes wait for their confirms
        await queue.consume(received.put)
        await publish_all(channel, queue.name)
    else:
        await publish_all(channel, queue.name)
        await queue.consume(received.put)
    for n in range(len(sc.SIZES)):
        incoming = await asyncio.wait_for(received.get(), 30)
        sc.check(n, incoming.body, incoming.content_type, incoming.delivery_mode, incoming.headers)
        await incoming.ack()
    await channel.close()


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


async def tables(connection: aio_pika.abc.AbstractConnection) -> None:
    channel = await connection.channel()
    queue = await channel.declare_queue("", exclusive=True)
    await channel.default_exchange.publish(aio_pika.Message(b"t", headers=TABLE), queue.name)
    incoming = None
    for _ in range(100):
        incoming = await queue.get(no_ack=True, fail=False)
        if incoming is not None:
            break
        await asyncio.sleep(0.05)
    if incoming is None:
        raise sc.Mismatch("the message did not come back")
    sc.check_tables(TABLE, incoming.headers)
    await channel.close()


async def arun(scenario: str, host: str, port: int, user: str, password: str) -> None:
    if scenario == "auth":
        try:
            await (await connect(host, port, user, password)).close()
        except aiormq.exceptions.ProbableAuthenticationError as exc:
            if "ACCESS_REFUSED" not in str(exc) and "403" not in str(exc):
                raise sc.Mismatch(f"refused without 403: {exc!r}") from exc
            return
        raise sc.Mismatch("logged in with a wrong password")
    connection = await connect(host, port, user, password, 1 if scenario == "heartbeat" else 0)
    if scenario == "heartbeat":
        await asyncio.sleep(sc.IDLE_SECONDS)  # aiormq answers heartbeats meanwhile
        await basic(connection)
    elif scenario == "confirm-consume":
        await basic(connection, consume_first=True)
    elif scenario == "tables":
        await tables(connection)
    else:
        await basic(connection)
    await connection.close()


def run(scenario: str, host: str, port: int, user: str, password: str) -> None:
    asyncio.run(arun(scenario, host, port, user, password))


if __name__ == "__main__":
    sc.main(run)
