"""Sprite sheets, WebVTT tracks and the black-frame filter, proven on pixels."""

from __future__ import annotations

import json

import pytest
import webvtt
from PIL import Image

from snapshot import assemble, errors, jobs, synth
from snapshot.jobs import ManifestLine
from snapshot.storage import Buckets
from tests.helpers import ROOT, request_line

GREEN = (0, 255, 0)


def run_job(bucket_root, text: str):
    job = jobs.read_job(ManifestLine("m.jsonl", 1, text), "now")
    return assemble.run(job, Buckets(str(bucket_root)))


def sprite_line(tile: dict, output="single/{Count}.jpg", tiles="sheets/{TileCount}.jpg", **config) -> str:
    return request_line(
        output=output, TileOut=tile, TileOutputFile={"Bucket": "out", "Location": "local", "Object": tiles}, **config
    )


def close(pixel, expected, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


def test_every_cell_of_every_sheet_shows_its_frame(bucket_root):
    # 8 normal shots, 0.3 s apart: frames 0, 9, 18, ... 63
    tile = {"Lines": 2, "Columns": 3, "CellWidth": 64, "Padding": 4, "Margin": 6, "Color": "#00ff00"}
    result = run_job(bucket_root, sprite_line(tile, Time=0, Num=8, Interval=0.3, FrameType="normal"))
    assert (result.state, result.count, len(result.tiles)) == ("Success", 8, 2)
    sheets = [Image.open(bucket_root / "out" / "sheets" / f"0000{n}.jpg") for n in (1, 2)]
    assert sheets[0].size == (6 + 3 * 64 + 2 * 4 + 6, 6 + 2 * 36 + 4 + 6)
    assert sheets[1].size == (6 + 3 * 64 + 2 * 4 + 6, 6 + 36 + 6)  # 2 cells: 1 line
    for k in range(8):
        sheet, place = divmod(k, 6)
        row, column = divmod(place, 3)
        x, y = 6 + column * 68, 6 + row * 40
        cell = sheets[sheet].crop((x, y, x + 64, y + 36))
        assert synth.read_index(cell) == 9 * k, f"cell {k}"
    first = sheets[0]
    for where in [(2, 2), (first.width - 3, first.height - 3), (6 + 64 + 2, 20), (30, 6 + 36 + 2)]:
        assert close(first.getpixel(where), GREEN), where  # margin, margin, padding, padding
    assert close(sheets[1].getpixel((6 + 2 * 68 + 32, 6 + 18)), GREEN)  # the empty third cell
    assert not close(first.getpixel((6 + 5, 6 + 5)), GREEN)  # inside the first cell: the red marker
    singles = sorted((bucket_root / "out" / "single").iterdir())
    assert [synth.read_index(Image.open(p)) for p in singles] == [9 * k for k in range(8)]
    assert result.tiles[0] == (bucket_root / "out" / "sheets" / "00001.jpg").as_uri()


def test_cell_step_and_not_keeping_single_images(bucket_root):
    tile = {"Lines": 1, "Columns": 4, "CellSelStep": 3, "IsKeepCellPic": "false", "CellHeight": 45}
    result = run_job(
        bucket_root,
        sprite_line(tile, output="never.jpg", tiles="one.jpg", Time=0, Num=10, Interval=0.3, FrameType="normal"),
    )
    assert (result.state, result.count, len(result.tiles)) == ("Success", 10, 1)
    sheet = Image.open(bucket_root / "out" / "one.jpg")
    assert sheet.size == (4 * 80, 45)
    assert [synth.read_index(sheet.crop((80 * c, 0, 80 * c + 80, 45))) for c in range(4)] == [0, 27, 54, 81]
    assert sorted(p.name for p in (bucket_root / "out").iterdir()) == ["one.jpg"]


@pytest.mark.parametrize("fragments", [False, True])
def test_vtt_cues_match_snapshot_times_and_cells(bucket_root, fragments):
    tile = {"Lines": 2, "Columns": 2, "CellWidth": 80}
    text = sprite_line(
        tile,
        output="vod/img-{Count}.jpg",
        tiles="vod/sprites/s-{TileCount}.jpg",
        TimeArray={"TimePointList": [2500, 0, 500, 1000, 1500]},
        FrameType="normal",
        Format="vtt",
        SubOut={"IsSptFrag": str(fragments).lower()},
    )
    result = run_job(bucket_root, text)
    assert result.state == "Success", result.message
    vtt_name = "vod/sprites/s-00001.vtt" if fragments else "vod/img-00001.vtt"
    assert result.vtt == (bucket_root / "out" / vtt_name).as_uri()
    cues = webvtt.read(str(bucket_root / "out" / vtt_name)).captions
    assert [(c.start, c.end) for c in cues] == [
        ("00:00:00.000", "00:00:00.500"),
        ("00:00:00.500", "00:00:01.000"),
        ("00:00:01.000", "00:00:01.500"),
        ("00:00:01.500", "00:00:02.500"),
        ("00:00:02.500", "00:00:03.000"),
    ]
    frames = [0, 15, 30, 45, 75]  # the frame shown at each cue's start
    folder = bucket_root / "out" / vtt_name.rsplit("/", 1)[0]
    for cue, frame in zip(cues, frames, strict=True):
        target, _, box = cue.text.partition("#xywh=")
        picture = Image.open(folder / target)
        if fragments:
            x, y, w, h = map(int, box.split(","))
            picture = picture.crop((x, y, x + w, y + h))
            assert (w, h) == (80, 45)
        else:
            assert not box
        assert synth.read_index(picture) == frame, cue.text


def cue_pictures(vtt_url: str):
    """(start, end, picture) per cue, each cue resolved as a player does: a URL relative to
    the track's, then its #xywh= box cut out."""
    import urllib.parse
    import urllib.request

    cues = webvtt.read(urllib.request.url2pathname(urllib.parse.urlsplit(vtt_url).path)).captions
    for cue in cues:
        url, box = urllib.parse.urldefrag(urllib.parse.urljoin(vtt_url, cue.text))
        picture = Image.open(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        if box:
            x, y, w, h = map(int, box.removeprefix("xywh=").split(","))
            picture = picture.crop((x, y, x + w, y + h))
        yield cue.start, cue.end, picture


@pytest.mark.parametrize("fragments", [False, True])
def test_cues_resolve_as_urls_whatever_the_names_hold(bucket_root, fragments):
    text = sprite_line(
        {"Lines": 1, "Columns": 2},
        output="take #1/50% off?{Count}.jpg",
        tiles="sprite #{TileCount}/s%20{TileCount}.jpg",
        Time=0,
        Num=3,
        Interval=1,
        FrameType="normal",
        Format="vtt",
        SubOut={"IsSptFrag": str(fragments).lower()},
    )
    result = run_job(bucket_root, text)
    assert result.state == "Success", result.message
    assert [synth.read_index(p) for _, _, p in cue_pictures(result.vtt)] == [0, 30, 60]


def test_one_cue_per_image_in_time_order_inside_the_video(bucket_root):
    text = sprite_line(
        {},
        output="ta/{Count}.jpg",
        TimeArray={"TimePointList": [2900, 1000, 2000, 1000]},
        FrameType="normal",
        Format="vtt",
    )
    result = run_job(bucket_root, text)
    cues = list(cue_pictures(result.vtt))
    assert result.count == 4 and len(cues) == 4
    assert [(start, end) for start, end, _ in cues] == [
        ("00:00:01.000", "00:00:02.000"),
        ("00:00:01.000", "00:00:02.000"),  # the same time shares its span
        ("00:00:02.000", "00:00:02.900"),
        ("00:00:02.900", "00:00:03.000"),
    ]
    assert [synth.read_index(p) for _, _, p in cues] == [30, 30, 60, 87]
    late = run_job(bucket_root, request_line(output="late.jpg", Time=50_000, Format="vtt"))
    (cue,) = cue_pictures(late.vtt)
    assert cue[0] < "00:00:03.000" < cue[1] or cue[1] == "00:00:03.000"
    assert synth.read_index(cue[2]) == 60  # the last keyframe


@pytest.fixture
def black_start(tmp_path):
    """Bucket `in` with v/black.mp4: frames 0-44 black, then pattern frames; keyframe each second."""
    root = tmp_path / "blackroot"
    (root / "in" / "v").mkdir(parents=True)
    synth.write_video(
        str(root / "in" / "v" / "black.mp4"),
        frames=150,
        black_frames=45,
        options={"g": "30", "bf": "2", "sc_threshold": "0"},
    )
    synth.write_video(
        str(root / "in" / "v" / "allblack.mp4"), frames=60, black_frames=60, options={"g": "30", "sc_threshold": "0"}
    )
    return root


def first_index(root, result) -> int:
    return (
        synth.read_index(Image.open(root / "out" / result.snapshots[0].object))
        if result.snapshots[0].frame_time_ms
        else -1
    )


@pytest.mark.parametrize(
    "fields, frame",
    [
        ({"Time": 0, "FrameType": "normal"}, 45),  # a single image at 0: always filtered
        ({"Time": 0}, 60),  # intra: the first keyframe that is not black
        ({"Time": 0, "Num": 3, "Interval": 2, "FrameType": "normal", "BlackLevel": 90}, 45),
        ({"Time": 0, "Num": 3, "Interval": 2, "FrameType": "normal"}, -1),  # several images, no BlackLevel: frame 0
        ({"Time": 0, "Num": 3, "Interval": 2, "FrameType": "normal", "BlackLevel": 90, "PixelBlackThreshold": 0}, -1),
    ],
)
def test_the_first_image_skips_black_frames(black_start, fields, frame):
    result = run_job(black_start, request_line(obj="v/black.mp4", output="{Count}.jpg", **fields))
    assert result.state == "Success", result.message
    assert first_index(black_start, result) == frame
    if frame >= 0:
        assert result.snapshots[0].frame_time_ms == round(frame * 1000 / 30)
    if len(result.snapshots) > 1:  # only the first image is filtered
        assert synth.read_index(Image.open(black_start / "out" / result.snapshots[1].object)) == 60


def test_all_black_start_keeps_the_first_frame(black_start):
    result = run_job(black_start, request_line(obj="v/allblack.mp4", output="x.jpg", Time=0, FrameType="normal"))
    assert result.state == "Success" and result.snapshots[0].frame_time_ms == 0
    assert Image.open(black_start / "out" / "x.jpg").convert("L").getextrema()[1] < 40


def test_snapshot_time_placeholder(bucket_root):
    result = run_job(
        bucket_root,
        request_line(
            output="t/{SnapshotTime}-{Count}.jpg", FrameType="normal", TimeArray={"TimePointList": [1010, 40]}
        ),
    )
    assert [s.object for s in result.snapshots] == ["t/1010-00001.jpg", "t/40-00002.jpg"]
    assert synth.read_index(Image.open(bucket_root / "out" / "t" / "1010-00001.jpg")) == 30


def test_a_sheet_over_the_jpeg_limit_fails_before_capturing(bucket_root):
    text = sprite_line({"Lines": 1, "Columns": 300}, Time=0, Num=3, FrameType="normal")
    result = run_job(bucket_root, text)
    assert (result.state, result.code) == ("Fail", errors.INVALID_PARAMETER)
    assert "TileOut" in result.message
    assert list((bucket_root / "out").iterdir()) == []


def test_result_record_lists_tiles_and_vtt(bucket_root):
    text = sprite_line({"Lines": 1, "Columns": 2}, Time=0, Num=3, Interval=1, Format="vtt")
    record = run_job(bucket_root, text).to_record()
    assert (record["Count"], record["TileCount"]) == (3, 2)
    assert record["Tiles"][1].endswith("sheets/00002.jpg") and record["Vtt"].endswith("single/00001.vtt")
    assert json.loads(record["SnapshotConfig"])["TileOut"] == {"Lines": 1, "Columns": 2}


def test_quality_sets_the_jpeg_quality(bucket_root):
    sizes = {}
    for quality in (10, 95):
        result = run_job(
            bucket_root, request_line(output=f"q{quality}.jpg", Time=1010, FrameType="normal", Quality=str(quality))
        )
        assert result.state == "Success"
        path = bucket_root / "out" / f"q{quality}.jpg"
        sizes[quality] = path.stat().st_size
        assert synth.read_index(Image.open(path)) == 30
    assert sizes[10] < sizes[95]
    for bad in (0, 101, "high"):
        result = run_job(bucket_root, request_line(output="x.jpg", Time=0, Quality=bad))
        assert result.code in (errors.OUT_OF_RANGE, errors.INVALID_PARAMETER) and "Quality" in result.message


@pytest.mark.slow
def test_sheets_are_composed_inside_the_capped_decoding_process(bucket_root):
    """A 12,288 x 6,912 sheet (85 MP, 255 MB as RGB): the worker's own memory never holds it."""
    import subprocess
    import sys

    line = sprite_line(
        {"Lines": 3, "Columns": 3},
        output="big/{Count}.jpg",
        tiles="big/sheet.jpg",
        Time=0,
        Num=9,
        Interval=0.3,
        FrameType="normal",
        Width=4096,
    )
    code = f"""
import json
from snapshot import assemble, jobs
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.storage import Buckets
line = {line!r}
result = assemble.run(jobs.read_job(ManifestLine("m", 1, line), "now"), Buckets({str(bucket_root)!r}), Limits())
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps([result.state, result.message, peak_kb // 1024]))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    state, message, peak_mb = json.loads(done.stdout)
    assert state == "Success", message
    assert peak_mb < 200, peak_mb
    sheet = Image.open(bucket_root / "out" / "big" / "sheet.jpg")
    assert sheet.size == (3 * 4096, 3 * 2304)
    assert synth.read_index(sheet.crop((2 * 4096, 2 * 2304, 3 * 4096, 3 * 2304))) == 72


def test_a_webp_sheet_over_16383_px_is_refused_before_any_capture(bucket_root):
    """WebP holds 16,383 px a side: 100 cells of 200 px are refused when the job is planned,
    not as an InternalError once every snapshot was taken."""
    tile = {"Lines": 1, "Columns": 100, "CellWidth": 200}
    line = sprite_line(tile, tiles="sheets/{TileCount}.webp", Time=0, Num=3, Interval=0.5, FrameType="normal")

    result = run_job(bucket_root, line)

    assert (result.state, result.code, result.count) == ("Fail", errors.INVALID_PARAMETER, 0)
    assert "WEBP allows at most 16383 px a side" in result.message
    assert not list((bucket_root / "out").rglob("*.*"))  # nothing was captured
