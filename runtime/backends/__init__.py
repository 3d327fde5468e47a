"""Music backends behind one contract (:mod:`.base`), looked up by name.

Heavy backends are imported only when asked for, with an install hint when
their extra is missing.
"""

from __future__ import annotations

import importlib

from cadenza.errors import ModelError, UsageError
from cadenza.runtime.backends.base import (
    Backend,
    BackendInfo,
    Beat,
    Capabilities,
    Controls,
    Embedding,
    Prompt,
    StreamState,
    TextPrompt,
    AudioPrompt,
    WeightedPrompt,
    SAMPLE_RATE,
    CHANNELS,
)

BACKENDS: dict[str, BackendInfo] = {
    "synth": BackendInfo(
        name="synth",
        summary="embedded procedural CPU synth (numba DSP); the default",
        module="cadenza.runtime.backends.synth",
        attr="SynthBackend",
    ),
    "magenta": BackendInfo(
        name="magenta",
        summary="Magenta RealTime 2 (official magenta-rt, JAX) on the local GPU/TPU or CPU",
        module="cadenza.runtime.backends.magenta",
        attr="MagentaBackend",
        install_hint="pip install 'cadenza[magenta]'",
        extras=["magenta"],
    ),
}


def get_backend(name: str, **options: object) -> Backend:
    """Instantiate the backend called ``name`` with its ``options`` (model, device, … for magenta)."""
    info = BACKENDS.get(name)
    if info is None:
        raise UsageError(f"unknown backend {name!r}. Available: {sorted(BACKENDS)}", where="--backend")
    try:
        module = importlib.import_module(info.module)
    except ImportError as exc:
        hint = f" Install it with: {info.install_hint}" if info.install_hint else ""
        raise ModelError(f"backend {name!r} cannot be imported ({exc}).{hint}") from exc
    factory = getattr(module, info.attr)
    if options and name == "synth":
        raise UsageError(f"the synth backend takes no options, got {sorted(options)}", where="--backend")
    backend: Backend = factory(**options)
    return backend


__all__ = [
    "AudioPrompt",
    "BACKENDS",
    "Backend",
    "Beat",
    "CHANNELS",
    "Capabilities",
    "Controls",
    "Embedding",
    "Prompt",
    "SAMPLE_RATE",
    "StreamState",
    "TextPrompt",
    "WeightedPrompt",
    "get_backend",
]
