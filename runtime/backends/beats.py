"""A streaming beat and tempo tracker for backends that do not know their beat grid.

A generative model such as Magenta RT has no tempo input and renders no grid,
yet graphs quantize transitions to beats and bars and games want beat events.
:class:`BeatTracker` listens to the audio a backend just generated, block by
block, and says where the beats in it are:

1. **onset strength** every 10 ms (480 samples): the half-wave-rectified
   increase of the log-compressed magnitude spectrum (spectral flux) over a
   1,024-sample Hann window of the mono mix;
2. **tempo** from the autocorrelation of the last :data:`WINDOW_S` seconds of
   onset strength, over lags for 60–200 bpm, weighted towards 120 bpm (a
   log-normal prior, as beat trackers commonly use) and refined to a
   fractional lag by parabolic interpolation;
3. **phase** by a comb over the window: the offset whose beat positions
   collect the most onset strength: when locking every beat heard counts alike
   (a bar of syncopated kicks alone can favour the off-beat), while following
   a locked grid the most recent beats weigh most.

Beats are reported once each, in stream time (samples), with ``estimated=True``
and a running beat count; bars are counted in 4/4 from the first beat found,
since nothing in the audio names the downbeat reliably. Nothing is reported
until :data:`MIN_HISTORY_S` seconds have been heard, or while the music has no
pulse (the autocorrelation peak is weak).

Cost: one 1,024-point real FFT per 10 ms plus a 600-point autocorrelation per
call; about 0.1 ms per 40 ms of audio on one core.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from cadenza.runtime.backends.base import SAMPLE_RATE, Beat

HOP = 480  # samples per onset-strength value (10 ms)
FFT = 1024
HOP_RATE = SAMPLE_RATE / HOP  # onset values per second
WINDOW_S = 6.0
MIN_HISTORY_S = 3.0
BPM_MIN, BPM_MAX = 60.0, 200.0
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0
MIN_PULSE = 0.25  # prior-weighted normalized autocorrelation below this: no pulse (white noise peaks ≈ 0.13)
DETREND_S = 0.4  # the local level an onset is measured against
RECENT_S = 2.0  # onsets must have been heard this recently for a pulse to count
BEATS_PER_BAR = 4
TEMPO_TOLERANCE = 0.06  # relative tempo change followed smoothly
PHASE_TOLERANCE = 0.2  # of a beat: phase errors followed smoothly
TEMPO_GAIN, PHASE_GAIN = 0.2, 0.3
RELOCK_AFTER = 50  # analyses (calls) of lasting disagreement before the grid jumps (2 s of 40 ms blocks)
LOW_HZ, LOW_BOOST = 200.0, 20.0
TRACK_DECAY = 0.8  # comb weight per beat back while following a grid: the recent past counts most
LOCK_DECAY = 1.0  # ... when locking: every beat heard counts (a bar of syncopated kicks can favour the off-beat)


class BeatTracker:
    """Feed blocks of generated audio in stream order; get the beats heard in each block."""

    def __init__(self) -> None:
        self._window = np.hanning(FFT + 1)[:-1].astype(np.float32)
        self._tail = np.zeros(FFT, np.float32)  # the last FFT mono samples
        self._pending = np.zeros(0, np.float32)  # mono samples not yet a whole hop
        self._prev_mag: np.ndarray | None = None
        self._env: deque[float] = deque(maxlen=int(WINDOW_S * HOP_RATE))
        self._hops = 0  # onset values computed so far (hop index of the next one)
        self.frame = 0  # stream samples fed so far
        self.bpm: float | None = None
        self._last_beat: float | None = None  # stream sample of the last beat reported
        self._grid: float | None = None  # stream sample of the next beat to report
        self._period = 0.0  # samples per beat
        self._disagree = 0  # analyses in a row that disagree with the grid
        self._count = 0
        lags = np.arange(int(math.floor(HOP_RATE * 60 / BPM_MAX)), int(math.ceil(HOP_RATE * 60 / BPM_MIN)) + 1)
        self._lags = lags
        bpms = 60.0 * HOP_RATE / lags
        freqs = np.fft.rfftfreq(FFT, 1.0 / SAMPLE_RATE)
        # kick and bass carry the beat; hats and ornaments sit between beats: favour the low end
        self._band = (1.0 + LOW_BOOST * (freqs < LOW_HZ)).astype(np.float32)
        self._prior = np.exp(-0.5 * (np.log2(bpms / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)

    def copy(self) -> "BeatTracker":
        """An independent tracker in the same state (for a forked stream)."""
        other = BeatTracker.__new__(BeatTracker)
        other.__dict__.update(self.__dict__)
        other._tail = self._tail.copy()
        other._pending = self._pending.copy()
        other._prev_mag = None if self._prev_mag is None else self._prev_mag.copy()
        other._env = deque(self._env, maxlen=self._env.maxlen)
        return other

    # ------------------------------------------------------------------ input
    def feed(self, pcm: np.ndarray) -> list[Beat]:
        """Analyse the next ``pcm`` block (frames × channels); the beats that fall inside it."""
        start = self.frame
        mono = pcm.mean(axis=1, dtype=np.float32) if pcm.ndim == 2 else pcm.astype(np.float32)
        self.frame += mono.shape[0]
        buf = np.concatenate([self._pending, mono]) if self._pending.size else mono
        n_hops = buf.shape[0] // HOP
        if n_hops:
            self._onsets(buf[: n_hops * HOP])
        self._pending = buf[n_hops * HOP:].copy()
        if n_hops == 0 or len(self._env) < MIN_HISTORY_S * HOP_RATE:
            return []
        return self._beats_in(start, self.frame)

    def _onsets(self, hops: np.ndarray) -> None:
        """Onset strength of each whole hop in ``hops`` (one batched FFT)."""
        stream = np.concatenate([self._tail, hops])
        frames = np.lib.stride_tricks.sliding_window_view(stream, FFT)[HOP::HOP]
        mags = np.log1p(100.0 * np.abs(np.fft.rfft(frames * self._window, axis=1)))
        prev = mags[0] if self._prev_mag is None else self._prev_mag
        rise = np.maximum(np.diff(np.vstack([prev[None, :], mags]), axis=0), 0.0)
        flux = rise @ self._band
        if self._prev_mag is None:
            flux[0] = 0.0
        self._env.extend(flux.tolist())
        self._hops += flux.shape[0]
        self._prev_mag = mags[-1]
        self._tail = stream[-FFT:].copy()

    # --------------------------------------------------------------- analysis
    def _tempo(self, env: np.ndarray) -> float | None:
        """The beat period in hops (fractional), or None without a clear pulse."""
        # onsets against their local level: a loudness step or swell is no pulse, a train of peaks is
        width = int(DETREND_S * HOP_RATE)
        x = env - np.convolve(env, np.full(width, 1.0 / width), mode="same")
        energy = float(np.dot(x, x))
        if energy <= 1e-12 or env[-int(RECENT_S * HOP_RATE):].std() < 0.05 * env.std():
            return None  # nothing, or nothing lately: the music stopped
        n = x.shape[0]
        size = 1 << (2 * n - 1).bit_length()  # zero-padded: a linear, not circular, autocorrelation
        spec = np.fft.rfft(x, size)
        full = np.fft.irfft(spec * np.conj(spec), size)
        lags = self._lags[self._lags < n]
        ac = np.zeros(self._lags.shape[0])
        ac[: lags.shape[0]] = full[lags] / energy
        score = ac * self._prior
        i = int(np.argmax(score))
        if score[i] < MIN_PULSE:
            return None
        lag = float(self._lags[i])
        if 0 < i < len(score) - 1:  # parabolic refinement of the peak
            a, b, c = score[i - 1], score[i], score[i + 1]
            den = a - 2 * b + c
            if den < 0:
                lag += 0.5 * (a - c) / den
        return lag

    def _phase(self, env: np.ndarray, period: float, decay: float) -> float:
        """Hop index (within ``env``) of the most recent beat; beat k back weighs ``decay ** k``."""
        n = env.shape[0]
        k = np.arange(int(n // period))
        offsets = np.arange(int(math.ceil(period)))
        idx = np.round(n - 1 - offsets[:, None] - k[None, :] * period).astype(np.int64)
        weights = np.where(idx >= 0, decay ** k[None, :], 0.0)
        scores = (env[np.maximum(idx, 0)] * weights).sum(axis=1)
        return float(n - 1 - offsets[int(np.argmax(scores))])

    def _beats_in(self, start: int, end: int) -> list[Beat]:
        env = np.asarray(self._env, np.float64)
        lag = self._tempo(env)
        if lag is None:
            self._grid = None  # no pulse: stop reporting until one returns
            return []
        period = lag * HOP
        # the latest beat the comb finds, in stream samples (onsets show ~half an FFT after the hop starts)
        first = self._hops - env.shape[0]
        decay = LOCK_DECAY if self._grid is None else TRACK_DECAY
        latest = (first + self._phase(env, lag, decay)) * HOP - (FFT / 2 - HOP)
        if self._grid is None:
            self._relock(latest, period, start)
        else:
            self._track(latest, period)
            # the grid holds the next beat not yet reported; a phase nudge back past this block's start
            # would skip it (audio already delivered): it is heard at the block's start instead
            assert self._grid is not None
            self._grid = max(self._grid, float(start))
        self.bpm = 60.0 * SAMPLE_RATE / self._period
        out = []
        assert self._grid is not None
        while self._grid < end:
            pos = self._grid
            self._grid += self._period
            if pos < start or (self._last_beat is not None and pos - self._last_beat < 0.5 * self._period):
                continue
            self._last_beat = pos
            out.append(Beat(frame=int(round(pos)), beat=self._count, bar=self._count // BEATS_PER_BAR,
                            beat_in_bar=self._count % BEATS_PER_BAR, bpm=round(self.bpm, 2), estimated=True,
                            position=pos))
            self._count += 1
        return out

    def _relock(self, latest: float, period: float, start: int) -> None:
        self._period = period
        self._grid = latest + period * math.ceil((start - latest) / period)
        self._disagree = 0

    def _track(self, latest: float, period: float) -> None:
        """Follow the estimate like a phase-locked loop: small errors nudge the grid, a lasting
        disagreement (a new tempo or a new phase) re-locks it."""
        assert self._grid is not None
        same_tempo = abs(period / self._period - 1.0) < TEMPO_TOLERANCE
        err = (latest - self._grid + self._period / 2) % self._period - self._period / 2
        if same_tempo and abs(err) < PHASE_TOLERANCE * self._period:
            self._period += TEMPO_GAIN * (period - self._period)
            self._grid += PHASE_GAIN * err
            self._disagree = 0
            return
        self._disagree += 1
        if self._disagree >= RELOCK_AFTER:
            self._relock(latest, period, int(self._grid))
