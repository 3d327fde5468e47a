// The Node client's exceptions: typed server errors by Error.Code, timeouts, lifecycle and transport errors.
//
//   CadenzaError
//   ├── UsageError
//   │   └── ClientStateError     a closed client used
//   ├── RequestTimeout           no reply within `timeout` (code 'ETIMEDOUT')
//   └── ProtocolError            bytes that are not this protocol
//       ├── TransportError       ZeroMQ failed (bad endpoint, socket error)
//       └── ServerError          an Error reply: .code ('UNKNOWN_NAME'), .codeNumber, .field, .message
//           ├── BadMessage, UnsupportedVersion, UnknownName, BadValue, GraphInvalid, TooLarge,
//           └── RateLimited, InternalServerError, NotReady, PermissionDenied, ServerTimeout
//
// A ServerError with `remote` false was raised by the client before sending a request the runtime would
// refuse (a NaN, an empty name): game code catches BadValue either way. Imports only the protocol's tables
// (the Error.Code names come from the .proto).

import { ERROR_CODES } from './protocol.js';

/** Every error this package throws. `where` names the argument or field at fault. */
export class CadenzaError extends Error {
  constructor(message, { where = '' } = {}) {
    super(where ? `${where}: ${message}` : message);
    this.name = new.target.name;
    this.where = where;
    this.detail = message;
  }
}

/** A call with bad arguments. */
export class UsageError extends CadenzaError {}

/** A client used after close(). */
export class ClientStateError extends UsageError {}

/** Bytes from the runtime that are not this protocol. */
export class ProtocolError extends CadenzaError {}

/** ZeroMQ refused an operation. */
export class TransportError extends ProtocolError {}

/** No reply within the client's timeout: `request` (the kind), `timeout` (seconds), `endpoint`. */
export class RequestTimeout extends CadenzaError {
  constructor(message, { request = '', timeout = 0, endpoint = '' } = {}) {
    super(message);
    this.code = 'ETIMEDOUT';
    this.request = request;
    this.timeout = timeout;
    this.endpoint = endpoint;
  }
}

/** An Error reply from the runtime (or the same refusal raised before sending, with `remote` false). */
export class ServerError extends ProtocolError {
  constructor(code, message, { field = '', requestId = 0, supportedVersions = [], remote = true, codeNumber = 0 } = {}) {
    super(message, { where: field });
    this.code = code;
    this.codeNumber = codeNumber;
    this.field = field;
    this.requestId = requestId;
    this.supportedVersions = supportedVersions;
    this.remote = remote;
  }
}

export class BadMessage extends ServerError {}
export class UnsupportedVersion extends ServerError {}
export class UnknownName extends ServerError {}
export class BadValue extends ServerError {}
export class TooLarge extends ServerError {}
export class RateLimited extends ServerError {}
export class InternalServerError extends ServerError {}
export class NotReady extends ServerError {}
export class PermissionDenied extends ServerError {}
export class ServerTimeout extends ServerError {}

/** GRAPH_INVALID: the message lists every issue as `file:line path: message`, one per line (`issues`). */
export class GraphInvalid extends ServerError {
  constructor(code, message, options = {}) {
    super(code, message, options);
    this.message = message; // the locations are in the message already
  }

  get issues() {
    return this.detail.split('\n').filter((line) => line.trim());
  }
}

const BY_CODE = {
  BAD_MESSAGE: BadMessage, UNSUPPORTED_VERSION: UnsupportedVersion, UNKNOWN_NAME: UnknownName, BAD_VALUE: BadValue,
  GRAPH_INVALID: GraphInvalid, TOO_LARGE: TooLarge, RATE_LIMITED: RateLimited, INTERNAL: InternalServerError,
  NOT_READY: NotReady, PERMISSION_DENIED: PermissionDenied, TIMEOUT: ServerTimeout,
};

/** The typed error for an Error.Code number (a plain ServerError for a code from a newer runtime). */
export function serverError(codeNumber, message, { field = '', requestId = 0, supportedVersions = [], remote = true } = {}) {
  const code = ERROR_CODES[codeNumber] ?? `CODE_${codeNumber}`; // the .proto's names
  const Cls = BY_CODE[code] ?? ServerError;
  return new Cls(code, message, { field, requestId, supportedVersions, remote, codeNumber });
}
