"""The runtime logs through ``logging`` and the CLI decides what reaches stderr (runtime/logs.py)."""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadenza.runtime import logs

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"


@pytest.fixture
def restore_cadenza_logger() -> Iterator[None]:
    root = logging.getLogger("cadenza")
    handlers, level, propagate = list(root.handlers), root.level, root.propagate
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    root.propagate = propagate


def test_configure_writes_command_lines_at_the_level_asked(
        capsys: pytest.CaptureFixture[str], restore_cadenza_logger: None) -> None:
    logs.configure("serve", "warning")
    log = logging.getLogger("cadenza.runtime.somewhere")
    log.info("not shown")
    log.warning("shown: %d", 3)
    logs.configure("osc", "info")  # again: replaces the handler, never a second line per record
    log.info("now shown")
    assert capsys.readouterr().err.splitlines() == ["cadenza serve: shown: 3", "cadenza osc: now shown"]


def test_every_runtime_logger_is_named_for_its_module() -> None:
    """``logging.getLogger(__name__)`` (or a child of it), never a name made up: the CLI's handler on ``cadenza``
    and ``--log-level`` then reach every module."""
    odd = []
    for path in RUNTIME.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "getLogger" and node.args):
                arg = node.args[0]
                named = (isinstance(arg, ast.Name) and arg.id == "__name__") or (
                    isinstance(arg, ast.BinOp) and isinstance(arg.left, ast.Name) and arg.left.id == "__name__")
                # the package's root (logs.configure) and a library's own logger (magenta_rt's progress) are fine
                other = isinstance(arg, ast.Constant) and (arg.value == "cadenza"
                                                           or not str(arg.value).startswith("cadenza"))
                if not named and not other:
                    odd.append(f"{path.relative_to(RUNTIME)}:{node.lineno}")
    assert not odd, f"loggers not named after their module: {odd}"
