"""Jobs that share a capture task: each keeps its own failures and its own time limit."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from PIL import Image

from pipeline import graph
from pipeline.show import read_results
from snapshot import assemble, errors, guarded, jobs, media, synth, tasks
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.storage import Buckets
from tests.helpers import ROOT, request_line

pytestmark = pytest.mark.slow  # time limits that must run out


def run_lines(tmp_path, bucket_root, texts, limits=Limits()) -> dict[int, dict]:
    (tmp_path / "m.jsonl").write_text("\n".join(texts) + "\n")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)), limits=limits)
    return {int(r["Source"].rsplit(":", 1)[1]): r for r in read_results(str(tmp_path / "res"))}


def shown(path) -> int:
    with Image.open(path) as image:
        return synth.read_index(image)


def test_a_write_error_fails_only_its_own_job(tmp_path, bucket_root):
    (bucket_root / "out" / "clash").mkdir()
    texts = [request_line(output="clash", Time=1010, FrameType="normal")] + [
        request_line(output=f"fine{n}.jpg", Time=1010 + 33 * n, FrameType="normal") for n in range(1, 5)
    ]
    found = run_lines(tmp_path, bucket_root, texts)
    assert (found[1]["State"], found[1]["Code"]) == ("Fail", errors.INVALID_PARAMETER)
    assert "clash" in found[1]["Message"]
    for n in range(2, 6):
        assert found[n]["State"] == "Success", found[n]["Message"]
        assert shown(bucket_root / "out" / f"fine{n - 1}.jpg") == 30 + n - 1


def test_a_best_window_that_needs_too_many_frames_fails_only_its_own_job(tmp_path, bucket_root):
    texts = [
        request_line(output="best.jpg", Time=1010, FrameType="best", BestWindow=60000),
        request_line(output="plain.jpg", Time=2010, FrameType="normal"),  # captured after the window
    ]
    found = run_lines(tmp_path, bucket_root, texts, Limits(max_frames_per_point=40))
    assert (found[1]["State"], found[1]["Code"]) == ("Fail", errors.RESOURCE_CONTENT_BAD), found[1]["Message"]
    assert "BestWindow" in found[1]["Message"]
    assert found[2]["State"] == "Success", found[2]["Message"]
    assert shown(bucket_root / "out" / "plain.jpg") == 60


def test_sync_jobs_sharing_a_task_each_have_their_own_time_limit(tmp_path, bucket_root):
    # 80 large pictures in one GOP take seconds together; each alone is far under its 2 s limit
    texts = [request_line(output=f"big{n}.jpg", Time=1010 + 12 * n, FrameType="normal", Width=4096) for n in range(80)]
    found = run_lines(tmp_path, bucket_root, texts, Limits(sync_timeout_s=2))
    assert [found[n]["State"] for n in sorted(found)] == ["Success"] * 80, found[1]["Message"]
    assert shown(bucket_root / "out" / "big79.jpg") == (1010 + 12 * 79) * 30 // 1000


def test_a_job_past_its_limit_fails_alone_and_keeps_its_images(tmp_path, bucket_root):
    slow = request_line(
        output="slow/{Count}.jpg", TimeArray={"TimePointList": list(range(0, 3000, 33))}, FrameType="normal", Width=4096
    )
    quick = [request_line(output=f"quick{n}.jpg", Time=2990 - n, FrameType="normal") for n in range(3)]
    # each capture task of the slow job takes about a second, over its limit of 0.3 s a step
    found = run_lines(tmp_path, bucket_root, [slow, *quick], Limits(async_timeout_s=0.3))
    assert (found[1]["State"], found[1]["Code"]) == ("Fail", errors.SNAPSHOT_TIMEOUT)
    kept = found[1]["Snapshots"]
    assert 0 < len(kept) < 91
    for image in kept:  # every image it lists is there and shows its frame
        assert shown(bucket_root / "out" / image["Object"]) == image["Time"] * 30 // 1000
    assert [found[n]["State"] for n in (2, 3, 4)] == ["Success"] * 3
    assert shown(bucket_root / "out" / "quick0.jpg") == 89


def test_tasks_keep_each_frame_whole_and_cut_inside_a_gop_by_frames_only(bucket_root):
    buckets = Buckets(str(bucket_root))

    def plan(texts: list[str]):
        """The tasks in time order, and whether they came costliest first."""
        parsed = [jobs.read_job(ManifestLine("m", n, text), "now") for n, text in enumerate(texts, 1)]
        cut = tasks.plan_input(parsed, buckets)[1]
        costs = [estimated(task) for task in cut]
        assert costs == sorted(costs, reverse=True)
        return sorted(cut, key=lambda task: task.shots[0].target_pts)

    # 200 jobs asking for the same two times: each frame is decoded by one task, once
    cut = plan([request_line(output=f"{n}.jpg", Time=1010 + 1000 * (n % 2), FrameType="normal") for n in range(200)])
    assert sum(len(t.shots) for t in cut) == 200
    frames = [target for t in cut for target in {s.target_pts for s in t.shots}]
    assert len(frames) == len(set(frames)) == 2
    # 100 frames of one 10 s GOP: a task ends inside it only after MAX_FRAMES_IN_A_GOP frames
    points = list(range(0, 10_000, 100))
    long_gop = request_line(
        obj="v/long_gop.mp4", output="g/{Count}.jpg", TimeArray={"TimePointList": points}, FrameType="normal"
    )
    cut = plan([long_gop])
    assert [len({s.target_pts for s in t.shots}) for t in cut] == [tasks.MAX_FRAMES_IN_A_GOP, 100 - 64]
    # the costliest task comes first, whatever its time: small pictures at 0 s, large ones at 1 s
    small = [request_line(output=f"s{n}.jpg", Time=34 * n, FrameType="normal", Width=32) for n in range(16)]
    large = [request_line(output=f"l{n}.jpg", Time=1000 + 34 * n, FrameType="normal", Width=1280) for n in range(16)]
    parsed = [jobs.read_job(ManifestLine("m", n, text), "now") for n, text in enumerate(small + large, 1)]
    first, second = tasks.plan_input(parsed, buckets)[1]
    assert (first.shots[0].size, second.shots[0].size) == ((1280, 720), (32, 18))
    # large pictures past TASK_COST end a task at the next keyframe, never inside a GOP
    cut = plan([request_line(output=f"{n}.jpg", Time=100 * n, FrameType="normal", Width=4096) for n in range(30)])
    assert len(cut) > 1
    for before, after in itertools.pairwise(cut):
        last, first = before.shots[-1].target_pts, after.shots[0].target_pts
        assert before.probe.keyframe_at_or_before(last) != after.probe.keyframe_at_or_before(first)


def estimated(task: tasks.CaptureTask) -> float:
    return sum(tasks.shot_cost(task.probe, s, p) for p, s in zip([None, *task.shots], task.shots, strict=False))


def test_a_task_carries_only_the_keyframes_its_shots_use(bucket_root, videos):
    texts = [
        request_line(obj="v/long_gop.mp4", output="a.jpg", Time=9000, FrameType="normal"),
        request_line(output="b/{Count}.jpg", TimeArray={"TimePointList": [100, 2900]}, FrameType="normal"),
    ]
    for text, kept in zip(texts, [(0,), (0, 2 * 15360)], strict=True):
        job = jobs.read_job(ManifestLine("m", 1, text), "now")
        _, (task,) = tasks.plan_input([job], Buckets(str(bucket_root)))
        assert task.probe.keyframes == kept  # not the keyframe at 1 s, which no shot needs


def test_identical_shots_are_decoded_and_encoded_once(videos, monkeypatch):
    calls = {"keyframe": 0, "picture": 0}
    for name in calls:
        real = getattr(media, f"_{name}")

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(media, f"_{name}", counted)
    with open(videos("h264.mp4"), "rb") as source:
        probe = media.probe(source)
        shots = [media.Shot(n, 1000, 30 * 512, (320, 180), keyframe=True, owner=str(n)) for n in range(1, 51)]
        captured = list(media.capture(source, shots, probe))
    assert calls == {"keyframe": 1, "picture": 1}
    assert (
        len({id(c.encoded("JPEG", 85)) for c in captured}) == 1 and shown_bytes(captured[0].encoded("JPEG", 85)) == 30
    )


def shown_bytes(jpeg: bytes) -> int:
    import io

    return synth.read_index(Image.open(io.BytesIO(jpeg)))


def test_many_sync_jobs_on_one_input_do_not_time_each_other_out(tmp_path, bucket_root):
    # 1,000 sync jobs on one 10 s GOP: 500 intra at the same point, 500 normal inside the GOP
    texts = [
        request_line(
            obj="v/long_gop.mp4",
            output=f"s/{n}.jpg",
            Time=(n * 37) % 9900 if n % 2 else 5000,
            FrameType="normal" if n % 2 else "intra",
            Width=64,
        )
        for n in range(1000)
    ]
    started = time.monotonic()
    found = run_lines(tmp_path, bucket_root, texts, Limits(sync_timeout_s=5))
    assert len(found) == 1000 and {r["State"] for r in found.values()} == {"Success"}, {
        r["Message"] for r in found.values()
    }
    assert shown(bucket_root / "out" / "s" / "3.jpg") == 111 * 30 // 1000
    assert shown(bucket_root / "out" / "s" / "4.jpg") == 0  # the only keyframe
    assert time.monotonic() - started < 120


def test_a_decoding_process_that_cannot_start_fails_its_jobs_not_the_run(tmp_path, bucket_root):
    found = run_lines(tmp_path, bucket_root, [request_line(), "oops"], Limits(decoder_memory_mb=64))
    assert (found[1]["State"], found[1]["Code"]) == ("Fail", errors.INTERNAL_ERROR)
    assert "did not start" in found[1]["Message"]
    assert found[2]["Code"] == errors.JSON_FORMAT_INVALID


@pytest.mark.parametrize("text", [request_line(Time=1010, FrameType="normal")])
def test_assemble_run_uses_the_same_guards(bucket_root, text):
    result = assemble.run(
        jobs.read_job(ManifestLine("m", 1, text), "now"), Buckets(str(bucket_root)), Limits(isolate=False)
    )
    assert (result.state, result.count) == ("Success", 1)
    assert json.loads(result.to_record()["SnapshotConfig"])["Time"] == 1010


def test_an_input_replaced_between_planning_and_capture_fails_its_jobs(bucket_root, videos):
    buckets = Buckets(str(bucket_root))
    job = jobs.read_job(ManifestLine("m", 1, request_line(output="late.jpg", Time=2500, FrameType="normal")), "now")
    _, (task,) = tasks.plan_input([job], buckets)
    import os
    import shutil

    shutil.copy(videos("vfr.mp4"), bucket_root / "in" / "v" / "h264.mp4")  # another video under the same name
    os.utime(bucket_root / "in" / "v" / "h264.mp4", ns=(1, 1))
    ((_, outcome),) = guarded.run_task_guarded(task, buckets, Limits(isolate=False))
    assert (outcome.error.code, outcome.error.message) == (
        errors.RESOURCE_CONTENT_BAD,
        "the input changed during the job",
    )
    assert not (bucket_root / "out" / "late.jpg").exists()


def test_decoding_processes_die_with_their_parent(tmp_path):
    """The parent is SIGKILLed, as the OOM killer does, while its child decodes (here: sleeps)."""
    import signal
    import subprocess
    import sys

    code = """
import sys, threading, time
from snapshot import isolation

worker = isolation.Worker("spawn")
worker.start()
print(worker.process.pid, flush=True)
worker.call(time.sleep, (60,), 120)
"""
    parent = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(0.5)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_stalled_input_holds_back_the_run_only_for_its_probe_limit(tmp_path, bucket_root):
    import os

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline import local

    os.mkfifo(bucket_root / "in" / "v" / "stalled.mp4")  # reading it never ends
    quick = [request_line(output=f"q/{n}.jpg", Time=(n * 7) % 2900, FrameType="normal", Width=64) for n in range(400)]
    stalled = request_line(obj="v/stalled.mp4", output="s/{Count}.jpg", Num=3)
    limits = Limits(probe_timeout_s=3)

    def run(texts, name) -> float:
        (tmp_path / f"{name}.jsonl").write_text("\n".join(texts) + "\n")
        options = PipelineOptions(local.with_defaults([]))
        started = time.monotonic()
        with beam.Pipeline(runner=local.runner(options), options=options) as p:
            graph.build(
                p, str(tmp_path / f"{name}.jsonl"), str(tmp_path / name), Buckets(str(bucket_root)), limits=limits
            )
        return time.monotonic() - started

    alone = run(quick, "alone")
    together = run([*quick, stalled], "together")
    found = {r["Source"]: r for r in read_results(str(tmp_path / "together"))}
    assert found["together.jsonl:401"]["Code"] == errors.SNAPSHOT_TIMEOUT
    assert sum(r["State"] == "Success" for r in found.values()) == 400
    assert together < alone + limits.probe_timeout_s + 3, (alone, together)
