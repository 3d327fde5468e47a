"""systemd's notify protocol, against real Unix datagram sockets and a real ``cadenza serve``.

The test plays the service manager: it binds an ``AF_UNIX``/``SOCK_DGRAM``
socket (a path in the test's folder, or an abstract ``@name``), passes it in
``NOTIFY_SOCKET`` (with ``WATCHDOG_USEC``, as systemd does for ``WatchdogSec=``)
and reads what the runtime says:

- READY=1 only once audio flows: a runtime whose generation thread is held
  before its first step (the ``CADENZA_TEST_HANG_FILE`` hook) is bound and
  answers requests, yet says nothing until it is let go; a runtime whose sink
  cannot start never says READY;
- WATCHDOG=1 every half ``WATCHDOG_USEC`` while the stream advances; none
  within 2 s of the generation thread stalling (while the control loop and the
  notify thread live on, a STATUS line saying STALLED), again once it goes on;
- STOPPING=1 at SIGTERM, exit code 0.

The in-process tests drive :class:`Notifier` and :class:`Supervisor` with
counters the test advances itself, against the same real sockets.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from cadenza.runtime import notify
from bench.jack import JackServer
from server_harness import ServeProcess

WATCHDOG_USEC = 1_000_000  # pings every 0.5 s


class Manager:
    """The service manager's end: a bound datagram socket and every message with its arrival time."""

    def __init__(self, address: str) -> None:
        self.address = address  # what goes into NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(notify.socket_address(address))
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def having(self, key: str, since: float = 0.0) -> list[tuple[float, dict[str, str]]]:
        with self._lock:
            return [(t, m) for t, m in self.messages if key in m and t >= since]

    def wait_for(self, key: str, timeout: float, since: float = 0.0) -> tuple[float, dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.having(key, since)
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no {key} within {timeout:g} s; got {self.messages[-8:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    m = Manager(str(tmp_path / "notify"))
    yield m
    m.close()


@pytest.fixture
def abstract_manager() -> Iterator[Manager]:
    m = Manager(f"@cadenza-test-{uuid.uuid4().hex}")
    yield m
    m.close()


# ----------------------------------------------------------------------------- in process


def test_notifier_sends_one_datagram_to_a_path_and_to_an_abstract_socket(manager: Manager,
                                                                         abstract_manager: Manager) -> None:
    for m in (manager, abstract_manager):
        n = notify.Notifier(m.address, log=lambda msg: None)
        assert n.send(READY=1, STATUS="playing\nsecond line")
        _, fields = m.wait_for("READY", 2.0)
        assert fields == {"READY": "1", "STATUS": "playing second line"}  # one line: a newline would split it
        n.close()
        assert not n.send(STOPPING=1)


def test_notifier_never_raises_and_logs_once(tmp_path: Path) -> None:
    logged: list[str] = []
    n = notify.Notifier(str(tmp_path / "nobody-listens"), log=logged.append)
    assert not n.send(READY=1)
    assert not n.send(WATCHDOG=1)
    assert n.failures == 2 and len(logged) == 1
    assert "NOTIFY_SOCKET=" in logged[0] and "nobody-listens" in logged[0]
    n.close()
    with pytest.raises(ValueError, match="neither a socket path"):
        notify.socket_address("vsock:2:1234")


def test_watchdog_interval_is_half_and_honours_watchdog_pid() -> None:
    logged: list[str] = []
    assert notify.watchdog_interval({"WATCHDOG_USEC": "3000000"}, log=logged.append) == 1.5
    assert notify.watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())},
                                    log=logged.append) == 1.5
    assert notify.watchdog_interval({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid() + 1)},
                                    log=logged.append) is None  # another process is watched
    assert notify.watchdog_interval({}, log=logged.append) is None
    assert not logged
    assert notify.watchdog_interval({"WATCHDOG_USEC": "soon"}, log=logged.append) is None
    assert "WATCHDOG_USEC='soon'" in logged[0]


def test_supervise_without_notify_socket_does_nothing() -> None:
    env = {"WATCHDOG_USEC": "1000000", "OTHER": "x"}
    assert notify.supervise(progress=dict, audio_flowing=lambda: True, status=str, log=print, environ=env) is None
    assert env == {"OTHER": "x"}


def test_supervisor_ready_after_audio_pings_only_on_progress(manager: Manager) -> None:
    counters = {"generation thread": 0, "control loop": 0}
    flowing = threading.Event()
    env = {"NOTIFY_SOCKET": manager.address, "WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}
    sup = notify.supervise(progress=lambda: dict(counters), audio_flowing=flowing.is_set,
                           status=lambda: f"stream {counters['generation thread']}", log=lambda m: None,
                           environ=env)
    assert sup is not None and env == {}  # read once, then gone (children never speak for us)
    time.sleep(0.3)
    assert manager.messages == []  # no audio yet: not ready, no pings
    flowing.set()
    manager.wait_for("READY", 2.0)

    def advance(seconds: float, which: tuple[str, ...]) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for k in which:
                counters[k] += 1
            time.sleep(0.01)

    t0 = time.monotonic()
    advance(1.0, ("generation thread", "control loop"))
    assert len(manager.having("WATCHDOG", t0)) >= 3  # every 0.1 s: about 10

    t_stall = time.monotonic()
    advance(1.2, ("control loop",))  # the generation thread stalls, the control loop lives
    late = [t for t, _ in manager.having("WATCHDOG", t_stall + 0.5)]
    assert late == [], f"pings {[round(t - t_stall, 2) for t in late]} s after the stall"
    stalled = [m["STATUS"] for _, m in manager.having("STATUS", t_stall) if "STALLED" in m["STATUS"]]
    assert stalled and stalled[-1].startswith("STALLED: no progress of the generation thread for"), stalled
    assert "control loop" not in stalled[-1]

    t_go = time.monotonic()
    advance(0.5, ("generation thread", "control loop"))
    assert manager.having("WATCHDOG", t_go)

    sup.stopping("stopping on request")
    _, fields = manager.wait_for("STOPPING", 2.0)
    assert fields["STATUS"] == "stopping on request"
    sup.stopping()  # twice: nothing more, no error
    assert len(manager.having("STOPPING")) == 1


# ----------------------------------------------------------------------------- a real runtime


def _serve(tmp_path: Path, manager: Manager, *, watchdog: bool, hang: Path | None = None,
           sink: str = "null") -> ServeProcess:
    env = {"NOTIFY_SOCKET": manager.address}
    if watchdog:
        env["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    if hang is not None:
        env[notify.HANG_FILE_ENV] = str(hang)
    return ServeProcess(["--prompt", "ambient pads"], tmp_path, sink=sink, env=env)


def test_serve_ready_after_first_audio_watchdog_stops_when_generation_stalls(tmp_path: Path,
                                                                             manager: Manager) -> None:
    hang = tmp_path / "hang"
    hang.touch()  # the generation thread is held before its first step
    server = _serve(tmp_path, manager, watchdog=True, hang=hang)
    ctx = zmq.Context()
    try:
        server.start()
        control = server.control(ctx)
        # bound and answering, but no audio yet: nothing said
        st = control.status()
        time.sleep(1.0)
        assert control.status().stream_time == st.stream_time == 0
        assert manager.having("READY") == [] and manager.having("WATCHDOG") == [], manager.messages

        audio = server.audio(ctx)
        time.sleep(0.3)  # the SUB's subscription reaches the PUB
        t_go = time.monotonic()
        hang.unlink()
        chunk = audio.recv_audio(10.0)
        assert chunk is not None, "no audio after the generation thread went on"
        t_ready, ready = manager.wait_for("READY", 10.0)
        assert t_ready > t_go
        assert ready["STATUS"].startswith("playing prompts (no graph), stream "), ready

        # pings every 0.5 s while the stream advances
        time.sleep(3.0)
        pings = [t for t, _ in manager.having("WATCHDOG", t_ready)]
        assert len(pings) >= 3, f"{len(pings)} pings in {time.monotonic() - t_ready:.1f} s"

        # the generation thread stalls: the pings stop within 2 s, the control loop still answers
        frames_before = control.status().stream_time
        t_stall = time.monotonic()
        hang.touch()
        time.sleep(3.5)
        after = [round(t - t_stall, 2) for t, _ in manager.having("WATCHDOG", t_stall)]
        assert all(dt <= 2.0 for dt in after), f"pings {after} s after the stall"
        assert not manager.having("WATCHDOG", t_stall + 2.0)
        st = control.status()  # answered while the generation thread hangs
        assert st.stream_time - frames_before < 48_000, "the stream went on: the hook did not stall it"
        stalled = [m["STATUS"] for _, m in manager.having("STATUS", t_stall) if "STALLED" in m["STATUS"]]
        assert stalled and "generation thread" in stalled[-1] and "watchdog pings withheld" in stalled[-1]

        # let go: pings again
        t_resume = time.monotonic()
        hang.unlink()
        manager.wait_for("WATCHDOG", 3.0, since=t_resume)

        rc, _ = server.stop()
        assert rc == 0, server.stderr_text
        _, stopping = manager.wait_for("STOPPING", 2.0)
        assert stopping["STATUS"] == "stopping"
        assert len(manager.having("READY")) == 1
        assert "no progress of the generation thread" in server.stderr_text  # one log line per stall
    finally:
        server.kill()
        ctx.destroy(0)


def test_serve_on_an_abstract_socket_without_watchdog(tmp_path: Path, abstract_manager: Manager) -> None:
    server = _serve(tmp_path, abstract_manager, watchdog=False)
    try:
        server.start()
        abstract_manager.wait_for("READY", 10.0)
        rc, _ = server.stop()
        assert rc == 0, server.stderr_text
        abstract_manager.wait_for("STOPPING", 2.0)
        assert abstract_manager.having("WATCHDOG") == []  # no WatchdogSec: no pings
    finally:
        server.kill()


def test_serve_whose_sink_cannot_start_is_never_ready(tmp_path: Path, manager: Manager) -> None:
    server = _serve(tmp_path, manager, watchdog=True, sink=f"wav:{tmp_path / 'missing' / 'out.wav'}")
    server.launch()
    rc = server.wait(30.0)
    assert rc != 0
    assert "cannot write audio file" in server.stderr_text
    time.sleep(0.2)
    assert manager.having("READY") == []


def test_watchdog_abort_writes_where_generation_hangs(tmp_path: Path, manager: Manager) -> None:
    """What the journal shows when systemd's watchdog fires (SIGABRT) with the unit's PYTHONFAULTHANDLER=1."""
    hang = tmp_path / "hang"
    hang.touch()
    server = _serve(tmp_path, manager, watchdog=True, hang=hang)
    server.env = {**(server.env or {}), "PYTHONFAULTHANDLER": "1"}
    try:
        server.start()
        time.sleep(0.5)  # the generation thread is in the hook by now (it is its first call)
        rc, _ = server.stop(signal.SIGABRT)
        assert rc == -signal.SIGABRT
        assert "in hang_hook" in server.stderr_text, server.stderr_text
        assert manager.having("READY") == []
    finally:
        server.kill()


def test_serve_into_a_jack_device_is_ready_once_the_device_plays(
        tmp_path: Path, manager: Manager, private_jack: Callable[..., JackServer]) -> None:
    """With a sound card the first block in the ring is not enough: READY waits until the device has played."""
    jack = private_jack(realtime=False)
    server = _serve(tmp_path, manager, watchdog=True, sink="jack")
    server.env = {**jack.env, **(server.env or {})}
    try:
        server.start()
        _, ready = manager.wait_for("READY", 20.0)
        assert ready["STATUS"].startswith("playing prompts (no graph)"), ready
        manager.wait_for("WATCHDOG", 5.0)
        rc, _ = server.stop()
        assert rc == 0, server.stderr_text
        manager.wait_for("STOPPING", 2.0)
    finally:
        server.kill()
