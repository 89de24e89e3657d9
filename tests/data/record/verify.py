"""Cross-check the files in tests/data/captures/.

Usage: python verify.py     (exit status 0 when everything agrees)

For every capture and every TCP connection in it:
  * walk both directions with a tiny independent frame parser
    (type u8 / channel u16 / size u32 / payload / 0xCE) and compare the frame
    sequence (type, channel, size) with NAME.frames.json (what tshark reported);
  * where NAME.c2s.bin / NAME.s2c.bin exist: they must equal the dpkt reassembly
    and tshark's ``-z follow,tcp,raw,0`` bytes, and c2s must start with the
    AMQP 0-9-1 protocol header unless the capture is a mid-stream cut.
Also checks that the folder stays under 1 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tcp_streams  # noqa: E402

OUT = HERE.parent / "captures"
PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
TYPES = {1: "method", 2: "header", 3: "body", 8: "heartbeat"}
MAX_FOLDER_BYTES = 1_000_000


def walk(data: bytes) -> list[tuple[str, int, int]]:
    """(type, channel, size) of each frame; protocol header as ("protocol-header", -1, 8)."""
    out: list[tuple[str, int, int]] = []
    pos = 0
    if data.startswith(b"AMQP"):
        out.append(("protocol-header", -1, 8))
        pos = 8
    while pos < len(data):
        if pos + 7 > len(data):
            raise ValueError(f"truncated frame header at {pos}")
        ftype = data[pos]
        channel = int.from_bytes(data[pos + 1 : pos + 3], "big")
        size = int.from_bytes(data[pos + 3 : pos + 7], "big")
        end = pos + 7 + size
        if end >= len(data) or data[end] != 0xCE:
            raise ValueError(f"no frame-end octet for frame at {pos}")
        out.append((TYPES.get(ftype, f"unknown-{ftype}"), channel, size))
        pos = end + 1
    return out


def follow_raw(capture: Path, stream: int) -> tuple[bytes, bytes]:
    """tshark's view of a TCP stream: (first speaker's bytes, the other side's)."""
    text = subprocess.run(
        ["tshark", "-r", str(capture), "-q", "-z", f"follow,tcp,raw,{stream}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    a, b = bytearray(), bytearray()
    for line in text.splitlines():
        if not line.strip() or ":" in line or line.startswith("="):  # banners, "Node 0:"
            continue
        (b if line.startswith("\t") else a).extend(bytes.fromhex(line.strip()))
    return bytes(a), bytes(b)


def check(capture: Path) -> list[str]:
    errors: list[str] = []
    name = capture.name.rsplit(".", 1)[0]
    frames = json.loads((OUT / f"{name}.frames.json").read_text())
    conns = tcp_streams.connections(str(capture))
    bins = {d: OUT / f"{name}.{d}.bin" for d in ("c2s", "s2c")}
    for stream, conn in enumerate(conns):
        for direction in ("c2s", "s2c"):
            # walk the .bin file itself where there is one, else the dpkt reassembly
            if bins[direction].exists():
                data = bins[direction].read_bytes()
            else:
                data = getattr(conn, direction).payload()
            try:
                mine = walk(data)
            except ValueError as exc:
                errors.append(f"{name} stream {stream} {direction}: {exc}")
                continue
            theirs = [
                (f["type"], f.get("channel", -1), f.get("length", 8))
                for f in frames
                if f["stream"] == stream and f["dir"] == direction
            ]
            if mine != theirs:
                pairs = zip(mine, theirs, strict=False)
                first = next((i for i, (x, y) in enumerate(pairs) if x != y), None)
                errors.append(
                    f"{name} stream {stream} {direction}: parser found {len(mine)} frames, "
                    f"tshark {len(theirs)}; first difference at frame {first}"
                )
    if any(p.exists() for p in bins.values()):
        if len(conns) != 1:
            return [*errors, f"{name}: .bin files for a capture of {len(conns)} connections"]
        c2s, s2c = bins["c2s"].read_bytes(), bins["s2c"].read_bytes()
        if (c2s, s2c) != (conns[0].c2s.payload(), conns[0].s2c.payload()):
            errors.append(f"{name}: .bin files differ from the dpkt reassembly")
        node0, node1 = follow_raw(capture, 0)
        if {node0, node1} != {c2s, s2c}:
            errors.append(
                f"{name}: .bin files differ from tshark follow "
                f"({len(c2s)}/{len(s2c)} vs {len(node0)}/{len(node1)} bytes)"
            )
        has_handshake = any(f["type"] == "protocol-header" for f in frames)
        if has_handshake and not c2s.startswith(PROTOCOL_HEADER):
            errors.append(f"{name}: c2s.bin does not start with the AMQP 0-9-1 header")
    return errors


def main(argv: list[str]) -> int:
    captures = sorted(p for p in OUT.iterdir() if p.suffix in (".pcap", ".pcapng"))
    errors: list[str] = []
    for capture in captures:
        errs = check(capture)
        errors += errs
        print(f"{'FAIL' if errs else 'ok  '} {capture.name}")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    if total > MAX_FOLDER_BYTES:
        errors.append(f"captures folder is {total} bytes (> {MAX_FOLDER_BYTES})")
    for e in errors:
        print("  " + e)
    print(f"{len(captures)} captures, {total} bytes, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
