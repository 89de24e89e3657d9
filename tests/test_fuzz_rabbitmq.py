"""What fuzzing found in RabbitMQ, reproduced against the broker on 127.0.0.1:5672, and a
short ``amqpcodec fuzz`` run against it.

Each finding test documents RabbitMQ 3.10's behaviour: it passes while the broker
behaves so, and when a broker no longer does, it skips with a message saying that the
finding is fixed there (it reports, it does not fail CI). Without a broker the tests
skip, unless ``AMQPCODEC_REQUIRE_RABBITMQ=1`` (CI), which makes them fail.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Iterator

import pytest

from amqpcodec import FrameDecoder, MethodFrame, ProtocolHeader, spec
from amqpcodec import fuzz as amqp_fuzz
from amqpcodec.__main__ import main

pytestmark = pytest.mark.rabbitmq

RABBITMQ = ("127.0.0.1", 5672)
C = spec.Connection


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    """RabbitMQ's version, from its Connection.Start; skips (fails in CI) without one."""
    try:
        with socket.create_connection(RABBITMQ, timeout=2) as sock:
            sock.sendall(ProtocolHeader().encode())
            sock.settimeout(5)
            frames = FrameDecoder(0).feed(sock.recv(65536))
    except OSError:
        if os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ") == "1":
            pytest.fail("AMQPCODEC_REQUIRE_RABBITMQ=1 but nothing listens on 127.0.0.1:5672")
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (bash .ci/start-rabbitmq.sh starts one)")
    start = frames[0].method
    yield str(start.server_properties.get("version", "unknown"))


def login(password: str = "guest", capabilities: dict[str, bool] | None = None) -> bytes:
    properties = {"capabilities": capabilities} if capabilities else {}
    return (
        ProtocolHeader().encode()
        + MethodFrame(
            0, C.StartOk(properties, "PLAIN", b"\0guest\0" + password.encode(), "en_US")
        ).encode()
    )


OPENED = (
    login()
    + MethodFrame(0, C.TuneOk(2047, 131072, 0)).encode()
    + MethodFrame(0, C.Open("/")).encode()
    + MethodFrame(1, spec.Channel.Open()).encode()
)


def fixed_in(version: str, what: str) -> None:
    pytest.skip(f"RabbitMQ {version} no longer {what}: the finding is fixed there")


# ---------------------------------------------------------------------------------------
# Finding 1: an unknown class/method id after the handshake resets the socket


def read_until(sock: socket.socket, decoder: FrameDecoder, name: str) -> list[str]:
    """Method names received until ``name`` arrives (or the socket ends: then "reset"/"eof")."""
    names: list[str] = []
    while name not in names:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return [*names, "reset"]
        if not data:
            return [*names, "eof"]
        names += [f.method.NAME for f in decoder.feed(data) if isinstance(f, MethodFrame)]
    return names


@pytest.mark.parametrize("channel", [0, 1])
def test_an_unknown_method_resets_the_socket_without_close(broker: str, channel: int) -> None:
    unknown = bytes.fromhex(f"01{channel:04x}00000004000b0046ce")  # method 11.70
    with socket.create_connection(RABBITMQ, timeout=5) as sock:
        decoder = FrameDecoder(0)
        sock.sendall(OPENED)
        opened = read_until(sock, decoder, "channel.open-ok")
        assert opened[-1] == "channel.open-ok", opened
        sock.sendall(unknown)
        after = read_until(sock, decoder, "connection.close")
    if "connection.close" in after:
        fixed_in(broker, "resets the socket on an unknown method id")
    assert after in (["reset"], ["eof"]), after  # no Connection.Close (503 or 540 expected)
    # The oracle of amqpcodec fuzz calls it a finding.
    case = amqp_fuzz.Case(OPENED + unknown, "finding", (), len(OPENED) - 13)
    reaction = amqp_fuzz.probe(RABBITMQ, case)
    assert reaction.outcome in ("reset", "eof")
    if reaction.opened:
        verdict = amqp_fuzz.judge(case, reaction)
        assert verdict is not None and "without Connection.Close" in verdict


def test_an_unknown_method_loses_a_channel_open_ok_already_due(broker: str) -> None:
    unknown = bytes.fromhex("01000000000004000b0046ce")
    with socket.create_connection(RABBITMQ, timeout=5) as sock:
        decoder = FrameDecoder(0)
        sock.sendall(OPENED[:-13])
        assert read_until(sock, decoder, "connection.open-ok")[-1] == "connection.open-ok"
        sock.sendall(OPENED[-13:] + unknown)  # Channel.Open, then the unknown method
        after = read_until(sock, decoder, "channel.open-ok")
    if "channel.open-ok" in after or "connection.close" in after:
        fixed_in(broker, "loses the Channel.Open-Ok due before an unknown method")
    assert after in (["reset"], ["eof"]), after


# ---------------------------------------------------------------------------------------
# Finding 2: a frame over the pre-tuning limit right after a refused login resets the
# socket at once, skipping the failed-login delay (RabbitMQ logs {badrecord,none}).


def test_an_oversized_frame_after_a_refused_login_skips_the_delay(broker: str) -> None:
    caps = {"authentication_failure_close": True}
    delayed = socket.create_connection(RABBITMQ, timeout=5)
    crashed = socket.create_connection(RABBITMQ, timeout=5)
    with delayed, crashed:
        delayed.sendall(login("wrong", caps))  # refused: held for the delay, then closed
        crashed.sendall(login("wrong", caps) + bytes.fromhex("0100000000ffff"))
        first = closed_first(delayed, crashed)
    if first is not crashed:
        fixed_in(broker, "skips its failed-login delay after an oversized frame")
    assert first is crashed


def closed_first(*socks: socket.socket) -> socket.socket | None:
    """Which of ``socks`` the broker closes first (reading and dropping what comes)."""
    open_ = list(socks)
    while open_:
        ready, _, _ = select.select(open_, [], [], 10)
        if not ready:
            return None
        for sock in ready:
            try:
                if not sock.recv(65536):
                    return sock
            except ConnectionResetError:
                return sock
    return None


# ---------------------------------------------------------------------------------------
# Found by the RabbitMQ dialect: an infinite float in the headers is a 541


def test_an_infinite_float_header_is_an_internal_error(broker: str) -> None:
    from amqpcodec import BodyFrame, FieldTable, HeaderFrame

    headers = FieldTable()
    headers.set_typed("x", float("inf"), "f")
    publish = (
        MethodFrame(1, spec.Basic.Publish(exchange="amq.topic", routing_key="nowhere")).encode()
        + HeaderFrame(1, 1, spec.BasicProperties(headers=headers)).encode()
        + BodyFrame(1, b"x").encode()
    )
    case = amqp_fuzz.Case(OPENED + publish, "finding", (), len(OPENED))
    reaction = amqp_fuzz.probe(RABBITMQ, case)
    if reaction.reply_code != 541:
        fixed_in(broker, "fails a connection with 541 on an infinite float header")
    assert reaction.outcome == "close" and amqp_fuzz.judge(case, reaction) is None


# ---------------------------------------------------------------------------------------
# A short fuzz run


def test_amqpcodec_fuzz_against_rabbitmq(broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["fuzz", "127.0.0.1:5672", "--examples", "60", "--seed", "7", "--workers", "4"])
    out = capsys.readouterr().out
    assert status in (0, 1), out  # findings are RabbitMQ's (see the tests above)
    assert "60 examples in" in out and "examples/s" in out
    assert "reply codes:" in out and "findings:" in out
    if status == 1:
        assert "input (" in out and "reaction:" in out


def test_the_rabbitmq_dialect_is_accepted_by_rabbitmq(broker: str) -> None:
    from amqpcodec import strategies as amqp_st

    cases = amqp_st.streams(
        "client", accepted_by="rabbitmq", heartbeat=0, client_properties={}
    ).map(lambda s: amqp_fuzz.Case.of(s, "accepted"))
    report = amqp_fuzz.fuzz_broker(examples=40, seed=11, workers=4, cases=cases)
    assert report.examples == 40
    assert report.findings == [] and report.reply_codes == {}, report.summary()
    assert report.disagreements == [], report.summary()
    # The exchanges the streams declared are gone: a passive declare finds none.
    assert report.deleted
    for name in report.deleted[:5]:
        passive = MethodFrame(1, spec.Exchange.Declare(exchange=name, passive=True)).encode()
        reaction = amqp_fuzz.probe(RABBITMQ, amqp_fuzz.Case(OPENED + passive, "check"))
        assert reaction.channel_codes == (404,), (name, reaction)


def test_cleanup_deletes_what_a_case_declared(broker: str) -> None:
    exchange = MethodFrame(1, spec.Exchange.Declare(exchange="amqpcodec-fuzz.c", type="fanout"))
    queue = MethodFrame(1, spec.Queue.Declare(queue="amqpcodec-fuzz.cq"))
    other = MethodFrame(1, spec.Queue.Declare(queue="not-ours.cq", exclusive=True))
    case = amqp_fuzz.Case.of(OPENED + exchange.encode() + queue.encode() + other.encode(), "t")
    assert amqp_fuzz.probe(RABBITMQ, case).outcome == "close-ok"
    amqp_fuzz.cleanup(case.declared)  # "not-ours.cq" is left alone (and exclusive anyway)
    for name, passive in [
        ("amqpcodec-fuzz.c", spec.Exchange.Declare(exchange="amqpcodec-fuzz.c", passive=True)),
        ("amqpcodec-fuzz.cq", spec.Queue.Declare(queue="amqpcodec-fuzz.cq", passive=True)),
    ]:
        check = amqp_fuzz.Case(OPENED + MethodFrame(1, passive).encode(), "check")
        assert amqp_fuzz.probe(RABBITMQ, check).channel_codes == (404,), name
