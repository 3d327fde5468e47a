"""The values of a graph built in Python: expressions, handles and mix entries that render to the file's data.

One job: the immutable objects :mod:`cadenza.sdk.graph` re-exports — value
expressions (:class:`Expr`: :class:`Param`, :class:`Curve`, :class:`Op`,
:class:`Clamp`, :class:`When`, :class:`Select`, with ``+ - * /``), the handles
a :class:`~cadenza.sdk.graph.GraphBuilder` returns, and the mix entries
(:class:`Weight`, :class:`Blend`, :class:`Pad`) — and the one way they are
checked: each renders to plain data (``to_data``) and the format's validator
(:func:`cadenza.graph_format.validate`) judges it, on construction in a graph
of its own that declares just what it names (``_probe``), and again inside the
builder's graph. This module checks only what Python can get wrong and a file
cannot: a string where a parameter handle belongs, a condition used as a value,
an object that is no data at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeAlias, Union

from cadenza.errors import GraphError
from cadenza.graph_format import BUILTIN_PARAMS, FORMAT_VERSION, validate

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


def _join(where: str | None, key: str) -> str:
    if not where:
        return key
    return f"{where}{key}" if key.startswith("[") else f"{where}.{key}"


@contextlib.contextmanager
def _within(prefix: str) -> Iterator[None]:
    """Places the errors of objects built inside under ``prefix`` (``weight`` → ``mix[2].weight``)."""
    try:
        yield
    except GraphError as exc:
        raise GraphError(exc.message, where=_join(prefix, exc.where) if exc.where else prefix) from None


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, numbers.Real):
        return f"the number {value!r}"
    return f"{type(value).__name__} {value!r}"


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _name_of(x: object) -> Any:
    """A handle's name; anything else as it is."""
    return x.name if isinstance(x, (Param, NodeRef, PromptRef, StateRef, StingerRef, TriggerRef)) else x


def _plain(value: object) -> _Data:
    """A Python value as the file's plain data: expressions as their value nodes, handles as their names, numbers
    (numpy's too) as ``int``/``float``, tuples as lists; anything else as it is, for the validator to name."""
    if isinstance(value, (Expr, Condition)):
        return value.to_data()
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (PromptRef, StateRef, StingerRef, TriggerRef)):
        return value.name
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(_name_of(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _frozen(value: object) -> Any:
    """Sequences (lists, numpy arrays) as nested tuples, so that expressions stay immutable and hashable."""
    if isinstance(value, (str, bytes, Mapping, Expr)) or not isinstance(value, Iterable):
        return value
    return tuple(_frozen(v) for v in value)


def _refs(value: object) -> Iterator[object]:
    """The handles (parameters, nodes, prompts) an expression, entry or collection of them holds."""
    if isinstance(value, (Param, NodeRef, PromptRef)):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _refs(getattr(value, f.name))
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _refs(k)
            yield from _refs(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _refs(v)


def _under(path: str, place: str) -> bool:
    return path == place or path.startswith((place + ".", place + "["))


#: The validator's fixes are written for files; here they are said in this API (file form → Python form).
_PYTHON_FIXES = (
    (re.compile(r"\{when: \{param: (.+?), is: <label>\}, then: \.\., else: \.\.\} or \{select: \1, cases: \{\.\.\}\}"),
     r"when(\1.is_(label), then, else_) or \1.select({label: value})"),
    (re.compile(r"\(to read the parameter write \{param: .+\}\)$"),
     "(to read a parameter, pass the Param handle its declaration returned)"),
)


def _first(data: _Data, places: Sequence[str] | None, strip: str = "") -> None:
    """Raises the validator's first issue under one of ``places`` (None: anywhere), its ``where`` less ``strip``."""
    for issue in validate(data):
        if places is None or any(_under(issue.path, p) for p in places):
            where = issue.path[len(strip):].lstrip(".") if strip else issue.path
            message = issue.message
            for file_form, python_form in _PYTHON_FIXES:
                message = file_form.sub(python_form, message)
            _fail(message, where or None)


def _probe(data: _Data, refs: Iterable[object], *, mix: bool = False) -> None:
    """Checks an expression or mix entry made outside a builder, in a graph that declares just what it names."""
    doc: dict[str, Any] = {"cadenza_graph": FORMAT_VERSION, "parameters": {}, "prompts": {}, "nodes": {}}
    for ref in refs:
        if isinstance(ref, Param) and ref.name not in BUILTIN_PARAMS:
            doc["parameters"][ref.name] = ref._declaration()
        elif isinstance(ref, NodeRef):
            doc["nodes"][ref.name] = 0
        elif isinstance(ref, (PromptRef, str)):
            doc["prompts"][str(_name_of(ref))] = "a prompt"
    if mix:
        doc["mix"], place = [data], "mix[0]"
    else:
        name = "expression"
        while name in doc["nodes"] or name in doc["parameters"]:
            name += "_"
        doc["nodes"][name], place = data, f"nodes.{name}"
    _first(doc, [place], strip=place)


def _value_type(value: object, where: str | None) -> None:
    """A value is an expression or a literal (a number, True/False or a text): nothing else is data of the file."""
    if isinstance(value, Condition):
        _fail(f"a condition ({value}) is not a value: use when(condition, then, else_)", where)
    if not isinstance(value, (Expr, str, numbers.Real)):
        _fail(f"expected a number or a value expression, got {_describe(value)}", where)


def _operand(value: object, where: str) -> None:
    """A number place where the file reads a bare text as a parameter's name: a string is refused here."""
    if isinstance(value, str):
        _fail(f"expected a number or a value expression, got {_describe(value)} (to read a parameter, pass the Param "
              "handle its declaration returned)", where)
    _value_type(value, where)


def _input_data(value: object) -> _Data:
    """A value in an ``input``/``x``/``y`` place, where a bare name means a parameter (as in ``input: danger``)."""
    return value.name if isinstance(value, Param) else _plain(value)


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

    def curve(self, points: Sequence[tuple[float, float]], shape: str = "linear") -> Curve:
        """This value through a curve of ``(x, y)`` points with increasing x (see :func:`curve`)."""
        return Curve(self, _frozen(points), shape)

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
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return -value
    return multiply(-1, value)


@dataclass(frozen=True)
class Param(Expr):
    """A parameter handle, returned by :meth:`GraphBuilder.continuous`, ``discrete`` and ``labeled``.

    As a value it reads the parameter (``{param: name}``). Labeled parameters
    are not numbers: turn them into values with :meth:`is_`/:meth:`in_` and
    :func:`when`, or with :meth:`select`.
    """

    name: str
    kind: Literal["continuous", "discrete", "labeled"]
    min: float = 0.0
    max: float = 1.0
    labels: tuple[str, ...] = ()

    def to_data(self) -> _Data:
        return {"param": self.name}

    def _declaration(self) -> _Data:
        if self.kind == "labeled":
            return {"type": "labeled", "labels": list(self.labels)}
        return {"type": self.kind, "min": _plain(self.min), "max": _plain(self.max)}

    def _need_labels(self, method: str) -> None:
        if self.kind != "labeled":
            _fail(f"{method}() needs a labeled parameter, and {self.name!r} is {self.kind} (for numbers use a curve "
                  "with shape='constant')")

    def is_(self, label: str) -> Condition:
        """True while this labeled parameter is ``label``; use it in :func:`when`."""
        self._need_labels("is_")
        return Condition(self, (label,), "is")

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
        if not isinstance(cases, Mapping):
            _fail(f"select() takes a mapping label → value, got {_describe(cases)}")
        return Select(self, tuple(cases.items()), default)


#: The built-in parameter, raised by triggers' bumps and falling by the graph's intensity decay.
INTENSITY = Param("intensity", "continuous", 0.0, 1.0)


@dataclass(frozen=True)
class NodeRef(Expr):
    """A named value node, returned by :meth:`GraphBuilder.node`; as a value: ``{node: name}``."""

    name: str

    def to_data(self) -> _Data:
        return {"node": self.name}


@dataclass(frozen=True)
class Curve(Expr):
    """``input`` mapped through ``(x, y)`` points (x increasing) with a named ``shape`` between them."""

    input: Value
    points: tuple[tuple[float, float], ...]
    shape: str = "linear"

    def __post_init__(self) -> None:
        _operand(self.input, "curve.input")
        object.__setattr__(self, "points", _frozen(self.points))
        _probe(self.to_data(), _refs(self))

    def to_data(self) -> _Data:
        body: dict[str, _Data] = {"input": _input_data(self.input), "points": _plain(self.points)}
        if self.shape != "linear":
            body["shape"] = self.shape
        return {"curve": body}


@dataclass(frozen=True)
class Op(Expr):
    """``add``, ``multiply``, ``min`` or ``max`` over ``args``; ``invert`` (1 − x) over one argument."""

    op: Literal["add", "multiply", "min", "max", "invert"]
    args: tuple[Value, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        fn = {"min": "minimum", "max": "maximum"}.get(self.op, self.op)
        if self.op == "invert" and len(self.args) != 1:
            _fail(f"invert takes one value, got {len(self.args)}")
        if not self.args:
            _fail(f"{fn}() needs at least one value")
        for i, arg in enumerate(self.args):
            _operand(arg, self.op if self.op == "invert" else f"{self.op}[{i}]")
        _probe(self.to_data(), _refs(self))

    def to_data(self) -> _Data:
        if self.op == "invert":
            return {"invert": _plain(self.args[0])}
        return {self.op: [_plain(a) for a in self.args]}


@dataclass(frozen=True)
class Clamp(Expr):
    """``value`` bounded to ``[min, max]``."""

    value: Value
    min: float = 0.0
    max: float = 1.0

    def __post_init__(self) -> None:
        _operand(self.value, "clamp.value")
        _probe(self.to_data(), _refs(self))

    def to_data(self) -> _Data:
        return {"clamp": {"value": _plain(self.value), "min": _plain(self.min), "max": _plain(self.max)}}


@dataclass(frozen=True)
class Condition:
    """A labeled parameter is one of ``labels`` (from :meth:`Param.is_` / :meth:`Param.in_`); only for :func:`when`."""

    param: Param
    labels: tuple[str, ...]
    test: Literal["is", "in"] = "in"

    def __post_init__(self) -> None:
        self.param._need_labels(self.test + "_")
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.test == "is" and len(self.labels) != 1:
            _fail(f"{self.param.name}.is_() takes one label, got {len(self.labels)}")
        _probe({"when": self.to_data(), "then": 0, "else": 0}, [self.param])

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
        _value_type(self.then, "then")
        _value_type(self.otherwise, "else")
        _probe(self.to_data(), _refs(self))

    def to_data(self) -> _Data:
        return {"when": self.condition.to_data(), "then": _plain(self.then), "else": _plain(self.otherwise)}


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
        for label, value in self.cases:
            _value_type(value, f"cases.{label}")
        if self.default is not None:
            _value_type(self.default, "default")
        _probe(self.to_data(), _refs(self))

    def to_data(self) -> _Data:
        out: dict[str, _Data] = {"select": self.param.name, "cases": _plain(dict(self.cases))}
        if self.default is not None:
            out["default"] = _plain(self.default)
        return out


def curve(input: Value, points: Sequence[tuple[float, float]], shape: str = "linear") -> Curve:
    """``input`` through ``(x, y)`` points with strictly increasing x; ``shape``: one of :data:`CURVE_SHAPES`.

    Outside the first and last point the curve holds their y.
    """
    return Curve(input, _frozen(points), shape)


def _flat(op: Literal["add", "multiply", "min", "max"], values: Sequence[Value]) -> tuple[Value, ...]:
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


# ------------------------------------------------------------------ mix entries
class _Entry:
    """A mix entry: checked on construction in a graph of its own, rendered by ``to_data``."""

    def __post_init__(self) -> None:
        _probe(self.to_data(), [*_refs(self), *self._prompts()], mix=True)

    def to_data(self) -> _Data:
        raise NotImplementedError

    def _prompts(self) -> tuple[object, ...]:
        raise NotImplementedError


@dataclass(frozen=True)
class Weight(_Entry):
    """A prompt weighted by a value (``{prompt: name, weight: value}``); weights of one prompt add up."""

    prompt: PromptLike
    value: Value = 1

    def __post_init__(self) -> None:
        _operand(self.value, "weight")  # a number place: a text is never a weight
        super().__post_init__()

    def to_data(self) -> _Data:
        return {"prompt": _name_of(self.prompt), "weight": _plain(self.value)}

    def _prompts(self) -> tuple[object, ...]:
        return (self.prompt,)


@dataclass(frozen=True)
class Blend(_Entry):
    """Prompts crossfading along ``input``: each ``(prompt, position)`` stop peaks at its position (increasing)."""

    input: Value
    stops: tuple[tuple[PromptLike, float], ...]

    def __post_init__(self) -> None:
        _operand(self.input, "blend.input")
        object.__setattr__(self, "stops", _frozen(self.stops))
        super().__post_init__()

    def to_data(self) -> _Data:
        return {"blend": {"input": _input_data(self.input), "prompts": _plain(self.stops)}}

    def _prompts(self) -> tuple[object, ...]:
        return tuple(s[0] for s in self.stops if isinstance(s, tuple) and s) if isinstance(self.stops, tuple) else ()


@dataclass(frozen=True)
class Pad(_Entry):
    """A 2-D pad: prompts placed at ``(x, y)`` points, weighted by the position ``(x, y)``.

    ``mode="idw"`` weights by inverse distance (points anywhere, ``power`` > 0);
    ``"bilinear"`` interpolates between points on every corner of a grid.
    """

    x: Value
    y: Value
    points: Mapping[PromptLike, tuple[float, float]]
    mode: str = "idw"
    power: float = 2.0

    def __post_init__(self) -> None:
        _operand(self.x, "pad.x")
        _operand(self.y, "pad.y")
        if isinstance(self.points, Mapping):
            object.__setattr__(self, "points", MappingProxyType({p: _frozen(xy) for p, xy in self.points.items()}))
        super().__post_init__()

    def __hash__(self) -> int:
        points = tuple(self.points.items()) if isinstance(self.points, Mapping) else self.points
        return hash((self.x, self.y, points, self.mode, self.power))

    def to_data(self) -> _Data:
        return {"pad": {"x": _input_data(self.x), "y": _input_data(self.y), "mode": self.mode,
                        "power": _plain(self.power), "points": _plain(self.points)}}

    def _prompts(self) -> tuple[object, ...]:
        return tuple(self.points) if isinstance(self.points, Mapping) else ()


MixEntry: TypeAlias = Union[Weight, Blend, Pad]


def weight(prompt: PromptLike, value: Value = 1) -> Weight:
    """A mix entry: ``prompt`` weighted by ``value`` (for :meth:`GraphBuilder.state`'s ``mix``)."""
    return Weight(prompt, value)


def blend(input: Value, stops: Sequence[tuple[PromptLike, float]]) -> Blend:
    """A mix entry: prompts crossfading along ``input``, each peaking at its position (increasing)."""
    return Blend(input, _frozen(stops))


def pad(x: Value, y: Value, points: Mapping[PromptLike, tuple[float, float]], mode: str = "idw",
        power: float = 2.0) -> Pad:
    """A mix entry: a 2-D pad of prompts at ``(x, y)`` points, weighted by the position ``(x, y)``."""
    return Pad(x, y, points, mode, power)


