"""Benchmark of the WebSocket gateway (``cadenza serve --ws``): round trips against ZeroMQ, and a slider flood.

(a) **SetParameters round trip**, one request in flight, on one runtime in one
    run: over WebSocket binary frames, WebSocket JSON text frames, and the
    ZeroMQ control socket (the baseline), runs interleaved so that a noisy
    moment hits all three. Python clients on each side, both single-threaded and
    blocking: a pyzmq DEALER, and websockets' Sans-I/O client on a socket
    (:class:`LeanClient`).
(b) **1,000 slider moves a second**: a client sends 1,000 SetParameters a
    second over WebSocket JSON (what the panel's slider sends) for 10 s, reading
    its replies, while ``Status.lookahead_ms`` and ``Status.xruns`` are sampled
    over ZeroMQ — before (the same length of time, idle) and during. The
    runtime widens its lookahead when generation is held up, so an unchanged
    lookahead and no new xruns mean the flood did not reach the music.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import zmq
from websockets.asyncio.client import connect as aconnect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from bench.proc import Serve
from bench.table import Row
from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.runtime.ws_gateway import loop_name
from tests.server_harness import ACTION_GAME, ServeProcess, free_ports

GOAL = "≤ 2× the ZeroMQ round trip"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class LeanClient:
    """A single-threaded blocking WebSocket client: websockets' Sans-I/O ``ClientProtocol`` on a plain socket.

    The counterpart of the pyzmq DEALER it is compared with (no background thread, one ``recv`` per reply), so
    the round trips compare the two paths through the runtime rather than the two client libraries.
    """

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.sock = socket.create_connection((parsed.hostname, parsed.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proto = ClientProtocol(parse_uri(url), max_size=None)
        self.events: list[Any] = []
        self.proto.send_request(self.proto.connect())
        self._flush()
        while self.proto.state is not State.OPEN:
            self._read()

    def _flush(self) -> None:
        for data in self.proto.data_to_send():
            if data:
                self.sock.sendall(data)

    def _read(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the gateway closed the connection")
        self.proto.receive_data(data)
        self.events.extend(self.proto.events_received())
        self._flush()

    def send(self, item: str | bytes) -> None:
        if isinstance(item, str):
            self.proto.send_text(item.encode())
        else:
            self.proto.send_binary(item)
        self._flush()

    def recv(self) -> bytes:
        while True:
            while self.events:
                event = self.events.pop(0)
                if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
                    return bytes(event.data)
            self._read()

    def close(self) -> None:
        self.proto.send_close(1000)
        self._flush()
        self.sock.close()


def round_trips(server: ServeProcess, url: str, ctx: zmq.Context[Any], n: int, repeats: int) -> dict[str, list[float]]:
    """Median and p99 round trips (µs) per run. Each client does what a client of its kind does for every request,
    inside the timed loop: builds and encodes the request, sends it, reads the reply and decodes it — protobuf
    (``wire.encode_request`` / ``wire.decode_reply``) on ZeroMQ and WebSocket binary frames, ``json.dumps`` /
    ``json.loads`` on JSON text frames (a page or an engine sends the fields it sets; defaults left out, as
    protobuf's JSON mapping allows)."""
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(server.ep.local("control"))
    out: dict[str, list[float]] = {f"{k}_{q}": [] for k in ("zmq", "ws_bin", "ws_json") for q in ("p50", "p99")}
    ws = LeanClient(url)
    try:
        def zmq_run(m: int) -> list[float]:
            rtts = []
            for i in range(m):
                t = time.perf_counter()
                dealer.send(wire.encode_request(pb.SetParameters(values=[pb.ParameterUpdate(
                    name="danger", number=(i % 100) / 100)]), i + 1))
                wire.decode_reply(dealer.recv())
                rtts.append(time.perf_counter() - t)
            return rtts

        def ws_bin_run(m: int) -> list[float]:
            rtts = []
            for i in range(m):
                t = time.perf_counter()
                ws.send(wire.encode_request(pb.SetParameters(values=[pb.ParameterUpdate(
                    name="danger", number=(i % 100) / 100)]), i + 1))
                wire.decode_reply(ws.recv())
                rtts.append(time.perf_counter() - t)
            return rtts

        def ws_json_run(m: int) -> list[float]:
            rtts = []
            for i in range(m):
                t = time.perf_counter()
                ws.send(json.dumps({"protocolVersion": 1, "requestId": i + 1, "setParameters": {
                    "values": [{"name": "danger", "number": (i % 100) / 100}]}}))
                json.loads(ws.recv())
                rtts.append(time.perf_counter() - t)
            return rtts

        zmq_run(min(n, 300))  # warm up
        ws_bin_run(min(n, 300))
        ws_json_run(min(n, 300))
        for _ in range(repeats):
            for key, run in (("zmq", zmq_run), ("ws_bin", ws_bin_run), ("ws_json", ws_json_run)):
                rtts = run(n)
                out[f"{key}_p50"].append(1e6 * statistics.median(rtts))
                out[f"{key}_p99"].append(1e6 * _pct(rtts, 99))
    finally:
        ws.close()
    dealer.close(0)
    return out


def _sample(ctl: zmq.Socket[Any], seconds: float,
            stop: threading.Event | None = None) -> tuple[list[float], list[float], int]:
    """Every 100 ms for ``seconds`` (or until ``stop``): Status.lookahead_ms (the target, widened on hold-ups) and
    the audio actually queued ahead of the output, ms (``stream_time - heard_time``); and the xruns at the end."""
    looks: list[float] = []
    leads: list[float] = []
    xruns = 0
    end = time.monotonic() + seconds
    rid = 10_000_000
    while time.monotonic() < end and not (stop is not None and stop.is_set()):
        rid += 1
        ctl.send(wire.encode_request(pb.GetStatus(), rid))
        if ctl.poll(5000):
            reply = wire.decode_reply(ctl.recv())
            status: Any = reply.body
            looks.append(status.lookahead_ms)
            if status.heard_time:
                leads.append((int(status.stream_time) - int(status.heard_time)) * 1000.0 / wire.DEFAULT_SAMPLE_RATE)
            xruns = int(status.xruns)
        time.sleep(0.1)
    return looks, leads, xruns


async def _sliders(url: str, rate: float, seconds: float) -> tuple[int, int, int]:
    """Send ``rate`` SetParameters a second as JSON text frames for ``seconds``; (sent, Ok replies, errors)."""
    async with aconnect(url, compression=None) as ws:
        counts = {"ok": 0, "error": 0}

        async def read() -> None:
            async for msg in ws:
                counts["error" if '"error"' in str(msg) else "ok"] += 1

        reader = asyncio.create_task(read())
        sent = 0
        t0 = time.monotonic()
        while (now := time.monotonic() - t0) < seconds:
            due = int(now * rate)
            while sent < due:
                sent += 1
                value = (sent % 1000) / 1000
                await ws.send('{"protocolVersion":1,"requestId":%d,"setParameters":{"values":[{"name":"danger",'
                              '"number":%g}]}}' % (sent, value))
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.5)
        reader.cancel()
        return sent, counts["ok"], counts["error"]


def slider_flood(server: ServeProcess, url: str, ctx: zmq.Context[Any], seconds: float) -> dict[str, Any]:
    ctl = ctx.socket(zmq.DEALER)
    ctl.setsockopt(zmq.LINGER, 0)
    ctl.connect(server.ep.local("control"))
    before, lead_before, xruns_before = _sample(ctl, seconds)
    result: dict[str, Any] = {}

    def flood() -> None:
        result["sent"], result["ok"], result["errors"] = asyncio.run(_sliders(url, 1000.0, seconds))

    thread = threading.Thread(target=flood)
    t0 = time.monotonic()
    thread.start()
    during, lead_during, xruns_after = _sample(ctl, seconds)
    thread.join()
    result["wall"] = time.monotonic() - t0
    ctl.close(0)
    result.update(before=before, during=during, xruns_before=xruns_before, xruns_after=xruns_after,
                  lead_before=lead_before, lead_during=lead_during)
    return result


def _spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    return (f"median {statistics.median(ordered):.1f} ms, min {ordered[0]:.1f} ms, "
            f"p01 {ordered[int(0.01 * (len(ordered) - 1))]:.1f} ms")


def rows(quick: bool) -> list[Row]:
    n, repeats = (1000, 3) if quick else (3000, 5)
    flood_s = 5.0 if quick else 10.0
    out: list[Row] = []
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        with tempfile.TemporaryDirectory(prefix="cadenza-bench-ws-") as tmp:
            port, = free_ports(1)
            with Serve(["--graph", str(ACTION_GAME), "--ws", f"127.0.0.1:{port}"], Path(tmp), sink="null",
                       name="ws") as server:
                url = f"ws://127.0.0.1:{port}/ws"
                rt = round_trips(server, url, ctx, n, repeats)
                z50, z99 = statistics.median(rt["zmq_p50"]), statistics.median(rt["zmq_p99"])
                for key, what in (("ws_bin", "binary frames"), ("ws_json", "JSON text frames")):
                    w50, w99 = statistics.median(rt[f"{key}_p50"]), statistics.median(rt[f"{key}_p99"])
                    note = (f"WebSocket rows: the gateway's event loop {loop_name()}; "
                            "the same runtime, runs interleaved with the ZeroMQ baseline; "
                            "single-threaded blocking Python clients on loopback (pyzmq DEALER; websockets' "
                            "Sans-I/O client on a socket); each encodes its request and decodes the reply inside the timed "
                            "loop (protobuf for ZeroMQ and binary frames, json.dumps/json.loads for JSON frames, "
                            "which carry the fields a page sets: defaults left out).")
                    if key == "ws_json":
                        note += (" JSON frames: the gateway reads the common request and writes every reply from "
                                 "the descriptors (json_format, pure Python on this protobuf, reads the rest): "
                                 "~5 µs and ~4 µs on an idle core against ~14 µs and ~7 µs with json_format, "
                                 "~17 µs and ~11 µs in the runtime's process (cold caches: the runtime's other "
                                 "threads run between requests) against ~37 µs and ~16 µs.")
                    out.append(Row(f"SetParameters round trip over WebSocket, {what} ({n} per run, one in flight)",
                                   f"median {w50:.0f} µs, p99 {w99:.0f} µs",
                                   f"ZeroMQ control socket: median {z50:.0f} µs, p99 {z99:.0f} µs",
                                   f"{w50 / z50:.2f}× (p99 {w99 / z99:.2f}×)", GOAL, w50 / z50 <= 2.0, repeats,
                                   note))
                fl = slider_flood(server, url, ctx, flood_s)
                b, d = fl["before"], fl["during"]
                b_max, d_max = max(b), max(d)
                met = d_max <= b_max and fl["xruns_after"] == fl["xruns_before"] and fl["errors"] == 0
                out.append(Row(f"1,000 SetParameters/s over WebSocket JSON for {flood_s:g} s: lookahead",
                               f"lookahead during: median {statistics.median(d):.1f} ms, max {d_max:.1f} ms; "
                               f"xruns +{fl['xruns_after'] - fl['xruns_before']}; {fl['sent']:,} sent, "
                               f"{fl['ok']:,} Ok, {fl['errors']} errors; audio queued ahead of the output: "
                               f"{_spread(fl['lead_during'])}",
                               f"idle before: median {statistics.median(b):.1f} ms, max {b_max:.1f} ms; queued "
                               f"{_spread(fl['lead_before'])}",
                               f"{d_max / b_max:.2f}×", "lookahead unchanged, no xruns", met, 1,
                               "Slider flood: Status.lookahead_ms sampled every 100 ms over ZeroMQ; the runtime "
                               "widens the lookahead (and counts an xrun) when generation is held up."))
    finally:
        ctx.destroy(linger=0)
    return out


if __name__ == "__main__":
    from bench.table import markdown

    print(markdown(rows(quick=True)))
