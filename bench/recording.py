"""A WAV recording past 4 GiB, written through the live runtime's FileSink and read back whole.

Writes ``--seconds`` of a known signal (a 48 kHz stereo sweep whose every
sample is a function of its frame number) through :class:`FileSink` as fast as
the disk takes it, checks the header (RF64 past 4 GiB, ``ds64`` sizes), then
reads the file back with soundfile block by block, comparing every frame with
the signal it should be. Prints the figures; deletes the file unless
``--keep``. The default, 4 h 20 min, makes a ~4.4 GB file.

    python -m bench.recording --dir /tmp
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

from cadenza.runtime.sinks.file import FileSink

SR = 48_000
BLOCK = 1 << 16
PCM24_STEP = 2.0 ** -23


def signal_at(start: int, n: int) -> np.ndarray:
    """Frames ``start … start+n`` of the test signal: left a 1 kHz-ish tone, right a slow ramp by frame number."""
    i = np.arange(start, start + n, dtype=np.int64)
    left = 0.5 * np.sin(2 * np.pi * (i % 48) / 48.0)
    right = ((i % 1_000_003) / 1_000_003.0) - 0.5
    return np.stack([left, right], axis=1).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--seconds", type=float, default=4 * 3600 + 20 * 60)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    path = Path(args.dir) / "cadenza-4gib.wav"
    frames = int(args.seconds * SR)
    t0 = time.perf_counter()
    sink = FileSink(path, retry_s=None)
    done = 0
    while done < frames:
        n = min(BLOCK, frames - done)
        sink.write(signal_at(done, n))
        done += n
    open_info = soundfile.info(str(path))  # the file as a SIGKILL now would leave it (header updated per block)
    sink.close()
    wrote_s = time.perf_counter() - t0
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(64)
    info = soundfile.info(str(path))
    t1 = time.perf_counter()
    checked = worst = 0.0
    with soundfile.SoundFile(str(path)) as f:
        pos = 0
        while True:
            got = f.read(BLOCK, dtype="float32", always_2d=True)
            if got.shape[0] == 0:
                break
            worst = max(worst, float(np.max(np.abs(got - signal_at(pos, got.shape[0])))))
            pos += got.shape[0]
        checked = pos
    read_s = time.perf_counter() - t1
    # spot checks with soundfile.read at start, middle and end (seeks through the RF64 data chunk)
    spots = []
    for at in (0, frames // 2, frames - 4800):
        got, _ = soundfile.read(str(path), start=at, frames=4800, dtype="float32", always_2d=True)
        spots.append((at, got.shape[0], float(np.max(np.abs(got - signal_at(at, got.shape[0]))))))
    print(f"file {path}: {size:,} bytes ({size / 2**30:.3f} GiB), header {head[:4]!r} … {head[12:16]!r}; "
          f"soundfile.info: {info.format}/{info.subtype}, {info.frames:,} frames ({info.frames / SR / 3600:.3f} h)")
    print(f"wrote {frames:,} frames in {wrote_s:.1f} s ({size / wrote_s / 1e6:.0f} MB/s); read back {checked:,} "
          f"frames in {read_s:.1f} s, worst |difference| {worst:.2e} (one 24-bit step is {PCM24_STEP:.2e})")
    print(f"before close (as a SIGKILL would leave it): soundfile.info says {open_info.format}, "
          f"{open_info.frames:,} frames")
    for at, n, err in spots:
        print(f"  soundfile.read(start={at:,}, frames=4800): {n} frames, worst |difference| {err:.2e}")
    ok = (info.frames == frames == checked == open_info.frames and worst <= PCM24_STEP
          and all(n == 4800 and e <= PCM24_STEP for _, n, e in spots))
    if size > 2**32:
        ok = ok and head[:4] == b"RF64" and info.format == "RF64"
    if not args.keep:
        path.unlink()
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
