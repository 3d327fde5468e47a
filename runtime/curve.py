"""CurveZMQ keys for ``cadenza serve``: key files, the client allow-lists, and who sent a request.

One job: decide which remote clients may talk to the runtime, and with which
rights. Three kinds of client, by where their public key is::

    --curve-clients DIR    full control (LoadGraph, SetParameters, SetPrompts, Transport …)
    --curve-readonly DIR   Hello, GetStatus and the events/audio subscriptions only
    anywhere else          nothing: the handshake is refused by ZAP, no reply, no event

A :class:`ClientGate` runs pyzmq's ZAP authenticator
(:class:`zmq.auth.thread.ThreadAuthenticator`) on the runtime's ZeroMQ context
with a callback that looks the client's key up in the two folders; ZeroMQ
then stamps every message of that connection with the key as its
``User-Id`` property, which :meth:`ClientGate.role` reads per request. The
folders are read again when they change (checked at most once a second), so
adding or removing a key file needs no restart; a removed key's open
connection is refused from its next request on.

A key folder holds public keys only, one per file, in either form:

- ``NAME.pub`` as ``cadenza keys`` writes it (one line of 40 z85 characters);
- ``NAME.key`` as pyzmq's ``zmq.auth.create_certificates`` / czmq write it
  (a ``public-key = "…"`` line).

A file that holds a *secret* key (``*.key_secret``, a ``secret-key`` line, or
the one-line ``NAME.key`` that ``cadenza keys`` writes as the secret) is an
error that names it: secrets stay with their owner. Other files are ignored.

:func:`write_keypair` makes a key pair for ``cadenza keys``: the secret file
is created with mode 0600 by the ``open`` call itself (never written first and
restricted after), and an existing file is never replaced unless asked.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from zmq.utils import z85

from cadenza.errors import UsageError

_MAX_KEY_FILE_BYTES = 64 * 1024  # a key file is a few hundred bytes
log = logging.getLogger(__name__)

KEY_CHARS = 40
RELOAD_EVERY_S = 1.0


class Role:
    FULL = "full"
    READONLY = "readonly"


def _z85_line(text: str) -> bytes | None:
    """The key if ``text`` is one line of 40 valid z85 characters."""
    line = text.strip()
    if len(line) != KEY_CHARS or "\n" in line:
        return None
    try:
        z85.decode(line.encode("ascii"))
    except (ValueError, KeyError, UnicodeEncodeError):
        return None
    return line.encode("ascii")


def _zpl_value(text: str, name: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(name):
            head, sep, value = stripped.partition("=")
            if sep and head.strip() == name:
                return value.strip().strip("'\"")
    return None


def read_public_key(path: Path, option: str) -> bytes | None:
    """The public key in ``path`` (a key folder's file), None for a file that is no key; UsageError for a secret."""
    name = path.name
    if name.endswith(".key_secret"):
        raise UsageError(f"{str(path)!r} holds a secret key; a client key folder holds public keys only "
                         "(NAME.pub or NAME.key) — move it back to its owner", where=option)
    if not (name.endswith(".pub") or name.endswith(".key")):
        return None
    text = _read_key_text(path, option)
    if _zpl_value(text, "secret-key") is not None:
        raise UsageError(f"{str(path)!r} holds a secret key; a client key folder holds public keys only "
                         "(NAME.pub or NAME.key) — move it back to its owner", where=option)
    public = _zpl_value(text, "public-key")
    if public is not None:
        key = _z85_line(public)
        if key is None:
            raise UsageError(f"{str(path)!r}: its public-key is not 40 z85 characters", where=option)
        return key
    key = _z85_line(text)
    if key is None:
        raise UsageError(f"{str(path)!r} holds no CurveZMQ public key (one line of 40 z85 characters, as "
                         "`cadenza keys` writes NAME.pub)", where=option)
    if name.endswith(".key"):
        whose = "the runtime's" if option == "--server-key" else "the client's"
        raise UsageError(f"{str(path)!r} looks like a secret key (`cadenza keys` writes the secret as NAME.key "
                         f"and the public key as NAME.pub); put {whose} NAME.pub here", where=option)
    return key


def load_key_folder(folder: str, option: str) -> dict[bytes, str]:
    """Every public key in ``folder`` → the file it came from. UsageError for a missing folder or a bad file."""
    p = Path(folder)
    if not p.is_dir():
        raise UsageError(f"{folder!r} is not a folder (give a folder of client public key files)", where=option)
    keys: dict[bytes, str] = {}
    for entry in sorted(p.iterdir()):
        if entry.name.startswith(".") or not entry.is_file():
            continue
        key = read_public_key(entry, option)
        if key is not None:
            keys[key] = entry.name
    return keys


def _read_key_text(path: Path, option: str) -> str:
    """The start of a key file as text, read as a regular file with a size bound: a FIFO or a device named as a
    key is refused at once, never waited on."""
    from cadenza.runtime.files import FileRefused, read_bytes

    try:
        return read_bytes(path, where=option, max_bytes=_MAX_KEY_FILE_BYTES).decode("ascii", errors="replace")[:4096]
    except FileRefused as exc:
        raise UsageError(exc.message, where=option) from None


def read_secret_key(path: str, option: str = "--curve-secret-key") -> bytes:
    """The server's z85 secret key from ``path`` (a ``cadenza keys`` NAME.key or a pyzmq ``.key_secret``)."""
    text = _read_key_text(Path(path), option)
    zpl = _zpl_value(text, "secret-key")
    key = _z85_line(zpl if zpl is not None else (text.strip().splitlines() or [""])[-1])
    if key is None:
        raise UsageError(f"{path!r} does not hold a 40-character z85 secret key", where=option)
    return key


@dataclass(frozen=True)
class _Lists:
    full: dict[bytes, str]
    readonly: dict[bytes, str]
    stamp: tuple[float, ...]


class ClientGate:
    """The ZAP authenticator over the client allow-lists, and the role of each request's sender."""

    def __init__(self, ctx: zmq.Context[Any], clients: str | None, readonly: str | None) -> None:
        self.ctx = ctx
        self.clients = clients
        self.readonly_dir = readonly
        self._lists = self._load()  # raises UsageError: the runtime refuses to start
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.denied = 0  # handshakes refused (a key on no list)
        self._auth: Any = None

    def start(self) -> None:
        """Start answering ZAP requests (before any socket binds, so no handshake goes unchecked)."""
        from zmq.auth.thread import ThreadAuthenticator

        self._auth = ThreadAuthenticator(self.ctx, log=logging.getLogger(__name__ + ".zap"))
        self._auth.start()
        self._auth.configure_curve_callback("*", credentials_provider=self)
        n_full, n_ro = len(self._lists.full), len(self._lists.readonly)
        log.info(f"CURVE allow-lists: {n_full} client key(s) with control, {n_ro} read-only")
        if n_full + n_ro == 0:
            log.warning("the CURVE allow-lists are empty: no client can connect until a key file is added")

    def stop(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None

    # ---------------------------------------------------------------- lists
    def _stamp(self) -> tuple[float, ...]:
        out: list[float] = []
        for folder in (self.clients, self.readonly_dir):
            if folder is None:
                continue
            try:
                out.append(os.stat(folder).st_mtime)
                out.extend(e.stat().st_mtime for e in sorted(Path(folder).iterdir(), key=lambda e: e.name)
                           if not e.name.startswith("."))
            except OSError:
                out.append(-1.0)
        return tuple(out)

    def _load(self) -> _Lists:
        stamp = self._stamp()
        full = load_key_folder(self.clients, "--curve-clients") if self.clients is not None else {}
        ro = load_key_folder(self.readonly_dir, "--curve-readonly") if self.readonly_dir is not None else {}
        both = sorted(set(full) & set(ro))
        if both:
            k = both[0]
            raise UsageError(f"the key in {full[k]!r} (--curve-clients) is also in {ro[k]!r} (--curve-readonly); "
                             "keep each client key in one folder", where="--curve-readonly")
        return _Lists(full, ro, stamp)

    def _refresh(self) -> _Lists:
        now = time.monotonic()
        if now - self._checked < RELOAD_EVERY_S:
            return self._lists
        with self._lock:
            if now - self._checked < RELOAD_EVERY_S:
                return self._lists
            self._checked = now
            if self._stamp() != self._lists.stamp:
                try:
                    self._lists = self._load()
                    log.info(f"CURVE allow-lists reloaded: {len(self._lists.full)} with control, "
                             f"{len(self._lists.readonly)} read-only")
                except UsageError as exc:  # keep the lists we had; say why
                    log.warning(f"CURVE allow-lists not reloaded (the old ones stay): {exc}")
        return self._lists

    # ------------------------------------------------------------ ZAP + role
    def callback(self, domain: str, key: bytes) -> bool:
        """pyzmq's credentials-provider hook (the authenticator thread): may this z85 key connect?"""
        lists = self._refresh()
        ok = key in lists.full or key in lists.readonly
        if not ok:
            self.denied += 1
            if self.denied <= 10 or self.denied % 1000 == 0:
                log.warning(f"refused a CURVE client whose key is on no allow-list: "
                         f"{key.decode('ascii', 'replace')} ({self.denied} refused so far)")
        return ok

    def role(self, user_id: str | None) -> str | None:
        """``Role.FULL``, ``Role.READONLY`` or None (a key no longer on any list) for a message's User-Id."""
        if not user_id:
            return None
        lists = self._refresh()
        key = user_id.encode("ascii", "replace")
        if key in lists.full:
            return Role.FULL
        if key in lists.readonly:
            return Role.READONLY
        return None

    def describe(self, user_id: str | None) -> str:
        key = (user_id or "").encode("ascii", "replace")
        name = self._lists.readonly.get(key) or self._lists.full.get(key)
        return f"client key {name}" if name else "this client's key"


def write_keypair(folder: Path, name: str, *, force: bool = False) -> tuple[Path, Path]:
    """Write ``NAME.key`` (secret, mode 0600 from its creation) and ``NAME.pub`` into ``folder``.

    Refuses (UsageError) to replace either file unless ``force``; with
    ``force`` the old files are unlinked first, so the new secret is again
    created 0600 rather than written into an old file's mode.
    """
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise UsageError(f"{name!r} is not a file name", where="--name")
    secret_path, public_path = folder / f"{name}.key", folder / f"{name}.pub"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        existing = [p for p in (secret_path, public_path) if os.path.lexists(p)]
        if existing and not force:
            raise UsageError(f"{str(existing[0])!r} exists; a new key pair would lock out every client that has the "
                             "old public key. Give --force to replace it, or another --name", where="keys")
        for p in existing:
            p.unlink()
        public, secret = zmq.curve_keypair()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(secret_path, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask; the file never had wider rights
            os.write(fd, secret + b"\n")
        finally:
            os.close(fd)
        fd = os.open(public_path, flags, 0o644)
        try:
            os.write(fd, public + b"\n")
        finally:
            os.close(fd)
    except OSError as exc:
        raise UsageError(f"cannot write keys into {str(folder)!r}: {exc.strerror or exc}", where="keys") from exc
    return secret_path, public_path
