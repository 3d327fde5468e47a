"""Regenerate the Python code for the wire contract from ``cadenza_v1.proto``.

Run it after every edit of the ``.proto`` file and commit what it writes::

    python proto/generate.py            # rewrite proto/cadenza_v1_pb2.py and .pyi
    python proto/generate.py --check    # exit 1 when the committed files are stale

It runs ``python -m grpc_tools.protoc`` (the ``grpcio-tools`` package of the
``[dev]`` extra, which bundles its own ``protoc``), so the output depends only
on that package's version: the test suite regenerates into a temporary folder
and compares, byte for byte.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["HERE", "PROTO_FILES", "generate", "generated_names", "stale_files"]

HERE = Path(__file__).resolve().parent
PROTO_FILES = ("cadenza_v1.proto",)


def generated_names() -> list[str]:
    """The files :func:`generate` writes, relative to its output folder."""
    out = []
    for name in PROTO_FILES:
        stem = name.removesuffix(".proto")
        out += [f"{stem}_pb2.py", f"{stem}_pb2.pyi"]
    return out


def generate(out_dir: Path, *, python: str = sys.executable) -> list[Path]:
    """Compile every ``.proto`` file of this folder into ``out_dir``; returns the files written.

    Raises ``RuntimeError`` with protoc's own message when it fails (a syntax
    error in the ``.proto``, ``grpcio-tools`` missing).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "grpc_tools.protoc", f"--proto_path={HERE}",
           f"--python_out={out_dir}", f"--pyi_out={out_dir}", *PROTO_FILES]
    done = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
    if done.returncode != 0:
        hint = " (install it: pip install -e '.[dev]')" if "No module named" in done.stderr else ""
        raise RuntimeError(f"protoc failed{hint}: {' '.join(cmd)}\n{done.stderr.strip()}")
    return [out_dir / name for name in generated_names()]


def stale_files(committed_dir: Path = HERE) -> list[str]:
    """Names of the generated files in ``committed_dir`` that differ from a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = []
        for path in fresh:
            old = committed_dir / path.name
            if not old.exists() or old.read_bytes() != path.read_bytes():
                stale.append(path.name)
        return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 when any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for name in stale:
            print(f"stale: proto/{name} (run: python proto/generate.py)", file=sys.stderr)
        return 1 if stale else 0
    for path in generate(HERE):
        print(f"wrote proto/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
