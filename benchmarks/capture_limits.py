"""Peak memory and time of the capture reader on hostile inputs.

Usage: ``python benchmarks/capture_limits.py [--code DIR] [--scale F] [--only NAME ...]``

Each input is written to a temporary directory (nothing is kept), then read by
``amqpcodec.capture.read_capture`` in a child process whose peak RSS (``ru_maxrss``),
CPU and wall time are printed, with what came out (records, or the exception). The
child's address space is capped (``--max-memory``, 4 GiB) and its time limited
(``--timeout``), so an unbounded reader shows up as a MemoryError or a timeout rather
than taking the machine down. ``--code DIR`` reads with another checkout of amqpcodec
(a before/after comparison).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import hostile_captures as hostile  # noqa: E402

MiB = 1024 * 1024

CHILD = """
import sys
from amqpcodec.capture import read_capture, MessageRecord
options = eval(sys.argv[2])
count = body = 0
try:
    for record in read_capture(sys.argv[1], **options):
        count += 1
        if isinstance(record, MessageRecord):
            body += len(record.message.body)
    print(f"{count} records" + (f", {body} body bytes" if body else ""))
except BaseException as exc:
    print(f"{type(exc).__name__}: {str(exc)[:70]}")
"""

# name -> (writer, full size, options for the reader)
INPUTS: dict[str, tuple[Callable[[Path, int], None], int, dict[str, object]]] = {
    "hex_repeat_bomb": (hostile.hex_repeat_bomb, 0x0000FFFFFFFFFF10, {}),
    "hex_repeat_10GB": (hostile.hex_repeat_bomb, 10 * 1024 * MiB, {}),
    "resync_trap_1MB": (hostile.resync_trap, 1 * MiB, {}),
    "hex_line_100MB": (hostile.hex_long_line, 100 * MiB // 24, {"input_format": "hex"}),
    "header_only_100k": (hostile.header_only_connections, 100_000, {}),
    "unfinished_60x8MB": (
        lambda path, size: hostile.unfinished_frames(path, 60, size),
        8 * MiB,
        {},
    ),
    "out_of_order_1B": (hostile.out_of_order_segments, 200_000, {}),
    "message_300MB": (hostile.large_message, 300 * MiB, {"messages": True}),
    # The same with the memory budget set (the default, 256 MiB, is above what these
    # inputs need, or below the message).
    "header_only_100k_32M": (
        hostile.header_only_connections,
        100_000,
        {"memory_limit": 32 * MiB},
    ),
    "unfinished_60x8MB_64M": (
        lambda path, size: hostile.unfinished_frames(path, 60, size),
        8 * MiB,
        {"memory_limit": 64 * MiB},
    ),
    "message_300MB_1G": (
        hostile.large_message,
        300 * MiB,
        {"messages": True, "memory_limit": 1024 * MiB},
    ),
}


def _limit(max_memory: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))

    return apply


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to measure")
    parser.add_argument("--scale", type=float, default=1.0, help="input size factor")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--max-memory", type=int, default=4096, help="MiB")
    parser.add_argument("--only", nargs="*", default=list(INPUTS))
    args = parser.parse_args()
    print(f"{'input':<20} {'MiB in':>9} {'wall s':>8} {'peak MiB':>9} {'cpu s':>7} result")
    for name in args.only:
        print(measure(name, args), flush=True)


def measure(name: str, args: argparse.Namespace) -> str:
    writer, size, options = INPUTS[name]
    if not name.startswith("hex_repeat"):
        size = max(1, int(size * args.scale))
    with tempfile.TemporaryDirectory(prefix="amqpcodec-limits-") as tmp:
        path = Path(tmp) / name
        writer(path, size)
        file_size = path.stat().st_size
        env = dict(os.environ, PYTHONPATH=str(args.code))
        start = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), repr(options)],
            env=env,
            cwd=tmp,  # not the checkout: "-c" puts the working directory first on sys.path
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_limit(args.max_memory * MiB),
        )
        deadline = start + args.timeout
        result = ""
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                child.kill()
                pid, status, usage = os.wait4(child.pid, 0)
                result = f"timed out after {args.timeout:.0f} s; "
                break
            time.sleep(0.05)
        wall = time.monotonic() - start
        assert child.stdout is not None
        lines = child.stdout.read().strip().splitlines()
        result += lines[-1] if lines else f"exit status {status}"
    cpu = usage.ru_utime + usage.ru_stime
    peak = usage.ru_maxrss / 1024
    return f"{name:<20} {file_size / MiB:9.1f} {wall:8.1f} {peak:9.1f} {cpu:7.1f} {result}"


if __name__ == "__main__":
    main()
