"""How records are shown (amqpcodec._output): time formats, bodies, credentials."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from amqpcodec import BasicProperties, BodyFrame, HeaderFrame, MethodFrame, spec
from amqpcodec._content import Message
from amqpcodec._output import JSONWriter, Style, TextWriter, body_text, json_record
from amqpcodec.capture import ConnectionInfo, Direction, FrameRecord, MessageRecord

C2S = Direction.CLIENT_TO_SERVER
CONN = ConnectionInfo(3)


def frame(frame: object, when: float | None = 100.0) -> FrameRecord:
    return FrameRecord(when, CONN, C2S, frame, 0, 8)  # type: ignore[arg-type]


def lines(writer: TextWriter, *records: object) -> list[str]:
    return [writer.format(r) for r in records]  # type: ignore[arg-type]


def test_time_formats(monkeypatch: pytest.MonkeyPatch) -> None:
    heartbeat = spec.Basic.Qos(prefetch_count=1)
    records = [frame(MethodFrame(1, heartbeat), t) for t in (100.0, 100.25, 101.0)]
    relative = lines(TextWriter(io.StringIO(), epoch=lambda: 99.5), *records)
    assert [line.split()[0] for line in relative] == ["0.500000", "0.750000", "1.500000"]
    first = lines(TextWriter(io.StringIO()), *records)  # no epoch: the first record
    assert [line.split()[0] for line in first] == ["0.000000", "0.250000", "1.000000"]
    delta = lines(TextWriter(io.StringIO(), time_format="delta"), *records)
    assert [line.split()[0] for line in delta] == ["0.000000", "0.250000", "0.750000"]
    absolute = lines(TextWriter(io.StringIO(), time_format="absolute"), records[1])
    assert absolute[0].startswith("1970-01-01 00:01:40.250000Z #3 ")
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        local = lines(TextWriter(io.StringIO(), time_format="local"), records[1])
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert local[0].startswith("1970-01-01 05:31:40.250000+0530 #3 ")
    untimed = lines(TextWriter(io.StringIO()), frame(MethodFrame(1, heartbeat), None))
    assert untimed[0].startswith("         - #3 ")
    with pytest.raises(ValueError, match="time format"):
        TextWriter(io.StringIO(), time_format="soon")


def message(body: bytes, content_type: str | None = None) -> MessageRecord:
    props = BasicProperties(content_type=content_type)
    return MessageRecord(1.0, CONN, C2S, Message(1, spec.Basic.Publish(), props, body), 0)


@pytest.mark.parametrize(
    ("body", "content_type", "mode", "shown"),
    [
        (b"hello world", None, "auto", "11 bytes 'hello world'"),
        (b"hello world", None, "hex", "11 bytes 68 65 6c 6c 6f 20 77 6f 72 6c 64"),
        (b"hello world", None, "none", "11 bytes"),
        (b"\x00\x01\xff", None, "auto", "3 bytes 00 01 ff"),
        (b"\x00\x01\xff", None, "text", "3 bytes '\\x00\\x01\\\\xff'"),
        (b"\x00\x01\xff", "text/plain", "auto", "3 bytes '\\x00\\x01\\\\xff'"),
        (b"caf\xc3\xa9 \xc3", None, "auto", "7 bytes 'café \\\\xc3'"),  # a cut character
        (b"<a/>", "application/atom+xml", "auto", "4 bytes '<a/>'"),
        (b"{not json", "application/json", "auto", "9 bytes '{not json'"),
        (b"", "application/json", "auto", "0 bytes"),
    ],
)
def test_body_modes(body: bytes, content_type: str | None, mode: str, shown: str) -> None:
    writer = TextWriter(io.StringIO(), body=mode)
    text = writer.format(message(body, content_type))
    assert text.rstrip("\n").endswith(f"| body: {shown}")


def test_json_bodies_are_pretty_printed_whole() -> None:
    writer = TextWriter(io.StringIO())
    body = json.dumps({"a": [1, 2], "b": "é"}).encode()
    text = writer.format(message(body, "application/vnd.api+json; charset=utf-8"))
    assert text.splitlines()[1:] == [
        "      {",
        '        "a": [',
        "          1,",
        "          2",
        "        ],",
        '        "b": "é"',
        "      }",
    ]
    # A body frame is one line: the bytes as text, even when it holds the whole body.
    header = frame(HeaderFrame(1, len(body), BasicProperties(content_type="application/json")))
    out = lines(writer, header, frame(BodyFrame(1, body)))
    assert out[1].count("\n") == 1 and 'Content body: 28 bytes \'{"a": [1, 2]' in out[1]


def test_preview_limits_what_is_shown() -> None:
    shown = body_text(b"abcdef", Style(io.StringIO()), 3, "hex")
    assert shown == "6 bytes 61 62 63..."  # a StringIO has no encoding: ASCII
    assert body_text(b"abcdef", Style(io.StringIO()), 0, "text") == "6 bytes"


def test_credentials_are_redacted() -> None:
    start_ok = spec.Connection.StartOk(mechanism="PLAIN", response=b"\x00guest\x00secret")
    secret = spec.Connection.UpdateSecret(new_secret=b"token-123", reason="refresh")
    records = [frame(MethodFrame(0, start_ok)), frame(MethodFrame(0, secret))]
    text = "".join(lines(TextWriter(io.StringIO()), *records))
    assert "secret" not in text.replace("UpdateSecret", "").replace("new_secret", "")
    assert "response=<redacted 13 bytes>" in text and "new_secret=<redacted 9 bytes>" in text
    assert "reason='refresh'" in text and "mechanism='PLAIN'" in text
    shown = "".join(lines(TextWriter(io.StringIO(), show_credentials=True), *records))
    assert "response=b'\\x00guest\\x00secret'" in shown and "new_secret=b'token-123'" in shown
    redacted = json_record(records[1])["arguments"]
    assert redacted == {"new_secret": {"redacted": 9}, "reason": "refresh"}
    assert json_record(records[1], show_credentials=True)["arguments"]["new_secret"] == (
        "token-123"
    )


def test_json_writer_options() -> None:
    out = io.StringIO()
    writer = JSONWriter(out, body="none")
    writer.write(frame(BodyFrame(1, b"xyz")))
    writer.write(message(b"xyz"))
    body, whole = map(json.loads, out.getvalue().splitlines())
    assert "payload_base64" not in body and body["payload_size"] == 3
    assert "body_base64" not in whole and whole["body_size"] == 3
    with pytest.raises(ValueError, match="body mode"):
        JSONWriter(out, body="loud")
    with pytest.raises(ValueError, match="body mode"):
        TextWriter(out, body="loud")


class _Flushes(io.StringIO):
    count = 0

    def flush(self) -> None:
        self.count += 1


def test_flush_per_record() -> None:
    for writer_class in (TextWriter, JSONWriter):
        out = _Flushes()
        writer = writer_class(out, flush=True)
        for _ in range(3):
            writer.write(frame(BodyFrame(1, b"x")))
        assert out.count == 3


def test_export(tmp_path: Path) -> None:
    from amqpcodec._export import Exporter

    exporter = Exporter(tmp_path / "out")
    publish = message(b'{"n": 1}', "application/json")
    deliver = MessageRecord(
        2.0,
        CONN,
        Direction.SERVER_TO_CLIENT,
        Message(2, spec.Basic.Deliver(delivery_tag=7), BasicProperties(), b"\x00"),
        0,
    )
    paths = [exporter.write(r) for r in (publish, publish, deliver, deliver)]
    names = [p.name for p in paths]
    assert names == [
        "c3-ch1-publish-1.body",
        "c3-ch1-publish-2.body",
        "c3-ch2-deliver-7.body",
        "c3-ch2-deliver-7.2.body",  # a tag seen again (the channel was reopened)
    ]
    assert paths[0].read_bytes() == b'{"n": 1}' and paths[2].read_bytes() == b"\x00"
    about = json.loads(paths[0].with_suffix(".json").read_text())
    assert about["method"] == "basic.publish" and about["body_file"] == names[0]
    assert about["properties"] == {"content_type": "application/json"}
    assert about["partial"] is False and "body_base64" not in about
    assert sorted(os.listdir(tmp_path / "out")) == sorted(
        [*names, *(n.removesuffix(".body") + ".json" for n in names)]
    )
    assert exporter.count == 4


def test_truncated_and_partial_records() -> None:
    record = frame(MethodFrame(1, spec.Channel.Close(reply_code=404, reply_text="NOT_")))
    record.truncated = True
    text = TextWriter(io.StringIO()).format(record)
    assert text.rstrip().endswith("(truncated: the capture holds only its start)")
    assert json_record(record)["truncated"] is True
    lost = message(b"abc")
    lost.missing = None  # even the content header was lost
    text = TextWriter(io.StringIO()).format(lost)
    assert "| properties not captured |" in text
    assert text.rstrip().endswith(
        "3 bytes 'abc' present, an unknown number of bytes missing (partial)"
    )
    data = json_record(lost)
    assert data["partial"] is True and data["missing"] is None


def test_text_writer_holds_only_contents_in_progress() -> None:
    writer = TextWriter(io.StringIO())
    props = BasicProperties(content_type="text/plain")
    for index in range(1000):
        info = ConnectionInfo(index)
        for channel in (1, 2):
            for item in (
                HeaderFrame(channel, 6, props),
                BodyFrame(channel, b"ab"),
                BodyFrame(channel, b"cdef"),
            ):
                text = writer.format(FrameRecord(1.0, info, C2S, item, 0, 8))
        assert text.rstrip().endswith("Content body: 4 bytes 'cdef'")
    assert writer._contents == {}  # every body completed: nothing held
    writer.format(frame(HeaderFrame(1, 10, props)))
    writer.format(frame(BodyFrame(1, b"12345")))
    assert len(writer._contents) == 1  # one body under way
