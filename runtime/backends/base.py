"""The backend contract: what every music backend (synth, magenta) implements.

A backend turns a style vector plus controls into audio, one generation step at
a time, carrying its own opaque stream state::

    backend.embed(prompt)                    -> Embedding (vector in the backend's space)
    backend.new_stream(seed)                 -> state
    backend.generate(state, style, controls, frames) -> (pcm, state)

``pcm`` is float32 with shape ``(frames, 2)`` at :data:`SAMPLE_RATE`. The state
passed to ``generate`` is *consumed*: its buffers may be reused for the
returned state (as JAX donates them), so a caller that wants to branch a
stream (a crossfade deck, a preview) calls ``state.fork()`` first. A forked
state continues bit-identically to the original.

Prompt mixing (the weighted average of embeddings with normalized weights) is
done once by the runtime (:mod:`cadenza.runtime.mixing`), not per backend.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cadenza.errors import UsageError
from cadenza.graph_format.controls import BPM_RANGE as BPM_RANGE
from cadenza.graph_format.controls import CONTROL_RANGES, control_problem, range_text
from cadenza.proto.wire import CONTROL_NAMES
from cadenza.runtime.audio import CHANNELS, SAMPLE_RATE
from cadenza.runtime.limits import MAX_NOTES

#: Every control the runtime knows, whichever backend honours it: the fields of the protobuf ``Controls``.
ALL_CONTROLS = CONTROL_NAMES



@dataclass(frozen=True)
class TextPrompt:
    """A text prompt such as ``"dark techno"``."""

    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class AudioPrompt:
    """An audio file (WAV/FLAC) whose style the backend should follow.

    ``data``: the file's bytes, when the runtime has read them already (a
    client's file, read once inside the allowed folders): the backend decodes
    these and never opens ``path``, which then only names the file in messages.
    """

    path: Path
    data: bytes | None = field(default=None, repr=False)

    def source(self) -> str | io.BytesIO:
        """What to hand libsndfile: the bytes when there are any, else the path."""
        return io.BytesIO(self.data) if self.data is not None else str(self.path)

    def __str__(self) -> str:
        return str(self.path)


Prompt = TextPrompt | AudioPrompt


@dataclass(frozen=True)
class WeightedPrompt:
    """A prompt with its mixing weight (finite, >= 0)."""

    prompt: Prompt
    weight: float = 1.0

    def __post_init__(self) -> None:
        w = self.weight
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not math.isfinite(w) or w < 0:
            raise UsageError(f"weight of prompt {str(self.prompt)!r} must be a finite number >= 0, got {w!r}")


def parse_weighted(text: str, *, audio: bool = False, option: str = "--prompt") -> WeightedPrompt:
    """``"dark techno:1.0"`` → WeightedPrompt; a missing ``:weight`` means 1.0 (``audio``: the body is a file).

    ``option`` is where the text came from (a CLI option, a config key): errors name it.
    """
    body, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep:
        try:
            weight = float(tail)
            body = head
        except ValueError:
            pass  # a colon that is part of the prompt or path
    if not body.strip():
        raise UsageError(f"empty prompt in {text!r}", where=option)
    if not math.isfinite(weight) or weight < 0:
        raise UsageError(f"weight must be a finite number >= 0, got {tail!r} in {text!r}", where=option)
    prompt = AudioPrompt(Path(body)) if audio else TextPrompt(body.strip())
    return WeightedPrompt(prompt, weight)


@dataclass(frozen=True)
class Embedding:
    """A prompt's style vector plus what the backend had to say about the prompt."""

    vector: np.ndarray
    warnings: tuple[str, ...] = ()


def _check_unit(name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"must be a finite number in [0, 1], got {value!r}", where=name)
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"must be in [0, 1], got {value!r}", where=name)


def _check_range(name: str, value: float | None, integer: bool = False) -> None:
    """``value`` is None or in control ``name``'s range, whatever the backend (:data:`CONTROL_RANGES`: the
    integer controls up to what their wire fields hold); else a UsageError naming the range and the value."""
    if value is None:
        return
    kind = "an integer" if integer else "a finite number"
    fits = isinstance(value, int) if integer else isinstance(value, (int, float)) and math.isfinite(value)
    if isinstance(value, bool) or not fits or control_problem(name, value) is not None:
        raise UsageError(f"must be {kind} {range_text(CONTROL_RANGES[name])}, got {value!r}", where=name)


@dataclass(frozen=True)
class Controls:
    """Musical controls, as Lyria RealTime and Magenta RT expose them.

    ``None`` means "let the prompts decide". Values are validated on
    construction; the error names the control and the valid range.
    """

    bpm: float | None = None
    density: float | None = None
    brightness: float | None = None
    scale: str | None = None
    mute_bass: bool = False
    mute_drums: bool = False
    notes: tuple[int, ...] | None = None
    drums: bool | None = None
    temperature: float | None = None
    top_k: int | None = None
    guidance: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.bpm is not None:
            b = self.bpm
            if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b):
                raise UsageError(f"must be a number in {BPM_RANGE[0]:g}–{BPM_RANGE[1]:g}, got {b!r}", where="bpm")
            if not BPM_RANGE[0] <= b <= BPM_RANGE[1]:
                raise UsageError(f"must be in {BPM_RANGE[0]:g}–{BPM_RANGE[1]:g}, got {b!r}", where="bpm")
        if self.scale is not None:
            from cadenza.runtime.backends.scales import parse_scale

            parse_scale(self.scale)
        _check_unit("density", self.density)
        _check_unit("brightness", self.brightness)
        if self.notes is not None:
            if len(self.notes) > MAX_NOTES:
                raise UsageError(f"at most {MAX_NOTES} notes (each MIDI note 0–127 once), got {len(self.notes):,}",
                                 where="notes")
            for i, n in enumerate(self.notes):
                if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 127:
                    raise UsageError(f"must be a MIDI note, an integer 0–127, got {n!r}", where=f"notes[{i}]")
        _check_range("temperature", self.temperature)
        _check_range("top_k", self.top_k, integer=True)
        _check_range("guidance", self.guidance)
        _check_range("seed", self.seed, integer=True)

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> Controls:
        """Controls from what a graph computes (name → value): unknown names and ``None`` left out, a ``notes``
        that is not a tuple of notes left out, switches made bool and ``top_k``/``seed`` int; then validated."""
        known: dict[str, Any] = {k: v for k, v in values.items() if k in cls.__dataclass_fields__ and v is not None}
        if "notes" in known and not isinstance(known["notes"], tuple):
            known.pop("notes")
        for name in ("mute_bass", "mute_drums", "drums"):
            if name in known:
                known[name] = bool(known[name])
        for name in ("top_k", "seed"):
            if name in known:
                known[name] = int(known[name])
        return cls(**known)

    def requested(self) -> frozenset[str]:
        """Names of the controls set to something other than their default."""
        out = set()
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value is not False:
                out.add(f.name)
        return frozenset(out)


@dataclass(frozen=True)
class Capabilities:
    """What a backend honours. The runtime warns once about anything else."""

    controls: frozenset[str]
    audio_prompts: bool
    beat_grid: bool  # True when the backend knows the exact beats it renders
    step_frames: int  # natural generation step (frames); callers may ask for any multiple
    sample_rate: int = SAMPLE_RATE
    channels: int = CHANNELS

    def unsupported(self, controls: Controls) -> frozenset[str]:
        """Requested controls this backend cannot honour."""
        return controls.requested() - self.controls


@dataclass(frozen=True)
class Beat:
    """A beat the backend rendered, at the stream sample time it is heard."""

    frame: int  # stream time in samples at SAMPLE_RATE
    beat: int  # beat index since the stream started
    bar: int  # bar index since the stream started
    beat_in_bar: int  # 0 = downbeat
    bpm: float
    estimated: bool = False
    position: float | None = None  # exact (fractional) frame where known; ``frame`` is it rounded

    @property
    def seconds(self) -> float:
        return self.frame / SAMPLE_RATE

    @property
    def downbeat(self) -> bool:
        return self.beat_in_bar == 0


@runtime_checkable
class StreamState(Protocol):
    """A backend's opaque stream state."""

    @property
    def frame(self) -> int:
        """Stream time (samples generated so far)."""

    @property
    def beats(self) -> list[Beat]:
        """Beats inside the most recently generated block (empty when unknown)."""

    def fork(self) -> "StreamState":
        """An independent copy that continues exactly like this state."""


@runtime_checkable
class Backend(Protocol):
    """A music model the runtime can drive."""

    name: str
    capabilities: Capabilities

    @property
    def style_dim(self) -> int:
        """Length of the style vectors this backend embeds and consumes."""

    def embed(self, prompt: Prompt) -> Embedding:
        """A prompt's style vector; raises PromptError when it cannot."""

    def new_stream(self, seed: int) -> StreamState:
        """A fresh stream, deterministic in ``seed``."""

    def generate(
        self, state: StreamState, style: np.ndarray, controls: Controls, frames: int
    ) -> tuple[np.ndarray, StreamState]:
        """Render ``frames`` samples of stereo float32; consumes ``state``."""


@dataclass
class StepJob:
    """One stream that the conductor will ask for ``frames`` samples next, with the style and controls it will pass."""

    state: StreamState
    style: np.ndarray
    controls: Controls
    frames: int


@runtime_checkable
class Prefetching(Protocol):
    """An optional extra a backend may offer: generate several streams ahead in one batched step.

    The generation thread asks the conductor for the block's :class:`StepJob` s under the engine lock, releases
    the lock, calls :meth:`prefetch`, re-takes the lock and steps the conductor, whose ``generate`` calls then
    only slice what is ready. So no request waits for a model step.
    """

    def prefetch(self, jobs: Sequence[StepJob]) -> None:
        """Generate ahead, for every job, the model frames that `generate(job.state, job.style,
        job.controls, job.frames)` will need, so that call only slices what is ready. All the streams
        advance together (one batched device step per model frame). Thread: called by the generation
        thread WITHOUT the engine lock; it must not touch anything but the jobs' states. May raise
        (the conductor's fault handling treats it like a failed step)."""


@dataclass
class BackendInfo:
    """Registry entry for a backend (its factory is imported lazily)."""

    name: str
    summary: str
    module: str
    attr: str
    install_hint: str = ""
    extras: list[str] = field(default_factory=list)
