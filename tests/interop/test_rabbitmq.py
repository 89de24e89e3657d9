"""The client role against a real RabbitMQ: a whole session at frame_max 4096."""

from __future__ import annotations

import time
import uuid

import pytest
from blocking_driver import Driver

from amqpcodec import (
    BodyFrame,
    ConnectionState,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    Role,
    spec,
)
from amqpcodec.events import (
    ChannelClosed,
    Confirmed,
    ConnectionClosed,
    MessageReceived,
)

pytestmark = pytest.mark.rabbitmq

B, Q = spec.Basic, spec.Queue
SIZES = [0, 1, 4087, 4088, 4089, 100_000, 1_048_576]


def body_of(size: int, seed: int) -> bytes:
    pattern = bytes((seed * 31 + i) % 251 for i in range(251))
    return (pattern * (size // 251 + 1))[:size]


def test_session_at_frame_max_4096(rabbitmq: tuple[str, int]) -> None:
    driver = Driver(rabbitmq, frame_max=4096, heartbeat=0)
    assert driver.opened.frame_max == 4096
    assert driver.conn.peer_properties["product"] == "RabbitMQ"
    ch = driver.open_channel()
    queue = f"amqpcodec-{uuid.uuid4()}"
    declare_ok = driver.call(ch, Q.Declare(queue=queue, exclusive=True))
    assert isinstance(declare_ok, Q.DeclareOk) and declare_ok.queue == queue

    # Publish with confirms; every tag must come back acked.
    driver.call(ch, spec.Confirm.Select())
    bodies = [body_of(size, seed) for seed, size in enumerate(SIZES)]
    tags = []
    for seed, body in enumerate(bodies):
        properties = spec.BasicProperties(
            content_type="application/octet-stream", headers={"seed": seed}, delivery_mode=1
        )
        tags.append(driver.conn.send_message(ch, B.Publish("", queue), properties, body))
    assert tags == list(range(1, len(SIZES) + 1))
    confirmed: list[int] = []
    while len(confirmed) < len(tags):
        event = driver.expect(Confirmed, lambda e: e.channel == ch)
        assert event.ack
        confirmed += event.delivery_tags
    assert sorted(confirmed) == tags

    # A passive declare of a missing queue closes its channel with 404 ...
    ch2 = driver.open_channel()
    driver.conn.send_method(ch2, Q.Declare(queue=f"missing-{uuid.uuid4()}", passive=True))
    closed = driver.expect(ChannelClosed)
    assert (closed.channel, closed.reply_code, closed.closed_by) == (ch2, 404, Role.SERVER)
    assert (closed.class_id, closed.method_id) == (50, 10)
    assert closed.reply_text.startswith("NOT_FOUND")
    assert driver.conn.channel_state(ch2).name == "CLOSED"

    # ... while the first channel keeps working: consume everything back.
    consume_ok = driver.call(ch, B.Consume(queue=queue, consumer_tag="c1"))
    assert consume_ok.consumer_tag == "c1"
    for seed, body in enumerate(bodies):
        message = driver.expect(MessageReceived, lambda e: e.channel == ch)
        assert isinstance(message.method, B.Deliver)
        assert message.body == body, f"body {seed} of {len(body)} bytes differs"
        assert message.properties.headers == {"seed": seed}
        driver.conn.send_method(ch, B.Ack(message.method.delivery_tag))
    driver.call(ch, B.Cancel("c1"))

    # A mandatory publish that no queue takes comes back as basic.return, then is confirmed.
    nowhere = f"nowhere-{uuid.uuid4()}"
    tag = driver.conn.send_message(ch, B.Publish("", nowhere, mandatory=True), None, b"lost")
    returned = driver.expect(MessageReceived, lambda e: isinstance(e.method, B.Return))
    assert (returned.method.reply_code, returned.method.routing_key) == (312, nowhere)
    assert returned.body == b"lost"
    assert driver.expect(Confirmed).delivery_tags == (tag,)

    # Basic.Get on the (now empty) queue, and a get that finds a message.
    assert isinstance(driver.call(ch, B.Get(queue=queue, no_ack=True)), B.GetEmpty)
    driver.conn.send_message(ch, B.Publish("", queue), None, b"got")
    driver.expect(Confirmed)
    driver.conn.send_method(ch, B.Get(queue=queue, no_ack=True))
    got = driver.expect(MessageReceived, lambda e: isinstance(e.method, B.GetOk))
    assert got.body == b"got"

    closed_connection = driver.close()
    assert closed_connection == ConnectionClosed(200, "", 0, 0, Role.CLIENT)
    assert driver.conn.state is ConnectionState.CLOSED

    # Everything we sent decoded at frame_max 4096, and no frame was larger.
    assert max(driver.sent_sizes) <= 4096
    body_frames = [f for f in driver.sent_frames if isinstance(f, BodyFrame)]
    assert max(len(f.payload) for f in body_frames) == 4088
    sent_total = sum(len(f.payload) for f in body_frames)
    assert sent_total == sum(SIZES) + len(b"lost") + len(b"got")
    headers = [f for f in driver.sent_frames if isinstance(f, HeaderFrame)]
    assert [h.body_size for h in headers[: len(SIZES)]] == SIZES
    assert any(isinstance(f, MethodFrame) for f in driver.sent_frames)


def test_wrong_password_is_a_403(rabbitmq: tuple[str, int]) -> None:
    # The client asks for authentication_failure_close, so RabbitMQ sends Close 403.
    driver = Driver(rabbitmq, password="definitely-wrong", wait=False)
    closed = driver.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert (closed.reply_code, closed.closed_by) == (403, Role.SERVER)
    assert closed.reply_text.startswith("ACCESS_REFUSED")
    driver.flush()  # the close-ok
    assert driver.next_event_or_eof() is None


def test_wrong_password_without_the_capability_is_end_of_file(rabbitmq: tuple[str, int]) -> None:
    capabilities = {"capabilities": {"authentication_failure_close": False}}
    driver = Driver(
        rabbitmq, password="definitely-wrong", client_properties=capabilities, wait=False
    )
    closed = driver.next_event()
    assert isinstance(closed, ConnectionClosed) and closed.lost
    assert closed.reply_code == 403 and "probably a login failure" in closed.reply_text


def test_missing_virtual_host_is_a_530_close(rabbitmq: tuple[str, int]) -> None:
    driver = Driver(rabbitmq, virtual_host=f"no-such-vhost-{uuid.uuid4()}", wait=False)
    closed = driver.next_event()
    assert isinstance(closed, ConnectionClosed)
    assert (closed.reply_code, closed.class_id, closed.method_id) == (530, 10, 40)
    assert closed.closed_by is Role.SERVER


def test_heartbeats_with_the_broker(rabbitmq: tuple[str, int]) -> None:
    driver = Driver(rabbitmq, heartbeat=1)
    assert driver.opened.heartbeat == 1
    driver.sock.settimeout(0.2)
    start = time.monotonic()
    received = 0
    while time.monotonic() - start < 3.5:
        assert driver.conn.tick(time.monotonic()) == []
        driver.flush()
        try:
            data = driver.sock.recv(1 << 16)
        except TimeoutError:
            continue
        received += data.count(HeartbeatFrame().encode())
        assert driver.conn.receive_data(data) == []
    assert received >= 2
    assert sum(isinstance(f, HeartbeatFrame) for f in driver.sent_frames) >= 2
    driver.sock.settimeout(10)
    assert driver.close().closed_by is Role.CLIENT
