"""Keyframe posters: the pipeline's whole command against ffmpegthumbnailer called once per file.

    .venv/bin/python benchmarks/posters.py [--runs 3] [--workdir /tmp/snapshot-posters]

Makes 7 videos of 20 s at 30 fps, a keyframe every 2 s, frames showing their index, from
320x180 to 1920x1080 in H.264, HEVC, VP9 and AV1, and times, alternately, in two scenarios:
  posters: one keyframe poster per file (FrameType intra at 2 s, 320 px wide), all 7 in one
      manifest run by `python -m pipeline`, against `ffmpegthumbnailer -i IN -o OUT -s 320`
      once per file (its default time, 10%, is 2 s here), one call after the other as a
      user's loop would, and 2 calls at a time;
  70 posters: 10 per file (Time 0, Interval 2 s, Num 10, intra) in one manifest, against 70
      calls with `-t 00:00:SS`, serially and 2 at a time.
Every time asked for is a keyframe, so both tools should show the same frames. The script
checks the frame index of every image the pipeline wrote against the keyframes read from the
files (PyAV's demuxer, not the pipeline's code), and stops if one is wrong; it reports how
many of ffmpegthumbnailer's images show them too. It prints the best and median of `--runs`
of each, their ratios and the load average: the machine may be shared. Installs Debian's
ffmpegthumbnailer when it is missing (root or sudo, and apt-get).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import av
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.common import require_debian_tool, user_env  # noqa: E402
from pipeline.show import read_results  # noqa: E402
from snapshot import synth  # noqa: E402

FPS = 30
SECONDS = 20
GOP_S = 2
WIDTH = 320
POSTER_S = 2  # ffmpegthumbnailer's default, 10% of the video
MANY_S = tuple(range(0, SECONDS, GOP_S))  # the 10 posters of each file
X264 = {"g": str(GOP_S * FPS), "bf": "2", "sc_threshold": "0"}
X265 = {"x265-params": f"keyint={GOP_S * FPS}:min-keyint={GOP_S * FPS}:scenecut=0:bframes=2:log-level=error"}
VP9 = {"g": str(GOP_S * FPS), "deadline": "realtime", "cpu-used": "8"}
AV1 = {"g": str(GOP_S * FPS), "preset": "12"}
# name -> (size, codec, encoder options)
CORPUS = {
    "a-180p-h264.mp4": ((320, 180), "libx264", X264),
    "b-360p-vp9.webm": ((640, 360), "libvpx-vp9", VP9),
    "c-480p-av1.mkv": ((854, 480), "libsvtav1", AV1),
    "d-720p-hevc.mp4": ((1280, 720), "libx265", X265),
    "e-720p-h264.mp4": ((1280, 720), "libx264", X264),
    "f-1080p-h264.mp4": ((1920, 1080), "libx264", X264),
    "g-1080p-hevc.mkv": ((1920, 1080), "libx265", X265),
}


def make_corpus(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    os.environ.setdefault("SVT_LOG", "1")  # the AV1 encoder's errors only
    for name, (size, codec, options) in CORPUS.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            started = time.monotonic()
            synth.write_video(
                path + ".part",
                frames=SECONDS * FPS,
                size=size,
                codec=codec,
                options=options,
                container_format=os.path.splitext(name)[1].lstrip(".").replace("mkv", "matroska"),
            )
            os.replace(path + ".part", path)
            print(f"made {name} in {time.monotonic() - started:.0f} s", flush=True)


def keyframes(path: str) -> list[int]:
    """The frame indices of a file's keyframes, from its packets."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        return sorted(
            round(packet.pts * stream.time_base * FPS)
            for packet in container.demux(stream)
            if packet.is_keyframe and packet.pts is not None
        )


def expected_frame(keys: list[int], seconds: float) -> int:
    """The keyframe nearest `seconds` (a tie takes the earlier), as FrameType intra asks."""
    target = seconds * FPS
    return min(keys, key=lambda key: (abs(key - target), key))


def manifest(work: str, name: str, config: dict, output: str) -> str:
    path = os.path.join(work, f"{name}.jsonl")
    lines = [
        {
            "Input": {"Bucket": "in", "Location": "local", "Object": video},
            "SnapshotConfig": {
                "OutputFile": {"Bucket": "out", "Location": "local", "Object": output},
                "FrameType": "intra",
                "Width": WIDTH,
                **config,
            },
        }
        for video in CORPUS
    ]
    with open(path, "w") as out:
        out.write("".join(json.dumps(line) + "\n" for line in lines))
    return path


def run_pipeline(work: str, manifest_path: str, prefix: str) -> float:
    """Seconds of the whole command on a manifest; every job must succeed."""
    shutil.rmtree(os.path.join(work, "results"), ignore_errors=True)
    command = [sys.executable, "-m", "pipeline", "--manifest", manifest_path, "--results", prefix]
    started = time.perf_counter()
    root = os.path.join(work, "buckets")
    done = subprocess.run([*command, "--bucket_root", root], cwd=ROOT, capture_output=True, env=user_env())
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"the pipeline failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return seconds


def ffmpegthumbnailer(video: str, out: str, at_s: int | None) -> list[str]:
    seek = [] if at_s is None else ["-t", time.strftime("%H:%M:%S", time.gmtime(at_s))]
    return ["ffmpegthumbnailer", "-i", video, "-o", out, "-s", str(WIDTH), *seek]


def run_calls(commands: list[list[str]], parallel: int) -> float:
    """Seconds to run the commands, `parallel` at a time; each must succeed."""

    def call(command: list[str]) -> None:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(call, commands))
    return time.perf_counter() - started


def check_pipeline(work: str, prefix: str, keys: dict[str, list[int]]) -> int:
    """How many images the pipeline wrote; stops if one is not the keyframe asked for."""
    count = 0
    for record in read_results(prefix):
        video = json.loads(record["Input"])["Object"]
        for snapshot in record["Snapshots"]:
            want = expected_frame(keys[video], snapshot["Time"] / 1000)
            with Image.open(os.path.join(work, "buckets", "out", snapshot["Object"])) as image:
                shown = synth.read_index(image)
            if shown != want:
                sys.exit(f"{video} at {snapshot['Time']} ms: the pipeline shows frame {shown}, not keyframe {want}")
            count += 1
    return count


def same_frames(outputs: list[tuple[str, str, int]], keys: dict[str, list[int]]) -> int:
    """How many of ffmpegthumbnailer's images (video, image, seconds) show the keyframe asked for."""
    same = 0
    for video, path, at_s in outputs:
        with Image.open(path) as image:
            try:
                same += synth.read_index(image) == expected_frame(keys[video], at_s)
            except ValueError:
                pass
    return same


def timed(work: str, manifest_path: str, commands: list[list[str]], runs: int) -> dict[str, list[float]]:
    """Seconds of each side, `runs` times, the order turning each round; the pipeline's last
    run's results are `results/run{runs - 1}`."""
    sides = {
        "pipeline": lambda n: run_pipeline(work, manifest_path, os.path.join(work, "results", f"run{n}")),
        "ffmpegthumbnailer": lambda n: run_calls(commands, 1),
        "ffmpegthumbnailer x2": lambda n: run_calls(commands, 2),
    }
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    for n in range(runs):
        for side in list(sides)[n % len(sides) :] + list(sides)[: n % len(sides)]:
            seconds[side].append(sides[side](n))
    return seconds


def scenario(work: str, name: str, manifest_path: str, times: list[int], keys: dict[str, list[int]], runs: int):
    """Time one scenario, check the frames, print the figures."""
    videos, theirs = os.path.join(work, "buckets", "in"), os.path.join(work, "ffmpegthumbnailer")
    outputs = [(video, os.path.join(theirs, f"{video}-{at_s:02d}.jpg"), at_s) for video in CORPUS for at_s in times]
    default_time = times == [POSTER_S]  # ffmpegthumbnailer's own default time
    commands = [
        ffmpegthumbnailer(os.path.join(videos, video), path, None if default_time else at_s)
        for video, path, at_s in outputs
    ]
    seconds = timed(work, manifest_path, commands, runs)
    ours = check_pipeline(work, os.path.join(work, "results", f"run{runs - 1}"), keys)
    same = same_frames(outputs, keys)
    print(f"{name}: the keyframe asked for in all {ours} of the pipeline's images, {same} of {len(outputs)} of its")
    best = min(seconds["pipeline"])
    for side, values in seconds.items():
        it = min(values)
        ratio = "" if side == "pipeline" else f"   pipeline/it {best / it:.2f}, it/pipeline {it / best:.2f}"
        print(f"  {side:22} best {min(values):5.2f} s, median {statistics.median(values):5.2f} s{ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/snapshot-posters")
    args = parser.parse_args()
    require_debian_tool("ffmpegthumbnailer", "ffmpegthumbnailer")
    work = args.workdir
    videos = os.path.join(work, "buckets", "in")
    make_corpus(videos)
    for folder in ("buckets/out", "ffmpegthumbnailer"):
        os.makedirs(os.path.join(work, folder), exist_ok=True)
    keys = {name: keyframes(os.path.join(videos, name)) for name in CORPUS}
    version = subprocess.run(["ffmpegthumbnailer", "-v"], capture_output=True, text=True).stdout.strip()
    print(f"{version}, {os.cpu_count()} cores, best and median of {args.runs} runs each, alternated\n")
    load = os.getloadavg()
    posters = manifest(work, "posters", {"Time": POSTER_S * 1000}, "posters/{FileName}.jpg")
    scenario(work, "7 posters", posters, [POSTER_S], keys, args.runs)
    config = {"Time": 0, "Interval": GOP_S, "Num": len(MANY_S)}
    many = manifest(work, "many", config, "many/{FileName}-{Count}.jpg")
    scenario(work, "70 posters", many, list(MANY_S), keys, args.runs)
    print(f"\nload average before {load[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
