"""The ``cadenza`` command line: parses arguments, runs a command, turns errors into one line.

Every :class:`~cadenza.errors.CadenzaError` (and every argparse complaint)
ends as ``cadenza <command>: error: <where>: <what>`` on stderr with exit
code 2 — never a traceback. ``CADENZA_DEBUG=1`` shows tracebacks of
unexpected errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from cadenza import __version__
from cadenza.errors import CadenzaError, UsageError
from cadenza.runtime import early_signals  # standard library only: main() holds signals before heavy imports

if TYPE_CHECKING:
    from cadenza.runtime.backends.base import Beat, Controls, WeightedPrompt
    from cadenza.runtime.sinks.base import Sink

_T = TypeVar("_T")

EXIT_ERROR = 2

# where (as the library names it) → the CLI option a user typed
_OPTION_OF = {
    "bpm": "--bpm",
    "density": "--density",
    "brightness": "--brightness",
    "scale": "--scale",
    "seed": "--seed",
    "seconds": "--seconds",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line and exit with :data:`EXIT_ERROR`."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Once(argparse.Action):
    """An option that may be given once: a second one is an error, not a silent override."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} is given twice ({getattr(namespace, self.dest)!r} and {values!r}); "
                         "give it once")
        setattr(namespace, self.dest, values)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    return value  # nan / inf are rejected by the validators, which name the range


def _controls(args: argparse.Namespace) -> Controls:
    from cadenza.runtime.backends.base import Controls

    try:
        controls = Controls(
            bpm=args.bpm,
            density=args.density,
            brightness=args.brightness,
            scale=args.scale,
            mute_bass=args.mute_bass,
            mute_drums=args.mute_drums,
        )
        return controls
    except UsageError as exc:
        raise UsageError(exc.message, where=_OPTION_OF.get(exc.where or "", exc.where)) from None


def beats_document(beats: Sequence[Beat]) -> dict[str, object]:
    """The ``--beats`` JSON: every beat with its time, index, bar and position in the bar."""
    return {
        "sample_rate": 48000,
        "beats": [
            {"time": round(b.seconds, 6), "frame": b.frame, "beat": b.beat, "bar": b.bar,
             "beat_in_bar": b.beat_in_bar, "downbeat": b.downbeat, "bpm": round(b.bpm, 3)}
            for b in beats
        ],
        "bars": [round(b.seconds, 6) for b in beats if b.downbeat],
    }


def _stage_json(path: Path, doc: dict[str, object], option: str) -> Callable[[], None]:
    """Write ``doc`` to a hidden temporary file beside ``path``; return what renames it into place.

    ``render`` stages ``--beats`` before it renames the audio onto ``--out``, so
    a ``--beats`` that cannot be written leaves neither file."""
    from cadenza.runtime.render import temporary_name

    target = Path(os.path.realpath(path)) if os.path.islink(path) else path
    tmp = temporary_name(target)
    try:
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}", where=option) from exc

    def commit() -> None:
        try:
            os.replace(tmp, target)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}", where=option) from exc

    return commit


def cmd_render(args: argparse.Namespace) -> int:
    """``render``: the audio file appears at --out whole or not at all (render.output_file); SIGINT, SIGTERM and
    SIGHUP stop it cleanly (no temporary file left), with exit status 128 + the signal number — also when they
    come while it starts (early_signals). Output paths are checked before any rendering."""
    from cadenza.runtime.render import Stopped, check_output, stop_on_signals

    args.written = False
    try:
        with stop_on_signals() as stop:
            check_output(args.out, "--out")
            for opt in ("beats", "events", "plot"):
                if getattr(args, opt, None):
                    check_output(getattr(args, opt), f"--{opt}")
            named = {os.path.realpath(p): o for o, p in (("--beats", args.beats), ("--events", args.events),
                                                         ("--plot", args.plot)) if p}
            if os.path.realpath(args.out) in named:
                raise UsageError(f"{args.out!r} is also given as {named[os.path.realpath(args.out)]}; "
                                 "give each output a file of its own", where="--out")
            return _render_graph(args, stop.check) if args.graph else _render_prompts(args, stop.check)
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else 2  # SIGINT
        name = exc.name if isinstance(exc, Stopped) else "SIGINT"
        what = f"{args.out} is complete" if args.written else f"nothing was written to {args.out}"
        print(f"cadenza render: stopped by {name}; {what}", file=sys.stderr)
        return 128 + signum


def _render_to_file(args: argparse.Namespace, write: Callable[[Sink], _T],
                    stage: Callable[[_T], Callable[[], None] | None] | None = None) -> _T:
    """``write(sink)`` into a temporary file beside ``--out``, renamed onto it only once complete.

    ``stage(result)``, when given, writes the companion files (``--beats``) to temporary files before the audio
    is renamed and returns what renames them after it: a companion that cannot be written leaves no ``--out``."""
    from cadenza.errors import AudioError
    from cadenza.runtime.render import output_file
    from cadenza.runtime.sinks.file import FileSink, audio_format

    out = str(args.out)
    audio_format(out)  # a bad extension is named as --out, not as the temporary file
    with output_file(out) as tmp:
        try:
            sink = FileSink(tmp, exclusive=True)  # fails on an unwritable folder before any rendering
        except AudioError as exc:
            raise AudioError(exc.message.replace(repr(str(tmp)), repr(out)), where="--out") from exc.__cause__
        try:
            result = write(sink)
        except BaseException:
            with contextlib.suppress(Exception):
                sink.close()
            raise
        sink.close()
        commit = stage(result) if stage is not None else None
    args.written = True
    if commit is not None:
        commit()
    return result


def _render_prompts(args: argparse.Namespace, check_stop: Callable[[], None]) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from cadenza.runtime.backends.base import parse_weighted
    from cadenza.runtime.render import check_seconds, prompt_conductor, render_warnings

    for opt in ("automation", "plot", "events"):
        if getattr(args, opt):
            raise UsageError(f"--{opt} needs --graph", where=f"--{opt}")
    prompts = [parse_weighted(p) for p in args.prompt or []]
    prompts += [_prompt_file(p) for p in args.prompt_file or []]
    if not prompts:
        raise UsageError("give at least one --prompt or --prompt-file (or --graph)", where="render")
    controls = _controls(args)
    args.seconds = 30.0 if args.seconds_given is None else args.seconds_given
    try:
        frames = check_seconds(args.seconds)
    except UsageError as exc:
        raise UsageError(exc.message, where="--seconds") from None
    conductor = prompt_conductor(prompts, controls, seed=args.seed)  # the conductor `serve --prompt` plays through
    err = Console(stderr=True, soft_wrap=True)
    for w in render_warnings(conductor):
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    beats: list[Beat] = []

    def write(sink: Sink) -> None:
        with Progress(TextColumn("rendering"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeRemainingColumn(), console=err, transient=True) as progress:
            task = progress.add_task("render", total=frames)
            for block in conductor.run([], args.seconds):
                check_stop()
                sink.write(block.pcm)
                beats.extend(block.beats)
                progress.advance(task, block.pcm.shape[0])

    def stage(_: None) -> Callable[[], None] | None:
        return _stage_json(Path(args.beats), beats_document(beats), "--beats") if args.beats else None

    _render_to_file(args, write, stage)
    print(f"wrote {args.out} ({frames / 48000:.1f} s, 48 kHz stereo, {len(beats)} beats)")
    return 0


def _prompt_file(text: str) -> WeightedPrompt:
    """A ``--prompt-file PATH[:WEIGHT]`` read as a graph's audio prompt is: a regular file (a FIFO or a device is
    refused at once, never waited on), bounded in size and time, decodable audio; the backend embeds these bytes."""
    from cadenza.runtime.backends.base import AudioPrompt, WeightedPrompt, parse_weighted
    from cadenza.runtime.graph.audio import AudioFileError, check_audio_prompt, read_audio

    wp = parse_weighted(text, audio=True, option="--prompt-file")
    assert isinstance(wp.prompt, AudioPrompt)
    try:
        path, data = read_audio(str(wp.prompt.path), None, None)
        check_audio_prompt(data, path)
    except AudioFileError as exc:
        raise UsageError(exc.message, where="--prompt-file") from None
    return WeightedPrompt(AudioPrompt(wp.prompt.path, data=data), wp.weight)


def _render_graph(args: argparse.Namespace, check_stop: Callable[[], None]) -> int:
    """``render --graph``: a graph preview driven by an automation timeline."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from cadenza.runtime.backends import get_backend
    from cadenza.runtime.graph.automation import load_automation
    from cadenza.runtime.graph.loader import load_graph
    from cadenza.runtime.events import Phase, StateChange, StingerFired
    from cadenza.runtime.preview import PreviewLog, check_automation, plot_preview, run_preview, write_events
    from cadenza.runtime.render import check_seconds

    for opt in ("prompt", "prompt_file", "bpm", "density", "brightness", "scale"):
        if getattr(args, opt):
            flag = "--" + opt.replace("_", "-")
            raise UsageError(f"{flag} cannot be combined with --graph (the graph sets prompts and controls)",
                             where=flag)
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("plotting needs matplotlib: pip install 'cadenza[plot]'", where="--plot") from None
    graph = load_graph(args.graph)
    automation = load_automation(args.automation) if args.automation else []
    check_automation(graph, automation, Path(args.automation).name if args.automation else "automation")
    seconds = args.seconds_given if args.seconds_given is not None else (
        max([a.time for a in automation], default=0.0) + 10.0)
    try:
        frames = check_seconds(seconds)
    except UsageError as exc:
        raise UsageError(exc.message, where="--seconds") from None
    err = Console(stderr=True, soft_wrap=True)

    def write(sink: Sink) -> PreviewLog:
        with Progress(TextColumn("previewing"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeRemainingColumn(), console=err, transient=True) as progress:
            task = progress.add_task("preview", total=frames)
            def advance(n: int) -> None:
                check_stop()
                progress.advance(task, n)

            return run_preview(graph, get_backend("synth"), automation, seconds, sink, seed=args.seed,
                               progress=advance, warn=lambda w: err.print(f"[yellow]warning:[/] {w}", highlight=False))

    def stage(log: PreviewLog) -> Callable[[], None] | None:  # --beats: the beats heard, as render --prompt writes
        return _stage_json(Path(args.beats), beats_document(log.beats), "--beats") if args.beats else None

    log = _render_to_file(args, write, stage)
    if args.events:
        try:
            write_events(log, Path(args.events))
        except OSError as exc:
            raise UsageError(f"cannot write {args.events!r}: {exc.strerror or exc}", where="--events") from exc
    if args.plot:
        plot_preview(log, Path(args.plot), title=f"{graph.name}: {Path(args.graph).name}")
    states = [s for s in dict.fromkeys(log.states) if s]
    path = f"states {' → '.join(states)}; " if states else ""
    stingers = sum(1 for e in log.events if isinstance(e, StingerFired))
    print(f"wrote {args.out} ({log.frames / 48000:.1f} s; {path}"
          f"{sum(1 for e in log.events if isinstance(e, StateChange) and e.phase is Phase.STARTED)} transitions, "
          f"{stingers} stinger{'' if stingers == 1 else 's'})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cadenza.runtime.demo import run_demo

    return run_demo(seconds=args.seconds, out=Path(args.out), device=args.device, wav_only=args.wav_only,
                     seed=args.seed)


def cmd_serve(args: argparse.Namespace) -> int:
    # until the backend is loaded (a model compiling: a minute) nothing plays and no file is open: SIGTERM and
    # SIGINT end the process at once; the server disarms it before it opens its sinks (early_signals)
    early_signals.end_at_once("serve")
    from cadenza.runtime.server import ServerConfig, run_server

    config = ServerConfig(
        backend=args.backend, graph=args.graph, control=args.control, events=args.events,
        audio=None if args.audio in ("none", "") else args.audio, sink=args.sink, lookahead_ms=args.lookahead,
        audio_int16=None if args.audio_int16 == "none" else args.audio_int16,
        seed=args.seed, insecure=args.insecure, curve_secret_key=args.curve_secret_key, prompts=args.prompt or [],
        curve_clients=args.curve_clients, curve_readonly=args.curve_readonly, curve_any_client=args.curve_any_client,
        allow_dirs=args.allow_dir or [],
        backend_options=_backend_options(args),
        ws=args.ws, ws_cert=args.ws_cert,
        ws_token=args.ws_token if args.ws_token is not None else os.environ.get("CADENZA_WS_TOKEN") or None,
        ws_key=args.ws_key, ws_allow_origins=args.ws_allow_origin or [], panel=args.panel,
        **({"rate_limit": args.rate_limit} if args.rate_limit is not None else {}),
        **({"load_timeout_s": args.load_timeout} if args.load_timeout is not None else {}),
    )
    return run_server(config)


def _batch_sizes(text: str | None) -> tuple[int, ...] | None:
    """``--batch-sizes 1,2,3`` → (1, 2, 3); positive integers including 1, each once."""
    if text is None:
        return None
    items = text.split(",")
    if text.strip() and not all(x.strip() for x in items):
        raise UsageError(f"{text!r} has an empty item; give stream counts joined by single commas, e.g. 1,2,3",
                         where="--batch-sizes")
    try:
        given = [int(x) for x in items if x.strip()]
    except ValueError:
        raise UsageError(f"{text!r} is not a list of stream counts; give e.g. 1,2,3", where="--batch-sizes") from None
    twice = sorted({n for n in given if given.count(n) > 1})
    if twice:
        raise UsageError(f"{text!r} gives {', '.join(map(str, twice))} more than once; give each stream count once, "
                         "e.g. 1,2,3", where="--batch-sizes")
    sizes = tuple(sorted(given))
    if not sizes or sizes[0] != 1 or sizes[-1] > 64:
        raise UsageError(f"{text!r}: give stream counts from 1 to 64 that include 1, e.g. 1,2,3",
                         where="--batch-sizes")
    return sizes


def _backend_options(args: argparse.Namespace) -> dict[str, object]:
    """``--model``/``--device``/``--style-model``/``--precision``/``--batch-sizes`` for backends that take them
    (synth takes none)."""
    given = {k: v for k, v in (("model", args.model), ("device", args.device), ("style_model", args.style_model),
                               ("precision", args.precision), ("batch_sizes", _batch_sizes(args.batch_sizes)))
             if v is not None}
    if args.backend == "synth" and given:
        flag = "--" + next(iter(given)).replace("_", "-")
        raise UsageError("only the magenta backend takes it (add --backend magenta)", where=flag)
    if args.backend == "magenta":
        given.setdefault("model", "mrt2_small")
    return given


def cmd_keys(args: argparse.Namespace) -> int:
    from cadenza.runtime.curve import write_keypair

    secret, public = write_keypair(Path(args.dir), args.name, force=args.force)
    print(f"wrote {secret} (secret key, created with mode 0600: keep it on this machine) and {public} (public key: "
          "hand it out).\n"
          f"For a runtime: cadenza serve --curve-secret-key {secret} --curve-clients DIR, and its clients give "
          f"{public.name} as --server-key. For a client: --client-key {secret}, and the operator copies {public.name} "
          "(only the .pub) into the runtime's --curve-clients folder (or --curve-readonly); keep the pair outside "
          "that folder.")
    return 0


def cmd_words(args: argparse.Namespace) -> int:
    from cadenza.runtime.backends.synth import vocabulary

    if args.explain is not None:
        lines = vocabulary.explain(args.explain)  # PromptError (nothing understood) is reported by main()
    elif args.search is not None:
        lines = vocabulary.search_words(args.search) or [f"no word or phrase contains {args.search!r}"]
    else:
        lines = vocabulary.describe_words()
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cadenza", description="Cadenza: live generative music for games and installations.")
    parser.add_argument("--version", action="version", version=f"cadenza {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser("render", help="render prompts offline to a WAV or FLAC file",
                       description="Render weighted prompts offline through the synth backend.")
    r.add_argument("--prompt", action="append", metavar="TEXT[:WEIGHT]",
                   help='a text prompt with an optional weight, e.g. "dark techno:1.0" (repeatable)')
    r.add_argument("--prompt-file", action="append", metavar="PATH[:WEIGHT]",
                   help="an audio prompt (WAV/FLAC) with an optional weight (repeatable)")
    r.add_argument("--bpm", type=_finite, help="tempo, 40–240")
    r.add_argument("--density", type=_finite, help="note and hit density, 0–1")
    r.add_argument("--brightness", type=_finite, help="timbral brightness, 0–1")
    r.add_argument("--scale", help="key and mode, e.g. 'A minor', 'F# dorian'")
    r.add_argument("--mute-bass", action="store_true", help="silence the bass")
    r.add_argument("--mute-drums", action="store_true", help="silence the drums")
    r.add_argument("--seconds", type=_finite, default=None, dest="seconds_given",
                   help="length (default 30; with --graph: the automation's last time + 10)")
    r.add_argument("--seed", type=int, default=0, help="random seed (same seed → same audio)")
    r.add_argument("--out", required=True, help="output file, .wav or .flac")
    r.add_argument("--beats", metavar="JSON", help="also write beat and bar times to this JSON file")
    r.add_argument("--graph", metavar="FILE", help="preview a style graph (YAML/JSON) instead of fixed prompts")
    r.add_argument("--automation", metavar="CSV", help="with --graph: timeline of inputs (time,action,name,value,ramp)")
    r.add_argument("--plot", metavar="PNG", help="with --graph: plot weights, controls, states and transitions")
    r.add_argument("--events", metavar="JSONL", help="with --graph: write the event log (states, stingers, beats)")
    r.set_defaults(func=cmd_render)

    d = sub.add_parser("demo", help="play an adaptive piece (or render it to a WAV without a sound card)",
                       description="An adaptive piece in five game states, from the embedded synth.")
    d.add_argument("--seconds", type=_finite, default=60.0, help="length (default 60)")
    d.add_argument("--out", default="out/demo.wav", help="where the WAV goes (default out/demo.wav)")
    d.add_argument("--device", help="output device name or index (default: the system's)")
    d.add_argument("--wav-only", action="store_true", help="do not play, only write the WAV")
    d.add_argument("--seed", type=int, default=1)
    d.set_defaults(func=cmd_demo)

    sv = sub.add_parser("serve", help="run the live runtime: control, events and audio over ZeroMQ",
                        description="Run the runtime process: a control ROUTER, an events PUB and an audio PUB "
                                    "around the live engine. Binds to loopback unless told otherwise. Under "
                                    "systemd (Type=notify, NOTIFY_SOCKET) it reports READY once audio flows, "
                                    "WATCHDOG pings while it makes progress, STATUS and STOPPING: see "
                                    "examples/installation/.")
    sv.add_argument("--backend", default="synth", choices=["synth", "magenta"],
                    help="music backend (default synth; magenta needs pip install 'cadenza[magenta]')")
    sv.add_argument("--model", help="magenta: mrt2_small (default), mrt2_base or tiny (see cadenza models list)")
    sv.add_argument("--device", choices=["cpu", "gpu", "tpu"],
                    help="magenta: where JAX runs (default: the local accelerator when there is one)")
    sv.add_argument("--style-model", choices=["musiccoca", "mock"],
                    help="magenta: MusicCoCa towers for prompts (default), or the library's mock (tiny's default)")
    sv.add_argument("--precision", choices=["fp32", "bf16"],
                    help="magenta: the depthformer's weights in float32 (default) or bfloat16 (half the bytes)")
    sv.add_argument("--batch-sizes", metavar="N,N,…",
                    help="magenta: stream counts whose batched step is compiled at start-up (default 1,2,3,4,6; "
                         "must include 1; more streams than the largest step in several calls)")
    sv.add_argument("--graph", help="a style graph to load at start")
    sv.add_argument("--prompt", action="append", metavar="TEXT[:WEIGHT]",
                    help="play these weighted prompts at start (no graph)")
    sv.add_argument("--control", default="tcp://127.0.0.1:5555", help="control endpoint (ROUTER)")
    sv.add_argument("--events", default="tcp://127.0.0.1:5556", help="events endpoint (PUB)")
    sv.add_argument("--audio", default="tcp://127.0.0.1:5557", help="audio endpoint (PUB), or 'none'")
    sv.add_argument("--audio-int16", default="", metavar="ENDPOINT",
                    help="the same audio as int16 chunks (half the bytes), or 'none'; default: the --audio port + 1 "
                         "(tcp://127.0.0.1:5558), left out with a log line when that port is taken")
    sv.add_argument("--sink", default="device",
                    help="device | device:NAME | jack | wav:PATH | flac:PATH | null; several joined by commas "
                         "(at most one device), e.g. jack,wav:session.wav. Recordings stay readable past 4 GiB "
                         "(RF64) and after SIGKILL; a full disk pauses them until space returns (then PATH.1.wav); "
                         "SIGHUP starts new files after a rename (logrotate)")
    sv.add_argument("--lookahead", type=_finite, default=30.0, metavar="MS", help="audio kept ahead (default 30 ms)")
    sv.add_argument("--seed", type=int, default=0)
    sv.add_argument("--rate-limit", type=_finite, default=None, metavar="N",
                    help="requests per second one client may send; past it the runtime answers RATE_LIMITED "
                         "(default 100000: effectively off; e.g. 200 for an installation on a shared network)")
    sv.add_argument("--load-timeout", type=_finite, default=None, metavar="SECONDS",
                    help="LoadGraph/SetPrompts not done in this time are answered TIMEOUT and change nothing "
                         "(default 10)")
    sv.add_argument("--insecure", action="store_true", help="allow non-loopback endpoints without encryption")
    sv.add_argument("--curve-secret-key", metavar="FILE", help="CurveZMQ secret key of the server (z85)")
    sv.add_argument("--curve-clients", metavar="DIR",
                    help="with --curve-secret-key: only clients whose public key file (NAME.pub from cadenza keys, "
                         "or a pyzmq .key certificate) is in DIR may connect; re-read when DIR changes")
    sv.add_argument("--curve-readonly", metavar="DIR",
                    help="with --curve-secret-key: clients whose public key is in DIR may connect read-only "
                         "(Hello, GetStatus, events and audio; every other request is PERMISSION_DENIED)")
    sv.add_argument("--curve-any-client", action="store_true",
                    help="with --curve-secret-key on a public endpoint: accept any client key pair (encryption "
                         "without an allow-list; anyone with the server's public key gets control)")
    sv.add_argument("--allow-dir", action="append", metavar="DIR",
                    help="a folder clients may name files in (LoadGraph path, audio prompts, a graph's audio; "
                         "repeatable; once given, only the folders named, --graph's included only if named). Default: the folder "
                         "of --graph; with neither, no client-named file is read")
    sv.add_argument("--ws", metavar="HOST:PORT", action=_Once,
                    help="serve the WebSocket gateway at ws://HOST:PORT/ws (binary Envelopes or JSON; off by default; "
                         "loopback unless --ws-token and TLS or --insecure)")
    sv.add_argument("--ws-token", metavar="TOKEN", action=_Once,
                    help="clients must connect to /ws?token=TOKEN (required off loopback; or env CADENZA_WS_TOKEN; at least "
                         "8 of letters, digits, - . _ ~)")
    sv.add_argument("--ws-cert", metavar="FILE", help="TLS certificate (PEM) for wss://")
    sv.add_argument("--ws-key", metavar="FILE", help="TLS private key (PEM) for wss://")
    sv.add_argument("--ws-allow-origin", action="append", metavar="ORIGIN",
                    help="also accept WebSocket connections from pages of this origin, e.g. http://localhost:3000 "
                         "(repeatable; the panel's own origin and non-browser clients are always accepted; 'null' is "
                         "refused, as any page can send it)")
    sv.add_argument("--panel", action="store_true",
                    help="with --ws: serve the live control panel at http://HOST:PORT/")
    sv.set_defaults(func=cmd_serve)

    ks = sub.add_parser("keys", help="generate a CurveZMQ key pair (for remote clients)")
    ks.add_argument("dir", help="folder to write NAME.key (secret) and NAME.pub (public) into")
    ks.add_argument("--name", default="server", help="file names NAME.key and NAME.pub (default server)")
    ks.add_argument("--force", action="store_true", help="replace an existing key pair of that name")
    ks.set_defaults(func=cmd_keys)

    w = sub.add_parser("words", help="list the words the synth understands in prompts, by category")
    w.add_argument("--search", metavar="TERM", help="only the words and phrases containing TERM, with what they set")
    w.add_argument("--explain", metavar="PROMPT", help="what each word of PROMPT contributes, and the resulting style")
    w.set_defaults(func=cmd_words)

    from cadenza.runtime.backends.magenta.cli import add_models_command
    from cadenza.runtime.osc import add_osc_command

    add_models_command(sub)

    add_osc_command(sub)

    from cadenza.runtime.midi.bridge import add_midi_command

    add_midi_command(sub)

    from cadenza.runtime.ctl import add_ctl_command

    add_ctl_command(sub)

    from cadenza.runtime.graph.cli import add_graph_commands

    graph_sub = add_graph_commands(sub)
    gp = graph_sub.add_parser("plot", help="plot every prompt weight and control against every parameter",
                              description="Sweep each parameter (others at their defaults) and plot the graph's "
                                          "prompt weights and controls.")
    gp.add_argument("file", help="the style graph (YAML/JSON)")
    gp.add_argument("--out", required=True, help="the PNG to write")
    gp.add_argument("--state", help="evaluate in this state (default: the initial state)")
    gp.set_defaults(func=cmd_graph_plot)
    from cadenza.runtime import logs

    for command in sub.choices.values():  # every command logs the same way (runtime/logs.py)
        command.add_argument("--log-level", choices=list(logs.LEVELS), default=logs.DEFAULT_LEVEL,
                             help=f"the least a log line on stderr must matter (default: {logs.DEFAULT_LEVEL})")
    return parser


def cmd_graph_plot(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("plotting needs matplotlib: pip install 'cadenza[plot]'", where="graph plot") from None
    from cadenza.runtime.graph.loader import load_graph
    from cadenza.runtime.graph.plot import plot_graph

    graph = load_graph(args.file)
    n = plot_graph(graph, Path(args.out), state=args.state)
    print(f"wrote {args.out} ({n} parameters × {len(graph.prompts)} prompts)")
    return 0


#: commands that take over the held signals themselves (early_signals.replay once their handlers are in place)
_OWN_SIGNALS = frozenset({"serve", "render"})


def main(argv: Sequence[str] | None = None) -> int:
    early_signals.hold()  # first: a SIGHUP/SIGTERM/SIGINT from here on waits for the command's own handlers
    try:
        return _main(argv)
    finally:
        early_signals.disarm()
        early_signals.release()


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:  # a second Ctrl-C while starting
        print("cadenza: interrupted", file=sys.stderr)
        return 130
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_ERROR
    from cadenza.runtime import logs

    logs.configure(args.command, args.log_level)
    try:
        if args.command not in _OWN_SIGNALS:
            early_signals.release(forget=False)  # the handlers as they were, and what came meanwhile acts on them
            early_signals.replay()  # now (an early Ctrl-C: "interrupted" below, no traceback)
        return int(args.func(args))
    except CadenzaError as exc:
        issues = getattr(exc, "issues", None)
        if issues:  # an invalid graph: one line per problem, each with file:line path
            for issue in issues:
                print(f"cadenza {args.command}: error: {issue}", file=sys.stderr)
        else:
            print(f"cadenza {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except early_signals.Stopped as exc:
        print(f"cadenza {args.command}: stopped by {exc.name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"cadenza {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: say so on one line unless debugging
        if os.environ.get("CADENZA_DEBUG"):
            raise
        print(f"cadenza {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(set CADENZA_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
