"""The README's Python examples run, and its two commands are the ones CI runs."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def _broker_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_example_runs(index: int, monkeypatch: pytest.MonkeyPatch) -> None:
    source = BLOCKS[index]
    if "# needs: rabbitmq" in source and not _broker_available():
        if os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ"):
            pytest.fail("this README example needs RabbitMQ on 127.0.0.1:5672")
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    monkeypatch.chdir(ROOT)
    exec(compile(source, f"README.md example {index + 1}", "exec"), {"__name__": "__readme__"})


def test_there_are_examples() -> None:
    assert len(BLOCKS) >= 3


def test_ci_runs_the_readme_commands() -> None:
    commands = re.findall(r"```sh\n(.*?)\n```", README, flags=re.DOTALL)
    main_job, tests = commands[0], commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert main_job in ci
    assert tests in ci
