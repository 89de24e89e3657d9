"""The sans-IO Connection: AMQP's state and bytes for a client or a server, no I/O.

How this works: you own the socket and the clock. Feed what you read to
:meth:`Connection.receive_data` and act on the events it returns; write what
:meth:`Connection.data_to_send` returns; call :meth:`Connection.tick` now and then for
heartbeats. What you ask for (``send_method``, ``send_message``, ``open_channel``,
``close``) is checked against the state tables in :mod:`amqpcodec._state` and queued.

The Connection is assembled from layers that follow the protocol, each in its own module
over the shared state of :mod:`amqpcodec._core`: the handshake and negotiation
(:mod:`amqpcodec._handshake`), the channel layer with its states, request/reply pairing,
confirms and flow (:mod:`amqpcodec._channels`), heartbeats (:mod:`amqpcodec._heartbeats`),
and the receive path (:mod:`amqpcodec._receiving`). This module keeps the public API.

Incoming bytes go FrameDecoder -> frames -> (state check) -> ContentAssembler -> events,
except whole messages on an open channel, which go straight from the bytes to events.
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

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from . import spec
from ._base import Method, Properties
from ._channels import _CONTENT_BY, _GET_OK, _PLAIN_IN, _PUBLISH
from ._content import ContentAssembler
from ._core import (
    _CS_OPEN,
    _H_OPEN,
    _MAX_CHANNEL,
    CS,
    Buffer,
    C,
    Ch,
    H,
    _Channel,
    _nbytes,
    _reply_text,
)
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    AnyEvent,
    ConnectionClosed,
)
from ._frames import (
    FrameDecoder,
    MethodFrame,
    ProtocolHeader,
    encode_message_parts,
)
from ._handshake import _HEADER_BYTES
from ._heartbeats import Heartbeats
from ._receiving import Receiving
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
    CONNECTION_CLOSING,
    CONNECTION_IS_OPEN,
    CONNECTION_TRANSITIONS,
    ChannelState,
    ConnectionState,
    Role,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Connection", "Credentials"]


class Connection(Receiving, Heartbeats):
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
        self._plain_in = _PLAIN_IN[role]
        self._content_in = {
            method.INDEX: (method, spec.PROPERTIES[method.CLASS_ID])
            for method in _CONTENT_BY[role.peer]
        }
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
        self._skipped = 0  # bytes the decoder was not given (whole messages)
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
            self._receive_tuned(data, events)
        except RemoteProtocolError as exc:
            exc.events = events
            self._fail(exc)
            raise
        return events

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
        return self._tick(now)

    @property
    def next_tick_at(self) -> float | None:
        """The monotonic time at which :meth:`tick` next has something to do (send a
        heartbeat, or declare the peer gone), or None when heartbeats are off or the
        connection is over. Before the first tick it is 0.0: tick now to start the
        clock. Sleep until then instead of polling."""
        return self._next_tick_at()
