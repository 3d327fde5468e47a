"""The null sink: audio goes nowhere, frames are counted.

``NullSink`` is what benchmarks and headless runs use when nobody listens: it
keeps the sink contract (validation, ``close()`` idempotent, no writes after
close) so a pipeline behaves the same whatever sits at its end.
"""

from __future__ import annotations

import numpy as np

from cadenza.errors import UsageError
from cadenza.runtime.audio import as_block


class NullSink:
    """Accepts blocks and throws them away, counting what it was given."""

    def __init__(self) -> None:
        self.frames_written = 0
        self.blocks_written = 0
        self.closed = False

    def write(self, block: np.ndarray) -> None:
        """Count one ``(frames, 2)`` block."""
        if self.closed:
            raise UsageError("NullSink.write() after close()")
        arr = as_block(block, "NullSink")
        self.frames_written += arr.shape[0]
        self.blocks_written += 1

    def close(self) -> None:
        """Mark closed; idempotent."""
        self.closed = True

    def __enter__(self) -> NullSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
