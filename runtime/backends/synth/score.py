"""The synth's sequencer: turns performance parameters into timed note events.

It keeps the musical clock (16th-note steps, beats, bars), chooses chord
progressions in the current key, voice-leads chords, and plans each bar's drum
pattern, bassline, pads, keys comping, arpeggio and lead melody. Its state is
plain Python data (and a numpy Generator), deep-copied when a stream forks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from cadenza.runtime.backends.base import SAMPLE_RATE, Beat
from cadenza.runtime.backends.synth import dsp
from cadenza.runtime.backends.synth.theory import (
    PROGRESSIONS,
    Key,
    lead_voices,
    midi_to_hz,
    nearest_in,
    progression_family,
)

STEPS_PER_BEAT = 4
STEPS_PER_BAR = 16
BARS_PER_PHRASE = 4
FAMILY_ON = 0.08  # a family below this level plays no notes (it would be inaudible)


@dataclass(frozen=True)
class Performance:
    """Everything the sequencer and the DSP need for one block, derived from style + controls."""

    bpm: float
    energy: float
    brightness: float
    swing: float
    space: float
    levels: tuple[float, ...]  # drums, bass, pads, keys, plucks, lead, texture (after mutes)
    pattern: str
    grit: float
    chip: float
    acoustic: float
    harmony: float
    key: Key

    @property
    def samples_per_step(self) -> float:
        return SAMPLE_RATE * 60.0 / self.bpm / STEPS_PER_BEAT


class Timbre(TypedDict, total=False):
    """Per-kind synthesis parameters shared by a group of notes (see dsp._note_on)."""

    p1: float
    p2: float
    p3: float
    rev: float
    dly: float


AddNote = Callable[["Note"], None]


@dataclass
class Note:
    """A planned note: step inside the bar, plus the event fields for the DSP."""

    step: int
    kind: int
    pitch: float  # MIDI pitch (fractional allowed) or Hz for drums (see ``hz``)
    vel: float
    steps: float  # duration in steps
    pan: float = 0.0
    p1: float = 0.0
    p2: float = 0.0
    p3: float = 0.0
    rev: float = 0.0
    dly: float = 0.0
    hz: bool = False
    delay: float = 0.0  # extra delay in steps (swing, flams)


@dataclass
class Sequencer:
    seed: int
    rng: np.random.Generator = field(init=False)
    step: int = 0  # index of the next step to play
    next_step_frame: float = 0.0  # absolute frame of that step
    sps: float = 0.0  # samples per step, latched at each bar line
    bpm: float = 0.0  # the tempo latched with it
    pending: list[tuple[float, int, tuple[float, ...]]] = field(default_factory=list)
    order: int = 0
    bar_notes: dict[int, list[Note]] = field(default_factory=dict)
    progression: tuple[int, ...] = (0, 4, 5, 3)
    chord_pcs: tuple[int, ...] = (0, 4, 7)
    pad_voicing: tuple[int, ...] | None = None
    key_voicing: tuple[int, ...] | None = None
    motif: list[tuple[int, int, float]] = field(default_factory=list)  # (step in 2 bars, degree, steps)
    arp_shape: int = 0
    pattern: str = "four_floor"
    texture_started: bool = False

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    # ---------------------------------------------------------------- clock
    def advance(self, frame0: int, frames: int, perf: Performance) -> tuple[list[tuple[float, ...]], list[Beat]]:
        """Events (offsets relative to ``frame0``) and beats inside ``[frame0, frame0 + frames)``."""
        end = frame0 + frames
        beats: list[Beat] = []
        if not self.texture_started:
            self.texture_started = True
            self._push(float(frame0), (dsp.TEXTURE, 1.0, 0.8, 1e12, 0.0, perf.grit * 0.004, 0, 0, 0.25, 0.0))
        while self.next_step_frame < end:
            t = self.next_step_frame
            if self.step % STEPS_PER_BAR == 0 or self.sps <= 0.0:
                # the tempo changes only on a bar line: inside a bar the grid is exactly
                # predictable, so "start at the next bar" lands on the bar the listener hears
                self.sps = perf.samples_per_step
                self.bpm = perf.bpm
                self._plan_bar(perf)
            sps = self.sps
            if self.step % STEPS_PER_BEAT == 0:
                beats.append(
                    Beat(
                        frame=int(round(t)),
                        beat=self.step // STEPS_PER_BEAT,
                        bar=self.step // STEPS_PER_BAR,
                        beat_in_bar=(self.step // STEPS_PER_BEAT) % 4,
                        bpm=self.bpm,
                        position=t,
                    )
                )
            for note in self.bar_notes.get(self.step % STEPS_PER_BAR, ()):
                self._emit(note, t, sps, perf)
            self.step += 1
            self.next_step_frame = t + sps
        due = [p for p in self.pending if p[0] < end]
        self.pending = [p for p in self.pending if p[0] >= end]
        due.sort(key=lambda p: (p[0], p[1]))
        events = [(max(0.0, float(int(p[0]) - frame0)),) + p[2] for p in due]
        return events, beats

    def _push(self, frame: float, fields: tuple[float, ...]) -> None:
        self.pending.append((frame, self.order, fields))
        self.order += 1

    def _emit(self, note: Note, t: float, sps: float, perf: Performance) -> None:
        freq = note.pitch if note.hz else midi_to_hz(note.pitch)
        delay = note.delay
        if note.step % 2 == 1:
            delay += perf.swing * 0.33
        elif note.step % 4 == 2:
            delay += perf.swing * 0.5
        frame = t + delay * sps
        self._push(
            frame,
            (note.kind, freq, note.vel, max(note.steps * sps, 64.0), note.pan,
             note.p1, note.p2, note.p3, note.rev, note.dly),
        )

    # ------------------------------------------------------------ planning
    def _plan_bar(self, perf: Performance) -> None:
        bar = self.step // STEPS_PER_BAR
        pos = bar % BARS_PER_PHRASE
        rng = self.rng
        key = perf.key
        if pos == 0:
            options = PROGRESSIONS[progression_family(key)]
            self.progression = options[int(rng.integers(len(options)))]
            self.arp_shape = int(rng.integers(4))
            self._new_motif(perf)
            levels = perf.levels
            # pattern family changes only at phrase starts
            self.pattern = perf.pattern
            del levels
        degree = self.progression[pos]
        ext = 0 if perf.harmony < 0.4 else (1 if perf.harmony < 0.75 else 2)
        pcs = key.chord(degree, ext)
        chord_changed = pcs != self.chord_pcs or pos == 0
        self.chord_pcs = pcs
        # how many bars this chord lasts within the phrase
        hold = 1
        while pos + hold < BARS_PER_PHRASE and self.progression[pos + hold] == degree:
            hold += 1
        notes: dict[int, list[Note]] = {}

        def add(n: Note) -> None:
            notes.setdefault(n.step, []).append(n)

        lv = perf.levels
        e = perf.energy
        if lv[0] > FAMILY_ON:
            self._plan_drums(add, perf, bar)
        if lv[1] > FAMILY_ON:
            self._plan_bass(add, perf, pcs)
        if lv[2] > FAMILY_ON and (chord_changed or self.pad_voicing is None):
            voicing = lead_voices(self.pad_voicing, pcs[:4], 50, 77)
            self.pad_voicing = voicing
            attack = 0.25 + 0.5 * perf.acoustic + 0.5 * (1.0 - e)
            for j, p in enumerate(voicing):
                add(Note(0, dsp.PAD, p, 0.8, hold * STEPS_PER_BAR - 0.5, pan=-0.6 + 1.2 * j / max(len(voicing) - 1, 1),
                         p1=attack, p2=perf.chip, p3=0.9, rev=0.5, dly=0.05))
        if lv[3] > FAMILY_ON:
            self._plan_keys(add, perf, pcs, lead_melody=lv[5] < 0.1 and lv[3] > 0.5)
        if lv[4] > FAMILY_ON:
            self._plan_arp(add, perf, pcs)
        if lv[5] > FAMILY_ON:
            self._plan_melody(add, perf, pcs, bar, dsp.LEAD)
        self.bar_notes = notes

    def _plan_drums(self, add: AddNote, perf: Performance, bar: int) -> None:
        e = perf.energy
        rng = self.rng
        b = perf.brightness
        pat = self.pattern
        fill = bar % BARS_PER_PHRASE == BARS_PER_PHRASE - 1
        kick_hz = 48.0 if pat != "halftime" else 42.0
        kick_decay = 0.45 if pat != "halftime" else 0.9

        def kick(step: int, vel: float = 1.0) -> None:
            add(Note(step, dsp.KICK, kick_hz, vel, 4, p2=3.5, p3=kick_decay, rev=0.04, hz=True))

        def snare(step: int, vel: float = 1.0) -> None:
            add(Note(step, dsp.SNARE, 185.0, vel, 4, pan=0.05, p1=185.0, p2=1800.0 + 2500.0 * b,
                     p3=0.22, rev=0.22, hz=True))

        def clap(step: int, vel: float = 1.0) -> None:
            add(Note(step, dsp.CLAP, 1.0, vel, 4, pan=-0.05, p2=1300.0, p3=0.3, rev=0.3, hz=True))

        def hat(step: int, vel: float, open_: bool = False) -> None:
            add(Note(step, dsp.HAT, 1.0, vel * (0.3 + 0.8 * b), 2 if not open_ else 4, pan=0.25,
                     p2=6500.0 + 4000.0 * b, p3=0.05 if not open_ else 0.3, rev=0.08, hz=True))

        def hats(vel: float = 0.6) -> None:
            if e < 0.15:
                for s in (0, 8):
                    hat(s, vel * 0.8)
            elif e < 0.45:
                for s in range(0, 16, 4):
                    hat(s + 2, vel)
            elif e < 0.7:
                for s in range(0, 16, 2):
                    hat(s, vel if s % 4 == 2 else vel * 0.6)
            else:
                for s in range(16):
                    hat(s, vel * (1.0 if s % 4 == 2 else 0.55 if s % 2 == 0 else 0.4))

        def ghosts(candidates: tuple[int, ...], prob: float) -> None:
            for s in candidates:
                if rng.random() < prob:
                    snare(s, 0.2)

        if pat == "four_floor":
            for s in (0, 4, 8, 12):
                kick(s)
            if e >= 0.25:
                clap(4, 0.7)
                clap(12, 0.7)
            if e >= 0.8 and rng.random() < 0.5:
                kick(14, 0.7)
            if e < 0.45:
                hats()
            else:
                for s in range(0, 16, 4):
                    hat(s + 2, 0.7, open_=e > 0.55)
                if e >= 0.65:
                    for s in range(1, 16, 2):
                        hat(s, 0.25)
        elif pat == "breakbeat":
            kick(0)
            kick(10)
            if e > 0.5 and bar % 2 == 1:
                kick(2, 0.7)
            snare(4)
            snare(12)
            ghosts((7, 9, 15), 0.3 * e)
            for s in range(0, 16, 2):  # a ride on the eighths keeps the pulse readable at 170+
                hat(s, 0.5 if s % 4 == 0 else 0.35, open_=s % 8 == 4)
        elif pat == "halftime":
            kick(0)
            if e > 0.35:
                kick(11, 0.85)
            if e > 0.7:
                kick(3, 0.7)
            snare(8)
            clap(8, 0.6)
            hats(0.55)
            if e > 0.75 and fill:
                for s in (12, 13, 14, 15):
                    hat(s, 0.5)
        elif pat == "boombap":
            kick(0)
            kick(7, 0.8)
            kick(10, 0.9)
            snare(4)
            snare(12)
            ghosts((3, 11, 15), 0.3 * e)
            hats(0.5)
        else:  # rock
            kick(0)
            kick(8)
            if e > 0.45:
                kick(6, 0.8)
            if e > 0.7:
                kick(10, 0.85)
            snare(4)
            snare(12)
            hats(0.55)
        if fill and e > 0.5:
            for s in (13, 14, 15):
                snare(s, 0.45 + 0.15 * (s - 13))

    def _plan_bass(self, add: AddNote, perf: Performance, pcs: tuple[int, ...]) -> None:
        e = perf.energy
        root = nearest_in(37.0, (pcs[0],))
        fifth = root + 7
        pat = self.pattern
        common: Timbre = {"p1": perf.chip, "p2": 1.5 + 4.0 * e, "p3": 0.35, "rev": 0.05}
        if pat == "four_floor" and e >= 0.35:
            for s in (2, 6, 10, 14):
                add(Note(s, dsp.BASS, root, 0.9, 1.6, **common))
            if e > 0.75:
                add(Note(15, dsp.BASS, root + 12, 0.6, 0.8, **common))
        elif pat == "breakbeat":
            add(Note(0, dsp.BASS, root, 1.0, 7.5, **common))
            add(Note(8, dsp.BASS, root if e < 0.6 else fifth, 0.9, 7.5, **common))
        elif pat == "halftime":
            add(Note(0, dsp.BASS, root, 1.0, 10.5, **common))
            if e > 0.35:
                add(Note(11, dsp.BASS, root, 0.85, 4.5, **common))
        else:
            if e < 0.3:
                add(Note(0, dsp.BASS, root, 0.9, 15.5, **common))
            elif e < 0.6:
                add(Note(0, dsp.BASS, root, 0.95, 5.5, **common))
                add(Note(8, dsp.BASS, root, 0.85, 3.5, **common))
                add(Note(12, dsp.BASS, fifth, 0.8, 3.5, **common))
            else:
                for s, p in ((0, root), (3, root), (6, fifth), (8, root), (10, root + 12), (12, fifth), (14, root)):
                    add(Note(s, dsp.BASS, p, 0.9, 1.8, **common))

    def _plan_keys(self, add: AddNote, perf: Performance, pcs: tuple[int, ...], lead_melody: bool) -> None:
        e = perf.energy
        voicing = lead_voices(self.key_voicing, pcs[:4], 55, 76)
        self.key_voicing = voicing
        left = nearest_in(43.0, (pcs[0],))
        ratio = 1.0 if perf.acoustic > 0.5 else 2.0
        common: Timbre = {"p1": ratio, "p2": 0.8 + 2.2 * perf.brightness, "p3": 2.2, "rev": 0.35, "dly": 0.1}
        if e < 0.3:
            add(Note(0, dsp.KEYS, left, 0.75, 15, pan=-0.2, **common))
            for j, p in enumerate(voicing):
                add(Note(0, dsp.KEYS, p, 0.55, 15, pan=0.1 * j, delay=0.08 * j, **common))
            add(Note(8, dsp.KEYS, left + 12, 0.5, 7, pan=-0.1, **common))
        elif e < 0.6:
            seq = (left, voicing[0], voicing[-1], voicing[1 % len(voicing)])
            for s in range(0, 16, 2):
                add(Note(s, dsp.KEYS, seq[(s // 2) % 4], 0.6 if s % 4 else 0.75, 3, pan=-0.2 + 0.1 * (s % 4), **common))
        else:
            add(Note(0, dsp.KEYS, left, 0.8, 6, pan=-0.2, **common))
            stab: Timbre = {**common, "p3": 0.7}
            for s in (2, 6, 10, 14):  # off-beat stabs
                for j, p in enumerate(voicing[:3]):
                    add(Note(s, dsp.KEYS, p, 0.5, 1.5, pan=0.1 * j, **stab))
        if lead_melody:
            self._plan_melody(add, perf, pcs, self.step // STEPS_PER_BAR, dsp.KEYS)

    def _plan_arp(self, add: AddNote, perf: Performance, pcs: tuple[int, ...]) -> None:
        e = perf.energy
        base = nearest_in(60.0, (pcs[0],))
        tones = sorted({nearest_in(base + ((pc - base) % 12), (pc,)) for pc in pcs})[:4]
        if len(tones) < 4:
            tones.append(tones[0] + 12)  # patterns of 4 and 8 notes keep the arp on the beat
        tones = tones + [t + 12 for t in tones]
        shape = self.arp_shape
        if shape == 1:
            tones = tones[::-1]
        elif shape == 2:
            tones = tones[:4] + tones[4:0:-1][:4]
        step_len = 2 if e < 0.5 else 1
        damp = 0.992 + 0.007 * perf.brightness
        for k, s in enumerate(range(0, 16, step_len)):
            if shape == 3:
                p = tones[int(self.rng.integers(len(tones)))]
            else:
                p = tones[k % len(tones)]
            vel = 0.8 if s % 4 == 0 else 0.6
            add(Note(s, dsp.PLUCK, p, vel, step_len * 0.9, pan=0.35 * (1 if k % 2 else -1),
                     p1=damp, p2=0.25 + 0.7 * perf.brightness, p3=0.9, rev=0.3, dly=0.35))

    def _new_motif(self, perf: Performance) -> None:
        rng = self.rng
        n_notes = int(3 + perf.energy * 9)
        strong = [s for s in range(32) if s % 4 == 0]
        weak = [s for s in range(32) if s % 4 != 0]
        k_strong = min(len(strong), max(2, n_notes // 2 + 1))
        chosen = set(rng.choice(strong, size=k_strong, replace=False).tolist())
        k_weak = min(len(weak), max(0, n_notes - k_strong))
        if k_weak:
            chosen |= set(rng.choice(weak, size=k_weak, replace=False).tolist())
        steps = sorted(int(s) for s in chosen)
        degree = int(rng.integers(0, 5))
        motif: list[tuple[int, int, float]] = []
        for i, s in enumerate(steps):
            nxt = steps[i + 1] if i + 1 < len(steps) else 32
            dur = float(min(nxt - s, 6)) - 0.3
            motif.append((s, degree, dur))
            degree += int(rng.choice([-2, -1, -1, 1, 1, 2, 0]))
            degree = max(-2, min(9, degree))
        self.motif = motif

    def _plan_melody(self, add: AddNote, perf: Performance, pcs: tuple[int, ...], bar: int, kind: int) -> None:
        pos = bar % BARS_PER_PHRASE
        half = pos % 2  # which bar of the two-bar motif
        if pos == 3 and perf.energy < 0.6:
            return  # breathe at the end of a phrase
        key = perf.key
        shift = 2 if pos >= 2 else 0
        for s, degree, dur in self.motif:
            if s // 16 != half:
                continue
            step = s % 16
            pitch = key.degree_pitch(degree + shift, 60 if kind == dsp.LEAD else 67)
            if step % 4 == 0:
                pitch = nearest_in(pitch, pcs)
            if kind == dsp.LEAD:
                add(Note(step, dsp.LEAD, pitch, 0.8, dur, pan=0.1, p1=perf.chip, p2=0.01 + 0.06 * perf.acoustic,
                         p3=0.005, rev=0.3, dly=0.3))
            else:
                add(Note(step, dsp.KEYS, pitch, 0.75, dur, pan=0.15, p1=1.0 if perf.acoustic > 0.5 else 2.0,
                         p2=0.8 + 2.2 * perf.brightness, p3=2.0, rev=0.35, dly=0.1))
