"""A small AMQP server on asyncio: queues on the default exchange, publisher confirms,
Basic.Get, consumers with acks and prefetch; enough to serve pika or any client that keeps
to those. Every event is handled; a method it does not implement closes the channel with
540 NOT_IMPLEMENTED. (For a fuller test double of RabbitMQ see ``amqpcodec serve``.)

    python examples/asyncio_server.py [PORT]
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections import deque
from dataclasses import dataclass, field

from amqpcodec import (
    AMQPError,
    ChannelState,
    Connection,
    ConnectionState,
    Method,
    Role,
    events,
    spec,
)

B, Q = spec.Basic, spec.Queue
Message = tuple[spec.BasicProperties, bytes]


@dataclass(eq=False)
class Consumer:
    session: Session
    channel: int
    tag: str
    prefetch: int  # 0: no limit
    unacked: set[int] = field(default_factory=set)

    def has_room(self) -> bool:
        open_ = self.session.conn.can_publish(self.channel)  # open, flow on
        return open_ and (not self.prefetch or len(self.unacked) < self.prefetch)


class Server:
    """The queues, shared by every connection."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[Message]] = {}
        self.consumers: dict[str, list[Consumer]] = {}
        self.names = itertools.count(1)

    def dispatch(self) -> None:
        """Hand queued messages to consumers with room, in turn."""
        for queue, messages in self.queues.items():
            while messages and (
                ready := [c for c in self.consumers.get(queue, []) if c.has_room()]
            ):
                for consumer in ready[: len(messages)]:
                    consumer.session.deliver(consumer, queue, *messages.popleft())

    def remove(self, consumer: Consumer) -> None:
        for consumers in self.consumers.values():
            if consumer in consumers:
                consumers.remove(consumer)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await Session(self, writer).run(reader)


class Session:
    """One connection: bytes in, events handled, bytes out."""

    def __init__(self, server: Server, writer: asyncio.StreamWriter) -> None:
        self.server, self.writer = server, writer
        self.conn = Connection(Role.SERVER)
        self.prefetch: dict[int, int] = {}
        self.consumers: dict[tuple[int, str], Consumer] = {}
        self.delivery_tags = itertools.count(1)

    def deliver(
        self, consumer: Consumer, queue: str, properties: spec.BasicProperties, body: bytes
    ) -> None:
        tag = next(self.delivery_tags)
        consumer.unacked.add(tag)
        self.conn.send_message(
            consumer.channel, B.Deliver(consumer.tag, tag, False, "", queue), properties, body
        )

    def handle(self, event: events.AnyEvent) -> None:
        conn = self.conn
        match event:
            case (
                events.MethodReceived(channel=channel) | events.MessageReceived(channel=channel)
            ) if conn.channel_state(channel) is not ChannelState.OPEN:
                pass  # the channel closed later in the same read: nothing may answer
            case events.MethodReceived(channel=channel, method=method):
                self.method(channel, method)
            case events.MessageReceived(
                channel=channel, method=B.Publish(exchange="", routing_key=name)
            ) if name in self.server.queues:
                self.server.queues[name].append((event.properties, event.body))
                if event.confirm_tag is not None:  # the channel is in confirm mode
                    conn.send_method(channel, B.Ack(event.confirm_tag))
            case events.MessageReceived(channel=channel, method=method):
                conn.close_channel(
                    channel, 404, "NOT_FOUND - no such queue", method.CLASS_ID, method.METHOD_ID
                )
            case events.ChannelClosed(channel=channel):
                self.forget(channel)
            case events.ConnectionClosed():
                self.forget(None)
            case (
                events.ProtocolHeaderReceived()
                | events.ConnectionOpened()
                | events.ChannelOpened()
                | events.FlowChanged()  # can_publish() follows it
                | events.HeartbeatTimeout()  # a ConnectionClosed follows
                | events.ConnectionBlocked()  # these three a client never sends:
                | events.ConnectionUnblocked()  # the Connection refuses them first
                | events.Confirmed()
            ):
                pass

    def method(self, channel: int, method: Method) -> None:
        conn, server = self.conn, self.server
        match method:
            case Q.Declare(queue=name, no_wait=no_wait):
                name = name or f"amq.gen-{next(server.names)}"
                messages = server.queues.setdefault(name, deque())
                if not no_wait:
                    conn.send_method(channel, Q.DeclareOk(name, len(messages), 0))
            case B.Qos(prefetch_count=count):
                self.prefetch[channel] = count
                conn.send_method(channel, B.QosOk())
            case spec.Confirm.Select(nowait=nowait):
                if not nowait:
                    conn.send_method(channel, spec.Confirm.SelectOk())
            case B.Consume(queue=queue, consumer_tag=tag, no_wait=no_wait) if (
                queue in server.queues
            ):
                tag = tag or f"ctag-{next(server.names)}"
                consumer = Consumer(self, channel, tag, self.prefetch.get(channel, 0))
                self.consumers[channel, tag] = consumer
                server.consumers.setdefault(queue, []).append(consumer)
                if not no_wait:
                    conn.send_method(channel, B.ConsumeOk(tag))
            case B.Get(queue=queue) if queue in server.queues:
                messages = server.queues[queue]
                if not messages:
                    conn.send_method(channel, B.GetEmpty())
                    return
                properties, body = messages.popleft()
                get_ok = B.GetOk(next(self.delivery_tags), False, "", queue, len(messages))
                conn.send_message(channel, get_ok, properties, body)
            case B.Consume() | B.Get():
                conn.close_channel(
                    channel, 404, "NOT_FOUND - no such queue", method.CLASS_ID, method.METHOD_ID
                )
            case B.Ack(delivery_tag=tag, multiple=multiple):
                for consumer in self.consumers.values():
                    if consumer.channel == channel:
                        if not multiple:
                            consumer.unacked.discard(tag)
                        else:  # every tag up to this one; 0 is all
                            consumer.unacked = {t for t in consumer.unacked if tag and t > tag}
            case B.Cancel(consumer_tag=tag, no_wait=no_wait):
                cancelled = self.consumers.pop((channel, tag), None)
                if cancelled is not None:
                    server.remove(cancelled)
                if not no_wait:
                    conn.send_method(channel, B.CancelOk(tag))
            case _:
                text = f"NOT_IMPLEMENTED - {method.NAME}"
                conn.close_channel(channel, 540, text, method.CLASS_ID, method.METHOD_ID)

    def forget(self, channel: int | None) -> None:
        """A closed channel's consumers go (``None``: every channel's); unacked messages are
        dropped, not redelivered, in a server this small."""
        for key in [k for k in self.consumers if channel is None or k[0] == channel]:
            self.server.remove(self.consumers.pop(key))

    async def run(self, reader: asyncio.StreamReader) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.conn.state is not ConnectionState.CLOSED:
                at = self.conn.next_tick_at
                try:
                    data = await asyncio.wait_for(
                        reader.read(65536), None if at is None else max(at - loop.time(), 0)
                    )
                    got = self.conn.receive_data(data)
                except asyncio.TimeoutError:
                    got = []  # time to tick
                for event in got + self.conn.tick(loop.time()):
                    self.handle(event)
                self.server.dispatch()
                while parts := self.conn.data_to_send_parts(max_parts=1024):
                    self.writer.writelines(parts)
                await self.writer.drain()
        except AMQPError as exc:  # the client broke the protocol: send the Close queued for it
            self.writer.write(self.conn.data_to_send())
            print(f"connection failed: {exc}", file=sys.stderr)
        except ConnectionError:
            pass
        finally:
            self.forget(None)
            self.writer.close()


async def main(port: int = 5672, started: asyncio.Future[int] | None = None) -> None:
    server = Server()
    listener = await asyncio.start_server(server.serve, "127.0.0.1", port)
    if started is not None:
        started.set_result(listener.sockets[0].getsockname()[1])
    async with listener:
        await listener.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5672))
