"""Simulated installation sensors sending OSC to ``cadenza osc`` — the pattern any sensor rig follows.

Four sensors at 60 Hz, each with its own noise: a motion sensor (how much the
visitor moves, 0–1), a presence sensor (a distance sensor's confidence that
someone is there, 0–1, noisy around the threshold), a light meter (lux, a slow
daylight swing with flicker) and a position tracker (``pos_x``/``pos_y``, 0–1).
Visitors come and go at random. Each reading is one OSC message::

    /cadenza/param/motion   0.42
    /cadenza/param/presence 0.81
    /cadenza/param/light    312.5
    /cadenza/param/pos_x    0.33
    /cadenza/param/pos_y    0.71

Run it with the listening-room graph::

    cadenza serve --graph examples/installation/graph.yaml &
    cadenza osc --listen 127.0.0.1:9000 &
    python examples/installation/sensors.py --port 9000 --seconds 60

The same messages from other tools (the bridge coalesces whatever rate they send at):

* TouchDesigner: an OSC Out CHOP to 127.0.0.1:9000 whose channels are named
  ``cadenza/param/motion`` … (or an OSC Out DAT with ``sendOSC('/cadenza/param/motion', [v])``).
* Max: ``[prepend /cadenza/param/motion]`` → ``[udpsend 127.0.0.1 9000]``.
* Pure Data (vanilla): ``[oscformat cadenza param motion]`` → ``[netsend -u -b]`` after
  ``[connect 127.0.0.1 9000(``.
* Arduino (CNMAT OSC library): ``OSCMessage msg("/cadenza/param/light"); msg.add(lux);``
  sent over WiFiUDP / EthernetUDP, or over serial to a small forwarder.

Triggers and states: ``/cadenza/trigger/<name>`` (a button: 1 on press, 0 on
release — only the press fires) and ``/cadenza/state <label>``.
``--glitches`` mixes in what real rigs send now and then (NaN, out-of-range
spikes, a name the graph does not know): the bridge logs each once and the
music plays on.

OSC over UDP says nothing back, so at the end the script asks the runtime
(``--control``, default ``$CADENZA_CONTROL`` as for ``cadenza ctl`` and
``cadenza osc``) how many parameter updates reached it: none is exit status 1
with a line saying what to check (``--no-check`` skips this, for a rig whose
runtime is not reachable from here). Without python-osc (the ``[osc]`` extra)
it says so on one line, exit status 2.
"""

from __future__ import annotations

import argparse
import math
import random
import time
import sys
from dataclasses import dataclass

try:
    from pythonosc.udp_client import SimpleUDPClient
except ImportError:  # `pip install cadenza` without the extra: one line, not a traceback
    sys.stderr.write("sensors.py: needs python-osc, which is not installed: pip install 'cadenza[osc]'\n")
    raise SystemExit(2) from None


@dataclass
class Room:
    """A room with at most one visitor, who walks between random spots and pauses."""

    rng: random.Random
    present: bool = False
    x: float = 0.5
    y: float = 0.5
    tx: float = 0.5
    ty: float = 0.5
    speed: float = 0.0
    until: float = 0.0  # when the visitor arrives or leaves next

    def step(self, t: float, dt: float) -> None:
        if t >= self.until:
            self.present = not self.present
            self.until = t + (self.rng.uniform(8, 25) if self.present else self.rng.uniform(3, 10))
            if self.present:
                self.x, self.y = self.rng.choice([0.0, 1.0]), self.rng.random()  # in through a door
        if not self.present:
            self.speed *= 0.9
            return
        if math.hypot(self.tx - self.x, self.ty - self.y) < 0.03 or self.rng.random() < 0.004:
            self.tx, self.ty = self.rng.random(), self.rng.random()
        pace = 0.0 if self.rng.random() < 0.3 else self.rng.uniform(0.05, 0.35)  # stands still, strolls or hurries
        self.speed += 0.05 * (pace - self.speed)
        d = math.hypot(self.tx - self.x, self.ty - self.y) or 1.0
        self.x = min(1.0, max(0.0, self.x + (self.tx - self.x) / d * self.speed * dt))
        self.y = min(1.0, max(0.0, self.y + (self.ty - self.y) / d * self.speed * dt))


def readings(room: Room, t: float, rng: random.Random) -> dict[str, float]:
    """One noisy reading of every sensor."""
    motion = min(1.0, max(0.0, room.speed / 0.35 + rng.gauss(0, 0.05)))
    presence = min(1.0, max(0.0, (0.8 if room.present else 0.15) + rng.gauss(0, 0.12)))
    daylight = 350 + 300 * math.sin(2 * math.pi * t / 120.0)  # a day in two minutes
    light = min(1000.0, max(0.0, daylight * (1 + rng.gauss(0, 0.02)) + (40 if rng.random() < 0.01 else 0)))
    jitter = 0.01 if room.present else 0.0
    return {"motion": motion, "presence": presence, "light": light,
            "pos_x": min(1.0, max(0.0, room.x + rng.gauss(0, jitter))),
            "pos_y": min(1.0, max(0.0, room.y + rng.gauss(0, jitter)))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Simulated sensors → OSC → cadenza osc.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--rate", type=float, default=60.0, help="readings per second per sensor (default 60)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (default: run until Ctrl-C)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--glitches", action="store_true", help="now and then send NaN, spikes and unknown names")
    p.add_argument("--quiet", action="store_true", help="no line per second")
    p.add_argument("--control", help="the runtime `cadenza osc` drives, asked at the end whether the updates "
                                     "arrived (default $CADENZA_CONTROL, else tcp://127.0.0.1:5555)")
    p.add_argument("--no-check", action="store_true", help="do not ask the runtime (it is not reachable from here)")
    args = p.parse_args(argv)
    before = None if args.no_check else parameter_updates(args.control)
    if before is None and not args.no_check:
        return 1

    rng = random.Random(args.seed)
    room = Room(rng)
    osc = SimpleUDPClient(args.host, args.port)
    dt = 1.0 / args.rate
    sent = 0
    t0 = time.monotonic()
    next_tick = t0
    last_print = -1
    try:
        while not args.seconds or time.monotonic() - t0 < args.seconds:
            t = time.monotonic() - t0
            room.step(t, dt)
            values = readings(room, t, rng)
            if args.glitches and rng.random() < 0.005:
                values[rng.choice(list(values))] = rng.choice([math.nan, 5000.0, -3.0])
            for name, value in values.items():
                osc.send_message(f"/cadenza/param/{name}", float(value))
                sent += 1
            if args.glitches and rng.random() < 0.002:
                osc.send_message("/cadenza/param/humidity", 0.5)
            if not args.quiet and int(t) != last_print:
                last_print = int(t)
                print(f"{t:6.1f} s  {'visitor' if room.present else 'empty  '}  "
                      + "  ".join(f"{k}={v:.2f}" for k, v in values.items()) + f"  ({sent} messages)", flush=True)
            next_tick += dt
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()  # behind: skip, do not burst
    except KeyboardInterrupt:
        pass
    finally:
        close = getattr(osc, "close", None)
        if close is not None:
            close()
    print(f"sensors: sent {sent} OSC messages in {time.monotonic() - t0:.1f} s", flush=True)
    if args.no_check or before is None:
        return 0
    time.sleep(0.2)  # the bridge's last period
    after = parameter_updates(args.control)
    if after is None:
        return 1
    if after <= before:
        print(f"sensors: error: the runtime received no parameter update — is `cadenza osc` listening on "
              f"{args.host}:{args.port}, and driving this runtime (its --control, or $CADENZA_CONTROL, the same "
              "as here)?", file=sys.stderr, flush=True)
        return 1
    print(f"sensors: the runtime received {after - before} parameter updates", flush=True)
    return 0


def parameter_updates(control: str | None) -> int | None:
    """How many SetParameters the runtime has answered so far (its status), None (said why) when none answers."""
    from cadenza.endpoints import default_endpoint
    from cadenza.sdk import CadenzaError, Client

    try:
        with Client(control or default_endpoint("control"), timeout=2.0, name="sensors", heartbeat=0) as c:
            return c.status().requests.get("set_parameters", 0)
    except CadenzaError as exc:
        print(f"sensors: error: cannot ask the runtime whether the updates arrive: {exc} (or give --no-check)",
              file=sys.stderr, flush=True)
        return None


if __name__ == "__main__":
    raise SystemExit(main())
