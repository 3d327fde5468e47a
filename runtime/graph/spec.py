"""The style-graph model: frozen dataclasses the loader builds and the engine evaluates.

The file format itself (sections, keys, types, ranges, defaults, the words
such as curve shapes and control names) is declared once, in
:mod:`cadenza.graph_format`; its JSON Schema is generated from there
(``cadenza graph schema``). This module is what a checked file becomes: one
dataclass per part of the format, with the same names — a parameter, a
prompt, the value nodes (:data:`Node`), the mix entries (:data:`MixEntry`),
states, transitions, stingers, triggers, the failsafe — gathered in
:class:`Graph`. Durations keep their unit (:class:`Duration`): seconds, beats
or bars, turned into seconds at the tempo of the moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from cadenza.graph_format import BUILTIN_PARAMS, CONTROL_NAMES, CURVE_SHAPES, FORMAT_VERSION, MODES, QUANTIZE, SECTIONS

# the format's words, re-exported for the runtime's modules: defined once in cadenza.graph_format
_WORDS = (BUILTIN_PARAMS, CONTROL_NAMES, CURVE_SHAPES, FORMAT_VERSION, MODES, QUANTIZE)

#: seconds before a stinger can play again when the graph gives no ``cooldown`` (a burst of triggers plays it once)
DEFAULT_STINGER_COOLDOWN_S: float = SECTIONS["stinger"].keys["cooldown"].default

Scalar = Union[float, bool, str]


# ---------------------------------------------------------------- durations
@dataclass(frozen=True, slots=True)
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
@dataclass(frozen=True, slots=True)
class Smoothing:
    attack: float = 0.0  # seconds to ~99 % of a rise
    release: float = 0.0  # seconds to ~99 % of a fall
    slew: float | None = None  # max units per second


@dataclass(frozen=True, slots=True)
class OneEuro:
    min_cutoff: float = 1.0
    beta: float = 0.0
    d_cutoff: float = 1.0


@dataclass(frozen=True, slots=True)
class Hysteresis:
    low: float
    high: float


@dataclass(frozen=True, slots=True)
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
@dataclass(frozen=True, slots=True)
class PromptDef:
    name: str
    text: str | None = None
    audio: str | None = None  # path, already resolved against the graph file's folder


# -------------------------------------------------------------- value nodes
@dataclass(frozen=True, slots=True)
class Const:
    value: Scalar


@dataclass(frozen=True, slots=True)
class ParamRef:
    name: str


@dataclass(frozen=True, slots=True)
class NodeRef:
    name: str


@dataclass(frozen=True, slots=True)
class Curve:
    input: "Node"
    points: tuple[tuple[float, float], ...]
    shape: str = "linear"


@dataclass(frozen=True, slots=True)
class Op:
    """add | multiply | min | max over ``args``; invert (1 − x) over one arg."""

    op: Literal["add", "multiply", "min", "max", "invert"]
    args: tuple["Node", ...]


@dataclass(frozen=True, slots=True)
class Clamp:
    value: "Node"
    min: float
    max: float


@dataclass(frozen=True, slots=True)
class When:
    param: str
    labels: tuple[str, ...]  # true when the labeled parameter is any of these
    then: "Node"
    otherwise: "Node"


@dataclass(frozen=True, slots=True)
class Select:
    param: str
    cases: tuple[tuple[str, "Node"], ...]
    default: "Node | None" = None


Node = Union[Const, ParamRef, NodeRef, Curve, Op, Clamp, When, Select]


# ---------------------------------------------------------------------- mix
@dataclass(frozen=True, slots=True)
class Weight:
    prompt: str
    weight: Node


@dataclass(frozen=True, slots=True)
class Blend:
    """N prompts crossfading along one input: each prompt peaks at its position."""

    input: Node
    stops: tuple[tuple[str, float], ...]  # (prompt, position), positions increasing


@dataclass(frozen=True, slots=True)
class Pad:
    x: Node
    y: Node
    points: tuple[tuple[str, float, float], ...]  # (prompt, x, y)
    mode: Literal["idw", "bilinear"] = "idw"
    power: float = 2.0


MixEntry = Union[Weight, Blend, Pad]


# ------------------------------------------------------------------ states
@dataclass(frozen=True, slots=True)
class State:
    name: str
    mix: tuple[MixEntry, ...] | None = None  # None: the global mix
    controls: tuple[tuple[str, Node], ...] | None = None  # overrides of single controls


@dataclass(frozen=True, slots=True)
class Transition:
    source: str  # a state name or "any"
    target: str  # a state name or "any"
    quantize: Literal["now", "beat", "bar"] = "bar"
    fade: Duration = field(default_factory=lambda: Duration(1.0, "bars"))
    mode: Literal["blend", "crossfade"] = "blend"

    @property
    def specificity(self) -> int:
        return (2 if self.source != "any" else 0) + (1 if self.target != "any" else 0)


@dataclass(frozen=True, slots=True)
class Stinger:
    name: str
    prompt: str | None = None  # a prompt name of the graph
    audio: str | None = None  # a file, resolved against the graph's folder
    quantize: Literal["now", "beat", "bar"] = "beat"
    length: Duration = field(default_factory=lambda: Duration(2.0, "beats"))
    cooldown: float = DEFAULT_STINGER_COOLDOWN_S
    duck_db: float = -6.0
    gain_db: float = 0.0


@dataclass(frozen=True, slots=True)
class Intensity:
    decay: float = 0.1  # per second
    hold: float = 1.0  # seconds after a bump before decay starts


@dataclass(frozen=True, slots=True)
class TriggerDef:
    name: str
    bump: float = 0.0
    stinger: str | None = None
    set_state: str | None = None


@dataclass(frozen=True, slots=True)
class Failsafe:
    after: float  # seconds without input
    glide: float = 2.0  # seconds to reach the safe values


@dataclass(frozen=True, slots=True)
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
