"""The long fuzz run: a million inputs or more against FrameDecoder and Connection.

    .venv/bin/python tests/fuzz_long.py                    # 1,000,000 cases
    .venv/bin/python tests/fuzz_long.py --cases 50000 --jobs 2 --seed 7

How this works: a pool of valid streams is made once (the recorded captures in
tests/data/captures, both directions, and streams drawn from
``amqpcodec.strategies.frame_streams`` for both roles). Each case then builds one input
with plain ``random`` (no Hypothesis per case, which would be 100 times slower): most
are pool streams with 1-4 mutations (``amqpcodec.strategies.mutate``), the rest random
bytes, random bytes after a valid protocol header, or random frame-shaped records. The
input is fed in random chunk sizes to a FrameDecoder and to a Connection of the role
that receives it. Only DecodeError and RemoteProtocolError may come out; anything else
(LocalProtocolError from receive_data included) is counted as foreign, printed with a
reproducer, and saved under --save. At the end it prints the case count, the outcomes by
exception type, the slowest case, and the peak memory: the process's maximum RSS and the
largest tracemalloc peak of one case (measured on one case in 500).

The functions ``feed_decoder`` and ``feed_connection`` are the harness that
tests/test_fuzz.py uses too.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import multiprocessing
import os
import random
import resource
import sys
import time
import traceback
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from amqpcodec import (
    Connection,
    ConnectionState,
    DecodeError,
    FrameDecoder,
    LocalProtocolError,
    ProtocolHeader,
    RemoteProtocolError,
    Role,
)
from amqpcodec.events import ConnectionOpened

CAPTURES = Path(__file__).parent / "data" / "captures"
OURS = (DecodeError, RemoteProtocolError)
HEADER = ProtocolHeader().encode()
CHUNK_SIZES = (1, 2, 3, 5, 7, 8, 13, 64, 512, 4096, 1 << 30)


def pieces(data: bytes, rnd: random.Random) -> Iterator[bytes]:
    """``data`` cut into random chunks (one chunk size per input, sometimes mixed), at
    most about 2,000 of them so that a big input does not take a second."""
    least = len(data) // 2000 + 1
    size = max(least, rnd.choice(CHUNK_SIZES))
    mixed = rnd.random() < 0.3
    at = 0
    while at < len(data):
        step = max(least, rnd.choice(CHUNK_SIZES)) if mixed else size
        yield data[at : at + step]
        at += step


def feed_decoder(data: bytes, rnd: random.Random, max_frame_size: int = 131072) -> str:
    """Feed ``data`` to a FrameDecoder in random chunks: the outcome's name ("ok" or
    "DecodeError"). Any other exception propagates."""
    decoder = FrameDecoder(max_frame_size)
    for piece in pieces(data, rnd):
        try:
            decoder.feed(piece)
        except DecodeError:
            try:  # a failed decoder stays failed
                decoder.feed(b"\x00")
            except DecodeError:
                return "DecodeError"
            raise AssertionError("the decoder took more input after a DecodeError") from None
    return "ok"


def feed_connection(role: Role, data: bytes, rnd: random.Random) -> str:
    """Feed ``data`` to a Connection of ``role`` in random chunks, then the end of input.

    A client is fed byte by byte until ConnectionOpened (within the first 2,000
    bytes), then opens channels 1-3, so that a server's stream gets past its first
    Channel.Open-Ok. Returns the outcome's
    name ("ok", "DecodeError" or "RemoteProtocolError"); anything else propagates.
    """
    conn = Connection(role)
    conn.data_to_send()
    rest = data
    now = 0.0
    if role is Role.CLIENT:
        for at in range(min(len(data), 2000)):
            try:
                events = conn.receive_data(data[at : at + 1])
            except RemoteProtocolError as exc:
                return _failed(conn, exc)
            rest = data[at + 1 :]
            if any(isinstance(event, ConnectionOpened) for event in events):
                for channel in range(1, min(3, conn.channel_max or 3) + 1):
                    if conn.state is ConnectionState.OPEN and channel not in conn.channels:
                        conn.open_channel(channel)
                break
    for piece in pieces(rest, rnd):
        try:
            conn.receive_data(piece)
        except RemoteProtocolError as exc:
            return _failed(conn, exc)
        conn.data_to_send()
        now += 0.001
        conn.tick(now)
    conn.receive_data(b"")
    return "ok"


def _failed(conn: Connection, exc: RemoteProtocolError) -> str:
    assert conn.state is ConnectionState.ERROR, conn.state
    try:  # documented: a failed connection refuses more data, and takes the EOF
        conn.receive_data(b"\x00")
    except LocalProtocolError:
        pass
    else:
        raise AssertionError("a failed connection took more data")
    assert conn.receive_data(b"") == []
    return type(exc).__name__


# ---------------------------------------------------------------------------------------
# The pool of valid streams


def capture_streams() -> list[tuple[Role, bytes]]:
    """(receiving role, bytes) of every recorded direction."""
    pool = []
    for path in sorted(CAPTURES.glob("*.bin")):
        receiver = Role.SERVER if path.name.endswith(".c2s.bin") else Role.CLIENT
        pool.append((receiver, path.read_bytes()))
    return pool


def drawn_streams(count: int, seed: int) -> list[tuple[Role, bytes]]:
    """``count`` streams per role from frame_streams, half of them without responses
    (which the receiving Connection accepts start to end). Channels 1-3 (what
    feed_connection opens for a client) and frame_max 4096 keep them small and deep."""
    from hypothesis import strategies as st

    from amqpcodec import strategies as amqp_st

    pool: list[tuple[Role, bytes]] = []
    for role, receiver in (("client", Role.SERVER), ("server", Role.CLIENT)):
        for responses in (False, True):
            streams = amqp_st.frame_streams(
                role, responses=responses, channels=st.integers(1, 3), frame_max=4096
            )
            pool += [(receiver, raw) for raw in examples(streams, count // 2, seed)]
    return pool


def examples(strategy: object, count: int, seed: int) -> list[bytes]:
    """``count`` examples of ``strategy``, reproducibly, without the example database."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    drawn: list[bytes] = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(raw: bytes) -> None:
        drawn.append(raw)

    collect()
    return drawn


# ---------------------------------------------------------------------------------------
# Cases


def make_case(
    rnd: random.Random, pool: list[tuple[Role, bytes]], donors: list[bytes]
) -> tuple[str, Role, bytes]:
    from amqpcodec.strategies import mutate

    roll = rnd.random()
    if roll < 0.80:
        receiver, stream = rnd.choice(pool)
        data = mutate(stream, rnd, count=rnd.randint(1, 4), donors=donors)
        return "mutated", receiver, data
    receiver = rnd.choice((Role.CLIENT, Role.SERVER))
    if roll < 0.88:
        return "random", receiver, rnd.randbytes(rnd.randint(0, 512))
    if roll < 0.95:
        return "header+random", Role.SERVER, HEADER + rnd.randbytes(rnd.randint(0, 512))
    # Frame-shaped records: a known type, a small channel, a plausible size, 0xCE mostly.
    out = bytearray(HEADER if receiver is Role.SERVER else b"")
    for _ in range(rnd.randint(1, 8)):
        payload = rnd.randbytes(rnd.randint(0, 64))
        out += bytes((rnd.choice((1, 2, 3, 8)),)) + rnd.randint(0, 3).to_bytes(2, "big")
        out += len(payload).to_bytes(4, "big") + payload
        out.append(0xCE if rnd.random() < 0.9 else rnd.randrange(256))
    return "frame-shaped", receiver, bytes(out)


@dataclasses.dataclass
class Result:
    outcomes: collections.Counter[str]
    kinds: collections.Counter[str]
    foreign: list[str]
    slowest: tuple[float, str]
    tracemalloc_peak: int
    maxrss_kib: int


POOL: list[tuple[Role, bytes]] = []  # set before the workers fork


def run(args: tuple[int, int, int, str]) -> Result:
    """One worker: ``cases`` inputs from ``seed``. Returns its counters."""
    worker, cases, seed, save = args
    pool = POOL
    rnd = random.Random(seed)
    donors = [stream for _, stream in pool]
    outcomes: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    foreign: list[str] = []
    slowest = (0.0, "")
    peak = 0
    for case in range(cases):
        kind, receiver, data = make_case(rnd, pool, donors)
        kinds[kind] += 1
        case_seed = rnd.getrandbits(32)
        measure = case % 500 == 0
        if measure:
            tracemalloc.start()
        started = time.perf_counter()
        for target in ("decoder", "connection"):
            feed_rnd = random.Random(case_seed)
            try:
                if target == "decoder":
                    outcome = feed_decoder(data, feed_rnd)
                else:
                    outcome = feed_connection(receiver, data, feed_rnd)
            except Exception as exc:  # a foreign exception: the finding
                outcome = f"FOREIGN {type(exc).__name__}"
                name = Path(save) / f"foreign-{worker}-{case}-{target}.bin"
                name.parent.mkdir(parents=True, exist_ok=True)
                name.write_bytes(data)
                foreign.append(
                    f"{target} ({receiver.value}) case {case} seed {case_seed}: saved {name}\n"
                    + "".join(traceback.format_exception(exc))
                )
            outcomes[f"{target}: {outcome}"] += 1
        elapsed = time.perf_counter() - started
        if measure:
            peak = max(peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        if elapsed > slowest[0]:
            slowest = (elapsed, f"{kind}, {len(data)} bytes")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return Result(outcomes, kinds, foreign, slowest, peak, rss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pool", type=int, default=200, help="drawn streams per role")
    parser.add_argument("--save", default="fuzz-findings", help="where foreign inputs go")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    pool = POOL
    pool[:] = capture_streams() + drawn_streams(args.pool, args.seed)
    print(
        f"pool: {len(pool)} valid streams ({len(capture_streams())} captured directions),"
        f" {sum(len(s) for _, s in pool):,} bytes; made in {time.perf_counter() - started:.1f}s",
        flush=True,
    )
    jobs = max(1, args.jobs)
    shares = [args.cases // jobs + (i < args.cases % jobs) for i in range(jobs)]
    work = [(i, shares[i], args.seed * 1000 + i, args.save) for i in range(jobs)]
    started = time.perf_counter()
    if jobs == 1:
        results = [run(work[0])]
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as workers:
            results = workers.map(run, work)
    elapsed = time.perf_counter() - started

    outcomes: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    foreign: list[str] = []
    for result in results:
        outcomes.update(result.outcomes)
        kinds.update(result.kinds)
        foreign += result.foreign
    slowest = max(result.slowest for result in results)
    peak = max(result.tracemalloc_peak for result in results)
    rss = max(result.maxrss_kib for result in results)
    total = sum(kinds.values())
    print(f"cases: {total:,} inputs in {elapsed:.0f}s ({total / elapsed:,.0f}/s, {jobs} jobs)")
    print("inputs by kind: " + ", ".join(f"{k} {v:,}" for k, v in kinds.most_common()))
    print("outcomes (each input went to FrameDecoder and to a Connection):")
    for name, count in sorted(outcomes.items()):
        print(f"  {name:<36} {count:>10,}")
    print(f"foreign exceptions: {len(foreign)}")
    for report in foreign[:20]:
        print(report)
    print(f"slowest case: {slowest[0] * 1000:.1f} ms ({slowest[1]})")
    print(
        f"peak memory: max RSS {rss / 1024:.1f} MiB per process;"
        f" largest tracemalloc peak of one case {peak / 1024:.1f} KiB"
    )
    return 1 if foreign else 0


if __name__ == "__main__":
    sys.exit(main())
