# pyright: strict
"""Intended uses of the Connection API: mypy --strict and pyright --strict accept them all.

Checked by tests/test_typing.py, never run.
"""

from __future__ import annotations

import datetime
from typing import NoReturn

from amqpcodec import ClientSettings, Connection, Credentials, Method, Role, ServerSettings, spec
from amqpcodec.events import (
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


def assert_never(value: NoReturn) -> NoReturn:
    raise AssertionError(value)


def handle(event: AnyEvent) -> str:
    match event:
        case MessageReceived(method=spec.Basic.Deliver(delivery_tag=tag)):
            return f"deliver {tag}"
        case MessageReceived():
            properties: spec.BasicProperties = event.properties
            return f"{event.method.NAME} {properties.content_type} {event.confirm_tag}"
        case MethodReceived(request=request):
            return f"{event.method.NAME} answers {request.NAME if request else None}"
        case ChannelClosed(unconfirmed=tags, unanswered=requests):
            return f"{len(tags)} {len(requests)}"
        case ConnectionClosed(unconfirmed=by_channel):
            return f"{sum(len(t) for t in by_channel.values())} {event.lost}"
        case (
            ProtocolHeaderReceived()
            | ConnectionOpened()
            | ConnectionBlocked()
            | ConnectionUnblocked()
            | ChannelOpened()
            | FlowChanged()
            | Confirmed()
            | HeartbeatTimeout()
        ):
            return type(event).__name__
        case _:
            assert_never(event)


def authenticate(credentials: Credentials) -> bool:
    return credentials.username == "guest"


def client_and_server(role: Role) -> None:
    client = Connection(Role.CLIENT, username="u", heartbeat=30, pipelining=True)
    server = Connection(Role.SERVER, authenticate=authenticate, mechanisms=("PLAIN",))
    settings: ClientSettings = {"virtual_host": "/", "frame_max": 8192}
    Connection(Role.CLIENT, **settings)
    server_settings: ServerSettings = {"frame_max_tolerance": 0, "max_total_body_size": 1 << 20}
    Connection(Role.SERVER, **server_settings)
    Connection(role, heartbeat=10)  # a role known only at run time
    for event in client.receive_data(server.data_to_send(max_bytes=4096)):
        handle(event)
    for event in client.tick(0.0):
        handle(event)
    parts: list[bytes | bytearray | memoryview] = client.data_to_send_parts(max_parts=1024)
    queued: int = client.bytes_to_send
    at: float | None = client.next_tick_at
    pending: Method | None = client.pending_request(1)
    tags: tuple[int, ...] = client.unconfirmed(1)
    ok: bool = client.can_publish(1) and client.is_open
    stamp = datetime.datetime.now(datetime.timezone.utc)
    properties = spec.BasicProperties(timestamp=stamp, delivery_mode=2)
    tag: int | None = client.send_message(1, spec.Basic.Publish(routing_key="q"), properties)
    client.close_channel(1)
    client.close()
    print(parts, queued, at, pending, tags, ok, tag)
