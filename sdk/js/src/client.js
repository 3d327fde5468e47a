// The Node client: talk to a running `cadenza serve`, get its events, hear its audio.
//
//   import { Client } from 'cadenza-client';
//   const music = new Client({ name: 'my-game' });       // tcp://127.0.0.1:5555 (control), :5556 (events)
//   await music.loadGraph('examples/action_game/graph.yaml');   // read here, sent as text with its folder
//   music.on('beat', (ev) => console.log('beat', ev.beat, ev.bpm));
//   await music.set({ danger: 0.7, mode: 'combat' });
//   await music.trigger('boss_defeated');
//   console.log((await music.status()).state);
//   await music.close();
//
// Requests go out one at a time (a queue), each answered by exactly one reply within `timeout` seconds, or
// RequestTimeout. An Error reply rejects with its typed ServerError (UnknownName, BadValue, GraphInvalid,
// NotReady …) carrying the runtime's code, field and message; a value the runtime would refuse (a NaN)
// rejects the same way before anything is sent.
//
// Reconnecting (the Lazy Pirate pattern): a request that times out closes the DEALER and opens a new one
// (a request still queued on the old socket must never reach a restarted runtime), then says Hello. When
// the runtime's session_id differs from the one this client last synced with, the runtime restarted: the
// client re-sends what it made the runtime hold — its graph (LoadGraph with the text) or its prompts, its
// last parameter values in one SetParameters with bypass, its control overrides and its last transport
// action — and retries the request once. A Trigger or SetState is retried only when the runtime restarted
// (a live runtime may have executed it already). A NOT_READY reply while the client has a graph or prompts re-syncs
// and retries the same way. With `heartbeat` > 0 an idle client says Hello every `heartbeat` seconds, so
// the music comes back after a runtime restart even when the game sends nothing.

import { readFileSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import * as zmq from 'zeromq';

import {
  ClientStateError, NotReady, ProtocolError, RequestTimeout, ServerError, TransportError, UsageError,
  serverError,
} from './errors.js';
import {
  CONTROL_NAMES, CONTROL_TYPES, DEFAULT_SAMPLE_RATE, ERROR_NUMBERS, GRAPH_FORMATS, RAMP_SHAPES, SOCKET_MAX_MESSAGE_BYTES,
  SUPPORTED_VERSIONS, TOPICS, TRANSPORT_ACTIONS, ackView, decodeAudio, decodeEvent, decodeReply, describeView,
  encodeRequest, serverInfoView, statusView,
} from './wire.js';

// The endpoints used when none is given: $CADENZA_CONTROL, $CADENZA_EVENTS, $CADENZA_AUDIO, $CADENZA_AUDIO_INT16
// when set (read once, at import), else `cadenza serve`'s defaults.
export const DEFAULT_CONTROL = process.env.CADENZA_CONTROL || 'tcp://127.0.0.1:5555';
export const DEFAULT_EVENTS = process.env.CADENZA_EVENTS || 'tcp://127.0.0.1:5556';
export const DEFAULT_AUDIO = process.env.CADENZA_AUDIO || 'tcp://127.0.0.1:5557';
export const DEFAULT_AUDIO_INT16 = process.env.CADENZA_AUDIO_INT16 || 'tcp://127.0.0.1:5558';
export const DEFAULT_TIMEOUT = 2.0;
export const DEFAULT_HEARTBEAT = 1.0;
/** What a LoadGraph/SetPrompts may take on the runtime before its reply (`cadenza serve --load-timeout`, 10 s). */
export const DEFAULT_LOAD_TIMEOUT = 10.0;
const ENDPOINT_SCHEMES = ['tcp://', 'ipc://', 'inproc://'];
const GRAPH_SUFFIXES = ['.yaml', '.yml', '.json'];
const SOURCE_KINDS = new Set(['load_graph', 'set_prompts']);
const NOT_REMEMBERED = new Set(['hello', 'get_status', 'describe_graph']);
const REMEMBERED_TRANSPORT = new Set([1, 2, 3]); // PLAY, PAUSE, STOP (not RESET_CONTEXT)
/** Audio SUB receive queue: 10 chunks (100 ms) and a 64 KiB kernel buffer (32 KiB for int16), as PROTOCOL.md says. */
const AUDIO_HWM = 10;
const AUDIO_RCVBUF = 65536;
/** An already queued chunk lagging the live reference by more than this many seconds is stale (dropped). */
export const STALE_AUDIO_S = 0.5;
/** A chunk the reader waited this many seconds for came from the head of the queue: live audio. */
export const HEAD_WAIT_S = 0.003;
/** Late chunks arriving live, in a row, after which the later lag is followed (the runtime fell behind). */
export const LIVE_STREAK = 25;
const AUDIO_FORMATS = Object.freeze({ float32: DEFAULT_AUDIO, int16: DEFAULT_AUDIO_INT16 });
/** How often the heartbeat timer looks whether a Hello is due (ms). */
const HEARTBEAT_TICK_MS = 100;

// ------------------------------------------------------------------------------------------- checks

function checkEndpoint(endpoint, where) {
  if (typeof endpoint !== 'string' || !ENDPOINT_SCHEMES.some((s) => endpoint.startsWith(s))) {
    throw new UsageError(`endpoint ${JSON.stringify(endpoint)} must start with ${ENDPOINT_SCHEMES.join(', ')} `
      + `(e.g. ${JSON.stringify(DEFAULT_CONTROL)})`, { where });
  }
  return endpoint;
}

function checkSeconds(value, where, zeroOk) {
  const ok = typeof value === 'number' && Number.isFinite(value) && (zeroOk ? value >= 0 : value > 0);
  if (!ok) throw new UsageError(`must be a number of seconds ${zeroOk ? '>= 0 (0: none)' : '> 0'}, got ${value}`, { where });
  return value;
}

function checkTopic(topic) {
  if (!TOPICS.includes(topic)) {
    throw new UsageError(`unknown event topic ${JSON.stringify(topic)}; topics are ${TOPICS.join(', ')}`, { where: 'topic' });
  }
  return topic;
}

function badValue(message, field) {
  return serverError(ERROR_NUMBERS.BAD_VALUE, message, { field, remote: false });
}

function unknownControl(name, field) {
  return serverError(ERROR_NUMBERS.UNKNOWN_NAME, `unknown control ${JSON.stringify(name)}; controls are `
    + `${CONTROL_NAMES.join(', ')}`, { field, remote: false });
}

function finite(value, field, minimum = null) {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw badValue(`must be a finite number, got ${typeof value === 'number' ? value : JSON.stringify(value)}`, field);
  }
  if (minimum !== null && value < minimum) throw badValue(`must be >= ${minimum}, got ${value}`, field);
  return value;
}

function nameOf(value, field) {
  const name = value !== null && typeof value === 'object' && 'name' in value ? value.name : value;
  if (typeof name !== 'string') throw new UsageError(`expected a name, got ${typeof value}`, { where: field });
  if (!name) throw badValue('must not be empty', field);
  return name;
}

/** Set a socket's send and receive timeouts (ms), touching only those that change (each is a setsockopt). */
function setTimeouts(sock, send, receive) {
  if (sock.sendTimeout !== send) sock.sendTimeout = send;
  if (sock.receiveTimeout !== receive) sock.receiveTimeout = receive;
}

function zmqError(err, what) {
  return new TransportError(`${what}: ${err.message}${err.code ? ` (${err.code})` : ''}`);
}

/** The options every socket of this client gets: no linger, the size limit, CURVE keys. */
function socketOptions(keys) {
  const options = { linger: 0, maxMessageSize: SOCKET_MAX_MESSAGE_BYTES };
  if (keys) {
    options.curveServerKey = keys.serverPublicKey;
    options.curvePublicKey = keys.clientPublicKey;
    options.curveSecretKey = keys.clientSecretKey;
  }
  return options;
}

/** A new CurveZMQ key pair {publicKey, secretKey}, each 40 z85 characters (`cadenza serve` takes the secret one). */
export function curveKeyPair() {
  return zmq.curveKeyPair();
}

function curveKeys({ serverPublicKey, clientSecretKey, clientPublicKey }) {
  if (serverPublicKey === undefined || serverPublicKey === null) {
    if (clientSecretKey || clientPublicKey) {
      throw new UsageError("client CURVE keys need the server's public key too", { where: 'serverPublicKey' });
    }
    return null;
  }
  const z85 = (key, where) => {
    const text = String(key).trim();
    if (text.length !== 40) throw new UsageError(`a CurveZMQ key is 40 z85 characters, got ${text.length}`, { where });
    return text;
  };
  if (!clientSecretKey && !clientPublicKey) {
    const pair = zmq.curveKeyPair();
    return { serverPublicKey: z85(serverPublicKey, 'serverPublicKey'), clientPublicKey: pair.publicKey,
      clientSecretKey: pair.secretKey };
  }
  if (!clientSecretKey || !clientPublicKey) {
    throw new UsageError('give both clientSecretKey and clientPublicKey, or neither (an ephemeral pair)',
      { where: clientSecretKey ? 'clientPublicKey' : 'clientSecretKey' });
  }
  return { serverPublicKey: z85(serverPublicKey, 'serverPublicKey'), clientPublicKey: z85(clientPublicKey, 'clientPublicKey'),
    clientSecretKey: z85(clientSecretKey, 'clientSecretKey') };
}

// ------------------------------------------------------------------------------------------- requests

/** loadGraph's argument → [LoadGraph body, the local file it was read from or null]. */
export function graphRequest(source, { baseDir, format } = {}) {
  if (format !== undefined && !(format in GRAPH_FORMATS)) {
    throw new UsageError(`format is 'yaml' or 'json', got ${JSON.stringify(format)}`, { where: 'format' });
  }
  if (source !== null && typeof source === 'object') {
    if (typeof source.path === 'string') { // a file on the runtime's machine (inside an --allow-dir folder)
      return [withFormat({ path: source.path }, source.format ?? format), null];
    }
    if (typeof source.text === 'string') {
      const body = withFormat({ text: source.text }, source.format ?? format);
      const dir = source.baseDir ?? baseDir;
      if (dir) body.base_dir = resolve(dir);
      return [body, null];
    }
    throw new UsageError('expected {text}, {path}, a graph file path or YAML/JSON text', { where: 'loadGraph' });
  }
  if (typeof source !== 'string') {
    throw new UsageError(`expected a graph file path or YAML/JSON text, got ${typeof source}`, { where: 'loadGraph' });
  }
  if (!source.includes('\n') && source.trim()) {
    let isFile = false;
    try {
      isFile = statSync(source).isFile();
    } catch {
      isFile = false;
    }
    if (isFile) {
      let text;
      try {
        text = readFileSync(source, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read graph file ${JSON.stringify(source)}: ${err.code ?? err.message}`, { where: 'loadGraph' });
      }
      const json = extname(source).toLowerCase() === '.json';
      return [{ text, format: json ? GRAPH_FORMATS.json : GRAPH_FORMATS.yaml, base_dir: baseDir ? resolve(baseDir) : dirname(resolve(source)) },
        source];
    }
    if (GRAPH_SUFFIXES.includes(extname(source).toLowerCase())) {
      throw new UsageError(`no such graph file: ${JSON.stringify(source)} (pass the file's path, or the YAML text itself)`,
        { where: 'loadGraph' });
    }
  }
  const body = withFormat({ text: source }, format);
  if (baseDir) body.base_dir = resolve(baseDir);
  return [body, null];
}

function withFormat(body, format) {
  if (format) body.format = GRAPH_FORMATS[format]; // unset: from the path's suffix, YAML for text
  return body;
}

/** setMany's arguments → SetParameters (numbers, booleans as 0/1, or labels). */
export function parametersRequest(values, { ramp = null, shape = null, bypass = false, clamp = false, clientTime = null } = {}) {
  if (values === null || typeof values !== 'object') {
    throw new UsageError(`expected an object of parameter names to values, got ${typeof values}`, { where: 'setMany' });
  }
  if (shape !== null && !(shape in RAMP_SHAPES)) {
    throw new UsageError(`unknown ramp shape ${JSON.stringify(shape)}; shapes are ${Object.keys(RAMP_SHAPES).join(', ')}`,
      { where: 'shape' });
  }
  const entries = values instanceof Map ? [...values.entries()] : Object.entries(values);
  // proto3 leaves fields at their default out of the bytes: only what differs from it is set here
  const body = { values: [] };
  if (bypass) body.bypass = true;
  if (clamp) body.clamp = true;
  entries.forEach(([name, value], i) => {
    const where = `set_parameters.values[${i}]`;
    if (!name) throw badValue('must not be empty', `${where}.name`);
    if (typeof value === 'string') body.values.push({ name, label: value });
    else if (typeof value === 'boolean') body.values.push({ name, number: value ? 1 : 0 });
    else if (typeof value === 'number') body.values.push({ name, number: finite(value, `${where}.number`) });
    else throw badValue(`parameter ${JSON.stringify(name)} takes a number or a label, got ${typeof value}`, where);
  });
  if (ramp !== null && ramp !== undefined) {
    if (typeof ramp !== 'number') throw new UsageError(`ramp is seconds (a number) or null, got ${ramp}`, { where: 'ramp' });
    body.ramp_seconds = finite(ramp, 'set_parameters.ramp_seconds', 0);
    if (shape !== null) body.ramp_shape = RAMP_SHAPES[shape]; // unset: linear
  }
  if (clientTime !== null && clientTime !== undefined) body.client_time = finite(clientTime, 'set_parameters.client_time');
  return body;
}

/** setPrompts' argument → SetPrompts: {text: weight}, or a list of texts, [text, weight] pairs, {audioPath, weight}. */
export function promptsRequest(prompts) {
  let items;
  if (typeof prompts === 'string') items = [prompts];
  else if (Array.isArray(prompts)) items = prompts;
  else if (prompts instanceof Map) items = [...prompts.entries()];
  else if (prompts !== null && typeof prompts === 'object') items = Object.entries(prompts);
  else throw new UsageError(`expected prompts (an object of text → weight, or a list), got ${typeof prompts}`, { where: 'setPrompts' });
  return {
    prompts: items.map((item, i) => {
      const where = `set_prompts.prompts[${i}]`;
      let prompt;
      let weight;
      if (typeof item === 'string') prompt = { text: item };
      else if (Array.isArray(item) && item.length === 2 && typeof item[0] === 'string') [prompt, weight] = [{ text: item[0] }, item[1]];
      else if (item !== null && typeof item === 'object' && (typeof item.text === 'string' || typeof item.audioPath === 'string')) {
        prompt = typeof item.text === 'string' ? { text: item.text } : { audio_path: resolve(item.audioPath) };
        weight = item.weight;
      } else {
        throw new UsageError(`expected a prompt text, a [text, weight] pair or {text|audioPath, weight}, got ${JSON.stringify(item)}`,
          { where });
      }
      if (prompt.text === '') throw badValue('must not be empty', `${where}.text`);
      if (weight !== undefined && weight !== null) prompt.weight = finite(weight, `${where}.weight`, 0);
      return prompt;
    }),
  };
}

/** setControls' argument → SetControls: a null value clears that control. */
export function controlsRequest(values, clear = []) {
  const body = { controls: {}, clear: [] }; // `controls` left out below when none is set
  clear.forEach((name, i) => {
    if (!CONTROL_NAMES.includes(name)) throw unknownControl(name, `set_controls.clear[${i}]`);
    body.clear.push(name);
  });
  for (const [name, value] of Object.entries(values ?? {})) {
    const field = `set_controls.controls.${name}`;
    if (!CONTROL_NAMES.includes(name)) throw unknownControl(name, field);
    const kind = CONTROL_TYPES[name]; // the field's type in the .proto
    if (value === null || value === undefined) {
      body.clear.push(name);
    } else if (kind === 'double' || kind === 'float') {
      body.controls[name] = finite(value, field);
    } else if (kind === 'bool') {
      if (typeof value !== 'boolean') throw badValue(`control ${JSON.stringify(name)} is true or false, got ${JSON.stringify(value)}`, field);
      body.controls[name] = value;
    } else if (kind === 'string') {
      if (typeof value !== 'string') throw badValue(`control ${JSON.stringify(name)} is a text (scale: "A minor"), got ${JSON.stringify(value)}`, field);
      body.controls[name] = value;
    } else if (kind === 'NoteSet') {
      if (!Array.isArray(value)) {
        throw badValue(`control "notes" is a list of MIDI note numbers 0-127, got ${JSON.stringify(value)}`, `${field}.midi`);
      }
      if (value.length <= 128) { // the full path to the bad note, as the runtime's (a longer list: the runtime's limit)
        const first = new Map();
        value.forEach((n, i) => {
          if (!Number.isInteger(n) || n < 0 || n > 127) {
            throw badValue(`control "notes": must be a MIDI note, an integer 0-127, got ${JSON.stringify(n)}`, `${field}.midi[${i}]`);
          }
          if (first.has(n)) {
            throw badValue(`MIDI note ${n} is given twice (notes.midi[${first.get(n)}] and [${i}]); give each note at most once`, `${field}.midi[${i}]`);
          }
          first.set(n, i);
        });
      }
      body.controls[name] = { midi: value.slice() };
    } else { // uint32, uint64 (top_k, seed): whole numbers >= 0
      if (!Number.isSafeInteger(value) || value < 0) throw badValue(`control ${JSON.stringify(name)} is a whole number >= 0, got ${value}`, field);
      body.controls[name] = value;
    }
  }
  body.clear.forEach((name, i) => {
    if (name in body.controls) throw badValue(`control ${JSON.stringify(name)} is both set and cleared`, `set_controls.clear[${i}]`);
  });
  if (Object.keys(body.controls).length === 0) delete body.controls;
  return body;
}

/** The Hello this client sends: the versions it speaks and its name. */
export function helloRequest(name = '') {
  const body = { supported_versions: [...SUPPORTED_VERSIONS] };
  if (name) body.client_name = name;
  return body;
}

// ------------------------------------------------------------------------------------------- memory

/** What this client made the runtime hold, to re-send to a restarted runtime. */
class Memory {
  constructor() {
    this.source = null; // [kind, body] of the last LoadGraph or SetPrompts
    this.parameters = new Map(); // name → ParameterUpdate
    this.controls = {}; // name → value (as in Controls)
    this.transport = null; // the last PLAY/PAUSE/STOP
  }

  get empty() {
    return this.source === null && this.parameters.size === 0 && Object.keys(this.controls).length === 0
      && this.transport === null;
  }

  remember(kind, body) {
    if (SOURCE_KINDS.has(kind)) {
      this.source = [kind, body];
      this.parameters.clear(); // a new graph has its own parameters (control overrides carry over)
    } else if (kind === 'set_parameters') {
      for (const update of body.values) this.parameters.set(update.name, update);
    } else if (kind === 'set_controls') {
      for (const name of body.clear) delete this.controls[name];
      Object.assign(this.controls, body.controls);
    } else if (kind === 'transport' && REMEMBERED_TRANSPORT.has(body.action)) {
      this.transport = body.action;
    }
  }

  /** The requests that put a fresh runtime back where this client left the old one. */
  resync() {
    const out = [];
    if (this.source !== null) out.push(this.source);
    if (this.parameters.size) out.push(['set_parameters', { values: [...this.parameters.values()], bypass: true }]);
    if (Object.keys(this.controls).length) out.push(['set_controls', { controls: { ...this.controls }, clear: [] }]);
    if (this.transport !== null) out.push(['transport', { action: this.transport }]);
    return out;
  }
}

/** Per-stream sequence numbers → messages lost. The first number sets the baseline; one at or below the last
 *  (a restarted runtime counts from 1 again) starts a new baseline and is not a loss. */
export class SequenceTracker {
  constructor() {
    this.last = new Map();
    this.lost = 0;
  }

  observe(stream, sequence) {
    const previous = this.last.get(stream);
    this.last.set(stream, sequence);
    if (previous === undefined || sequence <= previous) return 0;
    const gap = sequence - previous - 1;
    this.lost += gap;
    return gap;
  }
}

// ------------------------------------------------------------------------------------------- client

/**
 * A client of a Cadenza runtime (control DEALER, events SUB). Every request method returns a Promise that
 * settles when the runtime has answered: an Ack ({streamTime, seconds, warnings}), a Status, a
 * GraphDescription or ServerInfo.
 */
export class Client {
  /**
   * @param {object} [options]
   * @param {string} [options.control] the runtime's control endpoint (ROUTER)
   * @param {string} [options.events] its events endpoint (PUB)
   * @param {number} [options.timeout] seconds to wait for each reply (2)
   * @param {number} [options.loadTimeout] seconds a LoadGraph/SetPrompts may take on the runtime, waited on top of
   *   `timeout` (10: the runtime's default --load-timeout; embedding prompts takes time)
   * @param {string} [options.name] sent in Hello (shows in the runtime's logs)
   * @param {boolean} [options.autoReconnect] re-sync a restarted runtime (true)
   * @param {number} [options.heartbeat] seconds between Hellos of an idle client (1; 0: none)
   * @param {string} [options.serverPublicKey] CurveZMQ: the runtime's public key (z85)
   * @param {string} [options.clientSecretKey] CurveZMQ: this client's key pair (ephemeral when not given)
   * @param {string} [options.clientPublicKey]
   */
  constructor({
    control = DEFAULT_CONTROL, events = DEFAULT_EVENTS, timeout = DEFAULT_TIMEOUT, loadTimeout = DEFAULT_LOAD_TIMEOUT,
    name = '', autoReconnect = true,
    heartbeat = DEFAULT_HEARTBEAT, serverPublicKey, clientSecretKey, clientPublicKey,
  } = {}) {
    this.control = checkEndpoint(control, 'control');
    this.eventsEndpoint = checkEndpoint(events, 'events');
    this.timeout = checkSeconds(timeout, 'timeout', false);
    this.loadTimeout = checkSeconds(loadTimeout, 'loadTimeout', true);
    this.heartbeat = checkSeconds(heartbeat, 'heartbeat', true);
    this.name = String(name);
    this.autoReconnect = Boolean(autoReconnect);
    this.keys = curveKeys({ serverPublicKey, clientSecretKey, clientPublicKey });
    /** 'unopened' → 'open' → 'closed' */
    this.state = 'unopened';
    /** What the runtime said in the last Hello (null before the first). */
    this.server = null;
    /** Times the client got a runtime back: after a timeout, or a restarted runtime it re-synced. */
    this.reconnects = 0;
    /** Replies dropped because they answered an earlier request. */
    this.staleReplies = 0;
    /** Events missed (gaps in the per-topic sequence numbers). */
    this.eventsLost = 0;
    /** Events that could not be decoded and were skipped. */
    this.eventsBad = 0;
    /** Exceptions thrown by event callbacks (never stopping delivery). */
    this.callbackErrors = 0;
    /** The last error of the events socket (null while it is fine). */
    this.eventsError = null;
    this._requestId = 0;
    this._memory = new Memory();
    this._syncedSession = null;
    this._needsHello = true;
    this._lost = false;
    this._lastCheck = 0;
    this._dealer = null;
    this._queue = Promise.resolve();
    this._busy = 0;
    this._heartbeatTimer = null;
    this._subscriber = null;
    this._callbacks = new Map();
    this._streams = new Set();
    this._tracker = new SequenceTracker();
    this._graphFile = null;
  }

  get sampleRate() {
    return this.server ? this.server.sampleRate : DEFAULT_SAMPLE_RATE;
  }

  // ----------------------------------------------------------------------- lifecycle

  /** Connect the control socket (nothing is sent until the first request) and start the heartbeat. */
  open() {
    if (this.state === 'closed') throw new ClientStateError('Cannot reopen a client once it has been closed');
    if (this.state === 'open') return this;
    this._newDealer();
    this.state = 'open';
    this._lastCheck = Date.now();
    if (this.autoReconnect && this.heartbeat > 0) {
      this._heartbeatTimer = setInterval(() => this._heartbeatTick(), Math.min(HEARTBEAT_TICK_MS, this.heartbeat * 1000));
      this._heartbeatTimer.unref();
    }
    return this;
  }

  /** Close the sockets and stop the heartbeat; a request in flight rejects with ClientStateError. Twice is fine. */
  async close() {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this._heartbeatTimer) clearInterval(this._heartbeatTimer);
    this._heartbeatTimer = null;
    if (this._dealer) this._dealer.close();
    this._dealer = null;
    if (this._subscriber) this._subscriber.close();
    this._subscriber = null;
    for (const stream of this._streams) stream._end();
    this._streams.clear();
  }

  _checkUsable() {
    if (this.state === 'closed') throw new ClientStateError('Cannot use a client once it has been closed');
    if (this.state === 'unopened') this.open();
  }

  _newDealer() {
    if (this._dealer) this._dealer.close();
    this._dealer = null;
    const sock = new zmq.Dealer(socketOptions(this.keys));
    try {
      sock.connect(this.control);
    } catch (err) {
      sock.close();
      throw zmqError(err, `cannot connect the control socket to ${JSON.stringify(this.control)}`);
    }
    this._dealer = sock;
  }

  // ----------------------------------------------------------------------- one round trip

  /** Seconds to wait for the reply to `kind`: a load may take the runtime's load timeout first. */
  _wait(kind) {
    return SOURCE_KINDS.has(kind) ? this.timeout + this.loadTimeout : this.timeout;
  }

  _timeoutError(kind) {
    return new RequestTimeout(`no reply to ${kind} within ${this._wait(kind)} s from ${this.control} (is \`cadenza serve\` `
      + 'running there? with remote endpoints, are the CURVE keys right?)', { request: kind, timeout: this._wait(kind),
      endpoint: this.control });
  }

  /** A control message → the reply to `requestId`, null for a stale one; throws the typed ServerError on Error. */
  _accept(requestId, frames) {
    if (frames.length !== 1) {
      this.staleReplies += 1;
      return null;
    }
    const reply = decodeReply(frames[0]);
    // An Error with request id 0 answers the request in flight (its id could not be read, or it was refused
    // before its id was read): this client has one request in flight at a time.
    if (reply.requestId !== requestId && !(reply.requestId === 0 && reply.kind === 'error')) {
      this.staleReplies += 1;
      return null;
    }
    if (reply.kind === 'error') {
      const e = reply.body;
      let { message, field } = e;
      if (e.code === 5 && this._graphFile) { // the runtime got text and calls it <load_graph>: name the file
        message = message.replaceAll('<load_graph>', this._graphFile);
        field = field.replaceAll('<load_graph>', this._graphFile);
      }
      throw serverError(e.code, message, { field, requestId, supportedVersions: (e.supported_versions ?? []).slice() });
    }
    return reply;
  }

  /** Send one request and wait for its reply. On timeout: a new DEALER (Lazy Pirate), then RequestTimeout. */
  async _send(kind, body) {
    if (this.state === 'closed') throw new ClientStateError('Cannot use a client once it has been closed');
    if (this._dealer === null) this._newDealer(); // a failed reset left none
    this._requestId += 1;
    const requestId = this._requestId;
    const frame = encodeRequest(kind, body, requestId);
    const sock = this._dealer;
    const deadline = Date.now() + this._wait(kind) * 1000;
    try {
      setTimeouts(sock, Math.max(1, Math.round(this.timeout * 1000)), Math.max(1, Math.ceil(this._wait(kind) * 1000)));
      await sock.send(frame);
      for (;;) {
        const reply = this._accept(requestId, await sock.receive());
        if (reply !== null) return reply;
        const remaining = deadline - Date.now(); // a stale reply: wait for ours what is left
        if (remaining <= 0) throw this._timeoutError(kind);
        sock.receiveTimeout = Math.max(1, Math.ceil(remaining));
      }
    } catch (err) {
      if (this.state === 'closed') throw new ClientStateError('Cannot use a client once it has been closed');
      if (err instanceof RequestTimeout || err.code === 'EAGAIN') {
        // a new DEALER: what the old one still queues must never reach a (new) runtime
        this._newDealer();
        this._needsHello = true;
        this._lost = true;
        throw err instanceof RequestTimeout ? err : this._timeoutError(kind);
      }
      if (err instanceof ServerError || err instanceof ProtocolError) throw err;
      throw zmqError(err, `${kind} on ${JSON.stringify(this.control)}`);
    }
  }

  _restarted(sessionId) {
    return Boolean(sessionId) && this._syncedSession !== null && sessionId !== this._syncedSession && !this._memory.empty;
  }

  /** Hello; re-sync a restarted runtime. Returns [reply, restarted]. */
  async _hello() {
    const reply = await this._send('hello', helloRequest(this.name));
    if (reply.kind !== 'status' || !reply.body.server) {
      throw new ProtocolError(`the reply to hello from ${this.control} has no server information`);
    }
    const info = serverInfoView(reply.body.server);
    if (!SUPPORTED_VERSIONS.includes(info.protocolVersion)) {
      throw serverError(ERROR_NUMBERS.UNSUPPORTED_VERSION, `the runtime chose protocol version ${info.protocolVersion}; this client speaks `
        + `${SUPPORTED_VERSIONS.join(', ')}`, { field: 'server.protocol_version', supportedVersions: info.supportedVersions,
        remote: false });
    }
    this.server = info;
    this._needsHello = false;
    this._lastCheck = Date.now();
    const restarted = this._restarted(info.sessionId);
    if (this._lost || restarted) this.reconnects += 1;
    this._lost = false;
    if (this._syncedSession === null || this._memory.empty) this._syncedSession = info.sessionId;
    else if (restarted) await this._resync();
    return [reply, restarted];
  }

  async _resync() {
    for (const [kind, body] of this._memory.resync()) await this._send(kind, body);
    if (this.server) this._syncedSession = this.server.sessionId;
  }

  /** One request, with the handshake, reconnect, re-sync and one retry around it. */
  async _flow(kind, body) {
    if (kind === 'hello') return (await this._hello())[0];
    if (this._needsHello) await this._hello();
    let reply;
    try {
      reply = await this._send(kind, body);
    } catch (err) {
      if (err instanceof RequestTimeout) {
        if (!this.autoReconnect) throw err;
        let restarted;
        try {
          [, restarted] = await this._hello();
        } catch (helloErr) {
          throw helloErr instanceof RequestTimeout ? err : helloErr; // still no runtime: the caller's request timed out
        }
        // a live runtime may have executed a one-shot already: never twice
        if ((kind === 'trigger' || kind === 'set_state') && !restarted) throw err;
        reply = await this._send(kind, body);
      } else if (err instanceof NotReady) {
        if (!(this.autoReconnect && this._memory.source !== null) || SOURCE_KINDS.has(kind)) throw err;
        const [, restarted] = await this._hello(); // learn the new session (re-syncs a restarted runtime)
        if (!restarted) { // the same runtime lost the graph: give it back
          this.reconnects += 1;
          await this._resync();
        }
        reply = await this._send(kind, body);
      } else {
        throw err;
      }
    }
    if (!NOT_REMEMBERED.has(kind)) {
      this._memory.remember(kind, body);
      if (this.server) this._syncedSession = this.server.sessionId;
    }
    return reply;
  }

  /** Queue a request behind the others (one in flight at a time). */
  _call(kind, body, graphFile = null) {
    try {
      this._checkUsable();
    } catch (err) {
      return Promise.reject(err);
    }
    this._busy += 1;
    const run = this._queue.then(async () => {
      this._graphFile = graphFile; // named in GRAPH_INVALID messages instead of <load_graph>
      try {
        return await this._flow(kind, body);
      } finally {
        this._graphFile = null;
      }
    });
    this._queue = run.then(() => undefined, () => undefined);
    return run.finally(() => {
      this._busy -= 1;
    });
  }

  _heartbeatTick() {
    if (this.state !== 'open' || this._busy > 0) return;
    if (Date.now() - this._lastCheck < this.heartbeat * 1000) return;
    this._busy += 1;
    const run = this._queue.then(async () => {
      if (this.state !== 'open' || Date.now() - this._lastCheck < this.heartbeat * 1000) return;
      try {
        await this._hello();
      } catch {
        this._lastCheck = Date.now(); // try again in a heartbeat
      }
    });
    this._queue = run.then(() => undefined, () => undefined);
    run.finally(() => {
      this._busy -= 1;
    });
  }

  _ack(reply) {
    return reply.kind === 'ok' ? ackView(reply.body, this.sampleRate) : { streamTime: null, seconds: null, warnings: [] };
  }

  // ----------------------------------------------------------------------- requests

  /** Say hello (done before the first request anyway): agree on a version, learn the runtime (ServerInfo). */
  async hello() {
    await this._call('hello', null);
    return this.server;
  }

  /** What the loaded graph offers: parameters (kind, range, labels, default, value), states, triggers, prompts. */
  async describe() {
    const reply = await this._call('describe_graph', {});
    if (reply.kind !== 'graph_description') {
      throw new ProtocolError(`expected a graph_description reply from ${this.control}, got ${reply.kind}`);
    }
    return describeView(reply.body);
  }

  /**
   * Load a style graph: a file path (read here, sent as text with its folder as base_dir), the YAML/JSON text,
   * {text, baseDir, format}, or {path} for a file on the runtime's machine. Parameter values set before are
   * forgotten (a new graph has its own); control overrides stay.
   */
  async loadGraph(source, options = {}) {
    const [body, file] = graphRequest(source, options);
    return this._ack(await this._call('load_graph', body, file));
  }

  /** Set parameters: set({danger: 0.8, mode: 'combat'}) or set('danger', 0.8). */
  set(nameOrValues, value) {
    if (typeof nameOrValues === 'string' || (nameOrValues && typeof nameOrValues.name === 'string' && value !== undefined)) {
      return this.setMany({ [nameOf(nameOrValues, 'set_parameters.values[0].name')]: value });
    }
    return this.setMany(nameOrValues);
  }

  /**
   * Set several parameters at one control tick. `ramp` reaches the values over that many seconds (with
   * `shape`: linear, s-curve, log, exp, sine, constant); `bypass` jumps at once; `clamp` clamps values outside
   * a parameter's range instead of refusing them.
   */
  async setMany(values, options = {}) {
    const body = parametersRequest(values, options);
    return this._ack(await this._call('set_parameters', body));
  }

  /** Fire a graph trigger. */
  async trigger(name) {
    return this._ack(await this._call('trigger', { name: nameOf(name, 'trigger.name') }));
  }

  /** Force the graph's state machine into a state, with its transition. */
  async setState(name) {
    return this._ack(await this._call('set_state', { name: nameOf(name, 'set_state.name') }));
  }

  /** Play weighted prompts directly, without a graph: {'dark techno': 1, rain: 0.3}. Replaces the graph. */
  async setPrompts(prompts) {
    return this._ack(await this._call('set_prompts', promptsRequest(prompts)));
  }

  /** Override musical controls ({bpm: 120, density: 0.5, scale: 'A minor'}); null clears one. */
  async setControls(controls) {
    return this._ack(await this._call('set_controls', controlsRequest(controls)));
  }

  /** Give controls back to the graph (or the prompts); no names: all of them. */
  async clearControls(...names) {
    return this._ack(await this._call('set_controls', controlsRequest({}, names.length ? names : CONTROL_NAMES)));
  }

  /** Transport: 'play', 'pause', 'stop' or 'reset_context'. */
  async transport(action) {
    const number = TRANSPORT_ACTIONS[action];
    if (number === undefined) {
      throw new UsageError(`unknown transport action ${JSON.stringify(action)}; actions are ${Object.keys(TRANSPORT_ACTIONS).join(', ')}`,
        { where: 'transport.action' });
    }
    return this._ack(await this._call('transport', { action: number }));
  }

  /** Start, or resume after pause (after stop: from the top). */
  play() { return this.transport('play'); }

  /** Hold: silence; the graph keeps its state, parameters and musical position. */
  pause() { return this.transport('pause'); }

  /** Fade out and rewind: the graph back to its initial state and parameter defaults. */
  stop() { return this.transport('stop'); }

  /** Make the model forget its audio context (the music keeps playing). */
  resetContext() { return this.transport('reset_context'); }

  /** A snapshot of the runtime: state, parameters, weights, controls, stream time, event sequences … */
  async status() {
    const reply = await this._call('get_status', {});
    if (reply.kind !== 'status') throw new ProtocolError(`expected a status reply from ${this.control}, got ${reply.kind}`);
    return statusView(reply.body, this.sampleRate);
  }

  // ----------------------------------------------------------------------- events

  _startListener() {
    this._checkUsable();
    if (this._subscriber !== null) return;
    const sub = new zmq.Subscriber({ ...socketOptions(this.keys), receiveHighWaterMark: 0 });
    try {
      sub.connect(this.eventsEndpoint);
    } catch (err) {
      sub.close();
      throw zmqError(err, `cannot connect the events socket to ${JSON.stringify(this.eventsEndpoint)}`);
    }
    sub.subscribe();
    this._subscriber = sub;
    this._listen(sub);
  }

  async _listen(sub) {
    try {
      for await (const frames of sub) {
        let event;
        try {
          event = decodeEvent(frames, this.sampleRate);
        } catch {
          this.eventsBad += 1;
          continue;
        }
        this.eventsLost += this._tracker.observe(event.topic, event.sequence);
        this._dispatch(event);
      }
    } catch (err) {
      if (this._subscriber === sub) this.eventsError = zmqError(err, `events socket on ${JSON.stringify(this.eventsEndpoint)}`);
    }
  }

  _dispatch(event) {
    for (const callback of [...(this._callbacks.get(event.topic) ?? [])]) {
      try {
        const result = callback(event);
        if (result && typeof result.catch === 'function') result.catch(() => { this.callbackErrors += 1; });
      } catch {
        this.callbackErrors += 1; // a game's bug must not stop the music's events
      }
    }
    for (const stream of this._streams) stream._offer(event);
  }

  /** Call `callback(event)` for every event of `topic` (beat, bar, state, mix, stinger, xrun, warning, status). */
  on(topic, callback) {
    checkTopic(topic);
    if (typeof callback !== 'function') throw new UsageError(`a callback must be a function, got ${typeof callback}`, { where: 'callback' });
    if (!this._callbacks.has(topic)) this._callbacks.set(topic, []);
    this._callbacks.get(topic).push(callback);
    this._startListener();
    return callback;
  }

  /** Stop calling `callback` for `topic`. */
  off(topic, callback) {
    const list = this._callbacks.get(checkTopic(topic)) ?? [];
    const i = list.indexOf(callback);
    if (i >= 0) list.splice(i, 1);
  }

  onBeat(callback) { return this.on('beat', callback); }

  onBar(callback) { return this.on('bar', callback); }

  onState(callback) { return this.on('state', callback); }

  onMix(callback) { return this.on('mix', callback); }

  onStinger(callback) { return this.on('stinger', callback); }

  onXrun(callback) { return this.on('xrun', callback); }

  onWarning(callback) { return this.on('warning', callback); }

  onStatus(callback) { return this.on('status', callback); }

  /**
   * The events as an async iterator, buffered from this call on: `for await (const ev of client.events({timeout: 5}))`.
   * Ends after `timeout` seconds without an event (never when not given), on `stream.close()`, or when the client closes.
   */
  events({ timeout = null, topics = null, maxQueue = 10000 } = {}) {
    const chosen = topics === null ? null : new Set(topics.map(checkTopic));
    const stream = new EventStream(this, chosen, timeout, maxQueue);
    this._streams.add(stream);
    this._startListener();
    return stream;
  }

  /** The runtime's audio: format 'float32' (the "audio" endpoint) or 'int16' (from Hello's endpoints). */
  async audio({ format = 'float32', endpoint = null, timeout = null, staleAfter = STALE_AUDIO_S } = {}) {
    if (!(format in AUDIO_FORMATS)) {
      throw new UsageError(`format is 'float32' or 'int16', got ${JSON.stringify(format)}`, { where: 'format' });
    }
    let where = endpoint;
    if (where === null) {
      if (this.server === null) await this.hello();
      const key = format === 'int16' ? 'audio_int16' : 'audio';
      where = this.server.endpoints[key];
      if (!where) {
        throw new UsageError(`the runtime names no ${JSON.stringify(key)} endpoint (its endpoints: `
          + `${JSON.stringify(this.server.endpoints)}); pass endpoint`, { where: 'format' });
      }
      const host = /^tcp:\/\/([^:/]+|\[[^\]]+\]):/.exec(this.control)?.[1];
      if (host) where = where.replace('tcp://0.0.0.0:', `tcp://${host}:`).replace('tcp://*:', `tcp://${host}:`);
    }
    return new AudioStream(where, { format, timeout, staleAfter, serverPublicKey: this.keys?.serverPublicKey,
      clientSecretKey: this.keys?.clientSecretKey, clientPublicKey: this.keys?.clientPublicKey });
  }
}

/** Events as an async iterator (from Client.events()); `dropped` counts events discarded past maxQueue. */
export class EventStream {
  constructor(client, topics, timeout, maxQueue) {
    this._client = client;
    this.topics = topics;
    this.timeout = timeout;
    this.maxQueue = maxQueue;
    this.dropped = 0;
    this._queue = [];
    this._waiters = [];
    this._closed = false;
  }

  _offer(event) {
    if (this._closed || (this.topics !== null && !this.topics.has(event.topic))) return;
    const waiter = this._waiters.shift();
    if (waiter) {
      waiter(event);
      return;
    }
    this._queue.push(event);
    if (this._queue.length > this.maxQueue) {
      this._queue.shift();
      this.dropped += 1;
    }
  }

  _end() {
    this._closed = true;
    for (const waiter of this._waiters.splice(0)) waiter(null);
  }

  /** The next event, or null after `timeout` seconds (this stream's timeout when not given) or once closed. */
  next(timeout = this.timeout) {
    if (this._queue.length) return Promise.resolve(this._queue.shift());
    if (this._closed) return Promise.resolve(null);
    return new Promise((resolvePromise) => {
      let timer = null;
      const waiter = (event) => {
        if (timer) clearTimeout(timer);
        resolvePromise(event);
      };
      this._waiters.push(waiter);
      if (timeout !== null && timeout !== undefined) {
        timer = setTimeout(() => {
          const i = this._waiters.indexOf(waiter);
          if (i >= 0) this._waiters.splice(i, 1);
          resolvePromise(null);
        }, timeout * 1000);
      }
    });
  }

  /** The first event for which `predicate` holds, or null after `timeout` seconds. */
  async waitFor(predicate, timeout) {
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const left = (deadline - Date.now()) / 1000;
      if (left <= 0) return null;
      const event = await this.next(left);
      if (event === null) return null;
      if (predicate(event)) return event;
    }
  }

  async* [Symbol.asyncIterator]() {
    for (;;) {
      const event = await this.next();
      if (event === null) return;
      yield event;
    }
  }

  /** Stop buffering events. */
  close() {
    this._end();
    this._client._streams.delete(this);
  }
}

/**
 * The runtime's audio as chunks {sequence, streamTime, sampleRate, channels, frames, format, pcm, raw}: pcm is a
 * Float32Array of interleaved samples in [-1, 1] whatever the wire format; `lost` counts chunks missed
 * (sequence gaps), `bad` chunks that could not be decoded, `stale` chunks dropped because they arrived more
 * than `staleAfter` seconds (0.5; null: never drop) behind live audio (see HEAD_WAIT_S). `format` 'int16' defaults to
 * the runtime's int16 socket (DEFAULT_AUDIO_INT16).
 */
export class AudioStream {
  constructor(endpoint = null, { format = 'float32', timeout = null, staleAfter = STALE_AUDIO_S, serverPublicKey,
    clientSecretKey, clientPublicKey } = {}) {
    if (!(format in AUDIO_FORMATS)) {
      throw new UsageError(`format is 'float32' or 'int16', got ${JSON.stringify(format)}`, { where: 'format' });
    }
    this.format = format;
    this.staleAfter = staleAfter;
    this.endpoint = checkEndpoint(endpoint ?? AUDIO_FORMATS[format], 'endpoint');
    this.timeout = timeout;
    this.keys = curveKeys({ serverPublicKey, clientSecretKey, clientPublicKey });
    this.chunks = 0;
    this.bad = 0;
    this.bytes = 0;
    /** Chunks dropped as stale: already queued, more than STALE_AUDIO_S behind live audio. */
    this.stale = 0;
    this._minLag = Infinity;
    this._lastSequence = 0;
    this._previous = null; // [sequence, arrival s, stream s] of the last chunk
    this._streak = 0; // late chunks arriving live, in a row
    this._tracker = new SequenceTracker();
    this._sock = null;
    this._closed = false;
  }

  get lost() {
    return this._tracker.lost;
  }

  /** Subscribe (done on first read): chunks published from about now on arrive. */
  open() {
    if (this._closed) throw new ClientStateError('Cannot reopen an audio stream once it has been closed');
    if (this._sock) return this;
    // a small receive queue: a reader that stalls finds fresh audio when it reads again, not seconds of the past
    const sock = new zmq.Subscriber({ ...socketOptions(this.keys), receiveHighWaterMark: AUDIO_HWM,
      receiveBufferSize: this.format === 'int16' ? AUDIO_RCVBUF / 2 : AUDIO_RCVBUF }); // int16: half the bytes, same time
    try {
      sock.connect(this.endpoint);
    } catch (err) {
      sock.close();
      throw zmqError(err, `cannot connect the audio socket to ${JSON.stringify(this.endpoint)}`);
    }
    sock.subscribe();
    this._sock = sock;
    return this;
  }

  /** The next chunk, or null after `timeout` seconds (this stream's timeout when not given; null: wait). */
  async read(timeout = this.timeout) {
    if (this._closed) throw new ClientStateError('Cannot use an audio stream once it has been closed');
    this.open();
    const sock = this._sock;
    const deadline = timeout === null ? null : Date.now() + timeout * 1000;
    for (;;) {
      sock.receiveTimeout = deadline === null ? -1 : Math.max(1, deadline - Date.now());
      let frames;
      const asked = performance.now();
      try {
        frames = await sock.receive();
      } catch (err) {
        if (err.code === 'EAGAIN') return null;
        if (this._closed) return null;
        throw zmqError(err, `audio socket on ${JSON.stringify(this.endpoint)}`);
      }
      let chunk;
      try {
        if (frames.length !== 1) throw new ProtocolError('an audio chunk is one frame');
        chunk = decodeAudio(frames[0]);
      } catch {
        this.bad += 1;
        continue;
      }
      this.chunks += 1;
      this.bytes += frames[0].length;
      this._tracker.observe('audio', chunk.sequence);
      // lag = arrival - stream time. Live: we waited for it and it came at least as long after the previous chunk
      // as the stream moved (or chunks were lost between). Within the bound plus our wait above the reference lag:
      // played (a live one becomes the reference); later: it waited in a queue (stale), unless LIVE_STREAK live
      // ones in a row say the runtime fell behind for good
      const restarted = chunk.sequence <= this._lastSequence; // a restarted runtime counts from 1
      if (restarted) { this._minLag = Infinity; this._previous = null; this._streak = 0; }
      this._lastSequence = chunk.sequence;
      const arrival = performance.now() / 1000;
      const waited = arrival - asked / 1000;
      const seconds = chunk.streamTime / chunk.sampleRate;
      const lag = arrival - seconds;
      const prev = this._previous;
      this._previous = [chunk.sequence, arrival, seconds];
      const live = waited >= HEAD_WAIT_S
        && (prev === null || chunk.sequence !== prev[0] + 1 || arrival - prev[1] >= seconds - prev[2]);
      if (this._minLag === Infinity || lag < this._minLag) {
        this._minLag = lag;
        this._streak = 0;
      } else if (this.staleAfter === null || lag - this._minLag <= this.staleAfter + waited) {
        if (live) this._minLag = lag; // as late as the wait explains, or within the bound
        this._streak = 0;
      } else {
        this._streak = live ? this._streak + 1 : 0; // late chunks arriving live, in a row
        if (this._streak >= LIVE_STREAK) { // later for good (the runtime fell behind): follow it
          this._minLag = lag;
          this._streak = 0;
        } else {
          this.stale += 1; // it waited in a queue
          continue;
        }
      }
      return chunk;
    }
  }

  async* [Symbol.asyncIterator]() {
    while (!this._closed) {
      const chunk = await this.read();
      if (chunk === null) return;
      yield chunk;
    }
  }

  close() {
    this._closed = true;
    if (this._sock) this._sock.close();
    this._sock = null;
  }
}
