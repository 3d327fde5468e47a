"""Acceptance tests of the synth backend's offline render, measured from the signal.

Every claim about the audio is checked with a standard tool on the rendered
samples (see ``audio_metrics``): librosa's beat tracker for tempo, librosa's
onset detector for density, the spectral centroid for brightness, pyloudnorm
for loudness, BS.1770 4× oversampling for the true peak, and an isolated-jump
detector for clicks. The engine's own beat list is only compared with what was
measured, never trusted in its place.

Most checks call :func:`cadenza.runtime.render.render` in-process (the synth
renders far faster than real time) through a module-scoped cache, so each
configuration is rendered once; the command line is driven as a subprocess for
determinism, bad input and one end-to-end WAV/FLAC/``--beats`` run.

Acceptance lines:
 (a) 30 s renders are 48 kHz stereo; measured tempo within 2 % of the asked
     bpm (or its half/double) at 70, 100, 124 and 160 bpm
 (b) more ``density`` → more onsets per second
 (c) more ``brightness`` → higher spectral centroid
 (d) integrated loudness -16 ± 2 LUFS, true peak <= -1 dBTP
 (e) no clicks
 (f) different prompts → clearly different measured features
 (g) same seed/prompts/controls → bit-identical files; another seed → other audio
 (h) bad input → one-line error naming the value, exit code != 0, no traceback
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audio_metrics as am  # noqa: E402

from cadenza.runtime.backends.base import Controls, TextPrompt, WeightedPrompt  # noqa: E402

SR = 48_000
SECONDS = 30.0
SEED = 11
TEMPO_PROMPT = "dark techno"  # four-on-the-floor kick: a beat tracker's fair test
TEMPO_TOLERANCE = 0.02
LUFS_TARGET, LUFS_TOLERANCE = -16.0, 2.0
TRUE_PEAK_MAX_DBTP = -1.0
CLI_TIMEOUT_S = 240

AMBIENT, DNB, PIANO = "calm ambient pads", "aggressive drum and bass", "solo piano"


# ----------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Config:
    """One render: prompts ``((text, weight), …)``, controls, seed and length."""

    prompts: tuple[tuple[str, float], ...]
    bpm: float | None = None
    density: float | None = None
    brightness: float | None = None
    seed: int = SEED
    seconds: float = SECONDS

    def controls(self) -> Controls:
        return Controls(bpm=self.bpm, density=self.density, brightness=self.brightness)

    def __str__(self) -> str:
        p = "+".join(f"{t}:{w:g}" for t, w in self.prompts)
        c = ",".join(f"{k}={v:g}" for k, v in
                     (("bpm", self.bpm), ("density", self.density), ("brightness", self.brightness)) if v is not None)
        return f"{p}[{c}]seed={self.seed}"


def cfg(text: str, **kw: Any) -> Config:
    return Config(((text, 1.0),), **kw)


TEMPO_CONFIGS = {bpm: cfg(TEMPO_PROMPT, bpm=bpm) for bpm in (70, 100, 124, 160)}
CONTROL_PROMPTS = ("dark techno", "lofi hip hop")
DENSITY_CONFIGS = {(p, d): cfg(p, bpm=110, density=d) for p in CONTROL_PROMPTS for d in (0.2, 0.9)}
BRIGHTNESS_CONFIGS = {(p, b): cfg(p, bpm=110, brightness=b) for p in CONTROL_PROMPTS for b in (0.2, 0.9)}
PROMPT_CONFIGS = {p: cfg(p) for p in (AMBIENT, DNB, PIANO)}
#: Everything checked for loudness, true peak and clicks.
ALL_CONFIGS = [
    *TEMPO_CONFIGS.values(), *DENSITY_CONFIGS.values(), *BRIGHTNESS_CONFIGS.values(), *PROMPT_CONFIGS.values()
]


@pytest.fixture(scope="module")
def render_cache() -> Callable[[Config], Any]:
    """``get(config)`` → the :class:`RenderResult` of that configuration, rendered once per module."""
    from cadenza.runtime.render import render

    cache: dict[Config, Any] = {}

    def get(c: Config) -> Any:
        if c not in cache:
            prompts = [WeightedPrompt(TextPrompt(t), w) for t, w in c.prompts]
            cache[c] = render(prompts, c.controls(), c.seconds, seed=c.seed)
        return cache[c]

    return get


@pytest.fixture(scope="module")
def pcm_of(render_cache: Callable[[Config], Any]) -> Callable[[Config], np.ndarray]:
    def get(c: Config) -> np.ndarray:
        return np.asarray(render_cache(c).pcm)

    return get


# ----------------------------------------------------------------------------- (a) format and tempo


def test_render_is_48k_stereo_float32(render_cache: Callable[[Config], Any]) -> None:
    result = render_cache(TEMPO_CONFIGS[124])
    pcm = result.pcm
    assert isinstance(pcm, np.ndarray)
    assert pcm.dtype == np.float32
    assert pcm.shape == (int(SECONDS * SR), 2)
    assert np.all(np.isfinite(pcm))
    assert getattr(result, "sample_rate", SR) == SR
    # both channels carry the music, and they are not silent
    assert am.db(float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))) > -40.0


@pytest.mark.parametrize("bpm", sorted(TEMPO_CONFIGS))
def test_measured_tempo_matches_bpm(bpm: int, render_cache: Callable[[Config], Any]) -> None:
    result = render_cache(TEMPO_CONFIGS[bpm])
    est = am.tempo(result.pcm)
    err = am.tempo_error(est.bpm, bpm)
    detail = (f"bpm {bpm}: measured {est.bpm:.2f} ({err:+.2%} from nearest of {bpm / 2:g}/{bpm}/{bpm * 2:g}); "
              f"median-interval {est.median_bpm:.2f}, beat_track's own {est.tracker_bpm:.2f}, "
              f"{est.beat_times.size} beats")
    assert abs(err) <= TEMPO_TOLERANCE, detail
    # the engine's own beat list says the same thing
    engine_beats = np.array([b.seconds for b in result.beats])
    assert engine_beats.size > 0, "render returned no beats"
    period, _ = am.period_from_beats(engine_beats)
    assert 60.0 / period == pytest.approx(bpm, rel=0.005)


# ----------------------------------------------------------------------------- (b) density, (c) brightness


@pytest.mark.parametrize("prompt", CONTROL_PROMPTS)
def test_density_raises_onset_rate(prompt: str, pcm_of: Callable[[Config], np.ndarray]) -> None:
    low = am.onset_rate(pcm_of(DENSITY_CONFIGS[(prompt, 0.2)]))
    high = am.onset_rate(pcm_of(DENSITY_CONFIGS[(prompt, 0.9)]))
    assert high >= 1.25 * low, f"{prompt!r}: onsets/s density 0.2 → {low:.2f}, 0.9 → {high:.2f} (need ×1.25)"


@pytest.mark.parametrize("prompt", CONTROL_PROMPTS)
def test_brightness_raises_centroid(prompt: str, pcm_of: Callable[[Config], np.ndarray]) -> None:
    dark = pcm_of(BRIGHTNESS_CONFIGS[(prompt, 0.2)])
    bright = pcm_of(BRIGHTNESS_CONFIGS[(prompt, 0.9)])
    c_dark, c_bright = am.centroid(dark), am.centroid(bright)
    f_dark, f_bright = am.frame_centroid_mean(dark), am.frame_centroid_mean(bright)
    detail = (f"{prompt!r}: centroid brightness 0.2 → {c_dark:.0f} Hz, 0.9 → {c_bright:.0f} Hz "
              f"(frame mean {f_dark:.0f} → {f_bright:.0f} Hz)")
    assert c_bright >= 1.25 * c_dark, detail
    assert f_bright > f_dark, detail


# ----------------------------------------------------------------------------- (d) loudness and true peak


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=str)
def test_loudness_and_true_peak(config: Config, pcm_of: Callable[[Config], np.ndarray]) -> None:
    pcm = pcm_of(config)
    loudness = am.lufs(pcm)
    peak = am.true_peak_db(pcm)
    detail = f"{config}: {loudness:.2f} LUFS, true peak {peak:+.2f} dBTP (sample peak {am.sample_peak_db(pcm):+.2f})"
    assert abs(loudness - LUFS_TARGET) <= LUFS_TOLERANCE, detail
    assert peak <= TRUE_PEAK_MAX_DBTP, detail


# ----------------------------------------------------------------------------- (e) clicks


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=str)
def test_no_clicks(config: Config, pcm_of: Callable[[Config], np.ndarray]) -> None:
    report = am.click_report(pcm_of(config))
    assert not report.has_clicks, f"{config}: {report}"


def _insert(pcm: np.ndarray, positions: np.ndarray, kind: str) -> np.ndarray:
    """Steps (from the sample on) or one-sample spikes of ±0.2, alternating channels; signs alternate per channel."""
    x = pcm.astype(np.float64).copy()
    for j, i in enumerate(positions):
        sign = 1.0 if (j // 2) % 2 == 0 else -1.0
        if kind == "step":
            x[i:, j % 2] += sign * 0.2
        else:
            x[i, j % 2] += sign * 0.2
    return x


#: Renders the click detector is validated on, and the share of insertion points
#: that must be unmasked there (so the validation is never vacuous).
CLICK_VALIDATION = {AMBIENT: 0.75, PIANO: 0.75, TEMPO_PROMPT: 0.25}


@pytest.mark.parametrize("kind", ["step", "spike"])
@pytest.mark.parametrize("prompt", list(CLICK_VALIDATION))
def test_click_detector_on_real_renders(prompt: str, kind: str, pcm_of: Callable[[Config], np.ndarray]) -> None:
    """Every inserted 0.2 jump that stands out by the rule is found, and nothing else is.

    A jump is a click by the rule when it is ``CLICK_THRESHOLD`` times larger
    than the music's own largest jump within ±25 ms. Inside a loud noise burst
    (a hi-hat making jumps of 0.1–0.3 itself) a 0.2 jump is masked, by design,
    so: every insertion where the music's own local jumps are below
    0.2 / (threshold × 1.2) must be flagged, at its sample; no flag may land
    away from an insertion; and enough insertions must qualify.
    """
    clean = pcm_of(TEMPO_CONFIGS[124] if prompt == TEMPO_PROMPT else PROMPT_CONFIGS[prompt])
    positions = (np.linspace(0.5, SECONDS - 0.5, 40) * SR).astype(int) + 61
    report = am.click_report(_insert(clean, positions, kind))
    flagged = np.array([round(c.time_s * SR) for c in report.clicks])
    stray = [f for f in flagged if np.min(np.abs(positions - f)) > 1]
    assert not stray, f"flags away from insertions at {np.array(stray) / SR} s: {report}"
    w = int(am.CLICK_WINDOW_S * SR)
    must = []
    for j, i in enumerate(positions):
        ch = clean[:, j % 2].astype(np.float64)
        local = np.abs(np.diff(ch[max(0, i - w - 1) : i + w + 1])).max()
        if 0.2 > 1.2 * am.CLICK_THRESHOLD * local:
            must.append(i)
    missed = [i for i in must if flagged.size == 0 or np.min(np.abs(flagged - i)) > 1]
    share = len(must) / positions.size
    found = len(flagged) / positions.size
    assert share >= CLICK_VALIDATION[prompt], f"{prompt!r}: only {share:.0%} of positions unmasked ({found:.0%} found)"
    assert not missed, f"{prompt!r}: missed unmasked {kind}s at {np.array(missed) / SR} s ({found:.0%} found)"


# ----------------------------------------------------------------------------- (f) prompts sound different


@dataclass(frozen=True)
class Features:
    bpm: float
    onset_rate: float
    centroid: float
    bands: am.BandProfile

    def __str__(self) -> str:
        b = self.bands
        return (f"tempo {self.bpm:.1f} bpm, {self.onset_rate:.2f} onsets/s, centroid {self.centroid:.0f} Hz, "
                f"bands sub {b.db('sub'):.1f} / low {b.db('low'):.1f} / mid {b.db('mid'):.1f} / "
                f"high {b.db('high'):.1f} dB")


@pytest.fixture(scope="module")
def prompt_features(pcm_of: Callable[[Config], np.ndarray]) -> dict[str, Features]:
    out = {}
    for p, c in PROMPT_CONFIGS.items():
        pcm = pcm_of(c)
        try:
            bpm = am.tempo(pcm).bpm
        except ValueError:  # too few beats to measure: no pulse at all
            bpm = math.nan
        out[p] = Features(bpm, am.onset_rate(pcm), am.centroid(pcm), am.band_profile(pcm))
    return out


def _summary(f: dict[str, Features]) -> str:
    return "; ".join(f"{p!r}: {v}" for p, v in f.items())


def test_dnb_is_busier_and_brighter_than_ambient(prompt_features: dict[str, Features]) -> None:
    amb, dnb = prompt_features[AMBIENT], prompt_features[DNB]
    s = _summary(prompt_features)
    assert dnb.onset_rate >= 2.0 * amb.onset_rate, s
    assert dnb.bands.db("high") >= amb.bands.db("high") + 6.0, s
    assert dnb.centroid >= 1.5 * amb.centroid, s


def test_dnb_tempo_is_drum_and_bass(prompt_features: dict[str, Features]) -> None:
    # drum and bass lives at 160–180 bpm; a tracker may report the half-time feel
    bpm = prompt_features[DNB].bpm
    folded = bpm * 2 if bpm < 120 else bpm
    assert 155.0 <= folded <= 185.0, _summary(prompt_features)


def test_solo_piano_has_no_sub_and_no_drums(prompt_features: dict[str, Features]) -> None:
    piano, dnb = prompt_features[PIANO], prompt_features[DNB]
    s = _summary(prompt_features)
    assert piano.bands.sub < 0.01, s  # under -20 dB below 60 Hz
    assert piano.bands.db("high") <= dnb.bands.db("high") - 10.0, s  # no hats or snares
    assert piano.bands.high < 0.01, s


def test_each_pair_of_prompts_differs_clearly(prompt_features: dict[str, Features]) -> None:
    """Pairwise: some measured feature differs by a clear margin (×1.5 in a rate or 6 dB in a band)."""

    def vec(f: Features) -> np.ndarray:
        # units: one unit = a clear difference
        return np.array([
            math.log(max(f.onset_rate, 0.05)) / math.log(1.5),
            math.log(f.centroid) / math.log(1.5),
            f.bands.db("sub") / 6.0,
            f.bands.db("low") / 6.0,
            f.bands.db("mid") / 6.0,
            f.bands.db("high") / 6.0,
        ])

    names = list(prompt_features)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = names[i], names[j]
            diff = np.abs(vec(prompt_features[a]) - vec(prompt_features[b]))
            assert diff.max() >= 1.0, f"{a!r} vs {b!r}: largest difference {diff.max():.2f} units; " + _summary(
                prompt_features)
            # and they differ in at least two independent ways
            assert np.sum(diff >= 0.5) >= 2, f"{a!r} vs {b!r}: {np.round(diff, 2)}; " + _summary(prompt_features)


# ----------------------------------------------------------------------------- command line


def _cli(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "cadenza", "render", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
    )


@dataclass
class Done:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"cadenza render {' '.join(self.args)} → exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"


def _run_all(jobs: dict[str, tuple[str, ...]]) -> dict[str, Done]:
    """Run the CLI jobs concurrently (the machine has few cores; each pays the start-up once)."""
    procs = {k: (a, _cli(*a)) for k, a in jobs.items()}
    out = {}
    for k, (a, p) in procs.items():
        try:
            so, se = p.communicate(timeout=CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            so, se = p.communicate()
        out[k] = Done(a, p.returncode, so, se)
    return out


E2E_ARGS = ("--prompt", "dark techno:1.0", "--prompt", "ambient pads:0.3", "--bpm", "124", "--density", "0.7",
            "--brightness", "0.4", "--seconds", "30")


@pytest.fixture(scope="module")
def cli_renders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Done]]]:
    d = tmp_path_factory.mktemp("cli")
    jobs = {
        "wav": (*E2E_ARGS, "--seed", "7", "--out", str(d / "a.wav"), "--beats", str(d / "a.json")),
        "wav_again": (*E2E_ARGS, "--seed", "7", "--out", str(d / "b.wav")),
        "flac": (*E2E_ARGS, "--seed", "7", "--out", str(d / "a.flac")),
        "other_seed": (*E2E_ARGS, "--seed", "8", "--out", str(d / "c.wav")),
    }
    yield d, _run_all(jobs)


def _ok(done: Done) -> None:
    assert done.returncode == 0, str(done)
    assert "Traceback" not in done.stderr, str(done)


def test_cli_writes_48k_stereo_wav_and_flac(cli_renders: tuple[Path, dict[str, Done]]) -> None:
    import soundfile as sf

    d, done = cli_renders
    _ok(done["wav"])
    _ok(done["flac"])
    wav_info, flac_info = sf.info(str(d / "a.wav")), sf.info(str(d / "a.flac"))
    for info, fmt in ((wav_info, "WAVEX"), (flac_info, "FLAC")):  # .wav: RF64 kept as RIFF/WAV below 4 GiB
        assert info.format == fmt
        assert info.samplerate == SR
        assert info.channels == 2
        assert info.frames == int(SECONDS * SR)
    wav, _ = sf.read(str(d / "a.wav"), dtype="float64", always_2d=True)
    flac, _ = sf.read(str(d / "a.flac"), dtype="float64", always_2d=True)
    # the same audio, up to the FLAC's integer quantization (16 bit at worst)
    assert np.max(np.abs(wav - flac)) <= 2.0 / 32768, f"WAV and FLAC differ by {np.max(np.abs(wav - flac)):.2e}"
    # the CLI render meets the same level targets as the API render
    assert abs(am.lufs(wav) - LUFS_TARGET) <= LUFS_TOLERANCE
    assert am.true_peak_db(wav) <= TRUE_PEAK_MAX_DBTP + 0.1  # + a 16-bit file's rounding allowance


def _beats_from_json(doc: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(beat times in s, downbeat flags or None) from the ``--beats`` JSON, whatever its exact layout."""
    items = doc
    if isinstance(doc, dict):
        for key in ("beats", "beat_times", "times"):
            if key in doc:
                items = doc[key]
                break
        else:
            raise AssertionError(f"no beat list in --beats JSON: {json.dumps(doc)[:300]}")
    times: list[float] = []
    downs: list[bool] = []
    for it in items:
        if isinstance(it, (int, float)):
            times.append(float(it))
            continue
        t = next((it[k] for k in ("time", "seconds", "time_s", "t", "sec") if k in it), None)
        if t is None and "frame" in it:
            t = it["frame"] / SR
        assert t is not None, f"beat entry without a time: {it}"
        times.append(float(t))
        if "downbeat" in it:
            downs.append(bool(it["downbeat"]))
        elif "beat_in_bar" in it:
            downs.append(int(it["beat_in_bar"]) == 0)
    flags = np.array(downs) if len(downs) == len(times) and downs else None
    if flags is None and isinstance(doc, dict) and isinstance(doc.get("downbeats"), list):
        dt = np.array([float(x if isinstance(x, (int, float)) else x.get("time", x.get("seconds")))
                       for x in doc["downbeats"]])
        flags = np.array([np.min(np.abs(dt - t)) < 1e-3 for t in times]) if dt.size else None
    return np.array(times), flags


def test_cli_beats_json_matches_the_audio(cli_renders: tuple[Path, dict[str, Done]]) -> None:
    import soundfile as sf

    d, done = cli_renders
    _ok(done["wav"])
    doc = json.loads((d / "a.json").read_text())
    times, downbeats = _beats_from_json(doc)
    assert times.size >= 0.9 * SECONDS * 124 / 60, f"{times.size} beats in 30 s at 124 bpm"
    assert np.all(np.diff(times) > 0)
    # the grid's tempo is the asked tempo
    period, _ = am.period_from_beats(times)
    assert 60.0 / period == pytest.approx(124.0, rel=0.005)
    # bars: a downbeat every 4 beats
    assert downbeats is not None, f"no downbeat/bar info in --beats JSON: {json.dumps(doc)[:300]}"
    idx = np.flatnonzero(downbeats)
    assert idx.size >= 6 and np.all(np.diff(idx) == 4), f"downbeats at beat indices {idx[:10]}"
    # the audio agrees: the beat tracker hears the same tempo, and the beats land on onsets
    pcm, sr = sf.read(str(d / "a.wav"), dtype="float32", always_2d=True)
    measured = am.tempo(pcm, sr)
    assert abs(am.tempo_error(measured.bpm, 124.0)) <= TEMPO_TOLERANCE, f"measured {measured.bpm:.2f} bpm"
    onsets = am.onset_times(pcm, sr)
    agree = am.beat_onset_agreement(times, onsets, tolerance_s=0.05)
    offsets = [onsets[np.argmin(np.abs(onsets - t))] - t for t in times]
    assert agree >= 0.8, f"{agree:.0%} of JSON beats within 50 ms of an onset; median offset {np.median(offsets) * 1e3:.1f} ms"
    assert abs(float(np.median(offsets))) <= 0.03, f"median onset-minus-beat offset {np.median(offsets) * 1e3:.1f} ms"
    # the tracked beats sit on the JSON grid (tracker may be at half or double time)
    tracked_near = am.beat_onset_agreement(measured.beat_times, times, tolerance_s=0.05)
    assert tracked_near >= 0.45, f"{tracked_near:.0%} of tracked beats within 50 ms of a JSON beat"


# ----------------------------------------------------------------------------- (g) determinism


def test_same_seed_gives_identical_files(cli_renders: tuple[Path, dict[str, Done]]) -> None:
    d, done = cli_renders
    _ok(done["wav"])
    _ok(done["wav_again"])
    assert (d / "a.wav").read_bytes() == (d / "b.wav").read_bytes()


def test_other_seed_gives_other_audio(cli_renders: tuple[Path, dict[str, Done]]) -> None:
    import soundfile as sf

    d, done = cli_renders
    _ok(done["wav"])
    _ok(done["other_seed"])
    a, _ = sf.read(str(d / "a.wav"), dtype="float64", always_2d=True)
    c, _ = sf.read(str(d / "c.wav"), dtype="float64", always_2d=True)
    assert a.shape == c.shape
    # not a sample-level accident: the waveforms differ substantially
    diff_db = am.db(float(np.sqrt(np.mean((a - c) ** 2)))) - am.db(float(np.sqrt(np.mean(a ** 2))))
    assert diff_db > -10.0, f"seed 7 vs 8 differ by only {diff_db:.1f} dB relative to the signal"


def test_api_render_is_deterministic(render_cache: Callable[[Config], Any]) -> None:
    from cadenza.runtime.render import render

    c = cfg(TEMPO_PROMPT, bpm=124, seconds=5.0)
    first = render([WeightedPrompt(TextPrompt(TEMPO_PROMPT), 1.0)], c.controls(), c.seconds, seed=c.seed)
    again = render([WeightedPrompt(TextPrompt(TEMPO_PROMPT), 1.0)], c.controls(), c.seconds, seed=c.seed)
    other = render([WeightedPrompt(TextPrompt(TEMPO_PROMPT), 1.0)], c.controls(), c.seconds, seed=c.seed + 1)
    assert np.array_equal(first.pcm, again.pcm)
    assert not np.array_equal(first.pcm, other.pcm)


def test_render_plays_what_serve_plays() -> None:
    """One road: ``render`` is the conductor ``serve --prompt`` runs (the SetPrompts graph, controls as SetControls
    overrides, 100 Hz ticks), only ticking slower; the audio is the same, sample for sample."""
    from cadenza.runtime.backends import get_backend
    from cadenza.runtime.conductor import Conductor
    from cadenza.runtime.live import direct_graph
    from cadenza.runtime.render import render

    served = Conductor(direct_graph([(TEMPO_PROMPT, None, 1.0), (AMBIENT, None, 0.5)]), get_backend("synth"),
                       seed=SEED)
    served.overrides = {"bpm": 124.0, "density": 0.7}
    live = np.concatenate([b.pcm for b in served.run([], 3.0)])
    rendered = render([WeightedPrompt(TextPrompt(TEMPO_PROMPT), 1.0), WeightedPrompt(TextPrompt(AMBIENT), 0.5)],
                      Controls(bpm=124.0, density=0.7), 3.0, seed=SEED)
    assert rendered.pcm.shape == live.shape == (3 * SR, 2)
    assert np.array_equal(rendered.pcm, live)


# ----------------------------------------------------------------------------- (h) bad input


BAD_INPUTS = {
    "unknown-words": (("--prompt", "xyzzy qwerty"), ("xyzzy",)),
    "missing-audio-file": (("--prompt-file", "/nonexistent.wav"), ("/nonexistent.wav",)),
    "bpm-zero": (("--prompt", "dark techno", "--bpm", "0"), ("bpm", "0")),
    "bpm-nan": (("--prompt", "dark techno", "--bpm", "nan"), ("bpm", "nan")),
    "negative-weight": (("--prompt", "techno:-1"), ("-1",)),
    "unwritable-out": (("--prompt", "dark techno", "--out", "/nonexistent_dir/x.wav"), ("/nonexistent_dir",)),
}


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Done]:
    d = tmp_path_factory.mktemp("bad")
    jobs = {}
    for name, (args, _) in BAD_INPUTS.items():
        out = () if "--out" in args else ("--out", str(d / f"{name}.wav"))
        jobs[name] = (*args, "--seconds", "2", *out)
    return _run_all(jobs)


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gives_one_line_error(name: str, bad_runs: dict[str, Done]) -> None:
    done = bad_runs[name]
    _, must_name = BAD_INPUTS[name]
    assert done.returncode != 0, str(done)
    assert "Traceback" not in done.stderr, str(done)
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected a one-line error, got {len(lines)} lines\n{done}"
    for word in must_name:
        assert word.lower() in lines[0].lower(), f"error does not name {word!r}: {lines[0]!r}"
