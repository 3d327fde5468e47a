"""Files a client names: confined to the folders the operator allows, read with bounds.

A client of the runtime (LoadGraph.path, an audio prompt in SetPrompts, an
audio file a graph names) is trusted to play music, not to read the host.
Every such path goes through one :class:`FilePolicy`:

- the name is joined to the base folder it is relative to (the graph's own
  folder), made absolute, and every symlink and ``..`` is resolved *before*
  anything is checked, so a link or ``../../etc/passwd`` cannot step out;
- the resolved path must lie inside one of the allowed folders
  (``cadenza serve --allow-dir``; by default the folders of the graphs given on
  the command line); outside them the refusal is the same words whether the
  file exists or not, so a client learns nothing about the rest of the disk;
- only regular files are read (a FIFO, a device such as ``/dev/zero`` or a
  folder is refused without blocking: the file is opened non-blocking and
  checked with ``fstat`` on the open descriptor), at most ``max_bytes``, within
  ``timeout_s``.

No error raised here quotes a byte of any file's contents. The operator's own
command line (``serve --graph``, ``render``) is trusted and passes ``None`` as
the policy: paths are then resolved the same way but not confined.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cadenza.errors import UsageError

MAX_FILE_BYTES = 256 * 1024 * 1024  # an audio file a client names (10 min of 48 kHz stereo float32 is 230 MB)
READ_TIMEOUT_S = 5.0
_CHUNK = 1 << 20


class FileRefused(UsageError):
    """A client named a file it may not read (outside the allowed folders, not a regular file, too big)."""


def resolve_name(name: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None) -> Path:
    """``name`` joined to ``base_dir`` when relative, absolute, with symlinks and ``..`` resolved."""
    p = Path(os.fspath(name)).expanduser() if str(name).startswith("~") else Path(os.fspath(name))
    if not p.is_absolute() and base_dir is not None:
        p = Path(os.fspath(base_dir)) / p
    return Path(os.path.realpath(p))


@dataclass(frozen=True)
class FilePolicy:
    """Which folders client-named files may come from, and how much of a file may be read."""

    allowed: tuple[Path, ...] = ()
    max_bytes: int = MAX_FILE_BYTES
    timeout_s: float = READ_TIMEOUT_S

    @classmethod
    def of(cls, folders: Iterable[str | os.PathLike[str]], **kw: object) -> FilePolicy:
        """A policy over ``folders`` (each resolved; duplicates dropped, order kept)."""
        seen: dict[Path, None] = {}
        for f in folders:
            seen.setdefault(resolve_name(f), None)
        return cls(tuple(seen), **kw)  # type: ignore[arg-type]

    def describe(self) -> str:
        if not self.allowed:
            return "no folder is allowed (start the runtime with --allow-dir DIR)"
        return "allowed: " + ", ".join(str(p) for p in self.allowed)

    def allows(self, path: Path) -> bool:
        return any(path == d or d in path.parents for d in self.allowed)

    def resolve(self, name: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None,
                *, where: str = "path") -> Path:
        """The resolved path of ``name``, or :class:`FileRefused` when it lies outside the allowed folders.

        Nothing on disk is touched beyond resolving links, and the refusal does
        not depend on whether the file exists.
        """
        text = os.fspath(name)
        if not isinstance(text, str) or not text.strip() or "\x00" in text:
            raise FileRefused(f"expected a file path, got {text!r}", where=where)
        path = resolve_name(text, base_dir)
        if not self.allows(path):
            raise FileRefused(f"{text!r} is outside the folders this runtime may read files from "
                              f"({self.describe()}); ask the operator to add its folder with --allow-dir",
                              where=where)
        return path


def check_regular(path: Path, *, where: str, max_bytes: int = MAX_FILE_BYTES) -> os.stat_result:
    """``stat`` of ``path`` if it is a regular file no larger than ``max_bytes``; :class:`FileRefused` otherwise.

    Does not open the file (a FIFO would block an open for reading).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileRefused(f"file not found: {str(path)!r}", where=where) from None
    except OSError as exc:
        raise FileRefused(f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}", where=where) from None
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(f"{str(path)!r} is not a regular file ({_kind(st.st_mode)})", where=where)
    if st.st_size > max_bytes:
        raise FileRefused(f"{str(path)!r} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit", where=where)
    return st


def read_bytes(path: Path, *, where: str, max_bytes: int = MAX_FILE_BYTES,
               timeout_s: float = READ_TIMEOUT_S) -> bytes:
    """The contents of the regular file ``path`` (already resolved and allowed), bounded in size and time.

    Opened non-blocking and checked on the open descriptor, so a FIFO or a
    device swapped in after :func:`check_regular` is refused, never waited on.
    """
    check_regular(path, where=where, max_bytes=max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileRefused(f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}", where=where) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused(f"{str(path)!r} is not a regular file ({_kind(st.st_mode)})", where=where)
        deadline = time.monotonic() + timeout_s
        parts: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise FileRefused(f"{str(path)!r} is over the {max_bytes:,}-byte limit", where=where)
            parts.append(chunk)
            if time.monotonic() > deadline:
                raise FileRefused(f"reading {str(path)!r} took over {timeout_s:g} s", where=where)
        return b"".join(parts)
    except OSError as exc:
        raise FileRefused(f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}", where=where) from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
