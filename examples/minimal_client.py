"""The smallest Cadenza client. Start a runtime first (`cadenza serve`), then: python examples/minimal_client.py

A runtime elsewhere: --control/--events, or CADENZA_CONTROL/CADENZA_EVENTS in the environment (the SDK reads them).
"""

import argparse
import time
from pathlib import Path

from cadenza.sdk import Client

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--control", help="the runtime's control endpoint (default $CADENZA_CONTROL, else tcp://127.0.0.1:5555)")
parser.add_argument("--events", help="the runtime's events endpoint (default $CADENZA_EVENTS, else tcp://127.0.0.1:5556)")
args = parser.parse_args()
endpoints = {name: value for name, value in vars(args).items() if value}  # the rest: the SDK's defaults

with Client(**endpoints) as music:
    music.load_graph(Path(__file__).parent / "action_game" / "graph.yaml")
    music.on_beat(lambda ev: print(f"beat {ev.beat:3d}  bar {ev.bar:2d}  {ev.bpm:5.1f} bpm  at {ev.seconds:6.2f} s"))
    for step in range(41):  # danger rises from 0 to 1 over four seconds
        music.set(danger=step / 40)
        time.sleep(0.1)
    music.trigger("boss_defeated")  # the victory stinger, back to exploring
    time.sleep(4)
