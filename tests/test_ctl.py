"""``cadenza ctl`` as a person at a terminal runs it: real subprocesses against a real ``cadenza serve``.

One runtime (the action-game graph, null sink) serves the module; every
subcommand runs as ``python -m cadenza ctl …`` with stdout a pipe (so the
plain-text output is what is checked), and what it changed is read back
through a raw control socket (:mod:`server_harness`). Each error path is
checked for its exit status (1 the runtime said no, 2 usage, 3 no answer) and
for one line on stderr that names the bad value, never a traceback. The
``events`` tail runs for a few seconds while the test changes state and fires
a trigger, and its lines are parsed.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from server_harness import ACTION_GAME, ServeProcess, child_env, free_ports, set_parameters, wait_until

RUN_TIMEOUT_S = 60
EXIT_REFUSED, EXIT_USAGE, EXIT_NO_ANSWER = 1, 2, 3
#: ``  0:12.345  beat     beat 41  bar 10 beat 2  120.0 bpm``
EVENT_LINE = re.compile(r"^\s*(?P<clock>(?:\d+:)?\d+:\d\d\.\d{3})\s+(?P<topic>[a-z]+)\s+(?P<rest>.*)$")


def seconds_of(clock: str) -> float:
    parts = [float(p) for p in clock.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    serve = ServeProcess(["--graph", str(ACTION_GAME)], tmp_path_factory.mktemp("ctl"))
    serve.start()
    try:
        yield serve
    finally:
        serve.kill()


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.destroy(linger=0)


def ctl_argv(server: ServeProcess | None, *args: str) -> list[str]:
    argv = [sys.executable, "-m", "cadenza", "ctl"]
    if server is not None:
        argv += ["--control", server.ep.local("control"), "--events", server.ep.local("events")]
    return argv + list(args)


def ctl(server: ServeProcess | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(ctl_argv(server, *args), capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          env={**child_env(), **(env or {})})


def one_error_line(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The run exited ``code`` with exactly one line on stderr holding every needle, and no traceback."""
    assert done.returncode == code, f"exit {done.returncode}, expected {code}; stderr: {done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {done.stderr}"
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def fields(stdout: str) -> dict[str, str]:
    """``status``'s ``label   value`` lines → {label: value}."""
    out = {}
    for line in stdout.splitlines():
        head, _, rest = line.partition("  ")
        if head and not head.startswith(" "):
            out[head.strip()] = rest.strip()
    return out


def restore_graph(server: ServeProcess, ctx: zmq.Context[Any]) -> None:
    control = server.control(ctx)
    control.ok(pb.LoadGraph(text=ACTION_GAME.read_text()))
    control.close()


# ----------------------------------------------------------------------------- looking


def test_status_shows_what_plays(server: ServeProcess) -> None:
    done = ctl(server, "status")
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout, "colour codes in output to a pipe"
    f = fields(done.stdout)
    assert f["graph"] == "action-game"
    assert f["state"] == "explore"
    assert f["playing"].startswith("yes  at "), f
    assert "danger 0" in f["parameters"] and "mode explore" in f["parameters"], f
    assert "wander 1.00" in f["weights"], f
    assert "density" in f["controls"] and "brightness" in f["controls"], f  # the graph's, not only overrides
    assert f["health"].startswith("xruns "), f
    assert server.ep.local("control") in f["runtime"] and "backend synth" in f["runtime"], f

    # the endpoints from the environment, and the options after the subcommand, work the same
    by_env = ctl(None, "status", env={"CADENZA_CONTROL": server.ep.local("control")})
    assert by_env.returncode == 0 and fields(by_env.stdout)["graph"] == "action-game", by_env.stderr
    after = subprocess.run([sys.executable, "-m", "cadenza", "ctl", "status", "--json", "--control",
                            server.ep.local("control")], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                           env=child_env())
    assert after.returncode == 0, after.stderr
    doc = json.loads(after.stdout)
    assert doc["graph_name"] == "action-game" and doc["state"] == "explore"


def test_describe_lists_parameters_states_triggers_prompts(server: ServeProcess) -> None:
    done = ctl(server, "describe")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert re.search(r"^graph\s+action-game\s+state explore \(driven by mode\)$", text, re.M), text
    assert re.search(r"^\s+danger\s+continuous\s+0 … 1\s+default 0\s+now 0$", text, re.M), text
    assert re.search(r"^\s+health\s+discrete\s+0 … 100\s+default 100\s+now 100$", text, re.M), text
    assert re.search(r"^\s+mode\s+labeled\s+explore \| tension \| combat\s+default explore\s+now explore$", text,
                     re.M), text
    assert re.search(r"^\s+intensity\s+continuous.*\(built in\)$", text, re.M), text
    assert re.search(r"^states\s+explore\*\s+tension\s+combat", text, re.M), text
    assert re.search(r"^\s+boss_defeated\s+stinger victory, → explore, intensity \+1$", text, re.M), text
    assert re.search(r'^\s+wander\s+1\.00\s+"calm ambient pads with soft piano"$', text, re.M), text
    assert re.search(r"^stingers\s+victory$", text, re.M), text

    doc = json.loads(ctl(server, "describe", "--json").stdout)
    assert list(doc["parameters"]) == ["danger", "health", "mode", "intensity"]
    assert doc["parameters"]["mode"]["labels"] == ["explore", "tension", "combat"]
    assert list(doc["triggers"]) == ["enemy_down", "boss_defeated"]


# ----------------------------------------------------------------------------- steering


def test_set_state_and_trigger_change_the_music(server: ServeProcess, ctx: zmq.Context[Any]) -> None:
    control = server.control(ctx)
    try:
        done = ctl(server, "set", "health", "40", "--ramp", "0.2")
        assert done.returncode == 0, done.stderr
        assert re.fullmatch(r"ok  health = 40 over 0\.2 s \(linear\)  \(from \d+:\d\d\.\d{3}\)\n", done.stdout), \
            done.stdout
        control.wait_status(lambda st: st.parameters["health"].number == 40, 10, "health 40")

        done = ctl(server, "set", "mode", "tension")  # a label
        assert done.returncode == 0, done.stderr
        control.wait_status(lambda st: st.state == "tension", 15, "the tension state")

        done = ctl(server, "state", "combat")
        assert done.returncode == 0 and done.stdout.startswith("ok  state → combat  (from "), done
        control.wait_status(lambda st: st.state == "combat", 15, "the combat state")

        done = ctl(server, "trigger", "boss_defeated")  # stinger, then back to explore
        assert done.returncode == 0 and done.stdout.startswith("ok  fired boss_defeated"), done
        control.wait_status(lambda st: st.state == "explore", 15, "explore after boss_defeated")
    finally:
        control.ok(set_parameters({"health": 100, "mode": "explore"}, bypass=True))
        control.close()


def test_the_runtimes_refusals_exit_1_with_its_message(server: ServeProcess, ctx: zmq.Context[Any]) -> None:
    one_error_line(ctl(server, "set", "dangr", "0.5"), EXIT_REFUSED, "UNKNOWN_NAME", "'dangr'", "danger, health, mode")
    one_error_line(ctl(server, "set", "danger", "7"), EXIT_REFUSED, "BAD_VALUE", "7", "[0, 1]")
    one_error_line(ctl(server, "set", "mode", "panic"), EXIT_REFUSED, "'panic'", "combat")
    one_error_line(ctl(server, "state", "nowhere"), EXIT_REFUSED, "UNKNOWN_NAME", "'nowhere'", "combat")
    one_error_line(ctl(server, "trigger", "nothing"), EXIT_REFUSED, "UNKNOWN_NAME", "'nothing'", "boss_defeated")
    clamped = ctl(server, "set", "danger", "7", "--clamp", "--bypass")
    assert clamped.returncode == 0, clamped.stderr
    assert ctl(server, "set", "danger", "0", "--bypass").returncode == 0
    control = server.control(ctx)  # the mix back where the next test expects it (wander alone)
    control.wait_status(lambda st: st.weights.get("wander", 0) > 0.99, 15, "wander alone again")
    control.close()


def test_prompts_shows_and_sets_the_prompts(server: ServeProcess, ctx: zmq.Context[Any]) -> None:
    shown = ctl(server, "prompts")
    assert shown.returncode == 0, shown.stderr
    first = shown.stdout.splitlines()[0]
    assert re.fullmatch(r'wander\s+1\.00\s+"calm ambient pads with soft piano"', first), shown.stdout
    try:
        done = ctl(server, "prompts", "dark techno:3", "rain")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("ok  playing dark techno 3, rain 1"), done.stdout
        shown = ctl(server, "prompts")
        assert shown.returncode == 0, shown.stderr
        weights = {m["name"]: float(m["w"]) for m in re.finditer(r"^(?P<name>.+?)\s+(?P<w>\d\.\d\d)\s", shown.stdout,
                                                                   re.M)}
        assert weights == {"dark techno": 0.75, "rain": 0.25}, shown.stdout  # normalized 3 : 1
        assert fields(ctl(server, "status").stdout)["graph"].startswith("none: direct prompts")
    finally:
        restore_graph(server, ctx)


def test_replies_say_what_was_applied(server: ServeProcess, ctx: zmq.Context[Any]) -> None:
    """The value the runtime applied (clamped, rounded) rather than the one asked, and every warning of its Ok: a
    trigger whose stinger is in its cooldown says so."""
    control = server.control(ctx)
    try:
        done = ctl(server, "set", "danger", "2", "--clamp", "--bypass")
        assert done.returncode == 0, done.stderr
        ok, warning = done.stdout.splitlines()
        assert ok.startswith("ok  danger = 1 (asked 2)"), done.stdout
        assert warning.startswith("warning  clamped: danger 2 is outside [0, 1]; it became 1"), done.stdout
        done = ctl(server, "set", "health", "50.5", "--bypass")  # discrete: rounded
        assert done.returncode == 0 and done.stdout.startswith("ok  health = 51 (asked 50.5)"), done
        assert "warning  rounded: health" in done.stdout, done.stdout
        control.wait_status(lambda st: st.parameters["health"].number == 51, 10, "health 51")
        done = ctl(server, "set", "health", "50", "--json")
        assert json.loads(done.stdout)["ok"] == "health = 50" and isinstance(json.loads(done.stdout)["stream_time"],
                                                                              int), done.stdout
        assert isinstance(json.loads(ctl(server, "status", "--json").stdout)["stream_time"], int)  # as everywhere

        first, second = ctl(server, "trigger", "boss_defeated"), ctl(server, "trigger", "boss_defeated")
        assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
        assert "refused: in cooldown" in second.stdout, second.stdout  # victory's cooldown outlasts one ctl run
        assert re.search(r"^warning  stinger_refused: .*'victory'", second.stdout, re.M), second.stdout
    finally:
        control.ok(set_parameters({"health": 100, "danger": 0, "mode": "explore"}, bypass=True))
        control.wait_status(lambda st: st.weights.get("wander", 0) > 0.99, 15, "wander alone again")
        control.close()


def test_text_from_the_runtime_cannot_drive_the_terminal(server: ServeProcess, ctx: zmq.Context[Any]) -> None:
    """A prompt with escape sequences (any local process may set one): every listing shows them escaped."""
    evil = "dark techno\x1b]0;pwned\x07\x1b[2J\u202e"
    try:
        done = ctl(server, "prompts", f"{evil}:1")
        assert done.returncode == 0, done.stderr
        outputs = [done.stdout]
        for args in (["prompts"], ["status"], ["events", "mix", "--seconds", "1"]):
            run = ctl(server, *args)
            assert run.returncode == 0, run.stderr
            outputs.append(run.stdout)
        for text in outputs:
            assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text, repr(text)
            assert "dark techno\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in text, text
    finally:
        restore_graph(server, ctx)
    one = ctl(server, "trigger", "x" * 120_000)  # a name too long to repeat: shortened, its length said
    line = one_error_line(one, EXIT_REFUSED, "UNKNOWN_NAME", "120,000 characters")
    assert len(line) < 1000, len(line)


def test_errors_with_json_are_a_json_object_on_stdout(server: ServeProcess) -> None:
    done = ctl(server, "set", "dangr", "1", "--json")
    one_error_line(done, EXIT_REFUSED, "UNKNOWN_NAME")
    doc = json.loads(done.stdout)["error"]
    assert doc["code"] == "UNKNOWN_NAME" and doc["exit"] == EXIT_REFUSED and "'dangr'" in doc["message"], doc
    assert doc["field"].startswith("set_parameters.values[0]"), doc
    done = ctl(None, "set", "danger", "nan", "--json")
    assert json.loads(done.stdout)["error"]["exit"] == EXIT_USAGE, done.stdout


def test_a_closed_pipe_and_an_early_ctrl_c_end_quietly(server: ServeProcess) -> None:
    """``ctl status | head -0`` exits 0 (the reader went away: not a refusal); Ctrl-C while ctl is still starting
    is one line "interrupted" (exit 130), never a traceback."""
    proc = subprocess.Popen(ctl_argv(server, "status"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(RUN_TIMEOUT_S) == 0 and "Traceback" not in err, err
    for delay in (0.05, 0.15, 0.3):
        proc = subprocess.Popen(ctl_argv(server, "status"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=child_env())
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, errb = proc.communicate(timeout=RUN_TIMEOUT_S)
        err = errb.decode()
        assert "Traceback" not in err, f"after {delay} s: {err}"
        # interrupted (130, or ended by the signal itself), or it finished first (0)
        assert proc.returncode in (0, 130, -signal.SIGINT), (delay, proc.returncode, err)
        if proc.returncode == 130:
            assert err.strip().endswith("interrupted"), err


# ----------------------------------------------------------------------------- events


class Tail:
    """``cadenza ctl events`` running, its stdout lines collected as they come (a thread reads the pipe)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=child_env())
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[re.Match[str]]:
        matches = [EVENT_LINE.match(line) for line in list(self.lines)]
        bad = [line for line, m in zip(list(self.lines), matches) if m is None]
        assert not bad, f"lines that are no event line: {bad}"
        return [m for m in matches if m is not None]

    def topics(self, topic: str) -> list[re.Match[str]]:
        return [m for m in self.events() if m["topic"] == topic]

    def finish(self, timeout: float = 20) -> tuple[int, str]:
        rc = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        assert self.proc.stderr is not None and self.proc.stdout is not None
        err = self.proc.stderr.read()
        self.proc.stderr.close()
        self.proc.stdout.close()
        return rc, err


def test_events_tails_beats_bars_states_and_stingers(server: ServeProcess, ctx: zmq.Context[Any]) -> None:
    control = server.control(ctx)
    tail = Tail(ctl_argv(server, "events"))
    try:
        wait_until(lambda: len(tail.topics("beat")) >= 2, 20, "two beat lines")
        control.ok(set_parameters({"mode": "combat"}))
        wait_until(lambda: any("→ combat" in m["rest"] for m in tail.topics("state")), 15, "a state line")
        control.ok(pb.Trigger(name="boss_defeated"))
        wait_until(lambda: bool(tail.topics("stinger")), 15, "a stinger line")
        control.ok(pb.SetControls(controls=pb.Controls(temperature=0.5)))  # the synth cannot: a warning event
        wait_until(lambda: any("temperature" in m["rest"] for m in tail.topics("warning")), 15, "a warning line")
        wait_until(lambda: len(tail.topics("bar")) >= 2, 15, "two bar lines")
    finally:
        tail.proc.send_signal(signal.SIGINT)  # Ctrl-C: the normal way to end a tail
        rc, err = tail.finish()
        control.ok(set_parameters({"mode": "explore"}))
        control.ok(pb.SetControls(clear=["temperature"]))
        control.close()
    assert rc == 0, f"exit {rc} after Ctrl-C; stderr: {err}"
    assert "Traceback" not in err and err.startswith("listening to beat, bar, state, stinger, warning, xrun"), err

    beats = tail.topics("beat")
    times = [seconds_of(m["clock"]) for m in beats]
    assert times == sorted(times), "beat lines out of stream order"
    for m in beats:
        assert re.fullmatch(r"beat \d+  bar \d+ beat [1-9]  \d+\.\d bpm( \(estimated\))?", m["rest"]), m[0]
    assert all(re.fullmatch(r"bar \d+  \d+\.\d bpm( \(estimated\))?", m["rest"]) for m in tail.topics("bar"))
    states = [m["rest"] for m in tail.topics("state")]
    assert any(re.fullmatch(r"explore → combat  (scheduled|started|completed)(  \(.*\))?", s) for s in states), states
    assert any(re.fullmatch(r"victory  \(\d+\.\d\d s\)", m["rest"]) for m in tail.topics("stinger"))
    assert not tail.topics("mix") and not tail.topics("status"), "mix/status shown without being asked for"


def test_event_lines_for_xruns_and_mix_in_human_units() -> None:
    """The topics a healthy test runtime rarely sends, formatted from the SDK's event views (no process needed)."""
    from cadenza.runtime.ctl import event_line
    from cadenza.sdk import MixEvent, WarningEvent, XrunEvent

    def text(parts: list[Any]) -> str:
        return "".join(p if isinstance(p, str) else p[0] for p in parts)

    xrun = XrunEvent("xrun", 4, 96_000, 2.0, count=3, frames_lost=960, source="generator")
    assert text(event_line(xrun, 48_000)) == "  0:02.000  xrun     #3  20.0 ms lost  (generator)"
    mix = MixEvent("mix", 9, 4_320_000, 90.0, weights={"battle": 0.25, "heroic": 0.75})
    assert text(event_line(mix, 48_000)) == "  1:30.000  mix      battle 0.25  heroic 0.75"
    refused = WarningEvent("warning", 2, 48_000, 1.0, message="stinger_refused: name=victory, "
                           "remaining=2.6018958333333373", field="victory")
    assert text(event_line(refused, 48_000)).endswith("victory: stinger_refused: name=victory, remaining=2.602")


def test_events_picks_topics_stops_after_seconds_and_prints_json(server: ServeProcess) -> None:
    t0 = time.monotonic()
    done = ctl(server, "events", "mix", "--seconds", "1.5", "--json")
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr
    docs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(docs) >= 3 and {d["topic"] for d in docs} == {"mix"}, done.stdout  # 10 Hz
    assert all("wander" in d["weights"] and d["seconds"] > 0 for d in docs)
    assert took < 1.5 + 15, f"--seconds 1.5 ran {took:.1f} s"


def test_events_asks_the_runtime_where_it_publishes(server: ServeProcess) -> None:
    """Only ``--control`` given (a runtime on other ports): the events endpoint comes from the runtime's Hello."""
    done = subprocess.run([sys.executable, "-m", "cadenza", "ctl", "--control", server.ep.local("control"), "events",
                           "beat", "--seconds", "2.5"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          env=child_env())
    assert done.returncode == 0, done.stderr
    assert f"on {server.ep.local('events')}" in done.stderr, done.stderr
    assert len(re.findall(r"^\s*\d+:\d\d\.\d{3}\s+beat\s", done.stdout, re.M)) >= 2, done.stdout
    # an events endpoint ZeroMQ cannot use is a usage error that names it
    bad = ctl(server, "events", "--events", "tcp://127.0.0.1:notaport")
    one_error_line(bad, EXIT_USAGE, "--events", "notaport")


def test_events_from_a_wrong_endpoint_is_an_error_not_silence(server: ServeProcess) -> None:
    """An events endpoint that is not the runtime's (its control endpoint by mistake, a port nobody binds): no
    event arrives though the runtime publishes (a status every second), so exit 3 saying so within a few seconds,
    with or without ``--seconds``, naming where the runtime does publish."""
    for wrong, extra in ((server.ep.local("control"), ["--seconds", "1"]), (f"tcp://127.0.0.1:{free_ports(1)[0]}", [])):
        t0 = time.monotonic()
        done = subprocess.run([*ctl_argv(None, "--control", server.ep.local("control"), "--events", wrong, "events"),
                               *extra], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=child_env())
        assert done.returncode == EXIT_NO_ANSWER, done.stderr
        assert "Traceback" not in done.stderr and not done.stdout, done
        last = done.stderr.strip().splitlines()[-1]
        assert f"no events arrived from {wrong}" in last and server.ep.local("events") in last, last
        assert "--events" in last and "CADENZA_EVENTS" in last, last
        assert time.monotonic() - t0 < 20, "took too long to notice"


def test_events_says_when_the_runtime_restarted(tmp_path: Path) -> None:
    """A tail across a runtime restart (same endpoints): a line saying a new runtime now publishes, stream time
    starting again; with --json a ``restarted`` object with the new session id."""
    serve = ServeProcess(["--prompt", "ambient drone"], tmp_path)
    with serve:
        text = Tail(ctl_argv(serve, "events", "beat"))
        js = Tail(ctl_argv(serve, "events", "beat", "--json"))
        try:
            wait_until(lambda: len(text.lines) >= 2 and len(js.lines) >= 2, 30, "beats before the restart")
            serve.stop()
            serve.start()
            wait_until(lambda: any(" restart " in line for line in text.lines), 40, "a restart line")
            wait_until(lambda: any('"restarted"' in line for line in js.lines), 20, "a restarted object")
        finally:
            for tail in (text, js):
                tail.proc.send_signal(signal.SIGINT)
                tail.finish()
    line = next(line for line in text.lines if " restart " in line)
    assert re.search(r"the runtime restarted \(session [0-9a-f]{8}\): stream time starts again", line), line
    doc = json.loads(next(line for line in js.lines if '"restarted"' in line))
    assert doc["restarted"] is True and len(doc["session_id"]) >= 8, doc


# ----------------------------------------------------------------------------- no answer, usage


def test_no_runtime_exits_3_saying_where_it_looked() -> None:
    port = free_ports(1)[0]
    endpoint = f"tcp://127.0.0.1:{port}"
    for sub in (["status"], ["set", "danger", "1"], ["events"]):
        t0 = time.monotonic()
        done = ctl(None, "--control", endpoint, "--timeout", "0.5", *sub)
        line = one_error_line(done, EXIT_NO_ANSWER, f"no runtime answered at {endpoint} within 0.5 s",
                              "is `cadenza serve` running?", "--control", "CADENZA_CONTROL")
        assert time.monotonic() - t0 < 15, line
    # the endpoint from the environment is named the same way
    done = ctl(None, "--timeout", "0.3", "status", env={"CADENZA_CONTROL": endpoint})
    one_error_line(done, EXIT_NO_ANSWER, endpoint)


@pytest.mark.parametrize("args, env, needles", [
    ((), {}, ("name a subcommand", "status")),
    (("status",), {"CADENZA_CONTROL": "localhost:5555"}, ("$CADENZA_CONTROL", "'localhost:5555'", "tcp://")),
    (("--control", "127.0.0.1:5555", "status"), {}, ("--control", "'127.0.0.1:5555'")),
    (("--control", "tcp://127.0.0.1:notaport", "status"), {}, ("--control", "notaport")),
    (("events", "beats"), {}, ("unknown topic 'beats'", "beat, bar")),
    (("set", "danger"), {}, ("value",)),
    (("--timeout", "-1", "status"), {}, ("--timeout", "> 0", "'-1'")),
    (("--client-key", "x.key", "status"), {}, ("--client-key", "--server-key")),
    (("--server-key", "not-a-key", "status"), {}, ("--server-key", "'not-a-key'")),
    (("prompts", ":2"), {}, ("empty prompt",)),
    (("prompts", "rain:-1"), {}, ("weight", "'-1'")),
    (("frobnicate",), {}, ("invalid choice", "'frobnicate'")),
    # values and options no runtime could take: refused here, before connecting (nothing listens at the default)
    (("set", "danger", "nan"), {}, ("'nan'", "not a finite number")),
    (("set", "danger", "-inf"), {}, ("'-inf'", "not a finite number")),  # a value, not an unknown option
    (("set", "danger", "1e400"), {}, ("'1e400'", "not a finite number")),
    (("set", "danger", "0.5", "--shape", "sine"), {}, ("--shape", "--ramp")),
    (("set", "mode", "tension", "--ramp", "2"), {}, ("--ramp", "'tension' is a label")),
    (("set", "mode", "tension", "--clamp"), {}, ("--clamp", "'tension' is a label")),
    (("prompts", "dark techno:nan"), {}, ("weight", "'nan'")),
    # endpoints that can never reach a runtime, and a timeout that cannot be waited
    (("--control", "tcp://127.0.0.1:99999", "status"), {}, ("--control", "port 99999 does not exist")),
    (("--control", "inproc://x", "status"), {}, ("--control", "inproc://", "tcp://HOST:PORT")),
    (("--control", "tcp://nosuchhost.invalid:5", "status"), {}, ("'nosuchhost.invalid' does not resolve",)),
    (("--timeout", "0", "status"), {}, ("--timeout", "> 0", "'0'")),
])
def test_usage_errors_exit_2_on_one_line(args: tuple[str, ...], env: dict[str, str], needles: tuple[str, ...]) -> None:
    one_error_line(ctl(None, *args, env=env), EXIT_USAGE, *needles)


def test_a_runtime_without_a_graph(tmp_path: Path) -> None:
    """Nothing loaded yet: describe and set are NOT_READY (exit 1, saying so); status and prompts say what to do."""
    with ServeProcess([], tmp_path) as bare:
        one_error_line(ctl(bare, "describe"), EXIT_REFUSED, "NOT_READY", "cadenza ctl prompts", "--graph")
        one_error_line(ctl(bare, "set", "danger", "1"), EXIT_REFUSED, "NOT_READY")
        done = ctl(bare, "prompts")
        assert done.returncode == 0 and done.stdout.startswith("no prompts playing"), done
        done = ctl(bare, "status")
        assert done.returncode == 0 and fields(done.stdout)["graph"].startswith("none loaded"), done


# ----------------------------------------------------------------------------- CURVE


def test_curve_keys_from_the_files_cadenza_keys_writes(tmp_path: Path) -> None:
    keys, clients = tmp_path / "keys", tmp_path / "clients"
    for name in ("server", "alice"):
        made = subprocess.run([sys.executable, "-m", "cadenza", "keys", str(keys), "--name", name],
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=child_env())
        assert made.returncode == 0, made.stderr
    clients.mkdir()
    shutil.copy(keys / "alice.pub", clients / "alice.pub")
    serve = ServeProcess(["--prompt", "ambient drone", "--curve-secret-key", str(keys / "server.key"),
                          "--curve-clients", str(clients)], tmp_path)
    with serve:
        done = ctl(serve, "--server-key", str(keys / "server.pub"), "--client-key", str(keys / "alice.key"), "status")
        assert done.returncode == 0, done.stderr
        assert "ambient drone" in fields(done.stdout)["weights"], done.stdout
        key_text = (keys / "server.pub").read_text().strip()
        done = ctl(serve, "--server-key", key_text, "--client-key", str(keys / "alice.key"), "prompts")
        assert done.returncode == 0 and "ambient drone" in done.stdout, done.stderr
        # a key pair that is not on the allow-list gets no answer at all (ZAP refuses the handshake)
        done = ctl(serve, "--timeout", "0.5", "--server-key", str(keys / "server.pub"), "status")
        one_error_line(done, EXIT_NO_ANSWER, "no runtime answered", "--server-key", "--client-key")
        # the secret key given as the server's key is refused before anything is sent
        done = ctl(serve, "--server-key", str(keys / "server.key"), "status")
        one_error_line(done, EXIT_USAGE, "--server-key", "secret", "the runtime's NAME.pub")
        # and a public key given where this client's secret one belongs
        done = ctl(serve, "--server-key", str(keys / "server.pub"), "--client-key", str(keys / "alice.pub"), "status")
        one_error_line(done, EXIT_USAGE, "--client-key", "is a public key", "NAME.key")
