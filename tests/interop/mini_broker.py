"""A minimal in-memory AMQP broker built on the server role, for tests with real clients.

One thread runs a ``selectors`` loop over a localhost listener and its connections. Each
socket has a ``Connection(Role.SERVER)``; the broker only reacts to events: the
handshake, channels, flow and close handshakes are the Connection's. It knows the default
exchange, queues, publish (with mandatory returns and publisher confirms), get,
consume/deliver, ack/nack/reject, qos, cancel, tx and recover, enough for pika's
BlockingConnection and py-amqp.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from amqpcodec import (
    ChannelState,
    Connection,
    ConnectionState,
    FrameDecoder,
    Properties,
    RemoteProtocolError,
    Role,
    spec,
)
from amqpcodec.events import (
    ChannelClosed,
    ConnectionClosed,
    Event,
    MessageReceived,
    MethodReceived,
)

B, Q, E = spec.Basic, spec.Queue, spec.Exchange


@dataclass
class Stored:
    exchange: str
    routing_key: str
    properties: Properties
    body: bytes
    redelivered: bool = False


@dataclass
class Session:
    sock: socket.socket
    conn: Connection
    next_tag: dict[int, itertools.count[int]] = field(default_factory=dict)
    unacked: dict[tuple[int, int], tuple[str, Stored]] = field(default_factory=dict)
    done: bool = False
    received_frames: int = 0


@dataclass
class Consumer:
    session: Session
    channel: int
    tag: str
    no_ack: bool


class MiniBroker:
    def __init__(self, **settings: Any) -> None:
        self.settings = {"frame_max": 4096, "heartbeat": 60, **settings}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.queues: dict[str, deque[Stored]] = {}
        self.consumers: dict[str, deque[Consumer]] = {}
        self.sessions: list[Session] = []
        self.errors: list[BaseException] = []
        self.events: list[Event] = []  # everything every connection reported, for tests
        self.decoders: dict[int, FrameDecoder] = {}
        self.largest_frame_sent = 0
        self.refusals = 0
        self._names = itertools.count(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MiniBroker:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()
        for session in self.sessions:
            session.sock.close()
        if self.errors and kind is None:
            raise self.errors[0]

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for key, _ in self.selector.select(0.05):
                    if key.fileobj is self.listener:
                        self._accept()
                    else:
                        self._read(key.data)
                now = time.monotonic()
                for session in list(self.sessions):
                    if not session.done:
                        self._handle(session, session.conn.tick(now))
                    self._flush(session)
        except BaseException as exc:  # surfaced to the test by __exit__
            self.errors.append(exc)

    def _accept(self) -> None:
        sock, _ = self.listener.accept()
        sock.setblocking(True)
        sock.settimeout(5)
        session = Session(sock, Connection(Role.SERVER, **self.settings))
        self.sessions.append(session)
        self.decoders[id(session)] = FrameDecoder(0)
        self.selector.register(sock, selectors.EVENT_READ, session)

    def _read(self, session: Session) -> None:
        try:
            data = session.sock.recv(1 << 16)
        except OSError:
            data = b""
        try:
            events = session.conn.receive_data(data)
        except RemoteProtocolError:
            # The Connection queued the Close it calls for (if any): send it and hang up.
            self._flush(session)
            self._drop(session)
            return
        self._handle(session, events)
        if not data:
            self._drop(session)

    def _flush(self, session: Session) -> None:
        data = session.conn.data_to_send()
        if data and not session.done:
            self.refusals += data.count(b"ACCESS_REFUSED")
            # What we send must decode, frame by frame, within the negotiated frame_max.
            decoder = self.decoders[id(session)]
            decoder.max_frame_size = session.conn.frame_max
            for frame in decoder.feed(data):
                self.largest_frame_sent = max(self.largest_frame_sent, len(frame.encode()))
            session.sock.sendall(data)
        if session.conn.state is ConnectionState.CLOSED and not session.done:
            self._drop(session)

    def _drop(self, session: Session) -> None:
        if session.done:
            return
        session.done = True
        self.selector.unregister(session.sock)
        session.sock.close()
        for (_, _), (queue, message) in session.unacked.items():
            message.redelivered = True
            self.queues.setdefault(queue, deque()).appendleft(message)
        session.unacked.clear()
        for consumers in self.consumers.values():
            for consumer in [c for c in consumers if c.session is session]:
                consumers.remove(consumer)

    # -- events ------------------------------------------------------------------------

    def _handle(self, session: Session, events: list[Event]) -> None:
        self.events += events
        for event in events:
            if isinstance(event, MethodReceived):
                self._method(session, event.channel, event.method)
            elif isinstance(event, MessageReceived):
                self._publish(session, event)
            elif isinstance(event, ChannelClosed):
                self._channel_gone(session, event.channel)
            elif isinstance(event, ConnectionClosed):
                self._flush(session)
                self._drop(session)
        self._dispatch()

    def _channel_gone(self, session: Session, channel: int) -> None:
        for key in [k for k in session.unacked if k[0] == channel]:
            queue, message = session.unacked.pop(key)
            message.redelivered = True
            self.queues[queue].appendleft(message)
        for consumers in self.consumers.values():
            for consumer in [c for c in consumers if c.session is session and c.channel == channel]:
                consumers.remove(consumer)
        session.next_tag.pop(channel, None)

    def _reply(self, session: Session, channel: int, request: Any, reply: Any) -> None:
        if not getattr(request, "no_wait", False) and not getattr(request, "nowait", False):
            session.conn.send_method(channel, reply)

    def _method(self, session: Session, channel: int, method: Any) -> None:
        conn = session.conn
        if channel and conn.channel_state(channel) is not ChannelState.OPEN:
            return  # closed later in the same read (see _publish): nothing may answer it
        if isinstance(method, Q.Declare):
            name = method.queue or f"amq.gen-{next(self._names)}"
            if name not in self.queues:
                if method.passive:
                    conn.close_channel(channel, 404, f"NOT_FOUND - no queue '{name}'", 50, 10)
                    return
                self.queues[name] = deque()
            consumers = len(self.consumers.get(name, ()))
            self._reply(
                session, channel, method, Q.DeclareOk(name, len(self.queues[name]), consumers)
            )
        elif isinstance(method, Q.Bind):
            self._reply(session, channel, method, Q.BindOk())
        elif isinstance(method, Q.Unbind):
            conn.send_method(channel, Q.UnbindOk())
        elif isinstance(method, Q.Purge):
            count = len(self.queues.get(method.queue, ()))
            self.queues.get(method.queue, deque()).clear()
            self._reply(session, channel, method, Q.PurgeOk(count))
        elif isinstance(method, Q.Delete):
            count = len(self.queues.pop(method.queue, ()))
            self._reply(session, channel, method, Q.DeleteOk(count))
        elif isinstance(method, E.Declare):
            self._reply(session, channel, method, E.DeclareOk())
        elif isinstance(method, E.Delete):
            self._reply(session, channel, method, E.DeleteOk())
        elif isinstance(method, B.Qos):
            conn.send_method(channel, B.QosOk())
        elif isinstance(method, B.Consume):
            tag = method.consumer_tag or f"amq.ctag-{next(self._names)}"
            self.consumers.setdefault(method.queue, deque()).append(
                Consumer(session, channel, tag, method.no_ack)
            )
            self._reply(session, channel, method, B.ConsumeOk(tag))
        elif isinstance(method, B.Cancel):
            for consumers in self.consumers.values():
                for consumer in [c for c in consumers if c.tag == method.consumer_tag]:
                    consumers.remove(consumer)
            self._reply(session, channel, method, B.CancelOk(method.consumer_tag))
        elif isinstance(method, B.Get):
            queue = self.queues.get(method.queue)
            if not queue:
                conn.send_method(channel, B.GetEmpty())
                return
            message = queue.popleft()
            tag = self._tag(session, channel)
            get_ok = B.GetOk(
                tag, message.redelivered, message.exchange, message.routing_key, len(queue)
            )
            conn.send_message(channel, get_ok, message.properties, message.body)
            if not method.no_ack:
                session.unacked[channel, tag] = (method.queue, message)
        elif isinstance(method, (B.Ack, B.Nack, B.Reject)):
            multiple = getattr(method, "multiple", False)
            requeue = not isinstance(method, B.Ack) and method.requeue
            tags = [
                key
                for key in session.unacked
                if key[0] == channel
                and (key[1] == method.delivery_tag or (multiple and key[1] <= method.delivery_tag))
            ]
            for key in tags:
                queue, message = session.unacked.pop(key)
                if requeue:
                    message.redelivered = True
                    self.queues[queue].appendleft(message)
        elif isinstance(method, (B.Recover,)):
            conn.send_method(channel, B.RecoverOk())
        elif isinstance(method, spec.Confirm.Select):
            self._reply(session, channel, method, spec.Confirm.SelectOk())
        elif isinstance(method, spec.Tx.Select):
            conn.send_method(channel, spec.Tx.SelectOk())
        elif isinstance(method, spec.Tx.Commit):
            conn.send_method(channel, spec.Tx.CommitOk())
        elif isinstance(method, spec.Tx.Rollback):
            conn.send_method(channel, spec.Tx.RollbackOk())
        else:
            conn.close_channel(
                channel, 540, f"NOT_IMPLEMENTED - {method.NAME}", method.CLASS_ID, method.METHOD_ID
            )

    def _tag(self, session: Session, channel: int) -> int:
        return next(session.next_tag.setdefault(channel, itertools.count(1)))

    def _publish(self, session: Session, event: MessageReceived) -> None:
        method = event.method
        assert isinstance(method, B.Publish)
        queue = self.queues.get(method.routing_key) if method.exchange == "" else None
        # Events come a read at a time: a Channel.Close that arrived in the same read as
        # this publish has already been answered, and nothing more may go on the channel.
        still_open = session.conn.channel_state(event.channel) is ChannelState.OPEN
        if queue is None:
            if method.mandatory and still_open:
                returned = B.Return(312, "NO_ROUTE", method.exchange, method.routing_key)
                session.conn.send_message(event.channel, returned, event.properties, event.body)
        else:
            queue.append(Stored(method.exchange, method.routing_key, event.properties, event.body))
        if event.confirm_tag is not None and still_open:
            session.conn.send_method(event.channel, B.Ack(event.confirm_tag))

    def _dispatch(self) -> None:
        for name, consumers in self.consumers.items():
            queue = self.queues.get(name)
            while queue and consumers:
                consumer = consumers[0]
                consumers.rotate(-1)
                message = queue.popleft()
                session = consumer.session
                tag = self._tag(session, consumer.channel)
                deliver = B.Deliver(
                    consumer.tag, tag, message.redelivered, message.exchange, message.routing_key
                )
                session.conn.send_message(
                    consumer.channel, deliver, message.properties, message.body
                )
                if not consumer.no_ack:
                    session.unacked[consumer.channel, tag] = (name, message)
