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
import time
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


# ----------------------------------------------------------------------------- the installation, on other ports


def test_installation_steps_work_on_other_ports_through_the_environment(tmp_path: Path) -> None:
    """examples/installation/README.md as written, with only ``CADENZA_CONTROL``/``CADENZA_EVENTS`` pointing at a
    runtime on fresh ports: ``cadenza osc`` (no --control) drives that runtime, and ``sensors.py`` says how many
    updates arrived (exit 0); against a bridge that is not there it exits 1 saying what to check."""
    pytest.importorskip("pythonosc")
    with ServeProcess(["--graph", str(EXAMPLES / "installation" / "graph.yaml")], tmp_path) as serve:
        env = {**child_env(), "CADENZA_CONTROL": serve.ep.local("control"), "CADENZA_EVENTS": serve.ep.local("events")}
        log = tmp_path / "osc.out"
        with open(log, "wb") as out:
            bridge = subprocess.Popen([sys.executable, "-m", "cadenza", "osc", "--listen", "127.0.0.1:0"],
                                      stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            m = None
            for _ in range(RUN_TIMEOUT_S * 10):
                m = re.search(r"listening on 127\.0\.0\.1:(\d+) -> control=(\S+) \(from (\S+)\)", log.read_text())
                if m or bridge.poll() is not None:
                    break
                time.sleep(0.1)
            assert m is not None, log.read_text()
            assert m[2] == serve.ep.local("control") and m[3] == "$CADENZA_CONTROL", m[0]
            sensors = [sys.executable, str(EXAMPLES / "installation" / "sensors.py"), "--seconds", "1.5", "--quiet"]
            done = subprocess.run([*sensors, "--port", m[1]], capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_S, env=env, cwd=REPO)
            assert done.returncode == 0, done.stdout + done.stderr
            assert re.search(r"the runtime received [1-9]\d* parameter updates", done.stdout), done.stdout
            nobody = free_ports(1)[0]  # no bridge listens there: the runtime hears nothing
            done = subprocess.run([*sensors, "--port", str(nobody)], capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_S, env=env, cwd=REPO)
            assert done.returncode == 1, done.stdout + done.stderr
            assert "received no parameter update" in done.stderr and f"127.0.0.1:{nobody}" in done.stderr
            assert "Traceback" not in done.stderr
        finally:
            bridge.terminate()
            bridge.wait(15)


@pytest.mark.parametrize("script, extra", [
    (EXAMPLES / "installation" / "sensors.py", "osc"),
    (EXAMPLES / "pygame_game" / "game.py", "pygame"),
])
def test_an_example_without_its_extra_says_which_to_install(script: Path, extra: str, tmp_path: Path) -> None:
    """``pip install cadenza`` without the extra (simulated: a module on PYTHONPATH that fails to import): one line
    naming ``pip install 'cadenza[EXTRA]'``, exit 2, no traceback."""
    module = {"osc": "pythonosc", "pygame": "pygame"}[extra]
    (tmp_path / f"{module}.py").write_text(f"raise ModuleNotFoundError(\"No module named {module!r}\", "
                                           f"name={module!r})\n")
    env = {**child_env(), "PYTHONPATH": f"{tmp_path}:{child_env().get('PYTHONPATH', '')}".rstrip(":")}
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, env=env, cwd=REPO)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"pip install 'cadenza[{extra}]'" in lines[0], lines[0]
