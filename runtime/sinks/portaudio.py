"""PortAudio and the output devices it sees: loading it, naming this process's JACK client, listing and
choosing a device, and keeping count of the streams open on it.

``sounddevice`` (and with it libportaudio) is imported lazily, here only, so
nothing else in the package needs PortAudio installed. Foreign errors (missing
library, ``PortAudioError``) are translated to :class:`AudioError` here, with
the install hint or the list of devices.

Each process registers with a JACK server as ``cadenza-PID`` (the relay as
``cadenza-relay-PID``), never PortAudio's shared default ``PortAudio``: a
process that lost its server still holds that name's wake-up futex, and a
newcomer under the same name would run the restarted server at half speed
(:func:`_name_jack_client`).

A :class:`~cadenza.runtime.sinks.device.DeviceSink` tells this module when it
opens a stream (:func:`stream_opened`), closes it (:func:`stream_closed`) or
abandons it with its lost device (:func:`abandon_stream`): PortAudio may not be
released or re-initialised under an open stream, nor at all once one was
abandoned.
"""

from __future__ import annotations

import atexit
import os
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from cadenza.errors import AudioError, UsageError
from cadenza.runtime.audio import CHANNELS, SAMPLE_RATE

__all__ = ["INSTALL_HINT", "NO_DEVICE_HINT", "OutputDevice", "abandon_stream", "find_output_device",
           "has_output_device", "jack_client_name", "load_sounddevice", "output_devices", "release_portaudio",
           "rescan_devices", "set_jack_client_name", "stream_closed", "stream_opened"]

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


def load_sounddevice() -> ModuleType:
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
    sd = load_sounddevice()
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
    sd = load_sounddevice()
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
    load_sounddevice()  # initialises PortAudio again


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


def stream_opened() -> None:
    """A DeviceSink opened a stream (PortAudio may not be released until it is closed or abandoned)."""
    global _open_streams
    _open_streams += 1


def stream_closed() -> None:
    """A DeviceSink closed its stream."""
    global _open_streams
    _open_streams -= 1


def abandon_stream(stream: Any) -> None:
    """A DeviceSink lost its device: keep ``stream`` referenced and never close it (closing one whose JACK
    server died waits forever), not even at exit."""
    global _open_streams
    _abandoned_streams.append(stream)
    _open_streams -= 1
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None:
        atexit.unregister(handler)  # it would stop and close the dead stream at exit: forever
