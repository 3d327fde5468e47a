"""Short-term loudness (EBU R128 / ITU-R BS.1770): K-weighting and a 3 s sliding window, fed block by block.

::

    block (frames, channels) ──► K-weighting, per channel ──► mean square per block ──► 3 s window
                                 (stage 1: high shelf +4 dB            (sum over          LUFS = −0.691 +
                                  above ~1.5 kHz, the head;            channels,          10·log10(Σ_ch mean
                                  stage 2: RLB high-pass ~38 Hz)       weight 1 for L/R)  square over window)

The two biquads are BS.1770's coefficients at 48 kHz (the runtime's one rate);
their state carries over from block to block, so feeding a stream in blocks of
any size gives the same figures as one long block. No gating: short-term
loudness is ungated (R128 s1 §2.2); a window of digital silence reads
:data:`SILENCE_LUFS`. The filter runs in a numba kernel that releases the GIL
(the OSC bridge's sender thread keeps time meanwhile).
"""

from __future__ import annotations

import collections
import math

import numba
import numpy as np

__all__ = ["K_WEIGHTING", "SAMPLE_RATE", "SHORT_TERM_S", "SILENCE_LUFS", "ShortTermLoudness"]

SAMPLE_RATE = 48_000
SHORT_TERM_S = 3.0
SILENCE_LUFS = -120.0  # what a silent window reads (log of zero): below any real programme

#: BS.1770-4, tables 1 and 2: the K-weighting at 48 kHz as two biquads (b0, b1, b2, a1, a2; a0 = 1). Written
#: here once; the synth's loudness leveller (backends/synth/dsp.py) takes its coefficients from this table.
K_WEIGHTING = np.array([
    [1.53512485958697, -2.69169618940638, 1.19839281085285, -1.69065929318241, 0.73248077421585],
    [1.0, -2.0, 1.0, -1.99004745483398, 0.99007225036621],
])


@numba.njit(cache=True, nogil=True)
def _k_weighted_sum_squares(x: np.ndarray, coef: np.ndarray, state: np.ndarray) -> float:  # pragma: no cover
    """Filter ``x`` (frames, channels) through the biquads (direct form II transposed, ``state`` (stage, channel,
    2) carried over) and return Σ over channels and frames of the filtered value squared."""
    total = 0.0
    for c in range(x.shape[1]):
        for i in range(x.shape[0]):
            v = x[i, c]
            for s in range(coef.shape[0]):
                b0, b1, b2, a1, a2 = coef[s, 0], coef[s, 1], coef[s, 2], coef[s, 3], coef[s, 4]
                y = b0 * v + state[s, c, 0]
                state[s, c, 0] = b1 * v - a1 * y + state[s, c, 1]
                state[s, c, 1] = b2 * v - a2 * y
                v = y
            total += v * v
    return total


class ShortTermLoudness:
    """Feed blocks with :meth:`add`; :attr:`lufs` is the short-term loudness of the last ``window_s`` seconds."""

    def __init__(self, channels: int = 2, window_s: float = SHORT_TERM_S) -> None:
        self.channels = channels
        self.window_frames = int(round(window_s * SAMPLE_RATE))
        self._state = np.zeros((K_WEIGHTING.shape[0], channels, 2))
        self._blocks: collections.deque[tuple[int, float]] = collections.deque()  # (frames, Σ squares)
        self._frames = 0
        self._energy = 0.0
        self._adds = 0

    def add(self, block: np.ndarray) -> None:
        """One ``(frames, channels)`` block (float, full scale ±1)."""
        x = np.ascontiguousarray(block, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"expected (frames, {self.channels}) audio, got shape {x.shape}")
        if x.shape[0] == 0:
            return
        energy = _k_weighted_sum_squares(x, K_WEIGHTING, self._state)
        self._blocks.append((x.shape[0], energy))
        self._frames += x.shape[0]
        self._energy += energy
        while self._blocks and self._frames - self._blocks[0][0] >= self.window_frames:
            frames, e = self._blocks.popleft()
            self._frames -= frames
            self._energy -= e
        self._adds += 1
        if self._adds % 1024 == 0:  # the running sum's rounding, reset now and then
            self._energy = math.fsum(e for _, e in self._blocks)

    @property
    def full(self) -> bool:
        """Whether a whole window has been fed."""
        return self._frames >= self.window_frames

    @property
    def lufs(self) -> float:
        """−0.691 + 10·log10 of the K-weighted mean square (summed over channels) over the window."""
        if self._frames == 0:
            return SILENCE_LUFS
        mean_square = max(self._energy, 0.0) / self._frames
        if mean_square <= 1e-12:
            return SILENCE_LUFS
        return max(SILENCE_LUFS, -0.691 + 10.0 * math.log10(mean_square))
