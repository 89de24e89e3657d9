"""The programs in examples/ run: against RabbitMQ (the clients) and against pika (the server)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import anyio
import pika
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def queue(rabbitmq: tuple[str, int]) -> Iterator[str]:
    """A fresh queue name, deleted afterwards."""
    name = f"amqpcodec-example-{uuid.uuid4().hex[:12]}"
    yield name
    params = pika.ConnectionParameters(*rabbitmq)
    with pika.BlockingConnection(params) as connection:
        connection.channel().queue_delete(name)


def message_count(rabbitmq: tuple[str, int], queue: str) -> int:
    with pika.BlockingConnection(pika.ConnectionParameters(*rabbitmq)) as connection:
        declared = connection.channel().queue_declare(queue, passive=True)
        count: int = declared.method.message_count
        return count


async def relay(upstream: tuple[str, int], drop_after: int) -> tuple[asyncio.Server, list[int]]:
    """A TCP relay to ``upstream`` that cuts its first connection once ``drop_after``
    bytes came back from upstream; the list counts the connections relayed."""
    connections: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: int) -> None:
        relayed = 0
        while data := await reader.read(65536):
            writer.write(data)
            relayed += len(data)
            if cut and relayed >= cut:
                raise ConnectionAbortedError

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections) + 1)
        cut = drop_after if len(connections) == 1 else 0
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        tasks = [
            asyncio.ensure_future(pipe(reader, up_writer, 0)),
            asyncio.ensure_future(pipe(up_reader, writer, cut)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for w in (writer, up_writer):
            w.transport.abort()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, connections


pytestmark = pytest.mark.rabbitmq


def test_asyncio_client_publishes_and_consumes_with_confirms(
    rabbitmq: tuple[str, int], queue: str
) -> None:
    example = load("asyncio_client")
    inbox = asyncio.run(example.main(*rabbitmq, queue=queue, count=300))
    assert inbox == {f"m{i}": b"message %d" % i for i in range(300)}
    assert message_count(rabbitmq, queue) == 0  # every delivery was acked


def test_asyncio_client_reconnects_and_loses_nothing(rabbitmq: tuple[str, int], queue: str) -> None:
    example = load("asyncio_client")

    async def run() -> tuple[dict[str, bytes], list[int]]:
        # The first connection is cut in the middle of the deliveries.
        server, connections = await relay(rabbitmq, drop_after=20_000)
        async with server:
            port = server.sockets[0].getsockname()[1]
            inbox = await example.main("127.0.0.1", port, queue=queue, count=500)
        return inbox, connections

    inbox, connections = asyncio.run(run())
    assert len(connections) >= 2
    assert inbox == {f"m{i}": b"message %d" % i for i in range(500)}
    assert message_count(rabbitmq, queue) == 0


def test_asyncio_client_stops_cleanly(rabbitmq: tuple[str, int], queue: str) -> None:
    example = load("asyncio_client")

    async def run() -> dict[str, bytes]:
        stop = asyncio.Event()
        stop.set()  # Ctrl-C at once: the session closes the connection and returns
        return await example.main(*rabbitmq, queue=queue, count=50, stop=stop)

    inbox = asyncio.run(run())
    assert set(inbox) <= {f"m{i}" for i in range(50)}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_publisher(rabbitmq: tuple[str, int], queue: str, backend: str) -> None:
    example = load("anyio_publisher")
    bodies = [b"body %d" % i for i in range(200)]
    acked = anyio.run(example.publish, *rabbitmq, queue, bodies, backend=backend)
    assert acked == 200
    assert message_count(rabbitmq, queue) == 200


def test_asyncio_server_serves_pika() -> None:
    example = load("asyncio_server")
    loop = asyncio.new_event_loop()
    started: asyncio.Future[int] = loop.create_future()
    serving = loop.create_task(example.main(0, started))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        port = asyncio.run_coroutine_threadsafe(asyncio.wait_for(started, 10), loop).result(10)
        params = pika.ConnectionParameters("127.0.0.1", port)
        with pika.BlockingConnection(params) as connection:
            channel = connection.channel()
            channel.confirm_delivery()
            name = channel.queue_declare("", exclusive=True).method.queue
            assert name.startswith("amq.gen-")
            properties = pika.BasicProperties(content_type="text/plain", headers={"n": 1})
            for i in range(20):
                channel.basic_publish("", name, b"job %d" % i, properties)  # confirmed
            method, got_properties, body = channel.basic_get(name)
            assert body == b"job 0" and got_properties.headers == {"n": 1}
            channel.basic_ack(method.delivery_tag)
            channel.basic_qos(prefetch_count=5)
            bodies = []
            for method, _, body in channel.consume(name, inactivity_timeout=5):
                assert method is not None
                bodies.append(body)
                channel.basic_ack(method.delivery_tag)
                if len(bodies) == 19:
                    break
            channel.cancel()
            assert bodies == [b"job %d" % i for i in range(1, 20)]
            assert channel.basic_get(name) == (None, None, None)
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
                channel.exchange_declare("x", "fanout")
            assert closed.value.reply_code == 540
    finally:

        async def stop_serving() -> None:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving

        asyncio.run_coroutine_threadsafe(stop_serving(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
