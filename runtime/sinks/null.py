"""The null sink (audio goes nowhere, frames are counted), and the block check
every sink applies at its edge.

``NullSink`` is what benchmarks and headless runs use when nobody listens: it
keeps the sink contract (validation, ``close()`` idempotent, no writes after
close) so a pipeline behaves the same whatever sits at its end.
"""

from __future__ import annotations

import numpy as np

from cadenza.errors import UsageError
from cadenza.runtime.backends.base import CHANNELS


def as_block(block: np.ndarray, sink: str) -> np.ndarray:
    """``block`` as a C-contiguous float32 ``(frames, CHANNELS)`` array.

    Converts other float dtypes (no copy for a float32 block). Raises
    :class:`UsageError` naming ``sink`` and the bad shape or dtype otherwise.
    """
    arr = np.asarray(block)
    if arr.ndim != 2 or arr.shape[1] != CHANNELS:
        raise UsageError(
            f"{sink}.write() takes a (frames, {CHANNELS}) block, got shape {arr.shape}"
        )
    if arr.dtype.kind != "f":  # integer PCM would need scaling: refuse, don't guess
        raise UsageError(f"{sink}.write() takes float32 samples in [-1, 1], got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


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
