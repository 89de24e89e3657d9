"""The command line: ``amqpcodec COMMAND`` (the same as ``python -m amqpcodec COMMAND``).

Each command registers its options here and keeps its logic in its own module, imported
only when the command runs, so that ``import amqpcodec`` stays light. The proxy and fuzz
commands' options come from their modules, which import asyncio and the Connection: they
are registered only when the command line names that command (or none), so ``decode``
starts without them (24 ms less).

- ``decode FILE``: print the AMQP frames of a capture (:mod:`amqpcodec._decode`).
- ``serve``: run the in-memory broker for tests (:mod:`amqpcodec.broker`).
- ``proxy``: relay to a broker, printing the traffic decoded (:mod:`amqpcodec.proxy`).
- ``report FILE``: what a capture says about each connection (:mod:`amqpcodec._report`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

__all__ = ["main"]

EXIT_UNREADABLE: Final = 2


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = _parser(_named_command(arguments))
    args = parser.parse_args(arguments)
    if args.command == "decode":
        from . import _decode

        return _decode.run(args)
    if args.command == "serve":
        from .broker import _command

        return _command.run(args)
    if args.command == "proxy":
        from . import proxy

        return proxy.run(args)
    if args.command == "fuzz":
        from . import _fuzz_cli

        return _fuzz_cli.run(args)
    if args.command == "report":
        from . import _report

        return _report.run(args)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse stops first
    return EXIT_UNREADABLE  # pragma: no cover


COMMANDS: Final = ("decode", "serve", "proxy", "fuzz", "report")


def _named_command(argv: Sequence[str]) -> str | None:
    """The command the arguments name (the first that is not an option: the top level
    takes none with a value), or None when they name none of ours."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in COMMANDS else None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, the other commands are listed without their options
    (enough for parsing that command, and for the top-level help)."""
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

    serve = commands.add_parser(
        "serve",
        help="run an in-memory AMQP broker for tests (a test double, not for production)",
        description="Run amqpcodec.broker.Broker, an in-memory AMQP 0-9-1 broker for tests,"
        " until SIGINT or SIGTERM (then every client gets Connection.Close 320). The address"
        " it listens on is printed to standard error; --port 0 picks a free port.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=_listen_port, default=5672, help="default 5672; 0: any")
    serve.add_argument(
        "--user",
        action="append",
        type=_user,
        metavar="NAME:PASSWORD",
        help="a user who may log in (repeatable; default guest:guest)",
    )
    serve.add_argument(
        "--frame-max", type=int, default=131072, help="frame_max proposed in Tune (default 131072)"
    )
    serve.add_argument(
        "--heartbeat", type=int, default=60, help="heartbeat proposed in Tune, s (default 60)"
    )

    proxy = commands.add_parser(
        "proxy",
        help="relay TCP to a broker and print the AMQP traffic both ways as it passes",
        description="Relay connections from --listen to --upstream unchanged and print the"
        " frames both ways, decoded live, as 'amqpcodec decode' does. --check also"
        " re-encodes every frame and reports any whose bytes differ. Exit status on SIGINT"
        " or SIGTERM: 0 all decoded (and matched), 1 findings, 2 cannot listen.",
    )
    proxy.add_argument("--listen", type=_address, required=True, metavar="HOST:PORT")
    proxy.add_argument("--upstream", type=_address, required=True, metavar="HOST:PORT")
    proxy.add_argument(
        "--check", action="store_true", help="re-encode every frame and report differences"
    )
    if command in (None, "proxy"):
        from . import proxy as proxy_module

        proxy_module.add_arguments(proxy)

    fuzz = commands.add_parser(
        "fuzz",
        help="fuzz a live broker (or, with --serve, a client) and report how it reacted",
        description="Send drawn and mutated client streams to the broker at HOST:PORT"
        " (default 127.0.0.1:5672) and judge each reaction: it keeps the connection, or"
        " sends Connection.Close with a reply code and closes, or closes the socket only"
        " before the handshake completed. Prints examples/s, the reply codes and each"
        " finding with its input as hex (--replay HEX sends one again). --serve PORT"
        " serves server streams to the clients that connect there instead. Needs the"
        " hypothesis extra. Exit status: 0 no finding, 1 findings, 2 the target or the"
        " arguments are unusable.",
    )
    if command in (None, "fuzz"):
        from . import _fuzz_cli

        _fuzz_cli.add_arguments(fuzz, _address, _user)

    from . import _report

    report = commands.add_parser(
        "report",
        help="report on each AMQP connection in a capture: errors, confirms, acks, latency",
        description=_report.DESCRIPTION,
    )
    _report.add_arguments(report)
    return parser


def _listen_port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0 to 65535): {text!r}")
    return int(text)


def _address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT``."""
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not colon or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return host, _listen_port(port)


def _user(text: str) -> tuple[str, str]:
    name, colon, password = text.partition(":")
    if not colon or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, not {text!r}")
    return name, password


if __name__ == "__main__":
    sys.exit(main())
