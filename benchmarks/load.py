"""Load: a manifest of good and bad jobs (1,000 by default) through the pipeline with local
worker processes.

    .venv/bin/python benchmarks/load.py [--jobs 1000] [--workdir /tmp/snapshot-load] [pipeline flags]

Flags it does not know go to the pipeline (`--lines_per_part 0`: one pipeline, not parts).

Reports: results == lines, no duplicate ids, the codes, wall time, jobs/s, CPU seconds and
input bytes read per snapshot, and peak RSS per worker process and per decoding process.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import resource
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import pipeline_command, run_measured  # noqa: E402
from pipeline.show import read_results  # noqa: E402
from snapshot import synth  # noqa: E402

VIDEOS = {
    "a.mp4": {"frames": 300, "size": (640, 360), "options": {"g": "60", "bf": "2"}},
    "b.mp4": {"frames": 600, "size": (1280, 720), "options": {"g": "60", "bf": "2"}},
    "c.webm": {"frames": 300, "size": (320, 180), "codec": "libvpx-vp9", "options": {"g": "30"}},
    "d.mp4": {"frames": 150, "size": (360, 640), "rotation": -90, "options": {"g": "30"}},
}


def job(rng: random.Random, n: int) -> str:
    video = rng.choice(sorted(VIDEOS))
    out = {"Bucket": "out", "Location": "l", "Object": f"{n:04d}/{{Count}}.jpg"}
    base = {"Input": {"Bucket": "in", "Location": "l", "Object": f"v/{video}"}}
    kind = rng.random()
    if kind < 0.35:
        config = {"Time": rng.randrange(0, 9000), "FrameType": rng.choice(["intra", "normal"]), "Width": 320}
    elif kind < 0.6:
        config = {"Time": 0, "Num": rng.randrange(2, 8), "Interval": rng.choice([1, 2, 3]), "Width": 160}
    elif kind < 0.75:
        config = {
            "Time": 0,
            "Interval": 1,
            "FrameType": "normal",
            "Width": 128,
            "TileOut": {"Lines": 3, "Columns": 4},
            "Format": "vtt",
            "TileOutputFile": {"Bucket": "out", "Location": "l", "Object": f"{n:04d}/s-{{TileCount}}.jpg"},
        }
    elif kind < 0.82:
        return "{ not json " + str(n)
    elif kind < 0.88:
        base["Input"]["Object"] = f"v/missing-{n}.mp4"
        config = {"Time": 0}
    elif kind < 0.94:
        out["Object"] = f"../escape-{n}/{{Count}}.jpg"
        config = {"Time": 0}
    else:
        config = {"Time": 0, "Width": rng.choice([0, 5000, "wide"])}
    return json.dumps({**base, "SnapshotConfig": {"OutputFile": out, **config}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workdir", default="/tmp/snapshot-load")
    args, pipeline_flags = parser.parse_known_args()
    work = args.workdir
    videos = os.path.join(work, "buckets", "in", "v")
    os.makedirs(videos, exist_ok=True)
    for name, settings in VIDEOS.items():
        if not os.path.exists(os.path.join(videos, name)):
            synth.write_video(os.path.join(videos, name), **settings)
    shutil.rmtree(os.path.join(work, "buckets", "out"), ignore_errors=True)
    rng = random.Random(7)
    manifest = os.path.join(work, "load.jsonl")
    with open(manifest, "w") as out:
        out.write("\n".join(job(rng, n) for n in range(args.jobs)) + "\n")
    results = os.path.join(work, "results", "load")
    command = pipeline_command(
        manifest,
        results,
        os.path.join(work, "buckets"),
        *["--direct_num_workers", "2", "--direct_running_mode", "multi_processing", *pipeline_flags],
    )
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, peaks, done = run_measured(command, cwd=ROOT)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if done.returncode not in (0, 3):  # 3: the run completed, and the bad jobs failed
        sys.exit(done.stderr)
    records = read_results(results)
    ids = [r["Id"] for r in records]
    codes = collections.Counter(r["Code"] or "Success" for r in records)
    # the command by its command line, not as the lowest pid: pids wrap in a long run
    launcher = max(mb for mb, line in peaks.values() if line.split()[1:3] == ["-m", "pipeline"])
    decoders = [mb for mb, line in peaks.values() if "multiprocessing" in line]
    workers = [mb for mb, line in peaks.values() if "sdk_worker" in line or "worker_pool_main" in line]
    print(f"jobs: {args.jobs}, results: {len(records)}, duplicate ids: {len(ids) - len(set(ids))}")
    images = sum(r["Count"] for r in records)
    print(f"wall time: {seconds:.1f} s, {args.jobs / seconds:.1f} jobs/s, {images / seconds:.1f} images/s")
    print(
        f"CPU: {cpu:.0f} s in all, {1000 * cpu / max(1, images):.1f} ms per image; input read: "
        f"{sum(r['BytesRead'] for r in records) / max(1, images) / 1024:.0f} KB per image"
    )
    print(
        f"peak RSS: launcher {launcher:.0f} MB; "
        f"per worker max {max(workers, default=0):.0f} MB ({len(workers)} workers); "
        f"per decoding process max {max(decoders, default=0):.0f} MB ({len(decoders)} processes)"
    )
    for code, count in codes.most_common():
        print(f"  {count:5d}  {code}")
    assert len(records) == args.jobs and len(set(ids)) == len(ids)


if __name__ == "__main__":
    main()
