"""Cadenza benchmarks: one command, one table (``make bench`` → bench/results.md).

Every figure is a median over repeated runs, next to a baseline measured in the
same run, so a noisy shared machine shifts both. Today's rows: the synth
backend's real-time factor on one core, and the time a new process needs to
produce its first audio block (numba cache warm) against a bare Python + NumPy
start. ``--quick`` runs fewer repetitions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPTS = ("dark techno", "calm ambient pads", "aggressive drum and bass", "solo piano", "lo-fi hip hop")

FIRST_BLOCK = r"""
import time, sys
t0 = float(sys.argv[1])
from cadenza.runtime.backends.base import Controls
from cadenza.runtime.backends.synth import SynthBackend
b = SynthBackend()
style = b.embed(__import__("cadenza.runtime.backends.base", fromlist=["TextPrompt"]).TextPrompt("dark techno")).vector
st = b.new_stream(1)
pcm, st = b.generate(st, style, Controls(), 480)
print(time.time() - t0)
"""

BARE = r"""
import time, sys
t0 = float(sys.argv[1])
import numpy
print(time.time() - t0)
"""


def pin_one_core() -> str:
    try:
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    except (AttributeError, OSError):
        return "not pinned (no sched_setaffinity)"


def synth_rtf(repeats: int, seconds: float) -> tuple[float, list[float]]:
    from cadenza.runtime.backends.base import TextPrompt, WeightedPrompt
    from cadenza.runtime.render import render

    render([WeightedPrompt(TextPrompt("dark techno"))], seconds=2.0)  # compile / load cache
    ratios: list[float] = []
    for r in range(repeats):
        for p in PROMPTS:
            t = time.perf_counter()
            render([WeightedPrompt(TextPrompt(p))], seconds=seconds, seed=r)
            ratios.append(seconds / (time.perf_counter() - t))
    return statistics.median(ratios), ratios


def step_cost(repeats: int) -> float:
    """Median wall time of one 10 ms (480-frame) live step, in microseconds."""
    from cadenza.runtime.backends.base import Controls, TextPrompt
    from cadenza.runtime.backends.synth import SynthBackend

    b = SynthBackend()
    style = b.embed(TextPrompt("dark techno")).vector
    st = b.new_stream(3)
    times: list[float] = []
    for _ in range(repeats * 500):
        t = time.perf_counter()
        _, st = b.generate(st, style, Controls(), 480)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def crossfade_ratio(repeats: int) -> tuple[float, float]:
    """Median µs per 480-frame equal-power crossfade: numba kernel vs the best NumPy version."""
    import numpy as np

    from cadenza.runtime.mixer import kernels

    n = 480
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    out = np.empty_like(a)
    ramp = np.arange(n, dtype=np.float64) / n
    ph = np.empty(n)
    ga = np.empty((n, 1))
    gb = np.empty((n, 1))
    tmp = np.empty((n, 2))

    def numpy_best(p0: float, p1: float) -> None:  # preallocated, in place: no temporaries
        np.multiply(ramp, (p1 - p0) * kernels.HALF_PI, out=ph)
        np.add(ph, p0 * kernels.HALF_PI, out=ph)
        np.cos(ph, out=ga[:, 0])
        np.sin(ph, out=gb[:, 0])
        np.multiply(a, ga, out=tmp)
        np.multiply(b, gb, out=out)
        np.add(out, tmp, out=out, casting="unsafe")

    kernels.crossfade_into(out, a, b, 0.0, 0.5)

    def timed(fn: object) -> float:
        best = []
        for _ in range(repeats * 5):
            t = time.perf_counter()
            for _ in range(2000):
                fn(0.2, 0.4)  # type: ignore[operator]
            best.append((time.perf_counter() - t) / 2000 * 1e6)
        return statistics.median(best)

    return timed(lambda p0, p1: kernels.crossfade_into(out, a, b, p0, p1)), timed(numpy_best)


def graph_cost(repeats: int) -> tuple[str, float]:
    """Seconds to evaluate 10 minutes of the largest example graph at its control rate, with a sensor
    updating one parameter every tick, triggers and state changes; the worst graph's median."""
    from cadenza.runtime.graph.engine import FixedClock, GraphEngine
    from cadenza.runtime.graph.loader import load_graph

    worst = ("", 0.0)
    for path in sorted((HERE.parent / "examples").glob("*/graph.yaml")):
        graph = load_graph(path)
        continuous = [n for n, p in graph.parameters.items() if p.type == "continuous"]
        labeled = [n for n, p in graph.parameters.items() if p.type == "labeled"]
        ticks = int(600 * graph.control_rate)
        times = []
        for _ in range(repeats):
            engine = GraphEngine(graph)
            clock = FixedClock(120.0)
            t0 = time.perf_counter()
            for k in range(ticks):
                if continuous:
                    p = graph.parameters[continuous[k % len(continuous)]]
                    engine.set(p.name, p.min + (p.max - p.min) * (0.5 + 0.5 * ((k * 7919) % 1000) / 1000 - 0.25))
                if graph.triggers and k % 300 == 0:
                    engine.trigger(sorted(graph.triggers)[k // 300 % len(graph.triggers)])
                if labeled and k % 1000 == 0:
                    q = graph.parameters[labeled[0]]
                    engine.set(q.name, q.labels[k // 1000 % len(q.labels)])
                engine.tick(clock)
            times.append(time.perf_counter() - t0)
        cost = statistics.median(times)
        if cost > worst[1]:
            worst = (path.parent.name, cost)
    return worst


def new_process(code: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", code, repr(time.time())], capture_output=True, text=True,
                             check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    args = ap.parse_args()
    repeats = 2 if args.quick else 5
    seconds = 15.0 if args.quick else 30.0
    pinned = pin_one_core()

    new_process(FIRST_BLOCK, 1)  # warm numba's on-disk cache
    first = new_process(FIRST_BLOCK, repeats)
    bare = new_process(BARE, repeats)
    rtf, ratios = synth_rtf(repeats, seconds)
    step_us = step_cost(repeats)
    xf_numba, xf_numpy = crossfade_ratio(repeats)
    graph_name, graph_s = graph_cost(max(1, repeats // 2))

    rows = [
        ("synth real-time factor (render, 1 core)", f"{rtf:.0f}×", "real time (1×)", f"{rtf:.0f}", "≥ 100×",
         "yes" if rtf >= 100 else "NO"),
        ("synth live step, 480 frames (10 ms)", f"{step_us:.0f} µs", "10 000 µs of audio", f"{10_000 / step_us:.0f}",
         "≥ 10× headroom", "yes" if step_us <= 1000 else "NO"),
        ("equal-power crossfade, 480 frames: numba", f"{xf_numba:.2f} µs", f"best NumPy {xf_numpy:.2f} µs",
         f"{xf_numpy / xf_numba:.1f}", "≥ 1.3×", "yes" if xf_numpy / xf_numba >= 1.3 else "NO"),
        (f"graph evaluation, 10 min at 100 Hz (worst example: {graph_name})", f"{graph_s:.2f} s",
         "600 s of timeline", f"{100 * graph_s / 600:.2f} %", "≤ 1 % of real time",
         "yes" if graph_s <= 6.0 else "NO"),
        ("first audio block in a new process (cache warm)", f"{first:.2f} s", f"bare python+numpy {bare:.2f} s",
         f"{first / bare:.1f}", "≤ 2 s", "yes" if first <= 2.0 else "NO"),
    ]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"
    lines = [
        "# Cadenza benchmark results",
        "",
        f"Machine: {machine}; {pinned}. Medians over {repeats} runs "
        f"({len(PROMPTS)} prompts × {repeats} seeds × {seconds:.0f} s for the real-time factor; "
        f"range {min(ratios):.0f}–{max(ratios):.0f}×).",
        "",
        "| figure | value | baseline (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        *[f"| {' | '.join(r)} |" for r in rows],
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0 if all(r[-1] == "yes" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
