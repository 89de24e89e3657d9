"""``amqpcodec report FILE [--json]``: what a capture says about each connection.

The analysis is :func:`amqpcodec.capture.analyze`; this module is its command line and
its text form. Times are seconds since the capture's first packet, latencies in
milliseconds, and ``[N]`` is a packet number as Wireshark counts them.

Exit status: 0 the report was made; 2 the input cannot be read or the command line is
wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Final, TextIO

from .capture import DEFAULT_PORTS, CaptureError, analyze
from .capture._analysis import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_OPEN,
    ConnectionReport,
    Latency,
    Report,
    Silence,
    Tag,
    Where,
    method_name,
)

__all__ = ["add_arguments", "render_text", "run"]

EXIT_OK: Final = 0
EXIT_UNREADABLE: Final = 2

DESCRIPTION: Final = (
    "Report on each AMQP connection in a capture: negotiated parameters, channel and"
    " connection errors with the method that caused them, publisher confirms (nacked,"
    " never confirmed, latency), deliveries never acknowledged, consumers and their"
    " prefetch, request and RPC latency, heartbeats and who went silent, and protocol"
    " violations found by replaying each direction through a Connection. What the"
    " capture cannot tell (it starts mid-connection, bytes are missing) is said."
    " Exit status: 0 reported, 2 the input is unreadable."
)


def add_arguments(report: argparse.ArgumentParser) -> None:
    """The options of ``report``."""
    report.add_argument("file", metavar="FILE", help="a pcap or pcapng capture; - reads stdin")
    report.add_argument("--json", action="store_true", help="the report as one JSON object")
    report.add_argument(
        "--port",
        action="append",
        type=int,
        metavar="PORT",
        help=f"a TCP port that carries AMQP (repeatable; default {DEFAULT_PORTS[0]})",
    )
    report.add_argument(
        "--max-open",
        type=int,
        default=DEFAULT_MAX_OPEN,
        metavar="N",
        help="entries kept per open-obligation table per connection (unconfirmed"
        " publishes, unacknowledged deliveries, pending requests and RPC calls;"
        f" default {DEFAULT_MAX_OPEN}); beyond it the oldest are dropped and counted",
    )
    report.add_argument(
        "--max-items",
        type=int,
        default=DEFAULT_MAX_ITEMS,
        metavar="N",
        help=f"entries listed per list in the report (default {DEFAULT_MAX_ITEMS});"
        " the rest are counted",
    )


def run(args: argparse.Namespace) -> int:
    name = "standard input" if args.file == "-" else args.file
    source: Any = sys.stdin.buffer if args.file == "-" else args.file
    try:
        report = analyze(
            source,
            ports=tuple(args.port or DEFAULT_PORTS),
            max_open=args.max_open,
            max_items=args.max_items,
        )
    except CaptureError as exc:
        print(f"amqpcodec: error: {name}: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    out = sys.stdout
    try:
        if args.json:
            out.write(json.dumps(report.to_dict(), ensure_ascii=False, default=str) + "\n")
        else:
            if hasattr(out, "reconfigure"):
                out.reconfigure(errors="backslashreplace")
            render_text(report, out, name)
        out.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


# ---------------------------------------------------------------------------------------
# Text


def render_text(report: Report, out: TextIO, name: str | None = None) -> None:
    """The report as text, one section per connection."""
    epoch = report.first_time
    count = len(report.connections)
    packets = f", {report.packets} packets" if report.packets else ""
    out.write(
        f"{name or report.source}: {report.format}{packets},"
        f" {count} AMQP connection{'' if count == 1 else 's'}\n"
    )
    for warning in report.warnings:
        out.write(f"warning: {warning}\n")
    for connection in report.connections:
        out.write("\n")
        for line in _connection(connection, epoch):
            out.write(line + "\n")


def _at(where: Where | None, epoch: float | None) -> str:
    if where is None:
        return "before the capture"
    text = "at ?" if where.time is None else f"at {where.time - (epoch or 0.0):.6f}"
    if where.packet is not None:
        text += f" [{where.packet}]"
    return text


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value * 1000:.3f} ms"


def _latency(latency: Latency) -> str:
    if not latency.count:
        return "none"
    text = (
        f"n={latency.count}, p50 {_ms(latency.p50)}, p95 {_ms(latency.p95)}, max {_ms(latency.max)}"
    )
    return text + ("" if latency.exact else " (p50/p95 estimated from a sample)")


def _tags(tags: list[Tag], more: int) -> str:
    by_channel: dict[int, list[str]] = {}
    for tag in tags:
        label = str(tag.tag)
        if tag.packet is not None:
            label += f" [{tag.packet}]"
        if tag.consumer_tag:
            label += f" ({tag.consumer_tag})"
        by_channel.setdefault(tag.channel, []).append(label)
    text = "; ".join(f"channel {ch} tag {', '.join(items)}" for ch, items in by_channel.items())
    return text + (f"; and {more} more" if more else "")


def _silence(silence: Silence | None, epoch: float | None) -> str:
    if silence is None:
        return "no frames"
    end = "to the end" if silence.until is None else f"until {_at(silence.until, epoch)[3:]}"
    return f"{silence.seconds:.3f} s from {_at(silence.since, epoch)[3:]} {end}"


def _product(neg: dict[str, Any], side: str) -> str:
    """``RabbitMQ 3.10.8 (Erlang/OTP 25.2.3)``, leaving out what the peer did not say."""
    name = " ".join(
        str(neg[f"{side}_{k}"]) for k in ("product", "version") if neg.get(f"{side}_{k}")
    )
    platform = neg.get(f"{side}_platform")
    return (name or "unnamed") + (f" ({platform})" if platform else "")


def _connection(rep: ConnectionReport, epoch: float | None) -> list[str]:
    head = f"connection #{rep.connection}"
    if rep.client:
        head += f" {rep.client} -> {rep.server}"
    lines = [head]
    add = lines.append
    neg = rep.negotiated
    if "frame_max" in neg:
        proposed = neg.get("proposed") or {}
        offer = "/".join(
            str(proposed.get(k, "?")) for k in ("frame_max", "channel_max", "heartbeat")
        )
        add(
            f"  negotiated: frame_max {neg['frame_max']}, channel_max {neg['channel_max']},"
            f" heartbeat {neg['heartbeat']} s (server proposed {offer})"
        )
    if "client_product" in neg:
        add(
            f"  client: {_product(neg, 'client')}, mechanism {neg.get('mechanism')},"
            f" virtual host {neg.get('virtual_host', '?')!r}"
        )
    if "server_product" in neg:
        add(f"  server: {_product(neg, 'server')}")
    add(f"  channels: {rep.channels_opened} opened, {rep.channels_closed} closed")
    for life in rep.channels:
        text = f"    {life.channel}: opened {_at(life.opened, epoch)}"
        if life.closed_by is not None:
            text += f", closed by {life.closed_by} ({life.reply_code})"
        if life.closed is not None:
            done = "done" if life.ended == "closed" else life.ended
            text += f", {done} {_at(life.closed, epoch)}"
        elif life.ended:
            text += f", {life.ended}"
        add(text)
    if rep.more.get("channels"):
        add(f"    and {rep.more['channels']} more")
    if rep.errors:
        add("  errors:")
        for error in rep.errors:
            cause = "no method"
            if error.caused_by is not None:
                cause = f"{error.caused_by} ({error.class_id}/{error.method_id})"
                if error.cause_packet is not None:
                    cause += f" [{error.cause_packet}]"
            elif (error.class_id, error.method_id) != (0, 0):
                cause = f"unknown method {error.class_id}/{error.method_id}"
            where = f"channel {error.channel}" if error.level == "channel" else "connection"
            add(
                f"    {where} closed by {error.by} {_at(Where(error.time, error.packet), epoch)}:"
                f" {error.reply_code} {error.reply_text}; caused by {cause}"
            )
    else:
        add("  errors: none")
    confirms = rep.confirms
    if confirms.channels:
        add(
            f"  confirms (channel {', '.join(map(str, confirms.channels))}):"
            f" {confirms.published} published, {confirms.acked} acked,"
            f" {confirms.nacked_count} nacked, {confirms.unconfirmed_count} never confirmed"
        )
        if confirms.nacked:
            add(f"    nacked: {_tags(confirms.nacked, rep.more.get('nacked', 0))}")
        if confirms.unconfirmed:
            unconfirmed = _tags(confirms.unconfirmed, rep.more.get("unconfirmed", 0))
            add(f"    never confirmed: {unconfirmed}")
        add(f"    publish -> confirm: {_latency(confirms.latency)}")
    if rep.consumers:
        add("  consumers:")
        for consumer in rep.consumers:
            queue = "queue ?" if consumer.queue is None else f"queue {consumer.queue!r}"
            text = f"    {consumer.consumer_tag!r} on channel {consumer.channel} <- {queue}:"
            text += f" {consumer.deliveries} deliveries"
            if consumer.no_ack:
                text += ", no_ack"
            elif consumer.no_ack is None:
                text += ", no_ack unknown"
            else:
                prefetch = consumer.prefetch_count
                limit = f"prefetch {prefetch}" if prefetch else "no prefetch limit"
                if consumer.prefetch_global:
                    limit += " (global)"
                text += f", most in flight {consumer.max_in_flight} ({limit})"
            if consumer.cancelled_by is not None:
                text += f"; cancelled by {consumer.cancelled_by} {_at(consumer.cancelled, epoch)}"
            add(text)
    if rep.unacked_count:
        add(f"  never acknowledged: {_tags(rep.unacked, rep.more.get('unacked', 0))}")
    elif rep.consumers:
        add("  never acknowledged: none")
    if rep.requests:
        add("  request -> reply:")
        for name, latency in rep.requests.items():
            add(f"    {name}: {_latency(latency)}")
    for request in rep.unanswered_requests:
        add(
            f"  unanswered: {request.consumer_tag} on channel {request.channel}"
            f" {_at(Where(request.time, request.packet), epoch)}"
        )
    rpc = rep.rpc
    if rpc.calls:
        direct = f", {rpc.direct_reply_to} over direct reply-to" if rpc.direct_reply_to else ""
        add(f"  RPC calls: {rpc.calls}{direct}, {rpc.answered} answered: {_latency(rpc.latency)}")
        for call in rpc.unanswered:
            add(f"    unanswered call {_at(Where(call.time, call.packet), epoch)}")
    if rpc.served:
        add(f"  RPC requests served: {rpc.served}: {_latency(rpc.serve_latency)}")
    beats = rep.heartbeats
    interval = "not in the capture" if beats.interval is None else f"{beats.interval} s"
    if beats.interval == 0:
        interval = "off"
    add(f"  heartbeat: {interval}; ended: {beats.ended}")
    for direction in ("c2s", "s2c"):
        silence = _silence(beats.longest_silence.get(direction), epoch)
        add(f"    longest silence {direction}: {silence}")
    if beats.silent_first is not None:
        who = "the client" if beats.silent_first == "c2s" else "the server"
        add(f"    went silent first: {who} ({beats.silent_first})")
    if rep.violations:
        add(f"  protocol violations ({rep.violations_checked}):")
        for v in rep.violations:
            named = method_name(v.class_id, v.method_id)
            what = f" in {named}" if named else ""
            add(
                f"    {v.direction} {_at(Where(v.time, v.packet), epoch)}: {v.reply_code}{what}:"
                f" {v.message}"
            )
    else:
        add(f"  protocol violations: none (checked: {rep.violations_checked})")
    if rep.unknown or rep.forgotten:
        add("  not known from this capture:")
        for text in rep.unknown:
            add(f"    - {text}")
        if rep.more.get("unknown"):
            add(f"    - and {rep.more['unknown']} more")
        for table, dropped in rep.forgotten.items():
            add(f"    - {dropped} {table} dropped: the table was full (--max-open)")
    return lines
