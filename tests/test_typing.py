"""The public API under mypy --strict and pyright --strict.

``tests/typing/uses.py`` holds intended uses (no error allowed) and
``tests/typing/mistakes.py`` intended mistakes, each line marked ``# error`` (each must be
reported, by both checkers, and nothing else). ``pyright --verifytypes`` must find 95 % or
more of the exported symbols fully typed (the construct grammar's objects are typed by
construct, which has no annotations, so they count as unknown: see the README).
Both checkers are in the ``test`` extra; without them these tests skip, except in CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USES = ROOT / "tests" / "typing" / "uses.py"
MISTAKES = ROOT / "tests" / "typing" / "mistakes.py"


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") or os.environ.get("AMQPCODEC_REQUIRE_RABBITMQ"):
            pytest.fail(f"{module} is not installed (it is in the test extra)")
        pytest.skip(f"{module} is not installed")


def _marked(path: Path) -> set[int]:
    """The 1-based numbers of the lines marked ``# error``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {n for n, line in enumerate(lines, 1) if re.search(r"#\s*error:", line)}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _mypy_errors(path: Path) -> set[int]:
    _require("mypy")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=600,
    )
    pattern = re.compile(rf"^{re.escape(str(path.relative_to(ROOT)))}:(\d+): error:", re.M)
    return {int(n) for n in pattern.findall(result.stdout)}


def _pyright(*args: str) -> dict[str, object]:
    _require("pyright")
    result = subprocess.run(
        [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, "--outputjson", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=900,
    )
    report: dict[str, object] = json.loads(result.stdout)
    return report


def _pyright_errors(path: Path) -> set[int]:
    report = _pyright(str(path))
    diagnostics = report["generalDiagnostics"]
    assert isinstance(diagnostics, list)
    return {
        d["range"]["start"]["line"] + 1
        for d in diagnostics
        if d["severity"] == "error" and Path(d["file"]) == path
    }


def test_the_mistakes_file_marks_mistakes() -> None:
    assert len(_marked(MISTAKES)) >= 12
    assert "# pyright: strict" in MISTAKES.read_text(encoding="utf-8")
    assert "# pyright: strict" in USES.read_text(encoding="utf-8")
    assert not _marked(USES)


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_intended_uses_type_check(checker: str) -> None:
    errors = _mypy_errors(USES) if checker == "mypy" else _pyright_errors(USES)
    assert errors == set()


@pytest.mark.parametrize("checker", ["mypy", "pyright"])
def test_every_intended_mistake_is_reported(checker: str) -> None:
    errors = _mypy_errors(MISTAKES) if checker == "mypy" else _pyright_errors(MISTAKES)
    assert errors == _marked(MISTAKES)


def test_pyright_verifytypes_completeness() -> None:
    report = _pyright("--verifytypes", "amqpcodec", "--ignoreexternal")
    completeness = report["typeCompleteness"]
    assert isinstance(completeness, dict)
    score = completeness["completenessScore"]
    unknown = [
        s["name"]
        for s in completeness["symbols"]
        if s["isExported"]
        and not s["isTypeKnown"]
        and not s["name"].startswith("amqpcodec.grammar.")
    ]
    assert score >= 0.95, (score, unknown)
