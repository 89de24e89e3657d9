"""Harness: field tables and arrays decoded under both dialects.

Promises checked: only DecodeError comes out; a table that decodes re-encodes to
exactly its bytes (its type letters remembered).
Seeds: every table argument and property of the frames recorded in
tests/data/captures/*.bin, encoded.
"""

from __future__ import annotations

import contextlib

import atheris
from _harness import LOSSLESS, files, run

with atheris.instrument_imports():
    from amqpcodec import RABBITMQ, STRICT, DecodeError, FieldTable, FrameDecoder
    from amqpcodec._wire import decode_array, decode_table, encode_table


def test_one_input(raw: bytes) -> None:
    if not raw:
        return
    dialect = STRICT if raw[0] & 1 else RABBITMQ
    data = raw[1:]
    try:
        table, end = decode_table(data, 0, len(data), dialect)
    except DecodeError:
        pass
    else:
        if LOSSLESS and encode_table(table, dialect=dialect) != data[:end]:
            raise AssertionError("a decoded table does not re-encode to its bytes")
    with contextlib.suppress(DecodeError):
        decode_array(data, 0, len(data), dialect)


def seeds() -> list[bytes]:
    out = []
    for stream in files("captures/*.bin"):
        try:
            frames = FrameDecoder(0).feed(stream)
        except DecodeError:
            continue
        for frame in frames:
            holder = getattr(frame, "method", None) or getattr(frame, "properties", None)
            for name in getattr(holder, "FIELDS", ()):
                value = getattr(holder, name, None)
                if isinstance(value, FieldTable) and value:
                    out.append(b"\x00" + encode_table(value))
    return out


if __name__ == "__main__":
    run("field_tables", test_one_input, seeds())
