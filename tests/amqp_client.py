"""A small blocking AMQP client on amqpcodec's client role, for the broker and proxy tests.

It keeps every event the Connection reports in order; ``wait`` takes out the first one
that matches and leaves the others, so a test can ask for replies in any order.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from typing import Any

from amqpcodec import Connection, ConnectionState, Method, Properties, Role, spec
from amqpcodec.events import (
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    MessageReceived,
    MethodReceived,
)

TIMEOUT = 10.0


class Closed(Exception):
    """The socket ended while waiting."""


class Client:
    def __init__(self, port: int, host: str = "127.0.0.1", *, open: bool = True, **settings: Any):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.conn = Connection(Role.CLIENT, **settings)
        self.events: list[Event] = []
        self.eof = False
        self.flush()
        if open:
            self.opened = self.wait(ConnectionOpened)

    # -- plumbing -------------------------------------------------------------------

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def read(self) -> None:
        """One read from the socket into events (raises Closed at end of file)."""
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            self.events += self.conn.receive_data(b"")
            raise Closed("the server closed the socket")
        self.events += self.conn.receive_data(data)
        self.flush()

    def wait(self, match: type[Event] | Callable[[Event], bool]) -> Any:
        test = match if not isinstance(match, type) else (lambda e: isinstance(e, match))
        while True:
            for index, event in enumerate(self.events):
                if test(event):
                    return self.events.pop(index)
            self.read()

    def until_closed(self) -> None:
        """Read until the server closes the socket."""
        try:
            while True:
                self.read()
        except Closed:
            pass

    def close(self) -> None:
        if self.conn.state is ConnectionState.OPEN:
            self.conn.close()
            self.flush()
            with contextlib.suppress(Closed):
                self.wait(ConnectionClosed)
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- AMQP -----------------------------------------------------------------------

    def channel(self) -> int:
        number = self.conn.open_channel()
        self.flush()
        self.wait(lambda e: isinstance(e, ChannelOpened) and e.channel == number)
        return number

    def send(self, channel: int, method: Method) -> None:
        self.conn.send_method(channel, method)
        self.flush()

    def call(self, channel: int, method: Method) -> Any:
        """Send a request; its reply method, or the ChannelClosed / ConnectionClosed that
        answered it instead."""
        self.send(channel, method)
        responses = tuple(method.RESPONSES)
        return self.reply(channel, responses)

    def reply(self, channel: int, responses: tuple[type[Method], ...]) -> Any:
        event = self.wait(
            lambda e: (
                (
                    isinstance(e, (MethodReceived, MessageReceived))
                    and e.channel == channel
                    and isinstance(e.method, responses)
                )
                or (isinstance(e, ChannelClosed) and e.channel == channel)
                or isinstance(e, ConnectionClosed)
            )
        )
        if isinstance(event, (MethodReceived, MessageReceived)):
            return event.method if isinstance(event, MethodReceived) else event
        return event

    def publish(
        self,
        channel: int,
        exchange: str,
        routing_key: str,
        body: bytes = b"",
        properties: Properties | None = None,
        **flags: bool,
    ) -> int | None:
        publish = spec.Basic.Publish(exchange=exchange, routing_key=routing_key, **flags)
        tag = self.conn.send_message(channel, publish, properties or spec.BasicProperties(), body)
        self.flush()
        return tag

    def declare(self, channel: int, queue: str = "", **options: Any) -> str:
        ok = self.call(channel, spec.Queue.Declare(queue=queue, **options))
        assert isinstance(ok, spec.Queue.DeclareOk), ok
        return ok.queue

    def get(self, channel: int, queue: str, no_ack: bool = True) -> MessageReceived | None:
        """A message from Basic.Get, or None for Get-Empty."""
        reply = self.call(channel, spec.Basic.Get(queue=queue, no_ack=no_ack))
        if isinstance(reply, MessageReceived):
            return reply
        assert isinstance(reply, spec.Basic.GetEmpty), reply
        return None

    def delivery(self, channel: int) -> MessageReceived:
        return self.wait(
            lambda e: (
                isinstance(e, MessageReceived)
                and e.channel == channel
                and isinstance(e.method, spec.Basic.Deliver)
            )
        )

    def closed(self, channel: int | None = None) -> ChannelClosed | ConnectionClosed:
        if channel is None:
            return self.wait(ConnectionClosed)
        return self.wait(
            lambda e: (
                (isinstance(e, ChannelClosed) and e.channel == channel)
                or isinstance(e, ConnectionClosed)
            )
        )
