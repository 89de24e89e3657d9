"""Serving on a TCP port: the lifecycle the broker and the proxy share.

How this works: a subclass says how to listen (``_listen``, which returns the bound
``asyncio.Server``) and how to stop (``stop``); ``Listener`` gives it the rest, the same
for both: ``start``, ``serve_forever``, ``async with``, and for synchronous code a
background thread with its own event loop (``with``, ``start_in_thread`` /
``stop_in_thread``). The thread is stopped by cancelling every task on its loop, which
ends ``serve_forever`` through its ``stop``.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Listener", "serve_until_signalled"]


class Listener(metaclass=abc.ABCMeta):
    """Something that listens on ``host``:``port`` and serves from asyncio or a thread."""

    _KIND: ClassVar[str]
    """What it is ("broker"), in errors and in its thread's name."""

    def __init__(self, host: str, port: int) -> None:
        self.host: str = host
        self._port: int = port
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    async def _listen(self) -> asyncio.Server:
        """Bind the listening socket on ``host``:``_port``, on the running loop."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop listening and end the connections it serves."""

    async def start(self) -> None:
        """Listen; returns once the port is bound."""
        if self._server is not None:
            raise RuntimeError(f"the {self._KIND} is already running")
        self._loop = asyncio.get_running_loop()
        self._server = await self._listen()
        self._port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        """Start (if not started) and serve until cancelled; stops cleanly."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- background thread ------------------------------------------------------------

    def start_in_thread(self) -> Self:
        """Run on its own event loop in a daemon thread; returns once it listens. For
        synchronous tests (pika's BlockingConnection, py-amqp, kombu)."""
        if self._thread is not None:
            raise RuntimeError(f"the {self._KIND} is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            await self.serve_forever()

        def run_loop() -> None:
            with contextlib.suppress(asyncio.CancelledError):
                asyncio.run(serve())

        self._thread = threading.Thread(
            target=run_loop, name=f"amqpcodec-{self._KIND}", daemon=True
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop_in_thread(self) -> None:
        """Stop what :meth:`start_in_thread` started (through :meth:`stop`) and wait for
        its thread to end; nothing to do when it is not running."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_cancel_all)
        thread.join()

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop_in_thread()


def _cancel_all() -> None:
    # Runs on the listener's own loop: these are its tasks, serve_forever's among them.
    for task in asyncio.all_tasks():
        task.cancel()


async def serve_until_signalled(listener: Listener, announce: Callable[[], None]) -> None:
    """Start ``listener``, call ``announce`` once it listens, and serve until SIGINT or
    SIGTERM; then stop it. For the commands that run one."""
    # Handlers first: whoever reads the announcement may signal at once.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await listener.start()
    announce()
    try:
        await stop.wait()
    finally:
        await listener.stop()
