"""Style-graph loading: every broken graph names its problem by line and path, valid graphs load
into the expected model, hostile files fail fast, the JSON Schema is current, ``cadenza graph`` works.

Each file in ``graphs/broken/`` starts with the issues it must produce, one comment line each::

    # expect: 15 mix[1].weight.curve.points[1]: x values must increase

(line, dotted path — empty for the whole file — and a fragment of the message); the file must
produce exactly these issues, no more.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cadenza import graph_format
from cadenza.errors import CadenzaError, GraphError
from cadenza.runtime.graph import loader, yamlread
from cadenza.runtime.graph.cli import add_graph_commands
from cadenza.runtime.graph.loader import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_ISSUES,
    MAX_VALUES,
    GraphIssue,
    InvalidGraph,
    load_graph,
    loads_graph,
    parse_duration,
)
from cadenza.runtime.graph.schema import SCHEMA_FILE, graph_json_schema, schema_text
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

GRAPHS = Path(__file__).parent / "graphs"
BROKEN = sorted((GRAPHS / "broken").glob("*.yaml"))
VALID = sorted((GRAPHS / "valid").glob("*.yaml")) + sorted((GRAPHS / "valid").glob("*.json"))
EXPECT = re.compile(r"#\s*expect:\s*(\d+)\s+(\S*?):\s+(.+)")

# JSON has no comments: the expectations of the broken JSON files are here
BROKEN_JSON = {
    "version_as_text.json": [(2, "cadenza_graph", "expected the format version 1, got the text '1'")],
    "unknown_key.json": [(6, "parameters.danger.maxx", "unknown key 'maxx' (did you mean 'max'?")],
    "syntax_error.json": [(5, "", "syntax error: while parsing a flow mapping")],
}


def expectations(path: Path) -> list[tuple[int, str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = EXPECT.fullmatch(line)
        if not m:
            break
        out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def issues_of(path: Path) -> list[GraphIssue]:
    with pytest.raises(InvalidGraph) as info:
        load_graph(path)
    return info.value.issues


def check_issues(path: Path, expected: list[tuple[int, str, str]]) -> None:
    issues = issues_of(path)
    got = "\n".join(map(str, issues))
    for line, where, fragment in expected:
        assert any(i.line == line and i.path == where and fragment in i.message for i in issues), (
            f"expected {line} {where}: {fragment}\ngot:\n{got}")
    assert len(issues) == len(expected), f"more issues than expected:\n{got}"


# ---------------------------------------------------------------- broken graphs
def test_there_are_enough_broken_graphs() -> None:
    assert len(BROKEN) + len(BROKEN_JSON) >= 25
    assert all(expectations(p) for p in BROKEN), [p.name for p in BROKEN if not expectations(p)]


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_graph_reports_its_issue(path: Path) -> None:
    check_issues(path, expectations(path))


@pytest.mark.parametrize("name", sorted(BROKEN_JSON))
def test_broken_json_graph_reports_its_issue(name: str) -> None:
    check_issues(GRAPHS / "broken" / name, BROKEN_JSON[name])


def test_every_issue_of_a_file_is_collected() -> None:
    path = GRAPHS / "broken" / "many_errors.yaml"
    with pytest.raises(InvalidGraph) as info:
        load_graph(path)
    err = info.value
    assert [i.line for i in err.issues] == [8, 13, 15, 18, 20, 22]
    lines = str(err).splitlines()
    assert len(lines) == 6
    assert all(line.startswith(f"{path}:") for line in lines)
    assert lines[3] == f"{path}:18 mix[0].prompt: undefined prompt 'clam' (did you mean 'calm'? defined: calm)"


def test_error_format_is_file_line_path_message() -> None:
    text = (GRAPHS / "broken" / "curve_points_order.yaml").read_text()
    with pytest.raises(GraphError) as info:
        loads_graph(text, source="battle.yaml")
    assert str(info.value) == "battle.yaml:15 mix[1].weight.curve.points[1]: x values must increase (0.8 after 0.9)"
    assert isinstance(info.value, CadenzaError)
    assert isinstance(info.value, InvalidGraph)
    assert info.value.issues == [GraphIssue("battle.yaml", 15, "mix[1].weight.curve.points[1]",
                                            "x values must increase (0.8 after 0.9)")]


def test_issue_of_the_whole_file_has_no_line_or_path() -> None:
    assert str(GraphIssue("g.yaml", None, "", "too big")) == "g.yaml: too big"
    assert str(GraphIssue("g.yaml", 3, "", "syntax error: x")) == "g.yaml:3: syntax error: x"


def test_unsupported_version_stops_before_reading_the_rest() -> None:
    with pytest.raises(InvalidGraph) as info:
        loads_graph("cadenza_graph: 7\nparameters: 12\nbogus: true\n")
    assert [str(i) for i in info.value.issues] == [
        "<string>:1 cadenza_graph: unsupported version 7 (this Cadenza reads version 1: upgrade Cadenza, or write "
        "the file for version 1)"]


@pytest.mark.parametrize(("text", "where", "fragment"), [
    ("", "", "the file is empty"),
    ("# only a comment\n", "", "the file is empty"),
    ("cadenza_graph: 1\nparameters: {p: {type: continuous, default: .nan}}\n", "parameters.p.default",
     "expected a finite number, got .nan"),
    ("cadenza_graph: 1\nprompts: {a: x}\nmix: [{prompt: a, weight: 1e400}]\n", "mix[0].weight",
     "expected a finite number, got 1e400"),
    ("cadenza_graph: 1\nprompts: {a: x}\nmix: [{prompt: a, weight: true}]\n", "mix[0].weight",
     "expected a number or a value node, got true"),
    ("cadenza_graph: 1\ncontrols: {scale: 3}\n", "controls.scale", "expected a text (such as 'C major')"),
    ("cadenza_graph: 1\nparameters: {d: {type: continuous}}\ncontrols: {scale: {param: d}}\n",
     "controls.scale.param", "got parameter 'd' (a number)"),
    ("cadenza_graph: 1\ncontrols: {bpm: {curve: {input: 3, points: [[0, 1], [1, 2]]}, shape: linear}}\n",
     "controls.bpm.shape", "unexpected key 'shape' beside 'curve': a value node has one key (put 'shape' inside"),
    ("cadenza_graph: 1\nparameters: {intensity: {type: continuous}}\n", "parameters.intensity", "is built in"),
    ("cadenza_graph: 1\nparameters: {d: {type: continuous}}\nnodes: {d: 1}\n", "nodes.d",
     "has the name of a parameter"),
    ("cadenza_graph: 1\nparameters: {p: {type: continuous, filter: {one_euro: {}, hysteresis: {low: 0, high: 1}}}}\n",
     "parameters.p.filter", "give one filter"),
    ("cadenza_graph: 1\nparameters: {p: {type: continuous, filter: {hysteresis: {low: 0.5, high: 2}}}}\n",
     "parameters.p.filter.hysteresis.high", "high 2 is outside the parameter's range 0–1"),
    ("cadenza_graph: 1\nparameters: {z: {type: labeled, labels: [a, b], min: 0}}\n", "parameters.z.min",
     "min applies to continuous and discrete parameters"),
    ("cadenza_graph: 1\nparameters: {z: {type: continuous, labels: [a, b]}}\n", "parameters.z.labels",
     "labels apply to labeled parameters only"),
    ("cadenza_graph: 1\nparameters: {z: {type: labeled, labels: [a, a]}}\n", "parameters.z.labels[1]",
     "duplicate label 'a'"),
    ("cadenza_graph: 1\nparameters: {z: {type: vague}}\n", "parameters.z.type",
     "unknown parameter type 'vague' (valid: continuous, discrete, labeled)"),
    ("cadenza_graph: 1\nparameters: {z: {type: continuous, smoothing: {slew: 0}}}\n", "parameters.z.smoothing.slew",
     "must be > 0, got 0"),
    ("cadenza_graph: 1\nprompts: {a: {text: x, audio: y.wav}}\n", "prompts.a", "give text or audio, not both"),
    ("cadenza_graph: 1\nprompts: {a: x, b: y}\ndefault_mix: {a: 0, b: 0}\n", "default_mix", "every weight is 0"),
    ("cadenza_graph: 1\nprompts: {a: x}\ndefault_mix: {a: -1}\n", "default_mix.a", "must be >= 0, got -1"),
    ("cadenza_graph: 1\nprompts: {a: x}\nmix: [{blend: {input: intensity, prompts: [[a, 0]]}}]\n",
     "mix[0].blend.prompts", "a blend needs at least 2 stops, got 1"),
    ("cadenza_graph: 1\nprompts: {a: x}\nmix: [{weight: 1}]\n", "mix[0].weight", "unknown mix entry key 'weight'"),
    ("cadenza_graph: 1\nprompts: {a: x}\nmix: [{prompt: a, weight: {add: []}}]\n", "mix[0].weight.add",
     "add needs at least one value"),
    ("cadenza_graph: 1\nprompts: {a: x}\nmix: [{prompt: a, weight: {clamp: {value: 1, min: 2, max: 1}}}]\n",
     "mix[0].weight.clamp.max", "impossible range: min 2 is not below max 1"),
    ("cadenza_graph: 1\nstates: {list: {a: {}, b: {}}}\ntransitions: [{from: a, to: b}, {from: a, to: b}]\n",
     "transitions[1]", "a second rule from a to b (the first is at line 3)"),
    ("cadenza_graph: 1\nstates: {list: {a: {}}, initial: c}\n", "states.initial", "undefined state 'c'"),
    ("cadenza_graph: 1\nstates: {list: {}}\n", "states.list", "no states"),
    ("cadenza_graph: 1\ntriggers: {t: {set_state: a}}\n", "triggers.t.set_state", "set_state needs states"),
    ("cadenza_graph: 1\ntriggers: {t: {}}\n", "triggers.t", "a trigger that does nothing"),
    ("cadenza_graph: 1\ntriggers: {t: {bump: 3}}\n", "triggers.t.bump", "3 is outside -1–1"),
    ("cadenza_graph: 1\nfailsafe: {after: 0}\n", "failsafe.after", "must be > 0 seconds"),
    ("cadenza_graph: 1\nfailsafe: {glide: 1}\n", "failsafe.after", "missing required key 'after'"),
    ("cadenza_graph: 1\nprompts: {a: x}\nstingers: {s: {prompt: a, duck: 6}}\n", "stingers.s.duck",
     "must be <= 0, got 6"),
    ("cadenza_graph: 1\nprompts: {a: x}\nstingers: {s: {prompt: a, length: 0 beats}}\n", "stingers.s.length",
     "length must be above 0"),
    ("cadenza_graph: 1\nintensity: {hold: -1}\n", "intensity.hold", "a time cannot be negative"),
    ("cadenza_graph: 1\nname: [a]\n", "name", "expected a name for the graph, got a list"),
    ("cadenza_graph: 1\nprompts: {a: x}\nmix: [{prompt: a, weight: {max: [{param: intensity}, wave]}}]\n",
     "mix[0].weight.max[1]", "undefined parameter 'wave'"),
    ("cadenza_graph: 1\nparameters: {z: {type: labeled, labels: [a, b]}}\ncontrols: "
     "{mute_bass: {when: {param: z, is: a, in: [b]}, then: true, else: false}}\n",
     "controls.mute_bass.when", "give is: <label> or in: [labels], one of them"),
    ("cadenza_graph: 1\nprompts: {a: x, b: y}\nmix: [{pad: {x: 0, y: 0, mode: bilinear, "
     "points: {a: [0, 0], b: [0, 0]}}}]\n", "mix[0].pad.points", "'a' and 'b' are both at (0, 0)"),
])
def test_more_problems_are_named(text: str, where: str, fragment: str) -> None:
    with pytest.raises(InvalidGraph) as info:
        loads_graph(text)
    assert any(i.path == where and fragment in i.message for i in info.value.issues), str(info.value)


# ----------------------------------------------------------------- valid graphs
def test_every_valid_graph_loads() -> None:
    assert len(VALID) >= 3
    for path in VALID:
        assert isinstance(load_graph(path), Graph)


def test_minimal_graph() -> None:
    path = GRAPHS / "valid" / "minimal.yaml"
    assert load_graph(path) == Graph(
        version=1, name="minimal", source=str(path), control_rate=100.0, parameters={},
        prompts={"calm": PromptDef("calm", text="calm ambient pads")}, nodes={},
        mix=(Weight("calm", Const(1.0)),), default_mix={"calm": 1.0}, controls={}, states={},
        states_driven_by=None, initial_state=None, transitions=(), stingers={}, intensity=Intensity(),
        triggers={}, failsafe=None,
    )


def test_full_graph_has_every_feature() -> None:
    path = GRAPHS / "valid" / "action_game.yaml"
    g = load_graph(path)
    here = (GRAPHS / "valid").resolve()
    assert (g.version, g.name, g.source, g.control_rate) == (1, "action-game", str(path), 50.0)
    assert g.parameters == {
        "danger": Parameter("danger", "continuous", 0.0, 1.0, 0.0, 0.0, smoothing=Smoothing(0.5, 0.5, 0.5),
                            filter=OneEuro(1.0, 0.02, 1.0)),
        "speed": Parameter("speed", "continuous", -1.0, 1.0, -1.0, filter=OneEuro()),
        "wave": Parameter("wave", "discrete", 1.0, 10.0, 1.0, 1.0),
        "zone": Parameter("zone", "labeled", default="forest", safe="cave", labels=("forest", "cave", "no")),
        "mode": Parameter("mode", "labeled", default="explore", labels=("explore", "combat", "boss")),
    }
    assert g.prompts == {
        "calm": PromptDef("calm", text="calm ambient pads"),
        "tense": PromptDef("tense", text="tense strings, low drones"),
        "battle": PromptDef("battle", text="aggressive drum and bass"),
        "boss": PromptDef("boss", text="epic choir and taiko"),
        "rain": PromptDef("rain", audio=str(here / "sounds" / "rain.wav")),
        "fanfare": PromptDef("fanfare", text="brass fanfare"),
    }
    threat = NodeRef("threat")
    assert g.nodes == {
        "threat": Op("max", (ParamRef("danger"), ParamRef("intensity"))),
        "relief": Op("invert", (threat,)),
        "pressure": Clamp(Op("add", (threat, Op("multiply", (ParamRef("wave"), Const(0.05))))), 0.0, 1.0),
        "quiet": Op("min", (NodeRef("relief"), Const(0.8))),
        "pulse": Curve(threat, ((0.0, 0.0), (0.5, 0.2), (1.0, 1.0)), "sine"),
        "step": Curve(ParamRef("wave"), ((1.0, 0.0), (5.0, 0.5), (10.0, 1.0)), "constant"),
    }
    assert g.mix == (
        Weight("calm", NodeRef("quiet")),
        Weight("rain", When("zone", ("forest", "no"), Const(0.5), Const(0.0))),
        Blend(NodeRef("pressure"), (("calm", 0.0), ("tense", 0.5), ("battle", 1.0))),
        Pad(ParamRef("speed"), ParamRef("danger"), (("tense", -1.0, 0.0), ("battle", 1.0, 1.0)), "idw", 3.0),
    )
    assert g.default_mix == {"calm": 1.0, "rain": 0.5}
    assert g.controls == {
        "bpm": Curve(ParamRef("danger"), ((0.0, 90.0), (1.0, 150.0)), "exp"),
        "density": Select("zone", (("cave", Const(0.3)),), NodeRef("pulse")),
        "brightness": Curve(NodeRef("step"), ((0.0, 0.2), (1.0, 0.9)), "log"),
        "scale": Select("zone", (("forest", Const("C major")), ("cave", Const("A minor")),
                                 ("no", Const("D dorian")))),
        "mute_bass": When("zone", ("cave",), Const(True), Const(False)),
        "mute_drums": Const(False),
        "notes": Const("C E G"),
        "drums": When("mode", ("boss",), Const(1.0), Const(0.0)),
        "temperature": Const(1.1),
        "top_k": Const(40.0),
        "guidance": Curve(ParamRef("intensity"), ((0.0, 3.0), (1.0, 5.0)), "linear"),
        "seed": Const(7.0),
    }
    assert g.states == {
        "explore": State("explore", (Weight("calm", Const(1.0)), Weight("rain", Const(0.3))),
                         (("bpm", Const(84.0)),)),
        "combat": State("combat", None, (("bpm", Curve(ParamRef("danger"), ((0.0, 120.0), (1.0, 160.0)),
                                                       "s-curve")),)),
        "boss": State("boss"),
    }
    assert (g.states_driven_by, g.initial_state) == ("mode", "explore")
    assert g.transitions == (
        Transition("any", "any", "bar", Duration(1.0, "bars"), "blend"),
        Transition("explore", "combat", "beat", Duration(2.0, "beats"), "crossfade"),
        Transition("any", "boss", "now", Duration(0.5, "s"), "blend"),
        Transition("combat", "any", "bar", Duration(4.0, "s"), "blend"),
    )
    assert g.stingers == {
        "victory": Stinger("victory", prompt="fanfare", quantize="bar", length=Duration(2.0, "bars"), cooldown=8.0,
                           duck_db=-9.0, gain_db=-1.5),
        "thunder": Stinger("thunder", audio=str(here / "sounds" / "thunder.flac"), quantize="now",
                           length=Duration(3.0, "s"), cooldown=1.5),
    }
    assert g.intensity == Intensity(0.2, 2.0)
    assert g.triggers == {
        "enemy_killed": TriggerDef("enemy_killed", 0.2),
        "boss_defeated": TriggerDef("boss_defeated", 0.5, "victory", "explore"),
        "lightning": TriggerDef("lightning", 0.0, "thunder"),
    }
    assert g.failsafe == Failsafe(30.0, 5.0)
    # every curve shape appears in it (s-curve in the combat state)
    shapes = {n.shape for n in [*g.nodes.values(), *g.controls.values()] if isinstance(n, Curve)}
    assert shapes | {"s-curve"} == set(graph_format.CURVE_SHAPES)


def test_json_graph() -> None:
    path = GRAPHS / "valid" / "installation.json"
    g = load_graph(path)
    assert g.name == "gallery"
    assert g.parameters["presence"].filter == Hysteresis(0.3, 0.7)
    assert g.parameters["x"].smoothing == Smoothing(1.0, 3.0)
    assert g.parameters["visitors"] == Parameter("visitors", "discrete", 0.0, 50.0, 0.0)
    assert g.prompts["void"] == PromptDef("void", audio=str(path.parent / "sounds" / "room tone.wav"))
    assert g.mix == (
        Pad(ParamRef("x"), ParamRef("y"), (("dawn", 0.0, 0.0), ("dusk", 1.0, 0.0), ("storm", 0.0, 1.0),
                                           ("void", 1.0, 1.0)), "bilinear", 2.0),
        Weight("storm", Curve(ParamRef("visitors"), ((0.0, 0.0), (20.0, 0.2), (50.0, 1.0)))),
    )
    assert g.default_mix == {"dawn": 1.0, "dusk": 1.0, "storm": 1.0, "void": 1.0}
    assert g.controls == {"density": ParamRef("presence"), "bpm": Const(72.0)}
    assert g.states == {"open": State("open"), "closed": State("closed", (Weight("void", Const(1.0)),))}
    assert (g.states_driven_by, g.initial_state) == (None, "open")
    assert g.transitions == (Transition("open", "closed", "now", Duration(10.0, "s")),)
    assert g.triggers == {"doors_close": TriggerDef("doors_close", set_state="closed"),
                          "doors_open": TriggerDef("doors_open", set_state="open")}
    assert g.failsafe == Failsafe(60.0, 2.0)


def test_json_and_yaml_of_the_same_graph_are_equal(tmp_path: Path) -> None:
    text = (GRAPHS / "valid" / "action_game.yaml").read_text()
    data = yaml.safe_load(text)
    as_json = tmp_path / "g.json"
    as_json.write_text(json.dumps(data, indent="\t"))
    as_yaml = tmp_path / "g.yaml"
    as_yaml.write_text(text)
    shutil.copytree(GRAPHS / "valid" / "sounds", tmp_path / "sounds")
    a, b = load_graph(as_yaml), load_graph(as_json)
    assert (a.parameters, a.nodes, a.mix, a.controls, a.states, a.stingers) == \
        (b.parameters, b.nodes, b.mix, b.controls, b.states, b.stingers)


def test_loads_graph_text_shorthand_and_base_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "cadenza_graph: 1\nprompts:\n  calm: soft pads\n  rain: {audio: sounds/rain.wav}\n"
    shutil.copytree(GRAPHS / "valid" / "sounds", tmp_path / "sounds")
    monkeypatch.chdir(tmp_path)
    g = loads_graph(text)  # no base_dir: relative to the working directory
    assert g.name == "" and g.source == "<string>"
    assert g.prompts == {"calm": PromptDef("calm", text="soft pads"),
                         "rain": PromptDef("rain", audio=str(tmp_path / "sounds" / "rain.wav"))}
    monkeypatch.chdir(GRAPHS)
    g = loads_graph(text.encode(), source="mem.yaml", base_dir=tmp_path)
    assert g.prompts["rain"].audio == str(tmp_path / "sounds" / "rain.wav")
    assert g.name == "mem"


def test_scalars_follow_yaml_1_2() -> None:
    g = loads_graph("cadenza_graph: 1\nparameters:\n  sw: {type: labeled, labels: [yes, no, on, off, 1:30]}\n"
                    "  big: {type: continuous, max: 1e3, default: 0x10}\n"
                    "prompts: {n: !!str 1984, y: yes}\n")
    assert g.parameters["sw"].labels == ("yes", "no", "on", "off", "1:30")
    assert (g.parameters["big"].max, g.parameters["big"].default) == (1000.0, 16.0)
    assert g.prompts["n"].text == "1984" and g.prompts["y"].text == "yes"


def test_anchors_without_aliases_are_harmless() -> None:
    g = loads_graph("cadenza_graph: 1\nprompts: &p {calm: soft}\n")
    assert list(g.prompts) == ["calm"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2 beats", Duration(2.0, "beats")), ("1 beat", Duration(1.0, "beats")), ("1 bar", Duration(1.0, "bars")),
    ("4bars", Duration(4.0, "bars")), ("4 s", Duration(4.0, "s")), ("500 ms", Duration(0.5, "s")),
    ("2.5", Duration(2.5, "s")), (" 3 seconds ", Duration(3.0, "s")), ("0 s", Duration(0.0, "s")),
])
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("2 beets", "did you mean 'beats'"), ("-1 s", "cannot be negative"), ("soon", "is not a duration"),
    ("", "is not a duration"), ("1e999 s", "not a finite duration"),
])
def test_parse_duration_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_duration(text)


# ------------------------------------------------------------------------ safety
@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Safety holds with PyYAML's C parser and with its pure-Python one."""
    if request.param == "libyaml":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("PyYAML built without libyaml")
        monkeypatch.setattr(yamlread, "_YAML_LOADER", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(yamlread, "_YAML_LOADER", yaml.SafeLoader)
    yield request.param


def fails_fast(path: Path, fragment: str) -> InvalidGraph:
    start = time.monotonic()
    with pytest.raises(InvalidGraph) as info:
        load_graph(path)
    elapsed = time.monotonic() - start
    assert elapsed < 1.0, f"took {elapsed:.2f} s"
    [issue] = info.value.issues  # one clear issue
    assert fragment in issue.message
    return info.value


def test_python_tag_never_runs(yaml_parser: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"cadenza_graph: 1\nname: !!python/object/apply:os.system ['touch {marker}']\n")
    err = fails_fast(path, "tag '!!python/object/apply:os.system' is not allowed")
    assert err.issues[0].line == 2 and err.issues[0].path == "name"
    assert not marker.exists()


def test_billion_laughs_fails_at_the_first_alias(yaml_parser: str, tmp_path: Path) -> None:
    lines = ["cadenza_graph: 1", "lol: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 30)]
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    err = fails_fast(path, "alias *l0 is not allowed")
    assert err.issues[0].line == 3


@pytest.mark.parametrize("style", ["flow-list", "flow-map", "block"])
def test_10000_deep_nesting(yaml_parser: str, tmp_path: Path, style: str) -> None:
    path = tmp_path / "deep.yaml"
    n = 10_000
    if style == "flow-list":
        path.write_text("cadenza_graph: 1\nnodes:\n  a: " + "[" * n + "]" * n + "\n")
    elif style == "flow-map":
        path.write_text("cadenza_graph: 1\nnodes:\n  a: " + "{a: " * n + "1" + "}" * n + "\n")
    else:  # block style: indentation grows, so it is the size limit or the depth that stops it
        path.write_text("".join(" " * i + "a:\n" for i in range(1_400)))
    err = fails_fast(path, f"nested more than {MAX_DEPTH} levels deep")
    assert err.issues[0].line is not None


def test_depth_limit_is_exact(tmp_path: Path) -> None:
    ok = "cadenza_graph: 1\nx: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n"
    with pytest.raises(InvalidGraph, match="unknown key 'x'"):  # deep enough, but allowed
        loads_graph(ok)
    too_deep = "cadenza_graph: 1\nx: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n"
    with pytest.raises(InvalidGraph, match=f"nested more than {MAX_DEPTH} levels deep"):
        loads_graph(too_deep)


def test_100_mb_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.write(b"cadenza_graph: 1\n")
        fh.truncate(100 * 1024 * 1024)  # sparse: instant to make
    err = fails_fast(path, "the file is 100 MiB, over the 1 MiB limit")
    assert err.issues[0].line is None


def test_size_limit_of_text(tmp_path: Path) -> None:
    with pytest.raises(InvalidGraph, match="over the 1 MiB limit"):
        loads_graph("#" * (MAX_BYTES + 1))
    with pytest.raises(InvalidGraph, match="over the 1 MiB limit"):
        loads_graph(b"#" * (MAX_BYTES + 1))
    with pytest.raises(InvalidGraph, match="over the 1 MiB limit"):
        loads_graph("é" * (MAX_BYTES // 2 + 1))  # counted in UTF-8 bytes


def test_binary_garbage(yaml_parser: str, tmp_path: Path) -> None:
    path = tmp_path / "garbage.yaml"
    path.write_bytes(random.Random(7).randbytes(64 * 1024))
    fails_fast(path, "not UTF-8 text")


def test_control_characters(yaml_parser: str, tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"cadenza_graph: 1\nname: a\x00b\n")
    err = fails_fast(path, "control character U+0000")
    assert err.issues[0].line == 2


def test_utf16_file_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "u16.yaml"
    path.write_text("cadenza_graph: 1\n", encoding="utf-16")
    fails_fast(path, "saved as UTF-8")


def test_too_many_values(yaml_parser: str, tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("cadenza_graph: 1\nmix: [" + ", ".join(["1"] * (MAX_VALUES + 10)) + "]\n")
    fails_fast(path, f"more than {MAX_VALUES:,} values")


def test_too_many_problems_stop_the_read(tmp_path: Path) -> None:
    prompts = ", ".join(f"p{i}: text {i}" for i in range(1_500))
    mix = ", ".join(f"{{prompt: q{i}}}" for i in range(3_000))
    path = tmp_path / "typos.yaml"
    path.write_text(f"cadenza_graph: 1\nprompts: {{{prompts}}}\nmix: [{mix}]\n")
    start = time.monotonic()
    with pytest.raises(InvalidGraph) as info:
        load_graph(path)
    assert time.monotonic() - start < 1.0
    assert len(info.value.issues) == MAX_ISSUES + 1
    assert str(info.value.issues[-1]) == f"{path}: stopped after {MAX_ISSUES} problems"


def test_node_cycles_of_a_long_chain_are_found_without_recursion() -> None:
    nodes = "\n".join(f"  n{i}: {{node: n{i + 1}}}" for i in range(3_000)) + "\n  n3000: {node: n0}\n"
    with pytest.raises(InvalidGraph) as info:
        loads_graph("cadenza_graph: 1\nnodes:\n" + nodes)
    [issue] = info.value.issues
    assert issue.path == "nodes.n0" and issue.message.startswith("nodes form a cycle: n0 → n1 → n2")


def test_recursion_error_becomes_a_graph_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise RecursionError

    monkeypatch.setattr(loader, "_parse_tree", boom)
    with pytest.raises(InvalidGraph, match="nested too deeply"):
        loads_graph("cadenza_graph: 1\n")


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.yaml"
    if kind == "directory":
        path.mkdir()
    with pytest.raises(InvalidGraph) as info:
        load_graph(path)
    assert str(info.value).startswith(f"{path}: ")
    assert ("No such file" if kind == "missing" else "not a regular file") in str(info.value)


# ------------------------------------------------------------------------ schema
def test_schema_file_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        f"{SCHEMA_FILE.name} is stale: run python -m cadenza.runtime.graph.schema --write")


def test_schema_closes_the_same_keys_as_the_declaration() -> None:
    """The schema is generated from the one declaration: each section closes exactly its declared keys."""
    s = graph_json_schema()
    d = s["$defs"]

    def keys(node: dict[str, Any]) -> tuple[str, ...]:
        node = next((alt for alt in node.get("anyOf", ()) if "properties" in alt), node)  # nullable sections
        assert node["additionalProperties"] is False
        return tuple(node["properties"])

    sections = graph_format.SECTIONS
    assert keys(s) == tuple(sections["graph"].keys)
    assert s["required"] == ["cadenza_graph", "prompts"]
    for name, section in sections.items():
        if name == "graph":
            continue
        node = d[f"node_{name}"] if name in graph_format.INLINE_NODES else d[name]
        assert keys(node) == tuple(section.keys), name
    assert keys(d["controls"]) == graph_format.CONTROL_NAMES
    assert [alt["$ref"].removeprefix("#/$defs/node_") for alt in d["node"]["oneOf"]] == [
        "literal", *graph_format.VALUE_NODES]
    assert d["curve"]["properties"]["shape"]["enum"] == list(graph_format.CURVE_SHAPES)
    assert d["curve"]["properties"]["shape"]["default"] == "linear"
    assert d["transition"]["properties"]["fade"]["default"] == "1 bar"
    assert d["parameter"]["properties"]["type"]["enum"] == list(graph_format.PARAMETER_TYPES)
    assert d["pad"]["properties"]["mode"]["enum"] == list(graph_format.PAD_MODES)


def _plain_data(path: Path) -> object:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


@pytest.mark.parametrize("path", VALID, ids=[p.name for p in VALID])
def test_valid_graphs_validate_against_the_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = graph_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(_plain_data(path))


@pytest.mark.parametrize("name", ["unknown_key.yaml", "unknown_control.yaml", "unknown_curve_shape.yaml",
                                  "missing_version.yaml", "pad_mode.yaml", "labeled_without_labels.yaml"])
def test_schema_rejects_what_it_can_see(name: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(graph_json_schema())
    assert not validator.is_valid(_plain_data(GRAPHS / "broken" / name))


# --------------------------------------------------------------------------- CLI
def run_cli(argv: list[str]) -> int:
    from cadenza.runtime.cli import _Parser

    parser = _Parser(prog="cadenza")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    add_graph_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(GRAPHS / "valid" / "action_game.yaml"), str(GRAPHS / "valid" / "minimal.yaml")]
    assert run_cli(["graph", "check", *paths]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{paths[0]}: ok (5 parameters, 6 prompts, 3 states)",
                   f"{paths[1]}: ok (0 parameters, 1 prompt, 0 states)"]


def test_cli_check_errors(capsys: pytest.CaptureFixture[str]) -> None:
    good = str(GRAPHS / "valid" / "minimal.yaml")
    bad = str(GRAPHS / "broken" / "many_errors.yaml")
    assert run_cli(["graph", "check", good, bad, "missing.yaml"]) == 2
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0] == f"{good}: ok (0 parameters, 1 prompt, 0 states)"
    assert out[1].startswith(f"{bad}:8 control_rate: ")
    assert len(out) == 1 + 6 + 1
    assert out[-1].startswith("missing.yaml: cannot read the file")
    assert captured.err == "cadenza graph check: 7 errors in 2 of 3 files\n"
    assert "Traceback" not in captured.out + captured.err


def test_cli_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["graph", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == graph_json_schema()


def test_cli_graph_needs_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(["graph"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("cadenza graph: error: ") and err.count("\n") == 1


def test_cli_leaves_room_for_more_subcommands() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="cadenza")
    graph_sub = add_graph_commands(parser.add_subparsers(dest="command"))
    graph_sub.add_parser("plot").set_defaults(func=lambda args: 0)
    args = parser.parse_args(["graph", "plot"])
    assert args.func(args) == 0



# ------------------------------------------------- audio files, confinement, runtime refusals at load
_STINGER_GRAPH = "cadenza_graph: 1\nprompts: {calm: calm ambient pads}\nstingers:\n  hit: {audio: %s}\n"


def _tone(path: Path, seconds: float, rate: int, channels: int = 1) -> None:
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(str(path), np.stack([x] * channels, 1) if channels > 1 else x, rate)


def test_stinger_audio_is_decoded_at_load_relative_to_the_graph(tmp_path: Path) -> None:
    (tmp_path / "sfx").mkdir()
    _tone(tmp_path / "sfx" / "hit.wav", 0.5, 24_000)
    g = tmp_path / "g.yaml"
    g.write_text(_STINGER_GRAPH % "sfx/hit.wav")
    graph = load_graph(g)
    path = str(tmp_path / "sfx" / "hit.wav")
    assert graph.stingers["hit"].audio == path
    pcm = graph.audio[path]
    assert pcm.dtype.name == "float32" and pcm.shape == (24_000, 2)  # 0.5 s resampled to 48 kHz, stereo
    # the same text with base_dir finds the same file; without it, the working directory is the base
    assert loads_graph(g.read_text(), "up.yaml", base_dir=tmp_path).stingers["hit"].audio == path


@pytest.mark.parametrize("make, why", [
    (lambda d: None, "file not found"),
    (lambda d: os.mkfifo(d / "x.wav"), "not a regular file (a FIFO)"),
    (lambda d: (d / "x.wav").write_text("RIFF? no"), "not an audio file"),
    (lambda d: (d / "x.wav").mkdir(), "not a regular file (a folder)"),
])
def test_bad_stinger_audio_is_an_issue_with_its_line(tmp_path: Path, make: Any, why: str) -> None:
    make(tmp_path)
    g = tmp_path / "g.yaml"
    g.write_text(_STINGER_GRAPH % "x.wav")
    t0 = time.monotonic()
    with pytest.raises(InvalidGraph) as info:
        load_graph(g)
    assert time.monotonic() - t0 < 5  # a FIFO is never opened for reading
    assert len(info.value.issues) == 1
    issue = info.value.issues[0]
    assert (issue.line, issue.path) == (4, "stingers.hit.audio") and why in issue.message


def test_files_policy_confines_audio_and_the_graph(tmp_path: Path) -> None:
    from cadenza.runtime.files import FilePolicy, FileRefused

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    _tone(outside / "secret.wav", 0.5, 8000)
    policy = FilePolicy.of([allowed])
    messages = []
    for target in ("../outside/secret.wav", "../outside/missing.wav", "/dev/zero", str(outside / "secret.wav")):
        with pytest.raises(InvalidGraph) as info:
            loads_graph(_STINGER_GRAPH % f'"{target}"', "up.yaml", base_dir=allowed, files=policy)
        issue = info.value.issues[0]
        assert (issue.line, issue.path) == (4, "stingers.hit.audio")
        messages.append(issue.message.replace(repr(target), "X"))
    # existence is not revealed: the same words for a file that exists and one that does not
    assert messages[0] == messages[1] and messages[2] == messages[3] and "outside the folders" in messages[0]
    (outside / "g.yaml").write_text(_STINGER_GRAPH % "secret.wav")
    with pytest.raises(FileRefused):
        load_graph(outside / "g.yaml", files=policy)
    (allowed / "g.yaml").write_text(_STINGER_GRAPH % "hit.wav")
    _tone(allowed / "hit.wav", 0.2, 48_000, channels=2)
    assert load_graph(allowed / "g.yaml", files=policy).stingers["hit"].audio == str(allowed / "hit.wav")


@pytest.mark.parametrize("text, line, path, words", [
    ('controls: {scale: "H superlocrian"}\n', 3, "controls.scale", "unknown scale 'H superlocrian'"),
    ("parameters:\n  mode: {type: labeled, labels: [explore, combat]}\ncontrols:\n  scale: {select: mode, cases: "
     '{explore: "C major", combat: "H superlocrian"}}\n', 6, "controls.scale.cases.combat", "unknown scale"),
    ("control_rate: 33\n", 3, "control_rate", "does not divide 48000"),
    ("stingers:\n  s: {prompt: calm, length: 1e308 bars}\n", 4, "stingers.s.length", "too long"),
])
def test_what_the_runtime_refuses_is_refused_at_load(text: str, line: int, path: str, words: str) -> None:
    with pytest.raises(InvalidGraph) as info:
        loads_graph("cadenza_graph: 1\nprompts: {calm: calm ambient pads}\n" + text, "g.yaml")
    issue = info.value.issues[0]
    assert (issue.file, issue.line, issue.path) == ("g.yaml", line, path) and words in issue.message


def test_a_graph_without_prompts_is_refused_with_its_line() -> None:
    with pytest.raises(InvalidGraph) as info:
        loads_graph("cadenza_graph: 1\nparameters: {x: {type: continuous}}\n", "g.yaml")
    assert str(info.value).startswith("g.yaml:1: no prompts")


def test_prompts_the_backend_cannot_embed_are_issues_with_their_line() -> None:
    from cadenza.runtime.backends import get_backend
    from cadenza.runtime.graph.runnable import embed_prompts
    from cadenza.runtime.mixing import PromptMixer

    g = loads_graph("cadenza_graph: 1\nprompts:\n  calm: calm ambient pads\n  odd: zzqx blorf\n", "g.yaml")
    with pytest.raises(InvalidGraph) as info:
        embed_prompts(g, PromptMixer(get_backend("synth")))
    issue = info.value.issues[0]
    assert (issue.line, issue.path) == (4, "prompts.odd") and "no known musical word" in issue.message
