"""What the blocking and the asyncio client share, without any I/O: requests, replies, re-sync, events.

:class:`~cadenza.sdk.client.Client` and :class:`~cadenza.sdk.aio.AsyncClient`
differ only in how they wait on a socket. Everything else lives here, once:

* the lifecycle (:class:`ClientState`) and its exact errors;
* building request messages from Python arguments (checked by the wire module
  before anything is sent: a NaN raises :class:`~cadenza.sdk.errors.BadValue`
  without touching the network);
* reading replies: matching the request id, dropping stale replies, turning
  an ``Error`` into its typed :class:`~cadenza.sdk.errors.ServerError`;
* the reconnect logic, written once as a *flow*: a generator that yields
  steps (:class:`_Send` a request, :data:`_RESET` the control socket) and
  receives replies or exceptions. Each client drives it with its own socket
  calls (``_drive`` / ``_adrive``). The flow remembers what the client made
  the runtime hold (graph, parameters, prompts, controls, transport) and
  re-sends it to a runtime that restarted;
* the friendly views of replies and events (:class:`Status`,
  :class:`ServerInfo`, :class:`Ack`, :class:`Event` and its subclasses) and
  per-topic sequence gap counting.

Re-sync, in detail. A request that times out makes the client close and
recreate its DEALER (requests still queued on the old one must not reach a
new runtime after the re-sync) and say ``Hello`` again. When the runtime's
``session_id`` differs from the one the client last synced with (the runtime
restarted), the client re-sends its last graph (``LoadGraph`` with the text),
or its last prompts, then its last parameter values in one ``SetParameters``
with ``bypass`` (a jump, no ramp), its control overrides and its last
transport action, and then retries the original request once. Each re-sync
request, like every LoadGraph/SetPrompts, waits at least :data:`LOAD_WAIT_S`
for its reply (a re-sync abandoned half-way would be sent again in full: the
runtime would load the graph twice). Only what the runtime accepted is
remembered; a request that timed out is neither remembered nor re-sent. (A
restarting runtime binds its control socket only once it can answer, so
nothing a client gave up on while it started is executed.) A ``Trigger``
or ``SetState`` is retried only when the runtime restarted (a runtime that is
alive may have done it already). A ``NOT_READY`` reply while the client has a graph or
prompts re-syncs and retries the same way (a runtime restarted between two
requests, reached through ZeroMQ's own reconnect). The heartbeat (a ``Hello``
every ``heartbeat`` seconds from a background thread or task) runs the same
check, so the music comes back after a runtime restart even when the game
sends nothing.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Final, TypeAlias, TypeVar

import zmq
from zmq.utils import z85

from cadenza.endpoints import default_endpoint
from cadenza.errors import ProtocolError, UsageError
from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.proto.wire import RequestKind, Topic
from cadenza.sdk.errors import (
    ClientStateError,
    NotReady,
    RequestTimeout,
    ServerError,
    TransportError,
    UnknownName,
    server_error,
)
from cadenza.sdk.graph import GraphBuilder

__all__ = [
    "DEFAULT_AUDIO",
    "DEFAULT_AUDIO_INT16",
    "DEFAULT_CONTROL",
    "DEFAULT_EVENTS",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_TIMEOUT",
    "RAMP_SHAPES",
    "STALE_AUDIO_S",
    "TOPICS",
    "Ack",
    "BeatEvent",
    "ClientState",
    "CurveKeys",
    "Event",
    "GraphInfo",
    "MixEvent",
    "ParameterInfo",
    "PromptInfo",
    "ServerInfo",
    "StateEvent",
    "Status",
    "StatusEvent",
    "StingerEvent",
    "TriggerInfo",
    "WarningEvent",
    "XrunEvent",
    "curve_keypair",
]

# The endpoints a client uses when given none: $CADENZA_CONTROL, $CADENZA_EVENTS, $CADENZA_AUDIO,
# $CADENZA_AUDIO_INT16 when set (read once, at import), else `cadenza serve`'s defaults (cadenza.endpoints, which
# `cadenza ctl` and `cadenza osc` read too).
DEFAULT_CONTROL: Final = default_endpoint("control")
DEFAULT_EVENTS: Final = default_endpoint("events")
DEFAULT_AUDIO: Final = default_endpoint("audio")
DEFAULT_AUDIO_INT16: Final = default_endpoint("audio_int16")
DEFAULT_TIMEOUT: Final = 2.0
DEFAULT_HEARTBEAT: Final = 1.0
#: The event topics a callback can be registered for.
TOPICS: Final[tuple[str, ...]] = tuple(t.value for t in Topic)
#: Ramp shape names (the graph's curve shapes) → ``SetParameters.RampShape``.
RAMP_SHAPES: Final[Mapping[str, int]] = {
    "linear": pb.SetParameters.LINEAR,
    "s-curve": pb.SetParameters.S_CURVE,
    "log": pb.SetParameters.LOG,
    "exp": pb.SetParameters.EXP,
    "sine": pb.SetParameters.SINE,
    "constant": pb.SetParameters.CONSTANT,
}
#: An already queued audio chunk this much later than live audio (seconds) is dropped, never played (StaleAudio).
STALE_AUDIO_S: Final = 0.5
#: A chunk the reader waited this long for (seconds) came from the head of the queue: live audio (StaleAudio).
HEAD_WAIT_S: Final = 0.003
#: Live chunks in a row (StaleAudio) after which a lag later than the bound is followed: the runtime fell behind.
LIVE_STREAK: Final = 25
#: The audio SUB's receive high-water mark (chunks of 10 ms) and kernel receive buffer (bytes; for int16, whose
#: chunks are half the size, half of it: the same duration of audio).
AUDIO_RCVHWM: Final = 10
AUDIO_RCVBUF: Final = 64 * 1024
AUDIO16_RCVBUF: Final = AUDIO_RCVBUF // 2
#: Audio formats a subscriber can ask for → the ServerInfo.endpoints key of the socket carrying it.
AUDIO_FORMATS: Final[Mapping[str, str]] = {"float32": "audio", "int16": "audio_int16"}
#: The shortest wait for the reply to a LoadGraph/SetPrompts (seconds): the runtime's --load-timeout (10 s by
#: default) plus a margin; the runtime answers TIMEOUT itself when a load takes longer.
LOAD_WAIT_S: Final = 12.0
#: How often a waiting request looks at whether its client was closed (seconds).
POLL_SLICE: Final = 0.05
_ENDPOINT_SCHEMES: Final = ("tcp://", "ipc://", "inproc://")
_SOURCE_KINDS: Final = frozenset({RequestKind.LOAD_GRAPH, RequestKind.SET_PROMPTS})
#: Requests retried after a timeout only when the runtime restarted (PROTOCOL.md, reconnecting, step 5).
_ONE_SHOTS: Final = frozenset({RequestKind.TRIGGER, RequestKind.SET_STATE})
_GRAPH_SUFFIXES: Final = (".yaml", ".yml", ".json")
_REMEMBERED_TRANSPORT: Final = frozenset({pb.Transport.PLAY, pb.Transport.PAUSE, pb.Transport.STOP})

T = TypeVar("T")
ParameterValue: TypeAlias = float | int | bool | str


class ClientState(Enum):
    """A client's lifecycle: ``UNOPENED`` → ``OPEN`` (explicitly, or on first use) → ``CLOSED`` (for good)."""

    UNOPENED = 1
    OPEN = 2
    CLOSED = 3


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class ServerInfo:
    """What the runtime is (from the reply to ``Hello``); ``session_id`` is new for every runtime process."""

    protocol_version: int
    supported_versions: tuple[int, ...]
    server_version: str
    backend: str
    controls: tuple[str, ...]
    audio_prompts: bool
    beat_grid: bool
    sample_rate: int
    channels: int
    session_id: str
    #: The runtime's sockets as bound: "control", "events", "audio" (float32), "audio_int16" when it has one.
    endpoints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_pb(cls, info: pb.ServerInfo) -> ServerInfo:
        return cls(protocol_version=info.protocol_version, supported_versions=tuple(info.supported_versions),
                   server_version=info.server_version, backend=info.backend, controls=tuple(info.controls),
                   audio_prompts=info.audio_prompts, beat_grid=info.beat_grid,
                   sample_rate=info.sample_rate or wire.DEFAULT_SAMPLE_RATE, channels=info.channels,
                   session_id=info.session_id, endpoints=dict(sorted(info.endpoints.items())))


@dataclass(frozen=True)
class Status:
    """A snapshot of the runtime (the reply to ``GetStatus`` or ``Hello``, or a ``status`` event).

    ``parameters`` maps each graph parameter to its number or label,
    ``controls`` holds the control overrides that are set (``notes`` as a
    tuple), ``weights`` the current prompt weights; ``stream_time`` is in
    samples and ``seconds`` the same in seconds; ``event_sequences`` gives the
    last sequence number of each event topic when the snapshot was taken
    (events at or below it are covered by the snapshot); ``server`` is set in
    the reply to ``Hello``. ``events_dropped`` and ``replies_dropped`` count
    what the runtime could not hand to ZeroMQ (slow consumers past their
    high-water marks); ``sink_faults`` names each sink out of play and why.
    ``effective_controls`` are the controls the music plays with (the graph's,
    with ``controls``, the overrides, on top); ``requests`` counts what this
    runtime process was asked, by request kind; ``control_disconnects``
    counts control connections that ended (a frame over 4 MiB ends one).
    """

    graph_loaded: bool
    graph_name: str
    state: str
    weights: dict[str, float]
    parameters: dict[str, float | str]
    controls: dict[str, Any]
    stream_time: int
    seconds: float
    playing: bool
    xruns: int
    lookahead_ms: float
    event_sequences: dict[str, int]
    audio_sequence: int
    server: ServerInfo | None = None
    events_dropped: int = 0
    replies_dropped: int = 0
    sink_faults: dict[str, str] = field(default_factory=dict)
    effective_controls: dict[str, Any] = field(default_factory=dict)
    pending_state: str = ""
    pending_state_time: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    control_disconnects: int = 0
    heard_time: int = 0  # the heard clock: sample s is heard at unix_time + (s - heard_time) / rate
    unix_time: float = 0.0

    @classmethod
    def from_pb(cls, status: pb.Status, *, sample_rate: int = wire.DEFAULT_SAMPLE_RATE) -> Status:
        server = ServerInfo.from_pb(status.server) if status.HasField("server") else None
        rate = server.sample_rate if server is not None else sample_rate
        parameters: dict[str, float | str] = {}
        for name, value in sorted(status.parameters.items()):
            held = wire.parameter_value(value)
            if held is not None:
                parameters[name] = held
        return cls(graph_loaded=status.graph_loaded, graph_name=status.graph_name, state=status.state,
                   weights=dict(sorted(status.weights.items())), parameters=parameters,
                   controls=wire.controls_to_dict(status.controls), stream_time=status.stream_time,
                   seconds=status.stream_time / rate, playing=status.playing, xruns=status.xruns,
                   lookahead_ms=status.lookahead_ms, event_sequences=dict(sorted(status.event_sequences.items())),
                   audio_sequence=status.audio_sequence, server=server, events_dropped=status.events_dropped,
                   replies_dropped=status.replies_dropped, sink_faults=dict(sorted(status.sink_faults.items())),
                   effective_controls=wire.controls_to_dict(status.effective_controls),
                   pending_state=status.pending_state, pending_state_time=status.pending_state_time,
                   requests=dict(sorted(status.requests.items())), control_disconnects=status.control_disconnects,
                   heard_time=status.heard_time, unix_time=status.unix_time)


@dataclass(frozen=True)
class ParameterInfo:
    """One parameter of the loaded graph: ``kind`` "continuous", "discrete" or "labeled"; ``minimum``/``maximum``
    for numbers, ``labels`` for labeled ones; ``default`` and the current ``value`` (after smoothing);
    ``builtin`` for the runtime's own ``intensity``."""

    name: str
    kind: str
    minimum: float
    maximum: float
    labels: tuple[str, ...]
    default: float | str | None
    value: float | str | None
    builtin: bool = False


@dataclass(frozen=True)
class TriggerInfo:
    """A trigger: the ``stinger`` it plays, the ``set_state`` it switches to ("" for none), its intensity ``bump``."""

    name: str
    stinger: str
    set_state: str
    bump: float


@dataclass(frozen=True)
class PromptInfo:
    """A prompt: its ``text``, or its ``audio`` file's name (the other is ""), and its current ``weight``."""

    name: str
    text: str
    audio: str
    weight: float


@dataclass(frozen=True)
class GraphInfo:
    """What the loaded graph offers (:meth:`Client.describe`): parameters by name (``intensity`` last), the
    states with the current one and the parameter that drives them, triggers, prompts, stingers and the
    effective controls now."""

    name: str
    parameters: dict[str, ParameterInfo]
    states: tuple[str, ...]
    state: str
    driven_by: str
    triggers: dict[str, TriggerInfo]
    prompts: dict[str, PromptInfo]
    stingers: tuple[str, ...]
    controls: dict[str, Any]

    @classmethod
    def from_pb(cls, d: pb.GraphDescription) -> GraphInfo:
        kinds = {pb.ParameterInfo.CONTINUOUS: "continuous", pb.ParameterInfo.DISCRETE: "discrete",
                 pb.ParameterInfo.LABELED: "labeled"}
        parameters = {p.name: ParameterInfo(
            name=p.name, kind=kinds.get(p.kind, ""), minimum=p.min, maximum=p.max, labels=tuple(p.labels),
            default=wire.parameter_value(p.default_value), value=wire.parameter_value(p.value), builtin=p.builtin)
            for p in d.parameters}
        triggers = {t.name: TriggerInfo(t.name, t.stinger, t.set_state, t.bump) for t in d.triggers}
        prompts = {p.name: PromptInfo(p.name, p.text, p.audio, p.weight) for p in d.prompts}
        return cls(name=d.name, parameters=parameters, states=tuple(s.name for s in d.states), state=d.state,
                   driven_by=d.driven_by, triggers=triggers, prompts=prompts, stingers=tuple(d.stingers),
                   controls=wire.controls_to_dict(d.controls))


@dataclass(frozen=True)
class Ack:
    """The runtime's ``Ok``: when the request takes effect (samples and seconds, when known) and its warnings."""

    stream_time: int | None
    seconds: float | None
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_pb(cls, ok: pb.Ok, *, sample_rate: int = wire.DEFAULT_SAMPLE_RATE) -> Ack:
        if ok.HasField("stream_time"):
            return cls(ok.stream_time, ok.stream_time / sample_rate, tuple(ok.warnings))
        return cls(None, None, tuple(ok.warnings))


@dataclass(frozen=True)
class Event:
    """An event from the runtime: ``topic``, its per-topic ``sequence`` (from 1), when it is heard.

    ``stream_time`` is in samples, ``seconds`` the same in seconds;
    ``heard_at`` is the Unix time (the runtime host's clock) when it is heard
    at the output, 0.0 when the runtime does not say. The subclasses add the
    payload's fields.
    """

    topic: str
    sequence: int
    stream_time: int
    seconds: float
    heard_at: float = field(default=0.0, kw_only=True)


@dataclass(frozen=True)
class BeatEvent(Event):
    """``beat`` and ``bar`` events: ``beat_in_bar`` 0 is the downbeat; ``estimated`` when predicted from the tempo."""

    beat: int
    bar: int
    beat_in_bar: int
    bpm: float
    estimated: bool


@dataclass(frozen=True)
class StateEvent(Event):
    """``state``: a state change ``previous`` → ``name``, ``phase`` "scheduled", "started", "completed" or
    "cancelled" (a scheduled change withdrawn by a later request: it never starts)."""

    name: str
    previous: str
    phase: str
    transition: str
    fade_seconds: float


@dataclass(frozen=True)
class MixEvent(Event):
    """``mix``: the current prompt weights."""

    weights: dict[str, float]


@dataclass(frozen=True)
class StingerEvent(Event):
    """``stinger``: a stinger fired."""

    name: str
    duration_seconds: float


@dataclass(frozen=True)
class XrunEvent(Event):
    """``xrun``: the output ran dry (``count`` since the stream started, ``frames_lost`` in this one)."""

    count: int
    frames_lost: int
    source: str


@dataclass(frozen=True)
class WarningEvent(Event):
    """``warning``: something the runtime did not honour, or a failsafe; ``field`` says where."""

    message: str
    field: str


@dataclass(frozen=True)
class StatusEvent(Event):
    """``status``: a periodic :class:`Status` snapshot."""

    status: Status


def event_from_wire(decoded: wire.DecodedEvent) -> Event:
    """A decoded event → the friendly :class:`Event` subclass for its topic."""
    head = (decoded.topic.value, decoded.sequence, decoded.stream_time, decoded.stream_seconds)
    p: Any = decoded.payload
    topic = decoded.topic
    return _event_payload(head, topic, p, decoded.heard_at)


def _event_payload(head: tuple[str, int, int, float], topic: Topic, p: Any, heard_at: float) -> Event:
    if topic in (Topic.BEAT, Topic.BAR):
        return BeatEvent(*head, heard_at=heard_at, beat=p.beat, bar=p.bar, beat_in_bar=p.beat_in_bar, bpm=p.bpm,
                         estimated=p.estimated)
    if topic is Topic.STATE:
        phase = pb.StateChange.Phase.Name(p.phase).lower() if p.phase in pb.StateChange.Phase.values() else ""
        return StateEvent(*head, heard_at=heard_at, name=p.name, previous=p.previous,
                          phase=phase.removeprefix("phase_"), transition=p.transition, fade_seconds=p.fade_seconds)
    if topic is Topic.MIX:
        return MixEvent(*head, heard_at=heard_at, weights=dict(sorted(p.weights.items())))
    if topic is Topic.STINGER:
        return StingerEvent(*head, heard_at=heard_at, name=p.name, duration_seconds=p.duration_seconds)
    if topic is Topic.XRUN:
        return XrunEvent(*head, heard_at=heard_at, count=p.count, frames_lost=p.frames_lost, source=p.source)
    if topic is Topic.WARNING:
        return WarningEvent(*head, heard_at=heard_at, message=p.message, field=p.field)
    return StatusEvent(*head, heard_at=heard_at, status=Status.from_pb(p))


class SequenceTracker:
    """Per-stream sequence numbers → messages lost (a forward gap).

    The first number seen on a stream sets its baseline (a late joiner has
    lost nothing); a number at or below the last one starts a new baseline (a
    restarted runtime counts from 1 again) and is not a loss.
    """

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.lost = 0

    def observe(self, stream: str, sequence: int) -> int:
        """Record ``sequence`` on ``stream``; returns how many were lost just before it."""
        previous = self.last.get(stream)
        self.last[stream] = sequence
        if previous is None or sequence <= previous:
            return 0
        gap = sequence - previous - 1
        self.lost += gap
        return gap


class StaleAudio:
    """Which audio chunks are too late to play: the SDK's bound on stale audio, for every audio reader.

    A subscriber that stops reading finds, when it reads again, what ZeroMQ
    and the kernel still queue (the SDK's SUB asks for :data:`AUDIO_RCVHWM`
    chunks and :data:`AUDIO_RCVBUF` bytes). Whatever still arrives late is
    dropped here. A chunk's *lag* is its arrival time (monotonic seconds)
    minus its ``stream_time`` in seconds. A chunk is *live* when the reader
    waited for it (``waited`` ≥ :data:`HEAD_WAIT_S`) and it arrived at least
    as long after the previous chunk as the stream moved between them (or
    chunks were lost between): a queue being drained delivers faster than
    real time, live audio does not. A chunk whose lag exceeds the reference
    lag by at most :data:`STALE_AUDIO_S` plus its wait is played (a live one
    becomes the reference, as does any smaller lag); a later one waited in a
    queue and is stale, unless it is the :data:`LIVE_STREAK`-th live chunk in
    a row (the runtime fell behind while the reader was away: follow it). So
    a reader that paused drops its backlog, while a backend that delivers in
    bursts (a 2 s model step) or runs slower than real time plays every
    chunk. A sequence number
    that goes back (a restarted runtime) starts over.
    """

    def __init__(self, bound: float) -> None:
        self.bound = bound
        self.stale = 0  # chunks dropped as stale
        self._reference: float | None = None
        self._last_sequence = 0
        self._previous: tuple[int, float, float] | None = None  # (sequence, arrival, stream seconds) of the last
        self._streak = 0  # live chunks in a row

    def fresh(self, sequence: int, stream_time: int, sample_rate: int, arrival: float, waited: float = 0.0) -> bool:
        """True to play the chunk, False to drop it (counted in :attr:`stale`).

        ``waited`` is how long the reader waited for this chunk (0 when it was already queued).
        """
        if sequence <= self._last_sequence:
            self._reference, self._previous, self._streak = None, None, 0
        self._last_sequence = sequence
        seconds = stream_time / sample_rate
        lag = arrival - seconds
        previous, self._previous = self._previous, (sequence, arrival, seconds)
        live = waited >= HEAD_WAIT_S and (previous is None or sequence != previous[0] + 1  # (chunks lost between)
                                          or arrival - previous[1] >= seconds - previous[2])
        if self._reference is None or lag < self._reference:
            self._reference, self._streak = lag, 0
            return True
        if lag - self._reference <= self.bound + waited:  # as late as the wait explains, or within the bound
            if live:
                self._reference = lag
            self._streak = 0
            return True
        self._streak = self._streak + 1 if live else 0  # late chunks arriving live, in a row
        if self._streak >= LIVE_STREAK:  # later for good (the runtime fell behind), but arriving live: follow it
            self._reference, self._streak = lag, 0
            return True
        self.stale += 1  # it waited in a queue
        return False


def audio_socket_options(sample_format: str) -> list[tuple[int, int | bytes]]:
    """The extra options of an audio SUB (before connect): short queues, so little can go stale."""
    if sample_format not in AUDIO_FORMATS:
        raise UsageError(f"unknown audio format {sample_format!r}; formats are {', '.join(AUDIO_FORMATS)}",
                         where="format")
    return [(zmq.RCVHWM, AUDIO_RCVHWM), (zmq.RCVBUF, AUDIO16_RCVBUF if sample_format == "int16" else AUDIO_RCVBUF)]


# ----------------------------------------------------------------------------- sockets


def curve_keypair() -> tuple[str, str]:
    """A new CurveZMQ ``(public, secret)`` key pair, each 40 z85 characters (``cadenza serve`` takes the secret one)."""
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


def _z85_key(value: str | bytes, where: str) -> bytes:
    raw = value.encode("ascii", "replace") if isinstance(value, str) else bytes(value)
    raw = raw.strip()
    if len(raw) != 40:
        raise UsageError(f"a CurveZMQ key is 40 z85 characters, got {len(raw)}", where=where)
    try:
        z85.decode(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"not a z85 key: {raw[:8]!r}…", where=where) from exc
    return raw


@dataclass(frozen=True)
class CurveKeys:
    """CurveZMQ keys for a runtime on another machine: the server's public key, this client's key pair.

    Without a client key pair, :meth:`create` makes an ephemeral one: enough
    for a runtime that accepts any key (``--curve-any-client``, or CURVE on
    loopback). A runtime with an allow-list (``--curve-clients DIR``) admits
    only key pairs whose public key the operator put there (``cadenza keys``
    writes a pair); an unknown key gets no reply at all (a timeout).
    """

    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def create(cls, server_public_key: str | bytes | None, client_secret_key: str | bytes | None = None,
               client_public_key: str | bytes | None = None) -> CurveKeys | None:
        if server_public_key is None:
            if client_secret_key is not None or client_public_key is not None:
                raise UsageError("client CURVE keys need the server's public key too", where="server_public_key")
            return None
        if not zmq.has("curve"):
            raise UsageError("this libzmq was built without CURVE support; install pyzmq's wheel (it has it)",
                             where="server_public_key")
        server = _z85_key(server_public_key, "server_public_key")
        if client_secret_key is None and client_public_key is None:
            public, secret = zmq.curve_keypair()
            return cls(server, public, secret)
        if client_secret_key is None or client_public_key is None:
            raise UsageError("give both client_secret_key and client_public_key, or neither (an ephemeral pair)",
                             where="client_secret_key" if client_secret_key is None else "client_public_key")
        return cls(server, _z85_key(client_public_key, "client_public_key"),
                   _z85_key(client_secret_key, "client_secret_key"))


def socket_options(keys: CurveKeys | None) -> list[tuple[int, int | bytes]]:
    """The options every SDK socket gets before it connects: no linger, the size limit, CURVE keys."""
    options: list[tuple[int, int | bytes]] = [(zmq.LINGER, 0), (zmq.MAXMSGSIZE, wire.SOCKET_MAX_MESSAGE_BYTES)]
    if keys is not None:
        options += [(zmq.CURVE_SERVERKEY, keys.server_public), (zmq.CURVE_PUBLICKEY, keys.client_public),
                    (zmq.CURVE_SECRETKEY, keys.client_secret)]
    return options


def check_endpoint(endpoint: str, where: str) -> str:
    if not isinstance(endpoint, str) or not endpoint.startswith(_ENDPOINT_SCHEMES):
        raise UsageError(f"endpoint {endpoint!r} must start with {', '.join(_ENDPOINT_SCHEMES)} "
                         f"(e.g. {DEFAULT_CONTROL!r})", where=where)
    return endpoint


def transport_error(exc: zmq.ZMQError, what: str) -> TransportError:
    """A ZeroMQ error → :class:`TransportError` naming what failed (raise it ``from exc``)."""
    return TransportError(f"{what}: {exc.strerror} (zmq errno {exc.errno})")


def check_topic(topic: str) -> str:
    if topic not in TOPICS:
        raise UsageError(f"unknown event topic {topic!r}; topics are {', '.join(TOPICS)}", where="topic")
    return topic


# ----------------------------------------------------------------------------- requests


def name_of(value: object, where: str) -> str:
    """A name given as text or as a graph handle (``Param``, ``TriggerRef``, ``StateRef`` …)."""
    name = getattr(value, "name", value)
    if not isinstance(name, str):
        raise UsageError(f"expected a name (text or a graph handle), got {type(value).__name__}", where=where)
    return name


def graph_request(source: object) -> tuple[pb.LoadGraph, str | None]:
    """``load_graph``'s argument → the ``LoadGraph`` to send, and the file it was read from (or None).

    A :class:`~cadenza.sdk.graph.GraphBuilder` sends its YAML. A path (a
    ``Path``, or a one-line ``str`` naming an existing file) is read here and
    sent as text, so the runtime need not see the file (a ``.json`` file is
    sent as JSON), with ``base_dir``, the file's absolute folder: relative
    audio paths in it then resolve as with ``cadenza serve --graph`` (when the
    runtime allows that folder with ``--allow-dir``). Any other ``str`` is the
    graph document itself (no ``base_dir``: its audio paths must be absolute).
    """
    if isinstance(source, GraphBuilder):
        return pb.LoadGraph(text=source.to_yaml(), format=pb.LoadGraph.YAML), None
    if isinstance(source, os.PathLike):
        return _graph_file(Path(os.fspath(source)))
    if isinstance(source, str):
        if "\n" not in source and source.strip():
            path = Path(source)
            if path.is_file():
                return _graph_file(path)
            if path.suffix.lower() in _GRAPH_SUFFIXES:
                raise UsageError(f"no such graph file: {source!r} (pass the file's path, or the YAML text itself)",
                                 where="load_graph")
        return pb.LoadGraph(text=source), None
    raise UsageError(f"expected a graph file path, YAML/JSON text or a GraphBuilder, got {type(source).__name__}",
                     where="load_graph")


def _graph_file(path: Path) -> tuple[pb.LoadGraph, str]:
    from cadenza.graph_format import EMPTY_GRAPH, undecodable
    from cadenza.sdk.errors import GraphInvalid

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read graph file {str(path)!r}: {exc.strerror or exc}", where="load_graph") from exc
    problem = undecodable(data)  # as `cadenza graph check` says it, file:line first
    if problem is None and not data.decode("utf-8-sig").strip():
        problem = (1, EMPTY_GRAPH)
    if problem is not None:
        raise GraphInvalid("GRAPH_INVALID", f"{path}:{problem[0]}: {problem[1]}", remote=False)
    text = data.decode("utf-8-sig")
    fmt = pb.LoadGraph.JSON if path.suffix.lower() == ".json" else pb.LoadGraph.YAML
    base_dir = os.path.dirname(os.path.abspath(path))
    return pb.LoadGraph(text=text, format=fmt, base_dir=base_dir), str(path)


def parameters_request(values: Mapping[Any, ParameterValue], *, ramp: float | None = None, shape: str = "linear",
                       bypass: bool = False, clamp: bool = False) -> pb.SetParameters:
    """``set_many``'s arguments → ``SetParameters`` (numbers or labels; keys are names or ``Param`` handles)."""
    if not isinstance(values, Mapping):
        raise UsageError(f"expected a mapping of parameter names to values, got {type(values).__name__}",
                         where="set_many")
    if shape not in RAMP_SHAPES:
        raise UsageError(f"unknown ramp shape {shape!r}; shapes are {', '.join(RAMP_SHAPES)}", where="shape")
    body = pb.SetParameters(bypass=bool(bypass), clamp=bool(clamp))
    for i, (key, value) in enumerate(values.items()):
        update = body.values.add(name=name_of(key, f"set_parameters.values[{i}].name"))
        if isinstance(value, str):
            update.label = value
        elif isinstance(value, numbers.Real):  # bool included: True is 1
            update.number = float(value)
        else:
            raise server_error(pb.Error.BAD_VALUE, f"parameter {update.name!r} takes a number or a label, got "
                               f"{type(value).__name__} {value!r}", field=f"set_parameters.values[{i}]",
                               remote=False)
    if ramp is not None:
        if isinstance(ramp, bool) or not isinstance(ramp, numbers.Real):
            raise UsageError(f"ramp is seconds (a number) or None, got {ramp!r}", where="ramp")
        body.ramp_seconds = float(ramp)
        body.ramp_shape = RAMP_SHAPES[shape]
    return body


def prompts_request(prompts: Mapping[Any, float] | Iterable[Any]) -> pb.SetPrompts:
    """``set_prompts``' argument → ``SetPrompts``.

    ``{text: weight}``, or a list of ``(text, weight)`` pairs or plain texts
    (weight 1). A ``pathlib.Path`` instead of a text is an audio prompt (a file
    on the runtime's machine, in a folder its operator allows with
    ``--allow-dir``); a relative one is made absolute here, against this
    process's working directory (the runtime refuses relative paths).
    """
    items: Iterable[Any] = prompts.items() if isinstance(prompts, Mapping) else prompts
    if isinstance(prompts, (str, bytes)):
        items = [prompts]
    body = pb.SetPrompts()
    for i, item in enumerate(items):
        where = f"set_prompts.prompts[{i}]"
        if isinstance(item, (str, os.PathLike)):
            source, weight = item, None
        elif isinstance(item, Sequence) and len(item) == 2:
            source, weight = item
        else:
            raise UsageError(f"expected a prompt text or a (text, weight) pair, got {item!r}", where=where)
        prompt = body.prompts.add()
        if isinstance(source, os.PathLike):
            prompt.audio_path = os.path.abspath(os.fspath(source))
        elif isinstance(source, str):
            prompt.text = source
        else:
            raise UsageError(f"a prompt is a text or a Path to an audio file, got {type(source).__name__}",
                             where=where)
        if weight is not None:
            if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
                raise server_error(pb.Error.BAD_VALUE, f"a weight is a number, got {weight!r}",
                                   field=f"{where}.weight", remote=False)
            prompt.weight = float(weight)
    return body


def controls_request(values: Mapping[str, Any], clear: Iterable[str] = ()) -> pb.SetControls:
    """``set_controls``' arguments → ``SetControls``: a ``None`` value clears that control."""
    unknown = [n for n in values if n not in wire.CONTROL_NAMES]
    if unknown:
        raise UnknownName("UNKNOWN_NAME", f"unknown control {unknown[0]!r}; controls are "
                          f"{', '.join(wire.CONTROL_NAMES)}", field=f"set_controls.controls.{unknown[0]}",
                          remote=False, code_number=pb.Error.UNKNOWN_NAME)
    cleared = list(clear) + [n for n, v in values.items() if v is None]
    body = pb.SetControls(clear=cleared)
    for name, value in values.items():
        if value is None:
            continue
        try:
            body.controls.MergeFrom(wire.controls_from_mapping({name: value}))
        except (TypeError, ValueError) as exc:
            raise server_error(pb.Error.BAD_VALUE, f"control {name!r} cannot be {value!r}: {exc}",
                               field=f"set_controls.controls.{name}", remote=False) from exc
    return body


def hello_request(name: str) -> pb.Hello:
    return pb.Hello(supported_versions=wire.SUPPORTED_VERSIONS, client_name=name)


def transport_request(action: pb.Transport.Action) -> pb.Transport:
    return pb.Transport(action=action)


# ----------------------------------------------------------------------------- memory


class _Memory:
    """What this client made the runtime hold, to re-send to a restarted runtime."""

    def __init__(self) -> None:
        self.source: pb.LoadGraph | pb.SetPrompts | None = None
        self.parameters: dict[str, pb.ParameterUpdate] = {}
        self.controls = pb.Controls()
        self.transport: pb.Transport.Action | None = None

    @property
    def empty(self) -> bool:
        return (self.source is None and not self.parameters and not self.controls.ListFields()
                and self.transport is None)

    def remember(self, body: wire.RequestBody) -> None:
        """Note a request the runtime accepted."""
        if isinstance(body, pb.LoadGraph):
            graph = pb.LoadGraph()
            graph.CopyFrom(body)
            self.source = graph
            self.parameters.clear()  # a new graph has its own parameters (control overrides carry over)
        elif isinstance(body, pb.SetPrompts):
            prompts = pb.SetPrompts()
            prompts.CopyFrom(body)
            self.source = prompts
            self.parameters.clear()  # a new graph has its own parameters (control overrides carry over)
        elif isinstance(body, pb.SetParameters):
            for update in body.values:
                kept = pb.ParameterUpdate()
                kept.CopyFrom(update)
                self.parameters[update.name] = kept
        elif isinstance(body, pb.SetControls):
            for name in body.clear:
                self.controls.ClearField(name)
            for name in wire.CONTROL_NAMES:
                if body.controls.HasField(name):
                    if name == "notes":
                        self.controls.notes.CopyFrom(body.controls.notes)
                    else:
                        setattr(self.controls, name, getattr(body.controls, name))
        elif isinstance(body, pb.Transport) and body.action in _REMEMBERED_TRANSPORT:
            self.transport = body.action

    def resync(self) -> list[wire.RequestBody]:
        """The requests that put a fresh runtime back where this client left the old one."""
        out: list[wire.RequestBody] = []
        if self.source is not None:
            out.append(self.source)
        if self.parameters:
            out.append(pb.SetParameters(values=list(self.parameters.values()), bypass=True))
        if self.controls.ListFields():
            out.append(pb.SetControls(controls=self.controls))
        if self.transport is not None:
            out.append(transport_request(self.transport))
        return out


# ----------------------------------------------------------------------------- flows


@dataclass(frozen=True)
class _Send:
    """Flow step: send ``body`` and wait for its reply (the driver sends back the reply body or throws);
    ``patient``: wait as long as for a load (a re-sync step: giving up on it early would send it all again)."""

    body: wire.RequestBody
    patient: bool = False


class _Reset:
    """Flow step: close the control socket and open a new one."""


_RESET: Final = _Reset()
_Step: TypeAlias = _Send | _Reset
Flow = Generator[_Step, Any, T]


def _seconds(value: object, where: str, *, zero_ok: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not (
            value >= 0 if zero_ok else value > 0):
        bound = ">= 0 (0: none)" if zero_ok else "> 0"
        raise UsageError(f"must be a number of seconds {bound}, got {value!r}", where=where)
    return float(value)


class ClientBase:
    """Configuration, lifecycle, request ids, reply matching, re-sync flows and event bookkeeping: no I/O."""

    def __init__(self, control: str = DEFAULT_CONTROL, events: str = DEFAULT_EVENTS, *,
                 timeout: float = DEFAULT_TIMEOUT, name: str = "", auto_reconnect: bool = True,
                 heartbeat: float = DEFAULT_HEARTBEAT, server_public_key: str | bytes | None = None,
                 client_secret_key: str | bytes | None = None, client_public_key: str | bytes | None = None) -> None:
        self.control = check_endpoint(control, "control")
        self.events_endpoint = check_endpoint(events, "events")
        self.timeout = _seconds(timeout, "timeout", zero_ok=False)
        self.heartbeat = _seconds(heartbeat, "heartbeat", zero_ok=True)
        self.name = str(name)
        self.auto_reconnect = bool(auto_reconnect)
        self.keys = CurveKeys.create(server_public_key, client_secret_key, client_public_key)
        self.state = ClientState.UNOPENED
        #: What the runtime said in the last ``Hello`` (None before the first).
        self.server: ServerInfo | None = None
        #: Times the client got a runtime back: after a timeout, or a restarted runtime it re-synced.
        self.reconnects = 0
        #: Replies dropped because they answered an earlier request.
        self.stale_replies = 0
        #: Events missed (gaps in the per-topic sequence numbers).
        self.events_lost = 0
        #: Events that could not be decoded (from a newer runtime?) and were skipped.
        self.events_bad = 0
        #: Exceptions raised by event callbacks (logged, never stopping delivery).
        self.callback_errors = 0
        self._request_id = 0
        self._memory = _Memory()
        self._synced_session: str | None = None
        self._needs_hello = True
        self._lost = False
        self._last_check = 0.0
        self._graph_file: str | None = None
        self._callbacks: dict[str, list[Callable[..., Any]]] = {}
        self._tracker = SequenceTracker()

    # ----------------------------------------------------------------- lifecycle

    def _check_usable(self) -> None:
        if self.state is ClientState.CLOSED:
            raise ClientStateError("Cannot use a client once it has been closed")

    def _check_openable(self) -> None:
        if self.state is ClientState.OPEN:
            raise ClientStateError("Cannot open a client more than once")
        if self.state is ClientState.CLOSED:
            raise ClientStateError("Cannot reopen a client once it has been closed")

    @property
    def sample_rate(self) -> int:
        """The runtime's sample rate (from ``Hello``; the default before it)."""
        return self.server.sample_rate if self.server is not None else wire.DEFAULT_SAMPLE_RATE

    # ----------------------------------------------------------------- bytes

    def _encode(self, body: wire.RequestBody) -> tuple[int, bytes]:
        """A new request id and the frame for ``body``; a value the runtime would refuse raises here."""
        self._request_id += 1
        try:
            return self._request_id, wire.encode_request(body, self._request_id)
        except wire.WireError as exc:
            raise server_error(exc.code, exc.message, field=exc.field, request_id=exc.request_id,
                               supported_versions=exc.supported_versions, remote=False) from exc

    def _check_request(self, body: wire.RequestBody) -> None:
        """Refuse what the runtime would refuse, before any I/O (the id is not consumed)."""
        try:
            wire.validate_request(wire.request_kind(body), body)
        except wire.WireError as exc:
            raise server_error(exc.code, exc.message, field=exc.field, remote=False) from exc

    def _accept(self, request_id: int, frames: Sequence[bytes]) -> wire.ReplyBody | None:
        """A control message → the reply to ``request_id`` (Ok/Status), None for a stale one; raises on Error.

        An ``Error`` with request id 0 answers the request in flight (the
        runtime could not read its id, or refused it before reading it, as
        with ``RATE_LIMITED``): this client has one request in flight at a time.
        """
        if len(frames) != 1:
            self.stale_replies += 1
            return None
        try:
            reply = wire.decode_reply(frames[0])
        except wire.WireError as exc:
            raise ProtocolError(f"undecodable reply from {self.control}: {exc}") from exc
        if reply.request_id != request_id and not (reply.request_id == 0 and reply.kind is wire.ReplyKind.ERROR):
            self.stale_replies += 1
            return None
        if isinstance(reply.body, pb.Error):
            error = reply.body
            message, where = error.message, error.field
            if error.code == pb.Error.GRAPH_INVALID and self._graph_file is not None:
                # the runtime got text and calls it <load_graph>: name the file this client read
                message = message.replace("<load_graph>", self._graph_file)
                where = where.replace("<load_graph>", self._graph_file)
            raise server_error(error.code, message, field=where, request_id=request_id,
                               supported_versions=error.supported_versions)
        return reply.body

    def _wait_for(self, body: wire.RequestBody, patient: bool = False) -> float:
        """How long to wait for the reply to ``body``: ``timeout``, or for a LoadGraph/SetPrompts (and every
        ``patient`` re-sync step) at least :data:`LOAD_WAIT_S` (the runtime answers a load that takes too long
        with TIMEOUT itself; giving up on it earlier would re-send a load the runtime may still apply)."""
        if patient or wire.request_kind(body) in _SOURCE_KINDS:
            return max(self.timeout, LOAD_WAIT_S)
        return self.timeout

    def _timeout_error(self, body: wire.RequestBody, patient: bool = False) -> RequestTimeout:
        kind = wire.request_kind(body).value
        waited = self._wait_for(body, patient)
        return RequestTimeout(f"no reply to {kind} within {waited:g} s from {self.control} (is `cadenza serve` "
                              "running there? with remote endpoints, are the CURVE keys right?)",
                              request=kind, timeout=waited, endpoint=self.control)

    # ----------------------------------------------------------------- flows

    def _request_flow(self, body: wire.RequestBody) -> Flow[wire.ReplyBody]:
        """One request, with the handshake, reconnect, re-sync and one retry around it."""
        kind = wire.request_kind(body)
        self._check_request(body)
        if kind is RequestKind.HELLO:
            status, _ = yield from self._hello_flow()
            return status
        if self._needs_hello:
            yield from self._hello_flow()
        try:
            reply = yield from self._send_flow(body)
        except RequestTimeout:
            if not self.auto_reconnect:
                raise
            _, restarted = yield from self._hello_flow()
            if kind in _ONE_SHOTS and not restarted:
                raise  # a live runtime may have done it already: never twice
            reply = yield from self._send_flow(body)
        except NotReady:
            if not (self.auto_reconnect and self._memory.source is not None) or kind in _SOURCE_KINDS:
                raise
            _, restarted = yield from self._hello_flow()  # learn the new session (re-syncs a restarted runtime)
            if not restarted:  # the same runtime lost the graph: give it back
                self.reconnects += 1
                yield from self._resync_flow()
            reply = yield from self._send_flow(body)
        else:
            if isinstance(reply, pb.Status) and reply.HasField("server") and self._restarted(reply.server.session_id):
                self.server = ServerInfo.from_pb(reply.server)
                self.reconnects += 1
                yield from self._resync_flow()
                reply = yield from self._send_flow(body)
        if kind not in (RequestKind.GET_STATUS, RequestKind.HELLO, RequestKind.DESCRIBE_GRAPH):
            self._memory.remember(body)
            if self.server is not None:
                self._synced_session = self.server.session_id
        return reply

    def _send_flow(self, body: wire.RequestBody, *, patient: bool = False) -> Flow[wire.ReplyBody]:
        try:
            reply: wire.ReplyBody = yield _Send(body, patient)
        except RequestTimeout:
            yield _RESET  # a new DEALER: what the old one still queues must not reach a new runtime
            self._needs_hello = True
            self._lost = True
            raise
        return reply

    def _restarted(self, session_id: str) -> bool:
        """True when ``session_id`` is not the runtime this client's memory was last sent to."""
        return (bool(session_id) and self._synced_session is not None and session_id != self._synced_session
                and not self._memory.empty)

    def _hello_flow(self) -> Flow[tuple[pb.Status, bool]]:
        """``Hello``; re-sync a restarted runtime. Returns the reply and whether the runtime had restarted."""
        reply = yield from self._send_flow(hello_request(self.name))
        if not isinstance(reply, pb.Status) or not reply.HasField("server"):
            raise ProtocolError(f"the reply to hello from {self.control} has no server information")
        info = ServerInfo.from_pb(reply.server)
        if info.protocol_version not in wire.SUPPORTED_VERSIONS:
            raise server_error(pb.Error.UNSUPPORTED_VERSION, f"the runtime chose protocol version "
                               f"{info.protocol_version}; this client speaks {wire.SUPPORTED_VERSIONS}",
                               field="server.protocol_version", supported_versions=info.supported_versions,
                               remote=False)
        self.server = info
        self._needs_hello = False
        self._last_check = time.monotonic()
        restarted = self._restarted(info.session_id)
        if self._lost or restarted:
            self.reconnects += 1
        self._lost = False
        if self._synced_session is None or self._memory.empty:
            self._synced_session = info.session_id
        elif restarted:
            yield from self._resync_flow()
        return reply, restarted

    def _resync_flow(self) -> Flow[None]:
        for body in self._memory.resync():
            yield from self._send_flow(body, patient=True)
        if self.server is not None:
            self._synced_session = self.server.session_id

    def _heartbeat_due(self) -> bool:
        return self.heartbeat > 0 and time.monotonic() - self._last_check >= self.heartbeat

    # ----------------------------------------------------------------- events

    def _add_callback(self, topic: str, callback: Callable[..., Any]) -> None:
        if not callable(callback):
            raise UsageError(f"a callback must be callable, got {type(callback).__name__}", where="callback")
        self._callbacks.setdefault(check_topic(topic), []).append(callback)

    def _remove_callback(self, topic: str, callback: Callable[..., Any]) -> None:
        callbacks = self._callbacks.get(check_topic(topic), [])
        if callback in callbacks:
            callbacks.remove(callback)

    def _decode_event(self, frames: Sequence[bytes]) -> Event | None:
        """SUB frames → an :class:`Event` (None for one that cannot be decoded), counting gaps."""
        try:
            decoded = wire.decode_event(frames)
        except wire.WireError:
            self.events_bad += 1
            return None
        self.events_lost += self._tracker.observe(decoded.topic.value, decoded.sequence)
        return event_from_wire(decoded)

    # ----------------------------------------------------------------- replies → views

    def _ack(self, reply: wire.ReplyBody) -> Ack:
        if isinstance(reply, pb.Ok):
            return Ack.from_pb(reply, sample_rate=self.sample_rate)
        return Ack(None, None)

    def _graph_info(self, reply: wire.ReplyBody) -> GraphInfo:
        if not isinstance(reply, pb.GraphDescription):
            raise ProtocolError(f"expected a GraphDescription reply from {self.control}, got {type(reply).__name__}")
        return GraphInfo.from_pb(reply)

    def _status(self, reply: wire.ReplyBody) -> Status:
        if not isinstance(reply, pb.Status):
            raise ProtocolError(f"expected a Status reply from {self.control}, got {type(reply).__name__}")
        return Status.from_pb(reply, sample_rate=self.sample_rate)
