"""The stream's one beat grid: the beats of whichever deck is heard as the bed, renumbered into one count.

One job: every deck (the bed, the deck a crossfade brings in, a fresh stream
after STOP or a fault) counts its beats and bars from its own start.
:class:`BeatGrid` turns them into the single sequence the ``beat`` and ``bar``
events publish, which never goes back: ``beat`` rises by 1 with each
published beat, ``bar`` by 1 at each downbeat (``beat_in_bar == 0``, as the
deck that rendered it says), from 0 at the first downbeat of the stream.

Whose beats: those of the deck the grid follows, until the deck the music
*wants* (the incoming deck of a crossfade, else the bed) reaches a downbeat
where it may take over; from that downbeat on, the wanted deck's beats are
published and the old deck's are dropped. A crossfade quantized to the bar
starts its deck on the outgoing deck's bar line and the new deck begins on a
downbeat, so the grid hands over right there, at the crossfade's start. A
downbeat may take over only when it comes at least one beat (at the slower of
the two tempos) after the last published downbeat and half a beat (at the
faster one) after the last published beat (the old deck's beats less than
half a beat before it give way to it); otherwise the grid waits for the
wanted deck's next downbeat (the old deck's beats go on meanwhile while it
still sounds, none are published once it is gone). A deck started mid-bar in phase with the published
grid (a crossfade quantized to the beat: :class:`~.conductor.Conductor` starts it on the outgoing
deck's last bar line, at that deck's tempo) takes over at its first beat, when that beat is the one the
grid expects next: the next place in the bar, one period (within 1 ms) after the last published beat. The grid is shared by the
conductors a hot reload or a STOP hands over to (:meth:`Conductor.continue_from`),
so the count also runs on across LoadGraph and STOP/PLAY.

Positions are compared in stream samples (``offset`` converts a conductor's
own frames, which stop while paused, to the stream's); the beats given and
returned stay in the caller's frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cadenza.runtime.backends.base import SAMPLE_RATE, Beat

__all__ = ["BeatGrid"]


def _pos(b: Beat) -> float:
    return b.position if b.position is not None else float(b.frame)


def _period(b: Beat) -> float:
    return SAMPLE_RATE * 60.0 / b.bpm if b.bpm > 0 else float("inf")


def _before(b: Beat, cut: Beat) -> bool:
    """Whether the old deck's beat ``b`` is published before the incoming downbeat ``cut``: it comes at least half a
    beat earlier (a beat of the outgoing deck on, or a fraction of a sample off, the same bar line gives way)."""
    return _pos(b) < _pos(cut) - 0.5 * min(_period(b), _period(cut))


class BeatGrid:
    """Renumbers the decks' beats into the stream's count (see the module docstring)."""

    def __init__(self) -> None:
        self.deck: object | None = None  # the deck whose beats are published now (None: none yet, or it is gone)
        self.beats = 0  # beats published (the next one's index)
        self.bar = -1  # the bar of the last published beat
        self.last: tuple[float, float] | None = None  # (stream position, period) of the last published beat
        self.last_downbeat: tuple[float, float] | None = None  # … and of the last published downbeat
        self.last_in_bar = -1  # the beat_in_bar of the last published beat

    def take(self, decks: Sequence[tuple[object, Sequence[Beat]]], wanted: object, offset: int = 0) -> list[Beat]:
        """The beats to publish of one block: ``decks`` holds (deck, its beats in this block, in order) for each
        deck that played; ``wanted`` is the deck whose grid should be heard. Renumbered, in the caller's frames."""
        current: Sequence[Beat] = ()
        incoming: Sequence[Beat] = ()
        for deck, beats in decks:
            if deck is self.deck:
                current = beats
            if deck is wanted:
                incoming = beats
        if self.deck is wanted:
            return [self._number(b, offset) for b in current]
        cut = self._handover(current, incoming, offset)
        if cut is None:
            return [self._number(b, offset) for b in current]
        out = [self._number(b, offset) for b in current if _before(b, cut)]
        self.deck = wanted
        out += [self._number(b, offset) for b in incoming if _pos(b) >= _pos(cut)]
        return out

    def _handover(self, current: Sequence[Beat], incoming: Sequence[Beat], offset: int) -> Beat | None:
        """The incoming deck's first downbeat that may take over, or its first beat that continues the published
        count in phase (a deck started phase-locked mid-bar), or None."""
        for d in incoming:
            at = _pos(d)
            last, last_down, in_bar = self.last, self.last_downbeat, self.last_in_bar
            for b in current:
                if not _before(b, d):
                    break
                last = (_pos(b) + offset, _period(b))
                in_bar = b.beat_in_bar
                if b.downbeat:
                    last_down = last
            here = at + offset
            period = _period(d)
            if not d.downbeat:
                # mid-bar: only the very beat the published grid expects next (its place in the bar, within 1 ms)
                if (last is not None and d.beat_in_bar == (in_bar + 1) % 4
                        and abs(here - last[0] - last[1]) <= SAMPLE_RATE * 0.001):
                    return d
                continue
            if last_down is not None and here - last_down[0] < max(period, last_down[1]) - 1.0:
                continue
            if last is not None and here - last[0] < 0.5 * min(period, last[1]):
                continue
            return d
        return None

    def _number(self, b: Beat, offset: int) -> Beat:
        if b.downbeat or self.bar < 0:
            self.bar += 1
        here = (_pos(b) + offset, _period(b))
        self.last = here
        self.last_in_bar = b.beat_in_bar
        if b.downbeat:
            self.last_downbeat = here
        out = replace(b, beat=self.beats, bar=self.bar)
        self.beats += 1
        return out
