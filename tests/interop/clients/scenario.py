"""The interop scenario as data and checks, shared by the Python client programs.

Every client program in this directory runs the same scenario (the programs in other
languages repeat these constants):

    connect, declare a server-named queue, turn confirms on, publish four messages with
    bodies of 0, 10, 5,000 and 300,000 bytes, content_type, delivery_mode 2 and a headers
    table (a string, an int, a bool, a nested table, an array), wait for the confirms,
    consume the messages back, check bodies, properties, headers and order, ack, close.

Message n's body byte i is (i * 31 + n) % 251 and its headers hold n, so any swap, loss or
corruption shows. A program is run as ``PROGRAM SCENARIO HOST PORT USER PASSWORD`` and exits
0 when everything matched, 1 with a message on stderr otherwise. Scenarios:

- ``basic``: the scenario above.
- ``auth``: log in with the (wrong) password given and expect the broker's 403
  ACCESS_REFUSED; success is the refusal.
- ``heartbeat``: connect with a 1 s heartbeat, stay idle for 7 s, then run ``basic`` on the
  same connection (the connection must have survived).
- ``confirm-consume``: one channel consumes its own queue while it waits for the confirms
  of the messages it publishes (deliveries and acks interleave on one channel).
- ``tables``: a headers table with every field type the client can write, read back equal.
- ``frame-max-4096``: ``basic`` on a connection where the client asks for frame_max 4096, the
  protocol's minimum (the 300,000-byte body then takes 74 body frames each way).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

CONTENT_TYPE = "application/x-amqpcodec-interop"
SIZES = (0, 10, 5_000, 300_000)
SCENARIOS = ("basic", "auth", "heartbeat", "confirm-consume", "tables", "frame-max-4096")
IDLE_SECONDS = 7  # the heartbeat scenario's idle time at a 1 s heartbeat


class Mismatch(Exception):
    """What came back is not what was sent."""


def body(n: int) -> bytes:
    pattern = bytes((i * 31 + n) % 251 for i in range(251))
    size = SIZES[n]
    return (pattern * (size // 251 + 1))[:size]


def headers(n: int) -> dict[str, Any]:
    return {"s": "amqpcodec", "n": n, "b": True, "t": {"k": "v", "x": 1}, "a": [1, "two"]}


def normalise(value: Any) -> Any:
    """One form for what different clients hand back (bytes or str, tuple or list)."""
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return bytes(value)
    if isinstance(value, dict):
        return {normalise(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def same(expected: Any, got: Any) -> bool:
    """Equal, and a bool stays a bool (True == 1 in Python, not on the wire)."""
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and expected.keys() == got.keys()
            and all(same(v, got[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(expected) == len(got)
            and all(same(e, g) for e, g in zip(expected, got, strict=True))
        )
    return isinstance(got, bool) == isinstance(expected, bool) and expected == got


def check(n: int, got_body: bytes, content_type: Any, delivery_mode: Any, got_headers: Any) -> None:
    """Raise Mismatch unless message n came back as sent."""
    expected = body(n)
    if bytes(got_body) != expected:
        raise Mismatch(f"message {n}: body of {len(got_body)} bytes, expected {len(expected)}")
    if normalise(content_type) != CONTENT_TYPE:
        raise Mismatch(f"message {n}: content_type {content_type!r}")
    if delivery_mode != 2:
        raise Mismatch(f"message {n}: delivery_mode {delivery_mode!r}")
    if not same(headers(n), normalise(got_headers)):
        raise Mismatch(f"message {n}: headers {got_headers!r}, expected {headers(n)!r}")


def check_tables(sent: dict[str, Any], got: Any) -> None:
    if not same(normalise(sent), normalise(got)):
        raise Mismatch(f"table came back as {got!r}, sent {sent!r}")


def main(run: Callable[[str, str, int, str, str], None]) -> None:
    """Parse ``SCENARIO HOST PORT USER PASSWORD``, run, exit 0 or 1 with the reason."""
    if len(sys.argv) != 6 or sys.argv[1] not in SCENARIOS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(SCENARIOS)}}} HOST PORT USER PASSWORD")
    scenario, host, port, user, password = sys.argv[1:]
    try:
        run(scenario, host, int(port), user, password)
    except Mismatch as exc:
        sys.exit(f"MISMATCH: {exc}")
    except Exception:
        traceback.print_exc()
        sys.exit("FAILED: the client raised (traceback above)")
    print(f"ok {scenario}")
