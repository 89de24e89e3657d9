"""The command line: ``amqpcodec COMMAND`` (the same as ``python -m amqpcodec COMMAND``).

Each command registers its options here and keeps its logic in its own module, imported
only when the command runs, so that ``import amqpcodec`` stays light.

- ``decode FILE``: print the AMQP frames of a capture (:mod:`amqpcodec._decode`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["main"]

EXIT_UNREADABLE: Final = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "decode":
        from . import _decode

        return _decode.run(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse stops first
    return EXIT_UNREADABLE  # pragma: no cover


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amqpcodec", description="AMQP 0-9-1 wire-protocol tools."
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"amqpcodec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from . import _decode

    decode = commands.add_parser(
        "decode",
        help="print the AMQP frames in a capture, hex dump or raw byte stream",
        description=_decode.DESCRIPTION,
        epilog=_decode.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _decode.add_arguments(decode)
    return parser


if __name__ == "__main__":
    sys.exit(main())
