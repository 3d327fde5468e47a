"""State changes on the wire, against a real ``cadenza serve`` playing the action game (null sink, events SUB).

What the tests prove:

- a state change is published three times — SCHEDULED (stamped with the
  sample it will start on), STARTED, COMPLETED (the fade is over: the new
  state plays alone) — with stream times that never go back, COMPLETED one fade
  after STARTED, for a ``blend`` and for a ``crossfade`` transition;
- ``Ok.stream_time`` of a quantized SetState is the sample the change is heard
  from: the STARTED event's stream time, on a bar the runtime published; the
  same for a Trigger whose stinger is quantized (the ``stinger`` event's);
- between the request and its bar, ``Status.pending_state`` and
  ``pending_state_time`` name the waiting state and that sample; empty after;
- the ``beat``/``bar`` events are one sequence (beat +1, bar +1 at each
  downbeat, downbeats at least a beat apart) across crossfades, a LoadGraph,
  PAUSE/PLAY and STOP/PLAY, a bar-quantized crossfade handing the grid over on
  its start;
- a SetState while paused gets no ``Ok.stream_time``; its events after PLAY
  are stamped at or after the PLAY's sample, on a bar; a change that waited
  for its bar across a PAUSE is announced again (SCHEDULED) on PLAY.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from server_harness import ACTION_GAME, SAMPLE_RATE, Control, ServeProcess, Subscriber

PHASE = pb.StateChange.Phase


@pytest.fixture(scope="module")
def game(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with ServeProcess(["--graph", str(ACTION_GAME), "--allow-dir", str(ACTION_GAME.parent)],
                      tmp_path_factory.mktemp("states")) as server:
        yield server


@pytest.fixture
def client(game: ServeProcess, ctx: zmq.Context[Any]) -> Iterator[Control]:
    """A DEALER on a fresh copy of the action game (state explore, nothing pending)."""
    c = game.control(ctx)
    c.ok(pb.LoadGraph(path=str(ACTION_GAME)))
    c.wait_status(lambda s: s.state == "explore" and not s.pending_state, 10, "explore, nothing pending")
    yield c
    c.close()


def subscribe(game: ServeProcess, ctx: zmq.Context[Any], topics: list[str]) -> Subscriber:
    """A SUB that already receives (status events come every second): no event of the test is missed."""
    sub = game.events(ctx, [*topics, "status"])
    sub.wait_for(lambda e: True, 10, "any event (the subscription is live)")
    return sub


def phases_of(sub: Subscriber, name: str, timeout: float = 15.0) -> list[wire.DecodedEvent]:
    """The ``state`` events of the change to ``name``, up to its COMPLETED one."""
    got: list[wire.DecodedEvent] = []
    while not got or got[-1].payload.phase != PHASE.COMPLETED:
        got.append(sub.wait_for(lambda e: e.topic == wire.Topic.STATE and e.payload.name == name,
                                timeout, f"state {name} (so far {[str(e.payload.phase) for e in got]})"))
    return got


def test_ok_stream_time_of_a_quantized_set_state_is_the_bar_it_is_heard_on(client: Control, game: ServeProcess,
                                                                          ctx: zmq.Context[Any]) -> None:
    sub = subscribe(game, ctx, ["state", "bar"])
    # a steady tempo first: the bed glides bar by bar to a new tempo (after a combat state), and the bar a
    # change is quantized to is predicted from the tempo of the last beat (the first test here: no wait)
    last: list[wire.DecodedEvent] = []
    while len(last) < 2 or last[-1].payload.bpm != last[-2].payload.bpm:
        last.append(sub.wait_for(lambda e: e.topic == wire.Topic.BAR, 15, "a bar"))
    before = client.status().stream_time
    ok = client.ok(pb.SetState(name="tension"))
    assert ok.HasField("stream_time") and ok.stream_time > before  # quantized to the next bar, not "now"
    seen: list[wire.DecodedEvent] = []
    while not any(e.topic == wire.Topic.STATE and e.payload.phase == PHASE.STARTED for e in seen):
        e = sub.recv_event(15)
        assert e is not None, f"no STARTED within 15 s; saw {seen}"
        seen.append(e)
    assert seen[-1].stream_time == ok.stream_time
    seen += sub.events_for(0.5)  # the bar itself may go out with the next block
    bars = {e.stream_time for e in seen if e.topic == wire.Topic.BAR}
    assert ok.stream_time in bars, (ok.stream_time, sorted(bars))  # a bar the runtime rendered and published
    sub.close()


@pytest.mark.parametrize(("target", "mode", "beats"), [("tension", "blend", 4), ("combat", "crossfade", 2)])
def test_a_state_change_is_scheduled_started_and_completed(client: Control, game: ServeProcess,
                                                           ctx: zmq.Context[Any], target: str, mode: str,
                                                           beats: int) -> None:
    sub = subscribe(game, ctx, ["state", "bar"])
    ok = client.ok(pb.SetState(name=target))
    events = phases_of(sub, target)
    assert [e.payload.phase for e in events] == [PHASE.SCHEDULED, PHASE.STARTED, PHASE.COMPLETED]
    scheduled, started, completed = events
    for e in events:
        p = e.payload
        assert (p.previous, p.transition) == ("explore", mode), p
    assert scheduled.stream_time == started.stream_time == ok.stream_time  # announced with its start
    assert started.stream_time < completed.stream_time
    assert [e.sequence for e in events] == list(range(scheduled.sequence, scheduled.sequence + 3))
    # the fade (1 bar / 2 beats at the explore tempo) separates STARTED from COMPLETED, to a sample
    fade = started.payload.fade_seconds
    assert fade > 0 and completed.payload.fade_seconds == fade
    assert abs(completed.stream_time - started.stream_time - round(fade * SAMPLE_RATE)) <= 1
    bpm = 60.0 * beats / fade
    assert 40 <= bpm <= 200, bpm
    client.wait_status(lambda s: s.state == target and not s.pending_state, 5, f"{target} alone")
    sub.close()


def test_ok_stream_time_of_a_trigger_is_its_quantized_stinger(client: Control, game: ServeProcess,
                                                             ctx: zmq.Context[Any]) -> None:
    sub = subscribe(game, ctx, ["stinger", "bar"])
    before = client.status().stream_time
    ok = client.ok(pb.Trigger(name="boss_defeated"))  # stinger "victory", quantized to the bar
    assert ok.stream_time > before
    fired = sub.wait_for(lambda e: e.topic == wire.Topic.STINGER, 15, "the victory stinger")
    assert fired.payload.name == "victory" and fired.stream_time == ok.stream_time
    sub.close()


def test_pending_state_is_in_status_between_the_request_and_its_bar(client: Control, game: ServeProcess,
                                                                    ctx: zmq.Context[Any]) -> None:
    sub = subscribe(game, ctx, ["state"])
    seen = 0
    for target in ("tension", "combat", "explore"):  # a request that lands just before its bar may miss the window
        ok = client.ok(pb.SetState(name=target))
        st = client.status()
        if st.stream_time < ok.stream_time:  # the bar is not generated yet: the change waits for it
            assert (st.pending_state, st.pending_state_time) == (target, ok.stream_time), st
            assert st.state != target
            seen += 1
        sub.wait_for(lambda e: e.topic == wire.Topic.STATE and e.payload.name == target
                     and e.payload.phase == PHASE.STARTED, 15, f"{target} started")
        st = client.wait_status(lambda s: s.stream_time > ok.stream_time, 10, "past the bar")
        assert (st.state, st.pending_state, st.pending_state_time) == (target, "", 0), st
    assert seen >= 2, "GetStatus never came between a SetState and its bar"
    sub.close()


def test_status_has_no_pending_state_when_nothing_waits(client: Control) -> None:
    st = client.status()
    assert (st.state, st.pending_state, st.pending_state_time) == ("explore", "", 0)


# ----------------------------------------------------------------- one beat grid, and PAUSE


def check_grid(beats: list[wire.DecodedEvent]) -> list[wire.DecodedEvent]:
    """The published ``beat`` events form one sequence: beat +1 each, bar +1 at each downbeat (and only there),
    stream times rising, downbeats at least a beat apart at the tempo in force (either side's). The downbeats."""
    assert beats, "no beats"
    downs: list[wire.DecodedEvent] = []
    for prev, e in zip(beats, beats[1:]):
        p, q = prev.payload, e.payload
        assert q.beat == p.beat + 1, (prev, e)
        assert e.stream_time > prev.stream_time, (prev, e)
        assert q.bar == (p.bar + 1 if q.beat_in_bar == 0 else p.bar), (prev, e)
        if q.beat_in_bar:
            assert q.beat_in_bar == p.beat_in_bar + 1, (prev, e)
    downs = [e for e in beats if e.payload.beat_in_bar == 0]
    for prev, e in zip(downs, downs[1:]):
        beat = round(SAMPLE_RATE * 60.0 / min(prev.payload.bpm, e.payload.bpm))
        assert e.stream_time - prev.stream_time >= beat - 1, ("downbeats closer than a beat", prev, e)
    return downs


@pytest.mark.slow
def test_beats_and_bars_run_on_across_crossfades_reloads_pause_and_stop(client: Control, game: ServeProcess,
                                                                       ctx: zmq.Context[Any]) -> None:
    sub = subscribe(game, ctx, ["beat", "bar", "state"])
    got: list[wire.DecodedEvent] = []

    def until_started(name: str) -> None:
        _collect(sub, got, name)

    # explore → combat (crossfade, 172 bpm) → explore (crossfade back) → combat, a hot reload mid-way, PAUSE/PLAY,
    # STOP/PLAY: the count never goes back
    for name in ("combat", "explore", "combat"):
        client.ok(pb.SetState(name=name))
        until_started(name)
    client.ok(pb.LoadGraph(path=str(ACTION_GAME)))  # back to explore: a blend on the bed of the running stream
    got += sub.events_for(2.0)
    client.ok(pb.SetState(name="combat"))
    until_started("combat")
    client.ok(pb.Transport(action=pb.Transport.PAUSE))
    got += sub.events_for(0.5)
    client.ok(pb.Transport(action=pb.Transport.PLAY))
    got += sub.events_for(1.5)
    client.ok(pb.Transport(action=pb.Transport.STOP))
    got += sub.events_for(0.3)
    client.ok(pb.Transport(action=pb.Transport.PLAY))
    got += sub.events_for(2.5)
    sub.close()
    beats = [e for e in got if e.topic == wire.Topic.BEAT]
    bars = [e for e in got if e.topic == wire.Topic.BAR]
    downs = check_grid(beats)
    assert [e.payload.bar for e in bars] == list(range(bars[0].payload.bar, bars[0].payload.bar + len(bars)))
    assert [(e.stream_time, e.payload.beat) for e in bars] == [(e.stream_time, e.payload.beat) for e in downs]
    assert len({round(e.payload.bpm) for e in beats}) >= 2, "no tempo change seen (no crossfade?)"
    states = [e for e in got if e.topic == wire.Topic.STATE and e.payload.phase == PHASE.STARTED
              and e.payload.transition == "crossfade"]
    assert len(states) >= 3, states
    # a crossfade quantized to the bar hands the grid over on its start: a bar event at that very sample
    at = {e.stream_time for e in bars}
    assert all(s.stream_time in at for s in states), ([s.stream_time for s in states], sorted(at))


def _collect(sub: Subscriber, got: list[wire.DecodedEvent], name: str, timeout: float = 15.0) -> wire.DecodedEvent:
    """Events into ``got`` until the change to ``name`` is COMPLETED, and half a second more."""
    while True:
        e = sub.recv_event(timeout)
        assert e is not None, f"no COMPLETED of {name} within {timeout} s"
        got.append(e)
        if e.topic == wire.Topic.STATE and e.payload.name == name and e.payload.phase == PHASE.COMPLETED:
            got.extend(sub.events_for(0.5))
            return e


def test_a_state_change_asked_for_while_paused_is_stamped_where_it_is_heard(client: Control, game: ServeProcess,
                                                                           ctx: zmq.Context[Any]) -> None:
    sub = subscribe(game, ctx, ["state", "bar"])
    last: list[wire.DecodedEvent] = []  # a steady tempo first (as in the first test): the bar is predicted from it
    while len(last) < 2 or last[-1].payload.bpm != last[-2].payload.bpm:
        last.append(sub.wait_for(lambda e: e.topic == wire.Topic.BAR, 15, "a bar"))
    client.ok(pb.Transport(action=pb.Transport.PAUSE))
    try:
        ok = client.ok(pb.SetState(name="tension"))
        st = client.status()
        assert not ok.HasField("stream_time"), ok  # not known while paused: it depends on when PLAY comes
        assert (st.pending_state, st.pending_state_time) == ("tension", 0), st
        sub.events_for(1.0)  # paused for a second: the stream clock runs on
    finally:
        play = client.ok(pb.Transport(action=pb.Transport.PLAY))
    got: list[wire.DecodedEvent] = []
    _collect(sub, got, "tension")
    sub.close()
    events = [e for e in got if e.topic == wire.Topic.STATE and e.payload.name == "tension"]
    assert [e.payload.phase for e in events] == [PHASE.SCHEDULED, PHASE.STARTED, PHASE.COMPLETED], events
    scheduled, started, completed = events
    assert play.stream_time <= scheduled.stream_time == started.stream_time < completed.stream_time
    assert started.stream_time - play.stream_time <= 4 * SAMPLE_RATE  # the first bar after PLAY
    # the bars after PLAY are stamped after it too (the music's own time stood still), the change on one of them
    bars = [e for e in got if e.topic == wire.Topic.BAR]
    assert all(e.stream_time >= play.stream_time for e in bars), [e.stream_time for e in bars]
    assert started.stream_time in {e.stream_time for e in bars}


def test_a_change_waiting_for_its_bar_when_paused_is_announced_again_on_play(client: Control, game: ServeProcess,
                                                                             ctx: zmq.Context[Any]) -> None:
    sub = subscribe(game, ctx, ["state", "bar"])
    bar = sub.wait_for(lambda e: e.topic == wire.Topic.BAR, 15, "a bar")  # just after a bar: the next is far
    ok = client.ok(pb.SetState(name="tension"))
    client.ok(pb.Transport(action=pb.Transport.PAUSE))
    st = client.status()
    try:
        # explore's bars last 3.3 s: asked right after one, the change still waits when the PAUSE comes
        assert st.stream_time < ok.stream_time and st.pending_state == "tension", (bar, ok, st)
        sub.events_for(1.0)
    finally:
        play = client.ok(pb.Transport(action=pb.Transport.PLAY))
    got: list[wire.DecodedEvent] = []
    _collect(sub, got, "tension")
    sub.close()
    events = [e for e in got if e.topic == wire.Topic.STATE and e.payload.name == "tension"]
    phases = [e.payload.phase for e in events]
    # SCHEDULED with the first promise (unless the PAUSE came before the request was processed), then again on PLAY
    assert phases in ([PHASE.SCHEDULED, PHASE.SCHEDULED, PHASE.STARTED, PHASE.COMPLETED],
                      [PHASE.SCHEDULED, PHASE.STARTED, PHASE.COMPLETED]), events
    assert len(events) == 3 or events[0].stream_time == ok.stream_time
    again, started = events[-3], events[-2]
    assert play.stream_time <= again.stream_time == started.stream_time
    assert started.stream_time > ok.stream_time  # later than first promised, by the pause


def test_stop_publishes_the_rewind_to_the_initial_state_as_a_cut(client: Control, game: ServeProcess,
                                                                  ctx: zmq.Context[Any]) -> None:
    # outside test 16, finding 8: STOP rewound to the initial state without a state event (OSC out, panels missed it)
    sub = subscribe(game, ctx, ["state"])
    client.ok(pb.SetState(name="combat"))
    _collect(sub, [], "combat")
    client.ok(pb.Transport(action=pb.Transport.STOP))
    try:
        got = [e for e in sub.events_for(1.5) if e.topic == wire.Topic.STATE]
        assert [(e.payload.name, e.payload.previous, e.payload.phase, e.payload.transition, e.payload.fade_seconds)
                for e in got] == [("explore", "combat", PHASE.STARTED, "cut", 0.0),
                                  ("explore", "combat", PHASE.COMPLETED, "cut", 0.0)], got
        assert client.status().state == "explore"
    finally:
        client.ok(pb.Transport(action=pb.Transport.PLAY))
        sub.close()


def test_a_load_mid_crossfade_publishes_the_new_graph_state(client: Control, game: ServeProcess,
                                                            ctx: zmq.Context[Any]) -> None:
    """Outside test 15, finding 8: a LoadGraph or SetPrompts during a crossfade left the event stream on the old
    state (the crossfade's COMPLETED never came, the load was not announced): now a ``load`` change, STARTED then
    COMPLETED at once, names the new graph's state and the one it replaced."""
    sub = subscribe(game, ctx, ["state"])
    try:
        client.ok(pb.SetState(name="combat"))  # a crossfade of 2 beats, on the next bar
        started = sub.wait_for(lambda e: e.topic == wire.Topic.STATE and e.payload.name == "combat"
                               and e.payload.phase == PHASE.STARTED, 15, "combat STARTED")
        assert started.payload.transition == "crossfade"
        client.ok(pb.LoadGraph(path=str(ACTION_GAME)))  # well inside the fade
        got = [e for e in sub.events_for(2.0) if e.topic == wire.Topic.STATE]
        assert [(e.payload.name, e.payload.previous, e.payload.phase, e.payload.transition, e.payload.fade_seconds)
                for e in got] == [("explore", "combat", PHASE.STARTED, "load", 0.0),
                                  ("explore", "combat", PHASE.COMPLETED, "load", 0.0)], got
        assert started.stream_time <= got[0].stream_time == got[1].stream_time, (started, got)
        assert client.status().state == "explore"
        # prompts without a graph: no state
        client.ok(pb.SetPrompts(prompts=[pb.WeightedPrompt(text="calm ambient pads", weight=1.0)]))
        got = [e for e in sub.events_for(1.5) if e.topic == wire.Topic.STATE]
        assert [(e.payload.name, e.payload.previous, e.payload.phase, e.payload.transition) for e in got] == [
            ("", "explore", PHASE.STARTED, "load"), ("", "explore", PHASE.COMPLETED, "load")], got
        assert client.status().state == ""
    finally:
        sub.close()


def test_events_follow_request_order_when_requests_come_between_two_steps(tmp_path: Any,
                                                                          ctx: zmq.Context[Any]) -> None:
    """Outside test 15, finding 7: with the model behind, STOP → PLAY → SetState combat all landed between two
    steps, and the STOP's cut (posted by the request) went out after the events the next step made of the SetState
    — an event-only client ended on the initial state while Status said combat. The generation thread is held
    between two steps here (the CADENZA_TEST_HANG_FILE hook) so that the three requests land in one gap."""
    import time
    from pathlib import Path

    hang = Path(tmp_path) / "hang"
    with ServeProcess(["--graph", str(ACTION_GAME)], Path(tmp_path), name="order",
                      env={"CADENZA_TEST_HANG_FILE": str(hang)}) as server:
        c = server.control(ctx)
        sub = server.events(ctx, ["state", "status"])
        try:
            sub.wait_for(lambda e: True, 10, "any event (the subscription is live)")
            c.ok(pb.SetState(name="tension"))
            sub.wait_for(lambda e: e.topic == wire.Topic.STATE and e.payload.name == "tension"
                         and e.payload.phase == PHASE.COMPLETED, 15, "tension COMPLETED")
            hang.touch()
            time.sleep(0.3)  # the generation thread is at its hook, between two steps
            c.ok(pb.Transport(action=pb.Transport.STOP))
            c.ok(pb.Transport(action=pb.Transport.PLAY))
            c.ok(pb.SetState(name="combat"))
            hang.unlink()
            got: list[wire.DecodedEvent] = []
            while not any(e.payload.name == "combat" and e.payload.phase == PHASE.STARTED for e in got):
                got.append(sub.wait_for(lambda e: e.topic == wire.Topic.STATE, 15, f"state events (so far {got})"))
            seen = [(e.payload.name, e.payload.previous, e.payload.phase, e.payload.transition) for e in got]
            assert seen[:2] == [("explore", "tension", PHASE.STARTED, "cut"),
                                ("explore", "tension", PHASE.COMPLETED, "cut")], seen
            assert [s[:3] for s in seen[2:]] in ([("combat", "explore", PHASE.SCHEDULED),
                                                  ("combat", "explore", PHASE.STARTED)],
                                                 [("combat", "explore", PHASE.STARTED)]), seen
            stream_times = [e.stream_time for e in got]
            assert stream_times == sorted(stream_times), got
            assert c.status().state == "combat"
        finally:
            if hang.exists():
                hang.unlink()
            sub.close()
            c.close()


def test_a_scheduled_change_withdrawn_by_a_request_for_the_current_state_is_cancelled_on_the_wire(
        client: Control, game: ServeProcess, ctx: zmq.Context[Any]) -> None:
    """Outside test of the WebSocket JSON path, round 2, finding 1: SetState combat, then SetState explore (the
    current state) before combat's bar: combat was silently dropped — an event-only client waited for it forever.
    Now a CANCELLED event names it; with a PAUSE between, PLAY no longer re-announces the withdrawn change."""
    sub = subscribe(game, ctx, ["state"])
    try:
        client.ok(pb.SetState(name="combat"))
        sub.wait_for(lambda e: e.topic == wire.Topic.STATE and e.payload.phase == PHASE.SCHEDULED, 10, "SCHEDULED")
        client.ok(pb.SetState(name="explore"))
        got = [e for e in sub.events_for(3.0) if e.topic == wire.Topic.STATE]
        assert [(e.payload.name, e.payload.previous, e.payload.phase) for e in got] == [
            ("combat", "explore", PHASE.CANCELLED)], got
        st = client.status()
        assert st.state == "explore" and not st.pending_state, st
        # around a PAUSE: the withdrawal queued while paused; PLAY must not announce tension again
        client.ok(pb.SetState(name="tension"))
        sub.wait_for(lambda e: e.topic == wire.Topic.STATE and e.payload.name == "tension"
                     and e.payload.phase == PHASE.SCHEDULED, 10, "tension SCHEDULED")
        client.ok(pb.Transport(action=pb.Transport.PAUSE))
        client.ok(pb.SetState(name="explore"))
        client.ok(pb.Transport(action=pb.Transport.PLAY))
        got = [e for e in sub.events_for(3.0) if e.topic == wire.Topic.STATE]
        assert [(e.payload.name, e.payload.phase) for e in got] == [("tension", PHASE.CANCELLED)], got
        assert client.status().state == "explore"
    finally:
        client.ok(pb.Transport(action=pb.Transport.PLAY))
        sub.close()
