"""MIDI clock for ``cadenza midi``: clock out (24 ppqn from the heard beat grid) and clock in (an external tempo).

**Clock out** (``--clock-out PORT``) makes drum machines and DAWs follow Cadenza::

    runtime beat events (stream_time, heard_at, bpm, beat, bar)      ← SDK Client, event thread
        │  HeardClock: stream sample → Unix time heard (heard_at, smoothed; fallback: Status)
        ▼  inbox (a deque: the only thing the two threads share)
    ClockPlan (sans-IO): 24 ticks a beat, interpolated from the last heard beat at its tempo;
        │  SPP + Start/Continue just before the first tick of a (re)start; Stop when the beats stop
        ▼
    JACK process callback: this period's Unix window → each message written at its frame offset
        (JACK-Client); without JACK-Client, a thread that sleeps to each tick and sends through python-rtmidi

Each tick is stamped on the heard grid: tick ``k`` of beat ``n`` is heard at
``heard(n) + k·60/(24·bpm(n))``. The synth changes tempo only on bar lines, and
the beat event on that bar line carries the new tempo, so the grid inside a bar
is exactly predictable: a beat event that comes late (a busy machine) does not
hold the ticks of a beat inside the bar back, while the tick on a bar line waits
for that bar's event (events are published a lookahead ahead of being heard). Song
Position Pointer = 16th notes since the song start, the song starting at the
downbeat the clock first started on: 4 × (the runtime's beat index − that
beat's), modulo 16,384 (the pointer's 14 bits). The first start waits for a
downbeat (slaves start on a bar line) and sends Start (the song's beginning, as
MIDI expects). Transport PAUSE on the runtime stops the beat grid: when a beat
is :data:`STOP_GRACE_BEATS` overdue, MIDI Stop is sent (the ticks went at most
that far past the last heard beat); PLAY's first beat brings SPP + Continue.
Transport STOP (a rewind: the runtime's ``state`` event with transition
``cut``) is the same Stop, and the next start is a Start on a downbeat (the
song from its beginning again). A runtime restart (the beat count goes back) is
Stop, then Start on its first downbeat.

Timing: with JACK-Client the messages carry frame-accurate offsets inside the
period (``jack_frames_to_time`` maps the period to JACK's clock, whose offset to
Unix time is measured every second), so the jitter is that of the heard
clock's smoothing, not of the period. python-rtmidi's JACK backend writes
every message at the start of the next period (jitter ≈ period/√6 on the
interval), plus the sending thread's wake-up.

**Clock in** (``--clock-in PORT``) makes the synth follow an external clock:
tick times (frame-accurate with JACK-Client) → :class:`TempoEstimator` (least
squares over the last 8 beats or 5 s of ticks, whichever is more, refitted
without the outliers, so period quantization and jitter average out: 4 ms of
jitter leaves ±0.04 % at 97 bpm; with JACK-Client the tick times are the
source's frames, exactly) → ``SetControls bpm``
when the estimate moved by :data:`BPM_RESEND` or more (at most once a beat).
A backend without a tempo input (``bpm`` missing from the runtime's controls,
or a warning in the ``Ok``) gets one clear warning, also in the report.

Bar alignment: the wire has no phase control, so on external Start/Continue
(+SPP) the follower, once the tempo is locked, *delays* the synth with
Transport PAUSE then PLAY, spaced by the phase difference between the synth's
next downbeat and the external one; the synth's first downbeat after PLAY is
then measured against the external bar grid (heard time); more than
:data:`ALIGN_TOLERANCE_S` off, one more gap corrects it (closed loop, at most
:data:`ALIGN_PASSES` gaps), and the residual is logged and reported. The
projection uses a beat generated at the clock's tempo (the tempo is usually
sent on the very tick that aligns). It costs one gap of less than a bar per
external Start/Continue (more only when the runtime acted on a request late).
``--clock-in-align off`` skips it.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import math
import sys
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cadenza.errors import CadenzaError, UsageError
from cadenza.runtime.logs import printable

logger = logging.getLogger(__name__)

__all__ = [
    "CLOCK", "CONTINUE", "PPQN", "SONG_POSITION", "START", "STOP",
    "BeatAt", "ClockFollower", "ClockOut", "ClockPlan", "HeardClock", "JackClockIn", "JackClockOut",
    "TempoEstimator", "spp_message",
]

PPQN = 24
CLOCK, START, CONTINUE, STOP, SONG_POSITION = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
SPP_MODULO = 1 << 14  # the pointer's 14 bits (16th notes)
STOP_GRACE_BEATS = 0.25  # a beat this overdue (of its period) means the grid stopped: MIDI Stop
START_LEAD_S = 0.002  # SPP + Start/Continue go out this long before the first tick
HEARD_JUMP_S = 0.02  # a heard-time offset this far from the smoothed one is followed at once (a sink change)
HEARD_GAIN = 0.05  # the smoothing of the heard-time offset (per beat)
TEMPO_WINDOW_TICKS = 384  # the most ticks kept: 16 beats
TEMPO_FIT_BEATS = 8  # the fit spans at least this many beats …
TEMPO_FIT_S = 5.0  # … and at least this long when the ticks are there (fast tempos: more ticks average the jitter)
TEMPO_MIN_TICKS = 24
GRID_SNAP = 0.75  # a tick this many steps or more from the next grid point is placed where the line puts it
GRID_SEED_TICKS = 12  # the first ticks of the window are counted one by one (the line through them seeds the grid)
BPM_RESEND = 0.05
CLOCK_GAP_S = 0.5  # no tick for this long: the external clock stopped (the estimate starts over)
CLOCK_LOST_S = 1.0  # no tick for this long: the clock is lost; the tempo goes back to the graph
PAUSE_FADE_S = 0.05  # the runtime's PAUSE fades out over this long (live.HOLD_FADE_S): the music runs on meanwhile
BEAT_WAIT_S = 4.0  # bar alignment: how long to wait for the runtime's first beat at the clock's tempo after its Start
ALIGN_TOLERANCE_S = 0.015  # bar alignment: a downbeat heard this close to the clock's needs no (further) gap
ALIGN_PASSES = 3  # bar alignment: at most this many PAUSE … PLAY gaps (the first, then corrections measured after it)


def spp_message(sixteenths: int) -> bytes:
    """A Song Position Pointer for ``sixteenths`` 16th notes since the song start (modulo 16,384)."""
    v = sixteenths % SPP_MODULO
    return bytes((SONG_POSITION, v & 0x7F, (v >> 7) & 0x7F))


# ----------------------------------------------------------------------------- the heard grid


@dataclass(frozen=True)
class BeatAt:
    """One runtime beat: its index since the stream started, bar, place in the bar, tempo, and Unix time heard."""

    beat: int
    bar: int
    beat_in_bar: int
    bpm: float
    at: float


class HeardClock:
    """Stream samples → the Unix time they are heard, from the events' ``heard_at`` (smoothed) or a fallback.

    The beat grid is exact in samples; only the offset (heard − samples/rate)
    carries noise, so it is smoothed (a jump over :data:`HEARD_JUMP_S` — a sink
    change, an xrun — is followed at once). Events without ``heard_at`` (a
    runtime that does not fill it) use :meth:`set_fallback`: Status's
    ``heard_time``/``unix_time`` or, lacking those, the status's stream time
    plus the lookahead.
    """

    def __init__(self, sample_rate: int = 48_000) -> None:
        self.rate = sample_rate
        self.offset: float | None = None
        self.fallback: float | None = None

    def set_fallback(self, offset: float) -> None:
        self.fallback = offset

    def heard(self, stream_time: int, heard_at: float) -> float | None:
        """The Unix time ``stream_time`` is heard (updating the offset with ``heard_at`` when it is known)."""
        s = stream_time / self.rate
        if heard_at > 0:
            measured = heard_at - s
            if self.offset is None or abs(measured - self.offset) > HEARD_JUMP_S:
                self.offset = measured
            else:
                self.offset += HEARD_GAIN * (measured - self.offset)
            return s + self.offset
        if self.fallback is None:
            return None
        if self.offset is None or abs(self.fallback - self.offset) > HEARD_JUMP_S:
            self.offset = self.fallback
        else:
            self.offset += HEARD_GAIN * (self.fallback - self.offset)
        return s + self.offset


def status_offset(status: Any, received: float, sample_rate: int) -> float:
    """The heard-time offset (Unix − samples/rate) from a Status snapshot taken about ``received``."""
    heard_time = int(getattr(status, "heard_time", 0) or 0)
    unix_time = float(getattr(status, "unix_time", 0.0) or 0.0)
    if heard_time > 0 and unix_time > 0:
        return unix_time - heard_time / sample_rate
    # generation runs ahead of playback by the lookahead: the status's stream time is heard that much later
    return received + float(status.lookahead_ms) / 1000.0 - int(status.stream_time) / sample_rate


class ClockPlan:
    """The clock-out schedule (sans-IO, one thread): feed :meth:`observe` beats, take messages with :meth:`due`.

    Messages are ``(unix_time, bytes)`` in time order, each given once; a
    message whose time has passed is given at once (the caller sends it now).
    """

    def __init__(self, *, start_lead: float = START_LEAD_S) -> None:
        self.start_lead = start_lead
        self.beats: dict[int, BeatAt] = {}
        self.latest: BeatAt | None = None
        self.running = False
        self.started = False  # sent a Start/Continue once (later restarts may begin on any beat)
        self.next_tick = 0  # global tick index: beat × 24 + tick in beat
        self.pending: BeatAt | None = None  # the beat a (re)start lands on
        self.stops = 0
        self.starts = 0
        self.ticks = 0
        self.last_spp: int | None = None
        self.beats_per_bar = 1  # the most beats a bar had so far
        self.origin: int | None = None  # the runtime's beat the song (Start) began on

    def rewind(self) -> None:
        """Transport STOP: the song starts over — the next start is a Start on a downbeat (the grid's Stop comes
        as for a PAUSE, when the beats stop)."""
        self.started = False
        self.origin = None
        if self.pending is not None and self.pending.beat_in_bar != 0:
            self.pending = None

    def observe(self, b: BeatAt) -> list[tuple[float, bytes]]:
        """Take a beat; returns messages to send at once (Stop when the runtime restarted its count)."""
        out: list[tuple[float, bytes]] = []
        self.beats_per_bar = max(self.beats_per_bar, b.beat_in_bar + 1)
        if self.latest is not None and b.beat <= self.latest.beat:
            if b.beat < self.latest.beat - 1:  # the count went back: a new runtime (or session)
                if self.running:
                    out.append((b.at, bytes((STOP,))))
                    self.stops += 1
                self.beats.clear()
                self.latest = None
                self.running = self.started = False
                self.pending = None
                self.origin = None
            else:
                return out  # a repeat
        self.beats[b.beat] = b
        for old in [k for k in self.beats if k < b.beat - 8]:
            del self.beats[old]
        self.latest = b
        if not self.running and self.pending is None and (self.started or b.beat_in_bar == 0):
            self.pending = b
        return out

    def _tick_time(self, g: int) -> float | None:
        n = g // PPQN
        anchor = self.beats.get(n)
        if anchor is None:
            latest = self.latest
            assert latest is not None
            if n > latest.beat + 1 or (n == latest.beat + 1 and latest.beat_in_bar + 1 >= self.beats_per_bar):
                return None  # a bar line not heard yet (the tempo may change there): wait for its event
            known = [k for k in self.beats if k < n]
            if not known:
                return None
            # the next beat inside the bar (same tempo, exactly predictable), or a lost beat event: extrapolate
            anchor = self.beats[max(known)]
        return anchor.at + (g - anchor.beat * PPQN) * 60.0 / (PPQN * anchor.bpm)

    def due(self, until: float) -> list[tuple[float, bytes]]:
        """The messages timed before ``until`` not given yet."""
        out: list[tuple[float, bytes]] = []
        if not self.running and self.pending is not None:
            b = self.pending
            at = b.at - self.start_lead
            if at >= until:
                return out
            if self.origin is None:
                self.origin = b.beat
            sixteenths = (b.beat - self.origin) * 4
            self.last_spp = sixteenths % SPP_MODULO
            if sixteenths == 0:
                out.append((at, bytes((START,))))
            else:
                out.append((at, spp_message(sixteenths)))
                out.append((at, bytes((CONTINUE,))))
            self.starts += 1
            self.running = self.started = True
            self.pending = None
            self.next_tick = b.beat * PPQN
        while self.running:
            t = self._tick_time(self.next_tick)
            latest = self.latest
            assert latest is not None
            end = latest.at + 60.0 / latest.bpm * (1.0 + STOP_GRACE_BEATS)
            if t is None or t >= end:
                if end < until:  # the next beat is overdue: the runtime paused or stopped
                    out.append((end, bytes((STOP,))))
                    self.stops += 1
                    self.running = False
                break
            if t >= until:
                break
            out.append((t, bytes((CLOCK,))))
            self.next_tick += 1
            self.ticks += 1
        return out


# ----------------------------------------------------------------------------- JACK plumbing


class NoJackServer(UsageError):
    """No JACK server to open a client on (``--clock-api auto`` then uses python-rtmidi)."""


def _jack() -> Any:
    try:
        import jack
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UsageError("MIDI clock over JACK needs the JACK-Client package; pip install JACK-Client",
                         where="--clock-out/--clock-in") from exc
    # libjack's own lines ("Cannot connect to server socket …") go to our log at debug level, not to stderr
    jack.set_error_function(lambda msg: logger.debug("libjack: %s", msg))
    jack.set_info_function(lambda msg: logger.debug("libjack: %s", msg))
    return jack


def _jack_client(client_name: str, *, where: str) -> Any:
    """A JACK client on the running server (never one started for us); :class:`NoJackServer` when none runs."""
    jack = _jack()
    try:
        return jack.Client(client_name, no_start_server=True)
    except jack.JackOpenError as exc:
        raise NoJackServer("no JACK server is running; start jackd (or set JACK_DEFAULT_SERVER to the server's "
                           "name), or --clock-api rtmidi", where=where) from exc


class _JackTime:
    """JACK frames → Unix time: ``jack_frames_to_time`` (the period's place on JACK's clock) + JACK-to-Unix offset."""

    def __init__(self, client: Any) -> None:
        jack = _jack()
        name = ctypes.util.find_library("jack")
        if name is None:  # pragma: no cover - JACK-Client found it already
            raise UsageError("libjack not found; install jackd2 (libjack)", where="--clock-out")
        lib = ctypes.CDLL(name)
        lib.jack_get_time.restype = ctypes.c_uint64
        lib.jack_get_time.argtypes = []
        lib.jack_frames_to_time.restype = ctypes.c_uint64
        lib.jack_frames_to_time.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        self._lib = lib
        self._ptr = int(jack._ffi.cast("uintptr_t", client._ptr))
        self.rate = float(client.samplerate)
        self.offset = 0.0  # Unix − JACK clock, seconds
        self.measure()

    def measure(self) -> None:
        """Unix − JACK clock: the closest of a few back-to-back readings."""
        best: tuple[float, float] | None = None
        for _ in range(5):
            a = time.time()
            j = self._lib.jack_get_time() / 1e6
            b = time.time()
            if best is None or b - a < best[0]:
                best = (b - a, (a + b) / 2 - j)
        assert best is not None
        self.offset = best[1]

    def unix(self, frame: int) -> float:
        return self._lib.jack_frames_to_time(self._ptr, frame & 0xFFFFFFFF) / 1e6 + self.offset


def _connect_to(client: Any, ours: Any, target: str, *, output: bool) -> str:
    """Connect our port to the JACK MIDI port named (or containing) ``target``; returns its full name."""
    ports = client.get_ports(is_midi=True, is_input=output, is_output=not output)
    names = [p.name for p in ports if p.name != ours.name]
    exact = [n for n in names if n == target]
    found = exact or [n for n in names if target.lower() in n.lower()]
    if not found:
        listing = ", ".join(names) or "(none: is the other program running?)"
        raise UsageError(f"no JACK MIDI {'input' if output else 'output'} port matches {target!r}; choose one of: "
                         f"{listing}", where="--clock-out" if output else "--clock-in")
    if output:
        client.connect(ours, found[0])
    else:
        client.connect(found[0], ours)
    return str(found[0])


class ClockOut:
    """Sends the clock of a :class:`ClockPlan` (shared interface of the JACK and rtmidi senders)."""

    def __init__(self) -> None:
        self.plan = ClockPlan()
        self.inbox: deque[BeatAt | None] = deque()  # None: Transport STOP rewound the song
        self.sent: dict[str, int] = {"clock": 0, "start": 0, "continue": 0, "stop": 0, "spp": 0}
        self.late = 0  # messages sent after their time (the beat event came too late)
        self.callback_errors = 0  # periods whose work raised (JACK's process callback never lets it escape)
        self.callback_error: str | None = None  # the first one's text
        self._error_told = False

    def beat(self, b: BeatAt) -> None:
        """From the event thread: a beat heard at ``b.at``."""
        self.inbox.append(b)

    def rewind(self) -> None:
        """From the event thread: Transport STOP (the next start is a Start)."""
        self.inbox.append(None)

    def _count(self, msg: bytes) -> None:
        kind = {CLOCK: "clock", START: "start", CONTINUE: "continue", STOP: "stop", SONG_POSITION: "spp"}[msg[0]]
        self.sent[kind] += 1

    def _take(self, until: float) -> list[tuple[float, bytes]]:
        out: list[tuple[float, bytes]] = []
        while self.inbox:
            b = self.inbox.popleft()
            if b is None:
                self.plan.rewind()
            else:
                out += self.plan.observe(b)
        return out + self.plan.due(until)

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def report(self) -> str:
        s = self.sent
        line = (f"clock out: {s['clock']} ticks, {s['start']} start, {s['continue']} continue, {s['stop']} stop, "
                f"{s['spp']} song positions, {self.late} late")
        if self.callback_errors:
            line += f"; {self.callback_errors} periods failed (first: {self.callback_error})"
        return line


class JackClockOut(ClockOut):
    """Clock out through a JACK-Client MIDI port, each message at its frame offset inside the period."""

    def __init__(self, target: str | None, *, client_name: str = "cadenza-clock-out", latency: float = 0.0) -> None:
        super().__init__()
        self.client = _jack_client(client_name, where="--clock-out")
        self.port = self.client.midi_outports.register("clock")
        self.time = _JackTime(self.client)
        # JACK's process thread needs the GIL every period (2.7 ms at 128 frames): hand it over sooner than 5 ms
        sys.setswitchinterval(min(sys.getswitchinterval(), 0.0005))
        self.latency = latency  # seconds: messages go out this much earlier (the receiver's own latency)
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.target = _connect_to(self.client, self.port, target, output=True) if target else None

    def _process(self, frames: int) -> None:
        # JACK's process thread: an exception must not escape into JACK-Client's cffi callback (the clock would
        # die with a traceback every period): counted, told once by the status thread, the next period goes on
        try:
            self._process_period(frames)
        except Exception as exc:  # noqa: BLE001
            self.callback_errors += 1
            if self.callback_error is None:
                self.callback_error = f"{type(exc).__name__}: {exc}"

    def _process_period(self, frames: int) -> None:
        # JACK's process thread: no I/O, no locks; the deque is the only shared state
        self.port.clear_buffer()
        f0 = self.client.last_frame_time
        rate = self.time.rate
        # what is written in this period leaves at the next one: aim one period ahead
        t0 = self.time.unix(f0) + frames / rate + self.latency
        last = 0
        for t, msg in self._take(t0 + frames / rate):
            off = int(round((t - t0) * rate))
            if off < 0:
                off = 0
                if t < t0 - 1.0 / rate and msg[0] == CLOCK:
                    self.late += 1
            off = min(max(off, last), frames - 1)
            last = off
            self.port.write_midi_event(off, msg)
            self._count(msg)

    def refresh(self) -> None:
        """From a slow thread (once a second): measure the JACK-to-Unix offset again; tell a callback error once."""
        self.time.measure()
        if self.callback_error is not None and not self._error_told:
            self._error_told = True
            logger.warning("clock out: the JACK process callback failed (%s); the clock goes on, "
                           "failures are counted in the exit report", self.callback_error)

    def close(self) -> None:
        try:
            self.client.deactivate()
            self.client.close()
        except Exception:  # noqa: BLE001 - the server may be gone already
            pass


class RtmidiClockOut(ClockOut):
    """Clock out through python-rtmidi (JACK when a server runs, else ALSA); a thread sleeps to each message's
    time. Under JACK every message leaves at the start of the next period (rtmidi cannot give a frame offset)."""

    def __init__(self, target: str | None, *, latency: float = 0.0) -> None:
        super().__init__()
        from cadenza.runtime.midi.ports import choose_api, open_output

        self.api = choose_api(None)
        self.port = open_output(self.api, target, virtual=None if target else "clock",
                                client_name="cadenza-clock-out")
        self.out = self.port.midi
        self.latency = latency
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="midi-clock-out", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time() + self.latency
            for t, msg in self._take(now + 0.001):
                wait = t - (time.time() + self.latency)
                if wait > 0:
                    time.sleep(wait)
                elif wait < -0.001 and msg[0] == CLOCK:
                    self.late += 1
                self.out.send_message(list(msg))
                self._count(msg)
            time.sleep(0.0005)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.port.close()


# ----------------------------------------------------------------------------- clock in


class TempoEstimator:
    """Tick times → bpm: least squares over the last :data:`TEMPO_WINDOW_TICKS` ticks (see :meth:`bpm`)."""

    def __init__(self, window: int = TEMPO_WINDOW_TICKS, *, exact: bool = False) -> None:
        #: ``exact``: the times are frame-accurate (JACK-Client), so a tick's index follows from its time (a lost
        #: tick is not miscounted); period-quantized times (rtmidi) are counted one by one
        self.exact = exact
        self.ticks: deque[float] = deque(maxlen=window)

    def reset(self) -> None:
        self.ticks.clear()

    def add(self, t: float) -> None:
        if self.ticks and t - self.ticks[-1] > CLOCK_GAP_S:
            self.ticks.clear()
        self.ticks.append(t)

    def bpm(self) -> float | None:
        """The tempo, or None before :data:`TEMPO_MIN_TICKS` ticks: the line through the tick times, refitted once
        without the ticks far from it (more than 4 × the median distance)."""
        n = len(self.ticks)
        if n < TEMPO_MIN_TICKS:
            return None
        ts = list(self.ticks)
        first = max(0, n - TEMPO_FIT_BEATS * PPQN)
        while first > 0 and ts[-1] - ts[first - 1] <= TEMPO_FIT_S:
            first -= 1
        ts = ts[first:]
        n = len(ts)
        slope, spread = _robust_fit(list(range(n)), ts)
        if self.exact:
            # the ticks counted one by one, or placed on the grid by their times (lost ticks, late bursts): the
            # indexing the ticks fit better (under heavy jitter counting wins; with a lost tick the grid does)
            grid = _robust_fit(_grid_indices(ts), ts)
            if grid[1] < spread:
                slope, spread = grid
        if slope <= 0:
            return None
        return 60.0 / (PPQN * slope)


def _robust_fit(idx: list[int], ts: list[float]) -> tuple[float, float]:
    """(slope, median |residual|): the line through (index, time), refitted once without the ticks far from it
    (more than 4 × the median distance)."""
    n = len(ts)
    slope, icpt = _fit(idx, ts)
    res = [t - (icpt + slope * k) for k, t in zip(idx, ts)]
    med = statistics.median(abs(r) for r in res)
    keep = [j for j in range(n) if abs(res[j]) <= max(4.0 * med, 1e-4)]
    if TEMPO_MIN_TICKS <= len(keep) < n:
        slope, icpt = _fit([idx[j] for j in keep], [ts[j] for j in keep])
    return slope, med


def _grid_indices(ts: list[float]) -> list[int]:
    """Each tick's place on the grid from its time: a lost tick leaves its index out, a late burst (the source
    missed periods) lands on the grid points it was late for, instead of shifting every later index.

    Each tick is the next grid point unless the line fitted (least squares, running sums) through the ticks
    before it puts it :data:`GRID_SNAP` steps or more away: the prediction's error is the ticks' own jitter, and
    a misplaced tick is one outlier (the next one is placed against the line again). A single interval, or the
    median one (whose error grows along the window), misplaced ticks under a few ms of jitter (the outside test's
    4 ms sd: ±1.5 % of tempo wander)."""
    idx = [0]
    t0 = ts[0]  # times relative to the first (the sums stay small)
    n, sx, sy, sxx, sxy = 1, 0.0, 0.0, 0.0, 0.0
    for t in ts[1:]:
        last = idx[-1]
        den = n * sxx - sx * sx
        slope = (n * sxy - sx * sy) / den if n >= GRID_SEED_TICKS and den > 0 else 0.0
        if slope > 0:
            icpt = (sy - slope * sx) / n
            place = (t - t0 - icpt) / slope
            # the next index unless the line puts the tick clearly elsewhere (a lost tick: ≈ +2; a late burst: the
            # point it was late for): jitter up to a quarter of a step cannot misplace it
            k = last + 1 if abs(place - (last + 1)) < GRID_SNAP else round(place)
        else:
            k = last + 1
        idx.append(k)
        n += 1
        sx += k
        sy += t - t0
        sxx += k * k
        sxy += k * (t - t0)
    return idx


def _fit(xs: list[int], ys: list[float]) -> tuple[float, float]:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    slope = sxy / sxx if sxx else 0.0
    return slope, my - slope * mx


@dataclass
class FollowerStats:
    ticks: int = 0
    starts: int = 0
    stops: int = 0
    bpm_sent: int = 0
    last_bpm: float | None = None
    aligned: int = 0
    align_error_ms: float | None = None
    warnings: list[str] = field(default_factory=list)


class ClockFollower:
    """An external 24 ppqn clock → the runtime's tempo (and bar alignment on Start/Continue).

    ``handle(msg, t)`` is called for every realtime message with its Unix
    time; it calls ``set_bpm(bpm)`` (which returns the runtime's warnings) at
    most once a beat, and ``align(downbeat_at, bar_seconds)`` once the tempo is
    locked after a Start/Continue, with the Unix time of an external downbeat.
    """

    def __init__(self, set_bpm: Callable[[float], Iterable[str]],
                 align: Callable[[float, float], float | None] | None = None, *, beats_per_bar: int = 4,
                 exact: bool = False, clear_bpm: Callable[[], None] | None = None) -> None:
        self.set_bpm = set_bpm
        self.clear_bpm = clear_bpm
        self.last_tick: float | None = None  # Unix time of the latest tick
        self.lost = 0  # times the clock was lost (no tick for CLOCK_LOST_S) while it set the tempo
        self._aligning = False
        self.align = align
        self.beats_per_bar = beats_per_bar
        self.estimator = TempoEstimator(exact=exact)
        self.stats = FollowerStats()
        self.running = False
        self.position: int | None = None  # external ticks since its song start (known after Start/SPP)
        self.spp = 0
        self.want_align = False
        self._since_beat = 0
        self._warned = False

    def handle(self, msg: bytes, t: float, tempo_t: float | None = None) -> None:
        """One realtime message heard at Unix time ``t``; ``tempo_t``: its time on the source's own clock
        (JACK frames / rate), which the tempo is measured on when given."""
        kind = msg[0] if msg else 0
        if kind == CLOCK:
            self._tick(t, t if tempo_t is None else tempo_t)
        elif kind == START:
            self.spp = 0
            self._start()
        elif kind == CONTINUE:
            self._start()
        elif kind == STOP:
            self.running = False
            self.stats.stops += 1
        elif kind == SONG_POSITION and len(msg) >= 3:
            self.spp = (msg[1] & 0x7F) | ((msg[2] & 0x7F) << 7)

    def _start(self) -> None:
        self.running = True
        self.stats.starts += 1
        self.position = self.spp * 6 - 1  # the first tick after Start/Continue is at the song position
        self.want_align = self.align is not None

    def check_lost(self, now: float) -> bool:
        """Call every few hundred ms: no tick for :data:`CLOCK_LOST_S` means the clock is lost (unplugged, a
        source that stopped without Stop): logged, and the ``bpm`` override given back to the graph."""
        last = self.last_tick
        if last is None or self._aligning or now - last < CLOCK_LOST_S:
            return False
        self.last_tick = None
        self.lost += 1
        self.estimator.reset()
        self._since_beat = 0
        had = self.stats.last_bpm
        self.stats.last_bpm = None  # the next clock sets it again
        if had is not None and self.clear_bpm is not None:
            self.clear_bpm()
            logger.warning("clock in: the clock is lost (no tick for %.1f s); the tempo goes back to the graph's "
                           "(bpm override of %g cleared)", now - last, had)
        else:
            logger.warning("clock in: the clock is lost (no tick for %.1f s)", now - last)
        return True

    def _tick(self, t: float, tempo_t: float) -> None:
        if self.last_tick is None and self.stats.ticks:
            logger.info("clock in: the clock is back")
        self.last_tick = time.time()  # when it was handled (a backlog after an alignment counts as fresh)
        self.stats.ticks += 1
        self.estimator.add(tempo_t)
        if self.position is not None:
            self.position += 1
        self._since_beat += 1
        if self._since_beat < PPQN:
            return
        self._since_beat = 0
        bpm = self.estimator.bpm()
        if bpm is None:
            return
        if self.stats.last_bpm is None or abs(bpm - self.stats.last_bpm) >= BPM_RESEND:
            value = round(bpm, 2)
            warnings = list(self.set_bpm(value))
            self.stats.bpm_sent += 1
            self.stats.last_bpm = value
            if warnings and not self._warned:
                self._warned = True
                line = (f"the runtime does not follow the external tempo: {'; '.join(warnings)} "
                        "(its backend has no tempo input; the clock in sets nothing else)")
                self.stats.warnings.append(line)
                logger.warning("%s", line)
        if self.want_align and self.position is not None and self.align is not None \
                and len(self.estimator.ticks) >= 2 * PPQN:
            self.want_align = False
            bar_ticks = PPQN * self.beats_per_bar
            ahead = (-self.position) % bar_ticks or bar_ticks  # ticks to the next external downbeat
            period = 60.0 / (PPQN * bpm)
            self._aligning = True  # the alignment holds this thread for up to a bar: not a lost clock
            try:
                error = self.align(t + ahead * period, bar_ticks * period)
            finally:
                self._aligning = False
            if error is not None:
                self.stats.aligned += 1
                self.stats.align_error_ms = error * 1000.0

    def warn_no_tempo(self, why: str) -> None:
        if not self._warned:
            self._warned = True
            line = f"the runtime cannot follow the external tempo: {why}"
            self.stats.warnings.append(line)
            logger.warning("%s", line)

    def report(self) -> str:
        s = self.stats
        line = (f"clock in: {s.ticks} ticks, {s.starts} start/continue, {s.stops} stop, bpm sent {s.bpm_sent} times "
                f"(last {s.last_bpm if s.last_bpm is not None else '-'})")
        if self.lost:
            line += f", lost {self.lost} times"
        if s.aligned:
            line += f", bar aligned {s.aligned} times (last error {s.align_error_ms:+.1f} ms)"
        for w in s.warnings:
            line += f"; WARNING: {w}"
        return line


class JackClockIn:
    """Reads an external clock from a JACK-Client MIDI port: each message with the Unix time of its frame."""

    def __init__(self, source: str | None, handle: Callable[[bytes, float, float], None], *,
                 client_name: str = "cadenza-clock-in") -> None:
        self.client = _jack_client(client_name, where="--clock-in")
        self.port = self.client.midi_inports.register("clock")
        self.time = _JackTime(self.client)
        self.inbox: deque[tuple[bytes, float, float]] = deque(maxlen=4096)
        self._anchor: tuple[int, float] | None = None
        self._frames = 0  # frames since the first message, unwrapped (the tempo's time base)
        self._last_frame: int | None = None
        self.handle = handle
        self.callback_errors = 0
        self.callback_error: str | None = None
        self.client.set_process_callback(self._process)
        self.client.activate()
        self.source = _connect_to(self.client, self.port, source, output=False) if source else None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="midi-clock-in", daemon=True)
        self._thread.start()

    def _process(self, frames: int) -> None:
        try:  # never into JACK-Client's cffi callback: counted, told once by the reading thread
            self._process_period()
        except Exception as exc:  # noqa: BLE001
            self.callback_errors += 1
            if self.callback_error is None:
                self.callback_error = f"{type(exc).__name__}: {exc}"

    def _process_period(self) -> None:
        f0 = self.client.last_frame_time
        for offset, data in self.port.incoming_midi_events():
            msg = bytes(data)
            if msg and msg[0] >= 0xF0:
                frame = f0 + offset
                self._frames += (frame - self._last_frame) & 0xFFFFFFFF if self._last_frame is not None else 0
                self._last_frame = frame
                self.inbox.append((msg, self._at(frame), self._frames / self.time.rate))

    def _at(self, frame: int) -> float:
        """A frame's Unix time on a straight line through the frames (the tempo is measured in the source's
        frames, exactly), re-anchored on JACK's clock only when the two drift apart by more than 20 ms."""
        if self._anchor is not None:
            f, u = self._anchor
            t = u + ((frame - f) & 0xFFFFFFFF) / self.time.rate
            if abs(t - self.time.unix(frame)) < 0.02 and frame - f < 0x7FFFFFFF:
                return t
        t = self.time.unix(frame)
        self._anchor = (frame, t)
        return t

    def _run(self) -> None:
        last_measure = time.monotonic()
        told = False
        while not self._stop.is_set():
            while self.inbox:
                msg, t, frames_s = self.inbox.popleft()
                try:
                    self.handle(msg, t, frames_s)
                except Exception as exc:  # noqa: BLE001 - the clock keeps being read
                    logger.warning("clock in: %s", exc)
            if time.monotonic() - last_measure > 1.0:
                self.time.measure()
                last_measure = time.monotonic()
                if self.callback_error is not None and not told:
                    told = True
                    logger.warning("clock in: the JACK process callback failed %d times (first: %s); reading goes on",
                                   self.callback_errors, self.callback_error)
            time.sleep(0.002)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        try:
            self.client.deactivate()
            self.client.close()
        except Exception:  # noqa: BLE001
            pass


# ----------------------------------------------------------------------------- wiring to the runtime


class ClockOutBridge:
    """Runtime beat events (SDK :class:`~cadenza.sdk.Client`) → a :class:`ClockOut`; heard times from the events."""

    def __init__(self, client: Any, out: ClockOut) -> None:
        self.client = client
        self.out = out
        self.rate = client.sample_rate if hasattr(client, "sample_rate") else 48_000
        self.heard = HeardClock(self.rate)
        self.margins: deque[float] = deque(maxlen=1000)  # how long before it is heard each beat event came
        self._stop = threading.Event()
        self._poll()
        self._origin: int | None = None
        client.on("beat", self._beat)
        client.on("state", self._state)
        self._thread = threading.Thread(target=self._run, name="midi-clock-status", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        try:
            sent = time.time()
            st = self.client.status()
            self.heard.set_fallback(status_offset(st, (sent + time.time()) / 2, self.rate))
        except Exception as exc:  # noqa: BLE001 - the runtime may be restarting; the SDK reconnects
            logger.debug("status for the heard clock: %s", exc)

    def _beat(self, ev: Any) -> None:
        at = self.heard.heard(int(ev.stream_time), float(getattr(ev, "heard_at", 0.0) or 0.0))
        if at is None:
            return
        self.margins.append(at - time.time())
        logger.debug("beat %d at stream %d heard %.4f (%.1f ms ahead), %.2f bpm", ev.beat, ev.stream_time, at,
                     (at - time.time()) * 1000, ev.bpm)
        self.out.beat(BeatAt(beat=int(ev.beat), bar=int(ev.bar), beat_in_bar=int(ev.beat_in_bar),
                             bpm=float(ev.bpm), at=at))

    def _state(self, ev: Any) -> None:
        if getattr(ev, "transition", "") == "cut":  # Transport STOP rewound the runtime: the song starts over
            self.out.rewind()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.out.refresh() if hasattr(self.out, "refresh") else None
            self._poll()
            origin = self.out.plan.origin
            if origin is not None and origin != self._origin:
                logger.info("clock out: Start on the runtime's beat %d: song position 0 there", origin)
            self._origin = origin

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.out.close()


class ClockInBridge:
    """An external clock → ``SetControls bpm`` (and PAUSE/PLAY bar alignment) through the SDK client."""

    def __init__(self, client: Any, source: str | None, *, align: bool = True, use_jack: bool | None = None) -> None:
        self.client = client
        self.rate = getattr(client, "sample_rate", 48_000)
        self.heard = HeardClock(self.rate)
        self._last_beat: Any = None
        self.follower = ClockFollower(self._set_bpm, self._align if align else None, clear_bpm=self._clear_bpm)
        self._stop = threading.Event()
        info = client.hello()
        if "bpm" not in info.controls:
            self.follower.warn_no_tempo(f"backend {info.backend!r} has no tempo input (its controls: "
                                        f"{', '.join(info.controls) or 'none'})")
        client.on("beat", self._beat)
        self.input: Any = _open_clock_in(source, self.follower.handle, use_jack)
        self.follower.estimator.exact = isinstance(self.input, JackClockIn)
        self._watch = threading.Thread(target=self._watch_clock, name="midi-clock-in-watch", daemon=True)
        self._watch.start()

    def _watch_clock(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.follower.check_lost(time.time())
            except Exception as exc:  # noqa: BLE001 - the watch goes on
                logger.warning("clock in: %s", exc)

    def _clear_bpm(self) -> None:
        """Give the tempo back to the graph (SetControls clear bpm)."""
        try:
            self.client.clear_controls("bpm")
        except Exception as exc:  # noqa: BLE001 - reported, the bridge goes on
            logger.warning("clock in: giving the tempo back to the graph failed: %s", exc)

    def _set_bpm(self, bpm: float) -> Iterable[str]:
        try:
            ack = self.client.set_controls(bpm=bpm)
        except Exception as exc:  # noqa: BLE001 - reported, the bridge goes on
            logger.warning("clock in: setting bpm %.2f failed: %s", bpm, exc)
            return ()
        return [w for w in ack.warnings if "bpm" in w]

    def _beat(self, ev: Any) -> None:
        at = self.heard.heard(int(ev.stream_time), float(getattr(ev, "heard_at", 0.0) or 0.0))
        if at is not None:
            self._last_beat = (ev, at)

    def _align(self, downbeat_at: float, bar_s: float) -> float | None:
        """Delay the synth (PAUSE … PLAY) so that its next downbeat is heard on an external downbeat.

        Closed loop: the first pass projects the synth's next downbeat from its latest beat event *at the
        clock's tempo* (the tempo was usually sent on the same tick: beats already generated at the old tempo
        would project it wrong); each pass measures where the synth's first downbeat after PLAY is heard and,
        when that is off by more than :data:`ALIGN_TOLERANCE_S`, corrects it with one more gap (at most
        :data:`ALIGN_PASSES` passes)."""
        want_bpm = 60.0 * 4 / bar_s  # the beats_per_bar of the follower (4)
        beat = self._beat_at_tempo(want_bpm, time.time() + BEAT_WAIT_S)
        if beat is None:
            try:
                st = self.client.status()
                self.heard.set_fallback(status_offset(st, time.time(), self.rate))
            except Exception:  # noqa: BLE001
                pass
            logger.warning("clock in: no beat at the clock's tempo (%.2f bpm) heard from the runtime within %.0f s "
                           "of the clock's Start: bar alignment skipped (the tempo still follows the clock)",
                           want_bpm, BEAT_WAIT_S)
            return None
        ev, at = beat
        beat_s = 60.0 / float(ev.bpm)
        ours = at + ((4 - int(ev.beat_in_bar)) % 4 or 4) * beat_s  # the synth's next downbeat, heard
        error = (ours - downbeat_at + bar_s / 2) % bar_s - bar_s / 2  # projected, before any gap
        paused_ms: list[float] = []
        for _ in range(ALIGN_PASSES):
            phase = (-error) % bar_s  # how long the synth must wait to land on an external downbeat
            if phase < ALIGN_TOLERANCE_S or bar_s - phase < ALIGN_TOLERANCE_S:
                break
            measured = self._gap(phase, bar_s, downbeat_at)
            if measured is None:
                return None
            paused_ms.append(phase * 1000)
            error = measured
        if not paused_ms:
            return error
        passes = f" in {len(paused_ms)} passes" if len(paused_ms) > 1 else ""
        logger.info("clock in: bar aligned (paused %s ms%s): the synth's downbeat is heard %+.1f ms from the "
                    "clock's", " + ".join(f"{p:.0f}" for p in paused_ms), passes, error * 1000)
        return error

    def _beat_at_tempo(self, bpm: float, deadline: float) -> tuple[Any, float] | None:
        """The latest beat event generated at ``bpm`` (±0.5 %), waiting for one until ``deadline``."""
        while True:
            last = self._last_beat
            if last is not None and abs(float(last[0].bpm) - bpm) <= 0.005 * bpm:
                return last
            if time.time() >= deadline:
                return None
            time.sleep(0.01)

    def _gap(self, phase: float, bar_s: float, downbeat_at: float) -> float | None:
        """One PAUSE … PLAY gap of ``phase`` s; returns where the synth's first downbeat after PLAY is heard
        against the external bar grid (s, within ± half a bar), or None (logged) when it could not be done."""
        try:
            self.client.pause()
            sent = time.time()
            # the music plays on through PAUSE's fade: the gap it leaves is that much shorter than the requests' spacing
            time.sleep(max(0.0, phase + PAUSE_FADE_S - (time.time() - sent)))
            played = self.client.play()
        except Exception as exc:  # noqa: BLE001
            logger.warning("clock in: bar alignment failed: %s", exc)
            return None
        if played.stream_time is None:
            return None
        deadline = time.time() + 2 * bar_s + 1.0
        while time.time() < deadline:
            last = self._last_beat
            if last is not None and last[0].beat_in_bar == 0 and last[0].stream_time >= played.stream_time:
                error = (last[1] - downbeat_at + bar_s / 2) % bar_s - bar_s / 2
                logger.info("clock in: gap of %.0f ms: the synth's next downbeat is heard %+.1f ms off the clock's",
                            phase * 1000, error * 1000)
                return error
            time.sleep(0.01)
        logger.warning("clock in: no downbeat heard after the bar alignment's PLAY")
        return None

    def close(self) -> None:
        """Stop reading; the ``bpm`` override this bridge set goes back to the graph (the states' own tempos)."""
        self._stop.set()
        self.input.close()
        self._watch.join(1.0)
        if self.follower.stats.last_bpm is not None:
            self.follower.stats.last_bpm = None
            self._clear_bpm()


def _open_clock_in(source: str | None, handle: Callable[[bytes, float, float | None], None],
                   use_jack: bool | None) -> Any:
    if use_jack is not False:
        try:
            import jack  # noqa: F401
            return JackClockIn(source, handle)
        except (ImportError, NoJackServer):
            if use_jack:
                raise
    return _RtmidiClockIn(source, handle)


class _RtmidiClockIn:
    """python-rtmidi input: each message timed on arrival (period-quantized under JACK; the estimator averages)."""

    def __init__(self, source: str | None, handle: Callable[[bytes, float, float | None], None]) -> None:
        from cadenza.runtime.midi.ports import choose_api, open_input, read_input

        self.port = open_input(choose_api(None), source, virtual=None if source else "clock",
                               client_name="cadenza-clock-in")
        self.port.midi.ignore_types(sysex=True, timing=False, active_sense=True)
        # drained by our own thread (ports.read_input): no Python runs in JACK's process thread
        self._stop = threading.Event()
        self._reader = read_input(self.port, lambda data: handle(bytes(data), time.time(), None), self._stop,
                                  name="cadenza-clock-in")

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=0.5)
        self.port.close()


def open_clock_out(target: str | None, *, use_jack: bool | None = None, latency: float = 0.0) -> ClockOut:
    """A clock-out sender: JACK-Client (frame-accurate) when installed and a JACK server runs, else python-rtmidi."""
    if use_jack is not False:
        try:
            import jack  # noqa: F401
            return JackClockOut(target, latency=latency)
        except (ImportError, NoJackServer):
            if use_jack:
                raise
    return RtmidiClockOut(target, latency=latency)


CLOCK_LATENCY_MAX_MS = 1000.0  # a device later than a second is not one to clock


def _latency_ms(text: str) -> float:
    """``--clock-latency``: a finite number of milliseconds in [0, :data:`CLOCK_LATENCY_MAX_MS`]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r} (give milliseconds, e.g. 5)") from None
    if not (math.isfinite(value) and 0.0 <= value <= CLOCK_LATENCY_MAX_MS):
        raise argparse.ArgumentTypeError(f"must be a finite number of ms from 0 to {CLOCK_LATENCY_MAX_MS:g}, "
                                         f"got {text!r}")
    return value


class _ClockFlag(argparse.Action):
    """Stores the flag and hands ``cadenza midi`` the clock as its ``midi_extra`` (see :class:`ClockExtra`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.midi_extra = ClockExtra(namespace)


def add_clock_arguments(parser: argparse.ArgumentParser) -> None:
    """The clock flags of ``cadenza midi`` (``--clock-out``/``--clock-in`` set ``args.midi_extra``)."""
    parser.add_argument("--clock-out", metavar="PORT", default=None, action=_ClockFlag,
                        help="send 24 ppqn MIDI clock, Start/Stop/Continue and Song Position Pointer from the heard "
                             "beat grid to this MIDI input port (a JACK port's name or part of it)")
    parser.add_argument("--clock-in", metavar="PORT", default=None, action=_ClockFlag,
                        help="follow the tempo of the MIDI clock from this MIDI output port (bpm; bar alignment "
                             "on Start/Continue)")
    parser.add_argument("--clock-in-align", choices=("pause", "off"), default="pause",
                        help="on external Start/Continue, align the synth's bar line to the clock's with one "
                             "Transport PAUSE/PLAY gap of less than a bar (default), or not at all")
    parser.add_argument("--clock-latency", metavar="MS", type=_latency_ms, default=0.0,
                        help="send the clock this many milliseconds early (the receiving device's own latency; "
                             f"0 to {CLOCK_LATENCY_MAX_MS:g})")
    parser.add_argument("--clock-api", choices=("auto", "jack", "rtmidi"), default="auto",
                        help="MIDI library for the clock: JACK-Client (frame-accurate; the default when it is "
                             "installed) or python-rtmidi (messages at period starts under JACK)")


class ClockExtra:
    """``cadenza midi``'s ``midi_extra``: starts the clock on the bridge's SDK client; returns its at-exit."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def __call__(self, client: Any, bridge: Any, api: Any, stop: threading.Event) -> Callable[[], None]:
        bridges = start_clock(self.args, client)

        def at_exit() -> None:
            for line in clock_report(bridges):
                print(f"cadenza midi: {printable(line)}", flush=True)
            for b in bridges:
                b.close()

        return at_exit


def start_clock(args: Any, client: Any) -> list[Any]:
    """Start what ``args`` asks for (``--clock-out``/``--clock-in``) on an open SDK client; returns the bridges
    (each has ``close()``; ``out.report()`` / ``follower.report()`` for the exit report)."""
    use_jack = {"auto": None, "jack": True, "rtmidi": False}[getattr(args, "clock_api", "auto")]
    bridges: list[Any] = []
    if getattr(args, "clock_out", None):
        latency = float(getattr(args, "clock_latency", 0.0)) / 1000.0
        bridges.append(ClockOutBridge(client, open_clock_out(args.clock_out, use_jack=use_jack, latency=latency)))
    if getattr(args, "clock_in", None):
        bridges.append(ClockInBridge(client, args.clock_in, align=getattr(args, "clock_in_align", "pause") != "off",
                                     use_jack=use_jack))
    return bridges


def clock_report(bridges: Iterable[Any]) -> list[str]:
    lines = []
    for b in bridges:
        if isinstance(b, ClockOutBridge):
            m = sorted(b.margins)
            ahead = (f"; beat events came {m[len(m) // 100] * 1000:.1f} ms (1st percentile), "
                     f"{m[len(m) // 2] * 1000:.1f} ms (median) before they were heard") if m else ""
            lines.append(b.out.report() + ahead)
        elif isinstance(b, ClockInBridge):
            lines.append(b.follower.report())
    return lines


def run_clock_only(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """``cadenza midi --clock-out/--clock-in`` without a mapping file: the clock alone until SIGTERM/SIGINT."""
    import signal

    from cadenza.endpoints import endpoint_source
    from cadenza.sdk import Client

    control = getattr(args, "control", None) or endpoint_source("control")[0]
    events = getattr(args, "events", None) or endpoint_source("events")[0]
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    client = Client(control, events, timeout=float(getattr(args, "timeout", 2.0) or 2.0), name="cadenza-midi-clock")
    try:
        at_exit = ClockExtra(args)(client, None, None, stop)
        what = " and ".join(f"{k} {v}" for k, v in (("clock out to", args.clock_out), ("clock in from", args.clock_in))
                            if v)
        print(f"cadenza midi: {what} -> control={control}", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        finally:
            at_exit()
    finally:
        client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m cadenza.runtime.midi.clock [--control E] [--events E] --clock-out/--clock-in PORT``."""
    p = argparse.ArgumentParser(prog="cadenza-midi-clock", description="MIDI clock out/in for a running runtime")
    p.add_argument("--control", default=None)
    p.add_argument("--events", default=None)
    add_clock_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="cadenza midi: %(message)s")
    if not (args.clock_out or args.clock_in):
        p.error("nothing to do: give --clock-out PORT and/or --clock-in PORT")
    try:
        return run_clock_only(args)
    except CadenzaError as exc:
        print(f"cadenza midi: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
