"""Audio on the wire: bytes per second a subscriber receives from the float32 and the int16 audio PUB.

One ``cadenza serve`` (synth, null sink) with both audio sockets; two plain SUBs
(ZeroMQ defaults, as an integrator's client would be) read at once, so both
count the same chunks; each run counts the bytes of the frames received over a
window. The int16 socket carries the same chunks as INT16_LE: half the PCM
bytes, plus the same chunk header (sequence, stream time, rate, channels,
frames, format), so the ratio sits a little above 0.5.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

from bench.proc import Serve
from bench.table import Row
from cadenza.proto import wire
from tests.server_harness import ACTION_GAME, free_ports

GOAL = "≤ 0.51× float32 (half the PCM, same header)"


def measure(workdir: Path, ctx: zmq.Context[Any], seconds: float, repeats: int) -> dict[str, list[float]]:
    """Bytes per second received on each audio socket, one figure per run; chunk sequences checked equal."""
    (port,) = free_ports(1)
    int16 = f"tcp://127.0.0.1:{port}"
    out: dict[str, list[float]] = {"float32": [], "int16": [], "chunk_f32": [], "chunk_i16": []}
    with Serve(["--graph", str(ACTION_GAME), "--audio-int16", int16], workdir, sink="null", name="audio") as server:
        socks = {}
        for name, endpoint in (("float32", server.ep.local("audio")), ("int16", int16)):
            sock = ctx.socket(zmq.SUB)
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(endpoint)
            socks[name] = sock
        poller = zmq.Poller()
        for sock in socks.values():
            poller.register(sock, zmq.POLLIN)
        time.sleep(0.5)  # both subscriptions in place
        for _ in range(repeats):
            for sock in socks.values():
                while sock.poll(0):
                    sock.recv()
            counted = {name: 0 for name in socks}
            chunks = {name: 0 for name in socks}
            sizes: dict[str, int] = {}
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                for sock, _ in poller.poll(int(left * 1000)):
                    name = next(n for n, s in socks.items() if s is sock)
                    data = sock.recv()
                    wire.decode_audio(data)  # a real chunk, not noise
                    counted[name] += len(data)
                    chunks[name] += 1
                    sizes[name] = len(data)
            out["float32"].append(counted["float32"] / seconds)
            out["int16"].append(counted["int16"] / seconds)
            out["chunk_f32"].append(sizes.get("float32", 0))
            out["chunk_i16"].append(sizes.get("int16", 0))
        for sock in socks.values():
            sock.close(0)
    return out


def rows(quick: bool) -> list[Row]:
    seconds, repeats = (2.0, 3) if quick else (5.0, 5)
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        with tempfile.TemporaryDirectory(prefix="cadenza-bench-audio-") as tmp:
            m = measure(Path(tmp), ctx, seconds, repeats)
    finally:
        ctx.destroy(linger=0)
    f32, i16 = statistics.median(m["float32"]), statistics.median(m["int16"])
    if f32 <= 0 or i16 <= 0:
        return [Row("audio PUB bytes/s received by a subscriber, int16 socket (--audio-int16)",
                    f"failed: no audio received (float32 {f32:.0f} B/s, int16 {i16:.0f} B/s)", goal=GOAL, met=False)]
    ratio = i16 / f32
    return [Row("audio PUB bytes/s received by a subscriber, int16 socket (--audio-int16)",
                f"{i16 / 1000:,.1f} kB/s ({i16 * 8 / 1e6:.2f} Mbit/s; {m['chunk_i16'][-1]:.0f} B a 10 ms chunk)",
                f"float32 socket: {f32 / 1000:,.1f} kB/s ({f32 * 8 / 1e6:.2f} Mbit/s; "
                f"{m['chunk_f32'][-1]:.0f} B a chunk)",
                f"{ratio:.3f}×", GOAL, ratio <= 0.51, repeats,
                f"Audio bytes: two SUBs read both audio PUBs of one `cadenza serve` at once for {seconds:g} s per "
                "run; bytes are the frames' sizes on the wire (Envelope included, ZeroMQ framing not).")]
