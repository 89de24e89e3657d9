"""The in-memory broker's listener, lifecycle and delivery loop (asyncio, stdlib only)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

from .. import spec
from .._connection import Connection, Credentials
from .._serving import Listener
from .._state import Role
from ._model import Limits, Message, Queue, Usage, VirtualHost
from ._session import Session

__all__ = ["Broker"]

T = TypeVar("T")

SHUTDOWN_TEXT: Final = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"
_WRITE_BUFFER: Final = 1024 * 1024
MAX_INTERNAL_ERRORS: Final = 100


class Broker(Listener):
    """An in-memory AMQP 0-9-1 broker of the AMQ model, for tests.

    This is a test double that your tests run instead of RabbitMQ (as fakeredis stands
    in for Redis), not a production broker: everything lives in memory and goes with
    the process, nothing is durable, and speed is not a goal. It speaks the protocol
    through ``Connection(Role.SERVER)`` and answers mistakes with the reply codes
    RabbitMQ gives for them (404, 405, 406, 403 as channel errors; 503, 504, 530, 540 as
    connection errors; 320 to every client when it stops).

    It has exchanges (direct, fanout, topic, headers; the default exchange and
    ``amq.*``), queues (server-named, exclusive, auto-delete, ``x-max-length``,
    ``x-overflow``), queue and exchange-to-exchange bindings, publishing with mandatory
    returns, Get, Consume with round-robin delivery and Basic.Qos prefetch,
    Ack/Nack/Reject with requeue, Recover, publisher confirms, transactions, and a
    Basic.Cancel to consumers of a deleted queue when the client asks for one. Message
    TTL, dead-lettering, priorities and alternate exchanges are not implemented.

    Use it as ``async with Broker() as broker:`` in asyncio code, or ``with Broker() as
    broker:`` to run it in a background thread for synchronous tests. ``port=0`` (the
    default) picks a free port; ``broker.port`` tells which. ``users`` maps user names
    to passwords (guest/guest by default); ``virtual_hosts`` names those that exist.
    What it holds on behalf of clients is bounded by ``limits`` (see :class:`Limits`).
    """

    _KIND = "broker"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        users: Mapping[str, str] | None = None,
        virtual_hosts: Iterable[str] = ("/",),
        frame_max: int = 131072,
        channel_max: int = 2047,
        heartbeat: int = 60,
        handshake_timeout: float = 10.0,
        shutdown_timeout: float = 1.0,
        limits: Limits | None = None,
    ) -> None:
        super().__init__(host, port)
        self.users: dict[str, str] = dict(users) if users is not None else {"guest": "guest"}
        self.limits: Limits = limits or Limits()
        self.handshake_timeout: float = handshake_timeout
        self.shutdown_timeout: float = shutdown_timeout
        self.write_buffer: int = _WRITE_BUFFER
        self._settings: dict[str, Any] = {
            "frame_max": frame_max,
            "channel_max": channel_max,
            "heartbeat": heartbeat,
            # A body over max_message_size closes its channel with 406, as in RabbitMQ;
            # the Connection holds at most that much of unfinished bodies.
            "max_total_body_size": self.limits.max_message_size,
            "authenticate": self._authenticate,
            "check_virtual_host": self._check_virtual_host,
            "server_properties": {"product": "amqpcodec broker (a test double)"},
        }
        Connection(Role.SERVER, **self._settings)  # settings are checked now, not per client
        self._usage = Usage(self.limits.max_memory)
        self._vhosts = {name: VirtualHost(name, self.limits, self._usage) for name in virtual_hosts}
        self._sessions: set[Session] = set()
        self._idle: asyncio.Event | None = None
        self.internal_errors: list[BaseException] = []
        """Exceptions the broker's own code raised while handling a method (each answered
        with Connection.Close 541), the first ``MAX_INTERNAL_ERRORS``: a test can require
        it to stay empty."""

    # -- where ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (the one picked when ``port=0``), once started."""
        return self._port

    @property
    def url(self) -> str:
        """``amqp://user:password@host:port/`` for the first user."""
        user, password = next(iter(self.users.items()), ("", ""))
        return f"amqp://{user}:{password}@{self.host}:{self._port}/"

    # -- asyncio lifecycle ------------------------------------------------------------

    async def _listen(self) -> asyncio.Server:
        self._idle = asyncio.Event()
        self._idle.set()
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: Session(self), self.host, self._port)

    async def stop(self) -> None:
        """Stop listening, close every connection with 320 CONNECTION_FORCED, wait up to
        ``shutdown_timeout`` seconds for the clients' Close-Ok, then drop the sockets."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for session in list(self._sessions):
            session.shut_down(spec.CONNECTION_FORCED, SHUTDOWN_TEXT)
        assert self._idle is not None
        try:
            await asyncio.wait_for(self._idle.wait(), self.shutdown_timeout)
        except asyncio.TimeoutError:
            for session in list(self._sessions):
                if session.transport is not None:
                    session.transport.abort()
        await asyncio.sleep(0)  # let aborted transports report connection_lost
        await server.wait_closed()

    # -- looking inside (for tests) ---------------------------------------------------

    def _inspect(self, read: Callable[[], T]) -> T:
        """Read the model on the broker's own thread when it runs in one."""
        thread, loop = self._thread, self._loop
        if thread is None or threading.current_thread() is thread or loop is None:
            return read()

        async def call() -> T:
            return read()

        return asyncio.run_coroutine_threadsafe(call(), loop).result()

    def virtual_host(self, name: str = "/") -> VirtualHost:
        """The model of one virtual host (KeyError if there is none)."""
        return self._vhosts[name]

    def queues(self, virtual_host: str = "/") -> dict[str, int]:
        """Queue names and how many ready messages each holds."""
        vhost = self._vhosts[virtual_host]
        return self._inspect(lambda: {q.name: len(q.ready) for q in vhost.queues.values()})

    def exchanges(self, virtual_host: str = "/") -> dict[str, str]:
        """Exchange names and their types."""
        vhost = self._vhosts[virtual_host]
        return self._inspect(lambda: {x.name: x.type for x in vhost.exchanges.values()})

    def messages(self, queue: str, virtual_host: str = "/") -> list[Message]:
        """The ready messages of a queue, oldest first (``.body``, ``.properties``,
        ``.exchange``, ``.routing_key``); KeyError if there is no such queue."""
        vhost = self._vhosts[virtual_host]
        return self._inspect(lambda: [entry.message for entry in vhost.queues[queue].ready])

    @property
    def connections(self) -> int:
        """Open client connections."""
        return self._inspect(lambda: len(self._sessions))

    @property
    def memory_held(self) -> int:
        """Bytes of messages held, as counted against ``limits.max_memory``."""
        return self._inspect(lambda: self._usage.held)

    # -- for the sessions -------------------------------------------------------------

    def new_connection(self) -> Connection:
        return Connection(Role.SERVER, **self._settings)

    def admit(self, session: Session) -> bool:
        if len(self._sessions) >= self.limits.max_connections:
            return False
        self._sessions.add(session)
        if self._idle is not None:
            self._idle.clear()
        return True

    def forget(self, session: Session) -> None:
        self._sessions.discard(session)
        if not self._sessions and self._idle is not None:
            self._idle.set()

    def internal_error(self, exc: BaseException) -> None:
        if len(self.internal_errors) < MAX_INTERNAL_ERRORS:
            self.internal_errors.append(exc)

    def _authenticate(self, credentials: Credentials) -> bool:
        name = credentials.username
        return name is not None and name in self.users and self.users[name] == credentials.password

    def _check_virtual_host(self, name: str, credentials: Credentials) -> bool:
        return name in self._vhosts

    def dispatch(self, queues: Iterable[Queue]) -> None:
        """Deliver the ready messages of these queues to consumers that can take them,
        round robin."""
        for queue in queues:
            consumers = queue.consumers
            while queue.ready and consumers and not queue.deleted:
                for _ in range(len(consumers)):
                    consumer = consumers[0]
                    consumers.rotate(-1)
                    if consumer.channel.can_deliver(consumer):
                        break
                else:
                    break  # nobody can take one now; an ack, Qos or drained socket retries
                channel = consumer.channel
                channel.session.deliver(channel, consumer, queue.ready.popleft())
