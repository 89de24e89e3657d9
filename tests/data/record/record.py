"""Record real AMQP 0-9-1 traffic against the local RabbitMQ into tests/data/captures/.

Usage (as root, broker up via .ci/start-rabbitmq.sh, tcpdump + tshark installed):

    .venv/bin/python tests/data/record/record.py [SCENARIO ...]

For every scenario in scenarios.py this starts a capture on ``lo`` filtered to
``tcp port 5672`` (tcpdump for .pcap, dumpcap for .pcapng), runs the scenario,
stops the capture and writes next to it:

    NAME.frames.json            AMQP frames as tshark dissects them (tshark_frames.py)
    NAME.c2s.bin / NAME.s2c.bin reassembled TCP payload per direction (tcp_streams.py),
                                single-connection captures only

It also cuts ``midstream.pcap`` out of pika_publish_props (everything after the
packet carrying connection.open-ok), rewrites README.md and runs verify.py.
Only 127.0.0.1 / ::1 are ever contacted.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import amqp  # noqa: E402
import pika  # noqa: E402
import scenarios  # noqa: E402
import tcp_streams  # noqa: E402
import tshark_frames  # noqa: E402
import verify  # noqa: E402

OUT = HERE.parent / "captures"
BPF = "tcp port 5672"

# scenario -> (capture format, number of TCP connections it makes)
PLAN: dict[str, tuple[str, int]] = {
    "pika_handshake_close": ("pcap", 1),
    "pika_publish_props": ("pcapng", 1),
    "pika_large_body": ("pcap", 1),
    "pika_heartbeat": ("pcapng", 1),
    "pika_channel_error": ("pcap", 1),
    "pyamqp_session": ("pcapng", 1),
    "two_connections": ("pcap", 2),
    "ipv6_loopback": ("pcapng", 1),
}
MIDSTREAM_SOURCE = "pika_publish_props"

DESCRIPTIONS = {
    "pika_handshake_close": "pika BlockingConnection connect + close, nothing else",
    "pika_publish_props": (
        "pika: every BasicProperties field set, headers table with str/int/"
        "large int/negative int/bool/Decimal/datetime/nested table/array/void/"
        "bytes values (no float: pika cannot encode one); publish then basic.get it back"
    ),
    "pika_large_body": (
        "pika with frame_max=4096: 100,000-byte body published and fetched back "
        "(multi-frame bodies both ways), then an empty body published and fetched"
    ),
    "pika_heartbeat": "pika heartbeat=1, idle ~3.5 s so heartbeats flow both ways, then close",
    "pika_channel_error": (
        "pika: passive queue.declare of a missing queue -> channel.close 404, "
        "then a second channel declares/publishes/gets/deletes and closes"
    ),
    "pyamqp_session": (
        "py-amqp: connect, queue.declare, 2 messages with properties (headers with "
        "float 'd', 64-bit int 'L', bytes) published and fetched by basic.get, "
        "queue.delete, channel + connection close"
    ),
    "two_connections": (
        "two interleaved pika connections (tcp.stream 0 and 1): open both, "
        "publish+get on each, close both; no .bin files"
    ),
    "ipv6_loopback": "one pika connection to [::1]: connect, channel open/close, close",
    "midstream": (
        f"{MIDSTREAM_SOURCE}.pcapng cut (editcap -r) to start at the first packet "
        "after connection.open-ok: no protocol header, no connection handshake"
    ),
}


class Capture:
    """tcpdump (pcap) or dumpcap (pcapng) on lo, as a child process."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        if fmt == "pcap":
            # --immediate-mode: without it this kernel delivered no packets to tcpdump
            cmd = ["tcpdump", "-i", "lo", "--immediate-mode", "-B", "16384", "-U", "-Z", "root"]
            cmd.append("-w")
            ready = "listening on"
        else:
            cmd = ["dumpcap", "-i", "lo", "-B", "16", "-f", BPF, "-w"]
            ready = "Capturing on"
        cmd = [*cmd, str(path)] + ([BPF] if fmt == "pcap" else [])
        path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # wait for the "ready" line
            if ready in line:
                break
        else:
            raise RuntimeError(f"{cmd[0]} exited before it was ready")
        time.sleep(0.5)

    def stop(self) -> str:
        """Stop capturing; returns the tool's closing statistics."""
        time.sleep(0.5)  # let the last FIN/ACKs in
        self.proc.send_signal(signal.SIGINT)
        _out, err = self.proc.communicate(timeout=30)
        if self.proc.returncode != 0:
            raise RuntimeError(f"capture exited {self.proc.returncode}: {err}")
        os.chmod(self.path, 0o644)
        return " ".join(err.split())


def record(name: str) -> Path:
    fmt, n_conns = PLAN[name]
    path = OUT / f"{name}.{fmt}"
    for attempt in range(1, 4):
        cap = Capture(path, fmt)
        try:
            scenarios.SCENARIOS[name]()
        finally:
            stats = cap.stop()
        conns = tcp_streams.connections(str(path))
        try:
            for conn in conns:  # raises on a gap, i.e. a segment the capture missed
                conn.c2s.payload()
                conn.s2c.payload()
        except ValueError as exc:
            problem = f"incomplete capture: {exc} ({stats})"
        else:
            if len(conns) == n_conns:
                return path
            # someone else talked to the broker during the capture
            problem = f"{len(conns)} connections captured, expected {n_conns}"
        print(f"  {name}: {problem}; try {attempt} of 3")
    raise RuntimeError(f"{name}: could not get a clean capture")


def derive(path: Path) -> None:
    name = path.name.rsplit(".", 1)[0]
    frames = tshark_frames.frames(str(path))
    (OUT / f"{name}.frames.json").write_text(tshark_frames.dump(frames))
    for old in OUT.glob(f"{name}.*.bin"):
        old.unlink()
    if len(tcp_streams.connections(str(path))) == 1:
        tcp_streams.write_bins(str(path), str(OUT / name))


def cut_midstream() -> Path:
    src = OUT / f"{MIDSTREAM_SOURCE}.{PLAN[MIDSTREAM_SOURCE][0]}"
    fields = ["-T", "fields", "-e", "frame.number"]
    open_ok = "amqp.method.class == 10 && amqp.method.method == 41"
    first = subprocess.run(
        ["tshark", "-2", "-r", str(src), "-Y", open_ok, *fields],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    total = subprocess.run(
        ["tshark", "-r", str(src), *fields], check=True, capture_output=True, text=True
    ).stdout.split()
    start, end = int(first[0]) + 1, int(total[-1])
    dst = OUT / "midstream.pcap"
    subprocess.run(
        ["editcap", "-F", "pcap", "-r", str(src), str(dst), f"{start}-{end}"], check=True
    )
    os.chmod(dst, 0o644)
    return dst


def _cmd(*args: str) -> str:
    return subprocess.run(args, capture_output=True, text=True).stdout.strip()


def write_readme(captures: list[Path]) -> None:
    today = datetime.date.today().isoformat()
    broker = _cmd("rabbitmqctl", "version") or "?"
    deb = _cmd("dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server") or "?"
    tshark = _cmd("tshark", "--version").splitlines()[0].rstrip(".")
    clients = {"pika": f"pika {pika.__version__}", "pyamqp": f"py-amqp {amqp.__version__}"}
    lines = [
        "# Real AMQP 0-9-1 captures",
        "",
        f"Recorded {today} on loopback against RabbitMQ {broker} (Debian package {deb}),",
        f"dissected with {tshark}. Re-record everything (root, broker running):",
        "",
        "    bash .ci/start-rabbitmq.sh",
        "    apt-get install -y tcpdump tshark",
        "    .venv/bin/python tests/data/record/record.py",
        "",
        "Check the derived files again without re-recording: "
        "`.venv/bin/python tests/data/record/verify.py`.",
        "",
        "| capture | scenario | client | broker | date |",
        "| --- | --- | --- | --- | --- |",
    ]
    for cap in captures:
        name = cap.name.rsplit(".", 1)[0]
        client = clients["pyamqp" if name.startswith("pyamqp") else "pika"]
        lines.append(
            f"| `{cap.name}` | {DESCRIPTIONS[name]} | {client} | RabbitMQ {broker} | {today} |"
        )
    lines += ["", (HERE / "README_NOTES.md").read_text().rstrip(), ""]
    (OUT / "README.md").write_text("\n".join(lines))


def main(argv: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    names = argv[1:] or list(PLAN)
    for name in names:
        print(f"recording {name}")
        derive(record(name))
    if MIDSTREAM_SOURCE in names:
        derive(cut_midstream())
    captures = sorted(p for p in OUT.iterdir() if p.suffix in (".pcap", ".pcapng"))
    write_readme(captures)
    sys.exit(verify.main([]))


if __name__ == "__main__":
    main(sys.argv)
