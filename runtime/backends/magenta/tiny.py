"""The ``tiny`` Magenta RT 2 model: the library's architecture, shrunk, with random weights, in the HF cache.

No Magenta weights can be downloaded on the machines that test Cadenza, yet the
backend must run the real library end to end. This module builds a checkpoint
the way the library would load a real one:

- a small :class:`~magenta_rt.config.ModelSpec` (2 layers, 256 dims) for the
  encoder and both decoders of the library's small model, registered in the
  library's ``MODEL_REGISTRY`` as ``cadenza_tiny`` (the SpectroStream decoder
  keeps its real size: it is the codec);
- parameters initialised by the library's own sampler (``init`` over
  ``get_initial_state`` + ``step_with_emits``), flax metadata unboxed,
  flattened with ``/`` and saved as safetensors — the layout
  ``MagentaRT2System`` loads;
- the file laid out as a Hugging Face cache entry of ``google/magenta-realtime-2``
  (``blobs/``, ``snapshots/<rev>/checkpoints/cadenza_tiny.safetensors``,
  ``refs/main``), so lookup goes through :mod:`.weights` like any other model.

It plays noise; it exists for tests, benchmarks and trying the pipeline offline.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

LIBRARY_NAME = "cadenza_tiny"
REPO_FILE = "checkpoints/cadenza_tiny.safetensors"
LOCAL_REVISION = hashlib.sha1(b"cadenza tiny random-weight checkpoint").hexdigest()


def register() -> type:
    """Register the tiny spec in the library's model registry (idempotent); the model class."""
    from magenta_rt import MagentaRT2Jax  # noqa: F401 — installs the library's vendored sequence_layers
    from magenta_rt.config import ModelSpec
    from magenta_rt.jax import model as model_configs

    found = model_configs.MODEL_REGISTRY.get(LIBRARY_NAME)
    if found is not None:
        return found
    spec = ModelSpec(num_layers=2, model_dims=256, hidden_dims=1024, num_heads=4, dim_per_head=64,
                     ffn_use_gated_activation=False)

    class CadenzaTiny(model_configs.MagentaRT2ModelSmall):
        encoder_size = spec
        decoder_temporal_size = spec
        decoder_depth_size = spec

    model_configs.MODEL_REGISTRY[LIBRARY_NAME] = CadenzaTiny
    return CadenzaTiny


def init_params(model_class: type, seed: int = 0, *, fast: bool = False) -> dict[str, np.ndarray]:
    """Random parameters for ``model_class`` through the library's sampler, flat ``a/b/c`` → array.

    ``fast`` takes only the parameter *shapes* from the sampler's ``init``
    (``jax.eval_shape``: nothing compiled or run) and fills them with scaled
    normal noise, ones for norm scales and zeros for biases — minutes faster for
    the full-size models, for benchmarks where only the shapes matter.
    """
    import flax
    import jax
    import jax.numpy as jnp
    import numpy as np
    import sequence_layers.jax as sl
    from magenta_rt.jax import spectrostream
    from magenta_rt.jax.system import MagentaRT2Sampler

    model = model_class()
    codec = spectrostream.stft_spectrostream_40ms_generic_48khz_stereo_config(
        rvq_truncation_level=model.spectrostream.rvq_truncation_level, use_unique_codes=False)
    sampler = MagentaRT2Sampler.Config(depthformer=model.depthformer_config(), spectrostream=codec).make()
    channels = model.input_num_channels
    spec = jax.ShapeDtypeStruct([channels], jnp.int32)
    first = sl.Sequence.from_values(jnp.full((1, 1, channels), 7, jnp.int32))  # all "masked" tokens
    constants = {"temperature": jnp.array([1.0]), "top_k": jnp.array([40], dtype=jnp.int32)}

    def one_step(module: Any) -> Any:
        state = module.get_initial_state(1, spec, constants={}, training=False)
        return module.step_with_emits(first, state, training=False, constants=constants)

    key = jax.random.PRNGKey(seed)
    rngs = {"params": key, "random": jax.random.fold_in(key, 1)}
    if fast:
        shapes = flax.core.meta.unbox(jax.eval_shape(lambda r: sampler.init(r, method=one_step), rngs))
        flat_shapes = flax.traverse_util.flatten_dict(shapes, sep="/")
        gen = np.random.default_rng(seed)
        out: dict[str, np.ndarray] = {}
        for name, sd in flat_shapes.items():
            leaf = name.rsplit("/", 1)[-1]
            if leaf in ("scale", "gamma"):
                out[name] = np.ones(sd.shape, sd.dtype)
            elif leaf in ("bias", "beta"):
                out[name] = np.zeros(sd.shape, sd.dtype)
            else:
                fan_in = sd.shape[-2] if len(sd.shape) >= 2 else max(1, sd.shape[-1] if sd.shape else 1)
                out[name] = (gen.standard_normal(sd.shape, np.float32) / np.sqrt(fan_in)).astype(sd.dtype)
        return out
    variables = jax.jit(lambda r: sampler.init(r, method=one_step))(rngs)
    variables = flax.core.meta.unbox(variables)
    flat = flax.traverse_util.flatten_dict(variables, sep="/")
    return {k: np.asarray(v) for k, v in flat.items()}


def build(cache: Path | None = None, seed: int = 0, say: Callable[[str], None] = lambda s: None) -> Path:
    """Build the tiny checkpoint into the Hugging Face cache; the snapshot path of the file."""
    say("initialising random weights with the library's sampler …")
    params = init_params(register(), seed)
    return save_to_cache(params, REPO_FILE, cache, {"cadenza": "tiny random-weight model", "seed": str(seed)}, say)


def save_to_cache(params: dict[str, np.ndarray], repo_file: str, cache: Path | None = None,
                  metadata: dict[str, str] | None = None, say: Callable[[str], None] = lambda s: None) -> Path:
    """Save flat parameters as safetensors under ``repo_file`` of the repo in a Hugging Face cache.

    The layout is huggingface_hub's own (content-addressed blob, snapshot
    symlink, ``refs/main``), so the normal lookup finds the file offline.
    """
    import safetensors.numpy

    from cadenza.runtime.backends.magenta import weights

    cache = Path(cache) if cache is not None else weights.cache_dir()
    repo = cache / ("models--" + weights.REPO_ID.replace("/", "--"))
    count = sum(int(getattr(v, "size", 0)) for v in params.values())
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=repo / "blobs", suffix=".incomplete", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        safetensors.numpy.save_file(params, str(tmp_path), metadata=metadata)
        digest = hashlib.sha256()
        with tmp_path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        blob = repo / "blobs" / digest.hexdigest()
        os.replace(tmp_path, blob)
    finally:
        tmp_path.unlink(missing_ok=True)
    ref = repo / "refs" / "main"
    if ref.is_file():  # a cache that already has the real repo: add the file to its snapshot
        revision = ref.read_text().strip()
    else:
        revision = LOCAL_REVISION
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(revision)
    target = repo / "snapshots" / revision / repo_file
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    try:
        target.symlink_to(os.path.relpath(blob, target.parent))
    except OSError:  # a file system without symlinks: a copy, as huggingface_hub does
        shutil.copyfile(blob, target)
    say(f"{count:,} parameters, {weights.human(blob.stat().st_size)} → {target}")
    return target
