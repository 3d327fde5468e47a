"""BeatGrid without a server: decks' own counts become one count that never goes back (runtime/beat_grid.py).

What the tests prove: a deck's beats are renumbered from 0 at the stream's first downbeat; an incoming deck takes
over at its first downbeat (the outgoing deck's beat on the same bar line, a fraction of a sample off, gives way);
a downbeat too close to the last one waits for the next; a deck that is gone is replaced at the wanted deck's next
downbeat; the offset (frames spent paused) counts in the comparisons, not in the beats returned.
"""

from __future__ import annotations

from cadenza.runtime.backends.base import Beat
from cadenza.runtime.beat_grid import BeatGrid

SR = 48_000


def grid_of(start: float, bpm: float, n: int, first: int = 0) -> list[Beat]:
    """``n`` beats of a deck at ``bpm`` from ``start`` (frames), its own count from ``first``."""
    period = SR * 60.0 / bpm
    out = []
    for k in range(first, first + n):
        pos = start + (k - first) * period
        out.append(Beat(frame=int(round(pos)), beat=k, bar=k // 4, beat_in_bar=k % 4, bpm=bpm, position=pos))
    return out


def numbers(beats: list[Beat]) -> list[tuple[int, int, int]]:
    return [(b.beat, b.bar, b.beat_in_bar) for b in beats]


def test_a_crossfade_on_the_bar_hands_over_at_its_start_and_the_count_runs_on() -> None:
    g = BeatGrid()
    a, b = object(), object()
    old = grid_of(0.0, 72.5, 10, first=20)  # the bed: its own count is 20.., not a downbeat first
    out = g.take([(a, old[:8])], a)
    assert numbers(out) == [(k, k // 4, k % 4) for k in range(8)]  # 20 → beat 0, bar 0
    bar_line = old[8].position
    assert bar_line is not None
    # the incoming deck starts on that bar line (an integer sample; the old grid's is fractional)
    new = grid_of(float(int(bar_line) + 1), 172.0, 3)
    out = g.take([(a, old[8:]), (b, new)], b)
    assert numbers(out) == [(8, 2, 0), (9, 2, 1), (10, 2, 2)]
    assert [x.bpm for x in out] == [172.0] * 3 and g.deck is b


def test_a_downbeat_closer_than_a_beat_to_the_last_waits_for_the_next() -> None:
    g = BeatGrid()
    a, b = object(), object()
    g.take([(a, grid_of(0.0, 120.0, 4))], a)  # bar 0: downbeat at 0, beats to 72000
    # the incoming deck's downbeat 2,000 samples after the old one's last beat: refused; its next downbeat is taken
    new = grid_of(74_000.0, 120.0, 8)
    out = g.take([(a, grid_of(96_000.0, 120.0, 1, first=4)), (b, new)], b)
    assert [x.frame for x in out] == [96_000, 170_000, 194_000, 218_000, 242_000]
    assert numbers(out) == [(4, 1, 0), (5, 2, 0), (6, 2, 1), (7, 2, 2), (8, 2, 3)]
    downs = [x.frame for x in out if x.beat_in_bar == 0]
    assert downs[1] - downs[0] >= 24_000


def test_a_deck_that_is_gone_is_followed_by_the_wanted_decks_next_downbeat() -> None:
    g = BeatGrid()
    a, b = object(), object()
    g.take([(a, grid_of(0.0, 120.0, 6))], a)  # beats 0..5, the last at 120000 (beat_in_bar 1)
    out = g.take([(b, grid_of(130_000.0, 120.0, 8, first=1))], b)  # a is gone; b's downbeat at 202000
    assert [x.frame for x in out] == [202_000, 226_000, 250_000, 274_000, 298_000]
    assert numbers(out)[0] == (6, 2, 0)


def test_the_offset_counts_in_the_comparisons_only() -> None:
    g = BeatGrid()
    a = object()
    out = g.take([(a, grid_of(0.0, 120.0, 2))], a, offset=480_000)
    assert [x.frame for x in out] == [0, 24_000]  # the caller's frames
    assert g.last is not None and g.last[0] == 504_000  # compared on the stream
