// The protocol's schema, read once: proto/cadenza_v1.proto loaded with protobufjs at import, and every table the
// client needs (request and reply kinds, topics, control names and types, enum names) derived from it, so a
// field or enum value added to the .proto reaches this client without an edit here.
//
// The .proto is the repository's (the single copy, beside proto/PROTOCOL.md); CADENZA_PROTO names another.
// Imports nothing from this package: errors.js, wire.js and client.js build on it.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The .proto this client reads unless CADENZA_PROTO names another: the repository's own. */
export const DEFAULT_PROTO_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'proto',
  'cadenza_v1.proto');
/** The .proto this process loaded. */
export const PROTO_PATH = process.env.CADENZA_PROTO || DEFAULT_PROTO_PATH;

function load(path) {
  let text;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cadenza-client cannot read the protocol file ${JSON.stringify(path)} (${err.code ?? err.message}); `
      + 'set CADENZA_PROTO to the path of cadenza_v1.proto');
  }
  const { root } = protobuf.parse(text, { keepCase: true }); // field names exactly as in the .proto
  root.resolveAll();
  return root;
}

/** The protobufjs root of package cadenza.v1. */
export const root = load(PROTO_PATH);
const type = (name) => root.lookupType(`cadenza.v1.${name}`);
const enumOf = (name) => root.lookupEnum(`cadenza.v1.${name}`);
export const Envelope = type('Envelope');
const Controls = type('Controls');
const Event = type('Event');

/** Enum value number → name, with the *_UNSPECIFIED zero left out. */
function names(enumName, rename = (n) => n) {
  const out = {};
  for (const [name, number] of Object.entries(enumOf(enumName).values)) if (number !== 0) out[number] = rename(name);
  return Object.freeze(out);
}

function byName(numbered) {
  return Object.freeze(Object.fromEntries(Object.entries(numbered).map(([n, name]) => [name, Number(n)])));
}

const lower = (name) => name.toLowerCase();
const bodies = Envelope.oneofs.body.fieldsArray;

/** Request names: the Envelope.body fields 10-29. */
export const REQUEST_KINDS = Object.freeze(bodies.filter((f) => f.id >= 10 && f.id < 30).map((f) => f.name));
/** Reply names: the Envelope.body fields 30-39. */
export const REPLY_KINDS = Object.freeze(bodies.filter((f) => f.id >= 30 && f.id < 40).map((f) => f.name));
/** Event topics: the Event.payload fields (the first frame on the events socket). */
export const TOPICS = Object.freeze(Event.oneofs.payload.fieldsArray.map((f) => f.name));
/** The Controls fields in field order, and each one's protobuf type ("double", "bool", "NoteSet" …). */
export const CONTROL_NAMES = Object.freeze([...Controls.fieldsArray].sort((a, b) => a.id - b.id).map((f) => f.name));
export const CONTROL_TYPES = Object.freeze(Object.fromEntries(Controls.fieldsArray.map((f) => [f.name, f.type])));
/** Error.Code number → name (0 included), and name → number. */
export const ERROR_CODES = Object.freeze({ ...enumOf('Error.Code').valuesById });
export const ERROR_NUMBERS = Object.freeze({ ...enumOf('Error.Code').values });
/** Graph curve-shape name ("s-curve") → SetParameters.RampShape number. */
export const RAMP_SHAPES = byName(names('SetParameters.RampShape', (n) => lower(n).replace('_', '-')));
/** Transport action name ("reset_context") → Transport.Action number. */
export const TRANSPORT_ACTIONS = byName(names('Transport.Action', lower));
/** StateChange.Phase number → "scheduled" | "started" | "completed" | "cancelled". */
export const STATE_PHASES = names('StateChange.Phase', lower);
/** ParameterInfo.Kind number → "continuous" | "discrete" | "labeled". */
export const PARAMETER_KINDS = names('ParameterInfo.Kind', lower);
/** LoadGraph.Format name ("yaml") → number. */
export const GRAPH_FORMATS = byName(names('LoadGraph.Format', lower));
/** AudioChunk.SampleFormat number → [name ("float32"), bytes per sample], from the enum names (FLOAT32_LE). */
export const SAMPLE_FORMATS = Object.freeze(Object.fromEntries(Object.entries(names('AudioChunk.SampleFormat'))
  .map(([n, name]) => [n, Object.freeze([lower(name.replace(/_LE$/, '')), Number(/\d+/.exec(name)[0]) / 8])])));
