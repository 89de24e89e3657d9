"""Publish messages with confirms and consume them back on one asyncio connection.

Prefetch (Basic.Qos) bounds the unacked deliveries; publisher confirms tell which
publishes the broker took; when the connection drops the program reconnects and
publishes again whatever was not confirmed (at least once: the consumer drops
duplicates by message id); Ctrl-C closes the connection cleanly. Every event is handled:
an unexpected one is an error, never ignored.

    python examples/asyncio_client.py [HOST] [PORT]
"""

from __future__ import annotations

import asyncio
import signal
import sys

from amqpcodec import Connection, Role, events, spec

QUEUE = "amqpcodec-example"


async def session(
    host: str,
    port: int,
    queue: str,
    outbox: dict[str, bytes],
    inbox: dict[str, bytes],
    stop: asyncio.Event,
) -> None:
    """One connection; returns after a clean close, raises ConnectionError if it drops."""
    reader, writer = await asyncio.open_connection(host, port)
    conn = Connection(Role.CLIENT, heartbeat=10, pipelining=True)
    loop = asyncio.get_running_loop()
    channel = 0
    sent: dict[int, str] = {}  # publish tag -> message id, until confirmed
    read = asyncio.ensure_future(reader.read(65536))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            while parts := conn.data_to_send_parts(max_parts=1024):  # IOV_MAX
                writer.writelines(parts)
            await writer.drain()
            at = conn.next_tick_at
            timeout = None if at is None else max(at - loop.time(), 0)
            await asyncio.wait({read, stopping}, timeout=timeout, return_when="FIRST_COMPLETED")
            got: list[events.AnyEvent] = []
            if read.done():
                got += conn.receive_data(read.result())
                read = asyncio.ensure_future(reader.read(65536))
            got += conn.tick(loop.time())
            if stopping.done() and conn.is_open and not got:
                conn.close()  # deliveries stop; Close-Ok ends the session
            for event in got:
                match event:
                    case events.ConnectionOpened():
                        channel = conn.open_channel()
                    case events.ChannelOpened():  # pipelined: no waiting between these
                        conn.send_method(channel, spec.Confirm.Select())
                        conn.send_method(channel, spec.Basic.Qos(prefetch_count=10))
                        conn.send_method(channel, spec.Queue.Declare(queue=queue, durable=True))
                        conn.send_method(channel, spec.Basic.Consume(queue=queue))
                    case events.MethodReceived(method=spec.Basic.ConsumeOk()):
                        for message_id, body in outbox.items():
                            properties = spec.BasicProperties(
                                message_id=message_id, delivery_mode=2
                            )
                            publish = spec.Basic.Publish(routing_key=queue)
                            tag = conn.send_message(channel, publish, properties, body)
                            assert tag is not None  # the channel is in confirm mode
                            sent[tag] = message_id
                    case events.MethodReceived(request=request) if request is not None:
                        pass  # select-ok, qos-ok, declare-ok: the setup went through
                    case events.Confirmed(delivery_tags=tags, ack=ack):
                        for tag in tags:
                            message_id = sent.pop(tag)
                            if ack:  # a nack keeps it in the outbox for the next session
                                outbox.pop(message_id, None)
                    case events.MessageReceived(method=spec.Basic.Deliver() as deliver):
                        inbox.setdefault(event.properties.message_id or "", event.body)
                        conn.send_method(channel, spec.Basic.Ack(deliver.delivery_tag))
                    case events.ConnectionClosed(closed_by=Role.CLIENT):
                        return  # our clean close
                    case events.HeartbeatTimeout():
                        pass  # the ConnectionClosed that follows ends the session
                    case _:  # a channel or connection closed by the broker, a lost socket...
                        raise ConnectionError(f"unexpected {event}")
    finally:
        read.cancel()
        stopping.cancel()
        writer.close()


async def main(
    host: str = "127.0.0.1",
    port: int = 5672,
    queue: str = QUEUE,
    count: int = 100,
    stop: asyncio.Event | None = None,
) -> dict[str, bytes]:
    """Publish ``count`` messages and consume them; stop when all came back or on ``stop``."""
    stop = stop or asyncio.Event()
    outbox = {f"m{i}": b"message %d" % i for i in range(count)}
    inbox: dict[str, bytes] = {}

    async def done() -> None:
        while len(inbox) < count or outbox:
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.ensure_future(done())
    try:
        while True:
            try:
                await session(host, port, queue, outbox, inbox, stop)
                return inbox
            except (OSError, ConnectionError) as exc:
                print(f"connection lost ({exc}); reconnecting", file=sys.stderr)
                await asyncio.sleep(0.5)
    finally:
        watcher.cancel()


if __name__ == "__main__":

    async def cli() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
        port = int(sys.argv[2]) if len(sys.argv) > 2 else 5672
        inbox = await main(host, port, stop=stop)
        print(f"received {len(inbox)} messages")

    asyncio.run(cli())
