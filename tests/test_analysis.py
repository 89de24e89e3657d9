"""amqpcodec.capture.analyze: each figure checked against what the recording scenario
knows it did (tests/data/captures/report/NAME.facts.json, written by record_report.py)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dpkt")

from amqpcodec import HeartbeatFrame, MethodFrame, ProtocolHeader, spec
from amqpcodec._content import Message
from amqpcodec.capture import (
    ConnectionInfo,
    ConnectionReport,
    Direction,
    Endpoint,
    FrameRecord,
    MessageRecord,
    Report,
    analyze,
)
from amqpcodec.capture._analysis import analyze_records, method_name

CAPTURES = Path(__file__).resolve().parent / "data" / "captures" / "report"
CLASSIC = CAPTURES.parent
C2S, S2C = Direction.CLIENT_TO_SERVER, Direction.SERVER_TO_CLIENT


def facts(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / f"{name}.facts.json").read_text())  # type: ignore[no-any-return]


def report(name: str) -> Report:
    return analyze(CAPTURES / f"{name}.pcap")


def only(name: str) -> ConnectionReport:
    (connection,) = report(name).connections
    return connection


def test_negotiated_parameters_and_products() -> None:
    rep = only("confirms_nacks")
    neg = rep.negotiated
    assert (neg["frame_max"], neg["channel_max"], neg["heartbeat"]) == (131072, 2047, 60)
    assert neg["proposed"] == {"channel_max": 2047, "frame_max": 131072, "heartbeat": 60}
    assert neg["client_product"] == "Pika Python Client Library"
    assert neg["client_version"] == "1.4.4"
    assert (neg["server_product"], neg["server_version"]) == ("RabbitMQ", "3.10.8")
    assert neg["mechanism"] == "PLAIN" and neg["virtual_host"] == "/"
    assert only("heartbeat_stop").negotiated["heartbeat"] == facts("heartbeat_stop")["heartbeat"]


def test_confirms_with_nacks() -> None:
    known = facts("confirms_nacks")
    confirms = only("confirms_nacks").confirms
    assert confirms.channels == [known["channel"]]
    assert confirms.published == known["published"]
    assert confirms.acked == len(known["acked"])
    assert [t.tag for t in confirms.nacked] == known["nacked"]
    assert confirms.nacked_count == len(known["nacked"])
    assert [t.tag for t in confirms.unconfirmed] == known["unconfirmed"]
    latency = confirms.latency
    assert latency.count == known["published"] and latency.exact
    assert latency.p50 is not None and latency.p95 is not None and latency.max is not None
    assert 0 <= latency.p50 <= latency.p95 <= latency.max


def test_work_queue_unacked_no_ack_and_prefetch() -> None:
    known = facts("work_queue")
    rep = only("work_queue")
    consumers = {c.consumer_tag: c for c in rep.consumers}
    assert set(consumers) == set(known["queues"])
    for tag, queue in known["queues"].items():
        assert consumers[tag].queue == queue
        assert consumers[tag].channel == known["channels"][tag]
        assert consumers[tag].deliveries == len(known["delivered"][tag])
    assert [c for c in consumers if consumers[c].no_ack] == known["no_ack"]
    worker = consumers["worker"]
    assert worker.prefetch_count == known["prefetch"]["worker"]
    assert worker.max_in_flight == known["max_in_flight"]["worker"]
    assert consumers["auditor"].max_in_flight == 0  # no_ack: nothing in flight
    unacked = [(t.channel, t.tag, t.consumer_tag) for t in rep.unacked]
    worker_channel = known["channels"]["worker"]
    assert unacked == [(worker_channel, tag, "worker") for tag in known["unacked"]["worker"]]
    assert rep.unacked_count == len(known["unacked"]["worker"])


def test_rpc_over_direct_reply_to() -> None:
    known = facts("rpc_direct_reply")
    server, client = report("rpc_direct_reply").connections
    assert client.connection == known["client_connection"]
    assert client.rpc.calls == client.rpc.answered == known["calls"]
    assert client.rpc.direct_reply_to == known["calls"]
    assert client.rpc.latency.count == known["calls"] and not client.rpc.unanswered
    assert server.connection == known["server_connection"]
    assert server.rpc.served == known["calls"] and server.rpc.serve_latency.count == 3
    assert server.rpc.calls == 0
    queues = {c.queue for c in server.consumers}
    assert queues == {known["queue"]}
    assert {c.queue for c in client.consumers} == {"amq.rabbitmq.reply-to"}


def test_broker_side_consumer_cancel() -> None:
    known = facts("consumer_cancel")
    rep = only("consumer_cancel")
    (cancelled,) = rep.cancelled_by_server
    assert cancelled.consumer_tag == known["consumer_tag"]
    assert cancelled.queue == known["queue"] and cancelled.channel == known["channel"]
    assert cancelled.cancelled_by == "server" and cancelled.cancelled is not None


def test_heartbeats_that_stop() -> None:
    known = facts("heartbeat_stop")
    beats = only("heartbeat_stop").heartbeats
    assert beats.interval == known["heartbeat"]
    assert beats.silent_first == known["silent_first"]
    client = beats.longest_silence["c2s"]
    server = beats.longest_silence["s2c"]
    assert client is not None and server is not None
    # The client was silent for more than two intervals before the end; the broker
    # kept sending heartbeats about once per interval.
    assert client.until is None and client.seconds > 2 * known["heartbeat"]
    assert server.seconds < 2 * known["heartbeat"]
    assert beats.ended.startswith(f"RST from the {known['closed_by']} [")
    assert only("confirms_nacks").heartbeats.ended == "close handshake"


def test_three_connections_and_the_methods_that_caused_errors() -> None:
    known = facts("three_connections")
    rep = report("three_connections")
    assert len(rep.connections) == known["connections"]
    errors = [(c.connection, e) for c in rep.connections for e in c.errors]
    assert len(errors) == len(known["errors"])
    for (connection, error), expected in zip(errors, known["errors"], strict=True):
        assert connection == expected["connection"]
        assert error.channel == expected["channel"] and error.level == "channel"
        assert error.reply_code == expected["reply_code"] and error.by == "server"
        assert (error.class_id, error.method_id) == (expected["class_id"], expected["method_id"])
        assert error.caused_by == expected["caused_by"]
        assert error.reply_text.startswith("NOT_FOUND")
    assert all(not c.unanswered_requests for c in rep.connections)


def test_method_names_from_ids() -> None:
    assert method_name(60, 40) == "basic.publish"
    assert method_name(50, 10) == "queue.declare"
    assert method_name(0, 0) is None and method_name(99, 1) is None


@pytest.mark.parametrize(
    "name",
    [
        "work_queue",
        "confirms_nacks",
        "rpc_direct_reply",
        "consumer_cancel",
        "heartbeat_stop",
        "three_connections",
        "split_message",
        "pika_publish_props",
        "pika_channel_error",
        "pika_large_body",
        "pika_heartbeat",
        "pyamqp_session",
        "two_connections",
    ],
)
def test_clean_captures_have_no_violations_and_nothing_unknown(name: str) -> None:
    folder = CAPTURES if (CAPTURES / f"{name}.pcap").exists() else CLASSIC
    suffix = ".pcap" if (folder / f"{name}.pcap").exists() else ".pcapng"
    for connection in analyze(folder / f"{name}{suffix}").connections:
        assert connection.violations == []
        assert connection.violations_checked == "all"
        assert all("before the capture" not in text for text in connection.unknown)
        assert all("missing" not in text for text in connection.unknown)


def test_a_gap_says_what_it_could_not_know() -> None:
    known = facts("kernel_drop")
    rep = only("kernel_drop")
    missing = [text for text in rep.unknown if "missing from the capture" in text]
    assert missing and missing[0].startswith(f"{known['dropped_bytes']} bytes missing")
    assert "c2s" in missing[0] and "may have been met" in missing[0]
    assert rep.violations_checked.startswith("up to bytes missing from the capture (c2s)")
    assert rep.violations == []
    clean = only("split_message")
    assert clean.unknown == [] and clean.violations_checked == "all"


def test_a_mid_stream_start_says_what_it_could_not_know() -> None:
    rep = only("midframe_start")
    assert any("starts after the connection opened" in text for text in rep.unknown)
    assert any("channels used before the capture started" in text for text in rep.unknown)
    assert rep.negotiated == {}
    assert rep.heartbeats.interval is None
    assert rep.violations_checked.startswith("not checked")
    assert all(life.opened is None for life in rep.channels)


def test_snaplen_gaps_are_reported() -> None:
    rep = only("snaplen_errors")
    assert sum("missing from the capture" in text for text in rep.unknown) >= 2
    assert not rep.violations


# ---------------------------------------------------------------------------------------
# Protocol violations


def _handshake() -> list[tuple[Direction, object]]:
    return [
        (C2S, ProtocolHeader()),
        (
            S2C,
            MethodFrame(
                0,
                spec.Connection.Start(
                    version_major=0,
                    version_minor=9,
                    server_properties={},
                    mechanisms=b"PLAIN",
                    locales=b"en_US",
                ),
            ),
        ),
        (
            C2S,
            MethodFrame(
                0,
                spec.Connection.StartOk(
                    client_properties={},
                    mechanism="PLAIN",
                    response=b"\0guest\0guest",
                    locale="en_US",
                ),
            ),
        ),
        (S2C, MethodFrame(0, spec.Connection.Tune(channel_max=10, frame_max=4096, heartbeat=0))),
        (C2S, MethodFrame(0, spec.Connection.TuneOk(channel_max=10, frame_max=4096, heartbeat=0))),
        (C2S, MethodFrame(0, spec.Connection.Open(virtual_host="/"))),
        (S2C, MethodFrame(0, spec.Connection.OpenOk())),
    ]


def _records(frames: list[tuple[Direction, object]]) -> list[FrameRecord]:
    """One record a frame, the n-th in packet n (from 1)."""
    info = ConnectionInfo(0, Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 5672))
    return [
        FrameRecord(float(n), info, direction, frame, 0, 8, n + 1)  # type: ignore[arg-type]
        for n, (direction, frame) in enumerate(frames)
    ]


def test_violations_found_by_replay() -> None:
    frames = [
        *_handshake(),
        (C2S, MethodFrame(1, spec.Channel.Open())),
        (S2C, MethodFrame(1, spec.Channel.OpenOk())),
        # A method on a channel that was never opened: the server must close with 504.
        (C2S, MethodFrame(7, spec.Queue.Declare(queue="q"))),
        (
            S2C,
            MethodFrame(
                0,
                spec.Connection.Close(
                    reply_code=504, reply_text="CHANNEL_ERROR", class_id=50, method_id=10
                ),
            ),
        ),
    ]
    (rep,) = analyze_records(iter(_records(frames))).connections
    (violation,) = rep.violations
    assert violation.direction == "c2s" and violation.reply_code == 504
    assert (violation.class_id, violation.method_id) in ((50, 10), (0, 0))
    assert violation.time == 9.0  # the tenth record
    (error,) = rep.errors
    assert error.level == "connection" and error.caused_by == "queue.declare"


def _connection_close(reply_code: int, class_id: int, method_id: int) -> tuple[Direction, object]:
    close = spec.Connection.Close(
        reply_code=reply_code, reply_text="", class_id=class_id, method_id=method_id
    )
    return (S2C, MethodFrame(0, close))


@pytest.mark.parametrize(
    ("frames", "cause", "packet"),
    [
        # A method on channel 0: connection.open of a virtual host the user may not use.
        ([*_handshake()[:-1], _connection_close(530, 10, 40)], "connection.open", 6),
        # channel.open of a channel already open.
        (
            [
                *_handshake(),
                (C2S, MethodFrame(1, spec.Channel.Open())),
                (S2C, MethodFrame(1, spec.Channel.OpenOk())),
                (C2S, MethodFrame(1, spec.Channel.Open())),
                _connection_close(504, 20, 10),
            ],
            "channel.open",
            10,
        ),
        # The latest of two: queue.declare on channel 2, then on channel 1.
        (
            [
                *_handshake(),
                (C2S, MethodFrame(1, spec.Channel.Open())),
                (S2C, MethodFrame(1, spec.Channel.OpenOk())),
                (C2S, MethodFrame(2, spec.Channel.Open())),
                (S2C, MethodFrame(2, spec.Channel.OpenOk())),
                (C2S, MethodFrame(2, spec.Queue.Declare(queue="a"))),
                (C2S, MethodFrame(1, spec.Queue.Declare(queue="b"))),
                _connection_close(541, 50, 10),
            ],
            "queue.declare",
            13,
        ),
    ],
    ids=["on channel 0", "channel.open", "the latest"],
)
def test_a_connection_error_names_the_packet_that_caused_it(
    frames: list[tuple[Direction, object]], cause: str, packet: int
) -> None:
    (rep,) = analyze_records(iter(_records(frames))).connections
    (error,) = rep.errors
    assert error.level == "connection" and error.caused_by == cause
    assert error.cause_packet == packet
    assert error.packet == len(frames)


def test_violation_by_the_server() -> None:
    frames = [
        *_handshake(),
        # The server opens a channel: only a client may send channel.open.
        (S2C, MethodFrame(1, spec.Channel.OpenOk())),
        (S2C, HeartbeatFrame()),
    ]
    (rep,) = analyze_records(iter(_records(frames))).connections
    (violation,) = rep.violations
    assert violation.direction == "s2c" and violation.reply_code >= 500


def test_after_the_reader_drops_state_the_replay_stops_as_after_a_gap(tmp_path: Path) -> None:
    """A message larger than the reader's memory_limit is given out as partial and its
    remaining body frames read as orphans: judged against the dropped message, they
    would be a false 505 (body frames with no method)."""
    import hostile_captures as hostile

    from amqpcodec import encode_message

    opened = [
        *_handshake(),
        (C2S, MethodFrame(1, spec.Channel.Open())),
        (S2C, MethodFrame(1, spec.Channel.OpenOk())),
    ]
    publish = encode_message(1, spec.Basic.Publish(routing_key="q"), None, b"m" * 262144, 4096)
    path = tmp_path / "dropped.pcap"
    hostile.conversation(
        path,
        [
            *[(d is C2S, frame.encode()) for d, frame in opened],  # type: ignore[attr-defined]
            (True, publish),
            (True, MethodFrame(1, spec.Channel.Close(reply_code=200)).encode()),
            (False, MethodFrame(1, spec.Channel.CloseOk()).encode()),
        ],
    )
    (rep,) = analyze(path, memory_limit=64 * 1024).connections
    assert rep.violations == []
    assert rep.violations_checked.startswith("up to state dropped by the reader (c2s) at packet")
    (dropped,) = [text for text in rep.unknown if "state dropped by the reader" in text]
    assert "memory_limit" in dropped and "may have been met" in dropped
    # Reading went on: the channel's close is in the report, and the end is the capture's.
    assert [life.ended for life in rep.channels] == ["closed"]
    assert rep.heartbeats.ended == "capture ended"


def test_a_connection_whose_state_the_reader_dropped_says_so(tmp_path: Path) -> None:
    import hostile_captures as hostile

    from amqpcodec.capture._limits import CONNECTION_COST

    path = tmp_path / "hello.pcap"
    hostile.header_only_connections(path, 6)
    rep = analyze(path, memory_limit=3 * CONNECTION_COST)
    ended = [c.heartbeats.ended for c in rep.connections]
    assert [e.startswith("state dropped by the reader [") for e in ended] == [True] * 3 + [
        False
    ] * 3
    assert ended[3:] == ["capture ended"] * 3
    for connection in rep.connections[:3]:
        assert any("state dropped by the reader" in text for text in connection.unknown)
        assert not any("the capture ends before" in text for text in connection.unknown)
        assert connection.violations_checked.startswith("up to state dropped by the reader")


# ---------------------------------------------------------------------------------------
# Bounds


def _confirm_mode() -> list[tuple[Direction, object]]:
    return [
        *_handshake(),
        (C2S, MethodFrame(1, spec.Channel.Open())),
        (S2C, MethodFrame(1, spec.Channel.OpenOk())),
        (C2S, MethodFrame(1, spec.Confirm.Select())),
        (S2C, MethodFrame(1, spec.Confirm.SelectOk())),
    ]


def _publish(n: int) -> MessageRecord:
    message = Message(1, spec.Basic.Publish(routing_key="q"), spec.BasicProperties(), b"x")
    return MessageRecord(
        1000.0 + n,
        ConnectionInfo(0, Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 5672)),
        C2S,
        message,
        0,
    )


def test_open_tables_are_bounded_and_say_so() -> None:
    def records() -> Any:
        yield from _records(_confirm_mode())
        for n in range(5000):  # never confirmed
            yield _publish(n)

    (rep,) = analyze_records(records(), max_open=100, max_items=10).connections
    assert rep.confirms.published == 5000
    assert rep.forgotten == {"unconfirmed publishes": 4900}
    assert len(rep.confirms.unconfirmed) == 10 and rep.more["unconfirmed"] == 90
    assert rep.confirms.unconfirmed_count == 100  # what was still tracked


def test_memory_follows_open_state_not_the_input() -> None:
    """20,000 publishes each confirmed at once: the analysis holds no more at the end
    than after 2,000 (the reservoir of latency samples is full at 500)."""

    def records(count: int) -> Any:
        yield from _records(_confirm_mode())
        info = ConnectionInfo(0, Endpoint("127.0.0.1", 40000), Endpoint("127.0.0.1", 5672))
        for n in range(1, count + 1):
            yield _publish(n)
            ack = MethodFrame(1, spec.Basic.Ack(delivery_tag=n))
            yield FrameRecord(1000.5 + n, info, S2C, ack, 0, 21)

    def peak(count: int) -> int:
        tracemalloc.start()
        try:
            analysis = analyze_records(records(count), check_violations=False, max_samples=500)
            (rep,) = analysis.connections
            assert rep.confirms.acked == count and rep.confirms.latency.count == count
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2_000), peak(20_000)
    assert large < small * 1.5, (small, large)
    assert large < 1024 * 1024


def test_channel_lives() -> None:
    (life,) = only("kernel_drop").channels  # py-amqp closes the connection, not the channel
    assert life.ended == "connection closed" and life.closed is not None
    assert life.opened is not None and life.opened.packet is not None
    lives = only("work_queue").channels
    assert [(c.channel, c.ended, c.closed_by, c.reply_code) for c in lives] == [
        (1, "closed", "client", 200),
        (2, "closed", "client", 200),
    ]
    (error_life,) = report("three_connections").connections[1].channels
    assert (error_life.closed_by, error_life.reply_code) == ("server", 404)
    beats = only("heartbeat_stop")
    assert beats.channels == []


def test_a_violation_in_a_recorded_capture_has_its_packet(tmp_path: Path) -> None:
    """confirms_nacks.pcap with its first basic.publish moved to channel 3, which the
    client never opened (its header and body too): the replay finds the 504 in the
    publish's own packet."""
    import dpkt

    source = CAPTURES / "confirms_nacks.pcap"
    target = tmp_path / "bad_channel.pcap"
    patched = None
    done = False
    with open(source, "rb") as f, open(target, "wb") as out:
        writer = dpkt.pcap.Writer(out)
        for number, (ts, data) in enumerate(dpkt.pcap.Reader(f), start=1):
            eth = dpkt.ethernet.Ethernet(data)
            tcp = eth.data.data
            payload = bytes(tcp.data)
            # The first basic.publish (60/40) on channel 1, then its header and body.
            publish = payload[:3] == b"\x01\x00\x01" and payload[7:11] == b"\x00\x3c\x00\x28"
            if patched is None and publish:
                patched = number
            if patched is not None and not done and payload[1:3] == b"\x00\x01":
                tcp.data = payload[:1] + b"\x00\x03" + payload[3:]
                done = payload[0] == 3  # the body frame ends the message
            writer.writepkt(bytes(eth), ts)
    assert patched is not None
    (rep,) = analyze(target).connections
    (violation,) = rep.violations
    assert violation.direction == "c2s" and violation.reply_code == 504
    assert violation.packet == patched
    assert (violation.class_id, violation.method_id) == (60, 40)
    assert "channel 3" in violation.message


def test_raw_streams_of_either_or_unknown_direction() -> None:
    import io

    from amqpcodec import BodyFrame

    # One direction alone cannot be replayed (the other side's half is missing).
    for name in ("pika_channel_error.c2s.bin", "pika_channel_error.s2c.bin"):
        data = (CLASSIC / name).read_bytes()
        (rep,) = analyze(io.BytesIO(data)).connections
        assert rep.violations == [] and rep.violations_checked.startswith("not checked")
        assert rep.errors or rep.channels_opened  # the rest of the analysis is there
    (rep,) = analyze(io.BytesIO(BodyFrame(1, b"x").encode() * 3)).connections
    assert rep.violations == [] and rep.violations_checked.startswith("not checked")
