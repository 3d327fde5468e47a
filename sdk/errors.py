"""The client SDK's exceptions: typed server errors, timeouts, lifecycle and transport errors.

Imports nothing from the SDK (only the shared :mod:`cadenza.errors` and the
generated protobuf module), so every other SDK module can raise these.

::

    CadenzaError
    ├── UsageError
    │   └── ClientStateError       a closed client used, a client opened twice
    ├── RequestTimeout             (also a builtin TimeoutError) no reply within ``timeout``
    └── ProtocolError
        ├── TransportError         ZeroMQ failed (bad endpoint, CURVE keys, socket error)
        └── ServerError            an Error reply: .code ("UNKNOWN_NAME"), .field, .message
            ├── BadMessage, UnsupportedVersion, UnknownName, BadValue,
            ├── GraphInvalid (also a GraphError), TooLarge, RateLimited,
            └── InternalServerError, NotReady, PermissionDenied, ServerTimeout

A :class:`ServerError` is what the runtime answered, or — with ``remote`` False
— the same error raised by the client before sending a request the runtime
would refuse (a NaN, an empty name): game code catches :class:`BadValue`
either way.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from cadenza.errors import CadenzaError, GraphError, ProtocolError, UsageError
from cadenza.proto import cadenza_v1_pb2 as pb

__all__ = [
    "BadMessage",
    "BadValue",
    "ClientStateError",
    "GraphInvalid",
    "InternalServerError",
    "NotReady",
    "PermissionDenied",
    "ServerTimeout",
    "RateLimited",
    "RequestTimeout",
    "ServerError",
    "TooLarge",
    "TransportError",
    "UnknownName",
    "UnsupportedVersion",
    "server_error",
]


class ClientStateError(UsageError):
    """A client used in the wrong lifecycle state (closed, or opened twice)."""


class RequestTimeout(CadenzaError, TimeoutError):
    """No reply within the client's ``timeout`` (the runtime is not running, or stuck).

    Also a builtin :class:`TimeoutError`. ``request`` is the request name
    (``"set_parameters"``), ``timeout`` the seconds waited, ``endpoint`` the
    control endpoint.
    """

    def __init__(self, message: str, *, request: str = "", timeout: float = 0.0, endpoint: str = "") -> None:
        super().__init__(message)
        self.request = request
        self.timeout = timeout
        self.endpoint = endpoint


class TransportError(ProtocolError):
    """ZeroMQ refused an operation (a malformed endpoint, bad CURVE keys, a socket failure)."""


class ServerError(ProtocolError):
    """An ``Error`` reply from the runtime (or the same refusal raised before sending).

    ``code`` is the ``Error.Code`` name (``"UNKNOWN_NAME"``), ``code_number``
    its number, ``field`` the path of the bad field
    (``set_parameters.values[0].name``; for a graph, ``"line path"`` of its
    first issue), ``message`` the runtime's text (the bad value and the valid
    choices), ``request_id`` the request it answers, ``supported_versions``
    the runtime's versions (with ``UNSUPPORTED_VERSION``), ``remote`` False
    when the client refused the request itself without sending it.
    """

    code_name: str = ""

    def __init__(self, code: str, message: str, *, field: str = "", request_id: int = 0,
                 supported_versions: Iterable[int] = (), remote: bool = True, code_number: int = 0) -> None:
        super().__init__(message, where=field or None)
        self.code = code
        self.code_number = code_number
        self.field = field
        self.request_id = request_id
        self.supported_versions = tuple(supported_versions)
        self.remote = remote


class BadMessage(ServerError):
    """``BAD_MESSAGE``: the runtime could not read the request (a protocol bug or a newer client)."""

    code_name = "BAD_MESSAGE"


class UnsupportedVersion(ServerError):
    """``UNSUPPORTED_VERSION``: no protocol version in common (see ``supported_versions``)."""

    code_name = "UNSUPPORTED_VERSION"


class UnknownName(ServerError):
    """``UNKNOWN_NAME``: no such parameter, trigger, state or control (the message lists the valid ones)."""

    code_name = "UNKNOWN_NAME"


class BadValue(ServerError):
    """``BAD_VALUE``: a value out of range, not finite, or of the wrong kind."""

    code_name = "BAD_VALUE"


class GraphInvalid(ServerError, GraphError):
    """``GRAPH_INVALID``: the graph did not load; ``issues`` holds one ``"file:line path: message"`` each.

    Also a :class:`~cadenza.errors.GraphError`. The message already names
    every location, so it is not prefixed with ``field``.
    """

    code_name = "GRAPH_INVALID"

    def __init__(self, code: str, message: str, *, field: str = "", request_id: int = 0,
                 supported_versions: Iterable[int] = (), remote: bool = True, code_number: int = 0) -> None:
        super().__init__(code, message, field=field, request_id=request_id, supported_versions=supported_versions,
                         remote=remote, code_number=code_number)
        # the locations are in the message: do not prefix it with the first one again
        self.where = None
        self.args = (message,)

    def __str__(self) -> str:
        return self.message

    @property
    def issues(self) -> list[str]:
        """The graph's issues, one line each."""
        return [line for line in self.message.splitlines() if line.strip()]


class TooLarge(ServerError):
    """``TOO_LARGE``: the request is over the runtime's message size limit."""

    code_name = "TOO_LARGE"


class RateLimited(ServerError):
    """``RATE_LIMITED``: more requests per second than the runtime takes from one client."""

    code_name = "RATE_LIMITED"


class InternalServerError(ServerError):
    """``INTERNAL``: the runtime failed on a request (a bug there; the music keeps playing)."""

    code_name = "INTERNAL"


class NotReady(ServerError):
    """``NOT_READY``: the runtime cannot do that yet (no graph loaded, backend still loading)."""

    code_name = "NOT_READY"


class PermissionDenied(ServerError):
    """``PERMISSION_DENIED``: this client may not do that (a read-only client, a file outside the allowed folders)."""

    code_name = "PERMISSION_DENIED"


class ServerTimeout(ServerError):
    """``TIMEOUT``: the work took longer than its bound (embedding a prompt); nothing was applied."""

    code_name = "TIMEOUT"


_BY_CODE: Final[dict[str, type[ServerError]]] = {
    cls.code_name: cls
    for cls in (BadMessage, UnsupportedVersion, UnknownName, BadValue, GraphInvalid, TooLarge, RateLimited,
                InternalServerError, NotReady, PermissionDenied, ServerTimeout)
}


def server_error(code: int, message: str, *, field: str = "", request_id: int = 0,
                 supported_versions: Iterable[int] = (), remote: bool = True) -> ServerError:
    """The typed exception for an ``Error.Code`` number (a plain :class:`ServerError` for an unknown code)."""
    try:
        name = pb.Error.Code.Name(code)
    except ValueError:
        name = f"CODE_{code}"  # from a newer runtime
    cls = _BY_CODE.get(name, ServerError)
    return cls(name, message, field=field, request_id=request_id, supported_versions=supported_versions,
               remote=remote, code_number=code)
