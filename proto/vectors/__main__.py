"""``python -m cadenza.proto.vectors``: regenerate, check, list or replay the conformance vectors."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from cadenza.proto.vectors import MANIFEST, load_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cadenza.proto.vectors",
                                     description="Cadenza conformance vectors (proto/vectors/manifest.json)")
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="rewrite the manifest from its definitions (deterministic)")
    g.add_argument("--check", action="store_true", help="only check: exit 1 when the committed manifest is stale")
    g.add_argument("--manifest", type=Path, default=MANIFEST, help="where the manifest is (default: the package's)")
    ls = sub.add_parser("list", help="list the sessions and their vectors")
    ls.add_argument("--manifest", type=Path, default=MANIFEST)
    r = sub.add_parser("replay", help="replay a session's requests against a live runtime; PASS/FAIL per vector")
    r.add_argument("--control", default="tcp://127.0.0.1:5555", help="the runtime's control endpoint")
    r.add_argument("--session", default="action_game",
                   help="which session (start the runtime with its serve_args; `list` shows them)")
    r.add_argument("--only", action="append", default=[], metavar="NAME", help="replay only this vector (repeatable)")
    r.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply (default 5)")
    r.add_argument("--events", metavar="ENDPOINT", help="also check the events socket (decoding, sequences, rates) and a SetState's timing")
    r.add_argument("--listen", type=float, default=3.0, help="seconds to listen with --events (default 3)")
    r.add_argument("--server-key", metavar="KEY", help="CurveZMQ: the runtime's public key (z85, or a .pub file)")
    r.add_argument("--client-key", metavar="FILE", help="CurveZMQ: this client's secret key file (`cadenza keys`)")
    r.add_argument("--manifest", type=Path, default=MANIFEST)
    args = parser.parse_args(argv)

    if args.command == "generate":
        from cadenza.proto.vectors.generate import check, write

        if args.check:
            return 0 if check(args.manifest) else 1
        print(f"wrote {write(args.manifest)}")
        return 0
    try:
        manifest = load_manifest(args.manifest)
    except (OSError, ValueError) as exc:
        print(f"cadenza vectors: {exc}", file=sys.stderr)
        return 2
    sessions = {s["name"]: s for s in manifest["sessions"]}
    if args.command == "list":
        for s in manifest["sessions"]:
            print(f"{s['name']}: cadenza serve {' '.join(s['serve_args'])}  ({len(s['requests'])} vectors)")
            for v in s["requests"]:
                print(f"  {v['name']}")
        return 0
    from cadenza.proto.vectors.replay import Unreachable, check_events, check_state_change, replay_session, report

    session = sessions.get(args.session)
    if session is None:
        print(f"cadenza vectors: unknown session {args.session!r}; sessions: {', '.join(sessions)}", file=sys.stderr)
        return 2
    try:
        curve = _curve(args.server_key, args.client_key)
    except (OSError, ValueError) as exc:
        print(f"cadenza vectors: {exc}", file=sys.stderr)
        return 2
    try:
        results = replay_session(args.control, session, timeout=args.timeout, only=args.only, curve=curve)
    except Unreachable as exc:
        print(f"cadenza vectors: {exc}", file=sys.stderr)
        return 2
    if args.events:
        results += check_events(args.events, args.listen, curve=curve)
        results += check_state_change(args.control, args.events, curve=curve)
    passed, failed = report(results)
    print(f"{passed} passed, {failed} failed (session {session['name']}: cadenza serve "
          f"{' '.join(session['serve_args'])})")
    return 1 if failed else 0


def _z85_key(text: str) -> bytes | None:
    """The last 40-character z85 key in a key file: a bare line, or ``key = "…"`` (ZPL, pyzmq's key files)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        quoted = re.search(r'"([^"]{40})"', line)
        word = quoted.group(1) if quoted else line
        if len(word) == 40:
            return word.encode("ascii")
    return None


def _curve(server_key: str | None, client_key: str | None) -> tuple[bytes, bytes, bytes] | None:
    """(server public, client public, client secret) from the options; None without them."""
    import zmq

    if server_key is None and client_key is None:
        return None
    if server_key is None or client_key is None:
        raise ValueError("CurveZMQ needs both --server-key (the runtime's public key) and --client-key (this "
                         "client's secret key file)")
    server = _z85_key(Path(server_key).read_text(encoding="ascii") if Path(server_key).is_file() else server_key)
    if server is None:
        raise ValueError(f"--server-key {server_key!r}: not a 40-character z85 key, nor a file holding one")
    secret = _z85_key(Path(client_key).read_text(encoding="ascii"))
    if secret is None:
        raise ValueError(f"--client-key {client_key!r}: the file holds no 40-character z85 secret key")
    return server, zmq.curve_public(secret), secret


if __name__ == "__main__":
    sys.exit(main())
