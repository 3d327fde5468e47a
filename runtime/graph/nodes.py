"""Value nodes and mix entries: compiled once per graph, evaluated against the current parameter values.

:class:`Compiler` turns the spec's node trees (:mod:`cadenza.runtime.graph.spec`)
into plain Python closures ``fn(env) -> value`` once, when the engine is built,
so that a control tick only calls functions. :class:`Env` carries the current
parameter values (``intensity`` included), the per-tick memo of named nodes and
the warnings to report.

Node semantics:

* ``Const`` — its value. ``ParamRef`` — the parameter's current value (a float,
  an int for discrete parameters, a label for labeled ones). ``NodeRef`` — the
  named node of ``graph.nodes``, evaluated at most once per evaluation pass
  (the engine clears the memo whenever a parameter or the state changes).
* ``Curve`` — piecewise over its points (sorted by x): within the segment
  ``[x0, x1]`` the value is ``y0 + (y1 − y0)·shape(t)``, ``t = (x − x0)/(x1 − x0)``;
  outside the first/last point the curve holds that point's y. At a point's
  own x the value is exactly its y. The shapes (:data:`SHAPES`) all map
  ``[0, 1]`` onto ``[0, 1]`` monotonically with ``shape(0) = 0`` and
  ``shape(1) = 1`` exactly:

  ========== ==================================== ===============================
  linear     ``t``
  s-curve    ``3t² − 2t³`` (smoothstep)           slow, fast, slow
  log        ``log10(1 + 9t)``                    concave: fast start, slow end
  exp        ``(10^t − 1) / 9``                   convex, the inverse of ``log``
  sine       ``(1 − cos πt) / 2``                 half-cosine ease in and out
  constant   ``0`` for ``t < 1``                  a step: holds the left point's y
  ========== ==================================== ===============================

* ``Op`` — ``add``, ``multiply``, ``min``, ``max`` over the arguments;
  ``invert`` is ``1 − x``. ``Clamp`` bounds a value. ``When`` is ``then`` when
  the labeled parameter is one of the labels, else ``otherwise``. ``Select``
  picks the case of the parameter's label, else ``default``; with no match and
  no default it has no value (``None``): a weight of 0, a control left out.
* Where a number is needed, ``True``/``False`` count as 1/0. A label, or a
  non-finite result (NaN or ±inf from overflowing arithmetic or a literal),
  counts as 0 and is reported once per place through :meth:`Env.warn`.

Mix entries add weights into one list indexed like the graph's prompts:
``Weight`` adds ``max(0, w)``; ``Blend`` adds a linear (triangular) crossfade of
the two stops around the input (1 in total, see :func:`blend_weights`); ``Pad``
adds inverse-distance or bilinear weights (1 in total, see :func:`pad_weights`).
:func:`normalize` turns the sum into weights that sum to 1, falling back to the
graph's ``default_mix`` (or every prompt equally) when all are zero.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

from cadenza.errors import GraphError
from cadenza.graph_format.controls import CLAMP_RANGES, CONTROL_RANGES
from cadenza.runtime.graph.spec import (
    BUILTIN_PARAMS, CONTROL_NAMES, Blend, Clamp, Const, Curve, Graph, MixEntry, Node, NodeRef, Op, Pad, ParamRef,
    Select, Weight, When,
)

Value = float | int | bool | str | None
NodeFn = Callable[["Env"], Value]
MixFn = Callable[["Env", list[float]], None]

_LN10 = math.log(10.0)


# ------------------------------------------------------------------- shapes
def _linear(t: float) -> float:
    return 0.0 if t <= 0.0 else 1.0 if t >= 1.0 else t


def _s_curve(t: float) -> float:
    return 0.0 if t <= 0.0 else 1.0 if t >= 1.0 else t * t * (3.0 - 2.0 * t)


def _log(t: float) -> float:
    return 0.0 if t <= 0.0 else 1.0 if t >= 1.0 else math.log1p(9.0 * t) / _LN10


def _exp(t: float) -> float:
    return 0.0 if t <= 0.0 else 1.0 if t >= 1.0 else math.expm1(t * _LN10) / 9.0


def _sine(t: float) -> float:
    return 0.0 if t <= 0.0 else 1.0 if t >= 1.0 else 0.5 - 0.5 * math.cos(math.pi * t)


def _constant(t: float) -> float:
    return 0.0 if t < 1.0 else 1.0


#: Curve and ramp shapes: ``[0, 1] → [0, 1]``, monotone, exact at both ends.
SHAPES: dict[str, Callable[[float], float]] = {
    "linear": _linear,
    "s-curve": _s_curve,
    "log": _log,
    "exp": _exp,
    "sine": _sine,
    "constant": _constant,
}


def curve_value(points: Sequence[tuple[float, float]], shape: str, x: float) -> float:
    """The curve through ``points`` (sorted by x) at ``x`` (see the module docstring)."""
    xs = [p[0] for p in points]
    return _curve_eval(xs, [p[1] for p in points], SHAPES[shape], x)


def _curve_eval(xs: Sequence[float], ys: Sequence[float], fn: Callable[[float], float], x: float) -> float:
    if x < xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x) - 1  # xs[i] <= x < xs[i+1]; of equal xs the last point counts
    x0 = xs[i]
    y0 = ys[i]
    if x == x0:
        return y0
    return y0 + (ys[i + 1] - y0) * fn((x - x0) / (xs[i + 1] - x0))


# ---------------------------------------------------------------- mix laws
def blend_pair(positions: Sequence[float], p: float) -> tuple[int, float, int, float]:
    """``(i, w_i, j, w_j)``: the two stops around ``p`` and their linear crossfade weights (sum 1).

    Before the first stop only the first counts, after the last only the last
    (``j == i`` then, with ``w_j = 0``).
    """
    n = len(positions)
    if n == 1 or p <= positions[0]:
        return 0, 1.0, 0, 0.0
    if p >= positions[-1]:
        return n - 1, 1.0, n - 1, 0.0
    j = bisect.bisect_right(positions, p)  # positions[j-1] <= p < positions[j]
    i = j - 1
    span = positions[j] - positions[i]
    t = (p - positions[i]) / span if span > 0.0 else 1.0
    return i, 1.0 - t, j, t


def blend_weights(stops: Sequence[tuple[str, float]], p: float, law: str = "triangular") -> dict[str, float]:
    """Weights of a blend's prompts at position ``p``.

    ``triangular`` (what the engine uses: embeddings are averaged linearly) gives
    ``1 − t`` and ``t`` to the neighbouring stops; ``equal-power`` gives
    ``cos(πt/2)`` and ``sin(πt/2)`` (constant power, for audio crossfades).
    Weights of a prompt listed at several stops add.
    """
    i, wi, j, wj = blend_pair([s[1] for s in stops], p)
    if law == "equal-power" and wj > 0.0:
        wi, wj = math.cos(0.5 * math.pi * wj), math.sin(0.5 * math.pi * wj)
    elif law not in ("triangular", "equal-power"):
        raise ValueError(f"unknown blend law {law!r}; use triangular or equal-power")
    out = {name: 0.0 for name, _ in stops}
    out[stops[i][0]] += wi
    out[stops[j][0]] += wj
    return out


def idw_weights(points: Sequence[tuple[float, float]], x: float, y: float, power: float) -> list[float]:
    """Inverse-distance weights ``∝ 1/d^power``, summing to 1.

    A point hit exactly (``d <= 1e-12``) takes everything (shared equally with
    any other point at the same place). Weights are computed relative to the
    nearest point, ``(d_min/d_i)^power``, so no power or distance overflows.
    """
    d2s = [(x - px) * (x - px) + (y - py) * (y - py) for px, py in points]
    nearest = min(d2s)
    if nearest <= 1e-24:
        hits = [1.0 if d2 <= 1e-24 else 0.0 for d2 in d2s]
        n = sum(hits)
        return [h / n for h in hits]
    if not math.isfinite(nearest):  # every point infinitely far: equal shares
        return [1.0 / len(points)] * len(points)
    half = 0.5 * power
    raw = [(nearest / d2) ** half for d2 in d2s]
    total = sum(raw)
    return [w / total for w in raw]


def bilinear_corners(points: Sequence[tuple[float, float]], where: str = "pad") -> tuple[float, float, float, float,
                                                                                          list[int]]:
    """``(x0, x1, y0, y1, corner)`` where ``corner[k]`` is the point index at corner k.

    Corners in the order (x0,y0), (x1,y0), (x0,y1), (x1,y1). Raises
    :class:`GraphError` unless the points are exactly the 4 corners of a rectangle.
    """
    xs = sorted({p[0] for p in points})
    ys = sorted({p[1] for p in points})
    if len(points) != 4 or len(xs) != 2 or len(ys) != 2:
        raise GraphError(f"bilinear needs exactly 4 points on the corners of a rectangle, got {list(points)}",
                         where=where)
    corners = [(xs[0], ys[0]), (xs[1], ys[0]), (xs[0], ys[1]), (xs[1], ys[1])]
    index = []
    for c in corners:
        hits = [k for k, p in enumerate(points) if (p[0], p[1]) == c]
        if len(hits) != 1:
            raise GraphError(f"bilinear needs one point at each corner of a rectangle; corner {c} has {len(hits)}",
                             where=where)
        index.append(hits[0])
    return xs[0], xs[1], ys[0], ys[1], index


def bilinear_grid(points: Sequence[tuple[float, float]], where: str = "pad") -> tuple[list[float], list[float],
                                                                                      dict[tuple[int, int], int]]:
    """``(xs, ys, at)`` of points that fill a grid: ``at[i, j]`` is the point at ``(xs[i], ys[j])``.

    Raises :class:`GraphError` unless there is exactly one point on every
    corner of a grid of at least 2 × 2 (2 × 2 is the classic four-corner pad).
    """
    xs = sorted({p[0] for p in points})
    ys = sorted({p[1] for p in points})
    index = {x: i for i, x in enumerate(xs)}
    yindex = {y: j for j, y in enumerate(ys)}
    at: dict[tuple[int, int], int] = {}
    for k, (px, py) in enumerate(points):
        key = (index[px], yindex[py])
        if key in at:
            raise GraphError(f"bilinear needs one point per grid corner; ({px:g}, {py:g}) has two", where=where)
        at[key] = k
    if len(xs) < 2 or len(ys) < 2 or len(at) != len(xs) * len(ys):
        raise GraphError(f"bilinear needs a point on every corner of a grid (at least 2 × 2), got {list(points)}",
                         where=where)
    return xs, ys, at


def _grid_weights(xs: Sequence[float], ys: Sequence[float], at: dict[tuple[int, int], int], n: int,
                  x: float, y: float) -> list[tuple[int, float]]:
    """The 4 (point, weight) pairs of the grid cell around ``(x, y)`` (clamped into the grid), summing to 1."""
    i = min(max(bisect.bisect_right(xs, x) - 1, 0), len(xs) - 2)
    j = min(max(bisect.bisect_right(ys, y) - 1, 0), len(ys) - 2)
    u = min(max((x - xs[i]) / (xs[i + 1] - xs[i]), 0.0), 1.0)
    v = min(max((y - ys[j]) / (ys[j + 1] - ys[j]), 0.0), 1.0)
    return [(at[i, j], (1.0 - u) * (1.0 - v)), (at[i + 1, j], u * (1.0 - v)),
            (at[i, j + 1], (1.0 - u) * v), (at[i + 1, j + 1], u * v)]


def bilinear_weights(points: Sequence[tuple[float, float]], x: float, y: float) -> list[float]:
    """Bilinear weights of grid points at ``(x, y)`` (clamped into the grid), summing to 1.

    The four corners of the grid cell that holds ``(x, y)`` share the weight;
    every other point gets 0. Four points on a rectangle's corners are the
    classic pad.
    """
    xs, ys, at = bilinear_grid(points)
    out = [0.0] * len(points)
    for k, w in _grid_weights(xs, ys, at, len(points), x, y):
        out[k] += w
    return out


def pad_weights(points: Sequence[tuple[str, float, float]], x: float, y: float, mode: str = "idw",
                power: float = 2.0) -> dict[str, float]:
    """Weights of a pad's prompts at ``(x, y)``; the same prompt at several points adds up."""
    xy = [(p[1], p[2]) for p in points]
    ws = idw_weights(xy, x, y, power) if mode == "idw" else bilinear_weights(xy, x, y)
    out = {p[0]: 0.0 for p in points}
    for p, w in zip(points, ws):
        out[p[0]] += w
    return out


def normalize(acc: Sequence[float], fallback: Sequence[float]) -> list[float]:
    """Weights ``>= 0`` summing to 1; ``fallback`` (already normalized) when ``acc`` sums to 0."""
    total = 0.0
    for w in acc:
        total += w
    if total == math.inf:  # huge but finite weights: rescale before summing
        top = max(acc)
        acc = [w / top for w in acc]
        total = sum(acc)
    if not total > 0.0:
        return list(fallback)
    return [w / total for w in acc]


def default_weights(graph: Graph, prompts: Sequence[str]) -> list[float]:
    """``graph.default_mix`` normalized over ``prompts``; every prompt equally when it is empty or all zero."""
    raw = [0.0] * len(prompts)
    index = {p: i for i, p in enumerate(prompts)}
    for name, w in graph.default_mix.items():
        if name not in index:
            raise GraphError(f"unknown prompt {name!r}; prompts: {', '.join(prompts) or '(none)'}",
                             where=f"default_mix.{name}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise GraphError(f"weight must be a finite number >= 0, got {w!r}", where=f"default_mix.{name}")
        raw[index[name]] += float(w)
    total = sum(raw)
    if total > 0.0:
        return [w / total for w in raw]
    return [1.0 / len(prompts)] * len(prompts) if prompts else []


# --------------------------------------------------------------------- env
class Env:
    """What a compiled node reads: parameter values, the named-node memo, warnings."""

    __slots__ = ("values", "memo", "warnings", "_warned")

    def __init__(self, values: dict[str, Value]) -> None:
        self.values = values
        self.memo: dict[str, Value] = {}
        self.warnings: list[tuple[str, str]] = []
        self._warned: set[str] = set()

    def warn(self, where: str, message: str) -> None:
        """Record a warning once per place; the engine turns them into ``warning`` events."""
        if where not in self._warned:
            self._warned.add(where)
            self.warnings.append((where, message))

    def number(self, v: Value, where: str) -> float:
        """``v`` as a finite float (see the module docstring); 0 and a warning otherwise."""
        if type(v) is float:
            if v - v == 0.0:
                return v
            self.warn(where, f"evaluated to {v!r}; using 0")
            return 0.0
        if isinstance(v, (bool, int)):
            return float(v)
        if v is None:
            return 0.0
        self.warn(where, f"evaluated to the label {v!r} where a number is needed; using 0")
        return 0.0


# ---------------------------------------------------------------- compiler
class Compiler:
    """Compiles nodes, mix entries and controls of one graph; checks references on the way."""

    def __init__(self, graph: Graph, prompts: Sequence[str]) -> None:
        self.graph = graph
        self.prompt_index = {p: i for i, p in enumerate(prompts)}
        self.param_names = set(graph.parameters) | set(BUILTIN_PARAMS)
        self._named: dict[str, NodeFn] = {}
        self._check_cycles()

    # -- references
    def _param(self, name: str, where: str, *, labeled: bool = False) -> None:
        if name not in self.param_names:
            valid = ", ".join([*self.graph.parameters, *BUILTIN_PARAMS])
            raise GraphError(f"unknown parameter {name!r}; parameters: {valid}", where=where)
        if labeled:
            p = self.graph.parameters.get(name)
            if p is None or p.type != "labeled":
                raise GraphError(f"{name!r} is not a labeled parameter", where=where)

    def _prompt(self, name: str, where: str) -> int:
        i = self.prompt_index.get(name)
        if i is None:
            raise GraphError(f"unknown prompt {name!r}; prompts: {', '.join(self.prompt_index) or '(none)'}",
                             where=where)
        return i

    def _check_cycles(self) -> None:
        nodes = self.graph.nodes
        state: dict[str, int] = {}  # 1 visiting, 2 done

        def refs(n: Node) -> list[str]:
            if isinstance(n, NodeRef):
                return [n.name]
            if isinstance(n, Curve):
                return refs(n.input)
            if isinstance(n, Op):
                return [r for a in n.args for r in refs(a)]
            if isinstance(n, Clamp):
                return refs(n.value)
            if isinstance(n, When):
                return refs(n.then) + refs(n.otherwise)
            if isinstance(n, Select):
                out = [r for _, c in n.cases for r in refs(c)]
                return out + (refs(n.default) if n.default is not None else [])
            return []

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = path[path.index(name):] + [name]
                raise GraphError(f"nodes refer to each other in a cycle: {' → '.join(cycle)}", where=f"nodes.{name}")
            state[name] = 1
            for r in refs(nodes[name]):
                if r not in nodes:
                    raise GraphError(f"unknown node {r!r}; nodes: {', '.join(nodes) or '(none)'}",
                                     where=f"nodes.{name}")
                visit(r, path + [name])
            state[name] = 2

        for name in nodes:
            visit(name, [])

    # -- nodes
    def node(self, node: Node, where: str) -> NodeFn:
        """``fn(env) -> value`` for ``node``; ``where`` is its path, used in errors and warnings."""
        if isinstance(node, Const):
            v = node.value
            if isinstance(v, float) and not math.isfinite(v):
                def const_bad(env: Env, _v: Value = v) -> Value:
                    return env.number(_v, where)
                return const_bad
            value: Value = v
            if isinstance(v, int) and not isinstance(v, bool):
                try:
                    value = float(v)
                except OverflowError:
                    raise GraphError(f"number too large: {v!r}", where=where) from None

            def const(env: Env) -> Value:
                return value
            return const
        if isinstance(node, ParamRef):
            name = node.name
            self._param(name, where)
            return lambda env: env.values[name]
        if isinstance(node, NodeRef):
            return self._noderef(node.name, where)
        if isinstance(node, Curve):
            return self._curve(node, where)
        if isinstance(node, Op):
            return self._op(node, where)
        if isinstance(node, Clamp):
            if not (math.isfinite(node.min) and math.isfinite(node.max)) or node.min > node.max:
                raise GraphError(f"clamp needs finite min <= max, got {node.min!r}, {node.max!r}", where=where)
            inner = self.node(node.value, f"{where}.value")
            lo, hi = float(node.min), float(node.max)

            def clamp(env: Env) -> Value:
                x = env.number(inner(env), where)
                return lo if x < lo else hi if x > hi else x
            return clamp
        if isinstance(node, When):
            self._param(node.param, where, labeled=True)
            self._labels(node.param, node.labels, where)
            labels = frozenset(node.labels)
            then = self.node(node.then, f"{where}.then")
            other = self.node(node.otherwise, f"{where}.else")
            pname = node.param
            return lambda env: then(env) if env.values[pname] in labels else other(env)
        if isinstance(node, Select):
            self._param(node.param, where, labeled=True)
            self._labels(node.param, tuple(c[0] for c in node.cases), where)
            cases = {label: self.node(n, f"{where}.cases.{label}") for label, n in node.cases}
            default = None if node.default is None else self.node(node.default, f"{where}.default")
            pname = node.param

            def select(env: Env) -> Value:
                fn = cases.get(str(env.values[pname]))
                if fn is not None:
                    return fn(env)
                return None if default is None else default(env)
            return select
        raise GraphError(f"unknown node {node!r}", where=where)

    def _labels(self, param: str, labels: Sequence[str], where: str) -> None:
        valid = self.graph.parameters[param].labels
        for label in labels:
            if label not in valid:
                raise GraphError(f"{label!r} is not a label of {param!r}; labels: {', '.join(valid)}", where=where)

    def _noderef(self, name: str, where: str) -> NodeFn:
        if name not in self.graph.nodes:
            raise GraphError(f"unknown node {name!r}; nodes: {', '.join(self.graph.nodes) or '(none)'}", where=where)
        target = self._named.get(name)
        if target is None:
            target = self.node(self.graph.nodes[name], f"nodes.{name}")
            self._named[name] = target
        fn: NodeFn = target

        def ref(env: Env) -> Value:
            memo = env.memo
            try:
                return memo[name]
            except KeyError:
                v = memo[name] = fn(env)
                return v
        return ref

    def _curve(self, node: Curve, where: str) -> NodeFn:
        if node.shape not in SHAPES:
            raise GraphError(f"unknown curve shape {node.shape!r}; shapes: {', '.join(SHAPES)}", where=where)
        pts = sorted(node.points, key=lambda p: p[0])
        if not pts:
            raise GraphError("a curve needs at least one point", where=where)
        for x, y in pts:
            if not (math.isfinite(x) and math.isfinite(y)):
                raise GraphError(f"curve points must be finite, got {[x, y]}", where=where)
        xs = [float(p[0]) for p in pts]
        ys = [float(p[1]) for p in pts]
        shape = SHAPES[node.shape]
        inner = self.node(node.input, f"{where}.input")
        if len(xs) == 2 and xs[1] > xs[0]:  # the common case, without bisect
            x0, x1, y0, y1 = xs[0], xs[1], ys[0], ys[1]
            span = x1 - x0

            def curve2(env: Env) -> Value:
                x = env.number(inner(env), where)
                if x <= x0:
                    return y0
                if x >= x1:
                    return y1
                return env.number(y0 + (y1 - y0) * shape((x - x0) / span), where)
            return curve2

        def curve(env: Env) -> Value:
            return env.number(_curve_eval(xs, ys, shape, env.number(inner(env), where)), where)
        return curve

    def _op(self, node: Op, where: str) -> NodeFn:
        args = [self.node(a, f"{where}[{i}]") for i, a in enumerate(node.args)]
        num = Env.number
        op = node.op
        if op == "invert":
            if len(args) != 1:
                raise GraphError(f"invert takes one value, got {len(args)}", where=where)
            a0 = args[0]
            return lambda env: 1.0 - num(env, a0(env), where)
        if op in ("min", "max") and not args:
            raise GraphError(f"{op} needs at least one value", where=where)
        if op == "add":
            def add(env: Env) -> Value:
                s = 0.0
                for a in args:
                    s += num(env, a(env), where)
                return num(env, s, where)
            return add
        if op == "multiply":
            def multiply(env: Env) -> Value:
                s = 1.0
                for a in args:
                    s *= num(env, a(env), where)
                return num(env, s, where)
            return multiply
        if op in ("min", "max"):
            pick = min if op == "min" else max

            def minmax(env: Env) -> Value:
                return pick([num(env, a(env), where) for a in args])
            return minmax
        raise GraphError(f"unknown operation {op!r}; use add, multiply, min, max or invert", where=where)

    # -- mix
    def mix(self, entries: Sequence[MixEntry], where: str) -> MixFn:
        """``fn(env, acc)`` that adds every entry's weights into ``acc`` (indexed like the prompts)."""
        fns = [self._entry(e, f"{where}[{k}]") for k, e in enumerate(entries)]
        if len(fns) == 1:
            return fns[0]

        def mix(env: Env, acc: list[float]) -> None:
            for f in fns:
                f(env, acc)
        return mix

    def _entry(self, entry: MixEntry, where: str) -> MixFn:
        if isinstance(entry, Weight):
            i = self._prompt(entry.prompt, f"{where}.prompt")
            w = self.node(entry.weight, f"{where}.weight")
            wh = f"{where}.weight"

            def weight(env: Env, acc: list[float]) -> None:
                x = env.number(w(env), wh)
                if x > 0.0:
                    acc[i] += x
            return weight
        if isinstance(entry, Blend):
            if not entry.stops:
                raise GraphError("a blend needs at least one prompt", where=where)
            idx = [self._prompt(p, f"{where}.prompts") for p, _ in entry.stops]
            pos = [float(s[1]) for s in entry.stops]
            if any(not math.isfinite(p) for p in pos) or any(b < a for a, b in zip(pos, pos[1:])):
                raise GraphError(f"blend positions must be finite and increasing, got {pos}", where=where)
            inp = self.node(entry.input, f"{where}.input")
            wh = f"{where}.input"

            def blend(env: Env, acc: list[float]) -> None:
                i, wi, j, wj = blend_pair(pos, env.number(inp(env), wh))
                acc[idx[i]] += wi
                acc[idx[j]] += wj
            return blend
        if isinstance(entry, Pad):
            if not entry.points:
                raise GraphError("a pad needs at least one point", where=where)
            idx = [self._prompt(p[0], f"{where}.points") for p in entry.points]
            xy = [(float(p[1]), float(p[2])) for p in entry.points]
            if any(not (math.isfinite(a) and math.isfinite(b)) for a, b in xy):
                raise GraphError(f"pad points must be finite, got {xy}", where=where)
            fx = self.node(entry.x, f"{where}.x")
            fy = self.node(entry.y, f"{where}.y")
            wx, wy = f"{where}.x", f"{where}.y"
            if entry.mode == "bilinear":
                gx, gy, at = bilinear_grid(xy, where)
                npts = len(xy)

                def bilinear(env: Env, acc: list[float]) -> None:
                    for k, w in _grid_weights(gx, gy, at, npts, env.number(fx(env), wx), env.number(fy(env), wy)):
                        acc[idx[k]] += w
                return bilinear
            if entry.mode != "idw":
                raise GraphError(f"unknown pad mode {entry.mode!r}; use idw or bilinear", where=where)
            power = float(entry.power)
            if not math.isfinite(power) or power <= 0.0:
                raise GraphError(f"pad power must be a finite number > 0, got {entry.power!r}", where=where)

            def idw(env: Env, acc: list[float]) -> None:
                ws = idw_weights(xy, env.number(fx(env), wx), env.number(fy(env), wy), power)
                for k, w in enumerate(ws):
                    acc[idx[k]] += w
            return idw
        raise GraphError(f"unknown mix entry {entry!r}", where=where)

    # -- controls
    def control(self, name: str, node: Node, where: str) -> NodeFn:
        """``fn(env) -> value`` for a control, sanitized by :func:`sanitize_control` (``None``: left out)."""
        if name not in CONTROL_NAMES:
            raise GraphError(f"unknown control {name!r}; controls: {', '.join(CONTROL_NAMES)}", where=where)
        fn = self.node(node, where)
        rng = _RANGES.get(name)
        if rng is None:
            return lambda env: sanitize_control(name, fn(env), env, where)
        lo, hi = rng

        def ranged(env: Env) -> Value:  # the common numeric case without the dispatch
            v = fn(env)
            if type(v) is float and v - v == 0.0:
                return lo if v < lo else hi if v > hi else v
            return sanitize_control(name, v, env, where)
        return ranged


#: Controls whose values interpolate during a blend transition; the others switch halfway.
CONTINUOUS_CONTROLS = frozenset({"bpm", "density", "brightness", "temperature", "guidance"})
_RANGES = CLAMP_RANGES  # computed values are clamped here; literals outside are refused by the format


def sanitize_control(name: str, v: Value, env: Env, where: str) -> Value:
    """A control value the backends accept, or ``None`` (left out).

    bpm 40–240, density and brightness 0–1, temperature >= 0.01 and guidance
    >= 0 are clamped floats; top_k (1 … 2**32-1) and seed (0 … 2**64-1) are rounded, clamped integers;
    mute_bass, mute_drums and drums are booleans (a number: ``>= 0.5``); scale
    and notes pass strings through. A value of the wrong kind is left out with a
    warning.
    """
    if v is None:
        return None
    rng = _RANGES.get(name)
    if rng is not None or name in ("top_k", "seed"):
        if isinstance(v, str) or isinstance(v, bool):
            env.warn(where, f"control {name!r} needs a number, got {v!r}; left out")
            return None
        x = env.number(v, where)
        if rng is not None:
            return rng[0] if x < rng[0] else rng[1] if x > rng[1] else x
        r = CONTROL_RANGES[name]  # top_k 1 … 2**32-1, seed 0 … 2**64-1: what their wire fields hold
        return min(max(int(math.floor(x + 0.5)), int(r.lo or 0)), int(r.hi or 0))
    if name in ("mute_bass", "mute_drums", "drums"):
        if isinstance(v, bool):
            return v
        if isinstance(v, str):
            env.warn(where, f"control {name!r} needs true/false, got {v!r}; left out")
            return None
        return env.number(v, where) >= 0.5
    if isinstance(v, str):
        return v
    env.warn(where, f"control {name!r} needs text, got {v!r}; left out")
    return None

