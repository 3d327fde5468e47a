"""Where the runtime's log records go: one stderr handler on the ``cadenza`` logger, set up once by the CLI.

Every runtime module logs through ``logging.getLogger(__name__)`` (the
records of ``cadenza.runtime.server``, ``cadenza.runtime.sinks.file``, …
all reach the ``cadenza`` logger); nothing below the CLI prints or configures
logging. :func:`configure`, called by ``cadenza COMMAND`` once its arguments
are parsed, writes each record of ``level`` or above to stderr as one line::

    cadenza serve: CURVE allow-lists: 2 client key(s) with control, 0 read-only

(the command's name first, as its error lines have it). Calling it again
replaces the handler (tests run several commands in one process). A library
user who never calls it gets Python's defaults: warnings and errors on stderr
through the last-resort handler, nothing else, unless they configure logging
themselves. Standard library only: the CLI calls it before heavy imports.

Every line's message goes through :func:`printable` (one helper for every
command): text a sender controls — an OSC address, a MIDI port's name, a
client's name — cannot clear or colour the terminal (control characters are
shown as ``\\x1b``), cannot start a forged line (CR/LF are shown as ``\\r``
``\\n``), and a line is cut at :data:`LINE_MAX` characters.
"""

from __future__ import annotations

import logging
import re
import sys

__all__ = ["LEVELS", "LINE_MAX", "configure", "printable"]

#: the longest message a log line shows; the rest is counted, not printed
LINE_MAX = 2000
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, limit: int = LINE_MAX) -> str:
    """``text`` safe for one terminal/journal line: control characters (ESC, CR, LF, bidi overrides …) shown as
    escapes (``\\x1b``, ``\\u202e``), never acted on; cut at ``limit`` characters with the count of the rest."""
    def escape(m: re.Match[str]) -> str:
        c = m[0]
        return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"

    out = _UNSAFE.sub(escape, text)
    if len(out) > limit:
        out = f"{out[:limit]}… ({len(out) - limit} more characters)"
    return out


class _PrintableFormatter(logging.Formatter):
    """The record's message through :func:`printable` (a traceback, which only our own code raises, stays as is)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)

#: The ``--log-level`` choices, quietest last.
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
DEFAULT_LEVEL = "info"


class _Stderr(logging.Handler):
    """Writes each record as a line to whatever ``sys.stderr`` is at the time (pytest's capture, a redirect)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's own convention: report through handleError, never raise
            self.handleError(record)


def configure(command: str, level: str = DEFAULT_LEVEL) -> logging.Handler:
    """Log the ``cadenza`` records of ``level`` (a :data:`LEVELS` name) or above to stderr as ``cadenza COMMAND:
    message`` lines; returns the handler."""
    root = logging.getLogger("cadenza")
    for old in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(old)
    handler = _Stderr()
    handler.setFormatter(_PrintableFormatter(f"cadenza {command}: %(message)s"))
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    root.propagate = False  # once here, not again through a handler someone put on the root logger
    return handler
