"""The ``magenta`` backend: Magenta RealTime 2 through the official ``magenta-rt[jax]`` library.

This package imports nothing heavy: :func:`MagentaBackend` picks the JAX
platform (``--device``) *before* jax is first imported, then loads
:mod:`.backend`. :mod:`.weights` (the Hugging Face cache) needs only
``huggingface_hub``; :mod:`.tiny` builds the random-weight test model.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cadenza.errors import ModelError, UsageError

if TYPE_CHECKING:
    from cadenza.runtime.backends.magenta.backend import MagentaBackend as _Backend

DEVICES = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}
INSTALL_HINT = "pip install 'cadenza[magenta]'"


def select_device(device: str | None) -> None:
    """Make JAX use ``device`` (cpu | gpu | tpu); None lets JAX pick the local accelerator."""
    if device is None:
        return
    platform = DEVICES.get(device)
    if platform is None:
        raise UsageError(f"unknown device {device!r}; choose cpu, gpu or tpu", where="--device")
    if "jax" in sys.modules:
        import jax

        current = getattr(jax.config, "jax_platforms", None)
        if current and current.split(",")[0] != platform:
            raise UsageError(f"JAX already started on {current!r} in this process; cannot switch to {device}",
                             where="--device")
        jax.config.update("jax_platforms", platform)
    else:
        os.environ["JAX_PLATFORMS"] = platform
    try:
        import jax
    except ImportError:
        return  # MagentaBackend says what to install
    try:
        jax.devices()
    except Exception as exc:  # noqa: BLE001 — a GPU-less box: jax's CUDA start-up fails with a bare AssertionError
        reason = str(exc).split("(set JAX_PLATFORMS")[0].strip().rstrip(":;,") or type(exc).__name__
        kind = {"gpu": "GPU (CUDA)", "tpu": "TPU"}.get(device, device)
        hint = {"gpu": "pip install -U 'jax[cuda12]'", "tpu": "pip install -U 'jax[tpu]'"}.get(device, "")
        raise UsageError(f"{device}: JAX finds no {kind} here (its {platform} start-up failed: {reason[:200]}); use "
                         f"--device cpu{f', or install JAX with {kind} support: {hint}' if hint else ''}",
                         where="--device") from None


def MagentaBackend(model: str = "mrt2_small", device: str | None = None, style_model: str | None = None,
                   say: Callable[[str], None] | None = None, precision: str = "fp32",
                   batch_sizes: Sequence[int] | None = None, warm: bool = True,
                   speculate: bool = False) -> "_Backend":
    """Load ``model`` from the Hugging Face cache onto ``device``, compile its step for each batch size and
    warm it up (see :mod:`.backend`); ``precision`` fp32 or bf16 (the depthformer's weights)."""
    select_device(device)
    try:
        from cadenza.runtime.backends.magenta.backend import MagentaBackend as _Backend
    except ImportError as exc:
        raise ModelError(f"the magenta backend cannot be imported ({exc}); install it with: {INSTALL_HINT}") from exc
    from cadenza.runtime.backends.magenta.backend import DEFAULT_BATCH_SIZES

    return _Backend(model=model, device=device, style_model=style_model, say=say, precision=precision,
                    batch_sizes=DEFAULT_BATCH_SIZES if batch_sizes is None else batch_sizes, warm=warm,
                    speculate=speculate)


__all__ = ["DEVICES", "MagentaBackend", "select_device"]
