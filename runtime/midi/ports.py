"""MIDI ports through python-rtmidi: pick the API (JACK or ALSA), list the ports, open one by number or name.

One job: the boundary to python-rtmidi. Everything that touches ``rtmidi``
objects for opening and listing goes through here, and its errors become
:class:`~cadenza.errors.UsageError` with the candidates listed (the
sounddevice model: a device-lookup error names what there is).

- :func:`load_rtmidi` imports the optional extra lazily: without it, one line
  says what to install (``pip install 'cadenza[midi]'``), no traceback.
- :func:`choose_api`: ``"jack"`` or ``"alsa"`` as asked; without a choice,
  JACK when a JACK server's socket is there (``$JACK_DEFAULT_SERVER`` or
  ``default``), else ALSA, else whatever rtmidi was built with.
- :func:`open_input` / :func:`open_output`: a port by number (as
  :func:`list_ports` prints them) or by a case-insensitive name substring
  (ambiguous or missing names list the candidates), or a *virtual* port of our
  own that other programs connect to (``jack_connect``, ``aconnect``).

- :func:`read_input`: a thread that drains rtmidi's own input queue (no Python
  callback in the audio system's thread: see there) and hands each message on.
- :func:`connect_jack`: ``jack_connect`` other programs' JACK MIDI outputs to our port (``--connect``).
- :func:`decode`: one event's bytes as rtmidi hands them over → ``(kind, channel, data1, data2)``; anything
  that is not one MIDI message is a :class:`MidiDecodeError` with a ``kind`` for the report. The bridge and
  MIDI learn both read what arrives through it.

The JACK client is named ``cadenza-midi`` (``--client-name``): a virtual port
``in`` is ``cadenza-midi:in`` in ``jack_lsp``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadenza.errors import CadenzaError, UsageError

logger = logging.getLogger(__name__)

__all__ = ["APIS", "INSTALL_HINT", "MidiDecodeError", "OpenPort", "choose_api", "connect_jack", "decode", "jack_running",
           "list_ports", "load_rtmidi", "open_input", "open_output", "read_input"]

INSTALL_HINT = "pip install 'cadenza[midi]'  (installs mido and python-rtmidi)"
APIS = ("jack", "alsa")
QUEUE_SIZE = 4096  # rtmidi's input queue (messages): we never set a callback (:func:`read_input`)
POLL_S = 0.001  # how long the reading thread waits when rtmidi's queue is empty


def load_rtmidi() -> Any:
    """The ``rtmidi`` module, or a :class:`UsageError` that says what to install."""
    try:
        import rtmidi  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise UsageError(f"MIDI needs the optional extra: {INSTALL_HINT} ({exc})", where="cadenza midi") from None
    return rtmidi


def jack_running() -> bool:
    """Whether the JACK server clients here would reach (``$JACK_DEFAULT_SERVER``, else ``default``) has its
    socket in ``/dev/shm`` (jackd2), without connecting to it (libjack prints to stderr when none runs)."""
    server = os.environ.get("JACK_DEFAULT_SERVER") or "default"
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(f"/dev/shm/jack_{server}_{uid}_0").exists()


def _api_number(rtmidi: Any, name: str) -> int:
    return int(rtmidi.API_UNIX_JACK if name == "jack" else rtmidi.API_LINUX_ALSA)


def choose_api(name: str | None) -> str:
    """``"jack"`` or ``"alsa"``: ``name`` when given (checked against what rtmidi was built with), else the
    one that works here."""
    rtmidi = load_rtmidi()
    compiled = {rtmidi.get_api_name(a) for a in rtmidi.get_compiled_api()}
    if name is not None:
        if name not in APIS:
            raise UsageError(f"unknown MIDI API {name!r}; choose one of {', '.join(APIS)}", where="--api")
        if name not in compiled:
            raise UsageError(f"this python-rtmidi was built without {name!r} (it has: "
                             f"{', '.join(sorted(compiled)) or 'none'}); reinstall python-rtmidi with it, or "
                             f"choose another --api", where="--api")
        if name == "jack" and not jack_running():
            server = os.environ.get("JACK_DEFAULT_SERVER") or "default"
            raise UsageError(f"no JACK server {server!r} is running; start one (jackd -d alsa, or "
                             "jackd --no-realtime -d dummy) or use --api alsa", where="--api")
        if name == "alsa" and not Path("/dev/snd/seq").exists():  # checked here: libasound would print its own line
            raise UsageError("there is no ALSA sequencer (/dev/snd/seq); load the snd-seq kernel module "
                             "(modprobe snd-seq), or use --api jack", where="--api")
        return name
    if "jack" in compiled and jack_running():
        return "jack"
    if "alsa" in compiled and Path("/dev/snd/seq").exists():
        return "alsa"
    if "jack" in compiled:
        raise UsageError("no JACK server is running and there is no ALSA sequencer (/dev/snd/seq); start a JACK "
                         "server, or load the snd-seq kernel module", where="--api")
    raise UsageError(f"python-rtmidi has none of {', '.join(APIS)} (it has: {', '.join(sorted(compiled))})",
                     where="--api")


def _make(api: str, output: bool, client_name: str) -> Any:
    rtmidi = load_rtmidi()
    cls = rtmidi.MidiOut if output else rtmidi.MidiIn
    try:
        if output:
            return cls(_api_number(rtmidi, api), name=client_name)
        return cls(_api_number(rtmidi, api), name=client_name, queue_size_limit=QUEUE_SIZE)
    except Exception as exc:  # rtmidi.SystemError and friends: translated here, at the boundary
        raise UsageError(f"cannot open the {api.upper()} MIDI system: {exc}", where="--api") from exc


def list_ports(api: str, output: bool = False, client_name: str = "cadenza-midi-list") -> list[str]:
    """The MIDI input (or output) ports ``api`` offers now, in rtmidi's order (their numbers)."""
    midi = _make(api, output, client_name)
    try:
        return [str(p) for p in midi.get_ports()]
    finally:
        midi.delete()


@dataclass
class OpenPort:
    """An open rtmidi port: ``midi`` (a ``MidiIn``/``MidiOut``), ``name`` as listed (or ``client:port`` for a
    virtual one), ``virtual``."""

    midi: Any
    name: str
    virtual: bool

    def close(self) -> None:
        try:
            self.midi.close_port()
        finally:
            self.midi.delete()


def _pick(ports: list[str], spec: str, what: str, option: str) -> int:
    listing = "; ".join(f"{i}: {p}" for i, p in enumerate(ports)) or "none"
    if spec.strip().isdigit():
        i = int(spec)
        if i < len(ports):
            return i
        raise UsageError(f"there is no {what} port number {i}; the {what} ports: {listing}", where=option)
    exact = [i for i, p in enumerate(ports) if p == spec]
    if len(exact) == 1:
        return exact[0]
    hits = [i for i, p in enumerate(ports) if spec.lower() in p.lower()]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise UsageError(f"no {what} port's name contains {spec!r}; the {what} ports: {listing} "
                         "(cadenza midi --list shows them)", where=option)
    raise UsageError(f"{len(hits)} {what} ports' names contain {spec!r}: "
                     f"{'; '.join(f'{i}: {ports[i]}' for i in hits)}; give more of the name or the number",
                     where=option)


def _open(api: str, output: bool, spec: str | None, virtual: str | None, client_name: str,
          option: str) -> OpenPort:
    what = "output" if output else "input"
    if virtual is not None and api == "jack":
        # JACK would rename a second client of the same name (NAME-01): our port's name must be the one we say
        taken = [p for p in list_ports(api) + list_ports(api, output=True) if p.startswith(f"{client_name}:")]
        if taken:
            raise UsageError(f"a JACK client named {client_name!r} runs already (its ports: {', '.join(taken)}; "
                             "another bridge?); give this one another --client-name", where="--client-name")
    midi = _make(api, output, client_name)
    try:
        if virtual is not None:
            midi.open_virtual_port(virtual)
            return OpenPort(midi, f"{client_name}:{virtual}", True)
        ports = [str(p) for p in midi.get_ports()]
        if spec is None:
            if len(ports) == 1:
                index = 0
            else:
                listing = "; ".join(f"{i}: {p}" for i, p in enumerate(ports)) or "none"
                raise UsageError(f"say which MIDI {what} port to open (a number or part of its name), or give "
                                 f"--virtual for a port of our own; the {what} ports: {listing}", where=option)
        else:
            index = _pick(ports, spec, what, option)
        midi.open_port(index, name="out" if output else "in")
        return OpenPort(midi, ports[index], False)
    except UsageError:
        midi.delete()
        raise
    except Exception as exc:
        midi.delete()
        raise UsageError(f"cannot open the MIDI {what} port: {exc}", where=option) from exc


def open_input(api: str, spec: str | None = None, *, virtual: str | None = None,
               client_name: str = "cadenza-midi") -> OpenPort:
    """Open an input port: ``spec`` a number or name substring, or ``virtual`` (a port name) for our own port.
    Sysex, timing and active sensing are not filtered here: the bridge counts and reports them itself."""
    port = _open(api, False, spec, virtual, client_name, "--port")
    port.midi.ignore_types(sysex=False, timing=False, active_sense=False)
    return port


def open_output(api: str, spec: str | None = None, *, virtual: str | None = None,
                client_name: str = "cadenza-midi") -> OpenPort:
    """Open an output port (for MIDI clock out): like :func:`open_input`."""
    return _open(api, True, spec, virtual, client_name, "--clock-out")


def read_input(port: OpenPort, handle: Callable[[list[int]], None], stop: threading.Event, *,
               interval: float = POLL_S, name: str = "cadenza-midi-in") -> threading.Thread:
    """Start a thread that hands each message arriving on ``port`` to ``handle(bytes)`` until ``stop``.

    No Python callback is given to rtmidi: its input callback would run in
    JACK's process thread (or ALSA's input thread) and take the GIL there,
    which waits for whatever Python thread holds it (up to the interpreter's
    5 ms switch interval, more under load). A JACK client that has not
    finished its cycle in time is an xrun, and the MIDI in its port buffer for
    the cycles it missed is lost; a real-time server is held up by it. Without
    a callback, rtmidi's own process code only copies each message into its
    C++ queue (:data:`QUEUE_SIZE` messages; no GIL, no Python), and this
    thread drains the queue whenever it has something, else waits
    ``interval`` (1 ms: the most a message waits here). ``handle`` runs in
    this thread, never in the audio system's."""
    midi = port.midi
    get = midi.get_message

    def loop() -> None:
        while not stop.is_set():
            got = get()
            if got is None:
                stop.wait(interval)
                continue
            while got is not None:  # a burst: all of it before waiting again
                handle(got[0])
                got = get()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


PORT_WATCH_S = 3.0  # how often the watch looks for the opened port


def watch_port(api: str, port: OpenPort, stop: threading.Event, *, every: float = PORT_WATCH_S) -> threading.Thread:
    """A thread logging when the (not virtual) port we opened disappears from the port list and when it is back
    (an unplugged controller matters for an unattended installation)."""

    def loop() -> None:
        gone = False
        while not stop.wait(every):
            try:
                present = port.name in list_ports(api)
            except Exception as exc:  # noqa: BLE001 - the MIDI system itself went away: say it once
                present = False
                logger.debug("listing MIDI ports: %s", exc)
            if gone == present:
                gone = not present
                if gone:
                    logger.warning("the MIDI input port %s is gone (unplugged, or its program ended)", port.name)
                else:
                    logger.warning("the MIDI input port %s is back", port.name)

    thread = threading.Thread(target=loop, name="cadenza-midi-port-watch", daemon=True)
    thread.start()
    return thread


def connect_jack(api: str, sources: list[str], ours: str) -> None:
    """Connect each JACK output port in ``sources`` to our input port (``jack_connect``)."""
    import shutil
    import subprocess

    if api != "jack":
        raise UsageError("--connect works with --api jack (with ALSA use aconnect)", where="--connect")
    tool = shutil.which("jack_connect")
    if tool is None:
        raise UsageError("--connect needs jack_connect (apt install jackd2)", where="--connect")
    for src in sources:
        done = subprocess.run([tool, src, ours], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=10)
        if done.returncode != 0:
            raise UsageError(f"cannot connect {src!r} to {ours!r}: {(done.stderr or done.stdout).strip()}",
                             where="--connect")


# --------------------------------------------------------------------------- what arrives on a port

# status byte high nibble → channel message kind and its data length
_KINDS = {0x80: ("note_off", 2), 0x90: ("note_on", 2), 0xA0: ("poly_aftertouch", 2), 0xB0: ("cc", 2),
          0xC0: ("program", 1), 0xD0: ("aftertouch", 1), 0xE0: ("pitch_bend", 2)}
_SYSTEM_LENGTHS = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0, 0xF8: 0, 0xF9: 0, 0xFA: 0, 0xFB: 0, 0xFC: 0, 0xFD: 0,
                   0xFE: 0, 0xFF: 0}


class MidiDecodeError(CadenzaError, ValueError):
    """Bytes that are not one MIDI message; ``kind`` is the problem's kind for the report."""

    def __init__(self, why: str, kind: str = "malformed") -> None:
        super().__init__(why)
        self.kind = kind


def decode(data: list[int] | bytes | tuple[int, ...]) -> tuple[str, int, int, int]:
    """One MIDI message's bytes → ``(kind, channel 0-15, data1, data2)``; ``kind`` is a channel message kind
    (``note_on`` with velocity 0 is ``note_off``; ``pitch_bend`` has its 14-bit value in data1) or
    ``system`` (data1 the status byte) or ``sysex``. Raises :class:`MidiDecodeError`."""
    if not data:
        raise MidiDecodeError("an empty MIDI event")
    status = data[0]
    if not isinstance(status, int) or not 0 <= status <= 255:
        raise MidiDecodeError(f"a byte {status!r} out of range")
    if status < 0x80:
        raise MidiDecodeError(f"no status byte (starts with data byte 0x{status:02X}: running status is not used "
                              f"on this transport, or garbage)", "no_status")
    if status == 0xF0:
        return "sysex", 0, len(data), 0
    if status >= 0xF0:
        n = _SYSTEM_LENGTHS.get(status)
        if n is None:
            raise MidiDecodeError(f"a stray 0x{status:02X} (end of sysex without its start, or undefined)")
        if len(data) != n + 1:
            raise MidiDecodeError(f"system message 0x{status:02X} has {len(data) - 1} data bytes, expected {n}")
        return "system", 0, status, (data[1] if n >= 1 else 0) | ((data[2] << 7) if n == 2 else 0)
    kind, n = _KINDS[status & 0xF0]
    if len(data) < n + 1:
        raise MidiDecodeError(f"{kind} 0x{status:02X} is cut short: {len(data) - 1} of {n} data bytes", "truncated")
    if len(data) > n + 1:
        raise MidiDecodeError(f"{kind} 0x{status:02X} has {len(data) - 1} data bytes, expected {n} (several "
                              "messages in one event, or garbage)")
    d1 = data[1]
    d2 = data[2] if n == 2 else 0
    if d1 > 0x7F or d2 > 0x7F or d1 < 0 or d2 < 0:
        raise MidiDecodeError(f"{kind} 0x{status:02X} has a data byte over 127 ({d1}, {d2})")
    channel = status & 0x0F
    if kind == "note_on" and d2 == 0:
        kind = "note_off"
    if kind == "pitch_bend":
        return kind, channel, d1 | (d2 << 7), 0
    return kind, channel, d1, d2
