"""Tell a service manager (systemd) how the runtime is doing: READY, WATCHDOG, STATUS, STOPPING.

This is systemd's notification protocol, written from its documented
behaviour (``sd_notify(3)``, ``systemd.service(5)``) with no libsystemd:

- the manager names a socket in ``NOTIFY_SOCKET``: a filesystem path
  (``/run/systemd/notify``) or, when it starts with ``@``, a Linux abstract
  socket (the ``@`` stands for the leading NUL byte);
- a notification is one datagram (``AF_UNIX``, ``SOCK_DGRAM``) of
  newline-separated ``KEY=VALUE`` assignments; the kernel attaches our pid,
  which is how the manager knows who speaks (``NotifyAccess=main``);
- ``READY=1``: start-up is finished. With ``Type=notify`` the unit counts as
  started only now, and only now does its watchdog begin to count;
- ``WATCHDOG=1``: keep-alive. With ``WatchdogSec=`` the manager sets
  ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``: the pid it expects pings from) and
  kills the service (SIGABRT, then SIGKILL) when no ping arrives for that long;
  ``Restart=`` then starts it again. ``sd_watchdog_enabled(3)`` advises
  pinging at half the interval;
- ``STATUS=…``: one line that ``systemctl status`` shows;
- ``STOPPING=1``: shutdown has begun.

What ``cadenza serve`` says, and when (:class:`Supervisor`)::

    serve's main thread ── starts ──► notify thread (this module; its own thread, never the
                                      │ audio or the generation thread)
    generation thread: stats.steps ──┤ READY=1 once the first block is in the sinks (and, with a
    control loop: turns ─────────────┤          device, once the device has played from its ring)
                                     │ WATCHDOG=1 every WATCHDOG_USEC / 2 (50 ms at the least), only
                                     │          when the generation thread stepped AND the control
                                     │          loop turned since the last ping: a stalled thread
                                     │          means no pings, so the manager kills and restarts
                                     │          the runtime
                                     │ STATUS=playing graph 'x', stream 123.4 s, 0 xruns (each wake)
    shutdown ── STOPPING=1 ──────────┘

Sending never blocks (a non-blocking datagram socket) and never fails the
runtime: the first error is logged once, later ones are counted and ignored.
Without ``NOTIFY_SOCKET`` nothing is sent and no thread starts. The variables
are removed from our environment once read (``sd_notify``'s
``unset_environment``), so child processes (the audio relay) never speak for us.

Test hook: ``CADENZA_TEST_HANG_FILE=PATH``, read once at import. While a file
exists at PATH, the generation thread blocks at the top of its next step
(:func:`hang_hook`), and goes on when the file is removed. It exists so tests
can stall the generation thread while every other thread lives (SIGSTOP would
stop them all) and see the watchdog pings stop. Unset, it costs one ``is None``
test per step.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping

logger = logging.getLogger(__name__)  # the default ``log`` of everything here (tests pass their own)

HANG_FILE_ENV = "CADENZA_TEST_HANG_FILE"
_HANG_FILE: str | None = os.environ.get(HANG_FILE_ENV) or None
HANG_POLL_S = 0.02

READY_POLL_S = 0.02  # how often the notify thread looks for the first audio
MIN_PING_INTERVAL_S = 0.05  # a WATCHDOG_USEC under 0.1 s still gets pings no more often than this
STATUS_INTERVAL_S = 5.0  # STATUS= updates without a watchdog (with one: every ping interval, if shorter)
MAX_STATUS_CHARS = 400


def hang_hook(stop: threading.Event | None = None) -> None:
    """TEST HOOK, called by the generation thread once per step: block while ``$CADENZA_TEST_HANG_FILE`` exists.

    Returns at once when the variable was not set at start-up, and as soon as
    ``stop`` is set (so a stalled runtime still shuts down on SIGTERM).
    """
    path = _HANG_FILE
    if path is None:
        return
    while os.path.exists(path) and not (stop is not None and stop.is_set()):
        time.sleep(HANG_POLL_S)


def socket_address(value: str) -> str | bytes:
    """The ``AF_UNIX`` address that ``NOTIFY_SOCKET``'s ``value`` names (``@name``: the abstract ``\\0name``)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    raise ValueError(f"NOTIFY_SOCKET={value!r} is neither a socket path (/…) nor an abstract socket (@…); "
                     "only those two forms are supported (no vsock:)")


class Notifier:
    """One non-blocking datagram socket to the manager's notification socket.

    :meth:`send` never raises and never blocks: a full socket buffer, a
    missing socket or a manager that went away costs one log line (the first
    time) and a count in :attr:`failures`.
    """

    def __init__(self, address: str, *, log: Callable[[str], None] = logger.warning) -> None:
        self.address = address
        self._addr = socket_address(address)
        self._log = log
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)
        self._lock = threading.Lock()  # the notify thread and shutdown may both send
        self.sent = 0
        self.failures = 0
        self.closed = False

    def send(self, **fields: object) -> bool:
        """Send ``KEY=VALUE`` lines as one datagram (``send(READY=1, STATUS="…")``); True when it went out."""
        lines = []
        for key, value in fields.items():
            text = str(value).replace("\n", " ")
            if key == "STATUS" and len(text) > MAX_STATUS_CHARS:
                text = text[:MAX_STATUS_CHARS - 1] + "…"
            lines.append(f"{key}={text}")
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            if self.closed:
                return False
            try:
                self._sock.sendto(data, self._addr)
            except OSError as exc:
                self.failures += 1
                if self.failures == 1:
                    self._log(f"cannot notify the service manager at NOTIFY_SOCKET={self.address!r}: "
                              f"{exc.strerror or exc}; the runtime goes on (later failures are not logged)")
                return False
            self.sent += 1
            return True

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._sock.close()


def watchdog_interval(environ: Mapping[str, str], *, log: Callable[[str], None] = logger.warning) -> float | None:
    """Seconds between pings (half of ``WATCHDOG_USEC``), or None when no watchdog asks for pings from us.

    ``WATCHDOG_PID``, when set, must be our pid: the manager expects the pings
    from that process only (a child that inherited the variables stays quiet).
    """
    usec = environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        value = 0
    if value <= 0:
        log(f"WATCHDOG_USEC={usec!r} is not a positive whole number of microseconds; no watchdog pings "
            "(set WatchdogSec= in the unit file)")
        return None
    if value / 1e6 / 2 < MIN_PING_INTERVAL_S:  # WATCHDOG_USEC=1 would mean a ping every 0.5 µs: a busy loop
        log(f"WATCHDOG_USEC={usec!r} asks for a ping every {value / 2:g} µs; pinging every "
            f"{MIN_PING_INTERVAL_S * 1000:g} ms instead (give WatchdogSec= of {2 * MIN_PING_INTERVAL_S:g} s or more)")
        return MIN_PING_INTERVAL_S
    return value / 1e6 / 2


class Supervisor:
    """The notify thread: READY after the first audio, WATCHDOG while both loops progress, STATUS, STOPPING.

    ``progress()`` returns named counters that grow while the runtime is
    healthy (``{"generation thread": steps, "control loop": turns}``); a ping
    is sent only when *every* counter moved since the last ping. ``audio_flowing()``
    says whether the first audio reached the sinks. ``status()`` is the
    ``STATUS=`` line. All three are read from this thread without locks: they
    must only read plain attributes.
    """

    def __init__(self, notifier: Notifier, *, progress: Callable[[], Mapping[str, int]],
                 audio_flowing: Callable[[], bool], status: Callable[[], str],
                 watchdog_s: float | None, log: Callable[[str], None] = logger.warning) -> None:
        self.notifier = notifier
        self.progress = progress
        self.audio_flowing = audio_flowing
        self.status = status
        self.watchdog_s = watchdog_s
        self.log = log
        self.period = min(STATUS_INTERVAL_S, watchdog_s) if watchdog_s else STATUS_INTERVAL_S
        self.ready = False
        self.pings = 0
        self.withheld = 0  # pings not sent because a loop made no progress
        self._stop = threading.Event()
        self._stopping_sent = False
        self._thread = threading.Thread(target=self._run, name="cadenza-notify", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def _safe_status(self) -> str:
        try:
            return self.status()
        except Exception as exc:  # noqa: BLE001 — a status line must never take the notify thread down
            return f"status unavailable ({type(exc).__name__})"

    def _run(self) -> None:
        while not self.ready:
            if self._stop.wait(READY_POLL_S):
                return
            try:
                flowing = self.audio_flowing()
            except Exception:  # noqa: BLE001 — asked again at the next poll
                flowing = False
            if flowing:
                self.ready = True
                self.notifier.send(READY=1, STATUS=self._safe_status())
        last = self.progress()
        last_at = time.monotonic()
        while not self._stop.wait(self.period):
            now_progress = self.progress()
            now = time.monotonic()
            idle = [name for name, count in now_progress.items() if count == last.get(name)]
            if not idle:
                last, last_at = now_progress, now
                if self.watchdog_s:
                    self.pings += 1
                    self.notifier.send(WATCHDOG=1, STATUS=self._safe_status())
                else:
                    self.notifier.send(STATUS=self._safe_status())
                continue
            self.withheld += 1
            stalled = now - last_at
            what = f"STALLED: no progress of the {' or the '.join(idle)} for {stalled:.1f} s"
            if self.watchdog_s:
                what += "; watchdog pings withheld"
            if self.withheld == 1 or self.withheld % 10 == 0:
                self.log(what)
            self.notifier.send(STATUS=what)

    def stopping(self, status: str = "stopping") -> None:
        """``STOPPING=1`` (once), then the thread ends; safe to call from any thread, more than once."""
        self._stop.set()
        if not self._stopping_sent:
            self._stopping_sent = True
            self.notifier.send(STOPPING=1, STATUS=status)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        self.notifier.close()


def supervise(*, progress: Callable[[], Mapping[str, int]], audio_flowing: Callable[[], bool],
              status: Callable[[], str], log: Callable[[str], None] = logger.warning,
              environ: MutableMapping[str, str] | None = None) -> Supervisor | None:
    """Start the notify thread when ``NOTIFY_SOCKET`` is set; None (and nothing started) when it is not.

    Reads ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` once and
    removes them from ``environ`` (``os.environ`` by default).
    """
    env = os.environ if environ is None else environ
    address = env.pop("NOTIFY_SOCKET", "")
    watchdog_s = watchdog_interval(env, log=log)
    env.pop("WATCHDOG_USEC", None)
    env.pop("WATCHDOG_PID", None)
    if not address:
        return None
    try:
        notifier = Notifier(address, log=log)
    except (ValueError, OSError) as exc:
        log(f"not notifying the service manager: {exc}")
        return None
    return Supervisor(notifier, progress=progress, audio_flowing=audio_flowing, status=status,
                      watchdog_s=watchdog_s, log=log).start()
