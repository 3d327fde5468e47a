"""The synth's numba DSP: voices, buses, reverb, delay, loudness leveller and limiter.

One entry point, :func:`render_block`, renders a block of stereo audio from a
voice pool, a sorted list of note events and per-block bus parameters. All
state lives in numpy arrays owned by the stream (so a stream forks by copying
them); nothing here allocates, logs or touches Python objects, and everything
is float64 and single-threaded, so equal inputs give bit-identical output.

Layouts (column indices) are module constants shared with the engine.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from cadenza.runtime.loudness import K_WEIGHTING

SR = 48_000.0
TWO_PI = 2.0 * math.pi

# ---- voice kinds and the family (bus) each one feeds ----------------------
KICK, SNARE, CLAP, HAT, BASS, PAD, KEYS, PLUCK, LEAD, TEXTURE = range(10)
N_KINDS = 10
#: Not a voice: an event of this kind sets the leveller's target to ``B_TARGET_LUFS`` + its E_FREQ (dB) from its
#: sample on (the section's planned loudness, placed on the bar line, so any block size renders alike).
LEVEL = 99
FAMILY_OF_KIND = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6], dtype=np.int64)
N_FAMILIES = 7
# slot range per kind in the voice pool (first, count)
SLOTS = np.array(
    [[0, 3], [3, 3], [6, 2], [8, 4], [12, 3], [15, 14], [29, 14], [43, 10], [53, 3], [56, 1]],
    dtype=np.int64,
)
N_VOICES = 57
KS_LEN = 1024

# ---- voice columns ----------------------------------------------------------
(
    V_ACTIVE, V_KIND, V_AGE, V_GATE, V_AMP, V_STAGE, V_ATT, V_DEC, V_SUS, V_REL,
    V_VEL, V_FREQ, V_FTGT, V_PH1, V_PH2, V_PH3, V_PANL, V_PANR, V_REV, V_DLY,
    V_S1, V_S2, V_S3, V_S4, V_S5, V_P1, V_P2, V_P3, V_P4, V_KSI, V_KSN,
) = range(31)
N_COLS = 32

# ---- event columns ------------------------------------------------------------
E_OFF, E_KIND, E_FREQ, E_VEL, E_DUR, E_PAN, E_P1, E_P2, E_P3, E_REV, E_DLY = range(11)
N_ECOLS = 11

# ---- block parameter slots ------------------------------------------------------
B_GAIN0 = 0  # 7 family gains at block start
B_GAIN1 = 7  # 7 family gains at block end
B_BRIGHT = 14
B_WET = 15
B_RT60 = 16
B_DLY_TIME = 17
B_DLY_FB = 18
B_DLY_MIX = 19
B_GRIT = 20
B_TARGET_LUFS = 21
B_CEILING = 22
B_PAD_CUT = 23
B_LEAD_CUT = 24
B_BASS_CUT = 25
B_HAT_CUT = 26
B_DAMP = 27
B_PAD_REV = 28
B_PAD_DLY = 29
B_TONE = 30  # master tone: one-pole low-pass coefficient (1.0 = open)
N_BPARAMS = 31

# ---- effect state slots (fx array) -------------------------------------------
REV_LENS = np.array([1559, 1877, 2213, 2593], dtype=np.int64)
AP_LENS = np.array([223, 337], dtype=np.int64)
REV_BUF = 2600
AP_BUF = 340
DLY_BUF = 96_000
LOOKAHEAD = 96
(
    F_REV_I0, F_REV_I1, F_REV_I2, F_REV_I3, F_REV_LP0, F_REV_LP1, F_REV_LP2, F_REV_LP3,
    F_AP_I0, F_AP_I1, F_DLY_W, F_DLY_T, F_DLY_LPL, F_DLY_LPR,
    F_K1L_Z1, F_K1L_Z2, F_K2L_Z1, F_K2L_Z2, F_K1R_Z1, F_K1R_Z2, F_K2R_Z1, F_K2R_Z2,
    F_MS, F_AGC, F_AGC_TGT, F_LIM_G, F_LIM_TGT, F_LIM_HOLD, F_LA_I, F_AGC_N,
    F_PAD_L1, F_PAD_L2, F_PAD_R1, F_PAD_R2, F_TONE_L, F_TONE_R, F_AGE, F_LEVEL_DB,
) = range(38)
N_FX = 38

#: Added to feedback paths so decaying tails never become (slow) denormal floats.
ANTI_DENORMAL = 1e-18

SINE_N = 4096
SINE_TABLE = np.sin(np.linspace(0.0, TWO_PI, SINE_N + 1))

# BS.1770 K-weighting at 48 kHz (pre-filter shelf, then RLB high-pass): runtime.loudness's table, as the plain
# float tuples the kernels compile in
K1_B = tuple(float(c) for c in K_WEIGHTING[0, :3])
K1_A = tuple(float(c) for c in K_WEIGHTING[0, 3:])
K2_B = tuple(float(c) for c in K_WEIGHTING[1, :3])
K2_A = tuple(float(c) for c in K_WEIGHTING[1, 3:])


def new_fx_state(target_lufs: float) -> np.ndarray:
    fx = np.zeros(N_FX, dtype=np.float64)
    # start the loudness meter at the target so the leveller starts at unity gain
    fx[F_MS] = 10.0 ** ((target_lufs + 0.691) / 10.0)
    fx[F_AGC] = 1.0
    fx[F_AGC_TGT] = 1.0
    fx[F_LIM_G] = 1.0
    fx[F_LIM_TGT] = 1.0
    return fx


@njit(cache=True, nogil=True)
def _sine(tbl: np.ndarray, phase: float) -> float:
    x = phase * SINE_N
    i = int(x)
    f = x - i
    i = i & (SINE_N - 1)
    return tbl[i] + f * (tbl[i + 1] - tbl[i])


@njit(cache=True, nogil=True)
def _xs(x: np.uint64):
    """xorshift64 step on local state; returns (state, uniform sample in [-1, 1))."""
    x ^= x << np.uint64(13)
    x ^= x >> np.uint64(7)
    x ^= x << np.uint64(17)
    return x, (x >> np.uint64(11)) * (1.0 / 9007199254740992.0) * 2.0 - 1.0


@njit(cache=True, nogil=True)
def _noise(rng: np.ndarray) -> float:
    x, r = _xs(rng[0])
    rng[0] = x
    return r


@njit(cache=True, nogil=True)
def _blep(t: float, dt: float) -> float:
    if t < dt:
        t = t / dt
        return t + t - t * t - 1.0
    if t > 1.0 - dt:
        t = (t - 1.0) / dt
        return t * t + t + t + 1.0
    return 0.0


@njit(cache=True, nogil=True)
def _saw(phase: float, dt: float) -> float:
    return 2.0 * phase - 1.0 - _blep(phase, dt)


@njit(cache=True, nogil=True)
def _square(phase: float, dt: float) -> float:
    p2 = phase + 0.5
    if p2 >= 1.0:
        p2 -= 1.0
    return _saw(phase, dt) - _saw(p2, dt)


@njit(cache=True, nogil=True)
def _svf_g(cutoff: float) -> float:
    c = min(max(cutoff, 20.0), 16_000.0)
    return math.tan(math.pi * c / SR)


@njit(cache=True, nogil=True)
def _svf_coefs(g: float, k: float):  # noqa: ANN202 — numba returns a tuple
    """Coefficients (a1, a2, a3) of a trapezoidal state-variable filter with ``g = tan(π·fc/fs)``, damping ``k``."""
    a1 = 1.0 / (1.0 + g * (g + k))
    a2 = g * a1
    return a1, a2, g * a2


@njit(cache=True, nogil=True)
def _svf(x: float, ic1: float, ic2: float, a1: float, a2: float, a3: float):  # noqa: ANN202
    """One sample of the state-variable filter: returns (band-pass, low-pass, ic1, ic2)."""
    v3 = x - ic2
    v1 = a1 * ic1 + a2 * v3
    v2 = ic2 + a2 * ic1 + a3 * v3
    return v1, v2, 2.0 * v1 - ic1, 2.0 * v2 - ic2


@njit(cache=True, nogil=True)
def _adsr(stage: float, amp: float, gate: float, att: float, dec: float, sus: float, rel: float):
    """One sample of an ADSR on local state; returns (stage, amp, gate)."""
    gate -= 1.0
    if stage == 0.0:
        amp += att
        if amp >= 1.0:
            amp = 1.0
            stage = 1.0
    elif stage == 1.0:
        amp = sus + (amp - sus) * dec
    else:
        amp *= rel
    if gate <= 0.0 and stage < 2.0:
        stage = 2.0
    return stage, amp, gate


@njit(cache=True, nogil=True)
def _coef(seconds: float) -> float:
    """Per-sample multiplier that decays by 60 dB in ``seconds``."""
    if seconds <= 0.0:
        return 0.0
    return math.exp(-6.907755 / (seconds * SR))


@njit(cache=True, nogil=True)
def _note_on(
    vo: np.ndarray, ks: np.ndarray, ev: np.ndarray, e: int, rng: np.ndarray, vrng: np.ndarray, bright: float
) -> None:
    kind = int(ev[e, E_KIND])
    first = SLOTS[kind, 0]
    count = SLOTS[kind, 1]
    freq = ev[e, E_FREQ]
    # a pad event with a negative velocity ties: the sounding pad voices at this pitch hold on for
    # the event's duration instead of retriggering (legato chord changes keep their common tones)
    if kind == PAD and ev[e, E_VEL] < 0.0:
        for s in range(first, first + count):
            if vo[s, V_ACTIVE] != 0.0 and vo[s, V_STAGE] < 2.0 and vo[s, V_FREQ] == freq:
                vo[s, V_GATE] = ev[e, E_DUR]
        return
    # a legato lead glides instead of retriggering
    if kind == LEAD:
        for s in range(first, first + count):
            if vo[s, V_ACTIVE] != 0.0 and vo[s, V_STAGE] < 2.0:
                vo[s, V_FTGT] = freq
                vo[s, V_GATE] = ev[e, E_DUR]
                vo[s, V_VEL] = ev[e, E_VEL]
                return
    slot = -1
    quietest = 1e9
    for s in range(first, first + count):
        if vo[s, V_ACTIVE] == 0.0:
            slot = s
            break
        a = vo[s, V_AMP] * vo[s, V_VEL]
        if vo[s, V_STAGE] < 2.0:
            a += 1.0  # prefer stealing released voices
        if a < quietest:
            quietest = a
            slot = s
    v = slot
    for c in range(N_COLS):
        vo[v, c] = 0.0
    vo[v, V_ACTIVE] = 1.0
    vo[v, V_KIND] = kind
    # each voice draws its noise from its own generator, seeded here, so the noise a voice
    # makes does not depend on how the stream is cut into blocks
    x, _ = _xs(rng[0])
    rng[0] = x
    vrng[v] = x ^ np.uint64(0x9E3779B97F4A7C15) | np.uint64(1)
    vo[v, V_GATE] = ev[e, E_DUR]
    vo[v, V_VEL] = ev[e, E_VEL]
    vo[v, V_FREQ] = freq
    vo[v, V_FTGT] = freq
    pan = min(max(ev[e, E_PAN], -1.0), 1.0)
    ang = (pan + 1.0) * 0.25 * math.pi
    vo[v, V_PANL] = math.cos(ang)
    vo[v, V_PANR] = math.sin(ang)
    vo[v, V_REV] = ev[e, E_REV]
    vo[v, V_DLY] = ev[e, E_DLY]
    p1 = ev[e, E_P1]
    p2 = ev[e, E_P2]
    p3 = ev[e, E_P3]
    vo[v, V_P1] = p1
    vo[v, V_P2] = p2
    vo[v, V_P3] = p3
    vo[v, V_SUS] = 0.0
    vo[v, V_REL] = _coef(0.03)
    if kind == KICK:
        # p1: end pitch is freq, p2: start/end ratio, p3: decay seconds
        vo[v, V_ATT] = 1.0 / (0.0008 * SR)
        vo[v, V_DEC] = _coef(p3)
        vo[v, V_S1] = 1.0  # pitch envelope
        vo[v, V_S2] = 0.35  # beater click: a few ms of noise that marks the beat
        vo[v, V_P4] = _coef(0.09)
        vo[v, V_PH1] = 0.0
    elif kind == SNARE or kind == CLAP or kind == HAT:
        # p1: tone Hz (snare), p2: filter cutoff Hz, p3: decay seconds
        vo[v, V_ATT] = 1.0 / (0.0006 * SR)
        vo[v, V_DEC] = _coef(p3)
        vo[v, V_S1] = 1.0  # tone env / burst env
        vo[v, V_P4] = _svf_g(p2)
    elif kind == BASS:
        # p1: chip (0..1), p2: filter env amount, p3: decay seconds
        vo[v, V_ATT] = 1.0 / (0.003 * SR)
        vo[v, V_DEC] = _coef(p3)
        vo[v, V_SUS] = 0.55
        vo[v, V_REL] = _coef(0.06)
        vo[v, V_S5] = 1.0  # filter envelope
    elif kind == PAD:
        # p1: attack seconds, p2: chip, p3: release seconds
        vo[v, V_ATT] = 1.0 / (max(p1, 0.005) * SR)
        vo[v, V_DEC] = _coef(2.0)
        vo[v, V_SUS] = 0.8
        vo[v, V_REL] = _coef(p3)
        vo[v, V_PH1] = (_noise(rng) + 1.0) * 0.5
        vo[v, V_PH2] = (_noise(rng) + 1.0) * 0.5
    elif kind == KEYS:
        # p1: modulator ratio, p2: modulation index, p3: decay seconds
        vo[v, V_ATT] = 1.0 / (0.002 * SR)
        vo[v, V_DEC] = _coef(p3)
        vo[v, V_REL] = _coef(0.15)  # the damper
        vo[v, V_S1] = p2  # index envelope
        vo[v, V_P4] = _coef(p3 * 0.35)
    elif kind == PLUCK:
        # Karplus-Strong: p1 = loop damping, p2 = excitation brightness
        n = int(SR / freq + 0.5)
        if n > KS_LEN - 1:
            n = KS_LEN - 1
        if n < 4:
            n = 4
        vo[v, V_KSN] = n
        vo[v, V_KSI] = 0.0
        lp = 0.0
        a = min(max(p2, 0.05), 1.0)
        for i in range(n):
            lp += a * (_noise(rng) - lp)
            ks[v, i] = lp
        mean = 0.0
        for i in range(n):
            mean += ks[v, i]
        mean /= n
        for i in range(n):
            ks[v, i] -= mean
        vo[v, V_ATT] = 1.0 / (0.001 * SR)
        vo[v, V_DEC] = _coef(p3)
        vo[v, V_REL] = _coef(0.12)
    elif kind == LEAD:
        # p1: chip, p2: attack seconds, p3: vibrato depth (fraction)
        vo[v, V_ATT] = 1.0 / (max(p2, 0.003) * SR)
        vo[v, V_DEC] = _coef(1.5)
        vo[v, V_SUS] = 0.75
        vo[v, V_REL] = _coef(0.25)
    elif kind == TEXTURE:
        vo[v, V_ATT] = 1.0 / (2.0 * SR)
        vo[v, V_DEC] = 1.0
        vo[v, V_SUS] = 1.0
        vo[v, V_REL] = _coef(2.0)


@njit(cache=True, nogil=True)
def _render_voice(
    vo: np.ndarray, ks: np.ndarray, v: int, i0: int, i1: int,
    g0: float, gs: float, dry_l: np.ndarray, dry_r: np.ndarray, rev: np.ndarray, dly: np.ndarray,
    pad_l: np.ndarray, pad_r: np.ndarray, tbl: np.ndarray, vrng: np.ndarray, bp: np.ndarray,
) -> None:
    kind = int(vo[v, V_KIND])
    pl = vo[v, V_PANL]
    pr = vo[v, V_PANR]
    sr_ = vo[v, V_REV]
    sd_ = vo[v, V_DLY]
    vel = vo[v, V_VEL]
    inv_sr = 1.0 / SR
    stage = vo[v, V_STAGE]
    amp = vo[v, V_AMP]
    gate = vo[v, V_GATE]
    att = vo[v, V_ATT]
    dec = vo[v, V_DEC]
    sus = vo[v, V_SUS]
    rel = vo[v, V_REL]
    nx = vrng[v]
    alive = True
    if kind == KICK:
        f_end = vo[v, V_FREQ]
        ratio = vo[v, V_P2]
        pcoef = vo[v, V_P4]
        pe = vo[v, V_S1]
        ph = vo[v, V_PH1]
        ck = vo[v, V_S2]
        ccoef = _coef(0.012)
        for i in range(i0, i1):
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            pe *= pcoef
            # the sweep follows pe squared: as fast an attack, but settled on the tuned pitch within ~50 ms
            # (pe alone left the body 20-40 cents sharp for its first 100 ms, where most of its energy is)
            f = f_end * (1.0 + (ratio - 1.0) * pe * pe)
            ph += f * inv_sr
            if ph >= 1.0:
                ph -= 1.0
            nx, x = _xs(nx)
            ck *= ccoef
            s = (_sine(tbl, ph) + ck * x) * amp * vel * (g0 + gs * i)
            dry_l[i] += s * pl
            dry_r[i] += s * pr
            rev[i] += s * sr_
            if stage >= 1.0 and amp < 3e-4:
                alive = False
                break
        vo[v, V_S1] = pe
        vo[v, V_S2] = ck
        vo[v, V_PH1] = ph
    elif kind == SNARE or kind == CLAP or kind == HAT:
        tone_f = vo[v, V_P1]
        g = vo[v, V_P4]
        k = 1.0 if kind == SNARE else (0.6 if kind == CLAP else 1.2)
        a1, a2, a3 = _svf_coefs(g, k)
        ic1 = vo[v, V_S2]
        ic2 = vo[v, V_S3]
        te = vo[v, V_S1]
        ph = vo[v, V_PH1]
        tcoef = _coef(0.05)
        age = vo[v, V_AGE]
        for i in range(i0, i1):
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            nx, x = _xs(nx)
            v1, v2, ic1, ic2 = _svf(x, ic1, ic2, a1, a2, a3)
            if kind == HAT:
                s = (x - k * v1 - v2) * 0.45  # high-pass
            elif kind == SNARE:
                te *= tcoef
                ph += tone_f * inv_sr
                if ph >= 1.0:
                    ph -= 1.0
                s = v1 * 1.1 + _sine(tbl, ph) * te * 0.8
            else:  # clap: three quick bursts, then the tail
                if age == 360.0 or age == 720.0:
                    te = 1.0
                te *= 0.9985
                s = v1 * 1.4 * (0.45 + te)
            age += 1.0
            s *= amp * vel * (g0 + gs * i)
            dry_l[i] += s * pl
            dry_r[i] += s * pr
            rev[i] += s * sr_
            if stage >= 1.0 and amp < 3e-4:
                alive = False
                break
        vo[v, V_S1] = te
        vo[v, V_S2] = ic1
        vo[v, V_S3] = ic2
        vo[v, V_PH1] = ph
        vo[v, V_AGE] = age
    elif kind == BASS:
        f = vo[v, V_FREQ]
        dt = f * inv_sr
        chip = vo[v, V_P1]
        famt = vo[v, V_P2]
        base_cut = bp[B_BASS_CUT]
        fenv = vo[v, V_S5]
        fcoef = _coef(0.35)
        age = vo[v, V_AGE]
        gg = vo[v, V_P4]
        a1, a2, a3 = _svf_coefs(gg, 0.9)
        ic1 = vo[v, V_S1]
        ic2 = vo[v, V_S2]
        ph = vo[v, V_PH1]
        ph2 = vo[v, V_PH2]
        for i in range(i0, i1):
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            ph += dt
            if ph >= 1.0:
                ph -= 1.0
            ph2 += 0.5 * dt
            if ph2 >= 1.0:
                ph2 -= 1.0
            osc = _saw(ph, dt)
            if chip > 0.0:
                osc = (1.0 - chip) * osc + chip * _square(ph, dt)
            fenv *= fcoef
            if (int(age) & 15) == 0:  # the filter envelope is slow: new coefficients every 16 samples of the note
                gg = math.pi * min(base_cut * (1.0 + famt * fenv), 9000.0) * inv_sr
                a1, a2, a3 = _svf_coefs(gg, 0.9)
            age += 1.0
            v1, v2, ic1, ic2 = _svf(osc, ic1, ic2, a1, a2, a3)
            s = (v2 * 0.6 + _sine(tbl, ph2) * 0.7) * amp * vel * (g0 + gs * i)
            dry_l[i] += s * pl
            dry_r[i] += s * pr
            rev[i] += s * sr_
            if stage >= 1.0 and amp < 3e-4:
                alive = False
                break
        vo[v, V_S1] = ic1
        vo[v, V_S2] = ic2
        vo[v, V_S5] = fenv
        vo[v, V_PH1] = ph
        vo[v, V_PH2] = ph2
        vo[v, V_AGE] = age
        vo[v, V_P4] = gg
    elif kind == PAD:
        # oscillators only: the pad bus shares one stereo filter (see render_block)
        f = vo[v, V_FREQ]
        dt1 = f * 1.0035 * inv_sr
        dt2 = f * 0.9965 * inv_sr
        chip = vo[v, V_P2]
        ph1 = vo[v, V_PH1]
        ph2 = vo[v, V_PH2]
        for i in range(i0, i1):
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            ph1 += dt1
            if ph1 >= 1.0:
                ph1 -= 1.0
            ph2 += dt2
            if ph2 >= 1.0:
                ph2 -= 1.0
            if chip > 0.5:
                osc = _square(ph1, dt1) + _square(ph2, dt2)
            else:
                osc = _saw(ph1, dt1) + _saw(ph2, dt2)
            s = osc * amp * vel * (g0 + gs * i)
            pad_l[i] += s * pl
            pad_r[i] += s * pr
            if stage >= 1.0 and amp < 3e-4:
                alive = False
                break
        vo[v, V_PH1] = ph1
        vo[v, V_PH2] = ph2
    elif kind == KEYS:
        f = vo[v, V_FREQ]
        dt = f * inv_sr
        dtm = dt * vo[v, V_P1]
        idx = vo[v, V_S1]
        icoef = vo[v, V_P4]
        ph = vo[v, V_PH1]
        phm = vo[v, V_PH2]
        for i in range(i0, i1):
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            ph += dt
            if ph >= 1.0:
                ph -= 1.0
            phm += dtm
            if phm >= 1.0:
                phm -= 1.0
            idx *= icoef
            p = ph + idx * _sine(tbl, phm) * 0.159
            p -= math.floor(p)
            s = _sine(tbl, p) * amp * vel * (g0 + gs * i)
            dry_l[i] += s * pl
            dry_r[i] += s * pr
            rev[i] += s * sr_
            dly[i] += s * sd_
            if stage >= 1.0 and amp < 3e-4:
                alive = False
                break
        vo[v, V_S1] = idx
        vo[v, V_PH1] = ph
        vo[v, V_PH2] = phm
    elif kind == PLUCK:
        n = int(vo[v, V_KSN])
        j = int(vo[v, V_KSI])
        damp = vo[v, V_P1]
        for i in range(i0, i1):
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            j2 = j + 1
            if j2 >= n:
                j2 = 0
            y = ks[v, j]
            ks[v, j] = damp * 0.5 * (y + ks[v, j2])
            j = j2
            s = y * amp * vel * (g0 + gs * i)
            dry_l[i] += s * pl
            dry_r[i] += s * pr
            rev[i] += s * sr_
            dly[i] += s * sd_
            if stage >= 1.0 and amp < 3e-4:
                alive = False
                break
        vo[v, V_KSI] = j
    elif kind == LEAD:
        f = vo[v, V_FREQ]
        ftgt = vo[v, V_FTGT]
        glide16 = 1.0 - _coef(0.06) ** 16
        dt = vo[v, V_P4]
        chip = vo[v, V_P1]
        vdepth = vo[v, V_P3]
        g = _svf_g(bp[B_LEAD_CUT])
        a1, a2, a3 = _svf_coefs(g, 1.0)
        ic1 = vo[v, V_S1]
        ic2 = vo[v, V_S2]
        ph = vo[v, V_PH1]
        lfo = vo[v, V_PH2]
        age = vo[v, V_AGE]
        for i in range(i0, i1):
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            if (int(age) & 15) == 0:  # pitch (glide and vibrato) moves slowly: every 16 samples of the note
                f += (ftgt - f) * glide16
                lfo += 16.0 * 5.5 * inv_sr
                if lfo >= 1.0:
                    lfo -= 1.0
                vib = 1.0 + vdepth * min(age * (1.0 / 12000.0), 1.0) * _sine(tbl, lfo)
                dt = f * vib * inv_sr
            ph += dt
            if ph >= 1.0:
                ph -= 1.0
            osc = _saw(ph, dt)
            if chip > 0.0:
                osc = (1.0 - chip) * osc + chip * _square(ph, dt) * 0.7
            v1, v2, ic1, ic2 = _svf(osc, ic1, ic2, a1, a2, a3)
            age += 1.0
            s = v2 * amp * vel * (g0 + gs * i)
            dry_l[i] += s * pl
            dry_r[i] += s * pr
            rev[i] += s * sr_
            dly[i] += s * sd_
            if stage >= 1.0 and amp < 3e-4:
                alive = False
                break
        vo[v, V_FREQ] = f
        vo[v, V_P4] = dt
        vo[v, V_S1] = ic1
        vo[v, V_S2] = ic2
        vo[v, V_PH1] = ph
        vo[v, V_PH2] = lfo
        vo[v, V_AGE] = age
    elif kind == TEXTURE:
        # band-passed noise whose centre drifts slowly, plus sparse crackle (p1 = crackle rate)
        crackle = vo[v, V_P1]
        ic1 = vo[v, V_S1]
        ic2 = vo[v, V_S2]
        lfo = vo[v, V_PH1]
        ce = vo[v, V_S3]
        age = vo[v, V_AGE]
        g = vo[v, V_P4]
        a1, a2, a3 = _svf_coefs(g, 1.6)
        for i in range(i0, i1):
            if (int(age) & 63) == 0:  # the band's centre drifts slowly: every 64 samples of the voice
                lfo += 64.0 * 0.07 * inv_sr
                if lfo >= 1.0:
                    lfo -= 1.0
                g = _svf_g(350.0 + 2200.0 * bp[B_BRIGHT] * (0.6 + 0.4 * _sine(tbl, lfo)))
                a1, a2, a3 = _svf_coefs(g, 1.6)
            age += 1.0
            stage, amp, gate = _adsr(stage, amp, gate, att, dec, sus, rel)
            nx, x = _xs(nx)
            v1, v2, ic1, ic2 = _svf(x, ic1, ic2, a1, a2, a3)
            ce *= 0.92
            if crackle > 0.0:
                nx, c = _xs(nx)
                if c > 1.0 - crackle:
                    nx, ce = _xs(nx)
            s = (v1 * 0.5 + ce * 0.35) * amp * vel * (g0 + gs * i)
            dry_l[i] += s * pl
            dry_r[i] += s * pr
            rev[i] += s * sr_
            if stage >= 1.0 and amp < 1e-5:
                alive = False
                break
        vo[v, V_S1] = ic1
        vo[v, V_S2] = ic2
        vo[v, V_AGE] = age
        vo[v, V_P4] = g
        vo[v, V_S3] = ce
        vo[v, V_PH1] = lfo
    vo[v, V_STAGE] = stage
    vo[v, V_AMP] = amp
    vo[v, V_GATE] = gate
    vrng[v] = nx
    if not alive:
        vo[v, V_ACTIVE] = 0.0


@njit(cache=True, nogil=True)
def _biquad(x: float, z1: float, z2: float, b0: float, b1: float, b2: float, a1: float, a2: float):
    """Transposed direct form II on local state; returns (y, z1, z2)."""
    y = b0 * x + z1
    return y, b1 * x - a1 * y + z2, b2 * x - a2 * y


@njit(cache=True, nogil=True)
def render_block(
    out: np.ndarray,
    vo: np.ndarray,
    ks: np.ndarray,
    ev: np.ndarray,
    n_ev: int,
    bp: np.ndarray,
    fx: np.ndarray,
    rev_buf: np.ndarray,
    ap_buf: np.ndarray,
    dly_buf: np.ndarray,
    la_buf: np.ndarray,
    scratch: np.ndarray,
    rng: np.ndarray,
    vrng: np.ndarray,
    tbl: np.ndarray,
) -> None:
    """Render ``out.shape[0]`` frames into ``out`` (float32, stereo).

    Events ``ev[:n_ev]`` are sorted by their sample offset inside the block.
    """
    n = out.shape[0]
    dry_l = scratch[0]
    dry_r = scratch[1]
    rev = scratch[2]
    dly = scratch[3]
    pad_l = scratch[4]
    pad_r = scratch[5]
    for i in range(n):
        dry_l[i] = 0.0
        dry_r[i] = 0.0
        rev[i] = 0.0
        dly[i] = 0.0
        pad_l[i] = 0.0
        pad_r[i] = 0.0

    # ---- voices, segment by segment between note events -------------------
    bright = bp[B_BRIGHT]
    e = 0
    pos = 0
    while pos < n:
        while e < n_ev and int(ev[e, E_OFF]) <= pos:
            if int(ev[e, E_KIND]) != LEVEL:
                _note_on(vo, ks, ev, e, rng, vrng, bright)
            e += 1
        end = n
        if e < n_ev:
            end = min(n, max(int(ev[e, E_OFF]), pos + 1))
        for v in range(N_VOICES):
            if vo[v, V_ACTIVE] == 0.0:
                continue
            kind = int(vo[v, V_KIND])
            fam = FAMILY_OF_KIND[kind]
            g0 = bp[B_GAIN0 + fam]
            gs = (bp[B_GAIN1 + fam] - g0) / n
            if g0 == 0.0 and bp[B_GAIN1 + fam] == 0.0:
                if kind != TEXTURE:
                    vo[v, V_ACTIVE] = 0.0  # an inaudible family's notes end here
                continue
            _render_voice(vo, ks, v, pos, end, g0, gs, dry_l, dry_r, rev, dly, pad_l, pad_r, tbl, vrng, bp)
        pos = end

    # ---- the pad bus: one stereo low-pass for every pad voice -------------------
    g = _svf_g(bp[B_PAD_CUT])
    a1, a2, a3 = _svf_coefs(g, 1.2)
    prev = bp[B_PAD_REV]
    pdly = bp[B_PAD_DLY]
    l1 = fx[F_PAD_L1]; l2 = fx[F_PAD_L2]; q1 = fx[F_PAD_R1]; q2 = fx[F_PAD_R2]
    for i in range(n):
        _, yl, l1, l2 = _svf(pad_l[i] + ANTI_DENORMAL, l1, l2, a1, a2, a3)
        _, yr, q1, q2 = _svf(pad_r[i] + ANTI_DENORMAL, q1, q2, a1, a2, a3)
        dry_l[i] += yl
        dry_r[i] += yr
        m = 0.5 * (yl + yr)
        rev[i] += m * prev
        dly[i] += m * pdly
    fx[F_PAD_L1] = l1; fx[F_PAD_L2] = l2; fx[F_PAD_R1] = q1; fx[F_PAD_R2] = q2

    # ---- effects and master bus, sample by sample ----------------------------
    rt60 = max(bp[B_RT60], 0.2)
    fb0 = 10.0 ** (-3.0 * REV_LENS[0] / (SR * rt60))
    fb1 = 10.0 ** (-3.0 * REV_LENS[1] / (SR * rt60))
    fb2 = 10.0 ** (-3.0 * REV_LENS[2] / (SR * rt60))
    fb3 = 10.0 ** (-3.0 * REV_LENS[3] / (SR * rt60))
    damp = bp[B_DAMP]
    wet = bp[B_WET]
    dmix = bp[B_DLY_MIX]
    dfb = bp[B_DLY_FB]
    dtgt = bp[B_DLY_TIME]
    grit = bp[B_GRIT]
    drive = 1.0 + 4.0 * grit
    level_db = fx[F_LEVEL_DB]
    target_ms = 10.0 ** ((bp[B_TARGET_LUFS] + level_db + 0.691) / 10.0)
    le = 0  # the next event to look at for a LEVEL change
    ceiling = bp[B_CEILING]
    age = fx[F_AGE]
    ms_slow = 1.0 / (1.2 * SR)
    agc_slow = 1.0 / (0.8 * SR)
    ms_coef = ms_slow if age >= 2.0 * SR else 1.0 / (0.25 * SR)
    agc_coef = agc_slow if age >= 2.0 * SR else 1.0 / (0.15 * SR)
    lim_att = 1.0 - math.exp(-5.0 / LOOKAHEAD)
    lim_rel = 1.0 / (0.15 * SR)

    r0 = int(fx[F_REV_I0]); r1 = int(fx[F_REV_I1]); r2 = int(fx[F_REV_I2]); r3 = int(fx[F_REV_I3])
    lp0 = fx[F_REV_LP0]; lp1 = fx[F_REV_LP1]; lp2 = fx[F_REV_LP2]; lp3 = fx[F_REV_LP3]
    a0i = int(fx[F_AP_I0]); a1i = int(fx[F_AP_I1])
    dw = int(fx[F_DLY_W])
    dtime = fx[F_DLY_T]
    if dtime <= 0.0:
        dtime = dtgt
    dlpl = fx[F_DLY_LPL]; dlpr = fx[F_DLY_LPR]
    ms = fx[F_MS]
    agc = fx[F_AGC]
    agc_tgt = fx[F_AGC_TGT]
    lim_g = fx[F_LIM_G]
    lim_tgt = fx[F_LIM_TGT]
    hold = int(fx[F_LIM_HOLD])
    la = int(fx[F_LA_I])
    agc_n = int(fx[F_AGC_N])
    tone = bp[B_TONE]
    tone_l = fx[F_TONE_L]
    tone_r = fx[F_TONE_R]
    k1l1 = fx[F_K1L_Z1]; k1l2 = fx[F_K1L_Z2]; k2l1 = fx[F_K2L_Z1]; k2l2 = fx[F_K2L_Z2]
    k1r1 = fx[F_K1R_Z1]; k1r2 = fx[F_K1R_Z2]; k2r1 = fx[F_K2R_Z1]; k2r2 = fx[F_K2R_Z2]

    for i in range(n):
        while le < n_ev and int(ev[le, E_OFF]) <= i:
            if int(ev[le, E_KIND]) == LEVEL:
                level_db = ev[le, E_FREQ]
                target_ms = 10.0 ** ((bp[B_TARGET_LUFS] + level_db + 0.691) / 10.0)
                if age == 0.0 and i == 0:
                    ms = target_ms  # the stream's first level: the meter starts there (unity gain, as ever)
            le += 1
        # reverb: two input allpass diffusers, then a 4-line feedback delay network
        x = rev[i] + ANTI_DENORMAL
        b = ap_buf[0, a0i]
        y = -0.6 * x + b
        ap_buf[0, a0i] = x + 0.6 * y
        a0i += 1
        if a0i >= AP_LENS[0]:
            a0i = 0
        x = y
        b = ap_buf[1, a1i]
        y = -0.6 * x + b
        ap_buf[1, a1i] = x + 0.6 * y
        a1i += 1
        if a1i >= AP_LENS[1]:
            a1i = 0
        x = y
        d0 = rev_buf[0, r0]; d1 = rev_buf[1, r1]; d2 = rev_buf[2, r2]; d3 = rev_buf[3, r3]
        lp0 += damp * (d0 - lp0); lp1 += damp * (d1 - lp1); lp2 += damp * (d2 - lp2); lp3 += damp * (d3 - lp3)
        h0 = 0.5 * (lp0 + lp1 + lp2 + lp3)
        h1 = 0.5 * (lp0 - lp1 + lp2 - lp3)
        h2 = 0.5 * (lp0 + lp1 - lp2 - lp3)
        h3 = 0.5 * (lp0 - lp1 - lp2 + lp3)
        rev_buf[0, r0] = x + fb0 * h0
        rev_buf[1, r1] = x + fb1 * h1
        rev_buf[2, r2] = x + fb2 * h2
        rev_buf[3, r3] = x + fb3 * h3
        r0 += 1
        if r0 >= REV_LENS[0]:
            r0 = 0
        r1 += 1
        if r1 >= REV_LENS[1]:
            r1 = 0
        r2 += 1
        if r2 >= REV_LENS[2]:
            r2 = 0
        r3 += 1
        if r3 >= REV_LENS[3]:
            r3 = 0
        rl = (lp0 + lp2) * 0.35
        rr = (lp1 + lp3) * 0.35

        # tempo-synced ping-pong delay with a low-passed feedback path
        dtime += (dtgt - dtime) * 0.0002
        rp = dw - dtime
        while rp < 0.0:
            rp += DLY_BUF
        ri = int(rp)
        fr = rp - ri
        ri2 = ri + 1
        if ri2 >= DLY_BUF:
            ri2 = 0
        outl = dly_buf[0, ri] + fr * (dly_buf[0, ri2] - dly_buf[0, ri])
        outr = dly_buf[1, ri] + fr * (dly_buf[1, ri2] - dly_buf[1, ri])
        dlpl += 0.35 * (outl - dlpl)
        dlpr += 0.35 * (outr - dlpr)
        dly_buf[0, dw] = dly[i] + ANTI_DENORMAL + dfb * dlpr
        dly_buf[1, dw] = dfb * dlpl
        dw += 1
        if dw >= DLY_BUF:
            dw = 0

        l = dry_l[i] + wet * rl + dmix * outl
        r = dry_r[i] + wet * rr + dmix * outr
        if grit > 0.005:
            xl = l * drive
            xr = r * drive
            l += grit * (xl * (27.0 + xl * xl) / (27.0 + 9.0 * xl * xl) / drive * 1.3 - l)
            r += grit * (xr * (27.0 + xr * xr) / (27.0 + 9.0 * xr * xr) / drive * 1.3 - r)

        # master tone: the brightness control's broad stroke (a one-pole low-pass)
        tone_l += tone * (l - tone_l)
        tone_r += tone * (r - tone_r)
        l = tone_l
        r = tone_r

        # loudness leveller: K-weighted mean square, feed-forward gain towards the target
        kl, k1l1, k1l2 = _biquad(l, k1l1, k1l2, K1_B[0], K1_B[1], K1_B[2], K1_A[0], K1_A[1])
        kl, k2l1, k2l2 = _biquad(kl, k2l1, k2l2, K2_B[0], K2_B[1], K2_B[2], K2_A[0], K2_A[1])
        kr, k1r1, k1r2 = _biquad(r, k1r1, k1r2, K1_B[0], K1_B[1], K1_B[2], K1_A[0], K1_A[1])
        kr, k2r1, k2r2 = _biquad(kr, k2r1, k2r2, K2_B[0], K2_B[1], K2_B[2], K2_A[0], K2_A[1])
        ms += (kl * kl + kr * kr - ms) * ms_coef
        agc_n += 1
        if agc_n >= 64:
            agc_n = 0
            age += 64.0
            if age < 2.0 * SR:  # warm-up: meter and gain follow within ~0.3 s
                ms_coef = 1.0 / (0.25 * SR)
                agc_coef = 1.0 / (0.15 * SR)
            else:
                ms_coef = ms_slow
                agc_coef = agc_slow
            # decaying filter memories must not turn denormal (slow on x86)
            if abs(k2l1) < 1e-30 and abs(k2r1) < 1e-30:
                k1l1 = 0.0; k1l2 = 0.0; k2l1 = 0.0; k2l2 = 0.0
                k1r1 = 0.0; k1r2 = 0.0; k2r1 = 0.0; k2r2 = 0.0
            if ms > target_ms * 1e-4:  # below -40 dB re target: hold (silence is not boosted)
                agc_tgt = math.sqrt(target_ms / ms)
                if agc_tgt > 8.0:
                    agc_tgt = 8.0
                if agc_tgt < 0.05:
                    agc_tgt = 0.05
        agc += (agc_tgt - agc) * agc_coef
        l *= agc
        r *= agc

        # look-ahead peak limiter: the gain reaches its target before the peak leaves the delay
        pk = max(abs(l), abs(r))
        req = 1.0
        if pk > ceiling:
            req = ceiling / pk
        if req <= lim_tgt:
            lim_tgt = req
            hold = LOOKAHEAD
        elif hold > 0:
            hold -= 1
        else:
            lim_tgt = req
        if lim_tgt < lim_g:
            lim_g += (lim_tgt - lim_g) * lim_att
        else:
            lim_g += (lim_tgt - lim_g) * lim_rel
        ol = la_buf[0, la]
        orr = la_buf[1, la]
        la_buf[0, la] = l
        la_buf[1, la] = r
        la += 1
        if la >= LOOKAHEAD:
            la = 0
        ol *= lim_g
        orr *= lim_g
        if ol > ceiling:
            ol = ceiling
        elif ol < -ceiling:
            ol = -ceiling
        if orr > ceiling:
            orr = ceiling
        elif orr < -ceiling:
            orr = -ceiling
        out[i, 0] = ol
        out[i, 1] = orr

    fx[F_REV_I0] = r0; fx[F_REV_I1] = r1; fx[F_REV_I2] = r2; fx[F_REV_I3] = r3
    fx[F_REV_LP0] = lp0; fx[F_REV_LP1] = lp1; fx[F_REV_LP2] = lp2; fx[F_REV_LP3] = lp3
    fx[F_AP_I0] = a0i; fx[F_AP_I1] = a1i
    fx[F_DLY_W] = dw
    fx[F_DLY_T] = dtime
    fx[F_DLY_LPL] = dlpl; fx[F_DLY_LPR] = dlpr
    fx[F_MS] = ms
    fx[F_AGC] = agc
    fx[F_AGC_TGT] = agc_tgt
    fx[F_LIM_G] = lim_g
    fx[F_LIM_TGT] = lim_tgt
    fx[F_LIM_HOLD] = hold
    fx[F_LA_I] = la
    fx[F_AGC_N] = agc_n
    fx[F_AGE] = age
    fx[F_LEVEL_DB] = level_db
    fx[F_TONE_L] = tone_l
    fx[F_TONE_R] = tone_r
    fx[F_K1L_Z1] = k1l1; fx[F_K1L_Z2] = k1l2; fx[F_K2L_Z1] = k2l1; fx[F_K2L_Z2] = k2l2
    fx[F_K1R_Z1] = k1r1; fx[F_K1R_Z2] = k1r2; fx[F_K2R_Z1] = k2r1; fx[F_K2R_Z2] = k2r2
