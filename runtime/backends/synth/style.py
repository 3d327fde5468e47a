"""The synth's interpretable style space: what each dimension of a style vector means.

Every prompt (text or audio) embeds to a point in this space; mixing prompts is
a weighted average of points. All dimensions are in [0, 1] except ``tempo``
(beats per minute). Instrument-family dimensions are levels; the ``pattern_*``
dimensions are affinities for a drum-pattern family (the strongest wins);
``grit``, ``chip`` and ``acoustic`` colour the timbres. The ``prog_*``
dimensions are affinities for a progression family (the strongest wins);
``fifths`` places the tonal centre on the line of fifths (linear, so averages of
prompts land between their keys), ``minor`` picks the mode within it; ``drop``
and ``sections`` shape the form (see ``score.SECTION_PLANS``); ``key_named`` pins the key a
prompt named (``theory.key_for``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIMENSIONS: tuple[str, ...] = (
    "tempo",  # bpm, 40–240
    "energy",  # density of events: notes, hits, fills (0 sparse … 1 busy)
    "brightness",  # filter cutoffs, hat level, pluck damping (0 dark … 1 bright)
    "minor",  # mode: 0 major … 0.5 dorian/mixolydian … 1 minor
    "swing",  # delay of off-beat 16ths (0 straight … 1 heavy shuffle)
    "space",  # reverb and delay amount / size
    "drums",  # instrument-family levels …
    "bass",
    "pads",  # pads / strings
    "keys",  # keys / piano
    "plucks",  # plucks / arpeggios
    "lead",
    "texture",  # texture / noise / vinyl
    "pattern_four_floor",  # kick on every beat (house, techno, disco)
    "pattern_breakbeat",  # syncopated breaks (drum and bass, jungle, breaks)
    "pattern_halftime",  # snare on beat 3 (dubstep, trap, cinematic)
    "pattern_boombap",  # hip hop: kick 1 & 2-and, snare 2 & 4, swung
    "pattern_rock",  # kick 1 & 3, snare 2 & 4 (rock, pop, funk)
    "grit",  # saturation / distortion
    "chip",  # square / pulse waves (8-bit)
    "acoustic",  # softer attacks, piano-like keys, string-like pads
    "harmony",  # 0 triads … 1 sevenths and ninths (jazz, neo-soul)
    "pattern_jazz",  # swung ride, feathered kick, snare comping (jazz, swing, bebop)
    "fifths",  # tonal centre on the line of fifths: 0 = five flats … 0.5 = no sharps/flats … 1 = five sharps
    "prog_pop",  # progression-family affinities (the strongest wins): diatonic loops (pop, house, rock, edm)
    "prog_jazz",  # functional ii–V–I, turnarounds (jazz, bossa nova, neo-soul, lo-fi)
    "prog_modal",  # vamps on one or two chords, minor stabs (techno, minimal, drone, dub)
    "prog_epic",  # voice-led triads, i–VI–III–VII, chromatic mediants (orchestral, cinematic, trailer)
    "offbeat",  # off-beat accents: open hats and chord stabs on the "and" (house, garage, disco, reggae)
    "laidback",  # keys and bass played behind the beat (lo-fi, neo-soul, boom bap); drums and grid stay exact
    "drop",  # form: 0 song form (intro, A, B, A') … 1 club form (intro, build, drop, breakdown)
    "sections",  # how much sections contrast in energy and instrumentation (0 a steady loop … 1 strong)
    "key_named",  # ≥ 0.5: the prompt named its key; fifths = 0.5 + sharps/12 exactly, no seed or brightness move
)

INDEX: dict[str, int] = {name: i for i, name in enumerate(DIMENSIONS)}
STYLE_DIM = len(DIMENSIONS)

INSTRUMENT_FAMILIES: tuple[str, ...] = ("drums", "bass", "pads", "keys", "plucks", "lead", "texture")
PATTERNS: tuple[str, ...] = ("four_floor", "breakbeat", "halftime", "boombap", "rock", "jazz")
PROGRESSION_FAMILIES: tuple[str, ...] = ("pop", "jazz", "modal", "epic")

#: Where a dimension lands when no word of a prompt speaks about it.
NEUTRAL: dict[str, float] = {
    "tempo": 110.0,
    "energy": 0.5,
    "brightness": 0.5,
    "minor": 0.5,
    "swing": 0.0,
    "space": 0.35,
    "drums": 0.6,
    "bass": 0.6,
    "pads": 0.5,
    "keys": 0.3,
    "plucks": 0.3,
    "lead": 0.25,
    "texture": 0.1,
    "pattern_four_floor": 0.3,
    "pattern_breakbeat": 0.0,
    "pattern_halftime": 0.0,
    "pattern_boombap": 0.0,
    "pattern_rock": 0.25,
    "grit": 0.0,
    "chip": 0.0,
    "acoustic": 0.3,
    "harmony": 0.2,
    "pattern_jazz": 0.0,
    "fifths": 0.5,
    "prog_pop": 0.3,
    "prog_jazz": 0.0,
    "prog_modal": 0.0,
    "prog_epic": 0.0,
    "offbeat": 0.0,
    "laidback": 0.0,
    "drop": 0.3,
    "sections": 0.6,
    "key_named": 0.0,
}

TEMPO_RANGE = (40.0, 240.0)


def vector_from(values: dict[str, float]) -> np.ndarray:
    """A full style vector: ``values`` where given, :data:`NEUTRAL` elsewhere."""
    v = np.array([NEUTRAL[d] for d in DIMENSIONS], dtype=np.float64)
    for name, value in values.items():
        v[INDEX[name]] = value
    return clip(v)


def clip(v: np.ndarray) -> np.ndarray:
    """Clamp a style vector into the valid ranges (tempo in bpm, the rest in [0, 1])."""
    out = np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0)
    out[INDEX["tempo"]] = float(np.clip(v[INDEX["tempo"]], *TEMPO_RANGE))
    return out


@dataclass(frozen=True)
class StyleView:
    """Named read access to a style vector (for code and for humans)."""

    vector: np.ndarray

    def __getattr__(self, name: str) -> float:
        try:
            return float(self.vector[INDEX[name]])
        except KeyError:
            raise AttributeError(name) from None

    def describe(self) -> dict[str, float]:
        return {d: round(float(self.vector[i]), 3) for i, d in enumerate(DIMENSIONS)}
