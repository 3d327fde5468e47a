"""Prompt mixing: the weighted average of embeddings with normalized weights.

Done once here for every backend (Magenta RT mixes MusicCoCa embeddings the
same way); a backend with a ``mix_styles(vectors, weights)`` method mixes its
own style space (the synth settles the tempo on the leading prompt's). Zero-weight prompts drop out; an all-zero mix is an error that says
how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cadenza.errors import UsageError

if TYPE_CHECKING:
    from cadenza.runtime.backends.base import Backend, Prompt, WeightedPrompt


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


class PromptMixer:
    """Embeds prompts through a backend once each (cached) and mixes them into a style vector.

    Warnings a backend raises about a prompt (unknown words, say) are collected
    once per prompt in :attr:`warnings`, in the order they first appeared.
    """

    def __init__(self, backend: "Backend") -> None:
        self.backend = backend
        self._cache: dict[object, np.ndarray] = {}
        self.warnings: list[str] = []

    def embed(self, prompt: "Prompt") -> np.ndarray:
        vec = self._cache.get(prompt)
        if vec is None:
            emb = self.backend.embed(prompt)
            vec = np.asarray(emb.vector, dtype=np.float64)
            self._cache[prompt] = vec
            self.warnings.extend(emb.warnings)
        return vec

    def style(self, prompts: "Sequence[WeightedPrompt]") -> np.ndarray:
        """The style vector of a weighted prompt list (zero weights skip embedding)."""
        normalized_weights([p.weight for p in prompts])  # validates before any embedding
        live = [p for p in prompts if p.weight > 0]
        vectors, weights = [self.embed(p.prompt) for p in live], [p.weight for p in live]
        mix = getattr(self.backend, "mix_styles", None)  # a backend whose style space mixes otherwise (synth: tempo)
        if mix is not None:
            return np.asarray(mix(vectors, list(normalized_weights(weights))), dtype=np.float64)
        return mix_embeddings(vectors, weights)
