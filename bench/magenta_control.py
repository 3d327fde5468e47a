"""SetParameters round trip while the Magenta model generates, against a bare pyzmq echo measured in the same run.

``cadenza serve --backend magenta --model tiny`` (the real library, a tiny
random-weight checkpoint made by ``cadenza models make-tiny`` in a private
Hugging Face cache; CPU) plays tests/graphs/magenta_decks.yaml into the null
sink. On this CPU the tiny model is slower than real time, so it generates
all the time. A client sets a parameter every 10 ms (one request in flight,
on one DEALER), and each of its requests is followed by one round trip to a
bare pyzmq DEALER → ROUTER echo process (:data:`bench.live.ECHO`) on the same
box, so both see the same load at the same moments. Figures: medians over the
runs of each run's median and p99.

Three runtimes, one after the other:

- **after**: the model steps without the engine lock (the backend's
  ``prefetch``, :mod:`cadenza.runtime.live`): a request waits at most for a
  block's plan or mix; then the same runtime after Transport PAUSE (the
  model idle), which shows what handling a request costs the runtime itself;
- **before**: ``CADENZA_PREFETCH=off``, the old behaviour, the lock held
  across each model step: a request waits out the step it arrives in;
- **synth**: the same graph on the synth backend, the reference for what a
  SetParameters costs the runtime on this box at these moments.

Run standalone (``python -m bench.magenta_control``) or through ``rows()``
from ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

from bench.live import ECHO, pct
from bench.proc import Serve
from bench.table import Row
from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from tests.server_harness import child_env, free_ports, set_parameters

REPO = Path(__file__).resolve().parents[1]
GRAPH = REPO / "tests" / "graphs" / "magenta_decks.yaml"
PERIOD_S = 0.01  # the client sets a parameter every 10 ms
START_TIMEOUT_S = 600.0  # the tiny model compiles its batched steps at start-up (minutes on a loaded CPU)


def _say(msg: str) -> None:
    print(f"[magenta control bench] {msg}", file=sys.stderr, flush=True)


def make_tiny(cache: Path) -> None:
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "cadenza", "models", "make-tiny"], env=env, capture_output=True,
                          text=True, timeout=900, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"cadenza models make-tiny failed: {done.stderr.strip()[-300:]}")


def measure(cache: Path, workdir: Path, *, before: bool, n: int, repeats: int, ctx: zmq.Context[Any],
            echo_endpoint: str, synth: bool = False) -> dict[str, list[float]]:
    """Round trips (µs) of SetParameters to a tiny-magenta runtime (``synth``: the synth backend, same graph) and
    of the echo, interleaved, per run; then, unless ``before``, the same with the runtime paused."""
    # the compiled step kept in the cache folder: the second runtime loads it instead of compiling again
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": str(cache.parent / "jax-compile-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    if before:
        env["CADENZA_PREFETCH"] = "off"
    out: dict[str, list[float]] = {k: [] for k in ("serve_p50", "serve_p99", "echo_p50", "echo_p99", "paused_p50",
                                                    "paused_p99", "paused_echo_p50", "paused_echo_p99")}
    name = "synth" if synth else "before" if before else "after"
    t0 = time.monotonic()
    # one stream (the graph's bed: no state change or stinger here), so one batch size to compile
    backend = [] if synth else ["--backend", "magenta", "--model", "tiny", "--device", "cpu", "--batch-sizes", "1"]
    server = Serve([*backend, "--graph", str(GRAPH)], workdir, sink="null", name=name, env=env)
    server.start(timeout=START_TIMEOUT_S)
    try:
        _say(f"{name}: ready in {time.monotonic() - t0:.0f} s")
        serve_sock = ctx.socket(zmq.DEALER)
        serve_sock.connect(server.ep.local("control"))
        echo_sock = ctx.socket(zmq.DEALER)
        echo_sock.connect(echo_endpoint)
        frames = [wire.encode_request(set_parameters({"mood": (i % 2) * 1.0}), i + 1) for i in range(n + 1)]
        deadline = time.monotonic() + 120
        while True:  # the model plays: its first audio is out
            serve_sock.send(wire.encode_request(pb.GetStatus(), 10**6))
            st = wire.decode_reply(serve_sock.recv()).body
            if getattr(st, "stream_time", 0) > 4800 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for _ in range(20):  # warm both
            for sock in (serve_sock, echo_sock):
                sock.send(frames[0])
                sock.recv()
        for paused in (False, True) if not (before or synth) else (False,):
            if paused:  # the same runtime with the model idle: what the request costs the runtime itself
                serve_sock.send(wire.encode_request(pb.Transport(action=pb.Transport.PAUSE), 10**6 + 1))
                serve_sock.recv()
                time.sleep(0.5)
            key = "paused_" if paused else "serve_"
            for _ in range(repeats):
                s: list[float] = []
                e: list[float] = []
                for i in range(n):
                    # the first round trip after the sleep pays for waking this client (its caches, an idle vCPU):
                    # measured here, 1.5x the second one for two identical echoes; so the two take turns first
                    pair = ((serve_sock, s), (echo_sock, e))
                    for sock, got in pair if i % 2 == 0 else pair[::-1]:
                        t = time.perf_counter()
                        sock.send(frames[i + 1])
                        sock.recv()
                        got.append(time.perf_counter() - t)
                    time.sleep(PERIOD_S)
                out[key + "p50"].append(1e6 * statistics.median(s))
                out[key + "p99"].append(1e6 * pct(s, 99))
                echo_key = "paused_echo_" if paused else "echo_"
                out[echo_key + "p50"].append(1e6 * statistics.median(e))
                out[echo_key + "p99"].append(1e6 * pct(e, 99))
                _say(f"{name}{' (paused)' if paused else ''}: median {out[key + 'p50'][-1]:.0f} µs, p99 "
                     f"{out[key + 'p99'][-1]:.0f} µs (echo {out[echo_key + 'p50'][-1]:.0f} / "
                     f"{out[echo_key + 'p99'][-1]:.0f} µs)")
        serve_sock.close(0)
        echo_sock.close(0)
    finally:
        server.kill()
    return out


def run(quick: bool) -> dict[str, dict[str, list[float]]]:
    port = free_ports(1)[0]
    endpoint = f"tcp://127.0.0.1:{port}"
    echo = subprocess.Popen([sys.executable, "-c", ECHO, endpoint], stdout=subprocess.PIPE, text=True,
                            env=child_env())
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
        with tempfile.TemporaryDirectory(prefix="cadenza-magenta-control-") as tmp:
            cache = Path(tmp) / "hub"
            make_tiny(cache)
            work = Path(tmp) / "work"
            after = measure(cache, work, before=False, n=150 if quick else 300, repeats=3 if quick else 5, ctx=ctx,
                            echo_endpoint=endpoint)
            before = measure(cache, work, before=True, n=25 if quick else 50, repeats=3, ctx=ctx,
                             echo_endpoint=endpoint)
            synth = measure(cache, work, before=False, synth=True, n=150 if quick else 300, repeats=3 if quick else 5,
                            ctx=ctx, echo_endpoint=endpoint)
    finally:
        echo.kill()
        echo.wait()
        ctx.destroy(linger=0)
    return {"after": after, "before": before, "synth": synth}


def rows(quick: bool) -> list[Row]:
    import magenta_rt  # noqa: F401 — ImportError: the runner reports "not run: pip install 'cadenza[magenta]'"

    res = run(quick)
    note = ("Magenta control: a client sets a parameter every 10 ms, each request followed by one echo round trip; "
            "`cadenza serve --backend magenta --model tiny` on tests/graphs/magenta_decks.yaml, null sink "
            "(bench/magenta_control.py). The paused row is the same runtime after Transport PAUSE (the model idle): "
            "what handling a request costs the runtime itself; the synth row is the same graph on the synth backend, "
            "measured in the same run.")
    out = []
    for name, key, echo_key in (("after", "serve_", "echo_"), ("after", "paused_", "paused_echo_"),
                                ("synth", "serve_", "echo_"), ("before", "serve_", "echo_")):
        r = res[name]
        s50, s99 = statistics.median(r[key + "p50"]), statistics.median(r[key + "p99"])
        e50, e99 = statistics.median(r[echo_key + "p50"]), statistics.median(r[echo_key + "p99"])
        goal = name == "after" and key == "serve_"
        what = {"serve_": "tiny Magenta model generating, its steps without the engine lock",
                "paused_": "the same tiny Magenta runtime paused (model idle)"}[key]
        if name == "before":
            what = "tiny Magenta model generating, before: lock held across each step (CADENZA_PREFETCH=off)"
        elif name == "synth":
            what = "reference: the synth backend on the same graph"
        out.append(Row(
            f"SetParameters round trip, one every 10 ms (CPU): {what}",
            f"median {s50:.0f} µs, p99 {s99:.0f} µs", f"bare pyzmq echo, same moments: median {e50:.0f} µs, "
            f"p99 {e99:.0f} µs", f"{s50 / e50:.2f}× (p99 {s99 / e99:.2f}×)", "≤ 2× the bare echo" if goal else "",
            s50 / e50 <= 2 if goal else None, len(r[key + "p50"]), note))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    for row in rows(args.quick):
        print(" | ".join(row.cells()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
