"""No import cycle among the cadenza.* modules, lazy (function-level) imports included.

The package is read with :mod:`ast` (nothing is imported): every ``import``
and ``from … import`` that names a ``cadenza`` module becomes an edge from the
module that holds it, wherever in the module it stands — a lazy import inside
a function is still a tie between the two modules. Imports under
``if TYPE_CHECKING:`` are left out (they never run). The graph must be
acyclic: the layers stay one-way (inputs → graph → conductor → backend →
mixer → sinks; the CLI on top, :mod:`cadenza.runtime.audio` and
:mod:`cadenza.errors` at the bottom).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the package as it is imported: cadenza.runtime etc. live in their own folders
PACKAGES = {"cadenza": ROOT / "cadenza", "cadenza.runtime": ROOT / "runtime", "cadenza.sdk": ROOT / "sdk",
            "cadenza.proto": ROOT / "proto"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The cadenza modules ``module`` imports anywhere in its body (not under TYPE_CHECKING)."""
    out: set[str] = set()

    def target(name: str) -> str | None:
        while name and name not in known:  # a name imported from a module: the module
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                t = target(alias.name)
                if t:
                    out.add(t)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                t = target(f"{base}.{alias.name}") if base else None
                if t:
                    out.add(t)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(module)
    return out


def import_graph() -> dict[str, set[str]]:
    """``{module: the cadenza modules it imports}`` for every module of the package."""
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = _imports(tree, name, path.name == "__init__.py", known)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, …, a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "cadenza.runtime.cli" in graph and "cadenza.runtime.server" in graph["cadenza.runtime.cli"]
    assert "cadenza.runtime.audio" in graph["cadenza.runtime.sinks.device"]


def test_no_import_cycle() -> None:
    cycle = _cycle(import_graph())
    assert cycle is None, (
        "import cycle: " + " -> ".join(cycle or []) + "; move what both need into a module below them both")
