"""The Cadenza client SDK.

Imports only zmq, protobuf and numpy (never numba, jax or sounddevice), so a
game pays for nothing it does not use. The live client arrives with the wire
protocol; today the SDK exposes the shared error types.
"""

from cadenza.errors import CadenzaError, ProtocolError

__all__ = ["CadenzaError", "ProtocolError"]
