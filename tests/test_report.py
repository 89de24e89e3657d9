"""``amqpcodec report FILE [--json]``: the command line and the text form."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dpkt")

from amqpcodec import __main__ as cli
from amqpcodec._report import render_text
from amqpcodec.capture import analyze

ROOT = Path(__file__).resolve().parent.parent
CAPTURES = ROOT / "tests" / "data" / "captures" / "report"


def report(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    status = cli.main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def facts(name: str) -> dict[str, object]:
    return json.loads((CAPTURES / f"{name}.facts.json").read_text())  # type: ignore[no-any-return]


def test_text_names_the_method_that_caused_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = report(capsys, CAPTURES / "three_connections.pcap")
    assert status == 0 and err == ""
    assert out.startswith(f"{CAPTURES / 'three_connections.pcap'}: pcap, ")
    assert "3 AMQP connections" in out.splitlines()[0]
    assert "caused by basic.publish (60/40)" in out
    assert "caused by queue.declare (50/10)" in out
    assert out.count("closed by server at ") == 2
    assert "negotiated: frame_max 131072, channel_max 2047, heartbeat 60 s" in out
    assert "client: Pika Python Client Library 1.4.4" in out
    assert "server: RabbitMQ 3.10.8" in out
    assert out.count("protocol violations: none (checked: all)") == 3


def test_text_confirms_consumers_and_unacked(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = report(capsys, CAPTURES / "confirms_nacks.pcap")
    assert "confirms (channel 1): 3 published, 1 acked, 2 nacked, 0 never confirmed" in out
    from amqpcodec._frames import MethodFrame
    from amqpcodec.capture import FrameRecord, read_capture

    nacks = [
        r.packet
        for r in read_capture(CAPTURES / "confirms_nacks.pcap")
        if isinstance(r, FrameRecord)
        and isinstance(r.frame, MethodFrame)
        and r.frame.method.NAME == "basic.nack"
    ]
    assert len(nacks) == 2 and None not in nacks
    assert f"    nacked: channel 1 tag 2 [{nacks[0]}], 3 [{nacks[1]}]\n" in out
    assert "    publish -> confirm: n=3, p50 " in out
    _, out, _ = report(capsys, CAPTURES / "work_queue.pcap")
    assert "'worker' on channel 1 <- queue 'amqpcodec.report.work." in out
    assert ": 5 deliveries, most in flight 3 (prefetch 3)" in out
    assert ": 2 deliveries, no_ack" in out
    assert re.search(
        r"never acknowledged: channel 1 tag 3 \[\d+\] \(worker\), 5 \[\d+\] \(worker\)", out
    )
    _, out, _ = report(capsys, CAPTURES / "consumer_cancel.pcap")
    assert "'doomed' on channel 1 <- queue 'amqpcodec.report.cancel." in out
    assert "cancelled by server at " in out
    _, out, _ = report(capsys, CAPTURES / "rpc_direct_reply.pcap")
    assert "RPC calls: 3, 3 over direct reply-to, 3 answered: n=3, p50 " in out
    assert "RPC requests served: 3: n=3" in out


def test_text_heartbeats_and_unknowns(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = report(capsys, CAPTURES / "heartbeat_stop.pcap")
    assert "heartbeat: 1 s; ended: " in out
    assert "went silent first: the client (c2s)" in out
    assert "longest silence c2s: 2." in out and " to the end" in out
    _, out, _ = report(capsys, CAPTURES / "midframe_start.pcap")
    assert "not known from this capture:" in out
    assert "- the capture starts after the connection opened" in out
    assert "protocol violations: none (checked: not checked: the capture starts" in out


def test_json_is_the_analysis(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = report(capsys, "--json", CAPTURES / "confirms_nacks.pcap")
    assert status == 0
    data = json.loads(out)
    known = facts("confirms_nacks")
    (connection,) = data["connections"]
    assert [t["tag"] for t in connection["confirms"]["nacked"]] == known["nacked"]
    assert connection["negotiated"]["server_product"] == "RabbitMQ"
    assert data == json.loads(json.dumps(analyze(CAPTURES / "confirms_nacks.pcap").to_dict()))


def test_limits_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = report(capsys, "--json", "--max-items", "1", CAPTURES / "work_queue.pcap")
    (connection,) = json.loads(out)["connections"]
    assert len(connection["unacked"]) == 1 and connection["more"]["unacked"] == 1
    assert connection["unacked_count"] == 2


def test_unreadable_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = report(capsys, tmp_path / "missing.pcap")
    assert status == 2 and out == "" and "cannot open" in err


def test_standard_input_and_closed_pipe() -> None:
    data = (CAPTURES / "three_connections.pcap").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "amqpcodec", "report", "-"],
        input=data,
        capture_output=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0 and b"standard input: pcap" in result.stdout
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpcodec", "report", CAPTURES / "three_connections.pcap"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == b""
    process.stderr.close()


def test_render_text_of_an_empty_report() -> None:
    out = io.StringIO()
    render_text(
        analyze(io.BytesIO((CAPTURES.parent / "pika_channel_error.s2c.bin").read_bytes())), out
    )
    text = out.getvalue()
    assert text.startswith("<stream>: raw, 1 AMQP connection")
    assert "not known from this capture" in text


# ---------------------------------------------------------------------------------------
# The README's capture examples are run and their output compared


def _console_blocks() -> list[tuple[str, str]]:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```console\n\$ (.*?)\n(.*?)```", readme, flags=re.DOTALL)
    return [(command, output) for command, output in blocks]


@pytest.mark.parametrize("index", range(len(_console_blocks())))
def test_readme_capture_examples(index: int) -> None:
    import os
    import shlex

    command, expected = _console_blocks()[index]
    argv = shlex.split(command)
    assert argv[0] == "amqpcodec"
    result = subprocess.run(
        [sys.executable, "-m", "amqpcodec", *argv[1:]],
        capture_output=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode("utf-8") == expected, (
        "the README shows other output; run: python tests/test_report.py --update-readme"
    )


def test_readme_has_capture_examples() -> None:
    commands = [command for command, _ in _console_blocks()]
    assert any(c.startswith("amqpcodec report ") for c in commands)
    assert any("--method" in c and c.startswith("amqpcodec decode ") for c in commands)


def _update_readme() -> None:  # pragma: no cover - a maintenance helper
    import os
    import re
    import shlex

    path = ROOT / "README.md"
    readme = path.read_text(encoding="utf-8")

    def run(match: re.Match[str]) -> str:
        argv = shlex.split(match.group(1))
        output = subprocess.run(
            [sys.executable, "-m", "amqpcodec", *argv[1:]],
            capture_output=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        ).stdout.decode("utf-8")
        return f"```console\n$ {match.group(1)}\n{output}```"

    readme = re.sub(r"```console\n\$ (.*?)\n(.*?)```", run, readme, flags=re.DOTALL)
    path.write_text(readme, encoding="utf-8")


if __name__ == "__main__" and sys.argv[1:] == ["--update-readme"]:  # pragma: no cover
    _update_readme()


def test_render_text_of_a_busy_connection() -> None:
    """One synthetic connection that touches every part of the text form."""
    from amqpcodec import BasicProperties, HeartbeatFrame, MethodFrame, ProtocolHeader, spec
    from amqpcodec._content import Message
    from amqpcodec.capture import (
        ConnectionInfo,
        Direction,
        Endpoint,
        FrameRecord,
        MessageRecord,
        Notice,
        NoticeKind,
    )
    from amqpcodec.capture._analysis import analyze_records

    c2s, s2c = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT
    info = ConnectionInfo(0, Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 5672))
    records: list[object] = []

    def add(direction: Direction, item: object) -> None:
        when = 100.0 + len(records) / 100
        packet = len(records) + 1
        if isinstance(item, Message):
            records.append(MessageRecord(when, info, direction, item, 0, packet, when, packet))
        elif isinstance(item, Notice):
            records.append(item)
        else:
            records.append(FrameRecord(when, info, direction, item, 0, 8, packet))  # type: ignore[arg-type]

    C, Ch, B = spec.Connection, spec.Channel, spec.Basic
    add(c2s, ProtocolHeader())
    start = C.Start(version_major=0, version_minor=9, server_properties={"product": "Fake"})
    add(s2c, MethodFrame(0, start))
    add(c2s, MethodFrame(0, C.StartOk(client_properties={}, mechanism="PLAIN", response=b"x")))
    add(s2c, MethodFrame(0, C.Tune(channel_max=5, frame_max=4096, heartbeat=0)))
    add(c2s, MethodFrame(0, C.TuneOk(channel_max=5, frame_max=4096, heartbeat=0)))
    add(c2s, MethodFrame(0, C.Open(virtual_host="/")))
    add(s2c, MethodFrame(0, C.OpenOk()))
    for number in (1, 2):
        add(c2s, MethodFrame(number, Ch.Open()))
        add(s2c, MethodFrame(number, Ch.OpenOk()))
    add(c2s, MethodFrame(1, B.Qos(prefetch_count=2, global_=True)))
    add(s2c, MethodFrame(1, B.QosOk()))
    add(c2s, MethodFrame(1, B.Consume(queue="q", consumer_tag="c1", no_wait=True)))
    props = BasicProperties()
    for tag in (1, 2, 3):
        add(s2c, Message(1, B.Deliver(consumer_tag="c1", delivery_tag=tag), props, b"m"))
    add(c2s, MethodFrame(1, B.Ack(delivery_tag=2, multiple=True)))
    add(c2s, MethodFrame(1, B.Reject(delivery_tag=3)))
    add(c2s, MethodFrame(1, B.Get(queue="q")))
    add(s2c, Message(1, B.GetOk(delivery_tag=4), props, b"g"))
    add(c2s, MethodFrame(1, B.Get(queue="q")))
    add(s2c, MethodFrame(1, B.GetEmpty()))
    add(s2c, Message(1, B.Deliver(consumer_tag="ghost", delivery_tag=5), props, b"?"))
    add(s2c, MethodFrame(1, B.Cancel(consumer_tag="ghost2")))
    add(c2s, MethodFrame(2, spec.Confirm.Select()))
    add(s2c, MethodFrame(2, spec.Confirm.SelectOk()))
    rpc = BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id="x1")
    for _ in range(3):
        add(c2s, Message(2, B.Publish(routing_key="rpc"), rpc, b"call"))
    add(s2c, MethodFrame(2, B.Nack(delivery_tag=2, multiple=True)))
    add(s2c, MethodFrame(1, B.Ack(delivery_tag=9)))  # channel 1 is not in confirm mode
    add(c2s, MethodFrame(2, spec.Queue.Declare(queue="never answered")))
    add(c2s, HeartbeatFrame())
    add(s2c, Notice(101.0, info, s2c, NoticeKind.ERROR, 0, 0, "a frame end octet of 0x00"))
    close = C.Close(reply_code=541, reply_text="INTERNAL_ERROR", class_id=99, method_id=1)
    add(c2s, MethodFrame(0, close))
    report = analyze_records(iter(records))  # type: ignore[arg-type]
    out = io.StringIO()
    render_text(report, out, "busy")
    text = out.getvalue()
    assert text.startswith("busy: , 1 AMQP connection\n")
    assert "  server: Fake\n" in text
    assert "  client: unnamed, mechanism PLAIN" in text
    assert "  heartbeat: off; ended: capture ended" in text
    assert "connection closed by client at " in text
    assert "541 INTERNAL_ERROR; caused by unknown method 99/1" in text
    assert (
        "'c1' on channel 1 <- queue 'q': 3 deliveries, most in flight 3 (prefetch 2 (global))"
        in text
    )
    assert "'ghost' on channel 1 <- queue ?: 1 deliveries, no_ack unknown" in text
    assert (
        "'ghost2' on channel 1 <- queue ?: 0 deliveries, no_ack unknown; cancelled by server"
        in text
    )
    # 1 and 2 acked (multiple), 3 rejected: the get's 4 and the unknown consumer's 5 stay
    assert "never acknowledged: channel 1 tag 4 [21] (basic.get), 5 [24] (ghost)" in text
    assert "confirms (channel 2): 3 published, 0 acked, 2 nacked, 1 never confirmed" in text
    assert "    nacked: channel 2 tag 1 [31], 2 [31]" in text
    assert "    never confirmed: channel 2 tag 3 [30]" in text
    assert "queue.declare" not in text  # the connection's close ended the wait
    assert "  unanswered: connection.close on channel 0 at " in text
    assert "  RPC calls: 3, 3 over direct reply-to, 0 answered: none" in text
    assert "    unanswered call at " in text
    assert "went silent first: the server (s2c)" in text
    assert "- malformed data (s2c): a frame end octet of 0x00" in text
    assert "- confirms on channel 1 for publishes made before the capture started" in text
    assert "consumer 'ghost' on channel 1 started before the capture" in text
    assert "consumer 'ghost2' on channel 1 started before the capture" in text
    assert "  protocol violations (up to malformed data (s2c)):" in text
    assert "    s2c at 100.010000 [2]: 403 in connection.start: " in text
    small = analyze_records(iter(records), max_open=2, max_items=1)  # type: ignore[arg-type]
    out = io.StringIO()
    render_text(small, out)
    text = out.getvalue()
    assert "    and 1 more\n" in text  # channels over --max-items
    assert "    - and 4 more\n" in text  # unknowns over --max-items
    assert "- 1 unacknowledged deliveries dropped: the table was full (--max-open)" in text
    assert "- 1 unconfirmed publishes dropped: the table was full (--max-open)" in text


def test_text_of_a_connection_whose_state_the_reader_dropped(tmp_path: Path) -> None:
    import hostile_captures as hostile

    from amqpcodec.capture._limits import CONNECTION_COST

    path = tmp_path / "hello.pcap"
    hostile.header_only_connections(path, 2)
    out = io.StringIO()
    render_text(analyze(path, memory_limit=CONNECTION_COST), out)
    first, second = out.getvalue().split("\n\nconnection #")[1:]
    assert "ended: state dropped by the reader [2]" in first
    assert "checked: up to state dropped by the reader (c2s) at packet 2" in first
    assert "- state dropped by the reader (c2s, packet 2): " in first
    assert "ended: capture ended" in second and "state dropped" not in second
