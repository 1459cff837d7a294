"""A video as planning sees it (Probe) and the images it asks of it (Shot): plain data, without
PyAV, so that the steps that plan and carry them import no decoder (snapshot.media decodes).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction

from snapshot.spec import BlackFilter

BLACK_WINDOW_S = 5  # the black-frame filter looks this far for the first image


@dataclass(frozen=True)
class Probe:
    """What planning needs to know about a video stream."""

    time_base: Fraction
    start_pts: int
    end_pts: int  # presentation end: last frame's pts + its duration
    keyframes: tuple[int, ...]  # sorted pts of the keyframes
    width: int  # display size, upright
    height: int
    rotation: int  # degrees counter-clockwise, as PyAV reports it
    keyframes_exact: bool = True  # False: estimates from decode timestamps (see exact_keyframes)
    index_offset: int = 0  # what was added to the index's decode timestamps to make the estimates

    @property
    def duration_ms(self) -> float:
        return self.ms(self.end_pts)

    def ms(self, pts: int) -> float:
        """Milliseconds from the first frame to `pts`."""
        return float((pts - self.start_pts) * self.time_base * 1000)

    def pts(self, ms: float) -> int:
        """The last timestamp at or before `ms` milliseconds from the first frame."""
        return self.start_pts + int(Fraction(ms) / 1000 / self.time_base)

    def keyframe_at_or_before(self, pts: int) -> int:
        index = bisect.bisect_right(self.keyframes, pts)
        return self.keyframes[max(index - 1, 0)]

    def for_targets(self, targets: Iterable[int], black_window: bool = False) -> Probe:
        """The probe with only the keyframes that capturing `targets` uses: the one at or
        before each (and those of the black-frame window, with `black_window`). What a
        capture task carries: small, whatever the length of the video."""
        kept = {self.keyframe_at_or_before(target) for target in targets}
        if black_window:
            end = bisect.bisect_left(self.keyframes, self.start_pts + int(BLACK_WINDOW_S / self.time_base))
            kept.update(self.keyframes[:end])
        return replace(self, keyframes=tuple(sorted(kept)))


@dataclass(frozen=True)
class Shot:
    """One image to capture: the frame at `target_pts`, or the last one before it, as an
    upright picture of `size`.

    `keyframe`: the target is a keyframe, decoded alone. With `black` set, the first frame of
    the first 5 s (keyframes only with `keyframe`) that is not black instead. With `window`
    (first, last pts), the best frame shown in that span instead (snapshot.best).
    """

    seq: int  # 1-based, the {Count} of this image
    requested_ms: int
    target_pts: int
    size: tuple[int, int]  # upright width, height
    keyframe: bool = False
    black: BlackFilter | None = None
    owner: str = ""  # the job it is for
    window: tuple[int, int] | None = None  # FrameType best: the span looked in
    scene: tuple[int, int] | None = None  # FrameType scene: the shot's start and end, ms
    clear: bool = True  # FrameType scene: the frame at target_pts, chosen in planning, is clear
