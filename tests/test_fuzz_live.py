"""``amqpcodec fuzz`` and :mod:`amqpcodec.fuzz` against peers on this machine: fake
brokers that misbehave in one way each, our own broker (``amqpcodec serve``), and
clients served by ``--serve``. Every server here listens on 127.0.0.1, port 0."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import strategies as st

from amqpcodec import (
    Connection,
    FrameDecoder,
    MethodFrame,
    RemoteProtocolError,
    Role,
    spec,
)
from amqpcodec import fuzz as amqp_fuzz
from amqpcodec import strategies as amqp_st
from amqpcodec.__main__ import main
from amqpcodec.events import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
C = spec.Connection
CLOSE_OK = MethodFrame(0, C.CloseOk()).encode()
SERVER_HANDSHAKE = b"".join(
    MethodFrame(0, m).encode()
    for m in (
        C.Start(0, 9, {}, b"PLAIN", b"en_US"),
        C.Tune(2047, 131072, 0),
        C.OpenOk(),
    )
)
LOGIN_OK = (
    b"AMQP\x00\x00\x09\x01"
    + MethodFrame(0, C.StartOk({}, "PLAIN", b"\0guest\0guest", "en_US")).encode()
    + MethodFrame(0, C.TuneOk(2047, 131072, 0)).encode()
    + MethodFrame(0, C.Open("/")).encode()
)


# ---------------------------------------------------------------------------------------
# Fake brokers: each answers every connection in one fixed way


@contextlib.contextmanager
def fake_broker(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A server on 127.0.0.1 (port 0) that runs ``handle`` on each connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    handle(conn)
                    drain(conn, 0.2)  # closing with unread bytes would reset the socket

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join()
        listener.close()


def drain(conn: socket.socket, quiet: float) -> bytes:
    """Everything the peer sends until it is quiet for ``quiet`` seconds or closes."""
    conn.settimeout(quiet)
    got = b""
    with contextlib.suppress(TimeoutError, socket.timeout):
        while more := conn.recv(65536):
            got += more
    conn.settimeout(2)
    return got


def read_some(conn: socket.socket) -> bytes:
    """The client's whole opening (a probe sends all of it at once)."""
    return drain(conn, 0.2)


def resetter(conn: socket.socket) -> None:
    """Completes the handshake, then resets the connection: finding 1's shape."""
    read_some(conn)
    conn.sendall(SERVER_HANDSHAKE)
    drain(conn, 0.3)  # let the probe read the handshake first
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def garbage(conn: socket.socket) -> None:
    read_some(conn)
    conn.sendall(SERVER_HANDSHAKE + b"\x09\x00\x00\x00\x00\x00\x00\xce")


def odd_close(conn: socket.socket) -> None:
    read_some(conn)
    conn.sendall(SERVER_HANDSHAKE + MethodFrame(0, C.Close(999, "odd", 0, 0)).encode())


def lingering_close(conn: socket.socket) -> None:
    """Sends Close 501, then never closes the socket."""
    read_some(conn)
    conn.sendall(SERVER_HANDSHAKE + MethodFrame(0, C.Close(501, "bad", 0, 0)).encode())
    with contextlib.suppress(OSError):
        while conn.recv(65536):
            pass


def polite(conn: socket.socket) -> None:
    """Completes the handshake and answers the client's Close with Close-Ok."""
    server = Connection(Role.SERVER)
    while True:
        data = conn.recv(65536)
        try:
            events = server.receive_data(data)
        except RemoteProtocolError:
            conn.sendall(server.data_to_send())
            continue
        conn.sendall(server.data_to_send())
        if not data or any(isinstance(e, ConnectionClosed) for e in events):
            return


def silent_closer(conn: socket.socket) -> None:
    """Says nothing and closes: what a broker does with a bad handshake."""
    read_some(conn)


def one(data: bytes, kind: str = "test") -> amqp_fuzz.Case:
    return amqp_fuzz.Case(data, kind, (), amqp_st.handshake_end(data))


@pytest.mark.parametrize(
    ("handle", "outcome", "problem"),
    [
        (resetter, "reset", "closed the socket (reset) after the handshake"),
        (garbage, "garbage", "undecodable bytes"),
        (odd_close, "close", "unknown reply code 999"),
        (lingering_close, "close", "kept the socket open"),
        (polite, "close-ok", None),
    ],
)
def test_the_oracle(
    handle: Callable[[socket.socket], None], outcome: str, problem: str | None
) -> None:
    with fake_broker(handle) as port:
        reaction = amqp_fuzz.probe(("127.0.0.1", port), one(LOGIN_OK), close_timeout=0.5)
    assert reaction.outcome == outcome
    verdict = amqp_fuzz.judge(one(LOGIN_OK), reaction)
    if problem is None:
        assert verdict is None
        assert reaction.opened and reaction.socket_closed is False
    else:
        assert verdict is not None and problem in verdict
    assert outcome in str(reaction)


def test_a_silent_close_is_fine_only_before_the_handshake() -> None:
    with fake_broker(silent_closer) as port:
        bad_login = amqp_fuzz.Case(LOGIN_OK[:20], "test", (amqp_st.Mutation("truncate", 20),), 0)
        reaction = amqp_fuzz.probe(("127.0.0.1", port), bad_login)
        assert reaction.outcome == "eof" and not reaction.opened
        assert amqp_fuzz.judge(bad_login, reaction) is None
        # A whole, valid login deserved Open-Ok or a Close.
        whole = one(LOGIN_OK)
        reaction = amqp_fuzz.probe(("127.0.0.1", port), whole)
        verdict = amqp_fuzz.judge(whole, reaction)
        assert verdict is not None and "without Open-Ok" in verdict


def test_a_broker_that_keeps_silent_keeps_the_connection() -> None:
    def mute(conn: socket.socket) -> None:
        read_some(conn)
        conn.recv(65536)

    with fake_broker(mute) as port:
        reaction = amqp_fuzz.probe(("127.0.0.1", port), one(LOGIN_OK + b"\x01\x00"), timeout=0.2)
    assert reaction.outcome == "kept" and not reaction.socket_closed
    assert amqp_fuzz.judge(one(b""), reaction) is None
    assert "socket still open" in str(reaction)


def test_the_close_of_the_peer_is_answered_at_a_frame_boundary() -> None:
    seen: list[bytes] = []

    def closer(conn: socket.socket) -> None:
        read_some(conn)
        conn.sendall(SERVER_HANDSHAKE + MethodFrame(0, C.Close(504, "no", 20, 10)).encode())
        conn.settimeout(1)
        with contextlib.suppress(OSError):
            seen.append(conn.recv(65536))

    with fake_broker(closer) as port:
        reaction = amqp_fuzz.probe(("127.0.0.1", port), one(LOGIN_OK))
    assert reaction.reply_code == 504 and reaction.class_id == 20
    assert "504 'no' (class 20, method 10)" in str(reaction)
    frames = FrameDecoder(0).feed(b"".join(seen))
    assert MethodFrame(0, C.CloseOk()) in frames


# ---------------------------------------------------------------------------------------
# The model: what RabbitMQ's rules expected against what came


def reaction(**fields: object) -> amqp_fuzz.Reaction:
    base: dict[str, object] = {"outcome": "close-ok", "opened": True}
    base.update(fields)
    return amqp_fuzz.Reaction(**base)  # type: ignore[arg-type]


def judged_case(*refusals: amqp_st.Refusal) -> amqp_fuzz.Case:
    return amqp_fuzz.Case(b"x", "methods", (), 1, refusals, True)


def test_model_disagreements() -> None:
    model = amqp_fuzz._model
    hard = amqp_st.Refusal(540, "immediate", True)
    soft = amqp_st.Refusal(404, "no queue", False)
    assert model(judged_case(), reaction()) is None
    assert "expected acceptance" in str(
        model(judged_case(), reaction(outcome="close", reply_code=504))
    )
    assert "Channel.Close 404 'gone'" in str(
        model(judged_case(), reaction(channel_codes=(404,), channel_texts=("gone",)))
    )
    assert model(judged_case(hard), reaction(outcome="close", reply_code=540)) is None
    assert model(judged_case(soft), reaction(channel_codes=(404,))) is None
    assert "expected 404" in str(model(judged_case(soft), reaction()))
    assert model(judged_case(soft, hard), reaction(outcome="close", reply_code=540)) is None
    # Mutated or undecodable: not judged.
    mutated = amqp_fuzz.Case(b"x", "mutated", (amqp_st.Mutation("byte", 0),), 0, (soft,), True)
    assert model(mutated, reaction()) is None
    assert model(judged_case(soft), reaction(outcome="garbage")) is None


def test_a_report_summarises() -> None:
    report = amqp_fuzz.FuzzReport("here", seed=3)
    case = judged_case(amqp_st.Refusal(404, "no queue"))
    report.add(case, reaction(outcome="close", reply_code=501, channel_codes=(404,)), None, None)
    report.add(case, reaction(outcome="reset"), "it broke", "expected 404, got reset")
    report.seconds = 2.0
    text = report.summary(max_findings=0)
    assert "2 examples in 2.0 s (1.0 examples/s)" in text and "seed 3" in text
    assert "501 connection x1" in text and "404 channel x1" in text
    assert "findings: 1" in text and "... 1 more" in text
    assert "model disagreements" in text and "expected 404, got reset" in text
    assert "it broke" in str(report.findings[0]) and report.findings[0].hex == "78"
    assert amqp_fuzz.FuzzReport("x").examples_per_second == 0.0


def test_cases_from_drawn_values() -> None:
    raw = amqp_fuzz.Case.of(LOGIN_OK, "raw")
    assert raw.handshake_end == len(LOGIN_OK) and raw.handshake_intact
    assert not raw.judged
    early = amqp_fuzz.Case(LOGIN_OK, "m", (amqp_st.Mutation("byte", 3),), len(LOGIN_OK))
    assert not early.handshake_intact
    # Every declaration counts for the clean-up, even after a refusal elsewhere.
    declares = b"".join(
        MethodFrame(channel, method).encode()
        for channel, method in [
            (1, spec.Channel.Open()),
            (1, spec.Basic.Qos(prefetch_size=1)),  # a connection refusal
            (2, spec.Exchange.Declare(exchange="x", type="direct")),
            (2, spec.Queue.Declare(queue="q")),
            (2, spec.Queue.Declare(queue="p", passive=True)),
        ]
    )
    case = amqp_fuzz.Case.of(LOGIN_OK + declares + b"\x01\x00", "raw")
    assert case.declared == (("exchange", "x"), ("queue", "q"))


def test_pieces_and_closes() -> None:
    close = MethodFrame(0, C.Close(200, "", 0, 0)).encode()
    pieces, aligned = amqp_fuzz._pieces(LOGIN_OK + b"\x01\x02")
    assert (
        aligned is False
        and pieces[-1] == b"\x01\x02"
        and b"".join(pieces) == LOGIN_OK + b"\x01\x02"
    )
    assert amqp_fuzz._pieces(LOGIN_OK)[1] is True
    assert amqp_fuzz._closes(LOGIN_OK + close) and not amqp_fuzz._closes(LOGIN_OK)


# ---------------------------------------------------------------------------------------
# Whole runs


def test_fuzz_broker_against_a_polite_fake_finds_nothing() -> None:
    with fake_broker(polite) as port:
        cases = st.sampled_from([LOGIN_OK]).map(lambda d: one(d, "fixed"))
        report = amqp_fuzz.fuzz_broker(port=port, examples=3, workers=2, seed=1, cases=cases)
    assert report.examples >= 1 and report.findings == [] and report.outcomes["close-ok"] >= 1


def test_fuzz_broker_stops_when_the_target_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    # The target passes the reachability check, then nothing listens any more.
    monkeypatch.setattr(amqp_fuzz, "_reachable", lambda address, connect_timeout: None)
    cases = st.integers(0, 10**6).map(lambda n: one(LOGIN_OK, f"case {n}"))
    report = amqp_fuzz.fuzz_broker(port=free_port(), examples=50, workers=2, cases=cases)
    assert "cannot connect" in report.stopped and report.examples == 0


def test_fuzz_broker_refuses_what_it_cannot_fuzz() -> None:
    with pytest.raises(amqp_fuzz.TargetUnusable, match="not this machine"):
        amqp_fuzz.fuzz_broker("192.0.2.1", 5672)
    with pytest.raises(amqp_fuzz.TargetUnusable, match="not this machine"):
        amqp_fuzz.fuzz_broker("example.invalid", 5672)
    with pytest.raises(ValueError, match="examples"):
        amqp_fuzz.fuzz_broker(examples=0)
    with pytest.raises(ValueError, match="workers"):
        amqp_fuzz.fuzz_broker(workers=65)
    with (
        fake_broker(silent_closer) as port,
        pytest.raises(amqp_fuzz.TargetUnusable, match="refused the login"),
    ):
        amqp_fuzz.fuzz_broker(port=port, examples=1)
    with fake_broker(silent_closer) as port, pytest.raises(amqp_fuzz.TargetUnusable):
        amqp_fuzz.cleanup([("exchange", "amqpcodec-fuzz.x")], port=port)
    with (
        fake_broker(garbage) as port,
        pytest.raises(amqp_fuzz.TargetUnusable, match="login failed"),
    ):
        amqp_fuzz.fuzz_broker(port=port, examples=1)


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def test_the_command_line_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    nothing = free_port()
    assert main(["fuzz", f"127.0.0.1:{nothing}", "--examples", "1"]) == 2
    assert "cannot connect" in capsys.readouterr().err
    assert main(["fuzz", "192.0.2.1:5672"]) == 2
    assert "not this machine" in capsys.readouterr().err
    assert main(["fuzz", "--replay", "zz"]) == 2
    assert "not hexadecimal" in capsys.readouterr().err
    assert main(["fuzz", "--workers", "65"]) == 2
    with pytest.raises(SystemExit):
        main(["fuzz", "--examples", "0"])
    with fake_broker(resetter) as port:
        assert main(["fuzz", f"127.0.0.1:{port}", "--replay", LOGIN_OK.hex()]) == 1
        assert "finding: the broker closed the socket (reset)" in capsys.readouterr().out
    with fake_broker(polite) as port:
        assert main(["fuzz", f"127.0.0.1:{port}", "--replay", LOGIN_OK.hex()]) == 0
        assert "no finding" in capsys.readouterr().out


def test_the_command_needs_hypothesis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "amqpcodec.fuzz", None)
    assert main(["fuzz", "--examples", "1"]) == 2
    assert "hypothesis extra" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Our own broker is the best-behaved target we have


@contextlib.contextmanager
def amqpcodec_serve() -> Iterator[int]:
    """``amqpcodec serve --port 0`` in a subprocess; yields its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "amqpcodec", "serve", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert found, line
        # Keep reading its standard error, so that a full pipe never blocks it.
        threading.Thread(target=process.stderr.read, daemon=True).start()
        yield int(found.group(1))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_fuzz_against_amqpcodec_serve_finds_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with amqpcodec_serve() as port:
        status = main(
            ["fuzz", f"127.0.0.1:{port}", "--examples", "150", "--seed", "1", "--workers", "4"]
        )
    out = capsys.readouterr().out
    assert "150 examples in" in out, out
    assert status == 0, out
    assert "findings: 0" in out
    assert "541" not in out  # an internal error would be the broker's own bug


# ---------------------------------------------------------------------------------------
# Fuzzing a client: --serve


def well_behaved_client(port: int, connections: int, stop: threading.Event) -> None:
    """Connects ``connections`` times with amqpcodec's client role; on a protocol
    error it sends Connection.Close (when open) and waits for the answer."""
    for _ in range(connections):
        if stop.is_set():
            return
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 3) as sock:
            sock.settimeout(3)
            client = Connection(Role.CLIENT, heartbeat=0)
            sock.sendall(client.data_to_send())
            while True:
                data = sock.recv(65536)
                try:
                    events = client.receive_data(data)
                except RemoteProtocolError:
                    close = client.data_to_send()  # Connection.Close, if it was open
                    if close:
                        sock.sendall(close)
                        while (answer := sock.recv(65536)) and CLOSE_OK not in answer:
                            pass
                    break
                sock.sendall(client.data_to_send())
                if not data or any(isinstance(e, ConnectionClosed) for e in events):
                    break


def rude_client(port: int, connections: int, stop: threading.Event) -> None:
    """Reads the handshake, sends Open, then hangs up without a word."""
    for _ in range(connections):
        if stop.is_set():
            return
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 3) as sock:
            sock.sendall(LOGIN_OK)
            sock.settimeout(1)
            sock.recv(65536)


@pytest.mark.parametrize(
    ("client", "expect_findings"), [(well_behaved_client, False), (rude_client, True)]
)
def test_fuzz_client(
    client: Callable[[int, int, threading.Event], None], expect_findings: bool
) -> None:
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def ready(host: str, port: int) -> None:
        assert host == "127.0.0.1"
        for _ in range(2):
            thread = threading.Thread(target=client, args=(port, 15, stop), daemon=True)
            thread.start()
            threads.append(thread)

    report = amqp_fuzz.fuzz_client(
        examples=20, workers=2, seed=4, timeout=0.3, close_timeout=1.0, ready=ready
    )
    stop.set()
    for thread in threads:
        thread.join()
    assert report.examples == 20
    assert bool(report.findings) is expect_findings, report.summary()


def test_fuzz_client_stops_when_no_client_comes(capsys: pytest.CaptureFixture[str]) -> None:
    report = amqp_fuzz.fuzz_client(examples=3, accept_timeout=0.1)
    assert report.examples == 0 and "no client connected" in report.stopped
    assert main(["fuzz", "--serve", "0", "--examples", "2", "--accept-timeout", "0.1"]) == 2
    captured = capsys.readouterr()
    assert "serving on 127.0.0.1:" in captured.err and "no client connected" in captured.err


def test_replay_to_a_client(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    stop = threading.Event()
    data = SERVER_HANDSHAKE + b"\x09\x00\x00\x00\x00\x00\x00\xce"
    thread = threading.Thread(target=lambda: (stop.wait(0.3), rude_client(port, 1, stop)))
    thread.start()
    status = main(["fuzz", "--serve", str(port), "--replay", data.hex(), "--timeout", "0.5"])
    thread.join()
    out = capsys.readouterr().out
    assert status in (0, 1) and "reaction:" in out
    with pytest.raises(amqp_fuzz.TargetUnusable, match="no client"):
        amqp_fuzz.replay(b"", port=free_port(), serve=True, accept_timeout=0.1)
