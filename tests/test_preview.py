"""Graph previews: every example graph validates, previews through the synth, and its transitions,
crossfades and stingers start exactly on the beat/bar of the rendered audio that their rule quantizes to."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def _grid(log: PreviewLog, kind: str) -> set[int]:
    kinds = ("bar",) if kind == "bar" else ("bar", "beat")
    return {int(e["frame"]) for e in log.events if e["event"] in kinds}  # type: ignore[call-overload]


def test_action_game_transitions_land_on_the_rendered_grid(
    previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]],
) -> None:
    graph, log, pcm = previews["action_game"]
    quantize = {(t.source, t.target): t.quantize for t in graph.transitions}
    bars = _grid(log, "bar")
    beats = _grid(log, "beat")
    starts = [e for e in log.events if e["event"] in ("state", "crossfade_start", "stinger")]
    assert {e["event"] for e in starts} == {"state", "crossfade_start", "stinger"}
    states = [e for e in log.events if e["event"] == "state"]
    assert [e["target"] for e in states] == ["tension", "combat", "explore"]
    for e in starts:
        frame = int(round(float(e["time"]) * SAMPLE_RATE))  # type: ignore[arg-type]
        if e["event"] == "stinger":
            q = graph.stingers[str(e["name"])].quantize
        else:
            target = str(e["target"])
            q = next((quantize[k] for k in ((e.get("source"), target), ("any", target), ("any", "any"))
                      if k in quantize), "bar")
        grid = bars if q == "bar" else beats
        assert frame in grid, f"{e['event']} at {e['time']} s (frame {frame}) is not on a rendered {q}"


def test_crossfade_brings_in_the_combat_deck_at_its_start(
    previews: dict[str, tuple[Graph, PreviewLog, np.ndarray]],
) -> None:
    _, log, pcm = previews["action_game"]
    start = next(int(e["frame"]) for e in log.events  # type: ignore[call-overload]
                 if e["event"] == "crossfade_start" and e["target"] == "combat")
    end = next(int(e["frame"]) for e in log.events if e["event"] == "crossfade_end")  # type: ignore[call-overload]
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
    fs = [e for e in log.events if e["event"] == "failsafe"]
    assert len(fs) == 1
    automation = load_automation(EXAMPLES / "installation" / "timeline.csv")
    assert float(fs[0]["time"]) == pytest.approx(automation[-1].time + graph.failsafe.after)  # type: ignore[arg-type]
    # after the glide every parameter sits at its safe value
    t = np.asarray(log.times)
    settled = t > float(fs[0]["time"]) + graph.failsafe.glide + 0.5  # type: ignore[arg-type]
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
    assert {"state_scheduled", "state", "beat", "bar"} <= {e["event"] for e in events}
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
