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
Ctrl-C during a long model load). A signal ignored when :func:`hold` runs
(``nohup``) stays ignored. What remains is the interpreter's own start-up
before ``main()`` runs (~30 ms on an idle machine), which no Python code can
cover. Imports nothing beyond the standard library.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)

_pending: list[int] = []
_before: dict[int, Any] = {}


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


__all__ = ["SIGNALS", "Stopped", "hold", "pending", "release", "replay"]
