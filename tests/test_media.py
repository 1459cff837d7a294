"""The right frame, upright and at the right size, on real videos made with PyAV."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from snapshot import errors, media, plan, synth
from snapshot.errors import SnapshotError
from snapshot.spec import FrameType, ObjectRef, SnapshotConfig

OUT = ObjectRef("out", "x", "{Count}.jpg")
CONSTANT_RATE = ["h264.mp4", "h264_faststart.mp4", "hevc10.mkv", "vp9.webm", "ts_from_10s.ts"]
# points (ms) away from frame boundaries at 30 fps, and the frame each one shows
POINTS = [0, 1010, 1499, 2017, 2990, 3000]
NORMAL_FRAMES = [0, 30, 44, 60, 89, 89]


def probe_file(path: str) -> media.Probe:
    with open(path, "rb") as source:
        return media.probe(source)


def capture_file(path: str, **fields) -> tuple[media.Probe, list[media.Captured]]:
    """The probe of a video file and its captured pictures for a config, in {Count} order."""
    config = SnapshotConfig(output=OUT, **fields)
    with open(path, "rb") as source:
        probe = media.probe(source)
        if config.frame_type == FrameType.INTRA:
            targets = [probe.pts(point) for point in plan.time_points(config, probe.duration_ms)]
            probe = media.exact_keyframes(source, probe, targets)
        shots = plan.shots(config, probe)
        found = sorted(media.capture(source, shots, probe), key=lambda c: c.shot.seq)
    assert [c.shot.seq for c in found] == list(range(1, len(shots) + 1))
    return probe, found


def captured(path: str, **fields) -> list[tuple[int, int, tuple[int, int]]]:
    """(requested ms, frame index shown, image size) for each shot, in {Count} order."""
    _, found = capture_file(path, **fields)
    return [(c.shot.requested_ms, synth.read_index(c.image), c.image.size) for c in found]


@pytest.mark.parametrize("name", CONSTANT_RATE)
def test_normal_gives_the_frame_shown_at_each_point(videos, name):
    shown = captured(videos(name), time_array=tuple(POINTS), frame_type=FrameType.NORMAL)
    assert [index for _, index, _ in shown] == NORMAL_FRAMES
    assert {size for _, _, size in shown} == {(320, 180)}


@pytest.mark.parametrize("name", CONSTANT_RATE)
def test_intra_gives_the_nearest_keyframe_once(videos, name):
    shown = captured(videos(name), time_array=(400, 600, 1600, 2900), frame_type=FrameType.INTRA)
    assert [(ms, index) for ms, index, _ in shown] == [(400, 0), (600, 30), (1600, 60)]


def test_points_in_any_order_and_repeated(videos):
    shown = captured(videos("h264.mp4"), time_array=(2990, 0, 1499, 1499, 40), frame_type=FrameType.NORMAL)
    assert [index for _, index, _ in shown] == [89, 0, 44, 44, 1]


def test_dense_points_in_a_long_gop_decode_forward_correctly(videos):
    points = tuple(range(0, 10_000, 233))
    shown = captured(videos("long_gop.mp4"), time_array=points, frame_type=FrameType.NORMAL)
    assert [index for _, index, _ in shown] == [ms * 30 // 1000 for ms in points]


def test_mpeg_ts_time_counts_from_the_first_frame(videos):
    probe = probe_file(videos("ts_from_10s.ts"))
    assert probe.start_pts * probe.time_base >= 10
    assert probe.duration_ms == pytest.approx(3000, abs=1)


def test_variable_frame_rate(videos):
    points = (0, 120, 510, 999, 1000, 1705, 2400, 2533)
    shown = captured(videos("vfr.mp4"), time_array=points, frame_type=FrameType.NORMAL)
    assert [index for _, index, _ in shown] == [0, 1, 3, 4, 5, 6, 8, 9]


def test_variable_frame_rate_intra_uses_true_keyframe_times(videos):
    # keyframes at 0, 0.52 s and 2.0 s; the MP4 index only knows their decode times
    probe = probe_file(videos("vfr.mp4"))
    assert not probe.keyframes_exact
    shown = captured(videos("vfr.mp4"), time_array=(300, 1300, 2400), frame_type=FrameType.INTRA)
    assert [(ms, index) for ms, index, _ in shown] == [(300, 4), (1300, 8)]


def test_probe_and_capture_read_a_small_part_of_an_indexed_file(videos):
    from snapshot.objects import CountingReader

    path = videos("grain.mp4")
    size = os.path.getsize(path)
    with CountingReader(open(path, "rb", buffering=0)) as reader:
        probe = media.probe(reader)
        assert reader.bytes_read < size * 0.3  # the index, the first frame, the last GOP
        shots = [
            media.Shot(1, 5000, probe.pts(5000), (160, 90), keyframe=True),
            media.Shot(2, 8000, probe.pts(8000), (160, 90), keyframe=True),
        ]
        reader.bytes_read = 0
        found = [synth.read_index(c.image) for c in media.capture(reader, shots, probe)]
        assert found == [150, 240] and reader.bytes_read < size * 0.1
    assert probe.keyframes == tuple(15360 * k for k in range(10)) and probe.duration_ms == 10_000


def test_phone_video_is_upright_and_sized_after_rotation(videos):
    path = videos("phone.mp4")
    probe = probe_file(path)
    assert (probe.width, probe.height, probe.rotation) == (180, 320, -90)
    shown = captured(path, time_array=(1010,), frame_type=FrameType.NORMAL)
    assert shown == [(1010, 30, (180, 320))]
    assert captured(path, time_array=(1010,), frame_type=FrameType.NORMAL, width=90) == [(1010, 30, (90, 160))]
    assert captured(path, time_array=(1010,), frame_type=FrameType.NORMAL, height=80) == [(1010, 30, (45, 80))]


def test_width_and_height_scale(videos):
    path = videos("h264.mp4")
    assert captured(path, time_ms=1010, frame_type=FrameType.NORMAL, width=160) == [(1010, 30, (160, 90))]
    assert captured(path, time_ms=1010, frame_type=FrameType.NORMAL, width=64, height=200) == [(1010, 30, (64, 200))]


def test_moov_position_of_the_two_mp4_files(videos):
    def moov_before_mdat(name):
        data = Path(videos(name)).read_bytes()
        return data.find(b"moov") < data.find(b"mdat")

    assert not moov_before_mdat("h264.mp4")
    assert moov_before_mdat("h264_faststart.mp4")


def test_hevc_is_10_bit(videos):
    import av

    with av.open(videos("hevc10.mkv")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc"
        assert stream.codec_context.pix_fmt == "yuv420p10le"


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100, b"\x00\x00\x00\x18ftypmp42" + bytes(4000)])
def test_not_a_video_is_content_bad(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(SnapshotError) as caught:
        probe_file(str(path))
    assert caught.value.code == errors.RESOURCE_CONTENT_BAD


def test_audio_only_has_no_video_stream(tmp_path):
    import av
    import numpy as np

    path = str(tmp_path / "audio.m4a")
    with av.open(path, "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(SnapshotError) as caught:
        probe_file(path)
    assert caught.value.code == errors.RESOURCE_CONTENT_BAD
    assert "no video stream" in caught.value.message


# Videos whose frames other frames do not all reference: B-pyramids (H.264, HEVC), alt-ref (VP9).
SKIPPABLE = {
    "h264_pyramid.mp4": {"options": {"x264-params": "bframes=3:b-pyramid=normal:keyint=60:min-keyint=60:scenecut=0"}},
    "hevc_pyramid.mp4": {
        "codec": "libx265",
        "options": {"x265-params": "bframes=4:b-pyramid=1:keyint=60:min-keyint=60:scenecut=0:log-level=error"},
    },
    "vp9_60.webm": {"codec": "libvpx-vp9", "options": {"g": "60"}},
}


@pytest.mark.parametrize("name", sorted(SKIPPABLE))
def test_skipping_unreferenced_frames_changes_no_snapshot(tmp_path, name):
    """Each point walked to alone, and all of them in one walk: the same pictures, byte for
    byte, with and without skip_frame NONREF; the frame each shows; and fewer frames decoded
    where the codec marks its unreferenced frames (H.264, HEVC; FFmpeg's VP9 decoder skips none)."""
    path = str(tmp_path / name)
    synth.write_video(path, frames=120, size=(160, 90), **SKIPPABLE[name])
    frames = [*range(0, 120, 7), 59, 61, 119]
    pictures, decoded = {}, {}
    with open(path, "rb") as source:
        probe = media.probe(source)
        shots = [media.Shot(n, 0, probe.pts(frame * 1000 / 30 + 1), (160, 90)) for n, frame in enumerate(frames, 1)]
        for skip in (False, True):
            limits = media.Limits(skip_nonref=skip)
            alone = [c for shot in shots for c in media.capture(source, [shot], probe, limits)]
            together = sorted(media.capture(source, shots, probe, limits), key=lambda c: c.shot.seq)
            pictures[skip] = [(c.frame_pts, c.image.tobytes()) for c in alone + together]
            decoded[skip] = sum(c.decoded for c in alone + together)
            assert [synth.read_index(c.image) for c in alone] == frames
            assert [synth.read_index(c.image) for c in together] == frames
    assert pictures[True] == pictures[False]
    if name.startswith("vp9"):
        assert decoded[True] == decoded[False]
    else:
        assert decoded[True] < 0.75 * decoded[False], decoded


def test_a_capture_lets_go_of_its_frames_and_decoder_at_once(videos):
    """Walks, their generators and their walker refer to each other: unless each walk is closed
    and the walker forgets it, every seek keeps its last frame, and every capture its decoder,
    alive until the cycle collector runs (a 1080p video, 10 captures of 10 points: 258 MB
    against 96 MB)."""
    gc.disable()
    try:
        with open(videos("h264.mp4"), "rb") as source:
            probe = media.probe(source)
            shots = [media.Shot(n, 0, probe.pts(ms), (32, 18)) for n, ms in enumerate([2500, 500, 1500, 2900], 1)]
            captured = list(media.capture(source, shots, probe))
        left = [o for o in gc.get_objects() if isinstance(o, (media.Walk, media._Walker))]
    finally:
        gc.enable()
    assert [synth.read_index(c.image) for c in captured] == [15, 45, 75, 87]
    assert not left
