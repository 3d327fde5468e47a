"""Shared test fixtures, and the gate for tests that need a real audio device.

Tests marked ``@pytest.mark.audio_device`` get the session fixture
``audio_output``: the device selector (``"jack"``, or ``None`` for the default
device) a :class:`DeviceSink` should open. It prefers a JACK server, because a
JACK dummy server clocks audio like a sound card without making any noise:

1. a JACK server that is already running is used as is;
2. otherwise, if ``jackd`` is installed, a dummy server
   (``jackd --no-realtime -d dummy -r 48000 -p 960``) is started for the
   session and stopped at its end;
3. otherwise PortAudio's default output device, if it has one.

When none of these gives a device the test is skipped on a developer machine,
but fails when ``CADENZA_REQUIRE_AUDIO=1`` (CI sets it), so CI can never pass by
skipping the audio tests.

Fault tests that kill, restart or load an audio server get one of their own
from the ``private_jack`` fixture: a factory of :class:`JackServer`, a JACK
dummy server under a name of its own (``jackd -n NAME``), which a runtime
reaches through ``JACK_DEFAULT_SERVER`` in ``server.env`` — no other test's
server is touched. It skips/fails like ``audio_output`` when ``jackd`` is
missing. Both are :class:`bench.jack.JackServer`, the one class that starts
JACK servers for the tests and the benchmarks.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import numpy as np
import pytest
import zmq

from bench.jack import JackServer, JackStartError, running

# Children inherit an IGNORED signal across exec (only handlers are reset): a suite started with nohup, or as a
# background job of a non-interactive shell (SIGINT ignored), would hand every runtime, render and ctl process it
# starts an ignored SIGHUP/SIGINT, and the tests of what those signals do would fail for the launcher's sake.
import signal as _signal  # noqa: E402

if _signal.getsignal(_signal.SIGINT) == _signal.SIG_IGN:
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
if _signal.getsignal(_signal.SIGHUP) == _signal.SIG_IGN:
    _signal.signal(_signal.SIGHUP, _signal.SIG_DFL)

SAMPLE_RATE = 48_000
_jack_names = itertools.count()


def _require_audio() -> bool:
    return os.environ.get("CADENZA_REQUIRE_AUDIO", "") == "1"


def _no_audio(reason: str) -> None:
    """Skip, or fail when CI demands a real audio device."""
    if _require_audio():
        pytest.fail(f"{reason} (CADENZA_REQUIRE_AUDIO=1 requires an audio device)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bool]:
    """True when a JACK server runs for this session (started here if needed: the default server, which
    PortAudio's JACK host API reaches without a name)."""
    if running(None):
        yield True
        return
    if not JackServer.available():
        yield False
        return
    server = JackServer(tmp_path_factory.mktemp("jackd"), default=True)
    try:
        server.start()
    except JackStartError as exc:
        _no_audio(str(exc))
    try:
        yield True
    finally:
        # PortAudio holds a JACK client and aborts the process at exit if the
        # server is gone first: let it go before stopping the server.
        if "sounddevice" in sys.modules:
            from cadenza.runtime.sinks.portaudio import release_portaudio

            release_portaudio()
        server.stop()


@pytest.fixture(scope="session")
def audio_output(jack_server: bool) -> str | None:
    """The device selector for a real output device, or skip/fail when none."""
    from cadenza.errors import AudioError
    from cadenza.runtime.sinks import portaudio as device_mod

    problem = ""
    try:
        if jack_server and "sounddevice" in sys.modules:
            # PortAudio lists devices once, at initialisation; the server may be newer.
            device_mod.rescan_devices()
        if jack_server:
            try:
                device_mod.find_output_device("jack")
                return "jack"
            except AudioError:
                pass  # PortAudio without JACK support: try the default device
        device_mod.find_output_device(None)
        return None
    except AudioError as exc:
        problem = str(exc)
    if not jack_server and shutil.which("jackd") is None:
        problem += " (jackd is not installed either: `apt install jackd2` lets the tests start a dummy JACK server)"
    _no_audio(f"no audio output device: {problem}")
    return None  # unreachable: _no_audio raises


@pytest.fixture(autouse=True)
def _audio_device_gate(request: pytest.FixtureRequest) -> None:
    """Give every ``audio_device`` test its device (or skip/fail it)."""
    if request.node.get_closest_marker("audio_device") is not None:
        request.getfixturevalue("audio_output")


def _sine(frames: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(frames, dtype=np.float64) / SAMPLE_RATE
    left = amplitude * np.sin(2 * np.pi * freq * t)
    right = amplitude * np.cos(2 * np.pi * freq * t)  # a quarter period ahead
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.fixture
def make_sine() -> Callable[..., np.ndarray]:
    """``make_sine(frames, freq=440.0, amplitude=0.5)``: a stereo float32 ``(frames, 2)`` sine at 48 kHz."""
    return _sine


# ----------------------------------------------------------------------------- a JACK server of a test's own


@pytest.fixture
def private_jack(tmp_path: Path) -> Iterator[Callable[..., JackServer]]:
    """``private_jack(realtime=True)``: start a :class:`JackServer` of this test's own (stopped at the end).

    Real-time by default, as a production JACK server runs: its clock and its
    clients' process threads then keep time whatever else loads the machine
    (other tests, other processes), so a fault test measures its own fault.
    """
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        _no_audio("jackd is not installed (`apt install jackd2`): no JACK server for this fault test")
    servers: list[JackServer] = []

    def make(realtime: bool = True) -> JackServer:
        server = JackServer(tmp_path, name=f"cadenza-test-{os.getpid()}-{next(_jack_names)}", realtime=realtime,
                            rt_priority=70, fallback=True)
        servers.append(server)
        try:
            return server.start()
        except JackStartError as exc:
            _no_audio(str(exc))
            raise  # unreachable: _no_audio raises

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def ctx() -> Iterator[zmq.Context[Any]]:
    """A ZeroMQ context for a test module's clients (a module may define its own, per test)."""
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.destroy(linger=0)


# ----------------------------------------------------------------------------- the tiny Magenta model


@pytest.fixture(scope="session")
def jax_compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JAX's persistent compilation cache for this session, ``<basetemp>/jax-compile-cache``, on in this process too.

    Every ``cadenza serve --backend magenta`` child gets it through ``JAX_COMPILATION_CACHE_DIR``; here it is on
    from the first use (before the magenta tests compile anything), so the steps the tests' in-process backend
    compiles are loaded, not compiled again, by the children that start later with the same batch sizes.
    """
    path = tmp_path_factory.getbasetemp() / "jax-compile-cache"
    path.mkdir(exist_ok=True)
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    return path


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory, jax_compile_cache: Path) -> Path:
    """A Hugging Face cache holding the tiny Magenta model, built once per session by the CLI as a user would
    (``cadenza models make-tiny``); the magenta tests run against it offline."""
    import subprocess

    cache = tmp_path_factory.mktemp("hf") / "hub"
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu",
           "JAX_COMPILATION_CACHE_DIR": str(jax_compile_cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    env.pop("CADENZA_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "cadenza", "models", "make-tiny"], env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.is_symlink() and "snapshots" in path.parts
    assert path.name == "cadenza_tiny.safetensors"
    return cache
