"""Hostile inputs for the capture reader, written to a file at any size.

Each writer streams its output (nothing the size of the input is built in memory) so
that tests can make small ones and ``benchmarks/capture_limits.py`` full-size ones.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "conversation",
    "header_only_connections",
    "hex_long_line",
    "hex_repeat_bomb",
    "large_message",
    "out_of_order_segments",
    "resync_trap",
    "unfinished_frames",
]

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)  # raw IP
_RECORD = struct.Struct("<IIII")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
SYN, FIN, ACK, PSH = 0x02, 0x01, 0x10, 0x08
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
_MSS = 65000


def _packet(
    src: tuple[str, int], dst: tuple[str, int], seq: int, ack: int, flags: int, data: bytes
) -> bytes:
    ip = _IP.pack(
        0x45,
        0,
        40 + len(data),
        0,
        0,
        64,
        6,
        0,
        socket.inet_aton(src[0]),
        socket.inet_aton(dst[0]),
    )
    tcp = _TCP.pack(src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0)
    return ip + tcp + data


class _Pcap:
    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.time = 1_700_000_000.0
        out.write(_PCAP_HEADER)

    def write(self, packet: bytes) -> None:
        self.time += 0.0001
        sec = int(self.time)
        usec = int((self.time - sec) * 1e6)
        self.out.write(_RECORD.pack(sec, usec, len(packet), len(packet)))
        self.out.write(packet)


def _client(number: int) -> tuple[str, int]:
    """A distinct client address and port for connection ``number``."""
    host, port = divmod(number, 50000)
    return f"10.{1 + host // 65536 % 250}.{host // 256 % 256}.{host % 256}", 10000 + port


_SERVER = ("10.0.0.2", 5672)


def conversation(path: Path, payloads: Iterable[tuple[bool, bytes]]) -> None:
    """One connection after its TCP handshake: each ``(from_client, data)`` in order, in
    packets of at most ``_MSS`` bytes, each acknowledging what the other side sent."""
    client = _client(0)
    seq = {True: 1000, False: 5000}
    with path.open("wb") as out:
        pcap = _Pcap(out)
        pcap.write(_packet(client, _SERVER, 999, 0, SYN, b""))
        pcap.write(_packet(_SERVER, client, 4999, 1000, SYN | ACK, b""))
        for from_client, data in payloads:
            src, dst = (client, _SERVER) if from_client else (_SERVER, client)
            for start in range(0, len(data), _MSS):
                piece = data[start : start + _MSS]
                ack = seq[not from_client]
                pcap.write(_packet(src, dst, seq[from_client], ack, PSH | ACK, piece))
                seq[from_client] += len(piece)


def header_only_connections(path: Path, count: int) -> None:
    """``count`` connections whose only packet is the client's protocol header."""
    with path.open("wb") as out:
        pcap = _Pcap(out)
        for number in range(count):
            pcap.write(_packet(_client(number), _SERVER, 1000, 0, PSH, PROTOCOL_HEADER))


def unfinished_frames(path: Path, connections: int, size: int) -> None:
    """``connections`` connections, each sending the start of a body frame that declares
    ``size + 1`` payload bytes and then ``size`` bytes of it, interleaved, never done."""
    with path.open("wb") as out:
        pcap = _Pcap(out)
        seqs = {}
        for number in range(connections):
            client = _client(number)
            pcap.write(_packet(client, _SERVER, 999, 0, SYN, b""))
            start = PROTOCOL_HEADER + struct.pack(">BHI", 3, 1, size + 1)
            pcap.write(_packet(client, _SERVER, 1000, 0, PSH | ACK, start))
            seqs[number] = 1000 + len(start)
        block = b"\x00" * _MSS
        sent = 0
        while sent < size:
            piece = block[: min(_MSS, size - sent)]
            for number in range(connections):
                pcap.write(_packet(_client(number), _SERVER, seqs[number], 0, ACK, piece))
                seqs[number] += len(piece)
            sent += len(piece)


def out_of_order_segments(path: Path, count: int) -> None:
    """One connection whose first payload byte never arrives while ``count`` one-byte
    segments after it do (each must wait in the reorder buffer)."""
    with path.open("wb") as out:
        pcap = _Pcap(out)
        client = _client(0)
        pcap.write(_packet(client, _SERVER, 999, 0, SYN, b""))
        for index in range(count):
            pcap.write(_packet(client, _SERVER, 1001 + index, 0, ACK, b"\x08"))


def large_message(path: Path, body_size: int, frame_max: int = 131072) -> None:
    """A raw client stream: protocol header, then one Basic.Publish of ``body_size``
    bytes split into body frames of ``frame_max``."""
    method = b"\x00\x3c\x00\x28\x00\x00\x00\x00\x00"  # basic.publish, "" exchange, "" key
    header = struct.pack(">HHQH", 60, 0, body_size, 0)
    with path.open("wb") as out:
        out.write(PROTOCOL_HEADER)
        out.write(struct.pack(">BHI", 1, 1, len(method)) + method + b"\xce")
        out.write(struct.pack(">BHI", 2, 1, len(header)) + header + b"\xce")
        chunk = frame_max - 8
        block = b"m" * chunk
        left = body_size
        while left:
            piece = block[: min(chunk, left)]
            out.write(struct.pack(">BHI", 3, 1, len(piece)) + piece + b"\xce")
            left -= len(piece)


def resync_trap(path: Path, size: int) -> None:
    """A raw stream in which every 32nd offset starts a plausible queue.declare frame
    reaching to the end of the input (which is the frame-end octet), with an arguments
    table of valid void entries that does not fit: a hunter that decodes each candidate
    in full does quadratic work.

    The period: frame header (type 1, channel 0, size), class 50 method 10, reserved,
    empty queue name, flags, table length, then ``0x1e`` and 12 zeros. From offset 19 on,
    the bytes read as void entries of 32 bytes (a 30-byte name, then ``V``) when the
    table length's low byte is ``V``, so each candidate's table spans the rest.
    """
    period = 32
    with path.open("wb") as out:
        for start in range(0, size - 1, period):
            frame_size = size - 8 - start
            room = size - 1 - (start + 19)
            table = room - ((room - 0x56) % 256)
            chunk = (
                struct.pack(">BHI", 1, 0, frame_size)
                + b"\x00\x32\x00\x0a\x00\x00\x00\x00"
                + struct.pack(">I", max(table, 0x56))
                + b"\x1e"
                + b"\x00" * 12
            )
            out.write(chunk[: size - 1 - start])
        out.write(b"\xce")


def hex_repeat_bomb(path: Path, final_offset: int) -> None:
    """Two ``hexdump -C`` lines of heartbeat frames, ``*``, and a final offset."""
    line = "08 00 00 00 00 00 00 ce  08 00 00 00 00 00 00 ce  |................|\n"
    with path.open("w") as out:
        out.write("00000000  " + line)
        out.write("00000010  " + line)
        out.write("*\n")
        out.write(f"{final_offset:016x}\n")


def _hex_pieces(frames: int) -> Iterator[str]:
    heartbeat = "08 00 00 00 00 00 00 ce "
    batch = heartbeat * 8192
    while frames > 0:
        count = min(frames, 8192)
        yield batch if count == 8192 else heartbeat * count
        frames -= count


def hex_long_line(path: Path, frames: int) -> None:
    """One plain-hex line of ``frames`` heartbeat frames (``08 00 ...``, 24 characters
    each), no newline."""
    with path.open("w") as out:
        for piece in _hex_pieces(frames):
            out.write(piece)
