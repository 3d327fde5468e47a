"""The blocking client: talk to a running ``cadenza serve`` from a game loop, get its events, hear its audio.

::

    from cadenza.sdk import Client

    with Client(name="my-game") as music:           # tcp://127.0.0.1:5555 (control), :5556 (events)
        music.load_graph("examples/action_game/graph.yaml")   # read here, sent as text
        music.on_beat(lambda ev: print("beat", ev.beat, ev.bpm))
        music.set(danger=0.7, mode="combat")
        music.trigger("boss_defeated")
        print(music.status().state)

Requests go out one at a time (a lock), each answered by exactly one reply
within ``timeout`` seconds, or :class:`~cadenza.sdk.errors.RequestTimeout`.
An ``Error`` reply raises its typed :class:`~cadenza.sdk.errors.ServerError`
(``UnknownName``, ``BadValue``, ``GraphInvalid``, ``NotReady`` …) with the
runtime's ``code``, ``field`` and ``message``; a value the runtime would
refuse (a NaN) raises the same error before anything is sent.

The client survives a runtime restart on its own (see
:mod:`cadenza.sdk._base`): it reconnects, re-sends its graph, parameters,
prompts and controls, and retries the request once; with ``heartbeat`` > 0 a
background thread says ``Hello`` every ``heartbeat`` seconds so this happens
even when the game sends nothing. ``client.reconnects`` counts the times.

Events come from a background thread that owns a SUB socket, started by the
first :meth:`Client.on` or :meth:`Client.events`. Callbacks run on that
thread (keep them short; an exception is logged and counted in
``callback_errors``, delivery goes on). ``events_lost`` counts gaps in the
per-topic sequence numbers. ZeroMQ delivers only what is published after the
subscription reaches the runtime, so a late joiner subscribes first and then
asks :meth:`Client.status` for a snapshot: its ``event_sequences`` say which
events the snapshot already covers.

:class:`AudioStream` receives the runtime's PCM for a client that plays the
audio itself.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

import zmq

from cadenza.errors import CadenzaError
from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.sdk._base import (
    DEFAULT_AUDIO,
    DEFAULT_AUDIO_INT16,
    STALE_AUDIO_S,
    StaleAudio,
    audio_socket_options,
    DEFAULT_CONTROL,
    DEFAULT_EVENTS,
    DEFAULT_HEARTBEAT,
    DEFAULT_TIMEOUT,
    POLL_SLICE,
    Ack,
    BeatEvent,
    ClientBase,
    ClientState,
    CurveKeys,
    Event,
    GraphInfo,
    MixEvent,
    SequenceTracker,
    ServerInfo,
    StateEvent,
    Status,
    StingerEvent,
    WarningEvent,
    XrunEvent,
    _Send,
    check_endpoint,
    check_topic,
    controls_request,
    graph_request,
    name_of,
    parameters_request,
    prompts_request,
    socket_options,
    transport_error,
    transport_request,
)
from cadenza.sdk.errors import ClientStateError, RequestTimeout, ServerError

__all__ = ["AudioStream", "Client", "EventStream"]

log = logging.getLogger("cadenza.sdk")

T = TypeVar("T")
SocketT = TypeVar("SocketT", bound="zmq.Socket[Any]")
C = TypeVar("C", bound=Callable[..., Any])
#: Events an :class:`EventStream` holds before it drops the oldest.
EVENT_QUEUE_SIZE: Final = 10_000
#: How long ``close()`` waits for the event thread (it never waits on a callback longer than this).
JOIN_TIMEOUT: Final = 0.5


def open_socket(ctx: zmq.Context[SocketT], kind: int, endpoint: str, keys: CurveKeys | None, what: str,
                extra: Iterable[tuple[int, int | bytes]] = ()) -> SocketT:
    """A socket of ``kind`` with the SDK's options (and ``extra`` ones), connected to ``endpoint``; ZeroMQ errors
    translated.

    Shared by the blocking and the asyncio client (``ctx`` decides which socket class).
    """
    sock = ctx.socket(kind)
    try:
        for option, value in [*socket_options(keys), *extra]:
            sock.setsockopt(option, value)
        if kind == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        sock.close(0)
        raise transport_error(exc, f"cannot connect the {what} socket to {endpoint!r}") from exc
    return sock


class _Listener(threading.Thread):
    """The event thread: owns its context and SUB socket, hands each event to the client's dispatch."""

    def __init__(self, client: Client) -> None:
        super().__init__(name="cadenza-events", daemon=True)
        self.client = client
        self.stop_event = threading.Event()
        self.started_event = threading.Event()
        self.error: CadenzaError | None = None

    def run(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context()
        try:
            sock = open_socket(ctx, zmq.SUB, self.client.events_endpoint, self.client.keys, "events")
        except CadenzaError as exc:
            self.error = exc
            self.started_event.set()
            ctx.term()
            return
        self.started_event.set()
        try:
            while not self.stop_event.is_set():
                if not sock.poll(int(POLL_SLICE * 2000)):
                    continue
                for _ in range(1000):  # drain a burst, then look at the stop flag again
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    event = self.client._decode_event(frames)
                    if event is not None:
                        self.client._dispatch(event)
                    if self.stop_event.is_set():
                        break
        except zmq.ZMQError as exc:  # the socket failed: report it, end the thread
            self.error = transport_error(exc, f"events socket on {self.client.events_endpoint!r}")
            log.error("%s", self.error)
        finally:
            sock.close(0)
            ctx.term()


class EventStream(Iterator[Event]):
    """Events as an iterator (from :meth:`Client.events`): buffered from its creation until :meth:`close`.

    Iteration ends when no event came for ``timeout`` seconds (never, when
    ``timeout`` is None) or when the client closes. ``dropped`` counts events
    discarded because the stream was not read fast enough.
    """

    def __init__(self, client: Client, topics: frozenset[str] | None, timeout: float | None) -> None:
        self._client = client
        self.topics = topics
        self.timeout = timeout
        self.dropped = 0
        self._queue: queue.Queue[Event] = queue.Queue(EVENT_QUEUE_SIZE)
        self._closed = False

    def _offer(self, event: Event) -> None:
        if self.topics is not None and event.topic not in self.topics:
            return
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            if self._closed or self._client.state is ClientState.CLOSED:
                raise StopIteration
            wait = POLL_SLICE * 2
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise StopIteration
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                continue

    def close(self) -> None:
        """Stop buffering events."""
        self._closed = True
        self._client._streams.discard(self)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Client(ClientBase):
    """A blocking client of a Cadenza runtime (control DEALER, events SUB); safe to share between threads.

    ``control`` and ``events`` are the runtime's endpoints; ``timeout`` the
    seconds to wait for each reply; ``name`` is sent in ``Hello`` (it shows in
    the runtime's logs); ``auto_reconnect`` re-syncs a restarted runtime;
    ``heartbeat`` (seconds, 0 for none) is how often an idle client checks that
    its runtime is the same one. For a runtime on another machine give
    ``server_public_key`` (z85, from the runtime's key pair), and optionally
    this client's ``client_secret_key``/``client_public_key`` (an ephemeral
    pair otherwise).

    A client opens on first use (or :meth:`open`, or ``with``), and once
    closed cannot be used again (:class:`~cadenza.sdk.errors.ClientStateError`).
    Every request method returns when the runtime has answered: an
    :class:`~cadenza.sdk._base.Ack` (when the request takes effect, warnings)
    or a :class:`~cadenza.sdk._base.Status`.
    """

    def __init__(self, control: str = DEFAULT_CONTROL, events: str = DEFAULT_EVENTS, *,
                 timeout: float = DEFAULT_TIMEOUT, name: str = "", auto_reconnect: bool = True,
                 heartbeat: float = DEFAULT_HEARTBEAT, server_public_key: str | bytes | None = None,
                 client_secret_key: str | bytes | None = None, client_public_key: str | bytes | None = None) -> None:
        super().__init__(control, events, timeout=timeout, name=name, auto_reconnect=auto_reconnect,
                         heartbeat=heartbeat, server_public_key=server_public_key,
                         client_secret_key=client_secret_key, client_public_key=client_public_key)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._ctx: zmq.Context[Any] | None = None
        self._dealer: zmq.Socket[bytes] | None = None
        self._heartbeat_thread: threading.Thread | None = None
        self._listener: _Listener | None = None
        self._listener_lock = threading.Lock()  # not the request lock: on() never waits for a request
        self._streams: set[EventStream] = set()

    # ----------------------------------------------------------------- lifecycle

    def open(self) -> Client:
        """Connect the control socket (nothing is sent until the first request) and start the heartbeat."""
        with self._lock:
            self._check_openable()
            ctx: zmq.Context[Any] = zmq.Context()
            try:
                self._dealer = open_socket(ctx, zmq.DEALER, self.control, self.keys, "control")
            except CadenzaError:
                ctx.term()
                raise
            self._ctx = ctx
            self.state = ClientState.OPEN
            self._last_check = time.monotonic()  # the first heartbeat comes one heartbeat from now
            if self.auto_reconnect and self.heartbeat > 0:
                self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="cadenza-heartbeat",
                                                          daemon=True)
                self._heartbeat_thread.start()
        return self

    def _ensure_open(self) -> None:
        if self.state is ClientState.UNOPENED:
            with self._lock:
                if self.state is ClientState.UNOPENED:
                    self.open()
        self._check_usable()

    def close(self) -> None:
        """Close the sockets and stop the threads; a request in flight ends with ``ClientStateError``.

        Never waits on an event callback for more than half a second. Closing twice is fine.
        """
        if self.state is ClientState.CLOSED:
            return
        self._closing.set()
        current = threading.current_thread()
        with self._listener_lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop_event.set()
            if listener is not current:
                listener.join(JOIN_TIMEOUT)
        if self._heartbeat_thread is not None and self._heartbeat_thread is not current:
            self._heartbeat_thread.join()
        with self._lock:
            self.state = ClientState.CLOSED
            if self._dealer is not None:
                self._dealer.close(0)
                self._dealer = None
            if self._ctx is not None:
                self._ctx.term()
                self._ctx = None
        for stream in list(self._streams):
            stream.close()

    def __enter__(self) -> Client:
        self._ensure_open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ----------------------------------------------------------------- I/O driver

    def _new_dealer(self) -> None:
        assert self._ctx is not None
        if self._dealer is not None:
            self._dealer.close(0)
            self._dealer = None
        self._dealer = open_socket(self._ctx, zmq.DEALER, self.control, self.keys, "control")

    def _roundtrip(self, body: wire.RequestBody, patient: bool = False) -> wire.ReplyBody:
        """Send one request and wait for its reply (stale replies dropped); RequestTimeout after ``timeout``."""
        sock = self._dealer
        if sock is None or self._closing.is_set():
            raise ClientStateError("Cannot use a client once it has been closed")
        request_id, frame = self._encode(body)
        deadline = time.monotonic() + self._wait_for(body, patient)
        try:
            while True:
                try:
                    sock.send(frame, zmq.NOBLOCK)
                    break
                except zmq.Again:  # the send queue is full: the runtime is not reading
                    if time.monotonic() >= deadline:
                        raise self._timeout_error(body, patient) from None
                    sock.poll(int(POLL_SLICE * 1000), zmq.POLLOUT)
            while True:
                if self._closing.is_set():
                    raise ClientStateError("Cannot use a client once it has been closed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout_error(body, patient)
                if sock.poll(max(1, int(min(remaining, POLL_SLICE) * 1000)), zmq.POLLIN):
                    reply = self._accept(request_id, sock.recv_multipart(zmq.NOBLOCK))
                    if reply is not None:
                        return reply
        except zmq.ZMQError as exc:
            raise transport_error(exc, f"{wire.request_kind(body).value} on {self.control!r}") from exc

    def _drive(self, flow: Generator[Any, Any, T]) -> T:
        """Run a flow from :mod:`cadenza.sdk._base` with this client's socket calls."""
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    step = flow.throw(error) if error is not None else flow.send(value)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                value, error = None, None
                try:
                    if isinstance(step, _Send):
                        value = self._roundtrip(step.body, step.patient)
                    else:
                        try:
                            self._new_dealer()
                        except CadenzaError:
                            self._dealer = None
                            raise
                except (RequestTimeout, ServerError) as exc:
                    error = exc  # the flow decides: reconnect, re-sync, retry or raise
        finally:
            flow.close()

    def _call(self, body: wire.RequestBody) -> wire.ReplyBody:
        self._ensure_open()
        with self._lock:
            self._check_usable()
            if self._dealer is None:  # a failed reset left none
                self._new_dealer()
            return self._drive(self._request_flow(body))

    def _heartbeat_loop(self) -> None:
        while not self._closing.wait(min(self.heartbeat, POLL_SLICE * 2)):
            if not self._heartbeat_due():
                continue
            if not self._lock.acquire(timeout=POLL_SLICE * 2):
                continue
            try:
                if self._closing.is_set() or not self._heartbeat_due():
                    continue
                if self._dealer is None:
                    self._new_dealer()
                self._drive(self._hello_flow())
            except CadenzaError as exc:
                self._last_check = time.monotonic()  # try again in a heartbeat
                if not self._closing.is_set():
                    log.debug("heartbeat to %s failed: %s", self.control, exc)
            finally:
                self._lock.release()

    # ----------------------------------------------------------------- requests

    def hello(self) -> ServerInfo:
        """Say hello (done implicitly before the first request): agree on a version, learn the runtime.

        Stores and returns the :class:`ServerInfo` (``session_id``, backend,
        sample rate, honoured controls …); also in ``client.server``.
        """
        self._call(pb.Hello())
        assert self.server is not None
        return self.server

    def load_graph(self, source: object) -> Ack:
        """Load a style graph: a file path (read here and sent as text), the YAML/JSON text, or a GraphBuilder.

        A file is sent with its folder (``LoadGraph.base_dir``), so its relative
        audio paths resolve as with ``cadenza serve --graph``; the runtime reads
        them only from folders its operator allows (``--allow-dir``), else
        :class:`~cadenza.sdk.errors.GraphInvalid` says which path is outside.
        Raises :class:`~cadenza.sdk.errors.GraphInvalid` listing every issue
        as ``file:line path: message``. Parameter values set before are
        forgotten (a new graph has its own); control overrides stay.
        """
        body, path = graph_request(source)
        with self._lock:
            self._graph_file = path
            try:
                return self._ack(self._call(body))
            finally:
                self._graph_file = None

    def set(self, **values: float | str) -> Ack:
        """Set parameters: ``client.set(danger=0.8, mode="combat")`` (numbers, or labels)."""
        return self.set_many(values)

    def set_many(self, values: Mapping[Any, float | str], *, ramp: float | None = None, shape: str = "linear",
                 bypass: bool = False, clamp: bool = False) -> Ack:
        """Set several parameters at one control tick.

        ``ramp`` reaches the values over that many seconds (with ``shape``:
        linear, s-curve, log, exp, sine, constant), instead of the parameters'
        own smoothing; ``bypass`` jumps at once (no filter, ramp or smoothing:
        a level load). Keys are names or ``Param`` handles.
        """
        return self._ack(self._call(parameters_request(values, ramp=ramp, shape=shape, bypass=bypass, clamp=clamp)))

    def trigger(self, name: object) -> Ack:
        """Fire a graph trigger (a name or a ``TriggerRef``)."""
        return self._ack(self._call(pb.Trigger(name=name_of(name, "trigger.name"))))

    def set_state(self, name: object) -> Ack:
        """Force the graph's state machine into a state (a name or a ``StateRef``), with its transition."""
        return self._ack(self._call(pb.SetState(name=name_of(name, "set_state.name"))))

    def set_prompts(self, prompts: Mapping[Any, float] | Iterable[Any]) -> Ack:
        """Play weighted prompts directly, without a graph: ``{"dark techno": 1.0, "rain": 0.3}``.

        Or a list of ``(text, weight)`` pairs or plain texts; a
        ``pathlib.Path`` is an audio prompt (a file on the runtime's machine).
        Replaces the graph.
        """
        return self._ack(self._call(prompts_request(prompts)))

    def set_controls(self, **controls: Any) -> Ack:
        """Override musical controls (``bpm=120, density=0.5, scale="A minor"``); ``None`` clears one."""
        return self._ack(self._call(controls_request(controls)))

    def clear_controls(self, *names: str) -> Ack:
        """Give controls back to the graph (or the prompts); no names: all of them."""
        return self._ack(self._call(controls_request({}, names or wire.CONTROL_NAMES)))

    def play(self) -> Ack:
        """Start (or resume) the music."""
        return self._ack(self._call(transport_request(pb.Transport.PLAY)))

    def pause(self) -> Ack:
        """Hold the music: a short fade to silence; the graph keeps its state, parameters and musical position
        (:meth:`play` resumes from there). The stream clock runs on."""
        return self._ack(self._call(transport_request(pb.Transport.PAUSE)))

    def stop(self) -> Ack:
        """Stop the music: a short fade to silence, then the graph goes back to its initial state and parameter
        defaults (control overrides stay); :meth:`play` starts it over."""
        return self._ack(self._call(transport_request(pb.Transport.STOP)))

    def reset_context(self) -> Ack:
        """Make the model forget its audio context (a fresh start that crossfades in; the music keeps playing)."""
        return self._ack(self._call(transport_request(pb.Transport.RESET_CONTEXT)))

    def status(self) -> Status:
        """A snapshot of the runtime: state, parameters, weights, controls, stream time, event sequences …"""
        return self._status(self._call(pb.GetStatus()))

    def describe(self) -> GraphInfo:
        """What the loaded graph offers: parameters (kind, range, labels, default, current value; the builtin
        ``intensity``), states and the current one, triggers, prompts with their weights, stingers and the
        effective controls. :class:`~cadenza.sdk.errors.NotReady` when no graph is loaded."""
        return self._graph_info(self._call(pb.DescribeGraph()))

    # ----------------------------------------------------------------- events

    def _start_listener(self) -> _Listener:
        self._ensure_open()
        with self._listener_lock:
            self._check_usable()
            if self._listener is None or not self._listener.is_alive():
                listener = _Listener(self)
                listener.start()
                listener.started_event.wait()
                if listener.error is not None:
                    raise listener.error
                self._listener = listener
            return self._listener

    def _dispatch(self, event: Event) -> None:
        for callback in list(self._callbacks.get(event.topic, ())):
            try:
                callback(event)
            except Exception:  # noqa: BLE001 — a game's bug must not stop the music's events
                self.callback_errors += 1
                log.exception("event callback %r failed on %s #%d", callback, event.topic, event.sequence)
        for stream in list(self._streams):
            stream._offer(event)

    def on(self, topic: str, callback: C | None = None) -> Any:
        """Call ``callback(event)`` for every event of ``topic`` (beat, bar, state, mix, stinger, xrun, warning,
        status).

        Starts the event thread; callbacks run on it. Returns the callback,
        or, without one, a decorator: ``@client.on("beat")``.
        """
        check_topic(topic)
        if callback is None:
            def decorator(fn: C) -> C:
                self.on(topic, fn)
                return fn

            return decorator
        self._add_callback(topic, callback)
        self._start_listener()
        return callback

    def off(self, topic: str, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback`` for ``topic``."""
        self._remove_callback(topic, callback)

    def on_beat(self, callback: Callable[[BeatEvent], Any]) -> Callable[[BeatEvent], Any]:
        """``on("beat", callback)``: every beat (``beat``, ``bar``, ``beat_in_bar``, ``bpm``)."""
        return self.on("beat", callback)

    def on_bar(self, callback: Callable[[BeatEvent], Any]) -> Callable[[BeatEvent], Any]:
        """``on("bar", callback)``: every downbeat."""
        return self.on("bar", callback)

    def on_state(self, callback: Callable[[StateEvent], Any]) -> Callable[[StateEvent], Any]:
        """``on("state", callback)``: state changes (scheduled, started, completed)."""
        return self.on("state", callback)

    def on_mix(self, callback: Callable[[MixEvent], Any]) -> Callable[[MixEvent], Any]:
        """``on("mix", callback)``: the prompt weights (about ten times a second)."""
        return self.on("mix", callback)

    def on_stinger(self, callback: Callable[[StingerEvent], Any]) -> Callable[[StingerEvent], Any]:
        """``on("stinger", callback)``: stingers fired."""
        return self.on("stinger", callback)

    def on_xrun(self, callback: Callable[[XrunEvent], Any]) -> Callable[[XrunEvent], Any]:
        """``on("xrun", callback)``: the output ran dry."""
        return self.on("xrun", callback)

    def on_warning(self, callback: Callable[[WarningEvent], Any]) -> Callable[[WarningEvent], Any]:
        """``on("warning", callback)``: what the runtime did not honour, failsafes."""
        return self.on("warning", callback)

    def events(self, timeout: float | None = None, *, topics: Iterable[str] | None = None) -> EventStream:
        """The events as an iterator, buffered from this call on (``for ev in client.events(timeout=5): …``).

        Iteration ends after ``timeout`` seconds without an event (never for
        None) or when the client closes; ``topics`` picks topics (all by
        default).
        """
        chosen = None if topics is None else frozenset(check_topic(t) for t in topics)
        stream = EventStream(self, chosen, timeout)
        self._streams.add(stream)
        try:
            self._start_listener()
        except BaseException:
            stream.close()
            raise
        return stream


class AudioStream:
    """The runtime's audio as ``(sequence, stream_time, pcm)`` chunks, for a client that plays it itself.

    ``format="int16"`` subscribes to the runtime's int16 socket (``ServerInfo.endpoints["audio_int16"]``,
    default ``tcp://127.0.0.1:5558``): half the bytes on the wire, the same chunks. Chunks that arrive more
    than ``stale_after`` seconds (0.5) later than live audio are dropped (see StaleAudio) and counted in ``stale``
    (a reader that stopped reading never plays old audio); None keeps every chunk.

    ``pcm`` is float32 ``(frames, channels)``; ``stream_time`` the first
    frame's sample. ``lost`` counts chunks missed (sequence gaps), ``bad``
    chunks that could not be decoded. Iteration ends after ``timeout`` seconds
    without audio (never for None) or on :meth:`close`. Given ``sample_rate``,
    a chunk at another rate is refused (``BadValue``). Use it from one thread.
    """

    def __init__(self, endpoint: str | None = None, *, timeout: float | None = None, sample_rate: int | None = None,
                 format: str = "float32", stale_after: float | None = STALE_AUDIO_S,
                 server_public_key: str | bytes | None = None, client_secret_key: str | bytes | None = None,
                 client_public_key: str | bytes | None = None) -> None:
        self._options = audio_socket_options(format)
        self.format = format
        default = DEFAULT_AUDIO if format == "float32" else DEFAULT_AUDIO_INT16
        self.endpoint = check_endpoint(endpoint if endpoint is not None else default, "endpoint")
        self.timeout = timeout
        self.sample_rate = sample_rate
        self.keys = CurveKeys.create(server_public_key, client_secret_key, client_public_key)
        self.state = ClientState.UNOPENED
        self.chunks = 0
        self.bad = 0
        self._stale = StaleAudio(stale_after) if stale_after is not None else None
        self._tracker = SequenceTracker()
        self._ctx: zmq.Context[Any] | None = None
        self._sock: zmq.Socket[bytes] | None = None

    @property
    def lost(self) -> int:
        """Chunks missed: gaps in the sequence numbers."""
        return self._tracker.lost

    @property
    def stale(self) -> int:
        """Chunks dropped because they came too late (see :class:`~cadenza.sdk._base.StaleAudio`)."""
        return self._stale.stale if self._stale is not None else 0

    def open(self) -> AudioStream:
        """Subscribe (done on first read): chunks published from about now on arrive."""
        if self.state is ClientState.CLOSED:
            raise ClientStateError("Cannot reopen an audio stream once it has been closed")
        if self.state is ClientState.OPEN:
            return self
        ctx: zmq.Context[Any] = zmq.Context()
        try:
            self._sock = open_socket(ctx, zmq.SUB, self.endpoint, self.keys, "audio", extra=self._options)
        except CadenzaError:
            ctx.term()
            raise
        self._ctx = ctx
        self.state = ClientState.OPEN
        return self

    def read(self, timeout: float | None = None) -> wire.DecodedAudio | None:
        """The next chunk, or None after ``timeout`` seconds (None: wait for one)."""
        if self.state is ClientState.CLOSED:
            raise ClientStateError("Cannot use an audio stream once it has been closed")
        self.open()
        sock = self._sock
        assert sock is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            asked = time.monotonic()  # since when this read waits for a chunk (StaleAudio: at the queue's head?)
            while True:
                wait = POLL_SLICE * 2 if deadline is None else max(0.0, deadline - time.monotonic())
                if sock.poll(int(wait * 1000)):
                    data = sock.recv(zmq.NOBLOCK)
                    arrival = time.monotonic()
                    waited, asked = arrival - asked, arrival
                    try:
                        chunk = wire.decode_audio(data, sample_rate=self.sample_rate)
                    except wire.WireError:
                        self.bad += 1
                        continue
                    if self._stale is not None and not self._stale.fresh(
                            chunk.sequence, chunk.stream_time, self.sample_rate or wire.DEFAULT_SAMPLE_RATE, arrival,
                            waited):
                        self._tracker.observe("audio", chunk.sequence)
                        continue
                    self.chunks += 1
                    self._tracker.observe("audio", chunk.sequence)
                    return chunk
                if deadline is not None and time.monotonic() >= deadline:
                    return None
        except zmq.ZMQError as exc:
            raise transport_error(exc, f"audio socket on {self.endpoint!r}") from exc

    def __iter__(self) -> Iterator[wire.DecodedAudio]:
        while self.state is not ClientState.CLOSED:
            chunk = self.read(self.timeout)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self.state = ClientState.CLOSED

    def __enter__(self) -> AudioStream:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()
