"""The measurement functions of ``audio_metrics`` checked on synthetic signals with known answers.

The acceptance tests of the synth render (``test_render_quality.py``) are only
as good as these measurements, so each one is pinned here first: a click track
at a known bpm, sines at known levels and frequencies, a step inserted at a
known sample.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audio_metrics as am  # noqa: E402

SR = am.SR


def click_track(bpm: float, seconds: float = 20.0, sr: int = SR, seed: int = 0, amp: float = 0.5) -> np.ndarray:
    """Short decaying noise bursts every beat, starting at 0.05 s (stereo)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    y = np.zeros(n)
    length = int(0.03 * sr)
    env = np.exp(-np.arange(length) / (0.004 * sr))
    t = 0.05
    while t < seconds - 0.05:
        i = int(round(t * sr))
        m = min(length, n - i)
        y[i : i + m] += (rng.standard_normal(length) * env * amp)[:m]
        t += 60.0 / bpm
    return np.stack([y, y], axis=1)


def sine(freq: float, peak: float, seconds: float = 5.0, sr: int = SR, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return peak * np.sin(2 * np.pi * freq * t + phase)


def stereo(x: np.ndarray) -> np.ndarray:
    return np.stack([x, x], axis=1)


# ----------------------------------------------------------------------------- tempo


@pytest.mark.parametrize("bpm", [70, 100, 124, 160])
def test_tempo_of_click_track(bpm: float) -> None:
    est = am.tempo(click_track(bpm))
    err = am.tempo_error(est.bpm, bpm)
    assert abs(err) < 0.005, f"click track at {bpm} bpm measured {est.bpm:.2f} ({err:+.2%})"
    # the plain median interval is coarser (one hop), but also close
    assert abs(am.tempo_error(est.median_bpm, bpm)) < 0.02


def test_tempo_error_accepts_half_and_double_time() -> None:
    assert am.tempo_error(140.0, 70.0) == pytest.approx(0.0)
    assert am.tempo_error(80.0, 160.0) == pytest.approx(0.0)
    assert am.tempo_error(68.1, 70.0) == pytest.approx(-0.02714, abs=1e-4)
    assert abs(am.tempo_error(93.0, 124.0)) > 0.2  # 3/4 time is an error


def test_period_from_beats_survives_a_skipped_beat() -> None:
    times = np.arange(40) * 0.5 + 0.1
    times = np.delete(times, [7, 21])  # the tracker missed two beats
    period, median = am.period_from_beats(times)
    assert period == pytest.approx(0.5, rel=1e-9)
    assert median == pytest.approx(0.5)


def test_tempo_needs_beats() -> None:
    with pytest.raises(ValueError, match="at least 3 beats"):
        am.period_from_beats(np.array([0.0, 0.5]))


# ----------------------------------------------------------------------------- onsets


@pytest.mark.parametrize("bpm, per_beat", [(120, 1), (120, 4)])
def test_onset_rate_of_click_track(bpm: float, per_beat: int) -> None:
    expected = bpm / 60.0 * per_beat
    rate = am.onset_rate(click_track(bpm * per_beat, seconds=10.0))
    assert rate == pytest.approx(expected, rel=0.05)


def test_beat_onset_agreement() -> None:
    beats = np.array([1.0, 2.0, 3.0, 4.0])
    onsets = np.array([0.99, 2.03, 3.2, 4.0, 7.0])
    assert am.beat_onset_agreement(beats, onsets, 0.05) == pytest.approx(0.75)
    assert am.beat_onset_agreement(beats, np.array([]), 0.05) == 0.0


# ----------------------------------------------------------------------------- spectrum


def test_centroid_of_a_sine_is_its_frequency() -> None:
    assert am.centroid(sine(1000.0, 0.5)) == pytest.approx(1000.0, rel=0.03)
    assert am.frame_centroid_mean(sine(1000.0, 0.5)) == pytest.approx(1000.0, rel=0.03)


def test_centroid_orders_dark_and_bright_noise() -> None:
    from scipy.signal import butter, sosfilt

    noise = np.random.default_rng(3).standard_normal(5 * SR) * 0.1
    dark = sosfilt(butter(4, 800, "low", fs=SR, output="sos"), noise)
    bright = sosfilt(butter(4, 3000, "high", fs=SR, output="sos"), noise)
    c_dark, c_bright = am.centroid(dark), am.centroid(bright)
    assert c_dark < 1500 < 5000 < c_bright
    # silence in between does not drag the magnitude-weighted centroid
    gap = np.concatenate([dark, np.zeros(10 * SR)])
    assert am.centroid(gap) == pytest.approx(c_dark, rel=0.02)


@pytest.mark.parametrize(
    "freq, band", [(40.0, "sub"), (100.0, "low"), (1000.0, "mid"), (8000.0, "high")]
)
def test_band_profile_puts_a_sine_in_its_band(freq: float, band: str) -> None:
    p = am.band_profile(stereo(sine(freq, 0.3)))
    assert getattr(p, band) > 0.99
    assert p.low + p.mid + p.high == pytest.approx(1.0, abs=1e-9)
    if band == "sub":
        assert p.low > 0.99
    else:
        assert p.sub < 0.01


# ----------------------------------------------------------------------------- level


def test_lufs_of_a_997_hz_sine() -> None:
    # BS.1770: a 997 Hz sine at 0 dBFS peak in one channel reads -3.01 LKFS;
    # the same sine in both channels adds 3.01 dB, so stereo LUFS = peak dBFS.
    x = sine(997.0, 10 ** (-20 / 20), seconds=10.0)
    assert am.lufs(stereo(x)) == pytest.approx(-20.0, abs=0.1)
    assert am.lufs(np.stack([x, np.zeros_like(x)], axis=1)) == pytest.approx(-23.01, abs=0.1)
    assert am.lufs(stereo(x * 2.0)) == pytest.approx(-20.0 + 6.02, abs=0.1)


def test_true_peak_sees_inter_sample_peaks() -> None:
    # a sine at fs/4 sampled at 45° never hits its crest: samples are ±0.707
    # (faded in and out: an abrupt start rings in any interpolation filter)
    fade = np.ones(SR)
    fade[:1000], fade[-1000:] = np.hanning(2000)[:1000], np.hanning(2000)[1000:]
    x = stereo(sine(SR / 4, 1.0, seconds=1.0, phase=math.pi / 4) * fade)
    assert am.sample_peak_db(x) == pytest.approx(-3.01, abs=0.01)
    assert am.true_peak_db(x) == pytest.approx(0.0, abs=0.05)
    # a low sine's true peak is its sample peak
    y = stereo(sine(997.0, 0.5, seconds=1.0))
    assert am.true_peak_db(y) == pytest.approx(am.db(0.5), abs=0.05)


# ----------------------------------------------------------------------------- clicks


def sine_and_noise(seconds: float = 10.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    left = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t) + 1e-3 * rng.standard_normal(t.size)
    right = 0.3 * np.sin(2 * np.pi * 110 * t + 1.0) + 1e-3 * rng.standard_normal(t.size)
    return np.stack([left, right], axis=1)


def test_forward_max_matches_brute_force() -> None:
    a = np.random.default_rng(0).random(1000)
    for m in (1, 3, 7, 64):
        fast = am._forward_max(a, m)
        slow = np.array([a[i : i + m].max() for i in range(a.size)])
        np.testing.assert_array_equal(fast, slow)


def test_clean_sine_and_noise_has_no_clicks() -> None:
    report = am.click_report(sine_and_noise())
    assert not report.has_clicks, str(report)
    assert report.worst_ratio < 2.0, str(report)


@pytest.mark.parametrize("at_s, channel", [(0.5, 0), (3.3333, 1), (9.9, 0)])
def test_inserted_step_is_a_click(at_s: float, channel: int) -> None:
    x = sine_and_noise()
    i = int(at_s * SR)
    x[i:, channel] += 0.2  # a 0.2 step between samples i-1 and i
    report = am.click_report(x)
    assert len(report.clicks) == 1, str(report)
    click = report.clicks[0]
    assert click.channel == channel
    assert click.time_s == pytest.approx(i / SR, abs=1 / SR)
    assert click.ratio > 2 * am.CLICK_THRESHOLD


def test_single_sample_spike_is_one_click() -> None:
    x = sine_and_noise()
    i = int(4.0 * SR)
    x[i, 1] += 0.2
    report = am.click_report(x)
    assert len(report.clicks) == 1, str(report)
    assert report.clicks[0].time_s == pytest.approx(i / SR, abs=2 / SR)


def test_click_in_silence_counts_but_a_sub_audible_one_does_not() -> None:
    x = np.zeros((SR, 2))
    x[SR // 2 :, 0] = 0.01  # -40 dBFS step: 10x the floor
    assert am.click_report(x).has_clicks
    x = np.zeros((SR, 2))
    x[SR // 2 :, 0] = 2e-3  # -54 dBFS: under threshold x floor
    assert not am.click_report(x).has_clicks


def test_music_transients_are_not_clicks() -> None:
    # noise bursts with an instant attack (hats, snares) and naive square-wave
    # edges (a chip bass at 55 Hz) are large jumps, but never isolated ones
    x = click_track(240, seconds=5.0, amp=0.4)
    t = np.arange(x.shape[0]) / SR
    square = 0.2 * np.sign(np.sin(2 * np.pi * 55 * t + 0.1))
    x = x + square[:, None]
    report = am.click_report(x)
    assert not report.has_clicks, str(report)


def test_cut_off_voice_is_a_click() -> None:
    # a 200 Hz tone that stops dead at its crest: the classic envelope bug
    t = np.arange(SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 200 * t)
    stop = int(0.5 * SR) + int(SR / 800)  # a quarter period past a zero: the crest
    tone[stop:] = 0.0
    report = am.click_report(stereo(tone))
    assert report.has_clicks
    assert report.clicks[0].time_s == pytest.approx(stop / SR, abs=1 / SR)
