"""Reads a style-graph file (YAML or JSON) into the :mod:`~cadenza.runtime.graph.spec` model.

One job: text → :class:`~cadenza.runtime.graph.spec.Graph`, or an
:class:`InvalidGraph` (a :class:`~cadenza.errors.GraphError`) that lists
*every* problem found, each as a :class:`GraphIssue` printed like::

    battle.yaml:14 mix[1].weight.curve.points[1]: x values must increase (0.8 after 0.9)

How it reads, and why it is safe on any input:

1. The size is checked before a byte is read (:data:`MAX_BYTES`); the bytes
   must be UTF-8 text without control characters.
2. PyYAML's *safe* parser turns the text into events, and this module builds
   a tree of plain values from them itself, with an explicit stack: nothing is
   constructed from tags (any tag but the standard ``!!str``/``!!int``/
   ``!!float``/``!!bool``/``!!null``/``!!map``/``!!seq`` is an error), aliases
   are rejected outright (so a "billion laughs" file fails at its first
   ``*alias``), nesting deeper than :data:`MAX_DEPTH` and more than
   :data:`MAX_VALUES` values stop the read at once. No recursion happens
   before the depth is known to be small.
3. Plain scalars follow the YAML 1.2 core schema, which JSON is a subset of:
   ``true``/``false``, ``null``/``~``, numbers (``1e3`` included) — so ``no``,
   ``on`` and ``1:30`` stay text. Names (labels, states, prompts) use the text
   as written. Duplicate keys are errors, not silently overwritten.
4. The tree is checked against the format of :mod:`.spec` (version 1) and
   converted into its dataclasses; every value keeps its line for the report.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, NoReturn, Union, cast

import yaml

from cadenza.runtime.files import FileOutside, FilePolicy, FileRefused
from cadenza.runtime.limits import MAX_PROMPT_CHARS, MAX_PROMPTS
from cadenza.runtime.graph.issues import GraphIssue, InvalidGraph
from cadenza.runtime.graph.spec import (
    BUILTIN_PARAMS,
    CONTROL_NAMES,
    CURVE_SHAPES,
    DEFAULT_STINGER_COOLDOWN_S,
    FORMAT_VERSION,
    MODES,
    QUANTIZE,
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

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_ISSUES",
    "MAX_VALUES",
    "GraphIssue",
    "InvalidGraph",
    "load_graph",
    "loads_graph",
    "parse_duration",
]

MAX_BYTES = 1 << 20  # a style graph is a hand-written file; 1 MiB is far beyond any real one
MAX_DEPTH = 100  # mappings and lists inside each other
MAX_VALUES = 20_000  # scalars, mappings and lists in the whole file (a rich graph has a few hundred)
MAX_ISSUES = 200  # reading stops after this many problems
_SUGGEST_MAX = 2_000  # "did you mean" only among this many names at most

# ------------------------------------------------------- the format's vocabulary
PARAMETER_TYPES = ("continuous", "discrete", "labeled")
PAD_MODES = ("idw", "bilinear")
STATE_ANY = "any"

TOP_KEYS = ("cadenza_graph", "name", "control_rate", "parameters", "prompts", "nodes", "mix", "default_mix",
            "controls", "states", "transitions", "stingers", "intensity", "triggers", "failsafe", "$schema")
PARAMETER_KEYS = ("type", "min", "max", "default", "safe", "labels", "smoothing", "filter")
SMOOTHING_KEYS = ("attack", "release", "slew")
FILTER_KEYS = ("one_euro", "hysteresis")
ONE_EURO_KEYS = ("min_cutoff", "beta", "d_cutoff")
HYSTERESIS_KEYS = ("low", "high")
PROMPT_KEYS = ("text", "audio")
NODE_KEYS = ("param", "node", "curve", "add", "multiply", "min", "max", "invert", "clamp", "when", "select")
CURVE_KEYS = ("input", "points", "shape")
CLAMP_KEYS = ("value", "min", "max")
WHEN_KEYS = ("when", "then", "else")
WHEN_CONDITION_KEYS = ("param", "is", "in")
SELECT_KEYS = ("select", "cases", "default")
WEIGHT_KEYS = ("prompt", "weight")
BLEND_KEYS = ("input", "prompts")
PAD_KEYS = ("x", "y", "mode", "power", "points")
MIX_ENTRY_KINDS = ("prompt", "blend", "pad")
STATES_KEYS = ("driven_by", "initial", "list")
STATE_KEYS = ("mix", "controls")
TRANSITION_KEYS = ("from", "to", "quantize", "fade", "mode")
STINGER_KEYS = ("prompt", "audio", "quantize", "length", "cooldown", "duck", "gain")
INTENSITY_KEYS = ("decay", "hold")
TRIGGER_KEYS = ("bump", "stinger", "set_state")
FAILSAFE_KEYS = ("after", "glide")

# what each control's value is: a number, a switch (true/false or a number) or a text
Kind = Literal["number", "switch", "text", "any"]
CONTROL_KINDS: dict[str, Kind] = {
    "bpm": "number", "density": "number", "brightness": "number", "scale": "text",
    "mute_bass": "switch", "mute_drums": "switch", "notes": "any", "drums": "switch",
    "temperature": "number", "top_k": "number", "guidance": "number", "seed": "number",
}
assert tuple(CONTROL_KINDS) == CONTROL_NAMES

_ParamType = Literal["continuous", "discrete", "labeled"]
_OpName = Literal["add", "multiply", "min", "max", "invert"]
_PadMode = Literal["idw", "bilinear"]
_Quantize = Literal["now", "beat", "bar"]
_Mode = Literal["blend", "crossfade"]

_DURATION_RE = re.compile(r"\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*")
_DURATION_UNITS: dict[str, tuple[Literal["s", "beats", "bars"], float]] = {
    "s": ("s", 1.0), "sec": ("s", 1.0), "secs": ("s", 1.0), "second": ("s", 1.0), "seconds": ("s", 1.0),
    "ms": ("s", 0.001), "beat": ("beats", 1.0), "beats": ("beats", 1.0), "bar": ("bars", 1.0), "bars": ("bars", 1.0),
}
_DURATION_HELP = "seconds (4, '4 s', '500 ms') or musical time ('2 beats', '1 bar')"


# ------------------------------------------------------------------ public API
def load_graph(path: str | os.PathLike[str], files: FilePolicy | None = None) -> Graph:
    """Read and validate the style graph at ``path`` (YAML, or JSON).

    Audio prompt and stinger files are resolved against the file's folder,
    read (regular files only, bounded) and decoded now: a missing or
    undecodable file is an issue with its file:line. ``files`` (a client's
    request): the graph and every audio file must lie inside its allowed
    folders — the graph's own refusal is raised as
    :class:`~cadenza.runtime.files.FileRefused`; ``None`` (the operator's
    command line): paths are resolved but not confined.
    Raises :class:`InvalidGraph` listing every problem found.
    """
    file = os.fspath(path)
    p = Path(file)

    def fail(message: str) -> NoReturn:
        raise InvalidGraph([GraphIssue(file, None, "", message)])

    if files is not None:
        files.resolve(file, where="path")  # FileOutside: the same words whether it exists or not
        try:
            resolved, data = files.read(file, where="path", max_bytes=MAX_BYTES)
        except FileOutside:
            raise
        except FileRefused as exc:
            fail(exc.message)
        return _load(_decode(data, file), file, resolved.parent, files)
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            fail("not a regular file (give the path of a .yaml or .json style graph)")
        if st.st_size > MAX_BYTES:
            fail(f"the file is {_size(st.st_size)}, over the {_size(MAX_BYTES)} limit for a style graph")
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        fail(f"cannot read the file: {exc.strerror or exc}")
    if len(data) > MAX_BYTES:
        fail(f"the file is over the {_size(MAX_BYTES)} limit for a style graph")
    return _load(_decode(data, file), file, Path(os.path.abspath(p.parent)), None)


def loads_graph(text: str | bytes, source: str = "<string>", base_dir: str | os.PathLike[str] | None = None,
                files: FilePolicy | None = None) -> Graph:
    """Validate a style graph given as text; ``source`` names it in errors.

    Relative audio paths are resolved against ``base_dir`` when given (the
    folder the text came from), else against the working directory; audio
    files are read and decoded as :func:`load_graph` does, confined by
    ``files`` when given.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise InvalidGraph([GraphIssue(source, None, "", f"the text is {_size(len(text))}, over the "
                                                             f"{_size(MAX_BYTES)} limit for a style graph")])
        text = _decode(text, source)
    elif len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        size = len(text.encode("utf-8", "surrogatepass"))
        raise InvalidGraph([GraphIssue(source, None, "", f"the text is {_size(size)}, over the "
                                                         f"{_size(MAX_BYTES)} limit for a style graph")])
    return _load(text, source, None if base_dir is None else Path(base_dir), files)


def parse_duration(text: str) -> Duration:
    """``"2 beats"``, ``"1 bar"``, ``"4 s"``, ``"500 ms"``, ``"3"`` (seconds) → :class:`Duration`.

    Raises :class:`ValueError` with the reason when the text is not a duration
    or is negative.
    """
    m = _DURATION_RE.fullmatch(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration: write {_DURATION_HELP}")
    number, unit = float(m.group(1)), m.group(2).lower()
    if unit and unit not in _DURATION_UNITS:
        raise ValueError(f"unknown unit {m.group(2)!r} in {text!r}{_choices(unit, ('s', 'ms', 'beats', 'bars'))}")
    kind, scale = _DURATION_UNITS[unit] if unit else ("s", 1.0)
    value = number * scale
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite duration")
    if value < 0:
        raise ValueError(f"a duration cannot be negative, got {text!r}")
    return Duration(value, kind)


# ------------------------------------------------------------ text → value tree
@dataclass(slots=True)
class _Scalar:
    line: int
    value: object  # None | bool | int | float | str
    text: str  # as written (without quotes)


@dataclass(slots=True)
class _Map:
    line: int
    items: dict[str, tuple[_Scalar, _Y]]  # key text → (key, value), in file order


@dataclass(slots=True)
class _Seq:
    line: int
    items: list[_Y]


_Y = Union[_Scalar, _Map, _Seq]

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


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.4g} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.4g} KiB"
    return f"{n} bytes"


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidGraph([GraphIssue(file, line, "", f"not UTF-8 text (byte 0x{data[exc.start]:02x}): a style "
                                                       "graph is a YAML or JSON text file saved as UTF-8")]) from None


def _int(text: str, base: int = 10) -> int | float:
    try:
        return int(text, base)
    except ValueError:  # more digits than Python converts: as a float it is ±inf, reported as not finite
        return float(text) if base == 10 else math.inf


def _plain(text: str) -> object:
    """A plain (unquoted, untagged) scalar, resolved by the YAML 1.2 core schema."""
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


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _parse_tree(text: str, file: str, lines: dict[str, int] | None = None) -> tuple[_Y, list[GraphIssue]]:
    """Text → value tree, built from PyYAML's safe parser events without recursion.

    Returns the tree and the problems that do not stop reading (duplicate
    keys); raises :class:`InvalidGraph` for syntax errors and anything unsafe.
    ``lines`` (when given) receives the line of every value by its path.
    """
    if lines is None:
        lines = {}
    fatal: list[GraphIssue] = []
    soft: list[GraphIssue] = []

    def stop(line: int | None, message: str, path: str = "") -> NoReturn:
        raise InvalidGraph([*fatal, GraphIssue(file, line, path, message)])

    root: _Y | None = None
    stack: list[_Map | _Seq] = []
    paths: list[str] = []  # the path of each open collection
    keys: list[_Scalar | None] = []  # the pending key of each open mapping
    bad_key = _Scalar(0, None, "")
    count = documents = 0
    try:
        for ev in yaml.parse(text, Loader=_YAML_LOADER):
            if isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                paths.pop()
                keys.pop()
                continue
            line = ev.start_mark.line + 1
            if isinstance(ev, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    stop(line, "more than one YAML document ('---'): a style graph is a single document")
                continue
            if not isinstance(ev, (yaml.ScalarEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent,
                                   yaml.AliasEvent)):
                continue  # stream start/end, document end
            # the path of this value (a key's path is its mapping's)
            if not stack:
                path = ""
            elif isinstance(stack[-1], _Seq):
                path = f"{paths[-1]}[{len(stack[-1].items)}]"
            else:
                pending = keys[-1]
                path = paths[-1] if pending is None else _join(paths[-1], pending.text)
            if isinstance(ev, yaml.AliasEvent):
                stop(line, f"alias *{ev.anchor} is not allowed: a style graph does not reuse values through "
                           "anchors and aliases (write the value out, or define it once under nodes: and use "
                           "{node: name})", path)
            lines.setdefault(path, line)
            count += 1
            if count > MAX_VALUES:
                stop(line, f"more than {MAX_VALUES:,} values: too large for a style graph")
            node: _Y
            tag = ev.tag
            if isinstance(ev, yaml.ScalarEvent):
                if tag is None:
                    value: object = _plain(ev.value) if ev.implicit[0] else ev.value
                elif tag == "!":
                    value = ev.value
                elif tag in _SCALAR_TAGS:
                    try:
                        value = _tagged(tag, ev.value)
                    except ValueError as exc:
                        fatal.append(GraphIssue(file, line, path, str(exc)))
                        value = ev.value
                else:
                    fatal.append(GraphIssue(file, line, path, _tag_message(tag)))
                    value = ev.value
                node = _Scalar(line, value, ev.value)
            else:
                is_map = isinstance(ev, yaml.MappingStartEvent)
                if tag not in (None, "!", _STD_TAG + ("map" if is_map else "seq")):
                    fatal.append(GraphIssue(file, line, path, _tag_message(tag)))
                node = _Map(line, {}) if is_map else _Seq(line, [])
            # attach it to its parent
            if not stack:
                root = node
            else:
                parent = stack[-1]
                if isinstance(parent, _Seq):
                    parent.items.append(node)
                elif keys[-1] is None:  # this node is a key
                    if isinstance(node, _Scalar):
                        keys[-1] = node
                    else:
                        fatal.append(GraphIssue(file, line, path, "a key must be a name, not a mapping or a list"))
                        keys[-1] = bad_key
                else:
                    key = keys[-1]
                    assert key is not None
                    keys[-1] = None
                    first = parent.items.get(key.text)
                    if key is bad_key:
                        pass
                    elif first is not None:
                        soft.append(GraphIssue(file, key.line, path, f"duplicate key {key.text!r} (first at line "
                                                                     f"{first[0].line}): remove one of them"))
                    else:
                        parent.items[key.text] = (key, node)
            if len(fatal) + len(soft) >= MAX_ISSUES:
                raise InvalidGraph([*fatal, *soft, GraphIssue(file, None, "", f"stopped after {MAX_ISSUES} problems")])
            if isinstance(node, (_Map, _Seq)):
                stack.append(node)
                paths.append(path)
                keys.append(None)
                if len(stack) > MAX_DEPTH:
                    stop(line, f"nested more than {MAX_DEPTH} levels deep: too deep for a style graph")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        if "nesting depth" in (exc.problem or ""):  # libyaml's own limit (1000 levels) met before ours
            stop(line, f"nested more than {MAX_DEPTH} levels deep: too deep for a style graph")
        what = " ".join(s for s in (exc.context, exc.problem) if s)
        stop(line, f"syntax error: {what}")
    except yaml.YAMLError as exc:
        stop(None, f"syntax error: {exc}")
    if fatal:
        raise InvalidGraph(fatal)
    if root is None or (isinstance(root, _Scalar) and root.value is None):
        stop(1, f"the file is empty: a style graph starts with 'cadenza_graph: {FORMAT_VERSION}'")
    return root, soft


def _tag_message(tag: str) -> str:
    return (f"tag {_short_tag(tag)!r} is not allowed: a style graph is plain data (remove the tag; "
            "allowed: !!str, !!int, !!float, !!bool, !!null, !!map, !!seq)")


def _load(text: str, file: str, base_dir: Path | None, files: FilePolicy | None) -> Graph:
    m = _CONTROL_CHAR.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise InvalidGraph([GraphIssue(file, line, "", f"control character U+{ord(m.group()):04X} in the text: "
                                                       "a style graph is a YAML or JSON text file")])
    if text.lstrip().startswith("{"):
        # JSON: a literal tab can only be whitespace there (JSON strings escape theirs), and PyYAML's
        # pure-Python scanner rejects tabs as whitespace; spaces keep every line and column
        text = text.replace("\t", " ")
    try:
        lines: dict[str, int] = {}
        tree, soft = _parse_tree(text, file, lines)
        graph = _Converter(file, base_dir, soft, files).graph(tree)
        graph = replace(graph, lines=lines)
        from cadenza.runtime.graph.runnable import check_runnable

        issues = check_runnable(graph)
        if issues:
            raise InvalidGraph(issues)
        return graph
    except RecursionError:  # cannot happen below MAX_DEPTH; kept so no input can crash the caller
        raise InvalidGraph([GraphIssue(file, None, "", "nested too deeply for a style graph")]) from None


# ----------------------------------------------------------- messages and hints
def _choices(word: str, options: Iterable[str], label: str = "valid", *, suggest: bool = True) -> str:
    """`` (did you mean 'attack'? valid: attack, release, slew)``."""
    choices = list(options)
    if not choices:
        return " (none are defined)"
    # difflib costs O(len(choices)) per call: bounded, so that a huge file of typos stays fast
    suggest = suggest and len(choices) <= _SUGGEST_MAX
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6) if suggest else []
    shown = ", ".join(choices[:20]) + (f", … ({len(choices)} in all)" if len(choices) > 20 else "")
    return f" ({f'did you mean {close[0]!r}? ' if close else ''}{label}: {shown})"


def _fmt(x: float) -> str:
    return f"{x:g}"


def _describe(y: _Y) -> str:
    if isinstance(y, _Map):
        return "a mapping"
    if isinstance(y, _Seq):
        return "a list"
    v = y.value
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return f"the number {y.text}"
    return f"the text {y.text!r}"


_KIND_TEXT: dict[Kind, str] = {
    "number": "a number or a value node",
    "switch": "true/false (or a number) or a value node",
    "text": "a text (such as 'C major') or a value node",
    "any": "a value or a value node",
}


# ------------------------------------------------------------- tree → Graph
class _Converter:
    """Checks the tree against the format and builds the spec dataclasses, collecting every issue."""

    def __init__(self, file: str, base_dir: Path | None, issues: list[GraphIssue],
                 files: FilePolicy | None = None) -> None:
        self.file = file
        self.base_dir = base_dir
        self.files = files
        self.audio: dict[str, object] = {}  # resolved stinger path → decoded PCM
        self.prompt_audio: dict[str, bytes] = {}  # resolved audio prompt path → its bytes
        self._audio_checked: dict[tuple[str, bool], str | None] = {}  # (name, stinger) → resolved, None: refused
        self._stinger_frames = 0  # decoded stinger audio so far
        self.issues = issues
        self.params: dict[str, Parameter] = {}
        # defined names, in file order (dicts as ordered sets: membership tests stay O(1) in big files)
        self.param_names: dict[str, None] = dict.fromkeys(BUILTIN_PARAMS)
        self.prompt_names: dict[str, None] = {}
        self.node_names: dict[str, None] = {}
        self.state_names: dict[str, None] = {}  # without 'any', which is reserved
        self.stinger_names: dict[str, None] = {}
        self.label_sets: dict[str, frozenset[str]] = {}
        self.long_hints = 0

    # ---------------------------------------------------------------- basics
    def hint(self, word: str, options: Iterable[str], label: str = "valid") -> str:
        """:func:`_choices`, with "did you mean" among long lists of names for the first few issues only."""
        choices = list(options)
        if len(choices) > 100:
            self.long_hints += 1
        return _choices(word, choices, label, suggest=len(choices) <= 100 or self.long_hints <= 20)

    def err(self, at: _Y | int | None, path: str, message: str) -> None:
        line = at if at is None or isinstance(at, int) else at.line
        self.issues.append(GraphIssue(self.file, line, path, message))
        if len(self.issues) >= MAX_ISSUES:
            self.issues.append(GraphIssue(self.file, None, "", f"stopped after {MAX_ISSUES} problems"))
            raise InvalidGraph(self.issues)

    def fields(self, y: _Y, path: str, allowed: Sequence[str], required: Mapping[str, str] | None = None,
               what: str = "") -> dict[str, _Y] | None:
        """A mapping's values by key; reports a non-mapping, unknown keys and missing required keys."""
        if not isinstance(y, _Map):
            self.err(y, path, f"expected {what or 'a mapping'} with keys {', '.join(allowed)}, got {_describe(y)}")
            return None
        out: dict[str, _Y] = {}
        for key, (knode, value) in y.items.items():
            if key in allowed:
                out[key] = value
            else:
                self.err(knode, _join(path, key), f"unknown key {key!r}{self.hint(key, allowed, 'valid keys')}")
        for key, hint in (required or {}).items():
            if key not in out:
                self.err(y, _join(path, key), f"missing required key {key!r}{f' ({hint})' if hint else ''}")
        return out

    def entries(self, y: _Y, path: str, what: str) -> list[tuple[str, _Scalar, _Y]]:
        """A name → value mapping's entries; reports a non-mapping and empty names."""
        if not isinstance(y, _Map):
            self.err(y, path, f"expected a mapping of {what}, got {_describe(y)}")
            return []
        out = []
        for key, (knode, value) in y.items.items():
            if not key.strip():
                self.err(knode, path, f"empty name in {what}")
                continue
            out.append((key, knode, value))
        return out

    def items(self, y: _Y, path: str, what: str) -> list[tuple[str, _Y]]:
        """A list's items with their paths; reports a non-list."""
        if not isinstance(y, _Seq):
            self.err(y, path, f"expected a list of {what}, got {_describe(y)}")
            return []
        return [(f"{path}[{i}]", item) for i, item in enumerate(y.items)]

    def number(self, y: _Y, path: str, *, lo: float | None = None, hi: float | None = None,
               above: float | None = None, what: str = "a number", why: str = "") -> float | None:
        """A finite number in [lo, hi] (and > above), or None after reporting why not."""
        if not isinstance(y, _Scalar) or isinstance(y.value, bool) or not isinstance(y.value, (int, float)):
            self.err(y, path, f"expected {what}, got {_describe(y)}")
            return None
        v = float(y.value)
        suffix = f" ({why})" if why else ""
        if not math.isfinite(v):
            self.err(y, path, f"expected a finite number, got {y.text}")
            return None
        if above is not None and v <= above:
            self.err(y, path, f"must be > {_fmt(above)}, got {y.text}{suffix}")
            return None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if lo is not None and hi is not None:
                self.err(y, path, f"{y.text} is outside {_fmt(lo)}–{_fmt(hi)}{suffix}")
            elif lo is not None:
                self.err(y, path, f"must be >= {_fmt(lo)}, got {y.text}{suffix}")
            else:
                self.err(y, path, f"must be <= {_fmt(hi or 0.0)}, got {y.text}{suffix}")
            return None
        return v

    def seconds(self, y: _Y, path: str, *, positive: bool = False) -> float | None:
        """Seconds ≥ 0 (> 0 when ``positive``): a number, ``"4 s"`` or ``"500 ms"``."""
        if isinstance(y, _Scalar) and isinstance(y.value, str):
            try:
                d = parse_duration(y.value)
            except ValueError as exc:
                self.err(y, path, f"{exc} (this one is in seconds)")
                return None
            if d.unit != "s":
                self.err(y, path, f"{y.text!r} is musical time, but this is in seconds (write e.g. 2, '2 s' "
                                  "or '500 ms'; beats and bars work for fade and length)")
                return None
            v: float | None = d.value
        else:
            v = self.number(y, path, what="seconds (a number, '4 s' or '500 ms')")
            if v is None:
                return None
            if v < 0:
                self.err(y, path, f"a time cannot be negative, got {y.text if isinstance(y, _Scalar) else v}")
                return None
        if positive and v == 0:
            self.err(y, path, "must be > 0 seconds, got 0")
            return None
        return v

    def duration(self, y: _Y, path: str) -> Duration | None:
        if isinstance(y, _Scalar) and isinstance(y.value, str):
            try:
                return parse_duration(y.value)
            except ValueError as exc:
                self.err(y, path, str(exc))
                return None
        v = self.number(y, path, what=f"a duration: {_DURATION_HELP}")
        if v is None:
            return None
        if v < 0:
            self.err(y, path, f"a duration cannot be negative, got {_fmt(v)}")
            return None
        return Duration(v, "s")

    def name(self, y: _Y, path: str, what: str = "a name") -> str | None:
        """A name as written (``no`` and ``1`` stay text), non-empty."""
        if not isinstance(y, _Scalar) or y.value is None or not y.text.strip():
            self.err(y, path, f"expected {what}, got {_describe(y)}")
            return None
        return y.text

    def choice(self, y: _Y, path: str, choices: Sequence[str], what: str) -> str | None:
        text = self.name(y, path, f"a {what} ({' | '.join(choices)})")
        if text is None:
            return None
        if text not in choices:
            self.err(y, path, f"unknown {what} {text!r}{self.hint(text, choices)}")
            return None
        return text

    def ref(self, y: _Y, path: str, what: str, defined: Collection[str]) -> str | None:
        """A reference to a defined name; reports an undefined one with the nearest names."""
        text = self.name(y, path, f"the name of a {what}")
        if text is None:
            return None
        if text not in defined:
            self.err(y, path, f"undefined {what} {text!r}{self.hint(text, defined, 'defined')}")
            return None
        return text

    def audio_path(self, y: _Y, path: str, *, stinger: bool = False) -> str | None:
        """The resolved path of an audio file, read and decoded now (stingers: kept in :attr:`audio`)."""
        if not isinstance(y, _Scalar) or not isinstance(y.value, str) or not y.value.strip() or "\x00" in y.value:
            self.err(y, path, f"expected the path of a WAV or FLAC file (relative to the graph file), "
                              f"got {'an empty path' if isinstance(y, _Scalar) and y.value == '' else _describe(y)}")
            return None
        from cadenza.runtime.graph import audio

        key = (y.value, stinger)
        if key not in self._audio_checked:
            why: str | None = None
            try:
                resolved, data = audio.read_audio(y.value, self.base_dir, self.files)
                if stinger:
                    pcm = audio.decode_stinger(data, resolved)
                    self._stinger_frames += pcm.shape[0]
                    if self._stinger_frames > audio.MAX_STINGER_AUDIO_S * audio.SAMPLE_RATE:
                        raise audio.AudioFileError(
                            f"the graph's stinger files add up to over {audio.MAX_STINGER_AUDIO_S:g} s of audio, "
                            "more than is kept in memory for one graph: use fewer or shorter files")
                    self.audio[str(resolved)] = pcm
                else:
                    audio.check_audio_prompt(data, resolved)
                    self.prompt_audio[str(resolved)] = data
                self._audio_checked[key] = str(resolved)
            except audio.AudioFileError as exc:
                why = exc.message
                self._audio_checked[key] = None
            if why is not None:
                self.err(y, path, why)
        resolved_name = self._audio_checked[key]
        return resolved_name

    # ------------------------------------------------------------------ graph
    def graph(self, root: _Y) -> Graph:
        f = self.fields(root, "", TOP_KEYS, what="a style graph: a mapping",
                        required={"cadenza_graph": f"the format version: add 'cadenza_graph: {FORMAT_VERSION}' "
                                                   "at the top"})
        if f is None:
            raise InvalidGraph(self.issues)
        if "cadenza_graph" in f:
            y = f["cadenza_graph"]
            if not (isinstance(y, _Scalar) and isinstance(y.value, int) and not isinstance(y.value, bool)):
                self.err(y, "cadenza_graph", f"expected the format version {FORMAT_VERSION}, got {_describe(y)}")
            elif y.value != FORMAT_VERSION:
                raise InvalidGraph([GraphIssue(self.file, y.line, "cadenza_graph",
                                               f"unsupported version {y.value} (this Cadenza reads version "
                                               f"{FORMAT_VERSION}: upgrade Cadenza, or write the file for version "
                                               f"{FORMAT_VERSION})")])
        if "$schema" in f:
            self.name(f["$schema"], "$schema", "the schema's address")
        name = ""
        if "name" in f:
            name = self.name(f["name"], "name", "a name for the graph") or ""
        elif not self.file.startswith("<"):
            name = Path(self.file).stem
        control_rate = 100.0
        if "control_rate" in f:
            control_rate = self.number(f["control_rate"], "control_rate", lo=10, hi=1000,
                                       why="updates per second") or control_rate

        # names first: anything may refer to anything defined anywhere in the file
        if "parameters" in f:
            for pname, knode, value in self.entries(f["parameters"], "parameters", "parameters"):
                p = self.parameter(pname, knode, value, f"parameters.{pname}")
                if p is not None:
                    self.params[pname] = p
        self.param_names = dict.fromkeys([*self.params, *BUILTIN_PARAMS])
        self.label_sets = {n: frozenset(p.labels) for n, p in self.params.items()}
        prompts: dict[str, PromptDef] = {}
        if "prompts" in f:
            entries = self.entries(f["prompts"], "prompts", "prompts")
            if len(entries) > MAX_PROMPTS:
                self.err(f["prompts"], "prompts", f"{len(entries):,} prompts, over the limit of {MAX_PROMPTS} a mix "
                                                  "may hold (each one is embedded and mixed at every tick)")
            for pname, _, value in entries:
                self.prompt_names[pname] = None
                pd = self.prompt(pname, value, f"prompts.{pname}")
                if pd is not None:
                    prompts[pname] = pd
        node_entries = self.entries(f["nodes"], "nodes", "value nodes") if "nodes" in f else []
        self.node_names = dict.fromkeys(n for n, _, _ in node_entries)
        stinger_entries = self.entries(f["stingers"], "stingers", "stingers") if "stingers" in f else []
        self.stinger_names = dict.fromkeys(n for n, _, _ in stinger_entries)
        states_y = f.get("states")
        state_list = states_y.items.get("list") if isinstance(states_y, _Map) else None
        if state_list is not None and isinstance(state_list[1], _Map):
            self.state_names = dict.fromkeys(k for k in state_list[1].items if k.strip() and k != STATE_ANY)

        nodes: dict[str, Node] = {}
        for nname, knode, value in node_entries:
            if nname in self.params or nname in BUILTIN_PARAMS:
                self.err(knode, f"nodes.{nname}", f"node {nname!r} has the name of a parameter: rename it "
                                                  "(a bare name in an input means the parameter)")
            n = self.value(value, f"nodes.{nname}", "any")
            if n is not None:
                nodes[nname] = n
        self.check_cycles(nodes, {n: k for n, k, _ in node_entries})

        mix = self.mix(f["mix"], "mix") if "mix" in f else ()
        default_mix = self.default_mix(f["default_mix"]) if "default_mix" in f else {p: 1.0 for p in prompts}
        controls = dict(self.controls(f["controls"], "controls")) if "controls" in f else {}
        states: dict[str, State] = {}
        driven_by = initial = None
        if states_y is not None:
            states, driven_by, initial = self.states(states_y)
        transitions: list[Transition] = []
        if "transitions" in f:
            if not states and states_y is None:
                self.err(f["transitions"], "transitions", "transitions need states: add a states: section")
            else:
                transitions = self.transitions(f["transitions"])
        stingers: dict[str, Stinger] = {}
        for sname, _, value in stinger_entries:
            s = self.stinger(sname, value, f"stingers.{sname}")
            if s is not None:
                stingers[sname] = s
        intensity = self.intensity(f["intensity"]) if "intensity" in f else Intensity()
        triggers: dict[str, TriggerDef] = {}
        if "triggers" in f:
            for tname, _, value in self.entries(f["triggers"], "triggers", "triggers"):
                t = self.trigger(tname, value, f"triggers.{tname}")
                if t is not None:
                    triggers[tname] = t
        failsafe = self.failsafe(f["failsafe"]) if "failsafe" in f else None

        if self.issues:
            raise InvalidGraph(self.issues)
        return Graph(
            version=FORMAT_VERSION, name=name, source=self.file, control_rate=control_rate,
            parameters=self.params, prompts=prompts, nodes=nodes, mix=mix, default_mix=default_mix,
            controls=controls, states=states, states_driven_by=driven_by, initial_state=initial,
            transitions=tuple(transitions), stingers=stingers, intensity=intensity, triggers=triggers,
            failsafe=failsafe, audio=self.audio, prompt_audio=self.prompt_audio,
        )

    # ------------------------------------------------------------ parameters
    def parameter(self, name: str, knode: _Scalar, y: _Y, path: str) -> Parameter | None:
        if name in BUILTIN_PARAMS:
            self.err(knode, path, f"{name!r} is built in (driven by triggers' bumps): choose another name")
            return None
        f = self.fields(y, path, PARAMETER_KEYS, {"type": " | ".join(PARAMETER_TYPES)}, "a parameter: a mapping")
        if f is None or "type" not in f:
            return None
        ptype = self.choice(f["type"], f"{path}.type", PARAMETER_TYPES, "parameter type")
        if ptype is None:
            return None
        if ptype == "labeled":
            return self.labeled(name, f, y, path)
        if "labels" in f:
            self.err(f["labels"], f"{path}.labels", f"labels apply to labeled parameters only (this one is {ptype}; "
                                                    "set type: labeled to use labels)")
        whole = ptype == "discrete"
        why = "a discrete parameter takes whole numbers"

        def num(key: str, fallback: float) -> float | None:
            if key not in f:
                return fallback
            v = self.number(f[key], f"{path}.{key}")
            if v is not None and whole and not v.is_integer():
                self.err(f[key], f"{path}.{key}", f"{_fmt(v)} is not a whole number ({why})")
                return None
            return v

        lo, hi = num("min", 0.0), num("max", 1.0)
        ok = lo is not None and hi is not None
        if lo is not None and hi is not None and lo >= hi:
            at = f.get("max") or f.get("min") or y
            self.err(at, f"{path}.{'max' if 'max' in f else 'min'}",
                     f"impossible range: min {_fmt(lo)} is not below max {_fmt(hi)} (max must be greater than min)")
            ok = False
        default = num("default", lo if lo is not None else 0.0)
        safe = num("safe", math.nan) if "safe" in f else None
        if ok and lo is not None and hi is not None:
            for key, v in (("default", default), ("safe", safe)):
                if key in f and v is not None and not lo <= v <= hi:
                    self.err(f[key], f"{path}.{key}", f"{key} {_fmt(v)} is outside the range "
                                                      f"{_fmt(lo)}–{_fmt(hi)} (min–max)")
        smoothing = self.smoothing(f["smoothing"], f"{path}.smoothing") if "smoothing" in f else Smoothing()
        filt = self.filter(f["filter"], f"{path}.filter", lo, hi) if "filter" in f else None
        if lo is None or hi is None or default is None:
            return None
        return Parameter(name, cast(_ParamType, ptype), min=lo, max=hi, default=default, safe=safe,
                         smoothing=smoothing or Smoothing(), filter=filt)

    def labeled(self, name: str, f: dict[str, _Y], y: _Y, path: str) -> Parameter | None:
        for key in ("min", "max", "smoothing", "filter"):
            if key in f:
                self.err(f[key], f"{path}.{key}", f"{key} applies to continuous and discrete parameters, not to "
                                                  "labeled ones")
        if "labels" not in f:
            self.err(y, f"{path}.labels", "missing required key 'labels' (a labeled parameter lists its labels, "
                                          "e.g. labels: [explore, combat])")
            return None
        labels: list[str] = []
        for p, item in self.items(f["labels"], f"{path}.labels", "labels"):
            label = self.name(item, p, "a label")
            if label is None:
                continue
            if label in labels:
                self.err(item, p, f"duplicate label {label!r}")
                continue
            labels.append(label)
        if not labels:
            if isinstance(f["labels"], _Seq):
                self.err(f["labels"], f"{path}.labels", "a labeled parameter needs at least one label")
            return None
        values: dict[str, str | None] = {"default": labels[0], "safe": None}
        for key in ("default", "safe"):
            if key in f:
                label = self.name(f[key], f"{path}.{key}", "one of the labels")
                if label is not None and label not in labels:
                    self.err(f[key], f"{path}.{key}", f"{key} {label!r} is not one of the labels"
                                                      f"{self.hint(label, labels, 'labels')}")
                    label = None
                values[key] = label
        if values["default"] is None:
            return None
        return Parameter(name, "labeled", default=values["default"], safe=values["safe"], labels=tuple(labels))

    def smoothing(self, y: _Y, path: str) -> Smoothing | None:
        f = self.fields(y, path, SMOOTHING_KEYS, what="smoothing: a mapping")
        if f is None:
            return None
        attack = self.seconds(f["attack"], f"{path}.attack") if "attack" in f else 0.0
        release = self.seconds(f["release"], f"{path}.release") if "release" in f else 0.0
        slew = None
        if "slew" in f and not (isinstance(f["slew"], _Scalar) and f["slew"].value is None):
            slew = self.number(f["slew"], f"{path}.slew", above=0.0, why="the most units per second")
            if slew is None:
                return None
        if attack is None or release is None:
            return None
        return Smoothing(attack, release, slew)

    def filter(self, y: _Y, path: str, lo: float | None, hi: float | None) -> OneEuro | Hysteresis | None:
        f = self.fields(y, path, FILTER_KEYS, what="a filter: a mapping")
        if f is None:
            return None
        if len(f) != 1:
            if not f and isinstance(y, _Map) and not y.items:
                self.err(y, path, "empty filter: give one_euro: {...} or hysteresis: {low: .., high: ..}")
            elif len(f) > 1:
                self.err(y, path, "give one filter, one_euro or hysteresis, not both")
            return None
        if "one_euro" in f:
            body = f["one_euro"]
            if isinstance(body, _Scalar) and body.value is None:
                return OneEuro()
            g = self.fields(body, f"{path}.one_euro", ONE_EURO_KEYS, what="one_euro: a mapping")
            if g is None:
                return None
            defaults = OneEuro()
            min_cutoff = (self.number(g["min_cutoff"], f"{path}.one_euro.min_cutoff", above=0.0, why="Hz")
                          if "min_cutoff" in g else defaults.min_cutoff)
            beta = self.number(g["beta"], f"{path}.one_euro.beta", lo=0.0) if "beta" in g else defaults.beta
            d_cutoff = (self.number(g["d_cutoff"], f"{path}.one_euro.d_cutoff", above=0.0, why="Hz")
                        if "d_cutoff" in g else defaults.d_cutoff)
            if min_cutoff is None or beta is None or d_cutoff is None:
                return None
            return OneEuro(min_cutoff, beta, d_cutoff)
        g = self.fields(f["hysteresis"], f"{path}.hysteresis", HYSTERESIS_KEYS, {"low": "", "high": ""},
                        what="hysteresis: a mapping")
        if g is None or "low" not in g or "high" not in g:
            return None
        low = self.number(g["low"], f"{path}.hysteresis.low")
        high = self.number(g["high"], f"{path}.hysteresis.high")
        if low is None or high is None:
            return None
        if low >= high:
            self.err(g["high"], f"{path}.hysteresis.high", f"impossible thresholds: low {_fmt(low)} is not below "
                                                           f"high {_fmt(high)} (high must be greater than low)")
            return None
        if lo is not None and hi is not None:
            for key, v in (("low", low), ("high", high)):
                if not lo <= v <= hi:
                    self.err(g[key], f"{path}.hysteresis.{key}", f"{key} {_fmt(v)} is outside the parameter's range "
                                                                 f"{_fmt(lo)}–{_fmt(hi)}")
                    return None
        return Hysteresis(low, high)

    # --------------------------------------------------------------- prompts
    def prompt(self, name: str, y: _Y, path: str) -> PromptDef | None:
        if isinstance(y, _Scalar) and y.value is not None and not isinstance(y.value, bool):
            if not y.text.strip():
                self.err(y, path, "empty prompt text (describe the music, e.g. \"calm ambient pads\")")
                return None
            return self.prompt_text(name, y, path, y.text)
        f = self.fields(y, path, PROMPT_KEYS, what="a prompt: a text, or a mapping")
        if f is None:
            return None
        if len(f) != 1:
            self.err(y, path, "give text or audio, not both" if f else
                     "missing 'text' or 'audio' (a prompt is a text such as \"calm pads\", or {audio: file.wav})")
            return None
        if "text" in f:
            text = self.name(f["text"], f"{path}.text", "the prompt's text")
            return None if text is None else self.prompt_text(name, f["text"], f"{path}.text", text)
        audio = self.audio_path(f["audio"], f"{path}.audio")
        return None if audio is None else PromptDef(name, audio=audio)

    def prompt_text(self, name: str, y: _Y, path: str, text: str) -> PromptDef | None:
        if len(text) > MAX_PROMPT_CHARS:
            self.err(y, path, f"a prompt text of {len(text):,} characters, over the limit of {MAX_PROMPT_CHARS:,} "
                              "(describe the music in a sentence or two)")
            return None
        return PromptDef(name, text=text)

    # ----------------------------------------------------------- value nodes
    def value(self, y: _Y, path: str, want: Kind, *, input_name: bool = False) -> Node | None:
        """A value node; ``input_name``: a bare name means a parameter (or a node), as in ``input: danger``."""
        if isinstance(y, _Scalar):
            return self.literal(y, path, want, input_name)
        if isinstance(y, _Seq):
            self.err(y, path, f"expected {_KIND_TEXT[want]}, got a list (a value node is a mapping with one key: "
                              f"{', '.join(NODE_KEYS)})")
            return None
        keys = list(y.items)
        if "when" in y.items:
            return self.when(y, path, want)
        if "select" in y.items:
            return self.select(y, path, want)
        if len(keys) != 1:
            if not keys:
                self.err(y, path, f"empty mapping: a value node has one key ({', '.join(NODE_KEYS)})")
                return None
            known = [k for k in keys if k in NODE_KEYS]
            for k in keys:
                if known and k != known[0]:
                    self.err(y.items[k][0], _join(path, k),
                             f"unexpected key {k!r} beside {known[0]!r}: a value node has one key"
                             + (f" (put {k!r} inside {known[0]!r}?)" if k in CURVE_KEYS + CLAMP_KEYS else ""))
            if not known:
                self.err(y.items[keys[0]][0], _join(path, keys[0]),
                         f"unknown value node {keys[0]!r}{self.hint(keys[0], NODE_KEYS)}")
            return None
        key = keys[0]
        body = y.items[key][1]
        p = _join(path, key)
        if key not in NODE_KEYS:
            self.err(y.items[key][0], p, f"unknown value node {key!r}{self.hint(key, NODE_KEYS)}")
            return None
        if key == "param":
            name = self.ref(body, p, "parameter", self.param_names)
            return None if name is None else self.param_ref(name, body, p, want)
        if key == "node":
            name = self.ref(body, p, "node", self.node_names)
            return None if name is None else NodeRef(name)
        if not self.numeric_ok(y, path, want, f"a {key} node"):
            return None
        if key == "curve":
            return self.curve(body, p)
        if key in ("add", "multiply", "min", "max"):
            args = [self.value(item, ip, "number", input_name=True) for ip, item in self.items(body, p, "values")]
            if isinstance(body, _Seq) and not body.items:
                self.err(body, p, f"{key} needs at least one value")
            if not args or any(a is None for a in args):
                return None
            return Op(cast(_OpName, key), tuple(a for a in args if a is not None))
        if key == "invert":
            arg = self.value(body, p, "number", input_name=True)
            return None if arg is None else Op("invert", (arg,))
        return self.clamp(body, p)

    def literal(self, y: _Scalar, path: str, want: Kind, input_name: bool) -> Node | None:
        v = y.value
        if v is None:
            self.err(y, path, f"empty value: expected {_KIND_TEXT[want]}")
            return None
        if isinstance(v, str):
            if input_name:
                return self.input_ref(y, path, want)
            if want in ("number", "switch"):
                hint = f" (to read the parameter write {{param: {v}}})" if v in self.param_names else ""
                self.err(y, path, f"expected {_KIND_TEXT[want]}, got {_describe(y)}{hint}")
                return None
            return Const(v)
        if isinstance(v, bool):
            if want in ("number", "text"):
                self.err(y, path, f"expected {_KIND_TEXT[want]}, got {_describe(y)}")
                return None
            return Const(v)
        assert isinstance(v, (int, float))
        if want == "text":
            self.err(y, path, f"expected {_KIND_TEXT[want]}, got {_describe(y)}")
            return None
        if not math.isfinite(float(v)):
            self.err(y, path, f"expected a finite number, got {y.text}")
            return None
        return Const(float(v))

    def input_ref(self, y: _Scalar, path: str, want: Kind) -> Node | None:
        """A bare name where an input is expected: a parameter, else a node."""
        name = y.text
        if name in self.param_names:
            return self.param_ref(name, y, path, want)
        if name in self.node_names:
            return NodeRef(name)
        self.err(y, path, f"undefined parameter {name!r}{self.hint(name, self.param_names, 'defined')}")
        return None

    def param_ref(self, name: str, y: _Y, path: str, want: Kind) -> Node | None:
        p = self.params.get(name)
        if p is not None and p.type == "labeled" and want in ("number", "switch"):
            self.err(y, path, f"parameter {name!r} is labeled, not a number: turn its labels into values with "
                              f"{{when: {{param: {name}, is: <label>}}, then: .., else: ..}} or {{select: {name}, "
                              "cases: {..}}")
            return None
        if (p is None or p.type != "labeled") and want == "text":
            self.err(y, path, f"expected {_KIND_TEXT[want]}, got parameter {name!r} (a number)")
            return None
        return ParamRef(name)

    def numeric_ok(self, y: _Y, path: str, want: Kind, what: str) -> bool:
        if want == "text":
            self.err(y, path, f"expected {_KIND_TEXT[want]}, got {what} (a number)")
            return False
        return True

    def curve(self, y: _Y, path: str) -> Node | None:
        f = self.fields(y, path, CURVE_KEYS, {"input": "a parameter name or a value node",
                                               "points": "[[x, y], ...]"}, "a curve: a mapping")
        if f is None:
            return None
        inp = self.value(f["input"], f"{path}.input", "number", input_name=True) if "input" in f else None
        shape = self.choice(f["shape"], f"{path}.shape", CURVE_SHAPES, "curve shape") if "shape" in f else "linear"
        points = self.points(f["points"], f"{path}.points") if "points" in f else None
        if inp is None or shape is None or points is None:
            return None
        return Curve(inp, points, shape)

    def pair(self, y: _Y, path: str, what: str) -> tuple[float, float] | None:
        if not isinstance(y, _Seq) or len(y.items) != 2:
            got = f"a list of {len(y.items)}" if isinstance(y, _Seq) else _describe(y)
            self.err(y, path, f"expected {what}, got {got}")
            return None
        a = self.number(y.items[0], f"{path}[0]")
        b = self.number(y.items[1], f"{path}[1]")
        return None if a is None or b is None else (a, b)

    def points(self, y: _Y, path: str) -> tuple[tuple[float, float], ...] | None:
        items = self.items(y, path, "[x, y] points")
        if isinstance(y, _Seq) and len(y.items) < 2:
            self.err(y, path, f"a curve needs at least 2 points, got {len(y.items)} (e.g. [[0, 0], [1, 1]])")
            return None
        out: list[tuple[float, float]] = []
        ok = bool(items)
        for p, item in items:
            pt = self.pair(item, p, "a point [x, y]")
            if pt is None:
                ok = False
                continue
            if out and pt[0] <= out[-1][0]:
                self.err(item, p, f"x values must increase ({_fmt(pt[0])} after {_fmt(out[-1][0])})")
                ok = False
            out.append(pt)
        return tuple(out) if ok else None

    def clamp(self, y: _Y, path: str) -> Node | None:
        f = self.fields(y, path, CLAMP_KEYS, {"value": "the value node to clamp"}, "a clamp: a mapping")
        if f is None:
            return None
        value = self.value(f["value"], f"{path}.value", "number", input_name=True) if "value" in f else None
        lo = self.number(f["min"], f"{path}.min") if "min" in f else 0.0
        hi = self.number(f["max"], f"{path}.max") if "max" in f else 1.0
        if lo is not None and hi is not None and lo >= hi:
            self.err(f.get("max") or f.get("min") or y, f"{path}.{'max' if 'max' in f else 'min'}",
                     f"impossible range: min {_fmt(lo)} is not below max {_fmt(hi)} (max must be greater than min)")
            return None
        if value is None or lo is None or hi is None:
            return None
        return Clamp(value, lo, hi)

    def labeled_param(self, y: _Y, path: str, what: str) -> Parameter | None:
        name = self.ref(y, path, "parameter", self.param_names)
        if name is None:
            return None
        p = self.params.get(name)
        if p is None or p.type != "labeled":
            kind = p.type if p is not None else "built in, a number"
            labeled = [n for n, q in self.params.items() if q.type == "labeled"]
            hint = "; for numbers use a curve with shape: constant" if what in ("when", "select") else ""
            self.err(y, path, f"{what} needs a labeled parameter, and {name!r} is {kind} (labeled parameters: "
                              f"{', '.join(labeled) or 'none'}{hint})")
            return None
        return p

    def label_of(self, y: _Y, path: str, p: Parameter) -> str | None:
        label = self.name(y, path, f"a label of {p.name!r}")
        if label is not None and label not in self.label_sets[p.name]:
            self.err(y, path, f"{label!r} is not a label of {p.name!r}{self.hint(label, p.labels, 'labels')}")
            return None
        return label

    def when(self, y: _Map, path: str, want: Kind) -> Node | None:
        f = self.fields(y, path, WHEN_KEYS, {"then": "the value when true", "else": "the value when false"})
        if f is None:
            return None
        cond = self.fields(f["when"], f"{path}.when", WHEN_CONDITION_KEYS, {"param": "a labeled parameter"},
                           "a condition: a mapping")
        labels: tuple[str, ...] | None = None
        p = None
        if cond is not None:
            if "param" in cond:
                p = self.labeled_param(cond["param"], f"{path}.when.param", "when")
            if ("is" in cond) == ("in" in cond):
                self.err(f["when"], f"{path}.when", "give is: <label> or in: [labels], one of them")
            elif p is not None:
                labels = self.when_labels(cond, f"{path}.when", p)
        then = self.value(f["then"], f"{path}.then", want) if "then" in f else None
        otherwise = self.value(f["else"], f"{path}.else", want) if "else" in f else None
        if p is None or labels is None or then is None or otherwise is None:
            return None
        return When(p.name, labels, then, otherwise)

    def when_labels(self, cond: dict[str, _Y], path: str, p: Parameter) -> tuple[str, ...] | None:
        if "is" in cond:
            label = self.label_of(cond["is"], f"{path}.is", p)
            return None if label is None else (label,)
        items = self.items(cond["in"], f"{path}.in", "labels")
        if not items:
            if isinstance(cond["in"], _Seq):
                self.err(cond["in"], f"{path}.in", "in: needs at least one label")
            return None
        found = [self.label_of(item, ip, p) for ip, item in items]
        if any(label is None for label in found):
            return None
        return tuple(label for label in found if label is not None)

    def select(self, y: _Map, path: str, want: Kind) -> Node | None:
        f = self.fields(y, path, SELECT_KEYS, {"cases": "label: value, for the labels of the parameter"})
        if f is None:
            return None
        p = self.labeled_param(f["select"], f"{path}.select", "select")
        cases: list[tuple[str, Node]] = []
        ok = p is not None
        if "cases" in f:
            entries = self.entries(f["cases"], f"{path}.cases", "cases (label: value)")
            if isinstance(f["cases"], _Map) and not f["cases"].items:
                self.err(f["cases"], f"{path}.cases", "select needs at least one case")
                ok = False
            for label, knode, value in entries:
                cp = f"{path}.cases.{label}"
                if p is not None and label not in self.label_sets[p.name]:
                    self.err(knode, cp, f"{label!r} is not a label of {p.name!r}{self.hint(label, p.labels, 'labels')}")
                    ok = False
                n = self.value(value, cp, want)
                if n is None:
                    ok = False
                else:
                    cases.append((label, n))
        default = None
        if "default" in f:
            default = self.value(f["default"], f"{path}.default", want)
            ok = ok and default is not None
        elif p is not None and "cases" in f and isinstance(f["cases"], _Map) and f["cases"].items:
            missing = [lb for lb in p.labels if lb not in f["cases"].items]
            if missing:
                self.err(f["cases"], f"{path}.cases", f"no case for {', '.join(map(repr, missing))} and no default: "
                                                      "add the cases or a default")
                ok = False
        if not ok or p is None or "cases" not in f:
            return None
        return Select(p.name, tuple(cases), default)

    def check_cycles(self, nodes: Mapping[str, Node], keys: Mapping[str, _Scalar]) -> None:
        """Reports each cycle among the named nodes once, as ``a → b → a``."""
        deps = {name: [r for r in _node_refs(n) if r in nodes] for name, n in nodes.items()}
        color: dict[str, int] = {}  # 1: on the path, 2: done
        seen: set[frozenset[str]] = set()
        for start in nodes:
            if start in color:
                continue
            color[start] = 1
            path = [start]
            iters = [iter(deps[start])]
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    color[path.pop()] = 2
                    iters.pop()
                elif color.get(nxt) == 1:
                    cycle = path[path.index(nxt):]
                    if frozenset(cycle) not in seen:
                        seen.add(frozenset(cycle))
                        first = min(cycle, key=lambda n: keys[n].line)
                        i = cycle.index(first)
                        ring = cycle[i:] + cycle[:i] + [first]
                        self.err(keys[first], f"nodes.{first}", f"nodes form a cycle: {' → '.join(ring)} "
                                                                "(a node cannot depend on itself)")
                elif nxt not in color:
                    color[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(deps[nxt]))

    # -------------------------------------------------------------------- mix
    def mix(self, y: _Y, path: str) -> tuple[MixEntry, ...]:
        out: list[MixEntry] = []
        for p, item in self.items(y, path, "mix entries"):
            e = self.mix_entry(item, p)
            if e is not None:
                out.append(e)
        return tuple(out)

    def mix_entry(self, y: _Y, path: str) -> MixEntry | None:
        shape = "{prompt: name, weight: ..}, {blend: {..}} or {pad: {..}}"
        if not isinstance(y, _Map) or not y.items:
            self.err(y, path, f"expected a mix entry, {shape}, got {_describe(y)}")
            return None
        if "blend" in y.items or "pad" in y.items:
            kind = "blend" if "blend" in y.items else "pad"
            f = self.fields(y, path, (kind,))
            if f is None or kind not in f:
                return None
            return self.blend(f[kind], f"{path}.blend") if kind == "blend" else self.pad(f[kind], f"{path}.pad")
        if "prompt" not in y.items:
            first = next(iter(y.items))
            self.err(y.items[first][0], _join(path, first),
                     f"unknown mix entry key {first!r}{self.hint(first, (*WEIGHT_KEYS, 'blend', 'pad'))}")
            return None
        f = self.fields(y, path, WEIGHT_KEYS)
        if f is None:
            return None
        prompt = self.ref(f["prompt"], f"{path}.prompt", "prompt", self.prompt_names)
        weight = self.value(f["weight"], f"{path}.weight", "number") if "weight" in f else Const(1.0)
        if prompt is None or weight is None:
            return None
        return Weight(prompt, weight)

    def blend(self, y: _Y, path: str) -> Blend | None:
        f = self.fields(y, path, BLEND_KEYS, {"input": "a parameter name or a value node",
                                               "prompts": "[[prompt, position], ...]"}, "a blend: a mapping")
        if f is None:
            return None
        inp = self.value(f["input"], f"{path}.input", "number", input_name=True) if "input" in f else None
        stops: list[tuple[str, float]] = []
        ok = "prompts" in f
        if "prompts" in f:
            items = self.items(f["prompts"], f"{path}.prompts", "[prompt, position] stops")
            if isinstance(f["prompts"], _Seq) and len(items) < 2:
                self.err(f["prompts"], f"{path}.prompts", f"a blend needs at least 2 stops, got {len(items)}")
                ok = False
            for p, item in items:
                if not isinstance(item, _Seq) or len(item.items) != 2:
                    self.err(item, p, f"expected a stop [prompt, position], got {_describe(item)}")
                    ok = False
                    continue
                name = self.ref(item.items[0], f"{p}[0]", "prompt", self.prompt_names)
                pos = self.number(item.items[1], f"{p}[1]")
                if name is None or pos is None:
                    ok = False
                    continue
                if stops and pos <= stops[-1][1]:
                    self.err(item, p, f"blend positions must increase ({_fmt(pos)} after {_fmt(stops[-1][1])})")
                    ok = False
                stops.append((name, pos))
        if inp is None or not ok:
            return None
        return Blend(inp, tuple(stops))

    def pad(self, y: _Y, path: str) -> Pad | None:
        f = self.fields(y, path, PAD_KEYS, {"x": "a parameter name or a value node", "y": "the same, for y",
                                             "points": "prompt: [x, y]"}, "a pad: a mapping")
        if f is None:
            return None
        x = self.value(f["x"], f"{path}.x", "number", input_name=True) if "x" in f else None
        yy = self.value(f["y"], f"{path}.y", "number", input_name=True) if "y" in f else None
        mode = self.choice(f["mode"], f"{path}.mode", PAD_MODES, "pad mode") if "mode" in f else "idw"
        power = self.number(f["power"], f"{path}.power", above=0.0) if "power" in f else 2.0
        points: list[tuple[str, float, float]] = []
        ok = "points" in f
        if "points" in f:
            entries = self.entries(f["points"], f"{path}.points", "prompt: [x, y] points")
            if isinstance(f["points"], _Map) and len(entries) < 2:
                self.err(f["points"], f"{path}.points", f"a pad needs at least 2 points, got {len(entries)}")
                ok = False
            for name, knode, value in entries:
                p = f"{path}.points.{name}"
                if name not in self.prompt_names:
                    self.err(knode, p, f"undefined prompt {name!r}{self.hint(name, self.prompt_names, 'defined')}")
                    ok = False
                pt = self.pair(value, p, "a position [x, y]")
                if pt is None:
                    ok = False
                else:
                    points.append((name, *pt))
            if ok and mode == "bilinear":
                ok = self.grid(f["points"], f"{path}.points", points)
        if x is None or yy is None or mode is None or power is None or not ok:
            return None
        return Pad(x, yy, tuple(points), cast(_PadMode, mode), power)

    def grid(self, y: _Y, path: str, points: Sequence[tuple[str, float, float]]) -> bool:
        """Bilinear pads need exactly one point on every corner of a grid."""
        at: dict[tuple[float, float], str] = {}
        for name, px, py in points:
            if (px, py) in at:
                self.err(y, path, f"{at[px, py]!r} and {name!r} are both at ({_fmt(px)}, {_fmt(py)}): bilinear "
                                  "needs one point per grid corner")
                return False
            at[px, py] = name
        xs = sorted({p[1] for p in points})
        ys = sorted({p[2] for p in points})
        missing: list[tuple[float, float]] = []
        if len(xs) * len(ys) != len(points):  # some corners are empty: name the first few
            for gx in xs:
                missing += [(gx, gy) for gy in ys if (gx, gy) not in at][: 4 - len(missing)]
                if len(missing) >= 4:
                    break
        if len(xs) < 2 or len(ys) < 2 or missing:
            where = ", ".join(f"({_fmt(a)}, {_fmt(b)})" for a, b in missing[:4]) or "a second row or column"
            self.err(y, path, f"mode bilinear needs a point on every corner of a grid; missing {where} (or use "
                              "mode: idw, which takes points anywhere)")
            return False
        return True

    def default_mix(self, y: _Y) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, knode, value in self.entries(y, "default_mix", "prompt: weight"):
            p = f"default_mix.{name}"
            if name not in self.prompt_names:
                self.err(knode, p, f"undefined prompt {name!r}{self.hint(name, self.prompt_names, 'defined')}")
            w = self.number(value, p, lo=0.0, what="a weight >= 0")
            if w is not None:
                out[name] = w
        if isinstance(y, _Map) and y.items and len(out) == len(y.items) and not any(out.values()):
            self.err(y, "default_mix", "every weight is 0: the default mix needs a weight above 0")
        return out

    def controls(self, y: _Y, path: str) -> list[tuple[str, Node]]:
        out: list[tuple[str, Node]] = []
        for name, knode, value in self.entries(y, path, "control: value"):
            p = f"{path}.{name}"
            if name not in CONTROL_KINDS:
                self.err(knode, p, f"unknown control {name!r}{self.hint(name, CONTROL_NAMES)}")
                continue
            n = self.value(value, p, CONTROL_KINDS[name])
            if n is not None:
                out.append((name, n))
        return out

    # ------------------------------------------------------ states and events
    def states(self, y: _Y) -> tuple[dict[str, State], str | None, str | None]:
        out: dict[str, State] = {}
        f = self.fields(y, "states", STATES_KEYS, {"list": "state name: {mix: [..], controls: {..}}"},
                        "states: a mapping")
        if f is None or "list" not in f:
            return out, None, None
        entries = self.entries(f["list"], "states.list", "states")
        if isinstance(f["list"], _Map) and not entries:
            self.err(f["list"], "states.list", "no states: list at least one (name: {} is enough)")
        for name, knode, value in entries:
            p = f"states.list.{name}"
            if name == STATE_ANY:
                self.err(knode, p, "'any' is reserved (in transitions it matches every state): rename this state")
                continue
            if isinstance(value, _Scalar) and value.value is None:
                out[name] = State(name)
                continue
            g = self.fields(value, p, STATE_KEYS, what="a state: a mapping")
            if g is None:
                continue
            mix = self.mix(g["mix"], f"{p}.mix") if "mix" in g else None
            controls = tuple(self.controls(g["controls"], f"{p}.controls")) if "controls" in g else None
            out[name] = State(name, mix, controls)
        driven_by = None
        if "driven_by" in f:
            param = self.labeled_param(f["driven_by"], "states.driven_by", "driven_by")
            if param is not None:
                driven_by = param.name
                labels, names = self.label_sets[param.name], set(self.state_names)
                if labels != names:
                    parts = []
                    if labels - names:
                        parts.append(f"labels without a state: {', '.join(sorted(labels - names))}")
                    if names - labels:
                        parts.append(f"states without a label: {', '.join(sorted(names - labels))}")
                    self.err(f["driven_by"], "states.driven_by",
                             f"the labels of {param.name!r} must be the state names ({'; '.join(parts)})")
        initial = next(iter(out), None)
        if "initial" in f:
            initial = self.ref(f["initial"], "states.initial", "state", self.state_names)
        return out, driven_by, initial

    def transitions(self, y: _Y) -> list[Transition]:
        out: list[Transition] = []
        first_at: dict[tuple[str, str], int] = {}
        names = self.state_names
        for p, item in self.items(y, "transitions", "transitions"):
            f = self.fields(item, p, TRANSITION_KEYS, what="a transition: a mapping")
            if f is None:
                continue
            ends = []
            for key in ("from", "to"):
                end: str | None = STATE_ANY
                if key in f:
                    end = self.name(f[key], f"{p}.{key}", "a state name or 'any'")
                    if end is not None and end != STATE_ANY and end not in names:
                        self.err(f[key], f"{p}.{key}", f"unknown state {end!r}"
                                                       f"{self.hint(end, [*names, STATE_ANY], 'states')}")
                        end = None
                ends.append(end)
            quantize = self.choice(f["quantize"], f"{p}.quantize", QUANTIZE, "quantize") if "quantize" in f else "bar"
            fade = self.duration(f["fade"], f"{p}.fade") if "fade" in f else Duration(1.0, "bars")
            mode = self.choice(f["mode"], f"{p}.mode", MODES, "transition mode") if "mode" in f else "blend"
            source, target = ends
            if source is None or target is None or quantize is None or fade is None or mode is None:
                continue
            if (source, target) in first_at:
                self.err(item, p, f"a second rule from {source} to {target} (the first is at line "
                                  f"{first_at[source, target]}): remove one")
                continue
            first_at[source, target] = item.line
            out.append(Transition(source, target, cast(_Quantize, quantize), fade, cast(_Mode, mode)))
        return out

    def stinger(self, name: str, y: _Y, path: str) -> Stinger | None:
        f = self.fields(y, path, STINGER_KEYS, what="a stinger: a mapping")
        if f is None:
            return None
        prompt = audio = None
        ok = True
        if ("prompt" in f) == ("audio" in f):
            self.err(y, path, "give prompt: <name> or audio: <file>, not both" if "prompt" in f else
                     "missing 'prompt' or 'audio' (a stinger plays a prompt of the graph or an audio file)")
            ok = False
        elif "prompt" in f:
            prompt = self.ref(f["prompt"], f"{path}.prompt", "prompt", self.prompt_names)
            ok = prompt is not None
        else:
            audio = self.audio_path(f["audio"], f"{path}.audio", stinger=True)
            ok = audio is not None
        quantize = self.choice(f["quantize"], f"{path}.quantize", QUANTIZE, "quantize") if "quantize" in f else "beat"
        length = self.duration(f["length"], f"{path}.length") if "length" in f else Duration(2.0, "beats")
        if length is not None and length.value == 0:
            self.err(f["length"], f"{path}.length", "a stinger's length must be above 0")
            length = None
        cooldown = (self.seconds(f["cooldown"], f"{path}.cooldown") if "cooldown" in f
                    else DEFAULT_STINGER_COOLDOWN_S)
        duck = (self.number(f["duck"], f"{path}.duck", hi=0.0, why="dB taken off the music while it plays")
                if "duck" in f else -6.0)
        gain = (self.number(f["gain"], f"{path}.gain", lo=-120.0, hi=24.0, what="a gain in dB", why="dB")
                if "gain" in f else 0.0)
        if not ok or quantize is None or length is None or cooldown is None or duck is None or gain is None:
            return None
        return Stinger(name, prompt, audio, cast(_Quantize, quantize), length, cooldown, duck, gain)

    def intensity(self, y: _Y) -> Intensity:
        f = self.fields(y, "intensity", INTENSITY_KEYS, what="intensity: a mapping")
        if f is None:
            return Intensity()
        decay = self.number(f["decay"], "intensity.decay", lo=0.0, why="units per second") if "decay" in f else None
        hold = self.seconds(f["hold"], "intensity.hold") if "hold" in f else None
        d = Intensity()
        return Intensity(d.decay if decay is None else decay, d.hold if hold is None else hold)

    def trigger(self, name: str, y: _Y, path: str) -> TriggerDef | None:
        if (isinstance(y, _Scalar) and y.value is None) or (isinstance(y, _Map) and not y.items):
            self.err(y, path, "a trigger that does nothing: give bump, stinger or set_state")
            return None
        f = self.fields(y, path, TRIGGER_KEYS, what="a trigger: a mapping")
        if f is None:
            return None
        bump = self.number(f["bump"], f"{path}.bump", lo=-1.0, hi=1.0, why="added to intensity, 0–1") \
            if "bump" in f else 0.0
        stinger = self.ref(f["stinger"], f"{path}.stinger", "stinger", self.stinger_names) if "stinger" in f else None
        state = None
        if "set_state" in f:
            if not self.state_names:
                self.err(f["set_state"], f"{path}.set_state", "set_state needs states: add a states: section")
            else:
                state = self.ref(f["set_state"], f"{path}.set_state", "state", self.state_names)
        if bump is None or ("stinger" in f and stinger is None) or ("set_state" in f and state is None):
            return None
        return TriggerDef(name, bump, stinger, state)

    def failsafe(self, y: _Y) -> Failsafe | None:
        f = self.fields(y, "failsafe", FAILSAFE_KEYS, {"after": "seconds without input before the glide"},
                        "failsafe: a mapping")
        if f is None or "after" not in f:
            return None
        after = self.seconds(f["after"], "failsafe.after", positive=True)
        glide = self.seconds(f["glide"], "failsafe.glide") if "glide" in f else Failsafe(1.0).glide
        if after is None or glide is None:
            return None
        return Failsafe(after, glide)


def _node_refs(node: Node) -> list[str]:
    """Names of the nodes that ``node`` refers to (directly, not through other named nodes)."""
    out: list[str] = []
    todo: list[Node] = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, NodeRef):
            out.append(n.name)
        elif isinstance(n, Curve):
            todo.append(n.input)
        elif isinstance(n, Op):
            todo.extend(n.args)
        elif isinstance(n, Clamp):
            todo.append(n.value)
        elif isinstance(n, When):
            todo += [n.then, n.otherwise]
        elif isinstance(n, Select):
            todo.extend(c for _, c in n.cases)
            if n.default is not None:
                todo.append(n.default)
    return out
