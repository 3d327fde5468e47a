"""Audio prompts for the synth: measure a WAV/FLAC file and place it in the style space.

:func:`analyze_file` reads at most the first :data:`MAX_SECONDS` of a file (mixed
to mono, at the file's own sample rate) and measures, with NumPy only:

* an onset envelope — spectral flux of log-compressed STFT magnitudes, hop
  :data:`HOP_SECONDS` — from which it picks onsets (rate per second) and
  estimates the tempo by autocorrelation over 40–240 bpm, with a mild
  preference around 120 bpm and parabolic interpolation of the peak; the tempo
  is ``None`` when the autocorrelation peak is weak or there are hardly any
  onsets (no clear pulse);
* the spectral centroid of each frame, averaged with the frames' levels as
  weights (so a few loud hi-hats do not make a bass-heavy loop "bright"); the
  share of power below 250 Hz, 250 Hz–4 kHz and above 4 kHz from the long-term
  average spectrum; and the spectral flatness;
* the RMS level in dBFS.

:func:`style_from_features` maps those measurements to a full style vector
(dimensions it cannot hear stay :data:`.style.NEUTRAL`); :func:`embed_audio`
does both. Failures reading the file are translated into :class:`PromptError`
naming the file, here and nowhere else.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.errors import PromptError
from cadenza.runtime.audio import read_mono
from cadenza.runtime.backends.base import AudioPrompt
from cadenza.runtime.backends.synth.style import NEUTRAL, TEMPO_RANGE, vector_from

#: Only the beginning of a long file is analysed.
MAX_SECONDS = 60.0
#: Shorter files carry too little to measure.
MIN_SECONDS = 0.5
#: Onset-envelope hop (10 ms).
HOP_SECONDS = 0.01
#: STFT window length, rounded up to a power of two samples.
WINDOW_SECONDS = 0.046
#: Peak level below which a file counts as silent (about -100 dBFS).
SILENCE_PEAK = 1e-5
#: Band edges (Hz) for the low / mid / high energy fractions.
LOW_BAND_HZ = 250.0
HIGH_BAND_HZ = 4000.0
#: Normalized autocorrelation a tempo peak needs to count as a pulse.
MIN_PULSE_STRENGTH = 0.2
#: Onsets a file needs before its tempo estimate is trusted.
MIN_ONSETS_FOR_TEMPO = 3
#: Centre (bpm) and width (octaves) of the tempo prior.
TEMPO_PRIOR_BPM = 120.0
TEMPO_PRIOR_OCTAVES = 1.0

_STFT_BLOCK = 512  # frames transformed at once (bounds memory on long files)


@dataclass(frozen=True)
class AudioFeatures:
    """What :func:`analyze_file` measured (over the analysed part of the file)."""

    tempo_bpm: float | None  # None: no clear pulse
    onset_rate: float  # onsets per second
    centroid_hz: float  # spectral centroid (magnitude-weighted) per frame, averaged by frame level
    loudness_db: float  # RMS level, dBFS
    duration_s: float  # whole file
    low_band: float  # fraction of power below LOW_BAND_HZ
    mid_band: float  # fraction of power between the band edges
    high_band: float  # fraction of power above HIGH_BAND_HZ
    pulse_strength: float = 0.0  # normalized autocorrelation at the tempo peak (0 … 1)
    flatness: float = 0.0  # spectral flatness, 0 tonal … ~0.56 white noise
    analyzed_s: float = 0.0  # seconds actually analysed (<= MAX_SECONDS)
    sample_rate: int = 0


# --------------------------------------------------------------------------- spectra


@dataclass(frozen=True)
class _Spectra:
    flux: np.ndarray  # onset envelope, one value per hop
    mean_power: np.ndarray  # long-term average power spectrum
    centroid_hz: float
    freqs: np.ndarray
    flatness: float
    hop: int


def _spectra(x: np.ndarray, rate: int) -> _Spectra:
    hop = max(1, round(HOP_SECONDS * rate))
    n_fft = 1 << max(6, math.ceil(math.log2(WINDOW_SECONDS * rate)))
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    n_frames = 1 + (x.size - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n_frames]
    window = np.hanning(n_fft)
    scale = 2.0 / window.sum()  # a full-scale sine peaks near 1
    bins = n_fft // 2 + 1
    power_sum = np.zeros(bins)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / rate)
    centroid_sum = 0.0
    centroid_weight = 0.0
    flux = np.zeros(n_frames)
    flatness_sum = 0.0
    flatness_weight = 0.0
    previous: np.ndarray | None = None
    for start in range(0, n_frames, _STFT_BLOCK):
        block = frames[start : start + _STFT_BLOCK] * window
        magnitude = np.abs(np.fft.rfft(block, axis=1)) * scale
        power = magnitude**2
        power_sum += power.sum(axis=0)
        frame_magnitude = magnitude.sum(axis=1)
        frame_level = np.sqrt(power.sum(axis=1))  # frames count by their level
        sounding = frame_magnitude > 0.0
        centroids = (magnitude[sounding] @ freqs) / frame_magnitude[sounding]
        centroid_sum += float((centroids * frame_level[sounding]).sum())
        centroid_weight += float(frame_level[sounding].sum())
        compressed = np.log1p(1000.0 * magnitude)
        if previous is not None:
            compressed_prev = np.vstack([previous[None, :], compressed[:-1]])
        else:
            compressed_prev = np.vstack([compressed[:1], compressed[:-1]])
        flux[start : start + len(block)] = np.maximum(compressed - compressed_prev, 0.0).mean(axis=1)
        previous = compressed[-1]
        frame_power = power.mean(axis=1)
        audible = frame_power > 1e-12
        if np.any(audible):
            p = power[audible] + 1e-20
            geometric = np.exp(np.log(p).mean(axis=1))
            flatness_sum += float((geometric / p.mean(axis=1) * frame_power[audible]).sum())
            flatness_weight += float(frame_power[audible].sum())
    flatness = flatness_sum / flatness_weight if flatness_weight > 0 else 0.0
    centroid = centroid_sum / centroid_weight if centroid_weight > 0 else 0.0
    return _Spectra(flux, power_sum / n_frames, centroid, freqs, flatness, hop)


# --------------------------------------------------------------------------- onsets and tempo


def _running_median(x: np.ndarray, half: int) -> np.ndarray:
    padded = np.pad(x, half, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


def _running_max(x: np.ndarray, half: int) -> np.ndarray:
    padded = np.pad(x, half, mode="constant", constant_values=-np.inf)
    return np.max(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


def _onsets(flux: np.ndarray, hop_s: float) -> np.ndarray:
    """Frame indices of onsets: local maxima well above the local median of the envelope."""
    if flux.size < 3 or not np.any(flux > 0):
        return np.zeros(0, dtype=np.int64)
    median = _running_median(flux, max(1, round(0.25 / hop_s)))
    spread = float(np.median(np.abs(flux - np.median(flux))))
    floor = 0.1 * float(np.percentile(flux, 99.5)) + 1e-3
    threshold = median + 4.0 * spread + floor
    peaks = (flux >= _running_max(flux, max(1, round(0.03 / hop_s)))) & (flux > threshold)
    return np.flatnonzero(peaks)


def _tempo(flux: np.ndarray, hop_s: float) -> tuple[float | None, float]:
    """(bpm or None, pulse strength) from the autocorrelation of the onset envelope."""
    env = flux - flux.mean()
    n = env.size
    energy = float(np.dot(env, env))
    min_lag = max(2, math.floor(60.0 / (TEMPO_RANGE[1] * hop_s)))
    max_lag = min(math.ceil(60.0 / (TEMPO_RANGE[0] * hop_s)), n // 2)
    if energy <= 0.0 or max_lag <= min_lag + 2:
        return None, 0.0
    size = 1 << math.ceil(math.log2(2 * n))
    spectrum = np.fft.rfft(env, size)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, size)[: max_lag + 2] / energy
    acf = acf * n / (n - np.arange(acf.size))  # unbiased: long lags see fewer products
    lags = np.arange(min_lag, max_lag + 1)
    bpm = 60.0 / (lags * hop_s)
    prior = np.exp(-0.5 * (np.log2(bpm / TEMPO_PRIOR_BPM) / TEMPO_PRIOR_OCTAVES) ** 2)
    k = int(np.argmax(acf[lags] * (0.5 + 0.5 * prior)))
    lag = int(lags[k])
    strength = float(acf[lag])
    significance = max(MIN_PULSE_STRENGTH, 4.0 / math.sqrt(n))
    if strength < significance:
        return None, max(strength, 0.0)
    a, b, c = float(acf[lag - 1]), float(acf[lag]), float(acf[lag + 1])
    denominator = a - 2.0 * b + c
    offset = 0.5 * (a - c) / denominator if denominator < 0 else 0.0
    exact = lag + float(np.clip(offset, -0.5, 0.5))
    tempo = float(np.clip(60.0 / (exact * hop_s), *TEMPO_RANGE))
    return tempo, min(strength, 1.0)


# --------------------------------------------------------------------------- public API


def analyze_file(path: AudioPrompt | str | os.PathLike[str]) -> AudioFeatures:
    """Measure an audio prompt (its file, or the bytes read from it); :class:`PromptError` naming the file when
    it cannot."""
    prompt = path if isinstance(path, AudioPrompt) else AudioPrompt(Path(path))
    p = prompt.path
    x, rate, duration = read_mono(p, prompt.data, MAX_SECONDS)
    analyzed = x.size / rate
    if analyzed < MIN_SECONDS:
        raise PromptError(
            f"audio prompt {str(p)!r} is too short ({analyzed:.2f} s); at least {MIN_SECONDS:g} s is needed"
        )
    peak = float(np.max(np.abs(x)))
    if peak < SILENCE_PEAK:
        raise PromptError(f"audio prompt {str(p)!r} is silent (peak {peak:.1e}); give a file with audible sound")
    rms = math.sqrt(float(np.mean(x * x)))
    loudness_db = 20.0 * math.log10(max(rms, 1e-12))

    spectra = _spectra(x / peak, rate)  # level-independent onset detection
    hop_s = spectra.hop / rate
    onsets = _onsets(spectra.flux, hop_s)
    tempo, strength = _tempo(spectra.flux, hop_s)
    if onsets.size < MIN_ONSETS_FOR_TEMPO:  # a periodic ripple on a steady tone is no pulse
        tempo = None

    power = spectra.mean_power
    total = float(power.sum())
    low = float(power[spectra.freqs < LOW_BAND_HZ].sum()) / total
    high = float(power[spectra.freqs >= HIGH_BAND_HZ].sum()) / total
    return AudioFeatures(
        tempo_bpm=tempo,
        onset_rate=onsets.size / analyzed,
        centroid_hz=spectra.centroid_hz,
        loudness_db=loudness_db,
        duration_s=duration,
        low_band=low,
        mid_band=max(0.0, 1.0 - low - high),
        high_band=high,
        pulse_strength=strength,
        flatness=float(spectra.flatness),
        analyzed_s=analyzed,
        sample_rate=rate,
    )


def _unit(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def _log_scale(value: float, low: float, high: float) -> float:
    """0 at ``low``, 1 at ``high``, logarithmic in between, clamped."""
    if value <= 0.0:
        return 0.0
    return _unit(math.log(value / low) / math.log(high / low))


def style_from_features(f: AudioFeatures) -> np.ndarray:
    """A full style vector for measured features (unheard dimensions stay neutral).

    * tempo: the estimate (neutral when no pulse was found);
    * energy: onset rate, log-scaled: 0.5 onsets/s → 0.1, 8/s → 1.0;
    * brightness: centroid, log-scaled between 300 Hz (0) and 5 kHz (1);
    * drums: onset rate, high-band share and pulse strength (halved without a pulse);
    * bass: low-band share; texture: spectral flatness (noise-like sound);
    * pads: sustained sound — few onsets and a strong mid band.
    """
    rate_level = _log_scale(f.onset_rate, 0.5, 8.0)  # 0 at 0.5/s, 1 at 8/s
    energy = 0.1 + 0.9 * rate_level if f.onset_rate >= 0.5 else 0.1 * f.onset_rate / 0.5
    drums = 0.5 * rate_level + 0.2 * _unit(f.high_band / 0.25)
    if f.tempo_bpm is None:
        drums *= 0.5
    else:
        drums += 0.3 * f.pulse_strength
    values: dict[str, float] = {
        "tempo": f.tempo_bpm if f.tempo_bpm is not None else NEUTRAL["tempo"],
        "energy": _unit(energy),
        "brightness": _log_scale(f.centroid_hz, 300.0, 5000.0),
        "drums": _unit(drums),
        "bass": _unit((f.low_band - 0.05) / 0.45),
        "pads": _unit((1.0 - rate_level) * f.mid_band * 1.5),
        "texture": _unit((f.flatness - 0.05) / 0.4),
    }
    return vector_from(values)


def embed_audio(path: AudioPrompt | str | os.PathLike[str]) -> np.ndarray:
    """The style vector of an audio prompt file (:func:`analyze_file` then :func:`style_from_features`)."""
    return style_from_features(analyze_file(path))


__all__ = [
    "AudioFeatures",
    "analyze_file",
    "embed_audio",
    "style_from_features",
]
