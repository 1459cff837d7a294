"""Start-up: a one-line run, the whole command, against `python -c "import apache_beam"`.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--workdir /tmp/snapshot-startup] [--against DIR]

Makes a 2 s 320x180 H.264 video and a manifest of one line (a snapshot at 0 s), then times,
alternately, `python -c "import apache_beam"` and `python -m pipeline` on that manifest
(each run with new results), and prints the best of `--runs` of each, their ratio, and the
load average before and after: the machine may be shared. Beam's import is the floor while
the run is a Beam pipeline. Both run with Python's bytecode cache, as a user's do.
`--against DIR` also times the command of another checkout of the project (an earlier
commit, say) in the same alternation.
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


def timed(command: list[str], cwd: str = ROOT) -> float:
    """Wall seconds of a command that must succeed, run in `cwd` (whose code `-m` runs)."""
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=cwd, env=user_env())
    return time.perf_counter() - started


def pipeline_args(manifest: str, prefix: str, root: str) -> list[str]:
    return ["--manifest", manifest, "--results", prefix, "--bucket_root", root]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", default="/tmp/snapshot-startup")
    parser.add_argument("--against", metavar="DIR", help="another checkout whose command to time alongside")
    args = parser.parse_args()
    manifest, root = prepare(args.workdir)
    results = os.path.join(args.workdir, "results")
    load = os.getloadavg()
    trees = {"python -m pipeline, one line": ROOT}
    if args.against:
        trees[f"  the same in {args.against}"] = args.against
    beam: list[float] = []
    runs: dict[str, list[float]] = {name: [] for name in trees}
    for number in range(args.runs):
        beam.append(timed([sys.executable, "-c", "import apache_beam"]))
        for name in list(trees)[:: 1 if number % 2 == 0 else -1]:  # each side first in turn
            shutil.rmtree(results, ignore_errors=True)
            prefix = os.path.join(results, f"run{number}")
            command = [sys.executable, "-m", "pipeline", *pipeline_args(manifest, prefix, root)]
            runs[name].append(timed(command, trees[name]))
    print(f"load average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    print(f'python -c "import apache_beam"  best of {args.runs}: {min(beam):.2f} s')
    for name, seconds in runs.items():
        print(f"{name:32} best of {args.runs}: {min(seconds):.2f} s, ratio {min(seconds) / min(beam):.2f}x")


if __name__ == "__main__":
    main()
