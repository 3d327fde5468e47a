"""Cadenza: a live generative-music runtime and SDK.

The package maps the repository's top-level folders into one namespace:
``cadenza.runtime`` (the runtime process), ``cadenza.sdk`` (the client SDK) and
``cadenza.proto`` (the wire contract). This module only carries the version and
the error hierarchy shared by all of them.
"""

from cadenza.errors import (
    AudioError,
    CadenzaError,
    GraphError,
    ModelError,
    PromptError,
    ProtocolError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "AudioError",
    "CadenzaError",
    "GraphError",
    "ModelError",
    "PromptError",
    "ProtocolError",
    "UsageError",
    "__version__",
]
