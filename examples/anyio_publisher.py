"""Publish messages with publisher confirms on anyio, so on asyncio or trio alike.

python examples/anyio_publisher.py [trio|asyncio] [HOST] [PORT]
"""

from __future__ import annotations

import sys

import anyio
from anyio.abc import ByteStream

from amqpcodec import Connection, Role, events, spec


class Client:
    """A Connection on an anyio byte stream, handing out one event at a time."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.conn = Connection(Role.CLIENT, heartbeat=10)
        self.pending: list[events.AnyEvent] = []

    async def next_event(self) -> events.AnyEvent:
        """Send what is queued, then read (ticking when due) until an event arrives."""
        while not self.pending:
            self.pending += self.conn.tick(anyio.current_time())
            if data := self.conn.data_to_send():
                await self.stream.send(data)
            at = self.conn.next_tick_at
            with anyio.move_on_after(None if at is None else at - anyio.current_time()):
                try:
                    data = await self.stream.receive()
                except anyio.EndOfStream:
                    data = b""  # the broker closed the socket
                self.pending += self.conn.receive_data(data)
        return self.pending.pop(0)

    async def expect(self, kind: type[events.AnyEvent]) -> events.AnyEvent:
        event = await self.next_event()
        if not isinstance(event, kind):  # a 404, a lost connection...: never ignored
            raise RuntimeError(f"expected {kind.__name__}, got {event}")
        return event


async def publish(host: str, port: int, queue: str, bodies: list[bytes]) -> int:
    """Publish ``bodies`` to ``queue``; the number the broker acked (it may nack some)."""
    async with await anyio.connect_tcp(host, port) as stream:
        client = Client(stream)
        conn = client.conn
        await client.expect(events.ConnectionOpened)
        channel = conn.open_channel()
        await client.expect(events.ChannelOpened)
        conn.send_method(channel, spec.Confirm.Select())
        await client.expect(events.MethodReceived)  # select-ok
        conn.send_method(channel, spec.Queue.Declare(queue=queue, durable=True))
        await client.expect(events.MethodReceived)  # declare-ok
        properties = spec.BasicProperties(content_type="text/plain", delivery_mode=2)
        for body in bodies:
            conn.send_message(channel, spec.Basic.Publish(routing_key=queue), properties, body)
        acked = 0
        while conn.unconfirmed(channel):
            confirmed = await client.expect(events.Confirmed)
            assert isinstance(confirmed, events.Confirmed)
            acked += len(confirmed.delivery_tags) if confirmed.ack else 0
        conn.close()
        await client.expect(events.ConnectionClosed)
        return acked


if __name__ == "__main__":
    backend = sys.argv[1] if len(sys.argv) > 1 else "asyncio"
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 5672
    bodies = [b"message %d" % i for i in range(100)]
    acked = anyio.run(publish, host, port, "amqpcodec-example", bodies, backend=backend)
    print(f"{acked} of {len(bodies)} acked")
