"""The command line, end to end: python -m pipeline on real manifests, runners and videos."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from alibabacloud_mts20140618 import models as mts
from PIL import Image

from pipeline.show import read_results
from snapshot import errors, results, synth
from tests.helpers import ROOT, request_line

pytestmark = pytest.mark.slow  # whole runs of the command


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def manifest_lines() -> list[str]:
    return [
        request_line(output="poster/{FileName}.jpg", Time=1010, FrameType="normal", Width=160),
        request_line(
            obj="v/phone.mp4",
            output="{ObjectPrefix}{FileName}/{Count}.jpg",
            TimeArray={"TimePointList": [2017, 0]},
            FrameType="normal",
        ),
        request_line(obj="v/vp9.webm", output="spread/{Count}.jpg", Time=0, Num=3, Interval=0, FrameType="normal"),
        request_line(obj="v/missing.mp4"),
        request_line(output="../escape.jpg"),
        "{not json",
        "",
        request_line(Time=0, Width=4097),
    ]


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "jobs.jsonl"
    path.write_text("\n".join(manifest_lines()) + "\n")
    return path


def by_line(prefix) -> dict[int, dict]:
    return {int(r["Source"].rsplit(":", 1)[1]): r for r in read_results(str(prefix))}


def found_message(tmp_path, line: int) -> str:
    return by_line(tmp_path / "res" / "out")[line]["Message"]


def image_index(path) -> tuple[int, tuple[int, int]]:
    with Image.open(path) as image:
        return synth.read_index(image), image.size


def test_a_manifest_end_to_end(tmp_path, manifest, bucket_root):
    done = run(
        "--manifest",
        str(manifest),
        "--results",
        str(tmp_path / "res" / "out"),
        "--bucket_root",
        str(bucket_root),
        "--direct_num_workers",
        "2",
        "--direct_running_mode",
        "multi_processing",
    )
    assert done.returncode == 3, done.stderr  # the run completed, and some jobs failed
    assert done.stdout.splitlines() == [
        f"7 jobs: 3 succeeded, 4 failed; results in {tmp_path / 'res' / 'out'}-*.avro",
        f"  {errors.RESOURCE_NOT_FOUND} x1, e.g. jobs.jsonl:4: object 'v/missing.mp4' not found",
        f"  {errors.PERMISSION_DENIED} x1, e.g. jobs.jsonl:5: {found_message(tmp_path, 5)}",
        f"  {errors.JSON_FORMAT_INVALID} x1, e.g. jobs.jsonl:6: {found_message(tmp_path, 6)}",
        f"  {errors.OUT_OF_RANGE} x1, e.g. jobs.jsonl:8: {found_message(tmp_path, 8)}",
    ]
    found = by_line(tmp_path / "res" / "out")
    assert sorted(found) == [1, 2, 3, 4, 5, 6, 8]  # every non-blank line, once
    assert [(n, found[n]["State"], found[n]["Code"], found[n]["Count"]) for n in sorted(found)] == [
        (1, "Success", "", 1),
        (2, "Success", "", 2),
        (3, "Success", "", 3),
        (4, "Fail", errors.RESOURCE_NOT_FOUND, 0),
        (5, "Fail", errors.PERMISSION_DENIED, 0),
        (6, "Fail", errors.JSON_FORMAT_INVALID, 0),
        (8, "Fail", errors.OUT_OF_RANGE, 0),
    ]
    out = bucket_root / "out"
    assert image_index(out / "poster" / "h264.jpg") == (30, (160, 90))
    assert image_index(out / "v" / "phone" / "00001.jpg") == (60, (180, 320))
    assert image_index(out / "v" / "phone" / "00002.jpg") == (0, (180, 320))
    assert [image_index(out / "spread" / f"0000{n}.jpg")[0] for n in (1, 2, 3)] == [0, 30, 60]
    snaps = found[2]["Snapshots"]
    assert [(s["Object"], s["Time"], s["FrameTime"], s["Width"], s["Height"]) for s in snaps] == [
        ("v/phone/00001.jpg", 2017, 2000, 180, 320),
        ("v/phone/00002.jpg", 0, 0, 180, 320),
    ]
    assert snaps[0]["Url"] == (out / "v" / "phone" / "00001.jpg").as_uri()
    all_files = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert not [f for f in all_files if ".tmp-" in f or f.endswith(".part")]
    assert not (tmp_path / "escape.jpg").exists() and not (bucket_root / "escape.jpg").exists()
    assert found[4]["Message"] and str(tmp_path) not in found[4]["Message"]


def test_a_rerun_gives_the_same_ids_and_images(tmp_path, manifest, bucket_root):
    def once(name):
        assert (
            run(
                "--manifest", str(manifest), "--results", str(tmp_path / name), "--bucket_root", str(bucket_root)
            ).returncode
            == 3  # lines 4 to 8 fail on purpose
        )
        images = {p.relative_to(bucket_root): p.read_bytes() for p in (bucket_root / "out").rglob("*.jpg")}
        return {n: r["Id"] for n, r in by_line(tmp_path / name).items()}, images

    first_ids, first_images = once("first")
    second_ids, second_images = once("second")
    assert first_ids == second_ids and len(set(first_ids.values())) == len(first_ids)
    assert first_images == second_images and len(first_images) == 6


def test_portable_runner_path(tmp_path, manifest, bucket_root):
    done = run(
        "--manifest",
        str(manifest),
        "--results",
        str(tmp_path / "res"),
        "--bucket_root",
        str(bucket_root),
        "--runner",
        "PortableRunner",
        "--job_endpoint",
        "embed",
        "--environment_type",
        "LOOPBACK",
    )
    assert done.returncode == 3, done.stderr
    found = by_line(tmp_path / "res")
    assert [(n, found[n]["State"], found[n]["Count"]) for n in (1, 2, 3, 4)] == [
        (1, "Success", 1),
        (2, "Success", 2),
        (3, "Success", 3),
        (4, "Fail", 0),
    ]
    assert image_index(bucket_root / "out" / "v" / "phone" / "00001.jpg") == (60, (180, 320))


def test_the_run_itself_failing_exits_non_zero_with_a_reason(tmp_path, bucket_root):
    done = run("--manifest", str(tmp_path / "none*.jsonl"), "--results", str(tmp_path / "r"))
    assert done.returncode == 2 and "no manifest matches" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    (tmp_path / "m.jsonl").write_text(request_line() + "\n")
    (tmp_path / "file").write_text("x")
    done = run(
        "--manifest",
        str(tmp_path / "m.jsonl"),
        "--results",
        str(tmp_path / "file" / "r"),
        "--bucket_root",
        str(bucket_root),
    )
    assert done.returncode == 2 and "results" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_sdk_requests_in_and_sdk_responses_out(tmp_path, bucket_root):
    request = mts.SubmitSnapshotJobRequest(
        input=json.dumps({"Bucket": "in", "Location": "oss-cn-hangzhou", "Object": "v%2Fh264.mp4"}),
        snapshot_config=json.dumps(
            {
                "OutputFile": {"Bucket": "out", "Location": "oss-cn-hangzhou", "Object": "sdk/%7BCount%7D.jpg"},
                "Time": "1010",
                "Num": "2",
                "Interval": "1",
                "FrameType": "normal",
            }
        ),
        user_data="from the sdk",
    )
    (tmp_path / "m.jsonl").write_text(json.dumps(request.to_map()) + "\n")
    assert (
        run(
            "--manifest", str(tmp_path / "m.jsonl"), "--results", str(tmp_path / "r"), "--bucket_root", str(bucket_root)
        ).returncode
        == 0
    )
    (record,) = read_results(str(tmp_path / "r"))
    body = mts.SubmitSnapshotJobResponseBody().from_map(results.api_response(record))
    job = body.snapshot_job
    assert (job.state, job.count, job.user_data, job.id) == ("Success", "2", "from the sdk", record["Id"])
    assert (job.input.bucket, job.input.object) == ("in", "v%2Fh264.mp4")
    assert (job.snapshot_config.time, job.snapshot_config.num, job.snapshot_config.frame_type) == (
        "1010",
        "2",
        "normal",
    )
    assert job.snapshot_config.output_file.object == "sdk/%7BCount%7D.jpg"
    assert len(body.request_id) == 36 and job.creation_time.endswith("Z")
    assert [image_index(bucket_root / "out" / "sdk" / f"0000{n}.jpg")[0] for n in (1, 2)] == [30, 60]


def test_repeated_bundles_give_identical_outputs_and_results(tmp_path, manifest, bucket_root):
    """Beam may run a bundle more than once: side effects must be idempotent."""

    def run_into(name, *extra):
        root = tmp_path / name
        shutil.copytree(bucket_root, root)
        done = run(
            "--manifest", str(manifest), "--results", str(tmp_path / name / "res"), "--bucket_root", str(root), *extra
        )
        assert done.returncode == 3, done.stderr
        images = {p.relative_to(root).as_posix(): p.read_bytes() for p in (root / "out").rglob("*") if p.is_file()}
        records = [
            {k: v for k, v in r.items() if k not in ("CreationTime", "FinishTime")}
            for r in read_results(str(tmp_path / name / "res"))
        ]
        for record in records:
            for snapshot in record["Snapshots"]:
                snapshot["Url"] = snapshot["Url"].replace(f"/{name}/", "/")
        return images, records

    plain = run_into("plain")
    repeated = run_into("repeated", "--direct_runner_bundle_repeat", "2")
    assert plain == repeated and len(plain[0]) == 6 and len(plain[1]) == 7


def test_a_bucket_that_is_no_folder_is_named_before_the_run_and_in_each_failure(tmp_path, bucket_root):
    lines = [request_line(), request_line(output="b.jpg"), request_line().replace('"in"', '"media"')]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    done = run(
        "--manifest", str(tmp_path / "m.jsonl"), "--results", str(tmp_path / "r"), "--bucket_root", str(tmp_path)
    )
    warning = f"warning: bucket 'in' is not a folder under {tmp_path}: the jobs that read from it will fail"
    assert done.returncode == 3 and done.stderr.splitlines().count(warning) == 1, done.stderr
    assert f"bucket 'media' is not a folder under {tmp_path}" in done.stderr
    message = "bucket 'in' is not a folder of the bucket root"  # the worker's paths stay out of the results
    assert [r["Message"] for r in read_results(str(tmp_path / "r"))][:2] == [message, message]
    assert done.stdout.splitlines()[1] == f"  {errors.RESOURCE_NOT_FOUND} x3, e.g. m.jsonl:1: {message}"
