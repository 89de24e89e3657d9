"""Fuzzing a live peer over TCP: ``amqpcodec fuzz HOST:PORT`` and :func:`fuzz_broker`,
or with ``--serve PORT`` a client (:func:`fuzz_client`). Needs the ``hypothesis`` extra.

How this works: Hypothesis draws cases from :mod:`amqpcodec.strategies` in the calling
thread (valid client streams with the given login, streams RabbitMQ accepts, mutations
of them that spare the handshake or not, and raw frames after a valid handshake) and
hands them over a bounded queue to ``workers`` threads, each of which holds at most
one connection. A worker sends a case at its frame boundaries (ending a whole stream
with Connection.Close when it does not close itself, so a broker that keeps the
connection says so at once with Close-Ok), answers the peer's Connection.Close with
Close-Ok at the next frame boundary, and reads until the peer closes the socket or
stays silent for ``timeout`` seconds. Then the oracle judges the reaction. Acceptable:

- the peer keeps the connection (silence);
- it sends Connection.Close with a known reply code, then closes the socket;
- it answers our Connection.Close with Close-Ok;
- it closes the socket without a word before the handshake completed.

Anything else is a finding: the socket closed or reset after the handshake without a
Close, bytes that do not decode, a Close with an unknown reply code, a socket left
open long after the Close handshake. For unmutated client streams the reaction is also
compared with the refusal :class:`~amqpcodec.strategies.RabbitMQRules` expects; a
disagreement is reported on its own ("model"), not as a finding.

Bounds: at most ``workers`` (1-64) connections at once; the queue holds ``2 * workers``
cases; one reaction keeps at most 1 MiB of received frames (frames above 1 MiB are
undecodable for the oracle); a probe lasts at most ``timeout`` seconds of silence plus
``close_timeout`` after a Close, and never more than ``max_seconds``.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import queue
import select
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from . import spec
from ._errors import AMQPError, DecodeError
from ._frames import Frame, FrameDecoder, MethodFrame, decode_frame
from ._fuzz_cli import MAX_WORKERS, TargetUnusable
from ._refusals import Refusal
from .strategies import (
    Mutant,
    Mutation,
    Stream,
    _frame_spans,
    after_handshake,
    frames,
    handshake_end,
    methods,
    mutants,
    streams,
)

__all__ = [
    "Case",
    "Finding",
    "FuzzReport",
    "Reaction",
    "TargetUnusable",
    "broker_cases",
    "cleanup",
    "client_cases",
    "fuzz_broker",
    "fuzz_client",
    "probe",
    "replay",
]

MAX_RECEIVED: Final = 1 << 20  # bytes of the peer's frames one probe keeps
DEFAULT_PREFIX: Final = "amqpcodec-fuzz."

_CLOSE_INDEX = (10 << 16) | 50  # connection.close
_CLOSE = MethodFrame(0, spec.Connection.Close(200, "amqpcodec fuzz: end of input", 0, 0))
_CLOSE_OK = MethodFrame(0, spec.Connection.CloseOk()).encode()


@dataclass(frozen=True)
class Case:
    """One input: its bytes, which strategy drew it, the mutations that made it (if
    any), where its handshake ends, whether the handshake is intact, and for an
    unmutated client stream the refusals RabbitMQ's rules expect (``judged``)."""

    data: bytes
    kind: str
    mutations: tuple[Mutation, ...] = ()
    handshake_end: int = 0
    refusals: tuple[Refusal, ...] = ()
    judged: bool = False
    declared: tuple[tuple[str, str], ...] = ()

    @property
    def handshake_intact(self) -> bool:
        return all(m.offset >= self.handshake_end for m in self.mutations)

    @classmethod
    def of(cls, value: Any, kind: str) -> Case:
        """A case from a drawn :class:`Stream`, :class:`Mutant` or bytes."""
        if isinstance(value, Stream):
            data = value.encode()
            judged = value.sender == "client"
            refusals = tuple(item.refusal for item in value.refusals if item.refusal)
            return cls(data, kind, (), value.handshake_end, refusals, judged, _declared(data))
        if isinstance(value, Mutant):
            end = value.spared or handshake_end(value.original)
            # A splice may bring another stream's declarations: look at both.
            declared = dict.fromkeys((*_declared(value.original), *_declared(value.data)))
            return cls(value.data, kind, value.mutations, end, declared=tuple(declared))
        data = bytes(value)
        return cls(data, kind, (), handshake_end(data), declared=_declared(data))


_DECLARES = {(40, 10): "exchange", (50, 10): "queue"}  # exchange.declare, queue.declare


def _declared(data: bytes) -> tuple[tuple[str, str], ...]:
    """Every queue and exchange a client stream may declare: each non-passive declare
    in it, whatever came before (the broker runs channels side by side, so a refusal
    on one does not stop a declaration on another). To clean up after."""
    found: dict[tuple[str, str], None] = {}
    for start, end in _frame_spans(data):
        if data[start] != 1 or end - start < 12:
            continue
        kind = _DECLARES.get(
            (
                int.from_bytes(data[start + 7 : start + 9], "big"),
                int.from_bytes(data[start + 9 : start + 11], "big"),
            )
        )
        if kind is None:
            continue
        with contextlib.suppress(AMQPError):
            decoded = decode_frame(data[start:end])
            method: Any = decoded[0].method if decoded is not None else None  # type: ignore[union-attr]
            if method is not None and not method.passive:
                found[(kind, method.exchange if kind == "exchange" else method.queue)] = None
    return tuple(found)


@dataclass(frozen=True)
class Reaction:
    """What the peer did with one case.

    ``outcome`` is ``"kept"`` (silent until the timeout), ``"close"`` (it sent
    Connection.Close), ``"close-ok"`` (it answered ours), ``"eof"`` or ``"reset"``
    (the socket closed without either), or ``"garbage"`` (bytes that do not decode).
    ``opened`` says whether the handshake completed (the broker sent Open-Ok; for a
    client, it sent Connection.Open after an intact handshake).
    """

    outcome: str
    opened: bool
    reply_code: int | None = None
    reply_text: str = ""
    class_id: int = 0
    method_id: int = 0
    channel_codes: tuple[int, ...] = ()
    channel_texts: tuple[str, ...] = ()
    received: int = 0
    socket_closed: bool = True
    detail: str = ""
    seconds: float = 0.0
    aligned: bool = True  # the input was whole frames: our Close-Ok reached a boundary

    def __str__(self) -> str:
        parts = [self.outcome]
        if self.reply_code is not None:
            where = f"class {self.class_id}, method {self.method_id}"
            parts.append(f"{self.reply_code} {self.reply_text!r} ({where})")
        if self.channel_codes:
            first = f" {self.channel_texts[0]!r}" if self.channel_texts else ""
            parts.append("Channel.Close " + ",".join(map(str, self.channel_codes)) + first)
        parts.append("after the handshake" if self.opened else "before the handshake completed")
        parts.append(f"{self.received} bytes received")
        if not self.socket_closed:
            parts.append("socket still open")
        if self.detail:
            parts.append(self.detail)
        return ", ".join(parts)


@dataclass(frozen=True)
class Finding:
    """A reaction the oracle does not accept, with the input that caused it."""

    problem: str
    case: Case
    reaction: Reaction

    @property
    def hex(self) -> str:
        return self.case.data.hex()

    def __str__(self) -> str:
        mutated = ", ".join(map(str, self.case.mutations))
        how = f"{self.case.kind}" + (f" [{mutated}]" if mutated else "")
        return (
            f"{self.problem}\n    input ({how}, {len(self.case.data)} bytes): {self.hex}"
            f"\n    reaction: {self.reaction}"
        )


@dataclass
class FuzzReport:
    """The outcome of a run: counts, reply codes, findings and model disagreements."""

    target: str
    examples: int = 0
    seconds: float = 0.0
    workers: int = 1
    seed: int | None = None
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    reply_codes: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: list[Finding] = field(default_factory=list)
    disagreements: list[tuple[str, Case, Reaction]] = field(default_factory=list)
    stopped: str = ""
    deleted: tuple[str, ...] = ()  # the exchanges the cases declared, deleted after the run
    deleted_queues: tuple[str, ...] = ()  # and the queues (exclusive ones are gone already)

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    def add(self, case: Case, reaction: Reaction, problem: str | None, model: str | None) -> None:
        self.examples += 1
        self.outcomes[reaction.outcome] += 1
        if reaction.reply_code is not None:
            self.reply_codes[f"{reaction.reply_code} connection"] += 1
        for code in reaction.channel_codes:
            self.reply_codes[f"{code} channel"] += 1
        if problem is not None:
            self.findings.append(Finding(problem, case, reaction))
        if model is not None:
            self.disagreements.append((model, case, reaction))

    def summary(self, *, max_findings: int = 20, max_disagreements: int = 5) -> str:
        lines = [
            f"amqpcodec fuzz {self.target}: {self.examples} examples in {self.seconds:.1f} s"
            f" ({self.examples_per_second:.1f} examples/s), {self.workers} workers,"
            f" seed {self.seed if self.seed is not None else 'random'}",
            "reactions: " + _counts(self.outcomes),
            "reply codes: " + (_counts(self.reply_codes) or "none"),
        ]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}")
        lines.append(f"findings: {len(self.findings)}")
        for number, finding in enumerate(self.findings[:max_findings], 1):
            lines.append(f"  [{number}] {finding}")
        if len(self.findings) > max_findings:
            lines.append(f"  ... {len(self.findings) - max_findings} more")
        if self.disagreements:
            lines.append(
                f"model disagreements (the refusal RabbitMQ's rules expect vs what came;"
                f" not findings): {len(self.disagreements)}"
            )
            for text, case, _ in self.disagreements[:max_disagreements]:
                lines.append(f"  {text}\n    input ({case.kind}): {case.data.hex()}")
        return "\n".join(lines)


def _counts(counter: collections.Counter[str]) -> str:
    return ", ".join(f"{key} x{count}" for key, count in sorted(counter.items()))


# ---------------------------------------------------------------------------------------
# What to send


def broker_cases(
    *,
    username: str = "guest",
    password: str = "guest",
    virtual_host: str = "/",
    name_prefix: str = DEFAULT_PREFIX,
) -> st.SearchStrategy[Case]:
    """The default mix of client cases for a broker, with this login: whole client
    streams of any methods, streams RabbitMQ accepts, both mutated after the handshake,
    raw frames after a handshake, and (one in six) mutations that may hit the handshake."""
    login: dict[str, Any] = {
        "username": username,
        "password": password,
        "virtual_host": virtual_host,
        "client_properties": {
            "product": "amqpcodec fuzz",
            "capabilities": {"authentication_failure_close": True},
        },
        "heartbeat": 0,  # a slow probe must not look like a dead peer
    }
    any_methods = streams("client", name_prefix=name_prefix, **login)
    accepted = streams("client", accepted_by="rabbitmq", name_prefix=name_prefix, **login)
    raw_items = st.one_of(
        frames(any_channel=True),
        methods(sender="client"),
        st.binary(min_size=1, max_size=32),
    )
    return st.one_of(
        any_methods.map(lambda s: Case.of(s, "methods")),
        accepted.map(lambda s: Case.of(s, "accepted")),
        mutants(any_methods, spare_handshake=True).map(lambda m: Case.of(m, "mutated")),
        mutants(accepted, spare_handshake=True).map(lambda m: Case.of(m, "mutated-accepted")),
        after_handshake(raw_items, name_prefix=name_prefix, max_items=4, **login).map(
            lambda s: Case.of(s, "frames")
        ),
        mutants(any_methods).map(lambda m: Case.of(m, "mutated-handshake")),
    )


def client_cases() -> st.SearchStrategy[Case]:
    """The default mix of server cases for a client: whole server streams, the same
    mutated after the handshake or anywhere, and raw frames after a handshake."""
    server = streams("server", heartbeat=0)
    raw_items = st.one_of(
        frames(any_channel=True), methods(sender="server"), st.binary(min_size=1, max_size=32)
    )
    return st.one_of(
        server.map(lambda s: Case.of(s, "methods")),
        mutants(server, spare_handshake=True).map(lambda m: Case.of(m, "mutated")),
        mutants(server).map(lambda m: Case.of(m, "mutated-handshake")),
        after_handshake(raw_items, "server", max_items=4, heartbeat=0).map(
            lambda s: Case.of(s, "frames")
        ),
    )


# ---------------------------------------------------------------------------------------
# One probe


@dataclass
class _Reader:
    """The peer's side of one probe: frames decoded, the close handshake tracked."""

    sender: str  # who the peer is: "server" (we fuzz a broker) or "client"
    decoder: FrameDecoder = field(default_factory=lambda: FrameDecoder(max_frame_size=MAX_RECEIVED))
    received: int = 0
    close: spec.Connection.Close | None = None
    close_ok: bool = False
    open_seen: bool = False
    channel_codes: list[int] = field(default_factory=list)
    channel_texts: list[str] = field(default_factory=list)
    garbage: str = ""

    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self.garbage or self.received > 4 * MAX_RECEIVED:
            return
        try:
            got: list[Frame] = self.decoder.feed(data)
        except DecodeError as exc:
            self.garbage = f"undecodable bytes: {exc}"
            return
        for frame in got:
            if not isinstance(frame, MethodFrame):
                continue
            method = frame.method
            name = method.NAME
            if name == "connection.close" and frame.channel == 0:
                self.close = method  # type: ignore[assignment]
            elif name == "connection.close-ok":
                self.close_ok = True
            elif name in ("connection.open-ok", "connection.open"):
                self.open_seen = True
            elif name == "channel.close":
                self.channel_codes.append(method.reply_code)  # type: ignore[attr-defined]
                self.channel_texts.append(method.reply_text)  # type: ignore[attr-defined]


def _pieces(data: bytes) -> tuple[list[bytes], bool]:
    """``data`` cut at its frame boundaries, and whether it ends on one."""
    spans = _frame_spans(data)
    pieces = [data[start:end] for start, end in spans]
    end = spans[-1][1] if spans else 0
    if end < len(data):
        pieces.append(data[end:])
    return pieces, end == len(data)


def _closes(data: bytes) -> bool:
    """Whether a frame-aligned stream sends Connection.Close."""
    return any(
        data[start] == 1
        and end - start >= 12
        and int.from_bytes(data[start + 7 : start + 11], "big") == _CLOSE_INDEX
        for start, end in _frame_spans(data)
    )


def probe(
    address: tuple[str, int],
    case: Case,
    *,
    timeout: float = 1.0,
    close_timeout: float = 5.0,
    max_seconds: float = 30.0,
    connect_timeout: float = 5.0,
) -> Reaction:
    """Send ``case`` to the broker at ``address`` and return its :class:`Reaction`.
    Raises :class:`TargetUnusable` when nothing accepts the connection."""
    try:
        sock = socket.create_connection(address, timeout=connect_timeout)
    except OSError as exc:
        raise TargetUnusable(f"cannot connect to {address[0]}:{address[1]}: {exc}") from exc
    with sock:
        return _exchange(sock, case, "server", timeout, close_timeout, max_seconds)


def _exchange(
    sock: socket.socket,
    case: Case,
    peer: str,
    timeout: float,
    close_timeout: float,
    max_seconds: float,
) -> Reaction:
    started = time.monotonic()
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = _Reader(peer)
    pieces, aligned = _pieces(case.data)
    we_close = aligned and peer == "server" and not _closes(case.data)
    if we_close:
        pieces.append(_CLOSE.encode())
    state: dict[str, Any] = {"eof": "", "close_ok_sent": False}

    def pump(wait: float) -> None:
        """Read what is there (waiting up to ``wait`` for the first bytes)."""
        while not state["eof"]:
            ready, _, _ = select.select([sock], [], [], wait)
            if not ready:
                return
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                state["eof"] = "reset"
                return
            except OSError as exc:
                state["eof"] = f"reset ({exc.strerror})"
                return
            if not data:
                state["eof"] = "eof"
                return
            reader.feed(data)
            wait = 0.0

    def answer_close() -> None:
        if reader.close is not None and not state["close_ok_sent"]:
            state["close_ok_sent"] = True
            with contextlib.suppress(OSError):
                _send_all(sock, _CLOSE_OK, started + max_seconds)

    for piece in pieces:
        pump(0.0)
        if reader.close is not None or state["eof"] or reader.garbage:
            break
        try:
            _send_all(sock, piece, started + max_seconds)
        except OSError:
            break
    answer_close()
    # Read until the peer closes, stays silent, or the close handshake is overdue.
    last = time.monotonic()
    # After the Close-Ok to our Close, closing the socket is ours to do; after the
    # peer's own Close, it is the peer's (whatever it answered to ours).
    while not state["eof"] and not reader.garbage:
        if reader.close_ok and reader.close is None:
            break
        now = time.monotonic()
        limit = close_timeout if reader.close is not None else timeout
        if now - last >= limit or now - started >= max_seconds:
            break
        before = reader.received
        pump(min(0.05, limit))
        answer_close()
        if reader.received != before:
            last = time.monotonic()
    reaction = _reaction(case, reader, state["eof"], peer, time.monotonic() - started)
    return replace(reaction, aligned=aligned)


def _reachable(address: tuple[str, int], connect_timeout: float) -> None:
    try:
        socket.create_connection(address, timeout=connect_timeout).close()
    except OSError as exc:
        raise TargetUnusable(f"cannot connect to {address[0]}:{address[1]}: {exc}") from exc


def _send_all(sock: socket.socket, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        _, ready, _ = select.select([], [sock], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError("the peer stopped reading")
        sent = sock.send(view)
        view = view[sent:]


def _reaction(case: Case, reader: _Reader, eof: str, peer: str, seconds: float) -> Reaction:
    # A client finished its handshake if it sent Open after an intact one.
    opened = reader.open_seen and (peer == "server" or case.handshake_intact)
    close = reader.close
    if reader.garbage:
        outcome = "garbage"
    elif close is not None:
        outcome = "close"
    elif reader.close_ok:
        outcome = "close-ok"
    elif eof:
        outcome = "reset" if eof.startswith("reset") else "eof"
    else:
        outcome = "kept"
    return Reaction(
        outcome,
        opened,
        None if close is None else close.reply_code,
        "" if close is None else close.reply_text,
        0 if close is None else close.class_id,
        0 if close is None else close.method_id,
        tuple(reader.channel_codes),
        tuple(reader.channel_texts),
        reader.received,
        bool(eof),
        reader.garbage or (eof if eof.startswith("reset (") else ""),
        round(seconds, 3),
    )


_KNOWN_CODES = frozenset(int(code) for code in spec.ReplyCode)


def judge(case: Case, reaction: Reaction, peer: str = "server") -> str | None:
    """The oracle: None when ``reaction`` is acceptable, else what is wrong with it."""
    who = "the broker" if peer == "server" else "the client"
    if reaction.outcome == "garbage":
        return f"{who} sent {reaction.detail}"
    if reaction.outcome == "close":
        if reaction.reply_code not in _KNOWN_CODES:
            return f"{who} sent Connection.Close with the unknown reply code {reaction.reply_code}"
        if not reaction.socket_closed and reaction.aligned:
            # (After a partial frame, our Close-Ok only completes it: no verdict then.)
            return f"{who} sent Connection.Close but kept the socket open after our Close-Ok"
        return None
    if reaction.outcome in ("eof", "reset") and reaction.opened:
        return (
            f"{who} closed the socket ({reaction.outcome}) after the handshake"
            " without Connection.Close"
        )
    if (
        peer == "server"
        and reaction.outcome in ("eof", "reset")
        and case.handshake_end > 0
        and case.handshake_intact
    ):
        # The login was whole and valid (the run checked it), so Open-Ok was due.
        return (
            f"{who} closed the socket ({reaction.outcome}) without Open-Ok or"
            " Connection.Close after a valid handshake"
        )
    return None


def _model(case: Case, reaction: Reaction) -> str | None:
    """How the reaction differs from the refusals RabbitMQ's rules expect (unmutated
    client streams only), or None. The broker handles channel 0 at once and the other
    channels on their own, so any expected refusal may be the one that comes first."""
    if not case.judged or case.mutations or reaction.outcome == "garbage":
        return None
    hard = {r.reply_code for r in case.refusals if r.connection}
    soft = {r.reply_code for r in case.refusals if not r.connection}
    closed = reaction.outcome == "close" and reaction.reply_code != 200
    if closed and reaction.reply_code in hard:
        return None  # other channels may have refused frames sent after it meanwhile
    if closed:
        expected = ", ".join(map(str, case.refusals)) or "acceptance"
        got = f"Connection.Close {reaction.reply_code} {reaction.reply_text!r}"
        return f"expected {expected}, got {got}"
    unexpected = [code for code in reaction.channel_codes if code not in soft]
    if unexpected:
        expected = ", ".join(map(str, case.refusals)) or "acceptance"
        index = reaction.channel_codes.index(unexpected[0])
        text = reaction.channel_texts[index] if index < len(reaction.channel_texts) else ""
        return f"expected {expected}, got Channel.Close {unexpected[0]} {text!r}"
    if case.refusals and not closed and not reaction.channel_codes:
        return f"expected {case.refusals[0]}, got {reaction}"
    return None


# ---------------------------------------------------------------------------------------
# Runs


class _Stop(Exception):
    """Ends the generating loop early (the target went away, or no client came)."""


def _run_cases(
    cases: st.SearchStrategy[Case],
    examples: int,
    seed: int | None,
    workers: int,
    work: Callable[[Case], None],
    stop: threading.Event,
) -> str:
    """Draw ``examples`` cases and run ``work`` on each in ``workers`` threads."""
    todo: queue.Queue[Case | None] = queue.Queue(maxsize=2 * workers)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            case = todo.get()
            if case is None:
                return
            if stop.is_set():
                continue
            try:
                work(case)
            except _Stop as exc:
                errors.append(exc)
                stop.set()
            except BaseException as exc:  # reported after the run, never lost
                errors.append(exc)
                stop.set()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(cases)
    def generate(case: Case) -> None:
        if stop.is_set():
            raise _Stop("stopped")
        todo.put(case)

    if seed is not None:
        generate = hypothesis_seed(seed)(generate)
    stopped = ""
    try:
        generate()
    except _Stop:
        pass
    finally:
        for _ in threads:
            todo.put(None)
        for thread in threads:
            thread.join()
    for error in errors:
        if isinstance(error, _Stop):
            stopped = str(error)
        else:
            raise error
    return stopped


def _check_host(host: str, allow_remote: bool) -> None:
    if allow_remote:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise TargetUnusable(
            f"{host} is not this machine: fuzzing goes to 127.0.0.1 unless allow_remote=True"
            " (--allow-remote)"
        )


def _check_counts(examples: int, workers: int) -> None:
    if examples < 1:
        raise ValueError(f"examples={examples} must be at least 1")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers={workers} must be between 1 and {MAX_WORKERS}")


def fuzz_broker(
    host: str = "127.0.0.1",
    port: int = 5672,
    *,
    examples: int = 100,
    workers: int = 4,
    seed: int | None = None,
    username: str = "guest",
    password: str = "guest",
    virtual_host: str = "/",
    cases: st.SearchStrategy[Case] | None = None,
    timeout: float = 1.0,
    close_timeout: float = 5.0,
    allow_remote: bool = False,
    name_prefix: str = DEFAULT_PREFIX,
    cleanup: bool = True,
) -> FuzzReport:
    """Fuzz the broker at ``host``:``port`` with ``examples`` cases (default
    :func:`broker_cases` with this login) over at most ``workers`` connections at
    once, and return the :class:`FuzzReport`. Exchanges the cases declared (all named
    with ``name_prefix``) are deleted afterwards when ``cleanup`` is true; queues are
    exclusive and go with their connection. Raises :class:`TargetUnusable` when the
    broker cannot be reached (or is not on this machine and ``allow_remote`` is false)."""
    _check_counts(examples, workers)
    _check_host(host, allow_remote)
    address = (host, port)
    _reachable(address, connect_timeout=5.0)
    if cases is None:  # the default cases log in: check that they can
        refused = _session(address, username, password, virtual_host)
        if refused is not None:
            raise TargetUnusable(refused)
    drawn = (
        cases
        if cases is not None
        else broker_cases(
            username=username, password=password, virtual_host=virtual_host, name_prefix=name_prefix
        )
    )
    report = FuzzReport(f"{host}:{port}", workers=workers, seed=seed)
    lock = threading.Lock()
    declared: dict[tuple[str, str], None] = {}
    stop = threading.Event()

    def work(case: Case) -> None:
        try:
            reaction = probe(address, case, timeout=timeout, close_timeout=close_timeout)
        except TargetUnusable as exc:
            raise _Stop(str(exc)) from exc
        problem = judge(case, reaction)
        with lock:
            report.add(case, reaction, problem, _model(case, reaction))
            declared.update(
                (entity, None) for entity in case.declared if entity[1].startswith(name_prefix)
            )

    started = time.monotonic()
    report.stopped = _run_cases(drawn, examples, seed, workers, work, stop)
    report.seconds = time.monotonic() - started
    if cleanup and declared:
        problem = _session(address, username, password, virtual_host, list(declared))
        if problem is None:
            report.deleted = tuple(name for kind, name in declared if kind == "exchange")
            report.deleted_queues = tuple(name for kind, name in declared if kind == "queue")
    return report


def replay(
    data: bytes,
    host: str = "127.0.0.1",
    port: int = 5672,
    *,
    serve: bool = False,
    timeout: float = 1.0,
    close_timeout: float = 5.0,
    allow_remote: bool = False,
    accept_timeout: float = 30.0,
) -> tuple[Reaction, str | None]:
    """Send ``data`` once to the broker at ``host``:``port`` (with ``serve=True``,
    serve it to the first client that connects to ``port`` instead) and return the
    reaction and the oracle's verdict (None: acceptable)."""
    _check_host(host, allow_remote)
    case = Case(data, "replay", (), handshake_end(data))
    if not serve:
        reaction = probe((host, port), case, timeout=timeout, close_timeout=close_timeout)
        return reaction, judge(case, reaction)
    with _listen(host, port) as listener:
        print(f"amqpcodec fuzz: serving on {_where(listener)}", file=sys.stderr, flush=True)
        conn = _accept(listener, accept_timeout)
        if conn is None:
            raise TargetUnusable(f"no client connected within {accept_timeout} s")
        reaction = _serve_one(conn, case, timeout, close_timeout)
        return reaction, judge(case, reaction, "client")


# ---------------------------------------------------------------------------------------
# Fuzzing a client


@contextlib.contextmanager
def _listen(host: str, port: int) -> Iterator[socket.socket]:
    try:
        listener = socket.create_server((host, port), backlog=MAX_WORKERS)
    except OSError as exc:
        raise TargetUnusable(f"cannot listen on {host}:{port}: {exc}") from exc
    with listener:
        yield listener


def _where(listener: socket.socket) -> str:
    host, port = listener.getsockname()[:2]
    return f"{host}:{port}"


def _accept(listener: socket.socket, wait: float) -> socket.socket | None:
    ready, _, _ = select.select([listener], [], [], wait)
    if not ready:
        return None
    conn, _ = listener.accept()
    return conn


def _serve_one(conn: socket.socket, case: Case, timeout: float, close_timeout: float) -> Reaction:
    with conn:
        conn.settimeout(timeout)
        header = b""
        with contextlib.suppress(OSError):
            while len(header) < 8:  # the client speaks first: its protocol header
                more = conn.recv(8 - len(header))
                if not more:
                    break
                header += more
        reaction = _exchange(conn, case, "client", timeout, close_timeout, 30.0)
        if header[:4] == b"AMQP":
            return reaction
        return replace(reaction, detail=f"no protocol header first ({header.hex() or 'nothing'})")


def fuzz_client(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    examples: int = 100,
    workers: int = 4,
    seed: int | None = None,
    cases: st.SearchStrategy[Case] | None = None,
    timeout: float = 1.0,
    close_timeout: float = 5.0,
    accept_timeout: float = 30.0,
    allow_remote: bool = False,
    ready: Callable[[str, int], None] | None = None,
) -> FuzzReport:
    """Listen on ``host``:``port`` (0: any free port; ``ready(host, port)`` is called
    once listening) and serve one case (default :func:`client_cases`) to each client
    that connects, ``examples`` connections in all, at most ``workers`` at once. Stops
    early when no client connects for ``accept_timeout`` seconds."""
    _check_counts(examples, workers)
    _check_host(host, allow_remote)
    drawn = cases if cases is not None else client_cases()
    stop = threading.Event()
    lock = threading.Lock()
    with _listen(host, port) as listener:
        bound_host, bound_port = listener.getsockname()[:2]
        report = FuzzReport(f"clients of {bound_host}:{bound_port}", workers=workers, seed=seed)
        if ready is not None:
            ready(bound_host, bound_port)

        def work(case: Case) -> None:
            with lock:  # one accept at a time; the exchange runs unlocked
                conn = _accept(listener, accept_timeout)
            if conn is None:
                raise _Stop(f"no client connected within {accept_timeout} s")
            reaction = _serve_one(conn, case, timeout, close_timeout)
            problem = judge(case, reaction, "client")
            with lock:
                report.add(case, reaction, problem, None)

        started = time.monotonic()
        report.stopped = _run_cases(drawn, examples, seed, workers, work, stop)
        report.seconds = time.monotonic() - started
    return report


# ---------------------------------------------------------------------------------------
# Cleaning up


def cleanup(
    entities: Iterable[tuple[str, str]],
    host: str = "127.0.0.1",
    port: int = 5672,
    *,
    username: str = "guest",
    password: str = "guest",
    virtual_host: str = "/",
    name_prefix: str = DEFAULT_PREFIX,
) -> None:
    """Delete the ``("queue" | "exchange", name)`` pairs whose name starts with
    ``name_prefix`` (what :attr:`Case.declared` lists) from the broker, over one
    well-behaved connection. Raises :class:`TargetUnusable` when it cannot log in."""
    chosen = [(kind, name) for kind, name in entities if name.startswith(name_prefix)]
    problem = _session((host, port), username, password, virtual_host, chosen)
    if problem is not None:
        raise TargetUnusable(problem)


def _session(
    address: tuple[str, int],
    username: str,
    password: str,
    virtual_host: str,
    entities: Sequence[tuple[str, str]] = (),
) -> str | None:
    """Log in with one well-behaved connection, delete ``entities`` (``("exchange" |
    "queue", name)``; missing ones are no error), close. Returns None when the broker
    let us in, else why not."""
    from ._connection import Connection
    from ._state import Role
    from .events import ChannelOpened, ConnectionClosed, ConnectionOpened

    conn = Connection(
        Role.CLIENT,
        username=username,
        password=password,
        virtual_host=virtual_host,
        heartbeat=0,
        client_properties={"capabilities": {"authentication_failure_close": True}},
    )
    try:
        with socket.create_connection(address, timeout=5) as sock:
            sock.settimeout(5)

            def until(done: Callable[[list[Any]], bool]) -> bool:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    sock.sendall(conn.data_to_send())
                    data = sock.recv(65536)
                    events = conn.receive_data(data)
                    if done(events):
                        return True
                    if not data or any(isinstance(e, ConnectionClosed) for e in events):
                        return False
                return False

            if not until(lambda events: any(isinstance(e, ConnectionOpened) for e in events)):
                return f"the broker refused the login {username!r} on {virtual_host!r}"
            channel = conn.open_channel()
            if not until(lambda events: any(isinstance(e, ChannelOpened) for e in events)):
                return "the broker refused a channel"
            for kind, name in entities:
                if kind == "exchange":
                    deletion: Any = spec.Exchange.Delete(exchange=name, no_wait=True)
                else:
                    deletion = spec.Queue.Delete(queue=name, no_wait=True)
                conn.send_method(channel, deletion)
            conn.close()
            until(lambda events: any(isinstance(e, ConnectionClosed) for e in events))
    except (OSError, AMQPError) as exc:
        return f"the login failed: {exc}"
    return None
