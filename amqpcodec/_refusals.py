"""What a broker following RabbitMQ's rules refuses in a client's stream, frame by frame.

How this works: :class:`RabbitMQRules` walks the frames a client sends, in order, and
keeps a small model of what the stream has done so far (open channels, transactional
and confirming channels, the queues, exchanges and consumer tags it declared). For
each method frame it answers whether RabbitMQ (3.x, default settings) closes the
channel or the connection on it, with the reply code and a short reason. The model
knows only what the stream itself did: a name declared elsewhere counts as missing.

What it does not check: the login (credentials are the caller's business), ``x-``
arguments of declarations, bindings to headers exchanges, and frame-level errors
(a mutated frame is the decoder's business, not this model's). A frame after a
refusal on the same channel (or after a connection refusal) is not judged: RabbitMQ
discards it.

The rules follow RabbitMQ 3.x's ``rabbit_reader`` (channel 0, channel numbers) and
``rabbit_channel`` ``handle_method/3`` (features it does not implement, the default
exchange, ``amq.`` names, missing entities, delivery tags, transactions, confirms).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._frames import Frame, HeaderFrame, HeartbeatFrame, MethodFrame, ProtocolHeader
from .spec import ReplyCode

__all__ = ["DEFAULT_EXCHANGES", "EXCHANGE_TYPES", "RabbitMQRules", "Refusal", "has_non_finite"]

DEFAULT_EXCHANGES: dict[str, str] = {
    "": "direct",
    "amq.direct": "direct",
    "amq.fanout": "fanout",
    "amq.topic": "topic",
    "amq.headers": "headers",
    "amq.match": "headers",
    "amq.rabbitmq.trace": "topic",
}
"""The exchanges every RabbitMQ virtual host has, by name, with their type."""

EXCHANGE_TYPES = ("direct", "fanout", "topic", "headers")
_MAX_CHANNEL = 2047  # RabbitMQ's default channel_max
_SERVER_NAMED = "\0server-named"  # stands for a queue whose name only the broker knows
_CONNECTION_CLASS = 10
_MAX_EXPIRATION = 2**32 - 1  # milliseconds; RabbitMQ refuses a larger expiration


@dataclass(frozen=True, slots=True)
class Refusal:
    """RabbitMQ's expected answer to one frame: it closes the channel
    (``connection=False``) or the whole connection with ``reply_code``."""

    reply_code: int
    reason: str
    connection: bool = False

    def __str__(self) -> str:
        scope = "connection" if self.connection else "channel"
        return f"{self.reply_code} ({scope}): {self.reason}"


def has_non_finite(value: Any, depth: int = 0) -> bool:
    """Whether a table value holds an infinite or NaN float anywhere inside."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if depth > 64:
        return False
    if isinstance(value, Mapping):
        return any(has_non_finite(v, depth + 1) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_non_finite(v, depth + 1) for v in value)
    return False


def _hard(code: ReplyCode, reason: str) -> Refusal:
    return Refusal(int(code), reason, connection=True)


def _soft(code: ReplyCode, reason: str) -> Refusal:
    return Refusal(int(code), reason, connection=False)


@dataclass
class _ChannelModel:
    transactional: bool = False
    confirming: bool = False
    consumer_tags: set[str] = field(default_factory=set)
    refused: bool = False
    last_queue: str | None = None  # what an empty queue name stands for on this channel


class RabbitMQRules:
    """The model of one client stream as a broker following RabbitMQ's rules sees it.

    ``check(frame)`` returns the :class:`Refusal` the broker is expected to answer
    ``frame`` with, or None, and advances the model. ``username`` is what a
    ``user_id`` property must equal.
    """

    def __init__(self, username: str | None = "guest") -> None:
        self.username = username
        self.exchanges: dict[str, str] = dict(DEFAULT_EXCHANGES)
        self.queues: set[str] = set()
        self.channels: dict[int, _ChannelModel] = {}
        self.open = False  # Connection.Open sent
        self.closed = False  # the connection ended (a close or a hard refusal)
        self.declared: dict[tuple[str, str], None] = {}  # (kind, name), in order

    def check(self, frame: Frame) -> Refusal | None:
        if self.closed or isinstance(frame, ProtocolHeader | HeartbeatFrame):
            return None
        if not self.open:
            if isinstance(frame, MethodFrame) and frame.method.NAME == "connection.open":
                self.open = True
            return None
        if frame.channel == 0:
            return self._channel_zero(frame)
        channel = self.channels.get(frame.channel)
        if not isinstance(frame, MethodFrame):
            if channel is None:
                return self._end(_hard(ReplyCode.CHANNEL_ERROR, "content on a channel not open"))
            if isinstance(frame, HeaderFrame) and not channel.refused:
                return self._keep(channel, self._properties(frame.properties))
            return None
        method = frame.method
        name = method.NAME
        if name == "channel.open":
            if channel is not None:
                return self._end(_hard(ReplyCode.CHANNEL_ERROR, "channel.open on an open channel"))
            if frame.channel > _MAX_CHANNEL:
                return self._end(_hard(ReplyCode.NOT_ALLOWED, "channel number over channel_max"))
            self.channels[frame.channel] = _ChannelModel()
            return None
        if channel is None:
            return self._end(_hard(ReplyCode.CHANNEL_ERROR, f"{name} on a channel not open"))
        if name in ("channel.close", "channel.close-ok"):
            if name == "channel.close-ok" and not channel.refused:
                return None  # RabbitMQ ignores a Close-Ok it did not ask for
            del self.channels[frame.channel]
            return None
        if channel.refused:
            return None  # discarded until the channel's Close-Ok
        if method.CLASS_ID == _CONNECTION_CLASS:
            return self._end(_hard(ReplyCode.COMMAND_INVALID, f"{name} on a channel"))
        return self._keep(channel, self._method(channel, method))

    def _channel_zero(self, frame: Frame) -> Refusal | None:
        if not isinstance(frame, MethodFrame):
            return self._end(_hard(ReplyCode.UNEXPECTED_FRAME, "content on channel 0"))
        name = frame.method.NAME
        if name == "connection.close":
            self.closed = True
            return None
        if name == "connection.update-secret":
            return None
        # Anything else on channel 0 once the connection is open, a connection method
        # out of its place included: "unexpected method in connection state running".
        return self._end(_hard(ReplyCode.CHANNEL_ERROR, f"{name} on channel 0"))

    def _keep(self, channel: _ChannelModel, refusal: Refusal | None) -> Refusal | None:
        if refusal is None:
            return None
        if refusal.connection:
            return self._end(refusal)
        channel.refused = True
        return refusal

    def _properties(self, properties: Any) -> Refusal | None:
        headers = getattr(properties, "headers", None)
        if headers is not None and has_non_finite(headers):
            # RabbitMQ (3.10) cannot hold an infinite or NaN float: it fails the whole
            # connection with 541 when it reads the headers.
            return _hard(ReplyCode.INTERNAL_ERROR, "an infinite or NaN float in the headers")
        expiration = getattr(properties, "expiration", None)
        if expiration is not None and not (
            expiration.isascii() and expiration.isdigit() and int(expiration) <= _MAX_EXPIRATION
        ):
            return _soft(ReplyCode.PRECONDITION_FAILED, f"invalid expiration {expiration!r}")
        delivery_mode = getattr(properties, "delivery_mode", None)
        if delivery_mode not in (None, 1, 2):  # transient or persistent, nothing else
            return _soft(ReplyCode.PRECONDITION_FAILED, f"delivery_mode {delivery_mode}")
        user_id = getattr(properties, "user_id", None)
        if user_id is not None and user_id != self.username:
            return _soft(ReplyCode.PRECONDITION_FAILED, f"user_id {user_id!r} is not the login")
        return None

    def _end(self, refusal: Refusal) -> Refusal:
        self.closed = True
        return refusal

    def _queue(self, name: str, channel: _ChannelModel | None = None) -> Refusal | None:
        if name == "" and channel is not None:  # the channel's last declared queue
            if channel.last_queue is None:
                return _soft(ReplyCode.NOT_FOUND, "no previously declared queue")
            name = channel.last_queue
        if name not in self.queues:
            return _soft(ReplyCode.NOT_FOUND, f"no queue {name!r}")
        return None

    def _exchange(self, name: str) -> Refusal | None:
        if name not in self.exchanges:
            return _soft(ReplyCode.NOT_FOUND, f"no exchange {name!r}")
        return None

    def _declare(self, kind: str, name: str) -> None:
        self.declared[(kind, name)] = None

    def _method(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        name = method.NAME
        check = getattr(self, "_" + name.replace(".", "_").replace("-", "_"), None)
        if check is None:  # a reply the broker never asked for
            return _hard(ReplyCode.COMMAND_INVALID, f"unsolicited {name}")
        result: Refusal | None = check(channel, method)
        return result

    # -- channel -------------------------------------------------------------------
    def _channel_flow(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if not method.active:
            return _hard(ReplyCode.NOT_IMPLEMENTED, "channel.flow active=false")
        return None

    # -- exchange ------------------------------------------------------------------
    def _exchange_declare(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        name = method.exchange
        if method.passive:
            return self._exchange(name)
        if name == "" or name.startswith("amq."):
            if name in self.exchanges and self.exchanges[name] == method.type:
                return None  # redeclaring a predefined exchange as it is: allowed
            return _soft(ReplyCode.ACCESS_REFUSED, f"exchange name {name!r} is reserved")
        if method.type not in EXCHANGE_TYPES:
            return _hard(ReplyCode.COMMAND_INVALID, f"unknown exchange type {method.type!r}")
        known = self.exchanges.get(name)
        if known is not None and known != method.type:
            return _soft(ReplyCode.PRECONDITION_FAILED, f"exchange {name!r} has another type")
        self.exchanges[name] = method.type
        self._declare("exchange", name)
        return None

    def _exchange_delete(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        name = method.exchange
        if name == "" or name.startswith("amq."):
            return _soft(ReplyCode.ACCESS_REFUSED, f"exchange {name!r} is reserved")
        if not method.if_unused:  # deleting a missing exchange is no error
            self.exchanges.pop(name, None)
            return None
        return _soft(ReplyCode.PRECONDITION_FAILED, "exchange.delete if_unused is not modelled")

    def _exchange_bind(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if method.destination == "" or method.source == "":
            return _soft(ReplyCode.ACCESS_REFUSED, "binding the default exchange")
        return self._exchange(method.destination) or self._exchange(method.source)

    def _exchange_unbind(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if method.destination == "" or method.source == "":
            return _soft(ReplyCode.ACCESS_REFUSED, "binding the default exchange")
        return None  # removing a binding that cannot exist is no error

    # -- queue ---------------------------------------------------------------------
    def _queue_declare(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        name = method.queue
        if method.passive:  # a passive "" is no shortcut: RabbitMQ answers 404 for ''
            refusal = self._queue(name)
            if refusal is None:
                channel.last_queue = name
            return refusal
        if name.startswith("amq."):
            return _soft(ReplyCode.ACCESS_REFUSED, f"queue name {name!r} is reserved")
        if name:
            self._declare("queue", name)
        else:  # server-named: only an empty name on this channel can refer to it
            name = _SERVER_NAMED
        self.queues.add(name)
        channel.last_queue = name
        return None

    def _queue_bind(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if method.queue == "" and channel.last_queue is None:
            return self._queue("", channel)  # the name is expanded first
        if method.exchange == "":
            return _soft(ReplyCode.ACCESS_REFUSED, "binding to the default exchange")
        return self._queue(method.queue, channel) or self._exchange(method.exchange)

    def _queue_unbind(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if method.queue == "" and channel.last_queue is None:
            return self._queue("", channel)
        if method.exchange == "":
            return _soft(ReplyCode.ACCESS_REFUSED, "binding to the default exchange")
        return None  # removing a binding that cannot exist is no error

    def _queue_purge(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        return self._queue(method.queue, channel)

    def _queue_delete(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        name = method.queue
        if name == "":
            if channel.last_queue is None:
                return self._queue("", channel)
            name = channel.last_queue
        if method.if_unused or method.if_empty:
            if name not in self.queues:
                return None
            return _soft(ReplyCode.PRECONDITION_FAILED, "queue.delete if_unused/if_empty")
        self.queues.discard(name)  # deleting a missing queue is no error
        return None

    # -- basic ---------------------------------------------------------------------
    def _basic_qos(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if method.prefetch_size != 0:
            return _hard(ReplyCode.NOT_IMPLEMENTED, "basic.qos prefetch_size != 0")
        return None

    def _basic_consume(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        refusal = self._queue(method.queue, channel)
        if refusal is not None:
            return refusal
        if method.consumer_tag in channel.consumer_tags:
            return _hard(ReplyCode.NOT_ALLOWED, f"consumer tag {method.consumer_tag!r} reused")
        if method.exclusive:
            return _soft(ReplyCode.ACCESS_REFUSED, "exclusive consumers are not modelled")
        if method.consumer_tag:
            channel.consumer_tags.add(method.consumer_tag)
        return None

    def _basic_cancel(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        channel.consumer_tags.discard(method.consumer_tag)  # an unknown tag is no error
        return None

    def _basic_publish(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if method.immediate:
            return _hard(ReplyCode.NOT_IMPLEMENTED, "basic.publish immediate=true")
        return self._exchange(method.exchange)

    def _basic_get(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        return self._queue(method.queue, channel)

    def _basic_ack(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        # The model never holds deliveries: only "every outstanding one" is a known tag.
        if method.delivery_tag == 0 and method.multiple:
            return None
        return _soft(ReplyCode.PRECONDITION_FAILED, f"unknown delivery tag {method.delivery_tag}")

    _basic_nack = _basic_ack

    def _basic_reject(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        return _soft(ReplyCode.PRECONDITION_FAILED, f"unknown delivery tag {method.delivery_tag}")

    def _basic_recover(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if not method.requeue:
            return _hard(ReplyCode.NOT_IMPLEMENTED, f"{method.NAME} requeue=false")
        return None

    _basic_recover_async = _basic_recover

    # -- tx and confirm ------------------------------------------------------------
    def _tx_select(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if channel.confirming:
            return _soft(ReplyCode.PRECONDITION_FAILED, "tx.select on a confirming channel")
        channel.transactional = True
        return None

    def _tx_commit(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if not channel.transactional:
            return _soft(ReplyCode.PRECONDITION_FAILED, f"{method.NAME} without tx.select")
        return None

    _tx_rollback = _tx_commit

    def _confirm_select(self, channel: _ChannelModel, method: Any) -> Refusal | None:
        if channel.transactional:
            return _soft(ReplyCode.PRECONDITION_FAILED, "confirm.select on a transactional channel")
        channel.confirming = True
        return None
