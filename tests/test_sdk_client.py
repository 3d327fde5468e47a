"""The client SDK: Client and AsyncClient over real ZeroMQ sockets, then against a real ``cadenza serve``.

Part one needs no runtime. The peers here are real sockets on loopback:

* a ROUTER thread (:class:`Peer`) that answers with whatever a test scripts —
  a reply, an error, a stale reply first, nothing at all — and records every
  request it decoded. It tests the client's side of the protocol (request ids,
  reply matching, error translation, timeouts, the re-sync a new
  ``session_id`` or a ``NOT_READY`` sets off); it is not a stand-in for the
  runtime's behaviour, which part two tests against the real process;
* a PUB socket publishing events and audio chunks built by the wire module.

Part two starts ``python -m cadenza serve --sink null`` as a subprocess on
free ports and drives it with both clients: graph loading, parameters,
triggers, states, typed errors with codes and fields, status, beat events,
audio chunks, and a runtime restart the client recovers from on its own.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

import cadenza.sdk
from cadenza.errors import CadenzaError, GraphError, ProtocolError, UsageError
from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.proto.wire import RequestKind
from cadenza.sdk import (
    AsyncAudioStream,
    AsyncClient,
    AudioStream,
    BadValue,
    BeatEvent,
    Client,
    ClientState,
    ClientStateError,
    GraphBuilder,
    GraphInvalid,
    NotReady,
    RateLimited,
    RequestTimeout,
    ServerError,
    StateEvent,
    Status,
    UnknownName,
)
from cadenza.sdk._base import SequenceTracker, graph_request

REPO = Path(__file__).resolve().parents[1]
ACTION_GRAPH = REPO / "examples" / "action_game" / "graph.yaml"
GRAPH_TEXT = "cadenza_graph: 1\nname: tiny\nparameters: {danger: {type: continuous}}\n"
FAST = 0.3  # seconds: the timeout of clients that are meant to time out

Handler = Callable[["Peer", wire.DecodedRequest], list[bytes]]


# ============================================================================= part one: real sockets, no runtime


def status_reply(request_id: int, session: str, **fields: Any) -> bytes:
    info = pb.ServerInfo(protocol_version=1, supported_versions=[1], backend="test-peer", sample_rate=48_000,
                         channels=2, session_id=session)
    return wire.encode_reply(request_id, pb.Status(server=info, **fields))


def ok(request_id: int, **fields: Any) -> bytes:
    return wire.encode_reply(request_id, pb.Ok(**fields))


def error(request_id: int, code: int, message: str, field: str = "") -> bytes:
    return wire.encode_reply(request_id, pb.Error(code=code, message=message, field=field))  # type: ignore[arg-type]


def answer_everything(peer: Peer, req: wire.DecodedRequest) -> list[bytes]:
    """Hello → Status with the peer's session; every other request → Ok."""
    if req.kind is RequestKind.HELLO:
        return [status_reply(req.request_id, peer.session)]
    if req.kind is RequestKind.GET_STATUS:
        return [wire.encode_reply(req.request_id, pb.Status(graph_loaded=peer.loaded))]
    if req.kind in (RequestKind.LOAD_GRAPH, RequestKind.SET_PROMPTS):
        peer.loaded = True
    return [ok(req.request_id, stream_time=4800)]


def fresh_process(peer: Peer, req: wire.DecodedRequest) -> list[bytes]:
    """Like :func:`answer_everything`, but NOT_READY to graph requests before LoadGraph or SetPrompts."""
    needs_graph = (RequestKind.SET_PARAMETERS, RequestKind.TRIGGER, RequestKind.SET_STATE, RequestKind.SET_CONTROLS)
    if req.kind in needs_graph and not peer.loaded:
        return [error(req.request_id, pb.Error.NOT_READY, "no graph loaded")]
    return answer_everything(peer, req)


class Peer:
    """A ROUTER on loopback in a thread: decodes each request, records it, sends what ``handler`` returns."""

    def __init__(self, handler: Handler = answer_everything, *, port: int | None = None, session: str = "session-A",
                 curve_secret: bytes | None = None) -> None:
        self.handler = handler
        self.session = session
        self.loaded = False
        self.requests: list[wire.DecodedRequest] = []
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.sock: zmq.Socket[bytes] = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve_secret is not None:
            self.sock.setsockopt(zmq.CURVE_SERVER, 1)
            self.sock.setsockopt(zmq.CURVE_SECRETKEY, curve_secret)
        if port is None:
            self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        else:
            self.port = port
            self._bind_again(port)
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _bind_again(self, port: int) -> None:
        deadline = time.monotonic() + 5
        while True:
            try:
                self.sock.bind(f"tcp://127.0.0.1:{port}")
                return
            except zmq.ZMQError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.sock.poll(20):
                    continue
                ident, data = self.sock.recv_multipart()
                req = wire.decode_request(data)
                self.requests.append(req)
                for frame in self.handler(self, req):
                    self.sock.send_multipart([ident, frame])
        finally:
            self.sock.close(0)

    def kinds(self) -> list[str]:
        return [r.kind.value for r in self.requests]

    def wait_for(self, kind: RequestKind, count: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while sum(r.kind is kind for r in self.requests) < count:
            assert time.monotonic() < deadline, f"the peer got {self.kinds()}, not {count} x {kind.value}"
            time.sleep(0.02)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.ctx.term()


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    yield p
    p.close()


def client_for(peer: Peer, **kwargs: Any) -> Client:
    kwargs.setdefault("heartbeat", 0)
    kwargs.setdefault("timeout", 2.0)
    return Client(peer.endpoint, **kwargs)


def async_client_for(peer: Peer, **kwargs: Any) -> AsyncClient:
    kwargs.setdefault("heartbeat", 0)
    kwargs.setdefault("timeout", 2.0)
    return AsyncClient(peer.endpoint, **kwargs)


# ----------------------------------------------------------------------------- package surface


def test_sdk_exports() -> None:
    expected = {"Client", "AsyncClient", "ClientState", "AudioStream", "AsyncAudioStream", "Status", "ServerInfo",
                "Ack", "Event", "BeatEvent", "StateEvent", "ServerError", "UnknownName", "BadValue", "GraphInvalid",
                "NotReady", "RateLimited", "RequestTimeout", "ClientStateError", "GraphBuilder", "CadenzaError"}
    assert expected <= set(cadenza.sdk.__all__)
    assert len(cadenza.sdk.__all__) == len(set(cadenza.sdk.__all__))
    for name in cadenza.sdk.__all__:
        assert hasattr(cadenza.sdk, name), name
    for module in (cadenza.sdk.client, cadenza.sdk.aio, cadenza.sdk.errors, cadenza.sdk._base):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_async_client_mirrors_every_request_method() -> None:
    sync_methods = {n for n, f in inspect.getmembers(Client, inspect.isfunction) if not n.startswith("_")}
    async_methods = {n for n, f in inspect.getmembers(AsyncClient, inspect.isfunction) if not n.startswith("_")}
    assert sync_methods - {"close"} <= async_methods
    assert "aclose" in async_methods
    not_io = {"open", "on", "off", "events"} | {n for n in sync_methods if n.startswith("on_")}
    for name in sync_methods - not_io - {"close"}:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
        sync_params = list(inspect.signature(getattr(Client, name)).parameters)
        assert list(inspect.signature(getattr(AsyncClient, name)).parameters) == sync_params, name


def test_error_types() -> None:
    assert issubclass(ServerError, ProtocolError) and issubclass(RequestTimeout, CadenzaError)
    assert issubclass(RequestTimeout, TimeoutError)
    assert issubclass(GraphInvalid, GraphError) and issubclass(ClientStateError, UsageError)
    for cls in (UnknownName, BadValue, GraphInvalid, NotReady, RateLimited):
        assert issubclass(cls, ServerError)
        assert cls.code_name in pb.Error.Code.keys()


# ----------------------------------------------------------------------------- lifecycle


def test_lifecycle_states_and_exact_errors(peer: Peer) -> None:
    client = client_for(peer)
    assert client.state is ClientState.UNOPENED
    with client:
        assert client.state is ClientState.OPEN
        with pytest.raises(ClientStateError, match="^Cannot open a client more than once$"):
            client.open()
    assert client.state is ClientState.CLOSED
    with pytest.raises(ClientStateError, match="^Cannot use a client once it has been closed$"):
        client.status()
    with pytest.raises(ClientStateError, match="^Cannot use a client once it has been closed$"):
        client.on_beat(lambda ev: None)
    with pytest.raises(ClientStateError, match="^Cannot reopen a client once it has been closed$"):
        client.open()
    client.close()  # twice is fine
    assert peer.requests == []  # opening and closing sends nothing


def test_first_use_opens_and_says_hello(peer: Peer) -> None:
    with client_for(peer, name="racing") as client:
        assert client.server is None
        client.set(danger=0.5)
        assert client.state is ClientState.OPEN
        assert client.server is not None and client.server.session_id == "session-A"
        assert client.server.backend == "test-peer" and client.sample_rate == 48_000
    assert peer.kinds() == ["hello", "set_parameters"]
    hello = peer.requests[0].body
    assert isinstance(hello, pb.Hello)
    assert hello.client_name == "racing" and list(hello.supported_versions) == list(wire.SUPPORTED_VERSIONS)
    lazy = client_for(peer)
    lazy.status()  # no `with`, no open(): opened on first use
    assert lazy.state is ClientState.OPEN
    lazy.close()


def test_constructor_checks_its_arguments() -> None:
    with pytest.raises(UsageError, match="timeout"):
        Client(timeout=0)
    with pytest.raises(UsageError, match="timeout"):
        Client(timeout=math.nan)
    with pytest.raises(UsageError, match="heartbeat"):
        Client(heartbeat=-1)
    with pytest.raises(UsageError, match="control: endpoint 'localhost:5555' must start with tcp://"):
        Client("localhost:5555")
    with pytest.raises(UsageError, match="server_public_key: a CurveZMQ key is 40 z85 characters"):
        Client(server_public_key="short")
    with pytest.raises(UsageError, match="server's public key"):
        Client(client_secret_key="x" * 40)
    public, _ = cadenza.sdk.curve_keypair()
    with pytest.raises(UsageError, match="client_public_key"):
        Client(server_public_key=public, client_secret_key=public)


# ----------------------------------------------------------------------------- requests


def test_bad_values_are_refused_before_sending(peer: Peer) -> None:
    with client_for(peer) as client:
        with pytest.raises(BadValue) as caught:
            client.set(danger=math.nan)
        err = caught.value
        assert (err.code, err.field, err.remote) == ("BAD_VALUE", "set_parameters.values[0].number", False)
        assert "finite" in err.message and str(err).startswith("set_parameters.values[0].number: ")
        with pytest.raises(BadValue, match="set_parameters.ramp_seconds"):
            client.set_many({"danger": 1.0}, ramp=-1)
        with pytest.raises(BadValue, match=r"set_parameters.values\[1\]"):
            client.set_many({"danger": 1.0, "mode": [1, 2]})  # type: ignore[dict-item]
        with pytest.raises(UsageError, match="shape: unknown ramp shape 'wobble'; shapes are linear, s-curve"):
            client.set_many({"danger": 1.0}, ramp=1, shape="wobble")
        with pytest.raises(BadValue, match="trigger.name"):
            client.trigger("")
        with pytest.raises(BadValue, match="set_state.name"):
            client.set_state("")
        with pytest.raises(UnknownName, match="set_controls.controls.tempo: unknown control 'tempo'; controls are bpm"):
            client.set_controls(tempo=120)
        with pytest.raises(BadValue, match="set_controls.controls.bpm"):
            client.set_controls(bpm=math.inf)
        with pytest.raises(BadValue, match="set_controls.controls.bpm"):
            client.set_controls(bpm="fast")
        with pytest.raises(BadValue, match=r"set_prompts.prompts\[0\].weight"):
            client.set_prompts({"rain": -1.0})
        with pytest.raises(UsageError, match="no such graph file"):
            client.load_graph("missing/graph.yaml")
    assert peer.requests == []  # not even a Hello


def test_requests_carry_what_the_methods_say(peer: Peer) -> None:
    g = GraphBuilder("built")
    danger = g.continuous("danger")
    calm = g.prompt("calm", "calm pads")
    g.weight(calm, 1)
    with client_for(peer) as client:
        ack = client.set_many({danger: 0.25, "mode": "combat", "armed": True}, ramp=2.0, shape="s-curve")
        assert ack.stream_time == 4800 and ack.seconds == pytest.approx(0.1) and ack.warnings == ()
        client.set(danger=1)
        client.trigger("boss_defeated")
        client.set_state("combat")
        client.set_prompts({"dark techno": 1.0, "rain": 0.5})
        client.set_prompts([("drums", 2), "bass", Path("kick.wav")])
        client.set_controls(bpm=120, scale="A minor", notes=[60, 64], density=None)
        client.clear_controls("bpm")
        client.clear_controls()
        client.play()
        client.pause()
        client.stop()
        client.reset_context()
        client.load_graph(g)
        client.load_graph(GRAPH_TEXT)
        client.load_graph(ACTION_GRAPH)
        client.load_graph(str(ACTION_GRAPH))
    bodies = [r.body for r in peer.requests]
    assert [r.request_id for r in peer.requests] == list(range(1, len(bodies) + 1))
    sp = bodies[1]
    assert isinstance(sp, pb.SetParameters)
    assert [(v.name, wire.parameter_value(v)) for v in sp.values] == [("danger", 0.25), ("mode", "combat"),
                                                                       ("armed", 1.0)]
    assert sp.ramp_seconds == 2.0 and sp.ramp_shape == pb.SetParameters.S_CURVE and not sp.bypass
    assert not bodies[2].HasField("ramp_seconds")  # type: ignore[union-attr]
    assert bodies[3] == pb.Trigger(name="boss_defeated") and bodies[4] == pb.SetState(name="combat")
    prompts = bodies[6]
    assert isinstance(prompts, pb.SetPrompts)
    assert [(p.WhichOneof("source"), p.HasField("weight")) for p in prompts.prompts] == [
        ("text", True), ("text", False), ("audio_path", False)]
    controls = bodies[7]
    assert isinstance(controls, pb.SetControls)
    assert wire.controls_to_dict(controls.controls) == {"bpm": 120.0, "scale": "A minor", "notes": (60, 64)}
    assert list(controls.clear) == ["density"]
    assert list(bodies[8].clear) == ["bpm"]  # type: ignore[union-attr]
    assert list(bodies[9].clear) == list(wire.CONTROL_NAMES)  # type: ignore[union-attr]
    assert [b.action for b in bodies[10:14]] == [pb.Transport.PLAY, pb.Transport.PAUSE,  # type: ignore[union-attr]
                                                  pb.Transport.STOP, pb.Transport.RESET_CONTEXT]
    built, text, from_path, from_str = bodies[14:18]
    assert isinstance(built, pb.LoadGraph) and built.text == g.to_yaml()
    assert isinstance(text, pb.LoadGraph) and text.text == GRAPH_TEXT
    assert isinstance(from_path, pb.LoadGraph) and from_path.text == ACTION_GRAPH.read_text()  # read client-side
    assert from_path.WhichOneof("source") == "text" and from_str == from_path


def test_graph_sources() -> None:
    body, path = graph_request(ACTION_GRAPH)
    assert path == str(ACTION_GRAPH) and body.format == pb.LoadGraph.YAML
    body, path = graph_request("{cadenza_graph: 1}")
    assert path is None and body.text == "{cadenza_graph: 1}"
    with pytest.raises(UsageError, match="expected a graph file path"):
        graph_request(42)


def test_status_view(peer: Peer) -> None:
    def handler(p: Peer, req: wire.DecodedRequest) -> list[bytes]:
        if req.kind is RequestKind.GET_STATUS:
            st = pb.Status(graph_loaded=True, graph_name="action-game", state="combat", weights={"battle": 0.8},
                           stream_time=96_000, playing=True, xruns=2, lookahead_ms=30.0,
                           event_sequences={"beat": 12, "bar": 3}, audio_sequence=200,
                           controls=wire.controls_from_mapping({"bpm": 172.0, "notes": [60]}),
                           events_dropped=7, replies_dropped=3, sink_faults={"wav:a.wav": "No space left on device"})
            st.parameters["danger"].number = 0.5
            st.parameters["mode"].label = "combat"
            return [wire.encode_reply(req.request_id, st)]
        return answer_everything(p, req)

    peer.handler = handler
    with client_for(peer) as client:
        status = client.status()
    assert isinstance(status, Status)
    assert status.graph_loaded and status.graph_name == "action-game" and status.state == "combat"
    assert status.parameters == {"danger": 0.5, "mode": "combat"}
    assert status.weights == {"battle": 0.8} and status.controls == {"bpm": 172.0, "notes": (60,)}
    assert status.stream_time == 96_000 and status.seconds == 2.0 and status.playing and status.xruns == 2
    assert status.event_sequences == {"bar": 3, "beat": 12} and status.audio_sequence == 200
    assert status.server is None and status.lookahead_ms == 30.0
    assert status.events_dropped == 7 and status.replies_dropped == 3
    assert status.sink_faults == {"wav:a.wav": "No space left on device"}


# ----------------------------------------------------------------------------- replies


def test_server_errors_are_typed_with_code_and_field(peer: Peer) -> None:
    def handler(p: Peer, req: wire.DecodedRequest) -> list[bytes]:
        if req.kind is RequestKind.SET_PARAMETERS:
            return [error(req.request_id, pb.Error.UNKNOWN_NAME, "unknown parameter 'dangr'; parameters: danger",
                          "set_parameters.values[0].name")]
        if req.kind is RequestKind.LOAD_GRAPH:
            return [error(req.request_id, pb.Error.GRAPH_INVALID,
                          "<load_graph>:3 parameters.danger.min: must be a number\n<load_graph>:9 mix[0]: bad",
                          "3 parameters.danger.min")]
        if req.kind is RequestKind.TRIGGER:
            return [error(0, pb.Error.RATE_LIMITED, "more than 100 requests per second from one client")]
        if req.kind is RequestKind.SET_STATE:
            return [error(req.request_id, 42, "a code from the future")]
        return answer_everything(p, req)

    peer.handler = handler
    with client_for(peer) as client:
        with pytest.raises(UnknownName) as unknown:
            client.set(dangr=1)
        err = unknown.value
        assert (err.code, err.field, err.remote) == ("UNKNOWN_NAME", "set_parameters.values[0].name", True)
        assert err.message == "unknown parameter 'dangr'; parameters: danger"
        assert str(err) == "set_parameters.values[0].name: unknown parameter 'dangr'; parameters: danger"
        assert err.request_id == 2 and err.code_number == pb.Error.UNKNOWN_NAME
        with pytest.raises(GraphInvalid) as invalid:
            client.load_graph(ACTION_GRAPH)
        assert invalid.value.field == "3 parameters.danger.min"
        assert invalid.value.issues == [f"{ACTION_GRAPH}:3 parameters.danger.min: must be a number",
                                        f"{ACTION_GRAPH}:9 mix[0]: bad"]  # the client names the file it read
        assert str(invalid.value) == invalid.value.message
        with pytest.raises(GraphInvalid, match="^<load_graph>:3"):
            client.load_graph(GRAPH_TEXT)
        with pytest.raises(RateLimited, match="100 requests per second"):  # request id 0: the one in flight
            client.trigger("x")
        with pytest.raises(ServerError) as future:
            client.set_state("x")
        assert type(future.value) is ServerError and future.value.code == "CODE_42"
        client.status()  # still in step after all that


def test_stale_replies_are_dropped(peer: Peer) -> None:
    def handler(p: Peer, req: wire.DecodedRequest) -> list[bytes]:
        if req.kind is RequestKind.SET_PARAMETERS:  # an old reply first (an earlier request), then ours
            return [error(req.request_id - 1, pb.Error.BAD_VALUE, "stale"), ok(req.request_id + 100),
                    ok(req.request_id, stream_time=7)]
        return answer_everything(p, req)

    peer.handler = handler
    with client_for(peer) as client:
        assert client.set(danger=0.1).stream_time == 7
        assert client.stale_replies == 2
        client.status()


def test_undecodable_reply_is_a_protocol_error(peer: Peer) -> None:
    def handler(p: Peer, req: wire.DecodedRequest) -> list[bytes]:
        if req.kind is RequestKind.GET_STATUS:
            return [b"\xff\xff not protobuf"]
        return answer_everything(p, req)

    peer.handler = handler
    with client_for(peer) as client, pytest.raises(ProtocolError, match="undecodable reply from tcp://127.0.0.1"):
        client.status()


def test_timeout_against_a_router_that_never_replies() -> None:
    silent = Peer(lambda p, req: [])
    try:
        for auto_reconnect in (False, True):
            silent.requests.clear()
            client = Client(silent.endpoint, timeout=FAST, heartbeat=0, auto_reconnect=auto_reconnect)
            started = time.monotonic()
            with pytest.raises(RequestTimeout) as caught:
                client.status()  # the implicit hello is not answered: one timeout
            assert FAST <= time.monotonic() - started < FAST + 1.0
            assert isinstance(caught.value, TimeoutError) and caught.value.request == "hello"
            assert f"no reply to hello within {FAST:g} s from {silent.endpoint}" in str(caught.value)
            assert silent.kinds() == ["hello"] and client.reconnects == 0
            client.close()
    finally:
        silent.close()


def test_timeout_of_a_request_after_hello() -> None:
    def hello_only(p: Peer, req: wire.DecodedRequest) -> list[bytes]:
        return [status_reply(req.request_id, p.session)] if req.kind is RequestKind.HELLO else []

    deaf = Peer(hello_only)
    try:
        for auto_reconnect, sent in ((False, ["hello", "get_status"]),
                                     (True, ["hello", "get_status", "hello", "get_status"])):
            deaf.requests.clear()
            with Client(deaf.endpoint, timeout=FAST, heartbeat=0, auto_reconnect=auto_reconnect) as client:
                started = time.monotonic()
                with pytest.raises(RequestTimeout, match="no reply to get_status") as caught:
                    client.status()
                timeouts = sent.count("get_status")
                assert FAST * timeouts <= time.monotonic() - started < FAST * timeouts + 1.0
                assert deaf.kinds() == sent and caught.value.request == "get_status"
                assert client.reconnects == (1 if auto_reconnect else 0)  # the hello after the timeout was answered
    finally:
        deaf.close()


def test_a_timed_out_request_is_retried_once_on_a_new_socket(peer: Peer) -> None:
    dropped: list[int] = []

    def handler(p: Peer, req: wire.DecodedRequest) -> list[bytes]:
        if req.kind is RequestKind.SET_PARAMETERS and not dropped:
            dropped.append(req.request_id)
            return []  # lose the first one
        if req.kind in (RequestKind.TRIGGER, RequestKind.SET_STATE):
            return []  # never answer a one-shot
        return answer_everything(p, req)

    peer.handler = handler
    with client_for(peer, timeout=FAST) as client:
        assert client.set(danger=0.3).stream_time == 4800
        assert peer.kinds() == ["hello", "set_parameters", "hello", "set_parameters"]
        assert client.reconnects == 1
        with pytest.raises(RequestTimeout):  # same runtime after the timeout: a trigger is not fired twice
            client.trigger("boss")
        assert peer.kinds()[4:] == ["trigger", "hello"]
        with pytest.raises(RequestTimeout):  # nor a state change (PROTOCOL.md, reconnecting, step 5)
            client.set_state("combat")
        assert peer.kinds()[6:] == ["set_state", "hello"]
    ids = [r.request_id for r in peer.requests]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_close_interrupts_a_request_in_flight() -> None:
    silent = Peer(lambda p, req: [])
    client = Client(silent.endpoint, timeout=30, heartbeat=0)
    failure: list[BaseException] = []

    def call() -> None:
        try:
            client.status()
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    silent.wait_for(RequestKind.HELLO)
    started = time.monotonic()
    client.close()
    thread.join(5)
    assert time.monotonic() - started < 2
    assert len(failure) == 1 and isinstance(failure[0], ClientStateError)
    silent.close()


# ----------------------------------------------------------------------------- re-sync


def remember_some_state(client: Client) -> None:
    client.load_graph(GRAPH_TEXT)
    client.set(danger=0.5, mode="combat")
    client.set_many({"danger": 0.6}, ramp=1.0)
    client.set_controls(bpm=120, density=0.4)
    client.clear_controls("density")
    client.pause()
    client.reset_context()  # not a state to restore


def assert_resynced(requests: list[wire.DecodedRequest]) -> None:
    """The re-sync a restarted runtime gets: graph, last parameters (bypass), controls, transport."""
    kinds = [r.kind.value for r in requests]
    assert kinds == ["load_graph", "set_parameters", "set_controls", "transport"], kinds
    graph, params, controls, transport = (r.body for r in requests)
    assert isinstance(graph, pb.LoadGraph) and graph.text == GRAPH_TEXT
    assert isinstance(params, pb.SetParameters) and params.bypass and not params.HasField("ramp_seconds")
    assert {v.name: wire.parameter_value(v) for v in params.values} == {"danger": 0.6, "mode": "combat"}
    assert isinstance(controls, pb.SetControls) and wire.controls_to_dict(controls.controls) == {"bpm": 120.0}
    assert isinstance(transport, pb.Transport) and transport.action == pb.Transport.PAUSE


def test_restarted_runtime_after_a_timeout_gets_graph_and_parameters_back(peer: Peer) -> None:
    client = client_for(peer, timeout=FAST)
    remember_some_state(client)
    port = peer.port
    peer.close()
    with pytest.raises(RequestTimeout):  # nobody there
        client.set(danger=0.7)
    assert client.reconnects == 0
    restarted = Peer(fresh_process, port=port, session="session-B")
    try:
        client.set(danger=0.9)
        assert restarted.kinds()[0] == "hello"
        assert_resynced(restarted.requests[1:5])
        last = restarted.requests[5].body
        assert restarted.kinds()[5:] == ["set_parameters"] and isinstance(last, pb.SetParameters)
        assert [v.number for v in last.values] == [0.9]
        assert client.reconnects == 1 and client.server is not None and client.server.session_id == "session-B"
        client.status()
        assert restarted.kinds()[6:] == ["get_status"]  # synced: nothing re-sent again
    finally:
        client.close()
        restarted.close()


def test_not_ready_from_a_quickly_restarted_runtime_resyncs(peer: Peer) -> None:
    client = client_for(peer, timeout=FAST)
    remember_some_state(client)
    port = peer.port
    peer.close()
    restarted = Peer(fresh_process, port=port, session="session-B")  # ZeroMQ reconnects by itself
    try:
        client.trigger("boss")  # NOT_READY → hello (new session) → re-sync → the trigger again
        assert restarted.kinds()[:2] == ["trigger", "hello"]
        assert_resynced(restarted.requests[2:6])
        assert restarted.kinds()[6:] == ["trigger"]
        assert client.reconnects == 1
    finally:
        client.close()
        restarted.close()


def test_heartbeat_brings_the_music_back_without_game_calls(peer: Peer) -> None:
    client = client_for(peer, timeout=FAST, heartbeat=0.1)
    try:
        remember_some_state(client)
        port = peer.port
        peer.close()
        time.sleep(FAST * 2)  # the runtime is down for a while
        restarted = Peer(fresh_process, port=port, session="session-B")
        try:
            restarted.wait_for(RequestKind.TRANSPORT, timeout=10)
            hello = restarted.kinds().index("hello")
            assert_resynced(restarted.requests[hello + 1:hello + 5])
            assert client.reconnects >= 1
            n = len(restarted.requests)
            time.sleep(0.5)
            assert set(restarted.kinds()[n:]) <= {"hello"}  # heartbeats only: synced once
        finally:
            restarted.close()
    finally:
        client.close()


def test_prompts_are_resynced_like_a_graph(peer: Peer) -> None:
    client = client_for(peer, timeout=FAST)
    client.load_graph(GRAPH_TEXT)
    client.set(danger=0.5)
    client.set_prompts({"dark techno": 1.0, "rain": 0.3})  # replaces the graph and its parameters
    client.set_controls(bpm=90)
    port = peer.port
    peer.close()
    restarted = Peer(fresh_process, port=port, session="session-B")
    try:
        client.hello()  # sees the new session: re-syncs before returning
        assert restarted.kinds() == ["hello", "set_prompts", "set_controls"]
        prompts = restarted.requests[1].body
        assert isinstance(prompts, pb.SetPrompts)
        assert [(p.text, p.weight) for p in prompts.prompts] == [("dark techno", 1.0), ("rain", 0.3)]
    finally:
        client.close()
        restarted.close()


def test_no_resync_without_auto_reconnect(peer: Peer) -> None:
    client = client_for(peer, timeout=FAST, auto_reconnect=False)
    client.load_graph(GRAPH_TEXT)
    port = peer.port
    peer.close()
    restarted = Peer(fresh_process, port=port, session="session-B")
    try:
        with pytest.raises(NotReady, match="no graph loaded"):
            client.set(danger=1)
        assert restarted.kinds() == ["set_parameters"]
    finally:
        client.close()
        restarted.close()


# ----------------------------------------------------------------------------- events and audio


class Publisher:
    """A PUB socket on loopback publishing events and audio chunks built by the wire module."""

    def __init__(self) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.sock: zmq.Socket[bytes] = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{self.sock.bind_to_random_port('tcp://127.0.0.1')}"

    def beat(self, sequence: int, beat: int | None = None) -> None:
        b = sequence if beat is None else beat
        self.sock.send_multipart(wire.encode_event("beat", sequence, b * 24_000,
                                                   pb.Beat(beat=b, bar=b // 4, beat_in_bar=b % 4, bpm=120.0)))

    def state(self, sequence: int) -> None:
        self.sock.send_multipart(wire.encode_event("state", sequence, 48_000, pb.StateChange(
            name="combat", previous="explore", phase=pb.StateChange.STARTED, transition="crossfade")))

    def until(self, received: Callable[[], bool], send: Callable[[], None], timeout: float = 5.0) -> None:
        """Publish with ``send`` until ``received()`` (the subscription takes a moment to reach the PUB)."""
        deadline = time.monotonic() + timeout
        while not received():
            assert time.monotonic() < deadline, "nothing arrived"
            send()
            time.sleep(0.02)

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    p = Publisher()
    yield p
    p.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_events_reach_callbacks_and_gaps_are_counted(peer: Peer, publisher: Publisher) -> None:
    beats: list[BeatEvent] = []
    states: list[StateEvent] = []
    with Client(peer.endpoint, publisher.endpoint, heartbeat=0) as client:
        client.on_beat(beats.append)

        @client.on("state")
        def on_state(ev: StateEvent) -> None:
            states.append(ev)

        publisher.until(lambda: bool(beats), lambda: publisher.beat(1))
        first = beats[-1].sequence
        for seq in (first + 1, first + 2, first + 4, first + 5):  # first + 3 is lost
            publisher.beat(seq)
        wait_until(lambda: beats[-1].sequence == first + 5)
        assert client.events_lost == 1
        publisher.beat(1)  # a restarted runtime counts from 1 again: not a loss
        publisher.state(1)
        wait_until(lambda: bool(states))
        assert client.events_lost == 1
    ev = beats[1]
    assert isinstance(ev, BeatEvent) and ev.topic == "beat" and ev.bpm == 120.0
    assert ev.seconds == ev.stream_time / 48_000 and ev.beat_in_bar == ev.beat % 4
    st = states[0]
    assert (st.name, st.previous, st.phase, st.transition) == ("combat", "explore", "started", "crossfade")


def test_callback_errors_and_bad_frames_do_not_stop_delivery(peer: Peer, publisher: Publisher) -> None:
    seen: list[int] = []

    def broken(ev: BeatEvent) -> None:
        raise RuntimeError("a game bug")

    with Client(peer.endpoint, publisher.endpoint, heartbeat=0) as client:
        client.on_beat(broken)
        client.on_beat(lambda ev: seen.append(ev.sequence))
        publisher.until(lambda: bool(seen), lambda: publisher.beat(1))
        publisher.sock.send_multipart([b"beat", b"garbage"])
        publisher.sock.send_multipart([b"nope", b"x", b"y"])
        publisher.beat(2)
        wait_until(lambda: seen[-1] == 2)
        assert client.callback_errors == len(seen) and client.events_bad == 2
        client.off("beat", broken)
        publisher.beat(3)
        wait_until(lambda: seen[-1] == 3)
        assert client.callback_errors == len(seen) - 1
        with pytest.raises(UsageError, match="unknown event topic 'beats'; topics are beat, bar"):
            client.on("beats", print)


def test_events_iterator(peer: Peer, publisher: Publisher) -> None:
    with Client(peer.endpoint, publisher.endpoint, heartbeat=0) as client:
        stream = client.events(timeout=0.3, topics=["state"])
        publisher.until(lambda: not stream._queue.empty(), lambda: publisher.state(1))
        for seq in (2, 3):
            publisher.beat(seq)
            publisher.state(seq)
        got = [ev.sequence for ev in stream]  # ends 0.3 s after the last event
        assert got[-2:] == [2, 3] and all(isinstance(e, int) for e in got)
        assert client.events_lost == 0
        stream.close()


def test_close_never_waits_on_a_stuck_callback(peer: Peer, publisher: Publisher) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck(ev: BeatEvent) -> None:
        entered.set()
        release.wait(10)

    client = Client(peer.endpoint, publisher.endpoint, heartbeat=0)
    client.on_beat(stuck)
    publisher.until(entered.is_set, lambda: publisher.beat(1))
    started = time.monotonic()
    client.close()
    assert time.monotonic() - started < 1.5 and client.state is ClientState.CLOSED
    release.set()


def test_audio_stream_counts_gaps(publisher: Publisher) -> None:
    pcm = np.linspace(-1, 1, 960 * 2, dtype=np.float32).reshape(960, 2)
    with AudioStream(publisher.endpoint, timeout=0.3) as audio:
        publisher.until(lambda: audio.read(0.01) is not None,
                        lambda: publisher.sock.send(wire.encode_audio(1, 0, pcm)))
        for seq in (2, 3, 5):
            publisher.sock.send(wire.encode_audio(seq, seq * 960, pcm))
        publisher.sock.send(b"not audio")
        chunks = list(audio)
    assert [c.sequence for c in chunks] == [2, 3, 5] and audio.lost == 1 and audio.bad == 1
    assert chunks[0].stream_time == 1920 and chunks[0].pcm.dtype == np.float32
    np.testing.assert_array_equal(chunks[0].pcm, pcm)
    with pytest.raises(ClientStateError, match="closed"):
        audio.read(0)


def test_sequence_tracker() -> None:
    t = SequenceTracker()
    assert [t.observe("beat", s) for s in (7, 8, 10, 11, 1, 2, 5)] == [0, 0, 1, 0, 0, 0, 2]
    assert t.observe("bar", 3) == 0 and t.lost == 3


# ----------------------------------------------------------------------------- CurveZMQ


def test_curve_encrypted_control() -> None:
    server_public, server_secret = zmq.curve_keypair()
    secure = Peer(curve_secret=server_secret)
    try:
        with Client(secure.endpoint, server_public_key=server_public.decode(), heartbeat=0) as client:
            assert client.status().graph_loaded is False  # an ephemeral client key pair
        public, secret = cadenza.sdk.curve_keypair()
        with Client(secure.endpoint, server_public_key=server_public, client_public_key=public,
                    client_secret_key=secret, heartbeat=0) as client:
            client.set(danger=1)
        wrong_public, _ = zmq.curve_keypair()
        with Client(secure.endpoint, server_public_key=wrong_public, heartbeat=0, timeout=FAST,
                    auto_reconnect=False) as client, pytest.raises(RequestTimeout, match="CURVE keys"):
            client.status()
        with Client(secure.endpoint, heartbeat=0, timeout=FAST, auto_reconnect=False) as client, \
                pytest.raises(RequestTimeout):
            client.status()  # plain text to a CURVE server: never answered
    finally:
        secure.close()


# ----------------------------------------------------------------------------- AsyncClient


def test_async_lifecycle_requests_and_errors(peer: Peer) -> None:
    def handler(p: Peer, req: wire.DecodedRequest) -> list[bytes]:
        if req.kind is RequestKind.SET_STATE:
            return [ok(req.request_id - 1), error(req.request_id, pb.Error.UNKNOWN_NAME, "unknown state 'boss'",
                                                  "set_state.name")]
        return answer_everything(p, req)

    peer.handler = handler

    async def main() -> None:
        client = async_client_for(peer, name="async-game")
        assert client.state is ClientState.UNOPENED
        async with client:
            assert client.state is ClientState.OPEN
            info = await client.hello()
            assert info.session_id == "session-A"
            ack = await client.set_many({"danger": 0.5}, ramp=1.0, shape="exp")
            assert ack.stream_time == 4800
            await client.load_graph(ACTION_GRAPH)
            await client.trigger("boss_defeated")
            await client.set_prompts(["rain"])
            await client.set_controls(bpm=100)
            await client.clear_controls()
            await client.play()
            assert (await client.status()).graph_loaded
            with pytest.raises(UnknownName) as caught:
                await client.set_state("boss")
            assert (caught.value.code, caught.value.field) == ("UNKNOWN_NAME", "set_state.name")
            assert client.stale_replies == 1
            with pytest.raises(BadValue, match="set_parameters.values"):
                await client.set(danger=math.nan)
        assert client.state is ClientState.CLOSED
        with pytest.raises(ClientStateError, match="^Cannot use a client once it has been closed$"):
            await client.status()
        with pytest.raises(ClientStateError, match="^Cannot reopen a client once it has been closed$"):
            client.open()

    asyncio.run(main())
    assert peer.kinds()[:3] == ["hello", "set_parameters", "load_graph"]
    assert peer.requests[2].body.text == ACTION_GRAPH.read_text()  # type: ignore[union-attr]


def test_async_open_needs_a_running_loop() -> None:
    with pytest.raises(UsageError, match="running asyncio event loop"):
        AsyncClient(heartbeat=0).open()


def test_async_timeout_and_resync(peer: Peer) -> None:
    async def main() -> None:
        client = async_client_for(peer, timeout=FAST)
        await client.load_graph(GRAPH_TEXT)
        await client.set(danger=0.5, mode="combat")
        await client.set_many({"danger": 0.6}, ramp=1.0)
        await client.set_controls(bpm=120, density=0.4)
        await client.clear_controls("density")
        await client.pause()
        port = peer.port
        peer.close()
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            await client.set(danger=0.7)
        assert time.monotonic() - started < FAST * 2 + 1
        restarted = Peer(fresh_process, port=port, session="session-B")
        try:
            await client.set(danger=0.9)
            assert restarted.kinds()[0] == "hello"
            assert_resynced(restarted.requests[1:5])
            assert restarted.kinds()[5:] == ["set_parameters"] and client.reconnects == 1
        finally:
            await client.aclose()
            restarted.close()

    asyncio.run(main())


def test_async_heartbeat_resyncs(peer: Peer) -> None:
    async def main() -> None:
        async with async_client_for(peer, timeout=FAST, heartbeat=0.1) as client:
            await client.load_graph(GRAPH_TEXT)
            await client.set(danger=0.6, mode="combat")
            port = peer.port
            peer.close()
            restarted = Peer(fresh_process, port=port, session="session-B")
            try:
                deadline = time.monotonic() + 10
                while RequestKind.SET_PARAMETERS not in [r.kind for r in restarted.requests]:
                    assert time.monotonic() < deadline, restarted.kinds()
                    await asyncio.sleep(0.02)
                assert restarted.kinds()[:3] == ["hello", "load_graph", "set_parameters"]
                assert client.reconnects == 1
            finally:
                restarted.close()

    asyncio.run(main())


def test_async_events_and_audio(peer: Peer, publisher: Publisher) -> None:
    async def main() -> None:
        beats: list[int] = []
        async_beats: list[int] = []
        async with AsyncClient(peer.endpoint, publisher.endpoint, heartbeat=0) as client:
            client.on_beat(lambda ev: beats.append(ev.sequence))

            async def on_beat(ev: BeatEvent) -> None:
                async_beats.append(ev.sequence)

            client.on("beat", on_beat)
            stream = client.events(timeout=0.3, topics=["beat"])
            deadline = time.monotonic() + 5
            while not beats:
                assert time.monotonic() < deadline
                publisher.beat(1)
                await asyncio.sleep(0.02)
            first = beats[-1]
            for seq in (first + 1, first + 3):
                publisher.beat(seq)
            got = [ev.sequence async for ev in stream]
            assert got[-2:] == [first + 1, first + 3] and client.events_lost == 1
            assert async_beats == beats
        pcm = np.zeros((480, 2), np.float32)
        async with AsyncAudioStream(publisher.endpoint, timeout=0.3) as audio:
            deadline = time.monotonic() + 5
            while await audio.read(0.01) is None:
                assert time.monotonic() < deadline
                publisher.sock.send(wire.encode_audio(1, 0, pcm))
            publisher.sock.send(wire.encode_audio(2, 480, pcm))
            publisher.sock.send(wire.encode_audio(4, 1440, pcm))
            chunks = [c.sequence async for c in audio]
        assert chunks == [2, 4] and audio.lost == 1

    asyncio.run(main())


# ============================================================================= part two: the real runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def serve_available() -> None:
    """Skip the runtime tests where ``cadenza serve`` does not exist (checked once, when first needed)."""
    if not (REPO / "runtime" / "server.py").exists():
        pytest.skip("runtime/server.py does not exist")
    done = subprocess.run([sys.executable, "-m", "cadenza", "serve", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    if done.returncode != 0:
        pytest.skip(f"`cadenza serve --help` failed: {done.stderr.strip()[-500:]}")


class Runtime:
    """``python -m cadenza serve --sink null`` on free loopback ports, started and stopped by a test."""

    def __init__(self) -> None:
        self.control = f"tcp://127.0.0.1:{free_port()}"
        self.events = f"tcp://127.0.0.1:{free_port()}"
        self.audio = f"tcp://127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen[str] | None = None
        self.ready_line = ""

    def start(self, timeout: float = 60.0) -> Runtime:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(  # stdout is read by a thread; stderr goes nowhere (a full pipe would block it)
            [sys.executable, "-m", "cadenza", "serve", "--sink", "null", "--control", self.control,
             "--events", self.events, "--audio", self.audio],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        lines: list[str] = []
        found = threading.Event()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.append(line)
                if "ready" in line:
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(timeout):
            self.stop()
            raise AssertionError(f"`cadenza serve` printed no ready line: {''.join(lines)}")
        self.ready_line = next(line for line in lines if "ready" in line)
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def settled(client: Client, condition: Callable[[Status], bool], timeout: float = 10.0) -> Status:
    """The first status that meets ``condition`` (parameters take effect at the runtime's next control tick)."""
    deadline = time.monotonic() + timeout
    status = client.status()
    while not condition(status):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
        status = client.status()
    return status


@pytest.fixture
def runtime(serve_available: None) -> Iterator[Runtime]:
    rt = Runtime().start()
    yield rt
    rt.stop()


def test_runtime_requests_errors_and_status(runtime: Runtime, tmp_path: Path) -> None:
    with Client(runtime.control, runtime.events, name="integration", heartbeat=0, timeout=10) as client:
        info = client.hello()
        assert info.protocol_version == 1 and info.session_id and info.sample_rate == 48_000
        assert info.session_id in runtime.ready_line
        with pytest.raises(NotReady):
            client.set(danger=0.5)
        ack = client.load_graph(ACTION_GRAPH)
        assert ack.stream_time is not None
        client.set(danger=0.8, mode="combat", health=40)
        client.set_many({"danger": 0.2}, ramp=0.5, shape="s-curve")
        client.set_many({"health": 90}, bypass=True)
        client.trigger("enemy_down")
        client.set_state("tension")
        with pytest.raises(UnknownName) as unknown:
            client.set(danger=0.1, dangr=1)
        assert unknown.value.code == "UNKNOWN_NAME" and unknown.value.field == "set_parameters.values[1].name"
        assert "danger" in unknown.value.message  # names the valid parameters
        with pytest.raises(UnknownName) as no_trigger:
            client.trigger("nope")
        assert no_trigger.value.field == "trigger.name"
        with pytest.raises(UnknownName) as no_state:
            client.set_state("nope")
        assert no_state.value.field == "set_state.name"
        with pytest.raises(BadValue) as bad:
            client.set(mode="flying")
        assert bad.value.code == "BAD_VALUE" and bad.value.field.startswith("set_parameters.values[0]")
        with pytest.raises(GraphInvalid) as invalid:
            client.load_graph("cadenza_graph: 1\nname: broken\nparameters: {x: {type: sideways}}\n")
        assert invalid.value.code == "GRAPH_INVALID" and invalid.value.field.startswith("<load_graph>:3 parameters")
        assert all(issue.startswith("<load_graph>:") for issue in invalid.value.issues)
        broken = tmp_path / "broken.yaml"
        broken.write_text("cadenza_graph: 1\nname: broken\nparameters: {x: {type: sideways}}\n")
        with pytest.raises(GraphInvalid) as from_file:  # read here: the errors name this file
            client.load_graph(broken)
        assert from_file.value.field.startswith(f"{broken}:3 parameters") and from_file.value.issues
        assert all(issue.startswith(f"{broken}:") for issue in from_file.value.issues)
        status = settled(client, lambda st: st.parameters.get("health") == 90)
        assert status.graph_loaded and status.graph_name == "action-game"
        assert status.parameters["mode"] == "combat" and status.stream_time > 0 and status.playing
        client.pause()
        assert not client.status().playing
        client.play()
        client.set_controls(bpm=100)
        assert client.status().controls.get("bpm") == 100
        client.clear_controls("bpm")
        client.reset_context()


def test_runtime_beat_events_and_audio(runtime: Runtime) -> None:
    with Client(runtime.control, runtime.events, heartbeat=0, timeout=10) as client:
        stream = client.events(timeout=5, topics=["beat"])
        client.load_graph(ACTION_GRAPH)
        snapshot = client.status()  # after subscribing: the late joiner's snapshot
        beats: list[BeatEvent] = []
        for ev in stream:
            assert isinstance(ev, BeatEvent)
            beats.append(ev)
            if len(beats) == 4:
                break
        stream.close()
        assert len(beats) == 4, "no beat events within 5 s"
        sequences = [b.sequence for b in beats]
        assert sequences == list(range(sequences[0], sequences[0] + 4))
        assert all(b.bpm > 0 for b in beats) and beats[-1].stream_time > beats[0].stream_time
        assert sequences[-1] > snapshot.event_sequences.get("beat", 0)
        assert client.events_lost == 0
    with AudioStream(runtime.audio, timeout=5, sample_rate=48_000) as audio:
        chunks = []
        for chunk in audio:
            chunks.append(chunk)
            if len(chunks) == 5:
                break
    assert len(chunks) == 5
    assert [c.sequence for c in chunks] == list(range(chunks[0].sequence, chunks[0].sequence + 5))
    assert all(c.pcm.ndim == 2 and c.pcm.shape[1] == 2 and c.pcm.dtype == np.float32 for c in chunks)
    assert chunks[1].stream_time == chunks[0].stream_time + chunks[0].pcm.shape[0] and audio.lost == 0


def test_runtime_async_client(runtime: Runtime) -> None:
    async def main() -> None:
        async with AsyncClient(runtime.control, runtime.events, heartbeat=0, timeout=10) as client:
            stream = client.events(timeout=5, topics=["beat"])
            await client.load_graph(ACTION_GRAPH)
            await client.set(danger=0.9, mode="combat")
            await client.trigger("enemy_down")
            with pytest.raises(UnknownName):
                await client.set(dangr=1)
            deadline = time.monotonic() + 10
            while (status := await client.status()).parameters.get("mode") != "combat":
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.05)
            assert status.graph_loaded
            got = []
            async for ev in stream:
                got.append(ev.sequence)
                if len(got) == 3:
                    break
            assert got == list(range(got[0], got[0] + 3))
        async with AsyncAudioStream(runtime.audio, timeout=5) as audio:
            chunk = await audio.read(5)
            assert chunk is not None and chunk.pcm.shape[1] == 2

    asyncio.run(main())


def test_runtime_restart_is_recovered_without_game_calls(runtime: Runtime) -> None:
    client = Client(runtime.control, runtime.events, heartbeat=0.2, timeout=1.0)
    try:
        client.load_graph(ACTION_GRAPH)
        client.set(danger=0.7, mode="combat", health=30)
        client.set_controls(bpm=140)
        first = client.server
        assert first is not None
        runtime.stop()
        runtime.start()  # same ports, a new process
        deadline = time.monotonic() + 30
        while client.server is first or client.server is None or client.server.session_id == first.session_id:
            assert time.monotonic() < deadline, "the client never noticed the new runtime"
            time.sleep(0.1)
        assert client.server.session_id in runtime.ready_line
        # what the new runtime holds, seen by a second client that sends nothing but GetStatus
        with Client(runtime.control, heartbeat=0, timeout=5) as observer:
            status = settled(observer, lambda st: st.graph_loaded and st.controls.get("bpm") == 140
                             and st.parameters.get("mode") == "combat")
        assert status.graph_name == "action-game" and status.parameters["health"] == 30
        assert status.parameters["danger"] == pytest.approx(0.7)  # bypass: the value at once, no smoothing
        assert client.reconnects >= 1
    finally:
        client.close()


def test_runtime_restart_async_client(runtime: Runtime) -> None:
    async def main() -> None:
        async with AsyncClient(runtime.control, runtime.events, heartbeat=0.2, timeout=1.0) as client:
            await client.load_graph(ACTION_GRAPH)
            await client.set(mode="tension", health=55)
            first = client.server
            assert first is not None
            runtime.stop()
            runtime.start()
            deadline = time.monotonic() + 30
            while client.server is None or client.server.session_id == first.session_id:
                assert time.monotonic() < deadline, "the client never noticed the new runtime"
                await asyncio.sleep(0.1)
            deadline = time.monotonic() + 10
            while (status := await client.status()).parameters.get("health") != 55:
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.05)
            assert status.graph_name == "action-game" and status.parameters["mode"] == "tension"
            assert client.reconnects >= 1

    asyncio.run(main())


def test_stale_audio_drops_a_backlog_but_not_bursts_or_a_slow_backend() -> None:
    """The stale rule (PROTOCOL.md, Audio): what was queued while the reader paused is dropped; a backend
    that delivers 2 s per step, or runs slower than real time, keeps every chunk (the magenta backend
    on a busy CPU lost most of its audio to a rule that kept the smallest lag ever seen)."""
    from cadenza.sdk._base import StaleAudio

    sr, chunk = 48_000, 480
    bursts = StaleAudio(0.5)
    seq = 0
    for step in range(5):  # 2 s generated at once, every 2 s: the reader waits for each burst's head
        arrival = 10.0 + 2.0 * step
        for i in range(200):
            seq += 1
            waited = 1.9 if i == 0 else 0.0
            assert bursts.fresh(seq, (200 * step + i) * chunk, sr, arrival + i * 1e-5, waited)
    slow = StaleAudio(0.5)
    for i in range(1, 1001):  # each 10 ms chunk comes 20 ms after the last: half real time, 10 s behind at the end
        assert slow.fresh(i, i * chunk, sr, 0.02 * i, waited=0.02)
    assert bursts.stale == slow.stale == 0

    paused = StaleAudio(0.5)
    for i in range(1, 101):  # live, read as it comes
        assert paused.fresh(i, i * chunk, sr, 0.01 * i, waited=0.01)
    # the reader stops for 10 s: 130 old chunks were queued; it reads them without waiting, then waits for live
    # (on a busy machine the queue refills from the kernel with short waits: those do not make old audio live)
    kept = [paused.fresh(100 + i, (100 + i) * chunk, sr, 11.0 + i * 1e-3, waited=0.05 if i % 10 == 0 else 0.0)
            for i in range(1, 131)]
    assert not any(kept) and paused.stale == 130
    assert paused.fresh(231, 1100 * chunk, sr, 11.2, waited=0.008)  # live again

    behind = StaleAudio(0.5)  # the runtime fell 1 s behind while the reader was away (CI: every chunk was dropped)
    for i in range(1, 101):
        assert behind.fresh(i, i * chunk, sr, 0.01 * i, waited=0.01)
    assert not any(behind.fresh(100 + i, (100 + i) * chunk, sr, 11.0 + i * 1e-3, waited=0.004 if i % 2 == 0 else 0.0)
                   for i in range(1, 131))  # the backlog, refilled from the kernel with short waits
    # (the runtime dropped what did not fit its queue: the sequence jumps to the live chunks)
    live = [behind.fresh(1000 + i, (1000 + i) * chunk, sr, 11.2 + 0.01 * i, waited=0.009) for i in range(1, 51)]
    assert sum(live) >= len(live) - 25 and all(live[25:])  # live and later for good: followed after 250 ms

    slow_drain = StaleAudio(0.5)  # no chunk lost (the runtime's queue held the whole pause), a busy reader's
    for i in range(1, 11):        # kernel refills sometimes take longer than a chunk lasts (CI, the Node client)
        assert slow_drain.fresh(i, i * chunk, sr, 0.01 * i, waited=0.01)
    arrival, played_behind = 2.6, []
    for i in range(11, 1011):  # 2.5 s of backlog, contiguous with live audio, drained in 2-chunk refills
        refill = i % 2 == 1
        arrival += 0.012 if refill else 0.0005
        if slow_drain.fresh(i, i * chunk, sr, arrival, waited=0.012 if refill else 0.0):
            played_behind.append(arrival - 0.01 * i)
    assert played_behind and max(played_behind) <= 0.5 + 0.012, max(played_behind)
