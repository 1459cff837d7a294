"""`FrameType: scene` (docs/contract.md#scenes): one snapshot per shot, on a video made of known
shots: hard cuts, a shot whose stripes slide, a fade through black and a dissolve. Each frame
shows its index in a small inset at the top left (a quarter of the width and height)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import scenes
from snapshot import errors, jobs, media, plan, shots, spec, synth, tasks
from snapshot.errors import SnapshotError
from snapshot.jobs import ManifestLine
from snapshot.limits import Limits
from snapshot.spec import FrameType, ObjectRef, SnapshotConfig
from snapshot.storage import Buckets
from tests.helpers import request_line, run_in_buckets

FPS, SIZE = 30, (320, 180)
OUT = ObjectRef("out", "x", "{Count}.jpg")
# A: 0-44 checker; B: 45-89 stripes (hard cuts at 45 and 90); C: 90-149 sliding stripes, fading
# out over 150-164; D: fading in over 165-179, circles to 269; dissolve D -> E over 270-299; E.
FRAMES, CUTS, FADE, DISSOLVE, MOVING = 360, (45, 90), (150, 180), (270, 300), (90, 150)
SHOT_OF = [(0, 45), (45, 90), (90, 165), (165, 285), (285, 360)]  # frames, transitions split in the middle


def content(shot: str, index: int) -> np.ndarray:
    """The picture of `shot` (A to E) at frame `index`, as float luma-ish RGB."""
    width, height = SIZE
    y, x = np.mgrid[0:height, 0:width]
    if shot == "A":
        grey = np.where((x // 8 + y // 8) % 2, 140, 80)
    elif shot == "B":
        grey = np.where((x // 20) % 2, 200, 40)
    elif shot == "C":
        grey = np.where(((x + y + 3 * index) // 12) % 2, 170, 30)
    elif shot == "D":
        grey = np.where(((x % 40 - 20) ** 2 + (y % 40 - 20) ** 2) < 150, 250, 100)
    else:
        grey = x * 255 // width
    return np.repeat(grey[..., None], 3, axis=2).astype(np.float64)


def picture(index: int) -> np.ndarray:
    if index < 45:
        pixels = content("A", index)
    elif index < 90:
        pixels = content("B", index)
    elif index < 165:
        pixels = content("C", index) * min(1.0, (164 - index) / 15)
    elif index < 270:
        pixels = content("D", index) * min(1.0, (index - 165) / 15)
    elif index < 300:
        share = (index - 269) / 31
        pixels = content("D", index) * (1 - share) + content("E", index) * share
    else:
        pixels = content("E", index)
    return pixels.astype(np.uint8)


def edit(index: int, _: Image.Image) -> Image.Image:
    pixels = picture(index)
    width, height = SIZE
    pixels[: height // 4, : width // 4] = synth.pattern(index, width // 4, height // 4)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("scenes") / "scenes.mp4")
    synth.write_video(path, frames=FRAMES, fps=FPS, size=SIZE, edit=edit)
    return path


def inset_index(image: Image.Image) -> int:
    return synth.read_index(image.crop((0, 0, image.width // 4, image.height // 4)))


def detected(path: str) -> list[int]:
    """The first frame index of each shot found."""
    with open(path, "rb") as source:
        probe = media.probe(source)
        measures = media.shot_measures(source, probe, probe.start_pts)
    return [round(s.start_ms * FPS / 1000) for s in shots.detect(measures, probe.duration_ms)]


def test_shots_are_cut_at_hard_cuts_and_inside_transitions_and_not_in_motion(video):
    starts = detected(video)
    assert starts[0] == 0
    assert len(starts) == 5, starts
    for cut, found in zip(CUTS, starts[1:3], strict=True):
        assert abs(found - cut) <= 2
    assert FADE[0] <= starts[3] < FADE[1]
    assert DISSOLVE[0] <= starts[4] < DISSOLVE[1]
    assert not [s for s in starts if MOVING[0] + 2 < s < MOVING[1]]


def test_long_fades_and_slow_dissolves_between_moving_shots_are_one_boundary_each(tmp_path):
    """A fade out of 1.5 s, 8 black frames and a fade in of 1 s, then two dissolves of 1.5 s,
    between shots that move (the benchmark's sources). Near the black middle the pictures
    before and after look alike (both black), and the middle of a slow dissolve changes
    little: neither may split its transition in two."""
    fade, dissolve = scenes.Transition("fade", 1.5, 1.0, 8), scenes.Transition("dissolve", 1.5)
    plan = [("stripes", 3.0), fade, ("fast_pan", 4.0), dissolve, ("plasma", 4.0), dissolve, ("blocks", 3.0)]
    made = scenes.TestFile("slow", (320, 180), scenes.F30, plan, {"g": "60"})
    path = str(tmp_path / "slow.mp4")
    scenes.make_video(made, path)
    truths = made.layout.truths
    starts = detected(path)
    assert len(starts) == len(truths) + 1, starts
    assert all(truth.first <= start <= truth.last for truth, start in zip(truths, starts[1:], strict=True)), starts


def test_a_video_that_detection_cannot_decode_fails_its_scene_job_alone(video, tmp_path):
    """A video whose middle third is garbled: the normal job early in it has its frame; the
    scene job, which needs every frame, fails with its own code, and fails nothing else."""
    data = bytearray(Path(video).read_bytes())
    data[len(data) // 3 : 2 * len(data) // 3 : 7] = bytes(len(range(len(data) // 3, 2 * len(data) // 3, 7)))
    (tmp_path / "in" / "v").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "v" / "garbled.mp4").write_bytes(bytes(data))
    lines = [request_line("v/garbled.mp4", "n.jpg", Time=100), request_line("v/garbled.mp4", FrameType="scene")]
    parsed = [jobs.read_job(ManifestLine("m.jsonl", n, line), "2000-01-01T00:00:00Z") for n, line in enumerate(lines)]
    (_, normal), (_, scene) = tasks.plan_input(parsed, Buckets(str(tmp_path)), Limits(isolate=False))[0]
    assert normal.error is None and normal.planned is not None
    assert scene.error is not None and scene.error.code == errors.RESOURCE_CONTENT_BAD


def test_frames_made_ahead_raise_their_error_here_and_stop_with_their_reader():
    """Detection decodes in a thread of its own (media._ahead): an error there is raised in
    the reader's thread, and a reader that stops early stops and closes the decoding."""
    closed = []

    def numbers(fail_at: int | None):
        try:
            for n in range(1000):
                if n == fail_at:
                    raise SnapshotError(errors.RESOURCE_CONTENT_BAD, "broken at 5")
                yield n
        finally:
            closed.append(fail_at)

    with pytest.raises(SnapshotError, match="broken at 5"):
        assert list(media._ahead(numbers(5))) == []
    early = media._ahead(numbers(None), depth=2)
    assert [next(early) for _ in range(3)] == [0, 1, 2]
    early.close()
    assert closed == [5, None]


def test_a_cut_on_a_frame_nothing_references_is_found_at_that_frame(tmp_path):
    """Detection first decodes only the frames others reference: here every fourth (three
    B-frames between P-frames, none referenced, no keyframe at the cuts). Each cut lands on a
    left-out frame, and the second pass finds it there, not at the next frame decoded."""
    cuts = (41, 90, 135)  # after a P-frame at 40, 88 and 132: all three on B-frames
    sources = "ABDE"

    def shots_of(index: int, _: Image.Image) -> Image.Image:
        shot = sources[sum(index >= cut for cut in cuts)]
        return Image.fromarray(content(shot, index).astype(np.uint8))

    path = str(tmp_path / "b-frames.mp4")
    x264 = "keyint=300:scenecut=0:bframes=3:b-adapt=0:b-pyramid=none"
    synth.write_video(path, frames=180, fps=FPS, size=SIZE, edit=shots_of, options={"x264-params": x264})
    with open(path, "rb") as source:
        probe = media.probe(source)
        decoded = [pts for pts, *_ in media.small_lumas(source, probe, probe.start_pts, demuxed=[])]
    assert len(decoded) < 60  # the first pass left three frames in four out
    assert all(probe.pts(cut * 1000 / FPS) not in decoded for cut in cuts)
    assert detected(path) == [0, *cuts]


def capture(path: str, **fields) -> list[media.Captured]:
    config = SnapshotConfig(output=OUT, frame_type=FrameType.SCENE, **fields)
    with open(path, "rb") as source:
        probe = media.probe(source)
        measures = media.shot_measures(source, probe, probe.pts(config.time_ms))
        found = shots.Found(shots.detect(measures, probe.duration_ms), measures)
        planned = plan.shots(config, probe, scenes=found)
        return sorted(media.capture(source, planned, probe), key=lambda c: c.shot.seq)


def test_each_shot_shows_a_clear_frame_of_its_own(video):
    found = capture(video)
    assert len(found) == 5
    for captured, (first, end) in zip(found, SHOT_OF, strict=True):
        index = inset_index(captured.image)
        assert first <= index < end
        assert not FADE[0] <= index < FADE[1] and not DISSOLVE[0] <= index < DISSOLVE[1]
        assert captured.clear
        luma = np.asarray(captured.image.convert("L"))
        assert 20 < luma.mean() < 220
        assert captured.shot.scene is not None and captured.shot.requested_ms == captured.shot.scene[0]


def test_num_keeps_the_longest_shots_in_time_order(video):
    found = capture(video, num=3)
    assert [c.shot.seq for c in found] == [1, 2, 3]
    ranges = [SHOT_OF[2], SHOT_OF[3], SHOT_OF[4]]  # C, D and E; A and B last 1.5 s
    for captured, (first, end) in zip(found, ranges, strict=True):
        assert first <= inset_index(captured.image) < end


def test_time_limits_the_span_analysed(video):
    found = capture(video, time_ms=4000)  # frame 120, inside C
    assert found[0].shot.scene is not None and found[0].shot.scene[0] == 4000
    assert 120 <= inset_index(found[0].image) < 165
    assert len(found) == 3


def test_short_shots_join_their_shorter_neighbour():
    times = [i * 100.0 for i in range(40)]  # 4 s at 10 fps
    # shots: 0-1.0 s, 1.0-1.3 s (short), 1.3-3.5 s, 3.5-4.0 s (short, last)
    assert shots.join_short([0, 10, 13, 35], times, 4000) == [0, 13]
    assert shots.join_short([0, 2], times, 4000) == [0]
    assert shots.join_short([], times, 4000) == [0]


def test_longest_keeps_count_in_time_order():
    spans = [shots.Scene(a, b, (a, b)) for a, b in [(0, 1000), (1000, 4000), (4000, 5000), (5000, 7000)]]
    frames = [shots.Scene(a / 30 * 1000, b / 30 * 1000, (0, 0)) for a, b in [(112, 160), (160, 208)]]
    assert shots.longest(frames, 1) == frames[:1]  # 48 frames each: equal, though not in floats
    assert shots.longest(spans, 2) == [spans[1], spans[3]]
    assert shots.longest(spans, 9) == spans
    assert shots.longest(spans, None) == spans


def test_a_scene_job_records_its_shots_and_its_track_spans_them(video, tmp_path):
    root = tmp_path / "buckets"
    text = request_line(
        "v/scenes.mp4",
        "s/{Count}.jpg",
        Time=0,
        FrameType="scene",
        Format="vtt",
        TileOut={"Lines": 1, "Columns": 5},
        TileOutputFile={"Bucket": "out", "Location": "local", "Object": "s/sheet-{TileCount}.jpg"},
    )
    record = run_in_buckets(video, text, root).to_record()
    assert record["State"] == "Success", record
    snapshots = record["Snapshots"]
    assert len(snapshots) == 5
    assert [s["Time"] for s in snapshots] == [s["ShotStart"] for s in snapshots]
    assert [s["ShotEnd"] for s in snapshots[:-1]] == [s["ShotStart"] for s in snapshots[1:]]
    assert snapshots[0]["ShotStart"] == 0 and snapshots[-1]["ShotEnd"] == 12000
    assert abs(snapshots[1]["ShotStart"] - 1500) <= 67 and abs(snapshots[2]["ShotStart"] - 3000) <= 67
    for s in snapshots:
        assert s["ShotStart"] <= s["FrameTime"] < s["ShotEnd"]
        with Image.open(io.BytesIO((root / "out" / s["Object"]).read_bytes())) as image:
            assert inset_index(image) == round(s["FrameTime"] * FPS / 1000)
    track = (root / "out" / "s" / "00001.vtt").read_text()
    assert "00:00:01.500 --> 00:00:03.000" in track


def test_scene_is_parsed_takes_no_time_array_and_counts_as_async():
    config = spec.parse_request(request_line(FrameType="Scene")).config
    assert config.frame_type == FrameType.SCENE and config.is_async
    with pytest.raises(SnapshotError, match="TimeArray does not go with FrameType scene") as raised:
        spec.parse_request(request_line(FrameType="scene", TimeArray={"TimePointList": [0]}))
    assert raised.value.code == errors.INVALID_PARAMETER


def test_a_scene_job_without_time_starts_at_0_where_other_types_need_time():
    line = json.loads(request_line(FrameType="scene"))
    del line["SnapshotConfig"]["Time"]
    assert spec.parse_request(json.dumps(line)).config.time_ms == 0
    line["SnapshotConfig"]["FrameType"] = "normal"
    with pytest.raises(SnapshotError, match="SnapshotConfig.Time is required") as raised:
        spec.parse_request(json.dumps(line))
    assert raised.value.code == errors.NULL_VALUE


def test_a_scene_job_from_past_the_end_says_how_long_the_video_is(video, tmp_path):
    root = tmp_path / "buckets"
    text = request_line("v/scenes.mp4", "s/{Count}.jpg", Time=60000, FrameType="scene")
    result = run_in_buckets(video, text, root)
    assert (result.state, result.code) == ("Fail", errors.RESOURCE_CONTENT_BAD)
    assert result.message == f"no frame after Time 60000 ms: the video lasts {FRAMES * 1000 // FPS} ms"


def test_a_scene_job_with_one_output_name_for_several_shots_asks_for_count(video, tmp_path):
    root = tmp_path / "buckets"
    text = request_line("v/scenes.mp4", "fixed.jpg", FrameType="scene")
    result = run_in_buckets(video, text, root)
    assert (result.code, result.message) == (
        errors.INVALID_PARAMETER,
        "SnapshotConfig.OutputFile.Object needs {Count}: this job writes several of them",
    )
    sheets = {"Bucket": "out", "Location": "local", "Object": "sheet.jpg"}  # a sheet per shot
    one = {"Lines": 1, "Columns": 1}
    text = request_line("v/scenes.mp4", "{Count}.jpg", FrameType="scene", TileOut=one, TileOutputFile=sheets)
    result = run_in_buckets(video, text, tmp_path / "again")
    assert result.message == "SnapshotConfig.TileOutputFile.Object needs {TileCount}: this job writes several of them"
