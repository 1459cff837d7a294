"""What many tests share: the test videos' settings, manifest lines, and the repository root."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

from snapshot import assemble, jobs
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.results import JobResult
from snapshot.storage import Buckets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository: commands run here

H264 = {"g": "30", "bf": "2", "sc_threshold": "0"}  # keyframe every second at 30 fps, B-frames

# name -> write_video settings; every video is 3 s at 30 fps unless it says otherwise.
VIDEOS = {
    "h264.mp4": {"options": H264},
    "h264_faststart.mp4": {"options": H264, "container_options": {"movflags": "faststart"}},
    "hevc10.mkv": {
        "codec": "libx265",
        "pix_fmt": "yuv420p10le",
        "options": {"x265-params": "keyint=30:min-keyint=30:scenecut=0:bframes=2:log-level=error"},
    },
    "vp9.webm": {"codec": "libvpx-vp9", "options": {"g": "30"}},
    "ts_from_10s.ts": {"container_format": "mpegts", "start_seconds": 10, "options": H264},
    "vfr.mp4": {"frames": 10, "times": [0, 0.1, 0.15, 0.5, 0.52, 1.0, 1.7, 1.71, 2.0, 2.5], "options": {"g": "4"}},
    "phone.mp4": {"size": (180, 320), "rotation": -90, "options": H264},
    "long_gop.mp4": {"frames": 300, "options": {"g": "300", "bf": "2"}},
    # 10 s of grain at about 85 Mbit/s: 10 MB, for tests of how much of an input is read
    "grain.mp4": {"frames": 300, "noise": 25, "options": {**H264, "preset": "ultrafast", "crf": "10"}},
}


def request_line(obj: str = "v/h264.mp4", output: str = "{Count}.jpg", **config) -> str:
    """A manifest line for input bucket `in` and output bucket `out`."""
    config = {"OutputFile": {"Bucket": "out", "Location": "local", "Object": output}, **config}
    if "TimeArray" not in config:
        config.setdefault("Time", 0)
    return json.dumps({"Input": {"Bucket": "in", "Location": "local", "Object": obj}, "SnapshotConfig": config})


def run_in_buckets(video: str, text: str, root: pathlib.Path) -> JobResult:
    """Run the job of manifest line `text` in process, with `video` as `in/v/<its name>` under
    a new bucket root `root` (buckets `in` and `out`)."""
    (root / "in" / "v").mkdir(parents=True)
    (root / "out").mkdir()
    shutil.copy(video, root / "in" / "v" / os.path.basename(video))
    job = jobs.read_job(ManifestLine("m.jsonl", 1, text), "2000-01-01T00:00:00Z")
    return assemble.run(job, Buckets(str(root)), Limits(isolate=False))


def pipeline_args(manifest, results, bucket_root, *flags) -> list[str]:
    """The command's arguments for a manifest, a results prefix and a bucket root, with more flags."""
    return ["--manifest", str(manifest), "--results", str(results), "--bucket_root", str(bucket_root), *flags]


def pipeline_command(manifest, results, bucket_root, *flags, max_file_bytes: int = 0) -> list[str]:
    """`python -m pipeline` with `pipeline_args`; with `max_file_bytes`, the command may write
    no file larger (RLIMIT_FSIZE: a full disk)."""
    start = ["-m", "pipeline"]
    if max_file_bytes:
        start = ["-c", CAPPED_COMMAND.format(max_file_bytes)]
    return [sys.executable, *start, *pipeline_args(manifest, results, bucket_root, *flags)]


CAPPED_COMMAND = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, ({0}, {0}))
from pipeline import __main__ as command

sys.exit(command.main(sys.argv[1:]))
"""


def submit(*args: str, cwd) -> subprocess.CompletedProcess:
    """`python -m pipeline.submit` run from `cwd`."""
    return run_module("pipeline.submit", *args, cwd=cwd)


def run_module(module: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` run from `cwd`, this checkout first on the path."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])},
    )
