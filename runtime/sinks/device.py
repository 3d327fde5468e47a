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
  falls behind the wall clock: once it is ``RELAY_LAG_S`` behind (beyond a
  ``RELAY_DRIFT`` of clock difference), that is counted as a stall of as
  many frames (an ``xrun`` to the runtime), never passed over in silence, and
  the clock is rebased so the producer does not race to catch up.

Each process registers with a JACK server as ``cadenza-PID`` (the relay as
``cadenza-relay-PID``), never PortAudio's shared default ``PortAudio``: a
process that lost its server still holds that name's wake-up futex, and a
newcomer under the same name would run the restarted server at half speed
(:func:`_name_jack_client`).

``sounddevice`` (and with it libportaudio) is imported lazily, inside this
module only, so nothing else in the package needs PortAudio installed. Foreign
errors (missing library, ``PortAudioError``) are translated to
:class:`AudioError` here, with the install hint or the list of devices.
"""

from __future__ import annotations

import atexit
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from cadenza.errors import AudioError, UsageError
from cadenza.runtime.backends.base import CHANNELS, SAMPLE_RATE
from cadenza.runtime.sinks.null import as_block

INSTALL_HINT = (
    "install the PortAudio library: `apt install libportaudio2` (Debian/Ubuntu), "
    "`dnf install portaudio` (Fedora) or `brew install portaudio` (macOS)"
)

NO_DEVICE_HINT = (
    "none (no sound card found and no JACK server running; start one with "
    "`jackd -d dummy -r 48000` or render to a .wav file instead)"
)

# DeviceSinks whose stream is open; rescan_devices() must not pull PortAudio
# out from under them.
_open_streams = 0
# Streams whose device was lost: kept referenced (their callbacks must stay
# alive) and never closed, because closing one whose JACK server died hangs.
_abandoned_streams: list[Any] = []
# This process's JACK client name (see jack_client_name), whether PortAudio was told it, and the buffer it reads.
_jack_client_name: str | None = None
_jack_named = False
_jack_name_buffer: Any = None

#: A callback this much later than the previous block's length means the device
#: played on without us (the process or the audio thread was held up).
STALL_S = 0.05
#: Hold-and-fade of the last sample on an underrun or a stall, then the fade-in
#: of the music when it returns (frames, 10 ms each).
FADE_FRAMES = 480
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
#: Test hook: the relay registers with JACK under its parent's client name (``parent``) or this name instead of its
#: own -- the name clash that ran a restarted JACK server at half speed (tests/test_relay.py shows it is reported)
TEST_RELAY_NAME_ENV = "CADENZA_TEST_RELAY_JACK_NAME"


def jack_client_name() -> str:
    """The name this process's PortAudio registers with a JACK server: ``cadenza-PID`` unless set otherwise.

    Never PortAudio's default ``PortAudio``, and never shared with another
    process (see :func:`_name_jack_client` for why that matters).
    """
    return _jack_client_name or f"cadenza-{os.getpid()}"


def set_jack_client_name(name: str) -> None:
    """Name this process's JACK client (before PortAudio is first used; the relay names itself so)."""
    global _jack_client_name
    if not name or len(name.encode()) > 60:
        raise UsageError(f"a JACK client name must have 1 to 60 bytes, got {name!r}", where="jack client name")
    _jack_client_name = name


def _name_jack_client(sd: ModuleType) -> None:
    """Register PortAudio's JACK client under :func:`jack_client_name` (once per process, before any stream).

    PortAudio's JACK host API opens one JACK client at initialisation, named
    ``PortAudio`` by default. JACK2 wakes a client for each cycle through a
    futex in a shared-memory file named after the server and the client
    (``/dev/shm/jack_sem.UID_SERVER_CLIENT``). That file outlives a server
    killed with SIGKILL, and a process that lost its server keeps its client's
    thread waiting on it (the stream is abandoned, see ``DeviceSink._lose``).
    When the server comes back and another client registers under the same
    name (this process's relay, or any other PortAudio program), both wait on
    one futex and every wake-up goes to one of them: the new client misses
    about every other cycle ("client = PortAudio was not finished"), and the
    whole JACK server, every client on it, runs at half speed. A name with
    the pid in it is never shared. Without the JACK host API (no such symbol
    in the library) there is nothing to name.
    """
    global _jack_named, _jack_name_buffer
    if _jack_named or _open_streams or _abandoned_streams:
        return
    _jack_named = True
    try:
        import ctypes

        lib = ctypes.CDLL(sd._libname)
        set_name = lib.PaJack_SetClientName
    except (OSError, AttributeError):  # a PortAudio built without JACK, or not found by that name
        return
    name = ctypes.create_string_buffer(jack_client_name().encode())  # PortAudio keeps the pointer: keep it alive
    set_name.argtypes = [ctypes.c_char_p]
    try:
        while getattr(sd, "_initialized", 0) > 0:  # the name is read when PortAudio initialises
            sd._terminate()
        if set_name(name) == 0:
            _jack_name_buffer = name
        sd._initialize()
    except sd.PortAudioError as exc:
        raise AudioError(f"PortAudio failed to initialise: {exc}") from exc


def _sounddevice() -> ModuleType:
    """Import ``sounddevice``, translating a missing PortAudio into AudioError."""
    try:
        import sounddevice
    except OSError as exc:  # the package is installed, libportaudio is not
        raise AudioError(f"PortAudio is missing ({exc}); {INSTALL_HINT}") from exc
    except ImportError as exc:
        raise AudioError(
            f"the sounddevice package is not installed ({exc}); "
            f"`pip install sounddevice`, and {INSTALL_HINT}"
        ) from exc
    except Exception as exc:  # PortAudioError from Pa_Initialize at import
        raise AudioError(f"PortAudio failed to initialise: {exc}") from exc
    _name_jack_client(sounddevice)
    if getattr(sounddevice, "_initialized", 1) < 1:  # after release_portaudio()
        try:
            sounddevice._initialize()
        except sounddevice.PortAudioError as exc:
            raise AudioError(f"PortAudio failed to initialise: {exc}") from exc
    module: ModuleType = sounddevice
    return module


@dataclass(frozen=True)
class OutputDevice:
    """One PortAudio device that can play audio."""

    index: int
    name: str
    hostapi: str
    channels: int  # maximum output channels
    default_samplerate: float

    def __str__(self) -> str:
        return f"[{self.index}] {self.name} ({self.hostapi}, {self.channels} out)"


def _list_outputs(sd: ModuleType) -> list[OutputDevice]:
    hostapis = sd.query_hostapis()
    out = []
    for info in sd.query_devices():
        if info["max_output_channels"] < 1:
            continue
        out.append(
            OutputDevice(
                index=int(info["index"]),
                name=str(info["name"]),
                hostapi=str(hostapis[info["hostapi"]]["name"]),
                channels=int(info["max_output_channels"]),
                default_samplerate=float(info["default_samplerate"]),
            )
        )
    return out


def output_devices() -> list[OutputDevice]:
    """Every device PortAudio can play through (as of import or the last rescan)."""
    sd = _sounddevice()
    try:
        return _list_outputs(sd)
    except sd.PortAudioError as exc:
        raise AudioError(f"cannot list audio devices: {exc}") from exc


def _available(devices: list[OutputDevice]) -> str:
    listing = "; ".join(str(d) for d in devices) if devices else NO_DEVICE_HINT
    return f"Available output devices: {listing}"


def _usable(sd: ModuleType, dev: OutputDevice) -> bool:
    if dev.channels < CHANNELS:
        return False
    try:
        sd.check_output_settings(
            device=dev.index, channels=CHANNELS, dtype="float32", samplerate=SAMPLE_RATE
        )
    except (sd.PortAudioError, ValueError):
        return False
    return True


def _hostapi_default(
    sd: ModuleType, devices: list[OutputDevice], hostapi: str
) -> OutputDevice | None:
    """The host API's default output device, else its first stereo one."""
    for api in sd.query_hostapis():
        if api["name"] != hostapi:
            continue
        idx = api["default_output_device"]
        for d in devices:
            if d.index == idx and d.channels >= CHANNELS:
                return d
    return next((d for d in devices if d.hostapi == hostapi and d.channels >= CHANNELS), None)


def _default_output(sd: ModuleType, devices: list[OutputDevice]) -> OutputDevice | None:
    try:
        idx = int(sd.query_devices(kind="output")["index"])
    except (sd.PortAudioError, ValueError, KeyError, TypeError):
        idx = -1
    default = next((d for d in devices if d.index == idx), None)
    if default is not None and _usable(sd, default):
        return default
    # PortAudio's default is missing or refuses 48 kHz stereo (typical of a
    # headless box whose only output is a JACK server): use JACK if it is there.
    for hostapi in dict.fromkeys(d.hostapi for d in devices):
        if "jack" in hostapi.lower():
            jack = _hostapi_default(sd, devices, hostapi)
            if jack is not None:
                return jack
    return None


def _match_name(
    sd: ModuleType, devices: list[OutputDevice], query: str
) -> OutputDevice | list[OutputDevice] | None:
    """A device for ``query``, the ambiguous candidates, or None."""
    key = query.strip().lower()
    if not key:
        return None
    exact = [d for d in devices if d.name.lower() == key]
    if len(exact) == 1:
        return exact[0]
    # A host API name ('jack', 'alsa', 'core audio', 'wasapi') picks that API's default.
    apis = list(dict.fromkeys(d.hostapi for d in devices if key in d.hostapi.lower()))
    if len(apis) == 1:
        chosen = _hostapi_default(sd, devices, apis[0])
        if chosen is not None:
            return chosen
    partial = [d for d in devices if key in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    return exact or partial or None


def find_output_device(device: str | int | None = None) -> OutputDevice:
    """Resolve a device selector the way the CLI and :class:`DeviceSink` accept it.

    - ``None``: PortAudio's default output; if that is missing or cannot play
      48 kHz stereo but a JACK server is visible, the JACK device.
    - ``int``: a PortAudio device index.
    - ``str``: a device name or host API name, case-insensitive (an exact name,
      then a host API such as ``"jack"`` or ``"alsa"``, then a unique part of
      a device name).

    Raises :class:`AudioError` listing the available output devices when
    nothing (or more than one device) matches.
    """
    sd = _sounddevice()
    try:
        devices = _list_outputs(sd)
    except sd.PortAudioError as exc:
        raise AudioError(f"cannot list audio devices: {exc}") from exc

    if device is None:
        found = _default_output(sd, devices)
        if found is None:
            raise AudioError(f"no usable default output device. {_available(devices)}")
        return found

    if isinstance(device, bool) or not isinstance(device, (int, str)):
        raise UsageError(
            f"audio device must be a name, an index or None, got {device!r}", where="device"
        )
    if isinstance(device, int):
        chosen = next((d for d in devices if d.index == device), None)
        if chosen is None:
            raise AudioError(f"no output device with index {device}. {_available(devices)}")
    else:
        match = _match_name(sd, devices, device)
        if match is None:
            raise AudioError(f"no output device matches {device!r}. {_available(devices)}")
        if isinstance(match, list):
            names = "; ".join(str(d) for d in match)
            raise AudioError(
                f"audio device {device!r} is ambiguous: it matches {names}; "
                "give the index or the full name"
            )
        chosen = match
    if chosen.channels < CHANNELS:
        raise AudioError(
            f"output device {chosen} has {chosen.channels} channel(s); Cadenza plays "
            f"stereo. {_available(devices)}"
        )
    return chosen


def has_output_device() -> bool:
    """Whether a default output device (or a JACK server) can play; never raises.

    For callers that fall back to rendering a file when there is no sound card.
    """
    try:
        find_output_device(None)
    except Exception:  # noqa: BLE001 - any failure means "no device"
        return False
    return True


def rescan_devices() -> None:
    """Re-read the device list (PortAudio reads it once, at initialisation).

    Needed after a JACK server or a USB card appeared while the process runs.
    Refused while a :class:`DeviceSink` is open, because re-initialising
    PortAudio closes every stream.
    """
    release_portaudio()
    _sounddevice()  # initialises PortAudio again


def release_portaudio() -> None:
    """Shut PortAudio down until the next device call re-initialises it.

    PortAudio's JACK host API keeps a JACK client open from initialisation on,
    and aborts the process at exit (an assertion in ``Pa_Terminate``) if that
    JACK server has gone away first. Call this before stopping a JACK server
    the process used. Refused while a :class:`DeviceSink` is open, and after a
    device was lost (PortAudio would wait forever on the dead JACK server).
    """
    if _abandoned_streams:
        raise AudioError(
            f"cannot shut PortAudio down after losing {len(_abandoned_streams)} output stream(s): its JACK "
            "host API waits forever on a server that is gone; restart the process to use that device again"
        )
    if _open_streams:
        raise UsageError(
            f"cannot release PortAudio while {_open_streams} DeviceSink(s) are open; close them first"
        )
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return  # never loaded: nothing to release
    try:
        while getattr(sd, "_initialized", 0) > 0:
            sd._terminate()
    except sd.PortAudioError as exc:
        raise AudioError(f"PortAudio failed to shut down: {exc}") from exc


class RingBuffer:
    """A single-producer/single-consumer ring of stereo float32 frames.

    The producer only advances ``written`` and the consumer only advances
    ``read``; each publishes its counter *after* touching the data, so the
    other side never sees a frame before it is there and no lock is needed
    (storing a Python int attribute is atomic under the GIL). Counters only
    grow; positions in ``data`` are the counters modulo ``capacity``.
    """

    def __init__(self, capacity: int, channels: int = CHANNELS) -> None:
        if capacity < 1:
            raise UsageError(f"ring buffer capacity must be >= 1 frame, got {capacity}")
        self.capacity = capacity
        self.data = np.zeros((capacity, channels), dtype=np.float32)
        self.written = 0
        self.read = 0

    def available(self) -> int:
        """Frames written and not yet read."""
        return self.written - self.read

    def free(self) -> int:
        """Frames that can be pushed without overwriting unread audio."""
        return self.capacity - (self.written - self.read)

    def push(self, block: np.ndarray) -> int:
        """Producer side: copy as much of ``block`` as fits; return the frames taken."""
        n = min(len(block), self.free())
        if n <= 0:
            return 0
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self.data[start : start + first] = block[:first]
        if first < n:
            self.data[: n - first] = block[first:n]
        self.written += n  # publish after the copy
        return n

    def pull_into(self, out: np.ndarray) -> int:
        """Consumer side: fill ``out`` from the ring, silence for what is missing.

        Returns the frames copied from the ring (``len(out)`` unless it ran
        dry). Copies between preallocated arrays only.
        """
        frames = len(out)
        read = self.read
        n = self.written - read
        if n > frames:
            n = frames
        if n > 0:
            start = read % self.capacity
            first = self.capacity - start
            if first >= n:
                out[:n] = self.data[start : start + n]
            else:
                out[:first] = self.data[start:]
                out[first:n] = self.data[: n - first]
            self.read = read + n  # publish after the copy
        if n < frames:
            out[n:] = 0.0
        return n


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
        sd = _sounddevice()
        self.selector = device
        self.device = find_output_device(device)
        self.stall_timeout = float(stall_timeout)
        self._ring = RingBuffer(max(1, round(buffer_seconds * SAMPLE_RATE)))
        # Sleep step while waiting for space: short against the ring's length.
        self._poll = min(0.01, max(0.001, self._ring.capacity / SAMPLE_RATE / 8))
        self._started = False
        self._closed = False
        self._draining = False
        self.underruns = 0
        self.underrun_frames = 0
        self._fade = np.linspace(1.0, 0.0, FADE_FRAMES, dtype=np.float32)  # hold-and-fade on an underrun
        self._rise = np.ascontiguousarray(self._fade[::-1])  # fade-in when the music returns
        # frames of the fade-in already played (all: none pending); fade_in: the first 10 ms fade in
        self._rise_pos = 0 if fade_in else FADE_FRAMES
        self._last = np.zeros(CHANNELS, dtype=np.float32)
        self.output_underflows = 0
        self.stalls = 0
        self.stall_frames = 0
        self._prev_time = 0.0  # PortAudio's clock at the previous callback
        self._prev_block = 0.0  # seconds in the previous callback's block
        self.lost: str | None = None
        self._lost_clock = 0.0  # monotonic time of the loss
        self._lost_base = 0  # frames_written at the loss
        self._discarded = 0  # frames written after the loss (dropped)
        self._seen_read = 0  # ring.read when the producer last saw it move
        self._seen_at = 0.0
        # the relay process that plays for us once the device was lost (see the module docstring)
        self.relayed: str | None = None  # the device the relay plays on, while it does
        self.relay_error = ""  # why the last relay could not open the device, or lost it
        self.relay_dropped = 0  # frames lost with a relay given up mid-block
        self.relay_starts = 0
        self.relay_lag_frames = 0  # frames the relay fell behind real time (counted in stalls too)
        self._lag_reported = (0, 0)  # (underruns, stalls) when the relay's lag was last looked at
        self._lag_since = 0.0  # monotonic time the relay's lag was first seen past RELAY_LAG_S (0: it is not)
        self._relay: subprocess.Popen[bytes] | None = None
        self._relay_next = 0.0
        self._relay_failures = 0
        self._relay_out = b""
        self._relay_seen = {"underruns": (0, 0), "stalls": (0, 0)}
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
        global _open_streams
        _open_streams += 1

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
        - counts PortAudio's own ``output_underflow`` flag.
        """
        if status.output_underflow:
            self.output_underflows += 1
        now = time_info.currentTime
        body = outdata
        if now > 0.0 and self._prev_time > 0.0:
            late = now - self._prev_time - self._prev_block
            if late > STALL_S:
                self.stalls += 1
                self.stall_frames += int(late * SAMPLE_RATE)
                m = min(frames, FADE_FRAMES)
                np.multiply(self._fade[:m, None], self._last, out=outdata[:m])
                body = outdata[m:]
                self._rise_pos = 0
        self._prev_time = now
        self._prev_block = frames / SAMPLE_RATE
        want = body.shape[0]
        n = self._ring.pull_into(body)
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
                self.underruns += 1
                self.underrun_frames += want - n
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
            played = (time.monotonic() - self._lost_clock) * SAMPLE_RATE
            return int(self.frames_written - self._lost_base - played)
        return self._ring.available()

    def check(self) -> str | None:
        """Give the device up if its stream stopped or took nothing for ``stall_timeout``; returns ``lost``.

        Cheap (one PortAudio flag read) and never blocks. Once lost, it tends
        the relay instead: starts one when it is time, reads what it says.
        """
        if self._closed:
            return self.lost
        if self.lost is not None:
            self._tend_relay()
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
        return self.lost

    def _lose(self, reason: str) -> None:
        """Abandon the stream (no PortAudio call: it may hang) and discard audio at the wall clock's pace."""
        global _open_streams
        self.lost = f"output device {self.device} lost: {reason}"
        self._lost_clock = time.monotonic()
        self._lost_base = self.frames_written
        _abandoned_streams.append(self._stream)
        _open_streams -= 1
        sd = sys.modules.get("sounddevice")
        handler = getattr(sd, "_exit_handler", None)
        if handler is not None:
            atexit.unregister(handler)  # it would stop and close the dead stream at exit: forever
        self._relay_next = self._lost_clock + RELAY_RETRY_S

    # -- the relay (after a loss) --------------------------------------------

    @property
    def state(self) -> str:
        """``playing`` (the device), ``lost`` (audio discarded) or ``relayed`` (played by a relay process)."""
        if self.lost is None:
            return "playing"
        return "relayed" if self.relayed is not None else "lost"

    def _tend_relay(self) -> None:
        relay = self._relay
        if relay is None:
            if time.monotonic() >= self._relay_next:
                self._start_relay()
            return
        self._read_relay()
        if relay.poll() is not None:
            self._drop_relay(f"the relay exited with status {relay.returncode}")

    def _start_relay(self) -> None:
        env = dict(os.environ)
        env["JACK_NO_START_SERVER"] = "1"  # reattach to a server that is back, never start one
        selector = "" if self.selector is None else str(self.selector)
        argv = [sys.executable, "-m", "cadenza.runtime.sinks.relay", selector, str(RELAY_BUFFER_S)]
        try:
            relay = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env)
        except OSError as exc:
            self.relay_error = f"cannot start the relay process: {exc}"
            self._relay_backoff()
            return
        assert relay.stdin is not None and relay.stdout is not None
        os.set_blocking(relay.stdin.fileno(), False)
        os.set_blocking(relay.stdout.fileno(), False)
        try:
            import fcntl

            fcntl.fcntl(relay.stdin.fileno(), fcntl.F_SETPIPE_SZ, RELAY_PIPE_BYTES)
        except (ImportError, OSError, AttributeError):  # not Linux: the default pipe size, more latency
            pass
        self._relay, self._relay_out = relay, b""
        self._relay_seen = {"underruns": (0, 0), "stalls": (0, 0)}
        self.relay_starts += 1

    def _read_relay(self) -> None:
        relay = self._relay
        assert relay is not None and relay.stdout is not None
        try:
            data = os.read(relay.stdout.fileno(), 65536)
        except (BlockingIOError, InterruptedError):
            return
        self._relay_out += data
        while b"\n" in self._relay_out:
            raw, self._relay_out = self._relay_out.split(b"\n", 1)
            kind, _, rest = raw.decode(errors="replace").partition(" ")
            if kind == "ready":
                self.relayed, self._relay_failures = rest, 0
                now = time.monotonic()
                self._rebase(now, min(0, self._behind(now)))  # the lag from before the relay is nobody's xrun
                self._lag_reported, self._lag_since = (self.underruns, self.stalls), 0.0
            elif kind in ("error", "lost"):
                self.relay_error = rest
            elif kind in self._relay_seen:
                n, frames = (int(x) for x in rest.split())
                seen_n, seen_frames = self._relay_seen[kind]
                self._relay_seen[kind] = (n, frames)
                if kind == "underruns":
                    self.underruns += n - seen_n
                    self.underrun_frames += frames - seen_frames
                else:
                    self.stalls += n - seen_n
                    self.stall_frames += frames - seen_frames

    def _drop_relay(self, reason: str) -> None:
        relay, self._relay = self._relay, None
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
            self.relay_error = self.relay_error or reason
        self.relayed = None
        self._relay_backoff()

    def _relay_backoff(self) -> None:
        self._relay_failures += 1
        delay = min(RELAY_RETRY_MAX_S, RELAY_RETRY_S * 1.5 ** (self._relay_failures - 1))
        self._relay_next = time.monotonic() + delay

    def _behind(self, now: float) -> int:
        """Frames the producer is behind the monotonic clock since the last rebase (negative: ahead)."""
        return int((now - self._lost_clock) * SAMPLE_RATE) - (self.frames_written - self._lost_base)

    def _rebase(self, now: float, behind: int) -> None:
        """Restart the real-time reckoning of ``queued_frames`` at ``now``, ``behind`` frames behind."""
        self._lost_clock, self._lost_base = now, self.frames_written + behind

    def _relay_pace(self, waited: bool) -> None:
        """After a block went to the relay: count the relay falling behind real time as a stall.

        ``waited``: the pipe was full (the relay is what holds the producer
        back). A lag while the relay said it ran dry or stalled is already
        counted (the producer was late, or the relay's process was held up):
        it is forgiven, not counted twice; hence a lag is counted only once it
        lasted ``RELAY_LAG_CONFIRM_S`` without such a report.
        """
        if self._relay is None:
            return
        self._read_relay()  # what the relay reported so far
        now = time.monotonic()
        behind = self._behind(now)
        span = now - self._lost_clock
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
                self.relay_lag_frames += behind
                self._rebase(now, 0)
                self._lag_since = 0.0
        elif span >= RELAY_DRIFT_WINDOW_S and self._lag_since == 0.0:
            self._rebase(now, behind if behind <= 0 else max(0, behind - drift))
        self._lag_reported = (self.underruns, self.stalls)

    def _pipe_to_relay(self, arr: np.ndarray) -> None:
        """Hand a block to the relay; blocks while its pipe is full (see :meth:`_relay_pace` for what a relay
        slower than real time is counted as), and gives the relay up after ``RELAY_STALL_S`` without progress."""
        relay = self._relay
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
                    self.relay_dropped += len(view) // (CHANNELS * 4)
                    self.relay_error = f"the relay took no audio for {RELAY_STALL_S:g} s"
                    self._drop_relay(self.relay_error)
                    return
                select.select([], [fd], [], left)
                continue
            except OSError as exc:  # BrokenPipeError: the relay is gone
                self.relay_dropped += len(view) // (CHANNELS * 4)
                self._drop_relay(f"the relay's pipe broke: {exc}")
                return
            view = view[n:]
            deadline = time.monotonic() + RELAY_STALL_S
        self._relay_pace(waited)

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
            if self.relayed is not None and self._relay is not None:
                self._pipe_to_relay(arr)
            return
        ring = self._ring
        pos = ring.push(arr)
        while pos < len(arr):
            if not self._started:
                self._start()
            if not self._wait_until(lambda: ring.free() > 0, "waiting for room in the ring"):
                self._discarded += len(arr) - pos
                return
            pos += ring.push(arr[pos:])
        if not self._started and ring.free() == 0:
            self._start()

    def close(self, *, drain: bool = True) -> None:
        """Play out what was written (unless ``drain=False``), then stop; idempotent."""
        if self._closed:
            return
        self._closed = True
        global _open_streams
        self._draining = True  # from here on, a short callback is the end, not an underrun
        if self.lost is not None:
            if self._relay is not None:  # its stdin closes: it stops its device and exits
                self.relay_error = ""
                self._drop_relay("closed")
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
                    _open_streams -= 1

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
