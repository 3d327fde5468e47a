"""``cadenza serve``: the runtime process — control ROUTER, events PUB, audio PUB around a live engine.

Threads::

    main thread        ROUTER: decode (wire) → validate → apply under the engine lock → exactly one reply
    load worker        LoadGraph, SetPrompts (files, embeddings) off the control loop, in order, time-bounded;
                       the main thread sends their replies (runtime/loads.py)
    generation thread  LiveEngine: conductor steps → sinks; publishes events and audio on the PUB sockets
    publish thread     owns the events and audio PUB sockets: sends what the generation thread queued
    audio thread       the device sink's PortAudio callback (copies from its ring, nothing else)

Every request gets exactly one reply (Ok, Status, GraphDescription or Error with
code, message and field path), carrying the request id whenever it can be read
from the bytes (``wire.peek_request_id``: TOO_LARGE, RATE_LIMITED and a message
of several frames included); a REQ socket's ``[empty, Envelope]`` is answered
``[empty, reply]``. Bad bytes, unknown names, NaN, oversized or bursty input get
an Error reply (or a dropped connection, for messages past ZMQ_MAXMSGSIZE,
counted in ``Status.control_disconnects``) and a log line; the music keeps
playing. Endpoints bind to loopback unless CurveZMQ keys or ``--insecure`` say
otherwise; the control socket binds only once the runtime is ready to answer,
so a restarted runtime never serves requests clients queued while it started.
The audio chunks go out twice, float32 and int16 (``--audio-int16``), through
bounded queues (:data:`AUDIO_HWM`, :data:`AUDIO_SNDBUF`), so a reader that stops
finds at most about 2.3 s of stale audio waiting (the clients drop what is more than 0.5 s late).

No request can stall the music or other clients: the work each may cause is
bounded (:mod:`cadenza.runtime.limits`: prompts per mix, prompt length, notes,
values per SetParameters, warnings per reply; ``--rate-limit`` requests per
second per client; ``--load-timeout`` for loads) and checked before anything
is applied, so an Error always means nothing changed. What a handler does
under the engine lock (which the generation thread holds across each synth
step; around a magenta model step only to plan and to mix) is small and
bounded: name checks happen before it is taken, embeddings in the load worker. A LoadGraph/SetPrompts past its time bound is answered TIMEOUT
and, having not swapped in yet, never will. Faults of the generation thread
itself are ridden through by the live engine and shown in ``Status.faults``.
"""

from __future__ import annotations

import collections
import gc
import ipaddress
import logging
import math
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import zmq

from cadenza import __version__
from cadenza.errors import AudioError, CadenzaError, GraphError, PromptError, UsageError
from cadenza.proto import wire
from cadenza.proto.cadenza_v1_pb2 import (
    Error,
    GraphDescription,
    ParameterInfo,
    Ok,
    ParameterValue,
    ServerInfo,
    Status,
    Transport,
)
from cadenza.runtime.backends import get_backend
from cadenza.runtime.backends.base import SAMPLE_RATE, Backend
from cadenza.runtime import early_signals
from cadenza.runtime import events as ev
from cadenza.runtime.conductor import Block
from cadenza.runtime.event_wire import to_wire
from cadenza.runtime.curve import ClientGate, Role, read_secret_key
from cadenza.runtime.files import FileOutside, FilePolicy, FileRefused
from cadenza.runtime.limits import (
    LOAD_TIMEOUT_S,
    MAX_NOTES,
    MAX_PARAMETER_VALUES,
    MAX_PROMPT_CHARS,
    MAX_RAMP_S,
    MAX_PROMPTS,
    MAX_STINGER_VOICES,
    bounded_warnings,
)
from cadenza.runtime.live import DEFAULT_LOOKAHEAD_S, LiveEngine, direct_graph
from cadenza.runtime.loads import SLOW_REQUESTS, LoadJob, LoadQueue, release_large_blocks
from cadenza.runtime.notify import Supervisor, supervise
from cadenza.runtime.sinks.base import ClockSink, Sink

log = logging.getLogger(__name__)

DEFAULT_CONTROL = "tcp://127.0.0.1:5555"
DEFAULT_EVENTS = "tcp://127.0.0.1:5556"
DEFAULT_AUDIO = "tcp://127.0.0.1:5557"
RATE_LIMIT_PER_S = 100_000  # requests per second per client (token bucket)
EVENT_HWM = 10_000  # queued events per subscriber before ZeroMQ drops (a slow consumer never stalls us)
AUDIO_HWM = 250  # queued audio chunks per subscriber (2.5 s of 10 ms chunks: a whole 2 s model step, and a reader
# that stalls on a busy machine, lose nothing), besides the kernel's buffers; the clients drop what went stale
AUDIO_SNDBUF = 64 * 1024  # the kernel's send buffer per float32 audio subscriber (bytes; Linux doubles it)
AUDIO16_SNDBUF = AUDIO_SNDBUF // 2  # int16 chunks are half the bytes: the same 0.3 s of audio as float32's buffer
REPLY_HWM = 1_000  # queued replies per client before dropping
REQUEST_HWM = 16  # requests read ahead per client before pushing back (at most 4 MiB each: ZMQ_MAXMSGSIZE)
GIVE_WAY_EVERY = 32  # requests handled between looks at the generation thread's lead
GIVE_WAY_MAX_S = 0.02  # the longest the control loop waits for generation to catch up, per look
# the socket flags as plain ints: pyzmq's flags are enum.IntFlag, and `SNDMORE | NOBLOCK` or `x & POLLIN` on them
# runs enum's Python code for every request
_NOBLOCK: int = int(zmq.NOBLOCK)
_SNDMORE_NOBLOCK: int = int(zmq.SNDMORE | zmq.NOBLOCK)
_POLLIN: int = int(zmq.POLLIN)
_send = zmq.backend.Socket.send  # the compiled send under zmq.Socket.send's routing_id/group wrapper
_INTENSITY = frozenset({"intensity"})  # the built-in parameter every graph takes
# requests up to this size are decoded in the serve loop; bigger ones are routed by their bytes
# (wire.peek_request_kind): a flood of 1 MiB graphs decoded there held the interpreter lock for ~2 ms each, in
# C calls the generation thread waited out every time it came back for the lock, and the music fell behind
DECODE_IN_LOOP_BYTES = 64 << 10


def int16_endpoint(audio: str) -> str:
    """The default int16 audio endpoint beside ``audio``: TCP port + 1 (``*`` stays ``*``), ipc/inproc + ``.int16``."""
    if audio.startswith("tcp://"):
        host, _, port = audio.rpartition(":")
        return f"{host}:{int(port) + 1}" if port.isdigit() else audio
    return f"{audio}.int16"


def is_loopback(endpoint: str) -> bool:
    """True for endpoints only this machine can reach (loopback TCP, ipc, inproc)."""
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a hostname: reachable from outside


@dataclass
class ServerConfig:
    backend: str = "synth"
    graph: str | None = None
    control: str = DEFAULT_CONTROL
    events: str = DEFAULT_EVENTS
    audio: str | None = DEFAULT_AUDIO
    # the same chunks as int16: "" = the audio endpoint's port + 1 (skipped, with a log line, when taken), None = off
    audio_int16: str | None = ""
    sink: str = "device"
    lookahead_ms: float = DEFAULT_LOOKAHEAD_S * 1000
    seed: int = 0
    insecure: bool = False
    curve_secret_key: str | None = None  # a file with the server's z85 secret key
    curve_clients: str | None = None  # a folder of client public keys allowed to control the runtime
    curve_readonly: str | None = None  # a folder of client public keys allowed status and events only
    curve_any_client: bool = False  # CURVE on a public endpoint without an allow-list (encryption only)
    allow_dirs: list[str] = field(default_factory=list)  # folders client-named files may come from
    rate_limit: float = RATE_LIMIT_PER_S
    load_timeout_s: float = LOAD_TIMEOUT_S  # LoadGraph/SetPrompts answered TIMEOUT (nothing applied) past this
    prompts: list[str] = field(default_factory=list)
    backend_options: dict[str, object] = field(default_factory=dict)  # model, device, style_model (magenta)
    ws: str | None = None  # the WebSocket gateway's HOST:PORT (runtime/ws_gateway.py); None: off
    ws_token: str | None = None
    ws_cert: str | None = None
    ws_key: str | None = None
    ws_allow_origins: list[str] = field(default_factory=list)
    panel: bool = False  # the control panel's files on the gateway's port

    def gateway_config(self) -> Any:
        """The WebSocket gateway's settings (None without --ws); checked, UsageError naming the option."""
        if self.ws is None:
            return None
        from cadenza.runtime.ws_gateway import GatewayConfig

        gw = GatewayConfig(self.ws, token=self.ws_token, certfile=self.ws_cert, keyfile=self.ws_key,
                           insecure=self.insecure, allow_origins=tuple(self.ws_allow_origins), panel=self.panel,
                           rate_limit=self.rate_limit)
        gw.check()
        return gw

    def __post_init__(self) -> None:
        if not (1.0 <= self.lookahead_ms <= 2000.0):
            raise UsageError(f"must be between 1 and 2000 ms, got {self.lookahead_ms!r}", where="--lookahead")
        if not (self.rate_limit >= 1.0):
            raise UsageError(f"must be at least 1 request per second, got {self.rate_limit!r}", where="--rate-limit")
        if not (0.1 <= self.load_timeout_s <= 3600.0):
            raise UsageError(f"must be between 0.1 and 3600 s, got {self.load_timeout_s!r}", where="--load-timeout")
        for opt, ep in (("--control", self.control), ("--events", self.events), ("--audio", self.audio),
                        ("--audio-int16", self.audio_int16 or None)):
            if ep is None:
                continue
            if not ep.startswith(("tcp://", "ipc://", "inproc://")):
                raise UsageError(f"endpoint {ep!r} must start with tcp://, ipc:// or inproc://", where=opt)
            if not is_loopback(ep) and not (self.insecure or self.curve_secret_key):
                raise UsageError(
                    f"{ep!r} is reachable from other machines; give --curve-secret-key FILE (clients then need "
                    "the server's public key) or --insecure to allow it without encryption", where=opt)
            if (not is_loopback(ep) and self.curve_secret_key and not self.insecure
                    and not (self.curve_clients or self.curve_readonly or self.curve_any_client)):
                raise UsageError(
                    f"{ep!r} is reachable from other machines and CURVE alone lets in any client that has the "
                    "server's public key; give --curve-clients DIR (the public keys of the clients allowed in) or "
                    "--curve-any-client to allow every key pair", where=opt)
        for opt, folder in (("--curve-clients", self.curve_clients), ("--curve-readonly", self.curve_readonly)):
            if folder is not None and not self.curve_secret_key:
                raise UsageError("a client allow-list needs CURVE: give --curve-secret-key FILE too", where=opt)
        if self.curve_any_client and (self.curve_clients or self.curve_readonly):
            raise UsageError("--curve-any-client contradicts --curve-clients/--curve-readonly (an allow-list)",
                             where="--curve-any-client")
        for folder in self.allow_dirs:
            if not os.path.isdir(folder):
                raise UsageError(f"{folder!r} is not a folder", where="--allow-dir")
        if self.ws is None and (self.panel or self.ws_token or self.ws_cert or self.ws_key or self.ws_allow_origins):
            raise UsageError("the panel and the --ws-* options need the WebSocket gateway: give --ws HOST:PORT too "
                             "(e.g. --ws 127.0.0.1:8765)", where="--panel" if self.panel else "--ws-token")
        self.gateway_config()


FILE_RETRY_S = 1.0  # a paused file sink (disk full …) tries again this often

SINK_KINDS = ("device", "jack", "wav", "flac", "file", "null")


def split_sink_specs(spec: str) -> list[str]:
    """``"jack,wav:out.wav"`` → ``["jack", "wav:out.wav"]``: a comma starts a new sink only before a sink kind,
    so a path may hold commas."""
    parts = re.split(r",(?=\s*(?:%s)(?::|,|$))" % "|".join(SINK_KINDS), spec)
    return [p.strip() for p in parts]


def make_sink(spec: str) -> tuple[Sink, ClockSink | None]:
    """``device``, ``jack``, ``device:NAME``, ``wav:PATH``, ``flac:PATH``, ``null`` → (sink, clock sink or None)."""
    from cadenza.runtime.sinks.file import FileSink
    from cadenza.runtime.sinks.null import NullSink

    kind, _, arg = spec.partition(":")
    if kind in ("device", "jack"):
        from cadenza.runtime.sinks.device import DeviceSink

        device = arg or ("jack" if kind == "jack" else None)
        try:
            sink = DeviceSink(device, buffer_seconds=1.0, latency="low")
        except AudioError as exc:  # no sound card (a server, a container): say how to run without one
            raise AudioError(f"{exc.message} — to run without a sound card: --sink null (clients still get the events "
                             "and the audio socket) or --sink wav:PATH (a recording)", where=exc.where) from exc
        return sink, sink
    if kind in ("wav", "flac", "file"):
        if not arg:
            raise UsageError(f"{spec!r} needs a path, e.g. wav:out.wav", where="--sink")
        return FileSink(arg, retry_s=FILE_RETRY_S, name=spec), None  # pauses on a full disk, resumes (sinks/file.py)
    if kind == "null":
        return NullSink(), None
    raise UsageError(f"unknown sink {spec!r}. Available: device, device:NAME, jack, wav:PATH, flac:PATH, null; "
                     "several at once separated by commas, e.g. jack,wav:out.wav", where="--sink")


def make_sinks(spec: str) -> tuple[list[Sink], list[str], ClockSink | None]:
    """One sink per comma-separated spec (at most one device): (sinks, their specs, the clock sink or None).

    A sink that cannot open closes the ones opened before it.
    """
    specs = split_sink_specs(spec)
    devices = [s for s in specs if s.partition(":")[0] in ("device", "jack")]
    if len(devices) > 1:
        raise UsageError(f"{spec!r} names {len(devices)} audio devices ({', '.join(devices)}); one device sink at "
                         "most (it is the clock the runtime plays to)", where="--sink")
    files: dict[str, str] = {}  # the file a sink writes (symlinks and spellings resolved) → its spec
    for one in specs:
        kind, _, arg = one.partition(":")
        if kind in ("wav", "flac", "file") and arg:
            real = os.path.realpath(arg)
            if real in files:
                raise UsageError(f"{files[real]!r} and {one!r} name the same file {real!r}; each file sink needs a "
                                 "file of its own (two sinks would write over each other)", where="--sink")
            files[real] = one
    sinks: list[Sink] = []
    clock: ClockSink | None = None
    try:
        for one in specs:
            sink, c = make_sink(one)
            sinks.append(sink)
            clock = clock or c
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks, specs, clock


class _Bucket:
    """Token bucket per client identity: RATE_LIMITED past the limit, never a stall."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens: dict[bytes, tuple[float, float]] = {}

    def allow(self, ident: bytes) -> bool:
        now = time.monotonic()
        tokens, last = self.tokens.get(ident, (self.rate, now))
        tokens = min(self.rate, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self.tokens[ident] = (tokens, now)
            return False
        self.tokens[ident] = (tokens - 1.0, now)
        if len(self.tokens) > 10_000:  # forget idle clients
            cutoff = now - 60.0
            self.tokens = {k: v for k, v in self.tokens.items() if v[1] > cutoff}
        return True


class _Publisher:
    """Sends on the PUB sockets from a thread of its own, so that nothing a subscriber does delays generation.

    ZeroMQ applies the subscriptions a SUB sends (any number, each up to
    ZMQ_MAXMSGSIZE) inside the ``send`` of the thread that owns the PUB
    socket: a subscriber with large subscriptions held the generation thread
    for hundreds of milliseconds. Messages are queued in order (so per-topic
    sequences stay in order) and dropped, counted, when the queue is full or
    ZeroMQ's high-water mark is reached — a slow or hostile subscriber never
    stalls the music.
    """

    MAX_QUEUED = 10_000

    def __init__(self) -> None:
        self._queue: collections.deque[tuple[zmq.Socket[bytes], list[bytes]]] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self.dropped = 0  # messages dropped, all sockets
        self.dropped_on: collections.Counter[zmq.Socket[bytes]] = collections.Counter()  # … per socket
        self._thread = threading.Thread(target=self._run, name="cadenza-publish", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
        """Queue one message (any thread; the generation thread in practice)."""
        if len(self._queue) >= self.MAX_QUEUED:
            self.dropped += 1
            self.dropped_on[sock] += 1
            return
        self._queue.append((sock, frames))
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait(0.1)
            self._wake.clear()
            while self._queue:
                sock, frames = self._queue.popleft()
                try:
                    sock.send_multipart(frames, zmq.NOBLOCK)
                except zmq.ZMQError:  # zmq.Again at the high-water mark
                    self.dropped += 1
                    self.dropped_on[sock] += 1
            if self._stopping:
                return

    def stop(self, timeout: float = 2.0) -> bool:
        """Send what is queued, stop; False if the thread is still busy (then its sockets must stay open)."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()


class Server:
    """The runtime process's sockets and request handlers."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.session_id = uuid.uuid4().hex
        options = dict(config.backend_options)
        self.backend: Backend = get_backend(config.backend, **options)
        early_signals.disarm()  # loaded: from here on a signal stops the runtime cleanly (cli.cmd_serve armed it)
        sinks, sink_names, clock = make_sinks(config.sink)
        self.sink = sinks[0]
        # client-named files (LoadGraph.path, base_dir, SetPrompts.audio_path, a graph's audio) come from these only
        self.files = FilePolicy.of(config.allow_dirs if config.allow_dirs else
                                   [os.path.dirname(os.path.abspath(config.graph))] if config.graph else [])
        self.ctx = zmq.Context()
        if config.ws:  # before the first socket (later it has no effect): a DEALER per WebSocket connection
            self.ctx.set(zmq.MAX_SOCKETS, 4096)
        self._secret: bytes | None = None
        self.gate: ClientGate | None = None
        if config.curve_secret_key:
            self._secret = read_secret_key(config.curve_secret_key)
            if config.curve_clients or config.curve_readonly:
                self.gate = ClientGate(self.ctx, config.curve_clients, config.curve_readonly)
                self.gate.start()  # before any bind: no handshake goes unchecked
            else:
                log.warning("CURVE without an allow-list: any client key pair is accepted (encryption only; "
                         "--curve-clients DIR admits only the keys in DIR)")
        # requests ZeroMQ reads ahead per client before it stops reading that connection (TCP pushes back): a
        # pipelining client's 1 MiB requests wait in its own memory, not ours (loads.py bounds what we keep).
        # Set before bind: the listener copies the options its connections get.
        # bound by serve(), just before its loop: a restarting runtime takes no connection (and so no request a
        # client has given up on meanwhile) while it loads its backend and graph (see wire-facts, reconnect)
        self.control = self._socket(zmq.ROUTER, config.control, before_bind={zmq.RCVHWM: REQUEST_HWM}, bind=False)
        # a reply that cannot be queued (the client never reads, or is gone) fails at once and is counted
        self.control.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.control.setsockopt(zmq.SNDHWM, REPLY_HWM)
        self.events_sock = self._socket(zmq.PUB, config.events, before_bind={zmq.SNDHWM: EVENT_HWM})
        # PUB drops the newest chunks at the HWM: what waits for a reader that stopped is the oldest audio, as old
        # as its pause; these bound how much (about 1.3 s with the client's own buffers), the client drops it
        audio_options: dict[int, int] = {zmq.SNDHWM: AUDIO_HWM, zmq.SNDBUF: AUDIO_SNDBUF}
        self.audio_sock = self._socket(zmq.PUB, config.audio, before_bind=audio_options) if config.audio else None
        self.audio16_sock: zmq.Socket[bytes] | None = None
        if config.audio and config.audio_int16 is not None:
            explicit = bool(config.audio_int16)
            int16 = config.audio_int16 or int16_endpoint(config.audio)
            try:
                if not explicit and int16 in (config.control, config.events):  # the control socket binds later
                    raise UsageError(f"{int16!r} (the --audio port + 1) is the --control or --events endpoint")
                self.audio16_sock = self._socket(zmq.PUB, int16,
                                                 before_bind={**audio_options, zmq.SNDBUF: AUDIO16_SNDBUF})
            except UsageError as exc:
                if explicit:
                    raise UsageError(exc.message, where="--audio-int16") from None
                log.warning(f"no int16 audio socket: {exc.message} (give --audio-int16 ENDPOINT, or 'none')")
        self.endpoints = {name: sock.getsockopt_string(zmq.LAST_ENDPOINT) for name, sock in (
            ("events", self.events_sock), ("audio", self.audio_sock), ("audio_int16", self.audio16_sock))
            if sock is not None}  # "control" once it is bound (serve)
        # the WebSocket gateway (--ws) speaks to these sockets over inproc endpoints of its own: in-process only,
        # no CURVE handshake (runtime/ws_gateway.py); started by serve() once the control socket is bound
        self.gateway: Any = None
        self._gateway_config = config.gateway_config()
        self._inproc: dict[str, str] = {}
        if self._gateway_config is not None:
            for name, sock in (("events", self.events_sock), ("audio", self.audio_sock),
                               ("audio_int16", self.audio16_sock)):
                if sock is not None:
                    self._inproc[name] = f"inproc://cadenza-ws-{self.session_id}-{name}"
                    sock.bind(self._inproc[name])
        self.seq: dict[str, int] = {}
        self.audio_seq = 0
        self.publisher = _Publisher()
        self.requests = 0
        # (keys fixed up front: Status copies it from another thread)
        # what this runtime did with the requests it was sent: kinds = executed (answered Ok, Status or
        # GraphDescription); "refused" = answered with an Error, but for "rate_limited" (RATE_LIMITED)
        self.request_counts: dict[str, int] = dict.fromkeys([*(k.value for k in wire.RequestKind), "refused",
                                                             "rate_limited"], 0)
        self.control_connections = 0
        self.control_disconnects = 0
        self._monitor: zmq.Socket[bytes] | None = self.control.get_monitor_socket(
            zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        self.errors = 0
        self.replies_dropped = 0
        self._last_status = -1.0
        self.bucket = _Bucket(config.rate_limit)
        self.live = LiveEngine(self.backend, sinks, lookahead_s=config.lookahead_ms / 1000.0, seed=config.seed,
                               publish=self._publish, clock_sink=clock, sink_names=sink_names)
        self.handlers: dict[str, Callable[[Any], Any]] = {
            wire.RequestKind.HELLO: self._hello,
            wire.RequestKind.LOAD_GRAPH: self._load_graph,
            wire.RequestKind.SET_PARAMETERS: self._set_parameters,
            wire.RequestKind.TRIGGER: self._trigger,
            wire.RequestKind.SET_STATE: self._set_state,
            wire.RequestKind.SET_PROMPTS: self._set_prompts,
            wire.RequestKind.SET_CONTROLS: self._set_controls,
            wire.RequestKind.TRANSPORT: self._transport,
            wire.RequestKind.GET_STATUS: lambda body: self.status(with_server=True),
            wire.RequestKind.DESCRIBE_GRAPH: self._describe,
            wire.RequestKind.SUBSCRIBE: _subscribe_over_zeromq,
        }
        if config.graph:
            from cadenza.runtime.graph.loader import load_graph

            for warning in self.live.load(load_graph(config.graph)).mixer.warnings:  # as LoadGraph's reply says
                log.warning(f"{config.graph}: {warning}")
        elif config.prompts:
            from cadenza.runtime.backends.base import parse_weighted

            triples = []
            for p in config.prompts:
                wp = parse_weighted(p)
                triples.append((str(wp.prompt), None, wp.weight))
            self.live.load(direct_graph(triples))
        self._stopping = False
        self.turns = 0  # control-loop turns: the service manager's watchdog checks that they go on
        self.gave_way = 0  # milliseconds the control loop waited for generation to catch up (audio first)
        self.supervisor: Supervisor | None = None  # systemd notify (READY, WATCHDOG, STATUS, STOPPING)
        self.loads: LoadQueue | None = None  # LoadGraph/SetPrompts off the control loop (started by serve)

    def _socket(self, kind: int, endpoint: str, before_bind: dict[int, int] | None = None,
                bind: bool = True) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self.ctx.socket(kind)
        for option, value in (before_bind or {}).items():
            sock.setsockopt(option, value)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, wire.SOCKET_MAX_MESSAGE_BYTES)
        if self._secret is not None:
            sock.setsockopt(zmq.CURVE_SERVER, 1)
            sock.setsockopt(zmq.CURVE_SECRETKEY, self._secret)
        if bind:
            self._bind(sock, endpoint)
        return sock

    @staticmethod
    def _bind(sock: zmq.Socket[bytes], endpoint: str) -> None:
        try:
            sock.bind(endpoint)
        except zmq.ZMQError as exc:
            sock.close(0)
            raise UsageError(f"cannot bind {endpoint!r}: {exc}") from exc

    # --------------------------------------------------------------- events
    def _emit(self, topic: str, stream_time: int, payload: Any, heard: tuple[int, float] | None = None) -> None:
        """Publish one event; ``heard`` is the engine's heard clock (:meth:`LiveEngine.heard_clock`) → heard_at."""
        seq = self.seq.get(topic, 0) + 1
        self.seq[topic] = seq
        stream_time = max(0, stream_time)
        heard_at = max(0.0, heard[1] + (stream_time - heard[0]) / SAMPLE_RATE) if heard is not None else 0.0
        self.publisher.put(self.events_sock, wire.encode_event(topic, seq, stream_time, payload, heard_at=heard_at))

    def _publish(self, block: Block | None, extra: list[ev.Event]) -> None:
        """Called by the generation thread after every step; the publish thread sends."""
        now_frame = self.live.frame
        heard = self.live.heard_clock()  # one reading per step: every event's heard_at on the same clock
        for event in [*(block.events if block is not None else ()), *extra]:
            for topic, stream_time, payload in to_wire(event):
                self._emit(topic, stream_time, payload, heard)
        now = now_frame / SAMPLE_RATE
        if now - self._last_status >= 1.0:
            self._last_status = now
            self._emit("status", now_frame, self.status(with_server=True), heard)
        # audio chunks: every block played, and the silence before the first graph (a client can tell "nothing
        # loaded yet" from "audio dead"); none while paused (Transport PAUSE/STOP: the chunks stop, the clock runs)
        if self.audio_sock is not None and (block is not None or self.live.playing):
            if block is not None:
                frame, pcm = block.frame, block.pcm
            else:  # no graph yet: the engine wrote its block of silence, which ends at now_frame
                pcm = self.live.silence
                frame = now_frame - pcm.shape[0]
            self.audio_seq += 1
            self.publisher.put(self.audio_sock, [wire.encode_audio(self.audio_seq, frame, pcm)])
            if self.audio16_sock is not None:  # the same chunk, half the bytes
                self.publisher.put(self.audio16_sock, [wire.encode_audio(self.audio_seq, frame, pcm,
                                                                         sample_format="int16")])

    # ------------------------------------------------------------- requests
    def server_info(self) -> ServerInfo:
        caps = self.backend.capabilities
        return ServerInfo(protocol_version=wire.PROTOCOL_VERSION, supported_versions=wire.SUPPORTED_VERSIONS,
                          server_version=__version__, backend=self.backend.name, controls=sorted(caps.controls),
                          audio_prompts=caps.audio_prompts, beat_grid=caps.beat_grid, sample_rate=SAMPLE_RATE,
                          channels=caps.channels, session_id=self.session_id, endpoints=self.endpoints)

    def status(self, with_server: bool = False) -> Status:
        live = self.live
        st = Status(stream_time=live.frame, playing=live.playing, xruns=live.stats.xruns,
                    lookahead_ms=1000.0 * live.lookahead_s, event_sequences=dict(self.seq),
                    audio_sequence=self.audio_seq, events_dropped=self.publisher.dropped_on[self.events_sock],
                    replies_dropped=self.replies_dropped, sink_faults=dict(live.failed_sinks),
                    faults=dict(live.faults), faults_total=live.faults_total)
        if with_server:
            st.server.CopyFrom(self.server_info())
        with live.lock:
            c = live.conductor
            if c is not None:
                st.graph_loaded = c.graph.source != "<set_prompts>"
                st.graph_name = c.graph.name
                st.state = c.engine.state or ""
                for name, value in c.engine.params.items():
                    pv = ParameterValue()
                    if isinstance(value, str):
                        pv.label = value
                    elif value is not None:
                        pv.number = float(value)
                    st.parameters[name].CopyFrom(pv)
                w = c.deck_a.weights
                for k, v in w.items():
                    st.weights[k] = float(v)
                controls = {k: v for k, v in c.overrides.items()}
                st.controls.CopyFrom(wire.controls_from_mapping(controls))
                st.effective_controls.CopyFrom(_effective_controls(c))
                pending = c.pending_state()  # a quantized change waiting for its beat or bar
                if pending is not None:  # while paused the sample is not known yet (it depends on PLAY): 0
                    st.pending_state = pending[0]
                    st.pending_state_time = max(0, pending[1]) if live.playing else 0
        st.control_disconnects = self.control_disconnects
        st.control_connections = self.control_connections
        counts = dict(self.request_counts)
        if self.loads is not None:  # RATE_LIMITED because too much of the client's work waited behind its loads
            counts["rate_limited"] += self.loads.refused
        for kind, count in counts.items():
            if count:
                st.requests[kind] = count
        # the heard clock: the sample leaving the output now, and now (see LiveEngine.heard_clock)
        frame, unix = live.heard_clock()
        heard = max(0, frame + round((time.time() - unix) * SAMPLE_RATE))
        st.heard_time = heard
        st.unix_time = unix + (heard - frame) / SAMPLE_RATE
        return st

    def _describe(self, body: Any) -> GraphDescription:
        """DescribeGraph: what the loaded graph offers, with the current values (NOT_READY without one)."""
        with self.live.lock:
            c = self._conductor("DescribeGraph")
            return describe_graph(c)

    def _hello(self, body: Any) -> Status:
        wire.negotiate_version(body)
        return self.status(with_server=True)

    def _load_graph(self, body: Any) -> Ok:
        conductor = self.live.load(self._graph_of(body))
        return Ok(stream_time=self.live.frame, warnings=list(conductor.mixer.warnings) + _overrides_kept(conductor)
                  + _model_clamps(self.backend, conductor.graph))

    def _graph_of(self, body: Any) -> Any:
        """The graph a LoadGraph names, every file it reads confined to the allowed folders (:attr:`files`).

        ``path``: the graph file must lie in an allowed folder (else FileOutside, PERMISSION_DENIED, the same
        words whether it exists or not; its contents are never read, so never quoted). Inside one, a file that
        is no style graph at all (no ``cadenza_graph`` key anywhere: a key file, a ``.env``, notes) is refused
        without a word of it, since the loader's errors quote what they refuse. ``text``: its relative audio
        paths resolve against ``base_dir`` (the folder the client read it from), and every audio file must lie
        in an allowed folder; without ``base_dir`` a relative audio path is refused.
        """
        from cadenza.runtime.graph.loader import MAX_BYTES, GraphIssue, InvalidGraph, loads_graph

        if body.WhichOneof("source") == "path":
            self.files.resolve(body.path, where="load_graph.path")  # refused here: the field is named
            try:
                path, data = self.files.read(body.path, where="load_graph.path", max_bytes=MAX_BYTES)
            except FileOutside:
                raise
            except FileRefused as exc:  # inside an allowed folder: missing, a FIFO, a device, too big
                raise InvalidGraph([GraphIssue(body.path, None, "", exc.message)]) from None
            if not any(_GRAPH_KEY.encode(enc) in data for enc in ("utf-8", "utf-16-le", "utf-16-be")):
                raise InvalidGraph([GraphIssue(body.path, 1, "", (
                    f"not a style graph: the file has no {_GRAPH_KEY!r} key (a style graph starts with "
                    f"'{_GRAPH_KEY}: 1'); nothing of it is quoted"))])
            return loads_graph(data, source=body.path, base_dir=path.parent, files=self.files)
        base_dir = body.base_dir or None
        if base_dir is not None and not os.path.isabs(base_dir):
            raise wire.WireError(Error.BAD_VALUE, f"base_dir must be an absolute folder path, got {base_dir!r}",
                                 field="load_graph.base_dir")
        return loads_graph(body.text, source="<load_graph>", base_dir=base_dir, files=self.files)

    def _prompt_file(self, name: str, where: str) -> tuple[str, bytes]:
        """SetPrompts' audio_path: inside the allowed folders, a regular file of bounded size that decodes; its
        resolved path and bytes (read once: the backend embeds these bytes)."""
        from cadenza.runtime.graph.audio import MAX_AUDIO_BYTES, AudioFileError, check_audio_prompt

        path, data = self.files.read(name, where=where, max_bytes=MAX_AUDIO_BYTES)
        try:
            check_audio_prompt(data, path)
        except AudioFileError as exc:
            raise FileRefused(exc.message, where=where) from None
        return str(path), data

    def _conductor(self, what: str) -> Any:
        c = self.live.conductor
        if c is None:
            raise wire.WireError(Error.NOT_READY, f"no graph loaded: send LoadGraph (or SetPrompts) before {what}")
        return c

    def _set_parameters(self, body: Any) -> Ok:
        # one pass over the updates (protobuf makes a wrapper per element per pass, and every request meets cold
        # caches while the model generates): the names and values here serve the checks, the engine and the warnings
        updates = body.values
        kwargs: dict[str, Any] = {"bypass": body.bypass, "clamp": body.clamp}
        if body.HasField("ramp_seconds"):
            if body.ramp_seconds > MAX_RAMP_S:
                raise wire.WireError(Error.BAD_VALUE, f"ramp_seconds {body.ramp_seconds!r} is over the limit of "
                                     f"{MAX_RAMP_S:g} s; nothing was applied: ramp in steps, or send the value later",
                                     field="set_parameters.ramp_seconds")
            kwargs["ramp"] = body.ramp_seconds
            kwargs["shape"] = wire.RAMP_SHAPE_NAMES.get(body.ramp_shape, "linear")
        if len(updates) > MAX_PARAMETER_VALUES:
            raise wire.WireError(Error.TOO_LARGE, f"{len(updates):,} values in one SetParameters, over the limit "
                                 f"of {MAX_PARAMETER_VALUES:,}; send them in several requests",
                                 field="set_parameters.values")
        c = self._conductor("SetParameters")
        items = [(u.name, wire.parameter_value(u)) for u in updates]
        values = dict(items)
        if not c.graph.parameters.keys() >= values.keys() - _INTENSITY:
            self._check_parameter_names(c, body)  # outside the lock: 10,000 unknown names cost the music nothing
        if values and body.bypass and "ramp" in kwargs:  # the two fields conflict, not a value: name the field
            raise wire.WireError(Error.BAD_VALUE, "ramp_seconds and bypass exclude each other (bypass jumps at "
                                 "once); nothing was applied: send one of them", field="set_parameters.bypass")
        with self.live.lock:
            if self.live.conductor is not c:  # a new graph came in meanwhile
                c = self._conductor("SetParameters")
                self._check_parameter_names(c, body)
            try:
                c.engine.set_many(values, **kwargs)
            except UsageError as exc:
                name = (exc.where or "").removeprefix("parameters.")
                idx = next((i for i, u in enumerate(updates) if u.name == name), 0)
                which = updates[idx].WhichOneof("value") if updates else None  # the full path: .number
                raise wire.WireError(Error.BAD_VALUE, str(exc), field=f"set_parameters.values[{idx}]"
                                     + (f".{which}" if which else "")) from exc
        return Ok(stream_time=self.live.frame, warnings=_rounded(c.graph.parameters, items))

    @staticmethod
    def _check_parameter_names(c: Any, body: Any) -> None:
        """UNKNOWN_NAME for the first name the graph does not declare, counting the others (a bounded message)."""
        known = c.graph.parameters
        unknown = [i for i, upd in enumerate(body.values) if upd.name not in known and upd.name != "intensity"]
        if unknown:
            i = unknown[0]
            others = len({body.values[j].name for j in unknown}) - 1  # names, not repeats of one name
            more = f" (and {others:,} more unknown names)" if others else ""
            listed = ", ".join(sorted(known)[:50])
            if len(known) > 50:
                listed += f", … ({len(known)} in all)"
            listed = f"{listed}, and the built-in intensity" if listed else "only the built-in intensity"
            raise wire.WireError(Error.UNKNOWN_NAME, f"unknown parameter {body.values[i].name!r}{more}; nothing was "
                                 f"applied; parameters: {listed}", field=f"set_parameters.values[{i}].name")

    def _trigger(self, body: Any) -> Ok:
        with self.live.lock:
            c = self._conductor("Trigger")
            if body.name not in c.graph.triggers:
                raise wire.WireError(Error.UNKNOWN_NAME, f"unknown trigger {body.name!r}; triggers: "
                                     f"{', '.join(sorted(c.graph.triggers)) or '(none)'}", field="trigger.name")
            c.engine.trigger(body.name)
            at = c.heard_at("trigger", body.name)  # its quantized stinger (or state change), else the next block
            refused = c.stinger_cooldown(body.name)
            no_voice = c.claim_voice(body.name) if refused is None else None  # the first requested in a tick play
            if no_voice is not None:  # heard: its state change, else nothing (now)
                target = c.graph.triggers[body.name].set_state
                at = c.heard_at("state", target) if target is not None else c.stream_frame
            playing = self.live.playing
        warnings = [] if refused is None else [
            f"stinger_refused: trigger {body.name!r} fired, but its stinger {refused[0]!r} is in its cooldown for "
            f"{refused[1]:.2f} s more: it does not play"]
        if no_voice is not None:
            why = (f"{no_voice[1]} stingers requested before it start in the same tick and at most "
                   f"{MAX_STINGER_VOICES} sound at once" if no_voice[1] else
                   "a copy of it requested before starts at the same sample")
            warnings.append(f"stinger_refused: trigger {body.name!r} fired, but its stinger {no_voice[0]!r} gets no "
                            f"voice: {why}: it does not play")
        if not playing:  # paused: when it is heard depends on when PLAY comes; the events will say
            return Ok(warnings=warnings)
        return Ok(stream_time=max(0, at), warnings=warnings)

    def _set_state(self, body: Any) -> Ok:
        with self.live.lock:
            c = self._conductor("SetState")
            if body.name not in c.graph.states:
                raise wire.WireError(Error.UNKNOWN_NAME, f"unknown state {body.name!r}; states: "
                                     f"{', '.join(sorted(c.graph.states)) or '(none)'}", field="set_state.name")
            c.engine.set_state(body.name)
            at = c.heard_at("state", body.name)  # the beat or bar its transition rule quantizes it to
            playing = self.live.playing
        # paused: when it is heard depends on when PLAY comes (its SCHEDULED event says, once playing)
        return Ok(stream_time=max(0, at)) if playing else Ok()

    def _set_prompts(self, body: Any) -> Ok:
        _check_prompt_limits(body)
        triples: list[tuple[str, str | None, float]] = []
        read: dict[str, bytes] = {}
        for i, p in enumerate(body.prompts):
            w = p.weight if p.HasField("weight") else 1.0
            if p.WhichOneof("source") == "audio_path":
                path, data = self._prompt_file(p.audio_path, f"set_prompts.prompts[{i}].audio_path")
                read[path] = data
                triples.append(("", path, w))
            else:
                triples.append((p.text, None, w))
        if not triples or sum(t[2] for t in triples) <= 0:
            raise wire.WireError(Error.BAD_VALUE, "give at least one prompt with a weight > 0",
                                 field="set_prompts.prompts")
        from cadenza.runtime.graph.loader import InvalidGraph

        try:
            conductor = self.live.load(direct_graph(triples, read))
        except InvalidGraph as exc:  # a prompt the backend cannot embed: SetPrompts is no graph, say it as a prompt
            raise _prompts_refused(body, exc) from None
        return Ok(stream_time=self.live.frame, warnings=list(conductor.mixer.warnings) + _overrides_kept(conductor))

    def _set_controls(self, body: Any) -> Ok:
        from cadenza.runtime.backends.base import Controls

        if len(body.controls.notes.midi) > MAX_NOTES:  # before any copying: 400,000 notes are refused at once
            raise wire.WireError(Error.BAD_VALUE, f"{len(body.controls.notes.midi):,} notes, over the limit of {MAX_NOTES} "
                                 "(each MIDI note 0–127 at most once); nothing was applied",
                                 field="set_controls.controls.notes.midi")
        values = wire.controls_to_dict(body.controls)
        with self.live.lock:
            c = self._conductor("SetControls")
            merged = {k: v for k, v in c.overrides.items() if k not in set(body.clear)}
            merged.update(values)
            try:
                checked: dict[str, Any] = {k: (tuple(v) if k == "notes" else v) for k, v in merged.items()}
                Controls(**checked)
            except UsageError as exc:
                where = (exc.where or "").replace("notes[", "notes.midi[")  # the full path to the bad field
                raise wire.WireError(Error.BAD_VALUE, str(exc), field=f"set_controls.controls.{where}") from exc
            c.overrides = merged
            unsupported = sorted(set(values) - set(self.backend.capabilities.controls))
        warnings = [f"backend {self.backend.name!r} cannot honour control {n!r}; it is ignored" for n in unsupported]
        clamps = getattr(self.backend, "control_warnings", None)  # optional: values beyond what the model takes
        if clamps is not None:
            warnings += clamps(Controls(**{k: checked[k] for k in values}))
        for w in warnings:
            self.live.post(ev.Warning(self.live.now(), w))
        return Ok(stream_time=self.live.frame, warnings=warnings)

    def _transport(self, body: Any) -> Ok:
        action = body.action
        # STOP's fresh stream is made before the lock: a model's new stream is device work requests should not wait for
        bed = self.live.backend.new_stream(self.live.seed) if action == Transport.STOP else None
        with self.live.lock:
            if action == Transport.PLAY:
                self.live.transport("play")
            elif action == Transport.PAUSE:  # hold: state, parameters and musical position kept
                self.live.transport("pause")
            elif action == Transport.STOP:  # fade out, then back to the graph's start
                self.live.transport("stop", bed=bed)
            elif action == Transport.RESET_CONTEXT:
                c = self._conductor("Transport(RESET_CONTEXT)")
                c.restart_deck()
            # the next block the generation thread renders is where this takes effect
            conductor = self.live.conductor
            at = conductor.stream_frame if conductor is not None else self.live.frame
        return Ok(stream_time=at)

    def handle(self, data: bytes | memoryview, readonly: str | None = None,
               req: wire.DecodedRequest | None = None) -> bytes:
        """One request frame → one reply frame. Never raises.

        ``readonly`` names a read-only client (``--curve-readonly``): it may only
        say Hello, ask for the status and describe the graph; anything else is PERMISSION_DENIED.
        ``req``: ``data`` already decoded (the serve loop decodes once to route it).
        """
        request_id = 0
        kind = ""  # counted under its kind once it reaches its handler; moved to "refused" if that refuses it
        try:
            if req is None:
                req = wire.decode_request(data)
            request_id = req.request_id
            if readonly is not None and req.kind not in READONLY_REQUESTS:
                raise wire.WireError(Error.PERMISSION_DENIED, (
                    f"{readonly} is read-only (--curve-readonly): it may send Hello, GetStatus and DescribeGraph and "
                    "subscribe to "
                    f"events and audio, not {req.kind.value}; the operator moves its key to --curve-clients to "
                    "allow control"), field=req.kind.value)
            kind = req.kind  # a str (StrEnum): request_counts' keys are its values
            self.request_counts[kind] += 1  # before the handler: a GetStatus counts itself
            reply = self.handlers[req.kind](req.body)
            if isinstance(reply, Ok) and reply.warnings:  # a reply always fits its size limit
                kept = bounded_warnings(list(reply.warnings))
                del reply.warnings[:]
                reply.warnings.extend(kept)
            return wire.encode_reply(request_id, reply)
        except wire.WireError as exc:
            self.errors += 1
            self._count_refused(kind)
            return wire.encode_reply(exc.request_id or request_id, _bounded(exc.to_error()))
        except FileOutside as exc:  # a client-named file outside the allowed folders (its words never vary)
            self.errors += 1
            self._count_refused(kind)
            return wire.encode_reply(request_id, _bounded(Error(code=Error.PERMISSION_DENIED, message=str(exc),
                                                                field=exc.where or "")))
        except GraphError as exc:
            self.errors += 1
            self._count_refused(kind)
            issues = getattr(exc, "issues", None)
            first = issues[0] if issues else None
            fld = ""
            if first is not None:  # "file:line path", as the message's lines start
                fld = first.file if first.line is None else f"{first.file}:{first.line}"
                fld = f"{fld} {first.path}" if first.path else fld
            return wire.encode_reply(request_id, _bounded(Error(code=Error.GRAPH_INVALID, message=str(exc),
                                                                field=fld)))
        except (UsageError, PromptError) as exc:
            self.errors += 1
            self._count_refused(kind)
            return wire.encode_reply(request_id, _bounded(Error(code=Error.BAD_VALUE, message=str(exc),
                                                                field=exc.where or "")))
        except CadenzaError as exc:
            self.errors += 1
            self._count_refused(kind)
            return wire.encode_reply(request_id, _bounded(Error(code=Error.INTERNAL, message=str(exc))))
        except Exception as exc:  # noqa: BLE001 — a bug must not take the music down
            self.errors += 1
            self._count_refused(kind)
            log.error(f"internal error on a request: {type(exc).__name__}: {str(exc)[:1000]}")
            return wire.encode_reply(request_id, _bounded(Error(code=Error.INTERNAL,
                                                                message=f"{type(exc).__name__}: {exc}")))

    def _count_refused(self, kind: str) -> None:
        """Status.requests: a request answered with an Error counts under ``refused``, not under its kind."""
        if kind:
            self.request_counts[kind] -= 1
        self.request_counts["refused"] += 1

    # ----------------------------------------------------------------- loop
    def serve(self, ready: Callable[[], None] | None = None) -> int:
        self._bind(self.control, self.config.control)
        self.endpoints["control"] = self.control.getsockopt_string(zmq.LAST_ENDPOINT)
        if self._gateway_config is not None:
            from cadenza.runtime.ws_gateway import Gateway, RuntimeSockets

            self._inproc["control"] = f"inproc://cadenza-ws-{self.session_id}-control"
            self.control.bind(self._inproc["control"])
            self.gateway = Gateway(self.ctx, self._gateway_config, RuntimeSockets(
                self._inproc["control"], self._inproc["events"], self._inproc.get("audio"),
                self._inproc.get("audio_int16")))
            self.endpoints["ws"] = self.gateway.start()
        release_large_blocks()  # a burst of 1 MiB requests must not grow the process for good
        # the start-up heap (modules, graph, backend: ~150k objects) leaves the cyclic collector's scans: a burst of
        # allocations (1,000 WebSocket handshakes) otherwise set off a full collection of 70 ms holding the GIL,
        # which delayed the audio as long (outside-ws: chunk lag 65-68 ms → 29-30 ms with this)
        gc.collect()
        gc.freeze()
        self.publisher.start()
        self.live.start()
        self.supervisor = supervise(progress=self._progress, audio_flowing=self._audio_flowing,
                                    status=self._status_line)
        if ready is not None:
            ready()
        self.loads = LoadQueue(self.handle, self.live.admission, self.config.load_timeout_s)
        poller = zmq.Poller()
        poller.register(self.control, zmq.POLLIN)
        poller.register(self.loads.wake_fd, zmq.POLLIN)
        if self._monitor is not None:
            poller.register(self._monitor, zmq.POLLIN)
        idle_ms = 100  # the loop turns at least this often; twice per watchdog ping, so an idle loop is no stall
        if self.supervisor is not None and self.supervisor.watchdog_s:
            idle_ms = max(10, min(idle_ms, int(self.supervisor.period * 1000 / 2)))
        woke = True  # the load worker's wake pipe fired: answered() drains it (a read per turn would let go of the GIL)
        while not self._stopping:
            if woke or self.loads.pending:  # LoadGraph/SetPrompts the worker finished (or timed out)
                woke = False
                for job, done in self.loads.answered():
                    self._answer_load(job, done)
            self.turns += 1
            if self.live.error is not None:
                log.error(f"generation failed: {type(self.live.error).__name__}: {self.live.error}")
                self.shutdown()
                return 1
            for sock, _ in poller.poll(self.loads.poll_timeout_ms(idle_ms)):
                if sock is self._monitor:
                    self._watch_connections()
                    continue
                if sock is not self.control:
                    woke = True  # the load worker's wake pipe: answered() reads it on the next turn
                    continue
                for n in range(1000):  # drain a burst, then look at the world again
                    if n % GIVE_WAY_EVERY == GIVE_WAY_EVERY - 1:
                        self._give_way()
                    # past the first (poll saw it), ZMQ_EVENTS says whether another request waits: read under the
                    # GIL, where a recv failing with Again lets go of it and raises — and the WebSocket gateway's
                    # thread, waking to write the reply just sent, would wait for this loop's turn
                    if n and not cast(int, sock.getsockopt(zmq.EVENTS)) & _POLLIN:
                        break
                    role: str | None = Role.FULL
                    try:
                        if self.gate is None:
                            frames = _recv_frames(sock)
                        else:  # whose key sent it: ZAP stamped the connection's messages with it
                            msg = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                            user = _user_id(msg[-1])
                            # only inproc skips CURVE (no User-Id): that is the WebSocket gateway, in this process
                            role = Role.FULL if user is None and self.gateway is not None else self.gate.role(user)
                            frames = [f.bytes for f in msg]
                    except zmq.Again:
                        break
                    self.requests += 1
                    if len(frames) < 2:
                        continue  # no identity: nowhere to reply (a ROUTER always adds one)
                    ident: bytes = frames[0]  # type: ignore[assignment]  # (identities are small: bytes)
                    parts = frames[1:]
                    # a REQ socket (or a DEALER imitating one) puts an empty delimiter first: answered in kind
                    # (each reply goes out as its own request came: a client may mix both framings)
                    delimited = len(parts) >= 2 and not parts[0]
                    if delimited:
                        parts = parts[1:]
                    if not self.bucket.allow(ident):  # RATE_LIMITED at once, ahead of what waits (documented)
                        self.request_counts["rate_limited"] += 1
                        reply = wire.encode_reply(wire.peek_request_id(parts[-1]), Error(
                            code=Error.RATE_LIMITED,
                            message=f"more than {self.config.rate_limit:g} requests per second from one client"))
                    else:
                        answer: bytes | None
                        if len(parts) != 1:
                            self.errors += 1
                            self.request_counts["refused"] += 1
                            answer = self._in_turn(ident, delimited, wire.encode_reply(
                                wire.peek_request_id(parts[-1]), Error(code=Error.BAD_MESSAGE, message=(
                                    f"a request is one frame (one Envelope), got a message of {len(parts)} frames "
                                    "(a REQ socket's empty delimiter first is fine)"))))
                        elif role is None:  # its key left the allow-lists since it connected
                            self.errors += 1
                            self.request_counts["refused"] += 1
                            answer = self._in_turn(ident, delimited, wire.encode_reply(
                                wire.peek_request_id(parts[0]), Error(
                                    code=Error.PERMISSION_DENIED,
                                    message="this client's key is no longer on the runtime's allow-lists")))
                        elif role == Role.READONLY:  # (sends no loads: never waits behind one)
                            answer = self.handle(parts[0], readonly=self.gate.describe(user) if self.gate else "")
                        else:
                            answer = self._handle_or_defer(ident, parts[0], delimited)
                        if answer is None:  # a load in the worker, or behind this client's load: answered in turn
                            continue
                        reply = answer
                    self._send_reply(ident, reply, delimited)
        self.shutdown()
        return 0

    def _watch_connections(self) -> None:
        """Count accepted and ended control connections (the ROUTER's monitor; see Status.control_disconnects)."""
        from zmq.utils.monitor import recv_monitor_message

        assert self._monitor is not None
        for _ in range(1000):
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            if event["event"] == zmq.EVENT_ACCEPTED:
                self.control_connections += 1
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self.control_disconnects += 1

    def _give_way(self) -> None:
        """Audio first: while the generation thread is behind, a flood of requests waits (ZeroMQ pushes back).

        Both share one interpreter lock; on a small machine a client sending
        tens of thousands of requests a second would otherwise take the time
        the next block needs. The wait is bounded, so requests still flow.
        """
        end = time.monotonic() + GIVE_WAY_MAX_S
        while self.live.behind() and time.monotonic() < end:
            self.gave_way += 1
            time.sleep(0.001)

    # the service manager's view (runtime/notify.py reads these from its own thread, without locks)
    def _progress(self) -> dict[str, int]:
        return {"generation thread": self.live.stats.steps, "control loop": self.turns}

    def _audio_flowing(self) -> bool:
        """The first block is in the sinks (and a device sink has played from its ring)."""
        live = self.live
        if live.stats.steps < 1 or not live.sinks:
            return False
        clock = live.clock_sink
        return clock is None or clock.frames_played > 0

    def _status_line(self) -> str:
        live = self.live
        conductor = live.conductor
        if conductor is None:
            what = "silence (no graph yet)"
        elif conductor.graph.source == "<set_prompts>":
            what = "prompts (no graph)"
        else:
            what = f"graph {conductor.graph.name!r}"
        line = (f"{'playing' if live.playing else 'paused'} {what}, stream {live.frame / SAMPLE_RATE:.1f} s, "
                f"{live.stats.xruns} xruns, {self.requests} requests")
        faults = dict(getattr(live, "faults", None) or {})  # what is failing now (live.py), sinks included
        if faults:
            line += f", faults: {', '.join(sorted(faults))}"
        elif live.failed_sinks:
            line += f", sinks out: {', '.join(sorted(live.failed_sinks))}"
        return line

    def request_stop(self, *_: object) -> None:
        self._stopping = True

    def _handle_or_defer(self, ident: bytes, data: bytes | memoryview, delimited: bool = False) -> bytes | None:
        """The reply, or None when the request went to the load worker or waits behind this client's load.

        What waits is bounded per client and in all (runtime/loads.py): past that, RATE_LIMITED at once and the
        bytes are dropped. A request over the size limit never waits: its TOO_LARGE is decided at once and sent in
        its turn (behind the client's pending load, if any).
        """
        assert self.loads is not None
        if len(data) > wire.MAX_MESSAGE_BYTES:  # TOO_LARGE, decided now; the bytes never wait, the reply may
            return self._in_turn(ident, delimited, self.handle(data))
        req: wire.DecodedRequest | None = None
        # a big one (a 1 MiB graph) is routed by its bytes when they say for certain what it is; whoever answers it
        # decodes it, once
        peeked = wire.peek_request_kind(data) if len(data) > DECODE_IN_LOOP_BYTES else None
        if peeked is not None:
            kind, request_id = peeked
        else:
            try:  # decoded once, here: every request runs this on cold caches (the client's 10 ms apart)
                req = wire.decode_request(data)
            except Exception:  # noqa: BLE001 — WireError and the like: handle() answers it with its reason
                pass
            kind = None if req is None else req.kind
            request_id = wire.peek_request_id(data) if req is None else req.request_id
        if self.loads.blocked(ident):  # this client's load is pending: its requests keep their order
            return self.loads.hold(ident, data, delimited, kind, request_id)
        if kind in SLOW_REQUESTS:  # (a big one the wire refuses is answered by the worker, in its turn)
            return self.loads.submit(ident, bytes(data), request_id, str(kind), delimited)
        return self.handle(data, req=req)

    def _in_turn(self, ident: bytes, delimited: bool, reply: bytes) -> bytes | None:
        """The reply to send now, or None when this client's load is pending: an error decided on arrival (TOO_LARGE,
        a message of several frames) then waits behind the load like any request of the client (or RATE_LIMITED
        comes at once, when too much of the client's waits already)."""
        assert self.loads is not None
        if not self.loads.blocked(ident):
            return reply
        refused = self.loads.hold(ident, b"", delimited, None, wire.peek_request_id(reply), reply=reply)
        if refused is not None:  # RATE_LIMITED instead (counted by the queue): not under "refused" as well
            self.request_counts["refused"] -= 1
        return refused

    def _answer_load(self, job: LoadJob, reply: bytes) -> None:
        """Send a finished load's reply, then answer what the client sent after it, in order."""
        assert self.loads is not None
        ident = job.ident
        self._send_reply(ident, reply, job.delimited)
        while (held := self.loads.next_held(ident)) is not None:
            r = held.reply if held.reply is not None else self._handle_or_defer(ident, held.data, held.delimited)
            if r is None:  # another load of this client: the rest wait behind it
                return
            self._send_reply(ident, r, held.delimited)

    def _send_reply(self, ident: bytes, reply: bytes, delimited: bool = False) -> None:
        # frame by frame, pyzmq's own send with int flags: send_multipart's checks and flag enums cost more
        sock = self.control
        try:
            _send(sock, ident, _SNDMORE_NOBLOCK)
            if delimited:
                _send(sock, b"", _SNDMORE_NOBLOCK)
            _send(sock, reply, _NOBLOCK)
        except zmq.ZMQError:  # EAGAIN: its queue is full (it never reads); EHOSTUNREACH: it is gone
            self.replies_dropped += 1

    def shutdown(self) -> None:
        if self.supervisor is not None:
            failed = self.live.error
            self.supervisor.stopping(f"stopping: generation failed ({type(failed).__name__})" if failed is not None
                                     else "stopping")
        gateway_stuck = self.gateway is not None and not self.gateway.stop()
        self.live.stop()
        if self.loads is not None:
            self.loads.close()
        if self.gate is not None:
            self.gate.stop()
        if self._monitor is not None:
            self.control.disable_monitor()
            self._monitor.close(0)
            self._monitor = None
        if not self.publisher.stop() or gateway_stuck:
            self.control.close(0)  # the publish thread still holds the PUB sockets: the process exit takes them
            return
        for sock in (self.control, self.events_sock, self.audio_sock, self.audio16_sock):
            if sock is not None:
                sock.close(0)
        self.ctx.term()


_GRAPH_KEY = "cadenza_graph"  # every style graph holds it (the format version); other files are not quoted
def _recv_frames(sock: zmq.Socket[bytes]) -> list[bytes | memoryview]:
    """One waiting message's frames (``zmq.Again`` when there is none): ``recv_multipart`` without its
    ``getsockopt(RCVMORE)`` per frame, which looks the option up in pyzmq's enums on every call. A big frame comes
    as a view of ZeroMQ's own buffer: copied only when it is kept (held, queued), never when it is refused."""
    frames: list[bytes | memoryview] = []
    while True:
        frame = sock.recv(_NOBLOCK, copy=False)
        frames.append(frame.bytes if len(frame) <= DECODE_IN_LOOP_BYTES else frame.buffer)
        if not frame.more:
            return frames


def _subscribe_over_zeromq(body: Any) -> Any:
    """Subscribe is the WebSocket gateway's: a ZeroMQ client subscribes with its own SUB sockets."""
    raise wire.WireError(Error.BAD_MESSAGE, (
        "Subscribe is for WebSocket connections (cadenza serve --ws); over ZeroMQ, subscribe to topics with a SUB "
        "socket on the events endpoint and to audio on the audio endpoint (ServerInfo.endpoints)"), field="subscribe")


READONLY_REQUESTS = frozenset({wire.RequestKind.HELLO, wire.RequestKind.GET_STATUS, wire.RequestKind.DESCRIBE_GRAPH})


def _overrides_kept(c: Any) -> list[str]:
    """The Ok warning of a LoadGraph/SetPrompts while control overrides are set: they stay (they are the client's,
    not the graph's), and the client is told so."""
    if not c.overrides:
        return []
    kept = ", ".join(f"{k}={v!r}" for k, v in sorted(c.overrides.items()))
    return [f"control overrides kept from before the load: {kept}; the new graph's own values for them are not "
            "heard until they are cleared (SetControls.clear)"]


def _model_clamps(backend: Any, graph: Any) -> list[str]:
    """LoadGraph's warnings for the graph's literal controls (its own and its states') that the backend's model
    takes only clamped (magenta: guidance over 7): valid anywhere, so the loader took them; played clamped."""
    from cadenza.runtime.backends.base import Controls
    from cadenza.runtime.graph.spec import Const

    check = getattr(backend, "control_warnings", None)
    if check is None:
        return []
    places = [("controls", tuple(graph.controls.items()))]
    places += [(f"states.{name}.controls", state.controls or ()) for name, state in graph.states.items()]
    out = []
    for where, items in places:
        for name, node in items:
            if isinstance(node, Const) and name in Controls.__dataclass_fields__:
                try:
                    out += [f"{where}.{name}: {w}" for w in check(Controls.from_values({name: node.value}))]
                except (UsageError, TypeError, ValueError):
                    continue  # not a value of that control at all: the graph's own checks speak for it
    return out


def _effective_controls(c: Any) -> Any:
    """The controls the music plays with: the graph's (its state's) values, the client's overrides on top.

    A value the backend's checks refuse is shown as asked; one beyond what its
    field holds (a graph computing top_k 1e12) is left out rather than fail the status.
    """
    from cadenza.runtime.backends.base import Controls

    merged = {k: v for k, v in {**c.graph_controls, **c.overrides}.items() if k in wire.CONTROL_NAMES}
    try:
        checked = Controls.from_values(merged)
        merged = {k: v if getattr(checked, k, None) is None else getattr(checked, k) for k, v in merged.items()}
    except (UsageError, TypeError, ValueError):
        pass
    shown = wire.controls_from_mapping({})
    for k, v in merged.items():
        try:
            shown.MergeFrom(wire.controls_from_mapping({k: v}))
        except (TypeError, ValueError):
            continue
    return shown


def _rounded(params: Any, items: list[tuple[str, float | str | None]]) -> list[str]:
    """A warning per number not taken as given: clamped (``clamp``) or, for a discrete parameter, rounded; each says
    the value applied."""
    out = []
    for name, x in items:
        if type(x) is not float:  # a label (or nothing: refused before this)
            continue
        p = params.get(name)
        if p is None and name != "intensity":
            continue
        lo, hi = (0.0, 1.0) if p is None else (p.min, p.max)
        discrete = p is not None and p.type == "discrete"
        became = min(max(x, lo), hi)
        if discrete:  # as params.py rounds it
            became = min(max(math.floor(became + 0.5), int(p.min)), int(p.max))
        if not lo <= x <= hi:  # only with clamp: else BAD_VALUE
            out.append(f"clamped: {name} {x:g} is outside [{lo:g}, {hi:g}]; it became {became:g}")
        elif discrete and became != x:
            out.append(f"rounded: {name} is discrete (whole numbers); {x:g} became {became}")
    return out


def _parameter_value(value: float | str | None) -> ParameterValue:
    pv = ParameterValue()
    if isinstance(value, str):
        pv.label = value
    elif value is not None:
        pv.number = float(value)
    return pv


_PARAMETER_KINDS = {"continuous": ParameterInfo.CONTINUOUS, "discrete": ParameterInfo.DISCRETE,
                    "labeled": ParameterInfo.LABELED}


def describe_graph(c: Any) -> GraphDescription:
    """The GraphDescription of a conductor's graph (call under the engine lock): parameters (the builtin
    ``intensity`` last), states, triggers, prompts with their weights now, stingers, effective controls."""
    g = c.graph
    current = c.engine.params
    d = GraphDescription(name=g.name, state=c.engine.state or "", driven_by=g.states_driven_by or "",
                         stingers=sorted(g.stingers))
    for p in g.parameters.values():
        d.parameters.add(name=p.name, kind=_PARAMETER_KINDS.get(p.type, ParameterInfo.KIND_UNSPECIFIED),
                         min=0.0 if p.type == "labeled" else float(p.min),
                         max=0.0 if p.type == "labeled" else float(p.max), labels=list(p.labels),
                         default_value=_parameter_value(p.default), value=_parameter_value(current.get(p.name)))
    d.parameters.add(name="intensity", kind=ParameterInfo.CONTINUOUS, min=0.0, max=1.0,
                     default_value=_parameter_value(0.0), value=_parameter_value(current.get("intensity", 0.0)),
                     builtin=True)
    for name in g.states:
        d.states.add(name=name)
    for t in g.triggers.values():
        d.triggers.add(name=t.name, stinger=t.stinger or "", set_state=t.set_state or "", bump=float(t.bump))
    weights = c.deck_a.weights or {}
    for pr in g.prompts.values():
        info = d.prompts.add(name=pr.name, weight=float(weights.get(pr.name, 0.0)))
        if pr.audio is not None:
            info.audio = os.path.basename(pr.audio)
        else:
            info.text = pr.text or ""
    d.controls.CopyFrom(_effective_controls(c))
    return d


def _check_prompt_limits(body: Any) -> None:
    """TOO_LARGE for a SetPrompts past MAX_PROMPTS prompts or MAX_PROMPT_CHARS characters a text (before any work)."""
    if len(body.prompts) > MAX_PROMPTS:
        raise wire.WireError(Error.TOO_LARGE, f"{len(body.prompts):,} prompts, over the limit of {MAX_PROMPTS} a mix "
                             "may hold; nothing was applied", field="set_prompts.prompts")
    for i, p in enumerate(body.prompts):
        if p.WhichOneof("source") == "text" and len(p.text) > MAX_PROMPT_CHARS:
            raise wire.WireError(Error.TOO_LARGE, f"prompt text of {len(p.text):,} characters, over the limit of "
                                 f"{MAX_PROMPT_CHARS:,}; nothing was applied", field=f"set_prompts.prompts[{i}].text")


def _prompts_refused(body: Any, exc: Any) -> wire.WireError:
    """BAD_VALUE for the SetPrompts prompts the backend cannot embed: the first named by its field
    (``set_prompts.prompts[i].text``), the others counted; no internal graph names (``<set_prompts> prompts.p0``)."""
    from cadenza.runtime.live import prompt_names

    names = prompt_names([(p.text, p.audio_path or None, 1.0) for p in body.prompts])
    by_length = sorted(range(len(names)), key=lambda j: -len(names[j]))
    bad: list[tuple[int, str]] = []
    for issue in exc.issues:
        for j in by_length:
            head = f"prompts.{names[j]}"
            if issue.path == head or issue.path.startswith(head + "."):
                bad.append((j, issue.message))
                break
    bad.sort(key=lambda b: b[0])
    if not bad:  # nothing names a prompt (cannot happen today): the loader's words, without its file name
        return wire.WireError(Error.BAD_VALUE, "; ".join(i.message for i in exc.issues), field="set_prompts.prompts")
    i, message = bad[0]
    source = "audio_path" if body.prompts[i].WhichOneof("source") == "audio_path" else "text"
    more = ""
    if len(bad) > 1:
        others = ", ".join(str(j) for j, _ in bad[1:11]) + (", …" if len(bad) > 11 else "")
        more = f" (and {len(bad) - 1} more {'prompt' if len(bad) == 2 else 'prompts'} that cannot be used: {others})"
    return wire.WireError(Error.BAD_VALUE, f"prompt {i}: {message}{more}; nothing was applied",
                          field=f"set_prompts.prompts[{i}].{source}")


# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms). The serve loop decoding
# a burst of 1 MiB requests kept the generation thread waiting up to that long at each of the many times a step
# takes the GIL, and a 30 ms lookahead ran dry (the WAV sink 600 ms behind the wall clock); at 1 ms it keeps up.
GIL_SWITCH_S = 0.001
OPEN_FILES_WANTED = 65_536  # the soft limit on open files `serve` raises itself to (see raise_open_file_limit)
MAX_ERROR_CHARS = 60_000  # an Error's message or field may quote the bad input; this keeps the reply small


def _bounded(error: Error) -> Error:
    """``error`` with its message and field cut to :data:`MAX_ERROR_CHARS` characters.

    An error may quote what it refuses (a 1 MiB name, escaped by ``repr`` to
    four times its size): the reply must still encode, or the request would go
    unanswered and the exception would end the server loop.
    """
    if len(error.message) > MAX_ERROR_CHARS:
        error.message = f"{error.message[:MAX_ERROR_CHARS]}… (cut; {len(error.message)} characters)"
    if len(error.field) > MAX_ERROR_CHARS:
        error.field = f"{error.field[:MAX_ERROR_CHARS]}…"
    return error


def _user_id(frame: zmq.Frame) -> str | None:
    """The ``User-Id`` ZAP gave the connection a message came on (the client's z85 public key), or None."""
    try:
        value = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return value if isinstance(value, str) and value else None


def raise_open_file_limit(want: int = OPEN_FILES_WANTED) -> int:
    """Raise this process's soft limit on open files towards ``want`` (never above the hard limit); the new soft
    limit. Every TCP connection to the control, events and audio sockets holds a descriptor inside ZeroMQ: at the
    usual soft limit of 1,024, a thousand idle connections left no descriptor for a new client or for a file sink
    reopening its recording."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft


def run_server(config: ServerConfig) -> int:
    raise_open_file_limit()
    sys.setswitchinterval(GIL_SWITCH_S)
    server = Server(config)
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)

    def reopen_files(signum: int, frame: object) -> None:
        """logrotate's convention: the recording was renamed away; file sinks start a new file at their path."""
        if not server.live.reopen_files():
            server.live.post(ev.Warning(server.live.now(), "SIGHUP reopens file sinks (after logrotate renamed them); "
                                        "this runtime has none, nothing changed (SIGTERM or SIGINT stops it)", "SIGHUP"))

    signal.signal(signal.SIGHUP, reopen_files)
    early_signals.replay()  # what came while starting (cli.main held it) acts now: TERM/INT stop, HUP reopens

    def ready() -> None:
        print(f"cadenza serve: ready control={config.control} events={config.events} audio={config.audio or '-'} "
              f"sink={config.sink} backend={server.backend.name} session={server.session_id} pid={os.getpid()}"
              + (f" ws={server.endpoints['ws']}" if "ws" in server.endpoints else ""), flush=True)

    try:
        return server.serve(ready)
    except AudioError:
        server.shutdown()
        raise
