"""Magenta RT 2 weights: which files each model needs, where the Hugging Face cache has them, downloads.

The weights live in the Hugging Face repo ``google/magenta-realtime-2``;
Cadenza keeps them in the standard Hugging Face cache (``HF_HOME`` /
``HF_HUB_CACHE``, ``~/.cache/huggingface/hub`` by default), so a cache other
tools filled is reused and ``huggingface_hub`` does the downloading: progress
bars, resume of a broken download, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` all
behave as they do everywhere else.

Looking a model up never touches the network (:func:`resolve`): a missing
file is a :class:`~cadenza.errors.ModelError` that names it and the exact
``cadenza models download`` command. Only :func:`download` goes online.

Imports ``huggingface_hub`` lazily and never jax: ``cadenza models list``
works without an accelerator stack.
"""

from __future__ import annotations

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


def remote_files(name: str) -> list[tuple[str, int]]:
    """(repo path, size in bytes) of each file ``name`` needs, asked of the Hub."""
    item = entry(name, "models download")
    hf = hub()
    api = hf.HfApi()
    out: list[tuple[str, int]] = []
    try:
        for repo_file in item.files:
            if repo_file.endswith("/"):
                for info in api.list_repo_tree(REPO_ID, path_in_repo=repo_file.rstrip("/"), recursive=True):
                    if getattr(info, "size", None) is not None and not info.path.endswith("/"):
                        out.append((info.path, int(info.size)))
            else:
                for info in api.get_paths_info(REPO_ID, [repo_file]):
                    out.append((info.path, int(getattr(info, "size", 0) or 0)))
    except hf.errors.OfflineModeIsEnabled:
        raise ModelError("offline (HF_HUB_OFFLINE is set): cannot reach the Hugging Face Hub to download "
                         f"{name}; unset HF_HUB_OFFLINE or copy the cache from a machine that has it") from None
    except hf.errors.GatedRepoError:
        raise ModelError(f"{REPO_ID} needs you to accept its terms on huggingface.co and a token: "
                         "set HF_TOKEN or run `hf auth login`") from None
    except hf.errors.HfHubHTTPError as exc:
        raise ModelError(f"the Hugging Face Hub refused the listing of {REPO_ID}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 — connection errors come as httpx/requests/OSError types
        raise ModelError(f"cannot reach the Hugging Face Hub ({type(exc).__name__}: {exc}); "
                         "check the network, or set HF_ENDPOINT for a mirror") from None
    if not out:
        raise ModelError(f"the Hub lists no files for {name} under {', '.join(item.files)} in {REPO_ID}")
    return out


def download(name: str, say: Callable[[str], None]) -> Path:
    """Download ``name`` into the cache (resuming partial files); the path of what it needs."""
    item = entry(name, "models download")
    if not item.downloadable:
        raise UsageError(f"{name!r} is not on the Hub; build it with: cadenza models make-tiny",
                         where="models download")
    if offline():
        raise ModelError("offline (HF_HUB_OFFLINE is set): cannot download; unset HF_HUB_OFFLINE, "
                         "or copy the Hugging Face cache from a machine that has the files")
    files = remote_files(name)
    total = sum(size for _, size in files)
    have = sum(size for path, size in files if cached_path(path) is not None)
    say(f"{name}: {len(files)} file(s), {human(total)} in all, {human(total - have)} to download "
        f"into {cache_dir()}")
    hf = hub()
    last: Path | None = None
    for path, size in files:
        say(f"  {path} ({human(size)})")
        try:
            last = Path(hf.hf_hub_download(REPO_ID, path))
        except hf.errors.HfHubHTTPError as exc:
            raise ModelError(f"download of {path} failed: {exc}; run the same command again to resume") from None
        except Exception as exc:  # noqa: BLE001 — connection errors come as httpx/requests/OSError types
            raise ModelError(f"download of {path} failed ({type(exc).__name__}: {exc}); "
                             "run the same command again to resume") from None
    assert last is not None
    return resolve(name) if item.library_size else resolve_resources()
