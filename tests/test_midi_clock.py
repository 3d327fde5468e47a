"""MIDI clock (runtime/midi/clock.py): clock out measured frame-accurately over JACK MIDI, clock in driving the synth.

Both tests run a real ``cadenza serve`` (null sink), the clock as its own
process and a JACK-Client port of the test's own on a PRIVATE JACK dummy
server with a 128-frame period (JACK delivers MIDI once a period; the frame
offset inside the period is what makes a 1 ms figure measurable). The receiver
reads each event's frame (``last_frame_time`` + offset), so the intervals are
measured on JACK's own clock whatever the load on the test's process.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.jack import JackServer, JackStartError
from cadenza.runtime.midi.clock import (
    CLOCK,
    CONTINUE,
    PPQN,
    SONG_POSITION,
    START,
    STOP,
    BeatAt,
    ClockFollower,
    ClockPlan,
    TempoEstimator,
    spp_message,
)
from tests.server_harness import ServeProcess, child_env, require, wait_until

RATE = 48_000
PERIOD = 128


@pytest.fixture
def jack128(tmp_path: Path) -> Iterator[JackServer]:
    if not JackServer.available():
        require("jackd is not installed (`apt install jackd2`)")
    try:
        import jack  # noqa: F401
    except ImportError:
        require("JACK-Client is not installed (pip install JACK-Client)")
    server = JackServer(tmp_path, name=f"cadenza-clock-{os.getpid()}-{id(tmp_path) % 100000}", realtime=True,
                        rt_priority=70, fallback=True, period=PERIOD)
    try:
        server.start()
    except JackStartError as exc:
        require(str(exc))
    yield server
    server.stop()


class Probe:
    """A JACK MIDI port of the test's own, in a process of its own (this one's threads cannot make it miss a
    period): ``recv`` records (frame, bytes) of what arrives; ``send`` sends Start and a 24 ppqn clock at ``bpm``
    with frame-exact offsets."""

    def __init__(self, env: dict[str, str], tmp_path: Path, name: str, mode: str, bpm: float = 0.0) -> None:
        self.path = tmp_path / f"{name}.events"
        self.proc = subprocess.Popen([sys.executable, "-c", PROBE, mode, name, str(self.path), str(bpm)],
                                     env={**child_env(), **env}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self.path.exists(), 10, f"the JACK probe {name}")

    @property
    def got(self) -> list[tuple[int, bytes]]:
        """(frame, bytes) of each event received."""
        return [(f, d) for f, _, d in self.timed]

    @property
    def timed(self) -> list[tuple[int, int, bytes]]:
        """(frame, JACK time in µs, bytes) of each event received."""
        out = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append((int(parts[0]), int(parts[1]), bytes.fromhex(parts[2])))
        return out

    def close(self) -> None:
        _stop(self.proc)


#: The probe process: ``recv`` writes "frame usecs hex" lines of what arrives (usecs: the frame on JACK's clock,
#: ``jack_frames_to_time``); ``send`` sends Start and a clock.
PROBE = """
import ctypes, ctypes.util, os, signal, sys, threading
import jack
mode, name, path, bpm = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
client = jack.Client(name, no_start_server=True)
lib = ctypes.CDLL(ctypes.util.find_library("jack"))
lib.jack_frames_to_time.restype = ctypes.c_uint64
lib.jack_frames_to_time.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
ptr = int(jack._ffi.cast("uintptr_t", client._ptr))
inp = client.midi_inports.register("in")
out = client.midi_outports.register("out")
got = []
state = {}
def process(frames):
    f0 = client.last_frame_time
    for off, data in inp.incoming_midi_events():
        got.append((f0 + off, lib.jack_frames_to_time(ptr, (f0 + off) & 0xFFFFFFFF), bytes(data)))
    out.clear_buffer()
    if not mode.startswith("send"):
        return
    if "next" not in state:
        if mode == "send-on-go" and not state.get("go"):
            return  # Start once the test says the follower is connected (it touches PATH.go)
        state["next"] = float(f0 + frames)
        out.write_midi_event(frames - 1, bytes((0xFA,)))
    step = 48000 * 60.0 / (24 * bpm)
    while state["next"] < f0 + frames:
        out.write_midi_event(max(0, int(state["next"]) - f0), bytes((0xF8,)))
        state["next"] += step
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: done.set())
client.set_process_callback(process)
client.activate()
go = path + ".go"
with open(path, "w") as f:
    while not done.wait(0.05):
        if mode == "send-on-go" and not state.get("go") and os.path.exists(go):
            state["go"] = True
        while got:
            frame, usecs, data = got.pop(0)
            f.write(f"{frame} {usecs} {data.hex()}\\n")
        f.flush()
client.deactivate()
client.close()
"""


def _clock_process(serve: ServeProcess, env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "cadenza.runtime.midi.clock", "--control", serve.ep.control,
                                 "--events", serve.ep.events, *args], env={**child_env(), **env},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ----------------------------------------------------------------------------- sans-IO units


def _beat(n: int, at: float, bpm: float = 120.0) -> BeatAt:
    return BeatAt(beat=n, bar=n // 4, beat_in_bar=n % 4, bpm=bpm, at=at)


def test_plan_ticks_spp_stop_continue() -> None:
    plan = ClockPlan(start_lead=0.001)
    plan.observe(_beat(3, 10.0))
    assert plan.due(100.0) == []  # not a downbeat: the first start waits for a bar line
    plan.observe(_beat(4, 10.5))
    out = plan.due(10.5 + 0.25)
    # the first start is a Start on that downbeat: the song (song position 0) begins there (outside 16 #9)
    assert out[0][0] == pytest.approx(10.499) and out[0][1] == bytes((START,)) and out[1][1] == bytes((CLOCK,))
    ticks = [t for t, m in out if m[0] == CLOCK]
    assert len(ticks) == 12 and ticks[1] - ticks[0] == pytest.approx(0.5 / 24) and len(out) == 13
    out = plan.due(11.0 + 0.01)  # beat 5's event is late: inside the bar its first tick goes out on time anyway
    assert len(out) == 13 and out[-1][0] == pytest.approx(11.0)
    plan.observe(_beat(5, 11.0))
    assert len(plan.due(11.2)) == 9
    out = plan.due(12.0)  # beat 6 is overdue: its first quarter beat of ticks, then Stop
    assert [m for _, m in out][-1] == bytes((STOP,)) and len(out) == 14 + 6 + 1
    plan.observe(_beat(6, 13.0))  # PLAY: the next beat brings SPP + Continue
    out = plan.due(13.01)
    assert out[0][1] == spp_message(8) and out[1][1] == bytes((CONTINUE,))  # 2 beats after the song's start
    plan.observe(_beat(7, 13.5))
    plan.due(14.0 - 0.001)
    assert plan.due(14.1) == []  # beat 8 is a bar line: its ticks wait for its event
    plan.observe(_beat(0, 20.0))  # a new runtime: Stop, then Start on its downbeat 0
    assert plan.due(20.5)[0][1] == bytes((START,))


def test_tempo_estimator_ignores_jitter() -> None:
    import random

    rnd = random.Random(1)
    est = TempoEstimator()
    step = 60.0 / (24 * 97.0)
    for i in range(200):
        t = i * step
        t = (t // 0.020) * 0.020 + (0.05 if i == 150 else 0.0)  # delivered once per 20 ms period, one outlier
        est.add(t + rnd.uniform(0, 0.001))
    bpm = est.bpm()
    assert bpm is not None and abs(bpm - 97.0) < 0.1, bpm


def test_follower_sets_bpm_once_a_beat_and_warns_once() -> None:
    sent: list[float] = []

    def set_bpm(bpm: float) -> list[str]:
        sent.append(bpm)
        return ["backend 'x' cannot honour control 'bpm'"]

    follower = ClockFollower(set_bpm)
    step = 60.0 / (24 * 100.0)
    follower.handle(bytes((START,)), 0.0)
    for i in range(24 * 6):
        follower.handle(bytes((CLOCK,)), i * step)
    assert sent and all(abs(b - 100.0) < 0.01 for b in sent) and len(sent) <= 5
    assert len(follower.stats.warnings) == 1 and "tempo" in follower.report()
    follower.handle(spp_message(32), 0.0)
    assert follower.spp == 32 and follower.handle(bytes((SONG_POSITION, 1, 1)), 0.0) is None and follower.spp == 129


# ----------------------------------------------------------------------------- over JACK MIDI


@pytest.mark.slow
def test_clock_out_over_jack_is_steady_and_song_position_matches_the_bars(jack128: JackServer,
                                                                          tmp_path: Path) -> None:
    from cadenza.sdk import Client

    probe = Probe(jack128.env, tmp_path, "probe", "recv")
    beats: dict[int, Any] = {}
    with ServeProcess(["--prompt", "techno"], tmp_path) as serve:
        client = Client(serve.ep.control, serve.ep.events, name="clock-test")
        client.on("beat", lambda ev: beats.__setitem__(ev.beat, ev))
        clock = _clock_process(serve, jack128.env, "--clock-out", "probe:in", log=tmp_path / "clock.log")
        try:
            def first(kind: int, after: int = 0, got: list[tuple[int, bytes]] | None = None) -> int | None:
                for i, (_, d) in enumerate((probe.got if got is None else got)[after:], after):
                    if d[0] == kind:
                        return i
                return None

            def started() -> bool:
                return first(CONTINUE) is not None or first(START) is not None

            wait_until(started, 20, "the clock's first Continue/Start", poll=0.2)
            got = probe.got
            start = first(CONTINUE, 0, got)
            start = first(START, 0, got) if start is None else start
            assert start is not None

            def window(since: int) -> tuple[bool, str, int]:
                """30 s of ticks from event ``since`` on: (within the bounds, figures, where it ended)."""
                xruns = jack128.xruns()
                time.sleep(30.0)
                timed = probe.timed
                xruns = jack128.xruns() - xruns
                # each tick at its frame (last_frame_time + offset: frame-accurate); beside it, the same ticks on
                # JACK's clock (jack_frames_to_time), which follows real time where the server lost frames
                ticks = [f / RATE for f, _, d in timed[since:] if d == bytes((CLOCK,))]
                on_clock = [us / 1e6 for _, us, d in timed[since:] if d == bytes((CLOCK,))]
                bpms = {round(ev.bpm, 3) for ev in list(beats.values())[-60:]}
                assert len(bpms) == 1, f"the tempo changed during the measurement: {bpms}"
                nominal = 60.0 / (PPQN * next(iter(bpms)))
                intervals = [b - a for a, b in zip(ticks, ticks[1:])]
                by_clock = [b - a for a, b in zip(on_clock, on_clock[1:])]
                assert len(intervals) > 24 * 50, f"only {len(intervals)} ticks in 30 s; log: {_log(tmp_path)}"
                mean = statistics.fmean(intervals)
                sd = statistics.pstdev(intervals)
                dev = sorted(abs(x - nominal) for x in intervals)
                p99 = dev[int(0.99 * (len(dev) - 1))]
                figures = (f"{len(intervals)} intervals at {next(iter(bpms))} bpm: mean error "
                           f"{100 * (mean / nominal - 1):+.4f} %, jitter sd {sd * 1000:.3f} ms, p99 |interval - "
                           f"nominal| {p99 * 1000:.3f} ms (JACK {'real-time' if jack128.realtime else 'NOT real-time'}"
                           f", period {PERIOD}, {xruns} server xruns in the window; on JACK's clock: mean error "
                           f"{100 * (statistics.fmean(by_clock) / nominal - 1):+.4f} %, sd "
                           f"{statistics.pstdev(by_clock) * 1000:.3f} ms)")
                print(figures)
                # in frames, or on JACK's clock where the dummy server lost frames to its own xruns
                ok = (abs(mean / nominal - 1) <= 0.001 and sd <= 0.001) or (
                    abs(statistics.fmean(by_clock) / nominal - 1) <= 0.001 and statistics.pstdev(by_clock) <= 0.001)
                return ok, figures, len(timed)

            ok, figures, end = window(start)
            if not ok and "0 server xruns" not in figures:
                # the JACK server itself missed periods (a loaded machine): that window measured the box; once more
                ok, second, end = window(end)
                figures = f"{figures}; then {second}"
            assert ok, figures

            # the song starts (MIDI Start, song position 0) on the runtime's downbeat the bridge names in its log;
            # a song position is 4 × the beats since then
            import re

            wait_until(lambda: "Start on the runtime's beat" in _log(tmp_path), 3, "the song's start in the log")
            origin = int(re.findall(r"Start on the runtime's beat (\d+)", _log(tmp_path))[-1])
            assert got[first(START, 0, got) or 0][1] == bytes((START,)) and beats[origin].beat_in_bar == 0
            spp1 = _spp_before(got, start)
            assert spp1 % 16 == 0 and origin + spp1 // 4 in beats, (spp1, origin, sorted(beats)[:8])
            assert beats[origin + spp1 // 4].beat_in_bar == 0

            got = probe.got
            restart = max((i for i, (_, d) in enumerate(got) if d[0] in (START, CONTINUE)), default=start)
            spp1 = _spp_before(got, restart)  # (a loaded machine may have stopped and restarted the clock since)
            start = restart
            client.pause()  # Transport PAUSE → MIDI Stop
            wait_until(lambda: first(STOP, start) is not None, 5, "MIDI Stop after Transport PAUSE", poll=0.2)
            time.sleep(0.5)
            client.play()  # PLAY → SPP + Continue on the first beat heard again
            stop_i = first(STOP, start)
            assert stop_i is not None
            wait_until(lambda: first(CONTINUE, stop_i) is not None, 5, "MIDI Continue after Transport PLAY", poll=0.2)
            got = probe.got
            again = first(CONTINUE, stop_i)
            assert again is not None
            spp2 = _spp_before(got, again)
            sent_ticks = sum(1 for _, d in got[start:stop_i] if d == bytes((CLOCK,)))
            # a slave counting the ticks is where the next song position puts it, give or take the quarter beat of
            # ticks sent before the Stop (a beat inside the bar is ticked on time even if its event is late) and
            # a tick per period the JACK server itself missed
            over = sent_ticks - 6 * (spp2 - spp1)
            assert -jack128.xruns() <= over <= PPQN // 4, (spp1, sent_ticks, spp2, jack128.xruns())
            wait_until(lambda: origin + spp2 // 4 in beats, 3, "the beat event the song position names")
            ev = beats[origin + spp2 // 4]
            assert 4 * ev.beat_in_bar == spp2 % 16, (spp2, origin, ev)
        finally:
            _stop(clock)
            client.close()
            probe.close()
    log = _log(tmp_path)
    assert "clock out:" in log and "Traceback" not in log, log


def _spp_before(got: list[tuple[int, bytes]], i: int) -> int:
    for _, d in reversed(got[:i]):
        if d[0] == SONG_POSITION:
            return d[1] | (d[2] << 7)
    return 0  # a Start: the song's beginning


def _log(tmp_path: Path) -> str:
    p = tmp_path / "clock.log"
    return p.read_text(errors="replace") if p.exists() else ""


@pytest.mark.slow
def test_clock_in_at_97_bpm_locks_within_4_bars_and_stays(jack128: JackServer, tmp_path: Path) -> None:
    from cadenza.sdk import Client

    probe = Probe(jack128.env, tmp_path, "source", "send", bpm=97.0)
    beats: list[tuple[float, Any]] = []
    lock = threading.Lock()

    def on_beat(ev: Any) -> None:
        with lock:
            beats.append((time.monotonic(), ev))

    with ServeProcess(["--prompt", "techno"], tmp_path) as serve:
        client = Client(serve.ep.control, serve.ep.events, name="clock-test")
        client.on("beat", on_beat)
        wait_until(lambda: len(beats) >= 2, 20, "the runtime's first beats")
        assert abs(beats[-1][1].bpm - 97.0) > 5, "the synth plays 97 bpm already: pick another prompt"
        clock = _clock_process(serve, jack128.env, "--clock-in", "source:out", "--clock-in-align", "off",
                               log=tmp_path / "clock.log")
        try:
            wait_until(lambda: "clock in from" in _log(tmp_path), 10,
                       "the clock process connected to the source")
            started = time.monotonic()
            bar_s = 4 * 60.0 / 97.0
            deadline = started + 4 * bar_s

            def locked_since() -> float | None:
                with lock:
                    for t, ev in beats:
                        if t >= started and abs(ev.bpm - 97.0) <= 0.5:
                            return t
                return None

            wait_until(lambda: locked_since() is not None, 4 * bar_s + 2, "a beat at 97 ± 0.5 bpm")
            at = locked_since()
            assert at is not None
            assert at <= deadline + 0.1, f"locked {at - started:.1f} s after the clock started"
            time.sleep(60.0)
            with lock:
                after = [ev.bpm for t, ev in beats if t >= at]
            print(f"clock in: 97 ± 0.5 bpm {at - started:.1f} s after the clock started ({(at - started) / bar_s:.1f} "
                  f"bars); then {len(after)} beats at {min(after)}..{max(after)} bpm over 60 s")
            assert len(after) > 90 and all(abs(b - 97.0) <= 0.5 for b in after), sorted(set(after))
            # outside test 16, finding 4: the clock vanishes (no Stop): the override goes back to the graph
            assert client.status().controls.get("bpm") == pytest.approx(97.0, abs=0.5)
            probe.close()
            wait_until(lambda: "bpm" not in client.status().controls, 5, "the bpm override cleared", poll=0.2)
            assert "the clock is lost" in _log(tmp_path)
        finally:
            _stop(clock)
            client.close()
            probe.close()
    log = _log(tmp_path)
    assert "clock in:" in log and "Traceback" not in log, log



@pytest.mark.slow
def test_clock_in_start_aligns_the_synth_bar_to_the_clock(jack128: JackServer, tmp_path: Path) -> None:
    """External Start → the bridge delays the synth (PAUSE … PLAY) so that its downbeat lands on the clock's."""
    import re

    with ServeProcess(["--prompt", "techno"], tmp_path) as serve:
        probe = Probe(jack128.env, tmp_path, "source", "send-on-go", bpm=97.0)  # Start when told (below)
        clock = _clock_process(serve, jack128.env, "--clock-in", "source:out", log=tmp_path / "clock.log")
        from cadenza.sdk import Client

        client = Client(serve.ep.control, serve.ep.events, name="clock-test")
        try:
            # the Start must come after the clock process listens (a loaded CI box took over 3 s to start it)
            wait_until(lambda: "clock in from" in _log(tmp_path), 30, "the clock process connected to the source",
                       poll=0.1)
            probe.path.with_name(probe.path.name + ".go").touch()
            try:
                wait_until(lambda: "bar aligned (" in _log(tmp_path) or "bar alignment" in _log(tmp_path), 25,
                           "the bar alignment after the clock's Start", poll=0.2)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the clock process said:\n{_log(tmp_path)}") from None
            assert "bpm" in client.status().controls
        finally:
            _stop(clock)
            probe.close()
        try:  # outside test 16, finding 4: the bridge's exit gives the tempo back to the graph
            assert "bpm" not in client.status().controls
        finally:
            client.close()
    log = _log(tmp_path)
    found = re.search(r"heard ([+-][0-9.]+) ms from the clock's", log)
    assert found is not None, log
    print(f"bar alignment: the synth's first downbeat after it is heard {found.group(1)} ms from the clock's")
    assert abs(float(found.group(1))) <= 35.0, log
    assert "Traceback" not in log, log


def test_tempo_estimator_counts_lost_and_late_ticks_right() -> None:
    step = 60.0 / (24 * 97.0)
    times = [i * step for i in range(200) if i not in (50, 51, 120)]  # three ticks lost
    times = [t if not 150 <= round(t / step) < 156 else 156 * step for t in times]  # six late, in one burst
    est = TempoEstimator(exact=True)
    for t in times:
        est.add(t)
    bpm = est.bpm()
    assert bpm is not None and abs(bpm - 97.0) < 0.05, bpm


# ----------------------------------------------------------------------------- outside test 16


@pytest.mark.parametrize("value", ["nan", "inf", "-100", "100000", "abc"])
def test_clock_latency_must_be_a_finite_ms_in_range(value: str) -> None:
    # finding 1/11: nan crashed every JACK period; -100 and 100 s were taken without a word
    done = subprocess.run([sys.executable, "-m", "cadenza", "midi", "--clock-out", "x", "--clock-latency", value],
                          capture_output=True, text=True, timeout=60, env=child_env())
    assert done.returncode == 2, done
    assert "--clock-latency" in done.stderr and repr(value) in done.stderr and "Traceback" not in done.stderr


def test_an_error_in_the_jack_process_callback_never_escapes_and_the_clock_goes_on(
        jack128: JackServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    from cadenza.runtime.midi.clock import JackClockOut

    for k, v in jack128.env.items():
        monkeypatch.setenv(k, v)
    out = JackClockOut(None, client_name="cb-error")
    try:
        real = out.plan.due
        fails = [50]

        def due(until: float) -> list[tuple[float, bytes]]:
            if fails[0] > 0:
                fails[0] -= 1
                raise ValueError("cannot convert float NaN to integer")
            return real(until)

        monkeypatch.setattr(out.plan, "due", due)
        wait_until(lambda: fails[0] == 0, 10, "50 failing periods")
        now = time.time()
        for n in range(4):
            out.beat(BeatAt(beat=n, bar=0, beat_in_bar=n, bpm=120.0, at=now + 0.2 + n * 0.5))
        wait_until(lambda: out.sent["clock"] >= 24, 10, "a beat of clock after the failures")
        out.refresh()
    finally:
        out.close()
    assert out.callback_errors == 50 and "NaN" in (out.callback_error or "")
    assert out.sent["start"] == 1 and "50 periods failed" in out.report()
    assert "Traceback" not in capfd.readouterr().err


def test_a_lost_clock_gives_the_tempo_back_to_the_graph() -> None:
    sent: list[float] = []
    cleared: list[bool] = []
    follower = ClockFollower(lambda bpm: sent.append(bpm) or [], clear_bpm=lambda: cleared.append(True))
    step = 60.0 / (24 * 100.0)
    for i in range(24 * 3):
        follower.handle(bytes((CLOCK,)), i * step)
    assert sent and not cleared
    now = time.time()
    assert not follower.check_lost(now + 0.5) and not cleared
    assert follower.check_lost(now + 1.5) and cleared == [True]
    assert not follower.check_lost(now + 3.0) and cleared == [True]  # told once
    assert follower.stats.last_bpm is None and "lost 1 times" in follower.report()
    for i in range(24 * 2):  # back: the tempo is set again
        follower.handle(bytes((CLOCK,)), 10.0 + i * step)
    assert len(sent) == 2


def test_plan_after_a_transport_stop_starts_the_song_over_on_a_downbeat() -> None:
    plan = ClockPlan(start_lead=0.001)
    plan.observe(_beat(8, 10.0))
    assert plan.due(10.1)[0][1] == bytes((START,))
    plan.observe(_beat(9, 10.5))
    plan.due(10.9)
    plan.rewind()  # Transport STOP: the beats stop, then PLAY goes on with the count (beat 11, not a downbeat)
    out = plan.due(12.0)
    assert out[-1][1] == bytes((STOP,))
    plan.observe(_beat(11, 13.0))
    assert plan.due(13.4) == []  # not a downbeat: waits
    plan.observe(_beat(12, 13.5))
    out = plan.due(13.6)
    assert out[0][1] == bytes((START,)) and plan.origin == 12


@pytest.mark.parametrize("bpm", [60.5, 97.0, 180.0])
def test_tempo_estimate_is_steady_under_4_ms_of_tick_jitter(bpm: float) -> None:
    # outside test 16, finding 5: 4 ms (sd) of jitter on frame-exact ticks made the estimate wander ±1.5 %; the
    # plain 8-beat least-squares fit of the same ticks stays within ±0.04 % at 97 bpm
    import random

    for seed in range(3):
        rnd = random.Random(seed)
        est = TempoEstimator(exact=True)
        step = 60.0 / (24 * bpm)
        got = []
        for i in range(24 * 32):
            est.add(round((i * step + rnd.gauss(0.0, 0.004)) * RATE) / RATE)
            if i % 24 == 23 and i >= max(24 * 8, 5.0 / step):  # the window full: 8 beats or 5 s
                got.append(est.bpm())
        assert all(b is not None and abs(b / bpm - 1) < 0.0008 for b in got), (seed, got)


class _FakeRuntime:
    """A runtime's beat events as the clock-in bridge sees them: generated ``lookahead`` s before they are heard,
    at ``old_bpm`` until ``change_at`` s of music (a bar line) and at ``bpm`` after it; Transport PAUSE … PLAY leaves
    a gap in the heard music (PAUSE's fade plays on); ``late`` makes the n-th PLAY act that much later than asked."""

    def __init__(self, bridge: Any, *, bpm: float, old_bpm: float, change_at: float, lookahead: float = 0.3,
                 late: tuple[float, ...] = ()) -> None:
        from types import SimpleNamespace

        self.ns = SimpleNamespace
        self.bridge, self.bpm, self.old_bpm, self.change_at, self.lookahead = bridge, bpm, old_bpm, change_at, lookahead
        self.late = list(late)
        self.t0 = time.time()
        self.gaps: list[list[float]] = []  # [heard start, heard end or inf]
        self.k = 0  # the next beat to publish
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _music(self, k: int) -> float:  # seconds of music at beat k
        n_old = int(self.change_at * self.old_bpm / 60.0)
        return k * 60.0 / self.old_bpm if k <= n_old else self.change_at + (k - n_old) * 60.0 / self.bpm

    def _bpm(self, k: int) -> float:
        return self.old_bpm if self._music(k) < self.change_at else self.bpm

    def _heard(self, m: float) -> float:  # heard Unix time of music time m, through the gaps so far
        h = self.t0 + 0.5 + m
        for start, end in self.gaps:
            if h >= start:
                h += end - start
        return h

    def _run(self) -> None:
        while not self.stop.wait(0.005):
            while True:
                h = self._heard(self._music(self.k))
                if h > time.time() + self.lookahead or math.isinf(h):
                    break
                ev = self.ns(stream_time=int((h - self.t0) * 48_000), heard_at=h, bpm=self._bpm(self.k),
                             beat_in_bar=self.k % 4)
                self.bridge._beat(ev)
                self.k += 1

    # the SDK client's transport, as the bridge uses it
    def pause(self) -> None:
        self.gaps.append([time.time() + self.lookahead + 0.05, math.inf])

    def play(self) -> Any:
        now = time.time() + (self.late.pop(0) if self.late else 0.0)
        self.gaps[-1][1] = max(self.gaps[-1][0], now + self.lookahead)
        return self.ns(stream_time=int((now + self.lookahead - self.t0) * 48_000))

    def status(self) -> Any:
        raise RuntimeError("no status in this fake")


def _aligned_bridge(**kw: Any) -> tuple[Any, _FakeRuntime]:
    from cadenza.runtime.midi.clock import ClockInBridge, HeardClock

    bridge = object.__new__(ClockInBridge)
    bridge.rate, bridge.heard, bridge._last_beat = 48_000, HeardClock(48_000), None
    fake = _FakeRuntime(bridge, **kw)
    bridge.client = fake
    return bridge, fake


@pytest.mark.parametrize("late", [(), (0.2,), (-0.3, 0.1)], ids=["on-time", "play-200ms-late", "early-then-late"])
def test_bar_alignment_waits_for_the_clock_tempo_and_corrects_what_it_measures(late: tuple[float, ...]) -> None:
    """CI failure (+635 ms): the tempo was sent on the tick that aligned, and the beats already generated at the
    graph's own tempo projected the synth's downbeat wrong; a PLAY acted on late left the error unmeasured-but-kept.
    The bridge now projects from a beat at the clock's tempo and corrects with one more gap what it measured."""
    bpm = 194.0  # twice the real test's 97: the logic is the same, each gap and wait half as long
    bar_s = 4 * 60.0 / bpm
    bridge, fake = _aligned_bridge(bpm=bpm, old_bpm=256.0, change_at=60.0 / 256.0 * 4, late=late)
    try:
        downbeat_at = time.time() + 0.77  # the clock's grid, unrelated to the synth's
        error = bridge._align(downbeat_at, bar_s)
    finally:
        fake.stop.set()
        fake.thread.join(1.0)
    assert error is not None
    assert abs(error) <= 0.02, f"the synth's downbeat is heard {error * 1000:+.1f} ms from the clock's"
    # one gap when the requests act on time (two if this box's sleep overshot the tolerance); a PLAY acted on
    # 100 ms late or more is measured and corrected with one more gap each
    assert (1 if not late else len(late) + 1) <= len(fake.gaps) <= (2 if not late else 3), fake.gaps
