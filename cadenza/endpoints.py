"""Where a client looks for the runtime when told nothing: ``$CADENZA_CONTROL`` … else ``cadenza serve``'s defaults.

The one place the ``CADENZA_*`` endpoint variables are read, shared by the
SDK (its ``DEFAULT_*`` constants), ``cadenza ctl`` and ``cadenza osc``. The
variables are read when asked (:func:`default_endpoint`), not at import, so a
``cadenza`` command that talks to no runtime never looks at them. Standard
library only.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["ENV", "RUNTIME_DEFAULTS", "default_endpoint", "endpoint_source"]

#: ``cadenza serve``'s own endpoints (what a client uses when no variable is set).
RUNTIME_DEFAULTS: Final = {
    "control": "tcp://127.0.0.1:5555",
    "events": "tcp://127.0.0.1:5556",
    "audio": "tcp://127.0.0.1:5557",
    "audio_int16": "tcp://127.0.0.1:5558",
}
#: The environment variable that overrides each default.
ENV: Final = {
    "control": "CADENZA_CONTROL",
    "events": "CADENZA_EVENTS",
    "audio": "CADENZA_AUDIO",
    "audio_int16": "CADENZA_AUDIO_INT16",
}


def default_endpoint(kind: str) -> str:
    """``kind`` (control, events, audio, audio_int16): its ``$CADENZA_…`` variable when set and not empty, else
    the runtime's default."""
    return os.environ.get(ENV[kind]) or RUNTIME_DEFAULTS[kind]


def endpoint_source(kind: str) -> tuple[str, str]:
    """(the endpoint :func:`default_endpoint` gives, where it came from: ``$CADENZA_…`` or ``the default``)."""
    value = os.environ.get(ENV[kind])
    if value:
        return value, f"${ENV[kind]}"
    return RUNTIME_DEFAULTS[kind], "the default"
