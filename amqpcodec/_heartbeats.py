"""Heartbeats: when to send one, and when the peer counts as gone [PDF §4.2.7]."""

from __future__ import annotations

from typing import Final

from ._core import CS, ConnectionCore
from ._events import (
    AnyEvent,
    ConnectionClosed,
    HeartbeatTimeout,
)
from ._frames import (
    HeartbeatFrame,
)

__all__ = ["Heartbeats"]

_HEARTBEAT_BYTES: Final = HeartbeatFrame().encode()


class Heartbeats(ConnectionCore):
    """The heartbeat clock, driven by the times passed to ``tick``."""

    def _tick(self, now: float) -> list[AnyEvent]:
        """What :meth:`Connection.tick` does (see its docstring for the rules)."""
        interval = self._heartbeat
        if not interval or self._state is CS.CLOSED or self._state is CS.ERROR:
            return []
        previous = self._last_tick
        self._last_tick = now
        if self._received_since_tick or self._last_received is None:
            self._last_received = now
            self._received_since_tick = False
        elif previous is not None and now - previous > interval:
            # We were not watching: what the peer sent may not have been read yet.
            self._last_received = max(self._last_received, now - 1.5 * interval)
        if self._last_sent is None:
            self._last_sent = now
        elif self._sent_since_tick:
            # Handed out at some point since the previous tick: assume the earliest.
            self._last_sent = previous if previous is not None else now
        self._sent_since_tick = False
        silent_for = now - self._last_received
        if silent_for >= 2 * interval:
            self._state = CS.CLOSED
            unconfirmed = self._all_unconfirmed()
            self._channels.clear()
            text = f"no heartbeat or data from the peer for {silent_for:g}s"
            self._ended(text)
            return [
                HeartbeatTimeout(silent_for),
                ConnectionClosed(0, text, unconfirmed=unconfirmed),
            ]
        if now - self._last_sent >= interval / 2:
            self._queue(_HEARTBEAT_BYTES)
            # Counted as sent now: the caller writes right after the tick.
            self._last_sent = now
        return []

    def _next_tick_at(self) -> float | None:
        """What :attr:`Connection.next_tick_at` says."""
        interval = self._heartbeat
        if not interval or self._state is CS.CLOSED or self._state is CS.ERROR:
            return None
        if self._last_sent is None or self._last_received is None:
            return 0.0
        return min(self._last_sent + interval / 2, self._last_received + 2 * interval)
