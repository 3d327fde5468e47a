"""Replay the manifest's request vectors against a live runtime and say, per vector, whether it answered right.

For each session: one DEALER connects to the control endpoint, sends each
vector's frames as one message, waits for the one reply (or for silence, when
the vector expects none), decodes it with :mod:`cadenza.proto.wire` and matches
its Envelope JSON against the vector's pattern. A failure prints the
difference, field by field. With ``events=`` it also listens to the events
socket and checks what arrives: every event decodes, sequence numbers climb
by one per topic, and ``mix`` and ``status`` come at their documented rates.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq

from cadenza.errors import ProtocolError
from cadenza.proto import wire
from cadenza.proto.vectors import envelope_json, frame_bytes, match

__all__ = ["MIX_HZ", "STATUS_HZ", "Curve", "Result", "Unreachable", "check_events", "check_state_change", "replay_session", "report"]

#: The documented event rates (PROTOCOL.md, "Events"): mix 10 per second, status once a second (stream time).
MIX_HZ = 10.0
STATUS_HZ = 1.0


@dataclass
class Result:
    """One vector's outcome: ``diffs`` is empty when it passed."""

    session: str
    name: str
    diffs: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.diffs


class Unreachable(ProtocolError):
    """Nothing answered on the control endpoint."""


def reply_json(data: bytes) -> dict[str, Any]:
    """A reply frame → its Envelope JSON (defaults printed); raises :class:`wire.WireError` if it does not decode."""
    reply = wire.decode_reply(data)
    return {"protocol_version": wire.PROTOCOL_VERSION, "request_id": str(reply.request_id),
            reply.kind.value: envelope_json(reply.body)}


Curve = tuple[bytes, bytes, bytes]  # (server public key, client public key, client secret key), z85


def _socket(ctx: zmq.Context[Any], kind: int, curve: Curve | None) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        server_public, public, secret = curve
        sock.setsockopt(zmq.CURVE_SERVERKEY, server_public)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    return sock


def replay_session(control: str, session: Mapping[str, Any], *, timeout: float = 5.0,
                   silence: float = 1.0, only: Iterable[str] = (), curve: Curve | None = None,
                   ctx: zmq.Context[Any] | None = None) -> list[Result]:
    """Run ``session``'s requests in order on one DEALER; one :class:`Result` per vector.

    ``timeout``: how long to wait for a reply; ``silence``: how long a vector
    that expects no reply listens. ``only``: run just these vector names
    (the session's state then differs from a full run; patterns may not hold).
    ``curve``: CurveZMQ keys for a runtime with ``--curve-secret-key``.
    Raises :class:`Unreachable` when the first vector gets no reply.
    """
    wanted = set(only)
    own = ctx is None
    context: zmq.Context[Any] = zmq.Context() if ctx is None else ctx
    sock = _socket(context, zmq.DEALER, curve)
    sock.connect(control)
    results: list[Result] = []
    answered = False
    try:
        for vector in session["requests"]:
            if wanted and vector["name"] not in wanted:
                continue
            result = Result(str(session["name"]), str(vector["name"]))
            t0 = time.monotonic()
            expect = vector["expect"]
            sock.send_multipart([frame_bytes(f) for f in vector["frames"]])
            wait = timeout if expect.get("reply") == "one" else silence
            got = sock.poll(int(wait * 1000), zmq.POLLIN)
            if expect.get("reply") == "none":
                if got:
                    frames = sock.recv_multipart()
                    result.diffs.append(f"expected no reply, got {len(frames)} frame(s): {_describe(frames)}")
            elif not got:
                if not answered:
                    raise Unreachable(f"no reply to {vector['name']!r} within {timeout:g} s from {control} (is "
                                      "`cadenza serve` running there, with this session's serve_args?)")
                result.diffs.append(f"no reply within {timeout:g} s")
            else:
                answered = True
                frames = sock.recv_multipart()
                if expect.get("delimiter"):  # the answer to a REQ-style [empty, envelope]
                    if len(frames) == 2 and frames[0] == b"":
                        frames = frames[1:]
                    else:
                        result.diffs.append(f"expected [empty frame, reply], got {len(frames)} frame(s) "
                                            f"{[len(f) for f in frames]} bytes: {_describe(frames)}")
                        frames = []
                if len(frames) != 1:
                    if frames:
                        result.diffs.append(f"a reply is one frame, got {len(frames)}: {_describe(frames)}")
                else:
                    try:
                        actual = reply_json(frames[0])
                    except wire.WireError as exc:
                        result.diffs.append(f"the reply does not decode: {exc}")
                    else:
                        result.diffs.extend(match(expect["envelope"], actual))
            result.seconds = time.monotonic() - t0
            results.append(result)
    finally:
        sock.close(0)
        if own:
            context.term()
    return results


def _describe(frames: list[bytes]) -> str:
    out = []
    for f in frames:
        try:
            out.append(str(reply_json(f)))
        except wire.WireError:
            out.append(f.hex()[:64])
    return "; ".join(out)[:400]


def check_events(endpoint: str, seconds: float, *, curve: Curve | None = None,
                 ctx: zmq.Context[Any] | None = None) -> list[Result]:
    """Listen ``seconds`` to the events socket; results for decoding, sequences and the mix/status rates."""
    own = ctx is None
    context: zmq.Context[Any] = zmq.Context() if ctx is None else ctx
    sock = _socket(context, zmq.SUB, curve)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    bad: list[str] = []
    gaps: list[str] = []
    last: dict[str, int] = {}
    times: dict[str, list[int]] = defaultdict(list)
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000), zmq.POLLIN):
                continue
            frames = sock.recv_multipart()
            try:
                ev = wire.decode_event(frames)
            except wire.WireError as exc:
                bad.append(str(exc))
                continue
            topic = ev.topic.value
            if topic in last and ev.sequence != last[topic] + 1:
                gaps.append(f"{topic}: sequence {last[topic]} then {ev.sequence}")
            last[topic] = ev.sequence
            times[topic].append(ev.stream_time)
    finally:
        sock.close(0)
        if own:
            context.term()
    results = [Result("events", "decode", [f"an event does not decode: {b}" for b in bad[:5]]),
               Result("events", "sequences", gaps[:5])]
    for topic, hz in (("mix", MIX_HZ), ("status", STATUS_HZ)):
        r = Result("events", f"{topic}.rate")
        stamps = times.get(topic, [])
        if len(stamps) < 3:
            r.diffs.append(f"{len(stamps)} {topic} events in {seconds:g} s; expected about {hz * seconds:g}")
        else:
            span = (stamps[-1] - stamps[0]) / wire.DEFAULT_SAMPLE_RATE
            rate = (len(stamps) - 1) / span if span > 0 else float("inf")
            if not 0.7 * hz <= rate <= 1.3 * hz:
                r.diffs.append(f"{topic} at {rate:.2f} per second of stream time; documented {hz:g}")
        results.append(r)
    return results


def check_state_change(control: str, events: str, *, timeout: float = 20.0, curve: Curve | None = None,
                       ctx: zmq.Context[Any] | None = None) -> list[Result]:
    """SetState to another state of the loaded graph, then check its timing on the events socket.

    ``Ok.stream_time`` is the sample the change will be heard from; the
    ``state`` events for it say ``SCHEDULED`` (when quantized to a later
    beat or bar) and ``STARTED`` at exactly that sample, then ``COMPLETED``
    ``fade_seconds`` later (within one 10 ms block). No result when the graph
    has fewer than two states.
    """
    from cadenza.proto import cadenza_v1_pb2 as pb

    own = ctx is None
    context: zmq.Context[Any] = zmq.Context() if ctx is None else ctx
    sub = _socket(context, zmq.SUB, curve)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"state")
    sub.connect(events)
    dealer = _socket(context, zmq.DEALER, curve)
    dealer.connect(control)
    result = Result("live", "state_change")
    rid = 1

    def ask(body: wire.RequestBody) -> wire.DecodedReply | None:
        nonlocal rid
        rid += 1
        dealer.send(wire.encode_request(body, rid))
        if not dealer.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return wire.decode_reply(dealer.recv())

    try:
        described = ask(pb.DescribeGraph())
        if described is None or not isinstance(described.body, pb.GraphDescription):
            result.diffs.append(f"DescribeGraph: expected a GraphDescription, got {described}")
            return [result]
        others = [st.name for st in described.body.states if st.name != described.body.state]
        if not others:
            return []
        time.sleep(0.3)  # the subscription reaches the runtime
        target = others[0]
        t0 = time.monotonic()
        answer = ask(pb.SetState(name=target))
        if answer is None or not isinstance(answer.body, pb.Ok) or not answer.body.HasField("stream_time"):
            result.diffs.append(f"SetState {target!r}: expected Ok with stream_time, got {answer}")
            return [result]
        at = answer.body.stream_time
        seen: dict[str, wire.DecodedEvent] = {}
        while "COMPLETED" not in seen and time.monotonic() - t0 < timeout:
            if not sub.poll(100, zmq.POLLIN):
                continue
            ev = wire.decode_event(sub.recv_multipart())
            payload: Any = ev.payload
            if payload.name == target:
                seen[pb.StateChange.Phase.Name(payload.phase)] = ev
        for phase in ("STARTED", "COMPLETED"):
            if phase not in seen:
                result.diffs.append(f"no {phase} state event for {target!r} within {timeout:g} s "
                                    f"(saw {sorted(seen)})")
        for phase in ("SCHEDULED", "STARTED"):
            if phase in seen and seen[phase].stream_time != at:
                result.diffs.append(f"{phase} at sample {seen[phase].stream_time}, but Ok.stream_time said {at}")
        if "COMPLETED" in seen and "STARTED" in seen:
            fade: Any = seen["STARTED"].payload
            due = at + round(fade.fade_seconds * wire.DEFAULT_SAMPLE_RATE)
            if abs(seen["COMPLETED"].stream_time - due) > 480:
                result.diffs.append(f"COMPLETED at sample {seen['COMPLETED'].stream_time}; the {fade.fade_seconds:g} "
                                    f"s fade from {at} ends at {due}")
    finally:
        sub.close(0)
        dealer.close(0)
        if own:
            context.term()
    return [result]


def report(results: Iterable[Result], say: Callable[[str], None] = print) -> tuple[int, int]:
    """Print PASS/FAIL lines with the differences; returns (passed, failed)."""
    passed = failed = 0
    for r in results:
        if r.passed:
            passed += 1
            say(f"PASS  {r.session}/{r.name}")
        else:
            failed += 1
            say(f"FAIL  {r.session}/{r.name}")
            for d in r.diffs:
                say(f"        {d}")
    return passed, failed
