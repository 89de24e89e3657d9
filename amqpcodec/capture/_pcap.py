"""Packets out of pcap and pcapng files: (timestamp, link-layer type, bytes) each.

dpkt (the ``capture`` extra) parses the containers; nothing is read whole.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, Final

from ._input import MAX_RECORD, Input
from ._records import CaptureError, CaptureStats

__all__ = [
    "LINK_ETHERNET",
    "LINK_LINUX_SLL",
    "LINK_LINUX_SLL2",
    "LINK_LOOP",
    "LINK_NAMES",
    "LINK_NULL",
    "PCAPNG_MAGIC",
    "PCAP_MAGICS",
    "dpkt_module",
    "pcap_packets",
    "pcapng_packets",
]

# tcpdump.org link-layer header types (the values stored in files)
LINK_NULL: Final = 0
LINK_ETHERNET: Final = 1
_LINK_RAW: Final = 101
LINK_LOOP: Final = 108
LINK_LINUX_SLL: Final = 113
_LINK_IPV4: Final = 228
_LINK_IPV6: Final = 229
LINK_LINUX_SLL2: Final = 276
_LINK_RAW_OLD: Final = (12, 14)  # DLT_RAW as some platforms wrote it
LINK_NAMES: Final = {
    LINK_NULL: "BSD loopback",
    LINK_ETHERNET: "Ethernet",
    _LINK_RAW: "raw IP",
    LINK_LOOP: "OpenBSD loopback",
    LINK_LINUX_SLL: "Linux cooked (SLL)",
    _LINK_IPV4: "raw IPv4",
    _LINK_IPV6: "raw IPv6",
    LINK_LINUX_SLL2: "Linux cooked v2 (SLL2)",
    12: "raw IP",
    14: "raw IP",
}

PCAP_MAGICS: Final = frozenset(
    {b"\xa1\xb2\xc3\xd4", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1"}
)
PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"


def dpkt_module() -> Any:
    try:
        import dpkt
    except ImportError:
        raise CaptureError(
            "reading pcap and pcapng files needs dpkt: pip install 'amqpcodec[capture]'"
        ) from None
    return dpkt


def pcap_packets(source: Input, stats: CaptureStats) -> Iterator[tuple[float, int, bytes]]:
    dpkt = dpkt_module()
    head = source.read(24)
    try:
        reader = dpkt.pcap.Reader(io.BytesIO(head))
    except (ValueError, dpkt.Error) as exc:
        raise CaptureError(f"not a readable pcap file: {exc}") from None
    linktype = reader.datalink()
    if linktype not in LINK_NAMES:
        raise CaptureError(_unsupported_link(linktype))
    before = stats.bytes_read
    if head[:4] in PCAP_MAGICS and source.counts:
        before = yield from _pcap_records(source, stats, head[:4], linktype)
    else:  # a compressed file, or a pcap variant with longer record headers: dpkt's reader
        reader = dpkt.pcap.Reader(_Rest(head, source))
        packets = iter(reader)
        while True:
            try:
                ts, data = next(packets)
            except StopIteration:
                break
            except (dpkt.Error, struct.error):
                source.cut = True
                break
            stats.packets += 1
            before = stats.bytes_read
            yield float(ts), linktype, data
    if source.cut:
        # A record cut short by the end of the file, or a damaged record header (a
        # length of 0 makes the next record's header out of its data): either way the
        # rest is not read.
        left = f"{stats.size - before} bytes" if stats.size is not None else "the rest"
        _incomplete(
            stats,
            f"the capture file ends in the middle of a packet record, or a record is"
            f" damaged: {left} after packet {stats.packets} not read",
        )


class _Rest(io.RawIOBase):
    """The file header already read, then the rest of the input: what dpkt's reader
    reads from."""

    def __init__(self, head: bytes, source: Input) -> None:
        super().__init__()
        self.head = head
        self.source = source

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return self.source.read(size)


_RECORD_LE: Final = struct.Struct("<IIII")
_RECORD_BE: Final = struct.Struct(">IIII")
_LITTLE_ENDIAN: Final = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")
_NANOSECONDS: Final = (b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")
_CHUNK: Final = 64 * 1024  # per read: a few dozen packets, and little memory


def _pcap_records(
    source: Input, stats: CaptureStats, magic: bytes, linktype: int
) -> Generator[tuple[float, int, bytes], None, int]:
    """The packet records of a pcap file, read in chunks of up to 64 KiB (as the stream
    gives them, so a live capture's packets come as they arrive) and cut out of the
    chunk: what dpkt's reader gives, the same timestamps (nanoseconds divided exactly,
    as its Decimal does) and the same ends (a record cut short is given as far as it
    goes, then the input counts as cut), at a fraction of the cost. Returns
    ``bytes_read`` after the last whole record given."""
    unpack = (_RECORD_LE if magic in _LITTLE_ENDIAN else _RECORD_BE).unpack_from
    nano = magic in _NANOSECONDS
    read = source.read_chunk
    buf = b""
    pos = 0
    before = stats.bytes_read
    while True:
        if len(buf) - pos < 16:
            more = read(_CHUNK)
            buf = buf[pos:] + more if pos < len(buf) else more
            pos = 0
            if more:
                continue
            if buf:  # a record header cut short
                stats.bytes_read += len(buf)
                source.cut = True
            return before
        seconds, fraction, caplen, _ = unpack(buf, pos)
        if caplen > MAX_RECORD:
            stats.bytes_read += 16
            raise CaptureError(f"a capture record of {caplen} bytes: the file is damaged")
        start = pos + 16
        end = start + caplen
        if end > len(buf):
            parts = [buf[start:]]
            have = len(buf) - start
            while have < caplen:
                more = read(max(_CHUNK, caplen - have))
                if not more:
                    break
                parts.append(more)
                have += len(more)
            buf = b"".join(parts)
            start, end, pos = 0, caplen, 0
            if have < caplen:
                end = have
                source.cut = source.cut or have > 0  # as a short read of the record does
        data = buf[start:end]
        pos = end
        stats.bytes_read += 16 + len(data)
        stats.packets += 1
        before = stats.bytes_read
        if nano:
            yield (seconds * 1_000_000_000 + fraction) / 1_000_000_000, linktype, data
        else:
            yield seconds + fraction / 1e6, linktype, data


def _incomplete(stats: CaptureStats, text: str) -> None:
    """Part of the capture could not be read (and what could was)."""
    stats.warnings.append(text)
    stats.incomplete.append(text)


def _unsupported_link(linktype: int) -> str:
    names = ", ".join(sorted(set(LINK_NAMES.values())))
    return f"link-layer type {linktype} is not supported (supported: {names})"


# pcapng block types and options [pcapng draft §4]
_PCAPNG_SHB: Final = 0x0A0D0D0A
_PCAPNG_IDB: Final = 1
_PCAPNG_PB: Final = 2
_PCAPNG_SPB: Final = 3
_PCAPNG_EPB: Final = 6
_PCAPNG_EPB_READ: Final = -_PCAPNG_EPB  # an EPB the fast path has read
_EPB_LE: Final = struct.Struct("<IIII")  # interface, timestamp high and low, captured length
_EPB_BE: Final = struct.Struct(">IIII")
_U32_LE: Final = struct.Struct("<I")
_U32_BE: Final = struct.Struct(">I")
_OPT_TSRESOL: Final = 9
_OPT_TSOFFSET: Final = 14


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    divisor: float = 1e6
    offset: int = 0


def pcapng_packets(source: Input, stats: CaptureStats) -> Iterator[tuple[float, int, bytes]]:
    """Packets of a pcapng file; one whose every packet has an unsupported link type is
    refused as a pcap file of that link type is, one with some is read in part."""
    unsupported: set[int] = set()
    usable = 0
    for packet in _pcapng_packets(source, stats, unsupported):
        usable += 1
        yield packet
    if unsupported and not usable:
        raise CaptureError("; ".join(_unsupported_link(t) for t in sorted(unsupported)))
    for linktype in sorted(unsupported):
        stats.incomplete.append(_unsupported_link(linktype) + "; its packets skipped")


def _pcapng_packets(
    source: Input, stats: CaptureStats, warned: set[int]
) -> Iterator[tuple[float, int, bytes]]:
    """Packets of a pcapng file, read block by block with dpkt's block classes.

    dpkt's own pcapng.Reader uses the first interface's link type and time resolution
    for every packet and ignores later sections; a capture of several interfaces
    (Wireshark with more than one selected) needs each packet's own interface.
    """
    dpkt = dpkt_module()
    ng = dpkt.pcapng
    order = "<"
    interfaces: list[_Interface] = []
    started = False
    while True:
        header = source.read(8)
        if len(header) < 8:
            if header:
                _incomplete(stats, "the capture file ends in the middle of a pcapng block")
            return
        if header[:4] == PCAPNG_MAGIC:  # a section header block starts a new section
            bom = source.read(4)
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise CaptureError("not a readable pcapng file: bad byte-order magic")
            (length,) = struct.unpack(order + "I", header[4:])
            if length < 28 or length % 4:
                raise CaptureError(f"the pcapng file is damaged: a section header of {length}")
            source.read(length - 12)
            interfaces = []
            started = True
            continue
        if not started:
            raise CaptureError("not a readable pcapng file: no section header block")
        block_type, length = struct.unpack(order + "II", header)
        if length < 12 or length % 4:
            raise CaptureError(f"the pcapng file is damaged: a block of {length} bytes")
        body = source.read(length - 8)
        if len(body) < length - 8:
            _incomplete(stats, "the capture file ends in the middle of a pcapng block")
            return
        stamp: int | None = None
        if block_type == _PCAPNG_EPB:
            fast = _epb(body, length, order)
            if fast is not None:
                index, stamp, data = fast
                block_type = _PCAPNG_EPB_READ
        block = header + body if block_type != _PCAPNG_EPB_READ else b""
        little = order == "<"
        try:
            if block_type == _PCAPNG_IDB:
                idb = (ng.InterfaceDescriptionBlockLE if little else ng.InterfaceDescriptionBlock)(
                    block
                )
                iface = _Interface(idb.linktype, idb.snaplen)
                for opt in idb.opts:
                    if opt.code == _OPT_TSRESOL and opt.data:
                        value = opt.data[0]
                        iface.divisor = float((2 if value & 0x80 else 10) ** (value & 0x7F))
                    elif opt.code == _OPT_TSOFFSET and len(opt.data) == 8:
                        iface.offset = struct.unpack(order + "q", opt.data)[0]
                interfaces.append(iface)
                continue
            if block_type == _PCAPNG_EPB_READ:
                pass  # read above
            elif block_type in (_PCAPNG_EPB, _PCAPNG_PB):
                if block_type == _PCAPNG_EPB:
                    cls = ng.EnhancedPacketBlockLE if little else ng.EnhancedPacketBlock
                else:
                    cls = ng.PacketBlockLE if little else ng.PacketBlock
                packet = cls(block)
                index, stamp, data = (
                    packet.iface_id,
                    packet.ts_high << 32 | packet.ts_low,
                    packet.pkt_data,
                )
            elif block_type == _PCAPNG_SPB:
                (original,) = struct.unpack_from(order + "I", block, 8)
                index, data = 0, block[12 : 12 + min(original, length - 16)]
            else:
                continue  # name resolution, statistics, decryption secrets, custom blocks
        except (dpkt.Error, struct.error, UnicodeDecodeError):
            # (UnicodeDecodeError: dpkt decodes a comment option as UTF-8)
            raise CaptureError(f"the pcapng file is damaged: block type {block_type}") from None
        if index >= len(interfaces):
            raise CaptureError(f"the pcapng file is damaged: a packet on interface {index}")
        iface = interfaces[index]
        stats.packets += 1
        if iface.linktype not in LINK_NAMES:
            stats.ignored_packets += 1
            if iface.linktype not in warned:
                warned.add(iface.linktype)
                stats.warnings.append(_unsupported_link(iface.linktype) + "; its packets skipped")
            continue
        ts = iface.offset + stamp / iface.divisor if stamp is not None else 0.0
        yield ts, iface.linktype, bytes(data)


def _epb(body: bytes, length: int, order: str) -> tuple[int, int, bytes] | None:
    """An enhanced packet block's interface, timestamp and data, read with two struct
    calls instead of dpkt's block class, when it has no options (dpkt would find none)
    and its two lengths agree; None for dpkt's class to read (or refuse) it."""
    if length < 32:
        return None
    index, high, low, caplen = (_EPB_LE if order == "<" else _EPB_BE).unpack_from(body)
    trailer = (_U32_LE if order == "<" else _U32_BE).unpack_from(body, length - 12)[0]
    if 28 + caplen + (-caplen % 4) < length - 4 or trailer != length:
        return None
    return index, high << 32 | low, body[20 : 20 + caplen]
