"""The runtime's audio format and the few conversions every stage shares: the bottom of the package.

One job: say what audio inside Cadenza is — float32 ``(frames, CHANNELS)`` at
:data:`SAMPLE_RATE` — and turn what comes from outside into it:

- :func:`as_block`: a block a sink was handed, checked and made contiguous
  float32 (every sink applies it at its edge);
- :func:`to_stereo_48k`: decoded audio of any channel count and rate as the
  runtime's stereo 48 kHz (stingers);
- :func:`read_mono`: the beginning of an audio file (or its bytes, read
  already) as mono float64 at the file's own rate (the backends that analyse
  audio prompts).

It imports nothing from the package but :mod:`cadenza.errors`, so backends,
sinks and the graph loader all stand on it without tying to each other.
``soundfile`` (libsndfile) is imported only when a file is read.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from cadenza.errors import PromptError, UsageError

__all__ = ["CHANNELS", "SAMPLE_RATE", "as_block", "read_mono", "to_stereo_48k"]

SAMPLE_RATE = 48_000
CHANNELS = 2


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


def to_stereo_48k(data: np.ndarray, rate: int) -> np.ndarray:
    """``(frames, channels)`` audio as contiguous float32 stereo at 48 kHz (linear resampling; NaN/inf → 0)."""
    data = np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    data = data[:, :2]
    if rate != SAMPLE_RATE:
        n = max(1, int(round(data.shape[0] * SAMPLE_RATE / rate)))
        x = np.linspace(0.0, data.shape[0] - 1, n)
        data = np.stack([np.interp(x, np.arange(data.shape[0]), data[:, c]) for c in range(2)], axis=1)
    return np.ascontiguousarray(data, dtype=np.float32)


def read_mono(path: str | os.PathLike[str], data: bytes | None = None,
              max_seconds: float = 60.0) -> tuple[np.ndarray, int, float]:
    """The first ``max_seconds`` of an audio prompt as mono float64, its sample rate and the file's duration.

    Reads ``data`` when the file's bytes were read already (a graph's audio
    prompt, checked at load), else the file at ``path``. Errors are
    :class:`PromptError` naming the file and what to give instead.
    """
    import soundfile as sf

    path = Path(path)
    if data is None:
        if not path.exists():
            raise PromptError(f"audio prompt file not found: {str(path)!r}")
        if path.is_dir():
            raise PromptError(f"audio prompt {str(path)!r} is a directory, not a WAV/FLAC file")
    try:
        with sf.SoundFile(io.BytesIO(data) if data is not None else str(path)) as f:
            rate = int(f.samplerate)
            total = int(f.frames)
            wanted = min(total, int(max_seconds * rate))
            pcm = f.read(frames=wanted, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as exc:
        reason = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        raise PromptError(f"cannot read audio prompt {str(path)!r}: {reason} (WAV or FLAC expected)") from exc
    if rate <= 0:
        raise PromptError(f"audio prompt {str(path)!r} has an invalid sample rate {rate}")
    mono = pcm.astype(np.float64).mean(axis=1)
    mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    return mono, rate, total / rate
