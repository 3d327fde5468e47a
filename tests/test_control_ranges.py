"""Control values at the edges of what the wire holds and what the magenta model takes (outside test 15).

The generic ranges (``Controls``, a graph's literals, a graph's computed
values) reach exactly what the wire's fields hold: ``top_k`` a uint32 ≥ 1,
``seed`` any uint64. The magenta backend takes every such value without its
step failing: a seed as its 64-bit key, and ``top_k``, ``temperature`` and
``guidance`` beyond what its model takes clamped with a ``clamped:`` warning
(the SetControls reply carries it). CLI flags the backend cannot use are one
line naming the flag and the value, exit 2.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cadenza.errors import UsageError
from cadenza.runtime.backends.base import Controls
from cadenza.runtime.graph.loader import InvalidGraph, loads_graph

U32, U64 = 2**32 - 1, 2**64 - 1


def test_controls_take_every_value_the_wire_holds_and_name_the_range_beyond() -> None:
    """Findings 1 and 2: top_k up to 2**32-1 and seed up to 2**64-1 are valid (their uint32/uint64 fields)."""
    assert Controls(top_k=U32, seed=U64).top_k == U32
    for kwargs, field, bad in (({"top_k": U32 + 1}, "top_k", U32 + 1), ({"top_k": 0}, "top_k", 0),
                               ({"seed": U64 + 1}, "seed", U64 + 1), ({"seed": -1}, "seed", -1)):
        with pytest.raises(UsageError) as info:
            Controls(**kwargs)  # type: ignore[arg-type]
        text = str(info.value)
        hi = U32 if field == "top_k" else U64
        assert info.value.where == field and f"<= {hi}" in text and text.endswith(f"got {bad}"), text
    with pytest.raises(UsageError, match=r"temperature: must be a finite number > 0, got inf"):
        Controls(temperature=float("inf"))


def test_a_graph_literal_beyond_the_wire_is_refused_with_file_line() -> None:
    text = ("cadenza_graph: 1\nprompts: {a: techno}\n"
            "states:\n  list:\n    calm: {}\n    loud:\n      controls: {top_k: 5000000000, seed: 3}\n")
    with pytest.raises(InvalidGraph) as info:
        loads_graph(text)
    [issue] = info.value.issues
    assert issue.line == 7 and issue.path.endswith("controls.top_k") and "<= 4294967295" in issue.message, issue
    loads_graph(text.replace("5000000000", str(U32)).replace("seed: 3", f"seed: {U64}"))  # the wire's largest: fine


def test_computed_top_k_and_seed_are_clamped_to_what_the_wire_holds() -> None:
    from cadenza.runtime.graph.nodes import Env, sanitize_control

    env = Env({})
    assert sanitize_control("top_k", 1e12, env, "controls.top_k") == U32
    assert sanitize_control("seed", 1e300, env, "controls.seed") == U64
    assert sanitize_control("top_k", -5.0, env, "controls.top_k") == 1
    assert sanitize_control("seed", 7.4, env, "controls.seed") == 7
    Controls.from_values({"top_k": U32, "seed": U64})


# ---------------------------------------------------------------- magenta (no model needed)
def _magenta() -> Any:
    pytest.importorskip("magenta_rt", reason="the magenta extra is not installed (pip install 'cadenza[magenta]')")
    from cadenza.runtime.backends.magenta import backend

    return backend


def test_magenta_clamps_what_its_model_cannot_take_with_a_warning() -> None:
    """Findings 1 and 3: top_k over the model's tokens, guidance over 7, temperature over 100: clamped, said."""
    m = _magenta()
    ranges = m.model_ranges(1024)
    assert ranges["guidance"] == (0.0, 7.0)
    warnings = m.clamp_warnings(Controls(top_k=2**31, guidance=8.0, temperature=1e300), ranges)
    assert len(warnings) == 3 and all(w.startswith("clamped: ") for w in warnings), warnings
    top_k, guidance, temperature = (next(w for w in warnings if f" {n} " in w) for n in ("top_k", "guidance",
                                                                                       "temperature"))
    assert "2147483648" in top_k and "it plays as 1024" in top_k
    assert "guidance 8 " in guidance and "0–7" in guidance and "it plays as 7" in guidance
    assert "1e+300" in temperature and "it plays as 100" in temperature
    assert m.clamp_warnings(Controls(top_k=1024, guidance=7.0, temperature=1e-300, seed=U64), ranges) == []


def test_magenta_seed_keys_take_all_64_bits() -> None:
    """Finding 2: a seed of 2**63 or more made the stream's key overflow (every new stream failed)."""
    m = _magenta()
    import jax
    import numpy as np

    key = m._key
    assert np.array_equal(key(7), jax.random.split(jax.random.PRNGKey(7), 1))  # the library's key, as before
    keys = {tuple(np.asarray(key(s)).reshape(-1)) for s in (U64, 2**63, 2**32 - 1, 2**32, 2**32 + 7, 7)}
    assert len(keys) == 6  # every bit counts: no two of these share a key
    assert np.array_equal(key(U64 + 1), key(0))  # modulo 2**64: no int makes it fail


# ---------------------------------------------------------------- the CLI
def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu"}
    env.pop("CADENZA_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "cadenza", "serve", "--backend", "magenta", "--sink", "null", *args],
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          cwd=Path(__file__).resolve().parents[1])


def _one_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    err = done.stderr.strip()
    assert done.returncode == 2, (done.returncode, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err and "internal error" not in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.mark.parametrize("text, words", [("1,,2", ("empty item",)), ("1,2,", ("empty item",)),
                                         ("1,1,2", ("1 more than once",))])
def test_batch_sizes_with_an_empty_item_or_a_repeat_are_refused(text: str, words: tuple[str, ...]) -> None:
    """Finding 10."""
    _one_line(_serve("--batch-sizes", text), "--batch-sizes", repr(text), *words)


def test_device_without_that_accelerator_is_one_line_exit_2() -> None:
    """Finding 5: --device gpu on a box without CUDA for JAX (was 'internal error: AssertionError', exit 1)."""
    _magenta()
    if importlib.util.find_spec("jax_cuda12_plugin") is not None or importlib.util.find_spec("jax_cuda13_plugin"):
        pytest.skip("JAX has CUDA support here")
    _one_line(_serve("--model", "tiny", "--device", "gpu"), "--device", "gpu", "no GPU", "--device cpu")
    if importlib.util.find_spec("libtpu") is None:
        _one_line(_serve("--model", "tiny", "--device", "tpu"), "--device", "tpu", "no TPU", "--device cpu")


def test_model_choices_are_checkpoints_only() -> None:
    """Finding 14: 'resources' (the MusicCoCa towers) is no model: not offered, and refused like any other name."""
    _magenta()
    for name in ("resources", "nosuch"):
        err = _one_line(_serve("--model", name), "--model", repr(name), "mrt2_small, mrt2_base, tiny")
        assert "resources" not in err.replace(repr(name), ""), err


# ---------------------------------------------------------------- end to end: a magenta serve
@pytest.mark.slow
def test_magenta_serve_plays_on_through_every_value_the_wire_holds(tiny_cache: Path, jax_compile_cache: Path,
                                                                   tmp_path: Path) -> None:
    """Findings 1-3 through the wire: top_k 2**31 (every step failed: silence), seed 2**64-1 (every new stream
    failed), guidance 8 and temperature 1e300 (silent, a raw numpy warning on stderr) — now each clamp is a
    ``clamped:`` warning in the Ok (LoadGraph's for a graph's literals), and the music, a crossfade deck and a
    stinger play on without a fault."""
    _magenta()
    from server_harness import ServeProcess

    from cadenza.proto import cadenza_v1_pb2 as pb
    from cadenza.sdk import Client

    env = {"HF_HUB_CACHE": str(tiny_cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": str(jax_compile_cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    graph = tmp_path / "g.yaml"
    graph.write_text("cadenza_graph: 1\nprompts: {a: techno, b: ambient}\nmix: [{prompt: a, weight: 1}]\n"
                     "controls: {guidance: 9}\n"
                     "states:\n  list: {calm: {}, loud: {mix: [{prompt: b, weight: 1}],\n"
                     "                  controls: {temperature: 500}}}\n"
                     "transitions: [{from: any, to: any, quantize: now, fade: 1 beats, mode: crossfade}]\n"
                     "stingers: {hit: {prompt: b, length: 1 beats, quantize: now, cooldown: 0}}\n"
                     "triggers: {go: {stinger: hit}}\n")
    with ServeProcess(["--backend", "magenta", "--model", "tiny", "--batch-sizes", "1,3", "--allow-dir",
                       str(tmp_path)], tmp_path, env=env) as server, \
            Client(server.ep.local("control"), server.ep.local("events"), timeout=30, heartbeat=0) as music:
        loaded = music.load_graph(graph)  # a graph's literals the model takes only clamped: said at the load
        assert [w.split(":")[0] for w in loaded.warnings if "clamped: " in w] == [
            "controls.guidance", "states.loud.controls.temperature"], loaded.warnings
        ack = music.set_controls(top_k=2**31, seed=2**64 - 1, guidance=8.0, temperature=1e300)
        clamped = sorted(w.split()[1] for w in ack.warnings if w.startswith("clamped: "))
        assert clamped == ["guidance", "temperature", "top_k"], ack.warnings
        music.set_state("loud")  # a crossfade deck: a new stream, reseeded from seed 2**64-1
        music.trigger("go")  # a stinger: another
        t0 = time.monotonic()
        start = music.status().stream_time
        while music.status().stream_time < start + 2 * 48_000 and time.monotonic() - t0 < 90:
            time.sleep(0.2)
        status = music._call(pb.GetStatus())
        assert status.stream_time >= start + 2 * 48_000, "the stream stalled"
        assert dict(status.faults) == {} and status.faults_total == 0, (dict(status.faults), status.faults_total)
    assert "RuntimeWarning" not in server.stderr_text and "Traceback" not in server.stderr_text, server.stderr_text
