"""The Cadenza wire contract (protobuf package ``cadenza.v1``).

``cadenza_v1.proto`` defines the messages; ``cadenza_v1_pb2`` is the code
generated from it (``python proto/generate.py``), re-exported here as ``pb``;
:mod:`cadenza.proto.wire` is the one module that turns messages into bytes and
back. Build messages with ``pb``; send and receive them through ``wire``.
"""

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto.wire import (
    DEFAULT_SAMPLE_RATE,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    REPLY_TYPES,
    REQUEST_TYPES,
    SOCKET_MAX_MESSAGE_BYTES,
    SUPPORTED_VERSIONS,
    TOPIC_TYPES,
    DecodedAudio,
    DecodedEvent,
    DecodedReply,
    DecodedRequest,
    ReplyKind,
    RequestKind,
    Topic,
    WireError,
    decode_audio,
    decode_event,
    decode_reply,
    decode_request,
    encode_audio,
    encode_event,
    encode_reply,
    encode_request,
)

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "REPLY_TYPES",
    "REQUEST_TYPES",
    "SOCKET_MAX_MESSAGE_BYTES",
    "SUPPORTED_VERSIONS",
    "TOPIC_TYPES",
    "DecodedAudio",
    "DecodedEvent",
    "DecodedReply",
    "DecodedRequest",
    "ReplyKind",
    "RequestKind",
    "Topic",
    "WireError",
    "decode_audio",
    "decode_event",
    "decode_reply",
    "decode_request",
    "encode_audio",
    "encode_event",
    "encode_reply",
    "encode_request",
    "pb",
]
