"""The mixer's numba kernels agree with their plain NumPy references (tolerance 1e-6, float32 audio)."""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.runtime.mixer import kernels as k

TOL = 1e-6


@pytest.fixture
def blocks() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    a = rng.uniform(-1, 1, (1024, 2)).astype(np.float32)
    b = rng.uniform(-1, 1, (1024, 2)).astype(np.float32)
    return a, b


@pytest.mark.parametrize(("p0", "p1"), [(0.0, 1.0), (0.25, 0.5), (1.0, 1.0), (0.0, 0.0)])
def test_crossfade_matches_numpy(blocks: tuple[np.ndarray, np.ndarray], p0: float, p1: float) -> None:
    a, b = blocks
    out = np.empty_like(a)
    ref = np.empty_like(a)
    k.crossfade_into(out, a, b, p0, p1)
    k.crossfade_into_numpy(ref, a, b, p0, p1)
    np.testing.assert_allclose(out, ref, atol=TOL)


def test_crossfade_is_equal_power_and_hits_its_ends(blocks: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = blocks
    out = np.empty_like(a)
    k.crossfade_into(out, a, b, 0.0, 1.0)
    np.testing.assert_allclose(out[0], a[0], atol=TOL)  # starts on deck A alone
    n = a.shape[0]
    p = np.arange(n) / n
    # uncorrelated decks: power stays constant through the fade (cos² + sin² = 1)
    np.testing.assert_allclose(np.cos(p * np.pi / 2) ** 2 + np.sin(p * np.pi / 2) ** 2, 1.0, atol=1e-12)
    k.crossfade_into(out, a, b, 1.0, 1.0)
    np.testing.assert_allclose(out, b, atol=TOL)  # ends on deck B alone


@pytest.mark.parametrize(("g0", "g1"), [(1.0, 0.0), (0.5, 0.5), (0.0, 2.0)])
def test_gain_ramp_and_mix_match_numpy(blocks: tuple[np.ndarray, np.ndarray], g0: float, g1: float) -> None:
    a, b = blocks
    x, y = a.copy(), a.copy()
    k.gain_ramp(x, g0, g1)
    k.gain_ramp_numpy(y, g0, g1)
    np.testing.assert_allclose(x, y, atol=TOL)
    x, y = a.copy(), a.copy()
    k.mix_into(x, b, g0, g1)
    k.mix_into_numpy(y, b, g0, g1)
    np.testing.assert_allclose(x, y, atol=TOL)


def test_soft_limit_matches_numpy_and_bounds_the_signal(blocks: tuple[np.ndarray, np.ndarray]) -> None:
    a, _ = blocks
    loud = a * 3.0
    x, y = loud.copy(), loud.copy()
    nx = k.soft_limit(x, 0.9)
    ny = k.soft_limit_numpy(y, 0.9)
    assert nx == ny > 0
    np.testing.assert_allclose(x, y, atol=TOL)
    assert float(np.abs(x).max()) < 0.9
    quiet = a * 0.5
    z = quiet.copy()
    assert k.soft_limit(z, 0.9) == 0  # below the knee nothing changes
    np.testing.assert_array_equal(z, quiet)


def test_kernels_handle_empty_blocks() -> None:
    e = np.zeros((0, 2), np.float32)
    k.crossfade_into(e, e, e, 0.0, 1.0)
    k.gain_ramp(e, 1.0, 0.0)
    k.mix_into(e, e, 1.0, 0.0)
    assert k.soft_limit(e, 0.9) == 0
