"""The conformance vectors (proto/vectors/manifest.json) and the protocol guide (proto/PROTOCOL.md) hold.

* the committed manifest is what the generator gives (regenerate after a change);
* every request session replays against a real ``cadenza serve`` started with
  the session's ``serve_args``: each vector gets the reply the manifest says,
  and the events socket meanwhile decodes, counts by one per topic and runs
  ``mix``/``status`` at their documented rates;
* the Python SDK decodes every reply, event and audio vector to what the
  manifest's decoded form says;
* PROTOCOL.md names every request, reply, Error code and event topic of the
  .proto, its limits table agrees with the constants in the code, and its
  example bytes are the manifest's.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.proto.vectors import envelope_json, frame_bytes, load_manifest, match
from cadenza.proto.vectors.generate import check
from cadenza.proto.vectors.replay import check_events, check_state_change, replay_session, reply_json
from tests.server_harness import REPO, ServeProcess

PROTOCOL_MD = REPO / "proto" / "PROTOCOL.md"
MANIFEST = load_manifest()


def _by_name(section: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in MANIFEST[section]}


# ----------------------------------------------------------------------------- the manifest itself


def test_committed_manifest_is_fresh() -> None:
    said: list[str] = []
    assert check(say=said.append), "; ".join(said)


def test_manifest_names_are_unique_and_replies_echo_the_request_id() -> None:
    for section in ("replies", "events", "audio", "sessions"):
        names = [v["name"] for v in MANIFEST[section]]
        assert len(names) == len(set(names)), f"duplicate names in {section}"
    for session in MANIFEST["sessions"]:
        names = [v["name"] for v in session["requests"]]
        assert len(names) == len(set(names)), f"duplicate vector names in session {session['name']}"
        for v in session["requests"]:
            if v["request"] is not None and v["expect"]["reply"] == "one":  # the id the frame carries comes back
                assert v["expect"]["envelope"]["request_id"] == v["request"]["request_id"], v["name"]


def test_matcher_reports_each_difference() -> None:
    actual = {"request_id": "7", "error": {"code": "BAD_VALUE", "field": "x", "message": "no such thing"},
              "list": [{"name": "a"}, {"name": "b"}]}
    assert match({"request_id": "7", "error": {"code": "BAD_VALUE"}}, actual) == []
    assert match({"error": {"message": {"$contains": "such"}}, "list": {"$includes": [{"name": "b"}]}}, actual) == []
    diffs = match({"request_id": "8", "error": {"code": "UNKNOWN_NAME", "gone": {"$present": True}}}, actual)
    assert diffs == ['request_id: expected "8", got "7"', 'error.code: expected "UNKNOWN_NAME", got "BAD_VALUE"',
                     'error.gone: missing (expected {"$present": true})']
    assert match({"x": {"$absent": True}}, {}) == [] and match({"x": {"$absent": True}}, {"x": 1})
    assert match({"n": {"$gte": 3}}, {"n": "4"}) == [] and match({"n": {"$gte": 3}}, {"n": "2"})


# ----------------------------------------------------------------------------- replay against cadenza serve


def _serve_args(session: dict[str, Any]) -> list[str]:
    """serve_args with paths relative to the repository made absolute (the process runs in a temp folder)."""
    return [str(REPO / a) if (REPO / a).is_file() else a for a in session["serve_args"]]


@pytest.mark.parametrize("name", [s["name"] for s in MANIFEST["sessions"]])
def test_replay_session_against_cadenza_serve(name: str, tmp_path: Path) -> None:
    session = next(s for s in MANIFEST["sessions"] if s["name"] == name)
    ctx: zmq.Context[Any] = zmq.Context()
    server = ServeProcess(_serve_args(session), tmp_path).start()
    try:
        for _ in range(3):  # the runtime past its start-up; a connection each (each has a rate-limit bucket)
            warm = server.control(ctx)
            try:
                warm.status()
            finally:
                warm.close()
        results = replay_session(server.ep.local("control"), session, timeout=10.0, ctx=ctx)
        if name == "action_game":  # the events socket of a playing runtime, by the same rules
            results += check_events(server.ep.local("events"), 3.0, ctx=ctx)
            results += check_state_change(server.ep.local("control"), server.ep.local("events"), ctx=ctx)
        failed = [f"{r.session}/{r.name}: " + "; ".join(r.diffs) for r in results if not r.passed]
        assert not failed, "\n".join(failed) + f"\nserver stderr:\n{server.stderr_text[-2000:]}"
        assert len(results) >= len(session["requests"])
    finally:
        server.kill()
        ctx.destroy(linger=0)


# ----------------------------------------------------------------------------- the SDK decodes every vector


def test_sdk_decodes_every_reply_vector() -> None:
    from cadenza.sdk import Client
    from cadenza.sdk._base import Ack, GraphInfo, Status
    from cadenza.sdk.errors import ServerError

    client = Client("tcp://127.0.0.1:9")  # never opened: only its reply decoding is used
    for v in MANIFEST["replies"]:
        data = bytes.fromhex(v["hex"])
        assert reply_json(data) == v["decoded"], v["name"]
        rid = int(v["decoded"]["request_id"])
        if "error" in v["decoded"]:
            with pytest.raises(ServerError) as caught:
                client._accept(rid, [data])
            assert caught.value.code == v["decoded"]["error"]["code"], v["name"]
            continue
        body = client._accept(rid, [data])
        assert body is not None, v["name"]
        assert envelope_json(body) == next(val for k, val in v["decoded"].items()
                                           if k not in ("protocol_version", "request_id")), v["name"]
        if isinstance(body, pb.Ok):
            ack = Ack.from_pb(body)
            assert ack.stream_time == (int(v["decoded"]["ok"]["stream_time"]) if "stream_time" in v["decoded"]["ok"]
                                       else None)
            assert list(ack.warnings) == v["decoded"]["ok"]["warnings"]
        if isinstance(body, pb.GraphDescription):
            info = GraphInfo.from_pb(body)
            want = v["decoded"]["graph_description"]
            assert list(info.parameters) == [p["name"] for p in want["parameters"]]
            assert info.parameters["mode"].labels == tuple(want["parameters"][2]["labels"])
            assert info.states == tuple(s["name"] for s in want["states"]) and info.state == want["state"]
        if isinstance(body, pb.Status):
            status = Status.from_pb(body)
            assert status.graph_name == v["decoded"]["status"]["graph_name"]
            assert status.server is not None and status.server.session_id == v["decoded"]["status"]["server"][
                "session_id"]
    client.close()


def test_sdk_decodes_every_event_vector() -> None:
    from cadenza.sdk._base import event_from_wire

    assert {v["topic"] for v in MANIFEST["events"]} == {t.value for t in wire.Topic}, "an event vector per topic"
    for v in MANIFEST["events"]:
        frames = [bytes.fromhex(f) for f in v["frames"]]
        decoded = wire.decode_event(frames)
        event = event_from_wire(decoded)
        want = v["decoded"]["event"]
        assert frames[0].decode() == v["topic"] == want["topic"] == event.topic, v["name"]
        assert (event.sequence, event.stream_time) == (int(want["sequence"]), int(want["stream_time"])), v["name"]
        assert event.seconds == pytest.approx(want["stream_seconds"])
        assert envelope_json(decoded.payload) == want[v["topic"]], v["name"]
        if v["topic"] == "state":
            assert getattr(event, "phase") == want["state"]["phase"].lower(), v["name"]


def test_sdk_decodes_every_audio_vector() -> None:
    for v in MANIFEST["audio"]:
        chunk = wire.decode_audio(bytes.fromhex(v["hex"]))
        want = v["decoded"]["audio_chunk"]
        assert (chunk.sequence, chunk.stream_time) == (int(want["sequence"]), int(want["stream_time"]))
        assert chunk.pcm.shape == (want["frames"], want["channels"])
        np.testing.assert_array_equal(chunk.pcm, np.array(v["samples"], dtype=np.float32))


# ----------------------------------------------------------------------------- PROTOCOL.md against the code


def _doc() -> str:
    return PROTOCOL_MD.read_text(encoding="utf-8")


def test_protocol_md_names_everything_in_the_proto() -> None:
    """Read from the .proto's descriptors: every Envelope body, Error code, event topic, phase and action."""
    doc = _doc()
    missing = []
    for f in pb.Envelope.DESCRIPTOR.oneofs_by_name["body"].fields:
        if f"`{f.message_type.name}`" not in doc:
            missing.append(f"Envelope body {f.name} ({f.message_type.name})")
    for f in pb.Event.DESCRIPTOR.oneofs_by_name["payload"].fields:
        if f"| `{f.name}` |" not in doc:
            missing.append(f"event topic {f.name} (a row of the topics table)")
    for enum, skip in ((pb.Error.Code, "CODE_UNSPECIFIED"), (pb.StateChange.Phase, "PHASE_UNSPECIFIED"),
                       (pb.Transport.Action, "ACTION_UNSPECIFIED"), (pb.AudioChunk.SampleFormat, "")):
        for name in enum.keys():
            if name != skip and f"`{name}`" not in doc:
                missing.append(f"{enum.DESCRIPTOR.name} {name}")
    for code in pb.Error.Code.keys():
        if code != "CODE_UNSPECIFIED" and not re.search(rf"^\| `{code}` \(\d+\) \|", doc, re.MULTILINE):
            missing.append(f"Error code {code} (a row of the errors table)")
    assert not missing, f"proto/PROTOCOL.md does not mention: {', '.join(missing)}"


_LIMIT_ROW = re.compile(r"^\|\s*`(?P<module>cadenza(?:\.\w+)+)\.(?P<name>[A-Z0-9_]+)`\s*\|\s*(?P<value>[-\d,.]+)",
                        re.MULTILINE)


def test_protocol_md_limits_are_the_codes() -> None:
    rows = list(_LIMIT_ROW.finditer(_doc()))
    assert len(rows) >= 8, "the Limits table lists the constants as | `cadenza.module.NAME` | value | ... |"
    wrong = []
    for row in rows:
        value = getattr(importlib.import_module(row["module"]), row["name"])
        written = float(row["value"].replace(",", ""))
        if float(value) != written:
            wrong.append(f"{row['module']}.{row['name']}: the guide says {row['value']}, the code {value}")
    assert not wrong, "proto/PROTOCOL.md is out of date:\n" + "\n".join(wrong)


def test_protocol_md_example_bytes_are_the_vectors() -> None:
    doc = re.sub(r"\s+", "", _doc())  # the guide may space and wrap the hex
    request = next(v for v in MANIFEST["sessions"][0]["requests"] if v["name"] == "set_parameters")
    ok = _by_name("replies")["ok"]
    for what, hexed in (("the SetParameters request", request["frames"][0]), ("the Ok reply", ok["hex"])):
        assert hexed in doc, f"PROTOCOL.md's example of {what} is not the vector's bytes ({hexed})"
