"""Audio measurements for the acceptance tests, taken from the signal with standard tools.

Every function takes ``pcm`` as float audio shaped ``(frames,)`` or
``(frames, channels)`` plus its sample rate, and returns plain numbers (or a
small dataclass), so a failing test can print what was measured.

=================  ===========================================================
function           what it measures
=================  ===========================================================
:func:`tempo`      bpm from ``librosa.beat.beat_track`` beats: the period is the
                   least-squares slope of beat time against beat index (a beat
                   the tracker skipped counts as the whole number of periods
                   it spans, judged against the median inter-beat interval)
:func:`onset_rate` ``librosa.onset.onset_detect`` onsets per second
:func:`centroid`   spectral centroid in Hz of the time-averaged magnitude
                   spectrum (= per-frame centroids weighted by frame magnitude)
:func:`band_profile` fraction of the power below 60 Hz, below 150 Hz, in
                   150 Hz–4 kHz and above 4 kHz (Welch PSD, channels summed)
:func:`lufs`       integrated loudness, ``pyloudnorm.Meter(sr)`` (ITU-R BS.1770-4)
:func:`true_peak_db` BS.1770-4 Annex 2 true peak: 4× oversampling with
                   ``scipy.signal.resample_poly``, max abs, in dBTP
:func:`click_report` isolated sample-to-sample jumps (see its docstring)
=================  ===========================================================

Only numpy, scipy, librosa and pyloudnorm are used; nothing here imports Cadenza.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

SR = 48_000

#: Band edges of :func:`band_profile`, Hz.
SUB_HZ = 60.0
LOW_HZ = 150.0
HIGH_HZ = 4000.0

#: :func:`click_report` defaults (see there).
CLICK_THRESHOLD = 4.0
CLICK_WINDOW_S = 0.025
CLICK_GUARD = 2
CLICK_FLOOR = 1e-3


# ----------------------------------------------------------------------------- helpers


def as_2d(pcm: np.ndarray) -> np.ndarray:
    """``pcm`` as float64 ``(frames, channels)``."""
    x = np.asarray(pcm, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"pcm must be (frames,) or (frames, channels), got shape {x.shape}")
    return x


def mono(pcm: np.ndarray) -> np.ndarray:
    """The mean of the channels, float32 (what librosa analyses)."""
    return as_2d(pcm).mean(axis=1).astype(np.float32)


def db(x: float) -> float:
    """20·log10(x), -inf for 0."""
    return 20.0 * math.log10(x) if x > 0 else -math.inf


# ----------------------------------------------------------------------------- tempo


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float  # from the least-squares beat period
    median_bpm: float  # 60 / median inter-beat interval
    beat_times: np.ndarray  # seconds
    tracker_bpm: float  # what beat_track itself reports (tempogram-based, coarse)


def beat_times(pcm: np.ndarray, sr: int = SR, hop: int = 512) -> tuple[np.ndarray, float]:
    """Beat times (s) from ``librosa.beat.beat_track`` on the mono mix, and its own bpm.

    The tracker runs with librosa's defaults (hop 512, start_bpm 120, its
    tempogram prior) at the file's own rate; no parameter is tuned to Cadenza.
    """
    import librosa

    y = mono(pcm)
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    bpm, frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop)
    times = librosa.frames_to_time(frames, sr=sr, hop_length=hop)
    return np.asarray(times, dtype=np.float64), float(np.atleast_1d(bpm)[0])


def period_from_beats(times: np.ndarray) -> tuple[float, float]:
    """(least-squares period, median inter-beat interval) of beat times, in seconds.

    The median inter-beat interval picks the period roughly (to one analysis
    hop); each interval then counts as ``round(interval / median)`` periods, so
    a skipped beat does not bend the fit, and the slope of time against the
    cumulative beat index gives the period to a small fraction of a hop.
    """
    t = np.asarray(times, dtype=np.float64)
    if t.size < 3:
        raise ValueError(f"need at least 3 beats to measure a tempo, got {t.size}")
    ibi = np.diff(t)
    med = float(np.median(ibi))
    steps = np.maximum(1, np.round(ibi / med)).astype(np.int64)
    k = np.concatenate([[0], np.cumsum(steps)]).astype(np.float64)
    slope, _ = np.polyfit(k, t, 1)
    return float(slope), med


def tempo(pcm: np.ndarray, sr: int = SR, hop: int = 512) -> TempoEstimate:
    """Tempo of ``pcm`` measured by librosa's beat tracker (see module docstring)."""
    times, tracker_bpm = beat_times(pcm, sr, hop)
    period, med = period_from_beats(times)
    return TempoEstimate(60.0 / period, 60.0 / med, times, tracker_bpm)


def tempo_error(measured_bpm: float, target_bpm: float) -> float:
    """Relative error of ``measured_bpm`` against the nearest of target, target/2, target×2.

    Signed: ``-0.027`` means 2.7 % slow. Beat trackers legitimately lock to
    half or double time (the metrical-level ambiguity), which is not an error.
    """
    candidates = [target_bpm, target_bpm / 2.0, target_bpm * 2.0]
    errors = [(measured_bpm - c) / c for c in candidates]
    return min(errors, key=abs)


# ----------------------------------------------------------------------------- onsets


def onset_times(pcm: np.ndarray, sr: int = SR, hop: int = 512) -> np.ndarray:
    """Onset times (s) from ``librosa.onset.onset_detect`` on the mono mix, default peak picking."""
    import librosa

    y = mono(pcm)
    return np.asarray(librosa.onset.onset_detect(y=y, sr=sr, hop_length=hop, units="time"), dtype=np.float64)


def onset_rate(pcm: np.ndarray, sr: int = SR, hop: int = 512) -> float:
    """Detected onsets per second."""
    n = as_2d(pcm).shape[0]
    return float(onset_times(pcm, sr, hop).size / (n / sr))


def beat_onset_agreement(beats: np.ndarray, onsets: np.ndarray, tolerance_s: float = 0.05) -> float:
    """Fraction of ``beats`` with an onset within ``tolerance_s`` (0 when there are no beats)."""
    b = np.asarray(beats, dtype=np.float64)
    o = np.sort(np.asarray(onsets, dtype=np.float64))
    if b.size == 0:
        return 0.0
    if o.size == 0:
        return 0.0
    i = np.clip(np.searchsorted(o, b), 1, o.size - 1) if o.size > 1 else np.zeros(b.size, dtype=int)
    nearest = np.minimum(np.abs(o[i] - b), np.abs(o[np.maximum(i - 1, 0)] - b))
    return float(np.mean(nearest <= tolerance_s))


# ----------------------------------------------------------------------------- spectrum


def centroid(pcm: np.ndarray, sr: int = SR, n_fft: int = 2048, hop: int = 512) -> float:
    """Spectral centroid (Hz) of the time-averaged STFT magnitude of the mono mix.

    Equal to the mean of ``librosa.feature.spectral_centroid`` frames weighted
    by each frame's total magnitude, so silent frames (whose centroid is noise)
    do not count.
    """
    import librosa

    s = np.abs(librosa.stft(mono(pcm), n_fft=n_fft, hop_length=hop))
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    spectrum = s.sum(axis=1)
    total = float(spectrum.sum())
    if total <= 0.0:
        return 0.0
    return float((freqs * spectrum).sum() / total)


def frame_centroid_mean(pcm: np.ndarray, sr: int = SR, n_fft: int = 2048, hop: int = 512) -> float:
    """Plain mean of ``librosa.feature.spectral_centroid`` over frames louder than -60 dBFS RMS."""
    import librosa

    y = mono(pcm)
    c = librosa.feature.spectral_centroid(y=y, sr=sr, n_fft=n_fft, hop_length=hop)[0]
    rms = librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0]
    keep = rms > 1e-3
    return float(c[keep].mean()) if keep.any() else 0.0


@dataclass(frozen=True)
class BandProfile:
    """Fractions of total power (channels summed). ``low`` includes ``sub``."""

    sub: float  # < 60 Hz
    low: float  # < 150 Hz
    mid: float  # 150 Hz – 4 kHz
    high: float  # > 4 kHz

    def db(self, band: str) -> float:
        """A band's share in dB relative to the total."""
        return 10.0 * math.log10(max(getattr(self, band), 1e-12))


def band_profile(pcm: np.ndarray, sr: int = SR, nperseg: int = 8192) -> BandProfile:
    """Share of the power below 60 Hz, below 150 Hz, in 150 Hz–4 kHz and above 4 kHz."""
    from scipy.signal import welch

    x = as_2d(pcm)
    freqs, psd = welch(x, fs=sr, nperseg=min(nperseg, x.shape[0]), axis=0)
    p = psd.sum(axis=1)
    total = float(p.sum())
    if total <= 0.0:
        return BandProfile(0.0, 0.0, 0.0, 0.0)

    def share(mask: np.ndarray) -> float:
        return float(p[mask].sum() / total)

    return BandProfile(
        sub=share(freqs < SUB_HZ),
        low=share(freqs < LOW_HZ),
        mid=share((freqs >= LOW_HZ) & (freqs <= HIGH_HZ)),
        high=share(freqs > HIGH_HZ),
    )


# ----------------------------------------------------------------------------- level


def lufs(pcm: np.ndarray, sr: int = SR) -> float:
    """Integrated loudness (LUFS) by ``pyloudnorm.Meter(sr)`` (BS.1770-4, gated)."""
    import pyloudnorm

    return float(pyloudnorm.Meter(sr).integrated_loudness(as_2d(pcm)))


def sample_peak_db(pcm: np.ndarray) -> float:
    """Largest absolute sample value, dBFS."""
    return db(float(np.max(np.abs(as_2d(pcm)))))


def true_peak_db(pcm: np.ndarray, sr: int = SR) -> float:
    """True peak (dBTP) per BS.1770-4 Annex 2: oversample 4× (2× at ≥ 96 kHz), take max abs.

    ``scipy.signal.resample_poly`` supplies the interpolation filter (a
    Kaiser-windowed FIR). Float input is not attenuated first (no
    integer headroom to protect), and the original samples count too.
    """
    from scipy.signal import resample_poly

    x = as_2d(pcm)
    factor = 4 if sr < 96_000 else 2
    up = resample_poly(x, factor, 1, axis=0)
    return db(max(float(np.max(np.abs(up))), float(np.max(np.abs(x)))))


# ----------------------------------------------------------------------------- clicks


@dataclass(frozen=True)
class Click:
    time_s: float
    channel: int
    jump: float  # |x[n+1] - x[n]|
    ratio: float  # jump / local scale


@dataclass(frozen=True)
class ClickReport:
    """What :func:`click_report` found; ``worst_*`` describe the largest ratio anywhere."""

    threshold: float
    worst_ratio: float
    worst_time_s: float
    worst_channel: int
    worst_jump: float
    clicks: list[Click] = field(default_factory=list)

    @property
    def has_clicks(self) -> bool:
        return bool(self.clicks)

    def __str__(self) -> str:
        head = (
            f"{len(self.clicks)} click(s) over threshold {self.threshold:g}; worst ratio "
            f"{self.worst_ratio:.2f} (jump {self.worst_jump:.4f}) at {self.worst_time_s:.4f} s ch {self.worst_channel}"
        )
        more = ", ".join(f"{c.time_s:.4f}s/ch{c.channel}/x{c.ratio:.1f}" for c in self.clicks[:5])
        return head + (f": {more}" if more else "")


def _forward_max(a: np.ndarray, m: int) -> np.ndarray:
    """``out[i] = max(a[i : i + m])`` (positions past the end count as 0), O(n)."""
    n = a.size
    pad = (-n) % m + m
    ap = np.concatenate([a, np.zeros(pad, dtype=a.dtype)])
    blocks = ap.reshape(-1, m)
    prefix = np.maximum.accumulate(blocks, axis=1).ravel()
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    i = np.arange(n)
    return np.maximum(suffix[i], prefix[i + m - 1])


def click_ratios(
    x: np.ndarray,
    sr: int = SR,
    window_s: float = CLICK_WINDOW_S,
    guard: int = CLICK_GUARD,
    floor: float = CLICK_FLOOR,
) -> np.ndarray:
    """Per jump ``d[n] = x[n+1] - x[n]`` of one channel: ``|d[n]| / local scale``.

    The local scale is the largest ``|d|`` within ``window_s`` on either side of
    ``n``, leaving out the ``guard`` jumps next to it (so a one-sample spike,
    which makes two adjacent jumps, does not hide itself), and never less than
    ``floor``.
    """
    a = np.abs(np.diff(np.asarray(x, dtype=np.float64)))
    n = a.size
    w = max(int(round(window_s * sr)), guard + 2)
    m = w - guard  # jumps in each side window
    padded = np.concatenate([np.zeros(w), a, np.zeros(w)])
    fmax = _forward_max(padded, m)
    idx = np.arange(n) + w  # position of a[n] in padded
    left = fmax[idx - w]  # padded[idx-w : idx-guard]
    right = fmax[idx + guard + 1]  # padded[idx+guard+1 : idx+w+1]
    scale = np.maximum(np.maximum(left, right), floor)
    return a / scale


def click_report(
    pcm: np.ndarray,
    sr: int = SR,
    threshold: float = CLICK_THRESHOLD,
    window_s: float = CLICK_WINDOW_S,
    guard: int = CLICK_GUARD,
    floor: float = CLICK_FLOOR,
) -> ClickReport:
    """Find clicks: sample-to-sample jumps far larger than any nearby jump of the music.

    The rule, per channel: a jump ``|x[n+1] - x[n]|`` is a click when it exceeds
    ``threshold`` (default 4) times the largest jump within ±25 ms around it,
    not counting the ``guard`` (2) jumps adjacent to it, with that local scale
    floored at 1e-3 (-60 dBFS) so that sub-audible steps in silence do not count.

    Why this separates clicks from the music's own transients: a drum hit, a
    noise burst or a plucked attack keeps making jumps of similar size for the
    following milliseconds, and periodic waveform edges (a naive saw or square)
    recur within the ±25 ms window (periods down to 40 Hz), so their ratio
    stays near 1–2. A discontinuity — a voice cut off mid-cycle, a buffer seam,
    a dropped block — is one isolated jump, many times larger than its
    neighbours. Jumps closer than 1 ms count as one click.
    """
    x = as_2d(pcm)
    clicks: list[Click] = []
    worst = (0.0, 0.0, 0, 0.0)  # ratio, time, channel, jump
    for ch in range(x.shape[1]):
        col = x[:, ch]
        if col.size < 2:
            continue
        r = click_ratios(col, sr, window_s, guard, floor)
        i = int(np.argmax(r))
        if r[i] > worst[0]:
            worst = (float(r[i]), (i + 1) / sr, ch, float(abs(col[i + 1] - col[i])))
        hits = np.flatnonzero(r > threshold)
        last = -(10**12)
        for h in hits:
            if h - last < sr // 1000 and clicks and clicks[-1].channel == ch:
                if r[h] > clicks[-1].ratio:
                    clicks[-1] = Click((h + 1) / sr, ch, float(abs(col[h + 1] - col[h])), float(r[h]))
                last = h
                continue
            clicks.append(Click((h + 1) / sr, ch, float(abs(col[h + 1] - col[h])), float(r[h])))
            last = h
    clicks.sort(key=lambda c: c.time_s)
    return ClickReport(threshold, worst[0], worst[1], worst[2], worst[3], clicks)
