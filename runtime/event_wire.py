"""Typed events → the wire's event payloads: the one place where an event becomes protobuf.

One job: :func:`to_wire` turns a :mod:`cadenza.runtime.events` event into
what the events PUB sends — ``(topic, stream_time, payload)`` for each
message, the stream time in samples at which it is heard. The server's
publisher adds the per-topic sequence and the envelope (``wire.encode_event``).

=====================================  ==============================================
event                                  published as
=====================================  ==============================================
BeatEvent                              ``beat``; a downbeat also ``bar`` (same sample)
StateChange                            ``state`` (phase SCHEDULED / STARTED / COMPLETED)
StateCancelled                         ``state`` (phase CANCELLED, at the withdrawing request)
StingerFired                           ``stinger``
Xrun                                   ``xrun``
Mix                                    ``mix``
Warning                                ``warning`` (``field`` = where)
Clamped, Failsafe, FailsafeReleased,   ``warning``: ``"KIND: field=value, …"``, ``field``
StingerRefused                         = the parameter or stinger name
Trigger, StingerScheduled             nothing (the preview's event log has them)
=====================================  ==============================================
"""

from __future__ import annotations

import dataclasses

from google.protobuf.message import Message

from cadenza.proto.cadenza_v1_pb2 import Beat, Mix, StateChange, StingerFired, Warning, Xrun
from cadenza.runtime import events as ev
from cadenza.runtime.backends.base import SAMPLE_RATE

__all__ = ["to_wire"]

_PHASES = {ev.Phase.SCHEDULED: StateChange.SCHEDULED, ev.Phase.STARTED: StateChange.STARTED,
           ev.Phase.COMPLETED: StateChange.COMPLETED, ev.Phase.CANCELLED: StateChange.CANCELLED}
_AS_WARNING = (ev.Clamped, ev.Failsafe, ev.FailsafeReleased, ev.StingerRefused)


def to_wire(event: ev.Event) -> list[tuple[str, int, Message]]:
    """The messages ``event`` is published as: ``(topic, stream_time, payload)`` each; ``[]`` for local ones."""
    st = max(0, int(round(event.time * SAMPLE_RATE)))
    if isinstance(event, ev.BeatEvent):
        beat = Beat(beat=event.beat, bar=event.bar, beat_in_bar=event.beat_in_bar, bpm=event.bpm,
                    estimated=event.estimated)
        return [("beat", st, beat), *([("bar", st, beat)] if event.downbeat else [])]
    if isinstance(event, ev.StateChange):
        return [("state", st, StateChange(name=event.name, previous=event.previous, phase=_PHASES[event.phase],
                                          transition=event.transition, fade_seconds=event.fade_seconds))]
    if isinstance(event, ev.StateCancelled):  # stamped where the request that withdrew it acts
        return [("state", st, StateChange(name=event.name, previous=event.previous, phase=StateChange.CANCELLED))]
    if isinstance(event, ev.StingerFired):
        return [("stinger", st, StingerFired(name=event.name, duration_seconds=event.duration_seconds))]
    if isinstance(event, ev.Xrun):
        return [("xrun", st, Xrun(count=event.count, frames_lost=event.frames_lost, source=event.source))]
    if isinstance(event, ev.Mix):
        return [("mix", st, Mix(weights={k: float(v) for k, v in event.weights.items()}))]
    if isinstance(event, ev.Warning):
        return [("warning", st, Warning(message=event.message, field=event.field))]
    if isinstance(event, _AS_WARNING):
        values = {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.name != "time"}
        message = f"{event.kind}: " + ", ".join(f"{k}={v}" for k, v in values.items())
        return [("warning", st, Warning(message=message, field=str(values.get("name", ""))))]
    return []
