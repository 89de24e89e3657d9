"""The bounds a capture reader keeps, and their defaults."""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONNECTION_COST",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEX_REPEAT",
    "DEFAULT_MAX_LISTED_CONNECTIONS",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_PORTS",
    "DEFAULT_REORDER_LIMIT",
    "SEGMENT_COST",
]

DEFAULT_PORTS: Final = (5672,)
DEFAULT_MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
"""The frame size limit before a connection's tune-ok (or when none was captured)."""
DEFAULT_REORDER_LIMIT: Final = 8 * 1024 * 1024
"""Out-of-order bytes held per direction before the missing bytes are declared a gap
(each segment counted at what it costs: its bytes and ``SEGMENT_COST``)."""
DEFAULT_MEMORY_LIMIT: Final = 256 * 1024 * 1024
"""What the reader may hold across connections: twice RabbitMQ's default largest message
(128 MiB), so that one such message assembles with room to spare."""
CONNECTION_COST: Final = 1536
"""What a connection costs the reader before it holds any data (measured: 1.4 KiB)."""
SEGMENT_COST: Final = 200
"""What holding one out-of-order segment costs beyond its bytes (measured: 190 bytes)."""
DEFAULT_MAX_HEX_REPEAT: Final = 64 * 1024 * 1024
"""Bytes that the ``*`` lines of a hex dump may stand for, all together."""
DEFAULT_MAX_LISTED_CONNECTIONS: Final = 65536
"""Connections that ``CaptureStats.connections`` lists (about 300 bytes each: 20 MB)."""
