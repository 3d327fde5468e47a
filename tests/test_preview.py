"""Graph previews: every example graph validates, previews through the synth, and its transitions,
crossfades and stingers start exactly on the beat/bar of the rendered audio that their rule quantizes to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cadenza.runtime import events as ev
from cadenza.runtime.backends import get_backend
from cadenza.runtime.backends.base import SAMPLE_RATE
from cadenza.runtime.graph.automation import load_automation
from cadenza.runtime.graph.loader import load_graph
from cadenza.runtime.graph.spec import Graph
from cadenza.runtime.preview import PreviewLog, plot_preview, run_preview
from cadenza.runtime.sinks.null import NullSink

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GRAPHS = sorted(p.parent.name for p in EXAMPLES.glob("*/graph.yaml"))
SECONDS = {"installation": 45.0}


class Capture(NullSink):
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[np.ndarray] = []

    def write(self, block: np.ndarray) -> None:
        super().write(block)
        self.blocks.append(block.copy())

    @property
    def pcm(self) -> np.ndarray:
        return np.concatenate(self.blocks)


@pytest.fixture(scope="module")
def previews() -> dict[str, tuple[Graph, PreviewLog, np.ndarray]]:
    out = {}
    for name in GRAPHS:
        graph = load_graph(EXAMPLES / name / "graph.yaml")
        automation = load_automation(EXAMPLES / name / "timeline.csv")
        seconds = SECONDS.get(name, max(a.time for a in automation) + 10.0)
        sink = Capture()
        log = run_preview(graph, get_backend("synth"), automation, seconds, sink, seed=3)
        out[name] = (graph, log, sink.pcm)
    return out


def test_there_are_three_examples() -> None:
    assert {"action_game", "installation", "racing"} <= set(GRAPHS)


@pytest.mark.parametrize("name", GRAPHS)
def test_example_preview_renders_music(name: str, previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]]) -> None:
    graph, log, pcm = previews[name]
    assert pcm.dtype == np.float32 and pcm.shape[1] == 2
    assert np.all(np.isfinite(pcm)) and float(np.abs(pcm).max()) <= 1.0
    # not silence: every 2 s window carries sound
    win = 2 * SAMPLE_RATE
    rms = [float(np.sqrt(np.mean(pcm[i : i + win] ** 2))) for i in range(0, pcm.shape[0] - win, win)]
    assert min(rms) > 0.01, rms
    # weights leaving the graph are normalized at every tick
    w = np.array([log.weights[p] for p in graph.prompts])
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-9)
    assert np.all(w >= 0.0)


def _frame(e: ev.Event) -> int:
    return int(round(e.time * SAMPLE_RATE))


def _grid(log: PreviewLog, kind: str) -> set[int]:
    return {_frame(e) for e in log.events if isinstance(e, ev.BeatEvent) and (kind == "beat" or e.downbeat)}


def _changes(log: PreviewLog, phase: ev.Phase, transition: str | None = None) -> list[ev.StateChange]:
    return [e for e in log.events if isinstance(e, ev.StateChange) and e.phase is phase
            and transition in (None, e.transition)]


def test_action_game_transitions_land_on_the_rendered_grid(
    previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]],
) -> None:
    graph, log, pcm = previews["action_game"]
    quantize = {(t.source, t.target): t.quantize for t in graph.transitions}
    bars = _grid(log, "bar")
    beats = _grid(log, "beat")
    states = _changes(log, ev.Phase.STARTED)
    stingers = [e for e in log.events if isinstance(e, ev.StingerFired)]
    assert stingers and {e.transition for e in states} >= {"crossfade"}
    assert [e.name for e in states] == ["tension", "combat", "explore"]
    # each change was announced (SCHEDULED, stamped with its start) and each fade ends (COMPLETED), in order
    assert [(e.name, e.time) for e in _changes(log, ev.Phase.SCHEDULED)] == [(e.name, e.time) for e in states]
    done = _changes(log, ev.Phase.COMPLETED)
    assert [e.name for e in done] == [e.name for e in states]
    assert all(d.time == pytest.approx(s.time + s.fade_seconds) for s, d in zip(states, done))
    starts: list[ev.StateChange | ev.StingerFired] = [*states, *stingers]
    for e in starts:
        frame = _frame(e)
        if isinstance(e, ev.StingerFired):
            q = graph.stingers[e.name].quantize
        else:
            q = next((quantize[k] for k in ((e.previous, e.name), ("any", e.name), ("any", "any"))
                      if k in quantize), "bar")
        grid = bars if q == "bar" else beats
        assert frame in grid, f"{e.kind} at {e.time} s (frame {frame}) is not on a rendered {q}"


def test_crossfade_brings_in_the_combat_deck_at_its_start(
    previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]],
) -> None:
    _, log, pcm = previews["action_game"]
    start = next(_frame(e) for e in _changes(log, ev.Phase.STARTED, "crossfade") if e.name == "combat")
    end = next(_frame(e) for e in _changes(log, ev.Phase.COMPLETED, "crossfade") if e.name == "combat")
    assert end > start

    def high_band(seg: np.ndarray) -> float:
        spec = np.abs(np.fft.rfft(seg.mean(axis=1) * np.hanning(seg.shape[0]))) ** 2
        f = np.fft.rfftfreq(seg.shape[0], 1.0 / SAMPLE_RATE)
        return float(spec[f > 4000].sum() / spec.sum())

    before = high_band(pcm[start - 2 * SAMPLE_RATE : start])
    after = high_band(pcm[end : end + 2 * SAMPLE_RATE])
    assert after > 2.0 * before, (before, after)  # drum and bass is far brighter than the suspense bed


def test_installation_failsafe_engages_after_silence(
    previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]],
) -> None:
    graph, log, _ = previews["installation"]
    assert graph.failsafe is not None
    fs = [e for e in log.events if isinstance(e, ev.Failsafe)]
    assert len(fs) == 1
    automation = load_automation(EXAMPLES / "installation" / "timeline.csv")
    assert fs[0].time == pytest.approx(automation[-1].time + graph.failsafe.after)
    # after the glide every parameter sits at its safe value
    t = np.asarray(log.times)
    settled = t > fs[0].time + graph.failsafe.glide + 0.5
    for name, p in graph.parameters.items():
        if p.type == "continuous" and settled.any():
            values = np.asarray(log.params[name])[settled]
            np.testing.assert_allclose(values, float(p.safe_value), atol=1e-6 * (p.max - p.min))


def test_racing_speed_drives_tempo_and_intensity(
    previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]],
) -> None:
    _, log, _ = previews["racing"]
    t = np.asarray(log.times)
    bpm = np.asarray(log.controls["bpm"])
    assert bpm[t < 1.0].max() < 110 and bpm[(t > 25) & (t < 29)].min() > 165
    intensity = np.asarray(log.params["intensity"])
    assert intensity[(t > 12.05) & (t < 12.5)].min() > 0.3  # an overtake bumps it


def test_preview_plot_is_written(previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _, log, _ = previews["action_game"]
    out = tmp_path / "weights.png"
    plot_preview(log, out, title="action")
    assert out.stat().st_size > 20_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_graph_cli_writes_audio_plot_and_events(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    ex = EXAMPLES / "action_game"
    r = subprocess.run(
        [sys.executable, "-m", "cadenza", "render", "--graph", str(ex / "graph.yaml"), "--automation",
         str(ex / "timeline.csv"), "--seconds", "20", "--out", str(tmp_path / "p.wav"), "--plot",
         str(tmp_path / "w.png"), "--events", str(tmp_path / "e.jsonl")],
        capture_output=True, text=True, timeout=240,
    )
    assert r.returncode == 0, r.stderr
    import soundfile

    info = soundfile.info(str(tmp_path / "p.wav"))
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 20 * 48000)
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    # the wire's names: a state change is "state" with name/previous/phase/transition/fade_seconds
    assert {"state", "beat"} <= {e["event"] for e in events}
    states = [e for e in events if e["event"] == "state"]
    assert {"scheduled", "started", "completed"} <= {e["phase"] for e in states}
    assert all({"name", "previous", "transition", "fade_seconds", "stream_time"} <= set(e) for e in states)
    assert not {"source", "target", "state_scheduled"} & {k for e in events for k in (*e, e["event"])}
    assert any(e["event"] == "beat" and e["beat_in_bar"] == 0 for e in events)  # bars are the downbeats
    assert all(e["stream_time"] == round(e["time"] * 48000) for e in events)
    assert (tmp_path / "w.png").stat().st_size > 20_000


def test_graph_plot_cli(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    r = subprocess.run([sys.executable, "-m", "cadenza", "graph", "plot", str(EXAMPLES / "racing" / "graph.yaml"),
                        "--out", str(tmp_path / "c.png")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.png").stat().st_size > 20_000


def test_render_graph_errors_are_one_line_per_issue(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cadenza_graph: 1\nparameters:\n  x: {type: continuous, min: 2, max: 1}\nmix:\n  - prompt: nope\n")
    r = subprocess.run([sys.executable, "-m", "cadenza", "render", "--graph", str(bad), "--out",
                        str(tmp_path / "o.wav")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) >= 2 and all("bad.yaml:" in ln for ln in lines), r.stderr
    assert not (tmp_path / "o.wav").exists()


def test_event_log_says_when_a_change_was_announced(tmp_path: Path) -> None:
    """outside-14 #17: a SCHEDULED line's ``time``/``stream_time`` is when the change will start (PROTOCOL.md, as on
    the wire), and ``announced`` says when it was announced: the tick that applied the timeline's request."""
    from cadenza.runtime.preview import write_events

    ex = EXAMPLES / "action_game"
    requests = {r.value: r.time for r in load_automation(ex / "timeline.csv") if r.name == "mode" and r.time > 0}
    log = run_preview(load_graph(ex / "graph.yaml"), get_backend("synth"), load_automation(ex / "timeline.csv"),
                      20.0, NullSink(), seed=0)
    write_events(log, tmp_path / "e.jsonl")
    states = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    states = [e for e in states if e["event"] == "state"]
    scheduled = [e for e in states if e["phase"] == "scheduled"]
    started = {e["name"]: e["time"] for e in states if e["phase"] == "started"}
    assert [e["name"] for e in scheduled] == ["tension", "combat"]
    for e in scheduled:
        assert e["time"] == started[e["name"]]  # when it will start
        assert e["announced"] == pytest.approx(requests[e["name"]], abs=0.011)  # the request's control tick
        assert e["announced"] <= e["time"]
    assert all("announced" not in e for e in states if e["phase"] != "scheduled")
