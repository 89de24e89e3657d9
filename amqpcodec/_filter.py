"""Choosing which capture records to show: ``decode``'s ``--connection``, ``--channel``,
``--method``, ``--direction``, ``--since`` and ``--until``.

A filter decides per record, never per packet, so it is frame-exact: a packet carrying
frames of two channels shows only the frames of the chosen one. Conditions combine with
"and"; repeated ``--connection``/``--channel``/``--method`` values combine with "or".

Notices (gaps, resyncs, errors, TCP events) belong to a connection and direction but to
no channel or method: the connection, direction and time conditions apply to them, and
they are kept under ``--channel`` (a gap may have cut through that channel's frames) but
left out under ``--method``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ._frames import MethodFrame
from .capture import Direction, FrameRecord, MessageRecord, Record

__all__ = ["RecordFilter"]


@dataclass(frozen=True)
class RecordFilter:
    """Which records to keep; an empty condition keeps everything.

    ``methods`` are glob patterns matched, ignoring case, against both spellings of a
    method's name: ``basic.publish`` / ``queue.declare-ok`` and ``Basic.Publish`` /
    ``Queue.DeclareOk``. ``since`` and ``until`` are seconds from ``epoch`` (the
    capture's first packet), inclusive; a record without a time (raw and hex input)
    never matches them.
    """

    connections: frozenset[int] = frozenset()
    channels: frozenset[int] = frozenset()
    methods: tuple[str, ...] = ()
    direction: Direction | None = None
    since: float | None = None
    until: float | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.connections
            or self.channels
            or self.methods
            or self.direction is not None
            or self.since is not None
            or self.until is not None
        )

    @property
    def timed(self) -> bool:
        return self.since is not None or self.until is not None

    def _pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(fnmatch.translate(m.lower()) for m in self.methods))

    def apply(
        self, records: Iterable[Record], epoch: Callable[[], float | None] | None = None
    ) -> Iterator[Record]:
        """The records that pass, in order. ``epoch`` is asked for each record: a
        capture reader knows its first packet's time only once it has read it."""
        pattern = self._pattern() if self.methods else None
        for record in records:
            if self._matches(record, pattern, epoch() if epoch is not None else None):
                yield record

    def matches(self, record: Record, epoch: float | None = None) -> bool:
        return self._matches(record, self._pattern() if self.methods else None, epoch)

    def _matches(
        self, record: Record, pattern: re.Pattern[str] | None, epoch: float | None
    ) -> bool:
        if self.connections and record.connection.index not in self.connections:
            return False
        if self.direction is not None and record.direction is not self.direction:
            return False
        if self.timed:
            if record.time is None:
                return False
            moment = record.time - (epoch if epoch is not None else 0.0)
            if self.since is not None and moment < self.since:
                return False
            if self.until is not None and moment > self.until:
                return False
        if (
            self.channels
            and isinstance(record, (FrameRecord, MessageRecord))
            and record.channel not in self.channels
        ):
            return False
        if pattern is not None:
            if isinstance(record, MessageRecord):
                method = record.message.method
            elif isinstance(record, FrameRecord) and isinstance(record.frame, MethodFrame):
                method = record.frame.method
            else:
                return False
            names = (method.NAME.lower(), type(method).__qualname__.lower())
            if not any(pattern.fullmatch(name) for name in names):
                return False
        return True
