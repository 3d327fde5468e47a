"""What is wrong with a graph file: :class:`GraphIssue` (where and what) and :class:`InvalidGraph` (all of them).

Below both the loader and the runnable check (which finds what the backend
would refuse), so that either can report without importing the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from cadenza.errors import GraphError

__all__ = ["GraphIssue", "InvalidGraph"]


@dataclass(frozen=True)
class GraphIssue:
    """One problem of a graph file: where it is (file, line, dotted path) and what is wrong."""

    file: str
    line: int | None  # 1-based; None for the whole file (size, encoding)
    path: str  # "mix[1].weight.curve.points[1]"; "" for the file or its syntax
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InvalidGraph(GraphError):
    """A graph file with problems; ``issues`` lists every one, ``str()`` prints one per line."""

    def __init__(self, issues: Iterable[GraphIssue]) -> None:
        # by line; issues of the whole file (and "stopped after ...") last
        self.issues: list[GraphIssue] = sorted(issues, key=lambda i: math.inf if i.line is None else i.line)
        super().__init__("\n".join(str(i) for i in self.issues))
