"""Stinger voices: more stingers than ``MAX_STINGER_VOICES`` starting in one tick, and a stolen voice.

The first requested play; each trigger whose stinger gets no voice is told so in
its reply (``stinger_refused: … gets no voice``, :meth:`Conductor.claim_voice`),
never a copy of one stinger stacked over the others; the warning of a stolen
voice is stamped where the stinger that took it starts. Unit tests drive a
:class:`~cadenza.runtime.conductor.Conductor` on the synth backend as the
server does (trigger, then claim); one test goes through a real ``cadenza serve``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.runtime import events as ev
from cadenza.runtime.backends import get_backend
from cadenza.runtime.backends.base import SAMPLE_RATE
from cadenza.runtime.conductor import Conductor
from cadenza.runtime.graph.loader import loads_graph
from cadenza.runtime.limits import MAX_STINGER_VOICES
from tests.server_harness import serving

GRAPH = """\
cadenza_graph: 1
name: voices
prompts:
  p1: "dark techno"
  s1: "drum fill"
  s2: "brass hit"
  s3: "glitch noise"
  s4: "choir swell"
  s5: "bell"
mix:
  - {prompt: p1, weight: 1}
stingers:
  st1: {prompt: s1, quantize: now, length: 2 beats, cooldown: 0}
  st2: {prompt: s2, quantize: now, length: 2 beats, cooldown: 0}
  st3: {prompt: s3, quantize: now, length: 1 bar, cooldown: 0}
  st4: {prompt: s4, quantize: beat, length: 1 bar, cooldown: 0}
  st5: {prompt: s5, quantize: now, length: 3 beats, cooldown: 0}
triggers:
  t1: {stinger: st1}
  t2: {stinger: st2}
  t3: {stinger: st3}
  t4: {stinger: st4}
  t5: {stinger: st5}
"""


def _conductor() -> Conductor:
    c = Conductor(loads_graph(GRAPH, "voices.yaml"), get_backend("synth"), seed=0)
    for _ in range(30):  # a few beats of bed: the clock knows the grid, st4 quantizes to the next beat
        c.step()
    return c


def _fire(c: Conductor, trigger: str) -> tuple[str, int] | None:
    """What the server does for a Trigger: queue it, then claim its stinger's voice."""
    c.engine.trigger(trigger)
    return c.claim_voice(trigger)


def _run(c: Conductor, seconds: float) -> list[ev.Event]:
    out: list[ev.Event] = []
    for _ in range(int(seconds * c.rate)):
        out += c.step().events
    return out


def test_of_105_triggers_at_once_each_stinger_plays_once_and_every_other_reply_says_it_does_not() -> None:
    c = _conductor()
    names = ["t1", "t2", "t3", "t4", "t5"] * 21  # the outside tester's burst (cooldown 0), all before one tick
    answers = [_fire(c, t) for t in names]
    assert answers[:5] == [None] * 5  # one of each: st1, st2, st3, st5 now, st4 on the next beat
    assert all(a is not None and a[1] == 0 for a in answers[5:]), answers[5:10]  # copies at the same sample
    events = _run(c, 1.0)
    fired = [e for e in events if isinstance(e, ev.StingerFired)]
    assert sorted(e.name for e in fired) == ["st1", "st2", "st3", "st4", "st5"], fired  # no stacked copies
    warned = [e for e in events if isinstance(e, ev.Warning) and "not played" in e.message]
    assert sum(int(e.message.split()[0]) for e in warned) == 100, warned
    assert len(c.stingers) <= MAX_STINGER_VOICES


def test_more_distinct_stingers_than_voices_in_one_tick_the_first_requested_play() -> None:
    text = GRAPH + "".join(f"  u{i}: {{stinger: x{i}}}\n" for i in range(6))
    text = text.replace("triggers:\n", "".join(f"  x{i}: {{prompt: s1, quantize: now, length: 1 beat, "
                                                 f"cooldown: 0}}\n" for i in range(6)) + "triggers:\n")
    c = Conductor(loads_graph(text, "voices.yaml"), get_backend("synth"), seed=0)
    c.step()
    answers = [_fire(c, f"u{i}") for i in range(6)]
    assert answers == [None] * MAX_STINGER_VOICES + [(f"x{i}", MAX_STINGER_VOICES) for i in range(4, 6)]
    events = _run(c, 0.1)
    assert [e.name for e in events if isinstance(e, ev.StingerFired)] == [f"x{i}" for i in range(4)]
    warned = [e for e in events if isinstance(e, ev.Warning) and "not played" in e.message]
    assert len(warned) == 1 and warned[0].message.startswith("2 stinger(s) (x4, x5) not played"), warned


def test_a_stinger_in_a_later_tick_gets_a_voice_by_stealing_and_the_cut_is_stamped_where_it_starts() -> None:
    c = _conductor()
    for t in ("t1", "t2", "t3", "t5"):
        assert _fire(c, t) is None
    _run(c, 0.05)
    assert _fire(c, "t4") is None  # a later tick: it steals the oldest voice (quantized to the next beat)
    events = _run(c, 1.0)
    st4 = next(e for e in events if isinstance(e, ev.StingerFired) and e.name == "st4")
    cut = [e for e in events if isinstance(e, ev.Warning) and "cut short" in e.message]
    assert len(cut) == 1 and "'st4' took the oldest voice" in cut[0].message, cut
    assert round(cut[0].time * SAMPLE_RATE) == round(st4.time * SAMPLE_RATE), (cut[0].time, st4.time)
    assert round(st4.time * SAMPLE_RATE) % c.block != 0  # on a beat mid-block: the tick's own sample differs


@pytest.fixture
def ctx() -> Iterator[zmq.Context[Any]]:
    context: zmq.Context[Any] = zmq.Context()
    yield context
    context.destroy(linger=0)


def test_serve_a_trigger_whose_stinger_gets_no_voice_says_so_in_its_ok(tmp_path: Path,
                                                                       ctx: zmq.Context[Any]) -> None:
    graph = tmp_path / "voices.yaml"
    graph.write_text(GRAPH)
    with serving(["--graph", str(graph)], tmp_path) as server:
        control = server.control(ctx, unlimited=True)
        control.status()
        control.ok(pb.Transport(action=pb.Transport.PAUSE))  # nothing ticks: every trigger is for one tick
        time.sleep(0.3)  # the fade to the pause is over
        rids = [control.send(pb.Trigger(name=f"t{1 + i % 5}")) for i in range(40)]
        replies: dict[int, wire.DecodedReply] = {}
        while len(replies) < len(rids):
            r = control.recv(10.0)
            assert r is not None, "a Trigger was not answered"
            replies[r.request_id] = r
        oks = [replies[i].body for i in rids]
        assert all(replies[i].kind == wire.ReplyKind.OK for i in rids)
        refused = [i for i, ok in enumerate(oks) if any("gets no voice" in w for w in ok.warnings)]
        assert refused == list(range(5, 40)), [list(ok.warnings) for ok in oks[:6]]
        assert oks[5].warnings[0].startswith("stinger_refused: trigger 't1' fired, but its stinger 'st1' gets no "
                                             "voice"), oks[5].warnings
        sub = server.events(ctx, ["stinger", "warning"])
        time.sleep(0.3)
        control.ok(pb.Transport(action=pb.Transport.PLAY))
        got = sub.events_for(2.0)
        fired = sorted(e.payload.name for e in got if e.topic == wire.Topic.STINGER)
        assert fired == ["st1", "st2", "st3", "st4", "st5"], fired
