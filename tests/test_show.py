"""`python -m pipeline.show`: its command line, on the results of a real run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import unicodedata

import fastavro
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from pipeline import graph, report, show
from pipeline.show import read_results
from snapshot.results import load_schema
from snapshot.storage import Buckets
from tests.helpers import ROOT, request_line, run_module


@pytest.fixture(scope="module")
def run(tmp_path_factory, videos):
    """The results prefix of a run of four lines: a WebVTT job writing into folders, a plain job,
    a missing input and a line that is not JSON."""
    root = tmp_path_factory.mktemp("show")
    (root / "buckets" / "in" / "v").mkdir(parents=True)
    (root / "buckets" / "out").mkdir()
    shutil.copy(videos("h264.mp4"), root / "buckets" / "in" / "v" / "h264.mp4")
    lines = [
        request_line(output="clips/a/{Count}.jpg", Time=0, Num=3, Interval=0.5, Format="vtt"),
        request_line(),
        request_line(obj="v/missing.mp4"),
        "not json",
    ]
    (root / "m.jsonl").write_text("\n".join(lines) + "\n")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(root / "m.jsonl"), str(root / "res" / "run"), Buckets(str(root / "buckets")))
    return root / "res" / "run"


def command(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return run_module("pipeline.show", *args, cwd=cwd)


def test_help_describes_the_command_and_exits_0():
    done = command("--help")
    assert done.returncode == 0 and "usage: python -m pipeline.show" in done.stdout
    assert "--failed" in done.stdout and "--json" in done.stdout and ".avro" in done.stdout


@pytest.mark.parametrize("args", [[], ["--no_such_flag", "x"]])
def test_a_bad_command_line_exits_2_without_a_traceback(args):
    done = command(*args)
    assert done.returncode == 2 and "usage:" in done.stderr and "Traceback" not in done.stderr


def test_a_prefix_that_matches_nothing_exits_2_with_one_line(tmp_path, run):
    done = command(str(tmp_path / "nothing"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: no results match")
    # the folder of a run, given as if it were a prefix: the line says which prefix it holds
    done = command(str(run.parent))
    assert done.returncode == 2 and str(run) in done.stderr and done.stderr.count("\n") == 1


def test_the_table_has_messages_and_the_tracks_folder(run):
    done = command(str(run))
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["line", "job", "state", "code", "count", "outputs", "message"]
    assert len(rows) == 4
    assert "clips/a/00001.jpg" in rows[0] and "+ clips/a/00001.vtt" in rows[0]
    assert "object 'v/missing.mp4' not found" in rows[2]
    assert "InvalidParameter.JsonFormatInvalid" in rows[3]


def test_a_long_message_is_shortened_to_fit_the_line(run):
    records = read_results(str(run))
    records[2]["Message"] = "x" * 500
    line = list(show.table(records, width=100))[3]
    assert line.endswith("xxx...") and len(line) == max(100, line.index("xxx") + show.MIN_MESSAGE_WIDTH)


def test_failed_and_json_give_the_whole_records_of_failed_jobs(run):
    done = command(str(run), "--failed", "--json")
    assert done.returncode == 0, done.stderr
    found = [json.loads(line) for line in done.stdout.splitlines()]
    expected = [r for r in read_results(str(run)) if r["State"] == "Fail"]
    assert found == expected and len(found) == 2


def test_an_avro_file_and_its_warnings(tmp_path, run):
    """A results file given by its path; a record's warnings show beside its message."""
    schema = load_schema()
    if not any(f["name"] == "Warnings" for f in schema["fields"]):
        schema["fields"].append({"name": "Warnings", "type": {"type": "array", "items": "string"}, "default": []})
    records = read_results(str(run))
    records[1]["Warnings"] = ["unknown key SnapshotConfig.Widht"]
    path = tmp_path / "some results.avro"
    with open(path, "wb") as out:
        fastavro.writer(out, fastavro.parse_schema(schema), records)
    done = command(str(path))
    assert done.returncode == 0, done.stderr
    assert "warning: unknown key SnapshotConfig.Widht" in done.stdout.splitlines()[2]
    done = command(str(path), "--json")
    assert json.loads(done.stdout.splitlines()[1])["Warnings"] == ["unknown key SnapshotConfig.Widht"]


def test_a_closed_pipe_ends_quietly(tmp_path, run):
    """`show PREFIX | head -1` on a table far larger than a pipe's buffer."""
    (record,) = [r for r in read_results(str(run)) if r["State"] == "Success" and not r["Vtt"]]
    with open(tmp_path / "big-00000-of-00001.avro", "wb") as out:
        fastavro.writer(
            out,
            fastavro.parse_schema(load_schema()),
            ({**record, "Source": f"m.jsonl:{n}"} for n in range(1, 5001)),
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.show", str(tmp_path / "big")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])},
    )
    assert process.stdout and process.stderr
    assert process.stdout.readline().split()[0] == b"line"
    process.stdout.close()
    assert process.wait(timeout=120) == 0
    assert process.stderr.read() == b""


def test_a_glob_of_avro_files_and_the_prefix_as_the_run_prints_it(run):
    """`results in PREFIX-*.avro`, as a run's summary says, quoted so that the shell leaves it."""
    expected = read_results(str(run))
    for name in (f"{run}-*.avro", str(run.parent / "*.avro"), str(run.parent / "run-0000?-of-*.avro")):
        done = command(name, "--json")
        assert done.returncode == 0, (name, done.stderr)
        assert [json.loads(line) for line in done.stdout.splitlines()] == expected
    done = command(str(run.parent / "nothing-*.avro"))
    assert done.returncode == 2 and done.stderr.startswith("error: no results match")


def test_report_takes_what_show_takes(tmp_path, run):
    (shard,) = run.parent.glob("run-*.avro")
    for name in (str(shard), f"{run}-*.avro"):
        assert report.main([name, "--out", str(tmp_path / "r.html")]) == 0
        assert (tmp_path / "r.html").read_text().count('class="card"') == 4
    assert report.main([str(tmp_path / "nothing.avro"), "--out", str(tmp_path / "r.html")]) == 2


def test_a_closed_stdout_exits_1_quietly(run):
    done = subprocess.run(
        ["bash", "-c", 'exec "$0" -m pipeline.show "$1" >&-', sys.executable, str(run)],
        cwd=ROOT,
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])},
    )
    assert (done.returncode, done.stderr) == (1, "")


def test_wide_characters_keep_the_columns_aligned(run):
    records = read_results(str(run))
    records[1]["Snapshots"][0]["Object"] = "片段/第一.jpg"
    records[1]["Message"] = "宽"
    lines = list(show.table(records))

    def columns(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)

    starts = {columns(line[: line.rindex("  ") + 2]) for line in lines}
    assert len(starts) == 1 and "片段/第一.jpg" in lines[2]
    assert show.shorten("宽" * 30, 20) == "宽" * 8 + "..."
