"""The error hierarchy shared by the runtime and the SDK.

Imports nothing from the package. Every message carries the bad value, where it
was found (a field path, ``file:line`` or CLI option) and the valid choices or
the fix, so that the command line can print it on one line without a traceback.
"""

from __future__ import annotations


class CadenzaError(Exception):
    """Base of every error Cadenza raises on purpose.

    ``where`` names the location of the bad value (``--bpm``, ``prompts[1]``,
    ``battle.yaml:14 mix.battle``); it prefixes the message when given.
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class UsageError(CadenzaError):
    """A bad command-line option or API argument."""


class PromptError(CadenzaError):
    """A prompt the backend cannot embed (no known word, unreadable audio file)."""


class GraphError(CadenzaError):
    """An invalid style graph."""


class ProtocolError(CadenzaError):
    """A malformed or unsupported message on the wire."""


class ModelError(CadenzaError):
    """A model backend that cannot load or run (missing weights, wrong device)."""


class AudioError(CadenzaError):
    """An audio input or output that failed (device, file sink)."""
