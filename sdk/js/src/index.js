// cadenza-client: drive a Cadenza runtime (`cadenza serve`) from Node.js over its protobuf-over-ZeroMQ wire.
export {
  AudioStream, Client, DEFAULT_AUDIO, DEFAULT_AUDIO_INT16, DEFAULT_CONTROL, DEFAULT_EVENTS, DEFAULT_HEARTBEAT,
  DEFAULT_LOAD_TIMEOUT, DEFAULT_TIMEOUT, EventStream, STALE_AUDIO_S, SequenceTracker, controlsRequest, curveKeyPair,
  graphRequest, helloRequest, parametersRequest, promptsRequest,
} from './client.js';
export * from './errors.js';
export {
  CONTROL_NAMES, CONTROL_TYPES, DEFAULT_PROTO_PATH, ERROR_CODES, ERROR_NUMBERS, Envelope, GRAPH_FORMATS,
  MAX_MESSAGE_BYTES, PROTOCOL_VERSION, PROTO_PATH, RAMP_SHAPES, REPLY_KINDS, REQUEST_KINDS, SAMPLE_FORMATS,
  SUPPORTED_VERSIONS, TOPICS, TRANSPORT_ACTIONS, ackView, controlsView, decodeAudio, decodeEvent, decodeReply,
  describeView, encodeRequest, num, serverInfoView, statusView,
} from './wire.js';
