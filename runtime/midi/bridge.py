"""``cadenza midi``: a bridge from MIDI controllers and keyboards to a running runtime, and its command line.

What a message does is written in a mapping file (:mod:`.mapping`): control
changes (7-bit, and 14-bit MSB/LSB pairs CC n / n+32), pitch bend, channel
and poly aftertouch → parameters (range, curve); notes → the ``notes`` control
(the notes held now) and/or triggers; program change → state.

Threads::

    JACK's process thread   (rtmidi's C++ code, no Python and no GIL: we set no rtmidi callback) copies each
                            message into rtmidi's queue; nothing of ours runs in the audio system's threads.
    reading thread          (:func:`~.ports.read_input`) drains that queue when it has something, else waits
                            1 ms → :meth:`MidiBridge.receive`: decode the bytes (:func:`~.ports.decode`:
                            running-status garbage, truncated messages, sysex are counted, never raised), look
                            the message up in the mapping, compute the value with the graph's range →
                            :class:`~cadenza.runtime.bridge_process.Coalescer`, wake the main thread. Never waits
                            for the runtime; a problem goes to the rate-limited reporter (a log line at most).
    main thread             when something arrives: at once when the last send is a period (10 ms) ago or
                            more, else at the period's end (a flood is one request a period): take the batch →
                            one ``set_many`` with the latest value of each parameter, one ``set_controls(notes=…)``
                            when the held notes changed, then at most a few triggers/state requests, through the
                            SDK :class:`Client`. Every few seconds: describe the graph again and, when it changed,
                            check the mapping against it (unknown names are logged, one line each).

A flood of 10,000 CCs therefore costs the runtime at most one ``SetParameters``
per period. Bad input (wrong channel, unmapped messages, sysex, running-status
garbage, a note-off without its note-on, unknown names) is counted by kind and
reported by the bridges' :class:`~cadenza.runtime.bridge_process.Reporter`: one line
per (where, kind) every few seconds, with "… and N more like it", a few lines a
second in all. The counters are printed at exit and logged on SIGUSR1 and every
``--report-every`` seconds. SIGTERM/SIGINT end the bridge within a second (the
period loop and this lifecycle are :mod:`cadenza.runtime.bridge_process`, shared
with ``cadenza osc``).

System real-time and common messages (clock, start/stop, song position) are
handed to :attr:`MidiBridge.system` when set (MIDI clock in, :mod:`.clock`),
else counted and ignored.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from cadenza.errors import CadenzaError, UsageError
from cadenza.runtime.midi.mapping import Binding, Mapping, check_against, load_mapping
from cadenza.runtime.logs import printable
from cadenza.runtime.midi.ports import MidiDecodeError, decode, watch_port
from cadenza.runtime.bridge_process import (
    BridgeCounts,
    BridgeProcess,
    CoalescingBridge,
    add_period_arguments,
    check_report_every,
)

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_PERIOD", "MidiBridge", "MidiConfig", "MidiStats", "add_midi_command", "run_bridge"]

DEFAULT_PERIOD = 0.010  # seconds: one runtime control tick (control_rate 100)
CLIENT_NAME = "cadenza-midi"
# --------------------------------------------------------------------------- counting


@dataclass
class MidiStats(BridgeCounts):
    """What the bridge did; :meth:`summary` and :meth:`problems_line` are the lines it prints at exit."""

    note_sets: int = 0  # SetControls(notes) sent
    system: int = 0  # clock, start/stop, song position … (handed on, or ignored)
    command: ClassVar[str] = "midi"

    def more_sent(self) -> str:
        return f"{self.note_sets} note sets, "

    def problems_line(self) -> str:
        return f"{self.periods} periods, {self.system} system messages; problems by kind: {self.problem_kinds()}"


def _where(kind: str, channel: int, number: int | None = None) -> str:
    what = {"cc": f"CC {number}", "note_on": f"note {number}", "note_off": f"note-off {number}",
            "poly_aftertouch": f"poly aftertouch {number}", "program": f"program {number}",
            "aftertouch": "channel aftertouch", "pitch_bend": "pitch bend"}.get(kind, kind)
    return f"ch{channel + 1} {what}"


class MidiBridge(CoalescingBridge):
    """MIDI messages → coalesced requests to ``target`` (the SDK ``Client``) by a :class:`Mapping`.

    :meth:`receive` is thread-safe and never raises or blocks; :meth:`flush`, :meth:`describe` and :meth:`run`
    belong to one sending thread."""

    def __init__(self, target: Any, mapping: Mapping, *, period: float = DEFAULT_PERIOD,
                 log: Callable[[str], None] | None = None, report_every: float = 60.0) -> None:
        if not (isinstance(period, (int, float)) and math.isfinite(period) and 0.001 <= period <= 1.0):
            raise UsageError(f"must be between 1 and 1000 ms, got {period * 1000!r}", where="--period")
        super().__init__(target, MidiStats(), period=period, log=log, report_every=report_every, logger=logger)
        self.stats: MidiStats
        #: called with (status byte, value, arrival time.monotonic()) for system messages (MIDI clock in)
        self.system: Callable[[int, int, float], None] | None = None
        self._signature: Any = None
        self._notes_lock = threading.Lock()
        self._held: dict[tuple[int, int], int] = {}  # (channel, note) → velocity, notes for the notes control
        self._notes_dirty = False
        self._msb: dict[tuple[int, int], int] = {}  # (channel, cc14 MSB number) → last MSB
        self.set_mapping(mapping)

    def set_mapping(self, mapping: Mapping) -> None:
        """Index the mapping: (source, number, channel) → binding; channel None means any."""
        self.mapping = mapping
        index: dict[tuple[str, int | None, int | None], Binding] = {}
        note_targets: dict[tuple[int | None, int | None], list[Binding]] = {}
        any_channel: set[tuple[str, int | None]] = set()
        lsb: dict[tuple[int, int | None], Binding] = {}
        for b in mapping.bindings:
            if b.source in ("note", "notes"):
                note_targets.setdefault((b.number, b.channel), []).append(b)
                any_channel.add(("note", b.number))
                continue
            index[(b.source, b.number, b.channel)] = b
            any_channel.add((b.source, b.number))
            if b.source == "cc14":
                assert b.number is not None
                lsb[(b.number + 32, b.channel)] = b
                any_channel.add(("cc", b.number))
                any_channel.add(("cc", b.number + 32))
        self._index = index
        self._note_targets = note_targets
        self._mapped_somewhere = any_channel
        self._lsb = lsb
        self._signature = None  # check against the graph again

    # ----------------------------------------------------------------- receiving thread

    def receive(self, data: list[int] | bytes | tuple[int, ...], port: str = "") -> None:
        """One MIDI event's bytes. Never raises, never blocks."""
        self._add("messages")
        try:
            self._receive(data)
        except MidiDecodeError as exc:
            head = " ".join(f"{b:02X}" for b in list(data[:6])) + (" …" if len(data) > 6 else "")
            where = f"{port or 'port'} {exc.kind}"
            self.reporter.problem(exc.kind, where, f"{port or 'MIDI'}: dropped [{head}] ({len(data)} bytes): {exc}")
        except Exception as exc:  # noqa: BLE001 — a sender's garbage must not stop the bridge
            self.reporter.problem("internal", port or "MIDI", f"{port or 'MIDI'}: dropped an event "
                                  f"({type(exc).__name__}: {exc})")

    def _lookup(self, source: str, number: int | None, channel: int) -> Binding | None:
        b = self._index.get((source, number, channel))
        if b is None:
            b = self._index.get((source, number, None))
        return b

    def _receive(self, data: list[int] | bytes | tuple[int, ...]) -> None:
        kind, ch, d1, d2 = decode(data)
        if kind == "system":
            self._add("system")
            hook = self.system
            if hook is not None:
                hook(d1, d2, time.monotonic())
            return
        if kind == "sysex":
            self.reporter.problem("sysex", "sysex", f"sysex: ignored ({d1} bytes; the bridge maps channel "
                                  "messages only)")
            return
        if kind == "cc":
            b = self._lookup("cc", d1, ch)
            if b is not None:
                self._set(b, d2, ch, d1)
                return
            b = self._lookup("cc14", d1, ch)
            if b is not None:  # an MSB: the LSB starts over at 0
                self._msb[(ch, d1)] = d2
                self._set(b, d2 << 7, ch, d1)
                return
            b = self._lsb.get((d1, ch)) or self._lsb.get((d1, None))
            if b is not None:
                assert b.number is not None
                msb = self._msb.get((ch, b.number))
                if msb is None:
                    return  # an LSB before any MSB: the value is not known yet
                self._set(b, (msb << 7) | d2, ch, d1)
                return
            self._unmapped("cc", ch, d1)
        elif kind in ("pitch_bend", "aftertouch"):
            b = self._lookup(kind, None, ch)
            if b is None:
                self._unmapped(kind, ch, None)
            else:
                self._set(b, d1, ch, None)
        elif kind == "poly_aftertouch":
            b = self._lookup(kind, d1, ch) or self._lookup(kind, None, ch)
            if b is None:
                self._unmapped(kind, ch, d1)
            else:
                self._set(b, d2, ch, d1)
        elif kind == "program":
            b = self._lookup("program", d1, ch)
            if b is None:
                self._unmapped("program", ch, d1)
            else:
                self._action("state", b.name, _where("program", ch, d1))
        elif kind in ("note_on", "note_off"):
            self._note(kind == "note_on", ch, d1, d2)

    def _unmapped(self, kind: str, ch: int, number: int | None) -> None:
        where = _where(kind, ch, number)
        if (kind, number) in self._mapped_somewhere or (kind, None) in self._mapped_somewhere:
            chans = sorted({b.channel + 1 for b in self.mapping.bindings if b.channel is not None
                            and (b.source == kind or (kind == "cc" and b.source == "cc14"))
                            and b.number in (number, None, (number or 0) - 32)})
            self.reporter.problem("wrong_channel", where, f"{where}: mapped on channel "
                                  f"{', '.join(map(str, chans)) or '?'} only; ignored (set channel: any, or "
                                  "the controller's channel)")
        else:
            self.reporter.problem("unmapped", where, f"{where}: not in the mapping {self.mapping.file}; ignored "
                                  "(cadenza midi --learn adds it)")

    def _set(self, b: Binding, raw: int, ch: int, number: int | None) -> None:
        graph = self._graph
        info = None
        if graph is not None:
            info = graph.parameters.get(b.name)
            if info is None:
                self._describe_soon = True
                where = _where(b.source if b.source != "cc14" else "cc", ch, number)
                self.reporter.problem("unknown_name", where, f"{where}: the graph {graph.name!r} has no parameter "
                                      f"{b.name!r} (mapping {self.mapping.file}:{b.line}); dropped")
                return
        value = b.value(raw, info)
        if value is None:
            return
        if (info is not None and isinstance(value, float) and info.kind != "labeled"
                and math.isfinite(info.minimum) and math.isfinite(info.maximum)
                and not info.minimum <= value <= info.maximum):
            clamped = min(max(value, info.minimum), info.maximum)
            where = _where(b.source if b.source != "cc14" else "cc", ch, number)
            self.reporter.problem("clamped", where, f"{where}: {value:g} is outside the range [{info.minimum:g}, "
                                  f"{info.maximum:g}] of parameter {b.name!r}; clamped to {clamped:g}",
                                  refused=False)
            value = clamped
        self.coalescer.put_value(b.name, value)
        self._add("parameter_updates")
        self.wake.set()

    def _action(self, kind: str, name: str, where: str) -> None:
        graph = self._graph
        if graph is not None:
            names = graph.triggers if kind == "trigger" else graph.states
            if name not in names:
                self._describe_soon = True
                self.reporter.problem(f"unknown_{kind}", where, f"{where}: the graph {graph.name!r} has no {kind} "
                                      f"{name!r}; dropped")
                return
        if self.coalescer.put_action(kind, name):
            self.wake.set()
        else:
            self.reporter.problem("too_many_actions", where, f"{where}: more than {self.coalescer.max_actions} "
                                  f"triggers and state requests in one {self.period * 1000:g} ms period; dropped")

    def _note(self, on: bool, ch: int, note: int, velocity: int) -> None:
        targets = self._note_targets.get((note, ch)) or self._note_targets.get((note, None)) or []
        targets = targets + (self._note_targets.get((None, ch)) or self._note_targets.get((None, None)) or [])
        if not targets:
            self._unmapped("note_on" if on else "note_off", ch, note)
            return
        where = _where("note_on", ch, note)
        to_control = any(b.target == "control" for b in targets)
        with self._notes_lock:
            if on:
                if to_control:
                    self._held[(ch, note)] = velocity
                    self._notes_dirty = True
            elif to_control:
                if self._held.pop((ch, note), None) is None:
                    self.reporter.problem("note_off_without_on", where, f"{where}: a note-off without its note-on; "
                                          "ignored", refused=False)
                else:
                    self._notes_dirty = True
        if on:
            for b in targets:
                if b.target == "trigger":
                    self._action("trigger", b.name, where)
                elif b.target == "state":
                    self._action("state", b.name, where)
        if to_control:
            self.wake.set()

    def held_notes(self) -> list[int]:
        with self._notes_lock:
            return sorted({n for (_, n) in self._held})

    def release_notes(self) -> bool:
        """Forget every held note; the next :meth:`flush` gives the ``notes`` control back to the graph (an empty
        held set). Called at start (a bridge killed before it could release its notes left them held in the
        runtime) and at exit (SIGTERM/SIGINT: no note stays stuck). Only a mapping that sends notes to the control
        owns it; returns whether this one does."""
        if not any(b.target == "control" for bs in self._note_targets.values() for b in bs):
            return False
        with self._notes_lock:
            self._held.clear()
            self._notes_dirty = True
        return True

    # ----------------------------------------------------------------- sending thread

    def describe(self, force: bool = False) -> None:
        """Ask the runtime what its graph offers (every few seconds, sooner after an unknown name); when the graph
        changed, check the mapping against it and log each name it lacks."""
        describe = getattr(self.target, "describe", None)
        if describe is None or not self._describe_due(force):
            return
        try:
            graph = describe()
        except CadenzaError as exc:
            self._graph = None  # no graph yet, or the runtime away: values go out unchecked
            self._answered(exc)
            return
        self._answered(None)
        self._graph = graph
        signature = (graph.name, tuple(graph.parameters), tuple(graph.states), tuple(graph.triggers))
        if signature != self._signature:
            self._signature = signature
            problems = check_against(self.mapping, graph)
            for line in problems:
                logger.warning("%s", line)
            if not problems:
                logger.info("the mapping %s fits the graph %r (%d entries)", self.mapping.file, graph.name,
                            len(self.mapping.bindings))

    def flush(self) -> bool:
        """Send what arrived since the last flush; whether there was anything."""
        self.reporter.sweep()
        batch = self.coalescer.take()
        notes: list[int] | None = None
        with self._notes_lock:
            if self._notes_dirty:
                self._notes_dirty = False
                notes = sorted({n for (_, n) in self._held})
        if not batch and notes is None:
            return False
        self._add("periods")
        if batch.values:
            self._send_values(dict(batch.values))
        if notes is not None:
            try:
                if notes:
                    self.target.set_controls(notes=notes)
                else:
                    self.target.clear_controls("notes")  # nothing held: the graph decides again
                self._add("note_sets")
            except CadenzaError as exc:
                self.reporter.problem("notes_refused", "notes", f"notes {notes}: {_one_line(exc)}")
        for kind, name in batch.actions:
            where = f"{kind} {name}"
            if not self._action_allowed(where):
                continue
            try:
                self._act(kind, name)
            except CadenzaError as exc:
                self._describe_soon = True
                self.reporter.problem(str(getattr(exc, "code", "") or type(exc).__name__).lower(), where,
                                      f"{where}: {_one_line(exc)}")
        return True

    def _send_values(self, pending: dict[str, float | str]) -> None:
        for _ in range(8):  # a refused name is taken out and the rest sent again, a few times at most
            if not pending:
                return
            try:
                self.target.set_many(pending, clamp=True)
            except CadenzaError as exc:
                culprit = next((n for n in pending if f"'{n}'" in str(exc)), None)
                code = str(getattr(exc, "code", "") or type(exc).__name__).lower()
                if culprit is None:
                    self.reporter.problem(code, "parameters", f"parameters not sent ({len(pending)} values: "
                                          f"{', '.join(list(pending)[:4])}): {_one_line(exc)}", n=len(pending))
                    return
                pending.pop(culprit)
                self._describe_soon = True
                self.reporter.problem(code, f"parameter {culprit}", f"parameter {culprit}: {_one_line(exc)}; "
                                      "dropped")
                continue
            self._add("set_requests")
            self._add("values_sent", len(pending))
            return

    def _tick(self, now: float) -> float | None:
        # idle wake-ups (every period, for the log and the graph's description) do not count as sends, so a lone
        # message after one goes out at once
        sent_at = time.monotonic() if self.flush() else None
        self.describe()
        return sent_at


def _one_line(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, CadenzaError) and hasattr(exc, "message") else str(exc)
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- command line


@dataclass
class MidiConfig:
    mapping: str | None = None
    port: str | None = None  # number or name substring; None: the mapping's port, else the only one
    virtual: str | None = None  # open a virtual input port of this name instead
    api: str | None = None
    client_name: str = CLIENT_NAME
    control: str | None = None
    events: str | None = None
    period_ms: float = DEFAULT_PERIOD * 1000
    timeout: float = 2.0
    report_every: float = 60.0
    connect: list[str] = field(default_factory=list)  # JACK/ALSA ports to connect to our input (JACK only)


def run_bridge(config: MidiConfig, *, stop: threading.Event | None = None,
               extra: Callable[[Any, MidiBridge, Any, threading.Event], Callable[[], None] | None] | None = None) -> int:
    """Run the bridge until SIGINT/SIGTERM (or ``stop``); prints the counters at exit.

    ``extra(client, bridge, api, stop)`` (MIDI clock, :mod:`.clock`) runs once the port is open and may return a
    function to call at exit."""
    from cadenza.endpoints import endpoint_source
    from cadenza.runtime.midi.ports import choose_api, connect_jack, open_input, read_input
    from cadenza.sdk.client import Client

    if config.mapping is None:
        raise UsageError("give the mapping file (--map FILE), or learn one with --learn FILE", where="--map")
    mapping = load_mapping(config.mapping)
    control, control_from = (config.control, "--control") if config.control else endpoint_source("control")
    events = config.events or endpoint_source("events")[0]
    check_report_every(config.report_every)
    api = choose_api(config.api)
    client = Client(control, events, timeout=config.timeout, name="cadenza-midi")
    bridge = MidiBridge(client, mapping, period=config.period_ms / 1000.0, report_every=config.report_every)
    stop = stop or threading.Event()

    process = BridgeProcess(bridge, stop)
    process.install()
    port = None
    reader: threading.Thread | None = None
    at_exit: Callable[[], None] | None = None
    try:
        bridge.describe(force=True)
        bridge.release_notes()  # notes a killed bridge left held: its first flush gives the control back
        port = open_input(api, config.port if config.port is not None else mapping.port, virtual=config.virtual,
                          client_name=config.client_name)
        port_name = port.name
        reader = read_input(port, lambda data: bridge.receive(data, port_name), stop)
        if not port.virtual:
            watch_port(api, port, stop)  # "gone" / "back" lines
        if config.connect:
            connect_jack(api, config.connect, port.name)
        if extra is not None:
            at_exit = extra(client, bridge, api, stop)
        if not mapping.bindings:
            logger.warning("the mapping %s has no entries: nothing moves the runtime (add some, or --learn)",
                           mapping.file)
        print(f"cadenza midi: listening on {printable(port.name)} ({api.upper()}) with {len(mapping.bindings)} "
              f"mappings from "
              f"{mapping.file} -> control={control} (from {control_from}) (period {config.period_ms:g} ms)",
              flush=True)
        bridge.run(stop)
    finally:
        stop.set()
        if at_exit is not None:
            at_exit()
        if reader is not None:
            reader.join(1.0)
        if port is not None:
            port.close()
        bridge.release_notes()  # no note stays held in the runtime after the bridge
        process.finish(client)
        if port is not None:  # a port that did not open: the error line alone (no counters of a bridge never run)
            process.final_lines()
    return 0


def cmd_midi(args: argparse.Namespace) -> int:
    from cadenza.runtime.midi.ports import choose_api, list_ports

    if args.list:
        api = choose_api(args.api)
        ins, outs = list_ports(api), list_ports(api, output=True)
        print(f"MIDI input ports ({api.upper()}):")
        for i, p in enumerate(ins):
            print(f"  {i}: {printable(p)}")
        if not ins:
            print("  (none)")
        print(f"MIDI output ports ({api.upper()}):")
        for i, p in enumerate(outs):
            print(f"  {i}: {printable(p)}")
        if not outs:
            print("  (none)")
        return 0
    virtual = args.virtual
    if virtual is not None and args.port is not None:
        raise UsageError(f"give --port {args.port!r} (a port that exists) or --virtual (a port of our own), not both",
                         where="--virtual")
    if args.connect and virtual is None:
        raise UsageError("--connect ties other programs' ports to our own: it goes with --virtual", where="--connect")
    if args.learn:
        from cadenza.runtime.midi.learn import LearnConfig, run_learn

        return run_learn(LearnConfig(file=args.learn, parameter=args.learn_param, port=args.port, virtual=virtual,
                                     api=args.api, client_name=args.client_name, control=args.control,
                                     events=args.events, timeout=args.timeout, connect=args.connect or [],
                                     wait=args.learn_timeout))
    if args.learn_param:
        raise UsageError("--learn-param goes with --learn FILE", where="--learn-param")
    extra = getattr(args, "midi_extra", None)  # set by the clock's flags (runtime/midi/clock.py)
    if args.map is None and extra is not None:  # the clock alone: no mapping file, no input port
        from cadenza.runtime.midi.clock import run_clock_only

        return run_clock_only(args)
    return run_bridge(MidiConfig(mapping=args.map, port=args.port, virtual=virtual, api=args.api,
                                 client_name=args.client_name, control=args.control, events=args.events,
                                 period_ms=args.period, timeout=args.timeout, report_every=args.report_every,
                                 connect=args.connect or []), extra=extra)


def add_midi_command(sub: Any) -> argparse.ArgumentParser:
    """Add ``midi`` to the ``cadenza`` command's subparsers (``sub``); returns its parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "midi", help="bridge MIDI controllers and keyboards to a running runtime (MIDI learn, MIDI clock)",
        description="Drive a running `cadenza serve` from MIDI through a mapping file (--map): CCs (7- and "
                    "14-bit), pitch bend and aftertouch -> parameters, notes -> the notes control or triggers, "
                    "program change -> state. --learn writes the mapping: move a control, pick the parameter. "
                    "Needs the midi extra: pip install 'cadenza[midi]'.")
    p.add_argument("--list", action="store_true", help="list the MIDI input and output ports and exit")
    p.add_argument("--map", metavar="FILE", help="the mapping file (YAML): which message drives what")
    p.add_argument("--port", metavar="PORT", help="the input port: its number (--list) or part of its name "
                   "(default: the mapping's port:, else the only port there is)")
    p.add_argument("--virtual", nargs="?", const="in", metavar="NAME",
                   help="open a virtual input port of our own (default name 'in': cadenza-midi:in) for other "
                        "programs to connect to, instead of --port")
    p.add_argument("--connect", action="append", metavar="JACK_PORT",
                   help="with --virtual and --api jack: connect this JACK MIDI output to our port (repeatable)")
    p.add_argument("--api", choices=("jack", "alsa"), help="the MIDI system (default: JACK when a JACK server "
                   "runs, else ALSA)")
    p.add_argument("--client-name", default=CLIENT_NAME, metavar="NAME",
                   help=f"our JACK/ALSA client name (default {CLIENT_NAME})")
    p.add_argument("--learn", metavar="FILE", help="MIDI learn: move a control, pick the parameter; FILE (new "
                   "or existing) is written with the binding added")
    p.add_argument("--learn-param", metavar="NAME", help="with --learn: bind the next moved control to this "
                   "parameter (or trigger, or state) without asking, write the file and exit")
    p.add_argument("--learn-timeout", metavar="S", type=float, default=0.0,
                   help="with --learn: give up (exit status 1, the file unchanged) when nothing is learned within "
                        "S seconds (default 0: wait on; for scripts)")
    p.add_argument("--control", metavar="ENDPOINT", help="the runtime's control endpoint (default "
                   "$CADENZA_CONTROL, else tcp://127.0.0.1:5555)")
    p.add_argument("--events", metavar="ENDPOINT", help="the runtime's events endpoint (default $CADENZA_EVENTS, "
                   "else tcp://127.0.0.1:5556)")
    add_period_arguments(p, DEFAULT_PERIOD)
    # MIDI clock out/in (runtime/midi/clock.py): --clock-out/--clock-in set args.midi_extra (run_bridge's ``extra``)
    from cadenza.runtime.midi.clock import add_clock_arguments

    add_clock_arguments(p)
    p.set_defaults(func=cmd_midi)
    return p


def _main() -> int:  # python -m cadenza.runtime.midi.bridge (debugging)
    parser = argparse.ArgumentParser(prog="cadenza")
    add_midi_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(_main())
