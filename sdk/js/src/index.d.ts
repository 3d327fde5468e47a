// Types of cadenza-client (the Node client of the Cadenza runtime). Names of wire fields follow
// proto/cadenza_v1.proto (snake_case) where a raw message is exposed; the views are camelCase.

// ------------------------------------------------------------------------------------------- errors

export class CadenzaError extends Error {
  constructor(message: string, options?: { where?: string });
  /** The argument or field at fault ('' when none). */
  readonly where: string;
  /** The message without the `where:` prefix. */
  readonly detail: string;
}
export class UsageError extends CadenzaError {}
export class ClientStateError extends UsageError {}
export class ProtocolError extends CadenzaError {}
export class TransportError extends ProtocolError {}
export class RequestTimeout extends CadenzaError {
  readonly code: 'ETIMEDOUT';
  /** The request kind that got no reply, e.g. "set_parameters". */
  readonly request: string;
  /** Seconds waited. */
  readonly timeout: number;
  readonly endpoint: string;
}

export type ErrorCode =
  | 'BAD_MESSAGE' | 'UNSUPPORTED_VERSION' | 'UNKNOWN_NAME' | 'BAD_VALUE' | 'GRAPH_INVALID' | 'TOO_LARGE'
  | 'RATE_LIMITED' | 'INTERNAL' | 'NOT_READY' | 'PERMISSION_DENIED' | 'TIMEOUT';

export interface ServerErrorOptions {
  field?: string;
  requestId?: number;
  supportedVersions?: number[];
  remote?: boolean;
  codeNumber?: number;
}

/** An Error reply (or the same refusal raised before sending: `remote` false). */
export class ServerError extends ProtocolError {
  constructor(code: string, message: string, options?: ServerErrorOptions);
  /** The Error.Code name, e.g. "UNKNOWN_NAME" ("CODE_n" for a code from a newer runtime). */
  readonly code: ErrorCode | string;
  readonly codeNumber: number;
  /** Path of the bad field, e.g. "set_parameters.values[0].name". */
  readonly field: string;
  readonly requestId: number;
  readonly supportedVersions: number[];
  /** False when the client refused the request itself, without sending it. */
  readonly remote: boolean;
}
export class BadMessage extends ServerError {}
export class UnsupportedVersion extends ServerError {}
export class UnknownName extends ServerError {}
export class BadValue extends ServerError {}
export class GraphInvalid extends ServerError {
  /** One "file:line path: message" per issue. */
  readonly issues: string[];
}
export class TooLarge extends ServerError {}
export class RateLimited extends ServerError {}
export class InternalServerError extends ServerError {}
export class NotReady extends ServerError {}
export class PermissionDenied extends ServerError {}
export class ServerTimeout extends ServerError {}

/** The typed error for an Error.Code number. */
export function serverError(codeNumber: number, message: string, options?: ServerErrorOptions): ServerError;

// ------------------------------------------------------------------------------------------- views

export type ParameterValue = number | string;
export type Topic = 'beat' | 'bar' | 'state' | 'mix' | 'stinger' | 'xrun' | 'warning' | 'status';
export type RampShape = 'linear' | 's-curve' | 'log' | 'exp' | 'sine' | 'constant';
export type TransportAction = 'play' | 'pause' | 'stop' | 'reset_context';

export interface Controls {
  bpm?: number;
  density?: number;
  brightness?: number;
  scale?: string;
  mute_bass?: boolean;
  mute_drums?: boolean;
  temperature?: number;
  top_k?: number;
  guidance?: number;
  seed?: number;
  notes?: number[];
  drums?: boolean;
}
export type ControlName = keyof Controls;
/** setControls' argument: a value sets the override, null clears it. */
export type ControlsUpdate = { [K in keyof Controls]?: Controls[K] | null };

export interface ServerInfo {
  protocolVersion: number;
  supportedVersions: number[];
  serverVersion: string;
  backend: string;
  /** The controls the backend honours. */
  controls: string[];
  audioPrompts: boolean;
  beatGrid: boolean;
  sampleRate: number;
  channels: number;
  /** New for every runtime process. */
  sessionId: string;
  /** "control", "events", "audio", "audio_int16" as bound. */
  endpoints: Record<string, string>;
}

export interface Status {
  graphLoaded: boolean;
  graphName: string;
  state: string;
  weights: Record<string, number>;
  parameters: Record<string, ParameterValue>;
  /** The client overrides only (SetControls). */
  controls: Controls;
  /** What the music plays with now: the graph's controls with the overrides applied. */
  effectiveControls: Controls;
  /** Samples. */
  streamTime: number;
  seconds: number;
  playing: boolean;
  xruns: number;
  lookaheadMs: number;
  /** Last sequence number per event topic when the snapshot was taken. */
  eventSequences: Record<string, number>;
  audioSequence: number;
  eventsDropped: number;
  repliesDropped: number;
  sinkFaults: Record<string, string>;
  faults: Record<string, string>;
  faultsTotal: number;
  pendingState: string;
  pendingStateTime: number;
  controlDisconnects: number;
  controlConnections: number;
  /** Requests received, by kind. */
  requests: Record<string, number>;
  /** Set in the reply to Hello (and GetStatus). */
  server: ServerInfo | null;
}

/** The runtime's Ok: when the request takes effect (null when not known) and what it did not honour. */
export interface Ack {
  streamTime: number | null;
  seconds: number | null;
  warnings: string[];
}

export interface ParameterInfo {
  name: string;
  kind: 'continuous' | 'discrete' | 'labeled' | '';
  min: number;
  max: number;
  labels: string[];
  default: ParameterValue | null;
  value: ParameterValue | null;
  /** Declared by the runtime ("intensity"), not by the graph. */
  builtin: boolean;
}

export interface GraphDescription {
  name: string;
  parameters: ParameterInfo[];
  states: string[];
  state: string;
  drivenBy: string;
  triggers: { name: string; stinger: string; setState: string; bump: number }[];
  prompts: { name: string; text: string | null; audio: string | null; weight: number }[];
  stingers: string[];
  controls: Controls;
}

export interface EventBase {
  topic: Topic;
  /** Per topic, from 1; a gap is a loss. */
  sequence: number;
  /** Samples: when the event is heard. */
  streamTime: number;
  seconds: number;
}
export interface BeatEvent extends EventBase {
  topic: 'beat' | 'bar';
  beat: number;
  bar: number;
  beatInBar: number;
  bpm: number;
  estimated: boolean;
}
export interface StateEvent extends EventBase {
  topic: 'state';
  name: string;
  previous: string;
  phase: 'scheduled' | 'started' | 'completed' | 'cancelled' | '';
  transition: string;
  fadeSeconds: number;
}
export interface MixEvent extends EventBase { topic: 'mix'; weights: Record<string, number> }
export interface StingerEvent extends EventBase { topic: 'stinger'; name: string; durationSeconds: number }
export interface XrunEvent extends EventBase { topic: 'xrun'; count: number; framesLost: number; source: string }
export interface WarningEvent extends EventBase { topic: 'warning'; message: string; field: string }
export interface StatusEvent extends EventBase { topic: 'status'; status: Status }
export type CadenzaEvent = BeatEvent | StateEvent | MixEvent | StingerEvent | XrunEvent | WarningEvent | StatusEvent;
export interface EventsByTopic {
  beat: BeatEvent;
  bar: BeatEvent;
  state: StateEvent;
  mix: MixEvent;
  stinger: StingerEvent;
  xrun: XrunEvent;
  warning: WarningEvent;
  status: StatusEvent;
}

export interface AudioChunk {
  sequence: number;
  /** Samples: the first frame's time. */
  streamTime: number;
  sampleRate: number;
  channels: number;
  frames: number;
  format: 'float32' | 'int16';
  /** Interleaved samples in [-1, 1], whatever the wire format. */
  pcm: Float32Array;
  /** The PCM bytes as sent (a Node Buffer). */
  raw: Uint8Array;
}

// ------------------------------------------------------------------------------------------- client

export interface ClientOptions {
  /** Default tcp://127.0.0.1:5555. */
  control?: string;
  /** Default tcp://127.0.0.1:5556. */
  events?: string;
  /** Seconds to wait for each reply (2). */
  timeout?: number;
  /** Seconds a LoadGraph/SetPrompts may take on the runtime, waited on top of `timeout` (10). */
  loadTimeout?: number;
  /** Sent in Hello. */
  name?: string;
  /** Re-sync a restarted runtime (true). */
  autoReconnect?: boolean;
  /** Seconds between Hellos of an idle client (1; 0: none). */
  heartbeat?: number;
  serverPublicKey?: string;
  clientSecretKey?: string;
  clientPublicKey?: string;
}

export interface SetOptions {
  /** Reach the values over this many seconds (instead of the parameters' own smoothing). */
  ramp?: number | null;
  shape?: RampShape | null;
  /** Jump at once: no filter, ramp or smoothing. */
  bypass?: boolean;
  /** Clamp values outside a parameter's range instead of refusing them. */
  clamp?: boolean;
  /** This client's clock (seconds), for latency reports. */
  clientTime?: number | null;
}

export type GraphSource = string | { text: string; baseDir?: string; format?: 'yaml' | 'json' } | { path: string; format?: 'yaml' | 'json' };
export type PromptsSource =
  | string
  | Record<string, number>
  | Map<string, number>
  | Array<string | [string, number] | { text: string; weight?: number } | { audioPath: string; weight?: number }>;

export const DEFAULT_CONTROL: string;
export const DEFAULT_EVENTS: string;
export const DEFAULT_AUDIO: string;
export const DEFAULT_AUDIO_INT16: string;
export const DEFAULT_TIMEOUT: number;
export const DEFAULT_HEARTBEAT: number;
export const DEFAULT_LOAD_TIMEOUT: number;
/** An already queued chunk more than this many seconds behind live audio is dropped as stale. */
export const STALE_AUDIO_S: number;

export class Client {
  constructor(options?: ClientOptions);
  readonly control: string;
  readonly eventsEndpoint: string;
  readonly timeout: number;
  readonly loadTimeout: number;
  readonly heartbeat: number;
  readonly name: string;
  readonly autoReconnect: boolean;
  readonly state: 'unopened' | 'open' | 'closed';
  /** What the runtime said in the last Hello. */
  readonly server: ServerInfo | null;
  readonly sampleRate: number;
  /** Times the client got a runtime back (after a timeout, or a restarted runtime it re-synced). */
  readonly reconnects: number;
  readonly staleReplies: number;
  /** Events missed: gaps in the per-topic sequence numbers. */
  readonly eventsLost: number;
  readonly eventsBad: number;
  readonly callbackErrors: number;
  readonly eventsError: TransportError | null;

  open(): this;
  close(): Promise<void>;
  hello(): Promise<ServerInfo>;
  describe(): Promise<GraphDescription>;
  loadGraph(source: GraphSource, options?: { baseDir?: string; format?: 'yaml' | 'json' }): Promise<Ack>;
  set(values: Record<string, ParameterValue | boolean> | Map<string, ParameterValue | boolean>): Promise<Ack>;
  set(name: string, value: ParameterValue | boolean): Promise<Ack>;
  setMany(values: Record<string, ParameterValue | boolean> | Map<string, ParameterValue | boolean>, options?: SetOptions): Promise<Ack>;
  trigger(name: string | { name: string }): Promise<Ack>;
  setState(name: string | { name: string }): Promise<Ack>;
  setPrompts(prompts: PromptsSource): Promise<Ack>;
  setControls(controls: ControlsUpdate): Promise<Ack>;
  clearControls(...names: ControlName[]): Promise<Ack>;
  transport(action: TransportAction): Promise<Ack>;
  play(): Promise<Ack>;
  pause(): Promise<Ack>;
  stop(): Promise<Ack>;
  resetContext(): Promise<Ack>;
  status(): Promise<Status>;

  on<T extends Topic>(topic: T, callback: (event: EventsByTopic[T]) => unknown): (event: EventsByTopic[T]) => unknown;
  off<T extends Topic>(topic: T, callback: (event: EventsByTopic[T]) => unknown): void;
  onBeat(callback: (event: BeatEvent) => unknown): (event: BeatEvent) => unknown;
  onBar(callback: (event: BeatEvent) => unknown): (event: BeatEvent) => unknown;
  onState(callback: (event: StateEvent) => unknown): (event: StateEvent) => unknown;
  onMix(callback: (event: MixEvent) => unknown): (event: MixEvent) => unknown;
  onStinger(callback: (event: StingerEvent) => unknown): (event: StingerEvent) => unknown;
  onXrun(callback: (event: XrunEvent) => unknown): (event: XrunEvent) => unknown;
  onWarning(callback: (event: WarningEvent) => unknown): (event: WarningEvent) => unknown;
  onStatus(callback: (event: StatusEvent) => unknown): (event: StatusEvent) => unknown;
  events(options?: { timeout?: number | null; topics?: Topic[] | null; maxQueue?: number }): EventStream;
  audio(options?: { format?: 'float32' | 'int16'; endpoint?: string | null; timeout?: number | null; staleAfter?: number | null }): Promise<AudioStream>;
}

export class EventStream implements AsyncIterable<CadenzaEvent> {
  readonly topics: Set<Topic> | null;
  readonly timeout: number | null;
  /** Events discarded because the stream was not read fast enough. */
  readonly dropped: number;
  next(timeout?: number | null): Promise<CadenzaEvent | null>;
  waitFor(predicate: (event: CadenzaEvent) => boolean, timeout: number): Promise<CadenzaEvent | null>;
  [Symbol.asyncIterator](): AsyncIterator<CadenzaEvent>;
  close(): void;
}

export class AudioStream implements AsyncIterable<AudioChunk> {
  constructor(endpoint?: string | null, options?: {
    format?: 'float32' | 'int16'; timeout?: number | null; staleAfter?: number | null; serverPublicKey?: string;
    clientSecretKey?: string; clientPublicKey?: string;
  });
  readonly endpoint: string;
  readonly format: 'float32' | 'int16';
  /** Seconds (0.5); null: never drop. */
  readonly staleAfter: number | null;
  readonly chunks: number;
  readonly bad: number;
  readonly bytes: number;
  /** Chunks dropped as older than the stale bound. */
  readonly stale: number;
  /** Chunks missed (sequence gaps). */
  readonly lost: number;
  open(): this;
  read(timeout?: number | null): Promise<AudioChunk | null>;
  [Symbol.asyncIterator](): AsyncIterator<AudioChunk>;
  close(): void;
}

/** A new CurveZMQ key pair, each key 40 z85 characters. */
export function curveKeyPair(): { publicKey: string; secretKey: string };

export class SequenceTracker {
  readonly last: Map<string, number>;
  readonly lost: number;
  observe(stream: string, sequence: number): number;
}

// ------------------------------------------------------------------------------------------- wire

/** The repository's proto/cadenza_v1.proto, and the .proto this process loaded (CADENZA_PROTO, else the former). */
export const DEFAULT_PROTO_PATH: string;
export const PROTO_PATH: string;
/** The protobufjs type of cadenza.v1.Envelope (field names as in the .proto). */
export const Envelope: any;
export const PROTOCOL_VERSION: number;
export const SUPPORTED_VERSIONS: readonly number[];
export const MAX_MESSAGE_BYTES: number;
export const REQUEST_KINDS: readonly string[];
export const REPLY_KINDS: readonly string[];
export const TOPICS: readonly Topic[];
export const CONTROL_NAMES: readonly ControlName[];
export const RAMP_SHAPES: Readonly<Record<RampShape, number>>;
export const TRANSPORT_ACTIONS: Readonly<Record<TransportAction, number>>;
export const ERROR_CODES: Readonly<Record<number, string>>;
export const ERROR_NUMBERS: Readonly<Record<string, number>>;
/** Control name → its protobuf type ("double", "bool", "string", "uint32", "uint64", "NoteSet"). */
export const CONTROL_TYPES: Readonly<Record<ControlName, string>>;
export const GRAPH_FORMATS: Readonly<Record<'yaml' | 'json', number>>;
/** AudioChunk.SampleFormat number → [name, bytes per sample]. */
export const SAMPLE_FORMATS: Readonly<Record<number, readonly [string, number]>>;

/** Request bodies as plain objects with the .proto's field names (enums as numbers). */
export type RequestBody = Record<string, unknown>;
export function helloRequest(name?: string): RequestBody;
export function graphRequest(source: GraphSource, options?: { baseDir?: string; format?: 'yaml' | 'json' }): [RequestBody, string | null];
export function parametersRequest(values: Record<string, ParameterValue | boolean> | Map<string, ParameterValue | boolean>, options?: SetOptions): RequestBody;
export function promptsRequest(prompts: PromptsSource): RequestBody;
export function controlsRequest(values: ControlsUpdate, clear?: ControlName[] | readonly ControlName[]): RequestBody;

export function num(value: unknown): number;
export function encodeRequest(kind: string, body: RequestBody | null, requestId: number): Uint8Array;
export function decodeReply(frame: Uint8Array): { requestId: number; version: number; kind: string; body: any };
export function decodeEvent(frames: Uint8Array[], sampleRate?: number): CadenzaEvent;
export function decodeAudio(frame: Uint8Array): AudioChunk;
export function ackView(ok: unknown, sampleRate?: number): Ack;
export function statusView(status: unknown, sampleRate?: number): Status;
export function serverInfoView(info: unknown): ServerInfo;
export function describeView(description: unknown): GraphDescription;
export function controlsView(controls: unknown): Controls;
