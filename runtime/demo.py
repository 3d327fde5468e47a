"""``cadenza demo``: an adaptive piece in five game states, played live or written to a WAV.

A scripted stand-in for a game: the player explores, danger rises, a battle
breaks out, they win, calm returns. Each state is a weighted prompt mix and a
few controls; the synth glides between them on one continuous stream, the
way a game would steer it through the runtime. The WAV is always written; when
a sound card (or JACK server) is present the piece also plays on it in real
time. The WAV's path is the last line printed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cadenza.errors import AudioError, CadenzaError
from cadenza.runtime.backends.base import Controls, TextPrompt, WeightedPrompt
from cadenza.runtime.render import Cue, Renderer
from cadenza.runtime.sinks.file import FileSink


def _mix(**weights: float) -> tuple[WeightedPrompt, ...]:
    return tuple(WeightedPrompt(TextPrompt(text.replace("_", " ")), w) for text, w in weights.items())


#: (fraction of the piece, state name, prompts, controls)
STATES: tuple[tuple[float, str, tuple[WeightedPrompt, ...], Controls], ...] = (
    (0.0, "explore", _mix(calm_ambient_pads=1.0, dreamy_solo_piano=0.6), Controls(density=0.25, brightness=0.35)),
    (0.2, "danger rises", _mix(dark_techno=1.0, calm_ambient_pads=0.4), Controls(density=0.55, brightness=0.45)),
    (0.4, "battle", _mix(aggressive_drum_and_bass=1.0, dark_techno=0.3), Controls(density=0.9, brightness=0.75)),
    (0.65, "victory", _mix(epic_orchestral=1.0, uplifting_synthwave=0.5), Controls(density=0.6, brightness=0.7)),
    (0.85, "calm again", _mix(calm_ambient_pads=1.0, dreamy_solo_piano=0.5), Controls(density=0.2, brightness=0.3)),
)


def demo_cues(seconds: float) -> list[Cue]:
    return [Cue(frac * seconds, prompts, controls) for frac, _, prompts, controls in STATES]


def run_demo(seconds: float = 60.0, out: Path = Path("out/demo.wav"), device: str | None = None,
             wav_only: bool = False, seed: int = 1) -> int:
    from cadenza.runtime.sinks import device as devices

    renderer = Renderer(demo_cues(seconds), seconds, seed=seed)
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
    marks = [(int(c.at * 48000), name) for c, (_, name, _, _) in zip(renderer.cues, STATES)]
    frame = 0
    try:
        for pcm, _beats in renderer.blocks():
            while marks and marks[0][0] <= frame:
                at, name = marks.pop(0)
                print(f"  {at / 48000:5.1f} s  state → {name}", flush=True)
            file_sink.write(pcm)
            if player is not None:
                try:
                    player.write(pcm)
                except AudioError as exc:
                    print(f"sound card failed ({exc}); finishing the file only", file=sys.stderr, flush=True)
                    player.close(drain=False)
                    player = None
            frame += pcm.shape[0]
    finally:
        file_sink.close()
        if player is not None:
            player.close()
    print(f"wrote {seconds:.0f} s of adaptive music to:")
    print(out.resolve())
    return 0
