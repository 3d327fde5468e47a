"""Tests of the sinks: file (WAV/FLAC), null, and the PortAudio device sink.

The device tests marked ``audio_device`` play into a real audio server (a JACK
dummy server in CI, see ``conftest.py``); the rest need no sound card.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import soundfile

from cadenza.errors import AudioError, UsageError
from cadenza.runtime.sinks.base import Sink
from cadenza.runtime.sinks.file import FileSink
from cadenza.runtime.sinks.null import NullSink

SR = 48_000
PCM24_STEP = 2.0**-23  # one 24-bit quantisation step at full scale 1.0

MakeSine = Callable[..., np.ndarray]


def _write_in_blocks(sink: Sink, audio: np.ndarray, block: int) -> None:
    for start in range(0, len(audio), block):
        sink.write(audio[start : start + block])


# -- FileSink ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"), [("out.wav", "WAVEX"), ("out.flac", "FLAC"), ("LOUD.WAV", "WAVEX")]
)
def test_file_sink_round_trip(tmp_path: Path, make_sine: MakeSine, name: str, fmt: str) -> None:
    audio = make_sine(SR + 123)  # a final short block too
    path = tmp_path / name
    sink = FileSink(path)
    assert isinstance(sink, Sink)
    _write_in_blocks(sink, audio, 480)
    sink.close()
    sink.close()  # idempotent

    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, len(audio))
    assert (info.format, info.subtype) == (fmt, "PCM_24")
    back, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    assert sr == SR
    assert back.shape == audio.shape
    assert np.max(np.abs(back - audio)) <= PCM24_STEP
    assert sink.frames_written == len(audio)


def test_wav_is_valid_before_close(tmp_path: Path, make_sine: MakeSine) -> None:
    """The header follows every block, so a crash between blocks loses nothing written."""
    audio = make_sine(3 * 960)
    path = tmp_path / "partial.wav"
    sink = FileSink(path)
    try:
        _write_in_blocks(sink, audio, 960)
        info = soundfile.info(str(path))
        assert info.frames == len(audio)
        back, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
        assert np.max(np.abs(back - audio)) <= PCM24_STEP
    finally:
        sink.close()


def test_file_sink_clips_and_silences_nonfinite(tmp_path: Path) -> None:
    block = np.array([[2.0, -3.0], [np.nan, np.inf], [0.25, -np.inf]], dtype=np.float32)
    path = tmp_path / "hot.wav"
    with FileSink(path) as sink:
        sink.write(block)
    assert sink.nonfinite_samples == 3
    back, _ = soundfile.read(str(path), dtype="float32", always_2d=True)
    expected = np.array([[1.0, -1.0], [0.0, 1.0], [0.25, -1.0]], dtype=np.float32)
    assert np.max(np.abs(back - expected)) <= PCM24_STEP


@pytest.mark.parametrize("name", ["out.mp3", "out", "out.wav.txt"])
def test_file_sink_bad_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(UsageError) as err:
        FileSink(path)
    message = str(err.value)
    assert str(path) in message
    assert ".wav" in message and ".flac" in message
    assert not path.exists()


def _missing_dir(tmp_path: Path) -> Path:
    return tmp_path / "no" / "such" / "dir" / "out.wav"


def _is_dir(tmp_path: Path) -> Path:
    d = tmp_path / "taken.wav"
    d.mkdir()
    return d


def _parent_is_file(tmp_path: Path) -> Path:
    f = tmp_path / "a-file"
    f.write_bytes(b"")
    return f / "out.flac"


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        (_missing_dir, "No such file or directory"),
        (_is_dir, "Is a directory"),
        (_parent_is_file, "Not a directory"),
    ],
)
def test_file_sink_unwritable_path(
    tmp_path: Path, make_path: Callable[[Path], Path], reason: str
) -> None:
    path = make_path(tmp_path)
    with pytest.raises(AudioError) as err:
        FileSink(path)
    assert str(path) in str(err.value)
    assert reason in str(err.value)
    assert isinstance(err.value.__cause__, OSError)


def test_file_sink_permission_denied(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        path = locked / "out.wav"
    elif Path("/sys/kernel").is_dir():
        path = Path("/sys/kernel/cadenza-test.wav")  # refused even to root
    else:
        pytest.skip("running as root without /sys: no path refuses a write")
    with pytest.raises(AudioError) as err:
        FileSink(path)
    cause = err.value.__cause__
    assert isinstance(cause, OSError) and cause.strerror
    assert str(path) in str(err.value)
    assert cause.strerror in str(err.value)


def test_file_sink_rejects_bad_blocks_and_late_writes(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "x.wav")
    with pytest.raises(UsageError, match=r"\(frames, 2\)"):
        sink.write(np.zeros((10, 3), dtype=np.float32))
    with pytest.raises(UsageError, match=r"\(frames, 2\)"):
        sink.write(np.zeros(10, dtype=np.float32))
    with pytest.raises(UsageError, match="int16"):
        sink.write(np.zeros((10, 2), dtype=np.int16))
    sink.write(np.zeros((10, 2), dtype=np.float64))  # other floats are converted
    sink.close()
    with pytest.raises(UsageError, match="after close"):
        sink.write(np.zeros((10, 2), dtype=np.float32))


# -- NullSink ----------------------------------------------------------------


def test_null_sink_counts() -> None:
    sink = NullSink()
    assert isinstance(sink, Sink)
    for frames in (480, 960, 7):
        sink.write(np.zeros((frames, 2), dtype=np.float32))
    assert sink.frames_written == 480 + 960 + 7
    assert sink.blocks_written == 3
    with pytest.raises(UsageError):
        sink.write(np.zeros((4, 1), dtype=np.float32))
    sink.close()
    sink.close()
    with pytest.raises(UsageError, match="after close"):
        sink.write(np.zeros((4, 2), dtype=np.float32))


# -- DeviceSink without a device -----------------------------------------------


def test_ring_buffer_wraps_and_fills_silence() -> None:
    from cadenza.runtime.sinks.ring import RingBuffer

    ring = RingBuffer(8)
    data = np.arange(40, dtype=np.float32).reshape(20, 2)
    assert ring.push(data[:6]) == 6
    out = np.full((4, 2), -1.0, dtype=np.float32)
    assert ring.pull_into(out) == 4
    np.testing.assert_array_equal(out, data[:4])
    assert ring.push(data[6:]) == 6  # wraps around; only 6 fit
    assert ring.free() == 0 and ring.push(data[12:]) == 0
    out = np.full((10, 2), -1.0, dtype=np.float32)
    assert ring.pull_into(out) == 8  # across the seam, then silence
    np.testing.assert_array_equal(out[:8], data[4:12])
    np.testing.assert_array_equal(out[8:], 0.0)
    assert (ring.written, ring.read, ring.available()) == (12, 12, 0)


def test_package_import_does_not_load_portaudio() -> None:
    code = (
        "import sys, cadenza, cadenza.runtime, cadenza.runtime.sinks, "
        "cadenza.runtime.sinks.device, cadenza.runtime.sinks.file, cadenza.runtime.sinks.null, "
        "cadenza.runtime.sinks.relay; "
        "assert 'sounddevice' not in sys.modules, 'sounddevice imported eagerly'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


class _NoPortAudio(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import sounddevice`` fail the way it does without libportaudio2."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname == "sounddevice" else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        raise OSError("PortAudio library not found")


def test_missing_portaudio_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from cadenza.runtime.sinks.device import DeviceSink, has_output_device

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPortAudio(), *sys.meta_path])
    with pytest.raises(AudioError) as err:
        DeviceSink()
    assert "PortAudio is missing" in str(err.value)
    assert "apt install libportaudio2" in str(err.value)
    assert isinstance(err.value.__cause__, OSError)
    assert has_output_device() is False


def _portaudio() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:
        pytest.skip(f"PortAudio is not installed: {exc}")
    return sounddevice


def test_unknown_device_lists_the_available_ones() -> None:
    _portaudio()
    from cadenza.runtime.sinks.device import DeviceSink, output_devices

    with pytest.raises(AudioError) as err:
        DeviceSink("no-such-device-xyzzy")
    message = str(err.value)
    assert "'no-such-device-xyzzy'" in message
    assert "Available output devices:" in message
    for dev in output_devices():
        assert str(dev) in message


def test_device_sink_rejects_bad_settings() -> None:
    from cadenza.runtime.sinks.device import DeviceSink

    with pytest.raises(UsageError, match="blocksize"):
        DeviceSink(blocksize=-1)
    with pytest.raises(UsageError, match="buffer_seconds"):
        DeviceSink(buffer_seconds=0)


def test_has_output_device_is_a_bool() -> None:
    from cadenza.runtime.sinks.device import has_output_device

    assert isinstance(has_output_device(), bool)


# -- DeviceSink into a real audio server -----------------------------------------


def _jack_connections() -> dict[str, set[str]]:
    """``jack_lsp -c`` as {port: ports it is connected to}."""
    text = subprocess.run(
        ["jack_lsp", "-c"], capture_output=True, text=True, timeout=10,
        env={**os.environ, "JACK_NO_START_SERVER": "1"},
    ).stdout
    graph: dict[str, set[str]] = {}
    port = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")):
            graph[port].add(line.strip())
        elif line.strip():
            port = line.strip()
            graph[port] = set()
    return graph


@pytest.mark.audio_device
def test_device_sink_plays_in_real_time(audio_output: str | None, make_sine: MakeSine) -> None:
    from cadenza.runtime.sinks.device import DeviceSink

    seconds = 3.0
    audio = make_sine(int(seconds * SR), amplitude=0.2)
    block = 960
    sink = DeviceSink(audio_output)
    assert isinstance(sink, Sink)

    # While it plays, look at the JACK graph from another thread (the producer
    # must keep feeding the ring): our ports must reach the server's playback.
    seen: list[dict[str, set[str]]] = []
    watcher: threading.Thread | None = None
    if audio_output == "jack" and shutil.which("jack_lsp"):

        def look() -> None:
            time.sleep(1.0)
            seen.append(_jack_connections())

        watcher = threading.Thread(target=look)

    started = time.monotonic()
    sink.write(audio[:block])
    if watcher is not None:
        watcher.start()
    underruns_after_first_block = sink.underruns
    for start in range(block, len(audio), block):
        sink.write(audio[start : start + block])
    sink.close()
    wall = time.monotonic() - started
    if watcher is not None:
        watcher.join(timeout=15)

    assert sink.frames_written == len(audio)
    assert sink.frames_played == len(audio)
    assert sink.underruns == underruns_after_first_block == 0, repr(sink)
    # The device clock paced the producer: ~real time, not as fast as numpy can copy.
    assert wall >= 0.8 * seconds, f"{seconds} s of audio played in {wall:.2f} s"
    if watcher is not None:
        assert seen, "jack_lsp did not answer during playback"
        feeding = seen[0].get("system:playback_1", set()) | seen[0].get("system:playback_2", set())
        assert any(src.startswith("cadenza-") for src in feeding), seen[0]  # device.jack_client_name()


@pytest.mark.audio_device
def test_device_sink_close_without_drain_stops_early(
    audio_output: str | None, make_sine: MakeSine
) -> None:
    from cadenza.runtime.sinks.device import DeviceSink

    audio = make_sine(SR, amplitude=0.1)  # one block twice the ring
    sink = DeviceSink(audio_output, buffer_seconds=0.5)
    sink.write(audio)  # returns once all but the last 0.5 s has been taken
    assert sink.frames_played >= len(audio) - SR // 2
    sink.close(drain=False)
    assert sink.closed
    assert sink.frames_played < len(audio)
    with pytest.raises(UsageError, match="after close"):
        sink.write(audio[:10])
