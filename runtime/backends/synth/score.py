"""The synth's sequencer: turns performance parameters into timed note events.

It keeps the musical clock (16th-note steps, beats, bars), follows a form (a
per-stream section plan — intro, A, B, build, drop, breakdown — on 4-bar phrase
boundaries, looping back to a loop-ready section), chooses a genre family's
progressions in the key the prompt asks for, voice-leads chords, and plans each
bar's drum groove, bassline, legato pads, keys comping, arpeggio or stabs, and a
motif that returns and develops. Its state is plain Python data (and a numpy
Generator), deep-copied when a stream forks.

The form's hook: with the ``density`` control set (a graph's intensity), each
phrase's section follows it instead of the plan (high = drop / B, low =
breakdown), always on the next phrase boundary, so the beat grid never moves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypedDict

import numpy as np

from cadenza.runtime.backends.base import SAMPLE_RATE, Beat
from cadenza.runtime.backends.synth import dsp
from cadenza.runtime.backends.synth.theory import (
    FAMILY_PROGRESSIONS,
    Key,
    kick_pitch,
    lead_voices,
    midi_to_hz,
    nearest_in,
)

#: How far behind the beat (in 16th steps at ``laidback`` = 1) the keys and bass play. The drums stay on
#: the grid: a dragged snare makes beat trackers (ours in ``backends.beats`` too) lock off the beat.
_LAID_BACK = {dsp.BASS: 0.05, dsp.KEYS: 0.12}
STEPS_PER_BEAT = 4
STEPS_PER_BAR = 16
BARS_PER_PHRASE = 4
FAMILY_ON = 0.08  # a family below this level plays no notes (it would be inaudible)
PAD_ATTACK_S = 0.15  # legato pads: a new chord's attack at a chord change …
PAD_HOLD_S = 0.6  # … and how long the old chord holds past the change (then releases)
PAD_RELEASE_S = 1.2  # legato pads: 60 dB release of the outgoing chord


@dataclass(frozen=True)
class Section:
    """What a section does: per-family presence (drums, bass, pads, keys, plucks, lead, texture; 0 = out,
    scaled by the style's ``sections`` contrast), an energy offset, which progression it plays (A or B),
    how the motif appears, and its loudness: the leveller's target in dB from the programme's (-16 LUFS),
    scaled by the contrast; a ramp section rises from ``level`` to ``level_end``. The sequencer sends it as
    a LEVEL event on the bar line, so the target changes on the same sample whatever the block size.
    (Levels from -1.7 to +1.7 dB: any 30 s of one section still measures -16 ± 2 LUFS.)"""

    mask: tuple[float, ...]
    energy: float
    prog: str
    motif: str  # "", "theme", "develop", "fragment"
    thin_drums: bool = False  # kick, hats and the backbeat: no claps, ghosts or fills
    ramp: bool = False  # energy rises through the section, snare roll into the next
    level: float = 0.0
    level_end: float | None = None  # ramp sections: the level of the last bar
    club_energy: float | None = None  # the energy offset in club form, if not ``energy``


SECTIONS: dict[str, Section] = {
    # intro: thin drums (no claps, ghosts or fills); in club form at low energy (the kick and sparse hats) over
    # a held bass root instead of the bass line
    "intro": Section((0.6, 0.6, 1.0, 0.0, 1.0, 0.0, 1.0), -0.2, "A", "", thin_drums=True, level=-1.6,
                     club_energy=-0.5),
    # build: the energy (hats, then bass, then claps) and the level rise bar by bar, a snare roll into the drop
    "build": Section((1.0, 0.8, 1.0, 1.0, 1.0, 0.0, 1.0), -0.45, "A", "fragment", ramp=True, level=-1.4,
                     level_end=0.7),
    "drop": Section((1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), 0.12, "A", "theme", level=1.7),
    "breakdown": Section((0.0, 0.0, 1.0, 1.0, 0.7, 1.0, 1.0), -0.3, "B", "develop", level=-1.7),
    "A": Section((1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0), 0.0, "A", "theme", level=0.0),
    "B": Section((1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), 0.12, "B", "develop", level=1.3),
    "bridge": Section((0.0, 0.0, 1.0, 0.0, 1.0, 0.5, 1.0), -0.25, "B", "fragment", level=-1.6),
}

#: Section plans in 4-bar phrases (64 bars each); after the last section the plan loops back to ``LOOP_FROM``.
SECTION_PLANS: dict[str, tuple[tuple[str, int], ...]] = {
    "club": (("intro", 2), ("build", 2), ("drop", 4), ("breakdown", 2), ("build", 2), ("drop", 4)),
    "song": (("intro", 2), ("A", 4), ("B", 2), ("A", 2), ("bridge", 2), ("B", 2), ("A", 2)),
}
LOOP_FROM = {"club": 3, "song": 1}


def section_for_intensity(plan: str, value: float) -> str:
    """The section an intensity in [0, 1] asks for (the energy/section hook)."""
    if plan == "club":
        return "drop" if value >= 0.75 else "build" if value >= 0.5 else "intro" if value >= 0.3 else "breakdown"
    return "B" if value >= 0.7 else "A" if value >= 0.4 else "intro" if value >= 0.2 else "bridge"


def plan_position(plan: str, phrase: int) -> tuple[str, int, int]:
    """(section, phrase inside it, its length in phrases) of the ``phrase``-th phrase of a stream."""
    sections = SECTION_PLANS[plan]
    total = sum(n for _, n in sections)
    if phrase >= total:
        head = sum(n for _, n in sections[: LOOP_FROM[plan]])
        phrase = head + (phrase - total) % (total - head)
    for name, n in sections:
        if phrase < n:
            return name, phrase, n
        phrase -= n
    raise AssertionError("unreachable")


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
    family: str = "pop"  # progression family (style.PROGRESSION_FAMILIES)
    offbeat: float = 0.0
    laidback: float = 0.0
    drop: float = 0.3
    sections: float = 0.6
    key_forced: bool = False  # the ``scale`` control: applies at the next bar, not the next section
    intensity: float | None = None  # the ``density`` control drives the section choice when set

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
    key: Key | None = None  # latched at section starts (or at once for the scale control)
    family: str = ""
    progs: tuple[tuple[int, ...], tuple[int, ...]] = ((0, 4, 5, 3), (3, 4, 0, 0))
    plan: str = "song"
    phrase: int = 0  # phrases since the stream started
    section: str = "intro"
    section_phrase: int = 0  # phrase inside the section
    section_len: int = 1
    repeats: dict[str, int] = field(default_factory=dict)  # how often each section has started
    stab_steps: tuple[int, ...] = (3, 10)
    var: int = 0  # how often the current section's phrase has been stated (drives variation)
    pad_end: float = 0.0  # absolute step where the sounding pad chord's gate closes
    vel_mask: tuple[float, ...] = (1.0,) * 7  # per-family velocity of the current section

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
        if note.kind in _LAID_BACK:  # behind the beat: the notes move, the grid does not
            delay += perf.laidback * _LAID_BACK[note.kind]
        frame = t + delay * sps
        vel = note.vel if note.vel < 0.0 else note.vel * self.vel_mask[int(dsp.FAMILY_OF_KIND[note.kind])]
        self._push(
            frame,
            (note.kind, freq, vel, max(note.steps * sps, 64.0), note.pan,
             note.p1, note.p2, note.p3, note.rev, note.dly),
        )

    # ------------------------------------------------------------ planning
    def _start_phrase(self, perf: Performance, bar: int) -> None:
        """Phrase boundary: advance the form, latch key and family at section starts, pick the phrase."""
        rng = self.rng
        self.plan = "club" if perf.drop >= 0.5 else "song"
        if perf.intensity is not None:
            name = section_for_intensity(self.plan, perf.intensity)
            if name == self.section:
                self.section_phrase += 1
            else:
                self.section, self.section_phrase, self.section_len = name, 0, 2
        else:
            self.section, self.section_phrase, self.section_len = plan_position(self.plan, self.phrase)
        new_section = self.section_phrase == 0
        if new_section:
            self.repeats[self.section] = self.repeats.get(self.section, 0) + 1
        quality = "minor" if perf.key.is_minor else "major"
        if self.key is None or (new_section and (perf.key != self.key or perf.family != self.family)):
            changed_family = perf.family != self.family or self.key is None or self.key.is_minor != perf.key.is_minor
            self.key = perf.key
            if changed_family:
                self.family = perf.family
                options = FAMILY_PROGRESSIONS[(perf.family, quality)]
                self.progs = options[int(rng.integers(len(options)))]
                self._new_motif(perf)
                self.arp_shape = int(rng.integers(4))
                self.stab_steps = ((3, 10), (0, 6, 11), (2, 7, 14), (6, 14))[int(rng.integers(4))]
        sec = SECTIONS[self.section]
        prog = self.progs[0] if sec.prog == "A" else self.progs[1]
        self.var = self.repeats.get(self.section, 1) - 1 + self.section_phrase
        if self.section_phrase % 2 == 1:  # the answering phrase ends on a turnaround
            turn = {"pop": 4, "jazz": 4 if prog[3] != 4 else 1, "modal": 6, "epic": 4}[self.family]
            prog = prog[:3] + (turn,)
        if self.var % 4 == 2:  # every third statement: a substitute chord in bar 3
            sub = {"pop": 5, "jazz": 2, "modal": 3, "epic": 5}[self.family]
            prog = prog[:2] + ((sub if prog[2] != sub else 3),) + prog[3:]
        self.progression = prog
        self.pattern = perf.pattern  # the groove family changes only at phrase starts
        self.phrase += 1
        del bar

    def _plan_bar(self, perf: Performance) -> None:
        bar = self.step // STEPS_PER_BAR
        pos = bar % BARS_PER_PHRASE
        if pos == 0 or self.key is None:
            self._start_phrase(perf, bar)
        if perf.key_forced and perf.key != self.key:
            self.key = perf.key
        key = self.key
        assert key is not None
        sec = SECTIONS[self.section]
        contrast = min(1.0, 0.3 + perf.sections)
        mask = tuple(0.0 if (m == 0.0 and contrast >= 0.5) else 1.0 - contrast * (1.0 - m) for m in sec.mask)
        if max(perf.levels[f] * mask[f] for f in (2, 3, 4)) <= FAMILY_ON:
            # a section never silences the harmony: the strongest of pads, keys and plucks stays (solo piano)
            f = max((2, 3, 4), key=lambda i: perf.levels[i])
            mask = mask[:f] + (1.0,) + mask[f + 1 :]
        self.vel_mask = tuple(0.6 + 0.4 * m if m > 0.0 else 0.0 for m in mask)
        lv = tuple(level * m for level, m in zip(perf.levels, mask))
        club = self.plan == "club"
        e = perf.energy + contrast * (sec.club_energy if club and sec.club_energy is not None else sec.energy)
        level = sec.level
        if sec.ramp:
            frac = (self.section_phrase * BARS_PER_PHRASE + pos) / max(1, self.section_len * BARS_PER_PHRASE - 1)
            e = perf.energy + contrast * (sec.energy + (0.6 - sec.energy) * frac)
            level = sec.level + ((sec.level_end or 0.0) - sec.level) * frac
        e = min(1.0, max(0.0, e))
        # the section's loudness from this bar line on (a LEVEL event: sample-exact, block-size invariant)
        self._push(self.next_step_frame, (dsp.LEVEL, contrast * level, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
        perf = replace(perf, energy=e, levels=lv, key=key)
        degree = self.progression[pos]
        ext = 0 if perf.harmony < 0.4 else (1 if perf.harmony < 0.75 else 2)
        if self.family == "jazz":
            ext = max(ext, 1)
        elif self.family == "epic":
            ext = 0  # voice-led triads
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

        last_bar = pos == BARS_PER_PHRASE - 1 and self.section_phrase == self.section_len - 1
        if lv[0] > FAMILY_ON:
            self._plan_drums(add, perf, bar, thin=sec.thin_drums, roll=sec.ramp and last_bar)
        if lv[1] > FAMILY_ON:
            nxt = self.progression[pos + 1] if pos + 1 < BARS_PER_PHRASE else self.progs[0][0]
            if sec.thin_drums and club:  # club intro: the root held through the bar, no line yet
                root = nearest_in(37.0, (pcs[0],))
                add(Note(0, dsp.BASS, root, 0.75, 15.5, p1=perf.chip, p2=1.5, p3=0.35, rev=0.05))
            else:
                self._plan_bass(add, perf, pcs, key.chord(nxt)[0])
        if lv[2] > FAMILY_ON:
            self._plan_pads(add, perf, pcs, hold, chord_changed)
        else:
            self.pad_voicing = None
        if lv[3] > FAMILY_ON:
            self._plan_keys(add, perf, pcs, lead_melody=lv[5] < 0.1 and lv[3] > 0.5 and sec.motif != "")
        if lv[4] > FAMILY_ON:
            if self.family == "modal" and perf.chip < 0.5:
                self._plan_stabs(add, perf, pcs)
            else:
                self._plan_arp(add, perf, pcs)
        if lv[5] > FAMILY_ON and sec.motif:
            self._plan_melody(add, perf, pcs, bar, dsp.LEAD)
        self.bar_notes = notes

    def _plan_pads(self, add: AddNote, perf: Performance, pcs: tuple[int, ...], hold: int, changed: bool) -> None:
        """Legato pads: a chord holds until the next one has attacked, so the band never dips at a change."""
        if not changed and self.pad_voicing is not None and self.step < self.pad_end:
            return
        sps = perf.samples_per_step
        xfade = PAD_HOLD_S * SAMPLE_RATE / sps  # in steps
        entering = self.pad_voicing is None or self.step > self.pad_end  # the last chord has ended
        previous = () if entering or self.pad_voicing is None else self.pad_voicing
        voicing = lead_voices(self.pad_voicing, pcs[:4], 50, 77)
        self.pad_voicing = voicing
        swell = 0.25 + 0.5 * perf.acoustic + 0.5 * (1.0 - perf.energy)
        attack = swell if entering else PAD_ATTACK_S
        dur = hold * STEPS_PER_BAR + xfade
        self.pad_end = self.step + hold * STEPS_PER_BAR
        for j, p in enumerate(voicing):
            if p in previous:  # a common tone is tied, not struck again (a restrike would beat against it)
                add(Note(0, dsp.PAD, p, -1.0, dur))
                continue
            add(Note(0, dsp.PAD, p, 0.8, dur, pan=-0.6 + 1.2 * j / max(len(voicing) - 1, 1),
                     p1=attack, p2=perf.chip, p3=PAD_RELEASE_S, rev=0.5, dly=0.05))

    def _plan_drums(self, add: AddNote, perf: Performance, bar: int, thin: bool = False, roll: bool = False) -> None:
        e = perf.energy
        rng = self.rng
        b = perf.brightness
        pat = self.pattern
        fill = bar % BARS_PER_PHRASE == BARS_PER_PHRASE - 1
        # the kick is tuned to the key: its tonic between F#1 and D#2 (46–78 Hz), else its fifth
        kick_hz = midi_to_hz(kick_pitch(perf.key.tonic))
        kick_decay = 0.45 if pat != "halftime" else 0.9
        house = perf.offbeat >= 0.5

        def kick(step: int, vel: float = 1.0) -> None:
            add(Note(step, dsp.KICK, kick_hz, vel, 4, p2=3.5, p3=kick_decay, rev=0.04, hz=True))

        def snare(step: int, vel: float = 1.0) -> None:
            if thin and vel < 0.6:  # intro: the backbeat only, no ghosts or fills
                return
            add(Note(step, dsp.SNARE, 185.0, vel, 4, pan=0.05, p1=185.0, p2=1800.0 + 2500.0 * b,
                     p3=0.22, rev=0.22, hz=True))

        def clap(step: int, vel: float = 1.0) -> None:
            if thin:
                return
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

        def ride(step: int, vel: float) -> None:
            add(Note(step, dsp.HAT, 1.0, vel * (0.4 + 0.6 * b), 4, pan=0.3, p2=5200.0 + 3000.0 * b, p3=0.45,
                     rev=0.15, hz=True))

        if pat == "four_floor" and house:
            # house: open hats on the off-beats, clap on 2 and 4, a soft shaker on the 16ths
            for s in (0, 4, 8, 12):
                kick(s)
            if e >= 0.25:
                clap(4, 0.75)
                clap(12, 0.75)
            for s in range(2, 16, 4):
                hat(s, 0.5, open_=True)
            if e >= 0.45:
                for s in range(1, 16, 2):
                    hat(s, 0.2)
        elif pat == "four_floor":
            # techno: driving closed 16ths, no open hats; a clap only on 4 at high energy
            for s in (0, 4, 8, 12):
                kick(s)
            if e >= 0.6:
                clap(12, 0.55)
            if e >= 0.8 and rng.random() < 0.5:
                kick(14, 0.7)
            if e < 0.45:
                hats()
            else:
                for s in range(16):
                    hat(s, 0.75 if s % 4 == 2 else 0.45 if s % 2 == 0 else 0.3)
        elif pat == "jazz":
            # swung ride (ding, ding-a), hi-hat foot on 2 and 4, feathered kick, comping snare
            for s in (0, 4, 6, 8, 12, 14):
                ride(s, 0.7 if s in (4, 12) else 0.5)
            for s in (4, 12):
                hat(s, 0.3)
            for s in (0, 4, 8, 12):
                kick(s, 0.22)
            for s in (3, 6, 7, 10, 11, 14, 15):
                if rng.random() < 0.12 + 0.2 * e:
                    snare(s, 0.25 + 0.2 * rng.random())
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
        elif pat == "halftime" and self.family == "epic":
            # trailer percussion: taiko-like low hits pushing across the bar, the big hit on 3, 16th ticks
            for s, vel in ((0, 1.0), (3, 0.7), (6, 0.8), (10, 0.75), (12, 0.6)):
                kick(s, vel)
            snare(8)
            clap(8, 0.7)
            for s in range(16):
                hat(s, 0.45 if s % 4 == 0 else 0.3 if s % 2 == 0 else 0.22)
        elif pat == "halftime" and perf.acoustic >= 0.8 and self.family != "modal":
            # orchestral: timpani on 1 and 3, a soft cymbal on the beat, nothing between
            kick(0, 0.9)
            kick(8, 0.7)
            for s in (0, 4, 8, 12):
                hat(s, 0.35, open_=s == 0)
            if fill and e > 0.4:
                for s in (12, 14):
                    kick(s, 0.6)
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
        if roll:  # the build's last bar: a snare roll into the drop
            for s in range(0, 16, 2 if e < 0.5 else 1):
                snare(s, 0.3 + 0.6 * s / 15)
        elif fill and e > 0.5:
            for s in (13, 14, 15):
                snare(s, 0.45 + 0.15 * (s - 13))

    def _plan_bass(self, add: AddNote, perf: Performance, pcs: tuple[int, ...], next_root: int) -> None:
        e = perf.energy
        root = nearest_in(37.0, (pcs[0],))
        fifth = root + 7
        pat = self.pattern
        common: Timbre = {"p1": perf.chip, "p2": 1.5 + 4.0 * e, "p3": 0.35, "rev": 0.05}
        if pat == "jazz" or (self.family == "jazz" and pat == "rock"):
            # walking bass: root, chord tones, a chromatic approach to the next root
            third = nearest_in(root + 4.0, (pcs[1],))
            five = nearest_in(root + 7.0, (pcs[2],))
            target = nearest_in(float(root), (next_root,))
            # the line is fixed by the bar's place and the phrase's statement, so a repeated phrase walks alike
            k = (self.step // STEPS_PER_BAR) % BARS_PER_PHRASE + 2 * (self.var % 2)
            approach = target + (1 if k % 2 else -1)
            line = (root, third if k % 3 else five, five if k % 4 < 3 else third + 12, approach)
            walk: Timbre = {**common, "p2": 1.2 + 1.5 * e}
            for k, p in enumerate(line):
                add(Note(4 * k, dsp.BASS, p, 0.9 if k == 0 else 0.8, 3.6, **walk))
        elif pat == "four_floor" and perf.offbeat >= 0.5 and e >= 0.35:
            for s, p in ((2, root), (6, root + 12), (10, root), (14, root + 12 if e > 0.6 else fifth)):
                add(Note(s, dsp.BASS, p, 0.9, 1.6, **common))
        elif pat == "four_floor" and e >= 0.35:
            # techno: a rolling off-beat bass between the kicks
            for s in (2, 3, 6, 7, 10, 11, 14, 15):
                add(Note(s, dsp.BASS, root, 0.85 if s % 2 == 0 else 0.55, 0.8, **common))
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
        if self.family == "jazz" and (self.pattern in ("jazz", "rock") or perf.swing >= 0.4):
            # comping: rootless voicings on the Charleston rhythm (1 and the and of 2)
            rootless = voicing[1:] if len(voicing) >= 4 else voicing
            charleston = ((self.step // STEPS_PER_BAR) + 2 * (self.var % 2)) % 4 != 3
            for s, vel, dur in ((0, 0.6, 5.0), (6, 0.5, 3.0)) if charleston else ((2, 0.55, 3.0), (10, 0.5, 4.0)):
                for j, p in enumerate(rootless):
                    add(Note(s, dsp.KEYS, p, vel, dur, pan=0.1 * j, delay=0.03 * j, **common))
        elif perf.offbeat >= 0.5 and e >= 0.3:
            # house piano: seventh-chord stabs on the off-beats and a syncopated push
            short: Timbre = {**common, "p3": 0.8}
            for s in (2, 6, 10, 14) if e >= 0.55 else (3, 10):
                for j, p in enumerate(voicing):
                    add(Note(s, dsp.KEYS, p, 0.5, 1.5, pan=0.1 * j, **short))
        elif e < 0.3:
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

    def _plan_stabs(self, add: AddNote, perf: Performance, pcs: tuple[int, ...]) -> None:
        """Sparse minor stabs (techno, modal vamps): the chord on a few syncopated steps, short and dry."""
        base = nearest_in(55.0, (pcs[0],))
        tones = sorted({nearest_in(base + ((pc - base) % 12), (pc,)) for pc in pcs[:3]})
        damp = 0.985 + 0.01 * perf.brightness
        steps = self.stab_steps if self.var % 2 == 0 else tuple((x + 3) % 16 for x in self.stab_steps)
        for s in steps:
            for j, p in enumerate(tones):
                add(Note(s, dsp.PLUCK, p, 0.7, 1.2, pan=-0.3 + 0.3 * j, p1=damp, p2=0.3 + 0.6 * perf.brightness,
                         p3=0.9, rev=0.35, dly=0.45))

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
        if perf.chip >= 0.5 or (self.family == "epic" and e >= 0.35):
            step_len = 1  # chiptune: fast arpeggiated triads; cinematic: a 16th-note string ostinato
        elif perf.acoustic >= 0.8 and e < 0.65:
            step_len = 2  # orchestral, folk: broken chords in 8ths
        sparse = perf.levels[0] <= FAMILY_ON and e < 0.35  # no drums, calm: a few bell-like notes, no pulse
        if sparse:
            step_len = 2
        damp = 0.992 + 0.007 * perf.brightness
        for k, s in enumerate(range(0, 16, step_len)):
            if sparse and self.rng.random() < 0.65:
                continue
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

    def _developed(self) -> list[tuple[int, int, float]]:
        """The stream's motif as the current section states it: the theme as written (varied a little on each
        return), developed (inverted around its first note, a third higher) or as a fragment (its first half)."""
        sec = SECTIONS[self.section]
        motif = list(self.motif)
        if not motif:
            return motif
        first = motif[0][1]
        if sec.motif == "develop":
            motif = [(s, first + 2 - (d - first), dur) for s, d, dur in motif]
        elif sec.motif == "fragment":
            motif = [(s, d, dur) for s, d, dur in motif if s % 16 < 8]
        n = self.repeats.get(self.section, 1) - 1 + self.section_phrase
        if n and motif:  # each return changes one note by a step, deterministically
            i = (3 * n) % len(motif)
            s, d, dur = motif[i]
            motif[i] = (s, d + (1 if n % 2 else -1), dur)
        return motif

    def _plan_melody(self, add: AddNote, perf: Performance, pcs: tuple[int, ...], bar: int, kind: int) -> None:
        pos = bar % BARS_PER_PHRASE
        half = pos % 2  # which bar of the two-bar motif
        if pos == 3 and perf.energy < 0.6:
            return  # breathe at the end of a phrase
        key = perf.key
        shift = 2 if pos >= 2 else 0
        for s, degree, dur in self._developed():
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
