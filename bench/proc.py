"""The runtime as a measured process: ``cadenza serve`` with a chosen environment, and its RSS and CPU from /proc.

:class:`Serve` is the tests' :class:`tests.server_harness.ServeProcess` (free
loopback ports, the ready line, stdout/stderr in files) with extra environment
variables for the child — ``JACK_DEFAULT_SERVER`` for a private JACK server.
:func:`rss_mb`, :func:`peak_rss_mb` and :func:`cpu_seconds` read a process's
memory and CPU time the way ``ps`` does (Linux ``/proc``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.jack import niceness
from tests.server_harness import ServeProcess, child_env

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Serve(ServeProcess):
    """``python -m cadenza serve …`` with ``env`` added to the child's environment."""

    def __init__(self, args: Sequence[str], workdir: Path, *, env: Mapping[str, str] | None = None,
                 nice: int = 0, **kwargs: object) -> None:
        super().__init__(args, workdir, **kwargs)  # type: ignore[arg-type,unused-ignore]
        self.extra_env = dict(env or {})
        self.nice = nice  # added to the process's niceness before it starts (every thread inherits it)

    def launch(self) -> subprocess.Popen[bytes]:
        env = child_env()
        env.update(self.extra_env)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                         cwd=self.workdir, preexec_fn=niceness(self.nice))
        return self.proc

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def _status_kb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def rss_mb(pid: int) -> float:
    """Resident set size now (VmRSS), MiB."""
    return _status_kb(pid, "VmRSS") / 1024.0


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size so far (VmHWM), MiB."""
    return _status_kb(pid, "VmHWM") / 1024.0


def rss_by_mapping(pid: int, top: int = 4) -> list[tuple[str, float]]:
    """The ``top`` largest contributors to the process's RSS (MiB) by mapping (/proc/PID/smaps): a shared
    library, a shared-memory segment (a JACK server's /dev/shm/jack-*), the heap, anonymous memory."""
    sizes: dict[str, float] = {}
    current = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if head and "-" in head[0] and ":" not in head[0]:
            current = head[5].strip() if len(head) > 5 else "[anon]"
            current = current.rsplit("/site-packages/", 1)[-1]
        elif line.startswith("Rss:"):
            sizes[current] = sizes.get(current, 0.0) + int(line.split()[1]) / 1024.0
    return sorted(sizes.items(), key=lambda kv: -kv[1])[:top]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat: everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def load_average() -> float:
    """The machine's 1-minute load average (other processes compete for the same cores)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")
