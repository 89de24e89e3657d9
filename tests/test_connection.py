"""The sans-IO Connection: a client and a server in memory, every transition and error."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest
from connection_pair import (
    Pair,
    client_handshake_bytes,
    content_bytes,
    decode_all,
    method_bytes,
    opened_pair,
    server_opened,
)

import amqpcodec
from amqpcodec import (
    BodyFrame,
    ChannelState,
    Connection,
    ConnectionState,
    Credentials,
    EncodeError,
    HeaderFrame,
    HeartbeatFrame,
    LocalProtocolError,
    MethodFrame,
    ProtocolHeader,
    RemoteProtocolError,
    Role,
    spec,
)
from amqpcodec.events import (
    ChannelClosed,
    ChannelOpened,
    Confirmed,
    ConnectionBlocked,
    ConnectionClosed,
    ConnectionOpened,
    ConnectionUnblocked,
    FlowChanged,
    HeartbeatTimeout,
    MessageReceived,
    MethodReceived,
    ProtocolHeaderReceived,
)

C, Ch, Q, B = spec.Connection, spec.Channel, spec.Queue, spec.Basic
CLIENT, SERVER = Role.CLIENT, Role.SERVER


def sent_methods(data: bytes) -> list[Any]:
    return [f.method for f in decode_all(data) if isinstance(f, MethodFrame)]


def expect_remote(conn: Connection, data: bytes, code: int) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(data)
    assert info.value.reply_code == code, info.value
    assert conn.state is ConnectionState.ERROR
    return info.value


def expect_close(conn: Connection, code: int, class_id: int = 0, method_id: int = 0) -> None:
    """The connection queued exactly one Connection.Close with this reply code."""
    methods = sent_methods(conn.data_to_send())
    assert len(methods) == 1 and isinstance(methods[0], C.Close), methods
    close = methods[0]
    assert (close.reply_code, close.class_id, close.method_id) == (code, class_id, method_id)
    assert close.reply_text.startswith(spec.ReplyCode(code).name + " - ")


# ---------------------------------------------------------------------------------------
# Handshake


def test_handshake_and_the_methods_on_the_wire() -> None:
    pair = Pair()
    assert pair.client.state is ConnectionState.AWAIT_START
    assert pair.server.state is ConnectionState.AWAIT_HEADER
    client_events, server_events = pair.pump()
    opened = ConnectionOpened(frame_max=131072, channel_max=2047, heartbeat=60, virtual_host="/")
    assert client_events == [opened]
    assert server_events == [ProtocolHeaderReceived(0, 9, 1), opened]
    assert pair.client.state is pair.server.state is ConnectionState.OPEN
    assert [type(f) for f in pair.sent[CLIENT]] == [ProtocolHeader] + [MethodFrame] * 3
    assert [type(f.method) for f in pair.sent[CLIENT][1:]] == [C.StartOk, C.TuneOk, C.Open]
    assert [type(f.method) for f in pair.sent[SERVER]] == [C.Start, C.Tune, C.OpenOk]
    start = pair.sent[SERVER][0].method
    assert (start.version_major, start.version_minor) == (0, 9)
    assert start.mechanisms == b"PLAIN AMQPLAIN" and start.locales == b"en_US"
    start_ok = pair.sent[CLIENT][1].method
    assert start_ok.mechanism == "PLAIN" and start_ok.response == b"\0guest\0guest"
    capabilities = start_ok.client_properties["capabilities"]
    for name in (
        "publisher_confirms",
        "consumer_cancel_notify",
        "basic.nack",
        "connection.blocked",
        "authentication_failure_close",
    ):
        assert capabilities[name] is True
    assert pair.client.peer_properties["product"] == "amqpcodec"
    assert pair.server.peer_properties["capabilities"]["basic.nack"] is True
    assert pair.server.credentials == Credentials(
        "PLAIN", b"\0guest\0guest", "guest", "guest", start_ok.client_properties
    )


def test_client_properties_merge_into_the_defaults() -> None:
    pair = Pair(
        {"client_properties": {"connection_name": "x", "capabilities": {"basic.nack": False}}}
    )
    pair.handshake()
    properties = pair.server.peer_properties
    assert properties["connection_name"] == "x"
    assert properties["capabilities"]["basic.nack"] is False
    assert properties["capabilities"]["publisher_confirms"] is True


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        ((2047, 131072, 60), (2047, 131072, 60), (2047, 131072, 60)),
        ((0, 0, 0), (2047, 131072, 60), (2047, 131072, 60)),  # 0: take the other value
        ((100, 8192, 10), (2047, 131072, 60), (100, 8192, 10)),  # else the smaller
        ((4000, 200000, 600), (2047, 131072, 60), (2047, 131072, 60)),
        ((10, 4096, 5), (0, 0, 0), (10, 4096, 5)),
        ((0, 0, 0), (0, 0, 0), (0, 0, 0)),  # heartbeats off only when both say 0
        ((0, 0, 30), (0, 0, 0), (0, 0, 30)),
    ],
)
def test_tuning_as_rabbitmq_clients_do(
    ours: tuple[int, int, int], theirs: tuple[int, int, int], expected: tuple[int, int, int]
) -> None:
    names = ("channel_max", "frame_max", "heartbeat")
    pair = Pair(dict(zip(names, ours, strict=True)), **dict(zip(names, theirs, strict=True)))
    opened = pair.handshake()
    assert (opened.channel_max, opened.frame_max, opened.heartbeat) == expected
    for conn in (pair.client, pair.server):
        assert (conn.channel_max, conn.frame_max, conn.heartbeat) == expected


def test_frames_before_tuning_are_limited_to_the_minimum_frame_size() -> None:
    client = Connection(CLIENT, min_frame_size=8192)
    assert client.frame_max == 8192
    big_start = C.Start(0, 9, {"x": "y" * 9000}, b"PLAIN", b"en_US")
    client.data_to_send()
    expect_remote(client, method_bytes(0, big_start), 501)
    assert client.data_to_send() == b""  # no Close before the connection is open


def test_client_properties_that_do_not_fit_before_tuning() -> None:
    with pytest.raises(EncodeError):
        Connection(CLIENT, client_properties={"x": "y" * 5000})
    Connection(CLIENT, client_properties={"x": "y" * 5000}, min_frame_size=8192)


def test_server_proposing_a_frame_max_below_the_minimum() -> None:
    pair = Pair({"min_frame_size": 8192}, frame_max=4096)
    pair.transfer(CLIENT)
    pair.transfer(SERVER)  # start
    pair.transfer(CLIENT)  # start-ok
    with pytest.raises(RemoteProtocolError) as info:
        pair.transfer(SERVER)  # tune
    assert info.value.reply_code == 530
    assert pair.client.data_to_send() == b""


@pytest.mark.parametrize(
    ("tune_ok", "reason"),
    [
        (C.TuneOk(2047, 131073, 60), "frame_max = 131073 is higher"),
        (C.TuneOk(2047, 0, 60), "frame_max = 0 is higher"),
        (C.TuneOk(2048, 131072, 60), "channel_max = 2048 is higher"),
        (C.TuneOk(0, 131072, 60), "channel_max = 0 is higher"),
        (C.TuneOk(2047, 1024, 60), "frame_max = 1024 is lower"),
    ],
)
def test_tune_ok_outside_the_proposal_is_refused_without_a_close(tune_ok: Any, reason: str) -> None:
    server = Connection(SERVER)
    header, start_ok, _, _ = client_handshake_bytes()
    server.receive_data(header + start_ok)
    assert server.state is ConnectionState.AWAIT_TUNE_OK
    server.data_to_send()
    error = expect_remote(server, method_bytes(0, tune_ok), 530)
    assert reason in str(error)
    assert (error.class_id, error.method_id) == (10, 31)
    assert server.data_to_send() == b""  # [PDF §2.2.4] no Close before Open


def test_any_heartbeat_value_in_tune_ok_is_taken() -> None:
    server = Connection(SERVER, heartbeat=60)
    for data in client_handshake_bytes(C.TuneOk(2047, 131072, 600)):
        events = server.receive_data(data)
    assert events == [ConnectionOpened(131072, 2047, 600, "/")]


@pytest.mark.parametrize("mechanism", ["PLAIN", "AMQPLAIN", "EXTERNAL"])
def test_mechanisms(mechanism: str) -> None:
    seen: list[Credentials] = []

    def authenticate(credentials: Credentials) -> bool:
        seen.append(credentials)
        return True

    pair = Pair(
        {"mechanism": mechanism, "username": "ü", "password": "p w"},
        mechanisms=("PLAIN", "AMQPLAIN", "EXTERNAL"),
        authenticate=authenticate,
    )
    pair.handshake()
    (credentials,) = seen
    assert credentials.mechanism == mechanism
    if mechanism == "EXTERNAL":
        assert (credentials.username, credentials.password) == ("", None)
    else:
        assert (credentials.username, credentials.password) == ("ü", "p w")


def test_a_mechanism_the_server_does_not_offer() -> None:
    pair = Pair({"mechanism": "EXTERNAL"})
    pair.transfer(CLIENT)
    with pytest.raises(RemoteProtocolError) as info:
        pair.transfer(SERVER)
    assert info.value.reply_code == 403
    assert "PLAIN AMQPLAIN, not EXTERNAL" in str(info.value)
    assert pair.client.data_to_send() == b""


def test_the_server_refuses_an_unknown_mechanism() -> None:
    server = Connection(SERVER)
    server.receive_data(ProtocolHeader().encode())
    expect_remote(server, method_bytes(0, C.StartOk({}, "CRAM-MD5", b"x", "en_US")), 503)


@pytest.mark.parametrize("response", [b"guest", b"\0a\0b\0c"])
def test_a_malformed_plain_response(response: bytes) -> None:
    server = Connection(SERVER)
    server.receive_data(ProtocolHeader().encode())
    expect_remote(server, method_bytes(0, C.StartOk({}, "PLAIN", response, "en_US")), 403)


def test_a_malformed_amqplain_response() -> None:
    server = Connection(SERVER)
    server.receive_data(ProtocolHeader().encode())
    expect_remote(server, method_bytes(0, C.StartOk({}, "AMQPLAIN", b"\x05LOGIN", "")), 403)


def test_login_failure_with_authentication_failure_close() -> None:
    pair = Pair({"password": "wrong"}, authenticate=lambda c: c.password == "guest")
    pair.transfer(CLIENT)
    pair.transfer(SERVER)
    with pytest.raises(RemoteProtocolError) as info:
        pair.transfer(CLIENT)  # start-ok
    assert info.value.reply_code == 403
    assert pair.server.state is ConnectionState.ERROR
    # RabbitMQ's behaviour for clients that set the capability: a Close 403.
    events = pair.transfer(SERVER)
    assert events == [
        ConnectionClosed(
            403,
            "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN",
            0,
            0,
            SERVER,
        )
    ]
    assert pair.client.state is ConnectionState.CLOSED
    assert sent_methods(pair.client.data_to_send()) == [C.CloseOk()]


def test_login_failure_without_authentication_failure_close() -> None:
    client_properties = {"capabilities": {"authentication_failure_close": False}}
    pair = Pair(
        {"password": "wrong", "client_properties": client_properties},
        authenticate=lambda c: False,
    )
    pair.transfer(CLIENT)
    pair.transfer(SERVER)
    with pytest.raises(RemoteProtocolError):
        pair.transfer(CLIENT)
    assert pair.server.data_to_send() == b""  # the spec's way: just close the socket
    (closed,) = pair.client.receive_data(b"")
    assert closed.reply_code == 403 and closed.lost
    assert "probably a login failure" in closed.reply_text


def test_secure_rounds_answered_by_a_setting() -> None:
    def authenticate(credentials: Credentials) -> bool | bytes:
        if credentials.rounds < 2:
            return b"challenge %d" % credentials.rounds
        return credentials.response == b"answer to challenge 1"

    pair = Pair({"secure_response": lambda c: b"answer to " + c}, authenticate=authenticate)
    pair.handshake()
    secures = [f.method for f in pair.sent[SERVER] if isinstance(f.method, C.Secure)]
    assert [s.challenge for s in secures] == [b"challenge 0", b"challenge 1"]


def test_secure_answered_by_hand() -> None:
    pair = Pair(authenticate=lambda c: b"?" if c.rounds == 0 else c.response == b"!")
    client_events, _ = pair.pump()
    assert client_events == [MethodReceived(0, C.Secure(b"?"))]
    assert pair.client.state is ConnectionState.AWAIT_SECURE_OK
    with pytest.raises(LocalProtocolError):
        pair.client.send_method(0, C.TuneOk())
    pair.client.send_method(0, C.SecureOk(b"!"))
    client_events, _ = pair.pump()
    assert isinstance(client_events[-1], ConnectionOpened)


def test_virtual_host_refused_with_a_close() -> None:
    pair = Pair(
        {"virtual_host": "secret"},
        check_virtual_host=lambda vhost, credentials: vhost != "secret",
    )
    for _ in range(2):
        pair.transfer(CLIENT)
        pair.transfer(SERVER)
    with pytest.raises(RemoteProtocolError) as info:
        pair.transfer(CLIENT)  # tune-ok, open
    assert info.value.reply_code == 530
    # The client has sent Open, so it counts the connection as open: a Close handshake.
    events = pair.transfer(SERVER)
    assert len(events) == 1 and isinstance(events[0], ConnectionClosed)
    assert (events[0].reply_code, events[0].class_id, events[0].method_id) == (530, 10, 40)
    assert "access to vhost 'secret' refused for user 'guest'" in events[0].reply_text
    assert events[0].closed_by is SERVER


def test_virtual_host_accepted() -> None:
    pair = Pair({"virtual_host": "v"}, check_virtual_host=lambda vhost, c: vhost == "v")
    assert pair.handshake().virtual_host == "v"


def test_locale_falls_back_to_the_first_the_server_offers() -> None:
    pair = Pair({"locale": "de_DE"}, locales=("en_GB", "en_US"))
    pair.handshake()
    assert pair.sent[CLIENT][1].method.locale == "en_GB"


def test_server_speaking_another_version_in_start() -> None:
    client = Connection(CLIENT)
    expect_remote(client, method_bytes(0, C.Start(0, 8, {}, b"PLAIN", b"en_US")), 540)


# Protocol headers [PDF §4.2.2]


@pytest.mark.parametrize(
    "header", [b"AMQP\x00\x00\x09\x01", b"AMQP\x01\x01\x00\x09"], ids=["0-9-1", "0-9"]
)
def test_server_takes_the_0_9_1_and_0_9_headers(header: bytes) -> None:
    server = Connection(SERVER)
    events = []
    for byte in header:  # any split
        events += server.receive_data(bytes([byte]))
    assert events == [ProtocolHeaderReceived(header[5], header[6], header[7], header[4])]
    assert sent_methods(server.data_to_send())[0].NAME == "connection.start"


@pytest.mark.parametrize(
    ("data", "event"),
    [
        (b"AMQP\x00\x00\x09\x00", ProtocolHeaderReceived(0, 9, 0)),
        (b"AMQP\x00\x00\x08\x00", ProtocolHeaderReceived(0, 8, 0)),
        (b"AMQP\x03\x01\x00\x00", ProtocolHeaderReceived(1, 0, 0, 3)),
        (b"GET / HTTP/1.1\r\n", None),
        (b"HTTP", None),
        (b"\x01\x00\x00\x00\x00\x00\x00\xce", None),
    ],
)
def test_server_answers_another_header_with_its_own(
    data: bytes, event: ProtocolHeaderReceived | None
) -> None:
    server = Connection(SERVER)
    events = server.receive_data(data)
    assert events[:-1] == ([event] if event else [])
    assert isinstance(events[-1], ConnectionClosed) and events[-1].lost
    assert server.state is ConnectionState.CLOSED
    assert server.data_to_send() == b"AMQP\x00\x00\x09\x01"
    assert server.receive_data(b"more") == []


def test_server_waits_for_all_8_header_bytes() -> None:
    server = Connection(SERVER)
    assert server.receive_data(b"AMQP") == []
    assert server.data_to_send() == b""
    assert server.receive_data(b"") == [
        ConnectionClosed(0, "connection lost in state AWAIT_HEADER")
    ]


def test_header_and_start_ok_in_one_read() -> None:
    server = Connection(SERVER)
    header, start_ok, tune_ok, open_ = client_handshake_bytes()
    events = server.receive_data(header + start_ok + tune_ok + open_)
    assert events == [ProtocolHeaderReceived(0, 9, 1), ConnectionOpened(131072, 2047, 60, "/")]


def test_client_refused_by_the_server_header() -> None:
    client = Connection(CLIENT)
    client.data_to_send()
    events = client.receive_data(b"AMQP\x00\x00\x09\x01")
    assert events == [
        ProtocolHeaderReceived(0, 9, 1),
        ConnectionClosed(0, "the server refused our protocol header and offers AMQP 0-9-1 instead"),
    ]
    assert client.state is ConnectionState.CLOSED
    old = Connection(CLIENT)
    (_, closed) = old.receive_data(b"AMQP\x01\x01\x00\x09")
    assert (
        closed.reply_text
        == "the server refused our protocol header and offers AMQP 1-1-0-9 instead"
    )
    server = Connection(SERVER)
    (closed,) = server.receive_data(b"GET / HTTP/1.1\r\n")
    assert closed.reply_text == (
        "the client sent the protocol header b'GET / HT', which is not AMQP 0-9-1"
    )


def test_a_second_protocol_header_is_a_frame_error() -> None:
    server = Connection(SERVER)
    expect_remote(server, ProtocolHeader().encode() * 2, 501)


def test_protocol_header_after_start() -> None:
    client = Connection(CLIENT)
    client.receive_data(method_bytes(0, C.Start(0, 9, {}, b"PLAIN", b"en_US")))
    expect_remote(client, b"AMQP\x00\x00\x09\x01", 501)


# Errors before the connection is open: no Close [PDF §2.2.4]


def test_channel_frames_before_open_are_unexpected() -> None:
    server = Connection(SERVER)
    server.receive_data(ProtocolHeader().encode())
    server.data_to_send()
    expect_remote(server, method_bytes(1, Ch.Open()), 505)
    assert server.data_to_send() == b""


def test_content_frames_before_open_are_unexpected() -> None:
    client = Connection(CLIENT)
    expect_remote(client, BodyFrame(1, b"x").encode(), 505)


def test_unexpected_method_during_the_handshake() -> None:
    client = Connection(CLIENT)
    client.data_to_send()
    error = expect_remote(client, method_bytes(0, C.Tune()), 504)
    assert "unexpected connection.tune in connection state AWAIT_START" in str(error)
    assert client.data_to_send() == b""


def test_a_method_the_role_never_receives() -> None:
    client = Connection(CLIENT)
    expect_remote(client, method_bytes(0, C.StartOk()), 503)


def test_close_during_the_handshake_is_understood() -> None:
    client = Connection(CLIENT)
    client.receive_data(method_bytes(0, C.Start(0, 9, {}, b"PLAIN", b"en_US")))
    client.data_to_send()
    events = client.receive_data(method_bytes(0, C.Close(530, "NOT_ALLOWED - no", 10, 31)))
    assert events == [ConnectionClosed(530, "NOT_ALLOWED - no", 10, 31, SERVER)]
    assert sent_methods(client.data_to_send()) == [C.CloseOk()]


def test_close_during_the_handshake_ends_the_connection_without_a_close() -> None:
    client = Connection(CLIENT)
    with pytest.raises(LocalProtocolError):
        client.open_channel()
    with pytest.raises(LocalProtocolError):
        client.send_method(1, Q.Declare())
    assert client.data_to_send() == b"AMQP\x00\x00\x09\x01"
    client.close()  # no Close before Connection.Open [PDF §2.2.4]: just the end
    assert client.state is ConnectionState.CLOSED and not client.is_open
    assert client.data_to_send() == b""
    client.close()  # and again: nothing
    with pytest.raises(LocalProtocolError, match=r"during the handshake, in state AWAIT_START"):
        client.open_channel()


def test_server_may_close_after_tune_ok() -> None:
    server = Connection(SERVER)
    header, start_ok, tune_ok, _ = client_handshake_bytes()
    server.receive_data(header + start_ok + tune_ok)
    assert server.state is ConnectionState.AWAIT_OPEN
    server.close(530, "go away")
    assert server.state is ConnectionState.CLOSE_SENT_BY_SERVER


# Settings


def test_settings_are_checked() -> None:
    with pytest.raises(TypeError, match="unknown client settings: authenticate"):
        Connection(CLIENT, authenticate=lambda c: True)
    with pytest.raises(TypeError, match="unknown server settings: username"):
        Connection(SERVER, username="x")
    with pytest.raises(TypeError):
        Connection("client")  # type: ignore[arg-type]
    for bad, error in (
        ({"frame_max": 100}, ValueError),
        ({"frame_max": -1}, ValueError),
        ({"channel_max": 70000}, ValueError),
        ({"heartbeat": "60"}, TypeError),
        ({"heartbeat": True}, TypeError),
        ({"min_frame_size": 1024}, ValueError),
        ({"mechanism": "CRAM-MD5"}, ValueError),
        ({"username": b"guest"}, TypeError),
        ({"client_properties": [("a", 1)]}, TypeError),
        ({"secure_response": b"answer"}, TypeError),
        ({"pipelining": 1}, TypeError),
        ({"frame_max_tolerance": -8}, ValueError),
        ({"max_body_size": 1.5}, TypeError),
    ):
        with pytest.raises(error, match=f"setting {next(iter(bad))} "):
            Connection(CLIENT, **bad)
    for bad, error in (
        ({"mechanisms": 5}, TypeError),
        ({"locales": ["en_US", 1]}, TypeError),
        ({"authenticate": "yes"}, TypeError),
        ({"server_properties": "x"}, TypeError),
    ):
        with pytest.raises(error, match=f"setting {next(iter(bad))} "):
            Connection(SERVER, **bad)
    with pytest.raises(TypeError, match=r"pipelining: client only"):
        Connection(SERVER, pipelining=True)
    server = Connection(SERVER, mechanisms="PLAIN EXTERNAL", locales="en_US de_DE")
    server.receive_data(ProtocolHeader().encode())
    start = sent_methods(server.data_to_send())[0]
    assert (start.mechanisms, start.locales) == (b"PLAIN EXTERNAL", b"en_US de_DE")


def test_public_names() -> None:
    assert amqpcodec.Connection is Connection
    assert amqpcodec.events.ConnectionOpened is ConnectionOpened
    assert repr(Connection(CLIENT)).startswith("<Connection client await-start")
    assert Role.CLIENT.peer is Role.SERVER and Role.SERVER.peer is Role.CLIENT
    assert ConnectionClosed(200, "").lost and not ConnectionClosed(200, "", 0, 0, CLIENT).lost


# ---------------------------------------------------------------------------------------
# Channels


def test_channel_numbers_are_allocated_lowest_first_and_reused() -> None:
    pair = opened_pair()
    assert [pair.open_channel() for _ in range(3)] == [1, 2, 3]
    pair.client.close_channel(2)
    client_events, server_events = pair.pump()
    closed = ChannelClosed(2, 200, "", 0, 0, CLIENT)
    assert client_events == server_events == [closed]
    assert pair.client.channels == pair.server.channels == (1, 3)
    assert pair.open_channel() == 2
    assert pair.open_channel(10) == 10
    assert pair.open_channel() == 4


def test_channel_max_limits_the_numbers() -> None:
    pair = opened_pair({"channel_max": 2})
    pair.open_channel()
    pair.open_channel()
    with pytest.raises(LocalProtocolError) as info:
        pair.client.open_channel()
    assert info.value.reply_code == 530
    with pytest.raises(LocalProtocolError):
        pair.client.open_channel(3)
    assert pair.client.data_to_send() == b""


def test_server_refuses_a_channel_above_channel_max() -> None:
    server = server_opened(channel_max=5)
    error = expect_remote(server, method_bytes(6, Ch.Open()), 530)
    assert (error.class_id, error.method_id) == (20, 10)
    expect_close(server, 530, 20, 10)


def test_channel_states_through_open_and_close() -> None:
    pair = opened_pair()
    pair.client.open_channel()
    assert pair.client.channel_state(1) is ChannelState.OPENING
    assert pair.server.channel_state(1) is ChannelState.CLOSED
    pair.pump()
    assert pair.client.channel_state(1) is pair.server.channel_state(1) is ChannelState.OPEN
    pair.client.close_channel(1, 200, "bye")
    assert pair.client.channel_state(1) is ChannelState.CLOSE_SENT_BY_CLIENT
    pair.pump()
    assert pair.client.channel_state(1) is pair.server.channel_state(1) is ChannelState.CLOSED


def test_closing_a_channel_that_is_still_opening() -> None:
    pair = opened_pair()
    pair.client.open_channel()
    pair.client.close_channel(1)
    client_events, server_events = pair.pump()
    assert server_events == [ChannelOpened(1), ChannelClosed(1, 200, "", 0, 0, CLIENT)]
    assert client_events == [ChannelClosed(1, 200, "", 0, 0, CLIENT)]  # open-ok discarded


def test_peer_closes_a_channel_with_an_error() -> None:
    pair = opened_pair()
    channel = pair.open_channel()
    pair.client.send_method(channel, Q.Declare(queue="missing", passive=True))
    pair.pump()
    pair.server.close_channel(channel, 404, "NOT_FOUND - no queue 'missing'", 50, 10)
    client_events, server_events = pair.pump()
    closed = ChannelClosed(channel, 404, "NOT_FOUND - no queue 'missing'", 50, 10, SERVER)
    assert server_events == [closed]
    # The client learns which of its requests will never be answered.
    unanswered = (Q.Declare(queue="missing", passive=True),)
    assert client_events == [dataclasses.replace(closed, unanswered=unanswered)]
    assert [type(f.method) for f in pair.sent[CLIENT][-1:]] == [Ch.CloseOk]
    # The number is free, and the pending declare is forgotten with the channel.
    assert pair.open_channel() == channel
    pair.client.send_method(channel, Q.Declare(queue="q"))


def test_after_sending_close_everything_but_close_is_discarded() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.close_channel(1)
    # In flight from the server: a delivery (method, header, body) and a method.
    pair.server.send_message(1, B.Deliver("ctag", 1), None, b"body")
    pair.server.send_method(1, B.Cancel("ctag", no_wait=True))
    client_events, server_events = pair.pump()
    assert client_events == server_events == [ChannelClosed(1, 200, "", 0, 0, CLIENT)]


def test_close_after_a_partial_content_discards_the_rest() -> None:
    pair = opened_pair()
    pair.open_channel()
    data = content_bytes(1, B.Deliver("ctag", 1), b"x" * 10)
    pair.client.receive_data(data[:-5])  # method, header, part of the body frame
    pair.client.close_channel(1)
    assert pair.client.receive_data(data[-5:]) == []
    pair.transfer(CLIENT)
    assert pair.transfer(SERVER) == [ChannelClosed(1, 200, "", 0, 0, CLIENT)]


def test_simultaneous_channel_close() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.close_channel(1, 200, "client")
    pair.server.close_channel(1, 406, "server")
    assert pair.client.channel_state(1) is ChannelState.CLOSE_SENT_BY_CLIENT
    client_events, server_events = pair.pump()
    # Each side answers the other's Close and reports the other's reason.
    assert client_events == [ChannelClosed(1, 406, "server", 0, 0, SERVER)]
    assert server_events == [ChannelClosed(1, 200, "client", 0, 0, CLIENT)]
    frames = pair.sent[CLIENT] + pair.sent[SERVER]
    methods = [type(f.method) for f in frames if isinstance(f, MethodFrame)]
    assert methods.count(Ch.Close) == 2 and methods.count(Ch.CloseOk) == 2
    assert pair.client.channels == pair.server.channels == ()


def test_simultaneous_close_state_by_state() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.close_channel(1)
    pair.server.close_channel(1)
    client_bytes, server_bytes = pair.client.data_to_send(), pair.server.data_to_send()
    assert pair.client.receive_data(server_bytes) == []
    assert pair.client.channel_state(1) is ChannelState.CLOSE_OK_SENT_BY_CLIENT
    assert pair.server.receive_data(client_bytes) == []
    assert pair.server.channel_state(1) is ChannelState.CLOSE_OK_SENT_BY_SERVER
    (closed,) = pair.client.receive_data(pair.server.data_to_send())
    assert closed.closed_by is SERVER


@pytest.mark.parametrize(
    ("channel", "method", "code", "ids"),
    [
        (5, Q.Declare(), 504, (50, 10)),  # channel not open
        (1, Ch.Open(), 504, (20, 10)),  # already open
        (1, C.Blocked(), 503, (10, 60)),  # connection method on a channel
        (0, Q.Declare(), 504, (50, 10)),  # channel method on channel 0
        (0, B.Publish(), 504, (60, 40)),  # content method on channel 0
        (1, B.Deliver(), 503, (60, 60)),  # a server does not receive basic.deliver
        (1, Ch.CloseOk(), 503, (20, 41)),  # close-ok with no close
        (1, Ch.OpenOk(), 503, (20, 11)),  # a server does not receive open-ok
        (1, Q.DeclareOk(), 503, (50, 11)),  # a server does not receive declare-ok
    ],
)
def test_server_side_channel_errors(
    channel: int, method: Any, code: int, ids: tuple[int, int]
) -> None:
    server = server_opened()
    server.receive_data(method_bytes(1, Ch.Open()))
    server.data_to_send()
    error = expect_remote(server, method_bytes(channel, method), code)
    assert (error.class_id, error.method_id) == ids
    expect_close(server, code, *ids)
    with pytest.raises(LocalProtocolError):
        server.receive_data(method_bytes(1, Q.Declare()))
    with pytest.raises(LocalProtocolError):
        server.send_method(1, Q.DeclareOk())
    assert server.receive_data(b"") == []


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (HeaderFrame(0, 0).encode(), 504),  # content on channel 0 [PDF §4.2.6.1]
        (BodyFrame(0, b"x").encode(), 504),
        (HeaderFrame(1, 0).encode(), 505),  # no method before it
        (BodyFrame(1, b"x").encode(), 505),
        (HeaderFrame(2, 0).encode(), 504),  # channel 2 is not open
        (method_bytes(1, B.Deliver()) + method_bytes(1, B.Ack()), 505),  # header missing
        (
            method_bytes(1, B.Deliver())
            + HeaderFrame(1, 5).encode()
            + BodyFrame(1, b"123456").encode(),
            501,  # more body than declared
        ),
        (method_bytes(1, B.Deliver()) + HeaderFrame(1, 0, class_id=90).encode(), 505),
        (content_bytes(1, B.Deliver(), b"")[:-8] + HeartbeatFrame().encode()[:4], None),
    ],
)
def test_client_side_content_errors(data: bytes, code: int | None) -> None:
    pair = opened_pair()
    pair.open_channel()
    if code is None:
        assert pair.client.receive_data(data) == []
        return
    expect_remote(pair.client, data, code)
    assert sent_methods(pair.client.data_to_send())[0].reply_code == code


def test_max_body_size() -> None:
    pair = opened_pair({"max_body_size": 100})
    pair.open_channel()
    (message,) = pair.client.receive_data(content_bytes(1, B.Deliver(), b"x" * 100))
    assert isinstance(message, MessageReceived) and len(message.body) == 100
    expect_remote(pair.client, content_bytes(1, B.Deliver(), b"x" * 101), 501)


def test_content_interleaved_across_channels_and_heartbeats() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.open_channel()
    one = decode_all(content_bytes(1, B.Deliver("a", 1), b"one"))
    two = decode_all(content_bytes(2, B.Deliver("b", 1), b"two"))
    frames = [one[0], two[0], HeartbeatFrame(), two[1], one[1], one[2], two[2]]
    events = pair.client.receive_data(b"".join(f.encode() for f in frames))
    assert [(e.channel, e.body) for e in events] == [(1, b"one"), (2, b"two")]


def test_a_method_inside_a_content_on_the_same_channel() -> None:
    pair = opened_pair()
    pair.open_channel()
    data = method_bytes(1, B.Deliver()) + method_bytes(1, Ch.Close())
    error = expect_remote(pair.client, data, 505)
    assert (error.class_id, error.method_id) == (20, 40)


def test_channel_method_before_open_ok() -> None:
    pair = opened_pair()
    pair.client.open_channel()
    pair.client.data_to_send()
    expect_remote(pair.client, method_bytes(1, B.Deliver()), 504)


def test_local_channel_misuse_queues_nothing() -> None:
    pair = opened_pair()
    pair.open_channel()
    client, server = pair.client, pair.server
    misuse = [
        lambda: client.send_method(2, Q.Declare()),  # not open
        lambda: client.send_method(1, Ch.Open()),  # already open
        lambda: client.send_method(0, Q.Declare()),  # channel 0
        lambda: client.send_method(1, C.Blocked()),  # connection method on a channel
        lambda: client.send_method(1, B.Deliver()),  # a client does not send deliver
        lambda: client.send_method(1, B.Publish()),  # content: use send_message
        lambda: client.send_method(1, "queue.declare"),  # type: ignore[arg-type]
        lambda: client.send_method(70000, Q.Declare()),
        lambda: client.send_message(1, Q.Declare()),  # no content
        lambda: client.send_message(2, B.Publish()),  # not open
        lambda: client.send_message(1, B.Deliver()),  # wrong direction
        lambda: client.send_method(1, Q.DeclareOk()),  # answers nothing
        lambda: client.send_method(1, Ch.CloseOk()),
        lambda: client.send_method(0, C.Blocked()),  # a server sends it
        lambda: client.send_method(0, C.TuneOk()),  # the handshake is over
        lambda: server.open_channel(),  # only clients open channels
        lambda: server.send_method(1, B.GetOk()),  # content
        lambda: server.send_message(1, B.GetOk()),  # answers no basic.get
        lambda: server.send_method(1, B.GetEmpty()),
        lambda: server.send_method(0, C.UpdateSecretOk()),
    ]
    for attempt in misuse:
        with pytest.raises(LocalProtocolError):
            attempt()
    assert client.data_to_send() == server.data_to_send() == b""
    assert client.state is server.state is ConnectionState.OPEN
    assert client.channel_state(1) is server.channel_state(1) is ChannelState.OPEN


# ---------------------------------------------------------------------------------------
# Synchronous requests


def test_one_outstanding_request_per_channel() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.open_channel()
    client = pair.client
    client.send_method(1, Q.Declare(queue="a"))
    with pytest.raises(LocalProtocolError, match=r"queue\.declare on channel 1 is still waiting"):
        client.send_method(1, Q.Bind(queue="a"))
    client.send_method(1, Q.Bind(queue="a", no_wait=True))  # no reply: no wait
    client.send_method(1, B.Ack(1))  # asynchronous methods are fine
    client.send_method(2, Q.Declare(queue="b"))  # another channel
    _, server_events = pair.pump()
    assert [type(e.method) for e in server_events] == [Q.Declare, Q.Bind, B.Ack, Q.Declare]
    pair.server.send_method(1, Q.DeclareOk("a"))
    pair.server.send_method(2, Q.DeclareOk("b"))
    client_events, _ = pair.pump()
    assert client_events == [
        MethodReceived(1, Q.DeclareOk("a"), Q.Declare(queue="a")),
        MethodReceived(2, Q.DeclareOk("b"), Q.Declare(queue="b")),
    ]
    client.send_method(1, Q.Bind(queue="a"))


def test_a_reply_to_nothing_and_a_mismatched_reply() -> None:
    pair = opened_pair()
    pair.open_channel()
    expect_remote(pair.client, method_bytes(1, Q.DeclareOk()), 503)
    pair = opened_pair()
    pair.open_channel()
    pair.client.send_method(1, Q.Declare())
    pair.client.data_to_send()
    error = expect_remote(pair.client, method_bytes(1, Q.BindOk()), 505)
    assert "queue.bind-ok on channel 1 does not answer queue.declare" in str(error)
    expect_close(pair.client, 505, 50, 21)


def test_get_is_answered_by_get_ok_or_get_empty() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.send_method(1, B.Get(queue="q"))
    pair.pump()
    assert pair.client.pending_request(1) == B.Get(queue="q")
    pair.server.send_method(1, B.GetEmpty())
    assert pair.pump()[0] == [MethodReceived(1, B.GetEmpty(), B.Get(queue="q"))]
    assert pair.client.pending_request(1) is None
    pair.client.send_method(1, B.Get(queue="r"))
    pair.pump()
    properties = spec.BasicProperties(content_type="text/plain")
    pair.server.send_message(1, B.GetOk(1, message_count=0), properties, b"hello")
    get_ok = MessageReceived(1, B.GetOk(1, message_count=0), properties, b"hello")
    assert pair.pump()[0] == [dataclasses.replace(get_ok, request=B.Get(queue="r"))]
    # A delivery that follows answers nothing.
    pair.server.send_message(1, B.Deliver("c", 1), properties, b"d")
    ((event,), _) = pair.pump()
    assert isinstance(event, MessageReceived) and event.request is None


def test_the_peer_may_pipeline_requests_and_replies_go_in_order() -> None:
    server = server_opened()
    server.receive_data(method_bytes(1, Ch.Open()))
    events = server.receive_data(
        method_bytes(1, Q.Declare(queue="a")) + method_bytes(1, Q.Bind(queue="a"))
    )
    assert len(events) == 2
    with pytest.raises(LocalProtocolError, match=r"queue\.declare is waiting"):
        server.send_method(1, Q.BindOk())
    server.send_method(1, Q.DeclareOk("a"))
    server.send_method(1, Q.BindOk())
    with pytest.raises(LocalProtocolError, match="no request is waiting"):
        server.send_method(1, Q.BindOk())


def test_server_sent_cancel_without_no_wait_is_answered_by_the_client() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.server.send_method(1, B.Cancel("ctag"))
    assert pair.pump()[0] == [MethodReceived(1, B.Cancel("ctag"))]
    assert pair.server.pending_request(1) == B.Cancel("ctag")
    pair.client.send_method(1, B.CancelOk("ctag"))
    assert pair.pump()[1] == [MethodReceived(1, B.CancelOk("ctag"), B.Cancel("ctag"))]


def test_update_secret() -> None:
    pair = opened_pair()
    pair.client.send_method(0, C.UpdateSecret(b"token", "refresh"))
    with pytest.raises(LocalProtocolError):
        pair.client.send_method(0, C.UpdateSecret(b"token", "again"))
    assert pair.pump()[1] == [MethodReceived(0, C.UpdateSecret(b"token", "refresh"))]
    assert pair.client.pending_request(0) == C.UpdateSecret(b"token", "refresh")
    pair.server.send_method(0, C.UpdateSecretOk())
    update = C.UpdateSecret(b"token", "refresh")
    assert pair.pump()[0] == [MethodReceived(0, C.UpdateSecretOk(), update)]
    assert pair.client.pending_request(0) is None
    expect_remote(pair.client, method_bytes(0, C.UpdateSecretOk()), 503)


# ---------------------------------------------------------------------------------------
# Content


@pytest.mark.parametrize("size", [0, 1, 4087, 4088, 4089, 8176, 8177, 100_000])
@pytest.mark.parametrize("frame_max", [4096, 8192, 131072])
def test_bodies_are_split_at_the_negotiated_frame_max(size: int, frame_max: int) -> None:
    pair = opened_pair({"frame_max": frame_max})
    pair.open_channel()
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    properties = spec.BasicProperties(headers={"h": "v"}, delivery_mode=2)
    assert pair.client.send_message(1, B.Publish("", "rk"), properties, body) is None
    _, server_events = pair.pump()
    assert server_events == [MessageReceived(1, B.Publish("", "rk"), properties, body)]
    frames = decode_all(bytes(pair.raw[CLIENT][8:]), frame_max)  # the decoder checks too
    bodies = [f for f in frames if isinstance(f, BodyFrame)]
    assert all(len(f.encode()) <= frame_max for f in frames)
    assert [len(f.payload) for f in bodies] == [
        min(frame_max - 8, size - start) for start in range(0, size, frame_max - 8)
    ]


def test_frames_on_the_wire_never_exceed_frame_max_in_either_direction() -> None:
    pair = opened_pair({"frame_max": 4096})
    pair.open_channel()
    pair.client.send_message(1, B.Publish(), None, b"p" * 50_000)
    pair.server.send_message(1, B.Deliver("c", 1), None, b"d" * 50_000)
    pair.pump()
    for role in (CLIENT, SERVER):
        start = 8 if role is CLIENT else 0
        for frame in decode_all(bytes(pair.raw[role][start:]), 0):
            assert len(frame.encode()) <= 4096


def test_a_method_too_big_for_frame_max_is_refused() -> None:
    pair = opened_pair({"frame_max": 4096})
    pair.open_channel()
    with pytest.raises(EncodeError, match="larger than frame_max 4096"):
        pair.client.send_method(1, Q.Declare(arguments={"x": "y" * 5000}))
    with pytest.raises(EncodeError):
        pair.client.send_message(1, B.Publish(), spec.BasicProperties(headers={"x": "y" * 5000}))
    assert pair.client.data_to_send() == b""
    pair.client.send_method(1, Q.Declare(arguments={"x": "y" * 4000}))


def test_data_to_send_parts_does_not_copy_bodies() -> None:
    pair = opened_pair({"frame_max": 4096})
    pair.open_channel()
    body = b"x" * 10000
    pair.client.send_message(1, B.Publish(), None, body)
    parts = pair.client.data_to_send_parts()
    views = [p for p in parts if isinstance(p, memoryview)]
    assert [v.nbytes for v in views] == [4088, 4088, 1824] and views[0].obj is body
    assert pair.client.data_to_send_parts() == []
    pair.server.receive_data(b"".join(parts))


def test_basic_return_arrives_as_a_message() -> None:
    pair = opened_pair()
    pair.open_channel()
    returned = B.Return(312, "NO_ROUTE", "amq.direct", "nowhere")
    pair.server.send_message(1, returned, None, b"back")
    assert pair.pump()[0] == [MessageReceived(1, returned, spec.BasicProperties(), b"back")]


# ---------------------------------------------------------------------------------------
# Confirms, flow, blocked


def test_publisher_confirms() -> None:
    pair = opened_pair()
    pair.open_channel()
    client, server = pair.client, pair.server
    assert client.send_message(1, B.Publish(), None, b"before select") is None
    client.send_method(1, spec.Confirm.Select())
    tags = [client.send_message(1, B.Publish(), None, b"%d" % i) for i in range(6)]
    assert tags == [1, 2, 3, 4, 5, 6]
    _, server_events = pair.pump()
    assert [getattr(e, "confirm_tag", None) for e in server_events] == [
        None,
        None,
        1,
        2,
        3,
        4,
        5,
        6,
    ]
    server.send_method(1, spec.Confirm.SelectOk())
    server.send_method(1, B.Ack(2))
    server.send_method(1, B.Ack(2))  # again: nothing left to confirm
    server.send_method(1, B.Nack(4, multiple=True))
    server.send_method(1, B.Ack(99))  # never sent: nothing
    server.send_method(1, B.Ack(0, multiple=True))  # 0 with multiple: all
    client_events, _ = pair.pump()
    assert client_events == [
        MethodReceived(1, spec.Confirm.SelectOk(), spec.Confirm.Select()),
        Confirmed(1, (2,), True),
        Confirmed(1, (1, 3, 4), False),
        Confirmed(1, (5, 6), True),
    ]
    assert client.send_message(1, B.Publish(), None, b"") == 7


def test_confirm_tags_number_only_publishes_in_each_direction() -> None:
    # Deliveries and returns sent by the server on a confirm channel are not publishes:
    # they must not move the numbering of the publishes it receives.
    pair = opened_pair()
    pair.open_channel()
    client, server = pair.client, pair.server
    client.send_method(1, spec.Confirm.Select())
    pair.pump()
    server.send_method(1, spec.Confirm.SelectOk())
    pair.pump()
    client_tags, server_tags = [], []
    for i in range(3):
        client_tags.append(client.send_message(1, B.Publish("", "q"), None, b"%d" % i))
        _, server_events = pair.pump()
        server_tags += [e.confirm_tag for e in server_events if isinstance(e, MessageReceived)]
        assert server.send_message(1, B.Deliver("c", i + 1), None, b"d") is None
        assert server.send_message(1, B.Return(312, "NO_ROUTE", "", "q"), None, b"r") is None
        client_events, _ = pair.pump()
        assert [e.confirm_tag for e in client_events] == [None, None]
    assert client_tags == server_tags == [1, 2, 3]
    for tag in server_tags:
        server.send_method(1, B.Ack(tag))
    client_events, _ = pair.pump()
    assert client_events == [Confirmed(1, (1,)), Confirmed(1, (2,)), Confirmed(1, (3,))]


def test_deliveries_on_a_confirm_channel_leave_nothing_growing() -> None:
    pair = opened_pair()
    pair.open_channel()
    client, server = pair.client, pair.server
    client.send_method(1, spec.Confirm.Select())
    pair.pump()
    server.send_method(1, spec.Confirm.SelectOk())
    pair.pump()
    for i in range(10_000):
        server.send_message(1, B.Deliver("c", i + 1), None, b"")
    client.receive_data(server.data_to_send())
    for conn in (client, server):
        ch = conn._channels[1]
        assert (ch.publish_tag, ch.received_tag) == (0, 0)
        assert not ch.unconfirmed and not ch.unconfirmed_order and not ch.peer_requests
    # Publishes the broker confirms out of order leave nothing behind either.
    tags = [client.send_message(1, B.Publish(), None, b"") for _ in range(1000)]
    pair.pump()
    for tag in reversed(tags):
        server.send_method(1, B.Ack(tag))
    client_events, _ = pair.pump()
    assert len(client_events) == 1000
    ch = client._channels[1]
    assert not ch.unconfirmed and not ch.unconfirmed_order


def test_confirm_select_nowait_expects_no_reply() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.send_method(1, spec.Confirm.Select(nowait=True))
    pair.client.send_method(1, Q.Declare())  # no request outstanding
    assert pair.client.send_message(1, B.Publish(), None, b"") == 1
    pair.pump()
    with pytest.raises(LocalProtocolError):
        pair.server.send_method(1, spec.Confirm.SelectOk())


def test_acks_without_confirm_mode_are_plain_methods() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.send_method(1, B.Ack(5, multiple=True))
    pair.server.send_method(1, B.Nack(1))
    client_events, server_events = pair.pump()
    assert server_events == [MethodReceived(1, B.Ack(5, multiple=True))]
    assert client_events == [MethodReceived(1, B.Nack(1))]


def test_a_server_in_confirm_mode_takes_acks_as_a_consumers() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.send_method(1, spec.Confirm.Select(nowait=True))
    pair.server.send_message(1, B.Deliver("c", 1), None, b"x")
    pair.server.send_message(1, B.Deliver("c", 2), None, b"y")
    pair.pump()
    pair.client.send_method(1, B.Ack(1))
    pair.client.send_method(1, B.Nack(2, requeue=False))
    _, server_events = pair.pump()
    assert server_events == [
        MethodReceived(1, B.Ack(1)),
        MethodReceived(1, B.Nack(2, requeue=False)),
    ]
    assert pair.server.unconfirmed(1) == () and pair.server._channels[1].confirming


def test_channel_flow_from_either_side() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.server.send_method(1, Ch.Flow(active=False))
    assert pair.pump() == ([FlowChanged(1, False)], [FlowChanged(1, False)])
    with pytest.raises(LocalProtocolError, match="stopped the flow"):
        pair.client.send_message(1, B.Publish(), None, b"")
    pair.client.send_method(1, Q.Declare())  # methods still go
    pair.server.send_method(1, Ch.Flow(active=True))
    client_events, server_events = pair.pump()
    assert client_events == [FlowChanged(1, True)]
    assert server_events == [MethodReceived(1, Q.Declare()), FlowChanged(1, True)]
    pair.client.send_message(1, B.Publish(), None, b"")
    with pytest.raises(LocalProtocolError):  # queue.declare is still waiting
        pair.client.send_method(1, Ch.Flow(active=False))
    pair.server.send_method(1, Q.DeclareOk())
    pair.pump()
    pair.client.send_method(1, Ch.Flow(active=False))  # the client asks too
    client_events, server_events = pair.pump()
    assert server_events == client_events == [FlowChanged(1, False)]
    with pytest.raises(LocalProtocolError):
        pair.server.send_message(1, B.Deliver(), None, b"")


def test_flow_ok_without_flow() -> None:
    pair = opened_pair()
    pair.open_channel()
    expect_remote(pair.client, method_bytes(1, Ch.FlowOk(True)), 503)


def test_connection_blocked_and_unblocked() -> None:
    pair = opened_pair()
    pair.server.send_method(0, C.Blocked("low on memory"))
    assert pair.pump()[0] == [ConnectionBlocked("low on memory")]
    assert pair.client.blocked
    pair.open_channel()
    assert not pair.client.can_publish(1)
    with pytest.raises(LocalProtocolError, match=r"blocked publishing .*low on memory"):
        pair.client.send_message(1, B.Publish(), None, b"")  # not silently queued
    pair.client.send_method(1, B.Ack(1))  # anything but content still goes
    pair.server.send_method(0, C.Unblocked())
    assert pair.pump()[0] == [ConnectionUnblocked()]
    assert not pair.client.blocked and pair.client.can_publish(1)
    pair.client.send_message(1, B.Publish(), None, b"")


# ---------------------------------------------------------------------------------------
# Heartbeats, with a fake clock


def test_heartbeats_are_sent_at_half_the_interval_when_nothing_else_was() -> None:
    pair = opened_pair({"heartbeat": 10}, heartbeat=10)
    client = pair.client
    assert client.next_tick_at == 0.0  # tick now to start the clock
    assert client.tick(100.0) == []  # the first tick starts the clock
    assert client.data_to_send() == b""
    assert client.next_tick_at == 105.0
    assert client.tick(104.9) == []
    assert client.data_to_send() == b""
    assert client.tick(105.0) == []
    assert client.data_to_send() == HeartbeatFrame().encode()
    assert client.next_tick_at == 110.0
    assert client.tick(108.0) == [] and client.data_to_send() == b""
    pair.open_channel()  # handing bytes out counts as sending, from the tick before
    assert client.tick(109.0) == [] and client.data_to_send() == b""
    assert client.next_tick_at == 113.0
    assert client.tick(110.0) == [] and client.data_to_send() == b""  # sent after 108
    assert client.tick(112.9) == [] and client.data_to_send() == b""
    assert client.tick(113.0) == [] and client.data_to_send() == HeartbeatFrame().encode()


def test_queued_but_unsent_bytes_do_not_count_as_sent() -> None:
    pair = opened_pair({"heartbeat": 10}, heartbeat=10)
    client = pair.client
    client.tick(0.0)
    client.open_channel()  # queued, never handed out
    assert client.tick(5.0) == []
    assert client.data_to_send().endswith(HeartbeatFrame().encode())


@pytest.mark.parametrize("interval", [1, 2, 5, 60])
@pytest.mark.parametrize("role", [CLIENT, SERVER])
def test_the_peer_never_waits_an_interval_at_the_recommended_cadence(
    interval: int, role: Role
) -> None:
    # A simulated clock: one side ticks every interval/2 (the README's cadence) and its
    # bytes are written right after each tick; sometimes it also sends between ticks.
    # amqp091-go closes after 1.5 intervals of silence, the spec after 2.
    pair = opened_pair({"heartbeat": interval}, heartbeat=interval)
    pair.open_channel()
    conn = pair.conn(role)
    step = interval / 2
    writes: list[float] = []
    now = 1000.0
    conn.tick(now)
    conn.data_to_send()
    writes.append(now)
    for i in range(1, 400):
        tick_at = 1000.0 + i * step
        if i % 7 == 3:  # a method sent just after the previous tick
            send_at = tick_at - step + step * 0.01
            if role is CLIENT:
                conn.send_method(1, B.Ack(i))
            else:
                conn.send_message(1, B.Deliver("c", i), None, b"")
            assert conn.data_to_send()
            writes.append(send_at)
        conn.receive_data(HeartbeatFrame().encode())  # the peer is alive
        assert conn.tick(tick_at) == []
        if conn.data_to_send():
            writes.append(tick_at)
    gaps = [b - a for a, b in itertools.pairwise(writes)]
    assert max(gaps) <= interval


def test_next_tick_at_follows_the_deadlines() -> None:
    pair = opened_pair({"heartbeat": 4}, heartbeat=4)
    client = pair.client
    assert pair.server.next_tick_at == 0.0
    client.tick(10.0)
    assert client.next_tick_at == 12.0
    now = 10.0
    for _ in range(10):  # a loop that only ticks when told, peer silent
        now = client.next_tick_at
        events = client.tick(now)
        client.data_to_send()
        if events:
            break
    assert [type(e) for e in events] == [HeartbeatTimeout, ConnectionClosed]
    assert now == 18.0  # two intervals after the clock started
    assert client.next_tick_at is None
    off = opened_pair({"heartbeat": 0}, heartbeat=0)
    assert off.client.next_tick_at is None


def test_no_timeout_for_a_peer_whose_bytes_sit_unread_after_a_stall() -> None:
    pair = opened_pair({"heartbeat": 5}, heartbeat=5)
    client = pair.client
    client.tick(0.0)
    # The loop was busy for 30 s: the peer's heartbeats are in the socket, unread.
    assert client.tick(30.0) == []
    assert client.next_tick_at == 32.5
    client.receive_data(HeartbeatFrame().encode())  # read them: all is well
    assert client.tick(31.0) == []
    # Without anything read, the peer is gone half an interval after a stall.
    assert client.tick(60.0) == []
    assert client.tick(62.0) == []
    assert [type(e) for e in client.tick(62.5)] == [HeartbeatTimeout, ConnectionClosed]


def test_heartbeat_timeout_after_two_silent_intervals() -> None:
    pair = opened_pair({"heartbeat": 5}, heartbeat=5)
    client, server = pair.client, pair.server
    client.tick(0.0)
    server.tick(0.0)
    assert client.tick(2.5) == []
    assert client.tick(5.0) == []
    assert client.tick(7.5) == []
    assert client.tick(9.0) == []
    client.receive_data(HeartbeatFrame().encode())  # any frame counts
    assert client.tick(12.0) == []
    for now in (14.5, 17.0, 19.5, 21.0):
        assert client.tick(now) == []
    events = client.tick(22.0)
    assert events == [
        HeartbeatTimeout(10.0),
        ConnectionClosed(0, "no heartbeat or data from the peer for 10s"),
    ]
    assert events[1].lost and client.state is ConnectionState.CLOSED
    assert client.tick(100.0) == []
    for now in (2.5, 5.0, 7.5, 9.0):
        assert server.tick(now) == []  # heard nothing since 0, but 9 < 10
    assert [type(e) for e in server.tick(10.0)] == [HeartbeatTimeout, ConnectionClosed]


def test_heartbeats_keep_going_while_closing() -> None:
    pair = opened_pair({"heartbeat": 5}, heartbeat=5)
    pair.client.tick(0.0)
    pair.client.close()
    pair.client.data_to_send()
    pair.client.tick(2.0)  # the close went out since the last tick
    assert pair.client.data_to_send() == b""
    pair.client.receive_data(HeartbeatFrame().encode())
    assert pair.client.tick(4.5) == []
    assert pair.client.data_to_send() == HeartbeatFrame().encode()


def test_heartbeat_zero_disables_them() -> None:
    pair = opened_pair({"heartbeat": 0}, heartbeat=0)
    assert pair.client.heartbeat == 0
    for now in (0.0, 100.0, 1000.0):
        assert pair.client.tick(now) == []
    assert pair.client.data_to_send() == b""
    assert pair.client.receive_data(HeartbeatFrame().encode()) == []


def test_no_heartbeats_before_tuning() -> None:
    client = Connection(CLIENT)
    client.data_to_send()
    assert client.tick(0.0) == client.tick(1000.0) == []
    assert client.data_to_send() == b""


def test_heartbeat_on_a_channel_is_an_error() -> None:
    pair = opened_pair()
    expect_remote(pair.client, b"\x08\x00\x01\x00\x00\x00\x00\xce", 503)


# ---------------------------------------------------------------------------------------
# Close


def test_clean_close_from_the_client() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.close(200, "bye")
    assert pair.client.state is ConnectionState.CLOSE_SENT_BY_CLIENT
    with pytest.raises(LocalProtocolError):
        pair.client.send_method(1, Q.Declare())
    assert not pair.client.is_open
    pair.client.close()  # already closing: nothing
    pair.client.close_channel(1)  # likewise
    pair.server.send_message(1, B.Deliver(), None, b"in flight")  # discarded by the client
    client_events, server_events = pair.pump()
    closed = ConnectionClosed(200, "bye", 0, 0, CLIENT)
    assert client_events == server_events == [closed]
    assert pair.client.state is pair.server.state is ConnectionState.CLOSED
    assert pair.client.channels == pair.server.channels == ()
    with pytest.raises(LocalProtocolError, match=r"closed: the client closed it with 200 \(bye\)"):
        pair.client.send_method(0, C.Close())
    pair.client.close()  # closed: nothing
    assert pair.client.receive_data(b"") == []


def test_close_from_the_server() -> None:
    pair = opened_pair()
    pair.server.close(320, "CONNECTION_FORCED - shutdown")
    closed = ConnectionClosed(320, "CONNECTION_FORCED - shutdown", 0, 0, SERVER)
    assert pair.pump() == ([closed], [closed])


def test_close_by_send_method() -> None:
    pair = opened_pair()
    pair.client.send_method(0, C.Close(200, "x", 0, 0))
    assert pair.pump()[0] == [ConnectionClosed(200, "x", 0, 0, CLIENT)]


def test_simultaneous_connection_close() -> None:
    pair = opened_pair()
    pair.client.close(200, "client")
    pair.server.close(320, "server")
    client_events, server_events = pair.pump()
    assert client_events == [ConnectionClosed(320, "server", 0, 0, SERVER)]
    assert server_events == [ConnectionClosed(200, "client", 0, 0, CLIENT)]
    assert pair.client.state is pair.server.state is ConnectionState.CLOSED


def test_close_while_the_handshake_is_finishing() -> None:
    pair = Pair()
    for _ in range(2):
        pair.transfer(CLIENT)
        pair.transfer(SERVER)
    pair.transfer(CLIENT)  # tune-ok, open: the server is open, open-ok is in flight
    assert pair.client.state is ConnectionState.AWAIT_OPEN_OK
    pair.client.close()
    client_events, server_events = pair.pump()
    assert client_events == [ConnectionClosed(200, "", 0, 0, CLIENT)]  # open-ok discarded
    assert server_events == [ConnectionClosed(200, "", 0, 0, CLIENT)]


@pytest.mark.parametrize("after_close", [False, True])
def test_end_of_file_is_a_lost_connection(after_close: bool) -> None:
    pair = opened_pair()
    pair.open_channel()
    if after_close:
        pair.client.close()
    (closed,) = pair.client.receive_data(b"")
    assert closed.lost and closed.reply_code == 0
    assert pair.client.state is ConnectionState.CLOSED and pair.client.channels == ()
    assert pair.client.receive_data(b"") == []


def test_a_violation_while_open_queues_close_and_then_the_close_handshake_is_over() -> None:
    pair = opened_pair()
    expect_remote(pair.client, b"\x09\x00\x00\x00\x00\x00\x00\xce", 501)  # unknown frame type
    assert pair.transfer(CLIENT) == [
        ConnectionClosed(501, "FRAME_ERROR - unknown frame type 9", 0, 0, CLIENT)
    ]
    assert sent_methods(pair.server.data_to_send()) == [C.CloseOk()]


def test_unknown_method_is_not_implemented() -> None:
    pair = opened_pair()
    error = expect_remote(pair.client, b"\x01\x00\x00\x00\x00\x00\x04\x00\x0a\x00\x63\xce", 540)
    assert (error.class_id, error.method_id) == (10, 99)
    expect_close(pair.client, 540, 10, 99)


def test_reply_text_is_cut_to_255_bytes() -> None:
    pair = opened_pair()
    pair.open_channel()
    expect_remote(pair.client, method_bytes(1, Q.DeclareOk("é" * 127)), 503)
    (close,) = sent_methods(pair.client.data_to_send())
    assert len(close.reply_text.encode()) <= 255


def test_no_content_after_our_close() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.client.close()
    with pytest.raises(LocalProtocolError, match="CLOSE_SENT_BY_CLIENT"):
        pair.client.send_message(1, B.Publish(), None, b"late")
    assert sent_methods(pair.client.data_to_send()) == [C.Close(200, "", 0, 0)]


def test_garbage_after_the_peers_close_is_not_read() -> None:
    pair = opened_pair()
    data = method_bytes(0, C.Close(320, "bye", 0, 0)) + b"\x09garbage"
    assert pair.client.receive_data(data) == [ConnectionClosed(320, "bye", 0, 0, SERVER)]
    assert sent_methods(pair.client.data_to_send()) == [C.CloseOk()]


def test_frames_before_a_bad_frame_take_effect() -> None:
    pair = opened_pair()
    pair.open_channel()
    # The server's channel.close is answered even though a bad frame follows it.
    data = method_bytes(1, Ch.Close(404, "x", 50, 10)) + b"\x09" + bytes(7)
    expect_remote(pair.client, data, 501)
    assert sent_methods(pair.client.data_to_send()) == [Ch.CloseOk(), C.Close(501, ANY_TEXT)]


class _AnyText(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)

    __hash__ = str.__hash__


ANY_TEXT = _AnyText()


def test_frames_after_the_peers_close_in_the_same_read_are_dropped() -> None:
    pair = opened_pair()
    pair.open_channel()
    data = (
        method_bytes(0, C.Close(320, "bye", 0, 0))
        + content_bytes(1, B.Deliver(), b"late")
        + method_bytes(1, B.Cancel("c"))
        + method_bytes(0, C.Blocked())
    )
    assert pair.client.receive_data(data) == [ConnectionClosed(320, "bye", 0, 0, SERVER)]


def test_local_errors_name_the_reason() -> None:
    pair = opened_pair()
    pair.open_channel()
    with pytest.raises(LocalProtocolError, match=r"a client does not send basic\.deliver") as info:
        pair.client.send_message(1, B.Deliver())
    assert info.value.reply_code == 503
    with pytest.raises(LocalProtocolError, match=r"on channel 2 in state CLOSED") as info:
        pair.client.send_method(2, B.Ack(1))  # both sides send acks; channel 2 is closed
    assert info.value.reply_code == 504
    with pytest.raises(LocalProtocolError, match=r"a server does not send basic\.publish"):
        pair.server.send_message(1, B.Publish())
    with pytest.raises(LocalProtocolError, match=r"a client does not send connection\.open-ok"):
        pair.client.send_method(0, C.OpenOk())
    with pytest.raises(LocalProtocolError, match=r"cannot send connection\.open in connection"):
        pair.client.send_method(0, C.Open())


# ---------------------------------------------------------------------------------------
# Bad input: arbitrary and mutated bytes raise nothing but RemoteProtocolError

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _recorded_session(client_closes: bool) -> tuple[bytes, bytes]:
    """Both directions of a session that a fresh peer can replay by itself (the client
    only has to open channel 1 once it is open)."""
    pair = Pair({"frame_max": 4096})
    pair.handshake()
    pair.open_channel()
    properties = spec.BasicProperties(headers={"a": 1}, content_type="x")
    pair.client.send_message(1, B.Publish("", "q"), properties, b"x" * 9000)
    pair.client.send_method(1, B.Ack(1))
    if client_closes:
        pair.client.close()
    else:
        pair.server.send_message(1, B.Deliver("c", 1), properties, b"y" * 5000)
        pair.server.send_message(1, B.Return(312, "NO_ROUTE", "", "q"), None, b"")
        pair.server.send_method(1, Ch.Flow(active=False))
        pair.server.send_method(1, B.Cancel("c", no_wait=True))
        pair.pump()
        pair.server.close(320, "bye")
    pair.pump()
    return bytes(pair.raw[CLIENT]), bytes(pair.raw[SERVER])


CLIENT_STREAM = _recorded_session(client_closes=True)[0]  # a server replays this
SERVER_STREAM = _recorded_session(client_closes=False)[1]  # a client replays this


def _structural_offsets(stream: bytes) -> list[int]:
    """Offsets of every byte that is not body payload: where a mutation matters most."""
    offsets, off = list(range(8)) if stream.startswith(b"AMQP") else [], 0
    off = 8 if offsets else 0
    while off < len(stream):
        size = int.from_bytes(stream[off + 3 : off + 7], "big")
        end = off + 7 + size + 1
        if stream[off] == 3:  # a body frame: its header and end octet
            offsets += [*range(off, off + 7), end - 1]
        else:
            offsets += range(off, end)
        off = end
    return offsets


STRUCTURE = {
    CLIENT: _structural_offsets(SERVER_STREAM),  # what a client receives
    SERVER: _structural_offsets(CLIENT_STREAM),
}
# Where the server's connection.open-ok ends: the client opens its channel after it.
OPEN_OK_END = SERVER_STREAM.index(method_bytes(0, C.OpenOk())) + len(method_bytes(0, C.OpenOk()))


def _feed_only_our_errors(conn: Connection, data: bytes, cuts: list[int]) -> list[Any]:
    """Feed ``data`` in pieces; only RemoteProtocolError may come out. A client opens
    channel 1 as soon as it can, as in the recorded session."""
    events: list[Any] = []
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    for piece in [p for p in pieces if p] + [b""]:
        try:
            events += conn.receive_data(piece)
        except RemoteProtocolError:
            assert conn.state is ConnectionState.ERROR
            return events
        if conn.state is ConnectionState.CLOSED:
            return events
        if conn.role is CLIENT and conn.state is ConnectionState.OPEN and not conn.channels:
            conn.open_channel(1)
    return events


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), role=st.sampled_from([CLIENT, SERVER]))
def test_random_bytes_raise_only_remote_protocol_errors(data: bytes, role: Role) -> None:
    for conn in (Connection(role), opened_pair().conn(role)):
        _feed_only_our_errors(conn, data, [])


@settings(max_examples=300, deadline=None)
@given(
    role=st.sampled_from([CLIENT, SERVER]),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
    cuts=st.lists(st.integers(0, 30_000), max_size=5).map(sorted),
)
def test_mutated_sessions_raise_only_remote_protocol_errors(
    role: Role, flips: list[tuple[int, int]], cuts: list[int]
) -> None:
    stream = bytearray(SERVER_STREAM if role is CLIENT else CLIENT_STREAM)
    structure = STRUCTURE[role]
    for position, value in flips:  # even positions: a structural byte
        if position % 2 == 0:
            stream[structure[position // 2 % len(structure)]] = value
        else:
            stream[position % len(stream)] = value
    conn = Connection(role, frame_max=4096) if role is CLIENT else Connection(role)
    conn.data_to_send()
    cuts = sorted({OPEN_OK_END, *[c for c in cuts if c < len(stream)]})
    _feed_only_our_errors(conn, bytes(stream), cuts)


def test_the_unmutated_session_replays_cleanly() -> None:
    for cuts in ([OPEN_OK_END], list(range(7, len(SERVER_STREAM), 7))):  # any split
        client = Connection(CLIENT, frame_max=4096)
        events = _feed_only_our_errors(client, SERVER_STREAM, cuts)
        assert [type(e).__name__ for e in events] == [
            "ConnectionOpened",
            "ChannelOpened",
            "MessageReceived",
            "MessageReceived",
            "FlowChanged",
            "MethodReceived",
            "ConnectionClosed",
        ]
        assert client.state is ConnectionState.CLOSED
    server = Connection(SERVER)
    events = _feed_only_our_errors(server, CLIENT_STREAM, list(range(5, len(CLIENT_STREAM), 5)))
    assert [type(e).__name__ for e in events] == [
        "ProtocolHeaderReceived",
        "ConnectionOpened",
        "ChannelOpened",
        "MessageReceived",
        "MethodReceived",
        "ConnectionClosed",
    ]


def test_events_before_a_violation_travel_on_the_error() -> None:
    pair = opened_pair()
    channel = pair.client.open_channel()
    pair.pump()
    deliver = B.Deliver(consumer_tag="c", delivery_tag=1, routing_key="rk")
    good = content_bytes(channel, deliver, b"hello")
    bad = HeartbeatFrame().encode()[:-1] + b"\x00"  # a bad frame-end octet
    error = expect_remote(pair.client, good + bad, 501)
    assert [type(e) for e in error.events] == [MessageReceived]
    assert error.events[0].body == b"hello"


# ---------------------------------------------------------------------------------------
# Frames over frame_max: RabbitMQ's tolerance


def _oversized_body(channel: int, frame_max: int, over: int, method: Any = None) -> bytes:
    """A publish (or ``method``) whose one body frame is ``over`` bytes over frame_max."""
    body = b"b" * (frame_max - 8 + over)
    return content_bytes(channel, method or B.Publish("", "q"), body)


@pytest.mark.parametrize("over", [1, 8])
def test_the_server_takes_frames_up_to_8_bytes_over_frame_max(over: int) -> None:
    # amqpstorm splits bodies into frames of frame_max + 8 bytes; RabbitMQ takes them.
    server = server_opened()
    assert server.frame_max == 131072
    server.receive_data(method_bytes(1, Ch.Open()))
    server.data_to_send()
    (message,) = server.receive_data(_oversized_body(1, 131072, over))
    assert isinstance(message, MessageReceived) and len(message.body) == 131064 + over
    error = expect_remote(server, _oversized_body(1, 131072, 9), 501)
    assert str(error) == (
        "frame of 131081 bytes is larger than the frame_max of 131072"
        " (plus the frame_max_tolerance of 8)"
    )


def test_the_server_can_be_strict() -> None:
    server = server_opened(frame_max_tolerance=0)
    server.receive_data(method_bytes(1, Ch.Open()))
    expect_remote(server, _oversized_body(1, 131072, 1), 501)


def test_the_client_is_strict_unless_told() -> None:
    pair = opened_pair()
    pair.open_channel()
    deliver = B.Deliver("c", 1)
    expect_remote(pair.client, _oversized_body(1, 131072, 1, deliver), 501)
    pair = opened_pair({"frame_max_tolerance": 8})
    pair.open_channel()
    (message,) = pair.client.receive_data(_oversized_body(1, 131072, 8, deliver))
    assert len(message.body) == 131072


def test_the_tolerance_applies_before_tuning_too() -> None:
    server = Connection(SERVER)
    start_ok = C.StartOk({"pad": "x" * 4050}, "PLAIN", b"\0guest\0guest", "en_US")
    frame = method_bytes(0, start_ok)
    assert 4096 < len(frame) <= 4104
    server.receive_data(ProtocolHeader().encode() + frame)
    assert server.state is ConnectionState.AWAIT_TUNE_OK
    strict = Connection(SERVER, frame_max_tolerance=0)
    expect_remote(strict, ProtocolHeader().encode() + frame, 501)


# ---------------------------------------------------------------------------------------
# The body bytes held across channels


def test_bodies_held_across_channels_are_bounded() -> None:
    # 200 channels each start a message of 1 MiB and never finish it: with a budget of
    # 100 MiB, the 101st is refused with the channel error RabbitMQ gives for a message
    # it will not hold, and the budget comes back as messages finish or channels close.
    mib = 1024 * 1024
    server = server_opened(max_total_body_size=100 * mib)
    for channel in range(1, 201):
        server.receive_data(method_bytes(channel, Ch.Open()))
    server.data_to_send()
    start = b""
    for channel in range(1, 201):
        header = HeaderFrame(channel, mib, spec.BasicProperties())
        start += method_bytes(channel, B.Publish("", "q")) + header.encode()
        start += BodyFrame(channel, b"x" * 1000).encode()
    assert server.receive_data(start) == []
    closes = sent_methods(server.data_to_send())
    assert [type(m) for m in closes] == [Ch.Close] * 100
    assert {(m.reply_code, m.class_id, m.method_id) for m in closes} == {(406, 60, 40)}
    assert closes[0].reply_text.startswith("PRECONDITION_FAILED - ")
    assert server._held == 100 * mib
    assert sum(len(p.chunks) for p in server._assembler._partial.values()) == 100
    # The refused channels discard the rest of their content.
    assert server.receive_data(BodyFrame(150, b"y" * 1000).encode()) == []
    # Finishing a message and closing a channel give their share back.
    rest = b"z" * (mib - 1000)
    step = server.frame_max - 8
    frames = [BodyFrame(1, rest[i : i + step]) for i in range(0, len(rest), step)]
    (message,) = server.receive_data(b"".join(f.encode() for f in frames))
    assert isinstance(message, MessageReceived) and len(message.body) == mib
    server.close_channel(2)
    assert server._held == 98 * mib
    events = server.receive_data(method_bytes(150, Ch.CloseOk()))
    assert events == [ChannelClosed(150, 406, closes[49].reply_text, 60, 40, SERVER)]
    # With room again, a new message on a new channel is taken.
    server.receive_data(method_bytes(150, Ch.Open()))
    header = HeaderFrame(150, 2 * mib, spec.BasicProperties())
    assert server.receive_data(method_bytes(150, B.Publish()) + header.encode()) == []
    assert server._held == 100 * mib


def test_the_body_budget_is_a_setting_with_a_default() -> None:
    assert Connection(SERVER)._max_held == amqpcodec._settings.DEFAULT_MAX_TOTAL_BODY_SIZE
    with pytest.raises(ValueError, match="max_total_body_size"):
        Connection(CLIENT, max_total_body_size=-1)
    pair = opened_pair({"max_total_body_size": 10})
    pair.open_channel()
    pair.server.send_message(1, B.Deliver("c", 1), None, b"x" * 11)
    pair.server.send_message(1, B.Deliver("c", 2), None, b"x" * 10)
    client_events, server_events = pair.pump()
    assert [type(e) for e in client_events] == [ChannelClosed]
    assert server_events[0].closed_by is CLIENT and server_events[0].reply_code == 406


# ---------------------------------------------------------------------------------------
# What client and server authors build on: requests, pipelining, shutdown, confirms,
# writes and backpressure


def test_replies_carry_their_request_and_pending_request_says_what_waits() -> None:
    pair = opened_pair()
    pair.open_channel()
    client = pair.client
    assert client.pending_request(1) is None and client.pending_request(7) is None
    client.send_method(1, Q.Declare(queue="a"))
    assert client.pending_request(1) == Q.Declare(queue="a")
    pair.pump()
    pair.server.send_method(1, Q.DeclareOk("a", 0, 0))
    assert pair.pump()[0] == [MethodReceived(1, Q.DeclareOk("a", 0, 0), Q.Declare(queue="a"))]
    assert client.pending_request(1) is None
    # What answers nothing carries None: a peer's request, a delivery's ack.
    pair.server.send_method(1, B.Cancel("ctag", no_wait=True))
    assert pair.pump()[0] == [MethodReceived(1, B.Cancel("ctag", no_wait=True), None)]


def test_pipelining_is_off_by_default_and_matches_replies_in_order() -> None:
    strict = opened_pair()
    strict.open_channel()
    strict.client.send_method(1, Q.Declare(queue="a"))
    with pytest.raises(LocalProtocolError, match="pipelining=True"):
        strict.client.send_method(1, B.Qos(prefetch_count=10))
    pair = opened_pair({"pipelining": True})
    pair.open_channel()
    client = pair.client
    requests = [Q.Declare(queue="a"), B.Qos(prefetch_count=10), Q.Bind(queue="a"), B.Get("a")]
    for request in requests:
        client.send_method(1, request)
    assert client.pending_request(1) == requests[0]
    _, server_events = pair.pump()
    assert [e.method for e in server_events] == requests
    replies = [Q.DeclareOk("a", 0, 0), B.QosOk(), Q.BindOk()]
    for reply in replies:
        pair.server.send_method(1, reply)
    pair.server.send_message(1, B.GetOk(1, message_count=0), None, b"m")
    client_events, _ = pair.pump()
    assert [(e.method, e.request) for e in client_events] == list(
        zip([*replies, B.GetOk(1, message_count=0)], requests, strict=True)
    )
    assert client.pending_request(1) is None
    # A reply out of order is the peer's error, as without pipelining.
    client.send_method(1, Q.Declare(queue="b"))
    client.send_method(1, B.Qos(prefetch_count=1))
    pair.pump()
    expect_remote(client, method_bytes(1, B.QosOk()), 505)


def test_pipelined_requests_when_the_channel_closes() -> None:
    # RabbitMQ closes the channel at the first failing request and ignores the rest: the
    # replies that came before the Close are matched, the others are listed as unanswered.
    pair = opened_pair({"pipelining": True})
    pair.open_channel()
    pair.open_channel()
    client = pair.client
    sent = [Q.Declare(queue="ok"), Q.Declare(queue="x", passive=True), B.Qos(prefetch_count=5)]
    for request in sent:
        client.send_method(1, request)
    pair.pump()
    pair.server.send_method(1, Q.DeclareOk("ok", 0, 0))
    pair.server.close_channel(1, 404, "NOT_FOUND - no queue 'x'", 50, 10)
    client_events, _ = pair.pump()
    assert client_events == [
        MethodReceived(1, Q.DeclareOk("ok", 0, 0), sent[0]),
        ChannelClosed(1, 404, "NOT_FOUND - no queue 'x'", 50, 10, SERVER, (), tuple(sent[1:])),
    ]
    assert client.pending_request(1) is None
    # Our own close: whatever waits is abandoned (replies are discarded until Close-Ok).
    client.send_method(2, Q.Declare(queue="y"))
    client.send_method(2, Q.Purge(queue="y"))
    pair.transfer(CLIENT)
    client.close_channel(2)
    pair.server.send_method(2, Q.DeclareOk("y", 0, 0))  # crosses our Close: discarded
    client_events, _ = pair.pump()
    assert client_events == [
        ChannelClosed(2, 200, "", 0, 0, CLIENT, (), (Q.Declare(queue="y"), Q.Purge(queue="y")))
    ]


def test_events_are_frozen_slotted_dataclasses() -> None:
    every = amqpcodec.events.AnyEvent.__args__  # type: ignore[attr-defined]
    assert set(every) == {
        cls
        for cls in vars(amqpcodec.events).values()
        if isinstance(cls, type) and issubclass(cls, amqpcodec.events.Event)
    } - {amqpcodec.events.Event}
    for cls in every:
        assert dataclasses.is_dataclass(cls) and "__slots__" in vars(cls), cls
        assert cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]
    event = MethodReceived(1, B.Ack(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.channel = 2  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        event.extra = 1  # type: ignore[attr-defined]
    # The hot path builds MessageReceived without __init__: it must equal a built one.
    pair = opened_pair()
    pair.open_channel()
    properties = spec.BasicProperties(content_type="a/b")
    pair.server.send_message(1, B.Deliver("c", 1), properties, b"body")
    ((received,), _) = pair.pump()
    assert received == MessageReceived(1, B.Deliver("c", 1), properties, b"body", None, None)
    assert repr(received).startswith("MessageReceived(channel=1, method=")


def test_close_and_close_channel_cannot_trip() -> None:
    pair = opened_pair()
    pair.open_channel()
    pair.open_channel()
    client, server = pair.client, pair.server
    assert client.is_open and server.is_open
    client.close_channel(9)  # never opened: nothing
    client.close_channel(1)
    client.close_channel(1)  # already closing: nothing more
    pair.server.close_channel(2, 406, "PRECONDITION_FAILED - x", 60, 40)
    pair.client.close_channel(2)  # crosses the server's: both are answered
    client_events, _ = pair.pump()
    assert [type(e) for e in client_events] == [ChannelClosed, ChannelClosed]
    client.close_channel(1)  # closed: nothing
    assert client.data_to_send() == b""
    server.close(320, "CONNECTION_FORCED - shutdown")
    client.close()  # crosses it
    client.close()
    pair.pump()
    assert client.state is server.state is ConnectionState.CLOSED
    assert not client.is_open
    for conn in (client, server):
        conn.close()
        conn.close_channel(1)
        assert conn.data_to_send() == b""
    closed_by = r"closed: the server closed it with 320 \(CONNECTION_FORCED - shutdown\)"
    with pytest.raises(LocalProtocolError, match=closed_by):
        client.open_channel()
    # After a failure, and after a lost connection, the error says so too.
    failed = opened_pair()
    with pytest.raises(RemoteProtocolError):
        failed.client.receive_data(b"\x09" + bytes(7))
    failed.client.close()
    with pytest.raises(LocalProtocolError, match="protocol error: 501 "):
        failed.client.send_method(0, C.Close())
    lost = opened_pair({"heartbeat": 5}, heartbeat=5)
    lost.client.tick(100.0)
    lost.client.receive_data(b"")
    with pytest.raises(LocalProtocolError, match="closed the socket in state OPEN; the last tick"):
        lost.client.open_channel()
    timed_out = opened_pair({"heartbeat": 5}, heartbeat=5)
    timed_out.client.tick(0.0)
    timed_out.client.tick(2.5)
    timed_out.client.tick(5.0)
    timed_out.client.tick(7.5)
    timed_out.client.tick(10.0)
    with pytest.raises(LocalProtocolError, match="no heartbeat or data from the peer for 10s"):
        timed_out.client.open_channel()


def test_unconfirmed_publishes_are_reported_when_they_never_will_be() -> None:
    pair = opened_pair()
    for _ in range(3):
        pair.open_channel()
    client, server = pair.client, pair.server
    for channel in (1, 2):
        client.send_method(channel, spec.Confirm.Select())
    pair.pump()
    for channel in (1, 2):
        server.send_method(channel, spec.Confirm.SelectOk())
    pair.pump()
    for channel in (1, 2, 3):
        for _ in range(4):
            client.send_message(channel, B.Publish(), None, b"")
    pair.pump()
    server.send_method(1, B.Ack(2, multiple=True))
    server.send_method(2, B.Ack(3))
    pair.pump()
    assert client.unconfirmed(1) == (3, 4)
    assert client.unconfirmed(2) == (1, 2, 4)
    assert client.unconfirmed(3) == client.unconfirmed(9) == ()
    # RabbitMQ drops publishes that cross its Channel.Close without a word.
    client.send_message(1, B.Publish(), None, b"")
    server.close_channel(1, 406, "PRECONDITION_FAILED - x", 60, 40)
    client_events, _ = pair.pump()
    assert client_events[-1].unconfirmed == (3, 4, 5)
    assert client.unconfirmed(1) == ()
    server.close(320, "CONNECTION_FORCED - bye")
    client_events, _ = pair.pump()
    assert client_events == [
        ConnectionClosed(320, "CONNECTION_FORCED - bye", 0, 0, SERVER, {2: (1, 2, 4)})
    ]
    lost = opened_pair()
    lost.open_channel()
    lost.client.send_method(1, spec.Confirm.Select(nowait=True))
    lost.client.send_message(1, B.Publish(), None, b"")
    (closed,) = lost.client.receive_data(b"")
    assert closed.unconfirmed == {1: (1,)}


def test_data_to_send_in_pieces() -> None:
    pair = opened_pair({"frame_max": 4096})
    pair.open_channel()
    client = pair.client
    body = bytes(range(256)) * 40  # 10,240 bytes: three body frames
    client.send_message(1, B.Publish("", "q"), None, body)
    client.send_method(1, B.Ack(1))
    whole = b"".join(bytes(p) for p in list(client._out))
    assert client.bytes_to_send == len(whole)
    pieces = []
    for size in (1, 7, 100, 4096, 3, 5000, 99999):
        piece = client.data_to_send(max_bytes=size)
        assert len(piece) <= size
        pieces.append(piece)
        assert client.bytes_to_send == len(whole) - sum(map(len, pieces))
    assert b"".join(pieces) == whole and client.bytes_to_send == 0
    assert client.data_to_send(max_bytes=10) == b""
    with pytest.raises(ValueError, match="max_bytes"):
        client.send_method(1, B.Ack(2))
        client.data_to_send(max_bytes=0)


def test_data_to_send_parts_within_iov_max() -> None:
    # A 2 MiB message at frame_max 4096 is 1,033 parts; sendmsg takes at most 1,024.
    pair = opened_pair({"frame_max": 4096})
    pair.open_channel()
    client = pair.client
    body = b"x" * (2 * 1024 * 1024)
    client.send_message(1, B.Publish("", "q"), None, body)
    total = client.bytes_to_send
    assert len(client._out) > 1024
    first = client.data_to_send_parts(max_parts=1024)
    assert len(first) == 1024
    rest = client.data_to_send_parts(max_parts=1024)
    assert 0 < len(rest) < 1024 and client.data_to_send_parts() == []
    data = b"".join(bytes(p) for p in first + rest)
    assert len(data) == total
    (message,) = pair.server.receive_data(data)
    assert message.body == body
    with pytest.raises(ValueError, match="max_parts"):
        client.send_method(1, B.Ack(1))
        client.data_to_send_parts(max_parts=0)


def test_can_publish_follows_flow_and_blocking() -> None:
    pair = opened_pair()
    assert not pair.client.can_publish(1)
    pair.open_channel()
    assert pair.client.can_publish(1)
    pair.server.send_method(1, Ch.Flow(active=False))
    pair.pump()
    assert not pair.client.can_publish(1)
    pair.server.send_method(1, Ch.Flow(active=True))
    pair.pump()
    assert pair.client.can_publish(1)
    pair.client.close()
    assert not pair.client.can_publish(1)


def test_data_to_send_on_a_part_boundary_and_explicit_defaults() -> None:
    pair = opened_pair(frame_max_tolerance=None)
    assert pair.server._tolerance == 8
    pair.open_channel()
    client = pair.client
    client.send_method(1, B.Ack(1))
    client.send_method(1, B.Ack(2))
    first, second = (bytes(p) for p in client._out)
    assert client.data_to_send(max_bytes=len(first)) == first  # exactly one part
    assert client.bytes_to_send == len(second)
    assert client.data_to_send(max_bytes=len(second) + 100) == second
