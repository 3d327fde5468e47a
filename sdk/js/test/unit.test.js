// The client's pieces without a runtime: sequence gaps, request builders, argument errors.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';

import {
  BadValue, Client, SequenceTracker, UnknownName, UsageError, controlsRequest, graphRequest, parametersRequest,
  promptsRequest,
} from '../src/index.js';
import { ACTION_GAME } from '../testing/serve.js';

test('sequence gaps: counted per stream; a restart (a number at or below the last) is a new baseline', () => {
  const tracker = new SequenceTracker();
  assert.equal(tracker.observe('beat', 5), 0, 'a late joiner has lost nothing');
  assert.equal(tracker.observe('beat', 6), 0);
  assert.equal(tracker.observe('beat', 9), 2);
  assert.equal(tracker.observe('bar', 1), 0);
  assert.equal(tracker.observe('beat', 1), 0, 'a restarted runtime counts from 1');
  assert.equal(tracker.observe('beat', 3), 1);
  assert.equal(tracker.lost, 3);
});

test('request builders: numbers, labels, booleans, ramps, prompts, controls, graphs', () => {
  assert.deepEqual(parametersRequest(new Map([['danger', 0.5], ['mode', 'combat'], ['alarm', true]])), {
    values: [{ name: 'danger', number: 0.5 }, { name: 'mode', label: 'combat' }, { name: 'alarm', number: 1 }],
  });
  assert.deepEqual(parametersRequest({ danger: 1 }, { ramp: 2, shape: 'exp', bypass: true, clamp: true, clientTime: 3.5 }),
    { values: [{ name: 'danger', number: 1 }], bypass: true, clamp: true, ramp_seconds: 2, ramp_shape: 4, client_time: 3.5 });
  assert.throws(() => parametersRequest({ danger: Infinity }), (e) => e instanceof BadValue && e.field === 'set_parameters.values[0].number');
  assert.throws(() => parametersRequest({ danger: {} }), BadValue);
  assert.throws(() => parametersRequest({ danger: 1 }, { shape: 'wobble' }), UsageError);

  assert.deepEqual(promptsRequest({ 'dark techno': 1, rain: 0.3 }),
    { prompts: [{ text: 'dark techno', weight: 1 }, { text: 'rain', weight: 0.3 }] });
  assert.deepEqual(promptsRequest(['a', ['b', 2], { audioPath: '/x/y.wav', weight: 0.5 }]),
    { prompts: [{ text: 'a' }, { text: 'b', weight: 2 }, { audio_path: '/x/y.wav', weight: 0.5 }] });
  assert.throws(() => promptsRequest([['a', -1]]), (e) => e instanceof BadValue && e.field === 'set_prompts.prompts[0].weight');

  assert.deepEqual(controlsRequest({ bpm: 120, scale: null, notes: [60, 64], mute_drums: true }),
    { controls: { bpm: 120, notes: { midi: [60, 64] }, mute_drums: true }, clear: ['scale'] });
  assert.deepEqual(controlsRequest({}, ['bpm']), { clear: ['bpm'] });
  assert.throws(() => controlsRequest({ tempo: 1 }), (e) => e instanceof UnknownName && e.field === 'set_controls.controls.tempo');
  assert.throws(() => controlsRequest({ notes: [200] }), BadValue);
  assert.throws(() => controlsRequest({ mute_bass: 1 }), BadValue);

  const [fromFile, file] = graphRequest(ACTION_GAME);
  assert.equal(file, ACTION_GAME);
  assert.equal(fromFile.base_dir, dirname(ACTION_GAME), 'a file is sent with its folder');
  assert.equal(fromFile.format, 1);
  assert.match(fromFile.text, /name: action-game/);
  assert.deepEqual(graphRequest({ path: '/srv/graphs/a.json', format: 'json' })[0], { path: '/srv/graphs/a.json', format: 2 });
  assert.deepEqual(graphRequest('cadenza_graph: 1\nname: x\n')[0], { text: 'cadenza_graph: 1\nname: x\n' });
  assert.throws(() => graphRequest('no/such/graph.yaml'), (e) => e instanceof UsageError && /no such graph file/.test(e.message));
});

test('client options are checked', () => {
  assert.throws(() => new Client({ control: 'localhost:5555' }), (e) => e instanceof UsageError && e.where === 'control');
  assert.throws(() => new Client({ timeout: 0 }), (e) => e instanceof UsageError && e.where === 'timeout');
  assert.throws(() => new Client({ heartbeat: -1 }), UsageError);
  assert.throws(() => new Client({ clientSecretKey: 'x'.repeat(40) }), UsageError);
});

test('without its .proto the client says which file it looked for and how to name another', () => {
  const index = join(dirname(ACTION_GAME), '..', '..', 'sdk', 'js', 'src', 'index.js');
  const done = spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(index)});`],
    { env: { ...process.env, CADENZA_PROTO: '/no/such/cadenza_v1.proto' }, encoding: 'utf8' });
  assert.notEqual(done.status, 0);
  assert.match(done.stderr, /cannot read the protocol file "\/no\/such\/cadenza_v1.proto" \(ENOENT\); set CADENZA_PROTO/);
});
