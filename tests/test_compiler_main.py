"""``python -m amqpcodec.compiler``, called in-process: write, check, report stale files."""

from __future__ import annotations

from pathlib import Path

import pytest

from amqpcodec.compiler import __main__ as compiler_main


def test_the_committed_files_are_fresh() -> None:
    assert compiler_main.main(["--check"]) == 0


def test_write_then_check_then_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "generated.py"
    monkeypatch.setattr(compiler_main, "outputs", lambda spec_path: {target: "x = 1\n"})

    assert compiler_main.main(["--check"]) == 1  # missing counts as stale
    assert "stale:" in capsys.readouterr().err
    assert compiler_main.main([]) == 0
    assert target.read_text(encoding="utf-8") == "x = 1\n"
    assert "wrote" in capsys.readouterr().out
    assert compiler_main.main(["--check"]) == 0

    target.write_text("x = 2\n", encoding="utf-8")
    assert compiler_main.main(["--check"]) == 1
    assert target.read_text(encoding="utf-8") == "x = 2\n"  # --check never writes
