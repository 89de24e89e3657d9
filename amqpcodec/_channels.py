"""The channel layer: channel states (Open, Close, the discarding after a Close), the
pairing of synchronous requests with their replies, publisher confirms and flow
[XML channel class; rmq-docs:confirms].
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final

from . import spec
from ._base import Method
from ._core import (
    _LIFECYCLE,
    _MAX_CHANNEL,
    _RESPONSE_TYPES,
    CS,
    C,
    Ch,
    ConnectionCore,
    H,
    _Channel,
    _expects_reply,
    _new,
    _reply_text,
)
from ._errors import LocalProtocolError, RemoteProtocolError
from ._events import (
    AnyEvent,
    ChannelClosed,
    ChannelOpened,
    Confirmed,
    FlowChanged,
    MethodReceived,
)
from ._frames import (
    BodyFrame,
    HeaderFrame,
    MethodFrame,
)
from ._state import (
    CHANNEL_TRANSITIONS,
    CONNECTION_CLOSING,
    DISCARDING,
    ChannelState,
    Role,
)

__all__ = ["ChannelLayer"]


class ChannelLayer(ConnectionCore):
    """Channel methods, sent and received (content has its fast path in Connection)."""

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
            events.append(_method_received(frame.channel, method))
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


_CHANNEL_HANDLERS: Final[dict[type[Method], Callable[..., None]]] = {
    Ch.Open: ChannelLayer._on_channel_open,
    Ch.OpenOk: ChannelLayer._on_channel_open_ok,
    Ch.Close: ChannelLayer._on_channel_close,
    Ch.CloseOk: ChannelLayer._on_channel_close_ok,
    Ch.Flow: ChannelLayer._on_flow,
    Ch.FlowOk: ChannelLayer._on_flow_ok,
    spec.Basic.Ack: ChannelLayer._on_ack_or_nack,
    spec.Basic.Nack: ChannelLayer._on_ack_or_nack,
    spec.Confirm.Select: ChannelLayer._on_confirm_select,
}


_OPEN_ROW: Final = CHANNEL_TRANSITIONS[H.OPEN]
_GET_OK: Final = spec.Basic.GetOk
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
# What a role receives plainly: what its peer sends plainly; and for a server, acks and
# nacks too (a consumer's: their handler keeps books on them only for a client, whose
# publishes the broker confirms).
_PLAIN_IN: Final = {
    role: _PLAIN_BY[role.peer]
    | (frozenset({spec.Basic.Ack, spec.Basic.Nack}) if role is Role.SERVER else frozenset())
    for role in Role
}


def _method_received(channel: int, method: Method) -> MethodReceived:
    """MethodReceived(channel, method) without the frozen dataclass's __init__ (three
    object.__setattr__), for the hot paths."""
    event: MethodReceived = _new(MethodReceived)
    _set_channel(event, channel)
    _set_method(event, method)
    _set_request(event, None)
    return event


_received: Final[Mapping[str, Any]] = MethodReceived.__dict__
_set_channel: Final = _received["channel"].__set__
_set_method: Final = _received["method"].__set__
_set_request: Final = _received["request"].__set__
