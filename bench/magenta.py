"""Magenta backend benchmark: ms per 40 ms frame through Cadenza vs the library's own ``generate()`` loop.

For each model, in one process on one device, on the same checkpoint:

- **library**: ``MagentaRT2System.generate(conditioning, frames=N, state)``,
  the official streaming loop (N frames per call, one host transfer);
- **backend**: :class:`MagentaBackend.generate` asked for one 40 ms frame at a
  time, as the live runtime drives it (conditioning rebuilt per frame, audio
  fetched per frame, beat tracker fed).

Runs alternate (library, backend, library, …) ``repeats`` times; each value
is the median over runs of the mean ms/frame of a run. Adapter overhead =
backend ÷ library − 1; real-time factor = 40 ms ÷ ms/frame.

Checkpoints get *random* weights of the model's real shapes (the real weights
cannot be downloaded here), from :func:`tiny.init_params` with ``fast=True``
(shapes from the library's sampler, values drawn on the host: minutes faster
than running ``init`` for mrt2_base), in a private Hugging Face cache — never
the user's. Run standalone (``--json``) on a GPU machine,
or through ``rows()`` from ``bench/run.py``, which starts this file as a
subprocess (its own JAX, its own cache) and also measures the runtime's RSS
with ``cadenza serve --backend magenta --model tiny``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GPU_RESULTS = REPO / "bench" / "magenta_gpu.json"
FRAME_MS = 40.0
GOALS_MS = {"mrt2_small": 20.0, "mrt2_base": 40.0}


def _say(msg: str) -> None:
    print(f"[magenta bench] {msg}", file=sys.stderr, flush=True)


def prepare(model: str, cache: Path) -> None:
    """Make sure the private cache holds a checkpoint for ``model`` (random weights)."""
    from cadenza.runtime.backends.magenta import tiny, weights

    if weights.cached_path(weights.MODELS[model].files[0]) is not None:
        return
    from magenta_rt.jax import model as model_configs

    if model == "tiny":
        tiny.register()
    t0 = time.perf_counter()
    params = tiny.init_params(model_configs.get_model_class(weights.MODELS[model].library_size), fast=True)
    _say(f"{model}: random weights initialised in {time.perf_counter() - t0:.1f} s")
    tiny.save_to_cache(params, weights.MODELS[model].files[0], cache, {"cadenza": f"random {model} for benchmarks"},
                       say=_say)


def measure(model: str, device: str | None, frames: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    from cadenza.runtime.backends import Controls, TextPrompt
    from cadenza.runtime.backends.magenta import MagentaBackend
    from magenta_rt.config import MUSICCOCA

    t0 = time.perf_counter()
    backend = MagentaBackend(model=model, device=device, style_model="mock", say=_say)
    ready_s = time.perf_counter() - t0
    system = backend.system
    style = backend.embed(TextPrompt("disco funk")).vector
    tokens = backend.style_tokens(style)
    controls = Controls()

    lib_state = system._jit_init_state(system._params, {})
    _, lib_state = system.generate(conditioning={MUSICCOCA.key: tokens}, frames=3, state=lib_state)  # warm
    state = backend.new_stream(0)
    for _ in range(3):
        _, state = backend.generate(state, style, controls, 1920)

    lib_ms: list[float] = []
    our_ms: list[float] = []
    for r in range(repeats):
        t = time.perf_counter()
        wav, lib_state = system.generate(conditioning={MUSICCOCA.key: tokens}, frames=frames, state=lib_state)
        lib_ms.append(1000 * (time.perf_counter() - t) / frames)
        t = time.perf_counter()
        for _ in range(frames):
            pcm, state = backend.generate(state, style, controls, 1920)
        our_ms.append(1000 * (time.perf_counter() - t) / frames)
        _say(f"{model} run {r + 1}/{repeats}: library {lib_ms[-1]:.1f} ms/frame, backend {our_ms[-1]:.1f} ms/frame")
        assert np.all(np.isfinite(pcm)) and wav.samples.shape[0] == frames * 1920
    lib = statistics.median(lib_ms)
    ours = statistics.median(our_ms)
    return {"model": model, "device": backend.device, "parameters": backend.parameters,
            "load_s": round(backend.load_seconds, 2), "compile_s": round(backend.compile_seconds, 2),
            "ready_s": round(ready_s, 2), "frames_per_run": frames, "runs": repeats,
            "library_ms": round(lib, 3), "backend_ms": round(ours, 3), "overhead": round(ours / lib - 1, 4),
            "library_runs_ms": [round(x, 3) for x in lib_ms], "backend_runs_ms": [round(x, 3) for x in our_ms],
            "rtf": round(FRAME_MS / ours, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="tiny", help="comma-separated: tiny, mrt2_small, mrt2_base")
    ap.add_argument("--device", choices=["cpu", "gpu", "tpu"])
    ap.add_argument("--frames", type=int, default=25, help="frames per timed run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache", help="private Hugging Face cache (default: a temporary folder)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cadenza-magenta-bench-") as tmp:
        cache = Path(args.cache or tmp)
        os.environ["HF_HUB_CACHE"] = str(cache)  # before huggingface_hub is imported
        os.environ["HF_HUB_OFFLINE"] = "1"
        from cadenza.runtime.backends.magenta import select_device

        select_device(args.device)
        import jax

        results = {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()],
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "models": []}
        for model in [m.strip() for m in args.models.split(",") if m.strip()]:
            prepare(model, cache)
            results["models"].append(measure(model, args.device, args.frames, args.repeats))
            _say(json.dumps(results["models"][-1]))
            if args.json:  # after each model: a later one running out of time or memory loses nothing
                Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


# ------------------------------------------------------------------ table rows


def _run_self(models: str, frames: int, repeats: int, timeout: float, cache: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--models", models, "--device", "cpu", "--frames", str(frames),
                          "--repeats", str(repeats), "--cache", str(cache)],
                         capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"bench/magenta.py exited {out.returncode}: {' '.join(tail)}")
    return json.loads(out.stdout)


def _model_rows(res: dict[str, Any], where: str) -> list[Any]:
    from bench.table import Row

    rows = []
    for m in res["models"]:
        name = m["model"]
        on_gpu = "cpu" not in m["device"]
        why = ""
        if m["overhead"] > 0.05 and on_gpu:
            why = (f"{name} on {m['device']}: the library's loop queues all frames back to back, so the host's "
                   "kernel launches for frame k+1 overlap frame k on the device; a live stream hands over each "
                   "40 ms frame before the next frame's conditioning exists, so launch and compute serialize "
                   f"(+{m['backend_ms'] - m['library_ms']:.1f} ms per frame, growing with model size). Dispatching "
                   "the next frame ahead was tried and was slower (bench/magenta_gpu.json, experiments).")
        rows.append(Row(f"Magenta adapter overhead, {name} ({where})", f"{100 * m['overhead']:+.1f} %",
                        f"library generate() {m['library_ms']:.1f} ms/frame", f"{m['backend_ms'] / m['library_ms']:.3f}",
                        "≤ +5 %", m["overhead"] <= 0.05, m["runs"], note=why))
        goal = GOALS_MS.get(name)
        rows.append(Row(f"Magenta ms per 40 ms frame, {name} ({where})", f"{m['backend_ms']:.1f} ms",
                        "40 ms (real time)", f"RTF {m['rtf']:.2f}×",
                        f"≤ {goal:g} ms on a GPU" if goal else "", (m["backend_ms"] <= goal) if goal and
                        "cpu" not in m["device"] else None, m["runs"],
                        note=f"{name}: {m['parameters']:,} parameters (random weights), weights loaded in "
                             f"{m['load_s']} s, compiled in {m['compile_s']} s, on {m['device']}"
                             + (f"; the library's own loop takes {m['library_ms']:.1f} ms/frame here"
                                if goal and on_gpu and m["backend_ms"] > goal else "")))
    return rows


def _serve_rss(cache: Path) -> tuple[float, float]:
    """RSS (MB) of `cadenza serve` with the tiny magenta model (from ``cache``) and with the synth,
    each after 5 s of playing (:func:`bench.memory.serve_rss`)."""
    from bench.memory import serve_rss

    old = dict(os.environ)
    os.environ.update({"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"})  # the served process inherits it
    try:
        mag, _ = serve_rss(["--backend", "magenta", "--model", "tiny", "--device", "cpu", "--prompt", "disco funk"],
                           play_s=5.0, runs=1)
    finally:
        os.environ.clear()
        os.environ.update(old)
    synth, _ = serve_rss(["--prompt", "dark techno"], play_s=5.0, runs=1)
    return mag, synth


def rows(quick: bool) -> list[Any]:
    """Rows for bench/run.py's table (raises ImportError when the magenta extra is missing)."""
    import magenta_rt  # noqa: F401 — ImportError: the runner reports "not run: pip install 'cadenza[magenta]'"

    from bench.table import Row

    out: list[Any] = []
    with tempfile.TemporaryDirectory(prefix="cadenza-magenta-bench-") as tmp:
        cache = Path(tmp)
        res = _run_self("tiny", frames=5 if quick else 25, repeats=3 if quick else 5, timeout=900, cache=cache)
        out += _model_rows(res, "CPU here")
        if not quick:
            try:
                res = _run_self("mrt2_small", frames=3, repeats=3, timeout=1800, cache=cache)
                out += _model_rows(res, "CPU here")
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                out.append(Row.failed("Magenta ms per 40 ms frame, mrt2_small (CPU here)", exc))
        mag, synth = _serve_rss(cache)
    if GPU_RESULTS.is_file():
        gpu = json.loads(GPU_RESULTS.read_text())
        card = gpu["models"][0]["device"].split("(", 1)[-1].rstrip(")")
        out += _model_rows(gpu, f"{card}, recorded {gpu['date']}")
    else:
        out.append(Row.not_run("Magenta ms per 40 ms frame on a GPU", "no GPU result recorded (bench/magenta_gpu.json)"))
    out.append(Row("runtime RSS, magenta backend (tiny model, CPU)", f"{mag:.0f} MB", f"synth {synth:.0f} MB",
                   f"{mag / synth:.2f}", runs=1, note="VmRSS of `cadenza serve` after 5 s of playing"))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
