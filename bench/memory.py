"""Memory of the runtime process: RSS of ``cadenza serve`` with each backend, next to a bare Python process.

:func:`serve_rss` starts ``cadenza serve`` with the given arguments (the null
sink: memory does not depend on the device), waits for its ready line, lets
it play while a client sends parameter changes, then reads its resident set
(VmRSS) and peak (VmHWM) from /proc. The baseline is a bare Python process
that imported NumPy and pyzmq, measured the same way. Other backends' modules
(:mod:`bench.magenta`) call :func:`serve_rss` with their own arguments.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import zmq

from bench.proc import Serve, peak_rss_mb, rss_mb
from bench.table import Row
from cadenza.proto import cadenza_v1_pb2 as pb
from tests.server_harness import ACTION_GAME, child_env, set_parameters

BARE = "import sys, numpy, zmq; print('ready', flush=True); sys.stdin.read()"
BARE_NUMBA = "import sys, numpy, zmq, numba; print('ready', flush=True); sys.stdin.read()"
MODES = ("explore", "tension", "combat")


def action_game(client: Any, k: int) -> None:
    """What a game does to the action-game graph, called 100 times a second: danger moves every call, the mode
    (the graph's state) changes every second, the victory stinger fires every 4 s."""
    client.ok(set_parameters({"danger": (k % 100) / 99}))
    if k % 100 == 50:
        client.ok(set_parameters({"mode": MODES[(k // 100) % len(MODES)]}))
    if k % 400 == 399:
        client.ok(pb.Trigger(name="boss_defeated"))


def serve_rss(args: list[str], play_s: float, runs: int, *, ready_timeout: float = 90.0,
              exercise: Callable[[Any, int], None] | None = None) -> tuple[float, float]:
    """(median RSS, median peak RSS) in MiB of ``cadenza serve <args> --sink null`` after ``play_s`` seconds of
    playing, over ``runs`` processes. ``exercise(control, k)`` (a :class:`server_harness.Control` and a counter)
    is called 100 times a second meanwhile, to drive the graph as a game would."""
    rss, peak = [], []
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
            for i in range(runs):
                server = Serve(args, Path(tmp), sink="null", name=f"rss-{i}")
                server.start(timeout=ready_timeout)
                try:
                    client = server.control(ctx)
                    end = time.monotonic() + play_s
                    k = 0
                    while time.monotonic() < end:
                        if exercise is not None:
                            exercise(client, k)
                        k += 1
                        time.sleep(0.01)
                    rss.append(rss_mb(server.pid))
                    peak.append(peak_rss_mb(server.pid))
                    client.close()
                finally:
                    server.kill()
    finally:
        ctx.destroy(linger=0)
    return statistics.median(rss), statistics.median(peak)


def bare_rss(runs: int, code: str = BARE) -> float:
    """Median RSS in MiB of a bare Python process that imported NumPy and pyzmq (``code``)."""
    out = []
    for _ in range(runs):
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, env=child_env())
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        out.append(rss_mb(proc.pid))
        proc.kill()
        proc.wait()
    return statistics.median(out)


def rows(quick: bool) -> list[Row]:
    runs = 1 if quick else 3
    play_s = 6.0 if quick else 20.0
    bare = bare_rss(3)
    bare_numba = bare_rss(3, BARE_NUMBA)
    rss, peak = serve_rss(["--graph", str(ACTION_GAME)], play_s, runs, exercise=action_game)
    return [Row(f"memory (RSS) of `cadenza serve`, synth backend (action-game graph, {play_s:g} s of states, "
                "stingers, parameter changes; null sink)",
                f"{rss:.0f} MB (peak {peak:.0f} MB)",
                f"bare python + numpy + pyzmq {bare:.0f} MB; + `import numba` {bare_numba:.0f} MB",
                f"{rss / bare:.1f}×", "", None, runs,
                "RSS = VmRSS (peak: VmHWM) from /proc after the runtime played while a client drove it as a game "
                "would (danger 100 times a second, a state change every second, the victory stinger every 4 s). "
                "numba's import and the compiled kernels it loads from its on-disk cache are most of it. With a "
                "JACK sink the RSS also counts the JACK server's shared-memory segment mapped into the process "
                "(shared with jackd, about 100 MB with the dummy server; bench/soak.md lists the largest parts).")]
