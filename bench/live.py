"""Live-runtime benchmarks against a real ``cadenza serve`` process: ``python bench/live.py [--quick]``.

Prints a Markdown table and writes it to ``bench/live.md``. Every figure is a
median over repeats, next to a baseline measured in the same run where one
makes sense. Three figures:

(a) **Control latency** — what a listener hears: from the moment a client's
    ``SetParameters`` reply arrives to the first output sample that carries
    the change. A probe graph maps a parameter straight to ``brightness``
    (filter cut-offs; no smoothing), over a dark drone; each measured change
    flips it 0 → 1 with ``bypass``. The change is found in the audio PUB
    chunks (the fraction of energy above 3 kHz jumps by orders of magnitude in
    the first bright chunk). What was playing when the reply arrived is the
    generation frontier the reply reports minus the audio queued ahead of
    playback (the lookahead ``GetStatus`` reports), so::

        latency = (stream_time of the first changed chunk - (Ok.stream_time - lookahead)) / 48 kHz

    With the JACK sink the JACK server's own playback latency (``jack_lsp -l``
    on ``system:playback_1``; two periods of the dummy driver) comes on top and
    is shown apart. A wall-clock figure is given too: from sending the request
    to receiving the first changed chunk on the audio PUB.
(b) **Round trip** of ``SetParameters`` on loopback against a bare pyzmq
    DEALER → ROUTER echo process, measured in the same run (one request in
    flight at a time).
(c) **Parameter updates per second** sustained, pipelined (500 requests in
    flight on one DEALER): one value per request, and 32 values per request.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import zmq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from cadenza.proto import cadenza_v1_pb2 as pb  # noqa: E402
from cadenza.proto import wire  # noqa: E402
from server_harness import ServeProcess, child_env, free_ports, set_parameters  # noqa: E402

SR = 48_000
PROBE_GRAPH = """\
cadenza_graph: 1
name: latency-probe
control_rate: 100
parameters:
  bright: {type: continuous, min: 0, max: 1, default: 0}
prompts:
  drone: "ambient drone pads"
mix:
  - prompt: drone
    weight: 1
controls:
  brightness: {param: bright}
"""
BATCH = 32
BATCH_GRAPH = "cadenza_graph: 1\nname: batch\nparameters:\n" + "".join(
    f"  p{i}: {{type: continuous, min: 0, max: 1, default: 0}}\n" for i in range(BATCH)
) + 'prompts:\n  bed: "ambient drone pads"\nmix:\n  - prompt: bed\n    weight: 1\n'
ECHO = textwrap.dedent("""
    import sys, zmq
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.bind(sys.argv[1])
    print("ready", flush=True)
    while True:
        sock.send_multipart(sock.recv_multipart())
""")
DARK, BRIGHT = 1e-3, 5e-3  # fraction of chunk energy above 3 kHz: brightness 0 stays under, 1 jumps over
WINDOW = 500


def hf_fraction(pcm: np.ndarray) -> float:
    x = pcm.mean(axis=1) * np.hanning(pcm.shape[0])
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(pcm.shape[0], 1.0 / SR)
    return float(spec[freqs > 3000.0].sum() / (spec.sum() + 1e-30))


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ----------------------------------------------------------------------------- JACK


def _jack_running() -> bool:
    lsp = shutil.which("jack_lsp")
    if lsp is None:
        return False
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    return subprocess.run([lsp], env=env, capture_output=True, timeout=10).returncode == 0


@contextmanager
def jack_server() -> Iterator[bool]:
    """A JACK server for the JACK rows: the running one, or a dummy one started here (None: no JACK)."""
    if _jack_running():
        yield True
        return
    jackd = shutil.which("jackd")
    if jackd is None:
        yield False
        return
    env = dict(os.environ, JACK_NO_START_SERVER="1", JACK_NO_AUDIO_RESERVATION="1")
    proc = subprocess.Popen([jackd, "--no-realtime", "-d", "dummy", "-r", str(SR), "-p", "960"], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not _jack_running():
            if proc.poll() is not None or time.monotonic() > deadline:
                yield False
                return
            time.sleep(0.1)
        yield True
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def jack_playback_latency_ms() -> float | None:
    try:
        out = subprocess.run(["jack_lsp", "-l", "system:playback_1"], capture_output=True, text=True, timeout=10,
                             env=dict(os.environ, JACK_NO_START_SERVER="1")).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if "playback latency" in line:
            frames = int(line.split("[")[1].split()[0])
            return 1000.0 * frames / SR
    return None


# ----------------------------------------------------------------------------- (a) control latency


def control_latency(workdir: Path, ctx: zmq.Context[Any], sink: str, changes: int) -> dict[str, Any]:
    graph = workdir / "probe.yaml"
    graph.write_text(PROBE_GRAPH)
    with ServeProcess(["--graph", str(graph)], workdir, sink=sink, name=f"latency-{sink}") as server:
        client = server.control(ctx)
        audio = server.audio(ctx)
        lookahead_ms = client.status().lookahead_ms
        time.sleep(1.0)  # past the start-up
        stream_ms: list[float] = []
        wall_ms: list[float] = []
        misses = 0
        for _ in range(changes):
            client.ok(set_parameters({"bright": 0.0}, bypass=True))
            time.sleep(0.35)  # the reverb's bright tail dies away
            last = None
            while (chunk := audio.recv_audio(0)) is not None:  # the queue up to now: the last chunk before
                last = chunk
            t_send = time.monotonic()
            ok = client.ok(set_parameters({"bright": 1.0}, bypass=True))
            lookahead = client.status().lookahead_ms / 1000.0 * SR
            playing = ok.stream_time - lookahead
            found = None
            previous = last  # the chunk before the first bright one must be dark, or the detection is ambiguous
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                chunk = audio.recv_audio(0.5)
                if chunk is None:
                    continue
                if previous is not None and chunk.stream_time != previous.stream_time + previous.pcm.shape[0]:
                    break  # a chunk was lost: cannot tell where the change began
                if hf_fraction(chunk.pcm) > BRIGHT:
                    if previous is not None and hf_fraction(previous.pcm) < DARK:
                        found = chunk
                    break
                previous = chunk
            if found is None:
                misses += 1
                continue
            wall_ms.append(1000.0 * (time.monotonic() - t_send))
            stream_ms.append(1000.0 * (found.stream_time - playing) / SR)
        client.close()
        audio.close()
    return {"stream": stream_ms, "wall": wall_ms, "misses": misses, "lookahead_ms": lookahead_ms}


# ----------------------------------------------------------------------------- (b) round trip


def _rtts(sock: zmq.Socket[Any], make: Any, n: int) -> list[float]:
    out = []
    for i in range(n):
        data = make(i + 1)
        t = time.perf_counter()
        sock.send(data)
        sock.recv()
        out.append(time.perf_counter() - t)
    return out


def round_trip(workdir: Path, ctx: zmq.Context[Any], n: int, repeats: int) -> dict[str, list[float]]:
    graph = workdir / "probe.yaml"
    graph.write_text(PROBE_GRAPH)
    port = free_ports(1)[0]
    echo = subprocess.Popen([sys.executable, "-c", ECHO, f"tcp://127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            text=True, env=child_env())
    assert echo.stdout is not None and echo.stdout.readline().strip() == "ready"
    results: dict[str, list[float]] = {"serve_p50": [], "serve_p99": [], "echo_p50": [], "echo_p99": []}
    try:
        with ServeProcess(["--graph", str(graph)], workdir, sink="null", name="rtt") as server:
            serve_sock = ctx.socket(zmq.DEALER)
            serve_sock.connect(server.ep.local("control"))
            echo_sock = ctx.socket(zmq.DEALER)
            echo_sock.connect(f"tcp://127.0.0.1:{port}")
            rng = np.random.default_rng(3)
            values = rng.random(n)
            frames = [wire.encode_request(set_parameters({"bright": float(v)}), i + 1) for i, v in enumerate(values)]
            _rtts(serve_sock, lambda i: frames[i - 1], min(n, 500))  # warm up both
            _rtts(echo_sock, lambda i: frames[i - 1], min(n, 500))
            for _ in range(repeats):  # interleaved, so a noisy moment hits both
                s = _rtts(serve_sock, lambda i: frames[i - 1], n)
                e = _rtts(echo_sock, lambda i: frames[i - 1], n)
                results["serve_p50"].append(1e6 * statistics.median(s))
                results["serve_p99"].append(1e6 * pct(s, 99))
                results["echo_p50"].append(1e6 * statistics.median(e))
                results["echo_p99"].append(1e6 * pct(e, 99))
            serve_sock.close(0)
            echo_sock.close(0)
    finally:
        echo.kill()
        echo.wait()
    return results


# ----------------------------------------------------------------------------- (c) updates per second


def updates_per_second(workdir: Path, ctx: zmq.Context[Any], seconds: float, repeats: int) -> dict[str, list[float]]:
    graph = workdir / "batch.yaml"
    graph.write_text(BATCH_GRAPH)
    out: dict[str, list[float]] = {"single": [], "batched": []}
    with ServeProcess(["--graph", str(graph)], workdir, sink="null", name="rate") as server:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(server.ep.local("control"))
        rng = np.random.default_rng(5)
        pool_single = [wire.encode_request(set_parameters({f"p{i % BATCH}": float(v)}), i + 1)
                       for i, v in enumerate(rng.random(4096))]
        pool_batch = [wire.encode_request(set_parameters({f"p{j}": float(v) for j, v in enumerate(rng.random(BATCH))}),
                                          i + 1) for i in range(512)]
        for _ in range(repeats):
            for kind, pool, per in (("single", pool_single, 1), ("batched", pool_batch, BATCH)):
                sent = ok = 0
                t0 = time.perf_counter()
                end = t0 + seconds
                while True:
                    now = time.perf_counter()
                    while sent - ok < WINDOW and now < end:
                        sock.send(pool[sent % len(pool)])
                        sent += 1
                    if sock.poll(1000):
                        while sock.poll(0):
                            reply = wire.decode_reply(sock.recv())
                            assert reply.kind == wire.ReplyKind.OK, reply
                            ok += 1
                    if now >= end and ok == sent:
                        break
                elapsed = time.perf_counter() - t0
                out[kind].append(ok * per / elapsed)
        sock.close(0)
    return out


# ----------------------------------------------------------------------------- main


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.machine()}, {os.cpu_count()} cores{f' ({model})' if model else ''}, "
            f"Python {platform.python_version()}, pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}, "
            f"{platform.system()}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    ap.add_argument("--out", default=str(HERE / "live.md"))
    args = ap.parse_args()
    changes = 50 if args.quick else 120
    rtt_n, rtt_repeats = (2000, 3) if args.quick else (5000, 7)
    rate_s, rate_repeats = (2.0, 3) if args.quick else (5.0, 5)

    rows: list[str] = []
    notes: list[str] = []
    ctx: zmq.Context[Any] = zmq.Context()
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
        work = Path(tmp)
        lat = {"null": control_latency(work, ctx, "null", changes)}
        with jack_server() as have_jack:
            if have_jack:
                lat["jack"] = control_latency(work, ctx, "jack", changes)
                jack_ms = jack_playback_latency_ms()
            else:
                notes.append("No JACK server (and no jackd to start one): no JACK row.")
        for sink, r in lat.items():
            s = r["stream"]
            if len(s) < 10:
                rows.append(f"| control latency, {sink} sink | too few detections ({len(s)}) | | | | ≤ 50 ms | no |")
                continue
            med, p99 = statistics.median(s), pct(s, 99)
            extra = ""
            if sink == "jack" and jack_ms is not None:
                extra = f"; + JACK playback latency {jack_ms:.0f} ms → {med + jack_ms:.0f} ms at the DAC"
            rows.append(
                f"| control latency, {sink} sink (reply → first changed sample heard; n={len(s)}, "
                f"missed {r['misses']}) | median {med:.1f} ms, p99 {p99:.1f} ms{extra} | lookahead "
                f"{r['lookahead_ms']:.0f} ms | {med / r['lookahead_ms']:.2f}× | ≤ 50 ms median | "
                f"{'yes' if med <= 50 else 'no'} |")
            w = r["wall"]
            rows.append(f"| send → first changed chunk on the audio PUB, {sink} sink | median "
                        f"{statistics.median(w):.1f} ms, p99 {pct(w, 99):.1f} ms | | | | |")

        rt = round_trip(work, ctx, rtt_n, rtt_repeats)
        s50, s99 = statistics.median(rt["serve_p50"]), statistics.median(rt["serve_p99"])
        e50, e99 = statistics.median(rt["echo_p50"]), statistics.median(rt["echo_p99"])
        rows.append(f"| SetParameters round trip, loopback ({rtt_repeats}×{rtt_n}) | median {s50:.0f} µs, "
                    f"p99 {s99:.0f} µs | bare pyzmq DEALER/ROUTER echo: median {e50:.0f} µs, p99 {e99:.0f} µs | "
                    f"{s50 / e50:.2f}× (p99 {s99 / e99:.2f}×) | ≤ 2× | {'yes' if s50 / e50 <= 2 else 'no'} |")

        ups = updates_per_second(work, ctx, rate_s, rate_repeats)
        single, batched = statistics.median(ups["single"]), statistics.median(ups["batched"])
        rows.append(f"| parameter updates/s, 1 value per request (pipelined, {WINDOW} in flight) | "
                    f"{single:,.0f}/s | | | ≥ 20,000/s | {'yes' if single >= 20_000 else 'no'} |")
        rows.append(f"| parameter updates/s, {BATCH} values per request | {batched:,.0f}/s "
                    f"({batched / BATCH:,.0f} requests/s) | 1 per request: {single:,.0f}/s | "
                    f"{batched / single:.1f}× | ≥ 20,000/s | {'yes' if batched >= 20_000 else 'no'} |")
    ctx.destroy(linger=0)

    doc = [
        "# Cadenza live runtime benchmarks",
        "",
        f"`python bench/live.py{' --quick' if args.quick else ''}` — machine: {machine()}.",
        f"Medians over repeats ({changes} brightness changes per sink; round trips {rtt_repeats}×{rtt_n}, "
        f"interleaved with the echo baseline; throughput {rate_repeats}×{rate_s:g} s). "
        "The server is a real `cadenza serve` process; the client is this process.",
        "",
        "| figure | value | baseline (same run) | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Control latency = stream time of the first audio chunk that carries the change minus the stream time "
        "playing when the reply arrived (the reply's generation frontier minus the reported lookahead). The "
        "change lands in the block generated right after the request (Ok.stream_time), so the figure is the "
        "lookahead plus at most one control period.",
        *notes,
    ]
    text = "\n".join(doc) + "\n"
    print(text)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
