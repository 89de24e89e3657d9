"""``python -m amqpcodec.compiler [--check]``: regenerate the committed code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import bundled_spec, generate_python, parse_spec

PACKAGE = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = bundled_spec()


def outputs(spec_path: Path) -> dict[Path, str]:
    """Every generated file and the text it should have."""
    from .emit_construct import generate_construct

    spec = parse_spec(spec_path)
    return {
        PACKAGE / "spec.py": generate_python(spec),
        PACKAGE / "grammar.py": generate_construct(spec),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m amqpcodec.compiler", description=__doc__)
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="the spec XML")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs(args.spec).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    for path in stale:
        print(f"stale: {path} (run python -m amqpcodec.compiler)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
