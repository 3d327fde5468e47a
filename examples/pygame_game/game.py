"""Asteroid dodge: a pygame game whose soundtrack comes live from a Cadenza runtime.

A ship dodges falling asteroids. Every few frames the game tells the runtime
how close the nearest asteroids are (``danger``), the hull's ``health`` and the
throttle (``speed``); it moves the music between states (cruise, evade,
critical), fires ``near_miss`` and ``hit`` triggers, and after ``--survive``
seconds fires ``survived``: a victory stinger and the triumph state. The
visuals pulse on the runtime's beats, posted into pygame's event queue by
:class:`cadenza.sdk.pygame.MusicPlayer`, which also plays the runtime's audio
through ``pygame.mixer`` in this process.

Run it::

    python examples/pygame_game/game.py                   # starts `cadenza serve --sink null` itself
    python examples/pygame_game/game.py --connect         # uses a runtime already running (default ports)
    SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=disk SDL_DISKAUDIOFILE=out.raw \\
        python examples/pygame_game/game.py --seconds 20 --autopilot   # headless: plays itself, exits

Keys: arrows move, up/down throttle, Esc quits. At exit it prints one line,
``summary: seconds=… frames=… beats=… bars=… stinger=… gaps=…``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

try:
    import pygame

    from cadenza.sdk.pygame import (
        CADENZA_BAR,
        CADENZA_BEAT,
        CADENZA_STATE,
        CADENZA_STINGER,
        MusicPlayer,
        pre_init,
    )
except ImportError as _missing:  # the example needs the [pygame] extra: one line, not a traceback
    if _missing.name != "pygame":
        raise
    sys.stderr.write("game.py: needs pygame, which is not installed: pip install 'cadenza[pygame]'\n")
    raise SystemExit(2) from None

from cadenza.sdk import CadenzaError, Client  # noqa: E402

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 800, 600
FPS = 60
SEND_EVERY = 3  # frames between parameter updates (20 Hz; the graph smooths them)


# --------------------------------------------------------------------------- the runtime


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Runtime:
    """``cadenza serve --sink null`` as a child process on free loopback ports (only this game hears it)."""

    def __init__(self) -> None:
        ports = [_free_port() for _ in range(3)]
        self.control, self.events, self.audio = (f"tcp://127.0.0.1:{p}" for p in ports)
        cmd = [sys.executable, "-m", "cadenza", "serve", "--sink", "null", "--control", self.control,
               "--events", self.events, "--audio", self.audio]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr: list[str] = []
        ready = threading.Event()

        def watch_stdout() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if "ready" in line:
                    ready.set()

        def keep_stderr() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.stderr.append(line.rstrip())

        threading.Thread(target=watch_stdout, daemon=True).start()
        threading.Thread(target=keep_stderr, daemon=True).start()
        deadline = time.monotonic() + 60.0
        while not ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SystemExit("game: `cadenza serve` did not start:\n" + "\n".join(self.stderr[-10:]))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- the game


@dataclass
class Rock:
    x: float
    y: float
    vx: float
    vy: float
    r: float
    spin: float
    shape: list[float] = field(default_factory=list)
    passed: bool = False


@dataclass
class World:
    rng: random.Random
    ship_x: float = WIDTH / 2
    ship_y: float = HEIGHT - 80
    health: float = 100.0
    throttle: float = 0.3
    rocks: list[Rock] = field(default_factory=list)
    stars: list[tuple[float, float, float]] = field(default_factory=list)
    danger: float = 0.0
    hits: int = 0
    near_misses: int = 0
    spawn_timer: float = 0.0

    def __post_init__(self) -> None:
        self.stars = [(self.rng.uniform(0, WIDTH), self.rng.uniform(0, HEIGHT), self.rng.uniform(0.3, 1.0))
                      for _ in range(120)]

    def spawn(self, elapsed: float) -> None:
        r = self.rng.uniform(14, 34)
        speed = (120 + 160 * self.throttle + 4 * elapsed) * self.rng.uniform(0.7, 1.2)
        shape = [self.rng.uniform(0.75, 1.15) for _ in range(9)]
        self.rocks.append(Rock(self.rng.uniform(r, WIDTH - r), -r, self.rng.uniform(-40, 40), speed, r,
                               self.rng.uniform(-2, 2), shape))

    def step(self, dt: float, elapsed: float, steer: float, throttle: float) -> list[str]:
        """Advance the world; returns the triggers that happened ("hit", "near_miss")."""
        happened: list[str] = []
        self.throttle = min(1.0, max(0.0, self.throttle + throttle * dt * 0.6))
        self.ship_x = min(WIDTH - 20, max(20, self.ship_x + steer * (260 + 200 * self.throttle) * dt))
        self.spawn_timer -= dt
        if self.spawn_timer <= 0:
            self.spawn(elapsed)
            self.spawn_timer = max(0.12, 0.55 - 0.35 * self.throttle - 0.01 * elapsed) * self.rng.uniform(0.6, 1.3)
        danger = 0.0
        kept: list[Rock] = []
        for rock in self.rocks:
            rock.x += rock.vx * dt
            rock.y += rock.vy * dt
            if rock.x < rock.r or rock.x > WIDTH - rock.r:
                rock.vx = -rock.vx
            d = math.hypot(rock.x - self.ship_x, rock.y - self.ship_y) - rock.r - 14
            if d < 0:
                self.health = max(0.0, self.health - 18.0)
                self.hits += 1
                happened.append("hit")
                continue
            if rock.y > self.ship_y and not rock.passed:
                rock.passed = True
                if d < 40:
                    self.near_misses += 1
                    happened.append("near_miss")
            if rock.y < self.ship_y + 20:  # only what is still coming counts as danger
                danger = max(danger, 1.0 - min(1.0, d / 220.0))
            if rock.y - rock.r < HEIGHT:
                kept.append(rock)
        self.rocks = kept
        self.danger = danger
        self.health = min(100.0, self.health + 1.5 * dt)  # the hull repairs itself, slowly
        return happened

    def autopilot(self, elapsed: float) -> tuple[float, float]:
        """(steer, throttle): move toward the lane with the most room ahead; push the throttle in waves."""
        best_x, best_score = self.ship_x, -1e9
        for i in range(17):
            x = 30 + i * (WIDTH - 60) / 16
            score = -abs(x - self.ship_x) * 0.15
            for rock in self.rocks:
                if rock.y > self.ship_y + rock.r:
                    continue
                t = max(0.0, (self.ship_y - rock.y) / max(rock.vy, 1.0))
                future_x = rock.x + rock.vx * t
                gap = abs(future_x - x) - rock.r
                if gap < 60:
                    score -= (60 - gap) * (2.0 if t < 1.0 else 0.6)
            if score > best_score:
                best_x, best_score = x, score
        steer = max(-1.0, min(1.0, (best_x - self.ship_x) / 40.0))
        want = 0.5 + 0.45 * math.sin(elapsed / 4.0)
        return steer, max(-1.0, min(1.0, (want - self.throttle) * 4))


@dataclass
class MusicView:
    """What the music told the game (from pygame events)."""

    beats: int = 0
    bars: int = 0
    bpm: float = 0.0
    beat_in_bar: int = 0
    pulse: float = 0.0
    state: str = "cruise"
    states: list[str] = field(default_factory=list)
    stingers: list[str] = field(default_factory=list)
    flash: float = 0.0


class MusicLink:
    """Send to the runtime without ever stopping the game: an error is printed once, then sending pauses 2 s.

    (The SDK client reconnects by itself and re-sends the graph and the last
    values when the runtime comes back.)
    """

    def __init__(self) -> None:
        self.errors = 0
        self.paused_until = 0.0

    def send(self, request: Callable[..., object], *args: object) -> None:
        if time.monotonic() < self.paused_until:
            return
        try:
            request(*args)
        except CadenzaError as exc:
            if self.errors == 0:
                print(f"game: the music did not answer ({exc}); playing on", file=sys.stderr)
            self.errors += 1
            self.paused_until = time.monotonic() + 2.0


def choose_state(world: World, current: str) -> str:
    """The game's own state machine, with hysteresis so the music does not flap."""
    if current == "triumph":
        return current
    if world.health < 35 or (current == "critical" and world.health < 50):
        return "critical"
    if world.danger > 0.6 or (current == "evade" and world.danger > 0.35):
        return "evade"
    return "cruise"


def draw(screen: pygame.Surface, font: pygame.font.Font, world: World, music: MusicView, elapsed: float,
         survive: float, won: bool) -> None:
    glow = music.pulse
    base = {"cruise": (8, 10, 30), "evade": (30, 10, 40), "critical": (45, 5, 10), "triumph": (10, 30, 25)}
    r, g, b = base.get(music.state, (8, 10, 30))
    k = 1.0 + 1.2 * glow + 2.0 * music.flash
    screen.fill((min(255, int(r * k)), min(255, int(g * k)), min(255, int(b * k))))
    speed = 40 + 260 * world.throttle
    for i, (x, y, depth) in enumerate(world.stars):
        y = (y + elapsed * speed * depth) % HEIGHT
        c = int(120 + 135 * depth * (0.6 + 0.4 * glow))
        pygame.draw.circle(screen, (c, c, c), (int(x), int(y)), 1 if depth < 0.7 else 2)
    for rock in world.rocks:
        points = []
        for j, f in enumerate(rock.shape):
            a = rock.spin * elapsed + j * 2 * math.pi / len(rock.shape)
            points.append((rock.x + math.cos(a) * rock.r * f, rock.y + math.sin(a) * rock.r * f))
        pygame.draw.polygon(screen, (150, 130, 110), points)
        pygame.draw.polygon(screen, (200, 180, 150), points, 2)
    size = 16 * (1.0 + 0.25 * glow)
    x, y = world.ship_x, world.ship_y
    hull = (int(90 + 165 * world.health / 100), int(200 * world.health / 100 + 40), 255)
    pygame.draw.polygon(screen, hull, [(x, y - size), (x - size * 0.8, y + size), (x + size * 0.8, y + size)])
    flame = size * (0.6 + world.throttle) * (1.0 + 0.5 * glow)
    pygame.draw.polygon(screen, (255, 160, 40), [(x - 6, y + size), (x + 6, y + size), (x, y + size + flame)])
    for i in range(4):  # the bar, one light per beat
        on = i == music.beat_in_bar and music.beats > 0
        pygame.draw.circle(screen, (255, 230, 120) if on else (60, 60, 80), (WIDTH - 90 + 20 * i, 24), 7)
    pygame.draw.rect(screen, (60, 20, 20), (16, 16, 200, 12))
    pygame.draw.rect(screen, (80, 220, 120), (16, 16, int(2 * world.health), 12))
    text = (f"{music.state}  {music.bpm:.0f} bpm  danger {world.danger:.2f}  "
            f"{'SURVIVED!' if won else f'survive {max(0.0, survive - elapsed):.0f} s'}")
    screen.blit(font.render(text, True, (230, 230, 240)), (16, 36))


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Asteroid dodge with a live Cadenza soundtrack.")
    p.add_argument("--seconds", type=float, default=0.0, help="quit after this long (default: play until Esc)")
    p.add_argument("--survive", type=float, default=None,
                   help="seconds to survive for the victory stinger (default 45, or 3/4 of --seconds)")
    p.add_argument("--autopilot", action="store_true", help="the ship flies itself")
    p.add_argument("--connect", action="store_true",
                   help="use a runtime that is already running (--control/--events/--audio) instead of starting one")
    p.add_argument("--control", help="with --connect: the control endpoint (default $CADENZA_CONTROL, else "
                                     "tcp://127.0.0.1:5555)")
    p.add_argument("--events", help="with --connect: the events endpoint (default $CADENZA_EVENTS, else :5556)")
    p.add_argument("--audio", help="with --connect: the audio endpoint (default $CADENZA_AUDIO, else :5557)")
    p.add_argument("--graph", default=str(HERE / "graph.yaml"), help="the style graph to load")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--jitter-ms", type=float, default=None, help="audio gathered before playing (MusicPlayer)")
    p.add_argument("--block-ms", type=float, default=None, help="audio per block handed to pygame.mixer")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    survive = args.survive if args.survive is not None else (0.75 * args.seconds if args.seconds else 45.0)
    runtime = None if args.connect else Runtime()
    given = (args.control, args.events, args.audio) if runtime is None else (
        runtime.control, runtime.events, runtime.audio)
    # what is not given comes from the SDK's defaults ($CADENZA_CONTROL/_EVENTS/_AUDIO, else the runtime's)
    endpoints = {name: value for name, value in zip(("control", "events"), given[:2]) if value}
    audio = {"audio": given[2]} if given[2] else {}

    client = Client(**endpoints, name="asteroid-dodge", timeout=0.5)
    link = MusicLink()
    client.load_graph(args.graph)
    pre_init()
    pygame.init()
    screen = pygame.display.set_mode((WIDTH, HEIGHT))
    pygame.display.set_caption("Asteroid dodge — Cadenza")
    font = pygame.font.Font(None, 26)
    clock = pygame.time.Clock()
    world = World(random.Random(args.seed))
    music = MusicView()
    tuning = {k: v for k, v in (("jitter_ms", args.jitter_ms), ("block_ms", args.block_ms)) if v is not None}
    player = MusicPlayer(client, **audio, **tuning)
    frames = 0
    won_at: float | None = None
    sent_state = "cruise"
    try:
        player.start()
        t0 = time.monotonic()
        running = True
        while running:
            dt = min(clock.tick(FPS) / 1000.0, 0.05)
            elapsed = time.monotonic() - t0
            for event in pygame.event.get():
                if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                    running = False
                elif event.type == CADENZA_BEAT:
                    music.beats += 1
                    music.bpm = event.bpm
                    music.beat_in_bar = event.beat_in_bar
                    music.pulse = 1.0 if event.downbeat else 0.6
                elif event.type == CADENZA_BAR:
                    music.bars += 1
                elif event.type == CADENZA_STATE and event.phase == "started":
                    music.state = event.state
                    music.states.append(event.state)
                elif event.type == CADENZA_STINGER:
                    music.stingers.append(event.stinger)
                    music.flash = 1.0
            if args.seconds and elapsed >= args.seconds:
                running = False
            if args.autopilot:
                steer, throttle = world.autopilot(elapsed)
            else:
                keys = pygame.key.get_pressed()
                steer = float(keys[pygame.K_RIGHT]) - float(keys[pygame.K_LEFT])
                throttle = float(keys[pygame.K_UP]) - float(keys[pygame.K_DOWN])
            happened = world.step(dt, elapsed, steer, throttle)
            for name in dict.fromkeys(happened):
                link.send(client.trigger, name)
            if won_at is None and elapsed >= survive:
                won_at = elapsed
                link.send(client.trigger, "survived")  # victory stinger + the triumph state
                sent_state = "triumph"
            wanted = choose_state(world, sent_state)
            if wanted != sent_state:
                link.send(client.set_state, wanted)
                sent_state = wanted
            if frames % SEND_EVERY == 0:
                link.send(client.set_many, {"danger": world.danger, "health": world.health, "speed": world.throttle})
            music.pulse *= math.exp(-dt * 6.0)
            music.flash *= math.exp(-dt * 2.0)
            draw(screen, font, world, music, elapsed, survive, won_at is not None)
            pygame.display.flip()
            frames += 1
        played = time.monotonic() - t0
    finally:
        player.close()
        stats = player.stats
        client.close()
        pygame.quit()  # closes the audio device (SDL's disk driver finishes its file)
        if runtime is not None:
            runtime.close()
    print(f"summary: seconds={played:.1f} frames={frames} fps={frames / max(played, 1e-9):.1f} "
          f"beats={music.beats} bars={music.bars} stinger={len(music.stingers)} "
          f"victory_at={won_at if won_at is None else round(won_at, 1)} "
          f"states={'>'.join(music.states) or '-'} hits={world.hits} near_misses={world.near_misses} "
          f"health={world.health:.0f} chunks={stats.chunks} gaps={stats.gaps} lost_chunks={stats.lost_chunks} "
          f"dropped_frames={stats.dropped_frames} events_failed={stats.events_failed} music_errors={link.errors} "
          f"audio_error={type(player.error).__name__ if player.error else '-'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
