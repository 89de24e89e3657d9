"""Record the captures that ``amqpcodec report`` is tested on, into tests/data/captures/report/.

Usage (as root, broker up via .ci/start-rabbitmq.sh, tcpdump installed):

    .venv/bin/python tests/data/record/record_report.py [SCENARIO ...]

For every scenario in report_scenarios.py this runs tcpdump on ``lo`` (filter
``tcp port 5672``), runs the scenario, stops tcpdump, keeps only the packets of the
scenario's own connections (others may be using the broker at the same time) and writes

    NAME.pcap          the capture
    NAME.facts.json    what the scenario did (report_scenarios.py), plus a description

Two captures are derived from ``split_message`` (py-amqp writing 200-byte segments):

    kernel_drop.pcap     one client segment in the middle of the 1,500-byte body removed,
                         as if the kernel had dropped it from the capture (the broker
                         still acknowledges it, so the reader knows bytes are missing)
    midframe_start.pcap  the capture cut to begin at that same segment: it starts in
                         the middle of a body frame

Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dpkt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report_scenarios  # noqa: E402

OUT = HERE.parent / "captures" / "report"
BPF = "tcp port 5672"
SNAPLEN = {"snaplen_errors": 120}

DESCRIPTIONS = {
    "work_queue": "pika: worker with prefetch 3 and manual acks (one multiple=True) leaves"
    " deliveries 3 and 5 unacked; an auditor consumes another queue with no_ack",
    "confirms_nacks": "pika: confirm mode, queue x-max-length=1 + x-overflow=reject-publish:"
    " 1 publish acked, 2 nacked",
    "rpc_direct_reply": "pika: 3 RPC calls over direct reply-to (amq.rabbitmq.reply-to),"
    " server on connection #0, client on #1",
    "consumer_cancel": "pika: the consumer's queue is deleted from another channel; the"
    " broker sends basic.cancel",
    "heartbeat_stop": "pika heartbeat=1: heartbeats both ways, then the client goes silent"
    " and the broker closes the socket",
    "three_connections": "pika: 3 connections; #1 publishes to a missing exchange (404 from"
    " basic.publish), #2 declares a missing queue passively (404 from queue.declare)",
    "snaplen_errors": "pika, recorded with snaplen 120: two channel.close 404, a 300-byte"
    " publish and its basic.get",
    "split_message": "py-amqp writing 200-byte segments: a mandatory publish with a routing"
    " key that is not UTF-8 (returned), then a 1,500-byte body published and fetched",
    "kernel_drop": "split_message with one client segment inside the 1,500-byte body removed",
    "midframe_start": "split_message cut to start at a segment inside the 1,500-byte body",
}


class Capture:
    """tcpdump on lo, as a child process."""

    def __init__(self, path: Path, snaplen: int | None) -> None:
        self.path = path
        cmd = ["tcpdump", "-i", "lo", "--immediate-mode", "-B", "16384", "-U", "-Z", "root"]
        if snaplen:
            cmd += ["-s", str(snaplen)]
        cmd += ["-w", str(path), BPF]
        path.unlink(missing_ok=True)
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "listening on" in line:
                break
        else:
            raise RuntimeError("tcpdump exited before it was ready")
        time.sleep(0.5)

    def stop(self) -> None:
        time.sleep(0.5)  # let the last FIN/ACKs in
        self.proc.send_signal(signal.SIGINT)
        self.proc.communicate(timeout=30)


def _packets(path: Path) -> tuple[list[tuple[float, bytes]], int]:
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        return list(reader), reader.snaplen


def _tcp(frame: bytes) -> Any:
    eth = dpkt.ethernet.Ethernet(frame)
    return eth.data.data if isinstance(eth.data, dpkt.ip.IP) else None


def _write(path: Path, packets: list[tuple[float, bytes]], snaplen: int) -> None:
    with open(path, "wb") as f:
        writer = dpkt.pcap.Writer(f, snaplen=snaplen)
        for ts, frame in packets:
            writer.writepkt(frame, ts)
    os.chmod(path, 0o644)


def keep_ports(path: Path, ports: list[int]) -> None:
    """Keep only the packets of the given client ports."""
    packets, snaplen = _packets(path)
    kept = []
    for ts, frame in packets:
        tcp = _tcp(frame)
        if tcp is not None and (tcp.sport in ports or tcp.dport in ports):
            kept.append((ts, frame))
    _write(path, kept, snaplen)


def _inside_body(packets: list[tuple[float, bytes]]) -> int:
    """Index of the client packet carrying bytes 600..800 of the 1,500-byte body: a
    segment strictly inside the message (not its first or last)."""
    marker = bytes(range(256))[100:140]  # the second repetition starts at byte 256
    hits = []
    for index, (_ts, frame) in enumerate(packets):
        tcp = _tcp(frame)
        if tcp is not None and tcp.dport == 5672 and marker in bytes(tcp.data):
            hits.append(index)
    if len(hits) < 3:
        raise RuntimeError(f"the body is not split as expected ({len(hits)} hits)")
    return hits[1]


def derive(source: Path, facts: dict[str, Any]) -> None:
    packets, snaplen = _packets(source)
    inside = _inside_body(packets)
    tcp = _tcp(packets[inside][1])
    dropped = dict(facts)
    dropped.update(
        {
            "description": DESCRIPTIONS["kernel_drop"],
            "dropped_packet": inside + 1,  # 1-based, in split_message.pcap
            "dropped_bytes": len(tcp.data),
            "partial_message": "basic.publish",
        }
    )
    _write(OUT / "kernel_drop.pcap", packets[:inside] + packets[inside + 1 :], snaplen)
    _write_facts("kernel_drop", dropped)
    cut = dict(facts)
    cut.update(
        {
            "description": DESCRIPTIONS["midframe_start"],
            "first_packet_in_source": inside + 1,
            "first_packet_bytes": len(tcp.data),
        }
    )
    _write(OUT / "midframe_start.pcap", packets[inside:], snaplen)
    _write_facts("midframe_start", cut)


def _write_facts(name: str, facts: dict[str, Any]) -> None:
    path = OUT / f"{name}.facts.json"
    path.write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
    os.chmod(path, 0o644)


def record(name: str) -> None:
    path = OUT / f"{name}.pcap"
    capture = Capture(path, SNAPLEN.get(name))
    try:
        ports, facts = report_scenarios.SCENARIOS[name]()
    finally:
        capture.stop()
    keep_ports(path, ports)
    facts["description"] = DESCRIPTIONS[name]
    _write_facts(name, facts)
    if name == "split_message":
        derive(path, facts)
    print(f"{name}: {path.stat().st_size} bytes")


def main(names: list[str]) -> None:
    for name in names or list(report_scenarios.SCENARIOS):
        record(name)


if __name__ == "__main__":
    main(sys.argv[1:])
