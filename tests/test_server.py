"""``cadenza serve`` as a user meets it: a real process, real ZeroMQ sockets on loopback, real files.

Requests go over a raw DEALER, events and audio come from raw SUBs, and
:mod:`cadenza.proto.wire` does every encode and decode (``server_harness.py``).
What the tests prove:

- every request kind gets exactly one reply, with the documented code and
  field path for each kind of bad input (unknown names, out-of-range values,
  NaN and infinities sent as raw bytes, invalid graphs with file:line
  locations, a control the backend cannot honour: Ok with a warning and a
  ``warning`` event);
- events carry per-topic sequences without gaps and increasing stream times;
  the beats published are the beats rendered, to the sample: at 120 bpm each
  beat is a whole multiple of 24,000 samples from the first, and the onsets
  in the WAV the server wrote sit on them; audio chunks are contiguous and
  hold the very samples the WAV holds;
- SIGTERM and SIGINT end the process with exit code 0 within 5 s and leave a
  valid WAV that fades to silence;
- security: loopback by default, a public endpoint without keys is refused
  with exit code 2 and one line naming the endpoint and the fix, ``--insecure``
  allows it, CurveZMQ keys admit only clients that know the server's public
  key, and an oversized frame costs its sender the connection, nobody else.
"""

from __future__ import annotations

import math
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import zmq

import cadenza
from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from server_harness import (
    ACTION_GAME,
    EXIT_USAGE,
    REPO,
    SAMPLE_RATE,
    SENTINEL,
    Control,
    Endpoints,
    ServeProcess,
    child_env,
    free_ports,
    label,
    non_loopback_address,
    number,
    set_parameters,
    transport,
    with_double_patched,
)

BROKEN_GRAPH = REPO / "tests" / "graphs" / "broken" / "many_errors.yaml"
BPM = 120.0
SAMPLES_PER_BEAT = 24_000  # 60 / 120 * 48000
SESSION_SECONDS = 6.0
NO_REPLY_S = 1.5  # how long "no reply" is waited for


def code(err: pb.Error) -> str:
    return pb.Error.Code.Name(err.code)


# ============================================================================ requests: the action game

@pytest.fixture(scope="module")
def game(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The action-game graph playing into the null sink."""
    with ServeProcess(["--graph", str(ACTION_GAME), "--allow-dir", str(ACTION_GAME.parent),
                       "--allow-dir", str(BROKEN_GRAPH.parent)], tmp_path_factory.mktemp("game")) as server:
        yield server


@pytest.fixture
def client(game: ServeProcess, ctx: zmq.Context[Any]) -> Iterator[Control]:
    """A fresh DEALER; the server back at the action game's defaults, playing, no controls overridden."""
    c = game.control(ctx)
    c.ok(pb.LoadGraph(path=str(ACTION_GAME)))
    c.ok(pb.SetControls(clear=list(wire.CONTROL_NAMES)))
    c.ok(transport(pb.Transport.PLAY))
    yield c
    assert c.recv(0) is None, "a reply nobody asked for"
    c.close()


def test_hello_answers_with_the_server_and_the_session(client: Control, game: ServeProcess) -> None:
    reply = client.request(pb.Hello(supported_versions=[1], client_name="test_server"))
    assert reply.kind == wire.ReplyKind.STATUS
    st = reply.body
    assert isinstance(st, pb.Status)
    info = st.server
    assert info.protocol_version == 1 and list(info.supported_versions) == [1]
    assert info.server_version == cadenza.__version__
    assert info.backend == "synth" and info.sample_rate == SAMPLE_RATE and info.channels == 2
    assert info.beat_grid and "bpm" in info.controls and "temperature" not in info.controls
    assert re.fullmatch(r"[0-9a-f]{32}", info.session_id)
    assert f"session={info.session_id}" in game.ready_line
    assert st.graph_loaded and st.graph_name == "action-game" and st.playing
    # the same session for every client of this process
    again = client.request(pb.Hello()).body
    assert isinstance(again, pb.Status) and again.server.session_id == info.session_id


def test_hello_without_a_common_version_is_refused(client: Control) -> None:
    err = client.error(pb.Hello(supported_versions=[7, 8]))
    assert code(err) == "UNSUPPORTED_VERSION" and list(err.supported_versions) == [1]
    assert err.field == "hello.supported_versions"


def test_every_request_kind_gets_exactly_one_reply(client: Control) -> None:
    """Every kind, good and bad, pipelined: one reply each, matched by request id, none extra."""
    bodies: list[wire.RequestBody] = [
        pb.Hello(supported_versions=[1]),
        pb.LoadGraph(path=str(ACTION_GAME)),
        pb.LoadGraph(text="cadenza_graph: 1\nname: [oops"),
        set_parameters({"danger": 0.4}),
        set_parameters({"nope": 1.0}),
        pb.Trigger(name="enemy_down"),
        pb.Trigger(name="nope"),
        pb.SetState(name="tension"),
        pb.SetState(name="nope"),
        pb.SetControls(controls=pb.Controls(brightness=0.5)),
        pb.SetControls(controls=pb.Controls(bpm=999)),
        pb.Transport(action=pb.Transport.RESET_CONTEXT),
        pb.GetStatus(),
        pb.DescribeGraph(),
        pb.Subscribe(topics=["beat"]),  # WebSocket connections only: refused over ZeroMQ, still one reply
    ]
    kinds = {wire.request_kind(b) for b in bodies} | {wire.RequestKind.SET_PROMPTS}
    assert kinds == set(wire.RequestKind)  # SetPrompts has a test of its own (it replaces the graph)
    sent = {client.send(b): b for b in bodies}
    got: dict[int, wire.DecodedReply] = {}
    deadline = time.monotonic() + 20
    while len(got) < len(sent):
        assert time.monotonic() < deadline, f"answered {sorted(got)} of {sorted(sent)}"
        reply = client.recv(1.0)
        if reply is not None:
            assert reply.request_id in sent and reply.request_id not in got, reply
            got[reply.request_id] = reply
    assert client.recv(NO_REPLY_S) is None, "more replies than requests"
    expected = ["status", "ok", "GRAPH_INVALID", "ok", "UNKNOWN_NAME", "ok", "UNKNOWN_NAME", "ok",
                "UNKNOWN_NAME", "ok", "BAD_VALUE", "ok", "status", "graph_description", "BAD_MESSAGE"]
    outcome = [code(r.body) if isinstance(r.body, pb.Error) else str(r.kind) for _, r in sorted(got.items())]
    assert outcome == expected


def test_load_graph_from_text_and_from_path(client: Control) -> None:
    text = ACTION_GAME.read_text().replace("name: action-game", "name: action-game-from-text")
    ok = client.ok(pb.LoadGraph(text=text))
    assert ok.HasField("stream_time")
    st = client.status()
    assert st.graph_loaded and st.graph_name == "action-game-from-text" and st.state == "explore"
    assert set(st.parameters) == {"danger", "health", "mode", "intensity"}
    client.ok(pb.LoadGraph(path=str(ACTION_GAME)))
    assert client.status().graph_name == "action-game"


@pytest.mark.parametrize("source", ["path", "text"])
def test_an_invalid_graph_is_graph_invalid_with_file_line_path_lines(client: Control, source: str) -> None:
    client.ok(set_parameters({"danger": 0.6}, bypass=True))
    client.wait_status(lambda s: number(s.parameters["danger"]) == pytest.approx(0.6), 5, "danger 0.6")
    if source == "path":
        err = client.error(pb.LoadGraph(path=str(BROKEN_GRAPH)))
        where = str(BROKEN_GRAPH)
    else:
        err = client.error(pb.LoadGraph(text=BROKEN_GRAPH.read_text()))
        where = "<load_graph>"
    assert code(err) == "GRAPH_INVALID"
    lines = err.message.splitlines()
    assert len(lines) >= 5, err.message  # every problem, not just the first
    for line in lines:
        assert re.match(rf"{re.escape(where)}:\d+ [\w\[\].]+: \S", line), line
    assert any(":8 control_rate: " in ln for ln in lines) and any("bmp" in ln and "bpm" in ln for ln in lines)
    assert err.field == lines[0].split(": ")[0]  # "file:line path" of the first problem
    st = client.status()  # the old graph plays on, untouched
    assert st.graph_name == "action-game" and number(st.parameters["danger"]) == pytest.approx(0.6)


def test_set_parameters_is_applied_and_shown_in_status(client: Control) -> None:
    ok = client.ok(set_parameters({"danger": 0.75, "health": 30, "mode": "tension"}, bypass=True))
    assert ok.stream_time > 0
    st = client.wait_status(lambda s: number(s.parameters["danger"]) == pytest.approx(0.75), 5, "danger 0.75")
    assert number(st.parameters["health"]) == 30 and label(st.parameters["mode"]) == "tension"
    # a ramp reaches its value in the given time, passing through values in between
    client.ok(set_parameters({"danger": 0.25}, ramp_seconds=0.5))
    mid = client.status()
    assert 0.25 < number(mid.parameters["danger"]) <= 0.75
    client.wait_status(lambda s: number(s.parameters["danger"]) == pytest.approx(0.25), 5, "danger 0.25")


def test_unknown_parameter_is_unknown_name_with_its_field_path(client: Control) -> None:
    err = client.error(set_parameters({"danger": 0.5, "helth": 50}))
    assert code(err) == "UNKNOWN_NAME" and err.field == "set_parameters.values[1].name"
    assert "'helth'" in err.message and "danger, health, mode" in err.message
    # all or nothing: the good value in the same batch was not applied
    assert number(client.status().parameters["danger"]) == 0.0


@pytest.mark.parametrize(("values", "index", "words"), [
    ({"danger": 1.5}, 0, ["1.5", "[0, 1]"]),
    ({"health": 50, "danger": -0.1}, 1, ["-0.1", "[0, 1]"]),
    ({"mode": "flying"}, 0, ["'flying'", "explore", "tension", "combat"]),
    ({"mode": 2.0}, 0, ["mode"]),
])
def test_out_of_range_or_wrong_kind_is_bad_value(client: Control, values: dict[str, Any], index: int,
                                                  words: list[str]) -> None:
    err = client.error(set_parameters(values))
    assert code(err) == "BAD_VALUE" and err.field.startswith(f"set_parameters.values[{index}]"), err
    for w in words:
        assert w in err.message, err.message


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_not_finite_numbers_are_refused_with_the_field_path(client: Control, bad: float) -> None:
    """The wire encoder will not send a NaN, so the bytes are patched by hand."""
    with pytest.raises(wire.WireError):
        wire.encode_request(set_parameters({"danger": bad}), 1)
    cases = [
        (set_parameters({"health": 10, "danger": SENTINEL}), "set_parameters.values[1].number"),
        (set_parameters({"danger": 0.5}, ramp_seconds=SENTINEL), "set_parameters.ramp_seconds"),
        (pb.SetControls(controls=pb.Controls(bpm=SENTINEL)), "set_controls.controls.bpm"),
        (pb.SetPrompts(prompts=[pb.WeightedPrompt(text="techno", weight=SENTINEL)]),
         "set_prompts.prompts[0].weight"),
    ]
    for body, path in cases:
        rid = client.next_id()
        reply = client.request_raw(with_double_patched(wire.encode_request(body, rid), bad))
        assert reply.request_id == rid
        assert isinstance(reply.body, pb.Error), reply
        assert code(reply.body) == "BAD_VALUE" and reply.body.field == path, reply.body
        assert "finite" in reply.body.message
    st = client.status()
    assert number(st.parameters["danger"]) == 0.0 and number(st.parameters["health"]) == 100
    assert st.graph_name == "action-game" and not st.controls.HasField("bpm")


def test_trigger_and_set_state(client: Control, game: ServeProcess, ctx: zmq.Context[Any]) -> None:
    states = game.events(ctx, ["state"])
    client.ok(pb.Trigger(name="enemy_down"))
    client.wait_status(lambda s: number(s.parameters["intensity"]) == pytest.approx(0.25), 5, "intensity bumped")
    err = client.error(pb.Trigger(name="enemy_dwn"))
    assert code(err) == "UNKNOWN_NAME" and err.field == "trigger.name"
    assert "boss_defeated, enemy_down" in err.message

    client.ok(pb.SetState(name="tension"))
    ev = states.wait_for(lambda e: e.payload.name == "tension"  # type: ignore[union-attr]
                         and e.payload.phase == pb.StateChange.STARTED, 10, "tension started")
    assert ev.payload.previous == "explore"  # type: ignore[union-attr]
    client.wait_status(lambda s: s.state == "tension", 5, "state tension")
    err = client.error(pb.SetState(name="boss"))
    assert code(err) == "UNKNOWN_NAME" and err.field == "set_state.name"
    assert "combat, explore, tension" in err.message
    assert client.status().state == "tension"
    states.close()


def test_set_prompts_replaces_the_graph_with_direct_prompts(client: Control) -> None:
    ok = client.ok(pb.SetPrompts(prompts=[pb.WeightedPrompt(text="dark techno", weight=1.0),
                                          pb.WeightedPrompt(text="calm ambient pads", weight=0.5)]))
    assert not ok.warnings
    names = {"dark techno", "calm ambient pads"}  # weights keyed by the prompts' texts
    st = client.wait_status(lambda s: set(s.weights) == names, 5, "the prompts' weights")
    assert not st.graph_loaded and st.graph_name == "direct prompts" and st.playing
    assert st.weights["dark techno"] == pytest.approx(2 / 3)  # normalized
    assert st.weights["calm ambient pads"] == pytest.approx(1 / 3)
    assert set(st.parameters) <= {"intensity"}  # only the built-in one
    err = client.error(set_parameters({"danger": 0.5}))  # no graph, no parameters
    assert code(err) == "UNKNOWN_NAME" and "only the built-in intensity" in err.message
    err = client.error(pb.SetPrompts(prompts=[pb.WeightedPrompt(text="techno", weight=0.0)]))
    assert code(err) == "BAD_VALUE" and err.field == "set_prompts.prompts"
    assert client.status().graph_name == "direct prompts"


def test_set_controls_and_an_unsupported_control(client: Control, game: ServeProcess,
                                                 ctx: zmq.Context[Any]) -> None:
    warnings = game.events(ctx, ["warning"])
    ok = client.ok(pb.SetControls(controls=pb.Controls(bpm=140, mute_drums=True)))
    assert not ok.warnings
    st = client.status()
    assert st.controls.bpm == 140 and st.controls.mute_drums

    ok = client.ok(pb.SetControls(controls=pb.Controls(temperature=0.7)))
    assert len(ok.warnings) == 1 and "temperature" in ok.warnings[0] and "synth" in ok.warnings[0]
    ev = warnings.wait_for(lambda e: "temperature" in e.payload.message, 5,  # type: ignore[union-attr]
                           "about temperature")
    assert ev.sequence >= 1

    err = client.error(pb.SetControls(controls=pb.Controls(bpm=500)))
    assert code(err) == "BAD_VALUE" and err.field == "set_controls.controls.bpm" and "500" in err.message
    err = client.error(pb.SetControls(controls=pb.Controls(top_k=0)))  # the field, the range and the value
    assert code(err) == "BAD_VALUE" and err.field == "set_controls.controls.top_k", err
    assert ">= 1 and <= 4294967295" in err.message and err.message.endswith("got 0"), err.message
    ok = client.ok(pb.SetControls(controls=pb.Controls(top_k=2**32 - 1, seed=2**64 - 1)))  # the wire's largest
    assert {w.split("'")[3] for w in ok.warnings} <= {"top_k", "seed"}  # the synth honours neither: said so
    client.ok(pb.SetControls(clear=["top_k", "seed"]))
    err = client.error(pb.SetControls(controls=pb.Controls(scale="H superlocrian")))
    assert code(err) == "BAD_VALUE" and err.field.startswith("set_controls.controls.scale")
    client.ok(pb.SetControls(clear=["bpm"]))
    st = client.status()
    assert not st.controls.HasField("bpm") and st.controls.mute_drums and st.controls.temperature == 0.7
    warnings.close()


def test_transport_play_pause_stop_reset_context(client: Control, game: ServeProcess,
                                                 ctx: zmq.Context[Any]) -> None:
    audio = game.audio(ctx)
    assert audio.recv_audio(5) is not None
    client.ok(transport(pb.Transport.PAUSE))
    paused = client.status()
    assert not paused.playing
    audio.drain()
    time.sleep(0.3)  # a stretch of paused time: no chunk may arrive in it
    audio.drain()
    assert audio.recv_audio(0.3) is None, "audio kept coming while paused"
    later = client.status()
    assert later.stream_time > paused.stream_time, "the stream clock stops only with the process"
    client.ok(transport(pb.Transport.PLAY))
    assert client.status().playing and audio.recv_audio(5) is not None
    client.ok(transport(pb.Transport.STOP))
    assert not client.status().playing
    client.ok(transport(pb.Transport.PLAY))
    client.ok(transport(pb.Transport.RESET_CONTEXT))
    chunk = audio.recv_audio(5)
    assert chunk is not None and np.isfinite(chunk.pcm).all()
    assert client.status().playing
    audio.close()


def test_get_status_reflects_parameters_state_and_sequences(client: Control) -> None:
    client.ok(set_parameters({"danger": 0.9, "health": 20, "mode": "combat"}, bypass=True))
    st = client.wait_status(lambda s: s.state == "combat", 10, "state combat")
    assert number(st.parameters["danger"]) == pytest.approx(0.9) and number(st.parameters["health"]) == 20
    assert label(st.parameters["mode"]) == "combat" and st.lookahead_ms == pytest.approx(30.0)
    # the crossfade to combat starts on a bar line and lasts two beats; then the bed plays "battle"
    st = client.wait_status(lambda s: s.weights["battle"] > 0.5, 10, "the battle prompt playing")
    assert st.xruns == 0 and st.audio_sequence > 0 and st.event_sequences["mix"] > 0
    st2 = client.status()
    assert st2.stream_time >= st.stream_time and st2.audio_sequence >= st.audio_sequence


def test_requests_before_any_graph_are_not_ready(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    with ServeProcess(["--allow-dir", str(ACTION_GAME.parent)], tmp_path) as server:
        c = server.control(ctx)
        st = c.status()
        assert not st.graph_loaded and st.graph_name == ""
        for body, what in [(set_parameters({"danger": 0.5}), "SetParameters"), (pb.Trigger(name="x"), "Trigger"),
                           (pb.SetControls(controls=pb.Controls(bpm=100)), "SetControls")]:
            err = c.error(body)
            assert code(err) == "NOT_READY" and what in err.message and "LoadGraph" in err.message
        c.ok(pb.LoadGraph(path=str(ACTION_GAME)))
        assert c.status().graph_name == "action-game"
        c.close()


# ============================================================================ events, audio, shutdown

@dataclass
class Session:
    """What a client saw of a 120 bpm session, and how the process ended."""

    wav: Path
    events: dict[str, list[wire.DecodedEvent]] = field(default_factory=lambda: defaultdict(list))
    audio: list[wire.DecodedAudio] = field(default_factory=list)
    exit_code: int = -1
    exit_seconds: float = math.inf
    stderr: str = ""


def _run_session(workdir: Path, ctx: zmq.Context[Any], sig: int, seconds: float) -> Session:
    wav = workdir / "session.wav"
    server = ServeProcess(["--prompt", "dark techno"], workdir, sink=f"wav:{wav}")
    session = Session(wav)
    with server:
        events = server.events(ctx)
        audio = server.audio(ctx)
        c = server.control(ctx)
        c.ok(pb.SetControls(controls=pb.Controls(bpm=BPM)))
        deadline = time.monotonic() + seconds
        poller = zmq.Poller()
        poller.register(events.sock, zmq.POLLIN)
        poller.register(audio.sock, zmq.POLLIN)
        while time.monotonic() < deadline:
            for sock, _ in poller.poll(100):
                if sock is events.sock:
                    ev = wire.decode_event(events.sock.recv_multipart())
                    session.events[str(ev.topic)].append(ev)
                else:
                    session.audio.append(wire.decode_audio(audio.sock.recv()))
        session.exit_code, session.exit_seconds = server.stop(sig)
        session.stderr = server.stderr_text
        for s in (events, audio, c):
            s.close()
    return session


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, ctx: zmq.Context[Any]) -> Session:
    """``serve --prompt "dark techno" --sink wav:…`` at 120 bpm for 6 s, ended with SIGTERM."""
    return _run_session(tmp_path_factory.mktemp("session"), ctx, signal.SIGTERM, SESSION_SECONDS)


def test_events_have_per_topic_sequences_and_increasing_stream_times(session: Session) -> None:
    assert {"beat", "bar", "mix", "status"} <= set(session.events)
    for topic, evs in session.events.items():
        seqs = [e.sequence for e in evs]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{topic}: a gap in {seqs}"
        times = [e.stream_time for e in evs]
        assert times == sorted(times), f"{topic}: stream times go back: {times}"
        for e in evs:
            assert e.stream_seconds == pytest.approx(e.stream_time / SAMPLE_RATE)
    beats = session.events["beat"]
    assert all(b.stream_time < a.stream_time for b, a in zip(beats, beats[1:]))
    beat_at = {b.stream_time: b.payload for b in beats}
    for bar in session.events["bar"]:  # every bar is also a beat, the downbeat, at the same sample
        assert bar.stream_time in beat_at and bar.payload.beat_in_bar == 0  # type: ignore[union-attr]
        assert beat_at[bar.stream_time].beat == bar.payload.beat  # type: ignore[union-attr]
    assert len(session.events["mix"]) >= 10 * (SESSION_SECONDS - 1)


def test_beat_events_are_the_rendered_grid_to_the_sample(session: Session) -> None:
    """At 120 bpm a beat lasts exactly 24,000 samples; the WAV's onsets sit on the published beats."""
    beats = [b for b in session.events["beat"] if b.payload.bpm == BPM]  # type: ignore[union-attr]
    assert len(beats) >= 2 * (SESSION_SECONDS - 2.5), [(b.stream_time, b.payload.bpm) for b in
                                                      session.events["beat"]]  # type: ignore[union-attr]
    first = beats[0].stream_time
    assert beats[0].payload.beat_in_bar == 0  # type: ignore[union-attr]  # tempo changes on a bar line
    for k, b in enumerate(beats):
        assert b.stream_time - first == k * SAMPLES_PER_BEAT, f"beat {k} at {b.stream_time}"
        assert b.payload.beat_in_bar == (beats[0].payload.beat_in_bar + k) % 4  # type: ignore[union-attr]

    import librosa

    pcm, sr = soundfile.read(session.wav, dtype="float32", always_2d=True)
    assert sr == SAMPLE_RATE
    hop = 128
    onset = librosa.onset.onset_strength(y=pcm.mean(axis=1), sr=sr, hop_length=hop)
    frames = np.arange(len(onset)) * hop
    offsets = []
    for b in beats:
        if b.stream_time + 0.06 * sr >= pcm.shape[0]:
            continue
        near = np.flatnonzero(np.abs(frames - b.stream_time) <= 0.06 * sr)
        peak = near[np.argmax(onset[near])]
        assert onset[peak] > 5 * np.median(onset), f"no onset at the beat at {b.stream_time}"
        offsets.append((frames[peak] - b.stream_time) / sr)
    # the onset detector lags a little; the lag is the same on every beat (within its hop)
    assert len(offsets) >= 4
    assert abs(float(np.median(offsets))) <= 0.025, offsets
    assert max(offsets) - min(offsets) <= 2.5 * hop / sr, offsets


def test_audio_chunks_are_contiguous_and_are_what_the_sink_wrote(session: Session) -> None:
    chunks = session.audio
    assert len(chunks) >= 80 * (SESSION_SECONDS - 1)
    for a, b in zip(chunks, chunks[1:]):
        assert b.sequence == a.sequence + 1, f"audio sequence {a.sequence} → {b.sequence}"
        assert b.stream_time == a.stream_time + a.pcm.shape[0], f"a gap at {a.stream_time}"
    pcm, _ = soundfile.read(session.wav, dtype="float32", always_2d=True)
    checked = 0
    for c in chunks[:-2]:  # the last blocks fade out in the sink only
        end = c.stream_time + c.pcm.shape[0]
        if end <= pcm.shape[0]:
            np.testing.assert_allclose(pcm[c.stream_time:end], np.clip(c.pcm, -1.0, 1.0), atol=2.0 ** -22)
            checked += 1
    assert checked >= len(chunks) - 5


def _assert_clean_wav(path: Path, min_seconds: float) -> None:
    info = soundfile.info(str(path))
    assert info.samplerate == SAMPLE_RATE and info.channels == 2 and info.format == "WAVEX"  # RF64, RIFF below 4 GiB
    pcm, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert pcm.shape[0] == info.frames >= min_seconds * SAMPLE_RATE
    assert np.isfinite(pcm).all() and np.abs(pcm).max() > 0.05
    assert np.abs(pcm[-1]).max() < 1e-3, "the file ends with a click, not a fade"
    assert np.abs(pcm[-48:]).max() < 0.05


def test_sigterm_exits_0_within_5_s_and_leaves_a_valid_wav(session: Session) -> None:
    assert session.exit_code == 0, session.stderr
    assert session.exit_seconds < 5.0
    assert "Traceback" not in session.stderr
    _assert_clean_wav(session.wav, SESSION_SECONDS - 1)


def test_sigint_exits_0_within_5_s_and_leaves_a_valid_wav(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    s = _run_session(tmp_path, ctx, signal.SIGINT, 2.0)
    assert s.exit_code == 0 and s.exit_seconds < 5.0, s.stderr
    assert "Traceback" not in s.stderr and "KeyboardInterrupt" not in s.stderr
    _assert_clean_wav(s.wav, 1.0)


# ============================================================================ security


def test_default_endpoints_are_loopback(tmp_path: Path) -> None:
    server = ServeProcess(["--sink", "null"], tmp_path, endpoints=False, sink="")
    server.launch()
    if server.wait_ready(60):
        try:
            for part in ("control", "events", "audio"):
                assert re.search(rf"{part}=tcp://127\.0\.0\.1:\d+", server.ready_line), server.ready_line
            outside = non_loopback_address()
            if outside is not None:  # the ports are not reachable on the machine's own network address
                for port in re.findall(r"127\.0\.0\.1:(\d+)", server.ready_line):
                    with pytest.raises(OSError), socket.create_connection((outside, int(port)), timeout=1):
                        pass
        finally:
            assert server.stop()[0] == 0
    else:  # another process holds a default port: the refusal still names the loopback endpoint
        assert server.returncode == EXIT_USAGE and "cannot bind 'tcp://127.0.0.1:555" in server.stderr_text


@pytest.mark.parametrize("option", ["--control", "--events", "--audio"])
def test_a_public_endpoint_without_keys_exits_2_naming_it_and_the_fix(tmp_path: Path, option: str) -> None:
    ep = Endpoints.fresh()
    endpoints = {"--control": ep.control, "--events": ep.events, "--audio": ep.audio}
    public = endpoints[option].replace("127.0.0.1", "0.0.0.0")
    endpoints[option] = public
    argv = [sys.executable, "-m", "cadenza", "serve", "--sink", "null"]
    for opt, value in endpoints.items():
        argv += [opt, value]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=child_env(), cwd=tmp_path)
    assert done.returncode == EXIT_USAGE, done
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, done.stderr
    line = lines[0]
    assert line.startswith("cadenza serve: error: ") and option in line and public in line
    assert "--curve-secret-key" in line and "--insecure" in line and "Traceback" not in done.stderr
    assert "ready" not in done.stdout


def test_insecure_allows_a_public_endpoint(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    port = free_ports(1)[0]
    server = ServeProcess(["--prompt", "ambient", "--insecure"], tmp_path)
    server.ep.control = f"tcp://0.0.0.0:{port}"
    with server:
        assert f"control=tcp://0.0.0.0:{port}" in server.ready_line
        targets = ["127.0.0.1"] + ([a] if (a := non_loopback_address()) else [])
        for host in targets:
            c = Control(ctx, f"tcp://{host}:{port}")
            reply = c.request(pb.Hello())
            assert reply.kind == wire.ReplyKind.STATUS
            c.close()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    done = subprocess.run([sys.executable, "-m", "cadenza", "keys", str(folder)], capture_output=True, text=True,
                          timeout=60, env=child_env())
    assert done.returncode == 0, done.stderr
    assert (folder / "server.key").exists() and (folder / "server.pub").exists()
    assert (folder / "server.key").stat().st_mode & 0o077 == 0, "the secret key is readable by others"
    return folder


def test_curve_keys_admit_only_clients_that_know_the_server_key(tmp_path: Path, ctx: zmq.Context[Any],
                                                                keys: Path) -> None:
    server_public = (keys / "server.pub").read_text().strip().encode()
    ports = free_ports(3)
    server = ServeProcess(["--prompt", "dark techno", "--curve-secret-key", str(keys / "server.key"),
                           "--curve-any-client"], tmp_path)  # encryption without an allow-list (test_trust: with)
    server.ep = Endpoints(*(f"tcp://0.0.0.0:{p}" for p in ports))
    with server:
        public, secret = zmq.curve_keypair()
        good = Control(ctx, server.ep.local("control"), curve=(server_public, public, secret))
        reply = good.request(pb.Hello(client_name="with keys"))
        assert reply.kind == wire.ReplyKind.STATUS
        beats = server.events(ctx, ["beat"], curve=(server_public, public, secret))
        assert beats.recv_event(10) is not None, "an authenticated subscriber gets events"

        plain = Control(ctx, server.ep.local("control"))
        plain.send(pb.Hello(client_name="no keys"))
        assert plain.recv(NO_REPLY_S) is None, "a client without keys got a reply"
        wrong_public, _ = zmq.curve_keypair()
        wrong = Control(ctx, server.ep.local("control"), curve=(wrong_public, public, secret))
        wrong.send(pb.Hello(client_name="wrong server key"))
        assert wrong.recv(NO_REPLY_S) is None, "a client with the wrong server key got a reply"
        eavesdropper = server.events(ctx, ["beat"])
        assert eavesdropper.recv_event(NO_REPLY_S) is None, "a subscriber without keys got events"

        assert good.request(pb.GetStatus()).kind == wire.ReplyKind.STATUS  # still serving
        for s in (good, plain, wrong):
            s.close()
        beats.close()
        eavesdropper.close()


def test_an_oversized_frame_costs_only_its_sender_the_connection(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        other = server.control(ctx)
        st0 = other.status()
        # past the wire limit but within ZMQ_MAXMSGSIZE: an answer, TOO_LARGE
        big = server.control(ctx)
        big.send_raw(b"\x00" * (2 * wire.MAX_MESSAGE_BYTES))
        reply = big.recv(10)
        assert reply is not None and isinstance(reply.body, pb.Error) and code(reply.body) == "TOO_LARGE"
        assert reply.request_id == 0
        # past ZMQ_MAXMSGSIZE (10 MB): ZeroMQ drops the connection, nothing is answered or buffered
        huge = server.control(ctx)
        assert huge.request(pb.GetStatus()).kind == wire.ReplyKind.STATUS
        huge.send_raw(b"\x00" * 10_000_000)
        assert huge.recv(NO_REPLY_S) is None, "a 10 MB frame was answered"
        # everybody else is served as before, and the music goes on
        st1 = other.status()
        assert st1.graph_name == "action-game" and st1.playing
        assert st1.stream_time - st0.stream_time >= 0.9 * NO_REPLY_S * SAMPLE_RATE
        assert other.error(set_parameters({"dangr": 1})).code == pb.Error.UNKNOWN_NAME
        # the sender's socket reconnects on its own and is served again
        huge.send(pb.GetStatus())
        assert huge.recv(10) is not None, "the dropped client was not served after reconnecting"
        assert server.alive()
        for c in (other, big, huge):
            c.close()


def test_a_clamped_discrete_value_is_reported_as_the_value_applied() -> None:
    """Review s6: a discrete parameter may have fractional bounds; clamped to 3.5 it is rounded to 3 (params.py),
    and the one warning says 3 (the rounded line that used to follow the clamp is gone)."""
    from types import SimpleNamespace

    from cadenza.runtime.server import _rounded

    params = {"lives": SimpleNamespace(min=0.5, max=3.5, type="discrete"),
              "health": SimpleNamespace(min=0, max=100, type="discrete"),
              "danger": SimpleNamespace(min=0.0, max=1.0, type="continuous")}
    assert _rounded(params, [("lives", 4.2)]) == ["clamped: lives 4.2 is outside [0.5, 3.5]; it became 3"]
    assert _rounded(params, [("health", 250.5)]) == ["clamped: health 250.5 is outside [0, 100]; it became 100"]
    assert _rounded(params, [("health", 50.5)]) == ["rounded: health is discrete (whole numbers); 50.5 became 51"]
    assert _rounded(params, [("danger", 1.7), ("intensity", -0.5)]) == [
        "clamped: danger 1.7 is outside [0, 1]; it became 1", "clamped: intensity -0.5 is outside [0, 1]; it became 0"]
    assert _rounded(params, [("lives", "three"), ("nope", 9.0)]) == []
