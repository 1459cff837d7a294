"""The run's HTML report, loaded in real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from PIL import Image

from pipeline import graph, report
from pipeline.show import read_results
from snapshot.storage import Buckets
from tests.helpers import request_line

pytestmark = pytest.mark.slow  # headless Chromium


CHROMIUM = [
    "chromium",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def test_the_report_in_chromium(tmp_path, bucket_root):
    assert shutil.which("chromium"), "Debian's chromium is needed: run_tests.sh installs it"
    tiles = {"Bucket": "out", "Location": "l", "Object": "sheets/{TileCount}.jpg"}
    lines = [
        request_line(output="a/{Count}.jpg", Time=0, Num=4, Interval=0.7, FrameType="normal", Format="vtt"),
        request_line(
            output="b/{Count}.jpg",
            Time=0,
            Num=6,
            Interval=0.5,
            FrameType="normal",
            TileOut={"Lines": 2, "Columns": 3, "CellWidth": 80},
            TileOutputFile=tiles,
            Format="vtt",
            SubOut={"IsSptFrag": "true"},
        ),
        request_line(obj="v/missing.mp4"),
        "not json",
        request_line(Width=5000),
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        graph.build(p, str(tmp_path / "m.jsonl"), str(tmp_path / "res"), Buckets(str(bucket_root)))
    records = read_results(str(tmp_path / "res"))
    out = tmp_path / "moved" / "report.html"
    out.parent.mkdir()
    assert report.main([str(tmp_path / "res"), "--out", str(out)]) == 0
    html = out.read_text()
    assert html.count('class="card"') == len(records) == 5 and "data-job-id" in html

    dom = subprocess.run(
        [*CHROMIUM, "--virtual-time-budget=10000", "--dump-dom", f"{out.as_uri()}#selftest"],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    found = json.loads(dom.split('<pre id="selftest">', 1)[1].split("</pre>", 1)[0])
    images = sum(r["Count"] for r in records) + sum(r["TileCount"] for r in records)
    assert found == {"cards": 5, "images": images, "loaded": images, "failedShown": 0}

    shot = tmp_path / "report.png"
    subprocess.run(
        [*CHROMIUM, "--window-size=1200,1400", f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120
    )
    with Image.open(shot) as picture:
        assert picture.size == (1200, 1400) and len(picture.convert("L").getcolors(1 << 16)) > 10


def test_a_large_run_is_capped_and_says_so():
    records = [
        {
            "Id": f"{n:032x}",
            "Source": f"m:{n}",
            "State": "Fail",
            "Code": "InvalidParameter",
            "Message": "x",
            "Count": 0,
            "TileCount": 0,
            "CreationTime": "2026-01-01T00:00:00Z",
            "FinishTime": "2026-01-01T00:00:01Z",
            "Input": None,
            "SnapshotConfig": None,
            "PipelineId": "",
            "UserData": "",
            "MNSMessageResult": None,
            "Snapshots": [],
            "Tiles": [],
            "Vtt": None,
            "BytesRead": 0,
        }
        for n in range(3000)
    ]
    html = report.page(records, "big", max_cards=100)
    assert html.count('class="card"') == 100 and "Showing the first 100 of 3000 jobs." in html
