"""The atheris harnesses in fuzz/ run their own seed corpus without a finding (each
input once, without libFuzzer), so they cannot rot between fuzzing runs. Skips where
atheris is not installed (``pip install 'amqpcodec[fuzz]'``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
HARNESSES = ["frame_decoder", "connection", "field_tables", "capture_reader", "load_spec"]


def harness(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    pytest.importorskip("atheris")
    monkeypatch.syspath_prepend(str(FUZZ))
    monkeypatch.setenv("AMQPCODEC_FUZZ_LOSSLESS", "1")
    for cached in ("_harness", name):
        sys.modules.pop(cached, None)
    return importlib.import_module(name)


def seeds(module: ModuleType, name: str) -> list[bytes]:
    if hasattr(module, "seeds"):
        return list(module.seeds())
    source = (FUZZ / f"{name}.py").read_text(encoding="utf-8")
    assert "files(" in source
    return module.files("captures/*.bin", "hex/*.txt", "vendor-extension.xml", "golden/*.xml")


@pytest.mark.parametrize("name", HARNESSES)
def test_a_harness_takes_its_seeds(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = harness(name, monkeypatch)
    inputs = seeds(module, name)[:6]
    assert inputs
    for data in inputs:
        module.test_one_input(data[:4096])
        module.test_one_input(data[:7])
    module.test_one_input(b"")


def test_every_harness_is_listed() -> None:
    found = sorted(p.stem for p in FUZZ.glob("*.py") if not p.stem.startswith("_"))
    assert found == sorted(HARNESSES)
