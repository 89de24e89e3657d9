"""TCP connections: finding the AMQP ones among the packets and feeding their two
directions.

Packets are grouped into TCP connections by their address pair; a connection is AMQP
when one of its ports is an AMQP port or when its first payload is the ``AMQP``
protocol header. Each direction has a reassembler (``_reassembly``) whose in-order
bytes and gaps go to that direction's frame stream.
"""

from __future__ import annotations

import socket
import struct
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from ._direction import Half
from ._limits import CONNECTION_COST
from ._pcap import (
    LINK_ETHERNET,
    LINK_LINUX_SLL,
    LINK_LINUX_SLL2,
    LINK_LOOP,
    LINK_NULL,
    dpkt_module,
)
from ._reassembly import SEQ_MASK
from ._records import ConnectionInfo, Direction, Endpoint, Notice, NoticeKind, Record
from ._stream import AMQP

if TYPE_CHECKING:
    from ._reader import CaptureReader

__all__ = ["NOT_TCP", "Conn", "Segment", "TCPTracker", "fast_segment"]


class Conn:
    """One AMQP connection: its two directions."""

    __slots__ = ("c2s", "client", "cost", "events", "info", "isn", "reset", "s2c")

    def __init__(self, reader: CaptureReader, info: ConnectionInfo, client: Any) -> None:
        self.info = info
        self.client = client  # (address bytes, port)
        self.c2s = Half(reader, info, Direction.CLIENT_TO_SERVER, self)
        self.s2c = Half(reader, info, Direction.SERVER_TO_CLIENT, self)
        self.events = reader.tcp_events  # SYN, FIN and RST as notices
        self.cost = 0  # what the reader holds for it, as last counted
        self.isn: int | None = None  # the client's SYN sequence number
        self.reset = False

    def frame_max(self, value: int, default: int) -> None:
        """connection.tune-ok fixed the frame size limit of both directions."""
        limit = value or default
        self.c2s.set_limit(limit)
        self.s2c.set_limit(limit)

    def weight(self) -> int:
        """What the reader holds for this connection now (``Half.held`` of both
        directions, inlined: this is asked after every packet)."""
        c2s, s2c = self.c2s, self.s2c
        held = CONNECTION_COST + c2s.tcp.pending + s2c.tcp.pending
        if c2s.stream is not None:
            held += len(c2s.stream.buf)
        if s2c.stream is not None:
            held += len(s2c.stream.buf)
        if c2s.messages is not None:
            held += c2s.messages.held
        if s2c.messages is not None:
            held += s2c.messages.held
        return held

    def dispose(self) -> None:
        """Break the reference cycles between the connection and its parts, so that
        its memory comes back at once rather than at the next full garbage collection."""
        for half in (self.c2s, self.s2c):
            half.conn = None
            half.messages = None

    def evict(self, text: str) -> list[Record]:
        """The connection's state is dropped (the memory budget): say so, and give out
        its messages in progress as partial."""
        records = self.c2s.drop(text, self.cost)
        if self.s2c.messages is not None:
            records += self.s2c.messages.finish()
        return records

    @property
    def done(self) -> bool:
        if self.reset:
            return True
        c2s, s2c = self.c2s.tcp, self.s2c.tcp
        return c2s.fin is not None and s2c.fin is not None and not c2s.pending + s2c.pending

    def packet(self, from_client: bool, tcp: Any, dpkt: Any, missing: int = 0) -> list[Record]:
        """One TCP segment; ``missing``: bytes of its payload the capture cut off."""
        half, other = (self.c2s, self.s2c) if from_client else (self.s2c, self.c2s)
        flags = tcp.flags
        seq = tcp.seq
        records: list[Record] = []
        if flags & dpkt.tcp.TH_SYN:
            half.tcp.syn(seq)
            if from_client and not flags & dpkt.tcp.TH_ACK:
                self.isn = seq
            seq = (seq + 1) & SEQ_MASK
            if self.events:
                name = "SYN+ACK" if flags & dpkt.tcp.TH_ACK else "SYN"
                records.append(self._notice(half, f"{name} from the {_SENDER[half.direction]}"))
        payload = tcp.data
        if payload:
            half.chunks(half.tcp.segment(seq, bytes(payload), None), records)
        if missing:
            half.chunks(half.tcp.skip((seq + len(payload)) & SEQ_MASK, missing), records)
        if flags & dpkt.tcp.TH_FIN:
            half.tcp.finish((seq + len(payload)) & SEQ_MASK)
            if self.events:
                records.append(self._notice(half, f"FIN from the {_SENDER[half.direction]}"))
        if flags & dpkt.tcp.TH_ACK:
            other.chunks(other.tcp.ack(tcp.ack), records)
        if flags & dpkt.tcp.TH_RST:
            self.reset = True
            if self.events:
                records.append(self._notice(half, f"RST from the {_SENDER[half.direction]}"))
        return records

    @staticmethod
    def _notice(half: Half, text: str) -> Notice:
        offset = half.tcp.offset + half.tcp.pending
        return half.notice(NoticeKind.TCP, offset, 0, text)

    def close(self) -> list[Record]:
        records: list[Record] = []
        for half in (self.c2s, self.s2c):
            half.chunks(half.tcp.flush(), records)
            records += half.finish()
        return records


_SYN_FIN_RST: Final = 0x07  # TH_FIN | TH_SYN | TH_RST [RFC 9293 §3.1]
_SYN: Final = 0x02
_ACK: Final = 0x10
_SYN_ACK: Final = 0x12

_SENDER: Final = {Direction.CLIENT_TO_SERVER: "client", Direction.SERVER_TO_CLIENT: "server"}


class TCPTracker:
    """Finds the AMQP connections among the packets and feeds their directions."""

    _MEMORY: Final = 65536  # flows remembered as closed / not AMQP / only a SYN so far

    def __init__(self, reader: CaptureReader) -> None:
        self.reader = reader
        self.dpkt = dpkt_module()
        self.conns: OrderedDict[Any, Conn] = OrderedDict()  # least recently active first
        self.held = 0  # what the connections cost, as last counted
        self.limit = reader.memory_limit
        self.closed: OrderedDict[Any, None] = OrderedDict()
        self.other: OrderedDict[Any, None] = OrderedDict()
        self.syns: OrderedDict[Any, dict[Any, int]] = OrderedDict()
        self.last: Any = None  # the key of the connection last in ``conns``, or None

    def _network(self, linktype: int, data: bytes) -> Any:
        dpkt = self.dpkt
        if linktype == LINK_ETHERNET:
            return dpkt.ethernet.Ethernet(data).data
        if linktype == LINK_LINUX_SLL:
            return dpkt.sll.SLL(data).data
        if linktype == LINK_LINUX_SLL2:
            return dpkt.sll2.SLL2(data).data
        if linktype in (LINK_NULL, LINK_LOOP):
            return dpkt.loopback.Loopback(data).data
        if not data:
            return None
        if data[0] >> 4 == 4:
            return dpkt.ip.IP(data)
        if data[0] >> 4 == 6:
            return dpkt.ip6.IP6(data)
        return None

    def _dpkt_segment(self, linktype: int, data: bytes) -> Any:
        """The packet's IP and TCP layers through dpkt's objects (None: not TCP)."""
        dpkt = self.dpkt
        try:
            ip = self._network(linktype, data)
        except (dpkt.Error, struct.error, ValueError, IndexError):
            ip = None
        if isinstance(ip, dpkt.ip.IP):
            if ip.mf or ip.offset:
                ip = None  # a fragment: TCP over loopback and LANs is not fragmented
        elif not isinstance(ip, dpkt.ip6.IP6):
            ip = None
        tcp = ip.data if ip is not None else None
        if not isinstance(tcp, dpkt.tcp.TCP):
            return None
        return Segment(
            ip.src,
            ip.dst,
            tcp.sport,
            tcp.dport,
            tcp.seq,
            tcp.ack,
            tcp.flags,
            tcp.data,
            _cut_off(ip, tcp),
        )

    def packet(self, ts: float, linktype: int, data: bytes) -> list[Record]:
        tcp = fast_segment(linktype, data)
        if tcp is None:
            tcp = self._dpkt_segment(linktype, data)
        if tcp is None or tcp is NOT_TCP:
            self.reader.stats.ignored_packets += 1
            return []
        src, dst = (tcp.src, tcp.sport), (tcp.dst, tcp.dport)
        key = (src, dst) if src < dst else (dst, src)
        flags = tcp.flags
        pure_syn = flags & _SYN_ACK == _SYN
        records: list[Record] = []
        conn = self.conns.get(key)
        if conn is not None and pure_syn and conn.isn != tcp.seq and src == conn.client:
            records += self._close(key, conn)  # the address pair is reused
            conn = None
        if conn is None:
            if key in self.closed and not pure_syn:
                self.reader.stats.ignored_packets += 1
                return records
            conn = self._new(key, src, dst, tcp, tcp, ts)
            if conn is None:
                self.reader.stats.ignored_packets += 1
                return records
        from_client = src == conn.client
        if flags & _SYN_FIN_RST or tcp.missing:
            records += conn.packet(from_client, tcp, self.dpkt, tcp.missing)
        else:
            # The common segment: data and/or an acknowledgement (Conn.packet's work
            # for it, inlined). In sequence with nothing held, its data goes straight to
            # the frame stream (what Reassembler.segment would do, without its list); an
            # acknowledgement with nothing held only moves ``acked``.
            half, other = (conn.c2s, conn.s2c) if from_client else (conn.s2c, conn.c2s)
            payload = tcp.data
            if payload:
                reassembler = half.tcp
                seq = tcp.seq
                if reassembler.next_seq == seq and not reassembler.held_back:
                    size = len(payload)
                    reassembler.offset += size
                    reassembler.next_seq = (seq + size) & SEQ_MASK
                    records += half.data(payload)
                else:
                    half.chunks(reassembler.segment(seq, bytes(payload), None), records)
            if flags & _ACK:
                reassembler = other.tcp
                if reassembler.held_back:
                    other.chunks(reassembler.ack(tcp.ack), records)
                else:
                    reassembler.ack(tcp.ack)  # nothing held: nothing to deliver
        if conn.done:
            records += self._close(key, conn)
        else:
            weight = conn.weight()
            self.held += weight - conn.cost
            conn.cost = weight
            if key != self.last:  # already the most recently active otherwise
                self.conns.move_to_end(key)
                self.last = key
            if self.held > self.limit:
                self._evict(conn, records)
        return records

    def _evict(self, current: Conn, records: list[Record]) -> None:
        """Drop the least recently active connections until the budget holds (the one
        being read stays: its frame and reorder buffers have bounds of their own)."""
        self.last = None
        while self.held > self.limit and len(self.conns) > 1:
            key, oldest = next(iter(self.conns.items()))
            del self.conns[key]
            self.held -= oldest.cost
            text = (
                f"the reader holds more than memory_limit ({self.limit} bytes): this"
                f" connection's state ({oldest.cost} bytes) is dropped, the least recently"
                " active first; later packets of it are read as a new connection"
            )
            records += oldest.evict(text)
            oldest.dispose()

    def _new(self, key: Any, src: Any, dst: Any, ip: Any, tcp: Any, ts: float) -> Conn | None:
        dpkt = self.dpkt
        ports = self.reader.ports
        flags = tcp.flags
        syn = flags & dpkt.tcp.TH_SYN
        if key in self.other and not (syn and not flags & dpkt.tcp.TH_ACK):
            return None
        self.other.pop(key, None)
        client: Any = None
        if tcp.dport in ports and tcp.sport not in ports:
            client = src
        elif tcp.sport in ports and tcp.dport not in ports:
            client = dst
        elif tcp.dport in ports:  # both: the SYN's sender is the client
            client = dst if syn and flags & dpkt.tcp.TH_ACK else src
        elif tcp.data:
            if bytes(tcp.data[:4]) != AMQP:
                _remember(self.other, key, None, self._MEMORY)
                self.syns.pop(key, None)
                return None
            client = src  # the protocol header opens a connection from the client
        if client is None or (not tcp.data and not syn):
            if syn:  # keep the handshake until the first payload says what this is
                _remember(self.syns, key, {}, self._MEMORY)
                self.syns[key][src] = tcp.seq
            return None
        server = dst if client == src else src
        family = socket.AF_INET6 if len(ip.src) == 16 else socket.AF_INET
        info = ConnectionInfo(
            self.reader.stats.connection_count,
            Endpoint(socket.inet_ntop(family, client[0]), client[1]),
            Endpoint(socket.inet_ntop(family, server[0]), server[1]),
        )
        self.reader.found(info)
        conn = Conn(self.reader, info, client)
        for side, seq in self.syns.pop(key, {}).items():
            (conn.c2s if side == client else conn.s2c).tcp.syn(seq)
            if side == client:
                conn.isn = seq
        self.conns[key] = conn
        return conn

    def _close(self, key: Any, conn: Conn) -> list[Record]:
        del self.conns[key]
        self.last = None
        self.held -= conn.cost
        _remember(self.closed, key, None, self._MEMORY)
        records = conn.close()
        conn.dispose()
        return records

    def finish(self) -> Iterator[Record]:
        for key, conn in sorted(self.conns.items(), key=lambda item: item[1].info.index):
            yield from self._close(key, conn)


class Segment:
    """What the reader needs of a TCP segment and the IP packet around it."""

    __slots__ = ("ack", "data", "dport", "dst", "flags", "missing", "seq", "sport", "src")

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        data: bytes,
        missing: int,
    ) -> None:
        self.src, self.dst, self.sport, self.dport = src, dst, sport, dport
        self.seq, self.ack, self.flags, self.data = seq, ack, flags, data
        self.missing = missing  # payload bytes the capture cut off (its snapshot length)


NOT_TCP: Final = Segment(b"", b"", 0, 0, 0, 0, 0, b"", 0)
"""What ``fast_segment`` says of a packet that is surely not TCP the reader wants."""

_IPV4: Final = struct.Struct("!xxHxxHxBxx4s4s")
_IPV6: Final = struct.Struct("!xxxxHBx16s16s")
_TCP: Final = struct.Struct("!HHIIBB")
_ETHER_IPV4: Final = b"\x08\x00"
_ETHER_IPV6: Final = b"\x86\xdd"
_NULL_IPV4: Final = frozenset({b"\x02\x00\x00\x00", b"\x00\x00\x00\x02"})
_NULL_IPV6: Final = frozenset(
    struct.pack(order, family) for order in ("<I", ">I") for family in (24, 28, 30)
)


def fast_segment(linktype: int, data: bytes) -> Segment | None:
    """The common packet (Ethernet, Linux cooked, loopback or raw; IPv4 without options
    or IPv6 without extension headers; TCP) read with three ``struct`` calls instead of
    dpkt's objects, which cost most of the time of reading a capture. None: anything
    else, for dpkt to read."""
    if linktype == LINK_ETHERNET:
        start, ethertype = 14, data[12:14]
    elif linktype == LINK_LINUX_SLL:
        start, ethertype = 16, data[14:16]
    elif linktype == LINK_LINUX_SLL2:
        start, ethertype = 20, data[0:2]
    elif linktype in (LINK_NULL, LINK_LOOP):
        family = data[0:4]
        start = 4
        ethertype = (
            _ETHER_IPV4 if family in _NULL_IPV4 else _ETHER_IPV6 if family in _NULL_IPV6 else b""
        )
    else:
        start = 0
        version = data[0] >> 4 if data else 0
        ethertype = _ETHER_IPV4 if version == 4 else _ETHER_IPV6 if version == 6 else b""
    size = len(data)
    if ethertype == _ETHER_IPV4:
        if size < start + 40 or data[start] != 0x45:
            return None  # short, or IP options: dpkt's business
        total, fragment, protocol, src, dst = _IPV4.unpack_from(data, start)
        if protocol != 6 or fragment & 0x3FFF:
            return NOT_TCP  # not TCP, or a fragment (not seen on loopback and LANs)
        tcp = start + 20
        end = start + total
    elif ethertype == _ETHER_IPV6:
        if size < start + 60:
            return None
        payload, next_header, src, dst = _IPV6.unpack_from(data, start)
        if next_header != 6:
            return None  # extension headers, or not TCP: dpkt's business
        tcp = start + 40
        end = tcp + payload
    else:
        return None
    sport, dport, seq, ack, offset, flags = _TCP.unpack_from(data, tcp)
    header = (offset >> 4) * 4
    if header < 20 or end < tcp + header or size < tcp + header:
        return None
    there = min(end, size)
    missing = end - there
    return Segment(src, dst, sport, dport, seq, ack, flags, data[tcp + header : there], missing)


def _cut_off(ip: Any, tcp: Any) -> int:
    """Bytes of the segment's payload the capture does not hold (its snapshot length cut
    the packet): what the IP header says there is minus what is there."""
    # Decide by the header's class (what dpkt parsed), not its version field: a damaged
    # IPv4 header may claim any version.
    if hasattr(ip, "hl"):
        declared = ip.len - ip.hl * 4 - tcp.off * 4
    elif getattr(ip, "nxt", None) == 6:  # IPv6 with no extension headers
        declared = ip.plen - tcp.off * 4
    else:
        return 0
    return max(0, int(declared) - len(tcp.data))


def _remember(memory: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    """Put ``key`` in a bounded memory, forgetting the oldest entry when it is full."""
    if key in memory:
        memory.move_to_end(key)
        return
    memory[key] = value
    if len(memory) > size:
        memory.popitem(last=False)
