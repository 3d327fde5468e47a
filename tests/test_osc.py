"""The OSC bridge: ``cadenza osc`` between python-osc senders and a real ``cadenza serve``.

The integration tests run both as real processes on free loopback ports, send
OSC with python-osc's ``SimpleUDPClient`` and read the runtime's parameters
back through the SDK client (``GetStatus``). The bridge's counters come from
the line it prints at exit. The unit tests drive :class:`Bridge` with a
recording target.
"""

from __future__ import annotations

import math
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pythonosc")
from pythonosc.udp_client import SimpleUDPClient  # noqa: E402

from cadenza.runtime.osc import Bridge, BridgeStats, check_listen, parse_listen  # noqa: E402
from cadenza.sdk.client import Client  # noqa: E402
from cadenza.sdk.errors import BadValue, RequestTimeout, ServerError, UnknownName  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
INSTALLATION = REPO / "examples" / "installation" / "graph.yaml"
START_TIMEOUT_S = 90.0
SUMMARY = re.compile(r"cadenza osc: (\d+) messages, (\d+) parameter updates -> (\d+) SetParameters \((\d+) values\), "
                     r"(\d+) triggers, (\d+) states, (\d+) refused")


# --------------------------------------------------------------------------- processes


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Proc:
    """A ``python -m cadenza …`` child with stdout/stderr in files (a full pipe can never block it)."""

    def __init__(self, args: list[str], folder: Path, name: str) -> None:
        self.out = folder / f"{name}.out"
        self.err = folder / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "cadenza", *args], stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.stdout)
            if m is not None:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"no {pattern!r} from {self.proc.args!r}: rc={self.proc.returncode}\n"
                             f"stdout: {self.stdout}\nstderr: {self.stderr}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@dataclass
class Runtime:
    control: str
    events: str
    proc: Proc

    def status_params(self) -> dict[str, Any]:
        with Client(self.control, self.events, heartbeat=0) as client:
            return dict(client.status().parameters)


@dataclass
class OscBridge:
    port: int
    proc: Proc

    def sender(self) -> SimpleUDPClient:
        return SimpleUDPClient("127.0.0.1", self.port)

    def stop(self) -> BridgeStats:
        rc = self.proc.stop()
        assert rc == 0, f"the bridge exited with {rc}: {self.proc.stderr}"
        m = SUMMARY.search(self.proc.stdout)
        assert m is not None, f"no counters line in {self.proc.stdout!r}"
        n = [int(g) for g in m.groups()]
        return BridgeStats(messages=n[0], parameter_updates=n[1], set_requests=n[2], values_sent=n[3], triggers=n[4],
                           states=n[5], refused=n[6])


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    control, events = (f"tcp://127.0.0.1:{p}" for p in _free_ports(2))
    proc = Proc(["serve", "--sink", "null", "--graph", str(INSTALLATION), "--control", control, "--events", events,
                 "--audio", "none"], tmp_path, "serve")
    try:
        proc.wait_for(r"cadenza serve: ready")
        yield Runtime(control, events, proc)
    finally:
        proc.stop()


@pytest.fixture
def bridge(runtime: Runtime, tmp_path: Path) -> Iterator[OscBridge]:
    proc = Proc(["osc", "--listen", "127.0.0.1:0", "--control", runtime.control, "--events", runtime.events],
                tmp_path, "osc")
    try:
        m = proc.wait_for(r"listening on 127\.0\.0\.1:(\d+)")
        yield OscBridge(int(m.group(1)), proc)
    finally:
        proc.stop()


def _close(sender: SimpleUDPClient) -> None:
    closer = getattr(sender, "close", None)
    if closer is not None:
        closer()
    else:  # older python-osc: close the socket itself
        sender._sock.close()


def wait_until(check: Callable[[], bool], timeout: float, poke: Callable[[], None] | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poke is not None:
            poke()
        if check():
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- integration


def test_parameters_reach_the_runtime(runtime: Runtime, bridge: OscBridge) -> None:
    sender = bridge.sender()
    try:
        def poke() -> None:  # a sensor streams: 60 Hz for the 0.1 s between checks
            for _ in range(6):
                sender.send_message("/cadenza/param/pos_x", 0.95)
                sender.send_message("/cadenza/param/pos_y", 0.1)
                sender.send_message("/cadenza/param/light", 800)  # an int, as an Arduino sends it
                time.sleep(1 / 60)

        params: dict[str, Any] = {}

        def moved() -> bool:
            params.update(runtime.status_params())
            return float(params["pos_x"]) > 0.85 and float(params["pos_y"]) < 0.2 and float(params["light"]) > 400

        assert wait_until(moved, 20.0, poke), f"parameters did not follow the OSC input: {params}"
    finally:
        _close(sender)
    stats = bridge.stop()
    assert stats.refused == 0, bridge.proc.stderr
    assert stats.parameter_updates == stats.messages
    assert 0 < stats.set_requests < stats.parameter_updates


def test_bad_input_never_crashes_the_bridge(runtime: Runtime, bridge: OscBridge) -> None:
    sender = bridge.sender()
    raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        def poke() -> None:
            # garbage in the same control periods as a good value: the good value must still get through
            for _ in range(5):
                sender.send_message("/cadenza/param/nope", 1.0)  # unknown parameter
                sender.send_message("/cadenza/param/motion", math.nan)  # NaN
                sender.send_message("/cadenza/param/light", 5000.0)  # outside [0, 1000]: clamped, not refused
                sender.send_message("/cadenza/param/pos_x", [0.1, 0.2])  # two values
                sender.send_message("/cadenza/trigger/boom", [])  # the graph has no triggers
                sender.send_message("/cadenza/state", "void")  # nor states
                sender.send_message("/elsewhere", 1)
                raw.sendto(b"\x00garbage that is not OSC\xff", ("127.0.0.1", bridge.port))
                sender.send_message("/cadenza/param/pos_y", 0.9)
                time.sleep(0.02)

        assert wait_until(lambda: float(runtime.status_params()["pos_y"]) > 0.8, 20.0, poke), (
            f"a good value next to bad ones did not arrive; bridge stderr:\n{bridge.proc.stderr}")
        assert bridge.proc.proc.poll() is None, "the bridge died"
    finally:
        raw.close()
        _close(sender)
    stats = bridge.stop()
    log = bridge.proc.stderr.splitlines()
    assert "Traceback" not in bridge.proc.stderr
    for what in ("/cadenza/param/nope", "/cadenza/param/motion", "/cadenza/param/pos_x", "/cadenza/param/light",
                 "/cadenza/trigger/boom", "/cadenza/state void", "/elsewhere"):
        # one line per (address, kind) in 5 s, then one "… and N more like it"
        lines = [line for line in log if line.startswith(f"cadenza osc: {what}:") and "more like it" not in line]
        assert len(lines) == 1, f"{what}: expected one log line, got {lines}\n" + "\n".join(log)
    assert "clamped to 1000" in next(line for line in log if "/cadenza/param/light" in line)
    assert "no parameter 'nope'" in bridge.proc.stderr
    assert "nan" in next(line for line in log if "/cadenza/param/motion" in line)
    assert stats.refused >= 5 * 5
    assert stats.set_requests > 0


def test_updates_within_a_period_are_coalesced(runtime: Runtime, bridge: OscBridge) -> None:
    """1,000 messages in one second (four sensors at 250 Hz) → about one SetParameters per 10 ms period."""
    sender = bridge.sender()
    names = ("motion", "presence", "pos_x", "pos_y")
    n = 1000
    try:
        t0 = time.perf_counter()
        for i in range(n):
            sender.send_message(f"/cadenza/param/{names[i % 4]}", 0.25 + 0.5 * ((i // 4) % 2))
            while time.perf_counter() < t0 + (i + 1) / n:
                pass
        sent_s = time.perf_counter() - t0
        time.sleep(0.3)  # the last period flushes
    finally:
        _close(sender)
    stats = bridge.stop()
    print(f"\n{n} OSC messages in {sent_s:.2f} s -> {stats.set_requests} SetParameters carrying "
          f"{stats.values_sent} values ({stats.parameter_updates / max(stats.set_requests, 1):.1f} updates each)")
    assert stats.parameter_updates == n, "UDP on loopback lost messages, or the bridge did"
    assert stats.refused == 0, bridge.proc.stderr
    # one request per 10 ms period at most (plus slack for the period grid and a slow start)
    assert stats.set_requests <= 1.3 * sent_s / 0.010 + 5
    assert stats.set_requests <= n / 5
    assert stats.values_sent <= 4 * stats.set_requests


def test_refuses_a_non_loopback_address_without_insecure(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cadenza", "osc", "--listen", "0.0.0.0:0"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--insecure" in lines[0] and "Traceback" not in done.stderr, done.stderr


# --------------------------------------------------------------------------- unit


class Recorder:
    """A target that records requests; ``refuse`` maps names to the error the runtime would answer."""

    def __init__(self, refuse: dict[str, type[ServerError]] | None = None, down: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse = refuse or {}
        self.down = down

    def set_many(self, values: Any, clamp: bool = False) -> None:
        if self.down:
            raise RequestTimeout("no reply", request="set_parameters", timeout=0.1)
        for i, name in enumerate(values):
            if name in self.refuse:
                kind = self.refuse[name]
                code = "UNKNOWN_NAME" if kind is UnknownName else "BAD_VALUE"
                raise kind(code, f"refused {name!r}", field=f"set_parameters.values[{i}].name")
        self.calls.append(("set_many", dict(values)))

    def trigger(self, name: str) -> None:
        if name in self.refuse:
            raise UnknownName("UNKNOWN_NAME", f"unknown trigger {name!r}", field="trigger.name")
        self.calls.append(("trigger", name))

    def set_state(self, name: str) -> None:
        self.calls.append(("state", name))


def _bridge(target: Recorder) -> tuple[Bridge, list[str]]:
    lines: list[str] = []
    return Bridge(target, log=lines.append), lines


def test_one_period_is_one_set_many_with_the_latest_values() -> None:
    target = Recorder()
    bridge, lines = _bridge(target)
    for i in range(100):
        bridge.handle("/cadenza/param/a", float(i))
        bridge.handle("/cadenza/param/b", i)
    bridge.handle("/cadenza/param/mode", "combat")
    bridge.handle("/cadenza/param/flag", True)
    bridge.handle("/cadenza/trigger/hit")
    bridge.handle("/cadenza/trigger/hit", 0.0)  # a button's release: not a second hit
    bridge.handle("/cadenza/state", "calm")
    bridge.handle("/cadenza/state/storm")
    bridge.flush()
    assert target.calls == [("set_many", {"a": 99.0, "b": 99.0, "mode": "combat", "flag": 1.0}),
                            ("trigger", "hit"), ("state", "calm"), ("state", "storm")]
    bridge.flush()  # nothing new: nothing sent
    assert len(target.calls) == 4
    assert bridge.stats.set_requests == 1 and bridge.stats.parameter_updates == 202 and not lines


def test_a_refused_name_does_not_take_the_batch_down() -> None:
    target = Recorder(refuse={"nope": UnknownName, "loud": BadValue, "boom": UnknownName})
    bridge, lines = _bridge(target)
    for _ in range(3):
        for name in ("a", "nope", "loud", "b"):
            bridge.handle(f"/cadenza/param/{name}", 0.5)
        bridge.handle("/cadenza/param/c", math.inf)
        bridge.handle("/cadenza/trigger/boom")
        bridge.flush()
    assert [c for c in target.calls if c[0] == "set_many"] == [("set_many", {"a": 0.5, "b": 0.5})] * 3
    assert len([line for line in lines if "nope" in line]) == 1
    assert len([line for line in lines if "loud" in line]) == 1
    assert len([line for line in lines if "/cadenza/param/c" in line]) == 1
    assert len([line for line in lines if "boom" in line]) == 1
    assert len(lines) == 4, lines


def test_a_runtime_that_does_not_answer_is_logged_once() -> None:
    target = Recorder(down=True)
    bridge, lines = _bridge(target)
    for _ in range(5):
        bridge.handle("/cadenza/param/a", 0.1)
        bridge.flush()
    assert len(lines) == 1 and "not sent" in lines[0]
    assert bridge.stats.refused == 5


@pytest.mark.parametrize("address, args", [
    ("/cadenza/param/", (1.0,)), ("/cadenza/param/a", ()), ("/cadenza/param/a", (b"blob",)),
    ("/cadenza/state", ()), ("/cadenza/state", (1.0,)), ("/cadenza/trigger/", ()), ("/cadenza/what/x", (1,)),
    ("/other", ()),
])
def test_malformed_messages_are_refused_with_one_line(address: str, args: tuple[Any, ...]) -> None:
    target = Recorder()
    bridge, lines = _bridge(target)
    bridge.handle(address, *args)
    bridge.handle(address, *args)
    bridge.flush()
    assert target.calls == []
    assert len(lines) == 1 and lines[0].startswith(address), lines
    assert bridge.stats.refused == 2


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9000") == ("127.0.0.1", 9000)
    assert parse_listen("[::1]:9001") == ("::1", 9001)
    assert parse_listen(":9002") == ("127.0.0.1", 9002)
    for bad in ("9000", "host:port", "127.0.0.1:70000"):
        with pytest.raises(Exception, match="--listen"):
            parse_listen(bad)
    check_listen("127.0.0.1", False)
    check_listen("localhost", False)
    check_listen("0.0.0.0", True)
    with pytest.raises(Exception, match="--insecure"):
        check_listen("0.0.0.0", False)
    with pytest.raises(Exception, match="--insecure"):
        check_listen("192.168.1.20", False)


def test_the_endpoints_default_to_the_environment_as_for_ctl_and_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cadenza osc`` without --control/--events takes $CADENZA_CONTROL/$CADENZA_EVENTS (cadenza.endpoints, read when
    it runs), as the SDK and ``cadenza ctl`` do; its help says so. The installation README's steps on other ports
    run end to end in test_examples.py."""
    done = subprocess.run([sys.executable, "-m", "cadenza", "osc", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "$CADENZA_CONTROL" in done.stdout and "$CADENZA_EVENTS" in done.stdout, done
    from cadenza.endpoints import default_endpoint, endpoint_source

    monkeypatch.setenv("CADENZA_CONTROL", "tcp://127.0.0.1:6555")
    monkeypatch.delenv("CADENZA_EVENTS", raising=False)
    assert endpoint_source("control") == ("tcp://127.0.0.1:6555", "$CADENZA_CONTROL")
    assert endpoint_source("events") == ("tcp://127.0.0.1:5556", "the default")
    assert default_endpoint("control") == "tcp://127.0.0.1:6555"
