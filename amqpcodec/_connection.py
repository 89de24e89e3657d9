"""The sans-IO Connection: AMQP's state and bytes for a client or a server, no I/O.

How this works: you own the socket and the clock. Feed what you read to
:meth:`Connection.receive_data` and act on the events it returns; write what
:meth:`Connection.data_to_send` returns; call :meth:`Connection.tick` now and then for
heartbeats. What you ask for (``send_method``, ``send_message``, ``open_channel``,
``close``) is checked against the state tables in :mod:`amqpcodec._state` and queued.

Incoming bytes go FrameDecoder -> frames -> (state check) -> ContentAssembler -> events.
The handshake and the bookkeeping replies (StartOk, Tune, Open-Ok, Channel.Open-Ok,
Close-Ok, Flow-Ok) are answered here, so a user sees ``ConnectionOpened`` instead of
the eight methods before it. Everything else arrives as an event.

Errors have two sides, as in h11. What the peer does wrong raises
:class:`RemoteProtocolError` with the reply code for it; once the connection is open the
matching Connection.Close is queued (before that the spec wants the socket closed
without one [PDF §2.2.4]), and the connection stays in the ERROR state. What *you* ask
for wrongly raises :class:`LocalProtocolError` and changes nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias, overload

from . import spec
from ._base import Method, Properties
from ._content import ContentAssembler
from ._errors import DecodeError, EncodeError, LocalProtocolError, RemoteProtocolError
from ._events import (
    AnyEvent,
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
from ._frames import (
    BodyFrame,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    MethodFrame,
    ProtocolHeader,
    encode_message_parts,
)
from ._settings import (
    ClientSettings,
    CommonSettings,
    Credentials,
    ServerSettings,
    check_settings,
    peer_properties,
)
from ._state import (
    CHANNEL_CLOSING,
    CHANNEL_TRANSITIONS,
    CONNECTION_CLOSING,
    CONNECTION_IS_OPEN,
    CONNECTION_TRANSITIONS,
    DISCARDING,
    ChannelState,
    ConnectionState,
    Role,
)
from ._wire import encode_table

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Connection", "Credentials"]

Buffer: TypeAlias = bytes | bytearray | memoryview

C = spec.Connection
Ch = spec.Channel
CS = ConnectionState
H = ChannelState
# The hot paths compare against these: an enum member looked up on its class costs
# more than a module global (Python 3.11 goes through the enum's descriptor).
_CS_OPEN: Final = CS.OPEN
_H_OPEN: Final = H.OPEN

_HEARTBEAT_BYTES: Final = HeartbeatFrame().encode()
_HEADER_BYTES: Final = ProtocolHeader().encode()
# RabbitMQ also takes the 0-9 header and speaks 0-9-1 [rabbit_reader version_negotiation].
_ACCEPTED_HEADERS: Final = frozenset({_HEADER_BYTES, b"AMQP\x01\x01\x00\x09"})
_MAX_CHANNEL: Final = 65535

# Channel.Open/Open-Ok/Close/Close-Ok are the table's business; every other method that
# names responses is a synchronous request whose reply is matched in code.
_LIFECYCLE: Final = frozenset({Ch.Open, Ch.OpenOk, Ch.Close, Ch.CloseOk})
_RESPONSE_TYPES: Final = frozenset(
    response
    for method in spec.METHODS.values()
    if method.CLASS_ID != C.CLASS_ID and method not in _LIFECYCLE
    for response in method.RESPONSES
) | {C.UpdateSecretOk}
# confirm.select calls its no-wait bit "nowait"; every other method "no_wait".
_NO_WAIT: Final = {
    method: next((name for name in method.FIELDS if name in ("no_wait", "nowait")), None)
    for method in spec.METHODS.values()
}

_new = object.__new__


def _nbytes(part: Buffer) -> int:
    return part.nbytes if isinstance(part, memoryview) else len(part)


def _expects_reply(method: Method) -> bool:
    """A request the peer must answer: it names responses and no-wait is not set."""
    if not method.RESPONSES:
        return False
    flag = _NO_WAIT[type(method)]
    return flag is None or not getattr(method, flag)


def _pick(ours: int, theirs: int) -> int:
    """Tuning as RabbitMQ's own clients do it: 0 on either side means the other value,
    otherwise the smaller one [rmq-docs:heartbeats; java negotiatedMaxValue]."""
    return max(ours, theirs) if ours == 0 or theirs == 0 else min(ours, theirs)


def _words(value: bytes | str) -> list[str]:
    """Connection.Start's mechanisms and locales: space-separated longstrs."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "replace")
    return value.split()


def _reply_text(code: int, message: str) -> str:
    """Reply text as RabbitMQ writes it, ``NAME - explanation``, cut to 255 bytes."""
    try:
        name = spec.ReplyCode(code).name
    except ValueError:
        name = str(code)
    text = f"{name} - {message}"
    raw = text.encode("utf-8")
    return text if len(raw) <= 255 else raw[:255].decode("utf-8", "ignore")


@dataclass(slots=True, eq=False)
class _Channel:
    state: ChannelState
    requests: deque[Method] = field(default_factory=deque)
    """Our synchronous requests waiting for their replies, in order (one at a time unless
    the ``pipelining`` setting is on)."""
    content_request: Method | None = None
    """The Basic.Get that the Basic.GetOk being assembled answers."""
    peer_requests: deque[Method] = field(default_factory=deque)
    """The peer's requests we have not answered yet, in order (RabbitMQ allows pipelining)."""
    close_sent: Method | None = None
    close_received: Method | None = None
    paused: bool = False
    """The peer sent Channel.Flow(active=False): we must not send it content."""
    confirming: bool = False
    # Only Basic.Publish is numbered, and each direction on its own [rmq-docs:confirms]:
    # ``publish_tag`` counts the publishes we sent, ``received_tag`` those we received.
    publish_tag: int = 0
    received_tag: int = 0
    unconfirmed: set[int] = field(default_factory=set)
    """Tags of our publishes not yet acked or nacked (a client's; a server sends none)."""
    unconfirmed_order: deque[int] = field(default_factory=deque)
    """The same tags in order, for ``multiple`` acks; confirmed tags leave from the front."""


class Connection:
    """One AMQP 0-9-1 connection, client or server side, without I/O.

    ``Connection(Role.CLIENT, username=..., password=..., virtual_host=...)`` queues the
    protocol header at once; ``Connection(Role.SERVER, authenticate=...)`` waits for it.
    See the README for every setting.
    """

    @overload
    def __init__(self, role: Literal[Role.CLIENT], **settings: Unpack[ClientSettings]) -> None: ...
    @overload
    def __init__(self, role: Literal[Role.SERVER], **settings: Unpack[ServerSettings]) -> None: ...
    @overload
    def __init__(self, role: Role, **settings: Unpack[CommonSettings]) -> None: ...
    def __init__(self, role: Role, **settings: Any) -> None:
        if not isinstance(role, Role):
            raise TypeError(f"role must be Role.CLIENT or Role.SERVER, not {role!r}")
        self._role = role
        self._peer = role.peer
        # What each side may send on an open channel, for the fast paths.
        self._content_out = _CONTENT_BY[role]
        self._plain_in = _PLAIN_BY[role.peer]
        self._settings = s = check_settings(role, settings)
        self._pipelining = s.pipelining
        self._state = CS.AWAIT_HEADER
        self._tolerance: int = s.frame_max_tolerance  # type: ignore[assignment]
        self._decoder = FrameDecoder(max_frame_size=s.min_frame_size + self._tolerance)
        self._assembler = ContentAssembler(s.max_body_size)
        # The declared body sizes of the messages being assembled, across channels.
        self._held = 0
        self._max_held = s.max_total_body_size
        self._out: list[Buffer] = []
        self._channels: dict[int, _Channel] = {}
        self._ch0 = _Channel(H.OPEN)  # sync bookkeeping for connection.update-secret
        # Before tuning, frames are limited to the minimum frame size [XML connection.tune
        # frame-max]; after it, to the negotiated frame_max (0: no limit).
        self._frame_max = s.min_frame_size
        self._channel_max = 0
        self._heartbeat = 0
        self._virtual_host = s.virtual_host
        self._peer_properties: Mapping[str, Any] = {}
        self._credentials: Credentials | None = None
        self._close_sent: Method | None = None
        self._close_received: Method | None = None
        self._blocked = False
        self._blocked_reason = ""
        self._end = ""  # how the connection ended, for the errors of later calls
        self._header = bytearray()
        # Until tuning, frame boundaries are walked here too (see _receive_untuned).
        self._untuned = True
        self._walk_head = bytearray()
        self._walk_left = 0
        # Heartbeat clock: activity flags are turned into times by tick(now). "Sent" means
        # handed out by data_to_send(_parts), not queued: bytes count once they can leave.
        self._sent_since_tick = False
        self._received_since_tick = False
        self._last_tick: float | None = None
        self._last_sent: float | None = None
        self._last_received: float | None = None
        properties = peer_properties(role, s.client_properties or s.server_properties)
        if role is Role.CLIENT:
            self._start_ok = C.StartOk(properties, s.mechanism, self._sasl_response(), s.locale)
            self._check_frame_size(MethodFrame(0, self._start_ok).encode(), self._start_ok)
            self._queue(_HEADER_BYTES)
            self._state = CONNECTION_TRANSITIONS[self._state][(Role.CLIENT, ProtocolHeader)]
        else:
            self._start = C.Start(
                0,
                9,
                properties,
                " ".join(s.mechanisms).encode(),
                " ".join(s.locales).encode(),
            )
            self._check_frame_size(MethodFrame(0, self._start).encode(), self._start)

    # -----------------------------------------------------------------------------------
    # Read-only state

    @property
    def role(self) -> Role:
        return self._role

    @property
    def state(self) -> ConnectionState:
        """Where the connection is (see :class:`ConnectionState`)."""
        return self._state

    @property
    def frame_max(self) -> int:
        """The largest frame either side may send, header and end octet included: the
        minimum frame size until tuning, then the negotiated value (0: no limit)."""
        return self._frame_max

    @property
    def channel_max(self) -> int:
        """The negotiated highest channel number (0: no limit, or not tuned yet)."""
        return self._channel_max

    @property
    def heartbeat(self) -> int:
        """The negotiated heartbeat interval in seconds (0: none, or not tuned yet)."""
        return self._heartbeat

    @property
    def peer_properties(self) -> Mapping[str, Any]:
        """The peer's server-properties or client-properties table."""
        return self._peer_properties

    @property
    def credentials(self) -> Credentials | None:
        """Server role: what the client authenticated with."""
        return self._credentials

    @property
    def blocked(self) -> bool:
        """Client role: the broker sent Connection.Blocked and not yet Unblocked."""
        return self._blocked

    @property
    def channels(self) -> tuple[int, ...]:
        """The channel numbers in use (opening, open or closing), in order."""
        return tuple(sorted(self._channels))

    def channel_state(self, channel: int) -> ChannelState:
        """The state of one channel; a number not in use is CLOSED."""
        ch = self._channels.get(channel)
        return H.CLOSED if ch is None else ch.state

    @property
    def is_open(self) -> bool:
        """Whether methods can be sent: the handshake is done and no Close was sent or
        received, nor the connection lost or failed."""
        return self._state is CS.OPEN

    def pending_request(self, channel: int) -> Method | None:
        """Our oldest synchronous request on ``channel`` (0: Connection.UpdateSecret) that
        is still waiting for its reply, or None."""
        ch = self._ch0 if channel == 0 else self._channels.get(channel)
        return ch.requests[0] if ch is not None and ch.requests else None

    def unconfirmed(self, channel: int) -> tuple[int, ...]:
        """The tags of our publishes on ``channel`` not yet acked or nacked, in order."""
        ch = self._channels.get(channel)
        return tuple(sorted(ch.unconfirmed)) if ch is not None else ()

    def can_publish(self, channel: int) -> bool:
        """Whether ``send_message`` would take a Basic.Publish on ``channel`` now: the
        connection and channel are open, the broker has not blocked the connection
        (Connection.Blocked) nor stopped the channel's flow (Channel.Flow)."""
        ch = self._channels.get(channel)
        return (
            ch is not None
            and ch.state is H.OPEN
            and self._state is CS.OPEN
            and not ch.paused
            and not self._blocked
        )

    def __repr__(self) -> str:
        return (
            f"<Connection {self._role.value} {self._state.value}"
            f" channels={len(self._channels)} frame_max={self._frame_max}>"
        )

    # -----------------------------------------------------------------------------------
    # Output

    def data_to_send(self, max_bytes: int | None = None) -> bytes:
        """What is queued to go out, as one ``bytes``: everything, or at most
        ``max_bytes`` (the rest stays queued, for a socket that takes only so much)."""
        out = self._out
        if not out:
            return b""
        self._sent_since_tick = True
        if max_bytes is None:
            self._out = []
            return b"".join(out)
        return b"".join(self._take_bytes(max_bytes))

    def data_to_send_parts(self, max_parts: int | None = None) -> list[Buffer]:
        """What is queued, as a list of buffers, without joining them: everything, or the
        first ``max_parts`` (``socket.sendmsg`` takes at most IOV_MAX, 1024 on Linux).
        Message bodies appear as given to send_message (or memoryview slices of them), so
        keep bodies unchanged until written. For ``sendmsg`` or ``writer.writelines``."""
        out = self._out
        if not out:
            return []
        self._sent_since_tick = True
        if max_parts is None or max_parts >= len(out):
            self._out = []
            return out
        if not isinstance(max_parts, int) or max_parts < 1:
            raise ValueError(f"max_parts must be an int >= 1, not {max_parts!r}")
        self._out = out[max_parts:]
        return out[:max_parts]

    @property
    def bytes_to_send(self) -> int:
        """How many bytes are queued to go out."""
        return sum(len(part) if part.__class__ is bytes else _nbytes(part) for part in self._out)

    def _take_bytes(self, max_bytes: int) -> list[Buffer]:
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be an int >= 1, not {max_bytes!r}")
        out = self._out
        taken: list[Buffer] = []
        left = max_bytes
        for index, part in enumerate(out):
            size = _nbytes(part)
            if size > left:
                view = memoryview(part).cast("B")
                taken.append(view[:left])
                out[: index + 1] = [view[left:]]
                return taken
            taken.append(part)
            left -= size
            if not left:
                del out[: index + 1]
                return taken
        out.clear()
        return taken

    def _queue(self, data: bytes) -> None:
        self._out.append(data)

    # -----------------------------------------------------------------------------------
    # Sending

    def send_method(self, channel: int, method: Method) -> None:
        """Queue a method without content on ``channel`` (0 for connection methods)."""
        self._check_can_send()
        if not isinstance(method, Method):
            raise LocalProtocolError(f"{method!r} is not an AMQP method")
        if method.CONTENT:
            raise LocalProtocolError(f"{method.NAME} carries content: use send_message")
        if channel == 0:
            self._send_connection_method(method)
        else:
            self._send_channel_method(channel, method)

    def send_message(
        self,
        channel: int,
        method: Method,
        properties: Properties | None = None,
        body: Buffer = b"",
    ) -> int | None:
        """Queue a method with content, split into body frames at the negotiated frame_max.

        Returns the publish sequence number (the delivery tag the broker will confirm)
        for a Basic.Publish on a channel in confirm mode, else None: deliveries, returns
        and get-oks are never numbered. The body is not copied: keep it unchanged until
        the data is sent.
        """
        mcls = method.__class__
        ch = self._channels.get(channel)
        if (
            mcls not in self._content_out
            or ch is None
            or ch.state is not _H_OPEN
            or self._state is not _CS_OPEN
            or ch.paused
            or mcls is _GET_OK
            or (self._blocked and mcls is _PUBLISH)
        ):
            self._check_message(channel, ch, method)  # raises, or passes a valid get-ok
        parts = encode_message_parts(channel, method, properties, body, self._frame_max)
        self._out += parts
        if mcls is _GET_OK:
            ch.peer_requests.popleft()  # type: ignore[union-attr]
        elif mcls is _PUBLISH and ch.confirming:  # type: ignore[union-attr]
            assert ch is not None
            ch.publish_tag = tag = ch.publish_tag + 1
            ch.unconfirmed.add(tag)
            ch.unconfirmed_order.append(tag)
            return tag
        return None

    def _check_message(self, channel: int, ch: _Channel | None, method: Method) -> None:
        """The checks of send_message, spelled out (its fast path tests them all at once)."""
        self._check_can_send()
        if not isinstance(method, Method) or not method.CONTENT:
            raise LocalProtocolError(f"{method!r} carries no content: use send_method")
        if self._state is not CS.OPEN:
            raise LocalProtocolError(
                f"cannot send {method.NAME}: the connection is {self._state.name}, not OPEN",
                spec.CHANNEL_ERROR,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if ch is None or ch.state is not H.OPEN:
            raise self._local_channel_error(channel, method)
        if type(method) not in self._content_out:
            raise self._local_direction_error(method)
        if ch.paused:
            raise LocalProtocolError(
                f"the peer stopped the flow of content on channel {channel} (channel.flow);"
                " wait for FlowChanged(active=True)",
                spec.COMMAND_INVALID,
            )
        if self._blocked and type(method) is _PUBLISH:
            raise LocalProtocolError(
                f"the broker blocked publishing on this connection (connection.blocked:"
                f" {self._blocked_reason or 'no reason given'}); wait for ConnectionUnblocked",
                spec.COMMAND_INVALID,
            )
        if type(method) is _GET_OK:  # basic.get-ok answers the peer's basic.get
            self._check_response(channel, ch, method)

    def open_channel(self, channel: int | None = None) -> int:
        """Client role: queue Channel.Open on ``channel``, or on the lowest free number
        between 1 and channel_max. ChannelOpened follows when Open-Ok arrives."""
        self._check_can_send()
        if channel is None:
            channel = 1
            while channel in self._channels:
                channel += 1
            limit = self._channel_max or _MAX_CHANNEL
            if channel > limit:
                raise LocalProtocolError(
                    f"all channel numbers 1..{limit} are in use", spec.NOT_ALLOWED, 20, 10
                )
        self._send_channel_method(channel, Ch.Open())
        return channel

    def close_channel(
        self,
        channel: int,
        reply_code: int = spec.REPLY_SUCCESS,
        reply_text: str = "",
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        """Queue Channel.Close; ChannelClosed follows when Close-Ok arrives. Until then
        everything the peer sends on the channel except Close is discarded. On a channel
        that is already closing or closed, or a connection that is, this does nothing."""
        ch = self._channels.get(channel)
        if self._state is not CS.OPEN or ch is None or ch.state in CHANNEL_CLOSING:
            return
        self._send_channel_method(channel, Ch.Close(reply_code, reply_text, class_id, method_id))

    def close(
        self,
        reply_code: int = spec.REPLY_SUCCESS,
        reply_text: str = "",
        class_id: int = 0,
        method_id: int = 0,
    ) -> None:
        """Queue Connection.Close; ConnectionClosed follows when Close-Ok arrives.

        On a connection that is already closing, closed or failed this does nothing.
        During the handshake, where the protocol has no Close (before the client sent
        Connection.Open [PDF §2.2.4]), it ends the connection at once, queueing nothing:
        close the socket.
        """
        state = self._state
        if state is CS.CLOSED or state is CS.ERROR or state in CONNECTION_CLOSING:
            return
        if (self._role, C.Close) not in CONNECTION_TRANSITIONS[state]:
            self._state = CS.CLOSED
            self._channels.clear()
            self._ended(f"close() during the handshake, in state {state.name}")
            return
        self._send_connection_method(C.Close(reply_code, reply_text, class_id, method_id))

    def _ended(self, how: str) -> None:
        """Note how the connection ended (the first time), for later errors."""
        if not self._end:
            when = f"; the last tick was at {self._last_tick:g}" if self._last_tick else ""
            self._end = how + when

    def _check_can_send(self) -> None:
        if self._state is CS.ERROR:
            raise LocalProtocolError(f"the connection failed with a protocol error: {self._end}")
        if self._state is CS.CLOSED:
            raise LocalProtocolError(f"the connection is closed: {self._end}")

    def _check_frame_size(self, frame: bytes, method: Method) -> None:
        limit = self._frame_max
        if limit and len(frame) > limit:
            raise EncodeError(
                f"{method.NAME} frame of {len(frame)} bytes is larger than frame_max {limit}",
                "frame_max",
                limit,
            )

    def _encode(self, channel: int, method: Method) -> bytes:
        frame = MethodFrame(channel, method).encode()
        self._check_frame_size(frame, method)
        return frame

    def _send_connection_method(self, method: Method) -> None:
        mcls = type(method)
        if method.CLASS_ID != C.CLASS_ID:
            raise LocalProtocolError(
                f"{method.NAME} belongs on a channel, not channel 0",
                spec.CHANNEL_ERROR,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        next_state = CONNECTION_TRANSITIONS[self._state].get((self._role, mcls))
        if next_state is None:
            if self._peer.value not in method.CHASSIS:  # CHASSIS names the receivers
                raise self._local_direction_error(method)
            raise LocalProtocolError(
                f"cannot send {method.NAME} in connection state {self._state.name}",
                spec.CHANNEL_ERROR,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        ch0 = self._ch0
        if mcls is C.UpdateSecretOk:
            self._check_response(0, ch0, method)
        elif mcls is C.UpdateSecret and ch0.requests:
            raise self._outstanding(0, ch0.requests[0], method)
        frame = self._encode(0, method)
        # Nothing raised: commit.
        self._queue(frame)
        self._state = next_state
        if mcls is C.UpdateSecretOk:
            ch0.peer_requests.popleft()
        elif mcls is C.UpdateSecret:
            ch0.requests.append(method)
        elif mcls is C.Close:
            self._close_sent = method

    def _send_channel_method(self, channel: int, method: Method) -> None:
        if not isinstance(channel, int) or not 1 <= channel <= _MAX_CHANNEL:
            raise LocalProtocolError(f"channel {channel!r} is not between 1 and 65535")
        mcls = type(method)
        if method.CLASS_ID == C.CLASS_ID:
            raise LocalProtocolError(
                f"{method.NAME} belongs on channel 0, not channel {channel}",
                spec.COMMAND_INVALID,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if self._state is not CS.OPEN:
            raise LocalProtocolError(
                f"cannot send {method.NAME}: the connection is {self._state.name}, not OPEN",
                spec.CHANNEL_ERROR,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        ch = self._channels.get(channel)
        state = H.CLOSED if ch is None else ch.state
        next_state = CHANNEL_TRANSITIONS[state].get((self._role, mcls))
        if next_state is None:
            if self._peer.value not in method.CHASSIS:  # CHASSIS names the receivers
                raise self._local_direction_error(method)
            raise self._local_channel_error(channel, method)
        if mcls is Ch.Open:
            limit = self._channel_max or _MAX_CHANNEL
            if channel > limit:
                raise LocalProtocolError(
                    f"channel {channel} is above channel_max {limit}", spec.NOT_ALLOWED, 20, 10
                )
        is_response = mcls in _RESPONSE_TYPES
        is_request = not is_response and mcls not in _LIFECYCLE and _expects_reply(method)
        if ch is not None:
            if is_response:
                self._check_response(channel, ch, method)
            elif is_request and ch.requests and not self._pipelining:
                raise self._outstanding(channel, ch.requests[0], method)
        frame = self._encode(channel, method)
        # Nothing raised: commit.
        self._queue(frame)
        if ch is None:  # channel.open
            self._channels[channel] = _Channel(next_state)
            return
        ch.state = next_state
        if is_response:
            ch.peer_requests.popleft()
        elif is_request:
            ch.requests.append(method)
        if mcls is Ch.Close:
            # The requests still waiting will get no reply: ChannelClosed lists them.
            ch.close_sent = method
            self._discard_content(channel)
        elif mcls is spec.Confirm.Select:
            # RabbitMQ numbers the publishes that follow the select, whether or not
            # select-ok has arrived yet [rmq-docs:confirms].
            ch.confirming = True

    def _send_auto(self, channel: int, ch: _Channel | None, method: Method) -> None:
        """Queue one of the replies the connection makes by itself (Open-Ok, Close-Ok,
        Flow-Ok, the handshake), stepping the same tables as any other send."""
        mcls = type(method)
        if channel == 0:
            self._queue(self._encode(0, method))
            self._state = CONNECTION_TRANSITIONS[self._state][(self._role, mcls)]
        else:
            assert ch is not None
            self._queue(self._encode(channel, method))
            ch.state = CHANNEL_TRANSITIONS[ch.state][(self._role, mcls)]

    def _check_response(self, channel: int, ch: _Channel, method: Method) -> None:
        requests = ch.peer_requests
        if not requests or type(method) not in requests[0].RESPONSES:
            waiting = f"{requests[0].NAME} is waiting" if requests else "no request is waiting"
            raise LocalProtocolError(
                f"{method.NAME} on channel {channel} answers nothing: {waiting}",
                spec.COMMAND_INVALID,
                method.CLASS_ID,
                method.METHOD_ID,
            )

    def _outstanding(self, channel: int, request: Method, method: Method) -> LocalProtocolError:
        return LocalProtocolError(
            f"{request.NAME} on channel {channel} is still waiting for its reply; send"
            f" {method.NAME} after it arrives, or with no_wait (or set pipelining=True)",
            spec.COMMAND_INVALID,
            method.CLASS_ID,
            method.METHOD_ID,
        )

    def _local_direction_error(self, method: Method) -> LocalProtocolError:
        return LocalProtocolError(
            f"a {self._role.value} does not send {method.NAME}",
            spec.COMMAND_INVALID,
            method.CLASS_ID,
            method.METHOD_ID,
        )

    def _local_channel_error(self, channel: int, method: Method) -> LocalProtocolError:
        state = self.channel_state(channel)
        return LocalProtocolError(
            f"cannot send {method.NAME} on channel {channel} in state {state.name}",
            spec.CHANNEL_ERROR,
            method.CLASS_ID,
            method.METHOD_ID,
        )

    # -----------------------------------------------------------------------------------
    # Receiving

    def receive_data(self, data: Buffer) -> list[AnyEvent]:
        """Take bytes read from the socket; ``b""`` means the peer closed it.

        Returns the events they complete. A protocol violation raises
        RemoteProtocolError (carrying in ``events`` those of this call before it), queues
        Connection.Close if the connection was open, and leaves it in the ERROR state.
        """
        state = self._state
        if state is CS.ERROR:
            if not data:
                return []
            raise LocalProtocolError(
                f"the connection failed with a protocol error earlier: {self._end}"
            )
        if not data:
            return self._end_of_input()
        self._received_since_tick = True
        if state is CS.CLOSED:
            return []  # nothing is expected after the close; drop it
        events: list[AnyEvent] = []
        try:
            if state is CS.AWAIT_HEADER:
                data = self._receive_header(data, events)
                if not data:
                    return events
            if self._untuned:
                data = self._receive_untuned(data, events)
                if not data:
                    return events
            try:
                frames: list[Any] = self._decoder.feed(data)
            except DecodeError as exc:
                # The frames before the bad one still count: a Close among them ends
                # the connection cleanly, and whatever follows a close is not read.
                self._receive_frames(exc.frames, events)
                if self._state is CS.CLOSED:
                    return events
                self._explain_size(exc)
                raise
            self._receive_frames(frames, events)
        except RemoteProtocolError as exc:
            exc.events = events
            self._fail(exc)
            raise
        return events

    def _receive_untuned(self, data: Buffer, events: list[AnyEvent]) -> Buffer:
        """Before tuning, give the decoder one whole frame at a time, so that the frames
        that follow Tune / Tune-Ok in the same read are held to the negotiated frame_max
        rather than the minimum: any split of the input gives the same result. Returns
        the bytes left once tuned (or nothing)."""
        view = memoryview(data).cast("B")
        size = len(view)
        start = pos = 0
        head = self._walk_head  # the header of the frame being walked, up to 7 bytes
        while pos < size:
            if len(head) < 7:
                take = min(7 - len(head), size - pos)
                head += view[pos : pos + take]
                pos += take
                if len(head) < 7:
                    break
                # A protocol header (a server refusing ours) is 8 bytes; a frame is its
                # declared size plus 8 (the decoder judges that size, not this walk).
                self._walk_left = 1 if head[:4] == b"AMQP" else int.from_bytes(head[3:7], "big") + 1
            take = min(self._walk_left, size - pos)
            pos += take
            self._walk_left -= take
            if self._walk_left:
                break
            head.clear()
            self._feed_decoder(view[start:pos], events)
            start = pos
            if self._state is CS.CLOSED:
                return b""
            if not self._untuned:
                return view[pos:]
        if start < size:
            self._feed_decoder(view[start:], events)
        return b""

    def _feed_decoder(self, data: Buffer, events: list[AnyEvent]) -> None:
        try:
            frames: list[Any] = self._decoder.feed(data)
        except DecodeError as exc:
            self._receive_frames(exc.frames, events)  # as in receive_data
            if self._state is CS.CLOSED:
                return
            self._explain_size(exc)
            raise
        self._receive_frames(frames, events)

    def _explain_size(self, exc: DecodeError) -> None:
        """The decoder knows one limit; say that it is frame_max plus the tolerance."""
        if self._tolerance and exc.reply_code == spec.FRAME_ERROR:
            limit = f"the frame_max of {self._decoder.max_frame_size}"
            if exc.args and isinstance(exc.args[0], str) and exc.args[0].endswith(limit):
                exc.args = (
                    exc.args[0][: -len(limit)]
                    + f"the frame_max of {self._frame_max} (plus the frame_max_tolerance"
                    f" of {self._tolerance})",
                )

    def _receive_frames(self, frames: list[Any], events: list[AnyEvent]) -> None:
        # The loop inlines the commonest cases, content on an open channel; the rest goes
        # to the _receive_* methods. (``Any``: frames are told apart by exact class, on
        # which mypy does not narrow.)
        channels = self._channels
        assembler = self._assembler
        assemble = assembler.feed
        # What assemble() would call for the two content frame classes, without its dispatch.
        assemble_body = assembler._body
        assemble_header = assembler._header
        plain_in = self._plain_in
        for frame in frames:
            cls = frame.__class__
            if cls is BodyFrame or cls is HeaderFrame:
                ch = channels.get(frame.channel)
                if ch is None or ch.state is not _H_OPEN or self._state is not _CS_OPEN:
                    self._receive_content(frame, events)
                    continue
                if cls is BodyFrame:
                    message = assemble_body(frame)
                else:
                    message = assemble_header(frame)
                    if message is None:  # the body follows: hold it within the budget
                        held = self._held + frame.body_size
                        if held > self._max_held:
                            self._refuse_content(frame.channel, frame.body_size)
                            continue
                        self._held = held
                if message is not None:
                    self._held -= len(message.body)
                    method = message.method
                    tag = request = None
                    mcls = method.__class__
                    if mcls is _PUBLISH:
                        if ch.confirming:
                            ch.received_tag = tag = ch.received_tag + 1
                    elif mcls is _GET_OK:
                        request = ch.content_request
                    # MessageReceived(channel, method, properties, body, tag, request),
                    # without the frozen dataclass's __init__ and its six object.__setattr__
                    event = _new(MessageReceived)
                    _set_channel(event, message.channel)
                    _set_method(event, method)
                    _set_properties(event, message.properties)
                    _set_body(event, message.body)
                    _set_confirm_tag(event, tag)
                    _set_request(event, request)
                    events.append(event)
            elif cls is MethodFrame:
                channel = frame.channel
                if not channel:
                    self._receive_connection_method(frame.method, events)
                    continue
                method = frame.method
                if method.CONTENT and method.__class__ in plain_in:
                    ch = channels.get(channel)
                    if ch is not None and ch.state is _H_OPEN and self._state is _CS_OPEN:
                        assemble(frame)  # 505 if a content is in progress on the channel
                        continue
                self._receive_channel_method(frame, events)
            elif cls is ProtocolHeader:
                self._receive_protocol_header(frame, events)
            # A heartbeat only proves the peer is alive, which any byte does.

    def _fail(self, exc: RemoteProtocolError) -> None:
        if self._state in CONNECTION_IS_OPEN:
            text = _reply_text(exc.reply_code, str(exc))
            close = C.Close(exc.reply_code, text, exc.class_id, exc.method_id)
            self._queue(MethodFrame(0, close).encode())
            self._close_sent = close
        self._state = CS.ERROR
        self._ended(f"{exc.reply_code} {exc}")
        self._channels.clear()

    def _end_of_input(self) -> list[AnyEvent]:
        state = self._state
        if state is CS.CLOSED:
            return []
        self._state = CS.CLOSED
        unconfirmed = self._all_unconfirmed()
        self._channels.clear()
        self._ended(f"the peer closed the socket in state {state.name}")
        if self._role is Role.CLIENT and state in (CS.AUTHENTICATING, CS.AWAIT_SECURE_OK):
            # RabbitMQ closes the socket on a login failure unless the client asked for a
            # Close (authentication_failure_close) [rabbit_reader auth_fail].
            return [
                ConnectionClosed(
                    spec.ACCESS_REFUSED,
                    "ACCESS_REFUSED - the server closed the connection during authentication:"
                    " probably a login failure",
                )
            ]
        return [
            ConnectionClosed(0, f"connection lost in state {state.name}", unconfirmed=unconfirmed)
        ]

    def _all_unconfirmed(self) -> dict[int, tuple[int, ...]]:
        return {
            number: tuple(sorted(ch.unconfirmed))
            for number, ch in sorted(self._channels.items())
            if ch.unconfirmed
        }

    def _receive_header(self, data: Buffer, events: list[AnyEvent]) -> Buffer:
        """Server role: the client's 8-byte protocol header [PDF §4.2.2]."""
        header = self._header
        need = 8 - len(header)
        header += data[:need]
        rest = data[need:]
        if header[:4] != _HEADER_BYTES[: min(4, len(header))]:
            return self._refuse_header(bytes(header), events)
        if len(header) < 8:
            return b""
        protocol_id, major, minor, revision = header[4:8]
        events.append(ProtocolHeaderReceived(major, minor, revision, protocol_id))
        if bytes(header) not in _ACCEPTED_HEADERS:
            return self._refuse_header(bytes(header), events)
        self._state = CONNECTION_TRANSITIONS[self._state][(Role.CLIENT, ProtocolHeader)]
        self._send_auto(0, None, self._start)
        return rest

    def _refuse_header(self, header: bytes, events: list[AnyEvent]) -> bytes:
        # The server answers a header it does not take with its own, then closes.
        self._queue(_HEADER_BYTES)
        self._state = CS.CLOSED
        text = f"the client sent the protocol header {header!r}, which is not AMQP 0-9-1"
        self._ended(text)
        events.append(ConnectionClosed(0, text))
        return b""

    def _receive_protocol_header(self, frame: ProtocolHeader, events: list[AnyEvent]) -> None:
        if self._state is not CS.AWAIT_START:
            raise RemoteProtocolError("a protocol header in the middle of the stream", 501)
        # The server did not take our version and answered with the one it offers.
        events.append(
            ProtocolHeaderReceived(frame.major, frame.minor, frame.revision, frame.protocol_id)
        )
        self._state = CONNECTION_TRANSITIONS[self._state][(Role.SERVER, ProtocolHeader)]
        version = f"{frame.major}-{frame.minor}-{frame.revision}"
        if frame.protocol_id:  # AMQP 1-1-0-9: the 0-9 header's class and instance
            version = f"{frame.protocol_id}-{version}"
        text = f"the server refused our protocol header and offers AMQP {version} instead"
        self._ended(text)
        events.append(ConnectionClosed(0, text))

    def _receive_connection_method(self, method: Method, events: list[AnyEvent]) -> None:
        mcls = type(method)
        state = self._state
        next_state = CONNECTION_TRANSITIONS[state].get((self._peer, mcls))
        if next_state is None:
            if state in DISCARDING and self._peer in DISCARDING[state]:
                return  # [XML connection.close rule "stability"]
            if state is CS.CLOSED:
                return
            raise self._connection_violation(method)
        _CONNECTION_HANDLERS[mcls](self, method, next_state, events)

    def _connection_violation(self, method: Method) -> RemoteProtocolError:
        if method.CLASS_ID != C.CLASS_ID:
            # RabbitMQ: channel_error "unexpected method in connection state"
            message = f"{method.NAME} on channel 0"
            code = spec.CHANNEL_ERROR
        elif self._role.value not in method.CHASSIS:
            message = f"a {self._role.value} does not receive {method.NAME}"
            code = spec.COMMAND_INVALID
        else:
            message = f"unexpected {method.NAME} in connection state {self._state.name}"
            code = spec.CHANNEL_ERROR
        return RemoteProtocolError(message, code, method.CLASS_ID, method.METHOD_ID)

    def _receive_channel_method(self, frame: MethodFrame, events: list[AnyEvent]) -> None:
        method = frame.method
        ch = self._channels.get(frame.channel)
        # The common case (ack, reject...): checks done, no bookkeeping. (Content methods
        # took the same shortcut in _receive_frames.)
        if (
            method.__class__ in self._plain_in
            and ch is not None
            and ch.state is H.OPEN
            and self._state is CS.OPEN
            and not self._assembler.in_progress(frame.channel)
        ):
            events.append(MethodReceived(frame.channel, method))
            return
        state = self._state
        if state is not CS.OPEN:
            if state in CONNECTION_CLOSING or state is CS.CLOSED:
                return  # after Connection.Close only channel 0 matters [rule "stability"]
            raise RemoteProtocolError(
                f"{method.NAME} on channel {frame.channel} before the connection is open",
                spec.UNEXPECTED_FRAME,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        channel = frame.channel
        mcls = type(method)
        if method.CLASS_ID == C.CLASS_ID:  # [PDF §4.2.3] connection methods use channel 0
            raise RemoteProtocolError(
                f"{method.NAME} on channel {channel}",
                spec.COMMAND_INVALID,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        if self._assembler.in_progress(channel):  # [PDF §4.2.6] no method inside a content
            raise RemoteProtocolError(
                f"{method.NAME} on channel {channel} in the middle of a content",
                spec.UNEXPECTED_FRAME,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        ch = self._channels.get(channel)
        ch_state = H.CLOSED if ch is None else ch.state
        next_state = CHANNEL_TRANSITIONS[ch_state].get((self._peer, mcls))
        if next_state is None:
            if ch_state in DISCARDING and self._peer in DISCARDING[ch_state]:
                return  # [XML channel.close rule "stability"]
            raise self._channel_violation(channel, ch_state, method)
        handler = _CHANNEL_HANDLERS.get(mcls)
        if handler is not None:
            handler(self, channel, ch, method, next_state, events)
            return
        assert ch is not None  # only channel.open is valid on a channel not in use
        request = None
        if mcls in _RESPONSE_TYPES:
            request = self._match_reply(channel, ch, method)
        elif _expects_reply(method):
            ch.peer_requests.append(method)
        if method.CONTENT:
            ch.content_request = request  # for the MessageReceived of a get-ok
            self._assembler.feed(frame)  # header and body frames follow
        else:
            events.append(MethodReceived(channel, method, request))

    def _match_reply(self, channel: int, ch: _Channel, method: Method) -> Method:
        """The request ``method`` answers: the oldest one waiting [XML "synchronous"]."""
        requests = ch.requests
        if not requests:
            raise RemoteProtocolError(
                f"{method.NAME} on channel {channel} answers no request",
                spec.COMMAND_INVALID,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        request = requests[0]
        if type(method) not in request.RESPONSES:
            raise RemoteProtocolError(
                f"{method.NAME} on channel {channel} does not answer {request.NAME}",
                spec.UNEXPECTED_FRAME,
                method.CLASS_ID,
                method.METHOD_ID,
            )
        return requests.popleft()

    def _channel_violation(
        self, channel: int, state: ChannelState, method: Method
    ) -> RemoteProtocolError:
        if self._role.value not in method.CHASSIS:
            message = f"a {self._role.value} does not receive {method.NAME}"
            code = spec.COMMAND_INVALID
        elif state is H.CLOSED:  # [XML 504 channel-error] "not correctly opened"
            message = f"{method.NAME} on channel {channel}, which is not open"
            code = spec.CHANNEL_ERROR
        elif type(method) is Ch.Open:  # [XML channel.open rule "state"]
            message = f"channel.open on channel {channel}, which is already {state.name}"
            code = spec.CHANNEL_ERROR
        elif state is H.OPENING:
            message = f"{method.NAME} on channel {channel} before channel.open-ok"
            code = spec.CHANNEL_ERROR
        else:
            message = f"unexpected {method.NAME} on channel {channel} in state {state.name}"
            code = spec.COMMAND_INVALID
        return RemoteProtocolError(message, code, method.CLASS_ID, method.METHOD_ID)

    def _discard_content(self, channel: int) -> None:
        """Drop the message being assembled on ``channel`` and give back its budget."""
        partial = self._assembler._partial.pop(channel, None)
        if partial is not None and partial.header is not None:
            self._held -= partial.header.body_size

    def _refuse_content(self, channel: int, body_size: int) -> None:
        """The messages being assembled would hold more than ``max_total_body_size``:
        close the channel with 406, as RabbitMQ does for a message it will not hold
        (``max_message_size`` [rchannel check_msg_size]); the rest of it is discarded."""
        method = self._assembler._partial.pop(channel).method  # its size was not counted
        text = _reply_text(
            spec.PRECONDITION_FAILED,
            f"message body of {body_size} bytes on channel {channel} would take the bodies"
            f" held across channels over max_total_body_size {self._max_held}",
        )
        close = Ch.Close(spec.PRECONDITION_FAILED, text, method.CLASS_ID, method.METHOD_ID)
        self._send_channel_method(channel, close)

    def _receive_content(self, frame: HeaderFrame | BodyFrame, events: list[AnyEvent]) -> None:
        """A content frame that receive_data's fast path did not take: errors, discards."""
        state = self._state
        channel = frame.channel
        if state is not CS.OPEN:
            if state in CONNECTION_CLOSING or state is CS.CLOSED:
                return
            raise RemoteProtocolError(
                "content frame before the connection is open", spec.UNEXPECTED_FRAME
            )
        ch = self._channels.get(channel)
        if ch is not None and ch.state in DISCARDING and self._peer in DISCARDING[ch.state]:
            return
        if channel == 0:  # [PDF §4.2.6.1] content is never on channel 0
            raise RemoteProtocolError("content frame on channel 0", spec.CHANNEL_ERROR)
        raise RemoteProtocolError(
            f"content frame on channel {channel}, which is not open", spec.CHANNEL_ERROR
        )

    # -- connection-method handlers: (self, method, next_state, events) ----------------

    def _on_start(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        if (method.version_major, method.version_minor) != (0, 9):
            raise RemoteProtocolError(
                f"the server speaks AMQP {method.version_major}-{method.version_minor}",
                spec.NOT_IMPLEMENTED,
                10,
                10,
            )
        s = self._settings
        mechanisms = _words(method.mechanisms)
        if s.mechanism not in mechanisms:
            raise RemoteProtocolError(
                f"the server offers {' '.join(mechanisms) or 'no mechanisms'}, not {s.mechanism}",
                spec.ACCESS_REFUSED,
                10,
                10,
            )
        locales = _words(method.locales)
        self._peer_properties = method.server_properties
        self._state = next_state
        start_ok = self._start_ok
        if locales and start_ok.locale not in locales:
            # connection.start-ok locale: "must be one of the locales the server offered"
            start_ok.locale = locales[0]
        self._send_auto(0, None, start_ok)

    def _on_secure(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        self._state = next_state
        answer = self._settings.secure_response
        if answer is None:
            events.append(MethodReceived(0, method))  # answer with send_method(0, SecureOk)
        else:
            self._send_auto(0, None, C.SecureOk(answer(method.challenge)))

    def _on_tune(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        s = self._settings
        if 0 < method.frame_max < s.min_frame_size:  # connection.tune frame-max: minimum
            raise RemoteProtocolError(
                f"the server proposes frame_max {method.frame_max}, below the minimum"
                f" {s.min_frame_size}",
                spec.NOT_ALLOWED,
                10,
                30,
            )
        channel_max = _pick(s.channel_max, method.channel_max)
        frame_max = _pick(s.frame_max, method.frame_max)
        heartbeat = _pick(s.heartbeat, method.heartbeat)
        self._state = next_state
        self._send_auto(0, None, C.TuneOk(channel_max, frame_max, heartbeat))
        self._tuned(channel_max, frame_max, heartbeat)
        self._send_auto(0, None, C.Open(s.virtual_host))

    def _tuned(self, channel_max: int, frame_max: int, heartbeat: int) -> None:
        self._channel_max = channel_max
        self._frame_max = frame_max
        self._decoder.max_frame_size = frame_max + self._tolerance if frame_max else 0
        self._untuned = False
        # The client starts heartbeating once tuned, the server once Tune-Ok arrives
        # [PDF §4.2.7; Errata #13].
        self._heartbeat = heartbeat
        self._last_sent = self._last_received = None

    def _on_open_ok(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        self._state = next_state
        events.append(self._opened())

    def _opened(self) -> ConnectionOpened:
        return ConnectionOpened(
            self._frame_max, self._channel_max, self._heartbeat, self._virtual_host
        )

    def _on_start_ok(
        self, method: Any, next_state: ConnectionState, events: list[AnyEvent]
    ) -> None:
        mechanism = method.mechanism
        if mechanism not in self._settings.mechanisms:
            # RabbitMQ: command_invalid "unknown authentication mechanism"
            raise RemoteProtocolError(
                f"unknown authentication mechanism {mechanism!r}", spec.COMMAND_INVALID, 10, 11
            )
        self._peer_properties = method.client_properties
        self._credentials = _parse_credentials(mechanism, method.response, method.client_properties)
        self._state = next_state
        self._authenticate()

    def _on_secure_ok(
        self, method: Any, next_state: ConnectionState, events: list[AnyEvent]
    ) -> None:
        credentials = self._credentials
        assert credentials is not None
        credentials.response = method.response
        credentials.rounds += 1
        self._state = next_state
        self._authenticate()

    def _authenticate(self) -> None:
        credentials = self._credentials
        assert credentials is not None
        authenticate = self._settings.authenticate
        verdict = True if authenticate is None else authenticate(credentials)
        if isinstance(verdict, (bytes, bytearray)):
            self._send_auto(0, None, C.Secure(bytes(verdict)))
            return
        if verdict:
            s = self._settings
            self._send_auto(0, None, C.Tune(s.channel_max, s.frame_max, s.heartbeat))
            return
        text = (
            f"ACCESS_REFUSED - Login was refused using authentication mechanism"
            f" {credentials.mechanism}"
        )
        capabilities = self._peer_properties.get("capabilities")
        if isinstance(capabilities, Mapping) and capabilities.get("authentication_failure_close"):
            # Not the spec's way before Open [PDF §2.2.4], but what RabbitMQ does for
            # clients that ask for it, so that they can tell a login failure from a crash.
            self._send_auto(0, None, C.Close(spec.ACCESS_REFUSED, text, 0, 0))
        raise RemoteProtocolError(text, spec.ACCESS_REFUSED, 10, 11)

    def _on_tune_ok(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        s = self._settings
        # connection.tune-ok channel-max / frame-max rule "upper-limit", checked the way
        # RabbitMQ does it: 0 is "no limit", which is above any limit we proposed.
        for name, proposed, minimum in (
            ("channel_max", s.channel_max, 1),
            ("frame_max", s.frame_max, s.min_frame_size),
        ):
            value = getattr(method, name)
            if proposed and (value == 0 or value > proposed):
                raise RemoteProtocolError(
                    f"negotiated {name} = {value} is higher than the proposed {proposed}",
                    spec.NOT_ALLOWED,
                    10,
                    31,
                )
            if 0 < value < minimum:
                raise RemoteProtocolError(
                    f"negotiated {name} = {value} is lower than the minimum {minimum}",
                    spec.NOT_ALLOWED,
                    10,
                    31,
                )
        self._state = next_state
        self._tuned(method.channel_max, method.frame_max, method.heartbeat)

    def _on_open(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        # The client counts the connection as open from here, so a refusal is a Close.
        self._state = next_state
        virtual_host = method.virtual_host
        check = self._settings.check_virtual_host
        credentials = self._credentials or Credentials("", b"")
        if check is not None and not check(virtual_host, credentials):
            raise RemoteProtocolError(
                f"access to vhost '{virtual_host}' refused for user '{credentials.username}'",
                spec.NOT_ALLOWED,
                10,
                40,
            )
        self._virtual_host = virtual_host
        self._send_auto(0, None, C.OpenOk())
        events.append(self._opened())

    def _on_close(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        self._state = next_state
        self._close_received = method
        self._send_auto(0, None, C.CloseOk())
        if self._state is CS.CLOSED:
            self._closed(method, self._peer, events)

    def _on_close_ok(
        self, method: Any, next_state: ConnectionState, events: list[AnyEvent]
    ) -> None:
        self._state = next_state
        if self._close_received is not None:  # both sent Close: report the peer's reason
            self._closed(self._close_received, self._peer, events)
        else:
            assert self._close_sent is not None
            self._closed(self._close_sent, self._role, events)

    def _closed(self, close: Any, by: Role, events: list[AnyEvent]) -> None:
        unconfirmed = self._all_unconfirmed()
        self._channels.clear()
        code, text = close.reply_code, close.reply_text
        self._ended(f"the {by.value} closed it with {code} ({text})")
        events.append(
            ConnectionClosed(code, text, close.class_id, close.method_id, by, unconfirmed)
        )

    def _on_blocked(self, method: Any, next_state: ConnectionState, events: list[AnyEvent]) -> None:
        self._blocked = True
        self._blocked_reason = method.reason
        events.append(ConnectionBlocked(method.reason))

    def _on_unblocked(
        self, method: Any, next_state: ConnectionState, events: list[AnyEvent]
    ) -> None:
        self._blocked = False
        events.append(ConnectionUnblocked())

    def _on_update_secret(
        self, method: Any, next_state: ConnectionState, events: list[AnyEvent]
    ) -> None:
        self._ch0.peer_requests.append(method)
        events.append(MethodReceived(0, method))

    def _on_update_secret_ok(
        self, method: Any, next_state: ConnectionState, events: list[AnyEvent]
    ) -> None:
        request = self._match_reply(0, self._ch0, method)
        events.append(MethodReceived(0, method, request))

    # -- channel-method handlers: (self, channel, ch, method, next_state, events) ------

    def _on_channel_open(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        limit = self._channel_max or _MAX_CHANNEL
        if channel > limit:
            # RabbitMQ: not_allowed "number of channels opened has reached the negotiated
            # channel_max"; the spec numbers channels 1..channel-max [XML connection.tune].
            raise RemoteProtocolError(
                f"channel {channel} is above channel_max {limit}", spec.NOT_ALLOWED, 20, 10
            )
        ch = self._channels[channel] = _Channel(next_state)
        self._send_auto(channel, ch, Ch.OpenOk())
        events.append(ChannelOpened(channel))

    def _on_channel_open_ok(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        ch.state = next_state
        events.append(ChannelOpened(channel))

    def _on_channel_close(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        ch.state = next_state
        ch.close_received = method
        self._send_auto(channel, ch, Ch.CloseOk())
        if ch.state is H.CLOSED:
            self._channel_closed(channel, method, self._peer, events)

    def _on_channel_close_ok(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        ch.state = next_state
        if ch.close_received is not None:  # both sent Close: report the peer's reason
            self._channel_closed(channel, ch.close_received, self._peer, events)
        else:
            self._channel_closed(channel, ch.close_sent, self._role, events)

    def _channel_closed(self, channel: int, close: Any, by: Role, events: list[AnyEvent]) -> None:
        ch = self._channels.pop(channel)
        self._discard_content(channel)
        events.append(
            ChannelClosed(
                channel,
                close.reply_code,
                close.reply_text,
                close.class_id,
                close.method_id,
                by,
                tuple(sorted(ch.unconfirmed)),
                tuple(ch.requests),
            )
        )

    def _on_flow(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        # The peer asks us to pause or resume sending content; the reply is ours to make.
        ch.paused = not method.active
        self._send_auto(channel, ch, Ch.FlowOk(method.active))
        events.append(FlowChanged(channel, method.active))

    def _on_flow_ok(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        self._match_reply(channel, ch, method)
        events.append(FlowChanged(channel, method.active))

    def _on_ack_or_nack(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        if not ch.confirming or self._role is Role.SERVER:
            events.append(MethodReceived(channel, method))  # a consumer's acknowledgement
            return
        tag = method.delivery_tag
        pending: set[int] = ch.unconfirmed
        order: deque[int] = ch.unconfirmed_order
        tags: list[int] = []
        if method.multiple:
            # basic.ack multiple: every tag up to and including this one; tag 0 is all.
            while order and (tag == 0 or order[0] <= tag):
                t = order.popleft()
                if t in pending:
                    pending.remove(t)
                    tags.append(t)
        elif tag in pending:
            pending.remove(tag)
            tags.append(tag)
            while order and order[0] not in pending:
                order.popleft()
        if tags:  # an ack for a tag already confirmed (or never sent) confirms nothing
            events.append(Confirmed(channel, tuple(tags), type(method) is spec.Basic.Ack))

    def _on_confirm_select(
        self, channel: int, ch: Any, method: Any, next_state: ChannelState, events: list[AnyEvent]
    ) -> None:
        ch.confirming = True
        if _expects_reply(method):
            ch.peer_requests.append(method)
        events.append(MethodReceived(channel, method))

    # -----------------------------------------------------------------------------------
    # Heartbeats

    def tick(self, now: float) -> list[AnyEvent]:
        """Call with a monotonic clock at least every ``heartbeat / 2`` seconds (or at
        :attr:`next_tick_at`), after reading what the socket holds and before writing.

        Queues a heartbeat when nothing was handed out by ``data_to_send`` for half an
        interval, as RabbitMQ does, so the peer never hears nothing for a whole interval.
        Reports HeartbeatTimeout (then ConnectionClosed, lost) when nothing at all was
        received for two [PDF §4.2.7]. Activity is noticed per tick: bytes handed out
        since the last tick count as sent at that earlier tick (the worst case), bytes
        received count as received now. After a pause in ticking longer than an interval
        (the loop was busy, and the peer's bytes may sit unread) the peer gets another
        half interval before a timeout. Does nothing when the negotiated heartbeat is 0.
        """
        interval = self._heartbeat
        if not interval or self._state is CS.CLOSED or self._state is CS.ERROR:
            return []
        previous = self._last_tick
        self._last_tick = now
        if self._received_since_tick or self._last_received is None:
            self._last_received = now
            self._received_since_tick = False
        elif previous is not None and now - previous > interval:
            # We were not watching: what the peer sent may not have been read yet.
            self._last_received = max(self._last_received, now - 1.5 * interval)
        if self._last_sent is None:
            self._last_sent = now
        elif self._sent_since_tick:
            # Handed out at some point since the previous tick: assume the earliest.
            self._last_sent = previous if previous is not None else now
        self._sent_since_tick = False
        silent_for = now - self._last_received
        if silent_for >= 2 * interval:
            self._state = CS.CLOSED
            unconfirmed = self._all_unconfirmed()
            self._channels.clear()
            text = f"no heartbeat or data from the peer for {silent_for:g}s"
            self._ended(text)
            return [
                HeartbeatTimeout(silent_for),
                ConnectionClosed(0, text, unconfirmed=unconfirmed),
            ]
        if now - self._last_sent >= interval / 2:
            self._queue(_HEARTBEAT_BYTES)
            # Counted as sent now: the caller writes right after the tick.
            self._last_sent = now
        return []

    @property
    def next_tick_at(self) -> float | None:
        """The monotonic time at which :meth:`tick` next has something to do (send a
        heartbeat, or declare the peer gone), or None when heartbeats are off or the
        connection is over. Before the first tick it is 0.0: tick now to start the
        clock. Sleep until then instead of polling."""
        interval = self._heartbeat
        if not interval or self._state is CS.CLOSED or self._state is CS.ERROR:
            return None
        if self._last_sent is None or self._last_received is None:
            return 0.0
        return min(self._last_sent + interval / 2, self._last_received + 2 * interval)

    # -----------------------------------------------------------------------------------

    def _sasl_response(self) -> bytes:
        s = self._settings
        if s.mechanism == "PLAIN":
            return b"\0" + s.username.encode() + b"\0" + s.password.encode()
        if s.mechanism == "AMQPLAIN":
            # A field table without its length prefix [rabbit_auth_mechanism_amqplain].
            return encode_table({"LOGIN": s.username, "PASSWORD": s.password})[4:]
        return b""  # EXTERNAL: the identity comes from the TLS certificate


def _parse_credentials(
    mechanism: str, response: bytes, client_properties: Mapping[str, Any]
) -> Credentials:
    credentials = Credentials(mechanism, response, client_properties=client_properties)
    if mechanism == "PLAIN":
        parts = response.split(b"\0")
        if len(parts) != 3:
            raise RemoteProtocolError(
                "PLAIN response is not authzid NUL username NUL password",
                spec.ACCESS_REFUSED,
                10,
                11,
            )
        credentials.username = parts[1].decode("utf-8", "replace")
        credentials.password = parts[2].decode("utf-8", "replace")
    elif mechanism == "AMQPLAIN":
        from ._wire import decode_table

        raw = len(response).to_bytes(4, "big") + response
        try:
            table, _ = decode_table(raw, 0, len(raw))
        except DecodeError:
            raise RemoteProtocolError(
                "AMQPLAIN response is not a field table", spec.ACCESS_REFUSED, 10, 11
            ) from None
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        credentials.username = login if isinstance(login, str) else None
        credentials.password = password if isinstance(password, str) else None
    elif mechanism == "EXTERNAL":
        credentials.username = response.decode("utf-8", "replace")
    return credentials


_CONNECTION_HANDLERS: Final[dict[type[Method], Callable[..., None]]] = {
    C.Start: Connection._on_start,
    C.StartOk: Connection._on_start_ok,
    C.Secure: Connection._on_secure,
    C.SecureOk: Connection._on_secure_ok,
    C.Tune: Connection._on_tune,
    C.TuneOk: Connection._on_tune_ok,
    C.Open: Connection._on_open,
    C.OpenOk: Connection._on_open_ok,
    C.Close: Connection._on_close,
    C.CloseOk: Connection._on_close_ok,
    C.Blocked: Connection._on_blocked,
    C.Unblocked: Connection._on_unblocked,
    C.UpdateSecret: Connection._on_update_secret,
    C.UpdateSecretOk: Connection._on_update_secret_ok,
}

_CHANNEL_HANDLERS: Final[dict[type[Method], Callable[..., None]]] = {
    Ch.Open: Connection._on_channel_open,
    Ch.OpenOk: Connection._on_channel_open_ok,
    Ch.Close: Connection._on_channel_close,
    Ch.CloseOk: Connection._on_channel_close_ok,
    Ch.Flow: Connection._on_flow,
    Ch.FlowOk: Connection._on_flow_ok,
    spec.Basic.Ack: Connection._on_ack_or_nack,
    spec.Basic.Nack: Connection._on_ack_or_nack,
    spec.Confirm.Select: Connection._on_confirm_select,
}


_OPEN_ROW: Final = CHANNEL_TRANSITIONS[H.OPEN]
_GET_OK: Final = spec.Basic.GetOk
# The slots of MessageReceived, set directly on the hot path (see _receive_frames).
_slots: Final[Mapping[str, Any]] = MessageReceived.__dict__
_set_channel: Final = _slots["channel"].__set__
_set_method: Final = _slots["method"].__set__
_set_properties: Final = _slots["properties"].__set__
_set_body: Final = _slots["body"].__set__
_set_confirm_tag: Final = _slots["confirm_tag"].__set__
_set_request: Final = _slots["request"].__set__
_PUBLISH: Final = spec.Basic.Publish
# The content methods each role sends; and the methods each role sends on an open channel
# that need nothing but the state checks (no handler, no request or reply to match).
_CONTENT_BY: Final = {
    role: frozenset(m for (r, m) in _OPEN_ROW if r is role and issubclass(m, Method) and m.CONTENT)
    for role in Role
}
_PLAIN_BY: Final = {
    role: frozenset(
        m
        for (r, m) in _OPEN_ROW
        if r is role
        and issubclass(m, Method)
        and not m.RESPONSES
        and m not in _CHANNEL_HANDLERS
        and m not in _RESPONSE_TYPES
    )
    for role in Role
}
