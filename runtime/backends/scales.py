"""Keys and scales as every backend and control understands them: ``"A minor"``, ``"F# dorian"``.

Pure data and parsing; the synth's harmony (chords, progressions, voicing)
builds on it, and :class:`~cadenza.runtime.backends.base.Controls` validates
its ``scale`` with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cadenza.errors import UsageError
from cadenza.graph_format.controls import NOTE_NAMES, SCALES, scale_key

#: the note names, pitch classes, scales and aliases are the graph format's (checked there before any backend)
__all__ = ["NOTE_NAMES", "SCALES", "Key", "parse_scale"]


@dataclass(frozen=True)
class Key:
    """A tonic pitch class and a scale (mode)."""

    tonic: int  # pitch class 0–11
    mode: str  # a key of SCALES

    @property
    def intervals(self) -> tuple[int, ...]:
        return SCALES[self.mode]

    @property
    def is_minor(self) -> bool:
        return self.intervals[2] == 3

    def __str__(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"

    def degree_pitch(self, degree: int, octave_base: int = 60) -> int:
        """MIDI pitch of scale ``degree`` (any integer) above ``octave_base`` + tonic."""
        n = len(self.intervals)
        octave, idx = divmod(degree, n)
        return octave_base + self.tonic + 12 * octave + self.intervals[idx]

    def chord(self, degree: int, extensions: int = 0) -> tuple[int, ...]:
        """Pitch classes of the diatonic chord on ``degree``: triad plus 0–2 extensions (7th, 9th)."""
        steps = (0, 2, 4, 6, 8)[: 3 + extensions]
        return tuple((self.tonic + self.intervals[(degree + s) % 7]) % 12 for s in steps)

    def scale_pitches(self, low: int, high: int) -> list[int]:
        pcs = {(self.tonic + i) % 12 for i in self.intervals}
        return [p for p in range(low, high + 1) if p % 12 in pcs]


def parse_scale(text: str) -> Key:
    """Parse ``"A minor"``, ``"F# dorian"``, ``"Eb"``, ``"c_major"`` into a Key.

    Raises UsageError naming the text and the valid choices.
    """
    try:
        tonic, mode = scale_key(text)
    except ValueError as exc:
        raise UsageError(str(exc), where="scale") from None
    return Key(tonic, mode)
