"""The spec compiler: AMQP spec XML -> Python codec and construct grammar.

``python -m amqpcodec.compiler`` regenerates the committed ``amqpcodec/spec.py`` from
``spec/amqp0-9-1.xml``; ``--check`` fails when it is stale. :func:`load_spec` compiles
another XML (a vendor variant, the strict 0-9-1 profile) at run time into a module of
the same shape as ``amqpcodec.spec``.
"""

from __future__ import annotations

import types
from pathlib import Path

from .emit_python import emit_spec_module
from .model import Spec, SpecError, parse_spec

__all__ = ["SpecError", "generate_python", "load_spec", "parse_spec"]


def generate_python(spec: Spec) -> str:
    """The source of a spec module for ``spec``."""
    return "\n".join(emit_spec_module(spec)) + "\n"


def load_spec(path: str | Path, *, strict: bool = False, name: str = "") -> types.ModuleType:
    """Compile the spec XML at ``path`` into a new module shaped like ``amqpcodec.spec``.

    ``strict=True`` leaves out the extensions marked in the XML. Every name and number
    in the XML is validated before any code is generated, so a hostile file can only
    raise :class:`SpecError`.
    """
    spec = parse_spec(path, strict=strict)
    module_name = name or f"amqpcodec.spec_{Path(path).stem.replace('-', '_').replace('.', '_')}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    code = compile(generate_python(spec), f"<amqpcodec spec {Path(path).name}>", "exec")
    exec(code, module.__dict__)
    return module
