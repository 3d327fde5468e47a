"""The file sink: records 48 kHz stereo blocks into a WAV or FLAC file that stays readable whatever happens.

The format follows the extension (``.wav`` → WAV, ``.flac`` → FLAC, both
24-bit PCM). The file is written block by block, so a recording of any length
needs no more memory than one block. What keeps a recording readable:

**Past 4 GiB (WAV).** A RIFF/WAV header counts sizes in 32 bits, so a plain
WAV stops being readable past 4 GiB: 4 h 8 min of 48 kHz stereo 24-bit audio.
``.wav`` is therefore written as RF64 (EBU Tech 3306) with libsndfile's
``SFC_RF64_AUTO_DOWNGRADE``: while the file is under 4 GiB its header is an
ordinary RIFF/WAV header (``WAVE_FORMAT_EXTENSIBLE``, which is
what Microsoft's spec asks for above 16 bits, plus a 32-byte ``JUNK`` chunk
held in reserve); when it grows past 4 GiB, libsndfile rewrites the header in
place as RF64 (the ``ds64`` chunk with 64-bit sizes takes the reserved room),
with no pause and no copy. One session stays one file, readable by libsndfile
(soundfile), ffmpeg, sox and the DAWs. soundfile reports short files as
``WAVEX``, long ones as ``RF64``. Rotation instead (a file per hour) was
rejected as the default: it splits a session that tools can read whole, and
time-based rotation is available anyway through ``SIGHUP`` (below).

**Killed (SIGKILL, a crash).** What the process wrote survives it in the
page cache (not a power cut: nothing is fsync'ed per block).

- WAV: libsndfile rewrites the header after every block
  (``SFC_SET_UPDATE_HEADER_AUTO``), so the file always says how much audio it
  holds.
- FLAC: libFLAC writes the STREAMINFO total-samples field only at close; a
  killed file says 0 ("unknown"), which libsndfile reports as 2^63−1 frames and
  ``soundfile.read`` cannot allocate — and libsndfile writes even the header
  only with the first samples, so a file killed before then is empty. So a
  live FLAC file is created only once its first frame is at hand
  (:data:`FLAC_FIRST_FRAMES`, 85 ms; the blocks wait in memory), and header and
  first frame go out in one write. After each block the sink patches that
  36-bit field (``os.pwrite`` on its own descriptor; libsndfile's file offset is
  untouched) with a count of samples whose FLAC frames are surely on disk:
  libFLAC encodes a frame of ``blocksize`` samples once it holds
  ``blocksize + 1`` (one sample of look-ahead) and writes it at once, so
  ``(written − 1) // blocksize`` frames are out; the sink claims one frame
  fewer as a margin (but at least the first frame once it is out: a claim of
  0 would mean "unknown" again). Claiming more than is on disk would make
  ``soundfile.read`` fail at the end, so it never does. A killed FLAC loses at
  most two frames (2 × 4096 samples, 171 ms) and reads as ordinary FLAC (its MD5
  field stays zero: "not computed"). Killed in its first 85 ms (at start, or
  after a SIGHUP reopen) it leaves no file rather than an unreadable one: the
  file is created and its header and first frame written under a hidden name in
  the same folder (``.rec.flac.PID.part``), then published at ``path`` in one
  step (a hard link, then the hidden name is removed), so ``path`` never holds
  a half-made FLAC. A kill at that moment can leave a ``.rec.flac.*.part`` file
  beside the recording: it is never a recording of its own (at most the same
  audio as ``rec.flac``'s first 85 ms, or an empty or partial header), and the
  operator may delete it. What is left: the first 85 ms of a file a sink
  *resumes* into after a pause, or one found empty at ``path`` (logrotate's
  ``create``), which open at once (a resumed sink's first write is what tells
  whether the disk has room again): killed there, the file is empty or says
  "unknown". The field holds up to 2^36 samples (16.5
  days at 48 kHz; libFLAC writes 0, "unknown", past that): a FLAC recording
  that long goes on, block-exact, in the next numbered file (``rec.1.flac`` …),
  with a notice.

**Restarts (live sinks: ``retry_s`` set).** A live sink never truncates a
file. When ``path`` already holds something at start — the recording of the
run before a crash, a watchdog restart or a reboot under ``Restart=always`` —
that file is kept byte for byte and this run records into the next free
numbered file (``rec.1.wav`` …), with a notice (a ``warning`` event, and a
line on stderr). An *empty* file at ``path`` (logrotate's ``create``) is used,
keeping its owner and mode. A ``path`` that is a symlink is written through
(its target is the recording; the link stays a link). A ``path`` that is a
directory, FIFO or device is refused at start (:class:`AudioError`): a
recording goes into a regular file, and the sink never deletes what it did
not create. A render (``retry_s=None``) writes the file it is given (its own
temporary file, see :mod:`cadenza.runtime.render`) and replaces it.

**Disk full and other write failures (live sinks: ``retry_s`` set).** The sink
does not raise: it *pauses* — finalises the file it was writing (whatever
reached the disk stays readable), drops the blocks it is given, and every
``retry_s`` seconds tries again. The resumed audio goes into a new, numbered
file next to the first (``rec.wav`` → ``rec.1.wav``, ``rec.2.wav`` …; an
existing file is never overwritten), because a failed write can leave a torn
block at the end of the old file and FLAC cannot be appended to (a file that
got no frame at all is removed instead, and the sink retries at the same path).
A disk already full at start pauses the sink the same way (``paused at
start``), for failures that are about the disk's state —
:data:`TRANSIENT_ERRNOS`: no space (``ENOSPC``), quota (``EDQUOT``), an I/O
error (``EIO``), a file system remounted read-only (``EROFS``): the music
matters more than the recording, and these can heal. A path that cannot work
(no such folder, a directory, permission denied) is an :class:`AudioError` at
start instead: ``cadenza serve`` exits 2 saying which. A render
(``retry_s=None``) raises :class:`AudioError` on any failure: nothing to wait
for.

**Reopen (logrotate's convention).** :meth:`request_reopen` — ``cadenza serve``
calls it on ``SIGHUP`` — makes the next block finalise the current file and
start a new one at ``path``, block-exact (no audio lost or doubled between the
two files). The sink never truncates a file: when ``path`` still *is* the
file being written (nobody moved it away), recording goes on in it; when
``path`` holds an earlier file of this sink or anything else, the new file is
the next numbered one (after a restart into ``rec.1.wav``, ``rec.wav`` being
the run before's, a SIGHUP with nothing renamed changes nothing either). A
new file opened over an empty one that logrotate's ``create`` left at
``path`` keeps that file's owner and mode.

What happens is told through :attr:`notices` (paused, resumed, reopened, continues),
which the live engine publishes as ``warning`` events; :attr:`fault` says why
the sink is paused (``Status.sink_faults``) and is ``None`` while it records.

soundfile/libsndfile and OS errors are translated here, once: a bad extension
is a :class:`UsageError`, anything the file system refuses is an
:class:`AudioError` naming the path and the OS reason.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from cadenza.errors import AudioError, CadenzaError, UsageError
from cadenza.runtime.audio import CHANNELS, SAMPLE_RATE, as_block
from cadenza.runtime.sinks.base import SinkNotice

log = logging.getLogger(__name__)

#: extension → (libsndfile major format, subtype)
FORMATS: dict[str, tuple[str, str]] = {
    ".wav": ("RF64", "PCM_24"),  # a plain RIFF/WAV header below 4 GiB (SFC_RF64_AUTO_DOWNGRADE), RF64 above
    ".flac": ("FLAC", "PCM_24"),
}

# libsndfile commands (sndfile.h); soundfile's cffi bindings do not name them,
# but sf_command takes the plain integers.
_SFC_SET_UPDATE_HEADER_AUTO = 0x1061
_SFC_RF64_AUTO_DOWNGRADE = 0x1210

# FLAC STREAMINFO (the first metadata block, right after "fLaC"): block sizes at
# bytes 8–11; bytes 18–25 pack sample rate (20 bits), channels−1 (3), bits−1 (5)
# and the total samples (36 bits).
_FLAC_INFO_AT = 18
_FLAC_TOTAL_BITS = 36

DEFAULT_RETRY_S = 1.0
#: a live FLAC file is created only once this many frames are at hand: libFLAC then writes its header and first
#: frame in the same call, and the sink claims that frame in STREAMINFO at once (see "Killed" above)
FLAC_FIRST_FRAMES = 4096 + 1
#: write failures that are about the disk's state, not the path: a live sink pauses on them, at start too
TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})
#: the most frames one FLAC file gets (STREAMINFO counts 36 bits), less a margin; then a numbered file follows
FLAC_MAX_FRAMES = (1 << _FLAC_TOTAL_BITS) - (1 << 20)


class _Occupied(CadenzaError):
    """A live sink found a file with something in it at the path it was to open: it must not truncate it."""


def _os_errno() -> int:
    """libsndfile's last C ``errno`` on this thread (0 when there is none)."""
    try:
        return int(getattr(soundfile, "_ffi").errno)  # noqa: B009 - soundfile's cffi handle, private
    except (AttributeError, TypeError, ValueError):
        return 0


class FileAudioError(AudioError):
    """An AudioError that remembers the OS ``errno`` behind it (0: none), so a live sink can tell a full disk
    (pause and retry) from a bad path (refuse at start)."""

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


def _file_error(message: str, err: int) -> FileAudioError:
    return FileAudioError(message, err)


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _os_reason() -> str:
    """The OS reason (errno) of libsndfile's last failed call on this thread, e.g. "No space left on device".

    libsndfile reports a failed ``write()`` only as "System error."; the C
    ``errno`` it left behind says which. Empty when there is none.
    """
    err = _os_errno()
    return f"{os.strerror(err)} (errno {err})" if err else ""


def _valid_extensions() -> str:
    return ", ".join(FORMATS)


def audio_format(path: str | os.PathLike[str]) -> tuple[str, str]:
    """The (libsndfile format, subtype) the extension of ``path`` asks for; UsageError naming it otherwise."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        got = f"extension {ext!r}" if ext else "no extension"
        raise UsageError(f"cannot write audio file {str(path)!r}: {got}; use one of {_valid_extensions()}")
    return FORMATS[ext]


def numbered(path: Path, n: int) -> Path:
    """``rec.wav`` → ``rec.1.wav``: where a paused sink records after it resumes."""
    return path.with_name(f"{path.stem}.{n}{path.suffix}")


def _temp_file(path: Path) -> tuple[int, Path]:
    """Create, exclusively, a hidden file beside ``path`` (``.rec.flac.PID.part``); its descriptor and name."""
    base = path.name if len(os.fsencode(path.name)) <= 200 else "recording"
    n = 0
    while True:
        temp = path.with_name(f".{base}.{os.getpid()}{f'.{n}' if n else ''}.part")
        try:
            return os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), temp
        except FileExistsError:  # a leftover of a killed run (or another sink's, at this instant)
            n += 1
            if n > 1000:
                raise


def _sf_command(f: soundfile.SoundFile, command: int, value: bool) -> bool:
    """A libsndfile ``sf_command`` with a boolean argument, through soundfile's private handle.

    False when soundfile hides it (a future version): the file is then still
    correct after ``close()``, only not after a crash.
    """
    try:
        lib = getattr(soundfile, "_snd")  # noqa: B009 - private, may vanish
        ffi = getattr(soundfile, "_ffi")  # noqa: B009
        return bool(lib.sf_command(f._file, command, ffi.NULL, lib.SF_TRUE if value else lib.SF_FALSE))
    except AttributeError:
        return False


class FileSink:
    """Writes blocks to ``path`` as they come; ``close()`` finalises the file.

    ``retry_s=None`` (a render): a failed write raises :class:`AudioError`.
    ``retry_s`` set (a live sink): a failed write pauses the sink, which retries
    every ``retry_s`` seconds and resumes into a numbered file (see the module
    docstring); ``name`` is what its notices call it (the ``--sink`` spec).
    ``exclusive`` refuses to open a file that exists already.

    Samples outside [-1, 1] are clipped by libsndfile; NaN and infinities are
    written as silence / full scale (and counted in ``nonfinite_samples``)
    rather than as whatever garbage the integer conversion would make of them.
    """

    def __init__(self, path: str | os.PathLike[str], *, retry_s: float | None = None, name: str | None = None,
                 exclusive: bool = False) -> None:
        self.path = Path(path)
        self.format, self.subtype = audio_format(self.path)
        #: a file longer than this goes on in the next numbered file (FLAC's 36-bit sample count; RF64 has none)
        self.max_file_frames = FLAC_MAX_FRAMES if self.format == "FLAC" else 1 << 62
        if retry_s is not None and not retry_s > 0:
            raise UsageError(f"FileSink retry_s must be > 0 seconds or None, got {retry_s!r}")
        self.retry_s = retry_s
        self.name = name or f"file:{self.path}"
        self.frames_written = 0  # into all of this sink's files
        self.frames_dropped = 0  # given while paused
        self.nonfinite_samples = 0
        self.notices: collections.deque[SinkNotice] = collections.deque()
        self.fault: str | None = None  # why the sink is paused; None while it records
        self.files: list[Path] = []  # every file this sink has started, in order
        self._written: set[tuple[int, int] | None] = set()  # (device, inode) of each: never truncated
        self.current: Path | None = None  # the file being written (None while paused or closed)
        self._closed = False
        self._reopen = False
        self._next = self.path  # where a paused sink resumes
        self._retry_at = 0.0
        self._paused_frames = 0
        self._file_frames = 0  # frames in the current file
        self._flac_info: bytes | None = None  # STREAMINFO bytes 18–25 as libFLAC wrote them
        self._flac_block = 0
        self._flac_claim = -1
        self._file: soundfile.SoundFile | None = None
        self._fd = -1
        self._created = False  # whether this sink created the current file (else: found it empty, or a render's)
        self._hold: list[np.ndarray] | None = None  # a live FLAC's first frames, before its file exists
        self._held = 0
        self._hold_exclusive = False
        if retry_s is None:
            self._start(self.path, exclusive=exclusive)
            return
        try:  # a live sink: never truncates a file, pauses (at start too) on a full disk
            target = self._start_live(self.path)
        except AudioError as exc:
            if getattr(exc, "errno", 0) not in TRANSIENT_ERRNOS:
                raise  # a bad path: the caller says so and stops (exit 2 at start)
            self.fault, self._next = exc.message, self.path
            self._retry_at = time.monotonic() + float(retry_s)
            self._notify(f"sink {self.name} paused at start: {exc.message}; the music plays on; the sink retries "
                         f"every {retry_s:g} s and records into '{self.path}' once it can", exc.message)
            return
        if target != self.path:
            self._notify(f"sink {self.name}: '{self.path}' holds an earlier recording ({self._describe(self.path)}); "
                         f"it is kept as it is, and this run records into '{target}'", None, loud=True)

    # ------------------------------------------------------------ opening and finishing files
    def _check_kind(self, path: Path) -> None:
        """AudioError for a path that exists but is no regular file (a directory, FIFO, device …)."""
        try:
            st = os.stat(path)
        except OSError:
            return  # absent (or unreadable): the open says what is wrong
        if stat.S_ISDIR(st.st_mode):
            is_dir = IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
            raise _file_error(f"cannot write audio file {str(path)!r}: {is_dir.strerror}; give a file path, e.g. "
                              f"{str(path / ('session' + self.path.suffix))!r}", errno.EISDIR) from is_dir
        if not stat.S_ISREG(st.st_mode):
            odd = OSError(errno.EINVAL, f"{_kind_of(st.st_mode)}, not a regular file", str(path))
            raise _file_error(f"cannot write audio file {str(path)!r}: it is {odd.strerror}; a recording goes into "
                              "a file of its own: give a regular file path", errno.EINVAL) from odd

    def _start_live(self, path: Path, *, hold: bool = True) -> Path:
        """Open ``path`` for a live sink without truncating anything: a missing or empty file is used (through a
        symlink too); one that holds something is kept and the next free numbered file is used instead.
        Returns the path actually started."""
        try:
            self._start(path, exclusive=False, hold=hold)
            return path
        except _Occupied:
            pass
        target = self._free_numbered()
        self._start(target, exclusive=True, hold=hold)
        return target

    def _start(self, path: Path, *, exclusive: bool, hold: bool = True) -> None:
        """Make ``path`` the current file; raises AudioError naming the path and the OS reason, or, for a live
        sink not ``exclusive``, :class:`_Occupied` when ``path`` holds a non-empty file.

        A live FLAC file is created only once its first frame can be written with its header (the frames wait in
        ``_hold``): a SIGKILL before that leaves no file rather than an empty, unreadable one. Until then the
        path is only checked (created and removed again when it does not exist). A sink resuming after a pause
        (``hold=False``) opens at once: its first write is what tells whether the disk has room again."""
        if hold and self.retry_s is not None and self.format == "FLAC":
            self._claim(path, exclusive=exclusive)
            self._hold, self._held, self._hold_exclusive = [], 0, exclusive
            self.current = path
            self._file_frames = 0
            self._flac_info, self._flac_block, self._flac_claim = None, 0, -1
            self.files.append(path)
            return
        self._open(path, exclusive=exclusive)
        self.files.append(path)

    def _claim(self, path: Path, *, exclusive: bool) -> None:
        """The checks :meth:`_open` would make, leaving the file system as it was (a held FLAC)."""
        if not exclusive:
            self._check_kind(path)
        try:
            if os.path.exists(path):
                if exclusive:
                    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))
                if os.stat(path).st_size > 0:
                    raise _Occupied(str(path))
                os.close(os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0)))
                return
            if os.path.lexists(path):  # a dangling symlink: written through (its target is created)
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666))
                return
            fd, probe = _temp_file(path)  # never at PATH itself: a kill here must not leave an empty file there
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise _file_error(f"cannot write audio file {str(path)!r}: {reason}", exc.errno or 0) from exc

    def _open(self, path: Path, *, exclusive: bool) -> None:
        """Open ``path`` with libsndfile and make it the file being written."""
        # Opening the descriptor ourselves gives the OS reason (errno) for a
        # refused path, which libsndfile would report only as "System error".
        live = self.retry_s is not None
        keep = 0 if live else os.O_TRUNC  # a live sink never truncates; a render's own file may be replaced
        flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if exclusive else keep)  # RDWR: FLAC patching reads
        if not exclusive:
            self._check_kind(path)
        existed = os.path.lexists(path)
        try:
            fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise _file_error(f"cannot write audio file {str(path)!r}: {reason}", exc.errno or 0) from exc
        if live and not exclusive and os.fstat(fd).st_size > 0:
            os.close(fd)
            raise _Occupied(str(path))
        self._open_fd(fd, path, at=path, existed=existed)

    def _open_fd(self, fd: int, path: Path, *, at: Path, existed: bool) -> None:
        """Wrap descriptor ``fd`` (the file at ``at``; ``path`` is the name it is written for) with libsndfile and
        make it the file being written; on failure close ``fd``, remove the file if this sink created it."""
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
            err = _os_errno()
            reason = _os_reason() or str(exc)
            st = os.fstat(fd)
            os.close(fd)
            if not existed and self._identity(at) == (st.st_dev, st.st_ino):
                at.unlink(missing_ok=True)  # only a file this call created, never a symlink or a file it found
            raise _file_error(
                f"cannot write audio file {str(path)!r} as {self.format}/{self.subtype}: {reason}", err
            ) from exc
        if self.format == "RF64":
            _sf_command(f, _SFC_RF64_AUTO_DOWNGRADE, True)
            _sf_command(f, _SFC_SET_UPDATE_HEADER_AUTO, True)
        self._file, self._fd, self.current = f, fd, path
        self._created = not existed
        st = os.fstat(fd)
        self._written.add((st.st_dev, st.st_ino))
        self._file_frames = 0
        self._flac_info, self._flac_block, self._flac_claim = None, 0, -1

    def _open_held(self) -> None:
        """A held FLAC has its first frame at hand: create the file and write what waited (block-exact).

        A new file is made under a hidden name in the same folder and published at its path only once header and
        first frame are written (a hard link: it fails rather than replace anything there), so a kill never leaves
        a half-made FLAC at the path (see the module docstring). A file found at the path (an empty one, a
        symlink) is written in place, as before."""
        assert self._hold is not None and self.current is not None
        data = np.concatenate(self._hold) if len(self._hold) > 1 else self._hold[0]
        path, exclusive = self.current, self._hold_exclusive
        self._hold, self._held = None, 0
        if not exclusive and os.path.lexists(path):
            try:
                self._open(path, exclusive=False)
            except _Occupied:  # something was written there meanwhile: keep it, go on in a numbered file
                self._occupied(path)
            self._write_current(data)
            return
        try:
            fd, temp = _temp_file(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise _file_error(f"cannot write audio file {str(path)!r}: {reason}", exc.errno or 0) from exc
        try:
            self._open_fd(fd, path, at=temp, existed=False)  # (closes fd and removes temp when it fails)
            self._write_current(data)
            target = self._publish(temp, path)
        except BaseException:
            self._discard(temp)
            raise
        if target != path:
            self._occupied(path, target)

    def _occupied(self, path: Path, target: Path | None = None) -> None:
        """``path`` was written by someone else between the check and the open: keep it, record into a numbered
        file (``target`` when it is already made, else opened now), with a notice."""
        if target is None:
            target = self._free_numbered()
            self._open(target, exclusive=True)
        self.current = target
        self.files[-1] = target
        self._notify(f"sink {self.name}: '{path}' was written by someone else meanwhile; it is kept, and "
                     f"recording goes into '{target}'", None, loud=True)

    def _publish(self, temp: Path, path: Path) -> Path:
        """Give the open file at ``temp`` its name ``path`` (or the next free numbered one when something is at
        ``path`` now), remove ``temp``, and point the descriptor at the new name; returns the name given."""
        target = path
        while True:
            try:
                try:
                    os.link(temp, target)
                    os.unlink(temp)
                except FileExistsError:
                    target = self._free_numbered()
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                        raise
                    # no hard links here (FAT, some network file systems): a rename, after a check
                    if os.path.lexists(target):
                        target = self._free_numbered()
                        continue
                    os.rename(temp, target)
                break
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise _file_error(f"cannot write audio file {str(target)!r}: {reason}", exc.errno or 0) from exc
        self.current = target
        # the descriptor still names the hidden file (now removed): give it the published name, so that what
        # reads /proc/self/fd (the reopen notice) follows the recording; same inode, same offset
        mine = os.fstat(self._fd)
        try:
            fd = os.open(target, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return target
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                os.lseek(fd, os.lseek(self._fd, 0, os.SEEK_CUR), os.SEEK_SET)
                os.dup2(fd, self._fd, inheritable=False)
        finally:
            os.close(fd)
        return target

    def _discard(self, temp: Path) -> None:
        """A hidden file that could not be made or published: close it, remove it, record nothing there."""
        f, fd = self._file, self._fd
        self._file, self._fd = None, -1
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            temp.unlink()

    def _describe(self, path: Path) -> str:
        """"2.3 s" (or "123 bytes" when it does not read as audio): what an existing file holds."""
        try:
            return f"{soundfile.info(str(path)).frames / SAMPLE_RATE:.1f} s"
        except Exception:  # noqa: BLE001 - any file may be there
            with contextlib.suppress(OSError):
                return f"{os.stat(path).st_size:,} bytes"
            return "unreadable"

    def _finish(self) -> str:
        """Finalise and close the current file; the reason it could not be finalised cleanly, or ""."""
        problem = ""
        if self._hold is not None:  # a held FLAC: what waited gets its file now (none if nothing came)
            if self._held:
                try:
                    self._open_held()
                except (AudioError, _Occupied) as exc:
                    self.frames_dropped += self._held
                    problem = getattr(exc, "message", str(exc))
            else:
                self._hold = None
                if self.files and self.files[-1] == self.current:
                    self.files.pop()
        f, fd = self._file, self._fd
        self._file, self._fd, self.current = None, -1, None
        if f is None:
            return problem
        try:
            f.close()
        except (soundfile.SoundFileError, OSError, AssertionError) as exc:
            problem = getattr(exc, "strerror", None) or _os_reason() or str(exc) or "close failed"
        try:
            os.close(fd)
        except OSError as exc:
            problem = problem or exc.strerror or str(exc)
        return problem

    def _patch_flac_length(self) -> None:
        """Write into STREAMINFO how many samples are surely on disk (crash safety; see the module docstring)."""
        if self._flac_info is None:
            try:
                head = os.pread(self._fd, _FLAC_INFO_AT + 8, 0)
            except OSError:
                return
            if len(head) < _FLAC_INFO_AT + 8 or head[:4] != b"fLaC" or head[4] & 0x7F != 0 or head[8:10] != head[10:12]:
                return  # no header yet, or one we do not know (variable block size …): patch nothing
            self._flac_block = int.from_bytes(head[10:12], "big")  # the maximum block size
            self._flac_info = head[_FLAC_INFO_AT:]
        if self._flac_block <= 0:
            return
        out = (self._file_frames - 1) // self._flac_block  # whole FLAC frames libFLAC has written
        done = out - 1 if out >= 2 else out  # less one frame of margin, but never claim 0 (it means "unknown")
        claim = min(done * self._flac_block, (1 << _FLAC_TOTAL_BITS) - 1)
        if claim <= 0 or claim == self._flac_claim:
            return
        packed = int.from_bytes(self._flac_info, "big")
        packed = (packed >> _FLAC_TOTAL_BITS << _FLAC_TOTAL_BITS) | claim
        try:
            os.pwrite(self._fd, packed.to_bytes(8, "big"), _FLAC_INFO_AT)
        except OSError:
            return  # the write below it will say what is wrong with the disk
        self._flac_claim = claim

    # ------------------------------------------------------------ state
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def paused(self) -> bool:
        """True while a write failure keeps the sink from recording (it retries every ``retry_s``)."""
        return self.fault is not None

    def request_reopen(self) -> None:
        """Finalise the file and start a new one at ``path`` before the next block (after a logrotate rename).

        Only sets a flag, so any thread or a signal handler may call it; the
        writing thread does the work at its next :meth:`write`.
        """
        self._reopen = True

    # ------------------------------------------------------------ writing
    def write(self, block: np.ndarray) -> None:
        """Append one ``(frames, 2)`` float32 block to the file (or drop it while paused)."""
        if self._closed:
            raise UsageError(f"FileSink.write() after close() ({str(self.path)!r})")
        arr = as_block(block, "FileSink")
        finite = np.isfinite(arr)
        if not finite.all():
            self.nonfinite_samples += int(arr.size - np.count_nonzero(finite))
            arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=-1.0)
        if self._reopen:
            self._reopen = False
            self._do_reopen()
        if self._file is not None and self._file_frames + arr.shape[0] > self.max_file_frames:
            self._switch(self._free_numbered(), "continues in '{new}': a FLAC file counts at most 2^36 samples "
                                                "(16.5 days at 48 kHz); '{old}' is finalised with {seconds:.1f} s")
        if self._file is None and self._hold is None:
            self._resume(arr)
            return
        try:
            self._put(arr)
        except AudioError as exc:
            if self.retry_s is None:
                raise
            self._pause(exc.message)

    def _put(self, arr: np.ndarray) -> None:
        """Write ``arr`` into the current file, or hold it while a live FLAC waits for its first frame."""
        if self._hold is None:
            self._write_current(arr)
            return
        self._hold.append(arr.copy())
        self._held += arr.shape[0]
        if self._held >= FLAC_FIRST_FRAMES:
            self._open_held()

    def _write_current(self, arr: np.ndarray) -> None:
        assert self._file is not None
        try:
            self._file.write(arr)
        except (soundfile.SoundFileError, OSError, AssertionError) as exc:
            # soundfile asserts that every frame was written (disk full …)
            reason = _os_reason() or getattr(exc, "strerror", None) or str(exc) or "short write"
            raise AudioError(f"cannot write audio file {str(self.current)!r}: {reason}") from exc
        self.frames_written += arr.shape[0]
        self._file_frames += arr.shape[0]
        if self.format == "FLAC":
            self._patch_flac_length()

    def _pause(self, reason: str) -> None:
        """A write failed: finalise what reached the disk, say so, and retry every ``retry_s``."""
        old, seconds = self.current, self._file_frames / SAMPLE_RATE
        blank = None  # a file that got no frame at all: (its identity, whether this sink created it)
        if self._file is not None and self._file_frames == 0:
            st = os.fstat(self._fd)
            blank = ((st.st_dev, st.st_ino), self._created)
        problem = self._finish()
        if blank is not None and old is not None and self._identity(old) == blank[0]:
            # nothing of value, maybe a torn header: gone if it was ours, empty again if it was found empty
            with contextlib.suppress(OSError):
                if blank[1]:
                    old.unlink()
                else:
                    os.truncate(old, 0)
            problem = ""
        with contextlib.suppress(Exception):  # what it holds (a failed write may have added part of a block)
            seconds = soundfile.info(str(old)).frames / SAMPLE_RATE
        self.fault = reason
        self._paused_frames = 0
        self._retry_at = time.monotonic() + float(self.retry_s or DEFAULT_RETRY_S)
        if old is not None and (not os.path.lexists(old) or blank is not None):  # nothing written: retry it
            if self.files and self.files[-1] == old:
                self.files.pop()
            self._next = old
            kept = f"nothing was written to '{old}'"
        else:
            self._next = self._free_numbered()
            kept = (f"'{old}' keeps its {seconds:.1f} s" if not problem
                    else f"'{old}' keeps what reached the disk of its {seconds:.1f} s ({problem})")
        self._notify(f"sink {self.name} paused: {reason}; {kept}; the sink retries every {self.retry_s:g} s "
                     f"and records into '{self._next}' once it can", reason)

    def _free_numbered(self) -> Path:
        n = 1
        while True:
            candidate = numbered(self.path, n)
            if candidate not in self.files and not os.path.lexists(candidate):
                return candidate
            n += 1

    def _resume(self, arr: np.ndarray) -> None:
        """Paused: drop ``arr`` unless it is time to retry and the next file opens and takes it."""
        now = time.monotonic()
        if now < self._retry_at:
            self._drop(arr)
            return
        self._retry_at = now + float(self.retry_s or DEFAULT_RETRY_S)
        target = self._next
        try:
            if target == self.path and self._identity(target) not in self._written:
                # never truncates: numbered when PATH holds a file
                target = self._next = self._start_live(target, hold=False)
            else:
                if target == self.path or target in self.files or os.path.lexists(target):
                    target = self._next = self._free_numbered()
                self._start(target, exclusive=True, hold=False)
            self._put(arr)
        except AudioError as exc:
            self._hold = None
            if self._file is not None:  # opened but could not write: leave no file behind (or the empty one found)
                created, blank = self._created, self._identity(target)
                self._finish()
                if self._identity(target) == blank:
                    with contextlib.suppress(OSError):
                        target.unlink() if created else os.truncate(target, 0)
            if self.files and self.files[-1] == target:
                self.files.pop()
            self.current = None
            self.fault = exc.message
            self._drop(arr)
            return
        lost = self._paused_frames / SAMPLE_RATE
        self.fault = None
        self._notify(f"sink {self.name} resumed: recording into '{target}' ({lost:.1f} s were not recorded "
                     "while it was paused)", None)

    def _drop(self, arr: np.ndarray) -> None:
        self.frames_dropped += arr.shape[0]
        self._paused_frames += arr.shape[0]

    def _identity(self, path: Path) -> tuple[int, int] | None:
        """(device, inode) of the file at ``path``, or None when there is none."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _do_reopen(self) -> None:
        """SIGHUP: finalise the current file and start a new one at ``path``.

        The sink never truncates a file it wrote: when ``path`` is still the
        current file (nobody moved it), recording goes on in it; when it holds
        an earlier file of this sink, the new file is the next numbered one.
        """
        if self._hold is not None:  # a FLAC whose first frame is still to come: nothing on disk to rotate
            self._notify(f"sink {self.name}: asked to reopen, but '{self.current}' was not moved away (its first "
                         "frame is still to be written); recording goes on in it", None)
            return
        at_path = self._identity(self.path)
        if self._file is not None:
            mine = os.fstat(self._fd)
            here = self._identity(self.current) if self.current is not None else None
            unmoved = here == (mine.st_dev, mine.st_ino) and at_path is not None and self._size(self.path) > 0
            if at_path == (mine.st_dev, mine.st_ino) or unmoved:  # (a numbered file beside a kept one: unmoved)
                self._notify(f"sink {self.name}: asked to reopen, but '{self.current}' was not moved away; "
                             "recording goes on in it (rename the file first, then send SIGHUP)", None)
                return
        target = self._free_numbered() if at_path in self._written else self.path
        if self._file is None:  # paused: retry now, into target
            self._next, self._retry_at = target, 0.0
            return
        try:
            now_at = os.readlink(f"/proc/self/fd/{self._fd}").removesuffix(" (deleted)")
        except OSError:
            now_at = "where it was moved"
        self._switch(target, "reopened: the previous file (now '{old}') is finalised with {seconds:.1f} s; "
                             "recording goes on in '{new}'", old=now_at)

    def _switch(self, target: Path, said: str, *, old: str | None = None) -> None:
        """Finalise the current file and go on in ``target``, block-exact; a notice ``said`` (a template of
        ``old``, ``new`` and ``seconds``) says so. When ``target`` cannot be opened the sink pauses (or raises,
        for a render)."""
        old = old or str(self.current)
        seconds = self._file_frames / SAMPLE_RATE
        problem = self._finish()
        finished = said.format(old=old, new=target, seconds=seconds) + (
            f" (it could not be closed cleanly: {problem})" if problem else "")
        try:
            if target == self.path and self.retry_s is not None:
                target = self._start_live(target)  # a file someone left at PATH is kept: numbered instead
                finished = said.format(old=old, new=target, seconds=seconds) + (
                    f" (it could not be closed cleanly: {problem})" if problem else "")
            else:
                self._start(target, exclusive=target != self.path)
        except AudioError as exc:
            if self.retry_s is None:
                raise
            self.fault = exc.message
            self._next, self._paused_frames = target, 0
            self._retry_at = time.monotonic() + self.retry_s
            self._notify(f"sink {self.name} paused: {self.fault}; it was to go on after this: {finished}; "
                         f"the sink retries every {self.retry_s:g} s", self.fault)
            return
        self._notify(f"sink {self.name} {finished}", None)

    def _size(self, path: Path) -> int:
        try:
            return os.stat(path).st_size
        except OSError:
            return 0

    def _notify(self, message: str, fault: str | None, *, loud: bool = False) -> None:
        (log.warning if fault or loud else log.info)("%s", message)
        self.notices.append(SinkNotice(message, fault))

    def close(self) -> None:
        """Finalise the header and close the file; idempotent."""
        if self._closed:
            return
        self._closed = True
        path = self.current
        problem = self._finish()
        if problem:
            raise AudioError(f"cannot finish audio file {str(path)!r}: {problem}")

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("paused" if self.paused else "open")
        return f"FileSink({str(self.path)!r}, {self.format}/{self.subtype}, {self.frames_written} frames, {state})"


__all__ = ["DEFAULT_RETRY_S", "FORMATS", "FileSink", "SinkNotice", "audio_format", "numbered"]
