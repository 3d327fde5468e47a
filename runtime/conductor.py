"""The conductor: runs a style graph against a backend and mixes its decks into audio blocks.

Per control tick (``graph.control_rate``, 100 Hz by default) it advances the
graph engine, turns its weights into a style vector (embeddings cached), and
generates one block per deck:

- deck A, the bed: one continuous backend stream;
- deck B, during a ``crossfade`` transition: a new stream started with the
  target state's style exactly at the quantized start frame, equal-power
  crossfaded against deck A until the fade ends, then promoted to deck A;
- stinger decks: a prompt stinger is a short stream of its own (same tempo as
  the bed), an audio stinger is a file; both duck the bed while they play. At
  most ``MAX_STINGER_VOICES`` sound at once: a stinger that fires while they
  all play steals the oldest voice, which fades out in
  ``STINGER_STEAL_FADE_S`` (a ``warning`` event names it, at the sample the
  newcomer starts). Of more stingers than voices starting in one tick, the
  first requested play: :meth:`Conductor.claim_voice` decides it when the
  trigger comes, so its reply can say that it will not play.

Each :class:`Block` carries the typed events (:mod:`cadenza.runtime.events`) of
its tick: the graph engine's (a crossfade starts on its ``StateChange``
STARTED and hands over to deck B at COMPLETED; a stinger's ``StingerFired`` is
passed on once it sounds), warnings about stinger voices, and the beats heard
(``BeatEvent``: the stream's one grid, renumbered by :class:`~.beat_grid.BeatGrid` —
during a crossfade the incoming deck's from its first downbeat on). :meth:`Conductor.heard_at` and :meth:`Conductor.pending_state`
say, right after a request, the sample at which it will be heard.

With a backend that generates ahead (:class:`~.backends.base.Prefetching`) a
tick comes in two halves: :meth:`Conductor.plan` ticks the graph and names the
model work of the block (a :class:`~.backends.base.StepJob` per stream: bed,
incoming deck, prompt stingers), the live engine has the backend do it without
holding its lock, and :meth:`Conductor.step` then only slices the ready audio
and mixes, honouring what requests changed in between.

A tick that fails raises :class:`StepFault` naming what failed (the graph, an
embedding, the backend step, a stinger); the caller (the live engine) then
plays :meth:`Conductor.hold` — the bed with the last mix that generated
fine — or, when that fails too, :meth:`Conductor.idle` (silence, the clocks run on).

The beat clock the graph quantizes against is that published, rendered beat
grid (:class:`DeckClock`), so a transition scheduled "at the next bar" starts
on the bar the listener hears. A conductor keeps time of its own (``frame``,
the graph engine's, the decks'), which stands still while the live engine is
paused; :attr:`Conductor.paused_frames` maps it onto the stream, and its blocks,
beats, events, :meth:`Conductor.heard_at` and :meth:`Conductor.pending_state`
are in stream time. The mixer kernels are in :mod:`.mixer.kernels`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from cadenza.errors import CadenzaError, UsageError
from cadenza.runtime import events as ev
from cadenza.runtime.beat_grid import BeatGrid
from cadenza.runtime.backends.base import (
    SAMPLE_RATE,
    Backend,
    Beat,
    Controls,
    Prefetching,
    Prompt,
    StepJob,
    StreamState,
    WeightedPrompt,
)
from cadenza.runtime.graph.automation import Automation
from cadenza.runtime.graph.engine import Frame, GraphEngine
from cadenza.runtime.graph.runnable import embed_prompts
from cadenza.runtime.graph.spec import Graph
from cadenza.runtime.limits import MAX_STINGER_VOICES, STINGER_STEAL_FADE_S
from cadenza.runtime.loudness import ShortTermLoudness
from cadenza.runtime.mixer import kernels
from cadenza.runtime.mixing import PromptMixer

STINGER_FADE_S = 0.01
#: loudness-matched crossfades: the incoming deck is brought to the outgoing deck's short-term loudness (as heard
#: when the fade starts, at most ±MATCH_MAX_DB), judged once MATCH_MIN_S of it has played and followed with a
#: MATCH_SMOOTH_S time constant; once it is the bed its gain glides back to unity (MATCH_RELEASE_S)
MATCH_MAX_DB = 6.0
MATCH_MIN_S = 0.4
MATCH_SMOOTH_S = 0.2
MATCH_RELEASE_S = 2.0
MATCH_FLOOR_LUFS = -50.0  # quieter than this (silence, a fade-in) is not matched
#: a stinger's last STINGER_TAIL_S: it fades out (cos) while the bed comes back from its duck (sin), so the two
#: hand the level over without a hole (a duck released only after the stinger stopped left one of ~4 LU)
STINGER_TAIL_S = 0.3
#: the duck is only as deep as the stingers fill: the bed keeps a gain d with d²·E_bed + E_stingers ≥ E_bed (mean
#: squares smoothed over DUCK_FILL_S), never below the graph's duck — a stinger still building up (a prompt stinger's
#: first notes), or starting with a crossfade, no longer leaves a hole (outside 14 #5: 3.2–4.5 LU)
DUCK_FILL_S = 0.1
DUCK_ATTACK_S = 0.05
DUCK_RELEASE_S = 0.4
CEILING = 10.0 ** (-1.0 / 20.0)
MAX_CLAIMS = 1024  # stingers claimed ahead (claim_voice) kept at most: a trigger flood stays bounded


class StepFault(CadenzaError):
    """A control tick failed: ``what`` failed (``graph``, ``embedding``, ``backend step``, ``stinger NAME``)."""

    def __init__(self, what: str, cause: BaseException) -> None:
        why = f"{type(cause).__name__}: {cause}"
        if len(why) > 500:
            why = f"{why[:500]}…"
        super().__init__(f"{what} failed: {why}")
        self.what = what
        self.why = why
        self.cause = cause


class DeckClock:
    """A BeatClock read off the bed's rendered beats: predicts the next beat/bar at the current tempo."""

    def __init__(self, bpm: float = 120.0) -> None:
        self.last: Beat | None = None
        self.bpm = bpm

    def observe(self, beats: Sequence[Beat]) -> None:
        if beats:
            self.last = beats[-1]
            self.bpm = beats[-1].bpm

    def beat_seconds(self, t: float) -> float:
        return 60.0 / self.bpm

    def next_boundary(self, t: float, unit: str) -> float:
        spb = SAMPLE_RATE * 60.0 / self.bpm
        if self.last is None:
            origin, index = 0.0, 0
        else:
            last = self.last
            origin = last.position if last.position is not None else float(last.frame)
            index = last.beat_in_bar  # the bar as heard (a handed-over grid's count need not be a multiple of 4)
        target = t * SAMPLE_RATE
        n = max(0, math.ceil((target - origin) / spb - 1e-9))
        if unit == "bar":
            n += (-(index + n)) % 4
        return round(origin + n * spb) / SAMPLE_RATE


@dataclass
class _Deck:
    state: StreamState
    start: int  # stream frame at which it started
    weights: dict[str, float] = field(default_factory=dict)
    style: np.ndarray | None = None  # the style vector of its last block
    meter: ShortTermLoudness | None = None  # its own output's short-term loudness (before ``gain``)
    metered: int = 0  # frames fed to the meter
    gain: float = 1.0  # the loudness match applied to it (1: none)
    match_ref: float | None = None  # incoming deck: the LUFS to match (the outgoing deck's when the fade started)


@dataclass
class _Stinger:
    name: str
    start: int
    end: int
    gain: float
    duck: float
    deck: _Deck | None = None  # prompt stingers
    audio: np.ndarray | None = None  # audio stingers
    style: np.ndarray | None = None
    stolen: bool = False  # fading out: a newer stinger took its voice


@dataclass
class Block:
    """One control period of output: audio plus what happened in it."""

    frame: int  # stream frame of the first sample
    pcm: np.ndarray
    frame_info: Frame
    beats: list[Beat]
    events: list[ev.Event]


class Conductor:
    """Graph engine → decks → mixer, one control tick at a time."""

    def __init__(self, graph: Graph, backend: Backend, seed: int = 0, *, start_frame: int = 0,
                 mixer: PromptMixer | None = None, bed: StreamState | None = None) -> None:
        self.graph = graph
        self.backend = backend
        self.seed = seed
        self.engine = GraphEngine(graph, start=start_frame / SAMPLE_RATE)
        self.rate = graph.control_rate
        self.block = int(round(SAMPLE_RATE / self.rate))
        if abs(self.block * self.rate - SAMPLE_RATE) > 1e-6:
            raise UsageError(f"control_rate {self.rate:g} Hz must divide {SAMPLE_RATE} samples per second",
                             where=f"{graph.source}: control_rate")
        self.mixer = mixer if mixer is not None else PromptMixer(backend)
        # embed everything up front: a prompt the backend cannot embed is an InvalidGraph (file:line) before audio
        self.prompts: dict[str, Prompt] = embed_prompts(graph, self.mixer)
        # stinger audio was decoded by the loader; a graph built in memory is read here, never at a trigger
        self.stinger_audio: dict[str, np.ndarray] = {}
        for s in graph.stingers.values():
            if s.audio is not None and s.audio not in self.stinger_audio:
                pcm = graph.audio.get(s.audio)
                self.stinger_audio[s.audio] = pcm if pcm is not None else load_stinger_audio(Path(s.audio))
        self.clock = DeckClock()
        self.frame = start_frame
        #: stream frames that passed while this conductor was paused (PAUSE/STOP): its own time (``frame``, the
        #: graph engine's, the decks') stopped meanwhile, so its blocks, beats and events are this much later on
        #: the stream; :meth:`step` and :meth:`hold` return them in stream time
        self.paused_frames = 0
        self.grid = BeatGrid()  # the stream's one beat count, shared with the conductors that take over from this
        self.announce: list[ev.Event] = []  # events the next block publishes first (announce_pending)
        # ``bed``: the stream ``backend.new_stream(seed)`` made beforehand (the live engine makes it outside its lock)
        self.deck_a = _Deck(bed if bed is not None else backend.new_stream(seed), start_frame)
        self.deck_b: _Deck | None = None
        self.xfade: tuple[int, int] | None = None  # (start frame, fade frames) of the running crossfade
        self.pending_xfade: tuple[int, int, str] | None = None  # scheduled (start, fade frames, target)
        self.stingers: list[_Stinger] = []
        #: (block it fires in, stinger, start frame, gets a voice) of each trigger's stinger, in request order
        #: (claim_voice)
        self._claims: list[tuple[int, str, int, bool]] = []
        self.duck = 1.0
        self._fill = (0.0, 0.0)  # smoothed mean squares (bed before its duck, the stingers as mixed): DUCK_FILL_S
        self._buf_a = np.zeros((self.block, 2), np.float32)
        self._buf_b = np.zeros((self.block, 2), np.float32)
        self._n_decks = 1
        self._bar_line: tuple[float, float] | None = None  # (position in our frames, bpm) of the bed's last downbeat
        #: meter the decks for loudness-matched crossfades (~10 µs a block): only a graph with crossfades needs it
        self.match_loudness = any(t.mode == "crossfade" for t in graph.transitions)
        self.overrides: dict[str, object] = {}  # controls set directly (SetControls) over the graph's
        self.graph_controls: dict[str, object] = {}  # the graph's (its state's) controls at the last tick
        self._stage = "graph"  # what the running tick is doing: names the fault when it fails
        self._ticked = -1  # the stream frame whose block last ticked the graph engine
        #: plan()'s graph tick, (frame, graph frame, events), which the step of that block uses instead of ticking
        self._tick: tuple[int, Frame, list[ev.Event]] | None = None
        #: plan()'s incoming deck for the crossfade ``pending_xfade`` was then (a backend without beat grid)
        self._incoming: tuple[tuple[int, int, str], _Deck] | None = None
        self._prefetching = isinstance(backend, Prefetching)
        #: the last mix that generated fine: (style vector, controls, frame) of the bed — what hold() plays
        self.good: tuple[np.ndarray, Controls, Frame] | None = None

    def continue_from(self, old: "Conductor") -> None:
        """Take over ``old``'s bed stream and clock (a hot-reloaded graph: the music glides, never restarts).

        A crossfade that is running goes on to its end (its incoming deck, whose beats the grid and the clock may
        already follow, becomes the bed then): dropping it would put the bed back on the outgoing deck's grid while
        the clock still predicts bars on the incoming one's."""
        self.deck_a = old.deck_a
        if old.deck_b is not None and old.xfade is not None:
            self.deck_b, self.xfade = old.deck_b, old.xfade
        self._n_decks = old._n_decks
        self.match_loudness = self.match_loudness or old.match_loudness
        self.clock = old.clock
        self._bar_line = old._bar_line
        self.grid = old.grid
        self.paused_frames = old.paused_frames
        self.overrides = dict(old.overrides)
        self.duck = old.duck
        self.good = old.good

    def restart_deck(self, fade_s: float = 0.05) -> None:
        """Forget the bed's context: a fresh stream crossfades in from the next block (reset_context)."""
        if self.deck_b is None and self.pending_xfade is None:
            self.pending_xfade = (self.frame, max(1, int(fade_s * SAMPLE_RATE)), "")

    # ------------------------------------------------------------ helpers
    def style_of(self, weights: dict[str, float]) -> np.ndarray:
        live = [WeightedPrompt(self.prompts[n], w) for n, w in weights.items() if w > 0 and n in self.prompts]
        return self.mixer.style(live)

    def _generate(self, deck: _Deck, weights: dict[str, float], controls: Controls, n: int) -> np.ndarray:
        self._stage = "embedding"
        style = self.style_of(weights)
        self._stage = "backend step"
        pcm, deck.state = self.backend.generate(deck.state, style, controls, n)
        deck.weights = weights
        deck.style = style
        return pcm

    # ------------------------------------------------------------- inputs
    def apply(self, item: Automation) -> None:
        if item.action == "set":
            self.engine.set(item.name, item.value, at=item.time, ramp=item.ramp)
        elif item.action == "trigger":
            self.engine.trigger(item.name, at=item.time)
        else:
            self.engine.set_state(item.name, at=item.time)

    def announce_pending(self) -> None:
        """The next block announces again the SCHEDULED event of the state change waiting for its start (on PLAY:
        the pause moved it later on the stream by the pause's length)."""
        change = self.engine.pending_change(self.clock)
        if change is not None:
            self.announce.append(change)

    # ------------------------------------------------------------ queries
    @property
    def stream_frame(self) -> int:
        """The stream sample at which this conductor's next block will be heard."""
        return self.frame + self.paused_frames

    def heard_at(self, kind: Literal["state", "trigger"], name: str) -> int:
        """The stream sample at which a ``set_state(name)`` / ``trigger(name)`` just given to :attr:`engine` will
        be heard: its quantized state change (or a trigger's stinger) start, else the next block."""
        return int(round(self.engine.heard_at(kind, name, self.clock) * SAMPLE_RATE)) + self.paused_frames

    def stinger_cooldown(self, trigger: str) -> tuple[str, float] | None:
        """``(stinger, seconds of cooldown left)`` when the stinger of a ``trigger(name)`` just given to
        :attr:`engine` will be refused for its cooldown, else None."""
        return self.engine.stinger_cooldown(trigger, self.clock)

    def claim_voice(self, trigger: str) -> tuple[str, int] | None:
        """For a ``trigger(name)`` just given to :attr:`engine` whose stinger plays (not in its cooldown): claim
        one of the ``MAX_STINGER_VOICES`` voices of the tick its stinger starts in. ``(stinger, voices)`` when
        that many stingers requested before it already start in that tick (the tick's stingers play in request
        order), or ``(stinger, 0)`` when a copy of it requested before already starts at the same sample (stacked
        on it, it would only take a voice from another): it will not play. None when it gets a voice. Call under
        the engine lock."""
        td = self.graph.triggers[trigger]
        if td.stinger is None:
            return None
        n = self.block
        planned = self._tick is not None and self._tick[0] == self.frame
        first = self.frame + (n if planned else 0)  # the first tick that applies a trigger given now
        at = int(round(self.engine.heard_at("trigger", trigger, self.clock) * SAMPLE_RATE))
        tick = max(first, self.frame + max(0, -(-(at - self.frame) // n) - 1) * n)  # the block it fires in
        self._claims = [c for c in self._claims if c[0] >= self.frame][-MAX_CLAIMS:]
        mine = [c for c in self._claims if c[0] == tick and c[3]]
        if any(c[1] == td.stinger and c[2] == at for c in mine):
            self._claims.append((tick, td.stinger, at, False))
            return td.stinger, 0
        self._claims.append((tick, td.stinger, at, len(mine) < MAX_STINGER_VOICES))
        return None if len(mine) < MAX_STINGER_VOICES else (td.stinger, len(mine))

    def pending_state(self) -> tuple[str, int] | None:
        """(state, stream sample it starts at) of a state change waiting for its beat or bar, or None."""
        pending = self.engine.pending_state(self.clock)
        return None if pending is None else (pending[0], int(round(pending[1] * SAMPLE_RATE)) + self.paused_frames)

    # --------------------------------------------------------------- tick
    def plan(self) -> list[StepJob]:
        """The model work of the next block, for a backend that generates ahead (:class:`Prefetching`).

        Called by the generation thread under the engine lock, before :meth:`step`: it ticks the graph for the
        block (the step of that block uses this tick instead of ticking again), which starts what the tick starts
        (stingers; a crossfade's incoming deck, made here when the backend has no beat grid), and returns a
        :class:`StepJob` for each model stream the block will generate: the bed, the incoming deck, each prompt
        stinger sounding in it. [] when the backend does not prefetch (the tick is kept all the same). Planning
        the same block again (not stepped yet: paused meanwhile) does not tick again. Raises :class:`StepFault`
        as :meth:`step` does.
        """
        try:
            return self._plan()
        except Exception as exc:  # noqa: BLE001 — the caller's fault handling takes it, as a failed step
            raise StepFault(self._stage, exc) from exc

    def plan_hold(self) -> list[StepJob]:
        """The model work of :meth:`hold` (the bed with the last mix that generated fine), for a backend that
        generates ahead; [] without a good mix or when the backend does not prefetch. Call under the engine lock."""
        if not self._prefetching or self.good is None:
            return []
        style, controls, _ = self.good
        return [StepJob(self.deck_a.state, style, controls, self.block)]

    def _plan(self) -> list[StepJob]:
        n, f0 = self.block, self.frame
        fr, _ = self._block_tick(f0)
        if not self._prefetching:
            return []
        controls, a_weights, a_controls = self._controls_and_bed(fr, f0)
        self._stage = "embedding"
        jobs = [StepJob(self.deck_a.state, self.style_of(a_weights), a_controls, n)]
        incoming: tuple[_Deck, int] | None = None
        pending = self.pending_xfade
        if pending is not None and pending[0] < f0 + n:  # a crossfade starts in this block: its deck is new
            if not self.backend.capabilities.beat_grid:  # (with a beat grid, step pre-rolls it: not planned)
                if self._incoming is None or self._incoming[0] != pending:
                    self._stage = "backend step"
                    self._incoming = (pending, _Deck(self.backend.new_stream(self.seed + 1 + self._n_decks),
                                                     pending[0]))
                incoming = (self._incoming[1], pending[0])
        elif self.deck_b is not None and self.xfade is not None:
            incoming = (self.deck_b, self.xfade[0])
        if incoming is not None and max(0, incoming[1] - f0) < n:
            self._stage = "embedding"
            jobs.append(StepJob(incoming[0].state, self.style_of(dict(fr.weights)), controls,
                                n - max(0, incoming[1] - f0)))
        for s in self.stingers:
            off = max(0, s.start - f0)
            m = min(n, s.end - f0) - off
            if m > 0 and s.deck is not None and s.style is not None:
                jobs.append(StepJob(s.deck.state, s.style, controls, m))
        return jobs

    def _block_tick(self, f0: int) -> tuple[Frame, list[ev.Event]]:
        """The graph's tick for the block at ``f0`` and its events (what the tick started has started): plan()'s,
        or a tick now."""
        tick = self._tick
        if tick is not None and tick[0] == f0:
            return tick[1], tick[2]
        fr = self._tick_engine(f0)
        events = [*self.announce, *self._engine_events(fr, f0, start=True)]
        self.announce = []
        self._tick = (f0, fr, events)
        return fr, events

    def _controls_and_bed(self, fr: Frame, f0: int) -> tuple[Controls, dict[str, float], Controls]:
        """The block's controls (the graph's, SetControls' over them) and the bed's weights and controls: the
        source's while a crossfade runs (or is about to start in this block)."""
        self._stage = "graph"
        controls = Controls.from_values({**fr.controls, **self.overrides})
        tr = fr.transition
        crossfading = (tr is not None and tr.mode == "crossfade" and tr.progress < 1.0) or (
            self.pending_xfade is not None and self.pending_xfade[0] < f0 + self.block)
        if crossfading and tr is not None and tr.mode == "crossfade":
            return controls, dict(tr.source_weights), Controls.from_values(tr.source_controls)
        if crossfading:
            return controls, self.deck_a.weights or dict(fr.weights), controls
        return controls, dict(fr.weights), controls

    def step(self) -> Block:
        """One control tick: graph → decks → mix. Raises :class:`StepFault` naming what failed."""
        try:
            return self._to_stream(self._step())
        except Exception as exc:  # noqa: BLE001 — whatever failed, the caller keeps the music going
            raise StepFault(self._stage, exc) from exc

    def _tick_engine(self, f0: int) -> Frame:
        self._stage = "graph"
        self._ticked = f0  # ticked (even if it raises): the graph's clock has moved on by one period
        return self.engine.tick(self.clock)

    def _engine_events(self, fr: Frame, f0: int, *, start: bool) -> list[ev.Event]:
        """The graph's events; with ``start``, the crossfades and stingers they schedule begin."""
        events: list[ev.Event] = []
        stingers: list[ev.StingerFired] = []
        for e in fr.events:
            if isinstance(e, ev.StingerFired):
                if start:
                    stingers.append(e)  # published once it starts (below)
                else:
                    events.append(_not_played(e))
                continue
            if (start and isinstance(e, ev.StateChange) and e.phase is ev.Phase.SCHEDULED
                    and e.transition == "crossfade"):
                at = int(round(e.time * SAMPLE_RATE))
                fade = max(1, int(round(e.fade_seconds * SAMPLE_RATE)))
                self.pending_xfade = (max(at, f0), fade, e.name)
            events.append(e)
        if start and (stingers or self._claims):
            stingers = self._voiced(stingers, f0, events)
        for fired in stingers:
            self._stage = f"stinger {fired.name}"
            at = max(f0, int(round(fired.time * SAMPLE_RATE)))
            self._take_voice(fired.name, f0, at, events)
            self._start_stinger(fired, f0)
            events.append(fired)
        return events

    def _voiced(self, stingers: list[ev.StingerFired], f0: int, events: list[ev.Event]) -> list[ev.StingerFired]:
        """Of the stingers firing in the tick at ``f0``, those that start: not the ones :meth:`claim_voice` refused
        (their replies said so), and at most ``MAX_STINGER_VOICES``, those granted a voice first."""
        claims = [c for c in self._claims if c[0] <= f0]
        self._claims = [c for c in self._claims if c[0] > f0]
        refused: dict[str, int] = {}
        granted: dict[str, int] = {}
        for _, name, _, ok in claims:
            (granted if ok else refused)[name] = (granted if ok else refused).get(name, 0) + 1
        first: list[int] = []
        rest: list[int] = []
        skipped: list[ev.StingerFired] = []
        for i, e in enumerate(stingers):
            if granted.get(e.name, 0) > 0:
                granted[e.name] -= 1
                first.append(i)
            elif refused.get(e.name, 0) > 0:
                refused[e.name] -= 1
                skipped.append(e)
            else:
                rest.append(i)  # not claimed (a preview's timeline): after the claimed ones
        order = first + rest
        skipped += [stingers[i] for i in order[MAX_STINGER_VOICES:]]
        keep = [stingers[i] for i in sorted(order[:MAX_STINGER_VOICES])]
        if skipped:
            names = sorted({s.name for s in skipped})
            events.append(ev.Warning(f0 / SAMPLE_RATE,
                                     f"{len(skipped)} stinger(s) ({', '.join(names)[:200]}) not played: "
                                     f"{len(skipped) + len(keep)} fired in one tick and at most "
                                     f"{MAX_STINGER_VOICES} sound at once (the first requested play)", "stingers"))
        return keep

    def _take_voice(self, name: str, f0: int, at: int, events: list[ev.Event]) -> None:
        """Free a voice for stinger ``name`` (starting at stream frame ``at``) when all are taken: the oldest one
        fades out from ``at`` (or, not yet heard, goes); the warning is stamped where ``name`` starts."""
        voices = [s for s in self.stingers if not s.stolen]
        if len(voices) < MAX_STINGER_VOICES:
            return
        old = voices[0]
        if old.start >= f0:
            self.stingers.remove(old)
        else:
            old.stolen = True
            old.end = min(old.end, at + max(1, int(STINGER_STEAL_FADE_S * SAMPLE_RATE)))
        events.append(ev.Warning(at / SAMPLE_RATE, f"stinger {old.name!r} cut short: {MAX_STINGER_VOICES} stingers "
                                                   f"were sounding and {name!r} took the oldest voice",
                                 f"stingers.{old.name}"))

    def _step(self) -> Block:
        n = self.block
        f0 = self.frame
        planned = self._tick is not None and self._tick[0] == f0
        fr, events = self._block_tick(f0)
        self._tick = None
        self._stage = "graph"
        self.graph_controls = dict(fr.controls.items())
        # deck A plays the source while a crossfade runs (or is about to start in this block)
        controls, a_weights, a_controls = self._controls_and_bed(fr, f0)
        deck_a = self.deck_a
        pcm_a = self._generate(deck_a, a_weights, a_controls, n)
        self._level(deck_a, pcm_a)
        played: list[tuple[object, list[Beat]]] = [(deck_a, self._deck_beats(deck_a))]
        wanted: _Deck = deck_a
        out = pcm_a

        incoming, self._incoming = self._incoming, None
        if (self.pending_xfade is not None and self.pending_xfade[0] < f0 + n and planned and self._prefetching
                and not self.backend.capabilities.beat_grid
                and (incoming is None or incoming[0] != self.pending_xfade)):
            # asked for after plan() (reset_context): its deck starts with the next block, which plans it (no model
            # step of a deck nobody generated ahead, under the engine lock)
            start, fade, target = self.pending_xfade
            self.pending_xfade = (max(start, f0 + n), fade, target)
        if self.pending_xfade is not None and self.pending_xfade[0] < f0 + n:
            start, fade, _target = self.pending_xfade
            if incoming is not None and incoming[0] == self.pending_xfade:
                self.deck_b = incoming[1]  # made by plan(), generated ahead
            else:
                self.deck_b = self._phase_locked_deck(start, played[0][1], dict(fr.weights), controls)
            self.pending_xfade = None
            self.deck_b.match_ref = self._heard_lufs(deck_a)
            self._n_decks += 1
            self.xfade = (start, fade)
        self._note_bar_line(played[0][1])
        if self.deck_b is not None and self.xfade is not None:
            start, fade = self.xfade
            off = max(0, start - f0)
            b = self._buf_b
            b[:off] = 0.0
            b_weights = dict(fr.weights)  # deck B, the one fading in, plays the weights of now
            if off < n:
                b[off:] = self._generate(self.deck_b, b_weights, controls, n - off)
                self._level(self.deck_b, b[off:])
                played.append((self.deck_b, self._deck_beats(self.deck_b)))
                wanted = self.deck_b  # the incoming deck's grid, from its first downbeat (BeatGrid)
            p0 = min(1.0, max(0.0, (f0 - start) / fade))
            p1 = min(1.0, max(0.0, (f0 + n - start) / fade))
            mixed = self._buf_a
            if off > 0:
                mixed[:off] = pcm_a[:off]
                kernels.crossfade_into(mixed[off:], pcm_a[off:], b[off:], 0.0, p1)
            else:
                kernels.crossfade_into(mixed, pcm_a, b, p0, p1)
            out = mixed.copy()
            if f0 + n >= start + fade:  # the fade is over: deck B becomes the bed
                self.deck_a = self.deck_b
                self.deck_b = None
                self.xfade = None
        beats = self._heard_beats(played, wanted)
        out = self._mix_stingers(out, f0, controls)
        self._stage = "mixer"
        kernels.soft_limit(out, CEILING)
        self._beat_events(beats, events)
        self.frame += n
        if self.deck_a.style is not None and self.deck_b is None:
            self.good = (self.deck_a.style, a_controls, fr)
        return Block(f0, out, fr, beats, events)

    def _level(self, deck: _Deck, pcm: np.ndarray) -> None:
        """Meter a deck's new block and apply its loudness match (in place): an incoming deck's gain follows the
        outgoing deck's loudness; any other deck's glides back to unity."""
        if not self.match_loudness and deck.gain == 1.0:
            return
        self._stage = "mixer"
        if deck.meter is None:
            deck.meter = ShortTermLoudness()
        deck.meter.add(pcm)
        deck.metered += pcm.shape[0]
        g0 = deck.gain
        dt = pcm.shape[0] / SAMPLE_RATE
        ref = deck.match_ref if deck is self.deck_b else None
        if ref is not None:
            if deck.metered < MATCH_MIN_S * SAMPLE_RATE or deck.meter.lufs <= MATCH_FLOOR_LUFS:
                return
            target = 10.0 ** (min(MATCH_MAX_DB, max(-MATCH_MAX_DB, ref - deck.meter.lufs)) / 20.0)
            g1 = target + (g0 - target) * math.exp(-dt / MATCH_SMOOTH_S)
        elif g0 != 1.0:
            g1 = 1.0 + (g0 - 1.0) * math.exp(-dt / MATCH_RELEASE_S)
            if abs(g1 - 1.0) < 1e-4:
                g1 = 1.0
        else:
            return
        kernels.gain_ramp(pcm, g0, g1)
        deck.gain = g1

    @staticmethod
    def _heard_lufs(deck: _Deck) -> float | None:
        """A deck's short-term loudness as heard (its match gain included), once a second of it has played."""
        if deck.meter is None or deck.metered < SAMPLE_RATE or deck.meter.lufs <= MATCH_FLOOR_LUFS:
            return None
        return deck.meter.lufs + 20.0 * math.log10(max(deck.gain, 1e-6))

    def _note_bar_line(self, beats: Sequence[Beat]) -> None:
        for b in beats:
            if b.downbeat:
                self._bar_line = (b.position if b.position is not None else float(b.frame), b.bpm)

    def _phase_locked_deck(self, start: int, a_beats: Sequence[Beat], weights: dict[str, float],
                           controls: Controls) -> _Deck:
        """The incoming deck of a crossfade starting at ``start``, phase-locked to the bed's bar.

        A backend that renders its own beat grid starts a stream on a downbeat. On the bed's bar line that is
        the lock already; mid-bar (a crossfade quantized to the beat) the stream starts on the bed's last bar
        line at the bed's tempo and its audio up to ``start`` is generated and dropped (a pre-roll of less than a
        bar), so its first heard beat is the bed's next beat, the same place in the bar; its own tempo (the
        controls') takes over on its next bar line, the bed's too. A start off the bed's beats (the clock placed it
        on a grid whose tempo has changed since), and backends with estimated beats, start at once on a downbeat."""
        state = self.backend.new_stream(self.seed + 1 + self._n_decks)
        deck = _Deck(state, start)
        bar_line = self._bar_line
        for b in a_beats:
            if b.downbeat and (b.position if b.position is not None else float(b.frame)) <= start + 0.5:
                bar_line = (b.position if b.position is not None else float(b.frame), b.bpm)
        if bar_line is None or not self.backend.capabilities.beat_grid:
            return deck
        at, bpm = int(round(bar_line[0])), bar_line[1]
        pre = start - at
        if pre <= 0 or bpm <= 0 or pre >= 4 * SAMPLE_RATE * 60.0 / bpm - 1:
            return deck
        beats = pre / (SAMPLE_RATE * 60.0 / bpm)
        if abs(beats - round(beats)) * SAMPLE_RATE * 60.0 / bpm > 0.001 * SAMPLE_RATE:
            return deck  # not on the bed's beat (a start the clock placed before a tempo change): its own downbeat
        self._stage = "backend step"
        _, deck.state = self.backend.generate(deck.state, self.style_of(weights), replace(controls, bpm=bpm), pre)
        deck.start = at
        return deck

    @staticmethod
    def _deck_beats(deck: _Deck) -> list[Beat]:
        """A deck's beats of its last block in this conductor's frames (a deck counts frames from its own start)."""
        start = deck.start
        return [replace(b, frame=b.frame + start, position=None if b.position is None else b.position + start)
                for b in deck.state.beats]

    def _heard_beats(self, played: Sequence[tuple[object, list[Beat]]], wanted: _Deck) -> list[Beat]:
        """The beats to publish (the stream's one grid, renumbered: :class:`BeatGrid`); the clock observes them."""
        beats = self.grid.take(played, wanted, self.paused_frames)
        self.clock.observe(beats)
        return beats

    def _to_stream(self, block: Block) -> Block:
        """``block`` (in this conductor's frames) in stream time: later by the frames it spent paused."""
        off = self.paused_frames
        if not off:
            return block
        s = off / SAMPLE_RATE
        beats = [replace(b, frame=b.frame + off, position=None if b.position is None else b.position + off)
                 for b in block.beats]
        return replace(block, frame=block.frame + off, beats=beats,
                       events=[replace(e, time=e.time + s) for e in block.events])

    @staticmethod
    def _beat_events(beats: Sequence[Beat], events: list[ev.Event]) -> None:
        for bt in beats:
            events.append(ev.BeatEvent(bt.seconds, bt.beat, bt.bar, bt.beat_in_bar, round(bt.bpm, 3), bt.estimated))

    # ------------------------------------------------------------ faults
    def hold(self) -> Block:
        """One block of the bed with the last mix that generated fine (:attr:`good`), after a failed :meth:`step`.

        No stingers and no crossfade (a running one is dropped: the bed plays
        on); the graph's clock still advances and its events are published, so
        parameters and states keep up. Raises :class:`StepFault` when there is
        no good mix yet or the backend step fails again.
        """
        n, f0 = self.block, self.frame
        events: list[ev.Event] = []
        tick, self._tick, self._incoming = self._tick, None, None
        if tick is not None and tick[0] == f0:  # plan() ticked: its events, but what it started does not play
            events = [_not_played(e) if isinstance(e, ev.StingerFired) else e for e in tick[2]]
        elif self._ticked != f0:
            try:
                events = self._engine_events(self._tick_engine(f0), f0, start=False)
            except Exception:  # noqa: BLE001 — the graph is what failed; the bed plays on without it
                pass
        self.deck_b = None
        self.xfade = self.pending_xfade = None
        self.stingers = []
        if self.good is None:
            raise StepFault("backend step", RuntimeError("no mix has generated yet to fall back to"))
        style, controls, fr = self.good
        self._stage = "backend step"
        try:
            pcm, self.deck_a.state = self.backend.generate(self.deck_a.state, style, controls, n)
            a_beats = self._deck_beats(self.deck_a)
            self._note_bar_line(a_beats)
            beats = self._heard_beats([(self.deck_a, a_beats)], self.deck_a)
            # no stingers left: this only releases the duck
            out = self._mix_stingers(np.array(pcm, dtype=np.float32, copy=True), f0, controls)
            kernels.soft_limit(out, CEILING)
        except Exception as exc:  # noqa: BLE001
            raise StepFault("backend step", exc) from exc
        self._beat_events(beats, events)
        self.frame += n
        return self._to_stream(Block(f0, out, replace(fr, events=[]), beats, events))

    def idle(self) -> None:
        """A block of silence in stream time (after :meth:`hold` failed too): the clocks run on."""
        f0 = self.frame
        self._tick = self._incoming = None
        if self._ticked != f0:
            try:
                self._tick_engine(f0)
            except Exception:  # noqa: BLE001 — silent anyway
                pass
        self.stingers = []
        self.frame += self.block

    def fresh_bed(self) -> None:
        """Replace the bed's stream with a fresh one (its state may be what fails); raises StepFault."""
        try:
            self.deck_a = _Deck(self.backend.new_stream(self.seed + 1 + self._n_decks), self.frame,
                                dict(self.deck_a.weights), self.deck_a.style)
            self._n_decks += 1
        except Exception as exc:  # noqa: BLE001
            raise StepFault("backend step", exc) from exc

    # ------------------------------------------------------------ stingers
    def _start_stinger(self, fired: ev.StingerFired, f0: int) -> None:
        spec = self.graph.stingers[fired.name]
        start = max(f0, int(round(fired.time * SAMPLE_RATE)))
        length = int(round(fired.duration_seconds * SAMPLE_RATE))
        st = _Stinger(fired.name, start, start + length, 10.0 ** (spec.gain_db / 20.0), 10.0 ** (spec.duck_db / 20.0))
        if spec.prompt:
            st.deck = _Deck(self.backend.new_stream(self.seed + 1000 + len(self.stingers)), start)
            st.style = self.style_of({spec.prompt: 1.0})
        elif spec.audio:
            st.audio = self.stinger_audio[spec.audio]
            st.end = start + st.audio.shape[0]
        self.stingers.append(st)

    def _mix_stingers(self, bed: np.ndarray, f0: int, controls: Controls) -> np.ndarray:
        n = bed.shape[0]
        active = [s for s in self.stingers if s.start < f0 + n and s.end > f0]
        # the stingers' audio first: how much of the bed they fill decides how deep the duck may go
        fade = int(STINGER_FADE_S * SAMPLE_RATE)
        parts: list[tuple[int, int, np.ndarray, float, float]] = []
        e_st = 0.0
        for s in active:
            off = max(0, s.start - f0)
            m = min(n, s.end - f0) - off
            if m <= 0:
                continue
            self._stage = f"stinger {s.name}"
            if s.deck is not None and s.style is not None:
                src, s.deck.state = self.backend.generate(s.deck.state, s.style, controls, m)
            else:
                assert s.audio is not None
                k = f0 + off - s.start
                src = s.audio[k : k + m]
            src = np.ascontiguousarray(src, dtype=np.float32)
            # envelope: a short fade in, a short fade out, as a gain ramp across this block's part
            pos0 = f0 + off - s.start
            length = s.end - s.start
            g0 = s.gain * min(1.0, pos0 / fade, (length - pos0) / fade) * math.cos(_tail(s, f0 + off) * HALF_PI)
            g1 = s.gain * min(1.0, (pos0 + m) / fade, (length - pos0 - m) / fade) * math.cos(
                _tail(s, f0 + off + m) * HALF_PI)
            g0, g1 = max(g0, 0.0), max(g1, 0.0)
            parts.append((off, m, src, g0, g1))
            e_st += (0.5 * (g0 + g1)) ** 2 * float(np.square(src, dtype=np.float64).sum()) / (2 * n)
        e_bed = float(np.square(bed, dtype=np.float64).sum()) / (2 * n) if active or self.duck < 1.0 else 0.0
        k_fill = 1.0 - math.exp(-(n / SAMPLE_RATE) / DUCK_FILL_S)
        fb, fs = self._fill
        fb, fs = fb + (e_bed - fb) * k_fill, fs + (e_st - fs) * k_fill
        self._fill = (fb, fs) if active else (0.0, 0.0)
        fill_duck = math.sqrt(max(0.0, 1.0 - fs / fb)) if fb > 1e-12 else 0.0
        # each stinger's duck at the block's end: held while it plays, handed back over its tail (sin)
        ducks = [s.duck + (1.0 - s.duck) * math.sin(_tail(s, f0 + n) * HALF_PI) for s in active]
        duck_target = max(min(ducks, default=1.0), min(1.0, fill_duck)) if ducks else 1.0
        if duck_target < self.duck:
            d1 = duck_target + (self.duck - duck_target) * math.exp(-(n / SAMPLE_RATE) / DUCK_ATTACK_S)
        elif any(_tail(s, f0 + n) > 0.0 for s in active):
            d1 = duck_target  # the tail shapes the release: the bed returns as the stinger leaves
        else:
            d1 = duck_target + (self.duck - duck_target) * math.exp(-(n / SAMPLE_RATE) / DUCK_RELEASE_S)
        out = bed  # a fresh block from the backend or a copy of the crossfade buffer: ours to change
        kernels.gain_ramp(out, self.duck, d1)
        self.duck = d1
        for off, m, src, g0, g1 in parts:
            kernels.mix_into(out[off : off + m], src, g0, g1)
        self.stingers = [s for s in self.stingers if s.end > f0 + n]
        return out

    # ------------------------------------------------------------- preview
    def run(self, automation: Sequence[Automation], seconds: float) -> Iterator[Block]:
        """Apply a timeline and yield blocks until exactly ``seconds`` of audio (the offline road: render,
        preview, demo). The last block is cut to the length, with its beats and events past the end."""
        total = self.frame + int(round(seconds * SAMPLE_RATE))
        pending = list(automation)
        i = 0
        while self.frame < total:
            t_end = (self.frame + self.block) / SAMPLE_RATE
            while i < len(pending) and pending[i].time < t_end:
                self.apply(pending[i])
                i += 1
            block = self.step()
            if self.frame > total:
                keep = total - block.frame
                end = total / SAMPLE_RATE
                block = replace(block, pcm=block.pcm[:keep], beats=[b for b in block.beats if b.frame < total],
                                events=[e for e in block.events if e.time < end])
            yield block


HALF_PI = 0.5 * math.pi


def _not_played(e: ev.StingerFired) -> ev.Warning:
    """What is published for a stinger that fired while the music holds the last good mix: it does not play."""
    return ev.Warning(e.time, f"stinger {e.name!r} not played: the music holds the last good mix after a fault",
                      f"stingers.{e.name}")


def _tail(s: _Stinger, frame: int) -> float:
    """How far ``frame`` is into stinger ``s``'s tail (its last STINGER_TAIL_S, at most half its length): 0…1."""
    tail = min(STINGER_TAIL_S * SAMPLE_RATE, 0.5 * (s.end - s.start))
    if tail <= 0.0:
        return 1.0 if frame >= s.end else 0.0
    return min(1.0, max(0.0, (frame - (s.end - tail)) / tail))


def load_stinger_audio(path: Path) -> np.ndarray:
    """A stinger file as float32 stereo at SAMPLE_RATE (regular files only, bounded; see :mod:`.graph.audio`)."""
    from cadenza.errors import PromptError
    from cadenza.runtime.graph import audio

    try:
        resolved, data = audio.read_audio(str(path), None, None)
        return audio.decode_stinger(data, resolved)
    except audio.AudioFileError as exc:
        raise PromptError(f"cannot use stinger audio: {exc.message}") from None
