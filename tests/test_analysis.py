"""Audio prompts: signal analysis of WAV/FLAC files into the synth's style space."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cadenza.errors import PromptError
from cadenza.runtime.backends.synth.analysis import (
    MAX_SECONDS,
    AudioFeatures,
    analyze_file,
    embed_audio,
    style_from_features,
)
from cadenza.runtime.backends.synth.style import NEUTRAL, STYLE_DIM, StyleView

SR = 48_000


def click_track(
    period_s: float, seconds: float = 10.0, rate: int = SR, amplitude: float = 0.8, seed: int = 0
) -> np.ndarray:
    """Short decaying noise bursts every ``period_s`` seconds."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * rate))
    n = int(0.03 * rate)
    burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.005 * rate)) * amplitude
    for start in np.arange(0.0, seconds, period_s):
        i = int(round(start * rate))
        if i + n <= x.size:
            x[i : i + n] += burst
    return x


def sine(freq: float, seconds: float = 5.0, rate: int = SR, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def write(path: Path, x: np.ndarray, rate: int = SR) -> Path:
    sf.write(str(path), x, rate)
    return path


def assert_tempo(bpm: float | None, expected: float) -> None:
    assert bpm is not None
    candidates = [expected, expected / 2, expected * 2]
    assert any(abs(bpm - c) <= 0.02 * c for c in candidates), bpm


# --------------------------------------------------------------------------- tempo and onsets


def test_click_track_at_120_bpm(tmp_path: Path) -> None:
    f = analyze_file(write(tmp_path / "clicks.wav", click_track(0.5)))
    assert_tempo(f.tempo_bpm, 120.0)
    assert f.pulse_strength > 0.5
    assert f.onset_rate == pytest.approx(2.0, abs=0.3)
    assert f.duration_s == pytest.approx(10.0)
    assert f.sample_rate == SR


@pytest.mark.parametrize("bpm", [90.0, 137.0, 174.0])
def test_other_tempos(tmp_path: Path, bpm: float) -> None:
    f = analyze_file(write(tmp_path / "clicks.wav", click_track(60.0 / bpm)))
    assert_tempo(f.tempo_bpm, bpm)


def test_flac_stereo_at_44k1(tmp_path: Path) -> None:
    mono = click_track(0.5, rate=44_100)
    stereo = np.stack([mono, 0.5 * mono], axis=1)
    f = analyze_file(write(tmp_path / "clicks.flac", stereo, rate=44_100))
    assert_tempo(f.tempo_bpm, 120.0)
    assert f.sample_rate == 44_100


def test_level_does_not_change_the_pulse(tmp_path: Path) -> None:
    loud = analyze_file(write(tmp_path / "loud.wav", click_track(0.5, amplitude=0.8)))
    quiet = analyze_file(write(tmp_path / "quiet.wav", click_track(0.5, amplitude=0.002)))
    assert quiet.loudness_db < loud.loudness_db - 40
    assert_tempo(quiet.tempo_bpm, 120.0)
    assert quiet.onset_rate == pytest.approx(loud.onset_rate, abs=0.2)


def test_steady_sounds_have_no_pulse(tmp_path: Path) -> None:
    noise = np.random.default_rng(3).standard_normal(10 * SR) * 0.3
    assert analyze_file(write(tmp_path / "noise.wav", noise)).tempo_bpm is None
    tone = analyze_file(write(tmp_path / "tone.wav", sine(220.0, seconds=10.0)))
    assert tone.tempo_bpm is None
    assert tone.onset_rate < 0.5


def test_denser_clicks_mean_more_energy(tmp_path: Path) -> None:
    sparse = analyze_file(write(tmp_path / "sparse.wav", click_track(0.5)))
    dense = analyze_file(write(tmp_path / "dense.wav", click_track(0.125)))
    assert dense.onset_rate == pytest.approx(8.0, abs=0.8)
    assert dense.onset_rate > 3 * sparse.onset_rate
    assert StyleView(style_from_features(dense)).energy > StyleView(style_from_features(sparse)).energy + 0.3


# --------------------------------------------------------------------------- spectrum


def test_bright_file_is_brighter_than_dark_file(tmp_path: Path) -> None:
    bright = analyze_file(write(tmp_path / "noise.wav", np.random.default_rng(1).standard_normal(5 * SR) * 0.3))
    dark = analyze_file(write(tmp_path / "low.wav", sine(100.0)))
    assert dark.centroid_hz == pytest.approx(100.0, rel=0.1)
    assert bright.centroid_hz > 5000.0
    vb, vd = StyleView(style_from_features(bright)), StyleView(style_from_features(dark))
    assert vb.brightness > vd.brightness + 0.5
    assert vd.bass > vb.bass + 0.5
    assert vb.texture > vd.texture  # noise reads as texture


def test_high_sine_is_bright(tmp_path: Path) -> None:
    high = analyze_file(write(tmp_path / "high.wav", sine(6000.0)))
    low = analyze_file(write(tmp_path / "low.wav", sine(100.0)))
    assert high.centroid_hz == pytest.approx(6000.0, rel=0.05)
    assert high.high_band > 0.9 and low.low_band > 0.9
    assert StyleView(style_from_features(high)).brightness > StyleView(style_from_features(low)).brightness


def test_band_fractions_and_loudness(tmp_path: Path) -> None:
    f = analyze_file(write(tmp_path / "mix.wav", sine(100.0, amplitude=0.5) + sine(1000.0, amplitude=0.5)))
    assert f.low_band + f.mid_band + f.high_band == pytest.approx(1.0)
    assert f.low_band == pytest.approx(0.5, abs=0.05)
    assert f.mid_band == pytest.approx(0.5, abs=0.05)
    # two uncorrelated sines of amplitude 0.5: RMS = 0.5 → -6 dBFS
    assert f.loudness_db == pytest.approx(-6.02, abs=0.2)


def test_only_the_first_minute_is_analysed(tmp_path: Path) -> None:
    rate = 8_000
    long = np.tile(click_track(0.5, seconds=10.0, rate=rate), 7)
    f = analyze_file(write(tmp_path / "long.wav", long, rate=rate))
    assert f.duration_s == pytest.approx(70.0)
    assert f.analyzed_s == pytest.approx(MAX_SECONDS)
    assert_tempo(f.tempo_bpm, 120.0)


# --------------------------------------------------------------------------- mapping to the style space


BASE = AudioFeatures(
    tempo_bpm=None, onset_rate=1.0, centroid_hz=1000.0, loudness_db=-20.0, duration_s=10.0,
    low_band=0.3, mid_band=0.5, high_band=0.2,
)  # fmt: skip


def features(**overrides: float | None) -> AudioFeatures:
    return replace(BASE, **overrides)


def test_energy_is_log_scaled_onset_rate() -> None:
    assert StyleView(style_from_features(features(onset_rate=0.5))).energy == pytest.approx(0.1)
    assert StyleView(style_from_features(features(onset_rate=8.0))).energy == pytest.approx(1.0)
    assert StyleView(style_from_features(features(onset_rate=2.0))).energy == pytest.approx(0.55)
    assert StyleView(style_from_features(features(onset_rate=0.0))).energy == 0.0


def test_brightness_is_log_scaled_centroid() -> None:
    assert StyleView(style_from_features(features(centroid_hz=300.0))).brightness == pytest.approx(0.0)
    assert StyleView(style_from_features(features(centroid_hz=5000.0))).brightness == pytest.approx(1.0)
    middle = StyleView(style_from_features(features(centroid_hz=float(np.sqrt(300.0 * 5000.0))))).brightness
    assert middle == pytest.approx(0.5)


def test_tempo_dimension_follows_the_estimate() -> None:
    assert StyleView(style_from_features(features(tempo_bpm=128.0))).tempo == 128.0
    assert StyleView(style_from_features(features(tempo_bpm=None))).tempo == NEUTRAL["tempo"]


def test_drums_follow_pulse_and_onsets() -> None:
    groove_features = features(tempo_bpm=124.0, onset_rate=6.0, pulse_strength=0.9, high_band=0.3)
    groove = StyleView(style_from_features(groove_features))
    drone = StyleView(style_from_features(features(tempo_bpm=None, onset_rate=0.1, high_band=0.05)))
    assert groove.drums > 0.8
    assert drone.drums < 0.1


def test_embed_audio_returns_a_full_vector(tmp_path: Path) -> None:
    path = write(tmp_path / "clicks.wav", click_track(0.5))
    v = embed_audio(path)
    assert v.shape == (STYLE_DIM,)
    np.testing.assert_array_equal(v, style_from_features(analyze_file(str(path))))
    view = StyleView(v)
    assert view.tempo == pytest.approx(120.0, rel=0.02)
    assert view.space == NEUTRAL["space"]
    assert np.all((np.delete(v, 0) >= 0.0) & (np.delete(v, 0) <= 1.0))


# --------------------------------------------------------------------------- errors name the file


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.wav"
    with pytest.raises(PromptError, match=r"audio prompt file not found: '.*nope\.wav'"):
        analyze_file(path)


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(PromptError, match=r"cannot read audio prompt '.*notes\.wav': ") as info:
        analyze_file(path)
    assert isinstance(info.value.__cause__, sf.SoundFileError)


def test_silent_file(tmp_path: Path) -> None:
    path = write(tmp_path / "silence.wav", np.zeros(2 * SR))
    with pytest.raises(PromptError, match=r"audio prompt '.*silence\.wav' is silent"):
        embed_audio(path)


def test_too_short_file(tmp_path: Path) -> None:
    path = write(tmp_path / "blip.wav", sine(440.0, seconds=0.2))
    with pytest.raises(PromptError, match=r"audio prompt '.*blip\.wav' is too short \(0\.20 s\)"):
        analyze_file(path)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    with pytest.raises(PromptError, match="folder.wav"):
        analyze_file(folder)
