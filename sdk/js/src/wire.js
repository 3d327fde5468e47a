// The wire format for the Node client: envelopes to bytes and back (one ZeroMQ frame per request and per reply;
// [topic, envelope] per event; one frame per audio chunk) and the friendly views of replies and events. The
// message types and enum tables come from protocol.js (the repository's .proto, loaded at run time).

import { ProtocolError, serverError } from './errors.js';
import {
  CONTROL_NAMES, CONTROL_TYPES, DEFAULT_PROTO_PATH, ERROR_CODES, ERROR_NUMBERS, Envelope, GRAPH_FORMATS,
  PARAMETER_KINDS, PROTO_PATH, RAMP_SHAPES, REPLY_KINDS, REQUEST_KINDS, SAMPLE_FORMATS, STATE_PHASES, TOPICS,
  TRANSPORT_ACTIONS,
} from './protocol.js';

export {
  CONTROL_NAMES, CONTROL_TYPES, DEFAULT_PROTO_PATH, ERROR_CODES, ERROR_NUMBERS, Envelope, GRAPH_FORMATS, PROTO_PATH,
  RAMP_SHAPES, REPLY_KINDS, REQUEST_KINDS, SAMPLE_FORMATS, TOPICS, TRANSPORT_ACTIONS,
};

/** The protocol version this client speaks and puts on every envelope. */
export const PROTOCOL_VERSION = 1;
/** Every version this client can read. */
export const SUPPORTED_VERSIONS = Object.freeze([1]);
/** The largest encoded message the runtime accepts (1 MiB); larger requests are refused here as TOO_LARGE. */
export const MAX_MESSAGE_BYTES = 1 << 20;
/** The sockets' ZMQ_MAXMSGSIZE: above MAX_MESSAGE_BYTES, so a somewhat large reply is still read and refused. */
export const SOCKET_MAX_MESSAGE_BYTES = 4 * MAX_MESSAGE_BYTES;
/** Stream time is in samples at this rate until Hello says otherwise. */
export const DEFAULT_SAMPLE_RATE = 48000;
const INT16_SCALE = 32767;

/** A protobuf 64-bit value (Long or number) → a JS number (exact up to 2**53: 5,900 years of samples). */
export function num(value) {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  if (typeof value.toNumber === 'function') return value.toNumber();
  return Number(value);
}

function has(message, field) {
  return message !== null && message !== undefined && Object.prototype.hasOwnProperty.call(message, field)
    && message[field] !== null && message[field] !== undefined;
}

// ------------------------------------------------------------------------------------------- requests

/**
 * One request frame: Envelope{protocol_version, request_id, <kind>: body}. Throws TOO_LARGE past 1 MiB.
 * @param {string} kind one of REQUEST_KINDS
 * @param {object} body the request message as a plain object (field names as in the .proto)
 * @param {number} requestId never 0
 */
export function encodeRequest(kind, body, requestId) {
  // a plain object straight to the encoder (enums as numbers, as the builders make them): no fromObject copy
  const data = Envelope.encode({ protocol_version: PROTOCOL_VERSION, request_id: requestId, [kind]: body ?? {} }).finish();
  if (data.length > MAX_MESSAGE_BYTES) {
    throw serverError(ERROR_NUMBERS.TOO_LARGE, `the encoded ${kind} is ${data.length} bytes, over the limit of ${MAX_MESSAGE_BYTES} bytes`,
      { field: kind, remote: false });
  }
  return data;
}

/**
 * A reply frame → { requestId, kind, body } with body the raw decoded message.
 * Throws ProtocolError for bytes that are not an Envelope with a reply.
 */
export function decodeReply(frame) {
  let env;
  try {
    env = Envelope.decode(frame);
  } catch (err) {
    throw new ProtocolError(`a reply of ${frame.length} bytes is not a cadenza.v1.Envelope: ${err.message}`);
  }
  const kind = env.body;
  if (!REPLY_KINDS.includes(kind)) {
    throw new ProtocolError(`expected a reply (${REPLY_KINDS.join(', ')}), got ${kind ?? 'no body'}`);
  }
  return { requestId: num(env.request_id), version: env.protocol_version, kind, body: env[kind] };
}

// ------------------------------------------------------------------------------------------- views

/** Controls message → plain object of the controls that are set ({bpm: 120, notes: [60, 64]}). */
export function controlsView(controls) {
  const out = {};
  if (!controls) return out;
  for (const name of CONTROL_NAMES) {
    if (!has(controls, name)) continue;
    const value = controls[name];
    if (name === 'notes') out.notes = (value.midi ?? []).slice();
    else if (name === 'seed') out.seed = num(value);
    else out[name] = value;
  }
  return out;
}

function parameterValue(pv) {
  if (!pv) return null;
  if (pv.value === 'number') return pv.number;
  if (pv.value === 'label') return pv.label;
  return null;
}

function mapNumbers(map) {
  const out = {};
  for (const key of Object.keys(map ?? {}).sort()) out[key] = num(map[key]);
  return out;
}

function sortedCopy(map) {
  const out = {};
  for (const key of Object.keys(map ?? {}).sort()) out[key] = map[key];
  return out;
}

/** ServerInfo → { protocolVersion, sessionId, sampleRate, endpoints, … }. */
export function serverInfoView(info) {
  return {
    protocolVersion: info.protocol_version,
    supportedVersions: (info.supported_versions ?? []).slice(),
    serverVersion: info.server_version,
    backend: info.backend,
    controls: (info.controls ?? []).slice(),
    audioPrompts: info.audio_prompts,
    beatGrid: info.beat_grid,
    sampleRate: info.sample_rate || DEFAULT_SAMPLE_RATE,
    channels: info.channels,
    sessionId: info.session_id,
    endpoints: sortedCopy(info.endpoints),
  };
}

/** Status → a plain snapshot (camelCase; stream time in samples and seconds). */
export function statusView(status, sampleRate = DEFAULT_SAMPLE_RATE) {
  const server = has(status, 'server') ? serverInfoView(status.server) : null;
  const rate = server ? server.sampleRate : sampleRate;
  const parameters = {};
  for (const name of Object.keys(status.parameters ?? {}).sort()) {
    const value = parameterValue(status.parameters[name]);
    if (value !== null) parameters[name] = value;
  }
  const streamTime = num(status.stream_time);
  return {
    graphLoaded: status.graph_loaded,
    graphName: status.graph_name,
    state: status.state,
    weights: sortedCopy(status.weights),
    parameters,
    controls: controlsView(status.controls),
    effectiveControls: controlsView(status.effective_controls),
    streamTime,
    seconds: streamTime / rate,
    playing: status.playing,
    xruns: num(status.xruns),
    lookaheadMs: status.lookahead_ms,
    eventSequences: mapNumbers(status.event_sequences),
    audioSequence: num(status.audio_sequence),
    eventsDropped: num(status.events_dropped),
    repliesDropped: num(status.replies_dropped),
    sinkFaults: sortedCopy(status.sink_faults),
    faults: sortedCopy(status.faults),
    faultsTotal: num(status.faults_total),
    pendingState: status.pending_state,
    pendingStateTime: num(status.pending_state_time),
    // newer fields: absent (0 / {}) when the .proto or the runtime predates them
    controlDisconnects: num(status.control_disconnects),
    controlConnections: num(status.control_connections),
    requests: mapNumbers(status.requests),
    server,
  };
}

/** Ok → { streamTime, seconds, warnings } (streamTime null when the runtime did not say). */
export function ackView(ok, sampleRate = DEFAULT_SAMPLE_RATE) {
  if (!ok || !has(ok, 'stream_time')) return { streamTime: null, seconds: null, warnings: (ok?.warnings ?? []).slice() };
  const streamTime = num(ok.stream_time);
  return { streamTime, seconds: streamTime / sampleRate, warnings: (ok.warnings ?? []).slice() };
}

/** GraphDescription → { name, parameters: [{name, kind, min, max, labels, default, value, builtin}], … }. */
export function describeView(desc) {
  return {
    name: desc.name,
    parameters: (desc.parameters ?? []).map((p) => ({
      name: p.name,
      kind: PARAMETER_KINDS[p.kind] ?? '',
      min: p.min,
      max: p.max,
      labels: (p.labels ?? []).slice(),
      default: parameterValue(p.default_value),
      value: parameterValue(p.value),
      builtin: p.builtin,
    })),
    states: (desc.states ?? []).map((s) => s.name),
    state: desc.state,
    drivenBy: desc.driven_by,
    triggers: (desc.triggers ?? []).map((t) => ({
      name: t.name, stinger: t.stinger, setState: t.set_state, bump: t.bump,
    })),
    prompts: (desc.prompts ?? []).map((p) => ({
      name: p.name,
      text: p.source === 'text' ? p.text : null,
      audio: p.source === 'audio' ? p.audio : null,
      weight: p.weight,
    })),
    stingers: (desc.stingers ?? []).slice(),
    controls: controlsView(desc.controls),
  };
}

// ------------------------------------------------------------------------------------------- events

/**
 * Event frames [topic, envelope] → { topic, sequence, streamTime, seconds, …payload fields }.
 * Throws ProtocolError for frames that are not a well-formed event.
 */
export function decodeEvent(frames, sampleRate = DEFAULT_SAMPLE_RATE) {
  if (frames.length !== 2) throw new ProtocolError(`an event is 2 frames [topic, envelope], got ${frames.length}`);
  const topic = Buffer.from(frames[0]).toString('latin1');
  let env;
  try {
    env = Envelope.decode(frames[1]);
  } catch (err) {
    throw new ProtocolError(`event ${JSON.stringify(topic)} is not a cadenza.v1.Envelope: ${err.message}`);
  }
  if (env.body !== 'event') throw new ProtocolError(`expected an event, got ${env.body ?? 'no body'}`);
  const ev = env.event;
  if (ev.topic !== topic) {
    throw new ProtocolError(`topic frame ${JSON.stringify(topic)} differs from the event's topic ${JSON.stringify(ev.topic)}`);
  }
  if (!TOPICS.includes(topic)) throw new ProtocolError(`unknown event topic ${JSON.stringify(topic)}`);
  if (ev.payload !== topic) {
    throw new ProtocolError(`a ${JSON.stringify(topic)} event carries ${ev.payload ?? 'no payload'}`);
  }
  const sequence = num(ev.sequence);
  if (sequence === 0) throw new ProtocolError('event sequence is 0; sequences count from 1');
  const streamTime = num(ev.stream_time);
  const head = { topic, sequence, streamTime, seconds: ev.stream_seconds || streamTime / sampleRate };
  const p = ev[topic];
  switch (topic) {
    case 'beat':
    case 'bar':
      return { ...head, beat: num(p.beat), bar: num(p.bar), beatInBar: p.beat_in_bar, bpm: p.bpm, estimated: p.estimated };
    case 'state':
      return { ...head, name: p.name, previous: p.previous, phase: STATE_PHASES[p.phase] ?? '',
        transition: p.transition, fadeSeconds: p.fade_seconds };
    case 'mix':
      return { ...head, weights: sortedCopy(p.weights) };
    case 'stinger':
      return { ...head, name: p.name, durationSeconds: p.duration_seconds };
    case 'xrun':
      return { ...head, count: num(p.count), framesLost: num(p.frames_lost), source: p.source };
    case 'warning':
      return { ...head, message: p.message, field: p.field };
    default:
      return { ...head, status: statusView(p, sampleRate) };
  }
}

// ------------------------------------------------------------------------------------------- audio

/**
 * An audio frame → { sequence, streamTime, sampleRate, channels, frames, format, pcm (Float32Array,
 * interleaved, in [-1, 1]), raw (the bytes as sent) }. Throws ProtocolError for a malformed chunk.
 */
export function decodeAudio(frame) {
  let env;
  try {
    env = Envelope.decode(frame);
  } catch (err) {
    throw new ProtocolError(`an audio frame of ${frame.length} bytes is not a cadenza.v1.Envelope: ${err.message}`);
  }
  if (env.body !== 'audio_chunk') throw new ProtocolError(`expected an audio_chunk, got ${env.body ?? 'no body'}`);
  const c = env.audio_chunk;
  const known = SAMPLE_FORMATS[c.format];
  if (!known) throw new ProtocolError(`audio sample format ${c.format} is not 1 (FLOAT32_LE) or 2 (INT16_LE)`);
  const [format, width] = known;
  if (!c.channels || !c.sample_rate) throw new ProtocolError('audio chunk with 0 channels or 0 sample_rate');
  const samples = c.frames * c.channels;
  if (c.pcm.length !== samples * width) {
    throw new ProtocolError(`pcm is ${c.pcm.length} bytes; ${c.frames} frames x ${c.channels} channels of `
      + `${width} bytes need ${samples * width}`);
  }
  const raw = Buffer.from(c.pcm.buffer, c.pcm.byteOffset, c.pcm.length);
  const pcm = new Float32Array(samples);
  if (format === 'float32') {
    for (let i = 0; i < samples; i++) pcm[i] = raw.readFloatLE(i * 4);
  } else {
    for (let i = 0; i < samples; i++) pcm[i] = raw.readInt16LE(i * 2) / INT16_SCALE;
  }
  return {
    sequence: num(c.sequence), streamTime: num(c.stream_time), sampleRate: c.sample_rate, channels: c.channels,
    frames: c.frames, format, pcm, raw,
  };
}
