"""A JACK dummy server started by this process, for the tests, the benchmarks and the soak: the one place that
starts, restarts, kills and stops ``jackd``.

``jackd --no-realtime -d dummy -r 48000 -p 960`` clocks audio like a sound
card without making a sound (the same server CI and the tests use). A server
is started under a name of its own (``jackd -n NAME``) and its clients reach
it through ``JACK_DEFAULT_SERVER=NAME`` in their environment (:attr:`JackServer.env`),
so a test that stops or kills *its* JACK server (the fault-injection tests do)
cannot take another test's or the benchmark's device away, and nothing stops a
server it did not start; ``JackServer(..., default=True)`` starts the
unnamed default server instead (the tests' session server, for PortAudio
clients that know no name). Each start logs to ``WORKDIR/jackd-NAME-N.log``;
:meth:`JackServer.xruns` counts the xruns the server itself reported there (a
client that did not finish its period in time), which is a different figure
from the runtime's own xruns (its device ring ran dry).

Imported as ``bench.jack`` by the benchmarks and by ``tests/conftest.py``
(pytest puts the repository root on ``sys.path``: ``pythonpath`` in
pyproject.toml). It needs only the standard library.
"""

from __future__ import annotations

import ctypes.util
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SAMPLE_RATE = 48_000
PERIOD = 960
START_TIMEOUT_S = 15.0

_names = itertools.count()


#: The system packages (Debian/Ubuntu names) a runtime playing into a JACK dummy server needs.
JACK_PACKAGES = ("jackd2", "libportaudio2")


def portaudio_found() -> bool:
    """Whether the PortAudio library is installed, looked up the way ``sounddevice`` looks it up (without loading
    it: loading PortAudio in the benchmark's own process would register a JACK client)."""
    return ctypes.util.find_library("portaudio") is not None


def missing_packages() -> list[str]:
    """The packages of :data:`JACK_PACKAGES` this machine lacks: ``jackd2`` without ``jackd``/``jack_lsp`` on
    the PATH, ``libportaudio2`` without the PortAudio library. Empty when a JACK row can run."""
    missing = []
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        missing.append("jackd2")
    if not portaudio_found():
        missing.append("libportaudio2")
    return missing


def install_hint(missing: list[str]) -> str:
    """``missing`` packages → what to run, e.g. ``sudo apt install jackd2 libportaudio2`` (Fedora, macOS too)."""
    fedora = {"jackd2": "jack-audio-connection-kit", "libportaudio2": "portaudio"}
    brew = {"jackd2": "jack", "libportaudio2": "portaudio"}
    return (f"sudo apt install {' '.join(missing)} (Debian/Ubuntu; Fedora: sudo dnf install "
            f"{' '.join(fedora[m] for m in missing)}; macOS: brew install {' '.join(brew[m] for m in missing)})")


class JackStartError(RuntimeError):
    """``jackd`` did not come up; the message holds its command line and the end of its log."""


def niceness(nice: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that changes the child's niceness by ``nice`` (negative: higher priority, needs root or
    an audio group's limits, as an installation's audio processes have); None for 0 (the tests' case: they
    never use ``preexec_fn``)."""
    if nice == 0:
        return None

    def renice() -> None:
        os.nice(nice)

    return renice


def jack_env(name: str | None) -> dict[str, str]:
    """The environment a JACK client of server ``name`` (None: the default server) runs with."""
    env = dict(os.environ)
    env["JACK_NO_START_SERVER"] = "1"  # never auto-start a server
    env["JACK_NO_AUDIO_RESERVATION"] = "1"  # no D-Bus device reservation (headless machines)
    if name is not None:
        env["JACK_DEFAULT_SERVER"] = name
    else:
        env.pop("JACK_DEFAULT_SERVER", None)
    return env


def running(name: str | None) -> bool:
    """Whether JACK server ``name`` (None: the default server) answers ``jack_lsp``."""
    lsp = shutil.which("jack_lsp")
    if lsp is None:
        return False
    try:
        return subprocess.run([lsp], env=jack_env(name), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class JackServer:
    """A dummy JACK server of this process's own: ``with JackServer(workdir) as jack:`` → ``jack.env`` for its
    clients.

    ``realtime=True`` runs it with ``-R`` (SCHED_FIFO, as a production JACK
    server runs, which also makes its clients' process threads real-time), at
    ``rt_priority`` when given; with ``fallback`` a system that refuses
    real-time scheduling gets a ``--no-realtime`` server instead, and
    :attr:`realtime` says which ran. ``nice`` changes the server's niceness
    (bench only). :meth:`kill` and :meth:`start` again restart it under the
    same name. :meth:`available` says whether ``jackd`` is installed at all;
    :meth:`start` raises :class:`JackStartError` with the server's log when it
    does not come up.
    """

    def __init__(self, workdir: Path, *, name: str | None = None, default: bool = False, realtime: bool = False,
                 rt_priority: int | None = None, fallback: bool = False, nice: int = 0, period: int = PERIOD) -> None:
        self.default = default
        self.period = period  # frames per JACK cycle (-p); MIDI moves once a cycle, so MIDI timing wants a small one
        self.name = "default" if default else (name or f"cadenza-{os.getpid()}-{next(_names)}")
        self.workdir = Path(workdir)
        self.want_realtime = realtime
        self.rt_priority = rt_priority
        self.fallback = fallback
        self.nice = nice
        self.realtime = False  # whether the running server is real-time
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = self.workdir / f"jackd-{self.name}-0.log"  # the latest start's log

    @staticmethod
    def available() -> bool:
        return shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None

    @property
    def env(self) -> dict[str, str]:
        """The environment of a client of this server (and never of a server it would start)."""
        return jack_env(None if self.default else self.name)

    def argv(self, realtime: bool) -> list[str]:
        jackd = shutil.which("jackd") or "jackd"
        rt = ["-R", *([] if self.rt_priority is None else ["-P", str(self.rt_priority)])] if realtime else [
            "--no-realtime"]
        named = [] if self.default else ["-n", self.name]
        return [jackd, *named, *rt, "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", str(self.period)]

    def running(self) -> bool:
        return running(None if self.default else self.name)

    def start(self) -> JackServer:
        """Start (or restart) the server; returns once ``jack_lsp`` sees it."""
        tries = [True, False] if self.want_realtime and self.fallback else [self.want_realtime]
        log_text = ""
        for realtime in tries:
            self.starts += 1
            self.log_path = self.workdir / f"jackd-{self.name}-{self.starts}.log"
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self.argv(realtime), env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, preexec_fn=niceness(self.nice))
            deadline = time.monotonic() + START_TIMEOUT_S
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self.running():
                    self.realtime = realtime
                    return self
                time.sleep(0.05)
            self.stop()
            log_text = self.log_text().strip()
        raise JackStartError(f"could not start `{' '.join(self.argv(tries[-1]))}`: {log_text[-2000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (SIGKILL: the server dies as in a crash) and wait for the process to end."""
        assert self.proc is not None and self.proc.poll() is None, "the JACK server is not running"
        self.proc.send_signal(sig)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def ports(self) -> list[str]:
        """Every port on this server (``jack_lsp``)."""
        out = subprocess.run(["jack_lsp"], env=self.env, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=10).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def log_text(self) -> str:
        """The latest start's log."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def xruns(self) -> int:
        """Xruns the server reported in its log since its latest start (late clients, as jackd counts them)."""
        return sum(1 for line in self.log_text().splitlines() if "xrun" in line.lower())

    def playback_latency_ms(self) -> float | None:
        """The server's playback latency on ``system:playback_1`` (two periods for the dummy driver)."""
        try:
            out = subprocess.run(["jack_lsp", "-l", "system:playback_1"], capture_output=True, text=True,
                                 timeout=10, env=self.env).stdout
        except (OSError, subprocess.TimeoutExpired):
            return None
        for line in out.splitlines():
            if "playback latency" in line:
                return 1000.0 * int(line.split("[")[1].split()[0]) / SAMPLE_RATE
        return None

    def __enter__(self) -> JackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
