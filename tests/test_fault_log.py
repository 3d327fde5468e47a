"""Faults that silence or hold the music reach the operator's log (serve's stderr), rate-limited per kind.

A real ``cadenza serve`` with injected backend-step faults (``CADENZA_TEST_FAULTS``,
the live engine's test hook) logs the first fault at once and then at most one
line per kind per ``FAULT_LOG_INTERVAL_S``, counting what it held back; the
:class:`~cadenza.runtime.live.FaultLog` itself is checked on a short interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from cadenza.runtime.live import FAULT_LOG_INTERVAL_S, FaultLog
from tests.server_harness import ACTION_GAME, ServeProcess


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.destroy(linger=0)


def test_fault_log_writes_the_first_at_once_holds_the_rest_and_flushes_the_latest_with_a_count(
        caplog: pytest.LogCaptureFixture) -> None:
    flog = FaultLog(interval_s=0.3)
    with caplog.at_level(logging.WARNING, logger="cadenza.runtime.live"):
        for i in range(100):  # a fault and its recovery every few ms
            flog.write("backend step", f"fault: step {i} failed" if i % 2 == 0 else f"recovered: step {i}")
            flog.write("sink x", "fault: sink x failed")
            flog.flush()
        lines = [r.getMessage() for r in caplog.records]
        assert lines == ["fault: step 0 failed", "fault: sink x failed"], lines
        time.sleep(0.35)
        flog.flush()
        lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines
    assert lines[2] == "recovered: step 99 (98 more line(s) of 'backend step' in the last 0 s not logged)", lines
    assert lines[3].startswith("fault: sink x failed (98 more line(s) of 'sink x'"), lines


def test_serve_logs_backend_faults_on_stderr_without_flooding_it(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    server = ServeProcess(["--graph", str(ACTION_GAME)], tmp_path, sink="null",
                          env={"CADENZA_TEST_FAULTS": "step:every=3"})
    with server:
        events = server.events(ctx, ("warning",))
        got = events.events_for(FAULT_LOG_INTERVAL_S + 1.5)
        code, _ = server.stop()
    assert code == 0, server.stderr_text
    faults = [e for e in got if e.payload.message.startswith("backend step failed")]
    lines = [ln for ln in server.stderr_text.splitlines() if "backend step" in ln]
    print(f"\n{len(faults)} fault events, {len(lines)} lines on stderr: {lines}")
    assert len(faults) >= 10, [e.payload.message for e in got][:5]  # a fault every ~0.1 s
    assert lines and lines[0].startswith("cadenza serve: fault: backend step failed") and "injected fault" in lines[0]
    assert 2 <= len(lines) <= 4, lines  # the first at once, then one per interval
    assert any("not logged)" in ln for ln in lines[1:]), lines
