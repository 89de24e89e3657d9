"""Harness: load_spec over any bytes as a spec XML file.

Promise checked: only SpecError comes out (the file is compiled into a module only when
every name, type and number in it is valid).
Seeds: tests/data/vendor-extension.xml, tests/data/golden/tiny.xml and spec/amqp0-9-1.xml.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import atheris
from _harness import ROOT, files, run

with atheris.instrument_imports():
    from amqpcodec.compiler import load_spec
    from amqpcodec.compiler.model import SpecError

SPEC = Path(tempfile.mkdtemp(prefix="amqpcodec-fuzz-")) / "spec.xml"


def test_one_input(data: bytes) -> None:
    SPEC.write_bytes(data)
    with contextlib.suppress(SpecError):
        load_spec(SPEC)


if __name__ == "__main__":
    seeds = files("vendor-extension.xml", "golden/*.xml")
    seeds.append((ROOT / "spec" / "amqp0-9-1.xml").read_bytes())
    run("load_spec", test_one_input, seeds)
