"""Requests never wait for the model (issue 15), through ``cadenza serve --backend magenta --model tiny``.

The magenta backend generates ahead (``Prefetching``): each block the
generation thread plans the model work under the engine lock (the graph's
tick, one job per stream), releases the lock while every stream steps in one
batched call per 40 ms frame, and steps the conductor under the lock again,
which only slices the ready audio. The real library runs a tiny random-weight
checkpoint (``cadenza models make-tiny``, ``HF_HUB_OFFLINE=1``) on
tests/graphs/magenta_decks.yaml: a bed whose prompt weights follow a
parameter, two states that crossfade (so an incoming deck steps beside the
bed), a prompt stinger (a third stream).

What a user relies on:

- a change a request makes — SetParameters (prompt weights), SetControls
  (notes), SetState (the crossfade's incoming deck), SetPrompts — reaches the
  first model frame planned after its reply. The runtime's test trace
  (``CADENZA_TEST_TRACE``) says when each block was planned (``time.monotonic``
  under the lock: every request answered before it is in the plan; the same
  clock in this process) and the conditioning of each stream's last frame;
- the crossfade and the stinger play with all their streams in one batched
  step and nothing compiles after start-up (``JAX_LOG_COMPILES=1``: no
  ``Compiling`` line on stderr);
- requests are answered while the model steps: the median round trip is a
  small fraction of a model frame's time measured in the same run (before this
  change it waited out a step: ~180 ms median on this CPU).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

pytest.importorskip("magenta_rt", reason="the magenta extra is not installed (pip install 'cadenza[magenta]')")

from server_harness import Control, ServeProcess, set_parameters, wait_until  # noqa: E402

from cadenza.proto import cadenza_v1_pb2 as pb  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
GRAPH = REPO / "tests" / "graphs" / "magenta_decks.yaml"
STYLE, ROLL, DRUMS = slice(0, 12), slice(12, 140), 140  # the conditioning: 12 MusicCoCa tokens, 128 pitches, drums
START_TIMEOUT_S = 400.0  # the tiny model compiles its batched steps at start-up: ~2 min on a loaded 2-core box


@dataclass
class Plan:
    """One line of the trace: a block planned at ``t``; per stream (the bed first) frames before/after, conditioning."""

    t: float
    kind: str
    fault: str | None
    jobs: list[tuple[int, int, list[int] | None]]

    def stepped(self, i: int) -> bool:
        """Stream ``i`` of this block generated a model frame."""
        return len(self.jobs) > i and self.jobs[i][1] > self.jobs[i][0]

    def cond(self, i: int) -> list[int]:
        c = self.jobs[i][2]
        assert c is not None
        return c


class Served:
    def __init__(self, server: ServeProcess, control: Control, trace: Path) -> None:
        self.server, self.control, self.trace = server, control, trace

    def plans(self) -> list[Plan]:
        lines = self.trace.read_text().splitlines()
        return [Plan(d["t"], d["kind"], d["fault"], [tuple(j) for j in d["jobs"]])  # type: ignore[misc]
                for d in map(json.loads, lines[:-1])]  # the last line may be half written

    def first_frame_after(self, t: float, stream: int = 0, timeout: float = 60.0) -> Plan:
        """The first block planned after ``t`` in which stream ``stream`` generated a model frame."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.plans():
                if p.t > t and p.stepped(stream):
                    return p
            time.sleep(0.05)
        raise AssertionError(f"no model frame of stream {stream} planned within {timeout:g} s after the reply")

    def first_plan_after(self, t: float, timeout: float = 60.0) -> Plan:
        """The first block planned after ``t``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for p in self.plans():
                if p.t > t:
                    return p
            time.sleep(0.05)
        raise AssertionError(f"no block planned within {timeout:g} s after the reply")

    def frames_between(self, t0: float, t1: float, stream: int = 0) -> list[Plan]:
        return [p for p in self.plans() if t0 < p.t < t1 and p.stepped(stream)]

    def request(self, body: Any) -> float:
        """Send, wait for Ok; the time the reply arrived."""
        self.control.ok(body, timeout=30)
        return time.monotonic()

    def compiles_since(self, mark: int) -> list[str]:
        return [line[:300] for line in self.server.stderr_text[mark:].splitlines() if "Compiling" in line]


@pytest.fixture(scope="module")
def served(tiny_cache: Path, jax_compile_cache: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Served]:
    """``cadenza serve`` with the tiny model (conftest.py's ``tiny_cache``) on magenta_decks.yaml, tracing every
    block it plans."""
    work = tmp_path_factory.mktemp("never-wait")
    trace = work / "trace.jsonl"
    env = {"HF_HUB_CACHE": str(tiny_cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu", "JAX_LOG_COMPILES": "1",
           "CADENZA_TEST_TRACE": str(trace),
           # the session's compiled steps: tests/test_magenta.py's in-process backend compiled batch sizes 1 and 3
           # (when it ran first, this start-up loads every step instead of compiling)
           "JAX_COMPILATION_CACHE_DIR": str(jax_compile_cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    # bed + incoming deck + stinger: at most 3 streams at once (the crossfade's 2 padded to 3)
    server = ServeProcess(["--backend", "magenta", "--model", "tiny", "--batch-sizes", "1,3", "--lookahead", "200",
                           "--graph", str(GRAPH)], work, env=env)
    server.start(timeout=START_TIMEOUT_S)
    err = server.stderr_text
    hits = err.count("Persistent compilation cache hit")
    print(f"\nstart-up: {hits} executables loaded from the compilation cache, "
          f"{err.count('Finished XLA compilation') - hits} compiled")
    ctx = zmq.Context()
    try:
        control = server.control(ctx)
        s = Served(server, control, trace)
        s.first_frame_after(0.0, timeout=120)  # the model plays
        yield s
        assert not [p.fault for p in s.plans() if p.fault], "a prefetch failed"
    finally:
        server.kill()
        ctx.destroy(linger=0)


def test_a_change_reaches_the_first_model_frame_planned_after_its_reply(served: Served) -> None:
    calm = served.first_frame_after(time.monotonic()).cond(0)[STYLE]
    for mood in (1, 0, 1):
        t = served.request(set_parameters({"mood": mood}, bypass=True))
        first = served.first_frame_after(t)
        later = served.first_frame_after(first.t)
        assert first.cond(0)[STYLE] == later.cond(0)[STYLE], "the new mix did not reach the first frame after the reply"
        assert (first.cond(0)[STYLE] == calm) == (mood == 0)
    t = served.request(pb.SetControls(controls=pb.Controls(notes=pb.NoteSet(midi=[50, 53]))))
    roll = served.first_frame_after(t).cond(0)[ROLL]
    assert {p for p, v in enumerate(roll) if v > 0} == {50, 53}, "SetControls notes did not reach the next frame"
    t = served.request(pb.SetControls(clear=["notes"]))
    assert set(served.first_frame_after(t).cond(0)[ROLL]) == {-1}, "the notes did not leave (masked: none given)"


def test_a_crossfade_and_a_stinger_step_with_the_bed_and_compile_nothing(served: Served) -> None:
    mark = len(served.server.stderr_text)
    t_state = served.request(pb.SetState(name="storm"))
    t_hit = served.request(pb.Trigger(name="hit"))
    first = served.first_plan_after(t_state)
    assert len(first.jobs) >= 2 and first.stepped(1), "the incoming deck did not start in the first block planned"
    assert first.cond(1)[DRUMS] == 1  # storm's drums
    assert served.first_frame_after(t_state).cond(0)[DRUMS] == 0  # the bed plays calm's until the fade ends
    hit = served.first_plan_after(t_hit)
    assert len(hit.jobs) == 3 and hit.stepped(2), "the stinger did not start in the first block planned"
    wait_until(lambda: any(p.t > hit.t and len(p.jobs) == 1 for p in served.plans()), 60,
               "the crossfade and the stinger ending (one stream left)")
    together = [p for p in served.plans() if p.t >= first.t and len(p.jobs) >= 2 and p.stepped(0) and p.stepped(1)]
    assert together, "the bed and the incoming deck never stepped in the same batched call"
    settled = served.first_frame_after(next(p.t for p in served.plans() if p.t > hit.t and len(p.jobs) == 1))
    assert len(settled.jobs) == 1 and settled.cond(0)[DRUMS] == 1  # the incoming deck is the bed now
    assert served.compiles_since(mark) == []


def test_requests_are_answered_while_the_model_steps(served: Served) -> None:
    rtts = []
    t0 = time.monotonic()
    while len(rtts) < 100 or len(served.frames_between(t0, time.monotonic())) < 5:
        t = time.perf_counter()
        served.control.ok(set_parameters({"mood": (len(rtts) % 2) * 0.5}), timeout=30)
        rtts.append(time.perf_counter() - t)
        time.sleep(0.01)
    frames = served.frames_between(t0, time.monotonic())
    step_s = statistics.median(b.t - a.t for a, b in zip(frames, frames[1:]))  # a model frame of the bed
    median = statistics.median(rtts)
    print(f"\nSetParameters round trip while tiny generates: median {1000 * median:.2f} ms, "
          f"max {1000 * max(rtts):.1f} ms ({len(rtts)}); the bed's model frames every {1000 * step_s:.0f} ms")
    assert median < 0.1 * step_s, f"requests waited for the model: median {median * 1000:.1f} ms"


def test_set_prompts_reaches_the_first_frame_after_its_reply(served: Served) -> None:
    mark = len(served.server.stderr_text)
    before = served.first_frame_after(time.monotonic()).cond(0)[STYLE]
    t = served.request(pb.SetPrompts(prompts=[pb.WeightedPrompt(text="lofi hip hop", weight=1.0)]))
    first = served.first_frame_after(t)
    later = served.first_frame_after(first.t)
    assert first.cond(0)[STYLE] != before and first.cond(0)[STYLE] == later.cond(0)[STYLE]
    assert served.compiles_since(mark) == []
