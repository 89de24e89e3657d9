"""A client and a server Connection joined in memory, for the connection and state tests."""

from __future__ import annotations

from typing import Any

from amqpcodec import (
    BodyFrame,
    Connection,
    FrameDecoder,
    HeaderFrame,
    Method,
    MethodFrame,
    ProtocolHeader,
    Role,
    spec,
)
from amqpcodec._frames import Frame
from amqpcodec.events import ChannelOpened, ConnectionOpened, Event


class Pair:
    """Pumps bytes between a client and a server until both are quiet.

    Every byte either side sends is also decoded by a FrameDecoder per direction, so a
    test can look at the frames that went over the wire (``sent[Role.CLIENT]``).
    """

    def __init__(self, client: dict[str, Any] | None = None, **server: Any) -> None:
        self.client = Connection(Role.CLIENT, **(client or {}))
        self.server = Connection(Role.SERVER, **server)
        self.decoders = {Role.CLIENT: FrameDecoder(0), Role.SERVER: FrameDecoder(0)}
        self.sent: dict[Role, list[Frame]] = {Role.CLIENT: [], Role.SERVER: []}
        self.raw: dict[Role, bytearray] = {Role.CLIENT: bytearray(), Role.SERVER: bytearray()}

    def conn(self, role: Role) -> Connection:
        return self.client if role is Role.CLIENT else self.server

    def transfer(self, sender: Role) -> list[Event]:
        """Move what ``sender`` has queued to its peer; the peer's events."""
        data = self.conn(sender).data_to_send()
        if not data:
            return []
        self.raw[sender] += data
        self.sent[sender] += self.decoders[sender].feed(data)
        return self.conn(sender.peer).receive_data(data)

    def pump(self) -> tuple[list[Event], list[Event]]:
        """Transfer both ways until nothing is queued: (client's events, server's events)."""
        client_events: list[Event] = []
        server_events: list[Event] = []
        while True:
            got_server = self.transfer(Role.CLIENT)
            got_client = self.transfer(Role.SERVER)
            server_events += got_server
            client_events += got_client
            if not self.client._out and not self.server._out:
                return client_events, server_events

    def handshake(self) -> ConnectionOpened:
        client_events, server_events = self.pump()
        assert isinstance(client_events[-1], ConnectionOpened), client_events
        assert server_events[-1] == client_events[-1]
        return client_events[-1]

    def open_channel(self, channel: int | None = None) -> int:
        number = self.client.open_channel(channel)
        assert self.pump() == ([ChannelOpened(number)], [ChannelOpened(number)])
        return number


def opened_pair(client: dict[str, Any] | None = None, **server: Any) -> Pair:
    pair = Pair(client, **server)
    pair.handshake()
    return pair


def method_bytes(channel: int, method: Method) -> bytes:
    return MethodFrame(channel, method).encode()


def content_bytes(channel: int, method: Method, body: bytes, properties: Any = None) -> bytes:
    header = HeaderFrame(channel, len(body), properties or spec.BasicProperties())
    data = MethodFrame(channel, method).encode() + header.encode()
    if body:
        data += BodyFrame(channel, body).encode()
    return data


def decode_all(data: bytes, frame_max: int = 0) -> list[Frame]:
    return FrameDecoder(frame_max).feed(data)


def client_handshake_bytes(
    tune_ok: spec.Connection.TuneOk | None = None, virtual_host: str = "/"
) -> list[bytes]:
    """What a client sends, step by step, to drive a server by hand."""
    start_ok = spec.Connection.StartOk({}, "PLAIN", b"\0guest\0guest", "en_US")
    return [
        ProtocolHeader().encode(),
        method_bytes(0, start_ok),
        method_bytes(0, tune_ok or spec.Connection.TuneOk(2047, 131072, 60)),
        method_bytes(0, spec.Connection.Open(virtual_host)),
    ]


def server_opened(**settings: Any) -> Connection:
    """A server Connection driven to OPEN by hand-made client bytes that accept its Tune."""
    server = Connection(Role.SERVER, **settings)
    header, start_ok, _, open_ = client_handshake_bytes()
    server.receive_data(header + start_ok)
    (tune,) = [
        f.method for f in decode_all(server.data_to_send())[1:] if isinstance(f, MethodFrame)
    ]
    tune_ok = spec.Connection.TuneOk(tune.channel_max, tune.frame_max, tune.heartbeat)
    server.receive_data(method_bytes(0, tune_ok) + open_)
    server.data_to_send()
    return server
