"""The interop scenario (see scenario.py), as far as rabbitmq-c's command-line tools go.

amqp-declare-queue declares the server-named queue; amqp-publish publishes each body (from
stdin) with content_type, delivery_mode 2 (-p) and headers; amqp-consume consumes the four
messages, acking each after its command (sha256sum) read the body; amqp-get then finds the
queue empty, which shows the acks arrived; amqp-delete-queue removes it.

What the tools cannot do: each runs on its own connection (so the queue cannot be
exclusive); amqp-publish has no publisher confirms and writes only string headers (-H
"key: value"); amqp-consume and amqp-get hand the command the body alone, so properties
and headers cannot be read back. The heartbeat, confirm-consume and tables scenarios need a
client that stays connected or writes typed tables: not applicable.
"""

from __future__ import annotations

import hashlib
import subprocess

import scenario as sc

TIMEOUT = 60


def tool(
    name: str, host: str, port: int, user: str, password: str, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    connection = ["--server", host, "--port", str(port), "--username", user, "--password", password]
    return subprocess.run(
        [name, *connection, *args], input=stdin, capture_output=True, timeout=TIMEOUT, check=False
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace")
        raise sc.Mismatch(f"{result.args[0]} exited with {result.returncode}: {stderr}")
    return result.stdout.decode()


def run(scenario: str, host: str, port: int, user: str, password: str) -> None:
    if scenario == "auth":
        result = tool("amqp-declare-queue", host, port, user, password, "--queue", "")
        if result.returncode == 0:
            raise sc.Mismatch("logged in with a wrong password")
        if b"403" not in result.stderr:
            raise sc.Mismatch(f"refused without 403: {result.stderr!r}")
        return
    if scenario != "basic":
        raise sc.Mismatch(f"the command-line tools cannot run the {scenario} scenario")
    queue = ok(tool("amqp-declare-queue", host, port, user, password, "--queue", "")).strip()
    if not queue:
        raise sc.Mismatch("amqp-declare-queue printed no queue name")
    try:
        for n in range(len(sc.SIZES)):
            h = sc.headers(n)
            ok(
                tool(
                    "amqp-publish",
                    host,
                    port,
                    user,
                    password,
                    "--routing-key",
                    queue,
                    "--content-type",
                    sc.CONTENT_TYPE,
                    "--persistent",
                    "--header",
                    f"s: {h['s']}",
                    "--header",
                    f"n: {h['n']}",
                    stdin=sc.body(n),
                )
            )
        consumed = ok(
            tool(
                "amqp-consume",
                host,
                port,
                user,
                password,
                "--queue",
                queue,
                "--count",
                str(len(sc.SIZES)),
                "--",
                "sha256sum",
            )
        )
        got = [line.split()[0] for line in consumed.splitlines()]
        expected = [hashlib.sha256(sc.body(n)).hexdigest() for n in range(len(sc.SIZES))]
        for n, (g, e) in enumerate(zip(got, expected, strict=False)):
            if g != e:
                raise sc.Mismatch(f"message {n}: body's sha256 {g}, expected {e}")
        if len(got) != len(expected):
            raise sc.Mismatch(f"{len(got)} of {len(expected)} messages came back")
        empty = tool("amqp-get", host, port, user, password, "--queue", queue)
        if empty.returncode != 2:  # 2: the queue is empty
            raise sc.Mismatch(f"the queue is not empty after the acks: {empty!r}")
    finally:
        tool("amqp-delete-queue", host, port, user, password, "--queue", queue)


if __name__ == "__main__":
    sc.main(run)
