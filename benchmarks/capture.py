"""Capture speed: the pipeline against the ffmpeg command line and a bare PyAV loop, same run.

    .venv/bin/python benchmarks/capture.py [--workdir /tmp/snapshot-bench] [--quick | --small]

Makes its own corpus (H.264 720p and 1080p, 30 s and 10 min, GOP 2 s, 5 s and 10 s; frames
show their index) and manifests, then for each scenario runs
  (a) python -m pipeline, the plain command with no parallelism flags,
  (b) ffmpeg doing the same captures: one `ffmpeg -ss T -i IN -frames:v 1` per point, 2 at a
      time (and, for dense points, one `-vf fps=1` pass per video when that is faster),
  (c) a bare loop with the same plan and no Beam (2 processes: the floor of the design),
and prints snapshots/s, the ratios, whether (a) and (b) captured the same frames, peak RSS,
and the frames decoded per snapshot without and with skipping unreferenced frames (the
capture code on the same tasks, in this process). `--small` runs sets of 150 to 250
snapshots on a 720p video (GOP 2 s) and a 1080p one (GOP 5 s), where the fixed cost counts.
Every point is a multiple of 100 ms, so "the frame shown at T" (ours) and "the first frame at
or after T" (ffmpeg's -ss) are the same frame at 30 fps.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fractions
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import bare  # noqa: E402
from benchmarks.common import pipeline_command, require_ffmpeg, run_measured  # noqa: E402
from pipeline.show import read_results  # noqa: E402
from snapshot import media, synth  # noqa: E402
from snapshot.limits import Limits  # noqa: E402
from snapshot.storage import Buckets  # noqa: E402

FPS = 30
WIDTH = 320  # every snapshot is scaled to this width
# name -> (width, height, seconds, GOP seconds)
CORPUS = {
    "720p-30s-gop2.mp4": (1280, 720, 30, 2),
    "1080p-30s-gop2.mp4": (1920, 1080, 30, 2),
    "1080p-30s-gop10.mp4": (1920, 1080, 30, 10),
    "1080p-30s-gop5.mp4": (1920, 1080, 30, 5),
    "720p-10m-gop10.mp4": (1280, 720, 600, 10),
    "1080p-10m-gop2.mp4": (1920, 1080, 600, 2),
}


def make_video(path: str, width: int, height: int, seconds: int, gop: int) -> None:
    """Pattern frames (index in 5x4 cells) with a light grain, encoded fast: about 6 Mbit/s at 1080p."""
    rng = np.random.default_rng(1)
    grain = [rng.integers(-4, 5, (height, width), dtype=np.int16) for _ in range(8)]
    small_w, small_h = width // 5, height // 5
    with av.open(path + ".part", "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(gop * FPS), "bf": "2", "preset": "ultrafast", "crf": "23", "sc_threshold": "0"}
        for index in range(seconds * FPS):
            small = av.VideoFrame.from_ndarray(synth.pattern(index, small_w, small_h), format="rgb24")
            yuv = small.reformat(format="yuv420p").to_ndarray()
            y = np.repeat(np.repeat(yuv[:small_h], 5, 0), 5, 1).astype(np.int16) + grain[index % 8]
            chroma = yuv[small_h:].reshape(2, small_h // 2, small_w // 2)
            u, v = (np.repeat(np.repeat(c, 5, 0), 5, 1) for c in chroma)
            planes = np.concatenate([np.clip(y, 0, 255).astype(np.uint8).ravel(), u.ravel(), v.ravel()])
            frame = av.VideoFrame.from_ndarray(planes.reshape(height * 3 // 2, width), format="yuv420p")
            frame.pts, frame.time_base = index, fractions.Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    os.replace(path + ".part", path)


def request(video: str, n: int, **config) -> str:
    return json.dumps(
        {
            "Input": {"Bucket": "in", "Location": "l", "Object": video},
            "SnapshotConfig": {
                "OutputFile": {"Bucket": "out", "Location": "l", "Object": f"{n:04d}/{{Count}}.jpg"},
                "Width": WIDTH,
                **config,
            },
        }
    )


SMALL = ["720p-30s-gop2.mp4", "1080p-30s-gop5.mp4"]
LARGE = [v for v in CORPUS if v != "1080p-30s-gop5.mp4"]  # the corpus of the large sets, as measured before


def small_scenarios() -> dict[str, list[str]]:
    """Sets of 150 to 250 snapshots: a day's uploads, a re-run of failures."""
    rng = random.Random(7)
    return {
        "small: single frames (normal)": [
            request(rng.choice(SMALL), n, Time=rng.randrange(0, 300) * 100, FrameType="normal") for n in range(200)
        ],
        "small: Num=10 sparse (normal)": [
            request(rng.choice(SMALL), n, Time=rng.randrange(0, 20) * 100, Num=10, Interval=3, FrameType="normal")
            for n in range(20)
        ],
        "small: dense 1/s (normal, 1080p)": [
            request("1080p-30s-gop5.mp4", n, Time=0, Interval=1, FrameType="normal") for n in range(7)
        ],
        "small: Num=10 sparse (intra)": [
            request(rng.choice(SMALL), n, Time=rng.randrange(0, 20) * 100, Num=10, Interval=3) for n in range(20)
        ],
    }


def scenarios(quick: bool) -> dict[str, list[str]]:
    """Manifests: name -> lines. Every point is a multiple of 100 ms."""
    rng = random.Random(5)
    short = [v for v in CORPUS if CORPUS[v][2] == 30 and CORPUS[v][3] != 5]
    scale = 4 if quick else 1
    single = [
        request(v, n, Time=rng.randrange(0, CORPUS[v][2] * 10) * 100, FrameType="normal")
        for n, v in enumerate(rng.choice(LARGE) for _ in range(240 // scale))
    ]
    sparse = [
        request(v, n, Time=rng.randrange(0, 20) * 100, Num=10, Interval=CORPUS[v][2] // 10, FrameType="normal")
        for n, v in enumerate(rng.choice(LARGE) for _ in range(64 // scale))
    ]
    dense = [request(v, n, Time=0, Interval=1, FrameType="normal") for n, v in enumerate(short * (32 // scale))]
    intra = [
        request(v, n, Time=rng.randrange(0, 20) * 100, Num=10, Interval=CORPUS[v][2] // 10)
        for n, v in enumerate(rng.choice(LARGE) for _ in range(240 // scale))
    ]
    length = {
        length: [
            request(v, n, Time=t * 100, FrameType="normal")
            for n, t in enumerate(rng.randrange(0, 300) for _ in range(480 // scale))
        ]
        for length, v in (("30s", "1080p-30s-gop2.mp4"), ("10m", "1080p-10m-gop2.mp4"))
    }
    return {
        "single frames (sync, normal)": single,
        "Num=10 sparse (normal)": sparse,
        "dense 1/s (normal)": dense,
        "Num=10 sparse (intra)": intra,
        "length: 30 s input": length["30s"],
        "length: 10 min input": length["10m"],
    }


def run_pipeline(work: str, name: str, lines: list[str]) -> dict:
    manifest = os.path.join(work, f"{name}.jsonl")
    with open(manifest, "w") as out:
        out.write("\n".join(lines) + "\n")
    shutil.rmtree(os.path.join(work, "buckets", "out"), ignore_errors=True)
    prefix = os.path.join(work, "results", name)
    seconds, peaks, done = run_measured(pipeline_command(manifest, prefix, os.path.join(work, "buckets")), cwd=ROOT)
    if done.returncode not in (0, 3):  # 3: some jobs failed, said below
        sys.exit(done.stderr)
    records = read_results(prefix)
    failed = [r for r in records if r["State"] != "Success"]
    if failed:
        sys.exit(f"{len(failed)} jobs failed, e.g. {failed[0]['Code']}: {failed[0]['Message']}")
    shots = []
    for record in records:
        source = json.loads(record["Input"])["Object"]
        config = json.loads(record["SnapshotConfig"])
        for snapshot in record["Snapshots"]:
            path = os.path.join(work, "buckets", "out", snapshot["Object"])
            shots.append(
                {
                    "video": source,
                    "frame": synth.read_index(Image.open(path)),
                    "intra": config.get("FrameType", "intra") == "intra",
                    "size": (snapshot["Width"], snapshot["Height"]),
                }
            )
    decoders = [mb for mb, line in peaks.values() if "multiprocessing" in line]
    workers = [mb for mb, line in peaks.values() if "multiprocessing" not in line]
    return {"seconds": seconds, "shots": shots, "worker_mb": max(workers), "decoder_mb": max(decoders, default=0)}


def ffmpeg_point(work: str, video: str, frame: int, intra: bool, size: tuple[int, int], out: str) -> None:
    # a keyframe: seek to it without decoding further; any other frame: the first at or after
    # half a frame before it, which is that frame
    seek = ["-noaccurate_seek", "-ss", f"{frame / FPS:.4f}"] if intra else ["-ss", f"{(frame - 0.5) / FPS:.4f}"]
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *seek,
            "-i",
            os.path.join(work, "buckets", "in", video),
            "-frames:v",
            "1",
            "-vf",
            f"scale={size[0]}:{size[1]}",
            "-q:v",
            "3",
            out,
        ],
        check=True,
    )


def run_ffmpeg(work: str, shots: list[dict]) -> dict:
    """One ffmpeg per point, 2 at a time; then check each captured the same frame as ours."""
    folder = os.path.join(work, "ffmpeg")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    outs = [os.path.join(folder, f"{n:05d}.jpg") for n in range(len(shots))]
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda a: ffmpeg_point(work, *a),
                [(s["video"], s["frame"], s["intra"], s["size"], out) for s, out in zip(shots, outs, strict=True)],
            )
        )
    seconds = time.monotonic() - started
    same = sum(synth.read_index(Image.open(out)) == s["frame"] for s, out in zip(shots, outs, strict=True))
    return {"seconds": seconds, "same": same}


def run_fps_pass(work: str, lines: list[str]) -> float:
    """Dense points as one `-vf fps=1` decoding pass per job, 2 at a time."""
    folder = os.path.join(work, "ffmpeg-fps")
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)

    def one(n_line):
        n, line = n_line
        video = json.loads(line)["Input"]["Object"]
        width, height = CORPUS[video][:2]
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-i",
                os.path.join(work, "buckets", "in", video),
                "-vf",
                f"fps=1,scale={WIDTH}:{round(WIDTH * height / width)}",
                "-q:v",
                "3",
                os.path.join(folder, f"{n:03d}-%05d.jpg"),
            ],
            check=True,
        )

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(one, enumerate(lines)))
    return time.monotonic() - started


def frames_decoded(work: str, lines: list[str]) -> tuple[float, float]:
    """Frames decoded per snapshot by the capture code on the run's tasks: without and with
    skipping unreferenced frames."""
    _, _, cut = bare.plan(lines, Buckets(os.path.join(work, "buckets")))
    per_shot = []
    for skip in (False, True):
        decoded = shots = 0
        for task in cut:
            with open(os.path.join(work, "buckets", "in", task.input.name), "rb") as source:
                for captured in media.capture(source, task.shots, task.probe, Limits(skip_nonref=skip)):
                    decoded, shots = decoded + captured.decoded, shots + 1
        per_shot.append(decoded / shots)
    return per_shot[0], per_shot[1]


def run_bare(work: str, name: str) -> float:
    """benchmarks/bare.py on the same manifest: the same plan and capture code with no Beam."""
    shutil.rmtree(os.path.join(work, "buckets", "out"), ignore_errors=True)
    seconds, _, done = run_measured(
        [sys.executable, "-m", "benchmarks.bare", os.path.join(work, f"{name}.jsonl"), os.path.join(work, "buckets")],
        cwd=ROOT,
    )
    if done.returncode or not done.stdout.startswith(f"{len(Path(work, name + '.jsonl').read_text().splitlines())} of"):
        sys.exit(done.stderr or done.stdout)
    return seconds


def startup(work: str, which: str) -> float:
    """Whole-command seconds for a manifest with one bad line: what a run costs before any video."""
    manifest = os.path.join(work, "empty.jsonl")
    with open(manifest, "w") as out:
        out.write("not json\n")
    if which == "pipeline":
        command = [
            "-m",
            "pipeline",
            "--manifest",
            manifest,
            "--results",
            os.path.join(work, "results", "empty"),
            "--bucket_root",
            os.path.join(work, "buckets"),
        ]
    else:
        command = ["-m", "benchmarks.bare", manifest, os.path.join(work, "buckets")]
    seconds, _, _ = run_measured([sys.executable, *command], cwd=ROOT)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/snapshot-bench")
    parser.add_argument("--quick", action="store_true", help="a quarter of the points (a smoke run)")
    parser.add_argument("--small", action="store_true", help="sets of 150 to 250 snapshots on 2 short videos")
    args = parser.parse_args()
    require_ffmpeg()
    work = args.workdir
    videos = os.path.join(work, "buckets", "in")
    os.makedirs(videos, exist_ok=True)
    for name, (width, height, seconds, gop) in CORPUS.items():
        if args.small and name not in SMALL:
            continue
        path = os.path.join(videos, name)
        if not os.path.exists(path):
            started = time.monotonic()
            make_video(path, width, height, seconds, gop)
            print(
                f"made {name} ({os.path.getsize(path) / 1e6:.0f} MB) in {time.monotonic() - started:.0f} s", flush=True
            )
    print(
        f"\nffmpeg: {subprocess.run(['ffmpeg', '-version'], capture_output=True, text=True).stdout.split()[2]}, "
        f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), {os.cpu_count()} cores\n"
    )
    header = (
        f"{'scenario':34} {'shots':>5} {'pipeline/s':>10} {'ffmpeg/s':>9} {'bare/s':>8} "
        f"{'vs ffmpeg':>9} {'vs bare':>8} {'same':>9} {'RSS MB':>11} {'frames/shot':>12}"
    )
    print(
        f"fixed cost of a run (a manifest of one bad line): pipeline {startup(work, 'pipeline'):.1f} s, "
        f"bare loop {startup(work, 'bare'):.1f} s\n"
    )
    print(header)
    rows = {}
    for name, lines in (small_scenarios() if args.small else scenarios(args.quick)).items():
        key = name.split(":")[-1].split()[0] + "-" + str(len(lines))
        ours = run_pipeline(work, key, lines)
        count = len(ours["shots"])
        theirs = run_ffmpeg(work, ours["shots"])
        ffmpeg_seconds = theirs["seconds"]
        if name.startswith("dense"):
            ffmpeg_seconds = min(ffmpeg_seconds, run_fps_pass(work, lines))
        bare = run_bare(work, key)
        before, after = frames_decoded(work, lines)
        rows[name] = ours["seconds"] / count
        print(
            f"{name:34} {count:5d} {count / ours['seconds']:10.1f} {count / ffmpeg_seconds:9.1f} "
            f"{count / bare:8.1f} {ffmpeg_seconds / ours['seconds']:8.2f}x {ours['seconds'] / bare:7.2f}x "
            f"{theirs['same']:4d}/{count:<4d} {ours['worker_mb']:5.0f}/{ours['decoder_mb']:<5.0f} "
            f"{before:5.1f} -> {after:<4.1f}",
            flush=True,
        )
    if not args.small:
        ratio = rows["length: 10 min input"] / rows["length: 30 s input"]
        print(f"\nsnapshot cost, 10-min vs 30-s input, same points: {ratio:.2f}x")
    print("RSS MB: peak of a worker process / of a decoding process")
    print("frames/shot: frames decoded per snapshot, without -> with skipping unreferenced frames")


if __name__ == "__main__":
    main()
