"""MIDI in benchmark: a CC sent over JACK MIDI → when its effect is heard, against the runtime's lookahead.

Setup (all real processes): a private JACK dummy server with a small period
(:data:`JACK_PERIOD` frames: JACK moves MIDI once a cycle), real-time
(``jackd -R``, as a live rig runs it; ``--no-realtime`` where the system
refuses, said in the row), a ``cadenza serve``
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

Every flip is accounted for: flips go one at a time, so the first STARTED
event of the new label after a send is that flip's, even when its heard_at
claims it was heard before the send (the heard clock running behind after a
stall: counted and reported; skipping it made such flips look lost). A flip
with no state event within 3 s is reported with where it was lost: before the
bridge (the bridge's own message count, read with SIGUSR1, against the CCs
sent: JACK MIDI), in the bridge, or in the runtime.
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


def _flip_latencies(client: Any, send: Any, n: int, rng: random.Random, misses: list[str],
                    explain: Any = None, early: list[float] | None = None) -> list[float]:
    """``n`` state flips by ``send(label)``; each one's heard_at − the send time, in ms.

    Flips are strictly one at a time (the next is sent only after this one's state event or its timeout), and
    before each send the state is the other label, so the first STARTED event for ``label`` after the send is
    this flip's, whatever its heard_at says: one that claims to be heard before the send (the runtime's heard
    clock running behind after a stall) is this flip's too; its heard_at − send (ms, negative) goes to ``early``,
    not into the latencies (it is not a latency), and not skipped (which would turn the flip into a miss). A flip without its state event within
    3 s is added to ``misses`` with where it was lost (``explain(label)`` when the value never reached the
    runtime), and the label is read again from the runtime: every flip sent is measured or accounted for."""
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
                    if event.heard_at < t_send and early is not None:
                        early.append((event.heard_at - t_send) * 1000.0)
                    else:
                        out.append((event.heard_at - t_send) * 1000.0)
                    break
            else:  # no state event within the stream's timeout: accounted for, and in step with the runtime again
                status = client.status()
                if status.parameters.get("scene") != label:
                    why = explain(label) if explain is not None else "the value never reached the runtime"
                else:
                    why = f"the runtime took scene={label} but published no state event (state {status.state!r})"
                misses.append(f"{label}: {why}")
                label = client.describe().state
    return out


def _bridge_received(proc: subprocess.Popen[bytes], err: Path) -> int | None:
    """How many MIDI messages the bridge has received: SIGUSR1 makes it log its counters (on stderr)."""
    before = err.read_text(errors="replace").count(" messages, ")
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        text = err.read_text(errors="replace")
        if text.count(" messages, ") > before:
            return int(re.findall(r"(\d+) messages, ", text)[-1])
        time.sleep(0.02)
    return None


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def measure(work: Path, n: int, realtime: bool = True) -> dict[str, Any]:
    import rtmidi

    from cadenza.sdk.client import Client

    with JackServer(work, name=f"cadenza-bench-midi-{os.getpid()}", period=JACK_PERIOD, realtime=realtime,
                    fallback=True) as jack:
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
            sent = [0]
            midi_proc = bridge

            def send_cc(lab: str) -> None:
                out.send_message([0xB0, 1, 127 if lab == "drive" else 0])
                sent[0] += 1

            def explain(lab: str) -> str:  # where a CC that never reached the runtime was lost
                got = _bridge_received(midi_proc, work / "midi.err")
                if got is None:
                    return "the value never reached the runtime (the bridge's counters could not be read)"
                if got < sent[0]:
                    return (f"lost before the bridge: it received {got} of the {sent[0]} CCs sent (JACK MIDI; "
                            f"JACK xruns so far: {jack.xruns()})")
                return f"the bridge received all {sent[0]} CCs but scene={lab} did not reach the runtime"

            with Client(control, events, heartbeat=0) as client:
                lookahead = client.status().lookahead_ms
                midi_missed: list[str] = []
                sdk_missed: list[str] = []
                midi_early: list[float] = []
                sdk_early: list[float] = []
                _flip_latencies(client, send_cc, 4, rng, [], explain)  # warm-up
                midi_ms: list[float] = []
                sdk_ms: list[float] = []
                for _ in range(2):  # interleaved halves: a loaded box slows both alike
                    midi_ms += _flip_latencies(client, send_cc, n // 2, rng, midi_missed, explain, midi_early)
                    sdk_ms += _flip_latencies(client, lambda lab: client.set(scene=lab), n // 2, rng, sdk_missed,
                                              None, sdk_early)
                received = _bridge_received(midi_proc, work / "midi.err")
                xruns = jack.xruns()
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
    return {"midi": midi_ms, "sdk": sdk_ms, "lookahead_ms": lookahead, "midi_missed": midi_missed,
            "sdk_missed": sdk_missed, "sent": sent[0], "received": received,
            "midi_early": midi_early, "sdk_early": sdk_early, "jack_xruns": xruns, "realtime": jack.realtime}


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
                f"MIDI in: from rtmidi's send_message on a JACK MIDI port (private dummy JACK server, "
                f"{'real-time' if r['realtime'] else 'NOT real-time'}, period {JACK_PERIOD} frames) to the state event's heard_at (the runtime's heard clock, null sink), CC 1 → "
                "labeled parameter → driven state, quantize now. The baseline sends the same change with the SDK; "
                f"the difference is JACK MIDI's cycle plus the bridge. {_misses(r)}")]


def _misses(r: dict[str, Any]) -> str:
    """Every flip accounted for: measured, or missed with where it was lost."""
    parts = [f"The bridge received {r['received']} of the {r['sent']} CCs sent; JACK reported {r['jack_xruns']} "
             "xruns."]
    for who in ("midi", "sdk"):
        early: list[float] = r[f"{who}_early"]
        if early:
            parts.append(f"{who.upper()}: {len(early)} flips' state events claimed to be heard before the flip was "
                         f"sent (up to {-min(early):.1f} ms before: the runtime's heard clock behind after a stall); "
                         "left out of the latencies.")
        missed: list[str] = r[f"{who}_missed"]
        if missed:
            kinds: dict[str, int] = {}
            for m in missed:
                why = re.sub(r"\d+(\.\d+)?", "N", m.split(": ", 1)[1])
                kinds[why] = kinds.get(why, 0) + 1
            parts.append(f"{who.upper()} flips with no state event within 3 s: {len(missed)} (" + "; ".join(
                f"{n}× {k}" for k, n in kinds.items()) + f"; first: {missed[0]})")
        else:
            parts.append(f"{who.upper()} flips with no state event: none")
    return " ".join(parts)


if __name__ == "__main__":
    for row in rows("--quick" in sys.argv):
        print(row)
