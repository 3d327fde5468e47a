"""``cadenza osc``: a bridge from OSC (TouchDesigner, Max, Pd, Arduino, phones) to a running runtime.

Address space (UDP, one OSC message or bundle per datagram)::

    /cadenza/param/<name>   <float | int | bool | string>   set a parameter (a string sets a label)
    /cadenza/trigger/<name> [value]                         fire a trigger; a 0/false value does not
                                                            (a button's release), no value or non-zero does
    /cadenza/state          <label>                         request a state
    /cadenza/state/<label>                                  the same, for senders without strings

Threads::

    OSC thread    python-osc ``BlockingOSCUDPServer``: decode → check → :class:`Coalescer` (a lock, no I/O)
    main thread   every control period (10 ms): take the batch → one ``set_many`` for all the
                  parameters that changed in the period (the latest value of each), then the
                  triggers and state requests in arrival order, through the SDK :class:`Client`

Sensors at 60–120 Hz on many addresses therefore cost the runtime at most one
``SetParameters`` per period. Through the SDK client the bridge reconnects to a
restarted runtime and re-sends the graph (``--graph``) and the last values.

Bad input never stops the bridge: an unknown name, a NaN, a value out of the
parameter's range, a malformed address or a runtime that does not answer is
logged once per name (``cadenza osc: ...`` on stderr, one line) and counted; the
rest of the batch still goes through. At exit the bridge prints one line of
counters (:meth:`BridgeStats.summary`) on stdout.

The bridge listens on loopback unless ``--insecure`` allows another address:
OSC has no authentication, and anyone who can reach the port can drive the music.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
import signal
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cadenza.errors import CadenzaError, UsageError

logger = logging.getLogger(__name__)

__all__ = [
    "ADDRESS_PREFIX",
    "DEFAULT_LISTEN",
    "DEFAULT_PERIOD",
    "Bridge",
    "BridgeStats",
    "Coalescer",
    "Target",
    "add_osc_command",
    "check_listen",
    "parse_listen",
    "run_bridge",
]

ADDRESS_PREFIX = "/cadenza/"
DEFAULT_LISTEN = "127.0.0.1:9000"
DEFAULT_PERIOD = 0.010  # seconds: one runtime control tick (control_rate 100)
UNKNOWN_RETRY_S = 5.0  # an unknown parameter is skipped this long before it is tried again (a new graph may know it)
_INDEX = re.compile(r"values\[(\d+)\]")


class Target(Protocol):
    """What the bridge drives: the SDK ``Client`` (tests may pass a recorder)."""

    def set_many(self, values: Mapping[str, float | str], *, clamp: bool = False) -> object: ...

    def trigger(self, name: str) -> object: ...

    def set_state(self, name: str) -> object: ...


@dataclass
class BridgeStats:
    """What the bridge did; :meth:`summary` is the line it prints at exit."""

    messages: int = 0  # OSC messages received (bundles count each message)
    parameter_updates: int = 0  # accepted /cadenza/param messages
    set_requests: int = 0  # SetParameters sent (each carries one period's coalesced updates)
    values_sent: int = 0  # parameter values in those requests
    triggers: int = 0
    states: int = 0
    refused: int = 0  # messages or values dropped: malformed, unknown, out of range, runtime away
    periods: int = 0  # control periods with something to send

    def summary(self) -> str:
        return (f"cadenza osc: {self.messages} messages, {self.parameter_updates} parameter updates -> "
                f"{self.set_requests} SetParameters ({self.values_sent} values), {self.triggers} triggers, "
                f"{self.states} states, {self.refused} refused")


@dataclass
class Batch:
    """One control period's work: the latest value per parameter, then actions in arrival order."""

    values: dict[str, float | str] = field(default_factory=dict)
    actions: list[tuple[str, str]] = field(default_factory=list)  # ("trigger" | "state", name)

    def __bool__(self) -> bool:
        return bool(self.values or self.actions)


class Coalescer:
    """Thread-safe: the OSC thread puts, the sending thread takes a whole period at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batch = Batch()

    def put_value(self, name: str, value: float | str) -> None:
        with self._lock:
            self._batch.values.pop(name, None)  # re-insert: the order follows the latest update
            self._batch.values[name] = value

    def put_action(self, kind: str, name: str) -> None:
        with self._lock:
            self._batch.actions.append((kind, name))

    def take(self) -> Batch:
        with self._lock:
            batch, self._batch = self._batch, Batch()
        return batch


class _Once:
    """Log each key's problem once (a sensor at 60 Hz must not flood the log)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.seen: set[str] = set()

    def __call__(self, key: str, message: str) -> None:
        if key not in self.seen:
            self.seen.add(key)
            self.log(message)


def _one_line(exc: BaseException) -> str:
    """The error on one line; a runtime's refusal without its field path (the OSC address says where)."""
    text = exc.message if isinstance(exc, CadenzaError) and hasattr(exc, "field") else str(exc)
    return " ".join(text.split())


class Bridge:
    """OSC messages → coalesced requests to ``target``. :meth:`handle` is thread-safe; :meth:`flush` is not.

    ``handle(address, *args)`` is the python-osc default handler; ``flush()``
    sends what arrived since the last flush; :meth:`run` flushes every
    ``period`` seconds until ``stop`` is set (and once more after).
    """

    def __init__(self, target: Target, *, period: float = DEFAULT_PERIOD,
                 log: Callable[[str], None] | None = None) -> None:
        if not (isinstance(period, (int, float)) and math.isfinite(period) and 0.001 <= period <= 1.0):
            raise UsageError(f"must be between 0.001 and 1 s, got {period!r}", where="period")
        self.target = target
        self.period = float(period)
        self.stats = BridgeStats()
        self.log = log or logger.warning  # a problem with what arrives, once per key
        self.once = _Once(self.log)
        self.coalescer = Coalescer()
        self._count_lock = threading.Lock()
        self._unknown: dict[str, float] = {}  # parameter → when the runtime said it does not know it

    # ----------------------------------------------------------------- OSC thread

    def _add(self, counter: str, n: int = 1) -> None:
        with self._count_lock:
            setattr(self.stats, counter, getattr(self.stats, counter) + n)

    def _refuse(self, key: str, message: str) -> None:
        self._add("refused")
        self.once(key, message)

    def handle(self, address: str, *args: Any) -> None:
        """One OSC message. Never raises."""
        self._add("messages")
        try:
            self._handle(address, args)
        except Exception as exc:  # noqa: BLE001 — a sender's garbage must not stop the bridge
            self._refuse(f"internal:{type(exc).__name__}", f"{address}: dropped ({type(exc).__name__}: {exc})")

    def _handle(self, address: str, args: tuple[Any, ...]) -> None:
        if not address.startswith(ADDRESS_PREFIX):
            self._refuse(f"address:{address}", f"{address}: not a Cadenza address; use /cadenza/param/<name>, "
                         "/cadenza/trigger/<name> or /cadenza/state <label>")
            return
        kind, _, name = address[len(ADDRESS_PREFIX):].partition("/")
        if kind == "param":
            self._param(address, name, args)
        elif kind == "trigger":
            if not name or "/" in name:
                self._refuse(f"address:{address}", f"{address}: give the trigger's name: /cadenza/trigger/<name>")
                return
            if args and _is_release(args[0]):
                return  # a button's release (0 / false): only the press fires
            self.coalescer.put_action("trigger", name)
        elif kind == "state":
            label = name
            if not label:
                if len(args) != 1 or not isinstance(args[0], str) or not args[0]:
                    self._refuse(f"address:{address}", f"{address}: give the state as one string argument "
                                 f"(got {_describe(args)}) or in the address: /cadenza/state/<label>")
                    return
                label = args[0]
            self.coalescer.put_action("state", label)
        else:
            self._refuse(f"address:{address}", f"{address}: unknown address kind {kind!r}; "
                         "use /cadenza/param/<name>, /cadenza/trigger/<name> or /cadenza/state")

    def _param(self, address: str, name: str, args: tuple[Any, ...]) -> None:
        if not name or "/" in name:
            self._refuse(f"address:{address}", f"{address}: give the parameter's name: /cadenza/param/<name>")
            return
        if len(args) != 1:
            self._refuse(f"args:{name}", f"{address}: expected one value (float, int, bool or label), "
                         f"got {_describe(args)}")
            return
        value = args[0]
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        if isinstance(value, (int, float)):
            number = float(value)
            if not math.isfinite(number):
                self._refuse(f"value:{name}", f"{address}: parameter {name!r} got {number!r}; values must be finite "
                             "numbers (dropped; further bad values of this parameter are dropped silently)")
                return
            self.coalescer.put_value(name, number)
        elif isinstance(value, str):
            self.coalescer.put_value(name, value)
        else:
            self._refuse(f"args:{name}", f"{address}: parameter {name!r} takes a number or a label, "
                         f"got {_describe(args)}")
            return
        self._add("parameter_updates")

    # ----------------------------------------------------------------- sending thread

    def flush(self) -> None:
        """Send what arrived since the last flush: one ``set_many``, then triggers and states."""
        batch = self.coalescer.take()
        if not batch:
            return
        self._add("periods")
        if batch.values:
            self._send_values(batch.values)
        for kind, name in batch.actions:
            self._send_action(kind, name)

    def _send_values(self, values: dict[str, float | str]) -> None:
        now = time.monotonic()
        pending: dict[str, float | str] = {}
        for name, value in values.items():
            since = self._unknown.get(name)
            if since is not None and now - since < UNKNOWN_RETRY_S:
                self._add("refused")
                continue
            pending[name] = value
        while pending:
            try:
                self.target.set_many(pending, clamp=True)  # sensors overshoot: clamp, don't refuse
            except CadenzaError as exc:
                culprit = _culprit(exc, pending)
                if culprit is None:  # the whole request failed: runtime away, no graph …
                    self._add("refused", len(pending))
                    self.once(f"request:{getattr(exc, 'code', type(exc).__name__)}",
                              f"parameters not sent ({len(pending)} values): {_one_line(exc)}")
                    return
                self._add("refused")
                pending.pop(culprit)
                if getattr(exc, "code", "") == "UNKNOWN_NAME":
                    self._unknown[culprit] = now
                    self.once(f"unknown:{culprit}", f"/cadenza/param/{culprit}: {_one_line(exc)}")
                else:
                    self.once(f"value:{culprit}", f"/cadenza/param/{culprit}: {_one_line(exc)} (dropped; further "
                              "refusals of this parameter are not logged)")
                continue
            self._add("set_requests")
            self._add("values_sent", len(pending))
            for name in pending:
                self._unknown.pop(name, None)
            return

    def _send_action(self, kind: str, name: str) -> None:
        try:
            if kind == "trigger":
                self.target.trigger(name)
                self._add("triggers")
            else:
                self.target.set_state(name)
                self._add("states")
        except CadenzaError as exc:
            self._add("refused")
            address = f"/cadenza/trigger/{name}" if kind == "trigger" else f"/cadenza/state {name}"
            self.once(f"{kind}:{name}:{getattr(exc, 'code', type(exc).__name__)}", f"{address}: {_one_line(exc)}")

    def run(self, stop: threading.Event) -> None:
        """Flush once per period (on a fixed grid, so a slow request does not drift it) until ``stop``."""
        next_tick = time.monotonic() + self.period
        while not stop.is_set():
            delay = next_tick - time.monotonic()
            if delay > 0:
                stop.wait(delay)
            next_tick += self.period
            if next_tick < time.monotonic():  # fell behind (a slow runtime): do not burst to catch up
                next_tick = time.monotonic() + self.period
            self.flush()
        self.flush()


def _is_release(value: Any) -> bool:
    return (isinstance(value, (bool, int, float)) and not isinstance(value, str) and float(value) == 0.0)


def _describe(args: tuple[Any, ...]) -> str:
    if not args:
        return "no value"
    return ", ".join(f"{type(a).__name__} {a!r}"[:60] for a in args)


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


def run_bridge(config: OscConfig, *, ready: Callable[[str], None] | None = None,
               stop: threading.Event | None = None) -> int:
    """Run the bridge until SIGINT/SIGTERM (or ``stop``); prints the counters line at exit."""
    try:
        from pythonosc.dispatcher import Dispatcher
        from pythonosc.osc_server import BlockingOSCUDPServer
    except ImportError:
        raise UsageError("the OSC bridge needs python-osc: pip install 'cadenza[osc]'", where="osc") from None
    from cadenza.endpoints import endpoint_source
    from cadenza.sdk.client import Client

    control, control_from = (config.control, "--control") if config.control else endpoint_source("control")
    events = config.events or endpoint_source("events")[0]
    host, port = parse_listen(config.listen)
    check_listen(host, config.insecure)
    if not (1.0 <= config.period_ms <= 1000.0):
        raise UsageError(f"must be between 1 and 1000 ms, got {config.period_ms!r}", where="--period")
    client = Client(control, events, timeout=config.timeout, name="cadenza-osc")
    bridge = Bridge(client, period=config.period_ms / 1000.0)
    dispatcher = Dispatcher()
    dispatcher.set_default_handler(bridge.handle)
    try:
        server = BlockingOSCUDPServer((host, port), dispatcher)
    except OSError as exc:
        client.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", where="--listen") from exc
    # a burst of sensor messages must not overflow the socket while the OSC thread is busy
    try:
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    except OSError:
        pass
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    osc_thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                  name="cadenza-osc-udp", daemon=True)
    try:
        if config.graph:
            try:
                client.load_graph(config.graph)
            except CadenzaError as exc:
                raise UsageError(_one_line(exc), where="--graph") from exc
        bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
        osc_thread.start()
        line = (f"cadenza osc: listening on {bound_host}:{bound_port} -> control={control} (from {control_from}) "
                f"(period {config.period_ms:g} ms)")
        print(line, flush=True)
        if ready is not None:
            ready(f"{bound_host}:{bound_port}")
        bridge.run(stop)
    finally:
        if osc_thread.is_alive():
            server.shutdown()
        server.server_close()
        bridge.flush()
        client.close()
        print(bridge.stats.summary(), flush=True)
    return 0


def cmd_osc(args: argparse.Namespace) -> int:
    return run_bridge(OscConfig(listen=args.listen, control=args.control, events=args.events, graph=args.graph,
                                insecure=args.insecure, period_ms=args.period, timeout=args.timeout))


def add_osc_command(sub: Any) -> argparse.ArgumentParser:
    """Add ``osc`` to the ``cadenza`` command's subparsers (``sub``); returns its parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "osc", help="bridge OSC messages (TouchDesigner, Max, Pd, Arduino) to a running runtime",
        description="Listen for OSC on UDP and drive a running `cadenza serve`: /cadenza/param/<name> VALUE, "
                    "/cadenza/trigger/<name>, /cadenza/state LABEL. Parameter updates within one control "
                    "period are sent as one SetParameters. Listens on loopback unless --insecure.")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"UDP address to listen on (default {DEFAULT_LISTEN}; port 0 picks a free one)")
    p.add_argument("--control", metavar="ENDPOINT", help="the runtime's control endpoint (default "
                   "$CADENZA_CONTROL, else tcp://127.0.0.1:5555, as for cadenza ctl and the SDK)")
    p.add_argument("--events", metavar="ENDPOINT", help="the runtime's events endpoint (default $CADENZA_EVENTS, "
                   "else tcp://127.0.0.1:5556)")
    p.add_argument("--graph", metavar="FILE", help="load this style graph into the runtime at start "
                   "(and again if the runtime restarts)")
    p.add_argument("--period", type=float, default=DEFAULT_PERIOD * 1000, metavar="MS",
                   help="coalescing period: updates within it go out as one request (default 10 ms)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds to wait for each reply")
    p.add_argument("--insecure", action="store_true", help="allow listening on a non-loopback address")
    p.set_defaults(func=cmd_osc)
    return p
