"""--resume: a batch run again after a partial failure runs only what failed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import fastavro
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from PIL import Image

from pipeline import accounting, graph, runs
from pipeline.__main__ import resume_files, resume_problem
from pipeline.show import read_results
from snapshot import jobs, synth
from snapshot.assemble import failed
from snapshot.jobs import ManifestLine
from snapshot.results import load_schema
from snapshot.storage import Buckets
from snapshot.tasks import internal_error
from tests.helpers import ROOT, pipeline_args, request_line

pytestmark = pytest.mark.slow  # whole runs of the command


def command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def run_in_process(tmp_path, bucket_root, results: str, resume: str | None = None) -> int:
    """A run in this process; the input bytes it read (the snapshot:input_bytes_read counter)."""
    p = BeamTestPipeline(runner="FnApiRunner")
    previous = resume_files(resume) if resume else None
    graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / results), Buckets(str(bucket_root)), resume=previous)
    outcome = p.run()
    outcome.wait_until_finish()
    counters = outcome.metrics().query(MetricsFilter().with_name("input_bytes_read"))["counters"]
    return sum(c.committed for c in counters)


def images(folder) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*.jpg")}


def test_a_resumed_run_runs_only_what_failed(tmp_path, bucket_root):
    lines = [
        request_line(output="a/{Count}.jpg", Time=0, Num=3, Interval=1, FrameType="normal"),
        request_line(output="b.jpg", Time=1010, FrameType="normal"),
        request_line(
            obj="v/late.mp4", output="late/{Count}.jpg", TimeArray={"TimePointList": [2017, 500]}, FrameType="normal"
        ),
        request_line(obj="v/late.mp4", output="late-poster.jpg", Time=1010, FrameType="normal"),
        "not json",
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    first = command(*pipeline_args(tmp_path / "m.jsonl", tmp_path / "r1", bucket_root))
    assert first.returncode == 3 and "5 jobs: 2 succeeded, 3 failed" in first.stdout
    before = images(bucket_root / "out")
    shutil.copy(bucket_root / "in" / "v" / "h264.mp4", bucket_root / "in" / "v" / "late.mp4")  # the input is fixed

    resumed = command(
        *pipeline_args(tmp_path / "m.jsonl", tmp_path / "r2", bucket_root, "--resume", str(tmp_path / "r1"))
    )
    assert resumed.returncode == 3, resumed.stderr  # one job still fails
    assert "5 jobs: 2 carried over, 2 succeeded, 1 failed" in resumed.stdout
    old = {r["Source"]: r for r in read_results(str(tmp_path / "r1"))}
    new = {r["Source"]: r for r in read_results(str(tmp_path / "r2"))}
    assert sorted(new) == [f"m.jsonl:{n}" for n in range(1, 6)]  # one record per line
    assert new["m.jsonl:1"] == old["m.jsonl:1"] and new["m.jsonl:2"] == old["m.jsonl:2"]  # carried unchanged
    assert [new[f"m.jsonl:{n}"]["State"] for n in (3, 4, 5)] == ["Success", "Success", "Fail"]
    after = images(bucket_root / "out")
    assert {name: after[name] for name in before} == before  # not written again: same times, same bytes
    assert synth.read_index(Image.open(bucket_root / "out" / "late" / "00001.jpg")) == 60
    assert synth.read_index(Image.open(bucket_root / "out" / "late-poster.jpg")) == 30

    itself = command(
        *pipeline_args(tmp_path / "m.jsonl", tmp_path / "r2", bucket_root, "--resume", str(tmp_path / "r2"))
    )  # the prefix's own results change only at the commit: it may resume itself
    assert "5 jobs: 4 carried over, 0 succeeded, 1 failed" in itself.stdout, itself.stderr

    full = run_in_process(tmp_path, bucket_root, "r3")
    again = run_in_process(tmp_path, bucket_root, "r4", resume=str(tmp_path / "r2"))
    assert 0 == again < full  # everything succeeded in r2: nothing left to read
    assert len(read_results(str(tmp_path / "r4"))) == 5


def test_resume_refuses_what_it_cannot_use(tmp_path, bucket_root):
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    (tmp_path / "other-00000-of-00001.avro").write_bytes(b"not avro at all")
    base = pipeline_args(tmp_path / "m.jsonl", tmp_path / "r", bucket_root)
    for previous, reason in [
        (tmp_path / "none", "matches no results"),
        (tmp_path / "other", "is not a results file of this pipeline"),
    ]:
        done = command(*base, "--resume", str(previous))
        assert done.returncode == 2 and reason in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("r-*"))


def test_resume_carries_the_results_of_an_earlier_version(tmp_path, bucket_root):
    """Results written before ColorIn, ToneMapped and Warnings existed are read with their defaults."""
    line = request_line(output="a.jpg", FrameType="normal")
    (tmp_path / "m.jsonl").write_text(line + "\n")
    added = ("ColorIn", "ToneMapped", "Warnings")
    schema = load_schema()
    schema["fields"] = [f for f in schema["fields"] if f["name"] not in added]
    job = jobs.read_job(ManifestLine("m.jsonl", 1, line), "2026-11-01T00:00:00Z")
    old = failed(job, internal_error()).to_record()
    old = {**{k: v for k, v in old.items() if k not in added}, "State": "Success", "Code": ""}
    with open(tmp_path / "old-00000-of-00001.avro", "wb") as out:
        fastavro.writer(out, fastavro.parse_schema(schema), [old])

    assert resume_problem(str(tmp_path / "old")) is None
    assert run_in_process(tmp_path, bucket_root, "new", resume=str(tmp_path / "old")) == 0  # nothing captured
    (carried,) = read_results(str(tmp_path / "new"))
    assert carried == {**old, "ColorIn": "", "ToneMapped": False, "Warnings": []}


def test_resume_matches_requests_by_their_text_wherever_the_lines_moved(tmp_path, bucket_root):
    poster = request_line(output="poster.jpg", Time=1010, FrameType="normal")
    twice = request_line(output="t/{Count}.jpg", Time=0, Num=2, Interval=1, FrameType="normal")  # a repeated line
    late = request_line(obj="v/late.mp4", output="late.jpg", Time=1010, FrameType="normal")  # no input yet
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([poster, twice, late, twice]) + "\n")
    first = command(*pipeline_args(manifest, tmp_path / "r1", bucket_root))
    assert "4 jobs: 3 succeeded, 1 failed" in first.stdout, first.stderr
    before = images(bucket_root / "out")
    shutil.copy(bucket_root / "in" / "v" / "h264.mp4", bucket_root / "in" / "v" / "late.mp4")
    # a blank line and a new request on top: every line moves
    new = request_line(output="new.jpg", Time=2017, FrameType="normal")
    manifest.write_text("\n" + "\n".join([new, twice, poster, late, twice]) + "\n")

    resumed = command(*pipeline_args(manifest, tmp_path / "r2", bucket_root, "--resume", str(tmp_path / "r1")))
    assert "5 jobs: 3 carried over, 2 succeeded, 0 failed" in resumed.stdout, resumed.stderr
    assert "carried nothing" not in resumed.stdout
    old = {r["Id"]: r for r in read_results(str(tmp_path / "r1"))}
    found = {r["Source"]: r for r in read_results(str(tmp_path / "r2"))}
    # each record has its line's Source and the id a run without --resume gives that line
    assert sorted((r["Source"], r["Id"]) for r in found.values()) == sorted(
        runs.requests(accounting.manifest_lines(str(manifest)))
    )
    for source in ("m.jsonl:3", "m.jsonl:4", "m.jsonl:6"):  # both occurrences of the repeated line, and the poster
        assert found[source] == {**old[found[source]["Id"]], "Source": source}
    after = images(bucket_root / "out")
    assert {name: after[name] for name in before} == before  # nothing carried was written again
    assert synth.read_index(Image.open(bucket_root / "out" / "new.jpg")) == 60
    assert synth.read_index(Image.open(bucket_root / "out" / "late.jpg")) == 30

    (tmp_path / "other.jsonl").write_text(poster + "\n")  # another manifest file: other ids
    nothing = command(
        *pipeline_args(tmp_path / "other.jsonl", tmp_path / "r3", bucket_root, "--resume", str(tmp_path / "r2"))
    )
    assert (
        f"note: --resume {tmp_path / 'r2'} carried nothing over: no request of this manifest (same file name and "
        in (nothing.stdout)
    ), nothing.stderr
    assert "text) succeeded there; a renamed manifest makes new jobs\n1 job: 1 succeeded, 0 failed" in nothing.stdout
