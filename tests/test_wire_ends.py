"""The wire's loose ends (issue 12), each against a real ``cadenza serve``: request ids on every error, REQ
sockets, frames over 4 MiB, DescribeGraph, effective controls, PAUSE vs STOP, int16 audio, stale audio, restarts.

The decisions these tests hold are written in /work/notes/wire-facts.md and proto/PROTOCOL.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.sdk import AsyncClient, AudioStream, Client, GraphInfo, RequestTimeout
from server_harness import (
    ACTION_GAME,
    SAMPLE_RATE,
    ServeProcess,
    free_ports,
    number,
    pb_field,
    raw_envelope,
    set_parameters,
    transport,
    wait_until,
)


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


def _reply(sock: zmq.Socket[Any], timeout: float = 10.0) -> list[bytes]:
    assert sock.poll(int(timeout * 1000)), "no reply"
    return sock.recv_multipart()


# ----------------------------------------------------------------------------- request ids


def test_every_error_carries_the_request_id(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    """Each error case with a known id: the reply's request_id is that id (TOO_LARGE, RATE_LIMITED and the
    multi-frame error included); a REQ socket and a DEALER sending an empty delimiter are answered in kind."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "g.yaml").write_text("cadenza_graph: 1\n")
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    with ServeProcess(["--rate-limit", "40", "--allow-dir", str(allowed)], tmp_path / "run") as server:
        c = server.control(ctx)
        cases: list[tuple[str, bytes]] = [
            ("NOT_READY", wire.encode_request(pb.DescribeGraph(), 101)),
            ("BAD_MESSAGE", raw_envelope(102, 99)),  # a body field this version does not know
            ("UNSUPPORTED_VERSION", raw_envelope(103, 18, version=7)),
            ("GRAPH_INVALID", wire.encode_request(pb.LoadGraph(text="cadenza_graph: 1\nname: [\n"), 104)),
            ("PERMISSION_DENIED", wire.encode_request(pb.LoadGraph(path=str(outside / "g.yaml")), 105)),
            ("TOO_LARGE", raw_envelope(106, 11, pb_field(1, b"x" * (2 * wire.MAX_MESSAGE_BYTES)))),
            ("BAD_VALUE", raw_envelope(107, 17, pb_field(1, 99))),  # Transport action 99
        ]
        for want, data in cases:
            c.send_raw(data)
            reply = c.recv(10)
            assert reply is not None and isinstance(reply.body, pb.Error), (want, reply)
            assert pb.Error.Code.Name(reply.body.code) == want, (want, reply.body)
            assert reply.request_id == wire.peek_request_id(data) != 0, (want, reply.request_id)
        c.ok(pb.LoadGraph(text=ACTION_GAME.read_text(), base_dir=str(ACTION_GAME.parent)))
        for want, body, rid in (("UNKNOWN_NAME", set_parameters({"nope": 1.0}), 108),
                                ("BAD_VALUE", set_parameters({"danger": 5.0}), 109)):
            c.send(body, rid)
            reply = c.recv(10)
            assert reply is not None and isinstance(reply.body, pb.Error)
            assert (pb.Error.Code.Name(reply.body.code), reply.request_id) == (want, rid), reply.body
        # several frames: BAD_MESSAGE with the id of the last frame
        c.sock.send_multipart([b"junk", wire.encode_request(pb.GetStatus(), 110)])
        reply = c.recv(10)
        assert reply is not None and isinstance(reply.body, pb.Error) and reply.body.code == pb.Error.BAD_MESSAGE
        assert reply.request_id == 110 and "one frame" in reply.body.message
        # a REQ socket: [b"", envelope] on the wire, its reply comes back with the delimiter
        req = ctx.socket(zmq.REQ)
        req.connect(server.ep.local("control"))
        req.send(wire.encode_request(pb.GetStatus(), 111))
        frames = _reply(req)
        assert len(frames) == 1 and wire.decode_reply(frames[0]).request_id == 111
        # a DEALER that sends the delimiter itself gets it back
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(server.ep.local("control"))
        dealer.send_multipart([b"", wire.encode_request(pb.GetStatus(), 112)])
        frames = _reply(dealer)
        assert frames[0] == b"" and wire.decode_reply(frames[1]).request_id == 112
        # RATE_LIMITED (40 per second): a burst, every refusal names its request
        burst = server.control(ctx, unlimited=True)
        ids = [burst.send(pb.GetStatus(), 1000 + i) for i in range(200)]
        limited = []
        for _ in ids:
            r = burst.recv(10)
            assert r is not None
            if isinstance(r.body, pb.Error):
                assert r.body.code == pb.Error.RATE_LIMITED, r.body
                limited.append(r.request_id)
        assert limited and set(limited) <= set(ids) and len(set(limited)) == len(limited)
        for s in (req, dealer):
            s.close(0)


def test_a_frame_over_the_socket_limit_is_a_counted_disconnect(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    """Past ZMQ_MAXMSGSIZE (4 MiB) nothing is answered: the connection ends, Status.control_disconnects counts it,
    and the same DEALER (reconnected by ZeroMQ) is answered again."""
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        watcher = server.control(ctx)
        before = watcher.status().control_disconnects
        huge = server.control(ctx)
        assert huge.request(pb.GetStatus()).kind == wire.ReplyKind.STATUS
        huge.send_raw(raw_envelope(7, 11, pb_field(1, b"x" * (5 << 20))))
        assert huge.recv(1.5) is None  # cut off: no reply
        after = watcher.wait_status(lambda s: s.control_disconnects > before, 5, "the disconnect counted")
        assert after.control_disconnects == before + 1
        assert huge.request(pb.GetStatus(), timeout=10).kind == wire.ReplyKind.STATUS  # reconnected, answered


# ----------------------------------------------------------------------------- DescribeGraph, controls


def test_describe_graph_lists_what_the_graph_offers(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        c = server.control(ctx)
        c.ok(set_parameters({"danger": 0.8}, bypass=True))
        c.ok(pb.SetControls(controls=pb.Controls(bpm=150.0)))
        c.wait_status(lambda s: s.parameters["danger"].number > 0.79, 5, "danger set (at the next control tick)")
        reply = c.request(pb.DescribeGraph())
        assert reply.kind == wire.ReplyKind.GRAPH_DESCRIPTION
        d = reply.body
        assert isinstance(d, pb.GraphDescription)
        params = {p.name: p for p in d.parameters}
        assert d.parameters[-1].name == "intensity" and params["intensity"].builtin
        assert params["danger"].kind == pb.ParameterInfo.CONTINUOUS and not params["danger"].builtin
        assert (params["danger"].min, params["danger"].max) == (0.0, 1.0)
        assert number(params["danger"].value) == pytest.approx(0.8, abs=0.01)
        assert params["mode"].kind == pb.ParameterInfo.LABELED and "combat" in params["mode"].labels
        assert [s.name for s in d.states] == ["explore", "tension", "combat"] and d.state == "explore"
        assert d.driven_by == "mode"
        triggers = {t.name: t for t in d.triggers}
        assert triggers["boss_defeated"].stinger == "victory" and triggers["boss_defeated"].set_state == "explore"
        assert {p.name for p in d.prompts} >= {"wander", "battle"} and list(d.stingers) == ["victory"]
        assert d.controls.bpm == 150.0 and d.controls.HasField("density")  # the override over the graph's
        st = c.status()
        assert st.controls.bpm == 150.0 and not st.controls.HasField("density")  # overrides only
        assert st.effective_controls.bpm == 150.0 and st.effective_controls.HasField("density")
        # overrides survive a LoadGraph, and the Ok says so
        ok = c.ok(pb.LoadGraph(text=ACTION_GAME.read_text(), base_dir=str(ACTION_GAME.parent)))
        assert any("control overrides kept" in w and "bpm" in w for w in ok.warnings), ok.warnings
        with Client(server.ep.local("control"), server.ep.local("events"), heartbeat=0) as client:
            info = client.describe()
        assert isinstance(info, GraphInfo) and info.parameters["mode"].kind == "labeled"
        assert info.parameters["intensity"].builtin and info.state == "explore" and info.controls["bpm"] == 150.0

        async def describe() -> GraphInfo:
            async with AsyncClient(server.ep.local("control"), server.ep.local("events"), heartbeat=0) as aclient:
                return await aclient.describe()

        assert asyncio.run(describe()).triggers["enemy_down"].bump == pytest.approx(0.25)


# ----------------------------------------------------------------------------- transport


def test_pause_holds_and_stop_rewinds(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    with ServeProcess(["--graph", str(ACTION_GAME)], tmp_path) as server:
        c = server.control(ctx)
        c.ok(pb.SetParameters(values=[pb.ParameterUpdate(name="danger", number=0.8),
                                      pb.ParameterUpdate(name="mode", label="combat")], bypass=True))
        c.ok(pb.SetState(name="combat"))
        c.wait_status(lambda s: s.state == "combat", 10, "combat")
        audio = server.audio(ctx)
        assert audio.recv_audio(5) is not None
        c.ok(transport(pb.Transport.PAUSE))
        paused = c.wait_status(lambda s: not s.playing, 5)
        time.sleep(0.3)
        audio.drain()
        assert audio.recv_audio(0.3) is None  # no chunks while paused
        held = c.status()
        assert held.state == "combat" and number(held.parameters["danger"]) == pytest.approx(0.8, abs=0.01)
        assert held.stream_time > paused.stream_time  # the stream clock runs on
        c.ok(transport(pb.Transport.PLAY))
        assert audio.recv_audio(5) is not None
        resumed = c.status()
        assert resumed.playing and resumed.state == "combat"
        assert number(resumed.parameters["danger"]) == pytest.approx(0.8, abs=0.01)
        c.ok(transport(pb.Transport.STOP))
        stopped = c.status()  # rewound at once (the music fades out meanwhile)
        assert stopped.state == "explore"
        assert not stopped.playing and number(stopped.parameters["danger"]) == pytest.approx(0.0, abs=1e-6)
        assert stopped.parameters["mode"].label == "explore"
        c.ok(transport(pb.Transport.PLAY))
        again = c.wait_status(lambda s: s.playing, 5)
        assert again.state == "explore"


# ----------------------------------------------------------------------------- audio


def test_int16_audio_carries_the_same_chunks_in_half_the_bytes(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    (port,) = free_ports(1)
    endpoint = f"tcp://127.0.0.1:{port}"
    with ServeProcess(["--graph", str(ACTION_GAME), "--audio-int16", endpoint], tmp_path) as server:
        info = server.control(ctx).request(pb.Hello()).body
        assert isinstance(info, pb.Status)
        assert info.server.endpoints["audio_int16"] == endpoint
        assert set(info.server.endpoints) == {"control", "events", "audio", "audio_int16"}
        f32 = server.audio(ctx)
        i16 = ctx.socket(zmq.SUB)
        i16.setsockopt(zmq.SUBSCRIBE, b"")
        i16.connect(endpoint)
        time.sleep(0.3)
        def next_f32() -> wire.DecodedAudio:
            chunk = f32.recv_audio(5)
            assert chunk is not None, "no float32 audio"
            return chunk

        a = next_f32()
        b = wire.decode_audio(_reply(i16)[0])
        while b.sequence < a.sequence:
            b = wire.decode_audio(_reply(i16)[0])
        while a.sequence < b.sequence:
            a = next_f32()
        assert (a.sequence, a.stream_time) == (b.sequence, b.stream_time)
        np.testing.assert_allclose(a.pcm, b.pcm, atol=1.5 / 32767)
        with AudioStream(endpoint, format="int16", timeout=5) as stream:
            chunk = stream.read(5)
        assert chunk is not None and chunk.pcm.dtype == np.float32
        i16.close(0)


@pytest.mark.slow
def test_a_reader_that_stopped_for_ten_seconds_gets_no_stale_audio(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    """The runtime's short audio queues plus the SDK's bound (STALE_AUDIO_S = 0.5 s): after 10 s without reading,
    the first chunk the reader gets is within 0.5 s of the runtime's stream time, on both audio sockets. What
    waited was the oldest audio (PUB drops the newest at its HWM), about 2.3 s of it, and int16 holds no more of
    it than float32 (its buffers are half the bytes: outside-wire.md F3 saw 2 s on int16, 1.3 s on float32, with a 50-chunk HWM)."""
    (port,) = free_ports(1)
    int16 = f"tcp://127.0.0.1:{port}"
    with ServeProcess(["--graph", str(ACTION_GAME), "--audio-int16", int16], tmp_path) as server:
        c = server.control(ctx)
        with AudioStream(server.ep.local("audio")) as f32, AudioStream(int16, format="int16") as i16:
            for _ in range(20):
                assert f32.read(5) is not None and i16.read(5) is not None
            time.sleep(10.0)
            chunks, nows, took = {}, {}, {}
            for fmt, stream in (("float32", f32), ("int16", i16)):  # each measured right after its own read
                t0 = time.monotonic()
                chunks[fmt] = stream.read(5)
                took[fmt] = time.monotonic() - t0
                nows[fmt] = c.status().stream_time
        held = {"float32": f32.stale * 0.01, "int16": i16.stale * 0.01}  # 10 ms chunks
        for fmt, chunk in chunks.items():
            assert chunk is not None, (fmt, took, held)
            behind = (nows[fmt] - chunk.stream_time) / SAMPLE_RATE
            print(f"\n{fmt}: after 10 s without reading, the first chunk played is {behind * 1000:.0f} ms behind the "
                  f"stream; {held[fmt]:.2f} s of stale audio waited and was dropped")
            assert -0.1 <= behind <= 0.5, (fmt, behind, took, held, chunk.sequence)
        assert f32.stale > 0 and i16.stale > 0  # what was queued was old and was dropped, not played
        assert held["float32"] <= 3.5 and held["int16"] <= 3.5, held  # PROTOCOL.md: about 2.8 s
        assert held["int16"] <= held["float32"] * 1.25 + 0.1, held


# ----------------------------------------------------------------------------- outside tester's findings


def test_refusals_and_warnings_say_what_was_not_honoured(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    """The outside tester's wire findings (notes/outside-wire.md F5, F6, F7, F9, F10, F12): a stinger in its
    cooldown is named in Ok.warnings; duplicate MIDI notes are BAD_VALUE; a non-integer for a discrete parameter
    is rounded with a warning; a ramp over MAX_RAMP_S is BAD_VALUE; error fields are full paths; Status.requests
    counts executed requests under their kind and every refusal under refused / rate_limited."""
    with ServeProcess(["--graph", str(ACTION_GAME), "--rate-limit", "1000"], tmp_path) as server:
        c = server.control(ctx)
        # F5: the second boss_defeated within the victory stinger's 8 s cooldown: Ok, with a warning
        first = c.ok(pb.Trigger(name="boss_defeated"))
        assert not [w for w in first.warnings if "stinger_refused" in w], first
        second = c.ok(pb.Trigger(name="boss_defeated"))
        refused = [w for w in second.warnings if w.startswith("stinger_refused:")]
        assert refused and "'victory'" in refused[0] and " s more" in refused[0], second
        # the cooldown (8 s) runs from the first one's start, quantized to the next bar
        assert 0.0 < float(refused[0].split(" for ")[1].split(" s ")[0]) <= 8.0 + 6.0
        # F6: each MIDI note at most once; the field is the full path to the repeated note
        dup = pb.Envelope(protocol_version=1, request_id=c.next_id(),
                          set_controls=pb.SetControls(controls=pb.Controls(notes=pb.NoteSet(midi=[60, 64, 60]))))
        reply = c.request_raw(dup.SerializeToString())  # (the SDK's encoder refuses it before sending)
        assert reply.request_id == dup.request_id and isinstance(reply.body, pb.Error), reply
        err = reply.body
        assert (pb.Error.Code.Name(err.code), err.field) == ("BAD_VALUE", "set_controls.controls.notes.midi[2]"), err
        assert "60" in err.message
        err = c.error(pb.SetControls(controls=pb.Controls(notes=pb.NoteSet(midi=[60, 200]))))
        assert (pb.Error.Code.Name(err.code), err.field) == ("BAD_VALUE", "set_controls.controls.notes.midi[1]"), err
        # F7: a discrete parameter rounds a non-integer, and says so
        ok = c.ok(set_parameters({"health": 50.5, "danger": 0.25}))
        assert [w for w in ok.warnings if w.startswith("rounded:")] == [
            "rounded: health is discrete (whole numbers); 50.5 became 51"], ok
        assert not c.ok(set_parameters({"health": 40})).warnings
        ok = c.ok(set_parameters({"danger": 1.7, "intensity": -0.5}, clamp=True))  # F12: clamped, in Ok.warnings too
        assert list(ok.warnings) == ["clamped: danger 1.7 is outside [0, 1]; it became 1",
                                     "clamped: intensity -0.5 is outside [0, 1]; it became 0"], ok
        # a discrete value clamped to its (whole) bound is not also "rounded" (outside test round 2, left over)
        ok = c.ok(set_parameters({"health": 250.5}, clamp=True))
        assert list(ok.warnings) == ["clamped: health 250.5 is outside [0, 100]; it became 100"], ok
        # repeats of one unknown name are not counted as more names
        msg = pb.Envelope(protocol_version=1, request_id=c.next_id(), set_parameters=pb.SetParameters(values=[
            pb.ParameterUpdate(name="nope", number=0.5), pb.ParameterUpdate(name="nope", number=0.6),
            pb.ParameterUpdate(name="nope2", number=0.5)]))
        err = c.request_raw(msg.SerializeToString()).body
        assert isinstance(err, pb.Error) and err.code == pb.Error.UNKNOWN_NAME, err
        assert "'nope' (and 1 more unknown names)" in err.message and err.field == "set_parameters.values[0].name", err
        # F12: a ramp longer than MAX_RAMP_S is refused
        err = c.error(set_parameters({"danger": 0.5}, ramp_seconds=1e12))
        assert (pb.Error.Code.Name(err.code), err.field) == ("BAD_VALUE", "set_parameters.ramp_seconds"), err
        assert "3600" in err.message
        c.ok(set_parameters({"danger": 0.5}, ramp_seconds=3600))
        # outside test s6, finding 6: the refused ramp is shown as sent (3600.0001 was "3600 is over 3600"), and
        # bypass with a ramp names the conflict, not the value
        err = c.error(set_parameters({"danger": 0.5}, ramp_seconds=3600.0001))
        assert "3600.0001 is over the limit of 3600 s" in err.message, err
        err = c.error(set_parameters({"danger": 0.3}, ramp_seconds=2, bypass=True))
        assert (pb.Error.Code.Name(err.code), err.field) == ("BAD_VALUE", "set_parameters.bypass"), err
        c.ok(set_parameters({}, ramp_seconds=2, bypass=True))  # no value, no conflict: Ok, as before (review s6)
        # F10: the field path names the number (or label) for range errors as for NaN
        err = c.error(set_parameters({"danger": 0.1, "health": 150}))
        assert err.field == "set_parameters.values[1].number", err
        err = c.error(set_parameters({"mode": "underwater"}))
        assert err.field == "set_parameters.values[0].label", err
        # F9: Status.requests: executed requests under their kind, refusals under "refused"
        err = c.error(pb.Trigger(name="nope"))
        c.send_raw(b"\xff\xff")
        assert c.recv(10) is not None
        st = c.status()
        assert dict(st.requests) == {"trigger": 2, "set_parameters": 6, "get_status": 1, "refused": 10}, st.requests
        # F8: mix events at 10 per second of stream time (every 4800 samples), not 9.2
        mix = server.events(ctx, ["mix"])
        times = []
        while len(times) < 12:
            e = mix.recv_event(5)
            assert e is not None, "no mix event"
            times.append(e.stream_time)
        assert {b - a for a, b in zip(times[1:], times[2:])} == {SAMPLE_RATE // 10}, times


# ----------------------------------------------------------------------------- restarts


def test_a_restarted_runtime_gets_the_state_and_no_stale_request(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    """kill -9, a request while the runtime is gone (it times out), restart on the same ports: the client
    re-syncs (Lazy Pirate: new DEALER, Hello, session_id changed → graph, parameters, controls) and the new
    runtime received nothing stale (no Trigger, no parameters the old one never accepted)."""
    server = ServeProcess(["--allow-dir", str(ACTION_GAME.parent)], tmp_path)
    server.start()
    try:
        with Client(server.ep.local("control"), server.ep.local("events"), timeout=1.0, heartbeat=0.3) as client:
            client.load_graph(ACTION_GAME)
            client.set(danger=0.5)
            client.set_controls(bpm=140)
            first = client.server.session_id if client.server else ""
            server.kill()
            with pytest.raises(RequestTimeout):
                client.trigger("enemy_down")  # never reaches any runtime
            with pytest.raises(RequestTimeout):
                client.set(danger=0.9)  # not accepted: not re-sent
            time.sleep(1.0)  # heartbeats time out meanwhile, each on a fresh DEALER
            server.start()
            wait_until(lambda: client.server is not None and client.server.session_id != first, 10,
                       "the client to see the new session")
            wait_until(lambda: client.status().parameters.get("danger") == pytest.approx(0.5, abs=0.01), 5,
                       "the parameter re-sent")
            st = client.status()
        assert st.graph_name == "action-game" and st.controls["bpm"] == 140
        received = st.requests
        print(f"\nthe new runtime received: {received}")
        assert "trigger" not in received and received.get("load_graph") == 1
        assert received.get("set_parameters") == 1 and received.get("set_controls") == 1
        assert set(received) <= {"hello", "load_graph", "set_parameters", "set_controls", "get_status"}
    finally:
        server.kill()


# ----------------------------------------------------------------------------- no I/O


def test_peek_request_id_reads_field_2_from_any_envelope_bytes() -> None:
    """The id without decoding: after a length-delimited body, in a frame over the limit, not in garbage."""
    assert wire.peek_request_id(wire.encode_request(pb.GetStatus(), 12345)) == 12345
    body_first = pb_field(11, b"y" * 70_000) + pb_field(1, 1) + pb_field(2, 99)  # field order is not guaranteed
    assert wire.peek_request_id(body_first) == 99
    assert wire.peek_request_id(raw_envelope(2**63, 11, b"x" * (3 << 20))) == 2**63
    for junk in (b"", b"\x00" * 64, b"\xff" * 16, b"\x12\xff\xff\xff\xff\x0f", raw_envelope(0, 18)):
        assert wire.peek_request_id(junk) == 0


def test_stale_audio_drops_late_chunks_and_starts_over_after_a_restart() -> None:
    from cadenza.sdk._base import StaleAudio

    stale = StaleAudio(0.5)
    rate = SAMPLE_RATE
    assert all(stale.fresh(i, (i - 1) * 480, rate, 100.0 + (i - 1) * 0.01) for i in range(1, 11))
    # a reader back after 10 s: what was queued is 10 s late, dropped; what is new plays
    assert not stale.fresh(11, 10 * 480, rate, 110.1)
    assert stale.stale == 1
    assert stale.fresh(1000, 999 * 480, rate, 100.0 + 9.99 + 0.02)
    # a restarted runtime counts from 1 again: a new baseline, nothing dropped
    assert stale.fresh(1, 0, rate, 500.0) and stale.fresh(2, 480, rate, 500.01)


def test_the_int16_endpoint_sits_beside_the_audio_one() -> None:
    from cadenza.runtime.server import int16_endpoint

    assert int16_endpoint("tcp://127.0.0.1:5557") == "tcp://127.0.0.1:5558"
    assert int16_endpoint("tcp://[::1]:9000") == "tcp://[::1]:9001"
    assert int16_endpoint("tcp://127.0.0.1:*") == "tcp://127.0.0.1:*"
    assert int16_endpoint("ipc:///run/cadenza/audio") == "ipc:///run/cadenza/audio.int16"


def test_effective_controls_leave_out_what_no_field_holds() -> None:
    """A graph may compute top_k 1e12 or seed 1e300 (the backend clamps them): the status still answers,
    showing what fits (found by the corpus: the 1 Hz status event failed in the generation loop)."""
    from cadenza.runtime.server import _effective_controls

    class Playing:
        graph_controls = {"top_k": 5e11, "bpm": 120.0, "seed": 1e300, "notes": [60, 64]}
        overrides = {"density": 0.5}

    shown = _effective_controls(Playing())
    assert shown.bpm == 120.0 and shown.density == 0.5 and list(shown.notes.midi) == [60, 64]
    assert not shown.HasField("top_k") and not shown.HasField("seed")


def test_unknown_parameter_on_direct_prompts_names_the_built_in_intensity(tmp_path: Path,
                                                                         ctx: zmq.Context[Any]) -> None:
    """A runtime playing --prompt has no graph parameters, but intensity works: the error says so
    (outside-ctl.md: it said "parameters: (none)")."""
    with ServeProcess(["--prompt", "calm ambient pads"], tmp_path) as server:
        c = server.control(ctx)
        err = c.error(pb.SetParameters(values=[pb.ParameterUpdate(name="danger", number=0.5)]))
        assert err.code == pb.Error.UNKNOWN_NAME and "only the built-in intensity" in err.message, err
        c.ok(pb.SetParameters(values=[pb.ParameterUpdate(name="intensity", number=0.5)]))
