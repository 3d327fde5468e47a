"""What a newcomer meets first: the examples, ``cadenza serve`` without a sound card, ``make bench`` on a fresh
machine.

Each example folder says what it shows and how to run it, and the clients find
a runtime through flags or the ``CADENZA_*`` environment variables (read by the
SDK): ``examples/minimal_client.py`` runs for real (about 8 s) against a
``cadenza serve`` started without options, once told where by the environment
only, once by flags (with the environment pointing at a dead port, so the
flags must win). The pygame game's own acceptance test is ``test_pygame.py``.
A missing sound card makes ``serve`` name ``--sink null`` / ``--sink wav:PATH``;
a machine without JACK makes the benchmark name the packages to install.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server_harness import REPO, ServeProcess, child_env, free_ports

EXAMPLES = REPO / "examples"
MINIMAL = EXAMPLES / "minimal_client.py"
RUN_TIMEOUT_S = 90
BEAT_LINE = re.compile(r"^beat +\d+  bar +\d+  +\d+\.\d bpm  at +\d+\.\d\d s$", re.M)


def example_folders() -> list[Path]:
    return [EXAMPLES, *sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))]


@pytest.mark.parametrize("folder", example_folders(), ids=lambda p: p.name)
def test_every_example_folder_has_a_readme_saying_how_to_run_it(folder: Path) -> None:
    readme = folder / "README.md"
    assert readme.is_file(), f"{folder.relative_to(REPO)} has no README.md"
    text = readme.read_text()
    assert text.startswith("# "), f"{readme}: no title"
    assert "```sh" in text, f"{readme}: no shell block saying how to run it"
    for name in sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in (".py", ".yaml", ".csv")):
        assert name in text, f"{readme} does not mention {name}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    serve = ServeProcess([], tmp_path_factory.mktemp("examples"))  # as a newcomer starts it: no options
    serve.start()
    try:
        yield serve
    finally:
        serve.kill()


def run_minimal(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(MINIMAL), *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, env={**child_env(), **env}, cwd=REPO)


def test_minimal_client_finds_the_runtime_through_the_environment(server: ServeProcess) -> None:
    done = run_minimal([], {"CADENZA_CONTROL": server.ep.local("control"), "CADENZA_EVENTS": server.ep.local("events")})
    assert done.returncode == 0, done.stderr
    assert len(BEAT_LINE.findall(done.stdout)) >= 3, done.stdout


def test_minimal_client_flags_win_over_the_environment(server: ServeProcess) -> None:
    dead = f"tcp://127.0.0.1:{free_ports(1)[0]}"
    done = run_minimal(["--control", server.ep.local("control"), "--events", server.ep.local("events")],
                       {"CADENZA_CONTROL": dead, "CADENZA_EVENTS": dead})
    assert done.returncode == 0, done.stderr
    assert len(BEAT_LINE.findall(done.stdout)) >= 3, done.stdout


def test_serve_without_the_sound_card_says_how_to_run_without_one(tmp_path: Path) -> None:
    """``cadenza serve`` whose device is missing (here: named, so the test means the same on any machine) exits 2
    and names ``--sink null`` and ``--sink wav:PATH``."""
    c, e = free_ports(2)
    done = subprocess.run([sys.executable, "-m", "cadenza", "serve", "--sink", "device:no-such-card-here",
                           "--control", f"tcp://127.0.0.1:{c}", "--events", f"tcp://127.0.0.1:{e}", "--audio", "none"],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=child_env(), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "--sink null" in lines[0] and "--sink wav:PATH" in lines[0], lines[0]


def test_bench_names_the_system_packages_its_jack_rows_need(tmp_path: Path) -> None:
    """On a machine without jackd (an empty PATH here) the benchmark's JACK rows and the soak say what to install,
    instead of failing on 'PortAudio is missing' or a missing program; ``make soak`` exits 2 saying so."""
    code = ("from bench.jack import install_hint, missing_packages; m = missing_packages(); "
            "print(' '.join(m)); print(install_hint(m))")
    env = {**child_env(), "PATH": str(tmp_path)}  # no jackd, no jack_lsp
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    missing, hint = done.stdout.splitlines()
    assert "jackd2" in missing.split(), done.stdout
    assert hint.startswith("sudo apt install jackd2"), hint
    soak = subprocess.run([sys.executable, "-m", "bench.soak", "--minutes", "0.1", "--out", str(tmp_path / "s.md")],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, cwd=REPO)
    assert soak.returncode == 2 and "sudo apt install jackd2" in soak.stderr, soak.stderr
