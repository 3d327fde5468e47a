"""The SDK's style-graph authoring API (:mod:`cadenza.sdk.graph`).

* a graph using every feature exports exactly the file format (version 1):
  the dict, its YAML and its JSON;
* value expressions render to the format's value nodes, operators included;
* builder errors name the bad value, where it is and the valid choices;
* ``import cadenza.sdk.graph`` loads no ``cadenza.runtime``, numba,
  sounddevice or jax (fresh interpreter);
* the SDK's words are the format declaration's (:mod:`cadenza.graph_format`),
  and a bad value gets the same path and message from the builder as from the
  runtime's loader reading it in a file;
* round trip: the exported YAML and JSON load with the runtime's loader into
  the :class:`~cadenza.runtime.graph.spec.Graph` that was built, and the
  example graphs rebuilt in code load equal to the hand-written files (these
  tests skip while the loader is missing).
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import cadenza.sdk
from cadenza.errors import GraphError, UsageError
from cadenza.sdk import graph as sdk_graph
from cadenza.sdk.graph import (
    INTENSITY,
    GraphBuilder,
    Param,
    add,
    blend,
    clamp,
    curve,
    invert,
    maximum,
    minimum,
    multiply,
    pad,
    weight,
    when,
)

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- the full graph
def build_full() -> GraphBuilder:
    """A graph using every feature of the format."""
    g = GraphBuilder("everything", control_rate=50)
    danger = g.continuous("danger", attack=0.5, release="2 s", slew=0.5, safe=0)
    motion = g.continuous("motion", one_euro=(1.0, 0.02, 1.5))
    presence = g.continuous("presence", hysteresis=(0.3, 0.7), safe=0)
    light = g.continuous("light", min=0, max=1000, default=300, one_euro=(0.3, 0.001), attack=4, release=4)
    pos_x = g.continuous("pos_x", default=0.5)
    pos_y = g.continuous("pos_y", default=0.5)
    lap = g.discrete("lap", min=1, max=3)
    zone = g.labeled("zone", ["forest", "cave", "city"], safe="forest")
    mode = g.labeled("mode", ["explore", "combat"], default="explore")

    calm = g.prompt("calm", "calm ambient pads")
    tense = g.prompt("tense", text="dark tense strings")
    battle = g.prompt("battle", "aggressive drum and bass")
    rain = g.prompt("rain", audio="sounds/rain.wav")
    fanfare = g.prompt("fanfare", "triumphant brass fanfare")

    threat = g.node("threat", maximum(danger, INTENSITY))
    pace = g.node("pace", clamp(add(0.1, multiply(0.7, motion)), 0, 0.8))

    g.weight(calm, threat.curve([(0, 1), (1, 0)], shape="s-curve"))
    g.blend(danger, [(calm, 0.0), (tense, 0.5), (battle, 1.0)])
    g.pad(pos_x, pos_y, {calm: (0, 0), battle: (1, 1)}, mode="idw", power=2)
    g.pad(pos_x, pos_y, {calm: (0, 0), tense: (1, 0), rain: (0, 1), battle: (1, 1)}, mode="bilinear")
    g.weight(rain, when(zone.in_(["cave", "city"]), presence, 0))
    g.weight(battle, lap.curve([(2, 0), (3, 0.8)], shape="constant"))
    g.weight(tense, minimum(1 - danger, pace))
    g.default_mix({calm: 1})

    g.control("bpm", curve(threat, [(0, 90), (1, 150)]))
    g.control("scale", zone.select({"forest": "C major", "cave": "A minor"}, default="D dorian"))
    g.control("mute_drums", when(zone.is_("cave"), True, False))
    g.control("density", pace)
    g.control("brightness", light.curve([(0, 0.15), (200, 0.35), (1000, 0.8)], shape="log"))

    g.states_driven_by(mode)
    explore = g.state("explore")
    combat = g.state("combat", mix=[weight(battle, 1), weight(tense, 0.6 * INTENSITY),
                                    blend(threat, [(tense, 0), (battle, 1)])],
                     controls={"bpm": 172, "brightness": invert(danger)})
    g.initial_state(explore)
    g.transition()
    g.transition(explore, combat, quantize="beat", fade="2 beats", mode="crossfade")
    g.transition(combat, "any", quantize="now", fade=1.5)

    victory = g.stinger("victory", prompt=fanfare, quantize="bar", length="2 bars", cooldown=8, duck=-9, gain=0)
    g.stinger("thunder", audio="sounds/thunder.wav", length=1.5, gain=-3)
    g.intensity(decay=0.1, hold=2.0)
    g.trigger("enemy_killed", bump=0.2)
    g.trigger("boss_defeated", bump=0.5, stinger=victory, set_state=explore)
    g.trigger("calm_down", set_state="explore")
    g.failsafe(after=30, glide=5)
    return g


EXPECTED: dict[str, Any] = {
    "cadenza_graph": 1,
    "name": "everything",
    "control_rate": 50,
    "parameters": {
        "danger": {"type": "continuous", "min": 0, "max": 1, "default": 0, "safe": 0,
                   "smoothing": {"attack": 0.5, "release": "2 s", "slew": 0.5}},
        "motion": {"type": "continuous", "min": 0, "max": 1, "default": 0,
                   "filter": {"one_euro": {"min_cutoff": 1.0, "beta": 0.02, "d_cutoff": 1.5}}},
        "presence": {"type": "continuous", "min": 0, "max": 1, "default": 0, "safe": 0,
                     "filter": {"hysteresis": {"low": 0.3, "high": 0.7}}},
        "light": {"type": "continuous", "min": 0, "max": 1000, "default": 300,
                  "smoothing": {"attack": 4, "release": 4},
                  "filter": {"one_euro": {"min_cutoff": 0.3, "beta": 0.001}}},
        "pos_x": {"type": "continuous", "min": 0, "max": 1, "default": 0.5},
        "pos_y": {"type": "continuous", "min": 0, "max": 1, "default": 0.5},
        "lap": {"type": "discrete", "min": 1, "max": 3, "default": 1},
        "zone": {"type": "labeled", "labels": ["forest", "cave", "city"], "default": "forest", "safe": "forest"},
        "mode": {"type": "labeled", "labels": ["explore", "combat"], "default": "explore"},
    },
    "prompts": {
        "calm": "calm ambient pads",
        "tense": "dark tense strings",
        "battle": "aggressive drum and bass",
        "rain": {"audio": "sounds/rain.wav"},
        "fanfare": "triumphant brass fanfare",
    },
    "nodes": {
        "threat": {"max": [{"param": "danger"}, {"param": "intensity"}]},
        "pace": {"clamp": {"value": {"add": [0.1, {"multiply": [0.7, {"param": "motion"}]}]}, "min": 0, "max": 0.8}},
    },
    "mix": [
        {"prompt": "calm", "weight": {"curve": {"input": {"node": "threat"}, "points": [[0, 1], [1, 0]],
                                                "shape": "s-curve"}}},
        {"blend": {"input": "danger", "prompts": [["calm", 0.0], ["tense", 0.5], ["battle", 1.0]]}},
        {"pad": {"x": "pos_x", "y": "pos_y", "mode": "idw", "power": 2, "points": {"calm": [0, 0], "battle": [1, 1]}}},
        {"pad": {"x": "pos_x", "y": "pos_y", "mode": "bilinear", "power": 2.0,
                 "points": {"calm": [0, 0], "tense": [1, 0], "rain": [0, 1], "battle": [1, 1]}}},
        {"prompt": "rain", "weight": {"when": {"param": "zone", "in": ["cave", "city"]},
                                      "then": {"param": "presence"}, "else": 0}},
        {"prompt": "battle", "weight": {"curve": {"input": "lap", "points": [[2, 0], [3, 0.8]], "shape": "constant"}}},
        {"prompt": "tense", "weight": {"min": [{"invert": {"param": "danger"}}, {"node": "pace"}]}},
    ],
    "default_mix": {"calm": 1},
    "controls": {
        "bpm": {"curve": {"input": {"node": "threat"}, "points": [[0, 90], [1, 150]]}},
        "scale": {"select": "zone", "cases": {"forest": "C major", "cave": "A minor"}, "default": "D dorian"},
        "mute_drums": {"when": {"param": "zone", "is": "cave"}, "then": True, "else": False},
        "density": {"node": "pace"},
        "brightness": {"curve": {"input": "light", "points": [[0, 0.15], [200, 0.35], [1000, 0.8]],
                                 "shape": "log"}},
    },
    "states": {
        "driven_by": "mode",
        "initial": "explore",
        "list": {
            "explore": {},
            "combat": {
                "mix": [
                    {"prompt": "battle", "weight": 1},
                    {"prompt": "tense", "weight": {"multiply": [0.6, {"param": "intensity"}]}},
                    {"blend": {"input": {"node": "threat"}, "prompts": [["tense", 0], ["battle", 1]]}},
                ],
                "controls": {"bpm": 172, "brightness": {"invert": {"param": "danger"}}},
            },
        },
    },
    "transitions": [
        {"from": "any", "to": "any", "quantize": "bar", "fade": "1 bar", "mode": "blend"},
        {"from": "explore", "to": "combat", "quantize": "beat", "fade": "2 beats", "mode": "crossfade"},
        {"from": "combat", "to": "any", "quantize": "now", "fade": 1.5, "mode": "blend"},
    ],
    "stingers": {
        "victory": {"prompt": "fanfare", "quantize": "bar", "length": "2 bars", "cooldown": 8, "duck": -9, "gain": 0},
        "thunder": {"audio": "sounds/thunder.wav", "quantize": "beat", "length": 1.5, "cooldown": 0.1,
                    "duck": -6.0, "gain": -3},  # cooldown: the format's default
    },
    "intensity": {"decay": 0.1, "hold": 2.0},
    "triggers": {
        "enemy_killed": {"bump": 0.2},
        "boss_defeated": {"bump": 0.5, "stinger": "victory", "set_state": "explore"},
        "calm_down": {"set_state": "explore"},
    },
    "failsafe": {"after": 30, "glide": 5},
}


def test_full_graph_exports_the_file_format() -> None:
    data = build_full().to_dict()
    assert data == EXPECTED
    assert list(data) == list(EXPECTED)  # sections in the format's order
    assert list(data["states"]) == ["driven_by", "initial", "list"]


def test_yaml_and_json_hold_the_same_data() -> None:
    g = build_full()
    assert yaml.safe_load(g.to_yaml()) == EXPECTED
    assert json.loads(g.to_json()) == EXPECTED


def test_yaml_reads_like_a_hand_written_file() -> None:
    text = build_full().to_yaml()
    lines = text.splitlines()
    assert lines[:3] == ["cadenza_graph: 1", "name: everything", "control_rate: 50"]
    # sections are blocks, their short entries inline, lists indented under their key
    assert "parameters:" in lines and "mix:" in lines and "transitions:" in lines
    assert "  lap: {type: discrete, min: 1, max: 3, default: 1}" in lines
    assert "  pos_x: {type: continuous, min: 0, max: 1, default: 0.5}" in lines  # numbers as written
    assert "  - {from: any, to: any, quantize: bar, fade: 1 bar, mode: blend}" in lines
    assert "  calm: calm ambient pads" in lines
    assert "failsafe: {after: 30, glide: 5}" in lines
    assert "    explore: {}" in lines
    assert "        - {prompt: battle, weight: 1}" in lines
    assert max(len(line) for line in lines) <= 100
    assert "!!" not in text and "&" not in text and "*" not in text  # no tags, anchors or aliases


def test_to_dict_is_a_fresh_copy() -> None:
    g = build_full()
    data = g.to_dict()
    data["parameters"]["danger"]["max"] = 99
    data["mix"].clear()
    assert g.to_dict() == EXPECTED


def test_minimal_graph_has_only_what_was_declared() -> None:
    g = GraphBuilder("tiny")
    g.weight(g.prompt("calm", "calm pads"))
    assert g.to_dict() == {"cadenza_graph": 1, "name": "tiny", "control_rate": 100,
                           "prompts": {"calm": "calm pads"}, "mix": [{"prompt": "calm", "weight": 1}]}


def test_handles_and_lookups() -> None:
    g = GraphBuilder("h")
    zone = g.labeled("zone", ["a", "b"])
    danger = g.continuous("danger", min=-1, max=2)
    assert zone == Param("zone", "labeled", labels=("a", "b"))
    assert (danger.name, danger.kind, danger.min, danger.max) == ("danger", "continuous", -1, 2)
    assert dict(g.parameters) == {"zone": zone, "danger": danger}
    calm = g.prompt("calm", "calm")
    assert dict(g.prompts) == {"calm": calm} and calm.text == "calm" and calm.audio is None
    s = g.state("a")
    assert dict(g.states) == {"a": s} and s.name == "a"
    assert g.trigger("t", bump=0.1).name == "t"
    assert g.name == "h" and "zone" in repr(g)
    with pytest.raises(TypeError):
        g.parameters["x"] = danger


@pytest.mark.parametrize("suffix, loads", [(".yaml", yaml.safe_load), (".yml", yaml.safe_load),
                                           (".json", json.loads), (".JSON", json.loads)])
def test_save_by_extension(tmp_path: Path, suffix: str, loads: Callable[[str], Any]) -> None:
    path = build_full().save(tmp_path / f"graph{suffix}")
    assert path == tmp_path / f"graph{suffix}"
    assert loads(path.read_text(encoding="utf-8")) == EXPECTED


def test_save_rejects_an_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown file type '\.toml' \(valid: \.yaml, \.yml, \.json\)"):
        build_full().save(tmp_path / "graph.toml")
    assert not (tmp_path / "graph.toml").exists()


def test_strings_that_yaml_1_2_reads_as_numbers_stay_text() -> None:
    """PyYAML writes YAML 1.1, the loader reads the 1.2 core schema: '1e3' and '0o17' must be quoted."""
    g = GraphBuilder("quotes")
    tricky = ["1e3", "0o17", "0x1F", "no", "on", "null", "True", "12", ".5", "-.inf", ".NaN", "~"]
    zone = g.labeled("zone", tricky)
    g.prompt("p", "1e3")
    g.control("notes", zone.select({label: label for label in tricky}))  # text that scale would refuse
    text = g.to_yaml()
    for label in ("1e3", "0o17", "0x1F", "12", ".5"):
        assert f"'{label}'" in text
    assert yaml.safe_load(text)["parameters"]["zone"]["labels"] == tricky


# ----------------------------------------------------------------------------- expressions
def _params() -> tuple[GraphBuilder, Param, Param, Param]:
    g = GraphBuilder("x")
    return g, g.continuous("a"), g.continuous("b"), g.labeled("zone", ["forest", "cave", "city"])


def test_operator_sugar_renders_value_nodes() -> None:
    _, a, b, _ = _params()
    pa, pb = {"param": "a"}, {"param": "b"}
    assert (a + 1).to_data() == {"add": [pa, 1]}
    assert (2 + a).to_data() == {"add": [2, pa]}
    assert (a + b + 0.5).to_data() == {"add": [pa, pb, 0.5]}  # flattened
    assert (a * b * 2).to_data() == {"multiply": [pa, pb, 2]}
    assert (0.5 * a).to_data() == {"multiply": [0.5, pa]}
    assert (1 - a).to_data() == {"invert": pa}
    assert (1.0 - a).to_data() == {"invert": pa}
    assert (2 - a).to_data() == {"add": [2, {"multiply": [-1, pa]}]}
    assert (a - b).to_data() == {"add": [pa, {"multiply": [-1, pb]}]}
    assert (a - 0.25).to_data() == {"add": [pa, -0.25]}
    assert (-a).to_data() == {"multiply": [-1, pa]}
    assert (a / 4).to_data() == {"multiply": [pa, 0.25]}
    assert (np.float64(0.5) * a).to_data() == {"multiply": [0.5, pa]}
    assert (a * np.int64(3)).to_data() == {"multiply": [pa, 3]}
    assert INTENSITY.to_data() == {"param": "intensity"}


def test_functions_render_value_nodes() -> None:
    _, a, b, zone = _params()
    pa = {"param": "a"}
    assert minimum(a, b, 0.3).to_data() == {"min": [pa, {"param": "b"}, 0.3]}
    assert maximum(a, 0).to_data() == {"max": [pa, 0]}
    assert add(a).to_data() == {"add": [pa]}
    assert invert(a).to_data() == {"invert": pa}
    assert clamp(a * 2).to_data() == {"clamp": {"value": {"multiply": [pa, 2]}, "min": 0, "max": 1}}
    assert clamp(a, -1, 1).to_data() == {"clamp": {"value": pa, "min": -1, "max": 1}}
    assert curve(a, [(0, 0), (1, 1)]).to_data() == {"curve": {"input": "a", "points": [[0, 0], [1, 1]]}}
    assert curve(a + b, [(0, 1), (2, 0)], "exp").to_data() == {
        "curve": {"input": {"add": [pa, {"param": "b"}]}, "points": [[0, 1], [2, 0]], "shape": "exp"}}
    assert a.curve(np.array([[0.0, 0.0], [1.0, 2.0]]).tolist()).to_data()["curve"]["points"] == [[0, 0], [1, 2]]
    assert when(zone.is_("cave"), 1, a).to_data() == {"when": {"param": "zone", "is": "cave"}, "then": 1,
                                                      "else": pa}
    assert when(zone.in_(["cave", "city"]), "A minor", "C major").to_data() == {
        "when": {"param": "zone", "in": ["cave", "city"]}, "then": "A minor", "else": "C major"}
    assert zone.select({"forest": 1, "cave": a, "city": 0}).to_data() == {
        "select": "zone", "cases": {"forest": 1, "cave": pa, "city": 0}}
    assert zone.select({"cave": 0.2}, default=a).to_data() == {"select": "zone", "cases": {"cave": 0.2},
                                                               "default": pa}


def test_expressions_are_immutable_values() -> None:
    _, a, b, _ = _params()
    e = curve(a + b, [(0, 0), (1, 1)])
    assert e == curve(a + b, [(0, 0), (1, 1)])
    assert hash(e) == hash(curve(a + b, [(0, 0), (1, 1)]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.shape = "log"
    assert {pad(a, b, {"x": (0, 0), "y": (1, 1)})}  # hashable


def test_mix_entries_render() -> None:
    _, a, b, _ = _params()
    assert weight("calm").to_data() == {"prompt": "calm", "weight": 1}
    assert blend(a, [("x", 0), ("y", 1)]).to_data() == {"blend": {"input": "a", "prompts": [["x", 0], ["y", 1]]}}
    assert pad(a, b, {"x": (0, 0), "y": (1, 0.5)}, power=1).to_data() == {
        "pad": {"x": "a", "y": "b", "mode": "idw", "power": 1, "points": {"x": [0, 0], "y": [1, 0.5]}}}


def test_state_mix_as_a_mapping_and_seconds_as_text() -> None:
    g = GraphBuilder("m")
    a = g.continuous("a", attack="500 ms", release="1.5 seconds")
    calm, loud = g.prompt("calm", "calm"), g.prompt("loud", "loud")
    g.state("s", mix={calm: a, "loud": 0.5})
    g.state("t", controls={"scale": "A minor", "mute_bass": True, "notes": "C E G"})
    g.intensity(hold="3 s")
    g.failsafe("2 s", glide="500 ms")
    d = g.to_dict()
    assert d["parameters"]["a"]["smoothing"] == {"attack": "500 ms", "release": "1.5 seconds"}
    assert d["states"]["list"] == {"s": {"mix": [{"prompt": "calm", "weight": {"param": "a"}},
                                                 {"prompt": "loud", "weight": 0.5}]},
                                   "t": {"controls": {"scale": "A minor", "mute_bass": True, "notes": "C E G"}}}
    assert d["intensity"] == {"decay": 0.1, "hold": "3 s"}
    assert d["failsafe"] == {"after": "2 s", "glide": "500 ms"}
    assert loud.name == "loud"


def test_durations_are_written_one_way() -> None:
    g = GraphBuilder("d")
    g.prompt("p", "calm pads")
    g.continuous("a", attack="3", release=" 250MS ")
    g.state("s")
    g.transition(fade="2Beats")
    g.transition("s", quantize="now", fade="0.5 Bar")
    d = g.to_dict()
    assert d["parameters"]["a"]["smoothing"] == {"attack": 3.0, "release": "250 ms"}
    assert [t["fade"] for t in d["transitions"]] == ["2 beats", "0.5 bar"]


# ----------------------------------------------------------------------------- errors
def _g() -> tuple[GraphBuilder, dict[str, Any]]:
    g = GraphBuilder("err")
    h: dict[str, Any] = {
        "danger": g.continuous("danger"),
        "level": g.discrete("level", min=0, max=10),
        "zone": g.labeled("zone", ["forest", "cave"]),
        "calm": g.prompt("calm", "calm pads"),
        "loud": g.prompt("loud", "loud drums"),
    }
    h["fast"] = g.stinger("fast", prompt=h["calm"])
    return g, h


Case = Callable[[GraphBuilder, dict[str, Any]], object]

ERRORS: list[tuple[str, Case, str]] = [
    # names and duplicates
    ("duplicate parameter", lambda g, h: g.continuous("danger"), r"parameters\.danger: duplicate parameter 'danger'"),
    ("duplicate prompt", lambda g, h: g.prompt("calm", "x"), r"duplicate prompt 'calm'"),
    ("duplicate node", lambda g, h: (g.node("n", 1), g.node("n", 2)), r"nodes\.n: duplicate node 'n'"),
    ("duplicate state", lambda g, h: (g.state("s"), g.state("s")), r"duplicate state 's'"),
    ("duplicate stinger", lambda g, h: g.stinger("fast", audio="a.wav"), r"duplicate stinger 'fast'"),
    ("duplicate trigger", lambda g, h: (g.trigger("t", bump=0.1), g.trigger("t", bump=0.2)), r"duplicate trigger"),
    ("empty name", lambda g, h: g.continuous("  "), r"expected a parameter name \(a non-empty text\), got the text"),
    ("builtin name", lambda g, h: g.continuous("intensity"), r"'intensity' is built in"),
    ("node named like a parameter", lambda g, h: g.node("danger", 1), r"node 'danger' has the name of a parameter"),
    ("parameter named like a node", lambda g, h: (g.node("n", 1), g.continuous("n")), r"'n' is already a node's name"),
    ("reserved state", lambda g, h: g.state("any"), r"'any' is reserved"),
    # parameters
    ("min >= max", lambda g, h: g.continuous("x", min=1, max=1), r"parameters\.x\.max: impossible range: min 1 is not "
                                                                  r"below max 1"),
    ("default out of range", lambda g, h: g.continuous("x", default=2), r"parameters\.x\.default: default 2 is outside the range "
                                                                 r"0–1 \(min–max\)"),
    ("safe out of range", lambda g, h: g.continuous("x", safe=-1), r"parameters\.x\.safe: safe -1 is outside the range 0–1 "
                                                             r"\(min–max\)"),
    ("discrete not whole", lambda g, h: g.discrete("x", max=2.5), r"2\.5 is not a whole number"),
    ("nan", lambda g, h: g.continuous("x", max=float("nan")), r"expected a finite number, got nan"),
    ("bool as number", lambda g, h: g.continuous("x", max=True), r"expected a number, got true"),
    ("negative attack", lambda g, h: g.continuous("x", attack=-1), r"smoothing\.attack: a time cannot be negative, "
                                                                     r"got -1"),
    ("musical attack", lambda g, h: g.continuous("x", attack="2 beats"), r"'2 beats' is musical time, but this is "
                                                                         r"in seconds"),
    ("bad unit", lambda g, h: g.continuous("x", release="2 parsecs"), r"smoothing\.release: unknown unit 'parsecs' in "
                                                                      r"'2 parsecs' \(valid: s, ms, beats, bars\) \(this "
                                                                      r"one is in seconds\)"),
    ("zero slew", lambda g, h: g.continuous("x", slew=0), r"smoothing\.slew: must be > 0, got 0"),
    ("two filters", lambda g, h: g.continuous("x", one_euro=(1, 0), hysteresis=(0.2, 0.8)),
     r"filter: give one filter, one_euro or hysteresis, not both"),
    ("one euro shape", lambda g, h: g.continuous("x", one_euro=(1,)), r"one_euro: expected \(min_cutoff, beta\)"),
    ("one euro cutoff", lambda g, h: g.continuous("x", one_euro=(0, 0)), r"min_cutoff: must be > 0, got 0"),
    ("hysteresis order", lambda g, h: g.continuous("x", hysteresis=(0.7, 0.3)), r"impossible thresholds: low 0\.7"),
    ("hysteresis range", lambda g, h: g.continuous("x", hysteresis=(0.2, 2)), r"hysteresis\.high: high 2 is outside the "
                                                                                          r"parameter's range 0–1"),
    ("no labels", lambda g, h: g.labeled("x", []), r"labels: a labeled parameter needs at least one label"),
    ("labels as text", lambda g, h: g.labeled("x", "abc"), r"labels: expected a list of labels, got the text 'abc'"),
    ("duplicate label", lambda g, h: g.labeled("x", ["a", "a"]), r"labels\[1\]: duplicate label 'a'"),
    ("bad default label", lambda g, h: g.labeled("x", ["forest", "cave"], default="cav"),
     r"parameters\.x\.default: default 'cav' is not one of the labels \(did you mean 'cave'\? labels: forest, cave\)"),
    # prompts
    ("prompt text and audio", lambda g, h: g.prompt("p", "x", audio="a.wav"), r"prompts\.p: give text or audio"),
    ("prompt without text", lambda g, h: g.prompt("p"), r"prompts\.p: missing 'text' or 'audio' \(a prompt is a text"),
    ("empty prompt", lambda g, h: g.prompt("p", " "), r"prompts\.p: empty prompt text \(describe the music"),
    # references
    ("unknown prompt", lambda g, h: g.weight("clam"), r"mix\[0\]\.prompt: undefined prompt 'clam' \(did you mean "
                                                      r"'calm'\? defined: calm, loud\)"),
    ("foreign parameter", lambda g, h: g.weight(h["calm"], GraphBuilder("other").continuous("dangr")),
     r"mix\[0\]\.weight\.param: undefined parameter 'dangr' \(did you mean 'danger'\? defined: danger, level, "
     r"zone, intensity\)"),
    ("redefined parameter", lambda g, h: g.weight(h["calm"], GraphBuilder("other").continuous("danger", max=5)),
     r"parameter 'danger' is not this graph's"),
    ("foreign prompt", lambda g, h: g.weight(GraphBuilder("o").prompt("calm", "other text")),
     r"prompt 'calm' is not this graph's"),
    ("unknown node", lambda g, h: g.control("bpm", sdk_graph.NodeRef("nope")), r"controls\.bpm\.node: undefined node 'nope' \(none are defined\)"),
    ("fake intensity", lambda g, h: g.weight(h["calm"], Param("intensity", "continuous", 0, 2)),
     r"parameter 'intensity' is built in: use INTENSITY"),
    ("unknown state", lambda g, h: (g.state("a"), g.transition("a", "b")),
     r"transitions\[0\]\.to: unknown state 'b' \(states: a, any\)"),
    ("transition without states", lambda g, h: g.transition(), r"transitions need states"),
    ("duplicate transition", lambda g, h: (g.state("a"), g.transition("a"), g.transition("a", "any")),
     r"transitions\[1\]: a second rule from a to any"),
    ("unknown stinger", lambda g, h: g.trigger("t", stinger="slow"), r"triggers\.t\.stinger: undefined stinger 'slow' "
                                                                     r"\(defined: fast\)"),
    ("set_state without states", lambda g, h: g.trigger("t", set_state="a"), r"triggers\.t\.set_state: set_state needs states: add "
                                                                                         r"a states: section"),
    ("initial unknown", lambda g, h: (g.state("a"), g.initial_state("b")), r"states\.initial: undefined state 'b'"),
    ("stinger prompt unknown", lambda g, h: g.stinger("s", prompt="nope"), r"stingers\.s\.prompt: undefined prompt"),
    # words
    ("bad quantize", lambda g, h: (g.state("a"), g.transition(quantize="bars")),
     r"transitions\[0\]\.quantize: unknown quantize 'bars' \(did you mean 'bar'\? valid: now, beat, bar\)"),
    ("bad mode", lambda g, h: (g.state("a"), g.transition(mode="fade")),
     r"transitions\[0\]\.mode: unknown transition mode 'fade' \(.*valid: blend, crossfade\)"),
    ("bad fade", lambda g, h: (g.state("a"), g.transition(fade="soon")), r"'soon' is not a duration"),
    ("negative fade", lambda g, h: (g.state("a"), g.transition(fade=-1)), r"fade: a duration cannot be negative, got -1"),
    ("bad shape", lambda g, h: h["danger"].curve([(0, 0), (1, 1)], shape="scurve"),
     r"curve\.shape: unknown curve shape 'scurve' \(did you mean 's-curve'\? valid: linear, s-curve, log, exp, sine, "
     r"constant\)"),
    ("bad control", lambda g, h: g.control("tempo", 120),
     r"controls\.tempo: unknown control 'tempo' \(valid: bpm, density, brightness, scale"),
    ("bad state control", lambda g, h: g.state("s", controls={"bmp": 120}), r"states\.list\.s\.controls\.bmp: unknown "
                                                                            r"control 'bmp' \(did you mean 'bpm'\?"),
    ("control twice", lambda g, h: (g.control("bpm", 100), g.control("bpm", 120)), r"control 'bpm' is already set"),
    ("bad pad mode", lambda g, h: g.pad(h["danger"], h["danger"], {"calm": (0, 0), "loud": (1, 1)}, mode="grid"),
     r"pad\.mode: unknown pad mode 'grid' \(valid: idw, bilinear\)"),
    ("bilinear not a grid", lambda g, h: pad(h["danger"], h["danger"], {"calm": (0, 0), "loud": (1, 1)},
                                             mode="bilinear"),
     r"pad\.points: mode bilinear needs a point on every corner of a grid; missing \(0, 1\), \(1, 0\) \(or use mode: "
     r"idw"),
    ("pad power", lambda g, h: pad(h["danger"], h["danger"], {"calm": (0, 0), "loud": (1, 1)}, power=0),
     r"pad\.power: must be > 0, got 0"),
    ("pad one point", lambda g, h: pad(h["danger"], h["danger"], {"calm": (0, 0)}), r"a pad needs at least 2 points"),
    # curves, blends and values
    ("curve x not increasing", lambda g, h: curve(h["danger"], [(0, 0), (0.6, 1), (0.5, 0)]),
     r"curve\.points\[2\]: x values must increase \(0\.5 after 0\.6\)"),
    ("curve one point", lambda g, h: curve(h["danger"], [(0, 0)]), r"a curve needs at least 2 points, got 1"),
    ("curve bad point", lambda g, h: curve(h["danger"], [(0, 0), (1, 2, 3)]), r"curve\.points\[1\]: expected a point"),
    ("blend positions", lambda g, h: blend(h["danger"], [("calm", 0.5), ("loud", 0.5)]),
     r"blend\.prompts\[1\]: blend positions must increase \(0\.5 after 0\.5\)"),
    ("blend one stop", lambda g, h: blend(h["danger"], [("calm", 0)]), r"a blend needs at least 2 stops, got 1"),
    ("clamp range", lambda g, h: clamp(h["danger"], 1, 0), r"clamp\.max: impossible range: min 1 is not below max 0"),
    ("string as parameter", lambda g, h: curve("danger", [(0, 0), (1, 1)]),
     r"curve\.input: expected a number or a value expression, got the text 'danger' \(to read a parameter, pass "
     r"the Param handle"),
    ("string in arithmetic", lambda g, h: h["danger"] + "x", r"add\[1\]: expected a number or a value expression, "
                                                              r"got the text 'x'"),
    ("string weight", lambda g, h: g.weight(h["calm"], "danger"), r"weight: expected a number or a value expression, "
                                                                  r"got the text 'danger'"),
    ("labeled in arithmetic", lambda g, h: h["zone"] * 2, r"parameter 'zone' is labeled, not a number"),
    ("labeled weight", lambda g, h: g.weight(h["calm"], h["zone"]), r"parameter 'zone' is labeled, not a number: "
                                                                    r"turn its labels into values with when\(zone\."
                                                                    r"is_\(label\), then, else_\) or zone\.select\("),
    ("text naming a parameter", lambda g, h: g.control("bpm", "danger"),
     r"controls\.bpm: expected a number or a value node, got the text 'danger' \(to read a parameter, pass the Param "
     r"handle"),
    ("number as scale", lambda g, h: g.control("scale", h["danger"]), r"controls\.scale\.param: expected a text \(such "
                                                                      r"as 'C major'\) or a value node, got "
                                                                      r"parameter 'danger' \(a number\)"),
    ("text branch in bpm", lambda g, h: g.control("bpm", when(h["zone"].is_("cave"), "fast", 120)),
     r"controls\.bpm\.then: expected a number or a value node, got the text 'fast'"),
    ("bool weight", lambda g, h: g.weight(h["calm"], True), r"mix\[0\]\.weight: expected a number or a value "
                                                            r"node, got true"),
    ("condition as value", lambda g, h: g.control("mute_drums", h["zone"].is_("cave")),
     r"a condition \(zone is 'cave'\) is not a value: use when\(condition, then, else_\)"),
    ("unknown label", lambda g, h: h["zone"].is_("desert"), r"'desert' is not a label of 'zone' \(labels: forest, "
                                                            r"cave\)"),
    ("is_ on a number", lambda g, h: h["danger"].is_("x"), r"is_\(\) needs a labeled parameter, and 'danger' is "
                                                           r"continuous"),
    ("select missing labels", lambda g, h: h["zone"].select({"cave": 1}), r"no case for 'forest' and no default"),
    ("select unknown label", lambda g, h: h["zone"].select({"cav": 1}, default=0), r"'cav' is not a label of 'zone'"),
    ("when without condition", lambda g, h: when(h["danger"], 1, 0),
     r"when\(\) takes a condition such as mode\.is_\('combat'\)"),
    ("empty add", lambda g, h: add(), r"add\(\) needs at least one value"),
    ("divide by expression", lambda g, h: h["danger"] / h["danger"], r"divided by a non-zero number only"),
    ("list as value", lambda g, h: g.weight(h["calm"], [1, 2]), r"expected a number or a value expression, got list"),
    # mix, states, events
    ("default mix zero", lambda g, h: g.default_mix({"calm": 0}), r"every weight is 0"),
    ("default mix negative", lambda g, h: g.default_mix({"calm": -1}), r"default_mix\.calm: must be >= 0, got -1"),
    ("driven by a number", lambda g, h: g.states_driven_by(h["danger"]),
     r"states\.driven_by: driven_by needs a labeled parameter, and 'danger' is continuous \(labeled parameters: zone\)"),
    ("state not a label", lambda g, h: (g.states_driven_by(h["zone"]), g.state("caves")),
     r"states\.list\.caves: state 'caves' is not a label of 'zone', which drives the states \(did you mean 'cave'\?"),
    ("states before driver", lambda g, h: (g.state("desert"), g.states_driven_by(h["zone"])),
     r"states\.driven_by: the labels of 'zone' must be the state names \(states without a label: "
     r"desert\)"),
    ("labels without a state", lambda g, h: (g.states_driven_by(h["zone"]), g.state("cave"), g.to_dict()),
     r"states\.driven_by: the labels of 'zone' must be the state names \(labels without a state: "
     r"forest\)"),
    ("bad mix entry", lambda g, h: g.state("s", mix=[h["calm"]]), r"states\.list\.s\.mix\[0\]: expected a mix entry"),
    ("stinger both", lambda g, h: g.stinger("s", prompt=h["calm"], audio="x.wav"), r"stingers\.s: give prompt: <name> or audio: <file>, not both"),
    ("stinger zero length", lambda g, h: g.stinger("s", audio="x.wav", length="0 beats"), r"stingers\.s\.length: a stinger's length must be above 0"),
    ("stinger duck up", lambda g, h: g.stinger("s", audio="x.wav", duck=3), r"stingers\.s\.duck: must be <= 0, got 3"),
    ("trigger bump", lambda g, h: g.trigger("t", bump=2), r"triggers\.t\.bump: 2 is outside -1–1 \(added to intensity"),
    ("trigger nothing", lambda g, h: g.trigger("t"), r"a trigger that does nothing"),
    ("failsafe zero", lambda g, h: g.failsafe(0), r"failsafe\.after: must be > 0 seconds, got 0"),
    ("failsafe twice", lambda g, h: (g.failsafe(1), g.failsafe(2)), r"failsafe is already set"),
    ("intensity negative", lambda g, h: g.intensity(decay=-0.1), r"intensity\.decay: must be >= 0, got -0\.1"),
    ("control rate", lambda g, h: GraphBuilder("x", control_rate=5), r"control_rate: 5 is outside 10–1000 \(updates per second\)"),
]


@pytest.mark.parametrize("case, match", [(c, m) for _, c, m in ERRORS], ids=[name for name, _, _ in ERRORS])
def test_builder_errors_name_the_bad_value(case: Case, match: str) -> None:
    g, h = _g()
    with pytest.raises(GraphError, match=match) as info:
        case(g, h)
    assert "\n" not in str(info.value)


def test_a_failed_call_changes_nothing() -> None:
    g, h = _g()
    before = g.to_dict()
    failing: list[Callable[[], object]] = [
        lambda: g.continuous("bad", min=2, max=1),
        lambda: g.labeled("bad", ["a", "a"]),
        lambda: g.prompt("bad", "x", audio="y.wav"),
        lambda: g.node("bad", h["zone"] + 1),
        lambda: g.weight("nope"),
        lambda: g.blend(h["danger"], [(h["calm"], 0), ("nope", 1)]),
        lambda: g.default_mix({"calm": 1, "nope": 1}),
        lambda: g.control("bpm", "fast"),
        lambda: g.state("bad", mix=[weight(h["calm"]), weight("nope")]),
        lambda: g.state("bad", controls={"bpm": 1, "nope": 2}),
        lambda: g.states_driven_by(h["danger"]),
        lambda: g.stinger("bad", prompt=h["calm"], duck=1),
        lambda: g.trigger("bad", bump=0.1, stinger="nope"),
        lambda: g.intensity(decay=-1),
        lambda: g.failsafe(after=-1),
    ]
    for call in failing:
        with pytest.raises(GraphError):
            call()
    assert g.to_dict() == before
    # the names were not taken by the failed calls
    g.continuous("bad")
    g.prompt("bad", "x")
    g.state("bad")
    g.stinger("bad", prompt=h["calm"])


def test_errors_carry_where() -> None:
    g = GraphBuilder("w")
    with pytest.raises(GraphError) as info:
        g.continuous("x", min=3, max=2)
    assert info.value.where == "parameters.x.max"
    assert info.value.message.startswith("impossible range")


# ----------------------------------------------------------------------------- import weight
def test_importing_the_authoring_api_loads_no_runtime() -> None:
    probe = ("import sys, json\nimport cadenza.sdk.graph, cadenza.sdk\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('numba', 'llvmlite', 'sounddevice', '_sounddevice', 'jax', 'jaxlib') "
             "or m == 'cadenza.runtime' or m.startswith('cadenza.runtime.'))))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_sdk_source_never_imports_the_runtime() -> None:
    for path in (REPO / "sdk").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+cadenza\.runtime", text, re.M), path
        assert not re.search(r"^\s*(from|import)\s+(numba|sounddevice|jax)\b", text, re.M), path


def test_exports() -> None:
    for name in sdk_graph.__all__:
        assert hasattr(sdk_graph, name), name
    for name in ("GraphBuilder", "INTENSITY", "when", "curve", "weight", "blend", "pad", "GraphError"):
        assert name in cadenza.sdk.__all__
    assert cadenza.sdk.GraphBuilder is GraphBuilder


def test_vocabulary_is_the_format_declaration() -> None:
    """The SDK re-exports the one declaration's words (the same objects), it does not keep a copy."""
    from cadenza import graph_format

    for name in ("FORMAT_VERSION", "BUILTIN_PARAMS", "CURVE_SHAPES", "CONTROL_NAMES", "CONTROL_KINDS", "QUANTIZE",
                 "MODES", "PAD_MODES"):
        assert getattr(sdk_graph, name) is getattr(graph_format, name), name


# A bad value given to the builder, and the same bad value written in a file: the builder and the runtime's
# loader check both with the one declaration, so they report the same path and the same message.
SAME_AS_FILE: list[tuple[str, Callable[[GraphBuilder], object], str]] = [
    ("default out of range", lambda g: g.continuous("x", default=2), "parameters:\n  x: {type: continuous, default: 2}"),
    ("label", lambda g: g.labeled("zone", ["forest", "cave"], default="cav"),
     "parameters:\n  zone: {type: labeled, labels: [forest, cave], default: cav}"),
    ("control", lambda g: g.control("tempo", 120), "controls: {tempo: 120}"),
    ("quantize", lambda g: (g.state("a"), g.transition(quantize="bars")),
     "states: {list: {a: {}}}\ntransitions:\n  - {quantize: bars}"),
    ("duck", lambda g: (g.prompt("calm", "calm pads"), g.stinger("s", prompt="calm", duck=3)),
     "prompts: {calm: calm pads}\nstingers:\n  s: {prompt: calm, duck: 3}"),
    ("bump", lambda g: g.trigger("t", bump=2), "triggers:\n  t: {bump: 2}"),
    ("failsafe", lambda g: g.failsafe("2 beats"), "failsafe: {after: 2 beats}"),
]


@pytest.mark.parametrize("call, text", [(c, t) for _, c, t in SAME_AS_FILE], ids=[n for n, _, _ in SAME_AS_FILE])
def test_builder_and_loader_report_a_bad_value_alike(call: Callable[[GraphBuilder], object], text: str) -> None:
    loader = pytest.importorskip("cadenza.runtime.graph.loader")
    with pytest.raises(GraphError) as built:
        call(GraphBuilder("same"))
    with pytest.raises(loader.InvalidGraph) as written:
        loader.loads_graph(f"cadenza_graph: 1\nname: same\n{text}\n", source="<same>")
    issue = written.value.issues[0]
    assert (built.value.where, built.value.message) == (issue.path, issue.message)


# ----------------------------------------------------------------------------- round trip through the loader
def _expected_graph(source: str, audio_dir: Path | None) -> Any:
    """The spec :class:`Graph` that :func:`build_full` describes, written out with the spec's own classes."""
    s = pytest.importorskip("cadenza.runtime.graph.spec")

    def audio(p: str) -> str:
        return p if audio_dir is None else str(audio_dir / p)

    def P(name: str) -> Any:
        return s.ParamRef(name)

    def C(v: float | bool | str) -> Any:
        return s.Const(v)

    parameters = {
        "danger": s.Parameter("danger", "continuous", 0.0, 1.0, 0.0, 0.0, smoothing=s.Smoothing(0.5, 2.0, 0.5)),
        "motion": s.Parameter("motion", "continuous", 0.0, 1.0, 0.0, filter=s.OneEuro(1.0, 0.02, 1.5)),
        "presence": s.Parameter("presence", "continuous", 0.0, 1.0, 0.0, 0.0, filter=s.Hysteresis(0.3, 0.7)),
        "light": s.Parameter("light", "continuous", 0.0, 1000.0, 300.0, smoothing=s.Smoothing(4.0, 4.0),
                             filter=s.OneEuro(0.3, 0.001, 1.0)),
        "pos_x": s.Parameter("pos_x", "continuous", 0.0, 1.0, 0.5),
        "pos_y": s.Parameter("pos_y", "continuous", 0.0, 1.0, 0.5),
        "lap": s.Parameter("lap", "discrete", 1.0, 3.0, 1.0),
        "zone": s.Parameter("zone", "labeled", default="forest", safe="forest", labels=("forest", "cave", "city")),
        "mode": s.Parameter("mode", "labeled", default="explore", labels=("explore", "combat")),
    }
    prompts = {
        "calm": s.PromptDef("calm", text="calm ambient pads"),
        "tense": s.PromptDef("tense", text="dark tense strings"),
        "battle": s.PromptDef("battle", text="aggressive drum and bass"),
        "rain": s.PromptDef("rain", audio=audio("sounds/rain.wav")),
        "fanfare": s.PromptDef("fanfare", text="triumphant brass fanfare"),
    }
    threat, pace = s.NodeRef("threat"), s.NodeRef("pace")
    nodes = {
        "threat": s.Op("max", (P("danger"), P("intensity"))),
        "pace": s.Clamp(s.Op("add", (C(0.1), s.Op("multiply", (C(0.7), P("motion"))))), 0.0, 0.8),
    }
    mix = (
        s.Weight("calm", s.Curve(threat, ((0.0, 1.0), (1.0, 0.0)), "s-curve")),
        s.Blend(P("danger"), (("calm", 0.0), ("tense", 0.5), ("battle", 1.0))),
        s.Pad(P("pos_x"), P("pos_y"), (("calm", 0.0, 0.0), ("battle", 1.0, 1.0)), "idw", 2.0),
        s.Pad(P("pos_x"), P("pos_y"), (("calm", 0.0, 0.0), ("tense", 1.0, 0.0), ("rain", 0.0, 1.0),
                                       ("battle", 1.0, 1.0)), "bilinear", 2.0),
        s.Weight("rain", s.When("zone", ("cave", "city"), P("presence"), C(0.0))),
        s.Weight("battle", s.Curve(P("lap"), ((2.0, 0.0), (3.0, 0.8)), "constant")),
        s.Weight("tense", s.Op("min", (s.Op("invert", (P("danger"),)), pace))),
    )
    controls = {
        "bpm": s.Curve(threat, ((0.0, 90.0), (1.0, 150.0)), "linear"),
        "scale": s.Select("zone", (("forest", C("C major")), ("cave", C("A minor"))), C("D dorian")),
        "mute_drums": s.When("zone", ("cave",), C(True), C(False)),
        "density": pace,
        "brightness": s.Curve(P("light"), ((0.0, 0.15), (200.0, 0.35), (1000.0, 0.8)), "log"),
    }
    states = {
        "explore": s.State("explore"),
        "combat": s.State("combat", mix=(
            s.Weight("battle", C(1.0)),
            s.Weight("tense", s.Op("multiply", (C(0.6), P("intensity")))),
            s.Blend(threat, (("tense", 0.0), ("battle", 1.0))),
        ), controls=(("bpm", C(172.0)), ("brightness", s.Op("invert", (P("danger"),))))),
    }
    transitions = (
        s.Transition("any", "any", "bar", s.Duration(1.0, "bars"), "blend"),
        s.Transition("explore", "combat", "beat", s.Duration(2.0, "beats"), "crossfade"),
        s.Transition("combat", "any", "now", s.Duration(1.5, "s"), "blend"),
    )
    stingers = {
        "victory": s.Stinger("victory", prompt="fanfare", quantize="bar", length=s.Duration(2.0, "bars"),
                             cooldown=8.0, duck_db=-9.0, gain_db=0.0),
        "thunder": s.Stinger("thunder", audio=audio("sounds/thunder.wav"), quantize="beat",
                             length=s.Duration(1.5, "s"), cooldown=0.1, duck_db=-6.0, gain_db=-3.0),
    }
    triggers = {
        "enemy_killed": s.TriggerDef("enemy_killed", 0.2),
        "boss_defeated": s.TriggerDef("boss_defeated", 0.5, "victory", "explore"),
        "calm_down": s.TriggerDef("calm_down", 0.0, None, "explore"),
    }
    return s.Graph(
        version=1, name="everything", source=source, control_rate=50.0, parameters=parameters, prompts=prompts,
        nodes=nodes, mix=mix, default_mix={"calm": 1.0}, controls=controls, states=states, states_driven_by="mode",
        initial_state="explore", transitions=transitions, stingers=stingers, intensity=s.Intensity(0.1, 2.0),
        triggers=triggers, failsafe=s.Failsafe(30.0, 5.0),
    )


def _assert_same_graph(got: Any, want: Any) -> None:
    """Field by field first, so that a difference names its section."""
    for f in dataclasses.fields(want):
        if f.compare:  # not where each value was written (lines) or the audio decoded from it
            assert getattr(got, f.name) == getattr(want, f.name), f.name
    assert got == want


def _sounds(folder: Path) -> Path:
    """The audio files build_full() names, in ``folder`` (the loader reads and decodes them)."""
    import shutil

    (folder / "sounds").mkdir(exist_ok=True)
    wav = Path(__file__).parent / "graphs" / "valid" / "sounds" / "rain.wav"
    for name in ("rain.wav", "thunder.wav"):
        shutil.copy(wav, folder / "sounds" / name)
    return folder


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_round_trip_text_through_the_loader(tmp_path: Path, fmt: str) -> None:
    loader = pytest.importorskip("cadenza.runtime.graph.loader")
    g = build_full()
    text = g.to_yaml() if fmt == "yaml" else g.to_json()
    got = loader.loads_graph(text, source=f"<sdk {fmt}>", base_dir=_sounds(tmp_path))
    _assert_same_graph(got, _expected_graph(f"<sdk {fmt}>", tmp_path))


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_round_trip_saved_file_through_the_loader(tmp_path: Path, suffix: str) -> None:
    loader = pytest.importorskip("cadenza.runtime.graph.loader")
    _sounds(tmp_path)
    path = build_full().save(tmp_path / f"everything{suffix}")
    got = loader.load_graph(path)
    _assert_same_graph(got, _expected_graph(str(path), tmp_path))


def test_round_trip_keeps_tricky_strings() -> None:
    loader = pytest.importorskip("cadenza.runtime.graph.loader")
    g = GraphBuilder("quotes")
    tricky = ["1e3", "0o17", "0x1F", "no", "on", "null", "True", "12", ".5", "-.inf", "~", "a: b", "#x", "- y"]
    zone = g.labeled("zone", tricky, default="no")
    p = g.prompt("1e3", "0x1F")
    g.weight(p, when(zone.is_("0o17"), 1, 0))
    g.control("notes", zone.select({label: label for label in tricky}))  # text passes (scale must be a scale)
    g.states_driven_by(zone)
    for label in tricky:
        g.state(label)
    for fmt, text in (("yaml", g.to_yaml()), ("json", g.to_json())):
        got = loader.loads_graph(text, source=fmt)
        assert got.parameters["zone"].labels == tuple(tricky)
        assert got.parameters["zone"].default == "no"
        assert list(got.states) == tricky
        assert got.prompts["1e3"].text == "0x1F"
        notes = got.controls["notes"]
        assert [(label, c.value) for label, c in notes.cases] == [(t, t) for t in tricky]


# ----------------------------------------------------------------------------- hand-written graphs, rebuilt in code
# The shipped examples (examples/*/graph.yaml) as written by hand, kept here so that edits to the examples do not
# move this test; each is rebuilt in code below and must load into the same Graph.
ACTION_GAME_YAML = """
cadenza_graph: 1
name: action-game
control_rate: 100
parameters:
  danger: {type: continuous, min: 0, max: 1, default: 0, smoothing: {attack: 0.8, release: 3.0}}
  health: {type: discrete, min: 0, max: 100, default: 100}
  mode: {type: labeled, labels: [explore, tension, combat], default: explore}
prompts:
  wander: "calm ambient pads with soft piano"
  suspense: "dark tense cinematic strings"
  battle: "aggressive drum and bass"
  heroic: "epic orchestral brass"
  fanfare: "triumphant orchestral brass fanfare"
nodes:
  peril: {max: [{param: danger}, {invert: {curve: {input: health, points: [[0, 0], [40, 1]]}}}]}
mix:
  - prompt: wander
    weight: {curve: {input: danger, points: [[0, 1], [0.6, 0.2], [1, 0]], shape: s-curve}}
  - prompt: suspense
    weight: {curve: {input: danger, points: [[0, 0], [0.5, 1], [1, 0.6]], shape: sine}}
controls:
  density: {curve: {input: {node: peril}, points: [[0, 0.25], [1, 0.8]]}}
  brightness: {curve: {input: danger, points: [[0, 0.35], [1, 0.6]]}}
states:
  driven_by: mode
  initial: explore
  list:
    explore: {}
    tension:
      mix:
        - {prompt: suspense, weight: 1}
        - {prompt: wander, weight: {invert: {param: danger}}}
      controls: {bpm: 110}
    combat:
      mix:
        - {prompt: battle, weight: 1}
        - {prompt: heroic, weight: {multiply: [0.6, {param: intensity}]}}
      controls:
        bpm: 172
        density: {curve: {input: {node: peril}, points: [[0, 0.7], [1, 1]]}}
        brightness: 0.7
transitions:
  - {from: any, to: any, quantize: bar, fade: 1 bar, mode: blend}
  - {from: any, to: combat, quantize: bar, fade: 2 beats, mode: crossfade}
  - {from: combat, to: any, quantize: bar, fade: 2 bars, mode: crossfade}
stingers:
  victory: {prompt: fanfare, quantize: bar, length: 2 bars, cooldown: 8, duck: -12, gain: 0}
intensity: {decay: 0.15, hold: 2.0}
triggers:
  enemy_down: {bump: 0.25}
  boss_defeated: {bump: 1.0, stinger: victory, set_state: explore}
failsafe: {after: 60, glide: 5}
"""

INSTALLATION_YAML = """
cadenza_graph: 1
name: listening-room
control_rate: 100
parameters:
  motion:
    type: continuous
    min: 0
    max: 1
    default: 0
    safe: 0
    filter: {one_euro: {min_cutoff: 0.8, beta: 0.4}}
    smoothing: {attack: 1.5, release: 6.0, slew: 0.5}
  presence:
    type: continuous
    min: 0
    max: 1
    default: 0
    safe: 0
    filter: {hysteresis: {low: 0.3, high: 0.6}}
    smoothing: {attack: 2.0, release: 8.0}
  light:
    type: continuous
    min: 0
    max: 1000
    default: 300
    safe: 300
    filter: {one_euro: {min_cutoff: 0.3, beta: 0.001}}
    smoothing: {attack: 4.0, release: 4.0}
  pos_x: {type: continuous, min: 0, max: 1, default: 0.5, safe: 0.5, smoothing: {attack: 1.0, release: 1.0}}
  pos_y: {type: continuous, min: 0, max: 1, default: 0.5, safe: 0.5, smoothing: {attack: 1.0, release: 1.0}}
prompts:
  stillness: "calm ambient drone with airy pads"
  breath: "dreamy ambient pads with soft bells"
  pulse: "minimal downtempo with soft percussion"
  shimmer: "bright shimmering arpeggio"
  rain: "rain texture with distant piano"
mix:
  - pad:
      x: pos_x
      y: pos_y
      mode: idw
      power: 2
      points: {stillness: [0, 0], breath: [1, 0], rain: [0, 1], shimmer: [1, 1]}
  - prompt: pulse
    weight: {multiply: [{param: presence}, {curve: {input: motion, points: [[0, 0], [0.3, 0.4], [1, 1.5]], shape: exp}}]}
default_mix: {stillness: 1}
controls:
  density: {clamp: {value: {add: [0.1, {multiply: [0.7, {param: motion}]}]}, min: 0, max: 0.8}}
  brightness: {curve: {input: light, points: [[0, 0.15], [200, 0.35], [1000, 0.8]], shape: log}}
  bpm: {curve: {input: motion, points: [[0, 70], [1, 96]]}}
  mute_drums: {curve: {input: presence, points: [[0, 1], [0.5, 1], [0.51, 0], [1, 0]], shape: constant}}
failsafe: {after: 20, glide: 8}
"""

RACING_YAML = """
cadenza_graph: 1
name: racing
control_rate: 100
parameters:
  speed: {type: continuous, min: 0, max: 320, default: 0, smoothing: {attack: 0.4, release: 1.2}}
  position: {type: discrete, min: 1, max: 8, default: 8}
  lap: {type: discrete, min: 1, max: 3, default: 1}
prompts:
  cruise: "uplifting synthwave"
  chase: "energetic drum and bass"
  lead: "triumphant trance with bright lead"
  final: "intense aggressive techno"
nodes:
  pace: {curve: {input: speed, points: [[0, 0], [120, 0.3], [250, 0.85], [320, 1]], shape: s-curve}}
  winning: {curve: {input: position, points: [[1, 1], [3, 0.3], [8, 0]], shape: exp}}
mix:
  - blend:
      input: {node: pace}
      prompts: [[cruise, 0.0], [chase, 0.7], [lead, 1.0]]
  - prompt: lead
    weight: {multiply: [{node: winning}, {node: pace}]}
  - prompt: final
    weight: {curve: {input: lap, points: [[2, 0], [3, 0.8]], shape: constant}}
controls:
  bpm: {curve: {input: {node: pace}, points: [[0, 100], [1, 174]]}}
  density: {max: [{node: pace}, {multiply: [0.9, {param: intensity}]}]}
  brightness: {add: [0.3, {multiply: [0.5, {node: pace}]}]}
intensity: {decay: 0.2, hold: 1.5}
triggers:
  overtake: {bump: 0.4}
  crash: {bump: -0.5}
"""


def action_game() -> GraphBuilder:
    g = GraphBuilder("action-game", control_rate=100)
    danger = g.continuous("danger", min=0, max=1, default=0, attack=0.8, release=3.0)
    health = g.discrete("health", min=0, max=100, default=100)
    mode = g.labeled("mode", ["explore", "tension", "combat"], default="explore")
    wander = g.prompt("wander", "calm ambient pads with soft piano")
    suspense = g.prompt("suspense", "dark tense cinematic strings")
    battle = g.prompt("battle", "aggressive drum and bass")
    heroic = g.prompt("heroic", "epic orchestral brass")
    fanfare = g.prompt("fanfare", "triumphant orchestral brass fanfare")
    peril = g.node("peril", maximum(danger, invert(health.curve([(0, 0), (40, 1)]))))
    g.weight(wander, danger.curve([(0, 1), (0.6, 0.2), (1, 0)], shape="s-curve"))
    g.weight(suspense, danger.curve([(0, 0), (0.5, 1), (1, 0.6)], shape="sine"))
    g.control("density", peril.curve([(0, 0.25), (1, 0.8)]))
    g.control("brightness", danger.curve([(0, 0.35), (1, 0.6)]))
    g.states_driven_by(mode)
    explore = g.state("explore")
    g.state("tension", mix=[weight(suspense, 1), weight(wander, 1 - danger)], controls={"bpm": 110})
    combat = g.state("combat", mix=[weight(battle, 1), weight(heroic, 0.6 * INTENSITY)],
                     controls={"bpm": 172, "density": peril.curve([(0, 0.7), (1, 1)]), "brightness": 0.7})
    g.initial_state(explore)
    g.transition(quantize="bar", fade="1 bar", mode="blend")
    g.transition(target=combat, quantize="bar", fade="2 beats", mode="crossfade")
    g.transition(source=combat, quantize="bar", fade="2 bars", mode="crossfade")
    victory = g.stinger("victory", prompt=fanfare, quantize="bar", length="2 bars", cooldown=8, duck=-12, gain=0)
    g.intensity(decay=0.15, hold=2.0)
    g.trigger("enemy_down", bump=0.25)
    g.trigger("boss_defeated", bump=1.0, stinger=victory, set_state=explore)
    g.failsafe(after=60, glide=5)
    return g


def installation() -> GraphBuilder:
    g = GraphBuilder("listening-room")
    motion = g.continuous("motion", safe=0, one_euro=(0.8, 0.4), attack=1.5, release=6.0, slew=0.5)
    presence = g.continuous("presence", safe=0, hysteresis=(0.3, 0.6), attack=2.0, release=8.0)
    light = g.continuous("light", max=1000, default=300, safe=300, one_euro=(0.3, 0.001), attack=4.0, release=4.0)
    pos_x = g.continuous("pos_x", default=0.5, safe=0.5, attack=1.0, release=1.0)
    pos_y = g.continuous("pos_y", default=0.5, safe=0.5, attack=1.0, release=1.0)
    stillness = g.prompt("stillness", "calm ambient drone with airy pads")
    breath = g.prompt("breath", "dreamy ambient pads with soft bells")
    pulse = g.prompt("pulse", "minimal downtempo with soft percussion")
    shimmer = g.prompt("shimmer", "bright shimmering arpeggio")
    rain = g.prompt("rain", "rain texture with distant piano")
    g.pad(pos_x, pos_y, {stillness: (0, 0), breath: (1, 0), rain: (0, 1), shimmer: (1, 1)}, mode="idw", power=2)
    g.weight(pulse, presence * motion.curve([(0, 0), (0.3, 0.4), (1, 1.5)], shape="exp"))
    g.default_mix({stillness: 1})
    g.control("density", clamp(0.1 + 0.7 * motion, 0, 0.8))
    g.control("brightness", light.curve([(0, 0.15), (200, 0.35), (1000, 0.8)], shape="log"))
    g.control("bpm", motion.curve([(0, 70), (1, 96)]))
    g.control("mute_drums", presence.curve([(0, 1), (0.5, 1), (0.51, 0), (1, 0)], shape="constant"))
    g.failsafe(after=20, glide=8)
    return g


def racing() -> GraphBuilder:
    g = GraphBuilder("racing")
    speed = g.continuous("speed", max=320, attack=0.4, release=1.2)
    position = g.discrete("position", min=1, max=8, default=8)
    lap = g.discrete("lap", min=1, max=3)
    cruise, chase = g.prompt("cruise", "uplifting synthwave"), g.prompt("chase", "energetic drum and bass")
    lead, final = g.prompt("lead", "triumphant trance with bright lead"), g.prompt("final", "intense aggressive techno")
    pace = g.node("pace", speed.curve([(0, 0), (120, 0.3), (250, 0.85), (320, 1)], shape="s-curve"))
    winning = g.node("winning", position.curve([(1, 1), (3, 0.3), (8, 0)], shape="exp"))
    g.blend(pace, [(cruise, 0.0), (chase, 0.7), (lead, 1.0)])
    g.weight(lead, winning * pace)
    g.weight(final, lap.curve([(2, 0), (3, 0.8)], shape="constant"))
    g.control("bpm", pace.curve([(0, 100), (1, 174)]))
    g.control("density", maximum(pace, 0.9 * INTENSITY))
    g.control("brightness", 0.3 + 0.5 * pace)
    g.intensity(decay=0.2, hold=1.5)
    g.trigger("overtake", bump=0.4)
    g.trigger("crash", bump=-0.5)
    return g


@pytest.mark.parametrize("text, build", [(ACTION_GAME_YAML, action_game), (INSTALLATION_YAML, installation),
                                         (RACING_YAML, racing)], ids=["action_game", "installation", "racing"])
@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_hand_written_graphs_rebuilt_in_code_load_equal(tmp_path: Path, text: str, build: Callable[[], GraphBuilder],
                                                        suffix: str) -> None:
    loader = pytest.importorskip("cadenza.runtime.graph.loader")
    want = loader.loads_graph(text, source="<hand-written>")
    path = build().save(tmp_path / f"graph{suffix}")
    got = dataclasses.replace(loader.load_graph(path), source=want.source)
    _assert_same_graph(got, want)


def test_exports_satisfy_the_published_json_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_module = pytest.importorskip("cadenza.runtime.graph.schema")
    schema = schema_module.graph_json_schema()
    for g in (build_full(), action_game(), installation(), racing()):
        jsonschema.validate(json.loads(g.to_json()), schema)
        jsonschema.validate(yaml.safe_load(g.to_yaml()), schema)


# ------------------------------------------------- the builder refuses at the call what check refuses (issue 11)
@pytest.mark.parametrize("call, where", [
    (lambda g, a: g.control("scale", "H minor"), "controls.scale"),
    (lambda g, a: g.control("bpm", 300), "controls.bpm"),
    (lambda g, a: g.control("density", 2), "controls.density"),
    (lambda g, a: g.state("s", controls={"bpm": 20}), "states.list.s.controls.bpm"),
    (lambda g, a: g.weight(a, -1), "mix[0].weight"),
    (lambda g, a: g.stinger("s", prompt=a, length="601 bars"), "stingers.s.length"),
    (lambda g, a: g.stinger("s", prompt=a, length="0 bars"), "stingers.s.length"),
    (lambda g, a: g.prompt("long", "x" * 1001), "prompts.long"),
    (lambda g, a: g.prompt("five", 5), "prompts.five"),
])
def test_the_builder_refuses_at_the_call_what_check_refuses(call: Callable[[GraphBuilder, Any], object],
                                                             where: str) -> None:
    g = GraphBuilder("b")
    a = g.prompt("a", "dark techno")
    with pytest.raises(GraphError) as info:
        call(g, a)
    assert info.value.where == where
    assert g.to_dict() == {"cadenza_graph": 1, "name": "b", "control_rate": 100, "prompts": {"a": "dark techno"}}


def test_a_graph_without_a_name_or_prompts_is_refused() -> None:
    with pytest.raises(GraphError):
        GraphBuilder(None)  # type: ignore[arg-type]
    with pytest.raises(GraphError, match="no prompts"):
        GraphBuilder("empty").to_dict()


def test_the_builders_defaults_are_the_formats() -> None:
    """A stinger built with defaults is the stinger a hand-written file gets with none (cooldown 0.1 s, not 0)."""
    from cadenza.graph_format import SECTIONS

    g = GraphBuilder("d")
    a = g.prompt("a", "dark techno")
    g.stinger("s", prompt=a)
    g.state("x")
    g.transition()
    stinger, transition = g.to_dict()["stingers"]["s"], g.to_dict()["transitions"][0]
    for section, written in (("stinger", stinger), ("transition", transition)):
        for key, value in written.items():
            if key not in ("prompt",):
                assert value == SECTIONS[section].keys[key].default, (section, key)
    assert stinger["cooldown"] == 0.1


@pytest.mark.parametrize("content, line, words", [
    (b"", 1, "the file is empty: a style graph starts with 'cadenza_graph: 1'"),
    (b"cadenza_graph: 1\nprompts: {a: caf\xe9}\n", 2, "not UTF-8 text (byte 0xe9)"),
])
def test_load_graph_of_an_unreadable_file_says_what_check_says(tmp_path: Path, content: bytes, line: int,
                                                                words: str) -> None:
    """The SDK reads the file itself: its refusal is check's line, file:line first, not a codec's message."""
    from cadenza.sdk._base import graph_request
    from cadenza.sdk.errors import GraphInvalid

    path = tmp_path / "g.yaml"
    path.write_bytes(content)
    check = subprocess.run([sys.executable, "-m", "cadenza", "graph", "check", str(path)], capture_output=True,
                           text=True, timeout=60)
    with pytest.raises(GraphInvalid) as info:
        graph_request(str(path))
    assert str(info.value) == f"{path}:{line}: {check.stdout.strip().split(': ', 1)[1]}"
    assert words in str(info.value)
