"""The interop matrix as conftest.py prints it at the end of a run."""

from __future__ import annotations

from collections import Counter

import matrix
import pytest


def test_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    results = {
        ("pika", "rabbitmq", "basic"): "pass",
        ("pika", "serve", "basic"): "FAIL",
        ("pika", "serve", "auth"): "pass",
        ("amqp-tools", "rabbitmq", "basic"): "skip",
    }
    monkeypatch.setattr(matrix, "results", results)
    monkeypatch.setattr(matrix, "proxy_frames", Counter(checked=1234, mismatched=1))
    monkeypatch.setattr(matrix, "versions", lambda: dict.fromkeys(matrix.CLIENTS, "9.9"))
    lines = matrix.tables()
    assert lines[0] == "| client | RabbitMQ | serve |"  # only the modes that ran
    assert "| pika 9.9 | pass | FAIL |" in lines
    assert "| rabbitmq-c amqp-tools 9.9 | skip | - |" in lines
    assert "| client | wrong password (403) |" in lines  # only the extra scenarios that ran
    assert "Extra scenarios, one result per mode (serve):" in lines  # where they ran
    assert "| pika | pass |" in lines
    assert "| RabbitMQ Java client | n/a |" in lines
    assert lines[-1] == (
        "proxy --check: 1,234 frames re-encoded and compared, 1 mismatched, 0 undecodable"
    )


def test_no_table_when_no_client_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(matrix, "results", {})
    assert matrix.tables() == []


def test_versions_name_every_client() -> None:
    found = matrix.versions()
    assert set(found) == set(matrix.CLIENTS)
    assert found["pika"] != "?"  # a test dependency, always installed
