"""``cadenza graph plot``: every prompt weight and control against every parameter, as one PNG.

Each parameter is swept across its range (labels one by one for a labeled
parameter) while the others stay at their defaults; the graph engine itself
evaluates each point, so the plot shows exactly what the runtime will do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cadenza.errors import UsageError
from cadenza.runtime.graph.engine import FixedClock, GraphEngine
from cadenza.runtime.graph.spec import Graph

SWEEP_POINTS = 81


def unit_range(name: str, values: object) -> tuple[np.ndarray, str]:
    """A series scaled into [0, 1] when it leaves that range, with a label that gives the original range."""
    arr = np.asarray(values, dtype=float)
    finite = arr[np.isfinite(arr)]
    if finite.size and (finite.max() > 1.0 or finite.min() < 0.0):
        lo, hi = float(finite.min()), float(finite.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else arr * 0 + 0.5
        name = f"{name} ({lo:g}–{hi:g})"
    return arr, name


def sweep(graph: Graph, name: str, state: str | None = None) -> tuple[list[float | str], list[dict[str, float]],
                                                                        list[dict[str, object]]]:
    """Values of parameter ``name`` and the weights and controls the graph gives at each."""
    p = graph.parameters[name]
    if p.type == "labeled":
        xs: list[float | str] = list(p.labels)
    elif p.type == "discrete":
        lo, hi = int(p.min), int(p.max)
        step = max(1, (hi - lo) // SWEEP_POINTS)
        xs = list(range(lo, hi + 1, step))
    else:
        xs = [float(x) for x in np.linspace(p.min, p.max, SWEEP_POINTS)]
    clock = FixedClock(120.0)
    weights: list[dict[str, float]] = []
    controls: list[dict[str, object]] = []
    for x in xs:
        engine = GraphEngine(graph)
        if state is not None and graph.states_driven_by is None:
            engine.set_state(state)
        for other, q in graph.parameters.items():
            value = x if other == name else q.default
            if graph.states_driven_by == other and state is not None and other != name:
                value = state
            engine.set(other, value, bypass=True)
        frame = engine.tick(clock)
        for _ in range(2):  # let a state request settle (quantize "now" fades of 0 s)
            frame = engine.tick(clock)
        weights.append(dict(frame.weights))
        controls.append(dict(frame.controls))
    return xs, weights, controls


def plot_graph(graph: Graph, out: Path, state: str | None = None) -> int:
    """Write the sweep plot; returns the number of parameters plotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if state is not None and state not in graph.states:
        raise UsageError(f"unknown state {state!r}. Available: {sorted(graph.states)}", where="--state")
    names = list(graph.parameters)
    if not names:
        raise UsageError(f"{graph.source} has no parameters to plot", where="graph plot")
    fig, axes = plt.subplots(len(names), 2, figsize=(13, 3.0 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        xs, weights, controls = sweep(graph, name, state)
        categorical = graph.parameters[name].type == "labeled"
        marker = "o" if graph.parameters[name].type != "continuous" else None
        pos = list(range(len(xs))) if categorical else [float(x) for x in xs]
        ax_w, ax_c = axes[row]
        for prompt in graph.prompts:
            ax_w.plot(pos, [w.get(prompt, 0.0) for w in weights], marker=marker,
                      label=prompt, lw=1.5)
        ax_w.set_ylabel("weight")
        ax_w.set_ylim(-0.02, 1.02)
        ax_w.set_title(f"prompt weights vs {name}", fontsize=10)
        for control in sorted({k for c in controls for k in c}):
            vals = [c.get(control) for c in controls]
            num = [float(v) if isinstance(v, (int, float)) else np.nan for v in vals]
            if not np.isfinite(num).any():
                continue
            arr, label = unit_range(control, num)
            ax_c.plot(pos, arr, marker=marker, label=label, lw=1.3)
        ax_c.set_title(f"controls vs {name} (normalized)", fontsize=10)
        for ax in (ax_w, ax_c):
            if categorical:
                ax.set_xticks(pos, [str(x) for x in xs])
            ax.set_xlabel(name)
            ax.grid(alpha=0.25)
            ax.legend(fontsize=7, loc="best")
    suffix = f" (state {state})" if state else ""
    fig.suptitle(f"{graph.name}{suffix}: each parameter swept, the others at their defaults")
    fig.tight_layout()
    fig.savefig(out, dpi=70)
    plt.close(fig)
    return len(names)
