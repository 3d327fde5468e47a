"""``cadenza ctl``: look at and steer a running runtime from a terminal, through the Python SDK.

For the person next to an installation (or a game in development) with a shell
open: what is playing, what the graph offers, nudge a parameter, force a
state, fire a trigger, play other prompts, watch the beats go by::

    cadenza ctl status                      what plays now: graph, state, parameters, weights, controls, health
    cadenza ctl describe                    the graph's parameters (range, default, value), states, triggers, prompts
    cadenza ctl set danger 0.8 --ramp 2     a parameter (a number, or a label), optionally over seconds
    cadenza ctl state combat                force a state (with the graph's transition)
    cadenza ctl trigger boss_defeated       fire a trigger
    cadenza ctl prompts                     the prompts and their weights now
    cadenza ctl prompts "dark techno:1" rain:0.3   play these prompts instead of the graph
    cadenza ctl events [TOPIC ...]          a live tail: beats, bars, states, stingers, warnings, xruns

Everything goes through :class:`cadenza.sdk.Client` (no second wire
implementation); this module only parses arguments, formats replies and events
for people (stream times as ``m:ss.mmm``, tempo in bpm, lost audio in ms) and
turns errors into one line and an exit status:

====  ==========================================================
0     done
1     the runtime said no (an unknown name, a value out of range …): its message
2     usage (a bad option, a malformed endpoint or key)
3     no answer: nothing replied at the control endpoint within ``--timeout``
====  ==========================================================

The endpoints default to ``$CADENZA_CONTROL`` / ``$CADENZA_EVENTS``, else the
runtime's own defaults (``tcp://127.0.0.1:5555`` / ``:5556``). A runtime on
another machine needs its public key (``--server-key``, the key itself or the
``NAME.pub`` file ``cadenza keys`` wrote) and, when it keeps an allow-list,
this client's secret key file (``--client-key NAME.key``).

Output is plain text when stdout is not a terminal (pipes, logs, tests) and
coloured with ``rich`` when it is; ``--json`` prints machine-readable lines
instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cadenza.errors import CadenzaError, UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from cadenza.proto import cadenza_v1_pb2 as pb
    from cadenza.sdk import Client, Event, PromptInfo

__all__ = ["EXIT_NO_ANSWER", "EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "add_ctl_command", "main"]

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1  # the runtime answered with an Error
EXIT_USAGE: Final = 2
EXIT_NO_ANSWER: Final = 3

#: The runtime's defaults (``cadenza serve``'s); ``$CADENZA_CONTROL`` / ``$CADENZA_EVENTS`` override them.
RUNTIME_CONTROL: Final = "tcp://127.0.0.1:5555"
RUNTIME_EVENTS: Final = "tcp://127.0.0.1:5556"
ENV_CONTROL: Final = "CADENZA_CONTROL"
ENV_EVENTS: Final = "CADENZA_EVENTS"
DEFAULT_TIMEOUT_S: Final = 2.0
#: What ``events`` shows without topics: everything but the 10 Hz ``mix`` and the 1 Hz ``status``.
DEFAULT_TOPICS: Final = ("beat", "bar", "state", "stinger", "warning", "xrun")
#: ``events`` checks the runtime still answers after this long without an event.
QUIET_CHECK_S: Final = 5.0


# ----------------------------------------------------------------------------- arguments


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"seconds must be a finite number >= 0, got {text!r}")
    return value


def _common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The connection options: on ``ctl`` itself (with defaults) and again on each subcommand (without, so
    ``cadenza ctl status --control X`` works as well as ``cadenza ctl --control X status``)."""

    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--control", metavar="ENDPOINT", default=d(None),
                        help=f"the runtime's control endpoint (default ${ENV_CONTROL}, else {RUNTIME_CONTROL})")
    parser.add_argument("--events", metavar="ENDPOINT", default=d(None),
                        help=f"the runtime's events endpoint (default ${ENV_EVENTS}, else {RUNTIME_EVENTS})")
    parser.add_argument("--timeout", type=_seconds, metavar="S", default=d(DEFAULT_TIMEOUT_S),
                        help=f"seconds to wait for each reply (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--server-key", metavar="KEY|FILE", default=d(None),
                        help="a remote runtime's CurveZMQ public key: 40 z85 characters, or the NAME.pub file "
                             "`cadenza keys` wrote")
    parser.add_argument("--client-key", metavar="FILE", default=d(None),
                        help="with --server-key: this client's secret key file (NAME.key from `cadenza keys`) when "
                             "the runtime admits only listed clients (--curve-clients); default an ephemeral pair")
    parser.add_argument("--json", action="store_true", default=d(False),
                        help="print JSON (one object per line for events) instead of text")


def add_ctl_command(sub: Any) -> argparse.ArgumentParser:
    """Add ``ctl`` and its subcommands to the ``cadenza`` command line (``sub``: its subparsers)."""
    ctl = sub.add_parser("ctl", help="look at and steer a running runtime (status, describe, set, state, trigger, "
                                      "prompts, events)",
                         description="Talk to a running `cadenza serve` from a terminal. Exit status: 0 done, 1 the "
                                     "runtime said no, 2 usage, 3 no answer.")
    _common(ctl, defaults=True)
    cmds = ctl.add_subparsers(dest="ctl_command", metavar="SUBCOMMAND", parser_class=type(ctl))

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = cmds.add_parser(name, help=help_text, description=help_text)
        _common(p, defaults=False)
        return p

    add("status", "what plays now: graph, state, parameters, prompt weights, controls, stream time, health")
    add("describe", "what the loaded graph offers: parameters (kind, range, default, value), states, triggers, "
                    "prompts, stingers, controls")
    s = add("set", "set a parameter to a number or a label")
    s.add_argument("name", help="the parameter")
    s.add_argument("value", help="a number, or one of a labeled parameter's labels")
    s.add_argument("--ramp", type=_seconds, metavar="S", help="reach the value over S seconds (default: the "
                                                               "parameter's own smoothing)")
    s.add_argument("--shape", default="linear", choices=["linear", "s-curve", "log", "exp", "sine", "constant"],
                   help="with --ramp: the ramp's shape (default linear)")
    s.add_argument("--bypass", action="store_true", help="jump at once: no smoothing, filter or ramp")
    s.add_argument("--clamp", action="store_true", help="clamp a value outside the range instead of refusing it")
    st = add("state", "force the graph's state machine into a state (with its authored transition)")
    st.add_argument("name", help="the state")
    t = add("trigger", "fire a graph trigger (a stinger, an intensity bump, a state change)")
    t.add_argument("name", help="the trigger")
    p = add("prompts", "without prompts: show the prompts and their weights now; with prompts: play them instead "
                       "of the graph")
    p.add_argument("prompts", nargs="*", metavar="TEXT[:WEIGHT]", help='e.g. "dark techno:1.0" rain:0.3 '
                                                                         "(weight 1 when left out)")
    e = add("events", "a live tail of the runtime's events, one line each, until Ctrl-C")
    e.add_argument("topics", nargs="*", metavar="TOPIC",
                   help=f"beat, bar, state, mix, stinger, xrun, warning, status, or all "
                        f"(default: {', '.join(DEFAULT_TOPICS)})")
    e.add_argument("--seconds", type=_seconds, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    ctl.set_defaults(func=main)
    return ctl


# ----------------------------------------------------------------------------- connecting


def _endpoint(given: str | None, env: str, default: str, option: str) -> str:
    value = given if given is not None else os.environ.get(env) or default
    if not value.startswith(("tcp://", "ipc://", "inproc://")):
        source = option if given is not None else f"${env}"
        raise UsageError(f"{value!r} is not a ZeroMQ endpoint; give e.g. {default!r}", where=source)
    return value


def _server_key(value: str) -> str:
    """``--server-key``: the key itself, or a file holding it (``NAME.pub``, or a pyzmq ``.key`` certificate)."""
    from cadenza.runtime.curve import KEY_CHARS, read_public_key

    if len(value.strip()) == KEY_CHARS and not os.path.exists(value):
        return value.strip()
    path = Path(value)
    if not path.is_file() or path.suffix not in (".pub", ".key"):
        raise UsageError(f"{value!r} is neither a 40-character z85 key nor a key file (the runtime's NAME.pub "
                         "from `cadenza keys`, or a pyzmq .key certificate)", where="--server-key")
    key = read_public_key(path, "--server-key")
    if key is None:
        raise UsageError(f"{value!r} holds no public key (give the runtime's NAME.pub)", where="--server-key")
    return key.decode("ascii")


def _client_keys(path: str) -> tuple[str, str]:
    """``--client-key NAME.key`` → (secret, public); the public key is worked out from the secret one."""
    import zmq

    from cadenza.runtime.curve import read_secret_key

    secret = read_secret_key(path, "--client-key")
    return secret.decode("ascii"), zmq.curve_public(secret).decode("ascii")


def _client(args: argparse.Namespace) -> Client:
    from cadenza.sdk import Client

    control = _endpoint(args.control, ENV_CONTROL, RUNTIME_CONTROL, "--control")
    # not given: `events` asks the runtime where it publishes (a runtime on other ports needs only --control)
    args.events_given = args.events is not None or bool(os.environ.get(ENV_EVENTS))
    events = _endpoint(args.events, ENV_EVENTS, RUNTIME_EVENTS, "--events")
    server_key = secret = public = None
    if args.server_key:
        server_key = _server_key(args.server_key)
        if args.client_key:
            secret, public = _client_keys(args.client_key)
    elif args.client_key:
        raise UsageError("a client key needs the runtime's public key too (--server-key)", where="--client-key")
    if args.timeout <= 0:
        raise UsageError(f"must be > 0 seconds, got {args.timeout:g}", where="--timeout")
    return Client(control, events, timeout=args.timeout, name="cadenza ctl", auto_reconnect=False, heartbeat=0,
                  server_public_key=server_key, client_secret_key=secret, client_public_key=public)


def _request(client: Client, body: Any) -> Any:
    """One request through the SDK's request path (handshake, ids, typed errors), its reply message as it came.

    ``status`` shows what the SDK's :class:`~cadenza.sdk.Status` view leaves out (the faults the generation
    thread rides through), so it reads the reply message itself.
    """
    return client._call(body)


# ----------------------------------------------------------------------------- formatting


def clock(seconds: float) -> str:
    """Stream seconds as ``m:ss.mmm`` (``h:mm:ss.mmm`` past an hour)."""
    ms = int(round(max(0.0, seconds) * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h}:{m:02d}:{s:02d}.{ms:03d}" if h else f"{m}:{s:02d}.{ms:03d}"


def _num(value: float) -> str:
    """A number as people write it: ``0.8``, ``120``, ``0.333``."""
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _value(pv: pb.ParameterValue) -> str:
    which = pv.WhichOneof("value")
    if which == "number":
        return _num(pv.number)
    if which == "label":
        return pv.label
    return "-"


def _controls(controls: pb.Controls) -> str:
    from cadenza.proto import wire

    return _control_values(wire.controls_to_dict(controls))


def _control_values(controls: Mapping[str, Any]) -> str:
    parts = []
    for name, value in controls.items():
        if isinstance(value, bool):
            text = "on" if value else "off"
        elif isinstance(value, float):
            text = _num(value)
        elif isinstance(value, (tuple, list)):
            text = "[" + " ".join(str(v) for v in value) + "]"
        else:
            text = str(value)
        parts.append(f"{name} {text}")
    return "  ".join(parts) if parts else "-"


def _weights(weights: Mapping[str, float]) -> str:
    return "  ".join(f"{name} {w:.2f}" for name, w in weights.items()) or "-"


class Out:
    """Where ``ctl`` writes: rich styles on a terminal, plain text elsewhere, a flush after every line."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console: Console = Console(highlight=False, soft_wrap=True, emoji=False)
        self.err: Console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

    def line(self, *parts: str | tuple[str, str]) -> None:
        """One line from pieces: a plain string, or ``(text, style)``; the runtime's text is never markup."""
        from rich.text import Text

        text = Text()
        for part in parts:
            if isinstance(part, tuple):
                text.append(part[0], style=part[1])
            else:
                text.append(part)
        self._print(self.console, text)

    def error(self, message: str) -> None:
        from rich.text import Text

        self._print(self.err, Text(message))

    @staticmethod
    def _print(console: Console, text: Text) -> None:
        console.print(text)
        console.file.flush()


def _field(out: Out, label: str, value: str, style: str = "") -> None:
    out.line((f"{label:<12}", "bold"), (value, style) if style else value)


# ----------------------------------------------------------------------------- subcommands


def _status(client: Client, args: argparse.Namespace, out: Out) -> int:
    from cadenza.proto import cadenza_v1_pb2 as pb

    st: pb.Status = _request(client, pb.GetStatus())
    if args.json:
        return _print_json(out, st)
    rate = client.sample_rate
    server = client.server
    if server is not None:
        channels = {1: "mono", 2: "stereo"}.get(server.channels, f"{server.channels} channels")
        _field(out, "runtime", f"{client.control}  cadenza {server.server_version}  backend {server.backend}  "
                               f"{server.sample_rate / 1000:g} kHz {channels}  session {server.session_id[:8]}")
    if st.graph_loaded:
        _field(out, "graph", st.graph_name or "(unnamed)")
    elif st.weights:
        _field(out, "graph", "none: direct prompts (see weights)")
    else:
        _field(out, "graph", "none loaded (cadenza ctl prompts TEXT, or a client's LoadGraph)", "yellow")
    state = st.state or "-"
    if st.pending_state:
        state += f"  → {st.pending_state} at {clock(st.pending_state_time / rate)}"
    _field(out, "state", state)
    _field(out, "playing", f"{'yes' if st.playing else 'no'}  at {clock(st.stream_time / rate)}  "
                           f"lookahead {st.lookahead_ms:.0f} ms")
    params = "  ".join(f"{name} {_value(st.parameters[name])}" for name in sorted(st.parameters))
    _field(out, "parameters", params or "-")
    _field(out, "weights", _weights(dict(sorted(st.weights.items()))))
    effective = st.effective_controls if st.HasField("effective_controls") else None
    if effective is not None:
        _field(out, "controls", _controls(effective))
    overrides = _controls(st.controls)
    if overrides != "-" or effective is None:
        _field(out, "overrides", overrides)
    health = f"xruns {st.xruns}  events dropped {st.events_dropped}  replies dropped {st.replies_dropped}"
    _field(out, "health", health, "red" if st.xruns or st.events_dropped or st.replies_dropped else "")
    for name, why in sorted(st.sink_faults.items()):
        _field(out, "sink fault", f"{name}: {why}", "red")
    for name, why in sorted(st.faults.items()):
        _field(out, "fault", f"{name}: {why}", "red")
    return EXIT_OK


def _shown(value: float | str | None) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else _num(value)


def _source(prompt: PromptInfo) -> str:
    return f'"{prompt.text}"' if prompt.text else f"audio {prompt.audio}"


def _describe(client: Client, args: argparse.Namespace, out: Out) -> int:
    import dataclasses

    d = client.describe()
    if args.json:
        return _print_json(out, dataclasses.asdict(d))
    header = d.name or "(unnamed)"
    if d.state:
        header += f"  state {d.state}" + (f" (driven by {d.driven_by})" if d.driven_by else "")
    _field(out, "graph", header)
    if d.parameters:
        out.line(("parameters", "bold"))
        width = max(len(name) for name in d.parameters)
        for p in d.parameters.values():
            span = " | ".join(p.labels) if p.kind == "labeled" else f"{_num(p.minimum)} … {_num(p.maximum)}"
            extra = "  (built in)" if p.builtin else ""
            out.line(f"  {p.name:<{width}}  ", (f"{p.kind or '?':<10}", "cyan"), f" {span}  default {_shown(p.default)}"
                     f"  now ", (_shown(p.value), "bold"), extra)
    if d.states:
        names = [s + ("*" if s == d.state else "") for s in d.states]
        _field(out, "states", "  ".join(names) + ("  (* now)" if d.state else ""))
    if d.triggers:
        out.line(("triggers", "bold"))
        width = max(len(name) for name in d.triggers)
        for t in d.triggers.values():
            what = []
            if t.stinger:
                what.append(f"stinger {t.stinger}")
            if t.set_state:
                what.append(f"→ {t.set_state}")
            if t.bump:
                what.append(f"intensity +{_num(t.bump)}")
            out.line(f"  {t.name:<{width}}  {', '.join(what) or '-'}")
    if d.prompts:
        out.line(("prompts", "bold"))
        width = max(len(name) for name in d.prompts)
        for pr in d.prompts.values():
            out.line(f"  {pr.name:<{width}}  {pr.weight:.2f}  {_source(pr)}")
    if d.stingers:
        _field(out, "stingers", "  ".join(d.stingers))
    _field(out, "controls", _control_values(d.controls))
    return EXIT_OK


def parse_value(text: str) -> float | str:
    """``set``'s VALUE: a number when it reads as a finite one, else a label (``nan``/``inf`` stay numbers,
    so the runtime names them)."""
    try:
        return float(text)
    except ValueError:
        return text


def _set(client: Client, args: argparse.Namespace, out: Out) -> int:
    value = parse_value(args.value)
    ack = client.set_many({args.name: value}, ramp=args.ramp, shape=args.shape, bypass=args.bypass,
                          clamp=args.clamp)
    how = f" over {_num(args.ramp)} s ({args.shape})" if args.ramp is not None else ""
    return _acked(out, args, f"{args.name} = {args.value}{how}", ack)


def _state(client: Client, args: argparse.Namespace, out: Out) -> int:
    return _acked(out, args, f"state → {args.name}", client.set_state(args.name))


def _trigger(client: Client, args: argparse.Namespace, out: Out) -> int:
    return _acked(out, args, f"fired {args.name}", client.trigger(args.name))


def parse_prompt(text: str) -> tuple[str, float]:
    """``"dark techno:0.7"`` → ``("dark techno", 0.7)``, by the rule ``--prompt`` follows (weight 1 when left out)."""
    from cadenza.runtime.backends.base import parse_weighted

    weighted = parse_weighted(text, option="prompts")
    return str(weighted.prompt), weighted.weight


def _prompts(client: Client, args: argparse.Namespace, out: Out) -> int:
    from cadenza.sdk import ServerError

    if args.prompts:
        pairs = [parse_prompt(t) for t in args.prompts]
        ack = client.set_prompts(pairs)
        return _acked(out, args, "playing " + ", ".join(f"{text} {_num(w)}" for text, w in pairs), ack)
    try:
        d = client.describe()
    except ServerError as exc:
        if exc.code not in ("NOT_READY", "BAD_MESSAGE"):
            raise
        d = None  # no graph yet, or a runtime older than DescribeGraph: the weights from the status
    if d is not None and d.prompts:
        if args.json:
            return _print_json(out, {p.name: {"weight": p.weight, **({"text": p.text} if p.text else {}),
                                              **({"audio": p.audio} if p.audio else {})} for p in d.prompts.values()})
        width = max(len(name) for name in d.prompts)
        for pr in sorted(d.prompts.values(), key=lambda p: -p.weight):
            out.line(f"{pr.name:<{width}}  ", (f"{pr.weight:.2f}", "bold"), f"  {_source(pr)}")
        return EXIT_OK
    weights = client.status().weights
    if args.json:
        return _print_json(out, {name: {"weight": w} for name, w in weights.items()})
    if not weights:
        out.line("no prompts playing (no graph loaded; play some with: cadenza ctl prompts \"TEXT:WEIGHT\" …)")
    for name, w in sorted(weights.items(), key=lambda kv: -kv[1]):
        out.line(f"{name}  ", (f"{w:.2f}", "bold"))
    return EXIT_OK


def _acked(out: Out, args: argparse.Namespace, what: str, ack: Any) -> int:
    if args.json:
        return _print_json(out, {"ok": what, "stream_time": ack.stream_time, "seconds": ack.seconds,
                                 "warnings": list(ack.warnings)})
    when = f"  (from {clock(ack.seconds)})" if ack.seconds is not None else ""
    out.line(("ok", "green"), f"  {what}{when}")
    for warning in ack.warnings:
        out.line(("warning", "yellow"), f"  {warning}")
    return EXIT_OK


# ----------------------------------------------------------------------------- events


def event_line(ev: Event, sample_rate: int) -> list[str | tuple[str, str]]:
    """One event as the pieces of one readable line: stream time, topic, what happened in human units."""
    from cadenza.sdk import BeatEvent, MixEvent, StateEvent, StatusEvent, StingerEvent, WarningEvent, XrunEvent

    head: list[str | tuple[str, str]] = [f"{clock(ev.seconds):>10}  "]
    style = {"beat": "dim", "bar": "cyan", "state": "bold magenta", "stinger": "bold green", "warning": "yellow",
             "xrun": "bold red", "mix": "blue", "status": "dim"}.get(ev.topic, "")
    head.append((f"{ev.topic:<8}", style))
    if isinstance(ev, BeatEvent):
        est = "  (estimated)" if ev.estimated else ""
        if ev.topic == "bar":
            return [*head, f" bar {ev.bar}  {ev.bpm:.1f} bpm{est}"]
        return [*head, f" beat {ev.beat}  bar {ev.bar} beat {ev.beat_in_bar + 1}  {ev.bpm:.1f} bpm{est}"]
    if isinstance(ev, StateEvent):
        move = f"{ev.previous} → {ev.name}" if ev.previous else ev.name
        how = ", ".join(x for x in (ev.transition, f"fade {ev.fade_seconds:.2f} s" if ev.fade_seconds else "") if x)
        return [*head, " ", (move, "bold"), f"  {ev.phase or '?'}" + (f"  ({how})" if how else "")]
    if isinstance(ev, StingerEvent):
        return [*head, " ", (ev.name, "bold"), f"  ({ev.duration_seconds:.2f} s)"]
    if isinstance(ev, WarningEvent):
        return [*head, f" {ev.field + ': ' if ev.field else ''}{ev.message}"]
    if isinstance(ev, XrunEvent):
        lost_ms = ev.frames_lost / sample_rate * 1000
        return [*head, f" #{ev.count}  {lost_ms:.1f} ms lost" + (f"  ({ev.source})" if ev.source else "")]
    if isinstance(ev, MixEvent):
        return [*head, " " + _weights(ev.weights)]
    if isinstance(ev, StatusEvent):
        s = ev.status
        return [*head, f" {s.graph_name or '-'}  state {s.state or '-'}  {'playing' if s.playing else 'stopped'}  "
                       f"xruns {s.xruns}  lookahead {s.lookahead_ms:.0f} ms"]
    return head


def _event_json(ev: Event) -> dict[str, Any]:
    import dataclasses

    doc = dataclasses.asdict(ev)
    return doc


def reported_events(client: Client) -> str | None:
    """The events endpoint the runtime says it bound (``Hello``'s ``ServerInfo.endpoints``), as reached from here:
    a wildcard address becomes the control endpoint's host. None when the runtime does not say."""
    endpoints = getattr(client.server, "endpoints", None) or {}
    reported = endpoints.get("events")
    if not reported:
        return None
    if reported.startswith("tcp://") and client.control.startswith("tcp://"):
        host, _, port = reported[len("tcp://"):].rpartition(":")
        if host in ("0.0.0.0", "*", "[::]", "::"):
            control_host = client.control[len("tcp://"):].rpartition(":")[0]
            return f"tcp://{control_host}:{port}"
    return str(reported)


def _events(client: Client, args: argparse.Namespace, out: Out) -> int:
    from cadenza.sdk import RequestTimeout, TransportError
    from cadenza.sdk._base import TOPICS

    topics = list(dict.fromkeys(args.topics)) or list(DEFAULT_TOPICS)
    if "all" in topics:
        topics = list(TOPICS)
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise UsageError(f"unknown topic {unknown[0]!r}; topics are {', '.join(TOPICS)}, or all", where="events")
    client.hello()  # is anyone there? (exit 3 otherwise); also the sample rate for the units
    rate = client.sample_rate
    if not args.events_given:
        client.events_endpoint = reported_events(client) or client.events_endpoint
    try:
        stream = client.events(timeout=0.2, topics=topics)
    except TransportError as exc:
        raise UsageError(str(exc), where="--events") from exc
    if not args.json:
        out.err.print(f"listening to {', '.join(topics)} on {client.events_endpoint} (Ctrl-C to stop)",
                      highlight=False, soft_wrap=True)
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    last_event = time.monotonic()
    lost = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            for ev in stream:
                last_event = time.monotonic()
                if client.events_lost > lost and not args.json:
                    out.line(("(lost", "red"), f" {client.events_lost - lost} events: the terminal fell behind "
                                                "or the network dropped them)")
                lost = client.events_lost
                if args.json:
                    out.console.file.write(json.dumps(_event_json(ev)) + "\n")
                    out.console.file.flush()
                else:
                    out.line(*event_line(ev, rate))
                if deadline is not None and time.monotonic() >= deadline:
                    break
            if time.monotonic() - last_event >= QUIET_CHECK_S:
                last_event = time.monotonic()
                try:
                    client.status()
                except RequestTimeout:
                    out.error(f"no answer from the runtime at {client.control} (still listening on "
                              f"{client.events_endpoint})")
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    return EXIT_OK


def _print_json(out: Out, message: Any) -> int:
    if hasattr(message, "DESCRIPTOR"):
        from google.protobuf.json_format import MessageToDict

        message = MessageToDict(message, preserving_proto_field_name=True)
    out.console.file.write(json.dumps(message, indent=1) + "\n")
    out.console.file.flush()
    return EXIT_OK


_COMMANDS: Final[dict[str, Callable[[Client, argparse.Namespace, Out], int]]] = {
    "status": _status,
    "describe": _describe,
    "set": _set,
    "state": _state,
    "trigger": _trigger,
    "prompts": _prompts,
    "events": _events,
}


# ----------------------------------------------------------------------------- errors → exit status


def _no_answer(client: Client | None, args: argparse.Namespace) -> str:
    where = client.control if client is not None else "the control endpoint"
    hint = ("is `cadenza serve` running? Start it, or point --control (or $CADENZA_CONTROL) at the runtime")
    if args.server_key:
        hint += "; with CURVE, check --server-key is the runtime's public key and --client-key is on its allow-list"
    return f"no runtime answered at {where} within {args.timeout:g} s — {hint}"


def main(args: argparse.Namespace) -> int:
    """Run ``cadenza ctl SUBCOMMAND``; returns the exit status (never raises for the user's mistakes)."""
    from cadenza.sdk import RequestTimeout, ServerError, TransportError

    prog = f"cadenza ctl {args.ctl_command}" if getattr(args, "ctl_command", None) else "cadenza ctl"
    out = Out()
    if not getattr(args, "ctl_command", None):
        out.error(f"{prog}: error: name a subcommand: {', '.join(_COMMANDS)} (see cadenza ctl --help)")
        return EXIT_USAGE
    client: Client | None = None
    try:
        client = _client(args)
        try:
            client.open()
        except TransportError as exc:  # ZeroMQ refused the endpoint itself (a bad port, an unknown transport)
            raise UsageError(str(exc), where="--control") from exc
        with client:
            return _COMMANDS[args.ctl_command](client, args, out)
    except RequestTimeout:
        out.error(f"{prog}: error: {_no_answer(client, args)}")
        return EXIT_NO_ANSWER
    except ServerError as exc:
        said = "the runtime said no" if exc.remote else "the runtime would refuse it"
        out.error(f"{prog}: {said} ({exc.code}): {exc}")
        return EXIT_REFUSED
    except TransportError as exc:
        out.error(f"{prog}: error: cannot reach the runtime: {exc}")
        return EXIT_NO_ANSWER
    except UsageError as exc:
        out.error(f"{prog}: error: {exc} (see {prog} --help)")
        return EXIT_USAGE
    except CadenzaError as exc:  # an unreadable reply: a runtime of another version?
        out.error(f"{prog}: error: {exc}")
        return EXIT_NO_ANSWER
    except BrokenPipeError:  # `cadenza ctl events | head`: the reader has gone, which is fine
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK

