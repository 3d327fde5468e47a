"""The backend contract over Magenta RealTime 2 (``magenta_rt.MagentaRT2Jax``), streamed frame by frame.

The model renders 40 ms frames (1,920 samples at 48 kHz stereo), each
conditioned on 144 integers: 12 MusicCoCa style tokens, a 128-pitch piano roll
(-1 masked, 0 off, 1 held, 2 onset), a drums flag and CFG-scale tokens.
``generate`` may be asked for any number of samples: it steps the model one
frame at a time with the conditioning of *that* frame (the style and controls
of the call that needs it), and keeps the rest of the frame for the next call,
so a change of prompt weights reaches the model at the next frame.

- **Style**: ``embed`` runs MusicCoCa (text or audio → 768-dim embedding);
  the runtime mixes embeddings (weighted average); the mixed vector is
  tokenized with the library's RVQ quantizer once per distinct vector.
- **Controls**: ``notes`` → piano roll with onsets (a note not held in the
  previous frame is an onset), ``drums`` / ``mute_drums`` → drums flag,
  ``guidance`` → the MusicCoCa CFG scale (clamped to the model's 0–7),
  ``temperature`` (clamped to at most 100), ``top_k`` (at most the 1,024 tokens a
  step chooses from): runtime arguments of the compiled step; ``seed`` (all 64
  bits) → the sampling key of the stream. Each clamp is a ``clamped:`` warning
  (:meth:`MagentaBackend.control_warnings`: the server puts it in SetControls'
  reply). The model has no input for bpm,
  scale, density or brightness: capabilities leave them out, so the runtime
  warns instead of pretending.
- **Compile once**: the library AOT-compiles its step at load; conditioning,
  temperature and top_k are arguments, so nothing recompiles when they change.
- **All live streams in one step** (:meth:`MagentaBackend.prefetch`): the bed,
  a crossfade's incoming deck and prompt stingers advance together, one device
  call per 40 ms frame. The model is natively batchable (every leaf of the
  library's state has the batch on axis 0, including the sampler's PRNG key, and
  temperature / top_k are per-row constants), so a step of batch B is the
  library's own ``step_with_emits`` jitted over B rows, with the B streams'
  batch-1 states stacked *inside* the compiled function and split again on
  its way out. Each stream keeps its own state (fork, reseed and ``generate``
  alone work as before); joining or leaving costs nothing. A small fixed set of
  batch sizes is compiled at start-up (default 1, 2, 3, 4, 6; a count in
  between is padded with an idle all-masked stream whose output is dropped);
  batch 1 is the library's own compiled step. Persistent batched slots were
  measured against this and gave nothing measurable (bench/magenta.md).
- **Precision**: ``precision="bf16"`` stores the depthformer's weights in
  bfloat16 (the SpectroStream codec stays float32), halving the bytes the
  memory-bound step reads; its token agreement with fp32 is measured
  (:func:`token_agreement`, bench/magenta.md).
- **Warm-up**: start-up runs every compiled batch size, a fork, a reseed and the
  host transfer once, so nothing compiles while the music plays.
- **Speculation** (``speculate=True``, off by default, an experiment for GPUs):
  every step also launches each stream's next frame with its current inputs
  before this frame's audio is fetched, so the device never waits for the
  host; the next step takes it when its inputs are unchanged, else drops it.
  Its steps do not donate the state (it must stay valid until the launched
  frame is confirmed).
- **State**: the library donates the state's buffers to XLA, so
  :meth:`MagentaState.fork` copies them before a crossfade deck branches.
- **Beats**: a :class:`~cadenza.runtime.backends.beats.BeatTracker` listens to
  each generated frame and reports estimated beats.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cadenza.errors import ModelError, PromptError, UsageError
from cadenza.runtime.audio import read_mono
from cadenza.runtime.backends.base import (
    CHANNELS,
    SAMPLE_RATE,
    AudioPrompt,
    Beat,
    Capabilities,
    Controls,
    Embedding,
    Prompt,
    StepJob,
    TextPrompt,
)
from cadenza.runtime.backends.beats import BeatTracker
from cadenza.runtime.backends.magenta import tiny, weights

import magenta_rt
from magenta_rt import MagentaRT2Jax
from magenta_rt.config import DRUM_PIANOROLL, MUSICCOCA, PIANOROLL_WITH_ONSETS
from magenta_rt.jax import system as _library
from magenta_rt.musiccoca import MockMusicCoCa, MusicCoCa

log = logging.getLogger(__name__)

FRAME = 1920  # samples per model frame (40 ms)
GUIDANCE_RANGE = (0.0, 7.0)
#: The largest temperature the model takes: the sampler adds Gumbel noise × temperature to the logits, so far above
#: this the noise drowns the model (every allowed token alike) and, near 1e38, its masks of invalid tokens.
TEMPERATURE_MAX = 100.0
PITCHES = 128
NOTE_OFF, NOTE_HELD, NOTE_ONSET, MASKED = 0, 1, 2, -1
STYLE_DIM = 768
AUDIO_PROMPT_SECONDS = 10.0
DEFAULT_BATCH_SIZES = (1, 2, 3, 4, 6)  # 1 bed + 1 incoming deck + up to 4 stingers
PRECISIONS = ("fp32", "bf16")
_STEP_RNGS = {"params": jax.random.PRNGKey(42), "random": jax.random.PRNGKey(0)}  # as the library's step


def _key(seed: int) -> Any:
    """The sampler's key for ``seed``: all 64 bits of it (any int, taken modulo 2**64). The key of a seed below
    2**31 is ``jax.random.PRNGKey(seed)``'s, which with JAX's 32-bit integers fails above 2**63 and drops the high
    half of larger seeds; this is the key PRNGKey gives with 64-bit integers."""
    s = seed % 2**64
    return jax.random.split(jnp.array([s >> 32, s & 0xFFFFFFFF], dtype=jnp.uint32), 1)


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def model_ranges(tokens: int) -> dict[str, tuple[float, float]]:
    """What the model takes of each control it clamps: ``tokens`` the choices of one sampling step (a larger
    top_k is the same as top_k = tokens: every token a candidate)."""
    return {"temperature": (0.0, TEMPERATURE_MAX), "top_k": (1, tokens), "guidance": GUIDANCE_RANGE}


def clamp_warnings(controls: Controls, ranges: dict[str, tuple[float, float]]) -> list[str]:
    """A ``clamped:`` warning for each control set outside the range the model takes (see :func:`model_ranges`)."""
    out = []
    for name, (lo, hi) in ranges.items():
        value = getattr(controls, name)
        if value is not None and not lo <= value <= hi:
            became = min(max(value, lo), hi)
            extra = " (the same: every token is a candidate)" if name == "top_k" else ""
            out.append(f"clamped: {name} {_num(value)} is outside what the model takes ({_num(lo)}–{_num(hi)}); "
                       f"it plays as {_num(became)}{extra}")
    return out


@dataclass
class _Ahead:
    """A frame launched before it was asked for, with the inputs it assumed (``speculate=True``)."""

    inputs: tuple[bytes, float, int]  # the conditioning row, temperature, top_k it was launched with
    audio: Any  # the batch's int16 audio on the device
    row: int  # this stream's row in it
    model: Any  # the stream's state after the frame


@dataclass
class MagentaState:
    """A Magenta stream: the library's state plus the frame being played out. Fork before branching."""

    model: Any  # the library's streaming state (a pytree of device arrays; donated on each step)
    seed: int
    frame: int = 0  # samples returned so far
    pending: np.ndarray = field(default_factory=lambda: np.zeros((0, CHANNELS), np.float32))
    notes: frozenset[int] = frozenset()  # pitches held in the last generated frame
    beats: list[Beat] = field(default_factory=list)
    upcoming: list[Beat] = field(default_factory=list)  # tracked beats not yet returned
    tracker: BeatTracker = field(default_factory=BeatTracker)
    conditioning: np.ndarray | None = None  # the 144 tokens of the last generated frame (for tests, status)
    cfg_scales: dict[str, float] = field(default_factory=dict)  # of the last generated frame
    frames_generated: int = 0
    seed_control: int | None = None
    ahead: Any = None  # a speculative next frame (_Ahead) already launched on the device, or None

    def fork(self) -> "MagentaState":
        return MagentaState(model=jax.tree.map(lambda x: x.copy(), self.model), seed=self.seed, frame=self.frame,
                            pending=self.pending.copy(), notes=self.notes, beats=list(self.beats),
                            upcoming=list(self.upcoming), tracker=self.tracker.copy(),
                            conditioning=None if self.conditioning is None else self.conditioning.copy(),
                            cfg_scales=dict(self.cfg_scales), frames_generated=self.frames_generated,
                            seed_control=self.seed_control)


def _cast_transformer(params: Any, dtype: Any) -> Any:
    """``params`` with the depthformer's floating-point weights cast to ``dtype`` (the codec's untouched)."""
    inner = dict(params["params"])
    inner["depthformer"] = jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, inner["depthformer"])
    return {**params, "params": inner}


def _system_class(precision: str) -> type:
    """The library's system class, or a subclass that casts the weights before the library compiles its step."""
    if precision == "fp32":
        return MagentaRT2Jax

    class Bf16System(MagentaRT2Jax):
        def _compile(self) -> None:
            self._params = _cast_transformer(vars(self)["_params"], jnp.bfloat16)
            super()._compile()

    return Bf16System


class _Progress(logging.Handler):
    """Turns the library's loading log lines into timed progress messages."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self.say = say
        self.t0 = time.perf_counter()
        self.times: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        now = time.perf_counter()
        if msg.startswith("Loading checkpoint"):
            self.times["load_start"] = now
            self.say("loading weights …")
        elif msg.startswith("Total parameters"):
            self.times["loaded"] = now
            self.say(f"weights loaded in {now - self.times.get('load_start', self.t0):.1f} s")
        elif msg.startswith("Compiling"):
            self.times["compile_start"] = now
            self.say("compiling the streaming step (once) …")
        elif msg.startswith("Compilation time"):
            self.times["compiled"] = now


class MagentaBackend:
    """Magenta RealTime 2 on the local accelerator (or CPU), one 40 ms frame at a time."""

    name = "magenta"
    capabilities = Capabilities(
        controls=frozenset({"notes", "drums", "mute_drums", "temperature", "top_k", "guidance", "seed"}),
        audio_prompts=True,
        beat_grid=False,
        step_frames=FRAME,
    )

    def __init__(self, model: str = "mrt2_small", device: str | None = None, style_model: str | None = None,
                 say: Callable[[str], None] | None = None, precision: str = "fp32",
                 batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES, warm: bool = True,
                 speculate: bool = False) -> None:
        say = say or log.info  # loading and compile progress (the CLI shows it on stderr)
        if precision not in PRECISIONS:
            raise ModelError(f"unknown precision {precision!r}; choose fp32 or bf16")
        if not batch_sizes or any(not isinstance(b, int) or b < 1 for b in batch_sizes):
            raise ModelError(f"batch sizes must be positive integers, got {list(batch_sizes)!r} (e.g. 1, 2, 3, 4, 6)")
        self.precision = precision
        checkpoints = [name for name, m in weights.MODELS.items() if m.library_size is not None]  # not "resources"
        if model not in checkpoints:
            raise UsageError(f"unknown model {model!r}; choose one of {', '.join(checkpoints)}", where="--model")
        item = weights.MODELS[model]
        checkpoint = weights.resolve(model)  # ModelError naming the file and the download command
        if style_model is None:
            style_model = "mock" if model == "tiny" else "musiccoca"
        if style_model == "mock":
            style = MockMusicCoCa()
        elif style_model == "musiccoca":
            style = MusicCoCa(resource_dir=weights.resolve_resources())
        else:
            raise ModelError(f"unknown style model {style_model!r}; choose musiccoca or mock")
        if item.library_size == tiny.LIBRARY_NAME:
            tiny.register()
        dev = jax.devices()[0]
        if device is not None and dev.platform != {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}[device]:
            raise ModelError(f"JAX found no {device} (it has {dev.platform}); install jax with {device} support")
        self.device = f"{dev.platform}:{dev.id} ({getattr(dev, 'device_kind', dev.platform)})"
        self.model_name = model
        self.style_model_name = style_model
        say(f"magenta-rt {magenta_rt.__version__}, model {model} on {self.device}, "
            f"checkpoint {checkpoint} ({weights.human(checkpoint.stat().st_size)})")
        progress = _Progress(say)
        lib_log = logging.getLogger("magenta_rt.jax.system")
        lib_log.addHandler(progress)
        old_level, old_propagate = lib_log.level, lib_log.propagate
        lib_log.setLevel(logging.INFO)
        lib_log.propagate = False  # progress goes through ``say``, not the root logger
        t0 = time.perf_counter()
        try:
            self.system = _system_class(precision)(size=item.library_size, style_model=style,
                                                   checkpoint=str(checkpoint))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot load {checkpoint}: {type(exc).__name__}: {exc} "
                             f"(a partial or foreign file? download it again: cadenza models download {model})"
                             ) from exc
        finally:
            lib_log.removeHandler(progress)
            lib_log.setLevel(old_level)
            lib_log.propagate = old_propagate
        t1 = time.perf_counter()
        self.parameters = int(sum(int(v.size) for v in jax.tree.leaves(self.system._params)))
        self.load_seconds = progress.times.get("loaded", t1) - progress.times.get("load_start", t0)
        self.compile_seconds = progress.times.get("compiled", t1) - progress.times.get("compile_start", t1)
        say(f"{self.parameters:,} parameters ({precision}); step compiled in {self.compile_seconds:.1f} s; "
            f"weights ready in {t1 - t0:.1f} s")
        self._tokens: dict[bytes, list[int]] = {}
        self._rows: dict[tuple[Any, ...], np.ndarray] = {}
        self._key_leaf: int | None = None
        self._scales = dict(self.system.cfg_scales)
        sampler_cfg = getattr(self.system._sampler, "cfg", None)
        quantizer = getattr(getattr(sampler_cfg, "spectrostream", None), "quantizer", None)
        self.step_tokens = int(getattr(quantizer, "num_embeddings", 2**31 - 1))  # the choices of one sampling step
        self.ranges = model_ranges(self.step_tokens)
        self._pad_row = self._row({}, {})
        self._pad_state = self.system._jit_init_state(self.system._params, {})  # the idle row of a padded batch
        self.batch_sizes = tuple(sorted(set(batch_sizes) | {1}))
        self.batch_compile_seconds: dict[int, float] = {1: self.compile_seconds}
        self._steps: dict[int, Any] = {}
        self.device_calls: Counter[int] = Counter()  # device steps by the number of streams in them (status, tests)
        # speculation keeps each stream's state until its launched frame is confirmed: its steps must not donate,
        # so batch 1 runs a non-donating copy of the step too (and the speculated frame and an on-demand one are
        # the same executable's, bit for bit)
        self.speculation_possible = speculate
        self.speculate = speculate
        self.speculation = Counter({"hit": 0, "miss": 0})
        compiled = self.batch_sizes if speculate else self.batch_sizes[1:]
        lowered = {size: self._lower_batch(size) for size in compiled}  # tracing holds the GIL
        workers = max(1, min(len(lowered), (os.cpu_count() or 1) // 4))  # XLA compiles without it, in threads

        def compile_one(size: int) -> tuple[int, Any, float]:
            t = time.perf_counter()
            return size, lowered[size].compile(), time.perf_counter() - t

        t = time.perf_counter()
        with ThreadPoolExecutor(workers, thread_name_prefix="magenta-compile") as pool:
            for size, step, seconds in pool.map(compile_one, lowered):
                self._steps[size] = step
                self.batch_compile_seconds[size] = seconds
                say(f"batched step for {size} streams compiled in {seconds:.1f} s")
        if len(lowered) > 1 and workers > 1:
            say(f"batched steps compiled in {time.perf_counter() - t:.1f} s ({workers} at a time)")
        self.warm_seconds = 0.0
        if warm:
            t = time.perf_counter()
            self.warm_up()
            self.warm_seconds = time.perf_counter() - t
        say(f"ready in {time.perf_counter() - t0:.1f} s (batch sizes {', '.join(map(str, self.batch_sizes))}; "
            f"warm-up {self.warm_seconds:.1f} s)")

    @property
    def style_dim(self) -> int:
        return STYLE_DIM

    # ------------------------------------------------------------------ prompts
    def embed(self, prompt: Prompt) -> Embedding:
        if isinstance(prompt, TextPrompt):
            text = prompt.text.strip()
            if not text:
                raise PromptError("an empty text prompt cannot be embedded")
            vector = self.system.embed_style(text)
        elif isinstance(prompt, AudioPrompt):
            mono, rate, _ = read_mono(prompt.path, prompt.data)
            mono = mono[: int(AUDIO_PROMPT_SECONDS * rate)].astype(np.float32)
            if not np.any(mono):
                raise PromptError(f"audio prompt {str(prompt.path)!r} is silent; give a file with audible sound")
            vector = self.system.embed_style(magenta_rt.audio.Waveform(mono, rate))
        else:
            raise PromptError(f"unsupported prompt type {type(prompt).__name__}")
        return Embedding(np.asarray(vector, np.float32).reshape(STYLE_DIM))

    # ------------------------------------------------------------------ streams
    def new_stream(self, seed: int = 0) -> MagentaState:
        state = self.system._jit_init_state(self.system._params, {})
        return MagentaState(model=self._reseed(state, seed), seed=seed)

    def _reseed(self, model_state: Any, seed: int) -> Any:
        """The library's state with the sampler's key drawn from ``seed``."""
        leaves, tree = jax.tree.flatten(model_state)
        key = _key(seed)
        if self._key_leaf is None:  # the one (1, 2) uint32 leaf: the depthformer sampler's PRNG key
            found = [i for i, leaf in enumerate(leaves) if leaf.shape == key.shape and leaf.dtype == key.dtype]
            if len(found) != 1:
                raise ModelError(f"unexpected magenta-rt state layout ({len(found)} PRNG keys); "
                                 "this Cadenza supports magenta-rt 2.0.x")
            self._key_leaf = found[0]
        leaves[self._key_leaf] = key
        return jax.tree.unflatten(tree, leaves)

    def generate(self, state: MagentaState, style: np.ndarray, controls: Controls,
                 frames: int) -> tuple[np.ndarray, MagentaState]:
        self._apply_seed(state, controls)
        missing = frames - state.pending.shape[0]
        if missing > 0:  # what prefetch did not make ready: step it here, batch 1
            self._advance([(state, style, controls, math.ceil(missing / FRAME))])
        out = state.pending[:frames]
        state.pending = state.pending[frames:]
        end = state.frame + frames
        state.beats = [b for b in state.upcoming if b.frame < end]
        state.upcoming = [b for b in state.upcoming if b.frame >= end]
        state.frame = end
        return out, state

    def prefetch(self, jobs: Sequence[StepJob]) -> None:
        """Generate ahead, for every job, the frames its next ``generate`` call needs: one batched call per frame.

        The streams advance together (frame k of every stream that needs a
        k-th frame in one device call), each with its own conditioning,
        temperature, top_k and sampling key. A stream that will need its next
        frame within the next 40 ms steps now too, one frame ahead of need,
        so that streams which started at different samples (a crossfade deck,
        a stinger, each from an offset inside the bed's frame) fall into step
        and batch from then on; its next frame is still the first generated
        after any change of its conditioning. Further, it dispatches every frame before it
        fetches any audio, so the host never waits between frames. Touches only
        the jobs' states (the generation thread calls it without the engine
        lock). A stream samples the tokens ``generate`` alone would sample,
        except at near-ties of the sampler (a batched matmul sums in another
        order than batch 1: 1 token in 25–100 with random weights on CPU), and
        its audio is bit-identical whenever its tokens are (the tolerance and
        why: tests/test_magenta.py).
        """
        work: list[tuple[MagentaState, np.ndarray, Controls, int]] = []
        soon: list[tuple[MagentaState, np.ndarray, Controls, int]] = []
        seen: set[int] = set()
        for job in jobs:
            state = job.state
            if not isinstance(state, MagentaState):
                raise ModelError(f"prefetch got a {type(state).__name__} stream; the magenta backend "
                                 "steps only its own MagentaState streams (made by new_stream or fork)")
            if id(state) in seen:
                raise ModelError("prefetch got the same stream twice; give one job per stream "
                                 "(its frames the sum of what the generate calls will ask)")
            seen.add(id(state))
            self._apply_seed(state, job.controls)
            missing = job.frames - state.pending.shape[0]
            if missing > 0:
                work.append((state, job.style, job.controls, math.ceil(missing / FRAME)))
            elif state.pending.shape[0] - job.frames < FRAME:  # due within the next frame
                soon.append((state, job.style, job.controls, 1))
        if work:  # streams due within a frame step now too: their frames line up, so later blocks batch them
            self._advance(work + soon)

    def _apply_seed(self, state: MagentaState, controls: Controls) -> None:
        if controls.seed is not None and controls.seed != state.seed_control:
            state.seed_control = controls.seed
            state.ahead = None
            state.model = self._reseed(state.model, controls.seed)

    def warm_up(self) -> None:
        """Run once everything the live path runs, so that nothing compiles while the music plays.

        new_stream, reseed, fork, a step of every compiled batch size (a padded
        batch runs the same executable), a step alone, the host transfer and the
        beat tracker.
        """
        style = np.zeros(STYLE_DIM, np.float32)  # no prompt: masked style tokens (no MusicCoCa call)
        streams = [self.new_stream(i) for i in range(max(self.batch_sizes))]
        streams.append(streams[0].fork())
        self._apply_seed(streams[1], Controls(seed=7))
        for size in self.batch_sizes:
            self.prefetch([StepJob(s, style, Controls(), FRAME) for s in streams[:size]])
            streams[0].fork()  # a copy of each executable's outputs compiles once per kind of array it meets
        self.generate(streams[0], style, Controls(notes=(60,), temperature=1.0, top_k=20), 2 * FRAME)
        for s in streams:
            s.fork()
            jax.block_until_ready(s.model)

    # --------------------------------------------------------------- the step
    def _row(self, cond: dict[str, list[int]], scales: dict[str, float]) -> np.ndarray:
        """The model's 144 input tokens (offset as the library offsets them) for this conditioning; cached."""
        key = (tuple(tuple(v) for v in cond.values()), tuple(cond), tuple(sorted(scales.items())))
        row = self._rows.get(key)
        if row is None:
            block, _ = self.system._build_conditioning(cond, scales)
            row = np.asarray(block.values, np.int32).reshape(-1)
            if len(self._rows) > 4096:
                self._rows.clear()
            self._rows[key] = row
        return row

    def _lower_batch(self, size: int) -> Any:
        """The library's ``step_with_emits`` over ``size`` streams, lowered for AOT compilation: their batch-1
        states stacked in, the step, the states split out. Checks that every leaf of the state has the batch on
        axis 0."""
        sampler = self.system._sampler
        params = self.system._params
        channels = self.system._num_channels
        spec = jax.ShapeDtypeStruct([channels], jnp.int32)
        rngs = {"params": jax.random.PRNGKey(42), "random": jax.random.PRNGKey(0)}  # the library's own

        def initial(p: Any, batch: int) -> Any:
            return sampler.apply(p, batch, spec, constants={}, training=False, rngs=rngs,
                                 method=sampler.get_initial_state)

        one = jax.tree.leaves(jax.eval_shape(lambda p: initial(p, 1), params))
        many = jax.tree.leaves(jax.eval_shape(lambda p: initial(p, size), params))
        bad = [(a.shape, b.shape) for a, b in zip(one, many, strict=True)
               if a.shape[:1] != (1,) or b.shape != (size, *a.shape[1:]) or a.dtype != b.dtype]
        if bad:
            raise ModelError(f"this magenta-rt's state has leaves without the batch on axis 0 ({bad[:3]}); "
                             "batched steps need magenta-rt 2.0.x (or run with batch_sizes=(1,))")

        def step(p: Any, rows: Any, temperature: Any, top_k: Any, states: tuple[Any, ...]) -> Any:
            state = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *states)
            out, state, _ = sampler.apply(p, x=_library.sl.Sequence.from_values(rows[:, None, :]), state=state,
                                          constants={"temperature": temperature, "top_k": top_k},
                                          training=False, rngs=rngs, method=sampler.step_with_emits)
            return out.values, tuple(jax.tree.map(lambda x, i=i: x[i:i + 1], state) for i in range(size))

        return jax.jit(step).lower(params, np.zeros((size, channels), np.int32), np.ones(size, np.float32),
                                   np.full(size, 40, np.int32), (self._pad_state,) * size)

    def _advance(self, work: list[tuple[MagentaState, np.ndarray, Controls, int]]) -> None:
        """Step every (state, style, controls, n) ``n`` frames: round k batches the streams that need a k-th
        frame. Every round is dispatched before any audio is fetched (and, with ``speculate``, the next frame of
        every stream is launched with the same inputs before the fetch); then each stream's frames go to its
        ``pending`` audio and beat tracker, in order."""
        biggest = self.batch_sizes[-1]
        fetched: list[tuple[MagentaState, Any, int]] = []
        for k in range(max(n for *_, n in work)):
            group = [(st, style, ctl) for st, style, ctl, n in work if n > k]
            for i in range(0, len(group), biggest):
                part = group[i:i + biggest]
                fetched += [(st, out, row) for (st, _, _), (out, row) in zip(part, self._dispatch(part))]
        if self.speculate and self.speculation_possible:
            group = [(st, style, ctl) for st, style, ctl, _ in work]
            for i in range(0, len(group), biggest):
                self._launch_ahead(group[i:i + biggest])
        host: dict[int, np.ndarray] = {}
        for st, out, row in fetched:
            audio = host.get(id(out))
            if audio is None:
                audio = host[id(out)] = np.asarray(out)
                if audio.shape[1:] != (FRAME, CHANNELS):
                    raise ModelError(f"the model returned audio of shape {audio.shape[1:]}, "
                                     f"expected ({FRAME}, {CHANNELS})")
            pcm = audio[row].astype(np.float32) / 32768.0  # as the library's generate(): int16 → float
            st.pending = np.concatenate([st.pending, pcm]) if st.pending.shape[0] else pcm
            st.upcoming.extend(st.tracker.feed(pcm))

    def control_warnings(self, controls: Controls) -> list[str]:
        """A ``clamped:`` warning for each of these controls beyond what the model takes (the step clamps it):
        the server adds them to SetControls' reply and publishes them."""
        return clamp_warnings(controls, self.ranges)

    def _sampling(self, controls: Controls) -> tuple[float, int]:
        """The step's temperature and top_k for these controls, clamped into what the model takes."""
        temperature = self.system.temperature if controls.temperature is None else \
            min(float(controls.temperature), TEMPERATURE_MAX)
        top_k = self.system.top_k if controls.top_k is None else min(int(controls.top_k), self.step_tokens)
        return temperature, top_k

    def _inputs(self, st: MagentaState, style: np.ndarray, controls: Controls
                ) -> tuple[np.ndarray, float, int, dict[str, list[int]], dict[str, float], frozenset[int]]:
        cond, scales, held = self.conditioning(st, style, controls)
        temperature, top_k = self._sampling(controls)
        return self._row(cond, scales), temperature, top_k, cond, scales, held

    def _dispatch(self, part: list[tuple[MagentaState, np.ndarray, Controls]]) -> list[tuple[Any, int]]:
        """One frame of these streams: per stream, its int16 audio batch on the device (not yet fetched) and its row
        in it — one device call, or none for streams whose speculative frame was launched with these inputs."""
        results: list[tuple[Any, int] | None] = [None] * len(part)
        todo: list[tuple[int, MagentaState, np.ndarray, float, int]] = []
        for j, (st, style, controls) in enumerate(part):
            row, temperature, top_k, cond, scales, held = self._inputs(st, style, controls)
            ahead, st.ahead = st.ahead, None
            if ahead is not None and ahead.inputs == (row.tobytes(), temperature, top_k):
                st.model = ahead.model
                results[j] = (ahead.audio, ahead.row)
                self.speculation["hit"] += 1
            else:
                self.speculation["miss"] += ahead is not None
                todo.append((j, st, row, temperature, top_k))
            st.notes = held
            st.conditioning = np.array(cond[MUSICCOCA.key] + cond[PIANOROLL_WITH_ONSETS.key]
                                       + cond[DRUM_PIANOROLL.key], np.int32)
            st.cfg_scales = scales
            st.frames_generated += 1
        if todo:
            audio, models = self._launch([t[1].model for t in todo], [t[2] for t in todo], [t[3] for t in todo],
                                         [t[4] for t in todo])
            for i, (j, st, *_) in enumerate(todo):
                st.model = models[i]
                results[j] = (audio, i)
        return [r for r in results if r is not None]

    def _launch_ahead(self, part: list[tuple[MagentaState, np.ndarray, Controls]]) -> None:
        """Launch the next frame of these streams with the inputs they have now; kept until the next step asks."""
        inputs = []
        for st, style, controls in part:
            cond, scales, _ = self.conditioning(st, style, controls)
            inputs.append((self._row(cond, scales), *self._sampling(controls)))
        audio, models = self._launch([st.model for st, _, _ in part], [x[0] for x in inputs],
                                     [x[1] for x in inputs], [x[2] for x in inputs])
        for i, ((st, _, _), (row, temperature, top_k)) in enumerate(zip(part, inputs)):
            st.ahead = _Ahead((row.tobytes(), temperature, top_k), audio, i, models[i])

    def _launch(self, models: list[Any], rows: list[np.ndarray], temps: list[float], topks: list[int]
                ) -> tuple[Any, list[Any]]:
        """One device call: the batch's int16 audio (B, FRAME, 2) and each stream's next state."""
        self.device_calls[len(models)] += 1
        if len(models) == 1 and 1 not in self._steps:  # the library's own compiled step, as its generate() calls it
            block = _library.sl.Sequence.from_values(rows[0].reshape(1, 1, -1))
            constants = {"temperature": jnp.array([temps[0]]), "top_k": jnp.array([topks[0]], dtype=jnp.int32)}
            out, model, _ = self.system._jit_streaming_step(self.system._params, block, constants, models[0])
            return out.values, [model]
        size = next(b for b in self.batch_sizes if b >= len(models))
        pad = size - len(models)
        audio, new = self._steps[size](self.system._params, np.stack(rows + [self._pad_row] * pad),
                                       np.array(temps + [1.0] * pad, np.float32),
                                       np.array(topks + [40] * pad, np.int32),
                                       tuple(models) + (self._pad_state,) * pad)
        return audio, list(new[:len(models)])

    def tokens(self, state: MagentaState) -> np.ndarray:
        """The RVQ tokens the depthformer sampled for the stream's last frame (for agreement measurements)."""
        leaves = jax.tree.leaves(state.model)
        if self._key_leaf is None:
            self._reseed(state.model, state.seed)
        assert self._key_leaf is not None
        found = leaves[self._key_leaf + 1]  # the sampler's state: (key, last frame's tokens, …)
        if found.dtype != jnp.int32 or found.ndim != 3 or found.shape[:2] != (1, 1):
            raise ModelError(f"unexpected magenta-rt state layout (tokens leaf {found.shape} {found.dtype})")
        return np.asarray(found).reshape(-1)

    # --------------------------------------------------------------- one frame
    def style_tokens(self, style: np.ndarray) -> list[int]:
        """The 12 MusicCoCa RVQ tokens of a (mixed) style vector; cached per distinct vector."""
        vec = np.ascontiguousarray(style, np.float32)
        key = hashlib.blake2b(vec.tobytes(), digest_size=16).digest()
        tokens = self._tokens.get(key)
        if tokens is None:
            if not np.all(np.isfinite(vec)) or not np.any(vec):
                tokens = [MASKED] * MUSICCOCA.rvq_truncation_level  # silence of prompts: unconditioned style
            else:
                tokens = [int(t) for t in self.system.tokenize_style(vec)][: MUSICCOCA.rvq_truncation_level]
            if len(self._tokens) > 4096:
                self._tokens.clear()
            self._tokens[key] = tokens
        return tokens

    def conditioning(self, state: MagentaState, style: np.ndarray, controls: Controls
                     ) -> tuple[dict[str, list[int]], dict[str, float], frozenset[int]]:
        """The conditioning of the next frame: tokens per input, CFG scales, the notes then held."""
        if controls.notes is None:
            roll = [MASKED] * PITCHES
            held: frozenset[int] = frozenset()
        else:
            held = frozenset(controls.notes)
            roll = [NOTE_OFF] * PITCHES
            for p in held:
                roll[p] = NOTE_HELD if p in state.notes else NOTE_ONSET
        if controls.mute_drums:
            drums = [0]
        elif controls.drums is None:
            drums = [MASKED]
        else:
            drums = [1 if controls.drums else 0]
        scales = dict(self._scales)
        if controls.guidance is not None:
            scales["musiccoca"] = min(GUIDANCE_RANGE[1], max(GUIDANCE_RANGE[0], controls.guidance))
        cond = {MUSICCOCA.key: self.style_tokens(style), PIANOROLL_WITH_ONSETS.key: roll, DRUM_PIANOROLL.key: drums}
        return cond, scales, held


def token_agreement(fp32: MagentaBackend, bf16: MagentaBackend, style: np.ndarray, frames: int,
                    seed: int = 3) -> dict[str, Any]:
    """bf16 against fp32 weights on the same seed and conditioning.

    *Teacher-forced*: each frame, both step from the fp32 stream's state; the
    fraction of sampled RVQ tokens that match (the figure that says how often
    bf16 rounding changes a choice). *Free-running*: the first frame at which
    two streams left to themselves differ (after it their contexts differ).
    """
    controls = Controls()
    ref = fp32.new_stream(seed)
    free = bf16.new_stream(seed)
    same_layout = ([(x.shape, x.dtype) for x in jax.tree.leaves(ref.model)]
                   == [(x.shape, x.dtype) for x in jax.tree.leaves(free.model)])
    equal = total = 0
    first_difference: int | None = None
    for k in range(frames):
        if same_layout:
            forced = ref.fork()
            bf16.generate(forced, style, controls, FRAME)
        fp32.generate(ref, style, controls, FRAME)
        bf16.generate(free, style, controls, FRAME)
        expected = fp32.tokens(ref)
        if same_layout:
            got = bf16.tokens(forced)
            equal += int(np.sum(expected == got))
            total += expected.size
        if first_difference is None and not np.array_equal(expected, bf16.tokens(free)):
            first_difference = k
    return {"frames": frames, "teacher_forced": round(equal / total, 4) if total else None,
            "tokens_compared": total, "free_running_first_difference_frame": first_difference}


__all__ = ["DEFAULT_BATCH_SIZES", "FRAME", "MagentaBackend", "MagentaState", "PRECISIONS", "token_agreement"]
