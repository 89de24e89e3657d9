"""The input as a byte stream: opening it, the sniffed head put back, and the reads a
damaged container header would make refused."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from typing import IO, Any, Final, TypeVar

from ._records import CaptureError, CaptureStats

__all__ = ["MAX_RECORD", "SNIFF", "Input", "closing", "file_size", "read_exactly"]

MAX_RECORD: Final = 64 * 1024 * 1024  # no sane pcap/pcapng record is larger
SNIFF: Final = 4096  # bytes read first to tell the format

_T = TypeVar("_T")


class Input(io.RawIOBase):
    """The input with its sniffed head put back; counts what was read and refuses the
    absurd reads a damaged capture header would ask for."""

    def __init__(self, stream: IO[bytes], head: bytes, stats: CaptureStats) -> None:
        super().__init__()
        self._stream = stream
        self._head = head
        self._stats = stats
        self.cut = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view, view.cast("B") as target:
            data = self.read(len(target))
            target[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise ValueError("the input is never read whole")
        if size > MAX_RECORD:
            raise CaptureError(f"a capture record of {size} bytes: the file is damaged")
        data = b""
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        while len(data) < size:
            more = self._stream.read(size - len(data))
            if not more:
                if data:
                    self.cut = True  # the file ends inside something
                break
            data += more
        self._stats.bytes_read += len(data)
        return data


def closing(records: Iterator[_T], stream: IO[bytes]) -> Iterator[_T]:
    with stream:
        yield from records


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    out = b""
    while len(out) < size:
        piece = stream.read(size - len(out))
        if not piece:
            break
        out += piece
    return out


def file_size(stream: IO[bytes]) -> int | None:
    try:
        info = os.fstat(stream.fileno())
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None
