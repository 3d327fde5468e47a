"""What every input bridge process (``cadenza osc``, ``cadenza midi``) shares: coalescing, rate-limited problem
lines, the control-period loop, and the process lifecycle.

A bridge turns a stream of small inputs (OSC datagrams, MIDI events) into few requests to a running runtime::

    receiving thread   decode, check → :class:`Coalescer` (the latest value per parameter, a few actions a
                       period), set :attr:`CoalescingBridge.wake`; problems → :class:`Reporter`
    main thread        :meth:`CoalescingBridge.run`: at most one send a control period (:meth:`~CoalescingBridge.
                       _tick`, the bridge's own work), the graph described again every :data:`DESCRIBE_EVERY_S`
                       (sooner after an unknown name), the counters logged on SIGUSR1 and every ``report_every`` s

:class:`BridgeProcess` owns the lifecycle of the command: SIGTERM/SIGINT set ``stop`` and start a watchdog that,
when the bridge has not finished within :data:`EXIT_GRACE_S` (a runtime that does not answer), prints the final
lines itself and ends the process (status 0); SIGUSR1 asks for the counters in the log. What each bridge counts,
decodes and sends stays in its own module (:mod:`cadenza.runtime.osc`, :mod:`cadenza.runtime.midi.bridge`).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from cadenza.errors import UsageError

logger = logging.getLogger(__name__)

__all__ = [
    "ACTIONS_PER_PERIOD",
    "ACTIONS_PER_SECOND",
    "DESCRIBE_EVERY_S",
    "DESCRIBE_SOON_S",
    "EXIT_GRACE_S",
    "LINES_BURST",
    "LINES_PER_SECOND",
    "REPORT_WINDOW_S",
    "Batch",
    "BridgeCounts",
    "BridgeProcess",
    "Coalescer",
    "CoalescingBridge",
    "ProblemCounts",
    "Reporter",
    "add_period_arguments",
    "check_report_every",
    "note_runtime",
]

ACTIONS_PER_PERIOD = 4  # triggers and state requests sent per control period …
ACTIONS_PER_SECOND = 40.0  # … and per second (each is one request to the runtime)
REPORT_WINDOW_S = 5.0  # at most one line per (address, kind) in this many seconds
LINES_BURST = 20  # at most this many problem lines at once …
LINES_PER_SECOND = 2.0  # … refilled at this rate
DESCRIBE_EVERY_S = 5.0  # the graph is described again this often (another client may load a new one)
DESCRIBE_SOON_S = 1.0  # … or this soon after a name the graph lacks
EXIT_GRACE_S = 0.8  # after SIGTERM/SIGINT: the watchdog ends the process if the bridge has not finished by then


# --------------------------------------------------------------------------- counting and reporting


class ProblemCounts(Protocol):
    """What :class:`Reporter` counts into: a bridge's stats (a :class:`BridgeCounts`), or a test's."""

    refused: int
    problems: dict[str, int]


@dataclass
class BridgeCounts:
    """The counters every bridge keeps; a bridge's stats add their own and write the exit lines
    (``summary()``, ``problems_line()``)."""

    messages: int = 0  # inputs received (OSC messages, bundles counting each; MIDI events)
    parameter_updates: int = 0  # accepted inputs that set a parameter
    set_requests: int = 0  # SetParameters sent (each carries one period's coalesced updates)
    values_sent: int = 0  # parameter values in those requests
    triggers: int = 0
    states: int = 0
    refused: int = 0  # inputs or values dropped: malformed, unknown, bad, runtime away, over the bounds
    periods: int = 0  # control periods with something to send
    problems: dict[str, int] = field(default_factory=dict)  # kind → how many (clamped values included)
    command: ClassVar[str] = "bridge"  # the command's name in the exit lines ("osc", "midi")

    def problem_kinds(self) -> str:
        """``"kind n, kind n"`` sorted by kind, or ``"none"``."""
        return ", ".join(f"{k} {n}" for k, n in sorted(self.problems.items())) or "none"

    def summary(self) -> str:
        """The first exit line: ``"cadenza COMMAND: N messages, … refused"`` (``COMMAND``: :attr:`command`)."""
        return (f"cadenza {self.command}: {self.messages} messages, {self.parameter_updates} parameter updates -> "
                f"{self.set_requests} SetParameters ({self.values_sent} values), {self.triggers} triggers, "
                f"{self.states} states, {self.more_sent()}{self.refused} refused")

    def more_sent(self) -> str:
        """What else the bridge sent, for :meth:`summary` (``"N note sets, "``); nothing by default."""
        return ""

    def problems_line(self) -> str:
        """The second exit line, after ``"cadenza COMMAND: "``: the bridge's own counters, the problems by kind."""
        raise NotImplementedError


class Reporter:
    """Problem lines, rate-limited: one per (address, kind) per ``window`` seconds, then "… and N more like it";
    and at most ``burst`` lines at once, ``per_second`` after, in all. Thread-safe; counts every problem."""

    MAX_KEYS = 4096

    def __init__(self, log: Callable[[str], None], stats: ProblemCounts, lock: threading.Lock, *,
                 window: float = REPORT_WINDOW_S, burst: int = LINES_BURST, per_second: float = LINES_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.stats = stats
        self.lock = lock  # the stats' lock
        self.window = window
        self.burst = float(burst)
        self.per_second = per_second
        self.clock = clock
        self._tokens = float(burst)
        self._filled = clock()
        self._keys: dict[tuple[str, str], list[float]] = {}  # key → [last line's time, suppressed since]
        self._unshown = 0  # lines the overall budget held back
        self._last_sweep = 0.0

    def _spend(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._filled) * self.per_second)
        self._filled = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def problem(self, kind: str, address: str, message: str, *, refused: bool = True, n: int = 1) -> None:
        """Count ``n`` problems of ``kind`` at ``address``; log ``message`` unless the limits hold it back."""
        lines: list[str] = []
        with self.lock:
            self.stats.problems[kind] = self.stats.problems.get(kind, 0) + n
            if refused:
                self.stats.refused += n
            now = self.clock()
            key = (address[:200], kind)
            entry = self._keys.get(key)
            if entry is not None and now - entry[0] < self.window:
                entry[1] += 1
            elif entry is None and len(self._keys) >= self.MAX_KEYS:
                self._unshown += 1
            elif self._spend(now):
                more = int(entry[1]) if entry is not None else 0
                self._keys[key] = [now, 0]
                lines.append(message + (f" (and {more} more like it before)" if more else ""))
            elif entry is None:
                self._keys[key] = [now, 1]  # no line now: counted, told later ("… and N more like it")
            else:
                entry[1] += 1
        for line in lines:
            self.log(line)

    def sweep(self, force: bool = False) -> None:
        """Log the "N more like it" of windows that have closed; forget quiet keys. Cheap; call it often."""
        lines: list[str] = []
        with self.lock:
            now = self.clock()
            if not force and now - self._last_sweep < 1.0:
                return
            self._last_sweep = now
            budget = 10  # at exit: this many "… and N more like it" lines, the rest in one line
            for key, entry in list(self._keys.items()):
                if not force and now - entry[0] < self.window:
                    continue
                if not entry[1]:
                    del self._keys[key]
                    continue
                if (budget > 0) if force else self._spend(now):
                    budget -= 1
                    lines.append(f"{key[0]}: … and {int(entry[1])} more like it ({key[1]}) since its last line")
                else:
                    self._unshown += int(entry[1])
                entry[0], entry[1] = now, 0
            if self._unshown and (force or self._spend(now)):
                lines.append(f"… and {self._unshown} more problems not shown (too many to print; counts by kind "
                             "at exit, on SIGUSR1 and every --report-every seconds)")
                self._unshown = 0
        for line in lines:
            self.log(line)


@dataclass
class Batch:
    """One control period's work: the latest value per parameter, then actions in arrival order."""

    values: dict[str, float | str] = field(default_factory=dict)
    actions: list[tuple[str, str]] = field(default_factory=list)  # ("trigger" | "state", name)

    def __bool__(self) -> bool:
        return bool(self.values or self.actions)


class Coalescer:
    """Thread-safe: the receiver puts, the sending thread takes a whole period at once."""

    def __init__(self, max_actions: int = ACTIONS_PER_PERIOD) -> None:
        self._lock = threading.Lock()
        self._batch = Batch()
        self.max_actions = max_actions

    def put_value(self, name: str, value: float | str) -> None:
        with self._lock:
            self._batch.values.pop(name, None)  # re-insert: the order follows the latest update
            self._batch.values[name] = value

    def put_action(self, kind: str, name: str) -> bool:
        """Queue a trigger/state request; False (not queued) when the period already has ``max_actions``."""
        with self._lock:
            if len(self._batch.actions) >= self.max_actions:
                return False
            self._batch.actions.append((kind, name))
            return True

    def take(self) -> Batch:
        with self._lock:
            batch, self._batch = self._batch, Batch()
        return batch


def note_runtime(away: bool | None, exc: BaseException | None, log: logging.Logger = logger) -> bool:
    """One line on ``log`` when the runtime stops answering (or never did, at start) and one when it answers again;
    returns whether it is away now. ``exc``: the DescribeGraph's error (None: it answered)."""
    from cadenza.sdk.errors import RequestTimeout, TransportError

    now_away = isinstance(exc, (RequestTimeout, TransportError))
    if now_away and away is not True:
        log.warning("the runtime does not answer (%s); going on: requests go out when it is back", exc)
    elif not now_away and away:
        log.info("the runtime answers again")
    return now_away


# --------------------------------------------------------------------------- the sending thread


class CoalescingBridge:
    """The part of a bridge that is the same for every input: counters under one lock, the rate-limited
    :attr:`reporter`, the :attr:`coalescer`, the actions' token bucket, when to describe the graph again, and
    :meth:`run`, the control-period loop. A bridge subclasses it and gives :meth:`_tick` (one period's work)."""

    def __init__(self, target: Any, stats: BridgeCounts, *, period: float, log: Callable[[str], None] | None,
                 report_every: float, logger: logging.Logger) -> None:
        self.target = target
        self.period = float(period)
        self.stats = stats  # summary() and problems_line() are the lines printed at exit
        self.logger = logger  # the bridge module's logger: its lines, the counters, the runtime away/back
        self.log = log or logger.warning  # a problem with what arrives (rate-limited by the reporter)
        self._count_lock = threading.Lock()
        self.reporter = Reporter(self.log, self.stats, self._count_lock)
        self.coalescer = Coalescer(ACTIONS_PER_PERIOD)
        self.report_every = report_every
        self.report_now = threading.Event()  # set by SIGUSR1: log the counters at the next period
        self.wake = threading.Event()  # set when the coalescer has something: the sending thread need not wait
        self._graph: Any = None  # the runtime's GraphInfo (Client.describe), when known
        self._described_at = -math.inf
        self._away: bool | None = None  # the runtime did not answer the last DescribeGraph (None: not asked yet)
        self._describe_soon = False
        self._action_tokens = ACTIONS_PER_SECOND
        self._action_filled = time.monotonic()

    def _add(self, counter: str, n: int = 1) -> None:
        with self._count_lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + n)

    def _action_token(self) -> bool:
        """One trigger/state request may go out now (at most :data:`ACTIONS_PER_SECOND`)."""
        now = time.monotonic()
        self._action_tokens = min(ACTIONS_PER_SECOND, self._action_tokens + (now - self._action_filled)
                                  * ACTIONS_PER_SECOND)
        self._action_filled = now
        if self._action_tokens >= 1.0:
            self._action_tokens -= 1.0
            return True
        return False

    def _action_allowed(self, where: str) -> bool:
        """Whether a trigger/state request may go out now; if not, a ``too_many_actions`` problem at ``where``."""
        if self._action_token():
            return True
        self.reporter.problem("too_many_actions", where, f"{where}: more than {ACTIONS_PER_SECOND:g} "
                              "triggers and state requests a second; dropped")
        return False

    def _act(self, kind: str, name: str) -> None:
        """Send one trigger (``kind`` ``"trigger"``) or state request and count it; a refusal raises
        :class:`~cadenza.errors.CadenzaError` (the bridge reports it in its own words)."""
        if kind == "trigger":
            self.target.trigger(name)
            self._add("triggers")
        else:
            self.target.set_state(name)
            self._add("states")

    def _describe_due(self, force: bool) -> bool:
        """Whether to describe the graph now (every few seconds, sooner after an unknown name); if so, from now."""
        now = time.monotonic()
        since = now - self._described_at
        if not (force or since >= DESCRIBE_EVERY_S or (self._describe_soon and since >= DESCRIBE_SOON_S)):
            return False
        self._described_at = now
        self._describe_soon = False
        return True

    def _answered(self, exc: BaseException | None) -> None:
        """Note the DescribeGraph's outcome: a line when the runtime goes away or comes back."""
        self._away = note_runtime(self._away, exc, self.logger)

    def flush(self) -> object:
        raise NotImplementedError

    def _tick(self, now: float) -> float | None:
        """One period's work (``now``: when it started, ``time.monotonic()``); the time that counts as the last
        send (the next send waits until a period after it), or None when nothing counts as one."""
        raise NotImplementedError

    def _drain(self) -> None:
        """After ``stop``: send what is left."""
        self.flush()

    def report(self) -> str:
        """The counters, for the log (SIGUSR1, every ``report_every`` s): the exit lines without the command."""
        with self._count_lock:
            return f"{self.stats.summary().partition(': ')[2]}; {self.stats.problems_line()}"

    def run(self, stop: threading.Event) -> None:
        """Do :meth:`_tick` when something arrives, at most once per period, until ``stop``; then drain.

        Wake when something arrives (or each period, for the log and the graph's description); send at once if
        the last send is a period ago, else at the period's end: at most one send a period (a flood is one
        request a period), no added wait for a lone message."""
        last = -math.inf
        next_report = time.monotonic() + self.report_every if self.report_every > 0 else math.inf
        while not stop.is_set():
            self.wake.wait(self.period)
            self.wake.clear()
            delay = last + self.period - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            sent_at = self._tick(time.monotonic())
            if sent_at is not None:
                last = sent_at
            now = time.monotonic()
            if self.report_now.is_set() or now >= next_report:
                self.report_now.clear()
                next_report = now + self.report_every if self.report_every > 0 else math.inf
                self.logger.info(self.report())
        self._drain()
        self.reporter.sweep(force=True)


# --------------------------------------------------------------------------- the command line


def add_period_arguments(p: argparse.ArgumentParser, default_period: float) -> None:
    """``--period``, ``--timeout`` and ``--report-every``, the same for every bridge command."""
    p.add_argument("--period", type=float, default=default_period * 1000, metavar="MS",
                   help="coalescing period: updates within it go out as one request (default 10 ms)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds to wait for each reply")
    p.add_argument("--report-every", type=float, default=60.0, metavar="S",
                   help="log the counters (messages, problems by kind) this often (default 60 s; 0: only at exit "
                        "and on SIGUSR1)")


def check_report_every(seconds: float) -> None:
    """``--report-every`` is 0 (never) or 1 s to a day."""
    if not (seconds == 0 or 1.0 <= seconds <= 86_400):
        raise UsageError(f"must be 0 (never) or 1 to 86400 s, got {seconds!r}", where="--report-every")


# --------------------------------------------------------------------------- the process


class BridgeProcess:
    """Signals and the exit of a bridge command (``cadenza osc``, ``cadenza midi``: its stats' ``command``).

    :meth:`install` (main thread only; elsewhere a no-op) makes SIGTERM/SIGINT set ``stop`` and start a watchdog:
    if :meth:`finish` is not called within :data:`EXIT_GRACE_S` (a runtime that does not answer), the watchdog
    logs the held-back problem lines, prints :meth:`final_lines` and ends the process with status 0. SIGUSR1 sets
    the bridge's ``report_now`` (the counters in the log at the next period). ``more_lines`` gives exit lines
    after the bridge's own (OSC out's counters)."""

    def __init__(self, bridge: CoalescingBridge, stop: threading.Event,
                 more_lines: Callable[[], list[str]] | None = None) -> None:
        self.command = bridge.stats.command
        self.bridge = bridge
        self.stop = stop
        self.more_lines = more_lines
        self._finished = threading.Event()

    def final_lines(self) -> None:
        """The counters on stdout: ``cadenza COMMAND: N messages, …``, then ``cadenza COMMAND: … problems by
        kind: …``, then ``more_lines``."""
        print(self.bridge.stats.summary(), flush=True)
        print(f"cadenza {self.command}: {self.bridge.stats.problems_line()}", flush=True)
        for line in self.more_lines() if self.more_lines is not None else ():
            print(line, flush=True)

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if hasattr(signal, "SIGUSR1"):
            signal.signal(signal.SIGUSR1, lambda *_: self.bridge.report_now.set())

    def _on_signal(self, *_: object) -> None:
        if not self.stop.is_set():
            self.stop.set()
            threading.Thread(target=self._watchdog, name=f"cadenza-{self.command}-exit", daemon=True).start()

    def _watchdog(self) -> None:  # SIGTERM is honoured within a second, even if the runtime does not answer
        if not self._finished.wait(EXIT_GRACE_S):
            self.bridge.reporter.sweep(force=True)
            self.final_lines()
            os._exit(0)

    def finish(self, client: Any) -> None:
        """The bridge's last send and lines, then the client closed; the watchdog stands down."""
        self.bridge.flush()
        self.bridge.reporter.sweep(force=True)
        client.close()
        self._finished.set()
