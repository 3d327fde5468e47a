"""The Cadenza client SDK.

Imports only zmq, protobuf, numpy and PyYAML (never numba, jax or
sounddevice, nor any part of ``cadenza.runtime``), so a game pays for nothing
it does not use.

* :class:`Client` (blocking) and :class:`AsyncClient` (asyncio) talk to a
  running ``cadenza serve``: load a graph, set parameters, fire triggers, get
  beat/state events, survive a runtime restart (:mod:`cadenza.sdk.client`,
  :mod:`cadenza.sdk.aio`, shared logic in :mod:`cadenza.sdk._base`);
* :class:`AudioStream` / :class:`AsyncAudioStream` receive the runtime's PCM;
* the errors (:mod:`cadenza.sdk.errors`): every ``Error`` reply is a typed
  :class:`ServerError` with ``code``, ``field`` and ``message``;
* :mod:`cadenza.sdk.graph`, the authoring API that builds style graphs in code
  and exports them as YAML or JSON.
"""

from cadenza.errors import CadenzaError, GraphError, ProtocolError, UsageError
from cadenza.sdk._base import (
    Ack,
    BeatEvent,
    ClientState,
    Event,
    GraphInfo,
    MixEvent,
    ParameterInfo,
    PromptInfo,
    ServerInfo,
    StateEvent,
    Status,
    StatusEvent,
    StingerEvent,
    TriggerInfo,
    WarningEvent,
    XrunEvent,
    curve_keypair,
)
from cadenza.sdk.aio import AsyncAudioStream, AsyncClient, AsyncEventStream
from cadenza.sdk.client import AudioStream, Client, EventStream
from cadenza.sdk.errors import (
    BadMessage,
    BadValue,
    ClientStateError,
    GraphInvalid,
    InternalServerError,
    NotReady,
    PermissionDenied,
    RateLimited,
    RequestTimeout,
    ServerError,
    ServerTimeout,
    TooLarge,
    TransportError,
    UnknownName,
    UnsupportedVersion,
)
from cadenza.sdk.graph import (
    INTENSITY,
    Condition,
    Expr,
    GraphBuilder,
    NodeRef,
    Param,
    PromptRef,
    StateRef,
    StingerRef,
    TriggerRef,
    add,
    blend,
    clamp,
    curve,
    invert,
    maximum,
    minimum,
    multiply,
    pad,
    weight,
    when,
)

__all__ = [
    # clients
    "Client",
    "AsyncClient",
    "ClientState",
    "AudioStream",
    "AsyncAudioStream",
    "EventStream",
    "AsyncEventStream",
    "curve_keypair",
    # replies and events
    "Ack",
    "Status",
    "ServerInfo",
    "GraphInfo",
    "ParameterInfo",
    "PromptInfo",
    "TriggerInfo",
    "Event",
    "BeatEvent",
    "StateEvent",
    "MixEvent",
    "StingerEvent",
    "XrunEvent",
    "WarningEvent",
    "StatusEvent",
    # errors
    "CadenzaError",
    "GraphError",
    "ProtocolError",
    "UsageError",
    "ClientStateError",
    "RequestTimeout",
    "TransportError",
    "ServerError",
    "BadMessage",
    "UnsupportedVersion",
    "UnknownName",
    "BadValue",
    "GraphInvalid",
    "TooLarge",
    "RateLimited",
    "InternalServerError",
    "NotReady",
    "PermissionDenied",
    "ServerTimeout",
    # style-graph authoring
    "GraphBuilder",
    "INTENSITY",
    "Expr",
    "Param",
    "Condition",
    "NodeRef",
    "PromptRef",
    "StateRef",
    "StingerRef",
    "TriggerRef",
    "add",
    "multiply",
    "minimum",
    "maximum",
    "invert",
    "clamp",
    "curve",
    "when",
    "weight",
    "blend",
    "pad",
]
