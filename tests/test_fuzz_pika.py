"""Worked example: fuzzing pika's frame decoder (``pika.frame.decode_frame``) with
amqpcodec's strategies. These tests assert that pika 1.4.4 *fails*.

What the strategies find in pika 1.4.4 (each reproduced below by an explicit example):

1. Valid frames, foreign exception: every ``connection.update-secret`` method frame (a
   RabbitMQ extension) makes decode_frame raise ``TypeError`` (pika builds the method
   with no arguments, and its UpdateSecret class requires two).
2. Valid frames, foreign exception: a field-table timestamp (``T``) after year 9999,
   such as a millisecond epoch, raises ``ValueError`` (or OverflowError / OSError)
   from ``datetime.fromtimestamp`` (pika#98, pika#1698; fixed upstream after 1.4.4).
3. Valid frames, wrong value: float and double table values come back as ints
   (``9.99`` -> ``9``; pika#599), and an infinite one raises ``OverflowError``.
4. Mutated streams: an unknown method or content class id raises ``KeyError``; a
   truncated argument list ``struct.error``.

Run this file as a script to measure how fast the strategies find a failure:
``.venv/bin/python tests/test_fuzz_pika.py``.
"""

from __future__ import annotations

import contextlib
import statistics
import struct
import sys
import time
from typing import Any

import pika
import pika.exceptions
import pika.frame
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from amqpcodec import (
    FieldTable,
    HeaderFrame,
    MethodFrame,
    decode_frame,
    spec,
)
from amqpcodec import strategies as amqp_st

PIKA_ERRORS = (pika.exceptions.AMQPError,)


def pika_decode(data: bytes) -> list[Any]:
    """Decode a byte stream with pika's frame decoder, frame after frame."""
    frames = []
    while data:
        consumed, frame = pika.frame.decode_frame(data)
        if frame is None:  # incomplete
            break
        frames.append(frame)
        data = data[consumed:]
    return frames


# ---------------------------------------------------------------------------------------
# The findings, as explicit examples


def test_pika_cannot_decode_connection_update_secret() -> None:
    raw = MethodFrame(0, spec.Connection.UpdateSecret(b"new-token", "rotation")).encode()
    assert decode_frame(raw) == (
        MethodFrame(0, spec.Connection.UpdateSecret(b"new-token", "rotation")),
        len(raw),
    )
    with pytest.raises(TypeError, match=r"UpdateSecret.__init__\(\) missing 2 required"):
        pika.frame.decode_frame(raw)


@pytest.mark.parametrize(
    ("seconds", "error"),
    [
        (1732500000000, ValueError),  # 2024-11-25 in milliseconds: year 56870
        (253402300800, ValueError),  # 10000-01-01T00:00:00Z, the first second past 9999
        (2**63, (OverflowError, OSError, ValueError)),  # platform-dependent message
    ],
)
def test_pika_fails_on_a_timestamp_after_9999(seconds: int, error: Any) -> None:
    headers = FieldTable()
    headers.set_typed("sent_at", seconds, "T")
    raw = HeaderFrame(1, 0, spec.BasicProperties(headers=headers)).encode()
    decoded, _ = decode_frame(raw)
    assert decoded.properties.headers == {"sent_at": seconds}  # type: ignore[union-attr]
    with pytest.raises(error):
        pika.frame.decode_frame(raw)


def test_pika_turns_floats_into_ints() -> None:
    headers = {"price": 9.99, "ratio": 0.5}
    headers_f = FieldTable()
    headers_f.set_typed("weight", 2.75, "f")
    for table in (headers, headers_f):
        raw = HeaderFrame(1, 0, spec.BasicProperties(headers=table)).encode()
        ours = decode_frame(raw)[0].properties.headers  # type: ignore[union-attr]
        _, theirs = pika.frame.decode_frame(raw)
        assert ours == table
        decoded = theirs.properties.headers  # type: ignore[union-attr]
        assert decoded == {key: int(value) for key, value in table.items()}
        assert all(type(value) is not float for value in decoded.values())


@pytest.mark.parametrize("letter", ["d", "f"])
def test_pika_fails_on_an_infinite_float(letter: str) -> None:
    headers = FieldTable()
    headers.set_typed("limit", float("inf"), letter)
    raw = HeaderFrame(1, 0, spec.BasicProperties(headers=headers)).encode()
    assert decode_frame(raw)[0].properties.headers == {"limit": float("inf")}  # type: ignore[union-attr]
    with pytest.raises(OverflowError, match="cannot convert float infinity to integer"):
        pika.frame.decode_frame(raw)


def test_pika_raises_key_error_on_unknown_ids() -> None:
    unknown_method = b"\x01\x00\x01\x00\x00\x00\x04\x00\x3c\x00\x63\xce"  # basic.99
    with pytest.raises(KeyError):
        pika.frame.decode_frame(unknown_method)
    unknown_class = HeaderFrame(1, 0).encode()
    unknown_class = unknown_class[:7] + b"\x00\x3d" + unknown_class[9:]  # class 61
    with pytest.raises(KeyError):
        pika.frame.decode_frame(unknown_class)
    for raw in (unknown_method, unknown_class):  # amqpcodec: its own DecodeError
        with pytest.raises(Exception) as info:
            decode_frame(raw)
        assert type(info.value).__name__ == "DecodeError"


def test_pika_raises_struct_error_on_a_truncated_method() -> None:
    publish = MethodFrame(1, spec.Basic.Publish(exchange="x", routing_key="rk")).encode()
    payload = publish[7:-1][:-4]  # the last four argument bytes are gone
    raw = publish[:3] + len(payload).to_bytes(4, "big") + payload + b"\xce"
    with pytest.raises(struct.error):
        pika.frame.decode_frame(raw)


# ---------------------------------------------------------------------------------------
# The search that found them (derandomised, so deterministic for a Hypothesis version)

VALID_FRAMES = amqp_st.frames().map(lambda frame: frame.encode())
MUTATED_STREAMS = amqp_st.mutated_streams("server")


def pika_raises_only_its_own_errors(data: bytes) -> None:
    with contextlib.suppress(*PIKA_ERRORS):  # pika's own error: a fine answer
        pika_decode(data)


@pytest.mark.parametrize(
    "strategy", [VALID_FRAMES, MUTATED_STREAMS], ids=["valid frames", "mutated streams"]
)
def test_the_strategies_find_a_foreign_exception(strategy: st.SearchStrategy[bytes]) -> None:
    search = settings(
        max_examples=5000,
        derandomize=True,
        database=None,
        deadline=None,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )(given(strategy)(pika_raises_only_its_own_errors))
    with pytest.raises(Exception) as info:
        search()
    assert not isinstance(info.value, PIKA_ERRORS)
    assert isinstance(
        info.value, (TypeError, ValueError, OverflowError, OSError, KeyError, struct.error)
    ), info.value


# The README's example ("Fuzzing with amqpcodec"), verbatim: it must run as a script.
README_EXAMPLE = '''
import pika.exceptions
import pika.frame
from hypothesis import given, settings
from hypothesis import strategies as st

from amqpcodec import strategies as amqp_st


def pika_decode(data: bytes) -> None:
    """Decode a byte stream with pika's frame decoder, frame after frame."""
    while data:
        consumed, frame = pika.frame.decode_frame(data)
        if frame is None:  # incomplete: wait for more bytes
            return
        data = data[consumed:]


@settings(max_examples=2000, report_multiple_bugs=False)
@given(
    st.one_of(
        amqp_st.frames().map(lambda frame: frame.encode()),  # valid frames, every kind
        amqp_st.mutated_streams("server"),  # what a broken broker could send
    )
)
def test_pika_raises_only_its_own_errors(data: bytes) -> None:
    try:
        pika_decode(data)
    except pika.exceptions.AMQPError:
        pass  # pika's own error: a fine answer to bad bytes


if __name__ == "__main__":  # pytest runs the test by itself
    try:
        test_pika_raises_only_its_own_errors()
    except Exception as exc:
        print(f"pika fails: {type(exc).__name__}: {exc}")
'''


def test_the_readme_example_finds_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(README_EXAMPLE, "README example", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    (line,) = [line for line in printed.splitlines() if line.startswith("pika fails: ")]
    kind = line.split(":")[1].strip()
    assert kind in {"TypeError", "ValueError", "OverflowError", "OSError", "KeyError", "error"}


# ---------------------------------------------------------------------------------------
# How fast: python tests/test_fuzz_pika.py


def classify(exc: BaseException) -> str:
    """Which finding a foreign exception is."""
    text = str(exc)
    if isinstance(exc, TypeError) and "UpdateSecret" in text:
        return "update-secret TypeError"
    if isinstance(exc, OverflowError) and "float" in text:
        return "infinite float OverflowError"
    if isinstance(exc, (ValueError, OverflowError, OSError)):
        return "timestamp after 9999"
    if isinstance(exc, KeyError):
        return "unknown id KeyError"
    if isinstance(exc, struct.error):
        return "truncated struct.error"
    return type(exc).__name__


def first_findings(
    strategy: st.SearchStrategy[bytes], run: int, examples: int
) -> tuple[dict[str, tuple[int, float]], float]:
    """One seed: (finding -> (examples, seconds) to its first showing, examples/s)."""
    count = 0
    seen: dict[str, tuple[int, float]] = {}
    started = time.perf_counter()

    @seed(run)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def search(data: bytes) -> None:
        nonlocal count
        count += 1
        try:
            pika_raises_only_its_own_errors(data)
        except Exception as exc:  # a finding: note it and go on
            first = (count, time.perf_counter() - started)
            seen.setdefault("any foreign exception", first)
            seen.setdefault(classify(exc), first)

    search()
    return seen, count / (time.perf_counter() - started)


def measure(
    strategy: st.SearchStrategy[bytes], runs: int = 20, examples: int = 3000
) -> dict[str, Any]:
    """Generate ``examples`` inputs (no shrinking) from each of ``runs`` seeds and note
    when each kind of foreign exception first shows: the median number of examples and
    seconds to it, over the seeds where it showed."""
    firsts: dict[str, list[tuple[int, float]]] = {}
    rates = []
    for run in range(runs):
        seen, rate = first_findings(strategy, run, examples)
        rates.append(rate)
        for kind, first in seen.items():
            firsts.setdefault(kind, []).append(first)
    result: dict[str, Any] = {"examples/s": round(statistics.median(rates))}
    for kind, hits in sorted(firsts.items()):
        result[kind] = (
            f"{len(hits)}/{runs} seeds, median {statistics.median(n for n, _ in hits):.0f}"
            f" examples / {statistics.median(t for _, t in hits):.2f}s"
        )
    return result


def measure_wrong_value(runs: int = 20) -> dict[str, Any]:
    """Differential: decode valid content headers with both decoders and compare the
    headers; examples until a value differs (pika's floats turned ints)."""
    counts, times = [], []
    for run in range(runs):
        examples = 0

        @seed(run)
        @settings(
            max_examples=100_000,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(amqp_st.frames(["header"]))
        def search(frame: HeaderFrame) -> None:
            nonlocal examples
            examples += 1
            raw = frame.encode()
            try:
                _, theirs = pika.frame.decode_frame(raw)
            except Exception:
                return  # the exceptions are the other search's business
            assert _same(frame.properties.headers, theirs.properties.headers)

        started = time.perf_counter()
        with contextlib.suppress(AssertionError):
            search()
        times.append(time.perf_counter() - started)
        counts.append(examples)
    return {
        "median examples": statistics.median(counts),
        "max examples": max(counts),
        "median seconds": round(statistics.median(times), 3),
        "max seconds": round(max(times), 3),
    }


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, dict):
        return (
            isinstance(theirs, dict)
            and ours.keys() == theirs.keys()
            and all(_same(ours[k], theirs[k]) for k in ours)
        )
    if isinstance(ours, list):
        return len(ours) == len(theirs) and all(map(_same, ours, theirs))
    return bool(ours == theirs) and (type(ours) is float) == (type(theirs) is float)


if __name__ == "__main__":
    print(f"pika {pika.__version__}: 20 seeds x 3000 examples each, generation only")
    for name, strategy in (("valid frames", VALID_FRAMES), ("mutated streams", MUTATED_STREAMS)):
        print(f"{name}: {measure(strategy)}")
    print(f"wrong value (floats): {measure_wrong_value()}")
    sys.exit(0)
