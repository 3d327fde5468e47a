"""A ``python -m cadenza …`` child for tests that drive a command as a user would (``cadenza osc``, ``cadenza
midi``, ``cadenza serve``): stdout and stderr go to files (a full pipe can never block it), :meth:`wait_for` a
line, :meth:`stop` with SIGTERM as a user's Ctrl-C would."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_S = 90.0  # a loaded CI box may take this long to start the runtime


class CommandProcess:
    """A ``python -m cadenza ARGS`` child with stdout/stderr in ``folder/NAME.out`` and ``.err``."""

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
        """The first match of ``pattern`` in stdout (also when the child has just exited); stops the child and
        fails with its output when none comes within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.stdout)
            if m is not None:
                return m
            if self.proc.poll() is not None:
                m = re.search(pattern, self.stdout)
                if m is not None:
                    return m
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"no {pattern!r} from {self.proc.args!r}: rc={self.proc.returncode}\n"
                             f"stdout: {self.stdout}\nstderr: {self.stderr}")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after 15 s; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
