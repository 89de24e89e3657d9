"""What the layers of a Connection share: its state, queueing what goes out, and the
pairing of synchronous requests with their replies (channel 0 has it too, for
connection.update-secret).

How this works: :class:`~amqpcodec.Connection` is assembled from layers that follow the
protocol: the handshake and negotiation (:mod:`._handshake`), the channel layer
(:mod:`._channels`) and heartbeats (:mod:`._heartbeats`). Each is a class over
:class:`ConnectionCore`, which declares the attributes they all read and the helpers they
all call; the receive path and the public API live in :mod:`._connection`, so the hot
path stays a loop over local names, without calls across layers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from . import spec
from ._base import Method, Properties
from ._content import ContentAssembler
from ._errors import EncodeError, LocalProtocolError, RemoteProtocolError
from ._frames import (
    FrameDecoder,
    MethodFrame,
)
from ._settings import Credentials, Settings
from ._state import (
    CHANNEL_TRANSITIONS,
    CONNECTION_TRANSITIONS,
    ChannelState,
    ConnectionState,
    Role,
)

__all__ = [
    "CS",
    "Buffer",
    "C",
    "Ch",
    "ConnectionCore",
    "H",
]

Buffer: TypeAlias = bytes | bytearray | memoryview

C = spec.Connection
Ch = spec.Channel
CS = ConnectionState
H = ChannelState
# The hot paths compare against these: an enum member looked up on its class costs
# more than a module global (Python 3.11 goes through the enum's descriptor).
_CS_OPEN: Final = CS.OPEN
_H_OPEN: Final = H.OPEN

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


class ConnectionCore:
    """The shared state and helpers of the layers of a Connection."""

    # The state every layer reads and writes; Connection.__init__ sets it all.
    _role: Role
    _peer: Role
    _settings: Settings
    _state: ConnectionState
    _pipelining: bool
    _tolerance: int
    _decoder: FrameDecoder
    _assembler: ContentAssembler
    _held: int
    _max_held: int
    _out: list[Buffer]
    _channels: dict[int, _Channel]
    _ch0: _Channel
    _frame_max: int
    _channel_max: int
    _heartbeat: int
    _virtual_host: str
    _peer_properties: Mapping[str, Any]
    _credentials: Credentials | None
    _close_sent: Method | None
    _close_received: Method | None
    _blocked: bool
    _blocked_reason: str
    _end: str
    _header: bytearray
    _untuned: bool
    _walk_head: bytearray
    _walk_left: int
    _skipped: int
    _sent_since_tick: bool
    _received_since_tick: bool
    _last_tick: float | None
    _last_sent: float | None
    _last_received: float | None
    _start: spec.Connection.Start
    _start_ok: spec.Connection.StartOk
    # What each side may send on an open channel, for the fast paths.
    _content_out: frozenset[type[Method]]
    _plain_in: frozenset[type[Method]]
    # The content methods the peer sends on an open channel, by their wire index, with
    # their properties class: what may start a whole message taken from the bytes.
    _content_in: dict[int, tuple[type[Method], type[Properties]]]

    def _queue(self, data: bytes) -> None:
        self._out.append(data)

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
        ch = self._channels.get(channel)
        state = H.CLOSED if ch is None else ch.state
        return LocalProtocolError(
            f"cannot send {method.NAME} on channel {channel} in state {state.name}",
            spec.CHANNEL_ERROR,
            method.CLASS_ID,
            method.METHOD_ID,
        )

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

    def _all_unconfirmed(self) -> dict[int, tuple[int, ...]]:
        return {
            number: tuple(sorted(ch.unconfirmed))
            for number, ch in sorted(self._channels.items())
            if ch.unconfirmed
        }
