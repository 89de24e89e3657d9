"""Hex dumps: plain hex, and offset-prefixed dumps (Wireshark's "Follow TCP Stream",
``hexdump -C``, ``xxd``)."""

from __future__ import annotations

import re
from typing import Final

from ._input import SNIFF
from ._records import Endpoint

__all__ = ["HexParser", "looks_like_hex"]

_HEX_PAIR = re.compile(r"^[0-9A-Fa-f]{2}$")
_HEX_QUAD = re.compile(r"^[0-9A-Fa-f]{4}$")
_PLAIN_HEX = re.compile(r"^(?:(?:0x)?[0-9A-Fa-f]{2})+$")
_DUMP_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<offset>[0-9A-Fa-f]{6,16})(?P<colon>:?) +(?P<rest>.*)$"
)
_OFFSET_ONLY = re.compile(r"^[0-9A-Fa-f]{6,16}$")
_NODE_LINE = re.compile(r"^Node (?P<node>[01]): (?P<address>.+):(?P<port>\d+)$")


class HexParser:
    """Hex dump lines -> pieces ``(side, gap before, bytes)``.

    Two layouts: plain hex (``xxd -p``, space-separated bytes, optional ``0x``), and
    offset-prefixed dumps (Wireshark's and tshark's "Follow TCP Stream" hex output,
    ``hexdump -C``, ``xxd``), whose offsets are checked for gaps and overlaps. In the
    follow-stream output the second node's lines are indented. ``hexdump``'s ``*``
    (the line above repeats up to the next offset) and its closing offset-only line are
    understood.
    """

    _REPEAT_CHUNK: Final = 64 * 1024

    def __init__(self) -> None:
        self.layout: str | None = None
        self.expected: dict[int, int] = {}
        self.nodes: dict[int, Endpoint] = {}
        self.last = b""  # the previous line's bytes, for "*"
        self.repeat = False

    def line(self, line: str) -> list[tuple[int, int, bytes]]:
        stripped = line.strip()
        if not stripped or stripped.startswith(("=", "Follow:", "Filter:", "#")):
            return []
        node = _NODE_LINE.match(stripped)
        if node:
            address = node["address"].strip("[]")
            self.nodes[int(node["node"])] = Endpoint(address, int(node["port"]))
            return []
        if self.layout is None:
            self.layout = "dump" if self._dump(line) is not None else "plain"
        if self.layout == "plain":
            return [(0, 0, self._plain(stripped))]
        if stripped == "*":
            self.repeat = True
            return []
        if _OFFSET_ONLY.match(stripped):  # hexdump's last line: where the data ended
            return self._repeated(0, int(stripped, 16))
        parsed = self._dump(line)
        if parsed is None:
            raise ValueError(f"not an offset-prefixed hex dump line: {stripped[:60]!r}")
        side, offset, data = parsed
        pieces = self._repeated(side, offset)
        expected = self.expected.get(side, offset)
        gap = 0
        if offset > expected:
            gap = offset - expected
        elif offset < expected:
            data = data[expected - offset :]  # bytes shown twice
            offset = expected
        self.expected[side] = offset + len(data)
        self.last = data
        pieces.append((side, gap, data))
        return pieces

    def _repeated(self, side: int, offset: int) -> list[tuple[int, int, bytes]]:
        """The bytes a ``*`` line stood for, up to ``offset``."""
        if not self.repeat:
            return []
        self.repeat = False
        start = self.expected.get(side, offset)
        if not self.last or offset <= start:
            return []
        count = offset - start
        block = self.last * max(1, self._REPEAT_CHUNK // len(self.last))
        pieces = []
        while count > 0:
            piece = block[:count]
            pieces.append((side, 0, piece))
            count -= len(piece)
        self.expected[side] = offset
        return pieces

    @staticmethod
    def _plain(stripped: str) -> bytes:
        tokens = stripped.split()
        digits = []
        for token in tokens:
            if not _PLAIN_HEX.match(token):
                raise ValueError(f"not hex: {token[:20]!r}")
            digits.append(token.replace("0x", ""))
        return bytes.fromhex("".join(digits))

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


def looks_like_hex(head: bytes) -> bool:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    lines = text.splitlines()
    if len(head) == SNIFF and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    parser = HexParser()
    seen = False
    for line in lines[:50]:
        try:
            if parser.line(line):
                seen = True
        except ValueError:
            return False
    return seen or bool(parser.nodes)
