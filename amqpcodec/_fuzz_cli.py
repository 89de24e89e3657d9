"""``amqpcodec fuzz``: the command line of :mod:`amqpcodec.fuzz`.

Kept apart so that building the parser never imports Hypothesis; ``run`` imports the
fuzzer only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Final

from ._errors import AMQPError

__all__ = ["MAX_WORKERS", "TargetUnusable", "add_arguments", "run"]

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_UNUSABLE: Final = 2

MAX_WORKERS: Final = 64


class TargetUnusable(AMQPError):
    """The target cannot be fuzzed: nothing listens, or it is not allowed."""


def add_arguments(
    parser: argparse.ArgumentParser,
    address: Callable[[str], tuple[str, int]],
    user: Callable[[str], tuple[str, str]],
) -> None:
    parser.add_argument(
        "target",
        type=address,
        nargs="?",
        metavar="HOST:PORT",
        help="the broker to fuzz (default 127.0.0.1:5672; with --serve, where to listen)",
    )
    parser.add_argument(
        "--examples", type=_positive, default=100, metavar="N", help="cases to send (default 100)"
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=4,
        metavar="N",
        help=f"connections at once (default 4, at most {MAX_WORKERS})",
    )
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="reproduce a run")
    parser.add_argument(
        "--user",
        type=user,
        default=("guest", "guest"),
        metavar="NAME:PASSWORD",
        help="the login the cases use (default guest:guest)",
    )
    parser.add_argument("--vhost", default="/", help="the virtual host the cases open (default /)")
    parser.add_argument("--replay", metavar="HEX", help="send this one input (hex) and report")
    parser.add_argument(
        "--serve",
        type=int,
        metavar="PORT",
        default=None,
        help="fuzz a client instead: listen on PORT (0: any) and serve each client a case",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="silence that counts as 'the peer keeps the connection' (default 1)",
    )
    parser.add_argument(
        "--accept-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --serve: stop when no client connects for this long (default 30)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a target that is not this machine (default: loopback only)",
    )


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return int(text)


def run(args: argparse.Namespace) -> int:
    """``amqpcodec fuzz``: 0 no finding, 1 findings, 2 target or arguments unusable."""
    host, port = args.target or ("127.0.0.1", 5672)
    username, password = args.user
    if args.workers > MAX_WORKERS:
        return _unusable(f"--workers {args.workers}: at most {MAX_WORKERS}")
    try:
        from .fuzz import fuzz_broker, fuzz_client, replay
    except ImportError as exc:
        return _unusable(f"needs the hypothesis extra (pip install 'amqpcodec[hypothesis]'): {exc}")
    try:
        if args.replay is not None:
            try:
                data = bytes.fromhex(args.replay)
            except ValueError:
                return _unusable(f"--replay: not hexadecimal: {args.replay[:40]!r}")
            serving = args.serve is not None
            reaction, problem = replay(
                data,
                host,
                args.serve if serving else port,
                serve=serving,
                timeout=args.timeout,
                accept_timeout=args.accept_timeout,
                allow_remote=args.allow_remote,
            )
            print(f"reaction: {reaction}")
            print(f"finding: {problem}" if problem else "no finding")
            return EXIT_FINDINGS if problem else EXIT_OK
        if args.serve is not None:
            report = fuzz_client(
                args.serve,
                host=host if args.target else "127.0.0.1",
                examples=args.examples,
                workers=args.workers,
                seed=args.seed,
                timeout=args.timeout,
                accept_timeout=args.accept_timeout,
                allow_remote=args.allow_remote,
                ready=lambda h, p: print(
                    f"amqpcodec fuzz: serving on {h}:{p}", file=sys.stderr, flush=True
                ),
            )
            if report.examples == 0:
                print(report.summary())
                return _unusable(report.stopped or "no client connected")
        else:
            report = fuzz_broker(
                host,
                port,
                examples=args.examples,
                workers=args.workers,
                seed=args.seed,
                username=username,
                password=password,
                virtual_host=args.vhost,
                timeout=args.timeout,
                allow_remote=args.allow_remote,
            )
    except TargetUnusable as exc:
        return _unusable(str(exc))
    print(report.summary(), flush=True)
    return EXIT_FINDINGS if report.findings else EXIT_OK


def _unusable(message: str) -> int:
    print(f"amqpcodec fuzz: error: {message}", file=sys.stderr)
    return EXIT_UNUSABLE
