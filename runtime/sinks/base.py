"""The sink contract: a place that accepts 48 kHz stereo float32 blocks.

Sinks convert format at their edge (file subtype, device dtype); inside the
runtime audio stays float32 ``(frames, 2)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Sink(Protocol):
    """Accepts audio blocks in order; ``close()`` flushes and leaves a valid result."""

    def write(self, block: np.ndarray) -> None:
        """Append one ``(frames, 2)`` float32 block."""

    def close(self) -> None:
        """Flush and release; idempotent."""
