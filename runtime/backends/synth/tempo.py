"""The tempo of a prompt mix: the tempo of the prompt that leads the mix, never the average of distant tempos.

One job. Averaging the style vectors of "dark techno" (130 bpm) and "calm
ambient pads" (72.5 bpm) would give 101 bpm, a tempo that fits neither. The
synth mixes every other style dimension as a weighted average, but its tempo
is settled here: the prompt with the most weight leads (of equal weights, the
faster prompt, so the order of the prompts never matters); every other
prompt's tempo is folded by octaves (×2, ÷2) to the one nearest the leader's,
and counts in a weighted (logarithmic) average only when it then lies within
:data:`NEAR` (6 %) of the leader's — so "techno" (130) beside "house" (124)
plays ~127 bpm, while "dark techno" beside "calm ambient pads" (72.5 → 145
folded, 11.5 % away) plays techno's 130 exactly. When the lead passes to
another prompt the tempo changes to that prompt's (by half/double time or by
more than :data:`JUMP`): the engine then changes it on the next bar line
instead of gliding through the tempos between (:func:`octave_jump`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["JUMP", "NEAR", "octave_jump", "settle_tempo"]

#: a folded tempo within this ratio of the leader's counts in the average (6 %: neighbouring club genres)
NEAR = 1.06
#: a change of the mix's tempo by more than this ratio is a change of lead: made at once, not glided
JUMP = 1.12


def settle_tempo(tempos: Sequence[float], weights: Sequence[float]) -> float:
    """The mix's tempo (bpm) from each prompt's tempo and (normalized or not) weight."""
    if not tempos:
        raise ValueError("no tempos to settle")
    # the most weight leads; of equal weights the faster prompt (order-independent, deterministic)
    lead = max(range(len(tempos)), key=lambda i: (weights[i], tempos[i]))
    ref = math.log2(tempos[lead])
    total = weight = 0.0
    for t, w in zip(tempos, weights):
        if w <= 0.0 or t <= 0.0:
            continue
        x = math.log2(t)
        x -= round(x - ref)  # the octave nearest the leader's
        if abs(x - ref) <= math.log2(NEAR) + 1e-12:
            total += w * x
            weight += w
    return 2.0 ** (total / weight) if weight > 0.0 else tempos[lead]


def octave_jump(current: float, target: float, tolerance: float = 0.06) -> bool:
    """Whether the style's tempo should change to ``target`` at once (on the next bar line) rather than glide: it
    is ``current`` doubled or halved (within ``tolerance`` octaves), or more than :data:`JUMP` away — the mix's
    lead passed to another prompt (e.g. 130 → 71.25 bpm), whose tempo the glide would only pass through."""
    if current <= 0.0 or target <= 0.0:
        return False
    octaves = math.log2(target / current)
    if abs(octaves) > math.log2(JUMP):
        return True
    return round(octaves) != 0 and abs(octaves - round(octaves)) <= tolerance
