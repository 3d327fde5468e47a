"""The style-graph evaluator: parameters, filters, nodes, mix laws, states, stingers, intensity, failsafe.

Graphs are built directly from the spec dataclasses (``make_graph``), not
loaded from YAML, so these tests pin the engine alone.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest

from cadenza.errors import GraphError, UsageError
from cadenza.runtime.graph import nodes as N
from cadenza.runtime.events import Phase, StateChange, StingerFired
from cadenza.runtime.graph.engine import BeatClock, FixedClock, Frame, GraphEngine, Input
from cadenza.runtime.graph.params import Hysteresis, OneEuroFilter, smoothing_coefficient
from cadenza.runtime.graph.spec import (
    Blend, Clamp, Const, Curve, Duration, Failsafe, Graph, Hysteresis as HysteresisSpec, Intensity, NodeRef, OneEuro,
    Op, Pad, Parameter, ParamRef, PromptDef, Select, Smoothing, State, Stinger, Transition, TriggerDef, Weight, When,
)

RATE = 100.0
CLOCK = FixedClock(120)  # beat 0.5 s, bar 2.0 s
PROMPTS = ("calm", "tense", "battle", "cave", "fanfare", "rain")


def make_graph(**overrides: Any) -> Graph:
    """A small action-game graph; any field of :class:`Graph` can be overridden.

    ``parameters`` given here are added to (or replace by name) the three
    defaults, which the default mix and controls refer to.
    """
    fields: dict[str, Any] = dict(
        version=1,
        name="test",
        source="<memory>",
        control_rate=RATE,
        parameters={
            "danger": Parameter("danger", "continuous", 0.0, 1.0, 0.0),
            "zone": Parameter("zone", "labeled", default="forest", labels=("forest", "cave")),
            "level": Parameter("level", "discrete", 0.0, 5.0, 1.0),
        },
        prompts={p: PromptDef(p, text=p) for p in PROMPTS},
        nodes={},
        mix=(Blend(ParamRef("danger"), (("calm", 0.0), ("tense", 0.5), ("battle", 1.0))),),
        default_mix={},
        controls={"bpm": Curve(ParamRef("danger"), ((0.0, 90.0), (1.0, 150.0)))},
        states={},
        states_driven_by=None,
        initial_state=None,
        transitions=(),
        stingers={},
        intensity=Intensity(decay=0.1, hold=1.0),
        triggers={},
        failsafe=None,
    )
    fields["parameters"] = {**fields["parameters"], **overrides.pop("parameters", {})}
    fields.update(overrides)
    return Graph(**fields)


def param(name: str, **kw: Any) -> Parameter:
    kw.setdefault("type", "continuous")
    return Parameter(name=name, **kw)


def run(engine: GraphEngine, seconds: float, clock: BeatClock = CLOCK) -> list[Frame]:
    return [engine.tick(clock) for _ in range(round(seconds * engine.rate))]


def events(frames: list[Frame], kind: str) -> list[Any]:
    return [e for f in frames for e in f.events if e.kind == kind]


def changes(frames: list[Frame], phase: Phase) -> list[StateChange]:
    return [e for f in frames for e in f.events if isinstance(e, StateChange) and e.phase is phase]


def state_graph(**overrides: Any) -> Graph:
    """Three states with their own mixes and bpm overrides."""
    fields: dict[str, Any] = dict(
        states={
            "explore": State("explore", mix=(Weight("calm", Const(1.0)),), controls=(("bpm", Const(90.0)),)),
            "combat": State("combat", mix=(Weight("battle", Const(1.0)),),
                            controls=(("bpm", Const(150.0)), ("scale", Const("A minor")))),
            "boss": State("boss", mix=(Weight("tense", Const(1.0)),), controls=(("bpm", Const(170.0)),)),
        },
        initial_state="explore",
        transitions=(Transition("any", "any", quantize="bar", fade=Duration(1.0, "bars"), mode="blend"),),
        controls={"bpm": Const(100.0), "density": Const(0.5)},
    )
    fields.update(overrides)
    return make_graph(**fields)


# ------------------------------------------------------------- parameters
def test_smoothing_reaches_99_percent_at_attack_time_and_release_is_slower() -> None:
    g = make_graph(parameters={"x": param("x", smoothing=Smoothing(attack=0.5, release=2.0))})
    eng = GraphEngine(g)
    eng.set("x", 1.0)
    xs = [f.params["x"] for f in run(eng, 1.0)]
    n99 = next(i for i, v in enumerate(xs) if v >= 0.99 - 1e-9) + 1  # ticks after the set
    assert abs(n99 - 0.5 * RATE) <= 1
    assert xs[int(0.5 * RATE) - 3] < 0.99
    assert all(b >= a for a, b in zip(xs, xs[1:]))
    assert xs[-1] == pytest.approx(1.0, abs=1e-3)

    eng.set("x", 0.0)
    ys = [f.params["x"] for f in run(eng, 3.0)]
    n01 = next(i for i, v in enumerate(ys) if v <= 0.01 * xs[-1] + 1e-9) + 1
    assert abs(n01 - 2.0 * RATE) <= 1
    # the fall is slower: at the attack time a third of it is left (0.01 ** (0.5 / 2.0))
    assert ys[int(0.5 * RATE) - 1] == pytest.approx(xs[-1] * 0.01 ** 0.25)
    assert smoothing_coefficient(0.0, RATE) == 1.0


def test_slew_limit_caps_the_rate_of_change() -> None:
    g = make_graph(parameters={"x": param("x", max=10.0, smoothing=Smoothing(slew=2.0))})
    eng = GraphEngine(g)
    eng.set("x", 10.0)
    xs = [f.params["x"] for f in run(eng, 6.0)]
    steps = [b - a for a, b in zip([0.0, *xs], xs)]
    assert max(steps) == pytest.approx(2.0 / RATE)
    assert xs[int(1.0 * RATE) - 1] == pytest.approx(2.0)
    assert xs[int(5.0 * RATE) - 1] == pytest.approx(10.0)
    assert xs[-1] == 10.0
    # with smoothing too, the one-pole's big first steps are cut to the slew
    g2 = make_graph(parameters={"x": param("x", max=10.0, smoothing=Smoothing(attack=0.2, slew=2.0))})
    eng2 = GraphEngine(g2)
    eng2.set("x", 10.0)
    xs2 = [f.params["x"] for f in run(eng2, 1.0)]
    assert max(b - a for a, b in zip([0.0, *xs2], xs2)) <= 2.0 / RATE + 1e-12


@pytest.mark.parametrize("shape", list(N.SHAPES))
def test_ramp_follows_its_shape_and_ends_exactly_on_the_target(shape: str) -> None:
    g = make_graph(parameters={"x": param("x", min=-1.0, max=1.0, default=-0.5,
                                          smoothing=Smoothing(attack=3.0, release=3.0, slew=0.01))})
    eng = GraphEngine(g)
    eng.set("x", 0.7, ramp=2.0, shape=shape)
    frames = run(eng, 3.0)
    xs = [f.params["x"] for f in frames]
    fn = N.SHAPES[shape]
    for f in frames:
        if f.time < 2.0 - 1e-9:
            assert f.params["x"] == pytest.approx(-0.5 + 1.2 * fn(f.time / 2.0))
    end = int(2.0 * RATE) - 1
    assert frames[end].time == pytest.approx(2.0)
    assert xs[end] == 0.7  # exact, smoothing and slew skipped
    assert all(v == 0.7 for v in xs[end:])


def test_ramp_from_a_scheduled_time_and_a_new_set_interrupts_it() -> None:
    g = make_graph(parameters={"x": param("x")})
    eng = GraphEngine(g)
    eng.set("x", 1.0, at=1.0, ramp=1.0)
    frames = run(eng, 1.5)
    assert frames[int(RATE) - 2].params["x"] == 0.0  # 0.99 s
    assert frames[int(1.5 * RATE) - 1].params["x"] == pytest.approx(0.5)
    eng.set("x", 0.2)  # un-ramped, no smoothing: jumps next tick
    assert eng.tick(CLOCK).params["x"] == 0.2


def test_bypass_jumps_past_smoothing_slew_and_filter() -> None:
    g = make_graph(parameters={"x": param("x", smoothing=Smoothing(attack=5.0, release=5.0, slew=0.01),
                                          filter=OneEuro(min_cutoff=0.1))})
    eng = GraphEngine(g)
    eng.set("x", 0.9, bypass=True)
    assert eng.tick(CLOCK).params["x"] == 0.9
    assert run(eng, 0.5)[-1].params["x"] == 0.9
    with pytest.raises(UsageError, match="exclude"):
        eng.set("x", 0.1, bypass=True, ramp=1.0)


def test_discrete_and_labeled_switch_at_once_and_discrete_rounds() -> None:
    g = make_graph()
    eng = GraphEngine(g)
    eng.set("level", 2.6, ramp=3.0)
    eng.set("zone", "cave", ramp=3.0)
    f = eng.tick(CLOCK)
    assert f.params["level"] == 3 and isinstance(f.params["level"], int)
    assert f.params["zone"] == "cave"
    eng.set("level", 99, clamp=True)
    f = eng.tick(CLOCK)
    assert f.params["level"] == 5
    e = events([f], "clamped")[0]
    assert (e.name, e.value, e.clamped) == ("level", 99.0, 5.0)


def test_out_of_range_values_are_errors_naming_the_parameter_and_change_nothing() -> None:
    eng = GraphEngine(make_graph())
    eng.set("danger", 0.3)
    run(eng, 0.05)
    before = eng.snapshot()
    for v in (1.5, -0.01, 1e9):
        with pytest.raises(UsageError) as err:
            eng.set("danger", v)
        assert "parameters.danger" in str(err.value) and repr(v) in str(err.value) and "[0, 1]" in str(err.value)
    with pytest.raises(UsageError):
        eng.set_many({"danger": 0.5, "level": 99})  # all or nothing
    assert eng.snapshot() == before


def test_out_of_range_values_with_clamp_are_clamped_and_reported_once() -> None:
    eng = GraphEngine(make_graph())
    for v in (1.5, 2.0, 3.0):
        eng.set("danger", v, clamp=True)
    frames = run(eng, 0.05)
    assert frames[-1].params["danger"] == 1.0
    assert len(events(frames, "clamped")) == 1
    eng.set("danger", 0.5)
    eng.set("danger", -4.0, clamp=True)
    frames = run(eng, 0.05)
    assert frames[-1].params["danger"] == 0.0
    assert [e.value for e in events(frames, "clamped")] == [-4.0]


@pytest.mark.parametrize("name, value, needle", [
    ("danger", math.nan, "nan"),
    ("danger", math.inf, "inf"),
    ("danger", -math.inf, "-inf"),
    ("danger", "high", "'high' (a label)"),
    ("danger", True, "True (a bool)"),
    ("danger", None, "None"),
    ("level", math.nan, "nan"),
    ("zone", 1.0, "1.0"),
    ("zone", "swamp", "'swamp'"),
    ("zone", False, "False (a bool)"),
])
def test_bad_values_raise_naming_the_parameter_and_change_nothing(name: str, value: object, needle: str) -> None:
    eng = GraphEngine(make_graph())
    eng.set("danger", 0.3, at=5.0)
    run(eng, 0.1)
    before = eng.snapshot()
    with pytest.raises(UsageError) as info:
        eng.set(name, value)
    msg = str(info.value)
    assert f"parameters.{name}" in msg and needle in msg
    assert ("'forest', 'cave'" in msg) if name == "zone" else ("[0, 1]" in msg or "[0, 5]" in msg)
    batch: dict[str, object] = {"danger": 0.5, "zone": "cave", "level": 2}
    batch[name] = value
    with pytest.raises(UsageError):
        eng.set_many(batch)  # all or nothing
    assert eng.snapshot() == before


def test_unknown_names_and_bad_arguments_list_the_valid_choices() -> None:
    g = state_graph(triggers={"hit": TriggerDef("hit", bump=0.1)})
    eng = GraphEngine(g)
    before = eng.snapshot()
    with pytest.raises(UsageError, match=r"unknown parameter 'volume'; parameters: danger, zone, level, intensity"):
        eng.set("volume", 1.0)
    with pytest.raises(UsageError, match=r"unknown trigger 'boom'; triggers: hit"):
        eng.trigger("boom")
    with pytest.raises(UsageError, match=r"unknown state 'menu'; states: explore, combat, boss"):
        eng.set_state("menu")
    with pytest.raises(UsageError, match="ramp"):
        eng.set("danger", 0.5, ramp=-1.0)
    with pytest.raises(UsageError, match="ramp"):
        eng.set("danger", 0.5, ramp=math.nan)
    with pytest.raises(UsageError, match="shapes: linear"):
        eng.set("danger", 0.5, ramp=1.0, shape="bouncy")
    with pytest.raises(UsageError, match="at"):
        eng.set("danger", 0.5, at=math.inf)
    with pytest.raises(UsageError, match=r"inputs\[1\]"):
        eng.preview([Input(0.0, "set", "danger", 0.5), Input(1.0, "set", "danger", math.nan)], 1.0, CLOCK)
    assert eng.snapshot() == before


# ----------------------------------------------------------------- filters
def test_one_euro_reduces_jitter_on_a_noisy_constant() -> None:
    rng = random.Random(7)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.01, d_cutoff=1.0)
    raw = [0.5 + rng.gauss(0.0, 0.05) for _ in range(2000)]
    out = [f.filter(x, i / RATE) for i, x in enumerate(raw)]

    def std(xs: list[float]) -> float:
        m = sum(xs) / len(xs)
        return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))

    assert std(out[200:]) < 0.25 * std(raw[200:])
    assert sum(out[200:]) / len(out[200:]) == pytest.approx(0.5, abs=0.01)


def test_one_euro_tracks_a_fast_step_faster_than_a_plain_low_pass() -> None:
    def lag(beta: float) -> float:
        f = OneEuroFilter(min_cutoff=1.0, beta=beta, d_cutoff=1.0)
        for i in range(100):
            f.filter(0.0, i / RATE)
        for i in range(100, 1000):
            if f.filter(1.0, i / RATE) >= 0.9:
                return (i - 100) / RATE
        return math.inf

    plain = lag(0.0)  # beta 0: a one-pole low-pass at min_cutoff
    assert plain == pytest.approx(math.log(10) / (2 * math.pi), abs=0.03)  # ~0.37 s for 1 Hz
    assert lag(0.5) < 0.5 * plain


def test_one_euro_same_time_stamp_replaces_the_sample_and_engine_uses_it() -> None:
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f.filter(0.0, 0.0)
    f.filter(5.0, 0.1)
    replaced = f.filter(1.0, 0.1)
    g = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    g.filter(0.0, 0.0)
    assert replaced == g.filter(1.0, 0.1)

    graph = make_graph(parameters={"x": param("x", filter=OneEuro(min_cutoff=1.0, beta=0.0))})
    eng = GraphEngine(graph)
    eng.set("x", 0.0)
    run(eng, 0.1)
    eng.set("x", 1.0)
    x = eng.tick(CLOCK).params["x"]
    assert 0.0 < x < 0.5  # low-passed, not a jump


def test_hysteresis_toggles_only_past_the_thresholds() -> None:
    h = Hysteresis(0.3, 0.7, 0.0, 1.0)
    seq = [0.5, 0.69, 0.7, 0.5, 0.31, 0.3, 0.5, 0.69, 0.9, 0.1]
    assert [h.filter(x) for x in seq] == [0, 0, 1, 1, 1, 0, 0, 0, 1, 0]

    g = make_graph(parameters={"x": param("x", min=0.0, max=2.0, filter=HysteresisSpec(0.5, 1.5))})
    eng = GraphEngine(g)
    out = []
    for v in (1.0, 1.49, 1.5, 1.0, 0.51, 0.5, 1.2):
        eng.set("x", v)
        out.append(eng.tick(CLOCK).params["x"])
    assert out == [0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0]
    with pytest.raises(GraphError):
        Hysteresis(0.7, 0.3, 0.0, 1.0)


# ------------------------------------------------------------------- nodes
@pytest.mark.parametrize("shape", list(N.SHAPES))
def test_every_curve_shape_is_monotone_and_hits_its_points(shape: str) -> None:
    fn = N.SHAPES[shape]
    assert fn(0.0) == 0.0 and fn(1.0) == 1.0
    ts = [i / 1000 for i in range(1001)]
    vals = [fn(t) for t in ts]
    assert all(b >= a for a, b in zip(vals, vals[1:]))
    assert all(0.0 <= v <= 1.0 for v in vals)
    pts = ((0.0, 10.0), (0.5, 40.0), (2.0, 20.0))
    for x, y in pts:
        assert N.curve_value(pts, shape, x) == y
    assert N.curve_value(pts, shape, -5.0) == 10.0 and N.curve_value(pts, shape, 9.0) == 20.0
    rising = [N.curve_value(pts, shape, 0.5 * t) for t in ts]
    falling = [N.curve_value(pts, shape, 0.5 + 1.5 * t) for t in ts]
    assert all(b >= a for a, b in zip(rising, rising[1:]))
    assert all(b <= a for a, b in zip(falling, falling[1:]))


def test_named_shapes_are_what_the_docstring_says() -> None:
    assert N.SHAPES["s-curve"](0.25) == pytest.approx(0.15625)
    assert N.SHAPES["log"](0.5) == pytest.approx(math.log10(5.5))
    assert N.SHAPES["exp"](0.5) == pytest.approx((math.sqrt(10) - 1) / 9)
    assert N.SHAPES["sine"](0.5) == pytest.approx(0.5)
    assert N.SHAPES["log"](0.5) > 0.5 > N.SHAPES["exp"](0.5)
    assert N.curve_value(((0.0, 1.0), (1.0, 3.0)), "constant", 0.99) == 1.0


def test_node_kinds_evaluate_against_parameters() -> None:
    nodes = {
        "threat": Op("max", (ParamRef("danger"), ParamRef("intensity"))),
        "twice": Op("add", (NodeRef("threat"), NodeRef("threat"))),
    }
    controls = {
        "density": Clamp(NodeRef("twice"), 0.2, 0.8),
        "brightness": Op("invert", (ParamRef("danger"),)),
        "temperature": Op("multiply", (Const(2.0), ParamRef("danger"), Const(1.5))),
        "guidance": Op("min", (Const(3.0), ParamRef("level"))),
        "scale": Select("zone", (("forest", Const("C major")),), default=Const("A minor")),
        "mute_drums": When("zone", ("cave",), Const(True), Const(False)),
        "top_k": Curve(ParamRef("danger"), ((0.0, 10.0), (1.0, 50.0)), "s-curve"),
    }
    eng = GraphEngine(make_graph(nodes=nodes, controls=controls))
    eng.set_many({"danger": 0.3, "level": 2})
    c = eng.tick(CLOCK).controls
    assert c["density"] == pytest.approx(0.6)
    assert c["brightness"] == pytest.approx(0.7)
    assert c["temperature"] == pytest.approx(0.9)
    assert c["guidance"] == 2.0
    assert c["scale"] == "C major" and c["mute_drums"] is False
    assert c["top_k"] == round(10 + 40 * N.SHAPES["s-curve"](0.3))
    eng.set_many({"zone": "cave", "danger": 0.0})
    c = eng.tick(CLOCK).controls
    assert c["scale"] == "A minor" and c["mute_drums"] is True and c["density"] == 0.2


def test_controls_are_clamped_to_sane_ranges() -> None:
    controls = {"bpm": Curve(ParamRef("danger"), ((0.0, 10.0), (1.0, 400.0))),
                "density": Op("add", (ParamRef("danger"), Const(0.7))), "brightness": Const(-3.0)}
    eng = GraphEngine(make_graph(controls=controls))
    c = eng.tick(CLOCK).controls
    assert c == {"bpm": 40.0, "density": 0.7, "brightness": 0.0}
    eng.set("danger", 1.0)
    c = eng.tick(CLOCK).controls
    assert c["bpm"] == 240.0 and c["density"] == 1.0


def test_non_finite_node_results_count_as_zero_and_warn_once() -> None:
    huge = Op("multiply", (Const(1e200), Const(1e200), ParamRef("danger")))
    eng = GraphEngine(make_graph(mix=(Weight("calm", huge), Weight("rain", Const(1.0))),
                                 controls={"density": Op("add", (Const(1e308), ParamRef("danger"), Const(1e308))),
                                           "brightness": Const(math.nan)}))
    eng.set("danger", 1.0)
    frames = run(eng, 0.1)
    assert frames[-1].weights["calm"] == 0.0 and frames[-1].weights["rain"] == 1.0
    assert frames[-1].controls["density"] == 0.0 and frames[-1].controls["brightness"] == 0.0
    warnings = events(frames, "warning")
    assert sorted(e.field for e in warnings) == ["controls.brightness", "controls.density", "mix[0].weight"]
    assert all(math.isfinite(w) for f in frames for w in f.weights.values())


def test_bad_graphs_are_refused() -> None:
    with pytest.raises(GraphError, match="cycle"):
        GraphEngine(make_graph(nodes={"a": NodeRef("b"), "b": Op("add", (NodeRef("a"),))}))
    with pytest.raises(GraphError, match="unknown parameter 'nope'"):
        GraphEngine(make_graph(controls={"bpm": ParamRef("nope")}))
    with pytest.raises(GraphError, match="unknown prompt 'ghost'"):
        GraphEngine(make_graph(mix=(Weight("ghost", Const(1.0)),)))
    with pytest.raises(GraphError, match="every corner of a grid"):
        GraphEngine(make_graph(mix=(Pad(Const(0.0), Const(0.0), (("calm", 0, 0), ("tense", 1, 0), ("battle", 0, 1),
                                                                  ("cave", 2, 2)), mode="bilinear"),)))
    with pytest.raises(GraphError, match="not a state"):
        GraphEngine(state_graph(states_driven_by="zone"))


# --------------------------------------------------------------------- mix
def test_blend_crossfades_neighbouring_stops_only() -> None:
    stops = (("calm", 0.0), ("tense", 0.5), ("battle", 1.0))
    assert N.blend_weights(stops, -1.0) == {"calm": 1.0, "tense": 0.0, "battle": 0.0}
    assert N.blend_weights(stops, 0.25) == {"calm": 0.5, "tense": 0.5, "battle": 0.0}
    assert N.blend_weights(stops, 0.5) == {"calm": 0.0, "tense": 1.0, "battle": 0.0}
    assert N.blend_weights(stops, 0.875) == {"calm": 0.0, "tense": 0.25, "battle": 0.75}
    assert N.blend_weights(stops, 7.0) == {"calm": 0.0, "tense": 0.0, "battle": 1.0}
    ep = N.blend_weights(stops, 0.25, law="equal-power")
    assert ep["calm"] ** 2 + ep["tense"] ** 2 == pytest.approx(1.0) and ep["battle"] == 0.0

    eng = GraphEngine(make_graph())
    for d in (0.0, 0.1, 0.3, 0.5, 0.6, 0.99, 1.0):
        eng.set("danger", d)
        w = eng.tick(CLOCK).weights
        assert set(w) == set(PROMPTS)
        assert sum(w.values()) == pytest.approx(1.0)
        assert sum(1 for v in w.values() if v > 0) <= 2
        assert w == pytest.approx({**dict.fromkeys(PROMPTS, 0.0), **N.blend_weights(
            (("calm", 0.0), ("tense", 0.5), ("battle", 1.0)), d)})


def test_pad_idw_and_bilinear() -> None:
    pts = (("calm", 0.0, 0.0), ("tense", 1.0, 0.0), ("battle", 0.0, 1.0), ("cave", 1.0, 1.0))
    assert N.pad_weights(pts, 1.0, 0.0) == {"calm": 0.0, "tense": 1.0, "battle": 0.0, "cave": 0.0}
    w = N.pad_weights(pts, 0.5, 0.5)
    assert w == pytest.approx(dict.fromkeys(w, 0.25))
    w = N.pad_weights(pts, 0.2, 0.1, power=2.0)
    d = {n: math.hypot(0.2 - x, 0.1 - y) for n, x, y in pts}
    inv = {n: 1 / v ** 2 for n, v in d.items()}
    assert w == pytest.approx({n: v / sum(inv.values()) for n, v in inv.items()})
    assert sum(w.values()) == pytest.approx(1.0)

    for (x, y), corner in zip(((0, 0), (1, 0), (0, 1), (1, 1)), ("calm", "tense", "battle", "cave")):
        b = N.pad_weights(pts, x, y, mode="bilinear")
        assert b[corner] == 1.0 and sum(b.values()) == 1.0
    b = N.pad_weights(pts, 0.25, 0.5, mode="bilinear")
    assert b == pytest.approx({"calm": 0.375, "tense": 0.125, "battle": 0.375, "cave": 0.125})
    assert N.pad_weights(pts, -3.0, 9.0, mode="bilinear") == {"calm": 0.0, "tense": 0.0, "battle": 1.0,
                                                              "cave": 0.0}

    g = make_graph(parameters={"x": param("x"), "y": param("y")},
                   mix=(Pad(ParamRef("x"), ParamRef("y"), pts, mode="bilinear"), Weight("rain", Const(1.0))))
    eng = GraphEngine(g)
    eng.set_many({"x": 1.0, "y": 1.0})
    w = eng.tick(CLOCK).weights
    assert w["cave"] == pytest.approx(0.5) and w["rain"] == pytest.approx(0.5)
    assert sum(w.values()) == pytest.approx(1.0)


def test_idw_and_normalize_stay_finite_at_the_extremes() -> None:
    assert N.idw_weights([(0.0, 0.0), (1.0, 0.0), (0.0, 0.0)], 0.0, 0.0, 2.0) == [0.5, 0.0, 0.5]
    assert N.idw_weights([(0.0, 0.0), (1.0, 1.0)], 1e-10, 0.0, 40.0) == [1.0, 0.0]  # 1/d^40 would overflow
    assert N.normalize([1e308, 1e308, 0.0], [1.0, 0.0, 0.0]) == [0.5, 0.5, 0.0]
    assert N.normalize([0.0, 0.0, 0.0], [0.2, 0.3, 0.5]) == [0.2, 0.3, 0.5]


def test_weights_of_one_prompt_add_and_negative_weights_count_as_zero() -> None:
    g = make_graph(mix=(Weight("calm", Const(1.0)), Weight("calm", Const(2.0)), Weight("rain", Const(1.0)),
                        Weight("battle", Const(-5.0))))
    w = GraphEngine(g).tick(CLOCK).weights
    assert w["calm"] == 0.75 and w["rain"] == 0.25 and w["battle"] == 0.0


def test_all_zero_weights_fall_back_to_the_default_mix() -> None:
    mix = (Weight("battle", ParamRef("danger")),)
    eng = GraphEngine(make_graph(mix=mix, default_mix={"calm": 3.0, "rain": 1.0}))
    w = eng.tick(CLOCK).weights
    assert w == {**dict.fromkeys(PROMPTS, 0.0), "calm": 0.75, "rain": 0.25}
    eng.set("danger", 0.4)
    assert eng.tick(CLOCK).weights["battle"] == 1.0
    w = GraphEngine(make_graph(mix=mix)).tick(CLOCK).weights
    assert w == pytest.approx(dict.fromkeys(PROMPTS, 1 / len(PROMPTS)))


# ----------------------------------------------------------- determinism
def test_same_inputs_give_identical_frames() -> None:
    g = state_graph(
        parameters={"danger": param("danger", smoothing=Smoothing(0.3, 1.0, 2.0), filter=OneEuro(1.0, 0.1)),
                    "zone": Parameter("zone", "labeled", default="forest", labels=("forest", "cave"))},
        triggers={"hit": TriggerDef("hit", bump=0.3, stinger="sting", set_state="combat")},
        stingers={"sting": Stinger("sting", prompt="fanfare", cooldown=2.0)},
        failsafe=Failsafe(after=3.0, glide=1.0),
    )
    rng = random.Random(3)
    inputs: list[Input] = []
    for k in range(200):
        t = rng.uniform(0, 20)
        r = rng.random()
        if r < 0.6:
            inputs.append(Input(t, "set", "danger", rng.random(), ramp=rng.choice([None, 0.5])))
        elif r < 0.8:
            inputs.append(Input(t, "trigger", "hit"))
        else:
            inputs.append(Input(t, "state", rng.choice(["explore", "combat", "boss"])))
    inputs.sort(key=lambda i: i.time)
    a = GraphEngine(g).preview(inputs, 30.0, FixedClock(97))
    b = GraphEngine(g).preview(inputs, 30.0, FixedClock(97))
    assert len(a) == 3000 and a == b
    # and live use (calls between ticks) gives the same frames as the preview
    live = GraphEngine(g)
    frames, pending = [], list(inputs)
    clock = FixedClock(97)
    for _ in range(3000):
        # an input handed over before its time (as a game scheduling ahead would) applies at exactly its time
        while pending and pending[0].time <= live.time + 1 / live.rate:
            i = pending.pop(0)
            if i.kind == "set":
                live.set(i.name, i.value, at=i.time, ramp=i.ramp)
            elif i.kind == "trigger":
                live.trigger(i.name, at=i.time)
            else:
                live.set_state(i.name, at=i.time)
        frames.append(live.tick(clock))
    assert frames == a


def test_scheduled_inputs_apply_at_the_first_tick_at_or_after_their_time() -> None:
    eng = GraphEngine(make_graph())
    eng.set("danger", 0.5, at=0.505)
    eng.set("danger", 0.7, at=0.5)  # earlier time: applied first
    frames = run(eng, 1.0)
    assert frames[49].time == pytest.approx(0.5) and frames[49].params["danger"] == 0.7
    assert frames[50].params["danger"] == 0.5
    assert frames[48].params["danger"] == 0.0


# ----------------------------------------------------------------- states
def test_transition_is_quantized_to_the_next_bar() -> None:
    eng = GraphEngine(state_graph())
    run(eng, 1.3)
    assert eng.time == pytest.approx(1.3)
    eng.set_state("combat")
    frames = run(eng, 4.0)
    sched = changes(frames, Phase.SCHEDULED)
    assert sched == [StateChange(2.0, "combat", "explore", Phase.SCHEDULED, "blend", 2.0)]
    assert frames[0].events == sched  # announced in the tick that took the request, stamped with its start
    start = changes(frames, Phase.STARTED)
    assert start == [StateChange(2.0, "combat", "explore", Phase.STARTED, "blend", 2.0)]
    first = next(f for f in frames if f.state == "combat")
    assert first.time == pytest.approx(2.0) and first.events == start
    # the fade is over at 2 + 2 s: COMPLETED, in the tick where the progress reaches 1
    done = changes(frames, Phase.COMPLETED)
    assert done == [StateChange(4.0, "combat", "explore", Phase.COMPLETED, "blend", 2.0)]
    last = next(f for f in frames if done[0] in f.events)
    assert last.transition is not None and last.transition.progress == 1.0
    before = [f for f in frames if f.time < 2.0 - 1e-9]
    assert all(f.state == "explore" and f.weights["calm"] == 1.0 for f in before)


def test_blend_progress_weights_and_controls() -> None:
    eng = GraphEngine(state_graph())
    eng.set_state("combat")  # at 0: next bar is 0 itself
    frames = run(eng, 3.0)
    by_time = {round(f.time, 2): f for f in frames}
    for t in (0.5, 1.0, 1.5):
        f = by_time[t]
        p = t / 2.0
        assert f.transition is not None and f.transition.progress == pytest.approx(p)
        assert f.weights["calm"] == pytest.approx(1 - p) and f.weights["battle"] == pytest.approx(p)
        assert f.controls["bpm"] == pytest.approx(90 + 60 * p)
        assert f.controls["density"] == 0.5
        assert ("scale" in f.controls) == (p >= 0.5)
    assert by_time[2.0].transition is not None and by_time[2.0].transition.progress == 1.0
    assert by_time[2.01].transition is None
    assert by_time[2.01].weights["battle"] == 1.0 and by_time[2.01].controls["bpm"] == 150.0
    assert by_time[2.01].controls["scale"] == "A minor"


def test_crossfade_carries_the_source_for_deck_a() -> None:
    g = state_graph(transitions=(Transition("any", "any", "beat", Duration(2.0, "beats"), "crossfade"),))
    eng = GraphEngine(g)
    run(eng, 0.7)
    eng.set_state("combat")
    frames = run(eng, 2.0)
    during = [f for f in frames if f.transition is not None]
    assert during[0].time == pytest.approx(1.0)  # next beat after 0.7
    assert during[-1].time == pytest.approx(2.0) and during[-1].transition.progress == 1.0
    for f in during:
        tr = f.transition
        assert tr is not None and tr.mode == "crossfade" and tr.start == 1.0 and tr.fade_s == 1.0
        assert f.weights["battle"] == 1.0 and f.controls["bpm"] == 150.0
        assert tr.source_weights["calm"] == 1.0 and tr.source_controls["bpm"] == 90.0


def test_pending_state_and_heard_at_answer_as_soon_as_a_request_is_made() -> None:
    """What the server puts in Ok.stream_time and Status.pending_state: known before the tick applies the request,
    and equal to what the tick then does."""
    eng = GraphEngine(state_graph(triggers={"alarm": TriggerDef("alarm", set_state="boss")}))
    run(eng, 1.3)
    assert eng.pending_state(CLOCK) is None and eng.heard_at("state", "explore", CLOCK) == eng.time
    eng.set_state("combat")
    assert eng.pending_state(CLOCK) == ("combat", 2.0)  # queued for the next tick: seen at once
    assert eng.heard_at("state", "combat", CLOCK) == 2.0
    frames = run(eng, 0.1)
    assert eng.pending_state(CLOCK) == ("combat", 2.0)
    eng.trigger("alarm")  # replaces the scheduled change
    assert eng.pending_state(CLOCK) == ("boss", 2.0) and eng.heard_at("trigger", "alarm", CLOCK) == 2.0
    frames += run(eng, 1.0)
    assert [(e.time, e.name) for e in changes(frames, Phase.STARTED)] == [(2.0, "boss")]
    assert eng.pending_state(CLOCK) is None and eng.state == "boss"
    eng.set_state("boss")  # already current: heard now, nothing pending
    assert eng.pending_state(CLOCK) is None and eng.heard_at("state", "boss", CLOCK) == eng.time


def test_heard_at_of_a_trigger_is_its_quantized_stinger_unless_refused() -> None:
    g = make_graph(stingers={"win": Stinger("win", prompt="fanfare", quantize="bar", cooldown=8.0)},
                   triggers={"won": TriggerDef("won", stinger="win"), "hit": TriggerDef("hit", bump=0.1)})
    eng = GraphEngine(g)
    run(eng, 0.5)
    eng.trigger("won")
    assert eng.heard_at("trigger", "won", CLOCK) == 2.0
    frames = run(eng, 2.0)
    assert [e.time for e in events(frames, "stinger")] == [2.0]
    assert eng.heard_at("trigger", "won", CLOCK) == eng.time  # in its cooldown: refused, nothing waits
    assert eng.heard_at("trigger", "hit", CLOCK) == eng.time  # no stinger, no state: now


def test_most_specific_transition_rule_wins() -> None:
    rules = (
        Transition("any", "any", "now", Duration(1.0, "s"), "blend"),
        Transition("any", "boss", "now", Duration(2.0, "s"), "blend"),
        Transition("explore", "any", "now", Duration(3.0, "s"), "blend"),
        Transition("explore", "boss", "now", Duration(4.0, "s"), "crossfade"),
    )
    cases = [("explore", "boss", 4.0, "crossfade"), ("explore", "combat", 3.0, "blend"),
             ("combat", "boss", 2.0, "blend"), ("combat", "explore", 1.0, "blend")]
    for source, target, fade, mode in cases:
        eng = GraphEngine(state_graph(transitions=rules, initial_state=source))
        eng.set_state(target)
        sched = changes([eng.tick(CLOCK)], Phase.SCHEDULED)[0]
        assert (sched.fade_seconds, sched.transition) == (fade, mode), (source, target)
    # no rule at all: now, no fade
    eng = GraphEngine(state_graph(transitions=()))
    eng.set_state("boss")
    f = eng.tick(CLOCK)
    assert f.state == "boss" and f.weights["tense"] == 1.0
    assert f.transition is not None and f.transition.progress == 1.0
    # a cut: scheduled, started and completed in the one tick, all at the request's time
    assert [(e.phase, e.time) for e in f.events if isinstance(e, StateChange)] == [
        (Phase.SCHEDULED, 0.0), (Phase.STARTED, 0.0), (Phase.COMPLETED, 0.0)]
    assert eng.tick(CLOCK).transition is None


def test_requests_during_a_transition_and_no_ops() -> None:
    g = state_graph(transitions=(Transition("any", "any", "now", Duration(1.0, "s"), "blend"),))
    eng = GraphEngine(g)
    eng.set_state("explore")  # the current state: nothing happens
    assert eng.tick(CLOCK).events == []
    eng.set_state("combat")
    run(eng, 0.5)
    eng.set_state("combat")  # already current
    assert not changes([eng.tick(CLOCK)], Phase.SCHEDULED)
    eng.set_state("boss")  # the current blend (about half explore, half combat) becomes the source
    f = eng.tick(CLOCK)
    tr = f.transition
    assert tr is not None and tr.source == "combat" and tr.target == "boss"
    assert tr.source_weights["calm"] == pytest.approx(0.48) and tr.source_weights["battle"] == pytest.approx(0.52)
    assert tr.source_controls["bpm"] == pytest.approx(90 * 0.48 + 150 * 0.52)
    f = run(eng, 0.5)[-1]
    assert f.weights["tense"] == pytest.approx(0.51) and f.weights["calm"] == pytest.approx(0.49 * 0.48)


def test_a_second_request_before_the_start_replaces_the_first() -> None:
    eng = GraphEngine(state_graph())
    run(eng, 0.3)
    eng.set_state("combat")
    eng.set_state("boss", at=0.5)
    frames = run(eng, 3.0)
    assert [e.name for e in events(frames, "state_cancelled")] == ["combat"]
    assert [e.name for e in changes(frames, Phase.STARTED)] == ["boss"]
    eng.set_state("explore")
    eng.set_state("boss")  # back to the current state before the start: cancelled, stays
    frames = run(eng, 3.0)
    assert not changes(frames, Phase.STARTED) and frames[-1].state == "boss"


def test_driven_by_parameter_changes_state() -> None:
    g = state_graph(
        parameters={"mode": Parameter("mode", "labeled", default="explore", labels=("explore", "combat", "boss"))},
        states_driven_by="mode", initial_state=None,
        transitions=(Transition("any", "any", "beat", Duration(0.0, "s"), "blend"),),
    )
    eng = GraphEngine(g)
    assert eng.state == "explore"
    run(eng, 0.2)
    eng.set("mode", "boss")
    frames = run(eng, 1.0)
    assert [(e.time, e.name) for e in changes(frames, Phase.STARTED)] == [(0.5, "boss")]
    assert frames[-1].state == "boss" and frames[-1].weights["tense"] == 1.0


def test_state_overrides_and_global_fallback() -> None:
    g = state_graph(states={
        "explore": State("explore"),  # the global mix and controls
        "combat": State("combat", controls=(("density", Const(0.9)),)),
    }, transitions=())
    eng = GraphEngine(g)
    eng.set("danger", 1.0)
    f = eng.tick(CLOCK)
    assert f.weights["battle"] == 1.0 and f.controls == {"bpm": 100.0, "density": 0.5}
    eng.set_state("combat")
    f = eng.tick(CLOCK)
    assert f.weights["battle"] == 1.0 and f.controls == {"bpm": 100.0, "density": 0.9}


# ---------------------------------------------- stingers, intensity, failsafe
def test_stinger_quantized_with_cooldown() -> None:
    g = make_graph(
        stingers={"win": Stinger("win", prompt="fanfare", quantize="bar", length=Duration(2.0, "beats"),
                                 cooldown=8.0, duck_db=-9.0, gain_db=1.0)},
        triggers={"boss_defeated": TriggerDef("boss_defeated", bump=0.5, stinger="win")},
    )
    eng = GraphEngine(g)
    run(eng, 0.5)
    eng.trigger("boss_defeated")
    frames = run(eng, 2.0)
    assert [(e.name, e.at) for e in events(frames, "stinger_scheduled")] == [("win", 2.0)]
    fired = events(frames, "stinger")
    assert len(fired) == 1 and fired[0].time == 2.0
    assert fired[0] == StingerFired(2.0, "win", 1.0)  # 2 beats at 120 bpm; prompt, duck, gain: the graph's
    assert next(f for f in frames if events([f], "stinger")).time == pytest.approx(2.0)
    eng.trigger("boss_defeated", at=7.0)
    frames = run(eng, 6.0)  # to 8.5
    refused = events(frames, "stinger_refused")
    assert len(refused) == 1 and refused[0].remaining == pytest.approx(3.0)
    assert not events(frames, "stinger")
    eng.trigger("boss_defeated", at=10.0)
    frames = run(eng, 2.0)
    assert [e.time for e in events(frames, "stinger")] == [10.0]


def test_intensity_bumps_holds_and_decays() -> None:
    g = make_graph(intensity=Intensity(decay=0.25, hold=1.0),
                   triggers={"hit": TriggerDef("hit", bump=0.4)},
                   mix=(Weight("battle", ParamRef("intensity")), Weight("calm", Const(0.5))))
    eng = GraphEngine(g)
    eng.trigger("hit")
    eng.trigger("hit")
    eng.trigger("hit")  # clamped at 1
    frames = run(eng, 6.0)
    at = {round(f.time, 2): f.params["intensity"] for f in frames}
    assert at[0.01] == 1.0 and at[1.0] == 1.0
    assert at[2.0] == pytest.approx(0.75) and at[3.0] == pytest.approx(0.5)
    assert at[5.0] == 0.0 and at[6.0] == 0.0
    assert frames[0].weights["battle"] == pytest.approx(1 / 1.5)
    vals = [f.params["intensity"] for f in frames]
    assert all(b <= a for a, b in zip(vals, vals[1:]))
    eng.trigger("hit", at=6.5)
    f = run(eng, 1.0)[-1]
    assert f.params["intensity"] == pytest.approx(0.4)
    eng.set("intensity", 0.9)
    assert eng.tick(CLOCK).params["intensity"] == 0.9


def test_failsafe_glides_to_safe_values_and_releases_on_input() -> None:
    g = make_graph(parameters={
        "danger": param("danger", default=0.0, safe=0.2),
        "zone": Parameter("zone", "labeled", default="forest", safe="cave", labels=("forest", "cave")),
    }, failsafe=Failsafe(after=5.0, glide=2.0))
    eng = GraphEngine(g)
    eng.set("danger", 1.0, at=1.0)
    frames = run(eng, 10.0)
    fs = events(frames, "failsafe")
    assert len(fs) == 1 and fs[0].time == 6.0
    at = {round(f.time, 2): f for f in frames}
    assert at[5.99].params["danger"] == 1.0 and at[5.99].params["zone"] == "forest"
    assert at[6.0].params["zone"] == "cave"
    assert at[7.0].params["danger"] == pytest.approx(0.6)
    assert at[8.0].params["danger"] == 0.2 and at[10.0].params["danger"] == 0.2
    eng.set("zone", "forest")
    f = eng.tick(CLOCK)
    assert [e.kind for e in f.events] == ["failsafe_released"]
    assert f.params["zone"] == "forest"
    frames = run(eng, 4.9)
    assert not events(frames, "failsafe")
    assert len(events(run(eng, 0.2), "failsafe")) == 1


def test_clock_protocol_and_fixed_clock() -> None:
    c = FixedClock(120)
    assert isinstance(c, BeatClock)
    assert c.next_boundary(1.3, "bar") == 2.0 and c.next_boundary(2.0, "bar") == 2.0
    assert c.next_boundary(1.3, "beat") == 1.5 and c.beat_seconds(0.0) == 0.5
    assert FixedClock(90, origin=0.25).next_boundary(0.3, "beat") == pytest.approx(0.25 + 2 / 3)
    with pytest.raises(UsageError):
        FixedClock(0)


def test_frames_are_frozen() -> None:
    f = GraphEngine(make_graph()).tick(CLOCK)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.time = 3.0
