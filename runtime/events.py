"""Typed events: what happens in the music, each stamped with the stream time at which it is heard.

One job: declare the events that travel from where they happen to every
consumer, one frozen dataclass per kind, named as on the wire
(``proto/cadenza_v1.proto``: ``Beat``, ``StateChange``, ``Mix``,
``StingerFired``, ``Xrun``, ``Warning``) with the wire's field names::

    graph engine (graph/engine.py)  StateChange, StingerFired, StingerScheduled, StingerRefused,
                                    StateCancelled, Trigger, Clamped, Failsafe, FailsafeReleased, Warning
    conductor (conductor.py)        + BeatEvent, Warning (stinger voices)      → Block.events
    live engine (live.py)           + Xrun, Warning (faults, sinks), Mix (10 Hz)
        │
        ├─► server publisher: event_wire.to_wire → protobuf → events PUB
        └─► preview's event log: record → JSON lines

``time`` is stream seconds (the sample ``round(time · 48000)`` is the
``stream_time`` on the wire): for a beat the sample it falls on, for a state
change the moment it is (or will be) heard, for a warning the moment it was
noticed. Events that are not published on their own wire topic (a trigger, a
scheduled stinger, a cancelled state change) are still typed here: the preview
logs them, and :mod:`cadenza.runtime.event_wire` — the one place that builds
protobuf from events — says which become ``warning`` events and which stay
local. This module imports nothing from the package.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import ClassVar

__all__ = [
    "BeatEvent", "Clamped", "Event", "Failsafe", "FailsafeReleased", "Mix", "Phase", "StateCancelled",
    "StateChange", "StingerFired", "StingerRefused", "StingerScheduled", "Trigger", "Warning", "Xrun", "record",
]


class Phase(enum.Enum):
    """Where a state change is (the wire's ``StateChange.Phase``)."""

    SCHEDULED = "scheduled"  # quantized to a later beat or bar; ``time`` is when it will start
    STARTED = "started"  # the transition is heard from ``time``
    COMPLETED = "completed"  # the fade is over: the new state plays alone from ``time``
    CANCELLED = "cancelled"  # a scheduled change withdrawn by a later request at ``time``; it never starts


@dataclasses.dataclass(frozen=True)
class Event:
    """Something heard at ``time`` (stream seconds). ``kind`` names it in logs: the wire topic where it has one."""

    time: float
    kind: ClassVar[str] = "event"


@dataclasses.dataclass(frozen=True)
class BeatEvent(Event):
    """A beat of the bed (wire topic ``beat``; a downbeat, ``beat_in_bar == 0``, is also published as ``bar``)."""

    beat: int  # since the stream started
    bar: int
    beat_in_bar: int  # 0 = downbeat
    bpm: float
    estimated: bool = False  # predicted from the tempo, not rendered on a grid
    kind: ClassVar[str] = "beat"

    @property
    def downbeat(self) -> bool:
        return self.beat_in_bar == 0


@dataclasses.dataclass(frozen=True)
class StateChange(Event):
    """State ``previous`` → ``name``: scheduled (``time`` = its start), started, completed (fade over)."""

    name: str
    previous: str  # "" when there was none
    phase: Phase
    transition: str  # the mode: "blend" or "crossfade"
    fade_seconds: float
    kind: ClassVar[str] = "state"


@dataclasses.dataclass(frozen=True)
class StateCancelled(Event):
    """A scheduled change to ``name`` (due at ``at``) withdrawn by a newer request at ``time`` (for another state,
    whose SCHEDULED follows, or for the current one); on the wire a ``state`` event of phase CANCELLED."""

    name: str
    previous: str
    at: float
    kind: ClassVar[str] = "state_cancelled"


@dataclasses.dataclass(frozen=True)
class StingerFired(Event):
    """Stinger ``name`` starts at ``time`` and lasts ``duration_seconds`` (wire topic ``stinger``)."""

    name: str
    duration_seconds: float
    kind: ClassVar[str] = "stinger"


@dataclasses.dataclass(frozen=True)
class StingerScheduled(Event):
    """Stinger ``name``, asked for at ``time``, will start at ``at`` (its quantized beat or bar); not on the wire."""

    name: str
    at: float
    kind: ClassVar[str] = "stinger_scheduled"


@dataclasses.dataclass(frozen=True)
class StingerRefused(Event):
    """Stinger ``name`` refused: its cooldown has ``remaining`` seconds to go (a ``warning`` on the wire)."""

    name: str
    remaining: float
    kind: ClassVar[str] = "stinger_refused"


@dataclasses.dataclass(frozen=True)
class Trigger(Event):
    """Trigger ``name`` applied at ``time``; not on the wire (its state change and stinger are)."""

    name: str
    kind: ClassVar[str] = "trigger"


@dataclasses.dataclass(frozen=True)
class Clamped(Event):
    """Parameter ``name`` was set to ``value`` outside its range and clamped to ``clamped`` (a ``warning``)."""

    name: str
    value: float
    clamped: float
    kind: ClassVar[str] = "clamped"


@dataclasses.dataclass(frozen=True)
class Failsafe(Event):
    """No input for ``after`` seconds: parameters glide to their safe values over ``glide`` s (a ``warning``)."""

    after: float
    glide: float
    kind: ClassVar[str] = "failsafe"


@dataclasses.dataclass(frozen=True)
class FailsafeReleased(Event):
    """The first input after the failsafe (``kind`` set/trigger/state, ``name``) released it (a ``warning``)."""

    input: str
    name: str
    kind: ClassVar[str] = "failsafe_released"


@dataclasses.dataclass(frozen=True)
class Warning(Event):  # noqa: A001 — the wire's name; always used as events.Warning
    """Something the runtime did not honour or rode through (wire topic ``warning``); ``field`` says where."""

    message: str
    field: str = ""
    kind: ClassVar[str] = "warning"


@dataclasses.dataclass(frozen=True)
class Xrun(Event):
    """The output ran dry (wire topic ``xrun``): ``count`` since the start, ``frames_lost`` in this one."""

    count: int
    frames_lost: int
    source: str  # "device" (an underrun) or "stall" (the process was stopped)
    lookahead_ms: float | None = None  # the lookahead after it widened (device underruns); not on the wire
    previous_lookahead_ms: float | None = None
    kind: ClassVar[str] = "xrun"


@dataclasses.dataclass(frozen=True)
class Mix(Event):
    """The prompt weights playing at ``time`` (wire topic ``mix``, at most 10 a second)."""

    weights: Mapping[str, float]
    kind: ClassVar[str] = "mix"


def record(event: Event, sample_rate: int) -> dict[str, object]:
    """``event`` as a JSON-ready dict: ``event`` (its kind), ``time`` (seconds, to the µs), ``stream_time``
    (samples), then its fields by their names (a phase by its value: ``"scheduled"``)."""
    out: dict[str, object] = {"event": event.kind, "time": round(event.time, 6),
                              "stream_time": int(round(event.time * sample_rate))}
    for f in dataclasses.fields(event):
        if f.name == "time":
            continue
        value = getattr(event, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, float):
            value = round(value, 6)
        out[f.name] = value
    return out
