"""The style-graph model: frozen dataclasses the loader builds and the engine evaluates.

The file format (YAML; JSON accepted), version 1 — every key below is optional
unless marked *required*::

    cadenza_graph: 1                    # *required*, the format version
    name: action-game
    control_rate: 100                   # Hz, 10–1000
    parameters:                         # name → parameter
      danger:
        type: continuous                # continuous | discrete | labeled   (*required*)
        min: 0                          # continuous/discrete; default 0
        max: 1                          # default 1; must be > min
        default: 0                      # default min (labeled: first label)
        safe: 0                         # failsafe target; default = default
        smoothing: {attack: 0.5, release: 2.0, slew: 0.5}
                                        # seconds to ~99 % of a rise / a fall; slew: max units per second
        filter: {one_euro: {min_cutoff: 1.0, beta: 0.02, d_cutoff: 1.0}}
                                        # or {hysteresis: {low: 0.3, high: 0.7}}  (Schmitt trigger → min/max)
      zone: {type: labeled, labels: [forest, cave], default: forest}
    prompts:                            # name → prompt
      calm: "calm ambient pads"         # text shorthand
      battle: {text: "aggressive drum and bass"}
      rain: {audio: sounds/rain.wav}    # WAV/FLAC, relative to the graph file
    nodes:                              # name → value node, reusable via {node: name}
      threat: {max: [{param: danger}, {param: intensity}]}
    mix:                                # list of mix entries; weights of a prompt add up
      - {prompt: calm, weight: <node>}
      - blend: {input: danger, prompts: [[calm, 0.0], [tense, 0.5], [battle, 1.0]]}
      - pad: {x: pos_x, y: pos_y, mode: idw, power: 2, points: {calm: [0, 0], battle: [1, 1]}}
                                        # mode: idw (inverse distance) | bilinear (points on a grid's corners)
    default_mix: {calm: 1}              # used when every weight is 0; default: every prompt equally
    controls:                           # control → value node
      bpm: {curve: {input: danger, points: [[0, 90], [1, 150]]}}
      scale: {select: zone, cases: {forest: "C major", cave: "A minor"}}
      mute_drums: {when: {param: zone, is: cave}, then: true, else: false}
    states:
      driven_by: mode                   # a labeled parameter whose labels are the states; or set_state only
      initial: explore                  # default: the first state
      list:                             # name → overrides of the global mix / controls (both optional)
        explore: {mix: [...], controls: {...}}
        combat: {}
    transitions:                        # the most specific rule wins: from+to > from+any > any+to > any+any
      - {from: any, to: any, quantize: bar, fade: 1 bar, mode: blend}
      - {from: explore, to: combat, quantize: beat, fade: 2 beats, mode: crossfade}
                                        # quantize: now | beat | bar;  mode: blend | crossfade
    stingers:
      victory: {prompt: fanfare, quantize: bar, length: 2 bars, cooldown: 8, duck: -9, gain: 0}
                                        # or {audio: file}; duck and gain in dB
    intensity: {decay: 0.1, hold: 2.0}  # units per second after ``hold`` seconds without a bump
    triggers:
      enemy_killed: {bump: 0.2}
      boss_defeated: {bump: 0.5, stinger: victory, set_state: explore}
    failsafe: {after: 30, glide: 5}     # seconds without input → parameters glide to their safe values

Durations are seconds (a number, ``"4 s"``, ``"500 ms"``) or musical
(``"2 beats"``, ``"1 bar"``). Value nodes: a literal (number, true/false,
string); ``{param: name}`` (``intensity`` is built in); ``{node: name}``;
``{curve: {input: <param name or node>, points: [[x, y], ...], shape: linear |
s-curve | log | exp | sine | constant}}``; ``{add: [..]}``, ``{multiply: [..]}``,
``{min: [..]}``, ``{max: [..]}``; ``{invert: n}`` (1 − n); ``{clamp: {value: n,
min: a, max: b}}``; ``{when: {param: name, is: label} | {param: name, in:
[labels]}, then: n, else: n}``; ``{select: name, cases: {label: n}, default: n}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

FORMAT_VERSION = 1
BUILTIN_PARAMS = ("intensity",)
CURVE_SHAPES = ("linear", "s-curve", "log", "exp", "sine", "constant")
CONTROL_NAMES = (
    "bpm", "density", "brightness", "scale", "mute_bass", "mute_drums",
    "notes", "drums", "temperature", "top_k", "guidance", "seed",
)
QUANTIZE = ("now", "beat", "bar")
#: seconds before a stinger can play again when the graph gives no ``cooldown`` (a burst of triggers plays it once)
DEFAULT_STINGER_COOLDOWN_S = 0.1
MODES = ("blend", "crossfade")

Scalar = Union[float, bool, str]


# ---------------------------------------------------------------- durations
@dataclass(frozen=True)
class Duration:
    """A length in seconds, beats or bars."""

    value: float
    unit: Literal["s", "beats", "bars"] = "s"

    def seconds(self, beat_seconds: float) -> float:
        if self.unit == "s":
            return self.value
        if self.unit == "beats":
            return self.value * beat_seconds
        return self.value * 4.0 * beat_seconds


# --------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Smoothing:
    attack: float = 0.0  # seconds to ~99 % of a rise
    release: float = 0.0  # seconds to ~99 % of a fall
    slew: float | None = None  # max units per second


@dataclass(frozen=True)
class OneEuro:
    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0


@dataclass(frozen=True)
class Hysteresis:
    low: float
    high: float


@dataclass(frozen=True)
class Parameter:
    name: str
    type: Literal["continuous", "discrete", "labeled"]
    min: float = 0.0
    max: float = 1.0
    default: float | str = 0.0
    safe: float | str | None = None
    labels: tuple[str, ...] = ()
    smoothing: Smoothing = field(default_factory=Smoothing)
    filter: OneEuro | Hysteresis | None = None

    @property
    def safe_value(self) -> float | str:
        return self.default if self.safe is None else self.safe


# ------------------------------------------------------------------ prompts
@dataclass(frozen=True)
class PromptDef:
    name: str
    text: str | None = None
    audio: str | None = None  # path, already resolved against the graph file's folder


# -------------------------------------------------------------- value nodes
@dataclass(frozen=True)
class Const:
    value: Scalar


@dataclass(frozen=True)
class ParamRef:
    name: str


@dataclass(frozen=True)
class NodeRef:
    name: str


@dataclass(frozen=True)
class Curve:
    input: "Node"
    points: tuple[tuple[float, float], ...]
    shape: str = "linear"


@dataclass(frozen=True)
class Op:
    """add | multiply | min | max over ``args``; invert (1 − x) over one arg."""

    op: Literal["add", "multiply", "min", "max", "invert"]
    args: tuple["Node", ...]


@dataclass(frozen=True)
class Clamp:
    value: "Node"
    min: float
    max: float


@dataclass(frozen=True)
class When:
    param: str
    labels: tuple[str, ...]  # true when the labeled parameter is any of these
    then: "Node"
    otherwise: "Node"


@dataclass(frozen=True)
class Select:
    param: str
    cases: tuple[tuple[str, "Node"], ...]
    default: "Node | None" = None


Node = Union[Const, ParamRef, NodeRef, Curve, Op, Clamp, When, Select]


# ---------------------------------------------------------------------- mix
@dataclass(frozen=True)
class Weight:
    prompt: str
    weight: Node


@dataclass(frozen=True)
class Blend:
    """N prompts crossfading along one input: each prompt peaks at its position."""

    input: Node
    stops: tuple[tuple[str, float], ...]  # (prompt, position), positions increasing


@dataclass(frozen=True)
class Pad:
    x: Node
    y: Node
    points: tuple[tuple[str, float, float], ...]  # (prompt, x, y)
    mode: Literal["idw", "bilinear"] = "idw"
    power: float = 2.0


MixEntry = Union[Weight, Blend, Pad]


# ------------------------------------------------------------------ states
@dataclass(frozen=True)
class State:
    name: str
    mix: tuple[MixEntry, ...] | None = None  # None: the global mix
    controls: tuple[tuple[str, Node], ...] | None = None  # overrides of single controls


@dataclass(frozen=True)
class Transition:
    source: str  # a state name or "any"
    target: str  # a state name or "any"
    quantize: Literal["now", "beat", "bar"] = "bar"
    fade: Duration = field(default_factory=lambda: Duration(1.0, "bars"))
    mode: Literal["blend", "crossfade"] = "blend"

    @property
    def specificity(self) -> int:
        return (2 if self.source != "any" else 0) + (1 if self.target != "any" else 0)


@dataclass(frozen=True)
class Stinger:
    name: str
    prompt: str | None = None  # a prompt name of the graph
    audio: str | None = None  # a file, resolved against the graph's folder
    quantize: Literal["now", "beat", "bar"] = "beat"
    length: Duration = field(default_factory=lambda: Duration(2.0, "beats"))
    cooldown: float = DEFAULT_STINGER_COOLDOWN_S
    duck_db: float = -6.0
    gain_db: float = 0.0


@dataclass(frozen=True)
class Intensity:
    decay: float = 0.1  # per second
    hold: float = 1.0  # seconds after a bump before decay starts


@dataclass(frozen=True)
class TriggerDef:
    name: str
    bump: float = 0.0
    stinger: str | None = None
    set_state: str | None = None


@dataclass(frozen=True)
class Failsafe:
    after: float  # seconds without input
    glide: float = 2.0  # seconds to reach the safe values


@dataclass(frozen=True)
class Graph:
    version: int
    name: str
    source: str  # the file it came from ("<memory>" for built graphs)
    control_rate: float
    parameters: dict[str, Parameter]
    prompts: dict[str, PromptDef]
    nodes: dict[str, Node]
    mix: tuple[MixEntry, ...]
    default_mix: dict[str, float]
    controls: dict[str, Node]
    states: dict[str, State]
    states_driven_by: str | None
    initial_state: str | None
    transitions: tuple[Transition, ...]
    stingers: dict[str, Stinger]
    intensity: Intensity
    triggers: dict[str, TriggerDef]
    failsafe: Failsafe | None
    #: the line of each value in the source file, by dotted path ("mix[1].weight"); empty for built graphs
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    #: stinger audio decoded at load (float32 stereo at 48 kHz), by resolved path as in ``Stinger.audio``
    audio: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: audio prompt files' bytes as read at load, by resolved path as in ``PromptDef.audio``: the backend embeds
    #: these and never opens the file again (so a file swapped after the load's checks is never read)
    prompt_audio: Mapping[str, bytes] = field(default_factory=dict, compare=False, repr=False)
