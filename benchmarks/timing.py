"""The benchmark's timing core: libraries interleaved round by round, CPU time, ratio ranges.

A row compares amqpcodec with one or more peers doing the same work. Every subject of a row
is calibrated once (enough loops for one sample to take about ``sample_s`` of CPU time), then
the row runs ``rounds`` rounds; in each round every subject takes one sample, in an order
rotated from round to round. A subject's sample is CPU time per operation:

- ``Call(fn)`` (or a bare callable): ``time.process_time_ns`` around a loop of calls in this
  process, with the garbage collector off during the loop as ``timeit`` does. CPU time is
  what a single-threaded row costs whatever else the machine runs; wall time is not.
- ``Command(argv)``: the CPU time (user + system, from ``getrusage(RUSAGE_CHILDREN)``) of
  one run of a program, for rows that compare command-line tools.

Each round gives each peer a ratio peer / amqpcodec from samples taken moments apart, so a
load change on a shared machine moves both sides of a ratio together. The table reports the
median and the range (min-max) of those ratios over the rounds, and the number of rounds.
Bars are judged on the median and say in how many rounds they held.
"""

from __future__ import annotations

import gc
import resource
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "BARS",
    "ROWS",
    "Bar",
    "Call",
    "Command",
    "Row",
    "Sampler",
    "Settings",
    "find_row",
    "format_bars",
    "format_table",
    "row",
]


@dataclass
class Settings:
    rounds: int = 9
    sample_s: float = 0.05  # CPU seconds per sample, per subject, per round


SETTINGS = Settings()


class Call:
    """A Python callable timed in this process with ``time.process_time_ns``."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.number = 1

    def _run(self, number: int) -> int:
        fn = self.fn
        enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.process_time_ns()
            for _ in range(number):
                fn()
            return time.process_time_ns() - start
        finally:
            if enabled:
                gc.enable()

    def calibrate(self) -> None:
        self.fn()  # warm up (caches, lazy imports)
        number = 1
        while True:
            elapsed = self._run(number)
            if elapsed >= 10_000_000 or number >= 1 << 24:  # 10 ms measured: scale from it
                break
            number *= 4
        per_call = max(elapsed / number, 1.0)
        self.number = max(1, round(SETTINGS.sample_s * 1e9 / per_call))

    def sample(self) -> float:
        """Microseconds of CPU time per call."""
        return self._run(self.number) / self.number / 1000


class Command:
    """A program run to completion, timed by the CPU time it used (its user + system time)."""

    def __init__(self, argv: Sequence[str], *, operations: int = 1) -> None:
        self.argv = list(argv)
        self.operations = operations  # the sample is divided by this

    def calibrate(self) -> None:
        self.sample()  # warm up the page cache

    def sample(self) -> float:
        """Microseconds of CPU time per operation."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return used * 1e6 / self.operations


@runtime_checkable
class Sampler(Protocol):
    """What a row times: ``Call``, ``Command``, or another object with these two methods."""

    def calibrate(self) -> None: ...

    def sample(self) -> float: ...


Subject = Callable[[], object] | Sampler


@dataclass
class Row:
    operation: str
    rounds: int
    names: list[str]  # names[0] is amqpcodec
    times: dict[str, list[float]]  # µs per operation, one per round, same order for all
    notes: dict[str, str] = field(default_factory=dict)  # peers that do not offer it

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratios(self, numerator: str, denominator: str) -> list[float]:
        """numerator / denominator, round by round."""
        return [a / b for a, b in zip(self.times[numerator], self.times[denominator], strict=True)]


ROWS: list[Row] = []
OURS = "amqpcodec"


def _subject(value: Subject) -> Sampler:
    """A bare callable becomes a ``Call``; anything that samples itself is taken as it is."""
    return value if isinstance(value, Sampler) else Call(value)


def row(operation: str, ours: Subject, peers: dict[str, Subject | str]) -> Row:
    """Time amqpcodec (``ours``) and every peer round by round; record and return the row.

    A peer given as a string is one that does not offer the operation: the string says why
    and shows in the table in place of a time."""
    subjects = {OURS: _subject(ours)}
    notes: dict[str, str] = {}
    for name, peer in peers.items():
        if isinstance(peer, str):
            notes[name] = peer
        else:
            subjects[name] = _subject(peer)
    for subject in subjects.values():
        subject.calibrate()
    names = list(subjects)
    times: dict[str, list[float]] = {name: [] for name in names}
    rounds = SETTINGS.rounds
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(subjects[name].sample())
    result = Row(operation, rounds, names, times, notes)
    ROWS.append(result)
    return result


def find_row(prefix: str) -> Row | None:
    return next((r for r in ROWS if r.operation.startswith(prefix)), None)


def _spread(values: Sequence[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def format_table() -> list[str]:
    lines = [
        "| operation | rounds | amqpcodec µs | peer | peer µs | peer / amqpcodec | range |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in ROWS:
        ours = f"{r.median(OURS):,.1f}"
        peers = [n for n in r.names if n != OURS]
        cells: list[list[str]] = []
        for name in peers:
            ratios = r.ratios(name, OURS)
            cells.append(
                [
                    name,
                    f"{r.median(name):,.1f}",
                    f"{statistics.median(ratios):.2f}x",
                    f"{_spread(ratios)}x",
                ]
            )
        cells += [[name, note, "-", "-"] for name, note in r.notes.items()]
        if not cells:
            cells.append(["", "", "", ""])
        for i, peer_cells in enumerate(cells):
            head = [r.operation, str(r.rounds), ours] if i == 0 else ["", "", ""]
            lines.append("| " + " | ".join(head + peer_cells) + " |")
    return lines


@dataclass
class Bar:
    """A bar of the design, judged on the median of a per-round ratio.

    The ratio is ``numerator / denominator`` of one row's samples, round by round (the
    row is found by the start of its operation text when the bars are printed)."""

    text: str
    row: str
    numerator: str
    denominator: str
    goal: float
    higher: bool = True  # True: the ratio must reach goal; False: stay at or below it

    def measure(self) -> list[float] | None:
        found = find_row(self.row)
        if found is None or not {self.numerator, self.denominator} <= set(found.names):
            return None
        return found.ratios(self.numerator, self.denominator)

    def met(self, value: float) -> bool:
        return value >= self.goal if self.higher else value <= self.goal

    def line(self) -> str:
        ratios = self.measure()
        if ratios is None:
            return f"- {self.text}: not measured"
        median = statistics.median(ratios)
        held = sum(self.met(v) for v in ratios)
        sign = "≥" if self.higher else "≤"
        return (
            f"- {self.text} (bar {sign} {self.goal}x): {median:.2f}x, range {_spread(ratios)}x"
            f" over {len(ratios)} rounds, held in {held} of {len(ratios)}:"
            f" {'met' if self.met(median) else 'NOT met'}"
        )


BARS: list[Bar] = []


def format_bars(extra: Sequence[tuple[str, str, bool]] = ()) -> list[str]:
    lines = [bar.line() for bar in BARS]
    lines += [
        f"- {what}: {measured}: {'met' if met else 'NOT met'}" for what, measured, met in extra
    ]
    return lines
