"""A local run in parts (--lines_per_part): the same results and pictures as one pipeline,
replacing the prefix's earlier results, resumable, and nothing visible when a part fails or
joined from a run that was stopped."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from PIL import Image

from pipeline import __main__ as command
from pipeline import graph, runs
from pipeline.show import read_results
from snapshot import synth
from snapshot.jobs import ManifestLine
from snapshot.parts import Part
from tests.helpers import ROOT, pipeline_args, pipeline_command, request_line

COMPARED = ("Id", "Source", "State", "Code", "Count")


def test_a_manifest_splits_into_parts_of_consecutive_lines_across_its_files():
    lines = [
        ManifestLine(name, number, f"{name} {number}")
        for name, number in [("a.jsonl", 1), ("a.jsonl", 2), ("a.jsonl", 4), ("b.jsonl", 1), ("b.jsonl", 2)]
    ]
    sources = [f"{line.source}:{line.number}" for line in lines]

    parts = runs.plan(lines, 2)

    assert [p.part for p in parts] == [
        Part({"a.jsonl": (1, 2)}),
        Part({"a.jsonl": (4, 4), "b.jsonl": (1, 1)}),
        Part({"b.jsonl": (2, 2)}),
    ]
    assert [[source for source, _ in p.lines] for p in parts] == [sources[:2], sources[2:4], sources[4:]]
    assert parts[1].lines[0][1] == lines[2].job_id and len({p.digest for p in parts}) == 3
    assert not parts[1].part.holds("a.jsonl", 3)
    assert [p.part for p in runs.plan(lines, 5)] == [p.part for p in runs.plan(lines, 0)] == [None]  # one part


def manifest(folder, lines_a: list[str], lines_b: list[str]) -> str:
    folder.mkdir()
    (folder / "a.jsonl").write_text("\n".join(lines_a) + "\n")
    (folder / "b.jsonl").write_text("\n".join(lines_b) + "\n")
    return str(folder / "*.jsonl")


def run(*args, code: int = 0) -> subprocess.CompletedProcess:
    """The command, which must exit `code` (3: some jobs failed)."""
    done = subprocess.run(pipeline_command(*args), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == code, done.stderr
    return done


def pictures(root) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.jpg"))}


@pytest.mark.slow
def test_a_run_in_parts_gives_what_one_pipeline_gives(tmp_path, bucket_root):
    lines_a = [
        request_line(output="a1/{Count}.jpg", Time=0, Num=3, Interval=1, FrameType="normal"),
        "not json",
        request_line(obj="v/missing.mp4", output="a3.jpg"),
        request_line(obj="v/vp9.webm", output="a4.jpg", Time=1500, FrameType="normal"),
    ]
    lines_b = [
        request_line(output="b1.jpg", Time=2017, FrameType="normal"),
        request_line(output="b2/{Count}.jpg", Time=0, Interval=1, FrameType="normal", Width=64),
        request_line(obj="v/phone.mp4", output="b3.jpg", Time=1000, FrameType="normal"),
    ]
    pattern = manifest(tmp_path / "m", lines_a, lines_b)
    whole_root = tmp_path / "whole"
    shutil.copytree(bucket_root, whole_root)

    whole = run(pattern, tmp_path / "whole-r", whole_root, "--lines_per_part", "0", "--quiet", code=3)
    stale = tmp_path / "r.runs" / "20260101T000000Z-000000"  # a stopped run's part, of other lines
    stale.mkdir(parents=True)
    shutil.copy(next(tmp_path.glob("whole-r-*.avro")), stale / "part00000-00000-of-00001.avro")
    (stale / "part00000.json").write_text('{"digest": "of other lines", "shards": ["part00000-00000-of-00001.avro"]}')
    shutil.copy(next(tmp_path.glob("whole-r-*.avro")), tmp_path / "r-00000-of-00099.avro")  # an earlier run's
    parted = run(pattern, tmp_path / "r", bucket_root, "--lines_per_part", "3", "--quiet", code=3)

    assert "7 jobs: 5 succeeded, 2 failed" in whole.stdout and "7 jobs: 5 succeeded, 2 failed" in parted.stdout
    records, expected = read_results(str(tmp_path / "r")), read_results(str(tmp_path / "whole-r"))
    assert [[r[f] for f in COMPARED] for r in records] == [[r[f] for f in COMPARED] for r in expected]
    assert [[s["Object"] for s in r["Snapshots"]] for r in records] == [
        [s["Object"] for s in r["Snapshots"]] for r in expected
    ]
    shards = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("r-"))
    assert shards == [f"r-{n:05d}-of-{len(shards):05d}.avro" for n in range(len(shards))] and len(shards) >= 3
    assert not (tmp_path / "r.runs" / "20260101T000000Z-000000").exists()  # the stopped run's folder is gone
    assert [p.name for p in (tmp_path / "r.runs").iterdir()] == ["commit.json"]  # and this run's
    made = pictures(bucket_root / "out")
    assert made == pictures(whole_root / "out") and len(made) == sum(r["Count"] for r in records) >= 8
    assert synth.read_index(Image.open(bucket_root / "out" / "b1.jpg")) == 60  # 2017 ms at 30 fps, frame-exact


@pytest.mark.slow
def test_a_run_in_parts_resumes_in_parts(tmp_path, bucket_root):
    late = bucket_root / "in" / "v" / "late.mp4"
    lines = [request_line(output=f"{n}.jpg", Time=1000 * n, FrameType="normal") for n in range(3)]
    lines += [request_line(obj="v/late.mp4", output="late.jpg", Time=1010, FrameType="normal")]
    pattern = manifest(tmp_path / "m", lines[:2], lines[2:])

    first = run(pattern, tmp_path / "r1", bucket_root, "--lines_per_part", "2", "--quiet", code=3)
    shutil.copy(bucket_root / "in" / "v" / "h264.mp4", late)
    resumed = run(
        pattern, tmp_path / "r2", bucket_root, "--lines_per_part", "2", "--quiet", "--resume", str(tmp_path / "r1")
    )

    assert "4 jobs: 3 succeeded, 1 failed" in first.stdout
    assert "4 jobs: 3 carried over, 1 succeeded, 0 failed" in resumed.stdout
    assert len(read_results(str(tmp_path / "r2"))) == 4
    assert synth.read_index(Image.open(bucket_root / "out" / "late.jpg")) == 30


@pytest.mark.slow
def test_a_part_that_fails_leaves_no_results(tmp_path, bucket_root, monkeypatch):
    (tmp_path / "m.jsonl").write_text("\n".join(request_line(output=f"{n}.jpg") for n in range(3)) + "\n")
    built = graph.build
    calls = []

    def second_part_fails(p, *args, **kwargs):
        calls.append(kwargs.get("part") or args[-1])
        if len(calls) == 2:
            raise RuntimeError("the second part cannot be built")
        return built(p, *args, **kwargs)

    monkeypatch.setattr(graph, "build", second_part_fails)
    argv = pipeline_args(tmp_path / "m.jsonl", tmp_path / "r", bucket_root, "--lines_per_part", "2", "--quiet")

    assert command.main(argv) == 1
    assert len(calls) == 2 and all(isinstance(part, Part) for part in calls)
    assert not list(tmp_path.glob("r-*"))
    (folder,) = (tmp_path / "r.runs").iterdir()  # the first part is done: kept for the next run
    kept = sorted(p.name for p in folder.iterdir() if not p.is_dir())
    assert kept[-2:] == ["part00000.delivery.json", "part00000.json"] and kept[0].startswith("part00000-00000-of-")
