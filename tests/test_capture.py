"""amqpcodec.capture: captures, raw streams and hex dumps in, frames and messages out.

The recorded captures (tests/data/captures/, see its README.md) must give exactly the
frames tshark reported when they were recorded, in the same order. Link types, pcap and
pcapng variants, reassembly (out of order, retransmitted, overlapping, missing
segments), resynchronisation and ports are tested on packets built here with dpkt,
mostly from the recorded traffic itself. The last test decodes a generated 200 MB
capture in a subprocess and checks its peak memory.
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

dpkt = pytest.importorskip("dpkt")

from amqpcodec import (  # noqa: E402
    BasicProperties,
    BodyFrame,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
    encode_message,
    spec,
)
from amqpcodec.capture import (  # noqa: E402
    CaptureError,
    CaptureReader,
    ConnectionInfo,
    Direction,
    Endpoint,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
    read_capture,
)
from amqpcodec.capture._limits import SEGMENT_COST  # noqa: E402
from amqpcodec.capture._reassembly import Reassembler  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
CAPTURES = DATA / "captures"
HEX = DATA / "hex"
CAPTURE_FILES = sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
SINGLE = [p for p in CAPTURE_FILES if (CAPTURES / f"{p.stem}.c2s.bin").exists()]
C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT


# ---------------------------------------------------------------------------------------
# Helpers


def tshark(name: str) -> list[dict[str, Any]]:
    """What tshark reported for a recorded capture, without its expert infos."""
    frames: list[dict[str, Any]] = json.loads((CAPTURES / f"{name}.frames.json").read_text())
    for frame in frames:
        frame.pop("expert", None)
    return frames


def as_tshark(record: FrameRecord) -> dict[str, Any]:
    """A frame record in the shape of NAME.frames.json."""
    frame = record.frame
    out: dict[str, Any] = {"dir": record.direction.value, "stream": record.connection.index}
    length = record.size - 8
    if isinstance(frame, ProtocolHeader):
        version = [frame.protocol_id, frame.major, frame.minor, frame.revision]
        out.update(type="protocol-header", version=version)
    elif isinstance(frame, MethodFrame):
        method = frame.method
        out.update(type="method", channel=frame.channel, length=length, method=method.NAME)
        out["id"] = [method.CLASS_ID, method.METHOD_ID]
    elif isinstance(frame, HeaderFrame):
        out.update(type="header", channel=frame.channel, length=length)
        out.update(class_id=frame.class_id, body_size=frame.body_size)
    elif isinstance(frame, BodyFrame):
        out.update(type="body", channel=frame.channel, length=length)
    else:
        assert isinstance(frame, HeartbeatFrame)
        out.update(type="heartbeat", channel=0, length=0)
    return out


def frames_of(records: Iterable[Record]) -> list[FrameRecord]:
    return [r for r in records if isinstance(r, FrameRecord)]


def notices_of(records: Iterable[Record], kind: NoticeKind | None = None) -> list[Notice]:
    return [r for r in records if isinstance(r, Notice) and kind in (None, r.kind)]


def read(source: Any, **options: Any) -> list[Record]:
    return list(read_capture(source, **options))


# -- building captures ------------------------------------------------------------------

SYN, ACK, FIN, RST, PSH = (
    dpkt.tcp.TH_SYN,
    dpkt.tcp.TH_ACK,
    dpkt.tcp.TH_FIN,
    dpkt.tcp.TH_RST,
    dpkt.tcp.TH_PUSH,
)


def ip_packet(
    src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes
) -> bytes:
    """An IPv4 or IPv6 packet carrying one TCP segment (checksums are not checked)."""
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, ack=ack, flags=flags, data=data)
    if ":" in src:
        segment = bytes(tcp)
        ip6 = dpkt.ip6.IP6(
            src=socket.inet_pton(socket.AF_INET6, src),
            dst=socket.inet_pton(socket.AF_INET6, dst),
            nxt=6,
            hlim=64,
            plen=len(segment),
            data=tcp,
        )
        return bytes(ip6)
    ip = dpkt.ip.IP(src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=6, data=tcp)
    return bytes(ip)


class Conversation:
    """The packets of one TCP connection, built segment by segment."""

    def __init__(
        self,
        client: tuple[str, int] = ("10.0.0.1", 40000),
        server: tuple[str, int] = ("10.0.0.2", 5672),
        isn: tuple[int, int] = (1000, 50000),
        start: float = 1_700_000_000.0,
    ) -> None:
        self.client, self.server = client, server
        self.next = {True: (isn[0] + 1) & 0xFFFFFFFF, False: (isn[1] + 1) & 0xFFFFFFFF}
        self.isn = isn
        self.time = start
        self.packets: list[tuple[float, bytes]] = []

    def raw(self, from_client: bool, seq: int, flags: int, data: bytes = b"") -> bytes:
        src, dst = (self.client, self.server) if from_client else (self.server, self.client)
        ack = self.next[not from_client] if flags & ACK else 0
        return ip_packet(src[0], dst[0], src[1], dst[1], seq & 0xFFFFFFFF, ack, flags, data)

    def add(self, packet: bytes) -> None:
        self.time += 0.001
        self.packets.append((self.time, packet))

    def handshake(self) -> Conversation:
        self.add(self.raw(True, self.isn[0], SYN))
        self.add(self.raw(False, self.isn[1], SYN | ACK))
        self.add(self.raw(True, self.next[True], ACK))
        return self

    def segments(self, from_client: bool, data: bytes, size: int) -> list[bytes]:
        """``data`` cut into segments of ``size`` bytes (sequence numbers advance)."""
        out = []
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            out.append(self.raw(from_client, self.next[from_client], ACK | PSH, piece))
            self.next[from_client] = (self.next[from_client] + len(piece)) & 0xFFFFFFFF
        return out

    def send(self, from_client: bool, data: bytes, size: int = 1448) -> Conversation:
        for packet in self.segments(from_client, data, size):
            self.add(packet)
        return self

    def ack(self, from_client: bool) -> Conversation:
        self.add(self.raw(from_client, self.next[from_client], ACK))
        return self

    def close(self) -> Conversation:
        self.add(self.raw(True, self.next[True], FIN | ACK))
        self.next[True] += 1
        self.add(self.raw(False, self.next[False], RST | ACK))
        return self


def link_frame(linktype: int, packet: bytes) -> bytes:
    """``packet`` (IPv4/IPv6) wrapped in the link-layer header of ``linktype``."""
    v6 = packet[:1] != b"" and packet[0] >> 4 == 6
    ethertype = 0x86DD if v6 else 0x0800
    if linktype == 1:  # Ethernet
        return b"\x00\x00\x00\x00\x00\x00" * 2 + struct.pack(">H", ethertype) + packet
    if linktype == 113:  # Linux cooked v1: packet type, ARPHRD_LOOPBACK, address
        return struct.pack(">HHH8sH", 0, 772, 0, b"", ethertype) + packet
    if linktype == 276:  # Linux cooked v2
        return struct.pack(">HHiHBB8s", ethertype, 0, 1, 772, 4, 0, b"") + packet
    if linktype == 0:  # BSD loopback: AF_ value in the capturing host's byte order
        return struct.pack("=I", 30 if v6 else 2) + packet
    if linktype == 108:  # OpenBSD loopback: AF_ value in network byte order
        return struct.pack(">I", 24 if v6 else 2) + packet
    return packet  # 101 raw IP, 228 IPv4, 229 IPv6, 12/14 old raw


def pcap_bytes(
    packets: Iterable[tuple[float, bytes]], linktype: int = 1, nano: bool = False
) -> bytes:
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out, linktype=linktype, nano=nano)
    for ts, packet in packets:
        writer.writepkt(link_frame(linktype, packet), ts)
    return out.getvalue()


def pcap_big_endian(packets: Iterable[tuple[float, bytes]], linktype: int = 1) -> bytes:
    """A pcap file as a big-endian machine writes it (dpkt writes native order)."""
    out = [struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype)]
    for ts, packet in packets:
        frame = link_frame(linktype, packet)
        sec, usec = int(ts), round(ts % 1 * 1e6)
        out.append(struct.pack(">IIII", sec, usec, len(frame), len(frame)) + frame)
    return b"".join(out)


def pcapng_block(order: str, block_type: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(order + "II", block_type, length) + body + struct.pack(order + "I", length)


def pcapng_bytes(
    packets: Iterable[tuple[int, float, bytes]],
    linktypes: list[int],
    order: str = "<",
    tsresol: int | None = None,
) -> bytes:
    """A pcapng file with one interface per link type; packets are (interface, time,
    IP packet). ``tsresol`` sets the interfaces' if_tsresol option (default µs)."""
    shb = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    blocks = [pcapng_block(order, 0x0A0D0D0A, shb)]
    divisor = 10**6
    for linktype in linktypes:
        options = b""
        if tsresol is not None:
            options = struct.pack(order + "HH", 9, 1) + bytes([tsresol, 0, 0, 0])
            options += struct.pack(order + "HH", 0, 0)
            divisor = (2 if tsresol & 0x80 else 10) ** (tsresol & 0x7F)
        body = struct.pack(order + "HHI", linktype, 0, 262144) + options
        blocks.append(pcapng_block(order, 1, body))
    for interface, ts, packet in packets:
        frame = link_frame(linktypes[interface], packet)
        stamp = round(ts * divisor)
        header = struct.pack(
            order + "IIIII", interface, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame)
        )
        blocks.append(pcapng_block(order, 6, header + frame))
    return b"".join(blocks)


def recorded_packets(name: str) -> list[tuple[float, bytes]]:
    """The IP packets of a recorded (Ethernet) capture, with their timestamps."""
    with open(CAPTURES / name, "rb") as f:
        reader = (dpkt.pcapng.Reader if name.endswith("ng") else dpkt.pcap.Reader)(f)
        return [(ts, bytes(dpkt.ethernet.Ethernet(frame).data)) for ts, frame in reader]


def amqp_session() -> tuple[bytes, bytes, list[bytes]]:
    """A short AMQP conversation: (client bytes, server bytes, client frames' bytes)."""
    c2s_frames = [
        ProtocolHeader().encode(),
        MethodFrame(0, spec.Connection.TuneOk(channel_max=2047, frame_max=4096)).encode(),
        MethodFrame(1, spec.Channel.Open()).encode(),
    ]
    properties = BasicProperties(content_type="text/plain", headers={"n": 1})
    for number in range(20):
        body = bytes([number]) * (300 * number)
        c2s_frames.append(
            encode_message(1, spec.Basic.Publish(routing_key=f"q{number}"), properties, body, 4096)
        )
    s2c = MethodFrame(1, spec.Channel.OpenOk()).encode()
    return b"".join(c2s_frames), s2c, c2s_frames


# ---------------------------------------------------------------------------------------
# The recorded captures against tshark


@pytest.mark.parametrize("path", CAPTURE_FILES, ids=lambda p: p.name)
def test_recorded_capture_gives_tsharks_frames_in_order(path: Path) -> None:
    records = read(path)
    assert [as_tshark(r) for r in frames_of(records)] == tshark(path.stem)
    assert not notices_of(records, NoticeKind.ERROR)
    assert not notices_of(records, NoticeKind.GAP)
    assert not notices_of(records, NoticeKind.TRUNCATED)


@pytest.mark.parametrize("path", SINGLE, ids=lambda p: p.name)
def test_recorded_frames_sit_at_their_offsets_and_reencode_exactly(path: Path) -> None:
    streams = {
        C2S: (CAPTURES / f"{path.stem}.c2s.bin").read_bytes(),
        S2C: (CAPTURES / f"{path.stem}.s2c.bin").read_bytes(),
    }
    ends = {C2S: 0, S2C: 0}
    for record in frames_of(read(path)):
        data = streams[record.direction]
        assert record.offset == ends[record.direction]  # no byte is skipped
        assert data[record.offset : record.offset + record.size] == record.frame.encode()
        ends[record.direction] = record.offset + record.size
    assert ends == {d: len(data) for d, data in streams.items()}


def test_two_connections_are_kept_apart() -> None:
    reader = CaptureReader()
    records = list(reader.read(CAPTURES / "two_connections.pcap"))
    first, second = reader.stats.connections
    assert (first.index, second.index) == (0, 1)
    assert first.client != second.client
    assert first.server == second.server == Endpoint("127.0.0.1", 5672)
    for index in (0, 1):
        mine = [r for r in frames_of(records) if r.connection.index == index]
        assert [as_tshark(r) for r in mine] == [
            f for f in tshark("two_connections") if f["stream"] == index
        ]
        assert mine[0].frame == ProtocolHeader()


def test_ipv6_loopback_endpoints() -> None:
    reader = CaptureReader()
    records = list(reader.read(CAPTURES / "ipv6_loopback.pcapng"))
    (info,) = reader.stats.connections
    assert info.server == Endpoint("::1", 5672)
    assert str(info.server) == "[::1]:5672"
    assert str(info).startswith("#0 [::1]:")
    assert records[0].connection is info


def test_times_are_packet_times() -> None:
    reader = CaptureReader()
    records = frames_of(reader.read(CAPTURES / "pika_heartbeat.pcapng"))
    first = reader.stats.first_time
    assert first is not None and 1.7e9 < first < 2.0e9
    times = [r.time for r in records]
    assert all(t is not None and t >= first for t in times)
    assert times == sorted(times)  # type: ignore[type-var]
    heartbeats = [r.time for r in records if isinstance(r.frame, HeartbeatFrame)]
    assert heartbeats[-1] - heartbeats[0] > 2  # type: ignore[operator]


def test_heartbeats_and_channel_error_are_ordinary_frames() -> None:
    records = frames_of(read(CAPTURES / "pika_channel_error.pcap"))
    closes = [
        r.frame.method
        for r in records
        if isinstance(r.frame, MethodFrame) and isinstance(r.frame.method, spec.Channel.Close)
    ]
    assert closes[0].reply_code == 404
    heartbeats = [
        r
        for r in frames_of(read(CAPTURES / "pika_heartbeat.pcapng"))
        if isinstance(r.frame, HeartbeatFrame)
    ]
    assert heartbeats and all(r.channel == 0 for r in heartbeats)


# ---------------------------------------------------------------------------------------
# Messages


def test_messages_of_the_props_capture() -> None:
    records = read(CAPTURES / "pika_publish_props.pcapng", messages=True)
    messages = [r for r in records if isinstance(r, MessageRecord)]
    assert [(m.direction, m.message.method.NAME) for m in messages] == [
        (C2S, "basic.publish"),
        (S2C, "basic.get-ok"),
    ]
    for record in messages:
        assert record.message.body == b'{"hello": "world"}'
        assert record.channel == 1
        props = record.message.properties
        assert isinstance(props, BasicProperties)
        assert props.content_type == "application/json"
        assert props.headers is not None and props.headers["nested"]["c"] == {"deep": True}
    # A message record points at its method frame, and nothing content-ish is left over.
    assert all(not isinstance(r.frame, (HeaderFrame, BodyFrame)) for r in frames_of(records))
    plain = frames_of(read(CAPTURES / "pika_publish_props.pcapng"))
    publish = next(
        r
        for r in plain
        if isinstance(r.frame, MethodFrame) and r.frame.method.NAME == "basic.publish"
    )
    assert messages[0].offset == publish.offset


def test_multi_frame_messages_both_ways() -> None:
    records = read(CAPTURES / "pika_large_body.pcap", messages=True)
    sizes = [(r.direction, len(r.message.body)) for r in records if isinstance(r, MessageRecord)]
    assert sizes == [(C2S, 100_000), (S2C, 100_000), (C2S, 0), (S2C, 0)]
    assert not notices_of(records)


# ---------------------------------------------------------------------------------------
# Mid-stream starts and resynchronisation


def test_midstream_capture_reports_where_it_got_in_step() -> None:
    records = read(CAPTURES / "midstream.pcap")
    skipped = notices_of(records, NoticeKind.SKIPPED)
    assert [(n.direction, n.offset, n.size) for n in skipped] == [(C2S, 0, 0), (S2C, 0, 0)]
    assert "mid-connection" in skipped[0].message
    assert [as_tshark(r) for r in frames_of(records)] == tshark("midstream")


def cut_mid_frame() -> tuple[list[tuple[float, bytes]], int]:
    """The client stream of pika_large_body in 1448-byte segments (pika's own writes
    end on frame boundaries, so the recorded packets all start with a frame), then the
    server's; every packet before the first client packet that starts inside a frame
    is dropped. Returns the packets and the bytes from that packet to the next frame."""
    c2s = (CAPTURES / "pika_large_body.c2s.bin").read_bytes()
    s2c = (CAPTURES / "pika_large_body.s2c.bin").read_bytes()
    starts = {r.offset for r in frames_of(read(CAPTURES / "pika_large_body.c2s.bin"))}
    conversation = Conversation().handshake()
    client = conversation.segments(True, c2s, 1448)
    server = conversation.segments(False, s2c, 1448)
    body = min(
        r.offset
        for r in frames_of(read(CAPTURES / "pika_large_body.c2s.bin"))
        if isinstance(r.frame, BodyFrame)
    )
    first = next(i for i in range(1, len(client)) if i * 1448 > body and i * 1448 not in starts)
    for packet in client[first:] + server:
        conversation.add(packet)
    following = min(s for s in starts if s > first * 1448)
    return conversation.packets[3:], following - first * 1448


def test_capture_cut_inside_a_frame_resyncs_and_counts_skipped_bytes() -> None:
    packets, skip = cut_mid_frame()
    assert skip > 0
    records = read(io.BytesIO(pcap_bytes(packets)))
    skipped = notices_of(records, NoticeKind.SKIPPED)
    assert [(n.direction, n.offset, n.size) for n in skipped] == [(C2S, skip, skip), (S2C, 0, 0)]
    c2s = [r for r in frames_of(records) if r.direction is C2S]
    assert c2s[0].offset == skip
    # Every frame found is a real one: the same as tshark's from that point on.
    expected = [f for f in tshark("pika_large_body") if f["dir"] == "c2s"]
    assert [as_tshark(r) for r in c2s] == expected[-len(c2s) :]
    assert not notices_of(records, NoticeKind.ERROR)


def test_cut_capture_in_messages_mode_passes_orphans_through() -> None:
    packets, _ = cut_mid_frame()
    records = read(io.BytesIO(pcap_bytes(packets)), messages=True)
    assert not notices_of(records, NoticeKind.ERROR)
    orphans = [r for r in frames_of(records) if isinstance(r.frame, BodyFrame)]
    assert orphans and all(r.direction is C2S for r in orphans)
    messages = [r for r in records if isinstance(r, MessageRecord)]
    # The client's 100,000-byte message lost its start; the server's is whole.
    assert [(m.direction, len(m.message.body)) for m in messages] == [
        (C2S, 0),
        (S2C, 100_000),
        (S2C, 0),
    ]


def test_resync_skips_garbage_and_bogus_candidates() -> None:
    _, _, frames = amqp_session()
    stream = b"".join(frames[2:])
    # Garbage that holds frame-type octets, a header whose frame-end is wrong, and a
    # plausible header with a huge size before the real frames.
    garbage = b"\x01\x00\x01\x00\x00\x00\x02xx\x00" + b"\x03\x00\x01\x00\x00\x00\x01z\xcf" + b"AMQ!"
    records = read(io.BytesIO(garbage + stream), input_format="raw")
    skipped = notices_of(records, NoticeKind.SKIPPED)
    assert [(n.offset, n.size) for n in skipped] == [(len(garbage), len(garbage))]
    found = b"".join(r.frame.encode() for r in frames_of(records))
    assert found == stream


def test_strict_after_resync_and_resync_on_error() -> None:
    _, _, frames = amqp_session()
    good = b"".join(frames[:4])
    bad = bytearray(frames[4])
    bad[-1] = 0x00  # the last body frame of a message has a wrong frame-end
    after = b"".join(frames[5:])
    data = good + bytes(bad) + after

    records = read(io.BytesIO(data))
    (error,) = notices_of(records, NoticeKind.ERROR)
    assert "frame-end" in error.message
    assert b"".join(r.frame.encode() for r in frames_of(records)) == good + bytes(
        bad[: error.offset - len(good)]
    )
    assert error.error is not None and error.error.offset == len(data) - len(after) - 1
    (ignored,) = notices_of(records, NoticeKind.SKIPPED)
    assert ignored.size == len(data) - error.offset

    records = read(io.BytesIO(data), resync_on_error=True)
    assert len(notices_of(records, NoticeKind.ERROR)) == 1
    (skipped,) = notices_of(records, NoticeKind.SKIPPED)
    assert skipped.offset == len(data) - len(after)
    tail = b"".join(r.frame.encode() for r in frames_of(records) if r.offset >= skipped.offset)
    assert tail == after


def test_protocol_header_only_at_the_start() -> None:
    data = ProtocolHeader().encode() + MethodFrame(1, spec.Channel.Open()).encode()
    records = read(io.BytesIO(data + ProtocolHeader().encode()))
    (error,) = notices_of(records, NoticeKind.ERROR)
    assert error.offset == len(data) and "protocol header" in error.message


def test_stream_ending_inside_a_frame() -> None:
    data = MethodFrame(1, spec.Channel.Open()).encode()
    records = read(io.BytesIO(data + data[:5]))
    (truncated,) = notices_of(records)
    assert (truncated.kind, truncated.offset, truncated.size) == (
        NoticeKind.TRUNCATED,
        len(data),
        5,
    )


# ---------------------------------------------------------------------------------------
# Reassembly, unit by unit


def chunks_of(out: list[tuple[bytes | None, int, Any]]) -> list[bytes | int]:
    """Delivered chunks as bytes, gaps as their size."""
    return [size if data is None else data for data, size, _ in out]


def test_reassembly_in_order_and_out_of_order() -> None:
    r = Reassembler()
    r.syn(99)
    assert chunks_of(r.segment(100, b"abc", 1.0)) == [b"abc"]
    assert chunks_of(r.segment(106, b"ghi", 2.0)) == []
    assert r.pending == 3 + SEGMENT_COST  # what holding it costs, not only its bytes
    assert chunks_of(r.segment(103, b"def", 3.0)) == [b"def", b"ghi"]
    assert r.offset == 9 and r.pending == 0


def test_reassembly_drops_retransmissions_and_trims_overlaps() -> None:
    r = Reassembler()
    r.syn(0)
    assert chunks_of(r.segment(1, b"0123456789", 1)) == [b"0123456789"]
    assert chunks_of(r.segment(1, b"0123456789", 2)) == []  # retransmission
    assert chunks_of(r.segment(6, b"56789abc", 3)) == [b"abc"]  # overlap
    # Overlapping held segments, different segmentation of a retransmission.
    assert chunks_of(r.segment(20, b"jklmn", 4)) == []
    assert chunks_of(r.segment(17, b"ghijk", 5)) == []
    assert chunks_of(r.segment(17, b"ghi", 6)) == []
    assert chunks_of(r.segment(14, b"defg", 7)) == [b"defg", b"hijk", b"lmn"]
    assert r.offset == 24 and r.pending == 0


def test_reassembly_first_copy_wins() -> None:
    r = Reassembler()
    r.syn(0)
    r.segment(5, b"XXXX", 1)
    assert chunks_of(r.segment(1, b"abcdefgh", 2)) == [b"abcdefgh"]  # overlaps the held one
    assert r.offset == 8


def test_reassembly_gap_when_the_peer_acknowledged_missing_bytes() -> None:
    r = Reassembler()
    r.syn(0)
    r.segment(1, b"aaaa", 1)
    assert chunks_of(r.segment(9, b"cccc", 2)) == []  # bytes 4..8 not captured
    assert chunks_of(r.ack(5)) == []  # acknowledges only what we have
    assert chunks_of(r.ack(13)) == [4, b"cccc"]
    assert r.offset == 12


def test_reassembly_gap_when_too_much_is_held() -> None:
    r = Reassembler(limit=10 + 2 * SEGMENT_COST)
    r.syn(0)
    assert chunks_of(r.segment(11, b"x" * 6, 1)) == []
    assert chunks_of(r.segment(17, b"y" * 6, 2)) == [10, b"x" * 6, b"y" * 6]


def test_reassembly_flush_reports_holes_and_lost_tail() -> None:
    r = Reassembler()
    r.syn(0)
    r.segment(1, b"ab", 1)
    r.segment(5, b"ef", 2)
    # The peer acknowledged up to offset 19: bytes 2..3 and 6..18 never reached the
    # capture. The hole before held data is reported at once, the lost tail at the end.
    assert chunks_of(r.ack(20)) == [2, b"ef"]
    assert chunks_of(r.flush()) == [13]


def test_reassembly_fin_is_not_a_gap() -> None:
    r = Reassembler()
    r.syn(0)
    r.segment(1, b"abc", 1)
    r.finish(4)
    assert chunks_of(r.ack(5)) == []  # acknowledges the FIN
    assert chunks_of(r.flush()) == []
    lone = Reassembler()
    lone.syn(0)
    lone.segment(1, b"abc", 1)
    lone.ack(5)  # one past the data: a FIN the capture missed, not a lost byte
    assert chunks_of(lone.flush()) == []


def test_reassembly_across_sequence_wraparound() -> None:
    r = Reassembler()
    r.syn(2**32 - 3)
    assert chunks_of(r.segment(2**32 - 2, b"ab", 1)) == [b"ab"]
    assert chunks_of(r.segment(2, b"ef", 2)) == []
    assert chunks_of(r.segment(0, b"cd", 3)) == [b"cd", b"ef"]
    assert r.offset == 6


def test_reassembly_without_syn_starts_at_first_segment() -> None:
    r = Reassembler()
    assert chunks_of(r.segment(5000, b"xyz", 1)) == [b"xyz"]
    assert chunks_of(r.segment(4990, b"old", 2)) == []  # before the capture began
    assert not r.syn_seen


# ---------------------------------------------------------------------------------------
# Reassembly end to end: synthetic connections


def session_conversation(**kwargs: Any) -> tuple[Conversation, bytes, list[bytes]]:
    c2s, _, frames = amqp_session()
    conversation = Conversation(**kwargs).handshake()
    return conversation, c2s, frames


def test_shuffled_duplicated_and_resegmented_packets() -> None:
    conversation, c2s, _ = session_conversation()
    segments = conversation.segments(True, c2s, 700)
    rng = random.Random(7)
    # Retransmissions with a different segmentation: overlapping segments.
    start = conversation.next[True] - len(c2s)
    resent = []
    for offset in range(0, len(c2s), 1000):
        piece = c2s[offset : offset + 1000]
        resent.append(conversation.raw(True, start + offset, ACK | PSH, piece))
    mixed = segments + rng.sample(segments, 10) + resent
    rng.shuffle(mixed)
    for packet in mixed:
        conversation.add(packet)
    conversation.close()
    records = read(io.BytesIO(pcap_bytes(conversation.packets)))
    assert not notices_of(records)
    assert b"".join(r.frame.encode() for r in frames_of(records)) == c2s


def test_lost_segment_is_a_gap_and_nothing_is_invented() -> None:
    conversation, c2s, frames = session_conversation()
    segments = conversation.segments(True, c2s, 1000)
    lost = 5
    for index, packet in enumerate(segments):
        if index != lost:
            conversation.add(packet)
        if index % 3 == 2:
            conversation.ack(False)  # the server acknowledges what it received
    conversation.ack(False).close()
    records = read(io.BytesIO(pcap_bytes(conversation.packets)))
    (gap,) = notices_of(records, NoticeKind.GAP)
    assert (gap.offset, gap.size) == (lost * 1000, 1000)
    (skipped,) = notices_of(records, NoticeKind.SKIPPED)
    assert skipped.offset >= 6000
    assert not notices_of(records, NoticeKind.ERROR)
    found = frames_of(records)
    assert len(found) > len(frames) // 2
    for record in found:  # every frame is a real one, at its real place
        assert c2s[record.offset : record.offset + record.size] == record.frame.encode()
    assert found[-1].offset + found[-1].size == len(c2s)


def test_lost_segment_without_acks_is_reported_at_the_end() -> None:
    conversation, c2s, _ = session_conversation()
    for index, packet in enumerate(conversation.segments(True, c2s, 1000)):
        if index != 3:
            conversation.add(packet)
    records = read(io.BytesIO(pcap_bytes(conversation.packets)))  # no FIN, no ACKs
    (gap,) = notices_of(records, NoticeKind.GAP)
    assert (gap.offset, gap.size) == (3000, 1000)


def test_snaplen_truncated_packet_is_a_gap() -> None:
    conversation, c2s, _ = session_conversation()
    segments = conversation.segments(True, c2s, 1000)
    for index, packet in enumerate(segments):
        conversation.add(packet[:-300] if index == 2 else packet)
        conversation.ack(False)
    records = read(io.BytesIO(pcap_bytes(conversation.packets)))
    (gap,) = notices_of(records, NoticeKind.GAP)
    assert (gap.offset, gap.size) == (2700, 300)


def test_sequence_numbers_wrap() -> None:
    conversation, c2s, _ = session_conversation(isn=(2**32 - 500, 7))
    conversation.send(True, c2s, 900).close()
    records = read(io.BytesIO(pcap_bytes(conversation.packets)))
    assert not notices_of(records)
    assert b"".join(r.frame.encode() for r in frames_of(records)) == c2s


def test_negotiated_frame_max_is_the_limit() -> None:
    conversation, c2s, _ = session_conversation()
    big = MethodFrame(1, spec.Basic.Publish(routing_key="x")).encode()
    big += HeaderFrame(1, 5000).encode() + BodyFrame(1, b"z" * 5000).encode()
    conversation.send(True, c2s + big).close()
    records = read(io.BytesIO(pcap_bytes(conversation.packets)))
    (error,) = notices_of(records, NoticeKind.ERROR)
    assert "larger than the frame_max of 4096" in error.message
    assert error.offset == len(c2s) + len(big) - 5008
    # Without the tune-ok, the generous default applies.
    records = read(io.BytesIO(big), input_format="raw")
    assert not notices_of(records)


def test_port_reuse_makes_a_new_connection() -> None:
    first, c2s, _ = session_conversation()
    first.send(True, c2s).close()
    second = Conversation(isn=(777777, 888888), start=first.time + 1).handshake()
    second.send(True, c2s).close()
    reader = CaptureReader()
    records = list(reader.read(io.BytesIO(pcap_bytes(first.packets + second.packets))))
    assert [c.index for c in reader.stats.connections] == [0, 1]
    assert reader.stats.connections[0].client == reader.stats.connections[1].client
    for index in (0, 1):
        mine = [r for r in frames_of(records) if r.connection.index == index]
        assert b"".join(r.frame.encode() for r in mine) == c2s


def test_interleaved_connections_and_other_traffic() -> None:
    one, c2s, _ = session_conversation()
    two = Conversation(client=("10.0.0.3", 40001), isn=(5, 6)).handshake()
    http = Conversation(client=("10.0.0.1", 40002), server=("10.0.0.2", 80)).handshake()
    one.send(True, c2s)
    two.send(True, c2s[: len(c2s) // 2])
    http.send(True, b"GET / HTTP/1.1\r\n\r\n")
    packets = sorted(one.packets + two.packets + http.packets, key=lambda p: p[0])
    reader = CaptureReader()
    records = list(reader.read(io.BytesIO(pcap_bytes(packets))))
    assert len(reader.stats.connections) == 2
    assert reader.stats.ignored_packets == len(http.packets)
    two_frames = [r for r in records if r.connection.index == 1]
    assert isinstance(two_frames[-1], Notice) and two_frames[-1].kind is NoticeKind.TRUNCATED


def test_amqp_on_another_port_is_found_by_its_protocol_header() -> None:
    conversation, c2s, _ = session_conversation(server=("10.0.0.2", 15672))
    conversation.send(True, c2s).send(False, amqp_session()[1]).close()
    data = pcap_bytes(conversation.packets)
    reader = CaptureReader()
    records = list(reader.read(io.BytesIO(data)))
    (info,) = reader.stats.connections
    assert info.server == Endpoint("10.0.0.2", 15672)
    assert b"".join(r.frame.encode() for r in frames_of(records) if r.direction is C2S) == c2s
    # Mid-stream (no protocol header), only --port finds it; several ports may be given.
    midstream = [p for p in conversation.packets[8:]]
    assert read(io.BytesIO(pcap_bytes(midstream))) == []
    found = read(io.BytesIO(pcap_bytes(midstream)), ports=[5672, 15672])
    assert frames_of(found)


# ---------------------------------------------------------------------------------------
# Link types and file formats


LINKTYPES = {
    "ethernet": 1,
    "linux-sll": 113,
    "linux-sll2": 276,
    "bsd-null": 0,
    "openbsd-loop": 108,
    "raw-ip": 101,
    "raw-ip-12": 12,
}


@pytest.mark.parametrize("linktype", LINKTYPES.values(), ids=LINKTYPES.keys())
@pytest.mark.parametrize("name", ["pika_publish_props.pcapng", "ipv6_loopback.pcapng"])
def test_link_types(linktype: int, name: str) -> None:
    data = pcap_bytes(recorded_packets(name), linktype)
    records = read(io.BytesIO(data))
    assert [as_tshark(r) for r in records] == tshark(name.split(".")[0])


def test_raw_ipv4_and_ipv6_link_types() -> None:
    v4 = pcap_bytes(recorded_packets("pika_handshake_close.pcap"), 228)
    v6 = pcap_bytes(recorded_packets("ipv6_loopback.pcapng"), 229)
    assert [as_tshark(r) for r in read(io.BytesIO(v4))] == tshark("pika_handshake_close")
    assert [as_tshark(r) for r in read(io.BytesIO(v6))] == tshark("ipv6_loopback")


def test_pcap_variants_nanosecond_and_big_endian() -> None:
    packets = recorded_packets("pika_heartbeat.pcapng")
    expected = read(CAPTURES / "pika_heartbeat.pcapng")
    for data in (pcap_bytes(packets, nano=True), pcap_big_endian(packets)):
        records = read(io.BytesIO(data))
        assert [as_tshark(r) for r in records] == tshark("pika_heartbeat")
        for mine, theirs in zip(records, expected, strict=True):
            assert mine.time == pytest.approx(theirs.time, abs=1e-6)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_interfaces_each_with_its_link_type(order: str) -> None:
    packets = recorded_packets("pika_publish_props.pcapng")
    # Alternate the packets over an SLL2 and a raw-IP interface, add an unsupported one.
    tagged = [(index % 2, ts, packet) for index, (ts, packet) in enumerate(packets)]
    data = pcapng_bytes([*tagged, (2, packets[-1][0], b"zz")], [276, 101, 147], order, 9)
    reader = CaptureReader()
    records = list(reader.read(io.BytesIO(data)))
    assert [as_tshark(r) for r in records] == tshark("pika_publish_props")
    assert reader.stats.format == "pcapng"
    assert reader.stats.packets == len(packets) + 1
    assert reader.stats.ignored_packets == 1
    assert any("link-layer type 147" in w for w in reader.stats.warnings)
    recorded = read(CAPTURES / "pika_publish_props.pcapng")
    for mine, theirs in zip(records, recorded, strict=True):
        assert mine.time == pytest.approx(theirs.time, abs=1e-6)


def test_pcapng_other_blocks_and_simple_packets() -> None:
    packets = recorded_packets("pika_handshake_close.pcap")
    order = "<"
    data = pcapng_bytes([], [101], order)
    data += pcapng_block(order, 4, b"\x00" * 8)  # name resolution block: skipped
    for _, packet in packets:  # simple packet blocks: no timestamp, interface 0
        data += pcapng_block(order, 3, struct.pack(order + "I", len(packet)) + packet)
    records = read(io.BytesIO(data))
    assert [as_tshark(r) for r in records] == tshark("pika_handshake_close")


def test_unsupported_link_type_in_pcap() -> None:
    with pytest.raises(CaptureError, match="link-layer type 105 is not supported"):
        read(io.BytesIO(pcap_bytes([], 105)))


def test_truncated_capture_file_warns_and_keeps_what_it_has() -> None:
    for name in ("pika_publish_props.pcapng", "pika_handshake_close.pcap"):
        data = (CAPTURES / name).read_bytes()
        reader = CaptureReader()
        records = list(reader.read(io.BytesIO(data[:-30])))
        assert frames_of(records)
        assert reader.stats.warnings and "ends in the middle" in reader.stats.warnings[0]


def test_damaged_captures_are_errors() -> None:
    header = (CAPTURES / "pika_handshake_close.pcap").read_bytes()[:24]
    huge = header + struct.pack("<IIII", 0, 0, 2**31, 2**31)
    with pytest.raises(CaptureError, match="damaged"):
        read(io.BytesIO(huge))
    ng = pcapng_bytes([], [1]) + struct.pack("<II", 6, 13)
    with pytest.raises(CaptureError, match="damaged"):
        read(io.BytesIO(ng))
    with pytest.raises(CaptureError, match="no section header"):
        read(io.BytesIO(b"\x01\x00\x00\x00" + b"\x00" * 28), input_format="pcapng")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a pcap or pcapng capture"),
        (b"hello, world\n", "not a pcap or pcapng capture"),
        (b"\x01\x00\x00\x00\x00\x00\x04abcdX", "not a pcap or pcapng capture"),
    ],
)
def test_not_a_capture(data: bytes, message: str) -> None:
    with pytest.raises(CaptureError, match=message):
        read(io.BytesIO(data))


def test_missing_file() -> None:
    with pytest.raises(CaptureError, match="cannot open"):
        read(DATA / "no-such-file.pcap")


def test_unknown_input_format_option() -> None:
    with pytest.raises(ValueError, match="unknown input format"):
        CaptureReader(input_format="pcapx")


# ---------------------------------------------------------------------------------------
# Raw streams and hex dumps


@pytest.mark.parametrize("path", SINGLE, ids=lambda p: p.name)
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_raw_stream_files(path: Path, direction: str) -> None:
    records = read(CAPTURES / f"{path.stem}.{direction}.bin")
    expected = [f for f in tshark(path.stem) if f["dir"] == direction]
    assert [as_tshark(r) for r in frames_of(records)] == expected  # direction guessed
    assert records[0].time is None and records[0].connection == ConnectionInfo(0)
    assert not notices_of(records)


def test_raw_stream_direction_can_be_given_or_stay_unknown() -> None:
    data = HeartbeatFrame().encode() * 3
    assert {r.direction for r in read(io.BytesIO(data))} == {Direction.UNKNOWN}
    given = read(io.BytesIO(data), direction="s2c")
    assert {r.direction for r in given} == {S2C}
    # Many undecided records are not held back for ever.
    assert len(read(io.BytesIO(HeartbeatFrame().encode() * 1000))) == 1000


def test_raw_stream_in_messages_mode_and_content_errors() -> None:
    publish = MethodFrame(1, spec.Basic.Publish()).encode()
    header = HeaderFrame(1, 3).encode()
    body = BodyFrame(1, b"abc").encode()
    # The publish is interrupted by another method: a broken content sequence is an
    # error, reported in place; decoding goes on.
    data = publish + header + MethodFrame(1, spec.Basic.Qos()).encode() + publish + header + body
    records = read(io.BytesIO(data), messages=True)
    (error,) = notices_of(records, NoticeKind.ERROR)
    assert "content out of order" in error.message
    assert error.offset == len(publish + header)
    kinds = [type(r).__name__ for r in records]
    assert kinds == ["Notice", "FrameRecord", "MessageRecord"]
    (message,) = [r for r in records if isinstance(r, MessageRecord)]
    assert message.message.body == b"abc" and message.direction is C2S
    assert message.offset == len(publish + header) + len(MethodFrame(1, spec.Basic.Qos()).encode())


def test_raw_stream_starting_inside_content() -> None:
    body = BodyFrame(1, b"abc").encode()
    records = read(io.BytesIO(body + MethodFrame(1, spec.Basic.Qos()).encode()), messages=True)
    assert not notices_of(records)
    assert isinstance(records[0], FrameRecord) and isinstance(records[0].frame, BodyFrame)


def test_raw_stream_read_in_small_pieces() -> None:
    data = (CAPTURES / "pika_large_body.s2c.bin").read_bytes()

    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            self.position = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            piece = data[self.position : self.position + 1000]
            buffer[: len(piece)] = piece
            self.position += len(piece)
            return len(piece)

    records = read(Trickle())  # type: ignore[arg-type]
    assert [as_tshark(r) for r in records] == [
        f for f in tshark("pika_large_body") if f["dir"] == "s2c"
    ]


def test_tshark_follow_stream_hex() -> None:
    reader = CaptureReader()
    records = list(reader.read(HEX / "pika_publish_props.follow.txt"))
    assert reader.stats.format == "hex"
    recorded = frames_of(read(CAPTURES / "pika_publish_props.pcapng"))

    def per_direction(rs: list[FrameRecord]) -> dict[Direction, list[Any]]:
        return {d: [r.frame for r in rs if r.direction is d] for d in (C2S, S2C)}

    assert per_direction(frames_of(records)) == per_direction(recorded)
    (info,) = reader.stats.connections
    assert info == recorded[0].connection


def test_follow_stream_hex_with_server_first_and_a_gap() -> None:
    text = (HEX / "pika_publish_props.follow.txt").read_text()
    lines = text.splitlines()
    data_lines = [i for i, line in enumerate(lines) if line[:1] in "0\t"]
    # Swap the sides (the server listed first, indented with spaces like Wireshark's
    # dialog) and drop one client line: 16 bytes of the client's stream go missing.
    swapped = []
    for line in lines:
        if line.startswith("\t"):
            swapped.append(line[1:])
        elif line[:1] == "0":
            swapped.append("    " + line)
        else:
            swapped.append(
                line.replace("Node 0", "Node X")
                .replace("Node 1", "Node 0")
                .replace("Node X", "Node 1")
            )
    client_lines = [i for i in data_lines if swapped[i].startswith("    ")]
    dropped = client_lines[20]
    del swapped[dropped]
    records = read(io.BytesIO("\n".join(swapped).encode()))
    (gap,) = notices_of(records, NoticeKind.GAP)
    assert gap.direction is C2S and gap.size == 16
    client = [r for r in frames_of(records) if r.direction is C2S]
    assert isinstance(client[0].frame, ProtocolHeader)
    assert records[0].connection.client == Endpoint("127.0.0.1", 58592)


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("pika_heartbeat.s2c.hexdump-C.txt", "pika_heartbeat.s2c.bin"),
        ("pika_handshake_close.c2s.xxd.txt", "pika_handshake_close.c2s.bin"),
        ("pika_handshake_close.s2c.plain.txt", "pika_handshake_close.s2c.bin"),
    ],
)
def test_hex_dump_layouts(name: str, source: str) -> None:
    from_hex = read(HEX / name)
    from_bin = read(CAPTURES / source)
    assert [(r.direction, r.frame, r.offset) for r in frames_of(from_hex)] == [
        (r.direction, r.frame, r.offset) for r in frames_of(from_bin)
    ]
    assert not notices_of(from_hex)


def test_plain_hex_variants_and_repeats() -> None:
    data = MethodFrame(1, spec.Channel.Open()).encode() + BodyFrame(1, b"\x00" * 90).encode()
    spaced = " ".join(f"0x{b:02x}" for b in data[:10]) + "\n" + data[10:].hex() + "\n"
    assert b"".join(r.frame.encode() for r in frames_of(read(io.BytesIO(spaced.encode())))) == data
    # hexdump's "*": the line above repeats up to the next offset.
    lines = []
    previous = b""
    for start in range(0, len(data), 16):
        piece = data[start : start + 16]
        if piece == previous:
            if lines[-1] != "*":
                lines.append("*")
            continue
        lines.append(f"{start:08x}  {piece.hex(' ')}")
        previous = piece
    lines.append(f"{len(data):08x}")
    assert "*" in lines
    dump = ("\n".join(lines) + "\n").encode()
    assert b"".join(r.frame.encode() for r in frames_of(read(io.BytesIO(dump)))) == data


def test_bad_hex_dumps() -> None:
    with pytest.raises(CaptureError, match="line 2"):
        read(io.BytesIO(b"0100000000\nzz\n"), input_format="hex")
    with pytest.raises(CaptureError, match="no data"):
        read(io.BytesIO(b"===\nFollow: tcp,hex\n"), input_format="hex")
    with pytest.raises(CaptureError, match="not ASCII"):
        read(io.BytesIO(b"0100\n\xff\xfe\n"), input_format="hex")


# ---------------------------------------------------------------------------------------
# Packaging: dpkt is optional and imported only to read pcap/pcapng


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_import_does_not_import_dpkt() -> None:
    result = run_python(
        """
        import sys
        import amqpcodec, amqpcodec.capture, amqpcodec.__main__
        assert "dpkt" not in sys.modules, "dpkt imported"
        """
    )
    assert result.returncode == 0, result.stderr


def test_without_dpkt_pcap_is_a_clear_error_and_raw_still_works() -> None:
    result = run_python(
        f"""
        import sys
        sys.modules["dpkt"] = None  # as if it were not installed
        from amqpcodec.capture import CaptureError, read_capture
        try:
            list(read_capture({str(CAPTURES / "midstream.pcap")!r}))
        except CaptureError as exc:
            print(exc)
        print(len(list(read_capture({str(CAPTURES / "midstream.c2s.bin")!r}))))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'amqpcodec[capture]'" in result.stdout
    assert result.stdout.splitlines()[-1] == "9"


def test_progress_is_reported() -> None:
    calls: list[tuple[int, int | None]] = []
    path = CAPTURES / "pika_large_body.pcap"
    list(read_capture(path, progress=lambda done, total: calls.append((done, total))))
    assert calls and calls[0][1] == path.stat().st_size
    list(read_capture(CAPTURES / "pika_large_body.c2s.bin", progress=lambda *a: calls.append(a)))
    assert calls[-1][0] == (CAPTURES / "pika_large_body.c2s.bin").stat().st_size


# ---------------------------------------------------------------------------------------
# A large capture in bounded memory


LARGE_MB = int(os.environ.get("AMQPCODEC_CAPTURE_MB", "200"))
LARGE_SEGMENT = int(os.environ.get("AMQPCODEC_CAPTURE_SEGMENT", "65483"))
PEAK_LIMIT_MB = 100


def write_large_capture(path: Path, megabytes: int, segment: int = 65483) -> int:
    """A pcap of one connection on which the client publishes 1 KiB messages (method,
    content header with properties, body) until the file is ``megabytes`` MiB, cut
    into loopback-sized TCP segments; the server acknowledges now and then. Returns
    the number of messages."""
    conversation = Conversation(client=("127.0.0.1", 40000), server=("127.0.0.1", 5672))
    conversation.handshake()
    properties = BasicProperties(content_type="text/plain", delivery_mode=2, headers={"n": 1})
    message = encode_message(
        1, spec.Basic.Publish(routing_key="bulk"), properties, b"m" * 1024, 131072
    )
    start = ProtocolHeader().encode() + MethodFrame(1, spec.Channel.Open()).encode()
    target = megabytes * 1024 * 1024
    count = 0
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f)
        for ts, packet in conversation.packets:
            writer.writepkt(link_frame(1, packet), ts)
        pending = bytearray(start)
        written = 0
        ts = conversation.time
        while written < target:
            while len(pending) < segment:
                pending += message
                count += 1
            piece = bytes(pending[:segment])
            del pending[:segment]
            (packet,) = conversation.segments(True, piece, segment)
            ts += 0.0001
            frame = link_frame(1, packet)
            writer.writepkt(frame, ts)
            written += len(frame) + 16
            if count % 1000 < 60:
                writer.writepkt(
                    link_frame(1, conversation.raw(False, conversation.next[False], ACK)), ts
                )
        (packet,) = conversation.segments(True, bytes(pending), len(pending))
        writer.writepkt(link_frame(1, packet), ts)
    return count


def measure(path: Path, mode: str) -> dict[str, Any]:
    """Decode ``path`` in a fresh interpreter; its peak RSS and what it found."""
    code = f"""
        import json, os, sys, time
        start = time.perf_counter()
        if {mode!r} == "cli":
            from amqpcodec.__main__ import main
            sys.stdout = open(os.devnull, "w")
            status = main(["decode", {str(path)!r}])
            sys.stdout = sys.__stdout__
            found = status
        else:
            from amqpcodec.capture import MessageRecord, read_capture
            found = sum(isinstance(r, MessageRecord) for r in read_capture({str(path)!r},
                                                                           messages=True))
        # VmHWM is this process image's peak RSS; ru_maxrss would also count what the
        # parent had when it forked us (Linux carries it over the exec).
        with open("/proc/self/status") as status:
            hwm = [line for line in status if line.startswith("VmHWM:")]
        peak = int(hwm[0].split()[1]) / 1024
        print(json.dumps({{"found": found, "peak_mb": peak,
                          "seconds": time.perf_counter() - start}}))
        """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's VmHWM")
def test_large_capture_decodes_in_bounded_memory(tmp_path: Path) -> None:
    """AMQPCODEC_CAPTURE_MB sets the size (default 200), AMQPCODEC_CAPTURE_SEGMENT the
    TCP segment size (default 65483, loopback's; 1448 is Ethernet's)."""
    path = tmp_path / "large.pcap"
    started = time.perf_counter()
    messages = write_large_capture(path, LARGE_MB, LARGE_SEGMENT)
    written = time.perf_counter() - started
    size_mb = path.stat().st_size / 2**20
    assert size_mb >= LARGE_MB
    library = measure(path, "messages")
    cli = measure(path, "cli")
    report = (
        f"{size_mb:.0f} MB capture, {messages} messages, written in {written:.1f} s; "
        f"library (messages=True): peak RSS {library['peak_mb']:.1f} MB in "
        f"{library['seconds']:.1f} s; CLI text output: peak RSS {cli['peak_mb']:.1f} MB in "
        f"{cli['seconds']:.1f} s"
    )
    print(report)
    assert library["found"] == messages, report
    assert cli["found"] == 0, report
    assert library["peak_mb"] < PEAK_LIMIT_MB, report
    assert cli["peak_mb"] < PEAK_LIMIT_MB, report


# ---------------------------------------------------------------------------------------
# Corners


def test_direction_names() -> None:
    assert (C2S.arrow, S2C.arrow, C2S.ascii_arrow, S2C.ascii_arrow) == (
        "C→S",
        "S→C",
        "C->S",
        "S->C",
    )
    assert C2S.reverse() is S2C and Direction.UNKNOWN.reverse() is Direction.UNKNOWN
    assert str(ConnectionInfo(3)) == "#3"


def test_content_method_on_channel_zero_is_one_error() -> None:
    publish0 = MethodFrame(0, spec.Basic.Publish()).encode()
    records = read(io.BytesIO(publish0), messages=True)
    (error,) = notices_of(records, NoticeKind.ERROR)
    assert "channel 0" in error.message
    assert isinstance(records[-1], FrameRecord)


def test_first_decisive_record_may_be_a_message() -> None:
    data = encode_message(1, spec.Basic.Deliver(), None, b"hi", 4096)
    (record,) = read(io.BytesIO(data), messages=True)
    assert isinstance(record, MessageRecord) and record.direction is S2C


def test_hunting_at_the_end_of_the_input() -> None:
    frame = MethodFrame(1, spec.Channel.Open()).encode()
    # A candidate that decodes to nothing (unknown method 65535.65535) is passed over.
    unknown = b"\x01\x00\x01\x00\x00\x00\x04\xff\xff\xff\xff\xce"
    records = read(io.BytesIO(b"zz" + unknown + frame), input_format="raw")
    assert [r.frame for r in frames_of(records)] == [MethodFrame(1, spec.Channel.Open())]
    assert notices_of(records)[0].size == 2 + len(unknown)
    # At the end, a lone "AM" or a short or unfinished candidate cannot wait for more.
    for tail in (b"AM", b"\x01\x00", b"\x08\x00\x00\x00\x00\x00\x09"):
        data = b"zz" + unknown + b"zz" + tail
        records = read(io.BytesIO(data), input_format="raw")
        assert [(n.kind, n.size) for n in records] == [(NoticeKind.SKIPPED, len(data))]
        assert "held no frame" in records[0].message  # type: ignore[union-attr]


def test_both_ports_amqp_and_packets_after_close() -> None:
    conversation, c2s, _ = session_conversation(client=("10.0.0.1", 5673))
    conversation.send(True, c2s).close()
    late = conversation.raw(True, conversation.next[True], ACK | PSH, b"late")
    conversation.add(late)  # after the RST: ignored, not a new connection
    reader = CaptureReader(ports=[5672, 5673])
    records = list(reader.read(io.BytesIO(pcap_bytes(conversation.packets))))
    (info,) = reader.stats.connections
    assert info.client == Endpoint("10.0.0.1", 5673)
    assert reader.stats.ignored_packets == 1
    assert b"".join(r.frame.encode() for r in frames_of(records)) == c2s
    # Seen from the SYN-ACK on: the receiver of the SYN-ACK is the client.
    records = list(
        CaptureReader(ports=[5672, 5673]).read(io.BytesIO(pcap_bytes(conversation.packets[1:])))
    )
    assert {r.direction for r in frames_of(records)} == {C2S}


def test_reused_address_pair_while_open_starts_a_new_connection() -> None:
    first, c2s, _ = session_conversation()
    first.send(True, c2s[:100])
    second = Conversation(isn=(424242, 5), start=first.time + 1).handshake().send(True, c2s)
    reader = CaptureReader()
    records = list(reader.read(io.BytesIO(pcap_bytes(first.packets + second.packets))))
    assert len(reader.stats.connections) == 2
    truncated = notices_of(records, NoticeKind.TRUNCATED)
    assert [n.connection.index for n in truncated] == [0]


def test_non_tcp_fragments_and_undecodable_packets_are_ignored() -> None:
    conversation, c2s, _ = session_conversation()
    conversation.send(True, c2s)
    udp = dpkt.ip.IP(
        src=b"\x0a\x00\x00\x01",
        dst=b"\x0a\x00\x00\x02",
        p=17,
        data=dpkt.udp.UDP(sport=1, dport=2, data=b"x"),
    )
    fragment = dpkt.ip.IP(bytes(conversation.packets[-1][1]))
    fragment.mf = 1
    extra = [
        (1.0, bytes(udp)),
        (1.0, bytes(fragment)),
        (1.0, b"\x45\x00"),
        (1.0, b""),
        (1.0, b"\x10\x00\x00"),
    ]
    reader = CaptureReader()
    records = list(reader.read(io.BytesIO(pcap_bytes(conversation.packets + extra, 101))))
    assert reader.stats.ignored_packets == len(extra)
    assert b"".join(r.frame.encode() for r in frames_of(records)) == c2s


def test_flow_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from amqpcodec.capture._tcp import TCPTracker

    monkeypatch.setattr(TCPTracker, "_MEMORY", 2)
    packets: list[tuple[float, bytes]] = []
    for port in range(5):
        other = Conversation(client=("10.0.0.1", 41000 + port), server=("10.0.0.2", 80))
        packets += other.handshake().send(True, b"GET /").packets
    reader = CaptureReader()
    assert list(reader.read(io.BytesIO(pcap_bytes(packets)))) == []
    assert reader.stats.ignored_packets == len(packets)


def test_pcapng_corners() -> None:
    packets = recorded_packets("pika_handshake_close.pcap")
    order = "<"
    shb = pcapng_block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    # if_tsoffset: seconds added to every timestamp; an obsolete packet block (type 2).
    idb = struct.pack(order + "HHI", 101, 0, 0) + struct.pack(order + "HH", 14, 8)
    idb += struct.pack(order + "q", 1000) + struct.pack(order + "HH", 0, 0)
    blocks = [shb, pcapng_block(order, 1, idb)]
    for ts, packet in packets:
        stamp = round(ts * 1e6)
        head = struct.pack(
            order + "HHIIII", 0, 0, stamp >> 32, stamp & 0xFFFFFFFF, len(packet), len(packet)
        )
        blocks.append(pcapng_block(order, 2, head + packet))
    records = read(io.BytesIO(b"".join(blocks)))
    assert [as_tshark(r) for r in records] == tshark("pika_handshake_close")
    assert records[0].time == pytest.approx(packets[3][0] + 1000, abs=1e-5)
    whole = b"".join(blocks)
    reader = CaptureReader()
    assert frames_of(reader.read(io.BytesIO(whole[:-7])))
    assert "ends in the middle of a pcapng block" in reader.stats.warnings[0]
    bad_bom = whole[:8] + b"\x00\x00\x00\x00" + whole[12:]
    with pytest.raises(CaptureError, match="byte-order"):
        read(io.BytesIO(bad_bom))
    bad_length = whole[:4] + struct.pack("<I", 20) + whole[8:]
    with pytest.raises(CaptureError, match="section header of 20"):
        read(io.BytesIO(bad_length))
    wrong_interface = pcapng_bytes([(0, 1.0, packets[0][1])], [101])
    wrong_interface = wrong_interface.replace(
        struct.pack("<I", 0) + struct.pack("<I", 0), struct.pack("<I", 7) + struct.pack("<I", 0), 1
    )
    stray = shb + pcapng_block(order, 6, struct.pack(order + "IIIII", 3, 0, 0, 1, 1) + b"x")
    with pytest.raises(CaptureError, match="a packet on interface 3"):
        read(io.BytesIO(stray))
    broken = shb + pcapng_block(order, 1, b"\x00")
    with pytest.raises(CaptureError, match="damaged: block type 1"):
        read(io.BytesIO(broken))
    with pytest.raises(CaptureError, match="not a readable pcap file"):
        read(io.BytesIO(b"\x00" * 30), input_format="pcap")


def test_hex_dump_corners() -> None:
    data = MethodFrame(1, spec.Channel.Open()).encode()
    line = f"00000000  {data.hex(' ')}"
    again = f"00000004  {data[4:].hex(' ')}"  # the same bytes shown twice
    records = read(io.BytesIO(f"{line}\n{again}\n*\n".encode()))
    assert [r.frame.encode() for r in frames_of(records)] == [data]
    for bad in ("00000000  zz", "00000000  41 4d 51 5", "00000000: zzzz", "00000000: 41 4"):
        with pytest.raises(CaptureError, match="not an offset-prefixed hex dump line"):
            read(io.BytesIO(f"{line}\n{bad}\n".encode()), input_format="hex")


def test_server_speaks_first_in_a_cut_capture() -> None:
    packets, skip = cut_mid_frame()
    server_first = sorted(packets, key=lambda p: dpkt.ip.IP(p[1]).data.sport != 5672)
    reader = CaptureReader()
    records = list(reader.read(io.BytesIO(pcap_bytes(server_first))))
    (info,) = reader.stats.connections
    assert info.server == Endpoint("10.0.0.2", 5672)
    assert records[0].direction is S2C
    first = next(r for r in frames_of(records) if r.direction is C2S)
    assert first.offset == skip


def test_protocol_header_split_while_hunting() -> None:
    from amqpcodec.capture._stream import FrameStream

    stream = FrameStream(4096, True, "test", False)
    out: list[object] = []
    stream.feed(b"zzAM", out)
    assert out == []
    stream.feed(b"QP\x00\x00\x09\x01", out)
    assert [type(item).__name__ for item in out] == ["Note", "tuple"]
    assert out[1] == (ProtocolHeader(), 2, 8)
    assert frames_of([]) == []
    header = FrameRecord(None, ConnectionInfo(0), C2S, ProtocolHeader(), 0, 8)
    assert header.channel is None
