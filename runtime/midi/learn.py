"""MIDI learn (``cadenza midi --learn FILE``): move a control, pick the parameter, the mapping file is written.

One job: turn "the next control the user moves" into a :class:`~.mapping.Binding`
and write it into the mapping file.

1. The runtime's graph is described (:meth:`Client.describe`): its parameters,
   triggers and states are what can be picked.
2. The input port is opened and the next *moved control* is awaited: a CC (a
   CC 0-31 followed within :data:`PAIR_WINDOW_S` by its LSB CC n+32 is learned
   as a 14-bit pair), pitch bend, channel or poly aftertouch, a note-on or a
   program change. Clock, sysex and note-offs are skipped.
3. The target: ``--learn-param NAME`` takes it without asking (scripts and
   tests; a parameter for a knob, a trigger or state for a note or program
   change); on a terminal the choices are listed and a number or name is read.
   A knob offered to a trigger (or a key to a parameter) is refused with the
   reason, and the next moved control is awaited.
4. The binding replaces any entry for the same message and channel; the file is
   written atomically (:func:`~.mapping.write_mapping`: a temporary file, then
   a rename), so a bridge reading it never sees half a file. Comments in an
   existing file are not kept (the file is rewritten from its data).

Interactive learn goes on with the next control until Ctrl-C or an empty answer.
"""

from __future__ import annotations

import math
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cadenza.errors import CadenzaError, UsageError
from cadenza.runtime.logs import printable
from cadenza.runtime.midi.mapping import Binding, Mapping, load_mapping, write_mapping
from cadenza.runtime.midi.ports import MidiDecodeError, decode

__all__ = ["LearnConfig", "Moved", "binding_for", "run_learn"]

PAIR_WINDOW_S = 0.1  # an LSB (CC n+32) this soon after CC n makes the pair 14-bit


@dataclass(frozen=True)
class Moved:
    """A control the user moved: ``source`` as in the mapping file, its ``number`` (None for pitch bend and
    channel aftertouch), ``channel`` 0-15."""

    source: str
    number: int | None
    channel: int

    def describe(self) -> str:
        return Binding(self.source, self.number, self.channel, "parameter", "?").describe().rsplit(" ->", 1)[0]

    @property
    def continuous(self) -> bool:
        return self.source in ("cc", "cc14", "pitch_bend", "aftertouch", "poly_aftertouch")


@dataclass
class LearnConfig:
    file: str
    parameter: str | None = None  # bind the next moved control to this, without asking
    port: str | None = None
    virtual: str | None = None
    api: str | None = None
    client_name: str = "cadenza-midi"
    control: str | None = None
    events: str | None = None
    timeout: float = 2.0
    connect: list[str] = field(default_factory=list)
    wait: float = 0.0  # --learn-timeout: give up after this many seconds with nothing learned (0: wait on)


def binding_for(moved: Moved, name: str, graph: Any) -> Binding:
    """The binding of ``moved`` to ``name`` (a parameter, trigger or state of ``graph``, a ``GraphInfo``; None:
    a parameter, unchecked). :class:`UsageError` when the name or the kind of control does not fit."""
    kinds = []
    if graph is None or name in graph.parameters:
        kinds.append("parameter")
    if graph is not None and name in graph.triggers:
        kinds.append("trigger")
    if graph is not None and name in graph.states:
        kinds.append("state")
    if not kinds:
        raise UsageError(f"the graph {graph.name!r} has no parameter, trigger or state {name!r}; its parameters: "
                         f"{', '.join(graph.parameters) or 'none'}; triggers: {', '.join(graph.triggers) or 'none'};"
                         f" states: {', '.join(graph.states) or 'none'}", where="--learn-param")
    if moved.continuous:
        if "parameter" not in kinds:
            raise UsageError(f"{moved.describe()} is a knob or fader; {name!r} is a {kinds[0]}: press a key or send "
                             "a program change for it, or pick a parameter", where="--learn-param")
        return Binding(moved.source, moved.number, moved.channel, "parameter", name)
    target = next((k for k in ("trigger", "state") if k in kinds), None)
    if target is None:
        raise UsageError(f"{moved.describe()} has no value to set parameter {name!r} with: move a knob, fader, "
                         "pitch bend or aftertouch for it", where="--learn-param")
    return Binding(moved.source, moved.number, moved.channel, target, name)


class _Listener:
    """The port's messages (:func:`~.ports.read_input`'s thread) → a queue → the next moved control (14-bit
    pairs detected by their LSB following the MSB)."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[float, list[int]]] = queue.Queue(maxsize=10_000)

    def put(self, data: list[int]) -> None:
        try:
            self.events.put_nowait((time.monotonic(), data))
        except queue.Full:
            pass

    def drain(self) -> None:
        while True:
            try:
                self.events.get_nowait()
            except queue.Empty:
                return

    def next_moved(self, stop: threading.Event) -> Moved | None:
        while not stop.is_set():
            try:
                t, data = self.events.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                kind, ch, d1, _d2 = decode(data)
            except MidiDecodeError:
                continue
            if kind == "cc":
                if d1 < 32:
                    deadline = t + PAIR_WINDOW_S
                    while time.monotonic() < deadline:
                        try:
                            _, more = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
                        except queue.Empty:
                            break
                        try:
                            k2, ch2, n2, _ = decode(more)
                        except MidiDecodeError:
                            continue
                        if k2 == "cc" and ch2 == ch and n2 == d1 + 32:
                            return Moved("cc14", d1, ch)
                return Moved("cc", d1, ch)
            if kind in ("pitch_bend", "aftertouch"):
                return Moved(kind, None, ch)
            if kind == "poly_aftertouch":
                return Moved(kind, d1, ch)
            if kind == "note_on":
                return Moved("note", d1, ch)
            if kind == "program":
                return Moved("program", d1, ch)
        return None


def _choose(moved: Moved, graph: Any) -> str | None:
    """Ask on the terminal which name ``moved`` drives; None for an empty answer (stop)."""
    if moved.continuous:
        names = list(graph.parameters) if graph is not None else []
        what = "parameter"
    else:
        names = (list(graph.triggers) + list(graph.states)) if graph is not None else []
        what = "trigger or state"
    print(f"learned {moved.describe()}. Which {what}?")
    for i, n in enumerate(names, 1):
        print(f"  {i}: {n}")
    while True:
        try:
            answer = input(f"{what} (number or name; empty: finish): ").strip()
        except EOFError:
            return None
        if not answer:
            return None
        if answer.isdigit() and 1 <= int(answer) <= len(names):
            return names[int(answer) - 1]
        if answer in names or graph is None:
            return answer
        print(f"  no {what} {answer!r}; give a number 1-{len(names)} or one of the names")


def _merged(mapping: Mapping, b: Binding) -> Mapping:
    keep = [x for x in mapping.bindings if not (x.source == b.source and x.number == b.number
                                                and x.channel == b.channel and x.target == b.target)]
    if b.source in ("cc", "cc14"):  # a CC learned anew replaces the 7-/14-bit entries that use its numbers
        nums = {b.number} if b.source == "cc" else {b.number, (b.number or 0) + 32}
        keep = [x for x in keep if not (x.channel == b.channel and (
            (x.source == "cc" and x.number in nums)
            or (x.source == "cc14" and ({x.number, (x.number or 0) + 32} & nums))))]
    return Mapping([*keep, b], mapping.port, mapping.channel, mapping.file)


def _check_writable(path: Path) -> None:
    """The file is written atomically (a temporary file beside it, then a rename): its folder must take a file."""
    import os
    import tempfile

    folder = path.absolute().parent
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"cannot write {str(path)!r}: its folder {str(folder)!r} takes no new file "
                         f"({exc.strerror or exc}); choose a writable place", where="--learn") from None


def run_learn(config: LearnConfig) -> int:
    """Learn one binding (``parameter`` given) or several (interactive), writing ``config.file`` after each."""
    from cadenza.endpoints import endpoint_source
    from cadenza.runtime.midi.ports import choose_api, connect_jack, open_input, read_input
    from cadenza.sdk.client import Client

    interactive = config.parameter is None
    if interactive and not sys.stdin.isatty():
        raise UsageError("interactive learn needs a terminal; give --learn-param NAME to bind the next moved "
                         "control without asking", where="--learn")
    path = Path(config.file)
    mapping = load_mapping(path) if path.exists() else Mapping([], None, None, str(path))
    _check_writable(path)  # before waiting for a control, not after it moved
    if not (config.wait == 0 or (math.isfinite(config.wait) and 0 < config.wait <= 86_400)):
        raise UsageError(f"must be 0 (wait on) or a number of seconds up to 86400, got {config.wait!r}",
                         where="--learn-timeout")
    control = config.control or endpoint_source("control")[0]
    events = config.events or endpoint_source("events")[0]
    api = choose_api(config.api)
    stop = threading.Event()
    prompting = threading.Event()  # at the terminal's prompt: Ctrl-C must end input() too

    def on_signal(*_: object) -> None:
        stop.set()
        if prompting.is_set():
            raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    with Client(control, events, timeout=config.timeout, name="cadenza-midi-learn") as client:
        try:
            graph = client.describe()
        except CadenzaError as exc:
            if interactive:
                raise UsageError(f"cannot describe the runtime's graph ({exc}); load one first (cadenza ctl load "
                                 "FILE)", where="--learn") from exc
            graph = None
        if graph is not None and config.parameter is not None:
            binding_for(Moved("cc", 0, 0) if config.parameter in graph.parameters else Moved("note", 0, 0),
                        config.parameter, graph)  # refuse an unknown name before waiting for a control
        listener = _Listener()
        port = open_input(api, config.port if config.port is not None else mapping.port, virtual=config.virtual,
                          client_name=config.client_name)
        learned = 0
        timed_out = threading.Event()
        reader: threading.Thread | None = None
        try:
            reader = read_input(port, listener.put, stop, name="cadenza-midi-learn-in")
            if config.connect:
                connect_jack(api, config.connect, port.name)
            target = f" for {config.parameter!r}" if config.parameter else ""
            print(f"cadenza midi: learn: listening on {printable(port.name)} ({api.upper()}); move a control{target} "
                  "(Ctrl-C to stop)", flush=True)
            if config.wait > 0:
                def give_up() -> None:
                    if not learned:
                        timed_out.set()
                        stop.set()

                timer = threading.Timer(config.wait, give_up)
                timer.daemon = True
                timer.start()
            while not stop.is_set():
                moved = listener.next_moved(stop)
                if moved is None:
                    break
                if config.parameter is not None:
                    name: str | None = config.parameter
                else:
                    prompting.set()
                    try:
                        name = _choose(moved, graph)
                    except KeyboardInterrupt:
                        name = None
                    finally:
                        prompting.clear()
                if name is None:
                    break
                try:
                    b = binding_for(moved, name, graph)
                except UsageError as exc:
                    print(f"cadenza midi: learn: {exc.message}; move another "
                          "control", flush=True)
                    listener.drain()
                    continue
                mapping = _merged(mapping, b)
                write_mapping(mapping, path)
                learned += 1
                print(f"cadenza midi: learned {b.describe()}; wrote {path} ({len(mapping.bindings)} mappings)",
                      flush=True)
                if not interactive:
                    break
                time.sleep(0.3)
                listener.drain()  # the rest of that gesture
                print("move the next control (Ctrl-C or an empty answer to finish)", flush=True)
        finally:
            stop.set()
            if reader is not None:
                reader.join(1.0)
            port.close()
    if learned == 0:
        why = f"nothing moved within {config.wait:g} s (--learn-timeout); " if timed_out.is_set() else ""
        print(f"cadenza midi: learn: {why}nothing learned; the file is unchanged", flush=True)
        return 1 if not interactive else 0
    return 0

