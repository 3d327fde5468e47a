"""What the runtime would refuse later, found at load: the last stage of reading a style graph.

One job: given a :class:`~cadenza.runtime.graph.spec.Graph` that is valid by
the format, list every problem that would otherwise surface only while it
plays — each as a :class:`~cadenza.runtime.graph.loader.GraphIssue` with the
file:line of the value — so that what ``cadenza graph check`` and LoadGraph
accept, the runtime runs:

- value nodes nested at most :data:`MAX_EVAL_DEPTH` levels, counting through
  named nodes (the engine evaluates them by recursion);
- the graph engine compiles (references, pads, ranges), and a dry run of
  every state's mix and controls, with every parameter at its default, min,
  max and each label, builds valid controls and finite weights.

What the data alone shows — control literals out of range or an unknown
scale, durations over the cap, ``control_rate``, the prompt limits — is the
format's (:func:`cadenza.graph_format.validate`), so the SDK's builder
refuses it at the call too.

Stinger audio and audio prompts are read and decoded by the loader itself
(:mod:`.audio`); prompts the backend cannot embed are found by
:func:`embed_prompts`, which the conductor and ``graph check`` call with their
backend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from cadenza.errors import CadenzaError, PromptError
from cadenza.runtime.graph.spec import (
    Blend,
    Clamp,
    Const,
    Curve,
    Graph,
    Node,
    NodeRef,
    Op,
    ParamRef,
    Scalar,
    Select,
    Weight,
    When,
)

if TYPE_CHECKING:
    from cadenza.runtime.backends.base import Prompt
    from cadenza.runtime.graph.engine import GraphEngine
    from cadenza.runtime.graph.nodes import MixFn, NodeFn, Value
    from cadenza.runtime.graph.issues import GraphIssue
    from cadenza.runtime.mixing import PromptMixer

__all__ = ["MAX_DRY_RUN", "check_runnable", "embed_prompts", "line_of"]

MAX_DRY_RUN = 20_000  # mix entries and controls evaluated in the dry run (under 0.1 s)
#: value nodes inside each other, counting through named nodes: the engine evaluates them by recursion,
#: so a deeper graph would exhaust Python's stack in the generation thread
MAX_EVAL_DEPTH = 150

_TAIL = re.compile(r"(\[[0-9]+\]|\.[^.\[]*)$")


def line_of(lines: Mapping[str, int], path: str) -> int | None:
    """The line of ``path`` in the source, or of its nearest enclosing value that has one."""
    p = path
    while p:
        if p in lines:
            return lines[p]
        m = _TAIL.search(p)
        if m is None or m.start() == 0:
            break
        p = p[: m.start()]
    return lines.get(p, lines.get("")) if p else lines.get("")


def _issue(graph: Graph, path: str, message: str) -> GraphIssue:
    from cadenza.runtime.graph.issues import GraphIssue

    return GraphIssue(graph.source, line_of(graph.lines, path), path, message)


def _control_nodes(graph: Graph) -> Iterator[tuple[str, str, Node]]:
    for name, node in graph.controls.items():
        yield f"controls.{name}", name, node
    for sname, st in graph.states.items():
        for name, node in st.controls or ():
            yield f"states.list.{sname}.controls.{name}", name, node


def check_runnable(graph: Graph) -> list[GraphIssue]:
    """Every problem the runtime would meet playing ``graph`` (see the module docstring); [] when none."""
    out: list[GraphIssue] = []
    out += _check_depth(graph)
    if out:
        return out
    return _dry_run(graph)


def _children(n: Node) -> list[Node]:
    if isinstance(n, Curve):
        return [n.input]
    if isinstance(n, Op):
        return list(n.args)
    if isinstance(n, Clamp):
        return [n.value]
    if isinstance(n, When):
        return [n.then, n.otherwise]
    if isinstance(n, Select):
        return [c for _, c in n.cases] + ([n.default] if n.default is not None else [])
    return []


def _tree_depth(n: Node, named: Mapping[str, int]) -> int:
    """Levels of ``n``, where a reference to a named node counts that node's levels (``named``)."""
    deepest = 0
    todo = [(n, 1)]
    while todo:
        node, d = todo.pop()
        if isinstance(node, NodeRef):
            d += named.get(node.name, 0)
        deepest = max(deepest, d)
        todo += [(c, d + 1) for c in _children(node)]
    return deepest


def _check_depth(graph: Graph) -> list[GraphIssue]:
    """Named nodes in dependency order, each node's depth; the first too deep, or each root too deep."""
    refs: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        found: list[str] = []
        todo = [node]
        while todo:
            x = todo.pop()
            if isinstance(x, NodeRef) and x.name in graph.nodes:
                found.append(x.name)
            todo += _children(x)
        refs[name] = found
    depth: dict[str, int] = {}
    for start in graph.nodes:  # iterative post-order (the loader has refused cycles)
        if start in depth:
            continue
        stack = [(start, False)]
        while stack:
            name, ready = stack.pop()
            if name in depth:
                continue
            if ready or all(r in depth for r in refs[name]):
                depth[name] = _tree_depth(graph.nodes[name], depth)
                continue
            stack.append((name, True))
            stack += [(r, False) for r in refs[name] if r not in depth]
    limit = f"at most {MAX_EVAL_DEPTH} levels (counting through {{node: ..}} references); flatten it"
    for name in graph.nodes:
        if depth.get(name, 0) > MAX_EVAL_DEPTH:
            return [_issue(graph, f"nodes.{name}", f"value nodes nested {depth[name]} levels deep: {limit}")]
    roots: list[tuple[str, Node]] = [(w, n) for w, _, n in _control_nodes(graph)]
    for where, entries in (("mix", graph.mix),
                           *((f"states.list.{s}.mix", st.mix or ()) for s, st in graph.states.items())):
        for i, e in enumerate(entries):
            if isinstance(e, Weight):
                roots.append((f"{where}[{i}].weight", e.weight))
            elif isinstance(e, Blend):
                roots.append((f"{where}[{i}].blend.input", e.input))
            else:
                roots += [(f"{where}[{i}].pad.x", e.x), (f"{where}[{i}].pad.y", e.y)]
    for where, node in roots:
        d = _tree_depth(node, depth)
        if d > MAX_EVAL_DEPTH:
            return [_issue(graph, where, f"value nodes nested {d} levels deep: {limit}")]
    return []


def _dry_run(graph: Graph) -> list[GraphIssue]:
    """Build the engine and evaluate every state's outputs at the parameters' extremes; the first failure."""
    from cadenza.runtime.graph.engine import GraphEngine

    try:
        engine = GraphEngine(graph)
    except CadenzaError as exc:
        return [_issue(graph, exc.where or "", exc.message)]
    base = dict(engine._values)
    # labels first: a select or when over labels is where a state's values differ most
    variants: list[dict[str, Value]] = [{}]
    for name, p in graph.parameters.items():
        if p.type == "labeled":
            variants += [{name: label} for label in p.labels]
    variants.append({"intensity": 1.0})
    for name, p in graph.parameters.items():
        if p.type == "discrete":
            variants += [{name: int(math.ceil(p.min))}, {name: int(math.floor(p.max))}]
        elif p.type == "continuous":
            variants += [{name: float(p.min)}, {name: float(p.max)}]
    budget = MAX_DRY_RUN
    for var in variants:
        for state, (mix, controls) in engine._outputs.items():
            entries = graph.mix if state is None else (graph.states[state].mix or graph.mix)
            budget -= 1 + len(controls) + len(entries)
            if budget < 0:
                return []
            where = "mix" if state is None else f"states.list.{state}"
            problem = _evaluate(graph, engine, mix, controls, {**base, **var}, where, var)
            if problem is not None:
                return [problem]
    return []


def _evaluate(graph: Graph, engine: GraphEngine, mix: MixFn, controls: list[tuple[str, NodeFn]],
              values: dict[str, Value], where: str, var: dict[str, Value]) -> GraphIssue | None:
    """One evaluation of a state's mix and controls as the conductor would use them; the problem, or None."""
    from cadenza.runtime.backends.base import Controls
    from cadenza.runtime.graph.nodes import Env, normalize

    env = Env(values)
    with_what = f"with {var}" if var else "with the default values"
    try:
        acc = [0.0] * len(engine._prompts)
        mix(env, acc)
        weights = normalize(acc, engine._default)
        if not all(math.isfinite(w) and w >= 0.0 for w in weights) or not sum(weights) > 0.0:
            return _issue(graph, where, f"the mix gives no usable weights {with_what}")
        Controls.from_values({cname: fn(env) for cname, fn in controls})
    except CadenzaError as exc:
        return _issue(graph, exc.where if exc.where and "." in exc.where else where, f"{exc.message} ({with_what})")
    except (ArithmeticError, ValueError, TypeError) as exc:
        return _issue(graph, where, f"cannot be evaluated {with_what}: {type(exc).__name__}: {exc}")
    return None


def embed_prompts(graph: Graph, mixer: PromptMixer) -> dict[str, Prompt]:
    """Every prompt of ``graph`` as the backend's prompt, embedded through ``mixer`` now (cached there).

    A prompt the backend cannot embed (no known word, an audio file it cannot
    analyze) raises :class:`~cadenza.runtime.graph.loader.InvalidGraph` with
    the prompt's file:line — at load, never in the generation thread.
    """
    from pathlib import Path

    from cadenza.runtime.backends.base import AudioPrompt, TextPrompt
    from cadenza.runtime.files import FileRefused
    from cadenza.runtime.graph.issues import InvalidGraph

    prompts: dict[str, Prompt] = {}
    issues = []
    for name, p in graph.prompts.items():
        # the bytes the loader read (and checked) are what the backend embeds: the file is never opened again
        prompt: Prompt = (AudioPrompt(Path(p.audio), data=graph.prompt_audio.get(p.audio)) if p.audio
                          else TextPrompt(p.text or ""))
        prompts[name] = prompt
        try:
            mixer.embed(prompt)
        except (PromptError, FileRefused, ValueError, OSError) as exc:
            path = f"prompts.{name}"
            sub = f"{path}.audio" if p.audio else f"{path}.text"
            message = exc.message if isinstance(exc, CadenzaError) else f"{type(exc).__name__}: {exc}"
            issues.append(_issue(graph, sub if sub in graph.lines else path,
                                 f"the {mixer.backend.name} backend cannot embed this prompt: {message}"))
    if issues:
        raise InvalidGraph(issues)
    return prompts
