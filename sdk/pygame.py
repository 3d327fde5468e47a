"""Hear a Cadenza runtime inside a pygame game, and get its beats, bars and states as pygame events.

::

    import pygame
    from cadenza.sdk import Client
    from cadenza.sdk.pygame import CADENZA_BEAT, MusicPlayer, pre_init

    pre_init()                          # the mixer at the runtime's format: 48 kHz, int16, stereo
    pygame.init()
    screen = pygame.display.set_mode((640, 480))
    with MusicPlayer(Client()) as music:            # audio from tcp://127.0.0.1:5557
        music.client.load_graph("graph.yaml")
        while running:
            for event in pygame.event.get():
                if event.type == CADENZA_BEAT:
                    pulse(event.beat_in_bar, event.bpm)
            music.client.set(danger=nearest_enemy())

The runtime (``cadenza serve --sink null`` when only the game should hear
it) publishes its audio as PCM chunks on its audio PUB socket. A background
thread of :class:`MusicPlayer` receives them (:class:`~cadenza.sdk.client.AudioStream`),
keeps a small jitter buffer and hands ``pygame.mixer.Sound`` blocks to one
reserved ``pygame.mixer.Channel`` with ``Channel.queue`` (SDL_mixer starts a
queued sound in the same mix callback in which the playing one ends, so the
blocks join without a gap; a block must be longer than the mixer's own
buffer, so that one mix callback never plays past the queued block). The
runtime's clock and the sound card's never agree exactly: the player resamples
each block by up to ``MAX_DRIFT`` (2 %) to hold the buffer near ``jitter_ms``.
When the buffer runs dry all the same the channel stops and the player counts
a *gap*, then waits for the jitter buffer to fill again; when it overflows
(the game's process stalled, or the card's clock stopped) the oldest audio is
dropped and counted, which keeps the music — and its beat events — in time.

Events arrive through the client's callbacks and are posted into pygame's
event queue (``pygame.event.post`` is thread-safe in pygame 2) as the custom
event types below. With ``sync=True`` (the default when audio plays) a beat,
bar, stinger or state start is posted when the audio of its ``stream_time``
is heard here — the player knows which stream sample it is playing — rather
than when it arrived (about the jitter buffer's length earlier). Announcements
(``state`` with phase ``scheduled``, ``xrun``) are posted at once.

Attributes of the posted events (all carry ``stream_time`` in samples,
``seconds``, and ``cadenza``, the SDK's event object):

====================  ==========================================================
``CADENZA_BEAT``      ``beat``, ``bar``, ``beat_in_bar``, ``downbeat``, ``bpm``, ``estimated``
``CADENZA_BAR``       the same, for every downbeat
``CADENZA_STATE``     ``state``, ``previous``, ``phase``, ``transition``, ``fade_seconds``
``CADENZA_STINGER``   ``stinger``, ``duration``
``CADENZA_XRUN``      ``count``, ``frames_lost``, ``source``
====================  ==========================================================

This module imports the real ``pygame`` (install ``cadenza[pygame]``); the rest
of the SDK does not need it. (Its file name is ``pygame.py``: Python started
inside the ``sdk/`` folder would find it for ``import pygame``; it then says so.)
"""

from __future__ import annotations

import collections
import heapq
import itertools
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

if __name__ == "pygame":  # this very file, found by ``import pygame`` because sdk/ itself is on sys.path
    raise ImportError("cadenza's sdk/pygame.py was imported as the top-level module 'pygame': the sdk/ folder is on "
                      "sys.path (Python started inside it?). Start Python from another folder so that "
                      "'import pygame' finds pygame itself.")

import numpy as np

try:
    import pygame
except ImportError as exc:  # `pip install cadenza` without the extra: say which one
    raise ImportError(f"cadenza.sdk.pygame needs pygame ({exc}): pip install 'cadenza[pygame]'",
                      name=exc.name) from None

from cadenza.errors import CadenzaError, UsageError
from cadenza.proto import wire
from cadenza.sdk._base import DEFAULT_AUDIO, BeatEvent, Event, StateEvent, StingerEvent, XrunEvent
from cadenza.sdk.client import AudioStream, Client

__all__ = [
    "CADENZA_BAR",
    "CADENZA_BEAT",
    "CADENZA_STATE",
    "CADENZA_STINGER",
    "CADENZA_XRUN",
    "EVENT_TYPES",
    "MusicPlayer",
    "PlayerStats",
    "pre_init",
]

CADENZA_BEAT: Final = pygame.event.custom_type()
CADENZA_BAR: Final = pygame.event.custom_type()
CADENZA_STATE: Final = pygame.event.custom_type()
CADENZA_STINGER: Final = pygame.event.custom_type()
CADENZA_XRUN: Final = pygame.event.custom_type()
#: Topic → the pygame event type posted for it.
EVENT_TYPES: Final = {"beat": CADENZA_BEAT, "bar": CADENZA_BAR, "state": CADENZA_STATE,
                      "stinger": CADENZA_STINGER, "xrun": CADENZA_XRUN}

SAMPLE_RATE: Final = wire.DEFAULT_SAMPLE_RATE
MIXER_BUFFER: Final = 1024  # frames per SDL mix callback (about 21 ms at 48 kHz)
MAX_DRIFT: Final = 0.02  # the most the player resamples to follow the sound card's clock (a third of a semitone)
MAX_HOLD_S: Final = 1.0  # an event waiting for its audio longer than this is posted anyway
_POLL_S: Final = 0.002


def pre_init(frequency: int = SAMPLE_RATE, buffer: int = MIXER_BUFFER) -> None:
    """``pygame.mixer.pre_init`` at the runtime's format; call it before ``pygame.init()``."""
    pygame.mixer.pre_init(frequency=frequency, size=-16, channels=2, buffer=buffer, allowedchanges=0)


@dataclass
class PlayerStats:
    """What the player did; ``gaps`` is the number the game wants at zero."""

    chunks: int = 0  # audio chunks received
    frames_received: int = 0
    frames_played: int = 0  # frames handed to the mixer
    lost_chunks: int = 0  # sequence gaps on the audio PUB (the network or a slow reader)
    gaps: int = 0  # times the channel ran dry after it had started (audible silence)
    dropped_frames: int = 0  # frames thrown away because the buffer overflowed
    events_posted: int = 0
    events_failed: int = 0  # pygame refused the post (no display initialized, queue full)
    beats: int = 0  # beat events posted
    stingers: int = 0  # stinger events posted
    started: bool = False  # the first block played


class MusicPlayer:
    """Play the runtime's audio through ``pygame.mixer`` and post its events into pygame's queue.

    ``client`` is a :class:`~cadenza.sdk.client.Client`, a ``(control, events)``
    pair of endpoints, or None for the default endpoints (the player then owns
    and closes the client). ``audio`` is the runtime's audio endpoint (None: no
    audio, events only). ``jitter_ms`` of audio is gathered before playing and
    after a gap; blocks of ``block_ms`` go to the mixer; more than
    ``max_buffer_ms`` buffered is trimmed back to ``jitter_ms``. ``topics``
    picks the events to post; ``sync`` posts them when their audio is heard.
    ``channel`` is the ``pygame.mixer.Channel`` the music plays on (reserved
    from ``Sound.play``'s automatic choice).

    The mixer must run at the runtime's rate, signed 16 bit, stereo: call
    :func:`pre_init` before ``pygame.init()``, or let :meth:`start` initialize
    the mixer. Use :meth:`start`/:meth:`close` or ``with``.
    """

    def __init__(self, client: Client | tuple[str, str] | None = None, *, audio: str | None = DEFAULT_AUDIO,
                 topics: Iterable[str] = ("beat", "bar", "state", "stinger", "xrun"), sync: bool = True,
                 jitter_ms: float = 80.0, block_ms: float = 50.0, max_buffer_ms: float = 500.0, channel: int = 0,
                 volume: float = 1.0) -> None:
        self.topics = tuple(topics)
        unknown = sorted(set(self.topics) - set(EVENT_TYPES))
        if unknown:
            raise UsageError(f"cannot post {unknown}; topics: {', '.join(EVENT_TYPES)}", where="topics")
        for name, value, low, high in (("jitter_ms", jitter_ms, 0.0, 2000.0), ("block_ms", block_ms, 5.0, 500.0),
                                       ("max_buffer_ms", max_buffer_ms, 50.0, 10_000.0), ("volume", volume, 0.0, 1.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and low <= value <= high):
                raise UsageError(f"must be a number in [{low:g}, {high:g}], got {value!r}", where=name)
        if max_buffer_ms <= jitter_ms + block_ms:
            raise UsageError(f"must exceed jitter_ms + block_ms ({jitter_ms + block_ms:g}), got {max_buffer_ms:g}",
                             where="max_buffer_ms")
        if client is None:
            self.client, self._owns_client = Client(name="cadenza-pygame"), True
        elif isinstance(client, Client):
            self.client, self._owns_client = client, False
        elif isinstance(client, tuple) and len(client) == 2:
            self.client, self._owns_client = Client(client[0], client[1], name="cadenza-pygame"), True
        else:
            raise UsageError(f"expected a Client, a (control, events) pair of endpoints or None, got {client!r}",
                             where="client")
        self.audio = audio
        self.sync = bool(sync) and audio is not None
        self.jitter_ms = float(jitter_ms)
        self.block_ms = float(block_ms)
        self.max_buffer_ms = float(max_buffer_ms)
        self.channel_index = int(channel)
        self._volume = float(volume)
        self.stats = PlayerStats()
        self.rate = SAMPLE_RATE
        self._mixer_buffer = MIXER_BUFFER
        self._channel: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int, float, int, dict[str, Any]]] = []  # (time, seq, arrived, type, attrs)
        self._seq = itertools.count()
        self._callbacks: list[tuple[str, Any]] = []
        # audio thread state
        self._buffer: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._buffered = 0
        self._playing = False
        self._current: tuple[int, float] | None = None  # (stream time of the playing block, wall time it started)
        self._queued: int | None = None  # stream time of the block waiting in the channel's queue
        self._carry: np.ndarray | None = None  # the last input frame read (interpolation starts from it)
        self._phase = 0.0  # fractional read position after ``_carry``
        self._level = 0.0  # smoothed buffer level (frames) for the drift controller
        self._closed = False
        #: The exception that ended the audio thread, if one did.
        self.error: BaseException | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> MusicPlayer:
        """Initialize the mixer if needed, subscribe to audio and events, start the audio thread."""
        if self._closed:
            raise UsageError("Cannot restart a MusicPlayer once it has been closed", where="MusicPlayer")
        if self._thread is not None:
            return self
        if self.client.server is None:
            try:
                self.client.hello()
                self.rate = self.client.sample_rate
            except CadenzaError:
                pass  # the runtime may come later; the client reconnects on its own
        else:
            self.rate = self.client.sample_rate
        if self.audio is not None:
            self._init_mixer()
        for topic in self.topics:
            callback = self._on_event
            self.client.on(topic, callback)
            self._callbacks.append((topic, callback))
        self._thread = threading.Thread(target=self._run, name="cadenza-pygame-audio", daemon=True)
        self._thread.start()
        return self

    def _init_mixer(self) -> None:
        want = (self.rate, -16, 2)
        got = pygame.mixer.get_init()
        if got is None:
            pygame.mixer.init(frequency=self.rate, size=-16, channels=2, buffer=self._mixer_buffer, allowedchanges=0)
            got = pygame.mixer.get_init()
        if tuple(got) != want:
            raise UsageError(f"pygame.mixer runs at {got} (frequency, size, channels); the runtime's audio needs "
                             f"{want}: call cadenza.sdk.pygame.pre_init() before pygame.init()", where="pygame.mixer")
        if pygame.mixer.get_num_channels() <= self.channel_index:
            pygame.mixer.set_num_channels(self.channel_index + 1)
        pygame.mixer.set_reserved(self.channel_index + 1)
        self._channel = pygame.mixer.Channel(self.channel_index)
        self._channel.set_volume(self._volume)

    def close(self) -> None:
        """Stop the music and the thread; close the client if the player made it. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        for topic, callback in self._callbacks:
            self.client.off(topic, callback)
        self._callbacks.clear()
        if self._channel is not None and pygame.mixer.get_init() is not None:
            self._channel.stop()
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> MusicPlayer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def volume(self) -> float:
        return self._volume

    @volume.setter
    def volume(self, value: float) -> None:
        if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
            raise UsageError(f"must be in [0, 1], got {value!r}", where="volume")
        self._volume = float(value)
        if self._channel is not None:
            self._channel.set_volume(self._volume)

    @property
    def latency_ms(self) -> float:
        """Audio between arriving here and being heard: the jitter buffer, the queued block, the mixer's buffer."""
        with self._lock:
            buffered = self._buffered
        return 1000.0 * (buffered + self.block_ms * self.rate / 1000.0 + self._mixer_buffer) / self.rate

    def position(self, now: float | None = None) -> int | None:
        """The stream sample heard now (None before the music starts)."""
        current = self._current
        if current is None or not self._playing:
            return None
        start, wall = current
        now = time.monotonic() if now is None else now
        return start + int((now - wall) * self.rate) - self._mixer_buffer

    # ----------------------------------------------------------------- events

    def _on_event(self, event: Event) -> None:
        """Client callback (event thread): post at once, or hold until the audio of its time is heard."""
        kind = EVENT_TYPES[event.topic]
        attrs: dict[str, Any] = {"stream_time": event.stream_time, "seconds": event.seconds, "cadenza": event}
        immediate = not self.sync
        if isinstance(event, BeatEvent):
            attrs.update(beat=event.beat, bar=event.bar, beat_in_bar=event.beat_in_bar,
                         downbeat=event.beat_in_bar == 0, bpm=event.bpm, estimated=event.estimated)
        elif isinstance(event, StateEvent):
            attrs.update(state=event.name, previous=event.previous, phase=event.phase,
                         transition=event.transition, fade_seconds=event.fade_seconds)
            immediate = immediate or event.phase in ("scheduled", "cancelled")
        elif isinstance(event, StingerEvent):
            attrs.update(stinger=event.name, duration=event.duration_seconds)
        elif isinstance(event, XrunEvent):
            attrs.update(count=event.count, frames_lost=event.frames_lost, source=event.source)
            immediate = True
        if immediate:
            self._post(kind, attrs)
            return
        with self._lock:
            heapq.heappush(self._pending, (event.stream_time, next(self._seq), time.monotonic(), kind, attrs))

    def _post(self, kind: int, attrs: dict[str, Any]) -> None:
        try:
            posted = pygame.event.post(pygame.event.Event(kind, attrs))
        except pygame.error:
            posted = False  # no display: pygame's event queue is not running
        if not posted:
            self.stats.events_failed += 1
            return
        self.stats.events_posted += 1
        if kind == CADENZA_BEAT:
            self.stats.beats += 1
        elif kind == CADENZA_STINGER:
            self.stats.stingers += 1

    def _post_due(self, now: float) -> None:
        position = self.position(now)
        due: list[tuple[int, dict[str, Any]]] = []
        with self._lock:
            while self._pending:
                stream_time, _, arrived, kind, attrs = self._pending[0]
                if (position is None or stream_time > position) and now - arrived < MAX_HOLD_S:
                    break
                heapq.heappop(self._pending)
                due.append((kind, attrs))
        for kind, attrs in due:
            self._post(kind, attrs)

    # ----------------------------------------------------------------- audio thread

    def _run(self) -> None:
        stream = AudioStream(self.audio, sample_rate=self.rate) if self.audio is not None else None
        try:
            while not self._stop.is_set():
                if stream is not None:
                    chunk = stream.read(timeout=_POLL_S)
                    while chunk is not None:
                        self._receive(chunk)
                        chunk = stream.read(timeout=0)
                    self.stats.lost_chunks = stream.lost
                    self._service(time.monotonic())
                else:
                    self._stop.wait(_POLL_S)
                self._post_due(time.monotonic())
        except Exception as exc:  # noqa: BLE001 — reported on the player; the game keeps running
            self.error = exc
        finally:
            if stream is not None:
                stream.close()

    def _receive(self, chunk: wire.DecodedAudio) -> None:
        pcm = chunk.pcm
        if pcm.shape[1] == 1:
            pcm = np.repeat(pcm, 2, axis=1)
        elif pcm.shape[1] > 2:
            pcm = pcm[:, :2]
        samples = np.rint(np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2")
        self._buffer.append((chunk.stream_time, samples))
        self.stats.chunks += 1
        self.stats.frames_received += samples.shape[0]
        with self._lock:
            self._buffered += samples.shape[0]
        limit = int(self.max_buffer_ms * self.rate / 1000.0)
        if self._buffered > limit:  # the runtime runs ahead of the sound card: back to the jitter target
            self.stats.dropped_frames += self._drop(self._buffered - int(self.jitter_ms * self.rate / 1000.0))

    def _drop(self, frames: int) -> int:
        dropped = 0
        while self._buffer and dropped + self._buffer[0][1].shape[0] <= frames:
            dropped += self._buffer.popleft()[1].shape[0]
        with self._lock:
            self._buffered -= dropped
        return dropped

    def _ratio(self) -> float:
        """Input frames per output frame: follows the sound card's clock by keeping the buffer near its target.

        A proportional controller on the (smoothed) buffer level, limited to
        ``MAX_DRIFT``: a card whose clock runs fast drains the buffer, so the
        player stretches the music a little (and the other way round). Sound
        cards differ from the runtime's clock by well under 0.1 %; SDL's disk
        driver by about 1 %.
        """
        target = self.jitter_ms * self.rate / 1000.0
        self._level += 0.05 * (self._buffered - self._level)
        error = max(-1.0, min(1.0, (self._level - target) / target)) if target > 0 else 0.0
        return 1.0 + MAX_DRIFT * error

    def _needed(self, frames: int, ratio: float) -> int:
        """Input frames that ``frames`` output frames at ``ratio`` consume (plus the first, held back, frame)."""
        return int(math.floor(self._phase + frames * ratio)) + (1 if self._carry is None else 0)

    def _pop(self, frames: int) -> tuple[int, np.ndarray]:
        """Remove ``frames`` input frames from the buffer: ``(stream time of the first, samples)``."""
        parts: list[np.ndarray] = []
        start = self._buffer[0][0]
        need = frames
        while need > 0 and self._buffer:
            stream_time, samples = self._buffer[0]
            if samples.shape[0] <= need:
                self._buffer.popleft()
                parts.append(samples)
                need -= samples.shape[0]
            else:
                parts.append(samples[:need])
                self._buffer[0] = (stream_time + need, samples[need:])
                need = 0
        block = np.concatenate(parts) if len(parts) > 1 else parts[0]
        with self._lock:
            self._buffered -= block.shape[0]
        return start, block

    def _take(self, frames: int, ratio: float) -> tuple[int, Any]:
        """``frames`` output frames resampled from the buffer at ``ratio``, as ``(stream time, pygame Sound)``.

        Linear interpolation with a phase carried from block to block, so
        consecutive blocks join seamlessly; at ratio 1 the samples pass unchanged.
        """
        if self._carry is None:
            _, first = self._pop(1)
            self._carry = first[0].astype(np.float64)
            self._phase = 0.0
        end = self._phase + frames * ratio
        used = int(math.floor(end))
        start, new = self._pop(used)
        x = np.vstack([self._carry[None, :], new.astype(np.float64)])
        positions = self._phase + ratio * np.arange(1, frames + 1, dtype=np.float64)
        grid = np.arange(x.shape[0], dtype=np.float64)
        out = np.empty((frames, 2), dtype="<i2")
        for c in range(2):
            out[:, c] = np.rint(np.interp(positions, grid, x[:, c]))
        self._carry = x[-1]
        self._phase = end - used
        self.stats.frames_played += frames
        return start, pygame.mixer.Sound(buffer=out.tobytes())

    def _queue_next(self, block: int) -> bool:
        ratio = self._ratio()
        if self._buffered < self._needed(block, ratio):
            return False
        self._queued, sound = self._take(block, ratio)
        self._channel.queue(sound)
        return True

    def _service(self, now: float) -> None:
        """Keep one block playing and one queued; count a gap when the channel ran dry."""
        channel = self._channel
        block = int(self.block_ms * self.rate / 1000.0)
        if self._playing:
            if not channel.get_busy():
                # pygame starts a queued Sound from SDL's audio thread, which first takes the GIL:
                # "not busy" may be that moment. Give it the GIL, then look again.
                time.sleep(0.001)
            if not channel.get_busy():
                self.stats.gaps += 1
                self._playing = False
                self._current = self._queued = None
                self._carry = None
            elif channel.get_queue() is None:
                if self._queued is not None:  # the queued block has started playing
                    self._current = (self._queued, now)
                    self._queued = None
                self._queue_next(block)
        if not self._playing and self._buffered >= max(block + 1, int(self.jitter_ms * self.rate / 1000.0)):
            self._level = float(self._buffered)
            start, sound = self._take(block, 1.0)
            channel.play(sound)
            self._current = (start, now)
            self._playing = True
            self.stats.started = True
            self._queue_next(block)
