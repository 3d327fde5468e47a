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

``sounddevice`` (and with it libportaudio) is imported lazily, inside this
module only, so nothing else in the package needs PortAudio installed. Foreign
errors (missing library, ``PortAudioError``) are translated to
:class:`AudioError` here, with the install hint or the list of devices.
"""

from __future__ import annotations

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
    the process used. Refused while a :class:`DeviceSink` is open.
    """
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
    for shorter streams. ``close()`` plays out everything written, then stops.

    Counters (readable from any thread at any time):

    - ``frames_written``: frames accepted by ``write``;
    - ``frames_played``: frames handed to the device by the callback;
    - ``underruns`` / ``underrun_frames``: callbacks that found the ring short
      while the stream was live (the producer was late), and the silent frames
      they inserted;
    - ``output_underflows``: callbacks flagged ``output_underflow`` by
      PortAudio itself (the host missed a deadline; not our ring's fault).
    """

    def __init__(
        self,
        device: str | int | None = None,
        *,
        blocksize: int = 0,
        latency: float | str = "high",
        buffer_seconds: float = 0.1,
        stall_timeout: float = 5.0,
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
        self._fade = np.linspace(1.0, 0.0, 480, dtype=np.float32)  # 10 ms hold-and-fade on an underrun
        self._last = np.zeros(CHANNELS, dtype=np.float32)
        self.output_underflows = 0
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
          allocates an audio buffer (only the few small view objects any
          Python code creates), never blocks, sleeps, takes a lock, logs,
          prints, raises or touches the file system;
        - always fills ``outdata`` completely: frames the producer has not
          written yet become the last sample held and faded to silence over
          10 ms (no click), and the callback counts one underrun (plus
          ``underrun_frames``) unless ``close()`` is draining the tail;
        - frees space for ``write`` only by advancing ``ring.read`` after the
          copy (single-producer/single-consumer, no lock);
        - counts PortAudio's own ``output_underflow`` flag.
        """
        if status.output_underflow:
            self.output_underflows += 1
        n = self._ring.pull_into(outdata)
        if n < frames:
            # never a click: hold the last sample and fade it out over the gap (no allocation:
            # the ramp is preallocated, the multiply writes into outdata)
            m = min(frames - n, self._fade.shape[0])
            last = outdata[n - 1] if n > 0 else self._last
            np.multiply(self._fade[:m, None], last, out=outdata[n : n + m])
            if m < frames - n:
                outdata[n + m :] = 0.0
            if not self._draining:
                self.underruns += 1
                self.underrun_frames += frames - n
        self._last[:] = outdata[frames - 1]

    # -- the producer side --------------------------------------------------

    @property
    def frames_written(self) -> int:
        return self._ring.written

    @property
    def frames_played(self) -> int:
        return self._ring.read

    @property
    def queued_frames(self) -> int:
        """Frames written but not yet handed to the device."""
        return self._ring.available()

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

    def _wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Sleep in small steps until ``ready()``; fail if the device stops consuming."""
        ring = self._ring
        last_read = ring.read
        last_progress = time.monotonic()
        while not ready():
            if not self._stream.active:
                raise AudioError(
                    f"output device {self.device} stopped while {what} "
                    "(device unplugged or audio server gone?)"
                )
            time.sleep(self._poll)
            now = time.monotonic()
            if ring.read != last_read:
                last_read, last_progress = ring.read, now
            elif now - last_progress > self.stall_timeout:
                raise AudioError(
                    f"output device {self.device} took no audio for {self.stall_timeout:g} s "
                    f"while {what} (device stalled or audio server hung?)"
                )

    def start(self) -> None:
        """Start playback now, with what is queued (a live producer's lookahead)."""
        if not self._started and not self._closed:
            self._start()

    def write(self, block: np.ndarray) -> None:
        """Queue one ``(frames, 2)`` float32 block; blocks while the ring is full."""
        if self._closed:
            raise UsageError("DeviceSink.write() after close()")
        arr = as_block(block, "DeviceSink")
        ring = self._ring
        pos = ring.push(arr)
        while pos < len(arr):
            if not self._started:
                self._start()
            self._wait_until(lambda: ring.free() > 0, "waiting for room in the ring")
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
        try:
            if drain:
                if self._ring.available() > 0:
                    if not self._started:
                        self._start()
                    self._wait_until(lambda: self._ring.available() == 0, "draining")
                if self._started:
                    self._stream.stop()  # returns once PortAudio played its buffers
            elif self._started:
                self._stream.abort()
        finally:
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
        return (
            f"DeviceSink({self.device}, played={self.frames_played}, "
            f"underruns={self.underruns}, output_underflows={self.output_underflows})"
        )
