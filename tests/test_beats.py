"""The streaming beat tracker (what the magenta backend reports as estimated beats), on music with a known grid.

The synth renders its exact beat grid, so its audio is ground truth: fed to
:class:`BeatTracker` in 40 ms blocks (as the magenta backend feeds it), the
tracker must find the tempo within 1 % (or its half/double, the usual octave
ambiguity), report each beat once, in order, inside the block that holds it,
and land within 30 ms of the rendered beats after its 3 s of listening.
Silence has no pulse: no beats.
"""

from __future__ import annotations

import numpy as np
import pytest

from cadenza.runtime.backends import Controls, TextPrompt, get_backend
from cadenza.runtime.backends.beats import MIN_HISTORY_S, BeatTracker

BLOCK = 1920
SECONDS = 16


def _track(prompt: str, bpm: float, seed: int = 3) -> tuple[np.ndarray, list, BeatTracker]:
    synth = get_backend("synth")
    style = synth.embed(TextPrompt(prompt)).vector
    state = synth.new_stream(seed)
    tracker = BeatTracker()
    truth: list[float] = []
    found = []
    for _ in range(SECONDS * 48_000 // BLOCK):
        start = state.frame
        pcm, state = synth.generate(state, style, Controls(bpm=bpm), BLOCK)
        truth += [b.position for b in state.beats]
        beats = tracker.feed(pcm)
        assert all(start <= b.frame < start + BLOCK for b in beats)  # reported in the block that holds them
        found += beats
    return np.array(truth), found, tracker


@pytest.mark.parametrize(("prompt", "bpm"), [("dark techno", 120.0), ("drum and bass", 172.0),
                                               ("lofi hip hop", 85.0), ("deep house", 124.0)])
def test_estimated_beats_land_on_the_rendered_grid(prompt: str, bpm: float) -> None:
    truth, found, tracker = _track(prompt, bpm)
    assert found, "no beats estimated"
    assert all(b.estimated for b in found)
    assert [b.beat for b in found] == list(range(len(found)))
    assert [b.beat_in_bar for b in found] == [i % 4 for i in range(len(found))]
    assert found[0].frame >= MIN_HISTORY_S * 48_000 - BLOCK
    assert tracker.bpm is not None
    ratio = tracker.bpm / bpm
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0)) < 0.01, f"tracked {tracker.bpm:.2f} bpm for {bpm}"
    pos = np.array([b.position for b in found])
    # every truth beat (or every other, at half tempo) in the tracked span is found within 30 ms
    err = np.array([np.min(np.abs(truth - p)) for p in pos]) / 48.0
    assert np.median(err) < 15 and np.percentile(err, 90) < 30, f"offsets (ms) {np.round(err, 1)}"
    gaps = np.diff(pos) / (48_000 * 60 / tracker.bpm)
    assert np.all(np.abs(gaps - 1) < 0.1), f"beat gaps in beats {np.round(gaps, 2)}"


def test_silence_and_noise_have_no_pulse() -> None:
    tracker = BeatTracker()
    rng = np.random.default_rng(0)
    found = []
    for i in range(12 * 48_000 // BLOCK):  # 6 s of steady white noise, then 6 s of silence
        noise = 0.1 * rng.standard_normal((BLOCK, 2)).astype(np.float32)
        found += tracker.feed(noise if i < 150 else np.zeros_like(noise))
    assert found == []


def test_a_forked_tracker_continues_like_the_original() -> None:
    truth, found, tracker = _track("dark techno", 120.0)
    synth = get_backend("synth")
    state = synth.new_stream(9)
    style = synth.embed(TextPrompt("dark techno")).vector
    copy = tracker.copy()
    for _ in range(50):
        pcm, state = synth.generate(state, style, Controls(bpm=120.0), BLOCK)
        assert tracker.feed(pcm) == copy.feed(pcm)
