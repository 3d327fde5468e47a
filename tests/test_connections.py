"""Many idle connections: a real ``cadenza serve`` keeps answering new clients and keeps its recording.

Every TCP connection to the runtime's sockets holds a file descriptor inside
ZeroMQ. An outside tester opened 1,207 idle connections against a runtime at
the usual soft limit of 1,024 open files: new clients got no reply and a file
sink reopening its recording failed with "Too many open files". ``serve``
now raises its own soft limit (up to 65,536, never past the hard limit).
"""

from __future__ import annotations

import re
import resource
import socket
from pathlib import Path
from typing import Any

import pytest
import zmq

from server_harness import ServeProcess

IDLE = 1_300


@pytest.fixture()
def ctx() -> Any:
    c: zmq.Context[Any] = zmq.Context()
    yield c
    c.destroy(linger=0)


def _soft_nofile(pid: int) -> int:
    text = Path(f"/proc/{pid}/limits").read_text()
    m = re.search(r"^Max open files\s+(\d+)", text, re.M)
    assert m, text
    return int(m.group(1))


def test_a_thousand_idle_connections_leave_room_for_new_clients(tmp_path: Path, ctx: zmq.Context[Any]) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + 200
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"the hard limit on open files is {hard}, under the {need} this test needs")
    server = ServeProcess(["--prompt", "ambient"], tmp_path)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1_024, hard))  # the runtime starts at the usual soft limit …
    try:
        server.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))  # … this process needs more
    assert server.proc is not None  # started above, under the lowered limit
    try:
        assert _soft_nofile(server.proc.pid) >= need, "serve did not raise its soft limit on open files"
        host, port = server.ep.control.removeprefix("tcp://").rsplit(":", 1)
        idle = []
        try:
            for _ in range(IDLE):
                s = socket.create_connection((host, int(port)), timeout=5)
                idle.append(s)
            c = server.control(ctx)
            assert c.status().playing  # a new client is answered with 1,300 idle connections open
            c.close()
        finally:
            for s in idle:
                s.close()
    finally:
        server.kill()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
