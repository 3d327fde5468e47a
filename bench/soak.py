"""The soak: ``cadenza serve`` under a game's load into a JACK dummy server for N minutes → bench/soak.md + soak.png.

``python -m bench.soak --minutes 30`` (``make soak SOAK_MINUTES=30``). Real parts
only: a private JACK dummy server (:mod:`bench.jack`, clocked like a sound
card), the runtime as a process (``cadenza serve --sink jack`` with the synth
backend, PortAudio into JACK, the action-game graph with states and a stinger),
and SDK clients over real loopback sockets in this process:

- **game** (:class:`cadenza.sdk.Client`): 1,000 ``SetParameters`` per second,
  one value each, ``danger`` and ``health`` on random walks; the ``mode``
  (explore / tension / combat, which drives the graph's states) changes every
  few seconds; ``enemy_down`` and ``boss_defeated`` (the victory stinger) are
  triggered every few seconds. Every round trip is timed.
- **probe**: every few seconds pauses the music (``Transport PAUSE``; the
  runtime stops publishing audio and plays silence), waits until no chunk has
  come for 100 ms, then sends ``PLAY`` and waits for the first chunk of the
  resumed music on the audio PUB (unambiguous: the first chunk after the
  gap). Two figures per probe: *heard latency* = that chunk's stream time
  minus the stream time playing when the PLAY reply arrived (the reply's
  generation frontier minus the lookahead the runtime reports), the same
  definition as the bench's brightness probe; and *wall latency* = from
  sending PLAY to receiving that chunk. The JACK server's own two-period
  playback latency (40 ms) comes on top of both and does not drift.
- **churn**: a second client connects, says Hello, waits for a beat event,
  asks for the status and disconnects, over and over.
- **monitor**: once a second the runtime's RSS (VmRSS), CPU time, xrun count
  and lookahead, the machine's load average; every event topic's sequence
  numbers (a gap is a lost event) and the audio chunks' sequence numbers.

Pass: no xruns (the runtime's, and none reported by jackd), no latency drift
(last-quarter median within 5 ms of the first quarter's, for both probe
latencies and the game's round trip), RSS growth ≤ 5 MB after warm-up, no
sequence gap on any event topic or in the audio, every request answered
without an error, the game's rate ≥ 90 % of 1,000/s.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.jack import JackServer, install_hint, missing_packages
from bench.proc import Serve, cpu_seconds, load_average, machine_busy_seconds, peak_rss_mb, rss_by_mapping, rss_mb
from cadenza.sdk import AudioStream, Client

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GRAPH = REPO / "examples" / "action_game" / "graph.yaml"
SR = 48_000
UPDATES_PER_S = 1000
MODES = ("explore", "tension", "combat")
RSS_LIMIT_MB = 5.0
DRIFT_LIMIT_MS = 5.0
MIN_RATE_FRACTION = 0.9
#: The lookahead an unattended installation runs with: 100 ms of audio queued ahead of the device. Control
#: latency does not matter there, dropouts do; a non-realtime JACK server on a shared machine can be late by
#: more than the 30 ms default leaves (see bench/results.md for the control latency at 30 ms).
DEFAULT_LOOKAHEAD_MS = 100.0


@dataclass
class Probe:
    t: float  # seconds since the soak started
    heard_ms: float | None  # None: no unambiguous silent chunk found
    wall_ms: float | None
    lookahead_ms: float
    on_time: bool  # the first silent chunk starts exactly at the reply's stream time


@dataclass
class Sample:
    t: float
    rss_mb: float
    peak_rss_mb: float
    cpu_s: float  # the runtime's CPU time so far
    load: float
    others_cpu_s: float  # CPU time so far of every process on the machine but the runtime and this soak
    xruns: int
    lookahead_ms: float
    events_lost: int


@dataclass
class Window:
    """The game client's round trips over one window of the soak."""

    t: float  # the window's end
    seconds: float  # its length
    sent: int
    rtt_p50_us: float
    rtt_p99_us: float


@dataclass
class SoakResult:
    minutes: float
    lookahead_ms: float
    started: str
    machine: str
    warmup_s: float
    window_s: float
    probes: list[Probe] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    updates: int = 0
    states_set: int = 0
    triggers: int = 0
    errors: list[str] = field(default_factory=list)
    churn_cycles: int = 0
    churn_failures: int = 0
    churn_events_lost: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)
    stingers_heard: int = 0
    state_changes_heard: int = 0
    xrun_events: int = 0
    jack_xruns: int = 0
    runtime_xruns: int = 0
    events_lost: int = 0
    audio_lost: int = 0
    audio_chunks: int = 0
    elapsed_s: float = 0.0
    xrun_log: list[str] = field(default_factory=list)  # when each xrun event came, and what it said
    warnings: dict[str, int] = field(default_factory=dict)  # warning events by message
    jack_latency_ms: float | None = None  # the JACK server's playback latency (jack_lsp -l)
    code: str = ""  # the commit the runtime ran from, and files changed since
    nice: int = 0  # the niceness the runtime and the JACK server ran at (this soak's clients: 0)
    realtime: bool = False  # jackd ran its audio thread real-time (SCHED_FIFO), as an installation's would
    rss_mappings: list[tuple[str, float]] = field(default_factory=list)  # the largest parts of the RSS at the end

    # ------------------------------------------------------------------ figures
    @property
    def rate(self) -> float:
        return self.updates / self.elapsed_s if self.elapsed_s else 0.0

    def quarter_medians(self, values: list[tuple[float, float]]) -> tuple[float, float]:
        """Median of (t, value) pairs in the first and in the last quarter of the run (after warm-up)."""
        span = self.elapsed_s - self.warmup_s
        first = [v for t, v in values if self.warmup_s <= t < self.warmup_s + span / 4]
        last = [v for t, v in values if t >= self.elapsed_s - span / 4]
        nan = float("nan")
        return (statistics.median(first) if first else nan, statistics.median(last) if last else nan)

    def series(self, name: str) -> list[tuple[float, float]]:
        if name in ("heard_ms", "wall_ms"):
            return [(p.t, getattr(p, name)) for p in self.probes if getattr(p, name) is not None]
        return [(w.t, w.rtt_p50_us / 1000.0) for w in self.windows if w.sent]

    def rss_growth_mb(self) -> tuple[float, float, float]:
        """(RSS at the end of warm-up, RSS at the end, growth), each a median over 10 % of the run's samples."""
        after = [s for s in self.samples if s.t >= self.warmup_s]
        if len(after) < 2:
            return float("nan"), float("nan"), float("nan")
        k = max(1, len(after) // 10)
        start = statistics.median(s.rss_mb for s in after[:k])
        end = statistics.median(s.rss_mb for s in after[-k:])
        return start, end, end - start

    def checks(self) -> list[tuple[str, str, str, bool]]:
        """(figure, value, criterion, met) for each pass criterion."""
        out: list[tuple[str, str, str, bool]] = []
        jack = f"; jackd reported {self.jack_xruns}"
        sources = collections.Counter(m.group(1) for x in self.xrun_log if (m := re.search(r"\(source (\w+)\)", x)))
        by = f": {', '.join(f'{k} {v}' for k, v in sorted(sources.items()))}" if sources else ""
        out.append(("xruns", f"runtime {self.runtime_xruns} (xrun events {self.xrun_events}{by}){jack}", "0",
                    self.runtime_xruns == 0 and self.xrun_events == 0 and self.jack_xruns == 0))
        for name, label in (("heard_ms", "control latency heard (PLAY reply → first resumed sample)"),
                            ("wall_ms", "control latency wall (PLAY sent → first resumed chunk received)"),
                            ("rtt_ms", "SetParameters round trip, game client (median per window)")):
            a, b = self.quarter_medians(self.series(name))
            ok = not (math.isnan(a) or math.isnan(b)) and abs(b - a) <= DRIFT_LIMIT_MS
            out.append((f"drift: {label}", f"first quarter {a:.2f} ms → last quarter {b:.2f} ms ({b - a:+.2f} ms)",
                        f"|Δ| ≤ {DRIFT_LIMIT_MS:g} ms", ok))
        s, e, g = self.rss_growth_mb()
        out.append(("RSS growth after warm-up", f"{s:.1f} MB → {e:.1f} MB ({g:+.2f} MB)", f"≤ {RSS_LIMIT_MB:g} MB",
                    not math.isnan(g) and g <= RSS_LIMIT_MB))
        out.append(("sequence gaps", f"events {self.events_lost} (churn clients {self.churn_events_lost}), "
                    f"audio chunks {self.audio_lost} of {self.audio_chunks:,}", "0",
                    self.events_lost == 0 and self.audio_lost == 0 and self.churn_events_lost == 0))
        out.append(("requests failed", f"{len(self.errors)} errors, {self.churn_failures} churn failures", "0",
                    not self.errors and self.churn_failures == 0))
        out.append(("game client's update rate", f"{self.rate:,.0f}/s ({self.updates:,} updates)",
                    f"≥ {MIN_RATE_FRACTION * UPDATES_PER_S:,.0f}/s", self.rate >= MIN_RATE_FRACTION * UPDATES_PER_S))
        return out

    @property
    def passed(self) -> bool:
        return all(c[3] for c in self.checks())


# ----------------------------------------------------------------------------- the clients


class Soak:
    """One soak run: start everything, run the clients for ``minutes``, stop everything, return a SoakResult."""

    def __init__(self, minutes: float, workdir: Path, *, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS, seed: int = 1,
                 nice: int = 0, realtime: bool = False, log: Callable[[str], None] = print) -> None:
        self.duration = minutes * 60.0
        self.realtime = realtime
        self.workdir = workdir
        self.lookahead_ms = lookahead_ms
        self.nice = nice
        self.rng = random.Random(seed)
        self.log = log
        self.window_s = 10.0 if self.duration >= 600 else 5.0
        self.probe_every = 5.0 if self.duration >= 600 else 2.0
        self.stop = threading.Event()
        self.t0 = 0.0
        self.result = SoakResult(minutes=minutes, lookahead_ms=lookahead_ms,
                                 started=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                                 machine=machine(), warmup_s=min(120.0, self.duration / 4),
                                 window_s=self.window_s, code=code_version(), nice=nice, realtime=realtime)
        self.lock = threading.Lock()
        self.failures: list[BaseException] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    def error(self, what: str) -> None:
        with self.lock:
            self.result.errors.append(f"{self.now():.1f} s: {what}")

    def _thread(self, fn: Callable[[], None], name: str) -> threading.Thread:
        def guarded() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 — reported in the result, ends the soak
                self.failures.append(exc)
                self.error(f"{name} thread died: {exc!r}")
                self.stop.set()

        th = threading.Thread(target=guarded, name=f"soak-{name}", daemon=True)
        th.start()
        return th

    # -- game: 1,000 updates/s, states, triggers
    def game(self, server: Serve) -> None:
        r = self.result
        client = Client(server.ep.local("control"), server.ep.local("events"), name="soak-game", timeout=5.0)
        with client:
            client.load_graph(GRAPH)
            danger, health = 0.3, 100.0
            mode = "explore"
            next_state = 3.0
            next_enemy = 1.5
            next_boss = 6.0
            rtts: list[float] = []
            window_end = self.window_s
            k = 0
            start = time.monotonic()
            while not self.stop.is_set():
                due = start + k / UPDATES_PER_S
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -0.1:  # more than 100 updates behind: skip ahead rather than burst
                    k = int((time.monotonic() - start) * UPDATES_PER_S)
                k += 1
                t = self.now()
                try:
                    t_send = time.perf_counter()
                    if k % 10:
                        danger = min(1.0, max(0.0, danger + self.rng.gauss(0.0, 0.02)))
                        client.set(danger=danger)
                    else:
                        health = min(100.0, max(0.0, health + self.rng.choice((-3.0, -1.0, 1.0, 3.0))))
                        client.set(health=health)
                    rtts.append(time.perf_counter() - t_send)
                    r.updates += 1
                    if t >= next_state:
                        mode = self.rng.choice([m for m in MODES if m != mode])
                        client.set(mode=mode)
                        r.states_set += 1
                        next_state = t + self.rng.uniform(3.0, 6.0)
                    if t >= next_enemy:
                        client.trigger("enemy_down")
                        r.triggers += 1
                        next_enemy = t + self.rng.uniform(2.0, 4.0)
                    if t >= next_boss:  # the victory stinger (cooldown 8 s) and back to explore
                        client.trigger("boss_defeated")
                        r.triggers += 1
                        mode = "explore"
                        next_boss = t + self.rng.uniform(11.0, 14.0)
                except Exception as exc:  # noqa: BLE001 — counted, the load goes on
                    self.error(f"game: {type(exc).__name__}: {exc}")
                if t >= window_end:
                    r.windows.append(window_stats(window_end, self.window_s, rtts))
                    rtts = []
                    window_end += self.window_s
            if rtts:
                r.windows.append(window_stats(self.now(), self.now() - (window_end - self.window_s), rtts))

    # -- probe: PAUSE, the audio stops; PLAY → the first chunk of the resumed music on the audio PUB
    def probe(self, server: Serve) -> None:
        r = self.result
        client = Client(server.ep.local("control"), server.ep.local("events"), name="soak-probe", timeout=5.0)
        audio = AudioStream(server.ep.local("audio"), sample_rate=SR)
        with client, audio:
            next_probe = 1.0
            while not self.stop.is_set():
                if audio.read(0.2) is None or self.now() < next_probe:
                    continue
                next_probe = self.now() + self.probe_every
                try:
                    client.pause()
                    deadline = time.monotonic() + 2.0  # the pause takes effect: no chunk for 100 ms
                    while audio.read(0.1) is not None and time.monotonic() < deadline:
                        pass
                    lookahead_ms = client.status().lookahead_ms
                    t = self.now()
                    t_send = time.monotonic()
                    ack = client.play()
                except Exception as exc:  # noqa: BLE001
                    self.error(f"probe: {type(exc).__name__}: {exc}")
                    continue
                first = audio.read(2.0)
                t_found = time.monotonic()
                if first is None or ack.stream_time is None:
                    r.probes.append(Probe(t, None, None, lookahead_ms, False))
                    continue
                playing = ack.stream_time - lookahead_ms / 1000.0 * SR
                r.probes.append(Probe(t, 1000.0 * (first.stream_time - playing) / SR, 1000.0 * (t_found - t_send),
                                      lookahead_ms, first.stream_time == ack.stream_time))
            r.audio_lost = audio.lost
            r.audio_chunks = audio.chunks

    # -- churn: connect, hello, a beat, status, disconnect
    def churn(self, server: Serve) -> None:
        r = self.result
        n = 0
        while not self.stop.is_set():
            n += 1
            beat = threading.Event()
            client = Client(server.ep.local("control"), server.ep.local("events"), name=f"soak-churn-{n}",
                            timeout=5.0, heartbeat=0)
            try:
                client.hello()
                client.on_beat(lambda ev: beat.set())
                if not beat.wait(3.0):
                    raise TimeoutError("no beat event within 3 s")
                client.status()
                r.churn_events_lost += client.events_lost
                r.churn_cycles += 1
            except Exception as exc:  # noqa: BLE001
                r.churn_failures += 1
                self.error(f"churn client {n}: {type(exc).__name__}: {exc}")
            finally:
                client.close()
            self.stop.wait(0.3)

    # -- monitor: RSS, CPU, xruns, lookahead; every event's sequence number
    def monitor(self, server: Serve, jack: JackServer) -> None:
        r = self.result
        client = Client(server.ep.local("control"), server.ep.local("events"), name="soak-monitor", timeout=5.0)
        counts: dict[str, int] = {}

        def count(ev: Any) -> None:
            counts[ev.topic] = counts.get(ev.topic, 0) + 1
            if ev.topic == "xrun":
                recent = r.samples[-6:]
                others = ((recent[-1].others_cpu_s - recent[0].others_cpu_s) / (recent[-1].t - recent[0].t)
                          if len(recent) > 1 else float("nan"))
                r.xrun_log.append(f"{self.now():.1f} s: xrun #{ev.count}, {ev.frames_lost} frames lost "
                                  f"(source {ev.source}); other processes used {others:.2f} of "
                                  f"{os.cpu_count()} cores over the 5 s before; load average {load_average():.2f}")
            elif ev.topic == "warning":
                r.warnings[ev.message] = r.warnings.get(ev.message, 0) + 1

        with client:
            for topic in ("beat", "bar", "state", "mix", "stinger", "xrun", "warning", "status"):
                client.on(topic, count)
            next_sample = 0.0
            busy0 = machine_busy_seconds() - cpu_seconds(server.pid) - cpu_seconds(os.getpid())
            while not self.stop.wait(max(0.0, next_sample - self.now())):
                next_sample += 1.0
                try:
                    st = client.status()
                except Exception as exc:  # noqa: BLE001
                    self.error(f"monitor status: {type(exc).__name__}: {exc}")
                    continue
                runtime_cpu = cpu_seconds(server.pid)
                others = machine_busy_seconds() - runtime_cpu - cpu_seconds(os.getpid()) - busy0
                r.samples.append(Sample(self.now(), rss_mb(server.pid), peak_rss_mb(server.pid), runtime_cpu,
                                        load_average(), others, st.xruns, st.lookahead_ms, client.events_lost))
                r.runtime_xruns = st.xruns
            r.events_lost = client.events_lost
            r.event_counts = dict(sorted(counts.items()))
            r.stingers_heard = counts.get("stinger", 0)
            r.state_changes_heard = counts.get("state", 0)
            r.xrun_events = counts.get("xrun", 0)
            r.jack_xruns = jack.xruns()

    # -- the run
    def run(self) -> SoakResult:
        jack = JackServer(self.workdir, name=f"cadenza-bench-{os.getpid()}", nice=self.nice, realtime=self.realtime)
        with jack:
            args = ["--graph", str(GRAPH), "--lookahead", f"{self.lookahead_ms:g}"]
            server = Serve(args, self.workdir, sink="jack", env=jack.env, name="soak-serve", nice=self.nice)
            with server:
                self.t0 = time.monotonic()
                self.result.jack_latency_ms = jack.playback_latency_ms()
                self.log(f"soak: {self.duration / 60:g} min, runtime pid {server.pid}, JACK server {jack.name}")
                threads = [self._thread(lambda: self.game(server), "game"),
                           self._thread(lambda: self.probe(server), "probe"),
                           self._thread(lambda: self.churn(server), "churn"),
                           self._thread(lambda: self.monitor(server, jack), "monitor")]
                last_log = 0.0
                while not self.stop.wait(1.0):
                    t = self.now()
                    if t >= self.duration:
                        break
                    if not server.alive():
                        self.error(f"the runtime exited: {server.stderr_text[-2000:]}")
                        break
                    if t - last_log >= 60:
                        last_log = t
                        s = self.result.samples[-1] if self.result.samples else None
                        self.log(f"soak: {t / 60:.1f} min, {self.result.updates:,} updates, "
                                 f"RSS {s.rss_mb if s else float('nan'):.1f} MB, xruns "
                                 f"{s.xruns if s else '?'}, errors {len(self.result.errors)}")
                self.result.elapsed_s = self.now()
                if server.alive():
                    self.result.rss_mappings = rss_by_mapping(server.pid)
                self.stop.set()
                for th in threads:
                    th.join(15)
                rc, _ = server.stop()
                if rc != 0:
                    self.error(f"cadenza serve exited {rc} on SIGTERM: {server.stderr_text[-2000:]}")
        return self.result


def code_version() -> str:
    """``<commit>`` plus the runtime's files that differ from it (a shared working tree), for the report."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "runtime", "proto", "sdk", "cadenza"],
                               cwd=REPO, capture_output=True, text=True, timeout=10).stdout.split("\n")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    changed = sorted(line[3:] for line in dirty if line.strip())
    return head + (f" with uncommitted changes in {', '.join(changed)}" if changed else "")


def window_stats(t: float, seconds: float, rtts: list[float]) -> Window:
    if not rtts:
        return Window(t, seconds, 0, float("nan"), float("nan"))
    s = sorted(rtts)
    return Window(t, seconds, len(s), 1e6 * statistics.median(s), 1e6 * s[min(len(s) - 1, int(0.99 * len(s)))])


def machine() -> str:
    from bench.table import machine as describe

    return describe()


# ----------------------------------------------------------------------------- report


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))] if s else float("nan")


def report(r: SoakResult, png_name: str, command: str) -> str:
    heard = [p.heard_ms for p in r.probes if p.heard_ms is not None]
    wall = [p.wall_ms for p in r.probes if p.wall_ms is not None]
    on_time = sum(p.on_time for p in r.probes)
    offsets = collections.Counter(round(p.heard_ms - p.lookahead_ms) for p in r.probes if p.heard_ms is not None)
    missed = sum(p.heard_ms is None for p in r.probes)
    rtt50 = [w.rtt_p50_us for w in r.windows if w.sent]
    rtt99 = [w.rtt_p99_us for w in r.windows if w.sent]
    cpu = (r.samples[-1].cpu_s - r.samples[0].cpu_s) / max(1e-9, r.samples[-1].t - r.samples[0].t) if len(
        r.samples) > 1 else float("nan")
    loads = [s.load for s in r.samples]
    others = ((r.samples[-1].others_cpu_s - r.samples[0].others_cpu_s) / max(1e-9, r.samples[-1].t - r.samples[0].t)
              if len(r.samples) > 1 else float("nan"))
    lines = [
        "# Cadenza soak",
        "",
        f"`{command}` — started {r.started}, ran {r.elapsed_s / 60:.1f} min on {r.machine}.",
        f"Runtime: `cadenza serve --sink jack --lookahead {r.lookahead_ms:g}` (synth backend, "
        "examples/action_game/graph.yaml) into a private "
        f"`jackd {'--realtime' if r.realtime else '--no-realtime'} -d dummy -r 48000 -p 960`"
        + (f", both at nice {r.nice:+d} (this soak's clients at 0)" if r.nice else ", all at normal priority")
        + "; "
        f"warm-up (left out of the drift and RSS comparisons): the first {r.warmup_s:.0f} s. "
        f"Code: {r.code}.",
        "",
        f"**{'PASS' if r.passed else 'FAIL'}**",
        "",
        "| figure | value | pass criterion | met |",
        "|---|---|---|---|",
        *[f"| {f} | {v} | {c} | {'yes' if ok else 'NO'} |" for f, v, c, ok in r.checks()],
        "",
        "| load and measurements | value |",
        "|---|---|",
        f"| game client: SetParameters, one value each (danger, health random walks) | {r.updates:,} "
        f"({r.rate:,.0f}/s) |",
        f"| game client: mode (state) changes / triggers sent | {r.states_set} / {r.triggers} |",
        f"| state events / stinger events published and received | {r.state_changes_heard} / {r.stingers_heard} |",
        f"| events received by the monitor, by topic | "
        f"{', '.join(f'{k} {v:,}' for k, v in r.event_counts.items())} |",
        f"| churn client: connect → Hello → a beat event → GetStatus → close, cycles | {r.churn_cycles:,} |",
        f"| SetParameters round trip, game client (median of per-window medians; of p99s) | "
        f"{statistics.median(rtt50) if rtt50 else float('nan'):.0f} µs; p99 "
        f"{statistics.median(rtt99) if rtt99 else float('nan'):.0f} µs |",
        f"| control latency heard, PLAY reply → first resumed sample (n={len(heard)}, missed {missed}) | "
        f"median {statistics.median(heard) if heard else float('nan'):.1f} ms, p99 {percentile(heard, 99):.1f} ms "
        f"(+ JACK playback latency {r.jack_latency_ms if r.jack_latency_ms is not None else float('nan'):.0f} ms) |",
        f"| control latency wall, PLAY sent → first resumed chunk received on the audio PUB | "
        f"median {statistics.median(wall) if wall else float('nan'):.1f} ms, p99 {percentile(wall, 99):.1f} ms |",
        f"| probes whose change began exactly at the reply's stream time (`Ok.stream_time`) | {on_time} of "
        f"{len(heard)}; first resumed sample − reply's stream time: "
        f"{', '.join(f'{k:+.0f} ms × {v}' for k, v in sorted(offsets.items()))} |",
        f"| runtime CPU (all threads), mean | {100 * cpu:.0f} % of one core |",
        f"| lookahead: at the start, largest, at the end | {r.samples[0].lookahead_ms if r.samples else 0:.0f} ms, "
        f"{max((x.lookahead_ms for x in r.samples), default=0):.0f} ms, "
        f"{r.samples[-1].lookahead_ms if r.samples else 0:.0f} ms |",
        f"| other processes on the machine (not the runtime, not this soak's clients), mean CPU | "
        f"{others:.2f} of {os.cpu_count()} cores |",
        f"| machine load average (1 min): median, max | {statistics.median(loads) if loads else float('nan'):.2f}, "
        f"{max(loads) if loads else float('nan'):.2f} |",
        f"| RSS: first sample, peak (VmHWM) | {r.samples[0].rss_mb if r.samples else float('nan'):.1f} MB, "
        f"{r.samples[-1].peak_rss_mb if r.samples else float('nan'):.1f} MB |",
        f"| largest parts of the RSS at the end (by mapping; a /dev/shm/jack-* segment is the JACK server's "
        f"shared memory, shared with jackd) | {'; '.join(f'{m} {mb:.0f} MB' for m, mb in r.rss_mappings)} |",
        "",
        f"![soak over time]({png_name})",
        "",
        "What is measured: *heard latency* = stream time of the first audio chunk after a `Transport PLAY` "
        "(the probe pauses the music for about 100 ms every few seconds) minus the stream time playing when its "
        "reply arrived (the reply's generation frontier minus the reported lookahead); it equals the lookahead "
        "plus at most one control period when nothing queues up in the runtime. *Wall latency* = time from "
        "sending PLAY to receiving that chunk on the audio PUB (request handling + the wait for the next "
        "generation step + publishing). Xruns: the runtime's count (`Status.xruns` and `xrun` events; source "
        "`device`: its device ring ran dry, which a wider lookahead prevents; source `stall`: the audio callback "
        "itself came late — the JACK server or the callback thread was not scheduled — which no lookahead "
        "prevents) and the xruns `jackd` wrote to its log (a client late for a period). Sequence gaps: every event topic's per-topic "
        "sequence numbers as the monitor client received them, the churn clients' (from their first event on), "
        "and the audio PUB's chunk sequence numbers.",
    ]
    if r.xrun_log:
        lines += ["", "Xruns:", "", *[f"- {x}" for x in r.xrun_log[:50]]]
    if r.warnings:
        lines += ["", "Warning events (by message):", "", *[f"- {n}× {m}" for m, n in r.warnings.items()]]
    if r.errors:
        lines += ["", "Errors (first 20):", "", *[f"- {e}" for e in r.errors[:20]]]
    return "\n".join(lines) + "\n"


def plot(r: SoakResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    to_min = 1 / 60.0
    ax = axes[0]
    ax.plot([p.t * to_min for p in r.probes if p.wall_ms is not None],
            [p.wall_ms for p in r.probes if p.wall_ms is not None], ".", ms=3, label="wall: PLAY sent → first resumed chunk received")
    ax.plot([p.t * to_min for p in r.probes if p.heard_ms is not None],
            [p.heard_ms for p in r.probes if p.heard_ms is not None], "-", lw=1.5,
            label="heard: PLAY reply → first resumed sample")
    ax.plot([w.t * to_min for w in r.windows if w.sent], [w.rtt_p50_us / 1000 for w in r.windows if w.sent], "-",
            lw=1, label="SetParameters round trip (window median)")
    ax.set_ylabel("control latency (ms)")
    ax.set_yscale("log")
    ax.set_ylim(0.1, 1e4)  # room above the data for the legend
    ax.legend(loc="upper center", ncol=3, fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[1]
    ax.plot([s.t * to_min for s in r.samples], [s.rss_mb for s in r.samples], "-", label="RSS (VmRSS)")
    ax.axvline(r.warmup_s * to_min, color="grey", ls="--", lw=1, label="end of warm-up")
    ax.set_ylabel("runtime RSS (MB)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[2]
    ax.step([s.t * to_min for s in r.samples], [s.xruns for s in r.samples], where="post", label="xruns (runtime)")
    ax.step([s.t * to_min for s in r.samples], [s.events_lost for s in r.samples], where="post",
            label="event sequence gaps")
    ax.set_ylabel("count (cumulative)")
    ax2 = ax.twinx()
    ax2.plot([s.t * to_min for s in r.samples], [s.lookahead_ms for s in r.samples], "g:", label="lookahead (ms)")
    ax2.set_ylabel("lookahead (ms)", color="g")
    ax2.set_ylim(0, max(60.0, 1.2 * max((s.lookahead_ms for s in r.samples), default=0)))
    lines1, labels1 = ax.get_legend_handles_labels()
    lines2, labels2 = ax2.get_legend_handles_labels()
    ax.legend(lines1 + lines2, labels1 + labels2, loc="upper left", fontsize=8)
    ax.set_ylim(bottom=-0.5, top=max(3.0, 1.2 * max((s.xruns for s in r.samples), default=0)))
    ax.grid(alpha=0.3)
    ax = axes[3]
    ax.plot([w.t * to_min for w in r.windows], [w.sent / w.seconds for w in r.windows], "-",
            label="game updates/s")
    ax.set_ylabel("updates/s")
    ax.set_ylim(0, 1.3 * UPDATES_PER_S)
    ax3 = ax.twinx()
    cpu_t, cpu_v = [], []
    for a, b in zip(r.samples, r.samples[1:]):
        if b.t > a.t:
            cpu_t.append(b.t * to_min)
            cpu_v.append(100 * (b.cpu_s - a.cpu_s) / (b.t - a.t))
    ax3.plot(cpu_t, cpu_v, "r-", lw=0.6, alpha=0.6, label="runtime CPU (% of a core)")
    oth_t, oth_v = [], []
    for a, b in zip(r.samples, r.samples[1:]):
        if b.t > a.t:
            oth_t.append(b.t * to_min)
            oth_v.append(100 * (b.others_cpu_s - a.others_cpu_s) / (b.t - a.t))
    ax3.plot(oth_t, oth_v, "k-", lw=0.6, alpha=0.5, label="other processes' CPU (% of a core)")
    ax3.set_ylabel("CPU (% of a core)")
    l1, n1 = ax.get_legend_handles_labels()
    l3, n3 = ax3.get_legend_handles_labels()
    ax.legend(l1 + l3, n1 + n3, loc="lower left", fontsize=8)
    ax.set_xlabel("minutes")
    ax.grid(alpha=0.3)
    fig.suptitle(f"Cadenza soak, {r.elapsed_s / 60:.1f} min, synth into JACK dummy, lookahead "
                 f"{r.lookahead_ms:g} ms — {'PASS' if r.passed else 'FAIL'}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def load_result(path: Path) -> SoakResult:
    """A :class:`SoakResult` from the JSON ``--json`` wrote."""
    d = json.loads(path.read_text())
    d["probes"] = [Probe(**p) for p in d["probes"]]
    d["samples"] = [Sample(**x) for x in d["samples"]]
    d["windows"] = [Window(**w) for w in d["windows"]]
    d["rss_mappings"] = [tuple(m) for m in d.get("rss_mappings", [])]
    return SoakResult(**d)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--lookahead", type=float, default=DEFAULT_LOOKAHEAD_MS,
                    help=f"the runtime's --lookahead in ms (default {DEFAULT_LOOKAHEAD_MS:g}, an installation's)")
    ap.add_argument("--out", default=str(HERE / "soak.md"))
    ap.add_argument("--png", default=None, help="default: the --out path with .png")
    ap.add_argument("--json", default=None, help="also write every sample as JSON here")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the runtime and the JACK server at this niceness, e.g. -10 as an installation's audio "
                         "processes would (needs root or the audio group's limits)")
    ap.add_argument("--realtime", action="store_true",
                    help="run jackd with its real-time audio thread (SCHED_FIFO, as installations do; needs root "
                         "or the audio group's rtprio limit) instead of --no-realtime")
    ap.add_argument("--from-json", default=None,
                    help="write the report and plot again from a JSON a soak wrote (no new run)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    png = Path(args.png) if args.png else out.with_suffix(".png")
    if args.from_json:
        result = load_result(Path(args.from_json))
        args.minutes, args.lookahead, args.nice = result.minutes, result.lookahead_ms, result.nice
        args.realtime = result.realtime
    elif missing_packages():
        missing = missing_packages()
        print(f"soak: {' and '.join(missing)} not installed: {install_hint(missing)}", file=sys.stderr)
        return 2
    else:
        with tempfile.TemporaryDirectory(prefix="cadenza-soak-") as tmp:
            result = Soak(args.minutes, Path(tmp), lookahead_ms=args.lookahead, nice=args.nice,
                          realtime=args.realtime).run()
    plot(result, png)
    extra = ([f"--lookahead {args.lookahead:g}"] if args.lookahead != DEFAULT_LOOKAHEAD_MS else []) + (
        [f"--nice {args.nice}"] if args.nice else []) + (["--realtime"] if args.realtime else [])
    cmd = f"make soak SOAK_MINUTES={args.minutes:g}" + (f" SOAK_ARGS='{' '.join(extra)}'" if extra else "")
    text = report(result, png.name, cmd)
    out.write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=1))
    print(text)
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
