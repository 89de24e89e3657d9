"""Reassemble the TCP payload of each direction of the AMQP connections in a capture.

Usage: python tcp_streams.py CAPTURE [OUT_PREFIX]
  Prints each connection's byte counts; with OUT_PREFIX and exactly one
  connection, writes OUT_PREFIX.c2s.bin and OUT_PREFIX.s2c.bin.

Reads pcap and pcapng (dpkt), Ethernet / Linux-cooked / raw IP, IPv4 and IPv6.
A connection whose SYN is missing (a mid-stream cut) starts at its first segment.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field

import dpkt

AMQP_PORT = 5672


@dataclass
class _Direction:
    base: int | None = None  # sequence number of the first payload byte
    segments: dict[int, bytes] = field(default_factory=dict)

    def add(self, tcp: dpkt.tcp.TCP) -> None:
        if tcp.flags & dpkt.tcp.TH_SYN:
            self.base = (tcp.seq + 1) % 2**32
            return
        if not tcp.data:
            return
        if self.base is None:
            self.base = tcp.seq
        offset = (tcp.seq - self.base) % 2**32
        if len(tcp.data) > len(self.segments.get(offset, b"")):
            self.segments[offset] = bytes(tcp.data)

    def payload(self) -> bytes:
        out = bytearray()
        for offset in sorted(self.segments):
            data = self.segments[offset]
            if offset > len(out):
                raise ValueError(f"gap in TCP stream at offset {len(out)} (next {offset})")
            out += data[len(out) - offset :]  # skip any retransmitted overlap
        return bytes(out)


@dataclass
class Connection:
    client: tuple[str, int]
    c2s: _Direction = field(default_factory=_Direction)
    s2c: _Direction = field(default_factory=_Direction)


def _packets(path: str):  # type: ignore[no-untyped-def]
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        for _ts, buf in reader:
            if linktype == dpkt.pcap.DLT_EN10MB:
                ip = dpkt.ethernet.Ethernet(buf).data
            elif linktype == dpkt.pcap.DLT_LINUX_SLL:
                ip = dpkt.sll.SLL(buf).data
            elif linktype in (dpkt.pcap.DLT_RAW, 101):
                ip = dpkt.ip.IP(buf) if buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
            else:
                raise ValueError(f"unsupported link type {linktype}")
            if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) and isinstance(ip.data, dpkt.tcp.TCP):
                yield ip, ip.data


def connections(path: str) -> list[Connection]:
    """Connections in order of first appearance."""
    conns: dict[tuple[str, int], Connection] = {}
    for ip, tcp in _packets(path):
        family = socket.AF_INET6 if isinstance(ip, dpkt.ip6.IP6) else socket.AF_INET
        if tcp.dport == AMQP_PORT:
            key, to_server = (socket.inet_ntop(family, ip.src), tcp.sport), True
        elif tcp.sport == AMQP_PORT:
            key, to_server = (socket.inet_ntop(family, ip.dst), tcp.dport), False
        else:
            continue
        conn = conns.setdefault(key, Connection(key))
        (conn.c2s if to_server else conn.s2c).add(tcp)
    return list(conns.values())


def write_bins(capture: str, prefix: str) -> tuple[bytes, bytes]:
    conns = connections(capture)
    if len(conns) != 1:
        raise ValueError(f"{capture}: expected one connection, found {len(conns)}")
    c2s, s2c = conns[0].c2s.payload(), conns[0].s2c.payload()
    with open(prefix + ".c2s.bin", "wb") as f:
        f.write(c2s)
    with open(prefix + ".s2c.bin", "wb") as f:
        f.write(s2c)
    return c2s, s2c


def main(argv: list[str]) -> None:
    capture = argv[1]
    for conn in connections(capture):
        print(conn.client, "c2s", len(conn.c2s.payload()), "s2c", len(conn.s2c.payload()))
    if len(argv) > 2:
        write_bins(capture, argv[2])


if __name__ == "__main__":
    main(sys.argv)
