"""Every manifest line, whatever its bytes, gets exactly one result that Avro can write."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import fastavro
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import graph
from pipeline.show import read_results
from snapshot import assemble, errors, jobs, results, spec
from snapshot.jobs import ManifestLine
from snapshot.results import JobResult
from snapshot.storage import Buckets
from tests.helpers import ROOT, request_line

from .test_properties import KEYS

SCHEMA = fastavro.parse_schema(results.load_schema())
CODES = {value for name, value in vars(errors).items() if name.isupper()}

hostile = st.one_of(
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["\ud800", "\udc80x", "a\udfff", "1e999", "-0", "NaN", "<b>x</b>", "\u202e", "9" * 400]),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    hostile,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def lines(draw) -> str:
    """A good request with hostile values put into some of its fields, at every level."""
    line = json.loads(
        request_line(
            Num=2,
            Interval=1,
            TileOut={},
            TileOutputFile={"Bucket": "out", "Location": "l", "Object": "t/{TileCount}.jpg"},
        )
    )
    line["UserData"], line["PipelineId"] = "u", "p"
    config = line["SnapshotConfig"]
    places = [line, line["Input"], config, config["OutputFile"], config["TileOut"], config["TileOutputFile"]]
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(places))
        where[draw(st.sampled_from(KEYS))] = draw(values)
    return json.dumps(line, allow_nan=True)  # NaN and Infinity as Python writes them; surrogates as \u escapes


@settings(max_examples=500, deadline=None)
@given(lines())
def test_any_value_in_any_field_gives_one_writable_result(text):
    job = jobs.read_job(ManifestLine("m.jsonl", 1, text), "now")
    if job.error is not None:
        assert job.error.code in CODES and job.error.message
        result = assemble.failed(job, job.error)
    else:
        config = job.request.config
        assert all(0 <= t <= spec.MAX_TIME_MS for t in (config.time_ms, *(config.time_array or ())))
        assert config.interval_ms is None or 0 <= config.interval_ms <= spec.MAX_TIME_MS
        result = JobResult(
            job.id,
            job.source,
            results.State.SUCCESS,
            "now",
            "now",
            input=job.echo.input,
            snapshot_config=job.echo.config,
            pipeline_id=job.echo.pipeline_id,
            user_data=job.echo.user_data,
        )
    record = result.to_record()
    assert fastavro.validation.validate(record, SCHEMA)
    for key in ("Input", "SnapshotConfig"):
        if record[key] is not None:
            json.loads(record[key], parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    record["Message"].encode("utf-8")


def test_numbers_are_refused_with_the_field_named():
    for fields, code, field in [
        ({"Interval": 1e308, "Num": 2}, errors.OUT_OF_RANGE, "SnapshotConfig.Interval"),
        ({"Time": 10**300}, errors.OUT_OF_RANGE, "SnapshotConfig.Time"),
        ({"Time": 2**63}, errors.OUT_OF_RANGE, "SnapshotConfig.Time"),
        ({"TileOut": {"CellSelStep": 10**300}}, errors.OUT_OF_RANGE, "SnapshotConfig.TileOut.CellSelStep"),
        ({"TimeArray": {"TimePointList": [1, 10**300]}}, errors.OUT_OF_RANGE, "TimePointList[1]"),
        ({"Width": "1e999"}, errors.INVALID_PARAMETER, "SnapshotConfig.Width"),
        ({"Width": " 1_0 "}, errors.INVALID_PARAMETER, "SnapshotConfig.Width"),
    ]:
        job = jobs.read_job(
            ManifestLine(
                "m",
                1,
                request_line(TileOutputFile={"Bucket": "out", "Location": "l", "Object": "t{TileCount}.jpg"}, **fields),
            ),
            "now",
        )
        assert (job.error.code, field in job.error.message) == (code, True), job.error.message
    assert spec.parse_request(request_line(Time=" 1500 ", Width="3.2e2")).config.width == 320


def test_lone_surrogates_are_refused_with_the_field_named():
    line = json.loads(request_line())
    line["UserData"] = "\udc80"
    job = jobs.read_job(ManifestLine("m", 1, json.dumps(line)), "now")
    assert (job.error.code, job.error.message.split()[0]) == (errors.INVALID_PARAMETER, "UserData")
    job = jobs.read_job(ManifestLine("m", 1, request_line(output="a\ud800/{Count}.jpg")), "now")
    assert job.error.code == errors.INVALID_PARAMETER
    assert job.error.message.startswith("SnapshotConfig.OutputFile.Object")
    record = assemble.failed(job, job.error).to_record()
    assert "\ufffd" in record["SnapshotConfig"] and fastavro.validation.validate(record, SCHEMA)


def test_a_parser_bug_is_still_a_coded_result_of_that_line(monkeypatch):
    monkeypatch.setattr(spec, "parse_request", lambda text: 1 / 0)
    job = jobs.read_job(ManifestLine("m", 1, request_line()), "now")
    assert job.error.code == errors.INVALID_PARAMETER


def test_hostile_lines_in_a_run_each_get_their_result(tmp_path, bucket_root):
    texts = [
        request_line(Interval=1e308, Num=2),
        request_line(Time=2**63),
        request_line(output="good.jpg", Time=1010, FrameType="normal"),
        json.dumps({**json.loads(request_line()), "UserData": "\udc80"}),
        request_line(output="x\ud800.jpg"),
        request_line().replace('"Time": 0', '"Time": NaN'),
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b"\xef\xbb\xbf" + "\n".join(texts).encode() + b"\n" + b'{"Input": "\xff\xfe"}\n')
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(manifest), str(tmp_path / "res"), Buckets(str(bucket_root)))
    found = {int(r["Source"].rsplit(":", 1)[1]): (r["State"], r["Code"]) for r in read_results(str(tmp_path / "res"))}
    assert found == {
        1: ("Fail", errors.OUT_OF_RANGE),
        2: ("Fail", errors.OUT_OF_RANGE),
        3: ("Success", ""),
        4: ("Fail", errors.INVALID_PARAMETER),
        5: ("Fail", errors.INVALID_PARAMETER),
        6: ("Fail", errors.JSON_FORMAT_INVALID),
        7: ("Fail", errors.JSON_FORMAT_INVALID),
    }


def test_the_sync_command_answers_hostile_numbers_without_a_traceback(tmp_path, bucket_root):
    for config in ({"Time": 0, "Interval": 1e308, "Num": 2}, {"Time": 10**300}):
        config["OutputFile"] = {"Bucket": "out", "Location": "l", "Object": "{Count}.jpg"}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.submit",
                "--input",
                json.dumps({"Bucket": "in", "Location": "l", "Object": "v/h264.mp4"}),
                "--config",
                json.dumps(config),
                "--bucket_root",
                str(bucket_root),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**__import__("os").environ, "PYTHONPATH": ROOT},
        )
        assert done.returncode == 3 and "Traceback" not in done.stderr, done.stderr
        assert json.loads(done.stdout)["SnapshotJob"]["Code"] == errors.OUT_OF_RANGE


def test_same_file_names_in_two_folders_of_one_glob_stay_apart(tmp_path, bucket_root):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "jobs.jsonl").write_text("not json\n")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(tmp_path / "*" / "jobs.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)))
    found = read_results(str(tmp_path / "res"))
    assert sorted(r["Source"] for r in found) == ["a/jobs.jsonl:1", "b/jobs.jsonl:1"]
    assert len({r["Id"] for r in found}) == 2


@pytest.mark.slow
def test_show_reads_its_own_prefix_only(tmp_path, bucket_root):
    (tmp_path / "m.jsonl").write_text("oops\n")
    (tmp_path / "n.jsonl").write_text("oops\n[]\n")
    for manifest, prefix in (("m.jsonl", "res"), ("n.jsonl", "res-v2")):
        with BeamTestPipeline(runner="FnApiRunner") as p:
            graph.build(p, str(tmp_path / manifest), str(tmp_path / prefix), Buckets(str(bucket_root)))
    assert [r["Source"] for r in read_results(str(tmp_path / "res"))] == ["m.jsonl:1"]
    assert len(read_results(str(tmp_path / "res-v2"))) == 2


def test_black_level_and_threshold_apply_to_a_single_image_at_zero():
    config = spec.parse_request(request_line(BlackLevel=50, PixelBlackThreshold=10)).config
    assert (config.black.level, config.black.threshold) == (50, 10)
    assert spec.parse_request(request_line()).config.black == spec.BlackFilter()


def test_nan_and_infinity_are_not_json():
    for constant in ("NaN", "Infinity", "-Infinity"):
        job = jobs.read_job(ManifestLine("m", 1, request_line().replace('"Time": 0', f'"Time": {constant}')), "now")
        assert job.error.code == errors.JSON_FORMAT_INVALID
    assert math.isnan(float("nan"))
