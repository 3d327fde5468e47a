"""Offline preview of a style graph: automation → graph → conductor → audio, plus a plot and an event log.

What a sound designer runs to see and hear a graph without a game
(``cadenza render --graph FILE --automation timeline.csv``). The audio goes
to a sink block by block; per control tick it records the time, state,
weights, controls and parameters for the plot; the event log (JSON lines,
:func:`cadenza.runtime.events.record`) holds the typed events — state changes
(``state`` with ``phase`` scheduled / started / completed, ``name``,
``previous``, ``transition``), stingers, failsafe, beats — under the wire's
names, each with the time and the sample (``stream_time``) at which it is heard.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cadenza.runtime import events as ev
from cadenza.runtime.backends.base import SAMPLE_RATE, Backend, Beat
from cadenza.runtime.conductor import Conductor
from cadenza.runtime.graph.automation import Automation
from cadenza.runtime.graph.spec import Graph
from cadenza.runtime.sinks.base import Sink


@dataclass
class PreviewLog:
    """What the preview saw, one row per control tick."""

    times: list[float] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    weights: dict[str, list[float]] = field(default_factory=dict)
    controls: dict[str, list[float]] = field(default_factory=dict)
    params: dict[str, list[float]] = field(default_factory=dict)
    events: list[ev.Event] = field(default_factory=list)
    beats: list[Beat] = field(default_factory=list)  # every beat heard, as ``render --beats`` writes them
    frames: int = 0
    #: when each SCHEDULED state change was announced (id of the event → seconds: the control tick that applied
    #: the request, when a live subscriber gets it); its ``time`` is when it will start, as on the wire
    announced: dict[int, float] = field(default_factory=dict)

    def record(self, t: float, state: str, weights: dict[str, float], controls: dict[str, object],
               params: dict[str, object]) -> None:
        i = len(self.times)
        self.times.append(t)
        self.states.append(state)
        for table, values in ((self.weights, weights), (self.controls, controls), (self.params, params)):
            for k, v in values.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    continue
                col = table.setdefault(k, [float("nan")] * i)
                col.append(float(v))
            for col in table.values():
                if len(col) < i + 1:
                    col.append(float("nan") if table is not self.weights else 0.0)


def check_automation(graph: Graph, automation: Sequence[Automation], source: str = "automation") -> None:
    """Every row of a timeline applied to a scratch engine first: a bad row fails before any audio."""
    from cadenza.errors import UsageError
    from cadenza.runtime.graph.engine import GraphEngine

    engine = GraphEngine(graph)
    for row in automation:
        try:
            if row.action == "set":
                engine.set(row.name, row.value, at=row.time, ramp=row.ramp)
            elif row.action == "trigger":
                engine.trigger(row.name, at=row.time)
            else:
                engine.set_state(row.name, at=row.time)
        except UsageError as exc:
            raise UsageError(str(exc), where=f"{source}:{row.line}") from None


def run_preview(graph: Graph, backend: Backend, automation: Sequence[Automation], seconds: float, sink: Sink,
                seed: int = 0, progress: Callable[[int], None] | None = None,
                warn: Callable[[str], None] | None = None) -> PreviewLog:
    """Play ``graph`` through the conductor for ``seconds`` into ``sink``; ``warn`` hears what the backend said
    about the prompts (unknown words), as LoadGraph's reply says it."""
    conductor = Conductor(graph, backend, seed=seed)
    if warn is not None:
        for warning in conductor.mixer.warnings:
            warn(warning)
    log = PreviewLog()
    for block in conductor.run(automation, seconds):
        sink.write(block.pcm)
        fr = block.frame_info
        log.record(block.frame / SAMPLE_RATE, fr.state or "", dict(fr.weights), dict(fr.controls), dict(fr.params))
        log.events.extend(block.events)
        for e in block.events:
            if isinstance(e, ev.StateChange) and e.phase is ev.Phase.SCHEDULED:
                log.announced.setdefault(id(e), block.frame / SAMPLE_RATE)
        log.beats.extend(block.beats)
        log.frames += block.pcm.shape[0]
        if progress is not None:
            progress(block.pcm.shape[0])
    log.events.sort(key=lambda e: e.time)
    return log


def write_events(log: PreviewLog, path: Path) -> None:
    """The event log as JSON lines (wire names; ``time``/``stream_time`` = when heard, a SCHEDULED change's = when
    it will start, as PROTOCOL.md says), in time order; a SCHEDULED line adds ``announced``: when it was announced
    (the tick that applied the request)."""
    with path.open("w") as f:
        for event in log.events:
            rec = ev.record(event, SAMPLE_RATE)
            if id(event) in log.announced:
                rec["announced"] = round(log.announced[id(event)], 6)
            f.write(json.dumps(rec) + "\n")


def plot_preview(log: PreviewLog, path: Path, title: str = "") -> None:
    """Weights, controls and parameters over time, with states, bars and transition starts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cadenza.runtime.graph.plot import unit_range

    t = np.asarray(log.times)
    fig, axes = plt.subplots(3, 1, figsize=(14, 9), sharex=True, gridspec_kw={"height_ratios": [3, 2, 2]})
    ax_w, ax_c, ax_p = axes
    for name, col in sorted(log.weights.items()):
        ax_w.plot(t, col, label=name, lw=1.4)
    ax_w.set_ylabel("prompt weight")
    ax_w.set_ylim(-0.02, 1.02)
    for name, col in sorted(log.controls.items()):
        arr, label = unit_range(name, col)
        ax_c.plot(t, arr, label=label, lw=1.2)
    ax_c.set_ylabel("controls (normalized)")
    for name, col in sorted(log.params.items()):
        arr, label = unit_range(name, col)
        ax_p.plot(t, arr, label=label, lw=1.2)
    ax_p.set_ylabel("parameters (normalized)")
    ax_p.set_xlabel("seconds")
    # states as shaded bands, labelled
    palette = plt.get_cmap("Pastel1")
    names = list(dict.fromkeys(log.states))
    start = 0
    for i in range(1, len(log.states) + 1):
        if i == len(log.states) or log.states[i] != log.states[start]:
            c = palette(names.index(log.states[start]) % 9)
            for ax in axes:
                ax.axvspan(t[start], t[min(i, len(t) - 1)], color=c, alpha=0.35, lw=0)
            if log.states[start]:
                ax_w.text(t[start], 1.0, log.states[start], va="top", fontsize=9)
            start = i
    for event in log.events:
        x = event.time
        if isinstance(event, ev.BeatEvent) and event.downbeat:
            for ax in axes:
                ax.axvline(x, color="0.6", lw=0.5, ls=":")
        elif isinstance(event, ev.StateChange) and event.phase is ev.Phase.STARTED:
            for ax in axes:
                ax.axvline(x, color="crimson", lw=1.2)
        elif isinstance(event, ev.StingerFired):
            for ax in axes:
                ax.axvline(x, color="darkorange", lw=1.2, ls="--")
            ax_w.text(x, 0.05, f"stinger {event.name}", rotation=90, fontsize=8, color="darkorange")
    for ax in axes:
        ax.legend(loc="upper right", fontsize=8, ncol=3)
        ax.grid(alpha=0.2)
    ax_w.set_title(title or "graph preview: bars dotted, transitions red, stingers orange")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
