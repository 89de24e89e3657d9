"""The connection's handshake and negotiation: protocol headers, Start/Start-Ok and SASL,
Secure, Tune/Tune-Ok, Open/Open-Ok, and the connection-level methods after it (Close,
Blocked/Unblocked, Update-Secret) [PDF §4.2.2, XML connection class].
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from . import spec
from ._base import Method
from ._core import (
    CS,
    Buffer,
    C,
    ConnectionCore,
)
from ._errors import DecodeError, LocalProtocolError, RemoteProtocolError
from ._events import (
    AnyEvent,
    ConnectionBlocked,
    ConnectionClosed,
    ConnectionOpened,
    ConnectionUnblocked,
    MethodReceived,
    ProtocolHeaderReceived,
)
from ._frames import (
    ProtocolHeader,
)
from ._settings import Credentials
from ._state import (
    CONNECTION_TRANSITIONS,
    DISCARDING,
    ConnectionState,
    Role,
)
from ._wire import encode_table

__all__ = ["Handshake"]

_HEADER_BYTES: Final = ProtocolHeader().encode()
# RabbitMQ also takes the 0-9 header and speaks 0-9-1 [rabbit_reader version_negotiation].
_ACCEPTED_HEADERS: Final = frozenset({_HEADER_BYTES, b"AMQP\x01\x01\x00\x09"})


def _pick(ours: int, theirs: int) -> int:
    """Tuning as RabbitMQ's own clients do it: 0 on either side means the other value,
    otherwise the smaller one [rmq-docs:heartbeats; java negotiatedMaxValue]."""
    return max(ours, theirs) if ours == 0 or theirs == 0 else min(ours, theirs)


def _words(value: bytes | str) -> list[str]:
    """Connection.Start's mechanisms and locales: space-separated longstrs."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", "replace")
    return value.split()


class Handshake(ConnectionCore):
    """Connection methods on channel 0, sent and received."""

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
    C.Start: Handshake._on_start,
    C.StartOk: Handshake._on_start_ok,
    C.Secure: Handshake._on_secure,
    C.SecureOk: Handshake._on_secure_ok,
    C.Tune: Handshake._on_tune,
    C.TuneOk: Handshake._on_tune_ok,
    C.Open: Handshake._on_open,
    C.OpenOk: Handshake._on_open_ok,
    C.Close: Handshake._on_close,
    C.CloseOk: Handshake._on_close_ok,
    C.Blocked: Handshake._on_blocked,
    C.Unblocked: Handshake._on_unblocked,
    C.UpdateSecret: Handshake._on_update_secret,
    C.UpdateSecretOk: Handshake._on_update_secret_ok,
}
