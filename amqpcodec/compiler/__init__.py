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
from .model import DEFAULT_LIMITS, Spec, SpecError, SpecLimits, parse_spec

__all__ = ["SpecError", "SpecLimits", "bundled_spec", "generate_python", "load_spec", "parse_spec"]

_PACKAGE = Path(__file__).resolve().parent


def bundled_spec() -> Path:
    """The protocol XML ``amqpcodec.spec`` was generated from.

    In a source checkout that is ``spec/amqp0-9-1.xml`` (the source of truth); an
    installed wheel carries a copy of it inside this package."""
    checkout = _PACKAGE.parent.parent / "spec" / "amqp0-9-1.xml"
    if (_PACKAGE.parent.parent / "pyproject.toml").is_file() and checkout.is_file():
        return checkout
    return _PACKAGE / "amqp0-9-1.xml"


def generate_python(spec: Spec) -> str:
    """The source of a spec module for ``spec``."""
    return "\n".join(emit_spec_module(spec)) + "\n"


def load_spec(
    path: str | Path,
    *,
    strict: bool = False,
    name: str = "",
    limits: SpecLimits = DEFAULT_LIMITS,
) -> types.ModuleType:
    """Compile the spec XML at ``path`` into a new module shaped like ``amqpcodec.spec``.

    ``strict=True`` leaves out the extensions marked in the XML. Every name and number
    in the XML is validated before any code is generated, so a hostile file can only
    raise :class:`SpecError`. A file beyond ``limits`` (by default 4 MiB, names of 64
    characters, 1024 constants, 1024 domains, 256 classes, 1024 methods, 8192 fields:
    see :class:`SpecLimits`) is refused before any code is generated; the work and the
    memory of loading grow with the file, which is read at most ``max_bytes`` far.
    """
    spec = parse_spec(path, strict=strict, limits=limits)
    module_name = name or f"amqpcodec.spec_{Path(path).stem.replace('-', '_').replace('.', '_')}"
    module = types.ModuleType(module_name)
    module.__file__ = str(path)
    code = compile(generate_python(spec), f"<amqpcodec spec {Path(path).name}>", "exec")
    exec(code, module.__dict__)
    return module
