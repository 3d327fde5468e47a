"""The file sink: streams 48 kHz stereo blocks into a WAV or FLAC file.

The format follows the extension (``.wav`` → WAV PCM 24-bit, ``.flac`` → FLAC
24-bit). The file is opened once and written block by block, so a render of
any length needs no more memory than one block. A WAV file's header is
rewritten after every block, so a process that dies between blocks leaves a
playable file holding everything written so far; a FLAC file written that way
is still decodable but its header lacks the total length until ``close()``.

soundfile/libsndfile and OS errors are translated here, once: a bad extension
is a :class:`UsageError`, anything the file system refuses is an
:class:`AudioError` naming the path and the OS reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile

from cadenza.errors import AudioError, UsageError
from cadenza.runtime.backends.base import CHANNELS, SAMPLE_RATE
from cadenza.runtime.sinks.null import as_block

#: extension → (libsndfile major format, subtype)
FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("WAV", "PCM_24"),
    ".flac": ("FLAC", "PCM_24"),
}

# libsndfile's SFC_SET_UPDATE_HEADER_AUTO (sndfile.h); soundfile's cffi
# bindings do not name it, but sf_command takes the plain integer.
_SFC_SET_UPDATE_HEADER_AUTO = 0x1061


def _os_reason() -> str:
    """The OS reason (errno) of libsndfile's last failed call on this thread, e.g. "No space left on device".

    libsndfile reports a failed ``write()`` only as "System error."; the C
    ``errno`` it left behind says which. Empty when there is none.
    """
    try:
        err = int(getattr(soundfile, "_ffi").errno)  # noqa: B009 - soundfile's cffi handle, private
    except (AttributeError, TypeError, ValueError):
        return ""
    return f"{os.strerror(err)} (errno {err})" if err else ""


def _valid_extensions() -> str:
    return ", ".join(FORMATS)


class FileSink:
    """Writes blocks to ``path`` as they come; ``close()`` finalises the file.

    Samples outside [-1, 1] are clipped by libsndfile; NaN and infinities are
    written as silence / full scale (and counted in ``nonfinite_samples``)
    rather than as whatever garbage the integer conversion would make of them.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in FORMATS:
            got = f"extension {ext!r}" if ext else "no extension"
            raise UsageError(
                f"cannot write audio file {str(self.path)!r}: {got}; "
                f"use one of {_valid_extensions()}"
            )
        self.format, self.subtype = FORMATS[ext]
        self.frames_written = 0
        self.nonfinite_samples = 0
        self._file = self._open()

    def _open(self) -> soundfile.SoundFile:
        # Opening the descriptor ourselves gives the OS reason (errno) for a
        # refused path, which libsndfile would report only as "System error".
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise AudioError(f"cannot write audio file {str(self.path)!r}: {reason}") from exc
        try:
            f = soundfile.SoundFile(
                fd,
                mode="w",
                samplerate=SAMPLE_RATE,
                channels=CHANNELS,
                format=self.format,
                subtype=self.subtype,
                closefd=False,
            )
        except (soundfile.SoundFileError, OSError, ValueError, TypeError) as exc:
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise AudioError(
                f"cannot write audio file {str(self.path)!r} as {self.format}/{self.subtype}: {exc}"
            ) from exc
        self._fd = fd
        if self.format == "WAV":
            self._auto_update_header(f)
        return f

    @staticmethod
    def _auto_update_header(f: soundfile.SoundFile) -> None:
        """Ask libsndfile to rewrite the header after each write (crash safety).

        Uses soundfile's private handle; if a future soundfile hides it, the
        file is still correct after ``close()``, only not after a crash.
        """
        try:
            lib = getattr(soundfile, "_snd")  # noqa: B009 - private, may vanish
            ffi = getattr(soundfile, "_ffi")  # noqa: B009
            lib.sf_command(f._file, _SFC_SET_UPDATE_HEADER_AUTO, ffi.NULL, lib.SF_TRUE)
        except AttributeError:
            pass

    @property
    def closed(self) -> bool:
        return bool(self._file.closed)

    def write(self, block: np.ndarray) -> None:
        """Append one ``(frames, 2)`` float32 block to the file."""
        if self._file.closed:
            raise UsageError(f"FileSink.write() after close() ({str(self.path)!r})")
        arr = as_block(block, "FileSink")
        finite = np.isfinite(arr)
        if not finite.all():
            self.nonfinite_samples += int(arr.size - np.count_nonzero(finite))
            arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=-1.0)
        try:
            self._file.write(arr)
        except (soundfile.SoundFileError, OSError, AssertionError) as exc:
            # soundfile asserts that every frame was written (disk full …)
            reason = _os_reason() or getattr(exc, "strerror", None) or str(exc) or "short write"
            raise AudioError(f"cannot write audio file {str(self.path)!r}: {reason}") from exc
        self.frames_written += arr.shape[0]

    def close(self) -> None:
        """Finalise the header and close the file; idempotent."""
        if self._file.closed:
            return
        try:
            try:
                self._file.close()
            finally:
                os.close(self._fd)
        except (soundfile.SoundFileError, OSError) as exc:
            reason = getattr(exc, "strerror", None) or _os_reason() or str(exc)
            raise AudioError(f"cannot finish audio file {str(self.path)!r}: {reason}") from exc

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"FileSink({str(self.path)!r}, {self.format}/{self.subtype}, {self.frames_written} frames, {state})"
