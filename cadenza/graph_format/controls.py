"""What a musical control's value may be, whichever backend plays it: ranges and the spelling of scales.

One job: write once the backend-independent rules for control values, so
that the graph checker (a literal ``bpm: 300`` in a graph is refused with its
path), the backends' :class:`~cadenza.runtime.backends.base.Controls`, the
graph engine (which clamps *computed* values into :data:`CLAMP_RANGES`), the
CLI (``--bpm``) and the synth's harmony read the same numbers and words.

Imports only the standard library, :mod:`.declaration` (:data:`BPM_RANGE`, :class:`Number`) and the
protobuf ``Controls`` (the integer controls' largest values are what their fields hold).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType

from cadenza.graph_format.declaration import BPM_RANGE, Number, fmt
from cadenza.proto import cadenza_v1_pb2 as _pb

__all__ = [
    "BPM_RANGE",
    "CLAMP_RANGES",
    "CONTROL_RANGES",
    "INT_CONTROL_MAX",
    "MODE_ALIASES",
    "NOTE_NAMES",
    "PITCH_CLASS",
    "SCALES",
    "control_problem",
    "range_text",
    "scale_key",
]

_FIELD = _pb.Controls.DESCRIPTOR.fields_by_name
_BITS = {_FIELD["top_k"].TYPE_UINT32: 32, _FIELD["top_k"].TYPE_UINT64: 64}
#: The integer controls' largest values: what their ``Controls`` fields hold (top_k uint32, seed uint64).
INT_CONTROL_MAX: Mapping[str, int] = MappingProxyType({
    name: 2 ** _BITS[_FIELD[name].type] - 1 for name in ("top_k", "seed")})

#: The numeric controls' valid values (a literal outside is refused; ``above``: exclusive lower bound). An
#: integer bound is an ``int`` (exact, also beyond 2**53).
CONTROL_RANGES: Mapping[str, Number] = MappingProxyType({
    "bpm": Number(lo=BPM_RANGE[0], hi=BPM_RANGE[1]),
    "density": Number(lo=0.0, hi=1.0),
    "brightness": Number(lo=0.0, hi=1.0),
    "temperature": Number(above=0.0),
    "top_k": Number(lo=1, hi=INT_CONTROL_MAX["top_k"]),
    "guidance": Number(lo=0.0),
    "seed": Number(lo=0, hi=INT_CONTROL_MAX["seed"]),
})

#: Where the graph engine clamps a value it COMPUTED from parameters (temperature: a floor above 0).
CLAMP_RANGES: Mapping[str, tuple[float, float]] = MappingProxyType({
    "bpm": BPM_RANGE,
    "density": (0.0, 1.0),
    "brightness": (0.0, 1.0),
    "temperature": (0.01, math.inf),
    "guidance": (0.0, math.inf),
})

# ------------------------------------------------------------------ scales
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_CLASS: Mapping[str, int] = MappingProxyType({
    "c": 0, "b#": 0, "c#": 1, "db": 1, "d": 2, "d#": 3, "eb": 3, "e": 4, "fb": 4, "e#": 5,
    "f": 5, "f#": 6, "gb": 6, "g": 7, "g#": 8, "ab": 8, "a": 9, "a#": 10, "bb": 10, "b": 11, "cb": 11,
})
SCALES: Mapping[str, tuple[int, ...]] = MappingProxyType({
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
})
MODE_ALIASES: Mapping[str, str] = MappingProxyType({
    "maj": "major", "ionian": "major", "min": "minor", "aeolian": "minor", "m": "minor",
    "natural minor": "minor", "harmonic": "harmonic minor",
})


def scale_key(text: str) -> tuple[int, str]:
    """``"A minor"``, ``"F# dorian"``, ``"Eb"``, ``"c_major"`` → (tonic pitch class 0–11, mode: a key of SCALES).

    Raises :class:`ValueError` naming the text and the valid choices.
    """
    cleaned = re.sub(r"[_\-]+", " ", str(text)).strip().lower()
    m = re.fullmatch(r"([a-g])\s*([#b]?)\s*(.*)", cleaned)
    if not m:
        raise ValueError(f"unknown scale {text!r}: expected a key and a mode such as 'A minor' or 'F# dorian'; "
                         f"modes: {', '.join(SCALES)}")
    note, accidental, rest = m.group(1), m.group(2), m.group(3).strip()
    if accidental == "b" and re.match(r"b[a-z]", cleaned[cleaned.index("b", 1):]):
        # "C blues", "Cbmaj": a "b" glued to a word is that word's first letter unless the rest is a mode
        if MODE_ALIASES.get(rest, rest) not in SCALES:
            accidental, rest = "", cleaned[1:].strip()
    mode_text = rest or "major"
    mode = MODE_ALIASES.get(mode_text, mode_text)
    if mode not in SCALES:
        raise ValueError(f"unknown mode {mode_text!r} in scale {text!r}; modes: {', '.join(SCALES)} "
                         f"(e.g. 'A minor', 'F# dorian')")
    return PITCH_CLASS[note + accidental], mode


def range_text(r: Number) -> str:
    """``40–240``, ``> 0``, ``>= 1``; integer bounds ``>= 1 and <= 4294967295`` (exact)."""
    if isinstance(r.lo, int) and isinstance(r.hi, int):
        return f">= {r.lo} and <= {r.hi}"
    if r.lo is not None and r.hi is not None:
        return f"{fmt(r.lo)}–{fmt(r.hi)}"
    if r.above is not None:
        return f"> {fmt(r.above)}"
    return f">= {fmt(r.lo or 0.0)}"


def control_problem(name: str, value: object) -> str | None:
    """Why the literal ``value`` cannot be control ``name`` whatever the backend, or None.

    Only the values this module rules on: a finite number of a numeric control
    (other kinds are the checker's), a text for ``scale``.
    """
    r = CONTROL_RANGES.get(name)
    if r is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        x: float = value
        if not isinstance(value, int) or not isinstance(r.hi, int):  # an int against int bounds stays exact
            try:
                x = float(value)
            except OverflowError:
                x = math.inf
        if (r.above is not None and not x > r.above) or (r.lo is not None and x < r.lo) \
                or (r.hi is not None and x > r.hi):
            text = range_text(r)
            return f"must be {text}" if text.startswith((">", "<")) else f"must be in {text}"
        return None
    if name == "scale" and isinstance(value, str):
        try:
            scale_key(value)
        except ValueError as exc:
            return str(exc)
    return None
