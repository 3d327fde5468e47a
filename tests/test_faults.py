"""Faults against a real ``cadenza serve``: bad input, bursts, dead clients, broken graphs, load.

Every test starts the runtime as a subprocess and talks to it over real
ZeroMQ sockets on loopback (see ``server_harness.py``). What they prove, as a
user would see it:

- **fuzz**: >= 100,000 bad or odd inputs (random bytes, truncated and
  bit-flipped requests, envelopes with unknown body field numbers, NaN and
  infinities, unknown names, huge strings within the size limit, multi-frame
  messages, unsupported versions) pipelined 500 at a time over one DEALER
  while the runtime plays into a real audio device: every input gets exactly
  one reply (the ones with a readable id: the right code), the process
  survives, the stream keeps pace with the wall clock and no xrun happens.
  Garbage on the events and audio PUB ports (raw TCP bytes, a wrong socket
  type, huge subscriptions) changes nothing either.
- **burst**: 10,000 requests sent without waiting are all answered (Ok, or
  RATE_LIMITED, counted).
- **dead client**: a client process killed with SIGKILL mid-stream does not
  disturb the runtime; the graph's failsafe engages ``after`` seconds after
  its last input and glides the parameters to their safe values.
- **hot reload**: a broken graph sent while playing is refused with
  GRAPH_INVALID and file:line locations; the old graph keeps playing, its
  state and parameters intact, the audio stream without a gap.
- **100 clients** connecting at once are all answered.
- **JACK, 60 s** (slow): 1,000 parameter updates per second with random
  walks and state changes into a JACK dummy server: 0 xruns.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from server_harness import (
    ACTION_GAME,
    SAMPLE_RATE,
    SENTINEL,
    Control,
    ServeProcess,
    child_env,
    label,
    number,
    raw_envelope,
    set_parameters,
    with_double_patched,
)

FUZZ_INPUTS = int(os.environ.get("CADENZA_FUZZ_INPUTS", "100000"))
FUZZ_WINDOW = 500  # requests in flight on the one DEALER
FUZZ_SEED = 20240917
STATUS_EVERY = 2_000  # a GetStatus among the fuzz inputs, to watch the stream clock
BURST = 10_000
CLIENTS = 100
JACK_SECONDS = 60.0
JACK_UPDATES_PER_S = 1_000
KNOWN_ID_BASE = 1 << 40  # ids of inputs whose reply we predict; random bytes essentially never decode to these
STATUS_ID_BASE = 1 << 50  # the GetStatus requests that watch the stream clock during the fuzz
OTHER_ID_BASE = 1 << 20  # ids of inputs that get mangled (truncated, bit-flipped): far from the known ones


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.destroy(linger=0)


def _device_sink(audio_output: str | None) -> str:
    """The ``--sink`` for the device the ``audio_output`` fixture found.

    It also takes this process out of the JACK graph: finding the device
    initialised PortAudio here, whose JACK host API keeps an active JACK client
    that JACK waits for in every cycle; a test process busy sending requests
    would then make the server's device late. The runtime is the only process
    that plays audio here.
    """
    if "sounddevice" in sys.modules:
        from cadenza.runtime.sinks.device import release_portaudio

        release_portaudio()
    return "jack" if audio_output == "jack" else "device"


# ============================================================================ fuzz


class FuzzCorpus:
    """The fuzz inputs: ``frames[i]`` is sent as one message (a list: several frames).

    ``expect`` maps the request id of an input whose answer is certain to the
    ``Error.Code`` (or reply kind) it must get; the rest must only get a reply.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.messages: list[list[bytes]] = []
        self.expect: dict[int, str] = {}
        self.kinds: Counter[str] = Counter()
        self._next_id = KNOWN_ID_BASE
        self._other_id = OTHER_ID_BASE
        makers = [
            (0.22, "random_bytes", self._random_bytes),
            (0.14, "truncated", self._truncated),
            (0.10, "bit_flipped", self._bit_flipped),
            (0.10, "unknown_body_field", self._unknown_body_field),
            (0.12, "not_finite", self._not_finite),
            (0.12, "unknown_name", self._unknown_name),
            (0.05, "out_of_range", self._out_of_range),
            (0.04, "bad_version", self._bad_version),
            (0.02, "multi_frame", self._multi_frame),
            (0.09, "valid", self._valid),
        ]
        weights = np.array([w for w, _, _ in makers])
        choice = self.rng.choice(len(makers), size=n, p=weights / weights.sum())
        huge_at = set(self.rng.choice(n, size=min(n, 40), replace=False).tolist())
        for i, k in enumerate(choice):
            if i in huge_at:
                kind, make = "huge_string", self._huge_string
            else:
                _, kind, make = makers[k]
            self.kinds[kind] += 1
            self.messages.append(make())

    # -- helpers
    def _rid(self, expect: str | None = None) -> int:
        if expect is None:  # its reply's code (or even its id) cannot be predicted
            self._other_id += 1
            return self._other_id
        self._next_id += 1
        self.expect[self._next_id] = expect
        return self._next_id

    def _name(self) -> str:
        n = int(self.rng.integers(1, 40))
        alphabet = "abcdefghijklmnopqrstuvwxyz_ÄéЖ中🎵\x00\n' \""
        return "".join(alphabet[j] for j in self.rng.integers(0, len(alphabet), n))

    def _valid_body(self) -> wire.RequestBody:
        """A request the runtime accepts as is (never one that changes the graph or the transport)."""
        r = int(self.rng.integers(0, 5))
        if r == 0:
            return set_parameters({"danger": float(self.rng.random())})
        if r == 1:
            return set_parameters({"health": float(self.rng.integers(0, 101)), "danger": float(self.rng.random())},
                                  ramp_seconds=float(self.rng.random()))
        if r == 2:
            return pb.Trigger(name="enemy_down")
        if r == 3:
            return pb.SetControls(controls=pb.Controls(brightness=float(self.rng.random())))
        return pb.GetStatus()

    # -- the kinds
    def _random_bytes(self) -> list[bytes]:
        size = int(self.rng.integers(0, 64)) if self.rng.random() < 0.9 else int(self.rng.integers(64, 8192))
        return [self.rng.bytes(size)]

    def _truncated(self) -> list[bytes]:
        data = wire.encode_request(self._valid_body(), self._rid())
        return [data[: int(self.rng.integers(0, len(data)))]]

    def _bit_flipped(self) -> list[bytes]:
        data = bytearray(wire.encode_request(self._valid_body(), self._rid()))
        for _ in range(int(self.rng.integers(1, 4))):
            i = int(self.rng.integers(0, len(data)))
            data[i] ^= 1 << int(self.rng.integers(0, 8))
        return [bytes(data)]

    def _unknown_body_field(self) -> list[bytes]:
        ranges = [(3, 9), (19, 29), (42, 18999), (20000, (1 << 29) - 1)]
        lo, hi = ranges[int(self.rng.integers(0, len(ranges)))]
        field = int(self.rng.integers(lo, hi + 1))
        body = self.rng.bytes(int(self.rng.integers(0, 32)))
        return [raw_envelope(self._rid("BAD_MESSAGE"), field, body)]

    def _not_finite(self) -> list[bytes]:
        bad = [math.nan, math.inf, -math.inf][int(self.rng.integers(0, 3))]
        r = int(self.rng.integers(0, 5))
        body: wire.RequestBody
        if r == 0:
            body = set_parameters({"danger": SENTINEL})
        elif r == 1:
            body = set_parameters({"danger": 0.5}, ramp_seconds=SENTINEL)
        elif r == 2:
            body = set_parameters({"danger": 0.5}, client_time=SENTINEL)
        elif r == 3:
            name = ["bpm", "density", "brightness", "temperature", "guidance"][int(self.rng.integers(0, 5))]
            body = pb.SetControls(controls=pb.Controls(**{name: SENTINEL}))
        else:
            body = pb.SetPrompts(prompts=[pb.WeightedPrompt(text="dark techno", weight=SENTINEL)])
        return [with_double_patched(wire.encode_request(body, self._rid("BAD_VALUE")), bad)]

    def _unknown_name(self) -> list[bytes]:
        r = int(self.rng.integers(0, 3))
        name = "zz" + self._name()  # never a real name
        body: wire.RequestBody
        if r == 0:
            body = set_parameters({"danger": 0.5, name: 1.0})
        elif r == 1:
            body = pb.Trigger(name=name)
        else:
            body = pb.SetState(name=name)
        return [wire.encode_request(body, self._rid("UNKNOWN_NAME"))]

    def _out_of_range(self) -> list[bytes]:
        r = int(self.rng.integers(0, 4))
        body: wire.RequestBody
        if r == 0:
            body = set_parameters({"danger": 1.0 + float(self.rng.random()) * 1e6})
        elif r == 1:
            body = set_parameters({"mode": "flying"})
        elif r == 2:
            body = pb.SetControls(controls=pb.Controls(bpm=1e9))
        else:
            body = pb.SetControls(controls=pb.Controls(scale="H superlocrian"))
        return [wire.encode_request(body, self._rid("BAD_VALUE"))]

    def _bad_version(self) -> list[bytes]:
        version = [0, 2, 7, 2**32 - 1][int(self.rng.integers(0, 4))]
        return [raw_envelope(self._rid("UNSUPPORTED_VERSION"), 18, b"", version=version)]  # 18: get_status

    def _multi_frame(self) -> list[bytes]:
        data = wire.encode_request(pb.GetStatus(), self._rid())
        return [data, self.rng.bytes(int(self.rng.integers(0, 16)))]

    def _valid(self) -> list[bytes]:
        body = self._valid_body()
        expect = "status" if isinstance(body, pb.GetStatus) else "ok"
        return [wire.encode_request(body, self._rid(expect))]

    def _huge_string(self) -> list[bytes]:
        """A name of 100 KB – 1 MB (the encoded request stays under the 1 MiB limit); NULs escape 4× in errors."""
        size = int(self.rng.integers(100_000, wire.MAX_MESSAGE_BYTES - 1_000))
        fill = "\x00" if self.rng.random() < 0.5 else "x"
        r = int(self.rng.integers(0, 3))
        body: wire.RequestBody
        if r == 0:
            body = pb.Trigger(name=fill * size)
        elif r == 1:
            body = pb.SetState(name=fill * size)
        else:
            body = pb.SetParameters(values=[pb.ParameterUpdate(name=fill * size, number=0.5)])
        return [wire.encode_request(body, self._rid("UNKNOWN_NAME"))]


def _reply_code(reply: wire.DecodedReply) -> str:
    if reply.kind == wire.ReplyKind.ERROR:
        assert isinstance(reply.body, pb.Error)
        return pb.Error.Code.Name(reply.body.code)
    return str(reply.kind)


def _garbage_on_every_port(server: ServeProcess, ctx: zmq.Context[Any], rng: np.random.Generator) -> None:
    """Raw TCP bytes to all three ports, a DEALER on the PUB ports, huge subscriptions."""
    for which in ("control", "events", "audio"):
        host, port = server.ep.local(which).removeprefix("tcp://").rsplit(":", 1)
        for _ in range(20):
            with socket.create_connection((host, int(port)), timeout=2) as s:
                try:
                    s.sendall(rng.bytes(int(rng.integers(1, 4096))))
                except OSError:
                    pass  # the server may hang up first: that is the point
        if which != "control":
            wrong = ctx.socket(zmq.DEALER)  # a PUB only talks to SUBs: ZeroMQ refuses the handshake
            wrong.setsockopt(zmq.LINGER, 0)
            wrong.connect(server.ep.local(which))
            for _ in range(10):
                try:
                    wrong.send(rng.bytes(64), zmq.NOBLOCK)
                except zmq.Again:
                    break
            wrong.close(0)
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            for _ in range(20):
                sub.setsockopt(zmq.SUBSCRIBE, rng.bytes(int(rng.integers(0, 100_000))))
            sub.connect(server.ep.local(which))
            sub.close(0)


@pytest.mark.parametrize("sink", ["null", pytest.param("device", marks=pytest.mark.audio_device)])
def test_fuzz_every_input_gets_one_reply_and_the_music_keeps_playing(
        tmp_path: Path, ctx: zmq.Context[Any], sink: str, request: pytest.FixtureRequest) -> None:
    """With the null sink the stream is paced by the server's clock: a starved generation thread shows as
    drift; with the device sink (JACK dummy in CI) the device's clock paces it and a late block is an xrun."""
    corpus = FuzzCorpus(FUZZ_INPUTS, FUZZ_SEED)
    assert len(corpus.messages) >= FUZZ_INPUTS
    spec = "null" if sink == "null" else _device_sink(request.getfixturevalue("audio_output"))
    server = ServeProcess(["--graph", str(ACTION_GAME)], tmp_path, sink=spec)
    with server:
        xruns = server.events(ctx, ["xrun"])
        client = server.control(ctx, unlimited=True)
        assert client.status().graph_name == "action-game"
        _garbage_on_every_port(server, ctx, corpus.rng)

        status_ids: dict[int, int] = {}  # request id → position in the run
        clock: list[tuple[float, int]] = []  # (wall seconds at the reply, stream_time)
        replies: Counter[int] = Counter()
        codes: Counter[str] = Counter()
        wrong: list[str] = []
        sent = received = 0
        total = len(corpus.messages)
        status_rid = STATUS_ID_BASE
        t0 = time.monotonic()
        deadline = t0 + 300.0
        poller = zmq.Poller()
        poller.register(client.sock, zmq.POLLIN)
        while received < total:
            assert time.monotonic() < deadline, f"fuzz stalled: {received} replies for {sent} inputs"
            while sent < total and sent - received < FUZZ_WINDOW:
                msg = corpus.messages[sent]
                if len(msg) == 1:
                    client.sock.send(msg[0])
                else:
                    client.sock.send_multipart(msg)
                sent += 1
                if sent % STATUS_EVERY == 0:
                    status_ids[client.send(pb.GetStatus(), status_rid)] = sent
                    status_rid += 1
            if not poller.poll(5000):
                assert server.alive(), f"the server died: {server.stderr_text[-3000:]}"
                continue
            while client.sock.poll(0, zmq.POLLIN):
                reply = wire.decode_reply(client.sock.recv())
                code = _reply_code(reply)
                if reply.request_id in status_ids:
                    assert isinstance(reply.body, pb.Status)
                    clock.append((time.monotonic() - t0, reply.body.stream_time))
                    status_ids[reply.request_id] = -1
                    continue
                received += 1
                replies[reply.request_id] += 1
                codes[code] += 1
                want = corpus.expect.get(reply.request_id)
                if want is not None and code != want and len(wrong) < 20:
                    wrong.append(f"request {reply.request_id}: expected {want}, got {code}: {reply.body}")
        elapsed = time.monotonic() - t0

        # nothing more arrives: exactly one reply each
        extra = client.recv(0.5)
        assert extra is None or extra.request_id in status_ids, f"an extra reply: {extra}"
        assert received == total, f"{received} replies for {total} inputs"
        assert not wrong, "\n".join(wrong)
        doubles = {rid: n for rid, n in replies.items() if n > 1 and rid >= KNOWN_ID_BASE}
        assert not doubles, f"requests answered more than once: {list(doubles.items())[:10]}"
        missing = [rid for rid in corpus.expect if replies[rid] != 1]
        assert not missing, f"{len(missing)} requests with a known id got no reply, e.g. {missing[:10]}"
        assert codes["BAD_MESSAGE"] > 0 and codes["ok"] > 0

        # the music never stopped: the stream clock kept pace with the wall clock, no xrun
        assert server.alive(), server.stderr_text[-3000:]
        assert len(clock) >= total // STATUS_EVERY - 1
        walls = np.array([w for w, _ in clock])
        streams = np.array([s for _, s in clock]) / SAMPLE_RATE
        slope = float(np.polyfit(walls, streams, 1)[0])
        assert 0.95 <= slope <= 1.05, f"stream time advanced at {slope:.3f}× the wall clock"
        lag = (walls - walls[0]) - (streams - streams[0])
        assert float(np.max(np.abs(lag))) < 0.12, f"the stream drifted {np.max(np.abs(lag)):.3f} s from real time"
        final = client.status()
        assert final.xruns == 0, f"{final.xruns} xruns during the fuzz"
        assert xruns.recv_event(0.2) is None, "an xrun event was published"
        assert final.graph_name == "action-game" and final.playing
        print(f"\nfuzz ({spec} sink): {total} inputs ({dict(corpus.kinds)}) answered in {elapsed:.1f} s "
              f"({total / elapsed:,.0f}/s); replies by code {dict(codes)}; stream/wall slope {slope:.4f}, "
              f"max drift {np.max(np.abs(lag)) * 1000:.1f} ms; xruns 0")


# ============================================================================ burst


def test_burst_of_10000_requests_is_answered(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        client = server.control(ctx, unlimited=True)
        st0 = client.status()
        rng = np.random.default_rng(7)
        ids = set()
        t0 = time.monotonic()
        for i in range(BURST):
            ids.add(client.send(set_parameters({"danger": float(rng.random())})))
        codes: Counter[str] = Counter()
        answered: Counter[int] = Counter()
        deadline = t0 + 30.0
        while sum(answered.values()) < BURST:
            left = deadline - time.monotonic()
            assert left > 0, f"{sum(answered.values())} of {BURST} answered in 30 s"
            reply = client.recv(left)
            if reply is None:
                continue
            answered[reply.request_id] += 1
            codes[_reply_code(reply)] += 1
        elapsed = time.monotonic() - t0
        assert client.recv(0.3) is None, "more replies than requests"
        limited = codes.pop("RATE_LIMITED", 0)
        assert set(answered) <= ids | {0} and all(n == 1 for rid, n in answered.items() if rid)
        assert codes == Counter({"ok": BURST - limited}), codes
        st1 = client.status()
        assert st1.stream_time > st0.stream_time and st1.playing
        print(f"\nburst: {BURST} requests answered in {elapsed:.2f} s; ok {BURST - limited}, rate limited {limited}")


# ============================================================================ dead client

CHILD = textwrap.dedent("""
    import random, sys, time
    import zmq
    from cadenza.proto import cadenza_v1_pb2 as pb
    from cadenza.proto import wire

    endpoint, graph = sys.argv[1], sys.argv[2]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.connect(endpoint)
    rid = 0

    def ask(body):
        global rid
        rid += 1
        sock.send(wire.encode_request(body, rid))
        if not sock.poll(10_000):
            raise SystemExit("no reply")
        reply = wire.decode_reply(sock.recv())
        assert reply.request_id == rid and reply.kind != "error", reply
        return reply.body

    ask(pb.LoadGraph(path=graph))
    print("loaded", flush=True)
    danger, t = 0.9, time.monotonic()
    while True:
        danger = min(1.0, max(0.5, danger + random.uniform(-0.05, 0.05)))
        ok = ask(pb.SetParameters(values=[
            pb.ParameterUpdate(name="danger", number=danger),
            pb.ParameterUpdate(name="health", number=20),
            pb.ParameterUpdate(name="mode", label="combat")]))
        print(ok.stream_time, flush=True)
        t += 0.01
        time.sleep(max(0.0, t - time.monotonic()))
""")


def test_killed_client_leaves_the_runtime_playing_and_the_failsafe_engages(
        tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    after, glide = 2.0, 1.0
    graph = tmp_path / "action_game_failsafe.yaml"
    text = ACTION_GAME.read_text()
    assert "failsafe: {after: 60, glide: 5}" in text
    graph.write_text(text.replace("failsafe: {after: 60, glide: 5}", f"failsafe: {{after: {after:g}, glide: {glide:g}}}"))
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        warnings = server.events(ctx, ["warning"])
        observer = server.control(ctx)
        out_path = tmp_path / "child.out"
        with open(out_path, "w") as out:
            child = subprocess.Popen([sys.executable, "-c", CHILD, server.ep.local("control"), str(graph)],
                                     stdout=out, stderr=subprocess.STDOUT, env=child_env())
        try:
            # let it stream for a while (>= 150 updates at 100 Hz), then kill it mid-stream
            deadline = time.monotonic() + 60
            while len(out_path.read_text().splitlines()) < 150:
                assert child.poll() is None, f"the client exited: {out_path.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "the client never got going"
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        lines = out_path.read_text().splitlines()
        assert lines[0] == "loaded"
        last_input = int(lines[-1])  # stream time of the last update the client saw answered

        before = observer.wait_status(lambda s: s.graph_name == "action-game" and s.state == "combat"
                                      and label(s.parameters["mode"]) == "combat", 10,
                                      "the client's graph and state")
        assert number(before.parameters["health"]) == 20
        t_before = time.monotonic()

        ev = warnings.wait_for(lambda e: "failsafe" in e.payload.message, after + 5.0,  # type: ignore[union-attr]
                               "mentioning the failsafe")
        engaged = (ev.stream_time - last_input) / SAMPLE_RATE
        assert after - 0.05 <= engaged <= after + 0.1, (
            f"the failsafe engaged {engaged:.3f} s after the last input, expected {after:g} s")

        # parameters glide to their safe values (the defaults): danger ramps to 0 over `glide` seconds,
        # the discrete and labeled ones switch at once
        seen: list[float] = []

        def settled(s: pb.Status) -> bool:
            seen.append(number(s.parameters["danger"]))
            return (number(s.parameters["danger"]) == 0.0 and number(s.parameters["health"]) == 100
                    and label(s.parameters["mode"]) == "explore")

        after_st = observer.wait_status(settled, glide + 3.0, "the safe values")
        assert all(b <= a + 1e-9 for a, b in zip(seen, seen[1:])), f"danger did not glide down: {seen}"
        assert any(0.0 < v < 0.5 for v in seen), f"danger jumped instead of gliding: {seen}"
        # the runtime kept playing throughout
        advanced = (after_st.stream_time - before.stream_time) / SAMPLE_RATE
        wall = time.monotonic() - t_before
        assert abs(advanced - wall) < 0.3, f"stream advanced {advanced:.2f} s in {wall:.2f} s"
        assert observer.wait_status(lambda s: s.state == "explore", 10, "state explore").playing
        print(f"\nkill -9: {len(lines) - 1} updates before the kill; failsafe engaged {engaged:.3f} s after the "
              f"last input; danger glided through {len(seen)} polled values to 0")


# ============================================================================ hot reload


def test_broken_graph_hot_reload_keeps_the_old_graph_playing(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    good = ACTION_GAME.read_text()
    lines = good.splitlines()
    i = next(k for k, ln in enumerate(lines) if "shape: s-curve" in ln)
    lines[i] = lines[i].replace("shape: s-curve", "shape: s-curvy")  # an unknown curve shape on that line
    broken = tmp_path / "broken.yaml"
    broken.write_text("\n".join(lines) + "\n")
    syntax = good.replace("battle: ", "battle: [unclosed ", 1)  # a YAML syntax error
    assert syntax != good

    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        client = server.control(ctx)
        audio = server.audio(ctx)
        client.ok(set_parameters({"mode": "combat", "danger": 0.7, "health": 30}, bypass=True))
        before = client.wait_status(lambda s: s.state == "combat", 10, "state combat")
        assert audio.recv_audio(5) is not None  # subscribed and flowing
        audio.drain()
        first = audio.recv_audio(5)
        assert first is not None

        err = client.error(pb.LoadGraph(path=str(broken)))
        assert pb.Error.Code.Name(err.code) == "GRAPH_INVALID"
        assert f"{broken}:{i + 1} mix[0].weight.curve.shape" in err.message and "s-curvy" in err.message, err.message
        assert err.field == f"{broken}:{i + 1} mix[0].weight.curve.shape", err.field
        err2 = client.error(pb.LoadGraph(text=syntax))
        assert pb.Error.Code.Name(err2.code) == "GRAPH_INVALID"
        assert re.match(r"<load_graph>:\d+: syntax error", err2.message), err2.message
        err3 = client.error(pb.LoadGraph(path=str(tmp_path / "missing.yaml")))
        assert pb.Error.Code.Name(err3.code) == "GRAPH_INVALID" and "missing.yaml" in err3.message

        after = client.status()
        assert after.graph_name == "action-game" and after.state == "combat"
        assert number(after.parameters["danger"]) == pytest.approx(0.7)
        assert number(after.parameters["health"]) == 30 and label(after.parameters["mode"]) == "combat"
        assert after.stream_time > before.stream_time and after.playing

        # the audio stream went on without a gap through the failed reloads
        prev = first
        end = after.stream_time + SAMPLE_RATE // 2
        chunks = 0
        while prev.stream_time < end:
            nxt = audio.recv_audio(5)
            assert nxt is not None, "the audio stream stopped"
            assert nxt.sequence == prev.sequence + 1, f"audio chunk {prev.sequence} → {nxt.sequence}"
            assert nxt.stream_time == prev.stream_time + prev.pcm.shape[0]
            assert np.isfinite(nxt.pcm).all()
            prev, chunks = nxt, chunks + 1
        assert chunks >= 50
        # and a good graph still loads afterwards
        client.ok(pb.LoadGraph(path=str(ACTION_GAME)))


# ============================================================================ many clients


def test_100_clients_at_once_are_all_answered(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        clients = [Control(ctx, server.ep.local("control"), first_id=1000 * k + 1) for k in range(CLIENTS)]
        poller = zmq.Poller()
        pending: dict[zmq.Socket[Any], set[int]] = {}
        for k, c in enumerate(clients):
            poller.register(c.sock, zmq.POLLIN)
            pending[c.sock] = {c.send(set_parameters({"danger": k / CLIENTS, "health": k})),
                               c.send(pb.GetStatus())}
        answered = 0
        deadline = time.monotonic() + 30
        while any(pending.values()):
            assert time.monotonic() < deadline, f"unanswered: {sum(len(p) for p in pending.values())}"
            for sock, _ in poller.poll(1000):
                while sock.poll(0, zmq.POLLIN):
                    reply = wire.decode_reply(sock.recv())
                    assert reply.request_id in pending[sock], f"reply {reply.request_id} to another client"
                    assert reply.kind in (wire.ReplyKind.OK, wire.ReplyKind.STATUS), reply
                    pending[sock].discard(reply.request_id)
                    answered += 1
        assert answered == 2 * CLIENTS
        for c in clients:
            assert c.recv(0) is None
            c.close()


# ============================================================================ JACK, 60 s


@pytest.mark.slow
@pytest.mark.audio_device
def test_jack_60s_of_1000_parameter_updates_per_second_without_xruns(
        tmp_path: Path, ctx: zmq.Context[Any], audio_output: str | None) -> None:
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path, sink=_device_sink(audio_output)) as server:
        xruns = server.events(ctx, ["xrun", "state"])
        client = server.control(ctx, unlimited=True)
        st0 = client.status()
        rng = np.random.default_rng(11)
        danger, health = 0.3, 80.0
        modes = ["explore", "tension", "combat"]
        per_tick = JACK_UPDATES_PER_S // 100  # single-value requests every 10 ms
        sent = answered = values = 0
        codes: Counter[str] = Counter()
        events: list[wire.DecodedEvent] = []
        t0 = time.monotonic()
        next_tick, next_state, tick = t0, t0 + 3.0, 0
        while (now := time.monotonic()) < t0 + JACK_SECONDS:
            if now >= next_state:  # a state change every 3 s
                client.send(set_parameters({"mode": modes[int(rng.integers(0, 3))]}))
                sent += 1
                values += 1
                next_state += 3.0
            for j in range(per_tick):
                if j % 2 == 0:
                    danger = float(np.clip(danger + rng.normal(0, 0.03), 0.0, 1.0))
                    client.send(set_parameters({"danger": danger}))
                else:
                    health = float(np.clip(round(health + rng.normal(0, 2.0)), 0, 100))
                    client.send(set_parameters({"health": health}))
                sent += 1
                values += 1
            tick += 1
            while (reply := client.recv(0)) is not None:
                answered += 1
                codes[_reply_code(reply)] += 1
            while (ev := xruns.recv_event(0)) is not None:
                events.append(ev)
            next_tick += 0.01
            time.sleep(max(0.0, next_tick - time.monotonic()))
        elapsed = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while answered < sent and time.monotonic() < deadline:
            if (reply := client.recv(0.5)) is not None:
                answered += 1
                codes[_reply_code(reply)] += 1
        events += xruns.events_for(0.3)
        st1 = client.status()
        rate = values / elapsed
        xrun_events = [e for e in events if e.topic == "xrun"]
        states = [e for e in events if e.topic == "state" and e.payload.phase == pb.StateChange.STARTED]  # type: ignore[union-attr]
        print(f"\nJACK {elapsed:.1f} s: {values} parameter values in {sent} requests ({rate:,.0f}/s), "
              f"replies {dict(codes)}, {len(states)} state changes heard, xrun events {len(xrun_events)}, "
              f"status xruns {st1.xruns}, lookahead {st1.lookahead_ms:.1f} ms")
        assert answered == sent and codes == Counter({"ok": sent}), codes
        assert rate >= 0.95 * JACK_UPDATES_PER_S
        assert len(states) >= 5, "the state changes were not heard"
        assert not xrun_events, [e.payload for e in xrun_events]
        assert st1.xruns == 0
        played = (st1.stream_time - st0.stream_time) / SAMPLE_RATE
        wall = time.monotonic() - t0
        assert wall - 0.5 <= played <= wall + 0.5, f"{played:.2f} s of audio in {wall:.2f} s"
