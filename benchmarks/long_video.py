"""A 1-hour all-intra video (108,000 keyframes) and one job of thousands of shots on it,
through the command in its default local mode: exactly one result, every shot, and the size
of what travels between the steps.

    .venv/bin/python benchmarks/long_video.py [--num 5000] [--workdir /tmp/snapshot-long]

Reports: the result's state and count, wall time, peak RSS of the command, its worker
threads' process and each decoding process, and the pickled size of the capture tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import run_measured  # noqa: E402
from pipeline.show import read_results  # noqa: E402
from snapshot import guarded, jobs, synth, tasks  # noqa: E402
from snapshot.jobs import ManifestLine  # noqa: E402
from snapshot.limits import Limits  # noqa: E402
from snapshot.storage import Buckets  # noqa: E402

FRAMES = 30 * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num", type=int, default=5000)
    parser.add_argument("--workdir", default="/tmp/snapshot-long")
    args = parser.parse_args()
    buckets = os.path.join(args.workdir, "buckets")
    video = os.path.join(buckets, "in", "hour.mp4")
    os.makedirs(os.path.dirname(video), exist_ok=True)
    if not os.path.exists(video):
        synth.write_video(video, frames=FRAMES, size=(64, 36), options={"g": "1", "preset": "ultrafast"})
    line = json.dumps(
        {
            "Input": {"Bucket": "in", "Location": "l", "Object": "hour.mp4"},
            "SnapshotConfig": {
                "OutputFile": {"Bucket": "out", "Location": "l", "Object": "{Count}.jpg"},
                "Time": 0,
                "Num": args.num,
                "Interval": 0,
                "FrameType": "intra",
            },
        }
    )
    manifest = os.path.join(args.workdir, "long.jsonl")
    with open(manifest, "w") as out:
        out.write(line + "\n")

    job = jobs.read_job(ManifestLine("long.jsonl", 1, line), "now")
    _, cut = tasks.plan_input([job], Buckets(buckets), Limits(isolate=False))
    sizes = sorted(len(pickle.dumps(task)) for task in cut)
    outcomes = [len(pickle.dumps(o)) for o in guarded.run_task_guarded(cut[0], Buckets(buckets), Limits(isolate=False))]
    print(
        f"capture tasks: {len(cut)}, pickled: largest {sizes[-1] / 1024:.1f} KB, "
        f"total {sum(sizes) / 1024:.0f} KB; outcomes of one task: {len(outcomes)}, largest "
        f"{max(outcomes) / 1024:.1f} KB"
    )

    results = os.path.join(args.workdir, "results", "long")
    seconds, peaks, done = run_measured(
        [sys.executable, "-m", "pipeline", "--manifest", manifest, "--results", results, "--bucket_root", buckets],
        cwd=ROOT,
    )
    if done.returncode:
        sys.exit(done.stderr)
    (record,) = read_results(results)
    decoders = [mb for mb, command in peaks.values() if "multiprocessing" in command]
    print(
        f"result: {record['State']} {record['Code'] or ''} with {record['Count']} images of {args.num} asked "
        f"({len({s['Object'] for s in record['Snapshots']})} distinct), in {seconds:.1f} s"
    )
    print(
        f"peak RSS: command {peaks[min(peaks)][0]:.0f} MB; per decoding process max "
        f"{max(decoders, default=0):.0f} MB ({len(decoders)} processes)"
    )
    assert record["State"] == "Success" and record["Count"] == args.num


if __name__ == "__main__":
    main()
