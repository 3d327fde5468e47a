"""Offline render: drive a backend through a timeline of prompt mixes into audio blocks.

The same path the live runtime takes (prompts → embeddings → mix → backend
stream), minus the clock: blocks are produced as fast as the backend can make
them. A timeline is a list of :class:`Cue` — at time ``at`` the style and
controls switch to the cue's; the backend glides to them (the synth never
restarts its music on a change of mix).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from cadenza.errors import UsageError
from cadenza.runtime.backends import get_backend
from cadenza.runtime.backends.base import SAMPLE_RATE, Backend, Beat, Controls, WeightedPrompt
from cadenza.runtime.mixing import PromptMixer

MAX_SECONDS = 24 * 3600.0
RENDER_BLOCK = 4096


@dataclass(frozen=True)
class Cue:
    """From ``at`` seconds on, play ``prompts`` with ``controls``."""

    at: float
    prompts: tuple[WeightedPrompt, ...]
    controls: Controls = field(default_factory=Controls)

    def __post_init__(self) -> None:
        if not (isinstance(self.at, (int, float)) and math.isfinite(self.at) and self.at >= 0):
            raise UsageError(f"cue time must be a finite number of seconds >= 0, got {self.at!r}", where="cue")


@dataclass
class RenderResult:
    pcm: np.ndarray  # float32 (frames, 2) at SAMPLE_RATE
    beats: list[Beat]
    warnings: list[str]

    @property
    def seconds(self) -> float:
        return self.pcm.shape[0] / SAMPLE_RATE


def check_seconds(seconds: float) -> int:
    """Frames for ``seconds``; raises UsageError naming the bad value."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise UsageError(f"must be a finite number of seconds, got {seconds!r}", where="seconds")
    if not 0 < seconds <= MAX_SECONDS:
        raise UsageError(f"must be > 0 and <= {MAX_SECONDS:g}, got {seconds!r}", where="seconds")
    return max(1, int(round(seconds * SAMPLE_RATE)))


class Renderer:
    """Embeds a timeline up front (so bad prompts fail before any audio), then yields blocks."""

    def __init__(self, cues: Sequence[Cue], seconds: float, seed: int = 0, backend: Backend | None = None,
                 block: int = RENDER_BLOCK) -> None:
        if not cues:
            raise UsageError("at least one prompt is needed", where="prompts")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UsageError(f"must be an integer >= 0, got {seed!r}", where="seed")
        self.frames = check_seconds(seconds)
        self.backend = backend if backend is not None else get_backend("synth")
        self.seed = seed
        self.block = block
        self.cues = sorted(cues, key=lambda c: c.at)
        self.mixer = PromptMixer(self.backend)
        self.styles = [self.mixer.style(c.prompts) for c in self.cues]
        self.warnings = list(self.mixer.warnings)
        seen: set[str] = set()
        for c in self.cues:
            for name in sorted(self.backend.capabilities.unsupported(c.controls) - seen):
                seen.add(name)
                self.warnings.append(f"backend {self.backend.name!r} cannot honour control {name!r}; it is ignored")

    def blocks(self) -> Iterator[tuple[np.ndarray, list[Beat]]]:
        state = self.backend.new_stream(self.seed)
        starts = [int(round(c.at * SAMPLE_RATE)) for c in self.cues]
        frame = 0
        while frame < self.frames:
            idx = max(i for i, s in enumerate(starts) if s <= frame) if starts[0] <= frame else 0
            n = min(self.block, self.frames - frame)
            if idx + 1 < len(starts) and starts[idx + 1] > frame:
                n = min(n, starts[idx + 1] - frame)  # a cue lands exactly on a block boundary
            cue = self.cues[idx]
            pcm, state = self.backend.generate(state, self.styles[idx], cue.controls, n)
            yield pcm, list(state.beats)
            frame += n


def render(
    prompts: Sequence[WeightedPrompt],
    controls: Controls | None = None,
    seconds: float = 30.0,
    seed: int = 0,
    *,
    cues: Sequence[Cue] = (),
    backend: Backend | None = None,
) -> RenderResult:
    """Render ``seconds`` of ``prompts`` (plus later ``cues``) into memory."""
    timeline = [Cue(0.0, tuple(prompts), controls or Controls()), *cues]
    r = Renderer(timeline, seconds, seed, backend)
    blocks: list[np.ndarray] = []
    beats: list[Beat] = []
    for pcm, bts in r.blocks():
        blocks.append(pcm)
        beats.extend(bts)
    return RenderResult(np.concatenate(blocks), beats, r.warnings)
