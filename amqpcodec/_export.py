"""``decode --export DIR``: each message body into a file, its properties beside it.

Files are named from numbers only (never from anything in the capture), so a capture
cannot choose where they go: ``c{connection}-ch{channel}-{kind}-{n}.body`` and
``….json``, where kind and n are

- ``deliver-{delivery_tag}`` / ``get-{delivery_tag}`` for basic.deliver / basic.get-ok
  (the tag the receiver acknowledges);
- ``publish-{n}`` for the n-th basic.publish on that channel (in confirm mode n is the
  tag the broker confirms);
- ``return-{n}`` for the n-th basic.return on that channel.

A second message with the same name (a tag reused after the channel reopened) gets
``.2``, ``.3``… The JSON holds the method and its arguments, the properties, the time
and packet number, and whether the message is partial (bytes missing from the capture).
Memory: one publish/return counter per (connection, channel).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import spec
from ._output import json_record
from .capture import MessageRecord

__all__ = ["Exporter"]


class Exporter:
    """Writes the bodies of :class:`MessageRecord`\\ s into ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._counts: dict[tuple[int, int, str], int] = {}
        self.count = 0

    def write(self, record: MessageRecord) -> Path:
        """Write one message; returns the body file's path."""
        method = record.message.method
        key = (record.connection.index, record.channel)
        if isinstance(method, (spec.Basic.Deliver, spec.Basic.GetOk)):
            kind = "deliver" if isinstance(method, spec.Basic.Deliver) else "get"
            number = method.delivery_tag
        else:
            kind = "publish" if isinstance(method, spec.Basic.Publish) else "return"
            counter = (key[0], key[1], kind)
            number = self._counts.get(counter, 0) + 1
            self._counts[counter] = number
        stem = f"c{key[0]}-ch{key[1]}-{kind}-{number}"
        path = self.directory / f"{stem}.body"
        copy = 1
        while path.exists():
            copy += 1
            path = self.directory / f"{stem}.{copy}.body"
        path.write_bytes(record.message.body)
        about: dict[str, Any] = json_record(record)
        about.pop("body_base64", None)
        about["partial"] = bool(getattr(record, "partial", False))
        about["body_file"] = path.name
        path.with_suffix(".json").write_text(
            json.dumps(about, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        self.count += 1
        return path
