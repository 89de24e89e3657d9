"""The interop matrix: what each client did in each mode, printed at the end of the run.

``tests/interop/test_clients.py`` records one result per (client, mode, scenario) through
``conftest.py``'s report hook; ``conftest.py`` prints the tables as the run's last words, in
the Markdown the README's interop section shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from importlib import metadata
from pathlib import Path

CLIENTS = (
    "pika",
    "py-amqp",
    "aio-pika",
    "amqpstorm",
    "kombu",
    "amqplib",
    "java",
    "amqp091-go",
    "bunny",
    "amqp-tools",
)
MODES = ("rabbitmq", "proxy", "serve", "serve-4096")
MODE_TITLES = {
    "rabbitmq": "RabbitMQ",
    "proxy": "proxy --check",
    "serve": "serve",
    "serve-4096": "serve, frame_max 4096",
}
EXTRA_SCENARIOS = {
    "confirm-consume": "consume while confirming",
    "heartbeat": "heartbeat 1 s, idle 7 s",
    "auth": "wrong password (403)",
    "tables": "every table type",
    "frame-max-4096": "frame_max 4096",
}

results: dict[tuple[str, str, str], str] = {}  # (client, mode, scenario) -> pass / FAIL / skip
proxy_frames: Counter[str] = Counter()  # "checked" and "mismatched" frames, "undecodable" reports

_PYTHON = {
    "pika": "pika",
    "py-amqp": "amqp",
    "aio-pika": "aio-pika",
    "amqpstorm": "AMQPStorm",
    "kombu": "kombu",
}
_DEBIAN = {
    "java": "librabbitmq-client-java",
    "amqp091-go": "golang-github-rabbitmq-amqp091-go-dev",
    "bunny": "ruby-bunny",
    "amqp-tools": "amqp-tools",
}
_TITLES = {"java": "RabbitMQ Java client", "amqp-tools": "rabbitmq-c amqp-tools"}


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for client, distribution in _PYTHON.items():
        try:
            found[client] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[client] = "?"
    package = Path(__file__).parent / "clients" / "node_modules" / "amqplib" / "package.json"
    try:
        found["amqplib"] = json.loads(package.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        found["amqplib"] = "?"
    for client in _DEBIAN:
        found[client] = "?"
    if shutil.which("dpkg-query"):
        query = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *_DEBIAN.values()],
            capture_output=True,
            text=True,
            check=False,
        )
        installed = dict(line.split(" ", 1) for line in query.stdout.splitlines() if " " in line)
        for client, package_name in _DEBIAN.items():
            found[client] = installed.get(package_name, "?")
    return found


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def tables() -> list[str]:
    """The matrix as Markdown lines (empty when no client ran)."""
    if not results:
        return []
    modes = [m for m in MODES if any(key[1] == m for key in results)]
    version = versions()
    lines = [
        _row(["client", *[MODE_TITLES[m] for m in modes]]),
        _row(["---"] * (len(modes) + 1)),
    ]
    for client in CLIENTS:
        cells = [results.get((client, mode, "basic"), "-") for mode in modes]
        title = _TITLES.get(client, client)
        lines.append(_row([f"{title} {version[client]}", *cells]))
    extras = [s for s in EXTRA_SCENARIOS if any(key[2] == s for key in results)]
    modes = [m for m in modes if any(key[1] == m and key[2] in extras for key in results)]
    if extras:
        lines += [
            "",
            f"Extra scenarios, one result per mode ({' / '.join(MODE_TITLES[m] for m in modes)}):",
            "",
            _row(["client", *[EXTRA_SCENARIOS[s] for s in extras]]),
            _row(["---"] * (len(extras) + 1)),
        ]
        for client in CLIENTS:
            cells = []
            for scenario in extras:
                got = [results.get((client, mode, scenario)) for mode in modes]
                cells.append("n/a" if not any(got) else " / ".join(g or "-" for g in got))
            lines.append(_row([_TITLES.get(client, client), *cells]))
    if proxy_frames:
        lines += [
            "",
            f"proxy --check: {proxy_frames['checked']:,} frames re-encoded and compared, "
            f"{proxy_frames['mismatched']} mismatched, {proxy_frames['undecodable']} undecodable",
        ]
    return lines
