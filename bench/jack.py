"""A JACK dummy server for the benchmarks and the soak: started here, private to the run, logged.

``jackd --no-realtime -d dummy -r 48000 -p 960`` clocks audio like a sound
card without making a sound (the same server CI and the tests use). The server
is started under a name of its own (``jackd -n NAME``) and the runtime reaches
it through ``JACK_DEFAULT_SERVER=NAME`` in its environment, so a test on the
same machine that stops or kills *its* JACK server (the fault-injection tests
do) cannot take the benchmark's device away, and the benchmark never stops a
server it did not start. The server's output goes to a log file;
:meth:`JackServer.xruns` counts the xruns the server itself reported there (a
client that did not finish its period in time), which is a different figure
from the runtime's own xruns (its device ring ran dry).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

SAMPLE_RATE = 48_000
PERIOD = 960
START_TIMEOUT_S = 15.0


def niceness(nice: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` that changes the child's niceness by ``nice`` (negative: higher priority, needs root or
    an audio group's limits, as an installation's audio processes have)."""
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
    """Whether JACK server ``name`` answers ``jack_lsp``."""
    lsp = shutil.which("jack_lsp")
    if lsp is None:
        return False
    try:
        return subprocess.run([lsp], env=jack_env(name), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class JackServer:
    """A private dummy JACK server: ``with JackServer(log) as jack:`` → ``jack.env`` for its clients.

    ``available()`` says whether ``jackd`` is installed at all; starting raises
    :class:`RuntimeError` with the server's log when it does not come up.
    """

    def __init__(self, log_path: Path, name: str | None = None, nice: int = 0, realtime: bool = False) -> None:
        self.name = name or f"cadenza-bench-{os.getpid()}"
        self.nice = nice
        self.realtime = realtime  # jackd's SCHED_FIFO audio thread (root or the audio group's rtprio limit)
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None

    @property
    def env(self) -> dict[str, str]:
        return jack_env(self.name)

    @property
    def argv(self) -> list[str]:
        rt = ["--realtime"] if self.realtime else ["--no-realtime"]
        return ["jackd", "-n", self.name, *rt, "-d", "dummy", "-r", str(SAMPLE_RATE), "-p", str(PERIOD)]

    def start(self) -> JackServer:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT,
                                         preexec_fn=niceness(self.nice))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not running(self.name):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"`{' '.join(self.argv)}` did not start: {self.log_text()[-2000:]}")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def xruns(self) -> int:
        """Xruns the server reported in its log (late clients, as jackd counts them)."""
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
