"""Hex dumps: plain hex, and offset-prefixed dumps (Wireshark's "Follow TCP Stream",
``hexdump -C``, ``xxd``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from ._input import SNIFF
from ._limits import DEFAULT_MAX_HEX_REPEAT
from ._records import Endpoint

__all__ = ["HexParser", "looks_like_hex", "text_lines"]

_HEX_PAIR = re.compile(r"^[0-9A-Fa-f]{2}$")
_HEX_QUAD = re.compile(r"^[0-9A-Fa-f]{4}$")
_DUMP_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<offset>[0-9A-Fa-f]{6,16})(?P<colon>:?) +(?P<rest>.*)$"
)
_OFFSET_ONLY = re.compile(r"^[0-9A-Fa-f]{6,16}$")
_NODE_LINE = re.compile(r"^Node (?P<node>[01]): (?P<address>.+):(?P<port>\d+)$")
_HEX_DIGITS = re.compile(r"[0-9A-Fa-f]*")
_SKIP: Final = ("=", "Follow:", "Filter:", "#")
# What str.split() takes for whitespace within a line of ASCII text.
_SPACES: Final = str.maketrans("\t\x0b\x0c\x1c\x1d\x1e\x1f", "       ")


class HexParser:
    """Hex dump text -> pieces ``(side, gap before, bytes)``.

    Two layouts: plain hex (``xxd -p``, space-separated bytes, optional ``0x``), and
    offset-prefixed dumps (Wireshark's and tshark's "Follow TCP Stream" hex output,
    ``hexdump -C``, ``xxd``), whose offsets are checked for gaps and overlaps. In the
    follow-stream output the second node's lines are indented. ``hexdump``'s ``*``
    (the line above repeats up to the next offset) and its closing offset-only line are
    understood.

    Bounds: text arrives in pieces (:meth:`piece`) and at most ``LINE_LIMIT``
    characters of a line are held; a longer plain-hex line is converted as it streams
    in, a longer dump line is cut there (only its leading columns count). Repeated
    bytes are produced ``REPEAT_CHUNK`` at a time as they are consumed, and all the
    ``*`` lines of a dump together may stand for at most ``max_repeat`` bytes (beyond
    that the dump is refused with ValueError): a few lines of text cannot make the
    reader invent gigabytes.
    """

    REPEAT_CHUNK: Final = 64 * 1024
    LINE_LIMIT: Final = 64 * 1024

    def __init__(self, max_repeat: int = DEFAULT_MAX_HEX_REPEAT, invent: bool = True) -> None:
        self.layout: str | None = None
        self.expected: dict[int, int] = {}
        self.nodes: dict[int, Endpoint] = {}
        self.last = b""  # the previous line's bytes, for "*"
        self.repeat = False
        self.max_repeat = max_repeat
        self.invent = invent  # False: "*" lines only move the offset (sniffing)
        self.repeated = 0  # bytes the "*" lines stood for so far
        self._held: list[str] = []  # the start of the current line
        self._held_size = 0
        self._long: str | None = None  # how the rest of a long line is read
        self._carry = ""  # an unfinished plain-hex token of a long line

    def piece(self, text: str, end: bool) -> Iterator[tuple[int, int, bytes]]:
        """Take the next piece of the current line (``end``: the line ends after it)."""
        if self._long == "plain":
            yield from self._stream_plain(text, end)
        elif self._long is None:
            self._held.append(text)
            self._held_size += len(text)
            if end:
                line = "".join(self._held)
                self._held.clear()
                self._held_size = 0
                yield from self.line(line)
                return
            if self._held_size >= self.LINE_LIMIT:
                line = "".join(self._held)
                self._held.clear()
                self._held_size = 0
                yield from self._long_line(line, end)
        if end:
            self._long = None

    def _long_line(self, start: str, end: bool) -> Iterator[tuple[int, int, bytes]]:
        stripped = start.strip()
        if self.layout is None and stripped and not stripped.startswith(_SKIP):
            self.layout = "dump" if self._dump(start) is not None else "plain"
        if self.layout == "plain" and stripped and not stripped.startswith(_SKIP):
            self._long = "plain"
            yield from self._stream_plain(start, end)
        else:
            self._long = "cut"  # a dump line's hex is at its start; the rest is text
            yield from self.line(start)

    def _stream_plain(self, text: str, end: bool) -> Iterator[tuple[int, int, bytes]]:
        text = self._carry + text.translate(_SPACES)
        head, space, tail = text.rpartition(" ")
        if end:
            head, tail = text, ""
        if space or end:
            if head.strip():
                yield (0, 0, self._plain(head))
            self._carry = tail
            return
        # One token so far: convert the whole units it starts with, carry the rest
        # (at most an unfinished "0xh").
        prefix = text.rfind("0x")
        digits = len(text) - prefix - 2 if prefix >= 0 else len(text)
        done = len(text) - digits % 2
        if prefix >= 0 and done == prefix + 2:
            done = prefix
        if done:
            yield (0, 0, bytes.fromhex(_token_digits(text[:done])))
        self._carry = text[done:]

    def line(self, line: str) -> Iterator[tuple[int, int, bytes]]:
        stripped = line.strip()
        if not stripped or stripped.startswith(_SKIP):
            return
        node = _NODE_LINE.match(stripped)
        if node:
            address = node["address"].strip("[]")
            self.nodes[int(node["node"])] = Endpoint(address, int(node["port"]))
            return
        if self.layout is None:
            self.layout = "dump" if self._dump(line) is not None else "plain"
        if self.layout == "plain":
            yield (0, 0, self._plain(stripped))
            return
        if stripped == "*":
            self.repeat = True
            return
        if _OFFSET_ONLY.match(stripped):  # hexdump's last line: where the data ended
            yield from self._repeated(0, int(stripped, 16))
            return
        parsed = self._dump(line)
        if parsed is None:
            raise ValueError(f"not an offset-prefixed hex dump line: {stripped[:60]!r}")
        side, offset, data = parsed
        yield from self._repeated(side, offset)
        expected = self.expected.get(side, offset)
        gap = 0
        if offset > expected:
            gap = offset - expected
        elif offset < expected:
            data = data[expected - offset :]  # bytes shown twice
            offset = expected
        self.expected[side] = offset + len(data)
        self.last = data
        yield (side, gap, data)

    def _repeated(self, side: int, offset: int) -> Iterator[tuple[int, int, bytes]]:
        """The bytes a ``*`` line stood for, up to ``offset``, a chunk at a time."""
        if not self.repeat:
            return
        self.repeat = False
        start = self.expected.get(side, offset)
        if not self.last or offset <= start:
            return
        count = offset - start
        self.expected[side] = offset
        if not self.invent:
            return
        self.repeated += count
        if self.repeated > self.max_repeat:
            raise ValueError(
                f"its '*' lines stand for {self.repeated} bytes, over the limit of"
                f" {self.max_repeat} (max_hex_repeat)"
            )
        block = self.last * max(1, self.REPEAT_CHUNK // len(self.last))
        view = memoryview(block)
        while count > 0:
            piece = view[:count] if count < len(block) else block
            yield (side, 0, bytes(piece) if piece is not block else block)
            count -= len(piece)

    @staticmethod
    def _plain(stripped: str) -> bytes:
        if "0x" not in stripped:
            try:
                return bytes.fromhex(stripped)  # the common case in one pass
            except ValueError:
                pass  # find the token to blame (or whitespace fromhex does not take)
        return bytes.fromhex("".join(_token_digits(token) for token in stripped.split()))

    @staticmethod
    def _dump(line: str) -> tuple[int, int, bytes] | None:
        match = _DUMP_LINE.match(line.rstrip("\r\n"))
        if match is None:
            return None
        rest = match["rest"]
        tokens = rest.split()
        if not tokens:
            return None
        if match["colon"] and _HEX_QUAD.match(tokens[0]):
            region = rest[:40]  # xxd: 8 groups of 4 digits, then the text column
            pieces = region.split()
            if not all(_HEX_QUAD.match(p) or _HEX_PAIR.match(p) for p in pieces):
                return None
        else:
            region = rest[:49]  # 16 bytes "xx " with a gap after 8, then the text column
            pieces = region.split()
            if not pieces or not all(_HEX_PAIR.match(p) for p in pieces):
                return None
        side = 1 if match["indent"] else 0
        return side, int(match["offset"], 16), bytes.fromhex("".join(pieces))


def _token_digits(token: str) -> str:
    """The hex digits of one plain-hex token, ``(0x)?hh`` repeated. A "0x" in valid
    text always starts a unit (an "x" cannot follow a whole pair), so splitting at
    every "0x" gives the units' digits, each part a whole number of pairs."""
    parts = token.split("0x")
    digits = "".join(parts)
    if len(parts[0]) % 2 or not _HEX_DIGITS.fullmatch(digits):
        raise ValueError(f"not hex: {token[:20]!r}")
    for part in parts[1:]:
        if not part or len(part) % 2:
            raise ValueError(f"not hex: {token[:20]!r}")
    return digits


def text_lines(chunks: Iterator[bytes], size: int) -> Iterator[tuple[str, bool]]:
    """ASCII text in pieces of at most ``size`` characters: ``(text, end of line)``.
    Lines end at LF, CRLF or CR. Raises UnicodeDecodeError on a byte that is not ASCII."""
    cr = False  # the previous chunk ended with CR: a LF starting this one belongs to it
    open_line = False  # a piece of a line was given and its end was not
    for chunk in chunks:
        text = chunk.decode("ascii")
        if cr and text.startswith("\n"):
            text = text[1:]
        cr = text.endswith("\r")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        for line in lines[:-1]:
            yield from _pieces(line, size, True)
        open_line = open_line and len(lines) == 1
        if lines[-1]:
            yield from _pieces(lines[-1], size, False)
            open_line = True
    if open_line:
        yield "", True


def _pieces(line: str, size: int, end: bool) -> Iterator[tuple[str, bool]]:
    if len(line) <= size:
        yield line, end
        return
    for start in range(0, len(line), size):
        yield line[start : start + size], end and start + size >= len(line)


def looks_like_hex(head: bytes) -> bool:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    lines = text.splitlines()
    if len(head) == SNIFF and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    parser = HexParser(invent=False)
    seen = False
    for line in lines[:50]:
        try:
            for _ in parser.line(line):
                seen = True
        except ValueError:
            return False
    return seen or bool(parser.nodes)
