"""Interop tests: a real RabbitMQ on 127.0.0.1:5672, and real clients against our server role.

The RabbitMQ tests skip when nothing listens there, unless AMQPCODEC_REQUIRE_RABBITMQ=1
(CI), which makes them fail instead.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Generator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matrix  # found through the path entry above
import toolchains

RABBITMQ = ("127.0.0.1", 5672)


def _listening(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def rabbitmq() -> tuple[str, int]:
    """The broker's address; skips (or fails in CI) when there is none."""
    if not _listening(RABBITMQ):
        if os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ") == "1":
            pytest.fail("AMQPCODEC_REQUIRE_RABBITMQ=1 but nothing listens on 127.0.0.1:5672")
        pytest.skip("no RabbitMQ on 127.0.0.1:5672 (bash .ci/start-rabbitmq.sh starts one)")
    return RABBITMQ


@pytest.fixture(scope="session")
def java_classpath(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The interop Java program, compiled once per run: ``java`` and its class path, NUL-joined."""
    return toolchains.build_java(tmp_path_factory.mktemp("java"))


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The interop Go program, built once per run."""
    return toolchains.build_go(tmp_path_factory.mktemp("go"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Record each client run in the interop matrix."""
    report = yield
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "client" in params and "mode" in params and (report.when == "call" or not report.passed):
        key = (params["client"], params["mode"], params.get("scenario", "basic"))
        matrix.results[key] = "pass" if report.passed else "FAIL" if report.failed else "skip"
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = matrix.tables()
    if lines:
        terminalreporter.section("interop matrix (client x mode)")
        for line in lines:
            terminalreporter.write_line(line)
