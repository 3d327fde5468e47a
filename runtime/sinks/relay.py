"""The device relay: a fresh process that plays PCM piped to its stdin through a :class:`DeviceSink`.

(The sink's end -- starting relays, piping to them, reading their lines -- is
:mod:`cadenza.runtime.sinks.relaylink`.)

Why a process: PortAudio reads the audio servers once, at initialisation, and
its JACK host API can neither reconnect to a server that died and came back nor
be shut down to rescan (``Pa_CloseStream``/``Pa_Terminate`` wait forever on
the dead server). A :class:`DeviceSink` that lost its device therefore starts
this relay — a new process with a new PortAudio — until one opens the device
again, and pipes its audio to it::

    runtime (DeviceSink, lost)                  relay process
    ──────────────────────────                  ─────────────
    write(block) ─► os.write(stdin, nonblocking) ─► read ─► DeviceSink.write ─► device
      (waits while the pipe is full; falling         (blocks on its ring: the device paces it)
       behind real time is counted as a stall)
    check() ◄──────────── stdout lines ◄──────────── "ready DEVICE" | "error …" |
                                                      "underruns N FRAMES" | "stalls N FRAMES" | "lost …"

It registers with JACK as ``cadenza-relay-PID`` (see
``portaudio._name_jack_client``: the name of the process that lost the device
would run the server at half speed). The protocol on stdout is one line per
message, as above; the relay exits 0 when its stdin closes, 3 when the device
cannot be opened, 4 when it loses the device (then without any PortAudio
call, like the sink it serves).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from cadenza.errors import AudioError
from cadenza.runtime.audio import CHANNELS
from cadenza.runtime.sinks.device import DeviceSink
from cadenza.runtime.sinks.portaudio import set_jack_client_name

FRAME_BYTES = CHANNELS * 4  # float32 stereo
EXIT_CANNOT_OPEN = 3
EXIT_LOST = 4
#: Test hook: the relay registers with JACK under its parent's client name (``parent``) or this name instead of its
#: own -- the name clash that ran a restarted JACK server at half speed (tests/test_relay.py shows it is reported)
TEST_RELAY_NAME_ENV = "CADENZA_TEST_RELAY_JACK_NAME"


def serve(device: str | None, buffer_seconds: float) -> int:
    """Open ``device`` and play stdin into it until stdin closes; returns the exit code."""
    # a JACK client name of its own: never the name the process that started it registered (and still holds a
    # wake-up futex of, after losing its server) -- sharing it would halve the JACK server's speed
    name = f"cadenza-relay-{os.getpid()}"
    clash = os.environ.get(TEST_RELAY_NAME_ENV)  # test hook: that very clash, on purpose
    if clash:
        name = f"cadenza-{os.getppid()}" if clash == "parent" else clash
    set_jack_client_name(name)
    out = sys.stdout
    try:
        sink = DeviceSink(device, buffer_seconds=buffer_seconds, latency="low", fade_in=True)  # joins mid-music
    except AudioError as exc:
        print(f"error {exc}", file=out, flush=True)
        return EXIT_CANNOT_OPEN
    # play (silence) at once: the audio then flows through with no backlog to build up in the pipe, and the
    # first block fades in
    try:
        sink.start()
    except AudioError as exc:
        print(f"error {exc}", file=out, flush=True)
        return EXIT_CANNOT_OPEN
    print(f"ready {sink.device}", file=out, flush=True)
    stdin_fd = sys.stdin.fileno()
    pending = b""
    told = (0, 0)
    while True:
        data = os.read(stdin_fd, 65536)  # what is there (blocking until something is)
        if not data:
            break
        data = pending + data
        usable = len(data) - len(data) % FRAME_BYTES
        pending = data[usable:]
        if usable:
            sink.write(np.frombuffer(data[:usable], dtype=np.float32).reshape(-1, CHANNELS))
        if sink.check() is not None:
            print(f"lost {sink.lost}", file=out, flush=True)
            os._exit(EXIT_LOST)  # no interpreter shutdown: nothing may touch the abandoned stream
        now = (sink.underruns, sink.stalls)
        if now != told:
            if now[0] != told[0]:
                print(f"underruns {sink.underruns} {sink.underrun_frames}", file=out, flush=True)
            if now[1] != told[1]:
                print(f"stalls {sink.stalls} {sink.stall_frames}", file=out, flush=True)
            told = now
    sink.close(drain=False)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m cadenza.runtime.sinks.relay DEVICE BUFFER_SECONDS`` (DEVICE ``""``: the default)."""
    args = sys.argv[1:] if argv is None else argv
    device = args[0] if args and args[0] else None
    buffer_seconds = float(args[1]) if len(args) > 1 else 0.1
    return serve(device, buffer_seconds)


if __name__ == "__main__":
    sys.exit(main())
