"""One client connection of the in-memory broker: bytes in, the Connection's events,
the AMQ model, bytes out.

How this works: :class:`Session` is an asyncio protocol. What the socket delivers goes
to a ``Connection(Role.SERVER)``, which does the handshake, channel bookkeeping, frame
and content rules, heartbeats and every connection-level check; the session acts on
the events that come out (methods and messages) by calling the model in
:mod:`._model`, and answers with methods. A method the model refuses closes the channel
(or, for a 5xx code, the connection) with RabbitMQ's reply code for the same mistake.

The Connection is given one frame at a time, and each frame's events are acted on
before the next frame is read, as RabbitMQ's channel processes do: a refusal goes out
before the Close-Ok of a Channel.Close that followed the refused method in the same
read, and a protocol error later in a read does not undo what came before it.
Deliveries are made after each frame's events, so a reply (Consume-Ok) goes before the
first Basic.Deliver it allows. Output is bounded: while a client does not read what it
is sent (the transport's write buffer is over its high-water mark), nothing more is
delivered to it and its input is not read.

A bug in this code never escapes into asyncio: the connection is closed with 541
INTERNAL_ERROR, as RabbitMQ does, and the exception kept in ``Broker.internal_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .. import spec
from .._base import Method, Properties
from .._connection import Connection
from .._errors import AMQPError
from .._events import (
    ChannelClosed,
    ChannelOpened,
    ConnectionClosed,
    ConnectionOpened,
    Event,
    FlowChanged,
    MessageReceived,
    MethodReceived,
)
from .._state import ChannelState, ConnectionState
from ._model import Consumer, Entry, Exchange, Message, Queue, Refused, VirtualHost, generated_name

if TYPE_CHECKING:
    from ._server import Broker

__all__ = ["Channel", "Session"]

B, E, Q, Tx = spec.Basic, spec.Exchange, spec.Queue, spec.Tx
_OPEN: Final = ChannelState.OPEN
_CS_OPEN: Final = ConnectionState.OPEN
_MIN_TICK: Final = 0.05  # seconds: never tick more often than this
_CLOSE_GRACE: Final = 1.0  # seconds a failed connection is kept to let its Close be read


@dataclass(slots=True, eq=False)
class _Delivered:
    queue: Queue
    entry: Entry
    consumer: Consumer | None


@dataclass(slots=True, eq=False)
class Channel:
    """The broker's side of one open channel."""

    number: int
    session: Session
    closed: bool = False
    """Closed (by either side): nothing more is sent or delivered on it."""
    consumers: dict[str, Consumer] = field(default_factory=dict)
    unacked: dict[int, _Delivered] = field(default_factory=dict)
    next_tag: int = 1
    prefetch: int = 0
    """Prefetch for consumers created from now on (Basic.Qos global=false)."""
    global_prefetch: int = 0
    """Unacknowledged deliveries on the whole channel (Basic.Qos global=true)."""
    confirming: bool = False
    transactional: bool = False
    tx_publishes: list[tuple[Exchange, Message, bool]] = field(default_factory=list)
    tx_settles: list[Method] = field(default_factory=list)
    last_queue: str = ""

    def can_deliver(self, consumer: Consumer) -> bool:
        session = self.session
        # The Connection may have closed the channel itself (a body over its limit).
        if self.closed or not session.writable or not session.can_send(self.number):
            return False
        if consumer.no_ack:
            return True
        if consumer.prefetch and consumer.unacked >= consumer.prefetch:
            return False
        return not (self.global_prefetch and len(self.unacked) >= self.global_prefetch)


class Session(asyncio.Protocol):
    """One client connection: its Connection, its channels, its exclusive queues."""

    def __init__(self, broker: Broker) -> None:
        self.broker: Broker = broker
        self.conn: Connection = broker.new_connection()
        self.channels: dict[int, Channel] = {}
        self.vhost: VirtualHost | None = None
        self.transport: asyncio.Transport | None = None
        self.congested: bool = False
        self.closed: bool = False
        self.failed: bool = False
        self.refused: bool = False
        """The broker closed the connection over a method: ignore what followed it."""
        self._timer: asyncio.TimerHandle | None = None
        self._dirty: set[Queue] = set()
        self._head = bytearray()  # the start of the frame being read, up to 7 bytes
        self._left = 0  # bytes of that frame after its first 7

    # -- asyncio protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=self.broker.write_buffer)
        if not self.broker.admit(self):
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        # A client that does not finish the handshake in time is let go [RabbitMQ
        # handshake_timeout], so a silent socket cannot hold a connection slot forever.
        self._timer = loop.call_later(self.broker.handshake_timeout, self._handshake_timeout)

    def data_received(self, data: bytes) -> None:
        # One frame at a time, so that each method is answered before the next is read,
        # as RabbitMQ does: a refusal goes out before a Channel.Close that followed the
        # refused method in the same read, and an error later in a read does not stop
        # what came before it from being carried out.
        for piece in self._frames(data):
            if self.closed or self.failed:
                break  # the socket is ending
            try:
                events = self.conn.receive_data(piece)
            except AMQPError as exc:
                # The peer broke a protocol rule: the Connection queued the Close for it
                # (once open); carry out what came before, send, and hang up.
                self._handle(getattr(exc, "events", None) or [])
                self._fail()
                return
            self._handle(events)
        self.flush()

    def _frames(self, data: bytes) -> Iterator[memoryview]:
        """``data`` cut where frames end (the protocol header counts as one); the last
        piece may end inside a frame, which the Connection then holds."""
        view = memoryview(data)
        size = len(view)
        start = pos = 0
        head = self._head
        while pos < size:
            if len(head) < 7:
                take = min(7 - len(head), size - pos)
                head += view[pos : pos + take]
                pos += take
                if len(head) < 7:
                    break
                self._left = 1 if head[:4] == b"AMQP" else int.from_bytes(head[3:7], "big") + 1
            take = min(self._left, size - pos)
            pos += take
            self._left -= take
            if not self._left:
                head.clear()
                yield view[start:pos]
                start = pos
        if start < size:
            yield view[start:]

    def eof_received(self) -> bool | None:
        if not self.closed:
            self._handle(self.conn.receive_data(b""))
            self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def pause_writing(self) -> None:
        self.congested = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.congested = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()
        for channel in self.channels.values():
            self._dirty.update(c.queue for c in channel.consumers.values())
        self.broker.dispatch(self._take_dirty())

    @property
    def writable(self) -> bool:
        """The socket is open and keeping up with what it is sent."""
        transport = self.transport
        return not self.congested and transport is not None and not transport.is_closing()

    # -- timers ---------------------------------------------------------------------

    def _handshake_timeout(self) -> None:
        if self.conn.state is not ConnectionState.OPEN and self.transport is not None:
            self.transport.abort()

    def _tick(self) -> None:
        self._handle(self.conn.tick(asyncio.get_running_loop().time()))
        self.flush()
        self._schedule_tick()

    def _schedule_tick(self) -> None:
        """Tick when the Connection next has a heartbeat to send or a silence to judge."""
        at = self.conn.next_tick_at
        if at is None or self.closed:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(max(at, loop.time() + _MIN_TICK), self._tick)

    # -- output ---------------------------------------------------------------------

    def flush(self) -> None:
        """Write what the Connection queued; end the socket once the connection is over."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        data = self.conn.data_to_send()
        if data:
            transport.write(data)
        if self.conn.state is ConnectionState.CLOSED and not self.failed:
            self.closed = True
            transport.close()

    def _fail(self) -> None:
        """After a protocol error: send the Close and give the client a moment to read it
        (its further bytes are ignored), then close the socket."""
        self.failed = True
        self._teardown()
        self.flush()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            if transport.can_write_eof():
                transport.write_eof()
            asyncio.get_running_loop().call_later(_CLOSE_GRACE, transport.close)

    def _finish(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self._teardown()
        self.broker.forget(self)

    def shut_down(self, reply_code: int, reply_text: str) -> None:
        """The broker is stopping: Connection.Close (320); during the handshake, where
        there is no Close, the socket just ends."""
        self.conn.close(reply_code, reply_text)
        self._teardown()
        self.flush()

    # -- sending, guarded -----------------------------------------------------------

    def can_send(self, number: int) -> bool:
        """The connection and the channel are open (the client did not close them in
        the read being handled, nor the broker over an error)."""
        conn = self.conn
        return conn.state is _CS_OPEN and conn.channel_state(number) is _OPEN

    def _send(self, channel: Channel, method: Method) -> None:
        """Send on a channel unless it closed meanwhile (in this read, or by an error)."""
        if not channel.closed and self.can_send(channel.number):
            self.conn.send_method(channel.number, method)

    def _reply(self, channel: Channel, request: Any, reply: Method) -> None:
        if not getattr(request, "no_wait", False) and not getattr(request, "nowait", False):
            self._send(channel, reply)

    def _send_message(
        self, channel: Channel, method: Method, properties: Properties, body: bytes
    ) -> bool:
        if channel.closed or not self.can_send(channel.number):
            return False
        self.conn.send_message(channel.number, method, properties, body)
        return True

    # -- events ---------------------------------------------------------------------

    def _handle(self, events: Sequence[Event]) -> None:
        for event in events:
            if self.refused and type(event) is not ConnectionClosed:
                continue  # the broker closed the connection: only its end matters
            try:
                self._event(event)
            except Exception as exc:  # a bug here: say so as RabbitMQ does (541), go on
                self._internal_error(event, exc)
        try:
            self.broker.dispatch(self._take_dirty())
        except Exception as exc:  # pragma: no cover - a bug in delivering
            self._internal_error(None, exc)

    def _event(self, event: Event) -> None:
        kind = type(event)
        if kind is MethodReceived or kind is MessageReceived:
            assert isinstance(event, (MethodReceived, MessageReceived))
            channel = self.channels.get(event.channel)
            if channel is None:
                if event.channel == 0:
                    self._connection_method(event.method)
                return  # a channel the broker closed earlier in this read
            try:
                if kind is MessageReceived:
                    assert isinstance(event, MessageReceived)
                    self._publish(channel, event)
                else:
                    self._method(channel, event.method)
            except Refused as refusal:
                self._refuse(channel, event.method, refusal)
        elif kind is ChannelOpened:
            assert isinstance(event, ChannelOpened)
            self.channels[event.channel] = Channel(event.channel, self)
        elif kind is ChannelClosed:
            assert isinstance(event, ChannelClosed)
            gone = self.channels.pop(event.channel, None)
            if gone is not None:
                self._close_channel(gone)
        elif kind is FlowChanged:
            assert isinstance(event, FlowChanged)
            flowing = self.channels.get(event.channel)
            if flowing is not None and not event.active:
                # RabbitMQ does not stop deliveries for a client [rmq-docs:
                # channel.flow]: 540, after the Flow-Ok the Connection already sent.
                stop = Refused(spec.NOT_IMPLEMENTED, "channel.flow active=false")
                self._refuse(flowing, spec.Channel.Flow(False), stop)
        elif kind is ConnectionOpened:
            assert isinstance(event, ConnectionOpened)
            self.vhost = self.broker.virtual_host(event.virtual_host)
            self._start_heartbeats()
        elif kind is ConnectionClosed:
            self._teardown()

    def _internal_error(self, event: Event | None, exc: Exception) -> None:
        self.broker.internal_error(exc)
        method = getattr(event, "method", None)
        class_id, method_id = (method.CLASS_ID, method.METHOD_ID) if method else (0, 0)
        what = type(event).__name__ if event is not None else "a delivery"
        text = f"INTERNAL_ERROR - {type(exc).__name__} handling {what}"
        self.refused = True
        with contextlib.suppress(Exception):
            self._teardown()
        with contextlib.suppress(AMQPError):
            self.conn.close(spec.INTERNAL_ERROR, text, class_id, method_id)

    def _take_dirty(self) -> set[Queue]:
        dirty, self._dirty = self._dirty, set()
        return dirty

    def _start_heartbeats(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._schedule_tick()

    def _refuse(self, channel: Channel, method: Method, refusal: Refused) -> None:
        class_id, method_id = method.CLASS_ID, method.METHOD_ID
        if refusal.hard:
            self.refused = True
            self._teardown()
            self.conn.close(refusal.reply_code, refusal.reply_text, class_id, method_id)
            return
        self.channels.pop(channel.number, None)
        self._close_channel(channel)
        if self.can_send(channel.number):
            self.conn.close_channel(
                channel.number, refusal.reply_code, refusal.reply_text, class_id, method_id
            )

    def _connection_method(self, method: Method) -> None:
        # The connection may have closed later in the same read.
        if isinstance(method, spec.Connection.UpdateSecret) and self.conn.state is _CS_OPEN:
            self.conn.send_method(0, spec.Connection.UpdateSecretOk())

    # -- teardown -------------------------------------------------------------------

    def _close_channel(self, channel: Channel) -> None:
        """The channel is gone: its consumers end, its unacknowledged messages go back."""
        channel.closed = True
        for consumer in list(channel.consumers.values()):
            self._remove_consumer(consumer)
        channel.consumers.clear()
        self._requeue(channel, list(channel.unacked.values()))
        channel.unacked.clear()
        vhost = self.vhost
        if vhost is not None:
            for _, message, _ in channel.tx_publishes:
                vhost.usage.held -= message.cost
        channel.tx_publishes.clear()

    def _teardown(self) -> None:
        """The connection is over (or about to be): close every channel, delete the
        exclusive queues it owns."""
        for channel in list(self.channels.values()):
            self._close_channel(channel)
        self.channels.clear()
        vhost = self.vhost
        if vhost is not None:
            for queue in vhost.all_queues():
                if queue.owner is self:
                    self._delete_queue(queue)
        self.broker.dispatch(self._take_dirty())

    def _remove_consumer(self, consumer: Consumer) -> None:
        queue = consumer.queue
        if consumer in queue.consumers:
            queue.consumers.remove(consumer)
        consumer.channel.consumers.pop(consumer.tag, None)
        if queue.auto_delete and queue.had_consumers and not queue.consumers:
            self._delete_queue(queue)

    def _delete_queue(self, queue: Queue, **conditions: bool) -> int:
        vhost = self.vhost
        assert vhost is not None
        count = vhost.delete_queue(queue, **conditions)
        for consumer in list(queue.consumers):
            queue.consumers.remove(consumer)
            channel: Channel = consumer.channel
            channel.consumers.pop(consumer.tag, None)
            channel.session._cancel_notify(channel, consumer.tag)
        return count

    def _cancel_notify(self, channel: Channel, tag: str) -> None:
        """The broker ends a consumer (its queue was deleted): Basic.Cancel if the client
        said it understands one [rmq-docs:consumer-cancel]."""
        capabilities = self.conn.peer_properties.get("capabilities")
        if isinstance(capabilities, Mapping) and capabilities.get("consumer_cancel_notify"):
            self._send(channel, B.Cancel(tag, True))
            self.flush()

    def _requeue(self, channel: Channel, delivered: list[_Delivered]) -> None:
        vhost = self.vhost
        assert vhost is not None or not delivered
        by_queue: dict[int, tuple[Queue, list[Entry]]] = {}
        for item in delivered:
            if item.consumer is not None:
                item.consumer.unacked -= 1
            by_queue.setdefault(id(item.queue), (item.queue, []))[1].append(item.entry)
        for queue, entries in by_queue.values():
            assert vhost is not None
            vhost.requeue(queue, entries)
            self._dirty.add(queue)

    # -- methods --------------------------------------------------------------------

    def _method(self, channel: Channel, method: Method) -> None:
        handler = _HANDLERS.get(type(method))
        if handler is not None:
            handler(self, channel, method)
        # Anything else that reaches here is a reply the Connection already matched.

    def _queue_name(self, channel: Channel, name: str) -> str:
        """An empty queue name means the channel's last declared queue [XML queue rule
        "default-queue"]."""
        if name:
            return name
        if not channel.last_queue:
            raise Refused(spec.NOT_FOUND, "no previously declared queue")
        return channel.last_queue

    def _model(self) -> VirtualHost:
        assert self.vhost is not None  # channels exist only once the connection is open
        return self.vhost

    def _exchange_declare(self, channel: Channel, method: Any) -> None:
        self._model().declare_exchange(
            method.exchange,
            method.type,
            passive=method.passive,
            durable=method.durable,
            auto_delete=method.auto_delete,
            internal=method.internal,
            arguments=method.arguments,
        )
        self._reply(channel, method, E.DeclareOk())

    def _exchange_delete(self, channel: Channel, method: Any) -> None:
        self._model().delete_exchange(method.exchange, method.if_unused)
        self._reply(channel, method, E.DeleteOk())

    def _exchange_bind(self, channel: Channel, method: Any) -> None:
        vhost = self._model()
        vhost.not_default(method.destination)
        vhost.not_default(method.source)
        if isinstance(method, E.Unbind):
            if method.source in vhost.exchanges and method.destination in vhost.exchanges:
                source, destination = (
                    vhost.exchanges[method.source],
                    vhost.exchanges[method.destination],
                )
                vhost.unbind(source, destination, method.routing_key, method.arguments)
            self._reply(channel, method, E.UnbindOk())  # unbinding what is missing succeeds
            return
        source = vhost.exchange(method.source)
        destination = vhost.exchange(method.destination)
        vhost.bind(source, destination, method.routing_key, method.arguments)
        self._reply(channel, method, E.BindOk())

    def _queue_declare(self, channel: Channel, method: Any) -> None:
        vhost = self._model()
        if method.queue or method.passive:  # a passive "" is no shortcut: 404 for ''
            queue = vhost.declare_queue(
                method.queue,
                self,
                passive=method.passive,
                durable=method.durable,
                exclusive=method.exclusive,
                auto_delete=method.auto_delete,
                arguments=method.arguments,
            )
        else:
            queue = vhost.add_queue(
                generated_name("amq.gen-"),
                self,
                durable=method.durable,
                exclusive=method.exclusive,
                auto_delete=method.auto_delete,
                arguments=method.arguments,
            )
        channel.last_queue = queue.name
        reply = Q.DeclareOk(queue.name, len(queue.ready), len(queue.consumers))
        self._reply(channel, method, reply)

    def _queue_bind(self, channel: Channel, method: Any) -> None:
        # RabbitMQ's order: the default exchange (403), the shortcut queue name (404),
        # the exchange (404), then the queue (404, 405).
        vhost = self._model()
        vhost.not_default(method.exchange)
        name = self._queue_name(channel, method.queue)
        if isinstance(method, Q.Unbind):
            exchange = vhost.exchanges.get(method.exchange)
            if exchange is not None and name in vhost.queues:
                queue = vhost.queue(name, self)
                vhost.unbind(exchange, queue, method.routing_key, method.arguments)
            self._send(channel, Q.UnbindOk())  # unbinding what is missing succeeds
            return
        exchange = vhost.exchange(method.exchange)
        queue = vhost.queue(name, self)
        # An empty routing key with the default queue binds by the queue's name.
        key = method.routing_key or ("" if method.queue else queue.name)
        vhost.bind(exchange, queue, key, method.arguments)
        self._reply(channel, method, Q.BindOk())

    def _queue_purge(self, channel: Channel, method: Any) -> None:
        vhost = self._model()
        queue = vhost.queue(self._queue_name(channel, method.queue), self)
        self._reply(channel, method, Q.PurgeOk(vhost.purge(queue)))

    def _queue_delete(self, channel: Channel, method: Any) -> None:
        vhost = self._model()
        name = self._queue_name(channel, method.queue)
        if name not in vhost.queues:
            self._reply(channel, method, Q.DeleteOk(0))  # as RabbitMQ: nothing to delete
            return
        queue = vhost.queue(name, self)
        count = self._delete_queue(queue, if_unused=method.if_unused, if_empty=method.if_empty)
        self._reply(channel, method, Q.DeleteOk(count))

    def _basic_qos(self, channel: Channel, method: Any) -> None:
        if method.prefetch_size:
            raise Refused(spec.NOT_IMPLEMENTED, f"prefetch_size!=0 ({method.prefetch_size})")
        if method.global_:
            channel.global_prefetch = method.prefetch_count
        else:
            channel.prefetch = method.prefetch_count
        for consumer in channel.consumers.values():
            self._dirty.add(consumer.queue)
        self._send(channel, B.QosOk())

    def _basic_consume(self, channel: Channel, method: Any) -> None:
        vhost = self._model()
        queue = vhost.queue(self._queue_name(channel, method.queue), self)
        tag = method.consumer_tag or generated_name("amq.ctag-")
        if tag in channel.consumers:
            raise Refused(spec.NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'")
        if queue.exclusive_consumer or (method.exclusive and queue.consumers):
            raise Refused(
                spec.ACCESS_REFUSED,
                f"queue '{queue.name}' in vhost '{vhost.name}' in exclusive use",
            )
        limit = self.broker.limits.max_consumers
        if len(channel.consumers) >= limit:
            raise Refused(
                spec.PRECONDITION_FAILED, f"the limit of {limit} consumers per channel is reached"
            )
        consumer = Consumer(
            tag, queue, channel, method.no_ack, method.exclusive, prefetch=channel.prefetch
        )
        channel.consumers[tag] = consumer
        queue.consumers.append(consumer)
        queue.had_consumers = True
        self._reply(channel, method, B.ConsumeOk(tag))
        self._dirty.add(queue)

    def _basic_cancel(self, channel: Channel, method: Any) -> None:
        consumer = channel.consumers.get(method.consumer_tag)
        self._reply(channel, method, B.CancelOk(method.consumer_tag))
        if consumer is not None:
            self._remove_consumer(consumer)

    def _basic_get(self, channel: Channel, method: Any) -> None:
        vhost = self._model()
        queue = vhost.queue(self._queue_name(channel, method.queue), self)
        if not self.can_send(channel.number):
            return  # the Get-Ok could not be sent: leave the message where it is
        if not queue.ready:
            self._send(channel, B.GetEmpty())
            return
        entry = queue.ready.popleft()
        message = entry.message
        tag = channel.next_tag
        channel.next_tag += 1
        get_ok = B.GetOk(
            tag, entry.redelivered, message.exchange, message.routing_key, len(queue.ready)
        )
        self.conn.send_message(channel.number, get_ok, message.properties, message.body)
        if method.no_ack:
            vhost.settle(entry)
        else:
            channel.unacked[tag] = _Delivered(queue, entry, None)

    def _settle(self, channel: Channel, method: Any) -> None:
        """Basic.Ack, Nack and Reject: acknowledge, or requeue or drop."""
        if channel.transactional:
            self._check_tags(channel, method)
            channel.tx_settles.append(method)
            return
        self._apply_settle(channel, method)

    def _check_tags(self, channel: Channel, method: Any) -> list[int]:
        tag = method.delivery_tag
        if getattr(method, "multiple", False):
            tags = [t for t in channel.unacked if t <= tag or tag == 0]
            if tags or tag == 0:
                return tags
        elif tag in channel.unacked:
            return [tag]
        raise Refused(spec.PRECONDITION_FAILED, f"unknown delivery tag {tag}")

    def _apply_settle(self, channel: Channel, method: Any) -> None:
        tags = self._check_tags(channel, method)
        delivered = [channel.unacked.pop(tag) for tag in tags]
        if isinstance(method, B.Ack) or not method.requeue:
            vhost = self._model()
            for item in delivered:
                if item.consumer is not None:
                    item.consumer.unacked -= 1
                    self._dirty.add(item.consumer.queue)
                vhost.settle(item.entry)
        else:
            self._requeue(channel, delivered)
            for item in delivered:
                if item.consumer is not None:
                    self._dirty.add(item.consumer.queue)

    def _basic_recover(self, channel: Channel, method: Any) -> None:
        if not method.requeue:
            raise Refused(spec.NOT_IMPLEMENTED, "requeue=false")
        self._requeue(channel, list(channel.unacked.values()))
        channel.unacked.clear()
        if isinstance(method, B.Recover):
            self._send(channel, B.RecoverOk())

    def _confirm_select(self, channel: Channel, method: Any) -> None:
        if channel.transactional:
            raise Refused(spec.PRECONDITION_FAILED, "cannot switch from tx to confirm mode")
        channel.confirming = True
        self._reply(channel, method, spec.Confirm.SelectOk())

    def _tx(self, channel: Channel, method: Method) -> None:
        if isinstance(method, Tx.Select):
            if channel.confirming:
                raise Refused(spec.PRECONDITION_FAILED, "cannot switch from confirm to tx mode")
            channel.transactional = True
            self._send(channel, Tx.SelectOk())
            return
        if not channel.transactional:
            raise Refused(spec.PRECONDITION_FAILED, "channel is not transactional")
        publishes, settles = channel.tx_publishes, channel.tx_settles
        channel.tx_publishes, channel.tx_settles = [], []
        if isinstance(method, Tx.Commit):
            for exchange, message, mandatory in publishes:
                self._model().usage.held -= message.cost
                self._route(channel, exchange, message, mandatory, None)
            for settle in settles:
                self._apply_settle(channel, settle)
            self._send(channel, Tx.CommitOk())
        else:
            for _, message, _ in publishes:
                self._model().usage.held -= message.cost
            self._send(channel, Tx.RollbackOk())

    # -- publishing -----------------------------------------------------------------

    def _publish(self, channel: Channel, event: MessageReceived) -> None:
        method = event.method
        assert isinstance(method, B.Publish)
        if method.immediate:
            raise Refused(spec.NOT_IMPLEMENTED, "immediate=true")
        vhost = self._model()
        # RabbitMQ's order: the exchange, internal, user_id, expiration, delivery_mode.
        exchange = vhost.exchange(method.exchange)
        if exchange.internal:
            raise Refused(
                spec.ACCESS_REFUSED,
                f"cannot publish to internal exchange '{exchange.name}' in vhost '{vhost.name}'",
            )
        user_id = getattr(event.properties, "user_id", None)
        login = self.conn.credentials.username if self.conn.credentials else None
        if user_id is not None and user_id != login:  # [rmq-docs:validated-user-id]
            raise Refused(
                spec.PRECONDITION_FAILED,
                f"user_id property set to '{user_id}' but authenticated user was '{login}'",
            )
        expiration = getattr(event.properties, "expiration", None)
        if expiration is not None and not (
            expiration.isascii() and expiration.isdigit() and int(expiration) < 1 << 32
        ):
            raise Refused(spec.PRECONDITION_FAILED, f"invalid expiration '{expiration}'")
        delivery_mode = getattr(event.properties, "delivery_mode", None)
        if delivery_mode not in (None, 1, 2):  # transient or persistent
            raise Refused(
                spec.PRECONDITION_FAILED,
                f"invalid message: {{delivery_mode_unknown,{delivery_mode}}}",
            )
        message = Message(method.exchange, method.routing_key, event.properties, event.body)
        if channel.transactional:
            if vhost.charge(message):
                channel.tx_publishes.append((exchange, message, method.mandatory))
            return
        self._route(channel, exchange, message, method.mandatory, event.confirm_tag)

    def _route(
        self,
        channel: Channel,
        exchange: Exchange,
        message: Message,
        mandatory: bool,
        tag: int | None,
    ) -> None:
        vhost = self._model()
        queues = vhost.route(exchange, message.routing_key, message.properties)
        stored = True
        if queues:
            stored = vhost.charge(message) and vhost.enqueue(queues, message)
            self._dirty.update(queues)
        elif mandatory:
            returned = B.Return(spec.NO_ROUTE, "NO_ROUTE", message.exchange, message.routing_key)
            self._send_message(channel, returned, message.properties, message.body)
        if tag is not None:
            self._send(channel, B.Ack(tag) if stored else B.Nack(tag, requeue=False))

    # -- delivery -------------------------------------------------------------------

    def deliver(self, channel: Channel, consumer: Consumer, entry: Entry) -> None:
        """Basic.Deliver one message to a consumer that can take it."""
        message = entry.message
        tag = channel.next_tag
        deliver = B.Deliver(
            consumer.tag, tag, entry.redelivered, message.exchange, message.routing_key
        )
        if not self._send_message(channel, deliver, message.properties, message.body):
            consumer.queue.ready.appendleft(entry)  # pragma: no cover - can_deliver checked
            return
        channel.next_tag += 1
        if consumer.no_ack:
            self._model().settle(entry)
        else:
            consumer.unacked += 1
            channel.unacked[tag] = _Delivered(consumer.queue, entry, consumer)
        self.flush()  # the transport says at once if the client is falling behind


_Handler = Callable[[Session, Channel, Any], None]
_HANDLERS: Final[dict[type[Method], _Handler]] = {
    E.Declare: Session._exchange_declare,
    E.Delete: Session._exchange_delete,
    E.Bind: Session._exchange_bind,
    E.Unbind: Session._exchange_bind,
    Q.Declare: Session._queue_declare,
    Q.Bind: Session._queue_bind,
    Q.Unbind: Session._queue_bind,
    Q.Purge: Session._queue_purge,
    Q.Delete: Session._queue_delete,
    B.Qos: Session._basic_qos,
    B.Consume: Session._basic_consume,
    B.Cancel: Session._basic_cancel,
    B.Get: Session._basic_get,
    B.Ack: Session._settle,
    B.Nack: Session._settle,
    B.Reject: Session._settle,
    B.Recover: Session._basic_recover,
    B.RecoverAsync: Session._basic_recover,
    spec.Confirm.Select: Session._confirm_select,
    Tx.Select: Session._tx,
    Tx.Commit: Session._tx,
    Tx.Rollback: Session._tx,
}
