"""``cadenza demo``: an adaptive piece in five game states, played live or written to a WAV.

A scripted stand-in for a game: the player explores, danger rises, a battle
breaks out, they win, calm returns. Each state is a weighted prompt mix and a
few controls — a style graph (:func:`demo_graph`) — and a timeline of
``state`` inputs (:func:`demo_timeline`) drives it through the same
:class:`~cadenza.runtime.conductor.Conductor` that ``cadenza serve`` runs, the
way a game would steer it through the runtime; the synth glides between the
states on one continuous stream. The WAV is always written; when a sound card
(or JACK server) is present the piece also plays on it in real time. Each
state is announced when its ``StateChange`` starts; the WAV's path is the
last line printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cadenza.errors import AudioError, CadenzaError
from cadenza.runtime import events as ev
from cadenza.runtime.backends.base import Controls
from cadenza.runtime.graph.automation import Automation
from cadenza.runtime.graph.spec import Const, Graph, Intensity, PromptDef, State, Weight
from cadenza.runtime.sinks.file import FileSink


def _mix(**weights: float) -> tuple[tuple[str, float], ...]:
    return tuple((text.replace("_", " "), w) for text, w in weights.items())


#: (fraction of the piece, state name, (prompt text, weight) pairs, controls)
STATES: tuple[tuple[float, str, tuple[tuple[str, float], ...], Controls], ...] = (
    (0.0, "explore", _mix(calm_ambient_pads=1.0, dreamy_solo_piano=0.6), Controls(density=0.25, brightness=0.35)),
    (0.2, "danger rises", _mix(dark_techno=1.0, calm_ambient_pads=0.4), Controls(density=0.55, brightness=0.45)),
    (0.4, "battle", _mix(aggressive_drum_and_bass=1.0, dark_techno=0.3), Controls(density=0.9, brightness=0.75)),
    (0.65, "victory", _mix(epic_orchestral=1.0, uplifting_synthwave=0.5), Controls(density=0.6, brightness=0.7)),
    (0.85, "calm again", _mix(calm_ambient_pads=1.0, dreamy_solo_piano=0.5), Controls(density=0.2, brightness=0.3)),
)


def demo_graph() -> Graph:
    """The five states as a style graph: each state its own mix and controls; no transition rules, so each
    change is heard at once (the synth glides to the new mix)."""
    prompts = {text: PromptDef(text, text=text) for _, _, mix, _ in STATES for text, _ in mix}
    states = {}
    for _, name, mix, controls in STATES:
        entries = tuple(Weight(text, Const(w)) for text, w in mix)
        values = tuple((k, Const(getattr(controls, k))) for k in sorted(controls.requested()))
        states[name] = State(name, mix=entries, controls=values)
    first = STATES[0]
    return Graph(
        version=1, name="demo", source="<demo>", control_rate=100.0, parameters={}, prompts=prompts, nodes={},
        mix=tuple(Weight(text, Const(w)) for text, w in first[2]), default_mix={first[2][0][0]: 1.0},
        controls={}, states=states, states_driven_by=None, initial_state=first[1], transitions=(), stingers={},
        intensity=Intensity(), triggers={}, failsafe=None, prompt_audio={},
    )


def demo_timeline(seconds: float) -> list[Automation]:
    """A ``state`` input at each state's fraction of the piece (the first state is the graph's initial one)."""
    return [Automation(frac * seconds, "state", name) for frac, name, _, _ in STATES[1:]]


def run_demo(seconds: float = 60.0, out: Path = Path("out/demo.wav"), device: str | None = None,
             wav_only: bool = False, seed: int = 1) -> int:
    from cadenza.runtime.backends import get_backend
    from cadenza.runtime.conductor import Conductor
    from cadenza.runtime.render import check_seconds
    from cadenza.runtime.sinks import device as devices

    check_seconds(seconds)
    conductor = Conductor(demo_graph(), get_backend("synth"), seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    file_sink = FileSink(out)
    player = None
    if not wav_only:
        if device is not None or devices.has_output_device():
            try:
                player = devices.DeviceSink(device, buffer_seconds=0.25)
                print(f"playing on {player.device} — Ctrl+C stops", flush=True)
            except CadenzaError as exc:
                if device is not None:
                    raise
                print(f"no playable sound card ({exc}); rendering to a file instead", flush=True)
        else:
            print("no sound card found; rendering to a file instead", flush=True)
    print(f"  {0.0:5.1f} s  state → {STATES[0][1]}", flush=True)
    try:
        for block in conductor.run(demo_timeline(seconds), seconds):
            for e in block.events:
                if isinstance(e, ev.StateChange) and e.phase is ev.Phase.STARTED:
                    print(f"  {e.time:5.1f} s  state → {e.name}", flush=True)
            file_sink.write(block.pcm)
            if player is not None:
                try:
                    player.write(block.pcm)
                except AudioError as exc:
                    print(f"sound card failed ({exc}); finishing the file only", file=sys.stderr, flush=True)
                    player.close(drain=False)
                    player = None
    finally:
        file_sink.close()
        if player is not None:
            player.close()
    print(f"wrote {seconds:.0f} s of adaptive music to:")
    print(out.resolve())
    return 0
