"""The live engine: a generation thread that keeps ``lookahead`` of audio ahead of playback.

::

    server thread ──(lock: engine.set / trigger / load)──► Conductor ◄── generation thread
                                                                          │ one control tick per step
                                                      sinks ◄─────────────┤ (device ring, file, null)
                                                      events PUB ◄────────┤ beats, bars, states, mix, xruns
                                                      audio PUB ◄─────────┘ PCM chunks

The engine lock is never held across a model step when the backend generates
ahead (:class:`~cadenza.runtime.backends.base.Prefetching`, the magenta
backend): each turn the conductor plans the block under the lock (the graph's
tick, one ``StepJob`` per stream), the lock is released while the backend
steps every stream in one batched call per model frame, and the conductor
steps under the lock again, slicing the ready audio (:meth:`LiveEngine._locked_turn`).
So a request waits at most for a plan or a mix, never for the model; a change
it makes reaches the first model frame planned after its reply. Backends that
do not (the synth) step under the lock as before: their steps are short.

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
- **a sink fails** (disk full for a file sink, or any exception from its
  ``write``): a ``warning`` event naming the sink and the reason; that sink is
  closed and dropped (``failed_sinks``, and ``faults["sink NAME"]``), the
  others go on.
- **a tick fails** (an exception from the graph engine, an embedding, the
  backend step or a stinger — :class:`~cadenza.runtime.conductor.StepFault`):
  the generation thread never dies. A ``warning`` event names what failed and
  why, ``faults[what]`` holds it (``Status.faults``; ``faults_total`` counts
  every fault since start), and the music holds the last mix that generated
  fine (:meth:`Conductor.hold`: the bed's stream, no stingers). The full tick
  is retried after 0.1 s, then with a backoff doubling up to 5 s. When the
  hold fails too, the output fades to silence (blocks of silence still go to
  every sink and the audio PUB, so the stream clock never stops) and each
  retry starts the bed on a fresh stream. When a full tick works again the
  faults are cleared and a ``warning`` event starting "recovered" says so
  (from silence, the music fades back in). A new graph (LoadGraph,
  SetPrompts) is retried at once. Anything else that goes wrong in the loop is
  caught too: the fault ``generation`` and the loop goes on.

Test hook: the environment variable ``CADENZA_TEST_FAULTS`` (read only when
set; tests/test_unattended.py uses it) injects faults into a real process:
``step:every=N`` makes every Nth backend step raise, ``step:after=N,count=M``
makes M steps in a row raise from the Nth on, ``sink:after=N`` adds a sink
named ``test-fault-sink`` whose Nth write raises, ``embed:sleep_ms=N`` makes
embedding a text prompt with the word "slow" in it take N ms (a slow load).
Items join with ``;``. ``CADENZA_TEST_TRACE=PATH`` appends a JSON line per prefetched
block to PATH (when it was planned; per stream the model frames generated and the
last one's conditioning): tests/test_requests_never_wait.py reads it.
``CADENZA_PREFETCH=off`` steps a prefetching backend under the lock like any
other (the old behaviour, for the benchmark's before/after).
- **the device is lost** (audio server killed): a ``warning`` event with the
  device and the reason; generation goes on in real time into the other sinks
  (the device sink then paces itself on the monotonic clock), and another
  ``warning`` once the device sink plays again through its relay process
  (the server came back); ``failed_sinks`` holds what is out of play now.
- **a file sink pauses** (``cadenza serve`` opens file sinks with a retry):
  instead of failing it finalises its file, drops blocks and retries every
  second; its notices (paused, resumed, reopened on SIGHUP —
  :meth:`reopen_files`) become ``warning`` events, and ``failed_sinks`` /
  ``faults["sink NAME"]`` hold it while it is paused (sinks/file.py).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.runtime import events as ev
from cadenza.runtime.backends.base import (
    SAMPLE_RATE,
    Backend,
    Controls,
    Embedding,
    Prefetching,
    Prompt,
    StepJob,
    StreamState,
)
from cadenza.runtime.conductor import Block, Conductor, StepFault
from cadenza.runtime.graph.engine import Frame
from cadenza.runtime.graph.spec import (
    Const,
    Graph,
    Intensity,
    PromptDef,
    State,
    Weight,
)
from cadenza.runtime.notify import hang_hook
from cadenza.runtime.sinks.base import ClockSink, Sink, SinkNotice

DEFAULT_LOOKAHEAD_S = 0.03
MAX_LOOKAHEAD_S = 0.5
MIX_EVENT_INTERVAL_S = 0.1
STATUS_EVENT_INTERVAL_S = 1.0
PACE_SLEEP_S = 0.002  # the generation thread's sleep while it is far enough ahead

JITTER_SAFETY = 3.0  # the lookahead must cover this many times the worst recent hold-up
JITTER_HALF_LIFE_S = 60.0  # how fast the worst recent hold-up is forgotten (widen fast, narrow slowly)
NARROW_S_PER_S = 0.01  # how fast a widened lookahead narrows back once the hold-ups are gone (10 ms per second)
RETRY_FIRST_S = 0.1  # a failed tick is retried after this long …
RETRY_MAX_S = 5.0  # … doubling up to this
TEST_FAULTS_ENV = "CADENZA_TEST_FAULTS"
#: ``off``: a backend that generates ahead is stepped under the engine lock as any other (the behaviour before
#: requests stopped waiting for model steps; bench/magenta_control.py measures both)
PREFETCH_ENV = "CADENZA_PREFETCH"
#: test hook: a file to which the generation thread appends one JSON line per block it prefetched (see _trace)
TRACE_ENV = "CADENZA_TEST_TRACE"
MAX_PLANS = 3  # plans per turn of the loop when what to step keeps changing while the model works (new graphs)
HOLD_FADE_S = 0.05  # PAUSE and STOP fade to silence over this long
#: a fault's lines on stderr (the operator's log): at most one per kind per this long; the others are counted
FAULT_LOG_INTERVAL_S = 5.0

log = logging.getLogger(__name__)


class LoadTimedOut(CadenzaError, TimeoutError):
    """A load that ran past its time bound reached its swap: nothing is applied. Its client has its TIMEOUT already
    (the serve loop answered at the deadline), so this is expected, not a fault: no "internal error" in the log."""


class FaultLog:
    """The faults the music rides through, on the operator's log (stderr, journalctl), rate-limited per kind.

    ``write(kind, message)`` logs at once unless a line of that kind went out less than
    :data:`FAULT_LOG_INTERVAL_S` ago; then it is held back and counted, and :meth:`flush` (each turn of the
    generation loop) writes the latest one held back, with the count, once the interval is over: a fault every
    10 ms costs one line per interval, and the log's last line of a kind is its latest news (a fault and its
    recovery share a kind). Called from the generation thread only (never the audio callback).
    """

    def __init__(self, interval_s: float = FAULT_LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}  # kind → when its last line went out (monotonic s)
        self._held: dict[str, tuple[int, str]] = {}  # kind → (lines held back since, the latest of them)

    def write(self, kind: str, message: str) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is None or now - last >= self.interval_s:
            held, _ = self._held.pop(kind, (0, ""))
            self._emit(kind, message, held, now)
        else:
            held, _ = self._held.get(kind, (0, ""))
            self._held[kind] = (held + 1, message)

    def flush(self) -> None:
        if not self._held:
            return
        now = time.monotonic()
        for kind, (held, message) in list(self._held.items()):
            if now - self._last[kind] >= self.interval_s:
                del self._held[kind]
                self._emit(kind, message, held - 1, now)

    def _emit(self, kind: str, message: str, not_logged: int, now: float) -> None:
        last = self._last.get(kind)
        more = (f" ({not_logged} more line(s) of {kind!r} in the last {now - last:.0f} s not logged)"
                if not_logged > 0 and last is not None else "")
        self._last[kind] = now
        log.warning("%s%s", message, more)


def prompt_names(prompts: Sequence[tuple[str, str | None, float]]) -> list[str]:
    """The names weights are keyed by (Status.weights, mix events) for direct prompts: a text prompt's text,
    an audio prompt's file name; a repeated name gets `` #2``, `` #3`` …"""
    names: list[str] = []
    seen: set[str] = set()
    for text, audio, _ in prompts:
        base = os.path.basename(audio) if audio else text.strip()
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base} #{n}"
        seen.add(name)
        names.append(name)
    return names


def direct_graph(prompts: Sequence[tuple[str, str | None, float]],
                 prompt_audio: Mapping[str, bytes] | None = None) -> Graph:
    """A graph with no parameters that plays fixed weighted prompts (SetPrompts without a graph).

    ``prompts`` holds (text, audio path, weight) triples; ``prompt_audio`` the bytes of audio paths already read
    (a client's files, read once through the file policy: the backend embeds these, never the path).
    """
    defs: dict[str, PromptDef] = {}
    mix = []
    for name, (text, audio, weight) in zip(prompt_names(prompts), prompts):
        defs[name] = PromptDef(name, text=text, audio=audio)
        mix.append(Weight(name, Const(float(weight))))
    return Graph(
        version=1, name="direct prompts", source="<set_prompts>", control_rate=100.0, parameters={},
        prompts=defs, nodes={}, mix=tuple(mix), default_mix={n: 1.0 for n in defs}, controls={},
        states={}, states_driven_by=None, initial_state=None, transitions=(), stingers={},
        intensity=Intensity(), triggers={}, failsafe=None, prompt_audio=dict(prompt_audio or {}),
    )


@dataclass
class _Ahead:
    """A block's model work done without the engine lock: for which conductor and frame, the fault met planning
    or doing it (the step's, then), and whether the bed was replaced by a fresh stream already (out of silence)."""

    conductor: Conductor
    frame: int
    fault: StepFault | None = None
    stepping: bool = False  # planned a step (else the hold of the last good mix, or nothing)
    fresh: bool = False


@dataclass
class LiveStats:
    xruns: int = 0
    frames: int = 0
    steps: int = 0
    step_seconds: collections.deque[float] = field(default_factory=lambda: collections.deque(maxlen=1000))


class LiveEngine:
    """Runs a :class:`Conductor` in real time into sinks and publishes what happens."""

    def __init__(self, backend: Backend, sinks: list[Sink], *, lookahead_s: float = DEFAULT_LOOKAHEAD_S,
                 seed: int = 0, publish: Callable[[Block | None, list[ev.Event]], None] | None = None,
                 clock_sink: ClockSink | None = None, sink_names: Sequence[str] | None = None) -> None:
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
        self._hold_fade = 0  # frames of the fade to silence still to play after PAUSE/STOP
        self._fading: Conductor | None = None  # STOP: the music that fades out while the rewound graph waits
        self.publish = publish
        self.clock_sink = clock_sink  # a DeviceSink whose ring fill paces us, or None
        self.stats = LiveStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inbox: collections.deque[ev.Event] = collections.deque()
        self._last_mix = -1.0  # stream seconds of the last Mix event (at most one per MIX_EVENT_INTERVAL_S)
        self._silence = np.zeros((480, 2), np.float32)
        self._started_at = 0.0
        self._fade_out = False
        self._fade_frames = int(0.1 * SAMPLE_RATE)  # the fade to silence at stop (stop() sets it)
        self.frame = 0  # stream frames generated
        self._free_frame = 0  # where a first graph starts: the end of the silent block being written (under lock)
        self.error: BaseException | None = None
        # faults ridden through (what → why), replaced whole on change so other threads read it safely
        self.faults: dict[str, str] = {}
        self.faults_total = 0
        self.fault_log = FaultLog()  # the faults and recoveries on stderr, rate-limited per kind
        self._degraded = False  # a tick failed: playing the last good mix (or silence) until a retry works
        self._silent = False  # … and the last good mix failed too: silence
        self._retry_at = 0  # stream frame of the next retry of a full tick
        self._backoff_s = RETRY_FIRST_S
        self._fault_conductor: Conductor | None = None
        self._fault_since = 0  # stream frame of the first failure of the running fault
        self._last_pcm: np.ndarray | None = None
        self._loop_state: dict[str, int | bool | str] = {}
        self._admission = threading.local()
        self._loop_fault = False  # the loop failed and was re-entered: cleared after its next full turn
        self._warmed_up = False  # load() ran a throwaway first step (the backend's lazy set-up is done)
        spec = os.environ.get(TEST_FAULTS_ENV)
        if spec:
            _install_test_faults(self, spec)
        #: the backend generates ahead (:class:`Prefetching`): the model works without the lock (see _locked_turn)
        self.ahead: Prefetching | None = None
        if isinstance(self.backend, Prefetching) and os.environ.get(PREFETCH_ENV, "on") != "off":
            self.ahead = self.backend
        trace = os.environ.get(TRACE_ENV)
        self._trace = open(trace, "a", buffering=1) if trace and self.ahead is not None else None  # noqa: SIM115

    # ------------------------------------------------------------ control
    def load(self, graph: Graph) -> Conductor:
        """Swap in a new graph. Prompts are embedded first, outside the lock (a bad prompt fails
        before anything changes); the new conductor takes over the running stream, so the music
        glides to the new graph instead of restarting.

        The prompt limits (:mod:`~cadenza.runtime.limits`) were checked before: by the loader for a
        graph file (file:line), by the server for SetPrompts (before any work). Inside :meth:`admission`
        the swap happens only if its check still says yes (a load that ran past its time bound is
        answered TIMEOUT and must change nothing).
        """
        probe = Conductor(graph, self.backend, seed=self.seed)
        stepped = not self._warmed_up
        # the first graph's first block generated here, off the generation thread and on a throwaway stream: what a
        # backend sets up lazily on its first use (the synth loads its numba kernels from cache, 0.2-0.7 s; a model
        # compiles) happens now, not in the first step after the swap, which would stall the stream and publish that
        # step's beats late (after their heard_at). Once per engine: later loads find the backend ready. A failure
        # here is the generation thread's to report when it meets it (and the next load tries again).
        if not self._warmed_up:
            try:
                probe.step()
                self._warmed_up = True
            except Exception:  # noqa: BLE001, S110 — see above: the live step reports it, with its fault handling
                pass
        # the new conductor's stream, made here: under the lock a model's new stream would make requests wait
        bed = self.backend.new_stream(self.seed) if stepped else probe.deck_a.state
        with self.lock:
            admit = getattr(self._admission, "check", None)
            if admit is not None and not admit():
                raise LoadTimedOut("the load ran past its time bound and was answered TIMEOUT: nothing applied")
            # the running conductor's frame: the generation thread adds a block to self.frame only after the lock
            start = self.conductor.frame if self.conductor is not None else max(self.frame, self._free_frame)
            conductor = Conductor(graph, self.backend, seed=self.seed, start_frame=start, mixer=probe.mixer, bed=bed)
            old = self.conductor
            self.conductor = conductor
            if old is not None:
                conductor.continue_from(old)
                # every consumer learns the new graph's state (a running crossfade's COMPLETED never comes: this
                # supersedes it), stamped where the new graph is heard from; "" is a prompts-only graph's no-state
                self._post_swap(old, conductor, conductor.stream_frame, "load")
        return conductor

    def _post_swap(self, old: Conductor, new: Conductor, frame: int, transition: str) -> None:
        """A state change that replaced the conductor (STOP's ``cut``, a graph's ``load``): STARTED then COMPLETED
        at once, no fade, stamped at stream ``frame``; ``previous`` is the state ``old`` was in."""
        at, was, now = frame / SAMPLE_RATE, old.engine.state or "", new.engine.state or ""
        for phase in (ev.Phase.STARTED, ev.Phase.COMPLETED):
            self.post(ev.StateChange(time=at, name=now, previous=was, phase=phase, transition=transition,
                                     fade_seconds=0.0))

    def transport(self, action: str, bed: StreamState | None = None) -> None:
        """``play``, ``pause`` or ``stop`` (call under :attr:`lock`); ``bed``: for STOP, the rewound graph's stream,
        ``backend.new_stream(seed)`` made before the lock was taken (a model's new stream is device work).

        PAUSE holds: a :data:`HOLD_FADE_S` fade to silence, then the graph's
        state, parameters and the model's context stay as they are (nothing is
        generated) while the stream clock runs on; PLAY resumes from there. The conductor's own time
        stands still meanwhile (its ``paused_frames`` grow), so what it publishes after PLAY is stamped where it
        is heard; PLAY re-announces a state change that was waiting for its bar.
        STOP rewinds at once: a fresh conductor on the same graph (its initial
        state, parameter defaults, a new model stream; the client's control
        overrides kept) is what Status shows from then on and what PLAY starts
        over, while the music that was playing fades out the same way; it is
        published as a ``state`` change to the initial state, STARTED then
        COMPLETED, with transition ``cut`` and no fade.
        """
        if action == "play":
            if not self.playing and self.conductor is not None:
                self.conductor.announce_pending()  # its time on the stream is known again: say it
            self.playing = True
            self._hold_fade = 0
            self._fading = None
            return
        if action not in ("pause", "stop"):
            raise ValueError(f"unknown transport action {action!r}; actions are play, pause, stop")
        if self.playing:
            self._hold_fade = int(HOLD_FADE_S * SAMPLE_RATE)
        self.playing = False
        if action == "stop" and self.conductor is not None:
            old = self.conductor
            fresh = Conductor(old.graph, self.backend, seed=self.seed, start_frame=old.frame, mixer=old.mixer, bed=bed)
            fresh.overrides = dict(old.overrides)
            fresh.grid = old.grid  # the beat and bar count runs on (PLAY continues it, never restarts it)
            fresh.paused_frames = old.paused_frames
            self.conductor = fresh
            if self._hold_fade > 0:
                self._fading = self._fading or old
            # every consumer learns the rewind: a cut (no fade) to the initial state, stamped where STOP is heard
            self._post_swap(old, fresh, old.stream_frame, "cut")

    @contextlib.contextmanager
    def admission(self, check: Callable[[], bool]) -> Iterator[None]:
        """Within this block (this thread), :meth:`load` swaps the graph in only when ``check()`` says yes."""
        self._admission.check = check
        try:
            yield
        finally:
            self._admission.check = None

    def post(self, event: ev.Event) -> None:
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
        if self._trace is not None:
            self._trace.close()

    @property
    def silence(self) -> np.ndarray:
        """The block of silence the engine writes when no graph plays (none loaded, or paused): read-only."""
        return self._silence

    def now(self) -> float:
        """The stream time (seconds) generated so far: what events noticed here (warnings, xruns) carry."""
        return self.frame / SAMPLE_RATE

    def heard_clock(self) -> tuple[int, float]:
        """The heard clock: ``(frame, unix)``, the stream frame that leaves the output at Unix time ``unix``
        (seconds on this host); frame ``f`` is heard at ``unix + (f - frame) / SAMPLE_RATE``.

        With a device sink: its :meth:`~cadenza.runtime.sinks.base.ClockSink.heard_clock` (the device's own
        clock, latency included: the engine writes every block, silence while paused too, to every sink from
        stream frame 0, so a sink's frame count is the stream's); before it plays, the frames it has taken
        are heard once it starts (an estimate). Without one (file or null sinks): the clock the engine paces
        itself on, ``start()``'s monotonic time + frame / rate, or now for the newest frame when the engine is
        behind that pace (catching up after a stall: a frame cannot leave before it is made). PAUSE changes
        nothing here: the stream clock runs on in silence. Any thread may call it; it takes no lock.
        """
        clock = self.clock_sink
        anchor = clock.heard_clock() if clock is not None else None
        if anchor is None:
            if clock is not None:  # not playing yet: an estimate (it starts once the lookahead is queued)
                latency = float(getattr(clock, "output_latency", 0.0))
                anchor = (0, time.monotonic() + max(0, self.frame - int(clock.frames_played)) / SAMPLE_RATE + latency)
            else:  # on pace: start + frame / rate; behind it (catching up after a stall): frames leave as made
                now = time.monotonic()
                frame = self.frame
                paced = (self._started_at or now) + frame / SAMPLE_RATE
                anchor = (frame, max(paced, now))
        frame, mono = anchor
        return frame, mono + (time.time() - time.monotonic())

    def queued_frames(self) -> int:
        if self.clock_sink is not None:
            return int(self.clock_sink.queued_frames)
        played = (time.monotonic() - self._started_at) * SAMPLE_RATE
        return int(self.frame - played)

    def behind(self) -> bool:
        """Less than half the lookahead is queued ahead of playback: the control loop gives way (audio first)."""
        return self._thread is not None and self.queued_frames() < self.lookahead_s * SAMPLE_RATE / 2

    def _run(self) -> None:
        while True:
            try:
                self._loop()
                return
            except Exception as exc:  # noqa: BLE001 — a bug here must not stop the music: note it, go on
                why = f"{type(exc).__name__}: {exc}"[:500]
                log.error("generation loop failed, going on: %s", why, exc_info=True)
                self._set_fault("generation", why)
                self._loop_fault = True
                self.post(ev.Warning(self.now(), f"the generation loop failed: {why}; it goes on", "generation"))
                time.sleep(RETRY_FIRST_S)
            except BaseException as exc:  # noqa: BLE001 — reported by the server, never silently lost
                self.error = exc
                return

    # ------------------------------------------------------------ faults
    def _set_fault(self, what: str, why: str) -> bool:
        """Record fault ``what``; True when it is new (not already being ridden through)."""
        new = what not in self.faults
        if new:
            self.faults_total += 1
        self.faults = {**self.faults, what: why}
        return new

    def _schedule_retry(self, conductor: Conductor, retry: bool) -> float:
        self._backoff_s = min(RETRY_MAX_S, self._backoff_s * 2) if retry else RETRY_FIRST_S
        self._retry_at = conductor.frame + int(self._backoff_s * SAMPLE_RATE)
        return self._backoff_s

    # ------------------------------------------------------------ the model's work without the lock
    def _to_step(self) -> Conductor | None:
        """The conductor this turn of the loop steps (under :attr:`lock`): the music fading out after STOP, else
        the graph's, while playing or fading to a pause; None when it steps none."""
        fading = self._fading if not self.playing else None
        source = fading if fading is not None else self.conductor
        return source if source is not None and (self.playing or self._hold_fade > 0) else None

    @contextlib.contextmanager
    def _locked_turn(self) -> Iterator[_Ahead | None]:
        """:attr:`lock`, held for one turn of the loop; with a backend that generates ahead, taken once the model
        work of the block this turn steps is done without it.

        Under the lock the conductor plans the block (:meth:`Conductor.plan`: the graph's tick and one
        :class:`StepJob` per model stream; :meth:`Conductor.plan_hold` while the fault road holds the last good
        mix); the lock is released while the backend prefetches them (one batched step per model frame), then
        taken again and the conductor steps, slicing what is ready: no request waits for the model. When the
        conductor to step changed meanwhile (a new graph, STOP) its block is planned again (its streams keep what
        was generated for them). A fault planning or prefetching is the step's (:meth:`_guarded_step`): the last
        good mix is prefetched too, for the hold that follows. Yields what was done ahead, or None.
        """
        backend = self.ahead
        if backend is None:
            with self.lock:
                yield None
            return
        lock = self.lock
        ahead: _Ahead | None = None
        lock.acquire()
        try:
            for _ in range(MAX_PLANS):
                c = self._to_step()
                if c is None or (ahead is not None and ahead.conductor is c and ahead.frame == c.frame):
                    break
                planned_at = time.monotonic()  # under the lock: every request answered before this is planned
                ahead, jobs = self._plan_ahead(c)
                before = [getattr(j.state, "frames_generated", None) for j in jobs] if self._trace else []
                self._prefetch_unlocked(backend, ahead, jobs)
                if ahead.fault is not None and ahead.stepping:  # the fault road holds the last good mix: that too
                    self._prefetch_unlocked(backend, ahead, c.plan_hold())
                if self._trace is not None:
                    self._trace_plan(planned_at, ahead, jobs, before)
            c = self._to_step()
            yield ahead if ahead is not None and ahead.conductor is c and ahead.frame == c.frame else None
        finally:
            lock.release()

    def _trace_plan(self, planned_at: float, ahead: _Ahead, jobs: list[StepJob], before: list[int | None]) -> None:
        """The test hook (:data:`TRACE_ENV`): when the block was planned (``time.monotonic()``, under the lock), what
        (``step``, ``hold``), whether it failed, and per job (the bed first) the model frames its stream had generated
        before and after the prefetch and the conditioning of the last one, where the backend's state shows them
        (the magenta backend's does)."""
        import json

        assert self._trace is not None
        rows = []
        for job, was in zip(jobs, before):
            cond = getattr(job.state, "conditioning", None)
            rows.append([was, getattr(job.state, "frames_generated", None),
                         None if cond is None else np.asarray(cond).tolist()])
        self._trace.write(json.dumps({"t": planned_at, "kind": "step" if ahead.stepping else "hold",
                                      "fault": None if ahead.fault is None else str(ahead.fault), "jobs": rows}) + "\n")

    def _prefetch_unlocked(self, backend: Prefetching, ahead: _Ahead, jobs: list[StepJob]) -> None:
        """``backend.prefetch(jobs)`` with :attr:`lock` (held) released meanwhile; a failure is ``ahead``'s fault."""
        if not jobs:
            return
        self.lock.release()
        try:
            backend.prefetch(jobs)
        except Exception as exc:  # noqa: BLE001 — the fault road takes it (a failed step)
            if ahead.fault is None:
                ahead.fault = StepFault("backend step", exc)
        finally:
            self.lock.acquire()

    def _plan_ahead(self, c: Conductor) -> tuple[_Ahead, list[StepJob]]:
        """What :meth:`_guarded_step` will do with ``c``, planned (under :attr:`lock`): the model work of its step,
        of the hold of the last good mix, or none (silence)."""
        ahead = _Ahead(c, c.frame)
        retry = self._degraded and (c.frame >= self._retry_at or c is not self._fault_conductor)
        try:
            if not self._degraded or retry:
                ahead.stepping = True
                if self._silent:
                    ahead.fresh = True
                    c.fresh_bed()  # the bed's stream may be what fails
                return ahead, c.plan()
            if not self._silent:
                return ahead, c.plan_hold()
        except StepFault as exc:
            ahead.fault = exc
        return ahead, []

    def _guarded_step(self, c: Conductor, events: list[ev.Event], ahead: _Ahead | None = None) -> Block | None:
        """One tick that cannot fail: the full step, else the last good mix, else silence (None; clocks advanced).

        Called with :attr:`lock` held. ``ahead``: the model work of this block done without the lock, and the fault
        met doing it (:meth:`_locked_turn`).
        """
        retry = self._degraded and (c.frame >= self._retry_at or c is not self._fault_conductor)
        failed: StepFault | None = None
        if not self._degraded or retry:
            try:
                if ahead is not None and ahead.fault is not None:
                    raise ahead.fault
                if self._silent and (ahead is None or not ahead.fresh):
                    c.fresh_bed()  # the bed's stream may be what fails
                block = c.step()
            except StepFault as exc:
                failed = exc
                if not self._degraded:
                    self._fault_since = c.frame
                self._degraded = True
                self._fault_conductor = c
                self._schedule_retry(c, retry)
            else:
                if self._degraded:
                    self._recovered(c, block, events)
                return block
        held: Block | None = None
        also: StepFault | None = None
        if not self._silent or retry:
            try:
                held = c.hold()
            except StepFault as exc:
                also = exc
        if failed is not None:
            new = self._set_fault(failed.what, failed.why)
            if also is not None:
                self._set_fault(also.what, also.why)
            if new or (also is not None and not self._silent):
                wait = self._backoff_s
                note = ev.Warning(self.now(), (
                    f"{failed}; holding the last mix that worked, retrying in {wait:g} s" if also is None else
                    f"{failed}, and the last mix that worked failed too ({also.what}: {also.why}); "
                    f"fading to silence, retrying in {wait:g} s"), failed.what)
                events.append(note)
                self.fault_log.write(failed.what, f"fault: {note.message}")
        elif also is not None and self._set_fault(also.what, also.why):
            note = ev.Warning(self.now(), f"{also} (playing the last mix that worked); fading to silence, "
                                          f"retrying in {self._backoff_s:g} s", also.what)
            events.append(note)
            self.fault_log.write(also.what, f"fault: {note.message}")
        if held is not None:
            self._silent = False
            return held
        if also is not None:
            self._silent = True
        c.idle()
        return None

    def _recovered(self, c: Conductor, block: Block, events: list[ev.Event]) -> None:
        cleared = sorted(k for k in self.faults if not k.startswith("sink "))
        self.faults = {k: v for k, v in self.faults.items() if k.startswith("sink ")}
        seconds = (c.frame - self._fault_since) / SAMPLE_RATE
        note = ev.Warning(self.now(), f"recovered: {', '.join(cleared) or 'the tick'} works again after "
                                      f"{seconds:.2f} s{' of silence' if self._silent else ' on the last good mix'}",
                          ", ".join(cleared))
        events.append(note)
        for kind in cleared or ["the tick"]:  # the same kind as the fault: the log's last line of it is the news
            self.fault_log.write(kind, note.message)
        if self._silent:  # from silence: fade the music back in
            block.pcm *= np.linspace(0.0, 1.0, block.pcm.shape[0], dtype=np.float32)[:, None]
        self._degraded = self._silent = False
        self._backoff_s = RETRY_FIRST_S
        self._fault_conductor = None

    def _silence_block(self, c: Conductor, f0: int) -> Block:
        """A block of silence at ``f0`` (after a failed hold): the last block heard, faded out, then zeros."""
        n = c.block
        last = self._last_pcm
        if last is not None and last.shape[0] == n and np.any(last):
            pcm = last * np.linspace(1.0, 0.0, n, dtype=np.float32)[:, None]
        else:
            pcm = np.zeros((n, 2), np.float32)
        fr = c.good[2] if c.good is not None else Frame(f0 / SAMPLE_RATE, None, {}, {}, {}, None, [])
        return Block(f0, pcm, fr, [], [])

    def _write_sinks(self, pcm: np.ndarray, events: list[ev.Event]) -> None:
        """Every sink gets the block; one that fails is closed and dropped with a warning, the rest go on."""
        for sink in list(self.sinks):
            try:
                sink.write(pcm)
                notices = getattr(sink, "notices", None)  # a file sink paused / resumed / reopened (sinks/file.py)
                if notices:
                    self._sink_notices(sink, notices, events)
            except Exception as exc:  # noqa: BLE001 — CadenzaError (disk full …) or a bug: the others go on
                name = self.sink_names.get(id(sink), type(sink).__name__)
                why = str(exc) if isinstance(exc, CadenzaError) else f"{type(exc).__name__}: {exc}"
                self.sinks.remove(sink)
                self.failed_sinks[name] = why
                self._set_fault(f"sink {name}", why)
                try:
                    sink.close()
                except Exception:  # noqa: BLE001 — it failed already; the message says why
                    pass
                if sink is self.clock_sink:  # pace on the monotonic clock from here on
                    self.clock_sink = None
                    self._started_at = time.monotonic() - (self.frame + pcm.shape[0]) / SAMPLE_RATE
                others = ", ".join(self.sink_names.get(id(k), type(k).__name__) for k in self.sinks) or "none"
                note = ev.Warning(self.now(), f"sink {name} failed and was closed: {why}; generation goes on "
                                              f"(other sinks: {others})", name)
                events.append(note)
                self.fault_log.write(f"sink {name}", f"fault: {note.message}")

    def _sink_notices(self, sink: Sink, notices: collections.deque[SinkNotice], events: list[ev.Event]) -> None:
        """A warning event for each notice of a sink that rides through its own faults (a file sink paused for a
        full disk, resumed, reopened on SIGHUP); ``failed_sinks`` and ``faults["sink NAME"]`` hold it while paused."""
        name = self.sink_names.get(id(sink), type(sink).__name__)
        others = ", ".join(self.sink_names.get(id(k), type(k).__name__) for k in self.sinks if k is not sink)
        while notices:
            note = notices.popleft()
            if note.fault is None:
                self.failed_sinks.pop(name, None)
                self.faults = {k: v for k, v in self.faults.items() if k != f"sink {name}"}
            else:
                self.failed_sinks[name] = note.fault
                self._set_fault(f"sink {name}", note.fault)
            events.append(ev.Warning(self.now(), f"{note.message} (other sinks: {others or 'none'})", name))

    def reopen_files(self) -> int:
        """Logrotate's SIGHUP: each file sink finalises its file and starts a new one at its path before its next
        block. Only sets flags, so a signal handler may call it; returns how many sinks were asked."""
        asked = 0
        for sink in list(self.sinks):
            reopen = getattr(sink, "request_reopen", None)
            if reopen is not None:
                reopen()
                asked += 1
        return asked

    def _held_up(self, delay_s: float, events: list[ev.Event]) -> None:
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
        events.append(ev.Warning(self.now(), f"lookahead widened from {1000 * old:.1f} to "
                                             f"{1000 * self.lookahead_s:.1f} ms: the generation thread was held up "
                                             f"{1000 * delay_s:.1f} ms (CPU contention?)", "lookahead"))

    def _device_event(self, clock: ClockSink, state: str, before: str) -> ev.Warning:
        """The warning event for the device sink going ``before`` → ``state`` (lost / relayed / lost again)."""
        name = self.sink_names.get(id(clock), type(clock).__name__)
        others = ", ".join(self.sink_names.get(id(k), type(k).__name__) for k in self.sinks if k is not clock)
        if state == "relayed":
            self.failed_sinks.pop(name, None)
            message = (f"output device {clock.relayed} is back: playing again, through a relay "
                       "process (this process's PortAudio cannot reopen a device it lost)")
        else:
            why = str(clock.lost) if before == "playing" else (
                f"output device lost again: {clock.relay_error or 'its relay process stopped'}")
            self.failed_sinks[name] = why
            message = (f"{why}; generation goes on in real time (other sinks: {others or 'none'}); the runtime "
                       "tries to reopen the device every few seconds")
        return ev.Warning(self.now(), message, name)

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
        # counters carried over when the loop is re-entered after a fault (see _run)
        ls = self._loop_state
        last_underruns = int(ls.get("underruns", 0))
        last_underrun_frames = int(ls.get("underrun_frames", 0))
        last_stalls = int(ls.get("stalls", 0))
        last_stall_frames = int(ls.get("stall_frames", 0))
        started_device = bool(ls.get("started_device", False))
        device_state = str(ls.get("device_state", "playing"))
        last_narrow = time.monotonic()
        pending: list[ev.Event] = []
        fade_left = -1  # frames of the closing fade still to go (-1: not stopping)
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
                        self.clock_sink.start()
                        started_device = True
            t0 = time.perf_counter()
            events: list[ev.Event] = pending
            pending = []
            faulted_silence = False
            with self._locked_turn() as ahead:  # the lock; a prefetching backend's model work done without it
                # what requests posted before this turn goes out before what the step makes of the requests after
                # them: STOP's cut or a load's state change ahead of the block's own state events (a SetState after
                # STOP → PLAY while the model was behind), the rest (warnings) at the head of this turn's events
                early: list[ev.Event] = []
                while self._inbox:
                    posted = self._inbox.popleft()
                    (early if isinstance(posted, ev.StateChange) else events).append(posted)
                conductor = self.conductor
                fading = self._fading if not self.playing else None
                source = fading if fading is not None else conductor  # after STOP: the old music fades out
                block = None
                if source is not None and (self.playing or self._hold_fade > 0):
                    f0 = source.stream_frame
                    block = self._guarded_step(source, events, ahead)
                    if block is None:  # silence, the clocks advanced: it still goes out as a block
                        block = self._silence_block(source, f0)
                        faulted_silence = True
                    if not self.playing:  # PAUSE/STOP: fade this block towards silence
                        total = int(HOLD_FADE_S * SAMPLE_RATE)
                        n = block.pcm.shape[0]
                        g0, g1 = self._hold_fade / total, max(0, self._hold_fade - n) / total
                        # a change scheduled now starts after PLAY, at a time not known yet: announced on PLAY
                        end = (block.frame + n) / SAMPLE_RATE
                        block = dataclasses.replace(
                            block, pcm=block.pcm * np.linspace(g0, g1, n, dtype=np.float32)[:, None],
                            events=[e for e in block.events if not (isinstance(e, ev.StateChange) and e.time >= end
                                                                    and e.phase is ev.Phase.SCHEDULED)])
                        self._hold_fade = max(0, self._hold_fade - n)
                        if fading is not None:
                            if conductor is not None:  # the rewound graph waits (its own time stopped) on the stream
                                conductor.paused_frames = fading.stream_frame - conductor.frame
                            if self._hold_fade == 0:
                                self._fading = None
                elif conductor is not None:
                    # paused: the stream clock runs on in silence; the graph's and the decks' time stands still
                    conductor.paused_frames += self._silence.shape[0]
                else:  # no graph yet: one loaded before self.frame counts this block starts after it
                    self._free_frame = self.frame + self._silence.shape[0]
            pcm = block.pcm if block is not None else self._silence
            self._last_pcm = None if faulted_silence else pcm
            if stopping:
                # the closing fade, over as many blocks as it takes, then the end
                total = max(1, self._fade_frames)
                if fade_left < 0:
                    fade_left = total
                n = pcm.shape[0]
                g0, g1 = fade_left / total, max(0.0, fade_left - n) / total
                pcm = pcm * np.linspace(g0, g1, n, dtype=np.float32)[:, None]
                fade_left -= n
                if block is not None:  # the audio socket hears the same fade as the sinks
                    block = dataclasses.replace(block, pcm=pcm)
            self._write_sinks(pcm, events)
            self.fault_log.flush()
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
                under = int(clock.underruns)
                if under > last_underruns:
                    self.stats.xruns += under - last_underruns
                    last_underruns = under
                    lost_frames = int(clock.underrun_frames) - last_underrun_frames
                    last_underrun_frames += lost_frames
                    old = self.lookahead_s
                    self.lookahead_s = min(self.max_lookahead_s, self.lookahead_s * 1.5)
                    self._remember_jitter(self.lookahead_s / JITTER_SAFETY)  # narrows again only as it decays
                    events.append(ev.Xrun(self.now(), self.stats.xruns, lost_frames, "device",
                                          round(1000 * self.lookahead_s, 1), round(1000 * old, 1)))
                stalls = clock.stalls
                if stalls > last_stalls:
                    self.stats.xruns += stalls - last_stalls
                    last_stalls = stalls
                    frames = clock.stall_frames - last_stall_frames
                    last_stall_frames += frames
                    events.append(ev.Xrun(self.now(), self.stats.xruns, frames, "stall"))
                state = clock.state
                if state != device_state:
                    events.append(self._device_event(clock, state, device_state))
                    device_state = state
            ls.update(underruns=last_underruns, underrun_frames=last_underrun_frames, stalls=last_stalls,
                      stall_frames=last_stall_frames, started_device=started_device, device_state=device_state)
            # (1e-9: 10 chunks of 480 frames are 0.1 s, not 0.0999…: 10 per second, not 9.2)
            if block is not None and self.frame / SAMPLE_RATE - self._last_mix >= MIX_EVENT_INTERVAL_S - 1e-9:
                self._last_mix = self.frame / SAMPLE_RATE
                events.append(ev.Mix(block.frame / SAMPLE_RATE, dict(block.frame_info.weights)))
            if early:  # published before the block's own state events (see the start of the turn)
                if block is not None:
                    block = dataclasses.replace(block, events=[*early, *block.events])
                else:
                    events[:0] = early
            if self.publish is not None:
                self.publish(block, events)
            if self._loop_fault:  # a full turn again after a failure of the loop itself
                self._loop_fault = False
                self.faults = {k: v for k, v in self.faults.items() if k != "generation"}
                pending.append(ev.Warning(self.now(), "recovered: the generation loop runs again", "generation"))
            if stopping and fade_left <= 0:
                return


# ------------------------------------------------------------------ test hook
class _FaultyBackend:
    """A backend whose ``generate`` raises on the steps a CADENZA_TEST_FAULTS ``step:`` rule names (tests only)."""

    def __init__(self, inner: Backend, every: int = 0, after: int = 0, count: int = 0, sleep_ms: int = 0) -> None:
        self._inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self._every, self._after, self._count = every, after, count
        self._sleep_s = sleep_ms / 1000.0
        self.calls = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    @property
    def style_dim(self) -> int:
        return self._inner.style_dim

    def embed(self, prompt: Prompt) -> Embedding:
        if self._sleep_s and "slow" in str(prompt).split():
            time.sleep(self._sleep_s)
        return self._inner.embed(prompt)

    def new_stream(self, seed: int) -> StreamState:
        return self._inner.new_stream(seed)

    def generate(self, state: StreamState, style: np.ndarray, controls: Controls,
                 frames: int) -> tuple[np.ndarray, StreamState]:
        self.calls += 1
        n = self.calls
        if (self._every and n % self._every == 0) or (self._count and self._after <= n < self._after + self._count):
            raise RuntimeError(f"injected fault ({TEST_FAULTS_ENV}, backend step {n})")
        return self._inner.generate(state, style, controls, frames)


class _FaultySink:
    """A sink whose ``after``-th write raises (CADENZA_TEST_FAULTS ``sink:after=N``; tests only)."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.writes = 0

    def write(self, block: np.ndarray) -> None:
        self.writes += 1
        if self.writes >= self.after:
            raise OSError(f"injected fault ({TEST_FAULTS_ENV}, sink write {self.writes})")

    def close(self) -> None:
        pass


def _install_test_faults(engine: LiveEngine, spec: str) -> None:
    """Apply a CADENZA_TEST_FAULTS spec (see the module docstring) to ``engine``."""
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        kind, _, args = item.partition(":")
        opts = {k.strip(): int(v) for k, _, v in (a.partition("=") for a in args.split(",") if a.strip())}
        if kind in ("step", "embed"):
            engine.backend = _FaultyBackend(engine.backend, **opts)
        elif kind == "sink":
            sink = _FaultySink(opts.get("after", 1))
            engine.sinks.append(sink)
            engine.sink_names[id(sink)] = "test-fault-sink"
        else:
            raise ValueError(f"{TEST_FAULTS_ENV}: unknown fault kind {kind!r}; kinds: step, sink, embed")
    log.warning("%s=%r: injecting faults (a test hook)", TEST_FAULTS_ENV, spec)
