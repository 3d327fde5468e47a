"""Shared test fixtures, and the gate for tests that need a real audio device.

Tests marked ``@pytest.mark.audio_device`` get the session fixture
``audio_output``: the device selector (``"jack"``, or ``None`` for the default
device) a :class:`DeviceSink` should open. It prefers a JACK server, because a
JACK dummy server clocks audio like a sound card without making any noise:

1. a JACK server that is already running is used as is;
2. otherwise, if ``jackd`` is installed, a dummy server
   (``jackd --no-realtime -d dummy -r 48000 -p 960``) is started for the
   session and stopped at its end;
3. otherwise PortAudio's default output device, if it has one.

When none of these gives a device the test is skipped on a developer machine,
but fails when ``CADENZA_REQUIRE_AUDIO=1`` (CI sets it), so CI can never pass by
skipping the audio tests.

Fault tests that kill, restart or load an audio server get one of their own
from the ``private_jack`` fixture: a factory of :class:`JackServer`, a JACK
dummy server under a name of its own (``jackd -n NAME``), which a runtime
reaches through ``JACK_DEFAULT_SERVER`` in ``server.env`` — no other test's
server is touched. It skips/fails like ``audio_output`` when ``jackd`` is
missing.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

SAMPLE_RATE = 48_000
JACKD_ARGS = ["--no-realtime", "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", "960"]
JACK_START_TIMEOUT = 15.0


def _require_audio() -> bool:
    return os.environ.get("CADENZA_REQUIRE_AUDIO", "") == "1"


def _no_audio(reason: str) -> None:
    """Skip, or fail when CI demands a real audio device."""
    if _require_audio():
        pytest.fail(f"{reason} (CADENZA_REQUIRE_AUDIO=1 requires an audio device)", pytrace=False)
    pytest.skip(reason)


def _jack_env() -> dict[str, str]:
    env = dict(os.environ)
    env["JACK_NO_START_SERVER"] = "1"  # probing must not auto-start a server
    env["JACK_NO_AUDIO_RESERVATION"] = "1"  # no D-Bus device reservation (headless CI)
    return env


def _jack_running() -> bool:
    jack_lsp = shutil.which("jack_lsp")
    if jack_lsp is None:
        return False
    try:
        done = subprocess.run(
            [jack_lsp], env=_jack_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bool]:
    """True when a JACK server runs for this session (started here if needed)."""
    if _jack_running():
        yield True
        return
    jackd = shutil.which("jackd")
    if jackd is None:
        yield False
        return
    log_path: Path = tmp_path_factory.mktemp("jackd") / "jackd.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [jackd, *JACKD_ARGS], env=_jack_env(), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + JACK_START_TIMEOUT
        while not _jack_running():
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log_path.read_text(errors="replace").strip()
                _no_audio(f"could not start `jackd {' '.join(JACKD_ARGS)}`: {text[-2000:]}")
            time.sleep(0.1)
        yield True
    finally:
        # PortAudio holds a JACK client and aborts the process at exit if the
        # server is gone first: let it go before stopping the server.
        if "sounddevice" in sys.modules:
            from cadenza.runtime.sinks.portaudio import release_portaudio

            release_portaudio()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def audio_output(jack_server: bool) -> str | None:
    """The device selector for a real output device, or skip/fail when none."""
    from cadenza.errors import AudioError
    from cadenza.runtime.sinks import portaudio as device_mod

    problem = ""
    try:
        if jack_server and "sounddevice" in sys.modules:
            # PortAudio lists devices once, at initialisation; the server may be newer.
            device_mod.rescan_devices()
        if jack_server:
            try:
                device_mod.find_output_device("jack")
                return "jack"
            except AudioError:
                pass  # PortAudio without JACK support: try the default device
        device_mod.find_output_device(None)
        return None
    except AudioError as exc:
        problem = str(exc)
    if not jack_server and shutil.which("jackd") is None:
        problem += " (jackd is not installed either: `apt install jackd2` lets the tests start a dummy JACK server)"
    _no_audio(f"no audio output device: {problem}")
    return None  # unreachable: _no_audio raises


@pytest.fixture(autouse=True)
def _audio_device_gate(request: pytest.FixtureRequest) -> None:
    """Give every ``audio_device`` test its device (or skip/fail it)."""
    if request.node.get_closest_marker("audio_device") is not None:
        request.getfixturevalue("audio_output")


def _sine(frames: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(frames, dtype=np.float64) / SAMPLE_RATE
    left = amplitude * np.sin(2 * np.pi * freq * t)
    right = amplitude * np.cos(2 * np.pi * freq * t)  # a quarter period ahead
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.fixture
def make_sine() -> Callable[..., np.ndarray]:
    """``make_sine(frames, freq=440.0, amplitude=0.5)``: a stereo float32 ``(frames, 2)`` sine at 48 kHz."""
    return _sine


# ----------------------------------------------------------------------------- a JACK server of a test's own

_jack_names = itertools.count()


class JackServer:
    """A JACK dummy server of one test's own: ``jackd -n NAME -d dummy -r 48000 -p 960``.

    ``realtime=True`` runs it with ``-R`` (SCHED_FIFO, as a production JACK
    server runs, which also makes its clients' process threads real-time); when
    the system refuses real-time scheduling it runs ``--no-realtime`` and
    ``self.realtime`` says so. ``env`` is what a process needs to use this
    server (and never start one). ``kill()`` and ``start()`` again restart it
    under the same name.
    """

    def __init__(self, workdir: Path, *, realtime: bool = True) -> None:
        self.name = f"cadenza-test-{os.getpid()}-{next(_jack_names)}"
        self.workdir = workdir
        self.want_realtime = realtime
        self.realtime = False
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.env = _jack_env()
        self.env["JACK_DEFAULT_SERVER"] = self.name

    def _argv(self, realtime: bool) -> list[str]:
        jackd = shutil.which("jackd") or "jackd"
        mode = ["-R", "-P", "70"] if realtime else ["--no-realtime"]
        return [jackd, "-n", self.name, *mode, "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", "960"]

    def running(self) -> bool:
        try:
            done = subprocess.run(["jack_lsp"], env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    def start(self) -> JackServer:
        """Start (or restart) the server; returns once ``jack_lsp`` sees it."""
        tries = [True, False] if self.want_realtime else [False]
        log_text = ""
        for realtime in tries:
            self.starts += 1
            log_path = self.workdir / f"jackd-{self.name}-{self.starts}.log"
            with open(log_path, "wb") as log:
                self.proc = subprocess.Popen(self._argv(realtime), env=self.env, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + JACK_START_TIMEOUT
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self.running():
                    self.realtime = realtime
                    return self
                time.sleep(0.05)
            self.stop()
            log_text = log_path.read_text(errors="replace").strip()
        _no_audio(f"could not start `{' '.join(self._argv(tries[-1]))}`: {log_text[-2000:]}")
        return self  # unreachable: _no_audio raises

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (SIGKILL: the server dies as in a crash) and wait for the process to end."""
        assert self.proc is not None and self.proc.poll() is None, "the JACK server is not running"
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)

    def ports(self) -> list[str]:
        """Every port on this server (``jack_lsp``)."""
        out = subprocess.run(["jack_lsp"], env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=10).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def private_jack(tmp_path: Path) -> Iterator[Callable[..., JackServer]]:
    """``private_jack(realtime=True)``: start a :class:`JackServer` of this test's own (stopped at the end).

    Real-time by default, as a production JACK server runs: its clock and its
    clients' process threads then keep time whatever else loads the machine
    (other tests, other processes), so a fault test measures its own fault.
    """
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        _no_audio("jackd is not installed (`apt install jackd2`): no JACK server for this fault test")
    servers: list[JackServer] = []

    def make(realtime: bool = True) -> JackServer:
        server = JackServer(tmp_path, realtime=realtime)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()
