"""The Cadenza client SDK.

Imports only zmq, protobuf, numpy and PyYAML (never numba, jax or
sounddevice, nor any part of ``cadenza.runtime``), so a game pays for nothing
it does not use. The live client arrives with the wire protocol; today the SDK
exposes the shared error types and :mod:`cadenza.sdk.graph`, the authoring API
that builds style graphs in code and exports them as YAML or JSON.
"""

from cadenza.errors import CadenzaError, GraphError, ProtocolError, UsageError
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
    "CadenzaError",
    "GraphError",
    "ProtocolError",
    "UsageError",
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
