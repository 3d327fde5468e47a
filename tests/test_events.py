"""Typed events (runtime/events.py) and their one translation to the wire (runtime/event_wire.py).

What the tests prove: every event kind the runtime publishes becomes exactly
the wire messages the .proto documents (topic, stream time in samples,
payload), under the wire's own field names — a test reads the field names off
the protobuf descriptors, so a renamed field on either side fails here; the
kinds that stay local produce nothing; the preview's JSON record of an event
uses the same names.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from google.protobuf.message import Message

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.runtime import events as ev
from cadenza.runtime.event_wire import to_wire

SR = 48_000

#: one of each kind, with the messages it must be published as
PUBLISHED: list[tuple[ev.Event, list[tuple[str, object]]]] = [
    (ev.BeatEvent(1.5, 3, 0, 3, 120.0), [("beat", pb.Beat(beat=3, bar=0, beat_in_bar=3, bpm=120.0))]),
    (ev.BeatEvent(2.0, 4, 1, 0, 120.0, estimated=True),
     [("beat", pb.Beat(beat=4, bar=1, beat_in_bar=0, bpm=120.0, estimated=True)),
      ("bar", pb.Beat(beat=4, bar=1, beat_in_bar=0, bpm=120.0, estimated=True))]),
    *[(ev.StateChange(2.0, "combat", "explore", phase, "crossfade", 0.5),
       [("state", pb.StateChange(name="combat", previous="explore", phase=number, transition="crossfade",
                                 fade_seconds=0.5))])
      for phase, number in ((ev.Phase.SCHEDULED, pb.StateChange.SCHEDULED), (ev.Phase.STARTED, pb.StateChange.STARTED),
                            (ev.Phase.COMPLETED, pb.StateChange.COMPLETED))],
    (ev.StateCancelled(1.0, "combat", "explore", 2.0),  # stamped at the withdrawing request, not at 2.0
     [("state", pb.StateChange(name="combat", previous="explore", phase=pb.StateChange.CANCELLED))]),
    (ev.StingerFired(3.0, "victory", 2.5), [("stinger", pb.StingerFired(name="victory", duration_seconds=2.5))]),
    (ev.Xrun(0.25, 2, 960, "device", 45.0, 30.0), [("xrun", pb.Xrun(count=2, frames_lost=960, source="device"))]),
    (ev.Mix(0.1, {"calm": 0.25, "battle": 0.75}), [("mix", pb.Mix(weights={"calm": 0.25, "battle": 0.75}))]),
    (ev.Warning(1.0, "sink wav:x.wav failed", "wav:x.wav"),
     [("warning", pb.Warning(message="sink wav:x.wav failed", field="wav:x.wav"))]),
    (ev.Clamped(1.0, "danger", 1.5, 1.0),
     [("warning", pb.Warning(message="clamped: name=danger, value=1.5, clamped=1.0", field="danger"))]),
    (ev.StingerRefused(1.0, "victory", 3.0),
     [("warning", pb.Warning(message="stinger_refused: name=victory, remaining=3.0", field="victory"))]),
    (ev.Failsafe(60.0, 60.0, 5.0), [("warning", pb.Warning(message="failsafe: after=60.0, glide=5.0"))]),
    (ev.FailsafeReleased(61.0, "set", "danger"),
     [("warning", pb.Warning(message="failsafe_released: input=set, name=danger", field="danger"))]),
]
LOCAL = [ev.Trigger(1.0, "won"), ev.StingerScheduled(1.0, "victory", 2.0)]


@pytest.mark.parametrize(("event", "expected"), PUBLISHED, ids=lambda x: type(x).__name__ if isinstance(x, ev.Event) else "")
def test_each_published_event_is_the_documented_wire_message(event: ev.Event, expected: list[tuple[str, object]]) -> None:
    got = to_wire(event)
    assert [(topic, payload) for topic, _, payload in got] == expected
    assert all(st == round(event.time * SR) for _, st, _ in got)
    for topic, st, payload in got:  # and it encodes as an event the SDK side decodes
        decoded = wire.decode_event(wire.encode_event(topic, 1, st, payload))
        assert (decoded.topic.value, decoded.stream_time, decoded.payload) == (topic, st, payload)


@pytest.mark.parametrize("event", LOCAL, ids=lambda e: type(e).__name__)
def test_local_events_are_not_published(event: ev.Event) -> None:
    assert to_wire(event) == []


@pytest.mark.parametrize(("cls", "message"), [(ev.BeatEvent, pb.Beat), (ev.StateChange, pb.StateChange),
                                              (ev.StingerFired, pb.StingerFired), (ev.Xrun, pb.Xrun),
                                              (ev.Mix, pb.Mix), (ev.Warning, pb.Warning)])
def test_published_events_carry_every_wire_field_under_its_wire_name(cls: type[ev.Event],
                                                                      message: type[Message]) -> None:
    ours = {f.name for f in dataclasses.fields(cls)} - {"time"}
    theirs = set(message.DESCRIPTOR.fields_by_name)
    assert theirs <= ours, f"{cls.__name__} lacks the wire's {sorted(theirs - ours)}"
    assert wire.Topic(cls.kind).value == cls.kind  # its name in logs is its wire topic


def test_the_preview_record_uses_the_wire_names() -> None:
    rec = ev.record(ev.StateChange(2.5, "combat", "explore", ev.Phase.STARTED, "crossfade", 0.5), SR)
    assert rec == {"event": "state", "time": 2.5, "stream_time": 120_000, "name": "combat", "previous": "explore",
                   "phase": "started", "transition": "crossfade", "fade_seconds": 0.5}
    assert json.loads(json.dumps(ev.record(ev.Mix(0.1, {"a": 1.0}), SR)))["weights"] == {"a": 1.0}
    beat = ev.record(ev.BeatEvent(1.0, 2, 0, 2, 120.0), SR)
    assert beat["event"] == "beat" and beat["stream_time"] == SR and beat["beat_in_bar"] == 2
