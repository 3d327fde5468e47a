"""The WebSocket gateway of ``cadenza serve --ws``: browsers, game engines and JSON clients on the control socket.

One job: translate. The gateway holds no runtime state and applies nothing
itself; every request goes to the runtime's own control ROUTER, so limits,
rate limits, error replies and the music's priority are the ZeroMQ socket's
own. Threads and sockets::

    browser / Godot ──ws──▶ gateway thread (asyncio loop; websockets' Sans-I/O protocol per connection)
                              │ per WebSocket connection: one DEALER ──inproc──▶ control ROUTER (main thread)
                              │ shared: SUB ◀──inproc── events PUB; SUB ◀── audio PUB (float32, int16)
                              └ fan-out: written to each subscriber unless PUSH_BYTES already wait (dropped, counted)

A request costs two trips through the event loop and no task: ``data_received``
parses the frame and hands it to the DEALER; the DEALER's file descriptor, in
the same selector, wakes the loop for the reply, which is written at once.

- Binary frames carry Envelope bytes exactly as on ZeroMQ; text frames the
  same Envelope in protobuf's canonical JSON mapping (``wire.request_from_json``
  / ``wire.envelope_to_json``). A reply goes back in its request's frame type.
- ``Subscribe`` (WebSocket only) is answered here: it chooses the event topics
  and the audio format pushed on this connection, in the encoding of the frame
  that carried it. Malformed JSON is answered here too (BAD_MESSAGE), under the
  same per-client rate limit as the runtime's.
- The runtime's sockets are bound a second time on ``inproc://`` endpoints for
  the gateway: inproc never leaves the process and skips CurveZMQ, so the
  gateway works whatever keys the TCP endpoints demand (with ``--curve-clients``
  the runtime treats a message without a CURVE User-Id — only inproc has none —
  as the gateway's).
- Frame size: up to ``wire.MAX_MESSAGE_BYTES`` as on ZeroMQ; a binary frame up
  to ``wire.SOCKET_MAX_MESSAGE_BYTES`` is answered TOO_LARGE by the runtime (a
  text frame over the first limit by the gateway); a larger frame closes the
  connection with 1009 (message too big), as ZeroMQ drops a peer past
  ZMQ_MAXMSGSIZE.
- Handshake: path ``/ws``; ``Origin`` absent (no browser), the panel's own
  origin or one given with ``--ws-allow-origin``, else 403 and a log line;
  ``--ws-token`` (query ``?token=`` or ``Authorization: Bearer``), else 401; at
  most :data:`MAX_CONNECTIONS`, else 503. With ``--panel`` a plain GET of ``/``
  or ``/panel/FILE`` serves the package's ``panel/`` folder (files only, no
  path leaves it).

Nothing here touches server state: the gateway runs its own asyncio loop in
its own thread and speaks to the runtime only through the sockets.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import ipaddress
import logging
import mimetypes
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import zmq
import zmq.asyncio
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from cadenza.errors import UsageError
from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire

log = logging.getLogger(__name__)

WS_PATH = "/ws"
MAX_CONNECTIONS = 1024  # WebSocket connections at once; past it the handshake is answered 503
PUSH_BYTES = 256 * 1024  # bytes waiting to be written per connection past which pushes are dropped, counted
# (about 0.6 s of float32 audio, 1.3 s of int16)
OPEN_TIMEOUT_S = 10.0  # the opening handshake must be done by then
CLOSE_TIMEOUT_S = 1.0  # after a close frame, the TCP connection is cut by then
PING_EVERY_S = 20.0  # the gateway pings each connection this often; one silent for two periods is cut
PENDING_IDS = 10_000  # request ids remembered per connection to answer in the request's frame type
WRITE_LIMIT = 64 * 1024  # bytes waiting to be written per connection past which its requests are not read
PANEL_DIR = Path(__file__).resolve().parent / "panel"
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png",
    ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8", ".webmanifest":
    "application/manifest+json", ".wasm": "application/wasm",
}


@dataclass(frozen=True)
class GatewayConfig:
    """What ``cadenza serve --ws …`` asked for (checked by :meth:`check`)."""

    listen: str  # HOST:PORT (port 0: any free port)
    token: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False
    allow_origins: tuple[str, ...] = ()
    panel: bool = False
    rate_limit: float = 100_000.0

    @property
    def host_port(self) -> tuple[str, int]:
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or not host or int(port) > 65535:
            raise UsageError(f"{self.listen!r} is not HOST:PORT (e.g. 127.0.0.1:8765)", where="--ws")
        return host.strip("[]"), int(port)

    @property
    def loopback(self) -> bool:
        host, _ = self.host_port
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def check(self) -> None:
        self.host_port  # noqa: B018 — raises on a malformed HOST:PORT
        if (self.certfile is None) != (self.keyfile is None):
            raise UsageError("TLS needs both --ws-cert FILE and --ws-key FILE", where="--ws-cert")
        if self.token is not None and len(self.token) < 8:
            raise UsageError("a token of at least 8 characters, please (it is all that guards the runtime)",
                             where="--ws-token")
        if not self.loopback:
            if not self.token:
                raise UsageError(f"{self.listen!r} is reachable from other machines; give --ws-token TOKEN (clients "
                                 "add ?token=TOKEN to the URL) or bind 127.0.0.1", where="--ws")
            if self.certfile is None and not self.insecure:
                raise UsageError(f"{self.listen!r} is reachable from other machines; give --ws-cert FILE and "
                                 "--ws-key FILE (wss://) or --insecure to send the token in the clear", where="--ws")
        for origin in self.allow_origins:
            if origin != "null" and not origin.startswith(("http://", "https://")):
                raise UsageError(f"{origin!r} is no origin; write it as a browser sends it, e.g. "
                                 "http://192.168.1.20:8080 (scheme://host[:port], no path)", where="--ws-allow-origin")

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.certfile is None or self.keyfile is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load the certificate {self.certfile!r} / key {self.keyfile!r}: {exc}",
                             where="--ws-cert") from None
        return context


@dataclass(frozen=True)
class RuntimeSockets:
    """The inproc endpoints the runtime bound for the gateway."""

    control: str
    events: str
    audio: str | None  # float32 chunks
    audio_int16: str | None  # int16 chunks (None: the gateway converts float32 itself)


@dataclass
class GatewayStats:
    connections: int = 0  # accepted, in all
    open: int = 0
    refused: collections.Counter[str] = field(default_factory=collections.Counter)  # handshakes: origin, token …
    pushes: int = 0
    pushes_dropped: int = 0  # events/audio a slow reader's full queue lost
    local_errors: int = 0  # errors the gateway answered itself (malformed JSON, Subscribe)


class _Bucket:
    """Token bucket: the runtime's per-client rate for what the gateway answers itself."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class _Connection(asyncio.Protocol):
    """One WebSocket client: websockets' Sans-I/O protocol on an asyncio transport, its DEALER, its subscription.

    No task per message: a request is read, checked and handed to the DEALER in ``data_received``, a reply is
    written to the transport in the DEALER's reader callback (two trips through the event loop per request).
    Flow control: when the transport's write buffer passes :data:`WRITE_LIMIT` the connection stops reading
    requests until it drains (as ZeroMQ pushes back on a client that does not read); pushes are dropped, counted,
    while more than :data:`PUSH_BYTES` wait.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.proto = ServerProtocol(max_size=wire.SOCKET_MAX_MESSAGE_BYTES, logger=_quiet_logger())
        self.transport: asyncio.Transport | None = None
        self.dealer: zmq.Socket[bytes] | None = None
        self.fd = -1
        self.open = False
        self.closed = False
        self.pending: dict[int, collections.deque[bool]] = {}  # request id → frame types (True: text) in order
        self.n_pending = 0
        self.last_text = False
        self.bucket = _Bucket(gateway.config.rate_limit)
        self.topics: frozenset[str] = frozenset()
        self.audio = 0  # AudioChunk.SampleFormat
        self.text_pushes = False
        self.dropped = 0
        self.waiting: collections.deque[bytes] = collections.deque()  # requests the DEALER could not take yet
        self.fragments: list[bytes] = []
        self.fragment_text = False
        self.reading = True
        self.write_paused = False
        self.peer = "a client"
        self.last_seen = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_LIMIT)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # a vanished peer is found by TCP
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self._timer = asyncio.get_running_loop().call_later(OPEN_TIMEOUT_S, self._handshake_timeout)

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        self.proto.receive_data(data)
        self._events()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.gateway._closed(self)

    def pause_writing(self) -> None:
        self.write_paused = True
        self._pause()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._resume()

    # ------------------------------------------------------------------ protocol events
    def _events(self) -> None:
        for event in self.proto.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def _handshake(self, request: Request) -> None:
        response = self.gateway._process_request(self, request)
        if response is None:
            response = self.proto.accept(request)
        self.proto.send_response(response)
        if response.status_code == 101 and self.proto.state is State.OPEN:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.gateway._opened(self)

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            if frame.fin:
                self._message(bytes(frame.data), frame.opcode is Opcode.TEXT)
            else:
                self.fragments, self.fragment_text = [bytes(frame.data)], frame.opcode is Opcode.TEXT
        elif frame.opcode is Opcode.CONT and self.fragments:
            self.fragments.append(bytes(frame.data))
            if frame.fin:
                data, self.fragments = b"".join(self.fragments), []
                self._message(data, self.fragment_text)
        elif frame.opcode is Opcode.CLOSE and self.proto.close_expected():
            self._close_later()

    def _message(self, data: bytes, text: bool) -> None:
        if not self.open:
            return
        if text:
            try:
                message: str | bytes = data.decode("utf-8")
            except UnicodeDecodeError:
                self.close(1007, "a text frame must be UTF-8")
                return
        else:
            message = data
        self.gateway._request(self, message)

    # ------------------------------------------------------------------ writing
    def _flush(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data in self.proto.data_to_send():
            if data:
                transport.write(data)
            else:  # the protocol is done: half-close (what the client still sends is read and discarded; its EOF
                # or the close timeout ends it), or close when TLS cannot half-close
                if transport.can_write_eof():
                    transport.write_eof()
                    self._close_later()
                else:
                    transport.close()
                return
        if self.proto.close_expected():
            self._close_later()

    def send(self, item: str | bytes) -> None:
        if self.proto.state is not State.OPEN:
            return
        if isinstance(item, str):
            self.proto.send_text(item.encode())
        else:
            self.proto.send_binary(item)
        self._flush()

    def reply(self, data: bytes, text: bool) -> None:
        """Write one reply now (its bytes wait in the transport's buffer; a client that does not read stops being
        read, so what waits is bounded)."""
        self.send(wire.envelope_to_json(data) if text else data)

    def push(self, item: str | bytes) -> None:
        transport = self.transport
        if transport is None or transport.get_write_buffer_size() > PUSH_BYTES:
            self.dropped += 1
            self.gateway.stats.pushes_dropped += 1
            return
        self.gateway.stats.pushes += 1
        self.send(item)

    def close(self, code: int, reason: str) -> None:
        if self.proto.state is State.OPEN:
            self.proto.send_close(code, reason)
            self._flush()
            self._close_later()
        elif self.transport is not None:
            self.transport.abort()

    def _close_later(self) -> None:
        if self._timer is None and self.transport is not None:
            self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT_S, self._abort)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _handshake_timeout(self) -> None:
        self._timer = None
        if not self.open:
            self._abort()

    # ------------------------------------------------------------------ push-back
    def _pause(self) -> None:
        if self.reading and self.transport is not None and not self.transport.is_closing():
            self.reading = False
            self.transport.pause_reading()

    def _resume(self) -> None:
        if not self.reading and not self.write_paused and not self.waiting and self.transport is not None \
                and not self.transport.is_closing():
            self.reading = True
            self.transport.resume_reading()

    # ------------------------------------------------------------------ reply routing
    def remember(self, request_id: int, text: bool) -> None:
        self.last_text = text
        if self.n_pending >= PENDING_IDS:  # a client that never reads its replies: forget the oldest id
            oldest = next(iter(self.pending))
            self.n_pending -= len(self.pending.pop(oldest))
        self.pending.setdefault(request_id, collections.deque()).append(text)
        self.n_pending += 1

    def recall(self, request_id: int) -> bool:
        kinds = self.pending.get(request_id)
        if not kinds:
            return self.last_text
        text = kinds.popleft()
        self.n_pending -= 1
        if not kinds:
            del self.pending[request_id]
        return text


class _Fanout:
    """The shared SUB sockets: each message read once, encoded at most once per encoding, queued per subscriber."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        ctx = gateway.actx
        sockets = gateway.sockets
        self.events = self._sub(ctx, sockets.events, 10_000)
        self.audio = self._sub(ctx, sockets.audio, 250) if sockets.audio else None
        self.audio16 = self._sub(ctx, sockets.audio_int16, 250) if sockets.audio_int16 else None
        self.topic_refs: collections.Counter[str] = collections.Counter()
        self.audio_refs: collections.Counter[int] = collections.Counter()

    @staticmethod
    def _sub(ctx: zmq.asyncio.Context, endpoint: str, hwm: int) -> zmq.asyncio.Socket:
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, hwm)
        sock.connect(endpoint)
        return sock

    def change(self, conn: _Connection, topics: frozenset[str], audio: int) -> None:
        """Move ``conn``'s subscription, subscribing the shared SUBs to what someone wants, no more."""
        for topic in conn.topics - topics:
            self.topic_refs[topic] -= 1
            if self.topic_refs[topic] <= 0:
                del self.topic_refs[topic]
                self.events.setsockopt(zmq.UNSUBSCRIBE, topic.encode())
        for topic in topics - conn.topics:
            if self.topic_refs[topic] == 0:
                self.events.setsockopt(zmq.SUBSCRIBE, topic.encode())
            self.topic_refs[topic] += 1
        if audio != conn.audio:
            if conn.audio:
                self._audio_ref(conn.audio, -1)
            if audio:
                self._audio_ref(audio, +1)
        conn.topics, conn.audio = topics, audio

    def _audio_ref(self, fmt: int, delta: int) -> None:
        sock = self._audio_socket(fmt)
        before = sum(n for f, n in self.audio_refs.items() if self._audio_socket(f) is sock)
        self.audio_refs[fmt] += delta
        after = before + delta
        if sock is not None and before == 0 and after > 0:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        elif sock is not None and before > 0 and after == 0:
            sock.setsockopt(zmq.UNSUBSCRIBE, b"")

    def _audio_socket(self, fmt: int) -> zmq.asyncio.Socket | None:
        if fmt == pb.AudioChunk.INT16_LE and self.audio16 is not None:
            return self.audio16
        return self.audio

    async def run_events(self) -> None:
        while True:
            frames = await self.events.recv_multipart()
            if len(frames) != 2:
                continue
            topic = frames[0].decode("ascii", "replace")
            text: str | None = None
            for conn in self.gateway.connections:
                if topic in conn.topics:
                    if conn.text_pushes:
                        text = text if text is not None else wire.envelope_to_json(frames[1])
                        conn.push(text)
                    else:
                        conn.push(frames[1])

    async def run_audio(self, sock: zmq.asyncio.Socket, fmt: int) -> None:
        """Chunks of ``sock`` to the connections that asked for ``fmt`` (float32's socket converts for int16 when
        the runtime has no int16 socket)."""
        convert = fmt == pb.AudioChunk.FLOAT32_LE and self.audio16 is None
        while True:
            data = await sock.recv()
            encoded: dict[tuple[int, bool], str | bytes] = {}
            for conn in self.gateway.connections:
                want = conn.audio
                if want != fmt and not (convert and want == pb.AudioChunk.INT16_LE):
                    continue
                key = (want, conn.text_pushes)
                item = encoded.get(key)
                if item is None:
                    raw = data
                    if want != fmt:
                        chunk = wire.decode_audio(data)
                        raw = wire.encode_audio(chunk.sequence, chunk.stream_time, chunk.pcm, sample_format="int16")
                    item = wire.envelope_to_json(raw) if conn.text_pushes else raw
                    encoded[key] = item
                conn.push(item)

    def close(self) -> None:
        for sock in (self.events, self.audio, self.audio16):
            if sock is not None:
                sock.close(0)


class Gateway:
    """``cadenza serve --ws``: a thread running the WebSocket server that speaks to the runtime through ``sockets``."""

    def __init__(self, ctx: zmq.Context[Any], config: GatewayConfig, sockets: RuntimeSockets) -> None:
        config.check()
        self.config = config
        self.sockets = sockets
        self.ctx = ctx
        self.actx: zmq.asyncio.Context = zmq.asyncio.Context.shadow(ctx.underlying)
        self.stats = GatewayStats()
        self.connections: set[_Connection] = set()
        self.url = ""
        self._ssl = config.ssl_context()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cadenza-ws", daemon=True)
        self._origins: set[str] = set(config.allow_origins)
        self._fanout: _Fanout | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 10.0) -> str:
        """Bind and serve; the ``ws://…/ws`` URL. Raises UsageError when the address cannot be bound."""
        self._thread.start()
        if not self._started.wait(timeout):
            raise UsageError(f"the WebSocket gateway did not start within {timeout:g} s", where="--ws")
        if self._error is not None:
            raise UsageError(f"cannot listen on {self.config.listen!r}: {self._error}", where="--ws")
        return self.url

    def stop(self, timeout: float = 3.0) -> bool:
        """Close every connection (1001 going away) and the gateway's sockets; False if the thread hangs."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 — reported by start(), or logged: the music goes on
            if not self._started.is_set():
                self._error = exc
                self._started.set()
            else:
                log.error(f"WebSocket gateway stopped: {type(exc).__name__}: {exc}")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        host, port = self.config.host_port
        self._fanout = fanout = _Fanout(self)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(lambda: _Connection(self), host, port, ssl=self._ssl,
                                              reuse_address=True)
        except OSError as exc:
            fanout.close()
            self._error = exc
            self._started.set()
            return
        sockname = next(iter(server.sockets)).getsockname()
        bound_port = sockname[1]
        scheme = "wss" if self._ssl else "ws"
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{bound_port}{WS_PATH}"
        self._origins |= self._own_origins(host, bound_port)
        tasks = [asyncio.create_task(fanout.run_events()), asyncio.create_task(self._keepalive())]
        if fanout.audio is not None:
            tasks.append(asyncio.create_task(fanout.run_audio(fanout.audio, pb.AudioChunk.FLOAT32_LE)))
        if fanout.audio16 is not None:
            tasks.append(asyncio.create_task(fanout.run_audio(fanout.audio16, pb.AudioChunk.INT16_LE)))
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            server.close()  # no new connections; every open one: 1001 going away
            for conn in list(self.connections):
                conn.close(1001, "the runtime is stopping")
            deadline = loop.time() + CLOSE_TIMEOUT_S + 0.5
            while any(not c.closed for c in self.connections) and loop.time() < deadline:
                await asyncio.sleep(0.02)
            for conn in list(self.connections):
                conn._abort()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for conn in list(self.connections):  # every DEALER closed before the runtime terminates its context
                self._closed(conn)
            fanout.close()

    async def _keepalive(self) -> None:
        """Ping every connection each PING_EVERY_S; cut one that sent nothing (not even a pong) for two periods
        (a phone that left the network must not hold a connection for hours)."""
        while True:
            await asyncio.sleep(PING_EVERY_S)
            now = time.monotonic()
            for conn in list(self.connections):
                if now - conn.last_seen > 2 * PING_EVERY_S:
                    log.info(f"WebSocket {conn.peer} cut: silent for {now - conn.last_seen:.0f} s")
                    conn._abort()
                elif conn.proto.state is State.OPEN:
                    conn.proto.send_ping(b"")
                    conn._flush()

    def _own_origins(self, host: str, port: int) -> set[str]:
        names = {host if ":" not in host else f"[{host}]"}
        if self.config.loopback:
            names |= {"127.0.0.1", "localhost", "[::1]"}
        return {f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")}

    # ------------------------------------------------------------------ handshake and panel
    def _process_request(self, connection: _Connection, request: Request) -> Response | None:
        parsed = urllib.parse.urlsplit(request.path)
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if not upgrade:
            return self._http(parsed.path)
        if parsed.path != WS_PATH:
            return _response(404, f"no WebSocket at {parsed.path!r}; connect to {WS_PATH}")
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, request.headers.get("Host", "")):
            self.stats.refused["origin"] += 1
            log.warning(f"WebSocket refused (403): Origin {origin!r} is not allowed; a page from another site must not "
                        "drive this runtime (allow it with --ws-allow-origin ORIGIN)")
            return _response(403, f"Origin {origin!r} is not allowed (cadenza serve --ws-allow-origin ORIGIN)")
        if self.config.token is not None:
            given = urllib.parse.parse_qs(parsed.query).get("token", [""])[-1]
            auth = request.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), self.config.token.encode()):
                self.stats.refused["token"] += 1
                log.warning(f"WebSocket refused (401): {'a wrong' if given else 'no'} token from {connection.peer}")
                return _response(401, "this runtime needs its token: connect to /ws?token=TOKEN")
        if len(self.connections) >= MAX_CONNECTIONS:
            self.stats.refused["full"] += 1
            return _response(503, f"{MAX_CONNECTIONS} WebSocket connections are open; try again later")
        return None

    def _origin_allowed(self, origin: str, host_header: str) -> bool:
        if origin in self._origins:
            return True
        if not self.config.loopback and self.config.host_port[0] in ("0.0.0.0", "::", ""):
            # a wildcard bind has no one name: the page's own origin is the Host it was fetched from (the token,
            # required off loopback, is what guards against a rebound name)
            return origin in (f"http://{host_header}", f"https://{host_header}")
        return False

    def _http(self, path: str) -> Response:
        if not self.config.panel:
            return _response(426, f"this is a WebSocket endpoint: connect to {WS_PATH} (the panel needs --panel)")
        if path in ("/", "/panel", "/panel/"):
            rel = "index.html"
        elif path.startswith("/panel/"):
            rel = urllib.parse.unquote(path[len("/panel/"):])
        else:
            return _response(404, f"no such page {path!r}; the panel is at /")
        root = PANEL_DIR.resolve()
        parts = rel.split("/")
        if any(p in ("", ".", "..") or p.startswith(".") or "\\" in p or "\0" in p for p in parts):
            return _response(404, f"no such file {rel!r} in the panel")
        target = root.joinpath(*parts).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return _response(404, f"no such file {rel!r} in the panel")
        try:
            body = target.read_bytes()
        except OSError:
            return _response(404, f"cannot read {rel!r} from the panel")
        ctype = _CONTENT_TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0] or \
            "application/octet-stream"
        headers = Headers([("Content-Type", ctype), ("Content-Length", str(len(body))),
                           ("Cache-Control", "no-cache"), ("X-Content-Type-Options", "nosniff"),
                           ("Referrer-Policy", "no-referrer"), ("Connection", "close")])
        return Response(200, "OK", headers, body)

    # ------------------------------------------------------------------ one connection
    def _opened(self, conn: _Connection) -> None:
        dealer: zmq.Socket[bytes] = self.ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.SNDHWM, 1_000)
        dealer.setsockopt(zmq.RCVHWM, 1_000)
        dealer.connect(self.sockets.control)
        conn.dealer = dealer
        conn.fd = dealer.fileno()  # ZMQ_FD: read from the loop's own selector
        asyncio.get_running_loop().add_reader(conn.fd, self._replies, conn)
        conn.open = True
        self.connections.add(conn)
        self.stats.connections += 1
        self.stats.open += 1

    def _closed(self, conn: _Connection) -> None:
        if conn.dealer is None:
            return
        self.connections.discard(conn)
        self.stats.open -= 1
        assert self._fanout is not None
        self._fanout.change(conn, frozenset(), 0)
        try:
            asyncio.get_running_loop().remove_reader(conn.fd)
        except (RuntimeError, ValueError):
            pass
        conn.dealer.close(0)
        conn.dealer = None
        if conn.dropped:
            log.info(f"WebSocket {conn.peer} closed; {conn.dropped} pushes dropped (it read too slowly)")

    def _request(self, conn: _Connection, message: str | bytes) -> None:
        text = isinstance(message, str)
        if isinstance(message, str):
            try:
                data = wire.request_from_json(message)
            except wire.WireError as exc:
                self._local(conn, exc.request_id, exc.to_error(), text=True)
                return
        else:
            data = message
        # Envelope field 20 (Subscribe) is the tag bytes a2 01: only then is the frame parsed here
        if b"\xa2\x01" in data and _peek(data)[0] == wire.RequestKind.SUBSCRIBE:
            self._subscribe(conn, data, text)
            return
        conn.remember(wire.peek_request_id(data), text)
        conn.waiting.append(data)
        self._forward(conn)

    def _forward(self, conn: _Connection) -> None:
        """Hand waiting requests to the DEALER; while it holds 1,000 (the client pipelines without reading), stop
        reading the client and try again in a moment: its own push-back, as on ZeroMQ."""
        dealer = conn.dealer
        if dealer is None:
            return
        while conn.waiting:
            try:
                dealer.send(conn.waiting[0], zmq.NOBLOCK)
            except zmq.Again:
                conn._pause()
                asyncio.get_running_loop().call_later(0.002, self._forward, conn)
                return
            conn.waiting.popleft()
        conn._resume()
        # ZMQ_FD is edge-triggered and a send may consume its signal: look for replies now
        if cast(int, dealer.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            self._replies(conn)

    def _local(self, conn: _Connection, request_id: int, error: pb.Error | None, *, text: bool) -> bool:
        """Answer here (malformed JSON, Subscribe) under the runtime's per-client rate limit: Ok when ``error`` is
        None; False when the answer was RATE_LIMITED instead."""
        if not conn.bucket.allow():
            conn.reply(wire.encode_reply(request_id, pb.Error(
                code=pb.Error.RATE_LIMITED,
                message=f"more than {self.config.rate_limit:g} requests per second from one client")), text)
            return False
        if error is not None:
            self.stats.local_errors += 1
        conn.reply(wire.encode_reply(request_id, pb.Ok() if error is None else error), text)
        return True

    def _subscribe(self, conn: _Connection, data: bytes, text: bool) -> None:
        try:
            req = wire.decode_request(data)
        except wire.WireError as exc:
            self._local(conn, exc.request_id, exc.to_error(), text=text)
            return
        if not self._local(conn, req.request_id, None, text=text):
            return
        body: Any = req.body
        assert self._fanout is not None
        self._fanout.change(conn, frozenset(body.topics), int(body.audio))
        conn.text_pushes = text

    def _replies(self, conn: _Connection) -> None:
        """Every reply the DEALER holds, written to the client (the loop calls this when the DEALER's FD signals)."""
        dealer = conn.dealer
        # ZMQ_EVENTS first (read under the GIL) rather than a recv that fails with Again: a recv lets go of the GIL,
        # and in this process the runtime's threads take it, so a failing recv per reply costs a hand-off
        while dealer is not None and not dealer.closed and cast(int, dealer.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            try:
                data = dealer.recv(zmq.NOBLOCK)
            except zmq.ZMQError:  # closed meanwhile
                return
            conn.reply(data, conn.recall(wire.peek_request_id(data)))
            dealer = conn.dealer


def _peek(data: bytes) -> tuple[str | None, int]:
    from cadenza.runtime.loads import peek

    return peek(data)


def _response(status: int, text: str) -> Response:
    body = (text + "\n").encode()
    reasons = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 426: "Upgrade Required",
               503: "Service Unavailable"}
    headers = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                       ("Connection", "close")])
    return Response(status, reasons.get(status, "Error"), headers, body)


class _NoTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def _quiet_logger() -> logging.Logger:
    """websockets' own log lines (failed handshakes …) at WARNING and above, one line each, no tracebacks."""
    logger = logging.getLogger(f"{__name__}.websockets")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _NoTracebacks) for f in logger.filters):
        logger.addFilter(_NoTracebacks())
    return logger
