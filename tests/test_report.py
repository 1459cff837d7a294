"""The run's HTML report, loaded in real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

import fastavro
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from PIL import Image

from pipeline import graph, report
from pipeline.show import read_results
from snapshot.results import load_schema
from snapshot.storage import Buckets
from tests.helpers import ROOT, request_line

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


def selftest(page) -> dict:
    """What the page's self-test reports in Chromium. Its images decode on Chromium's own
    threads, which virtual time does not wait for: on a loaded machine the DOM may be dumped
    before they are done, with the report still empty; then Chromium is asked again."""
    for _ in range(3):
        dom = subprocess.run(
            [*CHROMIUM, "--virtual-time-budget=10000", "--dump-dom", f"{page.as_uri()}#selftest"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        text = dom.split('<pre id="selftest">', 1)[1].split("</pre>", 1)[0]
        if text:
            return json.loads(text)
    raise AssertionError("the page's self-test never reported")


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
    # each picture is embedded once, the WebVTT cues refer to it, and the budget is stated
    images = sum(r["Count"] for r in records) + sum(r["TileCount"] for r in records)
    assert html.count("data:image/jpeg;base64,") == images
    assert f"{images} of {images} images shown; budget {report.IMAGE_BUDGET_MB} MB" in html
    # every thumbnail and sheet links to its full-size object, relative to the report's folder
    links = re.findall(r'<a class="(?:full|sheet)" href="([^"]+)"', html)
    assert len(links) == images and all((out.parent / urllib.parse.unquote(h)).is_file() for h in links)

    found = selftest(out)
    assert found == {"cards": 5, "images": images, "loaded": images, "failedShown": 0, "contact": 4}

    shot = tmp_path / "report.png"
    subprocess.run(
        [*CHROMIUM, "--window-size=1200,1400", f"--screenshot={shot}", out.as_uri()], capture_output=True, timeout=120
    )
    with Image.open(shot) as picture:
        assert picture.size == (1200, 1400) and len(picture.convert("L").getcolors(1 << 16)) > 10


def record(n: int, **fields) -> dict:
    """A result record of line n: a failure unless `fields` say otherwise."""
    return {
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
        **fields,
    }


def test_a_large_run_is_capped_and_says_so():
    records = [record(n) for n in range(2999)] + [record(2999, Code="InvalidParameter.OutOfRange")]
    html = report.page(records, "big", max_cards=100)
    assert html.count('class="card"') == 100 and "Showing the first 100 of 3000 jobs." in html
    # the code filter lists only the codes of the cards shown
    codes = html.split('<select id="code">', 1)[1].split("</select>", 1)[0]
    assert "<option>InvalidParameter</option>" in codes and "OutOfRange" not in codes


def test_the_histogram_has_axes_and_whole_number_bins():
    assert report.bins([1, 1, 1, 2, 5]) == [(1, 1, 3), (2, 2, 1), (3, 3, 0), (4, 4, 0), (5, 5, 1)]
    assert report.bins([0, 1]) == [(0, 0, 1), (1, 1, 1)]
    assert report.bins([0, 4, 4]) == [(0, 0, 1), (1, 1, 0), (2, 2, 0), (3, 3, 0), (4, 4, 2)]
    assert report.bins(list(range(100))) == [(k, k + 9, 10) for k in range(0, 100, 10)]
    assert report.bins([0, 20]) == [(0, 4, 1), (5, 9, 0), (10, 14, 0), (15, 19, 0), (20, 24, 1)]
    html = report.page([record(n, State="Success", Code="", Count=c) for n, c in enumerate([1, 1, 1, 2, 5])], "h")
    assert "<title>1 snapshots: 3 jobs</title>" in html and "<title>5 snapshots: 1 job</title>" in html
    assert ">snapshots per job</text>" in html and ">jobs</text>" in html


def test_large_counts_have_round_bins_and_labels_that_never_meet(tmp_path):
    """Counts up to 1,829 were cut into 0-182, 183-365, ... with the labels running together."""
    counts = [0, 5, 122, 183, 990, 1829]
    assert report.bins(counts) == [(k, k + 199, sum(k <= c < k + 200 for c in counts)) for k in range(0, 2000, 200)]
    assert report.bins([1234567, 1300000])[0] == (1230000, 1239999, 1)  # 1, 2 or 5 x 10^k wide
    for values in (counts, [7, 9, 10, 12, 123_456_789], [1_000_000 + n for n in range(10)]):
        out = tmp_path / "h.html"
        out.write_text(report.page([record(n, Count=c) for n, c in enumerate(values)], "h"))
        dom = subprocess.run([*CHROMIUM, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
        loaded = json.loads(dom.stdout.split('<pre id="loaded">', 1)[1].split("</pre>", 1)[0])
        assert loaded["labelsMeet"] == 0, values
    labels = re.findall(
        r'<text class="label"[^>]*>([^<]*)</text>', report.page([record(1, Count=c) for c in counts], "h")
    )
    assert labels == [str(k) for k in range(0, 2001, 200)]  # each edge under its tick


def test_a_card_names_its_input_percent_decoded():
    source = json.dumps({"Bucket": "in", "Location": "l", "Object": "100%25%20done.mp4"})
    html = report.page([record(1, Input=source)], "d")
    assert 'data-input="100% done.mp4"' in html and '<span class="input">100% done.mp4</span>' in html
    assert "%25" not in html


def test_the_slowest_jobs_by_their_own_times():
    def timed(n: int, start: str, end: str, name: str) -> dict:
        return record(
            n, CreationTime=start, FinishTime=end, Input=json.dumps({"Bucket": "in", "Location": "l", "Object": name})
        )

    records = [timed(n, "2026-01-01T00:00:00Z", f"2026-01-01T00:00:{10 + n:02d}Z", f"clip{n}.mp4") for n in range(6)]
    records.append(timed(6, "2026-01-01T00:00:30Z", "2026-01-01T00:10:30Z", "ten minutes.mp4"))
    listed = re.findall(r"<li>(.*?)</li>", report.page(records, "t").split('class="slowest">', 1)[1])
    assert listed[:2] == ["ten minutes.mp4 (m:6): 600 s", "clip5.mp4 (m:5): 15 s"] and len(listed) == 5
    # results where every job has the run's times say so, rather than list five equal jobs
    same = report.page([timed(n, "2026-01-01T00:00:00Z", "2026-01-01T00:00:17Z", f"c{n}") for n in range(6)], "s")
    assert "do not record each job's own times" in same and 'class="slowest"' not in same
    assert "whole seconds" not in report.page(records, "t")


def test_slowest_jobs_that_tie_in_whole_seconds_say_so_and_list_the_most_images_first():
    def job(n: int, seconds: int, count: int) -> dict:
        return record(
            n,
            CreationTime=f"2026-01-01T00:00:{n:02d}Z",
            FinishTime=f"2026-01-01T00:00:{n + seconds:02d}Z",
            Count=count,
            Input=json.dumps({"Bucket": "in", "Location": "l", "Object": f"c{n}.mp4"}),
        )

    html = report.page([job(1, 1, 3), job(2, 1, 40), job(3, 1, 7), job(4, 0, 99)], "t")
    listed = re.findall(r"<li>(.*?)</li>", html.split('class="slowest">', 1)[1])
    assert listed == ["c2.mp4 (m:2): 1 s", "c3.mp4 (m:3): 1 s", "c1.mp4 (m:1): 1 s", "c4.mp4 (m:4): 0 s"]
    assert "whole seconds" not in html  # not every listed job ties
    html = report.page([job(1, 1, 3), job(2, 1, 40), job(3, 1, 7)], "t")
    assert re.findall(r"<li>(c\d)", html) == ["c2", "c3", "c1"]
    assert "times are whole seconds, so they are listed most images first" in html


def test_the_report_goes_into_a_folder_that_does_not_exist_yet(tmp_path):
    schema = fastavro.parse_schema(load_schema())
    with open(tmp_path / "res-00000-of-00001.avro", "wb") as out:
        fastavro.writer(out, schema, [record(1)])
    target = tmp_path / "new" / "folder" / "report.html"
    assert report.main([str(tmp_path / "res"), "--out", str(target)]) == 0 and target.is_file()
    (tmp_path / "file").write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.report", str(tmp_path / "res"), "--out", str(tmp_path / "file" / "r.html")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("error: cannot write") and done.stderr.count("\n") == 1


def test_ten_thousand_results_make_a_small_page_that_loads_fast(tmp_path):
    """Real small images, two per job, with a WebVTT track on every tenth job: the page stays
    under 15 MB with the image budget respected, and headless Chromium loads it in under 5 s."""
    folder = tmp_path / "buckets" / "out"
    records = []
    for n in range(10_000):
        (folder / f"{n}").mkdir(parents=True)
        snaps = []
        for k in (1, 2):
            Image.new("RGB", (320, 180), ((n * 7) % 256, (n * 13 + k * 90) % 256, (n * 29) % 256)).save(
                folder / f"{n}" / f"{k:05d}.jpg", quality=85
            )
            url = (folder / f"{n}" / f"{k:05d}.jpg").as_uri()
            snaps.append(
                {
                    "Object": f"{n}/{k:05d}.jpg",
                    "Url": url,
                    "Time": k * 1000,
                    "FrameTime": k * 1000,
                    "Width": 320,
                    "Height": 180,
                }
            )
        vtt = None
        if n % 10 == 0:
            (folder / f"{n}" / "00001.vtt").write_text(
                "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n00001.jpg\n\n00:00:02.000 --> 00:00:03.000\n00002.jpg\n"
            )
            vtt = (folder / f"{n}" / "00001.vtt").as_uri()
        records.append(record(n, State="Success", Code="", Message="", Count=2, Snapshots=snaps, Vtt=vtt))
    with open(tmp_path / "res-00000-of-00001.avro", "wb") as results:
        fastavro.writer(results, fastavro.parse_schema(load_schema()), records)
    out = tmp_path / "report.html"
    assert report.main([str(tmp_path / "res"), "--out", str(out)]) == 0
    html = out.read_text()
    assert out.stat().st_size <= 15 << 20 and html.count('class="card"') == 10_000
    shown = html.count("data:image/jpeg;base64,")
    embedded = sum(len(uri) for uri in re.findall(r'"(data:image/jpeg;base64,[^"]+)"', html))
    assert embedded <= report.IMAGE_BUDGET_MB * (1 << 20) and 1000 < shown < 20_000
    assert f"{shown} of 20000 images shown; budget {report.IMAGE_BUDGET_MB} MB" in html

    # On a shared machine a run can be slowed by others: each time is the best of up to 3 runs.
    def load_ms() -> int:  # the load event, timed by the page itself from the start of the navigation
        dom = subprocess.run([*CHROMIUM, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=300)
        loaded = json.loads(dom.stdout.split('<pre id="loaded">', 1)[1].split("</pre>", 1)[0])
        assert loaded["cards"] == 10_000
        return loaded["ms"]

    def picture_s() -> float:  # Chromium's start, the load and a picture of the page
        started = time.monotonic()
        shot = tmp_path / "shot.png"
        subprocess.run(
            [*CHROMIUM, "--window-size=1200,1400", f"--screenshot={shot}", out.as_uri()],
            capture_output=True,
            timeout=300,
        )
        assert shot.stat().st_size > 0
        return time.monotonic() - started

    assert best_of(3, load_ms, 5000) <= 5000
    assert best_of(3, picture_s, 5.0) <= 5.0


def best_of(runs: int, measure, limit: float) -> float:
    """The least of up to `runs` measures, stopping at the first within `limit`."""
    found = measure()
    for _ in range(runs - 1):
        if found <= limit:
            break
        found = min(found, measure())
    return found
