"""The client bugs the interop suite ran into (the README's interop findings), each reproduced.

Each test asserts the client's wrong behaviour, read with amqpcodec: when a client release
fixes one, its test fails and the README's finding needs updating. The wire bytes a client
wrote are decoded by ``amqpcodec``'s own table reader, so the finding is about the bytes, not
about how the client reads them back.
"""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from toolchains import NODE_PATH, require, tool

from amqpcodec._wire import decode_table, encode_table
from amqpcodec.broker import Broker


def ruby_table_bytes(expression: str) -> bytes:
    """The field table Bunny's amq-protocol writes for a Ruby Hash expression."""
    ruby = tool("ruby")
    script = (
        'require "bunny"; require "bigdecimal"; '
        f"print AMQ::Protocol::Table.encode({expression}).unpack1('H*')"
    )
    done = subprocess.run([ruby, "-e", script], capture_output=True, text=True, check=False)
    if done.returncode != 0 and "cannot load such file" in done.stderr:
        require("Bunny is not installed (Debian ruby-bunny)")
    assert done.returncode == 0, done.stderr
    return bytes.fromhex(done.stdout)


@pytest.mark.parametrize(
    ("written", "arrives"),
    [
        ('BigDecimal("3.14")', Decimal("3")),  # the fraction is dropped
        ('BigDecimal("0.0314")', Decimal("0.00")),  # scale 2, value 0
        ('BigDecimal("12")', Decimal("12")),  # whole numbers are right
    ],
)
def test_amq_protocol_writes_a_decimal_with_a_fraction_wrongly(
    written: str, arrives: Decimal
) -> None:
    data = ruby_table_bytes(f'{{"d" => {written}}}')
    table, end = decode_table(data, 0, len(data))
    assert end == len(data)
    assert table["d"] == arrives and str(table["d"]) == str(arrives)


def test_amqplib_reads_a_long_beyond_2_to_the_53_rounded() -> None:
    node = tool("node")
    codec = Path(NODE_PATH["NODE_PATH"]) / "amqplib" / "lib" / "codec.js"
    if not codec.exists():
        require(f"amqplib is not installed in {NODE_PATH['NODE_PATH']}")
    data = encode_table({"x": 2**53 + 1})
    assert data[4 + 2] == ord("l")  # key "x", then the signed 64-bit letter
    script = (
        f"const codec = require({str(codec)!r});"
        f"const table = codec.decodeFields(Buffer.from({data[4:].hex()!r}, 'hex'));"
        "process.stdout.write(String(table.x));"
    )
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True)
    assert done.stdout == str(2**53)  # not 9007199254740993


def test_pamqp_writes_every_float_as_32_bit() -> None:
    pamqp_encode = pytest.importorskip("pamqp.encode")
    data = pamqp_encode.field_table({"f": 0.1})
    table, _ = decode_table(data, 0, len(data))
    assert table.types == {"f": "f"}
    assert table["f"] == 0.10000000149011612 != 0.1


def test_amqp091_go_writes_an_int_as_32_bit(go_binary: str) -> None:
    with Broker() as broker:
        done = subprocess.run(
            [go_binary, "finding-int", broker.host, str(broker.port), "guest", "guest"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        [message] = broker.messages("amqpcodec.interop.finding-int")
    headers = message.properties.headers
    assert headers is not None
    assert headers["big"] == 5  # int(1<<40 + 5), cut to 32 bits
    assert getattr(headers, "types", {}).get("big", "I") == "I"


def test_py_amqp_hands_an_empty_body_back_as_str() -> None:
    amqp = pytest.importorskip("amqp")
    with Broker() as broker:
        connection = amqp.Connection(host=f"{broker.host}:{broker.port}", connect_timeout=10)
        connection.connect()
        try:
            channel = connection.channel()
            queue, _, _ = channel.queue_declare(queue="", exclusive=True)
            channel.basic_publish(amqp.Message(b""), exchange="", routing_key=queue)
            channel.basic_publish(amqp.Message(b"x"), exchange="", routing_key=queue)
            empty, one = (
                channel.basic_get(queue, no_ack=True),
                channel.basic_get(queue, no_ack=True),
            )
        finally:
            connection.close()
    assert (empty.body, one.body) == ("", b"x")


@pytest.mark.rabbitmq
def test_kombu_declares_a_server_named_queue_again_and_rabbitmq_refuses(
    rabbitmq: tuple[str, int],
) -> None:
    kombu = pytest.importorskip("kombu")
    amqp_exceptions = pytest.importorskip("amqp.exceptions")
    host, port = rabbitmq
    with kombu.Connection(hostname=host, port=port, transport="pyamqp") as connection:
        channel = connection.channel()
        queue = kombu.Queue("", exclusive=True, channel=channel)
        queue.declare()
        assert queue.name.startswith("amq.gen-")
        with pytest.raises(amqp_exceptions.AccessRefused) as refused:
            kombu.Consumer(channel, queues=[queue])  # auto_declare=True declares right away
    assert refused.value.reply_code == 403
    assert "reserved prefix" in str(refused.value)


def test_bunny_does_not_say_the_reply_code_of_a_refused_login() -> None:
    ruby = tool("ruby")
    with Broker() as broker:
        script = (
            'require "bunny"; require "logger"; '
            f"session = Bunny.new(host: {broker.host!r}, port: {broker.port}, user: 'guest', "
            "password: 'wrong', automatically_recover: false, logger: Logger.new(nil)); "
            "begin; session.start; rescue Bunny::AuthenticationFailureError => e; "
            "print e.class, ': ', e.message; end"
        )
        done = subprocess.run([ruby, "-e", script], capture_output=True, text=True, timeout=60)
    if "cannot load such file" in done.stderr:
        require("Bunny is not installed (Debian ruby-bunny)")
    assert done.stdout.startswith("Bunny::AuthenticationFailureError: "), done
    assert "403" not in done.stdout and "ACCESS_REFUSED" not in done.stdout, done.stdout


def test_py_amqp_ignores_its_frame_max_setting() -> None:
    amqp = pytest.importorskip("amqp")
    with Broker() as broker:  # proposes frame_max 131072
        connection = amqp.Connection(
            host=f"{broker.host}:{broker.port}", frame_max=4096, connect_timeout=10
        )
        connection.connect()
        try:
            negotiated = connection.frame_max  # what its Connection.Tune-Ok said
        finally:
            connection.close()
    assert negotiated == 131072  # the server's proposal replaced the 4096 asked for
