"""Strategies for fuzzing live peers: streams as structured values with RabbitMQ's
expected refusals, the handshake's values, "a handshake then X", mutations that spare
the handshake and say what they did, the RabbitMQ dialect, and one word for direction."""

from __future__ import annotations

import random
import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from amqpcodec import (
    BodyFrame,
    Connection,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
    Role,
    spec,
)
from amqpcodec import strategies as amqp_st
from amqpcodec._refusals import RabbitMQRules
from amqpcodec.events import ConnectionOpened

B, Ch, Q, X, Tx = spec.Basic, spec.Channel, spec.Queue, spec.Exchange, spec.Tx
LOGIN = {"username": "fuzzer", "password": "s3cret", "virtual_host": "/vh"}


def method_frames(data: bytes) -> list[Any]:
    return [f for f in FrameDecoder(0).feed(data) if isinstance(f, MethodFrame)]


# ---------------------------------------------------------------------------------------
# The handshake's values


@given(
    amqp_st.streams(
        "client",
        **LOGIN,
        client_properties={"capabilities": {"authentication_failure_close": True}},
        heartbeat=0,
        frame_max=8192,
    )
)
def test_a_client_stream_logs_in_with_the_given_values(stream: amqp_st.Stream) -> None:
    server = Connection(Role.SERVER)
    events = server.receive_data(stream.encode()[: stream.handshake_end])
    opened = [e for e in events if isinstance(e, ConnectionOpened)]
    assert opened and opened[0].heartbeat == 0 and opened[0].frame_max == 8192
    credentials = server.credentials
    assert credentials is not None
    assert (credentials.username, credentials.password) == ("fuzzer", "s3cret")
    assert credentials.client_properties["capabilities"] == {"authentication_failure_close": True}
    assert method_frames(stream.encode())[2].method == spec.Connection.Open("/vh")


@given(amqp_st.streams("client", username=st.just("u"), password=st.sampled_from(["a", "b"])))
def test_handshake_values_may_be_strategies(stream: amqp_st.Stream) -> None:
    start_ok = method_frames(stream.encode())[0].method
    assert start_ok.response in (b"\0u\0a", b"\0u\0b") or b"LOGINS\x00\x00\x00\x01u" in (
        start_ok.response
    )


@given(amqp_st.streams("server", heartbeat=7))
def test_a_server_stream_proposes_the_given_heartbeat(stream: amqp_st.Stream) -> None:
    tune = method_frames(stream.encode())[1].method
    assert tune.heartbeat == 7
    assert stream.refusal is None and stream.declared == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sender": "server", "username": "guest"},
        {"sender": "server", "client_properties": {}},
        {"heartbeat": 70000},
        {"accepted_by": "qpid"},
        {"sender": "server", "accepted_by": "rabbitmq"},
        {"sender": "server", "name_prefix": "x"},
        {"name_prefix": ""},
        {"name_prefix": "p" * 65},
    ],
)
def test_streams_refuse_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        amqp_st.streams(**kwargs)


# ---------------------------------------------------------------------------------------
# Streams as structured values


@pytest.mark.parametrize("sender", ["client", "server"])
@given(data=st.data())
def test_a_stream_knows_its_frames_and_boundaries(sender: str, data: st.DataObject) -> None:
    stream = data.draw(amqp_st.streams(sender))
    raw = stream.encode()
    assert len(stream) == len(raw) and stream.boundaries[-1] == len(raw)
    decoded = FrameDecoder(0).feed(raw)
    assert [item.frame for item in stream.frames] == decoded
    for item, start in zip(stream.frames, stream.boundaries, strict=False):
        assert item.start == start and raw[item.start : item.end] == item.data
    handshake = [item for item in stream.frames if item.handshake]
    assert handshake[-1].end == stream.handshake_end == amqp_st.handshake_end(raw)
    last = handshake[-1].frame
    assert isinstance(last, MethodFrame)
    assert ("connection.open" if sender == "client" else "connection.open-ok") == last.method.NAME
    assert stream.refusal == (stream.refusals[0].refusal if stream.refusals else None)
    assert "Stream(" in repr(stream)


@given(data=st.data())
def test_frame_streams_are_the_bytes_of_streams(data: st.DataObject) -> None:
    seed = data.draw(st.integers(0, 2**32))
    one = data.draw(amqp_st.frame_streams("client", max_items=2, channels=st.just(seed % 7 + 1)))
    assert isinstance(one, bytes) and one.startswith(b"AMQP")


def test_handshake_end_of_bytes_without_a_handshake() -> None:
    assert amqp_st.handshake_end(b"") == 0
    assert amqp_st.handshake_end(HeartbeatFrame().encode()) == 0


# ---------------------------------------------------------------------------------------
# What RabbitMQ refuses


def judged(*frames: Any, username: str = "guest") -> list[Any]:
    rules = RabbitMQRules(username)
    opening = [ProtocolHeader(), MethodFrame(0, spec.Connection.Open("/"))]
    return [rules.check(frame) for frame in (*opening, *frames)][2:]


def codes(*methods: Any) -> list[tuple[int, bool] | None]:
    frames = [MethodFrame(1, Ch.Open()), *(MethodFrame(1, m) for m in methods)]
    return [None if r is None else (r.reply_code, r.connection) for r in judged(*frames)][1:]


@pytest.mark.parametrize(
    ("methods", "expected"),
    [
        ([B.Qos(prefetch_size=1)], [(540, True)]),
        ([B.Qos(prefetch_count=5)], [None]),
        ([B.Publish(immediate=True)], [(540, True)]),
        ([B.Publish(exchange="nowhere")], [(404, False)]),
        ([Ch.Flow(active=False)], [(540, True)]),
        ([Ch.Flow(active=True)], [None]),
        ([B.Recover(requeue=False)], [(540, True)]),
        ([B.RecoverAsync(requeue=False)], [(540, True)]),
        ([B.Recover(requeue=True)], [None]),
        ([Tx.Commit()], [(406, False)]),
        ([Tx.Select(), Tx.Commit(), Tx.Rollback()], [None, None, None]),
        ([Tx.Select(), spec.Confirm.Select()], [None, (406, False)]),
        ([spec.Confirm.Select(), Tx.Select()], [None, (406, False)]),
        ([Q.DeclareOk("q", 0, 0)], [(503, True)]),
        ([Ch.FlowOk(active=True)], [(503, True)]),
        ([Q.Declare(queue="q", passive=True)], [(404, False)]),
        ([Q.Declare(queue="q"), Q.Declare(queue="q", passive=True)], [None, None]),
        ([Q.Declare(queue="amq.q")], [(403, False)]),
        ([Q.Declare(queue="")], [None]),
        ([Q.Declare(queue=""), Q.Purge(queue=""), B.Get(queue=""), Q.Delete(queue="")], [None] * 4),
        ([Q.Purge(queue="")], [(404, False)]),
        ([Q.Bind(queue="", exchange="")], [(404, False)]),
        ([Q.Unbind(queue="", exchange="")], [(404, False)]),
        ([Q.Delete(queue="")], [(404, False)]),
        ([Q.Declare(queue="q"), Q.Bind(queue="", exchange="amq.direct")], [None, None]),
        ([Q.Declare(queue="q"), Q.Unbind(queue="", exchange="")], [None, (403, False)]),
        ([Q.Declare(queue="q"), Q.Declare(queue="q", passive=True), Q.Purge("")], [None] * 3),
        ([Q.Declare(queue=""), Q.Declare(queue="", passive=True)], [None, (404, False)]),
        ([Q.Declare(queue="q"), Q.Declare(queue="", passive=True)], [None, (404, False)]),
        (
            [Q.Declare(queue="q"), Q.Delete(queue=""), Q.Purge(queue="q")],
            [None, None, (404, False)],
        ),
        ([Q.Bind(queue="q", exchange="amq.direct")], [(404, False)]),
        ([Q.Declare(queue="q"), Q.Bind(queue="q", exchange="")], [None, (403, False)]),
        ([Q.Declare(queue="q"), Q.Unbind(queue="q", exchange="amq.topic")], [None, None]),
        ([Q.Purge(queue="q")], [(404, False)]),
        ([Q.Delete(queue="q")], [None]),
        ([Q.Declare(queue="q"), Q.Delete(queue="q", if_empty=True)], [None, (406, False)]),
        ([Q.Delete(queue="q", if_unused=True)], [None]),
        ([B.Get(queue="q")], [(404, False)]),
        ([B.Consume(queue="q")], [(404, False)]),
        (
            [Q.Declare(queue="q"), B.Consume(queue="q", consumer_tag="t")] * 1
            + [B.Consume(queue="q", consumer_tag="t")],
            [None, None, (530, True)],
        ),
        ([Q.Declare(queue="q"), B.Consume(queue="q", exclusive=True)], [None, (403, False)]),
        ([B.Cancel(consumer_tag="never")], [None]),
        ([B.Ack(0, multiple=True)], [None]),
        ([B.Ack(3)], [(406, False)]),
        ([B.Nack(0, multiple=True)], [None]),
        ([B.Reject(1)], [(406, False)]),
        (
            [X.Declare(exchange="x", type="direct"), X.Declare(exchange="x", type="topic")],
            [None, (406, False)],
        ),
        ([X.Declare(exchange="x", type="weird")], [(503, True)]),
        ([X.Declare(exchange="amq.direct", type="direct")], [None]),
        ([X.Declare(exchange="amq.direct", type="fanout")], [(403, False)]),
        ([X.Declare(exchange="x", passive=True)], [(404, False)]),
        ([X.Delete(exchange="x")], [None]),
        ([X.Delete(exchange="amq.fanout")], [(403, False)]),
        ([X.Delete(exchange="x", if_unused=True)], [(406, False)]),
        ([X.Bind(destination="", source="amq.direct")], [(403, False)]),
        (
            [X.Declare(exchange="x", type="fanout"), X.Bind(destination="x", source="amq.direct")],
            [None, None],
        ),
        ([X.Unbind(destination="y", source="amq.direct")], [None]),
        ([X.Unbind(destination="", source="amq.direct")], [(403, False)]),
        ([Q.Unbind(queue="q", exchange="nowhere")], [None]),
        ([Q.Unbind(queue="q", exchange="")], [(403, False)]),
        ([spec.Connection.UpdateSecret(b"", "")], [(503, True)]),
        ([Ch.CloseOk(), B.Qos()], [None, None]),
    ],
)
def test_rabbitmq_rules(methods: list[Any], expected: list[Any]) -> None:
    assert codes(*methods) == expected


def test_rabbitmq_rules_on_channels_and_frames() -> None:
    publish = MethodFrame(1, B.Publish(exchange=""))
    assert judged(MethodFrame(1, B.Qos())) == [(r := judged(MethodFrame(1, B.Qos()))[0])]
    assert r is not None and (r.reply_code, r.connection) == (504, True)
    assert "504 (connection)" in str(r)
    # Channel 0 gets only connection methods; content there is an unexpected frame.
    assert judged(MethodFrame(0, B.Qos()))[0].reply_code == 504  # type: ignore[union-attr]
    assert judged(HeaderFrame(0, 0, spec.BasicProperties()))[0].reply_code == 505  # type: ignore[union-attr]
    assert judged(MethodFrame(0, spec.Connection.CloseOk()))[0].reply_code == 504  # type: ignore[union-attr]
    assert judged(MethodFrame(0, spec.Connection.UpdateSecret(b"", ""))) == [None]
    assert judged(BodyFrame(2, b"x"))[0].reply_code == 504  # type: ignore[union-attr]
    opened = MethodFrame(1, Ch.Open())
    assert judged(opened, opened)[1].reply_code == 504  # type: ignore[union-attr]
    assert judged(MethodFrame(3000, Ch.Open()))[0].reply_code == 530  # type: ignore[union-attr]
    # Properties RabbitMQ checks: expiration a number of milliseconds, user_id the login.
    for props, code in [
        (spec.BasicProperties(expiration="60000"), None),
        (spec.BasicProperties(expiration="soon"), 406),
        (spec.BasicProperties(expiration=str(2**32)), 406),
        (spec.BasicProperties(user_id="guest"), None),
        (spec.BasicProperties(user_id="root"), 406),
        (spec.BasicProperties(delivery_mode=2), None),
        (spec.BasicProperties(delivery_mode=0), 406),
        (spec.BasicProperties(headers={"a": [{"b": float("inf")}]}), 541),
        (spec.BasicProperties(headers={"a": [{"b": 1.5}], "n": None}), None),
    ]:
        result = judged(opened, publish, HeaderFrame(1, 1, props), BodyFrame(1, b"x"))
        assert [None if r is None else r.reply_code for r in result] == [None, None, code, None]
    # After a channel refusal the channel's frames are discarded until its Close-Ok,
    # and a connection refusal or a close ends the judging.
    refused = judged(opened, MethodFrame(1, Tx.Commit()), MethodFrame(1, Tx.Commit()))
    assert refused[1] is not None and refused[2] is None
    after = judged(
        opened,
        MethodFrame(1, Tx.Commit()),
        MethodFrame(1, Ch.CloseOk()),
        MethodFrame(1, Ch.Open()),
        MethodFrame(1, Ch.Close(200, "", 0, 0)),
        MethodFrame(1, Tx.Commit()),
    )
    assert [r is None for r in after] == [True, False, True, True, True, False]
    ended = judged(MethodFrame(0, spec.Connection.Close(200, "", 0, 0)), MethodFrame(5, B.Qos()))
    assert ended == [None, None]
    # Connection-class methods on a channel.
    assert judged(opened, MethodFrame(1, spec.Connection.Open("/")))[1].reply_code == 503  # type: ignore[union-attr]


def test_the_handshake_is_not_judged() -> None:
    rules = RabbitMQRules()
    assert rules.check(MethodFrame(1, B.Qos(prefetch_size=9))) is None  # before Open
    assert not rules.open


@given(
    amqp_st.after_handshake(
        st.sampled_from([B.Qos(prefetch_size=1), B.Publish(immediate=True), Tx.Commit()]),
        min_items=1,
        max_items=1,
    )
)
def test_after_handshake_marks_the_refused_frame(stream: amqp_st.Stream) -> None:
    refusal = stream.refusal
    assert refusal is not None and refusal.reply_code in (540, 406)
    assert stream.refusals[0].start >= stream.handshake_end


# ---------------------------------------------------------------------------------------
# The RabbitMQ dialect and names that can be cleaned up


@given(amqp_st.streams("client", accepted_by="rabbitmq", max_items=25), st.randoms())
def test_the_rabbitmq_dialect_draws_nothing_rabbitmq_refuses(
    stream: amqp_st.Stream, rnd: random.Random
) -> None:
    assert stream.refusal is None
    assert all(item.refusal is None for item in stream.frames)
    raw = stream.encode()
    start_ok = method_frames(raw)[0].method
    assert start_ok.mechanism in ("PLAIN", "AMQPLAIN") and b"guest" in start_ok.response
    # Our own server role accepts all of it too.
    server = Connection(Role.SERVER)
    at = 0
    while at < len(raw):
        step = rnd.choice((1, 7, 100, len(raw)))
        server.receive_data(raw[at : at + step])
        server.data_to_send()
        at += step
    for kind, name in stream.declared:
        assert kind in ("queue", "exchange") and name.startswith("amqpcodec-fuzz.")


def test_the_rabbitmq_dialect_uses_every_operation() -> None:
    seen: set[str] = set()

    @settings(max_examples=200, derandomize=True, deadline=None)
    @given(amqp_st.streams("client", accepted_by="rabbitmq", max_items=40, max_channels=2))
    def collect(stream: amqp_st.Stream) -> None:
        for item in stream.frames:
            if isinstance(item.frame, MethodFrame):
                seen.add(item.frame.method.NAME)

    collect()
    wanted = {
        "queue.declare",
        "queue.bind",
        "queue.unbind",
        "queue.purge",
        "queue.delete",
        "exchange.declare",
        "exchange.bind",
        "exchange.unbind",
        "exchange.delete",
        "basic.publish",
        "basic.qos",
        "basic.consume",
        "basic.cancel",
        "basic.get",
        "basic.recover",
        "channel.flow",
        "tx.select",
        "tx.commit",
        "tx.rollback",
        "confirm.select",
    }
    assert wanted <= seen, wanted - seen


def test_the_rabbitmq_dialect_without_channels() -> None:
    @given(amqp_st.streams("client", accepted_by="rabbitmq", max_channels=0, close=False))
    def check(stream: amqp_st.Stream) -> None:
        assert stream.refusal is None
        assert stream.frames[-1].handshake  # nothing but the handshake

    check()


NAMED = ("queue", "exchange", "destination", "source")


@given(amqp_st.streams("client", name_prefix="t.", max_items=20, channels=st.just(1)))
def test_a_name_prefix_on_every_name(stream: amqp_st.Stream) -> None:
    for frame in method_frames(stream.encode()):
        method = frame.method
        for name in NAMED:
            value = getattr(method, name, "") if name in method.FIELDS else ""
            assert value == "" or value.startswith("t."), (method, name)
        if method.NAME == "queue.declare" and not method.passive:
            assert method.exclusive
    assert all(name.startswith("t.") for _, name in stream.declared)


# ---------------------------------------------------------------------------------------
# A valid handshake, then X


@given(
    amqp_st.after_handshake(
        st.one_of(
            amqp_st.methods(classes=["basic"], sender="client"),
            amqp_st.frames(["heartbeat"]),
            amqp_st.messages(4096, channels=st.just(2)),
            st.binary(min_size=1, max_size=20),
            st.just([spec.Connection.Close(200, "", 0, 0)]),
            st.just(MethodFrame(1, Q.Declare(queue="q"))),
        ),
        channels=2,
        frame_max=4096,
        **LOGIN,
        name_prefix="p.",
    )
)
def test_after_handshake_places_every_kind_of_item(stream: amqp_st.Stream) -> None:
    raw = stream.encode()
    head = raw[: stream.handshake_end]
    frames = FrameDecoder(0).feed(head)
    assert [f.channel for f in frames[-2:]] == [1, 2]  # both channels opened
    assert all(isinstance(f.method, Ch.Open) for f in frames[-2:])
    server = Connection(Role.SERVER)
    events = server.receive_data(head)
    assert isinstance(events[1], ConnectionOpened)
    for item in stream.frames:
        if not item.handshake and isinstance(item.frame, MethodFrame):
            method = item.frame.method
            assert item.frame.channel == (0 if method.CLASS_ID == 10 else item.frame.channel)
            if method.CLASS_ID == 60 and item.frame.channel not in (1, 2):
                raise AssertionError(item)
            if method.NAME == "queue.declare":
                assert method.queue == "p.q" and method.exclusive


@given(amqp_st.handshakes("server", channels=3))
def test_handshakes_alone(stream: amqp_st.Stream) -> None:
    assert stream.handshake_end == len(stream)
    frames = FrameDecoder(0).feed(stream.encode())
    assert [f.channel for f in frames[-3:]] == [1, 2, 3]
    client = Connection(Role.CLIENT)
    raw = stream.encode()
    opening = stream.frames[2].end  # Start, Tune, Open-Ok
    assert any(isinstance(e, ConnectionOpened) for e in client.receive_data(raw[:opening]))
    for number in (1, 2, 3):
        client.open_channel(number)
    events = client.receive_data(raw[opening:])
    assert [type(e).__name__ for e in events] == ["ChannelOpened"] * 3


def test_after_handshake_refuses_what_it_cannot_send() -> None:
    with pytest.raises(InvalidArgument):
        amqp_st.after_handshake(st.none(), channels=-1)
    with pytest.raises(InvalidArgument):
        amqp_st.after_handshake(st.none(), min_items=3, max_items=2)
    with pytest.raises(InvalidArgument):
        amqp_st.after_handshake(st.none(), frame_max=0)
    with pytest.raises(InvalidArgument):
        amqp_st.after_handshake(st.none(), "server", name_prefix="x")

    @given(amqp_st.after_handshake(st.just(object())))
    def draw(stream: amqp_st.Stream) -> None:
        raise AssertionError("unreachable")

    with pytest.raises(InvalidArgument, match="cannot send object"):
        draw()


# ---------------------------------------------------------------------------------------
# Mutations that spare the handshake and say what they did


@given(amqp_st.mutants(amqp_st.streams("client", **LOGIN), spare_handshake=True))
def test_mutants_spare_the_handshake(mutant: amqp_st.Mutant) -> None:
    spared = mutant.spared
    assert spared > 0 and mutant.data[:spared] == mutant.original[:spared]
    assert 1 <= len(mutant.mutations) <= 3
    for mutation in mutant.mutations:
        assert mutation.kind in amqp_st.MUTATIONS and mutation.offset >= spared
    assert mutant.kinds == tuple(m.kind for m in mutant.mutations)
    assert mutant.encode() is mutant.data
    assert "spared=" in repr(mutant) and "@" in str(mutant.mutations[0])
    # The broker still sees a whole, valid login.
    server = Connection(Role.SERVER)
    events = server.receive_data(mutant.data[:spared])
    assert isinstance(events[1], ConnectionOpened)


@given(amqp_st.mutants(amqp_st.frame_streams("server"), kinds=["bit-flip"], max_mutations=1))
def test_a_single_bit_flip_is_reported_where_it_is(mutant: amqp_st.Mutant) -> None:
    (mutation,) = mutant.mutations
    assert mutant.spared == 0
    diff = [i for i, (a, b) in enumerate(zip(mutant.data, mutant.original, strict=True)) if a != b]
    assert diff == [mutation.offset]


@given(amqp_st.mutations(amqp_st.frame_streams("client"), spare_handshake=True))
def test_mutations_as_bytes_can_spare_the_handshake(raw: bytes) -> None:
    assert raw.startswith(b"AMQP")


def test_mutate_spares_leading_bytes() -> None:
    data = bytes(range(64))
    rng = random.Random(4)
    for _ in range(50):
        out = amqp_st.mutate(data, rng, count=3, spare=20, kinds=["byte", "truncate", "insert"])
        assert out[:20] == data[:20]


def test_mutants_refuse_what_is_not_a_stream() -> None:
    with pytest.raises(InvalidArgument):
        amqp_st.mutants(st.just(b""), max_mutations=0)

    @given(amqp_st.mutants(st.just(42)))
    def draw(mutant: amqp_st.Mutant) -> None:
        raise AssertionError("unreachable")

    with pytest.raises(InvalidArgument, match="bytes or Stream"):
        draw()


def test_mutated_streams_spare_the_handshake() -> None:
    @given(amqp_st.mutated_streams("client", spare_handshake=True, **LOGIN))
    def check(raw: bytes) -> None:
        server = Connection(Role.SERVER)
        end = amqp_st.handshake_end(raw)
        assert end and isinstance(server.receive_data(raw[:end])[1], ConnectionOpened)

    check()


# ---------------------------------------------------------------------------------------
# One word for direction: sender


def test_sender_is_the_side_that_sends() -> None:
    @given(amqp_st.methods(sender="client"), amqp_st.methods(sender="server"))
    def check(from_client: Any, from_server: Any) -> None:
        assert "server" in from_client.CHASSIS and "client" in from_server.CHASSIS

    check()
    with pytest.raises(InvalidArgument):
        amqp_st.methods(sender="broker")


def test_the_old_spellings_still_work_and_warn() -> None:
    with pytest.warns(DeprecationWarning, match="sender="):
        old = amqp_st.methods(classes=["tx"], direction="server")
    new = amqp_st.methods(classes=["tx"], sender="client")
    assert repr(old) == repr(new)
    with pytest.warns(DeprecationWarning, match="sender="):
        amqp_st.frame_streams(role="server")
    with pytest.warns(DeprecationWarning):
        amqp_st.mutated_streams(role="client")
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidArgument):
        amqp_st.frame_streams("client", role="server")
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidArgument):
        amqp_st.methods(direction="server", sender="server")
    with pytest.warns(DeprecationWarning), pytest.raises(InvalidArgument):
        amqp_st.methods(direction="broker")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        amqp_st.frame_streams("client")  # the positional spelling never warns
