"""The MIDI mapping file: which MIDI message drives which parameter, trigger, state or the ``notes`` control.

One job: read, check and write mapping files, and turn a MIDI value into a
parameter value. No I/O besides the file; no rtmidi.

Format (YAML or JSON, read with the graph files' safe reader, so every problem
is printed ``file:line path: message``)::

    cadenza_midi: 1
    port: nanoKONTROL        # the input port to open (number or part of its name); --port overrides
    channel: 1               # default channel of every entry, 1-16 (leave out: any channel)
    map:
      - {cc: 1, parameter: danger}                          # 7-bit CC 1 → danger over its whole range
      - {cc: 2, parameter: speed, range: [0.2, 0.8], curve: s-curve}
      - {cc14: 7, parameter: health}                        # 14-bit: MSB CC 7 + LSB CC 39
      - {pitch_bend: true, parameter: pos_x, channel: 2}
      - {aftertouch: true, parameter: intensity}            # channel pressure
      - {poly_aftertouch: 60, parameter: brightness}        # one key's pressure (or: any)
      - {notes: true, control: notes}                       # held notes → the notes control
      - {note: 36, trigger: hit}                            # a note-on fires a trigger
      - {program: 0, state: calm}                           # program change → state (program 0-127)

Each entry has one source (``cc``, ``cc14``, ``pitch_bend``, ``aftertouch``,
``poly_aftertouch``, ``note``, ``notes``, ``program``) and one target
(``parameter``, ``trigger``, ``state``, ``control: notes``). A parameter's
``range`` (``[from, to]``; reversed inverts the knob) defaults to the
parameter's own range as the runtime describes it; ``curve`` is one of the
graph's curve shapes (:data:`cadenza.graph_format.declaration.CURVE_SHAPES`:
linear, s-curve, log, exp, sine, constant), applied to the normalized MIDI value
before it is scaled into the range. A labeled parameter takes the label at the
knob's position (its labels spread evenly over the travel). Pitch bend spans
-8192…8191 (0 in the middle maps to the middle of the range).

:func:`check_against` checks a mapping against the runtime's graph
(:class:`~cadenza.sdk.GraphInfo`) and returns one line per unknown name.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cadenza.errors import UsageError
from cadenza.graph_format.declaration import CURVE_SHAPES
from cadenza.runtime.graph.issues import GraphIssue
from cadenza.runtime.graph.nodes import SHAPES

__all__ = ["FORMAT_VERSION", "SOURCES", "TARGETS", "Binding", "Mapping", "MappingError", "check_against",
           "load_mapping", "parse_mapping", "write_mapping"]

FORMAT_VERSION = 1
SOURCES = ("cc", "cc14", "pitch_bend", "aftertouch", "poly_aftertouch", "note", "notes", "program")
TARGETS = ("parameter", "trigger", "state", "control")
MAX_FILE_BYTES = 1 << 20
# the largest raw value of each source (its normalized value is raw / full); pitch bend is 0..16383 raw
FULL_SCALE = {"cc": 127, "cc14": 16383, "pitch_bend": 16383, "aftertouch": 127, "poly_aftertouch": 127}


class MappingError(UsageError):
    """A mapping file with problems; ``issues`` lists each (``file:line path: message``), one per line."""

    def __init__(self, issues: list[GraphIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: math.inf if i.line is None else i.line)
        super().__init__("\n".join(str(i) for i in self.issues))


@dataclass(frozen=True)
class Binding:
    """One mapping entry. ``number``: the CC (MSB for cc14), note or program number; None for "any" (pitch bend,
    channel aftertouch, ``notes``, ``poly_aftertouch: any``). ``channel`` 0-15 or None (any)."""

    source: str
    number: int | None
    channel: int | None
    target: str
    name: str
    range: tuple[float, float] | None = None
    curve: str = "linear"
    line: int | None = None

    def describe(self) -> str:
        src = {"cc": f"CC {self.number}", "cc14": f"CC {self.number}/{(self.number or 0) + 32} (14-bit)",
               "pitch_bend": "pitch bend", "aftertouch": "channel aftertouch",
               "poly_aftertouch": f"poly aftertouch of note {'any' if self.number is None else self.number}",
               "note": f"note {self.number}", "notes": "notes", "program": f"program {self.number}"}[self.source]
        ch = "any channel" if self.channel is None else f"channel {self.channel + 1}"
        return f"{src} on {ch} -> {self.target} {self.name}"

    def to_data(self, default_channel: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.source in ("pitch_bend", "aftertouch", "notes"):
            out[self.source] = True
        elif self.source == "poly_aftertouch" and self.number is None:
            out[self.source] = "any"
        else:
            out[self.source] = self.number
        out[self.target] = self.name
        if self.range is not None:
            out["range"] = [self.range[0], self.range[1]]
        if self.curve != "linear":
            out["curve"] = self.curve
        if self.channel != default_channel:
            out["channel"] = "any" if self.channel is None else self.channel + 1
        return out

    def value(self, raw: int, info: Any) -> float | str | None:
        """The parameter value for a raw MIDI value (0..full scale), given the parameter's ``ParameterInfo``
        (None: not described; then ``range`` or 0..1). None when nothing can be sent (a labeled parameter
        without labels)."""
        full = FULL_SCALE[self.source]
        t = min(max(raw / full, 0.0), 1.0)
        y = SHAPES[self.curve](t)
        if info is not None and info.kind == "labeled":
            labels = tuple(info.labels)
            if not labels:
                return None
            return labels[min(int(y * len(labels)), len(labels) - 1)]
        if self.range is not None:
            lo, hi = self.range
        elif info is not None and math.isfinite(info.minimum) and math.isfinite(info.maximum):
            lo, hi = float(info.minimum), float(info.maximum)
        else:
            lo, hi = 0.0, 1.0
        v = lo + (hi - lo) * y
        if info is not None and info.kind == "discrete":
            v = float(round(v))
        return v


@dataclass
class Mapping:
    """A whole mapping file: the default ``port`` and ``channel`` (0-15 or None) and the entries."""

    bindings: list[Binding]
    port: str | None = None
    channel: int | None = None
    file: str = "<mapping>"

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"cadenza_midi": FORMAT_VERSION}
        if self.port is not None:
            data["port"] = self.port
        if self.channel is not None:
            data["channel"] = self.channel + 1
        data["map"] = [b.to_data(self.channel) for b in self.bindings]
        return data


# --------------------------------------------------------------------------- reading


class _Checker:
    def __init__(self, file: str, lines: dict[str, int]) -> None:
        self.file = file
        self.lines = lines
        self.issues: list[GraphIssue] = []

    def bad(self, path: str, message: str) -> None:
        probe = path
        line = self.lines.get(probe)
        while line is None and probe:
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
            line = self.lines.get(probe)
        self.issues.append(GraphIssue(self.file, line, path, message))


def _int_in(c: _Checker, value: Any, path: str, lo: int, hi: int, what: str, any_ok: bool = False) -> int | None:
    if any_ok and value == "any":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        extra = " or any" if any_ok else ""
        c.bad(path, f"{what} must be a whole number {lo}-{hi}{extra}, got {value!r}")
        return None
    return value


def _channel(c: _Checker, value: Any, path: str) -> int | None:
    if value is None or value == "any":
        return None
    ch = _int_in(c, value, path, 1, 16, "the MIDI channel", any_ok=True)
    return None if ch is None else ch - 1


def _entry(c: _Checker, e: Any, path: str, default_channel: int | None) -> Binding | None:
    if not isinstance(e, dict):
        c.bad(path, f"an entry is a mapping like {{cc: 1, parameter: danger}}, got {e!r}")
        return None
    known = set(SOURCES) | set(TARGETS) | {"range", "curve", "channel"}
    for key in e:
        if key not in known:
            c.bad(f"{path}.{key}", f"unknown key {key!r}; an entry has one source ({', '.join(SOURCES)}), one "
                                   f"target ({', '.join(TARGETS)}) and optionally range, curve, channel")
    sources = [k for k in SOURCES if k in e]
    targets = [k for k in TARGETS if k in e]
    if len(sources) != 1:
        c.bad(path, f"give exactly one source of {', '.join(SOURCES)}; got {', '.join(sources) or 'none'}")
        return None
    if len(targets) != 1:
        c.bad(path, f"give exactly one target of {', '.join(TARGETS)}; got {', '.join(targets) or 'none'}")
        return None
    source, target = sources[0], targets[0]
    spath, tpath = f"{path}.{source}", f"{path}.{target}"
    raw = e[source]
    number: int | None = None
    ok = True
    if source == "cc":
        number = _int_in(c, raw, spath, 0, 127, "a CC number")
        ok = number is not None
    elif source == "cc14":
        number = _int_in(c, raw, spath, 0, 31, "a 14-bit CC's MSB number (its LSB is number + 32)")
        ok = number is not None
    elif source in ("note", "program"):
        number = _int_in(c, raw, spath, 0, 127, f"a {source} number")
        ok = number is not None
    elif source == "poly_aftertouch":
        number = _int_in(c, raw, spath, 0, 127, "the note of poly aftertouch", any_ok=True)
        ok = number is not None or raw == "any"
    elif raw is not True:
        c.bad(spath, f"write {source}: true, got {raw!r}")
        ok = False
    name = e[target]
    if not isinstance(name, str) or not name:
        c.bad(tpath, f"the {target}'s name must be text, got {name!r}")
        return None
    continuous = source in FULL_SCALE
    if target == "parameter" and not continuous:
        c.bad(tpath, f"{source} has no value to set a parameter with; map a {source} to a trigger"
                     f"{', a state' if source in ('note', 'program') else ''} or control: notes")
        ok = False
    if target in ("trigger", "state") and source not in ("note", "program"):
        c.bad(tpath, f"a {target} is fired by a note or a program change, not by {source}")
        ok = False
    if target == "control":
        if name != "notes":
            c.bad(tpath, f"the only control MIDI drives is notes (held notes), got {name!r}")
            ok = False
        elif source not in ("notes", "note"):
            c.bad(tpath, "control: notes takes notes: true (every note) or note: N")
            ok = False
    rng: tuple[float, float] | None = None
    if "range" in e:
        r = e["range"]
        if target != "parameter":
            c.bad(f"{path}.range", "range applies to a parameter only")
            ok = False
        elif (not isinstance(r, list) or len(r) != 2
              or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in r)):
            c.bad(f"{path}.range", f"range is [from, to] with two finite numbers, got {r!r}")
            ok = False
        elif float(r[0]) == float(r[1]):
            c.bad(f"{path}.range", f"range {r!r} is one value: the control would do nothing; give two different ends")
            ok = False
        else:
            rng = (float(r[0]), float(r[1]))
    curve = "linear"
    if "curve" in e:
        if e["curve"] not in CURVE_SHAPES:
            c.bad(f"{path}.curve", f"unknown curve {e['curve']!r}; the curves: {', '.join(CURVE_SHAPES)}")
            ok = False
        elif target != "parameter":
            c.bad(f"{path}.curve", "curve applies to a parameter only")
            ok = False
        else:
            curve = str(e["curve"])
    channel = _channel(c, e["channel"], f"{path}.channel") if "channel" in e else default_channel
    if not ok:
        return None
    return Binding(source, number, channel, target, name, rng, curve, c.lines.get(path))


def _in_mapping_words(issue: GraphIssue) -> GraphIssue:
    """The shared YAML reader's message about a graph file, said of a mapping file."""
    import dataclasses

    message = issue.message
    if message.startswith("the file is empty"):
        message = f"the file is empty: a mapping file starts with 'cadenza_midi: {FORMAT_VERSION}'"
    message = message.replace("a style graph", "a mapping file").replace(
        ", or define it once under nodes: and use {node: name}", "")
    return dataclasses.replace(issue, message=message) if message != issue.message else issue


def parse_mapping(text: str, file: str = "<mapping>") -> Mapping:
    """Mapping text → :class:`Mapping`; :class:`MappingError` with every problem (``file:line path: message``)."""
    from cadenza.runtime.graph.issues import InvalidGraph
    from cadenza.runtime.graph.yamlread import parse_tree

    try:
        tree = parse_tree(text, file)
    except InvalidGraph as exc:
        raise MappingError([_in_mapping_words(i) for i in exc.issues]) from None
    c = _Checker(file, tree.lines)
    c.issues.extend(_in_mapping_words(i) for i in tree.issues)
    data = tree.data
    if not isinstance(data, dict):
        c.bad("", "a mapping file is a YAML mapping with cadenza_midi: 1 and map: [...]")
        raise MappingError(c.issues)
    for key in data:
        if key not in ("cadenza_midi", "port", "channel", "map"):
            c.bad(key, f"unknown key {key!r}; the keys are cadenza_midi, port, channel, map")
    if data.get("cadenza_midi") != FORMAT_VERSION:
        c.bad("cadenza_midi" if "cadenza_midi" in data else "",
              f"the first line must be cadenza_midi: {FORMAT_VERSION} (got {data.get('cadenza_midi')!r})")
    port = data.get("port")
    if port is not None and not isinstance(port, (str, int)):
        c.bad("port", f"port is a number or part of a port's name, got {port!r}")
        port = None
    channel = _channel(c, data.get("channel"), "channel")
    entries = data.get("map", [])
    if not isinstance(entries, list):
        c.bad("map", "map is a list of entries like - {cc: 1, parameter: danger}")
        entries = []
    bindings: list[Binding] = []
    seen: dict[tuple[str, int | None, int | None], int] = {}
    cc_used: dict[tuple[int, int | None], int] = {}  # (cc number, channel) → entry index, for 14-bit overlaps
    for i, e in enumerate(entries):
        b = _entry(c, e, f"map[{i}]", channel)
        if b is None:
            continue
        if b.source == "note" and b.target == "control":
            ident: tuple[str, int | None, int | None] = ("note_control", b.number, b.channel)
        else:
            ident = (b.source, b.number, b.channel)
        if ident in seen and b.source not in ("note",):
            c.bad(f"map[{i}]", f"{b.describe()}: the same message is already mapped by map[{seen[ident]}]")
            continue
        seen.setdefault(ident, i)
        numbers = [b.number] if b.source == "cc" else [b.number, (b.number or 0) + 32] if b.source == "cc14" else []
        clash = False
        for n in numbers:
            assert n is not None
            other = cc_used.get((n, b.channel))
            if other is not None and other != seen.get(ident):
                c.bad(f"map[{i}]", f"CC {n} is already used by map[{other}] (a 14-bit pair uses CC n and n+32)")
                clash = True
            cc_used.setdefault((n, b.channel), i)
        if not clash:
            bindings.append(b)
    if c.issues:
        raise MappingError(c.issues)
    return Mapping(bindings, None if port is None else str(port), channel, file)


def load_mapping(path: str | os.PathLike[str]) -> Mapping:
    """Read a mapping file (:func:`parse_mapping`); a missing or unreadable file is a :class:`UsageError`."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UsageError(f"{p}: {size} bytes; a mapping file is at most {MAX_FILE_BYTES} bytes", where="--map")
        raw = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the mapping file {str(p)!r}: {exc.strerror or exc}", where="--map") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MappingError([GraphIssue(str(p), None, "", "not UTF-8 text: a mapping file is YAML")]) from None
    return parse_mapping(text, str(p))


def write_mapping(mapping: Mapping, path: str | os.PathLike[str]) -> None:
    """Write ``mapping`` to ``path`` atomically (a temporary file beside it, then renamed over it)."""
    p = Path(path)
    text = ("# Cadenza MIDI mapping (cadenza midi --map THIS_FILE); written by cadenza midi --learn\n"
            + yaml.safe_dump(mapping.to_data(), sort_keys=False, default_flow_style=None, width=120))
    parse_mapping(text, str(p))  # what we write must read back
    folder = p.parent if str(p.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------- against the graph


def check_against(mapping: Mapping, graph: Any, names: Callable[[Any], str] | None = None) -> list[str]:
    """One line per entry whose name the runtime's graph (a ``GraphInfo``) lacks, or whose range leaves the
    parameter's; empty when everything fits."""
    def listing(items: Any) -> str:
        items = list(items)
        return ", ".join(items[:12]) + (f" … ({len(items)} in all)" if len(items) > 12 else "") if items else "none"

    problems: list[str] = []
    for b in mapping.bindings:
        where = f"{mapping.file}:{b.line}" if b.line else mapping.file
        if b.target == "parameter":
            info = graph.parameters.get(b.name)
            if info is None:
                problems.append(f"{where}: {b.describe()}: the graph {graph.name!r} has no parameter {b.name!r}; "
                                f"its parameters: {listing(graph.parameters)}")
            elif b.range is not None and info.kind == "labeled":
                problems.append(f"{where}: {b.describe()}: {b.name!r} is labeled ({listing(info.labels)}); "
                                "leave range out (the knob's travel picks the label)")
            elif b.range is not None and not all(info.minimum <= x <= info.maximum for x in b.range):
                problems.append(f"{where}: {b.describe()}: range [{b.range[0]:g}, {b.range[1]:g}] leaves the "
                                f"parameter's [{info.minimum:g}, {info.maximum:g}]; values outside are clamped")
        elif b.target == "trigger" and b.name not in graph.triggers:
            problems.append(f"{where}: {b.describe()}: the graph {graph.name!r} has no trigger {b.name!r}; "
                            f"its triggers: {listing(graph.triggers)}")
        elif b.target == "state" and b.name not in graph.states:
            problems.append(f"{where}: {b.describe()}: the graph {graph.name!r} has no state {b.name!r}; "
                            f"its states: {listing(graph.states)}")
    return problems
