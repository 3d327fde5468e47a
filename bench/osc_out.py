"""OSC out's sender: how close to its time each message leaves, ``SCHED_FIFO`` against normal priority in the same run.

The schedule (:class:`cadenza.runtime.osc_out.Schedule`) is given messages due
every 13 ms; a loopback UDP socket receives them with the kernel's receive
timestamps (``SO_TIMESTAMPNS``: the benchmark's own wakeups do not count), and
each arrival is compared with its due time. The baseline is the same schedule
at normal priority (what a bridge without the privilege gets). What a whole
chain adds on top (the heard clock against a JACK server's clock) is measured
by tests/test_osc_out.py; the sender is the part the machine's load acts on.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import numpy as np

from bench.table import Row
from tests.server_harness import recv_stamped, stamped_udp_receiver

GOAL_MS = 5.0


def _errors(realtime: bool, count: int) -> tuple[np.ndarray, bool]:
    from cadenza.runtime.osc_out import Schedule, encode_message

    rx, _ = stamped_udp_receiver(0.2)
    arrivals: dict[int, float] = {}
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                data, at = recv_stamped(rx, 512)
            except socket.timeout:
                continue
            arrivals[struct.unpack(">i", data[-4:])[0]] = at

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    schedule = Schedule([("127.0.0.1", rx.getsockname()[1])], realtime=realtime)
    schedule.start()
    offset = time.time() - time.monotonic()
    start = time.monotonic() + 0.05
    due = [start + 0.013 * i for i in range(count)]
    for i, d in enumerate(due):
        schedule.put(d, encode_message("/bench", i), "/bench")
    time.sleep(due[-1] - time.monotonic() + 0.3)
    schedule.close()
    stop.set()
    thread.join(1.0)
    rx.close()
    return np.array([arrivals[i] - offset - d for i, d in enumerate(due) if i in arrivals]), schedule.stats.realtime


def rows(quick: bool) -> list[Row]:
    count = 100 if quick else 400
    fifo, got_rt = _errors(True, count)
    normal, _ = _errors(False, count)
    p99 = float(np.percentile(np.abs(fifo), 99) * 1000)
    base = float(np.percentile(np.abs(normal), 99) * 1000)
    label = "SCHED_FIFO" if got_rt else "normal priority (no privilege for SCHED_FIFO)"
    return [Row("OSC out sender: p99 |arrival − due| (" + label + ")", f"{p99:.3f} ms",
                f"{base:.3f} ms (normal priority)", f"{p99 / base:.2f}×" if base > 0 else "",
                f"≤ {GOAL_MS:g} ms", p99 <= GOAL_MS, len(fifo),
                note=f"OSC out sender: median {np.median(np.abs(fifo)) * 1000:.3f} ms ({label}) vs "
                     f"{np.median(np.abs(normal)) * 1000:.3f} ms at normal priority; kernel receive timestamps")]
