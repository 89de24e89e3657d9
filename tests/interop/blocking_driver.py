"""A small blocking-socket driver around the client role, for tests against RabbitMQ.

It keeps every byte it sends running through a FrameDecoder limited to the frame_max in
force, so a test fails if the Connection ever put a frame on the wire that was larger
than negotiated.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from amqpcodec import Connection, FrameDecoder, Method, Role
from amqpcodec._frames import Frame
from amqpcodec.events import ConnectionClosed, ConnectionOpened, Event, MethodReceived

E = TypeVar("E", bound=Event)


class Driver:
    def __init__(
        self, address: tuple[str, int], timeout: float = 10.0, *, wait: bool = True, **settings: Any
    ) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.conn = Connection(Role.CLIENT, **settings)
        self.pending: deque[Event] = deque()
        self.sent = FrameDecoder(max_frame_size=self.conn.frame_max)
        self.sent_frames: list[Frame] = []
        self.sent_sizes: list[int] = []
        self.eof = False
        if wait:
            self.opened = self.expect(ConnectionOpened)

    def flush(self) -> None:
        parts = self.conn.data_to_send_parts()
        if not parts:
            return
        data = b"".join(parts)
        # Decode what we send, limited to the frame_max in force.
        self.sent.max_frame_size = self.conn.frame_max
        frames = self.sent.feed(data)
        self.sent_frames += frames
        self.sent_sizes += [len(f.encode()) for f in frames]
        self.sock.sendall(data)

    def read(self) -> None:
        self.flush()
        try:
            data = b"" if self.eof else self.sock.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        self.eof = not data
        self.pending += self.conn.receive_data(data)
        self.flush()

    def next_event(self) -> Event:
        while not self.pending:
            if self.eof:
                raise EOFError("the broker closed the socket")
            self.read()
        return self.pending.popleft()

    def next_event_or_eof(self) -> Event | None:
        try:
            return self.next_event()
        except EOFError:
            return None

    def expect(self, kind: type[E], where: Callable[[E], bool] = lambda e: True) -> E:
        """The next event of ``kind`` that matches; other events are kept for later."""
        skipped: list[Event] = []
        try:
            while True:
                event = self.next_event()
                if isinstance(event, kind) and where(event):
                    return event
                if isinstance(event, ConnectionClosed):
                    raise AssertionError(f"connection closed while waiting for {kind}: {event}")
                skipped.append(event)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {kind}; had {skipped}") from None
        finally:
            self.pending.extendleft(reversed(skipped))

    def call(self, channel: int, method: Method) -> Method:
        """Send a synchronous method and return its reply."""
        self.conn.send_method(channel, method)
        reply = self.expect(
            MethodReceived,
            lambda e: e.channel == channel and type(e.method) in method.RESPONSES,
        )
        return reply.method

    def open_channel(self) -> int:
        from amqpcodec.events import ChannelOpened

        channel = self.conn.open_channel()
        self.expect(ChannelOpened, lambda e: e.channel == channel)
        return channel

    def close(self) -> ConnectionClosed:
        self.conn.close()
        closed = self.expect(ConnectionClosed)
        self.flush()
        self.sock.close()
        return closed
