"""The sink contracts: a place that accepts 48 kHz stereo float32 blocks (:class:`Sink`), and one whose
device clock paces the live loop (:class:`ClockSink`).

Sinks convert format at their edge (file subtype, device dtype); inside the
runtime audio stays float32 ``(frames, 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Sink(Protocol):
    """Accepts audio blocks in order; ``close()`` flushes and leaves a valid result."""

    def write(self, block: np.ndarray) -> None:
        """Append one ``(frames, 2)`` float32 block."""

    def close(self) -> None:
        """Flush and release; idempotent."""


@dataclass(frozen=True)
class SinkNotice:
    """Something a sink that rides through its own faults wants said (a ``warning`` event), queued in its
    ``notices`` deque: ``fault`` is why it is out of play now, or ``None`` when it records (again)."""

    message: str
    fault: str | None


@runtime_checkable
class ClockSink(Sink, Protocol):
    """A sink whose device clock paces the live loop (:class:`~cadenza.runtime.sinks.device.DeviceSink`).

    The counters may be read from any thread at any time; ``state`` is
    ``playing``, ``lost`` (audio discarded at the wall clock's pace) or
    ``relayed`` (played by a relay process), and ``lost`` / ``relayed`` /
    ``relay_error`` say why and where.
    """

    @property
    def frames_played(self) -> int: ...
    @property
    def queued_frames(self) -> int: ...
    @property
    def underruns(self) -> int: ...
    @property
    def underrun_frames(self) -> int: ...
    @property
    def stalls(self) -> int: ...
    @property
    def stall_frames(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def relayed(self) -> str | None: ...
    @property
    def relay_error(self) -> str: ...

    lost: str | None

    def heard_clock(self) -> tuple[int, float] | None:
        """The heard clock: ``(frame, t)``, the frame (counted from the first one written to this sink) that
        leaves the output at ``time.monotonic()`` time ``t``, device latency included; ``None`` while nothing
        plays yet. Lock-free, callable from any thread; later frames follow at the sample rate."""

    def start(self) -> None:
        """Start playing what is queued (a live producer's lookahead)."""
