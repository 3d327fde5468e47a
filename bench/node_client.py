"""The Node client's SetParameters round trip against the Python SDK's, same runtime, same run: ``rows(quick)``.

One ``cadenza serve`` (null sink, a one-parameter graph) answers two clients
in turn, one request in flight each: the Python SDK's blocking
:class:`~cadenza.sdk.Client` (``set_many``) in this process, and the Node
client (``sdk/js``, ``setMany``) in a ``node`` process driven over its stdin
(``sdk/js/bench/rtt.js``). Runs alternate Python, Node, Python, Node … so a
noisy moment hits both; each run's median and p99 are taken, and the row gives
the median of the runs' medians (and of their p99s). Both clients run with the
heartbeat off and a timeout far above any round trip, so every timed call is
one request and one reply.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.live import PROBE_GRAPH
from bench.proc import Serve
from bench.table import Row
from cadenza.sdk import Client

REPO = Path(__file__).resolve().parents[1]
SDK_JS = REPO / "sdk" / "js"
GOAL = "≤ 1.5× the Python SDK"
FIGURE = "SetParameters round trip from the Node client (sdk/js) vs the Python SDK, loopback, one in flight"


def _python_run(client: Client, n: int, rng: np.random.Generator) -> tuple[float, float]:
    us = []
    for value in rng.random(n):
        t0 = time.perf_counter()
        client.set_many({"bright": float(value)})
        us.append(1e6 * (time.perf_counter() - t0))
    return statistics.median(us), float(np.percentile(us, 99))


def _node_run(node: subprocess.Popen[str], n: int) -> tuple[float, float]:
    assert node.stdin is not None and node.stdout is not None
    node.stdin.write(f"{n}\n")
    node.stdin.flush()
    line = node.stdout.readline()
    if not line:
        raise RuntimeError(f"the node round-trip process ended (exit {node.poll()})")
    got = json.loads(line)
    return float(got["p50_us"]), float(got["p99_us"])


def rows(quick: bool) -> list[Row]:
    n, repeats = (1000, 3) if quick else (3000, 7)
    node_bin = shutil.which("node")
    if node_bin is None:
        return [Row.not_run(FIGURE, "node is not installed (Node.js >= 18: apt install nodejs npm)", GOAL)]
    if not (SDK_JS / "node_modules" / "zeromq").is_dir():
        return [Row.not_run(FIGURE, f"the JS client's packages are missing: run `npm ci` in {SDK_JS}", GOAL)]
    py50: list[float] = []
    py99: list[float] = []
    js50: list[float] = []
    js99: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-node-") as tmp:
        work = Path(tmp)
        graph = work / "probe.yaml"
        graph.write_text(PROBE_GRAPH)
        with Serve(["--graph", str(graph)], work, sink="null", name="rtt-node") as server:
            control = server.ep.local("control")
            node = subprocess.Popen([node_bin, str(SDK_JS / "bench" / "rtt.js"), control, "bright"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
            try:
                assert node.stdout is not None
                if node.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"the node round-trip process did not start (exit {node.poll()})")
                with Client(control, server.ep.local("events"), heartbeat=0, timeout=5.0,
                            name="bench-python") as client:
                    rng = np.random.default_rng(3)
                    _python_run(client, min(n, 500), rng)  # warm up both
                    _node_run(node, min(n, 500))
                    for _ in range(repeats):
                        p50, p99 = _python_run(client, n, rng)
                        py50.append(p50)
                        py99.append(p99)
                        j50, j99 = _node_run(node, n)
                        js50.append(j50)
                        js99.append(j99)
            finally:
                if node.stdin is not None:
                    node.stdin.close()
                try:
                    node.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    node.kill()
                    node.wait()
    j50m, j99m = statistics.median(js50), statistics.median(js99)
    p50m, p99m = statistics.median(py50), statistics.median(py99)
    ratio = j50m / p50m
    return [Row(f"{FIGURE} ({n} per run)", f"median {j50m:.0f} µs, p99 {j99m:.0f} µs",
                f"Python SDK Client.set_many: median {p50m:.0f} µs, p99 {p99m:.0f} µs",
                f"{ratio:.2f}× (p99 {j99m / p99m:.2f}×)", GOAL, ratio <= 1.5, repeats,
                "Node vs Python SDK round trips: the same runtime answers both clients, runs alternating; the value "
                "is the median of the runs' medians (and of their p99s).")]


if __name__ == "__main__":
    from bench.table import markdown

    print(markdown(rows(quick=True)))
