"""The state tables, and every (state, input) pair of the Connection that runs them.

Three layers: the tables as data (well-formed, symmetric, every state reachable); an
exhaustive sweep that puts a client or a server into every state it can rest in and
offers it every method, from the peer and from the user, on channel 0 and on a channel;
and a Hypothesis state machine that drives a client-server pair with random operations
from both sides and random byte splits. Each step either transitions or raises one of
the library's errors, and never anything else.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from connection_pair import Pair, client_handshake_bytes, method_bytes, opened_pair
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from amqpcodec import (
    AMQPError,
    BodyFrame,
    ChannelState,
    Connection,
    ConnectionState,
    HeaderFrame,
    HeartbeatFrame,
    LocalProtocolError,
    Method,
    ProtocolHeader,
    RemoteProtocolError,
    Role,
    spec,
)
from amqpcodec._core import _RESPONSE_TYPES
from amqpcodec._state import (
    CHANNEL_TRANSITIONS,
    CONNECTION_IS_OPEN,
    CONNECTION_TRANSITIONS,
    DISCARDING,
)
from amqpcodec.events import Event

C, Ch, Q, B = spec.Connection, spec.Channel, spec.Queue, spec.Basic
CLIENT, SERVER = Role.CLIENT, Role.SERVER
CS, H = ConnectionState, ChannelState

# One plausible instance of every method: handshake methods with values a peer would use.
SAMPLES: dict[type[Method], Method] = {cls: cls() for cls in spec.METHODS.values()}
SAMPLES.update(
    {
        C.Start: C.Start(0, 9, {}, b"PLAIN AMQPLAIN", b"en_US"),
        C.StartOk: C.StartOk({}, "PLAIN", b"\0guest\0guest", "en_US"),
        C.Tune: C.Tune(2047, 131072, 60),
        C.TuneOk: C.TuneOk(2047, 131072, 60),
        C.Open: C.Open("/"),
        C.Close: C.Close(200, "bye", 0, 0),
        Ch.Close: Ch.Close(200, "bye", 0, 0),
        Ch.Flow: Ch.Flow(active=True),
        Ch.FlowOk: Ch.FlowOk(active=True),
    }
)
METHOD_CLASSES = sorted(spec.METHODS.values(), key=lambda m: m.INDEX)


# ---------------------------------------------------------------------------------------
# The tables as data


@pytest.mark.parametrize(
    ("table", "states"),
    [(CONNECTION_TRANSITIONS, ConnectionState), (CHANNEL_TRANSITIONS, ChannelState)],
)
def test_tables_are_well_formed(table: dict[Any, Any], states: Any) -> None:
    terminal = {CS.CLOSED, CS.ERROR} if states is ConnectionState else {H.CLOSED}
    assert set(table) == set(states)
    for state, row in table.items():
        for (sender, what), target in row.items():
            assert isinstance(sender, Role) and target in set(states)
            if what is not ProtocolHeader:
                # The sender is a side the spec lets send it (CHASSIS names receivers).
                assert sender.peer.value in what.CHASSIS, (state, sender, what)
        if state in terminal - {H.CLOSED}:
            assert row == {}
    # Every state is reachable from the first one.
    start = CS.AWAIT_HEADER if states is ConnectionState else H.CLOSED
    seen, todo = {start}, [start]
    while todo:
        for target in table[todo.pop()].values():
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == set(states) - {CS.ERROR}


@pytest.mark.parametrize("table", [CONNECTION_TRANSITIONS, CHANNEL_TRANSITIONS])
def test_the_close_handshake_is_the_same_from_either_side(table: dict[Any, Any]) -> None:
    states = type(next(iter(table)))

    def mirror(state: Any) -> Any:
        name = state.name
        if name.endswith("_BY_CLIENT"):
            return states[name.replace("CLIENT", "SERVER")]
        if name.endswith("_BY_SERVER"):
            return states[name.replace("SERVER", "CLIENT")]
        return state

    for state in states:
        if "CLOSE_" not in state.name:
            continue
        row = table[state]
        mirrored = {(sender.peer, what): mirror(target) for (sender, what), target in row.items()}
        assert table[mirror(state)] == mirrored


def test_open_channel_row_is_the_spec_chassis() -> None:
    row = CHANNEL_TRANSITIONS[H.OPEN]
    assert row[(CLIENT, B.Publish)] is H.OPEN and (SERVER, B.Publish) not in row
    assert row[(SERVER, B.Deliver)] is H.OPEN and (CLIENT, B.Deliver) not in row
    assert row[(CLIENT, B.Ack)] is row[(SERVER, B.Ack)] is H.OPEN  # acks and confirms
    assert row[(SERVER, B.Cancel)] is H.OPEN  # consumer cancel notification
    assert (CLIENT, Ch.Open) not in row and (CLIENT, C.Close) not in row
    assert len(row) == 54


def test_discarding_states_are_the_close_states() -> None:
    for state, roles in DISCARDING.items():
        assert "CLOSE" in state.name and roles


# ---------------------------------------------------------------------------------------
# Every (state, input) pair of a Connection


def _pair_steps(*steps: Role, client: dict[str, Any] | None = None, **server: Any) -> Pair:
    pair = Pair(client, **server)
    for sender in steps:
        pair.transfer(sender)
    return pair


def _manual_server(*chunks: bytes, **settings: Any) -> Connection:
    server = Connection(SERVER, **settings)
    for chunk in chunks:
        server.receive_data(chunk)
    return server


def _simultaneous(role: Role) -> Connection:
    pair = opened_pair()
    pair.client.close()
    pair.server.close()
    peer = pair.conn(role.peer)
    pair.conn(role).receive_data(peer.data_to_send())
    return pair.conn(role)


def _errored(role: Role) -> Connection:
    pair = opened_pair()
    conn = pair.conn(role)
    with pytest.raises(RemoteProtocolError):
        conn.receive_data(b"\x09" + bytes(7))
    return conn


def _closed(role: Role) -> Connection:
    pair = opened_pair()
    pair.client.close()
    pair.pump()
    return pair.conn(role)


header, start_ok, tune_ok, open_ = client_handshake_bytes()
CONNECTION_RECIPES: dict[tuple[Role, ConnectionState], Callable[[], Connection]] = {
    (CLIENT, CS.AWAIT_START): lambda: Connection(CLIENT),
    (CLIENT, CS.AUTHENTICATING): lambda: _pair_steps(CLIENT, SERVER).client,
    (CLIENT, CS.AWAIT_SECURE_OK): lambda: (
        _pair_steps(CLIENT, SERVER, CLIENT, SERVER, authenticate=lambda c: b"?").client
    ),
    (CLIENT, CS.AWAIT_OPEN_OK): lambda: _pair_steps(CLIENT, SERVER, CLIENT, SERVER).client,
    (CLIENT, CS.OPEN): lambda: opened_pair().client,
    (CLIENT, CS.CLOSE_SENT_BY_CLIENT): lambda: _close_sent(CLIENT),
    (CLIENT, CS.CLOSE_OK_SENT_BY_CLIENT): lambda: _simultaneous(CLIENT),
    (CLIENT, CS.CLOSED): lambda: _closed(CLIENT),
    (CLIENT, CS.ERROR): lambda: _errored(CLIENT),
    (SERVER, CS.AWAIT_HEADER): lambda: Connection(SERVER),
    (SERVER, CS.AWAIT_START_OK): lambda: _manual_server(header),
    (SERVER, CS.AWAIT_SECURE_OK): lambda: _manual_server(
        header, start_ok, authenticate=lambda c: b"?"
    ),
    (SERVER, CS.AWAIT_TUNE_OK): lambda: _manual_server(header, start_ok),
    (SERVER, CS.AWAIT_OPEN): lambda: _manual_server(header, start_ok, tune_ok),
    (SERVER, CS.OPEN): lambda: opened_pair().server,
    (SERVER, CS.CLOSE_SENT_BY_SERVER): lambda: _close_sent(SERVER),
    (SERVER, CS.CLOSE_OK_SENT_BY_SERVER): lambda: _simultaneous(SERVER),
    (SERVER, CS.CLOSED): lambda: _closed(SERVER),
    (SERVER, CS.ERROR): lambda: _errored(SERVER),
}


def _close_sent(role: Role) -> Connection:
    pair = opened_pair()
    pair.conn(role).close()
    return pair.conn(role)


def test_every_resting_state_has_a_recipe() -> None:
    for (role, state), recipe in CONNECTION_RECIPES.items():
        conn = recipe()
        assert (conn.role, conn.state) == (role, state)
    # The states nobody rests in: the other side's halves, and the moment both sent Close.
    rested = {state for _, state in CONNECTION_RECIPES}
    assert set(ConnectionState) - rested == {CS.CLOSE_SENT_BY_BOTH}


def _receive(conn: Connection, data: bytes) -> list[Event] | RemoteProtocolError:
    """Feed ``data``; the events, or the error (after checking what an error must do)."""
    state = conn.state
    queued = len(conn._out)
    try:
        events = conn.receive_data(data)
    except RemoteProtocolError as exc:
        assert state is not CS.ERROR
        assert conn.state is CS.ERROR
        closes = [p for p in conn._out[queued:] if bytes(p[:1]) == b"\x01"]
        # A Close goes out exactly when the connection was open [PDF §2.2.4] (or, before
        # it, for a refused login when the client asked for it).
        assert bool(closes) == (state in CONNECTION_IS_OPEN) or exc.reply_code == 403
        return exc
    except LocalProtocolError:
        assert state is CS.ERROR and conn._out[queued:] == []
        raise
    assert all(isinstance(e, Event) for e in events)
    return events


@pytest.mark.parametrize(("role", "state"), list(CONNECTION_RECIPES))
@pytest.mark.parametrize("channel", [0, 1])
def test_every_method_received_in_every_connection_state(
    role: Role, state: ConnectionState, channel: int
) -> None:
    peer = role.peer
    for mcls in METHOD_CLASSES:
        conn = CONNECTION_RECIPES[role, state]()
        method = SAMPLES[mcls]
        data = method_bytes(channel, method)
        if state is CS.ERROR:
            with pytest.raises(LocalProtocolError):
                conn.receive_data(data)
            continue
        outcome = _receive(conn, data)
        if state in (CS.CLOSED, CS.AWAIT_HEADER):
            assert not isinstance(outcome, RemoteProtocolError)  # dropped / header refused
            continue
        if channel:
            # Channel frames: only once the connection is open; dropped after a Close.
            if state in DISCARDING:
                assert outcome == []
            elif state is not CS.OPEN:
                assert isinstance(outcome, RemoteProtocolError), (state, mcls)
                assert outcome.reply_code == 505
            continue
        key = (peer, mcls)
        if key in CONNECTION_TRANSITIONS[state]:
            if isinstance(outcome, RemoteProtocolError):
                # Only a check of the values may refuse what the table allows.
                assert mcls is C.UpdateSecretOk, (state, mcls, outcome)
        elif state in DISCARDING and peer in DISCARDING[state]:
            assert outcome == []
        else:
            assert isinstance(outcome, RemoteProtocolError), (state, mcls)
            assert outcome.reply_code in (503, 504), outcome


@pytest.mark.parametrize(("role", "state"), list(CONNECTION_RECIPES))
def test_every_method_sent_in_every_connection_state(role: Role, state: ConnectionState) -> None:
    for mcls, channel in itertools.product(METHOD_CLASSES, (0, 1)):
        conn = CONNECTION_RECIPES[role, state]()
        conn.data_to_send()
        method = SAMPLES[mcls]
        try:
            if method.CONTENT:
                conn.send_message(channel, method, None, b"body")
            else:
                conn.send_method(channel, method)
        except LocalProtocolError:
            assert conn.state is state and conn.data_to_send() == b""
            continue
        assert channel == 0 or mcls is Ch.Open, (state, mcls)  # no channel is open here
        if channel == 0:
            assert conn.state is CONNECTION_TRANSITIONS[state][(role, mcls)]
        assert conn.data_to_send()


# Channel states, on an open connection

CHANNEL_RECIPES: dict[tuple[Role, ChannelState], Callable[[], Connection]] = {}


def _channel_recipe(role: Role, state: ChannelState) -> Callable[[], Connection]:
    def make() -> Connection:
        pair = opened_pair()
        if state is H.CLOSED:
            return pair.conn(role)
        if state is H.OPENING:
            pair.client.open_channel()
            return pair.client
        pair.open_channel()
        if state is H.OPEN:
            return pair.conn(role)
        if state.name.startswith("CLOSE_SENT"):
            pair.conn(role).close_channel(1)
            return pair.conn(role)
        pair.client.close_channel(1)
        pair.server.close_channel(1)
        pair.conn(role).receive_data(pair.conn(role.peer).data_to_send())
        return pair.conn(role)

    return make


for _role, _state in [
    (CLIENT, H.CLOSED),
    (CLIENT, H.OPENING),
    (CLIENT, H.OPEN),
    (CLIENT, H.CLOSE_SENT_BY_CLIENT),
    (CLIENT, H.CLOSE_OK_SENT_BY_CLIENT),
    (SERVER, H.CLOSED),
    (SERVER, H.OPEN),
    (SERVER, H.CLOSE_SENT_BY_SERVER),
    (SERVER, H.CLOSE_OK_SENT_BY_SERVER),
]:
    CHANNEL_RECIPES[_role, _state] = _channel_recipe(_role, _state)


@pytest.mark.parametrize(("role", "state"), list(CHANNEL_RECIPES))
def test_every_method_in_every_channel_state(role: Role, state: ChannelState) -> None:
    peer = role.peer
    for mcls in METHOD_CLASSES:
        method = SAMPLES[mcls]
        # From the peer.
        conn = CHANNEL_RECIPES[role, state]()
        assert conn.channel_state(1) is state
        conn.data_to_send()
        if method.CONTENT:
            outcome = _receive(conn, method_bytes(1, method) + HeaderFrame(1, 0).encode())
        else:
            outcome = _receive(conn, method_bytes(1, method))
        key = (peer, mcls)
        if mcls.CLASS_ID == 10:
            assert isinstance(outcome, RemoteProtocolError) and outcome.reply_code == 503
        elif key in CHANNEL_TRANSITIONS[state]:
            if isinstance(outcome, RemoteProtocolError):
                # A reply that answers no request of ours; a channel above channel_max.
                assert mcls in _RESPONSE_TYPES, (state, mcls, outcome)
                assert outcome.reply_code in (503, 505)
            else:
                # The table's target, or one step on by the connection's own reply.
                target = CHANNEL_TRANSITIONS[state][key]
                replies = (Ch.OpenOk, Ch.CloseOk, Ch.FlowOk)
                allowed = {target} | {CHANNEL_TRANSITIONS[target].get((role, r)) for r in replies}
                assert conn.channel_state(1) in allowed | {H.CLOSED}
        elif state in DISCARDING and peer in DISCARDING[state]:
            assert outcome == [] and conn.channel_state(1) is state
        else:
            assert isinstance(outcome, RemoteProtocolError), (state, mcls)
            assert outcome.reply_code in (503, 504)
        # From the user.
        conn = CHANNEL_RECIPES[role, state]()
        conn.data_to_send()
        try:
            if method.CONTENT:
                conn.send_message(1, method, None, b"")
            else:
                conn.send_method(1, method)
        except LocalProtocolError:
            assert conn.data_to_send() == b"" and conn.channel_state(1) is state
            continue
        assert (role, mcls) in CHANNEL_TRANSITIONS[state], (state, mcls)
        assert conn.channel_state(1) is CHANNEL_TRANSITIONS[state][(role, mcls)]


@pytest.mark.parametrize(("role", "state"), list(CONNECTION_RECIPES))
def test_frames_of_every_kind_in_every_state(role: Role, state: ConnectionState) -> None:
    for data in (
        HeartbeatFrame().encode(),
        HeaderFrame(1, 5).encode(),
        BodyFrame(1, b"x").encode(),
        HeaderFrame(0, 0).encode(),
        ProtocolHeader().encode(),
        b"\x01\x00\x00\x00\x00\x00\x02\x00\xce",  # a method frame too short for its ids
        b"\x01\x00\x00\xff\xff\xff\xff",  # declared size over any limit
        bytes(range(256)),
    ):
        conn = CONNECTION_RECIPES[role, state]()
        try:
            _receive(conn, data)
        except LocalProtocolError:
            assert state is CS.ERROR


# ---------------------------------------------------------------------------------------
# Random operations from both sides


CONTENT_METHODS = [B.Publish(routing_key="rk"), B.Deliver("ctag", 1), B.GetOk(1), B.Return()]
PLAIN_METHODS = [m for m in SAMPLES.values() if not m.CONTENT] + [
    Q.Declare(queue="q", no_wait=True),
    B.Consume(queue="q", no_wait=True),
    Ch.Flow(active=False),
    B.Ack(0, multiple=True),
    B.Nack(1, multiple=True),
    spec.Confirm.Select(nowait=True),
]
roles = st.sampled_from([CLIENT, SERVER])
channels = st.integers(0, 3)


class ConnectionPairMachine(RuleBasedStateMachine):
    """A client and a server joined by two byte pipes that deliver in random pieces."""

    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair({"frame_max": 4096, "heartbeat": 10}, frame_max=8192, heartbeat=10)
        self.pipes = {CLIENT: bytearray(), SERVER: bytearray()}
        self.broken = False  # garbage, EOF or a timeout: the two sides may disagree
        self.now = 0.0

    @initialize(start=st.sampled_from(["fresh", "open", "channel"]))
    def start(self, start: str) -> None:
        """Most runs start from an open connection, so that steps reach the channels."""
        if start != "fresh":
            self.pair.handshake()
        if start == "channel":
            self.pair.open_channel()

    def attempt(self, conn: Connection, action: Callable[[], object]) -> None:
        """Run a user action: it works, or raises LocalProtocolError and changes nothing."""
        state = conn.state
        queued = list(conn._out)
        channels = {n: conn.channel_state(n) for n in range(4)}
        try:
            action()
        except LocalProtocolError:
            assert conn.state is state and conn._out == queued
            assert channels == {n: conn.channel_state(n) for n in range(4)}

    @rule(sender=roles, method=st.sampled_from(PLAIN_METHODS), channel=channels)
    def send_method(self, sender: Role, method: Method, channel: int) -> None:
        conn = self.pair.conn(sender)
        self.attempt(conn, lambda: conn.send_method(channel, method))

    @rule(
        sender=roles,
        method=st.sampled_from(CONTENT_METHODS),
        channel=channels,
        size=st.sampled_from([0, 1, 4087, 4088, 4089, 10_000]),
    )
    def send_message(self, sender: Role, method: Method, channel: int, size: int) -> None:
        conn = self.pair.conn(sender)
        self.attempt(conn, lambda: conn.send_message(channel, method, None, b"b" * size))

    @rule(channel=st.none() | st.integers(1, 3))
    def open_channel(self, channel: int | None) -> None:
        self.attempt(self.pair.client, lambda: self.pair.client.open_channel(channel))

    @rule(sender=roles, channel=channels, code=st.sampled_from([200, 404, 406]))
    def close_channel(self, sender: Role, channel: int, code: int) -> None:
        conn = self.pair.conn(sender)
        self.attempt(conn, lambda: conn.close_channel(channel, code, "text"))

    @rule(sender=roles, code=st.sampled_from([200, 320, 541]))
    def close(self, sender: Role, code: int) -> None:
        conn = self.pair.conn(sender)
        before, queued = conn.state, conn.bytes_to_send
        self.attempt(conn, lambda: conn.close(code, "text"))
        if before is not CS.CLOSED and conn.state is CS.CLOSED and conn.bytes_to_send == queued:
            # During the handshake close() just ends the connection, queueing no Close
            # (what was queued before, such as Connection.Start, may still go out): the
            # peer would see the socket close.
            self.broken = True

    @rule(sender=roles)
    def flush(self, sender: Role) -> None:
        self.pipes[sender] += self.pair.conn(sender).data_to_send()

    @rule(sender=roles, size=st.integers(1, 20_000))
    def deliver(self, sender: Role, size: int) -> None:
        pipe = self.pipes[sender]
        data = bytes(pipe[:size])
        del pipe[:size]
        if data:  # b"" would mean end of file
            self.receive(sender.peer, data)

    def receive(self, receiver: Role, data: bytes) -> None:
        conn = self.pair.conn(receiver)
        if conn.state is CS.ERROR:
            with pytest.raises(LocalProtocolError):
                conn.receive_data(data or b"x")
            return
        outcome = _receive(conn, data)
        if isinstance(outcome, RemoteProtocolError):
            self.broken = True

    # Garbage and end of file end a session, so they come rarely (1 draw in 20).
    @rule(receiver=roles, data=st.binary(min_size=1, max_size=40), draw=st.integers(0, 19))
    def garbage(self, receiver: Role, data: bytes, draw: int) -> None:
        if draw == 0:
            self.broken = True
            self.receive(receiver, data)

    @rule(receiver=roles, draw=st.integers(0, 19))
    def end_of_file(self, receiver: Role, draw: int) -> None:
        if draw == 0:
            self.broken = True
            self.pair.conn(receiver).receive_data(b"")

    @rule(seconds=st.floats(0, 8))
    def tick(self, seconds: float) -> None:
        self.now += seconds
        for conn in (self.pair.client, self.pair.server):
            events = conn.tick(self.now)
            if events:
                self.broken = True

    @precondition(lambda self: not self.broken)
    @invariant()
    def quiet_sides_agree(self) -> None:
        client, server = self.pair.client, self.pair.server
        if self.pipes[CLIENT] or self.pipes[SERVER] or client._out or server._out:
            return
        if client.state is CS.AWAIT_START and server.state is CS.AWAIT_HEADER:
            return  # nothing sent yet
        assert client.state is server.state
        for channel in set(client.channels) | set(server.channels):
            assert client.channel_state(channel) is server.channel_state(channel)


ConnectionPairMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestConnectionPair = ConnectionPairMachine.TestCase


def test_the_machine_can_open_and_exchange_messages() -> None:
    """The machine's parts, in the order that completes a session."""
    machine = ConnectionPairMachine()
    for _ in range(4):
        machine.flush(CLIENT)
        machine.deliver(CLIENT, 100_000)
        machine.flush(SERVER)
        machine.deliver(SERVER, 100_000)
    assert machine.pair.client.state is CS.OPEN
    machine.open_channel(None)
    machine.flush(CLIENT)
    machine.deliver(CLIENT, 100_000)
    machine.flush(SERVER)
    machine.deliver(SERVER, 100_000)
    machine.send_message(CLIENT, B.Publish(), 1, 10_000)
    machine.flush(CLIENT)
    machine.deliver(CLIENT, 100_000)
    machine.quiet_sides_agree()
    assert isinstance(AMQPError(), Exception)
