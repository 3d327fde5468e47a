"""The JSON Schema (draft 2020-12) of the style-graph format, generated from its one declaration.

One job: :func:`graph_json_schema` turns the tables of
:mod:`.declaration` (:data:`~.declaration.SECTIONS`,
:data:`~.declaration.VALUE_NODES`, the words and defaults) into a
schema, so editors complete and check graph files (``# yaml-language-server:
$schema=...`` in YAML, ``"$schema"`` in JSON). Nothing here is written by
hand; the duration patterns are built from the parser's number and units
(any case). A schema cannot see what ties values together (references
between sections, cycles, min below max, labels against states), nor a
duration text's length in time, ``control_rate`` dividing the sample rate, a
scale's spelling, a literal control's range through nodes, or ``1.0`` versus
``1`` for the version (JSON Schema treats them as one number):
:func:`cadenza.graph_format.validate` and the runtime's loader check those
and report lines; ``cadenza graph check`` is the authority.

Every section of the declaration is a ``$defs`` entry of the same name; each
value node is ``node_<key>``; ``node``, ``mix`` and ``mix_entry`` gather them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cadenza.graph_format.declaration import (
    DURATION_DIGITS,
    DURATION_UNITS,
    FORMAT_VERSION,
    MAX_MUSICAL_S,
    INLINE_NODES,
    MIX_ENTRIES,
    NO_DEFAULT,
    SECTIONS,
    VALUE_NODES,
    AudioFile,
    Choice,
    Either,
    Key,
    Length,
    ListOf,
    MapOf,
    Mix,
    Name,
    Number,
    Point,
    Ref,
    Seconds,
    Section,
    Sub,
    Type,
    Value,
    Version,
)

__all__ = ["graph_json_schema", "schema_text"]

Schema = dict[str, Any]



def _any_case(word: str) -> str:
    """``bar`` → ``[bB][aA][rR]``: the parser reads units in any case, and a schema pattern has no flags."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def _pattern(units: list[str], *, optional: bool, positive: bool = False) -> str:
    """A duration text as :func:`~.declaration.parse_duration` reads it: its number (sign ``+`` only: a duration
    is never negative) and one of ``units`` in any case; ``positive``: not a zero such as ``0``, ``0.0 bars``."""
    alternatives = "|".join(_any_case(u) for u in sorted(units, key=len, reverse=True))
    zero = r"(?![+]?(0+(\.0*)?|\.0+)([eE][-+]?[0-9]+)?\s*[a-zA-Z]*\s*$)" if positive else ""
    return rf"^\s*{zero}[+]?{DURATION_DIGITS}\s*({alternatives}){'?' if optional else ''}\s*$"


_SECONDS_PATTERN = _pattern([u for u, (kind, _) in DURATION_UNITS.items() if kind == "s"], optional=False)
_DURATION_PATTERN = _pattern(list(DURATION_UNITS), optional=True)
_POSITIVE_PATTERN = _pattern(list(DURATION_UNITS), optional=True, positive=True)


def _ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def _type(t: Type) -> Schema:
    """The schema of one declared type."""
    if isinstance(t, Version):
        return {"const": FORMAT_VERSION}
    if isinstance(t, Number):
        out: Schema = {"type": "number"}
        for word, bound in (("minimum", t.lo), ("maximum", t.hi), ("exclusiveMinimum", t.above)):
            if bound is not None:
                out[word] = bound
        return out
    if isinstance(t, Seconds):
        return _ref("seconds")
    if isinstance(t, Length):
        return _ref("positive_duration" if t.positive else "duration")
    if isinstance(t, Name) and t.max_chars is not None:
        return {"anyOf": [{"type": "string", "minLength": 1, "maxLength": t.max_chars}, {"type": ["number", "boolean"]}]}
    if isinstance(t, (Name, Ref)):
        return _ref("name")
    if isinstance(t, AudioFile):
        return {"type": "string", "minLength": 1}
    if isinstance(t, Choice):
        return {"enum": list(t.options)}
    if isinstance(t, Value):
        return _ref("node")
    if isinstance(t, Sub):
        return _ref(t.section)
    if isinstance(t, Mix):
        return _ref("mix")
    if isinstance(t, MapOf):
        out = {"type": "object", "additionalProperties": _type(t.value)}
        if t.min_items:
            out["minProperties"] = t.min_items
        if t.max_items is not None:
            out["maxProperties"] = t.max_items
        return out
    if isinstance(t, ListOf):
        out = {"type": "array", "items": _type(t.item)}
        if t.min_items:
            out["minItems"] = t.min_items
        return out
    if isinstance(t, Point):
        first = {"type": "number"} if t.first is None else _type(t.first)
        return {"type": "array", "prefixItems": [first, {"type": "number"}], "items": False, "minItems": 2}
    if isinstance(t, Either):
        return {"anyOf": [_type(o) for o in t.options]}
    raise TypeError(f"no schema for {t!r}")  # pragma: no cover - a declaration error


def _key(key: Key) -> Schema:
    out = _type(key.type)  # a $ref beside annotations is fine in 2020-12
    if key.doc:
        out["description"] = key.doc
    if key.default is not NO_DEFAULT and key.default is not None:
        out["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    return out


def _section(s: Section) -> Schema:
    """A closed object: only the declared keys."""
    out: Schema = {"type": "object"}
    if s.doc:
        out["description"] = s.doc
    out["properties"] = {k: _key(key) for k, key in s.keys.items()}
    required = [k for k, key in s.keys.items() if key.required is not None]
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    if s.min_keys:
        out["minProperties"] = s.min_keys
    if s.one_of:
        out["oneOf"] = [{"required": [k]} for k in s.one_of]
    if s.requires:
        out["allOf"] = [{"if": {"properties": {k: {"const": v}}, "required": [k]}, "then": {"required": [other]}}
                        for k, v, other in s.requires]
    if s.nullable:
        return {"description": out.pop("description", ""), "anyOf": [{"type": "null"}, out]}
    return out


def _single(key: str, body: Schema, description: str) -> Schema:
    """A mapping with one key (a value node, a blend or pad mix entry)."""
    return {"type": "object", "description": description, "properties": {key: body}, "required": [key],
            "additionalProperties": False}


def graph_json_schema() -> Schema:
    """The JSON Schema of a style-graph file, version 1 (a fresh dict each call)."""
    defs: Schema = {
        "name": {"description": "A name defined in the graph, as written (a number such as 1 is the name '1').",
                 "anyOf": [{"type": "string", "minLength": 1}, {"type": ["number", "boolean"]}]},
        "seconds": {
            "description": "A time in seconds: a number, or a text such as '4 s' or '500 ms'.",
            "anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _SECONDS_PATTERN}],
        },
        "duration": {
            "description": "A length: seconds (a number, '4 s', '500 ms') or musical time ('2 beats', '1 bar'); at "
                           f"most {MAX_MUSICAL_S:g} s at the slowest tempo.",
            "anyOf": [{"type": "number", "minimum": 0, "maximum": MAX_MUSICAL_S},
                      {"type": "string", "pattern": _DURATION_PATTERN}],
        },
        "positive_duration": {
            "description": "A length above 0: seconds (a number, '4 s', '500 ms') or musical time ('2 beats', "
                           f"'1 bar'); at most {MAX_MUSICAL_S:g} s at the slowest tempo.",
            "anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": MAX_MUSICAL_S},
                      {"type": "string", "pattern": _POSITIVE_PATTERN}],
        },
    }
    sections: Mapping[str, Section] = SECTIONS
    for name, s in sections.items():
        if name != "graph" and name not in INLINE_NODES:
            defs[name] = _section(s)
    # value nodes: a literal, or a mapping with one key (when and select: with their other keys)
    defs["node"] = {
        "description": "A value: a literal, or a mapping with one key that computes it from parameters.",
        "oneOf": [_ref("node_literal"), *(_ref(f"node_{k}") for k in VALUE_NODES)],
    }
    defs["node_literal"] = {"type": ["number", "boolean", "string"],
                            "description": "A constant. Where an input is expected, a text names a parameter."}
    for key, (body, doc) in VALUE_NODES.items():
        if key in INLINE_NODES:  # when, select: the section is the node itself
            defs[f"node_{key}"] = _section(sections[key])
        else:
            defs[f"node_{key}"] = _single(key, _type(body), doc)
    defs["mix"] = {"type": "array", "items": _ref("mix_entry"),
                   "description": "Prompt weights; the weights of a prompt add up."}
    defs["mix_entry"] = {"oneOf": [
        _ref(section) if key == "prompt" else _single(key, _ref(section), sections[section].doc)
        for key, section in MIX_ENTRIES.items()]}
    top = _section(sections["graph"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Cadenza style graph",
        **top,
        "$defs": defs,
    }


def schema_text() -> str:
    """The schema as a committed file holds it."""
    return json.dumps(graph_json_schema(), indent=2, ensure_ascii=False) + "\n"
