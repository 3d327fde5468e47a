"""Audio files a style graph names (stingers, audio prompts): found, read and decoded at load.

One job: turn the ``audio:`` path written in a graph into checked bytes and,
for stingers, the float32 stereo PCM at 48 kHz the mixer plays (converted by
:func:`cadenza.runtime.audio.to_stereo_48k`),
so that nothing is ever read from disk inside the generation thread and a bad
file is a load error with the graph's file:line, not a crash at the first
trigger.

- The path is resolved against the graph's own folder (``base_dir``) when it
  is relative; with a :class:`~cadenza.runtime.files.FilePolicy` (a client's
  LoadGraph) it must lie inside the operator's allowed folders, without one
  (the operator's own command line) it is only resolved.
- Only regular files are read (a FIFO or ``/dev/zero`` is refused without
  blocking), at most :data:`MAX_AUDIO_BYTES`, through
  :func:`cadenza.runtime.files.read_bytes`.
- The bytes are decoded with libsndfile (soundfile) from memory; a stinger
  longer than :data:`MAX_STINGER_SECONDS` is refused (it is a one-shot, and
  the decoded audio stays in memory for the graph's life), and so are a
  graph's stinger files beyond :data:`MAX_STINGER_AUDIO_S` in all.

Errors are :class:`AudioFileError` with the reason only: the loader adds the
file:line and path. No message quotes a byte of the file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from cadenza.errors import CadenzaError
from cadenza.runtime.audio import SAMPLE_RATE, to_stereo_48k
from cadenza.runtime.files import FilePolicy, read_bytes, resolve_name

__all__ = ["MAX_AUDIO_BYTES", "MAX_STINGER_AUDIO_S", "MAX_STINGER_SECONDS", "AudioFileError", "check_audio_prompt",
           "decode_stinger", "read_audio"]

MAX_AUDIO_BYTES = 64 * 1024 * 1024  # a stinger or an audio prompt; a minute of 48 kHz stereo float is 23 MB
MAX_STINGER_SECONDS = 60.0
MAX_STINGER_AUDIO_S = 600.0  # all of one graph's stinger files together (110 MB decoded)
READ_TIMEOUT_S = 5.0


class AudioFileError(CadenzaError):
    """An audio file a graph names that cannot be used (missing, not a regular file, too big, not audio)."""


def read_audio(name: str, base_dir: str | os.PathLike[str] | None, files: FilePolicy | None) -> tuple[Path, bytes]:
    """The resolved path of ``name`` and its bytes; :class:`AudioFileError` when it may not or cannot be read."""
    try:
        if files is not None:
            return files.read(name, base_dir, where="audio", max_bytes=MAX_AUDIO_BYTES, timeout_s=READ_TIMEOUT_S)
        else:
            path = resolve_name(name, base_dir)
            limit, timeout = MAX_AUDIO_BYTES, READ_TIMEOUT_S
        return path, read_bytes(path, where="audio", max_bytes=limit, timeout_s=timeout)
    except CadenzaError as exc:
        raise AudioFileError(exc.message) from None


def _open(data: bytes, path: Path):
    import soundfile

    try:
        return soundfile.SoundFile(io.BytesIO(data))
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = getattr(exc, "error_string", None) or type(exc).__name__
        raise AudioFileError(f"{str(path)!r} is not an audio file libsndfile can decode ({reason}); give a WAV, "
                             "FLAC or OGG file") from None


def check_audio_prompt(data: bytes, path: Path) -> None:
    """Refuse bytes that are not decodable audio with at least one frame (the backend embeds the file later)."""
    import soundfile

    with _open(data, path) as f:
        if f.samplerate <= 0 or f.channels <= 0 or f.frames <= 0:
            raise AudioFileError(f"{str(path)!r} holds no audio (0 frames)")
        try:
            f.read(frames=min(f.frames, f.samplerate), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioFileError(f"cannot decode {str(path)!r}: {type(exc).__name__}") from None


def decode_stinger(data: bytes, path: Path) -> np.ndarray:
    """A stinger file's bytes as float32 stereo at 48 kHz (non-finite samples zeroed)."""
    import soundfile

    with _open(data, path) as f:
        rate, frames = int(f.samplerate), int(f.frames)
        if rate <= 0 or frames <= 0:
            raise AudioFileError(f"{str(path)!r} holds no audio (0 frames)")
        if frames / rate > MAX_STINGER_SECONDS:
            raise AudioFileError(f"{str(path)!r} is {frames / rate:.1f} s long; a stinger is at most "
                                 f"{MAX_STINGER_SECONDS:g} s (trim it, or play long audio as an audio prompt)")
        try:
            pcm = f.read(frames=frames, dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, ValueError) as exc:
            raise AudioFileError(f"cannot decode {str(path)!r}: {type(exc).__name__}") from None
    if pcm.shape[0] == 0:
        raise AudioFileError(f"{str(path)!r} holds no audio (0 frames)")
    return to_stereo_48k(pcm, rate)
