"""The decoding relay: bytes pass unchanged, frames are decoded (and re-encoded with
check), bad frames are reported while the bytes still flow; in front of the in-memory
broker, in front of RabbitMQ, and as the ``amqpcodec proxy`` command."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from amqp_client import Client

import amqpcodec
from amqpcodec import MethodFrame, spec
from amqpcodec import proxy as proxy_module
from amqpcodec.broker import Broker
from amqpcodec.capture import Direction, FrameRecord, MessageRecord, Notice, NoticeKind, Record
from amqpcodec.proxy import Proxy

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# The commands run the amqpcodec these tests import (a checkout, or an installed wheel),
# from a directory without an amqpcodec/ of its own.
_ENV = {**os.environ, "PYTHONPATH": str(Path(amqpcodec.__file__).resolve().parent.parent)}
RABBITMQ = ("127.0.0.1", 5672)


@pytest.fixture
def broker() -> Iterator[Broker]:
    with Broker() as running:
        yield running


def _listening(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbitmq() -> tuple[str, int]:
    """RabbitMQ's address; skips without one, fails with AMQPCODEC_REQUIRE_RABBITMQ=1."""
    if not _listening(RABBITMQ):
        if os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ") == "1":
            pytest.fail("AMQPCODEC_REQUIRE_RABBITMQ=1 but nothing listens on 127.0.0.1:5672")
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    return RABBITMQ


def session(port: int) -> None:
    """A short session: declare, confirm, publish 3 sizes, get them back, close."""
    with Client(port, frame_max=4096) as client:
        ch = client.channel()
        queue = client.declare(ch, exclusive=True)
        client.call(ch, spec.Confirm.Select())
        props = spec.BasicProperties(content_type="text/plain", headers={"n": 1, "t": {"x": [1]}})
        for size in (0, 10, 10_000):
            client.publish(ch, "", queue, b"b" * size, props)
        for size in (0, 10, 10_000):
            got = client.get(ch, queue)
            assert got is not None and got.body == b"b" * size and got.properties == props


def test_relays_and_checks_every_frame(broker: Broker) -> None:
    records: list[Record] = []
    with Proxy(("127.0.0.1", broker.port), check=True, on_record=records.append) as proxy:
        session(proxy.port)
    stats = proxy.stats
    assert stats.connections == 1
    assert stats.frames == stats.checked == len(records) > 20
    assert (stats.mismatches, stats.errors) == (0, 0)
    assert all(isinstance(r, FrameRecord) for r in records)
    methods = [
        r.frame.method
        for r in records
        if isinstance(r, FrameRecord) and isinstance(r.frame, MethodFrame)
    ]
    assert any(isinstance(m, spec.Basic.Publish) for m in methods)
    assert any(isinstance(m, spec.Basic.GetOk) for m in methods)
    # The offsets and sizes tile each direction's stream.
    for direction in (Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT):
        frames = [r for r in records if isinstance(r, FrameRecord) and r.direction is direction]
        assert frames[0].offset == 0
        for before, after in itertools.pairwise(frames):
            assert before.offset + before.size == after.offset
        assert frames[-1].offset + frames[-1].size == stats.bytes_relayed[direction]


def test_messages_mode_assembles(broker: Broker) -> None:
    records: list[Record] = []
    with Proxy(("127.0.0.1", broker.port), messages=True, on_record=records.append) as proxy:
        session(proxy.port)
    messages = [r for r in records if isinstance(r, MessageRecord)]
    assert [len(m.message.body) for m in messages] == [0, 10, 10_000, 0, 10, 10_000]
    assert {m.direction for m in messages} == {
        Direction.CLIENT_TO_SERVER,
        Direction.SERVER_TO_CLIENT,
    }


def _raw_session(proxy: Proxy, data: bytes) -> bytes:
    """Send raw bytes through the proxy, half-close, return what came back."""
    received = b""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while chunk := sock.recv(65536):
                received += chunk
        except OSError:  # the proxy hung up first (no upstream)
            pass
    return received


class Upstream:
    """A TCP server that records what it receives and answers nothing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""

    def accept_all(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            while chunk := conn.recv(65536):
                self.received += chunk


def test_undecodable_frames_are_reported_and_still_flow() -> None:
    import threading

    upstream = Upstream()
    thread = threading.Thread(target=upstream.accept_all)
    thread.start()
    records: list[Record] = []
    good = MethodFrame(1, spec.Basic.Ack(5)).encode()
    unknown_method = b"\x01\x00\x01\x00\x00\x00\x04\x00\x63\x00\x01\xce"  # class 99
    oversized = b"\x01\x00\x01\x00\x00\x40\x00" + b"z" * 0x4000 + b"\xce"  # 16 KiB > 8 KiB limit
    lost_sync = b"\x01\x00\x01\x00\x00\x00\x01\x00\x00"  # end octet missing
    data = b"AMQP\x00\x00\x09\x01" + good + unknown_method + oversized + good + lost_sync + good
    with Proxy(
        ("127.0.0.1", upstream.port), max_frame_size=8192, on_record=records.append
    ) as proxy:
        _raw_session(proxy, data)
        thread.join(10)
    upstream.listener.close()
    assert upstream.received == data  # every byte went through, unchanged
    kinds = [
        (type(r).__name__, r.kind if isinstance(r, Notice) else None)
        for r in records
        if r.direction is Direction.CLIENT_TO_SERVER
    ]
    assert kinds == [
        ("FrameRecord", None),  # protocol header
        ("FrameRecord", None),
        ("Notice", NoticeKind.ERROR),  # unknown method: skipped
        ("Notice", NoticeKind.ERROR),  # over the limit: skipped unread
        ("FrameRecord", None),
        ("Notice", NoticeKind.ERROR),  # no frame end: decoding stops
    ]
    notices = [r for r in records if isinstance(r, Notice)]
    assert "frame skipped" in notices[0].message
    assert "over the limit of 8192; skipped" in notices[1].message
    assert notices[1].offset == 8 + 2 * len(good) - len(good) + len(unknown_method)
    assert "not decoding this direction any further" in notices[2].message
    assert proxy.stats.errors == 3


def test_check_reports_a_mismatch(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    real = proxy_module.decode_frame

    def lossy(data: bytearray, offset: int = 0):  # type: ignore[no-untyped-def]
        result = real(data, offset)
        if result is not None and isinstance(result[0], MethodFrame):
            method = result[0].method
            if isinstance(method, spec.Queue.Declare):
                method.queue = method.queue + "!"  # as if the codec lost a detail
        return result

    monkeypatch.setattr(proxy_module, "decode_frame", lossy)
    records: list[Record] = []
    proxy = Proxy(("127.0.0.1", broker.port), check=True, on_record=records.append)
    with proxy, Client(proxy.port) as client:
        client.declare(client.channel(), "named")
    assert proxy.stats.mismatches == 1
    mismatch = proxy.mismatches[0]
    assert mismatch.direction is Direction.CLIENT_TO_SERVER
    assert mismatch.encoded[mismatch.first_difference :].startswith(b"!") or len(
        mismatch.encoded
    ) != len(mismatch.received)
    notice = next(r for r in records if isinstance(r, Notice))
    assert notice.message.startswith("check: the frame at offset")


def test_truncated_stream_and_unreachable_upstream() -> None:
    import threading

    upstream = Upstream()
    thread = threading.Thread(target=upstream.accept_all)
    thread.start()
    records: list[Record] = []
    with Proxy(("127.0.0.1", upstream.port), on_record=records.append) as proxy:
        _raw_session(proxy, b"AMQP\x00\x00\x09\x01\x01\x00\x01\x00\x00")
        thread.join(10)
    upstream.listener.close()
    truncated = [r for r in records if isinstance(r, Notice)]
    assert [(r.kind, r.direction, r.size) for r in truncated] == [
        (NoticeKind.TRUNCATED, Direction.CLIENT_TO_SERVER, 5)
    ]
    records.clear()
    with socket.socket() as bound:  # bound, not listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        with Proxy(bound.getsockname(), on_record=records.append) as proxy:
            assert _raw_session(proxy, b"AMQP\x00\x00\x09\x01") == b""
    assert proxy.stats.errors == 1 and "cannot connect to the upstream" in records[0].message


def test_in_front_of_rabbitmq(rabbitmq: tuple[str, int]) -> None:
    pika = pytest.importorskip("pika")
    with Proxy(rabbitmq, check=True) as proxy:
        parameters = pika.ConnectionParameters("127.0.0.1", proxy.port, connection_attempts=1)
        connection = pika.BlockingConnection(parameters)
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.confirm_delivery()
        for size in (0, 5000, 300_000):
            channel.basic_publish(
                "", queue, b"r" * size, pika.BasicProperties(headers={"a": [1, {"b": True}]})
            )
        for size in (0, 5000, 300_000):
            _method, _, body = channel.basic_get(queue, auto_ack=True)
            assert len(body) == size
        connection.close()
    assert proxy.stats.frames > 30
    assert (proxy.stats.checked, proxy.stats.mismatches, proxy.stats.errors) == (
        proxy.stats.frames,
        0,
        0,
    )


# -- the commands --------------------------------------------------------------------


def _start(*argv: str) -> tuple[subprocess.Popen[str], int]:
    env = _ENV
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpcodec", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=HERE,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "listening on 127.0.0.1:" in line, line
    port = int(line.split("listening on 127.0.0.1:")[1].split()[0].rstrip(","))
    return process, port


def _stop(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_serve_and_proxy_commands() -> None:
    server, server_port = _start("serve", "--port", "0", "--user", "ann:pw")
    try:
        proxy, proxy_port = _start(
            "proxy", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{server_port}", "--check"
        )
        try:
            with Client(proxy_port, username="ann", password="pw") as client:
                ch = client.channel()
                queue = client.declare(ch)
                client.publish(ch, "", queue, b"via the proxy")
                assert client.get(ch, queue).body == b"via the proxy"
        finally:
            status, out, err = _stop(proxy)
        assert status == 0, err
        lines = out.splitlines()
        assert lines[0].startswith("# connection #0: client 127.0.0.1:")
        assert "C→S       Protocol header AMQP 0-9-1" in lines[1] or "C->S" in lines[1]
        assert any("Basic.Publish(exchange='', routing_key='amq.gen-" in line for line in lines)
        assert "0 mismatches, 0 errors" in err
        # A client still connected when the broker stops gets Connection.Close 320.
        client = Client(server_port, username="ann", password="pw")
    finally:
        status, _, _ = _stop(server)
    assert status == 0
    event = client.closed()
    assert event.reply_code == 320
    client.sock.close()


def test_proxy_command_json_and_messages(broker: Broker) -> None:
    proxy, port = _start(
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        f"127.0.0.1:{broker.port}",
        "--json",
        "--messages",
    )
    try:
        session(port)
    finally:
        status, out, err = _stop(proxy)
    assert status == 0, err
    objects = [json.loads(line) for line in out.splitlines()]
    messages = [o for o in objects if o["type"] == "message"]
    assert [m["body_size"] for m in messages] == [0, 10, 10_000, 0, 10, 10_000]
    assert messages[0]["method"] == "basic.publish" and messages[3]["method"] == "basic.get-ok"


def test_command_line_errors() -> None:
    env = _ENV
    for argv in (
        ["proxy", "--listen", "nonsense", "--upstream", "127.0.0.1:1"],
        ["proxy", "--listen", "127.0.0.1:99999", "--upstream", "127.0.0.1:1"],
        ["serve", "--user", "no-colon"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "amqpcodec", *argv],
            env=env,
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "error" in done.stderr
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        for argv in (
            ["serve", "--port", str(port)],
            ["proxy", "--listen", f"127.0.0.1:{port}", "--upstream", "127.0.0.1:1"],
        ):
            done = subprocess.run(
                [sys.executable, "-m", "amqpcodec", *argv],
                env=env,
                cwd=HERE,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2 and "cannot listen" in done.stderr


# -- the commands in this process (so that coverage sees them) -------------------------


def _in_process(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, argv: list[str], work: object
) -> int:
    """Run ``amqpcodec ARGV`` here; once it listens, ``work(port)`` runs in a thread,
    then SIGINT stops the command. Returns its exit status."""
    import threading

    from amqpcodec.__main__ import main

    started: list[object] = []
    original = getattr(module, name)

    class Recorded(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(module, name, Recorded)
    failures: list[BaseException] = []

    def client() -> None:
        try:
            while not started or not started[0].port:  # type: ignore[attr-defined]
                threading.Event().wait(0.01)
            work(started[0].port)  # type: ignore[attr-defined, operator]
        except BaseException as exc:
            failures.append(exc)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=client)
    thread.start()
    status = main(argv)
    thread.join()
    if failures:
        raise failures[0]
    return status


def test_serve_command_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from amqpcodec.broker import _command

    def work(port: int) -> None:
        with Client(port, username="u", password="p") as client:
            assert (client.opened.frame_max, client.opened.heartbeat) == (4096, 5)
            client.declare(client.channel(), "here")

    argv = ["serve", "--port", "0", "--user", "u:p", "--frame-max", "4096", "--heartbeat", "5"]
    status = _in_process(monkeypatch, _command, "Broker", argv, work)
    assert status == 0
    assert "amqpcodec serve: listening on 127.0.0.1:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "output",
    [
        [],
        ["--json", "--messages"],
        ["--quiet"],
        ["--method", "basic.get*", "--direction", "s2c", "--channel", "1", "--connection", "0"],
        ["--json", "--show-credentials", "--method", "connection.start-ok"],
    ],
)
def test_proxy_command_here(
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    output: list[str],
) -> None:
    argv = ["proxy", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{broker.port}", "--check"]
    status = _in_process(monkeypatch, proxy_module, "Proxy", argv + output, session)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "0 mismatches, 0 errors" in err
    if not output:
        assert "Basic.GetOk(delivery_tag=1" in out
    elif output[:2] == ["--json", "--messages"]:
        assert sum(json.loads(line)["type"] == "message" for line in out.splitlines()) == 6
    elif output[0] == "--quiet":
        assert out == ""
    elif output[0] == "--method":  # the filters of decode
        lines = [line for line in out.splitlines() if not line.startswith("#")]
        assert len(lines) == 3 and all("S→C ch1   Basic.GetOk(" in line for line in lines)
    else:
        (start_ok,) = [json.loads(line) for line in out.splitlines()]
        assert "guest" in json.dumps(start_ok["arguments"]["response"])  # not redacted


def test_proxy_command_reports_findings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream = Upstream()
    import threading

    accept = threading.Thread(target=upstream.accept_all)
    accept.start()

    def work(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01\x01\x00\x01\x00\x00\x00\x04\x00\x63\x00\x01\xce")
        accept.join(10)

    argv = [
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        f"127.0.0.1:{upstream.port}",
        "--quiet",
    ]
    status = _in_process(monkeypatch, proxy_module, "Proxy", argv, work)
    upstream.listener.close()
    out, err = capsys.readouterr()
    assert status == 1
    assert "!! " in out and "frame skipped" in out  # findings are printed even when quiet
    assert "1 errors" in err


def test_readme_commands(broker: Broker) -> None:
    """The serve and proxy command lines in the README parse and run (on free ports)."""
    import re
    import shlex

    from amqpcodec.__main__ import _parser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r"^amqpcodec (?:serve|proxy) .*$", readme, flags=re.MULTILINE)
    assert {line.split()[1] for line in lines} == {"serve", "proxy"}
    for line in lines:
        argv = shlex.split(line)[1:]
        _parser().parse_args(argv)
        if argv[0] == "serve":
            argv[argv.index("--port") + 1] = "0"
        else:
            argv[argv.index("--listen") + 1] = "127.0.0.1:0"
            argv[argv.index("--upstream") + 1] = f"127.0.0.1:{broker.port}"
        process, port = _start(*argv)
        with Client(port, open=False) as client:
            client.sock.sendall(b"")  # it accepts connections
        status, _, err = _stop(process)
        assert status == 0, err


def test_each_direction_holds_at_most_one_frame() -> None:
    from amqpcodec import BodyFrame
    from amqpcodec.capture import ConnectionInfo

    records: list[Record] = []
    proxy = Proxy(("127.0.0.1", 1), max_frame_size=8192, on_record=records.append)
    c2s = proxy_module._Decoding(proxy, ConnectionInfo(0), Direction.CLIENT_TO_SERVER)
    s2c = proxy_module._Decoding(proxy, ConnectionInfo(0), Direction.SERVER_TO_CLIENT)
    c2s.peer, s2c.peer = s2c, c2s
    c2s.feed(b"AMQP\x00\x00\x09\x01")
    # A body frame that says it is 50 MB: reported at once, then passed over unbuffered.
    c2s.feed(b"\x03\x00\x01" + (50_000_000).to_bytes(4, "big"))
    peak = 0
    for _ in range(700):
        c2s.feed(b"z" * 65536)
        peak = max(peak, len(c2s.buffer))
    assert peak == 0 and c2s.skip == 50_000_008 - 7 - 700 * 65536  # its header was read
    c2s.feed(b"z" * c2s.skip)
    # Tune-Ok sets the limit for both directions: frame_max plus RabbitMQ's 8 bytes.
    c2s.feed(MethodFrame(0, spec.Connection.TuneOk(0, 4096, 0)).encode())
    assert c2s.limit == s2c.limit == 4096 + 8
    fits = BodyFrame(1, b"y" * 4096).encode()  # frame_max + 8 bytes in all
    too_big = BodyFrame(1, b"y" * 4097).encode()
    assert len(fits) == 4104 and len(too_big) == 4105
    s2c.feed(fits[:100])
    assert len(s2c.buffer) == 100  # waiting for the rest of a frame within the limit
    s2c.feed(fits[100:] + too_big)
    kinds = [type(r).__name__ for r in records]
    assert kinds == ["FrameRecord", "Notice", "FrameRecord", "FrameRecord", "Notice"]
    assert "over the limit of 4104" in records[-1].message  # type: ignore[union-attr]
    assert proxy.stats.errors == 2


def test_an_unknown_frame_type_stops_decoding_at_once() -> None:
    from amqpcodec.capture import ConnectionInfo

    records: list[Record] = []
    proxy = Proxy(("127.0.0.1", 1), on_record=records.append)
    c2s = proxy_module._Decoding(proxy, ConnectionInfo(0), Direction.CLIENT_TO_SERVER)
    c2s.feed(b"AMQP\x00\x00\x09\x01" + b"zzzzzzzzzz")
    c2s.feed(MethodFrame(1, spec.Basic.Ack(1)).encode())  # not looked at any more
    assert c2s.stopped and c2s.buffer == b""
    assert [type(r).__name__ for r in records] == ["FrameRecord", "Notice"]
    assert "unknown frame type 122 at offset 8" in records[1].message  # type: ignore[union-attr]


def test_proxy_lifecycle(broker: Broker) -> None:
    import asyncio

    async def main() -> None:
        async with Proxy(("127.0.0.1", broker.port), check=True) as proxy:
            with pytest.raises(RuntimeError):
                await proxy.start()
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"AMQP\x00\x00\x09\x01")
            assert (await reader.read(1)) == b"\x01"  # Connection.Start, through the proxy
            writer.close()
        await proxy.stop()  # stopped already
        task = asyncio.ensure_future(Proxy(("127.0.0.1", broker.port)).serve_forever())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    proxy = Proxy(("127.0.0.1", broker.port))
    proxy.stop_in_thread()  # not running
    with proxy:
        with pytest.raises(RuntimeError):
            proxy.start_in_thread()
        with pytest.raises(OSError):
            Proxy(("127.0.0.1", 1), ("127.0.0.1", proxy.port)).start_in_thread()


def test_messages_mode_reports_content_out_of_order() -> None:
    from amqpcodec import BodyFrame
    from amqpcodec.capture import ConnectionInfo

    records: list[Record] = []
    proxy = Proxy(("127.0.0.1", 1), messages=True, on_record=records.append)
    c2s = proxy_module._Decoding(proxy, ConnectionInfo(0), Direction.CLIENT_TO_SERVER)
    c2s.feed(b"AMQP\x00\x00\x09\x01" + BodyFrame(1, b"orphan").encode())
    c2s.feed(MethodFrame(1, spec.Basic.Ack(1)).encode())
    assert [type(r).__name__ for r in records] == ["FrameRecord", "Notice", "FrameRecord"]
    assert "content out of order" in records[1].message  # type: ignore[union-attr]


def test_first_difference() -> None:
    from amqpcodec.proxy import Mismatch

    assert Mismatch(0, Direction.CLIENT_TO_SERVER, 0, b"abc", b"abd").first_difference == 2
    assert Mismatch(0, Direction.CLIENT_TO_SERVER, 0, b"abc", b"abcd").first_difference == 3


def test_serve_refuses_settings_the_connection_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    from amqpcodec.__main__ import main

    assert main(["serve", "--port", "0", "--frame-max", "100"]) == 2
    assert "frame_max 100 is below" in capsys.readouterr().err
