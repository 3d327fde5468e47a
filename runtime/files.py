"""Files a client names: confined to the folders the operator allows, read with bounds.

A client of the runtime (LoadGraph.path, an audio prompt in SetPrompts, an
audio file a graph names) is trusted to play music, not to read the host.
Every such path goes through one :class:`FilePolicy`:

- the name is joined to the base folder it is relative to (the graph's own
  folder; a relative name with no such folder is refused, never read from the
  runtime's working directory) and made absolute;
- checked twice against the allowed folders (``cadenza serve --allow-dir``; by
  default the folders of the graphs given on the command line): first as
  written, with ``..`` folded away as text, before anything on disk is looked
  at (so ``/etc/passwd`` or ``../../secret`` is refused without a single
  ``stat`` outside them); then with every symlink resolved, so a link inside an
  allowed folder cannot point out of it (a ``..`` after a link steps back
  over the link's name, as the text reads, and what is opened is the path
  that was checked). Outside them the refusal
  (:class:`FileOutside`, the wire's PERMISSION_DENIED) is the same words
  whether the file exists or not, so a client learns nothing about the rest of
  the disk;
- only regular files are read (a FIFO, a device such as ``/dev/zero`` or a
  folder is refused without blocking: the file is opened non-blocking and
  checked with ``fstat`` on the open descriptor), at most ``max_bytes``, within
  ``timeout_s``.

No error raised here quotes a byte of any file's contents. The operator's own
command line (``serve --graph``, ``render``) is trusted and passes ``None`` as
the policy: paths are then resolved the same way but not confined.
"""

from __future__ import annotations

import errno
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
_MAX_SYMLINKS = 40  # as the kernel's own limit
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FileRefused(UsageError):
    """A client named a file it may not read (outside the allowed folders, not a regular file, too big)."""


class FileOutside(FileRefused):
    """The file lies outside the allowed folders (or has no folder to be relative to): the wire's PERMISSION_DENIED.

    Its message depends only on the name the client sent and the policy, never
    on what is on disk.
    """


def resolve_name(name: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None) -> Path:
    """``name`` joined to ``base_dir`` when relative, absolute, with symlinks and ``..`` resolved."""
    p = Path(os.fspath(name)).expanduser() if str(name).startswith("~") else Path(os.fspath(name))
    if not p.is_absolute() and base_dir is not None:
        p = Path(os.fspath(base_dir)) / p
    return Path(os.path.realpath(p))


@dataclass(frozen=True)
class FilePolicy:
    """Which folders client-named files may come from, and how much of a file may be read.

    ``allowed`` holds the folders with their symlinks resolved; ``named`` the
    same folders as the operator wrote them (absolute, ``..`` folded), so a
    client may name a file through either spelling.
    """

    allowed: tuple[Path, ...] = ()
    max_bytes: int = MAX_FILE_BYTES
    timeout_s: float = READ_TIMEOUT_S
    named: tuple[Path, ...] = ()

    @classmethod
    def of(cls, folders: Iterable[str | os.PathLike[str]], *, max_bytes: int = MAX_FILE_BYTES,
           timeout_s: float = READ_TIMEOUT_S) -> FilePolicy:
        """A policy over ``folders`` (each resolved; duplicates dropped, order kept)."""
        seen: dict[Path, None] = {}
        named: dict[Path, None] = {}
        for f in folders:
            seen.setdefault(resolve_name(f), None)
            named.setdefault(Path(os.path.abspath(os.fspath(f))), None)
        return cls(tuple(seen), max_bytes=max_bytes, timeout_s=timeout_s, named=tuple(named))

    def describe(self) -> str:
        if not self.allowed:
            return "no folder is allowed (start the runtime with --allow-dir DIR)"
        return "allowed: " + ", ".join(str(p) for p in self.allowed)

    def allows(self, path: Path) -> bool:
        return _inside(path, self.allowed)

    def resolve(self, name: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None,
                *, where: str = "path") -> Path:
        """The resolved path of ``name``, or :class:`FileOutside` when it lies outside the allowed folders.

        A relative ``name`` is joined to ``base_dir``; with no ``base_dir`` it
        is refused (it would otherwise name a file in the runtime's working
        directory). The name as written (``..`` folded as text) must lie in an
        allowed folder before anything on disk is looked at; then its symlinks
        are resolved and the result must lie in one too. The refusal does not
        depend on whether the file (or anything else outside) exists.
        """
        text = os.fspath(name)
        if not isinstance(text, str) or not text.strip() or "\x00" in text:
            raise FileOutside(f"expected a file path, got {text!r}", where=where)
        p = Path(text)
        if not p.is_absolute():
            if base_dir is None or not os.fspath(base_dir):
                raise FileOutside(f"{text!r} is a relative path with no folder to be relative to: give an absolute "
                                  "path, or (LoadGraph.text) send base_dir, the folder the graph's files are in",
                                  where=where)
            p = Path(os.fspath(base_dir)) / p
            if not p.is_absolute():
                raise FileOutside(f"base folder {os.fspath(base_dir)!r} is not an absolute path", where=where)
        written = Path(os.path.normpath(p))
        shown = repr(text) if base_dir is None or Path(text).is_absolute() else f"{text!r} (in {os.fspath(base_dir)!r})"
        refused = FileOutside(f"{shown} is outside the folders this runtime may read files from "
                              f"({self.describe()}); ask the operator to add its folder with --allow-dir",
                              where=where)
        if not (_inside(written, self.allowed) or _inside(written, self.named)):
            raise refused  # decided on the text alone: nothing outside was looked at
        try:
            path = Path(os.path.realpath(written))
        except OSError:  # a name changing under realpath (a link swapped for a file): say no more than outside
            raise refused from None
        if not self.allows(path):
            raise refused  # a symlink inside an allowed folder points out of it
        return path

    def read(self, name: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None, *,
             where: str = "path", max_bytes: int | None = None, timeout_s: float | None = None) -> tuple[Path, bytes]:
        """The resolved path of ``name`` and its contents, read without ever leaving the allowed folders.

        :meth:`resolve` answers from the name; between that answer and an
        ``open`` by name, a client who may write inside an allowed folder
        could swap a component for a symlink that leads out (a race). So the
        file is not opened by name: starting from the allowed folder's own
        descriptor, each component is opened relative to the one before with
        ``O_NOFOLLOW``. A symlink met on the way is read, its target checked
        as text against the allowed folders (outside: the same refusal as
        :meth:`resolve`, nothing outside touched), and the walk starts again
        from there. What is read is therefore what was checked, and every
        error (not found, a folder, a FIFO) is about a path inside an allowed
        folder.
        """
        path = self.resolve(name, base_dir, where=where)
        limit = self.max_bytes if max_bytes is None else min(max_bytes, self.max_bytes)
        timeout = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        refused = FileOutside(f"{os.fspath(name)!r} is outside the folders this runtime may read files from "
                              f"({self.describe()}); ask the operator to add its folder with --allow-dir",
                              where=where)
        fd = self._open_beneath(path, refused, where)
        try:
            return path, _read_fd(fd, path, where=where, max_bytes=limit, timeout_s=timeout)
        finally:
            os.close(fd)

    def _root_of(self, path: Path) -> Path | None:
        """The allowed folder (resolved) that holds ``path`` as text; the deepest when several do."""
        best: Path | None = None
        for d in self.allowed:
            if (path == d or d in path.parents) and (best is None or len(d.parts) > len(best.parts)):
                best = d
        return best

    def _open_beneath(self, path: Path, refused: FileOutside, where: str) -> int:
        """A descriptor of the regular file at ``path``, opened component by component from its allowed folder."""
        target = path
        for _hop in range(_MAX_SYMLINKS):
            root = self._root_of(target)
            if root is None:
                raise refused
            parts = target.relative_to(root).parts
            if not parts:
                raise FileRefused(f"{str(path)!r} is not a regular file (a folder)", where=where)
            try:
                fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)  # the operator's folder: trusted
            except OSError as exc:
                raise FileRefused(f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}",
                                  where=where) from None
            here = root
            followed: Path | None = None
            try:
                for i, part in enumerate(parts):
                    last = i == len(parts) - 1
                    flags = os.O_NOFOLLOW | _CLOEXEC | (
                        os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY if last else os.O_RDONLY | os.O_DIRECTORY)
                    try:
                        nxt = os.open(part, flags, dir_fd=fd)
                    except OSError as exc:
                        link = _readlink(part, fd)
                        if link is None and exc.errno == errno.ELOOP:
                            followed = target  # a link when opened, no longer one when read: walk again
                            break
                        if link is None:
                            raise _refusal(exc, path, where) from None
                        # a symlink: its target as text, then the rest of the path, checked again from the top
                        followed = Path(os.path.normpath(here / link / Path(*parts[i + 1:])))
                        break
                    os.close(fd)
                    fd = nxt
                    here = here / part
                else:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        raise FileRefused(f"{str(path)!r} is not a regular file ({_kind(st.st_mode)})", where=where)
                    out, fd = fd, -1
                    return out
            finally:
                if fd >= 0:
                    os.close(fd)
            target = followed
        raise FileRefused(f"{str(path)!r}: too many levels of symbolic links", where=where)


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    return any(path == d or d in path.parents for d in folders)


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
    """The contents of the regular file ``path``, bounded in size and time: for the operator's own paths (its
    command line). A path a client names is read with :meth:`FilePolicy.read`, which never opens by name.

    Opened non-blocking and checked on the open descriptor, so a FIFO or a
    device swapped in after :func:`check_regular` is refused, never waited on.
    """
    check_regular(path, where=where, max_bytes=max_bytes)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise FileRefused(f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}", where=where) from None
    try:
        return _read_fd(fd, path, where=where, max_bytes=max_bytes, timeout_s=timeout_s)
    finally:
        os.close(fd)


def _readlink(name: str, dir_fd: int) -> str | None:
    """The target of the symlink ``name`` in the folder ``dir_fd``; None when it is not a symlink."""
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def _refusal(exc: OSError, path: Path, where: str) -> FileRefused:
    if isinstance(exc, FileNotFoundError):
        return FileRefused(f"file not found: {str(path)!r}", where=where)
    if isinstance(exc, NotADirectoryError):
        return FileRefused(f"file not found: {str(path)!r} (a part of it is not a folder)", where=where)
    return FileRefused(f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}", where=where)


def _read_fd(fd: int, path: Path, *, where: str, max_bytes: int, timeout_s: float) -> bytes:
    """All of the regular file open on ``fd``, at most ``max_bytes``, within ``timeout_s``."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise FileRefused(f"{str(path)!r} is not a regular file ({_kind(st.st_mode)})", where=where)
    if st.st_size > max_bytes:
        raise FileRefused(f"{str(path)!r} is {st.st_size:,} bytes, over the {max_bytes:,}-byte limit", where=where)
    deadline = time.monotonic() + timeout_s
    parts: list[bytes] = []
    total = 0
    try:
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
    except OSError as exc:
        raise FileRefused(f"cannot read {str(path)!r}: {exc.strerror or type(exc).__name__}", where=where) from None
    return b"".join(parts)


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
