"""List the AMQP frames that tshark's dissector reports for a capture.

Usage: python tshark_frames.py CAPTURE [OUT.json]

Runs ``tshark -2 -r CAPTURE -d tcp.port==5672,amqp -T pdml`` and keeps, per AMQP
frame and in capture order:

    {"dir": "c2s"|"s2c", "stream": tcp.stream, "channel": int, "length": int,
     "type": "protocol-header"|"method"|"header"|"body"|"heartbeat"|"unknown-N",
     "method": "basic.publish", "id": [60, 40],           # method frames
     "class_id": 60, "body_size": 100000,                  # content header frames
     "version": [0, 0, 9, 1]}                              # protocol header only

Names are tshark's own display names, lowercased ("Start-Ok" -> "start-ok"),
copied as-is even where tshark's tables differ from the AMQP spec. A frame tshark
flags as malformed gets "malformed": true; tshark's Error/Warning expert infos for
a frame go to "expert" (e.g. "Error/Protocol: Field is cut off by the end of the
field table"). The protocol header has no channel.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

AMQP_PORT = 5672
FRAME_TYPES = {1: "method", 2: "header", 3: "body", 8: "heartbeat"}
_SHOWNAME = re.compile(r"^[^:]+:\s*(.*?)\s*\((\d+)\)$")  # "Method: Start-Ok (11)"


def _fields(elem: ET.Element) -> dict[str, ET.Element]:
    """First occurrence of each field name directly below ``elem`` (not nested deeper)."""
    out: dict[str, ET.Element] = {}
    for child in elem:
        name = child.get("name")
        if child.tag == "field" and name and name not in out:
            out[name] = child
    return out


def _show(elem: ET.Element, name: str) -> str:
    field = elem.find(f".//field[@name='{name}']")
    if field is None:
        raise ValueError(f"tshark gave no {name}")
    return field.get("show", "")


def _int(f: dict[str, ET.Element], name: str) -> int:
    return int(f[name].get("show", ""), 0)


def _name(f: dict[str, ET.Element], name: str) -> str:
    m = _SHOWNAME.match(f[name].get("showname", ""))
    return m.group(1).lower() if m else "?"


def _frame(proto: ET.Element, direction: str, stream: int) -> dict[str, Any]:
    f = _fields(proto)
    out: dict[str, Any] = {"dir": direction, "stream": stream}
    if "amqp.init.protocol" in f:
        out["type"] = "protocol-header"
        out["version"] = [
            _int(f, k)
            for k in (
                "amqp.init.id_major",
                "amqp.init.id_minor",
                "amqp.init.version_major",
                "amqp.init.version_minor",
            )
        ]
        return out
    if "amqp.type" not in f:
        out["type"] = "unknown"
        return out
    ftype = _int(f, "amqp.type")
    out["type"] = FRAME_TYPES.get(ftype, f"unknown-{ftype}")
    if "amqp.channel" in f:
        out["channel"] = _int(f, "amqp.channel")
    if "amqp.length" in f:
        out["length"] = _int(f, "amqp.length")
    if ftype == 1 and "amqp.method.method" in f:
        out["method"] = _name(f, "amqp.method.class") + "." + _name(f, "amqp.method.method")
        out["id"] = [_int(f, "amqp.method.class"), _int(f, "amqp.method.method")]
    elif ftype == 2:
        header = _fields(f["amqp.header"]) if "amqp.header" in f else f
        if "amqp.header.class" in header:
            out["class_id"] = _int(header, "amqp.header.class")
        if "amqp.header.body-size" in header:
            out["body_size"] = _int(header, "amqp.header.body-size")
    if proto.find(".//field[@name='_ws.malformed']") is not None:
        out["malformed"] = True
    expert = [
        e.get("showname", "").removeprefix("Expert Info (")
        for e in proto.iter("field")
        if e.get("name") == "_ws.expert"
        and e.get("showname", "").startswith(("Expert Info (Error/", "Expert Info (Warning/"))
    ]
    if expert:
        out["expert"] = [e.replace("): ", ": ", 1) for e in expert]
    return out


def frames(capture: str) -> list[dict[str, Any]]:
    pdml = subprocess.run(
        ["tshark", "-2", "-r", capture, "-d", f"tcp.port=={AMQP_PORT},amqp", "-T", "pdml"],
        check=True,
        capture_output=True,
    ).stdout
    out: list[dict[str, Any]] = []
    for packet in ET.fromstring(pdml).iter("packet"):
        tcp = packet.find("proto[@name='tcp']")
        if tcp is None:
            continue
        srcport = int(_show(tcp, "tcp.srcport"))
        stream = int(_show(tcp, "tcp.stream"))
        direction = "s2c" if srcport == AMQP_PORT else "c2s"
        for proto in packet.findall("proto[@name='amqp']"):
            out.append(_frame(proto, direction, stream))
        # a malformed AMQP PDU shows up as a sibling "_ws.malformed" proto
        if packet.find("proto[@name='_ws.malformed']") is not None and out:
            out[-1]["malformed"] = True
    return out


def dump(frame_list: list[dict[str, Any]]) -> str:
    """Compact JSON: one frame object per line."""
    lines = [json.dumps(f, separators=(", ", ": ")) for f in frame_list]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main(argv: list[str]) -> None:
    result = frames(argv[1])
    if len(argv) > 2:
        with open(argv[2], "w") as f:
            f.write(dump(result))
    else:
        sys.stdout.write(dump(result))


if __name__ == "__main__":
    main(sys.argv)
