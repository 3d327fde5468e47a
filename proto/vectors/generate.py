"""Write ``manifest.json``: every conformance vector, built from the definitions below, deterministically.

Valid messages are encoded by :mod:`cadenza.proto.wire` (the only encoder);
malformed ones (a NaN, version 2, a body field from a newer protocol, two
frames, 1 MiB and one byte) are spliced from wire-encoded bytes and raw
protobuf fields written here, since the wire encoder rightly refuses to
produce them. Expectations are what this protocol version promises, written
as patterns (see :func:`cadenza.proto.vectors.match`); the numbers they rely
on come from the code's own constants (:mod:`cadenza.runtime.limits`,
:mod:`cadenza.proto.wire`).

``python -m cadenza.proto.vectors generate`` rewrites the file;
``… generate --check`` exits 1 when it is stale (a test runs that check).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.proto.vectors import FORMAT, FORMAT_VERSION, MANIFEST, envelope_json, load_manifest

__all__ = ["build", "check", "render", "write"]

GRAPH: Final = "examples/action_game/graph.yaml"
SENTINEL: Final = 0.123456789012345  # a double whose eight bytes occur nowhere else in a request


# ----------------------------------------------------------------------------- limits the vectors rely on


def limits() -> dict[str, Any]:
    """The numbers the vectors (and PROTOCOL.md) rely on, read from the code that enforces them."""
    from cadenza.runtime import limits as rl

    return {
        "max_message_bytes": wire.MAX_MESSAGE_BYTES,
        "socket_max_message_bytes": wire.SOCKET_MAX_MESSAGE_BYTES,
        "max_parameter_values": rl.MAX_PARAMETER_VALUES,
        "max_prompts": rl.MAX_PROMPTS,
        "max_prompt_chars": rl.MAX_PROMPT_CHARS,
        "max_notes": rl.MAX_NOTES,
        "max_ramp_s": rl.MAX_RAMP_S,
        "sample_rate": wire.DEFAULT_SAMPLE_RATE,
        "supported_versions": list(wire.SUPPORTED_VERSIONS),
    }


# ----------------------------------------------------------------------------- raw protobuf


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _field(number: int, value: int | bytes) -> bytes:
    """One raw field: an int as a varint, bytes length-delimited."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _head(version: int, request_id: int) -> bytes:
    """Envelope fields 1 and 2 as protobuf writes them (a zero is not written)."""
    return (_field(1, version) if version else b"") + (_field(2, request_id) if request_id else b"")


def _body_of(data: bytes, request_id: int) -> bytes:
    """The body field of a wire-encoded request (what follows the version and the id)."""
    head = _head(wire.PROTOCOL_VERSION, request_id)
    assert data.startswith(head), "the wire writes fields 1 and 2 first"
    return data[len(head):]


# ----------------------------------------------------------------------------- sessions


class _Session:
    """Request vectors of one session, with request ids counting up from 1."""

    def __init__(self, name: str, description: str, serve_args: list[str]) -> None:
        self.doc: dict[str, Any] = {"name": name, "description": description, "serve_args": serve_args,
                                    "requests": []}
        self.next_id = 1

    def rid(self) -> int:
        rid = self.next_id
        self.next_id += 1
        return rid

    def add(self, name: str, description: str, frames: list[Any], request: dict[str, Any] | None,
            expect: dict[str, Any]) -> None:
        self.doc["requests"].append({"name": name, "description": description, "frames": frames,
                                     "request": request, "expect": expect})

    def valid(self, name: str, description: str, body: wire.RequestBody, expect_kind: str,
              fields: Mapping[str, Any] | None = None) -> int:
        """A request the wire encodes, and the reply kind (with fields) it gets."""
        rid = self.rid()
        data = wire.encode_request(body, rid)
        env = pb.Envelope(protocol_version=wire.PROTOCOL_VERSION, request_id=rid)
        getattr(env, wire.request_kind(body)).CopyFrom(body)
        self.add(name, description, [data.hex()], envelope_json(env), reply(rid, expect_kind, fields))
        return rid

    def error(self, name: str, description: str, body: wire.RequestBody, code: str, field: str | None = None,
              **more: Any) -> int:
        """A request the wire encodes (its checks pass) that the runtime answers with an Error."""
        return self.valid(name, description, body, "error", _error(code, field, **more))

    def raw(self, name: str, description: str, frames: list[Any], request: pb.Envelope | None,
            expect: dict[str, Any]) -> None:
        self.add(name, description, frames, envelope_json(request) if request is not None else None, expect)


def reply(rid: int, kind: str, fields: Mapping[str, Any] | None = None, *,
          delimiter: bool = False) -> dict[str, Any]:
    """The pattern of a reply Envelope: version, the echoed id, the body kind and its fields.

    ``delimiter``: the reply comes as ``[empty frame, envelope]`` (the answer to a REQ-style request).
    """
    out: dict[str, Any] = {"reply": "one", "envelope": {"protocol_version": wire.PROTOCOL_VERSION,
                                                        "request_id": str(rid), kind: dict(fields or {})}}
    if delimiter:
        out["delimiter"] = True
    return out


def _error(code: str, field: str | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code}
    if field is not None:
        out["field"] = field
    out.update(more)
    return out


def _params(values: Mapping[str, float | str], **kwargs: Any) -> pb.SetParameters:
    updates = [pb.ParameterUpdate(name=n, label=v) if isinstance(v, str) else pb.ParameterUpdate(name=n, number=v)
               for n, v in values.items()]
    return pb.SetParameters(values=updates, **kwargs)


def _with_double(body: wire.RequestBody, rid: int, value: float) -> bytes:
    """``body`` (holding SENTINEL in one double) encoded with that double set to ``value`` (a NaN, say)."""
    data = wire.encode_request(body, rid)
    needle = struct.pack("<d", SENTINEL)
    assert data.count(needle) == 1
    return data.replace(needle, struct.pack("<d", value))


def _present() -> dict[str, bool]:
    return {"$present": True}


def action_game_session() -> dict[str, Any]:
    s = _Session("action_game", "A runtime started with the action game's graph (parameters danger 0..1, health "
                 "0..100 whole numbers, mode explore|tension|combat driving the states; triggers enemy_down and "
                 "boss_defeated). Replay in order on one DEALER, each reply awaited before the next request.",
                 ["--graph", GRAPH])
    lim = limits()

    # -------- the happy path
    s.valid("hello", "Hello first (optional, recommended): the reply is a Status whose server describes the runtime",
            pb.Hello(supported_versions=[1], client_name="conformance"), "status",
            {"server": {"protocol_version": 1, "supported_versions": [1], "sample_rate": 48000, "channels": 2,
                        "session_id": _present(), "server_version": _present(), "backend": "synth",
                        "endpoints": {"control": _present(), "events": _present(), "audio": _present()}},
             "graph_loaded": True, "graph_name": "action-game", "state": "explore"})
    s.valid("get_status", "GetStatus: the snapshot (Clone pattern); parameters by name, event sequences by topic",
            pb.GetStatus(), "status",
            {"graph_loaded": True, "graph_name": "action-game", "state": "explore", "playing": True,
             "parameters": {"danger": {"number": 0}, "health": {"number": 100}, "mode": {"label": "explore"}},
             "stream_time": _present()})
    s.valid("describe_graph", "DescribeGraph: what the graph offers, with current values",
            pb.DescribeGraph(), "graph_description",
            {"name": "action-game", "state": "explore", "driven_by": "mode",
             "parameters": {"$includes": [
                 {"name": "danger", "kind": "CONTINUOUS", "min": 0, "max": 1, "default_value": {"number": 0}},
                 {"name": "health", "kind": "DISCRETE", "min": 0, "max": 100},
                 {"name": "mode", "kind": "LABELED", "labels": ["explore", "tension", "combat"],
                  "default_value": {"label": "explore"}},
                 {"name": "intensity", "builtin": True}]},
             "states": {"$includes": [{"name": "explore"}, {"name": "tension"}, {"name": "combat"}]},
             "triggers": {"$includes": [{"name": "enemy_down"},
                                        {"name": "boss_defeated", "stinger": "victory", "set_state": "explore"}]},
             "prompts": {"$includes": [{"name": "wander", "text": "calm ambient pads with soft piano"}]},
             "stingers": ["victory"]})
    s.valid("set_parameters", "SetParameters: one number; Ok with the stream time it takes effect",
            _params({"danger": 0.5}), "ok", {"stream_time": _present()})
    s.valid("set_parameters.label", "A labeled parameter takes a label",
            _params({"mode": "tension"}), "ok", {"stream_time": _present()})
    s.valid("set_parameters.ramp", "A batch with a ramp (2 s, s-curve)",
            _params({"danger": 0.8, "health": 40}, ramp_seconds=2.0, ramp_shape=pb.SetParameters.S_CURVE), "ok")
    s.valid("set_parameters.clamp", "clamp: a sensor's out-of-range value is clamped, not refused",
            _params({"danger": 1.7}, clamp=True), "ok",
            {"warnings": ["clamped: danger 1.7 is outside [0, 1]; it became 1"]})
    s.valid("set_parameters.discrete_rounded", "A discrete parameter rounds a non-integer (half up) and says so",
            _params({"health": 50.5}), "ok",
            {"warnings": ["rounded: health is discrete (whole numbers); 50.5 became 51"]})
    s.valid("set_parameters.intensity", "intensity is built in: every graph has it (0..1)",
            _params({"intensity": 0.3}), "ok")
    s.valid("trigger", "Trigger a graph trigger", pb.Trigger(name="enemy_down"), "ok", {"stream_time": _present()})
    s.valid("set_state", "SetState: quantized to the next bar; Ok.stream_time is when it will be heard",
            pb.SetState(name="combat"), "ok", {"stream_time": _present()})
    s.valid("set_controls", "SetControls overrides a control", pb.SetControls(controls=pb.Controls(bpm=120.0)),
            "ok", {"warnings": []})
    s.valid("get_status.overrides", "Status.controls holds the overrides; effective_controls what plays",
            pb.GetStatus(), "status", {"controls": {"bpm": 120}, "effective_controls": {"bpm": 120}})
    s.valid("set_controls.clear", "clear: the control goes back to the graph's", pb.SetControls(clear=["bpm"]), "ok")
    s.valid("transport.play", "Transport PLAY", pb.Transport(action=pb.Transport.PLAY), "ok",
            {"stream_time": _present()})

    # -------- refused values: Error with the request id and the field path
    s.error("error.unknown_parameter", "A name the graph does not declare", _params({"dnager": 0.5}),
            "UNKNOWN_NAME", "set_parameters.values[0].name", message={"$contains": "danger"})
    s.error("error.out_of_range", "A number outside the parameter's range (without clamp)",
            _params({"danger": 1.5}), "BAD_VALUE", "set_parameters.values[0].number")
    s.error("error.unknown_label", "A label the parameter does not have", _params({"mode": "underwater"}),
            "BAD_VALUE", "set_parameters.values[0].label")
    rid = s.rid()
    s.raw("error.nan", "NaN is refused by the wire checks (the field path names the number)",
          [_with_double(_params({"danger": SENTINEL}), rid, float("nan")).hex()],
          pb.Envelope(protocol_version=1, request_id=rid, set_parameters=_params({"danger": float("nan")})),
          reply(rid, "error", _error("BAD_VALUE", "set_parameters.values[0].number")))
    rid = s.rid()
    s.raw("error.negative_ramp", "ramp_seconds must be finite and >= 0",
          [_with_double(_params({"danger": 0.1}, ramp_seconds=SENTINEL), rid, -1.0).hex()],
          pb.Envelope(protocol_version=1, request_id=rid, set_parameters=_params({"danger": 0.1}, ramp_seconds=-1.0)),
          reply(rid, "error", _error("BAD_VALUE", "set_parameters.ramp_seconds")))
    s.error("error.ramp_too_long", f"ramp_seconds over {lim['max_ramp_s']:g} s (MAX_RAMP_S)",
            _params({"danger": 0.1}, ramp_seconds=lim["max_ramp_s"] + 1), "BAD_VALUE", "set_parameters.ramp_seconds")
    rid = s.rid()
    dup = pb.Envelope(protocol_version=1, request_id=rid,
                      set_controls=pb.SetControls(controls=pb.Controls(notes=pb.NoteSet(midi=[60, 64, 60]))))
    s.raw("error.duplicate_note", "Each MIDI note at most once: the field is the repeated one's path",
          [dup.SerializeToString(deterministic=True).hex()], dup,
          reply(rid, "error", _error("BAD_VALUE", "set_controls.controls.notes.midi[2]")))
    s.error("error.note_out_of_range", "A MIDI note outside 0–127", pb.SetControls(
        controls=pb.Controls(notes=pb.NoteSet(midi=[60, 200]))), "BAD_VALUE", "set_controls.controls.notes.midi[1]")
    s.error("error.unknown_trigger", "", pb.Trigger(name="nope"), "UNKNOWN_NAME", "trigger.name",
            message={"$contains": "enemy_down"})
    s.error("error.unknown_state", "", pb.SetState(name="nope"), "UNKNOWN_NAME", "set_state.name",
            message={"$contains": "combat"})
    s.error("error.control_out_of_range", "bpm outside the backend's range", pb.SetControls(
        controls=pb.Controls(bpm=1000.0)), "BAD_VALUE", "set_controls.controls.bpm")
    rid = s.rid()
    s.raw("error.unknown_control", "clear names a control that does not exist",
          [(_head(1, rid) + _field(16, _field(2, b"tempo"))).hex()],
          pb.Envelope(protocol_version=1, request_id=rid, set_controls=pb.SetControls(clear=["tempo"])),
          reply(rid, "error", _error("UNKNOWN_NAME", "set_controls.clear[0]")))
    rid = s.rid()
    s.raw("error.transport_unspecified", "Transport with no action (ACTION_UNSPECIFIED) is refused",
          [(_head(1, rid) + _field(17, b"")).hex()],
          pb.Envelope(protocol_version=1, request_id=rid, transport=pb.Transport()),
          reply(rid, "error", _error("BAD_VALUE", "transport.action")))
    rid = s.rid()
    s.raw("error.transport_unknown_action", "An enum value this version does not know is BAD_VALUE",
          [(_head(1, rid) + _field(17, _field(1, 9))).hex()], None,
          reply(rid, "error", _error("BAD_VALUE", "transport.action")))
    s.error("error.load_graph_outside", "LoadGraph.path outside the folders the operator allows (--allow-dir; by "
            "default the --graph file's folder)", pb.LoadGraph(path="/etc/passwd"), "PERMISSION_DENIED",
            "load_graph.path")
    s.error("error.graph_invalid", "A graph that does not validate: GRAPH_INVALID, nothing changes",
            pb.LoadGraph(text="cadenza_graph: 1\nname: broken\nparameters:\n  x: {type: continuous, min: 1, max: 0}\n"),
            "GRAPH_INVALID", None, message={"$contains": "parameters.x"})

    # -------- limits (TOO_LARGE / BAD_VALUE), the id echoed
    s.error("limit.parameter_values", f"More than {lim['max_parameter_values']} values in one SetParameters",
            _params({f"p{i}": 0.0 for i in range(lim["max_parameter_values"] + 1)}), "TOO_LARGE",
            "set_parameters.values")
    s.error("limit.prompts", f"More than {lim['max_prompts']} prompts in one SetPrompts",
            pb.SetPrompts(prompts=[pb.WeightedPrompt(text=f"p{i}") for i in range(lim["max_prompts"] + 1)]),
            "TOO_LARGE", "set_prompts.prompts")
    s.error("limit.prompt_chars", f"A prompt text over {lim['max_prompt_chars']} characters",
            pb.SetPrompts(prompts=[pb.WeightedPrompt(text="a" * (lim["max_prompt_chars"] + 1))]),
            "TOO_LARGE", "set_prompts.prompts[0].text")
    s.error("limit.notes", f"More than {lim['max_notes']} notes", pb.SetControls(
        controls=pb.Controls(notes=pb.NoteSet(midi=[60] * (lim["max_notes"] + 1)))), "BAD_VALUE",
        "set_controls.controls.notes.midi")
    rid = s.rid()
    name_len = lim["max_message_bytes"]  # with its head, the frame is just over the limit
    hello_head = _varint(2 << 3 | 2) + _varint(name_len)
    head = _head(1, rid) + _varint(10 << 3 | 2) + _varint(len(hello_head) + name_len) + hello_head
    s.raw("limit.message_bytes", f"A frame over {lim['max_message_bytes']} bytes (a Hello with a 1 MiB "
          "client_name): TOO_LARGE", [{"head": head.hex(), "fill": "78", "count": name_len}], None,
          reply(rid, "error", _error("TOO_LARGE")))

    # -------- envelopes this version cannot act on
    rid = s.rid()
    data = wire.encode_request(pb.GetStatus(), rid)
    s.raw("envelope.version_2", "A protocol version the runtime does not speak: UNSUPPORTED_VERSION with the "
          "versions it does", [(_head(2, rid) + _body_of(data, rid)).hex()],
          pb.Envelope(protocol_version=2, request_id=rid, get_status=pb.GetStatus()),
          reply(rid, "error", _error("UNSUPPORTED_VERSION", "protocol_version", supported_versions=[1])))
    rid = s.rid()
    data = wire.encode_request(pb.GetStatus(), rid)
    s.raw("envelope.version_0", "No protocol_version (0) is refused the same way",
          [(_head(0, rid) + _body_of(data, rid)).hex()],
          pb.Envelope(protocol_version=0, request_id=rid, get_status=pb.GetStatus()),
          reply(rid, "error", _error("UNSUPPORTED_VERSION", "protocol_version", supported_versions=[1])))
    rid = s.rid()
    s.raw("envelope.hello_no_common_version", "Hello offering only versions the runtime does not speak",
          [wire.encode_request(pb.Hello(supported_versions=[7, 8], client_name="future"), rid).hex()],
          pb.Envelope(protocol_version=1, request_id=rid, hello=pb.Hello(supported_versions=[7, 8],
                                                                         client_name="future")),
          reply(rid, "error", _error("UNSUPPORTED_VERSION", "hello.supported_versions", supported_versions=[1])))
    rid = s.rid()
    s.raw("envelope.unknown_body", "A body field this version does not know (29: a newer request)",
          [(_head(1, rid) + _field(29, b"")).hex()], None,
          reply(rid, "error", _error("BAD_MESSAGE", "body")))
    rid = s.rid()
    s.raw("envelope.no_body", "An envelope with no body", [_head(1, rid).hex()],
          pb.Envelope(protocol_version=1, request_id=rid), reply(rid, "error", _error("BAD_MESSAGE", "body")))
    s.raw("envelope.request_id_0", "request_id 0 (unset): BAD_MESSAGE, answered with id 0",
          [(_head(1, 0) + _field(18, b"")).hex()],
          pb.Envelope(protocol_version=1, get_status=pb.GetStatus()),
          reply(0, "error", _error("BAD_MESSAGE", "request_id")))
    s.raw("envelope.not_protobuf", "Bytes protobuf cannot decode: BAD_MESSAGE, id 0 (unreadable)",
          ["ffffffff"], None, reply(0, "error", _error("BAD_MESSAGE")))
    s.raw("envelope.empty", "An empty frame: BAD_MESSAGE, id 0", [""], None,
          reply(0, "error", _error("BAD_MESSAGE")))
    first, rid = s.rid(), s.rid()
    s.raw("framing.two_frames", "A request in two frames (a request is exactly one frame): BAD_MESSAGE with the "
          "id read from the last frame", [wire.encode_request(pb.GetStatus(), first).hex(),
                                          wire.encode_request(pb.GetStatus(), rid).hex()], None,
          reply(rid, "error", _error("BAD_MESSAGE")))
    rid = s.rid()
    s.raw("framing.req_delimiter", "A REQ socket's [empty, envelope] is served; the reply comes back as "
          "[empty, reply] (a REQ socket strips the empty frame)",
          ["", wire.encode_request(pb.GetStatus(), rid).hex()], None,
          reply(rid, "status", {"graph_name": "action-game"}, delimiter=True))
    first, rid = s.rid(), s.rid()
    s.raw("framing.req_delimiter_two_frames", "[empty, envelope, envelope]: BAD_MESSAGE (id of the last frame), "
          "answered with the delimiter", ["", wire.encode_request(pb.GetStatus(), first).hex(),
                                          wire.encode_request(pb.GetStatus(), rid).hex()], None,
          reply(rid, "error", _error("BAD_MESSAGE"), delimiter=True))
    rid = s.rid()
    name_len = lim["socket_max_message_bytes"]
    hello_head = _varint(2 << 3 | 2) + _varint(name_len)
    head = _head(1, rid) + _varint(10 << 3 | 2) + _varint(len(hello_head) + name_len) + hello_head
    s.raw("limit.socket_max_message_bytes", f"A frame over {lim['socket_max_message_bytes']} bytes "
          "(ZMQ_MAXMSGSIZE): no reply; ZeroMQ drops the connection and the DEALER reconnects by itself",
          [{"head": head.hex(), "fill": "78", "count": name_len}], None, {"reply": "none"})
    s.valid("get_status.after_disconnect", "The same DEALER is answered again once it reconnected",
            pb.GetStatus(), "status", {"graph_loaded": True, "control_disconnects": {"$gte": 1}})

    # -------- transport
    s.valid("set_parameters.before_stop", "", _params({"danger": 0.6}, bypass=True), "ok")
    s.valid("transport.pause", "PAUSE: silence; state, parameters and position kept",
            pb.Transport(action=pb.Transport.PAUSE), "ok", {"stream_time": _present()})
    s.valid("get_status.paused", "", pb.GetStatus(), "status", {"playing": False, "graph_loaded": True})
    s.valid("transport.stop", "STOP: fade out, then the graph's initial state and parameter defaults",
            pb.Transport(action=pb.Transport.STOP), "ok", {"stream_time": _present()})
    s.valid("get_status.stopped", "Defaults at once after STOP", pb.GetStatus(), "status",
            {"playing": False, "state": "explore",
             "parameters": {"danger": {"number": 0}, "mode": {"label": "explore"}}})
    s.valid("transport.play_again", "PLAY after STOP: from the top", pb.Transport(action=pb.Transport.PLAY), "ok")
    s.valid("trigger.stinger", "A trigger that plays a stinger (victory, quantized to the bar, cooldown 8 s)",
            pb.Trigger(name="boss_defeated"), "ok", {"stream_time": _present(), "warnings": []})
    s.valid("trigger.stinger_cooldown", "The same again within the cooldown: Ok (the trigger fired), and the "
            "stinger that does not play is named in Ok.warnings",
            pb.Trigger(name="boss_defeated"), "ok",
            {"warnings": [{"$contains": "stinger_refused: trigger 'boss_defeated' fired, but its stinger 'victory'"}]})
    s.valid("get_status.after", "Still answering after all the refusals; the graph is the one loaded at start",
            pb.GetStatus(), "status", {"graph_loaded": True, "graph_name": "action-game", "playing": True})
    return s.doc


def no_graph_session() -> dict[str, Any]:
    s = _Session("no_graph", "A runtime started without a graph (silence): graph requests are NOT_READY",
                 [])
    s.valid("get_status", "", pb.GetStatus(), "status", {"graph_loaded": False, "graph_name": ""})
    s.error("not_ready.set_parameters", "No graph loaded yet", _params({"danger": 0.5}), "NOT_READY")
    s.error("not_ready.trigger", "", pb.Trigger(name="enemy_down"), "NOT_READY")
    s.error("not_ready.describe_graph", "", pb.DescribeGraph(), "NOT_READY")
    s.valid("set_prompts", "SetPrompts plays weighted prompts without a graph",
            pb.SetPrompts(prompts=[pb.WeightedPrompt(text="calm ambient pads", weight=0.7),
                                   pb.WeightedPrompt(text="soft piano")]), "ok")
    s.valid("get_status.prompts", "Prompts play without a graph", pb.GetStatus(), "status", {"graph_loaded": False})
    s.valid("describe_graph.prompts", "A text prompt is named by its text (in Status.weights and mix events too)",
            pb.DescribeGraph(), "graph_description",
            {"prompts": {"$includes": [{"name": "calm ambient pads", "text": "calm ambient pads"},
                                       {"name": "soft piano", "text": "soft piano"}]},
             "parameters": [{"name": "intensity", "builtin": True}], "states": []})
    return s.doc


def rate_limited_session() -> dict[str, Any]:
    s = _Session("rate_limited", "A runtime allowing one request per second per client (--rate-limit 1): the "
                 "second request in the same second is refused, with its id", ["--graph", GRAPH, "--rate-limit", "1"])
    s.valid("get_status", "The first request spends the one token", pb.GetStatus(), "status")
    s.error("rate_limited", "The next one, at once: RATE_LIMITED (nothing was applied; send it again later)",
            _params({"danger": 0.5}), "RATE_LIMITED")
    return s.doc


# ----------------------------------------------------------------------------- replies, events, audio


def _message(name: str, description: str, envelope: pb.Envelope, data: bytes) -> dict[str, Any]:
    return {"name": name, "description": description, "hex": data.hex(), "decoded": envelope_json(envelope)}


def _reply(name: str, description: str, rid: int, body: wire.ReplyBody) -> dict[str, Any]:
    env = pb.Envelope(protocol_version=wire.PROTOCOL_VERSION, request_id=rid)
    getattr(env, wire.reply_kind(body)).CopyFrom(body)
    return _message(name, description, env, wire.encode_reply(rid, body))


def _server_info() -> pb.ServerInfo:
    return pb.ServerInfo(protocol_version=1, supported_versions=[1], server_version="0.1.0", backend="synth",
                         controls=["bpm", "brightness", "density", "mute_bass", "mute_drums", "notes", "scale",
                                   "seed"],
                         audio_prompts=True, beat_grid=True, sample_rate=48000, channels=2,
                         session_id="5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5",
                         endpoints={"control": "tcp://127.0.0.1:5555", "events": "tcp://127.0.0.1:5556",
                                    "audio": "tcp://127.0.0.1:5557"})


def _status() -> pb.Status:
    return pb.Status(
        server=_server_info(), graph_loaded=True, graph_name="action-game", state="combat",
        weights={"battle": 1.0, "heroic": 0.18}, controls=pb.Controls(bpm=120.0),
        parameters={"danger": pb.ParameterValue(number=0.5), "health": pb.ParameterValue(number=100.0),
                    "mode": pb.ParameterValue(label="combat")},
        stream_time=480000, playing=True, xruns=0, lookahead_ms=30.0,
        event_sequences={"bar": 5, "beat": 20, "mix": 100, "state": 2, "status": 10}, audio_sequence=1000,
        effective_controls=pb.Controls(bpm=120.0, density=0.85, brightness=0.7), pending_state="tension",
        pending_state_time=576000, control_connections=2, control_disconnects=1,
        requests={"hello": 3, "set_parameters": 12, "get_status": 1})


def _description() -> pb.GraphDescription:
    P = pb.ParameterInfo
    return pb.GraphDescription(
        name="action-game",
        parameters=[
            P(name="danger", kind=P.CONTINUOUS, min=0, max=1, default_value=pb.ParameterValue(number=0),
              value=pb.ParameterValue(number=0.5)),
            P(name="health", kind=P.DISCRETE, min=0, max=100, default_value=pb.ParameterValue(number=100),
              value=pb.ParameterValue(number=100)),
            P(name="mode", kind=P.LABELED, labels=["explore", "tension", "combat"],
              default_value=pb.ParameterValue(label="explore"), value=pb.ParameterValue(label="combat")),
            P(name="intensity", kind=P.CONTINUOUS, min=0, max=1, default_value=pb.ParameterValue(number=0),
              value=pb.ParameterValue(number=0.25), builtin=True),
        ],
        states=[pb.StateInfo(name="explore"), pb.StateInfo(name="tension"), pb.StateInfo(name="combat")],
        state="combat", driven_by="mode",
        triggers=[pb.TriggerInfo(name="enemy_down", bump=0.25),
                  pb.TriggerInfo(name="boss_defeated", stinger="victory", set_state="explore", bump=1.0)],
        prompts=[pb.PromptInfo(name="wander", text="calm ambient pads with soft piano", weight=0.0),
                 pb.PromptInfo(name="battle", text="aggressive drum and bass", weight=1.0)],
        stingers=["victory"], controls=pb.Controls(bpm=172.0, density=0.85, brightness=0.7))


def replies() -> list[dict[str, Any]]:
    E = pb.Error
    return [
        _reply("ok", "Ok with the stream time (samples) the request takes effect", 4, pb.Ok(stream_time=96000)),
        _reply("ok.warnings", "Ok with a warning (a control the backend ignores)", 9, pb.Ok(
            stream_time=97440, warnings=["backend 'synth' cannot honour control 'temperature'; it is ignored"])),
        _reply("ok.no_stream_time", "Ok without a stream time", 5, pb.Ok()),
        _reply("status.hello", "The reply to Hello: a Status with server", 1, _status()),
        _reply("graph_description", "The reply to DescribeGraph", 3, _description()),
        _reply("error.unknown_name", "Error with the field path and the valid names", 12, E(
            code=E.UNKNOWN_NAME, message="unknown parameter 'dnager'; nothing was applied; parameters: danger, "
            "health, mode, and the built-in intensity", field="set_parameters.values[0].name")),
        _reply("error.unsupported_version", "UNSUPPORTED_VERSION lists the versions the runtime speaks", 30, E(
            code=E.UNSUPPORTED_VERSION, message="protocol version 2 is not supported; supported versions: 1",
            field="protocol_version", supported_versions=[1])),
        _reply("error.too_large", "TOO_LARGE carries the request id when it could be read from the bytes", 31, E(
            code=E.TOO_LARGE, message="message of 1048577 bytes is over the limit of 1048576 bytes")),
        _reply("error.rate_limited", "RATE_LIMITED carries the request id", 32, E(
            code=E.RATE_LIMITED, message="more than 100000 requests per second from one client")),
        _reply("error.bad_message_id_0", "An Error whose request's id could not be read carries id 0", 0, E(
            code=E.BAD_MESSAGE, message="not a cadenza.v1.Envelope")),
    ]


def _event(name: str, description: str, topic: str, sequence: int, stream_time: int,
           payload: wire.EventPayload) -> dict[str, Any]:
    frames = wire.encode_event(topic, sequence, stream_time, payload)
    event = pb.Event(topic=topic, sequence=sequence, stream_time=stream_time,
                     stream_seconds=stream_time / wire.DEFAULT_SAMPLE_RATE)
    getattr(event, topic).CopyFrom(payload)
    env = pb.Envelope(protocol_version=wire.PROTOCOL_VERSION, event=event)
    return {"name": name, "description": description, "topic": topic, "frames": [f.hex() for f in frames],
            "decoded": envelope_json(env)}


def events() -> list[dict[str, Any]]:
    SC = pb.StateChange
    return [
        _event("beat", "A beat (the third of bar 2 at 120 bpm)", "beat", 11, 240000,
               pb.Beat(beat=10, bar=2, beat_in_bar=2, bpm=120.0)),
        _event("bar", "A bar line: also sent as a beat with beat_in_bar 0", "bar", 3, 288000,
               pb.Beat(beat=12, bar=3, beat_in_bar=0, bpm=120.0)),
        _event("beat.estimated", "A beat predicted from the tempo (a backend without a beat grid)", "beat", 12,
               312000, pb.Beat(beat=13, bar=3, beat_in_bar=1, bpm=120.0, estimated=True)),
        _event("state.scheduled", "A quantized state change waiting for its bar: stream_time is when it starts",
               "state", 1, 384000, SC(name="combat", previous="explore", phase=SC.SCHEDULED,
                                      transition="crossfade", fade_seconds=0.5)),
        _event("state.started", "The transition is heard from stream_time", "state", 2, 384000,
               SC(name="combat", previous="explore", phase=SC.STARTED, transition="crossfade", fade_seconds=0.5)),
        _event("state.completed", "The new state plays alone (its fade is over)", "state", 3, 408000,
               SC(name="combat", previous="explore", phase=SC.COMPLETED, transition="crossfade", fade_seconds=0.5)),
        _event("mix", "The current prompt weights (10 per second)", "mix", 100, 480000,
               pb.Mix(weights={"battle": 1.0, "heroic": 0.18})),
        _event("stinger", "A stinger fired (heard from stream_time)", "stinger", 1, 576000,
               pb.StingerFired(name="victory", duration_seconds=2.790697674418605)),
        _event("xrun", "The output ran dry: 480 frames of silence", "xrun", 1, 600000,
               pb.Xrun(count=1, frames_lost=480, source="device")),
        _event("warning", "Something the runtime did not honour", "warning", 1, 624000,
               pb.Warning(message="backend 'synth' cannot honour control 'temperature'; it is ignored",
                          field="set_controls.controls.temperature")),
        _event("status", "The periodic status snapshot (once a second)", "status", 10, 480000, _status()),
    ]


def _audio(name: str, description: str, sequence: int, stream_time: int, pcm: np.ndarray,
           sample_format: str) -> dict[str, Any]:
    data = wire.encode_audio(sequence, stream_time, pcm, sample_format=sample_format)
    decoded = wire.decode_audio(data)
    code, dtype = {"float32": (pb.AudioChunk.FLOAT32_LE, "<f4"), "int16": (pb.AudioChunk.INT16_LE, "<i2")}[
        sample_format]
    samples = (np.rint(np.clip(pcm, -1, 1) * 32767.0).astype(dtype) if sample_format == "int16"
               else pcm.astype(dtype))
    chunk = pb.AudioChunk(sequence=sequence, stream_time=stream_time, sample_rate=wire.DEFAULT_SAMPLE_RATE,
                          channels=pcm.shape[1], frames=pcm.shape[0], format=code, pcm=samples.tobytes())
    assert samples.tobytes() in data, "the decoded form describes the bytes the wire wrote"
    env = pb.Envelope(protocol_version=wire.PROTOCOL_VERSION, audio_chunk=chunk)
    return {"name": name, "description": description, "hex": data.hex(), "decoded": envelope_json(env),
            "samples": [[float(v) for v in row] for row in decoded.pcm]}


def audio() -> list[dict[str, Any]]:
    pcm = np.array([[0.0, 0.0], [0.5, -0.5], [1.0, -1.0], [0.25, -0.125]], dtype=np.float32)
    return [
        _audio("float32", "Four stereo frames, float32 little-endian interleaved", 1, 480, pcm, "float32"),
        _audio("int16", "The same frames as int16 little-endian (x 32767, rounded)", 1, 480, pcm, "int16"),
    ]


# ----------------------------------------------------------------------------- the manifest


def build() -> dict[str, Any]:
    """The whole manifest, as plain JSON data."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "protocol_version": wire.PROTOCOL_VERSION,
        "about": "Cadenza conformance vectors; see proto/PROTOCOL.md, 'Conformance vectors'. Generated by "
                 "`python -m cadenza.proto.vectors generate`; do not edit by hand.",
        "limits": limits(),
        "sessions": [action_game_session(), no_graph_session(), rate_limited_session()],
        "replies": replies(),
        "events": events(),
        "audio": audio(),
    }


def render(manifest: Mapping[str, Any]) -> str:
    return json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"


def _canonical(manifest: Mapping[str, Any]) -> Any:
    """The manifest with every hex frame replaced by its decoded form where one is given (map entries come out
    in any order in protobuf's bytes, so two correct encodings may differ)."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: walk(v) for k, v in node.items()}
            if "decoded" in node and ("hex" in node or "frames" in node):
                out.pop("hex", None)
                out.pop("frames", None)
                out["decoded"] = node["decoded"]
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(dict(manifest))


def _keep_committed_bytes(new: dict[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """Where a message decodes the same as the committed one, keep the committed bytes and JSON (protobuf writes
    map entries, and json_format prints them, in an order that changes from process to process)."""
    if old is None:
        return new
    for section in ("replies", "events", "audio"):
        before = {v["name"]: v for v in old.get(section, [])}
        for v in new[section]:
            prev = before.get(v["name"])
            if prev is not None and prev.get("decoded") == v["decoded"]:  # dicts: equal in any key order
                for key in ("hex", "frames", "decoded"):
                    if key in prev and key in v:
                        v[key] = prev[key]
    return new


def _committed(path: Path) -> dict[str, Any] | None:
    try:
        return load_manifest(path)
    except (OSError, ValueError):
        return None


def write(path: Path = MANIFEST) -> Path:
    """Regenerate the manifest at ``path``."""
    manifest = _keep_committed_bytes(build(), _committed(path))
    path.write_text(render(manifest), encoding="utf-8")
    return path


def check(path: Path = MANIFEST, say: Callable[[str], None] = print) -> bool:
    """True when the committed manifest is what :func:`build` gives (message bytes compared decoded)."""
    old = _committed(path)
    if old is None:
        say(f"{path}: missing or unreadable; run `python -m cadenza.proto.vectors generate`")
        return False
    new = build()
    stale = _canonical(old) != _canonical(new)
    if not stale:  # request frames carry no maps: they must be byte-for-byte the same
        stale = [v["frames"] for s in old["sessions"] for v in s["requests"]] != [
            v["frames"] for s in new["sessions"] for v in s["requests"]]
    if stale:
        say(f"{path} is stale: run `python -m cadenza.proto.vectors generate` and commit it")
        return False
    return True
