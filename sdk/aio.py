"""The asyncio client: :class:`AsyncClient` mirrors :class:`~cadenza.sdk.client.Client` with ``async def``.

::

    from cadenza.sdk import AsyncClient

    async with AsyncClient(name="my-game") as music:
        await music.load_graph("examples/action_game/graph.yaml")
        await music.set(danger=0.7)
        async for event in music.events(timeout=5, topics=["beat"]):
            print(event.beat)

Same requests, replies, errors, reconnect and re-sync as the blocking client
(the logic is shared in :mod:`cadenza.sdk._base`; only the waiting differs:
``zmq.asyncio`` sockets). The heartbeat and the event listener are tasks on
the running loop; callbacks registered with :meth:`AsyncClient.on` run in the
listener task and may be plain functions or coroutine functions (awaited in
order, so keep them short). :meth:`AsyncClient.aclose` (or leaving
``async with``) closes it. :class:`AsyncAudioStream` is the asyncio
:class:`~cadenza.sdk.client.AudioStream`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import zmq
import zmq.asyncio

from cadenza.errors import CadenzaError, UsageError
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
    ClientBase,
    ClientState,
    CurveKeys,
    Event,
    GraphInfo,
    SequenceTracker,
    ServerInfo,
    Status,
    _Send,
    check_endpoint,
    check_topic,
    controls_request,
    graph_request,
    name_of,
    parameters_request,
    prompts_request,
    transport_error,
    transport_request,
)
from cadenza.sdk.client import EVENT_QUEUE_SIZE, open_socket
from cadenza.sdk.errors import ClientStateError, RequestTimeout, ServerError

__all__ = ["AsyncAudioStream", "AsyncClient", "AsyncEventStream"]

log = logging.getLogger("cadenza.sdk")

T = TypeVar("T")
C = TypeVar("C", bound=Callable[..., Any])


def _running_loop(what: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise UsageError(f"{what} needs a running asyncio event loop (call it from async code)") from None


class AsyncEventStream(AsyncIterator[Event]):
    """Events as an async iterator (from :meth:`AsyncClient.events`), buffered from its creation.

    Iteration ends when no event came for ``timeout`` seconds (never for
    None) or when the client closes; ``dropped`` counts events discarded
    because the stream was not read fast enough.
    """

    def __init__(self, client: AsyncClient, topics: frozenset[str] | None, timeout: float | None) -> None:
        self._client = client
        self.topics = topics
        self.timeout = timeout
        self.dropped = 0
        self._queue: asyncio.Queue[Event] = asyncio.Queue(EVENT_QUEUE_SIZE)
        self._closed = False

    def _offer(self, event: Event) -> None:
        if self.topics is not None and event.topic not in self.topics:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            if self._closed or self._client.state is ClientState.CLOSED:
                raise StopAsyncIteration
            wait = POLL_SLICE * 2
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise StopAsyncIteration
            try:
                return await asyncio.wait_for(self._queue.get(), wait)
            except asyncio.TimeoutError:
                continue

    def close(self) -> None:
        """Stop buffering events."""
        self._closed = True
        self._client._streams.discard(self)

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(ClientBase):
    """An asyncio client of a Cadenza runtime: every request method of ``Client``, as a coroutine.

    Same arguments as :class:`~cadenza.sdk.client.Client`. Use it from one
    event loop; requests from several tasks go out one at a time.
    """

    def __init__(self, control: str = DEFAULT_CONTROL, events: str = DEFAULT_EVENTS, *,
                 timeout: float = DEFAULT_TIMEOUT, name: str = "", auto_reconnect: bool = True,
                 heartbeat: float = DEFAULT_HEARTBEAT, server_public_key: str | bytes | None = None,
                 client_secret_key: str | bytes | None = None, client_public_key: str | bytes | None = None) -> None:
        super().__init__(control, events, timeout=timeout, name=name, auto_reconnect=auto_reconnect,
                         heartbeat=heartbeat, server_public_key=server_public_key,
                         client_secret_key=client_secret_key, client_public_key=client_public_key)
        self._lock = asyncio.Lock()
        self._closing = False
        self._ctx: zmq.asyncio.Context | None = None
        self._dealer: zmq.asyncio.Socket | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._listener_task: asyncio.Task[None] | None = None
        self._listener_error: CadenzaError | None = None
        self._streams: set[AsyncEventStream] = set()

    # ----------------------------------------------------------------- lifecycle

    def open(self) -> AsyncClient:
        """Connect the control socket and start the heartbeat task (inside a running loop)."""
        self._check_openable()
        loop = _running_loop("AsyncClient.open()")
        ctx = zmq.asyncio.Context()
        try:
            self._dealer = open_socket(ctx, zmq.DEALER, self.control, self.keys, "control")
        except CadenzaError:
            ctx.term()
            raise
        self._ctx = ctx
        self.state = ClientState.OPEN
        self._last_check = time.monotonic()
        if self.auto_reconnect and self.heartbeat > 0:
            self._heartbeat_task = loop.create_task(self._heartbeat_loop(), name="cadenza-heartbeat")
        return self

    def _ensure_open(self) -> None:
        if self.state is ClientState.UNOPENED:
            self.open()
        self._check_usable()

    async def aclose(self) -> None:
        """Close the sockets and stop the tasks; a request in flight ends with ``ClientStateError``."""
        if self.state is ClientState.CLOSED:
            return
        self._closing = True
        current = asyncio.current_task()
        for task in (self._listener_task, self._heartbeat_task):
            if task is not None and task is not current and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._listener_task = self._heartbeat_task = None
        async with self._lock:  # a request in flight notices _closing within POLL_SLICE
            self.state = ClientState.CLOSED
            if self._dealer is not None:
                self._dealer.close(0)
                self._dealer = None
            if self._ctx is not None:
                self._ctx.term()
                self._ctx = None
        for stream in list(self._streams):
            stream.close()

    async def __aenter__(self) -> AsyncClient:
        self._ensure_open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- I/O driver

    def _new_dealer(self) -> None:
        assert self._ctx is not None
        if self._dealer is not None:
            self._dealer.close(0)
            self._dealer = None
        self._dealer = open_socket(self._ctx, zmq.DEALER, self.control, self.keys, "control")

    async def _roundtrip(self, body: wire.RequestBody, patient: bool = False) -> wire.ReplyBody:
        sock = self._dealer
        if sock is None or self._closing:
            raise ClientStateError("Cannot use a client once it has been closed")
        request_id, frame = self._encode(body)
        deadline = time.monotonic() + self._wait_for(body, patient)
        try:
            while True:
                try:
                    await sock.send(frame, zmq.NOBLOCK)
                    break
                except zmq.Again:
                    if time.monotonic() >= deadline:
                        raise self._timeout_error(body, patient) from None
                    await asyncio.sleep(POLL_SLICE)
            while True:
                if self._closing:
                    raise ClientStateError("Cannot use a client once it has been closed")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout_error(body, patient)
                if await sock.poll(max(1, int(min(remaining, POLL_SLICE) * 1000))):
                    reply = self._accept(request_id, await sock.recv_multipart())
                    if reply is not None:
                        return reply
        except zmq.ZMQError as exc:
            raise transport_error(exc, f"{wire.request_kind(body).value} on {self.control!r}") from exc

    async def _adrive(self, flow: Generator[Any, Any, T]) -> T:
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
                        value = await self._roundtrip(step.body, step.patient)
                    else:
                        try:
                            self._new_dealer()
                        except CadenzaError:
                            self._dealer = None
                            raise
                except (RequestTimeout, ServerError) as exc:
                    error = exc
        finally:
            flow.close()

    async def _call(self, body: wire.RequestBody) -> wire.ReplyBody:
        self._ensure_open()
        async with self._lock:
            self._check_usable()
            if self._dealer is None:
                self._new_dealer()
            return await self._adrive(self._request_flow(body))

    async def _heartbeat_loop(self) -> None:
        while not self._closing:
            await asyncio.sleep(min(self.heartbeat, POLL_SLICE * 2))
            if not self._heartbeat_due() or self._lock.locked():
                continue
            async with self._lock:
                if self._closing or not self._heartbeat_due():
                    continue
                try:
                    if self._dealer is None:
                        self._new_dealer()
                    await self._adrive(self._hello_flow())
                except CadenzaError as exc:
                    self._last_check = time.monotonic()
                    if not self._closing:
                        log.debug("heartbeat to %s failed: %s", self.control, exc)

    # ----------------------------------------------------------------- requests

    async def hello(self) -> ServerInfo:
        """Say hello (done implicitly before the first request); returns and stores the :class:`ServerInfo`."""
        await self._call(pb.Hello())
        assert self.server is not None
        return self.server

    async def load_graph(self, source: object) -> Ack:
        """Load a style graph: a file path (read here, sent as text with its folder as ``base_dir``), YAML/JSON
        text, or a GraphBuilder (see :meth:`cadenza.sdk.Client.load_graph`)."""
        body, path = graph_request(source)
        self._ensure_open()
        async with self._lock:
            self._check_usable()
            self._graph_file = path
            try:
                if self._dealer is None:
                    self._new_dealer()
                return self._ack(await self._adrive(self._request_flow(body)))
            finally:
                self._graph_file = None

    async def set(self, **values: float | str) -> Ack:
        """Set parameters: ``await client.set(danger=0.8, mode="combat")``."""
        return await self.set_many(values)

    async def set_many(self, values: Mapping[Any, float | str], *, ramp: float | None = None,
                       shape: str = "linear", bypass: bool = False, clamp: bool = False) -> Ack:
        """Set several parameters at one control tick (``ramp`` seconds with ``shape``, or ``bypass``)."""
        return self._ack(await self._call(parameters_request(values, ramp=ramp, shape=shape, bypass=bypass, clamp=clamp)))

    async def trigger(self, name: object) -> Ack:
        """Fire a graph trigger."""
        return self._ack(await self._call(pb.Trigger(name=name_of(name, "trigger.name"))))

    async def set_state(self, name: object) -> Ack:
        """Force the graph's state machine into a state."""
        return self._ack(await self._call(pb.SetState(name=name_of(name, "set_state.name"))))

    async def set_prompts(self, prompts: Mapping[Any, float] | Iterable[Any]) -> Ack:
        """Play weighted prompts directly, without a graph."""
        return self._ack(await self._call(prompts_request(prompts)))

    async def set_controls(self, **controls: Any) -> Ack:
        """Override musical controls; ``None`` clears one."""
        return self._ack(await self._call(controls_request(controls)))

    async def clear_controls(self, *names: str) -> Ack:
        """Give controls back to the graph; no names: all of them."""
        return self._ack(await self._call(controls_request({}, names or wire.CONTROL_NAMES)))

    async def play(self) -> Ack:
        """Start (or resume) the music."""
        return self._ack(await self._call(transport_request(pb.Transport.PLAY)))

    async def pause(self) -> Ack:
        """Hold the music (see :meth:`cadenza.sdk.Client.pause`)."""
        return self._ack(await self._call(transport_request(pb.Transport.PAUSE)))

    async def stop(self) -> Ack:
        """Stop and rewind the music (see :meth:`cadenza.sdk.Client.stop`)."""
        return self._ack(await self._call(transport_request(pb.Transport.STOP)))

    async def reset_context(self) -> Ack:
        """Make the model forget its audio context."""
        return self._ack(await self._call(transport_request(pb.Transport.RESET_CONTEXT)))

    async def status(self) -> Status:
        """A snapshot of the runtime."""
        return self._status(await self._call(pb.GetStatus()))

    async def describe(self) -> GraphInfo:
        """What the loaded graph offers (see :meth:`cadenza.sdk.Client.describe`)."""
        return self._graph_info(await self._call(pb.DescribeGraph()))

    # ----------------------------------------------------------------- events

    def _start_listener(self) -> None:
        self._ensure_open()
        if self._listener_error is not None:
            error, self._listener_error = self._listener_error, None
            raise error
        if self._listener_task is None or self._listener_task.done():
            assert self._ctx is not None
            sock = open_socket(self._ctx, zmq.SUB, self.events_endpoint, self.keys, "events")
            loop = _running_loop("AsyncClient events")
            self._listener_task = loop.create_task(self._listen(sock), name="cadenza-events")

    async def _listen(self, sock: zmq.asyncio.Socket) -> None:
        try:
            while not self._closing:
                if not await sock.poll(int(POLL_SLICE * 2000)):
                    continue
                for _ in range(1000):
                    try:
                        frames = await sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    event = self._decode_event(frames)
                    if event is not None:
                        await self._dispatch(event)
        except zmq.ZMQError as exc:
            self._listener_error = transport_error(exc, f"events socket on {self.events_endpoint!r}")
            log.error("%s", self._listener_error)
        finally:
            sock.close(0)

    async def _dispatch(self, event: Event) -> None:
        for callback in list(self._callbacks.get(event.topic, ())):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001 — a game's bug must not stop the music's events
                self.callback_errors += 1
                log.exception("event callback %r failed on %s #%d", callback, event.topic, event.sequence)
        for stream in list(self._streams):
            stream._offer(event)

    def on(self, topic: str, callback: C | None = None) -> Any:
        """Call ``callback(event)`` (a function or a coroutine function) for every event of ``topic``.

        Starts the listener task; returns the callback, or a decorator without one.
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

    def on_beat(self, callback: C) -> C:
        """``on("beat", callback)``."""
        return self.on("beat", callback)

    def on_bar(self, callback: C) -> C:
        """``on("bar", callback)``."""
        return self.on("bar", callback)

    def on_state(self, callback: C) -> C:
        """``on("state", callback)``."""
        return self.on("state", callback)

    def on_mix(self, callback: C) -> C:
        """``on("mix", callback)``."""
        return self.on("mix", callback)

    def on_stinger(self, callback: C) -> C:
        """``on("stinger", callback)``."""
        return self.on("stinger", callback)

    def on_xrun(self, callback: C) -> C:
        """``on("xrun", callback)``."""
        return self.on("xrun", callback)

    def on_warning(self, callback: C) -> C:
        """``on("warning", callback)``."""
        return self.on("warning", callback)

    def events(self, timeout: float | None = None, *, topics: Iterable[str] | None = None) -> AsyncEventStream:
        """The events as an async iterator, buffered from this call on (``async for ev in client.events(5): …``)."""
        chosen = None if topics is None else frozenset(check_topic(t) for t in topics)
        stream = AsyncEventStream(self, chosen, timeout)
        self._streams.add(stream)
        try:
            self._start_listener()
        except BaseException:
            stream.close()
            raise
        return stream


class AsyncAudioStream:
    """The asyncio :class:`~cadenza.sdk.client.AudioStream`: ``async for chunk in stream``."""

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
        self._ctx: zmq.asyncio.Context | None = None
        self._sock: zmq.asyncio.Socket | None = None

    @property
    def lost(self) -> int:
        """Chunks missed: gaps in the sequence numbers."""
        return self._tracker.lost

    @property
    def stale(self) -> int:
        """Chunks dropped because they came too late (see :class:`~cadenza.sdk._base.StaleAudio`)."""
        return self._stale.stale if self._stale is not None else 0

    def open(self) -> AsyncAudioStream:
        """Subscribe (done on first read)."""
        if self.state is ClientState.CLOSED:
            raise ClientStateError("Cannot reopen an audio stream once it has been closed")
        if self.state is ClientState.OPEN:
            return self
        ctx = zmq.asyncio.Context()
        try:
            self._sock = open_socket(ctx, zmq.SUB, self.endpoint, self.keys, "audio", extra=self._options)
        except CadenzaError:
            ctx.term()
            raise
        self._ctx = ctx
        self.state = ClientState.OPEN
        return self

    async def read(self, timeout: float | None = None) -> wire.DecodedAudio | None:
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
                if await sock.poll(int(wait * 1000)):
                    data = await sock.recv()
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

    def __aiter__(self) -> AsyncIterator[wire.DecodedAudio]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[wire.DecodedAudio]:
        while self.state is not ClientState.CLOSED:
            chunk = await self.read(self.timeout)
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

    async def __aenter__(self) -> AsyncAudioStream:
        return self.open()

    async def __aexit__(self, *exc: object) -> None:
        self.close()
