"""Prompt mixing: the weighted average of embeddings with normalized weights.

Done once here for every backend (Magenta RT mixes MusicCoCa embeddings the
same way). Zero-weight prompts drop out; an all-zero mix is an error that says
how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cadenza.errors import UsageError


def normalized_weights(weights: Sequence[float]) -> np.ndarray:
    """Weights divided by their sum; raises when none is positive."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise UsageError("at least one weighted prompt is needed", where="prompts")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        i = int(bad[0])
        raise UsageError(f"weight must be a finite number >= 0, got {w[i]!r}", where=f"prompts[{i}]")
    total = float(w.sum())
    if total <= 0.0:
        raise UsageError("all prompt weights are zero; give at least one prompt a weight > 0", where="prompts")
    return w / total


def mix_embeddings(vectors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of ``vectors`` with normalized ``weights``."""
    if len(vectors) != len(weights):
        raise UsageError(f"{len(vectors)} embeddings but {len(weights)} weights", where="prompts")
    w = normalized_weights(weights)
    stacked = np.stack([np.asarray(v, dtype=np.float64) for v in vectors])
    return (w[:, None] * stacked).sum(axis=0)
