"""Inputs the coverage-guided capture harness (fuzz/capture_reader.py) found, kept as tests."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from amqpcodec import AMQPError
from amqpcodec.capture import read_capture

DATA = Path(__file__).parent / "data" / "fuzz"


@pytest.mark.parametrize("resync", [False, True])
@pytest.mark.parametrize("messages", [False, True])
def test_a_damaged_ipv4_header_claiming_another_version_reads_cleanly(
    resync: bool, messages: bool
) -> None:
    # dpkt parses it as IPv4 but its version field is not 4: the snaplen check must not
    # look for IPv6's next-header field on it (AttributeError before).
    data = (DATA / "capture-ipv4-claims-version-6.pcap").read_bytes()
    try:
        for _ in read_capture(io.BytesIO(data), resync_on_error=resync, messages=messages):
            pass
    except AMQPError:
        pass
