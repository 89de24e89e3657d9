"""Ten AMQP clients written by others, each running the same scenario (``clients/scenario.py``).

Each client is a small program in ``clients/`` that takes ``SCENARIO HOST PORT USER PASSWORD``
and exits 0 when everything came back as sent, non-zero with the reason otherwise. Every
client runs in every mode:

- ``rabbitmq``: against RabbitMQ on 127.0.0.1:5672;
- ``proxy``: through ``amqpcodec proxy --check`` to RabbitMQ, which must report no frame
  whose re-encoding differs and no frame it could not decode;
- ``serve``: against ``amqpcodec serve``.

Java and Go programs are compiled once per run into a temporary directory; amqplib comes
from ``clients/node_modules`` (``npm install`` in ``clients/``, as ``.ci/run`` does). A
missing toolchain skips here and fails in CI (``AMQPCODEC_REQUIRE_RABBITMQ=1``).
``conftest.py`` prints the client x mode matrix at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import matrix
import pytest

pytestmark = pytest.mark.rabbitmq

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
USER, PASSWORD = "guest", "guest"
RUN_TIMEOUT = 120  # seconds; a client that hangs fails instead of holding the run

# The scenarios beyond "basic" that each client can run (clients/scenario.py says what each is).
ALL_EXTRAS = ("confirm-consume", "heartbeat", "auth", "tables")
EXTRAS = {client: ALL_EXTRAS for client in matrix.CLIENTS} | {
    # one connection per command, no confirms, string headers only: see client_amqp_tools.py
    "amqp-tools": ("auth",),
}

JAVA_JARS = [
    Path("/usr/share/java/amqp-client.jar"),
    Path("/usr/share/java/slf4j-api.jar"),
    Path("/usr/share/java/slf4j-nop.jar"),
]
GOPATH = Path("/usr/share/gocode")
AMQP091_GO = GOPATH / "src" / "github.com" / "rabbitmq" / "amqp091-go"


def require(what: str) -> None:
    """Skip a test for want of a toolchain or client; in CI, where .ci/run installs them all,
    fail instead."""
    if os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ") == "1":
        pytest.fail(f"{what} (.ci/run installs it)")
    pytest.skip(what)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        require(f"{name} is not installed")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def java_classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    javac, java = _tool("javac"), _tool("java")
    for jar in JAVA_JARS:
        if not jar.exists():
            require(f"{jar} is missing (Debian librabbitmq-client-java)")
    out = tmp_path_factory.mktemp("java")
    classpath = ":".join(str(jar) for jar in JAVA_JARS)
    subprocess.run(
        [javac, "-d", str(out), "-cp", classpath, str(CLIENTS_DIR / "InteropClient.java")],
        check=True,
        timeout=300,
    )
    return f"{java}\0{classpath}:{out}"


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    go = _tool("go")
    if not AMQP091_GO.exists():
        require(f"{AMQP091_GO} is missing (Debian golang-github-rabbitmq-amqp091-go-dev)")
    out = tmp_path_factory.mktemp("go")
    env = os.environ | {"GOPATH": str(GOPATH), "GO111MODULE": "off", "GOCACHE": str(out / "cache")}
    binary = out / "client_amqp091"
    subprocess.run(
        [go, "build", "-o", str(binary), str(CLIENTS_DIR / "client_amqp091.go")],
        check=True,
        timeout=300,
        env=env,
    )
    return str(binary)


def command(client: str, request: pytest.FixtureRequest) -> list[str]:
    """The argv that runs a client's program, less the scenario arguments."""
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
        node = _tool("node")
        if not (CLIENTS_DIR / "node_modules" / "amqplib").is_dir():
            require("amqplib is not installed: npm install in tests/interop/clients")
        return [node, str(CLIENTS_DIR / "client_amqplib.js")]
    if client == "java":
        java, classpath = request.getfixturevalue("java_classpath").split("\0")
        return [java, "-cp", classpath, "InteropClient"]
    if client == "amqp091-go":
        return [request.getfixturevalue("go_binary")]
    if client == "bunny":
        ruby = _tool("ruby")
        check = subprocess.run([ruby, "-e", "require 'bunny'"], capture_output=True, check=False)
        if check.returncode != 0:
            require("Bunny is not installed (Debian ruby-bunny)")
        return [ruby, str(CLIENTS_DIR / "client_bunny.rb")]
    assert client == "amqp-tools"
    for tool in ("amqp-declare-queue", "amqp-publish", "amqp-consume", "amqp-get"):
        _tool(tool)
    return [sys.executable, str(CLIENTS_DIR / "client_amqp_tools.py")]


def endpoint(mode: str, request: pytest.FixtureRequest) -> tuple[str, int]:
    """Where a client connects in this mode."""
    assert mode == "rabbitmq"
    address: tuple[str, int] = request.getfixturevalue("rabbitmq")
    return address


def run_client(client: str, mode: str, scenario: str, request: pytest.FixtureRequest) -> str:
    argv = command(client, request)
    host, port = endpoint(mode, request)
    password = "wrong-password" if scenario == "auth" else PASSWORD
    try:
        done = subprocess.run(
            [*argv, scenario, host, str(port), USER, password],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            cwd=CLIENTS_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{client} ({scenario}, {mode}) still running after {RUN_TIMEOUT} s: {exc}")
    assert done.returncode == 0, (
        f"{client} ({scenario}, {mode}) exited with {done.returncode}\n"
        f"stdout: {done.stdout}\nstderr: {done.stderr}"
    )
    assert done.stdout.strip().endswith(f"ok {scenario}"), done.stdout
    return done.stdout


MODES = ("rabbitmq",)


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
