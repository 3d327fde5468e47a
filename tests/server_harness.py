"""Drive a real ``cadenza serve`` process from tests and benchmarks: ports, process, raw sockets.

Nothing here knows the server's internals. A test starts ``python -m cadenza
serve …`` as a subprocess on free loopback ports (:class:`ServeProcess`),
waits for the ``cadenza serve: ready`` line it prints on stdout, and talks to
it through plain pyzmq sockets with :mod:`cadenza.proto.wire` doing every
encode and decode:

- :class:`Control`: a DEALER on the control ROUTER; ``request()`` sends one
  request and returns its one reply, ``send()``/``recv()`` pipeline;
- :class:`Subscriber`: a SUB on the events PUB (``recv_event``) or on the
  audio PUB (``recv_audio``), with ``wait_for(predicate)`` bounded by a
  deadline.

Bytes the wire encoder (rightly) refuses to produce — a NaN, an unknown
``oneof`` field — are built here by hand: :func:`with_double_patched` encodes a
valid request with a sentinel number and swaps its eight bytes, and
:func:`pb_field` writes raw protobuf fields.

The process's stdout and stderr go to files (a chatty server can never block
on a full pipe); :attr:`ServeProcess.stderr_text` shows them in assertion
messages.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire

REPO = Path(__file__).resolve().parents[1]
ACTION_GAME = REPO / "examples" / "action_game" / "graph.yaml"
READY_PREFIX = "cadenza serve: ready"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 5.0
SAMPLE_RATE = 48_000
EXIT_USAGE = 2


# ----------------------------------------------------------------------------- machine and waiting


def require(what: str) -> None:
    """Skip, or fail under CADENZA_REQUIRE_AUDIO=1 (CI), when the machine cannot run a test."""
    import pytest

    if os.environ.get("CADENZA_REQUIRE_AUDIO", "") == "1":
        pytest.fail(f"{what} (CADENZA_REQUIRE_AUDIO=1 requires it)", pytrace=False)
    pytest.skip(what)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.02) -> None:
    """Poll ``predicate`` until it holds; an AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g} s"
        time.sleep(poll)


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``where`` (needs root; :func:`require` otherwise), unmounted after."""
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        require(f"cannot mount a tmpfs to fill up ({done.stderr.strip()}; needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


# ----------------------------------------------------------------------------- ports


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: the kernel's receive time, in nanoseconds


def stamped_udp_receiver(timeout: float) -> tuple[socket.socket, bool]:
    """A UDP socket on a free loopback port that asks the kernel to stamp each datagram's arrival, and whether
    the kernel agreed (else :func:`recv_stamped` stamps on reading)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(timeout)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    except OSError:
        return sock, False
    return sock, True


def recv_stamped(sock: socket.socket, size: int) -> tuple[bytes, float]:
    """One datagram and when the kernel received it (Unix s; the receiver's own wakeups do not count), or when we
    read it where the kernel gave no stamp. Raises ``socket.timeout`` like ``recv``."""
    data, anc, _, _ = sock.recvmsg(size, 64)
    at = time.time()
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
            sec, nsec = struct.unpack("qq", raw[:16])
            at = sec + nsec / 1e9
    return data, at


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    The sockets are held open together so the ports differ; a port taken
    between here and the server's bind makes :class:`ServeProcess` retry.
    """
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            addr = str(s.getsockname()[0])
        except OSError:
            return None
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


# ----------------------------------------------------------------------------- process


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CADENZA_DEBUG", None)  # errors as a user sees them: one line
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Endpoints:
    control: str
    events: str
    audio: str

    @classmethod
    def fresh(cls, host: str = "127.0.0.1") -> Endpoints:
        c, e, a = free_ports(3)
        return cls(f"tcp://{host}:{c}", f"tcp://{host}:{e}", f"tcp://{host}:{a}")

    def local(self, which: str) -> str:
        """The endpoint a client on this machine connects to (``0.0.0.0`` → ``127.0.0.1``)."""
        return str(getattr(self, which)).replace("0.0.0.0", "127.0.0.1").replace("*", "127.0.0.1")


class ServeProcess:
    """``python -m cadenza serve`` as a subprocess on fresh loopback ports.

    ``args`` are extra ``serve`` options (``--graph``, ``--prompt``, ``--sink``
    …); the endpoints are added unless ``endpoints=False`` (then ``args`` says
    everything). ``start()`` returns once the ready line is on stdout, raising
    with the server's stderr when it exits first.
    """

    def __init__(self, args: Sequence[str], workdir: Path, *, sink: str = "null", endpoints: bool = True,
                 host: str = "127.0.0.1", name: str = "serve", env: dict[str, str] | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.args = list(args)
        self.env = env  # environment variables set over child_env() (e.g. JACK_DEFAULT_SERVER)
        self.preexec_fn = preexec_fn  # run in the child before exec (e.g. a resource limit)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sink = sink
        self.with_endpoints = endpoints
        self.host = host
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.ep = Endpoints.fresh(host)
        self.ready_line = ""
        self.returncode: int | None = None
        self._n = itertools.count()
        self.stdout_path = self.workdir / f"{name}.stdout"
        self.stderr_path = self.workdir / f"{name}.stderr"

    # -- lifecycle
    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "cadenza", "serve", *self.args]
        if self.sink and "--sink" not in self.args:
            argv += ["--sink", self.sink]
        if self.with_endpoints:
            argv += ["--control", self.ep.control, "--events", self.ep.events, "--audio", self.ep.audio]
        return argv

    def launch(self) -> subprocess.Popen[bytes]:
        """Start the process without waiting for it to be ready."""
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env={**child_env(), **(self.env or {})}, cwd=self.workdir,
                                         preexec_fn=self.preexec_fn)
        return self.proc

    def start(self, timeout: float = READY_TIMEOUT_S, attempts: int = 3) -> ServeProcess:
        for attempt in range(attempts):
            self.launch()
            if self.wait_ready(timeout):
                return self
            # exited before ready: a port taken in the meantime is worth another try
            if "cannot bind" in self.stderr_text and self.with_endpoints and attempt + 1 < attempts:
                self.ep = Endpoints.fresh(self.host)
                continue
            break
        raise RuntimeError(f"cadenza serve did not become ready (exit {self.returncode}):\n"
                           f"argv: {self.argv()}\nstdout: {self.stdout_text}\nstderr: {self.stderr_text}")

    def wait_ready(self, timeout: float) -> bool:
        """True once the ready line is printed; False when the process exits first."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.stdout_text.splitlines():
                if line.startswith(READY_PREFIX):
                    self.ready_line = line
                    return True
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                return False
            time.sleep(0.02)
        self.kill()
        raise TimeoutError(f"cadenza serve printed no ready line in {timeout:g} s; stderr: {self.stderr_text}")

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout=timeout)
        return self.returncode

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> tuple[int, float]:
        """Send ``sig`` and wait for the exit: ``(exit code, seconds it took)``; kills after ``timeout``."""
        assert self.proc is not None
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"cadenza serve did not exit within {timeout:g} s of signal {sig}; "
                                 f"stderr: {self.stderr_text}") from None
        self.returncode = rc
        return rc, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.returncode = self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_bytes(self) -> int:
        """The process's resident memory now (``VmRSS`` in /proc/PID/status)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no VmRSS in /proc/{self.pid}/status")

    def __enter__(self) -> ServeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()

    @property
    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    @property
    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    # -- clients
    def control(self, ctx: zmq.Context[Any], **kwargs: Any) -> Control:
        return Control(ctx, self.ep.local("control"), **kwargs)

    def events(self, ctx: zmq.Context[Any], topics: Sequence[str] = ("",), **kwargs: Any) -> Subscriber:
        return Subscriber(ctx, self.ep.local("events"), topics, **kwargs)

    def audio(self, ctx: zmq.Context[Any], **kwargs: Any) -> Subscriber:
        return Subscriber(ctx, self.ep.local("audio"), ("",), **kwargs)


@contextlib.contextmanager
def serving(args: Sequence[str], workdir: Path, **kwargs: Any) -> Iterator[ServeProcess]:
    server = ServeProcess(args, workdir, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.kill()


# ----------------------------------------------------------------------------- sockets


def _curve(sock: zmq.Socket[Any], curve: tuple[bytes, bytes, bytes] | None) -> None:
    """``curve`` = (server public key, client public key, client secret key)."""
    if curve is None:
        return
    server_public, public, secret = curve
    sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)


class Control:
    """A raw DEALER on the control endpoint. Request ids count up from ``first_id``."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str, *, curve: tuple[bytes, bytes, bytes] | None = None,
                 first_id: int = 1, unlimited: bool = False) -> None:
        self.sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if unlimited:  # a pipelining client: never block or drop on the high-water marks
            self.sock.setsockopt(zmq.SNDHWM, 0)
            self.sock.setsockopt(zmq.RCVHWM, 0)
        _curve(self.sock, curve)
        self.sock.connect(endpoint)
        self._ids = itertools.count(first_id)

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, body: wire.RequestBody, request_id: int | None = None) -> int:
        rid = self.next_id() if request_id is None else request_id
        self.sock.send(wire.encode_request(body, rid))
        return rid

    def send_raw(self, data: bytes, flags: int = 0) -> None:
        self.sock.send(data, flags)

    def recv(self, timeout: float) -> wire.DecodedReply | None:
        """The next reply, or None after ``timeout`` seconds."""
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return wire.decode_reply(self.sock.recv())

    def request(self, body: wire.RequestBody, timeout: float = 10.0) -> wire.DecodedReply:
        """Send one request and return its reply (asserting it answers this request)."""
        rid = self.send(body)
        reply = self.recv(timeout)
        assert reply is not None, f"no reply to {wire.request_kind(body)} within {timeout} s"
        assert reply.request_id == rid, f"reply to request {reply.request_id}, expected {rid}"
        return reply

    def request_raw(self, data: bytes, timeout: float = 10.0) -> wire.DecodedReply:
        self.send_raw(data)
        reply = self.recv(timeout)
        assert reply is not None, f"no reply to a raw request within {timeout} s"
        return reply

    def ok(self, body: wire.RequestBody, timeout: float = 10.0) -> pb.Ok:
        reply = self.request(body, timeout)
        assert reply.kind == wire.ReplyKind.OK, f"expected Ok, got {reply.kind}: {reply.body}"
        assert isinstance(reply.body, pb.Ok)
        return reply.body

    def error(self, body: wire.RequestBody, timeout: float = 10.0) -> pb.Error:
        reply = self.request(body, timeout)
        assert reply.kind == wire.ReplyKind.ERROR, f"expected an Error, got {reply.kind}: {reply.body}"
        assert isinstance(reply.body, pb.Error)
        return reply.body

    def status(self, timeout: float = 10.0) -> pb.Status:
        reply = self.request(pb.GetStatus(), timeout)
        assert reply.kind == wire.ReplyKind.STATUS, f"expected a Status, got {reply.kind}: {reply.body}"
        assert isinstance(reply.body, pb.Status)
        return reply.body

    def wait_status(self, predicate: Callable[[pb.Status], bool], timeout: float, what: str = "") -> pb.Status:
        """Poll GetStatus (every 20 ms) until ``predicate`` holds; AssertionError with the last one after
        ``timeout``."""
        deadline = time.monotonic() + timeout
        st = self.status()
        while not predicate(st):
            if time.monotonic() > deadline:
                raise AssertionError(f"status never showed {what or 'the expected values'} within "
                                     f"{timeout:g} s; last status:\n{st}")
            time.sleep(0.02)
            st = self.status()
        return st

    def close(self) -> None:
        self.sock.close(0)

    def __del__(self) -> None:  # a test's client goes with the test, without a ResourceWarning
        self.sock.close(0)


class Subscriber:
    """A SUB on the events or audio endpoint."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str, topics: Sequence[str] = ("",), *,
                 curve: tuple[bytes, bytes, bytes] | None = None) -> None:
        self.sock: zmq.Socket[bytes] = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        _curve(self.sock, curve)
        for t in topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, t.encode())
        self.sock.connect(endpoint)

    def recv_frames(self, timeout: float) -> list[bytes] | None:
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return self.sock.recv_multipart()

    def recv_event(self, timeout: float) -> wire.DecodedEvent | None:
        frames = self.recv_frames(timeout)
        return None if frames is None else wire.decode_event(frames)

    def recv_audio(self, timeout: float) -> wire.DecodedAudio | None:
        frames = self.recv_frames(timeout)
        if frames is None:
            return None
        assert len(frames) == 1, f"an audio chunk is one frame, got {len(frames)}"
        return wire.decode_audio(frames[0])

    def wait_for(self, predicate: Callable[[wire.DecodedEvent], bool], timeout: float,
                 what: str = "") -> wire.DecodedEvent:
        """The first event for which ``predicate`` holds; AssertionError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no event {what} within {timeout:g} s; saw: {seen[-10:]}")
            ev = self.recv_event(left)
            if ev is None:
                continue
            if predicate(ev):
                return ev
            seen.append(f"{ev.topic}#{ev.sequence}@{ev.stream_time}")

    def events_for(self, seconds: float) -> list[wire.DecodedEvent]:
        """Every event received during the next ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ev = self.recv_event(left)
            if ev is not None:
                out.append(ev)
        return out

    def drain(self) -> int:
        n = 0
        while self.sock.poll(0, zmq.POLLIN):
            self.sock.recv_multipart()
            n += 1
        return n

    def close(self) -> None:
        self.sock.close(0)

    def __del__(self) -> None:
        self.sock.close(0)


# ----------------------------------------------------------------------------- raw bytes


def pb_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def pb_field(number: int, value: int | bytes | float, wire_type: int | None = None) -> bytes:
    """One raw protobuf field: an int as a varint, bytes length-delimited, a float as fixed64."""
    if isinstance(value, bool) or isinstance(value, int):
        return pb_varint(number << 3 | 0) + pb_varint(int(value))
    if isinstance(value, float):
        return pb_varint(number << 3 | 1) + struct.pack("<d", value)
    wt = 2 if wire_type is None else wire_type
    return pb_varint(number << 3 | wt) + pb_varint(len(value)) + value


def raw_envelope(request_id: int, body_field: int, body: bytes = b"", version: int = wire.PROTOCOL_VERSION) -> bytes:
    """An Envelope with any body field number — e.g. one this protocol version does not know."""
    return pb_field(1, version) + pb_field(2, request_id) + pb_field(body_field, body)


SENTINEL = 0.123456789012345  # a double whose 8 bytes never occur by accident


def with_double_patched(data: bytes, value: float, sentinel: float = SENTINEL) -> bytes:
    """``data`` (a request encoded with ``sentinel`` in a double field) with that double set to ``value``.

    How a test sends a NaN or an infinity, which :func:`wire.encode_request`
    refuses to encode.
    """
    needle = struct.pack("<d", sentinel)
    assert data.count(needle) == 1, "the sentinel must occur exactly once"
    return data.replace(needle, struct.pack("<d", value))


def set_parameters(values: dict[str, float | str], **kwargs: Any) -> pb.SetParameters:
    updates = []
    for name, v in values.items():
        if isinstance(v, str):
            updates.append(pb.ParameterUpdate(name=name, label=v))
        else:
            updates.append(pb.ParameterUpdate(name=name, number=float(v)))
    return pb.SetParameters(values=updates, **kwargs)


def transport(action: int) -> pb.Transport:
    return pb.Transport(action=action)  # type: ignore[arg-type]


def number(pv: pb.ParameterValue) -> float:
    assert pv.WhichOneof("value") == "number", f"not a number: {pv}"
    return pv.number


def label(pv: pb.ParameterValue) -> str:
    assert pv.WhichOneof("value") == "label", f"not a label: {pv}"
    return pv.label
