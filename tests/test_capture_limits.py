"""The capture reader's bounds: what hostile inputs may cost it, and what it says then.

Each test builds its input (small versions of the ones ``benchmarks/capture_limits.py``
measures at full size) and asserts the bound the reader documents: in work counted by
the reader itself, or in memory measured with tracemalloc.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hostile_captures as hostile
import pytest

from amqpcodec import BodyFrame, HeartbeatFrame, MethodFrame, ProtocolHeader, decode_frame, spec
from amqpcodec.capture import (
    DEFAULT_MAX_LISTED_CONNECTIONS,
    CaptureError,
    CaptureReader,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
    _stream,
    read_capture,
)
from amqpcodec.capture._hexdump import HexParser
from amqpcodec.capture._limits import CONNECTION_COST, DEFAULT_MAX_FRAME_SIZE, SEGMENT_COST

MiB = 1024 * 1024
CAPTURES = Path(__file__).parent / "data" / "captures"
HEARTBEAT = HeartbeatFrame().encode()


def frames_of(records: Iterable[Record]) -> Iterator[Any]:
    return (r.frame for r in records if isinstance(r, FrameRecord))


def notices_of(records: Iterable[Record], kind: NoticeKind | None = None) -> list[Notice]:
    return [r for r in records if isinstance(r, Notice) and kind in (None, r.kind)]


def peak_of(run: Any) -> tuple[Any, int]:
    """What ``run()`` returns and the peak of Python allocations while it ran."""
    _warm()
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _warm() -> None:
    """Import what reading a capture imports, so that a measurement does not count it."""
    list(read_capture(CAPTURES / "midstream.pcap"))


# -- hex dumps ---------------------------------------------------------------------------


@pytest.mark.parametrize("final", [0x0000FFFFFFFFFF10, 10 * 1024 * MiB])
def test_hex_repeat_bomb_is_refused(tmp_path: Path, final: int) -> None:
    path = tmp_path / "bomb.txt"
    hostile.hex_repeat_bomb(path, final)
    with pytest.raises(CaptureError, match=r"hex dump line 4: .*over the limit of 67108864"):
        list(read_capture(path))


def test_hex_repeats_are_streamed_and_counted_together() -> None:
    zeros = "00 " * 16
    text = f"00000000  {zeros}\n*\n00400000\n"  # 4 MiB of zeros: one skipped run
    reader = CaptureReader(max_hex_repeat=4 * MiB, input_format="hex")

    def notices() -> list[Notice]:
        return notices_of(reader.read(io.BytesIO(text.encode())))

    (skipped,), peak = peak_of(notices)
    assert (skipped.kind, skipped.size) == (NoticeKind.SKIPPED, 4 * MiB)
    assert peak < 1 * MiB  # the repeated bytes are never all held
    # Two repeats of 3 MiB each go over a limit of 4 MiB together.
    line = "00000000  " + HEARTBEAT.hex(" ") + "  " + HEARTBEAT.hex(" ") + "\n"
    text = line + "*\n" + f"00300000  {line[10:]}" + "*\n" + "00600000\n"
    with pytest.raises(CaptureError, match="line 5: its '\\*' lines stand for 6291424 bytes"):
        list(read_capture(io.BytesIO(text.encode()), max_hex_repeat=4 * MiB))


def test_one_long_hex_line_is_streamed() -> None:
    body = bytes(range(256)) * (MiB // 256)
    stream = ProtocolHeader().encode() + BodyFrame(1, body).encode() * 4
    text = stream.hex(" ").encode()  # one line of 12 MiB, 4 million tokens

    def payload() -> int:
        records = read_capture(io.BytesIO(text), input_format="hex")
        frames = frames_of(records)  # a generator's records, one at a time
        return sum(len(f.payload) for f in frames if isinstance(f, BodyFrame))

    total, peak = peak_of(payload)
    assert total == 4 * len(body)
    # The 1 MiB read and its text, a frame in the stream buffer and the frame: not the
    # 12 MiB line (read whole and split into tokens, it cost 40 times that).
    assert peak < 8 * MiB


@pytest.mark.parametrize("limit", [5, 6, 7, 16])
def test_long_plain_lines_split_anywhere(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    monkeypatch.setattr(HexParser, "LINE_LIMIT", limit)
    stream = ProtocolHeader().encode() + HEARTBEAT * 3
    spellings = [
        stream.hex(),
        "".join(f"0x{b:02x}" for b in stream),
        " ".join(f"0x{b:02x}" for b in stream),
        stream[:5].hex() + "\t" + stream[5:].hex(" ") + "  ",
    ]
    for spelling in spellings:
        for ending in ("", "\n", "\r\n", "\r"):
            text = (spelling + ending + HEARTBEAT.hex() + ending).encode()
            records = list(read_capture(io.BytesIO(text), input_format="hex"))
            assert list(frames_of(records)) == [ProtocolHeader()] + [HeartbeatFrame()] * 4, spelling
            assert not notices_of(records)


@pytest.mark.parametrize("bad", ["0x0x08", "08zz", "0800x", "08 0x"])
def test_long_plain_lines_are_still_checked(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setattr(HexParser, "LINE_LIMIT", 4)
    text = (HEARTBEAT.hex() + bad + "\n").encode()
    with pytest.raises(CaptureError, match="hex dump line 1: not hex"):
        list(read_capture(io.BytesIO(text), input_format="hex"))


def test_long_dump_lines_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the leading columns of an offset-prefixed line are hex; a text column as long
    as you like is not held."""
    monkeypatch.setattr(HexParser, "LINE_LIMIT", 64)
    pair = f"{HEARTBEAT.hex(' ')}  {HEARTBEAT.hex(' ')}"
    first = f"00000000  {pair}  |" + "x" * 1000 + "|\n"
    second = f"00000010  {pair}\n"
    comment = "# " + "y" * 1000 + "\n"
    records = list(read_capture(io.BytesIO((comment + first + second).encode())))
    assert list(frames_of(records)) == [HeartbeatFrame()] * 4


def test_hex_line_numbers_count_long_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HexParser, "LINE_LIMIT", 8)
    text = HEARTBEAT.hex() * 4 + "\n" + HEARTBEAT.hex() + "\nzz\n"
    with pytest.raises(CaptureError, match="hex dump line 3: not hex: 'zz'"):
        list(read_capture(io.BytesIO(text.encode()), input_format="hex"))


def test_frame_header_struct_is_what_hostile_inputs_use() -> None:
    assert struct.pack(">BHI", 8, 0, 0) + b"\xce" == HEARTBEAT


# -- hunting -----------------------------------------------------------------------------


class _Counting:
    """decode_frame, counting the payload bytes of the frames it was asked to decode."""

    def __init__(self) -> None:
        self.work = 0

    def __call__(self, data: Any, offset: int = 0, **options: Any) -> Any:
        if len(data) - offset >= 7:
            size = struct.unpack_from(">I", data, offset + 3)[0]
            if offset + 7 + size < len(data):  # complete: decoding it costs its size
                self.work += size
        return decode_frame(data, offset, **options)


@pytest.mark.parametrize("chunk", [256 * 1024, 1500])
def test_hunting_work_is_linear_in_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    path = tmp_path / "trap.bin"
    hostile.resync_trap(path, 256 * 1024)
    trap = path.read_bytes()
    tail = HEARTBEAT + MethodFrame(1, spec.Queue.Declare(queue="q")).encode()
    data = trap + tail
    counting = _Counting()
    monkeypatch.setattr(_stream, "decode_frame", counting)
    stream = _stream.FrameStream(DEFAULT_MAX_FRAME_SIZE, True, _stream.INPUT_START, False)
    out: list[Any] = []
    for start in range(0, len(data), chunk):
        stream.feed(data[start : start + chunk], out)
    stream.finish(out)
    # Each candidate's table spans the rest of the trap: decoding them all is quadratic
    # (8,192 candidates, 4 GiB decoded); the credit keeps the hunt within 4 bytes per
    # byte, and decoding in step costs each frame once more.
    assert stream.hunt_work <= _stream.HUNT_CREDIT * len(data)
    assert counting.work <= (_stream.HUNT_CREDIT + 1) * len(data)
    frames = [item[0] for item in out if isinstance(item, tuple)]
    assert frames == [HeartbeatFrame(), MethodFrame(1, spec.Queue.Declare(queue="q"))]
    (skipped,) = [item for item in out if isinstance(item, _stream.Note)]
    assert skipped.size == len(trap)


def test_the_resync_trap_reads_quickly_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "trap.bin"
    hostile.resync_trap(path, 1024 * 1024)
    (notice,) = read_capture(path)
    assert isinstance(notice, Notice)
    assert (notice.kind, notice.size) == (NoticeKind.SKIPPED, 1024 * 1024)


def test_a_candidate_waits_for_credit_rather_than_being_passed_over() -> None:
    frame = MethodFrame(1, spec.Queue.Declare(queue="q" * 200)).encode()
    stream = _stream.FrameStream(DEFAULT_MAX_FRAME_SIZE, True, _stream.INPUT_START, False)
    out: list[Any] = []
    stream.feed(b"\x00" * 3, out)
    stream.credit = 0  # as if earlier candidates had spent it all
    stream.feed(frame[:-1], out)
    stream.credit = 10  # less than the frame's payload: it must wait, not be skipped
    stream.feed(frame[-1:], out)
    assert out == []
    stream.feed(b"\x00" * 64, out)  # 256 bytes of credit more: enough
    assert out[1] == (MethodFrame(1, spec.Queue.Declare(queue="q" * 200)), 3, len(frame))


# -- the memory budget -------------------------------------------------------------------


def read_peak(path: Path, **options: Any) -> tuple[list[Record], int]:
    """Some records of ``path`` (messages, and the first 20 notices of each kind; the
    consumer keeps little) and the peak memory while it was read."""

    def run() -> list[Record]:
        kept: list[Record] = []
        seen: dict[NoticeKind, int] = {}
        for record in read_capture(path, **options):
            if isinstance(record, MessageRecord):
                kept.append(record)
            elif isinstance(record, Notice):
                seen[record.kind] = seen.get(record.kind, 0) + 1
                if seen[record.kind] <= 20:
                    kept.append(record)
        counts.update(seen)
        return kept

    counts: dict[NoticeKind, int] = {}
    records, peak = peak_of(run)
    read_peak.counts = counts  # type: ignore[attr-defined]
    return records, peak


def test_many_connections_that_only_say_hello(tmp_path: Path) -> None:
    path = tmp_path / "hello.pcap"
    hostile.header_only_connections(path, 8000)
    limit = 2 * MiB
    records, peak = read_peak(path, memory_limit=limit)
    evicted = notices_of(records, NoticeKind.EVICTED)
    # 8,000 connections at CONNECTION_COST each is 12 MiB: most are dropped, oldest first.
    kept = limit // CONNECTION_COST
    assert read_peak.counts[NoticeKind.EVICTED] == 8000 - kept  # type: ignore[attr-defined]
    assert [n.connection.index for n in evicted[:3]] == [0, 1, 2]
    assert evicted[0].size == CONNECTION_COST
    assert "memory_limit (2097152 bytes)" in evicted[0].message
    # The budget, and what is kept of every connection seen (stats.connections lists
    # them: about 300 bytes each).
    assert peak < limit * 1.25 + 8000 * 400 + MiB
    _, unbounded = read_peak(path)
    assert unbounded > peak + 6 * MiB


def test_listed_connections_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "hello.pcap"
    hostile.header_only_connections(path, 4000)

    def run(listed: int) -> tuple[CaptureReader, list[int]]:
        # A small memory_limit drops the connections' state, so what stays is the list.
        reader = CaptureReader(max_listed_connections=listed, memory_limit=256 * 1024)
        indexes = [
            r.connection.index
            for r in reader.read(path)
            if isinstance(r, FrameRecord) and isinstance(r.frame, ProtocolHeader)
        ]
        return reader, indexes

    (reader, indexes), small = peak_of(lambda: run(100))
    assert [info.index for info in reader.stats.connections] == list(range(100))
    assert reader.stats.connection_count == 4000
    assert indexes == list(range(4000))  # later connections are decoded and numbered
    assert [w for w in reader.stats.warnings if "max_listed_connections" in w] == [
        "more than 100 connections (max_listed_connections): the later ones are decoded"
        " but not listed"
    ]
    (reader, _), large = peak_of(lambda: run(DEFAULT_MAX_LISTED_CONNECTIONS))
    assert len(reader.stats.connections) == 4000 and not reader.stats.warnings
    assert large - small > 3900 * 200  # what listing each connection costs


def test_summary_keeps_per_connection_counts_of_listed_connections_only() -> None:
    from amqpcodec._decode import _Summary
    from amqpcodec._output import Style

    reader = CaptureReader(max_listed_connections=2)
    summary = _Summary(listed=2)
    for record in reader.read(CAPTURES / "report" / "three_connections.pcap"):
        summary.add(record)
    assert {index for index, _, _ in summary.counts} == {0, 1, -1}
    out = io.StringIO()
    summary.write(out, "x", reader.stats, Style(out))
    text = out.getvalue()
    assert "connections: 3, frames:" in text
    assert "  and 1 more, not listed (max_listed_connections)\n" in text
    assert "connection #1:" in text and "connection #2" not in text
    full = _Summary()
    for record in read_capture(CAPTURES / "report" / "three_connections.pcap"):
        full.add(record)
    full._tally()
    summary_rows = summary.rows
    assert summary_rows == full.rows  # the totals count every connection


def test_many_connections_each_inside_a_frame(tmp_path: Path) -> None:
    path = tmp_path / "unfinished.pcap"
    hostile.unfinished_frames(path, 24, 2 * MiB)  # 48 MiB held if nothing is dropped
    limit = 8 * MiB
    records, peak = read_peak(path, memory_limit=limit)
    evicted = notices_of(records, NoticeKind.EVICTED)
    assert evicted and all(n.size >= CONNECTION_COST for n in evicted)
    # The budget (buffers grow by an eighth at a time), and the frame being read on
    # top of it, which a buffer growing may hold twice for a moment.
    assert peak < limit * 1.25 + 3 * 2 * MiB + 2 * MiB
    _, unbounded = read_peak(path)
    assert unbounded > 48 * MiB  # what the budget saved


def test_out_of_order_segments_count_what_they_cost(tmp_path: Path) -> None:
    path = tmp_path / "reordered.pcap"
    hostile.out_of_order_segments(path, 20_000)  # 20,000 bytes, about 4 MB to hold
    limit = MiB
    records, peak = read_peak(path, reorder_limit=limit)
    held = limit // (1 + SEGMENT_COST)
    gaps = notices_of(records, NoticeKind.GAP)
    assert gaps[0].size == 1  # the missing first byte, declared once the limit was hit
    assert peak < 2 * limit + MiB
    # Counted at one byte each, all 20,000 would have been held (4 MB).
    assert held < 20_000


def test_messages_over_the_budget_are_given_out_as_partial(tmp_path: Path) -> None:
    path = tmp_path / "large.bin"
    hostile.large_message(path, 8 * MiB)
    limit = 2 * MiB
    records, peak = read_peak(path, messages=True, memory_limit=limit)
    (evicted,) = notices_of(records, NoticeKind.EVICTED)
    (partial,) = [r for r in records if isinstance(r, MessageRecord)]
    assert partial.partial and partial.missing == 8 * MiB - len(partial.message.body)
    assert len(partial.message.body) == evicted.size > limit
    assert not notices_of(records, NoticeKind.ERROR)  # the rest are orphans, not errors
    assert peak < 3 * limit + 2 * MiB  # held, handed out, and the frames being read


# -- what the exit status says ----------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    from amqpcodec.__main__ import main

    status = main(["decode", str(path)])
    return status, capsys.readouterr().err


def test_a_capture_cut_short_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (CAPTURES / "pika_handshake_close.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-30])
    reader = CaptureReader()
    assert list(frames_of(reader.read(path)))
    (why,) = reader.stats.incomplete
    assert why.startswith("the capture file ends in the middle of a packet record")
    status, err = _cli(capsys, path)
    assert status == 3 and "ends in the middle of a packet record" in err


def test_a_record_length_of_0_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray((CAPTURES / "pika_handshake_close.pcap").read_bytes())
    (caplen,) = struct.unpack_from("<I", data, 24 + 8)
    struct.pack_into("<II", data, 24 + 16 + caplen + 8, 0, 0)  # the second record's lengths
    path = tmp_path / "zero.pcap"
    path.write_bytes(data)
    reader = CaptureReader()
    frames = list(frames_of(reader.read(path)))
    whole = list(frames_of(read_capture(CAPTURES / "pika_handshake_close.pcap")))
    assert len(frames) < len(whole)  # what followed the damaged record is lost
    (why,) = reader.stats.incomplete
    assert why.startswith("the capture file ends in the middle of a packet record, or a")
    status, err = _cli(capsys, path)
    assert status == 3 and "or a record is damaged" in err


def test_unsupported_pcapng_link_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_capture import pcapng_bytes, recorded_packets

    packets = recorded_packets("pika_handshake_close.pcap")
    # Every packet on an interface of an unsupported type: refused, as in pcap.
    path = tmp_path / "only.pcapng"
    path.write_bytes(pcapng_bytes([(0, ts, p) for ts, p in packets], [147]))
    with pytest.raises(CaptureError, match="link-layer type 147 is not supported"):
        list(read_capture(path))
    assert _cli(capsys, path)[0] == 2
    # Some: read in part.
    mixed = [(0, ts, p) for ts, p in packets] + [(1, packets[-1][0], b"zz")]
    path.write_bytes(pcapng_bytes(mixed, [101, 147]))
    reader = CaptureReader()
    assert list(frames_of(reader.read(path)))
    assert reader.stats.incomplete == [
        "link-layer type 147 is not supported (supported: BSD loopback, Ethernet, Linux"
        " cooked (SLL), Linux cooked v2 (SLL2), OpenBSD loopback, raw IP, raw IPv4, raw"
        " IPv6); its packets skipped"
    ]
    assert _cli(capsys, path)[0] == 3


def test_a_hex_bomb_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bomb.txt"
    hostile.hex_repeat_bomb(path, 0x0000FFFFFFFFFF10)
    status, err = _cli(capsys, path)
    assert status == 2 and "over the limit of 67108864 (max_hex_repeat)" in err
