"""The lock-free ring between a producer thread and the audio callback (single producer, single consumer)."""

from __future__ import annotations

import numpy as np

from cadenza.errors import UsageError
from cadenza.runtime.audio import CHANNELS

__all__ = ["RingBuffer"]


class RingBuffer:
    """A single-producer/single-consumer ring of stereo float32 frames.

    The producer only advances ``written`` and the consumer only advances
    ``read``; each publishes its counter *after* touching the data, so the
    other side never sees a frame before it is there and no lock is needed
    (storing a Python int attribute is atomic under the GIL). Counters only
    grow; positions in ``data`` are the counters modulo ``capacity``.
    """

    def __init__(self, capacity: int, channels: int = CHANNELS) -> None:
        if capacity < 1:
            raise UsageError(f"ring buffer capacity must be >= 1 frame, got {capacity}")
        self.capacity = capacity
        self.data = np.zeros((capacity, channels), dtype=np.float32)
        self.written = 0
        self.read = 0

    def available(self) -> int:
        """Frames written and not yet read."""
        return self.written - self.read

    def free(self) -> int:
        """Frames that can be pushed without overwriting unread audio."""
        return self.capacity - (self.written - self.read)

    def push(self, block: np.ndarray) -> int:
        """Producer side: copy as much of ``block`` as fits; return the frames taken."""
        n = min(len(block), self.free())
        if n <= 0:
            return 0
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self.data[start : start + first] = block[:first]
        if first < n:
            self.data[: n - first] = block[first:n]
        self.written += n  # publish after the copy
        return n

    def pull_into(self, out: np.ndarray) -> int:
        """Consumer side: fill ``out`` from the ring, silence for what is missing.

        Returns the frames copied from the ring (``len(out)`` unless it ran
        dry). Copies between preallocated arrays only.
        """
        frames = len(out)
        read = self.read
        n = self.written - read
        if n > frames:
            n = frames
        if n > 0:
            start = read % self.capacity
            first = self.capacity - start
            if first >= n:
                out[:n] = self.data[start : start + n]
            else:
                out[:first] = self.data[start:]
                out[first:n] = self.data[: n - first]
            self.read = read + n  # publish after the copy
        if n < frames:
            out[n:] = 0.0
        return n
