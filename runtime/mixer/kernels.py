"""Numba kernels of the mixer, each with the plain NumPy reference it is tested against.

All kernels work in place on preallocated float32 ``(frames, 2)`` blocks, never
allocate, log or take locks, so the audio thread may call them. Ramps are
linear per sample from a start value to an end value across the block, so a
parameter change never steps (no zipper noise, no clicks).

- :func:`crossfade_into`: ``out = a·cos(p·π/2) + b·sin(p·π/2)``, p ramping p0→p1
  (equal power: uncorrelated decks keep their loudness through the fade).
- :func:`gain_ramp`: ``buf *= g`` with g ramping g0→g1 (fades, ducking).
- :func:`mix_into`: ``out += src · g`` with g ramping g0→g1 (stingers over the bed).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

HALF_PI = 0.5 * math.pi


@njit(cache=True, nogil=True)
def crossfade_into(out: np.ndarray, a: np.ndarray, b: np.ndarray, p0: float, p1: float) -> None:
    n = out.shape[0]
    step = (p1 - p0) / n if n else 0.0
    for i in range(n):
        p = p0 + step * i
        ga = math.cos(p * HALF_PI)
        gb = math.sin(p * HALF_PI)
        out[i, 0] = a[i, 0] * ga + b[i, 0] * gb
        out[i, 1] = a[i, 1] * ga + b[i, 1] * gb


def crossfade_into_numpy(out: np.ndarray, a: np.ndarray, b: np.ndarray, p0: float, p1: float) -> None:
    n = out.shape[0]
    p = p0 + (p1 - p0) / n * np.arange(n) if n else np.zeros(0)
    ga = np.cos(p * HALF_PI)[:, None]
    gb = np.sin(p * HALF_PI)[:, None]
    np.add(a * ga, b * gb, out=out, casting="unsafe")


@njit(cache=True, nogil=True)
def gain_ramp(buf: np.ndarray, g0: float, g1: float) -> None:
    n = buf.shape[0]
    step = (g1 - g0) / n if n else 0.0
    for i in range(n):
        g = g0 + step * i
        buf[i, 0] *= g
        buf[i, 1] *= g


def gain_ramp_numpy(buf: np.ndarray, g0: float, g1: float) -> None:
    n = buf.shape[0]
    g = (g0 + (g1 - g0) / n * np.arange(n)) if n else np.zeros(0)
    np.multiply(buf, g[:, None], out=buf, casting="unsafe")


@njit(cache=True, nogil=True)
def mix_into(out: np.ndarray, src: np.ndarray, g0: float, g1: float) -> None:
    n = out.shape[0]
    step = (g1 - g0) / n if n else 0.0
    for i in range(n):
        g = g0 + step * i
        out[i, 0] += src[i, 0] * g
        out[i, 1] += src[i, 1] * g


def mix_into_numpy(out: np.ndarray, src: np.ndarray, g0: float, g1: float) -> None:
    n = out.shape[0]
    g = (g0 + (g1 - g0) / n * np.arange(n)) if n else np.zeros(0)
    np.add(out, src * g[:, None], out=out, casting="unsafe")


@njit(cache=True, nogil=True)
def soft_limit(buf: np.ndarray, ceiling: float) -> int:
    """Keep every sample within ±ceiling with a smooth knee above ``0.8·ceiling``; returns samples touched.

    A safety net after summing decks (each deck already has its own look-ahead
    limiter); inside the knee the curve is a rational soft clip, C1-continuous.
    """
    knee = 0.8 * ceiling
    span = ceiling - knee
    touched = 0
    for i in range(buf.shape[0]):
        for c in range(2):
            x = buf[i, c]
            ax = abs(x)
            if ax > knee:
                over = (ax - knee) / span
                y = knee + span * over / (1.0 + over)
                buf[i, c] = y if x > 0 else -y
                touched += 1
    return touched


def soft_limit_numpy(buf: np.ndarray, ceiling: float) -> int:
    knee = 0.8 * ceiling
    span = ceiling - knee
    ax = np.abs(buf)
    mask = ax > knee
    over = (ax - knee) / span
    y = np.sign(buf) * (knee + span * over / (1.0 + over))
    buf[mask] = y[mask]
    return int(mask.sum())
