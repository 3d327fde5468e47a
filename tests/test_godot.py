"""The Godot addon (sdk/godot) in the real engine: a headless Godot 3 drives a real ``cadenza serve --ws``.

Each test copies sdk/godot (the addon, its demo scene, project.godot) into a
temporary Godot project with ``tests/godot/drive_client.gd`` beside it and runs
``godot3-server --path PROJECT -s res://drive_client.gd`` with HOME and the XDG
folders in the temporary directory. The script uses the addon's
``CadenzaClient`` node exactly as a game does (signals, ``yield`` on
``describe()``), sends the action-game graph as text, sets ``danger``, asks for
a state change and prints every signal as one JSON line (``CADENZA {…}``).

Meanwhile the test listens to the runtime's own beat events on its ZeroMQ
events socket, and afterwards asks the runtime (``GetStatus``) what it plays.
Without ``godot3-server`` (Debian: ``apt install godot3-server``) the tests
skip through :func:`server_harness.require`, which fails them in CI
(``CADENZA_REQUIRE_AUDIO=1``).
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq

from server_harness import ACTION_GAME, REPO, ServeProcess, Subscriber, label, number, require

GODOT_PROJECT = REPO / "sdk" / "godot"
DRIVER = REPO / "tests" / "godot" / "drive_client.gd"
GODOT_NAMES = ("godot3-server", "godot3", "godot")
LINE_PREFIX = "CADENZA "
STATE = "combat"  # a crossfade quantized to the bar: the beat grid is handed to the new deck
BEATS_AFTER_START = 12
GODOT_DEADLINE_S = 90.0
MIN_MATCHED_BEATS = 8
MAX_LATE_S = 0.3  # CadenzaClient.max_late_s
STALL_S = 4.0  # how long the reconnect test stops the runtime (SIGSTOP)


def _godot() -> str:
    """The headless Godot 3 binary, or require() (a skip here, a failure in CI)."""
    for name in GODOT_NAMES:
        path = shutil.which(name)
        if path is None:
            continue
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        if version.startswith("3."):
            return path
    require("Godot 3 is not installed (the addon's tests run it headless: apt install godot3-server)")
    raise AssertionError("unreachable")


def _project(tmp_path: Path) -> Path:
    """A copy of sdk/godot with the driver script beside project.godot (Godot may write into its project)."""
    project = tmp_path / "godot-project"
    shutil.copytree(GODOT_PROJECT, project, ignore=shutil.ignore_patterns(".import", "*.import"))
    shutil.copy(DRIVER, project / DRIVER.name)
    return project


@dataclass
class GodotRun:
    """A headless Godot running the driver; its ``CADENZA`` lines parsed as they come (a reader thread)."""

    proc: subprocess.Popen[str]
    lines: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    received: list[dict[str, Any]] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Kill Godot if it still runs; wait for it and for the reader to reach the end of its output."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.output.append(raw.rstrip("\n"))
            if raw.startswith(LINE_PREFIX):
                self.lines.put(json.loads(raw[len(LINE_PREFIX):]))
            elif "SCRIPT ERROR" in raw:  # GDScript stops the function and Godot goes on: fail at once
                self.lines.put({"sig": "fail", "why": raw.strip()})

    def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        self.received.append(line)
        return line

    def signals(self, sig: str) -> list[dict[str, Any]]:
        return [line for line in self.received if line["sig"] == sig]

    def tail(self) -> str:
        return "\n".join(self.output[-60:])


def _start_godot(tmp_path: Path, url: str, *, reconnect: bool = False) -> GodotRun:
    project = _project(tmp_path)
    home = tmp_path / "godot-home"
    env = dict(os.environ)
    env.update({
        "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"), "LANG": "en_US.UTF-8",
        "CADENZA_WS_URL": url, "CADENZA_GRAPH": str(ACTION_GAME), "CADENZA_STATE": STATE,
        "CADENZA_BEATS": str(BEATS_AFTER_START), "CADENZA_RECONNECT": "1" if reconnect else "0",
        "CADENZA_DEADLINE_S": str(GODOT_DEADLINE_S),
    })
    for sub in ("data", "config", "cache"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    # Godot 3 creates user://logs before its parents (an ERROR line on a fresh HOME): make them first
    name = re.search(r'^config/name="([^"]*)"', (project / "project.godot").read_text(), re.M)
    assert name, "project.godot has no config/name"
    (home / "data" / "godot" / "app_userdata" / name.group(1) / "logs").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([_godot(), "--path", str(project), "-s", f"res://{DRIVER.name}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=tmp_path)
    return GodotRun(proc)


def _ws_url(server: ServeProcess) -> str:
    found = re.search(r"\bws=(\S+)", server.ready_line)
    assert found, f"the ready line names no ws= URL: {server.ready_line!r}"
    return found.group(1)


def _serve(tmp_path: Path, ws: str, name: str) -> ServeProcess:
    return ServeProcess(["--ws", ws], tmp_path / name, name=name).start()


def _pump(run: GodotRun, beats: Subscriber | None, runtime_beats: dict[int, Any], until: str,
          timeout: float, on_line: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Collect Godot's lines and the runtime's beat events until Godot prints ``until``; that line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if beats is not None:
            while (event := beats.recv_event(0.0)) is not None:
                runtime_beats[event.payload.beat] = event
        line = run.next(0.01)
        if line is None:
            if run.proc.poll() is not None and run.lines.empty():
                break
            continue
        if line["sig"] == "fail":
            raise AssertionError(f"Godot failed ({line.get('why')}) before printing {until!r}; its output:\n"
                                 f"{run.tail()}")
        if on_line is not None:
            on_line(line)
        if line["sig"] == until:
            return line
    raise AssertionError(f"Godot never printed {until!r} within {timeout:g} s (exit {run.proc.poll()}); "
                         f"its output:\n{run.tail()}")


def _finish(run: GodotRun) -> None:
    try:
        code = run.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        raise AssertionError(f"Godot did not exit after its last line:\n{run.tail()}") from None
    assert code == 0, f"Godot exited {code}:\n{run.tail()}"
    run.close()
    # a GDScript error does not stop Godot: it prints SCRIPT ERROR and goes on
    script_errors = [line for line in run.output if "SCRIPT ERROR" in line]
    assert not script_errors, "GDScript errors:\n" + run.tail()


def _check_beats(run: GodotRun, runtime_beats: dict[int, Any], session: str) -> tuple[int, list[float]]:
    """Every beat signal of ``session`` is one of the runtime's beat events, with its bar and beat in bar;
    the count, and how late each was emitted after it was heard (or had arrived, whichever came last)."""
    godot_beats = [line for line in run.signals("beat") if line["session"] == session]
    lateness = []
    for line in godot_beats:
        event = runtime_beats.get(line["index"])
        assert event is not None, (f"Godot's beat #{line['index']} (bar {line['bar']}) is no beat event of the "
                                   f"runtime (it published {sorted(runtime_beats)[:5]}…{sorted(runtime_beats)[-5:]})")
        assert (line["bar"], line["beat"]) == (event.payload.bar, event.payload.beat_in_bar), \
            f"beat #{line['index']}: Godot got bar {line['bar']} beat {line['beat']}, the runtime published {event}"
        assert line["stream_time"] == event.stream_time, f"beat #{line['index']}: stream time differs"
        assert line["heard_at"] == pytest.approx(event.heard_at, abs=1e-6), f"beat #{line['index']}: heard_at differs"
        if line["timing"] == "heard":
            # signals fire on the first frame at or after the heard time on Godot's clock (heard_at minus the
            # clock offset the client measured; t is printed in whole milliseconds)
            heard_here = line["heard_at"] - line["clock_offset"]
            assert line["t"] >= heard_here - 0.002, f"beat #{line['index']} fired before it was heard: {line}"
            # a beat heard more than max_late_s (0.3 s) before it arrived is skipped, not fired late
            assert line["t"] - heard_here < MAX_LATE_S + 0.05, f"beat #{line['index']} fired late: {line}"
            lateness.append(line["t"] - max(heard_here, line["arrived"]))
    indices = [line["index"] for line in godot_beats]
    assert indices == sorted(set(indices)), f"beat signals out of order or repeated: {indices}"
    return len(godot_beats), lateness


def _parameter(status: Any, name: str) -> float:
    return number(status.parameters[name])


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.mark.timeout(180)
def test_godot_client_follows_the_runtime_beat_for_beat(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    godot = _godot()
    assert godot
    server = _serve(tmp_path, "127.0.0.1:0", "serve")
    try:
        beats = server.events(ctx, topics=("beat",))
        time.sleep(0.2)  # the SUB's subscription reaches the PUB before the graph (and its beats) start
        runtime_beats: dict[int, Any] = {}
        control = server.control(ctx)
        during: list[Any] = []  # the runtime's Status when Godot heard the state change start

        def on_line(line: dict[str, Any]) -> None:
            if line["sig"] == "state_changed" and line["name"] == STATE and line["phase"] == "STARTED":
                during.append(control.status())

        run = _start_godot(tmp_path, _ws_url(server))
        try:
            done = _pump(run, beats, runtime_beats, "done", GODOT_DEADLINE_S + 10, on_line)
            _finish(run)
        finally:
            run.close()
        deadline = time.monotonic() + 2.0  # the beat events of the last signals may still be in the SUB
        while time.monotonic() < deadline and not all(b["index"] in runtime_beats for b in run.signals("beat")):
            while (event := beats.recv_event(0.05)) is not None:
                runtime_beats[event.payload.beat] = event

        demo = run.signals("demo")[0]  # the demo scene's labels, driven by its own CadenzaClient
        assert demo["beat"].startswith("bar ") and demo["state"] not in ("", "connecting"), demo
        replies = {line["to"]: line for line in run.signals("reply")}
        for step in ("load_graph", "set_param", "set_state", "trigger"):
            assert replies.get(step, {}).get("kind") == "ok", f"{step} was not answered Ok: {replies.get(step)}\n" \
                                                             f"{run.tail()}"
        order = [line["id"] for line in run.signals("replied")]  # set_param was held until the load's reply
        assert order.index(replies["load_graph"]["id"]) < order.index(replies["set_param"]["id"]), order
        bad = replies["bad_param"]
        assert bad["kind"] == "error" and bad["body"]["code"] == "UNKNOWN_NAME" \
            and bad["body"]["field"] == "set_parameters.values[0].name" and "dnager" in bad["body"]["message"], bad
        errors = run.signals("error")  # the error signal: once, for the typo
        assert [(e["code"], e["field"]) for e in errors] == [("UNKNOWN_NAME", "set_parameters.values[0].name")], errors
        assert [line["name"] for line in run.signals("stinger")] == ["victory"]
        described = run.signals("described")[0]
        assert described["name"] == "action-game" and "danger" in described["parameters"] \
            and STATE in described["states"], described
        phases = [line["phase"] for line in run.signals("state_changed") if line["name"] == STATE]
        assert phases[:2] == ["SCHEDULED", "STARTED"], f"state signals for {STATE}: {phases}"
        assert run.signals("bar"), "no bar signal"

        session = run.signals("connected")[0]["session"]
        matched, lateness = _check_beats(run, runtime_beats, session)
        assert matched >= MIN_MATCHED_BEATS + 4, f"only {matched} beat signals"
        assert done["events_lost"] == 0
        # one machine, one clock: the offset the client measured from its Hello round trips is about 0
        assert abs(done["clock_offset"]) < 0.1, done

        assert during and during[0].state == STATE and during[0].graph_name == "action-game", during
        # danger reached 0.8 through its smoothing; boss_defeated's set_state went back to explore
        status = control.wait_status(lambda st: abs(_parameter(st, "danger") - 0.8) < 0.02 and st.state == "explore",
                                     10.0, "danger 0.8 in state explore")
        assert status.requests["load_graph"] == 1 and status.requests["set_state"] == 1, dict(status.requests)
        # refused: only the typo (a set_param sent before the graph was in would be NOT_READY, refused too)
        assert status.requests["trigger"] == 1 and status.requests["refused"] == 1, dict(status.requests)
        assert label(status.parameters["mode"]) == "explore"  # set_state forces the state, not the parameter
        timings = {line["timing"] for line in run.signals("beat")}
        if lateness:
            late_ms = sorted(x * 1000 for x in lateness)
            print(f"\nGodot beat signals: {matched} matched; timing {timings}; emitted after max(heard, arrival) by "
                  f"median {statistics.median(late_ms):.1f} ms, max {late_ms[-1]:.1f} ms; skipped late "
                  f"{done['signals_late']}; clock offset {done['clock_offset'] * 1000:.2f} ms")
            assert statistics.median(late_ms) < 100, f"beat signals late by {late_ms} ms"
    finally:
        server.kill()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_godot_client_reconnects_and_resyncs_a_restarted_runtime(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    """A stalled runtime (SIGSTOP): the heartbeat gets no reply, the client reconnects to the same session
    and sends nothing again. A restarted runtime (a new session): the client re-sends its graph and parameters."""
    godot = _godot()
    assert godot
    first = _serve(tmp_path, "127.0.0.1:0", "first")
    url = _ws_url(first)
    port = url.rsplit(":", 1)[1].split("/")[0]
    run = _start_godot(tmp_path, url, reconnect=True)
    second: ServeProcess | None = None
    try:
        _pump(run, None, {}, "phase1_done", GODOT_DEADLINE_S)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            no_reply = _pump(run, None, {}, "error", 10)
            _pump(run, None, {}, "disconnected", 5)
            time.sleep(max(0.0, STALL_S - (time.monotonic() - stopped)))
        finally:
            os.kill(first.pid, signal.SIGCONT)
        assert no_reply["code"] == "NO_REPLY" and "hello" in no_reply["message"], no_reply
        again = _pump(run, None, {}, "connected", 20)
        assert again["session"] == run.signals("connected")[0]["session"]
        for _ in range(4):  # the beats go on after the stall (a burst of stale ones is skipped: signals_late)
            _pump(run, None, {}, "beat", 10)
        status = first.control(ctx).status()
        assert status.requests["load_graph"] == 1, f"the same session got its graph again: {dict(status.requests)}"
        first.stop()
        _pump(run, None, {}, "disconnected", 20)
        second = _serve(tmp_path, f"127.0.0.1:{port}", "second")
        beats = second.events(ctx, topics=("beat",))
        runtime_beats: dict[int, Any] = {}
        _pump(run, beats, runtime_beats, "new_session", 40)
        _pump(run, beats, runtime_beats, "done", 40)
        _finish(run)
        control = second.control(ctx)
        status = control.status()
        # the client re-sent its graph and its accepted parameter values (a jump: bypass), never the state change
        assert status.graph_name == "action-game", status
        assert _parameter(status, "danger") == pytest.approx(0.8), status
        assert status.state == "explore" and "set_state" not in status.requests, dict(status.requests)
        assert status.requests["load_graph"] == 1, dict(status.requests)
        sessions = [line["session"] for line in run.signals("connected")]
        assert len(sessions) == 3 and sessions[0] == sessions[1] != sessions[2], sessions
        while (event := beats.recv_event(0.3)) is not None:
            runtime_beats[event.payload.beat] = event
        matched, _ = _check_beats(run, runtime_beats, sessions[2])
        # the stall: no beat signal fired more than max_late_s after it was heard (the stale burst is skipped)
        late = [b for b in run.signals("beat") if b["t"] - (b["heard_at"] - b["clock_offset"]) > MAX_LATE_S + 0.05]
        assert not late, f"beat signals fired late: {late}"
        print(f"\nafter a {STALL_S:g} s stall: {run.signals('done')[0]['signals_late']} stale beat/bar signals skipped")
        assert matched >= MIN_MATCHED_BEATS, f"only {matched} beat signals from the restarted runtime"
        errors = [line for line in run.signals("error") if line["code"] not in ("DISCONNECTED", "NO_REPLY")
                  and line["field"] != "set_parameters.values[0].name"]  # the driver's typo
        assert not errors, f"Godot reported errors: {errors}"
    finally:
        run.close()
        first.kill()
        if second is not None:
            second.kill()
