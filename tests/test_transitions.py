"""Transitions keep the beat: across every crossfade, blend and stinger of the example previews the beat and bar
events form one continuous sequence true to the tempo, and the loudness has no hole.

Each example preview (``examples/{action_game,pygame_game,racing}``: graph.yaml + timeline.csv, what
``cadenza render --graph … --automation …`` plays) is rendered once per session through the synth, seed 0 (the
CLI's default). From what it publishes and sounds:

- the beats (``render --beats``'s list, the ``beat``/``bar`` events): ``beat`` rises by 1, ``bar`` by 1 exactly at
  each downbeat (never resets, never repeats), every bar has 4 beats, no two downbeats closer than a beat, every
  beat interval within 1 ms of 60/bpm of the tempo in force (the bpm its first beat states), a tempo change only on
  a downbeat;
- the audio: momentary loudness (BS.1770 K-weighting with pyloudnorm's filters, 400 ms windows every 50 ms)
  through each transition window — a crossfade or blend from its STARTED to its COMPLETED event, a stinger for its
  length, each plus 0.5 s after — never more than 3 LU below the surrounding level (the median momentary loudness
  of the 2.5 s before and of the 2.5 s after, interpolated across the window) for 150 ms (4 hops) or more: a hole,
  as the ~300 ms one the issue measured; a single hop's dip is the gap between two beats, which the steady music
  has too (up to 3.2 LU in pygame_game's). Racing has no states: its blends are the stretches where the prompt
  weights move. The outside tester's own measure (400 ms every 100 ms against a 3.1 s running median, single
  windows) is pinned too where a stinger and a crossfade start together.

``python tests/test_transitions.py`` prints the figures per example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from cadenza.runtime import events as ev
from cadenza.runtime.backends import get_backend
from cadenza.runtime.backends.base import SAMPLE_RATE, Beat
from cadenza.runtime.graph.automation import load_automation
from cadenza.runtime.graph.loader import load_graph
from cadenza.runtime.preview import PreviewLog, run_preview
from tests.test_preview import Capture  # a sink that keeps what it is given

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PREVIEWS = ("action_game", "pygame_game", "racing")
BEAT_TOLERANCE_S = 0.001
HOLE_LU = 3.0
MOMENTARY_S = 0.4
HOP_S = 0.05
SURROUND_S = 2.5
AFTER_S = 0.5
SUSTAIN_HOPS = 4  # a hole lasts: the dip held over 4 hops (150 ms); a single hop's dip is a gap between beats


@dataclass
class Preview:
    name: str
    log: PreviewLog
    pcm: np.ndarray
    windows: list[tuple[str, float, float]]  # (what, start s, end s)


@cache
def preview(name: str) -> Preview:
    graph = load_graph(EXAMPLES / name / "graph.yaml")
    automation = load_automation(EXAMPLES / name / "timeline.csv")
    seconds = max(a.time for a in automation) + 10.0  # what `cadenza render --graph` plays by default
    sink = Capture()
    log = run_preview(graph, get_backend("synth"), automation, seconds, sink, seed=0)
    return Preview(name, log, np.concatenate(sink.blocks), transition_windows(log))


def transition_windows(log: PreviewLog) -> list[tuple[str, float, float]]:
    """Every crossfade and blend (STARTED → COMPLETED) and stinger; without states, where the weights move."""
    out: list[tuple[str, float, float]] = []
    for e in log.events:
        if isinstance(e, ev.StateChange) and e.phase is ev.Phase.STARTED and e.transition in ("crossfade", "blend"):
            # its fade, whether or not a newer change cut it short (then the two windows overlap)
            out.append((f"{e.transition} {e.previous}→{e.name}", e.time, e.time + e.fade_seconds))
        elif isinstance(e, ev.StingerFired):
            out.append((f"stinger {e.name}", e.time, e.time + e.duration_seconds))
    if not any(isinstance(e, ev.StateChange) for e in log.events):
        t = np.asarray(log.times)
        w = np.array(list(log.weights.values()))
        moving = np.abs(np.diff(w, axis=1)).sum(axis=0) * (1.0 / np.diff(t)) > 0.05  # weight per second
        i = 0
        while i < len(moving):
            if moving[i]:
                j = i
                while j + 1 < len(moving) and (moving[j + 1] or (j + 11 < len(moving) and moving[j + 1 : j + 11].any())):
                    j += 1
                if t[j + 1] - t[i] > 0.2:
                    out.append(("blend (weights move)", float(t[i]), float(t[j + 1])))
                i = j + 1
            else:
                i += 1
    return out


# ------------------------------------------------------------------------------------------- beats


def beat_problems(beats: list[Beat]) -> list[str]:
    """What breaks the one continuous beat sequence (empty: nothing)."""
    bad: list[str] = []
    for prev, b in zip(beats, beats[1:]):
        at = f"beat {b.beat} (bar {b.bar}, {b.frame / SAMPLE_RATE:.3f} s)"
        if b.beat != prev.beat + 1:
            bad.append(f"{at}: beat count {prev.beat} → {b.beat}")
        want_bar = prev.bar + (1 if b.downbeat else 0)
        if b.bar != want_bar:
            bad.append(f"{at}: bar {prev.bar} → {b.bar} (downbeat={b.downbeat})")
        if b.beat_in_bar != (prev.beat_in_bar + 1) % 4:
            bad.append(f"{at}: beat_in_bar {prev.beat_in_bar} → {b.beat_in_bar} (a bar of other than 4 beats)")
        dt = (b.frame - prev.frame) / SAMPLE_RATE
        want = 60.0 / prev.bpm
        if abs(dt - want) > BEAT_TOLERANCE_S:
            bad.append(f"{at}: interval {dt * 1000:.1f} ms, the tempo in force ({prev.bpm:.2f} bpm) says "
                       f"{want * 1000:.1f} ms")
        if b.bpm != prev.bpm and not b.downbeat:
            bad.append(f"{at}: tempo {prev.bpm:.2f} → {b.bpm:.2f} bpm off the bar line")
    downs = [b for b in beats if b.downbeat]
    for prev, b in zip(downs, downs[1:]):
        if (b.frame - prev.frame) / SAMPLE_RATE < 60.0 / max(prev.bpm, b.bpm) - BEAT_TOLERANCE_S:
            bad.append(f"downbeats {(b.frame - prev.frame) / SAMPLE_RATE * 1000:.0f} ms apart at "
                       f"{b.frame / SAMPLE_RATE:.3f} s")
    return bad


# ---------------------------------------------------------------------------------------- loudness


def momentary(pcm: np.ndarray, hop_s: float = HOP_S) -> tuple[np.ndarray, np.ndarray]:
    """(window centre times s, momentary loudness LUFS): K-weighted (pyloudnorm's BS.1770 filters), 400 ms."""
    import pyloudnorm

    meter = pyloudnorm.Meter(SAMPLE_RATE)
    x = np.asarray(pcm, dtype=np.float64)
    for f in meter._filters.values():  # the K-weighting stages, as pyloudnorm applies them
        x = f.apply_filter(x)
    sq = np.concatenate([np.zeros(1), np.cumsum((x**2).sum(axis=1))])
    win, hop = int(MOMENTARY_S * SAMPLE_RATE), int(hop_s * SAMPLE_RATE)
    starts = np.arange(0, x.shape[0] - win + 1, hop)
    ms = (sq[starts + win] - sq[starts]) / win
    return (starts + win / 2) / SAMPLE_RATE, -0.691 + 10.0 * np.log10(np.maximum(ms, 1e-12))


def loudness_holes(p: Preview) -> list[tuple[str, float, float, float, float]]:
    """Per transition window: (what, start, deepest dip below the surrounding level in LU held for
    SUSTAIN_HOPS hops, where it begins, deepest single-hop dip)."""
    t, m = momentary(p.pcm)
    out = []
    for what, a, b in p.windows:
        before = m[(t >= a - SURROUND_S) & (t < a)]
        after = m[(t > b + AFTER_S) & (t <= b + AFTER_S + SURROUND_S)]
        inside = (t >= a) & (t <= b + AFTER_S)
        if not before.size or not after.size or not inside.any():
            continue
        lb, la = float(np.median(before)), float(np.median(after))
        tt = t[inside]
        span = max(b + AFTER_S - a, 1e-9)
        ref = lb + (la - lb) * np.clip((tt - a) / span, 0.0, 1.0)
        dip = ref - m[inside]
        held = np.lib.stride_tricks.sliding_window_view(dip, SUSTAIN_HOPS).min(axis=1) if dip.size >= SUSTAIN_HOPS \
            else dip
        k = int(np.argmax(held))
        out.append((what, a, float(held[k]), float(tt[k]), float(dip.max())))
    return out


# ------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", PREVIEWS)
def test_one_continuous_beat_sequence(name: str) -> None:
    p = preview(name)
    assert len(p.log.beats) > 40
    bad = beat_problems(p.log.beats)
    assert not bad, f"{name}: {len(bad)} break(s) in the beat sequence:\n" + "\n".join(bad[:20])


@pytest.mark.parametrize("name", PREVIEWS)
def test_beat_events_are_the_beats(name: str) -> None:
    """The published ``beat`` events are render --beats' list, one for one."""
    p = preview(name)
    events = [e for e in p.log.events if isinstance(e, ev.BeatEvent)]
    assert [(e.beat, e.bar, e.beat_in_bar) for e in events] == [(b.beat, b.bar, b.beat_in_bar) for b in p.log.beats]
    assert all(math.isclose(e.time, b.seconds) for e, b in zip(events, p.log.beats))


@pytest.mark.parametrize("name", PREVIEWS)
def test_no_loudness_hole_through_transitions(name: str) -> None:
    p = preview(name)
    holes = loudness_holes(p)
    assert holes, f"{name}: no transition measured ({p.windows})"
    worst = max(holes, key=lambda h: h[2])
    assert worst[2] <= HOLE_LU, (f"{name}: {worst[0]} at {worst[1]:.2f} s dips {worst[2]:.1f} LU below the "
                                 f"surrounding level for 150 ms from {worst[3]:.2f} s; all: "
                                 + ", ".join(f"{w} {a:.1f}s {d:.1f} LU" for w, a, d, _, _ in holes))


BEAT_CROSSFADES = """
cadenza_graph: 1
name: beat-quantized-crossfades
control_rate: 100
parameters:
  mode: {type: labeled, labels: [slow, fast], default: slow}
prompts:
  calm: "calm ambient pads with soft piano"
  rush: "aggressive drum and bass"
mix:
  - prompt: calm
    weight: 1
states:
  driven_by: mode
  initial: slow
  list:
    slow: {controls: {bpm: 90}}
    fast:
      mix: [{prompt: rush, weight: 1}]
      controls: {bpm: 150}
transitions:
  - {from: any, to: any, quantize: beat, fade: %s, mode: crossfade}
"""


@pytest.mark.parametrize("fade", ["1 beat", "3 beats"])
def test_beat_quantized_crossfades_start_in_phase(fade: str) -> None:
    """Crossfades quantized to the beat, requested at every place in the bar, between 90 and 150 bpm: the incoming
    deck starts mid-bar on the beat the grid expects (phase-locked to the bed's bar line) and its tempo takes over
    on the next bar line; the beat sequence never breaks, whether the old deck outlasts that bar line or not."""
    from cadenza.runtime.graph.automation import parse_automation
    from cadenza.runtime.graph.loader import loads_graph

    graph = loads_graph(BEAT_CROSSFADES % fade)
    rows = ["time,action,name,value"]
    t, mode = 3.1, "fast"
    for _ in range(8):  # each request a little later in the bar than the one before
        rows.append(f"{t:.2f},set,mode,{mode}")
        mode = "slow" if mode == "fast" else "fast"
        t += 3.7
    sink = Capture()
    log = run_preview(graph, get_backend("synth"), parse_automation("\n".join(rows)), t + 3.0, sink, seed=1)
    started = [e for e in log.events if isinstance(e, ev.StateChange) and e.phase is ev.Phase.STARTED]
    assert len(started) == 8
    frames = np.array([b.frame for b in log.beats])
    # where in the bed's bar each crossfade started: the place after the bed's last beat before it
    in_bar = sorted({(log.beats[int(np.searchsorted(frames, e.time * SAMPLE_RATE - 48)) - 1].beat_in_bar + 1) % 4
                     for e in started})
    assert len(in_bar) >= 3, f"the crossfades started only at beat_in_bar {in_bar}: the test wants mid-bar starts"
    bad = beat_problems(log.beats)
    assert not bad, f"{len(bad)} break(s):\n" + "\n".join(bad[:20])
    assert {b.bpm for b in log.beats} >= {90.0, 150.0}


def _fits(bpm: float, tempos: tuple[float, ...], near: float = 1.12) -> bool:
    """Whether ``bpm`` suits one of ``tempos``: within ``near`` of it, doubled or halved."""
    return any(abs(math.log2(bpm / t) - round(math.log2(bpm / t))) <= math.log2(near) for t in tempos)


def test_a_mix_of_distant_tempos_plays_one_of_them() -> None:
    """Dark techno (130 bpm) + calm ambient pads (72.5 bpm) at equal weight: not their average (101 bpm) but the
    leading prompt's tempo, the other's folded into it (double time); the audio's tempo agrees (beat tracker)."""
    import audio_metrics as am

    from cadenza.runtime.backends.base import TextPrompt, WeightedPrompt
    from cadenza.runtime.render import render

    result = render([WeightedPrompt(TextPrompt("dark techno"), 1.0), WeightedPrompt(TextPrompt("calm ambient pads"), 1.0)],
                    seconds=12.0, seed=0)
    grid = {round(b.bpm, 3) for b in result.beats}
    assert len(grid) == 1, grid
    bpm = grid.pop()
    assert _fits(bpm, (130.0, 72.5)) and abs(bpm - 130.0) <= 0.12 * 130.0, f"the mix plays {bpm} bpm"
    heard = am.tempo(result.pcm).bpm
    assert _fits(heard, (bpm,), 1.03), f"the grid says {bpm:.1f} bpm, the audio {heard:.1f}"


LEAD_PASSES = """
cadenza_graph: 1
name: lead-passes
control_rate: 100
parameters:
  calm: {type: continuous, min: 0, max: 1, default: 0}
prompts:
  techno: "dark techno"
  ambient: "calm ambient pads"
mix:
  - prompt: techno
    weight: {invert: {param: calm}}
  - prompt: ambient
    weight: {param: calm}
"""


def test_when_the_lead_passes_the_tempo_halves_on_a_bar_line() -> None:
    """Weights gliding from techno to ambient pads over 8 s: the tempo stays near techno's while it leads, then
    halves (ambient's, its octave) on one bar line, never passing through the tempos between; one beat sequence."""
    from cadenza.runtime.graph.automation import parse_automation
    from cadenza.runtime.graph.loader import loads_graph

    graph = loads_graph(LEAD_PASSES)
    timeline = parse_automation("time,action,name,value,ramp\n4,set,calm,1,8\n")
    log = run_preview(graph, get_backend("synth"), timeline, 20.0, Capture(), seed=0)
    tempos = [b.bpm for b in log.beats]
    assert all(_fits(t, (130.0, 72.5)) for t in tempos), sorted(set(round(t) for t in tempos))
    assert not [t for t in tempos if 80.0 < t < 120.0], "the tempo glided through the tempos between"
    assert tempos[0] > 120.0 and tempos[-1] < 80.0
    assert not beat_problems(log.beats)


def outside_holes(p: Preview) -> list[tuple[str, float, float, float]]:
    """The outside tester's method (outside-14 #5): momentary loudness in 400 ms windows every 100 ms, each against
    the running median of 31 windows (3.1 s) centred on it; per transition window (its start to 0.5 s after its
    end): (what, start, the deepest single-window dip below the median in LU, where)."""
    from scipy.ndimage import median_filter

    t, m = momentary(p.pcm, hop_s=0.1)
    dip = median_filter(m, 31, mode="nearest") - m
    out = []
    for what, a, b in p.windows:
        inside = (t >= a) & (t <= b + AFTER_S)
        if inside.any():
            k = int(np.argmax(dip[inside]))
            out.append((what, a, float(dip[inside][k]), float(t[inside][k])))
    return out


@pytest.mark.parametrize("name", ["action_game", "pygame_game"])
def test_no_hole_where_a_stinger_and_a_crossfade_start_together(name: str) -> None:
    """The victory stinger fires with a crossfade: the bed's duck was as deep as the graph asks (−12/−9 dB) while the
    prompt stinger was still building up, 3.2–4.5 LU holes measured (3.3 and 3.4 LU here before the fix). Now the
    duck is only as deep as the stinger fills (Conductor.DUCK_FILL_S): no window dips over 3 LU, the tester's way."""
    p = preview(name)
    holes = outside_holes(p)
    together = [h for h in holes if h[0].startswith("stinger")
                and any(w.startswith("crossfade") and abs(a - h[1]) < 0.05 for w, a, _ in p.windows)]
    assert together, f"{name}: no stinger starts with a crossfade: {p.windows}"
    worst = max(holes, key=lambda h: h[2])
    assert worst[2] <= HOLE_LU, f"{name}: {worst[0]} at {worst[1]:.2f} s: {worst[2]:.1f} LU below the median at " \
                                f"{worst[3]:.2f} s; all: " + ", ".join(f"{w} {d:.1f}" for w, _, d, _ in holes)


def test_every_preview_has_transitions() -> None:
    kinds = {w.split()[0] for name in PREVIEWS for w, _, _ in preview(name).windows}
    assert {"crossfade", "blend", "stinger"} <= kinds, kinds


if __name__ == "__main__":
    import time

    for name in PREVIEWS:
        t0 = time.perf_counter()
        p = preview(name)
        took = time.perf_counter() - t0
        bad = beat_problems(p.log.beats)
        print(f"== {name}: {len(p.log.beats)} beats, {p.pcm.shape[0] / SAMPLE_RATE:.1f} s rendered in {took:.1f} s; "
              f"{len(bad)} beat-sequence break(s)")
        for line in bad:
            print("   ", line)
        for what, a, dip, at, single in loudness_holes(p):
            print(f"    {what:36s} {a:6.2f} s  hole (150 ms) {dip:4.1f} LU at {at:.2f} s; deepest single hop {single:4.1f}")
