"""Files and trust: what a client may read, and which clients may talk to the runtime.

Real ``cadenza serve`` processes on loopback, real files on disk:

- client-named files (``LoadGraph.path``, ``LoadGraph.text`` with ``base_dir``
  and the audio paths in it, ``SetPrompts.audio_path``) are read only inside
  ``--allow-dir`` folders (default: the ``--graph`` folder; with neither, none):
  a secret file outside them, ``/etc/passwd``, symlinks and ``..`` that lead
  out, a base folder outside — PERMISSION_DENIED (or GRAPH_INVALID naming the
  graph's line) with not one byte of the file in the reply, and the reply
  byte-identical whether the outside file exists or not;
- a FIFO or a device inside an allowed folder is refused at once, and another
  client is answered meanwhile;
- the SDK sends a graph file with its folder, so relative audio paths work as
  with ``serve --graph``;
- CURVE with an allow-list: a listed key controls, an unlisted key gets
  nothing (and the server keeps serving), a read-only key gets status and
  events but PERMISSION_DENIED for SetParameters; a public endpoint with CURVE
  and no allow-list is refused at start;
- ``cadenza keys`` creates the secret 0600 even under umask 0 and never
  replaces a key pair without ``--force``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import zmq

from cadenza.proto import cadenza_v1_pb2 as pb
from cadenza.proto import wire
from cadenza.sdk import AsyncClient, Client, GraphInvalid, PermissionDenied
from server_harness import EXIT_USAGE, Control, Endpoints, ServeProcess, child_env, free_ports

NO_REPLY_S = 1.5
GRAPH = """cadenza_graph: 1
name: {name}
prompts:
  calm: calm ambient pads
  hit: {{audio: {audio}}}
mix:
  - prompt: calm
  - prompt: hit
"""
PLAIN_GRAPH = "cadenza_graph: 1\nname: plain\nprompts:\n  calm: calm ambient pads\nmix:\n  - prompt: calm\n"


def code(err: Any) -> str:
    return str(pb.Error.Code.Name(err.code))


def _wav(path: Path) -> None:
    t = np.arange(48_000, dtype=np.float32) / 48_000  # 1 s: the synth embeds 0.5 s or more
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    soundfile.write(str(path), np.stack([tone, tone], axis=1), 48_000)


class Disk:
    """An allowed folder and, beside it, an outside folder holding a secret, with every way out of the first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.allowed = root / "allowed"
        self.outside = root / "outside"
        self.allowed.mkdir()
        self.outside.mkdir()
        # a distinctive secret that also breaks YAML, so a parser would quote it in its error
        self.tokens = [uuid.uuid4().hex for _ in range(3)]
        self.secret_bytes = (f"{self.tokens[0]}: [\n  {self.tokens[1]}\n: ]]{self.tokens[2]}\n").encode()
        self.secret = self.outside / "secret.env"
        self.secret.write_bytes(self.secret_bytes)
        self.stash = root / "stash"
        self.stash.mkdir()
        _wav(self.allowed / "hit.wav")
        (self.allowed / "sub").mkdir()
        (self.allowed / "sub" / "graph.yaml").write_text(GRAPH.format(name="relative-audio", audio="../hit.wav"))
        (self.allowed / "broken.yaml").write_text("cadenza_graph: 1\nname: plain\nquoted_key_inside: 1\n")
        (self.allowed / "not_audio.wav").write_text("this is not audio\n")
        # files an operator may keep beside a graph: none is a graph, none may be quoted
        self.private = {"server.key": f"{uuid.uuid4().hex[:40]}\n", ".env": f"API_TOKEN={uuid.uuid4().hex}\n",
                        "notes.txt": f"the door code is {uuid.uuid4().hex}\n"}
        for name, text in self.private.items():
            (self.allowed / name).write_text(text)
        # graphs in the allowed folder whose audio leads out of it
        (self.allowed / "refs_out_absolute.yaml").write_text(GRAPH.format(name="x", audio=f'"{self.secret}"'))
        (self.allowed / "refs_out_relative.yaml").write_text(GRAPH.format(name="x", audio="../outside/secret.env"))
        (self.allowed / "refs_out_link.yaml").write_text(GRAPH.format(name="x", audio="link_to_secret"))
        os.symlink(self.secret, self.allowed / "link_to_secret")
        os.symlink(self.outside, self.allowed / "link_to_outside")
        os.symlink("/dev/zero", self.allowed / "link_to_zero")
        os.mkfifo(self.allowed / "fifo")
        os.mkfifo(self.outside / "pipe")

    def hide(self) -> None:
        """Make the outside secret (and the outside FIFO) not exist."""
        self.secret.rename(self.stash / "secret.env")
        (self.outside / "pipe").unlink()

    def restore(self) -> None:
        (self.stash / "secret.env").rename(self.secret)
        os.mkfifo(self.outside / "pipe")

    def leaks(self, data: bytes) -> list[bytes]:
        """Every 8-byte run of the secret file's tokens found in ``data``."""
        found = []
        for token in self.tokens:
            raw = token.encode()
            found += [raw[i:i + 8] for i in range(len(raw) - 7) if raw[i:i + 8] in data]
        return found


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Disk:
    return Disk(tmp_path_factory.mktemp("trust"))


@pytest.fixture(scope="module")
def runtime(disk: Disk, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """Allowed: the allowed folder and /dev (so a device is inside an allowed folder, and refused as one)."""
    with ServeProcess(["--prompt", "ambient", "--allow-dir", str(disk.allowed), "--allow-dir", "/dev"],
                      tmp_path_factory.mktemp("serve")) as server:
        yield server


def raw_request(c: Control, body: wire.RequestBody, request_id: int, timeout: float = 10.0) -> bytes:
    c.sock.send(wire.encode_request(body, request_id))
    assert c.sock.poll(int(timeout * 1000)), f"no reply to {wire.request_kind(body)} within {timeout} s"
    return c.sock.recv()


# every way a request can name a file outside the allowed folders: (what, request builder, expected code)
def _outside_requests(d: Disk) -> list[tuple[str, Callable[[], wire.RequestBody], str]]:
    a, o = d.allowed, d.outside
    names = {
        "absolute": str(d.secret),
        "dotdot": f"{a}/../outside/secret.env",
        "dotdot from a subfolder": f"{a}/sub/../../outside/secret.env",
        "symlink to the file": str(a / "link_to_secret"),
        "through a symlinked folder": str(a / "link_to_outside" / "secret.env"),
        "a FIFO outside": str(o / "pipe"),
    }
    out: list[tuple[str, Callable[[], wire.RequestBody], str]] = []
    for what, name in names.items():
        out.append((f"LoadGraph.path, {what}", lambda n=name: pb.LoadGraph(path=n), "PERMISSION_DENIED"))  # type: ignore[misc]
        out.append((f"SetPrompts.audio_path, {what}",
                    lambda n=name: pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=n)]),  # type: ignore[misc]
                    "PERMISSION_DENIED"))
        out.append((f"LoadGraph.text with an audio path, {what}",
                    lambda n=name: pb.LoadGraph(text=GRAPH.format(name="x", audio=f'"{n}"'),  # type: ignore[misc]
                                                base_dir=str(a)), "GRAPH_INVALID"))
    out += [(f"LoadGraph.path of a graph in the allowed folder, {name}",
             lambda n=name: pb.LoadGraph(path=str(a / n)), "GRAPH_INVALID")  # type: ignore[misc]
            for name in ("refs_out_absolute.yaml", "refs_out_relative.yaml", "refs_out_link.yaml")]
    out += [
        ("LoadGraph.text, relative audio, base_dir outside",
         lambda: pb.LoadGraph(text=GRAPH.format(name="x", audio="secret.env"), base_dir=str(o)), "GRAPH_INVALID"),
        ("LoadGraph.text, relative audio climbing out of base_dir",
         lambda: pb.LoadGraph(text=GRAPH.format(name="x", audio="../outside/secret.env"), base_dir=str(a)),
         "GRAPH_INVALID"),
        ("LoadGraph.text, relative audio through a symlinked folder",
         lambda: pb.LoadGraph(text=GRAPH.format(name="x", audio="link_to_outside/secret.env"), base_dir=str(a)),
         "GRAPH_INVALID"),
    ]
    return out


def test_no_request_reads_a_file_outside_the_allowed_folders_or_tells_whether_it_exists(
        runtime: ServeProcess, disk: Disk, ctx: zmq.Context[Any]) -> None:
    c = runtime.control(ctx)
    cases = _outside_requests(disk)
    present: dict[str, bytes] = {}
    for i, (what, build, expected) in enumerate(cases):
        data = raw_request(c, build(), 1000 + i)
        reply = wire.decode_reply(data)
        assert isinstance(reply.body, pb.Error), f"{what}: {reply.kind} {reply.body}"
        assert code(reply.body) == expected, f"{what}: {reply.body}"
        assert "outside the folders" in reply.body.message and "--allow-dir" in reply.body.message, reply.body
        assert not disk.leaks(data), f"{what}: the reply quotes the secret file: {reply.body.message}"
        present[what] = data
    disk.hide()
    try:
        for i, (what, build, _) in enumerate(cases):
            data = raw_request(c, build(), 1000 + i)
            assert data == present[what], (f"{what}: the reply differs when the outside file does not exist:\n"
                                           f"{wire.decode_reply(present[what]).body}\nvs\n{wire.decode_reply(data).body}")
    finally:
        disk.restore()
    assert c.status().server.backend == "synth"  # still serving
    c.close()


@pytest.mark.parametrize("name", ["/etc/passwd", "/etc/shadow", "/proc/self/environ", "../../../../etc/passwd"])
def test_system_files_are_refused_without_their_contents(runtime: ServeProcess, disk: Disk, ctx: zmq.Context[Any],
                                                         name: str) -> None:
    c = runtime.control(ctx)
    passwd = Path("/etc/passwd").read_bytes()
    first = passwd.split(b"\n")[0]
    for body in (pb.LoadGraph(path=name), pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=name)]),
                 pb.LoadGraph(text=GRAPH.format(name="x", audio=f'"{name}"'), base_dir=str(disk.allowed))):
        data = raw_request(c, body, 7)
        err = wire.decode_reply(data).body
        assert isinstance(err, pb.Error) and code(err) in ("PERMISSION_DENIED", "GRAPH_INVALID"), err
        assert first not in data and b"root:" not in data, err
        assert b"PATH=" not in data and b"HOME=" not in data, err  # /proc/self/environ
    c.close()


def test_files_beside_a_graph_that_are_no_graph_are_never_quoted(runtime: ServeProcess, disk: Disk,
                                                                   ctx: zmq.Context[Any]) -> None:
    c = runtime.control(ctx)
    for name, text in disk.private.items():
        for body in (pb.LoadGraph(path=str(disk.allowed / name)),
                     pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=str(disk.allowed / name))]),
                     pb.LoadGraph(text=GRAPH.format(name="x", audio=name), base_dir=str(disk.allowed))):
            data = raw_request(c, body, 3)
            err = wire.decode_reply(data).body
            assert isinstance(err, pb.Error) and code(err) in ("GRAPH_INVALID", "BAD_VALUE"), err
            secret = text.strip().split()[-1].split("=")[-1].encode()
            assert not any(secret[i:i + 8] in data for i in range(len(secret) - 7)), f"{name} quoted: {err}"
        err = c.error(pb.LoadGraph(path=str(disk.allowed / name)))
        assert err.field == f"{disk.allowed / name}:1" and "not a style graph" in err.message, err
    c.close()


def test_relative_names_without_a_folder_are_refused(runtime: ServeProcess, ctx: zmq.Context[Any]) -> None:
    c = runtime.control(ctx)
    err = c.error(pb.LoadGraph(path="graph.yaml"))
    assert code(err) == "PERMISSION_DENIED" and err.field == "load_graph.path" and "relative" in err.message
    err = c.error(pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path="hit.wav")]))
    assert code(err) == "PERMISSION_DENIED" and err.field == "set_prompts.prompts[0].audio_path"
    err = c.error(pb.LoadGraph(text=GRAPH.format(name="x", audio="hit.wav")))  # no base_dir
    assert code(err) == "GRAPH_INVALID" and err.field == "<load_graph>:5 prompts.hit.audio", err
    assert "relative path with no folder" in err.message and "base_dir" in err.message
    err = c.error(pb.LoadGraph(text=GRAPH.format(name="x", audio="hit.wav"), base_dir="allowed"))
    assert code(err) == "BAD_VALUE" and err.field == "load_graph.base_dir" and "absolute" in err.message
    c.close()


def test_fifos_and_devices_inside_allowed_folders_are_refused_at_once(
        runtime: ServeProcess, disk: Disk, ctx: zmq.Context[Any]) -> None:
    a = disk.allowed
    c, other = runtime.control(ctx), runtime.control(ctx)
    for body, expected, words in [
        (pb.LoadGraph(path=str(a / "fifo")), "GRAPH_INVALID", "a FIFO"),
        (pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=str(a / "fifo"))]), "BAD_VALUE", "a FIFO"),
        (pb.LoadGraph(text=GRAPH.format(name="x", audio="fifo"), base_dir=str(a)), "GRAPH_INVALID", "a FIFO"),
        (pb.LoadGraph(path="/dev/zero"), "GRAPH_INVALID", "a device"),
        (pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path="/dev/zero")]), "BAD_VALUE", "a device"),
        (pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path="/dev/urandom")]), "BAD_VALUE", "a device"),
        (pb.LoadGraph(text=GRAPH.format(name="x", audio="link_to_zero"), base_dir=str(a)), "GRAPH_INVALID",
         "a device"),
        (pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=str(a))]), "BAD_VALUE", "a folder"),
    ]:
        t0 = time.monotonic()
        rid = c.send(body)
        other.send(pb.GetStatus())  # another client, right behind it
        st = other.recv(5.0)
        reply = c.recv(5.0)
        took = time.monotonic() - t0
        assert st is not None and st.kind == wire.ReplyKind.STATUS, f"{body}: another client was not answered"
        assert reply is not None and reply.request_id == rid, f"{body}: no reply"
        assert isinstance(reply.body, pb.Error) and code(reply.body) == expected, reply.body
        assert words in reply.body.message, reply.body
        assert took < 3.0, f"{body}: {took:.2f} s"
    assert c.status().playing
    c.close()
    other.close()


def test_files_inside_allowed_folders_load_and_their_errors_may_quote_them(
        runtime: ServeProcess, disk: Disk, ctx: zmq.Context[Any]) -> None:
    a = disk.allowed
    c = runtime.control(ctx)
    c.ok(pb.LoadGraph(path=str(a / "sub" / "graph.yaml")))  # ../hit.wav: relative to the graph's own folder
    assert c.status().graph_name == "relative-audio"
    c.ok(pb.LoadGraph(text=GRAPH.format(name="from-text", audio="hit.wav"), base_dir=str(a)))
    assert c.status().graph_name == "from-text"
    c.ok(pb.LoadGraph(text=GRAPH.format(name="absolute-audio", audio=f'"{a}/sub/../hit.wav"')))
    c.ok(pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=str(a / "hit.wav")),
                                pb.WeightedPrompt(text="calm pads")]))
    # a base_dir outside matters only to the relative audio paths it would resolve: none here
    c.ok(pb.LoadGraph(text=PLAIN_GRAPH, base_dir=str(disk.outside)))
    err = c.error(pb.LoadGraph(path=str(a / "broken.yaml")))
    assert code(err) == "GRAPH_INVALID" and f"{a / 'broken.yaml'}:3" in err.message, err
    assert "quoted_key_inside" in err.message  # the operator allowed the folder: its graph may be quoted
    err = c.error(pb.LoadGraph(path=str(a / "missing.yaml")))
    assert code(err) == "GRAPH_INVALID" and "not found" in err.message
    err = c.error(pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=str(a / "not_audio.wav"))]))
    assert code(err) == "BAD_VALUE" and "not an audio file" in err.message
    assert "this is not audio" not in err.message
    c.close()


def test_the_sdk_sends_a_graph_file_with_its_folder(runtime: ServeProcess, disk: Disk) -> None:
    graph = disk.allowed / "sub" / "graph.yaml"
    with Client(runtime.ep.local("control"), runtime.ep.local("events"), heartbeat=0, timeout=10) as client:
        client.load_graph(graph)  # relative audio "../hit.wav" resolves as with serve --graph
        assert client.status().graph_name == "relative-audio"
        client.load_graph(str(disk.allowed / "sub" / ".." / "sub" / "graph.yaml"))
        # the same graph in a folder the runtime does not allow: its audio is refused, by file:line
        elsewhere = disk.root / "elsewhere"
        elsewhere.mkdir(exist_ok=True)
        shutil.copy(graph, elsewhere / "graph.yaml")
        shutil.copy(disk.allowed / "hit.wav", disk.root / "hit.wav")
        with pytest.raises(GraphInvalid) as info:
            client.load_graph(elsewhere / "graph.yaml")
        assert str(elsewhere / "graph.yaml") in str(info.value) and "outside the folders" in str(info.value)

    async def main() -> str:
        async with AsyncClient(runtime.ep.local("control"), runtime.ep.local("events"), heartbeat=0,
                               timeout=10) as aclient:
            await aclient.load_graph(graph)
            return (await aclient.status()).graph_name

    assert asyncio.run(main()) == "relative-audio"


def test_an_allowed_folder_must_exist(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "cadenza", "serve", "--sink", "null", "--allow-dir",
                           str(tmp_path / "nope")], capture_output=True, text=True, timeout=60, env=child_env(),
                          cwd=tmp_path)
    assert done.returncode == EXIT_USAGE and "--allow-dir" in done.stderr and "nope" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


# ============================================================================ local clients


IPC_CLIENT = """
import sys, zmq
from cadenza.proto import cadenza_v1_pb2 as pb, wire
sock = zmq.Context().socket(zmq.DEALER)
sock.linger = 0
sock.connect(sys.argv[1])
sock.send(wire.encode_request(pb.GetStatus(), 1))
print("reply" if sock.poll(int(float(sys.argv[2]) * 1000)) else "no reply")
"""


OTHER_USER = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("denied")
else:
    print("connected")
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="switching to another user needs root and setpriv")
def test_an_ipc_endpoint_in_a_private_folder_shuts_out_other_users(tmp_path: Path, disk: Disk,
                                                                    ctx: zmq.Context[Any]) -> None:
    """The README's advice for local trust; also: with no --allow-dir and no --graph, no client file is read."""
    run = Path(f"/tmp/cadenza-trust-{uuid.uuid4().hex[:8]}")  # short: a Unix socket path has ~100 bytes
    run.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o755)
    try:
        server = ServeProcess(["--prompt", "ambient", "--sink", "null", "--control", f"ipc://{run}/control",
                               "--events", f"ipc://{run}/events", "--audio", "none"], tmp_path, endpoints=False)
        with server:
            c = Control(ctx, f"ipc://{run}/control")
            assert c.status().playing
            err = c.error(pb.LoadGraph(path=str(disk.allowed / "sub" / "graph.yaml")))
            assert code(err) == "PERMISSION_DENIED" and "no folder is allowed" in err.message, err
            c.close()

            def client_as(*prefix: str) -> str:
                done = subprocess.run([*prefix, sys.executable, "-c", IPC_CLIENT, f"ipc://{run}/control", "2"],
                                      capture_output=True, text=True, timeout=60, env=child_env(), cwd="/")
                assert done.returncode == 0, done.stderr
                return done.stdout.strip()

            assert client_as() == "reply"
            # the other user connects with the stdlib alone (the repo's .venv may lie in a folder only its owner
            # can read: a clone in `mktemp -d`): the kernel refuses the socket before any ZeroMQ is involved
            base = shutil.which("python3", path="/usr/bin:/bin") or os.path.realpath(sys.executable)
            done = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", base, "-I", "-c",
                                   OTHER_USER, f"{run}/control"], capture_output=True, text=True, timeout=60, cwd="/")
            assert done.stdout.strip() == "denied", (done.stdout, done.stderr)
    finally:
        shutil.rmtree(run, ignore_errors=True)


# ============================================================================ CURVE


def _keys(folder: Path, name: str) -> tuple[bytes, bytes]:
    done = subprocess.run([sys.executable, "-m", "cadenza", "keys", str(folder), "--name", name],
                          capture_output=True, text=True, timeout=60, env=child_env())
    assert done.returncode == 0, done.stderr
    return ((folder / f"{name}.pub").read_text().strip().encode(), (folder / f"{name}.key").read_text().strip().encode())


def test_curve_allow_list_and_read_only_clients(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    server_dir, clients, readonly, own = (tmp_path / n for n in ("server", "clients", "readonly", "own"))
    for d in (clients, readonly, own):
        d.mkdir()
    server_public, server_secret = _keys(server_dir, "server")
    alice = _keys(own, "alice")
    bob = _keys(own, "bob")
    shutil.copy(own / "alice.pub", clients / "alice.pub")
    shutil.copy(own / "bob.pub", readonly / "bob.pub")
    # a pyzmq certificate (public-key = "…") is accepted as well
    carol_public, carol_secret = zmq.curve_keypair()
    (clients / "carol.key").write_text(f'metadata\ncurve\n    public-key = "{carol_public.decode()}"\n')
    graph_dir = tmp_path / "graphs"
    graph_dir.mkdir()
    (graph_dir / "plain.yaml").write_text(PLAIN_GRAPH)

    server = ServeProcess(["--graph", str(graph_dir / "plain.yaml"), "--curve-secret-key",
                           str(server_dir / "server.key"), "--curve-clients", str(clients),
                           "--curve-readonly", str(readonly)], tmp_path)
    ports = free_ports(3)
    server.ep = Endpoints(*(f"tcp://0.0.0.0:{p}" for p in ports))  # public: needs the allow-list
    with server:
        def control(pair: tuple[bytes, bytes]) -> Control:
            return Control(ctx, server.ep.local("control"), curve=(server_public, pair[0], pair[1]))

        a = control(alice)
        assert a.request(pb.Hello(client_name="alice")).kind == wire.ReplyKind.STATUS
        a.ok(pb.SetPrompts(prompts=[pb.WeightedPrompt(text="dark techno")]))
        a.ok(pb.LoadGraph(path=str(graph_dir / "plain.yaml")))  # default allowed folder: the --graph one
        err = a.error(pb.LoadGraph(path=str(server_dir / "server.key")))  # the server's own secret key
        assert code(err) == "PERMISSION_DENIED" and server_secret not in err.SerializeToString()
        c = control((carol_public, carol_secret))
        assert c.status().playing

        mallory = control(zmq.curve_keypair())  # a fresh key pair on no list
        mallory.send(pb.Hello(client_name="mallory"))
        mallory.send(pb.Transport(action=pb.Transport.STOP))
        assert mallory.recv(NO_REPLY_S) is None, "a client whose key is on no allow-list got a reply"
        spy = server.events(ctx, ["status"], curve=(server_public, *zmq.curve_keypair()))
        assert spy.recv_event(NO_REPLY_S) is None, "a subscriber whose key is on no allow-list got events"
        assert a.status().playing, "the unlisted client stopped the music"

        b = control(bob)
        st = b.status()
        assert st.playing and st.graph_name == "plain"
        assert b.request(pb.Hello(client_name="bob")).kind == wire.ReplyKind.STATUS
        assert b.request(pb.DescribeGraph()).kind == wire.ReplyKind.GRAPH_DESCRIPTION  # read-only may describe
        for body in (pb.SetParameters(values=[pb.ParameterUpdate(name="intensity", number=0.5)]),
                     pb.Transport(action=pb.Transport.STOP), pb.LoadGraph(text=PLAIN_GRAPH),
                     pb.SetPrompts(prompts=[pb.WeightedPrompt(text="x")])):
            err = b.error(body)
            assert code(err) == "PERMISSION_DENIED" and "read-only" in err.message and "bob.pub" in err.message, err
        events = server.events(ctx, ["status"], curve=(server_public, *bob))
        assert events.recv_event(5) is not None, "a read-only client gets events"
        with Client(server.ep.local("control"), server.ep.local("events"), heartbeat=0, timeout=10,
                    server_public_key=server_public, client_public_key=bob[0], client_secret_key=bob[1]) as sdk:
            assert sdk.status().graph_name == "plain"
            with pytest.raises(PermissionDenied, match="read-only"):
                sdk.set(intensity=0.5)
        assert a.status().playing

        # a key added to the folder while the runtime runs is let in
        late = zmq.curve_keypair()
        (clients / "late.pub").write_text(late[0].decode() + "\n")
        time.sleep(1.2)
        assert control(late).status().playing
        assert "refused a CURVE client" in server.stderr_text
        for s in (a, b, c, mallory):
            s.close()


def test_curve_on_a_public_endpoint_needs_an_allow_list(tmp_path: Path) -> None:
    _keys(tmp_path, "server")
    ep = Endpoints.fresh("0.0.0.0")
    argv = [sys.executable, "-m", "cadenza", "serve", "--sink", "null", "--prompt", "ambient",
            "--curve-secret-key", str(tmp_path / "server.key"), "--control", ep.control, "--events", ep.events,
            "--audio", ep.audio]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=child_env(), cwd=tmp_path)
    assert done.returncode == EXIT_USAGE, done
    assert "--curve-clients" in done.stderr and "--curve-any-client" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "ready" not in done.stdout
    # a client folder holding a secret key is refused at start, naming the file
    (tmp_path / "clients").mkdir()
    shutil.copy(tmp_path / "server.key", tmp_path / "clients" / "oops.key")
    done = subprocess.run(argv + ["--curve-clients", str(tmp_path / "clients")], capture_output=True, text=True,
                          timeout=60, env=child_env(), cwd=tmp_path)
    assert done.returncode == EXIT_USAGE and "oops.key" in done.stderr and "secret" in done.stderr, done.stderr


# ============================================================================ keys


def test_keys_creates_the_secret_0600_even_under_umask_0_and_never_overwrites(tmp_path: Path) -> None:
    folder = tmp_path / "keys"

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cadenza", "keys", str(folder), *extra], capture_output=True,
                              text=True, timeout=60, env=child_env(), umask=0)

    done = run()
    assert done.returncode == 0, done.stderr
    secret, public = folder / "server.key", folder / "server.pub"
    assert secret.stat().st_mode & 0o777 == 0o600, oct(secret.stat().st_mode)
    assert public.stat().st_mode & 0o077 != 0o077  # the public key may be shared
    assert str(public) in done.stdout and "--curve-clients" in done.stdout
    old = secret.read_bytes()
    again = run()
    assert again.returncode == EXIT_USAGE and "--force" in again.stderr and secret.read_bytes() == old
    forced = run("--force")
    assert forced.returncode == 0, forced.stderr
    assert secret.read_bytes() != old and secret.stat().st_mode & 0o777 == 0o600
    # a symlink planted where the secret goes is not followed (the key is not written through it)
    target = tmp_path / "elsewhere"
    os.symlink(target, folder / "planted.key")
    planted = run("--name", "planted")
    assert planted.returncode == EXIT_USAGE and not target.exists()


class _Swapper:
    """Renames a name in an allowed folder back and forth between a real WAV and a symlink that leads out (the
    race an outside tester won: check by name, then open by name)."""

    def __init__(self, folder: Path, target: Path) -> None:
        import threading

        self.name = folder / "race.wav"
        self.real = folder / ".race-real.wav"
        self.link = folder / ".race-link.wav"
        _wav(self.real)
        shutil.copy(self.real, self.name)
        os.symlink(target, self.link)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        spare_real, spare_link = self.real.with_suffix(".r2"), self.link.with_suffix(".l2")
        shutil.copy(self.real, spare_real)
        os.symlink(os.readlink(self.link), spare_link)
        while not self.stop.is_set():
            os.rename(spare_link, self.name)  # atomically: now a symlink out
            os.symlink(os.readlink(self.link), spare_link)
            os.rename(spare_real, self.name)  # now the real file again
            shutil.copy(self.real, spare_real)

    def __enter__(self) -> _Swapper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.mark.parametrize("target", ["secret", "missing", "folder", "long_wav"])
def test_a_symlink_swapped_in_during_a_read_never_leads_out(tmp_path: Path, target: str) -> None:
    """The file is opened component by component from the allowed folder, never by name: whatever the race, a read
    gives the real file's bytes or the one refusal for outside files — never the outside file, never an error that
    tells what is outside (not found, a folder, its length)."""
    from cadenza.runtime.files import FileOutside, FilePolicy

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    secret = outside / "secret.wav"
    t = np.arange(48_000 * 3, dtype=np.float32) / 48_000
    soundfile.write(str(secret), np.stack([np.sin(2 * np.pi * 1000 * t)] * 2, axis=1).astype(np.float32), 48_000)
    targets = {"secret": secret, "missing": outside / "nothing-here", "folder": outside, "long_wav": secret}
    policy = FilePolicy.of([allowed])
    with _Swapper(allowed, targets[target]) as swap:
        inside = swap.real.read_bytes()
        outcomes: dict[str, int] = {}
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                path, data = policy.read("race.wav", allowed, where="audio")
            except FileOutside as exc:
                assert "outside the folders" in exc.message, exc
                outcomes["refused"] = outcomes.get("refused", 0) + 1
                continue
            assert data == inside, "read something other than the allowed file"
            assert path == allowed / "race.wav"
            outcomes["inside"] = outcomes.get("inside", 0) + 1
    assert outcomes.get("refused", 0) > 0 and outcomes.get("inside", 0) > 0, outcomes  # the race did run


def test_the_swap_race_over_the_wire_tells_nothing_about_outside(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    long_wav = outside / "long.wav"
    soundfile.write(str(long_wav), np.zeros((48_000 * 70, 2), np.float32) + 0.1, 48_000)  # 70 s: over a stinger
    stinger_graph = ("cadenza_graph: 1\nname: race\nprompts:\n  calm: calm ambient pads\nstingers:\n"
                     "  s: {audio: race.wav}\ntriggers:\n  hit: {stinger: s}\n")
    with ServeProcess(["--prompt", "ambient", "--allow-dir", str(allowed)], tmp_path / "serve") as server, \
            _Swapper(allowed, long_wav):
        c = server.control(ctx)
        codes: dict[str, int] = {}
        for i in range(150):
            for body in (pb.SetPrompts(prompts=[pb.WeightedPrompt(audio_path=str(allowed / "race.wav"))]),
                         pb.LoadGraph(text=stinger_graph, base_dir=str(allowed))):
                reply = wire.decode_reply(raw_request(c, body, i + 1)).body
                if isinstance(reply, pb.Error):
                    key = code(reply)
                    assert key in ("PERMISSION_DENIED", "GRAPH_INVALID"), reply
                    assert "outside the folders" in reply.message, reply
                    assert "70.0 s" not in reply.message and "long.wav" not in reply.message, reply
                else:
                    key = "ok"
                codes[key] = codes.get(key, 0) + 1
        assert codes.get("ok", 0) > 0, codes
        assert c.status().playing
        c.close()
