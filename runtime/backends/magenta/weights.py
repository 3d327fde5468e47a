"""Magenta RT 2 weights: which files each model needs, where the Hugging Face cache has them, downloads.

The weights live in the Hugging Face repo ``google/magenta-realtime-2``;
Cadenza keeps them in the standard Hugging Face cache (``HF_HOME`` /
``HF_HUB_CACHE``, ``~/.cache/huggingface/hub`` by default), so a cache other
tools filled is reused and ``huggingface_hub`` does the downloading: progress
bars (on a terminal), ``HF_TOKEN``, ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` all
behave as they do everywhere else. A connection that breaks mid-file is
resumed within the same run (a Range request from the last whole 10 MiB
received); ``huggingface_hub`` 2.x keeps no partial file between runs, so a
download that gave up starts that file over when run again, keeping the files
already complete (:func:`download`). Every failure of a download is one
:class:`~cadenza.errors.ModelError` line naming the problem and the fix.

Looking a model up never touches the network (:func:`resolve`): a missing
file is a :class:`~cadenza.errors.ModelError` that names it and the exact
``cadenza models download`` command. Only :func:`download` goes online.

Imports ``huggingface_hub`` lazily and never jax: ``cadenza models list``
works without an accelerator stack.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from cadenza.errors import ModelError, UsageError

REPO_ID = "google/magenta-realtime-2"
INSTALL_HINT = "pip install 'cadenza[magenta]'"


@dataclass(frozen=True)
class ModelEntry:
    """One downloadable item of the repo: a checkpoint or the shared resources."""

    name: str
    files: tuple[str, ...]  # repo paths; a trailing "/" means every file under that folder
    summary: str
    approx_bytes: int
    library_size: str | None = None  # the magenta_rt model registry name; None for resources
    downloadable: bool = True


MODELS: dict[str, ModelEntry] = {
    "mrt2_small": ModelEntry("mrt2_small", ("checkpoints/mrt2_small.safetensors",),
                             "Magenta RT 2 small: 230M-parameter LM + SpectroStream decoder", 1_100_000_000,
                             library_size="mrt2_small"),
    "mrt2_base": ModelEntry("mrt2_base", ("checkpoints/mrt2_base.safetensors",),
                            "Magenta RT 2 base: 2.4B-parameter LM + SpectroStream decoder (fp32)", 10_000_000_000,
                            library_size="mrt2_base"),
    "resources": ModelEntry("resources", ("resources/musiccoca/",),
                            "MusicCoCa text/audio style towers (TFLite), needed to embed prompts", 800_000_000),
    "tiny": ModelEntry("tiny", ("checkpoints/cadenza_tiny.safetensors",),
                       "a 2-layer/256-dim model with random weights, built locally by `cadenza models make-tiny` "
                       "(tests, benchmarks, trying the pipeline offline; it plays noise)", 290_000_000,
                       library_size="cadenza_tiny", downloadable=False),
}

MUSICCOCA_FILES = ("text_encoder.tflite", "audio_preprocessor.tflite", "music_encoder.tflite",
                   "pretrained_vector_quantizer.tflite")


def hub() -> ModuleType:
    """``huggingface_hub``, or a ModelError with the install hint."""
    try:
        import huggingface_hub
        import huggingface_hub.constants
        import huggingface_hub.errors  # noqa: F401 — attributes of the package from here on
    except ImportError:
        raise ModelError(f"the magenta backend needs huggingface_hub and magenta-rt: {INSTALL_HINT}") from None
    return huggingface_hub


def entry(name: str, where: str = "model") -> ModelEntry:
    found = MODELS.get(name)
    if found is None:
        raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}", where=where)
    return found


def offline() -> bool:
    return bool(hub().constants.HF_HUB_OFFLINE)


def cache_dir() -> Path:
    return Path(hub().constants.HF_HUB_CACHE)


def _download_command(name: str) -> str:
    if not MODELS[name].downloadable:
        return "cadenza models make-tiny"
    return f"cadenza models download {name}"


def cached_path(repo_file: str) -> Path | None:
    """Where the cache holds ``repo_file`` (the snapshot of ``main``), or None. Never goes online."""
    found = hub().try_to_load_from_cache(REPO_ID, repo_file, cache_dir=str(cache_dir()))
    if isinstance(found, str) and os.path.isfile(found):
        return Path(found)
    return None


def snapshot_dir() -> Path | None:
    """The cached snapshot folder of ``main``, or None."""
    repo = cache_dir() / ("models--" + REPO_ID.replace("/", "--"))
    ref = repo / "refs" / "main"
    if not ref.is_file():
        return None
    snap = repo / "snapshots" / ref.read_text().strip()
    return snap if snap.is_dir() else None


def resolve(name: str) -> Path:
    """The checkpoint file of model ``name`` in the cache, or a ModelError naming it and the fix."""
    item = entry(name, "--model")
    if item.library_size is None:
        raise UsageError(f"{name!r} is not a model checkpoint; choose one of "
                         f"{', '.join(n for n, m in MODELS.items() if m.library_size)}", where="--model")
    (repo_file,) = item.files
    path = cached_path(repo_file)
    if path is None:
        raise ModelError(_missing([repo_file], name))
    return path


def resolve_resources() -> Path:
    """The cached ``resources/musiccoca`` folder with every TFLite tower, or a ModelError."""
    snap = snapshot_dir()
    folder = snap / "resources" / "musiccoca" if snap is not None else None
    missing = [f"resources/musiccoca/{f}" for f in MUSICCOCA_FILES
               if folder is None or not (folder / f).is_file()]
    if missing:
        raise ModelError(_missing(missing, "resources"))
    assert folder is not None
    return folder


def _missing(files: list[str], name: str) -> str:
    where = cache_dir()
    listed = ", ".join(files)
    msg = (f"missing {listed} of {REPO_ID} in the Hugging Face cache {where}; "
           f"get it with: {_download_command(name)}")
    if offline() and MODELS[name].downloadable:
        msg += " (HF_HUB_OFFLINE is set: unset it, or run the download on a machine that is online)"
    return msg


# ------------------------------------------------------------------ listing


@dataclass(frozen=True)
class Status:
    entry: ModelEntry
    cached_bytes: int  # of the files present
    complete: bool
    where: Path | None


def status(name: str) -> Status:
    item = MODELS[name]
    total = 0
    complete = True
    where: Path | None = None
    for repo_file in item.files:
        if repo_file.endswith("/"):
            snap = snapshot_dir()
            folder = snap / repo_file if snap is not None else None
            present = [folder / f for f in MUSICCOCA_FILES if folder is not None and (folder / f).is_file()]
            complete = complete and len(present) == len(MUSICCOCA_FILES)
            total += sum(p.stat().st_size for p in present)
            where = folder if present else where
        else:
            path = cached_path(repo_file)
            complete = complete and path is not None
            if path is not None:
                total += path.stat().st_size
                where = path
    return Status(item, total, complete, where)


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} GB"


# ----------------------------------------------------------------- download


@dataclass(frozen=True)
class RemoteFile:
    """A file of the repo as the Hub lists it."""

    path: str
    size: int
    blob: str  # its name in the cache's blobs/: the sha256 of an LFS file, the git blob id of any other


def remote_files(name: str) -> list[RemoteFile]:
    """Each file ``name`` needs, with its size and blob name, asked of the Hub."""
    item = entry(name, "models download")
    hf = hub()
    api = hf.HfApi()
    out: list[RemoteFile] = []
    try:
        for repo_file in item.files:
            if repo_file.endswith("/"):
                infos = list(api.list_repo_tree(REPO_ID, path_in_repo=repo_file.rstrip("/"), recursive=True))
            else:
                infos = api.get_paths_info(REPO_ID, [repo_file])
            for info in infos:
                if isinstance(info, hf.RepoFile):  # folders have no size and nothing to download
                    lfs = info.lfs
                    out.append(RemoteFile(info.path, int(lfs.size if lfs else info.size),
                                          lfs.sha256 if lfs else info.blob_id))
    except Exception as exc:  # noqa: BLE001 — HTTP answers, offline mode, httpx2 transport errors
        raise _hub_error(exc, f"the listing of {name}", retry="run the same command again") from None
    if not out:
        raise ModelError(f"the Hub at {hf.constants.ENDPOINT} lists no files for {name} under "
                         f"{', '.join(item.files)} in {REPO_ID}; check HF_ENDPOINT, or update cadenza")
    return out


def _blob_cached(blob: str) -> bool:
    return (cache_dir() / ("models--" + REPO_ID.replace("/", "--")) / "blobs" / blob).is_file()


def download(name: str, say: Callable[[str], None]) -> Path:
    """Download ``name`` into the cache; the path of what it needs.

    A connection that breaks mid-file is resumed by ``huggingface_hub`` in the
    same run (a Range request from the last whole 10 MiB it received; it gives
    up after 5 tries in a row that bring nothing). It keeps no partial file
    between runs: run again, files already downloaded are kept and a broken
    one starts over. Every failure is a one-line ModelError naming the fix.
    """
    item = entry(name, "models download")
    if not item.downloadable:
        raise UsageError(f"{name!r} is not on the Hub; build it with: cadenza models make-tiny",
                         where="models download")
    if offline():
        raise ModelError("offline (HF_HUB_OFFLINE is set): cannot download; unset HF_HUB_OFFLINE, "
                         "or copy the Hugging Face cache from a machine that has the files")
    files = remote_files(name)
    total = sum(f.size for f in files)
    have = sum(f.size for f in files if _blob_cached(f.blob))
    say(f"{name}: {len(files)} file(s), {human(total)} in all, {human(total - have)} to download "
        f"into {cache_dir()}")
    hf = hub()
    for f in files:
        say(f"  {f.path} ({human(f.size)}{', cached' if _blob_cached(f.blob) else ''})")
        try:
            hf.hf_hub_download(REPO_ID, f.path)
        except Exception as exc:  # noqa: BLE001 — HTTP answers, httpx2 transport errors, OSError of the disk
            over = "files already downloaded are kept, this one starts over" if len(files) > 1 else "it starts over"
            raise _hub_error(exc, f"the download of {f.path}", retry="run the same command again",
                             broken=f"run the same command again ({over})") from None
    if item.library_size:
        return resolve(name)
    try:
        return resolve_resources()
    except ModelError:
        listed = {f.path for f in files}
        lacking = [f"resources/musiccoca/{m}" for m in MUSICCOCA_FILES if f"resources/musiccoca/{m}" not in listed]
        raise ModelError(f"{REPO_ID} on {hf.constants.ENDPOINT} has no {', '.join(lacking)}, which cadenza "
                         "expects: check HF_ENDPOINT, or update cadenza") from None


def _hub_error(exc: Exception, what: str, retry: str, broken: str | None = None) -> ModelError:
    """One line for a failed Hub call: what failed, why, and the fix (``broken``: after a lost connection)."""
    hf = hub()
    errors = hf.errors
    endpoint = hf.constants.ENDPOINT
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return ModelError(f"offline (HF_HUB_OFFLINE is set): cannot reach the Hugging Face Hub for {what}; "
                          "unset HF_HUB_OFFLINE or copy the cache from a machine that has it")
    cause = exc.__cause__ if isinstance(exc, errors.LocalEntryNotFoundError) else None
    if isinstance(cause, Exception) and not isinstance(cause, errors.LocalEntryNotFoundError):
        exc = cause  # hf_hub_download's "cannot find the requested files in the local cache" wraps the real failure
    if isinstance(exc, errors.HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        said = "; ".join(line.strip() for line in (exc.server_message or "").splitlines() if line.strip())
        answer = f"HTTP {status}" + (f": {said}" if said else "")
        token = hf.get_token() is not None
        login = "set HF_TOKEN to an access token of your huggingface.co account (or run `hf auth login`)"
        if isinstance(exc, errors.GatedRepoError):
            answer = f"HTTP {status}"  # the Hub's long "access is restricted" text says no more than this line
            if token:
                return ModelError(f"{REPO_ID} is gated and the account of your token (HF_TOKEN or `hf auth login`) "
                                  f"has no access to it yet ({answer}): accept its terms at "
                                  f"https://huggingface.co/{REPO_ID}, then {retry}")
            return ModelError(f"{REPO_ID} is gated and no token was sent ({answer}): accept its terms at "
                              f"https://huggingface.co/{REPO_ID}, {login}, then {retry}")
        if status == 401:
            if token:
                return ModelError(f"the Hugging Face Hub refused your token (HF_TOKEN or `hf auth login`) for "
                                  f"{what} ({answer}): set HF_TOKEN to a valid access token of your huggingface.co "
                                  f"account, then {retry}")
            return ModelError(f"the Hugging Face Hub wants a token for {what} ({answer}): {login}, then {retry}")
        if status == 403:
            return ModelError(f"the Hugging Face Hub forbids {what} to your token ({answer}): set HF_TOKEN to a "
                              f"token with read access to {REPO_ID}, then {retry}")
        if status == 404:
            return ModelError(f"{what} failed: the Hub at {endpoint} has no such repo, revision or file ({answer}); "
                              "check HF_ENDPOINT, or update cadenza")
        return ModelError(f"the Hugging Face Hub failed {what} ({answer}): {retry} later")
    detail = " ".join(str(exc).split()) or "no detail"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return ModelError(f"no space left in {cache_dir()} for {what}: free some, or point HF_HUB_CACHE at a "
                          f"bigger disk, then {broken or retry}")
    if isinstance(exc, hf.errors.LocalEntryNotFoundError) or type(exc).__module__.startswith(("httpx", "httpcore")) \
            or isinstance(exc, OSError):
        return ModelError(f"{what} from {endpoint} failed: the connection broke or never came up "
                          f"({type(exc).__name__}: {detail}); check the network (or HF_ENDPOINT), then "
                          f"{broken or retry}")
    return ModelError(f"{what} from {endpoint} failed ({type(exc).__name__}: {detail}); {retry}")
