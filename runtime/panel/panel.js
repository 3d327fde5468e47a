/* The Cadenza control panel's logic: speak the wire as protobuf canonical JSON over the gateway's WebSocket,
 * build the controls from DescribeGraph, and show what the runtime plays.
 *
 * The socket (`/ws` on the page's own host) carries one Envelope per text frame, in protobuf's canonical JSON
 * (camelCase names, 64-bit integers as strings, enums by name, bytes as base64; fields at their default value
 * are left out, so every read here has a default). Requests carry a fresh nonzero `requestId`; the reply repeats
 * it. After connecting: Hello, DescribeGraph, Subscribe{topics, audio}, GetStatus; then an idle Hello every
 * second (the heartbeat: a new `session_id` means the runtime restarted, and the controls are built again).
 *
 * Timing: a beat event arrives ahead of when it is heard (the lookahead). Its `heardAt` (Unix seconds on the
 * runtime's host) is turned into this page's clock (`Date.now()` plus the measured offset between the hosts,
 * which is taken as zero when it is within the measurement's own uncertainty, as on one machine) and the flash
 * is scheduled for then; without `heardAt` the beat flashes on arrival. The pending state's countdown uses
 * Status.pending_state_time with the heard clock (Status.heard_time at Status.unix_time).
 *
 * A moving slider sends at most one SetParameters per animation frame: values are collected and sent together
 * from requestAnimationFrame (or a 50 ms timer while the page is hidden and frames do not run).
 *
 * `window.cadenzaPanel` exposes counters and the flash times for tests and for debugging in the console.
 */
"use strict";
(function () {
  const TOPICS = ["beat", "state", "mix", "stinger", "xrun", "warning", "status"];  // a downbeat is a beat with beatInBar 0
  const REPLY_TIMEOUT_MS = 5000;    // no reply in this time: the connection is dead, reconnect
  const HEARTBEAT_MS = 1000;
  const RECONNECT_MIN_MS = 250, RECONNECT_MAX_MS = 4000;
  const HISTORY_S = 15;             // the weight chart's window
  const LOG_MAX = 200;
  const FLASH_MS = 110;
  const JITTER_S = 0.08;            // audio: the jitter buffer ahead of the playback clock
  const STALE_S = 0.5;              // audio: drop chunks when more than this is queued (PROTOCOL.md, stale audio)
  const COLORS = ["#4fb3ff", "#ffb84f", "#5fd08a", "#ff6b6b", "#c58bff", "#4fe0d2", "#ff8fd1", "#d2d24f"];

  const $ = (id) => document.getElementById(id);
  const num = (v, d = 0) => (v === undefined || v === null || v === "" ? d : Number(v));
  // canonical JSON uses camelCase; a parser also accepts the .proto's own names: read either
  const get = (o, camel, d) => {
    if (!o) return d;
    if (o[camel] !== undefined) return o[camel];
    const snake = camel.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
    return o[snake] !== undefined ? o[snake] : d;
  };

  const panel = window.cadenzaPanel = {
    connected: false, sessionId: "", sampleRate: 48000, graph: null, status: null,
    sent: {}, received: {}, replies: 0, errors: [], flashes: [], pendings: [], frames: 0,
    clock: {offsetMs: 0, rttMs: Infinity, samples: 0},
    audio: {on: false, chunks: 0, dropped: 0, underruns: 0},
  };

  // ------------------------------------------------------------------ the socket

  let ws = null, nextId = 1, reconnectMs = RECONNECT_MIN_MS, heartbeat = null, lastSent = 0, opened = false, failures = 0;
  const inflight = new Map();  // requestId -> {kind, sentAt, onReply}

  // the token (/#token=T or /?token=T) is read once, kept for this tab only, and dropped from the address bar,
  // the history and any screenshot
  const token = (() => {
    const given = new URLSearchParams(location.search).get("token") ||
      new URLSearchParams(location.hash.slice(1)).get("token");
    try {
      if (given) sessionStorage.setItem("cadenza-token", given);
      else return sessionStorage.getItem("cadenza-token");
    } catch (e) { /* storage off: the token lives in this page only */ }
    if (given) window.history.replaceState(null, "", location.pathname);
    return given;
  })();

  function wsUrl() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/ws` + (token ? `?token=${encodeURIComponent(token)}` : "");
  }

  function connect() {
    setConn("connecting", "connecting…");
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    const sock = ws;
    sock.onopen = () => {
      if (sock !== ws) return;
      panel.connected = true;
      opened = true;
      reconnectMs = RECONNECT_MIN_MS;
      setConn("open", "connected");
      request("hello", {supportedVersions: [1], clientName: "cadenza panel"}, onHello);
      describing = false;
      describe();
      subscribe();
      request("getStatus", {}, onStatusReply);
      clearInterval(heartbeat);
      heartbeat = setInterval(tick, 250);
    };
    sock.onmessage = (m) => { if (sock === ws) onFrame(m.data); };
    sock.onclose = (e) => {
      if (sock !== ws) return;
      panel.connected = false;
      clearInterval(heartbeat);
      inflight.clear();
      failures = opened ? 0 : failures + 1;
      opened = false;
      // a refused handshake (a wrong token, a foreign Origin) looks like any failure to a page; if the page's own
      // server still answers, the runtime is up and refused us
      setConn("closed", `disconnected${e.reason ? " (" + e.reason + ")" : ""}; reconnecting…`);
      if (failures >= 3) {
        fetch(location.pathname, {method: "HEAD", cache: "no-store"}).then(
          () => { if (!panel.connected) setConn("closed", token
            ? "the runtime refused the connection: a wrong token? (open this page as /#token=TOKEN); retrying…"
            : "the runtime refused the connection: it needs a token (open this page as /#token=TOKEN); retrying…"); },
          () => { if (!panel.connected) setConn("closed", "cannot connect: the runtime is down; retrying…"); });
      }
      scheduleReconnect();
    };
    sock.onerror = () => {};  // onclose follows
  }

  function scheduleReconnect() {
    const wait = reconnectMs;
    reconnectMs = Math.min(RECONNECT_MAX_MS, reconnectMs * 2);
    setTimeout(connect, wait);
  }

  function dropConnection(why) {
    if (!ws) return;
    logLine("error", `connection: ${why}; reconnecting`);
    const sock = ws;
    sock.onclose = null;
    try { sock.close(); } catch (e) { /* already closed */ }
    ws = null;
    panel.connected = false;
    clearInterval(heartbeat);
    inflight.clear();
    setConn("closed", `${why}; reconnecting…`);
    scheduleReconnect();
  }

  function tick() {  // reply timeouts and the idle heartbeat
    const now = performance.now();
    for (const [, r] of inflight) {
      if (now - r.sentAt > REPLY_TIMEOUT_MS) { dropConnection(`no reply to ${r.kind} in ${REPLY_TIMEOUT_MS / 1000} s`); return; }
    }
    if (now - lastSent >= HEARTBEAT_MS) request("getStatus", {}, onStatusReply);
  }

  let lastNotSent = -Infinity;
  function request(kind, body, onReply) {
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      const now = performance.now();
      if (now - lastNotSent > 1000) { lastNotSent = now; logLine("error", `not connected: ${kind} not sent`); }
      return 0;
    }
    const id = nextId++;
    const env = {protocolVersion: 1, requestId: String(id)};
    env[kind] = body;
    const sentAt = performance.now();
    inflight.set(id, {kind, sentAt, sentWall: Date.now(), onReply});
    ws.send(JSON.stringify(env));
    lastSent = sentAt;
    panel.sent[kind] = (panel.sent[kind] || 0) + 1;
    return id;
  }

  function onFrame(data) {
    if (typeof data !== "string") return;  // binary frames only answer binary requests; this page sends none
    let env;
    try { env = JSON.parse(data); } catch (e) { logLine("error", "a frame that is no JSON"); return; }
    if (env.event) { onEvent(env.event); return; }
    if (env.audioChunk) { onAudio(env.audioChunk); return; }
    const id = num(get(env, "requestId"));
    const r = inflight.get(id);
    inflight.delete(id);
    panel.replies++;
    if (env.error) {
      const err = env.error;
      if (r && r.kind === "describeGraph") {
        describing = false;
        if (get(err, "code", "") === "NOT_READY") {  // nothing loaded yet: the next Status with a graph asks again
          panel.graph = null;
          $("graph-name").textContent = "(nothing loaded)";
          $("param-list").innerHTML = '<p class="muted">no graph loaded yet: the controls appear when one is</p>';
          $("state-list").textContent = "";
          $("trigger-list").textContent = "";
          return;
        }
      }
      panel.errors.push(err);
      logLine("error", `${r ? r.kind : "request"}: ${get(err, "code", "")} ${get(err, "message", "")}`);
      return;
    }
    if (r && r.onReply) r.onReply(env, r);
  }

  // ------------------------------------------------------------------ replies

  function onHello(env) {
    const st = env.status || {};
    const server = st.server || {};
    const session = get(server, "sessionId", "");
    panel.sampleRate = num(get(server, "sampleRate"), 48000);
    if (panel.sessionId && session !== panel.sessionId) {
      logLine("state", "the runtime restarted (new session)");
      panel.graph = null;
      describe();
    }
    panel.sessionId = session;
  }

  function onStatusReply(env, r) {
    if (!env.status) return;
    const recvWall = Date.now();
    const unix = num(get(env.status, "unixTime"));
    if (unix > 0 && r) {  // the offset between the runtime's clock and this page's, NTP style
      const rtt = recvWall - r.sentWall;
      const offset = unix * 1000 - (r.sentWall + recvWall) / 2;
      const c = panel.clock;
      c.samples++;
      if (rtt <= c.rttMs * 1.5 || c.samples % 20 === 0) {
        c.rttMs = Math.min(rtt, c.rttMs);
        // within the uncertainty (half the round trip, + the snapshot's own few ms): the same clock
        c.offsetMs = Math.abs(offset) <= rtt / 2 + 5 ? 0 : offset;
      }
    }
    applyStatus(env.status);
  }

  function onDescription(env) {
    describing = false;
    const g = env.graphDescription;
    if (!g) return;
    panel.graph = g;
    buildControls(g);
  }

  function subscribe() {
    request("subscribe", {topics: TOPICS, audio: panel.audio.on ? "INT16_LE" : "SAMPLE_FORMAT_UNSPECIFIED"});
  }

  // ------------------------------------------------------------------ controls

  const controls = {};     // parameter name -> {input, output, live, kind}
  const pendingValues = new Map();
  let flushScheduled = false;

  function buildControls(g) {
    $("graph-name").textContent = get(g, "name", "") || "(prompts)";
    const list = $("param-list");
    list.textContent = "";
    for (const k of Object.keys(controls)) delete controls[k];
    for (const p of get(g, "parameters", [])) list.appendChild(paramControl(p));
    if (!list.children.length) list.innerHTML = '<p class="muted">no parameters</p>';

    const states = $("state-list");
    states.textContent = "";
    for (const s of get(g, "states", [])) {
      const b = button(s.name, () => request("setState", {name: s.name}, (env) => {
        if (env.ok) logLine("request", `set_state ${s.name}` + whenText(env.ok));
      }));
      b.dataset.state = s.name;
      b.setAttribute("aria-pressed", "false");
      states.appendChild(b);
    }
    if (!states.children.length) states.innerHTML = '<p class="muted">no states</p>';

    const triggers = $("trigger-list");
    triggers.textContent = "";
    for (const t of get(g, "triggers", [])) {
      const what = [get(t, "stinger", "") && "stinger " + t.stinger, get(t, "setState", "") && "→ " + get(t, "setState"),
                    num(get(t, "bump")) && "+" + num(get(t, "bump")) + " intensity"].filter(Boolean).join(", ");
      const b = button(t.name, () => request("trigger", {name: t.name}, (env) => {
        if (env.ok) {
          logLine("request", `trigger ${t.name}` + whenText(env.ok) + warnText(env.ok));
          b.classList.add("fired");
          setTimeout(() => b.classList.remove("fired"), 300);
        }
      }));
      b.dataset.trigger = t.name;
      if (what) b.title = what;
      triggers.appendChild(b);
    }
    if (!triggers.children.length) triggers.innerHTML = '<p class="muted">no triggers</p>';
    showState(get(g, "state", ""));
  }

  function button(text, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    b.addEventListener("click", onClick);
    return b;
  }

  function whenText(ok) {  // when a request's effect is heard, from the last Status's heard clock
    const t = get(ok, "streamTime");
    return t === undefined || !panel.status ? "" : inText(heardWall(panel.status, num(t)));
  }
  function inText(atMs) {
    return atMs > 0 ? ` — heard in ${Math.max(0, (atMs - Date.now()) / 1000).toFixed(2)} s` : "";
  }
  function warnText(ok) {
    const w = get(ok, "warnings", []);
    return w.length ? " — " + w.join("; ") : "";
  }

  function paramControl(p) {
    const name = p.name, kind = get(p, "kind", "KIND_UNSPECIFIED");
    const box = document.createElement("div");
    box.className = "param";
    box.dataset.param = name;
    const id = "param-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
    const label = document.createElement("label");
    label.htmlFor = id;
    const title = document.createElement("span");
    title.textContent = name + (get(p, "builtin", false) ? " (built-in)" : "");
    const output = document.createElement("output");
    output.htmlFor = id;
    label.append(title, output);
    box.appendChild(label);
    const value = get(p, "value", {}) || {};
    const c = {kind, output, input: null, live: null};
    if (kind === "LABELED") {
      const sel = document.createElement("select");
      sel.id = id;
      for (const l of get(p, "labels", [])) {
        const o = document.createElement("option");
        o.value = o.textContent = l;
        sel.appendChild(o);
      }
      sel.value = get(value, "label", "");
      output.textContent = "";
      sel.addEventListener("change", () => queueValue(name, {label: sel.value}));
      box.appendChild(sel);
      c.input = sel;
    } else {
      const lo = num(get(p, "min")), hi = num(get(p, "max"));
      const discrete = kind === "DISCRETE";
      const input = document.createElement("input");
      input.type = "range";
      input.id = id;
      input.min = String(lo);
      input.max = String(hi);
      input.step = discrete ? "1" : String((hi - lo) / 1000 || 0.001);
      input.value = String(num(get(value, "number"), lo));
      const fmt = (v) => (discrete ? String(Math.round(v)) : Number(v).toFixed(3));
      output.textContent = fmt(input.value);
      input.addEventListener("input", () => {
        output.textContent = fmt(input.value);
        queueValue(name, {number: Number(input.value)});
      });
      if (!discrete) {  // the fine step is for dragging; arrows move 1 % of the range, Page Up/Down 10 %
        input.addEventListener("keydown", (e) => {
          const big = e.key === "PageUp" || e.key === "PageDown";
          const dir = {ArrowRight: 1, ArrowUp: 1, PageUp: 1, ArrowLeft: -1, ArrowDown: -1, PageDown: -1}[e.key];
          if (!dir) return;
          e.preventDefault();
          const v = Math.min(hi, Math.max(lo, Number(input.value) + dir * (hi - lo) * (big || e.shiftKey ? 0.1 : 0.01)));
          input.value = String(v);
          input.dispatchEvent(new Event("input", {bubbles: true}));
        });
      }
      const range = document.createElement("div");
      range.className = "range";
      const live = document.createElement("span");
      live.className = "live";
      live.setAttribute("aria-label", name + " now");
      range.append(span(fmt(lo)), live, span(fmt(hi)));
      box.append(input, range);
      c.input = input;
      c.live = live;
      c.fmt = fmt;
    }
    controls[name] = c;
    return box;
  }

  function span(text) {
    const s = document.createElement("span");
    s.textContent = text;
    return s;
  }

  function queueValue(name, value) {
    pendingValues.set(name, value);
    if (flushScheduled) return;
    flushScheduled = true;
    if (document.hidden) setTimeout(flushValues, 50);
    else requestAnimationFrame(flushValues);
  }

  function flushValues() {
    flushScheduled = false;
    if (!pendingValues.size) return;
    const values = [];
    for (const [name, v] of pendingValues) values.push(Object.assign({name}, v));
    pendingValues.clear();
    request("setParameters", {values}, null);
  }

  // ------------------------------------------------------------------ status and events

  let describing = false;
  function describe() {  // (again) when the runtime loads a graph: at connect, after NOT_READY, on a new graph name
    if (describing) return;
    describing = request("describeGraph", {}, onDescription) !== 0;
  }

  function applyStatus(st) {
    panel.status = st;
    if (get(st, "graphLoaded", false) && (!panel.graph || get(st, "graphName", "") !== get(panel.graph, "name", ""))) {
      describe();
    }
    showState(get(st, "state", ""));
    const params = get(st, "parameters", {});
    for (const [name, pv] of Object.entries(params)) {
      const c = controls[name];
      if (!c) continue;
      if (c.kind === "LABELED") {
        const l = get(pv, "label", "");
        if (document.activeElement !== c.input && c.input.value !== l) c.input.value = l;
      } else if (c.live) {
        c.live.textContent = "now " + c.fmt(num(get(pv, "number")));
      }
    }
    const look = num(get(st, "lookaheadMs"));
    $("m-look").value = look;
    $("o-look").textContent = look.toFixed(0) + " ms";
    const xr = num(get(st, "xruns"));
    $("m-xrun").value = Math.min(10, xr);
    $("o-xrun").textContent = String(xr);
    const pst = num(get(st, "pendingStateTime"));
    const ps = get(st, "pendingState", "");
    pending = ps && pst ? {name: ps, at: heardWall(st, pst)} : (ps ? {name: ps, at: 0} : null);
    showPending();
    if (panel.connected) setConn("open", get(st, "playing", false) ? "connected" : "connected — not playing");
  }

  // the local Date.now() (ms) at which stream sample `s` is heard, from a Status's heard clock
  function heardWall(st, s) {
    const heard = num(get(st, "heardTime")), unix = num(get(st, "unixTime"));
    if (unix > 0) return unix * 1000 + ((s - heard) / panel.sampleRate) * 1000 - panel.clock.offsetMs;
    // no heard clock: the stream clock runs ahead of the output by about the lookahead
    const now = num(get(st, "streamTime"));
    return Date.now() + ((s - now) / panel.sampleRate) * 1000 + num(get(st, "lookaheadMs"));
  }

  let pending = null, currentState = "";
  function showState(name) {
    if (name === currentState) return;
    currentState = name;
    $("state").textContent = name || "—";
    for (const b of $("state-list").querySelectorAll("button")) {
      b.setAttribute("aria-pressed", String(b.dataset.state === name));
    }
  }

  let shownPending = null;
  function showPending() {
    const name = pending ? pending.name : "";
    if (name !== shownPending) {  // the live region speaks only when the pending state changes
      shownPending = name;
      for (const b of $("state-list").querySelectorAll("button")) b.classList.toggle("pending", !!name && b.dataset.state === name);
      const el = $("pending-name");
      el.textContent = "";
      if (!name) el.textContent = "no change pending";
      else {
        const s = document.createElement("strong");
        s.textContent = name;
        el.append("next: ", s);
      }
    }
    const left = pending && pending.at ? Math.max(0, (pending.at - Date.now()) / 1000) : null;
    $("pending-left").textContent = !pending ? "" : left === null ? "(waiting)" : `in ${left.toFixed(1)} s`;
  }

  function onEvent(ev) {
    const topic = get(ev, "topic", "");
    panel.received[topic] = (panel.received[topic] || 0) + 1;
    const heardAt = num(get(ev, "heardAt"));
    if (topic === "beat") scheduleBeat(ev.beat || {}, heardAt);
    else if (topic === "mix") addWeights(get(ev.mix, "weights", {}));
    else if (topic === "status") applyStatus(ev.status || {});
    else if (topic === "state") onStateEvent(ev.state || {}, ev, heardAt);
    else if (topic === "stinger") logLine("stinger", `stinger ${get(ev.stinger, "name", "")} (${num(get(ev.stinger, "durationSeconds")).toFixed(1)} s)`, heardAt);
    else if (topic === "xrun") {
      const x = ev.xrun || {};
      logLine("xrun", `xrun #${num(get(x, "count"))}: ${num(get(x, "framesLost"))} frames lost (${get(x, "source", "")})`, heardAt);
      $("o-xrun").textContent = String(num(get(x, "count")));
      $("m-xrun").value = Math.min(10, num(get(x, "count")));
    } else if (topic === "warning") logLine("warning", "warning: " + get(ev.warning, "message", ""), heardAt);
  }

  function onStateEvent(sc, ev, heardAt) {
    const phase = get(sc, "phase", "PHASE_UNSPECIFIED");
    const name = get(sc, "name", ""), prev = get(sc, "previous", "");
    const fade = num(get(sc, "fadeSeconds"));
    const line = `state ${prev || "—"} → ${name} ${phase} (${get(sc, "transition", "")}, fade ${fade.toFixed(2)} s)`;
    // an announcement is logged when it arrives (with when it will be heard); the change itself when heard
    if (phase === "SCHEDULED") logLine("state", line + inText(heardAt > 0 ? heardAt * 1000 - panel.clock.offsetMs : 0));
    else if (phase === "CANCELLED") logLine("state", `state → ${name} cancelled (a later request withdrew it)`);
    else logLine("state", line, heardAt);
    if (phase === "SCHEDULED") {
      pending = {name, at: heardAt > 0 ? heardAt * 1000 - panel.clock.offsetMs : 0};
      panel.pendings.push({name, at: pending.at, shownAt: Date.now()});
    } else if (phase === "CANCELLED") {  // that change will not come: no countdown for it
      if (pending && pending.name === name) pending = null;
    } else if (phase === "STARTED") {
      const at = heardAt > 0 ? heardAt * 1000 - panel.clock.offsetMs : Date.now();
      // a cut (STOP) or a load replaces whatever was scheduled
      const supersedes = ["cut", "load"].includes(get(sc, "transition", ""));
      setTimeout(() => {
        showState(name);
        if (pending && (pending.name === name || supersedes)) pending = null;
        showPending();
      }, Math.max(0, at - Date.now()));
    }
    showPending();
  }

  // ------------------------------------------------------------------ beat indicator

  let dotsFor = 0;
  function scheduleBeat(b, heardAt) {
    const beat = num(get(b, "beat")), bar = num(get(b, "bar")), inBar = num(get(b, "beatInBar")), bpm = num(get(b, "bpm"));
    const arrival = Date.now();
    let target = heardAt > 0 ? heardAt * 1000 - panel.clock.offsetMs : arrival;
    let onArrival = !(heardAt > 0);
    if (target - arrival > 10000) { target = arrival; onArrival = true; }  // a clock that cannot be right
    const fire = () => flash({beat, bar, inBar, bpm, heardAt, target, onArrival, arrival});
    const wait = target - Date.now();
    if (wait <= 0) fire(); else setTimeout(fire, wait);
  }

  function flash(f) {
    const firedAt = Date.now();
    const beatsPerBar = Math.max(f.inBar + 1, dotsFor);
    if (beatsPerBar !== dotsFor || !$("beat-dots").children.length) {
      dotsFor = Math.max(4, beatsPerBar);
      const dots = $("beat-dots");
      dots.textContent = "";
      for (let i = 0; i < dotsFor; i++) {
        const d = document.createElement("span");
        d.className = "dot" + (i === 0 ? " down" : "");
        dots.appendChild(d);
      }
    }
    const dots = $("beat-dots").children;
    for (let i = 0; i < dots.length; i++) dots[i].classList.toggle("lit", i === f.inBar);
    $("bar-no").textContent = String(f.bar);
    $("beat-no").textContent = String(f.inBar + 1);
    $("bpm").textContent = f.bpm ? `${f.bpm.toFixed(0)} bpm` : "";
    const rec = {beat: f.beat, bar: f.bar, beatInBar: f.inBar, heardAt: f.heardAt, target: f.target,
                 arrival: f.arrival, firedAt, onArrival: f.onArrival, paintedAt: 0};
    panel.flashes.push(rec);
    if (panel.flashes.length > 500) panel.flashes.splice(0, 100);
    // the frame that shows it: requestAnimationFrame's time, on the performance clock, as Unix ms
    requestAnimationFrame((ts) => { rec.paintedAt = performance.timeOrigin + ts; });
    setTimeout(() => { if (dots[f.inBar]) dots[f.inBar].classList.remove("lit"); }, FLASH_MS);
  }

  // ------------------------------------------------------------------ weights chart

  const history = [];   // {t (ms), weights}
  const colorOf = new Map();
  function addWeights(w) {
    history.push({t: Date.now(), w});
    while (history.length && history[0].t < Date.now() - HISTORY_S * 1000 - 1000) history.shift();
    let changed = false;
    for (const name of Object.keys(w)) {
      if (!colorOf.has(name)) { colorOf.set(name, COLORS[colorOf.size % COLORS.length]); changed = true; }
    }
    if (changed) {
      const legend = $("legend");
      legend.textContent = "";
      for (const [name, color] of colorOf) {
        const li = document.createElement("li");
        const sw = document.createElement("i");
        sw.style.background = color;
        li.append(sw, name);
        legend.appendChild(li);
      }
    }
    const top = Object.entries(w).sort((a, b) => b[1] - a[1]).slice(0, 3)
      .map(([n, v]) => `${n} ${(v * 100).toFixed(0)}%`).join(", ");
    $("weights").setAttribute("aria-label", "prompt weights now: " + (top || "none"));
  }

  function drawChart() {
    const c = $("weights");
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth, h = c.clientHeight || 180;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const styles = getComputedStyle(document.documentElement);
    g.strokeStyle = styles.getPropertyValue("--line") || "#333";
    g.lineWidth = 1;
    for (const y of [0, 0.5, 1]) {
      g.beginPath();
      g.moveTo(0, 4 + (1 - y) * (h - 8));
      g.lineTo(w, 4 + (1 - y) * (h - 8));
      g.stroke();
    }
    const now = Date.now(), span = HISTORY_S * 1000;
    const x = (t) => w - ((now - t) / span) * w;
    const y = (v) => 4 + (1 - Math.max(0, Math.min(1, v))) * (h - 8);
    g.lineWidth = 2;
    for (const [name, color] of colorOf) {
      g.strokeStyle = color;
      g.beginPath();
      let started = false;
      for (const p of history) {
        const v = p.w[name] === undefined ? 0 : Number(p.w[name]);
        if (!started) { g.moveTo(x(p.t), y(v)); started = true; } else g.lineTo(x(p.t), y(v));
      }
      if (started && history.length) g.lineTo(w, y(Number(history[history.length - 1].w[name] || 0)));
      g.stroke();
    }
  }

  // ------------------------------------------------------------------ event log

  function logLine(topic, text, heardAt) {
    const write = () => {
      const li = document.createElement("li");
      li.dataset.topic = topic;
      const t = document.createElement("time");
      const d = new Date();
      t.dateTime = d.toISOString();
      t.textContent = d.toTimeString().slice(0, 8);
      li.append(t, text);
      const log = $("log");
      log.insertBefore(li, log.firstChild);
      while (log.children.length > LOG_MAX) log.removeChild(log.lastChild);
    };
    // an event is logged when it is heard, not when it arrives ahead of the music
    const wait = heardAt > 0 ? heardAt * 1000 - panel.clock.offsetMs - Date.now() : 0;
    if (wait > 0 && wait < 10000) setTimeout(write, wait); else write();
  }

  function setConn(state, text) {
    const el = $("conn");
    el.dataset.state = state;
    el.textContent = text;
    // the controls only work while connected: say so by disabling them (a click would be dropped)
    for (const c of document.querySelectorAll("#param-list input, #param-list select, #state-list button, " +
                                              "#trigger-list button")) c.disabled = state !== "open";
  }

  // ------------------------------------------------------------------ audio

  let actx = null, playAt = 0, levelPeak = 0, levelSum = 0, levelN = 0;

  async function toggleListen() {
    const btn = $("listen");
    panel.audio.on = !panel.audio.on;
    btn.setAttribute("aria-pressed", String(panel.audio.on));
    if (panel.audio.on) {
      if (!actx) {
        const Ctx = window.AudioContext || window.webkitAudioContext;
        try { actx = new Ctx({sampleRate: panel.sampleRate, latencyHint: "interactive"}); } catch (e) { actx = new Ctx(); }
      }
      if (actx.state === "suspended") await actx.resume();
      playAt = 0;
    } else {
      $("o-level").textContent = "listen to measure";
      $("m-level").value = -60;
    }
    subscribe();
  }

  function onAudio(chunk) {
    if (!panel.audio.on || !actx) return;
    if (get(chunk, "format", "") !== "INT16_LE") return;
    const channels = num(get(chunk, "channels"), 2), frames = num(get(chunk, "frames"));
    const rate = num(get(chunk, "sampleRate"), panel.sampleRate);
    const bin = atob(get(chunk, "pcm", ""));
    if (!frames || bin.length !== frames * channels * 2) return;  // a chunk that does not add up: refuse it
    panel.audio.chunks++;
    const now = actx.currentTime;
    if (playAt < now) {  // first chunk, or the buffer ran dry: start again a jitter buffer ahead
      if (playAt) panel.audio.underruns++;
      playAt = now + JITTER_S;
    }
    if (playAt - now > STALE_S) { panel.audio.dropped++; return; }  // queued too far ahead: stale, drop
    const buf = actx.createBuffer(channels, frames, rate);
    const out = [];
    for (let ch = 0; ch < channels; ch++) out.push(buf.getChannelData(ch));
    for (let i = 0, k = 0; i < frames; i++) {
      for (let ch = 0; ch < channels; ch++, k += 2) {
        let v = bin.charCodeAt(k) | (bin.charCodeAt(k + 1) << 8);
        if (v & 0x8000) v -= 0x10000;
        const x = v / 32767;
        out[ch][i] = x;
        const a = Math.abs(x);
        if (a > levelPeak) levelPeak = a;
        levelSum += x * x;
        levelN++;
      }
    }
    const src = actx.createBufferSource();
    src.buffer = buf;
    src.connect(actx.destination);
    src.start(playAt);
    playAt += frames / rate;
  }

  function showLevel() {
    if (!panel.audio.on || !levelN) return;
    const rms = Math.sqrt(levelSum / levelN);
    const db = (x) => (x > 0 ? 20 * Math.log10(x) : -120);
    $("m-level").value = Math.max(-60, db(rms));
    $("o-level").textContent = `${db(rms).toFixed(0)} dB rms, peak ${db(levelPeak).toFixed(0)}`;
    levelPeak = levelSum = levelN = 0;
  }

  // ------------------------------------------------------------------ frames

  let lastLevel = 0;
  function frame(ts) {
    panel.frames++;
    drawChart();
    if (pending) showPending();
    if (ts - lastLevel > 100) { showLevel(); lastLevel = ts; }
    requestAnimationFrame(frame);
  }

  panel.audioContextState = () => (actx ? actx.state : "none");
  $("listen").addEventListener("click", toggleListen);
  requestAnimationFrame(frame);
  connect();
})();
