"""The style-graph evaluator: timestamped inputs in, one :class:`Frame` per control tick out.

A :class:`GraphEngine` is a pure function of (graph, timestamped inputs, time):
it has no clock of its own and reads no wall time, so an offline preview
(:meth:`GraphEngine.preview`) produces exactly the frames live play does.
Musical time comes from a :class:`BeatClock` passed to every :meth:`tick`; the
runtime implements it from the backend's beat grid, :class:`FixedClock` is a
steady tempo for tests and previews without audio.

Time and inputs
    ``tick()`` advances the time by one control period (``time = start +
    n / rate``; rate = ``graph.control_rate``). ``set``, ``set_many``,
    ``trigger`` and ``set_state`` validate at once (an error raises and
    nothing is queued or changed) and queue the input with its *effective
    time*: ``at``, or the engine's current time when ``at`` is omitted or
    already past. A tick applies every queued input whose effective time is
    ``<= `` its own time, in order of (effective time, call order). Ramps,
    filter time stamps, quantization, failsafe timing and cooldowns all use
    the effective time, so results do not depend on which tick an input falls
    into beyond the tick quantization of the output itself.

Order within one tick
    1. due inputs (each may schedule a state change or a stinger);
    2. failsafe: engaged when no input was applied for ``failsafe.after``
       seconds (counted from the last input's effective time, exactly);
    3. parameters step (ramps, smoothing, slew; see :mod:`.params`);
       intensity follows its hold/decay;
    4. a scheduled state change whose start has come begins;
    5. due stingers fire;
    6. mix and controls are evaluated (only when a parameter or the state
       changed since the last evaluation) and the frame is built.

States and transitions
    The current state's mix replaces the global mix (``State.mix is None``:
    the global one) and its controls override single global controls. A
    request (``set_state``, a trigger's ``set_state``, or a new label of the
    ``states_driven_by`` parameter) for the state already current (or already
    scheduled) does nothing. Otherwise the most specific rule applies
    (from+to > from+any > any+to > any+any; of equally specific rules the
    first listed; no rule: start now, no fade, blend). The start is the
    effective time (``now``) or ``clock.next_boundary(t, "beat" | "bar")``;
    a SCHEDULED ``StateChange`` is emitted when the request is processed. A second
    request before the start replaces the scheduled one (``StateCancelled``).
    At the first tick whose time is ``>=`` the start, STARTED is emitted,
    :attr:`Frame.state` becomes the target and the transition runs with
    ``progress = (time − start) / fade_s`` (the fade resolved with
    ``clock.beat_seconds(start)``; 0 s: progress 1 at once) until the tick
    where it reaches 1, which is the last frame that carries it.
    The source is a snapshot taken at the start: the weights and controls the
    engine would have output at that instant — the current state's, or, when a
    transition was still running, its current blend (``(1−p)·source + p·target``,
    whatever its mode). ``blend`` mode outputs ``(1−p)·source + p·target``
    (renormalized); continuous controls (bpm, density, brightness,
    temperature, guidance) interpolate, the others switch at ``p >= 0.5``.
    ``crossfade`` mode outputs the target's weights and controls and carries the
    source's in :attr:`ActiveTransition.source_weights` /
    :attr:`~ActiveTransition.source_controls` for the mixer's deck A.

Stingers, intensity, failsafe
    A trigger bumps intensity, then requests its state, then its stinger. A
    stinger is refused (``StingerRefused``, with the remaining seconds) when
    the request comes less than ``cooldown`` seconds after its last accepted
    start; otherwise it is scheduled at the quantized time
    (``StingerScheduled``) and fires at that time (``StingerFired``, with the length
    resolved with the clock at its start). Intensity is built in, in [0, 1]: a
    bump adds (clamped), the level holds ``hold`` seconds after the last bump
    and then falls linearly by ``decay`` per second; ``set("intensity", v)``
    sets the level like a bump to ``v``. The failsafe ramps every continuous
    parameter linearly over ``glide`` seconds to its safe value and switches
    discrete and labeled ones at once (intensity keeps decaying on its own);
    ``Failsafe`` is emitted once, and the next input emits ``FailsafeReleased``
    and applies normally (parameters it does not touch keep gliding).

Events
    Typed (:mod:`cadenza.runtime.events`), each carries the exact time of what
    it reports (the effective time of an input, the start of a state change or
    stinger, the moment the failsafe engaged), which may lie before the tick
    that emits it: ``Trigger``; ``Clamped`` (a set value outside the range was
    clamped; once until an in-range value is set); ``StateChange`` with phase
    SCHEDULED (emitted when the request is processed, ``time`` = the start),
    STARTED (at the start) and COMPLETED (at start + fade, in the tick where
    the progress reaches 1: the new state plays alone; a cut completes in the
    tick it starts); ``StateCancelled``; ``StingerScheduled``,
    ``StingerRefused``, ``StingerFired``; ``Failsafe``, ``FailsafeReleased``;
    ``Warning`` (a non-finite or mistyped node value, once per place).
    :meth:`GraphEngine.pending_state` and :meth:`GraphEngine.heard_at` say
    ahead of the tick when a request just made will be heard;
    :meth:`GraphEngine.pending_change` repeats a waiting change's SCHEDULED event.
"""

from __future__ import annotations

import heapq
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from cadenza.errors import GraphError, UsageError
from cadenza.runtime.graph.nodes import (
    CONTINUOUS_CONTROLS, SHAPES, Compiler, Env, MixFn, NodeFn, Value, default_weights, normalize,
)
from cadenza.runtime.graph.params import ParamState, ParamValue, check_seconds, describe_value
from cadenza.runtime import events as ev
from cadenza.runtime.events import Event, Phase
from cadenza.runtime.graph.spec import MODES, QUANTIZE, Duration, Graph, Transition

__all__ = ["ActiveTransition", "BeatClock", "Event", "FixedClock", "Frame", "GraphEngine", "Input"]


# ------------------------------------------------------------------- clock
@runtime_checkable
class BeatClock(Protocol):
    """Musical time: what quantization and musical durations are resolved against."""

    def beat_seconds(self, t: float) -> float:
        """Length of one beat (seconds) at time ``t``."""
        ...

    def next_boundary(self, t: float, unit: Literal["beat", "bar"]) -> float:
        """Time of the first beat (or bar) at or after ``t``."""
        ...


@dataclass(frozen=True)
class FixedClock:
    """A steady tempo: beats at ``origin + k·60/bpm``, a bar every ``beats_per_bar`` beats."""

    bpm: float
    origin: float = 0.0
    beats_per_bar: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.bpm, bool) or not isinstance(self.bpm, numbers.Real) or not (
                math.isfinite(self.bpm) and self.bpm > 0):
            raise UsageError(f"must be a finite number > 0, got {self.bpm!r}", where="bpm")
        if not math.isfinite(self.origin):
            raise UsageError(f"must be a finite number of seconds, got {self.origin!r}", where="origin")
        if isinstance(self.beats_per_bar, bool) or not isinstance(self.beats_per_bar, int) or self.beats_per_bar < 1:
            raise UsageError(f"must be an integer >= 1, got {self.beats_per_bar!r}", where="beats_per_bar")

    def beat_seconds(self, t: float) -> float:
        return 60.0 / self.bpm

    def next_boundary(self, t: float, unit: Literal["beat", "bar"]) -> float:
        period = 60.0 / self.bpm * (self.beats_per_bar if unit == "bar" else 1)
        k = math.ceil((t - self.origin) / period - 1e-9)
        return self.origin + k * period


# ------------------------------------------------------------------ output
@dataclass(frozen=True)
class ActiveTransition:
    """A state change in progress, as the frame that carries it sees it."""

    source: str | None
    target: str
    mode: Literal["blend", "crossfade"]
    start: float  # exact seconds
    fade_s: float
    progress: float  # 0..1
    source_weights: dict[str, float]
    source_controls: dict[str, Value]


@dataclass(frozen=True)
class Frame:
    """The graph's output for one control tick."""

    time: float
    state: str | None
    weights: dict[str, float]  # every prompt of the graph, normalized to sum 1
    controls: dict[str, Value]
    params: dict[str, Value]  # current values, intensity included
    transition: ActiveTransition | None
    events: list[Event]


@dataclass(frozen=True)
class Input:
    """A timestamped input for :meth:`GraphEngine.preview` (an automation row)."""

    time: float
    kind: Literal["set", "trigger", "state"]
    name: str
    value: object = None
    ramp: float | None = None
    shape: str = "linear"
    bypass: bool = False


# ---------------------------------------------------------------- internal
@dataclass(frozen=True)
class _Pending:
    source: str | None
    target: str
    start: float
    fade: Duration
    mode: Literal["blend", "crossfade"]


@dataclass(frozen=True)
class _Active:
    source: str | None
    target: str
    mode: Literal["blend", "crossfade"]
    start: float
    fade_s: float
    weights: tuple[float, ...]
    controls: tuple[tuple[str, Value], ...]

    def progress(self, t: float) -> float:
        if self.fade_s <= 0.0:
            return 1.0
        p = (t - self.start) / self.fade_s
        return 0.0 if p < 0.0 else 1.0 if p > 1.0 else p


# A queued input: (effective time, sequence, kind, name, value, ramp, shape, bypass, raw value if clamped).
_Queued = tuple[float, int, str, str, object, float | None, str, bool, object]


def _blend_outputs(src_w: Iterable[float], src_c: Mapping[str, Value], dst_w: list[float],
                   dst_c: Mapping[str, Value], p: float, fallback: list[float]) -> tuple[list[float], dict[str, Value]]:
    q = 1.0 - p
    w = normalize([q * a + p * b for a, b in zip(src_w, dst_w)], fallback)
    c: dict[str, Value] = {}
    late = p >= 0.5
    for name in (*dst_c, *(n for n in src_c if n not in dst_c)):
        a = src_c.get(name)
        b = dst_c.get(name)
        if name in CONTINUOUS_CONTROLS and type(a) is float and type(b) is float:
            c[name] = q * a + p * b
        else:
            v = b if late else a
            if v is not None:
                c[name] = v
    return w, c


def _check_time(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise UsageError(f"must be a finite number of seconds, got {describe_value(value)}", where=what)
    return float(value)


# ------------------------------------------------------------------ engine
class GraphEngine:
    """Evaluates one :class:`~cadenza.runtime.graph.spec.Graph` at its control rate (see the module docstring).

    Raises :class:`GraphError` when the graph holds something it cannot
    evaluate (an unknown reference, a bad range, a node cycle).
    """

    def __init__(self, graph: Graph, start: float = 0.0) -> None:
        self.graph = graph
        rate: object = graph.control_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (math.isfinite(rate) and rate > 0):
            raise GraphError(f"must be a finite number of Hz > 0, got {rate!r}", where="control_rate")
        self.rate = float(rate)
        self._start = _check_time(start, "start")
        self._n = 0
        self.time = self._start
        self._prompts = list(graph.prompts)

        # parameters
        if "intensity" in graph.parameters:
            raise GraphError("'intensity' is built in and cannot be declared", where="parameters.intensity")
        self._params = {name: ParamState(p, self.rate) for name, p in graph.parameters.items()}
        self._stepping = [ps for ps in self._params.values() if ps.kind == "continuous"]
        self._values: dict[str, Value] = {name: ps.value for name, ps in self._params.items()}
        self._values["intensity"] = 0.0
        self._param_names = ", ".join([*self._params, "intensity"])
        self._env = Env(self._values)

        # mix and controls, per state
        compiler = Compiler(graph, self._prompts)
        self._default = default_weights(graph, self._prompts)
        global_mix = compiler.mix(graph.mix, "mix")
        global_controls = {name: compiler.control(name, node, f"controls.{name}")
                           for name, node in graph.controls.items()}
        self._outputs: dict[str | None, tuple[MixFn, list[tuple[str, NodeFn]]]] = {}
        for sname, st in graph.states.items():
            mix = global_mix if st.mix is None else compiler.mix(st.mix, f"states.{sname}.mix")
            controls = dict(global_controls)
            for cname, node in st.controls or ():
                controls[cname] = compiler.control(cname, node, f"states.{sname}.controls.{cname}")
            self._outputs[sname] = (mix, list(controls.items()))
        if not graph.states:
            self._outputs[None] = (global_mix, list(global_controls.items()))
        self._state_names = ", ".join(graph.states) or "(none)"

        # states and transition rules
        self._driven_by = graph.states_driven_by
        initial: str | None = None
        if graph.states:
            initial = graph.initial_state
            if self._driven_by is not None:
                ps = self._params.get(self._driven_by)
                if ps is None or ps.kind != "labeled":
                    raise GraphError(f"{self._driven_by!r} is not a labeled parameter", where="states.driven_by")
                for label in ps.param.labels:
                    if label not in graph.states:
                        raise GraphError(f"label {label!r} of {self._driven_by!r} is not a state; states: "
                                         f"{self._state_names}", where="states.driven_by")
                if initial is None:
                    initial = str(ps.value)
            if initial is None:
                initial = next(iter(graph.states))
            if initial not in graph.states:
                raise GraphError(f"unknown state {initial!r}; states: {self._state_names}", where="states.initial")
        elif graph.initial_state is not None or self._driven_by is not None:
            raise GraphError("the graph has no states", where="states")
        self._state: str | None = initial
        self._rules = self._build_rules()
        self._pending: _Pending | None = None
        self._active: _Active | None = None

        # triggers, stingers, intensity, failsafe
        self._check_events_spec()
        self._int_level = 0.0
        self._int_time = self._start
        self._stingers_due: list[tuple[float, int, str]] = []
        self._stinger_last: dict[str, float] = {}
        self._fs_engaged = False
        self._last_input = self._start

        # queue and caches
        self._queue: list[_Queued] = []
        self._seq = 0
        self._clamp_reported: set[str] = set()
        self._version = 0
        self._cache_key: tuple[int, str | None] = (-1, None)
        self._cache_w: list[float] = []
        self._cache_c: dict[str, Value] = {}

    # ------------------------------------------------------- construction
    def _build_rules(self) -> dict[tuple[str | None, str], Transition | None]:
        states = list(self.graph.states)
        for k, tr in enumerate(self.graph.transitions):
            where = f"transitions[{k}]"
            for end, name in (("from", tr.source), ("to", tr.target)):
                if name != "any" and name not in self.graph.states:
                    raise GraphError(f"unknown state {name!r} in {end!r}; states: {self._state_names} or any",
                                     where=where)
            if tr.quantize not in QUANTIZE:
                raise GraphError(f"unknown quantize {tr.quantize!r}; use {', '.join(QUANTIZE)}", where=where)
            if tr.mode not in MODES:
                raise GraphError(f"unknown mode {tr.mode!r}; use {', '.join(MODES)}", where=where)
            self._check_duration(tr.fade, f"{where}.fade")
        rules: dict[tuple[str | None, str], Transition | None] = {}
        for a in states:
            for b in states:
                best: Transition | None = None
                for tr in self.graph.transitions:
                    if tr.source in (a, "any") and tr.target in (b, "any"):
                        if best is None or tr.specificity > best.specificity:
                            best = tr
                rules[(a, b)] = best
        return rules

    @staticmethod
    def _check_duration(d: Duration, where: str) -> None:
        if d.unit not in ("s", "beats", "bars") or not math.isfinite(d.value) or d.value < 0:
            raise GraphError(f"must be a finite duration >= 0 in s, beats or bars, got {d!r}", where=where)

    def _check_events_spec(self) -> None:
        g = self.graph
        for name, st in g.stingers.items():
            where = f"stingers.{name}"
            if st.prompt is not None and st.prompt not in g.prompts:
                raise GraphError(f"unknown prompt {st.prompt!r}; prompts: {', '.join(g.prompts) or '(none)'}",
                                 where=f"{where}.prompt")
            if st.quantize not in QUANTIZE:
                raise GraphError(f"unknown quantize {st.quantize!r}; use {', '.join(QUANTIZE)}", where=where)
            if not math.isfinite(st.cooldown) or st.cooldown < 0:
                raise GraphError(f"cooldown must be a finite number of seconds >= 0, got {st.cooldown!r}",
                                 where=where)
            self._check_duration(st.length, f"{where}.length")
        for name, td in g.triggers.items():
            where = f"triggers.{name}"
            if td.stinger is not None and td.stinger not in g.stingers:
                raise GraphError(f"unknown stinger {td.stinger!r}; stingers: {', '.join(g.stingers) or '(none)'}",
                                 where=f"{where}.stinger")
            if td.set_state is not None and td.set_state not in g.states:
                raise GraphError(f"unknown state {td.set_state!r}; states: {self._state_names}",
                                 where=f"{where}.set_state")
            if not math.isfinite(td.bump):
                raise GraphError(f"bump must be a finite number, got {td.bump!r}", where=where)
        it = g.intensity
        for what, v in (("decay", it.decay), ("hold", it.hold)):
            if not math.isfinite(v) or v < 0:
                raise GraphError(f"{what} must be a finite number >= 0, got {v!r}", where="intensity")
        fs = g.failsafe
        if fs is not None:
            if not math.isfinite(fs.after) or fs.after <= 0:
                raise GraphError(f"after must be a finite number of seconds > 0, got {fs.after!r}", where="failsafe")
            if not math.isfinite(fs.glide) or fs.glide < 0:
                raise GraphError(f"glide must be a finite number of seconds >= 0, got {fs.glide!r}", where="failsafe")

    # -------------------------------------------------------------- input
    @property
    def state(self) -> str | None:
        """The current state (the target of a running transition); ``None`` for a graph without states."""
        return self._state

    @property
    def params(self) -> dict[str, Value]:
        """The current parameter values, intensity included."""
        return dict(self._values)

    def _effective(self, at: object) -> float:
        if at is None:
            return self.time
        t = _check_time(at, "at")
        return t if t > self.time else self.time

    def _prepare_set(self, name: object, value: object, at: object, ramp: object, shape: object,
                     bypass: object, clamp: bool = False) -> _Queued:
        if not isinstance(name, str) or (name not in self._params and name != "intensity"):
            raise UsageError(f"unknown parameter {name!r}; parameters: {self._param_names}", where="set")
        eff = self.time if at is None else self._effective(at)
        where = f"parameters.{name}"
        if not isinstance(bypass, bool):
            raise UsageError(f"bypass must be true or false, got {bypass!r}", where=where)
        r: float | None = None
        if ramp is not None:
            r = check_seconds(ramp, "ramp", where=where)
            if bypass:
                raise UsageError("ramp and bypass exclude each other (bypass jumps at once)", where=where)
        if not isinstance(shape, str) or shape not in SHAPES:
            raise UsageError(f"unknown ramp shape {shape!r}; shapes: {', '.join(SHAPES)}", where=where)
        note: object = None
        if name == "intensity":
            if r is not None:
                raise UsageError("intensity takes no ramp: it moves by bumps, hold and decay", where=where)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
                raise UsageError(f"must be a finite number in [0, 1], got {describe_value(value)}", where=where)
            v: ParamValue = min(max(float(value), 0.0), 1.0)
            if v != float(value):
                if not clamp:
                    raise UsageError(f"{float(value)!r} is outside [0, 1] (set with clamp to clamp it)",
                                     where=where)
                note = float(value)
        else:
            v, clamped = self._params[name].validate(value)
            if clamped:
                assert isinstance(value, numbers.Real)
                if not clamp:
                    p = self.graph.parameters[name]
                    raise UsageError(f"{float(value)!r} is outside [{p.min:g}, {p.max:g}] "
                                     "(set with clamp to clamp it, as sensors may)", where=where)
                note = float(value)
        return (eff, 0, "set", name, v, r, shape, bypass, note)

    def _push(self, items: list[_Queued]) -> None:
        for it in items:
            self._seq += 1
            heapq.heappush(self._queue, (it[0], self._seq, *it[2:]))

    def set(self, name: str, value: object, *, at: float | None = None, ramp: float | None = None,
            shape: str = "linear", bypass: bool = False, clamp: bool = False) -> None:
        """Set parameter ``name`` to ``value`` (at ``at``; over ``ramp`` seconds along ``shape``; or at once).

        Raises :class:`UsageError` naming the parameter, the bad value and the
        valid range or labels; then nothing changes. A value outside the
        parameter's range is an error too, unless ``clamp`` (sensors that
        overshoot): then it is clamped and a ``clamped`` event says so once.
        """
        self._push([self._prepare_set(name, value, at, ramp, shape, bypass, clamp)])

    def set_many(self, values: Mapping[str, object], *, at: float | None = None, ramp: float | None = None,
                 shape: str = "linear", bypass: bool = False, clamp: bool = False) -> None:
        """Several :meth:`set` calls at once, all or nothing: one bad value and none is queued."""
        if type(values) is not dict and not isinstance(values, Mapping):  # (the ABC check costs more)
            raise UsageError(f"expected a mapping of parameter names to values, got {values!r}", where="set_many")
        items = [self._prepare_set(n, v, at, ramp, shape, bypass, clamp) for n, v in values.items()]
        self._push(items)

    def _prepare_trigger(self, name: object, at: object) -> _Queued:
        if not isinstance(name, str) or name not in self.graph.triggers:
            raise UsageError(f"unknown trigger {name!r}; triggers: {', '.join(self.graph.triggers) or '(none)'}",
                             where="trigger")
        return (self._effective(at), 0, "trigger", name, None, None, "linear", False, None)

    def trigger(self, name: str, at: float | None = None) -> None:
        """Fire trigger ``name`` (bump, state, stinger as authored)."""
        self._push([self._prepare_trigger(name, at)])

    def _prepare_state(self, name: object, at: object) -> _Queued:
        if not isinstance(name, str) or name not in self.graph.states:
            raise UsageError(f"unknown state {name!r}; states: {self._state_names}", where="set_state")
        return (self._effective(at), 0, "state", name, None, None, "linear", False, None)

    def set_state(self, name: str, at: float | None = None) -> None:
        """Request state ``name``; it starts at the quantized time its transition rule gives."""
        self._push([self._prepare_state(name, at)])

    # ------------------------------------------------------------ preview
    def preview(self, inputs: Iterable[Input], seconds: float, clock: BeatClock) -> list[Frame]:
        """Queue ``inputs`` (all validated first) and run ``round(seconds·rate)`` ticks; the frames.

        Input times are engine times; on a fresh engine (``start=0``) this runs
        the ticks from 0 to ``seconds``, exactly as live play would.
        """
        secs = check_seconds(seconds, "seconds", where="preview")
        items: list[_Queued] = []
        for k, inp in enumerate(inputs):
            try:
                if inp.kind == "set":
                    items.append(self._prepare_set(inp.name, inp.value, inp.time, inp.ramp, inp.shape, inp.bypass))
                elif inp.kind == "trigger":
                    items.append(self._prepare_trigger(inp.name, inp.time))
                elif inp.kind == "state":
                    items.append(self._prepare_state(inp.name, inp.time))
                else:
                    raise UsageError(f"unknown input kind {inp.kind!r}; use set, trigger or state")
            except UsageError as exc:
                raise UsageError(exc.message, where=f"inputs[{k}] ({exc.where})" if exc.where else f"inputs[{k}]") \
                    from exc
        self._push(items)
        return [self.tick(clock) for _ in range(round(secs * self.rate))]

    # --------------------------------------------------------------- tick
    def tick(self, clock: BeatClock) -> Frame:
        """Advance one control period and return its frame."""
        self._n += 1
        t = self._start + self._n / self.rate
        self.time = t
        events: list[Event] = []
        q = self._queue
        while q and q[0][0] <= t:
            self._apply(heapq.heappop(q), clock, events)
        fs = self.graph.failsafe
        if fs is not None and not self._fs_engaged and t - self._last_input >= fs.after:
            self._engage_failsafe(fs.after, fs.glide, clock, events)

        values = self._values
        changed = False
        for ps in self._stepping:
            if ps.step(t):
                values[ps.name] = ps.value
                changed = True
        iv = self._intensity_at(t)
        if iv != values["intensity"]:
            values["intensity"] = iv
            changed = True
        if changed:
            self._bump()

        if self._pending is not None and self._pending.start <= t:
            self._begin(clock, t, events)
        while self._stingers_due and self._stingers_due[0][0] <= t:
            self._fire_stinger(heapq.heappop(self._stingers_due), clock, events)

        w, c = self._current_outputs()
        transition = None
        a = self._active
        if a is not None:
            p = a.progress(t)
            if a.mode == "blend":
                w, c = _blend_outputs(a.weights, dict(a.controls), w, c, p, self._default)
            transition = ActiveTransition(
                a.source, a.target, a.mode, a.start, a.fade_s, p,
                dict(zip(self._prompts, a.weights)), dict(a.controls),
            )
            if p >= 1.0:  # the fade is over (a cut: at once): the new state plays alone
                self._active = None
                events.append(ev.StateChange(a.start + a.fade_s, a.target, a.source or "", Phase.COMPLETED, a.mode,
                                             a.fade_s))
        env = self._env
        if env.warnings:
            for where, message in env.warnings:
                events.append(ev.Warning(t, message, where))
            env.warnings.clear()
        return Frame(t, self._state, dict(zip(self._prompts, w)), dict(c), dict(values), transition, events)

    def _bump(self) -> None:
        self._version += 1
        self._env.memo.clear()

    def _current_outputs(self) -> tuple[list[float], dict[str, Value]]:
        key = (self._version, self._state)
        if key != self._cache_key:
            mix, controls = self._outputs[self._state]
            env = self._env
            acc = [0.0] * len(self._prompts)
            mix(env, acc)
            self._cache_w = normalize(acc, self._default)
            c: dict[str, Value] = {}
            for name, fn in controls:
                v = fn(env)
                if v is not None:
                    c[name] = v
            self._cache_c = c
            self._cache_key = key
        return self._cache_w, self._cache_c

    def _intensity_at(self, t: float) -> float:
        it = self.graph.intensity
        late = t - self._int_time - it.hold
        if late <= 0.0 or self._int_level <= 0.0:
            return self._int_level
        v = self._int_level - it.decay * late
        return v if v > 0.0 else 0.0

    # ---------------------------------------------------------- applying
    def _apply(self, item: _Queued, clock: BeatClock, events: list[Event]) -> None:
        eff, _, kind, name, value, ramp, shape, bypass, note = item
        if self._fs_engaged:
            self._fs_engaged = False
            events.append(ev.FailsafeReleased(eff, kind, name))
        self._last_input = eff
        if kind == "set":
            if note is not None:
                if name not in self._clamp_reported:
                    self._clamp_reported.add(name)
                    assert isinstance(note, float) and isinstance(value, (int, float))
                    events.append(ev.Clamped(eff, name, note, float(value)))
            else:
                self._clamp_reported.discard(name)
            if name == "intensity":
                assert isinstance(value, float)
                self._int_level = value
                self._int_time = eff
                return
            assert isinstance(value, (float, int, str))
            self._set_param(name, value, eff, ramp, shape, bypass, clock, events)
        elif kind == "trigger":
            self._trigger(name, eff, clock, events)
        else:
            self._request_state(name, eff, clock, events)

    def _set_param(self, name: str, value: ParamValue, t: float, ramp: float | None, shape: str, bypass: bool,
                   clock: BeatClock, events: list[Event]) -> None:
        ps = self._params[name]
        if ps.apply(value, t, ramp=ramp, shape=shape, bypass=bypass):
            self._values[name] = ps.value
            self._bump()
            if name == self._driven_by:
                assert isinstance(ps.value, str)
                self._request_state(ps.value, t, clock, events)

    def _trigger(self, name: str, t: float, clock: BeatClock, events: list[Event]) -> None:
        td = self.graph.triggers[name]
        events.append(ev.Trigger(t, name))
        if td.bump:
            level = self._intensity_at(t) + td.bump
            self._int_level = 0.0 if level < 0.0 else 1.0 if level > 1.0 else level
            self._int_time = t
        if td.set_state is not None:
            self._request_state(td.set_state, t, clock, events)
        if td.stinger is not None:
            self._request_stinger(td.stinger, t, clock, events)

    def _quantize(self, quantize: str, t: float, clock: BeatClock) -> float:
        if quantize == "now":
            return t
        b = float(clock.next_boundary(t, "bar" if quantize == "bar" else "beat"))
        return b if math.isfinite(b) and b > t else t

    @staticmethod
    def _beat(clock: BeatClock, t: float) -> float:
        b = float(clock.beat_seconds(t))
        return b if math.isfinite(b) and b > 0.0 else 0.5

    # ------------------------------------------------------------- states
    def _rule_for(self, source: str | None, target: str, t: float,
                  clock: BeatClock) -> tuple[float, Duration, Literal["blend", "crossfade"]]:
        """(start, fade, mode) of a change ``source`` → ``target`` requested at ``t``: the most specific rule's,
        or now, no fade, blend."""
        rule = self._rules.get((source, target))
        if rule is None:
            return t, Duration(0.0), "blend"
        return self._quantize(rule.quantize, t, clock), rule.fade, rule.mode

    def pending_state(self, clock: BeatClock) -> tuple[str, float] | None:
        """The state change waiting for its start: (state, engine seconds it starts at), or None.

        Requests queued for the next tick (a :meth:`set_state` or a trigger's
        state just made) count as that tick will apply them, with the same
        ``clock``: a request is visible here at once, not a tick later. A state
        that a labeled parameter will drive is seen once the tick applied it.
        """
        state = self._state
        pending = (self._pending.target, self._pending.start) if self._pending is not None else None
        horizon = self.time + 1.0 / self.rate
        for item in sorted(self._queue, key=lambda it: (it[0], it[1])):
            eff, kind, name = item[0], item[2], item[3]
            if eff > horizon:
                break
            target = name if kind == "state" else self.graph.triggers[name].set_state if kind == "trigger" else None
            if target is None or target == (pending[0] if pending is not None else state):
                continue
            pending = None
            if target != state:
                pending = (target, self._rule_for(state, target, eff, clock)[0])
        return pending

    def pending_change(self, clock: BeatClock) -> ev.StateChange | None:
        """The SCHEDULED event of the state change waiting for its start (as it was announced), or None: to
        announce it again when its time moved (a PAUSE stopped the music before it started)."""
        pend = self._pending
        if pend is None:
            return None
        queued = self.pending_state(clock)  # a request queued while paused may withdraw it (its CANCELLED comes)
        if queued is None or queued[0] != pend.target:
            return None
        fade_s = pend.fade.seconds(self._beat(clock, pend.start))
        return ev.StateChange(pend.start, pend.target, pend.source or "", Phase.SCHEDULED, pend.mode, fade_s)

    def heard_at(self, kind: Literal["state", "trigger"], name: str, clock: BeatClock) -> float:
        """When a ``set_state(name)`` (``kind="state"``) or ``trigger(name)`` just made will be heard, in engine
        seconds: the start of its quantized state change, or of a trigger's stinger (else its state change);
        the current time when nothing waits for a beat or bar (a stinger in its cooldown is refused: now)."""
        t = self.time
        target = name
        if kind == "trigger":
            td = self.graph.triggers[name]
            if td.stinger is not None and self.stinger_cooldown(name, clock) is None:
                return self._quantize(self.graph.stingers[td.stinger].quantize, t, clock)
            if td.set_state is None:
                return t
            target = td.set_state
        pending = self.pending_state(clock)
        return pending[1] if pending is not None and pending[0] == target else t

    def stinger_cooldown(self, name: str, clock: BeatClock) -> tuple[str, float] | None:
        """For a ``trigger(name)`` just queued: ``(stinger, seconds of cooldown left)`` when its stinger will be
        refused (its cooldown runs from an earlier play, or from a trigger of it queued ahead), else None."""
        td = self.graph.triggers[name]
        if td.stinger is None:
            return None
        st = self.graph.stingers[td.stinger]
        if st.cooldown <= 0.0:
            return None
        t = self.time
        last = self._stinger_last.get(td.stinger)
        mine = max((it[1] for it in self._queue if it[2] == "trigger" and it[3] == name), default=math.inf)
        ahead = [it for it in self._queue if it[2] == "trigger" and it[1] < mine
                 and self.graph.triggers[str(it[3])].stinger == td.stinger]
        if ahead and (last is None or last + st.cooldown - t <= 1e-9):  # that one plays: the cooldown is its
            last = self._quantize(st.quantize, max(t, min(it[0] for it in ahead)), clock)
        remaining = 0.0 if last is None else last + st.cooldown - t
        return (td.stinger, remaining) if remaining > 1e-9 else None

    def _request_state(self, target: str, t: float, clock: BeatClock, events: list[Event]) -> None:
        pending = self._pending
        if target == (pending.target if pending is not None else self._state):
            return
        if pending is not None:
            events.append(ev.StateCancelled(t, pending.target, pending.source or "", pending.start))
            self._pending = None
            if target == self._state:
                return
        start, fade, mode = self._rule_for(self._state, target, t, clock)
        fade_s = fade.seconds(self._beat(clock, start))
        self._pending = _Pending(self._state, target, start, fade, mode)
        events.append(ev.StateChange(start, target, self._state or "", Phase.SCHEDULED, mode, fade_s))

    def _begin(self, clock: BeatClock, t: float, events: list[Event]) -> None:
        pend = self._pending
        assert pend is not None
        self._pending = None
        w, c = self._current_outputs()
        a = self._active
        if a is not None:
            w, c = _blend_outputs(a.weights, dict(a.controls), w, c, a.progress(t), self._default)
        fade_s = pend.fade.seconds(self._beat(clock, pend.start))
        self._active = _Active(pend.source, pend.target, pend.mode, pend.start, fade_s, tuple(w),
                               tuple(c.items()))
        self._state = pend.target
        events.append(ev.StateChange(pend.start, pend.target, pend.source or "", Phase.STARTED, pend.mode, fade_s))

    # ----------------------------------------------------------- stingers
    def _request_stinger(self, name: str, t: float, clock: BeatClock, events: list[Event]) -> None:
        st = self.graph.stingers[name]
        last = self._stinger_last.get(name)
        if last is not None and st.cooldown > 0.0:
            remaining = last + st.cooldown - t
            if remaining > 1e-9:
                events.append(ev.StingerRefused(t, name, remaining))
                return
        start = self._quantize(st.quantize, t, clock)
        self._stinger_last[name] = start
        self._seq += 1
        heapq.heappush(self._stingers_due, (start, self._seq, name))
        events.append(ev.StingerScheduled(t, name, start))

    def _fire_stinger(self, due: tuple[float, int, str], clock: BeatClock, events: list[Event]) -> None:
        start, _, name = due
        st = self.graph.stingers[name]
        events.append(ev.StingerFired(start, name, st.length.seconds(self._beat(clock, start))))

    # ----------------------------------------------------------- failsafe
    def _engage_failsafe(self, after: float, glide: float, clock: BeatClock, events: list[Event]) -> None:
        te = self._last_input + after
        self._fs_engaged = True
        events.append(ev.Failsafe(te, after, glide))
        for name, ps in self._params.items():
            safe = ps.validate(ps.param.safe_value, where=f"parameters.{name}.safe")[0]
            self._set_param(name, safe, te, glide if ps.kind == "continuous" else None, "linear", False, clock,
                            events)

    # ----------------------------------------------------------- snapshot
    def snapshot(self) -> dict[str, object]:
        """Everything that evolves, as plain comparable values (to compare, log or assert on)."""
        return {
            "time": self.time,
            "ticks": self._n,
            "params": {name: ps.snapshot() for name, ps in self._params.items()},
            "values": dict(self._values),
            "intensity": (self._int_level, self._int_time),
            "queue": sorted(self._queue, key=lambda it: (it[0], it[1])),
            "seq": self._seq,
            "state": self._state,
            "pending": self._pending,
            "active": self._active,
            "stingers_due": sorted(self._stingers_due),
            "stinger_last": dict(self._stinger_last),
            "failsafe": (self._fs_engaged, self._last_input),
            "clamp_reported": sorted(self._clamp_reported),
        }
