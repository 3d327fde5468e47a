"""Author style graphs in Python: build a graph with checked references, export it as YAML or JSON.

A :class:`GraphBuilder` writes the style-graph file format (version 1, declared
once in :mod:`cadenza.graph_format`), so a graph built here loads in the
runtime like a hand-written file. Each declaration returns a handle
(:class:`Param`, :class:`PromptRef`, :class:`NodeRef`, :class:`StateRef`,
:class:`StingerRef`, :class:`TriggerRef`) and later declarations take those
handles, so a misspelt or undeclared name fails where it is written::

    from cadenza.sdk.graph import INTENSITY, GraphBuilder, weight

    g = GraphBuilder("action-game")
    danger = g.continuous("danger", attack=0.8, release=3.0)
    mode = g.labeled("mode", ["explore", "combat"])
    calm = g.prompt("calm", "calm ambient pads")
    battle = g.prompt("battle", "aggressive drum and bass")
    g.weight(calm, danger.curve([(0, 1), (1, 0)], shape="s-curve"))
    g.control("bpm", danger.curve([(0, 90), (1, 150)]))
    g.states_driven_by(mode)
    g.state("explore")
    g.state("combat", mix=[weight(battle, 1)], controls={"bpm": 172})
    g.transition(target="combat", quantize="beat", fade="2 beats", mode="crossfade")
    g.save("action.yaml")

Value expressions are small immutable objects (:class:`Expr`): a parameter
handle, :func:`curve`, :func:`add`, :func:`multiply`, :func:`minimum`,
:func:`maximum`, :func:`invert`, :func:`clamp`, :func:`when` and
:meth:`Param.select`. ``+``, ``-``, ``*``, unary ``-`` and ``/`` by a number
build arithmetic (``1 - x`` is ``{invert: x}``). Python numbers, ``True``/
``False`` and strings are literals; a string is a value only where the format
takes a text (the ``scale`` control, a branch of :func:`when` there), never a
parameter name — pass the handle.

How it checks: the builder knows no rule of the format itself. Every call
writes its part of the file as plain data and runs the format's one validator,
:func:`cadenza.graph_format.validate` (the runtime's loader runs the same),
over the graph so far; a problem under the part just written raises
:class:`~cadenza.errors.GraphError` with the validator's message (the bad value
and the fix, said in Python where the file's form differs) and its place in the
file (``where``: ``mix[1].weight``), and the call changes nothing. An expression or mix entry made outside a builder is
checked the same way, in a graph of its own that declares just what it names.
The builder adds only what Python can get wrong and a file cannot: a string
where a handle belongs, a handle of another graph, a condition used as a value,
a one-time setting given twice, declaring before use.

The values live in :mod:`cadenza.sdk._graph_values`, the YAML writer in
:mod:`cadenza.sdk._graph_yaml`; import them from here. This module imports no
part of ``cadenza.runtime`` (nor numba, sounddevice or jax): only PyYAML, the
format declaration and the shared errors.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from cadenza.errors import GraphError, UsageError
from cadenza.graph_format import (
    BUILTIN_PARAMS,
    CONTROL_KINDS,
    CONTROL_NAMES,
    CURVE_SHAPES,
    FORMAT_VERSION,
    MODES,
    PAD_MODES,
    QUANTIZE,
    SECTIONS,
    choices,
    parse_duration,
)
from cadenza.sdk._graph_values import (  # the values, re-exported here
    INTENSITY, Blend, Clamp, Condition, Curve, Duration, Expr, MixEntry, NodeRef, Op, Pad, Param, PromptLike,
    PromptRef, Select, StateLike, StateRef, StingerLike, StingerRef, TriggerRef, Value, Weight, When, _Data,
    _describe, _fail, _first, _name_of, _plain, _refs, _value_type, _within, add, blend, clamp, curve, invert,
    maximum, minimum, multiply, pad, weight, when,
)
from cadenza.sdk._graph_yaml import dump_yaml

__all__ = [
    "FORMAT_VERSION", "CURVE_SHAPES", "CONTROL_NAMES", "CONTROL_KINDS", "QUANTIZE", "MODES", "PAD_MODES", "INTENSITY",
    "Value", "Expr", "Param", "NodeRef", "Curve", "Op", "Clamp", "Condition", "When", "Select", "MixEntry", "Weight",
    "Blend", "Pad", "PromptRef", "StateRef", "StingerRef", "TriggerRef", "GraphBuilder", "curve", "add", "multiply",
    "minimum", "maximum", "invert", "clamp", "when", "weight", "blend", "pad",
]


def _duration(value: object) -> object:
    """A duration in one spelling: ``" 250MS "`` → ``"250 ms"``, ``"3"`` → ``3.0``; one the format refuses stays as
    given, for the validator to name."""
    if not isinstance(value, str):
        return value
    try:
        parse_duration(value)
    except ValueError:
        return value
    m = re.fullmatch(r"(.*?)\s*([A-Za-z]*)", value.strip(), re.DOTALL)  # the number as written, then its unit
    assert m is not None  # it matches any text
    number, unit = m.groups()
    return f"{number} {unit.lower()}" if unit else float(number)


def _default(section: str, key: str) -> Any:
    """The format's default for ``key`` of ``section``: a builder's defaults are the declaration's."""
    return SECTIONS[section].keys[key].default


# ---------------------------------------------------------------------- builder
class GraphBuilder:
    """Builds a style graph in code and exports it in the file format (version 1).

    Declare before use: parameters, prompts, nodes, states and stingers return
    handles that later calls take, and every call checks its part at once,
    raising :class:`~cadenza.errors.GraphError` with the bad value, its place
    in the file (``where``) and the fix. Export with :meth:`to_dict`,
    :meth:`to_yaml`, :meth:`to_json` or :meth:`save`.

    ``control_rate`` is how often the graph is evaluated, in Hz (10–1000).
    """

    def __init__(self, name: str, control_rate: float = _default("graph", "control_rate")) -> None:
        if not isinstance(name, str):
            _fail(f"expected a name for the graph (a non-empty text), got {_describe(name)}", "name")
        self._name = name
        self._doc: dict[str, Any] = {"cadenza_graph": FORMAT_VERSION, "name": name,
                                     "control_rate": _plain(control_rate)}
        self._params: dict[str, Param] = {}
        self._prompts: dict[str, PromptRef] = {}
        self._nodes: dict[str, NodeRef] = {}
        self._states: dict[str, StateRef] = {}
        self._stingers: dict[str, StingerRef] = {}
        self._triggers: dict[str, TriggerRef] = {}
        _first(self._document(), ("name", "control_rate"))

    def __repr__(self) -> str:
        return (f"GraphBuilder({self._name!r}, parameters={list(self._params)}, prompts={list(self._prompts)}, "
                f"states={list(self._states)})")

    # ------------------------------------------------------------- lookups
    @property
    def name(self) -> str:
        """The graph's name."""
        return self._name

    @property
    def parameters(self) -> Mapping[str, Param]:
        """The declared parameters by name (``intensity`` is built in, not listed)."""
        return MappingProxyType(self._params)

    @property
    def prompts(self) -> Mapping[str, PromptRef]:
        """The declared prompts by name."""
        return MappingProxyType(self._prompts)

    @property
    def states(self) -> Mapping[str, StateRef]:
        """The declared states by name, in order."""
        return MappingProxyType(self._states)

    # ------------------------------------------------------------ checking
    def _document(self, *, building: str = "") -> dict[str, Any]:
        """The graph as plain data in the format's order.

        ``building``: the top-level section a call is adding to. The check of a
        graph still being declared sees that section whole and the others only
        as far as they define names (parameters and prompts whole; nodes,
        stingers and states by name), so that each call costs its own section,
        not the whole graph; and the states that the labels driving them will
        need stand in until they are declared.
        """
        doc = dict(self._doc)
        if not any(doc.get("states", {}).values()):  # what calls that failed left behind
            doc.pop("states", None)
        else:
            states = {k: doc["states"][k] for k in SECTIONS["states"].keys if k in doc["states"]}
            states.setdefault("list", {})
            driver = self._params.get(states.get("driven_by", ""))
            if building and driver is not None:
                states["list"] = {**states["list"], **{lb: {} for lb in driver.labels if lb not in states["list"]}}
            if building and building != "states":
                states["list"] = dict.fromkeys(states["list"], {})
            doc["states"] = states
        if building:
            stubs = {"nodes": 0, "stingers": {"audio": "-"}}
            doc = {k: {n: stubs[k] for n in v} if k != building and k in stubs else v for k, v in doc.items()
                   if k in (building, "states", "parameters", "prompts", *stubs) or not isinstance(v, (dict, list))}
        return {k: doc[k] for k in SECTIONS["graph"].keys if doc.get(k) not in (None, {}, [])}

    def _put(self, into: dict[str, Any] | list[Any], key: str | None, data: _Data, *places: str,
             holds: object = ()) -> None:
        """Writes ``data`` into the graph (``key`` None: appends) and checks it; a problem under ``places``, or a
        handle in ``holds`` that is not this graph's, raises and takes it out again."""
        if isinstance(into, list):
            into.append(data)
        elif key is not None:
            into[key] = data
        try:
            _first(self._document(building=re.split(r"[.\[]", places[0])[0]), places)
            for ref in _refs(holds):
                self._own(ref, places[0])
        except GraphError:
            if isinstance(into, list):
                into.pop()
            elif key is not None:
                into.pop(key)
            raise

    def _own(self, ref: object, where: str) -> None:
        """A parameter or prompt handle must be the one this graph declared under its name."""
        if isinstance(ref, Param):
            if ref.name in BUILTIN_PARAMS:
                if ref != INTENSITY:
                    _fail(f"parameter {ref.name!r} is built in: use INTENSITY", where)
            elif ref.name in self._params and self._params[ref.name] != ref:
                _fail(f"parameter {ref.name!r} is not this graph's (declared here as {self._params[ref.name]}, "
                      f"given {ref})", where)
        elif isinstance(ref, PromptRef) and ref.name in self._prompts and self._prompts[ref.name] != ref:
            _fail(f"prompt {ref.name!r} is not this graph's (declared here as {self._prompts[ref.name]}, given "
                  f"{ref})", where)

    def _section(self, key: str) -> Any:
        return self._doc.setdefault(key, [] if key in ("mix", "transitions") else {})

    def _new_name(self, name: object, what: str, taken: Mapping[str, object], section: str) -> str:
        if not isinstance(name, str) or not name.strip():
            _fail(f"expected a {what} name (a non-empty text), got {_describe(name)}", section)
        if name in taken:
            _fail(f"duplicate {what} {name!r}: each {what} is declared once", f"{section}.{name}")
        return name

    def _once(self, into: Mapping[str, object], key: str, what: str, where: str) -> None:
        if key in into:
            _fail(f"{what} is already set", where)

    def _mix_list(self, mix: object, where: str) -> list[MixEntry]:
        if isinstance(mix, Mapping):
            entries: list[object] = []
            for i, (p, v) in enumerate(mix.items()):
                with _within(f"{where}[{i}]"):
                    entries.append(Weight(p, v))
        elif isinstance(mix, Sequence) and not isinstance(mix, str):
            entries = list(mix)
        else:
            _fail(f"expected a list of mix entries or a mapping prompt → weight, got {_describe(mix)}", where)
        out: list[MixEntry] = []
        for i, e in enumerate(entries):
            if not isinstance(e, (Weight, Blend, Pad)):
                _fail(f"expected a mix entry (weight(), blend() or pad()), got {_describe(e)}", f"{where}[{i}]")
            out.append(e)
        return out

    def _controls(self, controls: object, where: str) -> dict[str, Value]:
        if not isinstance(controls, Mapping):
            _fail(f"expected a mapping control name → value, got {_describe(controls)}", where)
        for name, value in controls.items():
            if not isinstance(name, str):
                _fail(f"expected a control name{choices(str(name), CONTROL_NAMES)}, got {_describe(name)}", where)
            _value_type(value, f"{where}.{name}")
        return dict(controls)

    # ---------------------------------------------------------- parameters
    def continuous(self, name: str, min: float = 0, max: float = 1, default: float | None = None,
                   safe: float | None = None, attack: Duration = 0.0, release: Duration = 0.0,
                   slew: float | None = None, one_euro: tuple[float, ...] | None = None,
                   hysteresis: tuple[float, float] | None = None) -> Param:
        """Declares a continuous parameter in ``[min, max]`` (values outside are clamped).

        ``default`` (else ``min``) is its value until set; ``safe`` (else the
        default) is where the failsafe glides it. Smoothing: ``attack`` and
        ``release`` are seconds to ~99 % of a rise and a fall, ``slew`` the
        most units per second. Sensor filters, one at most: ``one_euro=
        (min_cutoff, beta[, d_cutoff])`` (Hz, Hz), ``hysteresis=(low, high)``
        (a Schmitt trigger snapping to min/max).
        """
        return self._numeric("continuous", name, min, max, default, safe, attack, release, slew, one_euro, hysteresis)

    def discrete(self, name: str, min: int = 0, max: int = 1, default: int | None = None, safe: int | None = None,
                 attack: Duration = 0.0, release: Duration = 0.0, slew: float | None = None,
                 one_euro: tuple[float, ...] | None = None, hysteresis: tuple[float, float] | None = None) -> Param:
        """Declares a discrete parameter: whole numbers in ``[min, max]``; the rest as :meth:`continuous`."""
        return self._numeric("discrete", name, min, max, default, safe, attack, release, slew, one_euro, hysteresis)

    def _param_name(self, name: object) -> str:
        text = self._new_name(name, "parameter", self._params, "parameters")
        if text in self._nodes:
            _fail(f"{text!r} is already a node's name: a bare name in an input means the parameter, so they must "
                  "differ", f"parameters.{text}")
        return text

    def _numeric(self, kind: Literal["continuous", "discrete"], name: str, lo: object, hi: object, default: object,
                 safe: object, attack: object, release: object, slew: object, one_euro: object,
                 hysteresis: object) -> Param:
        name = self._param_name(name)
        path = f"parameters.{name}"
        data: dict[str, Any] = {"type": kind, "min": lo, "max": hi, "default": lo if default is None else default}
        if safe is not None:
            data["safe"] = safe
        a, r = _duration(attack), _duration(release)
        if a != 0 or r != 0 or slew is not None:
            data["smoothing"] = {"attack": a, "release": r, **({} if slew is None else {"slew": slew})}
        filters = {}
        for key, given, keys, least in (("one_euro", one_euro, ("min_cutoff", "beta", "d_cutoff"), 2),
                                        ("hysteresis", hysteresis, ("low", "high"), 2)):
            if given is None:
                continue
            if isinstance(given, (str, bytes)) or not isinstance(given, Sequence) or \
                    not least <= len(given) <= len(keys):
                more = f" or ({', '.join(keys)})" if len(keys) > least else ""
                _fail(f"expected ({', '.join(keys[:least])}){more}, got {_describe(given)}", f"{path}.filter.{key}")
            filters[key] = dict(zip(keys, given))
        if filters:
            data["filter"] = filters
        self._put(self._section("parameters"), name, _plain(data), path)
        self._params[name] = param = Param(name, kind, _plain(lo), _plain(hi))
        return param

    def labeled(self, name: str, labels: Sequence[str], default: str | None = None, safe: str | None = None) -> Param:
        """Declares a labeled parameter: one of ``labels`` (``default``: the first label).

        Use it with :meth:`Param.is_`/:meth:`Param.in_` in :func:`when`, with
        :meth:`Param.select`, or to drive the states (:meth:`states_driven_by`).
        """
        name = self._param_name(name)
        listed = list(labels) if isinstance(labels, Sequence) and not isinstance(labels, str) else labels
        data: dict[str, Any] = {"type": "labeled", "labels": listed}
        if default is not None or (isinstance(listed, list) and listed):
            data["default"] = listed[0] if default is None else default
        if safe is not None:
            data["safe"] = safe
        self._put(self._section("parameters"), name, _plain(data), f"parameters.{name}")
        self._params[name] = param = Param(name, "labeled", labels=tuple(listed))
        return param

    # ------------------------------------------------------ prompts, nodes
    def prompt(self, name: str, text: str | None = None, audio: str | os.PathLike[str] | None = None) -> PromptRef:
        """Declares a prompt: a ``text`` ("calm ambient pads") or an ``audio`` file (WAV/FLAC).

        A relative audio path is read relative to the folder of the file the
        graph is saved to.
        """
        name = self._new_name(name, "prompt", self._prompts, "prompts")
        if text is not None and not isinstance(text, str):
            _fail(f"expected the prompt's text (a text such as \"calm ambient pads\"), got {_describe(text)}",
                  f"prompts.{name}")
        file = None if audio is None else os.fspath(audio)
        data: _Data = text if file is None and text is not None else \
            {k: v for k, v in (("text", text), ("audio", file)) if v is not None}
        self._put(self._section("prompts"), name, data, f"prompts.{name}")
        self._prompts[name] = ref = PromptRef(name, text=text, audio=file)
        return ref

    def node(self, name: str, value: Value) -> NodeRef:
        """Declares a named value node, reusable as a value through the returned :class:`NodeRef`."""
        name = self._new_name(name, "node", self._nodes, "nodes")
        _value_type(value, f"nodes.{name}")
        self._put(self._section("nodes"), name, _plain(value), f"nodes.{name}", holds=value)
        self._nodes[name] = ref = NodeRef(name)
        return ref

    # ----------------------------------------------------------------- mix
    def _entry(self, make: Any, *args: Any) -> Any:
        where = f"mix[{len(self._section('mix'))}]"
        with _within(where):
            entry = make(*args)
        self._put(self._section("mix"), None, entry.to_data(), where, holds=entry)
        return entry

    def weight(self, prompt: PromptLike, value: Value = 1) -> Weight:
        """Adds ``prompt`` weighted by ``value`` to the global mix (weights of one prompt add up)."""
        return self._entry(Weight, prompt, value)

    def blend(self, input: Value, stops: Sequence[tuple[PromptLike, float]]) -> Blend:
        """Adds a blend to the global mix: prompts crossfading along ``input``, ``(prompt, position)`` stops."""
        return self._entry(blend, input, stops)

    def pad(self, x: Value, y: Value, points: Mapping[PromptLike, tuple[float, float]], mode: str = "idw",
            power: float = 2.0) -> Pad:
        """Adds a 2-D pad to the global mix: prompts at ``(x, y)`` points, weighted by the position ``(x, y)``."""
        return self._entry(Pad, x, y, points, mode, power)

    def default_mix(self, weights: Mapping[PromptLike, float]) -> None:
        """The mix used while every weight is 0 (without it: every prompt equally)."""
        self._once(self._doc, "default_mix", "default_mix", "default_mix")
        if not isinstance(weights, Mapping) or not weights:
            _fail(f"expected a non-empty mapping prompt → weight, got {_describe(weights)}", "default_mix")
        self._put(self._doc, "default_mix", _plain(weights), "default_mix", holds=weights)

    def control(self, name: str, value: Value) -> None:
        """Sets a control (one of :data:`CONTROL_NAMES`) to a value; states may override it."""
        path = f"controls.{name}"
        self._once(self._section("controls"), name, f"control {name!r}", path)
        self._controls({name: value}, "controls")
        self._put(self._section("controls"), name, _plain(value), path, holds=value)

    # -------------------------------------------------------------- states
    def state(self, name: str, mix: Sequence[MixEntry] | Mapping[PromptLike, Value] | None = None,
              controls: Mapping[str, Value] | None = None) -> StateRef:
        """Declares a state; ``mix`` replaces the global mix and ``controls`` override single controls.

        ``mix`` is a list of :func:`weight`/:func:`blend`/:func:`pad` entries,
        or a mapping prompt → weight; ``None`` keeps the global mix. The first
        state is the initial one unless :meth:`initial_state` says otherwise.
        """
        name = self._new_name(name, "state", self._states, "states.list")
        path = f"states.list.{name}"
        states = self._section("states")
        driver = self._params.get(states.get("driven_by", ""))
        if driver is not None and name not in driver.labels:
            _fail(f"state {name!r} is not a label of {driver.name!r}, which drives the states"
                  f"{choices(name, driver.labels, 'labels')}", path)
        data: dict[str, _Data] = {}
        held: list[object] = []
        if mix is not None:
            entries = self._mix_list(mix, f"{path}.mix")
            data["mix"] = [e.to_data() for e in entries]
            held += entries
        if controls is not None:
            held.append(self._controls(controls, f"{path}.controls"))
            data["controls"] = _plain(held[-1])
        self._put(states.setdefault("list", {}), name, data, path, holds=held)
        self._states[name] = ref = StateRef(name)
        return ref

    def states_driven_by(self, param: Param | str) -> None:
        """The states follow a labeled parameter: its labels must be exactly the state names."""
        states = self._section("states")
        if "driven_by" in states:
            _fail(f"the states are already driven by {states['driven_by']!r}", "states.driven_by")
        self._put(states, "driven_by", _name_of(param), "states.driven_by", holds=param)

    def initial_state(self, state: StateLike) -> None:
        """The state the graph starts in (default: the first declared)."""
        states = self._section("states")
        if "initial" in states:
            _fail(f"the initial state is already {states['initial']!r}", "states.initial")
        self._put(states, "initial", _name_of(state), "states.initial")

    def transition(self, source: StateLike = _default("transition", "from"),
                   target: StateLike = _default("transition", "to"), quantize: str = _default("transition", "quantize"),
                   fade: Duration = _default("transition", "fade"), mode: str = _default("transition", "mode")) -> None:
        """A rule for changing state from ``source`` to ``target`` (a state or ``"any"``).

        The most specific rule wins (from+to > from+any > any+to > any+any).
        ``quantize``: ``now``, ``beat`` or ``bar``; ``fade``: seconds or musical
        time (``"2 beats"``); ``mode``: ``blend`` (weights glide on one stream)
        or ``crossfade`` (a second deck starts the new style).
        """
        rules = self._section("transitions")
        data = {"from": _name_of(source), "to": _name_of(target), "quantize": quantize, "fade": _duration(fade),
                "mode": mode}
        self._put(rules, None, data, f"transitions[{len(rules)}]", "transitions")

    # -------------------------------------------------------------- events
    def stinger(self, name: str, prompt: PromptLike | None = None, audio: str | os.PathLike[str] | None = None,
                quantize: str = _default("stinger", "quantize"), length: Duration = _default("stinger", "length"),
                cooldown: Duration = _default("stinger", "cooldown"), duck: float = _default("stinger", "duck"),
                gain: float = _default("stinger", "gain")) -> StingerRef:
        """Declares a one-shot stinger: a ``prompt`` of the graph or an ``audio`` file, played quantized.

        ``length`` (> 0, seconds or musical time); ``cooldown`` seconds before
        it may play again; ``duck`` dB (<= 0) taken off the music meanwhile;
        ``gain`` dB on the stinger.
        """
        name = self._new_name(name, "stinger", self._stingers, "stingers")
        file = None if audio is None else os.fspath(audio)
        data: dict[str, Any] = {k: v for k, v in (("prompt", _name_of(prompt)), ("audio", file)) if v is not None}
        data.update(quantize=quantize, length=_duration(length), cooldown=_duration(cooldown), duck=duck, gain=gain)
        self._put(self._section("stingers"), name, _plain(data), f"stingers.{name}", holds=prompt)
        self._stingers[name] = ref = StingerRef(name)
        return ref

    def intensity(self, decay: float = _default("intensity", "decay"), hold: Duration = _default("intensity", "hold")
                  ) -> None:
        """The built-in intensity falls by ``decay`` units per second after ``hold`` seconds without a bump."""
        self._once(self._doc, "intensity", "intensity", "intensity")
        self._put(self._doc, "intensity", _plain({"decay": decay, "hold": _duration(hold)}), "intensity")

    def trigger(self, name: str, bump: float = 0.0, stinger: StingerLike | None = None,
                set_state: StateLike | None = None) -> TriggerRef:
        """Declares a trigger a client can fire: bump intensity (−1…1), play a stinger, set a state."""
        name = self._new_name(name, "trigger", self._triggers, "triggers")
        data = {k: _plain(v) for k, v in (("bump", bump), ("stinger", stinger), ("set_state", set_state))
                if v is not None and not (k == "bump" and v == 0)}
        self._put(self._section("triggers"), name, data, f"triggers.{name}")
        self._triggers[name] = ref = TriggerRef(name)
        return ref

    def failsafe(self, after: Duration, glide: Duration = _default("failsafe", "glide")) -> None:
        """After ``after`` seconds without input, parameters glide to their safe values over ``glide`` seconds."""
        self._once(self._doc, "failsafe", "failsafe", "failsafe")
        self._put(self._doc, "failsafe", _plain({"after": _duration(after), "glide": _duration(glide)}), "failsafe")

    # -------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        """The graph as plain data in the file format's layout (a fresh copy each call).

        Raises :class:`~cadenza.errors.GraphError` for what only the whole
        graph shows (labels of the driving parameter without a state).
        """
        data = self._document()
        _first(data, None)
        return copy.deepcopy(data)

    def to_yaml(self) -> str:
        """The graph as YAML: sections in block style, short values inline (like a hand-written file)."""
        return dump_yaml(self.to_dict())

    def to_json(self) -> str:
        """The graph as JSON (indented, UTF-8 text)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the graph to ``path``: YAML for ``.yaml``/``.yml``, JSON for ``.json``; returns the path."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".yaml", ".yml"):
            text = self.to_yaml()
        elif suffix == ".json":
            text = self.to_json()
        else:
            raise UsageError(f"unknown file type {p.suffix or '(none)'!r} (valid: .yaml, .yml, .json)",
                             where=os.fspath(path))
        p.write_text(text, encoding="utf-8")
        return p

