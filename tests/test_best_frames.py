"""`FrameType: best` (docs/contract.md#best-frames): the best frame within a window around each
point, on videos whose frames show their index, with black, white, blurred and fading frames
put around the points."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from snapshot import best, errors, media, plan, spec, synth
from snapshot.errors import SnapshotError
from snapshot.limits import Limits
from snapshot.spec import FrameType, ObjectRef, SnapshotConfig
from tests.helpers import request_line, run_in_buckets

OUT = ObjectRef("out", "x", "{Count}.jpg")
FPS = 30


def textured(picture: Image.Image) -> Image.Image:
    """The pattern with a fine checkerboard over it: every frame about as sharp as the others."""
    pixels = np.asarray(picture).astype(np.int16)
    y, x = np.mgrid[0 : pixels.shape[0], 0 : pixels.shape[1]]
    checker = ((y // 4 + x // 4) % 2) * 2 - 1
    return Image.fromarray(np.clip(pixels + 50 * checker[..., None], 0, 255).astype(np.uint8))


def edited(changes: dict[int, str]):
    """An edit for synth.write_video: frame index -> black, white, blur, +N (brighter) or *F (dimmer)."""

    def edit(index: int, picture: Image.Image) -> Image.Image:
        picture = textured(picture)
        change = changes.get(index, "")
        if change in ("black", "white"):
            return Image.new("RGB", picture.size, change)
        if change == "blur":
            return picture.filter(ImageFilter.GaussianBlur(3))
        if change.startswith("*"):
            return Image.fromarray((np.asarray(picture) * float(change[1:])).astype(np.uint8))
        if change.startswith("+"):
            return Image.fromarray(np.clip(np.asarray(picture).astype(np.int16) + int(change), 0, 255).astype(np.uint8))
        return picture

    return edit


def video(tmp_path, changes: dict[int, str], frames: int = 90) -> str:
    path = str(tmp_path / "best.mp4")
    synth.write_video(path, frames=frames, fps=FPS, edit=edited(changes))
    return path


def capture(path: str, **fields) -> list[media.Captured]:
    config = SnapshotConfig(output=OUT, frame_type=FrameType.BEST, **fields)
    with open(path, "rb") as source:
        probe = media.probe(source)
        shots = plan.shots(config, probe)
        return sorted(media.capture(source, shots, probe), key=lambda c: c.shot.seq)


def chosen(path: str, **fields) -> list[int]:
    """The frame index each point's image shows; each image clear and good to look at."""
    found = capture(path, **fields)
    for captured in found:
        assert captured.clear
        luma = np.asarray(captured.image.convert("L"))
        assert 5 < luma.mean() < 220  # neither black nor white
        assert best.sharpness(luma) > 1000  # not blurred
    return [synth.read_index(c.image) for c in found]


def test_black_white_and_blurred_frames_around_a_point_are_passed_over(tmp_path):
    path = video(tmp_path, {28: "black", 29: "black", 30: "blur", 31: "white"})
    # frame 30 is at 1000 ms; the nearest good frames are 32 (2 frames away) and 27 (3)
    assert chosen(path, time_ms=1000) == [32]
    assert chosen(path, time_ms=1000) == [32]  # the same choice every time
    captured = capture(path, time_ms=1000)[0]
    assert captured.frame_pts == 32 * 512  # time base 1/15360: frame i at 512 i


def test_a_good_frame_at_the_point_is_kept(tmp_path):
    path = video(tmp_path, {})
    assert chosen(path, time_array=(0, 1000, 2000)) == [0, 30, 60]


def test_a_flash_and_a_fade_are_transitions(tmp_path):
    flash = video(tmp_path, {30: "+100"})
    assert chosen(flash, time_ms=1000) == [29]  # 29 and 31 are as near: the earlier
    # a fade through black from frame 24 to 36: frames 25 to 35 fade out and in
    fade = video(tmp_path, {i: f"*{abs(i - 30) / 6}" for i in range(25, 36)})
    assert chosen(fade, time_ms=1000) == [24]  # 24 and 36 are as near: the earlier


def test_transitions_on_pictures():
    rng = np.random.default_rng(0)
    picture = rng.integers(40, 200, (90, 160)).astype(np.uint8)
    shifted = [np.clip(picture.astype(np.int16) + 5 * k, 0, 255).astype(np.uint8) for k in range(3)]
    assert best.in_transition(*shifted)  # a fade: the whole picture brightens
    moved = picture.copy()
    moved[:20, :30] = 255  # a bright object comes in: the median does not move
    assert not best.in_transition(picture, moved, moved)
    flash = np.full_like(picture, 250)
    assert best.in_transition(picture, flash, picture)
    assert not best.in_transition(picture, flash, flash)  # a cut to a white shot
    assert not best.in_transition(None, flash, picture)  # the first frame


@pytest.mark.parametrize("seed", range(40))
def test_choosing_from_judged_frames_picks_what_the_chooser_picks(seed):
    """`scene` judges every frame once in detection and chooses later (best.judged, then
    best.choose); `best` offers a window's frames to a Chooser. Both must pick the same frame:
    here random pictures, some black, blown out, flat or flashing, in random windows."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (36, 64)).astype(np.uint8)
    kinds = rng.choice(["sharp", "soft", "black", "white", "flash"], 40, p=[0.3, 0.2, 0.25, 0.15, 0.1])
    pictures = []
    for kind in kinds:
        if kind == "black":
            pictures.append(np.zeros((36, 64), np.uint8))
        elif kind == "white":
            pictures.append(np.full((36, 64), 250, np.uint8))
        else:
            radius = rng.uniform(0, 0.4) if kind == "sharp" else rng.uniform(1, 3)
            picture = Image.fromarray(texture).filter(ImageFilter.GaussianBlur(float(radius)))
            pixels = np.asarray(picture).astype(np.int16) + (90 if kind == "flash" else 0)
            pictures.append(np.clip(pixels, 0, 255).astype(np.uint8))
    pts = np.arange(40) * 10
    clear, sharp = (np.array(values) for values in zip(*best.judged(pictures), strict=True))
    first = int(rng.integers(0, 400))
    last = first + int(rng.integers(0, 80))
    point = int(rng.integers(first, last + 1))
    chooser: best.Chooser[int] = best.Chooser(point)
    for i in range(len(pictures)):
        shown_at_first = pts[i] <= first and (i + 1 == len(pts) or pts[i + 1] > first)
        if pts[i] <= last and (pts[i] > first or shown_at_first):
            before, after = pictures[i - 1] if i else None, pictures[i + 1] if i + 1 < len(pictures) else None
            chooser.offer(int(pts[i]), int(pts[i]), before, pictures[i], after)
    assert best.choose(pts, clear, sharp, point, (first, last)) == chooser.choice()


def test_a_window_of_only_black_frames_shows_the_frame_at_the_point_and_says_so(tmp_path):
    path = video(tmp_path, dict.fromkeys(range(20, 41), "black"))
    found = capture(path, time_ms=1000, best_window_ms=400)
    assert not found[0].clear
    assert found[0].frame_pts == 30 * 512
    assert np.asarray(found[0].image.convert("L")).mean() < 5


def test_the_window_is_clipped_to_the_video(tmp_path):
    path = video(tmp_path, {85: "white", 86: "black", 87: "blur", 88: "black", 89: "blur"})
    # the last point, 2966 ms, shows frame 89; its window ends with the video
    assert chosen(path, time_ms=2966, best_window_ms=60_000) == [84]


def test_a_window_counts_its_frames_against_the_cap(tmp_path):
    path = video(tmp_path, {})
    config = SnapshotConfig(output=OUT, frame_type=FrameType.BEST, time_ms=1500, best_window_ms=2000)
    with open(path, "rb") as source:
        probe = media.probe(source)
        with pytest.raises(SnapshotError, match="BestWindow") as failure:
            list(media.capture(source, plan.shots(config, probe), probe, Limits(max_frames_per_point=40)))
    assert failure.value.code == errors.RESOURCE_CONTENT_BAD


@pytest.mark.parametrize(("window", "ok"), [(None, 2000), ("0", 0), (60_000, 60_000), (-1, None), (60_001, None)])
def test_best_window_is_parsed_and_checked(window, ok):
    fields = {"FrameType": "Best"} | ({"BestWindow": window} if window is not None else {})
    line = request_line(**fields)
    if ok is None:
        with pytest.raises(SnapshotError) as failure:
            spec.parse_request(line)
        assert failure.value.code == errors.OUT_OF_RANGE
    else:
        config = spec.parse_request(line).config
        assert (config.frame_type, config.best_window_ms) == (FrameType.BEST, ok)


def test_a_job_with_sprites_and_a_track_warns_of_a_point_without_a_clear_frame(tmp_path):
    root = tmp_path / "buckets"
    path = video(tmp_path, dict.fromkeys(range(20, 41), "black") | {58: "white", 59: "blur", 60: "black"})
    text = request_line(
        "v/best.mp4",
        "s/{Count}.jpg",
        Time=0,
        Interval=1,
        Num=3,
        FrameType="best",
        BestWindow=400,
        Format="vtt",
        TileOut={"Lines": 1, "Columns": 3},
        TileOutputFile={"Bucket": "out", "Location": "local", "Object": "s/sheet-{TileCount}.jpg"},
    )
    record = run_in_buckets(path, text, root).to_record()
    assert record["State"] == "Success", record
    assert record["Warnings"] == ["point 1000 ms: no frame in its window is clear; the nearest is shown"]
    assert [s["FrameTime"] for s in record["Snapshots"]] == [0, 1000, 2033]
    with Image.open(io.BytesIO((root / "out" / record["Snapshots"][2]["Object"]).read_bytes())) as image:
        assert synth.read_index(image) == 61  # 60 black, 59 blurred, 58 white
    with Image.open(root / "out" / "s" / "sheet-00001.jpg") as sheet:
        cell = sheet.crop((2 * sheet.width // 3, 0, sheet.width, sheet.height))
        assert synth.read_index(cell) == 61
    assert "00003.jpg" in (root / "out" / "s" / "00001.vtt").read_text()
