"""``cadenza osc``: a bridge from OSC (TouchDesigner, Max, Pd, Arduino, phones) to a running runtime.

Address space (UDP, one OSC message or bundle per datagram, up to the UDP maximum of 65,507 bytes)::

    /cadenza/param/<name>   <float | int | bool | string>   set a parameter (a string sets a label)
    /cadenza/trigger/<name> [value]                         fire a trigger; a 0/false value does not
                                                            (a button's release), no value or non-zero does
    /cadenza/state          <label>                         request a state
    /cadenza/state/<label>                                  the same, for senders without strings

A bundle's timetag is honoured without blocking: a future one is held in a
schedule (a heap) and applied at that wall-clock time, a past or "immediately"
one at once; bundles nest at most :data:`MAX_DEPTH` deep.

Threads::

    receiver      one UDP socket: decode (:func:`decode_packet`, our own decoder, so python-osc never logs
                  or raises here) → check against the graph (:meth:`Client.describe`) →
                  :class:`~.bridge_process.Coalescer` or the schedule. Never sleeps and never does I/O besides
                  the socket.
    main thread   when something arrives, at most once per control period (10 ms): due scheduled messages →
                  the coalescer; take the batch →
                  one ``set_many`` for all the parameters that changed in the period (the latest value of
                  each), then at most :data:`~.bridge_process.ACTIONS_PER_PERIOD` triggers/state requests (and
                  :data:`~.bridge_process.ACTIONS_PER_SECOND`), through the SDK :class:`Client`

Sensors at 60–120 Hz on many addresses therefore cost the runtime at most one
``SetParameters`` per period. Through the SDK client the bridge reconnects to a
restarted runtime and re-sends the graph (``--graph``) and the last values.

Bad input never stops or stalls the bridge. Every problem — an undecodable
datagram, an unknown name, a NaN, a value clamped into the parameter's range, a
label the parameter lacks, too many triggers, a runtime that does not answer —
is counted by kind and reported as one log line with the address, the OSC type
tags and why, at most one line per (address, kind) every :data:`~.bridge_process.REPORT_WINDOW_S`
seconds ("… and N more like it" after), and at most a few lines a second in
all (:class:`~.bridge_process.Reporter`). Each value is checked when it arrives, so a bad one is
reported even if a later good one replaces it in the period's batch. Names the
graph lacks are refused locally (the graph is described again when the runtime
says a name is unknown, when unknown names arrive, and every few seconds), never
retried one request at a time. The counters (:meth:`BridgeStats.summary`,
:meth:`BridgeStats.problems_line`) are printed on stdout at exit and logged on
SIGUSR1 and every ``--report-every`` seconds. SIGTERM/SIGINT end the bridge
within a second whatever arrives (the period loop, the reporter and this lifecycle
are :mod:`cadenza.runtime.bridge_process`, shared with ``cadenza midi``).

The bridge listens on loopback unless ``--insecure`` allows another address:
OSC has no authentication, and anyone who can reach the port can drive the music.

The other direction, ``--send HOST:PORT`` (beats, bars, states, stingers,
level, parameter echoes, each sent when it is heard), is
:mod:`cadenza.runtime.osc_out`; this module only starts it beside the input.
"""

from __future__ import annotations

import argparse
import heapq
import ipaddress
import logging
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from cadenza.errors import CadenzaError, UsageError
from cadenza.runtime.bridge_process import (
    BridgeCounts,
    BridgeProcess,
    CoalescingBridge,
    add_period_arguments,
    check_report_every,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ADDRESS_PREFIX",
    "DEFAULT_LISTEN",
    "DEFAULT_PERIOD",
    "MAX_DATAGRAM",
    "MAX_DEPTH",
    "Bridge",
    "BridgeStats",
    "OscDecodeError",
    "Target",
    "add_osc_command",
    "check_listen",
    "decode_packet",
    "parse_listen",
    "run_bridge",
]

ADDRESS_PREFIX = "/cadenza/"
DEFAULT_LISTEN = "127.0.0.1:9000"
DEFAULT_PERIOD = 0.010  # seconds: one runtime control tick (control_rate 100)
MAX_DATAGRAM = 65_507  # the largest UDP payload over IPv4
MAX_DEPTH = 8  # bundles nested deeper are refused (counted as too_deep)
MAX_SCHEDULED = 10_000  # future-timetagged messages held at once
MAX_AHEAD_S = 3600.0  # a timetag further ahead than this is refused (a sender's clock is wrong)
_NTP_UNIX = 2_208_988_800  # seconds from 1900 (OSC/NTP) to 1970 (Unix)
_INDEX = re.compile(r"values\[(\d+)\]")


class Target(Protocol):
    """What the bridge drives: the SDK ``Client`` (tests may pass a recorder; ``describe`` is optional)."""

    def set_many(self, values: Mapping[str, float | str], *, clamp: bool = False) -> object: ...

    def trigger(self, name: str) -> object: ...

    def set_state(self, name: str) -> object: ...


# --------------------------------------------------------------------------- OSC decoding


class OscDecodeError(CadenzaError, ValueError):
    """A datagram that is not OSC 1.0; ``kind`` is ``malformed`` or ``too_deep``, ``address`` what was read of it."""

    def __init__(self, why: str, kind: str = "malformed", address: str = "") -> None:
        super().__init__(why)
        self.kind = kind
        self.address = address


@dataclass(frozen=True)
class OscMessage:
    address: str
    tags: str  # the type tags without the comma
    args: tuple[Any, ...]
    when: float | None  # Unix seconds of the enclosing bundle's timetag; None: immediately


def _string(data: bytes, pos: int, what: str) -> tuple[str, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise OscDecodeError(f"{what} has no terminating NUL")
    try:
        text = data[pos:end].decode("utf-8")
    except UnicodeDecodeError:
        raise OscDecodeError(f"{what} is not UTF-8 text") from None
    return text, (end + 4) & ~3


def _timetag(raw: int) -> float | None:
    if raw == 1:
        return None  # "immediately"
    return (raw >> 32) - _NTP_UNIX + (raw & 0xFFFFFFFF) / 2**32


def _message(data: bytes, when: float | None) -> OscMessage:
    address, pos = _string(data, 0, "the address")
    if not address.startswith("/"):
        raise OscDecodeError(f"the address {address[:40]!r} does not start with '/'", address=address[:60])
    if pos >= len(data):
        return OscMessage(address, "", (), when)  # old senders: no type tags, no arguments
    tags, pos = _string(data, pos, "the type tags")
    if not tags.startswith(","):
        raise OscDecodeError("the type tags do not start with ','", address=address)
    tags = tags[1:]
    args: list[Any] = []
    stack: list[list[Any]] = []
    out = args
    try:
        for tag in tags:
            if tag == "i":
                out.append(struct.unpack_from(">i", data, pos)[0])
                pos += 4
            elif tag == "f":
                out.append(struct.unpack_from(">f", data, pos)[0])
                pos += 4
            elif tag in "sS":
                text, pos = _string(data, pos, f"the {tag!r} argument")
                out.append(text)
            elif tag == "b":
                size = struct.unpack_from(">i", data, pos)[0]
                if size < 0 or pos + 4 + size > len(data):
                    raise OscDecodeError(f"a blob of {size} bytes does not fit the datagram", address=address)
                out.append(bytes(data[pos + 4:pos + 4 + size]))
                pos += 4 + ((size + 3) & ~3)
            elif tag == "h":
                out.append(struct.unpack_from(">q", data, pos)[0])
                pos += 8
            elif tag == "d":
                out.append(struct.unpack_from(">d", data, pos)[0])
                pos += 8
            elif tag == "t":
                out.append(_timetag(struct.unpack_from(">Q", data, pos)[0]))
                pos += 8
            elif tag == "c":
                out.append(chr(struct.unpack_from(">I", data, pos)[0] & 0x1FFFFF))
                pos += 4
            elif tag in "rm":
                out.append(bytes(data[pos:pos + 4]))
                pos += 4
            elif tag == "T":
                out.append(True)
            elif tag == "F":
                out.append(False)
            elif tag == "N":
                out.append(None)
            elif tag == "I":
                out.append(math.inf)  # "Infinitum": an impulse
            elif tag == "[":
                if len(stack) >= MAX_DEPTH:
                    raise OscDecodeError(f"arrays nested more than {MAX_DEPTH} deep", "too_deep", address)
                inner: list[Any] = []
                out.append(inner)
                stack.append(out)
                out = inner
            elif tag == "]":
                if not stack:
                    raise OscDecodeError("an array closes that never opened", address=address)
                out = stack.pop()
            else:
                raise OscDecodeError(f"unknown type tag {tag!r}", address=address)
    except struct.error:
        raise OscDecodeError(f"the arguments (type tags ,{tags[:20]}) run past the datagram's end",
                             address=address) from None
    if stack:
        raise OscDecodeError("an array never closes", address=address)
    return OscMessage(address, tags, tuple(args), when)


def decode_packet(data: bytes, when: float | None = None, depth: int = 0) -> list[OscMessage]:
    """Every message of one OSC datagram (a message, or a bundle of them), with its bundle's time.

    Raises :class:`OscDecodeError` for anything that is not OSC 1.0, and for
    bundles nested more than :data:`MAX_DEPTH` deep (no recursion error)."""
    if data[:8] != b"#bundle\0":
        if not data:
            raise OscDecodeError("an empty datagram")
        return [_message(data, when)]
    if depth >= MAX_DEPTH:
        raise OscDecodeError(f"bundles nested more than {MAX_DEPTH} deep", "too_deep", "#bundle")
    if len(data) < 16:
        raise OscDecodeError("a bundle shorter than its header", address="#bundle")
    inner_when = _timetag(struct.unpack_from(">Q", data, 8)[0])
    if inner_when is None:
        inner_when = when
    elif when is not None:
        inner_when = max(inner_when, when)  # OSC: an inner bundle is not due before its outer one
    out: list[OscMessage] = []
    pos = 16
    while pos < len(data):
        if pos + 4 > len(data):
            raise OscDecodeError("a bundle element's size is cut off", address="#bundle")
        size = struct.unpack_from(">i", data, pos)[0]
        if size <= 0 or size % 4 or pos + 4 + size > len(data):
            raise OscDecodeError(f"a bundle element of {size} bytes does not fit the datagram", address="#bundle")
        out.extend(decode_packet(data[pos + 4:pos + 4 + size], inner_when, depth + 1))
        pos += 4 + size
    return out


def _tags_of(args: tuple[Any, ...]) -> str:
    """OSC type tags for Python values (messages handed in without their tags)."""
    tags = []
    for a in args:
        if isinstance(a, bool):
            tags.append("T" if a else "F")
        elif isinstance(a, int):
            tags.append("i")
        elif isinstance(a, float):
            tags.append("f")
        elif isinstance(a, str):
            tags.append("s")
        elif isinstance(a, (bytes, bytearray)):
            tags.append("b")
        elif a is None:
            tags.append("N")
        else:
            tags.append("?")
    return "".join(tags)


# --------------------------------------------------------------------------- counting and reporting


@dataclass
class BridgeStats(BridgeCounts):
    """What the bridge did; :meth:`summary` and :meth:`problems_line` are the lines it prints at exit."""

    datagrams: int = 0  # UDP datagrams received
    scheduled: int = 0  # messages held for a future timetag
    command: ClassVar[str] = "osc"

    def problems_line(self) -> str:
        return (f"{self.datagrams} datagrams, {self.scheduled} scheduled by timetag; "
                f"problems by kind: {self.problem_kinds()}")


def _one_line(exc: BaseException) -> str:
    """The error on one line; a runtime's refusal without its field path (the OSC address says where)."""
    text = exc.message if isinstance(exc, CadenzaError) and hasattr(exc, "field") else str(exc)
    return " ".join(text.split())


def _names(names: Any, limit: int = 8) -> str:
    names = list(names)
    if not names:
        return "(none)"
    return ", ".join(names[:limit]) + (f" … ({len(names)} in all)" if len(names) > limit else "")


class Bridge(CoalescingBridge):
    """OSC datagrams → coalesced requests to ``target``. :meth:`receive` and :meth:`handle` are thread-safe;
    :meth:`flush`, :meth:`run_due` and :meth:`describe` belong to one sending thread.

    ``receive(datagram, sender)`` decodes and checks a datagram; ``handle(address, *args)`` takes one decoded
    message; ``flush()`` sends what arrived since the last flush; :meth:`run` does it every ``period`` seconds
    (with the due scheduled messages and a fresh graph description) until ``stop`` is set, and once more after.
    """

    def __init__(self, target: Target, *, period: float = DEFAULT_PERIOD,
                 log: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time,
                 report_every: float = 60.0) -> None:
        if not (isinstance(period, (int, float)) and math.isfinite(period) and 0.001 <= period <= 1.0):
            raise UsageError(f"must be between 0.001 and 1 s, got {period!r}", where="period")
        super().__init__(target, BridgeStats(), period=period, log=log, report_every=report_every, logger=logger)
        self.stats: BridgeStats
        self.clock = clock  # wall clock: timetags are wall-clock times
        self._unknown: set[str] = set()  # parameters the runtime called unknown (until described again)
        self._accepted: set[str] = set()  # parameters the runtime took
        self._schedule: list[tuple[float, int, OscMessage]] = []
        self._schedule_lock = threading.Lock()
        self._seq = 0

    # ----------------------------------------------------------------- receiving thread

    def receive(self, data: bytes, sender: str = "?") -> None:
        """One UDP datagram (a message or a bundle). Never raises, never blocks."""
        self._add("datagrams")
        try:
            messages = decode_packet(data)
        except OscDecodeError as exc:
            where = exc.address or f"datagram from {sender}"
            origin = f"{len(data)} bytes from {sender}" if exc.address else f"{len(data)} bytes"
            self.reporter.problem(exc.kind, where, f"{where}: not OSC, dropped ({origin}): {exc}")
            return
        except Exception as exc:  # noqa: BLE001 — a decoder slip must not stop the bridge
            self.reporter.problem("malformed", f"datagram from {sender}", f"datagram from {sender}: not OSC, "
                                  f"dropped ({len(data)} bytes): {type(exc).__name__}: {exc}")
            return
        now = self.clock()
        for m in messages:
            if m.when is not None and m.when > now + 0.0005:
                self._hold(m, now)
            else:
                self.handle_message(m.address, m.tags, m.args)

    def _hold(self, m: OscMessage, now: float) -> None:
        assert m.when is not None
        if m.when - now > MAX_AHEAD_S:
            self._add("messages")
            self.reporter.problem("timetag", m.address, f"{m.address}: its bundle's timetag is {m.when - now:.0f} s "
                                  f"ahead (more than {MAX_AHEAD_S:g} s: is the sender's clock set?); dropped")
            return
        with self._schedule_lock:
            full = len(self._schedule) >= MAX_SCHEDULED
            if not full:
                self._seq += 1
                heapq.heappush(self._schedule, (m.when, self._seq, m))
        if full:
            self._add("messages")
            self.reporter.problem("schedule_full", m.address, f"{m.address}: {MAX_SCHEDULED} messages already wait "
                                  "for their timetags; dropped")
        else:
            self._add("scheduled")

    def handle(self, address: str, *args: Any) -> None:
        """One decoded OSC message (python-osc's handler signature). Never raises."""
        self.handle_message(address, _tags_of(args), args)

    def handle_message(self, address: str, tags: str, args: tuple[Any, ...]) -> None:
        """One decoded OSC message with its type tags. Never raises."""
        self._add("messages")
        try:
            self._handle(address, tags, args)
        except Exception as exc:  # noqa: BLE001 — a sender's garbage must not stop the bridge
            self.reporter.problem("internal", address, f"{address}: dropped ({type(exc).__name__}: {exc})")

    def _bad(self, kind: str, address: str, tags: str, why: str) -> None:
        types = f"types ,{tags}" if tags else "no arguments"
        self.reporter.problem(kind, address, f"{address}: {why} ({types})")

    def _handle(self, address: str, tags: str, args: tuple[Any, ...]) -> None:
        if not address.startswith(ADDRESS_PREFIX):
            self._bad("not_cadenza", address, tags, "not a Cadenza address; use /cadenza/param/<name>, "
                      "/cadenza/trigger/<name> or /cadenza/state <label>")
            return
        kind, _, name = address[len(ADDRESS_PREFIX):].partition("/")
        graph = self._graph
        if kind == "param":
            self._param(address, name, tags, args)
        elif kind == "trigger":
            if not name or "/" in name:
                self._bad("bad_address", address, tags, "give the trigger's name: /cadenza/trigger/<name>")
                return
            if args and _is_release(args[0]):
                return  # a button's release (0 / false): only the press fires
            if graph is not None and name not in graph.triggers:
                self._describe_soon = True
                self._bad("unknown_trigger", address, tags, f"the graph has no trigger {name!r}; its triggers: "
                          f"{_names(graph.triggers)}")
                return
            self._action("trigger", name, address, tags)
        elif kind == "state":
            label, where = name, address
            if not label:
                if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
                    self._bad("bad_args", address, tags, f"give the state as one string argument "
                              f"(got {_describe(args)}) or in the address: /cadenza/state/<label>")
                    return
                label, where = args[0], f"{address} {args[0]}"
            if graph is not None and label not in graph.states:
                self._describe_soon = True
                self._bad("unknown_state", where, tags, f"the graph has no state {label!r}; its states: "
                          f"{_names(graph.states)}")
                return
            self._action("state", label, where, tags)
        else:
            self._bad("bad_address", address, tags, f"unknown address kind {kind!r}; "
                      "use /cadenza/param/<name>, /cadenza/trigger/<name> or /cadenza/state")

    def _action(self, kind: str, name: str, where: str, tags: str) -> None:
        if self.coalescer.put_action(kind, name):
            self.wake.set()
        else:
            self._bad("too_many_actions", where, tags, f"more than {self.coalescer.max_actions} triggers and state "
                      f"requests in one {self.period * 1000:g} ms period; dropped")

    def _param(self, address: str, name: str, tags: str, args: tuple[Any, ...]) -> None:
        if not name or "/" in name:
            self._bad("bad_address", address, tags, "give the parameter's name: /cadenza/param/<name>")
            return
        graph = self._graph
        info = None
        if graph is not None:
            info = graph.parameters.get(name)
            if info is None:
                self._describe_soon = True
                self._bad("unknown_name", address, tags, f"the graph has no parameter {name!r}; its parameters: "
                          f"{_names(graph.parameters)}; dropped")
                return
        elif name in self._unknown:
            self._bad("unknown_name", address, tags, f"the runtime has no parameter {name!r}; dropped")
            return
        if len(args) != 1:
            self._bad("bad_args", address, tags, f"expected one value (float, int, bool or label), "
                      f"got {_describe(args)}")
            return
        value = args[0]
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        if isinstance(value, (int, float)):
            number = float(value)
            if not math.isfinite(number):
                self._bad("not_finite", address, tags, f"parameter {name!r} got {number!r}; values must be finite "
                          "numbers; dropped")
                return
            lo, hi = (info.minimum, info.maximum) if info is not None else (math.nan, math.nan)
            if (info is not None and info.kind != "labeled" and math.isfinite(lo) and math.isfinite(hi) and lo <= hi
                    and not lo <= number <= hi):
                clamped = min(max(number, lo), hi)
                self.reporter.problem("clamped", address, f"{address}: {number:g} is outside the range [{lo:g}, "
                                      f"{hi:g}] of parameter {name!r}; clamped to {clamped:g} (types ,{tags})",
                                      refused=False)
                number = clamped
            self.coalescer.put_value(name, number)
            self.wake.set()
        elif isinstance(value, str):
            if info is not None and info.kind in ("continuous", "discrete"):
                self._bad("bad_value", address, tags, f"parameter {name!r} takes a number in [{info.minimum:g}, "
                          f"{info.maximum:g}], got the label {value[:40]!r}; dropped")
                return
            if info is not None and info.kind == "labeled" and info.labels and value not in info.labels:
                self._bad("bad_value", address, tags, f"parameter {name!r} has no label {value!r}; its labels: "
                          f"{_names(info.labels)}; dropped")
                return
            self.coalescer.put_value(name, value)
            self.wake.set()
        else:
            self._bad("bad_args", address, tags, f"parameter {name!r} takes a number or a label, "
                      f"got {_describe(args)}")
            return
        self._add("parameter_updates")

    # ----------------------------------------------------------------- sending thread

    def run_due(self) -> int:
        """Hand the scheduled messages whose time has come to the coalescer; how many."""
        now = self.clock()
        due: list[OscMessage] = []
        with self._schedule_lock:
            while self._schedule and self._schedule[0][0] <= now:
                due.append(heapq.heappop(self._schedule)[2])
        for m in due:
            self.handle_message(m.address, m.tags, m.args)
            self._add("messages", -1)  # counted when it arrived
        return len(due)

    def describe(self, force: bool = False) -> None:
        """Ask the runtime what its graph offers (every few seconds, sooner after an unknown name)."""
        describe = getattr(self.target, "describe", None)
        if describe is None or not self._describe_due(force):
            return
        try:
            self._graph = describe()
            self._unknown.clear()
        except CadenzaError as exc:  # no graph yet, or the runtime away: check names by its answers meanwhile
            self._graph = None
            self._answered(exc)
        else:
            self._answered(None)

    def flush(self) -> None:
        """Send what arrived since the last flush: one ``set_many``, then (bounded) triggers and states."""
        self.reporter.sweep()
        batch = self.coalescer.take()
        if not batch:
            return
        self._add("periods")
        if batch.values:
            self._send_values(batch.values)
        for kind, name in batch.actions:
            address = f"/cadenza/trigger/{name}" if kind == "trigger" else f"/cadenza/state {name}"
            if not self._action_allowed(address):
                continue
            self._send_action(kind, name, address)

    def _send_values(self, values: dict[str, float | str]) -> None:
        pending = {name: value for name, value in values.items() if name not in self._unknown}
        for _ in range(8):  # a refused name is taken out and the rest sent again, a few times at most
            if not pending:
                return
            try:
                ack = self.target.set_many(pending, clamp=True)  # sensors overshoot: clamp, don't refuse
            except CadenzaError as exc:
                code = str(getattr(exc, "code", "") or type(exc).__name__)
                culprit = _culprit(exc, pending)
                if culprit is None:  # the whole request failed: runtime away, no graph …
                    self.reporter.problem(code.lower(), "parameters", f"parameters not sent ({len(pending)} "
                                          f"values: {_names(pending, 4)}): {_one_line(exc)}", n=len(pending))
                    return
                pending.pop(culprit)
                address = f"/cadenza/param/{culprit}"
                if code == "UNKNOWN_NAME":
                    self._unknown.add(culprit)
                    self._describe_soon = True
                    self.reporter.problem("unknown_name", address, f"{address}: {_one_line(exc)}; dropped")
                else:
                    self.reporter.problem(code.lower(), address, f"{address}: {_one_line(exc)}; dropped")
                continue
            self._add("set_requests")
            self._add("values_sent", len(pending))
            if len(self._accepted) < 4096:
                self._accepted.update(pending)
            for warning in getattr(ack, "warnings", ()) or ():
                words = str(warning).split()
                name = words[1] if len(words) > 1 else "?"
                self.reporter.problem("adjusted", f"/cadenza/param/{name}", f"/cadenza/param/{name}: the runtime "
                                      f"says: {warning}", refused=False)
            return
        # without the graph's description (an older runtime): the names it took before still go through
        known = {name: value for name, value in pending.items() if name in self._accepted}
        dropped = {name: value for name, value in pending.items() if name not in known}
        self.reporter.problem("refused_many", "parameters", f"parameters not sent ({len(dropped)} values: "
                              f"{_names(dropped, 4)}): the runtime refused too many in one period", n=len(dropped))
        if known:
            try:
                self.target.set_many(known, clamp=True)
                self._add("set_requests")
                self._add("values_sent", len(known))
            except CadenzaError as exc:
                self.reporter.problem("refused_many", "parameters", f"parameters not sent ({len(known)} values: "
                                      f"{_names(known, 4)}): {_one_line(exc)}", n=len(known))

    def _send_action(self, kind: str, name: str, address: str) -> None:
        try:
            self._act(kind, name)
        except CadenzaError as exc:
            code = str(getattr(exc, "code", "") or type(exc).__name__)
            if code == "UNKNOWN_NAME":
                self._describe_soon = True
                code = f"unknown_{kind}"
            self.reporter.problem(code.lower(), address, f"{address}: {_one_line(exc)}")

    def _tick(self, now: float) -> float | None:
        # every wake-up counts as a send: the next one waits a period after it
        self.run_due()
        self.describe()
        self.flush()
        return now

    def _drain(self) -> None:
        self.run_due()
        self.flush()


def _is_release(value: Any) -> bool:
    return (isinstance(value, (bool, int, float)) and not isinstance(value, str) and float(value) == 0.0)


def _describe(args: tuple[Any, ...]) -> str:
    if not args:
        return "no value"
    return ", ".join(f"{type(a).__name__} {a!r}"[:60] for a in args[:4]) + (" …" if len(args) > 4 else "")


def _culprit(exc: CadenzaError, pending: Mapping[str, object]) -> str | None:
    """The parameter an error names (by its ``values[i]`` field path, else its quoted name), if any."""
    names = list(pending)
    fld = str(getattr(exc, "field", "") or exc.where or "")
    m = _INDEX.search(fld)
    if m is not None and int(m.group(1)) < len(names):
        return names[int(m.group(1))]
    text = str(exc)
    for name in names:
        if f"'{name}'" in text or f"parameters.{name}" in text:
            return name
    return None


# --------------------------------------------------------------------------- command line


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9000"`` (or ``"[::1]:9000"``, or ``":9000"`` for loopback) → ``(host, port)``."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        raise UsageError(f"expected HOST:PORT, got {text!r}", where="--listen")
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"port must be a number, got {port_text!r} in {text!r}", where="--listen") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"port must be 0-65535, got {port}", where="--listen")
    return host, port


def check_listen(host: str, insecure: bool) -> None:
    """Refuse an address other machines can reach unless ``insecure``."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False  # a hostname or interface: reachable from outside
    if not loopback and not insecure:
        raise UsageError(f"{host!r} is reachable from other machines and OSC has no authentication; "
                         "give --insecure to listen there anyway (or listen on 127.0.0.1)", where="--listen")


@dataclass
class OscConfig:
    listen: str = DEFAULT_LISTEN
    control: str | None = None  # None: $CADENZA_CONTROL, else the runtime's default (cadenza.endpoints)
    events: str | None = None  # None: $CADENZA_EVENTS, else the runtime's default
    graph: str | None = None
    insecure: bool = False
    period_ms: float = DEFAULT_PERIOD * 1000
    timeout: float = 2.0
    report_every: float = 60.0  # seconds between counter lines in the log; 0: only at exit and on SIGUSR1
    send: list[str] = field(default_factory=list)  # OSC out: HOST:PORT targets (cadenza.runtime.osc_out)
    echo_params: bool = False
    level_hz: float = 10.0
    audio: str | None = None  # the runtime's int16 audio endpoint (for /cadenza/level); None: the default


def _receive(sock: socket.socket, bridge: Bridge, stop: threading.Event) -> None:
    """The receiver thread: datagrams up to the UDP maximum → :meth:`Bridge.receive`, until ``stop``."""
    while not stop.is_set():
        try:
            data, sender = sock.recvfrom(65_535)
        except (socket.timeout, BlockingIOError, InterruptedError):
            continue
        except OSError:
            if stop.is_set():
                return
            time.sleep(0.01)  # e.g. an ICMP error surfacing on the socket: go on
            continue
        bridge.receive(data, f"{sender[0]}:{sender[1]}")


class _RootToBridge(logging.Handler):
    """Library records logged on the root logger (python-osc's ``logging.warning("Unhandled parameter type")``)
    → the bridge's logger, so they read like every other line (``cadenza osc: …``), not ``WARNING:root:…``."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "root":
            logger.log(record.levelno, "%s", record.getMessage())


def run_bridge(config: OscConfig, *, ready: Callable[[str], None] | None = None,
               stop: threading.Event | None = None) -> int:
    """Run the bridge until SIGINT/SIGTERM (or ``stop``); prints the counters at exit."""
    from cadenza.endpoints import endpoint_source
    from cadenza.sdk.client import Client

    control, control_from = (config.control, "--control") if config.control else endpoint_source("control")
    events = config.events or endpoint_source("events")[0]
    host, port = parse_listen(config.listen)
    check_listen(host, config.insecure)
    from cadenza.runtime.osc_out import OscOut, parse_send

    targets = [parse_send(t, config.insecure) for t in config.send]
    audio = config.audio or endpoint_source("audio_int16")[0]
    if not (1.0 <= config.period_ms <= 1000.0):
        raise UsageError(f"must be between 1 and 1000 ms, got {config.period_ms!r}", where="--period")
    check_report_every(config.report_every)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        sock = socket.socket(infos[0][0], socket.SOCK_DGRAM)
        sock.bind(infos[0][4])
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", where="--listen") from exc
    # a burst of sensor messages must not overflow the socket while the receiver is busy
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError:
        pass
    sock.settimeout(0.1)  # the receiver looks at ``stop`` this often
    client = Client(control, events, timeout=config.timeout, name="cadenza-osc")
    bridge = Bridge(client, period=config.period_ms / 1000.0, report_every=config.report_every)
    out = OscOut(client, targets, echo_params=config.echo_params, level_hz=config.level_hz,
                 audio_endpoint=audio) if targets else None
    stop = stop or threading.Event()
    root = logging.getLogger()
    if not root.handlers:  # else someone (an embedding program) routes them already
        root.addHandler(_RootToBridge())

    process = BridgeProcess(bridge, stop, lambda: [out.stats.summary()] if out is not None else [])
    process.install()
    receiver = threading.Thread(target=_receive, args=(sock, bridge, stop), name="cadenza-osc-udp", daemon=True)
    try:
        if config.graph:
            try:
                client.load_graph(config.graph)
            except CadenzaError as exc:
                raise UsageError(_one_line(exc), where="--graph") from exc
        bound = sock.getsockname()
        bound_host, bound_port = str(bound[0]), int(bound[1])
        bridge.describe(force=True)
        receiver.start()
        if out is not None:
            out.start()
        line = (f"cadenza osc: listening on {bound_host}:{bound_port} -> control={control} (from {control_from}) "
                f"(period {config.period_ms:g} ms)")
        if out is not None:
            line += f"; sending to {', '.join(f'{h}:{p}' for h, p in targets)}"
        print(line, flush=True)
        if ready is not None:
            ready(f"{bound_host}:{bound_port}")
        bridge.run(stop)
    finally:
        stop.set()
        if out is not None:
            out.close()
        if receiver.is_alive():
            receiver.join(1.0)
        sock.close()
        process.finish(client)
        process.final_lines()
    return 0


def cmd_osc(args: argparse.Namespace) -> int:
    return run_bridge(OscConfig(listen=args.listen, control=args.control, events=args.events, graph=args.graph,
                                insecure=args.insecure, period_ms=args.period, timeout=args.timeout,
                                report_every=args.report_every, send=list(args.send or []),
                                echo_params=args.echo_params, level_hz=args.level_hz, audio=args.audio_int16))


def add_osc_command(sub: Any) -> argparse.ArgumentParser:
    """Add ``osc`` to the ``cadenza`` command's subparsers (``sub``); returns its parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "osc", help="bridge OSC messages (TouchDesigner, Max, Pd, Arduino) to a running runtime",
        description="Listen for OSC on UDP and drive a running `cadenza serve`: /cadenza/param/<name> VALUE, "
                    "/cadenza/trigger/<name>, /cadenza/state LABEL. Parameter updates within one control "
                    "period are sent as one SetParameters; bundles wait for their timetags. Problems are logged, "
                    "rate-limited; the counters at exit and on SIGUSR1. Listens on loopback unless --insecure. "
                    "With --send HOST:PORT it also sends /cadenza/beat, /bar, /state, /stinger and /level there, "
                    "each when its audio is heard.")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"UDP address to listen on (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    p.add_argument("--control", metavar="ENDPOINT", help="the runtime's control endpoint (default "
                   "$CADENZA_CONTROL, else tcp://127.0.0.1:5555, as for cadenza ctl and the SDK)")
    p.add_argument("--events", metavar="ENDPOINT", help="the runtime's events endpoint (default $CADENZA_EVENTS, "
                   "else tcp://127.0.0.1:5556)")
    p.add_argument("--graph", metavar="FILE", help="load this style graph into the runtime at start "
                   "(and again if the runtime restarts)")
    add_period_arguments(p, DEFAULT_PERIOD)
    p.add_argument("--send", action="append", metavar="HOST:PORT",
                   help="OSC out (repeatable): send /cadenza/beat, /bar, /state, /stinger, /level to this address, "
                        "each when it is heard (loopback unless --insecure)")
    p.add_argument("--echo-params", action="store_true",
                   help="OSC out: also send /cadenza/param/<name> VALUE for every parameter (once a second)")
    p.add_argument("--level-hz", type=float, default=10.0, metavar="HZ",
                   help="OSC out: /cadenza/level messages a second (default 10; 0: off)")
    p.add_argument("--audio-int16", metavar="ENDPOINT", help="OSC out: the runtime's int16 audio endpoint the "
                   "level is measured from (default $CADENZA_AUDIO_INT16, else tcp://127.0.0.1:5558)")
    p.add_argument("--insecure", action="store_true",
                   help="allow listening on a non-loopback address, and --send to another machine")
    p.set_defaults(func=cmd_osc)
    return p
