"""A short soak (``bench/soak.py``) as a test: the runtime under a game's load into a JACK dummy server.

The same code as ``make soak`` (a private ``jackd`` dummy server, ``cadenza
serve --sink jack`` as a process, SDK clients over loopback: 1,000 parameter
updates/s with state changes and stingers, a client that connects and
disconnects over and over, a PLAY/PAUSE latency probe), for
``CADENZA_SOAK_SECONDS`` (default 55) instead of 30 minutes. It asserts the
soak's pass criteria one by one, each failure message carrying the whole
report: no xruns, no latency drift, RSS growth ≤ 5 MB after warm-up, no
sequence gap in events or audio, every request answered, the load really
sent. The report and plot are written to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench import soak

SECONDS = float(os.environ.get("CADENZA_SOAK_SECONDS", "55"))


@pytest.fixture
def jackd() -> None:
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        reason = "the soak needs jackd (apt install jackd2) for its JACK dummy server"
        if os.environ.get("CADENZA_REQUIRE_AUDIO", "") == "1":
            pytest.fail(reason + " (CADENZA_REQUIRE_AUDIO=1)", pytrace=False)
        pytest.skip(reason)


@pytest.mark.slow
@pytest.mark.timeout(SECONDS + 150)
def test_short_soak_meets_every_pass_criterion(jackd: None, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    result = soak.Soak(SECONDS / 60.0, work, lookahead_ms=soak.DEFAULT_LOOKAHEAD_MS, log=lambda _: None).run()
    soak.plot(result, tmp_path / "soak.png")
    text = soak.report(result, "soak.png", f"pytest tests/test_soak.py ({SECONDS:g} s)")
    (tmp_path / "soak.md").write_text(text)

    # the load was really there
    assert result.elapsed_s >= SECONDS - 1, text
    assert result.rate >= soak.MIN_RATE_FRACTION * soak.UPDATES_PER_S, text
    assert result.states_set > 0 and result.triggers > 0, text
    assert result.stingers_heard > 0 and result.state_changes_heard > 0, text
    assert result.churn_cycles >= 10, text
    assert len([p for p in result.probes if p.heard_ms is not None]) >= 10, text
    assert result.audio_chunks > 0.9 * (result.elapsed_s - 5) * 100, text  # 10 ms chunks, the pauses left out

    checks = {figure: met for figure, _, _, met in result.checks()}
    assert checks.pop("xruns"), text
    assert checks.pop("RSS growth after warm-up"), text
    assert checks.pop("sequence gaps"), text
    assert checks.pop("requests failed"), text
    assert checks.pop("game client's update rate"), text
    drift = {f: m for f, m in checks.items() if f.startswith("drift")}
    assert len(drift) == 3 and all(drift.values()), text
    assert result.passed, text
    # the probe's change began where the runtime's reply said it would, to within one 10 ms block
    assert all(abs(p.heard_ms - p.lookahead_ms) <= 10.0 + 1e-6 for p in result.probes if p.heard_ms is not None), text
    assert (tmp_path / "soak.png").stat().st_size > 10_000
