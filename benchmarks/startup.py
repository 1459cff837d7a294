"""Start-up: a one-line run, the whole command, against `python -c "import apache_beam"`.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--workdir /tmp/snapshot-startup]

Makes a 2 s 320x180 H.264 video and a manifest of one line (a snapshot at 0 s), then times,
alternately, `python -c "import apache_beam"` and `python -m pipeline` on that manifest
(each run with new results), and prints the best of `--runs` of each, their ratio, and the
load average before and after: the machine may be shared. Beam's import is the floor while
the run is a Beam pipeline. Both run with Python's bytecode cache, as a user's do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import user_env  # noqa: E402
from snapshot import synth  # noqa: E402

LINE = (
    '{"Input": {"Bucket": "in", "Location": "local", "Object": "v.mp4"}, "SnapshotConfig": '
    '{"OutputFile": {"Bucket": "out", "Location": "local", "Object": "{Count}.jpg"}, "Time": 0}}\n'
)


def prepare(workdir: str) -> tuple[str, str]:
    """The manifest and the bucket root of the one-line run."""
    root = os.path.join(workdir, "buckets")
    os.makedirs(os.path.join(root, "in"), exist_ok=True)
    os.makedirs(os.path.join(root, "out"), exist_ok=True)
    video = os.path.join(root, "in", "v.mp4")
    if not os.path.exists(video):
        synth.write_video(video, frames=60)
    manifest = os.path.join(workdir, "one.jsonl")
    with open(manifest, "w") as out:
        out.write(LINE)
    return manifest, root


def timed(command: list[str]) -> float:
    """Wall seconds of a command that must succeed."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=user_env())
    return time.perf_counter() - started


def pipeline_args(manifest: str, prefix: str, root: str) -> list[str]:
    return ["--manifest", manifest, "--results", prefix, "--bucket_root", root]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", default="/tmp/snapshot-startup")
    args = parser.parse_args()
    manifest, root = prepare(args.workdir)
    results = os.path.join(args.workdir, "results")
    load = os.getloadavg()
    beam, run = [], []
    for number in range(args.runs):
        beam.append(timed([sys.executable, "-c", "import apache_beam"]))
        shutil.rmtree(results, ignore_errors=True)
        prefix = os.path.join(results, f"run{number}")
        run.append(timed([sys.executable, "-m", "pipeline", *pipeline_args(manifest, prefix, root)]))
    print(f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f'python -c "import apache_beam"  best of {args.runs}: {min(beam):.2f} s')
    print(f"python -m pipeline, one line     best of {args.runs}: {min(run):.2f} s")
    print(f"ratio: {min(run) / min(beam):.2f}x")


if __name__ == "__main__":
    main()
