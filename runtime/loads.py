"""Slow requests off the control loop: LoadGraph and SetPrompts run in a worker thread, in order, time-bounded.

Parsing a graph, reading its files and embedding its prompts can take long
(a large graph, an audio prompt, a model's text tower). Done in the control
loop it would keep every other client waiting; done in the generation thread
it would stall the audio. So the serve loop hands these requests to
:class:`LoadQueue` and goes on answering everyone else::

    serve loop ── submit(ident, frame) ──► jobs (FIFO) ──► worker thread: handle(frame) → reply
        ▲                                                        │ LiveEngine.load: embed outside the lock,
        └──── wake pipe (polled with the ROUTER) ◄── done ◄──────┘ swap under it only if the job admits

- **Order.** One worker runs the jobs one at a time in arrival order, so
  loads take effect in the order they came. A client with a load pending has
  its later requests held (:attr:`LoadQueue.held`) and answered in order
  once the load is answered; other clients are answered at once.
- **Time bound.** A job not answered within ``timeout_s`` of its arrival is
  answered ``TIMEOUT`` by the serve loop and changes nothing: the swap in
  :meth:`LiveEngine.load` happens only through :meth:`LoadJob.admit`, which
  says no once the job has timed out (and once it said yes, the job can no
  longer time out: its reply is moments away). A worker stuck past the bound
  (a file read that never returns) is abandoned and a fresh one takes the
  queue; with :data:`~cadenza.runtime.limits.MAX_ABANDONED_LOADS` stuck, new
  loads are refused with ``TIMEOUT`` until one of them finishes.
- **Memory.** What waits is bounded, so no client (nor many together) can
  make the runtime hold more than a few tens of MiB of requests: per client
  at most :data:`MAX_CLIENT_LOADS` LoadGraph/SetPrompts waiting (the one in
  the worker's queue and those held behind it) and :data:`MAX_CLIENT_BYTES`
  of requests waiting in all; across clients :data:`MAX_WAITING_BYTES`, and
  :data:`MAX_QUEUED_LOADS` jobs in the worker's queue. A request past a bound
  is answered ``RATE_LIMITED`` at once (the request itself is fine; too much
  is waiting: send it again once the earlier ones are answered) and its bytes
  are dropped, not kept. Upstream of this, the serve loop's ROUTER reads at
  most 16 requests ahead per connection (``server.REQUEST_HWM``), and freed
  large blocks go back to the system (:func:`release_large_blocks`), so a
  burst leaves the process no larger than before.
- **Sockets.** ZeroMQ sockets are used by the serve loop only: finished jobs
  come back through a queue and a pipe whose read end the serve loop polls.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import NamedTuple

from cadenza.proto import wire
from cadenza.proto.cadenza_v1_pb2 import Envelope, Error
from cadenza.runtime.limits import MAX_ABANDONED_LOADS

#: Envelope body fields that run in the worker.
SLOW_REQUESTS = frozenset({"load_graph", "set_prompts"})
MAX_QUEUED_LOADS = 16  # jobs waiting for the worker; more are refused (RATE_LIMITED) at once
MAX_CLIENT_LOADS = 8  # one client's LoadGraph/SetPrompts waiting: its job in the queue + those held behind it
MAX_CLIENT_BYTES = 16 << 20  # one client's requests waiting (its job's and its held ones), in bytes
MAX_WAITING_BYTES = 64 << 20  # every client's requests waiting, in bytes
MAX_CLIENT_HELD = 1_000  # one client's requests held behind its load (small ones: the byte bounds hold the rest)


MMAP_THRESHOLD_BYTES = 256 << 10  # glibc serves blocks this large and larger from mmap(), freed to the system


def release_large_blocks() -> bool:
    """Make freed large blocks (a 1 MiB request and its copies) go back to the system at once (glibc); True if set.

    glibc serves blocks over its mmap threshold with ``mmap()`` and unmaps them when freed, but by default it
    raises that threshold to the size of the first such block freed: after that, 1 MiB requests come from the
    heaps of the threads that touched them (ZeroMQ's I/O thread, the serve loop, the load worker) and a burst of
    them leaves the process hundreds of MB larger for good. Fixing the threshold (``M_MMAP_THRESHOLD``) keeps a
    burst's cost to what is alive at once. The audio path allocates nothing this large. Elsewhere: a no-op.
    """
    try:
        import ctypes

        return bool(ctypes.CDLL(None).mallopt(-3, MMAP_THRESHOLD_BYTES))  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): nothing to do
        return False


def peek(data: bytes) -> tuple[str | None, int]:
    """(body field name, request id) of a request frame, or (None, 0) when it does not parse (handle() says why).

    A LoadGraph/SetPrompts that the wire layer refuses (a bad version, a NaN weight) is no load: its name comes
    back None, so it is answered at once by handle() and never waits for the worker.
    """
    try:
        env = Envelope.FromString(data)
    except Exception:  # noqa: BLE001 — protobuf DecodeError and friends: the full decode reports it
        return None, 0
    kind = env.WhichOneof("body")
    if kind in SLOW_REQUESTS:
        try:
            wire.decode_request(data)
        except Exception:  # noqa: BLE001 — WireError (and anything else): handle() answers it with its reason
            kind = None
    return kind, int(env.request_id)


@dataclass
class LoadJob:
    ident: bytes
    data: bytes
    request_id: int
    kind: str
    deadline: float
    nbytes: int = 0  # len(data) when queued (data is dropped once the worker is done with it)
    state: str = "queued"  # queued → running → committing → done, or queued/running → timed_out
    reply: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    delimited: bool = False  # it came REQ-style (an empty delimiter frame first): its reply goes out the same way

    def admit(self) -> bool:
        """Called under the engine lock right before the swap: True commits (no timeout any more)."""
        with self.lock:
            if self.state == "timed_out":
                return False
            self.state = "committing"
            return True


class _Worker:
    def __init__(self) -> None:
        self.abandoned = False
        self.job: LoadJob | None = None


class Held(NamedTuple):
    """A request of a blocked client, kept for after its load."""

    data: bytes  # the request frame (empty when ``reply`` is set)
    load: bool  # a LoadGraph/SetPrompts
    delimited: bool  # it came REQ-style: the reply goes out [b"", reply]
    reply: bytes | None  # already answered (TOO_LARGE, several frames…): sent as it is, in its turn


@dataclass
class _Client:
    """What one client has waiting (serve loop only): its load in the queue, the requests held behind it."""

    blocked: bool = False  # a load of this client is in the queue (or its reply is being sent): later ones wait
    # (frame, is a load, came REQ-style, the reply when it was answered on arrival: an error that must keep its place)
    held: collections.deque[Held] = field(default_factory=collections.deque)
    loads: int = 0  # LoadGraph/SetPrompts waiting: the one in the queue and the held ones
    nbytes: int = 0  # bytes of every request waiting (the queued load's and the held ones)


class LoadQueue:
    """The slow requests' worker, their FIFO, the clients' held requests and the wake pipe (see the module doc)."""

    def __init__(self, run: Callable[[bytes], bytes],
                 admission: Callable[[Callable[[], bool]], AbstractContextManager[None]],
                 timeout_s: float) -> None:
        self._run = run  # request frame → reply frame, never raises (Server.handle)
        self._admission = admission  # LiveEngine.admission
        self.timeout_s = timeout_s
        self._jobs: collections.deque[LoadJob] = collections.deque()
        self._cond = threading.Condition()
        self._done: queue.SimpleQueue[LoadJob] = queue.SimpleQueue()
        self.pending: collections.deque[LoadJob] = collections.deque()  # not yet answered (serve loop only)
        self._clients: dict[bytes, _Client] = {}  # clients with something waiting (serve loop only)
        self.waiting_bytes = 0  # bytes of every client's requests waiting (queued jobs and held requests)
        self.refused = 0  # requests answered RATE_LIMITED because too much was waiting
        self.wake_fd, self._wake_w = os.pipe()
        os.set_blocking(self.wake_fd, False)
        os.set_blocking(self._wake_w, False)
        self._active: _Worker | None = None
        self.abandoned = 0  # workers still busy with a job that timed out
        self.timeouts = 0
        self._closing = False
        self._start_worker()

    # ------------------------------------------------------------ serve loop side
    def blocked(self, ident: bytes) -> bool:
        """True while ``ident`` has a load pending: its later requests must wait behind it (:meth:`hold`)."""
        c = self._clients.get(ident)
        return c is not None and c.blocked

    def _too_much(self, c: _Client | None, size: int, load: bool) -> str | None:
        """Why one more request of ``size`` bytes (a load or not) cannot wait, or None when it can."""
        loads, nbytes, held = (c.loads, c.nbytes, len(c.held)) if c is not None else (0, 0, 0)
        if load and loads >= MAX_CLIENT_LOADS:
            return f"this client has {loads} LoadGraph/SetPrompts waiting already (at most {MAX_CLIENT_LOADS})"
        if held >= MAX_CLIENT_HELD:
            return f"{held} requests of this client wait behind its LoadGraph/SetPrompts (at most {MAX_CLIENT_HELD})"
        if nbytes + size > MAX_CLIENT_BYTES:
            return (f"this client's waiting requests hold {nbytes / 2**20:.1f} MiB already; with this one "
                    f"({size / 2**20:.1f} MiB) more than {MAX_CLIENT_BYTES >> 20} MiB would wait")
        if self.waiting_bytes + size > MAX_WAITING_BYTES:
            return (f"the clients' waiting requests hold {self.waiting_bytes / 2**20:.1f} MiB already; with this one "
                    f"more than {MAX_WAITING_BYTES >> 20} MiB would wait")
        return None

    def _refuse(self, request_id: int, why: str) -> bytes:
        self.refused += 1
        return wire.encode_reply(request_id, Error(code=Error.RATE_LIMITED, message=(
            f"{why}; this request was dropped, nothing was applied; send it again once the earlier ones are "
            "answered")))

    def _account(self, c: _Client, size: int, load: bool, sign: int) -> None:
        c.loads += sign * int(load)
        c.nbytes += sign * size
        self.waiting_bytes += sign * size

    def hold(self, ident: bytes, data: bytes | memoryview, delimited: bool, kind: str | None, request_id: int, *,
             reply: bytes | None = None) -> bytes | None:
        """Keep a request of a :meth:`blocked` client for after its load; None, or the reply refusing it at once.

        ``kind`` and ``request_id``: what the serve loop read of it (``kind`` None: not a valid request).
        ``reply``: the request is answered already (an error decided on arrival, ``data`` empty); the reply keeps
        its place behind the load instead of overtaking it, and only its bytes wait.
        """
        c = self._clients[ident]
        load = kind in SLOW_REQUESTS
        size = len(data) + len(reply or b"")
        why = self._too_much(c, size, load)
        if why is not None:
            return self._refuse(request_id, why)
        c.held.append(Held(bytes(data), load, delimited, reply))  # (a view of ZeroMQ's buffer: copied to keep)
        self._account(c, size, load, +1)
        return None

    def next_held(self, ident: bytes) -> Held | None:
        """After ``ident``'s load was answered: its oldest held request (to handle or send now), or None.

        The first call unblocks the client; handling a held load blocks it again (:meth:`submit`), and the
        requests after that one stay held.
        """
        c = self._clients.get(ident)
        if c is None:
            return None
        c.blocked = False
        if not c.held:
            if c.loads == 0 and c.nbytes == 0:
                del self._clients[ident]
            return None
        held = c.held.popleft()
        self._account(c, len(held.data) + len(held.reply or b""), held.load, -1)
        return held

    def submit(self, ident: bytes, data: bytes, request_id: int, kind: str, delimited: bool = False) -> bytes | None:
        """Queue a slow request; None, or the reply that refuses it at once (too much waiting, workers stuck)."""
        if self.abandoned >= MAX_ABANDONED_LOADS and self._active is None:
            self.timeouts += 1
            return wire.encode_reply(request_id, Error(code=Error.TIMEOUT, message=(
                f"{self.abandoned} earlier loads are still running past their {self.timeout_s:g} s bound (a file "
                "that never finishes reading?); nothing was applied; try again later")))
        if len(self.pending) >= MAX_QUEUED_LOADS:
            return self._refuse(request_id, f"{len(self.pending)} LoadGraph/SetPrompts requests of other clients "
                                            f"are waiting already (at most {MAX_QUEUED_LOADS})")
        c = self._clients.get(ident)
        why = self._too_much(c, len(data), True)
        if why is not None:
            return self._refuse(request_id, why)
        if c is None:
            c = self._clients[ident] = _Client()
        c.blocked = True
        self._account(c, len(data), True, +1)
        job = LoadJob(ident, data, request_id, kind, time.monotonic() + self.timeout_s, nbytes=len(data),
                      delimited=delimited)
        self.pending.append(job)
        with self._cond:
            self._jobs.append(job)
            self._cond.notify()
        return None

    def poll_timeout_ms(self, default_ms: int) -> int:
        if not self.pending:
            return default_ms
        left = min(j.deadline for j in self.pending) - time.monotonic()
        return max(0, min(default_ms, int(left * 1000) + 1))

    def answered(self) -> list[tuple[LoadJob, bytes]]:
        """Jobs to answer now, in arrival order: finished ones with their reply, timed-out ones with TIMEOUT."""
        try:
            while os.read(self.wake_fd, 4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                self._done.get_nowait()
            except queue.Empty:
                break
        now = time.monotonic()
        out: list[tuple[LoadJob, bytes]] = []
        for job in list(self.pending):
            with job.lock:
                if job.state == "done":
                    assert job.reply is not None
                    out.append((job, job.reply))
                elif job.state in ("queued", "running") and now >= job.deadline:
                    was_running = job.state == "running"
                    job.state = "timed_out"
                    out.append((job, self._timeout_reply(job)))
                    if was_running:
                        self._abandon(job)
                else:
                    continue
            self.pending.remove(job)
            c = self._clients.get(job.ident)
            if c is not None:  # its bytes wait no more (a worker stuck on it keeps them: MAX_ABANDONED_LOADS)
                self._account(c, job.nbytes, True, -1)
        return out

    def _timeout_reply(self, job: LoadJob) -> bytes:
        self.timeouts += 1
        what = "LoadGraph" if job.kind == "load_graph" else "SetPrompts"
        return wire.encode_reply(job.request_id, Error(code=Error.TIMEOUT, message=(
            f"{what} took longer than {self.timeout_s:g} s (reading files, embedding prompts); nothing was applied, "
            "the music plays on unchanged"), field=job.kind))

    def _abandon(self, job: LoadJob) -> None:
        with self._cond:
            w = self._active
            if w is None or w.job is not job:
                return
            w.abandoned = True
            self.abandoned += 1
            self._active = None
            if self.abandoned < MAX_ABANDONED_LOADS:
                self._start_worker()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for fd in (self.wake_fd, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # ------------------------------------------------------------ worker side
    def _start_worker(self) -> None:
        w = _Worker()
        self._active = w
        threading.Thread(target=self._work, args=(w,), name="cadenza-load", daemon=True).start()

    def _work(self, me: _Worker) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._jobs.popleft()
                me.job = job
            with job.lock:
                skip = job.state == "timed_out"
                if not skip:
                    job.state = "running"
            if not skip:
                with self._admission(job.admit):
                    reply = self._run(job.data)
                job.data = b""  # done with the request's bytes (a 1 MiB graph text): free them now
                with job.lock:
                    if job.state != "timed_out":
                        job.state = "done"
                        job.reply = reply
                        self._done.put(job)
                        try:
                            os.write(self._wake_w, b"x")
                        except OSError:  # the pipe is full (the loop wakes anyway) or closed (shutting down)
                            pass
            with self._cond:
                me.job = None
                if me.abandoned:  # a fresh worker took over while this one was stuck
                    self.abandoned -= 1
                    if self._active is not None or self._closing:
                        return
                    me.abandoned = False  # no worker left (too many stuck): this one takes the queue again
                    self._active = me
