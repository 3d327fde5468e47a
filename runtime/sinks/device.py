"""The device sink: plays 48 kHz stereo blocks through PortAudio (a sound card
or a JACK server), paced by the device clock.

::

    producer thread                          PortAudio audio thread
    ───────────────                          ──────────────────────
    DeviceSink.write(block)                  DeviceSink._callback(outdata, …)
      └─ RingBuffer.push  ──►  [ preallocated float32 ring ]  ──►  RingBuffer.pull_into
         (sleeps in small steps                                   (copies only; silence +
          while the ring is full)                                  underrun count when empty)

The ring is single-producer/single-consumer: ``write`` only advances the
``written`` counter, the callback only advances ``read``, so neither side takes
a lock. A producer faster than real time is held back by ``write`` blocking,
which is how an offline-speed generator ends up playing at the device's rate.

Faults the sink survives, and what it does about each:

- **underrun** (the producer was late): the callback holds the last sample
  and fades it out, then fades the music back in when it returns;
- **stall** (the whole process, or the audio thread, was held up — SIGSTOP, a
  starved CPU — and the device played on without us, seen as a jump of
  PortAudio's clock between two callbacks): counted in ``stalls`` and
  ``stall_frames``; the resumption holds and fades the last sample, then
  fades the music in, so it never starts with a click;
- **lost device** (the stream stopped — a JACK server killed, a card
  unplugged — or took no audio for ``stall_timeout``): ``lost`` names the
  device and the reason; from then on ``queued_frames`` is paced by the
  monotonic clock, so a live producer goes on generating in real time into
  its other sinks. The dead stream is abandoned without another PortAudio
  call: PortAudio's JACK host API waits forever in
  ``Pa_CloseStream``/``Pa_Terminate`` once its server is gone, so this process
  can never reopen the device itself. Instead the sink starts a **relay**
  (:mod:`cadenza.runtime.sinks.relay`, a fresh process with a fresh
  PortAudio) every few seconds until one opens the device again; then
  ``relayed`` names it and ``write`` pipes the audio there (``state``:
  ``playing`` → ``lost`` → ``relayed``, and back to ``lost`` if the relay
  loses it too). The relay's underruns and stalls are added to this sink's.
  ``queued_frames`` goes on keeping real time on the monotonic clock, and
  ``write`` blocks while the relay's (small) pipe is full; the relay adds its
  ring and that pipe (~0.15 s) to the latency. A relay whose device takes
  audio slower than real time thus holds the producer back, and the stream
  falls behind the wall clock: that is counted as a stall of as many frames
  (an ``xrun`` to the runtime), never passed over in silence
  (:mod:`.relaylink` says when).

Where the rest lives: :mod:`.portaudio` loads PortAudio, names the JACK
client and finds the device; :mod:`.ring` is the ring; :mod:`.relaylink` is
this sink's end of the relay. ``sounddevice`` is imported only through
:mod:`.portaudio`, so nothing else in the package needs PortAudio installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from cadenza.errors import AudioError, UsageError
from cadenza.runtime.audio import CHANNELS, SAMPLE_RATE, as_block
from cadenza.runtime.sinks import portaudio
from cadenza.runtime.sinks.portaudio import (
    OutputDevice,
    find_output_device,
    has_output_device,
    output_devices,
)
from cadenza.runtime.sinks.relaylink import RELAY_BUFFER_S, RELAY_PIPE_BYTES, RelayLink
from cadenza.runtime.sinks.ring import RingBuffer

__all__ = ["FADE_FRAMES", "STALL_S", "DeviceSink", "OutputDevice", "find_output_device", "has_output_device",
           "output_devices"]

#: A callback this much later than the previous block's length means the device
#: played on without us (the process or the audio thread was held up).
STALL_S = 0.05
#: The heard clock's offset between PortAudio's stream clock and the monotonic clock: read this often (the
#: stream clock may slew against the monotonic one — a JACK server's delay-locked loop after an xrun moves tens
#: of ms a second — so the reading is never averaged), discarded when the reading was preempted this long.
OFFSET_EVERY_S = 0.01
OFFSET_BRACKET_S = 0.0005
#: What a relay adds to the latency while it plays for a lost device: its ring and its pipe (its device's own
#: latency is not reported back: the heard clock of a relayed device is an estimate).
RELAY_LATENCY_S = RELAY_BUFFER_S + RELAY_PIPE_BYTES / (CHANNELS * 4) / SAMPLE_RATE
#: Hold-and-fade of the last sample on an underrun or a stall, then the fade-in
#: of the music when it returns (frames, 10 ms each).
FADE_FRAMES = 480


class DeviceSink:
    """Plays blocks on an output device; ``write`` blocks while the ring is full.

    Playback starts once the ring is full (``buffer_seconds`` of audio queued,
    the lookahead the device has against a late producer), or at ``close()``
    for shorter streams; with ``fade_in`` its first 10 ms fade in (a stream
    joined mid-music, as the relay does). ``close()`` plays out everything
    written, then stops.

    Counters (readable from any thread at any time):

    - ``frames_written``: frames accepted by ``write``;
    - ``frames_played``: frames handed to the device by the callback;
    - ``underruns`` / ``underrun_frames``: callbacks that found the ring short
      while the stream was live (the producer was late), and the silent frames
      they inserted;
    - ``output_underflows``: callbacks flagged ``output_underflow`` by
      PortAudio itself (the host missed a deadline; not our ring's fault);
    - ``stalls`` / ``stall_frames``: callbacks that came ``STALL_S`` or more
      after the previous block ran out (the device played on without us), and
      the frames the device played meanwhile;
    - ``lost``: None while the device plays, else why it was given up (see the
      module docstring: writes are then discarded at the wall clock's pace).
      Once a relay plays for it, its underruns and stalls count here too, and
      so does the relay falling behind real time (a stall of that many frames,
      ``relay_lag_frames`` in all).
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        blocksize: int = 0,
        latency: float | str = "high",
        buffer_seconds: float = 0.1,
        stall_timeout: float = 5.0,
        fade_in: bool = False,
    ) -> None:
        if isinstance(blocksize, bool) or not isinstance(blocksize, int) or blocksize < 0:
            raise UsageError(
                f"blocksize must be an integer >= 0 (0: the host's choice), got {blocksize!r}",
                where="blocksize",
            )
        if not (isinstance(buffer_seconds, (int, float)) and 0 < buffer_seconds <= 60):
            raise UsageError(
                f"buffer_seconds must be in (0, 60], got {buffer_seconds!r}", where="buffer_seconds"
            )
        if not (isinstance(stall_timeout, (int, float)) and stall_timeout > 0):
            raise UsageError(
                f"stall_timeout must be > 0 seconds, got {stall_timeout!r}", where="stall_timeout"
            )
        sd = portaudio.load_sounddevice()
        self.selector = device
        self.device = find_output_device(device)
        self.stall_timeout = float(stall_timeout)
        self._ring = RingBuffer(max(1, round(buffer_seconds * SAMPLE_RATE)))
        # Sleep step while waiting for space: short against the ring's length.
        self._poll = min(0.01, max(0.001, self._ring.capacity / SAMPLE_RATE / 8))
        self._started = False
        self._closed = False
        self._draining = False
        self._underruns = 0  # the callback's own (see the properties: a relay's are added)
        self._underrun_frames = 0
        self._fade = np.linspace(1.0, 0.0, FADE_FRAMES, dtype=np.float32)  # hold-and-fade on an underrun
        self._rise = np.ascontiguousarray(self._fade[::-1])  # fade-in when the music returns
        # frames of the fade-in already played (all: none pending); fade_in: the first 10 ms fade in
        self._rise_pos = 0 if fade_in else FADE_FRAMES
        self._last = np.zeros(CHANNELS, dtype=np.float32)
        self.output_underflows = 0
        self._stalls = 0
        self._stall_frames = 0
        self._prev_time = 0.0  # PortAudio's clock at the previous callback
        # The heard clock (see heard_clock): the callback's last (ring frame, PortAudio stream time at which that
        # frame leaves the DAC), one tuple swapped in whole so a reader never sees half of it; and the offset of
        # the monotonic clock from PortAudio's stream clock, read by the producer (check, every 10 ms), never in the
        # callback.
        self._anchor: tuple[int, float] | None = None
        self._stream_offset: float | None = None
        self._offset_at = 0.0
        self._prev_block = 0.0  # seconds in the previous callback's block
        self.lost: str | None = None
        self._discarded = 0  # frames written after the loss (dropped, or piped to the relay)
        self._seen_read = 0  # ring.read when the producer last saw it move
        self._seen_at = 0.0
        self._relay = RelayLink(device)  # plays for us once the device was lost (see the module docstring)
        try:
            self._stream: Any = sd.OutputStream(
                device=self.device.index,
                samplerate=SAMPLE_RATE,
                channels=CHANNELS,
                dtype="float32",
                blocksize=blocksize,
                latency=latency,
                callback=self._callback,
            )
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioError(
                f"cannot open output device {self.device} at {SAMPLE_RATE} Hz stereo: {exc}"
            ) from exc
        portaudio.stream_opened()

    # -- the audio thread ---------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio asks for ``frames`` frames of output: copy them from the ring.

        Real-time contract — this runs on the audio thread with a deadline of
        one block, so it:

        - only copies from the preallocated ring into ``outdata``; it never
          allocates an audio buffer (only the few small view and float objects
          any Python code creates), never blocks, sleeps, takes a lock, logs,
          prints, raises or touches the file system;
        - always fills ``outdata`` completely: frames the producer has not
          written yet become the last sample held and faded to silence over
          10 ms (no click), and the callback counts one underrun (plus
          ``underrun_frames``) unless ``close()`` is draining the tail or
          nothing was written yet; when the music returns it fades in over 10 ms;
        - notices a stall (PortAudio's clock moved on by more than the last
          block plus ``STALL_S``: the device played without us), counts it,
          and resumes with the last sample held and faded, then the music
          faded in — never a jump;
        - frees space for ``write`` only by advancing ``ring.read`` after the
          copy (single-producer/single-consumer, no lock);
        - counts PortAudio's own ``output_underflow`` flag;
        - notes for the heard clock where the ring's next frame will leave
          the DAC: with the next block, ``outputBufferDacTime`` + this
          block's length (right whether this block was full, short of
          audio, or began with a stall's fade): one small tuple, no lock.
        """
        if status.output_underflow:
            self.output_underflows += 1
        now = time_info.currentTime
        body = outdata
        if now > 0.0 and self._prev_time > 0.0:
            late = now - self._prev_time - self._prev_block
            if late > STALL_S:
                self._stalls += 1
                self._stall_frames += int(late * SAMPLE_RATE)
                m = min(frames, FADE_FRAMES)
                np.multiply(self._fade[:m, None], self._last, out=outdata[:m])
                body = outdata[m:]
                self._rise_pos = 0
        self._prev_time = now
        self._prev_block = frames / SAMPLE_RATE
        want = body.shape[0]
        n = self._ring.pull_into(body)
        dac = time_info.outputBufferDacTime
        if dac > 0.0:  # the ring's next frame leaves the DAC with the next block, at the earliest
            self._anchor = (self._ring.read, dac + frames / SAMPLE_RATE)
        if self._rise_pos < FADE_FRAMES and n > 0:
            k = min(n, FADE_FRAMES - self._rise_pos)
            np.multiply(body[:k], self._rise[self._rise_pos : self._rise_pos + k, None], out=body[:k])
            self._rise_pos += k
        if n < want:
            # never a click: hold the last sample and fade it out over the gap (no allocation:
            # the ramp is preallocated, the multiply writes into outdata), fade in what comes next
            m = min(want - n, FADE_FRAMES)
            last = body[n - 1] if n > 0 else (outdata[frames - want - 1] if want < frames else self._last)
            np.multiply(self._fade[:m, None], last, out=body[n : n + m])
            if m < want - n:
                body[n + m :] = 0.0
            self._rise_pos = 0
            if not self._draining and self._ring.written > 0:  # started before any audio: not late yet
                self._underruns += 1
                self._underrun_frames += want - n
        if frames > 0:
            self._last[:] = outdata[frames - 1]

    # -- the producer side --------------------------------------------------

    @property
    def frames_written(self) -> int:
        return self._ring.written + self._discarded

    @property
    def frames_played(self) -> int:
        return self._ring.read

    @property
    def queued_frames(self) -> int:
        """Frames written but not yet handed to the device.

        Also where a live producer learns that the device is gone (see
        :meth:`check`): once ``lost``, the frames written since the loss less
        the wall-clock time since then, so the producer keeps real time.
        """
        self.check()
        if self.lost is not None:
            return self._relay.queued()
        return self._ring.available()

    def check(self) -> str | None:
        """Give the device up if its stream stopped or took nothing for ``stall_timeout``; returns ``lost``.

        Cheap (one PortAudio flag read) and never blocks. Once lost, it tends
        the relay instead: starts one when it is time, reads what it says.
        """
        if self._closed:
            return self.lost
        if self.lost is not None:
            self._relay.tend()
            return self.lost
        if not self._started:
            return self.lost
        now = time.monotonic()
        if not self._stream.active:
            self._lose("its stream stopped (audio server gone or device unplugged?)")
        elif self._ring.read != self._seen_read or self._seen_at == 0.0:
            self._seen_read, self._seen_at = self._ring.read, now
        elif now - self._seen_at > self.stall_timeout:
            self._lose(f"it took no audio for {self.stall_timeout:g} s (device stalled or audio server hung?)")
        if self.lost is None and now - self._offset_at >= OFFSET_EVERY_S:
            self._read_offset(now)  # for the heard clock
        return self.lost

    def _read_offset(self, now: float) -> None:
        """Measure monotonic − PortAudio stream time (the clock ``outputBufferDacTime`` is on).

        Two monotonic reads bracket ``stream.time``; a read preempted for more
        than ``OFFSET_BRACKET_S`` is thrown away, else it replaces the last
        one (no averaging: after a JACK xrun the stream clock slews against
        the monotonic one by up to tens of ms a second, and a smoothed offset
        would lag behind it).
        """
        try:
            a = time.monotonic()
            st = float(self._stream.time)
            b = time.monotonic()
        except Exception:  # noqa: BLE001 — sounddevice.PortAudioError: no reading this time
            return
        self._offset_at = now
        if st <= 0.0 or b - a > OFFSET_BRACKET_S:
            return
        self._stream_offset = 0.5 * (a + b) - st

    def heard_clock(self) -> tuple[int, float] | None:
        """``(frame, t)``: the frame (counted from this sink's first written frame) that leaves the output at
        monotonic time ``t`` (seconds), device latency included; ``None`` before playback starts.

        While the device plays: the callback's last anchor — the ring's next
        frame, heard with the next block: PortAudio's ``outputBufferDacTime``
        (for JACK: the cycle's frame time plus the playback port's latency)
        plus the block's length — put on the monotonic clock with the offset
        :meth:`check` measures. A later underrun delays what follows by its
        length; the next callback's anchor says so. Without a DAC time from the host API: the frames
        handed over, heard after ``output_latency``. Once lost: the monotonic
        pacing (nothing is heard); relayed: that pacing plus the relay's ring
        and pipe (an estimate: the relay's own device latency is not known
        here). Cheap and lock-free: any thread may call it.
        """
        if self.lost is not None:
            frame = self.frames_written - self._relay.queued()
            return frame, time.monotonic() + (RELAY_LATENCY_S if self._relay.relayed is not None else 0.0)
        if not self._started:
            return None
        anchor, offset = self._anchor, self._stream_offset
        if anchor is None or offset is None:
            return self._ring.read, time.monotonic() + self.output_latency
        return anchor[0], anchor[1] + offset

    def _lose(self, reason: str) -> None:
        """Abandon the stream (no PortAudio call: it may hang) and discard audio at the wall clock's pace."""
        self.lost = f"output device {self.device} lost: {reason}"
        portaudio.abandon_stream(self._stream)
        self._relay.begin()

    # -- the relay (after a loss) --------------------------------------------

    @property
    def state(self) -> str:
        """``playing`` (the device), ``lost`` (audio discarded) or ``relayed`` (played by a relay process)."""
        if self.lost is None:
            return "playing"
        return "relayed" if self._relay.relayed is not None else "lost"

    @property
    def relayed(self) -> str | None:
        """The device a relay plays on for this sink, while one does."""
        return self._relay.relayed

    @property
    def relay_error(self) -> str:
        """Why the last relay could not open the device, or lost it."""
        return self._relay.error

    @property
    def relay_dropped(self) -> int:
        """Frames lost with a relay given up mid-block."""
        return self._relay.dropped

    @property
    def relay_starts(self) -> int:
        return self._relay.starts

    @property
    def relay_lag_frames(self) -> int:
        """Frames a relay fell behind real time (counted in ``stall_frames`` too)."""
        return self._relay.lag_frames

    @property
    def underruns(self) -> int:
        return self._underruns + self._relay.underruns

    @property
    def underrun_frames(self) -> int:
        return self._underrun_frames + self._relay.underrun_frames

    @property
    def stalls(self) -> int:
        return self._stalls + self._relay.stalls

    @property
    def stall_frames(self) -> int:
        return self._stall_frames + self._relay.stall_frames

    @property
    def output_latency(self) -> float:
        """The device's own output latency in seconds (excluding the ring)."""
        return float(self._stream.latency)

    @property
    def closed(self) -> bool:
        return self._closed

    def _start(self) -> None:
        try:
            self._stream.start()
        except Exception as exc:  # sounddevice.PortAudioError
            raise AudioError(f"cannot start output device {self.device}: {exc}") from exc
        self._started = True
        self._seen_read, self._seen_at = self._ring.read, time.monotonic()
        self._read_offset(self._seen_at)

    def _wait_until(self, ready: Callable[[], bool], what: str) -> bool:
        """Sleep in small steps until ``ready()``; False once the device is lost (see :meth:`check`)."""
        ring = self._ring
        last_read = ring.read
        last_progress = time.monotonic()
        while not ready():
            if not self._stream.active:
                self._lose(f"its stream stopped while {what} (audio server gone or device unplugged?)")
                return False
            time.sleep(self._poll)
            now = time.monotonic()
            if ring.read != last_read:
                last_read, last_progress = ring.read, now
            elif now - last_progress > self.stall_timeout:
                self._lose(f"it took no audio for {self.stall_timeout:g} s while {what} "
                           "(device stalled or audio server hung?)")
                return False
        return True

    def start(self) -> None:
        """Start playback now, with what is queued (a live producer's lookahead)."""
        if not self._started and not self._closed:
            self._start()

    def write(self, block: np.ndarray) -> None:
        """Queue one ``(frames, 2)`` float32 block; blocks while the ring is full."""
        if self._closed:
            raise UsageError("DeviceSink.write() after close()")
        arr = as_block(block, "DeviceSink")
        if self.lost is not None:
            self._discarded += len(arr)
            self._relay.write(arr)
            return
        ring = self._ring
        pos = ring.push(arr)
        while pos < len(arr):
            if not self._started:
                self._start()
            if not self._wait_until(lambda: ring.free() > 0, "waiting for room in the ring"):
                self._discarded += len(arr) - pos
                self._relay.discard(len(arr) - pos)
                return
            pos += ring.push(arr[pos:])
        if not self._started and ring.free() == 0:
            self._start()

    def close(self, *, drain: bool = True) -> None:
        """Play out what was written (unless ``drain=False``), then stop; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._draining = True  # from here on, a short callback is the end, not an underrun
        if self.lost is not None:
            self._relay.close()  # its stdin closes: it stops its device and exits
            return  # the stream is abandoned: any PortAudio call on it may never return
        try:
            if drain:
                if self._ring.available() > 0:
                    if not self._started:
                        self._start()
                    if not self._wait_until(lambda: self._ring.available() == 0, "draining"):
                        return  # lost while draining: abandoned, not closed (see finally)
                if self._started:
                    self._stream.stop()  # returns once PortAudio played its buffers
            elif self._started:
                self._stream.abort()
        finally:
            if self.lost is None:  # a stream lost meanwhile is abandoned (counted off by _lose)
                try:
                    self._stream.close()
                except Exception as exc:  # sounddevice.PortAudioError
                    raise AudioError(f"cannot close output device {self.device}: {exc}") from exc
                finally:
                    portaudio.stream_closed()

    def __enter__(self) -> DeviceSink:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(drain=exc_type is None)

    def __repr__(self) -> str:
        lost = f", lost={self.lost!r}" if self.lost else ""
        return (
            f"DeviceSink({self.device}, played={self.frames_played}, underruns={self.underruns}, "
            f"stalls={self.stalls}, output_underflows={self.output_underflows}{lost})"
        )
