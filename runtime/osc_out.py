"""OSC out: the runtime's beats, bars, states, stingers and level as OSC messages, each sent when it is heard.

``cadenza osc --send HOST:PORT`` (repeatable) adds this to the bridge
(:mod:`cadenza.runtime.osc` is the input side). Address space (0-based
counts, as on the wire's ``Beat``: bar 0 is the stream's first bar, beat 0
the downbeat)::

    /cadenza/beat    <int bar> <int beat> <float bpm>   every beat, at its heard time (beat = beat in the bar)
    /cadenza/bar     <int bar>                          every downbeat, at its heard time
    /cadenza/state   <string name> <string phase>       "started" / "completed" at their heard time;
                                                        "scheduled" (a change waiting for its beat or bar)
                                                        and "cancelled" (one withdrawn) as soon as announced
    /cadenza/stinger <string name>                      at its heard time
    /cadenza/level   <float LUFS>                       short-term loudness (EBU R128, 3 s, K-weighted)
                                                        --level-hz times a second, at the heard time of
                                                        the window's last sample (0: off); without audio
                                                        (paused, stopped, the runtime away) it goes on at
                                                        the same rate, sent at once, the meter fed silence:
                                                        it falls to -120 (silence) within 3 s
    /cadenza/param/<name> <float | string>              --echo-params: each parameter's value from the
                                                        status event (1 Hz), at its heard time

Timing. Every event carries ``heard_at`` (the runtime's heard clock: the
Unix time its sample leaves the output, device latency included) and arrives
ahead of it by about the lookahead. The level is computed here, from the
runtime's int16 audio socket (half the bytes of float32; the runtime does not
publish a level, and measuring the audio itself is what a meter does), and
each chunk's ``stream_time`` is put on the heard clock by the latest
(``stream_time``, ``heard_at``) pair of any event. Messages go into one
schedule (a heap) that a sender thread drains::

    event thread (SDK)  ─┐                      sender thread
    audio thread        ─┴─► put(due, msg) ──►  [heap] ── wait until ~2 ms before due (condition wait),
                              (never blocks)              then yield-spin to due → sendto (non-blocking
                                                          UDP, each target) → counters

The spin makes the error the clock's, not the wakeup's: a timed wait on a
loaded machine wakes late by a scheduler slice, so it is aimed
:data:`SPIN_S` early and the rest is spent yielding (``time.sleep(0)``). The
sender thread asks for ``SCHED_FIFO`` (it needs the privilege; without it it
runs at normal priority and says so), and the process's GIL switch interval
is shortened (:data:`SWITCH_INTERVAL_S`) so a thread holding the GIL cannot
delay the send by the default 5 ms. A message whose due time has passed when
it is taken (it arrived after it was heard) is sent at once and counted
``late``; so is one sent more than :data:`LATE_S` after its time. Sending
never blocks: a full socket buffer drops the message (``dropped``).

What limits the figure: with ``SCHED_FIFO`` the error is the heard clock's
(a fraction of a millisecond against a JACK dummy server's clock, see
tests/test_osc_out.py: 97 beats over 60 s, p99 0.16 ms); at normal priority
on a loaded machine (load 5 on 2 cores) the timed wait itself wakes tens of
ms late now and then (a schedule of 200 messages: median 0.04 ms, p99 32 ms),
which no spin can undo. The level costs a 2 ms spin per message (10 a second
by default: 2 % of a core). The sender runs on the runtime's host clock: the bridge must run on the same
machine as the runtime (or one whose clock is synchronised with it).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cadenza.errors import UsageError

logger = logging.getLogger(__name__)

__all__ = ["LATE_S", "SPIN_S", "OscOut", "OscOutStats", "Schedule", "encode_message", "parse_send"]

SPIN_S = 0.002  # the timed wait aims this early; the rest is a yield-spin
LATE_S = 0.001  # sent later than this after its time: counted late
SWITCH_INTERVAL_S = 0.0005  # the GIL switch interval while sending (CPython's default is 5 ms)
MAX_PENDING = 10_000  # messages held at once (beyond: dropped, counted)
LEVEL_HZ = 10.0
SAMPLE_RATE = 48_000


# --------------------------------------------------------------------------- OSC encoding


QUIET_AFTER_S = 0.5  # no audio chunk for this long: the level is that of silence, sent at once


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (4 - len(data) % 4)


def encode_message(address: str, *args: int | float | str | bool) -> bytes:
    """One OSC 1.0 message: ``int`` → ``i`` (int32), ``float`` → ``f`` (float32), ``str`` → ``s``, ``bool`` → T/F."""
    tags = ","
    payload = b""
    for a in args:
        if isinstance(a, bool):
            tags += "T" if a else "F"
        elif isinstance(a, int):
            tags += "i"
            payload += struct.pack(">i", a)
        elif isinstance(a, float):
            tags += "f"
            payload += struct.pack(">f", a)
        elif isinstance(a, str):
            tags += "s"
            payload += _pad(a.encode("utf-8"))
        else:
            raise TypeError(f"OSC argument {a!r} of {address}: expected int, float, str or bool")
    return _pad(address.encode("utf-8")) + _pad(tags.encode("ascii")) + payload


def _resolves_to_loopback(host: str, text: str) -> bool:
    """A name: whether every address it resolves to is loopback (127.1 too); a name that does not resolve is an
    error saying so."""
    import ipaddress

    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"cannot resolve {host!r} in {text!r} ({exc}); give an address or a name that "
                         "resolves", where="--send") from None
    return all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def parse_send(text: str, insecure: bool) -> tuple[str, int]:
    """``--send HOST:PORT`` → ``(host, port)``; a host other machines can reach needs ``insecure``."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host.strip("[]"):
        raise UsageError(f"expected HOST:PORT, got {text!r}", where="--send")
    host = host.strip("[]")
    if port_text != port_text.strip() or host != host.strip():
        raise UsageError(f"no spaces in HOST:PORT, got {text!r}", where="--send")
    if ":" in host and not text.startswith("["):
        raise UsageError(f"expected HOST:PORT (an IPv6 address in brackets: [::1]:9000), got {text!r}",
                         where="--send")
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"port must be a number, got {port_text!r} in {text!r}", where="--send") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"port must be 1-65535, got {port} in {text!r}", where="--send")
    if host != "localhost":
        import ipaddress

        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = _resolves_to_loopback(host, text)
        if not loopback and not insecure:
            raise UsageError(f"{host!r} is another machine: OSC has no authentication and the music's events "
                             "would leave this host; give --insecure to send there anyway", where="--send")
    return host, port


# --------------------------------------------------------------------------- the schedule


@dataclass
class OscOutStats:
    sent: int = 0  # messages sent (each to every target)
    late: int = 0  # sent more than LATE_S after their time (or taken after it)
    dropped: int = 0  # a full socket buffer, a send error, or too many pending
    untimed: int = 0  # events without heard_at (an older runtime): sent at once
    by_address: dict[str, int] = field(default_factory=dict)
    realtime: bool = False  # the sender thread got SCHED_FIFO
    send_errors: dict[str, str] = field(default_factory=dict)  # target → the last error

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.by_address.items())) or "none"
        return (f"cadenza osc out: {self.sent} sent ({kinds}), {self.late} late, {self.dropped} dropped, "
                f"{self.untimed} untimed; sender {'SCHED_FIFO' if self.realtime else 'normal priority'}")


class Schedule:
    """Messages held until their time (monotonic seconds) and sent by one thread to every target."""

    def __init__(self, targets: Sequence[tuple[str, int]], stats: OscOutStats | None = None, *,
                 spin_s: float = SPIN_S, realtime: bool = True) -> None:
        self.stats = stats or OscOutStats()
        self.spin_s = spin_s
        self._want_rt = realtime
        self._heap: list[tuple[float, int, bytes, str]] = []
        self._count = itertools.count()
        self._cond = threading.Condition()
        self._stop = False
        self._socks: list[tuple[socket.socket, tuple[Any, ...], str]] = []
        for host, port in targets:
            try:
                info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            except OSError as exc:
                raise UsageError(f"cannot resolve {host}:{port}: {exc}", where="--send") from exc
            sock = socket.socket(info[0], socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._socks.append((sock, info[4], f"{host}:{port}"))
        self.lateness: list[tuple[str, float]] = []  # (address, seconds after its time): the last few thousand
        self._thread = threading.Thread(target=self._run, name="cadenza-osc-send", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, due: float | None, datagram: bytes, address: str) -> None:
        """Send ``datagram`` at monotonic time ``due`` (None: now). Never blocks beyond a short lock."""
        with self._cond:
            if len(self._heap) >= MAX_PENDING:
                self.stats.dropped += 1
                return
            at = time.monotonic() if due is None else due
            seq = next(self._count)
            heapq.heappush(self._heap, (at, seq, datagram, address))
            if self._heap[0][1] == seq:  # the new first: the sender's wait is aimed at a later one
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(1.0)
        for sock, _, _ in self._socks:
            sock.close()

    def _make_realtime(self) -> None:
        if not self._want_rt or not hasattr(os, "sched_setscheduler"):
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))  # this thread (Linux: 0 = the caller)
            self.stats.realtime = True
        except (OSError, PermissionError):
            self.stats.realtime = False

    def _run(self) -> None:
        self._make_realtime()
        cond, heap = self._cond, self._heap
        while True:
            with cond:
                while not self._stop:
                    if not heap:
                        cond.wait(0.5)
                        continue
                    wait = heap[0][0] - self.spin_s - time.monotonic()
                    if wait <= 0:
                        break
                    cond.wait(wait)
                if self._stop:
                    return
                due, _, datagram, address = heapq.heappop(heap)
            while (left := due - time.monotonic()) > 0:  # the last stretch: yield, never sleep
                if left > 0.0002:
                    time.sleep(0)
            self._send(datagram, address, time.monotonic() - due)

    def _send(self, datagram: bytes, address: str, late_s: float) -> None:
        stats = self.stats
        for sock, where, name in self._socks:
            try:
                sock.sendto(datagram, where)
            except BlockingIOError:
                stats.dropped += 1
            except OSError as exc:  # e.g. ECONNREFUSED surfacing from an earlier ICMP: the next one goes
                stats.dropped += 1
                stats.send_errors[name] = str(exc.strerror or exc)
        stats.sent += 1
        stats.by_address[address] = stats.by_address.get(address, 0) + 1
        if late_s > LATE_S:
            stats.late += 1
        if len(self.lateness) >= 20_000:
            del self.lateness[:10_000]
        self.lateness.append((address, late_s))


# --------------------------------------------------------------------------- events → messages


class OscOut:
    """Subscribes to a runtime's events (an SDK ``Client``) and its int16 audio; schedules the OSC messages."""

    def __init__(self, client: Any, targets: Sequence[tuple[str, int]], *, echo_params: bool = False,
                 level_hz: float = LEVEL_HZ, audio_endpoint: str | None = None, realtime: bool = True) -> None:
        if not (level_hz == 0 or 0.5 <= level_hz <= 50):
            raise UsageError(f"must be 0 (off) or 0.5 to 50 messages a second, got {level_hz!r}", where="--level-hz")
        self.client = client
        self.stats = OscOutStats()
        self.schedule = Schedule(targets, self.stats, realtime=realtime)
        self.echo_params = echo_params
        self.level_hz = level_hz
        self.audio_endpoint = audio_endpoint
        # the latest (stream_time, heard_at) of any event: puts an audio chunk on the heard clock
        self._heard: tuple[int, float] | None = None
        self._stop = threading.Event()
        self._audio_thread: threading.Thread | None = None
        self._switch = sys.getswitchinterval()

    # -- lifecycle
    def start(self) -> None:
        sys.setswitchinterval(min(self._switch, SWITCH_INTERVAL_S))
        self.schedule.start()
        for topic in ("beat", "bar", "state", "stinger", "status"):
            self.client.on(topic, self._on_event)
        if self.level_hz > 0:
            self._audio_thread = threading.Thread(target=self._audio, name="cadenza-osc-level", daemon=True)
            self._audio_thread.start()

    def close(self) -> None:
        self._stop.set()
        for topic in ("beat", "bar", "state", "stinger", "status"):
            try:
                self.client.off(topic, self._on_event)
            except Exception:  # noqa: BLE001 — closing: never mind a callback already gone
                pass
        if self._audio_thread is not None:
            self._audio_thread.join(1.0)
        self.schedule.close()
        sys.setswitchinterval(self._switch)

    # -- events (the SDK's event thread)
    def _due(self, heard_at: float) -> float | None:
        """A Unix heard time → monotonic seconds (None: unknown, send at once)."""
        if heard_at <= 0:
            self.stats.untimed += 1
            return None
        return heard_at - (time.time() - time.monotonic())

    def _on_event(self, ev: Any) -> None:
        if ev.heard_at > 0:
            self._heard = (ev.stream_time, ev.heard_at)
        put = self.schedule.put
        topic = ev.topic
        if topic == "beat":
            put(self._due(ev.heard_at), encode_message("/cadenza/beat", ev.bar, ev.beat_in_bar, float(ev.bpm)),
                "/cadenza/beat")
        elif topic == "bar":
            put(self._due(ev.heard_at), encode_message("/cadenza/bar", ev.bar), "/cadenza/bar")
        elif topic == "state":
            due = None if ev.phase in ("scheduled", "cancelled") else self._due(ev.heard_at)
            put(due, encode_message("/cadenza/state", ev.name, ev.phase), "/cadenza/state")
        elif topic == "stinger":
            put(self._due(ev.heard_at), encode_message("/cadenza/stinger", ev.name), "/cadenza/stinger")
        elif topic == "status" and self.echo_params:
            due = self._due(ev.heard_at)
            for name, value in ev.status.parameters.items():
                arg: float | str = value if isinstance(value, str) else float(value)
                put(due, encode_message(f"/cadenza/param/{name}", arg), "/cadenza/param")

    # -- level (its own thread: the int16 audio socket)
    def _audio(self) -> None:
        from cadenza.runtime.loudness import ShortTermLoudness
        from cadenza.sdk.client import AudioStream

        meter = ShortTermLoudness()
        every = int(SAMPLE_RATE / self.level_hz)
        next_at: int | None = None
        # no audio for this long (PAUSE/STOP publish none; a runtime away): what is heard is silence
        quiet_after = max(QUIET_AFTER_S, 2.0 / self.level_hz)
        last_audio = time.monotonic()
        fed_until: float | None = None  # monotonic time up to which silence was fed to the meter
        last_quiet = 0.0
        try:
            stream = AudioStream(self.audio_endpoint, format="int16", timeout=None)
            stream.open()
        except Exception as exc:  # noqa: BLE001 — a CadenzaError naming the endpoint: no level, the rest goes on
            logger.warning("no /cadenza/level: cannot subscribe to the runtime's int16 audio: %s", exc)
            return
        try:
            while not self._stop.is_set():
                chunk = stream.read(timeout=min(0.2, 1.0 / self.level_hz))
                now = time.monotonic()
                if chunk is None:
                    if now - last_audio >= quiet_after:
                        # the meter keeps falling in real time and the level keeps coming (a meter never
                        # freezes at the last loud value): sent at once, there is no heard time to aim at
                        n = int((now - (fed_until or last_audio)) * SAMPLE_RATE)
                        if n > 0:
                            meter.add(np.zeros((min(n, meter.window_frames), meter.channels), dtype=np.float32))
                            fed_until = (fed_until or last_audio) + n / SAMPLE_RATE
                        if now - last_quiet >= 1.0 / self.level_hz:
                            last_quiet = now
                            self.schedule.put(None, encode_message("/cadenza/level", float(np.float32(meter.lufs))),
                                              "/cadenza/level")
                    continue
                last_audio, fed_until = now, None
                pcm = chunk.pcm
                if pcm.ndim != 2 or pcm.shape[1] != meter.channels:
                    meter = ShortTermLoudness(pcm.shape[1]) if pcm.ndim == 2 else meter
                meter.add(pcm)
                end = chunk.stream_time + pcm.shape[0]
                if next_at is None or end < next_at - SAMPLE_RATE:  # the first chunk, or a restarted stream
                    next_at = end
                if end < next_at or self._heard is None:
                    continue
                next_at = end + every - (end - next_at) % every
                frame, heard_at = self._heard
                heard = heard_at + (end - frame) / SAMPLE_RATE
                self.schedule.put(self._due(heard), encode_message("/cadenza/level", float(np.float32(meter.lufs))),
                                  "/cadenza/level")
        finally:
            stream.close()
