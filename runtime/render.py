"""Offline render: drive a backend through a timeline of prompt mixes into audio blocks.

The same path the live runtime takes (prompts → embeddings → mix → backend
stream), minus the clock: blocks are produced as fast as the backend can make
them. A timeline is a list of :class:`Cue` — at time ``at`` the style and
controls switch to the cue's; the backend glides to them (the synth never
restarts its music on a change of mix).

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
import math
import os
import secrets
import signal
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cadenza.errors import UsageError
from cadenza.runtime.backends import get_backend
from cadenza.runtime import early_signals
from cadenza.runtime.backends.base import SAMPLE_RATE, Backend, Beat, Controls, WeightedPrompt
from cadenza.runtime.early_signals import Stopped
from cadenza.runtime.mixing import PromptMixer

MAX_SECONDS = 24 * 3600.0
RENDER_BLOCK = 4096


@dataclass(frozen=True)
class Cue:
    """From ``at`` seconds on, play ``prompts`` with ``controls``."""

    at: float
    prompts: tuple[WeightedPrompt, ...]
    controls: Controls = field(default_factory=Controls)

    def __post_init__(self) -> None:
        if not (isinstance(self.at, (int, float)) and math.isfinite(self.at) and self.at >= 0):
            raise UsageError(f"cue time must be a finite number of seconds >= 0, got {self.at!r}", where="cue")


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


class Renderer:
    """Embeds a timeline up front (so bad prompts fail before any audio), then yields blocks."""

    def __init__(self, cues: Sequence[Cue], seconds: float, seed: int = 0, backend: Backend | None = None,
                 block: int = RENDER_BLOCK) -> None:
        if not cues:
            raise UsageError("at least one prompt is needed", where="prompts")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UsageError(f"must be an integer >= 0, got {seed!r}", where="seed")
        self.frames = check_seconds(seconds)
        self.backend = backend if backend is not None else get_backend("synth")
        self.seed = seed
        self.block = block
        self.cues = sorted(cues, key=lambda c: c.at)
        self.mixer = PromptMixer(self.backend)
        self.styles = [self.mixer.style(c.prompts) for c in self.cues]
        self.warnings = list(self.mixer.warnings)
        seen: set[str] = set()
        for c in self.cues:
            for name in sorted(self.backend.capabilities.unsupported(c.controls) - seen):
                seen.add(name)
                self.warnings.append(f"backend {self.backend.name!r} cannot honour control {name!r}; it is ignored")

    def blocks(self) -> Iterator[tuple[np.ndarray, list[Beat]]]:
        state = self.backend.new_stream(self.seed)
        starts = [int(round(c.at * SAMPLE_RATE)) for c in self.cues]
        frame = 0
        while frame < self.frames:
            idx = max(i for i, s in enumerate(starts) if s <= frame) if starts[0] <= frame else 0
            n = min(self.block, self.frames - frame)
            if idx + 1 < len(starts) and starts[idx + 1] > frame:
                n = min(n, starts[idx + 1] - frame)  # a cue lands exactly on a block boundary
            cue = self.cues[idx]
            pcm, state = self.backend.generate(state, self.styles[idx], cue.controls, n)
            yield pcm, list(state.beats)
            frame += n


def render(
    prompts: Sequence[WeightedPrompt],
    controls: Controls | None = None,
    seconds: float = 30.0,
    seed: int = 0,
    *,
    cues: Sequence[Cue] = (),
    backend: Backend | None = None,
) -> RenderResult:
    """Render ``seconds`` of ``prompts`` (plus later ``cues``) into memory."""
    timeline = [Cue(0.0, tuple(prompts), controls or Controls()), *cues]
    r = Renderer(timeline, seconds, seed, backend)
    blocks: list[np.ndarray] = []
    beats: list[Beat] = []
    for pcm, bts in r.blocks():
        blocks.append(pcm)
        beats.extend(bts)
    return RenderResult(np.concatenate(blocks), beats, r.warnings)


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
