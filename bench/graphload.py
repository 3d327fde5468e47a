"""Load time of the example style graphs: today's loader against the one it replaced, in the same run.

One job: ``rows(quick)`` times ``load_graph`` on every ``examples/*/graph.yaml``
(read, YAML, the format check, audio files, the dataclasses, the runnable
check) with the loader of this checkout and with the hand-written loader of
:data:`BASELINE_COMMIT` (before the format was declared once in
``cadenza.graph_format``). The old loader is taken from git history
(``git show``) into a temporary module, never kept in the tree; without git
history the row says so. Calls alternate between the two loaders so that both
see the same machine; each load is timed in CPU time of the loading thread
(``time.thread_time``: what other processes on a shared machine do is not
counted), and the figure is the median of each graph's loads, summed over the
graphs, pinned to one core.
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.core import one_core
from bench.table import Row

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: the last commit with the hand-written loader (runtime/graph/loader.py, 1,640 lines)
BASELINE_COMMIT = "0dc6182"
FIGURE = "style-graph load, every example graph (read, check, convert), CPU time, median per graph summed"


def old_loader() -> ModuleType:
    """The loader of :data:`BASELINE_COMMIT` as a module of its own (it imports today's spec, files, audio)."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{BASELINE_COMMIT}:runtime/graph/loader.py"],
                          capture_output=True, text=True, check=True).stdout
    # its own copy of the control kinds asserted the old order of the control names; today's order is pb.Controls'
    text = text.replace("assert tuple(CONTROL_KINDS) == CONTROL_NAMES",
                        "assert set(CONTROL_KINDS) == set(CONTROL_NAMES)")
    spec = importlib.util.spec_from_loader("cadenza_bench_old_loader", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(text, f"{BASELINE_COMMIT}:runtime/graph/loader.py", "exec"), module.__dict__)
    return module


def measure(loaders: dict[str, Callable[[Path], Any]], graphs: list[Path], repeats: int) -> dict[str, float]:
    """CPU seconds per loader: each graph's median load, summed; loaders alternate call by call."""
    times: dict[str, dict[Path, list[float]]] = {name: {g: [] for g in graphs} for name in loaders}
    for g in graphs:
        for load in loaders.values():
            load(g)  # warm: imports, audio decoders
    for _ in range(repeats):
        for g in graphs:
            for name, load in loaders.items():
                t0 = time.thread_time()
                load(g)
                times[name][g].append(time.thread_time() - t0)
    return {name: sum(statistics.median(ts) for ts in per.values()) for name, per in times.items()}


def rows(quick: bool) -> list[Row]:
    from cadenza.runtime.graph.loader import load_graph

    graphs = sorted((ROOT / "examples").glob("*/graph.yaml"))
    try:
        old = old_loader()
    except (OSError, subprocess.CalledProcessError) as exc:
        return [Row.not_run(FIGURE, f"the baseline loader ({BASELINE_COMMIT}) is not in this checkout's git "
                                    f"history ({exc})", "≤ 1.0× the old loader")]
    repeats = 30 if quick else 200
    with one_core() as pinned:
        t = measure({"new": load_graph, "old": old.load_graph}, graphs, repeats)
    ratio = t["new"] / t["old"]
    names = ", ".join(g.parent.name for g in graphs)
    return [Row(FIGURE, f"{t['new'] * 1e3:.2f} ms", f"old loader ({BASELINE_COMMIT}) {t['old'] * 1e3:.2f} ms",
                f"{ratio:.2f}×", "≤ 1.0× the old loader", ratio <= 1.0, repeats * len(graphs),
                f"Graph load: {len(graphs)} example graphs ({names}), {repeats} loads each per loader, alternating; "
                f"CPU time of the loading thread; {pinned}. The old loader is "
                f"{BASELINE_COMMIT}:runtime/graph/loader.py run from git history.")]


if __name__ == "__main__":
    for row in rows("--quick" in sys.argv):
        print(row)
