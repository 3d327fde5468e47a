"""Run the Node client's own tests (``node --test`` in sdk/js/test) from pytest, so ``make test`` covers them.

The Node tests start their own ``cadenza serve`` processes with this Python
(``CADENZA_PYTHON``). Without Node.js ≥ 18, or without the client's packages
(``npm ci`` in sdk/js, which ``.ci/run`` does), the test skips through
:func:`server_harness.require` — and so fails in CI (``CADENZA_REQUIRE_AUDIO=1``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from server_harness import REPO, require

SDK_JS = REPO / "sdk" / "js"
NODE_TIMEOUT_S = 240
MIN_NODE = 18


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        require("Node.js is not installed (the JS client's tests need node >= 18: apt install nodejs npm)")
        raise AssertionError("unreachable")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    major = re.match(r"v(\d+)\.", version)
    if major is None or int(major.group(1)) < MIN_NODE:
        require(f"node {version or '?'} is too old for the JS client (needs >= {MIN_NODE})")
    for package in ("zeromq", "protobufjs"):
        if not (SDK_JS / "node_modules" / package).is_dir():
            require(f"the JS client's packages are not installed ({package} missing): run `npm ci` in {SDK_JS}")
    return node


@pytest.mark.slow
def test_node_client_suite() -> None:
    node = _node()
    files = sorted(str(p) for p in (SDK_JS / "test").glob("*.test.js"))
    assert files, f"no *.test.js in {SDK_JS / 'test'}"
    env = {**os.environ, "CADENZA_PYTHON": sys.executable}
    env.pop("NODE_OPTIONS", None)
    try:
        done = subprocess.run([node, "--test", "--test-reporter=tap", *files], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"node --test did not finish within {NODE_TIMEOUT_S} s; its output:\n{out[-6000:]}", pytrace=False)
    summary = "\n".join(line for line in done.stdout.splitlines() if line.startswith("# "))
    if done.returncode != 0:
        failures = "\n".join(line for line in done.stdout.splitlines() if "not ok" in line)
        pytest.fail(f"node --test failed (exit {done.returncode}):\n{failures}\n{summary}\n--- output (tail):\n"
                    f"{done.stdout[-8000:]}\n--- stderr:\n{done.stderr[-2000:]}", pytrace=False)
    for count in ("fail", "cancelled", "skipped"):  # a failed start cancels a suite: that is a failure too
        assert f"# {count} 0" in done.stdout, f"node tests {count}:\n{summary}"
