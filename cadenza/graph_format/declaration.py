"""The style-graph file format, declared as data: sections, keys, types, ranges, defaults, words and limits.

One job: say what a style-graph file (version 1) may hold, once. The checker
(:mod:`.check`), the JSON Schema (:mod:`.schema`), the runtime's conversion
into dataclasses (the :attr:`Key.default` of each key) and the SDK's builder
all read these tables:

- :data:`SECTIONS`: every mapping with fixed keys, by name (``graph`` is the
  file itself), each a :class:`Section` of :class:`Key` (type, meaning,
  default or required-hint) with the shape rules a schema can state
  (exactly one of some keys, ``null`` allowed, at least one key, a key
  required when another has a value);
- :data:`VALUE_NODES` (the one-key mappings that compute a value, and
  :data:`INLINE_NODES`, whose key sits beside the others) and
  :data:`MIX_ENTRIES`;
- the words (:data:`CONTROL_NAMES` and :data:`CONTROL_KINDS`,
  :data:`CURVE_SHAPES`, :data:`QUANTIZE`, :data:`MODES`, :data:`PAD_MODES`,
  :data:`PARAMETER_TYPES`), durations (:func:`parse_duration`) and the
  limits (:data:`MAX_PROMPTS`, :data:`MAX_PROMPT_CHARS`).

A value's type is one of the small immutable classes below (:class:`Number`,
:class:`Seconds`, :class:`Length`, :class:`Name`, :class:`Choice`,
:class:`Ref`, :class:`Value`, :class:`AudioFile`, :class:`Sub`,
:class:`MapOf`, :class:`ListOf`, :class:`Point`, :class:`Mix`,
:class:`Either`, :class:`Version`).

Imports only :mod:`cadenza.proto.wire` (the control names are the fields of
the protobuf ``Controls`` message, the curve shapes its ramp shapes) and the
standard library.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, TypeAlias, TypeVar, Union, dataclass_transform

from cadenza.proto.wire import CONTROL_NAMES, DEFAULT_SAMPLE_RATE, RAMP_SHAPE_NAMES

__all__ = [
    "BPM_RANGE",
    "BUILTIN_PARAMS",
    "CONTROL_DOCS",
    "CONTROL_KINDS",
    "CONTROL_NAMES",
    "CURVE_SHAPES",
    "DURATION_HELP",
    "DURATION_DIGITS",
    "DURATION_NUMBER",
    "DURATION_UNITS",
    "EMPTY_GRAPH",
    "FORMAT_VERSION",
    "INLINE_NODES",
    "MAX_MUSICAL_S",
    "MAX_PROMPTS",
    "MAX_PROMPT_CHARS",
    "MIX_ENTRIES",
    "MODES",
    "NO_DEFAULT",
    "PAD_MODES",
    "PARAMETER_TYPES",
    "QUANTIZE",
    "SAMPLE_RATE",
    "SLOWEST_BEAT_S",
    "SECTIONS",
    "STATE_ANY",
    "VALUE_NODES",
    "WANT_TEXT",
    "AudioFile",
    "Choice",
    "Either",
    "Key",
    "Length",
    "ListOf",
    "MapOf",
    "Mix",
    "Name",
    "Number",
    "Point",
    "Ref",
    "Seconds",
    "Section",
    "Sub",
    "Type",
    "Value",
    "Version",
    "Want",
    "choices",
    "fmt",
    "join",
    "parse_duration",
    "record",
    "undecodable",
]

FORMAT_VERSION = 1
BUILTIN_PARAMS = ("intensity",)
STATE_ANY = "any"  # in transitions: every state
PARAMETER_TYPES = ("continuous", "discrete", "labeled")
#: the curve shapes: the names of the protobuf ramp shapes (a parameter ramp and a graph curve shape alike)
CURVE_SHAPES: tuple[str, ...] = tuple(dict.fromkeys(RAMP_SHAPE_NAMES.values()))
QUANTIZE = ("now", "beat", "bar")
MODES = ("blend", "crossfade")
PAD_MODES = ("idw", "bilinear")
#: Prompts in one mix: a graph's ``prompts`` (the runtime's SetPrompts uses the same number).
MAX_PROMPTS = 64
#: Characters in one text prompt.
MAX_PROMPT_CHARS = 1_000
#: The tempo every backend plays (bpm); the slowest beat sets the longest musical duration.
BPM_RANGE = (40.0, 240.0)
SLOWEST_BEAT_S = 60.0 / BPM_RANGE[0]
#: The longest duration (stinger length, transition fade) at the slowest tempo: an hour is beyond any real one.
MAX_MUSICAL_S = 3600.0
#: Samples per second of the audio: ``control_rate`` must divide it into whole control blocks.
SAMPLE_RATE = DEFAULT_SAMPLE_RATE

#: What a place takes: a number, a switch (true/false or a number), a text, or any literal — or a value node.
Want: TypeAlias = Literal["number", "switch", "text", "any"]
WANT_TEXT: Mapping[Want, str] = MappingProxyType({
    "number": "a number or a value node",
    "switch": "true/false (or a number) or a value node",
    "text": "a text (such as 'C major') or a value node",
    "any": "a value or a value node",
})

#: Each control's kind and meaning; the names and their order are the protobuf ``Controls`` message's.
_CONTROLS: dict[str, tuple[Want, str]] = {
    "bpm": ("number", "Tempo in beats per minute (40–240)."),
    "density": ("number", "Note and hit density, 0–1."),
    "brightness": ("number", "Timbral brightness, 0–1."),
    "scale": ("text", "Key and mode, such as 'A minor' or 'F# dorian'."),
    "mute_bass": ("switch", "Silence the bass (true/false, or a number: above 0.5 is on)."),
    "mute_drums": ("switch", "Silence the drums (true/false, or a number: above 0.5 is on)."),
    "temperature": ("number", "Sampling temperature of the model, > 0."),
    "top_k": ("number", "Top-k sampling of the model, an integer >= 1."),
    "guidance": ("number", "Classifier-free guidance of the model, >= 0."),
    "seed": ("number", "Random seed of the model, an integer >= 0."),
    "notes": ("any", "The notes or chords to play."),
    "drums": ("switch", "Drums only (true/false)."),
}
assert set(_CONTROLS) == set(CONTROL_NAMES), "every control of pb.Controls needs a kind here, and no other"
CONTROL_KINDS: Mapping[str, Want] = MappingProxyType({n: _CONTROLS[n][0] for n in CONTROL_NAMES})
CONTROL_DOCS: Mapping[str, str] = MappingProxyType({n: _CONTROLS[n][1] for n in CONTROL_NAMES})

# ------------------------------------------------------------------ durations
#: unit as written → (unit of the value, scale)
DURATION_UNITS: Mapping[str, tuple[Literal["s", "beats", "bars"], float]] = MappingProxyType({
    "s": ("s", 1.0), "sec": ("s", 1.0), "secs": ("s", 1.0), "second": ("s", 1.0), "seconds": ("s", 1.0),
    "ms": ("s", 0.001), "beat": ("beats", 1.0), "beats": ("beats", 1.0), "bar": ("bars", 1.0), "bars": ("bars", 1.0),
})
#: a duration's number without its sign (the schema's pattern takes ``+`` only) and with it (the parser)
DURATION_DIGITS = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
DURATION_NUMBER = rf"[-+]?{DURATION_DIGITS}"
_DURATION_RE = re.compile(rf"\s*({DURATION_NUMBER})\s*([A-Za-z]*)\s*")
DURATION_HELP = "seconds (4, '4 s', '500 ms') or musical time ('2 beats', '1 bar')"


def parse_duration(text: str) -> tuple[float, Literal["s", "beats", "bars"]]:
    """``"2 beats"`` → ``(2.0, "beats")``; ``"500 ms"`` → ``(0.5, "s")``; ``"3"`` → ``(3.0, "s")``.

    Raises :class:`ValueError` with the reason when the text is not a duration or is negative.
    """
    m = _DURATION_RE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration: write {DURATION_HELP}")
    number, unit = float(m.group(1)), m.group(2).lower()
    if unit and unit not in DURATION_UNITS:
        raise ValueError(f"unknown unit {m.group(2)!r} in {text!r}{choices(unit, ('s', 'ms', 'beats', 'bars'))}")
    kind, scale = DURATION_UNITS[unit] if unit else ("s", 1.0)
    value = number * scale
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite duration")
    if value < 0:
        raise ValueError(f"a duration cannot be negative, got {text!r}")
    return value, kind


# ----------------------------------------------------------- the file as text
#: What a file without a graph is told (the runtime's reader and the SDK's load_graph alike).
EMPTY_GRAPH = f"the file is empty: a style graph starts with 'cadenza_graph: {FORMAT_VERSION}'"


def undecodable(data: bytes) -> tuple[int, str] | None:
    """(line, message) when ``data`` is not UTF-8 text (a byte-order mark is fine); None when it is."""
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return (data[: exc.start].count(b"\n") + 1,
                f"not UTF-8 text (byte 0x{data[exc.start]:02x}): a style graph is a YAML or JSON text file saved "
                "as UTF-8")
    return None


# ---------------------------------------------------------------------- types
_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def record(cls: type[_T]) -> type[_T]:
    """Every table entry and issue: a small immutable dataclass with slots."""
    return dataclass(frozen=True, slots=True)(cls)


@record
class Number:
    """A finite number in [lo, hi], above ``above``; ``what``/``why`` word the message."""

    lo: float | None = None
    hi: float | None = None
    above: float | None = None
    what: str = "a number"
    why: str = ""


@record
class Version:
    """The format version, :data:`FORMAT_VERSION`: a whole number."""


@record
class Seconds:
    """Seconds ≥ 0 (> 0 when ``positive``): a number, ``"4 s"`` or ``"500 ms"``."""

    positive: bool = False


@record
class Length:
    """A duration: seconds or musical time (``"2 beats"``, ``"1 bar"``); above 0 when ``positive``; at most
    :data:`MAX_MUSICAL_S` at the slowest tempo."""

    positive: bool = False


@record
class Name:
    """A name or text as written (``no`` and ``1`` stay text), non-empty; at most ``max_chars`` characters."""

    what: str = "a name"
    max_chars: int | None = None


@record
class Choice:
    """One of ``options``; ``what`` names the word in messages ("unknown quantize 'x'")."""

    options: tuple[str, ...]
    what: str


@record
class Ref:
    """The name of something defined in the file: a parameter, prompt, node, state or stinger."""

    kind: Literal["parameter", "prompt", "node", "state", "stinger"]


@record
class Value:
    """A value node (see :data:`VALUE_NODES`) or a literal of the kind ``want``.

    ``input``: a bare name means a parameter (or a named node), as in ``input: danger``.
    """

    want: Want
    input: bool = False


@record
class AudioFile:
    """The path of a WAV or FLAC file, relative to the graph file (the runtime reads and decodes it)."""


@record
class Sub:
    """A mapping declared in :data:`SECTIONS` under ``section``."""

    section: str


@record
class MapOf:
    """A mapping of names to values of one type; ``what`` names the entries."""

    value: Type
    what: str
    min_items: int = 0
    max_items: int | None = None


@record
class ListOf:
    """A list of values of one type; ``what`` names the items."""

    item: Type
    what: str
    min_items: int = 0


@record
class Point:
    """``[x, y]``; ``first``: the type of the first item when it is not a number (a blend stop's prompt)."""

    first: Type | None = None


@record
class Mix:
    """A list of mix entries (see :data:`MIX_ENTRIES`)."""


@record
class Either:
    """One of several shapes (for the schema; the checker has a rule for each place that uses one)."""

    options: tuple[Type, ...]
    doc: str = ""


Type = Union[Version, Number, Seconds, Length, Name, Choice, Ref, Value, AudioFile, Sub, MapOf, ListOf, Point, Mix,
             Either]


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@record
class Key:
    """One key of a section: its type, what it means, its default (plain data) or its required-hint."""

    type: Type
    doc: str = ""
    default: Any = NO_DEFAULT
    required: str | None = None  # None: optional; else the hint of "missing required key"


@record
class Section:
    """A mapping with fixed keys; ``what`` words "expected {what} with keys …".

    ``one_of``: exactly one of these keys; ``nullable``: ``null`` stands for
    the defaults; ``min_keys``: at least this many keys; ``requires``: ``(key,
    value, other)`` — when ``key`` is ``value``, ``other`` is required.
    """

    keys: Mapping[str, Key]
    what: str = ""
    doc: str = ""
    one_of: tuple[str, ...] = ()
    nullable: bool = False
    min_keys: int = 0
    requires: tuple[tuple[str, str, str], ...] = ()

    @property
    def required(self) -> dict[str, str]:
        return {k: key.required for k, key in self.keys.items() if key.required is not None}


def _section(what: str, doc: str, *, one_of: tuple[str, ...] = (), nullable: bool = False, min_keys: int = 0,
             requires: tuple[tuple[str, str, str], ...] = (), **keys: Any) -> Section:
    """A :class:`Section`; keys in the order given (``**{"is": ..}`` for a Python keyword)."""
    return Section(MappingProxyType(keys), what, doc, one_of, nullable, min_keys, requires)


def _named(keys: dict[str, Key]) -> dict[str, Any]:
    """Keys whose names are Python keywords (is, in, else, from), for ``**`` into :func:`_section`."""
    return keys


_NAME = Name()
_NUMBER = Number()
_WEIGHT = Number(lo=0.0, what="a weight >= 0")
_TIME = "a parameter name or a value node"

#: Every mapping with fixed keys the format has, by name (``graph``: the file).
_PROMPT_TEXT = Name("the prompt's text", MAX_PROMPT_CHARS)
SECTIONS: Mapping[str, Section] = MappingProxyType({
    "graph": Section(MappingProxyType({
        "cadenza_graph": Key(Version(), "The format version.",
                             required=f"the format version: add 'cadenza_graph: {FORMAT_VERSION}' at the top"),
        "name": Key(Name("a name for the graph"), "The graph's name (default: the file name)."),
        "control_rate": Key(Number(lo=10, hi=1000, why="updates per second"),
                            "Evaluations per second (default 100).", 100.0),
        "parameters": Key(MapOf(Sub("parameter"), "parameters"), "name: parameter."),
        "prompts": Key(MapOf(Either((_PROMPT_TEXT, Sub("prompt"))), "prompts", 1, MAX_PROMPTS), "name: prompt.",
                       required='a graph plays its prompts: add prompts: {calm: "calm ambient pads"}'),
        "nodes": Key(MapOf(Value("any"), "value nodes"), "name: value node, reusable with {node: name}."),
        "mix": Key(Mix(), "Prompt weights; the weights of a prompt add up.", ()),
        "default_mix": Key(MapOf(_WEIGHT, "prompt: weight"),
                           "prompt: weight, used when every weight is 0 (default: all equal)."),
        "controls": Key(Sub("controls"), "Musical controls as values of the parameters."),
        "states": Key(Sub("states"), "Named states of the music."),
        "transitions": Key(ListOf(Sub("transition"), "transitions"), "How a change of state sounds.", ()),
        "stingers": Key(MapOf(Sub("stinger"), "stingers"), "name: stinger."),
        "intensity": Key(Sub("intensity"), "The built-in intensity parameter, raised by triggers' bumps."),
        "triggers": Key(MapOf(Sub("trigger"), "triggers"), "name: trigger."),
        "failsafe": Key(Sub("failsafe"), "What happens when input stops."),
        "$schema": Key(Name("the schema's address"), "The address of this schema, for editors."),
    }), "a style graph: a mapping", f"A Cadenza style graph, format version {FORMAT_VERSION}: how parameters of "
                                     "a game or installation become prompt weights and musical controls."),
    "parameter": _section(
        "a parameter: a mapping", "A game or sensor value the graph reads.", requires=(("type", "labeled", "labels"),),
        type=Key(Choice(PARAMETER_TYPES, "parameter type"), "continuous: any number in min–max; discrete: whole "
                 "numbers in min–max; labeled: one of the labels.", required=" | ".join(PARAMETER_TYPES)),
        min=Key(_NUMBER, "Lowest value (continuous and discrete; default 0).", 0.0),
        max=Key(_NUMBER, "Highest value, above min (continuous and discrete; default 1).", 1.0),
        default=Key(Either((_NUMBER, _NAME)), "Starting value: a number in min–max (default min), or a label "
                    "(default the first)."),
        safe=Key(Either((_NUMBER, _NAME)), "Where the failsafe glides to when input stops (default: the default)."),
        labels=Key(ListOf(Name("a label"), "labels", 1), "The values of a labeled parameter."),
        smoothing=Key(Sub("smoothing"), "How fast the parameter follows its input."),
        filter=Key(Sub("filter"), "A sensor filter: One Euro (adaptive low-pass) or hysteresis (a Schmitt trigger)."),
    ),
    "smoothing": _section(
        "smoothing: a mapping", "How fast the parameter follows its input.",
        attack=Key(Seconds(), "Seconds to reach ~99 % of a rise.", 0.0),
        release=Key(Seconds(), "Seconds to reach ~99 % of a fall.", 0.0),
        slew=Key(Number(above=0.0, why="the most units per second"), "The most units per second the value may "
                 "move.", None),
    ),
    "filter": _section(
        "a filter: a mapping", "A sensor filter: One Euro (adaptive low-pass) or hysteresis (a Schmitt trigger); "
                               "give one.", one_of=("one_euro", "hysteresis"),
        one_euro=Key(Sub("one_euro"), "One Euro filter: smooth when slow, responsive when fast."),
        hysteresis=Key(Sub("hysteresis"), "Schmitt trigger: the value is min or max."),
    ),
    "one_euro": _section(
        "one_euro: a mapping", "One Euro filter parameters (null: the defaults).", nullable=True,
        min_cutoff=Key(Number(above=0.0, why="Hz"), "Cutoff in Hz at rest (default 1).", 1.0),
        beta=Key(Number(lo=0.0), "How much the cutoff rises with speed (default 0).", 0.0),
        d_cutoff=Key(Number(above=0.0, why="Hz"), "Cutoff in Hz of the speed estimate (default 1).", 1.0),
    ),
    "hysteresis": _section(
        "hysteresis: a mapping", "Thresholds of a Schmitt trigger.",
        low=Key(_NUMBER, "Falling below this snaps the value to min.", required=""),
        high=Key(_NUMBER, "Rising above this snaps the value to max; above low.", required=""),
    ),
    "prompt": _section(
        "a prompt: a text, or a mapping", "A text prompt (a text, or {text: ..}) or an audio prompt "
                                          "({audio: file}); give one of the keys.", one_of=("text", "audio"),
        text=Key(_PROMPT_TEXT, "What the music is, in words."),
        audio=Key(AudioFile(), "A WAV or FLAC file, relative to the graph file."),
    ),
    "controls": Section(MappingProxyType({n: Key(Value(CONTROL_KINDS[n]), CONTROL_DOCS[n]) for n in CONTROL_NAMES}),
                        "control: value", "Musical controls as values of the parameters."),
    # ------------------------------------------------------------ value node bodies
    "curve": _section(
        "a curve: a mapping", "A curve through points.",
        input=Key(Value("number", input=True), "A parameter name or a value node.", required=_TIME),
        points=Key(ListOf(Point(), "[x, y] points", 2), "[[x, y], ...] with x increasing; flat beyond the ends.",
                   required="[[x, y], ...]"),
        shape=Key(Choice(CURVE_SHAPES, "curve shape"), "How it goes between points (default linear).", "linear"),
    ),
    "clamp": _section(
        "a clamp: a mapping", "The value held within min–max.",
        value=Key(Value("number", input=True), "The value to hold.", required="the value node to clamp"),
        min=Key(_NUMBER, "Lowest (default 0).", 0.0),
        max=Key(_NUMBER, "Highest, above min (default 1).", 1.0),
    ),
    "when": _section(
        "", "One value or another, by a labeled parameter.",
        when=Key(Sub("condition"), "A labeled parameter is one label (is) or any of several (in).", required=""),
        then=Key(Value("any"), "The value when true.", required="the value when true"),
        **_named({"else": Key(Value("any"), "The value when false.", required="the value when false")}),
    ),
    "condition": _section(
        "a condition: a mapping", "A labeled parameter is one label (is) or any of several (in): give one.",
        one_of=("is", "in"),
        param=Key(Ref("parameter"), "A labeled parameter.", required="a labeled parameter"),
        **_named({"is": Key(_NAME, "The label."), "in": Key(ListOf(_NAME, "labels", 1), "Any of these labels.")}),
    ),
    "select": _section(
        "", "A value per label of a labeled parameter.",
        select=Key(Ref("parameter"), "A labeled parameter.", required=""),
        cases=Key(MapOf(Value("any"), "cases (label: value)", 1), "label: value.",
                  required="label: value, for the labels of the parameter"),
        default=Key(Value("any"), "For the labels without a case."),
    ),
    # -------------------------------------------------------------------- mix
    "weight": _section(
        "", "One prompt's weight.",
        prompt=Key(Ref("prompt"), "A prompt of the graph.", required=""),
        weight=Key(Value("number"), "How much of the prompt (default 1).", 1.0),
    ),
    "blend": _section(
        "a blend: a mapping", "Prompts crossfading along one input.",
        input=Key(Value("number", input=True), "A parameter name or a value node.", required=_TIME),
        prompts=Key(ListOf(Point(Ref("prompt")), "[prompt, position] stops", 2),
                    "[[prompt, position], ...], positions increasing; each prompt peaks at its own.",
                    required="[[prompt, position], ...]"),
    ),
    "pad": _section(
        "a pad: a mapping", "Prompts placed on a 2-D pad.",
        x=Key(Value("number", input=True), "A parameter name or a value node.", required=_TIME),
        y=Key(Value("number", input=True), "A parameter name or a value node.", required="the same, for y"),
        mode=Key(Choice(PAD_MODES, "pad mode"), "idw: inverse-distance weighting of points anywhere; bilinear: "
                 "points on a grid's corners (default idw).", "idw"),
        power=Key(Number(above=0.0), "Inverse-distance power (default 2).", 2.0),
        points=Key(MapOf(Point(), "prompt: [x, y] points", 2), "prompt: [x, y].", required="prompt: [x, y]"),
    ),
    # ------------------------------------------------------ states and events
    "states": _section(
        "states: a mapping", "Named states of the music.",
        driven_by=Key(Ref("parameter"), "A labeled parameter whose labels are the states."),
        initial=Key(Ref("state"), "The first state (default: the first listed)."),
        list=Key(MapOf(Sub("state"), "states", 1), "name: overrides of the global mix and controls.",
                 required="state name: {mix: [..], controls: {..}}"),
    ),
    "state": _section(
        "a state: a mapping", "Overrides of the global mix and controls in one state (null: none).", nullable=True,
        mix=Key(Mix(), "Replaces the global mix in this state."),
        controls=Key(Sub("controls"), "Overrides single controls in this state."),
    ),
    "transition": _section(
        "a transition: a mapping", "How a change of state sounds; the most specific rule wins.",
        **_named({"from": Key(Name("a state name or 'any'"), "A state, or 'any' (default).", STATE_ANY)}),
        to=Key(Name("a state name or 'any'"), "A state, or 'any' (default).", STATE_ANY),
        quantize=Key(Choice(QUANTIZE, "quantize"), "When it starts: now, on the next beat or bar (default bar).",
                     "bar"),
        fade=Key(Length(), "Default 1 bar.", "1 bar"),
        mode=Key(Choice(MODES, "transition mode"), "blend: the same stream glides; crossfade: a second deck starts "
                 "the new style (default blend).", "blend"),
    ),
    "stinger": _section(
        "a stinger: a mapping", "A one-shot over the music: a prompt or an audio file, one of them.",
        one_of=("prompt", "audio"),
        prompt=Key(Ref("prompt"), "A prompt of the graph."),
        audio=Key(AudioFile(), "A WAV or FLAC file."),
        quantize=Key(Choice(QUANTIZE, "quantize"), "When it starts: now, on the next beat or bar (default beat).",
                     "beat"),
        length=Key(Length(positive=True), "Default 2 beats.", "2 beats"),
        cooldown=Key(Seconds(), "Seconds before it can play again (a burst of triggers plays it once).", 0.1),
        duck=Key(Number(hi=0.0, why="dB taken off the music while it plays"),
                 "dB taken off the music while it plays (default -6).", -6.0),
        gain=Key(Number(lo=-120.0, hi=24.0, what="a gain in dB", why="dB"), "dB of the stinger itself (default 0).",
                 0.0),
    ),
    "intensity": _section(
        "intensity: a mapping", "The built-in intensity parameter, raised by triggers' bumps.",
        decay=Key(Number(lo=0.0, why="units per second"), "Units per second it falls after hold (default 0.1).", 0.1),
        hold=Key(Seconds(), "Seconds after a bump before it decays (default 1).", 1.0),
    ),
    "trigger": _section(
        "a trigger: a mapping", "What a game event does: give one or more of the keys.", min_keys=1,
        bump=Key(Number(lo=-1.0, hi=1.0, why="added to intensity, 0–1"), "Added to intensity.", 0.0),
        stinger=Key(Ref("stinger"), "A stinger to play."),
        set_state=Key(Ref("state"), "A state to go to."),
    ),
    "failsafe": _section(
        "failsafe: a mapping", "What happens when input stops.",
        after=Key(Seconds(positive=True), "Seconds without input before the glide.",
                  required="seconds without input before the glide"),
        glide=Key(Seconds(), "Seconds to reach the safe values (default 2).", 2.0),
    ),
})
#: The value nodes: a mapping with one of these keys (``when`` and ``select`` sit beside their other keys).
VALUE_NODES: Mapping[str, tuple[Type, str]] = MappingProxyType({
    "param": (Ref("parameter"), "The value of a parameter ('intensity' is built in)."),
    "node": (Ref("node"), "The value of a node defined under nodes."),
    "curve": (Sub("curve"), "A curve through points."),
    "add": (ListOf(Value("number", input=True), "values", 1), "The sum."),
    "multiply": (ListOf(Value("number", input=True), "values", 1), "The product."),
    "min": (ListOf(Value("number", input=True), "values", 1), "The smallest."),
    "max": (ListOf(Value("number", input=True), "values", 1), "The largest."),
    "invert": (Value("number", input=True), "1 minus the value."),
    "clamp": (Sub("clamp"), "The value held within min–max."),
    "when": (Sub("when"), "One value or another, by a labeled parameter."),
    "select": (Sub("select"), "A value per label of a labeled parameter."),
})
#: Value nodes whose key sits beside their other keys (``{when: .., then: .., else: ..}``): the section is the node.
INLINE_NODES = ("when", "select")
#: The mix entries: ``{prompt: name, weight: ..}``, ``{blend: {..}}``, ``{pad: {..}}``.
MIX_ENTRIES: Mapping[str, str] = MappingProxyType({"prompt": "weight", "blend": "blend", "pad": "pad"})


# ------------------------------------------------------------ words in messages
def choices(word: str, options: Iterable[str], label: str = "valid", *, suggest: bool = True) -> str:
    """`` (did you mean 'attack'? valid: attack, release, slew)``."""
    listed = list(options)
    if not listed:
        return " (none are defined)"
    suggest = suggest and len(listed) <= 2_000  # difflib is O(len) per call: bounded for huge files of typos
    close = difflib.get_close_matches(word, listed, n=1, cutoff=0.6) if suggest else []
    shown = ", ".join(listed[:20]) + (f", … ({len(listed)} in all)" if len(listed) > 20 else "")
    return f" ({f'did you mean {close[0]!r}? ' if close else ''}{label}: {shown})"


def fmt(x: float) -> str:
    return f"{x:g}"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
