"""Reading AMQP 0-9-1 traffic out of packet captures, raw byte streams and hex dumps.

How this works: a capture is read packet by packet (``_pcap``: dpkt parses the pcap and
pcapng containers; nothing is read whole). Packets are grouped into TCP connections and
each direction's segments are put in order, with the bytes the capture lacks reported
as gaps (``_tcp``). The in-order bytes of a direction go to a frame stream, which
decodes frames strictly and hunts for the next frame where it cannot know where one
starts (``_stream``); frames become records, or messages with ``messages=True``
(``_direction``). Raw byte streams and hex dumps (``_hexdump``) skip the TCP layer.
:class:`CaptureReader` (``_reader``) ties these together; the records it yields are in
``_records`` and its bounds in ``_limits``.

Frame size limit: before a connection's ``connection.tune-ok`` is seen (and for a
capture that starts later) frames may be up to ``max_frame_size`` (16 MiB by default,
far above RabbitMQ's 128 KiB default); from tune-ok on, the negotiated ``frame_max``
is the limit (0 there means the default bound), so an oversized frame is reported as
the protocol error it is. Memory is bounded by the largest frame (or, with
``messages=True``, the largest message) plus one packet, never by the file.
"""

from ._analysis import ConnectionReport, Report, analyze
from ._limits import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_LISTED_CONNECTIONS, DEFAULT_PORTS
from ._reader import CaptureReader, read_capture
from ._records import (
    CaptureError,
    CaptureStats,
    ConnectionInfo,
    Direction,
    Endpoint,
    FrameRecord,
    MessageRecord,
    Notice,
    NoticeKind,
    Record,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_LISTED_CONNECTIONS",
    "DEFAULT_PORTS",
    "CaptureError",
    "CaptureReader",
    "CaptureStats",
    "ConnectionInfo",
    "ConnectionReport",
    "Direction",
    "Endpoint",
    "FrameRecord",
    "MessageRecord",
    "Notice",
    "NoticeKind",
    "Record",
    "Report",
    "analyze",
    "read_capture",
]
