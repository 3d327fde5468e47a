"""The magenta backend with the real ``magenta-rt`` library on a tiny random-weight checkpoint.

No Magenta weights can be downloaded here, so the session builds one with
``cadenza models make-tiny`` (the library's own model code, a 2-layer/256-dim
spec, parameters initialised by its sampler, saved as safetensors) into a
Hugging Face cache in a temporary folder, and every test runs with
``HF_HUB_OFFLINE=1`` through the real lookup and loading path. Only the
MusicCoCa TFLite towers are replaced, by the library's ``MockMusicCoCa``.

What a user relies on:

- ``cadenza serve --backend magenta`` plays through the same SDK calls, graph
  and sinks as the synth, and a change of prompt weights reaches the model's
  conditioning at the next 40 ms frame;
- controls map to the conditioning (piano roll with onsets, drums flag, CFG),
  the compiled step never recompiles when prompts or controls change, a forked
  stream continues bit-identically, seeds differ;
- controls the model cannot honour are refused with a warning, not faked;
- missing weights: one line naming the files and the download command, exit ≠ 0.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("magenta_rt", reason="the magenta extra is not installed (pip install 'cadenza[magenta]')")

from server_harness import ServeProcess  # noqa: E402

from cadenza.runtime.backends import Controls, TextPrompt, get_backend  # noqa: E402

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
FRAME = 1920


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CADENZA_DEBUG", None)
    env.update({"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu",
                "PYTHONUNBUFFERED": "1", **extra})
    return env


def _cadenza(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cadenza", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face cache holding the tiny model, built by the CLI as a user would."""
    cache = tmp_path_factory.mktemp("hf") / "hub"
    done = _cadenza(["models", "make-tiny"], _env(cache), timeout=600)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.is_symlink() and "snapshots" in path.parts
    assert path.name == "cadenza_tiny.safetensors"
    return cache


@pytest.fixture(scope="module")
def backend(tiny_cache: Path) -> Iterator[Any]:
    import huggingface_hub.constants as hf_constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_constants, "HF_HUB_CACHE", str(tiny_cache))
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        messages: list[str] = []
        b = get_backend("magenta", model="tiny", say=messages.append)
        b.messages = messages
        yield b


# ---------------------------------------------------------------- weights and CLI


def test_models_list_shows_the_cached_tiny_model_and_the_others_missing(tiny_cache: Path) -> None:
    done = _cadenza(["models", "list"], _env(tiny_cache))
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()}
    assert " yes " in lines["tiny"] and " no " in lines["mrt2_small"] and " no " in lines["mrt2_base"]
    assert "~1.1 GB" in lines["mrt2_small"] and "~10.0 GB" in lines["mrt2_base"]
    assert str(tiny_cache) in done.stdout and "offline" in done.stdout


def test_serve_without_weights_names_the_files_and_the_download_command(tmp_path: Path) -> None:
    done = _cadenza(["serve", "--backend", "magenta", "--sink", "null"], _env(tmp_path / "empty"))
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "checkpoints/mrt2_small.safetensors" in err
    assert "cadenza models download mrt2_small" in err and "HF_HUB_OFFLINE" in err
    done = _cadenza(["serve", "--backend", "magenta", "--model", "mrt2_base", "--sink", "null"],
                    _env(tmp_path / "empty", HF_HUB_OFFLINE="0"))
    assert done.returncode == 2 and "cadenza models download mrt2_base" in done.stderr
    assert "HF_HUB_OFFLINE" not in done.stderr


def test_the_musiccoca_towers_missing_name_the_resources_download(tiny_cache: Path) -> None:
    done = _cadenza(["serve", "--backend", "magenta", "--model", "tiny", "--style-model", "musiccoca",
                     "--sink", "null"], _env(tiny_cache))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "resources/musiccoca/text_encoder.tflite" in done.stderr
    assert "cadenza models download resources" in done.stderr


def test_download_offline_says_so(tmp_path: Path) -> None:
    done = _cadenza(["models", "download", "mrt2_small"], _env(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "offline" in done.stderr and "HF_HUB_OFFLINE" in done.stderr


def test_bad_model_and_device_options(tiny_cache: Path) -> None:
    done = _cadenza(["serve", "--backend", "magenta", "--model", "mrt3_huge"], _env(tiny_cache))
    assert done.returncode == 2 and "'mrt3_huge'" in done.stderr and "mrt2_small" in done.stderr
    done = _cadenza(["serve", "--model", "tiny"], _env(tiny_cache))
    assert done.returncode == 2 and "--model" in done.stderr and "--backend magenta" in done.stderr
    done = _cadenza(["serve", "--backend", "magenta", "--device", "quantum"], _env(tiny_cache))
    assert done.returncode == 2 and "quantum" in done.stderr


# ---------------------------------------------------------------- the backend in process


def test_startup_reports_device_size_parameters_and_times(backend: Any) -> None:
    text = "\n".join(backend.messages)
    assert "model tiny on cpu" in text and "MB)" in text
    assert "weights loaded in" in text and "compiled in" in text
    assert f"{backend.parameters:,} parameters" in text and backend.parameters > 1_000_000
    assert backend.capabilities.step_frames == FRAME and not backend.capabilities.beat_grid
    assert {"bpm", "scale", "density", "brightness"}.isdisjoint(backend.capabilities.controls)


def test_blocks_of_any_size_make_one_continuous_stream(backend: Any) -> None:
    style = backend.embed(TextPrompt("disco funk")).vector
    assert style.shape == (768,) and style.dtype == np.float32
    whole, _ = backend.generate(backend.new_stream(3), style, Controls(), 4 * FRAME)
    state = backend.new_stream(3)
    parts = []
    for n in (480, 1000, 7, 2953, 480, 2760):
        pcm, state = backend.generate(state, style, Controls(), n)
        assert pcm.shape == (n, 2) and pcm.dtype == np.float32
        parts.append(pcm)
    assert np.array_equal(np.concatenate(parts), whole)
    assert state.frames_generated == 4 and state.frame == 4 * FRAME
    assert np.abs(whole[FRAME:]).max() > 0  # the random model does make sound after its first frame


def test_the_stream_is_the_librarys_own_generate_loop_bit_for_bit(backend: Any) -> None:
    from magenta_rt.config import MUSICCOCA

    style = backend.embed(TextPrompt("disco funk")).vector
    system = backend.system
    start = backend._reseed(system._jit_init_state(system._params, {}), 6)
    wav, _ = system.generate(conditioning={MUSICCOCA.key: backend.style_tokens(style)}, frames=5, state=start)
    ours, _ = backend.generate(backend.new_stream(6), style, Controls(), 5 * FRAME)
    assert np.array_equal(ours, wav.samples.astype(np.float32))


def test_fork_continues_identically_and_seeds_differ(backend: Any) -> None:
    style = backend.embed(TextPrompt("ambient")).vector
    a = backend.new_stream(1)
    _, a = backend.generate(a, style, Controls(), 2 * FRAME + 100)
    b = a.fork()
    pa, _ = backend.generate(a, style, Controls(), 3 * FRAME)
    pb, _ = backend.generate(b, style, Controls(), 3 * FRAME)
    assert np.array_equal(pa, pb)
    s1, _ = backend.generate(backend.new_stream(1), style, Controls(), 4 * FRAME)
    s2, _ = backend.generate(backend.new_stream(2), style, Controls(), 4 * FRAME)
    assert not np.array_equal(s1, s2)


def test_controls_become_the_conditioning_of_the_next_frame(backend: Any) -> None:
    style = backend.embed(TextPrompt("jazz piano")).vector
    state = backend.new_stream(0)
    _, state = backend.generate(state, style, Controls(), FRAME)
    roll = state.conditioning[12:140]
    assert (roll == -1).all() and state.conditioning[140] == -1  # no notes, drums free: masked
    _, state = backend.generate(state, style, Controls(notes=(60, 64, 67), drums=True, guidance=5.0), FRAME)
    roll = state.conditioning[12:140]
    assert [int(roll[p]) for p in (60, 64, 67)] == [2, 2, 2] and int(roll.sum()) == 6  # onsets, others off
    assert state.conditioning[140] == 1 and state.cfg_scales["musiccoca"] == 5.0
    _, state = backend.generate(state, style, Controls(notes=(60, 64, 69), mute_drums=True, guidance=20.0), FRAME)
    roll = state.conditioning[12:140]
    assert [int(roll[p]) for p in (60, 64, 69, 67)] == [1, 1, 2, 0]  # held, held, onset, released
    assert state.conditioning[140] == 0 and state.cfg_scales["musiccoca"] == 7.0  # clamped to the model's CFG


def test_a_change_of_prompt_weights_reaches_the_next_frame(backend: Any) -> None:
    """Through the conductor and a real graph, as the runtime drives it (10 ms blocks)."""
    from cadenza.runtime.conductor import Conductor
    from cadenza.runtime.graph.loader import loads_graph

    graph = loads_graph("""
cadenza_graph: 1
name: two moods
parameters:
  calm: {type: continuous, min: 0, max: 1, default: 1}
prompts:
  calm: ambient pads
  storm: aggressive drums
mix:
  - {prompt: calm, weight: {param: calm}}
  - {prompt: storm, weight: {invert: {param: calm}}}
""", "mix.yaml")
    conductor = Conductor(graph, backend, seed=4)
    state = conductor.deck_a.state
    for _ in range(8):
        conductor.step()
    calm_tokens = backend.style_tokens(conductor.style_of({"calm": 1.0}))
    assert state.conditioning[:12].tolist() == calm_tokens
    done = state.frames_generated
    conductor.engine.set("calm", 0.0, at=conductor.frame / 48_000)  # at this very block, no ramp
    while state.frames_generated == done:  # the next frame the model renders …
        conductor.step()
        state = conductor.deck_a.state
    storm_tokens = backend.style_tokens(conductor.style_of({"storm": 1.0}))
    assert storm_tokens != calm_tokens
    assert state.conditioning[:12].tolist() == storm_tokens  # … is conditioned on the new mix


def test_nothing_recompiles_when_prompts_or_controls_change(backend: Any) -> None:
    import jax

    styles = [backend.embed(TextPrompt(t)).vector for t in ("techno", "strings", "lofi")]
    state = backend.new_stream(5)
    _, state = backend.generate(state, styles[0], Controls(), FRAME)  # warm
    compiles: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "ompil" in record.getMessage():
                compiles.append(record.getMessage())

    handler = Catch(logging.DEBUG)
    root = logging.getLogger("jax")
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        with jax.log_compiles(True):
            for i, ctl in enumerate([Controls(temperature=0.7), Controls(top_k=5, notes=(40,)),
                                     Controls(guidance=2.0, drums=False, seed=9), Controls(temperature=2, top_k=200)]):
                _, state = backend.generate(state, styles[i % 3] * (1 + i), ctl, FRAME)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert compiles == []


def test_audio_prompts_embed_through_musiccoca(backend: Any, tmp_path: Path) -> None:
    import soundfile as sf

    from cadenza.errors import PromptError
    from cadenza.runtime.backends import AudioPrompt

    t = np.arange(48_000 * 3) / 48_000
    sf.write(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 48_000)
    vec = backend.embed(AudioPrompt(tmp_path / "tone.wav")).vector
    assert vec.shape == (768,) and np.isfinite(vec).all()
    with pytest.raises(PromptError, match="missing.wav"):
        backend.embed(AudioPrompt(tmp_path / "missing.wav"))


# ---------------------------------------------------------------- the runtime process


def test_serve_plays_the_tiny_model_through_the_sdk_graph_and_sinks(tiny_cache: Path, tmp_path: Path) -> None:
    import soundfile as sf

    from cadenza.sdk import AudioStream, Client
    from cadenza.sdk.errors import BadValue

    wav = tmp_path / "magenta.wav"
    old = dict(os.environ)
    os.environ.update(_env(tiny_cache))
    try:
        server = ServeProcess(["--backend", "magenta", "--model", "tiny", "--lookahead", "200"], tmp_path,
                              sink=f"wav:{wav}")
        with server:
            assert "compiled in" in server.stderr_text and "model tiny on cpu" in server.stderr_text
            with Client(server.ep.local("control"), server.ep.local("events"), timeout=30, heartbeat=0) as music, \
                    AudioStream(server.ep.local("audio"), timeout=60) as audio:
                info = music.hello()
                assert info.backend == "magenta" and "bpm" not in info.controls and "notes" in info.controls
                music.load_graph(REPO / "examples" / "action_game" / "graph.yaml")
                ack = music.set_controls(bpm=120)  # the model has no tempo input: refused, not faked
                assert any("bpm" in w for w in ack.warnings)
                with pytest.raises(BadValue):
                    music.set_controls(temperature=float("nan"))
                music.set(danger=0.8)
                got = 0
                t0 = time.monotonic()
                for chunk in audio:
                    assert chunk.pcm.dtype == np.float32 and np.isfinite(chunk.pcm).all()
                    got += chunk.pcm.shape[0]
                    if got >= 2 * 48_000 or time.monotonic() - t0 > 120:
                        break
                assert got >= 2 * 48_000, f"only {got} frames of audio in 120 s"
                status = music.status()
                assert status.parameters["danger"] == pytest.approx(0.8, abs=0.01)  # smoothed (attack 0.8 s)
        rc, _ = server.stop() if server.alive() else (0, 0.0)
    finally:
        os.environ.clear()
        os.environ.update(old)
    data, rate = sf.read(wav, dtype="float32")
    assert rate == 48_000 and data.shape[1] == 2 and data.shape[0] >= 2 * 48_000
    assert np.abs(data).max() > 0
