"""The pygame helper and the pygame example, measured from what the game actually heard.

The acceptance test runs ``examples/pygame_game/game.py --seconds 20
--autopilot`` headless: SDL's dummy video driver, and SDL's *disk* audio
driver, which writes the mixer's output (int16 stereo at 48 kHz, the format
:func:`cadenza.sdk.pygame.pre_init` asks for) to ``SDL_DISKAUDIOFILE``. The
game starts its own ``cadenza serve --sink null`` and hears it through the
audio PUB socket and ``pygame.mixer``. The captured file must be about 20 s of
music: loud enough most of the time (not silence), a peaky spectrum (low
spectral flatness, unlike noise), a beat librosa can track with onsets on it;
and the game must have received beats and the victory stinger as pygame events.

The unit tests drive :class:`MusicPlayer`'s buffer, resampler and event
scheduling in-process with fake chunks (dummy video, disk audio).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pygame")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import audio_metrics as am  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GAME = REPO / "examples" / "pygame_game" / "game.py"
SR = 48_000
SECONDS = 20


def _headless_env(tmp_path: Path, raw: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="disk", SDL_DISKAUDIOFILE=str(raw),
               PYGAME_HIDE_SUPPORT_PROMPT="1")
    return env


def _summary(stdout: str) -> dict[str, str]:
    line = next((ln for ln in stdout.splitlines() if ln.startswith("summary: ")), None)
    assert line is not None, f"the game printed no summary line:\n{stdout}"
    return dict(re.findall(r"(\w+)=(\S+)", line))


@pytest.mark.slow
def test_pygame_game_runs_headless_and_what_it_heard_is_music(tmp_path: Path) -> None:
    raw = tmp_path / "out.raw"
    done = subprocess.run([sys.executable, str(GAME), "--seconds", str(SECONDS), "--autopilot"],
                          env=_headless_env(tmp_path, raw), capture_output=True, text=True, timeout=240,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert done.returncode == 0, f"rc={done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    s = _summary(done.stdout)

    # --- what the game got from the music (pygame events) ---
    assert s["audio_error"] == "-" and s["events_failed"] == "0", s
    assert int(s["frames"]) >= 10 * SECONDS, s  # it really ran its loop (60 fps when the machine is idle)
    assert int(s["beats"]) >= 20 and int(s["bars"]) >= 4, s  # ~104-132 bpm for 20 s: 35-44 beats
    assert int(s["stinger"]) >= 1, f"no victory stinger event: {s}"
    assert int(s["chunks"]) >= 50 * SECONDS, s

    # --- what it heard: SDL's disk driver wrote the mixer output ---
    pcm = np.fromfile(raw, dtype="<i2")
    assert pcm.size % 2 == 0
    pcm = pcm.reshape(-1, 2).astype(np.float32) / 32768.0
    duration = pcm.shape[0] / SR
    mono = am.mono(pcm)
    windows = mono[: len(mono) // 4800 * 4800].reshape(-1, 4800)  # 100 ms
    rms_db = 20 * np.log10(np.sqrt((windows.astype(np.float64) ** 2).mean(axis=1)) + 1e-12)
    loud = float((rms_db > -45.0).mean())

    import librosa

    flatness = float(np.median(librosa.feature.spectral_flatness(y=mono, n_fft=2048, hop_length=512)))
    noise = np.random.default_rng(0).standard_normal(SR * 5).astype(np.float32) * 0.1
    noise_flatness = float(np.median(librosa.feature.spectral_flatness(y=noise, n_fft=2048, hop_length=512)))
    tempo = am.tempo(pcm)
    onsets = am.onset_times(pcm)
    agreement = am.beat_onset_agreement(tempo.beat_times, onsets)
    print(f"\npygame game: {duration:.2f} s captured; RMS median {np.median(rms_db):.1f} dBFS, "
          f"{100 * loud:.0f}% of 100 ms windows above -45 dBFS; spectral flatness median {flatness:.4f} "
          f"(white noise {noise_flatness:.3f}); tempo {tempo.bpm:.1f} bpm from {len(tempo.beat_times)} beats, "
          f"{len(onsets) / duration:.1f} onsets/s, {100 * agreement:.0f}% of beats on an onset; "
          f"game: {s['beats']} beat events, {s['bars']} bars, stinger {s['stinger']} at {s['victory_at']} s, "
          f"states {s['states']}, {s['frames']} frames ({s['fps']} fps), audio gaps {s['gaps']}, "
          f"dropped frames {s['dropped_frames']}, lost chunks {s['lost_chunks']}")

    # SDL's disk driver paces itself with SDL_Delay: on a loaded machine it wakes late and writes less than
    # real time (and the player trims what piles up), so the capture may be shorter than the game's 20 s
    assert float(s["seconds"]) >= SECONDS - 0.5, s
    assert 0.5 * SECONDS <= duration <= SECONDS + 6, f"captured {duration:.2f} s"
    assert np.median(rms_db) > -35.0, f"median RMS {np.median(rms_db):.1f} dBFS: (near) silence"
    assert loud >= 0.8, f"only {100 * loud:.0f}% of the capture is above -45 dBFS"
    assert flatness < 0.05 < noise_flatness, f"spectral flatness {flatness:.4f}: noise-like"
    assert 60.0 <= tempo.bpm <= 200.0 and len(tempo.beat_times) >= 10, tempo
    assert len(onsets) / duration >= 1.0
    assert agreement >= 0.5, f"only {100 * agreement:.0f}% of the tracked beats fall on onsets"


@pytest.mark.parametrize("where", ["repo", "elsewhere"])
def test_the_helper_imports_the_real_pygame(where: str, tmp_path: Path) -> None:
    code = ("import cadenza.sdk.pygame as m; import pygame; "
            "assert m.pygame is pygame and hasattr(pygame, 'mixer'), m.pygame; "
            "assert 'site-packages' in pygame.__file__ or 'dist-packages' in pygame.__file__, pygame.__file__; "
            "assert len(set(m.EVENT_TYPES.values())) == 5 and min(m.EVENT_TYPES.values()) >= pygame.USEREVENT; "
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"},
                          cwd=REPO if where == "repo" else tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_started_inside_sdk_the_shadowing_is_explained() -> None:
    done = subprocess.run([sys.executable, "-c", "import cadenza.sdk.pygame"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYGAME_HIDE_SUPPORT_PROMPT": "1"}, cwd=REPO / "sdk")
    assert done.returncode != 0
    assert "the sdk/ folder is on sys.path" in done.stderr, done.stderr


# --------------------------------------------------------------------------- the player, in-process


@pytest.fixture
def pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in _headless_env(tmp_path, tmp_path / "unit.raw").items():
        monkeypatch.setenv(key, value)
    import pygame

    pygame.display.init()
    pygame.display.set_mode((64, 64))
    yield pygame
    pygame.quit()


def _player(**kwargs: Any) -> Any:
    from cadenza.sdk.client import Client
    from cadenza.sdk.pygame import MusicPlayer

    client = Client("tcp://127.0.0.1:9", "tcp://127.0.0.1:9", heartbeat=0)
    player = MusicPlayer(client, **kwargs)
    return player, client


def _chunks(signal: np.ndarray, size: int = 480) -> Iterator[Any]:
    from cadenza.proto.wire import DecodedAudio

    for i in range(0, signal.shape[0] - size + 1, size):
        yield DecodedAudio(i // size + 1, i, signal[i:i + size].astype(np.float32))


def test_blocks_pass_samples_unchanged_at_ratio_one_and_stay_continuous_when_resampled(pg: Any) -> None:
    pg.mixer.init(frequency=SR, size=-16, channels=2, buffer=1024, allowedchanges=0)
    player, client = _player(jitter_ms=40.0, block_ms=50.0, max_buffer_ms=2000.0)
    try:
        player._init_mixer()
        t = np.arange(SR, dtype=np.float64) / SR
        tone = 0.5 * np.sin(2 * np.pi * 220.0 * t)
        signal = np.stack([tone, -tone], axis=1)
        for chunk in _chunks(signal):
            player._receive(chunk)
        block = 2400
        outputs = []
        for ratio in (1.0, 1.0, 1.013, 0.987, 1.02, 1.0):
            _, sound = player._take(block, ratio)
            outputs.append(np.frombuffer(sound.get_raw(), dtype="<i2").reshape(-1, 2).astype(np.float64))
        expected = np.rint(np.clip(signal, -1, 1) * 32767.0)
        # the first frame is held back as the interpolation's start: output n is input n + 1
        assert np.array_equal(outputs[0], expected[1:block + 1])
        assert np.array_equal(outputs[1], expected[block + 1:2 * block + 1])
        joined = np.concatenate(outputs)[:, 0]
        step = np.abs(np.diff(joined)).max()
        assert step <= 32767 * 0.5 * 2 * np.pi * 220 / SR * 1.05 + 2, f"a jump of {step} at a block seam"
    finally:
        player.close()
        client.close()


def test_events_wait_until_their_audio_is_heard(pg: Any) -> None:
    from cadenza.sdk._base import BeatEvent, StateEvent
    from cadenza.sdk.pygame import CADENZA_BEAT, CADENZA_STATE

    player, client = _player()
    ours = [CADENZA_BEAT, CADENZA_STATE]
    try:
        t0 = time.monotonic()
        player._current = (48_000, t0)  # stream sample 48000 started playing at t0
        player._playing = True
        player._mixer_buffer = 0
        pg.event.clear()
        beat = BeatEvent("beat", 1, 72_000, 1.5, beat=3, bar=1, beat_in_bar=3, bpm=120.0, estimated=False)
        player._on_event(beat)
        player._on_event(StateEvent("state", 1, 96_000, 2.0, name="combat", previous="explore", phase="scheduled",
                                    transition="crossfade", fade_seconds=1.0))
        player._post_due(t0 + 0.2)  # heard: 48000 + 0.2 s
        got = pg.event.get(ours)
        assert [e.type for e in got] == [CADENZA_STATE]  # an announcement goes out at once
        assert got[0].state == "combat" and got[0].phase == "scheduled"
        player._post_due(t0 + 0.49)
        assert pg.event.get(ours) == []
        player._post_due(t0 + 0.51)  # 48000 + 24480 > 72000
        (ev,) = pg.event.get(ours)
        assert ev.type == CADENZA_BEAT and ev.beat == 3 and ev.bpm == 120.0 and ev.stream_time == 72_000
        assert not ev.downbeat and ev.cadenza is beat
        assert player.stats.beats == 1 and player.stats.events_posted == 2
    finally:
        player.close()
        client.close()


def test_a_mixer_at_another_rate_is_refused_with_the_fix(pg: Any) -> None:
    from cadenza.errors import UsageError

    pg.mixer.init(frequency=44_100, size=-16, channels=2, allowedchanges=0)
    player, client = _player()
    try:
        with pytest.raises(UsageError, match="pre_init"):
            player._init_mixer()
    finally:
        player.close()
        client.close()


def test_bad_arguments() -> None:
    from cadenza.errors import UsageError
    from cadenza.sdk.pygame import MusicPlayer

    with pytest.raises(UsageError, match="client"):
        MusicPlayer("tcp://127.0.0.1:5555")
    with pytest.raises(UsageError, match="topics"):
        MusicPlayer(("tcp://127.0.0.1:9", "tcp://127.0.0.1:9"), topics=["beat", "mix"])
    with pytest.raises(UsageError, match="jitter_ms"):
        MusicPlayer(("tcp://127.0.0.1:9", "tcp://127.0.0.1:9"), jitter_ms=float("nan"))
