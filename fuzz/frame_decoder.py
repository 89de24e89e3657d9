"""Harness: FrameDecoder over any bytes, cut into chunks of a drawn size.

Promises checked: only DecodeError comes out; any split gives the same frames; the
frames decoded re-encode to exactly the bytes they came from.
Seeds: the recorded streams in tests/data/captures/*.bin.
"""

from __future__ import annotations

import atheris
from _harness import LOSSLESS, files, run

with atheris.instrument_imports():
    from amqpcodec import DecodeError, FrameDecoder


def feed(data: bytes, chunk: int) -> tuple[list[object], bool]:
    decoder = FrameDecoder(max_frame_size=131072)
    frames: list[object] = []
    try:
        for at in range(0, len(data), chunk):
            frames += decoder.feed(data[at : at + chunk])
    except DecodeError as exc:
        return frames + list(exc.frames), True
    return frames, False


def test_one_input(raw: bytes) -> None:
    if not raw:
        return
    chunk, data = raw[0] % 17 + 1, raw[1:]
    whole, failed = feed(data, len(data) or 1)
    split, failed_split = feed(data, chunk)
    if (whole, failed) != (split, failed_split):
        raise AssertionError(f"split {chunk} gives other frames: {whole!r} vs {split!r}")
    encoded = b"".join(frame.encode() for frame in whole)  # type: ignore[attr-defined]
    if LOSSLESS and data[: len(encoded)] != encoded:
        raise AssertionError("decoded frames do not re-encode to their bytes")


if __name__ == "__main__":
    run("frame_decoder", test_one_input, (b"\x07" + seed for seed in files("captures/*.bin")))
