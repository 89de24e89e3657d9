"""The connection and channel state machines, as tables.

How this works: AMQP's handshakes are lock-step dialogues, so one state describes where
*both* peers are, and both peers step through the same table. A transition is keyed by
``(role that sent it, what was sent)``: when the client sends Connection.StartOk, the
client's Connection applies ``(Role.CLIENT, Connection.StartOk)`` as it queues the bytes
and the server's Connection applies the same key as it receives them. The tables never
ask which role *we* play, so a client and a server that have exchanged all their bytes
are always in the same state (the pair tests check this).

A key that is missing from a state's row is a protocol error: ours raises
LocalProtocolError, the peer's raises RemoteProtocolError with the reply code that
:mod:`amqpcodec._connection` picks for it (it knows *why* the key is missing, which a
table cannot say). What the tables do not hold, and the connection does in code:

* the handshake's contents (mechanisms, tuning, virtual host): values, not sequence;
* synchronous request/response matching on open channels: the pairs come from the spec
  (``Method.RESPONSES``) and depend on ``no_wait``, a field value;
* which frames are silently discarded after a Close was sent: :data:`DISCARDING` below
  names the states, the connection does the discarding.

The ``OPEN`` row of the channel table is built from the spec's ``CHASSIS`` data (which
side receives each method) instead of listing 50 methods by hand.
"""

from __future__ import annotations

import enum
from typing import Final, TypeAlias, TypeVar

from . import spec
from ._base import Method
from ._frames import ProtocolHeader

__all__ = [
    "CHANNEL_TRANSITIONS",
    "CONNECTION_TRANSITIONS",
    "DISCARDING",
    "ChannelState",
    "ConnectionState",
    "Role",
]


class Role(enum.Enum):
    """Which end of the connection: the client opens it, the server accepts it."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Role:
        """The other role."""
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


CLIENT: Final = Role.CLIENT
SERVER: Final = Role.SERVER


class ConnectionState(enum.Enum):
    """Where the connection is; the name says what happened last or what comes next."""

    AWAIT_HEADER = "await-header"
    """Nothing exchanged yet: the client's protocol header comes next."""
    AWAIT_START = "await-start"
    """The header was sent: the server's Connection.Start comes next."""
    AWAIT_START_OK = "await-start-ok"
    """Start was sent: the client's StartOk comes next."""
    AUTHENTICATING = "authenticating"
    """StartOk or SecureOk was sent: the server answers with Secure or Tune."""
    AWAIT_SECURE_OK = "await-secure-ok"
    """Secure was sent: the client's SecureOk comes next."""
    AWAIT_TUNE_OK = "await-tune-ok"
    """Tune was sent: the client's TuneOk comes next."""
    AWAIT_OPEN = "await-open"
    """TuneOk was sent: the client's Connection.Open comes next."""
    AWAIT_OPEN_OK = "await-open-ok"
    """Open was sent: the connection is open for the client, and errors use Close."""
    OPEN = "open"
    CLOSE_SENT_BY_CLIENT = "close-sent-by-client"
    CLOSE_SENT_BY_SERVER = "close-sent-by-server"
    CLOSE_SENT_BY_BOTH = "close-sent-by-both"
    """Both sent Close at the same time; each must still answer the other's with CloseOk."""
    CLOSE_OK_SENT_BY_CLIENT = "close-ok-sent-by-client"
    """In a simultaneous close, the client has answered; the server's CloseOk is awaited."""
    CLOSE_OK_SENT_BY_SERVER = "close-ok-sent-by-server"
    CLOSED = "closed"
    ERROR = "error"
    """A protocol error was raised; the connection takes no more input."""


class ChannelState(enum.Enum):
    """Where one channel is. A channel number that is not in use is CLOSED."""

    CLOSED = "closed"
    OPENING = "opening"
    """Channel.Open was sent; Open-Ok comes next."""
    OPEN = "open"
    CLOSE_SENT_BY_CLIENT = "close-sent-by-client"
    CLOSE_SENT_BY_SERVER = "close-sent-by-server"
    CLOSE_SENT_BY_BOTH = "close-sent-by-both"
    CLOSE_OK_SENT_BY_CLIENT = "close-ok-sent-by-client"
    CLOSE_OK_SENT_BY_SERVER = "close-ok-sent-by-server"


Input: TypeAlias = "type[Method] | type[ProtocolHeader]"
"""What a transition is keyed on, with the role that sent it."""
_S = TypeVar("_S", ConnectionState, ChannelState)

C = spec.Connection
Ch = spec.Channel
CS = ConnectionState
H = ChannelState


# One close handshake, written once for both tables: {state: {key: next state}}. A Close
# answered by a Close (both sides closed at once) still needs both CloseOks [XML
# connection.close / channel.close rule "stability"].
def _close_rows(
    s: type[_S], close: type[Method], close_ok: type[Method]
) -> dict[_S, dict[tuple[Role, Input], _S]]:
    return {
        s.CLOSE_SENT_BY_CLIENT: {
            (SERVER, close_ok): s.CLOSED,
            (SERVER, close): s.CLOSE_SENT_BY_BOTH,
        },
        s.CLOSE_SENT_BY_SERVER: {
            (CLIENT, close_ok): s.CLOSED,
            (CLIENT, close): s.CLOSE_SENT_BY_BOTH,
        },
        s.CLOSE_SENT_BY_BOTH: {
            (CLIENT, close_ok): s.CLOSE_OK_SENT_BY_CLIENT,
            (SERVER, close_ok): s.CLOSE_OK_SENT_BY_SERVER,
        },
        s.CLOSE_OK_SENT_BY_CLIENT: {(SERVER, close_ok): s.CLOSED},
        s.CLOSE_OK_SENT_BY_SERVER: {(CLIENT, close_ok): s.CLOSED},
    }


_CLOSE_BY_EITHER: Final[dict[tuple[Role, Input], ConnectionState]] = {
    (CLIENT, C.Close): CS.CLOSE_SENT_BY_CLIENT,
    (SERVER, C.Close): CS.CLOSE_SENT_BY_SERVER,
}

CONNECTION_TRANSITIONS: Final[dict[ConnectionState, dict[tuple[Role, Input], ConnectionState]]] = {
    # [XML connection grammar] C:protocol-header S:START C:START-OK *(S:SECURE C:SECURE-OK)
    # S:TUNE C:TUNE-OK C:OPEN S:OPEN-OK ... (C:CLOSE S:CLOSE-OK / S:CLOSE C:CLOSE-OK)
    CS.AWAIT_HEADER: {(CLIENT, ProtocolHeader): CS.AWAIT_START},
    CS.AWAIT_START: {
        (SERVER, C.Start): CS.AWAIT_START_OK,
        # A server that refuses our version answers with its own header and closes
        # [PDF §4.2.2].
        (SERVER, ProtocolHeader): CS.CLOSED,
    },
    CS.AWAIT_START_OK: {(CLIENT, C.StartOk): CS.AUTHENTICATING},
    CS.AUTHENTICATING: {
        (SERVER, C.Secure): CS.AWAIT_SECURE_OK,
        (SERVER, C.Tune): CS.AWAIT_TUNE_OK,
        # Not the spec's way (no Close before Open [PDF §2.2.4]), but RabbitMQ sends
        # Close 403 on a login failure to clients that set authentication_failure_close.
        (SERVER, C.Close): CS.CLOSE_SENT_BY_SERVER,
    },
    CS.AWAIT_SECURE_OK: {(CLIENT, C.SecureOk): CS.AUTHENTICATING},
    CS.AWAIT_TUNE_OK: {(CLIENT, C.TuneOk): CS.AWAIT_OPEN},
    CS.AWAIT_OPEN: {
        (CLIENT, C.Open): CS.AWAIT_OPEN_OK,
        # RabbitMQ answers a TuneOk it does not accept with Close 530.
        (SERVER, C.Close): CS.CLOSE_SENT_BY_SERVER,
    },
    # The client counts the connection as open once it has sent Open [PDF §2.3.7], so
    # from here on either side closes with the Close handshake.
    CS.AWAIT_OPEN_OK: {(SERVER, C.OpenOk): CS.OPEN, **_CLOSE_BY_EITHER},
    CS.OPEN: {
        **_CLOSE_BY_EITHER,
        # RabbitMQ extensions [XML-ext]: resource alarms, and credential refresh.
        (SERVER, C.Blocked): CS.OPEN,
        (SERVER, C.Unblocked): CS.OPEN,
        (CLIENT, C.UpdateSecret): CS.OPEN,
        (SERVER, C.UpdateSecretOk): CS.OPEN,
    },
    **_close_rows(ConnectionState, C.Close, C.CloseOk),
    CS.CLOSED: {},
    CS.ERROR: {},
}


def _senders(method: type[Method]) -> tuple[Role, ...]:
    """The roles that may send ``method``: CHASSIS names the sides that receive it."""
    return tuple(role.peer for role in (CLIENT, SERVER) if role.value in method.CHASSIS)


# Every method of the classes that live on an open channel keeps it open: exchange,
# queue, basic, tx, confirm, and channel.flow / flow-ok.
_ON_OPEN_CHANNEL: Final[dict[tuple[Role, Input], ChannelState]] = {
    (sender, method): H.OPEN
    for method in spec.METHODS.values()
    if method.CLASS_ID not in (C.CLASS_ID, Ch.CLASS_ID) or method in (Ch.Flow, Ch.FlowOk)
    for sender in _senders(method)
}

_CHANNEL_CLOSE_BY_EITHER: Final[dict[tuple[Role, Input], ChannelState]] = {
    (CLIENT, Ch.Close): H.CLOSE_SENT_BY_CLIENT,
    (SERVER, Ch.Close): H.CLOSE_SENT_BY_SERVER,
}

CHANNEL_TRANSITIONS: Final[dict[ChannelState, dict[tuple[Role, Input], ChannelState]]] = {
    # [XML channel grammar] C:OPEN S:OPEN-OK use-channel close-channel
    H.CLOSED: {(CLIENT, Ch.Open): H.OPENING},
    H.OPENING: {(SERVER, Ch.OpenOk): H.OPEN, **_CHANNEL_CLOSE_BY_EITHER},
    H.OPEN: {**_ON_OPEN_CHANNEL, **_CHANNEL_CLOSE_BY_EITHER},
    **_close_rows(ChannelState, Ch.Close, Ch.CloseOk),
}

# After sending Close, a peer discards everything but Close and CloseOk [XML
# connection.close and channel.close rule "stability"]. In these states, what the named
# roles send outside the table is dropped instead of being an error.
DISCARDING: Final[dict[enum.Enum, frozenset[Role]]] = {
    CS.CLOSE_SENT_BY_CLIENT: frozenset({SERVER}),
    CS.CLOSE_SENT_BY_SERVER: frozenset({CLIENT}),
    CS.CLOSE_SENT_BY_BOTH: frozenset({CLIENT, SERVER}),
    CS.CLOSE_OK_SENT_BY_CLIENT: frozenset({CLIENT, SERVER}),
    CS.CLOSE_OK_SENT_BY_SERVER: frozenset({CLIENT, SERVER}),
    H.CLOSE_SENT_BY_CLIENT: frozenset({SERVER}),
    H.CLOSE_SENT_BY_SERVER: frozenset({CLIENT}),
    H.CLOSE_SENT_BY_BOTH: frozenset({CLIENT, SERVER}),
    H.CLOSE_OK_SENT_BY_CLIENT: frozenset({CLIENT, SERVER}),
    H.CLOSE_OK_SENT_BY_SERVER: frozenset({CLIENT, SERVER}),
}

CONNECTION_IS_OPEN: Final = frozenset({CS.AWAIT_OPEN_OK, CS.OPEN})
"""States in which a protocol error is answered with Connection.Close: the client has sent
Open. Before that there is no Close handshake for errors [PDF §2.2.4]."""

CONNECTION_CLOSING: Final = frozenset(
    {
        CS.CLOSE_SENT_BY_CLIENT,
        CS.CLOSE_SENT_BY_SERVER,
        CS.CLOSE_SENT_BY_BOTH,
        CS.CLOSE_OK_SENT_BY_CLIENT,
        CS.CLOSE_OK_SENT_BY_SERVER,
    }
)

CHANNEL_CLOSING: Final = frozenset(
    {
        H.CLOSE_SENT_BY_CLIENT,
        H.CLOSE_SENT_BY_SERVER,
        H.CLOSE_SENT_BY_BOTH,
        H.CLOSE_OK_SENT_BY_CLIENT,
        H.CLOSE_OK_SENT_BY_SERVER,
    }
)
