// The Node client against a real `cadenza serve` (synth backend, null sink) on free loopback ports.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  BadValue, Client, GraphInvalid, NotReady, PermissionDenied, RequestTimeout, STALE_AUDIO_S, TooLarge, UnknownName,
  UsageError, curveKeyPair,
} from '../src/index.js';
import { ACTION_GAME, Serve, freePorts, sleep } from '../testing/serve.js';

/** Poll `fn` until `predicate(value)` holds; fails naming `what` with the last value after `seconds`. */
async function until(fn, predicate, seconds, what) {
  const deadline = Date.now() + seconds * 1000;
  let value = await fn();
  while (!predicate(value)) {
    if (Date.now() > deadline) assert.fail(`${what} did not happen within ${seconds} s; last: ${JSON.stringify(value)}`);
    await sleep(30);
    value = await fn();
  }
  return value;
}

describe('a runtime with the action game', () => {
  let serve;
  let music;

  before(async () => {
    serve = await new Serve(['--graph', ACTION_GAME], { name: 'game' }).start();
    music = new Client({ control: serve.control, events: serve.events, name: 'node-test', timeout: 5 });
  });

  after(async () => {
    await music?.close();
    await serve?.kill();
  });

  test('hello: the runtime, its session and endpoints', async () => {
    const info = await music.hello();
    assert.equal(info.protocolVersion, 1);
    assert.deepEqual(info.supportedVersions, [1]);
    assert.match(info.sessionId, /^[0-9a-f]{16,}$/);
    assert.equal(info.sampleRate, 48000);
    assert.equal(info.channels, 2);
    assert.equal(info.backend, 'synth');
    assert.equal(info.endpoints.control, serve.control);
    assert.equal(info.endpoints.events, serve.events);
    assert.equal(info.endpoints.audio, serve.audio);
    assert.equal(music.server.sessionId, info.sessionId);
  });

  test('describe: parameters, states, triggers, prompts', async () => {
    const graph = await music.describe();
    assert.equal(graph.name, 'action-game');
    const byName = Object.fromEntries(graph.parameters.map((p) => [p.name, p]));
    assert.deepEqual(Object.keys(byName), ['danger', 'health', 'mode', 'intensity']);
    assert.deepEqual([byName.danger.kind, byName.danger.min, byName.danger.max, byName.danger.default],
      ['continuous', 0, 1, 0]);
    assert.deepEqual([byName.health.kind, byName.health.max, byName.health.default], ['discrete', 100, 100]);
    assert.deepEqual(byName.mode.labels, ['explore', 'tension', 'combat']);
    assert.equal(byName.mode.kind, 'labeled');
    assert.equal(byName.intensity.builtin, true);
    assert.deepEqual(graph.states, ['explore', 'tension', 'combat']);
    assert.equal(graph.drivenBy, 'mode');
    const boss = graph.triggers.find((t) => t.name === 'boss_defeated');
    assert.deepEqual([boss.stinger, boss.setState, boss.bump], ['victory', 'explore', 1]);
    assert.deepEqual(graph.stingers, ['victory']);
    assert.equal(graph.prompts.find((p) => p.name === 'battle').text, 'aggressive drum and bass');
  });

  test('set and setMany: values, bypass, ramp, clamp', async () => {
    const ack = await music.set({ health: 60 });
    assert.ok(ack.streamTime > 0 && ack.seconds === ack.streamTime / 48000, JSON.stringify(ack));
    await music.set('health', 55);
    await music.setMany({ danger: 0.25 }, { bypass: true });
    // applied at the next control tick (10 ms)
    let st = await until(() => music.status(), (s) => s.parameters.danger === 0.25, 2, 'danger 0.25');
    assert.equal(st.parameters.health, 55);

    await music.setMany({ danger: 1 }, { ramp: 0.3, shape: 's-curve' });
    st = await until(() => music.status(), (s) => s.parameters.danger === 1, 5, 'the ramp to 1');

    await music.setMany({ danger: 0 }, { bypass: true });
    await until(() => music.status(), (s) => s.parameters.danger === 0, 2, 'danger 0');
    await music.setMany({ danger: 7 }, { clamp: true, bypass: true });
    await until(() => music.status(), (s) => s.parameters.danger === 1, 2, 'danger clamped to its max, 1');

    await assert.rejects(music.set({ danger: 7 }), (err) => err instanceof BadValue && err.remote
      && err.code === 'BAD_VALUE' && err.field.startsWith('set_parameters.values[0]') && /7/.test(err.message));
  });

  test('setState and trigger: state and stinger events, status', async () => {
    const stream = music.events({ topics: ['state', 'stinger'] });
    try {
      await music.setState('combat');
      const started = await stream.waitFor((e) => e.topic === 'state' && e.name === 'combat' && e.phase === 'started', 8);
      assert.ok(started, 'a state event "started" for combat');
      assert.equal(started.previous, 'explore');
      await until(() => music.status(), (s) => s.state === 'combat', 5, 'status.state combat');

      const before = (await music.status()).parameters.intensity;
      await music.trigger('boss_defeated'); // stinger victory on the next bar, back to explore
      const stinger = await stream.waitFor((e) => e.topic === 'stinger', 8);
      assert.ok(stinger, 'a stinger event');
      assert.equal(stinger.name, 'victory');
      assert.ok(stinger.durationSeconds > 0);
      const after = (await music.status()).parameters.intensity;
      assert.ok(after > before, `intensity bumped: ${before} → ${after}`);
    } finally {
      stream.close();
    }
  });

  test('events: beats and bars in order with no gap, status and mix events', async () => {
    const beats = [];
    const onBeat = (e) => beats.push(e);
    music.onBeat(onBeat);
    const stream = music.events({ topics: ['bar', 'status', 'mix'] });
    try {
      const bar = await stream.waitFor((e) => e.topic === 'bar', 8);
      assert.ok(bar, 'a bar event');
      assert.equal(bar.beatInBar, 0);
      assert.ok(bar.bpm > 0);
      const status = await stream.waitFor((e) => e.topic === 'status', 5);
      assert.ok(status?.status.graphLoaded, 'a status event with a snapshot');
      const mix = await stream.waitFor((e) => e.topic === 'mix', 5);
      assert.ok(mix && Object.keys(mix.weights).includes('wander'), 'a mix event');
      await until(() => beats.length, (n) => n >= 3, 8, 'three beats');
    } finally {
      stream.close();
      music.off('beat', onBeat);
    }
    for (let i = 1; i < beats.length; i++) {
      assert.equal(beats[i].sequence, beats[i - 1].sequence + 1, 'beat sequences count up by one');
      assert.ok(beats[i].streamTime > beats[i - 1].streamTime);
    }
    assert.equal(beats[0].seconds, beats[0].streamTime / 48000);
    assert.equal(music.eventsLost, 0);
    assert.equal(music.eventsBad, 0);
  });

  test('setControls and transport: overrides, pause and play', async () => {
    await music.setControls({ bpm: 100, scale: 'A minor' });
    let st = await until(() => music.status(), (s) => s.effectiveControls.bpm === 100, 2, 'bpm 100 in effect');
    assert.deepEqual([st.controls.bpm, st.controls.scale], [100, 'A minor']);
    assert.equal(st.effectiveControls.bpm, 100);
    await music.setControls({ scale: null });
    await music.clearControls('bpm');
    await until(() => music.status(), (s) => Object.keys(s.controls).length === 0, 2, 'no overrides');

    await music.pause();
    await until(() => music.status(), (s) => s.playing === false, 2, 'paused');
    await music.play();
    await until(() => music.status(), (s) => s.playing === true, 2, 'playing');
  });

  test('errors: typed by code, with the field; refused before sending', async () => {
    await assert.rejects(music.set({ nope: 1 }), (err) => err instanceof UnknownName
      && err.field === 'set_parameters.values[0].name' && /nope/.test(err.message) && /danger/.test(err.message));
    await assert.rejects(music.trigger('nope'), UnknownName);
    await assert.rejects(music.setState('nope'), UnknownName);
    const sent = music._requestId;
    await assert.rejects(music.set({ danger: NaN }), (err) => err instanceof BadValue && err.remote === false
      && err.field === 'set_parameters.values[0].number');
    await assert.rejects(music.setMany({ danger: 0.5 }, { ramp: -1 }), BadValue);
    await assert.rejects(music.setControls({ tempo: 1 }), UnknownName);
    await assert.rejects(music.setMany({ danger: 0.5 }, { shape: 'wobble' }), UsageError);
    assert.throws(() => music.on('beats', () => {}), UsageError);
    assert.equal(music._requestId, sent, 'nothing was sent');
    const huge = Object.fromEntries(Array.from({ length: 40000 }, (_, i) => [`p${i}_${'x'.repeat(20)}`, i]));
    await assert.rejects(music.setMany(huge), (err) => err instanceof TooLarge && err.remote === false);
    await assert.rejects(music.loadGraph('cadenza_graph: 1\nname: broken\nparameters: 12\n'),
      (err) => err instanceof GraphInvalid && err.issues.length >= 1);
    assert.equal((await music.status()).graphName, 'action-game', 'the refused graph changed nothing');
  });

  test('audio: float32 and int16 chunks of the same stream', async () => {
    const f32 = await music.audio();
    const i16 = await music.audio({ format: 'int16' });
    try {
      const a = await f32.read(5);
      const b = await i16.read(5);
      assert.ok(a && b, 'a chunk from each');
      assert.equal(a.format, 'float32');
      assert.equal(b.format, 'int16');
      for (const c of [a, b]) {
        assert.equal(c.channels, 2);
        assert.equal(c.sampleRate, 48000);
        assert.equal(c.pcm.length, c.frames * c.channels);
        assert.ok(c.pcm.every((x) => x >= -1 && x <= 1));
      }
      assert.equal(a.raw.length, 2 * b.raw.length, 'int16 halves the PCM bytes');
      assert.equal(f32.lost, 0);
    } finally {
      f32.close();
      i16.close();
    }
  });

  test('audio: a reader that stalls gets no chunk older than the stale bound when it reads again', async () => {
    const audio = await music.audio();
    try {
      for (let i = 0; i < 20; i += 1) assert.ok(await audio.read(5), 'a chunk before the stall'); // as a player reads
      await sleep(2500); // not reading: chunks pile up in ZeroMQ's queues (10 + 10 chunks, 64 KiB buffers) or are dropped
      const chunk = await audio.read(5);
      const now = await music.status();
      const behind = (now.streamTime - chunk.streamTime) / 48000;
      assert.ok(behind <= STALE_AUDIO_S + now.lookaheadMs / 1000 + 0.2,
        `the chunk read after the stall is ${behind.toFixed(3)} s behind the stream (stale dropped: ${audio.stale})`);
    } finally {
      audio.close();
    }
  });

  test('a request without a runtime times out, and a new socket is made', async () => {
    const [port] = await freePorts(1);
    const lonely = new Client({ control: `tcp://127.0.0.1:${port}`, timeout: 0.3, heartbeat: 0 });
    try {
      const t0 = Date.now();
      await assert.rejects(lonely.status(), (err) => err instanceof RequestTimeout && err.request === 'hello');
      assert.ok(Date.now() - t0 < 3000);
      assert.equal(lonely._needsHello, true);
    } finally {
      await lonely.close();
    }
    await assert.rejects(lonely.status(), /closed/);
  });
});

describe('kill -9 and restart', () => {
  let serve;

  before(async () => {
    serve = await new Serve([], { name: 'restart' }).start();
  });

  after(async () => {
    await serve?.kill();
  });

  test('NOT_READY without a graph; after a restart the client re-syncs and no stale request runs', async (t) => {
    const music = new Client({ control: serve.control, events: serve.events, name: 'node-restart', timeout: 1,
      heartbeat: 0.2 });
    try {
      await assert.rejects(music.describe(), NotReady);
      await music.loadGraph(ACTION_GAME);
      await music.setMany({ danger: 0.3, health: 70 }, { bypass: true });
      await music.setControls({ bpm: 100 });
      const first = music.server.sessionId;

      await serve.kill('SIGKILL');
      // requests while the runtime is gone: each times out; none may reach the next runtime
      await assert.rejects(music.setState('combat'), RequestTimeout);
      await assert.rejects(music.trigger('boss_defeated'), RequestTimeout);
      await assert.rejects(music.set({ danger: 0.9, health: 5 }), RequestTimeout);

      await serve.start({ samePorts: true });
      const observer = new Client({ control: serve.control, timeout: 5, heartbeat: 0, autoReconnect: false });
      try {
        // the heartbeat brings the graph back without any request from the game
        const st = await until(() => observer.status(),
          (s) => s.graphLoaded && s.parameters.health === 70 && s.controls.bpm === 100, 20, 'the re-sync');
        assert.notEqual(observer.server.sessionId, first);
        assert.equal(st.graphName, 'action-game');
        assert.equal(st.parameters.danger, 0.3, 'the last accepted value, not the timed-out 0.9');
        assert.equal(st.parameters.health, 70);
        assert.equal(st.controls.bpm, 100);
        assert.equal(st.state, 'explore', 'the timed-out SetState never ran');
        assert.ok(!st.eventSequences.stinger, 'the timed-out Trigger never ran');
        // what the new runtime received (Status.requests, by kind): the re-sync and the observer, nothing stale
        const received = JSON.stringify(st.requests);
        t.diagnostic(`the new runtime received ${received}`);
        for (const kind of ['set_state', 'trigger']) assert.ok(!st.requests[kind], `${kind} received: ${received}`);
        const resync = ['hello', 'load_graph', 'set_parameters', 'set_controls', 'get_status'];
        assert.deepEqual(Object.keys(st.requests).filter((k) => !resync.includes(k)), [], received);
        assert.ok(st.requests.load_graph >= 1 && st.requests.set_parameters >= 1, received);
        assert.ok(music.reconnects >= 1);
        await music.set({ danger: 0.6 });
        const now = await until(() => observer.status(), (s) => s.parameters.danger > 0.3, 5, 'a new value');
        assert.equal(now.state, 'explore');
      } finally {
        await observer.close();
      }
    } finally {
      await music.close();
    }
  });

  test('setPrompts: weighted prompts without a graph', async () => {
    const music = new Client({ control: serve.control, timeout: 5, heartbeat: 0 });
    try {
      await music.setPrompts({ 'dark techno': 1, 'calm ambient pads': 0.5 });
      const st = await until(() => music.status(), (s) => Object.keys(s.weights).length === 2, 3, 'two prompts');
      assert.equal(st.graphLoaded, false);
      await assert.rejects(music.setPrompts([['dark techno', -1]]), BadValue);
    } finally {
      await music.close();
    }
  });
});

describe('CurveZMQ', () => {
  const keys = mkdtempSync(join(tmpdir(), 'cadenza-node-keys-'));
  const server = curveKeyPair();
  const reader = curveKeyPair();
  let serve;

  before(async () => {
    writeFileSync(join(keys, 'server.key'), `${server.secretKey}\n`, { mode: 0o600 });
    mkdirSync(join(keys, 'readonly'));
    writeFileSync(join(keys, 'readonly', 'panel.pub'), `${reader.publicKey}\n`);
    serve = await new Serve(['--graph', ACTION_GAME, '--curve-secret-key', join(keys, 'server.key'),
      '--curve-readonly', join(keys, 'readonly')], { name: 'curve' }).start();
  });

  after(async () => {
    await serve?.kill();
    rmSync(keys, { recursive: true, force: true });
  });

  test('a read-only key may look, not touch; without keys there is no reply', async () => {
    const panel = new Client({ control: serve.control, events: serve.events, timeout: 5, heartbeat: 0,
      serverPublicKey: server.publicKey, clientSecretKey: reader.secretKey, clientPublicKey: reader.publicKey });
    const plain = new Client({ control: serve.control, timeout: 0.5, heartbeat: 0, autoReconnect: false });
    try {
      assert.equal((await panel.status()).graphName, 'action-game');
      assert.equal((await panel.describe()).name, 'action-game');
      await assert.rejects(panel.set({ danger: 1 }), (err) => err instanceof PermissionDenied && err.remote);
      await assert.rejects(plain.status(), RequestTimeout);
    } finally {
      await panel.close();
      await plain.close();
    }
  });
});
