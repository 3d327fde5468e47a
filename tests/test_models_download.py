"""``cadenza models download`` end to end, against a local stand-in of the Hugging Face Hub.

No test can reach huggingface.co, so this file serves the part of the Hub's
HTTP API that ``huggingface_hub`` (2.x, httpx2) calls for what
``weights.download`` does, from two threaded ``http.server`` servers on
127.0.0.1, and runs ``python -m cadenza models …`` with ``HF_ENDPOINT``
pointing at it, a Hugging Face cache in a temporary folder and no token:

- ``POST /api/models/{repo}/paths-info/main`` (``HfApi.get_paths_info``, a
  form body ``paths=…``) and ``GET /api/models/{repo}/tree/main/{folder}
  ?recursive=…`` (``HfApi.list_repo_tree``, paginated by a ``Link: rel="next"``
  header like the Hub) answer the file entries with their LFS sha256 and size;
- ``HEAD``/``GET /{repo}/resolve/main/{file}`` answer like the Hub does for
  LFS files: a 302 to a signed CDN URL with ``X-Repo-Commit``,
  ``X-Linked-Etag`` (the sha256: the blob's name in the cache),
  ``X-Linked-Size`` and ``ETag``;
- the "CDN" is the second server (another port, so ``huggingface_hub`` treats
  it as a foreign host and drops the token) and serves the bytes with
  ``Content-Length``, ``Accept-Ranges``, ``Content-Disposition`` (the name on
  the progress bar) and ``Range`` → 206. It can break a GET off after part of
  the body, as a lost connection does.

The stand-in sends no ``X-Xet-*`` headers, so this is the plain-HTTP path of
``hf_hub_download`` (what a Xet-backed repo gets with ``HF_HUB_DISABLE_XET=1``
or without ``hf_xet``); a Xet download's own retries are not covered here.

What a user sees: sizes before the download, the file in the standard cache
layout, ``models list`` showing it; a connection broken mid-file is resumed
by a Range request in the same run (from the last whole 10 MiB chunk
received); one that keeps breaking ends in one line saying to run the command
again, and the rerun starts that file over (``huggingface_hub`` 2.x keeps no
partial file between runs); ``resources`` gets every file the (paginated,
recursive) tree lists; ``HF_TOKEN`` reaches the Hub, not the CDN; a gated or
bad-token answer (401/403) is one line naming ``HF_TOKEN``; an unreachable
``HF_ENDPOINT`` is one line naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

pytest.importorskip("huggingface_hub", reason="the magenta extra is not installed (pip install 'cadenza[magenta]')")

REPO_ID = "google/magenta-realtime-2"
COMMIT = "3f1c0ffee5eed0ddba11ab1e0123456789abcdef"
REPO_DIR = "models--google--magenta-realtime-2"
TREE_PAGE = 3  # entries per page of the tree listing, so the listing of resources/musiccoca takes pages
GATED_MESSAGE = ("Access to model google/magenta-realtime-2 is restricted. You must have access to it and be "
                 "authenticated to access it. Please log in.")


def _random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


MIB = 1024 * 1024
# huggingface_hub writes what it receives in 10 MiB chunks, and resumes from the last whole chunk: the checkpoint
# is large enough for a break after the first chunk to show a Range request
SMALL = "checkpoints/mrt2_small.safetensors"
FILES: dict[str, bytes] = {
    SMALL: _random_bytes(12_000_000, 1),
    "checkpoints/mrt2_base.safetensors": _random_bytes(500_000, 2),
    "resources/musiccoca/text_encoder.tflite": _random_bytes(61_000, 3),
    "resources/musiccoca/audio_preprocessor.tflite": _random_bytes(12_000, 4),
    "resources/musiccoca/music_encoder.tflite": _random_bytes(83_000, 5),
    "resources/musiccoca/pretrained_vector_quantizer.tflite": _random_bytes(9_000, 6),
    "resources/musiccoca/vocab/spm.model": _random_bytes(7_000, 7),  # a nested file: the listing is recursive
    "README.md": b"# Magenta RealTime 2\n",
}


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Seen:
    """One request as the stand-in received it."""

    server: str  # "hub" or "cdn"
    method: str
    path: str
    headers: dict[str, str]  # lower-case names


@dataclass
class FakeHub:
    """The two servers' shared state: what they serve, how they misbehave, what they saw."""

    files: dict[str, bytes]
    hub_port: int = 0
    cdn_port: int = 0
    seen: list[Seen] = field(default_factory=list)
    cut: list[int] = field(default_factory=list)  # CDN GETs to break off: bytes of body to send first, in order
    gate: tuple[int, str, str | None] | None = None  # (status, "api" or "resolve", X-Error-Code): refuse access
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.by_sha = {hashlib.sha256(d).hexdigest(): (p.rsplit("/", 1)[-1], d) for p, d in self.files.items()}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    def requests(self, server: str, method: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.server == server and (method is None or s.method == method)]

    def entry(self, path: str) -> dict[str, object]:
        data = self.files[path]
        return {"type": "file", "oid": _git_oid(data), "size": len(data), "path": path,
                "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}}

    def folders(self) -> set[str]:
        out: set[str] = set()
        for path in self.files:
            parts = path.split("/")[:-1]
            out.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub; every answer has a Content-Length
    hub: FakeHub
    role: str

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 — the base class's name
        pass

    def _record(self) -> None:
        with self.hub.lock:
            self.hub.seen.append(Seen(self.role, self.command, self.path,
                                      {k.lower(): v for k, v in self.headers.items()}))

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value: object, headers: dict[str, str] | None = None) -> None:
        self._answer(200, json.dumps(value).encode(), headers)

    def _error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self._answer(status, json.dumps({"error": message}).encode(),
                     {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

    def _gated(self, where: str) -> bool:
        gate = self.hub.gate
        if gate is None or gate[1] != where:
            return False
        status, _, code = gate
        if code == "GatedRepo":
            self._error(status, code, GATED_MESSAGE)
        else:  # what the Hub answers a token it does not know
            self._answer(401, json.dumps({"error": "Invalid credentials in Authorization header"}).encode(),
                         {"X-Error-Message": "Invalid credentials in Authorization header"})
        return True

    # ---------------------------------------------------------------- routes

    def do_POST(self) -> None:  # noqa: N802 — http.server's name
        self._record()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        prefix = f"/api/models/{REPO_ID}/paths-info/"
        if not self.path.startswith(prefix):
            return self._error(404, "RepoNotFound", "Repository not found")
        if self._gated("api"):
            return None
        if unquote(self.path[len(prefix):]) != "main":
            return self._error(404, "RevisionNotFound", "Invalid rev id: " + self.path[len(prefix):])
        paths = parse_qs(body).get("paths", [])
        folders = self.hub.folders()
        out: list[object] = []
        for p in paths:  # unknown paths are left out, as the Hub does
            if p in self.hub.files:
                out.append(self.hub.entry(p))
            elif p in folders:
                out.append({"type": "directory", "oid": _git_oid(p.encode()), "path": p})
        return self._json(out)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self._record()
        if self.role == "cdn":
            return self._cdn()
        url = urlsplit(self.path)
        tree = f"/api/models/{REPO_ID}/tree/main"
        resolve = f"/{REPO_ID}/resolve/main/"
        if url.path == tree or url.path.startswith(tree + "/"):
            return self._tree(unquote(url.path[len(tree) + 1:]), parse_qs(url.query))
        if url.path.startswith(resolve):
            return self._resolve(unquote(url.path[len(resolve):]))
        return self._error(404, "RepoNotFound", "Repository not found")

    def _tree(self, folder: str, query: dict[str, list[str]]) -> None:
        if self._gated("api"):
            return
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        under = folder + "/" if folder else ""
        if folder and folder not in self.hub.folders():
            return self._error(404, "EntryNotFound", f"{folder} does not exist on \"main\"")

        def listed(path: str) -> bool:
            rest = path[len(under):]
            return path.startswith(under) and (recursive or "/" not in rest)

        entries: list[dict[str, object]] = [
            {"type": "directory", "oid": _git_oid(p.encode()), "path": p}
            for p in sorted(self.hub.folders()) if listed(p)]
        entries += [self.hub.entry(p) for p in sorted(self.hub.files) if listed(p)]
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start:start + TREE_PAGE]
        headers = {}
        if start + TREE_PAGE < len(entries):
            nxt = (f"{self.hub.endpoint}/api/models/{REPO_ID}/tree/main/{quote(folder, safe='')}"
                   f"?recursive={str(recursive).lower()}&expand=false&cursor={start + TREE_PAGE}")
            headers["Link"] = f'<{nxt}>; rel="next"'
        self._json(page, headers)

    def _resolve(self, path: str) -> None:
        if self._gated("resolve"):
            return
        data = self.hub.files.get(path)
        if data is None:
            return self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": COMMIT})
        sha = hashlib.sha256(data).hexdigest()
        location = f"http://127.0.0.1:{self.hub.cdn_port}/lfs/{sha}?X-Amz-Signature=stand-in"
        self._answer(302, b"", {"Location": location, "X-Repo-Commit": COMMIT, "ETag": f'"{_git_oid(data)}"',
                                "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                                "Accept-Ranges": "bytes"}, content_type="text/plain")

    def _cdn(self) -> None:
        sha = urlsplit(self.path).path.removeprefix("/lfs/")
        if sha not in self.hub.by_sha:
            return self._answer(404, b"NoSuchKey", content_type="text/plain")
        name, data = self.hub.by_sha[sha]
        size, status = len(data), 200
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{sha}"',  # the Hub's CDN names the file, as the Hub does
                   "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";"}
        rng = self.headers.get("Range")
        if rng:
            first, _, last = rng.removeprefix("bytes=").partition("-")
            start, end = int(first), int(last) if last else size - 1
            if start >= size:
                return self._answer(416, b"", {"Content-Range": f"bytes */{size}"}, "text/plain")
            data, status = data[start:end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{size}"
        with self.hub.lock:
            cut = self.hub.cut.pop(0) if self.hub.cut and self.command == "GET" else None
        if cut is None:
            return self._answer(status, data, headers, "application/octet-stream")
        # a lost connection: the full Content-Length promised, part of the body sent, then the socket closed
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data[:cut])
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _serve(hub: FakeHub, role: str) -> ThreadingHTTPServer:
    handler = type(f"{role}Handler", (_Handler,), {"hub": hub, "role": role})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    state = FakeHub(dict(FILES))
    servers = [_serve(state, "hub"), _serve(state, "cdn")]
    state.hub_port, state.cdn_port = (s.server_address[1] for s in servers)
    yield state
    for s in servers:
        s.shutdown()
        s.server_close()


# ------------------------------------------------------------------------- the CLI


def _env(tmp_path: Path, hub: FakeHub, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGING_FACE_")) and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.pop("CADENZA_DEBUG", None)
    env.update({"HF_ENDPOINT": hub.endpoint, "HF_HOME": str(tmp_path / "hf"),  # no stored token of this machine
                "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_HUB_DISABLE_TELEMETRY": "1",
                "NO_PROXY": "127.0.0.1", "PYTHONUNBUFFERED": "1", **extra})
    return env


def _cadenza(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cadenza", "models", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command's error: exactly one line, the last one, and no traceback anywhere."""
    err = done.stderr
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("cadenza models: error:")]
    assert len(errors) == 1 and err.rstrip("\n").splitlines()[-1] == errors[0], err
    return errors[0]


def _human(n: int) -> str:
    from cadenza.runtime.backends.magenta.weights import human

    return human(n)


def _repo(tmp_path: Path) -> Path:
    return tmp_path / "hf" / "hub" / REPO_DIR


def _sha(path: str) -> str:
    return hashlib.sha256(FILES[path]).hexdigest()


def _incomplete(tmp_path: Path) -> list[Path]:
    blobs = _repo(tmp_path) / "blobs"
    return sorted(blobs.glob("*.incomplete")) if blobs.is_dir() else []


# ------------------------------------------------------------------------- tests


def test_download_prints_sizes_fills_the_cache_and_list_shows_it(tmp_path: Path, hub: FakeHub) -> None:
    env = _env(tmp_path, hub)
    cache = tmp_path / "hf" / "hub"
    size = len(FILES[SMALL])
    done = _cadenza(["download", "mrt2_small"], env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[:2] == [
        f"mrt2_small: 1 file(s), {_human(size)} in all, {_human(size)} to download into {cache}",
        f"  {SMALL} ({_human(size)})"], done.stderr
    assert "Traceback" not in done.stderr and "warning" not in done.stderr.lower()

    # the standard cache layout: the blob named by its sha256, the snapshot of the commit links to it, refs/main
    repo = _repo(tmp_path)
    blob = repo / "blobs" / _sha(SMALL)
    snap = repo / "snapshots" / COMMIT / SMALL
    assert (repo / "refs" / "main").read_text() == COMMIT
    assert blob.read_bytes() == FILES[SMALL]
    assert snap.is_symlink() and snap.resolve() == blob.resolve()
    assert done.stdout.strip() == f"mrt2_small: ready at {snap}"
    assert _incomplete(tmp_path) == []

    # the calls huggingface_hub made: listing, HEAD on the Hub, the bytes from the CDN; no token anywhere
    assert [(s.server, s.method) for s in hub.seen] == [("hub", "POST"), ("hub", "HEAD"), ("cdn", "GET")]
    assert hub.seen[0].path == f"/api/models/{REPO_ID}/paths-info/main"
    assert hub.seen[1].path == f"/{REPO_ID}/resolve/main/{SMALL}"
    assert hub.seen[2].path.startswith(f"/lfs/{_sha(SMALL)}") and "range" not in hub.seen[2].headers
    assert not any("authorization" in s.headers for s in hub.seen)

    # `models list` works offline from the cache: cached, its real size, where
    before = len(hub.seen)
    listed = _cadenza(["list"], {**env, "HF_HUB_OFFLINE": "1"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("mrt2_small "))
    assert lines[row].split()[1:4] == [*_human(size).split(), "yes"], lines[row]
    assert lines[row + 1].strip() == str(snap)
    assert next(line for line in lines if line.startswith("mrt2_base ")).split()[3] == "no"
    assert len(hub.seen) == before

    # downloading it again downloads nothing
    again = _cadenza(["download", "mrt2_small"], env)
    assert again.returncode == 0, again.stderr
    assert f"{_human(size)} in all, 0 B to download" in again.stderr
    assert f"  {SMALL} ({_human(size)}, cached)" in again.stderr
    assert hub.requests("cdn") == [hub.seen[2]]


def test_a_connection_broken_mid_file_resumes_with_a_range_request(tmp_path: Path, hub: FakeHub) -> None:
    hub.cut = [11_000_000]  # the first GET breaks off after 11 MB: one whole 10 MiB chunk is on disk
    done = _cadenza(["download", "mrt2_small"], _env(tmp_path, hub))
    assert done.returncode == 0, done.stderr
    gets = hub.requests("cdn", "GET")
    assert len(gets) == 2 and "range" not in gets[0].headers
    assert gets[1].headers["range"] == f"bytes={10 * MIB}-"
    assert (_repo(tmp_path) / "blobs" / _sha(SMALL)).read_bytes() == FILES[SMALL]
    # huggingface_hub says so (its own warning lines), after our sizes; no error
    err = done.stderr
    assert err.index("to download into") < err.index("Trying to resume download...")
    assert "error" not in err.replace("Error while downloading", "") and "Traceback" not in err


def test_a_connection_that_keeps_breaking_fails_in_one_line_and_the_rerun_completes(
        tmp_path: Path, hub: FakeHub) -> None:
    env = _env(tmp_path, hub)
    hub.cut = [11_000_000] + [0] * 10  # lost for good: huggingface_hub's 5 retries bring nothing (≈5 s)
    done = _cadenza(["download", "mrt2_small"], env)
    assert done.returncode == 2, done.stderr
    line = _error_line(done)
    assert SMALL in line and "connection broke" in line and "RemoteProtocolError" in line
    assert "run the same command again (it starts over)" in line
    gets = hub.requests("cdn", "GET")
    assert len(gets) == 6 and all(g.headers.get("range") == f"bytes={10 * MIB}-" for g in gets[1:])
    # huggingface_hub 2.x keeps no partial file between runs: nothing left, and the rerun starts from byte 0
    assert _incomplete(tmp_path) == [] and not (_repo(tmp_path) / "blobs" / _sha(SMALL)).exists()

    hub.cut = []
    again = _cadenza(["download", "mrt2_small"], env)
    assert again.returncode == 0, again.stderr
    rerun = hub.requests("cdn", "GET")[6:]
    assert len(rerun) == 1 and "range" not in rerun[0].headers
    assert (_repo(tmp_path) / "blobs" / _sha(SMALL)).read_bytes() == FILES[SMALL]


def test_download_resources_fetches_every_file_the_tree_lists(tmp_path: Path, hub: FakeHub) -> None:
    env = _env(tmp_path, hub)
    wanted = sorted(p for p in FILES if p.startswith("resources/musiccoca/"))
    total = sum(len(FILES[p]) for p in wanted)
    done = _cadenza(["download", "resources"], env)
    assert done.returncode == 0, done.stderr
    err = done.stderr.splitlines()
    assert err[0] == (f"resources: {len(wanted)} file(s), {_human(total)} in all, {_human(total)} to download "
                      f"into {tmp_path / 'hf' / 'hub'}")
    assert err[1:] == [f"  {p} ({_human(len(FILES[p]))})" for p in wanted]
    snap = _repo(tmp_path) / "snapshots" / COMMIT
    assert done.stdout.strip() == f"resources: ready at {snap / 'resources' / 'musiccoca'}"
    for p in wanted:  # the nested vocab/spm.model too: the listing is recursive
        assert (snap / p).read_bytes() == FILES[p], p
    assert not (snap / "README.md").exists() and not (snap / "checkpoints").exists()
    tree = hub.requests("hub", "GET")
    assert len(tree) == 2  # 6 entries (the folder vocab, 5 files) in pages of 3: the second page is followed
    assert all(t.path.startswith(f"/api/models/{REPO_ID}/tree/main/resources%2Fmusiccoca?recursive=true")
               for t in tree) and tree[1].path.endswith("&cursor=3")
    assert len(hub.requests("hub", "HEAD")) == len(wanted) == len(hub.requests("cdn", "GET"))
    listed = _cadenza(["list"], {**env, "HF_HUB_OFFLINE": "1"})
    row = next(line for line in listed.stdout.splitlines() if line.startswith("resources "))
    assert row.split()[3] == "yes", listed.stdout


def test_hf_token_reaches_the_hub_and_not_the_cdn(tmp_path: Path, hub: FakeHub) -> None:
    done = _cadenza(["download", "mrt2_small"], _env(tmp_path, hub, HF_TOKEN="hf_standin0123456789"))
    assert done.returncode == 0, done.stderr
    for s in hub.requests("hub"):
        assert s.headers.get("authorization") == "Bearer hf_standin0123456789", s
    (cdn,) = hub.requests("cdn")
    assert "authorization" not in cdn.headers  # huggingface_hub drops it for a foreign host, like the real CDN


@pytest.mark.parametrize(("gate", "token", "says"), [
    ((401, "resolve", "GatedRepo"), None, "is gated and no token was sent (HTTP 401)"),
    ((403, "resolve", "GatedRepo"), "hf_notyet", "is gated and the account of your token"),
    ((401, "api", "GatedRepo"), None, "is gated and no token was sent (HTTP 401)"),
    ((401, "api", None), "hf_revoked", "refused your token (HF_TOKEN or `hf auth login`) for the listing of "
                                       "mrt2_small (HTTP 401: Invalid credentials in Authorization header)"),
], ids=["gated-resolve-401", "gated-resolve-403-token", "gated-listing-401", "bad-token-401"])
def test_refused_access_is_one_line_naming_hf_token(tmp_path: Path, hub: FakeHub, gate: tuple[int, str, str | None],
                                                     token: str | None, says: str) -> None:
    hub.gate = gate
    extra = {"HF_TOKEN": token} if token else {}
    done = _cadenza(["download", "mrt2_small"], _env(tmp_path, hub, **extra))
    assert done.returncode == 2, done.stderr
    line = _error_line(done)
    assert says in line and "HF_TOKEN" in line, line
    if gate[2] == "GatedRepo":
        assert f"accept its terms at https://huggingface.co/{REPO_ID}" in line
    assert "starts over" not in line and hub.requests("cdn") == []
    assert not (_repo(tmp_path) / "blobs").is_dir() or not any((_repo(tmp_path) / "blobs").iterdir())


def test_an_unreachable_hub_is_one_line_naming_the_endpoint(tmp_path: Path, hub: FakeHub) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**_env(tmp_path, hub), "HF_ENDPOINT": f"http://127.0.0.1:{port}"}
    done = _cadenza(["download", "mrt2_small"], env)
    assert done.returncode == 2, done.stderr
    line = _error_line(done)
    assert f"http://127.0.0.1:{port}" in line and "ConnectError" in line and "HF_ENDPOINT" in line, line
