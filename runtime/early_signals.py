"""Signals that arrive before a command is ready for them: held from the first line of ``cadenza``'s ``main()``.

Until a process installs a handler, SIGHUP and SIGTERM end it at once and
silently, and SIGINT raises ``KeyboardInterrupt`` wherever Python happens to
be (a traceback). ``cadenza serve`` and ``cadenza render`` install their
real handlers only after their imports (a third of a second, more on a loaded
machine or with the magenta backend). So :func:`hold` — the first thing
``main()`` does, before any heavy import — installs a handler that only
*records* SIGHUP, SIGINT and SIGTERM; whoever installs the real handlers then
calls :func:`replay`, which raises each recorded signal once more, now into
them:

- ``serve`` (``server.run_server``): an early SIGTERM or SIGINT stops the
  runtime cleanly as soon as it can (exit 0, files finalised); an early SIGHUP
  asks the file sinks to reopen, which finds nothing moved and says so;
- ``render`` (``render.stop_on_signals``): an early signal stops it with exit
  status 128 + the signal and a one-line message; nothing appears at ``--out``;
- every other command: ``main()`` puts the handlers back as they were and
  replays what came, so it acts as it always did.

A second SIGINT while held raises ``KeyboardInterrupt`` at once (a double
Ctrl-C during a long model load).

Until the model is loaded ``serve`` need not stop cleanly: nothing plays, no
file is open. :func:`end_at_once` (``cadenza serve``, up to the backend's
compile) makes SIGTERM and SIGINT end the process at once, exit 0, with one
line on stderr — even while the main thread is inside a long C call (XLA
compiling), where no Python handler runs until it returns: the signal's byte
on a wakeup fd (written by the interpreter's C-level handler) wakes a watcher
thread that exits. :func:`disarm`, before the sinks open, puts the held
behaviour back. A signal ignored when :func:`hold` runs
(``nohup``) stays ignored. What remains is the interpreter's own start-up
before ``main()`` runs (~30 ms on an idle machine), which no Python code can
cover. Imports nothing beyond the standard library.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)

_pending: list[int] = []
_before: dict[int, Any] = {}
_armed_lock = threading.Lock()
#: while armed (end_at_once): (the wakeup fd's pipe, the fd set_wakeup_fd had before, the watcher thread)
_armed: list[tuple[int, int, int, threading.Thread]] = []


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal (SIGINT, SIGTERM, SIGHUP): raised in the main thread, so cleanup runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _record(signum: int, frame: object) -> None:
    if signum == signal.SIGINT and signum in _pending:
        raise KeyboardInterrupt  # the second Ctrl-C: do not wait for start-up to finish
    _pending.append(signum)


def hold() -> None:
    """Record SIGHUP, SIGINT and SIGTERM from now on (see the module docstring). A no-op off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in SIGNALS:
        before = signal.getsignal(s)
        if before == signal.SIG_IGN or before is _record:
            continue
        _before[s] = before
        signal.signal(s, _record)


def pending() -> list[int]:
    """The signals recorded and not yet replayed, in order."""
    return list(_pending)


def replay() -> None:
    """Raise each recorded signal again, once, into the handlers installed now; forget them."""
    if threading.current_thread() is not threading.main_thread():
        return
    while _pending:
        s = _pending.pop(0)
        if signal.getsignal(s) is _record:
            continue  # nobody took it over: nothing would act on it
        signal.raise_signal(s)


def end_at_once(command: str) -> None:
    """From now until :func:`disarm`: SIGTERM or SIGINT end the process at once (exit 0, ``cadenza COMMAND:
    stopped by SIGTERM while starting`` on stderr), whatever the main thread is doing. Only while nothing needs
    stopping cleanly. Call from the main thread after :func:`hold`; a no-op elsewhere or when already armed."""
    if threading.current_thread() is not threading.main_thread() or _armed:
        return
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        before = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (ValueError, OSError):
        os.close(r)
        os.close(w)
        return

    def watch() -> None:
        while True:
            try:
                data = os.read(r, 64)
            except OSError:
                return
            if not data:
                return  # disarmed
            for signum in data:
                if signum not in (signal.SIGTERM, signal.SIGINT):
                    continue
                with _armed_lock:
                    if not _armed:
                        return
                    os.write(2, f"cadenza {command}: stopped by {signal.Signals(signum).name} while starting "
                                "(nothing was playing yet)\n".encode())
                    os._exit(0)

    thread = threading.Thread(target=watch, name="signals-while-starting", daemon=True)
    with _armed_lock:
        _armed.append((r, w, before, thread))
    thread.start()


def disarm() -> None:
    """End :func:`end_at_once`: signals are held again (replayed into the command's handlers). From the main
    thread; a no-op when not armed."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _armed_lock:  # once this is held, the watcher ends nothing any more
        if not _armed:
            return
        r, w, before, thread = _armed.pop()
    signal.set_wakeup_fd(before)
    os.close(w)  # the watcher reads the end of the pipe and returns
    thread.join(1.0)
    os.close(r)


def release(*, forget: bool = True) -> None:
    """Put back the handlers :func:`hold` found, where nobody has replaced ours since; forget what was not
    replayed unless ``forget`` is False (then :func:`replay` delivers it to the handlers put back)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s, before in list(_before.items()):
        if signal.getsignal(s) is _record and before is not None:
            signal.signal(s, before)
        del _before[s]
    if forget:
        _pending.clear()


__all__ = ["SIGNALS", "Stopped", "disarm", "end_at_once", "hold", "pending", "release", "replay"]
