"""The frame, message, stream and mutation strategies of amqpcodec.strategies, and the
Hypothesis plugin that makes ``st.from_type`` work for the spec's classes."""

from __future__ import annotations

import math
import random
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import amqpcodec
from amqpcodec import (
    BodyFrame,
    Connection,
    ConnectionState,
    ContentAssembler,
    FrameDecoder,
    HeaderFrame,
    HeartbeatFrame,
    Message,
    MethodFrame,
    ProtocolHeader,
    Role,
    decode_frame,
    encode_message,
    spec,
)
from amqpcodec import strategies as amqp_st
from amqpcodec.compiler import load_spec
from amqpcodec.events import ChannelOpened, ConnectionClosed, ConnectionOpened, Event
from amqpcodec.strategies import _frame_spans, _mutate_once

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).parent.parent


def _full_spec_with_vendor_class(path: Path) -> Path:
    """spec/amqp0-9-1.xml plus the stream class of tests/data/vendor-extension.xml: a
    vendor's whole protocol, with methods the strategies have never heard of."""
    full = ET.parse(ROOT / "spec" / "amqp0-9-1.xml")
    vendor = ET.parse(DATA / "vendor-extension.xml").getroot()
    root = full.getroot()
    domains = {d.get("name") for d in root.iter("domain")}
    for element in vendor:
        if element.tag == "class" or (
            element.tag == "domain" and element.get("name") not in domains
        ):
            root.append(element)
    full.write(path)
    return path


VENDOR = load_spec(DATA / "vendor-extension.xml")

# ---------------------------------------------------------------------------------------
# frames()


@given(amqp_st.frames(amqp_st._ALL_FRAME_KINDS))
def test_every_frame_decodes_back(frame: amqpcodec.Frame) -> None:
    raw = frame.encode()
    assert decode_frame(raw) == (frame, len(raw))
    if not isinstance(frame, ProtocolHeader):
        assert FrameDecoder(0).feed(raw) == [frame]


@given(amqp_st.frames(["method"]))
def test_connection_methods_are_on_channel_zero(frame: Any) -> None:
    assert isinstance(frame, MethodFrame)
    assert (frame.channel == 0) == (frame.method.CLASS_ID == spec.Connection.CLASS_ID)


@given(amqp_st.frames(["method", "header", "body"], channels=st.just(7)))
def test_frames_channel_choice(frame: Any) -> None:
    on_zero = isinstance(frame, MethodFrame) and frame.method.CLASS_ID == spec.Connection.CLASS_ID
    assert frame.channel == (0 if on_zero else 7)


def test_frames_any_channel_reaches_channel_zero_for_content() -> None:
    seen: set[int] = set()

    @given(amqp_st.frames(["body"], any_channel=True))
    def collect(frame: Any) -> None:
        seen.add(frame.channel)

    collect()
    assert 0 in seen


@given(amqp_st.frames(["method"], methods=amqp_st.methods(classes=["tx"])))
def test_frames_take_a_method_strategy(frame: Any) -> None:
    assert frame.method.NAME.startswith("tx.")


@given(amqp_st.frames(["heartbeat", "protocol-header"]))
def test_frames_of_chosen_kinds(frame: Any) -> None:
    assert isinstance(frame, (HeartbeatFrame, ProtocolHeader))


@pytest.mark.parametrize("kinds", [[], ["frame"], ["method", "nope"]])
def test_frames_refuses_unknown_kinds(kinds: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        amqp_st.frames(kinds)


# ---------------------------------------------------------------------------------------
# messages()


@pytest.mark.parametrize("frame_max", [4096, 5000, 131072, 0])
@given(data=st.data())
def test_messages_are_split_at_frame_max(frame_max: int, data: st.DataObject) -> None:
    drawn = data.draw(amqp_st.messages(frame_max))
    method, header, *bodies = drawn.frames
    assert method == MethodFrame(drawn.channel, drawn.method)
    assert header == HeaderFrame(
        drawn.channel, len(drawn.body), drawn.properties, drawn.method.CLASS_ID
    )
    chunk = frame_max - 8 if frame_max else math.inf
    assert len(bodies) == (math.ceil(len(drawn.body) / chunk) if frame_max else bool(drawn.body))
    assert all(isinstance(b, BodyFrame) and 0 < len(b.payload) <= chunk for b in bodies)
    assert all(len(frame.encode()) <= (frame_max or math.inf) for frame in drawn.frames)
    raw = drawn.encode()
    assert raw == encode_message(
        drawn.channel, drawn.method, drawn.properties, drawn.body, frame_max
    )
    assembler = ContentAssembler()
    results = [assembler.feed(frame) for frame in FrameDecoder(frame_max).feed(raw)]
    assert results[:-1] == [None] * (len(results) - 1)
    assert results[-1] == drawn.message
    assert drawn.message == Message(drawn.channel, drawn.method, drawn.properties, drawn.body)


def test_messages_reach_the_frame_boundaries() -> None:
    sizes: set[int] = set()

    @given(amqp_st.messages(4096, max_body_size=3 * 4088 + 1))
    def collect(drawn: amqp_st.MessageFrames) -> None:
        sizes.add(len(drawn.body))

    collect()
    assert sizes & {4087, 4088, 4089, 8176, 8177}, sorted(sizes)


@given(
    amqp_st.messages(methods=amqp_st.methods(classes=["basic"], content=True), channels=st.just(3))
)
def test_messages_options(drawn: amqp_st.MessageFrames) -> None:
    assert drawn.channel == 3 and drawn.method.CONTENT


@pytest.mark.parametrize(
    "kwargs", [{"frame_max": 100}, {"frame_max": 2**32}, {"max_body_size": -1}]
)
def test_messages_refuses_bad_sizes(kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidArgument):
        amqp_st.messages(**kwargs)


def test_messages_refuses_methods_without_content() -> None:
    @given(amqp_st.messages(methods=st.just(spec.Queue.Declare())))
    def draw(drawn: amqp_st.MessageFrames) -> None:
        raise AssertionError("unreachable")

    with pytest.raises(InvalidArgument, match="has no content"):
        draw()


# ---------------------------------------------------------------------------------------
# frame_streams()


def chunks(data: bytes, rnd: random.Random) -> list[bytes]:
    """``data`` cut at random places: mostly small pieces, sometimes big ones."""
    pieces = []
    at = 0
    while at < len(data):
        size = rnd.choice((1, 2, 3, 7, 8, 64, 1000, 5000, len(data)))
        pieces.append(data[at : at + size])
        at += size
    return pieces


def receive_all(conn: Connection, pieces: list[bytes]) -> list[Event]:
    events: list[Event] = []
    for piece in pieces:
        events += conn.receive_data(piece)
        conn.data_to_send()
    return events


@given(amqp_st.frame_streams("client", responses=False, close=True), st.randoms())
def test_a_client_stream_is_accepted_by_a_server(data: bytes, rnd: random.Random) -> None:
    whole = Connection(Role.SERVER)
    events = whole.receive_data(data)
    assert isinstance(events[1], ConnectionOpened)
    assert isinstance(events[-1], ConnectionClosed) and whole.state is ConnectionState.CLOSED
    # Any split of the stream gives the same events.
    assert receive_all(Connection(Role.SERVER), chunks(data, rnd)) == events


@given(
    amqp_st.frame_streams("server", responses=False, close=True, channels=st.integers(1, 3)),
    st.randoms(),
)
def test_a_server_stream_is_accepted_by_a_client(data: bytes, rnd: random.Random) -> None:
    client = Connection(Role.CLIENT)
    client.data_to_send()
    frames = FrameDecoder(0).feed(data)
    handshake = sum(len(frame.encode()) for frame in frames[:3])  # Start, Tune, Open-Ok
    events = receive_all(client, [data[:handshake]])
    assert isinstance(events[-1], ConnectionOpened)
    opened = [f.channel for f in frames if isinstance(f, MethodFrame) and f.channel]
    for channel in dict.fromkeys(opened):
        client.open_channel(channel)
    events = receive_all(client, chunks(data[handshake:], rnd))
    assert isinstance(events[-1], ConnectionClosed) and client.state is ConnectionState.CLOSED
    assert sum(isinstance(e, ChannelOpened) for e in events) == len(set(opened))


@pytest.mark.parametrize("role", ["client", "server"])
@given(data=st.data())
def test_streams_with_responses_decode_and_assemble(role: str, data: st.DataObject) -> None:
    raw = data.draw(amqp_st.frame_streams(role))
    frames = FrameDecoder(0).feed(raw)
    assert sum(len(f.encode()) for f in frames) == len(raw)
    assert isinstance(frames[0], ProtocolHeader) == (role == "client")
    assembler = ContentAssembler()
    for frame in frames:
        assembler.feed(frame)
    senders = {m.NAME for f in frames if isinstance(f, MethodFrame) for m in [f.method]}
    receiver = "server" if role == "client" else "client"
    assert all(receiver in spec.METHODS_BY_NAME[name].CHASSIS for name in senders)


@pytest.mark.parametrize("frame_max", [4096, 10000])
@given(data=st.data())
def test_streams_split_content_at_their_frame_max(frame_max: int, data: st.DataObject) -> None:
    raw = data.draw(amqp_st.frame_streams("client", frame_max=frame_max, max_items=4))
    frames = FrameDecoder(frame_max).feed(raw)
    tune_ok = next(
        f.method
        for f in frames
        if isinstance(f, MethodFrame) and f.method.NAME == "connection.tune-ok"
    )
    assert tune_ok.frame_max == frame_max


def test_every_method_can_appear_in_a_stream(tmp_path: Path) -> None:
    """Built from spec metadata: each method outside the handshake and the channel
    open/close is sent on an open connection by the side its chassis says."""
    vendor = load_spec(_full_spec_with_vendor_class(tmp_path / "vendor.xml"))
    assert "stream.deliver" in {m.NAME for m in vendor.METHODS.values()}
    for module in (spec, vendor):
        seen = set()
        for role in ("client", "server"):
            zero, channels = amqp_st._body_methods(module, role, responses=True)
            seen |= {m.NAME for m in zero + channels}
        fixed = amqp_st._HANDSHAKE | amqp_st._CHANNEL_LIFECYCLE
        assert seen | fixed == {m.NAME for m in module.METHODS.values()}


def test_streams_from_another_spec(tmp_path: Path) -> None:
    vendor = load_spec(_full_spec_with_vendor_class(tmp_path / "vendor.xml"))
    names: set[str] = set()

    @given(amqp_st.frame_streams("server", spec_module=vendor, channels=st.just(1), max_items=30))
    def check(raw: bytes) -> None:
        spans = _frame_spans(raw)
        assert spans[-1][1] == len(raw)
        for start, _ in spans:
            if raw[start] == 1:
                index = int.from_bytes(raw[start + 7 : start + 11], "big")
                names.add(vendor.METHODS[(index >> 16, index & 0xFFFF)].NAME)

    check()
    assert any(name.startswith("stream.") for name in names), names


def test_streams_need_the_connection_class() -> None:
    with pytest.raises(InvalidArgument, match=r"connection\.start"):
        amqp_st.frame_streams(spec_module=VENDOR)


@given(amqp_st.frames(spec_module=VENDOR))
def test_frames_from_a_spec_without_a_connection_class(frame: Any) -> None:
    assert frame.encode()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": "broker"},
        {"max_channels": -1},
        {"max_items": -1},
        {"frame_max": 0},
        {"frame_max": 10},
    ],
)
def test_frame_streams_refuses_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        amqp_st.frame_streams(**kwargs)


# ---------------------------------------------------------------------------------------
# Mutations

SAMPLE = (
    ProtocolHeader().encode()
    + MethodFrame(0, spec.Connection.StartOk({}, "PLAIN", b"\0u\0p", "en_US")).encode()
    + HeartbeatFrame().encode()
    + encode_message(1, spec.Basic.Publish(routing_key="rk"), None, b"x" * 5000, 4096)
)
SAMPLE_SPANS = _frame_spans(SAMPLE)


def test_frame_spans_walk_a_whole_stream() -> None:
    assert SAMPLE_SPANS[0] == (0, 8)
    assert [b - a for a, b in SAMPLE_SPANS[1:]] == [
        len(f.encode()) for f in FrameDecoder(0).feed(SAMPLE)[1:]
    ]
    assert SAMPLE_SPANS[-1][1] == len(SAMPLE)
    assert _frame_spans(SAMPLE[:-1])[-1] == SAMPLE_SPANS[-2]  # a cut frame is not one


def frame_fields(data: bytes) -> list[tuple[int, int, int, int]]:
    """(type, channel, size, end octet) of each frame after the protocol header."""
    return [
        (
            data[a],
            int.from_bytes(data[a + 1 : a + 3], "big"),
            int.from_bytes(data[a + 3 : a + 7], "big"),
            data[b - 1],
        )
        for a, b in SAMPLE_SPANS[1:]
    ]


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("kind", amqp_st.MUTATIONS)
def test_each_mutation_does_what_it_says(kind: str, seed: int) -> None:
    rnd = random.Random(seed)
    donor = HeartbeatFrame().encode()
    out = _mutate_once(SAMPLE, kind, rnd.randrange, lambda: donor)
    size = len(SAMPLE)
    if kind == "bit-flip":
        diff = [a ^ b for a, b in zip(SAMPLE, out, strict=True) if a != b]
        assert len(diff) == 1 and bin(diff[0]).count("1") == 1
    elif kind == "byte":
        assert len(out) == size and sum(a != b for a, b in zip(SAMPLE, out, strict=True)) <= 1
    elif kind in ("truncate", "delete"):
        assert len(out) < size and (kind == "delete" or SAMPLE.startswith(out))
    elif kind == "insert":
        assert size < len(out) <= size + 16
    elif kind in ("length", "payload-int", "frame-end", "channel", "type"):
        assert len(out) == size
        changed = [
            (a, b) for a, b in zip(frame_fields(SAMPLE), frame_fields(out), strict=True) if a != b
        ]
        assert len(changed) <= 1
        if changed and kind != "payload-int":
            field = {"type": 0, "channel": 1, "length": 2, "frame-end": 3}[kind]
            ((old, new),) = changed
            assert [i for i in range(4) if old[i] != new[i]] == [field]
        if kind == "frame-end":
            assert changed
        if kind == "payload-int":
            assert not changed or out[:8] == SAMPLE[:8]
    elif kind == "splice":
        assert donor in out and size - 5008 + 8 <= len(out) <= size + 8
    elif kind == "duplicate":
        assert len(out) - size in {b - a for a, b in SAMPLE_SPANS}
    elif kind == "drop":
        assert size - len(out) in {b - a for a, b in SAMPLE_SPANS}
    elif kind == "swap":
        assert sorted(out) == sorted(SAMPLE)


@pytest.mark.parametrize("kind", amqp_st.MUTATIONS)
def test_mutations_of_things_that_are_not_streams(kind: str) -> None:
    rnd = random.Random(1)
    for data in (b"", b"\x01", b"AMQP", b"garbage that is not a frame"):
        out = _mutate_once(data, kind, rnd.randrange, lambda: b"")
        assert isinstance(out, bytes)


def test_mutate_is_reproducible_and_uses_donors() -> None:
    donor = HeartbeatFrame().encode()
    runs = [amqp_st.mutate(SAMPLE, random.Random(5), count=4, donors=[donor]) for _ in range(2)]
    assert runs[0] == runs[1] != SAMPLE
    spliced = amqp_st.mutate(SAMPLE, random.Random(0), kinds=["splice"], donors=[b"\x08" * 9])
    assert b"\x08" * 9 in spliced


@given(amqp_st.mutations(st.just(SAMPLE), kinds=["frame-end"], max_mutations=1))
def test_mutations_strategy(raw: bytes) -> None:
    assert len(raw) == len(SAMPLE) and raw != SAMPLE
    with pytest.raises(amqpcodec.DecodeError, match="frame-end"):
        FrameDecoder(0).feed(raw)


@given(
    amqp_st.mutations(
        st.just(SAMPLE), donors=st.just(b"\x08\x00\x07\x00\x00\x00\x00\xce"), kinds=["splice"]
    )
)
def test_mutations_splice_from_donors(raw: bytes) -> None:
    assert b"\x08\x00\x07\x00\x00\x00\x00\xce" in raw


@given(amqp_st.mutated_streams("server", max_mutations=1, max_items=2))
def test_mutated_streams(raw: bytes) -> None:
    assert isinstance(raw, bytes)


@pytest.mark.parametrize(
    "call",
    [
        lambda: amqp_st.mutations(st.just(b""), max_mutations=0),
        lambda: amqp_st.mutations(st.just(b""), kinds=["explode"]),
        lambda: amqp_st.mutate(b"", random.Random(), kinds=[]),
    ],
)
def test_mutations_refuse_bad_arguments(call: Any) -> None:
    with pytest.raises(InvalidArgument):
        call()


# ---------------------------------------------------------------------------------------
# st.from_type, through the entry point


FROM_TYPE = """
import sys
from hypothesis import strategies as st
import amqpcodec
from amqpcodec import spec

for method_class in spec.METHODS.values():
    value = st.from_type(method_class).example()
    assert type(value) is method_class, (method_class, value)
    raw = value.encode()
    assert method_class.decode(raw, 4, len(raw)) == value
assert type(st.from_type(spec.BasicProperties).example()) is spec.BasicProperties
assert isinstance(st.from_type(amqpcodec.Method).example(), amqpcodec.Method)
assert isinstance(st.from_type(amqpcodec.Properties).example(), amqpcodec.Properties)
assert isinstance(st.from_type(amqpcodec.FieldTable).example(), amqpcodec.FieldTable)
for frame_class in (amqpcodec.MethodFrame, amqpcodec.HeaderFrame, amqpcodec.BodyFrame):
    assert type(st.from_type(frame_class).example()) is frame_class
print("from_type ok")
"""


@pytest.mark.parametrize(
    "first",
    ["import hypothesis", "import amqpcodec.strategies", "from amqpcodec import strategies"],
)
def test_from_type_works_in_a_fresh_interpreter(first: str) -> None:
    """The entry point registers the strategies when Hypothesis is imported: nothing to
    set up, whichever of Hypothesis and amqpcodec.strategies is imported first (the
    latter imports Hypothesis, which runs the plugin while the module is half done)."""
    result = subprocess.run(
        [sys.executable, "-c", f"{first}\n{FROM_TYPE}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "from_type ok" in result.stdout


def test_importing_amqpcodec_does_not_import_hypothesis() -> None:
    code = textwrap.dedent(
        """
        import sys, amqpcodec, amqpcodec._hypothesis_plugin
        assert "hypothesis" not in sys.modules, "hypothesis was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_plugin_is_declared() -> None:
    from importlib.metadata import entry_points

    (entry,) = [e for e in entry_points(group="hypothesis") if e.name == "amqpcodec"]
    assert entry.value == "amqpcodec._hypothesis_plugin:_register"


@given(
    st.from_type(spec.Basic.Publish),
    st.from_type(spec.BasicProperties),
    st.from_type(amqpcodec.Properties),
    st.from_type(amqpcodec.Method),
    st.from_type(amqpcodec.FieldArray),
    st.from_type(amqpcodec.HeaderFrame),
)
def test_from_type_in_process(
    publish: Any, properties: Any, any_properties: Any, method: Any, array: Any, frame: Any
) -> None:
    assert type(publish) is spec.Basic.Publish
    assert type(properties) is type(any_properties) is spec.BasicProperties
    assert isinstance(method, amqpcodec.Method)
    assert isinstance(array, amqpcodec.FieldArray)
    assert decode_frame(frame.encode()) == (frame, len(frame.encode()))


def test_strategies_without_hypothesis_name_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "try:\n"
        "    import amqpcodec.strategies\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'amqpcodec[hypothesis]'" in out
