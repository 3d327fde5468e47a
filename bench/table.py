"""The one results table: the :class:`Row` every benchmark module returns, and its Markdown.

A benchmark module exposes ``rows(quick: bool) -> list[Row]``; :mod:`bench.run`
calls each registered module and writes one table. A row's ``value`` and
``baseline`` are already formatted (units included); ``ratio`` is value ÷
baseline as the row defines it; ``met`` is True/False against ``goal``, or
None for a row without a goal (a detail or a baseline). ``runs`` is how many
repeated measurements the median in ``value`` is taken over.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass
from pathlib import Path

HEADER = ("figure", "value", "baseline (same run)", "ratio", "goal", "met?", "runs")


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    goal: str = ""
    met: bool | None = None
    runs: int | None = None
    note: str = ""  # a footnote under the table (what exactly is measured, why a goal is missed)

    @classmethod
    def not_run(cls, figure: str, reason: str, goal: str = "") -> Row:
        """A row that could not be measured here (a missing optional extra, no JACK): says why, never a number."""
        return cls(figure, f"not run: {reason}", goal=goal)

    @classmethod
    def failed(cls, figure: str, error: BaseException, goal: str = "") -> Row:
        return cls(figure, f"failed: {type(error).__name__}: {error}", goal=goal, met=False)

    def cells(self) -> tuple[str, ...]:
        met = "" if self.met is None else ("yes" if self.met else "NO")
        return (self.figure, self.value, self.baseline, self.ratio, self.goal, met,
                "" if self.runs is None else str(self.runs))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_cell(c) for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """CPU model, cores, Python, pyzmq/libzmq, OS — the line every result file starts with."""
    try:
        import zmq

        zmq_v = f", pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}"
    except ImportError:
        zmq_v = ""
    return (f"{cpu_model()}, {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}"
            f"{zmq_v}, {platform.system()} {platform.release()}")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
