"""What the capture reader's records say: packet numbers, times in capture order, TCP
events, compressed input, and messages (the method's time, partial messages, a body
held once)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dpkt")

import hostile_captures as hostile
from test_capture import ACK, FIN, PSH, RST, Conversation, pcap_bytes

from amqpcodec import (
    BasicProperties,
    BodyFrame,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
    decode_frame,
    encode_message,
    spec,
)
from amqpcodec.capture import (
    CaptureReader,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
    read_capture,
)

CAPTURES = Path(__file__).resolve().parent / "data" / "captures"
MiB = 1024 * 1024
OPEN = MethodFrame(1, spec.Channel.Open()).encode()


def frames(records: Iterable[Record]) -> list[FrameRecord]:
    return [r for r in records if isinstance(r, FrameRecord)]


def messages(records: Iterable[Record]) -> list[MessageRecord]:
    return [r for r in records if isinstance(r, MessageRecord)]


def notices(records: Iterable[Record], kind: NoticeKind | None = None) -> list[Notice]:
    return [r for r in records if isinstance(r, Notice) and kind in (None, r.kind)]


def read(data: bytes, **options: Any) -> list[Record]:
    return list(read_capture(io.BytesIO(data), **options))


# -- packet numbers and time ---------------------------------------------------------------


def test_packet_numbers_count_every_packet_and_name_where_a_frame_ends() -> None:
    talk = Conversation().handshake()  # packets 1-3
    talk.send(True, ProtocolHeader().encode())  # 4
    other = Conversation(client=("10.0.0.9", 1234), server=("10.0.0.8", 80))
    talk.packets += other.handshake().packets  # 5-7: not AMQP, still counted
    talk.send(True, OPEN + OPEN[:5])  # 8: one frame and the start of the next
    talk.ack(False)  # 9
    talk.send(True, OPEN[5:])  # 10: the rest of it
    records = read(pcap_bytes(talk.packets))
    assert [(type(r.frame), r.packet) for r in frames(records)] == [
        (ProtocolHeader, 4),
        (MethodFrame, 8),
        (MethodFrame, 10),
    ]
    times = [r.time for r in records]
    assert times == [pytest.approx(talk.packets[p - 1][0], abs=1e-6) for p in (4, 8, 10)]


def test_records_come_in_capture_order_with_the_time_they_were_made() -> None:
    """A segment that arrives before the one it follows is delivered, and its frames
    given, when the missing one arrives; a gap the peer's acknowledgement reveals is
    reported when the acknowledgement is read."""
    talk = Conversation().handshake()
    first, second = talk.segments(True, ProtocolHeader().encode() + OPEN, 12)
    talk.add(second)  # 4: out of order
    talk.add(first)  # 5: both delivered now
    talk.send(True, OPEN)  # 6 ... then a segment the capture lost
    talk.next[True] += 100
    talk.send(True, OPEN)  # 7
    talk.ack(False)  # 8: the server acknowledges everything
    talk.add(second)  # 9: a retransmission of old data: ignored
    records = read(pcap_bytes(talk.packets))
    times = [r.time for r in records]
    assert times == sorted(times)
    assert [(type(r).__name__, r.packet) for r in records] == [
        ("FrameRecord", 5),  # the protocol header
        ("FrameRecord", 5),  # Channel.Open, whose end came in packet 4
        ("FrameRecord", 6),
        ("Notice", 8),  # 100 bytes missing: known from the acknowledgement
        ("Notice", 8),  # skipped to the next frame
        ("FrameRecord", 8),
    ]


def test_tcp_events_say_who_opened_and_who_closed() -> None:
    talk = Conversation().handshake().send(True, ProtocolHeader().encode())
    talk.add(talk.raw(True, talk.next[True], FIN | ACK))  # 5
    talk.next[True] += 1
    talk.add(talk.raw(False, talk.next[False], RST | ACK))  # 6
    records = read(pcap_bytes(talk.packets), tcp_events=True)
    assert [(r.packet, r.direction.value, r.message) for r in notices(records)] == [
        (1, "c2s", "SYN from the client"),
        (2, "s2c", "SYN+ACK from the server"),
        (5, "c2s", "FIN from the client"),
        (6, "s2c", "RST from the server"),
    ]
    assert notices(read(pcap_bytes(talk.packets))) == []  # only when asked for


# -- compressed input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)],
)
def test_compressed_captures(tmp_path: Path, suffix: str, compress: Any) -> None:
    original = CAPTURES / "pika_large_body.pcap"
    path = tmp_path / ("capture.pcap" + suffix)
    path.write_bytes(compress(original.read_bytes()))
    reader = CaptureReader()
    records = list(reader.read(path))
    assert records == list(read_capture(original))
    assert reader.stats.compression == {".gz": "gzip", ".bz2": "bzip2", ".xz": "xz"}[suffix]
    assert reader.stats.bytes_read == path.stat().st_size  # progress counts the file
    assert reader.stats.warnings == []
    # Cut short: what was there is read, and the cut is said (bzip2 gives nothing
    # before the end of a 900 kB block).
    if suffix == ".bz2":
        return
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 3 // 4])
    reader = CaptureReader()
    cut = list(reader.read(path))
    assert 0 < len(frames(cut)) < len(frames(records))
    assert "the compressed file is cut short" in reader.stats.warnings


def test_damaged_compressed_input_is_a_capture_error(tmp_path: Path) -> None:
    from amqpcodec.capture import CaptureError

    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 64)
    with pytest.raises(CaptureError, match="cannot be read"):
        list(read_capture(path))


# -- messages ------------------------------------------------------------------------------


def test_a_message_has_its_method_time_and_packet() -> None:
    records = list(read_capture(CAPTURES / "pika_large_body.pcap", messages=True))
    large = messages(records)[0]
    assert len(large.message.body) == 100_000
    assert large.method_time is not None and large.time is not None
    assert large.method_time < large.time
    assert large.method_packet is not None and large.packet is not None
    assert large.method_packet < large.packet
    assert not large.partial and large.missing == 0


def hex_dump(pieces: list[tuple[int, bytes]]) -> bytes:
    """An offset-prefixed hex dump of ``(offset, bytes)`` pieces (a jump is a gap)."""
    lines = []
    for offset, data in pieces:
        for start in range(0, len(data), 16):
            lines.append(f"{offset + start:08x}  {data[start : start + 16].hex(' ')}")
    return ("\n".join(lines) + "\n").encode()


FRAME = 4088  # body bytes in a frame at frame_max 4096


def publish(body: bytes, frame_max: int = 4096) -> bytes:
    method = spec.Basic.Publish(routing_key="rk")
    properties = BasicProperties(content_type="text/plain")
    return encode_message(1, method, properties, body, frame_max)


def test_a_message_a_gap_cut_through_is_shown_as_partial() -> None:
    body = bytes(range(250)) * 48  # 12,000 bytes: body frames of 4,088, 4,088, 3,824
    stream = ProtocolHeader().encode() + publish(body)
    second = stream.index(BodyFrame(1, body[FRAME : 2 * FRAME]).encode())
    lost = (second, second + FRAME + 8)
    data = hex_dump([(0, stream[: lost[0]]), (lost[1], stream[lost[1] :] + OPEN)])
    records = read(data, messages=True, direction="c2s")
    (message,) = messages(records)
    assert message.partial and message.missing == FRAME
    assert message.message.method == spec.Basic.Publish(routing_key="rk")
    assert message.message.properties.content_type == "text/plain"
    assert message.message.body == body[:FRAME] + body[2 * FRAME :]
    assert [n.kind for n in notices(records)] == [NoticeKind.GAP, NoticeKind.SKIPPED]
    # The Channel.Open after it is a frame of its own; no error is reported.
    assert [r.frame for r in frames(records)] == [ProtocolHeader(), decode_frame(OPEN)[0]]  # type: ignore[index]


def test_partial_messages_at_the_end_and_without_their_header() -> None:
    body = b"x" * (3 * FRAME)
    stream = ProtocolHeader().encode() + publish(body)
    header_at = stream.index(b"\x02\x00\x01")
    first_body = stream.index(b"\x03\x00\x01")
    # The content header is lost; two body frames remain, and the stream ends early.
    data = hex_dump([(0, stream[:header_at]), (first_body, stream[first_body : -FRAME - 8])])
    (message,) = messages(read(data, messages=True, direction="c2s"))
    assert message.missing is None and message.partial
    assert message.message.properties == BasicProperties()
    assert message.message.body == body[: 2 * FRAME]
    # Everything there, then the stream ends inside the last body frame.
    cut = stream[:-500]
    records = read(cut, messages=True, input_format="raw")
    (message,) = messages(records)
    assert message.missing == FRAME and message.message.body == body[: 2 * FRAME]
    assert [n.kind for n in notices(records)] == [NoticeKind.TRUNCATED]


def test_orphan_content_after_a_gap_is_not_an_error() -> None:
    body = b"y" * (2 * FRAME)
    stream = ProtocolHeader().encode() + publish(body) + publish(b"z")
    method_at = stream.index(b"\x01\x00\x01", 8)
    header_at = stream.index(b"\x02\x00\x01")
    # The method is lost: its header and body are orphans, then a whole message.
    data = hex_dump([(0, stream[:method_at]), (header_at, stream[header_at:])])
    records = read(data, messages=True, direction="c2s")
    assert not notices(records, NoticeKind.ERROR)
    assert [type(r.frame) for r in frames(records)] == [
        ProtocolHeader,
        HeaderFrame,
        BodyFrame,
        BodyFrame,
    ]
    (message,) = messages(records)
    assert message.message.body == b"z" and not message.partial


def from_the_start(data: bytes) -> list[Record]:
    """``data`` sent by a client over a connection captured from its SYN."""
    talk = Conversation().handshake().send(True, ProtocolHeader().encode() + data)
    return read(pcap_bytes(talk.packets), messages=True)


def test_content_rules_still_hold_on_a_clean_stream() -> None:
    records = from_the_start(publish(b"a" * 10)[:-18] + OPEN)
    (error,) = notices(records, NoticeKind.ERROR)
    assert "channel.open on channel 1 in the middle of a content" in error.message
    assert messages(records) == []
    (error,) = notices(from_the_start(BodyFrame(1, b"x").encode()), NoticeKind.ERROR)
    assert "unexpected content body on channel 1" in error.message
    assert frames(from_the_start(HeartbeatFrame().encode()))[1].frame == HeartbeatFrame()


def test_a_large_message_is_held_once(tmp_path: Path) -> None:
    path = tmp_path / "large.bin"
    size = 48 * MiB
    hostile.large_message(path, size)

    def body_size() -> int:
        (message,) = messages(read_capture(path, messages=True))
        return len(message.message.body)

    tracemalloc.start()
    try:
        assert body_size() == size
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The body once (its buffer grows by an eighth at a time), a frame or two, the read.
    assert peak < size * 1.3 + 4 * MiB


def test_partial_records_keep_positional_construction() -> None:
    record = FrameRecord(None, read(ProtocolHeader().encode())[0].connection, None, None, 0, 8)  # type: ignore[arg-type]
    assert record.packet is None and not record.truncated


_ = (ACK, PSH)


# -- packets cut by the snapshot length ------------------------------------------------------


def snapped(talk: Conversation, keep: int) -> None:
    """Cut the last packet to its IPv4 and TCP headers and ``keep`` bytes of payload, as
    a capture with a small snapshot length does (the IP header keeps the real length)."""
    ts, packet = talk.packets[-1]
    talk.packets[-1] = (ts, packet[: 40 + keep])


def test_frames_in_a_packet_cut_by_the_snapshot_length() -> None:
    close = MethodFrame(
        1,
        spec.Channel.Close(
            reply_code=404, reply_text="NOT_FOUND - no queue 'q' in vhost '/'", class_id=50
        ),
    ).encode()
    body = BodyFrame(1, b"b" * 100).encode()
    talk = Conversation().handshake().send(True, ProtocolHeader().encode())
    talk.send(False, close)
    snapped(talk, len(close) - 1)  # all but the frame-end octet
    talk.send(False, close)
    snapped(talk, 20)  # the arguments do not fit
    talk.send(False, body)
    snapped(talk, 50)
    talk.send(False, OPEN)
    talk.ack(True)
    records = read(pcap_bytes(talk.packets))
    s2c = [r for r in records if r.direction.value == "s2c"]
    # Each packet's frame at that packet, and the stream stays in step: the bytes
    # missing are known, and so is where the cut frame would have ended.
    assert [(type(r).__name__, r.packet, getattr(r, "kind", None)) for r in s2c] == [
        ("FrameRecord", 5, None),
        ("Notice", 5, NoticeKind.GAP),
        ("Notice", 6, NoticeKind.TRUNCATED),
        ("Notice", 6, NoticeKind.GAP),
        ("FrameRecord", 7, None),
        ("Notice", 7, NoticeKind.GAP),
        ("FrameRecord", 8, None),
    ]
    first, gap, notice = s2c[:3]
    assert isinstance(first, FrameRecord) and first.truncated
    assert first.frame == decode_frame(close)[0]  # type: ignore[index]
    assert isinstance(gap, Notice) and gap.size == 1  # the frame-end octet
    assert isinstance(notice, Notice)
    assert notice.message == (
        "channel.close frame on channel 1 cut short: 13 of its 48 payload bytes are in the capture"
    )
    cut_body = s2c[4]
    assert isinstance(cut_body, FrameRecord) and cut_body.truncated
    assert cut_body.frame == BodyFrame(1, b"b" * 43)
    last = s2c[-1]
    assert isinstance(last, FrameRecord) and not last.truncated
    assert last.frame == decode_frame(OPEN)[0]  # type: ignore[index]
    assert not notices(records, NoticeKind.SKIPPED)  # no hunting


@pytest.mark.parametrize(
    ("frames_after", "error"),
    [
        ([HeaderFrame(0, 1, BasicProperties())], "content header on channel 0"),
        ([BodyFrame(0, b"x")], "content body on channel 0"),
        (
            [HeaderFrame(1, 1, BasicProperties()), HeaderFrame(1, 1, BasicProperties())],
            "unexpected content header on channel 1",
        ),
        ([HeaderFrame(1, 2**40, BasicProperties())], "is over the limit of"),
        (
            [HeaderFrame(1, 2, BasicProperties()), BodyFrame(1, b"xyz")],
            "content body of 3 bytes is longer than the declared 2",
        ),
    ],
)
def test_content_errors_on_a_clean_stream(frames_after: list[Any], error: str) -> None:
    start = MethodFrame(1, spec.Basic.Publish()).encode()
    if isinstance(frames_after[0], (HeaderFrame, BodyFrame)) and frames_after[0].channel == 0:
        start = b""
    data = start + b"".join(f.encode() for f in frames_after)
    (notice,) = notices(from_the_start(data), NoticeKind.ERROR)
    assert error in notice.message
    assert notice.error is not None


def test_a_content_method_on_channel_0_is_an_error() -> None:
    records = from_the_start(MethodFrame(0, spec.Basic.Publish()).encode())
    (notice,) = notices(records, NoticeKind.ERROR)
    assert "basic.publish on channel 0" in notice.message
    assert frames(records)[-1].frame == MethodFrame(0, spec.Basic.Publish())


def test_a_header_after_a_gap_that_follows_body_bytes_starts_a_new_message() -> None:
    """Body bytes arrived after the gap while the header was still unknown; a content
    header then belongs to a later message whose method was lost."""
    body = b"q" * 100
    stream = ProtocolHeader().encode() + publish(body)
    header_at = stream.index(b"\x02\x00\x01")
    body_at = stream.index(b"\x03\x00\x01")
    header = HeaderFrame(1, 5, BasicProperties()).encode()
    data = hex_dump(
        [
            (0, stream[:header_at]),
            (body_at, stream[body_at:] + header + BodyFrame(1, b"12345").encode()),
        ]
    )
    records = read(data, messages=True, direction="c2s")
    (partial,) = messages(records)
    assert partial.missing is None and partial.message.body == body
    assert [type(r.frame) for r in frames(records)][-2:] == [HeaderFrame, BodyFrame]
    assert not notices(records, NoticeKind.ERROR)


def test_the_input_reads_into_a_buffer() -> None:
    from amqpcodec.capture import CaptureStats
    from amqpcodec.capture._input import Input

    source = Input(io.BytesIO(b"cdef"), b"ab", CaptureStats())
    target = bytearray(5)
    assert source.readinto(target) == 5 and target == b"abcde"


# -- reading packets without dpkt's objects ----------------------------------------------------


def _segments_agree(linktype: int, frame: bytes) -> Any:
    from amqpcodec.capture import CaptureReader
    from amqpcodec.capture._tcp import NOT_TCP, TCPTracker, fast_segment

    fast = fast_segment(linktype, frame)
    slow = TCPTracker(CaptureReader())._dpkt_segment(linktype, frame)
    if fast is None:  # left to dpkt
        return slow
    if fast is NOT_TCP:
        assert slow is None
        return fast
    assert slow is not None
    for name in ("src", "dst", "sport", "dport", "seq", "ack", "flags", "data", "missing"):
        assert getattr(fast, name) == getattr(slow, name), name
    return fast


@pytest.mark.parametrize("linktype", [1, 113, 276, 0, 108, 101, 228, 229])
@pytest.mark.parametrize("v6", [False, True])
def test_packets_read_without_dpkt_agree_with_dpkt(linktype: int, v6: bool) -> None:
    from test_capture import link_frame

    from amqpcodec.capture._tcp import NOT_TCP

    if (linktype, v6) in ((228, True), (229, False)):
        return
    client, server = (
        (("::1", 40000), ("::2", 5672)) if v6 else (("10.0.0.1", 1), ("10.0.0.2", 5672))
    )
    talk = Conversation(client=client, server=server).handshake()
    talk.send(True, ProtocolHeader().encode() + OPEN).send(False, b"x" * 3000, 1448)
    for _, packet in talk.packets:
        frame = link_frame(linktype, packet)
        segment = _segments_agree(linktype, frame)
        assert segment is not None and segment is not NOT_TCP
        # Cut by a snapshot length, or padded as a short Ethernet frame is.
        _segments_agree(linktype, frame[:-3])
        _segments_agree(linktype, frame + b"\x00" * 6)
    # What the fast path leaves to dpkt, or knows is no TCP for the reader.
    packet = talk.packets[-1][1]
    if not v6:
        options = bytes([0x46]) + packet[1:20] + b"\x01\x01\x01\x00" + packet[20:]
        _segments_agree(linktype, link_frame(linktype, options))
        udp = packet[:9] + b"\x11" + packet[10:]
        assert _segments_agree(linktype, link_frame(linktype, udp)) is NOT_TCP
        fragment = packet[:6] + b"\x20\x00" + packet[8:]
        assert _segments_agree(linktype, link_frame(linktype, fragment)) is NOT_TCP
        bad_offset = packet[:32] + b"\x30" + packet[33:]
        _segments_agree(linktype, link_frame(linktype, bad_offset))
    else:
        hop_by_hop = packet[:6] + b"\x00" + packet[7:]
        _segments_agree(linktype, link_frame(linktype, hop_by_hop))
    _segments_agree(linktype, link_frame(linktype, packet)[:30])
    _segments_agree(linktype, b"")
