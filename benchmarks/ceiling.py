"""The ceiling: hand-specialised, straight-line pure Python for exactly two workloads.

    .venv/bin/python benchmarks/ceiling.py   (bench.py prints the same rows, and all others)

``publish`` encodes one Basic.Publish + content header (content_type, delivery_mode,
a headers table of str/int values, message_id) + one body frame; ``deliver_frames``
decodes a stream of Basic.Deliver + header + body messages with exactly that shape into
tuples. Neither checks anything the workload does not need, handles another method or
property, or keeps a buffer between reads: they are the fastest code this project
could write for the benchmark's workload, a yardstick for how much the generated,
general, checked code costs. ``bench.py`` checks both against amqpcodec's real output
and prints them next to it.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_FRAME = struct.Struct(">BHI")
_FRAME_INDEX = struct.Struct(">BHII")  # frame header + class/method index
_PUBLISH_HEAD = struct.Struct(">BHIHHHB")  # frame header, 60, 40, ticket, len(exchange)
_CONTENT_HEAD = struct.Struct(">BBHIHHQH")  # end, header frame, class, weight, size, flags
_BODY_HEAD = struct.Struct(">BBHI")
_LETTER_I32 = struct.Struct(">Bi")
_LETTER_LEN = struct.Struct(">BI")
_U32 = struct.Struct(">I")
_Q_B_B = struct.Struct(">QBB")
_HHQH = struct.Struct(">HHQH")


def publish(
    channel: int,
    exchange: str,
    routing_key: str,
    content_type: str,
    delivery_mode: int,
    headers: Mapping[str, Any],
    message_id: str,
    body: bytes,
) -> bytes:
    """Method frame, header frame (flags 0xB080) and one body frame, as one bytes."""
    ex = exchange.encode()
    rk = routing_key.encode()
    method_size = 4 + 2 + 1 + len(ex) + 1 + len(rk) + 1
    props = bytearray()
    ct = content_type.encode()
    props.append(len(ct))
    props += ct
    table = bytearray(b"\0\0\0\0")
    for key, value in headers.items():
        raw = key.encode()
        table.append(len(raw))
        table += raw
        if type(value) is str:
            text = value.encode()
            table += _LETTER_LEN.pack(83, len(text))
            table += text
        else:
            table += _LETTER_I32.pack(73, value)
    _U32.pack_into(table, 0, len(table) - 4)
    props += table
    mid = message_id.encode()
    props.append(delivery_mode)
    props.append(len(mid))
    props += mid
    return b"".join(
        (
            _PUBLISH_HEAD.pack(1, channel, method_size, 60, 40, 0, len(ex)),
            ex,
            bytes((len(rk),)),
            rk,
            b"\0",
            _CONTENT_HEAD.pack(0xCE, 2, channel, len(props) + 14, 60, 0, len(body), 0xB080),
            props,
            _BODY_HEAD.pack(0xCE, 3, channel, len(body)),
            body,
            b"\xce",
        )
    )


def deliver_frames(chunks: list[bytes]) -> list[tuple[Any, ...]]:
    """Every frame of a Basic.Deliver stream as a tuple: ("method", channel, fields),
    ("header", channel, body_size, (content_type, delivery_mode, headers, message_id)),
    ("body", channel, payload). Headers hold str (S) and int (I) values only."""
    frames: list[tuple[Any, ...]] = []
    append = frames.append
    unpack_frame = _FRAME_INDEX.unpack_from
    rest = b""
    for chunk in chunks:
        data = rest + chunk if rest else chunk
        size = len(data)
        off = 0
        while size - off >= 11:
            kind, channel, length, _index = unpack_frame(data, off)
            start = off + 7
            end = start + length
            if end >= size:
                break
            if kind == 3:
                append(("body", channel, data[start:end]))
            elif kind == 1:
                p = start + 4
                n = data[p]
                tag = str(data[p + 1 : p + 1 + n], "utf-8")
                p += 1 + n
                delivery_tag, redelivered, n = _Q_B_B.unpack_from(data, p)
                p += 10
                exchange = str(data[p : p + n], "utf-8")
                p += n
                n = data[p]
                routing_key = str(data[p + 1 : p + 1 + n], "utf-8")
                append(
                    (
                        "method",
                        channel,
                        (tag, delivery_tag, redelivered == 1, exchange, routing_key),
                    )
                )
            else:
                _cls, _weight, body_size, _flags = _HHQH.unpack_from(data, start)
                p = start + 14
                n = data[p]
                content_type = str(data[p + 1 : p + 1 + n], "utf-8")
                p += 1 + n
                stop = p + 4 + _U32.unpack_from(data, p)[0]
                p += 4
                headers: dict[str, Any] = {}
                while p < stop:
                    n = data[p]
                    key = str(data[p + 1 : p + 1 + n], "utf-8")
                    p += 1 + n
                    if data[p] == 83:
                        n = _U32.unpack_from(data, p + 1)[0]
                        headers[key] = str(data[p + 5 : p + 5 + n], "utf-8")
                        p += 5 + n
                    else:
                        headers[key] = _LETTER_I32.unpack_from(data, p)[1]
                        p += 5
                delivery_mode = data[p]
                n = data[p + 1]
                message_id = str(data[p + 2 : p + 2 + n], "utf-8")
                props = (content_type, delivery_mode, headers, message_id)
                append(("header", channel, body_size, props))
            off = end + 1
        rest = data[off:]
    return frames


if __name__ == "__main__":  # the two rows of bench.py that have a ceiling column
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench

    bench.main(["--only", "bench_publish", "--only", "bench_decode"])
