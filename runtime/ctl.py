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

Values and options no runtime could take (``nan``, ``--shape`` without
``--ramp``, ``--ramp``/``--clamp`` with a label) are usage errors before
anything is sent. Replies print what the runtime applied (its ``Ok``
warnings: clamped, rounded, a stinger refused in its cooldown).

Output is plain text when stdout is not a terminal (pipes, logs, tests) and
coloured with ``rich`` when it is; ``--json`` prints machine-readable lines
instead (an error is then also ``{"error": {...}}`` on stdout, numbers as
numbers). Every text line goes through :func:`safe`: control characters from
the runtime are shown escaped, never sent to the terminal. A closed pipe
(``| head``) is exit 0, Ctrl-C one line ``interrupted``. ``events`` checks its
endpoint hears the runtime (the 1 Hz ``status`` events) within
:data:`CONFIRM_S` and says when the runtime restarted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
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

#: The runtime's defaults (``cadenza serve``'s); ``$CADENZA_CONTROL`` / ``$CADENZA_EVENTS`` override them
#: (read when a command runs, through :mod:`cadenza.endpoints`, as the SDK and ``cadenza osc`` do).
RUNTIME_CONTROL: Final = "tcp://127.0.0.1:5555"
RUNTIME_EVENTS: Final = "tcp://127.0.0.1:5556"
ENV_CONTROL: Final = "CADENZA_CONTROL"
ENV_EVENTS: Final = "CADENZA_EVENTS"
#: ``events`` expects a first event (the 1 Hz ``status`` at least) this soon, else it checks its endpoint.
CONFIRM_S: Final = 2.5
#: A quoted value longer than this is shortened in what ctl prints (a 120,000-character name …).
QUOTE_MAX: Final = 80
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


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"seconds must be a finite number > 0, got {text!r}")
    return value


#: What reads as a number to ``set``'s VALUE (ASCII, no ``_``): ``-0.5``, ``1e3``, ``-inf`` and ``nan`` included,
#: so argparse takes ``set danger -inf`` as a value, not an option.
_UNSIGNED: Final = r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)"
NUMBER: Final = re.compile(rf"[+-]?{_UNSIGNED}", re.IGNORECASE | re.ASCII)


def _common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The connection options: on ``ctl`` itself (with defaults) and again on each subcommand (without, so
    ``cadenza ctl status --control X`` works as well as ``cadenza ctl --control X status``)."""

    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--control", metavar="ENDPOINT", default=d(None),
                        help=f"the runtime's control endpoint (default ${ENV_CONTROL}, else {RUNTIME_CONTROL})")
    parser.add_argument("--events", metavar="ENDPOINT", default=d(None),
                        help=f"the runtime's events endpoint (default ${ENV_EVENTS}, else {RUNTIME_EVENTS})")
    parser.add_argument("--timeout", type=_timeout, metavar="S", default=d(DEFAULT_TIMEOUT_S),
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
    setattr(s, "_negative_number_matcher", re.compile(rf"^-{_UNSIGNED}$", re.I | re.A))  # `set x -inf`: a value
    s.add_argument("name", help="the parameter")
    s.add_argument("value", help="a number, or one of a labeled parameter's labels")
    s.add_argument("--ramp", type=_seconds, metavar="S", help="reach the value over S seconds (default: the "
                                                               "parameter's own smoothing)")
    s.add_argument("--shape", choices=["linear", "s-curve", "log", "exp", "sine", "constant"],
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


def _endpoint(given: str | None, kind: str, option: str) -> str:
    """``--control``/``--events``, else ``$CADENZA_…``, else the runtime's default; checked as far as can be here
    (a transport that reaches another process, a port that exists, a host name that resolves)."""
    from cadenza.endpoints import RUNTIME_DEFAULTS, endpoint_source

    value, source = (given, option) if given is not None else endpoint_source(kind)
    where = option if given is not None else (source if source.startswith("$") else option)
    default = RUNTIME_DEFAULTS[kind]
    if value.startswith("inproc://"):
        raise UsageError(f"{value!r}: inproc:// reaches only sockets inside one process, never a runtime; give "
                         f"tcp://HOST:PORT or ipc://PATH (e.g. {default!r})", where=where)
    if not value.startswith(("tcp://", "ipc://")):
        raise UsageError(f"{value!r} is not a ZeroMQ endpoint; give e.g. {default!r}", where=where)
    if value.startswith("tcp://"):
        host, _, port = value[len("tcp://"):].rpartition(":")
        if port.isdigit() and not 0 < int(port) <= 65535:
            raise UsageError(f"{value!r}: port {port} does not exist (1 to 65535)", where=where)
        host = host.strip("[]")
        if host and port.isdigit() and not _is_address(host):
            import socket

            try:
                socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                    raise UsageError(f"{value!r}: the host name {host!r} does not resolve", where=where) from None
    return value


def _is_address(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "*"
    return True


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

    if path.endswith(".pub"):
        raise UsageError(f"{path!r} is a public key; give this client's secret key file (NAME.key from `cadenza "
                         "keys`; its NAME.pub goes on the runtime's allow-list)", where="--client-key")
    try:
        head = Path(path).read_text(encoding="ascii", errors="replace")[:4096]
    except OSError:
        head = ""  # read_secret_key says why
    if "public-key" in head and "secret-key" not in head:  # a pyzmq public certificate
        raise UsageError(f"{path!r} holds only a public key; give this client's secret key file (NAME.key)",
                         where="--client-key")
    secret = read_secret_key(path, "--client-key")
    return secret.decode("ascii"), zmq.curve_public(secret).decode("ascii")


def _client(args: argparse.Namespace) -> Client:
    from cadenza.sdk import Client

    control = _endpoint(args.control, "control", "--control")
    # not given: `events` asks the runtime where it publishes (a runtime on other ports needs only --control)
    args.events_given = args.events is not None or bool(os.environ.get(ENV_EVENTS))
    events = _endpoint(args.events, "events", "--events")
    server_key = secret = public = None
    if args.server_key:
        server_key = _server_key(args.server_key)
        if args.client_key:
            secret, public = _client_keys(args.client_key)
    elif args.client_key:
        raise UsageError("a client key needs the runtime's public key too (--server-key)", where="--client-key")
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
    if abs(value) >= 1e12:
        return f"{value:.6g}"  # 1e+308, not 309 digits
    if value == int(value):
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


#: Characters a terminal acts on: C0/C1 controls (ESC, BEL, CR …), DEL, and the bidirectional overrides
#: that reorder what is shown.
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe(text: str, long_values: Sequence[str] = ()) -> str:
    """Text for a terminal: every control character shown as an escape (``\\x1b``), never acted on; each of
    ``long_values`` (what the user typed, over :data:`QUOTE_MAX` characters) shortened where the text repeats it,
    its length said. Everything ctl prints goes through it (:class:`Out`): names, prompt texts, warnings and error
    messages come from the runtime, and any local process can set them."""

    def escape(m: re.Match[str]) -> str:
        c = m[0]
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    for value in long_values:
        text = _shorten(text, value)
    return _UNSAFE.sub(escape, text)


def _shorten(text: str, value: str) -> str:
    """Each place ``text`` repeats ``value`` (or a cut-off start of it, as a runtime's bounded message has it)
    shortened to its first characters and its length."""
    head, parts, at = value[:QUOTE_MAX], [], 0
    while (i := text.find(head, at)) >= 0:
        n = len(head)
        while n < len(value) and i + n < len(text) and text[i + n] == value[n]:
            n += 1
        parts.append(text[at:i] + f"{value[:QUOTE_MAX // 2]}… ({len(value):,} characters)")
        at = i + n
    return "".join(parts) + text[at:]


def _broken_pipe() -> None:
    raise BrokenPipeError


class Out:
    """Where ``ctl`` writes: rich styles on a terminal, plain text elsewhere, a flush after every line; every
    piece through :func:`safe`."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console: Console = Console(highlight=False, soft_wrap=True, emoji=False)
        self.err: Console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
        for console in (self.console, self.err):  # rich exits 1 on a broken pipe; ctl's main() makes it 0
            console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
        self.long_values: list[str] = []  # what the user typed that is too long to repeat in full

    def line(self, *parts: str | tuple[str, str]) -> None:
        """One line from pieces: a plain string, or ``(text, style)``; the runtime's text is never markup."""
        from rich.text import Text

        text = Text()
        for part in parts:
            if isinstance(part, tuple):
                text.append(safe(part[0]), style=part[1])
            else:
                text.append(safe(part))
        self._print(self.console, text)

    def error(self, message: str) -> None:
        from rich.text import Text

        self._print(self.err, Text(safe(message, self.long_values)))

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
                what.append(f"intensity {'+' if t.bump > 0 else ''}{_num(t.bump)}")
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
    """``set``'s VALUE: a number when it is written as one in ASCII digits (``0.5``, ``-1e3``), else a label.
    A number that is not finite (``nan``, ``inf``, ``1e400``) is a usage error naming it: no parameter takes it."""
    if not NUMBER.fullmatch(text.strip()):
        return text  # full-width digits, 1_0, 0x1: a label (which a numeric parameter refuses, naming it)
    value = float(text)
    if not math.isfinite(value):
        raise UsageError(f"{text!r} is not a finite number; give a number within the parameter's range (see "
                         "cadenza ctl describe)", where="value")
    return value


def _set_value(args: argparse.Namespace) -> float | str:
    """``set``'s value, and the options checked against it, before anything is sent (usage errors, exit 2)."""
    value = parse_value(args.value)
    if args.shape is not None and args.ramp is None:
        raise UsageError(f"--shape {args.shape} shapes a ramp; give --ramp S too (or leave --shape out)",
                         where="--shape")
    if isinstance(value, str):  # a label: it changes at once, there is nothing to glide through or clamp to
        for option, given in (("--ramp", args.ramp is not None), ("--clamp", args.clamp)):
            if given:
                raise UsageError(f"{args.value!r} is a label: a labeled parameter changes at once and has no "
                                 f"range, so {option} does nothing; leave it out", where=option)
    return value


def _set(client: Client, args: argparse.Namespace, out: Out) -> int:
    value = _set_value(args)
    shape = args.shape or "linear"
    ack = client.set_many({args.name: value}, ramp=args.ramp, shape=shape, bypass=args.bypass, clamp=args.clamp)
    how = f" over {_num(args.ramp)} s ({shape})" if args.ramp is not None else ""
    shown = value if isinstance(value, str) else _num(value)
    applied = _applied(ack.warnings, args.name)
    if applied is not None and applied != shown:
        shown = f"{applied} (asked {shown})"
    return _acked(out, args, f"{args.name} = {shown}{how}", ack)


def _applied(warnings: Sequence[str], name: str) -> str | None:
    """The value the runtime says it applied instead of the one asked (its ``clamped:`` / ``rounded:`` warnings:
    ``… it became 1``), None when it took the value as given."""
    became = None
    for w in warnings:
        if w.startswith((f"clamped: {name} ", f"rounded: {name} ")):
            m = re.search(r"became (\S+)$", w)
            if m:
                became = m[1]
    if became is None:
        return None
    try:
        return _num(float(became))
    except ValueError:
        return became


def _state(client: Client, args: argparse.Namespace, out: Out) -> int:
    return _acked(out, args, f"state → {args.name}", client.set_state(args.name))


def _trigger(client: Client, args: argparse.Namespace, out: Out) -> int:
    ack = client.trigger(args.name)
    refused = [w for w in ack.warnings if w.startswith("stinger_refused")]
    what = f"fired {args.name}" + ("  — its stinger refused: in cooldown (it does not play)" if refused else "")
    return _acked(out, args, what, ack)


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
    if isinstance(ev, WarningEvent):  # remaining=2.6018958333333373 → 2.602
        message = re.sub(r"\d+\.\d{4,}", lambda m: _num(float(m[0])), ev.message)
        return [*head, f" {ev.field + ': ' if ev.field else ''}{message}"]
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


class EventsSilent(CadenzaError):
    """Events were published but none arrived: the events endpoint is not the runtime's (exit 3)."""


def _events(client: Client, args: argparse.Namespace, out: Out) -> int:
    from cadenza.sdk import RequestTimeout, StatusEvent, TransportError
    from cadenza.sdk._base import TOPICS

    topics = list(dict.fromkeys(args.topics)) or list(DEFAULT_TOPICS)
    if "all" in topics:
        topics = list(TOPICS)
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise UsageError(f"unknown topic {unknown[0]!r}; topics are {', '.join(TOPICS)}, or all", where="events")
    client.hello()  # is anyone there? (exit 3 otherwise); also the sample rate for the units
    rate = client.sample_rate
    session = client.server.session_id if client.server is not None else ""
    reported = reported_events(client)
    if not args.events_given:
        client.events_endpoint = reported or client.events_endpoint
    published = client.status().event_sequences  # to tell "nothing published" from "nothing arrived"
    try:
        # the 1 Hz status events too, shown only when asked for: they confirm the endpoint and carry the session
        stream = client.events(timeout=0.2, topics=[*topics, *(["status"] if "status" not in topics else [])])
    except TransportError as exc:
        raise UsageError(str(exc), where="--events") from exc
    if not args.json:
        out.error(f"listening to {', '.join(topics)} on {client.events_endpoint} (Ctrl-C to stop)")
    start = time.monotonic()
    deadline = None if args.seconds is None else start + args.seconds
    last_event = check_at = start
    confirmed = False  # an event arrived (or the runtime published none to check with)
    last_seq: dict[str, int] = {}
    lost = 0
    try:
        while deadline is None or time.monotonic() < deadline or not confirmed:
            for ev in stream:
                last_event = time.monotonic()
                confirmed = True
                new_session = ev.status.server.session_id if isinstance(ev, StatusEvent) and ev.status.server \
                    else None
                if (new_session and session and new_session != session) or ev.sequence < last_seq.get(ev.topic, 0):
                    if not new_session:  # the sequences started again: ask the new runtime who it is
                        with contextlib.suppress(CadenzaError):
                            client.hello()
                            new_session = client.server.session_id if client.server is not None else None
                    _restarted(out, args, ev, new_session)
                    last_seq.clear()
                    lost = client.events_lost
                if new_session:
                    session = new_session
                last_seq[ev.topic] = ev.sequence
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if ev.topic not in topics:
                    continue
                if client.events_lost > lost and not args.json:
                    out.line(("(lost", "red"), f" {client.events_lost - lost} events: the terminal fell behind "
                                                "or the network dropped them)")
                lost = client.events_lost
                if args.json:
                    out.console.file.write(json.dumps(_event_json(ev)) + "\n")
                    out.console.file.flush()
                else:
                    out.line(*event_line(ev, rate))
            now = time.monotonic()
            if not confirmed and now - check_at >= CONFIRM_S:
                check_at = now
                try:
                    now_published = client.status().event_sequences
                except RequestTimeout:
                    now_published = published
                if any(seq > published.get(t, 0) for t, seq in now_published.items()):
                    hint = (f"; the runtime at {client.control} says it publishes on {reported}"
                            if reported and reported != client.events_endpoint else "")
                    raise EventsSilent(f"no events arrived from {client.events_endpoint} within {CONFIRM_S:g} s, "
                                       f"though the runtime published some{hint} — is --events (or "
                                       f"${ENV_EVENTS}) the runtime's events endpoint?")
                confirmed = deadline is not None  # published nothing (stopped?): nothing to check with yet
                published = now_published
            if now - last_event >= QUIET_CHECK_S:
                last_event = now
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


def _restarted(out: Out, args: argparse.Namespace, ev: Event, session: str | None) -> None:
    """Say that a new runtime process now publishes (its session differs, or the sequences started again)."""
    if args.json:
        out.console.file.write(json.dumps({"restarted": True, "session_id": session or "", "seconds": ev.seconds})
                               + "\n")
        out.console.file.flush()
        return
    who = f" (session {session[:8]})" if session else ""
    out.line((f"{clock(ev.seconds):>10}  ", ""), ("restart ", "bold red"),
             f" the runtime restarted{who}: stream time starts again")


def _print_json(out: Out, message: Any) -> int:
    if hasattr(message, "DESCRIPTOR"):
        from google.protobuf.json_format import MessageToDict

        message = _int64_numbers(message, MessageToDict(message, preserving_proto_field_name=True))
    out.console.file.write(json.dumps(message, indent=1) + "\n")
    out.console.file.flush()
    return EXIT_OK


def _int64_numbers(message: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """``MessageToDict`` writes 64-bit integers as strings (proto3 JSON); ctl's JSON has numbers everywhere
    (``stream_time`` is a number in every subcommand's output and in ``events --json``)."""
    from google.protobuf.descriptor import FieldDescriptor as F

    wide = (F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_SINT64, F.TYPE_FIXED64, F.TYPE_SFIXED64)

    def convert(field: Any, value: Any, sub: Any) -> Any:
        if field.type in wide:
            return int(value)
        if field.type == F.TYPE_MESSAGE and isinstance(value, dict) and sub is not None:
            return _int64_numbers(sub, value)
        return value

    for field in message.DESCRIPTOR.fields:
        if field.name not in doc:
            continue
        value, held = doc[field.name], getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vfield = field.message_type.fields_by_name["value"]
            doc[field.name] = {k: convert(vfield, v, held[k] if vfield.type == F.TYPE_MESSAGE else None)
                               for k, v in value.items()}
        elif isinstance(value, list):
            doc[field.name] = [convert(field, v, held[i] if field.type == F.TYPE_MESSAGE else None)
                               for i, v in enumerate(value)]
        else:
            doc[field.name] = convert(field, value, held if field.type == F.TYPE_MESSAGE else None)
    return doc


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
    """Run ``cadenza ctl SUBCOMMAND``; returns the exit status (never raises for the user's mistakes).

    With ``--json`` an error is also one JSON object on stdout (``{"error": {"code", "field", "message",
    "exit"}}``), so ``ctl … --json | jq`` always gets a document; stderr has the same one line as without.
    """
    # Ctrl-C from here on is a one-line "interrupted" (exit 130), also in the first moments (imports, connecting)
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupt)
    try:
        return _main(args)
    except KeyboardInterrupt:  # before a tail listens (which ends on Ctrl-C with 0), or during a request
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write("cadenza ctl: interrupted\n")
            sys.stderr.flush()
        return 130
    except BrokenPipeError:  # `cadenza ctl … | head`: the reader has gone, which is fine
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _main(args: argparse.Namespace) -> int:
    from cadenza.sdk import RequestTimeout, ServerError, TransportError

    prog = f"cadenza ctl {args.ctl_command}" if getattr(args, "ctl_command", None) else "cadenza ctl"
    out = Out()
    typed = [getattr(args, "name", None), getattr(args, "value", None), *(getattr(args, "prompts", None) or [])]
    out.long_values = sorted((v for v in typed if isinstance(v, str) and len(v) > QUOTE_MAX), key=len, reverse=True)

    def fail(code: int, message: str, kind: str, field: str = "") -> int:
        out.error(f"{prog}: {message}")
        if getattr(args, "json", False):
            doc = {"code": kind, "field": field, "message": safe(message, out.long_values), "exit": code}
            out.console.file.write(json.dumps({"error": doc}) + "\n")
            out.console.file.flush()
        return code

    if not getattr(args, "ctl_command", None):
        return fail(EXIT_USAGE, f"error: name a subcommand: {', '.join(_COMMANDS)} (see cadenza ctl --help)",
                    "USAGE")
    client: Client | None = None
    try:
        if args.ctl_command == "set":
            _set_value(args)  # a value or option no runtime could take: say so without connecting
        elif args.ctl_command == "prompts":
            for text in args.prompts:
                parse_prompt(text)
        client = _client(args)
        try:
            client.open()
        except TransportError as exc:  # ZeroMQ refused the endpoint itself (a bad port, an unknown transport)
            raise UsageError(str(exc), where="--control") from exc
        with client:
            return _COMMANDS[args.ctl_command](client, args, out)
    except RequestTimeout:
        return fail(EXIT_NO_ANSWER, f"error: {_no_answer(client, args)}", "NO_ANSWER")
    except ServerError as exc:
        field = getattr(exc, "field", "") or ""
        if not exc.remote:  # the SDK's own checks: the runtime was never asked, so a usage error
            return fail(EXIT_USAGE, f"error: {exc} ({exc.code}; not sent: the runtime would refuse it) (see "
                                    f"{prog} --help)", exc.code, field)
        hint = ""
        if exc.code == "NOT_READY":
            hint = (" — from a terminal: cadenza ctl prompts \"TEXT:WEIGHT\" plays prompts; a graph comes from "
                    "`cadenza serve --graph FILE` or a client's LoadGraph")
        return fail(EXIT_REFUSED, f"the runtime said no ({exc.code}): {exc}{hint}", exc.code, field)
    except TransportError as exc:
        return fail(EXIT_NO_ANSWER, f"error: cannot reach the runtime: {exc}", "NO_ANSWER")
    except UsageError as exc:
        return fail(EXIT_USAGE, f"error: {exc} (see {prog} --help)", "USAGE", getattr(exc, "where", "") or "")
    except CadenzaError as exc:  # an unreadable reply (a runtime of another version?), an events endpoint unheard
        return fail(EXIT_NO_ANSWER, f"error: {exc}", "NO_ANSWER")
