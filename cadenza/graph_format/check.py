"""Checks plain data against the style-graph format's declaration and collects every problem.

One job: :func:`validate` walks what ``yaml.safe_load`` or ``json.loads``
gives (dicts, lists, strings, numbers, booleans, ``None``) against
:mod:`.declaration` and returns *every* problem at once as :class:`Issue` — a
dotted path such as ``mix[1].weight.curve.points[1]`` and a message naming the
bad value, the valid choices or the fix. It reads no file. The runtime's
loader adds ``file:line`` from its own YAML reader; the SDK's builder checks
what it writes with it.

The keys, types, ranges and words come from the declaration's tables; the
rules of :class:`_Checker` are what ties values together (min below max, a
label of the right parameter, names defined anywhere in the file, cycles
among nodes, a grid for bilinear pads, what kind of value each control
takes).
"""

from __future__ import annotations

import math
from functools import partial
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

from cadenza.errors import CadenzaError
from cadenza.graph_format.controls import control_problem
from cadenza.graph_format.declaration import (
    BUILTIN_PARAMS,
    CONTROL_KINDS,
    CONTROL_NAMES,
    DURATION_HELP,
    FORMAT_VERSION,
    INLINE_NODES,
    MAX_MUSICAL_S,
    MAX_PROMPT_CHARS,
    MAX_PROMPTS,
    NO_DEFAULT,
    SAMPLE_RATE,
    SECTIONS,
    SLOWEST_BEAT_S,
    STATE_ANY,
    VALUE_NODES,
    WANT_TEXT,
    Choice,
    Key,
    Length,
    MapOf,
    Name,
    Number,
    Ref,
    Seconds,
    Section,
    Sub,
    Type,
    Want,
    choices,
    fmt,
    join,
    parse_duration,
    record,
)

__all__ = ["Issue", "shorten", "validate"]

#: A value quoted in a message is cut to this many characters (a 5,000-digit number is not repeated in full).
QUOTE_CHARS = 40


def shorten(text: str) -> str:
    """``text`` as a message quotes it: at most :data:`QUOTE_CHARS` characters, then how long it was."""
    return text if len(text) <= QUOTE_CHARS else f"{text[:QUOTE_CHARS]}…({len(text):,} characters)"

_NUMBER = Number()
_PROMPT_TEXT = cast(Name, SECTIONS["prompt"].keys["text"].type)  # a prompt's text, also written bare
_WEIGHT = cast(Number, cast(MapOf, SECTIONS["graph"].keys["default_mix"].type).value)  # a default mix weight


@record
class Issue:
    """One problem of a graph, found in plain data.

    ``path`` is the dotted path it is about (``mix[1].weight``; ``""``: the
    whole graph). ``at`` is the path of the value that shows it when that is
    another one (a missing key is shown by its mapping); ``key``: the issue is
    the key itself (an unknown key, a name), so a reader with lines points at
    the key's line. ``final``: nothing else was checked (an unsupported
    version); ``whole``: about the whole file, no line (stopped after too many
    problems).
    """

    path: str
    message: str
    at: str | None = None
    key: bool = False
    final: bool = False
    whole: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def validate(data: Any, *, spelling: Mapping[str, str] | None = None, lines: Mapping[str, int] | None = None,
             max_issues: int = 200) -> list[Issue]:
    """Every problem of ``data`` (a style graph as plain data) against the format; ``[]`` when it is valid.

    ``spelling``: each scalar's text as written, by path (a reader's; messages
    then quote ``1e400`` rather than ``inf``, and ``1`` used as a name is the
    text ``"1"``); ``lines``: each value's line by path (messages about a
    second place then say "at line 3"). After ``max_issues`` problems the
    check stops and a last issue says so (``whole``).
    """
    checker = _Checker(spelling or {}, lines, max_issues)
    try:
        checker.graph(data)
    except _Stop:
        checker.issues.append(Issue("", f"stopped after {max_issues} problems", whole=True))
    except _Final as exc:
        return [exc.issue]
    return checker.issues


# ---------------------------------------------------------------- the checker
class _Stop(CadenzaError):
    """Too many issues: the walk stops (the "stopped after N problems" marker says so)."""

    def __init__(self) -> None:
        super().__init__("too many problems")


class _Final(CadenzaError):
    """An issue after which nothing else is checked (an unsupported version): carried out of the walk."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message, where=issue.path or None)
        self.issue = issue


_Scalar = (str, int, float, bool)
_Entries = list[tuple[str, Any]]


class _Checker:
    """Walks plain data against :data:`SECTIONS`, collecting every issue; each rule says what it checks."""

    def __init__(self, spelling: Mapping[str, str], lines: Mapping[str, int] | None, max_issues: int) -> None:
        self.spelling = spelling
        self.lines = lines
        self.max_issues = max_issues
        self.issues: list[Issue] = []
        self.long_hints = 0
        self.params: dict[str, tuple[str, tuple[str, ...]]] = {}  # name → (type, labels) of checked parameters
        self.names: dict[str, dict[str, None]] = {k: {} for k in ("parameter", "prompt", "node", "state", "stinger")}
        self.refs: list[str] = []  # the nodes named by the value node being checked
        self.node_data: dict[str, Any] = {}  # the named nodes as written
        self.reported: set[tuple[str, str]] = set()  # (path, control) of literals reported out of range

    # ------------------------------------------------------------- reporting
    def err(self, path: str, message: str, *, at: str | None = None, key: bool = False) -> None:
        self.issues.append(Issue(path, message, at, key))
        if len(self.issues) >= self.max_issues:
            raise _Stop

    def hint(self, word: str, options: Iterable[str], label: str = "valid") -> str:
        """:func:`choices`, with "did you mean" among long lists of names for the first few issues only."""
        listed = list(options)
        if len(listed) > 100:
            self.long_hints += 1
        return choices(word, listed, label, suggest=len(listed) <= 100 or self.long_hints <= 20)

    def text(self, v: Any, path: str) -> str:
        """A scalar as written: the reader's spelling, else Python's."""
        t = self.spelling.get(path)
        if t is not None:
            return t
        if isinstance(v, bool):
            return "true" if v else "false"
        if v is None:
            return "null"
        if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
            return str(int(v))
        return str(v)

    def describe(self, v: Any, path: str) -> str:
        if isinstance(v, dict):
            return "a mapping"
        if isinstance(v, list):
            return "a list"
        if v is None:
            return "nothing (null)"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return f"the number {self.written(v, path)}"
        return f"the text {shorten(repr(self.text(v, path)))}"

    def written(self, v: Any, path: str) -> str:
        """A scalar as written, shortened for a message."""
        return shorten(self.text(v, path))

    def where(self, path: str) -> str:
        line = None if self.lines is None else self.lines.get(path)
        return path if line is None else f"line {line}"

    # ------------------------------------------------------------- structure
    def fields(self, v: Any, path: str, section: str | Section, what: str = "") -> dict[str, Any] | None:
        """A mapping's values by key; reports a non-mapping, unknown keys and missing required keys."""
        s = SECTIONS[section] if isinstance(section, str) else section
        allowed = s.keys
        if not isinstance(v, dict):
            self.err(path, f"expected {what or s.what or 'a mapping'} with keys {', '.join(allowed)}, got "
                           f"{self.describe(v, path)}")
            return None
        out: dict[str, Any] = {}
        for k, item in v.items():
            if k in allowed:
                out[k] = item
            else:
                self.err(join(path, k), f"unknown key {k!r}{self.hint(k, allowed, 'valid keys')}", key=True)
        for k, hint in s.required.items():
            if k not in out:
                self.err(join(path, k), f"missing required key {k!r}{f' ({hint})' if hint else ''}", at=path)
        return out

    def entries(self, v: Any, path: str, what: str) -> _Entries:
        """A name → value mapping's entries; reports a non-mapping and empty names."""
        if not isinstance(v, dict):
            self.err(path, f"expected a mapping of {what}, got {self.describe(v, path)}")
            return []
        out = []
        for k, item in v.items():
            if not k.strip():
                self.err(path, f"empty name in {what}", at=join(path, k), key=True)
                continue
            out.append((k, item))
        return out

    def items(self, v: Any, path: str, what: str) -> _Entries:
        """A list's items with their paths; reports a non-list."""
        if not isinstance(v, list):
            self.err(path, f"expected a list of {what}, got {self.describe(v, path)}")
            return []
        return [(f"{path}[{i}]", item) for i, item in enumerate(v)]

    def scalar(self, f: Mapping[str, Any], section: str, key: str, path: str) -> Any:
        """Key ``key`` of checked fields ``f`` by its declared type: the checked value, its default when absent,
        or None after reporting."""
        decl = SECTIONS[section].keys[key]
        if key not in f:
            return None if decl.default is NO_DEFAULT else decl.default
        return self.check(f[key], join(path, key), decl.type)

    def check(self, v: Any, path: str, t: Type) -> Any:
        """A scalar value by its type; None after reporting."""
        if isinstance(t, Number):
            return self.number(v, path, t)
        if isinstance(t, Seconds):
            return self.seconds(v, path, positive=t.positive)
        if isinstance(t, Length):
            return self.duration(v, path, positive=t.positive)
        if isinstance(t, Choice):
            return self.choice(v, path, t)
        if isinstance(t, Ref):
            return self.ref(v, path, t.kind)
        if isinstance(t, Name):
            return self.name(v, path, t.what, t.max_chars)
        raise TypeError(f"no scalar check for {t!r}")  # pragma: no cover - a declaration error

    # ---------------------------------------------------------------- scalars
    def number(self, v: Any, path: str, t: Number = _NUMBER) -> float | None:
        """A finite number in [lo, hi] (and > above), or None after reporting why not."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.err(path, f"expected {t.what}, got {self.describe(v, path)}")
            return None
        try:
            x = float(v)
        except OverflowError:  # an int beyond floats
            x = math.inf
        suffix = f" ({t.why})" if t.why else ""
        written = self.written(v, path)
        if not math.isfinite(x):
            self.err(path, f"expected a finite number, got {written}")
            return None
        if t.above is not None and x <= t.above:
            self.err(path, f"must be > {fmt(t.above)}, got {written}{suffix}")
            return None
        lo, hi = t.lo, t.hi
        if (lo is not None and x < lo) or (hi is not None and x > hi):
            if lo is not None and hi is not None:
                self.err(path, f"{written} is outside {fmt(lo)}–{fmt(hi)}{suffix}")
            elif lo is not None:
                self.err(path, f"must be >= {fmt(lo)}, got {written}{suffix}")
            else:
                self.err(path, f"must be <= {fmt(hi or 0.0)}, got {written}{suffix}")
            return None
        return x

    def seconds(self, v: Any, path: str, *, positive: bool = False) -> float | None:
        """Seconds ≥ 0 (> 0 when ``positive``): a number, ``"4 s"`` or ``"500 ms"``."""
        x: float | None
        if isinstance(v, str):
            try:
                x, unit = parse_duration(v)
            except ValueError as exc:
                self.err(path, f"{exc} (this one is in seconds)")
                return None
            if unit != "s":
                self.err(path, f"{v!r} is musical time, but this is in seconds (write e.g. 2, '2 s' or '500 ms'; "
                               "beats and bars work for fade and length)")
                return None
        else:
            x = self.number(v, path, Number(what="seconds (a number, '4 s' or '500 ms')"))
            if x is None:
                return None
            if x < 0:
                self.err(path, f"a time cannot be negative, got {self.written(v, path)}")
                return None
        if positive and x == 0:
            self.err(path, "must be > 0 seconds, got 0")
            return None
        return x

    def duration(self, v: Any, path: str, *, positive: bool = False) -> Any:
        """Seconds or musical time; the value as given (the runtime parses it again), or None."""
        if isinstance(v, str):
            try:
                x, unit = parse_duration(v)
            except ValueError as exc:
                self.err(path, str(exc))
                return None
        else:
            n = self.number(v, path, Number(what=f"a duration: {DURATION_HELP}"))
            if n is None:
                return None
            if n < 0:
                self.err(path, f"a duration cannot be negative, got {fmt(n)}")
                return None
            x, unit = n, "s"
        if positive and x == 0:
            self.err(path, "a stinger's length must be above 0")
            return None
        if x * {"s": 1.0, "beats": SLOWEST_BEAT_S, "bars": 4 * SLOWEST_BEAT_S}[unit] > MAX_MUSICAL_S:
            beats = MAX_MUSICAL_S / SLOWEST_BEAT_S
            shown = shorten(v.strip()) if isinstance(v, str) else f"{self.written(v, path)} s"
            self.err(path, f"a {path.rsplit('.', 1)[-1]} of {shown} is too long: at most {fmt(MAX_MUSICAL_S)} s, "
                           f"{fmt(beats)} beats or {fmt(beats / 4)} bars")
            return None
        return v

    def name(self, v: Any, path: str, what: str = "a name", max_chars: int | None = None) -> str | None:
        """A name as written (``no`` and ``1`` stay text), non-empty, at most ``max_chars`` characters."""
        if v is None or not isinstance(v, _Scalar):
            self.err(path, f"expected {what}, got {self.describe(v, path)}")
            return None
        t = self.text(v, path)
        if not t.strip():
            self.err(path, f"expected {what}, got {self.describe(v, path)}")
            return None
        if max_chars is not None and len(t) > max_chars:
            self.err(path, f"{len(t):,} characters, over the limit of {max_chars:,} for {what} (describe the music "
                           "in a sentence or two)" if what == _PROMPT_TEXT.what else
                     f"{len(t):,} characters, over the limit of {max_chars:,} for {what}")
            return None
        return t

    def choice(self, v: Any, path: str, t: Choice) -> str | None:
        word = self.name(v, path, f"a {t.what} ({' | '.join(t.options)})")
        if word is None:
            return None
        if word not in t.options:
            self.err(path, f"unknown {t.what} {word!r}{self.hint(word, t.options)}")
            return None
        return word

    def ref(self, v: Any, path: str, kind: str, defined: Collection[str] | None = None) -> str | None:
        """A reference to a defined name; reports an undefined one with the nearest names."""
        word = self.name(v, path, f"the name of a {kind}")
        if word is None:
            return None
        names = self.names[kind] if defined is None else defined
        if word not in names:
            self.err(path, f"undefined {kind} {word!r}{self.hint(word, names, 'defined')}")
            return None
        return word

    def audio(self, v: Any, path: str) -> str | None:
        if not isinstance(v, str) or not v.strip() or "\x00" in v:
            got = "an empty path" if v == "" else self.describe(v, path)
            self.err(path, f"expected the path of a WAV or FLAC file (relative to the graph file), got {got}")
            return None
        return v

    # ------------------------------------------------------------------ graph
    def graph(self, root: Any) -> None:
        before = len(self.issues)
        f = self.fields(root, "", "graph")
        if f is None:
            return
        # a file without prompts is one being written: its other problems come first (see the end)
        self.issues[before:] = [i for i in self.issues[before:] if (i.path, i.at) != ("prompts", "")]
        if "cadenza_graph" in f:
            v = f["cadenza_graph"]
            if isinstance(v, bool) or not isinstance(v, int):
                self.err("cadenza_graph", f"expected the format version {FORMAT_VERSION}, got "
                                          f"{self.describe(v, 'cadenza_graph')}")
            elif v != FORMAT_VERSION:
                raise _Final(Issue("cadenza_graph", f"unsupported version {v} (this Cadenza reads version "
                                                    f"{FORMAT_VERSION}: upgrade Cadenza, or write the file for "
                                                    f"version {FORMAT_VERSION})", final=True))
        for key in ("$schema", "name"):
            if key in f:
                self.scalar(f, "graph", key, "")
        if "control_rate" in f:
            self.control_rate(self.scalar(f, "graph", "control_rate", ""))

        # names first: anything may refer to anything defined anywhere in the file
        for name, v in self.entries(f["parameters"], "parameters", "parameters") if "parameters" in f else []:
            self.parameter(name, v, f"parameters.{name}")
        self.names["parameter"] = dict.fromkeys([*self.params, *BUILTIN_PARAMS])
        if "prompts" in f:
            entries = self.entries(f["prompts"], "prompts", "prompts")
            if isinstance(f["prompts"], dict) and not f["prompts"]:
                self.err("prompts", "no prompts: a graph plays its prompts, so it needs at least one (add prompts: "
                                    "{calm: \"calm ambient pads\"})")
            if len(entries) > MAX_PROMPTS:
                self.err("prompts", f"{len(entries):,} prompts, over the limit of {MAX_PROMPTS} a mix may hold (each "
                                    "one is embedded and mixed at every tick)")
            for name, v in entries:
                self.names["prompt"][name] = None
                self.prompt(v, f"prompts.{name}")
        nodes = self.entries(f["nodes"], "nodes", "value nodes") if "nodes" in f else []
        self.names["node"] = dict.fromkeys(n for n, _ in nodes)
        self.node_data = dict(nodes)
        stingers = self.entries(f["stingers"], "stingers", "stingers") if "stingers" in f else []
        self.names["stinger"] = dict.fromkeys(n for n, _ in stingers)
        states = f.get("states")
        listed = states.get("list") if isinstance(states, dict) else None
        if isinstance(listed, dict):
            self.names["state"] = dict.fromkeys(k for k in listed if k.strip() and k != STATE_ANY)

        deps: dict[str, list[str]] = {}  # valid nodes → the nodes they name
        for name, v in nodes:
            if name in self.names["parameter"]:
                self.err(f"nodes.{name}", f"node {name!r} has the name of a parameter: rename it (a bare name in an "
                                          "input means the parameter)", key=True)
            self.refs = []
            if self.value(v, f"nodes.{name}", "any"):
                deps[name] = self.refs
        self.cycles(deps)

        if "mix" in f:
            self.mix(f["mix"], "mix")
        if "default_mix" in f:
            self.default_mix(f["default_mix"])
        if "controls" in f:
            self.controls(f["controls"], "controls")
        if states is not None:
            self.states(states)
        if "transitions" in f:
            if states is not None:
                self.transitions(f["transitions"])
            elif f["transitions"] != []:  # an empty list is harmless, as every other empty section
                self.err("transitions", "transitions need states: add a states: section")
        for name, v in stingers:
            self.stinger(v, f"stingers.{name}")
        if "intensity" in f:
            g = self.fields(f["intensity"], "intensity", "intensity")
            for key in g or ():
                self.scalar(g or {}, "intensity", key, "intensity")
        for name, v in self.entries(f["triggers"], "triggers", "triggers") if "triggers" in f else []:
            self.trigger(v, f"triggers.{name}")
        if "failsafe" in f:
            g = self.fields(f["failsafe"], "failsafe", "failsafe")
            if g is not None and "after" in g:
                for key in g:
                    self.scalar(g, "failsafe", key, "failsafe")
        if "prompts" not in f and not self.issues:
            self.err("", "no prompts: a graph plays its prompts, so it needs at least one (add prompts: "
                         "{calm: \"calm ambient pads\"})")

    # ------------------------------------------------------------ parameters
    def parameter(self, name: str, v: Any, path: str) -> None:
        if name in BUILTIN_PARAMS:
            self.err(path, f"{name!r} is built in (driven by triggers' bumps): choose another name", key=True)
            return
        f = self.fields(v, path, "parameter")
        if f is None or "type" not in f:
            return
        ptype = self.scalar(f, "parameter", "type", path)
        if ptype is None:
            return
        if ptype == "labeled":
            self.labeled(name, f, path)
            return
        if "labels" in f:
            self.err(f"{path}.labels", f"labels apply to labeled parameters only (this one is {ptype}; set type: "
                                       "labeled to use labels)")
        whole = ptype == "discrete"

        def num(key: str, fallback: float) -> float | None:
            if key not in f:
                return fallback
            x = self.number(f[key], f"{path}.{key}")
            if x is not None and whole and not x.is_integer():
                self.err(f"{path}.{key}", f"{fmt(x)} is not a whole number (a discrete parameter takes whole numbers)")
                return None
            return x

        keys = SECTIONS["parameter"].keys
        lo, hi = num("min", keys["min"].default), num("max", keys["max"].default)
        ok = lo is not None and hi is not None
        if lo is not None and hi is not None and lo >= hi:
            self.err(f"{path}.{'max' if 'max' in f else 'min'}",
                     f"impossible range: min {fmt(lo)} is not below max {fmt(hi)} (max must be greater than min)")
            ok = False
        default = num("default", lo if lo is not None else 0.0)
        safe = num("safe", math.nan) if "safe" in f else None
        if ok and lo is not None and hi is not None:
            for key, x in (("default", default), ("safe", safe)):
                if key in f and x is not None and not lo <= x <= hi:
                    self.err(f"{path}.{key}", f"{key} {fmt(x)} is outside the range {fmt(lo)}–{fmt(hi)} (min–max)")
        if "smoothing" in f:
            g = self.fields(f["smoothing"], f"{path}.smoothing", "smoothing")
            for key in g or ():
                if key != "slew" or g and g[key] is not None:
                    self.scalar(g or {}, "smoothing", key, f"{path}.smoothing")
        if "filter" in f:
            self.filter(f["filter"], f"{path}.filter", lo, hi)
        if lo is not None and hi is not None and default is not None:
            self.params[name] = (ptype, ())

    def labeled(self, name: str, f: dict[str, Any], path: str) -> None:
        for key in ("min", "max", "smoothing", "filter"):
            if key in f:
                self.err(f"{path}.{key}", f"{key} applies to continuous and discrete parameters, not to labeled ones")
        if "labels" not in f:
            self.err(f"{path}.labels", "missing required key 'labels' (a labeled parameter lists its labels, e.g. "
                                       "labels: [explore, combat])", at=path)
            return
        labels: list[str] = []
        for p, item in self.items(f["labels"], f"{path}.labels", "labels"):
            label = self.name(item, p, "a label")
            if label is None:
                continue
            if label in labels:
                self.err(p, f"duplicate label {label!r}")
                continue
            labels.append(label)
        if not labels:
            if isinstance(f["labels"], list):
                self.err(f"{path}.labels", "a labeled parameter needs at least one label")
            return
        default: str | None = labels[0]
        for key in ("default", "safe"):
            if key in f:
                label = self.name(f[key], f"{path}.{key}", "one of the labels")
                if label is not None and label not in labels:
                    self.err(f"{path}.{key}", f"{key} {label!r} is not one of the labels"
                                              f"{self.hint(label, labels, 'labels')}")
                    label = None
                if key == "default":
                    default = label
        if default is not None:
            self.params[name] = ("labeled", tuple(labels))

    def filter(self, v: Any, path: str, lo: float | None, hi: float | None) -> None:
        f = self.fields(v, path, "filter")
        if f is None:
            return
        if len(f) != 1:
            if not f and isinstance(v, dict) and not v:
                self.err(path, "empty filter: give one_euro: {...} or hysteresis: {low: .., high: ..}")
            elif len(f) > 1:
                self.err(path, "give one filter, one_euro or hysteresis, not both")
            return
        if "one_euro" in f:
            if f["one_euro"] is not None:
                g = self.fields(f["one_euro"], f"{path}.one_euro", "one_euro")
                for key in g or ():
                    self.scalar(g or {}, "one_euro", key, f"{path}.one_euro")
            return
        p = f"{path}.hysteresis"
        g = self.fields(f["hysteresis"], p, "hysteresis")
        if g is None or "low" not in g or "high" not in g:
            return
        low, high = self.number(g["low"], f"{p}.low"), self.number(g["high"], f"{p}.high")
        if low is None or high is None:
            return
        if low >= high:
            self.err(f"{p}.high", f"impossible thresholds: low {fmt(low)} is not below high {fmt(high)} (high must be "
                                  "greater than low)")
            return
        if lo is not None and hi is not None:
            for key, x in (("low", low), ("high", high)):
                if not lo <= x <= hi:
                    self.err(f"{p}.{key}", f"{key} {fmt(x)} is outside the parameter's range {fmt(lo)}–{fmt(hi)}")
                    return

    # --------------------------------------------------------------- prompts
    def prompt(self, v: Any, path: str) -> None:
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            text = self.text(v, path)
            if not text.strip():
                self.err(path, "empty prompt text (describe the music, e.g. \"calm ambient pads\")")
            else:
                self.check(v, path, _PROMPT_TEXT)
            return
        f = self.fields(v, path, "prompt")
        if f is None:
            return
        if len(f) != 1:
            self.err(path, "give text or audio, not both" if f else
                     "missing 'text' or 'audio' (a prompt is a text such as \"calm pads\", or {audio: file.wav})")
            return
        if "text" in f:
            self.scalar(f, "prompt", "text", path)
            return
        self.audio(f["audio"], f"{path}.audio")

    # ----------------------------------------------------------- value nodes
    def value(self, v: Any, path: str, want: Want, *, input_name: bool = False) -> bool:
        """A value node or a literal of kind ``want``; ``input_name``: a bare name means a parameter (or a node)."""
        if isinstance(v, list):
            self.err(path, f"expected {WANT_TEXT[want]}, got a list (a value node is a mapping with one key: "
                           f"{', '.join(VALUE_NODES)})")
            return False
        if not isinstance(v, dict):
            return self.literal(v, path, want, input_name)
        keys = list(v)
        for inline in INLINE_NODES:
            if inline in v:
                return (self.when if inline == "when" else self.select)(v, path, want)
        if len(keys) != 1:
            if not keys:
                self.err(path, f"empty mapping: a value node has one key ({', '.join(VALUE_NODES)})")
                return False
            known = [k for k in keys if k in VALUE_NODES]
            inner = (*SECTIONS["curve"].keys, *SECTIONS["clamp"].keys)
            for k in keys:
                if known and k != known[0]:
                    self.err(join(path, k), f"unexpected key {k!r} beside {known[0]!r}: a value node has one key"
                                            + (f" (put {k!r} inside {known[0]!r}?)" if k in inner else ""), key=True)
            if not known:
                self.err(join(path, keys[0]), f"unknown value node {keys[0]!r}{self.hint(keys[0], VALUE_NODES)}",
                         key=True)
            return False
        key = keys[0]
        body = v[key]
        p = join(path, key)
        if key not in VALUE_NODES:
            self.err(p, f"unknown value node {key!r}{self.hint(key, VALUE_NODES)}", key=True)
            return False
        if key == "param":
            name = self.ref(body, p, "parameter")
            return name is not None and self.param_ref(name, p, want)
        if key == "node":
            name = self.ref(body, p, "node")
            if name is not None:
                self.refs.append(name)
            return name is not None
        if want == "text":
            self.err(path, f"expected {WANT_TEXT[want]}, got a {key} node (a number)")
            return False
        if key == "curve":
            return self.curve(body, p)
        if key == "invert":
            return self.value(body, p, "number", input_name=True)
        if key == "clamp":
            return self.clamp(body, p)
        args = [self.value(item, ip, "number", input_name=True) for ip, item in self.items(body, p, "values")]
        if isinstance(body, list) and not body:
            self.err(p, f"{key} needs at least one value")
        return bool(args) and all(args)

    def literal(self, v: Any, path: str, want: Want, input_name: bool) -> bool:
        if v is None:
            self.err(path, f"empty value: expected {WANT_TEXT[want]}")
            return False
        if isinstance(v, str):
            if input_name:
                return self.input_ref(v, path, want)
            if want in ("number", "switch"):
                hint = f" (to read the parameter write {{param: {v}}})" if v in self.names["parameter"] else ""
                self.err(path, f"expected {WANT_TEXT[want]}, got {self.describe(v, path)}{hint}")
                return False
            return True
        if isinstance(v, bool):
            if want in ("number", "text"):
                self.err(path, f"expected {WANT_TEXT[want]}, got {self.describe(v, path)}")
                return False
            return True
        if not isinstance(v, (int, float)) or want == "text":
            self.err(path, f"expected {WANT_TEXT[want]}, got {self.describe(v, path)}")
            return False
        try:
            finite = math.isfinite(float(v))
        except OverflowError:
            finite = False
        if not finite:
            self.err(path, f"expected a finite number, got {self.written(v, path)}")
        return finite

    def input_ref(self, name: str, path: str, want: Want) -> bool:
        """A bare name where an input is expected: a parameter, else a node."""
        if name in self.names["parameter"]:
            return self.param_ref(name, path, want)
        if name in self.names["node"]:
            self.refs.append(name)
            return True
        self.err(path, f"undefined parameter {name!r}{self.hint(name, self.names['parameter'], 'defined')}")
        return False

    def param_ref(self, name: str, path: str, want: Want) -> bool:
        ptype = self.params.get(name, ("continuous", ()))[0]
        if ptype == "labeled" and want in ("number", "switch"):
            self.err(path, f"parameter {name!r} is labeled, not a number: turn its labels into values with "
                           f"{{when: {{param: {name}, is: <label>}}, then: .., else: ..}} or {{select: {name}, "
                           "cases: {..}}")
            return False
        if ptype != "labeled" and want == "text":
            self.err(path, f"expected {WANT_TEXT[want]}, got parameter {name!r} (a number)")
            return False
        return True

    def with_input(self, v: Any, path: str, section: str, key: str) -> tuple[dict[str, Any] | None, bool]:
        """The fields of a curve or clamp, and whether its input ``key`` (a bare name: a parameter) is valid."""
        f = self.fields(v, path, section)
        if f is None:
            return None, False
        return f, key in f and self.value(f[key], f"{path}.{key}", "number", input_name=True)

    def curve(self, v: Any, path: str) -> bool:
        f, ok = self.with_input(v, path, "curve", "input")
        if f is None:
            return False
        ok = self.scalar(f, "curve", "shape", path) is not None and ok
        return "points" in f and self.points(f["points"], f"{path}.points") and ok

    def pair(self, v: Any, path: str, what: str) -> tuple[float, float] | None:
        if not isinstance(v, list) or len(v) != 2:
            got = f"a list of {len(v)}" if isinstance(v, list) else self.describe(v, path)
            self.err(path, f"expected {what}, got {got}")
            return None
        a, b = self.number(v[0], f"{path}[0]"), self.number(v[1], f"{path}[1]")
        return None if a is None or b is None else (a, b)

    def points(self, v: Any, path: str) -> bool:
        items = self.items(v, path, "[x, y] points")
        if isinstance(v, list) and len(v) < 2:
            self.err(path, f"a curve needs at least 2 points, got {len(v)} (e.g. [[0, 0], [1, 1]])")
            return False
        ok = bool(items)
        last: float | None = None
        for p, item in items:
            pt = self.pair(item, p, "a point [x, y]")
            if pt is None:
                ok = False
                continue
            if last is not None and pt[0] <= last:
                self.err(p, f"x values must increase ({fmt(pt[0])} after {fmt(last)})")
                ok = False
            last = pt[0]
        return ok

    def clamp(self, v: Any, path: str) -> bool:
        f, ok = self.with_input(v, path, "clamp", "value")
        if f is None:
            return False
        lo, hi = self.scalar(f, "clamp", "min", path), self.scalar(f, "clamp", "max", path)
        if lo is not None and hi is not None and lo >= hi:
            self.err(f"{path}.{'max' if 'max' in f else 'min'}",
                     f"impossible range: min {fmt(lo)} is not below max {fmt(hi)} (max must be greater than min)")
            return False
        return ok and lo is not None and hi is not None

    def labeled_param(self, v: Any, path: str, what: str) -> str | None:
        name = self.ref(v, path, "parameter")
        if name is None:
            return None
        p = self.params.get(name)
        if p is None or p[0] != "labeled":
            kind = p[0] if p is not None else "built in, a number"
            labeled = [n for n, q in self.params.items() if q[0] == "labeled"]
            hint = "; for numbers use a curve with shape: constant" if what in ("when", "select") else ""
            self.err(path, f"{what} needs a labeled parameter, and {name!r} is {kind} (labeled parameters: "
                           f"{', '.join(labeled) or 'none'}{hint})")
            return None
        return name

    def label_of(self, v: Any, path: str, param: str) -> bool:
        label = self.name(v, path, f"a label of {param!r}")
        labels = self.params[param][1]
        if label is not None and label not in labels:
            self.err(path, f"{label!r} is not a label of {param!r}{self.hint(label, labels, 'labels')}")
            return False
        return label is not None

    def when(self, v: dict[str, Any], path: str, want: Want) -> bool:
        f = self.fields(v, path, "when")
        if f is None:
            return False
        ok = False
        cond = self.fields(f["when"], f"{path}.when", "condition")
        if cond is not None:
            p = self.labeled_param(cond["param"], f"{path}.when.param", "when") if "param" in cond else None
            if ("is" in cond) == ("in" in cond):
                self.err(f"{path}.when", "give is: <label> or in: [labels], one of them")
            elif p is not None:
                ok = self.when_labels(cond, f"{path}.when", p)
        ok = "then" in f and self.value(f["then"], f"{path}.then", want) and ok
        return "else" in f and self.value(f["else"], f"{path}.else", want) and ok

    def when_labels(self, cond: dict[str, Any], path: str, param: str) -> bool:
        if "is" in cond:
            return self.label_of(cond["is"], f"{path}.is", param)
        items = self.items(cond["in"], f"{path}.in", "labels")
        if not items:
            if isinstance(cond["in"], list):
                self.err(f"{path}.in", "in: needs at least one label")
            return False
        return all([self.label_of(item, ip, param) for ip, item in items])

    def select(self, v: dict[str, Any], path: str, want: Want) -> bool:
        f = self.fields(v, path, "select")
        if f is None:
            return False
        p = self.labeled_param(f["select"], f"{path}.select", "select")
        ok = p is not None
        cases = f.get("cases")
        if "cases" in f:
            entries = self.entries(cases, f"{path}.cases", "cases (label: value)")
            if isinstance(cases, dict) and not cases:
                self.err(f"{path}.cases", "select needs at least one case")
                ok = False
            for label, item in entries:
                cp = f"{path}.cases.{label}"
                if p is not None and label not in self.params[p][1]:
                    self.err(cp, f"{label!r} is not a label of {p!r}{self.hint(label, self.params[p][1], 'labels')}",
                             key=True)
                    ok = False
                ok = self.value(item, cp, want) and ok
        if "default" in f:
            ok = self.value(f["default"], f"{path}.default", want) and ok
        elif p is not None and isinstance(cases, dict) and cases:
            missing = [lb for lb in self.params[p][1] if lb not in cases]
            if missing:
                self.err(f"{path}.cases", f"no case for {', '.join(map(repr, missing))} and no default: add the cases "
                                          "or a default")
                ok = False
        return ok and "cases" in f

    def cycles(self, deps: Mapping[str, list[str]]) -> None:
        """Reports each cycle among the named nodes once, as ``a → b → a``, without recursion."""
        graph = {name: [r for r in refs if r in deps] for name, refs in deps.items()}
        order = {name: i for i, name in enumerate(self.names["node"])}
        color: dict[str, int] = {}  # 1: on the path, 2: done
        seen: set[frozenset[str]] = set()
        for start in graph:
            if start in color:
                continue
            color[start] = 1
            path = [start]
            iters = [iter(graph[start])]
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    color[path.pop()] = 2
                    iters.pop()
                elif color.get(nxt) == 1:
                    cycle = path[path.index(nxt):]
                    if frozenset(cycle) not in seen:
                        seen.add(frozenset(cycle))
                        first = min(cycle, key=order.__getitem__)
                        i = cycle.index(first)
                        ring = cycle[i:] + cycle[:i] + [first]
                        self.err(f"nodes.{first}", f"nodes form a cycle: {' → '.join(ring)} (a node cannot depend "
                                                   "on itself)", key=True)
                elif nxt not in color:
                    color[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(graph[nxt]))

    # -------------------------------------------------------------------- mix
    def mix(self, v: Any, path: str) -> None:
        for p, item in self.items(v, path, "mix entries"):
            self.mix_entry(item, p)

    def mix_entry(self, v: Any, path: str) -> None:
        if not isinstance(v, dict) or not v:
            self.err(path, "expected a mix entry, {prompt: name, weight: ..}, {blend: {..}} or {pad: {..}}, got "
                           f"{self.describe(v, path)}")
            return
        for kind in ("blend", "pad"):
            if kind in v:
                f = self.fields(v, path, _ONE_KEY[kind])
                if f is not None and kind in f:
                    (self.blend if kind == "blend" else self.pad)(f[kind], f"{path}.{kind}")
                return
        if "prompt" not in v:
            first = next(iter(v))
            self.err(join(path, first), f"unknown mix entry key {first!r}"
                                        f"{self.hint(first, (*SECTIONS['weight'].keys, 'blend', 'pad'))}", key=True)
            return
        f = self.fields(v, path, "weight")
        if f is not None:
            self.ref(f["prompt"], f"{path}.prompt", "prompt")
            if "weight" in f and self.value(f["weight"], f"{path}.weight", "number"):
                self.literals(f["weight"], f"{path}.weight", "weight", _negative)

    def blend(self, v: Any, path: str) -> None:
        f = self.fields(v, path, "blend")
        if f is None:
            return
        if "input" in f:
            self.value(f["input"], f"{path}.input", "number", input_name=True)
        if "prompts" not in f:
            return
        items = self.items(f["prompts"], f"{path}.prompts", "[prompt, position] stops")
        if isinstance(f["prompts"], list) and len(items) < 2:
            self.err(f"{path}.prompts", f"a blend needs at least 2 stops, got {len(items)}")
        last: float | None = None
        for p, item in items:
            if not isinstance(item, list) or len(item) != 2:
                self.err(p, f"expected a stop [prompt, position], got {self.describe(item, p)}")
                continue
            name, pos = self.ref(item[0], f"{p}[0]", "prompt"), self.number(item[1], f"{p}[1]")
            if name is None or pos is None:
                continue
            if last is not None and pos <= last:
                self.err(p, f"blend positions must increase ({fmt(pos)} after {fmt(last)})")
            last = pos

    def pad(self, v: Any, path: str) -> None:
        f = self.fields(v, path, "pad")
        if f is None:
            return
        for key in ("x", "y"):
            if key in f:
                self.value(f[key], f"{path}.{key}", "number", input_name=True)
        mode = self.scalar(f, "pad", "mode", path)
        self.scalar(f, "pad", "power", path)
        if "points" not in f:
            return
        p = f"{path}.points"
        entries = self.entries(f["points"], p, "prompt: [x, y] points")
        ok = True
        if isinstance(f["points"], dict) and len(entries) < 2:
            self.err(p, f"a pad needs at least 2 points, got {len(entries)}")
            ok = False
        points: list[tuple[str, float, float]] = []
        for name, item in entries:
            if name not in self.names["prompt"]:
                self.err(f"{p}.{name}", f"undefined prompt {name!r}{self.hint(name, self.names['prompt'], 'defined')}",
                         key=True)
                ok = False
            pt = self.pair(item, f"{p}.{name}", "a position [x, y]")
            if pt is None:
                ok = False
            else:
                points.append((name, *pt))
        if ok and mode == "bilinear":
            self.grid(p, points)

    def grid(self, path: str, points: Sequence[tuple[str, float, float]]) -> None:
        """Bilinear pads need exactly one point on every corner of a grid."""
        at: dict[tuple[float, float], str] = {}
        for name, px, py in points:
            if (px, py) in at:
                self.err(path, f"{at[px, py]!r} and {name!r} are both at ({fmt(px)}, {fmt(py)}): bilinear needs one "
                               "point per grid corner")
                return
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
            where = ", ".join(f"({fmt(a)}, {fmt(b)})" for a, b in missing[:4]) or "a second row or column"
            self.err(path, f"mode bilinear needs a point on every corner of a grid; missing {where} (or use mode: "
                           "idw, which takes points anywhere)")

    def default_mix(self, v: Any) -> None:
        weights: list[float] = []
        for name, item in self.entries(v, "default_mix", "prompt: weight"):
            p = f"default_mix.{name}"
            if name not in self.names["prompt"]:
                self.err(p, f"undefined prompt {name!r}{self.hint(name, self.names['prompt'], 'defined')}", key=True)
            w = self.number(item, p, _WEIGHT)
            if w is not None:
                weights.append(w)
        if isinstance(v, dict) and v and len(weights) == len(v) and not any(weights):
            self.err("default_mix", "every weight is 0: the default mix needs a weight above 0")

    def controls(self, v: Any, path: str) -> None:
        for name, item in self.entries(v, path, "control: value"):
            p = f"{path}.{name}"
            if name not in CONTROL_KINDS:
                self.err(p, f"unknown control {name!r}{self.hint(name, CONTROL_NAMES)}", key=True)
                continue
            if self.value(item, p, CONTROL_KINDS[name]):
                self.literals(item, p, name, partial(control_problem, name))

    def literals(self, v: Any, path: str, name: str, problem: Callable[[Any], str | None]) -> None:
        """Every literal that reaches control ``name`` (or a mix weight) as it is — directly, through a named node,
        a when branch, a select case or default, or the labels of a labeled parameter read by ``scale`` — has no
        ``problem`` (the backend-independent ranges of :mod:`.controls`). Values computed from parameters are
        clamped at run time."""
        todo, seen = [(v, path)], set()
        while todo:
            n, p = todo.pop()
            if isinstance(n, dict):
                if "when" in n:
                    todo += [(n[k], f"{p}.{k}") for k in ("else", "then") if k in n]
                elif "select" in n:
                    if "default" in n:
                        todo.append((n["default"], f"{p}.default"))
                    cases = n.get("cases")
                    todo += [(c, f"{p}.cases.{label}") for label, c in reversed(cases.items())] \
                        if isinstance(cases, dict) else []
                elif list(n) == ["node"] and n["node"] in self.node_data and n["node"] not in seen:
                    seen.add(n["node"])
                    todo.append((self.node_data[n["node"]], f"nodes.{n['node']}"))
                elif list(n) == ["param"] and name == "scale" and self.params.get(n["param"], ("",))[0] == "labeled":
                    todo += [(label, f"parameters.{n['param']}.labels[{i}]")
                             for i, label in reversed(list(enumerate(self.params[n["param"]][1])))]
                continue  # curves, sums, clamps: computed, clamped by the engine
            why = problem(n)
            if why is not None and (p, name) not in self.reported:
                self.reported.add((p, name))
                what = "a mix weight" if name == "weight" else f"control {name!r}"
                self.err(p, f"{self.written(n, p) if not isinstance(n, str) else shorten(repr(n))} cannot be {what}: "
                            f"{why}" + ("" if isinstance(n, str) else
                                                  " (a literal is refused; a value computed from parameters is "
                                                  "clamped into range)"))

    def control_rate(self, rate: float | None) -> None:
        """``control_rate`` divides the audio's samples per second into whole control blocks."""
        block = int(round(SAMPLE_RATE / rate)) if rate else 0
        if rate is not None and (block <= 0 or abs(block * rate - SAMPLE_RATE) > 1e-6):
            good = [r for r in range(10, 1001) if SAMPLE_RATE % r == 0]
            near = sorted(sorted(good, key=lambda r: abs(r - rate))[:3])
            self.err("control_rate", f"{fmt(rate)} Hz does not divide {SAMPLE_RATE} samples per second into whole "
                                     f"control blocks; use a rate that does (near it: "
                                     f"{', '.join(str(r) for r in near)})")

    # ------------------------------------------------------ states and events
    def states(self, v: Any) -> None:
        f = self.fields(v, "states", "states")
        if f is None or "list" not in f:
            return
        entries = self.entries(f["list"], "states.list", "states")
        if isinstance(f["list"], dict) and not entries:
            self.err("states.list", "no states: list at least one (name: {} is enough)")
        for name, item in entries:
            p = f"states.list.{name}"
            if name == STATE_ANY:
                self.err(p, "'any' is reserved (in transitions it matches every state): rename this state", key=True)
                continue
            if item is None:
                continue
            g = self.fields(item, p, "state")
            if g is not None and "mix" in g:
                self.mix(g["mix"], f"{p}.mix")
            if g is not None and "controls" in g:
                self.controls(g["controls"], f"{p}.controls")
        if "driven_by" in f:
            param = self.labeled_param(f["driven_by"], "states.driven_by", "driven_by")
            if param is not None:
                labels, names = set(self.params[param][1]), set(self.names["state"])
                if labels != names:
                    parts = []
                    if labels - names:
                        parts.append(f"labels without a state: {', '.join(sorted(labels - names))}")
                    if names - labels:
                        parts.append(f"states without a label: {', '.join(sorted(names - labels))}")
                    self.err("states.driven_by",
                             f"the labels of {param!r} must be the state names ({'; '.join(parts)})")
        if "initial" in f:
            self.ref(f["initial"], "states.initial", "state")

    def transitions(self, v: Any) -> None:
        first_at: dict[tuple[str, str], str] = {}
        names = self.names["state"]
        for p, item in self.items(v, "transitions", "transitions"):
            f = self.fields(item, p, "transition")
            if f is None:
                continue
            ends: list[str | None] = []
            for key in ("from", "to"):
                end = self.scalar(f, "transition", key, p)
                if key in f and end is not None and end != STATE_ANY and end not in names:
                    self.err(f"{p}.{key}", f"unknown state {end!r}{self.hint(end, [*names, STATE_ANY], 'states')}")
                    end = None
                ends.append(end)
            rest = [self.scalar(f, "transition", key, p) for key in ("quantize", "fade", "mode")]
            source, target = ends
            if source is None or target is None or any(x is None for x in rest):
                continue
            if (source, target) in first_at:
                self.err(p, f"a second rule from {source} to {target} (the first is at "
                            f"{self.where(first_at[source, target])}): remove one")
                continue
            first_at[source, target] = p

    def stinger(self, v: Any, path: str) -> None:
        f = self.fields(v, path, "stinger")
        if f is None:
            return
        if ("prompt" in f) == ("audio" in f):
            self.err(path, "give prompt: <name> or audio: <file>, not both" if "prompt" in f else
                     "missing 'prompt' or 'audio' (a stinger plays a prompt of the graph or an audio file)")
        elif "prompt" in f:
            self.ref(f["prompt"], f"{path}.prompt", "prompt")
        else:
            self.audio(f["audio"], f"{path}.audio")
        for key in ("quantize", "length", "cooldown", "duck", "gain"):
            if key in f:
                self.scalar(f, "stinger", key, path)

    def trigger(self, v: Any, path: str) -> None:
        if v is None or (isinstance(v, dict) and not v):
            self.err(path, "a trigger that does nothing: give bump, stinger or set_state")
            return
        f = self.fields(v, path, "trigger")
        if f is None:
            return
        for key in ("bump", "stinger"):
            if key in f:
                self.scalar(f, "trigger", key, path)
        if "set_state" in f:
            if not self.names["state"]:
                self.err(f"{path}.set_state", "set_state needs states: add a states: section")
            else:
                self.scalar(f, "trigger", "set_state", path)


def _negative(v: Any) -> str | None:
    """Why a literal mix weight is refused: below 0 (the weights of a mix are >= 0, as a SetPrompts' are)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
        return "must be >= 0"
    return None


_ONE_KEY = {kind: Section(MappingProxyType({kind: Key(Sub(kind))})) for kind in ("blend", "pad")}
