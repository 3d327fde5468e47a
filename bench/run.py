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

    rows = [
        ("synth real-time factor (render, 1 core)", f"{rtf:.0f}×", "real time (1×)", f"{rtf:.0f}", "≥ 100×",
         "yes" if rtf >= 100 else "NO"),
        ("synth live step, 480 frames (10 ms)", f"{step_us:.0f} µs", "10 000 µs of audio", f"{10_000 / step_us:.0f}",
         "≥ 10× headroom", "yes" if step_us <= 1000 else "NO"),
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
