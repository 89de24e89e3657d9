"""The bounds a capture reader keeps, and their defaults."""

from __future__ import annotations

from typing import Final

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEX_REPEAT",
    "DEFAULT_PORTS",
    "DEFAULT_REORDER_LIMIT",
]

DEFAULT_PORTS: Final = (5672,)
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
"""The frame size limit before a connection's tune-ok (or when none was captured)."""
DEFAULT_REORDER_LIMIT: Final = 8 * 1024 * 1024
"""Out-of-order bytes held per direction before the missing bytes are declared a gap."""
DEFAULT_MAX_HEX_REPEAT: Final = 64 * 1024 * 1024
"""Bytes that the ``*`` lines of a hex dump may stand for, all together."""
