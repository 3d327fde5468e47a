"""MIDI in benchmark: a CC sent over JACK MIDI → when its effect is heard, against the runtime's lookahead.

Setup (all real processes): a private JACK dummy server with a small period
(:data:`JACK_PERIOD` frames: JACK moves MIDI once a cycle), a ``cadenza serve``
on the null sink (its heard clock is the paced output clock: no device latency
on top), and ``cadenza midi`` with a virtual JACK MIDI input connected by
``jack_connect`` to this process's python-rtmidi output.

The probe graph has a labeled parameter ``scene`` (``rest``/``drive``) that
drives the states (``states.driven_by``), with ``quantize: now`` transitions.
The mapping sends CC 1 to ``scene``: 0 → ``rest``, 127 → ``drive``. Each
measurement flips the CC and reads the state event the runtime publishes::

    latency = Event.heard_at (the runtime's heard clock: when the change leaves the output)
              - time.time() just before rtmidi's send_message

Both are ``time.time()`` on this host. The baseline, in the same run, is the same
state flip sent by the SDK (``client.set(scene=…)``) without MIDI: what the
bridge and JACK MIDI add is the difference. The goal compares the p99 with the
runtime's lookahead (``Status.lookahead_ms``) + 10 ms. Sends are spaced with a
random phase so they land anywhere in the 10 ms control period.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.jack import JackServer, install_hint, missing_packages
from bench.table import Row

FIGURE = "CC → heard latency (JACK MIDI → cadenza midi → state change heard, null sink)"
GOAL = "median and p99 ≤ lookahead + 10 ms"
JACK_PERIOD = 64  # frames at 48 kHz: 1.3 ms a cycle

GRAPH = """\
cadenza_graph: 1
name: midi-bench
control_rate: 100
parameters:
  scene: {type: labeled, labels: [rest, drive], default: rest}
prompts:
  calm: "calm ambient pads"
  busy: "energetic techno with drums"
mix:
  - prompt: calm
    weight: 1
states:
  driven_by: scene
  initial: rest
  list:
    rest: {}
    drive:
      mix:
        - prompt: busy
          weight: 1
transitions:
  - {from: any, to: any, quantize: now, fade: 0.02, mode: blend}
"""

MAPPING = """\
cadenza_midi: 1
map:
  - {cc: 1, parameter: scene, channel: 1}
"""


def _free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start(argv: list[str], work: Path, name: str, env: dict[str, str], ready: str,
           timeout: float = 90.0) -> subprocess.Popen[bytes]:
    out = work / f"{name}.out"
    with open(out, "wb") as o, open(work / f"{name}.err", "wb") as e:
        proc = subprocess.Popen([sys.executable, "-m", "cadenza", *argv], stdout=o, stderr=e, env=env,
                                stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(ready, out.read_text(errors="replace")):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{name} did not start: {(work / f'{name}.err').read_text(errors='replace')[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _flip_latencies(client: Any, send: Any, n: int, rng: random.Random, misses: list[str]) -> list[float]:
    """``n`` state flips by ``send(label)``; each one's heard_at − the send time, in ms (flips without a state
    event within 3 s are added to ``misses``)."""
    out: list[float] = []
    label = client.describe().state
    with client.events(timeout=3.0, topics=["state"]) as stream:
        time.sleep(0.3)  # the subscription is live
        for _ in range(n):
            label = "drive" if label == "rest" else "rest"
            time.sleep(0.06 + rng.random() * 0.02)
            t_send = time.time()
            send(label)
            for event in stream:
                if getattr(event, "name", None) == label and getattr(event, "phase", "") == "started":
                    if event.heard_at <= 0:
                        raise RuntimeError("the runtime reports no heard clock (Event.heard_at = 0)")
                    if event.heard_at < t_send:
                        continue  # an earlier flip's event, read late: nothing is heard before it is sent
                    out.append((event.heard_at - t_send) * 1000.0)
                    break
            else:  # no state event within the stream's timeout: counted as missed, and in step with the runtime again
                misses.append(label)
                label = client.describe().state
    return out


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def measure(work: Path, n: int) -> dict[str, Any]:
    import rtmidi

    from cadenza.sdk.client import Client

    with JackServer(work, name=f"cadenza-bench-midi-{os.getpid()}", period=JACK_PERIOD) as jack:
        env = {**jack.env, "PYTHONUNBUFFERED": "1"}
        graph = work / "graph.yaml"
        graph.write_text(GRAPH)
        mapping = work / "map.yaml"
        mapping.write_text(MAPPING)
        control, events = (f"tcp://127.0.0.1:{p}" for p in _free_ports(2))
        old = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
        os.environ.update({k: v for k, v in jack.env.items() if k in old})
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="cadenza-bench-send")
        out.open_virtual_port("out")
        serve = _start(["serve", "--sink", "null", "--graph", str(graph), "--control", control, "--events", events,
                        "--audio", "none"], work, "serve", env, r"cadenza serve: ready")
        bridge = None
        try:
            bridge = _start(["midi", "--api", "jack", "--map", str(mapping), "--virtual", "--connect",
                             "cadenza-bench-send:out", "--control", control, "--events", events], work, "midi", env,
                            r"listening on ")
            time.sleep(0.5)
            rng = random.Random(7)
            with Client(control, events, heartbeat=0) as client:
                lookahead = client.status().lookahead_ms
                midi_missed: list[str] = []
                sdk_missed: list[str] = []
                _flip_latencies(client, lambda lab: out.send_message([0xB0, 1, 127 if lab == "drive" else 0]), 4,
                                rng, [])  # warm-up
                midi_ms: list[float] = []
                sdk_ms: list[float] = []
                for _ in range(2):  # interleaved halves: a loaded box slows both alike
                    midi_ms += _flip_latencies(
                        client, lambda lab: out.send_message([0xB0, 1, 127 if lab == "drive" else 0]), n // 2, rng,
                        midi_missed)
                    sdk_ms += _flip_latencies(client, lambda lab: client.set(scene=lab), n // 2, rng, sdk_missed)
        finally:
            if bridge is not None:
                _stop(bridge)
            _stop(serve)
            out.close_port()
            out.delete()
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    return {"midi": midi_ms, "sdk": sdk_ms, "lookahead_ms": lookahead, "midi_missed": len(midi_missed),
            "sdk_missed": len(sdk_missed)}


def rows(quick: bool) -> list[Row]:
    try:
        import rtmidi  # noqa: F401
    except ImportError:
        return [Row.not_run(FIGURE, "the midi extra is not installed: pip install 'cadenza[midi]'", GOAL)]
    missing = missing_packages()
    if "jackd2" in missing or shutil.which("jack_connect") is None:
        return [Row.not_run(FIGURE, f"jackd2 not installed: {install_hint(['jackd2'])}", GOAL)]
    n = 40 if quick else 120
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-midi-") as tmp:
        r = measure(Path(tmp), n)
    midi, sdk, look = r["midi"], r["sdk"], r["lookahead_ms"]
    m50, m99 = statistics.median(midi), _pct(midi, 0.99)
    s50, s99 = statistics.median(sdk), _pct(sdk, 0.99)
    goal_ms = look + 10.0
    return [Row(FIGURE, f"median {m50:.1f} ms, p99 {m99:.1f} ms",
                f"SDK set() of the same change: median {s50:.1f} ms, p99 {s99:.1f} ms; lookahead {look:.0f} ms",
                f"+{m50 - s50:.1f} ms median over the SDK", f"{GOAL} ({goal_ms:.0f} ms)", m50 <= goal_ms and m99 <= goal_ms, len(midi),
                f"MIDI in: from rtmidi's send_message on a JACK MIDI port (private dummy JACK server, period "
                f"{JACK_PERIOD} frames) to the state event's heard_at (the runtime's heard clock, null sink), CC 1 → "
                "labeled parameter → driven state, quantize now. The baseline sends the same change with the SDK; "
                f"the difference is JACK MIDI's cycle plus the bridge. Flips with no state event within 3 s: MIDI "
                f"{r['midi_missed']}, SDK {r['sdk_missed']}.")]


if __name__ == "__main__":
    for row in rows("--quick" in sys.argv):
        print(row)
