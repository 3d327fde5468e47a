"""Keys and scales as every backend and control understands them: ``"A minor"``, ``"F# dorian"``.

Pure data and parsing; the synth's harmony (chords, progressions, voicing)
builds on it, and :class:`~cadenza.runtime.backends.base.Controls` validates
its ``scale`` with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cadenza.errors import UsageError

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_PITCH_CLASS = {
    "c": 0, "b#": 0, "c#": 1, "db": 1, "d": 2, "d#": 3, "eb": 3, "e": 4, "fb": 4, "e#": 5,
    "f": 5, "f#": 6, "gb": 6, "g": 7, "g#": 8, "ab": 8, "a": 9, "a#": 10, "bb": 10, "b": 11, "cb": 11,
}

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
}
_MODE_ALIASES = {
    "maj": "major", "ionian": "major", "min": "minor", "aeolian": "minor", "m": "minor",
    "natural minor": "minor", "harmonic": "harmonic minor",
}

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
    cleaned = re.sub(r"[_\-]+", " ", str(text)).strip().lower()
    m = re.fullmatch(r"([a-g])\s*([#b]?)\s*(.*)", cleaned)
    if not m:
        raise UsageError(
            f"unknown scale {text!r}: expected a key and a mode such as 'A minor' or 'F# dorian'; "
            f"modes: {', '.join(SCALES)}",
            where="scale",
        )
    tonic = _PITCH_CLASS[m.group(1) + m.group(2)]
    mode_text = m.group(3).strip() or "major"
    mode = _MODE_ALIASES.get(mode_text, mode_text)
    if mode not in SCALES:
        raise UsageError(
            f"unknown mode {mode_text!r} in scale {text!r}. Available: {', '.join(SCALES)}",
            where="scale",
        )
    return Key(tonic, mode)
