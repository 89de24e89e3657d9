"""A Connection's settings: what each role may be given, their types, and their checks.

How this works: ``Connection(Role.CLIENT, **settings)`` takes keyword settings typed by
:class:`ClientSettings` (or :class:`ServerSettings` for the server role), so mypy and
pyright flag a misspelled name or a value of the wrong type. At run time the same
rules are checked once, in :func:`check_settings`: an unknown name or a value of the
wrong type raises ``TypeError``, a value out of range ``ValueError``, each naming the
setting. The result is a :class:`Settings` record the Connection reads from.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, TypeAlias, TypedDict

from . import spec
from ._content import DEFAULT_MAX_BODY_SIZE
from ._state import Role

__all__ = [
    "CAPABILITIES",
    "DEFAULT_MAX_TOTAL_BODY_SIZE",
    "RABBITMQ_FRAME_TOLERANCE",
    "Authenticate",
    "ClientSettings",
    "CommonSettings",
    "Credentials",
    "ServerSettings",
    "Settings",
    "check_settings",
    "peer_properties",
]

DEFAULT_MAX_TOTAL_BODY_SIZE: Final = 1024 * 1024 * 1024
"""The default bound on the body bytes held for unfinished messages across channels."""
# RabbitMQ takes frames up to frame_max + 8 bytes [rabbit_reader ?FRAME_SIZE_FUDGE].
RABBITMQ_FRAME_TOLERANCE: Final = 8
MECHANISMS: Final = ("PLAIN", "AMQPLAIN", "EXTERNAL")


@dataclass(slots=True)
class Credentials:
    """What a client presented, for the server's ``authenticate`` setting.

    ``username`` and ``password`` are filled in for PLAIN and AMQPLAIN; for EXTERNAL the
    username is the authorisation identity (often empty). After a Connection.Secure
    challenge, ``response`` is the client's Secure-Ok answer and ``rounds`` counts them.
    """

    mechanism: str
    response: bytes
    username: str | None = None
    password: str | None = None
    client_properties: Mapping[str, Any] = field(default_factory=dict)
    rounds: int = 0


Authenticate: TypeAlias = Callable[[Credentials], "bool | bytes"]


class CommonSettings(TypedDict, total=False):
    """The settings both roles take (for a role known only at run time)."""

    channel_max: int
    frame_max: int
    heartbeat: int
    min_frame_size: int
    max_body_size: int
    max_total_body_size: int
    frame_max_tolerance: int | None


class ClientSettings(CommonSettings, total=False):
    """The settings of ``Connection(Role.CLIENT, ...)``; see the README's table."""

    username: str
    password: str
    virtual_host: str
    mechanism: str
    locale: str
    client_properties: Mapping[str, Any] | None
    secure_response: Callable[[bytes], bytes] | None
    pipelining: bool


class ServerSettings(CommonSettings, total=False):
    """The settings of ``Connection(Role.SERVER, ...)``; see the README's table."""

    server_properties: Mapping[str, Any] | None
    mechanisms: tuple[str, ...] | list[str] | str
    locales: tuple[str, ...] | list[str] | str
    authenticate: Authenticate | None
    check_virtual_host: Callable[[str, Credentials], bool] | None


@dataclass(slots=True)
class Settings:
    """The checked settings, with every default filled in."""

    # Both roles. Client: what to ask for in Tune-Ok; server: what to propose in Tune.
    channel_max: int = 2047
    frame_max: int = 131072
    heartbeat: int = 60
    min_frame_size: int = spec.FRAME_MIN_SIZE
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    max_total_body_size: int = DEFAULT_MAX_TOTAL_BODY_SIZE
    # How many bytes over frame_max a received frame may be: None is the role's default,
    # 8 for a server (RabbitMQ's tolerance, which amqpstorm relies on), 0 for a client.
    frame_max_tolerance: int | None = None
    # Client.
    username: str = "guest"
    password: str = "guest"
    virtual_host: str = "/"
    mechanism: str = "PLAIN"
    locale: str = "en_US"
    client_properties: Mapping[str, Any] | None = None
    secure_response: Callable[[bytes], bytes] | None = None
    pipelining: bool = False
    # Server.
    server_properties: Mapping[str, Any] | None = None
    mechanisms: tuple[str, ...] = ("PLAIN", "AMQPLAIN")
    locales: tuple[str, ...] = ("en_US",)
    authenticate: Authenticate | None = None
    check_virtual_host: Callable[[str, Credentials], bool] | None = None


_ROLE_SETTINGS: Final = {
    Role.CLIENT: frozenset(ClientSettings.__annotations__)
    | frozenset(CommonSettings.__annotations__),
    Role.SERVER: frozenset(ServerSettings.__annotations__)
    | frozenset(CommonSettings.__annotations__),
}
assert _ROLE_SETTINGS[Role.CLIENT] | _ROLE_SETTINGS[Role.SERVER] == {
    f.name for f in fields(Settings)
}

# name: (lowest, highest) for the int settings; None is no upper bound.
_INT_RANGES: Final[dict[str, tuple[int, int | None]]] = {
    "channel_max": (0, 0xFFFF),
    "heartbeat": (0, 0xFFFF),
    "frame_max": (0, 0xFFFFFFFF),
    "min_frame_size": (spec.FRAME_MIN_SIZE, 0xFFFFFFFF),
    "max_body_size": (0, None),
    "max_total_body_size": (0, None),
    "frame_max_tolerance": (0, None),
}
_STR: Final = ("username", "password", "virtual_host", "mechanism", "locale")
_MAPPINGS: Final = ("client_properties", "server_properties")
_CALLABLES: Final = ("secure_response", "authenticate", "check_virtual_host")
_WORDS: Final = ("mechanisms", "locales")


def _type_error(name: str, expected: str, value: object) -> TypeError:
    return TypeError(f"setting {name} must be {expected}, not {type(value).__name__} {value!r}")


def check_settings(role: Role, settings: Mapping[str, Any]) -> Settings:
    """The settings for ``role``, checked: TypeError or ValueError naming the setting."""
    unknown = set(settings) - _ROLE_SETTINGS[role]
    if unknown:
        others = unknown & _ROLE_SETTINGS[role.peer]
        hint = f" ({', '.join(sorted(others))}: {role.peer.value} only)" if others else ""
        raise TypeError(f"unknown {role.value} settings: {', '.join(sorted(unknown))}{hint}")
    for name, value in settings.items():
        if name in _INT_RANGES:
            if value is None and name == "frame_max_tolerance":
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise _type_error(name, "an int", value)
            low, high = _INT_RANGES[name]
            if value < low or (high is not None and value > high):
                top = "" if high is None else f" and {high}"
                raise ValueError(
                    f"setting {name} must be {'between' if top else 'at least'} {low}{top},"
                    f" not {value}"
                )
        elif name in _STR:
            if not isinstance(value, str):
                raise _type_error(name, "a str", value)
        elif name in _MAPPINGS:
            if value is not None and not isinstance(value, Mapping):
                raise _type_error(name, "a mapping or None", value)
        elif name in _CALLABLES:
            if value is not None and not callable(value):
                raise _type_error(name, "callable or None", value)
        elif name in _WORDS:
            if isinstance(value, str):
                value = value.split()
            if not isinstance(value, (tuple, list)) or not all(isinstance(w, str) for w in value):
                raise _type_error(name, "a tuple of str", value)
        elif name == "pipelining" and not isinstance(value, bool):
            raise _type_error(name, "a bool", value)
    s = Settings(**settings)
    s.mechanisms = tuple(s.mechanisms.split() if isinstance(s.mechanisms, str) else s.mechanisms)
    s.locales = tuple(s.locales.split() if isinstance(s.locales, str) else s.locales)
    if 0 < s.frame_max < s.min_frame_size:  # connection.tune frame-max: minimum
        raise ValueError(
            f"setting frame_max {s.frame_max} is below setting min_frame_size {s.min_frame_size}"
        )
    if s.mechanism not in MECHANISMS:
        raise ValueError(f"setting mechanism must be one of {', '.join(MECHANISMS)}")
    if s.frame_max_tolerance is None:
        s.frame_max_tolerance = RABBITMQ_FRAME_TOLERANCE if role is Role.SERVER else 0
    return s


CAPABILITIES: Final[Mapping[str, bool]] = {
    "publisher_confirms": True,
    "exchange_exchange_bindings": True,
    "basic.nack": True,
    "consumer_cancel_notify": True,
    "connection.blocked": True,
    "authentication_failure_close": True,
    "per_consumer_qos": True,
}
"""The capabilities table sent in client (and server) properties [rmq-docs:extensions]."""


def peer_properties(role: Role, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Our client-properties or server-properties table, ``extra`` merged in."""
    from . import __version__

    properties: dict[str, Any] = {
        "product": "amqpcodec",
        "version": __version__,
        # sys.version, not the platform module: importing platform costs ~1.4 ms at startup.
        "platform": f"Python {sys.version.split()[0]}",
        "information": "https://pypi.org/project/amqpcodec/",
        "capabilities": dict(CAPABILITIES),
    }
    if role is Role.SERVER:
        properties["copyright"] = ""
    for key, value in (extra or {}).items():
        if key == "capabilities" and isinstance(value, Mapping):
            properties["capabilities"].update(value)
        else:
            properties[key] = value
    return properties
