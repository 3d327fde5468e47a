"""Cadenza benchmarks: one command, one table (``make bench`` → bench/results.md).

Runs every registered benchmark module in one run and writes one Markdown
table with the machine it ran on. A module is one entry in :data:`MODULES`:
it exposes ``rows(quick: bool) -> list[bench.table.Row]`` and measures its
figures as medians over repeated runs, each next to a baseline measured in
the same run. When a module (or an optional extra it needs) cannot be
imported, its rows say ``not run: <reason>``; when it fails, ``failed: …``
— never a made-up number. ``--quick`` (about 2 minutes) runs fewer repeats;
``--only NAME`` runs some modules (``core``, ``live``, ``node_client``, ``ws_gateway``, ``audio_wire``, ``memory``,
``magenta``, ``magenta_control``, ``osc_out``).

Exit status: 0 when every row with a goal met it, 1 otherwise (the table is
written either way).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.table import Row, machine, markdown, utc_now

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Module:
    """A benchmark module: ``bench.<name>`` with ``rows(quick)``; ``title`` names its rows when it cannot run."""

    name: str
    title: str
    goal: str = ""


MODULES: tuple[Module, ...] = (
    Module("core", "synth backend, mixer, graph engine, start-up"),
    Module("graphload", "style-graph load time vs the hand-written loader it replaced", "≤ 1.0× the old loader"),
    Module("live", "live runtime: control latency, SetParameters round trip, updates/s", "≤ 50 ms median"),
    Module("node_client", "Node client (sdk/js): SetParameters round trip vs the Python SDK", "≤ 1.5× the Python SDK"),
    Module("ws_gateway", "WebSocket gateway: SetParameters round trip vs ZeroMQ; 1,000 slider moves/s vs the lookahead",
           "≤ 2× the ZeroMQ round trip"),
    Module("audio_wire", "audio PUB bytes/s: int16 vs float32 chunks", "≤ 0.51× float32"),
    Module("memory", "memory (RSS) of `cadenza serve`, synth backend"),
    Module("magenta", "Magenta backend: 1/2/3 live streams batched vs sequential vs the library's own loop, "
                      "p50/p99 ms per frame, fp32/bf16, RSS", "live ≤ library on a GPU"),
    Module("magenta_control", "SetParameters round trip while the tiny Magenta model generates vs a bare pyzmq echo",
           "≤ 2× the bare echo"),
    Module("midi", "MIDI in: CC sent over JACK MIDI → heard (state event heard_at) vs the lookahead",
           "median and p99 ≤ lookahead + 10 ms"),
    Module("osc_out", "OSC out sender: arrival vs due time, SCHED_FIFO vs normal priority", "p99 ≤ 5 ms"),
)


def run_module(module: Module, quick: bool) -> tuple[list[Row], float]:
    """The module's rows (or one row saying why there are none) and the seconds it took."""
    t0 = time.monotonic()
    try:
        rows = importlib.import_module(f"bench.{module.name}").rows(quick)
    except ImportError as exc:  # a missing optional extra (or a module not written yet)
        rows = [Row.not_run(module.title, _import_reason(exc), module.goal)]
    except Exception as exc:  # noqa: BLE001 — one module's failure must not hide the others' figures
        rows = [Row.failed(module.title, exc, module.goal)]
    return rows, time.monotonic() - t0


def _import_reason(exc: ImportError) -> str:
    if exc.name == "magenta_rt" or (exc.name or "").startswith(("magenta_rt.", "jax")):
        return f"{exc} (pip install -e '.[magenta]')"
    return str(exc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (about 2 minutes in all)")
    ap.add_argument("--only", action="append", choices=[m.name for m in MODULES], help="run only this module")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    args = ap.parse_args(argv)
    started = utc_now()
    t0 = time.monotonic()
    rows: list[Row] = []
    timings: list[str] = []
    for module in MODULES:
        if args.only and module.name not in args.only:
            continue
        print(f"bench: {module.name} …", file=sys.stderr, flush=True)
        got, seconds = run_module(module, args.quick)
        rows += got
        timings.append(f"{module.name} {seconds:.0f} s")
    total = time.monotonic() - t0
    notes = list(dict.fromkeys(r.note for r in rows if r.note))  # each once, in order
    command = "make bench" + (" BENCH_ARGS=--quick" if args.quick else "")
    lines = [
        "# Cadenza benchmark results",
        "",
        f"`{command}` ({'quick: fewer repeats' if args.quick else 'full'}), {started}, "
        f"{total:.0f} s ({', '.join(timings)}).",
        f"Machine: {machine()}.",
        "Every value is a median over the number of runs in the last column; every baseline was measured in "
        "the same run. The runtime is a real `cadenza serve` process on loopback sockets; the JACK rows use a "
        "private `jackd --no-realtime -d dummy -r 48000 -p 960` started by the bench.",
        "",
        markdown(rows),
        "",
        *[f"- {n}" for n in notes],
        "",
    ]
    text = "\n".join(lines)
    Path(args.out).write_text(text)
    print(text)
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
