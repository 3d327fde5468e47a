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
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LEVELS", "configure"]

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
    handler.setFormatter(logging.Formatter(f"cadenza {command}: %(message)s"))
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    root.propagate = False  # once here, not again through a handler someone put on the root logger
    return handler
