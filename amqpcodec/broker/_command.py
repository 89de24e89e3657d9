"""``amqpcodec serve``: run the in-memory broker until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Final

from .._errors import AMQPError
from .._serving import serve_until_signalled
from ._server import Broker

__all__ = ["run"]

EXIT_OK: Final = 0
EXIT_UNUSABLE: Final = 2


def run(args: argparse.Namespace) -> int:
    """Serve on ``args.host``:``args.port`` with ``args.user`` (default guest:guest),
    proposing ``args.frame_max`` and ``args.heartbeat``.
    Prints the address it listens on (on standard error, then flushed); SIGINT or
    SIGTERM closes every connection with 320 and exits 0. Exit 2 if it cannot listen."""
    users = dict(args.user) if args.user else None
    try:
        broker = Broker(
            args.host, args.port, users=users, frame_max=args.frame_max, heartbeat=args.heartbeat
        )
    except (TypeError, ValueError, AMQPError) as exc:  # settings the Connection refuses
        print(f"amqpcodec: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        asyncio.run(serve_until_signalled(broker, lambda: _announce(broker)))
    except OSError as exc:
        print(f"amqpcodec: error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return EXIT_OK


def _announce(broker: Broker) -> None:
    names = ", ".join(broker.users) or "none"
    print(
        f"amqpcodec serve: listening on {broker.host}:{broker.port} (users: {names})",
        file=sys.stderr,
        flush=True,
    )
