"""The AMQ model of the in-memory broker: virtual hosts, exchanges, queues, bindings,
consumers, and how a message is routed [PDF §2.1]. No I/O and no protocol here: the
broker's sessions turn methods into calls on this model and its refusals into
Channel.Close or Connection.Close with the reply code RabbitMQ uses for the same mistake.

How routing works: a publish names an exchange; each exchange type picks the bindings
whose key (or arguments) match; a binding leads to a queue or, for an
exchange-to-exchange binding, to another exchange whose bindings are followed in turn
(each exchange once, so cycles end). The default exchange ``""`` routes to the queue
named by the routing key and cannot be bound or declared.

Memory: every message held (ready in a queue, delivered and not yet acknowledged, or
waiting in a transaction) is charged ``len(body) + MESSAGE_OVERHEAD`` bytes against the
broker's ``max_memory``, once however many queues hold it. A publish that would go
over is refused (nacked in confirm mode), as ``x-overflow: reject-publish`` does.
"""

from __future__ import annotations

import base64
import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .. import spec
from .._base import Properties

__all__ = [
    "DEFAULT_EXCHANGES",
    "EXCHANGE_TYPES",
    "MESSAGE_OVERHEAD",
    "Binding",
    "Consumer",
    "Entry",
    "Exchange",
    "Limits",
    "Message",
    "Queue",
    "Refused",
    "Usage",
    "VirtualHost",
    "generated_name",
    "topic_matches",
]

EXCHANGE_TYPES: Final = ("direct", "fanout", "topic", "headers")
DEFAULT_EXCHANGES: Final = (
    ("", "direct"),
    ("amq.direct", "direct"),
    ("amq.fanout", "fanout"),
    ("amq.topic", "topic"),
    ("amq.headers", "headers"),
    ("amq.match", "headers"),
    ("amq.rabbitmq.trace", "topic"),  # internal, as in RabbitMQ
)
MESSAGE_OVERHEAD: Final = 256
"""Bytes charged per message on top of its body (objects and bookkeeping)."""

_OVERFLOWS: Final = ("drop-head", "reject-publish", "reject-publish-dlx")
# Queue arguments compared on redeclaration (RabbitMQ's equivalence check).
_EQUIVALENT_ARGUMENTS: Final = (
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-message-ttl",
    "x-overflow",
    "x-queue-type",
)


class Refused(Exception):
    """A method the broker will not carry out: the reply code and explanation for the
    Channel.Close (codes 3xx/4xx) or Connection.Close (5xx) that answers it."""

    def __init__(self, reply_code: int, explanation: str) -> None:
        super().__init__(explanation)
        self.reply_code = reply_code
        self.explanation = explanation

    @property
    def hard(self) -> bool:
        """A connection error rather than a channel error [PDF §4.8.1]."""
        return self.reply_code >= 500 or self.reply_code in (spec.CONNECTION_FORCED, 402)

    @property
    def reply_text(self) -> str:
        """``NAME - explanation`` as RabbitMQ writes it, cut to a short string's 255 bytes."""
        text = f"{spec.ReplyCode(self.reply_code).name} - {self.explanation}"
        # Names that arrived as bytes that are not UTF-8 hold surrogates: shown as "?".
        return text.encode("utf-8", "replace")[:255].decode("utf-8", "ignore")


@dataclass(frozen=True, slots=True)
class Limits:
    """What the broker holds at most on behalf of its clients. Each is a setting of
    :class:`~amqpcodec.broker.Broker`; going over one is refused as described."""

    max_connections: int = 1000
    """Connections at once; one more is closed as soon as it is accepted."""
    max_memory: int = 256 * 1024 * 1024
    """Bytes of messages held (bodies plus ``MESSAGE_OVERHEAD`` each); a publish that
    would go over is dropped, or nacked on a confirm channel."""
    max_queue_length: int = 100_000
    """Ready messages per queue (``x-max-length`` may lower it); past it the oldest is
    dropped, or the publish refused with ``x-overflow: reject-publish``."""
    max_queues: int = 10_000
    """Queues per virtual host; one more is 406 PRECONDITION_FAILED."""
    max_exchanges: int = 10_000
    """Exchanges per virtual host (the predeclared ones included); one more is 406."""
    max_bindings: int = 100_000
    """Bindings per virtual host; one more is 406."""
    max_consumers: int = 10_000
    """Consumers per channel; one more is 406."""
    max_message_size: int = 128 * 1024 * 1024
    """Largest body accepted, and the most a connection holds of bodies still arriving;
    over it the channel is closed with 406 (RabbitMQ's ``max_message_size``)."""

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Limits.{name} must be an int, not {value!r}")
            if value < 0:
                raise ValueError(f"Limits.{name} must be 0 or more, not {value}")


@dataclass(slots=True)
class Usage:
    """Bytes of messages held across the whole broker."""

    limit: int
    held: int = 0


@dataclass(slots=True, eq=False)
class Message:
    """One published message; several queues may hold the same one."""

    exchange: str
    routing_key: str
    properties: Properties
    body: bytes
    cost: int = 0
    copies: int = 0


@dataclass(slots=True, eq=False)
class Entry:
    """A message in one queue, or delivered from it and not yet settled."""

    message: Message
    redelivered: bool = False


@dataclass(slots=True, eq=False)
class Consumer:
    """A Basic.Consume: ``channel`` is the session's channel that delivers to it."""

    tag: str
    queue: Queue
    channel: Any
    no_ack: bool
    exclusive: bool
    prefetch: int = 0
    """Unacknowledged deliveries allowed at once (0: no limit); Basic.Qos global=false."""
    unacked: int = 0


@dataclass(slots=True, eq=False)
class Binding:
    source: Exchange
    destination: Queue | Exchange
    routing_key: str
    arguments: Mapping[str, Any]
    words: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str, str]:
        kind = "queue" if isinstance(self.destination, Queue) else "exchange"
        return (kind, self.destination.name, self.routing_key, _freeze(self.arguments))


@dataclass(slots=True, eq=False)
class Exchange:
    name: str
    type: str
    durable: bool = False
    auto_delete: bool = False
    internal: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)
    bindings: dict[tuple[str, str, str, str], Binding] = field(default_factory=dict)
    """Bindings with this exchange as their source."""
    bound_as_destination: dict[int, Binding] = field(default_factory=dict)

    def matches(self, binding: Binding, routing_key: str, headers: Mapping[str, Any]) -> bool:
        kind = self.type
        if kind == "fanout":
            return True
        if kind == "direct":
            return binding.routing_key == routing_key
        if kind == "topic":
            return topic_matches(binding.words, routing_key.split("."))
        return _headers_match(binding.arguments, headers)


@dataclass(slots=True, eq=False)
class Queue:
    name: str
    durable: bool = False
    exclusive: bool = False
    auto_delete: bool = False
    arguments: Mapping[str, Any] = field(default_factory=dict)
    owner: object | None = None
    """The session of an exclusive queue."""
    max_length: int = 0
    reject_publish: bool = False
    ready: deque[Entry] = field(default_factory=deque)
    consumers: deque[Consumer] = field(default_factory=deque)
    had_consumers: bool = False
    bound_as_destination: dict[int, Binding] = field(default_factory=dict)
    deleted: bool = False

    @property
    def exclusive_consumer(self) -> bool:
        return any(consumer.exclusive for consumer in self.consumers)


def generated_name(prefix: str) -> str:
    """``amq.gen-…`` / ``amq.ctag-…``: a prefix and 22 random URL-safe base64 characters,
    as RabbitMQ names server-named queues and consumers."""
    return prefix + base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")


def topic_matches(pattern: tuple[str, ...], words: list[str]) -> bool:
    """A topic binding key against a routing key, both split at dots: ``*`` stands for
    exactly one word, ``#`` for zero or more. Work is at most words times pattern words."""
    reach = {0}  # how many words the pattern so far can have consumed
    size = len(words)
    for part in pattern:
        if part == "#":
            reach = set(range(min(reach), size + 1))
        elif part == "*":
            reach = {i + 1 for i in reach if i < size}
        else:
            reach = {i + 1 for i in reach if i < size and words[i] == part}
        if not reach:
            return False
    return size in reach


def _same(a: Any, b: Any) -> bool:
    # True == 1 in Python; on the wire a boolean and an integer are different values.
    return (isinstance(a, bool) == isinstance(b, bool)) and a == b


def _headers_match(arguments: Mapping[str, Any], headers: Mapping[str, Any]) -> bool:
    """The headers exchange: ``x-match`` ``all`` (the default) or ``any`` of the binding's
    other arguments equal in the message's headers; a void (None) argument asks only that
    the header be present. ``all-with-x``/``any-with-x`` also compare ``x-`` arguments."""
    mode = str(arguments.get("x-match", "all"))
    with_x = mode.endswith("-with-x")
    wanted = [
        (key, value)
        for key, value in arguments.items()
        if key != "x-match" and (with_x or not key.startswith("x-"))
    ]
    if not wanted:
        return mode.startswith("all")
    hits = (
        key in headers and (value is None or _same(headers[key], value)) for key, value in wanted
    )
    return all(hits) if mode.startswith("all") else any(hits)


def _freeze(arguments: Mapping[str, Any]) -> str:
    # Bindings are told apart by their arguments as well [rabbit_binding]; repr is a
    # faithful enough identity for the values a field table holds.
    return repr(sorted(arguments.items(), key=lambda item: item[0]))


def _flag(value: str | bool) -> str:
    """A property as RabbitMQ shows it in an inequivalence error."""
    if isinstance(value, str):
        return value
    return "true" if value else "false"


class VirtualHost:
    """Exchanges, queues and bindings of one virtual host."""

    def __init__(self, name: str, limits: Limits, usage: Usage) -> None:
        self.name: str = name
        self.limits: Limits = limits
        self.usage: Usage = usage
        self.exchanges: dict[str, Exchange] = {
            xname: Exchange(xname, kind, durable=True, internal=xname == "amq.rabbitmq.trace")
            for xname, kind in DEFAULT_EXCHANGES
        }
        self.queues: dict[str, Queue] = {}
        self.binding_count: int = 0

    # -- names ----------------------------------------------------------------------

    def _where(self) -> str:
        return f"in vhost '{self.name}'"

    def exchange(self, name: str) -> Exchange:
        found = self.exchanges.get(name)
        if found is None:
            raise Refused(spec.NOT_FOUND, f"no exchange '{name}' {self._where()}")
        return found

    def queue(self, name: str, session: object) -> Queue:
        """The queue for a method of ``session``: 404 if none, 405 if another
        connection's exclusive queue."""
        found = self.queues.get(name)
        if found is None:
            raise Refused(spec.NOT_FOUND, f"no queue '{name}' {self._where()}")
        if found.exclusive and found.owner is not session:
            raise Refused(
                spec.RESOURCE_LOCKED,
                f"cannot obtain exclusive access to locked queue '{name}' {self._where()}."
                " It could be originally declared on another connection or the exclusive"
                " property value does not match that of the original declaration.",
            )
        return found

    @staticmethod
    def not_default(name: str) -> None:
        if name == "":
            raise Refused(spec.ACCESS_REFUSED, "operation not permitted on the default exchange")

    @staticmethod
    def _not_reserved(kind: str, name: str) -> None:
        """Only the server names things ``amq.*``: declaring one is 403."""
        if name.startswith("amq."):
            raise Refused(
                spec.ACCESS_REFUSED, f"{kind} name '{name}' contains reserved prefix 'amq.*'"
            )

    def _equivalent(
        self, kind: str, name: str, properties: Iterable[tuple[str, str | bool, str | bool]]
    ) -> None:
        """Declaring what exists again with other properties is 406, naming the first
        property that differs: (name, as asked now, as declared first)."""
        for what, asked, current in properties:
            asked, current = _flag(asked), _flag(current)
            if asked != current:
                raise Refused(
                    spec.PRECONDITION_FAILED,
                    f"inequivalent arg '{what}' for {kind} '{name}' {self._where()}:"
                    f" received '{asked}' but current is '{current}'",
                )

    # -- exchanges ------------------------------------------------------------------

    def declare_exchange(
        self,
        name: str,
        kind: str,
        *,
        passive: bool,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: Mapping[str, Any],
    ) -> Exchange:
        self.not_default(name)
        if passive:
            return self.exchange(name)
        if kind not in EXCHANGE_TYPES:
            raise Refused(spec.COMMAND_INVALID, f"unknown exchange type '{kind}'")
        found = self.exchanges.get(name)
        if found is None:
            self._not_reserved("exchange", name)
            if len(self.exchanges) >= self.limits.max_exchanges:
                raise Refused(
                    spec.PRECONDITION_FAILED,
                    f"cannot declare exchange '{name}': the limit of"
                    f" {self.limits.max_exchanges} exchanges {self._where()} is reached",
                )
            found = Exchange(name, kind, durable, auto_delete, internal, dict(arguments))
            self.exchanges[name] = found
            return found
        self._equivalent(
            "exchange",
            name,
            (
                ("type", kind, found.type),
                ("durable", durable, found.durable),
                ("auto_delete", auto_delete, found.auto_delete),
                ("internal", internal, found.internal),
            ),
        )
        return found

    def delete_exchange(self, name: str, if_unused: bool) -> None:
        self.not_default(name)
        if name.startswith("amq.") and name in self.exchanges:
            raise Refused(
                spec.ACCESS_REFUSED,
                f"deletion of system exchange '{name}' {self._where()} not allowed",
            )
        found = self.exchanges.get(name)
        if found is None:
            return  # deleting what is not there succeeds, as in RabbitMQ
        if if_unused and found.bindings:
            raise Refused(spec.PRECONDITION_FAILED, f"exchange '{name}' {self._where()} in use")
        self._remove_exchange(found)

    def _remove_exchange(self, exchange: Exchange) -> None:
        if self.exchanges.get(exchange.name) is not exchange:
            return
        del self.exchanges[exchange.name]
        for binding in list(exchange.bindings.values()):
            self._remove_binding(binding)
        for binding in list(exchange.bound_as_destination.values()):
            self._remove_binding(binding)

    # -- queues ---------------------------------------------------------------------

    def declare_queue(
        self,
        name: str,
        session: object,
        *,
        passive: bool,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: Mapping[str, Any],
    ) -> Queue:
        if passive:
            return self.queue(name, session)
        found = self.queues.get(name)
        if found is None:
            self._not_reserved("queue", name)
            return self.add_queue(
                name,
                session,
                durable=durable,
                exclusive=exclusive,
                auto_delete=auto_delete,
                arguments=arguments,
            )
        found = self.queue(name, session)  # 405 for another connection's exclusive queue
        self._equivalent(
            "queue",
            name,
            (
                ("durable", durable, found.durable),
                ("exclusive", exclusive, found.exclusive),
                ("auto_delete", auto_delete, found.auto_delete),
            ),
        )
        for key in _EQUIVALENT_ARGUMENTS:
            asked_value, current_value = arguments.get(key), found.arguments.get(key)
            if not _same(asked_value, current_value):
                raise Refused(
                    spec.PRECONDITION_FAILED,
                    f"inequivalent arg '{key}' for queue '{name}' {self._where()}:"
                    f" received {asked_value!r} but current is {current_value!r}",
                )
        return found

    def add_queue(
        self,
        name: str,
        session: object,
        *,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        arguments: Mapping[str, Any],
    ) -> Queue:
        limits = self.limits
        if len(self.queues) >= limits.max_queues:
            raise Refused(
                spec.PRECONDITION_FAILED,
                f"cannot declare queue '{name}': queue limit {self._where()}"
                f" ({limits.max_queues}) is reached",
            )
        max_length = limits.max_queue_length
        given = arguments.get("x-max-length")
        if given is not None:
            if isinstance(given, bool) or not isinstance(given, int) or given < 0:
                raise Refused(
                    spec.PRECONDITION_FAILED,
                    f"invalid arg 'x-max-length' for queue '{name}' {self._where()}:"
                    f" {given!r} is not a non-negative integer",
                )
            max_length = min(given, max_length)
        overflow = arguments.get("x-overflow", "drop-head")
        if overflow not in _OVERFLOWS:
            raise Refused(
                spec.PRECONDITION_FAILED,
                f"invalid arg 'x-overflow' for queue '{name}' {self._where()}:"
                f" {overflow!r} is not one of {', '.join(_OVERFLOWS)}",
            )
        queue = Queue(
            name,
            durable,
            exclusive,
            auto_delete,
            dict(arguments),
            owner=session if exclusive else None,
            max_length=max_length,
            reject_publish=overflow != "drop-head",
        )
        self.queues[name] = queue
        return queue

    def delete_queue(self, queue: Queue, *, if_unused: bool = False, if_empty: bool = False) -> int:
        """Delete a queue and its bindings; returns how many ready messages it held. Its
        consumers are left for the caller to cancel (``queue.consumers``)."""
        if if_unused and queue.consumers:
            raise Refused(spec.PRECONDITION_FAILED, f"queue '{queue.name}' {self._where()} in use")
        if if_empty and queue.ready:
            raise Refused(
                spec.PRECONDITION_FAILED, f"queue '{queue.name}' {self._where()} is not empty"
            )
        count = self.purge(queue)
        queue.deleted = True
        if self.queues.get(queue.name) is queue:
            del self.queues[queue.name]
        for binding in list(queue.bound_as_destination.values()):
            self._remove_binding(binding)
        return count

    def purge(self, queue: Queue) -> int:
        count = len(queue.ready)
        while queue.ready:
            self.settle(queue.ready.popleft())
        return count

    # -- bindings -------------------------------------------------------------------

    def bind(
        self,
        source: Exchange,
        destination: Queue | Exchange,
        routing_key: str,
        arguments: Mapping[str, Any],
    ) -> None:
        if source.type == "headers":
            mode = arguments.get("x-match", "all")
            if mode not in ("all", "any", "all-with-x", "any-with-x"):
                raise Refused(
                    spec.PRECONDITION_FAILED,
                    f"Invalid x-match field value {mode!r}; expected all, any,"
                    " all-with-x, or any-with-x",
                )
        binding = Binding(source, destination, routing_key, dict(arguments))
        if source.type == "topic":
            binding.words = tuple(routing_key.split("."))
        key = binding.key
        if key in source.bindings:
            return  # binding twice is binding once
        if self.binding_count >= self.limits.max_bindings:
            raise Refused(
                spec.PRECONDITION_FAILED,
                f"cannot bind: the limit of {self.limits.max_bindings} bindings"
                f" {self._where()} is reached",
            )
        source.bindings[key] = binding
        destination.bound_as_destination[id(binding)] = binding
        self.binding_count += 1

    def unbind(
        self,
        source: Exchange,
        destination: Queue | Exchange,
        routing_key: str,
        arguments: Mapping[str, Any],
    ) -> None:
        key = Binding(source, destination, routing_key, arguments).key
        binding = source.bindings.get(key)
        if binding is not None:  # unbinding what is not bound succeeds, as in RabbitMQ
            self._remove_binding(binding)

    def _remove_binding(self, binding: Binding) -> None:
        source = binding.source
        if source.bindings.pop(binding.key, None) is None:
            return
        binding.destination.bound_as_destination.pop(id(binding), None)
        self.binding_count -= 1
        if source.auto_delete and not source.bindings:
            self._remove_exchange(source)

    # -- messages -------------------------------------------------------------------

    def route(self, exchange: Exchange, routing_key: str, properties: Properties) -> list[Queue]:
        """The queues a message published to ``exchange`` reaches, each once."""
        if exchange.name == "":
            queue = self.queues.get(routing_key)
            return [] if queue is None else [queue]
        headers = getattr(properties, "headers", None) or {}
        found: dict[int, Queue] = {}
        seen = {id(exchange)}
        pending = [exchange]
        while pending:
            current = pending.pop()
            for binding in current.bindings.values():
                if not current.matches(binding, routing_key, headers):
                    continue
                destination = binding.destination
                if isinstance(destination, Queue):
                    found.setdefault(id(destination), destination)
                elif id(destination) not in seen:
                    seen.add(id(destination))
                    pending.append(destination)
        return list(found.values())

    def charge(self, message: Message) -> bool:
        """Reserve memory for a new message; False when the broker is full."""
        usage = self.usage
        message.cost = len(message.body) + MESSAGE_OVERHEAD
        if usage.held + message.cost > usage.limit:
            return False
        usage.held += message.cost
        return True

    def enqueue(self, queues: list[Queue], message: Message) -> bool:
        """Put a charged message in each queue; False if a queue refused it
        (``x-overflow: reject-publish``). Releases the charge when no queue kept it."""
        refused = False
        for queue in queues:
            if len(queue.ready) >= queue.max_length:
                if queue.reject_publish:
                    refused = True
                    continue
                if not queue.ready:
                    continue  # x-max-length 0 drops every message
                self.settle(queue.ready.popleft())  # drop-head
            message.copies += 1
            queue.ready.append(Entry(message))
        if not message.copies:
            self.usage.held -= message.cost
        return not refused

    def settle(self, entry: Entry) -> None:
        """A queue is done with this message (acked, dropped, purged, deleted)."""
        message = entry.message
        message.copies -= 1
        if message.copies == 0:
            self.usage.held -= message.cost

    def requeue(self, queue: Queue, entries: list[Entry]) -> None:
        """Put delivered messages back at the head of their queue, in their order, marked
        redelivered; those of a deleted queue are settled."""
        for entry in reversed(entries):
            if queue.deleted:
                self.settle(entry)
            else:
                entry.redelivered = True
                queue.ready.appendleft(entry)

    def all_queues(self) -> Iterator[Queue]:
        return iter(list(self.queues.values()))
