"""The synth's vocabulary of musical words, and the parser that turns a text prompt into a style vector.

Every entry of :data:`VOCABULARY` is a lower-case word or phrase mapped to a
*partial* point of the style space (:mod:`.style`): only the dimensions the word
speaks about. A genre sets tempo, density, instrument levels and its drum
pattern; a mood mostly sets energy, brightness, mode and space; an instrument
raises its family; a texture colours the production.

The hand-tuned *anchor* points below (techno, jazz, piano, dark, vinyl …) are
the base of ~2,300 more words and phrases in :mod:`.lexicon`'s tables — world
genres, eras, scenes, game uses, synonyms and spellings — each a line of
aliases, base entries and small offsets, read once at import (~20 ms).
:data:`CATEGORIES` groups every entry; :data:`HEADWORD` names the first alias
of each line; :func:`describe_words`, :func:`search_words` and :func:`explain`
are what ``cadenza words`` prints.

:func:`parse_prompt` reads a prompt such as ``"dark lo-fi hip hop with rain, 80 bpm"``:

* case-insensitive; any punctuation separates words (``&`` reads as ``and``);
  hyphens and spaces inside a phrase are optional (``lo-fi`` = ``lofi`` =
  ``lo fi``), and a trailing plural ``s`` may be added or dropped;
* greedy left to right, at each position the longest phrase (up to 4 words)
  first, so ``drum and bass`` is one genre, not ``drums`` + ``bass``;
* filler words (:data:`STOP_WORDS`) are skipped silently (a filler word never
  becomes an entry: ``key`` is not ``keys``);
* a word still not known is tried as a form of an entry (:data:`SUFFIXES`:
  ``jazzy`` → jazz, ``drumming`` → drums, ``darker`` → dark, ``gently`` →
  gentle); anything else is reported in :attr:`ParsedPrompt.unknown` (the
  backend names it in a warning; only a prompt with no known word at all is a
  :class:`~cadenza.errors.PromptError`);
* ``128 bpm`` / ``128bpm`` sets the tempo explicitly (40–240 bpm).

Combination: each dimension is the mean of the values given by the matched
entries that specify it; dimensions no entry specifies stay :data:`.style.NEUTRAL`.
Two kinds of entry act after the mean instead of joining it (see
:data:`MODIFIERS`): ``no drums``-style words force their dimensions, and
``solo`` keeps only the instrument families the prompt names (``solo violin``)
— or, with no instrument named, only the strongest family.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

from cadenza.errors import PromptError
from cadenza.runtime.backends.synth import lexicon
from cadenza.runtime.backends.synth.style import (
    DIMENSIONS,
    INDEX,
    INSTRUMENT_FAMILIES,
    NEUTRAL,
    PATTERNS,
    PROGRESSION_FAMILIES,
    STYLE_DIM,
    TEMPO_RANGE,
    clip,
    vector_from,
)

Point = dict[str, float]

#: Longest phrase, in words, that the parser tries at each position.
MAX_PHRASE_WORDS = 4


# --------------------------------------------------------------------------- helpers


def _pattern(name: str) -> Point:
    """Affinity 1 for one drum-pattern family and 0 for the others (so averages behave)."""
    if name not in PATTERNS:
        raise ValueError(f"unknown drum pattern {name!r}; choose from {PATTERNS}")
    return {f"pattern_{p}": (1.0 if p == name else 0.0) for p in PATTERNS}


def _alone(**levels: float) -> Point:
    """Every instrument family at 0 except those given."""
    out = {family: 0.0 for family in INSTRUMENT_FAMILIES}
    out.update(levels)
    return out


def _genre(tempo: float, energy: float, pattern: str | None = None, **dims: float) -> Point:
    point: Point = {"tempo": tempo, "energy": energy}
    if pattern is not None:
        point.update(_pattern(pattern))
    point.update(dims)
    return point


# --------------------------------------------------------------------------- genres

_LOFI = _genre(
    80, 0.4, "boombap",
    brightness=0.3, minor=0.6, swing=0.55, space=0.4,
    drums=0.75, bass=0.7, pads=0.4, keys=0.8, plucks=0.2, lead=0.1, texture=0.7,
    grit=0.2, acoustic=0.6, harmony=0.8,
)  # fmt: skip
_DNB = _genre(
    174, 0.9, "breakbeat",
    brightness=0.7, minor=0.8, swing=0.0, space=0.45,
    drums=1.0, bass=1.0, pads=0.5, keys=0.2, plucks=0.3, lead=0.3, texture=0.1,
    grit=0.3, acoustic=0.1, harmony=0.3,
)  # fmt: skip
_CHIPTUNE = _genre(
    150, 0.75, "rock",
    brightness=0.85, minor=0.4, swing=0.0, space=0.1,
    drums=0.8, bass=0.8, pads=0.2, keys=0.0, plucks=0.8, lead=1.0, texture=0.0,
    grit=0.1, chip=1.0, acoustic=0.0, harmony=0.1,
)  # fmt: skip
_SYNTHWAVE = _genre(
    100, 0.6, "rock",
    brightness=0.65, minor=0.6, swing=0.0, space=0.6,
    drums=0.9, bass=0.9, pads=0.9, keys=0.2, plucks=0.7, lead=0.8, texture=0.1,
    grit=0.1, chip=0.1, acoustic=0.0, harmony=0.3,
)  # fmt: skip
_SOUNDTRACK = _genre(
    90, 0.45, "halftime",
    brightness=0.5, minor=0.6, space=0.75,
    drums=0.3, bass=0.5, pads=0.9, keys=0.5, plucks=0.3, lead=0.4, texture=0.2,
    acoustic=0.8, harmony=0.4,
)  # fmt: skip
_BREAKS = _genre(
    130, 0.75, "breakbeat",
    brightness=0.6, minor=0.6, space=0.35,
    drums=1.0, bass=0.8, pads=0.4, keys=0.1, plucks=0.4, lead=0.3, texture=0.2,
    grit=0.3, acoustic=0.1, harmony=0.2,
)  # fmt: skip
_GARAGE = _genre(
    132, 0.7, "breakbeat",
    brightness=0.6, minor=0.6, swing=0.5, space=0.35,
    drums=0.95, bass=0.9, pads=0.4, keys=0.5, plucks=0.3, lead=0.2,
    acoustic=0.1, harmony=0.6,
)  # fmt: skip

_GENRES: dict[str, Point] = {
    "techno": _genre(
        130, 0.75, "four_floor",
        brightness=0.55, minor=0.8, swing=0.0, space=0.4,
        drums=1.0, bass=0.8, pads=0.3, keys=0.05, plucks=0.5, lead=0.2, texture=0.2,
        grit=0.3, acoustic=0.0, harmony=0.1,
    ),
    "minimal techno": _genre(
        126, 0.5, "four_floor",
        brightness=0.45, minor=0.7, swing=0.0, space=0.45,
        drums=0.9, bass=0.7, pads=0.2, keys=0.0, plucks=0.4, lead=0.05, texture=0.2,
        acoustic=0.0, harmony=0.1,
    ),
    "hard techno": _genre(
        145, 0.95, "four_floor",
        brightness=0.65, minor=0.9, space=0.35,
        drums=1.0, bass=0.9, pads=0.2, keys=0.0, plucks=0.3, lead=0.2, texture=0.2,
        grit=0.7, acoustic=0.0, harmony=0.0,
    ),
    "acid": _genre(
        130, 0.8, "four_floor",
        brightness=0.7, minor=0.8, space=0.35,
        drums=0.9, bass=1.0, pads=0.2, keys=0.0, plucks=0.3, lead=0.6,
        grit=0.5, acoustic=0.0, harmony=0.1,
    ),
    "house": _genre(
        124, 0.7, "four_floor",
        brightness=0.6, minor=0.4, swing=0.15, space=0.4,
        drums=1.0, bass=0.8, pads=0.5, keys=0.6, plucks=0.3, lead=0.2, texture=0.1,
        acoustic=0.2, harmony=0.5,
    ),
    "deep house": _genre(
        120, 0.55, "four_floor",
        brightness=0.4, minor=0.6, swing=0.2, space=0.5,
        drums=0.85, bass=0.85, pads=0.7, keys=0.6, plucks=0.2, lead=0.1, texture=0.2,
        acoustic=0.3, harmony=0.7,
    ),
    "tech house": _genre(
        125, 0.7, "four_floor",
        brightness=0.5, minor=0.7, swing=0.15, space=0.35,
        drums=1.0, bass=0.9, pads=0.2, keys=0.2, plucks=0.4, lead=0.15, texture=0.1,
        acoustic=0.0, harmony=0.2,
    ),
    "edm": _genre(
        128, 0.85, "four_floor",
        brightness=0.8, minor=0.4, space=0.5,
        drums=1.0, bass=0.9, pads=0.7, keys=0.3, plucks=0.7, lead=0.9, texture=0.1,
        grit=0.3, acoustic=0.0, harmony=0.2,
    ),
    "trance": _genre(
        138, 0.8, "four_floor",
        brightness=0.75, minor=0.7, space=0.7,
        drums=0.9, bass=0.8, pads=0.9, keys=0.1, plucks=0.9, lead=0.8, texture=0.1,
        acoustic=0.0, harmony=0.2,
    ),
    "disco": _genre(
        118, 0.75, "four_floor",
        brightness=0.7, minor=0.3, swing=0.1, space=0.35,
        drums=0.95, bass=1.0, pads=0.7, keys=0.6, plucks=0.5, lead=0.4,
        acoustic=0.5, harmony=0.6,
    ),
    "industrial": _genre(
        130, 0.85, "four_floor",
        brightness=0.5, minor=1.0, space=0.4,
        drums=1.0, bass=0.8, pads=0.4, keys=0.0, plucks=0.2, lead=0.4, texture=0.6,
        grit=1.0, acoustic=0.0, harmony=0.0,
    ),
    "ambient": _genre(
        70, 0.15,
        brightness=0.4, minor=0.5, swing=0.0, space=0.9,
        drums=0.0, bass=0.3, pads=1.0, keys=0.3, plucks=0.2, lead=0.05, texture=0.5,
        grit=0.0, acoustic=0.3, harmony=0.5,
    ),
    "dark ambient": _genre(
        60, 0.1,
        brightness=0.15, minor=1.0, space=0.95,
        drums=0.0, bass=0.5, pads=1.0, keys=0.1, plucks=0.05, lead=0.0, texture=0.7,
        grit=0.2, acoustic=0.1, harmony=0.3,
    ),
    "drone": _genre(
        60, 0.05,
        brightness=0.3, minor=0.6, space=0.85,
        drums=0.0, bass=0.6, pads=1.0, keys=0.0, plucks=0.0, lead=0.0, texture=0.6,
        harmony=0.1,
    ),
    "new age": _genre(
        72, 0.2,
        brightness=0.6, minor=0.2, space=0.85,
        drums=0.0, bass=0.2, pads=0.9, keys=0.6, plucks=0.5, lead=0.3, texture=0.3,
        acoustic=0.7, harmony=0.5,
    ),
    "lofi": dict(_LOFI),
    "lo-fi": dict(_LOFI),
    "lo-fi hip hop": dict(_LOFI),
    "chillhop": dict(_LOFI),
    "hip hop": _genre(
        90, 0.6, "boombap",
        brightness=0.45, minor=0.7, swing=0.4, space=0.3,
        drums=1.0, bass=0.9, pads=0.3, keys=0.5, plucks=0.2, lead=0.2, texture=0.3,
        grit=0.2, acoustic=0.4, harmony=0.5,
    ),
    "boom bap": _genre(
        92, 0.6, "boombap",
        brightness=0.4, minor=0.7, swing=0.5, space=0.3,
        drums=1.0, bass=0.8, pads=0.2, keys=0.5, plucks=0.2, lead=0.1, texture=0.4,
        grit=0.2, acoustic=0.4, harmony=0.5,
    ),
    "trap": _genre(
        140, 0.7, "halftime",
        brightness=0.55, minor=0.9, swing=0.0, space=0.4,
        drums=1.0, bass=1.0, pads=0.4, keys=0.3, plucks=0.5, lead=0.3, texture=0.1,
        grit=0.4, acoustic=0.1, harmony=0.2,
    ),
    "dubstep": _genre(
        140, 0.85, "halftime",
        brightness=0.6, minor=0.9, space=0.4,
        drums=1.0, bass=1.0, pads=0.3, keys=0.0, plucks=0.2, lead=0.5, texture=0.1,
        grit=0.9, acoustic=0.0, harmony=0.1,
    ),
    "drum and bass": dict(_DNB),
    "drum n bass": dict(_DNB),
    "dnb": dict(_DNB),
    "jungle": _genre(
        165, 0.9, "breakbeat",
        brightness=0.6, minor=0.7, swing=0.1, space=0.45,
        drums=1.0, bass=1.0, pads=0.5, keys=0.2, plucks=0.2, lead=0.2, texture=0.3,
        grit=0.3, acoustic=0.2, harmony=0.4,
    ),
    "breakbeat": dict(_BREAKS),
    "breaks": dict(_BREAKS),
    "uk garage": dict(_GARAGE),
    "garage": dict(_GARAGE),
    "electro": _genre(
        125, 0.7, "breakbeat",
        brightness=0.6, minor=0.7, space=0.3,
        drums=1.0, bass=0.9, pads=0.3, keys=0.0, plucks=0.5, lead=0.5,
        grit=0.3, chip=0.2, acoustic=0.0, harmony=0.1,
    ),
    "idm": _genre(
        120, 0.65, "breakbeat",
        brightness=0.6, minor=0.6, space=0.5,
        drums=0.8, bass=0.6, pads=0.6, keys=0.3, plucks=0.7, lead=0.2, texture=0.5,
        grit=0.2, acoustic=0.1, harmony=0.5,
    ),
    "synthwave": dict(_SYNTHWAVE),
    "retrowave": {**_SYNTHWAVE, "tempo": 105.0, "energy": 0.65},
    "vaporwave": _genre(
        85, 0.35, "boombap",
        brightness=0.4, minor=0.5, swing=0.2, space=0.7,
        drums=0.6, bass=0.6, pads=0.8, keys=0.7, plucks=0.2, lead=0.3, texture=0.5,
        acoustic=0.3, harmony=0.8,
    ),
    "chiptune": dict(_CHIPTUNE),
    "8-bit": dict(_CHIPTUNE),
    "video game": {**_CHIPTUNE, "tempo": 140.0, "chip": 0.6, "energy": 0.7},
    "orchestral": _genre(
        90, 0.5, "halftime",
        brightness=0.55, minor=0.5, space=0.75,
        drums=0.35, bass=0.6, pads=1.0, keys=0.2, plucks=0.3, lead=0.6, texture=0.0,
        grit=0.0, chip=0.0, acoustic=1.0, harmony=0.4,
    ),
    "cinematic": _genre(
        85, 0.55, "halftime",
        brightness=0.45, minor=0.7, space=0.85,
        drums=0.5, bass=0.7, pads=1.0, keys=0.4, plucks=0.4, lead=0.3, texture=0.3,
        acoustic=0.8, harmony=0.3,
    ),
    "soundtrack": dict(_SOUNDTRACK),
    "film score": dict(_SOUNDTRACK),
    "classical": _genre(
        96, 0.4,
        brightness=0.55, minor=0.4, space=0.6,
        drums=0.0, bass=0.4, pads=0.9, keys=0.8, plucks=0.3, lead=0.5, texture=0.0,
        grit=0.0, chip=0.0, acoustic=1.0, harmony=0.3,
    ),
    "jazz": _genre(
        120, 0.55, "rock",
        brightness=0.5, minor=0.5, swing=0.7, space=0.35,
        drums=0.7, bass=0.9, pads=0.2, keys=0.9, plucks=0.1, lead=0.5, texture=0.1,
        grit=0.0, acoustic=0.9, harmony=1.0,
    ),
    "neo soul": _genre(
        85, 0.45, "boombap",
        brightness=0.45, minor=0.5, swing=0.45, space=0.4,
        drums=0.8, bass=0.9, pads=0.4, keys=0.9, plucks=0.2, lead=0.3, texture=0.2,
        acoustic=0.6, harmony=0.95,
    ),
    "soul": _genre(
        95, 0.55, "rock",
        brightness=0.5, minor=0.4, swing=0.3, space=0.35,
        drums=0.9, bass=0.9, pads=0.4, keys=0.8, plucks=0.4, lead=0.5,
        acoustic=0.7, harmony=0.7,
    ),
    "bossa nova": _genre(
        120, 0.4, "rock",
        brightness=0.55, minor=0.4, swing=0.1, space=0.3,
        drums=0.5, bass=0.7, pads=0.2, keys=0.6, plucks=0.9, lead=0.3, texture=0.0,
        acoustic=1.0, harmony=0.9,
    ),
    "funk": _genre(
        108, 0.75, "rock",
        brightness=0.65, minor=0.5, swing=0.3, space=0.2,
        drums=1.0, bass=1.0, pads=0.2, keys=0.7, plucks=0.8, lead=0.4,
        grit=0.1, acoustic=0.5, harmony=0.7,
    ),
    "rock": _genre(
        125, 0.75, "rock",
        brightness=0.6, minor=0.5, swing=0.0, space=0.3,
        drums=1.0, bass=0.9, pads=0.2, keys=0.2, plucks=0.8, lead=0.8,
        grit=0.6, acoustic=0.5, harmony=0.1,
    ),
    "metal": _genre(
        150, 0.95, "rock",
        brightness=0.6, minor=0.95, swing=0.0, space=0.25,
        drums=1.0, bass=1.0, pads=0.2, keys=0.0, plucks=0.9, lead=0.9,
        grit=1.0, acoustic=0.3, harmony=0.0,
    ),
    "post rock": _genre(
        110, 0.55, "rock",
        brightness=0.5, minor=0.6, space=0.8,
        drums=0.8, bass=0.8, pads=0.7, keys=0.3, plucks=0.9, lead=0.5, texture=0.3,
        grit=0.4, acoustic=0.4, harmony=0.3,
    ),
    "blues": _genre(
        90, 0.5, "rock",
        brightness=0.5, minor=0.6, swing=0.6, space=0.3,
        drums=0.8, bass=0.8, pads=0.1, keys=0.7, plucks=0.8, lead=0.7,
        grit=0.3, acoustic=0.8, harmony=0.6,
    ),
    "folk": _genre(
        100, 0.45, "rock",
        brightness=0.6, minor=0.4, space=0.3,
        drums=0.3, bass=0.5, pads=0.3, keys=0.3, plucks=1.0, lead=0.5,
        grit=0.0, acoustic=1.0, harmony=0.2,
    ),
    "pop": _genre(
        118, 0.65, "rock",
        brightness=0.75, minor=0.25, space=0.4,
        drums=0.9, bass=0.8, pads=0.6, keys=0.6, plucks=0.5, lead=0.8, texture=0.05,
        grit=0.1, acoustic=0.3, harmony=0.3,
    ),
    "reggae": _genre(
        75, 0.5, "halftime",
        brightness=0.5, minor=0.4, swing=0.2, space=0.4,
        drums=0.9, bass=1.0, pads=0.2, keys=0.8, plucks=0.6, lead=0.3,
        acoustic=0.6, harmony=0.3,
    ),
    "dub": _genre(
        70, 0.4, "halftime",
        brightness=0.35, minor=0.6, swing=0.2, space=0.95,
        drums=0.9, bass=1.0, pads=0.2, keys=0.5, plucks=0.3, lead=0.1, texture=0.3,
        acoustic=0.4, harmony=0.2,
    ),
    "downtempo": _genre(
        90, 0.35, "boombap",
        brightness=0.4, minor=0.6, swing=0.2, space=0.6,
        drums=0.7, bass=0.8, pads=0.7, keys=0.5, plucks=0.4, lead=0.2, texture=0.3,
        acoustic=0.3, harmony=0.6,
    ),
    "chillout": _genre(
        95, 0.3, "boombap",
        brightness=0.5, minor=0.4, swing=0.1, space=0.65,
        drums=0.6, bass=0.6, pads=0.8, keys=0.5, plucks=0.4, lead=0.2, texture=0.2,
        acoustic=0.4, harmony=0.6,
    ),
    "trip hop": _genre(
        85, 0.4, "boombap",
        brightness=0.35, minor=0.8, swing=0.3, space=0.6,
        drums=0.85, bass=0.9, pads=0.6, keys=0.4, plucks=0.2, lead=0.2, texture=0.6,
        grit=0.3, acoustic=0.4, harmony=0.5,
    ),
}  # fmt: skip

# --------------------------------------------------------------------------- instruments

_PIANO: Point = {"keys": 1.0, "acoustic": 0.95}
_ARP: Point = {"plucks": 1.0}

_INSTRUMENTS: dict[str, Point] = {
    "piano": dict(_PIANO),
    "grand piano": {**_PIANO, "acoustic": 1.0},
    "solo piano": {**_alone(keys=1.0), "acoustic": 1.0, "energy": 0.3, "space": 0.45},
    "electric piano": {"keys": 1.0, "acoustic": 0.5, "harmony": 0.6},
    "rhodes": {"keys": 1.0, "acoustic": 0.5, "harmony": 0.7},
    "keys": {"keys": 1.0},
    "organ": {"keys": 1.0, "acoustic": 0.4, "pads": 0.6},
    "strings": {"pads": 1.0, "acoustic": 1.0},
    "string quartet": {**_alone(pads=1.0, bass=0.4, lead=0.6), "acoustic": 1.0},
    "violin": {"lead": 1.0, "pads": 0.6, "acoustic": 1.0},
    "cello": {"pads": 1.0, "bass": 0.6, "acoustic": 1.0},
    "pads": {"pads": 1.0},
    "synth pad": {"pads": 1.0, "acoustic": 0.0},
    "choir": {"pads": 1.0, "acoustic": 0.9, "space": 0.75},
    "synth": {"pads": 0.7, "lead": 0.7, "plucks": 0.5, "acoustic": 0.0},
    "bass": {"bass": 1.0},
    "sub bass": {"bass": 1.0, "brightness": 0.3},
    "synth bass": {"bass": 1.0, "acoustic": 0.0},
    "bassline": {"bass": 1.0},
    "808": {"bass": 1.0, "drums": 0.9, "acoustic": 0.0},
    "drums": {"drums": 1.0},
    "drum machine": {"drums": 1.0, "acoustic": 0.0},
    "percussion": {"drums": 0.85},
    "kick": {"drums": 1.0},
    "snare": {"drums": 1.0},
    "hi hats": {"drums": 0.9, "brightness": 0.7},
    "guitar": {"plucks": 0.9, "acoustic": 0.6},
    "acoustic guitar": {"plucks": 1.0, "acoustic": 1.0},
    "electric guitar": {"plucks": 0.7, "lead": 0.8, "grit": 0.4, "acoustic": 0.3},
    "solo guitar": {**_alone(plucks=1.0), "acoustic": 0.9, "energy": 0.35},
    "harp": {"plucks": 1.0, "acoustic": 1.0, "brightness": 0.65},
    "arpeggio": dict(_ARP),
    "arp": dict(_ARP),
    "plucks": {"plucks": 1.0},
    "bells": {"plucks": 0.9, "brightness": 0.8},
    "music box": {"plucks": 1.0, "brightness": 0.8, "acoustic": 0.7},
    "marimba": {"plucks": 1.0, "acoustic": 0.85},
    "vibraphone": {"keys": 0.8, "plucks": 0.6, "acoustic": 0.8, "harmony": 0.7},
    "kalimba": {"plucks": 1.0, "acoustic": 0.9},
    "flute": {"lead": 1.0, "acoustic": 0.9},
    "lead synth": {"lead": 1.0, "acoustic": 0.0},
    "synth lead": {"lead": 1.0, "acoustic": 0.0},
    "brass": {"lead": 0.8, "pads": 0.6, "acoustic": 0.8},
    "horns": {"lead": 0.8, "pads": 0.5, "acoustic": 0.8},
    "saxophone": {"lead": 1.0, "acoustic": 0.8, "harmony": 0.6},
    "sax": {"lead": 1.0, "acoustic": 0.8, "harmony": 0.6},
    "trumpet": {"lead": 1.0, "acoustic": 0.8},
}

# --------------------------------------------------------------------------- moods

_MOODS: dict[str, Point] = {
    "dark": {"brightness": 0.2, "minor": 0.9, "space": 0.55},
    "calm": {"tempo": 75.0, "energy": 0.2, "brightness": 0.4, "space": 0.6},
    "tense": {"energy": 0.6, "brightness": 0.4, "minor": 0.9, "space": 0.4},
    "epic": {"energy": 0.8, "brightness": 0.6, "minor": 0.7, "space": 0.8},
    "dreamy": {"energy": 0.3, "brightness": 0.5, "minor": 0.4, "space": 0.85, "harmony": 0.6},
    "happy": {"energy": 0.65, "brightness": 0.75, "minor": 0.0},
    "sad": {"energy": 0.3, "brightness": 0.35, "minor": 1.0},
    "melancholic": {"energy": 0.35, "brightness": 0.35, "minor": 0.85, "space": 0.6, "harmony": 0.5},
    "melancholy": {"energy": 0.35, "brightness": 0.35, "minor": 0.85, "space": 0.6, "harmony": 0.5},
    "aggressive": {"energy": 1.0, "brightness": 0.8, "minor": 0.9, "grit": 0.7},
    "angry": {"energy": 0.95, "brightness": 0.7, "minor": 0.95, "grit": 0.8},
    "peaceful": {"tempo": 72.0, "energy": 0.15, "brightness": 0.5, "minor": 0.2, "space": 0.65},
    "serene": {"tempo": 70.0, "energy": 0.1, "brightness": 0.55, "minor": 0.2, "space": 0.8},
    "mysterious": {"energy": 0.35, "brightness": 0.3, "minor": 0.7, "space": 0.7, "harmony": 0.5},
    "uplifting": {"energy": 0.7, "brightness": 0.8, "minor": 0.1, "space": 0.55},
    "ominous": {"energy": 0.35, "brightness": 0.15, "minor": 1.0, "space": 0.7},
    "heroic": {"energy": 0.75, "brightness": 0.7, "minor": 0.2, "space": 0.6},
    "romantic": {"energy": 0.35, "brightness": 0.5, "minor": 0.4, "space": 0.5, "harmony": 0.7},
    "playful": {"energy": 0.6, "brightness": 0.75, "minor": 0.1, "swing": 0.3},
    "eerie": {"energy": 0.2, "brightness": 0.3, "minor": 0.9, "space": 0.85},
    "creepy": {"energy": 0.25, "brightness": 0.25, "minor": 1.0, "space": 0.75},
    "spooky": {"energy": 0.35, "brightness": 0.35, "minor": 0.95, "space": 0.7},
    "scary": {"energy": 0.4, "brightness": 0.2, "minor": 1.0, "space": 0.8},
    "suspenseful": {"energy": 0.45, "brightness": 0.35, "minor": 0.9, "space": 0.6},
    "triumphant": {"energy": 0.85, "brightness": 0.8, "minor": 0.0, "space": 0.6},
    "relaxed": {"tempo": 85.0, "energy": 0.25, "brightness": 0.45, "space": 0.5},
    "relaxing": {"tempo": 85.0, "energy": 0.25, "brightness": 0.45, "space": 0.5},
    "chill": {"tempo": 88.0, "energy": 0.3, "brightness": 0.45, "space": 0.55},
    "energetic": {"tempo": 135.0, "energy": 0.9, "brightness": 0.7},
    "intense": {"energy": 0.9, "brightness": 0.65, "minor": 0.75, "grit": 0.4},
    "frantic": {"tempo": 160.0, "energy": 1.0},
    "nostalgic": {"energy": 0.4, "brightness": 0.4, "minor": 0.5, "space": 0.5, "harmony": 0.6},
    "hopeful": {"energy": 0.5, "brightness": 0.65, "minor": 0.15},
    "ethereal": {"energy": 0.2, "brightness": 0.7, "minor": 0.4, "space": 0.95},
    "groovy": {"energy": 0.65, "swing": 0.4},
    "funky": {"energy": 0.7, "swing": 0.35, "harmony": 0.6},
    "joyful": {"energy": 0.7, "brightness": 0.8, "minor": 0.0},
    "cheerful": {"energy": 0.65, "brightness": 0.8, "minor": 0.0},
    "somber": {"energy": 0.2, "brightness": 0.25, "minor": 0.9, "space": 0.6},
    "gloomy": {"energy": 0.25, "brightness": 0.2, "minor": 0.95},
    "euphoric": {"energy": 0.9, "brightness": 0.85, "minor": 0.2, "space": 0.7},
    "hypnotic": {"energy": 0.55, "minor": 0.6, "space": 0.6},
    "meditative": {"tempo": 65.0, "energy": 0.1, "brightness": 0.4, "space": 0.85},
    "cozy": {"energy": 0.3, "brightness": 0.35, "minor": 0.3, "space": 0.35, "harmony": 0.6},
    "majestic": {"energy": 0.6, "brightness": 0.65, "minor": 0.3, "space": 0.85},
}

# --------------------------------------------------------------------------- textures / production

_TEXTURES: dict[str, Point] = {
    "vinyl": {"texture": 1.0, "brightness": 0.35},
    "crackle": {"texture": 1.0},
    "vinyl crackle": {"texture": 1.0, "brightness": 0.35},
    "tape": {"texture": 0.6, "grit": 0.3, "brightness": 0.35},
    "noise": {"texture": 0.9, "grit": 0.2},
    "rain": {"texture": 1.0, "space": 0.6, "brightness": 0.4},
    "wind": {"texture": 0.9, "space": 0.7},
    "field recordings": {"texture": 0.9, "space": 0.6},
    "glitchy": {"texture": 0.7, "energy": 0.7, "grit": 0.3},
    "distorted": {"grit": 0.9},
    "distortion": {"grit": 0.9},
    "gritty": {"grit": 0.7, "brightness": 0.55},
    "crunchy": {"grit": 0.7},
    "saturated": {"grit": 0.5},
    "heavy": {"energy": 0.8, "grit": 0.6},
    "clean": {"grit": 0.0, "texture": 0.0},
    "lush": {"pads": 0.8, "space": 0.75, "harmony": 0.6},
    "warm": {"brightness": 0.35, "grit": 0.15},
    "muffled": {"brightness": 0.15},
    "deep": {"brightness": 0.3, "space": 0.55},
    "bright": {"brightness": 0.9},
    "airy": {"brightness": 0.75, "space": 0.75},
    "reverb": {"space": 0.9},
    "spacious": {"space": 0.9},
    "cavernous": {"space": 1.0},
    "dry": {"space": 0.05},
    "minimal": {"energy": 0.25, "harmony": 0.1, "texture": 0.05},
    "sparse": {"energy": 0.15},
    "dense": {"energy": 0.9},
    "fast": {"tempo": 150.0, "energy": 0.75},
    "slow": {"tempo": 70.0, "energy": 0.3},
    "swing": {"swing": 0.6},
    "swung": {"swing": 0.6},
    "shuffle": {"swing": 0.7},
    "analog": {"grit": 0.2, "acoustic": 0.0},
    "acoustic": {"acoustic": 1.0, "grit": 0.0},
}

# --------------------------------------------------------------------------- modifiers

_MODIFIERS: dict[str, Point] = {
    "solo": _alone(),
    "no drums": {"drums": 0.0},
    "without drums": {"drums": 0.0},
    "no percussion": {"drums": 0.0},
    "drumless": {"drums": 0.0},
    "beatless": {"drums": 0.0},
    "no beat": {"drums": 0.0},
    "no bass": {"bass": 0.0},
    "without bass": {"bass": 0.0},
    "no pads": {"pads": 0.0},
    "no melody": {"lead": 0.0, "plucks": 0.0},
    "no piano": {"keys": 0.0},
    "without piano": {"keys": 0.0},
    "no keys": {"keys": 0.0},
    "no guitar": {"plucks": 0.0},
    "no guitars": {"plucks": 0.0},
    "no strings": {"pads": 0.0},
    "no synths": {"pads": 0.0, "lead": 0.0, "plucks": 0.0},
    "no reverb": {"space": 0.0},
    "no distortion": {"grit": 0.0},
    "no noise": {"texture": 0.0},
    "no swing": {"swing": 0.0},
    "a cappella": {"drums": 0.0, "bass": 0.0, "keys": 0.0, "plucks": 0.0},
    "acapella": {"drums": 0.0, "bass": 0.0, "keys": 0.0, "plucks": 0.0},
    "a capella": {"drums": 0.0, "bass": 0.0, "keys": 0.0, "plucks": 0.0},
    "drums only": _alone(drums=1.0),
    "percussion only": _alone(drums=1.0),
}

# --------------------------------------------------------------------------- the tables (lexicon.py)

_TABLE_LINE = re.compile(r"^(?P<names>[^|]+)\|(?P<base>[^|]+)\|(?P<offsets>.*)$")
_OFFSET = re.compile(r"^(?P<dim>[a-z_]+)(?P<op>[=+-])(?P<value>[a-z_]+|\d*\.?\d+)$")
_GROUPS = {"pattern": PATTERNS, "prog": PROGRESSION_FAMILIES}

#: The tables' sections that are categories of entries (``[anchors]`` only adjusts anchor entries).
TABLE_CATEGORIES: tuple[str, ...] = ("genres", "world", "instruments", "moods", "textures", "eras", "scenes", "game")

_ANCHOR_CATEGORIES: dict[str, dict[str, Point]] = {
    "genres": _GENRES, "instruments": _INSTRUMENTS, "moods": _MOODS, "textures": _TEXTURES,
}  # fmt: skip


_TOKEN = re.compile(r"\d+(?:\.\d+)?[^\W\d_]*|[^\W\d_][^\W_]*")


_NOTE_SHARP = re.compile(r"(?<![^\W\d_])([a-g])\s*[#♯]")
_NOTE_FLAT = re.compile(r"(?<![^\W\d_])([a-g])\s*♭")


def fold(text: str) -> str:
    """Lower case, accents folded (``électronique`` → ``electronique``, ``nóva`` → ``nova``), ``C#`` → ``c sharp``."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NOTE_FLAT.sub(r"\1 flat", _NOTE_SHARP.sub(r"\1 sharp", plain))


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(fold(text).replace("&", " and "))


def _point(name: str) -> Point:
    """The partial point of an entry, whichever table holds it."""
    for table in (*_ANCHOR_CATEGORIES.values(), _MODIFIERS, *_TABLES.values()):
        if name in table:
            return table[name]
    raise KeyError(name)


def _one_hot_groups(point: Point) -> None:
    """A point that mixes drum-pattern (or progression) families keeps only the strongest (first on a tie)."""
    for prefix, names in _GROUPS.items():
        dims = [f"{prefix}_{n}" for n in names]
        given = [d for d in dims if d in point]
        if not given:
            continue
        best = max(dims, key=lambda d: point.get(d, 0.0))
        for d in dims:
            point[d] = 1.0 if d == best else 0.0


def _apply_offsets(point: Point, offsets: str, where: str) -> None:
    for token in offsets.split():
        if token == "-":  # no offsets
            continue
        if token == "alone":
            point.update({family: 0.0 for family in INSTRUMENT_FAMILIES})
            continue
        m = _OFFSET.match(token)
        if m is None:
            raise ValueError(f"{where}: offset {token!r} must read dim=v, dim+v, dim-v, pattern=NAME or prog=NAME")
        dim, op, raw = m["dim"], m["op"], m["value"]
        if dim in _GROUPS:
            if op != "=" or raw not in _GROUPS[dim]:
                raise ValueError(f"{where}: {token!r}: choose {dim}= one of {_GROUPS[dim]}")
            point.update({f"{dim}_{n}": (1.0 if n == raw else 0.0) for n in _GROUPS[dim]})
            continue
        if dim not in INDEX:
            raise ValueError(f"{where}: unknown dimension {dim!r} in {token!r}; dimensions: {', '.join(DIMENSIONS)}")
        value = float(raw)
        low, high = TEMPO_RANGE if dim == "tempo" else (0.0, 1.0)
        if op == "=":
            if not low <= value <= high:
                raise ValueError(f"{where}: {token!r} outside {low:g}–{high:g}")
            point[dim] = value
        else:
            start = point.get(dim, NEUTRAL[dim])
            point[dim] = float(min(high, max(low, start + (value if op == "+" else -value))))


def _read_lines(text: str, what: str) -> list[tuple[str, str, str]]:
    """(section, where, line) for each table line, comments and blank lines dropped."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section != "anchors" and section not in TABLE_CATEGORIES:
                raise ValueError(f"{what} line {number}: unknown section {line}")
            continue
        out.append((section, f"{what} line {number} ({line[:48]!r})", line))
    return out


def _load_tables(text: str, hidden_text: str) -> tuple[dict[str, dict[str, Point]], dict[str, str]]:
    """Read the tables: the ``[anchors]`` section first (in place), then the hidden bases, then each category.

    Returns the entries per category and each alias's headword (the first name of its line)."""
    known: dict[str, Point] = {name: point for cat in _ANCHOR_CATEGORIES.values() for name, point in cat.items()}
    known.update(_MODIFIERS)
    spaced_known = {" ".join(_tokens(name)): name for name in known}
    hidden: dict[str, Point] = {}
    categories: dict[str, dict[str, Point]] = {c: {} for c in TABLE_CATEGORIES}
    headword: dict[str, str] = {}

    def base_point(spec: str, where: str) -> Point:
        spec = spec.strip()
        if spec == "-":
            return {}
        points = []
        for part in (p.strip() for p in spec.split(" + ")):
            if part in hidden:
                points.append(hidden[part])
                continue
            name = part if part in known else spaced_known.get(" ".join(_tokens(part)))
            if name is None:
                raise ValueError(f"{where}: base {part!r} is not an entry defined before this line")
            points.append(known[name])
        if len(points) == 1:
            return dict(points[0])
        total: dict[str, float] = {}
        count: dict[str, int] = {}
        for p in points:
            for d, v in p.items():
                total[d] = total.get(d, 0.0) + v
                count[d] = count.get(d, 0) + 1
        return {d: total[d] / count[d] for d in total}

    def parse(line: str, where: str) -> tuple[list[str], str, str]:
        m = _TABLE_LINE.match(line)
        if m is None:
            raise ValueError(f"{where}: a line reads 'names | base | offsets'")
        return [n.strip() for n in m["names"].split(",") if n.strip()], m["base"], m["offsets"]

    lines = _read_lines(text, "lexicon.TABLES")
    for section, where, line in lines:
        if section == "anchors":
            names, _, offsets = parse(line, where)
            for name in names:
                if name not in known:
                    raise ValueError(f"{where}: [anchors] names {name!r}, which is no anchor entry")
                _apply_offsets(known[name], offsets, where)
    for _, where, line in _read_lines(hidden_text, "lexicon.HIDDEN_BASES"):
        names, base, offsets = parse(line, where)
        for name in names:
            point = base_point(base, where)
            _apply_offsets(point, offsets, where)
            _one_hot_groups(point)
            hidden[name] = point
    for section, where, line in lines:
        if section == "anchors":
            continue
        names, base, offsets = parse(line, where)
        point = base_point(base, where)
        _apply_offsets(point, offsets, where)
        if base.strip() != "-":
            _one_hot_groups(point)
        if not point:
            raise ValueError(f"{where}: the entry says nothing (no base, no offsets)")
        seen_here: set[str] = set()
        for name in names:
            key = " ".join(_tokens(name))
            if key in seen_here:
                continue  # another spelling of the same words on this line (laid-back, laid back)
            seen_here.add(key)
            if key in spaced_known:
                raise ValueError(f"{where}: {name!r} is already an entry ({spaced_known[key]!r})")
            if len(key.split()) > MAX_PHRASE_WORDS:
                raise ValueError(f"{where}: {name!r} has more than {MAX_PHRASE_WORDS} words")
            categories[section][name] = dict(point)
            known[name] = categories[section][name]
            spaced_known[key] = name
            headword[name] = names[0]
    return categories, headword


_TABLES, HEADWORD = _load_tables(lexicon.TABLES, lexicon.HIDDEN_BASES)

#: Entry names per category (every entry of :data:`VOCABULARY` is in exactly one).
GENRES: tuple[str, ...] = tuple(_GENRES) + tuple(_TABLES["genres"])
WORLD: tuple[str, ...] = tuple(_TABLES["world"])
INSTRUMENTS: tuple[str, ...] = tuple(_INSTRUMENTS) + tuple(_TABLES["instruments"])
MOODS: tuple[str, ...] = tuple(_MOODS) + tuple(_TABLES["moods"])
TEXTURES: tuple[str, ...] = tuple(_TEXTURES) + tuple(_TABLES["textures"])
ERAS: tuple[str, ...] = tuple(_TABLES["eras"])
SCENES: tuple[str, ...] = tuple(_TABLES["scenes"])
GAME: tuple[str, ...] = tuple(_TABLES["game"])
MODIFIERS: tuple[str, ...] = tuple(_MODIFIERS)

#: Category name → its entries, in the order ``cadenza words`` lists them.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "genres": GENRES,
    "world": WORLD,
    "instruments": INSTRUMENTS,
    "moods": MOODS,
    "textures": TEXTURES,
    "eras": ERAS,
    "scenes": SCENES,
    "game": GAME,
    "modifiers": MODIFIERS,
}

#: What each category holds, for ``cadenza words``.
CATEGORY_NOTES: dict[str, str] = {
    "genres": "styles: tempo, density, instruments, drum pattern, harmony and form",
    "world": "genres from around the world",
    "instruments": "raise an instrument family (a voice carries the lead line)",
    "moods": "energy, brightness, mode and space; never instruments",
    "textures": "production, tempo words, rhythm and harmony words",
    "eras": "decades and periods: the production of their time",
    "scenes": "places, seasons, times of day and occasions",
    "game": "what a game needs the music for",
    "modifiers": "force dimensions after the mean (no drums, solo …)",
}

#: Entries that keep only the instrument families named in the prompt.
SOLO_ENTRIES: frozenset[str] = frozenset({"solo", "solo piano", "solo guitar"})

#: word or phrase → partial style point (dimension name → value).
VOCABULARY: dict[str, Point] = {name: _point(name) for names in CATEGORIES.values() for name in names}

for _name in _GENRES:
    HEADWORD.setdefault(_name, _name)
for _names in CATEGORIES.values():
    for _name in _names:
        HEADWORD.setdefault(_name, _name)

#: Filler words skipped without complaint (phrases such as ``drum and bass`` match first).
STOP_WORDS: frozenset[str] = frozenset(
    {
        "a", "an", "and", "the", "of", "in", "on", "at", "for", "to", "with", "some",
        "music", "style", "track", "tracks", "beat", "beats", "vibe", "vibes", "song",
        "songs", "feel", "feeling", "sound", "sounds", "sounding", "tune", "tunes",
        "loop", "loops", "like", "kind", "type", "very", "really", "more", "plus",
        "mood", "genre", "ish", "musica", "musique", "musik",
        # the connective tissue of written prompts and captions
        "is", "are", "was", "were", "be", "being", "been", "this", "that", "these", "those", "it", "its",
        "there", "here", "which", "who", "whom", "what", "by", "from", "as", "into", "onto", "over", "under",
        "while", "whilst", "during", "through", "throughout", "about", "around", "than", "then", "also",
        "but", "or", "nor", "so", "yet", "if", "when", "where", "up", "down", "out", "off", "all", "any",
        "each", "every", "both", "one", "two", "three", "four", "some", "much", "many", "most", "few",
        "little", "lots", "lot", "bit", "quite", "rather", "somewhat", "slightly", "just", "only", "even",
        "still", "too", "not", "no", "can", "could", "would", "should", "will", "may", "might", "must",
        "has", "have", "had", "having", "does", "do", "did", "i", "you", "we", "they", "he", "she", "his",
        "her", "their", "our", "my", "your", "me", "us", "them", "him", "someone", "something",
        "playing", "plays", "played", "play", "features", "featuring", "featured", "feature", "contains",
        "containing", "consists", "includes", "including", "accompanied", "accompaniment", "along",
        "together", "alongside", "backing", "background", "piece", "pieces", "composition", "recording",
        "recorded", "audio", "clip", "excerpt", "instrumentation", "instruments",
        "instrument", "part", "parts", "section", "sections", "line", "lines", "pattern", "patterns",
        "notes", "note", "tone", "tones", "sounds", "performance", "performed", "performing", "perfect",
        "great", "good", "nice", "new", "old", "main", "using", "used", "use", "create", "compose",
        "make", "made", "imagine", "inspired", "evoking", "evokes", "reminiscent", "perfect", "suitable",
        "would", "hear", "heard", "listen", "listening", "listener", "people", "person", "man", "woman",
        "guy", "girl", "boy", "male", "female", "kids", "children", "bpm", "tempo", "pace", "paced",
        "key", "keyed", "time", "signature", "starts", "start", "begins", "ends", "end", "followed",
        "first", "second", "third", "repeated", "repeating", "repeats", "same", "different",
        "genres", "moods", "vibe", "atmosphere", "atmospheric", "ambience", "emotion", "emotions",
        "energy", "level", "levels", "high", "low", "pitched", "pitch", "range", "mid",
    }
)  # fmt: skip
STOP_WORDS = STOP_WORDS - {"ambience", "atmospheric", "level", "background", "reminiscent"}

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_NUMBER_BPM = re.compile(r"(\d+(?:\.\d+)?)bpm")


def _build_index() -> tuple[dict[str, str], dict[str, str]]:
    """Lookup tables: spaced form (``lo fi``) and compact form (``lofi``) → entry name."""
    spaced: dict[str, str] = {}
    compact: dict[str, str] = {}
    for name in VOCABULARY:
        words = _tokens(name)
        if not words or len(words) > MAX_PHRASE_WORDS:
            raise ValueError(f"vocabulary entry {name!r} must have 1–{MAX_PHRASE_WORDS} words")
        key = " ".join(words)
        if key in spaced:
            raise ValueError(f"vocabulary entries {spaced[key]!r} and {name!r} read the same")
        spaced[key] = name
    for key, name in spaced.items():
        compact.setdefault(key.replace(" ", ""), name)
    return spaced, compact


def _check_vocabulary() -> None:
    """The hand-typed points (anchors, modifiers) are in range; table entries are checked as they are read."""
    for name, point in {**{n: p for c in _ANCHOR_CATEGORIES.values() for n, p in c.items()}, **_MODIFIERS}.items():
        if name != name.lower() or name != name.strip():
            raise ValueError(f"vocabulary entry {name!r} must be lower-case and trimmed")
        for dim, value in point.items():
            if dim not in INDEX:
                raise ValueError(f"vocabulary entry {name!r}: unknown dimension {dim!r}")
            low, high = TEMPO_RANGE if dim == "tempo" else (0.0, 1.0)
            if not low <= value <= high:
                raise ValueError(f"vocabulary entry {name!r}: {dim}={value} outside {low}–{high}")


_check_vocabulary()
_SPACED, _COMPACT = _build_index()


def _lookup(words: list[str]) -> str | None:
    """The entry a run of words spells, allowing joined words and a plural ``s`` on the last word."""
    last = words[-1]
    variants = [words]
    if last.endswith("s") and len(last) > 2:
        variants.append(words[:-1] + [last[:-1]])
    else:
        variants.append(words[:-1] + [last + "s"])
    for variant in variants:
        spaced = " ".join(variant)
        if spaced in _SPACED:
            return _SPACED[spaced]
        joined = "".join(variant)
        if joined in _COMPACT:
            return _COMPACT[joined]
    return None


#: Suffixes the parser strips from a word it does not know (``jazzy`` → jazz, ``drumming`` → drums,
#: ``darker`` → dark, ``gently`` → gentle): (suffix, what replaces it), tried in order.
SUFFIXES: tuple[tuple[str, str], ...] = (
    ("iest", "y"), ("ier", "y"), ("ily", "y"), ("iness", "y"), ("ness", ""), ("ically", ""), ("ally", ""),
    ("ical", ""), ("ishly", ""), ("ish", ""), ("ly", ""), ("ing", ""), ("ing", "e"), ("ed", ""), ("ed", "e"),
    ("d", ""), ("est", ""), ("er", ""), ("ers", ""), ("ey", ""), ("y", ""), ("y", "e"), ("ic", ""),
    ("al", ""), ("ist", ""), ("ists", ""), ("es", ""), ("s", ""),
)  # fmt: skip
_MIN_STEM = 3


def _morph(word: str) -> str | None:
    """The entry an unknown word is a form of (a suffix stripped, a doubled final consonant undone), if any."""
    if len(word) < _MIN_STEM + 1 or not word.isalpha():
        return None
    for suffix, replacement in SUFFIXES:
        if not word.endswith(suffix) or len(word) - len(suffix) < _MIN_STEM:
            continue
        stem = word[: len(word) - len(suffix)] + replacement
        candidates = [stem]
        if len(stem) > _MIN_STEM and stem[-1] == stem[-2]:
            candidates.append(stem[:-1])  # drumming → drumm → drum
        for candidate in candidates:
            if candidate in STOP_WORDS:
                continue
            name = _lookup([candidate])
            if name is not None:
                return name
    return None


def known_words() -> list[str]:
    """Every vocabulary entry (word or phrase), sorted."""
    return sorted(VOCABULARY)


# --------------------------------------------------------------------------- named keys ("in D minor", "Eb")

#: Place of each note letter on the line of fifths (C = 0); a sharp adds 7, a flat takes 7.
_LETTER_FIFTHS: dict[str, int] = {"f": -1, "c": 0, "g": 1, "d": 2, "a": 3, "e": 4, "b": 5}
#: Mode word → (``minor`` dimension value, key-signature offset from the tonic's major signature).
#: Modes the synth has no scale for sound as the nearest it has, on the same tonic (phrygian and
#: locrian as minor, lydian as major).
KEY_MODES: dict[str, tuple[float, int]] = {
    "major": (0.0, 0), "maj": (0.0, 0), "ionian": (0.0, 0), "lydian": (0.0, 0),
    "mixolydian": (0.4, -1), "dorian": (0.6, -2),
    "minor": (1.0, -3), "min": (1.0, -3), "aeolian": (1.0, -3), "phrygian": (1.0, -3), "locrian": (1.0, -3),
}  # fmt: skip
_ACCIDENTALS = {"sharp": 7, "flat": -7}
#: Flat keys that read as a key with no mode word or ``in`` before them (``db`` may be decibels, ``a sharp``
#: an attack, so those need a mode word: ``db major``, ``a sharp minor``).
_FLAT_KEYS = frozenset({"eb", "bb", "ab", "gb"})


@dataclass(frozen=True)
class NamedKey:
    """A key a prompt names: its tonic's spelling, mode word, and key signature (sharps, negative = flats)."""

    tonic: str
    mode: str
    sharps: int

    def __str__(self) -> str:
        return f"{self.tonic} {self.mode}"


def _note_at(words: list[str], i: int) -> tuple[int, str, int] | None:
    """(place on the line of fifths, spelling, words used) of a note name at ``words[i]``: ``d``, ``f sharp``, ``eb``."""
    word = words[i]
    if word in _LETTER_FIFTHS:
        if i + 1 < len(words) and words[i + 1] in _ACCIDENTALS:
            acc = words[i + 1]
            return _LETTER_FIFTHS[word] + _ACCIDENTALS[acc], word.upper() + ("#" if acc == "sharp" else "b"), 2
        return _LETTER_FIFTHS[word], word.upper(), 1
    if len(word) == 2 and word[0] in _LETTER_FIFTHS and word[1] == "b":
        return _LETTER_FIFTHS[word[0]] - 7, word[0].upper() + "b", 1
    return None


def _key_at(words: list[str], i: int) -> tuple[NamedKey, int] | None:
    """The key named at ``words[i]`` and how many words name it, if any.

    A note followed by a mode word (``d minor``, ``c sharp major``, ``a flat dorian``) is a key anywhere;
    a note alone is a key (major) when it is one of :data:`_FLAT_KEYS` (``eb``) or follows ``key of`` or
    ``in`` (``in d``, ``in f sharp``; not ``in a``, which is an article)."""
    note = _note_at(words, i)
    if note is None:
        return None
    place, spelling, used = note
    mode = words[i + used] if i + used < len(words) else ""
    if mode in KEY_MODES:
        used += 1
    else:
        after_key_of = i >= 2 and words[i - 2 : i] == ["key", "of"]
        after_in = i >= 1 and words[i - 1] == "in" and words[i] != "a"
        if not (words[i] in _FLAT_KEYS or after_key_of or after_in):
            return None
        mode = "major"
    sharps = place + KEY_MODES[mode][1]
    if sharps > 6:
        sharps -= 12  # C# major (7 sharps) sounds as Db major (5 flats)
    elif sharps < -6:
        sharps += 12
    mode_name = {"maj": "major", "min": "minor"}.get(mode, mode)
    return NamedKey(spelling, mode_name, sharps), used


def _force_key(vector: np.ndarray, key: NamedKey) -> None:
    """Set ``fifths``, ``minor`` and ``key_named`` so the synth plays ``key`` for every seed.

    With ``key_named`` = 1, theory.key_for reads ``fifths`` as ``0.5 + sharps / 12`` (six flats … six sharps)
    and moves it neither by brightness nor by seed."""
    vector[INDEX["fifths"]] = min(1.0, max(0.0, 0.5 + key.sharps / 12.0))
    vector[INDEX["minor"]] = KEY_MODES[key.mode][0]
    vector[INDEX["key_named"]] = 1.0


@dataclass(frozen=True, eq=False)
class ParsedPrompt:
    """What :func:`parse_prompt` understood of a text prompt.

    ``vector`` is the full style vector (read-only, length ``STYLE_DIM``);
    ``matched`` lists the vocabulary entries found in prompt order (an explicit
    tempo appears as ``"128 bpm"``); ``unknown`` lists the words not understood;
    ``spans`` pairs each matched entry with the prompt words that spelled it
    (``("drumming", "drums")``), in the same order as ``matched``; ``filler`` lists the filler
    words skipped (:data:`STOP_WORDS`); ``corrected`` pairs each misspelt word with the entry it was
    read as (``("techo", "techno")``, also in ``spans``; only in a prompt with no other known word);
    ``key`` is the key the prompt names, if any; ``suggested`` lists entries close to the unknown words.
    """

    vector: np.ndarray
    matched: tuple[str, ...]
    unknown: tuple[str, ...]
    spans: tuple[tuple[str, str], ...] = ()
    filler: tuple[str, ...] = ()
    corrected: tuple[tuple[str, str], ...] = ()
    key: NamedKey | None = None
    suggested: tuple[str, ...] = ()  # entries close to the unknown words (the warning's "did you mean")

    def warnings(self, text: str) -> tuple[str, ...]:
        """What a backend warns about this prompt: corrected spellings and unknown words."""
        out: list[str] = []
        if self.corrected:
            fixes = ", ".join(f"{w!r} as {e!r}" for w, e in self.corrected)
            out.append(f"prompt {text!r}: read misspelt word(s) {fixes}")
        if self.unknown:
            hint = f" (did you mean: {', '.join(self.suggested)}?)" if self.suggested else ""
            out.append(f"prompt {text!r}: unknown word(s) {', '.join(repr(w) for w in self.unknown)} ignored{hint}")
        return tuple(out)


_SUGGEST_WORDS = 4  # distinct unknown words a prompt's "did you mean" looks at
_CANDIDATES: list[str] = []


def _suggest(unknown: list[str]) -> list[str]:
    """Close vocabulary entries for the first :data:`_SUGGEST_WORDS` distinct unknown words (bounded work)."""
    if not _CANDIDATES:
        _CANDIDATES.extend(sorted(set(VOCABULARY) | set(_SPACED) | set(_COMPACT)))
    out: list[str] = []
    for word in list(dict.fromkeys(unknown))[:_SUGGEST_WORDS]:
        for guess in difflib.get_close_matches(word, _CANDIDATES, n=3, cutoff=0.75):
            name = _SPACED.get(guess) or _COMPACT.get(guess) or guess
            if name not in out:
                out.append(name)
    return out


_CORRECT_WORDS = 4  # distinct unknown words a prompt tries to correct (bounded work)
_CORRECT_CUTOFF = 0.84  # difflib ratio: one letter dropped, added or changed in a word of 5+ letters
_MIN_CORRECT = 4  # shorter words are not corrected ("jaz" is refused with a suggestion)
_SINGLE: list[str] = []


def _correct(word: str) -> str | None:
    """The entry a misspelt single word is meant to be: the one closest entry word, when it is close enough."""
    if len(word) < _MIN_CORRECT or not word.isalpha():
        return None
    if not _SINGLE:
        _SINGLE.extend(sorted({k for k in _SPACED if " " not in k} | set(_COMPACT)))
    close = [c for c in difflib.get_close_matches(word, _SINGLE, n=3, cutoff=_CORRECT_CUTOFF) if c[0] == word[0]][:2]
    if not close:  # a typo keeps the first letter (right is not bright, small is not mall)
        return None
    scores = [difflib.SequenceMatcher(None, word, c).ratio() for c in close]
    names = {_SPACED.get(c) or _COMPACT[c] for c in close}
    if len(close) > 1 and scores[1] == scores[0] and len(names) > 1:
        return None  # two entries as close: no guess
    return _SPACED.get(close[0]) or _COMPACT[close[0]]


def _tempo(value: str, text: str) -> float:
    bpm = float(value)
    low, high = TEMPO_RANGE
    if not low <= bpm <= high:
        raise PromptError(f"tempo {value} bpm in prompt {text!r} is outside {low:g}–{high:g} bpm")
    return bpm


def parse_prompt(text: str) -> ParsedPrompt:
    """Read a text prompt into a style vector; raises :class:`PromptError` when no word is known."""
    if not isinstance(text, str):
        raise PromptError(f"a text prompt must be a string, got {type(text).__name__} {text!r}")
    if not text.strip():
        raise PromptError("empty prompt: give at least one musical word, e.g. 'dark techno'")
    words = _tokens(text)
    matched: list[str] = []
    spans: list[tuple[str, str]] = []
    unknown: list[str] = []
    filler: list[str] = []
    tempo: float | None = None
    key: NamedKey | None = None
    i = 0
    while i < len(words):
        named = _key_at(words, i)
        if named is not None:
            key, used = named
            matched.append(f"key {key}")
            spans.append((" ".join(words[i : i + used]), matched[-1]))
            i += used
            continue
        for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            if n == 1 and words[i] in STOP_WORDS:
                continue  # a filler word stays filler ("key" is not "keys")
            name = _lookup(words[i : i + n])
            if name is not None:
                matched.append(name)
                spans.append((" ".join(words[i : i + n]), name))
                i += n
                break
        else:
            word = words[i]
            bpm_match = _NUMBER_BPM.fullmatch(word)
            if bpm_match:
                tempo = _tempo(bpm_match.group(1), text)
                matched.append(f"{bpm_match.group(1)} bpm")
                spans.append((word, matched[-1]))
            elif _NUMBER.fullmatch(word) and i + 1 < len(words) and words[i + 1] == "bpm":
                tempo = _tempo(word, text)
                matched.append(f"{word} bpm")
                spans.append((f"{word} bpm", matched[-1]))
                i += 1
            elif word in STOP_WORDS:
                filler.append(word)
            else:
                name = _morph(word)
                if name is not None:
                    matched.append(name)
                    spans.append((word, name))
                else:
                    unknown.append(word)
            i += 1

    # Misspellings are read only when nothing else is understood ("techo", "hous music"): in a prompt with known
    # words a near miss is more often another English word (cover/covert, walking/talking), so it stays unknown
    # and its warning suggests the entry.
    corrected: list[tuple[str, str]] = []
    tried = list(dict.fromkeys(unknown))[:_CORRECT_WORDS] if not matched else []
    fixes = {w: e for w in tried if (e := _correct(w)) is not None}
    # a misspelt prompt, not noise: at least half of its distinct unknown words read as entries (one lucky near
    # miss among 199 random words must not turn gibberish into music)
    if fixes and 2 * len(fixes) >= len(set(unknown)):
        for word in unknown:
            if word in fixes:
                matched.append(fixes[word])
                spans.append((word, fixes[word]))
                corrected.append((word, fixes[word]))
        unknown = [w for w in unknown if w not in fixes]

    suggested = tuple(_suggest(unknown)) if unknown and matched else ()
    if not matched:
        suggestions = _suggest(unknown)
        if suggestions:
            hint = f"did you mean: {', '.join(suggestions)}?"
        else:
            hint = ("try words such as: ambient, techno, lo-fi, piano, strings, dark, calm, boss battle "
                    "(`cadenza words` or known_words() lists all)")
        raise PromptError(f"no known musical word in prompt {text!r}; {hint}")

    vector = _combine([m for m in matched if m in VOCABULARY])
    if tempo is not None:
        vector[INDEX["tempo"]] = tempo
    if key is not None:
        _force_key(vector, key)
    vector.setflags(write=False)
    return ParsedPrompt(vector=vector, matched=tuple(matched), unknown=tuple(unknown), spans=tuple(spans),
                        filler=tuple(filler), corrected=tuple(corrected), key=key, suggested=suggested)


#: The dimensions that make a piece's pace and groove: a genre or game use owns them, a scene only colours them.
RHYTHM_DIMS: tuple[str, ...] = (
    "tempo", "energy", "drums", "bass", "swing", "offbeat", "drop", "sections", *(f"pattern_{p}" for p in PATTERNS),
)  # fmt: skip
#: Weight of an entry in the mean, per category, on :data:`RHYTHM_DIMS` (1 on every other dimension and for
#: categories not named): "epic boss battle … in a dark cathedral … demon lord" keeps the boss battle's tempo
#: and drums. Textures hold the tempo words (fast, slow, uptempo), which weigh as much as a genre on tempo.
CATEGORY_WEIGHTS: dict[str, float] = {"genres": 3.0, "world": 3.0, "game": 3.0, "scenes": 0.5}
_TEXTURE_TEMPO_WEIGHT = 3.0


def _entry_weights() -> dict[str, np.ndarray]:
    rhythm = np.array([d in RHYTHM_DIMS for d in DIMENSIONS])
    out: dict[str, np.ndarray] = {}
    for category, names in CATEGORIES.items():
        w = np.ones(STYLE_DIM)
        w[rhythm] = CATEGORY_WEIGHTS.get(category, 1.0)
        if category == "textures":
            w[INDEX["tempo"]] = _TEXTURE_TEMPO_WEIGHT
        for name in names:
            out[name] = w
    return out


_WEIGHTS = _entry_weights()

_MODE_PHRASE_WORDS = frozenset({"key", "scale", "chords", "in", "mode"})
#: Entries that name a mode (minor, major key, dorian, in minor …) and set ``minor`` after the mean, like a
#: named key does: entry → the ``minor`` value of its mode (:data:`KEY_MODES`).
MODE_ENTRIES: dict[str, float] = {
    name: KEY_MODES[modes[0]][0]
    for name in VOCABULARY
    if (words := _tokens(name))
    and len(modes := [w for w in words if w in KEY_MODES]) == 1
    and all(w in KEY_MODES or w in _MODE_PHRASE_WORDS for w in words)
}


def _combine(entries: list[str]) -> np.ndarray:
    """Weighted mean of the entries' partial points (:data:`CATEGORY_WEIGHTS`), then the solo rule, then the
    modifiers' forced values."""
    modifiers = set(MODIFIERS)
    total = np.zeros(STYLE_DIM)
    count = np.zeros(STYLE_DIM)
    for name in entries:
        if name in modifiers:
            continue
        weights = _WEIGHTS[name]
        for dim, value in VOCABULARY[name].items():
            k = INDEX[dim]
            total[k] += weights[k] * value
            count[k] += weights[k]
    given = {DIMENSIONS[k]: float(total[k] / count[k]) for k in np.flatnonzero(count)}
    vector = vector_from(given)

    if any(name in SOLO_ENTRIES for name in entries):
        instruments = set(INSTRUMENTS)
        named = {
            dim
            for name in entries
            if name in instruments
            for dim, value in VOCABULARY[name].items()
            if dim in INSTRUMENT_FAMILIES and value > 0.0
        }
        if not named:  # "solo jazz": keep the strongest family of the mix
            named = {max(INSTRUMENT_FAMILIES, key=lambda f: float(vector[INDEX[f]]))}
        for family in INSTRUMENT_FAMILIES:
            if family not in named:
                vector[INDEX[family]] = 0.0

    for name in entries:
        if name in modifiers and name not in SOLO_ENTRIES:
            for dim, value in VOCABULARY[name].items():
                vector[INDEX[dim]] = value
    for name in entries:  # "house minor": the mode asked for, not a blend of house's and minor's
        if name in MODE_ENTRIES:
            vector[INDEX["minor"]] = MODE_ENTRIES[name]
    return clip(vector)


# --------------------------------------------------------------------------- documentation (cadenza words)


def category_of(name: str) -> str:
    """The category an entry belongs to (``KeyError`` for a name that is no entry)."""
    for category, names in CATEGORIES.items():
        if name in names:
            return category
    raise KeyError(name)


def _fmt(value: float, dim: str) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if dim == "tempo" else f"{value:.2f}".rstrip("0").rstrip(".")


def format_point(point: Point) -> str:
    """``tempo=124 energy=0.7 …`` in dimension order; a one-hot group reads ``pattern=four_floor``."""
    parts: list[str] = []
    for prefix, names in _GROUPS.items():
        dims = [f"{prefix}_{n}" for n in names]
        if all(d in point for d in dims) and sorted(point[d] for d in dims) == [0.0] * (len(dims) - 1) + [1.0]:
            parts.append(f"{prefix}={next(n for n in names if point[f'{prefix}_{n}'] == 1.0)}")
    grouped = {f"{p}_{n}" for p, names in _GROUPS.items() for n in names if any(s.startswith(p + "=") for s in parts)}
    for dim in DIMENSIONS:
        if dim in point and dim not in grouped:
            parts.append(f"{dim}={_fmt(point[dim], dim)}")
    return " ".join(parts)


def describe_words() -> list[str]:
    """The vocabulary by category, one line per category: ``name (count, what): headword (aliases), …``."""
    lines: list[str] = []
    for category, names in CATEGORIES.items():
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(HEADWORD.get(name, name), []).append(name)
        items = []
        for head in sorted(groups):
            aliases = [a for a in groups[head] if a != head]
            items.append(f"{head} ({', '.join(aliases)})" if aliases else head)
        lines.append(f"{category} ({len(names)}; {CATEGORY_NOTES[category]}): {', '.join(items)}")
    lines.append(f"filler ({len(STOP_WORDS)}; skipped without a warning, never an entry): {', '.join(sorted(STOP_WORDS))}")
    return lines


def search_words(term: str) -> list[str]:
    """Entries whose name contains ``term`` (case-insensitive, hyphens and spaces alike), with their points."""
    needle = " ".join(_tokens(term))
    if not needle:
        raise PromptError(f"--search needs a word, got {term!r}")
    starts = re.compile(r"(?:^| )" + re.escape(needle))  # at the start of a word: "harp" finds celtic harp, not sharp
    hits = [n for n in sorted(VOCABULARY) if starts.search(" ".join(_tokens(n))) or n.startswith(needle.replace(" ", ""))]
    return [f"{n} [{category_of(n)}]: {format_point(VOCABULARY[n])}" for n in hits]


def explain(text: str) -> list[str]:
    """What each word of a prompt contributed, and the resulting dimensions (raises :class:`PromptError`)."""
    parsed = parse_prompt(text)
    lines = [f"prompt: {text!r}"]
    for words, name in parsed.spans:
        if name in VOCABULARY:
            how = "" if " ".join(_tokens(name)) == words or _lookup(_tokens(words)) == name else " (word form)"
            if (words, name) in parsed.corrected:
                how = " (misspelling corrected; the warning names it)"
            lines.append(f"  {words!r} → {name} [{category_of(name)}]{how}: {format_point(VOCABULARY[name])}")
        elif parsed.key is not None and name == f"key {parsed.key}":
            lines.append(f"  {words!r} → {name} (sets fifths and minor after the mean: "
                         f"{abs(parsed.key.sharps)} {'flat' if parsed.key.sharps < 0 else 'sharp'}(s))")
        else:
            lines.append(f"  {words!r} → tempo={name.split()[0]} (explicit, overrides the mean)")
    for word in parsed.unknown:
        lines.append(f"  {word!r} → not understood (ignored; the warning names it)")
    for word in dict.fromkeys(parsed.filler):
        lines.append(f"  {word!r} → filler (ignored, no warning; `cadenza words` lists the filler words)")
    lines.append("result (weighted mean of the entries per dimension; neutral where none speaks; modifiers, "
                 "tempo and key forced):")
    lines.append("  " + " ".join(f"{d}={_fmt(float(parsed.vector[i]), d)}" for i, d in enumerate(DIMENSIONS)))
    return lines


__all__ = [
    "CATEGORIES",
    "ERAS",
    "GAME",
    "GENRES",
    "INSTRUMENTS",
    "MODIFIERS",
    "MOODS",
    "SCENES",
    "SOLO_ENTRIES",
    "STOP_WORDS",
    "TEXTURES",
    "VOCABULARY",
    "WORLD",
    "ParsedPrompt",
    "describe_words",
    "explain",
    "known_words",
    "parse_prompt",
    "search_words",
]
