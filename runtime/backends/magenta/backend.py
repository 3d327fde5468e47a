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
  ``temperature``, ``top_k`` (runtime arguments of the compiled step),
  ``seed`` → the sampling key of the stream. The model has no input for bpm,
  scale, density or brightness: capabilities leave them out, so the runtime
  warns instead of pretending.
- **Compile once**: the library AOT-compiles its step at load; conditioning,
  temperature and top_k are arguments, so nothing recompiles when they change.
- **State**: the library donates the state's buffers to XLA, so
  :meth:`MagentaState.fork` copies them before a crossfade deck branches.
- **Beats**: a :class:`~cadenza.runtime.backends.beats.BeatTracker` listens to
  each generated frame and reports estimated beats.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from cadenza.errors import ModelError, PromptError
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
    TextPrompt,
)
from cadenza.runtime.backends.beats import BeatTracker
from cadenza.runtime.backends.magenta import tiny, weights

import magenta_rt
from magenta_rt import MagentaRT2Jax
from magenta_rt.config import DRUM_PIANOROLL, MUSICCOCA, PIANOROLL_WITH_ONSETS
from magenta_rt.musiccoca import MockMusicCoCa, MusicCoCa

log = logging.getLogger(__name__)

FRAME = 1920  # samples per model frame (40 ms)
GUIDANCE_RANGE = (0.0, 7.0)
PITCHES = 128
NOTE_OFF, NOTE_HELD, NOTE_ONSET, MASKED = 0, 1, 2, -1
STYLE_DIM = 768
AUDIO_PROMPT_SECONDS = 10.0


def _key(seed: int) -> Any:
    return jax.random.split(jax.random.PRNGKey(seed), 1)


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

    def fork(self) -> "MagentaState":
        return MagentaState(model=jax.tree.map(lambda x: x.copy(), self.model), seed=self.seed, frame=self.frame,
                            pending=self.pending.copy(), notes=self.notes, beats=list(self.beats),
                            upcoming=list(self.upcoming), tracker=self.tracker.copy(),
                            conditioning=None if self.conditioning is None else self.conditioning.copy(),
                            cfg_scales=dict(self.cfg_scales), frames_generated=self.frames_generated,
                            seed_control=self.seed_control)


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
                 say: Callable[[str], None] | None = None) -> None:
        say = say or log.info  # loading and compile progress (the CLI shows it on stderr)
        item = weights.entry(model, "--model")
        if item.library_size is None:
            raise ModelError(f"{model!r} is not a model checkpoint; choose mrt2_small, mrt2_base or tiny")
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
            self.system = MagentaRT2Jax(size=item.library_size, style_model=style, checkpoint=str(checkpoint))
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
        say(f"{self.parameters:,} parameters; compiled in {self.compile_seconds:.1f} s; "
            f"ready in {t1 - t0:.1f} s")
        self._tokens: dict[bytes, list[int]] = {}
        self._key_leaf: int | None = None
        self._scales = dict(self.system.cfg_scales)

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
        if controls.seed is not None and controls.seed != state.seed_control:
            state.seed_control = controls.seed
            state.model = self._reseed(state.model, controls.seed)
        out = np.empty((frames, CHANNELS), np.float32)
        filled = 0
        while filled < frames:
            if state.pending.shape[0] == 0:
                state.pending = self._step(state, style, controls)
            take = min(frames - filled, state.pending.shape[0])
            out[filled:filled + take] = state.pending[:take]
            state.pending = state.pending[take:]
            filled += take
        end = state.frame + frames
        state.beats = [b for b in state.upcoming if b.frame < end]
        state.upcoming = [b for b in state.upcoming if b.frame >= end]
        state.frame = end
        return out, state

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

    def _step(self, state: MagentaState, style: np.ndarray, controls: Controls) -> np.ndarray:
        """One 40 ms frame through the library's ``generate()`` with this call's conditioning."""
        cond, scales, held = self.conditioning(state, style, controls)
        temperature = None if controls.temperature is None else float(controls.temperature)
        top_k = None if controls.top_k is None else int(controls.top_k)
        wav, state.model = self.system.generate(conditioning=cond, cfg_scales=scales, temperature=temperature,
                                                top_k=top_k, frames=1, state=state.model)
        pcm = np.ascontiguousarray(wav.samples, np.float32)
        if pcm.shape != (FRAME, CHANNELS):
            raise ModelError(f"the model returned audio of shape {pcm.shape}, expected ({FRAME}, {CHANNELS})")
        np.nan_to_num(pcm, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        state.notes = held
        state.conditioning = np.array(cond[MUSICCOCA.key] + cond[PIANOROLL_WITH_ONSETS.key]
                                      + cond[DRUM_PIANOROLL.key], np.int32)
        state.cfg_scales = scales
        state.frames_generated += 1
        state.upcoming.extend(state.tracker.feed(pcm))
        return pcm


__all__ = ["FRAME", "MagentaBackend", "MagentaState"]
