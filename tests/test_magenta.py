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
- every live stream advances in one batched step (``prefetch``), each stream's
  audio the same as that stream stepped alone, and nothing compiles after the
  start-up's warm-up whatever streams join or leave;
- missing weights: one line naming the files and the download command, exit ≠ 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
    """The children's environment: the private HF cache, offline, CPU, and JAX's persistent compilation cache in
    the session's base temp folder (``<basetemp>/jax-compile-cache``, shared by every test file that runs
    ``cadenza serve --backend magenta``): a second start-up with the same batch sizes loads its compiled steps."""
    env = dict(os.environ)
    env.pop("CADENZA_DEBUG", None)
    env.update({"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu",
                "PYTHONUNBUFFERED": "1", "JAX_COMPILATION_CACHE_DIR": str(cache.parents[1] / "jax-compile-cache"),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", **extra})
    return env


def _cadenza(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cadenza", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module", autouse=True)
def _backend_loading(request: pytest.FixtureRequest) -> Iterator[tuple[Future[Any], list[str]] | None]:
    """Starts loading the module's backend in a thread at the module's first test when a selected test needs it,
    so that its compiles overlap the CLI tests' subprocesses (which run first)."""
    if not any(item.module is request.module and "backend" in getattr(item, "fixturenames", ())
               for item in request.session.items):
        yield None
        return
    import huggingface_hub.constants as hf_constants

    tiny_cache: Path = request.getfixturevalue("tiny_cache")
    request.getfixturevalue("jax_compile_cache")
    with pytest.MonkeyPatch.context() as mp, ThreadPoolExecutor(1, thread_name_prefix="tiny-backend") as pool:
        mp.setattr(hf_constants, "HF_HUB_CACHE", str(tiny_cache))
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        messages: list[str] = []
        yield pool.submit(get_backend, "magenta", model="tiny", say=messages.append, batch_sizes=(1, 3)), messages


@pytest.fixture(scope="module")
def backend(_backend_loading: tuple[Future[Any], list[str]] | None) -> Any:
    """The tiny model in this process (JAX's persistent compilation cache on: conftest.py), batch sizes 1 and 3:
    3 streams run unpadded, 2 padded to 3, 5 as 3 + 2 padded; ``cadenza serve`` children that start later with
    ``--batch-sizes 1`` or ``1,3`` (tests/test_requests_never_wait.py) load every step it compiled."""
    assert _backend_loading is not None
    future, messages = _backend_loading
    b = future.result()
    b.messages = messages
    return b


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


@contextlib.contextmanager
def _compiles() -> Iterator[list[str]]:
    """The XLA compilations that happen inside the block (``jax.log_compiles``)."""
    import jax

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
            yield compiles
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_nothing_recompiles_when_prompts_or_controls_change(backend: Any) -> None:
    styles = [backend.embed(TextPrompt(t)).vector for t in ("techno", "strings", "lofi")]
    state = backend.new_stream(5)
    with _compiles() as compiles:
        for i, ctl in enumerate([Controls(temperature=0.7), Controls(top_k=5, notes=(40,)),
                                 Controls(guidance=2.0, drums=False, seed=9), Controls(temperature=2, top_k=200)]):
            _, state = backend.generate(state, styles[i % 3] * (1 + i), ctl, FRAME)
    assert compiles == []


# ---------------------------------------------------------------- every live stream in one step

# Streams unlike each other in every per-row input: seed, prompt, temperature, top_k, notes, drums, CFG, seed control.
_SPECS = [(1, "disco funk", Controls()),
          (2, "ambient pads", Controls(temperature=0.8, notes=(60, 64, 67))),
          (3, "aggressive drums", Controls(top_k=10, drums=True, guidance=5.0)),
          (4, "jazz piano", Controls(temperature=1.6, top_k=200, mute_drums=True)),
          (5, "lofi", Controls(seed=77, notes=(40,)))]


def _teacher_forced(backend: Any, specs: list[tuple[int, str, Controls]], frames: int) -> tuple[int, int, int, int]:
    """Each frame, every stream steps alone (``generate``) and a fork of it steps in one batch with the others'
    forks (``prefetch`` then ``generate``, which must only slice). (equal tokens, tokens, frames whose 12 tokens
    all match, of those the frames whose audio matches bit for bit)."""
    from cadenza.runtime.backends.base import StepJob

    styles = [backend.embed(TextPrompt(p)).vector for _, p, _ in specs]
    states = [backend.new_stream(seed) for seed, _, _ in specs]
    equal = total = same_frames = same_audio = 0
    for _ in range(frames):
        forks = [s.fork() for s in states]
        backend.prefetch([StepJob(f, styles[i], specs[i][2], 480) for i, f in enumerate(forks)])
        ready = [f.frames_generated for f in forks]
        batched = [np.concatenate([backend.generate(f, styles[i], specs[i][2], 480)[0],
                                   backend.generate(f, styles[i], specs[i][2], FRAME - 480)[0]])
                   for i, f in enumerate(forks)]
        assert [f.frames_generated for f in forks] == ready  # generate only sliced what prefetch made ready
        for i, state in enumerate(states):
            alone, _ = backend.generate(state, styles[i], specs[i][2], FRAME)
            a, b = backend.tokens(state), backend.tokens(forks[i])
            equal += int(np.sum(a == b))
            total += a.size
            if np.array_equal(a, b):
                same_frames += 1
                same_audio += int(np.array_equal(alone, batched[i]))
    return equal, total, same_frames, same_audio


def test_each_stream_of_a_batched_step_is_that_stream_stepped_alone(backend: Any) -> None:
    """Batched through ``prefetch`` (2 streams padded to 3; 3; 5 as 3 + 2 padded to 3), each stream samples the
    tokens it samples alone, and its audio is bit-identical to the stream stepped alone whenever its tokens are.

    Tolerance, and why: the model never mixes rows (attention, norms, the codec
    and the sampler's Gumbel noise, drawn from each row's own key, are per
    stream), but XLA compiles a batch-1 step's matmuls as matrix-vector
    products and a batch-B step's as GEMMs, which sum in another order: the
    logits differ in their last bits, and the depthformer's Gumbel-max choice
    of a token flips where two candidates are that close — a near-tie. Random
    weights give flat logits, so near-ties are common here (measured: 1 token
    in 25–100 differs, teacher-forced, and the RVQ levels after it follow it;
    never in the codec: given equal tokens the audio is bit-identical). A flip
    is a different, equally likely sample, after which the stream continues
    from its own context. So: teacher-forced (each frame, batched and alone
    step from the same state), ≥ 80 % of the tokens and half the frames equal,
    and the audio of every frame whose tokens are equal bit-identical. A real
    fault (a row's key, temperature or conditioning swapped, a padding leak)
    samples 1 of 1,024 codes at random: ~0 % equal. Free-running bit-identity
    holds across the same executable (the padding test below).
    """
    for count in (2, 3, 5):
        equal, total, same_frames, same_audio = _teacher_forced(backend, _SPECS[:count], 3)
        assert equal / total >= 0.8, f"{count} streams: {equal}/{total} tokens as alone"
        assert 2 * same_frames >= 3 * count and same_audio == same_frames, (count, same_frames, same_audio)


def test_the_padding_row_leaks_nothing(backend: Any) -> None:
    """2 streams padded to a batch of 3 play exactly what they play beside a 3rd real stream (the same executable,
    rows independent), bit for bit over several frames; the idle row's state is never advanced."""
    import jax

    from cadenza.runtime.backends.base import StepJob

    fresh = jax.tree.leaves(backend.system._jit_init_state(backend.system._params, {}))
    styles = [backend.embed(TextPrompt(p)).vector for _, p, _ in _SPECS]
    two = [backend.new_stream(seed) for seed, _, _ in _SPECS[:2]]
    three = [s.fork() for s in two] + [backend.new_stream(99)]
    for _ in range(3):
        for group in (two, three):
            backend.prefetch([StepJob(s, styles[i], _SPECS[i][2], FRAME) for i, s in enumerate(group)])
        for i in range(2):
            a, _ = backend.generate(two[i], styles[i], _SPECS[i][2], FRAME)
            b, _ = backend.generate(three[i], styles[i], _SPECS[i][2], FRAME)
            assert np.array_equal(a, b), f"stream {i}: the padding row changed it"
        backend.generate(three[2], styles[2], _SPECS[2][2], FRAME)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(backend._pad_state), fresh, strict=True))


def test_streams_that_start_inside_a_frame_fall_into_step(backend: Any) -> None:
    """A crossfade deck and a stinger start at offsets inside the bed's 40 ms frame (10 ms blocks): within a frame
    of each joining, every device step carries all the live streams (one batched call, not one per stream)."""
    from collections import Counter

    from cadenza.runtime.backends.base import StepJob

    style = backend.embed(TextPrompt("dark techno")).vector
    bed, deck, stinger = backend.new_stream(21), backend.new_stream(22), backend.new_stream(23)
    sizes: list[int] = []
    for k in range(20):
        live = [bed] + [deck] * (k >= 2) + [stinger] * (k >= 3)
        before = Counter(backend.device_calls)
        backend.prefetch([StepJob(s, style, Controls(), 480) for s in live])
        for s in live:
            backend.generate(s, style, Controls(), 480)
        calls = backend.device_calls - before
        if k >= 4:
            sizes += list(calls.elements())
    assert sizes and set(sizes) == {3}, sizes
    assert bed.frame == 20 * 480 and stinger.frame == 17 * 480


def test_speculative_frames_are_used_only_when_nothing_changed(tiny_cache: Path, backend: Any) -> None:
    """``speculate=True``: each step also launches the stream's next frame with its current inputs. A step whose
    inputs are the same takes it (no device call); a change of prompt, control or seed drops it. Either way the
    audio is bit for bit what the same backend makes without speculation."""
    import huggingface_hub.constants as hf_constants

    from cadenza.runtime.backends.base import StepJob

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_constants, "HF_HUB_CACHE", str(tiny_cache))
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        spec = get_backend("magenta", model="tiny", batch_sizes=(1,), warm=False, speculate=True)
    styles = [backend.embed(TextPrompt(p)).vector for p in ("disco funk", "ambient pads")]
    plan = [(0, Controls()), (0, Controls()), (0, Controls(notes=(60,))), (0, Controls(notes=(60,))),
            (1, Controls(notes=(60,))), (1, Controls(notes=(60,), seed=4)), (1, Controls(notes=(60,), seed=4))]
    runs = []
    for on in (True, False):  # one stream: every launch is the batch-1 executable, so the audio must match exactly
        spec.speculate = on
        a = spec.new_stream(1)
        before = dict(spec.speculation)
        out = []
        for style, ctl in plan:
            spec.prefetch([StepJob(a, styles[style], ctl, FRAME)])
            out.append(spec.generate(a, styles[style], ctl, FRAME)[0])
        runs.append(np.concatenate(out))
        if on:  # frames 2, 4 (the note now held, as launched) and 7 reuse; 3 (notes), 5 (prompt) change; 6 reseeds
            assert (spec.speculation["hit"] - before["hit"], spec.speculation["miss"] - before["miss"]) == (3, 2)
    assert np.array_equal(runs[0], runs[1])
    spec.speculate = True
    a, b = spec.new_stream(1), spec.new_stream(2)  # two streams (batch 1 only here: two calls per launch)
    calls = sum(spec.device_calls.values())
    for _ in range(4):
        spec.prefetch([StepJob(a, styles[0], Controls(), FRAME), StepJob(b, styles[1], Controls(), FRAME)])
        spec.generate(a, styles[0], Controls(), FRAME)
        spec.generate(b, styles[1], Controls(), FRAME)
    assert sum(spec.device_calls.values()) - calls == 2 * 5  # one step, then 4 launches ahead, 3 of them used


def test_after_start_up_a_crossfade_and_a_stinger_compile_nothing(backend: Any) -> None:
    """The warm-up ran every compiled step at start-up: streams joining, forking, reseeding and leaving
    (a bed, its crossfade deck forked from it, a stinger) compile nothing, in any batch composition."""
    from cadenza.runtime.backends.base import StepJob

    text = "\n".join(backend.messages)
    assert "batched step for 3 streams compiled in" in text
    assert "warm-up" in text
    style = backend.embed(TextPrompt("dark techno")).vector
    other = backend.embed(TextPrompt("bright strings")).vector
    with _compiles() as compiles:
        bed = backend.new_stream(11)
        backend.prefetch([StepJob(bed, style, Controls(), 480)])
        backend.generate(bed, style, Controls(), 480)
        deck = bed.fork()  # the crossfade's incoming deck starts from the bed's context
        stinger = backend.new_stream(12)
        for k in range(8):
            jobs = [StepJob(bed, style, Controls(), 960), StepJob(deck, other, Controls(seed=5 + k // 4), 960)]
            if 2 <= k < 6:
                jobs.append(StepJob(stinger, other, Controls(temperature=0.9, notes=(50 + k,)), 960))
            if k >= 6:
                jobs = jobs[1:]  # the bed has faded out
            backend.prefetch(jobs)
            for job in jobs:
                backend.generate(job.state, job.style, job.controls, job.frames)
    assert compiles == []
    assert deck.frames_generated > 0 and stinger.frames_generated > 0


def test_bf16_weights_agree_with_fp32_on_most_tokens(tiny_cache: Path, backend: Any) -> None:
    """``precision="bf16"``: the depthformer's weights in bfloat16; tokens against fp32 on the same seed and
    conditioning (teacher-forced). Random weights give flat logits (near-ties), so this is a floor for the
    real checkpoints; the figure goes to bench/magenta.md."""
    import huggingface_hub.constants as hf_constants

    from cadenza.runtime.backends.magenta.backend import token_agreement

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_constants, "HF_HUB_CACHE", str(tiny_cache))
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        bf16 = get_backend("magenta", model="tiny", precision="bf16", batch_sizes=(1,), warm=False)
    leaves = bf16.system._params["params"]["depthformer"]
    import jax

    assert {str(x.dtype) for x in jax.tree.leaves(leaves) if x.dtype.kind == "f" or "bfloat" in str(x.dtype)} \
        == {"bfloat16"}
    agreement = token_agreement(backend, bf16, backend.embed(TextPrompt("disco funk")).vector, frames=6)
    print(f"bf16 token agreement with fp32 (tiny, teacher-forced): {agreement}")
    assert agreement["tokens_compared"] == 6 * 12
    assert agreement["teacher_forced"] >= 0.5


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
        server = ServeProcess(["--backend", "magenta", "--model", "tiny", "--lookahead", "200",
                               "--batch-sizes", "1"], tmp_path,
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
