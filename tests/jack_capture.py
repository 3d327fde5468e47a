"""Record what a JACK client plays, stamped with JACK's own clock: the reference the heard-clock tests measure against.

:class:`JackCapture` registers a JACK client (JACK-Client package) with one
input port, connects a runtime's output port to it, and in each process cycle
copies the cycle's buffer into a preallocated array together with the cycle's
first frame (``last_frame_time``) and that frame's time on JACK's clock
(``jack_frames_to_time``, microseconds). :meth:`JackCapture.unix_time` puts a
captured sample on the Unix clock (JACK's clock is CLOCK_MONOTONIC_RAW-like,
not ``time.monotonic()``: the offset is sampled, bracketed by ``time.time()``
reads, by :meth:`JackCapture.sample_offset` while the test runs).

The buffer is indexed by JACK frame from the first recorded cycle, so a cycle
the client missed (a loaded machine) leaves zeros, never shifts what follows;
:meth:`JackCapture.unix_time` stamps any index from the nearest recorded cycle.

A sample in a cycle's buffer is in JACK's graph at that frame; the driver
plays it ``playback_latency`` frames later (the system playback port's
latency: 2 periods for the dummy driver). What "heard" means for a runtime
playing into JACK is that: frame time + the playback port's latency.

:func:`stream_offset` aligns the capture with the runtime's own stream (its
WAV sink) by cross-correlation around a moment the music cannot repeat (the
end of a PAUSE, :func:`resume_frame`): capture index + offset = stream frame.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import time
from typing import Any

import numpy as np

SAMPLE_RATE = 48_000


class JackCapture:
    """One input port recording ``seconds`` of audio with the JACK frame time and clock time of each cycle."""

    def __init__(self, server: str | None, seconds: float, name: str = "heard-capture") -> None:
        import jack

        self._jack = jack
        self.client = jack.Client(name, servername=server, no_start_server=True)
        self.server = server
        lib = ctypes.CDLL(ctypes.util.find_library("jack") or "libjack.so.0")
        lib.jack_frames_to_time.restype = ctypes.c_uint64
        lib.jack_frames_to_time.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.jack_get_time.restype = ctypes.c_uint64
        self._lib = lib
        self._ptr = ctypes.c_void_p(int(jack._ffi.cast("uintptr_t", self.client._ptr)))
        self.port = self.client.inports.register("in")
        self.buffer = np.zeros(int(seconds * SAMPLE_RATE), np.float32)
        self.cycles: list[tuple[int, int, int]] = []  # (buffer index, first frame, its time on JACK's clock, µs)
        self.filled = 0
        self.base: int | None = None  # the JACK frame of buffer index 0
        self.latency: int | None = None  # the playback port's latency (frames), read once when needed
        self.offsets: list[tuple[float, float]] = []  # (JACK clock s, Unix − JACK clock s)
        self.recording = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        if not self.recording:
            return
        first = self.client.last_frame_time
        if self.base is None:
            self.base = first
        pos = (first - self.base) % 2**32  # the buffer is indexed by JACK frame: a missed cycle leaves a gap
        if pos + frames > len(self.buffer):
            return
        self.cycles.append((pos, first, int(self._lib.jack_frames_to_time(self._ptr, first))))
        self.buffer[pos:pos + frames] = self.port.get_array()
        self.filled = pos + frames

    def connect(self, source: str) -> None:
        self.client.connect(source, self.port)

    def sample_offset(self) -> None:
        """One reading of Unix − JACK clock, kept only when the three reads were not preempted."""
        a = time.time()
        j = self._lib.jack_get_time() / 1e6
        b = time.time()
        if b - a < 0.0002:
            self.offsets.append((j, 0.5 * (a + b) - j))

    def unix_time(self, index: float) -> float:
        """The Unix time at which captured sample ``index`` was in JACK's graph (its cycle's frame time)."""
        starts = np.array([c[0] for c in self.cycles])
        k = int(np.searchsorted(starts, index, side="right")) - 1
        pos, _frame, usecs = self.cycles[k]
        jack_s = usecs / 1e6 + (index - pos) / SAMPLE_RATE
        clock = np.array([o[0] for o in self.offsets])
        nearest = int(np.argmin(np.abs(clock - jack_s)))
        return jack_s + self.offsets[nearest][1]

    def missed(self) -> float:
        """The fraction of the recorded span whose cycles this client missed (a loaded machine; left as zeros)."""
        if not self.cycles:
            return 1.0
        frames = self.cycles[1][0] - self.cycles[0][0] if len(self.cycles) > 1 else self.filled
        return 1.0 - len(self.cycles) * frames / max(1, self.filled - self.cycles[0][0])

    def playback_latency(self) -> int:
        """The system playback port's latency in frames (``jack_lsp -l``), what the driver adds after the graph."""
        argv = ["jack_lsp", "-l", "system:playback_1"]
        if self.server:
            argv[1:1] = ["-s", self.server]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if "playback latency" in line:
                return int(line.split("[")[1].split()[0])
        raise AssertionError(f"no playback latency in `{' '.join(argv)}`: {out!r}")

    def close(self) -> None:
        self.recording = False
        try:
            self.client.deactivate()
        finally:
            self.client.close()


def resume_frame(stream: np.ndarray, silence_s: float = 0.4) -> int:
    """The first sample after the first run of at least ``silence_s`` of digital silence that follows music (a
    PAUSE then PLAY): a moment the music's repetitions cannot mimic, for :func:`stream_offset`."""
    loud = np.abs(stream) > 1e-6
    start = int(np.argmax(loud))
    quiet = np.flatnonzero(loud[start:]) + start  # the loud samples, in order
    gaps = np.flatnonzero(np.diff(quiet) >= silence_s * SAMPLE_RATE)
    if len(gaps) == 0:
        raise AssertionError(f"no silence of {silence_s:g} s after the music started: no PAUSE/PLAY to align on")
    return int(quiet[gaps[0] + 1])


def stream_offset(capture: np.ndarray, stream: np.ndarray, at: int, half: int = SAMPLE_RATE // 2) -> tuple[int, float]:
    """``(offset, match)``: capture index + offset = stream frame, from the stream's ``2 * half`` samples around
    frame ``at`` (choose a moment that is unique, e.g. :func:`resume_frame`) found in the whole capture by
    normalized cross-correlation; ``match`` is the correlation at the peak (1.0: identical)."""
    seg = stream[max(0, at - half):at + half].astype(np.float64)
    start = max(0, at - half)
    hay = capture.astype(np.float64)
    if len(hay) < len(seg):
        raise AssertionError(f"the capture ({len(hay)} samples) is shorter than the segment ({len(seg)})")
    n = 1 << int(np.ceil(np.log2(len(hay) + len(seg))))
    corr = np.fft.irfft(np.fft.rfft(hay, n) * np.conj(np.fft.rfft(seg, n)), n)[:len(hay) - len(seg) + 1]
    energy = np.concatenate([[0.0], np.cumsum(hay * hay)])
    norms = np.sqrt(np.maximum(energy[len(seg):] - energy[:-len(seg)], 0.0)) * np.linalg.norm(seg) + 1e-9
    score = corr / norms
    lag = int(np.argmax(score))
    return start - lag, float(score[lag])


def local_offset(capture: np.ndarray, stream: np.ndarray, frame: int, guess: int, *, half: int = 4800,
                 search: int = 9600) -> tuple[int, float] | None:
    """Where stream ``frame`` is in the capture, near ``frame - guess`` (± ``search``): ``(offset, match)`` with
    capture index + offset = stream frame, from a ``2 * half`` window of the stream around ``frame``; None when
    the window is silent or out of range. Alignment beat by beat follows an underrun that shifted the output."""
    a, b = frame - half, frame + half
    lo, hi = a - guess - search, b - guess + search
    if a < 0 or b > len(stream) or lo < 0 or hi > len(capture):
        return None
    seg = stream[a:b].astype(np.float64)
    if np.linalg.norm(seg) < 1e-3:
        return None
    hay = capture[lo:hi].astype(np.float64)
    n = 1 << int(np.ceil(np.log2(len(hay) + len(seg))))
    corr = np.fft.irfft(np.fft.rfft(hay, n) * np.conj(np.fft.rfft(seg, n)), n)[:len(hay) - len(seg) + 1]
    lag = int(np.argmax(corr))
    match = float(corr[lag] / (np.linalg.norm(seg) * np.linalg.norm(hay[lag:lag + len(seg)]) + 1e-12))
    return a - (lo + lag), match


def heard_in_capture(capture: JackCapture, stream: np.ndarray, stream_time: int, guess: int) -> float | None:
    """The Unix time JACK's driver played stream sample ``stream_time``: found in the capture near ``stream_time -
    guess`` (each sample on its own: an underrun of the runtime shifts the output against the stream), plus the
    playback port's latency; None when it cannot be found with confidence."""
    found = local_offset(capture.buffer[:capture.filled], stream, stream_time, guess)
    if found is None or found[1] < 0.9:
        return None
    index = stream_time - found[0]
    if not 0 <= index < capture.filled:
        return None
    if capture.latency is None:
        capture.latency = capture.playback_latency()
    return capture.unix_time(index) + capture.latency / SAMPLE_RATE


def near_xrun(stream_time: int, xruns: list[int]) -> bool:
    """Whether a sample may have been announced before an xrun the runtime reported at one of ``xruns`` (stream
    frames, as the xrun events carry: the frame generated when it was noticed) and heard after it: its heard time
    was stamped before anyone knew of the delay. Generous: from 1 s before (the lookahead may have widened to
    0.5 s) to 0.25 s after (underruns of the next few blocks are reported with the first)."""
    return any(x - SAMPLE_RATE <= stream_time <= x + SAMPLE_RATE // 4 for x in xruns)


def align_with_recording(capture: JackCapture, wav: Any) -> tuple[np.ndarray, int]:
    """The runtime's own recording (``--sink …,wav:PATH``) as a mono stream, and the capture frame its frame 0
    sits at: checks that the capture kept up with JACK and really holds that stream."""
    import soundfile

    missed = capture.missed()  # a loaded machine: the capture's own JACK cycles it missed (left as zeros)
    assert missed < 0.05, f"the capture client missed {100 * missed:.1f} % of JACK's cycles"
    stream, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    assert rate == SAMPLE_RATE
    mono = stream[:, 0]
    offset, match = stream_offset(capture.buffer[:capture.filled], mono, resume_frame(mono))
    # (not 1.0: the device holds and fades over an underrun of a loaded machine, the WAV file does not)
    assert match > 0.8, f"the capture does not match the runtime's stream (correlation {match:.3f})"
    return mono, offset


def jack_port_of(client: Any, prefix: str) -> str:
    """The first output port of the JACK client whose name starts with ``prefix`` (a runtime's ``cadenza-PID``)."""
    ports = [p.name for p in client.get_ports(is_output=True, is_audio=True) if p.name.startswith(prefix)]
    if not ports:
        raise AssertionError(f"no JACK output port starting with {prefix!r}")
    return sorted(ports)[0]
