"""Music theory for the synth: keys, scales, diatonic chords, progressions, voice leading.

Pure functions over MIDI note numbers; no audio here.
"""

from __future__ import annotations

import itertools

from cadenza.runtime.backends.scales import NOTE_NAMES, SCALES, Key, parse_scale

__all__ = ["NOTE_NAMES", "SCALES", "Key", "parse_scale", "PROGRESSIONS", "FAMILY_PROGRESSIONS", "mode_for",
           "progression_family", "key_for", "kick_pitch", "voicings", "lead_voices", "nearest_in", "midi_to_hz"]

#: Chord progressions as scale degrees (0 = tonic), one chord per bar.
PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 0, 4), (3, 4, 2, 5), (0, 2, 3, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4), (0, 3, 6, 2), (5, 6, 0, 0)),
}

#: Progressions per genre family (see ``style.PROGRESSION_FAMILIES``) and key quality, one chord per bar.
#: Each entry is an ``(A, B)`` pair: the A section's phrase and the contrasting B phrase.
FAMILY_PROGRESSIONS: dict[tuple[str, str], tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]] = {
    ("pop", "major"): (((0, 4, 5, 3), (3, 4, 0, 0)), ((0, 5, 3, 4), (5, 3, 0, 4)), ((0, 3, 0, 4), (5, 4, 3, 4))),
    ("pop", "minor"): (((0, 5, 2, 6), (3, 4, 0, 0)), ((0, 3, 4, 0), (5, 6, 2, 4)), ((0, 5, 6, 0), (3, 6, 0, 0))),
    # ii–V–I, iii–vi–ii–V turnarounds; the 7ths and 9ths come from the ``harmony`` dimension
    ("jazz", "major"): (((1, 4, 0, 0), (2, 5, 1, 4)), ((1, 4, 0, 5), (3, 3, 1, 4)), ((0, 5, 1, 4), (2, 5, 1, 4))),
    ("jazz", "minor"): (((1, 4, 0, 0), (3, 6, 2, 5)), ((0, 3, 1, 4), (5, 1, 4, 0)), ((0, 0, 1, 4), (3, 6, 1, 4))),
    # vamps: one chord or two, the stab carries the tension
    ("modal", "major"): (((0, 0, 0, 0), (0, 0, 6, 6)), ((0, 0, 6, 0), (3, 3, 0, 0)), ((0, 6, 0, 6), (3, 0, 3, 0))),
    ("modal", "minor"): (((0, 0, 0, 0), (5, 5, 0, 0)), ((0, 0, 6, 6), (0, 0, 5, 5)), ((0, 3, 0, 3), (5, 6, 0, 0))),
    # voice-led triads: i–VI–III–VII, plagal and deceptive motion
    ("epic", "major"): (((0, 3, 5, 4), (5, 3, 0, 4)), ((0, 4, 5, 2), (3, 0, 3, 4)), ((5, 3, 0, 4), (0, 2, 3, 3))),
    ("epic", "minor"): (((0, 5, 2, 6), (5, 6, 0, 0)), ((0, 3, 5, 4), (5, 2, 6, 4)), ((0, 5, 3, 6), (5, 6, 2, 4))),
}

#: Major-key tonic on the line of fifths (index = sharps + 6, from Gb to F#) and each mode's tonic offset.
_MODE_OFFSET = {"major": 0, "mixolydian": 7, "dorian": 2, "minor": 9}


def key_for(fifths: float, minor: float, brightness: float, seed: int, named: float = 0.0) -> Key:
    """The key a style asks for: its place on the line of fifths (nudged sharp-wards by brightness), the
    mode from ``minor``; the seed picks the centre key or a neighbour one fifth either side.

    With ``named`` >= 0.5 (the ``key_named`` dimension: the prompt named its key) the key is exact for every
    seed: ``fifths`` = 0.5 + sharps / 12 (six flats … six sharps, so Eb minor and F# major fit), with no
    brightness nudge and no seed move."""
    if named >= 0.5:
        sharps = int(round((fifths - 0.5) * 12.0))
    else:
        centre = (fifths - 0.5) * 10.0 + (brightness - 0.5) * 1.5
        sharps = int(round(centre)) + (0, 1, -1)[seed % 3]
    sharps = max(-6, min(6, sharps))
    mode = mode_for(minor)
    tonic = (7 * sharps + _MODE_OFFSET[mode]) % 12
    return Key(tonic, mode)


def kick_pitch(tonic: int, low: int = 30, span: int = 9) -> int:
    """The kick's pitch: the key's tonic in [low, low + span] (F#1–D#2 by default, 46–78 Hz), else its fifth
    (E and F keys: B1, C2 — lower would cost punch and loudness, higher sounds like a tom). A kick on the fifth
    where the tonic fits (Eb minor's on Bb) pulled the heard home note to the fifth."""
    for pc in (tonic, (tonic + 7) % 12):
        p = low + (pc - low) % 12
        if p <= low + span:
            return p
    return low + (tonic - low) % 12


def mode_for(minor: float) -> str:
    """The mode a style's ``minor`` dimension asks for."""
    if minor < 0.3:
        return "major"
    if minor < 0.5:
        return "mixolydian"
    if minor < 0.7:
        return "dorian"
    return "minor"


def progression_family(key: Key) -> str:
    return "minor" if key.is_minor else "major"


def voicings(pcs: tuple[int, ...], low: int, high: int) -> list[tuple[int, ...]]:
    """Close-position voicings (every inversion, every octave) of ``pcs`` inside [low, high]."""
    out: list[tuple[int, ...]] = []
    n = len(pcs)
    for inv in range(n):
        order = pcs[inv:] + pcs[:inv]
        for base in range(low - 12, high + 1):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in order[1:]:
                nxt = notes[-1] + ((pc - notes[-1]) % 12 or 12)
                notes.append(nxt)
            if notes[0] >= low and notes[-1] <= high:
                out.append(tuple(notes))
    return out


def lead_voices(previous: tuple[int, ...] | None, pcs: tuple[int, ...], low: int, high: int) -> tuple[int, ...]:
    """The voicing of ``pcs`` that moves least from ``previous`` (smooth voice leading)."""
    cands = voicings(pcs, low, high)
    if not cands:
        raise ValueError(f"no voicing of {pcs} in [{low}, {high}]")
    if previous is None:
        centre = (low + high) / 2
        return min(cands, key=lambda v: abs(sum(v) / len(v) - centre))

    def cost(v: tuple[int, ...]) -> float:
        # pair voices in sorted order; unequal sizes compare against the nearest note
        if len(v) == len(previous):
            return float(sum(abs(a - b) for a, b in zip(sorted(v), sorted(previous))))
        return float(sum(min(abs(a - b) for b in previous) for a in v))

    return min(cands, key=cost)


def nearest_in(pitch: float, pcs: tuple[int, ...]) -> int:
    """The MIDI pitch nearest to ``pitch`` whose pitch class is in ``pcs``."""
    best = None
    for cand in itertools.chain.from_iterable((int(pitch) + d, int(pitch) - d) for d in range(12)):
        if cand % 12 in pcs:
            best = cand
            break
    assert best is not None
    return best


def midi_to_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
