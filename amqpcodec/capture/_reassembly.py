"""TCP reassembly: one direction's segments put in sequence order.

What was already delivered (retransmissions, overlaps: the first copy wins) is dropped,
and a *gap* is reported when bytes are missing from the capture (the peer acknowledged
them, too much arrived beyond them, or the capture ended).
"""

from __future__ import annotations

import heapq
from typing import Final, TypeAlias

from ._limits import DEFAULT_REORDER_LIMIT, SEGMENT_COST

__all__ = ["SEQ_MASK", "Chunk", "Reassembler"]

_SEQ_MOD: Final = 1 << 32
SEQ_MASK: Final = _SEQ_MOD - 1
_HALF_SEQ: Final = 1 << 31


class Reassembler:
    """Puts the segments of one direction of a TCP connection in order.

    Stream offsets count payload bytes from the first one (after the SYN, or the first
    segment seen when the SYN was not captured) and do not wrap as sequence numbers
    do. ``segment``/``ack``/``flush`` return chunks ``(data, size, time)``: data is None
    for a gap of ``size`` missing bytes.
    """

    __slots__ = (
        "_count",
        "_heap",
        "_pending",
        "acked",
        "fin",
        "limit",
        "next_seq",
        "offset",
        "syn_seen",
    )

    def __init__(self, limit: int = DEFAULT_REORDER_LIMIT) -> None:
        self.next_seq: int | None = None  # sequence number of stream offset ``offset``
        self.offset = 0  # stream offset of the next byte to deliver
        self.syn_seen = False
        self.acked = 0  # highest stream offset the peer acknowledged
        self.fin: int | None = None  # stream offset of the FIN
        self.limit = limit
        self._heap: list[tuple[int, int, bytes, float | None]] = []
        self._pending = 0
        self._count = 0

    @property
    def held_back(self) -> bool:
        """Whether segments are held waiting for missing bytes before them."""
        return bool(self._heap)

    @property
    def pending(self) -> int:
        """What the bytes held back waiting for missing ones before them cost (each
        segment: its bytes and ``SEGMENT_COST``)."""
        return self._pending

    def syn(self, seq: int) -> None:
        if self.next_seq is None:
            self.next_seq = (seq + 1) & SEQ_MASK
            self.syn_seen = True

    def _distance(self, seq: int) -> int:
        assert self.next_seq is not None
        return ((seq - self.next_seq + _HALF_SEQ) & SEQ_MASK) - _HALF_SEQ

    def segment(self, seq: int, data: bytes, ts: float | None) -> list[Chunk]:
        if self.next_seq is None:
            self.next_seq = seq  # no SYN: the stream starts here
        rel = self._distance(seq)
        out: list[Chunk] = []
        if rel <= 0:
            if -rel >= len(data):
                return out  # a retransmission of what was delivered
            if rel:
                data = data[-rel:]
            self._deliver(data, ts, out)
            if self._heap:
                self._drain(out)
            return out
        self._count += 1
        heapq.heappush(self._heap, (self.offset + rel, self._count, data, ts))
        self._pending += len(data) + SEGMENT_COST
        while self._pending > self.limit:
            self._skip_to_first(out)
        return out

    def skip(self, seq: int, size: int) -> list[Chunk]:
        """``size`` bytes from ``seq`` on are known missing from the capture (the packet
        that carried them was cut by the snapshot length): when the stream has reached
        them, report them as a gap at once rather than when later data shows it."""
        out: list[Chunk] = []
        if self.next_seq is not None and self._distance(seq) == 0 and size > 0:
            out.append((None, size, None))
            self._advance(size)
            if self._heap:
                self._drain(out)
        return out

    def ack(self, ack: int) -> list[Chunk]:
        """The peer acknowledged everything before ``ack``: bytes before it that the
        capture does not have were lost from the capture, not from the connection."""
        if self.next_seq is None:
            return []
        rel = self._distance(ack)
        if rel <= 0:
            return []
        target = self.offset + rel
        if self.fin is not None:
            target = min(target, self.fin)
        self.acked = max(self.acked, target)
        out: list[Chunk] = []
        while self._heap and self._heap[0][0] < target:
            self._skip_to_first(out)
        return out

    def finish(self, seq: int) -> None:
        """A FIN at sequence number ``seq``."""
        if self.next_seq is not None and self.fin is None:
            self.fin = self.offset + self._distance(seq)

    def flush(self) -> list[Chunk]:
        """The connection is over: deliver what is held, reporting every gap."""
        out: list[Chunk] = []
        while self._heap:
            self._skip_to_first(out)
        end = self.acked if self.fin is None else min(self.acked, self.fin)
        # An acknowledgement one past the data is a FIN we did not capture, not data.
        if end - self.offset > (1 if self.fin is None else 0):
            out.append((None, end - self.offset, None))
            self._advance(end - self.offset)
        return out

    def _deliver(self, data: bytes, ts: float | None, out: list[Chunk]) -> None:
        out.append((data, len(data), ts))
        self._advance(len(data))

    def _advance(self, size: int) -> None:
        assert self.next_seq is not None
        self.offset += size
        self.next_seq = (self.next_seq + size) & SEQ_MASK

    def _drain(self, out: list[Chunk]) -> None:
        heap = self._heap
        while heap and heap[0][0] <= self.offset:
            start, _, data, ts = heapq.heappop(heap)
            self._pending -= len(data) + SEGMENT_COST
            if start + len(data) <= self.offset:
                continue  # wholly overlapped by what was delivered
            self._deliver(data[self.offset - start :], ts, out)

    def _skip_to_first(self, out: list[Chunk]) -> None:
        start, _, _, ts = self._heap[0]
        if start > self.offset:
            out.append((None, start - self.offset, ts))
            self._advance(start - self.offset)
        self._drain(out)


Chunk: TypeAlias = tuple[bytes | None, int, float | None]
