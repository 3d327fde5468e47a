"""The ``cadenza`` command line as a user runs it: real subprocesses, real files.

Every command runs as ``python -m cadenza …`` with this interpreter (plus the
installed ``cadenza`` console script once). The runs are started together in a
module fixture, since each pays the interpreter and numba start-up, and the
tests then look at exit codes, stdout/stderr and the files written.

Long renders, WAV/FLAC equality, tempo measured from the audio, determinism and
the bad-prompt/bad-number errors are covered by ``test_render_quality.py``;
here: help and version, the FLAC + ``--beats`` outputs of a short render,
``words``, ``demo``'s contract (the last stdout line is the WAV's absolute
path), and the argument errors (exit 2, one line on stderr, the option named).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import cadenza

SR = 48_000
TIMEOUT_S = 120
EXIT_USAGE = 2

RENDER_BPM = 126.0
RENDER_SECONDS = 3
DEMO_SECONDS = 8


@dataclass
class Done:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"cadenza {' '.join(self.args)} → exit {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"

    @property
    def stderr_lines(self) -> list[str]:
        return [ln for ln in self.stderr.splitlines() if ln.strip()]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env.pop("CADENZA_DEBUG", None)  # errors must be one line, as a user sees them
    return env


def _start(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(), cwd=cwd)


def console_script() -> str | None:
    """The ``cadenza`` script installed next to this interpreter (the venv's bin), if any."""
    return shutil.which("cadenza", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def runs(tmp: Path) -> Iterator[dict[str, Done]]:
    out = str(tmp / "never.wav")  # the error cases must not create it
    jobs: dict[str, tuple[str, ...]] = {
        "help": ("--help",),
        "render_help": ("render", "--help"),
        "version": ("--version",),
        "render": ("render", "--prompt", "dark techno:1", "--prompt", "ambient pads:0.25", "--bpm", f"{RENDER_BPM:g}",
                   "--seconds", str(RENDER_SECONDS), "--seed", "3", "--out", str(tmp / "x.flac"),
                   "--beats", str(tmp / "b.json")),
        "words": ("words",),
        "words_search": ("words", "--search", "harp"),
        "words_explain": ("words", "--explain", "rainy night jazz cafe, drumming, flibber"),
        "words_explain_nothing": ("words", "--explain", "qqqq zzzz"),
        # a relative --out, resolved against the working directory, must come back absolute
        "demo": ("demo", "--seconds", str(DEMO_SECONDS), "--wav-only", "--out", "sub/d.wav"),
        "unknown_command": ("frobnicate",),
        "unknown_option": ("render", "--prompt", "techno", "--out", out, "--frobnicate"),
        "bpm_abc": ("render", "--prompt", "techno", "--bpm", "abc", "--out", out),
        "seconds_0": ("render", "--prompt", "techno", "--seconds", "0", "--out", out),
        "seconds_neg": ("render", "--prompt", "techno", "--seconds", "-1", "--out", out),
        "bad_scale": ("render", "--prompt", "techno", "--scale", "H minor", "--out", out),
        "density_2": ("render", "--prompt", "techno", "--density", "2", "--out", out),
        "unknown_word": ("render", "--prompt", "dark techno flibber", "--seconds", "1", "--out", str(tmp / "w.wav")),
    }
    procs = {name: (args, _start([sys.executable, "-m", "cadenza", *args], tmp)) for name, args in jobs.items()}
    script = console_script()
    if script is not None:
        procs["script_version"] = (("--version",), _start([script, "--version"], tmp))
    yield _collect(procs)


def _collect(procs: dict[str, tuple[tuple[str, ...], subprocess.Popen[str]]]) -> dict[str, Done]:
    """Each started process's outcome, by name (killed past TIMEOUT_S)."""
    done: dict[str, Done] = {}
    for name, (args, proc) in procs.items():
        try:
            so, se = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            so, se = proc.communicate()
        done[name] = Done(args, proc.returncode, so, se)
    return done


def ok(done: Done) -> None:
    assert done.returncode == 0, str(done)
    assert "Traceback" not in done.stderr, str(done)


# ----------------------------------------------------------------------------- help and version


def test_help(runs: dict[str, Done]) -> None:
    done = runs["help"]
    ok(done)
    for command in ("render", "demo", "words"):
        assert command in done.stdout, str(done)


def test_render_help(runs: dict[str, Done]) -> None:
    done = runs["render_help"]
    ok(done)
    for option in ("--prompt", "--prompt-file", "--bpm", "--scale", "--seconds", "--seed", "--out", "--beats",
                   "--mute-bass", "--mute-drums"):
        assert option in done.stdout, f"{option} missing from render --help\n{done}"


def test_version(runs: dict[str, Done]) -> None:
    ok(runs["version"])
    assert runs["version"].stdout.strip() == f"cadenza {cadenza.__version__}"


def test_console_script_is_installed_next_to_the_interpreter(runs: dict[str, Done]) -> None:
    script = console_script()
    assert script is not None, f"no `cadenza` script in {Path(sys.executable).parent}"
    assert Path(script).parent == Path(sys.executable).parent
    ok(runs["script_version"])
    assert runs["script_version"].stdout.strip() == f"cadenza {cadenza.__version__}"


# ----------------------------------------------------------------------------- render


def test_render_writes_flac_of_the_right_length(runs: dict[str, Done], tmp: Path) -> None:
    import soundfile as sf

    done = runs["render"]
    ok(done)
    assert done.stderr_lines == [], str(done)  # known words, honoured controls: nothing to warn about
    info = sf.info(str(tmp / "x.flac"))
    assert info.format == "FLAC"
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, RENDER_SECONDS * SR)
    pcm, _ = sf.read(str(tmp / "x.flac"), dtype="float32", always_2d=True)
    assert float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > 0.01
    assert "x.flac" in done.stdout


def test_render_beats_json_is_the_grid(runs: dict[str, Done], tmp: Path) -> None:
    ok(runs["render"])
    doc = json.loads((tmp / "b.json").read_text())
    assert doc["sample_rate"] == SR
    beats = doc["beats"]
    period = 60.0 / RENDER_BPM
    assert len(beats) == int(np.ceil(RENDER_SECONDS / period))
    times = np.array([b["time"] for b in beats])
    frames = np.array([b["frame"] for b in beats])
    assert times[0] == 0.0
    # 60/bpm apart, to a sample (frames are whole samples; times are rounded to 1 µs)
    assert np.all(np.abs(np.diff(times) - period) <= 1.0 / SR + 2e-6), np.diff(times)
    assert np.all(np.abs(frames - np.round(np.arange(len(beats)) * period * SR)) <= 1)
    assert np.allclose(times, frames / SR, atol=1e-6)
    assert [b["beat"] for b in beats] == list(range(len(beats)))
    assert [b["beat_in_bar"] for b in beats] == [i % 4 for i in range(len(beats))]
    assert [b["bar"] for b in beats] == [i // 4 for i in range(len(beats))]
    assert [b["downbeat"] for b in beats] == [i % 4 == 0 for i in range(len(beats))]
    assert all(b["bpm"] == RENDER_BPM for b in beats)
    # bars: every 4th beat
    assert doc["bars"] == [b["time"] for b in beats[::4]]


def test_unknown_word_renders_with_a_warning(runs: dict[str, Done], tmp: Path) -> None:
    import soundfile as sf

    done = runs["unknown_word"]
    ok(done)
    assert "flibber" in done.stderr and "warning" in done.stderr.lower(), str(done)
    assert sf.info(str(tmp / "w.wav")).frames == SR


# ----------------------------------------------------------------------------- words and demo


def test_words_lists_every_category_and_each_word_is_understood(runs: dict[str, Done]) -> None:
    import re

    from cadenza.runtime.backends.synth import vocabulary

    done = runs["words"]
    ok(done)
    listed: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        head, _, rest = line.partition("): ")
        name, _, about = head.partition(" (")
        count = int(about.split(";")[0])
        # "headword (alias, alias), headword, …": every name, headwords and aliases alike
        words = [w.strip() for w in re.split(r",|\(|\)", rest) if w.strip()]
        assert count == len(words), f"{name}: the count {count} is not the number of words {len(words)}"
        listed[name] = words
    filler = listed.pop("filler")  # the last line: filler words, skipped without a warning
    assert set(filler) == vocabulary.STOP_WORDS and "vibes" in filler
    assert list(listed) == list(vocabulary.CATEGORIES)
    assert sum(len(w) for w in listed.values()) >= 1000
    for word in ("techno", "drum and bass", "lo-fi"):
        assert word in listed["genres"]
    assert "piano" in listed["instruments"] and "dark" in listed["moods"] and "vinyl" in listed["textures"]
    assert "afrobeat" in listed["world"] and "80s" in listed["eras"] and "boss battle" in listed["game"]
    assert "jazz cafe" in listed["scenes"]
    for words in listed.values():
        for word in words:
            assert vocabulary.parse_prompt(word).unknown == (), f"`cadenza words` lists {word!r}, the parser rejects it"


def test_words_search_and_explain(runs: dict[str, Done]) -> None:
    done = runs["words_search"]
    ok(done)
    assert any(line.startswith("celtic harp [instruments]: ") for line in done.stdout.splitlines()), str(done)
    assert all("harp" in line.split(" [")[0] for line in done.stdout.splitlines()), str(done)

    done = runs["words_explain"]
    ok(done)
    out = done.stdout
    assert "'rainy night' → rainy night [scenes]" in out and "'jazz cafe' → jazz cafe [scenes]" in out, out
    assert "'drumming' → drumming" in out or "'drumming' → drums" in out, out
    assert "'flibber' → not understood" in out, out
    assert "tempo=" in out.splitlines()[-1] and "energy=" in out.splitlines()[-1], out

    done = runs["words_explain_nothing"]
    assert done.returncode == 2, str(done)
    assert "no known musical word in prompt 'qqqq zzzz'" in done.stderr and "Traceback" not in done.stderr, str(done)


def test_demo_prints_the_absolute_path_of_its_wav_last(runs: dict[str, Done], tmp: Path) -> None:
    import soundfile as sf

    done = runs["demo"]
    ok(done)
    last = done.stdout.strip().splitlines()[-1]
    path = Path(last)
    assert path.is_absolute(), f"last stdout line {last!r} is not an absolute path"
    assert path == (tmp / "sub" / "d.wav").resolve()
    assert path.is_file()
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, DEMO_SECONDS * SR)
    for state in ("explore", "danger rises", "battle", "victory", "calm again"):
        assert state in done.stdout, f"demo did not announce {state!r}\n{done}"


# ----------------------------------------------------------------------------- argument errors


ERRORS = {
    "unknown_command": ("frobnicate",),
    "unknown_option": ("--frobnicate",),
    "bpm_abc": ("--bpm", "abc"),
    "seconds_0": ("--seconds",),
    "seconds_neg": ("--seconds",),
    "bad_scale": ("--scale", "H minor", "minor", "dorian"),
    "density_2": ("--density", "2"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_bad_arguments_exit_2_with_one_line(name: str, runs: dict[str, Done], tmp: Path) -> None:
    done = runs[name]
    assert done.returncode == EXIT_USAGE, str(done)
    assert "Traceback" not in done.stderr, str(done)
    lines = done.stderr_lines
    assert len(lines) == 1, f"expected one line on stderr\n{done}"
    assert lines[0].startswith("cadenza"), lines[0]
    assert "error" in lines[0]
    for word in ERRORS[name]:
        assert word in lines[0], f"{lines[0]!r} does not name {word!r}"
    assert done.stdout == "", str(done)
    assert not (tmp / "never.wav").exists(), "a rejected command left an output file behind"


# ----------------------------------------------------------------------------- graph inputs (issue 11, outside test)


def test_render_and_check_read_files_the_graph_way(tmp_path: Path) -> None:
    """A FIFO given as --prompt-file or --automation is refused at once (exit 2, one line), as graph audio is;
    an unknown word in a graph prompt is a warning from check and render --graph (exit 0), as from LoadGraph;
    render --graph --beats writes the beats heard."""
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    graph = tmp_path / "g.yaml"
    graph.write_text("cadenza_graph: 1\nprompts: {a: dark techno with flibbertigibbet}\n")
    beats = tmp_path / "b.json"
    jobs = {
        "prompt_fifo": ("render", "--prompt-file", str(fifo), "--seconds", "1", "--out", str(tmp_path / "p.wav")),
        "automation_fifo": ("render", "--graph", str(graph), "--automation", str(fifo), "--seconds", "1",
                            "--out", str(tmp_path / "a.wav")),
        "check": ("graph", "check", str(graph)),
        "render_graph": ("render", "--graph", str(graph), "--seconds", "2", "--out", str(tmp_path / "g.wav"),
                         "--beats", str(beats)),
    }
    done = _collect({name: (args, _start([sys.executable, "-m", "cadenza", *args], tmp_path))
                     for name, args in jobs.items()})
    for name, option in (("prompt_fifo", "--prompt-file"), ("automation_fifo", "--automation")):
        d = done[name]
        assert d.returncode == EXIT_USAGE, str(d)
        assert d.stderr_lines == [f"cadenza render: error: {option}: {str(fifo)!r} is not a regular file (a FIFO)"], \
            str(d)
    for name in ("check", "render_graph"):
        ok(done[name])
        assert "unknown word(s) 'flibbertigibbet' ignored" in done[name].stderr, str(done[name])
    grid = json.loads(beats.read_text())
    assert len(grid["beats"]) >= 3 and grid["beats"][0]["time"] == 0.0, grid


def test_serve_graph_warns_of_unknown_prompt_words_as_check_does(tmp_path: Path) -> None:
    from server_harness import ServeProcess

    graph = tmp_path / "g.yaml"
    graph.write_text("cadenza_graph: 1\nprompts: {a: dark techno with flibbertigibbet}\n")
    with ServeProcess(["--graph", str(graph)], tmp_path) as server:
        server.stop()
    assert f"{graph}: prompt 'dark techno with flibbertigibbet': unknown word(s) 'flibbertigibbet' ignored" in \
        server.stderr_text, server.stderr_text
