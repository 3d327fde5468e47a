"""The control panel in a real browser: headless Chromium (Selenium + chromedriver) against ``cadenza serve --ws --panel``.

One runtime (the action game) and one browser serve the whole module. Each
test works the page the way a user does (keyboard on a slider, clicks on
buttons) and checks the result where it counts: in the runtime, through a
ZeroMQ control socket (``Status``, ``DescribeGraph``) and its events PUB —
never through the page alone.

The page exposes ``window.cadenzaPanel`` (counters, the times of its beat
flashes); the beat test reads it. A screenshot of the panel (desktop and
phone widths) is written to ``out/artifacts/`` (or ``$CADENZA_ARTIFACTS``); the
README's ``docs/panel.png`` is one of them.

Without Chromium or chromedriver the tests skip on a laptop and fail in CI
(``tests/server_harness.require``).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from tests.server_harness import ACTION_GAME, REPO, Control, ServeProcess, free_ports, require, wait_until

# Debian's paths (apt install chromium chromium-driver); elsewhere point these variables at your own
CHROMIUM = os.environ.get("CADENZA_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CADENZA_CHROMEDRIVER", "/usr/bin/chromedriver")
FRAME_MS = 1000 / 60
# the beat indicator's budget: one frame, plus slack for a loaded 2-core CI box (timers fire late under load)
BEAT_MEDIAN_MS = FRAME_MS
BEAT_MAX_MS = FRAME_MS + 50


def artifacts_dir() -> Path:
    where = Path(os.environ.get("CADENZA_ARTIFACTS", REPO / "out" / "artifacts"))
    where.mkdir(parents=True, exist_ok=True)
    return where


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _browser_present() -> None:
    """Before anything starts: the browser and its driver are here (else skip, or fail in CI)."""
    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        require(f"the panel tests need Chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}): "
                "apt install chromium chromium-driver, or set CADENZA_CHROMIUM and CADENZA_CHROMEDRIVER")


@pytest.fixture(scope="module")
def ctx() -> Iterator[zmq.Context[Any]]:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.term()


class Runtime:
    """``cadenza serve --graph action_game --ws 127.0.0.1:PORT --panel``; ``restart()`` keeps the WebSocket port."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_ports(1)[0]
        self.server = self._new()

    def _new(self, graph: bool = True) -> ServeProcess:
        args = ["--graph", str(ACTION_GAME)] if graph else []
        return ServeProcess([*args, "--ws", f"127.0.0.1:{self.port}", "--panel"],
                            self.workdir, name=f"serve{time.monotonic_ns()}").start()

    def restart(self, graph: bool = True) -> None:
        self.server.kill()
        self.server = self._new(graph)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime(tmp_path_factory.mktemp("panel"))
    try:
        yield rt
    finally:
        rt.server.kill()


@pytest.fixture(scope="module")
def control(runtime: Runtime, ctx: zmq.Context[Any]) -> Iterator[Control]:
    c = runtime.server.control(ctx)
    yield c
    c.close()


def _driver(user_data: Path) -> Any:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require("the panel tests need selenium: pip install -e '.[dev]'")

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 f"--user-data-dir={user_data}", "--window-size=1280,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


@pytest.fixture(scope="module")
def page(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The panel, open and connected, with its controls built."""
    driver = _driver(tmp_path_factory.mktemp("chromium"))
    try:
        driver.get(f"http://127.0.0.1:{runtime.port}/")
        wait_until(lambda: driver.execute_script(
            "return !!(window.cadenzaPanel && window.cadenzaPanel.connected && "
            "document.querySelector('[data-param=danger] input'))"), 30, "the panel connected with its controls")
        yield driver
    finally:
        try:
            # script errors only: a refused connection while the runtime restarts is logged by the browser too
            errors = [e for e in driver.get_log("browser")
                      if e.get("level") == "SEVERE" and e.get("source") != "network"]
            assert not errors, f"the page logged errors: {errors}"
        finally:
            driver.quit()


def js(page: Any, script: str, *args: Any) -> Any:
    return page.execute_script(script, *args)


def panel_value(page: Any, expr: str) -> Any:
    return js(page, f"return window.cadenzaPanel.{expr};")


def number(st: pb.Status, name: str) -> float:
    return st.parameters[name].number


# ----------------------------------------------------------------------------- tests


def test_built_from_describe_graph(page: Any, control: Control) -> None:
    """A slider per continuous/discrete parameter with its range, a selector per labeled one, a button per state
    and trigger; every control has a label; nothing is loaded from another origin (works offline, no CDN)."""
    from selenium.webdriver.common.by import By

    desc = control.request(pb.DescribeGraph()).body
    assert isinstance(desc, pb.GraphDescription)
    for p in desc.parameters:
        box = page.find_element(By.CSS_SELECTOR, f'[data-param="{p.name}"]')
        if p.kind == pb.ParameterInfo.LABELED:
            opts = [o.get_attribute("value") for o in box.find_elements(By.TAG_NAME, "option")]
            assert opts == list(p.labels)
        else:
            el = box.find_element(By.CSS_SELECTOR, "input[type=range]")
            assert float(el.get_attribute("min")) == p.min and float(el.get_attribute("max")) == p.max
            if p.kind == pb.ParameterInfo.DISCRETE:
                assert el.get_attribute("step") == "1"
    states = [b.text for b in page.find_elements(By.CSS_SELECTOR, "#state-list button")]
    triggers = [b.text for b in page.find_elements(By.CSS_SELECTOR, "#trigger-list button")]
    assert states == [s.name for s in desc.states]
    assert triggers == [t.name for t in desc.triggers]
    unlabeled = js(page, "return [...document.querySelectorAll('input, select, button')]"
                         ".filter(e => !(e.labels && e.labels.length) && !e.textContent.trim()"
                         " && !e.getAttribute('aria-label')).map(e => e.outerHTML)")
    assert not unlabeled, f"controls without a label: {unlabeled}"
    foreign = js(page, "return performance.getEntriesByType('resource').map(e => e.name)"
                       ".filter(u => !u.startsWith(location.origin + '/'))")
    assert not foreign, f"the panel loaded resources from elsewhere: {foreign}"


def test_slider_reaches_runtime(page: Any, control: Control) -> None:
    """The danger slider, moved with the keyboard (End: its maximum; arrows), reaches the runtime (Status,
    DescribeGraph)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = control.status()
    assert number(before, "danger") == 0.0
    slider = page.find_element(By.CSS_SELECTOR, '[data-param="danger"] input')
    slider.send_keys(Keys.END)
    assert slider.get_attribute("value") == "1"
    control.wait_status(lambda st: number(st, "danger") > 0.5, 15, "danger rising towards the slider's 1")
    desc = control.request(pb.DescribeGraph()).body
    assert isinstance(desc, pb.GraphDescription)
    assert next(p for p in desc.parameters if p.name == "danger").value.number > 0.5
    # arrows move 1 % of the range (the slider's fine drag step would need 100 presses)
    control.wait_status(lambda st: number(st, "danger") >= 0.95, 15, "danger near 1")
    slider.send_keys(*[Keys.ARROW_LEFT] * 10)
    assert abs(float(slider.get_attribute("value")) - 0.9) < 1e-6
    control.wait_status(lambda st: 0.89 <= number(st, "danger") <= 0.93, 15, "danger gliding down to 0.9")
    # the discrete health slider by keyboard too: Home → 0
    page.find_element(By.CSS_SELECTOR, '[data-param="health"] input').send_keys(Keys.HOME)
    control.wait_status(lambda st: number(st, "health") == 0.0, 10, "health 0")


def test_state_and_trigger_buttons(page: Any, control: Control, runtime: Runtime, ctx: zmq.Context[Any]) -> None:
    """A state button changes the runtime's state; the page counts down to the quantized change (the runtime's
    heard time of its start) and its event log shows the change; a trigger button fires the trigger."""
    from selenium.webdriver.common.by import By

    st = control.status()
    target = "combat" if st.state != "combat" else "tension"
    sub = runtime.server.events(ctx, ("state",))
    try:
        time.sleep(0.2)  # the subscription reaches the PUB
        page.find_element(By.CSS_SELECTOR, f'#state-list button[data-state="{target}"]').click()
        started = sub.wait_for(lambda ev: isinstance(ev.payload, pb.StateChange) and ev.payload.name == target
                               and ev.payload.phase == pb.StateChange.STARTED, 15, f"{target} STARTED")
    finally:
        sub.close()
    control.wait_status(lambda s: s.state == target, 5, f"state {target}")

    def logged() -> bool:
        lines = js(page, "return [...document.querySelectorAll('#log li[data-topic=state]')].map(l => l.textContent)")
        return any(f"→ {target} STARTED" in line for line in lines)
    try:
        wait_until(logged, 10, f"the event log showing the state change to {target}")
    except AssertionError as exc:
        text = js(page, "return document.getElementById('log').innerText")
        raise AssertionError(f"{exc}; log: {text}; received: {panel_value(page, 'received')}; "
                             f"errors: {panel_value(page, 'errors')}") from None
    wait_until(lambda: js(page, "return document.querySelector('#state-list button[aria-pressed=true]')"
                                ".dataset.state") == target, 5, "the state button pressed")
    # the countdown ran to the moment the change is heard
    pendings = [p for p in panel_value(page, "pendings") if p["name"] == target]
    assert pendings, "the page never showed the pending state change"
    assert abs(pendings[-1]["at"] - started.heard_at * 1000) <= 1, (pendings, started)

    fired = st.requests.get("trigger", 0)
    page.find_element(By.CSS_SELECTOR, '#trigger-list button[data-trigger="enemy_down"]').click()
    control.wait_status(lambda s: s.requests.get("trigger", 0) == fired + 1, 10, "the trigger executed")
    wait_until(lambda: "trigger enemy_down" in js(page, "return document.getElementById('log').innerText"), 5,
               "the trigger's Ok in the log")


def test_beat_indicator_on_heard_time(page: Any, runtime: Runtime, ctx: zmq.Context[Any]) -> None:
    """The beat indicator lights within a frame of the moment each beat is heard (``Event.heard_at``).

    Measured: for each flash the page records ``Date.now()`` when its timer lights the dot (``firedAt``), when the
    event arrived, and the beat event's ``heard_at``; browser and runtime share this machine's clock. Of the beats
    that arrived before they are heard, the median flash is within a frame (16.7 ms) of ``heard_at`` and every
    one within 3 frames (a loaded box's late timers); a beat that arrived late flashes on arrival. The page's beats
    are also checked against the runtime's own beat events (ZeroMQ events PUB): same numbers, same ``heard_at``.
    """
    sub = runtime.server.events(ctx, ("beat",))
    try:
        js(page, "window.cadenzaPanel.flashes.length = 0;")
        runtime_beats: dict[int, float] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ev = sub.recv_event(0.5)
            if ev is not None and isinstance(ev.payload, pb.Beat):
                runtime_beats[ev.payload.beat] = ev.heard_at
            flashes = panel_value(page, "flashes")
            if sum(1 for f in flashes if f["beat"] in runtime_beats) >= 12:
                break
        time.sleep(0.2)  # the last flash's paint
        flashes = [f for f in panel_value(page, "flashes") if f["beat"] in runtime_beats]
    finally:
        sub.close()
    assert len(flashes) >= 8, f"only {len(flashes)} flashes of beats the runtime published: {flashes}"
    assert all(runtime_beats[f["beat"]] == f["heardAt"] for f in flashes), "the page's heard_at is the runtime's"
    assert all(f["heardAt"] > 0 for f in flashes), "the runtime sent beat events without heard_at"
    assert not any(f["onArrival"] for f in flashes), f"beats flashed on arrival, not on heard_at: {flashes}"
    # a beat whose event arrived before it is heard is flashed on its heard time; one that arrived late (the box
    # too loaded to deliver it within the lookahead) can only be flashed on arrival
    in_time = [f for f in flashes if f["arrival"] < f["heardAt"] * 1000]
    late = [f for f in flashes if f["arrival"] >= f["heardAt"] * 1000]
    errors = [f["firedAt"] - f["heardAt"] * 1000 for f in in_time]
    painted = [f["paintedAt"] - f["heardAt"] * 1000 for f in in_time if f["paintedAt"]]
    ahead = [f["heardAt"] * 1000 - f["arrival"] for f in flashes]
    late_fire = [f["firedAt"] - f["arrival"] for f in late]
    report = (f"{len(flashes)} beats, {len(in_time)} arrived before heard_at; flash − heard_at (ms): median "
              f"{statistics.median(errors):.1f}, min {min(errors):.1f}, max {max(errors):.1f}; painted (next frame) − "
              f"heard_at: median {statistics.median(painted):.1f}; events arrived ahead of heard_at by median "
              f"{statistics.median(ahead):.1f} ms; late arrivals flashed after arrival (ms): {late_fire}; "
              f"clock offset used {panel_value(page, 'clock.offsetMs')} ms") if errors else f"no beat in time: {flashes}"
    print(report)
    assert len(in_time) >= 6, report
    assert abs(statistics.median(errors)) <= BEAT_MEDIAN_MS, report
    assert max(abs(e) for e in errors) <= BEAT_MAX_MS, report
    assert all(d <= BEAT_MAX_MS for d in late_fire), report


def test_fast_drag_is_coalesced(page: Any, control: Control) -> None:
    """1,000 slider moves a second for 2 s: at most one SetParameters per animation frame reaches the runtime,
    and the runtime's lookahead stays where it was (no xrun)."""
    before = control.status()
    sent0 = panel_value(page, "sent.setParameters || 0")
    frames0 = panel_value(page, "frames")
    page.set_script_timeout(30)
    moves = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const input = document.querySelector('[data-param="danger"] input');
        const t0 = performance.now();
        let n = 0;
        function burst() {  // input events at 1,000 a second on average, as a fast drag dispatches them
          const due = Math.min(2000, Math.floor(performance.now() - t0));
          for (; n < due; n++) {
            input.value = String(0.5 + 0.5 * Math.sin(n / 50));
            input.dispatchEvent(new Event('input', {bubbles: true}));
          }
          if (n < 2000) setTimeout(burst, 0); else setTimeout(() => done(n), 100);
        }
        burst();
    """)
    after = control.wait_status(lambda st: st.requests.get("set_parameters", 0)
                                >= before.requests.get("set_parameters", 0) + 1, 5, "the drag's requests")
    time.sleep(0.5)
    after = control.status()
    sent = panel_value(page, "sent.setParameters || 0") - sent0
    frames = panel_value(page, "frames") - frames0
    executed = after.requests.get("set_parameters", 0) - before.requests.get("set_parameters", 0)
    print(f"{moves} input events in 2 s → {sent} SetParameters sent over {frames} animation frames; runtime "
          f"executed {executed}; lookahead {before.lookahead_ms:.1f} → {after.lookahead_ms:.1f} ms; "
          f"xruns {before.xruns} → {after.xruns}")
    assert moves == 2000
    assert 0 < sent <= frames + 1, f"{sent} SetParameters for {frames} frames: not coalesced"
    assert executed == sent
    assert after.lookahead_ms <= before.lookahead_ms, "the runtime widened its lookahead: it fell behind"
    assert after.xruns == before.xruns


def test_listen_plays_audio(page: Any) -> None:
    """The Listen toggle subscribes to int16 audio and plays it with WebAudio; the level meter reads it."""
    from selenium.webdriver.common.by import By

    button = page.find_element(By.ID, "listen")
    button.click()
    try:
        assert button.get_attribute("aria-pressed") == "true"
        wait_until(lambda: panel_value(page, "audio.chunks") >= 150, 15, "150 audio chunks (1.5 s) played")
        audio = panel_value(page, "audio")
        state = js(page, "return window.cadenzaPanel.audioContextState()")
        level = page.find_element(By.ID, "o-level").text
        print(f"audio: {audio}; AudioContext {state}; level {level!r}")
        assert state == "running"
        assert "dB" in level
        assert audio["dropped"] <= 2 and audio["underruns"] <= 3, audio
    finally:
        button.click()
    assert button.get_attribute("aria-pressed") == "false"


def test_phone_layout_and_screenshots(page: Any) -> None:
    """At a phone's width (390 px) nothing scrolls sideways; screenshots of both widths are written as artifacts
    (listening, with a state change pending: the README's docs/panel.png is the desktop one)."""
    from selenium.webdriver.common.by import By

    out = artifacts_dir()
    page.set_window_size(1280, 1160)
    listen = page.find_element(By.ID, "listen")
    listen.click()
    try:
        time.sleep(1.0)
        state = js(page, "return document.getElementById('state').textContent")
        goal = "tension" if state != "tension" else "explore"
        shown = len(panel_value(page, "pendings"))
        page.find_element(By.CSS_SELECTOR, f'#state-list button[data-state="{goal}"]').click()
        wait_until(lambda: len(panel_value(page, "pendings")) > shown, 5, "the pending change shown")
        time.sleep(0.05)  # its frame
        page.save_screenshot(str(out / "panel.png"))
        page.set_window_size(390, 844)
        time.sleep(0.3)
        overflow = js(page, "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        page.save_screenshot(str(out / "panel-phone.png"))
    finally:
        listen.click()
        page.set_window_size(1280, 1000)
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 390 px"
    assert (out / "panel.png").stat().st_size > 10_000


def test_token_leaves_the_url_refusal_named_controls_off_while_disconnected(tmp_path: Path) -> None:
    """The outside test's panel findings (notes/outside-ws.md 12, 18, 19, 20): with a wrong token the page says the
    runtime refused it (not 'down'); with the right one the token leaves the address bar; while the runtime is down
    every control is disabled (a click would be dropped) and a request is logged 'not connected'; long names wrap
    inside their buttons; the page may not be framed by another site."""
    import urllib.request

    from selenium.webdriver.common.by import By

    port = free_ports(1)[0]
    server = ServeProcess(["--graph", str(ACTION_GAME), "--ws", f"127.0.0.1:{port}", "--panel", "--ws-token",
                           "panel-token-1"], tmp_path, name="token").start()
    driver = _driver(tmp_path / "chromium")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            assert r.headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        driver.get(f"http://127.0.0.1:{port}/#token=wrong-token")
        wait_until(lambda: "refused the connection" in driver.find_element(By.ID, "conn").text, 20,
                   "the page saying the runtime refused it")
        driver.get(f"http://127.0.0.1:{port}/panel/index.html#token=panel-token-1")
        wait_until(lambda: js(driver, "return !!(window.cadenzaPanel && window.cadenzaPanel.connected && "
                                      "document.querySelector('#trigger-list button'))"), 30, "connected with a token")
        assert "token" not in driver.current_url, driver.current_url
        controls = "#param-list input, #param-list select, #state-list button, #trigger-list button"
        assert not js(driver, f"return [...document.querySelectorAll('{controls}')].some(c => c.disabled)")
        overflow = js(driver, "return [...document.querySelectorAll('.buttons button')]"
                              ".filter(b => b.scrollWidth > b.clientWidth + 1).map(b => b.textContent)")
        assert overflow == [], overflow
        server.kill()
        wait_until(lambda: not panel_value(driver, "connected"), 20, "the page noticing the runtime is gone")
        assert js(driver, f"return [...document.querySelectorAll('{controls}')].every(c => c.disabled)")
        js(driver, "const b = document.querySelector('#trigger-list button'); b.disabled = false; b.click()")
        wait_until(lambda: "not sent" in js(driver, "return document.getElementById('log').textContent"), 5,
                   "'not connected: … not sent' in the log")
    finally:
        driver.quit()
        server.kill()


def test_reconnects_by_itself(page: Any, runtime: Runtime, ctx: zmq.Context[Any]) -> None:
    """The runtime restarts on the same port, without a graph: the page reconnects by itself, sees the new session
    and that nothing is loaded; a graph loaded later (by another client) builds its controls, and a slider move
    reaches the new runtime. (Runs last: it replaces the module's runtime.)"""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    old_session = panel_value(page, "sessionId")
    assert old_session
    runtime.restart(graph=False)
    wait_until(lambda: panel_value(page, "connected") and panel_value(page, "sessionId") not in ("", old_session),
               30, "the panel reconnected to the new runtime")
    wait_until(lambda: "no graph loaded" in page.find_element(By.ID, "param-list").text, 10, "'no graph loaded'")
    fresh = runtime.server.control(ctx)
    try:
        fresh.ok(pb.LoadGraph(text=ACTION_GAME.read_text()))
        wait_until(lambda: js(page, "return !!document.querySelector('[data-param=danger] input')"), 10,
                   "the controls of the graph loaded later")
        page.find_element(By.CSS_SELECTOR, '[data-param="danger"] input').send_keys(Keys.END)
        fresh.wait_status(lambda st: number(st, "danger") > 0.5, 15, "danger rising on the new runtime")
    finally:
        fresh.close()
