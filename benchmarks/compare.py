"""This tree's amqpcodec against an earlier commit's: before and after, in the same run.

    .venv/bin/python benchmarks/compare.py REV [--only NAME] [--rounds N] [--sample-ms MS]

Runs ``bench.py``'s rows with amqpcodec as it is in this tree ("amqpcodec") and as it was
at the git revision ``REV`` ("amqpcodec at REV"), and prints the same table as bench.py
with the earlier commit as the only peer: its ratio column is before / after, above 1
when this tree is faster.

The earlier commit is exported with ``git archive`` into a temporary directory; each side
runs in a worker process of its own, started alike (this tree's worker imports this tree),
so neither side's timings carry the other's data or the parent's: HEAD against itself read
0.94x on the decode rows when "after" was timed in the parent, and 1.03-1.04x (range
1.00-1.05x over 3 rounds, with other work on the machine) this way; read a ratio within a
few percent of 1 as no change. The rows are still interleaved round by round and timed in
CPU time: each sample is ``time.process_time_ns`` around a loop in its worker (which times
its samples itself and sends the figure back), so a load change on a shared machine lands
on both sides of a ratio. Rows are this tree's bench.py functions, calling only
amqpcodec's public API, so they run unchanged against the earlier commit; a row that the
earlier commit cannot run (a name it lacks) says so in place of a time. Rows that are not
``row()`` calls (import time, peak memory) are left out. Not a test: nothing here fails on
a number. Rows that run a program (``timing.Command``) compare it too when the program is
``sys.executable -m amqpcodec ...``: each worker runs in its own tree, with it on
``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

# Rows that are not timed with row(): nothing to compare.
SKIPPED = ("bench_import", "bench_memory")


def export(rev: str, into: Path) -> str:
    """Write the tree at ``rev`` under ``into``; return its short commit name."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", f"{rev}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", sha, "amqpcodec"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return sha


def selected(benches: list[Callable[[], None]], only: list[str]) -> list[Callable[[], None]]:
    return [
        bench
        for bench in benches
        if bench.__name__ not in SKIPPED
        and (not only or any(name in bench.__name__ for name in only))
    ]


# ---------------------------------------------------------------------------------------
# A worker: the amqpcodec of one tree (the earlier commit's or this one), sampled on request


def worker(tree: str, only: list[str], sample_s: float) -> None:
    sys.path.insert(0, tree)
    import amqpcodec  # the tree's, before bench.py puts this tree on sys.path

    assert Path(amqpcodec.__file__).resolve().is_relative_to(Path(tree).resolve())
    import bench
    import timing

    timing.SETTINGS.sample_s = sample_s
    subjects: dict[str, Any] = {}
    failed: dict[str, str] = {}

    def keep(operation: str, ours: Any, peers: object) -> None:
        subjects[operation] = timing._subject(ours)

    bench.row = keep  # type: ignore[assignment]
    for fn in selected(bench.BENCHES, only):
        try:
            fn()
        except Exception as exc:  # the earlier commit lacks something this row uses
            failed[fn.__name__] = f"{type(exc).__name__}: {exc}"
    out = sys.stdout
    _send(out, {"operations": list(subjects), "failed": failed})
    for line in sys.stdin:
        request = json.loads(line)
        subject = subjects[request["operation"]]
        if request["do"] == "calibrate":
            subject.calibrate()
            _send(out, {})
        else:
            _send(out, {"us": subject.sample()})


def _send(out: IO[str], message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


# ---------------------------------------------------------------------------------------
# The parent: each row timed in this tree's worker, with the earlier commit's worker as its
# one peer


class Remote:
    """A subject timed in the worker process (duck-typed like ``timing.Call``)."""

    def __init__(self, process: subprocess.Popen[str], operation: str) -> None:
        self.process = process
        self.operation = operation

    def _ask(self, do: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        _send(self.process.stdin, {"do": do, "operation": self.operation})
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def calibrate(self) -> None:
        self._ask("calibrate")

    def sample(self) -> float:
        return float(self._ask("sample")["us"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the earlier git revision (commit, tag or branch)")
    parser.add_argument("--rounds", type=int, default=9, help="rounds per row")
    parser.add_argument("--sample-ms", type=float, default=50.0, help="CPU ms per sample")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="as bench.py's --only"
    )
    parser.add_argument("--worker", metavar="TREE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.only, args.sample_ms / 1000)
        return

    import bench
    import timing

    timing.SETTINGS.rounds = args.rounds
    timing.SETTINGS.sample_s = args.sample_ms / 1000
    with tempfile.TemporaryDirectory(prefix="amqpcodec-before-") as tree, ExitStack() as stack:
        sha = export(args.rev, Path(tree))
        before = stack.enter_context(_start_worker(args, tree))
        after = stack.enter_context(_start_worker(args, str(ROOT)))
        label = f"amqpcodec at {sha} (before)"

        def compare(operation: str, ours: Any, peers: object) -> None:
            assert operation in after.operations, after.failed
            peer: Remote | str = (
                Remote(before.process, operation)
                if operation in before.operations
                else f"not run at {sha}"
            )
            timing.row(operation, Remote(after.process, operation), {label: peer})

        bench.row = compare  # type: ignore[assignment]
        print("\n".join(bench.versions()), end="\n\n")
        print(f"after: this tree; before: {args.rev} = {sha}; ratio = before / after\n")
        for fn in selected(bench.BENCHES, args.only):
            fn()
        for name, why in before.failed.items():
            print(f"{name} could not run at {sha}: {why}")
        print("\n".join(timing.format_table()))


class Worker(NamedTuple):
    process: subprocess.Popen[str]
    operations: set[str]
    failed: dict[str, str]


@contextmanager
def _start_worker(args: argparse.Namespace, tree: str) -> Iterator[Worker]:
    """A worker timing the rows with the amqpcodec in ``tree``, run from that directory
    (so that a row's ``python -m amqpcodec`` runs the same one)."""
    command = [sys.executable, __file__, args.rev, "--worker", tree]
    command += [f"--only={name}" for name in args.only] + [f"--sample-ms={args.sample_ms}"]
    with subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": tree},
    ) as process:
        assert process.stdout is not None and process.stdin is not None
        ready = json.loads(process.stdout.readline())
        yield Worker(process, set(ready["operations"]), ready["failed"])
        process.stdin.close()


if __name__ == "__main__":
    main()
