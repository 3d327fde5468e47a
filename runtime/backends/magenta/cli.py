"""``cadenza models``: list, download and build Magenta RT 2 weights in the Hugging Face cache.

- ``cadenza models list``: each model, its size, whether the cache has it and where;
- ``cadenza models download mrt2_small|mrt2_base|resources``: sizes first, then
  ``huggingface_hub``'s progress bars (on a terminal); a connection that breaks
  mid-file resumes in the same run, and a download that gave up is run again
  (files already complete are kept, a partial one starts over);
- ``cadenza models make-tiny``: the random-weight ``tiny`` model (needs the
  ``magenta`` extra, no network).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cadenza.runtime.backends.magenta import weights


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cmd_list(args: argparse.Namespace) -> int:
    weights.hub()
    print(f"Hugging Face cache: {weights.cache_dir()}" + (" (offline: HF_HUB_OFFLINE)" if weights.offline() else ""))
    print(f"{'model':<11} {'size':>9}  {'cached':<9} description")
    for name in weights.MODELS:
        st = weights.status(name)
        size = weights.human(st.cached_bytes) if st.complete else f"~{weights.human(st.entry.approx_bytes)}"
        cached = "yes" if st.complete else ("partial" if st.cached_bytes else "no")
        print(f"{name:<11} {size:>9}  {cached:<9} {st.entry.summary}")
        if st.where is not None:
            print(f"{'':<11} {'':>9}  {'':<9} {st.where}")
    print("download: cadenza models download NAME    build tiny: cadenza models make-tiny")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    path = weights.download(args.name, _say)
    print(f"{args.name}: ready at {path}")
    return 0


def cmd_make_tiny(args: argparse.Namespace) -> int:
    from cadenza.runtime.backends.magenta import tiny

    try:
        path = tiny.build(seed=args.seed, say=_say)
    except ImportError as exc:
        from cadenza.errors import ModelError

        raise ModelError(f"building the tiny model needs magenta-rt ({exc}): {weights.INSTALL_HINT}") from None
    print(path)
    return 0


def add_models_command(sub: Any) -> argparse.ArgumentParser:
    """Add ``models`` to the ``cadenza`` command's subparsers; returns its parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "models", help="list and download Magenta RT 2 weights (Hugging Face cache)",
        description=f"Weights of the magenta backend, from the Hugging Face repo {weights.REPO_ID}, kept in the "
                    "standard Hugging Face cache (HF_HOME/HF_HUB_CACHE). HF_TOKEN and HF_HUB_OFFLINE are honoured.")
    msub = p.add_subparsers(dest="models_command", metavar="{list,download,make-tiny}", required=True)
    ls = msub.add_parser("list", help="each model: size, cached or not, where")
    ls.set_defaults(func=cmd_list)
    dl = msub.add_parser("download", help="download a model or the MusicCoCa resources (sizes first)")
    dl.add_argument("name", choices=[n for n, m in weights.MODELS.items() if m.downloadable])
    dl.set_defaults(func=cmd_download)
    mt = msub.add_parser("make-tiny", help="build the random-weight tiny model into the cache (offline)")
    mt.add_argument("--seed", type=int, default=0)
    mt.set_defaults(func=cmd_make_tiny)
    return p
