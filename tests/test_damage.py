"""A damage campaign: over a thousand damaged videos, three jobs each, in one isolated run.
Every job ends with Success and images that decode, or with a documented code that is not
InternalError; nothing hangs, nothing leaks a path or a traceback, every line has its result."""

from __future__ import annotations

import collections
import io
import json
import time
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image

from pipeline import graph, local
from pipeline.show import read_results
from snapshot import errors
from snapshot.limits import Limits
from snapshot.storage import Buckets

from . import damage

pytestmark = pytest.mark.slow  # 1,500 damaged files

SOURCES = ["h264.mp4", "h264_faststart.mp4", "hevc10.mkv", "vp9.webm", "ts_from_10s.ts", "phone.mp4"]
PER_SOURCE = 250  # 1,500 damaged files
LIMITS = Limits(sync_timeout_s=5, async_timeout_s=20, probe_timeout_s=20)


def jobs_for(name: str) -> list[dict]:
    out = {"Bucket": "out", "Location": "l"}
    return [
        {"Time": 1510, "FrameType": "normal", "OutputFile": {**out, "Object": f"{name}/normal.jpg"}},
        {
            "Time": 0,
            "Num": 4,
            "Interval": 0.7,
            "FrameType": "intra",
            "OutputFile": {**out, "Object": f"{name}/intra-{{Count}}.jpg"},
        },
        {
            "TimeArray": {"TimePointList": [0, 900, 2100]},
            "FrameType": "normal",
            "Width": 96,
            "OutputFile": {**out, "Object": f"{name}/array-{{Count}}.jpg"},
        },
        {"FrameType": "scene", "Num": 3, "Width": 96, "OutputFile": {**out, "Object": f"{name}/scene-{{Count}}.jpg"}},
    ]


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, videos):
    root = tmp_path_factory.mktemp("damage")
    bucket = root / "buckets" / "in"
    bucket.mkdir(parents=True)
    lines, kinds = [], {}
    for index, source in enumerate(SOURCES):
        data = Path(videos(source)).read_bytes()
        stem, ext = source.rsplit(".", 1)
        for n, (kind, damaged) in enumerate(damage.variants(data, index, PER_SOURCE)):
            name = f"{stem}-{n:03d}-{kind}.{ext}"
            (bucket / name).write_bytes(damaged)
            kinds[name] = kind
            for config in jobs_for(name):
                lines.append(
                    json.dumps({"Input": {"Bucket": "in", "Location": "l", "Object": name}, "SnapshotConfig": config})
                )
    (root / "m.jsonl").write_text("\n".join(lines) + "\n")
    options = PipelineOptions(local.with_defaults([]))
    started = time.monotonic()
    import apache_beam as beam

    with beam.Pipeline(runner=local.runner(options), options=options) as p:
        graph.build(p, str(root / "m.jsonl"), str(root / "res"), Buckets(str(root / "buckets")), limits=LIMITS)
    seconds = time.monotonic() - started
    records = read_results(str(root / "res"))
    return records, lines, kinds, root, seconds


def test_at_least_a_thousand_damaged_files(campaign):
    _, _, kinds, _, _ = campaign
    assert len(kinds) >= 1000
    assert len(set(kinds.values())) == len(damage.KINDS)


def test_every_line_has_one_result_and_no_internal_error(campaign):
    records, lines, kinds, _, seconds = campaign
    assert sorted(int(r["Source"].rsplit(":", 1)[1]) for r in records) == list(range(1, len(lines) + 1))
    codes = collections.Counter(r["Code"] or "Success" for r in records)
    print(f"\n{len(kinds)} files, {len(records)} jobs in {seconds:.0f} s: {dict(codes.most_common())}")
    internal = [
        (json.loads(lines[int(r["Source"].rsplit(":", 1)[1]) - 1])["Input"]["Object"], r["Message"])
        for r in records
        if r["Code"] == errors.INTERNAL_ERROR
    ]
    assert internal == []
    assert seconds < 600  # nothing hung: each step is bounded by LIMITS
    documented = {value for name, value in vars(errors).items() if name.isupper()}
    assert set(codes) - {"Success"} <= documented


def test_messages_leak_no_path_or_traceback(campaign):
    records, _, _, root, _ = campaign
    for record in records:
        assert str(root) not in record["Message"] and "Traceback" not in record["Message"], record["Message"]
        assert "/tmp" not in record["Message"]


def test_successful_images_decode(campaign):
    records, _, _, root, _ = campaign
    for record in records:
        for snapshot in record["Snapshots"] if record["State"] == "Success" else ():
            with Image.open(io.BytesIO((root / "buckets" / "out" / snapshot["Object"]).read_bytes())) as image:
                image.load()
                assert image.size == (snapshot["Width"], snapshot["Height"])


def test_a_full_output_disk_fails_the_jobs_that_could_not_write(tmp_path, bucket_root):
    """The command may write files of 30,000 bytes at most (RLIMIT_FSIZE, a real fault): small
    pictures fit, 4096-wide ones do not."""
    import subprocess

    from tests.helpers import ROOT, pipeline_command, request_line

    lines = [
        request_line(output="small.jpg", Time=1010, FrameType="normal", Width=64),
        request_line(output="big.jpg", Time=1010, FrameType="normal", Width=4096),
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        pipeline_command(str(tmp_path / "m.jsonl"), str(tmp_path / "res"), str(bucket_root), max_file_bytes=30_000),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 3, done.stderr  # the big one failed
    found = {r["Source"]: r for r in read_results(str(tmp_path / "res"))}
    assert found["m.jsonl:1"]["State"] == "Success"
    assert (found["m.jsonl:2"]["Code"], found["m.jsonl:2"]["Message"]) == (
        errors.STORAGE_FULL,
        "writing 'big.jpg' failed: File too large",
    )
    assert sorted(p.name for p in (bucket_root / "out").iterdir()) == ["small.jpg"]  # no partial file
