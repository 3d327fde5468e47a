"""The sink's end of the device relay: after a :class:`~cadenza.runtime.sinks.device.DeviceSink` lost its
device, start relay processes until one plays again, pipe the audio to it, read what it reports, and keep
real time on the monotonic clock meanwhile.

The other end, the relay process, is :mod:`cadenza.runtime.sinks.relay`
(its docstring draws the pipe and the line protocol). One :class:`RelayLink`
per sink; it is idle until :meth:`RelayLink.begin` is called at the loss, and
from then on:

- :meth:`RelayLink.queued` is the frames written since the loss less the
  wall-clock time since then (what the sink reports as ``queued_frames``), so
  a live producer keeps real time whether or not a relay plays;
- :meth:`RelayLink.tend` starts a relay every few seconds (backing off by half
  each failure, up to ``RELAY_RETRY_MAX_S``) and reads its lines; ``relayed``
  names the device once one says ``ready``;
- :meth:`RelayLink.write` pipes a block to it while it plays (blocking while
  its small pipe is full), else only counts the block as discarded;
- the relay's underruns and stalls, and the relay falling behind real time
  (``RELAY_LAG_S`` beyond a ``RELAY_DRIFT`` of clock difference, confirmed for
  ``RELAY_LAG_CONFIRM_S``: a stall of that many frames, ``lag_frames`` in
  all), are counted here; the sink adds them to its own.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import numpy as np

from cadenza.runtime.audio import CHANNELS, SAMPLE_RATE

__all__ = ["RELAY_LAG_CONFIRM_S", "RELAY_LAG_S", "RelayLink"]

#: After losing its device, the sink tries a relay this long after the loss, then
#: backs off by half each failure, up to RELAY_RETRY_MAX_S.
RELAY_RETRY_S = 1.0
RELAY_RETRY_MAX_S = 5.0
RELAY_BUFFER_S = 0.1  # the relay's own ring (its added latency)
PIPE_CHUNK = 4096  # bytes per write to the relay (whole frames)
RELAY_PIPE_BYTES = 16384  # the pipe to the relay: small, so little latency builds up in it (~40 ms)
RELAY_STALL_S = 0.5  # a relay whose pipe takes nothing for this long is given up
#: A relay that takes audio slower than real time holds the producer back (its pipe is full): once the stream is
#: this far behind the monotonic clock, the sink counts a stall (an xrun to the runtime) of that many frames ...
RELAY_LAG_S = 0.1
#: ... beyond a device clock up to this much slower than the machine's (sound cards differ by ~0.01 %), which is
#: forgiven every RELAY_DRIFT_WINDOW_S seconds
RELAY_DRIFT = 0.001
RELAY_DRIFT_WINDOW_S = 10.0
#: ... and once it stayed so this long without the relay reporting an underrun or a stall of its own (which would
#: account for the lag already: its report comes a little after the producer sees the lag)
RELAY_LAG_CONFIRM_S = 0.25
FRAME_BYTES = CHANNELS * 4  # float32


class RelayLink:
    """The relay process that plays for a sink whose device was lost, and the real-time reckoning meanwhile."""

    def __init__(self, selector: str | int | None) -> None:
        self.selector = selector
        self.relayed: str | None = None  # the device the relay plays on, while it does
        self.error = ""  # why the last relay could not open the device, or lost it
        self.dropped = 0  # frames lost with a relay given up mid-block
        self.starts = 0
        self.lag_frames = 0  # frames the relay fell behind real time (counted in stalls too)
        # what the relays reported, and the lag stalls (the sink adds them to its own counters)
        self.underruns = 0
        self.underrun_frames = 0
        self.stalls = 0
        self.stall_frames = 0
        self._written = 0  # frames handed to write()/discard() since begin()
        self._clock = 0.0  # monotonic time of the loss, or of the last rebase
        self._base = 0  # self._written at that time, less the frames then behind
        self._lag_reported = (0, 0)  # (underruns, stalls) when the relay's lag was last looked at
        self._lag_since = 0.0  # monotonic time the relay's lag was first seen past RELAY_LAG_S (0: it is not)
        self._proc: subprocess.Popen[bytes] | None = None
        self._next = 0.0
        self._failures = 0
        self._out = b""
        self._seen = {"underruns": (0, 0), "stalls": (0, 0)}

    def begin(self) -> None:
        """The device was lost now: keep real time from here, and try the first relay in RELAY_RETRY_S."""
        self._clock = time.monotonic()
        self._next = self._clock + RELAY_RETRY_S

    def queued(self) -> int:
        """Frames written since the loss less the wall-clock time since then (the sink's ``queued_frames``)."""
        played = (time.monotonic() - self._clock) * SAMPLE_RATE
        return int(self._written - self._base - played)

    def discard(self, frames: int) -> None:
        """Count ``frames`` written after the loss that nothing plays."""
        self._written += frames

    def write(self, arr: np.ndarray) -> None:
        """Hand a block to the relay while one plays (else it is only counted)."""
        self._written += len(arr)
        if self.relayed is not None and self._proc is not None:
            self._pipe(arr)

    def tend(self) -> None:
        """Start a relay when it is time; read what the running one says; notice it exiting. Never blocks."""
        relay = self._proc
        if relay is None:
            if time.monotonic() >= self._next:
                self._start()
            return
        self._read()
        if relay.poll() is not None:
            self._drop(f"the relay exited with status {relay.returncode}")

    def close(self) -> None:
        """Close the relay's stdin (it stops its device and exits) and wait for it."""
        if self._proc is not None:
            self.error = ""
            self._drop("closed")

    def _start(self) -> None:
        env = dict(os.environ)
        env["JACK_NO_START_SERVER"] = "1"  # reattach to a server that is back, never start one
        selector = "" if self.selector is None else str(self.selector)
        argv = [sys.executable, "-m", "cadenza.runtime.sinks.relay", selector, str(RELAY_BUFFER_S)]
        try:
            relay = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:
            self.error = f"cannot start the relay process: {exc}"
            self._backoff()
            return
        assert relay.stdin is not None and relay.stdout is not None
        os.set_blocking(relay.stdin.fileno(), False)
        os.set_blocking(relay.stdout.fileno(), False)
        try:
            import fcntl

            fcntl.fcntl(relay.stdin.fileno(), fcntl.F_SETPIPE_SZ, RELAY_PIPE_BYTES)
        except (ImportError, OSError, AttributeError):  # not Linux: the default pipe size, more latency
            pass
        self._proc, self._out = relay, b""
        self._seen = {"underruns": (0, 0), "stalls": (0, 0)}
        self.starts += 1

    def _read(self) -> None:
        relay = self._proc
        assert relay is not None and relay.stdout is not None
        try:
            data = os.read(relay.stdout.fileno(), 65536)
        except (BlockingIOError, InterruptedError):
            return
        self._out += data
        while b"\n" in self._out:
            raw, self._out = self._out.split(b"\n", 1)
            kind, _, rest = raw.decode(errors="replace").partition(" ")
            if kind == "ready":
                self.relayed, self._failures = rest, 0
                now = time.monotonic()
                self._rebase(now, min(0, self._behind(now)))  # the lag from before the relay is nobody's xrun
                self._lag_reported, self._lag_since = (self.underruns, self.stalls), 0.0
            elif kind in ("error", "lost"):
                self.error = rest
            elif kind in self._seen:
                n, frames = (int(x) for x in rest.split())
                seen_n, seen_frames = self._seen[kind]
                self._seen[kind] = (n, frames)
                if kind == "underruns":
                    self.underruns += n - seen_n
                    self.underrun_frames += frames - seen_frames
                else:
                    self.stalls += n - seen_n
                    self.stall_frames += frames - seen_frames

    def _drop(self, reason: str) -> None:
        relay, self._proc = self._proc, None
        if relay is not None:
            for pipe in (relay.stdin, relay.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
            try:
                relay.wait(timeout=2)
            except subprocess.TimeoutExpired:
                relay.kill()
                relay.wait()
        if self.relayed is not None:
            self.error = self.error or reason
        self.relayed = None
        self._backoff()

    def _backoff(self) -> None:
        self._failures += 1
        delay = min(RELAY_RETRY_MAX_S, RELAY_RETRY_S * 1.5 ** (self._failures - 1))
        self._next = time.monotonic() + delay

    def _behind(self, now: float) -> int:
        """Frames the producer is behind the monotonic clock since the last rebase (negative: ahead)."""
        return int((now - self._clock) * SAMPLE_RATE) - (self._written - self._base)

    def _rebase(self, now: float, behind: int) -> None:
        """Restart the real-time reckoning of :meth:`queued` at ``now``, ``behind`` frames behind."""
        self._clock, self._base = now, self._written + behind

    def _pace(self, waited: bool) -> None:
        """After a block went to the relay: count the relay falling behind real time as a stall.

        ``waited``: the pipe was full (the relay is what holds the producer
        back). A lag while the relay said it ran dry or stalled is already
        counted (the producer was late, or the relay's process was held up):
        it is forgiven, not counted twice; hence a lag is counted only once it
        lasted ``RELAY_LAG_CONFIRM_S`` without such a report.
        """
        if self._proc is None:
            return
        self._read()  # what the relay reported so far
        now = time.monotonic()
        behind = self._behind(now)
        span = now - self._clock
        drift = int(RELAY_DRIFT * span * SAMPLE_RATE)
        if (self.underruns, self.stalls) != self._lag_reported:
            self._rebase(now, min(0, behind))
            self._lag_since = 0.0
        elif waited and behind - drift > RELAY_LAG_S * SAMPLE_RATE:
            if self._lag_since == 0.0:
                self._lag_since = now
            elif now - self._lag_since >= RELAY_LAG_CONFIRM_S:
                self.stalls += 1
                self.stall_frames += behind
                self.lag_frames += behind
                self._rebase(now, 0)
                self._lag_since = 0.0
        elif span >= RELAY_DRIFT_WINDOW_S and self._lag_since == 0.0:
            self._rebase(now, behind if behind <= 0 else max(0, behind - drift))
        self._lag_reported = (self.underruns, self.stalls)

    def _pipe(self, arr: np.ndarray) -> None:
        """Hand a block to the relay; blocks while its pipe is full (see :meth:`_pace` for what a relay slower
        than real time is counted as), and gives the relay up after ``RELAY_STALL_S`` without progress."""
        relay = self._proc
        assert relay is not None and relay.stdin is not None
        view = memoryview(arr.tobytes())
        fd = relay.stdin.fileno()
        deadline = time.monotonic() + RELAY_STALL_S
        waited = False
        while len(view):
            try:
                n = os.write(fd, view[:PIPE_CHUNK])
            except BlockingIOError:
                waited = True
                left = deadline - time.monotonic()
                if left <= 0:
                    self.dropped += len(view) // FRAME_BYTES
                    self.error = f"the relay took no audio for {RELAY_STALL_S:g} s"
                    self._drop(self.error)
                    return
                select.select([], [fd], [], left)
                continue
            except OSError as exc:  # BrokenPipeError: the relay is gone
                self.dropped += len(view) // FRAME_BYTES
                self._drop(f"the relay's pipe broke: {exc}")
                return
            view = view[n:]
            deadline = time.monotonic() + RELAY_STALL_S
        self._pace(waited)
