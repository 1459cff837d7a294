"""Files from the wild: the frame shown at each point, counted from the first frame shown."""

from __future__ import annotations

import pytest

from snapshot import media, synth
from snapshot.spec import FrameType

from . import wild
from .test_media import capture_file

POINTS = (0, 410, 1010, 1990, 2500, 3010, 3700)


def shots_taken(path: str, **fields) -> list[tuple[int, int, int]]:
    """(requested ms, frame index shown, FrameTime ms) for each image, in {Count} order."""
    probe, found = capture_file(path, **fields)
    return [(c.shot.requested_ms, synth.read_index(c.image), round(probe.ms(c.frame_pts))) for c in found]


def normal_frame(first: int, ms: int) -> int:
    """The frame shown `ms` after frame `first`, at 30 fps."""
    return first + ms * wild.FPS // 1000


def intra_frames(first: int, points, frames: int = 180, gop: int = wild.GOP) -> list[tuple[int, int]]:
    """(point, keyframe) for each point whose nearest shown keyframe is new; ties go earlier."""
    shown = [k for k in range(0, frames, gop) if k >= first]
    chosen, result = set(), []
    for point in points:
        key = min(shown, key=lambda k: (abs((k - first) * 1000 / wild.FPS - point), k))
        if key not in chosen:
            chosen.add(key)
            result.append((point, key))
    return result


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("wild") / "source.mp4")
    wild.pattern_video(path)
    return path


@pytest.mark.parametrize("start_s", [0.4, 1.5, 2.2])
def test_a_clip_trimmed_by_stream_copy_counts_from_its_first_shown_frame(tmp_path, source, start_s):
    path = str(tmp_path / "trim.mp4")
    wild.trimmed_mp4(source, path, start_s)
    first = round(start_s * wild.FPS)
    with open(path, "rb") as stream:
        probe = media.probe(stream)
    assert probe.duration_ms == pytest.approx((180 - first) * 1000 / wild.FPS)
    assert min(probe.keyframes) < probe.start_pts  # the hidden pre-roll keyframe is there ...
    normal = shots_taken(path, time_array=POINTS, frame_type=FrameType.NORMAL)
    assert [(ms, index) for ms, index, _ in normal] == [(ms, normal_frame(first, ms)) for ms in POINTS]
    intra = shots_taken(path, time_array=POINTS, frame_type=FrameType.INTRA)
    assert [(ms, index) for ms, index, _ in intra] == intra_frames(first, POINTS)  # ... and never chosen
    assert all(frame_ms == round((index - first) * 1000 / wild.FPS) for _, index, frame_ms in intra)
    (default,) = shots_taken(path)  # the default request: sync intra at 0
    assert default[1] == intra_frames(first, [0])[0][1]


@pytest.mark.parametrize(
    "frames, gop, start_s",
    [(720, 60, 9.1), (180, 30, 1.5), (200, 60, 0.5), (200, 60, 2.1)],  # GOP 2 s; 1 s; a short last GOP
)
def test_the_last_keyframe_of_a_trimmed_clip_is_an_intra_candidate(tmp_path, frames, gop, start_s):
    """The MP4 index lists decode times, and an edit list shifts the demuxer's seeks: the
    true time of each keyframe near a point is read from its packet, the last one's too."""
    source, path = str(tmp_path / "source.mp4"), str(tmp_path / "trim.mp4")
    wild.pattern_video(source, frames=frames, options={**wild.H264, "g": str(gop)})
    wild.trimmed_mp4(source, path, start_s)
    first = round(start_s * wild.FPS)
    end_ms = (frames - first) * 1000 // wild.FPS
    points = tuple(range(0, end_ms, 500)) + (end_ms - 100,)

    intra = shots_taken(path, time_array=points, frame_type=FrameType.INTRA)

    assert [(ms, index) for ms, index, _ in intra] == intra_frames(first, points, frames, gop)
    assert intra[-1][1] == (frames - 1) // gop * gop  # the last keyframe


def test_a_webm_without_cues_is_scanned_not_trusted(tmp_path):
    path = str(tmp_path / "live.webm")
    wild.pattern_video(path, codec="libvpx-vp9", options={"g": "30"}, container_options={"live": "1"})
    intra = shots_taken(path, time_array=(0, 1000, 2000, 3000, 5000), frame_type=FrameType.INTRA)
    assert [index for _, index, _ in intra] == [0, 30, 60, 90, 150]
    normal = shots_taken(path, time_array=(5500, 5990), frame_type=FrameType.NORMAL)
    assert [index for _, index, _ in normal] == [165, 179]


def test_a_transport_stream_cut_inside_a_gop_counts_from_its_first_decodable_frame(tmp_path):
    whole, path = str(tmp_path / "whole.ts"), str(tmp_path / "cut.ts")
    wild.pattern_video(whole, container_format="mpegts")
    wild.cut_stream(whole, path, 1.2, format="mpegts")  # the first keyframe after the cut is frame 60
    normal = shots_taken(path, time_array=POINTS, frame_type=FrameType.NORMAL)
    assert [(ms, index, frame_ms) for ms, index, frame_ms in normal] == [
        (ms, normal_frame(60, ms), round((normal_frame(60, ms) - 60) * 1000 / wild.FPS)) for ms in POINTS
    ]
    intra = shots_taken(path, time_array=POINTS, frame_type=FrameType.INTRA)
    assert [(ms, index, frame_ms) for ms, index, frame_ms in intra] == [
        (ms, key, round((key - 60) * 1000 / wild.FPS)) for ms, key in intra_frames(60, POINTS)
    ]


def test_a_transport_stream_across_the_timestamp_wrap(tmp_path):
    path = str(tmp_path / "wrap.ts")
    wild.pattern_video(path, container_format="mpegts", start_seconds=95_440)  # wraps 3.7 s in
    with open(path, "rb") as stream:
        assert media.probe(stream).duration_ms == pytest.approx(6000)
    normal = shots_taken(path, time_array=POINTS + (5990,), frame_type=FrameType.NORMAL)
    assert [index for _, index, _ in normal] == [normal_frame(0, ms) for ms in POINTS + (5990,)]
    intra = shots_taken(path, time_array=POINTS + (5600,), frame_type=FrameType.INTRA)
    assert [(ms, index) for ms, index, _ in intra] == intra_frames(0, POINTS + (5600,))
