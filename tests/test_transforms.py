"""The pipeline's transforms, each run in a TestPipeline on the local FnApiRunner."""

from __future__ import annotations

import json
import os
import threading
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from snapshot import assemble, errors, jobs, synth, tasks
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.results import SnapshotImage
from snapshot.storage import Buckets
from tests.helpers import request_line
from transforms.jobs import AssembleResults, Capture, ParseJobs, PlanCaptures, _Decoding
from transforms.manifest import ReadManifest


def make_pipeline():
    return BeamTestPipeline(runner="FnApiRunner")


def lines(*texts: str) -> list[ManifestLine]:
    return [ManifestLine("m.jsonl", number, text) for number, text in enumerate(texts, start=1)]


def test_read_manifest_numbers_non_blank_lines(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"x": 1}\n\n  \n{"x": 2}\nnot json\n')
    (tmp_path / "b.jsonl").write_bytes(b'{"y": 1}\n\xff\xfe broken utf-8\n')
    with make_pipeline() as p:
        lines = p | ReadManifest(str(tmp_path / "*.jsonl"))
        found = lines | beam.Map(lambda line: (line.source, line.number, line.text))
        assert_that(
            found,
            equal_to(
                [
                    ("a.jsonl", 1, '{"x": 1}'),
                    ("a.jsonl", 4, '{"x": 2}'),
                    ("a.jsonl", 5, "not json"),
                    ("b.jsonl", 1, '{"y": 1}'),
                    ("b.jsonl", 2, "\ufffd\ufffd broken utf-8"),
                ]
            ),
        )


def test_parse_jobs_keeps_every_line_with_a_stable_id():
    texts = [request_line(), "oops", request_line(Width=1)]
    expected = [
        (line.job_id, code)
        for line, code in zip(lines(*texts), [None, errors.JSON_FORMAT_INVALID, errors.OUT_OF_RANGE], strict=True)
    ]
    with make_pipeline() as p:
        parsed = p | beam.Create(lines(*texts)) | ParseJobs()
        assert_that(parsed | beam.Map(lambda job: (job.id, job.error and job.error.code)), equal_to(expected))
    assert len({job_id for job_id, _ in expected}) == 3
    assert all(len(job_id) == 32 and int(job_id, 16) >= 0 for job_id, _ in expected)


def test_plan_captures_splits_jobs_into_tasks_and_reports_failures(bucket_root):
    buckets = Buckets(str(bucket_root))
    texts = [
        request_line(TimeArray={"TimePointList": list(range(0, 2900, 100))}, FrameType="normal"),
        request_line(obj="v/missing.mp4"),
        request_line(Time=9000, FrameType="normal"),
        "not json",
    ]
    parsed_jobs = [jobs.read_job(line, "now") for line in lines(*texts)]
    with make_pipeline() as p:
        planned = p | beam.Create(parsed_jobs) | PlanCaptures(buckets)
        # 29 shots, keyframes every second: a task closes at the first GOP boundary past 16 shots
        assert_that(
            planned.tasks | beam.Map(lambda t: ([p.job_id for p in t.parts], len(t.shots))),
            equal_to([([parsed_jobs[0].id], 20), ([parsed_jobs[0].id], 9)]),
            label="tasks",
        )
        assert_that(
            planned.outcomes
            | beam.MapTuple(lambda job_id, o: (job_id, o.seq, o.planned and o.planned.shots, o.error and o.error.code)),
            equal_to(
                [
                    (parsed_jobs[0].id, 0, 29, None),
                    (parsed_jobs[1].id, 0, None, errors.RESOURCE_NOT_FOUND),
                    (parsed_jobs[2].id, 0, None, errors.RESOURCE_CONTENT_BAD),
                ]
            ),
            label="outcomes",
        )


def test_capture_writes_the_right_frames(bucket_root):
    buckets = Buckets(str(bucket_root))
    job = jobs.read_job(
        lines(
            request_line(output="shots/{Count}.jpg", FrameType="normal", TimeArray={"TimePointList": [2017, 0, 1010]})
        )[0],
        "now",
    )
    _, cut = tasks.plan_input([job], buckets)
    with make_pipeline() as p:
        outcomes = p | beam.Create(cut) | Capture(buckets)
        assert_that(
            outcomes | beam.MapTuple(lambda job_id, o: (job_id, o.seq, o.image.object, o.image.time_ms)),
            equal_to(
                [
                    (job.id, 1, "shots/00001.jpg", 2017),
                    (job.id, 2, "shots/00002.jpg", 0),
                    (job.id, 3, "shots/00003.jpg", 1010),
                ]
            ),
        )
    shown = [synth.read_index(Image.open(bucket_root / "out" / "shots" / f"0000{n}.jpg")) for n in (1, 2, 3)]
    assert shown == [60, 0, 30]


def test_jobs_on_the_same_input_are_planned_together_and_share_their_tasks(bucket_root):
    buckets = Buckets(str(bucket_root))
    texts = [
        request_line(output="a/{Count}.jpg", FrameType="normal", TimeArray={"TimePointList": [2017, 1010]}),
        request_line(output="b.jpg", Time=1010, FrameType="normal", Width=64),
        request_line(output="c/{Count}.jpg", Time=0, Num=2, Interval=2),
        request_line(obj="v/vp9.webm", output="d.jpg", Time=1010, FrameType="normal"),
    ]
    parsed_jobs = [jobs.read_job(line, "now") for line in lines(*texts)]
    with make_pipeline() as p:
        planned = p | beam.Create(parsed_jobs) | PlanCaptures(buckets)
        # one task per input: the three jobs on h264.mp4 share one walk through the file
        assert_that(
            planned.tasks
            | beam.Map(
                lambda t: (t.input.name, sorted(p.job_id for p in t.parts), sorted((s.owner, s.seq) for s in t.shots))
            ),
            equal_to(
                [
                    (
                        "v/h264.mp4",
                        sorted(j.id for j in parsed_jobs[:3]),
                        sorted(
                            [
                                (parsed_jobs[2].id, 1),
                                (parsed_jobs[0].id, 2),
                                (parsed_jobs[1].id, 1),
                                (parsed_jobs[0].id, 1),
                                (parsed_jobs[2].id, 2),
                            ]
                        ),
                    ),
                    ("v/vp9.webm", [parsed_jobs[3].id], [(parsed_jobs[3].id, 1)]),
                ]
            ),
            label="tasks",
        )
        captured = planned.tasks | Capture(buckets)
        found = (
            p | "Jobs" >> beam.Create(parsed_jobs),
            (planned.outcomes, captured) | beam.Flatten(),
        ) | AssembleResults(buckets)
        assert_that(
            found | beam.Map(lambda r: (r.id, r.state, r.count)),
            equal_to([(j.id, "Success", n) for j, n in zip(parsed_jobs, (2, 1, 2, 1), strict=True)]),
            label="results",
        )
    out = bucket_root / "out"
    assert [
        synth.read_index(Image.open(out / name))
        for name in ("a/00001.jpg", "a/00002.jpg", "b.jpg", "c/00001.jpg", "c/00002.jpg", "d.jpg")
    ] == [60, 30, 30, 0, 60, 30]
    assert Image.open(out / "b.jpg").size == (64, 36)


def test_assemble_results_gives_exactly_one_result_per_job(bucket_root):
    buckets = Buckets(str(bucket_root))
    texts = [request_line(Time=0, Num=3, Interval=1), request_line(obj="v/missing.mp4"), "[]"]
    parsed_jobs = [jobs.read_job(line, "now") for line in lines(*texts)]
    with make_pipeline() as p:
        parsed = p | beam.Create(parsed_jobs)
        planned = parsed | PlanCaptures(buckets)
        captured = planned.tasks | Capture(buckets)
        outcomes = (planned.outcomes, captured) | beam.Flatten()
        found = (parsed, outcomes) | AssembleResults(buckets)
        assert_that(
            found | beam.Map(lambda r: (r.id, r.state, r.code, r.count)),
            equal_to(
                [
                    (parsed_jobs[0].id, "Success", "", 3),
                    (parsed_jobs[1].id, "Fail", errors.RESOURCE_NOT_FOUND, 0),
                    (parsed_jobs[2].id, "Fail", errors.JSON_OBJECT_FORMAT_INVALID, 0),
                ]
            ),
        )


def test_a_failure_mid_job_fails_the_job_and_keeps_what_was_written(tmp_path):
    buckets = Buckets(str(tmp_path))
    job = jobs.read_job(lines(request_line(Time=0, Num=2))[0], "now")
    image = SnapshotImage(1, "00001.jpg", "file:///x", 0, 0, 8, 8)
    planned = tasks.Outcome(0, planned=tasks.Planned(3000, 2, None))
    result = assemble.finish(
        job,
        [
            planned,
            tasks.Outcome(1, image=image),
            tasks.Outcome(2, error=errors.SnapshotError(errors.RESOURCE_CONTENT_BAD, "x")),
        ],
        buckets,
    )
    assert (result.state, result.code, result.count) == ("Fail", errors.RESOURCE_CONTENT_BAD, 1)
    # a shot that never arrived is an internal error, never a success
    assert assemble.finish(job, [planned, tasks.Outcome(1, image=image)], buckets).code == errors.INTERNAL_ERROR
    assert assemble.finish(job, [], buckets).code == errors.INTERNAL_ERROR


def test_echo_fields_in_results():
    text = json.dumps(
        {
            "Input": json.dumps({"Bucket": "in", "Location": "l", "Object": "x.mp4"}),
            "SnapshotConfig": {"Time": 0},
            "UserData": "u",
            "PipelineId": "p",
        }
    )
    job = jobs.read_job(lines(text)[0], "2026-01-01T00:00:00Z")
    record = assemble.failed(job, job.error).to_record()
    assert record["Code"] == errors.NULL_VALUE
    assert json.loads(record["Input"]) == {"Bucket": "in", "Location": "l", "Object": "x.mp4"}
    assert json.loads(record["SnapshotConfig"]) == {"Time": 0}
    assert (record["UserData"], record["PipelineId"], record["Source"]) == ("u", "p", "m.jsonl:1")
    assert record["CreationTime"] == "2026-01-01T00:00:00Z"


@pytest.mark.parametrize("workers", [1, 2])
def test_graph_runs_with_local_workers(tmp_path, bucket_root, workers):
    from pipeline import graph
    from pipeline.show import read_results

    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([request_line(Time=0, Num=5, Interval=0.5, FrameType="normal"), "bad"]) + "\n")
    options = ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_threading"]
    with BeamTestPipeline(runner="FnApiRunner", argv=options) as p:
        graph.build(p, str(manifest), str(tmp_path / "res"), Buckets(str(bucket_root)))
    records = read_results(str(tmp_path / "res"))
    assert [(r["Source"], r["State"], r["Count"]) for r in records] == [
        ("m.jsonl:1", "Success", 5),
        ("m.jsonl:2", "Fail", 0),
    ]


_MEET = threading.Barrier(2, timeout=30)


class _Meet(_Decoding):
    """A call that returns only once another call is at work at the same time."""

    def call(self, element):
        _MEET.wait()
        return element

    def outputs(self, result):
        yield result * 10


def test_one_worker_hands_its_calls_over_without_waiting_on_each(tmp_path):
    """Beam's in-process runner, one worker: two calls are in flight at once (sequential
    calls would break the barrier), and every output comes back."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline import local

    options = PipelineOptions([])
    with beam.Pipeline(runner=local.runner(options), options=options) as p:
        found = p | beam.Create([1, 2, 3, 4]) | beam.ParDo(_Meet(Buckets(str(tmp_path)), Limits(max_decoders=2)))
        assert_that(found, equal_to([10, 20, 30, 40]))


def decoding_processes() -> list[int]:
    """The live decoding processes below this one (spawned by multiprocessing)."""
    from benchmarks.common import command_line, descendants

    return [
        pid
        for pid in descendants(os.getpid())
        if "multiprocessing" in command_line(pid) and "resource_tracker" not in command_line(pid)
    ]


def test_decoding_processes_live_as_long_as_their_dofns(tmp_path, bucket_root):
    """Many bundles on worker threads reuse their DoFns' processes; teardown ends every one."""
    from pipeline import graph
    from pipeline.show import read_results

    before = decoding_processes()
    names = ["h264.mp4", "vp9.webm", "hevc10.mkv", "phone.mp4", "ts_from_10s.ts"]
    texts = [
        request_line(obj=f"v/{names[n % 5]}", output=f"p/{n}.jpg", Time=100 * n % 2900, FrameType="normal")
        for n in range(60)
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(texts) + "\n")
    options = ["--direct_num_workers", "2", "--direct_running_mode", "multi_threading"]
    with BeamTestPipeline(runner="FnApiRunner", argv=options) as p:
        graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)))
    assert {r["State"] for r in read_results(str(tmp_path / "res"))} == {"Success"}
    deadline = time.monotonic() + 10
    while decoding_processes() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert decoding_processes() == before


def test_steps_share_decoding_processes_until_the_last_lets_go():
    from snapshot import guarded
    from snapshot.limits import Limits

    before = decoding_processes()
    first, second = guarded.shared_decoding_pool(Limits()), guarded.shared_decoding_pool(Limits())
    assert first is second
    first.prestart(2)
    first.prestart(2)  # already holds 2: starts none
    deadline = time.monotonic() + 20
    while len(decoding_processes()) - len(before) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    started = set(decoding_processes()) - set(before)
    assert len(started) == 2
    first.release()
    assert started <= set(decoding_processes())  # the other user still holds them
    second.release()
    deadline = time.monotonic() + 10
    while set(decoding_processes()) & started and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not set(decoding_processes()) & started
    fresh = guarded.shared_decoding_pool(Limits())
    assert fresh is not first  # the next user gets a pool of its own
    fresh.release()


def test_the_command_starts_decoders_early_and_lets_go_of_them(tmp_path, bucket_root):
    """A local run in this process starts its decoding processes before Beam builds the graph,
    shares them between its steps, and ends them all when it returns."""
    from pipeline import __main__ as command
    from snapshot import isolation
    from tests.helpers import pipeline_args

    before = decoding_processes()
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    assert command.main(pipeline_args(tmp_path / "m.jsonl", tmp_path / "r", bucket_root, "--quiet")) == 0
    assert not isolation._SHARED  # every user released the shared pool
    deadline = time.monotonic() + 10
    while decoding_processes() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert decoding_processes() == before


def test_jobs_on_one_input_are_grouped_by_blocks_of_lines():
    text = request_line()
    key = {n: jobs.input_key(jobs.read_job(ManifestLine("m.jsonl", n, text), "now")) for n in (1, 4999, 5000, 12000)}
    assert key[1] == key[4999] != key[5000] != key[12000]
    other = jobs.input_key(jobs.read_job(ManifestLine("m.jsonl", 1, request_line(obj="v/vp9.webm")), "now"))
    assert other != key[1]
