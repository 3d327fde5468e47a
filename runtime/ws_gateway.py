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
its own thread and speaks to the runtime only through the sockets. The loop is
uvloop's when uvloop is installed (``CADENZA_WS_LOOP=asyncio``: the standard
library's): the loop's turns are much of what a round trip costs beyond ZeroMQ.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import http
import ipaddress
import logging
import mimetypes
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import zmq
import zmq.asyncio
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage
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
HANDSHAKE_SLACK = 64  # TCP connections still in their handshake, on top of the cap (each costs one file)
FD_RESERVE = 128  # files kept for the runtime itself (graphs, audio files, JACK, logs) when the cap is computed
FD_WANTED = 8192  # the soft RLIMIT_NOFILE raised toward this at start (never past the hard limit)
HELD_SMALL = 64 * 1024  # bytes of a frame still being read that a connection may hold at any time
HELD_BUDGET = 16 * 1024 * 1024  # beyond that, all connections together; past it the largest holder is cut (1013)
REFUSED_LOG_EVERY_S = 10.0  # refused handshakes (token, origin) are logged at most once per period, with counts
REFUSED_FREE = 5  # failed tries per source before its next refusals are answered slower
REFUSED_DELAY_S = 1.0  # … by this much (a guesser gets about one try a second)
PANEL_DIR = Path(__file__).resolve().parent / "panel"
# a handshake header that must appear once: two of them is a malformed request (400), never a guess
_SINGLE_HEADERS = ("Host", "Origin", "Upgrade", "Connection", "Authorization", "Sec-WebSocket-Key",
                   "Sec-WebSocket-Version")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~-]+")  # what needs no percent-encoding in a URL's query or fragment
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
            pass
        try:  # the short IPv4 forms (127.1, 2130706433) the C resolver accepts too
            return ipaddress.ip_address(socket.inet_aton(host)).is_loopback
        except OSError:
            return False

    def check(self) -> None:
        self.host_port  # noqa: B018 — raises on a malformed HOST:PORT
        if (self.certfile is None) != (self.keyfile is None):
            raise UsageError("TLS needs both --ws-cert FILE and --ws-key FILE", where="--ws-cert")
        if self.token is not None:
            where = "--ws-token (or env CADENZA_WS_TOKEN)"
            if len(self.token) < 8:
                raise UsageError(f"a token of at least 8 characters, please (got {len(self.token)}; it is all that "
                                 "guards the runtime)", where=where)
            if not _TOKEN_CHARS.fullmatch(self.token):
                raise UsageError("the token may hold only letters, digits and - . _ ~ (so that clients can put it "
                                 "in a URL as it is); e.g. python -c 'import secrets; print(secrets.token_urlsafe())'",
                                 where=where)
        self.origins  # noqa: B018 — raises on an origin no browser sends
        if not self.loopback:
            if not self.token:
                raise UsageError(f"{self.listen!r} is reachable from other machines; give --ws-token TOKEN (clients "
                                 "add ?token=TOKEN to the URL) or bind 127.0.0.1", where="--ws")
            if self.certfile is None and not self.insecure:
                raise UsageError(f"{self.listen!r} is reachable from other machines; give --ws-cert FILE and "
                                 "--ws-key FILE (wss://) or --insecure to send the token in the clear", where="--ws")

    @property
    def origins(self) -> tuple[str, ...]:
        """``allow_origins`` as browsers send them (scheme and host lower-case, no default port, no trailing ``/``);
        raises UsageError for ``null`` (any page can send it: a sandboxed frame, a ``data:`` URL) and for what is no
        origin."""
        return tuple(_origin(o) for o in self.allow_origins)

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.certfile is None or self.keyfile is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except ssl.SSLError as exc:  # OpenSSL's words ("[SSL] PEM lib") say little: say what it means
            raise UsageError(f"cannot use the certificate {self.certfile!r} with the key {self.keyfile!r}: they must "
                             "be PEM files (-----BEGIN …-----) and the key must belong to the certificate "
                             f"(OpenSSL: {exc.reason or exc})", where="--ws-cert") from None
        except OSError as exc:
            raise UsageError(f"cannot read the certificate {self.certfile!r} / key {self.keyfile!r}: "
                             f"{exc.strerror or exc}", where="--ws-cert") from None
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
        self.proto = _ServerProtocol(max_size=wire.SOCKET_MAX_MESSAGE_BYTES, logger=_quiet_logger())
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
        self.answered = False  # the handshake got its HTTP answer (a second request on the connection is ignored)
        self.held = 0  # bytes of unfinished frames charged to the gateway's HELD_BUDGET
        self.delay = 0.0  # seconds before a refused handshake is answered (a source that keeps failing)
        self.cut = False  # closed for the HELD_BUDGET: never read again
        self.last_seen = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are no subclass, same interface
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
        if not self.gateway._admit(self):  # every file the cap allows is taken: refuse before the handshake
            self.answered = True
            transport.write(_response(503, self.gateway._full_text()).serialize())
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_seen = time.monotonic()
        if not self.answered and data[:1] == b"\x16":  # a TLS ClientHello on a plain port: say so now, not in 10 s
            self.answered = True
            log.info(f"WebSocket {self.peer}: a TLS handshake on a plain ws:// port (serve with --ws-cert/--ws-key)")
            self._abort()
            return
        self.proto.receive_data(data)
        self._events()
        self._account()

    def _account(self) -> None:
        """Bytes of frames still being read: up to HELD_SMALL each, more only within the gateway's HELD_BUDGET
        (a thousand clients each holding most of a 4 MiB frame would otherwise hold gigabytes)."""
        held = len(self.proto.reader.buffer) + sum(len(f) for f in self.fragments)
        held = held if held > HELD_SMALL else 0
        if held != self.held:
            self.gateway.held += held - self.held
            self.held = held
            if held and self.gateway.held > HELD_BUDGET and self.proto.state is State.OPEN:
                log.info(f"WebSocket {self.peer} cut (1013): {held} bytes of an unfinished frame while the gateway "
                         f"holds {self.gateway.held} for all connections")
                self.close(1013, "the gateway is reading too many large frames; send it again later")
                self.cut = True  # read nothing more: the rest of the frame would only fill memory until the cut
                self._pause()

    def eof_received(self) -> bool | None:
        self.proto.receive_eof()
        self._events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.gateway.held -= self.held
        self.held = 0
        self.gateway.tcp_open -= 1
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
                if not self.answered:  # a pipelined second request after a plain HTTP answer: ignored (we close)
                    self.answered = True
                    self._handshake(event)
            elif isinstance(event, Frame):
                self._frame(event)
        if not self.answered and isinstance(self.proto.handshake_exc, InvalidMessage) and self.transport is not None:
            # no valid HTTP request (a body, a broken request line): websockets only closes; say why first
            self.answered = True
            cause = self.proto.handshake_exc.__cause__ or self.proto.handshake_exc
            self.transport.write(_response(400, f"not a valid HTTP request: {cause}").serialize())
        self._flush()

    def _handshake(self, request: Request) -> None:
        try:
            response = self.gateway._process_request(self, request)
            if response is None:
                self.dealer = self.gateway._dealer()  # before the 101: past ZeroMQ's socket limit this is a 503
                response = self.proto.accept(request)
        except zmq.ZMQError as exc:
            self.gateway.stats.refused["full"] += 1
            self.gateway._refused_log("full", self.peer, f"503, no ZeroMQ socket left: {exc}")
            response = _response(503, self.gateway._full_text())
        except Exception as exc:  # noqa: BLE001 — a request nobody foresaw: one line and a 400, never a traceback
            log.warning(f"WebSocket {self.peer}: handshake refused (400): {type(exc).__name__}: {exc}")
            response = _response(400, f"cannot read this handshake: {exc}")
        if self.delay:  # a source that keeps failing (token, origin) waits for its answer: guessing stays slow
            asyncio.get_running_loop().call_later(self.delay, self._answer_late, response)
            return
        if self.proto.eof_sent and response.status_code == 101:  # what followed the request was no WebSocket frame
            response = _response(400, "one request per connection: what followed the handshake was no WebSocket frame")
        self._send_response(response)
        if response.status_code == 101 and self.proto.state is State.OPEN:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.gateway._opened(self)
        elif self.dealer is not None:
            self.dealer.close(0)
            self.dealer = None

    def _send_response(self, response: Response) -> None:
        if not self.proto.eof_sent:
            self.proto.send_response(response)
        elif self.transport is not None:  # websockets already gave up on the bytes after the request (a pipelined
            # second request): the answer goes out first, then the end of the stream it queued
            self.transport.write(response.serialize())

    def _answer_late(self, response: Response) -> None:
        if not self.closed:
            self._send_response(response)
            self._flush()

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
                sent = self.proto.close_sent
                # 1005: the client's close frame had no code (a browser's or Node's plain close()): a normal close
                if sent is not None and sent.code not in (1000, 1001, 1005) and self.open:
                    log.info(f"WebSocket {self.peer} closed ({sent.code}): {sent.reason or 'protocol error'}")
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
        if not self.reading and not self.write_paused and not self.waiting and not self.cut \
                and self.transport is not None and not self.transport.is_closing():
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
        self._origins: set[str] = set(config.origins)
        self._fanout: _Fanout | None = None
        self.tcp_open = 0  # TCP connections, handshakes included
        self.held = 0  # bytes of unfinished frames beyond HELD_SMALL, all connections together
        self.cap, why = _capacity(ctx)
        if self.cap < MAX_CONNECTIONS:
            log.warning(f"WebSocket connections capped at {self.cap}: {why}")
        self._failures: dict[str, list[float]] = {}  # source address → [refused handshakes, last one (monotonic)]
        self._quiet: collections.Counter[str] = collections.Counter()  # refusals not logged yet, by kind
        self._logged_at: dict[str, float] = {}

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
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._main())
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
            self._flush_refused_log()
            now = time.monotonic()
            for conn in list(self.connections):
                if now - conn.last_seen > 2 * PING_EVERY_S:
                    log.info(f"WebSocket {conn.peer} cut: silent for {now - conn.last_seen:.0f} s")
                    if conn.proto.state is State.OPEN:  # a close frame first, in case it still reads
                        conn.proto.send_close(1011, "no answer to pings for 40 s")
                        conn._flush()
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
        for name in _SINGLE_HEADERS:
            if len(request.headers.get_all(name)) > 1:
                self.stats.refused["malformed"] += 1
                self._refused_log("malformed", connection.peer, f"400, several {name} headers")
                return _response(400, f"several {name} headers: send it once")
        # the request target is a path (a URL starting with // is no host here)
        path, _, query = request.path.partition("#")[0].partition("?")
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if not upgrade:
            return self._http(request.method, path)
        if path != WS_PATH:
            return _response(404, f"no WebSocket at {path!r}; connect to {WS_PATH}")
        source = connection.peer.rpartition(":")[0]
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, request.headers.get("Host", "")):
            self.stats.refused["origin"] += 1
            self._refused_log("origin", connection.peer, f"403, Origin {origin!r} is not allowed; a page from another "
                              "site must not drive this runtime (allow it with --ws-allow-origin ORIGIN)")
            connection.delay = self._failed(source)
            return _response(403, f"Origin {origin!r} is not allowed (cadenza serve --ws-allow-origin ORIGIN)")
        if self.config.token is not None:
            given = urllib.parse.parse_qs(query).get("token", [""])[-1]
            auth = request.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), self.config.token.encode()):
                self.stats.refused["token"] += 1
                self._refused_log("token", connection.peer, f"401, {'a wrong' if given else 'no'} token")
                connection.delay = self._failed(source)
                return _response(401, "this runtime needs its token: connect to /ws?token=TOKEN or send the header "
                                 "Authorization: Bearer TOKEN",
                                 headers=[("WWW-Authenticate", 'Bearer realm="cadenza"')])
        if len(self.connections) >= self.cap:
            self.stats.refused["full"] += 1
            self._refused_log("full", connection.peer, f"503, {self.cap} connections are open")
            return _response(503, self._full_text())
        return None

    def _full_text(self) -> str:
        return f"{self.cap} WebSocket connections are open (this runtime's limit); try again later"

    def _admit(self, conn: _Connection) -> bool:
        """Count a new TCP connection; False past the cap and HANDSHAKE_SLACK (its files would run out)."""
        self.tcp_open += 1
        if self.tcp_open <= self.cap + HANDSHAKE_SLACK:
            return True
        self.stats.refused["full"] += 1
        self._refused_log("full", conn.peer, f"503, {self.tcp_open - 1} TCP connections are open")
        return False

    def _failed(self, source: str) -> float:
        """One more refused handshake (token, origin) from ``source``; how long to wait before answering it."""
        now = time.monotonic()
        entry = self._failures.get(source)
        if entry is None or now - entry[1] > 60.0:  # a minute without failures forgives
            if len(self._failures) > 10_000:
                self._failures.clear()
            entry = self._failures[source] = [0.0, now]
        entry[0] += 1
        entry[1] = now
        return REFUSED_DELAY_S if entry[0] > REFUSED_FREE else 0.0

    def _refused_log(self, kind: str, peer: str, text: str) -> None:
        """A refused handshake's log line, at most one per kind each REFUSED_LOG_EVERY_S (with the count left out)."""
        now = time.monotonic()
        if now - self._logged_at.get(kind, -REFUSED_LOG_EVERY_S) < REFUSED_LOG_EVERY_S:
            self._quiet[kind] += 1
            return
        self._logged_at[kind] = now
        more, self._quiet[kind] = self._quiet[kind], 0
        log.warning(f"WebSocket refused ({text}) from {peer}"
                    + (f"; {more} more refused that way before it, not logged" if more else ""))

    def _flush_refused_log(self) -> None:
        for kind, n in list(self._quiet.items()):
            if n:
                log.warning(f"WebSocket: {n} more handshakes refused ({kind}) in the last "
                            f"{REFUSED_LOG_EVERY_S:g} s or so, not logged one by one")
                self._quiet[kind] = 0

    def _origin_allowed(self, origin: str, host_header: str) -> bool:
        if origin in self._origins:
            return True
        if not self.config.loopback and self.config.host_port[0] in ("0.0.0.0", "::", ""):
            # a wildcard bind has no one name: the page's own origin is the Host it was fetched from (the token,
            # required off loopback, is what guards against a rebound name)
            return origin in (f"http://{host_header}", f"https://{host_header}")
        return False

    def _http(self, method: str, path: str) -> Response:
        if not self.config.panel or path == WS_PATH:
            return _response(426, f"this is a WebSocket endpoint: connect to {WS_PATH} with a WebSocket client"
                             + ("" if self.config.panel else " (the panel needs --panel)"))
        if method not in ("GET", "HEAD"):
            return _response(405, f"{method} is not served here; the panel's files answer GET and HEAD",
                             headers=[("Allow", "GET, HEAD")])
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
                           ("Referrer-Policy", "no-referrer"), ("Connection", "close"), *_NO_FRAMING])
        return Response(200, "OK", headers, b"" if method == "HEAD" else body)

    # ------------------------------------------------------------------ one connection
    def _dealer(self) -> zmq.Socket[bytes]:
        """A new connection's DEALER on the control ROUTER (raises ZMQError past ZeroMQ's socket limit)."""
        dealer: zmq.Socket[bytes] = self.ctx.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.SNDHWM, 1_000)
        dealer.setsockopt(zmq.RCVHWM, 1_000)
        dealer.connect(self.sockets.control)
        return dealer

    def _opened(self, conn: _Connection) -> None:
        dealer = conn.dealer if conn.dealer is not None else self._dealer()
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
            except Exception as exc:  # noqa: BLE001 - a bug in reading JSON must not end the connection unanswered
                log.error(f"internal error reading a JSON request: {type(exc).__name__}: {str(exc)[:300]}")
                self._local(conn, 0, pb.Error(code=pb.Error.INTERNAL, message=f"{type(exc).__name__}: {exc}"[:600]),
                            text=True)
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
        body: Any = req.body
        assert self._fanout is not None
        if body.audio and self._fanout._audio_socket(int(body.audio)) is None:
            self._local(conn, req.request_id, pb.Error(
                code=pb.Error.BAD_VALUE, field="subscribe.audio",
                message="this runtime publishes no audio (it was started with --audio none): subscribe without "
                        "audio, or restart it with --audio ENDPOINT"), text=text)
            return
        if not self._local(conn, req.request_id, None, text=text):
            return
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


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (``CADENZA_WS_LOOP=asyncio`` chooses the standard library's).

    The gateway's own Python per request is what a WebSocket round trip costs beyond ZeroMQ's, and the loop's
    turns are much of it: on uvloop (libuv, in C) a SetParameters round trip took 45-95 µs less, binary and
    JSON alike, side by side on a loaded 2-core machine (bench/ws_gateway.py)."""
    if os.environ.get("CADENZA_WS_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return cast(Callable[[], asyncio.AbstractEventLoop], uvloop.new_event_loop)


def loop_name() -> str:
    """Which event loop the gateway runs on here: ``uvloop`` or ``asyncio`` (see :func:`_loop_factory`)."""
    return "asyncio" if _loop_factory() is None else "uvloop"


def _peek(data: bytes) -> tuple[str | None, int]:
    from cadenza.runtime.loads import peek

    return peek(data)


def _response(status: int, text: str, *,
              headers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()) -> Response:
    body = (text + "\n").encode()
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return Response(status, reason, Headers([
        ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), ("Connection", "close"),
        *_NO_FRAMING, *headers]), body)


# every HTTP answer: no other site may show it in a frame (a click on a framed panel would drive the runtime)
_NO_FRAMING = (("X-Frame-Options", "DENY"), ("Content-Security-Policy", "frame-ancestors 'none'"))


class _ServerProtocol(ServerProtocol):
    """websockets' server protocol whose own refusals (a request line or headers too long) read as this gateway's:
    plain words, the anti-framing headers."""

    def reject(self, status: Any, text: str) -> Response:
        text = text.removeprefix("Failed to open a WebSocket connection: ").strip()
        return _response(int(status), f"cannot read this HTTP request: {text}")


class _NoTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


def _quiet_logger() -> logging.Logger:
    """websockets' own log lines (failed handshakes …) at WARNING and above, one line each, no tracebacks."""
    logger = logging.getLogger(__name__ + ".websockets")
    logger.setLevel(logging.WARNING)
    if not any(isinstance(f, _NoTracebacks) for f in logger.filters):
        logger.addFilter(_NoTracebacks())
    return logger


def _origin(given: str) -> str:
    """One ``--ws-allow-origin`` value, normalised to what a browser sends (see GatewayConfig.origins)."""
    where = "--ws-allow-origin"
    example = "write it as a browser sends it, e.g. http://192.168.1.20:8080 (scheme://host[:port], no path)"
    if given.strip().lower() == "null":
        raise UsageError("'null' is refused: any web page can send Origin: null (a sandboxed iframe, a data: URL), so "
                         "it would let every site drive this runtime; serve the page over http://localhost instead "
                         "and allow that origin", where=where)
    parts = urllib.parse.urlsplit(given.strip())
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{given!r} has no valid port (1-65535); {example}", where=where) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query \
            or parts.fragment or parts.username is not None or port == 0:
        raise UsageError(f"{given!r} is no origin; {example}", where=where)
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = 80 if parts.scheme == "http" else 443
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _capacity(ctx: zmq.Context[Any]) -> tuple[int, str]:
    """How many WebSocket connections fit, and why not more: each costs a TCP socket and a DEALER (its mailbox is a
    file, and it counts against ZeroMQ's MAX_SOCKETS). The soft RLIMIT_NOFILE is raised toward FD_WANTED first,
    where the hard limit allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < FD_WANTED:
        target = FD_WANTED if hard == resource.RLIM_INFINITY else min(FD_WANTED, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (OSError, ValueError):
                pass
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64
    files = MAX_CONNECTIONS if soft == resource.RLIM_INFINITY else \
        (soft - in_use - FD_RESERVE - HANDSHAKE_SLACK) // 2
    sockets = cast(int, ctx.get(zmq.MAX_SOCKETS)) - 64  # the runtime's own sockets, with room to spare
    cap = max(1, min(MAX_CONNECTIONS, files, sockets))
    if cap == files:
        why = f"{soft} open files allowed (ulimit -n), {in_use} in use, two per connection; raise ulimit -n"
    else:
        why = f"ZeroMQ allows {sockets + 64} sockets in this process"
    return cap, why
