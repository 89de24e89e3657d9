# pyright: strict
"""Intended mistakes: mypy --strict and pyright --strict each report every line marked
``# error``, and nothing else. Checked by tests/test_typing.py, never run."""

from __future__ import annotations

from typing import NoReturn

from amqpcodec import Connection, Role, spec
from amqpcodec.events import AnyEvent, MessageReceived, MethodReceived


def assert_never(value: NoReturn) -> NoReturn:
    raise AssertionError(value)


def not_every_event(event: AnyEvent) -> None:
    match event:
        case MessageReceived() | MethodReceived():
            pass
        case _:
            assert_never(event)  # error: the other events are not handled


def mistakes(event: MessageReceived) -> None:
    Connection(Role.CLIENT, usrname="guest")  # error: misspelled setting
    Connection(Role.CLIENT, heartbeat="60")  # error: wrong type
    Connection(Role.SERVER, username="guest")  # error: a client's setting
    Connection(Role.CLIENT, mechanisms=("PLAIN",))  # error: a server's setting
    Connection(Role.CLIENT, pipelining="yes")  # error: wrong type
    spec.BasicProperties(timestamp="yesterday")  # error: not an int or datetime
    event.channel = 2  # error: events are frozen
    print(event.method.delivery_tag)  # error: a Basic.Publish has no delivery tag
    print(event.properties.content_type + 1)  # error: str | None, not int
    conn = Connection(Role.CLIENT)
    conn.data_to_send(max_bytes="10")  # error: an int
    conn.pending_request("1")  # error: a channel number
    conn.data_to_send_parts(max_parts=None).append(3)  # error: not a buffer
