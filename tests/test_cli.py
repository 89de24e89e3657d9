"""The command line: ``amqpcodec decode`` (``python -m amqpcodec decode``)."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

dpkt = pytest.importorskip("dpkt")

from amqpcodec import __main__ as cli  # noqa: E402
from amqpcodec import _decode, _output  # noqa: E402
from amqpcodec.capture import Direction, read_capture  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "data" / "captures"
HEX = ROOT / "tests" / "data" / "hex"
SAMPLE = CAPTURES / "pika_publish_props.pcapng"  # the README's main-job sample


def unnumbered(text: str) -> str:
    """Text output without its packet numbers ("[12] " before a frame)."""
    return re.sub(r"(?m)^(.*?) \[\d+\] ", r"\1 ", text)


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    status = cli.main(["decode", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def python_m(
    *args: str | Path, stdin: bytes | None = None, **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "amqpcodec", *map(str, args)],
        input=stdin,
        capture_output=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def on_port(port: int, name: str = "midstream.pcap") -> bytes:
    """A recorded capture with the broker moved from port 5672 to ``port``."""
    out = io.BytesIO()
    with open(CAPTURES / name, "rb") as f:
        writer = dpkt.pcap.Writer(out)
        for ts, frame in dpkt.pcap.Reader(f):
            eth = dpkt.ethernet.Ethernet(frame)
            tcp = eth.data.data
            tcp.sport = port if tcp.sport == 5672 else tcp.sport
            tcp.dport = port if tcp.dport == 5672 else tcp.dport
            writer.writepkt(bytes(eth), ts)
    return out.getvalue()


# ---------------------------------------------------------------------------------------
# Text output


def test_sample_reads_well(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, SAMPLE)
    assert status == 0 and err == ""
    # Each frame shows the number of the packet it ends in, as Wireshark numbers them.
    assert out.splitlines()[1] == "  0.000302 #0 C→S       [4] Protocol header AMQP 0-9-1"
    out = unnumbered(out)
    lines = out.splitlines()
    frames = [r for r in read_capture(SAMPLE)]
    assert len(lines) == 1 + len(frames)
    assert lines[0] == "# connection #0: client 127.0.0.1:58592, server 127.0.0.1:5672"
    assert lines[1] == "  0.000302 #0 C→S       Protocol header AMQP 0-9-1"
    assert lines[2].startswith("  0.001722 #0 S→C ch0   Connection.Start(version_major=0, ")
    assert "mechanisms=b'AMQPLAIN PLAIN', locales=b'en_US')" in lines[2]
    assert "  Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=60)" in out
    # Reserved fields are shown only when they hold something (pika's insist bit).
    assert "  Connection.Open(virtual_host='/', reserved_2=True)\n" in out
    publish = next(line for line in lines if "Basic.Publish(" in line)
    assert publish.endswith(
        "#0 C→S ch1   Basic.Publish(exchange='', routing_key='amqpcodec.record.publish_props',"
        " mandatory=False, immediate=False)"
    )
    header = lines[lines.index(publish) + 1]
    assert "C→S ch1   Content header: body_size=18, content_type='application/json'," in header
    assert "'nested': {'a': 1, 'b': 'two', 'c': {'deep': True}}" in header
    assert "'decimal': 123.45, 'datetime': 2024-05-17T12:30:45+00:00" in header
    assert "timestamp=1700000000 (2023-11-14T22:13:20Z)" in header
    assert "'bytes': b'\\x00\\x01\\x02binary\\xff'" in header
    body = lines[lines.index(publish) + 2]
    # --body auto: a JSON body frame as text (pretty-printed only as a whole message)
    assert body.endswith('C→S ch1   Content body: 18 bytes \'{"hello": "world"}\'')
    assert lines[-1].endswith("#0 S→C ch0   Connection.CloseOk()")


def test_heartbeats_channel_errors_and_connections(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, CAPTURES / "pika_heartbeat.pcapng")
    assert unnumbered(out).count("ch0   Heartbeat\n") == 14
    _, out, _ = run(capsys, CAPTURES / "pika_channel_error.pcap")
    assert 'S→C ch1   Channel.Close(reply_code=404, reply_text="NOT_FOUND - no queue' in unnumbered(
        out
    )
    _, out, _ = run(capsys, CAPTURES / "two_connections.pcap")
    headers = [line for line in out.splitlines() if line.startswith("# connection")]
    assert [h.split(":")[0] for h in headers] == ["# connection #0", "# connection #1"]
    assert " #1 C→S       Protocol header" in unnumbered(out)


def test_messages(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--messages", SAMPLE)
    assert status == 0
    out = unnumbered(out)
    messages = [line for line in out.splitlines() if "| body: " in line]
    assert len(messages) == 2
    assert " C→S ch1   Basic.Publish(exchange=''," in messages[0]
    assert " S→C ch1   Basic.GetOk(delivery_tag=1," in messages[1]
    for line in messages:
        assert "| content_type='application/json', content_encoding='utf-8', headers={" in line
        # --body auto: a JSON message's body is pretty-printed under it
        assert line.endswith("| body: 18 bytes (JSON)")
        lines = out.splitlines()
        at = lines.index(line)
        assert lines[at + 1 : at + 4] == ["      {", '        "hello": "world"', "      }"]
    assert "Content body" not in out
    _, out, _ = run(capsys, "--messages", "--preview", "4", CAPTURES / "pika_large_body.pcap")
    assert "| body: 100000 bytes 00 01 02 03…\n" in out  # binary: hex
    assert "| body: 0 bytes\n" in out


def test_preview_and_absolute_time(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--preview", "0", "--absolute-time", SAMPLE)
    assert "Content body: 18 bytes\n" in out
    assert out.splitlines()[1].startswith("2026-11-25 ") or out.splitlines()[1][4] == "-"
    assert "#0 C→S       [4] Protocol header" in out.splitlines()[1]


def test_notices_in_text(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, CAPTURES / "midstream.pcap")
    assert status == 0
    assert out.splitlines()[1] == (
        "  0.000000 #0 C→S       [1] ** first frame at offset 0 (the capture starts mid-connection)"
    )


# ---------------------------------------------------------------------------------------
# JSON and summary


def test_json_one_object_per_frame(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--json", SAMPLE)
    assert status == 0
    objects = [json.loads(line) for line in out.splitlines()]
    records = list(read_capture(SAMPLE))
    assert len(objects) == len(records)
    first = objects[0]
    assert first == {
        "packet": getattr(records[0], "packet", None),
        "time": records[0].time,
        "connection": 0,
        "client": "127.0.0.1:58592",
        "server": "127.0.0.1:5672",
        "direction": "c2s",
        "offset": 0,
        "size": 8,
        "truncated": False,
        "type": "protocol-header",
        "protocol_id": 0,
        "major": 0,
        "minor": 9,
        "revision": 1,
    }
    methods = [r for r in records if type(r.frame).__name__ == "MethodFrame"]  # type: ignore[union-attr]
    assert [o["type"] for o in objects].count("method") == len(methods) == 19
    start_ok = next(o for o in objects if o.get("method") == "connection.start-ok")
    assert start_ok["arguments"]["response"] == {"redacted": 12}  # PLAIN: the password
    _, out, _ = run(capsys, "--json", "--show-credentials", "--method", "*.start-ok", SAMPLE)
    (start_ok,) = map(json.loads, out.splitlines())
    assert start_ok["arguments"]["response"] == "\x00guest\x00guest"
    header = next(o for o in objects if o["type"] == "header")
    headers = header["properties"]["headers"]
    assert headers["decimal"] == "123.45"
    assert headers["datetime"] == "2024-05-17T12:30:45+00:00"
    assert headers["bytes"] == {"base64": base64.b64encode(b"\x00\x01\x02binary\xff").decode()}
    assert headers["list"] == [1, "two", True, None, [4, 5], {"k": "v"}]
    body = next(o for o in objects if o["type"] == "body")
    assert base64.b64decode(body["payload_base64"]) == b'{"hello": "world"}'
    assert body["payload_size"] == 18 and body["channel"] == 1


def test_json_messages_and_notices(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "--json", "--messages", CAPTURES / "pyamqp_session.pcapng")
    objects = [json.loads(line) for line in out.splitlines()]
    messages = [o for o in objects if o["type"] == "message"]
    assert len(messages) == 4
    assert all(base64.b64decode(m["body_base64"]) for m in messages)
    assert any(isinstance(v, float) for m in messages for v in m["properties"]["headers"].values())
    _, out, _ = run(capsys, "--json", CAPTURES / "midstream.pcap")
    notice = json.loads(out.splitlines()[0])
    assert notice["type"] == "notice" and notice["kind"] == "skipped" and notice["size"] == 0


def test_summary(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--summary", CAPTURES / "pika_channel_error.pcap")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"{CAPTURES / 'pika_channel_error.pcap'}: pcap, 37 packets (0 not AMQP)"
    assert lines[1] == "connections: 1, frames: 29"
    assert lines[2].startswith("  #0 127.0.0.1:51242 -> 127.0.0.1:5672: C→S 16, S→C 13")
    rows = {line.split()[0]: line.split()[1:] for line in lines[4:]}
    assert rows["Channel.Close"] == ["1", "1"]
    assert rows["Queue.Declare"] == ["2", "0"]
    assert "  Content header        1    1" in lines
    assert "connection #0:" not in out  # one connection: no per-connection tables
    _, out, _ = run(capsys, "--summary", "--messages", CAPTURES / "pika_large_body.pcap")
    assert "connections: 1, frames: 19, messages: 4" in out  # frames outside messages
    assert "\n  Message Basic.Publish    2    0\n" in out
    assert "\n  Message Basic.GetOk      0    2\n" in out
    _, out, _ = run(capsys, "--summary", CAPTURES / "midstream.pcap")
    assert out.endswith("\n  resynchronisations: 2 (0 bytes skipped)\n")


# ---------------------------------------------------------------------------------------
# Inputs and options


def test_stdin_gives_the_same_output() -> None:
    from_file = python_m("decode", SAMPLE)
    from_stdin = python_m("decode", "-", stdin=SAMPLE.read_bytes())
    assert from_file.returncode == from_stdin.returncode == 0
    assert from_stdin.stdout == from_file.stdout
    raw = python_m("decode", "-", stdin=(CAPTURES / "pika_heartbeat.s2c.bin").read_bytes())
    assert raw.returncode == 0 and b"         - #0 S\xe2\x86\x92C ch0   Heartbeat\n" in raw.stdout


def test_console_script() -> None:
    script = shutil.which("amqpcodec", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("amqpcodec is not installed in this environment")
    result = subprocess.run([script, "decode", SAMPLE], capture_output=True, check=False)
    assert result.returncode == 0
    assert result.stdout == python_m("decode", SAMPLE).stdout


def test_ports(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.pcap"
    path.write_bytes(on_port(5673))
    status, out, _ = run(capsys, path)
    assert (status, out) == (0, "")  # mid-stream, no protocol header: not found
    _, out, _ = run(capsys, "--port", "5673", path)
    assert "Channel.Open()" in out
    _, out, _ = run(capsys, "--summary", "--port", "5672", "--port", "5673", path)
    assert "connections: 1, frames: 17" in out
    # A whole connection is found on any port by its protocol header.
    path.write_bytes(on_port(15000, "pika_handshake_close.pcap"))
    _, out, _ = run(capsys, path)
    assert "server 127.0.0.1:15000" in out


def test_raw_and_hex_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, CAPTURES / "pika_handshake_close.c2s.bin")
    assert out.splitlines()[0] == "         - #0 C→S       Protocol header AMQP 0-9-1"
    _, out, _ = run(capsys, "--direction", "s2c", CAPTURES / "pika_heartbeat.s2c.bin")
    assert " S→C ch0   Connection.Start(" in out
    _, follow, _ = run(capsys, HEX / "pika_publish_props.follow.txt")
    _, pcap, _ = run(capsys, SAMPLE)
    assert follow.splitlines()[0] == pcap.splitlines()[0]  # endpoints from the Node lines

    def described(output: str, direction: str) -> list[str]:
        lines = unnumbered(output).splitlines()[1:]
        return [line[22:] for line in lines if f" {direction} " in line]

    for direction in ("C→S", "S→C"):
        assert described(follow, direction) == described(pcap, direction)
    status, out, _ = run(capsys, "--format", "raw", HEX / "pika_handshake_close.s2c.plain.txt")
    assert status == 0 and "held no frame" in out  # text read as bytes holds no frames


def test_ascii_output_when_the_terminal_cannot_show_arrows() -> None:
    result = python_m("decode", SAMPLE, PYTHONIOENCODING="ascii")
    assert result.returncode == 0
    assert b" #0 C->S       [4] Protocol header AMQP 0-9-1\n" in result.stdout


def test_progress_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_decode, "_PROGRESS_FROM", 0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    status, _, err = run(capsys, "--summary", CAPTURES / "pika_large_body.pcap")
    assert status == 0
    assert "\rdecoding: " in err and err.endswith("\r\033[K")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    _, _, err = run(capsys, CAPTURES / "pika_large_body.pcap")
    assert err == ""  # output lines and progress would fight over one terminal


# ---------------------------------------------------------------------------------------
# Exit status


def test_not_a_capture(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, world\n")
    status, out, err = run(capsys, path)
    assert status == 2 and out == ""
    assert err == (
        f"amqpcodec: error: {path}: not a pcap or pcapng capture, a hex dump or a raw AMQP"
        " stream (it starts with 68 65 6c 6c 6f 2c 20 77)\n"
    )
    status, _, err = run(capsys, tmp_path / "missing.pcap")
    assert status == 2 and "cannot open" in err and "No such file" in err


def test_malformed_stream_prints_what_came_before(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = bytearray((CAPTURES / "pika_handshake_close.c2s.bin").read_bytes())
    data[355] = 0x00  # the frame-end of connection.tune-ok (offset 336, 20 bytes)
    path = tmp_path / "bad.bin"
    path.write_bytes(bytes(data))
    status, out, err = run(capsys, path)
    assert status == 1
    lines = out.splitlines()
    assert lines[0].endswith("C→S       Protocol header AMQP 0-9-1")
    assert "C→S ch0   Connection.StartOk(client_properties={'product':" in lines[1]
    assert "!! malformed frame at offset 336: frame-end octet is 0x00, not 0xce" in lines[2]
    assert lines[3].endswith("** 70 bytes after the error were not decoded")
    assert err == (
        f"amqpcodec: error: {path}: connection #0, c2s: malformed frame at offset 336:"
        " frame-end octet is 0x00, not 0xce\n"
    )
    status, out, _ = run(capsys, "--resync", path)
    assert status == 1
    assert "skipped 20 bytes to the next frame, at offset 356 (after a malformed frame)" in out
    assert out.splitlines()[-1].endswith(
        "Connection.Close(reply_code=200, reply_text='Normal shutdown', class_id=0, method_id=0)"
    )


def test_truncated_capture_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes((CAPTURES / "pika_handshake_close.pcap").read_bytes()[:-40])
    status, out, err = run(capsys, path)
    assert status == 3 and "Connection.Start(" in out  # 3: read in part
    assert err.startswith(
        f"amqpcodec: warning: {path}: the capture file ends in the middle of a packet record"
    )


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["decode"],
        ["decode", "--port", "70000", "x"],
        ["decode", "--port", "ab", "x"],
        ["decode", "--json", "--summary", "x"],
        ["decode", "--format", "zip", "x"],
        ["frobnicate", "x"],
    ],
)
def test_usage_errors(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    assert "usage: amqpcodec" in capsys.readouterr().err


def test_help_names_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["decode", "--help"])
    text = capsys.readouterr().out
    out = " ".join(text.split())
    assert (
        "Exit status: 0 decoded, 1 a stream is malformed, 2 the input is unreadable,"
        " 3 the capture could be read only in part." in out
    )
    assert "amqpcodec decode --connection 1 --method 'basic.*' capture.pcap" in text
    from amqpcodec._output import JSON_FIELDS

    assert JSON_FIELDS in text  # every JSON field described, as written


def test_summary_columns_never_run_together() -> None:
    from amqpcodec._output import Style

    summary = _decode._Summary()
    summary.rows = {"Basic.Deliver": {Direction("c2s"): 12345678, Direction("s2c"): 87654321}}
    summary.bytes = {Direction("c2s"): 123456789012, Direction("s2c"): 1}
    out = io.StringIO()
    summary._table(out, summary.rows, summary.bytes, list(summary.bytes), Style(out))
    lines = out.getvalue().splitlines()
    assert lines[2].split() == ["Basic.Deliver", "12345678", "87654321"]
    assert lines[3].split() == ["frame", "bytes", "123456789012", "1"]
    assert len({len(line) for line in lines[1:]}) == 1  # aligned


def test_summary_counts_methods_per_connection(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--summary", CAPTURES / "two_connections.pcap")
    assert status == 0
    first = out[out.index("\nconnection #0:") : out.index("\nconnection #1:")]
    second = out[out.index("\nconnection #1:") :]
    for part in (first, second):
        rows = {line.split()[0]: line.split()[1:] for line in part.splitlines()[2:]}
        assert rows["Basic.Publish"] == ["1", "0"] and rows["Basic.GetOk"] == ["0", "1"]
    overall = {
        line.split()[0]: line.split()[1:]
        for line in out[: out.index("\nconnection #0:")].splitlines()[5:]
    }
    assert overall["Basic.Publish"] == ["2", "0"]


def test_closed_pipe_is_quiet() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpcodec", "decode", "--json", CAPTURES / "pika_large_body.pcap"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    status = process.wait(timeout=60)
    assert process.stderr.read() == b""
    assert status == 0  # `| head` is not an error


# ---------------------------------------------------------------------------------------
# Corners of the output


def test_output_corners(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from amqpcodec import BasicProperties, HeartbeatFrame, MethodFrame, ProtocolHeader, spec

    long_text = "x" * 150
    data = (
        ProtocolHeader(protocol_id=1).encode()
        + MethodFrame(1, spec.Channel.Close(reply_text=long_text)).encode()
        + MethodFrame(0, spec.Connection.StartOk(response=b"\x01" * 150)).encode()
        + HeartbeatFrame().encode()
    )
    path = tmp_path / "corners.bin"
    path.write_bytes(data)
    _, out, _ = run(capsys, path)
    assert "Protocol header AMQP 0-9-1 (protocol id 1)" in out
    assert f"reply_text='{'x' * 100}'…" in out
    assert "response=<redacted 150 bytes>" in out
    _, out, _ = run(capsys, "--show-credentials", path)
    assert "response=b'" + "\\x01" * 100 + "'…" in out
    _, out, _ = run(capsys, "--json", path)
    assert json.loads(out.splitlines()[-1])["type"] == "heartbeat"
    _, out, _ = run(capsys, "--summary", path)
    assert "  Heartbeat " in out

    from amqpcodec import encode_message

    huge = encode_message(1, spec.Basic.Deliver(), BasicProperties(timestamp=2**63), b"", 4096)
    path.write_bytes(huge)
    _, out, _ = run(capsys, "--messages", path)
    assert f"timestamp={2**63} (out of range)" in out


def test_many_errors_are_summed_up(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from amqpcodec import BodyFrame, MethodFrame, spec

    orphan = BodyFrame(1, b"x").encode()
    path = tmp_path / "orphans.bin"
    # A clean stream (it opens with the protocol header) in which body frames arrive
    # with no content before them: each is a content error.
    path.write_bytes(
        b"AMQP\x00\x00\x09\x01" + MethodFrame(1, spec.Channel.Open()).encode() + orphan * 12
    )
    status, _, err = run(capsys, "--messages", path)
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 11 and lines[-1].endswith("and 2 more")


def test_json_values() -> None:
    import datetime
    import decimal

    assert _output.jsonable(float("nan")) == "nan"
    assert _output.jsonable(1.5) == 1.5
    assert _output.jsonable(decimal.Decimal("1.50")) == "1.50"
    moment = datetime.datetime(2024, 1, 2, tzinfo=datetime.timezone.utc)
    assert _output.jsonable(moment) == "2024-01-02T00:00:00+00:00"
    assert _output.jsonable((1, b"ok", b"\xff")) == [1, "ok", {"base64": "/w=="}]
    assert _output.jsonable(object).startswith("<class")


def test_progress_needs_a_known_large_size() -> None:
    stream = io.StringIO()
    progress = _decode._Progress(stream)
    progress(10, None)
    progress(10, 1000)
    assert stream.getvalue() == "" and not progress.shown
    progress(50 * 2**20, 100 * 2**20)
    assert stream.getvalue() == "\rdecoding:  50% (50.0 of 100.0 MB)"


# ---------------------------------------------------------------------------------------
# Live output: a pipe or standard input is flushed per record


def test_records_from_standard_input_arrive_before_it_ends() -> None:
    """A live capture: the first packets are decoded and printed while standard input
    is still open (the format is sniffed from what the pipe has, not 4 KiB of it)."""
    import select

    data = (CAPTURES / "pika_large_body.pcap").read_bytes()
    # The file header, then SYN, SYN+ACK, ACK and the packet with the protocol header.
    first = 24 + (16 + 74) + (16 + 74) + (16 + 66) + (16 + 74)
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpcodec", "decode", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(data[:first])
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "nothing printed while the input was still open"
        assert process.stdout.readline().startswith(b"# connection #0: client 127.0.0.1:")
        assert b"Protocol header AMQP 0-9-1" in process.stdout.readline()
        process.stdin.write(data[first:])
    finally:
        process.stdin.close()
        rest = process.stdout.read()
        process.stdout.close()
        assert process.wait(timeout=60) == 0
        assert process.stderr is not None
        process.stderr.close()
    assert b"Connection.CloseOk" in rest


class _CountingOut(io.StringIO):
    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


@pytest.mark.parametrize("option", ["-l", "--line-buffered", None])
@pytest.mark.parametrize("json_output", [False, True])
def test_line_buffered(
    option: str | None, json_output: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _CountingOut()
    monkeypatch.setattr(sys, "stdout", out)
    args = ["decode", *([option] if option else []), *(["--json"] if json_output else [])]
    assert cli.main([*args, str(CAPTURES / "pika_handshake_close.pcap")]) == 0
    records = len(list(read_capture(CAPTURES / "pika_handshake_close.pcap")))
    if option:
        assert out.flushes >= records
    else:
        assert out.flushes <= 2  # a regular file: written in blocks, flushed at the end


def test_a_named_pipe_is_flushed_per_record(tmp_path: Path) -> None:
    assert _decode._is_pipe(sys.stdin.buffer)
    fifo = tmp_path / "live"
    os.mkfifo(fifo)
    assert _decode._is_pipe(str(fifo))
    assert not _decode._is_pipe(str(SAMPLE))
    assert not _decode._is_pipe(str(tmp_path / "missing"))


def test_strings_that_are_not_utf8_show_their_bytes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from amqpcodec import MethodFrame, spec

    key = b"\xff\xferk".decode("utf-8", "surrogateescape")  # as the decoder keeps it
    path = tmp_path / "binary.bin"
    frame = MethodFrame(1, spec.Basic.Publish(routing_key=key, exchange="x"))
    table = spec.Queue.Declare(queue="q", arguments={"k\udcff": key})
    path.write_bytes(frame.encode() + MethodFrame(1, table).encode())
    _, out, _ = run(capsys, path)
    assert "routing_key=b'\\xff\\xferk'" in out and "exchange='x'" in out
    assert "arguments={b'k\\xff': b'\\xff\\xferk'}" in out
    assert "\\udc" not in out
    _, out, _ = run(capsys, "--json", path)
    first, second = map(json.loads, out.splitlines())
    assert first["arguments"]["routing_key"] == {"base64": "//5yaw=="}
    assert first["arguments"]["exchange"] == "x"
    assert second["arguments"]["arguments"] == {"k\\xff": {"base64": "//5yaw=="}}
    assert "\\ud" not in out


def test_export_writes_each_body(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_dir = tmp_path / "bodies"
    status, out, _ = run(capsys, "--export", out_dir, CAPTURES / "pika_large_body.pcap")
    assert status == 0 and "| body: 100000 bytes" in out  # --export implies --messages
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [
        "c0-ch1-get-1.body",
        "c0-ch1-get-1.json",
        "c0-ch1-get-2.body",
        "c0-ch1-get-2.json",
        "c0-ch1-publish-1.body",
        "c0-ch1-publish-1.json",
        "c0-ch1-publish-2.body",
        "c0-ch1-publish-2.json",
    ]
    assert len((out_dir / "c0-ch1-publish-1.body").read_bytes()) == 100_000
    assert (out_dir / "c0-ch1-get-1.body").read_bytes() == (
        out_dir / "c0-ch1-publish-1.body"
    ).read_bytes()
    assert (out_dir / "c0-ch1-publish-2.body").read_bytes() == b""
    about = json.loads((out_dir / "c0-ch1-get-1.json").read_text())
    assert about["method"] == "basic.get-ok" and about["arguments"]["delivery_tag"] == 1
    (tmp_path / "file").write_text("")
    status, _, err = run(capsys, "--export", tmp_path / "file", CAPTURES / "pika_large_body.pcap")
    assert status == 2 and "cannot write to" in err


def test_tcp_events_show_who_closed_the_socket(capsys: pytest.CaptureFixture[str]) -> None:
    path = CAPTURES / "report" / "heartbeat_stop.pcap"
    status, out, _ = run(capsys, "--tcp", path)
    assert status == 0
    tcp = [line for line in out.splitlines() if "** SYN" in line or "** RST" in line]
    assert len(tcp) == 3 and tcp[-1].endswith("** RST from the server")
    _, plain, _ = run(capsys, path)
    assert "** RST" not in plain
    _, out, _ = run(capsys, "--tcp", "--summary", path)
    assert "  TCP SYN, FIN and RST: 3\n" in out


def test_a_message_a_gap_cut_through_is_shown_partial(
    capsys: pytest.CaptureFixture[str],
) -> None:
    facts = json.loads((CAPTURES / "report" / "kernel_drop.facts.json").read_text())
    path = CAPTURES / "report" / "kernel_drop.pcap"
    _, out, _ = run(capsys, "--messages", "--method", "basic.publish", path)
    (partial,) = [line for line in out.splitlines() if "(partial)" in line]
    assert f"routing_key='{facts['queue']}'" in partial
    assert "bytes missing (partial)" in partial
    _, out, _ = run(capsys, "--messages", "--json", "--method", "basic.publish", path)
    objects = [json.loads(line) for line in out.splitlines()]
    (cut,) = [o for o in objects if o["partial"]]
    assert cut["missing"] + cut["body_size"] == facts["body_size"]
    assert cut["method_packet"] <= cut["packet"]
    whole = [o for o in objects if not o["partial"]]
    assert whole and all(o["missing"] == 0 for o in whole)


def test_the_head_of_a_pipe_is_what_it_has() -> None:
    from amqpcodec.capture._input import read_head

    header = (CAPTURES / "pika_large_body.pcap").read_bytes()[:24]
    read_end, write_end = os.pipe()
    with open(read_end, "rb") as reader, open(write_end, "wb") as writer:
        writer.write(header)
        writer.flush()
        # The pipe stays open: a pcap magic decides, no 4 KiB wait.
        assert read_head(reader, 4096, lambda head: len(head) >= 4) == header
    with open(CAPTURES / "pika_large_body.pcap", "rb") as regular:
        assert len(read_head(regular, 4096, lambda head: True)) == 4096  # a file: all of it


def test_a_recorded_routing_key_that_is_not_utf8(capsys: pytest.CaptureFixture[str]) -> None:
    """py-amqp published with a binary routing key; RabbitMQ returned it (312)."""
    path = CAPTURES / "report" / "split_message.pcap"
    key = bytes.fromhex(
        json.loads(path.with_suffix(".facts.json").read_text())["binary_routing_key_hex"]
    )
    status, out, _ = run(capsys, "--method", "basic.publish", "--method", "basic.return", path)
    assert status == 0
    shown = [line for line in out.splitlines() if f"routing_key={key!r}" in line]
    assert [("Basic.Publish" in s, "Basic.Return" in s) for s in shown] == [
        (True, False),
        (False, True),
    ]
    assert "\\udc" not in out
    _, out, _ = run(capsys, "--json", "--method", "basic.return", path)
    (returned,) = map(json.loads, out.splitlines())
    assert returned["arguments"]["routing_key"] == {"base64": base64.b64encode(key).decode()}
    assert returned["arguments"]["reply_code"] == 312
