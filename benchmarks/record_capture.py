"""Record a large capture of 1 KiB messages for the capture rows of bench.py.

    .venv/bin/python benchmarks/record_capture.py [PATH] [--megabytes N]

As root, with RabbitMQ on 127.0.0.1:5672 (guest/guest; ``bash .ci/start-rabbitmq.sh``)
and tcpdump and tshark installed. tcpdump captures ``lo``, port 5672, into PATH (default
/tmp/amqpcodec-bench/capture-1k.pcap) while a pika BlockingConnection publishes 1 KiB
messages to a queue of its own and consumes them back (batches of 1,000: publish, then
consume with acknowledgements every 100), until the file holds about N megabytes
(default 100). Then it checks that tshark dissects the traffic as AMQP: on the
connection the script made, tshark (reassembling out-of-order segments) must count
exactly the publishes, deliveries, content headers and bodies that were sent, and
tcpdump must have dropped nothing. It prints what
it did. The file is an input for ``bench.py --capture PATH``; never commit it.

Other programs talking to the broker at the same time end up in the capture too (the
filter is the port): they are counted and reported, and only the script's connection is
checked.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pika

DEFAULT_PATH = Path("/tmp/amqpcodec-bench/capture-1k.pcap")
BATCH = 1000
BODY = bytes(range(256)) * 4  # 1 KiB, binary
BPF = "tcp port 5672"
# Segments on loopback are often captured out of order; tshark dissects the AMQP frames
# in and after them only when told to reassemble such segments.
OUT_OF_ORDER = ["-o", "tcp.reassemble_out_of_order:TRUE"]


class Tcpdump:
    """tcpdump on lo as a child process, writing a pcap file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        # --immediate-mode: without it this kernel delivered no packets to tcpdump;
        # -B: a large kernel buffer, so that a burst of publishes is not dropped
        # (no -U: a write per packet is what made tcpdump fall behind).
        argv = ["tcpdump", "-i", "lo", "--immediate-mode", "-B", "65536", "-s", "0"]
        argv += ["-Z", "root", "-w", str(path), BPF]
        self.path = path
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if "listening on" in line:
                break
        else:
            raise SystemExit(f"tcpdump exited before it was ready: {self.proc.wait()}")
        time.sleep(0.5)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def stop(self) -> str:
        time.sleep(0.5)  # the last FIN and ACK packets
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=60)
        return " ".join(err.split())


def publish_and_consume(target: int, capture: Tcpdump) -> tuple[int, int, int]:
    """Publish and consume batches until the capture holds ``target`` bytes; returns the
    client's port, the messages published and the messages consumed."""
    params = pika.ConnectionParameters(
        "127.0.0.1", 5672, "/", pika.PlainCredentials("guest", "guest")
    )
    connection = pika.BlockingConnection(params)
    port = connection._impl._transport._sock.getsockname()[1]  # the client's port, for the check
    channel = connection.channel()
    queue = f"amqpcodec.bench.capture.{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, exclusive=True)
    properties = pika.BasicProperties(
        content_type="application/octet-stream", delivery_mode=1, headers={"source": "bench"}
    )
    published = consumed = 0
    while capture.size() < target:
        for _ in range(BATCH):
            properties.message_id = str(published)
            channel.basic_publish("", queue, BODY, properties)
            published += 1
        for method, _props, body in channel.consume(queue, inactivity_timeout=10):
            if method is None:
                raise SystemExit(f"no delivery for 10 s after {consumed} of {published}")
            if len(body) != len(BODY):
                raise SystemExit(f"delivery {consumed} has {len(body)} bytes")
            consumed += 1
            if consumed % 100 == 0 or consumed == published:
                channel.basic_ack(method.delivery_tag, multiple=True)
            if consumed == published:
                break
        channel.cancel()
        time.sleep(0.02)  # let tcpdump catch up: it must not drop packets
    channel.queue_delete(queue)
    connection.close()
    return port, published, consumed


def tshark_counts(path: Path, port: int) -> tuple[Counter[str], int]:
    """AMQP frames tshark finds on the connection from ``port``, by kind; and the
    number of TCP connections in the capture."""
    fields = ["-e", "amqp.type", "-e", "amqp.method.class", "-e", "amqp.method.method"]
    argv = ["tshark", *OUT_OF_ORDER, "-r", str(path), "-Y", f"amqp && tcp.port == {port}"]
    argv += ["-T", "fields"]
    argv += [*fields, "-E", "occurrence=a", "-E", "aggregator=,"]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    counts: Counter[str] = Counter()
    for line in out.splitlines():
        types, classes, methods = [*line.split("\t"), "", ""][:3]
        ids = zip(classes.split(","), methods.split(","), strict=False) if classes else iter(())
        for frame_type in types.split(","):
            if frame_type == "1":
                class_id, method_id = next(ids)
                counts[f"method {class_id}.{method_id}"] += 1
            elif frame_type:
                counts[{"2": "header", "3": "body", "8": "heartbeat"}.get(frame_type, "?")] += 1
    streams = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-Y",
            "tcp.flags.syn == 1 && tcp.flags.ack == 0",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return counts, len(streams)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_PATH, help="the pcap to write"
    )
    parser.add_argument("--megabytes", type=float, default=100, help="size to reach (MB)")
    args = parser.parse_args(argv)
    target = int(args.megabytes * 1_000_000)
    started = time.monotonic()
    capture = Tcpdump(args.path)
    try:
        port, published, consumed = publish_and_consume(target, capture)
    finally:
        closing = capture.stop()
    elapsed = time.monotonic() - started
    size = args.path.stat().st_size
    print(f"wrote {args.path}: {size / 1e6:.1f} MB in {elapsed:.1f} s ({closing})")
    print(f"client 127.0.0.1:{port}: {published} messages of {len(BODY)} bytes published,")
    print(f"  {consumed} consumed (basic.consume, acknowledged every 100)")
    if " 0 packets dropped by kernel" not in f" {closing}":
        print("tcpdump dropped packets: the capture has gaps", file=sys.stderr)
        return 1
    counts, connections = tshark_counts(args.path, port)
    expected = {
        "method 60.40": published,  # basic.publish
        "method 60.60": consumed,  # basic.deliver
        "header": published + consumed,
        "body": published + consumed,
    }
    print(f"tshark: {connections} TCP connection(s) in the capture; on the client's:")
    ok = True
    for kind, want in expected.items():
        got = counts[kind]
        ok &= got == want
        print(f"  {kind:<13} {got:>9} (sent {want}){'' if got == want else '  MISMATCH'}")
    others = sum(counts.values()) - sum(counts[k] for k in expected)
    print(f"  other frames  {others:>9} (handshake, consume, acks, close)")
    if not ok:
        print("tshark does not see what was sent", file=sys.stderr)
        return 1
    os.chmod(args.path, 0o644)
    return 0


if __name__ == "__main__":
    sys.exit(main())
