"""The wire format: the only module that turns Cadenza messages into bytes and back.

Every message on every socket is one protobuf ``cadenza.v1.Envelope``
(``cadenza_v1.proto`` beside this file): the protocol version, a request id and
a ``oneof body``. This module owns the framing, the size limit, the version
check and the translation of protobuf's own errors; the runtime and the SDK
build and read the generated message classes, and hand bytes to their sockets,
but never call ``SerializeToString`` or ``ParseFromString`` themselves.

Framing, one ZeroMQ frame per box::

    control   client DEALER ──────────────────────────────▶ runtime ROUTER
              ┌─────────────────────────────────────────────┐
              │ Envelope{protocol_version, request_id,      │   encode_request / decode_request
              │          hello | load_graph | … | get_status│
              └─────────────────────────────────────────────┘
              runtime ROUTER ─────────────────────────────▶ client DEALER
              ┌─────────────────────────────────────────────┐
              │ Envelope{protocol_version, request_id,      │   encode_reply / decode_reply
              │          ok | status | error}               │   (exactly one per request)
              └─────────────────────────────────────────────┘
              (the ROUTER's identity frame in front is the socket layer's
              business. A REQ socket's empty delimiter frame in front of the
              Envelope is accepted too, and the reply then carries one:
              [b"", reply]. Every Error whose request id can be read from the
              bytes — peek_request_id — carries it: TOO_LARGE, RATE_LIMITED,
              a message of several frames included)

    events    runtime PUB ────────────────────────────────▶ client SUB
              ┌────────────┬────────────────────────────────┐
              │ topic      │ Envelope{protocol_version,     │   encode_event / decode_event
              │ b"beat"    │   event{topic, sequence,       │
              │ (ASCII)    │         stream_time, payload}} │
              └────────────┴────────────────────────────────┘
              SUB filters on the first frame; no topic is a prefix of another,
              so subscribing to b"state" never delivers "status".

    audio     runtime PUB ────────────────────────────────▶ client SUB
              ┌─────────────────────────────────────────────┐
              │ Envelope{protocol_version, audio_chunk{     │   encode_audio / decode_audio
              │   sequence, stream_time, sample_rate,       │
              │   channels, frames, format, pcm}}           │   pcm: interleaved float32 LE
              └─────────────────────────────────────────────┘        (or int16 LE)

Request ids are chosen by the client, never 0, and come back on the reply; 0
marks events, audio and the Error reply to a request whose id could not be
read. Event and audio sequence numbers count from 1 per topic (per audio
stream), so a gap is a lost message; ``Status.event_sequences`` gives a late
joiner the last number each topic had when the snapshot was taken (the
ZeroMQ Clone pattern: subscribe first, then ask for ``GetStatus``).

Versions: the envelope carries the sender's version. A request of a version
this side does not speak is refused with ``UNSUPPORTED_VERSION`` and the list
of supported versions, except ``Hello``, which offers the client's versions
and is answered with the highest common one (:func:`negotiate_version`).

Errors: every decode failure raises :class:`WireError`, a
:class:`~cadenza.errors.ProtocolError` carrying the ``Error.Code`` and the
field path (``set_parameters.values[3].number``); protobuf's ``DecodeError``
never escapes. The runtime answers it with ``encode_reply(exc.request_id,
exc.to_error())``. Encoding a message of the wrong type, or a bad sequence
number, is a bug in the caller and raises ``TypeError``/``ValueError``;
encoding user data the other side would refuse (a NaN, an oversized graph)
raises the same :class:`WireError` the other side would send back.

Dispatch on the ``oneof`` name, never on type strings: :class:`RequestKind`,
:class:`ReplyKind` and :class:`Topic` are the field names, and
:data:`REQUEST_TYPES`, :data:`REPLY_TYPES` and :data:`TOPIC_TYPES` map them to
the message classes.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final, NamedTuple, TypeAlias, cast

import numpy as np
from google.protobuf import json_format
from google.protobuf.internal import type_checkers
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from cadenza.errors import CadenzaError, ProtocolError
from cadenza.proto import cadenza_v1_pb2 as pb

__all__ = [
    "CONTROL_NAMES",
    "DEFAULT_SAMPLE_RATE",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "RAMP_SHAPE_NAMES",
    "REPLY_TYPES",
    "REQUEST_TYPES",
    "SOCKET_MAX_MESSAGE_BYTES",
    "SUPPORTED_VERSIONS",
    "TOPIC_TYPES",
    "DecodedAudio",
    "DecodedEvent",
    "DecodedReply",
    "DecodedRequest",
    "EventPayload",
    "ReplyBody",
    "ReplyKind",
    "RequestBody",
    "RequestKind",
    "Topic",
    "WireError",
    "controls_from_mapping",
    "controls_to_dict",
    "decode_audio",
    "decode_event",
    "decode_reply",
    "decode_request",
    "encode_audio",
    "encode_event",
    "encode_reply",
    "encode_request",
    "envelope_to_json",
    "negotiate_version",
    "parameter_value",
    "peek_request_id",
    "reply_kind",
    "request_from_json",
    "request_kind",
    "validate_request",
]

#: The version this side speaks and puts on every envelope it sends.
PROTOCOL_VERSION: Final = 1
#: Every version this side can read (and answer in).
SUPPORTED_VERSIONS: Final[tuple[int, ...]] = (1,)
#: The largest encoded message accepted or produced (1 MiB): larger ones are
#: refused with ``TOO_LARGE``.
MAX_MESSAGE_BYTES: Final = 1 << 20
#: What to set as the sockets' ``zmq.MAXMSGSIZE``: above ``MAX_MESSAGE_BYTES``
#: so that a message somewhat too large still gets a ``TOO_LARGE`` reply
#: (ZeroMQ silently disconnects a peer that exceeds ``MAXMSGSIZE``), while a
#: flood of huge frames is still cut off by ZeroMQ before it is buffered.
SOCKET_MAX_MESSAGE_BYTES: Final = 4 * MAX_MESSAGE_BYTES
#: Stream time is counted in samples at this rate unless a caller says otherwise
#: (the runtime's ``SAMPLE_RATE``; a test keeps them equal).
DEFAULT_SAMPLE_RATE: Final = 48_000

_MAX_U64: Final = (1 << 64) - 1


class RequestKind(StrEnum):
    """The request names: the ``Envelope.body`` fields a client may send."""

    HELLO = "hello"
    LOAD_GRAPH = "load_graph"
    SET_PARAMETERS = "set_parameters"
    TRIGGER = "trigger"
    SET_STATE = "set_state"
    SET_PROMPTS = "set_prompts"
    SET_CONTROLS = "set_controls"
    TRANSPORT = "transport"
    GET_STATUS = "get_status"
    DESCRIBE_GRAPH = "describe_graph"
    SUBSCRIBE = "subscribe"  # WebSocket connections only


class ReplyKind(StrEnum):
    """The reply names: the ``Envelope.body`` fields the runtime answers with."""

    OK = "ok"
    STATUS = "status"
    ERROR = "error"
    GRAPH_DESCRIPTION = "graph_description"


class Topic(StrEnum):
    """The event topics: the ``Event.payload`` fields, sent as the first frame."""

    BEAT = "beat"
    BAR = "bar"
    STATE = "state"
    MIX = "mix"
    STINGER = "stinger"
    XRUN = "xrun"
    WARNING = "warning"
    STATUS = "status"


RequestBody: TypeAlias = (
    pb.Hello | pb.LoadGraph | pb.SetParameters | pb.Trigger | pb.SetState | pb.SetPrompts | pb.SetControls
    | pb.Transport | pb.GetStatus | pb.DescribeGraph | pb.Subscribe
)
ReplyBody: TypeAlias = pb.Ok | pb.Status | pb.Error | pb.GraphDescription
EventPayload: TypeAlias = pb.Beat | pb.StateChange | pb.Mix | pb.StingerFired | pb.Xrun | pb.Warning | pb.Status

#: Request name → message class (the server's dispatch table is keyed the same way).
REQUEST_TYPES: Final[Mapping[RequestKind, type[Message]]] = {
    RequestKind.HELLO: pb.Hello,
    RequestKind.LOAD_GRAPH: pb.LoadGraph,
    RequestKind.SET_PARAMETERS: pb.SetParameters,
    RequestKind.TRIGGER: pb.Trigger,
    RequestKind.SET_STATE: pb.SetState,
    RequestKind.SET_PROMPTS: pb.SetPrompts,
    RequestKind.SET_CONTROLS: pb.SetControls,
    RequestKind.TRANSPORT: pb.Transport,
    RequestKind.GET_STATUS: pb.GetStatus,
    RequestKind.DESCRIBE_GRAPH: pb.DescribeGraph,
    RequestKind.SUBSCRIBE: pb.Subscribe,
}
#: Reply name → message class.
REPLY_TYPES: Final[Mapping[ReplyKind, type[Message]]] = {
    ReplyKind.OK: pb.Ok,
    ReplyKind.STATUS: pb.Status,
    ReplyKind.ERROR: pb.Error,
    ReplyKind.GRAPH_DESCRIPTION: pb.GraphDescription,
}
#: Event topic → payload class ("beat" and "bar" share :class:`Beat`).
TOPIC_TYPES: Final[Mapping[Topic, type[Message]]] = {
    Topic.BEAT: pb.Beat,
    Topic.BAR: pb.Beat,
    Topic.STATE: pb.StateChange,
    Topic.MIX: pb.Mix,
    Topic.STINGER: pb.StingerFired,
    Topic.XRUN: pb.Xrun,
    Topic.WARNING: pb.Warning,
    Topic.STATUS: pb.Status,
}
_REQUEST_KIND_BY_TYPE: Final[Mapping[type[Message], RequestKind]] = {t: k for k, t in REQUEST_TYPES.items()}
_REQUEST_KIND_BY_NAME: Final[Mapping[str, RequestKind]] = {k.value: k for k in RequestKind}
_new_tuple = tuple.__new__
_REPLY_KIND_BY_TYPE: Final[Mapping[type[Message], ReplyKind]] = {t: k for k, t in REPLY_TYPES.items()}

#: ``SetParameters.RampShape`` → the graph's curve-shape name.
RAMP_SHAPE_NAMES: Final[Mapping[int, str]] = {
    pb.SetParameters.RAMP_SHAPE_UNSPECIFIED: "linear",
    pb.SetParameters.LINEAR: "linear",
    pb.SetParameters.S_CURVE: "s-curve",
    pb.SetParameters.LOG: "log",
    pb.SetParameters.EXP: "exp",
    pb.SetParameters.SINE: "sine",
    pb.SetParameters.CONSTANT: "constant",
}

#: The control names, in field order (the fields of ``Controls``).
CONTROL_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in pb.Controls.DESCRIPTOR.fields)
_FLOAT_CONTROLS: Final = ("bpm", "density", "brightness", "temperature", "guidance")


# ----------------------------------------------------------------------------- errors


class WireError(ProtocolError):
    """A message refused by the wire layer, with the ``Error.Code`` to answer it with.

    ``field`` is the path of the bad field (``set_parameters.values[3].number``,
    empty for the whole message) and prefixes the message like every
    :class:`~cadenza.errors.CadenzaError` ``where``; ``request_id`` is the id
    of the refused request when it could be read (else 0).
    """

    def __init__(self, code: pb.Error.Code, message: str, *, field: str = "", request_id: int = 0,
                 supported_versions: Iterable[int] = ()) -> None:
        super().__init__(message, where=field or None)
        self.code = code
        self.field = field
        self.request_id = request_id
        self.supported_versions = tuple(supported_versions)

    @property
    def code_name(self) -> str:
        """The code's name, e.g. ``"BAD_VALUE"``."""
        return pb.Error.Code.Name(self.code)

    def to_error(self) -> pb.Error:
        """The ``Error`` reply that reports this refusal."""
        return pb.Error(code=self.code, message=self.message, field=self.field,
                        supported_versions=self.supported_versions)

    @classmethod
    def from_error(cls, error: pb.Error, *, request_id: int = 0) -> WireError:
        """An exception for an ``Error`` reply (what a client raises on receiving one)."""
        return cls(error.code, error.message, field=error.field, request_id=request_id,
                   supported_versions=error.supported_versions)


def _bad_message(message: str, *, field: str = "", request_id: int = 0) -> WireError:
    return WireError(pb.Error.BAD_MESSAGE, message, field=field, request_id=request_id)


def _bad_value(message: str, field: str) -> WireError:
    return WireError(pb.Error.BAD_VALUE, message, field=field)


def _versions(versions: Iterable[int]) -> str:
    return ", ".join(str(v) for v in versions)


# ----------------------------------------------------------------------------- names


def request_kind(body: Message) -> RequestKind:
    """The request name of a request message; ``TypeError`` for any other message."""
    kind = _REQUEST_KIND_BY_TYPE.get(type(body))
    if kind is None:
        raise TypeError(f"not a request message: {type(body).__name__}; "
                        f"requests are {', '.join(t.__name__ for t in REQUEST_TYPES.values())}")
    return kind


def reply_kind(body: Message) -> ReplyKind:
    """The reply name of a reply message; ``TypeError`` for any other message."""
    kind = _REPLY_KIND_BY_TYPE.get(type(body))
    if kind is None:
        raise TypeError(f"not a reply message: {type(body).__name__}; replies are Ok, Status, Error, GraphDescription")
    return kind


# ----------------------------------------------------------------------------- envelope


def _check_id(name: str, value: int, *, low: int = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MAX_U64:
        raise ValueError(f"{name} must be an integer in [{low}, 2**64 - 1], got {value!r}")


def _serialize(envelope: pb.Envelope, max_bytes: int) -> bytes:
    data = envelope.SerializeToString(deterministic=True)  # map entries sorted: the same message, the same bytes
    if len(data) > max_bytes:
        kind = envelope.WhichOneof("body")
        raise WireError(pb.Error.TOO_LARGE, f"the encoded {kind} is {len(data)} bytes, over the limit of "
                        f"{max_bytes} bytes", field=kind or "", request_id=envelope.request_id)
    return data


def _parse(data: bytes | memoryview, max_bytes: int) -> pb.Envelope:
    """Bytes → Envelope, with the size limit and protobuf's errors translated."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"expected bytes, got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise _bad_message("empty message (an Envelope is never empty)")
    if size > max_bytes:
        raise WireError(pb.Error.TOO_LARGE, f"message of {size} bytes is over the limit of {max_bytes} bytes",
                        request_id=peek_request_id(data))
    envelope = pb.Envelope()
    try:
        envelope.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise _bad_message(f"not a cadenza.v1.Envelope ({size} bytes that protobuf cannot decode: {exc})",
                           request_id=peek_request_id(data)) from exc
    return envelope


def _body_kind(envelope: pb.Envelope, allowed: Iterable[str], what: str) -> str:
    """The name of the envelope's body, which must be one of ``allowed``."""
    allowed = tuple(allowed)
    kind = envelope.WhichOneof("body")
    if kind is None:
        fields = UnknownFieldSet(envelope)
        unknown = sorted({fields[i].field_number for i in range(len(fields))})
        by_number = pb.Envelope.DESCRIPTOR.fields_by_number
        misread = [f"{n} ({by_number[n].name})" for n in unknown
                   if n in by_number and by_number[n].containing_oneof is not None]
        if misread:  # a field this version knows, sent with another wire type than its own
            detail = (f"body field {', '.join(misread)} could not be read: its bytes are not of the field's type "
                      "(wrong wire type)")
        else:
            detail = (f"a body field this version does not know (field numbers {unknown}; from a newer protocol?)"
                      if unknown else "no body")
        raise _bad_message(f"{detail}; expected a {what}: {', '.join(allowed)}", field="body",
                           request_id=envelope.request_id)
    if kind not in allowed:
        raise _bad_message(f"got {kind!r}, which is not a {what}; expected one of {', '.join(allowed)}",
                           field="body", request_id=envelope.request_id)
    return kind


def _check_version(envelope: pb.Envelope) -> None:
    version = envelope.protocol_version
    if version not in SUPPORTED_VERSIONS:
        said = "no protocol_version (0)" if version == 0 else f"protocol version {version}"
        raise WireError(pb.Error.UNSUPPORTED_VERSION,
                        f"{said} is not supported; supported versions: {_versions(SUPPORTED_VERSIONS)}",
                        field="protocol_version", request_id=envelope.request_id,
                        supported_versions=SUPPORTED_VERSIONS)


def negotiate_version(hello: pb.Hello, envelope_version: int = PROTOCOL_VERSION) -> int:
    """The highest version both sides speak, from a ``Hello`` (its list, else the envelope's version).

    Raises :class:`WireError` ``UNSUPPORTED_VERSION`` listing the supported
    versions when there is none in common.
    """
    offered = tuple(hello.supported_versions) or (envelope_version,)
    common = set(offered) & set(SUPPORTED_VERSIONS)
    if not common:
        raise WireError(pb.Error.UNSUPPORTED_VERSION,
                        f"no protocol version in common: the client speaks {_versions(offered)}, "
                        f"this side {_versions(SUPPORTED_VERSIONS)}",
                        field="hello.supported_versions", supported_versions=SUPPORTED_VERSIONS)
    return max(common)


# ----------------------------------------------------------------------------- requests


class DecodedRequest(NamedTuple):
    """A request as the runtime receives it: dispatch on ``kind``."""

    request_id: int
    kind: RequestKind
    body: RequestBody


def encode_request(body: RequestBody, request_id: int, *, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """One control frame carrying ``body`` (a request message) with ``request_id`` (>= 1).

    Raises :class:`WireError` for values the runtime would refuse (``BAD_VALUE``:
    NaN, a missing name) and for a message over ``max_bytes`` (``TOO_LARGE``).
    """
    kind = request_kind(body)
    _check_id("request_id", request_id, low=1)
    _with_request_id(validate_request, kind, body, request_id=request_id)
    envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, request_id=request_id)
    getattr(envelope, kind).CopyFrom(body)
    return _serialize(envelope, max_bytes)


def decode_request(data: bytes | memoryview, *, max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedRequest:
    """A control frame → ``(request_id, kind, body)``, checked; raises :class:`WireError`.

    Checks, in order: size and decodability (``TOO_LARGE``, ``BAD_MESSAGE``),
    the version (``UNSUPPORTED_VERSION``; a ``Hello`` is checked against the
    versions it offers instead), the body is a known request and the request
    id is set (``BAD_MESSAGE``), and the values (:func:`validate_request`,
    ``BAD_VALUE``/``UNKNOWN_NAME``). The error carries the request id whenever
    it could be read.
    """
    envelope = _parse(data, max_bytes)
    rid = envelope.request_id
    name = envelope.WhichOneof("body")
    if name == "hello":
        _with_request_id(negotiate_version, envelope.hello, envelope.protocol_version, request_id=rid)
    elif envelope.protocol_version not in SUPPORTED_VERSIONS:
        _check_version(envelope)
    # the common case in one dict lookup (every request runs this on cold caches: keep it short); the rest words
    # the error
    kind = _REQUEST_KIND_BY_NAME.get(name) if name is not None else None
    if kind is None:
        kind = RequestKind(_body_kind(envelope, REQUEST_TYPES, "request"))
    if rid == 0:
        raise _bad_message("request_id is 0 (unset); a request needs an id >= 1 to be answered",
                           field="request_id")
    body: RequestBody = getattr(envelope, name)
    try:
        _VALIDATORS[kind](body)  # validate_request's checks; the body is the envelope's own, of the right type
    except WireError as exc:
        exc.request_id = rid
        raise
    return _new_tuple(DecodedRequest, (rid, kind, body))  # DecodedRequest(...) without NamedTuple's Python __new__


def _top_level_fields(data: bytes | memoryview, max_fields: int, done: list[bool] | None = None,
                      ) -> Iterator[tuple[int, int, int | None]]:
    """(field number, wire type, varint value or None) of an Envelope's top-level fields, read straight from the
    bytes (at most ``max_fields``); length-delimited fields are skipped by their length, so a 4 MiB frame costs a
    few byte reads. Stops at the first thing it cannot skip (a group, a cut field, no protobuf); ``done`` (when
    given) gets True appended when every byte was walked."""
    view = memoryview(data)
    n = len(view)
    pos = 0

    def varint() -> int | None:
        nonlocal pos
        value = shift = 0
        while pos < n and shift < 64:
            b = view[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7
        return None

    for _ in range(max_fields):
        if pos >= n:
            if done is not None:
                done.append(True)
            return
        tag = varint()
        if tag is None or tag >> 3 == 0:
            return
        number, kind = tag >> 3, tag & 7
        if kind == 0:
            value = varint()
            if value is None:
                return
            yield number, kind, value
            continue
        if kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        elif kind == 2:
            length = varint()
            if length is None:
                return
            pos += length
        else:  # a group (3/4) or no wire type at all
            return
        if pos > n:
            return
        yield number, kind, None
    if pos >= n and done is not None:
        done.append(True)


def peek_request_id(data: bytes | memoryview, *, max_fields: int = 64) -> int:
    """The ``request_id`` (Envelope field 2) read straight from the bytes, without decoding the message; 0 when
    it cannot be found.

    For the replies that refuse a message before (or instead of) decoding it: TOO_LARGE, RATE_LIMITED, a
    message of several frames, PERMISSION_DENIED. Walks the top-level fields (at most ``max_fields``; field 2
    comes second in every encoder's output), skipping length-delimited ones by their length, so a 4 MiB frame
    costs a few byte reads; stops at the first thing that is no protobuf.
    """
    for number, _, value in _top_level_fields(data, max_fields):
        if number == 2 and value is not None:
            return value if value <= _MAX_U64 else 0
    return 0


_BODY_BY_NUMBER: Final[Mapping[int, str]] = {
    f.number: f.name for f in pb.Envelope.DESCRIPTOR.oneofs_by_name["body"].fields}


def peek_request_kind(data: bytes | memoryview, *, max_fields: int = 64) -> tuple[RequestKind | None, int] | None:
    """``(request kind, request_id)`` read from the bytes without decoding the message (a 1 MiB LoadGraph's
    text is not copied or checked): the kind of the last body field, as a decoder reads a ``oneof`` (None: no
    request body), the id 0 when there is none. None when the bytes cannot be routed with certainty — more than
    ``max_fields`` fields, a group, a body field of another wire type than a message's, a cut field: then only
    :func:`decode_request` can say what it is. Routing only: decode_request checks the rest."""
    kind: RequestKind | None = None
    rid = 0
    done: list[bool] = []
    for number, wire_type, value in _top_level_fields(data, max_fields, done):
        if number == 2 and wire_type == 0 and value is not None:
            rid = value if value <= _MAX_U64 else 0
        elif number in _BODY_BY_NUMBER:
            if wire_type != 2:  # protobuf keeps it as an unknown field: no body a peek can name
                return None
            kind = _REQUEST_KIND_BY_NAME.get(_BODY_BY_NUMBER[number])
    return (kind, rid) if done else None


def _with_request_id(check: Callable[..., Any], *args: Any, request_id: int) -> Any:
    try:
        return check(*args)
    except WireError as exc:
        exc.request_id = request_id
        raise


# ----------------------------------------------------------------------------- replies


class DecodedReply(NamedTuple):
    """A reply as the client receives it: match ``request_id``, then look at ``kind``."""

    request_id: int
    kind: ReplyKind
    body: ReplyBody


def encode_reply(request_id: int, body: ReplyBody, *, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """One control frame answering ``request_id`` (0 when the request's id was unreadable)."""
    kind = _REPLY_KIND_BY_TYPE.get(type(body))
    if kind is None or type(request_id) is not int or not 0 <= request_id <= _MAX_U64:  # (the checks, inline:
        kind = reply_kind(body)                                                  # every reply runs this)
        _check_id("request_id", request_id)
    envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, request_id=request_id)
    getattr(envelope, kind).CopyFrom(body)
    return _serialize(envelope, max_bytes)


def decode_reply(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedReply:
    """A control frame → ``(request_id, kind, body)``; raises :class:`WireError`.

    An ``Error`` reply is returned, not raised: the client decides (usually
    ``raise WireError.from_error(body, request_id=...)``).
    """
    envelope = _parse(data, max_bytes)
    _check_version(envelope)
    kind = ReplyKind(_body_kind(envelope, REPLY_TYPES, "reply"))
    return DecodedReply(envelope.request_id, kind, getattr(envelope, kind))


# ----------------------------------------------------------------------------- events


class DecodedEvent(NamedTuple):
    """An event as a subscriber receives it."""

    topic: Topic
    sequence: int
    stream_time: int  # samples
    stream_seconds: float
    payload: EventPayload
    heard_at: float = 0.0  # Unix seconds on the runtime's host when it is heard at the output; 0: unknown


def encode_event(topic: str, sequence: int, stream_time: int, payload: EventPayload, *,
                 sample_rate: int = DEFAULT_SAMPLE_RATE, max_bytes: int = MAX_MESSAGE_BYTES,
                 heard_at: float = 0.0) -> list[bytes]:
    """The two frames ``[topic, Envelope{event}]`` of one event for a PUB socket.

    ``sequence`` counts from 1 per topic; ``stream_time`` is the sample at
    which the event is heard (also sent in seconds at ``sample_rate``);
    ``heard_at`` the Unix time it is heard at the output (0: unknown).
    """
    try:
        name = Topic(topic)
    except ValueError:
        raise ValueError(f"unknown event topic {topic!r}; topics are {', '.join(Topic)}") from None
    expected = TOPIC_TYPES[name]
    if type(payload) is not expected:
        raise TypeError(f"a {name.value!r} event carries {expected.__name__}, got {type(payload).__name__}")
    _check_id("sequence", sequence, low=1)
    _check_id("stream_time", stream_time)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if not (isinstance(heard_at, (int, float)) and math.isfinite(heard_at) and heard_at >= 0.0):
        raise ValueError(f"heard_at must be a finite Unix time >= 0 (0: unknown), got {heard_at!r}")
    event = pb.Event(topic=name, sequence=sequence, stream_time=stream_time,
                     stream_seconds=stream_time / sample_rate, heard_at=float(heard_at))
    getattr(event, name).CopyFrom(payload)
    envelope = pb.Envelope(protocol_version=PROTOCOL_VERSION, event=event)
    return [name.encode("ascii"), _serialize(envelope, max_bytes)]


def decode_event(frames: Sequence[bytes], *, max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedEvent:
    """``[topic, payload]`` frames from a SUB socket → a checked event; raises :class:`WireError`.

    A topic this version does not know (from a newer runtime) is a
    ``BAD_MESSAGE`` too: a subscriber to every topic skips it.
    """
    if len(frames) != 2:
        raise _bad_message(f"an event is 2 frames [topic, payload], got {len(frames)}")
    raw_topic, data = frames
    try:
        topic_text = bytes(raw_topic).decode("ascii")
    except UnicodeDecodeError:
        raise _bad_message(f"event topic {bytes(raw_topic)[:32]!r} is not ASCII", field="topic") from None
    envelope = _parse(data, max_bytes)
    _check_version(envelope)
    _body_kind(envelope, ["event"], "event")
    event = envelope.event
    if event.topic != topic_text:
        raise _bad_message(f"topic frame {topic_text!r} differs from the event's topic {event.topic!r}",
                           field="event.topic")
    if topic_text not in TOPIC_TYPES:
        raise _bad_message(f"unknown event topic {topic_text!r}; topics are {', '.join(Topic)}", field="event.topic")
    payload_kind = event.WhichOneof("payload")
    if payload_kind != topic_text:
        raise _bad_message(f"a {topic_text!r} event carries {payload_kind or 'no payload'!r}",
                           field="event.payload")
    if event.sequence == 0:
        raise _bad_message("event sequence is 0; sequences count from 1", field="event.sequence")
    return DecodedEvent(Topic(topic_text), event.sequence, event.stream_time, event.stream_seconds,
                        getattr(event, topic_text), event.heard_at)


# ----------------------------------------------------------------------------- audio

_SAMPLE_FORMATS: Final[Mapping[str, tuple[pb.AudioChunk.SampleFormat, np.dtype[Any]]]] = {
    "float32": (pb.AudioChunk.FLOAT32_LE, np.dtype("<f4")),
    "int16": (pb.AudioChunk.INT16_LE, np.dtype("<i2")),
}
_DTYPE_BY_FORMAT: Final[Mapping[int, np.dtype[Any]]] = {code: dtype for code, dtype in _SAMPLE_FORMATS.values()}
_INT16_SCALE: Final = 32767.0


class DecodedAudio(NamedTuple):
    """An audio chunk as a subscriber receives it: ``pcm`` is float32 ``(frames, channels)``."""

    sequence: int
    stream_time: int  # samples: the first frame's time
    pcm: np.ndarray


def encode_audio(sequence: int, stream_time: int, pcm: np.ndarray, *, sample_rate: int = DEFAULT_SAMPLE_RATE,
                 sample_format: str = "float32", max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """One audio frame for the audio PUB socket: ``pcm`` is float ``(frames, channels)`` in [-1, 1].

    ``sample_format="int16"`` halves the size (values clipped to [-1, 1]).
    """
    if sample_format not in _SAMPLE_FORMATS:
        raise ValueError(f"unknown sample_format {sample_format!r}; use {' or '.join(_SAMPLE_FORMATS)}")
    arr = np.asarray(pcm)
    if arr.ndim != 2 or arr.shape[1] < 1 or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"pcm must be a float array of shape (frames, channels), got {arr.dtype} {arr.shape}")
    _check_id("sequence", sequence, low=1)
    _check_id("stream_time", stream_time)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    code, dtype = _SAMPLE_FORMATS[sample_format]
    if code == pb.AudioChunk.INT16_LE:
        scaled = np.rint(np.clip(np.nan_to_num(arr, nan=0.0), -1.0, 1.0) * _INT16_SCALE)
        samples = scaled.astype(dtype)
    else:
        samples = np.ascontiguousarray(arr, dtype=dtype)
    chunk = pb.AudioChunk(sequence=sequence, stream_time=stream_time, sample_rate=sample_rate,
                          channels=arr.shape[1], frames=arr.shape[0], format=code, pcm=samples.tobytes())
    return _serialize(pb.Envelope(protocol_version=PROTOCOL_VERSION, audio_chunk=chunk), max_bytes)


def decode_audio(data: bytes, *, sample_rate: int | None = None,
                 max_bytes: int = MAX_MESSAGE_BYTES) -> DecodedAudio:
    """An audio frame → ``(sequence, stream_time, pcm)``; raises :class:`WireError`.

    ``pcm`` is a new float32 array ``(frames, channels)`` (int16 chunks are
    scaled back to [-1, 1]). Given ``sample_rate`` (the one ``Hello`` reported),
    a chunk at another rate is refused (``BAD_VALUE``) rather than played at
    the wrong speed.
    """
    envelope = _parse(data, max_bytes)
    _check_version(envelope)
    _body_kind(envelope, ["audio_chunk"], "audio chunk")
    chunk = envelope.audio_chunk
    dtype = _DTYPE_BY_FORMAT.get(chunk.format)
    if dtype is None:
        raise _bad_message(f"sample format {chunk.format} is not one of "
                           f"{', '.join(f'{n} ({c})' for n, (c, _) in _SAMPLE_FORMATS.items())}",
                           field="audio_chunk.format")
    if chunk.channels == 0:
        raise _bad_message("channels is 0", field="audio_chunk.channels")
    if chunk.sample_rate == 0:
        raise _bad_message("sample_rate is 0", field="audio_chunk.sample_rate")
    if sample_rate is not None and chunk.sample_rate != sample_rate:
        raise _bad_value(f"audio at {chunk.sample_rate} Hz, expected {sample_rate} Hz", "audio_chunk.sample_rate")
    if chunk.sequence == 0:
        raise _bad_message("audio sequence is 0; sequences count from 1", field="audio_chunk.sequence")
    expected = chunk.frames * chunk.channels * dtype.itemsize
    if len(chunk.pcm) != expected:
        raise _bad_message(f"pcm is {len(chunk.pcm)} bytes; {chunk.frames} frames x {chunk.channels} channels "
                           f"of {dtype.itemsize} bytes need {expected}", field="audio_chunk.pcm")
    samples = np.frombuffer(chunk.pcm, dtype=dtype).reshape(chunk.frames, chunk.channels)
    if dtype.kind == "i":
        pcm = (samples.astype(np.float32) / np.float32(_INT16_SCALE)).astype(np.float32)
    else:
        pcm = samples.astype(np.float32)  # a writable native-endian copy
    return DecodedAudio(chunk.sequence, chunk.stream_time, pcm)


# ----------------------------------------------------------------------------- JSON (the WebSocket gateway's text frames)

_JSON_AT: Final = re.compile(r" at Envelope\.([\w.\[\]]+?)\.?$")
_JSON_OUT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # one line; json.dumps with these
# arguments would build an encoder per call


def request_from_json(text: str | bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """A request Envelope in protobuf's canonical JSON mapping → that Envelope's bytes (what a binary frame carries).

    Field names in lowerCamelCase or as in the .proto, enums by name or number, 64-bit integers as numbers or
    strings, ``bytes`` as base64: whatever ``google.protobuf.json_format`` reads. The bytes still go through
    :func:`decode_request` on the runtime's side, like any binary frame. Raises :class:`WireError`: ``TOO_LARGE``
    for text over ``max_bytes`` (not parsed at all), ``BAD_MESSAGE`` for text that is no JSON, no object, or no
    Envelope (an unknown field, a wrong type; the message names the field), with the request id when it could be
    read.
    """
    if len(text) > max_bytes:
        raise WireError(pb.Error.TOO_LARGE, f"JSON text of {len(text)} bytes is over the limit of {max_bytes} bytes",
                        request_id=_head_id(text))
    try:
        obj = json.loads(text, object_pairs_hook=_json_object_once, parse_constant=_json_not_a_constant)
    except _JSONRefused as exc:  # a key given twice
        raise _bad_message(str(exc), request_id=_head_id(text)) from None
    except json.JSONDecodeError as exc:
        raise _bad_message(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}; a text frame is one "
                           'Envelope as a JSON object, e.g. {"requestId": 1, "getStatus": {}}',
                           request_id=_head_id(text)) from None
    except RecursionError:
        raise _bad_message("not accepted: JSON nested too deeply (a request needs a few levels)",
                           request_id=_head_id(text)) from None
    except ValueError:  # bad UTF-8, a number of thousands of digits
        raise _bad_message("not JSON this runtime reads: bad UTF-8, or a number with too many digits",
                           request_id=_head_id(text)) from None
    if not isinstance(obj, dict):
        raise _bad_message(f"a text frame is one Envelope as a JSON object, got {_json_kind(obj)}; "
                           'e.g. {"requestId": 1, "getStatus": {}}')
    request_id = _json_id(obj.get("requestId", obj.get("request_id")))
    envelope = pb.Envelope()
    try:
        _fill(envelope, obj, 0)
        return _serialize(envelope, max_bytes)
    except _NotCommon:  # json_format reads the whole Envelope, and words the error if there is one
        pass
    _check_json(obj, cast(Any, pb.Envelope.DESCRIPTOR), "", request_id, 0)
    envelope = pb.Envelope()
    try:
        json_format.ParseDict(obj, envelope, max_recursion_depth=32)
    except (json_format.ParseError, RecursionError, TypeError, ValueError, OverflowError, SystemError) as exc:
        message = str(exc)[:600].replace("..", ".")
        match = _JSON_AT.search(message)
        raise _bad_message(f"not a cadenza.v1.Envelope: {message}", request_id=request_id,
                           field=_snake(match.group(1)) if match else "") from None
    return _serialize(envelope, max_bytes)


class _JSONRefused(CadenzaError):
    """JSON that :func:`json.loads` reads but a request may not carry (raised from its hooks)."""


def _json_object_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object hook: a key given twice is refused (json.loads would keep the last silently)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _JSONRefused(f"the key {twice!r} is given twice in one JSON object; give each field once")
    return obj


class _Bare:
    """A bare ``NaN``, ``Infinity`` or ``-Infinity`` where json.loads read it (JSON has no such tokens): kept as
    this marker, so that :func:`_check_json` refuses it with the field's path (nothing else accepts it)."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


def _json_not_a_constant(token: str) -> _Bare:
    """json.loads' hook for the bare tokens NaN, Infinity and -Infinity, which Python reads and JSON has not."""
    return _Bare(token)


def _json_id(value: object) -> int:
    """The request id of a JSON object when it is one :func:`_check_json` accepts (a JSON integer, an integral
    number, or a canonical ASCII decimal string, 1 to 2^64 - 1), else 0: an error never carries an id that was
    refused as one (a reply for "07" must not reach the client waiting on 7)."""
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is str and _JSON_INT.fullmatch(value) is not None:
        value = int(value)
    return value if type(value) is int and 0 < value <= _MAX_U64 else 0


def _head_id(text: str | bytes) -> int:
    """The request id read from the first 256 characters of JSON that could not be read whole, or 0."""
    head = _JSON_ID.search(text[:256] if isinstance(text, str) else text[:256].decode("utf-8", "replace"))
    return int(head.group(1)) if head and 0 < int(head.group(1)) <= _MAX_U64 else 0


class _NotCommon(CadenzaError):
    """A JSON object :func:`_fill` leaves to ``json_format.ParseDict`` as a whole."""


_DOUBLE_INT: Final = 2**1023  # integers a JSON number may give for a double field (float() overflows beyond ~2^1024)
_FILL_DEPTH: Final = 30  # json_format's limit is 32 levels (the Envelope the first): deeper goes its own way
_SURROGATE: Final = re.compile("[\ud800-\udfff]")  # json.loads pairs what pairs: any left is unpaired


def _fill(message: Message, obj: dict[str, Any], depth: int) -> None:
    """``json_format.ParseDict(obj, message)`` for the JSON a client commonly sends, or :class:`_NotCommon`.

    Read from the descriptors (:func:`_read_plan`), never per message: each JSON value of exactly the type the
    canonical mapping gives the field — a finite number for ``double``, an integer in range for an integer field,
    ``true``/``false``, a string (no unpaired surrogate), an enum value's name, an object for a message, arrays of
    those, an object of those under string keys for a map — is set as json_format sets it. Anything else (a null,
    an unknown field, a field named twice, two members of a oneof, a number as a string, an enum number, ``float``
    or ``bytes`` fields, other map keys) raises :class:`_NotCommon` before anything is returned, and the caller
    gives the whole object to ``json_format.ParseDict``, whose result and error text are the reference.
    tests/test_wire.py checks the two give the same bytes on every request kind, and that whatever this accepts
    json_format accepts too."""
    if depth > _FILL_DEPTH:
        raise _NotCommon("deep")
    plan = _read_plan(message.DESCRIPTOR)
    seen: set[str] = set()
    for key, value in obj.items():
        entry = plan.get(key)
        if entry is None:
            raise _NotCommon(key)
        name, kind, extra, group = entry
        if group in seen:  # the same field twice (json name and .proto name), or a oneof's second member
            raise _NotCommon(key)
        seen.add(group)
        if kind == "message":
            if type(value) is not dict:
                raise _NotCommon(key)
            sub = getattr(message, name)
            sub.SetInParent()  # an empty object is still that message, as json_format sets it
            _fill(sub, value, depth + 1)
        elif kind == "messages":
            if type(value) is not list:
                raise _NotCommon(key)
            field = getattr(message, name)
            for item in value:
                if type(item) is not dict:
                    raise _NotCommon(key)
                _fill(field.add(), item, depth + 1)
        elif kind == "map":
            if type(value) is not dict:
                raise _NotCommon(key)
            field = getattr(message, name)
            for k, v in value.items():
                if not k.isascii() and _SURROGATE.search(k):
                    raise _NotCommon(key)
                field[k] = _scalar(v, extra)
        elif kind == "scalars":
            if type(value) is not list:
                raise _NotCommon(key)
            getattr(message, name).extend([_scalar(v, extra) for v in value])
        else:
            setattr(message, name, _scalar(value, extra))


def _scalar(value: object, want: tuple[str, Any]) -> Any:
    """One JSON value as :func:`_fill` sets it for a field of ``want`` (kind, detail), or :class:`_NotCommon`."""
    kind, detail = want
    t = type(value)
    if kind == "double":
        # finite (NaN and ±Infinity are json_format's), an integer a double holds (a larger one overflows)
        if (t is float and value - value == 0.0) or t is int and -_DOUBLE_INT <= value <= _DOUBLE_INT:  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
    elif kind == "int":
        if t is int and detail[0] <= value <= detail[1]:  # type: ignore[operator]
            return value
    elif kind == "string":
        if t is str and (value.isascii() or not _SURROGATE.search(value)):  # type: ignore[union-attr]
            return value
    elif kind == "bool":
        if t is bool:
            return value
    elif kind == "enum":
        if t is str:
            number = detail.get(value)
            if number is not None:
                return number
    raise _NotCommon(kind)


_READ_PLANS: dict[str, dict[str, tuple[str, str, Any, str]]] = {}


def _read_plan(desc: Descriptor) -> dict[str, tuple[str, str, Any, str]]:
    """Per message type, from its descriptor: JSON key (json name and .proto name) → (field, how :func:`_fill`
    reads it, its scalar kind, the group a second key of which is not common: the field, or its oneof)."""
    plan = _READ_PLANS.get(desc.full_name)
    if plan is not None:
        return plan
    plan = {}
    for fd in desc.fields:
        kind: str | None
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            key_fd, value_fd = fd.message_type.fields_by_name["key"], fd.message_type.fields_by_name["value"]
            scalar = _scalar_kind(value_fd)
            kind = "map" if key_fd.type == _FD.TYPE_STRING and scalar is not None else None
        elif fd.type == _FD.TYPE_MESSAGE:
            scalar, kind = None, "messages" if fd.is_repeated else "message"
            if fd.message_type.full_name.startswith("google.protobuf."):  # well-known types: json_format's own
                kind = None
        else:
            scalar = _scalar_kind(fd)
            kind = None if scalar is None else "scalars" if fd.is_repeated else "scalar"
        if kind is None:
            continue  # a key of this field is never common
        group = fd.containing_oneof.name if fd.containing_oneof is not None else fd.name
        plan[fd.json_name] = plan[fd.name] = (fd.name, kind, scalar, group)
    _READ_PLANS[desc.full_name] = plan
    return plan


def _scalar_kind(fd: FieldDescriptor) -> tuple[str, Any] | None:
    t = fd.type
    if t == _FD.TYPE_DOUBLE:
        return "double", None
    if t in _INTEGERS:
        return "int", _INT_RANGES.get(t, (-(2**63), 2**63 - 1))
    if t == _FD.TYPE_STRING:
        return "string", None
    if t == _FD.TYPE_BOOL:
        return "bool", None
    if t == _FD.TYPE_ENUM:
        return "enum", {v.name: v.number for v in fd.enum_type.values}
    return None  # float (json_format checks its range), bytes (base64)


_JSON_ID: Final = re.compile(r'"request_?[iI]d"\s*:\s*"?([1-9][0-9]{0,19})(?![0-9.eE])')
_JSON_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|-?Infinity")
_JSON_INT: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")  # ASCII digits only (str.isdigit takes "٣" too)
_FD = FieldDescriptor
_INTEGERS: Final = frozenset({_FD.TYPE_INT32, _FD.TYPE_INT64, _FD.TYPE_UINT32, _FD.TYPE_UINT64, _FD.TYPE_SINT32,
                              _FD.TYPE_SINT64, _FD.TYPE_FIXED32, _FD.TYPE_FIXED64, _FD.TYPE_SFIXED32,
                              _FD.TYPE_SFIXED64})
_INT_RANGES: Final = {_FD.TYPE_INT32: (-(2**31), 2**31 - 1), _FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
                      _FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1), _FD.TYPE_UINT32: (0, 2**32 - 1),
                      _FD.TYPE_FIXED32: (0, 2**32 - 1), _FD.TYPE_UINT64: (0, 2**64 - 1),
                      _FD.TYPE_FIXED64: (0, 2**64 - 1)}
_FIELDS_BY_JSON: dict[str, dict[str, tuple[FieldDescriptor, str, str | None]]] = {}


def _json_kind(value: object) -> str:
    """A JSON value's kind in JSON's words (never Python's type names)."""
    if isinstance(value, _Bare):
        return f'{value.token}, which is not JSON (send it as a string: "{value.token}")'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _check_json(obj: dict[str, Any], desc: Descriptor, path: str, request_id: int, depth: int) -> None:
    """Walk a JSON object against its message type before ``json_format`` reads it, refusing (BAD_MESSAGE, with the
    field's path) what it would quietly coerce or report in Python's words: ``true`` for a number, an array or a
    string where a message belongs, a number string with spaces, an integer out of range, two members of one
    oneof, an unknown field."""
    if depth > 32:
        raise _bad_message("nested too deeply", field=path, request_id=request_id)
    fields = _FIELDS_BY_JSON.get(desc.full_name)
    if fields is None:
        fields = _FIELDS_BY_JSON[desc.full_name] = {
            **{f.name: _field_kind(f) for f in desc.fields}, **{f.json_name: _field_kind(f) for f in desc.fields}}
    oneof_seen: dict[str, str] = {}  # oneof → its member met so far
    keys: dict[int, str] = {}  # field number → the key that gave it
    for key, value in obj.items():
        entry = fields.get(key)
        if entry is None:
            raise _bad_message(f"{path or 'the Envelope'} has no field {key!r}", field=f"{path}.{key}".lstrip("."),
                               request_id=request_id)
        fd, kind, oneof = entry
        where = f"{path}.{fd.name}" if path else fd.name
        if fd.number in keys:  # its .proto name and its JSON name both
            raise _bad_message(f"{keys[fd.number]!r} and {key!r} are the same field ({fd.name}); give it once",
                               field=where, request_id=request_id)
        keys[fd.number] = key
        if value is None:
            continue
        if oneof is not None:
            if oneof in oneof_seen:
                raise _bad_message(f"{oneof_seen[oneof]!r} and {fd.name!r} are both set; one {oneof} per "
                                   f"{desc.name}, please", field=where, request_id=request_id)
            oneof_seen[oneof] = fd.name
        if kind == "map":
            if not isinstance(value, dict):
                raise _bad_message(f"{where} must be a JSON object (a map), got {_json_kind(value)}", field=where,
                                   request_id=request_id)
            value_fd = cast(Descriptor, fd.message_type).fields_by_name["value"]
            for k, v in value.items():
                if not k.isascii() and _SURROGATE.search(k):
                    raise _bad_message(f"{where} has a key with an unpaired surrogate ({k!r}): keys are text",
                                       field=where, request_id=request_id)
                _check_json_value(v, value_fd, f"{where}[{k!r}]", request_id, depth)
        elif kind == "list":
            if not isinstance(value, list):
                raise _bad_message(f"{where} must be a JSON array, got {_json_kind(value)}", field=where,
                                   request_id=request_id)
            for i, item in enumerate(value):
                _check_json_value(item, fd, f"{where}[{i}]", request_id, depth)
        elif kind == "message":
            if type(value) is not dict:
                _check_json_value(value, fd, where, request_id, depth)
            _check_json(value, cast(Descriptor, fd.message_type), where, request_id, depth + 1)
        elif kind == "string":
            if type(value) is not str or not value.isascii():  # the common case costs two tests
                _check_json_value(value, fd, where, request_id, depth)
        elif kind == "double":
            if type(value) is not float or value - value != 0.0:  # the common case: a finite float
                _check_json_value(value, fd, where, request_id, depth)
        else:
            _check_json_value(value, fd, where, request_id, depth)


def _field_kind(fd: FieldDescriptor) -> tuple[FieldDescriptor, str, str | None]:
    # a oneof of several members (proto3 `optional` makes one-member oneofs: nothing to collide with)
    oneof = fd.containing_oneof.name if fd.containing_oneof is not None and len(fd.containing_oneof.fields) > 1 \
        else None
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        return fd, "map", oneof
    if fd.is_repeated:
        return fd, "list", oneof
    if fd.type == _FD.TYPE_MESSAGE:
        return fd, "message", oneof
    if fd.type == _FD.TYPE_STRING:
        return fd, "string", oneof
    if fd.type in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return fd, "double", oneof
    return fd, "other", oneof


def _check_json_value(value: object, fd: FieldDescriptor, where: str, request_id: int, depth: int) -> None:
    if isinstance(value, _Bare):
        raise _bad_message(f"{where} got {_json_kind(value)}", field=where, request_id=request_id)
    t = fd.type
    if t == _FD.TYPE_MESSAGE:
        message_type = cast(Descriptor, fd.message_type)
        if not isinstance(value, dict):
            raise _bad_message(f"{where} must be a JSON object ({message_type.name}), got {_json_kind(value)}",
                               field=where, request_id=request_id)
        _check_json(value, message_type, where, request_id, depth + 1)
        return
    if t in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        if isinstance(value, float) and not math.isfinite(value):  # 1e400 (bare NaN/Infinity: json.loads' hook)
            raise _bad_message(f"{where} must be a number a double holds (up to about ±1.8e308), got one beyond; "
                               'NaN and ±Infinity go as strings ("NaN", "Infinity")', field=where,
                               request_id=request_id)
        ok = isinstance(value, float) or isinstance(value, int) and not isinstance(value, bool) and \
            -_DOUBLE_INT <= value <= _DOUBLE_INT or isinstance(value, str) and _JSON_NUMBER.fullmatch(value) is not None
        want = "a number (at most about 1.8e308)"
    elif t in _INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool) or \
            isinstance(value, float) and value.is_integer() or \
            isinstance(value, str) and _JSON_INT.fullmatch(value) is not None
        want = "an integer (a number or a decimal string)"
        if ok:
            low, high = _INT_RANGES.get(t, (-(2**63), 2**63 - 1))
            if not low <= int(cast(Any, value)) <= high:
                raise _bad_message(f"{where} must be an integer from {low} to {high}, got {value}", field=where,
                                   request_id=request_id)
    elif t == _FD.TYPE_BOOL:
        ok, want = isinstance(value, bool), "true or false"
    elif t == _FD.TYPE_ENUM:
        enum = cast(EnumDescriptor, fd.enum_type)
        want = f"one of {', '.join(v.name for v in enum.values if v.number)} (or its number)"
        # a name (one with an unpaired surrogate fails inside upb's lookup: tested for first), or a number an enum
        # holds: json_format gives a larger one to upb, which keeps its low 32 bits (4294967298 would be 2)
        is_name = isinstance(value, str) and (value.isascii() or _SURROGATE.search(value) is None) \
            and value in enum.values_by_name
        number: object = value
        if isinstance(value, str) and not is_name and _JSON_INT.fullmatch(value) is not None:
            number = int(value)  # json_format reads a number in a string too
        ok = is_name or isinstance(number, int) and not isinstance(number, bool) and -(2**31) <= number < 2**31
        if isinstance(number, int) and not isinstance(number, bool) and not ok:
            raise _bad_message(f"{where} must be {want}, got {value!r} (an enum number is a 32-bit integer)",
                               field=where, request_id=request_id)
    elif t == _FD.TYPE_STRING:
        ok = isinstance(value, str) and (value.isascii() or _SURROGATE.search(value) is None)
        want = "text (a string, no unpaired surrogate)"
    else:  # bytes (base64)
        ok, want = isinstance(value, str), "a string"
    if not ok:
        shown = f" {value!r}" if isinstance(value, str) and len(value) <= 40 else \
            f" {value[:40]!r}…" if isinstance(value, str) else \
            f" {value!r}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
        raise _bad_message(f"{where} must be {want}, got {_json_kind(value)}{shown}", field=where,
                           request_id=request_id)


def _snake(path: str) -> str:
    """``setParameters.values[0].number`` → ``set_parameters.values[0].number`` (the field paths of Error)."""
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), path)


def envelope_to_json(data: bytes, *, max_bytes: int = SOCKET_MAX_MESSAGE_BYTES) -> str:
    """An Envelope's bytes (a reply, an event, an audio chunk) → one line of protobuf's canonical JSON.

    lowerCamelCase names, every field shown (zeros and empty lists included, so a client never needs
    defaults), enums by name, 64-bit integers as decimal strings, ``bytes`` (``audioChunk.pcm``) as base64.
    Raises :class:`WireError` for bytes that are no Envelope.
    """
    envelope = _parse(data, max_bytes)
    try:
        obj = _json_object(envelope)
    except TypeError:  # a type _json_object leaves to json_format (none in this protocol today)
        obj = json_format.MessageToDict(envelope, always_print_fields_with_no_presence=True)
    return _JSON_OUT.encode(obj)


def _json_object(message: Message) -> dict[str, Any]:
    """``json_format.MessageToDict(message, always_print_fields_with_no_presence=True)``, read from the
    descriptors (:func:`_write_plan`): the fields set, in field-number order as ``ListFields`` gives them, then
    every field without presence that is not set, at its default; 64-bit integers as decimal strings, enums by name
    (an unknown number as the number: proto3 enums are open), non-finite doubles as "NaN"/"Infinity"/"-Infinity",
    bytes as base64, map keys as strings. tests/test_wire.py checks it against json_format on random messages of
    every type in the protocol."""
    plan, defaults = _write_plan(message.DESCRIPTOR)
    js: dict[str, Any] = {}
    for fd, value in message.ListFields():
        name, kind, extra = plan[fd.number]
        if kind == "message":
            js[name] = _json_object(value)
        elif kind == "messages":
            js[name] = [_json_object(v) for v in value]
        elif kind == "map":
            js[name] = {(("true" if k else "false") if type(k) is bool else str(k)): _json_value(value[k], extra)
                        for k in value}
        elif kind == "list":
            js[name] = [_json_value(v, extra) for v in value]
        else:
            js[name] = _json_value(value, extra)
    for name, kind, default in defaults:
        if name not in js:
            js[name] = {} if kind == "map" else [] if kind in ("list", "messages") else default
    return js


def _json_value(value: Any, how: tuple[str, Any]) -> Any:
    kind, detail = how
    if kind == "plain":
        return value
    if kind == "int64":
        return str(value)
    if kind == "double":
        if value - value == 0.0:
            return value
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if kind == "float":
        if value - value == 0.0:
            return type_checkers.ToShortestFloat(value)
        return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"
    if kind == "enum":
        return detail.get(value, value)
    if kind == "bytes":
        return base64.b64encode(value).decode("utf-8")
    return _json_object(value)  # a map's message values


_WRITE_PLANS: dict[str, tuple[dict[int, tuple[str, str, Any]], list[tuple[str, str, Any]]]] = {}


def _write_plan(desc: Descriptor) -> tuple[dict[int, tuple[str, str, Any]], list[tuple[str, str, Any]]]:
    """Per message type: field number → (json name, how it is written, how its values are), and the fields
    without presence with their JSON defaults, in declaration order."""
    found = _WRITE_PLANS.get(desc.full_name)
    if found is not None:
        return found
    if desc.full_name.startswith("google.protobuf.") or desc.is_extendable:
        raise TypeError(f"{desc.full_name}: a well-known or extendable type is json_format's to write")
    plan: dict[int, tuple[str, str, Any]] = {}
    defaults: list[tuple[str, str, Any]] = []
    _WRITE_PLANS[desc.full_name] = plan, defaults  # filled below (a type that holds itself finds it)
    try:
        _fill_write_plan(desc, plan, defaults)
    except TypeError:
        del _WRITE_PLANS[desc.full_name]
        raise
    return plan, defaults


def _fill_write_plan(desc: Descriptor, plan: dict[int, tuple[str, str, Any]],
                     defaults: list[tuple[str, str, Any]]) -> None:
    for fd in desc.fields:
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            kind, how = "map", _value_how(fd.message_type.fields_by_name["value"])
        elif fd.type == _FD.TYPE_MESSAGE:
            _write_plan(fd.message_type)  # fails here, once, for a type this cannot write
            kind, how = ("messages" if fd.is_repeated else "message"), None
        else:
            kind, how = ("list" if fd.is_repeated else "value"), _value_how(fd)
        plan[fd.number] = (fd.json_name, kind, how)
        if not fd.has_presence:
            default = None if kind in ("list", "messages", "map") else _json_value(fd.default_value, how)
            defaults.append((fd.json_name, kind, default))


def _value_how(fd: FieldDescriptor) -> tuple[str, Any]:
    cpp = fd.cpp_type
    if cpp == _FD.CPPTYPE_MESSAGE:
        _write_plan(fd.message_type)
        return "message", None
    if cpp == _FD.CPPTYPE_ENUM:
        if fd.enum_type.is_closed:
            raise TypeError(f"{fd.full_name}: a closed enum is json_format's to write")
        return "enum", {v.number: v.name for v in reversed(fd.enum_type.values)}  # the first name of a number
    if cpp in (_FD.CPPTYPE_INT64, _FD.CPPTYPE_UINT64):
        return "int64", None
    if cpp == _FD.CPPTYPE_DOUBLE:
        return "double", None
    if cpp == _FD.CPPTYPE_FLOAT:
        return "float", None
    if fd.type == _FD.TYPE_BYTES:
        return "bytes", None
    return "plain", None  # int32/uint32, bool, string


# ----------------------------------------------------------------------------- values


def _finite(value: float, field: str, *, minimum: float | None = None) -> None:
    if not math.isfinite(value):
        raise _bad_value(f"must be a finite number, got {value!r}", field)
    if minimum is not None and value < minimum:
        raise _bad_value(f"must be >= {minimum:g}, got {value!r}", field)


def _name(value: str, field: str) -> None:
    if not value:
        raise _bad_value("must not be empty", field)


_ENUM_NUMBERS: dict[tuple[str, str, bool], frozenset[int]] = {}  # (message, field, allow_zero) → valid numbers


def _enum(message: Message, field_name: str, path: str, *, allow_zero: bool) -> None:
    value = getattr(message, field_name)
    key = (message.DESCRIPTOR.full_name, field_name, allow_zero)
    valid = _ENUM_NUMBERS.get(key)
    if valid is None:
        enum = message.DESCRIPTOR.fields_by_name[field_name].enum_type
        if enum is None:
            raise TypeError(f"{message.DESCRIPTOR.name}.{field_name} is not an enum field")
        valid = _ENUM_NUMBERS[key] = frozenset(v.number for v in enum.values if v.number != 0 or allow_zero)
    if value not in valid:
        enum = message.DESCRIPTOR.fields_by_name[field_name].enum_type
        names = [v.name for v in enum.values if v.number != 0 or allow_zero]
        raise _bad_value(f"got {value}, expected one of {', '.join(names)}", path)


def _check_hello(body: pb.Hello) -> None:
    pass  # versions are negotiated by decode_request; a client name is free text


def _check_load_graph(body: pb.LoadGraph) -> None:
    source = body.WhichOneof("source")
    if source is None:
        raise _bad_value("needs the graph: set text or path", "load_graph.source")
    _name(getattr(body, source), f"load_graph.{source}")
    _enum(body, "format", "load_graph.format", allow_zero=True)


def _check_set_parameters(body: pb.SetParameters) -> None:
    for i, update in enumerate(body.values):
        kind = update.WhichOneof("value")
        if not update.name or kind is None or (kind == "number" and not math.isfinite(update.number)):
            where = f"set_parameters.values[{i}]"  # the path only for the error: this runs for every request
            _name(update.name, f"{where}.name")
            if kind is None:
                raise _bad_value(f"parameter {update.name!r} has no value: set number or label", f"{where}.value")
            _finite(update.number, f"{where}.number")
    if body.HasField("ramp_seconds"):
        _finite(body.ramp_seconds, "set_parameters.ramp_seconds", minimum=0.0)
    if body.ramp_shape not in RAMP_SHAPE_NAMES:  # (every shape has a name there: test_wire checks)
        _enum(body, "ramp_shape", "set_parameters.ramp_shape", allow_zero=True)
    if body.HasField("client_time"):
        _finite(body.client_time, "set_parameters.client_time")


def _check_named(kind: str) -> Callable[[pb.Trigger | pb.SetState], None]:
    def check(body: pb.Trigger | pb.SetState) -> None:
        _name(body.name, f"{kind}.name")

    return check


def _check_set_prompts(body: pb.SetPrompts) -> None:
    for i, prompt in enumerate(body.prompts):
        where = f"set_prompts.prompts[{i}]"
        source = prompt.WhichOneof("source")
        if source is None:
            raise _bad_value("needs a prompt: set text or audio_path", f"{where}.source")
        _name(getattr(prompt, source), f"{where}.{source}")
        if prompt.HasField("weight"):
            _finite(prompt.weight, f"{where}.weight", minimum=0.0)


def _check_set_controls(body: pb.SetControls) -> None:
    controls = body.controls
    for name in _FLOAT_CONTROLS:
        if controls.HasField(name):
            _finite(getattr(controls, name), f"set_controls.controls.{name}")
    midi = controls.notes.midi
    if len(midi) <= 128:  # each of the 128 MIDI notes at most once (a longer list is the runtime's TOO many notes)
        first: dict[int, int] = {}
        for i, note in enumerate(midi):
            if note in first:
                raise _bad_value(f"MIDI note {note} is given twice (notes.midi[{first[note]}] and [{i}]); give each "
                                 "note at most once", f"set_controls.controls.notes.midi[{i}]")
            first[note] = i
    for i, name in enumerate(body.clear):
        _name(name, f"set_controls.clear[{i}]")  # an empty name is BAD_VALUE, as everywhere
        if name not in CONTROL_NAMES:
            raise WireError(pb.Error.UNKNOWN_NAME, f"unknown control {name!r}; controls are {', '.join(CONTROL_NAMES)}",
                            field=f"set_controls.clear[{i}]")
        if controls.HasField(name):
            raise _bad_value(f"control {name!r} is both set and cleared", f"set_controls.clear[{i}]")


def _check_transport(body: pb.Transport) -> None:
    _enum(body, "action", "transport.action", allow_zero=False)


def _check_nothing(body: pb.GetStatus | pb.DescribeGraph) -> None:
    pass


def _check_subscribe(body: pb.Subscribe) -> None:
    known = {t.value for t in Topic}
    for i, topic in enumerate(body.topics):
        if topic not in known:
            raise WireError(pb.Error.UNKNOWN_NAME,
                            f"unknown event topic {topic!r}; topics are {', '.join(t.value for t in Topic)}",
                            field=f"subscribe.topics[{i}]")
    _enum(body, "audio", "subscribe.audio", allow_zero=True)


_VALIDATORS: Final[Mapping[RequestKind, Callable[[Any], None]]] = {
    RequestKind.HELLO: _check_hello,
    RequestKind.LOAD_GRAPH: _check_load_graph,
    RequestKind.SET_PARAMETERS: _check_set_parameters,
    RequestKind.TRIGGER: _check_named("trigger"),
    RequestKind.SET_STATE: _check_named("set_state"),
    RequestKind.SET_PROMPTS: _check_set_prompts,
    RequestKind.SET_CONTROLS: _check_set_controls,
    RequestKind.TRANSPORT: _check_transport,
    RequestKind.GET_STATUS: _check_nothing,
    RequestKind.DESCRIBE_GRAPH: _check_nothing,
    RequestKind.SUBSCRIBE: _check_subscribe,
}


def validate_request(kind: str, body: Message) -> None:
    """Refuse what no runtime can act on: raises :class:`WireError` with the field path.

    Wire-level checks only: numbers are finite (ramps and weights also >= 0),
    names are not empty, every ``oneof`` that needs a value has one, enums hold
    a known value, cleared controls exist. Ranges that depend on the backend
    or the graph (bpm limits, known parameter names) are the runtime's.
    """
    name = _REQUEST_KIND_BY_NAME.get(kind) if isinstance(kind, str) else None
    if name is None:
        raise ValueError(f"unknown request kind {kind!r}; kinds are {', '.join(RequestKind)}")
    if type(body) is not REQUEST_TYPES[name]:
        raise TypeError(f"a {name.value!r} request is {REQUEST_TYPES[name].__name__}, got {type(body).__name__}")
    _VALIDATORS[name](body)


def parameter_value(message: pb.ParameterUpdate | pb.ParameterValue) -> float | str | None:
    """The number or label a parameter message holds (``None`` when it holds neither)."""
    kind = message.WhichOneof("value")
    if kind is None:
        return None
    value: float | str = getattr(message, kind)
    return value


def controls_to_dict(controls: pb.Controls) -> dict[str, Any]:
    """The controls that are set, as plain values (``notes`` as a tuple of ints)."""
    out: dict[str, Any] = {}
    for name in CONTROL_NAMES:
        if controls.HasField(name):
            value = getattr(controls, name)
            out[name] = tuple(value.midi) if name == "notes" else value
    return out


def controls_from_mapping(values: Mapping[str, Any]) -> pb.Controls:
    """A ``Controls`` message with the given controls set (``None`` values are left unset).

    Raises ``ValueError`` naming the valid controls for an unknown name.
    """
    unknown = sorted(set(values) - set(CONTROL_NAMES))
    if unknown:
        raise ValueError(f"unknown controls {unknown}; controls are {', '.join(CONTROL_NAMES)}")
    controls = pb.Controls()
    for name, value in values.items():
        if value is None:
            continue
        if name == "notes":
            controls.notes.SetInParent()
            controls.notes.midi.extend(int(n) for n in value)
        else:
            setattr(controls, name, value)
    return controls
