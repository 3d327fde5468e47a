"""The JSON Schema (draft 2020-12) of the style-graph format, so editors complete and check graph files.

One job: :func:`graph_json_schema` describes, as a schema, the format that
:mod:`.loader` reads (version 1, documented in :mod:`.spec`). The loader stays
the authority: it also checks what a schema cannot — references between
sections, cycles among nodes, ranges between fields, state names against
labels — and reports lines.

``cadenza-graph.schema.json`` beside this module is this function's output,
committed so that editors can point at it (``# yaml-language-server:
$schema=...`` in YAML, ``"$schema"`` in JSON). A test fails when it is stale;
rewrite it with ``python -m cadenza.runtime.graph.schema --write``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cadenza.runtime.graph.loader import CONTROL_KINDS, PAD_MODES, PARAMETER_TYPES
from cadenza.runtime.graph.spec import BUILTIN_PARAMS, CURVE_SHAPES, FORMAT_VERSION, MODES, QUANTIZE

__all__ = ["SCHEMA_FILE", "graph_json_schema", "schema_text"]

SCHEMA_FILE = Path(__file__).with_name("cadenza-graph.schema.json")

Schema = dict[str, Any]

_SECONDS_PATTERN = r"^\s*[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*(s|sec|secs|seconds?|ms)\s*$"
_DURATION_PATTERN = (r"^\s*[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*"
                     r"(s|sec|secs|seconds?|ms|beats?|bars?)?\s*$")

_CONTROL_HELP = {
    "bpm": "Tempo in beats per minute (40–240).",
    "density": "Note and hit density, 0–1.",
    "brightness": "Timbral brightness, 0–1.",
    "scale": "Key and mode, such as 'A minor' or 'F# dorian'.",
    "mute_bass": "Silence the bass (true/false, or a number: above 0.5 is on).",
    "mute_drums": "Silence the drums (true/false, or a number: above 0.5 is on).",
    "notes": "The notes or chords to play.",
    "drums": "Drums only (true/false).",
    "temperature": "Sampling temperature of the model, > 0.",
    "top_k": "Top-k sampling of the model, an integer >= 1.",
    "guidance": "Classifier-free guidance of the model, >= 0.",
    "seed": "Random seed of the model, an integer >= 0.",
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def _obj(properties: dict[str, Schema], *, required: Sequence[str] = (), description: str = "",
         **extra: Any) -> Schema:
    """A closed object: only the listed keys."""
    out: Schema = {"type": "object"}
    if description:
        out["description"] = description
    out["properties"] = properties
    if required:
        out["required"] = list(required)
    out["additionalProperties"] = False
    out.update(extra)
    return out


def _num(description: str, **bounds: float) -> Schema:
    return {"type": "number", "description": description, **bounds}


def _single(key: str, body: Schema, description: str) -> Schema:
    """A value node written as a mapping with one key."""
    return _obj({key: body}, required=[key], description=description)


def graph_json_schema() -> Schema:
    """The JSON Schema of a style-graph file, version 1 (a fresh dict each call)."""
    defs: Schema = {
        "name": {"type": "string", "minLength": 1, "description": "A name defined in the graph."},
        "seconds": {
            "description": "A time in seconds: a number, or a text such as '4 s' or '500 ms'.",
            "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _SECONDS_PATTERN}],
        },
        "duration": {
            "description": "A length: seconds (a number, '4 s', '500 ms') or musical time ('2 beats', '1 bar').",
            "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DURATION_PATTERN}],
        },
        "quantize": {"enum": list(QUANTIZE), "description": "When a change starts: now, on the next beat or bar."},
        "point": {
            "type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "items": False,
            "minItems": 2, "description": "[x, y]",
        },
        # ------------------------------------------------------------ parameters
        "parameter": {
            **_obj({
                "type": {"enum": list(PARAMETER_TYPES),
                         "description": "continuous: any number in min–max; discrete: whole numbers in min–max; "
                                        "labeled: one of the labels."},
                "min": _num("Lowest value (continuous and discrete; default 0)."),
                "max": _num("Highest value, above min (continuous and discrete; default 1)."),
                "default": {"type": ["number", "string"],
                            "description": "Starting value: a number in min–max (default min), or a label "
                                           "(default the first)."},
                "safe": {"type": ["number", "string"],
                         "description": "Where the failsafe glides to when input stops (default: the default)."},
                "labels": {"type": "array", "items": _ref("name"), "minItems": 1, "uniqueItems": True,
                           "description": "The values of a labeled parameter."},
                "smoothing": _ref("smoothing"),
                "filter": _ref("filter"),
            }, required=["type"], description="A game or sensor value the graph reads."),
            "allOf": [{"if": {"properties": {"type": {"const": "labeled"}}, "required": ["type"]},
                       "then": {"required": ["labels"]}}],
        },
        "smoothing": _obj({
            "attack": {**_ref("seconds"), "description": "Seconds to reach ~99 % of a rise."},
            "release": {**_ref("seconds"), "description": "Seconds to reach ~99 % of a fall."},
            "slew": {"type": ["number", "null"], "exclusiveMinimum": 0,
                     "description": "The most units per second the value may move."},
        }, description="How fast the parameter follows its input."),
        "filter": {
            "description": "A sensor filter: One Euro (adaptive low-pass) or hysteresis (a Schmitt trigger).",
            "oneOf": [
                _single("one_euro", {
                    "anyOf": [{"type": "null"}, _obj({
                        "min_cutoff": _num("Cutoff in Hz at rest (default 1).", exclusiveMinimum=0),
                        "beta": _num("How much the cutoff rises with speed (default 0).", minimum=0),
                        "d_cutoff": _num("Cutoff in Hz of the speed estimate (default 1).", exclusiveMinimum=0),
                    })],
                }, "One Euro filter: smooth when slow, responsive when fast."),
                _single("hysteresis", _obj({
                    "low": _num("Falling below this snaps the value to min."),
                    "high": _num("Rising above this snaps the value to max; above low."),
                }, required=["low", "high"]), "Schmitt trigger: the value is min or max."),
            ],
        },
        # --------------------------------------------------------------- prompts
        "prompt": {
            "description": "A text prompt (a text, or {text: ..}) or an audio prompt ({audio: file}).",
            "oneOf": [
                {"type": "string", "minLength": 1},
                _obj({"text": {"type": "string", "minLength": 1}}, required=["text"]),
                _obj({"audio": {"type": "string", "minLength": 1,
                                "description": "A WAV or FLAC file, relative to the graph file."}},
                     required=["audio"]),
            ],
        },
        # ----------------------------------------------------------- value nodes
        "node": {
            "description": "A value: a literal, or a mapping with one key that computes it from parameters.",
            "oneOf": [_ref(f"node_{k}") for k in ("literal", "param", "node", "curve", "add", "multiply", "min",
                                                  "max", "invert", "clamp", "when", "select")],
        },
        "node_literal": {"type": ["number", "boolean", "string"],
                         "description": "A constant. Where an input is expected, a text names a parameter."},
        "node_param": _single("param", _ref("name"), "The value of a parameter ('intensity' is built in)."),
        "node_node": _single("node", _ref("name"), "The value of a node defined under nodes."),
        "node_curve": _single("curve", _obj({
            "input": {**_ref("node"), "description": "A parameter name or a value node."},
            "points": {"type": "array", "items": _ref("point"), "minItems": 2,
                       "description": "[[x, y], ...] with x increasing; flat beyond the ends."},
            "shape": {"enum": list(CURVE_SHAPES), "description": "How it goes between points (default linear)."},
        }, required=["input", "points"]), "A curve through points."),
        **{f"node_{op}": _single(op, {"type": "array", "items": _ref("node"), "minItems": 1}, text)
           for op, text in (("add", "The sum."), ("multiply", "The product."), ("min", "The smallest."),
                            ("max", "The largest."))},
        "node_invert": _single("invert", _ref("node"), "1 minus the value."),
        "node_clamp": _single("clamp", _obj({
            "value": _ref("node"),
            "min": _num("Lowest (default 0)."),
            "max": _num("Highest, above min (default 1)."),
        }, required=["value"]), "The value held within min–max."),
        "node_when": _obj({
            "when": {
                "description": "A labeled parameter is one label (is) or any of several (in).",
                "oneOf": [
                    _obj({"param": _ref("name"), "is": _ref("name")}, required=["param", "is"]),
                    _obj({"param": _ref("name"), "in": {"type": "array", "items": _ref("name"), "minItems": 1}},
                         required=["param", "in"]),
                ],
            },
            "then": _ref("node"),
            "else": _ref("node"),
        }, required=["when", "then", "else"], description="One value or another, by a labeled parameter."),
        "node_select": _obj({
            "select": {**_ref("name"), "description": "A labeled parameter."},
            "cases": {"type": "object", "additionalProperties": _ref("node"), "minProperties": 1,
                      "description": "label: value."},
            "default": {**_ref("node"), "description": "For the labels without a case."},
        }, required=["select", "cases"], description="A value per label of a labeled parameter."),
        # ------------------------------------------------------------------- mix
        "mix": {"type": "array", "items": _ref("mix_entry"),
                "description": "Prompt weights; the weights of a prompt add up."},
        "mix_entry": {"oneOf": [_ref("weight"), _ref("blend"), _ref("pad")]},
        "weight": _obj({
            "prompt": _ref("name"),
            "weight": {**_ref("node"), "description": "How much of the prompt (default 1)."},
        }, required=["prompt"], description="One prompt's weight."),
        "blend": _single("blend", _obj({
            "input": {**_ref("node"), "description": "A parameter name or a value node."},
            "prompts": {"type": "array", "minItems": 2, "description": "[[prompt, position], ...], positions "
                                                                      "increasing; each prompt peaks at its own.",
                        "items": {"type": "array", "prefixItems": [_ref("name"), {"type": "number"}],
                                  "items": False, "minItems": 2}},
        }, required=["input", "prompts"]), "Prompts crossfading along one input."),
        "pad": _single("pad", _obj({
            "x": _ref("node"),
            "y": _ref("node"),
            "mode": {"enum": list(PAD_MODES),
                     "description": "idw: inverse-distance weighting of points anywhere; bilinear: points on a "
                                    "grid's corners (default idw)."},
            "power": _num("Inverse-distance power (default 2).", exclusiveMinimum=0),
            "points": {"type": "object", "additionalProperties": _ref("point"), "minProperties": 2,
                       "description": "prompt: [x, y]."},
        }, required=["x", "y", "points"]), "Prompts placed on a 2-D pad."),
        "controls": _obj({name: {**_ref("node"), "description": _CONTROL_HELP[name]} for name in CONTROL_KINDS},
                         description="Musical controls as values of the parameters."),
        # ---------------------------------------------------- states and events
        "state": {
            "anyOf": [{"type": "null"}, _obj({
                "mix": {**_ref("mix"), "description": "Replaces the global mix in this state."},
                "controls": {**_ref("controls"), "description": "Overrides single controls in this state."},
            })],
        },
        "transition": _obj({
            "from": {**_ref("name"), "description": "A state, or 'any' (default)."},
            "to": {**_ref("name"), "description": "A state, or 'any' (default)."},
            "quantize": {**_ref("quantize"), "description": "Default bar."},
            "fade": {**_ref("duration"), "description": "Default 1 bar."},
            "mode": {"enum": list(MODES), "description": "blend: the same stream glides; crossfade: a second deck "
                                                         "starts the new style (default blend)."},
        }, description="How a change of state sounds; the most specific rule wins."),
        "stinger": {
            **_obj({
                "prompt": {**_ref("name"), "description": "A prompt of the graph."},
                "audio": {"type": "string", "minLength": 1, "description": "A WAV or FLAC file."},
                "quantize": {**_ref("quantize"), "description": "Default beat."},
                "length": {**_ref("duration"), "description": "Default 2 beats."},
                "cooldown": {**_ref("seconds"), "description": "Seconds before it can play again."},
                "duck": _num("dB taken off the music while it plays (default -6).", maximum=0),
                "gain": _num("dB of the stinger itself (default 0).", minimum=-120, maximum=24),
            }, description="A one-shot over the music."),
            "oneOf": [{"required": ["prompt"]}, {"required": ["audio"]}],
        },
        "trigger": _obj({
            "bump": _num("Added to intensity.", minimum=-1, maximum=1),
            "stinger": {**_ref("name"), "description": "A stinger to play."},
            "set_state": {**_ref("name"), "description": "A state to go to."},
        }, description="What a game event does.", minProperties=1),
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Cadenza style graph",
        "description": f"A Cadenza style graph, format version {FORMAT_VERSION}: how parameters of a game or "
                       "installation become prompt weights and musical controls.",
        "type": "object",
        "properties": {
            "$schema": {"type": "string", "description": "The address of this schema, for editors."},
            "cadenza_graph": {"const": FORMAT_VERSION, "description": "The format version."},
            "name": {"type": "string", "description": "The graph's name (default: the file name)."},
            "control_rate": _num("Evaluations per second (default 100).", minimum=10, maximum=1000),
            "parameters": {"type": "object", "additionalProperties": _ref("parameter"),
                           "propertyNames": {"minLength": 1, "not": {"enum": list(BUILTIN_PARAMS)}},
                           "description": "name: parameter."},
            "prompts": {"type": "object", "additionalProperties": _ref("prompt"), "description": "name: prompt."},
            "nodes": {"type": "object", "additionalProperties": _ref("node"),
                      "description": "name: value node, reusable with {node: name}."},
            "mix": _ref("mix"),
            "default_mix": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                            "description": "prompt: weight, used when every weight is 0 (default: all equal)."},
            "controls": _ref("controls"),
            "states": _obj({
                "driven_by": {**_ref("name"), "description": "A labeled parameter whose labels are the states."},
                "initial": {**_ref("name"), "description": "The first state (default: the first listed)."},
                "list": {"type": "object", "additionalProperties": _ref("state"), "minProperties": 1,
                         "propertyNames": {"minLength": 1, "not": {"const": "any"}},
                         "description": "name: overrides of the global mix and controls."},
            }, required=["list"], description="Named states of the music."),
            "transitions": {"type": "array", "items": _ref("transition")},
            "stingers": {"type": "object", "additionalProperties": _ref("stinger"), "description": "name: stinger."},
            "intensity": _obj({
                "decay": _num("Units per second it falls after hold (default 0.1).", minimum=0),
                "hold": {**_ref("seconds"), "description": "Seconds after a bump before it decays (default 1)."},
            }, description="The built-in intensity parameter, raised by triggers' bumps."),
            "triggers": {"type": "object", "additionalProperties": _ref("trigger"), "description": "name: trigger."},
            "failsafe": _obj({
                "after": {**_ref("seconds"), "description": "Seconds without input before the glide."},
                "glide": {**_ref("seconds"), "description": "Seconds to reach the safe values (default 2)."},
            }, required=["after"], description="What happens when input stops."),
        },
        "required": ["cadenza_graph"],
        "additionalProperties": False,
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(graph_json_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``--write``: rewrite the committed schema file; otherwise print the schema."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--write"]:
        SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
        print(f"wrote {SCHEMA_FILE}")
        return 0
    if args:
        print("usage: python -m cadenza.runtime.graph.schema [--write]", file=sys.stderr)
        return 2
    sys.stdout.write(schema_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
