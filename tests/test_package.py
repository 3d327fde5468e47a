"""The package layout: one ``cadenza`` namespace over the repository's folders, light imports, docs, errors.

* ``cadenza.runtime``, ``cadenza.sdk`` and ``cadenza.proto`` are the
  repository's ``runtime/``, ``sdk/`` and ``proto/`` folders (setuptools
  ``package-dir``), and every package folder is listed in ``pyproject.toml``
  (so a wheel would hold the same modules an editable install sees);
* the SDK imports without numba, sounddevice or jax (checked in a fresh
  interpreter); the synth backend does not pull in sounddevice; the backend
  registry and the CLI's argument parsing do not pull in numba;
* every module says its one job in a docstring; ``__all__`` names exist;
* every exception class the package defines is a :class:`CadenzaError`.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import cadenza
import cadenza.proto
import cadenza.runtime
import cadenza.sdk
from cadenza.errors import CadenzaError

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"cadenza": "cadenza", "cadenza.runtime": "runtime", "cadenza.sdk": "sdk", "cadenza.proto": "proto"}
HEAVY = ("numba", "llvmlite", "sounddevice", "_sounddevice", "jax", "jaxlib")


def walk(package: str, folder: Path) -> dict[str, Path]:
    """Module name → source file for ``package`` and everything under ``folder``, without importing any of it."""
    found = {package: folder / "__init__.py"}
    for info in pkgutil.iter_modules([str(folder)]):
        name = f"{package}.{info.name}"
        if info.ispkg:
            found.update(walk(name, folder / info.name))
        else:
            found[name] = folder / f"{info.name}.py"
    return found


def all_modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package, folder in ROOTS.items():
        out.update(walk(package, REPO / folder))
    return out


def imported_after(code: str) -> list[str]:
    """Which :data:`HEAVY` modules a fresh interpreter holds after running ``code``."""
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


# ----------------------------------------------------------------------------- layout


@pytest.mark.parametrize("package, folder", [(p, f) for p, f in ROOTS.items()])
def test_namespace_maps_the_repository_folders(package: str, folder: str) -> None:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == (REPO / folder / "__init__.py").resolve()


def test_every_package_folder_is_declared_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == ROOTS
    declared = set(config["packages"])
    on_disk = {name for name, path in all_modules().items() if path.name == "__init__.py"}
    assert on_disk == declared, f"missing from pyproject: {sorted(on_disk - declared)}; stale: {sorted(declared - on_disk)}"


def test_no_python_file_outside_a_package() -> None:
    """A .py file in a folder without __init__.py would be left out of the package silently."""
    found = {p.resolve() for p in all_modules().values()}
    for folder in ROOTS.values():
        for path in (REPO / folder).rglob("*.py"):
            assert path.resolve() in found, f"{path.relative_to(REPO)} is not reachable as a module"


# ----------------------------------------------------------------------------- import weight


def test_sdk_imports_without_numba_sounddevice_or_jax() -> None:
    assert imported_after("import cadenza.sdk") == []


def test_bare_package_is_light() -> None:
    assert imported_after("import cadenza, cadenza.errors") == []


def test_synth_backend_does_not_import_sounddevice() -> None:
    heavy = imported_after("import cadenza.runtime.backends.synth")
    assert "numba" in heavy  # the probe sees what it should
    assert "sounddevice" not in heavy and "_sounddevice" not in heavy
    assert "jax" not in heavy


def test_backend_registry_and_cli_parser_load_no_backend() -> None:
    """``cadenza --help`` and argument errors must not pay for numba (backends load when asked for)."""
    code = ("import cadenza.runtime.backends, cadenza.runtime.cli as cli\n"
            "cli.build_parser().parse_args(['render', '--prompt', 'x', '--out', 'y.wav'])")
    assert imported_after(code) == []


# ----------------------------------------------------------------------------- docstrings and __all__


@pytest.mark.parametrize("name", sorted(all_modules()))
def test_every_module_has_a_docstring(name: str) -> None:
    path = all_modules()[name]
    doc = ast.get_docstring(ast.parse(path.read_text(), filename=str(path)))
    assert doc and doc.strip(), f"{path.relative_to(REPO)} has no module docstring"


def _importable() -> list[str]:
    return sorted(n for n in all_modules() if n != "cadenza.__main__")  # __main__ runs the CLI


@pytest.mark.parametrize("name", _importable())
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    names = getattr(module, "__all__", None)
    if names is None:
        return
    assert len(names) == len(set(names)), f"{name}.__all__ repeats a name"
    missing = [n for n in names if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_top_level_all() -> None:
    assert "__version__" in cadenza.__all__
    for name in cadenza.__all__:
        assert hasattr(cadenza, name)
    assert cadenza.__version__ == importlib.metadata.version("cadenza")


# ----------------------------------------------------------------------------- errors


def test_every_exception_class_is_a_cadenza_error() -> None:
    seen = []
    for name in _importable():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                if issubclass(cls, (KeyboardInterrupt, SystemExit)):
                    continue  # control flow (a signal stopping a render), not an error a user reads
                seen.append(cls)
                assert issubclass(cls, CadenzaError), f"{name}.{cls.__name__} does not derive from CadenzaError"
    assert {c.__name__ for c in seen} >= {"UsageError", "PromptError", "GraphError", "ProtocolError", "ModelError",
                                          "AudioError"}


def test_errors_carry_where_and_are_exported() -> None:
    for name in ("UsageError", "PromptError", "GraphError", "ProtocolError", "ModelError", "AudioError"):
        cls = getattr(cadenza, name)
        assert issubclass(cls, CadenzaError) and cls is not CadenzaError
        err = cls("must be > 0, got -1", where="--seconds")
        assert str(err) == "--seconds: must be > 0, got -1"
        assert (err.message, err.where) == ("must be > 0, got -1", "--seconds")
        assert str(cls("plain")) == "plain"
    assert cadenza.sdk.CadenzaError is CadenzaError


def test_library_errors_are_cadenza_errors() -> None:
    from cadenza.runtime.backends import get_backend
    from cadenza.runtime.backends.base import Controls

    with pytest.raises(CadenzaError, match="Available: \\['magenta', 'synth'\\]"):
        get_backend("nope")
    with pytest.raises(CadenzaError, match="bpm"):
        Controls(bpm=-5)



WITHOUT_MAGENTA = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):  # as if `pip install cadenza` without the [magenta] extra
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("jax", "jaxlib", "flax", "magenta_rt", "huggingface_hub"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
"""


def test_without_the_magenta_extra_the_synth_plays_and_magenta_says_how_to_install(tmp_path: Path) -> None:
    code = WITHOUT_MAGENTA + (
        "from cadenza.errors import ModelError\n"
        "from cadenza.runtime.backends import get_backend, BACKENDS\n"
        "import cadenza.runtime.cli as cli\n"
        "assert cli.build_parser().parse_args(['serve']).backend == 'synth'\n"
        "assert get_backend('synth').name == 'synth'\n"
        "try:\n"
        "    get_backend('magenta', model='tiny')\n"
        "except ModelError as exc:\n"
        "    print('ERR', exc)\n"
        f"rc = cli.main(['render', '--prompt', 'dark techno', '--seconds', '1', '--out', {str(tmp_path / 'a.wav')!r}])\n"
        "print('RC', rc)\n"
        "rc = cli.main(['models', 'list'])\n"
        "print('RC', rc)\n"
        "print('LOADED', sorted(m for m in ('jax', 'jaxlib', 'magenta_rt', 'huggingface_hub') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "ERR" in out and "pip install 'cadenza[magenta]'" in out
    assert out.count("RC 0") == 1 and "RC 2" in out  # render works; models list explains
    assert "LOADED []" in out
    assert "pip install 'cadenza[magenta]'" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "a.wav").stat().st_size > 100_000
