"""The input as a byte stream: opening it, the sniffed head put back, and the reads a
damaged container header would make refused."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, Final, TypeVar, cast

from ._records import CaptureError, CaptureStats

__all__ = [
    "COMPRESSIONS",
    "MAX_RECORD",
    "SNIFF",
    "Input",
    "closing",
    "decompressing",
    "file_size",
    "read_exactly",
    "read_head",
]

MAX_RECORD: Final = 64 * 1024 * 1024  # no sane pcap/pcapng record is larger
SNIFF: Final = 4096  # bytes read first to tell the format

_T = TypeVar("_T")


class Input(io.RawIOBase):
    """The input with its sniffed head put back; counts what was read and refuses the
    absurd reads a damaged capture header would ask for."""

    def __init__(
        self, stream: IO[bytes], head: bytes, stats: CaptureStats, count: bool = True
    ) -> None:
        super().__init__()
        self._stream = stream
        self._head = head
        self._stats = stats
        self._count = count  # False: bytes out of a decompressor (the file's are counted)
        self.cut = False

    def readable(self) -> bool:
        return True

    @property
    def counts(self) -> bool:
        """Whether reads count toward ``bytes_read`` (False: a decompressor's output)."""
        return self._count

    def read_chunk(self, size: int) -> bytes:
        """Up to ``size`` bytes, as one read of the stream gives them (a pipe's bytes as
        they arrive, without waiting for ``size``); b"" at the end. Not counted, and the
        end of the input is not a cut here: the caller knows where its records end."""
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
            return data
        read1 = getattr(self._stream, "read1", None)
        try:
            return bytes(read1(size) if read1 is not None else self._stream.read(size))
        except (OSError, lzma.LZMAError, zlib.error) as exc:
            raise CaptureError(f"the input cannot be read: {exc}") from None

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
            try:
                more = self._stream.read(size - len(data))
            except EOFError:  # a compressed stream cut short
                self.cut = True
                self._stats.warnings.append("the compressed file is cut short")
                self._stats.incomplete.append("the compressed file is cut short")
                break
            except (OSError, lzma.LZMAError, zlib.error) as exc:
                raise CaptureError(f"the input cannot be read: {exc}") from None
            if not more:
                if data:
                    self.cut = True  # the file ends inside something
                break
            data += more
        if self._count:
            self._stats.bytes_read += len(data)
        return data


# Compressed input [RFC 1952; bzip2's and xz's file formats]: read through the standard
# library's decompressors, which stream (memory does not grow with the file).
COMPRESSIONS: Final = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


def decompressing(name: str, source: Input) -> IO[bytes]:
    """A decompressed view of ``source``."""
    compressed = cast(IO[bytes], source)
    if name == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=compressed, mode="rb"))
    if name == "bzip2":
        return cast(IO[bytes], bz2.BZ2File(compressed, mode="rb"))
    return cast(IO[bytes], lzma.LZMAFile(compressed, mode="rb"))


def closing(records: Iterator[_T], stream: IO[bytes]) -> Iterator[_T]:
    with stream:
        yield from records


def read_head(stream: IO[bytes], size: int, enough: Callable[[bytes], bool]) -> bytes:
    """Up to ``size`` bytes to sniff the format from. A file is read for all of them; a
    pipe (standard input, a FIFO: ``tcpdump -U -w - | amqpcodec decode -``) only until
    ``enough`` says the bytes already there decide, so that a live capture is not held
    back until ``size`` bytes have arrived."""
    read1 = getattr(stream, "read1", None)
    try:
        seekable = stream.seekable()
    except (AttributeError, OSError, ValueError):
        seekable = False
    if read1 is None or seekable:
        return read_exactly(stream, size)
    head = b""
    while len(head) < size and not enough(head):
        piece = read1(size - len(head))
        if not piece:
            break
        head += piece
    return head


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
