"""The documentation in docs/: its examples run, its generated parts are complete and fresh.

The site itself is built by CI with warnings as errors
(``python -m sphinx -W --keep-going -b html docs docs/_build/html``).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from amqpcodec import spec

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def _generator() -> ModuleType:
    path = DOCS / "_ext" / "amqpcodec_docs.py"
    loaded = importlib.util.spec_from_file_location("amqpcodec_docs", path)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


GEN = _generator()


def _broker_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text("utf-8"), flags=re.DOTALL)


PYTHON_PAGES = [p for p in PAGES if _blocks(p, "python")]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_python_examples_run(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Python blocks of a page run in order, in one namespace, from the repository."""
    blocks = _blocks(page, "python")
    if any("# needs: rabbitmq" in b for b in blocks) and not _broker_available():
        if os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ"):
            pytest.fail(f"{page.name} needs RabbitMQ on 127.0.0.1:5672")
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for index, source in enumerate(blocks):
        exec(compile(source, f"{page.name} example {index + 1}", "exec"), namespace)


SHELL = [
    (page, command)
    for page in PAGES
    for block in _blocks(page, "sh")
    for command in block.strip().splitlines()
    if command.startswith("amqpcodec ")
]


@pytest.mark.parametrize(("page", "command"), SHELL, ids=[f"{p.name}:{c[:60]}" for p, c in SHELL])
def test_shell_examples_run(page: Path, command: str) -> None:
    args = shlex.split(command)[1:]
    done = subprocess.run(
        [sys.executable, "-m", "amqpcodec", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_there_are_examples() -> None:
    assert len(PYTHON_PAGES) >= 4 and len(SHELL) >= 3


def test_state_diagrams_are_fresh() -> None:
    for path, text in GEN.dot_files().items():
        assert path.read_text("utf-8") == text, (
            f"{path.relative_to(ROOT)} is stale: run python docs/_ext/amqpcodec_docs.py"
        )


def test_state_diagrams_show_every_transition() -> None:
    from amqpcodec import _state

    dot = GEN.state_dot(_state.CONNECTION_TRANSITIONS, "Connection states")
    for state, row in _state.CONNECTION_TRANSITIONS.items():
        assert re.search(rf'^  "{state.name}"( \[.*\])?;$', dot, re.M), state
        for target in row.values():
            assert f'"{state.name}" -> "{target.name}"' in dot
    assert "C: connection.start-ok" in dot and "S: connection.tune" in dot


def test_every_public_name_has_a_reference_entry() -> None:
    pages = GEN.api_pages()
    modules = GEN.public_modules()
    assert {"amqpcodec", "amqpcodec.events", "amqpcodec.strategies", "amqpcodec.capture"} <= set(
        modules
    )
    protocol = "\n".join(GEN.protocol_pages().values())
    missing = []
    for module_name, name, _obj in GEN.public_names():
        page = pages[f"{module_name}.rst"]
        full = f"{module_name}.{name}"
        entry = re.search(
            rf"^\.\. (auto\w+|py:\w+):: ({re.escape(full)}|{re.escape(name)})$", page, re.M
        )
        if entry is None:
            missing.append(full)
        elif name in GEN._protocol_class_names() and module_name == "amqpcodec.spec":
            assert f".. py:class:: {full}\n" in protocol
    assert missing == []


def test_every_public_class_and_function_has_a_docstring() -> None:
    """The reference is generated from docstrings: an entry without one says nothing."""
    missing = sorted(
        f"{module_name}.{name}"
        for module_name, name, obj in GEN.public_names()
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj)
    )
    assert missing == []


def test_protocol_pages_cover_every_method_and_property() -> None:
    text = "\n".join(GEN.protocol_pages().values())
    for method in spec.METHODS.values():
        cls = method.__qualname__.split(".")[0]
        assert f".. py:class:: amqpcodec.spec.{cls}.{method.__name__}\n" in text
        for field in method.FIELDS:
            assert f"* - ``{field}``" in text
    for name in spec.BasicProperties.FIELDS:
        assert f"* - ``{name}``" in text
    assert "Reserved: sent as zero, kept as received." in text


def test_reply_code_table_lists_every_reply_code() -> None:
    rows = {code for _name, code, _closes, _note in GEN.reply_code_rows()}
    assert rows == {int(code) for code in spec.ReplyCode}


def test_readme_links_to_the_tutorials_and_the_reference() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert any("tutorials/" in link for link in links)
    assert "docs/api/index.rst" not in links  # generated at build time, not a file
    for link in links:
        assert (ROOT / link).exists(), link


def test_readme_sections_shown_on_the_site_exist() -> None:
    """The site shows some README sections as they are; renaming one breaks the build."""
    readme = (ROOT / "README.md").read_text("utf-8").splitlines()
    for heading in GEN.README_SECTIONS.values():
        assert heading in readme, f"README.md has no line {heading!r} (docs/_ext README_SECTIONS)"
        text = GEN.readme_section(heading)
        level = len(heading) - len(heading.lstrip("#"))
        assert text.strip()
        outside_fences = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
        for line in outside_fences.splitlines():
            hashes = len(line) - len(line.lstrip("#"))
            assert not (0 < hashes <= level and line[hashes : hashes + 1] == " "), line
