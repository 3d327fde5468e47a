"""Automation timelines: CSV files of timestamped inputs for offline previews of a graph.

Format (a header line, then one input per row; ``#`` starts a comment)::

    time,action,name,value,ramp
    0,set,danger,0
    10,set,danger,0.8,2.5        # ramp over 2.5 s
    12,trigger,enemy_killed
    20,state,combat
    30,set,zone,cave

``action`` is ``set`` (a parameter; ``value`` required, ``ramp`` optional
seconds), ``trigger`` or ``state`` (``name`` is the trigger or the state).
Rows must be in time order. Every error names the file, the line and the bad
value.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from cadenza.errors import UsageError

ACTIONS = ("set", "trigger", "state")
MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Automation:
    """One timestamped input of a timeline."""

    time: float
    action: str  # set | trigger | state
    name: str
    value: float | str | None = None
    ramp: float | None = None
    line: int = 0


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v


def parse_automation(text: str, source: str = "<automation>") -> list[Automation]:
    rows: list[Automation] = []
    lines = [ln.split("#", 1)[0] for ln in text.splitlines()]
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header_seen = False
    last_time = -math.inf
    for lineno, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if not header_seen:
            header_seen = True
            if [c.lower() for c in cells[:3]] != ["time", "action", "name"]:
                raise UsageError(f"the first line must be the header 'time,action,name,value,ramp', got {row!r}",
                                 where=f"{source}:{lineno}")
            continue
        where = f"{source}:{lineno}"
        if len(cells) < 3:
            raise UsageError(f"expected time,action,name[,value[,ramp]], got {row!r}", where=where)
        t = _number(cells[0])
        if t is None or not math.isfinite(t) or t < 0:
            raise UsageError(f"time must be a finite number of seconds >= 0, got {cells[0]!r}", where=where)
        if t < last_time:
            raise UsageError(f"rows must be in time order ({t:g} after {last_time:g})", where=where)
        last_time = t
        action = cells[1].lower()
        if action not in ACTIONS:
            raise UsageError(f"unknown action {cells[1]!r}; use one of {', '.join(ACTIONS)}", where=where)
        name = cells[2]
        if not name:
            raise UsageError("empty name", where=where)
        value: float | str | None = None
        ramp: float | None = None
        if action == "set":
            if len(cells) < 4 or cells[3] == "":
                raise UsageError(f"'set' of {name!r} needs a value", where=where)
            num = _number(cells[3])
            value = num if num is not None else cells[3]  # a label of a labeled parameter
            if len(cells) >= 5 and cells[4] != "":
                ramp = _number(cells[4])
                if ramp is None or not math.isfinite(ramp) or ramp < 0:
                    raise UsageError(f"ramp must be seconds >= 0, got {cells[4]!r}", where=where)
        rows.append(Automation(t, action, name, value, ramp, lineno))
    if not header_seen:
        raise UsageError("empty automation file (expected the header 'time,action,name,value,ramp')", where=source)
    return rows


def load_automation(path: str | Path) -> list[Automation]:
    from cadenza.runtime.files import FileRefused, read_bytes

    p = Path(path)
    if not p.exists():
        raise UsageError(f"automation file not found: {str(p)!r}", where="--automation")
    try:  # a regular file, bounded in size and time: a FIFO or a device is refused, never waited on
        text = read_bytes(p, where="--automation", max_bytes=MAX_BYTES).decode("utf-8")
    except FileRefused as exc:
        raise UsageError(exc.message, where="--automation") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read automation file {str(p)!r}: not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})", where="--automation") from None
    return parse_automation(text, p.name)
