"""Time points and shots from a config and a probed video (docs/contract.md#which-times): pure arithmetic."""

from __future__ import annotations

import bisect

from snapshot import errors
from snapshot import shots as shots_
from snapshot.errors import SnapshotError
from snapshot.limits import Limits
from snapshot.spec import FrameType, SnapshotConfig
from snapshot.video import Probe, Shot


def time_points(config: SnapshotConfig, duration_ms: float, max_points: int = Limits.max_points) -> list[int]:
    """The requested times (ms) of a job, in order, without those past the end.

    Raises the contract's errors: a TimeArray point past the end, a sync `normal` shot past
    the end, or a multi-snapshot job left with no point.
    """
    if config.time_array is not None:
        if len(config.time_array) > max_points:
            raise SnapshotError(errors.OUT_OF_RANGE, f"TimeArray has more than {max_points} points")
        late = [t for t in config.time_array if t > duration_ms]
        if late:
            raise SnapshotError(
                errors.TIME_ARRAY, f"time point {late[0]} ms is past the end of the video ({duration_ms:.0f} ms)"
            )
        return list(config.time_array)
    if not config.is_async:
        if config.time_ms > duration_ms and config.frame_type != FrameType.INTRA:
            raise SnapshotError(
                errors.RESOURCE_CONTENT_BAD, f"no frame at {config.time_ms} ms: the video lasts {duration_ms:.0f} ms"
            )
        return [config.time_ms]
    points = [t for t in _sequence(config, duration_ms, max_points) if t <= duration_ms]
    if not points:
        raise SnapshotError(
            errors.RESOURCE_CONTENT_BAD, f"no snapshot time falls inside the video ({duration_ms:.0f} ms)"
        )
    return points


def _sequence(config: SnapshotConfig, duration_ms: float, max_points: int) -> list[int]:
    start, num, interval = config.time_ms, config.num, config.interval_ms
    if num == 1 or start > duration_ms or interval is None:
        return [start]
    if interval == 0 and num is not None:  # spread evenly: parsing requires Num with Interval 0
        step: float = (duration_ms - start) / num
        count = num
    else:
        step = interval
        inside = int(max(duration_ms - start, -step) // step) + 1  # points at or before the end
        count = min(num, inside) if num is not None else inside
    if count > max_points:
        raise SnapshotError(errors.OUT_OF_RANGE, f"the job would take more than {max_points} snapshots")
    return [int(start + k * step) for k in range(count)]


MS_HINT_MIN_INTERVAL_MS = 1_000_000  # an Interval of 1000 s or more may have been meant in ms


def warnings(config: SnapshotConfig, duration_ms: float, images: int, max_points: int = Limits.max_points) -> list[str]:
    """What a job that plans does not fail for but its requester should hear of
    (docs/contract.md#which-times): a point past the end, `Count` below the points asked, and
    an `Interval` that looks like milliseconds. `images` is the job's Count."""
    if config.frame_type == FrameType.SCENE:
        return []  # the points come from the video
    found = []
    end = f"the end of the video ({duration_ms:.0f} ms)"
    points = time_points(config, duration_ms, max_points)
    if not config.is_async and config.time_ms > duration_ms:
        found.append(f"SnapshotConfig.Time {config.time_ms} ms is past {end}: the image shows the last keyframe")
    asked = config.max_images or len(points)
    late, shared = asked - len(points), len(points) - images
    if late > 0:
        found.append(f"{late} of the {asked} points asked are past {end}: they have no image")
    if images < asked:
        reasons = [f"{late} past the end"] if late > 0 else []
        reasons += [f"{shared} sharing a keyframe (FrameType intra)"] if shared > 0 else []
        found.append(f"Count is {images}, fewer than the {asked} points asked ({', '.join(reasons)})")
    hint = _milliseconds_hint(config, duration_ms)
    return found + ([hint] if hint else [])


def _milliseconds_hint(config: SnapshotConfig, duration_ms: float) -> str | None:
    """A hint when `Interval` (seconds) looks like milliseconds: of several points asked only
    the first is taken, as it is 1000 s or more and longer than the video after `Time`, while
    the same number of milliseconds is no longer than the video."""
    interval = config.interval_ms
    several = config.time_array is None and (config.num is None or config.num > 1)
    if interval is None or not several or interval < MS_HINT_MIN_INTERVAL_MS:
        return None
    if interval <= duration_ms - config.time_ms or interval / 1000 > duration_ms:
        return None
    meant = f"{interval / 1_000_000:g}"
    return (
        f"SnapshotConfig.Interval is in seconds (Time is in ms): {interval / 1000:g} s is longer than "
        f"the video ({duration_ms:.0f} ms), so one point is taken; for one every {meant} s, write Interval {meant}"
    )


def shots(
    config: SnapshotConfig,
    probe: Probe,
    max_points: int = Limits.max_points,
    owner: str = "",
    scenes: shots_.Found | None = None,
) -> list[Shot]:
    """The images of a job, numbered in the order of their time points.

    `normal`: the frame shown at each point. `intra`: the keyframe nearest to each point;
    points that share a keyframe share one image. `best`: the best frame of the window
    around each point. `scene`: see scene_shots, with the video's `scenes`. The first shot
    carries the black-frame filter, if the config has one (not with `best` and `scene`,
    which skip black frames anywhere).
    """
    if config.frame_type == FrameType.SCENE:
        return scene_shots(config, probe, scenes, max_points, owner)
    result: list[Shot] = []
    seen: set[int] = set()
    size, intra = output_size(config, probe), config.frame_type == FrameType.INTRA
    for point in time_points(config, probe.duration_ms, max_points):
        target = probe.pts(point)
        if intra:
            target = nearest_keyframe(probe.keyframes, target, probe.start_pts)
            if target in seen:
                continue
            seen.add(target)
        if config.frame_type == FrameType.BEST:
            window = best_window(probe, point, config.best_window_ms)
            result.append(Shot(len(result) + 1, point, target, size, owner=owner, window=window))
            continue
        black = config.black if not result else None
        result.append(Shot(len(result) + 1, point, target, size, intra, black, owner))
    return result


def scene_shots(
    config: SnapshotConfig, probe: Probe, found: shots_.Found | None, max_points: int, owner: str = ""
) -> list[Shot]:
    """One image per shot (from Time on): the `Num` longest, in time order; its point is the
    shot's start, and its frame the best of the BestWindow centred in the shot's calm part,
    chosen from the frames judged in detection (shots.Measures.best)."""
    kept = shots_.longest(found.scenes, config.num) if found else []
    if not kept or found is None:
        raise SnapshotError(
            errors.RESOURCE_CONTENT_BAD,
            f"no frame after Time {config.time_ms} ms: the video lasts {probe.duration_ms:.0f} ms",
        )
    if len(kept) > max_points:
        raise SnapshotError(errors.OUT_OF_RANGE, f"the job would take more than {max_points} snapshots")
    size, result = output_size(config, probe), []
    for seq, scene in enumerate(kept, start=1):
        calm_start, calm_end = scene.calm
        middle = (calm_start + calm_end) / 2
        half = min(config.best_window_ms, calm_end - calm_start) / 2
        first = max(probe.pts(calm_start), probe.pts(middle - half))
        last = max(first, min(probe.end_pts - 1, probe.pts(calm_end) - 1, probe.pts(middle + half)))
        target, clear = found.measures.best((first, last), probe.pts(middle))
        span = (round(scene.start_ms), round(scene.end_ms))
        result.append(Shot(seq, span[0], target, size, owner=owner, scene=span, clear=clear))
    return result


def best_window(probe: Probe, point: int, window_ms: int) -> tuple[int, int]:
    """(first, last) pts of the window centred on `point`, clipped to the video."""
    first = max(probe.start_pts, probe.pts(point - window_ms / 2))
    last = min(probe.end_pts - 1, probe.pts(point + window_ms / 2))
    return first, max(first, last)


def nearest_keyframe(keyframes: tuple[int, ...], pts: int, first_shown: int | None = None) -> int:
    """The keyframe closest to `pts` on either side; the earlier one on a tie. Keyframes
    before `first_shown` (pre-roll that an edit list hides) are never chosen, unless no
    other keyframe exists."""
    low = bisect.bisect_left(keyframes, first_shown) if first_shown is not None else 0
    low = low if low < len(keyframes) else 0
    index = bisect.bisect_left(keyframes, pts, lo=low)
    candidates = keyframes[max(index - 1, low) : index + 1]
    return min(candidates, key=lambda k: (abs(k - pts), k))


def output_size(config: SnapshotConfig, probe: Probe) -> tuple[int, int]:
    """Width and height of the images: the display size, or Width/Height with its aspect."""
    width, height = config.width, config.height
    if width and height:
        return width, height
    if width:
        return width, max(1, round(width * probe.height / probe.width))
    if height:
        return max(1, round(height * probe.width / probe.height)), height
    return probe.width, probe.height
