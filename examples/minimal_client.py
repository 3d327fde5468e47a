"""The smallest Cadenza client. Start a runtime first (`cadenza serve`), then: python examples/minimal_client.py"""

import time
from pathlib import Path

from cadenza.sdk import Client

with Client() as music:  # tcp://127.0.0.1:5555 (control) and :5556 (events)
    music.load_graph(Path(__file__).parent / "action_game" / "graph.yaml")
    music.on_beat(lambda ev: print(f"beat {ev.beat:3d}  bar {ev.bar:2d}  {ev.bpm:5.1f} bpm  at {ev.seconds:6.2f} s"))
    for step in range(41):  # danger rises from 0 to 1 over four seconds
        music.set(danger=step / 40)
        time.sleep(0.1)
    music.trigger("boss_defeated")  # the victory stinger, back to exploring
    time.sleep(4)
