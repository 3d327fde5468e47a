"""The synth backend: the backend contract over the sequencer and the numba DSP.

``SynthBackend.generate`` glides the stream's current style towards the asked
style (so a change of mix never restarts the music), derives the block's
performance parameters, lets the sequencer place notes on the beat grid, and
renders them with :func:`dsp.render_block`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from cadenza.errors import PromptError, UsageError
from cadenza.runtime.backends.base import (
    CHANNELS,
    SAMPLE_RATE,
    AudioPrompt,
    Beat,
    Capabilities,
    Controls,
    Embedding,
    Prompt,
    TextPrompt,
)
from cadenza.runtime.backends.synth import dsp
from cadenza.runtime.backends.synth.score import Performance, Sequencer
from cadenza.runtime.backends.synth.style import INDEX, PATTERNS, PROGRESSION_FAMILIES, STYLE_DIM, clip
from cadenza.runtime.backends.synth.tempo import octave_jump
from cadenza.runtime.backends.synth.theory import Key, key_for, parse_scale

MAX_BLOCK = 4096
STYLE_GLIDE_S = 1.2  # time constant of the style glide
MUTE_GLIDE_S = 0.05
TARGET_LUFS = -16.0
CEILING = 10.0 ** (-2.0 / 20.0)

#: Output gain per instrument family at level 1 (balances the mix before the leveller).
FAMILY_GAIN = np.array([0.75, 0.5, 0.11, 0.3, 0.45, 0.16, 0.22])
_FAMILY_DIMS = [INDEX[f] for f in ("drums", "bass", "pads", "keys", "plucks", "lead", "texture")]
_PATTERN_DIMS = [INDEX["pattern_" + p] for p in PATTERNS]
_PROG_DIMS = [INDEX["prog_" + p] for p in PROGRESSION_FAMILIES]
_KEY_DIMS = [INDEX["fifths"], INDEX["minor"], INDEX["key_named"]]


@dataclass
class SynthState:
    """A synth stream: clock, sequencer, voices and effect memories. Fork with :meth:`fork`."""

    seed: int
    frame: int = 0
    seq: Sequencer = field(init=False)
    style: np.ndarray | None = None
    bpm: float | None = None
    mutes: np.ndarray = field(default_factory=lambda: np.ones(2))
    gains: np.ndarray | None = None
    beats: list[Beat] = field(default_factory=list)
    voices: np.ndarray = field(default_factory=lambda: np.zeros((dsp.N_VOICES, dsp.N_COLS)))
    ks: np.ndarray = field(default_factory=lambda: np.zeros((dsp.N_VOICES, dsp.KS_LEN)))
    fx: np.ndarray = field(default_factory=lambda: dsp.new_fx_state(TARGET_LUFS))
    rev_buf: np.ndarray = field(default_factory=lambda: np.zeros((4, dsp.REV_BUF)))
    ap_buf: np.ndarray = field(default_factory=lambda: np.zeros((2, dsp.AP_BUF)))
    dly_buf: np.ndarray = field(default_factory=lambda: np.zeros((2, dsp.DLY_BUF)))
    la_buf: np.ndarray = field(default_factory=lambda: np.zeros((2, dsp.LOOKAHEAD)))
    rng: np.ndarray = field(init=False)
    vrng: np.ndarray = field(default_factory=lambda: np.zeros(dsp.N_VOICES, dtype=np.uint64))
    seed_control: int | None = None

    def __post_init__(self) -> None:
        self.seq = Sequencer(self.seed)
        self.rng = np.array([np.uint64(0x9E3779B97F4A7C15 ^ (self.seed * 0x2545F4914F6CDD1D % 2**64)) | np.uint64(1)],
                            dtype=np.uint64)

    def fork(self) -> "SynthState":
        return copy.deepcopy(self)


class SynthBackend:
    """The embedded procedural CPU synth."""

    name = "synth"
    capabilities = Capabilities(
        controls=frozenset({"bpm", "density", "brightness", "scale", "mute_bass", "mute_drums", "seed"}),
        audio_prompts=True,
        beat_grid=True,
        step_frames=480,
    )

    def __init__(self) -> None:
        self._scratch = np.zeros((6, MAX_BLOCK))
        self._events = np.zeros((256, dsp.N_ECOLS))
        self._bp = np.zeros(dsp.N_BPARAMS)

    @property
    def style_dim(self) -> int:
        return STYLE_DIM

    # ----------------------------------------------------------------- prompts
    def embed(self, prompt: Prompt) -> Embedding:
        from cadenza.runtime.backends.synth import analysis, vocabulary

        if isinstance(prompt, TextPrompt):
            parsed = vocabulary.parse_prompt(prompt.text)
            return Embedding(parsed.vector, parsed.warnings(prompt.text))  # misspellings read, unknown words
        if isinstance(prompt, AudioPrompt):
            return Embedding(analysis.embed_audio(prompt))
        raise PromptError(f"unsupported prompt type {type(prompt).__name__}")

    def mix_styles(self, vectors: list[np.ndarray], weights: list[float]) -> np.ndarray:
        """The style of a prompt mix (:class:`~cadenza.runtime.mixing.PromptMixer` asks): the weighted average, but
        the tempo of the prompt that leads the mix (others folded by octaves, see :mod:`.tempo`), and the key of
        the leading prompt when it named one (``key_named``: exact, for every seed). A key named by a prompt that
        does not lead is only averaged in, like any unnamed key (the seed may move it)."""
        from cadenza.runtime.backends.synth.tempo import settle_tempo
        from cadenza.runtime.mixing import mix_embeddings

        out = mix_embeddings(vectors, weights)
        k = INDEX["tempo"]
        tempos = [float(v[k]) for v in vectors]
        out[k] = settle_tempo(tempos, list(weights))
        # the lead as settle_tempo picks it: the most weight; of equal weights the faster prompt
        lead = np.asarray(vectors[max(range(len(vectors)), key=lambda i: (weights[i], tempos[i]))], np.float64)
        named = INDEX["key_named"]
        if lead[named] >= 0.5:
            for d in ("fifths", "minor", "key_named"):
                out[INDEX[d]] = lead[INDEX[d]]
        else:
            out[named] = 0.0
        return out

    # ----------------------------------------------------------------- streams
    def new_stream(self, seed: int = 0) -> SynthState:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise UsageError(f"seed must be an integer >= 0, got {seed!r}", where="seed")
        return SynthState(seed=seed)

    def generate(
        self, state: SynthState, style: np.ndarray, controls: Controls, frames: int
    ) -> tuple[np.ndarray, SynthState]:
        if frames < 0:
            raise UsageError(f"frames must be >= 0, got {frames}", where="frames")
        target = np.asarray(style, dtype=np.float64)
        if target.shape != (STYLE_DIM,) or not np.all(np.isfinite(target)):
            raise UsageError(f"style vector must be {STYLE_DIM} finite numbers, got shape {target.shape}",
                             where="style")
        target = clip(target)
        if controls.seed is not None and controls.seed != state.seed_control:
            state.seed_control = controls.seed
            state.seq.rng = np.random.default_rng(controls.seed)
        key = parse_scale(controls.scale) if controls.scale else None
        out = np.empty((frames, CHANNELS), dtype=np.float32)
        beats: list[Beat] = []
        done = 0
        while done < frames:
            n = min(MAX_BLOCK, frames - done)
            self._block(state, target, controls, key, out[done : done + n])
            beats.extend(state.beats)
            done += n
        state.beats = beats
        return out, state

    @staticmethod
    def _key(st: SynthState, s: np.ndarray) -> Key:
        """The key the style asks for; the seed picks among the keys that fit, unless the prompt named the key
        (``key_named``; see theory.key_for)."""
        seed = st.seed_control if st.seed_control is not None else st.seed
        return key_for(float(s[INDEX["fifths"]]), float(s[INDEX["minor"]]), float(s[INDEX["brightness"]]), seed,
                       named=float(s[INDEX["key_named"]]))

    def _block(self, st: SynthState, target: np.ndarray, controls: Controls, key: Key | None,
               out: np.ndarray) -> None:
        n = out.shape[0]
        dt = n / SAMPLE_RATE
        if st.style is None:
            st.style = target.copy()
        else:
            a = 1.0 - math.exp(-dt / STYLE_GLIDE_S)
            k = INDEX["tempo"]
            if octave_jump(float(st.style[k]), float(target[k])):
                st.style[k] = target[k]  # half/double time (the mix's lead changed): on the next bar line, no glide
            was_named = st.style[INDEX["key_named"]] >= 0.5
            st.style += (target - st.style) * a
            if was_named or target[INDEX["key_named"]] >= 0.5:
                st.style[_KEY_DIMS] = target[_KEY_DIMS]  # to or from a named key: no glide through other keys
        s = st.style
        bpm_target = controls.bpm if controls.bpm is not None else float(s[INDEX["tempo"]])
        st.bpm = bpm_target  # the sequencer applies it at the next bar line
        mute_target = np.array([0.0 if controls.mute_drums else 1.0, 0.0 if controls.mute_bass else 1.0])
        st.mutes += (mute_target - st.mutes) * (1.0 - math.exp(-dt / MUTE_GLIDE_S))

        energy = controls.density if controls.density is not None else float(s[INDEX["energy"]])
        bright = controls.brightness if controls.brightness is not None else float(s[INDEX["brightness"]])
        levels = s[_FAMILY_DIMS].copy()
        levels[0] *= st.mutes[0]
        levels[1] *= st.mutes[1]
        # sequencing follows the target mix too, so a family fading in starts playing at once
        plan_levels = np.maximum(levels, target[_FAMILY_DIMS])
        if controls.mute_drums:
            plan_levels[0] = 0.0
        if controls.mute_bass:
            plan_levels[1] = 0.0
        pattern = PATTERNS[int(np.argmax(s[_PATTERN_DIMS]))]
        perf = Performance(
            bpm=float(st.bpm),
            energy=float(energy),
            brightness=float(bright),
            swing=float(s[INDEX["swing"]]),
            space=float(s[INDEX["space"]]),
            levels=tuple(float(x) for x in plan_levels),
            pattern=pattern,
            grit=float(s[INDEX["grit"]]),
            chip=float(s[INDEX["chip"]]),
            acoustic=float(s[INDEX["acoustic"]]),
            harmony=float(s[INDEX["harmony"]]),
            key=key if key is not None else self._key(st, s),
            family=PROGRESSION_FAMILIES[int(np.argmax(s[_PROG_DIMS]))],
            offbeat=float(s[INDEX["offbeat"]]),
            laidback=float(s[INDEX["laidback"]]),
            drop=float(s[INDEX["drop"]]),
            sections=float(s[INDEX["sections"]]),
            key_forced=key is not None,
            intensity=controls.density,
        )
        events, st.beats = st.seq.advance(st.frame, n, perf)
        n_ev = len(events)
        if n_ev > self._events.shape[0]:
            self._events = np.zeros((2 * n_ev, dsp.N_ECOLS))
        if n_ev:
            self._events[:n_ev] = np.asarray(events, dtype=np.float64)

        gains = FAMILY_GAIN * levels * (0.75 + 0.25 * energy)
        bp = self._bp
        bp[dsp.B_GAIN0 : dsp.B_GAIN0 + 7] = st.gains if st.gains is not None else gains
        bp[dsp.B_GAIN1 : dsp.B_GAIN1 + 7] = gains
        st.gains = gains
        space = perf.space
        bp[dsp.B_BRIGHT] = bright
        bp[dsp.B_WET] = 0.15 + 0.85 * space
        bp[dsp.B_RT60] = 0.8 + 4.5 * space
        # echoes on the beat (quarter notes) when drums carry the groove, dotted eighths when they don't
        bp[dsp.B_DLY_TIME] = (4.0 if perf.levels[0] > 0.3 else 3.0) * perf.samples_per_step
        bp[dsp.B_DLY_FB] = 0.25 + 0.3 * space
        bp[dsp.B_DLY_MIX] = 0.1 + 0.5 * space
        bp[dsp.B_GRIT] = perf.grit
        bp[dsp.B_TARGET_LUFS] = TARGET_LUFS
        bp[dsp.B_CEILING] = CEILING
        bp[dsp.B_PAD_CUT] = 300.0 * 2.0 ** (5.0 * bright)
        bp[dsp.B_LEAD_CUT] = 600.0 * 2.0 ** (4.0 * bright)
        bp[dsp.B_BASS_CUT] = 120.0 * 2.0 ** (2.5 * bright)
        bp[dsp.B_HAT_CUT] = 6000.0 + 4000.0 * bright
        bp[dsp.B_DAMP] = 0.15 + 0.6 * bright
        tone_hz = 1200.0 * 2.0 ** (5.0 * bright)
        bp[dsp.B_TONE] = 1.0 if tone_hz >= 20_000.0 else 1.0 - math.exp(-2.0 * math.pi * tone_hz / SAMPLE_RATE)
        bp[dsp.B_PAD_REV] = 0.5
        bp[dsp.B_PAD_DLY] = 0.05

        dsp.render_block(out, st.voices, st.ks, self._events, n_ev, bp, st.fx, st.rev_buf, st.ap_buf,
                         st.dly_buf, st.la_buf, self._scratch, st.rng, st.vrng, dsp.SINE_TABLE)
        st.frame += n
