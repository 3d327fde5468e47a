// The conformance vectors (proto/vectors/manifest.json, see proto/PROTOCOL.md) from the Node client's side:
// it decodes every reply, event and audio chunk to what the manifest says, builds the well-formed requests
// byte for byte, and refuses locally only what the runtime refuses with the same code.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import {
  ServerError, TRANSPORT_ACTIONS, ackView, controlsRequest, decodeAudio, decodeEvent, decodeReply, describeView,
  Envelope, encodeRequest, graphRequest, helloRequest, parametersRequest, promptsRequest, serverError, statusView,
} from '../src/index.js';
import { REPO } from '../testing/serve.js';

const MANIFEST = join(REPO, 'proto', 'vectors', 'manifest.json');
const CANONICAL = { longs: String, enums: String, bytes: String, defaults: true, oneofs: false };
const hex = (text) => Buffer.from(text, 'hex');

/** True for what proto3 JSON prints for a field at its default (what an expected object may leave out). */
function isDefault(value) {
  if (value === null || value === undefined || value === false || value === 0 || value === '' || value === '0') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'string') return /_UNSPECIFIED$/.test(value);
  if (typeof value === 'object') return Object.values(value).every(isDefault);
  return false;
}

/** Compare decoded (protobufjs toObject, canonical options) with the manifest's proto3 JSON. */
function sameJson(actual, expected, path = '$') {
  if (expected === 'NaN' || expected === 'Infinity' || expected === '-Infinity') {
    assert.ok(Object.is(actual, Number(expected)), `${path}: ${actual} is not ${expected}`);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: not a list: ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((e, i) => sameJson(actual[i], e, `${path}[${i}]`));
    return;
  }
  if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: not an object: ${JSON.stringify(actual)}`);
    for (const [key, value] of Object.entries(expected)) {
      assert.ok(key in actual && actual[key] !== null && actual[key] !== undefined || isDefault(value),
        `${path}.${key}: missing in ${JSON.stringify(actual).slice(0, 300)}`);
      if (key in actual && actual[key] !== null && actual[key] !== undefined) sameJson(actual[key], value, `${path}.${key}`);
    }
    for (const [key, value] of Object.entries(actual)) {
      if (!(key in expected)) assert.ok(isDefault(value), `${path}.${key}: unexpected ${JSON.stringify(value)}`);
    }
    return;
  }
  assert.equal(actual, expected, path);
}

const toNumber = (v) => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v);

/** A request vector's Envelope JSON → [kind, body] built by the client's own request builders (null: not buildable). */
function build(kind, json) {
  switch (kind) {
    case 'hello':
      return JSON.stringify(json.supported_versions) === '[1]' ? helloRequest(json.client_name) : null;
    case 'get_status':
    case 'describe_graph':
      return {};
    case 'trigger':
    case 'set_state':
      return { name: json.name };
    case 'set_parameters': {
      const values = Object.fromEntries(json.values.map((v) => [v.name, 'label' in v ? v.label : toNumber(v.number)]));
      const shapes = { S_CURVE: 's-curve', LINEAR: 'linear', LOG: 'log', EXP: 'exp', SINE: 'sine', CONSTANT: 'constant' };
      return parametersRequest(values, { ramp: json.ramp_seconds === undefined ? null : toNumber(json.ramp_seconds),
        shape: shapes[json.ramp_shape] ?? null, bypass: json.bypass, clamp: json.clamp,
        clientTime: json.client_time ?? null });
    }
    case 'set_controls': {
      const controls = { ...(json.controls ?? {}) };
      if (controls.notes) controls.notes = controls.notes.midi ?? [];
      if (controls.seed !== undefined) controls.seed = Number(controls.seed);
      return controlsRequest(controls, json.clear ?? []);
    }
    case 'transport': {
      const action = TRANSPORT_ACTIONS[String(json.action).toLowerCase()];
      return action === undefined ? null : { action };
    }
    case 'load_graph': {
      const source = json.text !== undefined ? { text: json.text } : { path: json.path };
      if (json.base_dir) source.baseDir = json.base_dir;
      const format = { YAML: 'yaml', JSON: 'json' }[json.format];
      return graphRequest(source, format ? { format } : {})[0];
    }
    case 'set_prompts':
      return promptsRequest(json.prompts.map((p) => ('text' in p ? [p.text, p.weight ?? null] : { audioPath: p.audio_path,
        weight: p.weight })).map((p) => (Array.isArray(p) && p[1] === null ? p[0] : p)));
    default:
      return null;
  }
}

const REQUEST_KINDS = ['hello', 'get_status', 'describe_graph', 'trigger', 'set_state', 'set_parameters', 'set_controls',
  'transport', 'load_graph', 'set_prompts'];

describe('conformance vectors', { skip: !existsSync(MANIFEST) && 'proto/vectors/manifest.json is not there' }, () => {
  const manifest = existsSync(MANIFEST) ? JSON.parse(readFileSync(MANIFEST, 'utf8')) : {};

  test('the manifest is the format this test reads', () => {
    assert.equal(manifest.format, 'cadenza-conformance-vectors');
    assert.equal(manifest.format_version, 1);
    assert.equal(manifest.protocol_version, 1);
    assert.ok(manifest.replies.length && manifest.events.length && manifest.audio.length && manifest.sessions.length);
  });

  test('replies decode to the manifest, and into the client views', () => {
    for (const vector of manifest.replies) {
      const reply = decodeReply(hex(vector.hex));
      sameJson(Envelope.toObject(Envelope.decode(hex(vector.hex)), CANONICAL), vector.decoded, vector.name);
      assert.equal(reply.requestId, Number(vector.decoded.request_id), vector.name);
      const body = vector.decoded[reply.kind];
      assert.ok(body, `${vector.name}: kind ${reply.kind}`);
      if (reply.kind === 'ok') {
        const ack = ackView(reply.body);
        assert.equal(ack.streamTime, body.stream_time === undefined ? null : Number(body.stream_time), vector.name);
        assert.deepEqual(ack.warnings, body.warnings ?? []);
      } else if (reply.kind === 'status') {
        const st = statusView(reply.body);
        assert.equal(st.state, body.state ?? '');
        assert.equal(st.streamTime, Number(body.stream_time ?? 0));
        assert.equal(st.server?.sessionId, body.server?.session_id);
        for (const [name, v] of Object.entries(body.parameters ?? {})) assert.equal(st.parameters[name], v.label ?? v.number);
        for (const [topic, seq] of Object.entries(body.event_sequences ?? {})) assert.equal(st.eventSequences[topic], Number(seq));
      } else if (reply.kind === 'graph_description') {
        const g = describeView(reply.body);
        assert.deepEqual(g.parameters.map((p) => p.name), body.parameters.map((p) => p.name));
        assert.deepEqual(g.parameters.map((p) => p.kind), body.parameters.map((p) => p.kind.toLowerCase()));
        assert.deepEqual(g.states, (body.states ?? []).map((s) => s.name));
      } else if (reply.kind === 'error') {
        const err = serverError(reply.body.code, reply.body.message, { field: reply.body.field });
        assert.equal(err.code, body.code, vector.name);
        assert.ok(err instanceof ServerError);
        assert.notEqual(err.constructor, ServerError, `${body.code} has its own class`);
        assert.equal(err.field, body.field ?? '');
      }
    }
  });

  test('events decode to the manifest, and into the client views', () => {
    for (const vector of manifest.events) {
      const frames = vector.frames.map(hex);
      const event = decodeEvent(frames);
      sameJson(Envelope.toObject(Envelope.decode(frames[1]), CANONICAL), vector.decoded, vector.name);
      const ev = vector.decoded.event;
      assert.equal(event.topic, vector.topic);
      assert.equal(event.sequence, Number(ev.sequence));
      assert.equal(event.streamTime, Number(ev.stream_time ?? 0));
      const p = ev[vector.topic];
      if (vector.topic === 'beat' || vector.topic === 'bar') {
        assert.deepEqual([event.beat, event.bar, event.beatInBar, event.bpm],
          [Number(p.beat ?? 0), Number(p.bar ?? 0), p.beat_in_bar ?? 0, p.bpm ?? 0], vector.name);
      } else if (vector.topic === 'state') {
        assert.equal(event.phase, String(p.phase).toLowerCase(), vector.name);
        assert.equal(event.name, p.name);
      } else if (vector.topic === 'mix') {
        assert.deepEqual(Object.keys(event.weights).sort(), Object.keys(p.weights).sort());
      } else if (vector.topic === 'status') {
        assert.equal(event.status.state, p.state ?? '');
      }
    }
  });

  test('audio chunks decode to the manifest samples (float32 and int16)', () => {
    const formats = new Set();
    for (const vector of manifest.audio) {
      const chunk = decodeAudio(hex(vector.hex));
      sameJson(Envelope.toObject(Envelope.decode(hex(vector.hex)), CANONICAL), vector.decoded, vector.name);
      formats.add(chunk.format);
      const flat = vector.samples.flat();
      assert.equal(chunk.pcm.length, flat.length, vector.name);
      flat.forEach((x, i) => assert.ok(Math.abs(chunk.pcm[i] - x) < 1e-6, `${vector.name}[${i}]: ${chunk.pcm[i]} vs ${x}`));
      assert.equal(chunk.channels, vector.samples[0].length);
    }
    assert.deepEqual([...formats].sort(), ['float32', 'int16']);
  });

  test('requests: the client builds the well-formed ones byte for byte, and refuses only what the runtime refuses', (t) => {
    let built = 0;
    let refused = 0;
    for (const session of manifest.sessions) {
      for (const vector of session.requests) {
        const where = `${session.name}/${vector.name}`;
        if (vector.request !== null && vector.frames.length === 1 && typeof vector.frames[0] === 'string') {
          // every request that decodes decodes to the manifest's JSON
          sameJson(Envelope.toObject(Envelope.decode(hex(vector.frames[0])), CANONICAL), vector.request, where);
        }
        const json = vector.request;
        if (json === null || vector.frames.length !== 1 || typeof vector.frames[0] !== 'string') continue;
        const kind = REQUEST_KINDS.find((k) => k in json);
        if (kind === undefined || json.protocol_version !== 1 || json.request_id === '0') continue;
        const expected = vector.expect.envelope?.error;
        let body;
        try {
          body = build(kind, json[kind]);
        } catch (err) {
          assert.ok(err instanceof ServerError && !err.remote, `${where}: ${err}`);
          assert.ok(expected, `${where}: refused locally (${err.code}) but the runtime accepts it`);
          assert.equal(err.code, expected.code, where);
          if (expected.field !== undefined) assert.equal(err.field, expected.field, where);
          refused += 1;
          continue;
        }
        if (body === null) continue;
        let frame;
        try {
          frame = Buffer.from(encodeRequest(kind, body, Number(json.request_id)));
        } catch (err) {
          assert.ok(expected && err.code === expected.code, `${where}: ${err}`);
          refused += 1;
          continue;
        }
        assert.equal(frame.toString('hex'), vector.frames[0], `${where}: the client's bytes`);
        built += 1;
      }
    }
    t.diagnostic(`built ${built} requests byte for byte, refused ${refused} locally with the runtime's code`);
    assert.ok(built >= 20, `only ${built} requests built`);
    assert.ok(refused >= 2, `only ${refused} requests refused locally`);
  });
});
