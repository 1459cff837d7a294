"""Time points, shots and output sizes (docs/contract.md#requests): pure arithmetic on a made-up probe."""

from __future__ import annotations

from fractions import Fraction

import pytest

from snapshot import errors, plan
from snapshot.errors import SnapshotError
from snapshot.spec import ObjectRef, SnapshotConfig
from snapshot.video import Probe

OUT = ObjectRef("out", "x", "{Count}.jpg")
# 10 s at 1 ms per tick, first frame at 500 ticks, keyframes every 2 s from the first frame
PROBE = Probe(Fraction(1, 1000), 500, 10_500, (500, 2500, 4500, 6500, 8500), 640, 360, 0)


def config(**fields) -> SnapshotConfig:
    return SnapshotConfig(output=OUT, **fields)


@pytest.mark.parametrize(
    "fields, points",
    [
        ({"time_ms": 1234}, [1234]),
        ({"time_ms": 1000, "num": 3, "interval_ms": 2000}, [1000, 3000, 5000]),
        ({"time_ms": 5000, "num": 1, "interval_ms": 2000}, [5000]),
        ({"time_ms": 0, "interval_ms": 3000}, [0, 3000, 6000, 9000]),
        ({"time_ms": 0, "interval_ms": 2500}, [0, 2500, 5000, 7500, 10000]),  # the end itself is inside
        ({"time_ms": 2000, "num": 4, "interval_ms": 0}, [2000, 4000, 6000, 8000]),
        ({"time_ms": 0, "num": 3, "interval_ms": 0}, [0, 3333, 6666]),
        ({"time_ms": 6000, "num": 5, "interval_ms": 2000}, [6000, 8000, 10000]),  # past the end: dropped
        ({"time_array": (9000, 100, 10000)}, [9000, 100, 10000]),
    ],
)
def test_time_points(fields, points):
    assert plan.time_points(config(**fields), 10_000) == points


def test_time_array_point_past_the_end_fails_the_job():
    with pytest.raises(SnapshotError) as caught:
        plan.time_points(config(time_array=(100, 10_001)), 10_000)
    assert caught.value.code == errors.TIME_ARRAY


def test_multi_snapshot_job_with_no_point_inside_fails():
    for fields in (
        {"time_ms": 20_000, "num": 3, "interval_ms": 1000},
        {"time_ms": 10_001, "interval_ms": 1000},
        {"time_ms": 10_001, "num": 2, "interval_ms": 0},
    ):
        with pytest.raises(SnapshotError) as caught:
            plan.time_points(config(**fields), 10_000)
        assert caught.value.code == errors.RESOURCE_CONTENT_BAD


def test_sync_past_the_end_normal_fails_but_intra_gives_the_nearest_keyframe():
    with pytest.raises(SnapshotError) as caught:
        plan.shots(config(time_ms=60_000, frame_type="normal"), PROBE)
    assert caught.value.code == errors.RESOURCE_CONTENT_BAD
    assert [s.target_pts for s in plan.shots(config(time_ms=60_000), PROBE)] == [8500]


def test_too_many_points_are_refused():
    with pytest.raises(SnapshotError) as caught:
        plan.time_points(config(time_ms=0, interval_ms=1), 10**9)
    assert caught.value.code == errors.OUT_OF_RANGE
    huge = plan.time_points(config(time_ms=0, num=10**12, interval_ms=5000), 10_000)
    assert huge == [0, 5000, 10000]


def test_normal_shots_target_the_point_from_the_first_frame():
    shots = plan.shots(config(time_ms=1000, num=3, interval_ms=1500, frame_type="normal"), PROBE)
    assert [(s.seq, s.requested_ms, s.target_pts) for s in shots] == [(1, 1000, 1500), (2, 2500, 3000), (3, 4000, 4500)]


def test_intra_shots_take_the_nearest_keyframe_and_share_it():
    shots = plan.shots(config(time_array=(900, 1100, 1900, 3000, 2100, 9999)), PROBE)
    # 900 -> 0 (first keyframe); 1100 -> 2000; 1900 -> 2000 again; 3000 tie -> earlier 2000;
    # 2100 -> 2000; 9999 -> 8000
    assert [(s.seq, s.requested_ms, s.target_pts) for s in shots] == [(1, 900, 500), (2, 1100, 2500), (3, 9999, 8500)]


def test_nearest_keyframe():
    keys = (0, 100, 300)
    assert [plan.nearest_keyframe(keys, p) for p in (-5, 0, 49, 50, 51, 199, 200, 201, 1000)] == [
        0,
        0,
        0,
        0,
        100,
        100,
        100,
        300,
        300,
    ]


@pytest.mark.parametrize(
    "width, height, size",
    [
        (None, None, (640, 360)),
        (320, None, (320, 180)),
        (None, 90, (160, 90)),
        (100, 100, (100, 100)),
        (8, None, (8, 4)),
    ],
)
def test_output_size_keeps_the_display_aspect(width, height, size):
    assert plan.output_size(config(width=width, height=height), PROBE) == size


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"time_ms": 1000, "num": 3, "interval_ms": 2000, "frame_type": "normal"}, []),  # all inside
        ({"time_ms": 0, "interval_ms": 1000, "frame_type": "normal"}, []),  # to the end: none dropped
        ({"time_ms": 0, "num": 4, "interval_ms": 0}, []),  # spread evenly, one keyframe each
        (
            {"time_ms": 6000, "num": 5, "interval_ms": 2000, "frame_type": "normal"},
            [
                "2 of the 5 points asked are past the end of the video (10000 ms): they have no image",
                "Count is 3, fewer than the 5 points asked (2 past the end)",
            ],
        ),
        (
            {"time_ms": 60_000},
            ["SnapshotConfig.Time 60000 ms is past the end of the video (10000 ms): the image shows the last keyframe"],
        ),
        (
            {"time_array": (900, 1100, 1900, 9999)},
            ["Count is 3, fewer than the 4 points asked (1 sharing a keyframe (FrameType intra))"],
        ),
    ],
)
def test_warnings_name_points_past_the_end_and_a_count_below_the_points_asked(fields, expected):
    job = config(**fields)
    assert plan.warnings(job, 10_000, len(plan.shots(job, PROBE))) == expected


def test_an_interval_that_looks_like_milliseconds_gets_a_hint():
    meant_ms = config(time_ms=5, num=3, interval_ms=10_000_000, frame_type="normal")  # "Interval": 10000
    *_, hint = plan.warnings(meant_ms, 10_000, len(plan.shots(meant_ms, PROBE)))
    assert hint == (
        "SnapshotConfig.Interval is in seconds (Time is in ms): 10000 s is longer than the video (10000 ms), "
        "so one point is taken; for one every 10 s, write Interval 10"
    )


@pytest.mark.parametrize(
    "fields, duration_ms",
    [
        ({"time_ms": 0, "interval_ms": 60_000}, 10_000),  # every minute, on a short video
        ({"time_ms": 0, "num": 1, "interval_ms": 10_000_000}, 10_000),  # one point asked
        ({"time_ms": 0, "num": 3, "interval_ms": 20_000_000}, 10_000),  # as ms (20 s), still one point
        ({"time_ms": 0, "num": 3, "interval_ms": 5_000_000}, 7_200_000),  # every 5000 s of two hours
        ({"time_array": (0, 100)}, 10_000),
    ],
)
def test_a_long_interval_that_cannot_be_milliseconds_gets_no_hint(fields, duration_ms):
    job = config(**fields, frame_type="normal")
    assert not any("Interval is in seconds" in w for w in plan.warnings(job, duration_ms, 1))
