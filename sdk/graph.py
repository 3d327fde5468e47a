"""Author style graphs in Python: build a graph with checked references, export it as YAML or JSON.

A :class:`GraphBuilder` writes exactly the style-graph file format (version 1,
described in ``cadenza.runtime.graph.spec``), so a graph built here loads in
the runtime like a hand-written file. Each declaration returns a handle
(:class:`Param`, :class:`PromptRef`, :class:`NodeRef`, :class:`StateRef`,
:class:`StingerRef`, :class:`TriggerRef`) and later declarations take those
handles, so a misspelt or undeclared name fails where it is written::

    from cadenza.sdk.graph import INTENSITY, GraphBuilder, weight

    g = GraphBuilder("action-game")
    danger = g.continuous("danger", attack=0.8, release=3.0)
    mode = g.labeled("mode", ["explore", "combat"])
    calm = g.prompt("calm", "calm ambient pads")
    battle = g.prompt("battle", "aggressive drum and bass")
    g.weight(calm, danger.curve([(0, 1), (1, 0)], shape="s-curve"))
    g.control("bpm", danger.curve([(0, 90), (1, 150)]))
    g.states_driven_by(mode)
    g.state("explore")
    g.state("combat", mix=[weight(battle, 1)], controls={"bpm": 172})
    g.transition(target="combat", quantize="beat", fade="2 beats", mode="crossfade")
    g.save("action.yaml")

Value expressions are small immutable objects (:class:`Expr`): a parameter
handle, :func:`curve`, :func:`add`, :func:`multiply`, :func:`minimum`,
:func:`maximum`, :func:`invert`, :func:`clamp`, :func:`when` and
:meth:`Param.select`. ``+``, ``-``, ``*``, unary ``-`` and ``/`` by a number
build arithmetic (``1 - x`` is ``{invert: x}``). Python numbers, ``True``/
``False`` and strings are literals; a string is a value only where the format
takes a text (the ``scale`` control, a branch of :func:`when` there), never a
parameter name — pass the handle.

The builder checks what it can see locally — names, duplicates, references,
shapes, quantize and mode words, control names, ranges, curve points, what
kind of value each place takes — and raises :class:`~cadenza.errors.GraphError`
naming the bad value, where it is in the file (``mix[1].weight``) and the
valid choices. The runtime's loader remains the full validator.

This module imports no part of ``cadenza.runtime`` (nor numba, sounddevice or
jax): only PyYAML and the shared errors.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import math
import numbers
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeAlias, Union

import yaml

from cadenza.errors import GraphError, UsageError

__all__ = [
    "FORMAT_VERSION",
    "CURVE_SHAPES",
    "CONTROL_NAMES",
    "QUANTIZE",
    "MODES",
    "PAD_MODES",
    "INTENSITY",
    "Value",
    "Expr",
    "Param",
    "NodeRef",
    "Curve",
    "Op",
    "Clamp",
    "Condition",
    "When",
    "Select",
    "MixEntry",
    "Weight",
    "Blend",
    "Pad",
    "PromptRef",
    "StateRef",
    "StingerRef",
    "TriggerRef",
    "GraphBuilder",
    "curve",
    "add",
    "multiply",
    "minimum",
    "maximum",
    "invert",
    "clamp",
    "when",
    "weight",
    "blend",
    "pad",
]

# ------------------------------------------------------- the format's vocabulary
# Kept equal to cadenza.runtime.graph.spec by a test: the SDK may not import the runtime.
FORMAT_VERSION = 1
BUILTIN_PARAMS = ("intensity",)
CURVE_SHAPES = ("linear", "s-curve", "log", "exp", "sine", "constant")
CONTROL_NAMES = (
    "bpm", "density", "brightness", "scale", "mute_bass", "mute_drums",
    "notes", "drums", "temperature", "top_k", "guidance", "seed",
)
QUANTIZE = ("now", "beat", "bar")
MODES = ("blend", "crossfade")
PAD_MODES = ("idw", "bilinear")
STATE_ANY = "any"

Shape: TypeAlias = Literal["linear", "s-curve", "log", "exp", "sine", "constant"]
Quantize: TypeAlias = Literal["now", "beat", "bar"]
Mode: TypeAlias = Literal["blend", "crossfade"]
PadMode: TypeAlias = Literal["idw", "bilinear"]
ParamKind: TypeAlias = Literal["continuous", "discrete", "labeled"]
OpName: TypeAlias = Literal["add", "multiply", "min", "max", "invert"]

# What a place in the file takes: a number, a switch (true/false or a number), a text, or anything.
Want: TypeAlias = Literal["number", "switch", "text", "any"]
CONTROL_KINDS: Mapping[str, Want] = MappingProxyType({
    "bpm": "number", "density": "number", "brightness": "number", "scale": "text",
    "mute_bass": "switch", "mute_drums": "switch", "notes": "any", "drums": "switch",
    "temperature": "number", "top_k": "number", "guidance": "number", "seed": "number",
})
_WANT_TEXT: Mapping[Want, str] = MappingProxyType({
    "number": "a number or a value expression",
    "switch": "true/false, a number or a value expression",
    "text": "a text (such as 'C major') or a value expression",
    "any": "a literal or a value expression",
})

#: A value where the format takes a value node: an :class:`Expr`, or a literal
#: number, ``True``/``False`` or string.
Value: TypeAlias = Union["Expr", float, str]
#: A duration: seconds as a number, or text such as ``"4 s"``, ``"500 ms"``,
#: ``"2 beats"``, ``"1 bar"`` (musical time only where the format allows it).
Duration: TypeAlias = Union[float, str]

_Data: TypeAlias = Any  # plain JSON-like data: dict, list, str, int, float, bool


# ----------------------------------------------------------------------- helpers
def _fail(message: str, where: str | None = None) -> NoReturn:
    raise GraphError(message, where=where)


@contextlib.contextmanager
def _within(prefix: str) -> Iterator[None]:
    """Places the errors of objects built inside under ``prefix`` (``weight`` → ``mix[2].weight``)."""
    try:
        yield
    except GraphError as exc:
        raise GraphError(exc.message, where=_join(prefix, exc.where) if exc.where else prefix) from None


def _choices(word: str, choices: Sequence[str], label: str = "valid") -> str:
    """`` (did you mean 'bar'? valid: now, beat, bar)``."""
    if not choices:
        return f" ({label}: none)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f" ({hint}{label}: {', '.join(choices)})"


def _join(where: str | None, key: str) -> str:
    if not where:
        return key
    return f"{where}{key}" if key.startswith("[") else f"{where}.{key}"


def _describe(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, numbers.Real):
        return f"the number {value!r}"
    return f"{type(value).__name__} {value!r}"


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _number(value: object, where: str | None, *, what: str = "a number", lo: float | None = None,
            hi: float | None = None, above: float | None = None, below: float | None = None,
            whole: bool = False) -> int | float:
    """A finite number within the bounds, as an ``int`` or ``float`` that YAML and JSON write plainly."""
    if not _is_number(value):
        _fail(f"expected {what}, got {_describe(value)}", where)
    assert isinstance(value, numbers.Real)
    v = float(value)
    if not math.isfinite(v):
        _fail(f"expected a finite number, got {value!r}", where)
    if above is not None and v <= above:
        _fail(f"must be > {above:g}, got {value!r}", where)
    if below is not None and v >= below:
        _fail(f"must be < {below:g}, got {value!r}", where)
    if lo is not None and v < lo:
        _fail(f"must be >= {lo:g}, got {value!r}", where)
    if hi is not None and v > hi:
        _fail(f"must be <= {hi:g}, got {value!r}", where)
    if whole:
        if not v.is_integer():
            _fail(f"{value!r} is not a whole number (a discrete parameter takes whole numbers)", where)
        return int(v)
    if isinstance(value, numbers.Integral):
        return int(value)
    return v


def _name(value: object, what: str, where: str | None) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(f"expected {what} (a non-empty text), got {_describe(value)}", where)
    return value


def _choice(value: object, choices: Sequence[str], what: str, where: str | None) -> str:
    if not isinstance(value, str) or value not in choices:
        word = value if isinstance(value, str) else repr(value)
        _fail(f"unknown {what} {word!r}{_choices(word, choices)}", where)
    return value


_DURATION_RE = re.compile(r"\s*([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*")
_SECOND_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0, "ms": 0.001}
_MUSICAL_UNITS = ("beat", "beats", "bar", "bars")


def _duration(value: object, where: str, *, musical: bool, positive: bool = False) -> int | float | str:
    """Seconds (a number, ``"4 s"``, ``"500 ms"``), with ``musical`` also ``"2 beats"``/``"1 bar"``; in one spelling.

    A number stays a number (and so does a text without a unit); a text with a
    unit is written ``"<number> <unit>"`` with the unit in lower case.
    """
    help_ = "seconds (4, '4 s', '500 ms') or musical time ('2 beats', '1 bar')" if musical else \
        "seconds (4, '4 s' or '500 ms')"
    if isinstance(value, str):
        m = _DURATION_RE.fullmatch(value)
        if not m:
            _fail(f"{value!r} is not a duration: write {help_}", where)
        unit = m.group(2).lower()
        units = [*_SECOND_UNITS, *_MUSICAL_UNITS] if musical else list(_SECOND_UNITS)
        if unit and unit not in units:
            if unit in _MUSICAL_UNITS:
                _fail(f"{value!r} is musical time, but this is in seconds (write {help_})", where)
            _fail(f"unknown unit {m.group(2)!r} in {value!r}{_choices(unit, units)}", where)
        amount = float(m.group(1)) * _SECOND_UNITS.get(unit, 1.0)
        if not math.isfinite(amount) or amount < 0:
            _fail(f"a duration must be finite and >= 0, got {value!r}", where)
        if positive and amount == 0:
            _fail(f"must be above 0, got {value!r}", where)
        if not unit:  # "3" is 3 seconds: written as the number
            return _number(float(m.group(1)), where)
        return f"{m.group(1)} {unit}"  # one spelling: "2 beats", "500 ms"
    return _number(value, where, what=f"a duration: {help_}", lo=0.0, above=0.0 if positive else None)


def _literal(value: object, want: Want, where: str | None) -> int | float | bool | str:
    """A literal value node, checked against what its place takes."""
    if isinstance(value, bool):
        if want in ("number", "text"):
            _fail(f"expected {_WANT_TEXT[want]}, got {_describe(value)}", where)
        return value
    if _is_number(value):
        if want == "text":
            _fail(f"expected {_WANT_TEXT[want]}, got {_describe(value)}", where)
        return _number(value, where)
    if isinstance(value, str):
        if want in ("number", "switch"):
            _fail(f"expected {_WANT_TEXT[want]}, got {_describe(value)} (a string is a literal here; to read a "
                  "parameter, pass the Param handle its declaration returned)", where)
        return value
    if isinstance(value, Condition):
        _fail(f"a condition ({value}) is not a value: use when(condition, then, else_)", where)
    _fail(f"expected {_WANT_TEXT[want]}, got {_describe(value)}", where)


_Visit: TypeAlias = Callable[["Param | NodeRef", "str | None"], None]


def _check(value: object, want: Want, where: str | None, visit: _Visit | None = None) -> None:
    """Checks a value for its place: its kind, and through ``visit`` every parameter and node it refers to."""
    if isinstance(value, Expr):
        value._check(want, where, visit)
    else:
        _literal(value, want, where)


def _data(value: object) -> _Data:
    """A value's form in the file (already checked)."""
    if isinstance(value, Expr):
        return value.to_data()
    return _literal(value, "any", None)


def _input_data(value: object) -> _Data:
    """A value in an ``input``/``x``/``y`` place, where a bare name means a parameter (as in ``input: danger``)."""
    if isinstance(value, Param):
        return value.name
    return _data(value)


def _numeric_place(what: str, want: Want, where: str | None) -> None:
    if want == "text":
        _fail(f"expected {_WANT_TEXT[want]}, got {what} (a number)", where)


# ------------------------------------------------------------ value expressions
class Expr:
    """A value expression: renders to the file's value-node form with :meth:`to_data`.

    Supports ``+``, ``-``, ``*``, unary ``-`` and ``/`` by a number, and
    :meth:`curve`. Expressions are immutable, hashable and compare by value
    (``==`` is structural equality, never a condition: use :meth:`Param.is_`).
    """

    __slots__ = ()
    __array_ufunc__ = None  # numpy scalars defer to the reflected operators below

    def to_data(self) -> _Data:
        """The value node as plain data (``{"param": "danger"}``, ``{"curve": {...}}``, ...)."""
        raise NotImplementedError

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        raise NotImplementedError

    def curve(self, points: Sequence[tuple[float, float]], shape: Shape = "linear") -> Curve:
        """This value through a curve of ``(x, y)`` points with increasing x (see :func:`curve`)."""
        return Curve(self, tuple(points), shape)

    def __add__(self, other: Value) -> Op:
        return add(self, other)

    def __radd__(self, other: Value) -> Op:
        return add(other, self)

    def __mul__(self, other: Value) -> Op:
        return multiply(self, other)

    def __rmul__(self, other: Value) -> Op:
        return multiply(other, self)

    def __sub__(self, other: Value) -> Op:
        return add(self, _negated(other))

    def __rsub__(self, other: Value) -> Op:
        if _is_number(other) and other == 1:
            return invert(self)
        return add(other, _negated(self))

    def __neg__(self) -> Op:
        return multiply(-1, self)

    def __truediv__(self, other: float) -> Op:
        if not _is_number(other) or other == 0:
            _fail(f"an expression can be divided by a non-zero number only, got {_describe(other)} (the format "
                  "has no division)")
        return multiply(self, 1 / float(other))


def _negated(value: Value) -> Value:
    if _is_number(value):
        return -_number(value, None)
    return multiply(-1, value)


@dataclass(frozen=True)
class Param(Expr):
    """A parameter handle, returned by :meth:`GraphBuilder.continuous`, ``discrete`` and ``labeled``.

    As a value it reads the parameter (``{param: name}``). Labeled parameters
    are not numbers: turn them into values with :meth:`is_`/:meth:`in_` and
    :func:`when`, or with :meth:`select`.
    """

    name: str
    kind: ParamKind
    min: float = 0.0
    max: float = 1.0
    labels: tuple[str, ...] = ()

    def to_data(self) -> _Data:
        return {"param": self.name}

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        if visit is not None:
            visit(self, where)
        if self.kind == "labeled" and want in ("number", "switch"):
            _fail(f"parameter {self.name!r} is labeled, not a number: turn its labels into values with "
                  f"when({self.name}.is_(label), then, else_) or {self.name}.select({{label: value}})", where)
        if self.kind != "labeled" and want == "text":
            _fail(f"expected {_WANT_TEXT[want]}, got parameter {self.name!r} (a number)", where)

    def _need_labels(self, method: str) -> None:
        if self.kind != "labeled":
            _fail(f"{method}() needs a labeled parameter, and {self.name!r} is {self.kind} (for numbers use a curve "
                  "with shape='constant')")

    def _label(self, label: object, where: str) -> str:
        if not isinstance(label, str) or label not in self.labels:
            word = label if isinstance(label, str) else repr(label)
            _fail(f"{word!r} is not a label of {self.name!r}{_choices(word, self.labels, 'labels')}", where)
        return label

    def is_(self, label: str) -> Condition:
        """True while this labeled parameter is ``label``; use it in :func:`when`."""
        self._need_labels("is_")
        return Condition(self, (self._label(label, f"{self.name}.is_()"),), "is")

    def in_(self, labels: Sequence[str]) -> Condition:
        """True while this labeled parameter is any of ``labels``; use it in :func:`when`."""
        self._need_labels("in_")
        if isinstance(labels, str):
            _fail(f"in_() takes a list of labels, got {_describe(labels)} (for one label use is_())")
        return Condition(self, tuple(labels), "in")

    def select(self, cases: Mapping[str, Value], default: Value | None = None) -> Select:
        """The value of the case of this labeled parameter's current label, else ``default``.

        Without ``default`` every label needs a case.
        """
        return Select(self, tuple(cases.items()), default)


#: The built-in parameter, raised by triggers' bumps and falling by the graph's intensity decay.
INTENSITY = Param("intensity", "continuous", 0.0, 1.0)


@dataclass(frozen=True)
class NodeRef(Expr):
    """A named value node, returned by :meth:`GraphBuilder.node`; as a value: ``{node: name}``."""

    name: str

    def to_data(self) -> _Data:
        return {"node": self.name}

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        if visit is not None:
            visit(self, where)


def _check_input(value: object, where: str) -> None:
    """A numeric operand, where the file would read a bare string as a parameter's name."""
    if isinstance(value, str):
        _fail(f"expected {_WANT_TEXT['number']}, got {_describe(value)} (to read a parameter, pass the Param "
              "handle its declaration returned)", where)
    _check(value, "number", where)


@dataclass(frozen=True)
class Curve(Expr):
    """``input`` mapped through ``(x, y)`` points (x increasing) with a named ``shape`` between them."""

    input: Value
    points: tuple[tuple[float, float], ...]
    shape: Shape = "linear"

    def __post_init__(self) -> None:
        _check_input(self.input, "curve.input")
        _choice(self.shape, CURVE_SHAPES, "curve shape", "curve.shape")
        if isinstance(self.points, (str, bytes)) or not isinstance(self.points, Sequence):
            _fail(f"expected a list of (x, y) points, got {_describe(self.points)}", "curve.points")
        if len(self.points) < 2:
            _fail(f"a curve needs at least 2 points, got {len(self.points)} (e.g. [(0, 0), (1, 1)])",
                  "curve.points")
        points: list[tuple[float, float]] = []
        for i, pt in enumerate(self.points):
            at = f"curve.points[{i}]"
            if isinstance(pt, (str, bytes)) or not isinstance(pt, Sequence) or len(pt) != 2:
                _fail(f"expected a point (x, y), got {_describe(pt)}", at)
            x, y = _number(pt[0], f"{at}[0]"), _number(pt[1], f"{at}[1]")
            if points and x <= points[-1][0]:
                _fail(f"x values must increase ({x:g} after {points[-1][0]:g})", at)
            points.append((x, y))
        object.__setattr__(self, "points", tuple(points))

    def to_data(self) -> _Data:
        body: dict[str, _Data] = {"input": _input_data(self.input), "points": [list(p) for p in self.points]}
        if self.shape != "linear":
            body["shape"] = self.shape
        return {"curve": body}

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        _numeric_place("a curve", want, where)
        _check(self.input, "number", _join(where, "curve.input"), visit)


@dataclass(frozen=True)
class Op(Expr):
    """``add``, ``multiply``, ``min`` or ``max`` over ``args``; ``invert`` (1 − x) over one argument."""

    op: OpName
    args: tuple[Value, ...]

    def __post_init__(self) -> None:
        _choice(self.op, ("add", "multiply", "min", "max", "invert"), "operation", None)
        if not isinstance(self.args, tuple):
            object.__setattr__(self, "args", tuple(self.args))
        if self.op == "invert" and len(self.args) != 1:
            _fail(f"invert takes one value, got {len(self.args)}")
        if not self.args:
            _fail(f"{self._fn}() needs at least one value")
        for i, arg in enumerate(self.args):
            _check_input(arg, self.op if self.op == "invert" else f"{self.op}[{i}]")

    @property
    def _fn(self) -> str:
        return {"min": "minimum", "max": "maximum"}.get(self.op, self.op)

    def to_data(self) -> _Data:
        if self.op == "invert":
            return {"invert": _data(self.args[0])}
        return {self.op: [_data(a) for a in self.args]}

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        _numeric_place(f"{self.op}", want, where)
        if self.op == "invert":
            _check(self.args[0], "number", _join(where, "invert"), visit)
            return
        for i, arg in enumerate(self.args):
            _check(arg, "number", _join(where, f"{self.op}[{i}]"), visit)


@dataclass(frozen=True)
class Clamp(Expr):
    """``value`` bounded to ``[min, max]``."""

    value: Value
    min: float = 0.0
    max: float = 1.0

    def __post_init__(self) -> None:
        _check_input(self.value, "clamp.value")
        lo, hi = _number(self.min, "clamp.min"), _number(self.max, "clamp.max")
        if lo >= hi:
            _fail(f"impossible range: min {lo:g} is not below max {hi:g}", "clamp.max")
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)

    def to_data(self) -> _Data:
        return {"clamp": {"value": _data(self.value), "min": self.min, "max": self.max}}

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        _numeric_place("a clamp", want, where)
        _check(self.value, "number", _join(where, "clamp.value"), visit)


@dataclass(frozen=True)
class Condition:
    """A labeled parameter is one of ``labels`` (from :meth:`Param.is_` / :meth:`Param.in_`); only for :func:`when`."""

    param: Param
    labels: tuple[str, ...]
    test: Literal["is", "in"] = "in"

    def __post_init__(self) -> None:
        self.param._need_labels(self.test + "_")
        if not self.labels:
            _fail(f"{self.param.name}.in_() needs at least one label")
        if self.test == "is" and len(self.labels) != 1:
            _fail(f"{self.param.name}.is_() takes one label, got {len(self.labels)}")
        for i, label in enumerate(self.labels):
            self.param._label(label, f"{self.param.name}.{self.test}_()[{i}]")
        if len(set(self.labels)) != len(self.labels):
            _fail(f"{self.param.name}.in_() repeats a label: {list(self.labels)}")

    def __str__(self) -> str:
        if self.test == "is":
            return f"{self.param.name} is {self.labels[0]!r}"
        return f"{self.param.name} in {list(self.labels)!r}"

    def to_data(self) -> _Data:
        if self.test == "is":
            return {"param": self.param.name, "is": self.labels[0]}
        return {"param": self.param.name, "in": list(self.labels)}


@dataclass(frozen=True)
class When(Expr):
    """``then`` while the condition holds, else ``otherwise`` (``{when: .., then: .., else: ..}``)."""

    condition: Condition
    then: Value
    otherwise: Value

    def __post_init__(self) -> None:
        if not isinstance(self.condition, Condition):
            _fail(f"when() takes a condition such as mode.is_('combat') or mode.in_([...]), got "
                  f"{_describe(self.condition)}", "when")
        _check(self.then, "any", "then")
        _check(self.otherwise, "any", "else")

    def to_data(self) -> _Data:
        return {"when": self.condition.to_data(), "then": _data(self.then), "else": _data(self.otherwise)}

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        if visit is not None:
            visit(self.condition.param, _join(where, "when.param"))
        _check(self.then, want, _join(where, "then"), visit)
        _check(self.otherwise, want, _join(where, "else"), visit)


@dataclass(frozen=True)
class Select(Expr):
    """The case of a labeled parameter's current label, else ``default`` (``{select: .., cases: .., default: ..}``)."""

    param: Param
    cases: tuple[tuple[str, Value], ...]
    default: Value | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.param, Param):
            _fail(f"select needs a labeled Param, got {_describe(self.param)}", "select")
        self.param._need_labels("select")
        if not self.cases:
            _fail(f"{self.param.name}.select() needs at least one case")
        seen: set[str] = set()
        for label, value in self.cases:
            at = f"select.cases.{label}"
            self.param._label(label, at)
            if label in seen:
                _fail(f"duplicate case {label!r}", at)
            seen.add(label)
            _check(value, "any", at)
        if self.default is None:
            missing = [lb for lb in self.param.labels if lb not in seen]
            if missing:
                _fail(f"no case for {', '.join(map(repr, missing))} and no default: add the cases or a default",
                      f"{self.param.name}.select()")
        else:
            _check(self.default, "any", "select.default")

    def to_data(self) -> _Data:
        out: dict[str, _Data] = {"select": self.param.name,
                                 "cases": {label: _data(v) for label, v in self.cases}}
        if self.default is not None:
            out["default"] = _data(self.default)
        return out

    def _check(self, want: Want, where: str | None, visit: _Visit | None) -> None:
        if visit is not None:
            visit(self.param, _join(where, "select"))
        for label, value in self.cases:
            _check(value, want, _join(where, f"cases.{label}"), visit)
        if self.default is not None:
            _check(self.default, want, _join(where, "default"), visit)


def curve(input: Value, points: Sequence[tuple[float, float]], shape: Shape = "linear") -> Curve:
    """``input`` through ``(x, y)`` points with strictly increasing x; ``shape``: one of :data:`CURVE_SHAPES`.

    Outside the first and last point the curve holds their y.
    """
    return Curve(input, tuple(points), shape)


def _flat(op: OpName, values: Sequence[Value]) -> tuple[Value, ...]:
    out: list[Value] = []
    for v in values:
        out.extend(v.args if isinstance(v, Op) and v.op == op else (v,))
    return tuple(out)


def add(*values: Value) -> Op:
    """The sum of the values (``{add: [..]}``)."""
    return Op("add", _flat("add", values))


def multiply(*values: Value) -> Op:
    """The product of the values (``{multiply: [..]}``)."""
    return Op("multiply", _flat("multiply", values))


def minimum(*values: Value) -> Op:
    """The smallest of the values (``{min: [..]}``)."""
    return Op("min", _flat("min", values))


def maximum(*values: Value) -> Op:
    """The largest of the values (``{max: [..]}``)."""
    return Op("max", _flat("max", values))


def invert(value: Value) -> Op:
    """``1 − value`` (``{invert: value}``)."""
    return Op("invert", (value,))


def clamp(value: Value, lo: float = 0, hi: float = 1) -> Clamp:
    """``value`` bounded to ``[lo, hi]`` (``lo < hi``)."""
    return Clamp(value, lo, hi)


def when(condition: Condition, then: Value, else_: Value) -> When:
    """``then`` while ``condition`` (``mode.is_("combat")``, ``mode.in_([...])``) holds, else ``else_``."""
    return When(condition, then, else_)


# --------------------------------------------------------------------- handles
@dataclass(frozen=True)
class PromptRef:
    """A prompt handle, returned by :meth:`GraphBuilder.prompt`: a text, or an audio file."""

    name: str
    text: str | None = None
    audio: str | None = None


@dataclass(frozen=True)
class StateRef:
    """A state handle, returned by :meth:`GraphBuilder.state`."""

    name: str


@dataclass(frozen=True)
class StingerRef:
    """A stinger handle, returned by :meth:`GraphBuilder.stinger`."""

    name: str


@dataclass(frozen=True)
class TriggerRef:
    """A trigger handle, returned by :meth:`GraphBuilder.trigger`; the name a client fires."""

    name: str


PromptLike: TypeAlias = Union[PromptRef, str]
StateLike: TypeAlias = Union[StateRef, str]
StingerLike: TypeAlias = Union[StingerRef, str]


def _prompt_name(prompt: object, where: str) -> str:
    if isinstance(prompt, PromptRef):
        return prompt.name
    return _name(prompt, "a prompt (a PromptRef or its name)", where)


# ------------------------------------------------------------------ mix entries
@dataclass(frozen=True)
class Weight:
    """A prompt weighted by a value (``{prompt: name, weight: value}``); weights of one prompt add up."""

    prompt: PromptLike
    value: Value = 1

    def __post_init__(self) -> None:
        _prompt_name(self.prompt, "prompt")
        _check(self.value, "number", "weight")

    def to_data(self) -> _Data:
        return {"prompt": _prompt_name(self.prompt, "prompt"), "weight": _data(self.value)}

    def _check(self, where: str, visit: _Visit, prompt: Callable[[object, str], str]) -> None:
        prompt(self.prompt, _join(where, "prompt"))
        _check(self.value, "number", _join(where, "weight"), visit)


@dataclass(frozen=True)
class Blend:
    """Prompts crossfading along ``input``: each ``(prompt, position)`` stop peaks at its position (increasing)."""

    input: Value
    stops: tuple[tuple[PromptLike, float], ...]

    def __post_init__(self) -> None:
        _check_input(self.input, "blend.input")
        if isinstance(self.stops, (str, bytes)) or not isinstance(self.stops, Sequence):
            _fail(f"expected a list of (prompt, position) stops, got {_describe(self.stops)}", "blend.prompts")
        if len(self.stops) < 2:
            _fail(f"a blend needs at least 2 stops, got {len(self.stops)}", "blend.prompts")
        stops: list[tuple[PromptLike, float]] = []
        names: set[str] = set()
        for i, stop in enumerate(self.stops):
            at = f"blend.prompts[{i}]"
            if isinstance(stop, (str, bytes)) or not isinstance(stop, Sequence) or len(stop) != 2:
                _fail(f"expected a stop (prompt, position), got {_describe(stop)}", at)
            name, pos = _prompt_name(stop[0], f"{at}[0]"), _number(stop[1], f"{at}[1]")
            if name in names:
                _fail(f"prompt {name!r} has two stops", at)
            if stops and pos <= stops[-1][1]:
                _fail(f"blend positions must increase ({pos:g} after {stops[-1][1]:g})", at)
            names.add(name)
            stops.append((stop[0], pos))
        object.__setattr__(self, "stops", tuple(stops))

    def to_data(self) -> _Data:
        return {"blend": {"input": _input_data(self.input),
                          "prompts": [[_prompt_name(p, ""), pos] for p, pos in self.stops]}}

    def _check(self, where: str, visit: _Visit, prompt: Callable[[object, str], str]) -> None:
        _check(self.input, "number", _join(where, "blend.input"), visit)
        for i, (p, _) in enumerate(self.stops):
            prompt(p, _join(where, f"blend.prompts[{i}][0]"))


@dataclass(frozen=True)
class Pad:
    """A 2-D pad: prompts placed at ``(x, y)`` points, weighted by the position ``(x, y)``.

    ``mode="idw"`` weights by inverse distance (points anywhere, ``power`` > 0);
    ``"bilinear"`` interpolates between points on every corner of a grid.
    """

    x: Value
    y: Value
    points: Mapping[PromptLike, tuple[float, float]]
    mode: PadMode = "idw"
    power: float = 2.0

    def __post_init__(self) -> None:
        _check_input(self.x, "pad.x")
        _check_input(self.y, "pad.y")
        _choice(self.mode, PAD_MODES, "pad mode", "pad.mode")
        object.__setattr__(self, "power", _number(self.power, "pad.power", above=0.0))
        if not isinstance(self.points, Mapping):
            _fail(f"expected a mapping prompt → (x, y), got {_describe(self.points)}", "pad.points")
        if len(self.points) < 2:
            _fail(f"a pad needs at least 2 points, got {len(self.points)}", "pad.points")
        points: dict[PromptLike, tuple[float, float]] = {}
        names: set[str] = set()
        for p, pt in self.points.items():
            name = _prompt_name(p, "pad.points")
            at = f"pad.points.{name}"
            if name in names:
                _fail(f"prompt {name!r} has two points", at)
            names.add(name)
            if isinstance(pt, (str, bytes)) or not isinstance(pt, Sequence) or len(pt) != 2:
                _fail(f"expected a position (x, y), got {_describe(pt)}", at)
            points[p] = (_number(pt[0], f"{at}[0]"), _number(pt[1], f"{at}[1]"))
        if self.mode == "bilinear":
            at_xy: dict[tuple[float, float], str] = {}
            for p, xy in points.items():
                if xy in at_xy:
                    _fail(f"{at_xy[xy]!r} and {_prompt_name(p, '')!r} are both at {xy}: bilinear needs one point "
                          "per grid corner", "pad.points")
                at_xy[xy] = _prompt_name(p, "")
            xs, ys = sorted({x for x, _ in at_xy}), sorted({y for _, y in at_xy})
            missing = [(gx, gy) for gx in xs for gy in ys if (gx, gy) not in at_xy]
            if len(xs) < 2 or len(ys) < 2 or missing:
                _fail(f"mode 'bilinear' needs a point on every corner of a grid; missing "
                      f"{', '.join(map(str, missing[:4])) or 'a second row or column'} (or use mode='idw')",
                      "pad.points")
        object.__setattr__(self, "points", MappingProxyType(points))

    def __hash__(self) -> int:
        return hash((self.x, self.y, tuple(self.points.items()), self.mode, self.power))

    def to_data(self) -> _Data:
        return {"pad": {"x": _input_data(self.x), "y": _input_data(self.y), "mode": self.mode, "power": self.power,
                        "points": {_prompt_name(p, ""): list(xy) for p, xy in self.points.items()}}}

    def _check(self, where: str, visit: _Visit, prompt: Callable[[object, str], str]) -> None:
        _check(self.x, "number", _join(where, "pad.x"), visit)
        _check(self.y, "number", _join(where, "pad.y"), visit)
        for p in self.points:
            prompt(p, _join(where, "pad.points"))


MixEntry: TypeAlias = Union[Weight, Blend, Pad]


def weight(prompt: PromptLike, value: Value = 1) -> Weight:
    """A mix entry: ``prompt`` weighted by ``value`` (for :meth:`GraphBuilder.state`'s ``mix``)."""
    return Weight(prompt, value)


def blend(input: Value, stops: Sequence[tuple[PromptLike, float]]) -> Blend:
    """A mix entry: prompts crossfading along ``input``, each peaking at its position (increasing)."""
    return Blend(input, tuple(stops))


def pad(x: Value, y: Value, points: Mapping[PromptLike, tuple[float, float]], mode: PadMode = "idw",
        power: float = 2.0) -> Pad:
    """A mix entry: a 2-D pad of prompts at ``(x, y)`` points, weighted by the position ``(x, y)``."""
    return Pad(x, y, points, mode, power)


# ---------------------------------------------------------------------- builder
@dataclass
class _Sections:
    """What the builder has collected, each part already in the file's form."""

    parameters: dict[str, _Data] = field(default_factory=dict)
    prompts: dict[str, _Data] = field(default_factory=dict)
    nodes: dict[str, _Data] = field(default_factory=dict)
    mix: list[_Data] = field(default_factory=list)
    default_mix: dict[str, _Data] | None = None
    controls: dict[str, _Data] = field(default_factory=dict)
    states: dict[str, _Data] = field(default_factory=dict)
    driven_by: str | None = None
    initial: str | None = None
    transitions: list[_Data] = field(default_factory=list)
    stingers: dict[str, _Data] = field(default_factory=dict)
    intensity: dict[str, _Data] | None = None
    triggers: dict[str, _Data] = field(default_factory=dict)
    failsafe: dict[str, _Data] | None = None


class GraphBuilder:
    """Builds a style graph in code and exports it in the file format (version 1).

    Declare before use: parameters, prompts, nodes, states and stingers return
    handles that later calls take, and every call checks its arguments at
    once, raising :class:`~cadenza.errors.GraphError` with the bad value, its
    place in the file (``where``) and the valid choices. Export with
    :meth:`to_dict`, :meth:`to_yaml`, :meth:`to_json` or :meth:`save`.

    ``control_rate`` is how often the graph is evaluated, in Hz (10–1000).
    """

    def __init__(self, name: str, control_rate: float = 100) -> None:
        self._name = _name(name, "a name for the graph", "name")
        self._control_rate = _number(control_rate, "control_rate", lo=10, hi=1000,
                                     what="a control rate in Hz (10–1000)")
        self._params: dict[str, Param] = {}
        self._prompts: dict[str, PromptRef] = {}
        self._nodes: dict[str, NodeRef] = {}
        self._states: dict[str, StateRef] = {}
        self._stingers: dict[str, StingerRef] = {}
        self._triggers: dict[str, TriggerRef] = {}
        self._transition_ends: set[tuple[str, str]] = set()
        self._s = _Sections()

    def __repr__(self) -> str:
        return (f"GraphBuilder({self._name!r}, parameters={list(self._params)}, prompts={list(self._prompts)}, "
                f"states={list(self._states)})")

    # ------------------------------------------------------------- lookups
    @property
    def name(self) -> str:
        """The graph's name."""
        return self._name

    @property
    def parameters(self) -> Mapping[str, Param]:
        """The declared parameters by name (``intensity`` is built in, not listed)."""
        return MappingProxyType(self._params)

    @property
    def prompts(self) -> Mapping[str, PromptRef]:
        """The declared prompts by name."""
        return MappingProxyType(self._prompts)

    @property
    def states(self) -> Mapping[str, StateRef]:
        """The declared states by name, in order."""
        return MappingProxyType(self._states)

    # --------------------------------------------------------- references
    def _resolve(self, ref: Param | NodeRef, where: str | None) -> None:
        """The ``visit`` of value checks: every parameter and node must be this graph's."""
        if isinstance(ref, NodeRef):
            if ref.name not in self._nodes:
                _fail(f"undefined node {ref.name!r}{_choices(ref.name, list(self._nodes), 'defined')}", where)
            return
        if ref.name in BUILTIN_PARAMS:
            if ref != INTENSITY:
                _fail(f"parameter {ref.name!r} is built in: use INTENSITY", where)
            return
        own = self._params.get(ref.name)
        if own is None:
            _fail(f"undefined parameter {ref.name!r}{_choices(ref.name, [*self._params, *BUILTIN_PARAMS], 'defined')}",
                  where)
        if own != ref:
            _fail(f"parameter {ref.name!r} is not this graph's (declared here as {own}, given {ref})", where)

    def _value(self, value: object, want: Want, where: str) -> _Data:
        _check(value, want, where, self._resolve)
        return _data(value)

    def _prompt(self, prompt: object, where: str) -> str:
        name = _prompt_name(prompt, where)
        own = self._prompts.get(name)
        if own is None:
            _fail(f"undefined prompt {name!r}{_choices(name, list(self._prompts), 'defined')}", where)
        if isinstance(prompt, PromptRef) and prompt != own:
            _fail(f"prompt {name!r} is not this graph's (declared here as {own}, given {prompt})", where)
        return name

    def _state(self, state: object, where: str, *, allow_any: bool = False) -> str:
        name = state.name if isinstance(state, StateRef) else _name(state, "a state (a StateRef or its name)", where)
        if allow_any and name == STATE_ANY:
            return name
        if name not in self._states:
            valid = [*self._states, STATE_ANY] if allow_any else list(self._states)
            _fail(f"undefined state {name!r}{_choices(name, valid, 'defined')}", where)
        return name

    def _new_name(self, name: object, what: str, taken: Mapping[str, object], section: str) -> str:
        text = _name(name, f"a {what} name", section)
        if text in taken:
            _fail(f"duplicate {what} {text!r}: each {what} is declared once", f"{section}.{text}")
        return text

    def _mix_entry(self, entry: object, where: str) -> _Data:
        if not isinstance(entry, (Weight, Blend, Pad)):
            _fail(f"expected a mix entry (weight(), blend() or pad()), got {_describe(entry)}", where)
        entry._check(where, self._resolve, self._prompt)
        return entry.to_data()

    def _mix_list(self, mix: object, where: str) -> list[_Data]:
        if isinstance(mix, Mapping):
            out = []
            for i, (p, v) in enumerate(mix.items()):
                with _within(f"{where}[{i}]"):
                    entry = Weight(p, v)
                out.append(self._mix_entry(entry, f"{where}[{i}]"))
            return out
        if isinstance(mix, (str, bytes)) or not isinstance(mix, Sequence):
            _fail(f"expected a list of mix entries or a mapping prompt → weight, got {_describe(mix)}", where)
        return [self._mix_entry(e, f"{where}[{i}]") for i, e in enumerate(mix)]

    def _control_values(self, controls: object, where: str) -> dict[str, _Data]:
        if not isinstance(controls, Mapping):
            _fail(f"expected a mapping control name → value, got {_describe(controls)}", where)
        out: dict[str, _Data] = {}
        for name, value in controls.items():
            at = f"{where}.{name}"
            _choice(name, CONTROL_NAMES, "control", at)
            out[name] = self._value(value, CONTROL_KINDS[name], at)
        return out

    # ---------------------------------------------------------- parameters
    def continuous(self, name: str, min: float = 0, max: float = 1, default: float | None = None,
                   safe: float | None = None, attack: Duration = 0.0, release: Duration = 0.0,
                   slew: float | None = None, one_euro: tuple[float, ...] | None = None,
                   hysteresis: tuple[float, float] | None = None) -> Param:
        """Declares a continuous parameter in ``[min, max]`` (values outside are clamped).

        ``default`` (else ``min``) is its value until set; ``safe`` (else the
        default) is where the failsafe glides it. Smoothing: ``attack`` and
        ``release`` are seconds to ~99 % of a rise and a fall, ``slew`` the
        most units per second. Sensor filters, one at most: ``one_euro=
        (min_cutoff, beta[, d_cutoff])`` (Hz, Hz), ``hysteresis=(low, high)``
        (a Schmitt trigger snapping to min/max).
        """
        return self._numeric("continuous", name, min, max, default, safe, attack, release, slew, one_euro, hysteresis)

    def discrete(self, name: str, min: int = 0, max: int = 1, default: int | None = None, safe: int | None = None,
                 attack: Duration = 0.0, release: Duration = 0.0, slew: float | None = None,
                 one_euro: tuple[float, ...] | None = None, hysteresis: tuple[float, float] | None = None) -> Param:
        """Declares a discrete parameter: whole numbers in ``[min, max]``; the rest as :meth:`continuous`."""
        return self._numeric("discrete", name, min, max, default, safe, attack, release, slew, one_euro, hysteresis)

    def _numeric(self, kind: Literal["continuous", "discrete"], name: str, lo: object, hi: object, default: object,
                 safe: object, attack: object, release: object, slew: object, one_euro: object,
                 hysteresis: object) -> Param:
        if isinstance(name, str) and name in BUILTIN_PARAMS:
            _fail(f"{name!r} is built in (driven by triggers' bumps): choose another name", f"parameters.{name}")
        name = self._new_name(name, "parameter", self._params, "parameters")
        path = f"parameters.{name}"
        if name in self._nodes:
            _fail(f"{name!r} is already a node's name: a bare name in an input means the parameter, so they must "
                  "differ", path)
        whole = kind == "discrete"
        vmin = _number(lo, f"{path}.min", whole=whole)
        vmax = _number(hi, f"{path}.max", whole=whole)
        if vmin >= vmax:
            _fail(f"impossible range: min {vmin:g} is not below max {vmax:g} (max must be greater than min)",
                  f"{path}.max")
        data: dict[str, _Data] = {"type": kind, "min": vmin, "max": vmax}
        data["default"] = vmin if default is None else _number(default, f"{path}.default", lo=vmin, hi=vmax,
                                                                whole=whole)
        if safe is not None:
            data["safe"] = _number(safe, f"{path}.safe", lo=vmin, hi=vmax, whole=whole)
        smoothing: dict[str, _Data] = {}
        a = _duration(attack, f"{path}.smoothing.attack", musical=False)
        r = _duration(release, f"{path}.smoothing.release", musical=False)
        if a != 0 or r != 0 or slew is not None:
            smoothing = {"attack": a, "release": r}
        if slew is not None:
            smoothing["slew"] = _number(slew, f"{path}.smoothing.slew", above=0.0, what="units per second")
        if smoothing:
            data["smoothing"] = smoothing
        if one_euro is not None and hysteresis is not None:
            _fail("give one filter, one_euro or hysteresis, not both", f"{path}.filter")
        if one_euro is not None:
            at = f"{path}.filter.one_euro"
            if isinstance(one_euro, (str, bytes)) or not isinstance(one_euro, Sequence) or len(one_euro) not in (2, 3):
                _fail(f"expected (min_cutoff, beta) or (min_cutoff, beta, d_cutoff), got {_describe(one_euro)}", at)
            f: dict[str, _Data] = {"min_cutoff": _number(one_euro[0], f"{at}.min_cutoff", above=0.0),
                                   "beta": _number(one_euro[1], f"{at}.beta", lo=0.0)}
            if len(one_euro) == 3:
                f["d_cutoff"] = _number(one_euro[2], f"{at}.d_cutoff", above=0.0)
            data["filter"] = {"one_euro": f}
        if hysteresis is not None:
            at = f"{path}.filter.hysteresis"
            if isinstance(hysteresis, (str, bytes)) or not isinstance(hysteresis, Sequence) or len(hysteresis) != 2:
                _fail(f"expected (low, high), got {_describe(hysteresis)}", at)
            low = _number(hysteresis[0], f"{at}.low", lo=vmin, hi=vmax)
            high = _number(hysteresis[1], f"{at}.high", lo=vmin, hi=vmax)
            if low >= high:
                _fail(f"impossible thresholds: low {low:g} is not below high {high:g}", f"{at}.high")
            data["filter"] = {"hysteresis": {"low": low, "high": high}}
        param = Param(name, kind, vmin, vmax)
        self._params[name] = param
        self._s.parameters[name] = data
        return param

    def labeled(self, name: str, labels: Sequence[str], default: str | None = None, safe: str | None = None) -> Param:
        """Declares a labeled parameter: one of ``labels`` (``default``: the first label).

        Use it with :meth:`Param.is_`/:meth:`Param.in_` in :func:`when`, with
        :meth:`Param.select`, or to drive the states (:meth:`states_driven_by`).
        """
        if isinstance(name, str) and name in BUILTIN_PARAMS:
            _fail(f"{name!r} is built in (driven by triggers' bumps): choose another name", f"parameters.{name}")
        name = self._new_name(name, "parameter", self._params, "parameters")
        path = f"parameters.{name}"
        if name in self._nodes:
            _fail(f"{name!r} is already a node's name: a bare name in an input means the parameter, so they must "
                  "differ", path)
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence) or not labels:
            _fail(f"expected a non-empty list of labels, got {_describe(labels)}", f"{path}.labels")
        seen: list[str] = []
        for i, label in enumerate(labels):
            label = _name(label, "a label", f"{path}.labels[{i}]")
            if label in seen:
                _fail(f"duplicate label {label!r}", f"{path}.labels[{i}]")
            seen.append(label)
        param = Param(name, "labeled", labels=tuple(seen))
        data: dict[str, _Data] = {"type": "labeled", "labels": list(seen),
                                  "default": seen[0] if default is None else param._label(default, f"{path}.default")}
        if safe is not None:
            data["safe"] = param._label(safe, f"{path}.safe")
        self._params[name] = param
        self._s.parameters[name] = data
        return param

    # ------------------------------------------------------ prompts, nodes
    def prompt(self, name: str, text: str | None = None, audio: str | os.PathLike[str] | None = None) -> PromptRef:
        """Declares a prompt: a ``text`` ("calm ambient pads") or an ``audio`` file (WAV/FLAC).

        A relative audio path is read relative to the folder of the file the
        graph is saved to.
        """
        name = self._new_name(name, "prompt", self._prompts, "prompts")
        path = f"prompts.{name}"
        if (text is None) == (audio is None):
            _fail("give text or audio, not both" if text is not None else
                  "missing text or audio (a prompt is a text such as 'calm pads', or an audio file)", path)
        if text is not None:
            ref = PromptRef(name, text=_name(text, "the prompt's text", f"{path}.text"))
            data: _Data = ref.text
        else:
            assert audio is not None
            file = os.fspath(audio)
            ref = PromptRef(name, audio=_name(file, "the path of a WAV or FLAC file", f"{path}.audio"))
            data = {"audio": ref.audio}
        self._prompts[name] = ref
        self._s.prompts[name] = data
        return ref

    def node(self, name: str, value: Value) -> NodeRef:
        """Declares a named value node, reusable as a value through the returned :class:`NodeRef`."""
        name = self._new_name(name, "node", self._nodes, "nodes")
        if name in self._params or name in BUILTIN_PARAMS:
            _fail(f"node {name!r} has the name of a parameter: rename it (a bare name in an input means the "
                  "parameter)", f"nodes.{name}")
        self._s.nodes[name] = self._value(value, "any", f"nodes.{name}")
        ref = NodeRef(name)
        self._nodes[name] = ref
        return ref

    # ----------------------------------------------------------------- mix
    def weight(self, prompt: PromptLike, value: Value = 1) -> Weight:
        """Adds ``prompt`` weighted by ``value`` to the global mix (weights of one prompt add up)."""
        where = f"mix[{len(self._s.mix)}]"
        with _within(where):
            entry = Weight(prompt, value)
        self._s.mix.append(self._mix_entry(entry, where))
        return entry

    def blend(self, input: Value, stops: Sequence[tuple[PromptLike, float]]) -> Blend:
        """Adds a blend to the global mix: prompts crossfading along ``input``, ``(prompt, position)`` stops."""
        where = f"mix[{len(self._s.mix)}]"
        with _within(where):
            entry = Blend(input, tuple(stops))
        self._s.mix.append(self._mix_entry(entry, where))
        return entry

    def pad(self, x: Value, y: Value, points: Mapping[PromptLike, tuple[float, float]], mode: PadMode = "idw",
            power: float = 2.0) -> Pad:
        """Adds a 2-D pad to the global mix: prompts at ``(x, y)`` points, weighted by the position ``(x, y)``."""
        where = f"mix[{len(self._s.mix)}]"
        with _within(where):
            entry = Pad(x, y, points, mode, power)
        self._s.mix.append(self._mix_entry(entry, where))
        return entry

    def default_mix(self, weights: Mapping[PromptLike, float]) -> None:
        """The mix used while every weight is 0 (without it: every prompt equally)."""
        if self._s.default_mix is not None:
            _fail("default_mix is already set", "default_mix")
        if not isinstance(weights, Mapping) or not weights:
            _fail(f"expected a non-empty mapping prompt → weight, got {_describe(weights)}", "default_mix")
        out: dict[str, _Data] = {}
        for p, w in weights.items():
            name = self._prompt(p, "default_mix")
            out[name] = _number(w, f"default_mix.{name}", lo=0.0, what="a weight >= 0")
        if not any(out.values()):
            _fail("every weight is 0: the default mix needs a weight above 0", "default_mix")
        self._s.default_mix = out

    def control(self, name: str, value: Value) -> None:
        """Sets a control (one of :data:`CONTROL_NAMES`) to a value; states may override it."""
        path = f"controls.{name}"
        _choice(name, CONTROL_NAMES, "control", path)
        if name in self._s.controls:
            _fail(f"control {name!r} is already set", path)
        self._s.controls[name] = self._value(value, CONTROL_KINDS[name], path)

    # -------------------------------------------------------------- states
    def state(self, name: str, mix: Sequence[MixEntry] | Mapping[PromptLike, Value] | None = None,
              controls: Mapping[str, Value] | None = None) -> StateRef:
        """Declares a state; ``mix`` replaces the global mix and ``controls`` override single controls.

        ``mix`` is a list of :func:`weight`/:func:`blend`/:func:`pad` entries,
        or a mapping prompt → weight; ``None`` keeps the global mix. The first
        state is the initial one unless :meth:`initial_state` says otherwise.
        """
        if name == STATE_ANY:
            _fail("'any' is reserved (in transitions it matches every state): choose another name",
                  f"states.list.{name}")
        name = self._new_name(name, "state", self._states, "states.list")
        path = f"states.list.{name}"
        driver = self._params.get(self._s.driven_by) if self._s.driven_by else None
        if driver is not None and name not in driver.labels:
            _fail(f"state {name!r} is not a label of {driver.name!r}, which drives the states"
                  f"{_choices(name, driver.labels, 'labels')}", path)
        data: dict[str, _Data] = {}
        if mix is not None:
            data["mix"] = self._mix_list(mix, f"{path}.mix")
        if controls is not None:
            data["controls"] = self._control_values(controls, f"{path}.controls")
        ref = StateRef(name)
        self._states[name] = ref
        self._s.states[name] = data
        return ref

    def states_driven_by(self, param: Param | str) -> None:
        """The states follow a labeled parameter: its labels must be exactly the state names."""
        where = "states.driven_by"
        if self._s.driven_by is not None:
            _fail(f"the states are already driven by {self._s.driven_by!r}", where)
        name = param.name if isinstance(param, Param) else _name(param, "a labeled parameter", where)
        if isinstance(param, Param):
            self._resolve(param, where)
        own = self._params.get(name)
        if own is None:
            _fail(f"undefined parameter {name!r}{_choices(name, list(self._params), 'defined')}", where)
        if own.kind != "labeled":
            labeled = [n for n, p in self._params.items() if p.kind == "labeled"]
            _fail(f"driven_by needs a labeled parameter, and {name!r} is {own.kind} (labeled parameters: "
                  f"{', '.join(labeled) or 'none'})", where)
        stray = [s for s in self._states if s not in own.labels]
        if stray:
            _fail(f"states without a label of {name!r}: {', '.join(stray)} (labels: {', '.join(own.labels)})", where)
        self._s.driven_by = name

    def initial_state(self, state: StateLike) -> None:
        """The state the graph starts in (default: the first declared)."""
        if self._s.initial is not None:
            _fail(f"the initial state is already {self._s.initial!r}", "states.initial")
        self._s.initial = self._state(state, "states.initial")

    def transition(self, source: StateLike = STATE_ANY, target: StateLike = STATE_ANY, quantize: Quantize = "bar",
                   fade: Duration = "1 bar", mode: Mode = "blend") -> None:
        """A rule for changing state from ``source`` to ``target`` (a state or ``"any"``).

        The most specific rule wins (from+to > from+any > any+to > any+any).
        ``quantize``: ``now``, ``beat`` or ``bar``; ``fade``: seconds or musical
        time (``"2 beats"``); ``mode``: ``blend`` (weights glide on one stream)
        or ``crossfade`` (a second deck starts the new style).
        """
        path = f"transitions[{len(self._s.transitions)}]"
        if not self._states:
            _fail("transitions need states: declare them first with state()", path)
        src = self._state(source, f"{path}.from", allow_any=True)
        dst = self._state(target, f"{path}.to", allow_any=True)
        if (src, dst) in self._transition_ends:
            _fail(f"a second rule from {src} to {dst}: each pair has one rule", path)
        data = {"from": src, "to": dst,
                "quantize": _choice(quantize, QUANTIZE, "quantize", f"{path}.quantize"),
                "fade": _duration(fade, f"{path}.fade", musical=True),
                "mode": _choice(mode, MODES, "transition mode", f"{path}.mode")}
        self._transition_ends.add((src, dst))
        self._s.transitions.append(data)

    # -------------------------------------------------------------- events
    def stinger(self, name: str, prompt: PromptLike | None = None, audio: str | os.PathLike[str] | None = None,
                quantize: Quantize = "beat", length: Duration = "2 beats", cooldown: Duration = 0.0,
                duck: float = -6.0, gain: float = 0.0) -> StingerRef:
        """Declares a one-shot stinger: a ``prompt`` of the graph or an ``audio`` file, played quantized.

        ``length`` (> 0, seconds or musical time); ``cooldown`` seconds before
        it may play again; ``duck`` dB (<= 0) taken off the music meanwhile;
        ``gain`` dB on the stinger.
        """
        name = self._new_name(name, "stinger", self._stingers, "stingers")
        path = f"stingers.{name}"
        if (prompt is None) == (audio is None):
            _fail("give prompt or audio, not both" if prompt is not None else
                  "missing prompt or audio (a stinger plays a prompt of the graph or an audio file)", path)
        data: dict[str, _Data] = {}
        if prompt is not None:
            data["prompt"] = self._prompt(prompt, f"{path}.prompt")
        else:
            assert audio is not None
            data["audio"] = _name(os.fspath(audio), "the path of a WAV or FLAC file", f"{path}.audio")
        data["quantize"] = _choice(quantize, QUANTIZE, "quantize", f"{path}.quantize")
        data["length"] = _duration(length, f"{path}.length", musical=True, positive=True)
        data["cooldown"] = _duration(cooldown, f"{path}.cooldown", musical=False)
        data["duck"] = _number(duck, f"{path}.duck", hi=0.0, what="dB (<= 0) taken off the music")
        data["gain"] = _number(gain, f"{path}.gain", what="a gain in dB")
        ref = StingerRef(name)
        self._stingers[name] = ref
        self._s.stingers[name] = data
        return ref

    def intensity(self, decay: float = 0.1, hold: Duration = 1.0) -> None:
        """The built-in intensity falls by ``decay`` units per second after ``hold`` seconds without a bump."""
        if self._s.intensity is not None:
            _fail("intensity is already set", "intensity")
        self._s.intensity = {"decay": _number(decay, "intensity.decay", lo=0.0, what="units per second"),
                             "hold": _duration(hold, "intensity.hold", musical=False)}

    def trigger(self, name: str, bump: float = 0.0, stinger: StingerLike | None = None,
                set_state: StateLike | None = None) -> TriggerRef:
        """Declares a trigger a client can fire: bump intensity (−1…1), play a stinger, set a state."""
        name = self._new_name(name, "trigger", self._triggers, "triggers")
        path = f"triggers.{name}"
        data: dict[str, _Data] = {}
        b = _number(bump, f"{path}.bump", lo=-1.0, hi=1.0, what="a bump of intensity")
        if b != 0:
            data["bump"] = b
        if stinger is not None:
            s = stinger.name if isinstance(stinger, StingerRef) else _name(stinger, "a stinger", f"{path}.stinger")
            if s not in self._stingers:
                _fail(f"undefined stinger {s!r}{_choices(s, list(self._stingers), 'defined')}", f"{path}.stinger")
            data["stinger"] = s
        if set_state is not None:
            data["set_state"] = self._state(set_state, f"{path}.set_state")
        if not data:
            _fail("a trigger that does nothing: give bump, stinger or set_state", path)
        ref = TriggerRef(name)
        self._triggers[name] = ref
        self._s.triggers[name] = data
        return ref

    def failsafe(self, after: Duration, glide: Duration = 2.0) -> None:
        """After ``after`` seconds without input, parameters glide to their safe values over ``glide`` seconds."""
        if self._s.failsafe is not None:
            _fail("failsafe is already set", "failsafe")
        self._s.failsafe = {"after": _duration(after, "failsafe.after", musical=False, positive=True),
                            "glide": _duration(glide, "failsafe.glide", musical=False)}

    # -------------------------------------------------------------- export
    def to_dict(self) -> dict[str, Any]:
        """The graph as plain data in the file format's layout (a fresh copy each call).

        Raises :class:`~cadenza.errors.GraphError` for what only the whole
        graph shows: a driving parameter with labels that have no state.
        """
        s = self._s
        if s.driven_by is not None:
            labels = self._params[s.driven_by].labels
            missing = [lb for lb in labels if lb not in self._states]
            if missing:
                _fail(f"labels of {s.driven_by!r} without a state: {', '.join(missing)} (declare them with "
                      "state(name); the labels must be exactly the state names)", "states.driven_by")
        out: dict[str, Any] = {"cadenza_graph": FORMAT_VERSION, "name": self._name,
                               "control_rate": self._control_rate}
        for key in ("parameters", "prompts", "nodes", "mix", "default_mix", "controls"):
            value = getattr(s, key)
            if value:
                out[key] = value
        if self._states or s.driven_by is not None or s.initial is not None:
            states: dict[str, Any] = {}
            if s.driven_by is not None:
                states["driven_by"] = s.driven_by
            if s.initial is not None:
                states["initial"] = s.initial
            states["list"] = s.states
            out["states"] = states
        for key in ("transitions", "stingers", "intensity", "triggers", "failsafe"):
            value = getattr(s, key)
            if value:
                out[key] = value
        return copy.deepcopy(out)

    def to_yaml(self) -> str:
        """The graph as YAML: sections in block style, short values inline (like a hand-written file)."""
        return yaml.dump(_layout(self.to_dict()), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                         default_flow_style=False)

    def to_json(self) -> str:
        """The graph as JSON (indented, UTF-8 text)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the graph to ``path``: YAML for ``.yaml``/``.yml``, JSON for ``.json``; returns the path."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".yaml", ".yml"):
            text = self.to_yaml()
        elif suffix == ".json":
            text = self.to_json()
        else:
            raise UsageError(f"unknown file type {p.suffix or '(none)'!r} (valid: .yaml, .yml, .json)",
                             where=os.fspath(path))
        p.write_text(text, encoding="utf-8")
        return p


# ------------------------------------------------------------------ YAML layout
class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, with inline collections where marked, YAML 1.2-safe strings and indented lists."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # "  - item" under a key, as people write it


class _FlowList(list[Any]):
    pass


class _FlowDict(dict[str, Any]):
    pass


# Plain scalars the YAML 1.2 core schema (what the runtime's loader reads) resolves to non-strings.
_CORE_SCALAR = re.compile(
    r"~|null|Null|NULL|true|True|TRUE|false|False|FALSE"
    r"|[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+"
    r"|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML resolves by YAML 1.1, so it would leave e.g. "1e3" or "0o17" plain; quote what 1.2 reads otherwise.
    style = "'" if text == "" or _CORE_SCALAR.fullmatch(text) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _represent_flow_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _represent_flow_dict(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_FlowList, _represent_flow_list)
_Dumper.add_representer(_FlowDict, _represent_flow_dict)

_WIDTH = 100  # a collection whose inline form ends within this column is written inline
_BLOCK_SECTIONS = ("parameters", "prompts", "nodes", "mix", "controls", "transitions", "stingers", "triggers")


def _inline(value: Any) -> Any:
    if isinstance(value, dict):
        return _FlowDict({k: _inline(v) for k, v in value.items()})
    if isinstance(value, list):
        return _FlowList(_inline(v) for v in value)
    return value


def _fit(value: Any, column: int, indent: int) -> Any:
    """Inline when the whole value, starting at ``column``, fits the width; else block with each child fitted.

    ``indent`` is where the value's own keys or ``- `` start when it is written as a block.
    """
    if not isinstance(value, (dict, list)):
        return value
    flow = _inline(value)
    text = yaml.dump(flow, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20)
    if column + len(text.rstrip("\n")) <= _WIDTH and "\n" not in text.rstrip("\n"):
        return flow
    if isinstance(value, dict):
        return {k: _fit(v, indent + len(str(k)) + 2, indent + 2) for k, v in value.items()}
    return [_fit(v, indent + 2, indent + 2) for v in value]


def _state_layout(name: str, state: dict[str, Any]) -> Any:
    """A state of ``states.list`` (keys at column 6): its mix, when it has one, is a block list like the global one."""
    if "mix" not in state:
        return _fit(state, 4 + len(name) + 2, 6)
    return {k: ([_fit(e, 10, 10) for e in v] if k == "mix" else _fit(v, 6 + len(k) + 2, 8)) for k, v in state.items()}


def _layout(data: dict[str, Any]) -> dict[str, Any]:
    """Marks which collections the YAML writes inline: the sections stay block, their entries fit."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _BLOCK_SECTIONS:
            if isinstance(value, dict):
                out[key] = {k: _fit(v, 2 + len(k) + 2, 4) for k, v in value.items()}
            else:
                out[key] = [_fit(v, 4, 4) for v in value]
        elif key == "states":
            out[key] = {k: ({n: _state_layout(n, v) for n, v in v.items()} if k == "list" else v)
                        for k, v in value.items()}
        else:
            out[key] = _fit(value, len(key) + 2, 2)
    return out
