"""SIGTERM and SIGINT while ``cadenza serve`` compiles its model end it at once (outside test 15, #9).

Before its sinks open nothing plays and no file needs finalising, so the
start-up does not hold the signal until the compile is over (a minute and
more): ``early_signals.end_at_once`` ends the process within a moment, exit 0
(serve's convention for SIGTERM/SIGINT), with one line on stderr and no
``ready`` line. A real ``cadenza serve --backend magenta --model tiny`` with an
empty JAX compilation cache (so it compiles), signalled once it says it is
compiling.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

pytest.importorskip("magenta_rt", reason="the magenta extra is not installed (pip install 'cadenza[magenta]')")

from tests.server_harness import ServeProcess  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_start_up_compile_ends_serve_at_once(tiny_cache: Path, tmp_path: Path,
                                                                 sig: signal.Signals) -> None:
    env = {"HF_HUB_CACHE": str(tiny_cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "empty-compile-cache")}  # nothing cached: it compiles
    server = ServeProcess(["--backend", "magenta", "--model", "tiny", "--batch-sizes", "1,2"], tmp_path, env=env)
    server.launch()
    try:
        deadline = time.monotonic() + 120
        while "compiling the streaming step" not in server.stdout_text + server.stderr_text:
            assert server.alive() and time.monotonic() < deadline, server.stderr_text
            time.sleep(0.05)
        time.sleep(1.0)  # well inside the compile (tens of seconds here)
        rc, took = server.stop(sig, timeout=10)
    finally:
        server.kill()
    print(f"\n{sig.name} during the compile: exit {rc} after {took:.2f} s")
    assert rc == 0, server.stderr_text
    assert took < 2.0, f"{sig.name} took {took:.1f} s to end serve; stderr: {server.stderr_text}"
    assert "ready" not in server.stdout_text.replace("weights ready", ""), server.stdout_text
    assert f"cadenza serve: stopped by {sig.name} while starting" in server.stderr_text, server.stderr_text
    assert "Traceback" not in server.stderr_text
