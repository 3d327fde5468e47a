"""The synth backend through the backend contract: what it promises, checked on real renders.

Every test drives :class:`SynthBackend` the way the runtime does (``embed`` →
``new_stream`` → ``generate`` in blocks) and measures the audio or the beat
grid it hands back; nothing is mocked. The acceptance measurements over long
renders (tempo by beat tracking, loudness, clicks, CLI determinism) live in
``test_render_quality.py``; these tests are short (a few seconds of audio
each) and aim at the contract:

* the Protocols, the capabilities (each listed control changes the audio,
  each unlisted one does not), shapes, ranges and bad arguments;
* block-size invariance, ``fork`` and seeds;
* the beat grid (exact frames, bars, a bpm change);
* a style switch glides (no click, no restart); mutes remove their band;
  ``scale`` sets the pitch classes; audio prompts and unknown words;
* prompt mixing (:mod:`cadenza.runtime.mixing`) and its cache;
* the numba DSP against NumPy/SciPy references (the K-weighting biquads),
  the loudness leveller and the limiter ceiling;
* ``Controls`` validation.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import audio_metrics as am  # noqa: E402

from cadenza.errors import CadenzaError, PromptError, UsageError  # noqa: E402
from cadenza.runtime.backends.base import (  # noqa: E402
    ALL_CONTROLS,
    SAMPLE_RATE,
    AudioPrompt,
    Backend,
    Beat,
    Controls,
    Embedding,
    Prompt,
    StreamState,
    TextPrompt,
    WeightedPrompt,
)
from cadenza.runtime.backends.synth import SynthBackend, SynthState, dsp, engine  # noqa: E402
from cadenza.runtime.backends.synth.style import INDEX, STYLE_DIM  # noqa: E402
from cadenza.runtime.backends.synth.theory import SCALES  # noqa: E402
from cadenza.runtime.mixing import PromptMixer, mix_embeddings, normalized_weights  # noqa: E402

SR = SAMPLE_RATE
RUNTIME_STEP = 480  # the live runtime's generation step (10 ms)
HONOURED = frozenset({"bpm", "density", "brightness", "scale", "mute_bass", "mute_drums", "seed"})

AMBIENT, DNB, TECHNO, PIANO = "calm ambient pads", "aggressive drum and bass", "dark techno", "solo piano"


# ----------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def backend() -> SynthBackend:
    return SynthBackend()


@pytest.fixture(scope="module")
def style(backend: SynthBackend) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def get(text: str) -> np.ndarray:
        if text not in cache:
            cache[text] = backend.embed(TextPrompt(text)).vector
        return cache[text]

    return get


Rendered = tuple[np.ndarray, list[Beat], SynthState]


def generate(
    backend: SynthBackend,
    state: SynthState,
    style: np.ndarray,
    controls: Controls,
    frames: int,
    blocks: Sequence[int] = (4096,),
) -> Rendered:
    """Generate ``frames`` in blocks cycling through ``blocks``; returns (pcm, beats, state)."""
    parts: list[np.ndarray] = []
    beats: list[Beat] = []
    done = 0
    i = 0
    while done < frames:
        n = min(blocks[i % len(blocks)], frames - done)
        start = state.frame
        pcm, state = backend.generate(state, style, controls, n)
        assert pcm.shape == (n, 2)
        assert state.frame == start + n
        for b in state.beats:
            assert start <= b.frame < start + n, f"beat at {b.frame} reported for block [{start}, {start + n})"
        parts.append(pcm)
        beats.extend(state.beats)
        done += n
        i += 1
    pcm = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.float32)
    return pcm, beats, state


def render(
    backend: SynthBackend,
    style: np.ndarray,
    controls: Controls = Controls(),
    seconds: float = 3.0,
    seed: int = 0,
    blocks: Sequence[int] = (4096,),
) -> Rendered:
    return generate(backend, backend.new_stream(seed), style, controls, int(round(seconds * SR)), blocks)


def band_share(pcm: np.ndarray, low_hz: float, high_hz: float) -> float:
    """Fraction of the mono mix's power between ``low_hz`` and ``high_hz`` (plain FFT)."""
    x = am.as_2d(pcm).mean(axis=1)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / SR)
    return float(power[(freqs >= low_hz) & (freqs < high_hz)].sum() / power[freqs >= 20.0].sum())


def chroma(pcm: np.ndarray, low_hz: float = 60.0, high_hz: float = 2000.0) -> np.ndarray:
    """Power per pitch class (index 0 = C), from an FFT folded onto the nearest semitone."""
    x = am.as_2d(pcm).mean(axis=1)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / SR)
    keep = (freqs >= low_hz) & (freqs < high_hz)
    midi = np.round(69.0 + 12.0 * np.log2(freqs[keep] / 440.0)).astype(np.int64)
    c = np.bincount(midi % 12, weights=power[keep], minlength=12)
    return c / c.sum()


def rel_diff_db(a: np.ndarray, b: np.ndarray) -> float:
    """Power of ``a - b`` relative to the power of ``b``, in dB."""
    num = float(np.mean((a.astype(np.float64) - b) ** 2))
    den = float(np.mean(b.astype(np.float64) ** 2))
    return 10.0 * math.log10(num / den) if num > 0 else -math.inf


# ----------------------------------------------------------------------------- the contract


def test_synth_satisfies_the_backend_protocols(backend: SynthBackend) -> None:
    assert isinstance(backend, Backend)
    state = backend.new_stream(0)
    assert isinstance(state, StreamState)
    assert isinstance(state.fork(), StreamState)
    assert backend.name == "synth"
    assert backend.style_dim == STYLE_DIM
    caps = backend.capabilities
    assert (caps.sample_rate, caps.channels) == (48_000, 2)
    assert caps.beat_grid and caps.audio_prompts
    assert caps.step_frames > 0
    emb = backend.embed(TextPrompt(TECHNO))
    assert isinstance(emb, Embedding)
    assert emb.vector.shape == (backend.style_dim,)
    assert emb.warnings == ()


def test_capabilities_name_known_controls(backend: SynthBackend) -> None:
    caps = backend.capabilities
    assert caps.controls == HONOURED
    assert caps.controls <= set(ALL_CONTROLS)
    assert caps.unsupported(Controls(temperature=1.0)) == {"temperature"}
    assert caps.unsupported(Controls(bpm=120, scale="A minor", mute_bass=True, seed=3)) == frozenset()
    assert caps.unsupported(Controls(notes=(60,), drums=True, top_k=5, guidance=2.0)) == {
        "notes", "drums", "top_k", "guidance"}


#: A non-default value for every control (far from what the "dark techno" prompt implies).
CONTROL_VALUES: dict[str, object] = {
    "bpm": 90.0,
    "density": 0.05,
    "brightness": 1.0,
    "scale": "F# phrygian",
    "mute_bass": True,
    "mute_drums": True,
    "seed": 12345,
    "notes": (60, 64, 67),
    "drums": True,
    "temperature": 0.3,
    "top_k": 5,
    "guidance": 7.0,
}


@pytest.fixture(scope="module")
def plain_techno(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> np.ndarray:
    return render(backend, style(TECHNO), Controls(), seconds=2.0, seed=1)[0]


@pytest.mark.parametrize("name", ALL_CONTROLS)
def test_capabilities_are_exactly_the_controls_that_change_the_audio(
    name: str, backend: SynthBackend, style: Callable[[str], np.ndarray], plain_techno: np.ndarray
) -> None:
    controls = Controls(**{name: CONTROL_VALUES[name]})
    assert controls.requested() == {name}
    pcm = render(backend, style(TECHNO), controls, seconds=2.0, seed=1)[0]
    if name in backend.capabilities.controls:
        # a real change of the music (brightness and seed move least: about -12 and -14 dB)
        assert rel_diff_db(pcm, plain_techno) > -20.0, f"{name}={CONTROL_VALUES[name]!r} barely changes the audio"
    else:
        assert np.array_equal(pcm, plain_techno), f"{name} is not a capability but changes the audio"


def test_generate_returns_stereo_float32_in_range(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> None:
    pcm, _, state = render(backend, style(DNB), Controls(density=1.0, brightness=1.0), seconds=2.0)
    assert pcm.dtype == np.float32
    assert pcm.shape == (2 * SR, 2)
    assert np.all(np.isfinite(pcm))
    assert float(np.max(np.abs(pcm))) <= 1.0
    assert float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > 0.01  # not silence
    assert state.frame == 2 * SR


def test_zero_frames_is_an_empty_block(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> None:
    state = backend.new_stream(0)
    pcm, state = backend.generate(state, style(TECHNO), Controls(), 0)
    assert pcm.shape == (0, 2) and pcm.dtype == np.float32
    assert state.frame == 0 and state.beats == []
    # and the stream still starts exactly like one that never saw the empty call
    after, _, _ = generate(backend, state, style(TECHNO), Controls(), SR)
    fresh, _, _ = render(backend, style(TECHNO), Controls(), seconds=1.0)
    assert np.array_equal(after, fresh)


def test_bad_generate_arguments(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> None:
    state = backend.new_stream(0)
    with pytest.raises(UsageError, match="frames"):
        backend.generate(state, style(TECHNO), Controls(), -1)
    with pytest.raises(UsageError) as exc:
        backend.generate(state, np.zeros(STYLE_DIM - 1), Controls(), 10)
    assert exc.value.where == "style" and str(STYLE_DIM) in str(exc.value)
    bad = style(TECHNO).copy()
    bad[0] = np.nan
    with pytest.raises(UsageError, match="finite"):
        backend.generate(state, bad, Controls(), 10)
    for seed in (-1, 1.5, True):
        with pytest.raises(UsageError, match="seed"):
            backend.new_stream(seed)


# ----------------------------------------------------------------------------- block size, fork, seed


BLOCK_PATTERN = (1, 7, 480, 5000)


def test_block_size_invariance_is_bit_exact_for_tonal_voices(
    backend: SynthBackend, style: Callable[[str], np.ndarray]
) -> None:
    """A constant style (nothing to glide) rendered in blocks of 1, 7, 480, 5000 frames = one big call."""
    frames = 3 * SR
    one, one_beats, _ = render(backend, style(PIANO), Controls(), seconds=3.0, blocks=(frames,))
    many, many_beats, _ = render(backend, style(PIANO), Controls(), seconds=3.0, blocks=BLOCK_PATTERN)
    assert np.array_equal(one, many)
    assert one_beats == many_beats


@pytest.fixture(scope="module")
def techno_one_and_many(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> tuple[Rendered, Rendered]:
    one = render(backend, style(TECHNO), Controls(), seconds=3.0, blocks=(3 * SR,))
    many = render(backend, style(TECHNO), Controls(), seconds=3.0, blocks=BLOCK_PATTERN)
    return one, many


def test_block_size_keeps_grid_and_level_with_noise_voices(techno_one_and_many: tuple[Rendered, Rendered]) -> None:
    """With drums the audio is the same music (same beats, same loudness contour), if not the same samples."""
    (one, one_beats, _), (many, many_beats, _) = techno_one_and_many
    assert one_beats == many_beats
    win = SR // 10
    rms = [np.sqrt(np.mean(x[: x.shape[0] // win * win].astype(np.float64).reshape(-1, win, 2) ** 2, axis=(1, 2)))
           for x in (one, many)]
    env_db = 20.0 * np.log10(np.maximum(rms[1], 1e-6) / np.maximum(rms[0], 1e-6))
    assert float(np.max(np.abs(env_db))) < 1.5, f"100 ms RMS contours differ by up to {np.max(np.abs(env_db)):.2f} dB"
    assert abs(am.lufs(one) - am.lufs(many)) < 0.3


def test_block_size_invariance_is_bit_exact_with_drums(techno_one_and_many: tuple[Rendered, Rendered]) -> None:
    (one, _, _), (many, _, _) = techno_one_and_many
    assert np.array_equal(one, many), f"differ by {rel_diff_db(many, one):.1f} dB re signal"


def test_fork_continues_identically_and_independently(
    backend: SynthBackend, style: Callable[[str], np.ndarray]
) -> None:
    v = style(TECHNO)
    blocks = (RUNTIME_STEP,)
    reference, _, _ = render(backend, v, Controls(), seconds=3.0, seed=5, blocks=blocks)

    _, _, state = render(backend, v, Controls(), seconds=1.0, seed=5, blocks=blocks)
    fork = state.fork()
    assert fork is not state and fork.voices is not state.voices and fork.seq is not state.seq
    assert fork.frame == state.frame == SR
    # the fork runs first, even on another style: the original must not notice
    other, _, fork = generate(backend, fork, style(DNB), Controls(mute_bass=True), 2 * SR, blocks)
    forked_same, _, _ = generate(backend, state.fork(), v, Controls(), 2 * SR, blocks)
    original, _, state = generate(backend, state, v, Controls(), 2 * SR, blocks)
    assert np.array_equal(original, reference[SR:])
    assert np.array_equal(forked_same, original)
    assert rel_diff_db(other, original) > -6.0  # the fork really played something else


def test_seed_decides_the_audio(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> None:
    a = render(backend, style(TECHNO), seconds=2.0, seed=7)[0]
    again = render(backend, style(TECHNO), seconds=2.0, seed=7)[0]
    other = render(backend, style(TECHNO), seconds=2.0, seed=8)[0]
    assert np.array_equal(a, again)
    assert rel_diff_db(other, a) > -10.0, "seeds 7 and 8 give nearly the same audio"


# ----------------------------------------------------------------------------- beats


def check_grid(beats: Sequence[Beat], first_beat: int = 0) -> None:
    assert [b.beat for b in beats] == list(range(first_beat, first_beat + len(beats)))
    for b in beats:
        assert b.bar == b.beat // 4
        assert b.beat_in_bar == b.beat % 4
        assert b.downbeat == (b.beat % 4 == 0)
        assert not b.estimated
        assert b.seconds == b.frame / SR


@pytest.mark.parametrize("bpm", [124.0, 97.5, 174.0])
def test_beat_grid_is_exact_at_the_asked_bpm(
    bpm: float, backend: SynthBackend, style: Callable[[str], np.ndarray]
) -> None:
    _, beats, _ = render(backend, style(TECHNO), Controls(bpm=bpm), seconds=6.0, blocks=(RUNTIME_STEP,))
    check_grid(beats)
    assert beats[0].frame == 0
    period = 60.0 / bpm * SR
    frames = np.array([b.frame for b in beats])
    assert np.all(np.abs(np.diff(frames) - period) <= 1.0), np.diff(frames)
    # no drift: beat k sits at round(k * period)
    assert np.all(np.abs(frames - np.arange(frames.size) * period) <= 0.5 + 1e-9)
    assert len(beats) == math.ceil(6.0 * SR / period)
    assert all(b.bpm == bpm for b in beats)
    assert sum(b.downbeat for b in beats) == math.ceil(len(beats) / 4)


def test_beat_grid_follows_a_bpm_change(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> None:
    v = style(TECHNO)
    _, before, state = render(backend, v, Controls(bpm=120.0), seconds=4.0, blocks=(RUNTIME_STEP,))
    _, after, _ = generate(backend, state, v, Controls(bpm=150.0), 5 * SR, (RUNTIME_STEP,))
    check_grid(before + after)  # one continuous count through the change
    intervals = np.diff([b.frame for b in before + after])
    assert np.all(np.abs(intervals[: len(before) - 1] - 24_000) <= 1)
    change = intervals[len(before) - 1 :]
    # the tempo glides (no jump straight to the new period), monotonically, and then holds it exactly
    assert change[0] > 19_200 + 1000
    assert np.all(np.diff(change) <= 1)
    settled = [b for b in after if b.frame >= state.frame - 5 * SR + 3 * SR]  # 3 s after the change
    assert settled and all(abs(b.bpm - 150.0) < 0.01 for b in settled)
    assert np.all(np.abs(np.diff([b.frame for b in settled]) - 19_200) <= 1)


# ----------------------------------------------------------------------------- glide, mutes, scale


def test_style_switch_glides_without_click_or_restart(
    backend: SynthBackend, style: Callable[[str], np.ndarray]
) -> None:
    switch = 4 * SR
    calm, calm_beats, state = render(backend, style(AMBIENT), seconds=4.0, seed=2, blocks=(RUNTIME_STEP,))
    busy, busy_beats, _ = generate(backend, state, style(DNB), Controls(), 6 * SR, (RUNTIME_STEP,))
    pcm = np.concatenate([calm, busy])

    report = am.click_report(pcm)
    assert not report.has_clicks, str(report)
    near = am.click_report(pcm[switch - SR // 20 : switch + SR // 20])
    assert near.worst_ratio < 2.0, str(near)
    jumps = np.abs(np.diff(pcm.astype(np.float64), axis=0)).max(axis=1)
    assert jumps[switch - 1] <= jumps[switch - SR // 2 : switch - 1].max(), "the seam jumps more than the music did"

    # the music continues: one beat count, bars keep increasing, and the style really moved
    check_grid(calm_beats + busy_beats)
    assert busy_beats[0].beat == calm_beats[-1].beat + 1
    assert busy_beats[-1].bar >= calm_beats[-1].bar + 2  # the tempo changes on bar lines: 72.5 bpm's bar ends first
    assert calm_beats[-1].bpm == pytest.approx(float(style(AMBIENT)[INDEX["tempo"]]), abs=0.5)  # 71.25 bpm
    assert busy_beats[-1].bpm > 160.0  # drum and bass's 174 (a change of > 12 %: on a bar line, not glided)
    assert band_share(busy[2 * SR :], 3000.0, 20_000.0) > 3.0 * band_share(calm[2 * SR :], 3000.0, 20_000.0)


@pytest.fixture(scope="module")
def mute_renders(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, prompt, controls in (
        ("drums", TECHNO, Controls(mute_drums=True)),
        ("bass", TECHNO, Controls(mute_bass=True)),
        ("both", TECHNO, Controls(mute_drums=True, mute_bass=True)),
        ("dnb", DNB, Controls()),
        ("dnb_drums", DNB, Controls(mute_drums=True)),
    ):
        out[name] = render(backend, style(prompt), controls, seconds=4.0, seed=4)[0]
    return out


def test_mute_bass_removes_the_low_end(mute_renders: dict[str, np.ndarray]) -> None:
    # drums muted in both renders: the kick would otherwise own the low band
    with_bass = band_share(mute_renders["drums"], 20.0, 120.0)
    without = band_share(mute_renders["both"], 20.0, 120.0)
    assert with_bass > 0.3
    assert without < with_bass / 20.0, f"below 120 Hz: {with_bass:.4f} → {without:.4f} with mute_bass"


def test_mute_drums_removes_kick_and_hats(mute_renders: dict[str, np.ndarray]) -> None:
    # bass muted in both renders: what is left below 120 Hz is the kick
    with_drums = band_share(mute_renders["bass"], 20.0, 120.0)
    without = band_share(mute_renders["both"], 20.0, 120.0)
    assert without < with_drums / 20.0, f"below 120 Hz: {with_drums:.4f} → {without:.4f} with mute_drums"
    # drum and bass: the hats and snares carry the band above 5 kHz, and its transients
    hats = band_share(mute_renders["dnb"], 5000.0, 24_000.0)
    no_hats = band_share(mute_renders["dnb_drums"], 5000.0, 24_000.0)
    assert no_hats < hats / 3.0, f"above 5 kHz: {hats:.4f} → {no_hats:.4f} with mute_drums"


def test_muting_mid_stream_glides(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> None:
    v = style(TECHNO)
    first, _, state = render(backend, v, Controls(), seconds=2.0, seed=4, blocks=(RUNTIME_STEP,))
    then, _, _ = generate(backend, state, v, Controls(mute_drums=True, mute_bass=True), 2 * SR, (RUNTIME_STEP,))
    pcm = np.concatenate([first, then])
    assert not am.click_report(pcm).has_clicks, str(am.click_report(pcm))
    assert band_share(then[SR // 2 :], 20.0, 120.0) < band_share(first, 20.0, 120.0) / 20.0


@pytest.fixture(scope="module")
def piano_in(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def get(scale: str) -> np.ndarray:
        if scale not in cache:
            cache[scale] = chroma(render(backend, style(PIANO), Controls(scale=scale), seconds=4.0)[0])
        return cache[scale]

    return get


C, C_SHARP, A = 0, 1, 9


def test_scale_minor_vs_major_third(piano_in: Callable[[str], np.ndarray]) -> None:
    minor, major = piano_in("A minor"), piano_in("A major")
    # A minor's third is C natural, A major's is C sharp
    assert minor[C] > 10.0 * minor[C_SHARP], f"A minor: C {minor[C]:.3f} vs C# {minor[C_SHARP]:.3f}"
    assert major[C_SHARP] > 10.0 * major[C], f"A major: C# {major[C_SHARP]:.3f} vs C {major[C]:.3f}"


@pytest.mark.parametrize("scale", ["A minor", "A major"])
def test_scale_keeps_the_notes_in_the_scale(scale: str, piano_in: Callable[[str], np.ndarray]) -> None:
    c = piano_in(scale)
    in_scale = [(A + step) % 12 for step in SCALES[scale.split()[1]]]
    assert float(c[in_scale].sum()) > 0.9, f"{scale}: only {c[in_scale].sum():.2f} of the power in the scale"
    assert int(np.argmax(c)) in in_scale


def test_bad_scale_names_the_text_and_the_modes(backend: SynthBackend, style: Callable[[str], np.ndarray]) -> None:
    with pytest.raises(UsageError) as exc:
        backend.generate(backend.new_stream(0), style(TECHNO), Controls(scale="H minor"), 480)
    message = str(exc.value)
    assert exc.value.where == "scale"
    assert "'H minor'" in message
    for mode in SCALES:
        assert mode in message


# ----------------------------------------------------------------------------- prompts


def click_track(path: Path, bpm: float, seconds: float = 8.0, rate: int = 44_100) -> Path:
    """A mono WAV of short noise clicks on every beat (a different rate than the runtime's, on purpose)."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    k = np.arange(int(0.01 * rate))
    click = rng.uniform(-1.0, 1.0, k.size) * np.exp(-k / (0.002 * rate)) * 0.8
    x = np.zeros(int(seconds * rate))
    for t in np.arange(0.0, seconds - 0.02, 60.0 / bpm):
        i = int(round(t * rate))
        x[i : i + k.size] += click
    sf.write(str(path), x, rate)
    return path


def test_audio_prompt_embeds_into_the_style_space(backend: SynthBackend, tmp_path: Path) -> None:
    emb = backend.embed(AudioPrompt(click_track(tmp_path / "clicks.wav", 140.0)))
    assert emb.vector.shape == (backend.style_dim,)
    assert np.all(np.isfinite(emb.vector))
    assert emb.vector[INDEX["tempo"]] == pytest.approx(140.0, rel=0.02)
    assert emb.vector[INDEX["drums"]] > 0.6  # a pulse of clicks reads as percussion
    # the vector drives the synth like any other style (its tempo included)
    _, beats, _ = render(backend, emb.vector, seconds=2.0)
    assert beats[1].frame - beats[0].frame == pytest.approx(60.0 / emb.vector[INDEX["tempo"]] * SR, abs=1.0)


def test_unreadable_audio_prompt_is_a_prompt_error(backend: SynthBackend, tmp_path: Path) -> None:
    bad = tmp_path / "not-audio.wav"
    bad.write_text("hello")
    for path in (bad, tmp_path / "missing.wav"):
        with pytest.raises(PromptError, match=str(path.name)):
            backend.embed(AudioPrompt(path))


def test_unknown_words_warn_and_are_ignored(backend: SynthBackend) -> None:
    emb = backend.embed(TextPrompt("dark techno flibber"))
    assert len(emb.warnings) == 1 and "'flibber'" in emb.warnings[0]
    assert np.array_equal(emb.vector, backend.embed(TextPrompt(TECHNO)).vector)


def test_no_known_word_is_an_error_with_suggestions(backend: SynthBackend) -> None:
    with pytest.raises(PromptError) as exc:
        backend.embed(TextPrompt("xyzzy"))
    assert "'xyzzy'" in str(exc.value)
    assert "ambient" in str(exc.value) or "did you mean" in str(exc.value)
    with pytest.raises(PromptError, match="did you mean: .*techno"):
        backend.embed(TextPrompt("tehcno"))


# ----------------------------------------------------------------------------- mixing


def test_mix_normalizes_weights(style: Callable[[str], np.ndarray]) -> None:
    vs = [style(TECHNO), style(AMBIENT), style(PIANO)]
    w = [0.5, 1.5, 1.0]
    once = mix_embeddings(vs, w)
    assert np.array_equal(once, mix_embeddings(vs, [2 * x for x in w]))
    assert np.allclose(once, mix_embeddings(vs, [7.3 * x for x in w]), rtol=1e-12, atol=1e-12)
    assert np.allclose(once, (0.5 * vs[0] + 1.5 * vs[1] + 1.0 * vs[2]) / 3.0, rtol=1e-12)
    assert np.array_equal(mix_embeddings([vs[0]], [0.01]), vs[0])
    assert normalized_weights([1, 3]).tolist() == [0.25, 0.75]


def test_mix_drops_zero_weights_and_rejects_all_zero(style: Callable[[str], np.ndarray]) -> None:
    a, b, c = style(TECHNO), style(AMBIENT), style(PIANO)
    assert np.array_equal(mix_embeddings([a, b, c], [1.0, 0.0, 2.0]), mix_embeddings([a, c], [1.0, 2.0]))
    with pytest.raises(UsageError, match="zero"):
        mix_embeddings([a, b], [0.0, 0.0])
    with pytest.raises(UsageError) as exc:
        mix_embeddings([a, b], [1.0, -1.0])
    assert exc.value.where == "prompts[1]"
    with pytest.raises(UsageError):
        mix_embeddings([a, b], [1.0])
    with pytest.raises(UsageError):
        WeightedPrompt(TextPrompt(TECHNO), float("nan"))


class CountingSynth(SynthBackend):
    """The real synth, counting how often each prompt is embedded."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[Prompt, int] = {}

    def embed(self, prompt: Prompt) -> Embedding:
        self.calls[prompt] = self.calls.get(prompt, 0) + 1
        return super().embed(prompt)


def test_prompt_mixer_embeds_each_prompt_once() -> None:
    counting = CountingSynth()
    mixer = PromptMixer(counting)
    techno, ambient, odd = TextPrompt(TECHNO), TextPrompt(AMBIENT), TextPrompt("dark techno flibber")
    first = mixer.style([WeightedPrompt(techno, 1.0), WeightedPrompt(ambient, 0.5), WeightedPrompt(odd, 0.2)])
    again = mixer.style([WeightedPrompt(ambient, 1.0), WeightedPrompt(techno, 2.0), WeightedPrompt(odd, 0.4)])
    assert np.allclose(first, again, rtol=1e-12)  # same proportions, another order
    mixer.style([WeightedPrompt(TextPrompt(TECHNO), 1.0)])  # an equal prompt object hits the cache too
    assert counting.calls == {techno: 1, ambient: 1, odd: 1}
    assert len(mixer.warnings) == 1 and "flibber" in mixer.warnings[0]
    # zero weights are never embedded (a bad prompt at weight 0 costs nothing), all-zero fails before embedding
    mixer.style([WeightedPrompt(techno, 1.0), WeightedPrompt(TextPrompt("xyzzy"), 0.0)])
    with pytest.raises(UsageError):
        mixer.style([WeightedPrompt(TextPrompt("xyzzy"), 0.0)])
    assert TextPrompt("xyzzy") not in counting.calls
    # the synth mixes its own style space: the weighted average, the tempo settled on the leading prompt's
    expected = counting.mix_styles([counting.embed(techno).vector, counting.embed(ambient).vector], [2 / 3, 1 / 3])
    assert np.allclose(mixer.style([WeightedPrompt(techno, 2.0), WeightedPrompt(ambient, 1.0)]), expected)


# ----------------------------------------------------------------------------- DSP against references


def test_k_weighting_biquads_match_scipy_lfilter() -> None:
    """dsp._biquad (numba, transposed direct form II) with the BS.1770 K-weighting = scipy's lfilter, 1e-9."""
    from scipy.signal import lfilter

    x = np.random.default_rng(0).standard_normal(4000)
    y = np.empty_like(x)
    s1 = s2 = t1 = t2 = 0.0
    for i, xi in enumerate(x):
        u, s1, s2 = dsp._biquad(float(xi), s1, s2, *dsp.K1_B, *dsp.K1_A)
        y[i], t1, t2 = dsp._biquad(u, t1, t2, *dsp.K2_B, *dsp.K2_A)
    ref = lfilter(dsp.K2_B, [1.0, *dsp.K2_A], lfilter(dsp.K1_B, [1.0, *dsp.K1_A], x))
    assert np.max(np.abs(y - ref)) < 1e-9


def test_k_weighting_coefficients_match_pyloudnorm() -> None:
    """The leveller's filters are BS.1770's K-weighting: the response matches pyloudnorm's within 0.05 dB."""
    import pyloudnorm
    from scipy.signal import freqz

    freqs = np.geomspace(40.0, 20_000.0, 200)
    ours = np.ones(freqs.size, dtype=complex)
    for b, a in ((dsp.K1_B, dsp.K1_A), (dsp.K2_B, dsp.K2_A)):
        ours *= freqz(b, [1.0, *a], worN=freqs, fs=SR)[1]
    theirs = np.ones(freqs.size, dtype=complex)
    for f in pyloudnorm.Meter(SR)._filters.values():
        theirs *= freqz(f.b, f.a, worN=freqs, fs=SR)[1]
    diff_db = 20.0 * np.log10(np.abs(ours) / np.abs(theirs))
    assert np.max(np.abs(diff_db)) < 0.05, f"K-weighting differs by up to {np.max(np.abs(diff_db)):.3f} dB"


@pytest.mark.parametrize(
    "prompt, controls",
    [(AMBIENT, Controls(density=0.0, brightness=0.0)), (DNB, Controls(density=1.0, brightness=1.0))],
    ids=["quiet", "loud"],
)
def test_leveller_lands_near_the_target(
    prompt: str, controls: Controls, backend: SynthBackend, style: Callable[[str], np.ndarray]
) -> None:
    pcm, _, state = render(backend, style(prompt), controls, seconds=10.0, seed=1)
    settled = am.lufs(pcm[4 * SR :])  # the leveller starts at unity gain and needs a few seconds
    assert abs(settled - engine.TARGET_LUFS) <= 2.0, f"{prompt}: {settled:.2f} LUFS after 4 s"
    gain = state.fx[dsp.F_AGC]
    if prompt == AMBIENT:
        assert gain > 2.0, f"the quiet mix should need gain, leveller at {gain:.2f}"
    else:
        assert gain < 1.2, f"the loud mix should need none, leveller at {gain:.2f}"


def test_limiter_holds_the_ceiling_under_overload(
    backend: SynthBackend, style: Callable[[str], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every family 40 dB too hot: the look-ahead limiter (and its final clip) keep the sample peak at the ceiling."""
    monkeypatch.setattr(engine, "FAMILY_GAIN", engine.FAMILY_GAIN * 100.0)
    pcm, _, _ = render(backend, style("distorted hard techno"), Controls(density=1.0, brightness=1.0), seconds=3.0)
    ceiling = np.float32(engine.CEILING)
    assert float(np.max(np.abs(pcm))) <= ceiling
    at_ceiling = int(np.sum(np.abs(pcm) >= ceiling))
    assert at_ceiling < 1e-3 * pcm.size, f"{at_ceiling} samples hard-clipped: the limiter is not doing the work"
    assert not am.click_report(pcm).has_clicks


# ----------------------------------------------------------------------------- Controls validation


@pytest.mark.parametrize(
    "kwargs, field, valid, bad",
    [
        ({"bpm": 0}, "bpm", ("40", "240"), "0"),
        ({"bpm": float("nan")}, "bpm", ("40", "240"), "nan"),
        ({"bpm": 300.0}, "bpm", ("40", "240"), "300.0"),
        ({"bpm": True}, "bpm", ("40", "240"), "True"),
        ({"density": 1.5}, "density", ("[0, 1]",), "1.5"),
        ({"brightness": -0.1}, "brightness", ("[0, 1]",), "-0.1"),
        ({"brightness": float("inf")}, "brightness", ("[0, 1]",), "inf"),
        ({"notes": (60, 128)}, "notes[1]", ("0–127",), "128"),
        ({"top_k": 0}, "top_k", (">= 1",), "0"),
        ({"seed": -1}, "seed", (">= 0",), "-1"),
    ],
)
def test_controls_validate_on_construction(
    kwargs: dict[str, object], field: str, valid: tuple[str, ...], bad: str
) -> None:
    with pytest.raises(UsageError) as exc:
        Controls(**kwargs)
    err = exc.value
    assert isinstance(err, CadenzaError)
    assert err.where == field
    text = str(err)
    assert text.startswith(f"{field}: ")
    for part in valid:
        assert part in text, f"{text!r} does not give the valid range"
    assert text.endswith(f"got {bad}"), f"{text!r} does not quote the bad value"
