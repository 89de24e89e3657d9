"""The README's asyncio client example (kept here verbatim) runs against RabbitMQ."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLE = Path(__file__).with_name("asyncio_example.py")
pytestmark = pytest.mark.rabbitmq


def test_asyncio_example_runs(rabbitmq: tuple[str, int]) -> None:
    source = EXAMPLE.read_text(encoding="utf-8")
    assert 35 <= len(source.splitlines()) <= 50
    exec(compile(source, str(EXAMPLE), "exec"), {"__name__": "__example__"})


def test_the_readme_quotes_it_verbatim() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert EXAMPLE.read_text(encoding="utf-8") in readme
