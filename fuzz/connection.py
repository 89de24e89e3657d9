"""Harness: Connection in either role receiving any bytes, in chunks of a drawn size.

Promises checked: only RemoteProtocolError (DecodeError included) comes out of
receive_data; after one, the connection stays failed; data_to_send never raises.
Seeds: the recorded streams in tests/data/captures/*.bin (client to server for the
server role, server to client for the client role).
"""

from __future__ import annotations

import atheris
from _harness import files, run

with atheris.instrument_imports():
    from amqpcodec import Connection, LocalProtocolError, RemoteProtocolError, Role


def test_one_input(raw: bytes) -> None:
    if len(raw) < 2:
        return
    role = Role.SERVER if raw[0] & 1 else Role.CLIENT
    chunk, data = raw[1] % 31 + 1, raw[2:]
    conn = Connection(role, heartbeat=0)
    conn.data_to_send()
    for at in range(0, len(data), chunk):
        try:
            conn.receive_data(data[at : at + chunk])
        except RemoteProtocolError:
            conn.data_to_send()
            try:
                conn.receive_data(b"\x01")
            except LocalProtocolError:
                return  # failed for good, as documented
            raise AssertionError("a failed connection took more bytes") from None
        conn.data_to_send()
        conn.tick(float(at))
    conn.receive_data(b"")  # the peer closes


def seeds() -> list[bytes]:
    server = [b"\x01\x07" + seed for seed in files("captures/*.c2s.bin")]
    client = [b"\x00\x07" + seed for seed in files("captures/*.s2c.bin")]
    return server + client


if __name__ == "__main__":
    run("connection", test_one_input, seeds())
