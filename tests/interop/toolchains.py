"""Finding the toolchains and clients the interop tests run, and building the Java and Go
programs. A missing one skips a test, except in CI (``AMQPCODEC_REQUIRE_RABBITMQ=1``), where
``.ci/install-interop-clients.sh`` installed them all and a missing one fails the test."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
JAVA_JARS = [
    Path("/usr/share/java/amqp-client.jar"),
    Path("/usr/share/java/slf4j-api.jar"),
    Path("/usr/share/java/slf4j-nop.jar"),
]
GOPATH = Path("/usr/share/gocode")
AMQP091_GO = GOPATH / "src" / "github.com" / "rabbitmq" / "amqp091-go"
# Where amqplib is: `npm install` in clients/ puts it in clients/node_modules; CI points
# AMQPCODEC_NODE_MODULES there for the runs from an unpacked sdist, which has no node_modules.
NODE_PATH = {
    "NODE_PATH": os.environ.get("AMQPCODEC_NODE_MODULES", str(CLIENTS_DIR / "node_modules"))
}


def require(what: str) -> None:
    """Skip a test for want of a toolchain or client; in CI, where .ci/run installs them all,
    fail instead."""
    if os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ") == "1":
        pytest.fail(f"{what} (.ci/run installs it)")
    pytest.skip(what)


def tool(name: str) -> str:
    """The path of a program on PATH (else skip, or fail in CI)."""
    path = shutil.which(name)
    if path is None:
        require(f"{name} is not installed")
    assert path is not None
    return path


def build_java(out: Path) -> str:
    """Compile InteropClient.java into ``out``; returns ``java`` and the class path, NUL-joined."""
    javac, java = tool("javac"), tool("java")
    for jar in JAVA_JARS:
        if not jar.exists():
            require(f"{jar} is missing (Debian librabbitmq-client-java)")
    classpath = ":".join(str(jar) for jar in JAVA_JARS)
    subprocess.run(
        [javac, "-d", str(out), "-cp", classpath, str(CLIENTS_DIR / "InteropClient.java")],
        check=True,
        timeout=300,
    )
    return f"{java}\0{classpath}:{out}"


def build_go(out: Path) -> str:
    """Build client_amqp091.go offline (GOPATH mode) into ``out``; returns the binary."""
    go = tool("go")
    if not AMQP091_GO.exists():
        require(f"{AMQP091_GO} is missing (Debian golang-github-rabbitmq-amqp091-go-dev)")
    env = os.environ | {"GOPATH": str(GOPATH), "GO111MODULE": "off", "GOCACHE": str(out / "cache")}
    binary = out / "client_amqp091"
    subprocess.run(
        [go, "build", "-o", str(binary), str(CLIENTS_DIR / "client_amqp091.go")],
        check=True,
        timeout=300,
        env=env,
    )
    return str(binary)
