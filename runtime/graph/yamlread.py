"""The safe YAML reader of style-graph files: text → plain data, with the line of every value and key.

One job: turn the text of a graph file (YAML, or JSON, which is a subset)
into plain data (dicts, lists, strings, numbers, booleans, ``None``) for
:func:`cadenza.graph_format.validate`, and remember where each value was, so
that every problem can be printed as ``file:line path: message``.

Why it is safe on any input:

1. PyYAML's *safe* parser turns the text into events, and this module builds
   the data from them itself, with an explicit stack: nothing is constructed
   from tags (any tag but the standard ``!!str``/``!!int``/``!!float``/
   ``!!bool``/``!!null``/``!!map``/``!!seq`` is an error), aliases are
   rejected outright (so a "billion laughs" file fails at its first
   ``*alias``), nesting deeper than :data:`MAX_DEPTH` and more than
   :data:`MAX_VALUES` values stop the read at once. No recursion happens.
2. Plain scalars follow the YAML 1.2 core schema, which JSON is a subset of:
   ``true``/``false``, ``null``/``~``, numbers (``1e3`` included) — so ``no``,
   ``on`` and ``1:30`` stay text. Keys are the text as written. Duplicate keys
   are problems, not silently overwritten.
3. :class:`Tree` keeps, by dotted path (``mix[1].weight``), each value's line,
   each key's line, and the text of every scalar that is not a string as
   written (``1e3``, ``.nan``, ``yes``), so that messages quote the file and
   a name written ``1`` is the text ``"1"``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from cadenza.graph_format import EMPTY_GRAPH, join, undecodable
from cadenza.runtime.graph.issues import GraphIssue, InvalidGraph

__all__ = ["MAX_DEPTH", "MAX_ISSUES", "MAX_VALUES", "Tree", "decode_text", "parse_tree", "size_text"]

MAX_DEPTH = 100  # mappings and lists inside each other
MAX_VALUES = 20_000  # scalars, mappings and lists in the whole file (a rich graph has a few hundred)
MAX_ISSUES = 200  # reading stops after this many problems


@dataclass
class Tree:
    """A graph file read into plain data, with where each part of it was."""

    data: Any = None
    lines: dict[str, int] = field(default_factory=dict)  # value path → line (1-based)
    key_lines: dict[str, int] = field(default_factory=dict)  # path of a key's value → the key's line
    spelling: dict[str, str] = field(default_factory=dict)  # path → text as written, for non-string scalars
    issues: list[GraphIssue] = field(default_factory=list)  # problems that do not stop the read (duplicate keys)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built with it: faster, same events
_STD_TAG = "tag:yaml.org,2002:"
_CONTROL_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUES = frozenset(("true", "True", "TRUE"))
_FALSES = frozenset(("false", "False", "FALSE"))
_INT_RE = re.compile(r"[-+]?[0-9]+")
_OCT_RE = re.compile(r"0o[0-7]+")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF_RE = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)")
_NOT_TEXT_STARTS = frozenset("0123456789+-.~nNtTfF")  # how null, booleans and numbers can start
_END_EVENTS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_VALUE_EVENTS = (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.AliasEvent)


def size_text(n: int) -> str:
    """``1.5 MiB``, ``12 KiB``, ``300 bytes``."""
    if n >= 1 << 20:
        return f"{n / (1 << 20):.4g} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.4g} KiB"
    return f"{n} bytes"


def decode_text(data: bytes, file: str) -> str:
    """UTF-8 (with or without a byte-order mark) → text, or :class:`InvalidGraph` naming the line of the bad byte."""
    problem = undecodable(data)
    if problem is not None:
        raise InvalidGraph([GraphIssue(file, problem[0], "", problem[1])])
    return data.decode("utf-8-sig")


def _int(text: str, base: int = 10) -> int | float:
    try:
        return int(text, base)
    except ValueError:  # more digits than Python converts: as a float it is ±inf, reported as not finite
        return float(text) if base == 10 else math.inf


def _plain(text: str) -> object:
    """A plain (unquoted, untagged) scalar, resolved by the YAML 1.2 core schema."""
    if text and text[0] not in _NOT_TEXT_STARTS:  # a word (most scalars of a graph): text at once
        return text
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    if _INT_RE.fullmatch(text):
        return _int(text)
    if _OCT_RE.fullmatch(text):
        return _int(text[2:], 8)
    if _HEX_RE.fullmatch(text):
        return _int(text[2:], 16)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    if _INF_RE.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    if _NAN_RE.fullmatch(text):
        return math.nan
    return text


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_STD_TAG):] if tag.startswith(_STD_TAG) else tag


def _tagged(tag: str, text: str) -> object:
    """A scalar with an explicit standard tag; raises ValueError when the text does not fit it."""
    name = tag[len(_STD_TAG):]
    value = _plain(text)
    if name == "str":
        return text
    if name == "null" and value is None:
        return None
    if name == "bool" and isinstance(value, bool):
        return value
    if name == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if name == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{text!r} is not a valid {_short_tag(tag)}")


_SCALAR_TAGS = frozenset(_STD_TAG + t for t in ("str", "int", "float", "bool", "null"))


def parse_tree(text: str, file: str) -> Tree:
    """Text → :class:`Tree`, built from PyYAML's safe parser events without recursion.

    Problems that do not stop the read (duplicate keys) are in
    :attr:`Tree.issues`; raises :class:`InvalidGraph` for control characters,
    syntax errors and anything unsafe.
    """
    m = _CONTROL_CHAR.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise InvalidGraph([GraphIssue(file, line, "", f"control character U+{ord(m.group()):04X} in the text: "
                                                       "a style graph is a YAML or JSON text file")])
    if text.lstrip().startswith("{"):
        # JSON: a literal tab can only be whitespace there (JSON strings escape theirs), and PyYAML's
        # pure-Python scanner rejects tabs as whitespace; spaces keep every line and column
        text = text.replace("\t", " ")
    tree = Tree()
    lines, key_lines, spelling = tree.lines, tree.key_lines, tree.spelling
    fatal: list[GraphIssue] = []
    soft = tree.issues

    def stop(line: int | None, message: str, path: str = "") -> NoReturn:
        raise InvalidGraph([*fatal, GraphIssue(file, line, path, message)])

    root: Any = None
    stack: list[dict[str, Any] | list[Any]] = []
    paths: list[str] = []  # the path of each open collection
    keys: list[tuple[str, int] | None] = []  # the pending key (text, line) of each open mapping
    bad_key = ("", 0)
    count = documents = 0
    try:
        for ev in yaml.parse(text, Loader=_YAML_LOADER):
            if isinstance(ev, _END_EVENTS):
                stack.pop()
                paths.pop()
                keys.pop()
                continue
            line = ev.start_mark.line + 1
            if not isinstance(ev, _VALUE_EVENTS):
                if isinstance(ev, yaml.DocumentStartEvent):
                    documents += 1
                    if documents > 1:
                        stop(line, "more than one YAML document ('---'): a style graph is a single document")
                continue  # stream start/end, document end
            # the path of this value (a key's path is its mapping's)
            parent = stack[-1] if stack else None
            pending = keys[-1] if stack else None
            if parent is None:
                path = ""
            elif type(parent) is list:
                path = f"{paths[-1]}[{len(parent)}]"
            else:
                path = paths[-1] if pending is None else join(paths[-1], pending[0])
            if isinstance(ev, yaml.AliasEvent):
                stop(line, f"alias *{ev.anchor} is not allowed: a style graph does not reuse values through "
                           "anchors and aliases (write the value out, or define it once under nodes: and use "
                           "{node: name})", path)
            count += 1
            if count > MAX_VALUES:
                stop(line, f"more than {MAX_VALUES:,} values: too large for a style graph")
            node: Any
            tag = ev.tag
            is_key = pending is None and type(parent) is dict
            if isinstance(ev, yaml.ScalarEvent):
                if tag is None and is_key:  # a key is its text as written
                    keys[-1] = (ev.value, line)
                    continue
                if tag is None:
                    node = _plain(ev.value) if ev.implicit[0] else ev.value
                elif tag == "!":
                    node = ev.value
                elif tag in _SCALAR_TAGS:
                    try:
                        node = _tagged(tag, ev.value)
                    except ValueError as exc:
                        fatal.append(GraphIssue(file, line, path, str(exc)))
                        node = ev.value
                else:
                    fatal.append(GraphIssue(file, line, path, _tag_message(tag)))
                    node = ev.value
                if is_key:
                    keys[-1] = (ev.value, line)
                    continue
                if not isinstance(node, str) and path not in spelling:
                    spelling[path] = ev.value
            else:
                is_map = isinstance(ev, yaml.MappingStartEvent)
                if tag not in (None, "!", _STD_TAG + ("map" if is_map else "seq")):
                    fatal.append(GraphIssue(file, line, path, _tag_message(tag)))
                node = {} if is_map else []
                if is_key:
                    fatal.append(GraphIssue(file, line, path, "a key must be a name, not a mapping or a list"))
                    keys[-1] = bad_key
            if path not in lines:
                lines[path] = line
            # attach it to its parent
            if parent is None:
                root = node
            elif isinstance(parent, list):
                parent.append(node)
            elif not is_key:
                key = pending
                assert key is not None
                keys[-1] = None
                if key is bad_key:
                    pass
                elif key[0] in parent:
                    soft.append(GraphIssue(file, key[1], path, f"duplicate key {key[0]!r} (first at line "
                                                               f"{key_lines[path]}): remove one of them"))
                else:
                    parent[key[0]] = node
                    key_lines.setdefault(path, key[1])
            if len(fatal) + len(soft) >= MAX_ISSUES:
                raise InvalidGraph([*fatal, *soft, GraphIssue(file, None, "", f"stopped after {MAX_ISSUES} problems")])
            if isinstance(node, (dict, list)):
                stack.append(node)
                paths.append(path)
                keys.append(None)
                if len(stack) > MAX_DEPTH:
                    stop(line, f"nested more than {MAX_DEPTH} levels deep: too deep for a style graph")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = None if mark is None else mark.line + 1
        if "nesting depth" in (exc.problem or ""):  # libyaml's own limit (1000 levels) met before ours
            stop(at, f"nested more than {MAX_DEPTH} levels deep: too deep for a style graph")
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        stop(at, f"syntax error: {what}")
    except yaml.YAMLError as exc:
        stop(None, f"syntax error: {exc}")
    if fatal:
        raise InvalidGraph(fatal)
    if root is None:
        stop(1, EMPTY_GRAPH)
    tree.data = root
    return tree


def _tag_message(tag: str) -> str:
    return (f"tag {_short_tag(tag)!r} is not allowed: a style graph is plain data (remove the tag; "
            "allowed: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq)")


