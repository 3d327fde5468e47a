"""Offline render: a fixed prompt mix through the live runtime's :class:`~cadenza.runtime.conductor.Conductor`.

One road from prompt to audio: ``cadenza render --prompt`` plays the very
graph that ``cadenza serve --prompt`` and SetPrompts play
(:func:`cadenza.runtime.live.direct_graph`, controls as SetControls
overrides) through the same conductor (decks, limiter, beat grid), minus the
clock: blocks are produced as fast as the backend can make them. A fixed mix
has nothing to re-evaluate between control ticks, so the render ticks at
:data:`RENDER_CONTROL_RATE` (long blocks); the synth's audio does not depend
on the block size. ``render --graph``, the preview, and ``cadenza demo`` drive
the same conductor with a graph and a timeline (:mod:`.preview`, :mod:`.demo`).

A rendered file appears whole or not at all (:func:`output_file`): it is
written to a hidden temporary file in the same folder (``.NAME.XXXXXXXX.part.wav``),
flushed to disk (fsync) and renamed onto the asked path only when complete; a
rename within one file system is atomic, so ``--out`` never holds a truncated
render that looks finished. An exception, Ctrl-C (SIGINT) or — inside
:func:`stop_on_signals` — SIGTERM or SIGHUP removes the temporary file. Only
SIGKILL (which no process can catch) leaves it behind, still hidden and never
at ``--out``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import secrets
import signal
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cadenza.errors import UsageError
from cadenza.runtime import early_signals
from cadenza.runtime.backends import get_backend
from cadenza.runtime.backends.base import SAMPLE_RATE, AudioPrompt, Backend, Beat, Controls, WeightedPrompt
from cadenza.runtime.conductor import Conductor
from cadenza.runtime.early_signals import Stopped
from cadenza.runtime.mixing import PromptMixer, normalized_weights

MAX_SECONDS = 24 * 3600.0
RENDER_CONTROL_RATE = 12.5  # Hz: 3,840-frame blocks; a fixed mix changes nothing between ticks


@dataclass
class RenderResult:
    pcm: np.ndarray  # float32 (frames, 2) at SAMPLE_RATE
    beats: list[Beat]
    warnings: list[str]

    @property
    def seconds(self) -> float:
        return self.pcm.shape[0] / SAMPLE_RATE


def check_seconds(seconds: float) -> int:
    """Frames for ``seconds``; raises UsageError naming the bad value."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise UsageError(f"must be a finite number of seconds, got {seconds!r}", where="seconds")
    if not 0 < seconds <= MAX_SECONDS:
        raise UsageError(f"must be > 0 and <= {MAX_SECONDS:g}, got {seconds!r}", where="seconds")
    return max(1, int(round(seconds * SAMPLE_RATE)))


def prompt_conductor(prompts: Sequence[WeightedPrompt], controls: Controls | None = None, seed: int = 0,
                     backend: Backend | None = None) -> Conductor:
    """The conductor that plays ``prompts`` with ``controls``: what ``serve --prompt`` plays, ticking at
    :data:`RENDER_CONTROL_RATE`. Every prompt is embedded first, so a bad one fails (naming it) before any audio;
    the backend's warnings (unknown words, controls it cannot honour) are in :func:`render_warnings`."""
    from cadenza.runtime.live import direct_graph

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"must be an integer >= 0, got {seed!r}", where="seed")
    normalized_weights([p.weight for p in prompts])  # none, or all zero: an error naming the fix
    backend = backend if backend is not None else get_backend("synth")
    mixer = PromptMixer(backend)
    for p in prompts:
        mixer.embed(p.prompt)  # the backend's own error (PromptError naming the prompt or file), before any audio
    triples = [("", str(p.prompt.path), p.weight) if isinstance(p.prompt, AudioPrompt) else (str(p.prompt), None,
                                                                                               p.weight)
               for p in prompts]
    audio = {str(p.prompt.path): p.prompt.data for p in prompts
             if isinstance(p.prompt, AudioPrompt) and p.prompt.data is not None}
    graph = dataclasses.replace(direct_graph(triples, audio), control_rate=RENDER_CONTROL_RATE)
    conductor = Conductor(graph, backend, seed=seed, mixer=mixer)
    chosen = controls if controls is not None else Controls()
    conductor.overrides = {f.name: getattr(chosen, f.name) for f in dataclasses.fields(chosen)
                           if f.name in chosen.requested()}
    return conductor


def render_warnings(conductor: Conductor) -> list[str]:
    """What the backend said about the prompts, then each requested control it cannot honour (once each)."""
    backend = conductor.backend
    requested = Controls.from_values(conductor.overrides)
    return [*conductor.mixer.warnings, *(f"backend {backend.name!r} cannot honour control {name!r}; it is ignored"
                                         for name in sorted(backend.capabilities.unsupported(requested)))]


def render(
    prompts: Sequence[WeightedPrompt],
    controls: Controls | None = None,
    seconds: float = 30.0,
    seed: int = 0,
    *,
    backend: Backend | None = None,
) -> RenderResult:
    """Render ``seconds`` of ``prompts`` with ``controls`` into memory (see :func:`prompt_conductor`)."""
    check_seconds(seconds)
    conductor = prompt_conductor(prompts, controls, seed, backend)
    blocks: list[np.ndarray] = []
    beats: list[Beat] = []
    for block in conductor.run([], seconds):
        blocks.append(block.pcm)
        beats.extend(block.beats)
    return RenderResult(np.concatenate(blocks), beats, render_warnings(conductor))


class StopRequest:
    """What :func:`stop_on_signals` caught. The handler raises :class:`Stopped` at once, but an exception raised
    while C code calls back into Python (numba's compiler cache, say) is printed and swallowed there; so a loop
    also calls :meth:`check` once per block, which raises it again."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def check(self) -> None:
        if self.signum is not None:
            raise Stopped(self.signum)


@contextlib.contextmanager
def stop_on_signals(signums: Sequence[int] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> Iterator[StopRequest]:
    """Within the block, ``signums`` raise :class:`Stopped` (a KeyboardInterrupt) in the main thread instead of
    ending the process at once, so ``finally`` clauses (removing a temporary file) run. A signal ignored when the
    block starts (``nohup``, a background job's SIGINT) stays ignored. A signal that came before (held by
    :mod:`cadenza.runtime.early_signals` since the command started) raises at once. A no-op off the main thread."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def stop(signum: int, frame: object) -> None:
        request.signum = signum
        raise Stopped(signum)

    before = {s: signal.getsignal(s) for s in signums}
    for s, handler in before.items():
        if handler != signal.SIG_IGN:
            signal.signal(s, stop)
    try:
        early_signals.replay()  # SIGINT/SIGTERM/SIGHUP that came while the command was starting: stop now
        yield request
    finally:
        for s, handler in before.items():
            if handler is not None:
                signal.signal(s, handler)


def check_output(out: str | os.PathLike[str], option: str = "--out") -> None:
    """UsageError naming ``option`` unless a file can be renamed onto ``out``: not a directory, FIFO or device,
    in a folder that exists and can be written. Checked before any rendering."""
    path = Path(out)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UsageError(f"cannot write {str(path)!r}: {exc.strerror or exc}", where=option) from exc
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{str(path)!r} is a directory; give a file path, e.g. "
                         f"{str(path / ('render' + (path.suffix or '.wav')))!r}", where=option)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{str(path)!r} is not a regular file (a FIFO or a device); render writes a file and "
                         "renames it into place: give a file path", where=option)
    real = Path(os.path.realpath(path))
    folder = real.parent
    if not folder.is_dir():
        raise UsageError(f"cannot write {str(path)!r}: the folder {str(folder)!r} does not exist", where=option)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {str(path)!r}: the folder {str(folder)!r} is not writable", where=option)


def temporary_name(out: Path) -> Path:
    """A hidden name beside ``out`` with the same extension (the format follows it): ``.a.wav.1f2e3d4c.part.wav``."""
    return out.with_name(f".{out.name}.{secrets.token_hex(4)}.part{out.suffix}")


@contextlib.contextmanager
def output_file(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; when the block completes, fsync it and rename it onto ``out``.

    Any exception (KeyboardInterrupt and :class:`Stopped` included) removes
    the temporary file and leaves ``out`` as it was (absent, or the previous
    file). The caller creates the file at the yielded path (exclusively). When ``out`` is a symlink, the file
    it points to is replaced (the link stays); check it with :func:`check_output` first.
    """
    target = Path(os.path.realpath(out)) if os.path.islink(out) else Path(out)  # through a symlink: its target
    tmp = temporary_name(target)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # the rename itself reaches the disk with its folder
        dfd = os.open(target.parent if str(target.parent) else ".", os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
