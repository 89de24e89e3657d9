"""decode's filters: --connection, --channel, --method, --direction, --since, --until."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("dpkt")

from amqpcodec import __main__ as cli
from amqpcodec._filter import RecordFilter
from amqpcodec._frames import MethodFrame
from amqpcodec.capture import (
    CaptureReader,
    Direction,
    FrameRecord,
    MessageRecord,
    Notice,
    read_capture,
)

CAPTURES = Path(__file__).resolve().parent / "data" / "captures"
TWO = CAPTURES / "two_connections.pcap"
ERROR = CAPTURES / "pika_channel_error.pcap"


def decode_json(capsys: pytest.CaptureFixture[str], *args: str | Path) -> list[dict[str, object]]:
    assert cli.main(["decode", "--json", *map(str, args)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def method_name(record: object) -> str | None:
    if isinstance(record, FrameRecord) and isinstance(record.frame, MethodFrame):
        return record.frame.method.NAME
    if isinstance(record, MessageRecord):
        return record.message.method.NAME
    return None


def test_connection_filter_is_exact(capsys: pytest.CaptureFixture[str]) -> None:
    everything = list(read_capture(TWO))
    for index in (0, 1):
        objects = decode_json(capsys, "--connection", str(index), TWO)
        expected = [r for r in everything if r.connection.index == index]
        assert len(objects) == len(expected) > 0
        assert {o["connection"] for o in objects} == {index}
    both = decode_json(capsys, "--connection", "0", "--connection", "1", TWO)
    assert len(both) == len(everything)


def test_channel_filter_is_frame_exact(capsys: pytest.CaptureFixture[str]) -> None:
    objects = decode_json(capsys, "--channel", "1", ERROR)
    expected = [r for r in read_capture(ERROR) if isinstance(r, Notice) or r.channel == 1]
    assert len(objects) == len(expected)
    assert {o["channel"] for o in objects} == {1}
    two = decode_json(capsys, "--channel", "0", "--channel", "1", ERROR)
    assert {o["channel"] for o in two} == {0, 1}
    assert len(two) > len(objects)


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("channel.close", {"channel.close"}),
        ("Channel.Close", {"channel.close"}),
        ("CHANNEL.CLOSE-OK", {"channel.close-ok"}),
        ("Channel.CloseOk", {"channel.close-ok"}),
        ("queue.*", {"queue.declare", "queue.declare-ok", "queue.delete", "queue.delete-ok"}),
        (
            "*.close*",
            {"channel.close", "channel.close-ok", "connection.close", "connection.close-ok"},
        ),
    ],
)
def test_method_globs_in_either_spelling(
    capsys: pytest.CaptureFixture[str], pattern: str, names: set[str]
) -> None:
    objects = decode_json(capsys, "--method", pattern, ERROR)
    assert {o["method"] for o in objects} == names
    expected = [r for r in read_capture(ERROR) if method_name(r) in names]
    assert len(objects) == len(expected)


def test_filters_combine(capsys: pytest.CaptureFixture[str]) -> None:
    objects = decode_json(
        capsys, "--method", "basic.*", "--direction", "s2c", "--connection", "1", TWO
    )
    assert [(o["method"], o["direction"], o["connection"]) for o in objects] == [
        ("basic.get-ok", "s2c", 1)
    ]
    messages = decode_json(capsys, "--messages", "--method", "basic.publish", TWO)
    assert [(o["type"], o["connection"]) for o in messages] == [("message", 0), ("message", 1)]


def test_direction(capsys: pytest.CaptureFixture[str]) -> None:
    objects = decode_json(capsys, "--direction", "c2s", ERROR)
    expected = [r for r in read_capture(ERROR) if r.direction is Direction.CLIENT_TO_SERVER]
    assert len(objects) == len(expected) and {o["direction"] for o in objects} == {"c2s"}


def test_since_and_until_count_from_the_first_packet(capsys: pytest.CaptureFixture[str]) -> None:
    reader = CaptureReader()
    records = list(reader.read(ERROR))
    start = reader.stats.first_time  # the first packet, a SYN: before any record
    assert start is not None
    times = sorted({r.time for r in records if r.time is not None})
    middle = times[len(times) // 2] - start
    after = decode_json(capsys, "--since", repr(middle), ERROR)
    before = decode_json(capsys, "--until", repr(middle), ERROR)
    at = [r for r in records if r.time == times[len(times) // 2]]
    assert len(after) + len(before) == len(records) + len(at)  # inclusive both ways
    assert all(o["time"] >= times[len(times) // 2] for o in after)  # type: ignore[operator]
    window = decode_json(capsys, "--since", repr(middle), "--until", repr(middle), ERROR)
    assert len(window) == len(at)


def test_filters_apply_to_text_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["decode", "--method", "channel.close", str(ERROR)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " #0 " in line]
    assert len(lines) == 2 and all("Channel.Close(" in line for line in lines)
    assert cli.main(["decode", "--summary", "--connection", "1", str(TWO)]) == 0
    out = capsys.readouterr().out
    assert "connections: 1, frames: 24" in out and "#0 " not in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[4:] if line}
    assert rows["Basic.Publish"] == ["1", "0"]


def test_notices_follow_connection_and_channel_but_not_method() -> None:
    records = list(read_capture(CAPTURES / "midstream.pcap"))
    notices = [r for r in records if isinstance(r, Notice)]
    assert notices
    assert all(RecordFilter(channels=frozenset({1})).matches(n) for n in notices)
    assert not any(RecordFilter(methods=("basic.*",)).matches(n) for n in notices)
    assert not any(RecordFilter(connections=frozenset({5})).matches(n) for n in notices)
    assert not RecordFilter().active and RecordFilter(until=1.0).active


def test_time_filters_drop_records_without_time(tmp_path: Path) -> None:
    raw = tmp_path / "s2c.bin"
    raw.write_bytes((CAPTURES / "pika_channel_error.s2c.bin").read_bytes())
    records = list(read_capture(raw))
    assert records and all(r.time is None for r in records)
    assert not list(RecordFilter(since=0.0).apply(records))
    assert list(RecordFilter(channels=frozenset({0})).apply(records))


def test_bad_filter_values_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--connection", "-1"], ["--channel", "x"], ["--since", "soon"]):
        with pytest.raises(SystemExit) as info:
            cli.main(["decode", *args, str(ERROR)])
        assert info.value.code == 2
    assert "usage: amqpcodec" in capsys.readouterr().err
