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

Two runtimes, one after the other:

- **after**: the model steps without the engine lock (the backend's
  ``prefetch``, :mod:`cadenza.runtime.live`): a request waits at most for a
  block's plan or mix;
- **before**: ``CADENZA_PREFETCH=off``, the old behaviour, the lock held
  across each model step: a request waits out the step it arrives in.

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
            echo_endpoint: str) -> dict[str, list[float]]:
    """Round trips (µs) of SetParameters to a tiny-magenta runtime and of the echo, interleaved, per run."""
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu"}
    if before:
        env["CADENZA_PREFETCH"] = "off"
    out: dict[str, list[float]] = {"serve_p50": [], "serve_p99": [], "echo_p50": [], "echo_p99": [], "max": []}
    name = "before" if before else "after"
    t0 = time.monotonic()
    server = Serve(["--backend", "magenta", "--model", "tiny", "--device", "cpu", "--graph", str(GRAPH)],
                   workdir, sink="null", name=name, env=env)
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
        for _ in range(repeats):
            s: list[float] = []
            e: list[float] = []
            for i in range(n):
                for sock, got in ((serve_sock, s), (echo_sock, e)):
                    t = time.perf_counter()
                    sock.send(frames[i + 1])
                    sock.recv()
                    got.append(time.perf_counter() - t)
                time.sleep(PERIOD_S)
            out["serve_p50"].append(1e6 * statistics.median(s))
            out["serve_p99"].append(1e6 * pct(s, 99))
            out["echo_p50"].append(1e6 * statistics.median(e))
            out["echo_p99"].append(1e6 * pct(e, 99))
            out["max"].append(1e6 * max(s))
            _say(f"{name}: median {out['serve_p50'][-1]:.0f} µs, p99 {out['serve_p99'][-1]:.0f} µs "
                 f"(echo {out['echo_p50'][-1]:.0f} / {out['echo_p99'][-1]:.0f} µs)")
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
    finally:
        echo.kill()
        echo.wait()
        ctx.destroy(linger=0)
    return {"after": after, "before": before}


def rows(quick: bool) -> list[Row]:
    import magenta_rt  # noqa: F401 — ImportError: the runner reports "not run: pip install 'cadenza[magenta]'"

    res = run(quick)
    out = []
    for name, r in res.items():
        s50, s99 = statistics.median(r["serve_p50"]), statistics.median(r["serve_p99"])
        e50, e99 = statistics.median(r["echo_p50"]), statistics.median(r["echo_p99"])
        after = name == "after"
        out.append(Row(
            "SetParameters round trip while the tiny Magenta model generates (CPU), "
            + ("model steps without the engine lock" if after else "before: lock held across each step "
               "(CADENZA_PREFETCH=off)"),
            f"median {s50:.0f} µs, p99 {s99:.0f} µs", f"bare pyzmq echo, same moments: median {e50:.0f} µs, "
            f"p99 {e99:.0f} µs", f"{s50 / e50:.2f}× (p99 {s99 / e99:.2f}×)", "≤ 2× the bare echo" if after else "",
            s50 / e50 <= 2 if after else None, len(r["serve_p50"]),
            "Magenta control: a client sets a parameter every 10 ms, each request followed by one echo round trip; "
            "`cadenza serve --backend magenta --model tiny` on tests/graphs/magenta_decks.yaml, null sink "
            "(bench/magenta_control.py)."))
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
