"""The one declaration of the graph format (``cadenza.graph_format``) on plain data, as the SDK uses it.

``validate`` takes what ``yaml.safe_load``/``json.loads`` give and returns every
issue by path, reading no file; without a reader's spelling the numbers in
messages are written from the Python values. The runtime's dataclass defaults
are the declaration's, and every playable graph of the corpus satisfies the
generated JSON Schema.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from cadenza import graph_format as gf
from cadenza.graph_format import Issue, validate
from cadenza.runtime.graph import spec
from cadenza.runtime.graph.convert import to_duration

CORPUS = Path(__file__).resolve().parent / "graphs" / "corpus"
MANIFEST: dict[str, dict[str, Any]] = yaml.safe_load((CORPUS / "MANIFEST.yaml").read_text())


def _graph(**sections: Any) -> dict[str, Any]:
    return {"cadenza_graph": 1, "prompts": {"calm": "calm pads"}, **sections}


def test_a_valid_graph_has_no_issue() -> None:
    assert validate(_graph(mix=[{"prompt": "calm", "weight": 0.5}], controls={"bpm": 120})) == []


def test_every_issue_is_collected_by_path_with_python_numbers() -> None:
    data = _graph(
        control_rate=5,
        parameters={"d": {"type": "continuous", "min": 1, "max": 1.0}, "z": {"type": "labeled", "labels": ["a"],
                                                                           "default": "b"}},
        mix=[{"prompt": "clam"}, {"prompt": "calm", "weight": {"curve": {"input": "d", "points": [[0, 0]]}}}],
        controls={"bmp": 120, "density": math.nan, "mute_bass": "yes"},
        transitions=[{}],
    )
    assert {(i.path, i.message) for i in validate(data)} == {
        ("control_rate", "5 is outside 10–1000 (updates per second)"),
        ("parameters.d.max", "impossible range: min 1 is not below max 1 (max must be greater than min)"),
        ("parameters.z.default", "default 'b' is not one of the labels (labels: a)"),
        ("mix[0].prompt", "undefined prompt 'clam' (did you mean 'calm'? defined: calm)"),
        ("mix[1].weight.curve.points", "a curve needs at least 2 points, got 1 (e.g. [[0, 0], [1, 1]])"),
        ("controls.bmp", f"unknown control 'bmp' (did you mean 'bpm'? valid: {', '.join(gf.CONTROL_NAMES)})"),
        ("controls.density", "expected a finite number, got nan"),
        ("controls.mute_bass", "expected true/false (or a number) or a value node, got the text 'yes'"),
        ("transitions", "transitions need states: add a states: section"),
    }


def test_issues_say_where_their_line_is() -> None:
    [unknown, missing] = validate({"cadenza_graph": 1, "failsafe": {"glide": 1, "aftr": 3}})
    assert (unknown.path, unknown.key, unknown.at) == ("failsafe.aftr", True, None)  # the key's own line
    assert (missing.path, missing.at, missing.key) == ("failsafe.after", "failsafe", False)  # its mapping's line
    assert str(missing) == "failsafe.after: missing required key 'after' (seconds without input before the glide)"


def test_an_unsupported_version_is_the_only_issue() -> None:
    assert validate({"cadenza_graph": 2, "bogus": 1}) == [Issue(
        "cadenza_graph", "unsupported version 2 (this Cadenza reads version 1: upgrade Cadenza, or write the file "
                         "for version 1)", final=True)]


def test_the_check_stops_after_max_issues() -> None:
    issues = validate(_graph(mix=[{"prompt": f"p{i}"} for i in range(50)]), max_issues=10)
    assert len(issues) == 11 and issues[-1].whole and issues[-1].message == "stopped after 10 problems"


def test_a_second_transition_names_the_first_by_path_or_line() -> None:
    data = _graph(states={"list": {"a": None}}, transitions=[{"to": "a"}, {"to": "a"}])
    [issue] = validate(data)
    assert issue.message == "a second rule from any to a (the first is at transitions[0]): remove one"
    [issue] = validate(data, lines={"transitions[0]": 7})
    assert "(the first is at line 7)" in issue.message


def test_the_spec_defaults_are_the_declarations() -> None:
    keys = {name: s.keys for name, s in gf.SECTIONS.items()}
    stinger, transition = spec.Stinger("s"), spec.Transition("any", "any")
    assert (stinger.quantize, stinger.length, stinger.cooldown, stinger.duck_db, stinger.gain_db) == (
        keys["stinger"]["quantize"].default, to_duration(keys["stinger"]["length"].default),
        keys["stinger"]["cooldown"].default, keys["stinger"]["duck"].default, keys["stinger"]["gain"].default)
    assert (transition.quantize, transition.fade, transition.mode) == (
        keys["transition"]["quantize"].default, to_duration(keys["transition"]["fade"].default),
        keys["transition"]["mode"].default)
    assert spec.Intensity() == spec.Intensity(keys["intensity"]["decay"].default, keys["intensity"]["hold"].default)
    assert spec.Failsafe(1.0).glide == keys["failsafe"]["glide"].default
    assert spec.OneEuro() == spec.OneEuro(*(keys["one_euro"][k].default for k in ("min_cutoff", "beta", "d_cutoff")))
    assert spec.Smoothing() == spec.Smoothing(keys["smoothing"]["attack"].default, keys["smoothing"]["release"].default,
                                              keys["smoothing"]["slew"].default)
    assert spec.Pad(spec.Const(0.0), spec.Const(0.0), ()).mode == keys["pad"]["mode"].default
    assert spec.Pad(spec.Const(0.0), spec.Const(0.0), ()).power == keys["pad"]["power"].default


def test_the_words_are_defined_once() -> None:
    from cadenza.proto import wire
    from cadenza.runtime.backends.base import ALL_CONTROLS

    assert gf.CONTROL_NAMES == wire.CONTROL_NAMES == ALL_CONTROLS == spec.CONTROL_NAMES
    assert set(gf.CONTROL_KINDS) == set(gf.CONTROL_NAMES)
    assert gf.CURVE_SHAPES == spec.CURVE_SHAPES and set(gf.CURVE_SHAPES) == set(wire.RAMP_SHAPE_NAMES.values())


@pytest.mark.parametrize("text, expected", [("2 beats", (2.0, "beats")), ("500 ms", (0.5, "s")), ("3", (3.0, "s")),
                                            ("1 bar", (1.0, "bars"))])
def test_parse_duration(text: str, expected: tuple[float, str]) -> None:
    assert gf.parse_duration(text) == expected


PLAYABLE = sorted(n for n, e in MANIFEST.items() if e["expect"] == "play" and n.endswith((".yaml", ".json")))


def test_playable_corpus_graphs_satisfy_the_generated_schema() -> None:
    """Read as the runtime reads them (YAML 1.2: ``1e12`` a number, ``no`` a text), every playable graph of
    the corpus is valid under the schema, and the declaration's checker finds nothing in it either."""
    jsonschema = pytest.importorskip("jsonschema")
    from cadenza.graph_format import graph_json_schema
    from cadenza.runtime.graph.yamlread import parse_tree

    validator = jsonschema.Draft202012Validator(graph_json_schema())
    for name in PLAYABLE:
        tree = parse_tree((CORPUS / name).read_text(encoding="utf-8-sig"), name)
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}" for e in validator.iter_errors(tree.data)]
        assert not errors, f"{name}:\n" + "\n".join(errors)
        assert validate(tree.data, spelling=tree.spelling) == [], name
    assert len(PLAYABLE) >= 30


# ----------------------------------------------------- what the data alone shows (issue 11, outside test)
@pytest.mark.parametrize("controls, path, words", [
    ({"bpm": 300}, "controls.bpm", "must be in 40–240"),
    ({"density": 2}, "controls.density", "must be in 0–1"),
    ({"brightness": -0.1}, "controls.brightness", "must be in 0–1"),
    ({"temperature": 0}, "controls.temperature", "must be > 0"),
    ({"top_k": 0}, "controls.top_k", "must be >= 1"),
    ({"top_k": 2**32}, "controls.top_k", "must be >= 1 and <= 4294967295"),  # what its uint32 field holds
    ({"seed": 2**64}, "controls.seed", "must be >= 0 and <= 18446744073709551615"),  # uint64
    ({"scale": "H minor"}, "controls.scale", "unknown scale 'H minor'"),
])
def test_a_literal_control_outside_its_range_is_refused_with_its_path(controls: dict[str, Any], path: str,
                                                                      words: str) -> None:
    [issue] = validate(_graph(controls=controls))
    assert issue.path == path and words in issue.message


def test_literals_reaching_a_control_through_nodes_and_labels_are_checked_computed_values_are_not() -> None:
    data = _graph(
        parameters={"mood": {"type": "labeled", "labels": ["A minor", "Q major"]}, "x": {"type": "continuous"}},
        nodes={"fast": 260, "key": {"param": "mood"}},
        controls={"bpm": {"node": "fast"}, "scale": {"node": "key"}, "density": {"multiply": ["x", 5]},
                  "brightness": {"curve": {"input": "x", "points": [[0, -3], [1, 9]]}}},
        states={"list": {"s": {"controls": {"bpm": {"when": {"param": "mood", "is": "A minor"}, "then": 120,
                                                         "else": 30}}}}},
    )
    assert sorted(i.path for i in validate(data)) == [
        "nodes.fast", "parameters.mood.labels[1]", "states.list.s.controls.bpm.else"]


def test_a_negative_literal_mix_weight_is_refused_a_computed_one_is_clamped() -> None:
    [issue] = validate(_graph(mix=[{"prompt": "calm", "weight": -1}]))
    assert issue.path == "mix[0].weight" and "must be >= 0" in issue.message
    assert validate(_graph(mix=[{"prompt": "calm", "weight": {"multiply": [-1, 1]}}])) == []


@pytest.mark.parametrize("length, ok", [("600 bars", True), ("601 bars", False), ("2400 beats", True),
                                        ("2401 beats", False), (3600, True), (3601, False), ("3601 s", False)])
def test_durations_are_capped_by_the_format(length: object, ok: bool) -> None:
    issues = validate(_graph(stingers={"s": {"prompt": "calm", "length": length}}))
    assert (issues == []) is ok, issues
    if not ok:
        assert "too long: at most 3600 s, 2400 beats or 600 bars" in issues[0].message


def test_the_prompt_limits_and_control_rate_are_the_formats() -> None:
    assert [i.path for i in validate(_graph(prompts={}))] == ["prompts"]
    assert [i.path for i in validate(_graph(prompts={f"p{i}": "calm" for i in range(65)}))] == ["prompts"]
    assert [i.path for i in validate(_graph(prompts={"a": "x" * 1001}))] == ["prompts.a"]
    assert [i.path for i in validate(_graph(prompts={"a": {"text": "x" * 1001}}))] == ["prompts.a.text"]
    [rate] = validate(_graph(control_rate=100.5))
    assert rate.path == "control_rate" and "near it: 96, 100, 120" in rate.message
    [none] = validate({"cadenza_graph": 1})
    assert none.path == "" and none.message.startswith("no prompts")


def test_an_empty_transitions_list_needs_no_states_as_every_empty_section() -> None:
    assert validate(_graph(transitions=[], parameters={}, nodes={}, stingers={}, triggers={})) == []
    assert [i.path for i in validate(_graph(transitions=[{"to": "a"}]))] == ["transitions"]


def test_a_huge_value_is_quoted_short() -> None:
    [issue] = validate(_graph(controls={"bpm": float("inf")}), spelling={"controls.bpm": "9" * 5000})
    assert len(issue.message) < 200 and "…(5,000 characters)" in issue.message


SCHEMA_CASES = [
    # (data, as the checker judges it) — the schema must agree where it can express the rule
    (_graph(transitions=[{"fade": "2 Bars"}], states={"list": {"a": {}}}), True),
    (_graph(transitions=[{"fade": "2 BEATS"}], states={"list": {"a": {}}}), True),
    (_graph(transitions=[{"fade": " 500 MS "}], states={"list": {"a": {}}}), True),
    (_graph(transitions=[{"fade": "2 parsecs"}], states={"list": {"a": {}}}), False),
    (_graph(stingers={"s": {"prompt": "calm", "length": "1 Bar"}}), True),
    (_graph(stingers={"s": {"prompt": "calm", "length": 0}}), False),
    (_graph(stingers={"s": {"prompt": "calm", "length": "0 bars"}}), False),
    (_graph(stingers={"s": {"prompt": "calm", "length": "0.0"}}), False),
    (_graph(stingers={"s": {"prompt": "calm", "length": 3601}}), False),
    ({"cadenza_graph": 1}, False),
    (_graph(prompts={}), False),
    (_graph(prompts={f"p{i}": "calm" for i in range(65)}), False),
    (_graph(prompts={f"p{i}": "calm" for i in range(64)}), True),
    (_graph(prompts={"a": "x" * 1001}), False),
    (_graph(prompts={"a": {"text": "x" * 1001}}), False),
    (_graph(prompts={"a": "x" * 1000}), True),
]


@pytest.mark.parametrize("data, ok", SCHEMA_CASES, ids=range(len(SCHEMA_CASES)))
def test_schema_and_check_agree_on_what_a_schema_can_say(data: dict[str, Any], ok: bool) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    assert (validate(data) == []) is ok, validate(data)
    errors = list(jsonschema.Draft202012Validator(gf.graph_json_schema()).iter_errors(data))
    assert (errors == []) is ok, [e.message[:200] for e in errors]
