"""Ten AMQP clients written by others, each running the same scenario (``clients/scenario.py``).

Each client is a small program in ``clients/`` that takes ``SCENARIO HOST PORT USER PASSWORD``
and exits 0 when everything came back as sent, non-zero with the reason otherwise. Every
client runs in every mode:

- ``rabbitmq``: against RabbitMQ on 127.0.0.1:5672;
- ``proxy``: through ``amqpcodec proxy --check`` to RabbitMQ, which must report no frame
  whose re-encoding differs and no frame it could not decode;
- ``serve``: against ``amqpcodec serve``.

Java and Go programs are compiled once per run into a temporary directory; amqplib comes
from ``clients/node_modules`` (``npm install`` in ``clients/``, as
``.ci/install-interop-clients.sh`` does for CI). A missing toolchain skips here and fails in
CI (``AMQPCODEC_REQUIRE_RABBITMQ=1``). The heartbeat runs of a mode start together and idle
side by side; everything else runs one at a time. ``conftest.py`` prints the client x mode
matrix at the end of the run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import matrix
import pytest
from toolchains import CLIENTS_DIR, NODE_PATH, require, tool

pytestmark = pytest.mark.rabbitmq

USER, PASSWORD = "guest", "guest"
RUN_TIMEOUT = 120  # seconds; a client that hangs fails instead of holding the run

# The scenarios beyond "basic" that each client can run (clients/scenario.py says what each is).
ALL_EXTRAS = ("confirm-consume", "heartbeat", "auth", "tables", "frame-max-4096")
BUT_FRAME_MAX = ALL_EXTRAS[:-1]
EXTRAS = {client: ALL_EXTRAS for client in matrix.CLIENTS} | {
    # aiormq, AMQPStorm and kombu take the server's frame_max; py-amqp takes a frame_max
    # setting and then ignores it (the README's interop findings)
    "aio-pika": BUT_FRAME_MAX,
    "amqpstorm": BUT_FRAME_MAX,
    "kombu": BUT_FRAME_MAX,
    "py-amqp": BUT_FRAME_MAX,
    # one connection per command, no confirms, string headers only: see client_amqp_tools.py
    "amqp-tools": ("auth",),
}


# Clients that cannot be installed on this Python (pyproject's test extra says why).
UNAVAILABLE = (
    {"amqpstorm": "AMQPStorm 3 (the release that works with pamqp 3) needs Python 3.11"}
    if sys.version_info < (3, 11)
    else {}
)


def command(client: str, request: pytest.FixtureRequest) -> list[str]:
    """The argv that runs a client's program, less the scenario arguments."""
    if client in UNAVAILABLE:
        pytest.skip(UNAVAILABLE[client])
    python = {
        "pika": "client_pika.py",
        "py-amqp": "client_py_amqp.py",
        "aio-pika": "client_aio_pika.py",
        "amqpstorm": "client_amqpstorm.py",
        "kombu": "client_kombu.py",
    }
    if client in python:
        return [sys.executable, str(CLIENTS_DIR / python[client])]
    if client == "amqplib":
        node = tool("node")
        if not (Path(NODE_PATH["NODE_PATH"]) / "amqplib").is_dir():
            require(f"amqplib is not installed in {NODE_PATH['NODE_PATH']}: npm install there")
        return [node, str(CLIENTS_DIR / "client_amqplib.js")]
    if client == "java":
        java, classpath = request.getfixturevalue("java_classpath").split("\0")
        return [java, "-cp", classpath, "InteropClient"]
    if client == "amqp091-go":
        return [request.getfixturevalue("go_binary")]
    if client == "bunny":
        ruby = tool("ruby")
        check = subprocess.run([ruby, "-e", "require 'bunny'"], capture_output=True, check=False)
        if check.returncode != 0:
            require("Bunny is not installed (Debian ruby-bunny)")
        return [ruby, str(CLIENTS_DIR / "client_bunny.rb")]
    assert client == "amqp-tools"
    for name in ("amqp-declare-queue", "amqp-publish", "amqp-consume", "amqp-get"):
        tool(name)
    return [sys.executable, str(CLIENTS_DIR / "client_amqp_tools.py")]


SERVER_TIMEOUT = 30  # seconds for `amqpcodec serve` / `proxy` to listen, and to stop
LISTENING = re.compile(r"listening on \[?([0-9a-f.:]+?)\]?:(\d+)")
PROXY_SUMMARY = re.compile(r"(\d+) frames decoded, (\d+) checked, (\d+) mismatches, (\d+) errors")


class Server:
    """``python -m amqpcodec ARGS`` in a subprocess, on the port it picked and printed."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "amqpcodec", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=CLIENTS_DIR,  # not the project root, whose amqpcodec/ `-m` would put first
        )
        assert self.process.stderr is not None
        seen: list[str] = []
        ready = threading.Event()
        self.address: tuple[str, int] | None = None

        def read_first_line() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                seen.append(line)
                found = LISTENING.search(line)
                if found:
                    self.address = (found.group(1), int(found.group(2)))
                    break
            ready.set()

        threading.Thread(target=read_first_line, daemon=True).start()
        if not ready.wait(SERVER_TIMEOUT) or self.address is None:
            self.process.kill()
            pytest.fail(f"amqpcodec {' '.join(args)} did not start: {''.join(seen)}")

    def stop(self) -> tuple[int, str, str]:
        """SIGINT, then the exit status and the rest of its output."""
        self.process.send_signal(signal.SIGINT)
        try:
            out, err = self.process.communicate(timeout=SERVER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            pytest.fail(f"amqpcodec {self.process.args} did not stop on SIGINT: {err}")
        return self.process.returncode, out, err


@pytest.fixture(scope="session")
def serve() -> Iterator[tuple[str, int]]:
    """One `amqpcodec serve` for the run (queues are server-named, so clients never meet)."""
    server = Server("serve", "--port", "0", "--user", f"{USER}:{PASSWORD}")
    assert server.address is not None
    yield server.address
    status, _, err = server.stop()
    assert status == 0, err


@pytest.fixture(scope="session")
def serve_at_frame_max_4096() -> Iterator[tuple[str, int]]:
    """The broker of `amqpcodec serve`, proposing frame_max 4096 (the command has no such
    option, so this one runs in a thread of the test process)."""
    from amqpcodec.broker import Broker

    with Broker(frame_max=4096, users={USER: PASSWORD}) as broker:
        yield broker.host, broker.port


class Run:
    """One client program running one scenario in one mode."""

    def __init__(self, client: str, mode: str, scenario: str, request: pytest.FixtureRequest):
        self.client, self.mode, self.scenario = client, mode, scenario
        argv = command(client, request)
        self.proxy: Server | None = None
        if mode == "rabbitmq":
            host, port = request.getfixturevalue("rabbitmq")
        elif mode == "serve":
            host, port = request.getfixturevalue("serve")
        elif mode == "serve-4096":
            host, port = request.getfixturevalue("serve_at_frame_max_4096")
        else:
            assert mode == "proxy"
            upstream = "{}:{}".format(*request.getfixturevalue("rabbitmq"))
            self.proxy = Server(
                "proxy", "--listen", "127.0.0.1:0", "--upstream", upstream, "--check", "--quiet"
            )
            assert self.proxy.address is not None
            host, port = self.proxy.address
        password = "wrong-password" if scenario == "auth" else PASSWORD
        self.process = subprocess.Popen(
            [*argv, scenario, host, str(port), USER, password],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=CLIENTS_DIR,
            env=os.environ | NODE_PATH,
        )

    def finish(self) -> None:
        """Wait for the client; fail unless it and (in proxy mode) the proxy found nothing."""
        what = f"{self.client} ({self.scenario}, {self.mode})"
        try:
            out, err = self.process.communicate(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
            self.stop_proxy()
            pytest.fail(f"{what} still running after {RUN_TIMEOUT} s\n{out}\n{err}")
        proxy_report = self.stop_proxy()
        assert self.process.returncode == 0, (
            f"{what} exited with {self.process.returncode}\nstdout: {out}\nstderr: {err}"
            f"{proxy_report}"
        )
        assert out.strip().endswith(f"ok {self.scenario}"), out

    def stop_proxy(self) -> str:
        """Stop the proxy; fail on any mismatch or undecodable frame it reported."""
        if self.proxy is None:
            return ""
        status, out, err = self.proxy.stop()
        self.proxy = None
        summary = PROXY_SUMMARY.search(err)
        assert summary is not None, f"no summary from the proxy: {err}"
        decoded, checked, mismatches, errors = map(int, summary.groups())
        matrix.proxy_frames["checked"] += checked
        matrix.proxy_frames["mismatched"] += mismatches
        matrix.proxy_frames["undecodable"] += errors
        assert (mismatches, errors, status) == (0, 0, 0), f"proxy --check found:\n{out}{err}"
        assert checked == decoded > 0, err
        return f"\nproxy: {err}"

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate()
        if self.proxy is not None:
            self.proxy.process.kill()
            self.proxy.process.communicate()


@pytest.fixture(scope="session")
def started() -> Iterator[dict[tuple[str, str, str], Run | BaseException]]:
    """Runs started ahead of their test (the idle heartbeat runs, all at once per mode)."""
    runs: dict[tuple[str, str, str], Run | BaseException] = {}
    yield runs
    for run in runs.values():
        if isinstance(run, Run):
            run.kill()


def start_together(
    scenario: str,
    mode: str,
    request: pytest.FixtureRequest,
    started: dict[tuple[str, str, str], Run | BaseException],
) -> None:
    """Start every selected test's run of this scenario in this mode, so that the clients
    idle side by side instead of one after another."""
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("scenario") != scenario or params.get("mode") != mode:
            continue
        key = (params["client"], mode, scenario)
        if key not in started:
            try:
                started[key] = Run(params["client"], mode, scenario, request)
            except (Exception, pytest.skip.Exception, pytest.fail.Exception) as exc:
                started[key] = exc  # raised again in that client's own test


def run_client(client: str, mode: str, scenario: str, request: pytest.FixtureRequest) -> None:
    if scenario == "heartbeat":
        started = request.getfixturevalue("started")
        if (client, mode, scenario) not in started:
            start_together(scenario, mode, request, started)
        run = started.pop((client, mode, scenario))
        if isinstance(run, BaseException):
            raise run
    else:
        run = Run(client, mode, scenario, request)
    run.finish()


MODES = ("rabbitmq", "proxy", "serve")  # serve-4096: basic only, below


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client", matrix.CLIENTS)
def test_client(client: str, mode: str, request: pytest.FixtureRequest) -> None:
    """Publish four messages with confirms, consume them back, compare, ack, close."""
    run_client(client, mode, "basic", request)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("client", "scenario"),
    [(client, scenario) for client in matrix.CLIENTS for scenario in EXTRAS[client]],
)
def test_client_scenario(
    client: str, scenario: str, mode: str, request: pytest.FixtureRequest
) -> None:
    """Consume while confirming; 1 s heartbeats over 7 idle seconds; 403; every table type."""
    run_client(client, mode, scenario, request)


def test_readme_shows_the_matrix_for_every_client() -> None:
    """The README's interop section holds the matrix as the suite prints it, one row a client."""
    readme = (CLIENTS_DIR.parents[2] / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- interop-matrix -->")[1].split("<!-- /interop-matrix -->")[0]
    header = block.strip().splitlines()[0]
    assert header == "| client | RabbitMQ | proxy --check | serve | serve, frame_max 4096 |"
    for title in ("pika ", "py-amqp ", "aio-pika ", "amqplib ", "amqp091-go ", "bunny "):
        assert f"\n| {title}" in block, title
    assert block.count("\n| ") >= 2 * (len(matrix.CLIENTS) + 1)


@pytest.mark.parametrize("mode", ["serve-4096"])
@pytest.mark.parametrize("client", matrix.CLIENTS)
def test_client_against_a_broker_at_frame_max_4096(
    client: str, mode: str, request: pytest.FixtureRequest
) -> None:
    """The basic scenario once more against the in-memory broker, which proposes the smallest
    frame_max: every client takes it, so bodies go out in 4,088-byte frames (AMQPStorm's in
    4,096-byte ones, 8 over, which the server role takes as RabbitMQ does)."""
    run_client(client, mode, "basic", request)


@pytest.mark.parametrize("mode", MODES)
def test_all_clients_at_once(mode: str, request: pytest.FixtureRequest) -> None:
    """The ten clients' scenarios side by side on one broker (and, in proxy mode, each through
    its own proxy): connections, queues and confirms must not leak between them."""
    runs: list[Run] = []
    failures: list[str] = []
    try:
        for client in matrix.CLIENTS:
            if client not in UNAVAILABLE:
                runs.append(Run(client, mode, "basic", request))
        while runs:
            run = runs.pop(0)
            try:
                run.finish()
            except (AssertionError, pytest.fail.Exception) as exc:
                failures.append(f"{run.client}: {exc}")
    finally:
        for run in runs:
            run.kill()
    assert not failures, "\n".join(failures)
