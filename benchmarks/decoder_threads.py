"""Decoder threads for the long walks of dense jobs: slice threading with 1 thread (the
default) against frame threading with 2, at 1080p and 4K.

    .venv/bin/python benchmarks/decoder_threads.py [--workdir /tmp/snapshot-threads]

Makes a 10 s H.264 video (GOP 10 s, B-frames, light grain) at each size, then walks it with the capture
code: one `normal` snapshot per second, which decodes every frame. Each setting runs alone
(one worker: the other core is idle) and as 2 walks at once (2 workers: every core busy, as
in a run of the pipeline), best of 3, and prints the seconds per walk.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from snapshot import media, synth  # noqa: E402
from snapshot.limits import Limits  # noqa: E402

SIZES = {"1080p": (1920, 1080), "4K": (3840, 2160)}
SECONDS, FPS = 10, 30
SETTINGS = {"slice, 1 thread": ("SLICE", 1), "frame, 2 threads": ("FRAME", 2)}


def walk(path: str, thread_type: str, threads: int) -> float:
    """Seconds for one dense walk: a snapshot at every second, from one keyframe."""
    limits = Limits(decoder_threads=threads, isolate=False)
    with open(path, "rb") as source:
        probe = media.probe(source)
        shots = [media.Shot(s + 1, s * 1000, probe.pts(s * 1000), (320, 180)) for s in range(SECONDS)]
        started = time.perf_counter()
        media.THREAD_TYPE = thread_type
        for _ in media.capture(source, shots, probe, limits):
            pass
        return time.perf_counter() - started


def best(path: str, setting: tuple[str, int], parallel: int) -> float:
    times = []
    for _ in range(3):
        with concurrent.futures.ProcessPoolExecutor(parallel) as pool:
            times.append(max(pool.map(walk, [path] * parallel, [setting[0]] * parallel, [setting[1]] * parallel)))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/snapshot-threads")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    print(f"{'':8} {'setting':18} {'alone':>8} {'2 at once':>10}")
    for name, size in SIZES.items():
        path = os.path.join(args.workdir, f"{name}.mp4")
        if not os.path.exists(path):
            options = {"g": str(SECONDS * FPS), "bf": "2", "preset": "ultrafast", "sc_threshold": "0"}
            synth.write_video(path, frames=SECONDS * FPS, fps=FPS, size=size, options=options, noise=6)
        for label, setting in SETTINGS.items():
            print(f"{name:8} {label:18} {best(path, setting, 1):7.2f}s {best(path, setting, 2):9.2f}s", flush=True)


if __name__ == "__main__":
    main()
