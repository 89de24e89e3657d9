"""The benchmark scripts still run: each peer's output agrees with ours, the table prints.

Nothing here looks at a time (the benchmarks are never pass/fail); a row whose peers stopped
agreeing with amqpcodec, or a script that no longer runs, fails here instead of on the day
somebody regenerates the README's table."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"

pytest.importorskip("pika")
pytest.importorskip("pamqp")
pytest.importorskip("amqp")


def run(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bench_prints_its_rows_and_bars() -> None:
    out = run(
        str(BENCHMARKS / "bench.py"),
        "--rounds",
        "1",
        "--sample-ms",
        "1",
        "--only",
        "publish",
        "--only",
        "table",
    )
    assert "| encode a publish (method + header, 4 properties + 1 KiB body) | 1 |" in out
    assert "| field table round trip (10 entries" in out
    measured = (
        r": \d+\.\d\dx, range \d+\.\d\d-\d+\.\d\dx over 1 rounds, held in [01] of 1: (met|NOT met)$"
    )
    assert re.search(r"^- encode a publish vs pika \(bar ≥ 3\.0x\)" + measured, out, re.M)
    assert re.search(r"^- field-table round trip vs pika \(bar ≥ 2\.5x\)" + measured, out, re.M)


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git history (not an sdist)")
def test_compare_runs_an_earlier_commit_as_the_peer() -> None:
    out = run(
        str(BENCHMARKS / "compare.py"),
        "HEAD",
        "--rounds",
        "1",
        "--sample-ms",
        "1",
        "--only",
        "table",
    )
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert f"before: HEAD = {sha}" in out
    assert f"| amqpcodec at {sha} (before) |" in out
    assert "could not run" not in out
