"""Runs that are cut short: Beam workers killed mid-run, the command stopped by SIGTERM. No
half-written object is ever under a final name, and running again completes the batch with
the same bytes as an undisturbed run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from PIL import Image

from benchmarks.common import command_line, descendants
from pipeline.show import read_results
from snapshot import synth
from tests.helpers import ROOT, pipeline_command

pytestmark = pytest.mark.slow  # runs of the command that are killed


JOBS = 60


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A manifest of 60 jobs of 20 shots on one 640x360 video, and its undisturbed images."""
    root = tmp_path_factory.mktemp("batch")
    (root / "buckets" / "in").mkdir(parents=True)
    synth.write_video(str(root / "buckets" / "in" / "v.mp4"), frames=600, size=(640, 360), options={"g": "60"})
    lines = [
        json.dumps(
            {
                "Input": {"Bucket": "in", "Location": "l", "Object": "v.mp4"},
                "SnapshotConfig": {
                    "OutputFile": {"Bucket": "out", "Location": "l", "Object": f"{n}/{{Count}}.jpg"},
                    "Time": n * 10,
                    "Num": 20,
                    "Interval": 0.9,
                    "FrameType": "normal",
                },
            }
        )
        for n in range(JOBS)
    ]
    (root / "m.jsonl").write_text("\n".join(lines) + "\n")
    done = command(root, "clean", "undisturbed").wait(timeout=300)
    assert done == 0
    return root, images(root / "clean")


def command(root, buckets: str, results: str, *extra: str) -> subprocess.Popen:
    target = root / buckets
    if not target.exists():
        shutil.copytree(root / "buckets", target)
    return subprocess.Popen(
        pipeline_command(str(root / "m.jsonl"), str(root / results), str(target), *extra),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def images(buckets) -> dict[str, bytes]:
    return {p.relative_to(buckets).as_posix(): p.read_bytes() for p in (buckets / "out").rglob("*.jpg")}


def wait_for_images(buckets, count: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(list((buckets / "out").rglob("*.jpg"))) < count:
        time.sleep(0.05)


def no_half_written_images(buckets) -> None:
    """Every object under a final name is a whole JPEG (a killed write leaves at most a
    .tmp-*.part file beside it)."""
    for path in (buckets / "out").rglob("*.jpg"):
        with Image.open(path) as image:
            image.load()


@pytest.mark.parametrize("how", ["kill the Beam workers", "SIGTERM the command"])
def test_a_run_cut_short_is_completed_by_running_again(batch, how):
    root, undisturbed = batch
    name = how.split()[0] + str(int(time.time() * 1000))
    extra = ["--direct_running_mode", "multi_processing"] if how.startswith("kill") else []
    run = command(root, name, name + "-1", *extra)
    wait_for_images(root / name, 100)
    if how.startswith("kill"):
        workers = [pid for pid in descendants(run.pid) if "sdk_worker_main" in command_line(pid)]
        assert workers
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
    else:
        run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=300)
    # what the user sees: the runner does not retry a dead worker; the run fails in one line
    assert run.returncode != 0
    if how.startswith("kill"):
        (line,) = [x for x in stderr.splitlines() if x.startswith("error:")]
        assert line.startswith("error: the run failed (") and "details in" in line
    no_half_written_images(root / name)
    assert len(images(root / name)) < JOBS * 20
    again = command(root, name, name + "-2")
    assert again.wait(timeout=300) == 0, again.stderr.read()
    assert images(root / name) == undisturbed
    assert len(read_results(str(root / (name + "-2")))) == JOBS
