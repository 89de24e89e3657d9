"""Harness: the capture reader (pcap, pcapng, hex dumps, raw streams) over any bytes.

Promises checked: only amqpcodec's errors (CaptureError and the other AMQPErrors) come
out of reading every record. The format is sniffed; an input whose length is a multiple
of 7 is read as a raw client stream as well.
Seeds: tests/data/captures (pcap, pcapng, raw) and tests/data/hex.
"""

from __future__ import annotations

import io

import atheris
from _harness import files, run

with atheris.instrument_imports():
    from amqpcodec import AMQPError
    from amqpcodec.capture import read_capture


def read(data: bytes, **options: object) -> None:
    try:
        for _ in read_capture(io.BytesIO(data), **options):
            pass
    except AMQPError:
        pass


def test_one_input(data: bytes) -> None:
    read(data, resync_on_error=bool(len(data) & 1), messages=bool(len(data) & 2))
    if len(data) % 7 == 0:
        read(data, input_format="raw", direction="c2s")


if __name__ == "__main__":
    run(
        "capture_reader",
        test_one_input,
        files("captures/*.pcap", "captures/*.pcapng", "captures/*.bin", "hex/*.txt"),
    )
