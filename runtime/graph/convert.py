"""Checked plain data of a style graph → the :mod:`~cadenza.runtime.graph.spec` dataclasses.

One job: build the model from data that :func:`cadenza.graph_format.validate`
found valid, filling every absent key with its :attr:`~cadenza.graph_format.Key.default`
from the declaration. It checks nothing (a problem here is a bug in the
declaration's checker, not in the file); the loader runs it only on a graph
without issues.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

from cadenza.graph_format import BUILTIN_PARAMS, FORMAT_VERSION, INLINE_NODES, SECTIONS, join, parse_duration
from cadenza.runtime.graph.spec import (
    Blend,
    Clamp,
    Const,
    Curve,
    Duration,
    Failsafe,
    Graph,
    Hysteresis,
    Intensity,
    MixEntry,
    Node,
    NodeRef,
    OneEuro,
    Op,
    Pad,
    Parameter,
    ParamRef,
    PromptDef,
    Select,
    Smoothing,
    State,
    Stinger,
    Transition,
    TriggerDef,
    Weight,
    When,
)

__all__ = ["to_graph", "to_duration"]


def to_duration(v: Any) -> Duration:
    """A checked duration (a number of seconds, or a text such as ``"2 beats"``) → :class:`Duration`."""
    if isinstance(v, str):
        value, unit = parse_duration(v)
        return Duration(value, unit)
    return Duration(float(v), "s")


def _seconds(v: Any) -> float:
    return parse_duration(v)[0] if isinstance(v, str) else float(v)


class _Build:
    def __init__(self, spelling: Mapping[str, str], params: Mapping[str, Parameter]) -> None:
        self.spelling = spelling
        self.params = params

    def text(self, v: Any, path: str) -> str:
        """A name as written: ``1`` in the file is the text ``"1"``."""
        return v if isinstance(v, str) else self.spelling.get(path, str(v))

    def get(self, f: Mapping[str, Any], section: str, key: str) -> Any:
        return f[key] if key in f else SECTIONS[section].keys[key].default

    def node(self, v: Any, path: str, input_name: bool = False) -> Node:
        if not isinstance(v, dict):
            if isinstance(v, str):
                if not input_name:
                    return Const(v)
                return ParamRef(v) if v in self.params or v in BUILTIN_PARAMS else NodeRef(v)
            return Const(v if isinstance(v, bool) else float(v))
        inline = next((k for k in INLINE_NODES if k in v), None)
        key = inline or next(iter(v))
        body, p = v[key], join(path, key)
        if key == "param":
            return ParamRef(self.text(body, p))
        if key == "node":
            return NodeRef(self.text(body, p))
        if key == "curve":
            points = tuple((float(x), float(y)) for x, y in body["points"])
            return Curve(self.node(body["input"], f"{p}.input", True), points, self.get(body, "curve", "shape"))
        if key in ("add", "multiply", "min", "max"):
            op = cast(Literal["add", "multiply", "min", "max"], key)
            return Op(op, tuple(self.node(a, f"{p}[{i}]", True) for i, a in enumerate(body)))
        if key == "invert":
            return Op("invert", (self.node(body, p, True),))
        if key == "clamp":
            return Clamp(self.node(body["value"], f"{p}.value", True), float(self.get(body, "clamp", "min")),
                         float(self.get(body, "clamp", "max")))
        if key == "when":
            cond = body
            param = self.text(cond["param"], f"{p}.param")
            if "is" in cond:
                labels: tuple[str, ...] = (self.text(cond["is"], f"{p}.is"),)
            else:
                labels = tuple(self.text(lb, f"{p}.in[{i}]") for i, lb in enumerate(cond["in"]))
            return When(param, labels, self.node(v["then"], f"{path}.then"), self.node(v["else"], f"{path}.else"))
        cases = tuple((label, self.node(c, f"{path}.cases.{label}")) for label, c in v["cases"].items())
        default = self.node(v["default"], f"{path}.default") if "default" in v else None
        return Select(self.text(body, p), cases, default)

    def mix(self, entries: list[Any], path: str) -> tuple[MixEntry, ...]:
        out: list[MixEntry] = []
        for i, e in enumerate(entries):
            p = f"{path}[{i}]"
            if "blend" in e:
                b = e["blend"]
                stops = tuple((self.text(s[0], f"{p}.blend.prompts[{j}][0]"), float(s[1]))
                              for j, s in enumerate(b["prompts"]))
                out.append(Blend(self.node(b["input"], f"{p}.blend.input", True), stops))
            elif "pad" in e:
                d = e["pad"]
                points = tuple((name, float(x), float(y)) for name, (x, y) in d["points"].items())
                out.append(Pad(self.node(d["x"], f"{p}.pad.x", True), self.node(d["y"], f"{p}.pad.y", True), points,
                               self.get(d, "pad", "mode"), float(self.get(d, "pad", "power"))))
            else:
                weight = self.node(e["weight"], f"{p}.weight") if "weight" in e else Const(
                    float(SECTIONS["weight"].keys["weight"].default))
                out.append(Weight(self.text(e["prompt"], f"{p}.prompt"), weight))
        return tuple(out)

    def controls(self, f: Mapping[str, Any], path: str) -> list[tuple[str, Node]]:
        return [(name, self.node(v, f"{path}.{name}")) for name, v in f.items()]


def _parameter(name: str, f: Mapping[str, Any], path: str, text: Callable[[Any, str], str]) -> Parameter:
    def get(key: str) -> Any:
        return f[key] if key in f else SECTIONS["parameter"].keys[key].default

    if f["type"] == "labeled":
        labels = tuple(text(lb, f"{path}.labels[{i}]") for i, lb in enumerate(f["labels"]))
        default = text(f["default"], f"{path}.default") if "default" in f else labels[0]
        safe = text(f["safe"], f"{path}.safe") if "safe" in f else None
        return Parameter(name, "labeled", default=default, safe=safe, labels=labels)
    lo, hi = float(get("min")), float(get("max"))
    smoothing = Smoothing()
    if "smoothing" in f:
        s = f["smoothing"]

        def sm(key: str) -> Any:
            return s[key] if key in s else SECTIONS["smoothing"].keys[key].default

        slew = sm("slew")
        smoothing = Smoothing(_seconds(sm("attack")), _seconds(sm("release")), None if slew is None else float(slew))
    filt: OneEuro | Hysteresis | None = None
    if "filter" in f:
        if "one_euro" in f["filter"]:
            e = f["filter"]["one_euro"] or {}
            keys = SECTIONS["one_euro"].keys
            filt = OneEuro(*(float(e[k] if k in e else keys[k].default) for k in ("min_cutoff", "beta", "d_cutoff")))
        else:
            h = f["filter"]["hysteresis"]
            filt = Hysteresis(float(h["low"]), float(h["high"]))
    return Parameter(name, f["type"], min=lo, max=hi, default=float(f["default"]) if "default" in f else lo,
                     safe=float(f["safe"]) if "safe" in f else None, smoothing=smoothing, filter=filt)


def to_graph(data: Mapping[str, Any], *, source: str, name: str, spelling: Mapping[str, str],
             audio_path: Callable[[str, bool], str], audio: Mapping[str, Any], prompt_audio: Mapping[str, bytes]
             ) -> Graph:
    """The :class:`Graph` of checked data; ``name`` when the data names none; ``audio_path(path, stinger)``:
    the resolved path of an audio file as written."""
    top = SECTIONS["graph"].keys
    text = _Build(spelling, {}).text
    params = {n: _parameter(n, p, f"parameters.{n}", text) for n, p in data.get("parameters", {}).items()}
    b = _Build(spelling, params)
    prompts: dict[str, PromptDef] = {}
    for n, p in data.get("prompts", {}).items():
        if isinstance(p, dict):
            prompts[n] = (PromptDef(n, text=b.text(p["text"], f"prompts.{n}.text")) if "text" in p
                          else PromptDef(n, audio=audio_path(p["audio"], False)))
        else:
            prompts[n] = PromptDef(n, text=b.text(p, f"prompts.{n}"))
    nodes = {n: b.node(v, f"nodes.{n}") for n, v in data.get("nodes", {}).items()}
    states: dict[str, State] = {}
    driven_by = initial = None
    if "states" in data:
        st = data["states"]
        for n, s in st["list"].items():
            s = s or {}
            p = f"states.list.{n}"
            states[n] = State(n, b.mix(s["mix"], f"{p}.mix") if "mix" in s else None,
                              tuple(b.controls(s["controls"], f"{p}.controls")) if "controls" in s else None)
        driven_by = b.text(st["driven_by"], "states.driven_by") if "driven_by" in st else None
        initial = b.text(st["initial"], "states.initial") if "initial" in st else next(iter(states), None)
    transitions = []
    for i, t in enumerate(data.get("transitions", ())):
        p = f"transitions[{i}]"
        ends = [b.text(t[k], f"{p}.{k}") if k in t else b.get(t, "transition", k) for k in ("from", "to")]
        transitions.append(Transition(ends[0], ends[1], b.get(t, "transition", "quantize"),
                                      to_duration(b.get(t, "transition", "fade")), b.get(t, "transition", "mode")))
    stingers = {}
    for n, s in data.get("stingers", {}).items():
        def g(key: str, s: Mapping[str, Any] = s) -> Any:
            return b.get(s, "stinger", key)

        stingers[n] = Stinger(n, b.text(s["prompt"], f"stingers.{n}.prompt") if "prompt" in s else None,
                              audio_path(s["audio"], True) if "audio" in s else None, g("quantize"),
                              to_duration(g("length")), _seconds(g("cooldown")), float(g("duck")), float(g("gain")))
    i = data.get("intensity", {})
    triggers = {}
    for n, t in data.get("triggers", {}).items():
        p = f"triggers.{n}"
        triggers[n] = TriggerDef(n, float(b.get(t, "trigger", "bump")),
                                 b.text(t["stinger"], f"{p}.stinger") if "stinger" in t else None,
                                 b.text(t["set_state"], f"{p}.set_state") if "set_state" in t else None)
    fs = data.get("failsafe")
    return Graph(
        version=FORMAT_VERSION, name=b.text(data["name"], "name") if "name" in data else name, source=source,
        control_rate=float(data.get("control_rate", top["control_rate"].default)), parameters=params,
        prompts=prompts, nodes=nodes, mix=b.mix(data.get("mix", []), "mix"),
        default_mix=({n: float(w) for n, w in data["default_mix"].items()} if "default_mix" in data
                     else {p: 1.0 for p in prompts}),
        controls=dict(b.controls(data.get("controls", {}), "controls")), states=states, states_driven_by=driven_by,
        initial_state=initial, transitions=tuple(transitions), stingers=stingers,
        intensity=Intensity(float(b.get(i, "intensity", "decay")), _seconds(b.get(i, "intensity", "hold"))),
        triggers=triggers,
        failsafe=None if fs is None else Failsafe(_seconds(fs["after"]), _seconds(b.get(fs, "failsafe", "glide"))),
        audio=audio, prompt_audio=prompt_audio,
    )

