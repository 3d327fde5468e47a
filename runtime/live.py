"""The live engine: a generation thread that keeps ``lookahead`` of audio ahead of playback.

::

    server thread ──(lock: engine.set / trigger / load)──► Conductor ◄── generation thread
                                                                          │ one control tick per step
                                                      sinks ◄─────────────┤ (device ring, file, null)
                                                      events PUB ◄────────┤ beats, bars, states, mix, xruns
                                                      audio PUB ◄─────────┘ PCM chunks

The generation thread owns the PUB sockets (ZeroMQ sockets are not thread-
safe); other threads hand it events through a queue. It generates one control
tick at a time and never gets more than ``lookahead`` ahead of what the
listener hears: against a device sink it reads the device ring's fill, without
one it paces itself on the monotonic clock. The audio callback (in the device
sink) only copies from its ring. When the device runs dry (an xrun) the
callback holds and fades instead of clicking, the engine publishes an ``xrun``
event and widens the lookahead by half, up to ``max_lookahead``.

Faults it rides through, each published as an event:

- **held up** (the generation thread woke late or a step took long — CPU
  contention): when three times that delay exceeds the lookahead (and is within
  ``max_lookahead``), the lookahead widens to cover it before the device runs
  dry (a ``warning`` event says by how much and why; ``Status.lookahead_ms``
  shows it). The worst recent hold-up is forgotten with a half-life of 60 s,
  and the lookahead narrows back (10 ms per second, never below the
  configured one) to three times what is remembered: the latency comes back
  once the contention is gone.
- **stall** (the device played on without us — the process was stopped): one
  ``xrun`` event with ``source="stall"`` per stall and the frames the device
  played meanwhile; the device sink resumes with a fade. The lookahead is not
  widened: no queue survives the whole process being stopped.
- **a sink fails** (disk full for a file sink): a ``warning`` event naming
  the sink and the reason; that sink is closed and dropped, the others go on.
- **the device is lost** (audio server killed): a ``warning`` event with the
  device and the reason; generation goes on in real time into the other sinks
  (the device sink then paces itself on the monotonic clock), and another
  ``warning`` once the device sink plays again through its relay process
  (the server came back); ``failed_sinks`` holds what is out of play now.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.runtime.backends.base import SAMPLE_RATE, Backend
from cadenza.runtime.conductor import Block, Conductor
from cadenza.runtime.graph.spec import (
    Const,
    Graph,
    Intensity,
    PromptDef,
    State,
    Weight,
)
from cadenza.runtime.notify import hang_hook
from cadenza.runtime.sinks.base import Sink

DEFAULT_LOOKAHEAD_S = 0.03
MAX_LOOKAHEAD_S = 0.5
MIX_EVENT_INTERVAL_S = 0.1
STATUS_EVENT_INTERVAL_S = 1.0
PACE_SLEEP_S = 0.002  # the generation thread's sleep while it is far enough ahead
JITTER_SAFETY = 3.0  # the lookahead must cover this many times the worst recent hold-up
JITTER_HALF_LIFE_S = 60.0  # how fast the worst recent hold-up is forgotten (widen fast, narrow slowly)
NARROW_S_PER_S = 0.01  # how fast a widened lookahead narrows back once the hold-ups are gone (10 ms per second)


def direct_graph(prompts: Sequence[tuple[str, str | None, float]]) -> Graph:
    """A graph with no parameters that plays fixed weighted prompts (SetPrompts without a graph).

    ``prompts`` holds (text, audio path, weight) triples.
    """
    defs: dict[str, PromptDef] = {}
    mix = []
    for i, (text, audio, weight) in enumerate(prompts):
        name = f"p{i}"
        defs[name] = PromptDef(name, text=text, audio=audio)
        mix.append(Weight(name, Const(float(weight))))
    return Graph(
        version=1, name="direct prompts", source="<set_prompts>", control_rate=100.0, parameters={},
        prompts=defs, nodes={}, mix=tuple(mix), default_mix={n: 1.0 for n in defs}, controls={},
        states={}, states_driven_by=None, initial_state=None, transitions=(), stingers={},
        intensity=Intensity(), triggers={}, failsafe=None,
    )


@dataclass
class LiveStats:
    xruns: int = 0
    frames: int = 0
    steps: int = 0
    step_seconds: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=1000))


class LiveEngine:
    """Runs a :class:`Conductor` in real time into sinks and publishes what happens."""

    def __init__(self, backend: Backend, sinks: list[Sink], *, lookahead_s: float = DEFAULT_LOOKAHEAD_S,
                 seed: int = 0, publish: Callable[[Block | None, list[dict[str, object]]], None] | None = None,
                 clock_sink: object | None = None, sink_names: Sequence[str] | None = None) -> None:
        self.backend = backend
        self.sinks = list(sinks)
        # what events call each sink (its --sink spec), by identity
        self.sink_names = {id(k): (sink_names[i] if sink_names is not None else type(k).__name__)
                           for i, k in enumerate(self.sinks)}
        self.failed_sinks: dict[str, str] = {}  # name → why it was dropped
        self.seed = seed
        self.lookahead_s = lookahead_s
        self.base_lookahead_s = lookahead_s  # the configured lookahead: never narrower than this
        self.max_lookahead_s = max(MAX_LOOKAHEAD_S, lookahead_s)
        self._jitter_s = 0.0  # the worst recent hold-up, decaying with JITTER_HALF_LIFE_S
        self._jitter_at = time.monotonic()
        self.lock = threading.RLock()
        self.conductor: Conductor | None = None
        self.graph_text: str | None = None
        self.playing = True
        self.publish = publish
        self.clock_sink = clock_sink  # a DeviceSink whose ring fill paces us, or None
        self.stats = LiveStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inbox: collections.deque[dict[str, object]] = collections.deque()
        self._silence = np.zeros((480, 2), np.float32)
        self._started_at = 0.0
        self._fade_out = False
        self.frame = 0  # stream frames generated
        self.error: BaseException | None = None

    # ------------------------------------------------------------ control
    def load(self, graph: Graph) -> Conductor:
        """Swap in a new graph. Prompts are embedded first, outside the lock (a bad prompt fails
        before anything changes); the new conductor takes over the running stream, so the music
        glides to the new graph instead of restarting."""
        probe = Conductor(graph, self.backend, seed=self.seed)
        with self.lock:
            conductor = Conductor(graph, self.backend, seed=self.seed, start_frame=self.frame, mixer=probe.mixer)
            if self.conductor is not None:
                conductor.continue_from(self.conductor)
            self.conductor = conductor
        return conductor

    def post(self, event: dict[str, object]) -> None:
        """An event from another thread (a warning, say), published by the generation thread."""
        self._inbox.append(event)

    # ------------------------------------------------------------ running
    def start(self) -> None:
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="cadenza-generate", daemon=True)
        self._thread.start()

    def stop(self, fade_s: float = 0.1) -> None:
        """Fade out over ``fade_s``, stop the thread, close the sinks (files valid)."""
        if self._thread is not None and self._thread.is_alive():
            self._fade_frames = int(fade_s * SAMPLE_RATE)
            self._fade_out = True
            self._stop.set()
            self._thread.join(timeout=10)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001 — closing every sink matters more than the first error
                pass

    def queued_frames(self) -> int:
        if self.clock_sink is not None:
            return int(self.clock_sink.queued_frames)  # type: ignore[attr-defined]
        played = (time.monotonic() - self._started_at) * SAMPLE_RATE
        return int(self.frame - played)

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # noqa: BLE001 — reported by the server, never silently lost
            self.error = exc

    def _write_sinks(self, pcm: np.ndarray, events: list[dict[str, object]]) -> None:
        """Every sink gets the block; one that fails is closed and dropped with a warning, the rest go on."""
        for sink in list(self.sinks):
            try:
                sink.write(pcm)
            except CadenzaError as exc:
                name = self.sink_names.get(id(sink), type(sink).__name__)
                self.sinks.remove(sink)
                self.failed_sinks[name] = str(exc)
                try:
                    sink.close()
                except Exception:  # noqa: BLE001 — it failed already; the message says why
                    pass
                if sink is self.clock_sink:  # pace on the monotonic clock from here on
                    self.clock_sink = None
                    self._started_at = time.monotonic() - (self.frame + pcm.shape[0]) / SAMPLE_RATE
                others = ", ".join(self.sink_names.get(id(k), type(k).__name__) for k in self.sinks) or "none"
                events.append({"event": "warning", "where": name,
                               "message": f"sink {name} failed and was closed: {exc}; generation goes on "
                                          f"(other sinks: {others})"})

    def _held_up(self, delay_s: float, events: list[dict[str, object]]) -> None:
        """Widen the lookahead when ``JITTER_SAFETY`` × a hold-up of the generation thread exceeds it.

        A hold-up no lookahead up to ``max_lookahead`` could cover is a stall
        (the process was stopped), reported by the device sink, not jitter.
        """
        need = JITTER_SAFETY * delay_s
        if need > self.max_lookahead_s:
            return
        self._remember_jitter(delay_s)
        if need <= self.lookahead_s or self.lookahead_s >= self.max_lookahead_s:
            return
        old = self.lookahead_s
        self.lookahead_s = min(self.max_lookahead_s, max(need, old * 1.5))
        events.append({"event": "warning", "where": "lookahead",
                       "message": f"lookahead widened from {1000 * old:.1f} to {1000 * self.lookahead_s:.1f} ms: "
                                  f"the generation thread was held up {1000 * delay_s:.1f} ms (CPU contention?)"})

    def _device_event(self, clock: object, state: str, before: str) -> dict[str, object]:
        """The warning event for the device sink going ``before`` → ``state`` (lost / relayed / lost again)."""
        name = self.sink_names.get(id(clock), type(clock).__name__)
        others = ", ".join(self.sink_names.get(id(k), type(k).__name__) for k in self.sinks if k is not clock)
        if state == "relayed":
            self.failed_sinks.pop(name, None)
            message = (f"output device {getattr(clock, 'relayed', '')} is back: playing again, through a relay "
                       "process (this process's PortAudio cannot reopen a device it lost)")
        else:
            why = str(getattr(clock, "lost", "")) if before == "playing" else (
                f"output device lost again: {getattr(clock, 'relay_error', '') or 'its relay process stopped'}")
            self.failed_sinks[name] = why
            message = (f"{why}; generation goes on in real time (other sinks: {others or 'none'}); the runtime "
                       "tries to reopen the device every few seconds")
        return {"event": "warning", "where": name, "message": message}

    def _remember_jitter(self, delay_s: float) -> None:
        now = time.monotonic()
        self._jitter_s *= 0.5 ** ((now - self._jitter_at) / JITTER_HALF_LIFE_S)
        self._jitter_at = now
        self._jitter_s = max(self._jitter_s, delay_s)

    def _narrow(self, seconds: float) -> None:
        """Bring a widened lookahead back, ``NARROW_S_PER_S``, towards what the recent hold-ups need.

        No audio is dropped: the generator only waits longer before its next
        step while the device plays the surplus out.
        """
        if self.lookahead_s <= self.base_lookahead_s:
            return
        self._remember_jitter(0.0)
        want = max(self.base_lookahead_s, JITTER_SAFETY * self._jitter_s)
        if self.lookahead_s > 1.25 * want:
            self.lookahead_s = max(want, self.lookahead_s - NARROW_S_PER_S * seconds)

    def _loop(self) -> None:
        last_underruns = last_underrun_frames = last_stalls = last_stall_frames = 0
        started_device = False
        device_state = "playing"
        last_narrow = time.monotonic()
        pending: list[dict[str, object]] = []
        while True:
            hang_hook(self._stop)  # test hook (CADENZA_TEST_HANG_FILE); a no-op otherwise
            stopping = self._stop.is_set()
            if not stopping:
                target = int(self.lookahead_s * SAMPLE_RATE)
                while self.queued_frames() > target and not self._stop.is_set():
                    t_sleep = time.perf_counter()
                    time.sleep(PACE_SLEEP_S)
                    if started_device and device_state == "playing":
                        self._held_up(time.perf_counter() - t_sleep - PACE_SLEEP_S, pending)
                    if self.clock_sink is not None and not started_device:
                        self.clock_sink.start()  # type: ignore[attr-defined]
                        started_device = True
            t0 = time.perf_counter()
            with self.lock:
                conductor = self.conductor
                block = conductor.step() if (conductor is not None and self.playing) else None
            pcm = block.pcm if block is not None else self._silence
            if stopping:
                # a short fade to silence, then the end
                n = pcm.shape[0]
                pcm = pcm.copy()
                pcm *= np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]
            if block is None and conductor is not None:
                conductor.frame += pcm.shape[0]  # paused: the stream clock runs on in silence
            events: list[dict[str, object]] = pending
            pending = []
            self._write_sinks(pcm, events)
            self.frame += pcm.shape[0]
            self.stats.frames = self.frame
            self.stats.steps += 1
            step_s = time.perf_counter() - t0
            self.stats.step_seconds.append(step_s)
            if started_device and device_state == "playing":
                self._held_up(step_s, events)
                now = time.monotonic()
                self._narrow(now - last_narrow)
                last_narrow = now
            while self._inbox:
                events.append(self._inbox.popleft())
            clock = self.clock_sink
            if clock is not None:
                under = int(clock.underruns)  # type: ignore[attr-defined]
                if under > last_underruns:
                    self.stats.xruns += under - last_underruns
                    last_underruns = under
                    lost_frames = int(clock.underrun_frames) - last_underrun_frames  # type: ignore[attr-defined]
                    last_underrun_frames += lost_frames
                    old = self.lookahead_s
                    self.lookahead_s = min(self.max_lookahead_s, self.lookahead_s * 1.5)
                    self._remember_jitter(self.lookahead_s / JITTER_SAFETY)  # narrows again only as it decays
                    events.append({"event": "xrun", "count": self.stats.xruns, "source": "device",
                                   "frames_lost": lost_frames,
                                   "lookahead_ms": round(1000 * self.lookahead_s, 1),
                                   "previous_lookahead_ms": round(1000 * old, 1)})
                stalls = int(getattr(clock, "stalls", 0))
                if stalls > last_stalls:
                    self.stats.xruns += stalls - last_stalls
                    last_stalls = stalls
                    frames = int(getattr(clock, "stall_frames", 0)) - last_stall_frames
                    last_stall_frames += frames
                    events.append({"event": "xrun", "count": self.stats.xruns, "source": "stall",
                                   "frames_lost": frames})
                state = str(getattr(clock, "state", "playing"))
                if state != device_state:
                    events.append(self._device_event(clock, state, device_state))
                    device_state = state
            if self.publish is not None:
                self.publish(block, events)
            if stopping:
                return
