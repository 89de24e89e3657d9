"""The capture reader's fast paths give exactly what the general paths give.

Each fast path (pcap records cut out of chunks instead of read through dpkt's reader;
runs of whole frames decoded where they are, in one call, instead of one at a time from
a buffer) is run side by side with the general one on the captures of tests/data and on
damaged and hostile variants of them (cut at many places, bytes overwritten or cut out,
lengths rewritten, other byte orders and time resolutions, a stream that gives a few
bytes per read, any split of a stream), and must yield the same values, statistics,
warnings and errors.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amqpcodec.capture import CaptureError, CaptureStats
from amqpcodec.capture._input import SNIFF, Input
from amqpcodec.capture._pcap import pcap_packets, pcapng_packets
from amqpcodec.capture._stream import INPUT_START, Cut, FrameStream, Note

pytest.importorskip("dpkt")

DATA = Path(__file__).resolve().parent / "data"
PCAPS = sorted(DATA.rglob("*.pcap"))


class Trickle(io.RawIOBase):
    """A stream that gives at most ``step`` bytes per read, as a pipe may."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__()
        self.data = memoryview(data)
        self.pos = 0
        self.step = step

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def read(self, size: int | None = -1) -> bytes:
        size = self.step if size is None or size < 0 else min(size, self.step)
        piece = bytes(self.data[self.pos : self.pos + size])
        self.pos += len(piece)
        return piece


class _General(Input):
    """An input that takes the general path (dpkt's reader, as compressed input does)
    yet counts what it reads as an uncompressed file does, so that the figures compare."""

    @property
    def counts(self) -> bool:
        return False


def _read(data: bytes, general: bool, step: int | None = None) -> tuple[Any, ...]:
    """What pcap_packets gives for ``data``: the packets, then the error (if any), the
    statistics and the cut flag."""
    stats = CaptureStats()
    stats.size = len(data)
    head = data[:SNIFF]
    stream: Any
    if step is None:
        stream = io.BytesIO(data)
        stream.seek(len(head))
    else:
        stream = Trickle(data, step)
        stream.pos = len(head)
    source = (_General if general else Input)(stream, head, stats)
    packets: list[tuple[float, int, bytes]] = []
    error = None
    try:
        for packet in pcap_packets(source, stats):
            packets.append(packet)
    except CaptureError as exc:
        error = str(exc)
    return (
        packets,
        error,
        stats.packets,
        stats.bytes_read,
        stats.warnings,
        stats.incomplete,
        source.cut,
    )


def _variants(data: bytes) -> Iterator[tuple[str, bytes]]:
    yield "whole", data
    records = list(_record_offsets(data))
    for cut in sorted({*range(0, 40), *(o + d for o in records[:6] for d in (1, 8, 15, 16, 17))}):
        if cut < len(data):
            yield f"cut at {cut}", data[:cut]
    for at in records[1:4]:
        for caplen in (0, 1, 0xFFFFFFFF, 64 * 1024 * 1024 + 1, len(data)):
            damaged = bytearray(data)
            struct.pack_into(_order(data) + "I", damaged, at + 8, caplen)
            yield f"caplen {caplen} at {at}", bytes(damaged)
    nano = bytearray(data)
    nano[:4] = b"\x4d\x3c\xb2\xa1" if _order(data) == "<" else b"\xa1\xb2\x3c\x4d"
    yield "nanoseconds", bytes(nano)
    yield "big-endian", _swapped(data)


def _order(data: bytes) -> str:
    return "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"


def _record_offsets(data: bytes) -> Iterator[int]:
    order = _order(data)
    at = 24
    while at + 16 <= len(data):
        yield at
        (caplen,) = struct.unpack_from(order + "I", data, at + 8)
        at += 16 + caplen


def _swapped(data: bytes) -> bytes:
    """The same capture written in the other byte order."""
    order = _order(data)
    other = ">" if order == "<" else "<"
    out = bytearray(struct.pack(other + "IHHiIII", *struct.unpack_from(order + "IHHiIII", data)))
    for at in _record_offsets(data):
        fields = struct.unpack_from(order + "IIII", data, at)
        out += struct.pack(other + "IIII", *fields) + data[at + 16 : at + 16 + fields[2]]
    return bytes(out)


@pytest.mark.parametrize("path", PCAPS, ids=lambda p: p.name)
def test_pcap_records_fast_path_is_dpkts_reader(path: Path) -> None:
    data = path.read_bytes()
    seen: set[str] = set()
    for name, variant in _variants(data):
        expected = _read(variant, general=True)
        assert _read(variant, general=False) == expected, name
        _, error, _, _, _, incomplete, cut = expected
        seen |= {"error"} if error else {"cut"} if cut and incomplete else {"packets"}
    assert seen == {"error", "cut", "packets"}  # damage of every kind was compared
    # Read a few bytes at a time, as from a pipe: records straddle every read.
    for step in (1, 7, 100, 4096):
        assert _read(data, general=False, step=step) == _read(data, general=True), step


def test_pcap_fast_path_is_taken() -> None:
    """The comparison above compares two different readers."""
    data = PCAPS[0].read_bytes()
    stats = CaptureStats()
    source = Input(io.BytesIO(data), b"", stats)
    packets = pcap_packets(source, stats)
    next(packets)
    assert packets.gi_yieldfrom is not None  # type: ignore[attr-defined]
    assert packets.gi_yieldfrom.__name__ == "_pcap_records"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
# Frame streams: whole frames decoded where they are, in runs, against one at a time


class _OneAtATime(FrameStream):
    """The general path: every frame buffered, then decoded by itself."""

    __slots__ = ()

    def _decode_run(self, buf: bytes | bytearray, out: list[Any]) -> int:
        return 0


def _view(item: Any) -> tuple[Any, ...]:
    if isinstance(item, Note):
        error = item.error
        where = None if error is None else (type(error), str(error), getattr(error, "offset", None))
        return ("note", item.kind, item.offset, item.size, item.message, where)
    if isinstance(item, Cut):
        return ("cut", item.frame.encode(), item.offset, item.size)
    frame, offset, size = item
    return ("frame", type(frame), frame.encode(), offset, size)


def _stream_output(
    stream_class: type[FrameStream], pieces: list[bytes], limit: int, resync: bool
) -> list[tuple[Any, ...]]:
    stream = stream_class(limit, False, INPUT_START, resync)
    out: list[Any] = []
    for piece in pieces:
        stream.feed(piece, out)
    stream.finish(out)
    return [_view(item) for item in out] + [(stream.base, stream.state, stream.ignored)]


def _splits(data: bytes, rng: random.Random) -> Iterator[list[bytes]]:
    yield [data]
    yield [data[i : i + 1] for i in range(min(len(data), 3000))]
    for _ in range(3):
        cuts = sorted(rng.sample(range(1, len(data)), min(20, len(data) - 1)))
        yield [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


STREAMS = sorted((DATA / "captures").glob("*.bin"))


@pytest.mark.parametrize("path", STREAMS, ids=lambda p: p.name)
def test_frame_runs_decode_as_frames_one_at_a_time(path: Path) -> None:
    rng = random.Random(path.name)
    data = path.read_bytes()
    variants = [data]
    for _ in range(12):  # damaged: bytes overwritten, or cut out
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        variants.append(bytes(damaged))
        start = rng.randrange(len(data))
        variants.append(data[:start] + data[start + rng.randint(1, 64) :])
    kinds: set[str] = set()
    for variant in variants:
        for limit in (0, 4096, 131072):
            for resync in (False, True):
                for pieces in _splits(variant, rng):
                    expected = _stream_output(_OneAtATime, pieces, limit, resync)
                    assert _stream_output(FrameStream, pieces, limit, resync) == expected
                    kinds |= {view[0] for view in expected[:-1]}
    assert {"frame", "note"} <= kinds  # frames, and malformed ones, were compared


# ---------------------------------------------------------------------------------------
# pcapng: enhanced packet blocks read with struct, against dpkt's block classes


def _pcapng_read(data: bytes) -> tuple[Any, ...]:
    stats = CaptureStats()
    source = Input(io.BytesIO(data), b"", stats)
    packets: list[tuple[float, int, bytes]] = []
    error = None
    try:
        for packet in pcapng_packets(source, stats):
            packets.append(packet)
    except CaptureError as exc:
        error = str(exc)
    return packets, error, stats.packets, stats.warnings, stats.incomplete


def _block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def _epb(order: str, stamp: int, data: bytes, options: bytes = b"", trailer: int = 0) -> bytes:
    body = struct.pack(order + "IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(data), len(data))
    block = _block(order, 6, body + data + b"\0" * (-len(data) % 4) + options)
    if trailer:
        block = block[:-4] + struct.pack(order + "I", trailer)
    return block


def _option(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _pcapng_of(path: Path, order: str, rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """The packets of a pcap file as pcapng, whole and with damaged or unusual blocks."""
    data = path.read_bytes()
    pcap_order = _order(data)
    (linktype,) = struct.unpack_from(pcap_order + "I", data, 20)
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(order, 1, struct.pack(order + "HHI", linktype, 0, 262144))
    epbs = []
    for at in _record_offsets(data):
        seconds, fraction, caplen, _ = struct.unpack_from(pcap_order + "IIII", data, at)
        packet = data[at + 16 : at + 16 + caplen]
        epbs.append(_epb(order, seconds * 1_000_000 + fraction, packet))
    whole = shb + idb + b"".join(epbs)
    yield "whole", whole
    for cut in sorted(rng.sample(range(1, len(whole)), 12)):
        yield f"cut at {cut}", whole[:cut]
    odd = [
        _epb(order, 1, b"x" * 5, _option(order, 1, b"a comment") + _option(order, 0, b"")),
        _epb(order, 2, b"y" * 8, _option(order, 1, b"\xff\xfe not UTF-8")),
        _epb(order, 3, b"z" * 4, trailer=99),
        _block(order, 6, struct.pack(order + "IIII", 0, 0, 4, 0)),  # 28 bytes: too short
        _epb(order, 4, b"w" * 12)[:-20] + struct.pack(order + "IIIII", 9, 9, 9, 9, 32),
    ]
    for number, block in enumerate(odd):
        where = rng.randrange(len(epbs) + 1)
        yield f"odd block {number}", shb + idb + b"".join([*epbs[:where], block, *epbs[where:]])


@pytest.mark.parametrize("path", PCAPS[:6], ids=lambda p: p.name)
@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_packet_blocks_fast_path_is_dpkts_blocks(
    path: Path, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amqpcodec.capture import _pcap

    rng = random.Random(f"{path.name}{order}")
    variants = list(_pcapng_of(path, order, rng))
    variants += [(p.name, p.read_bytes()) for p in sorted(DATA.rglob("*.pcapng"))]
    taken = []
    original = _pcap._epb

    def counted(*args: Any) -> Any:
        result = original(*args)
        taken.append(result is not None)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(_pcap, "_epb", counted)
        fast = [_pcapng_read(data) for _, data in variants]
    assert True in taken and False in taken  # both readers were compared
    monkeypatch.setattr(_pcap, "_epb", lambda *args: None)  # dpkt's classes for every block
    general = [_pcapng_read(data) for _, data in variants]
    for (name, _), got, expected in zip(variants, fast, general, strict=True):
        assert got == expected, name
    assert any(error for _, error, *_ in general) and any(p for p, *_ in general)
