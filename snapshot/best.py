"""`FrameType: best` (docs/contract.md#best-frames): which frame of a window is the best,
judged on small luma pictures. Pure functions and a chooser that sees the frames in order.

Best, in this order: clear (not black, not blown out, not inside a transition), then the
sharpest, frames within SHARPNESS_TOLERANCE of the sharpest counting as equally sharp, then
the nearest to the point, then the earlier.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from snapshot import images
from snapshot.spec import BlackFilter

SCORE_WIDTH = 160  # frames are judged at this width (luma only)
BLOWN_THRESHOLD = 224  # a pixel with luma at or above this is blown out
BLOWN_LEVEL = 98  # percent of blown-out pixels that makes a frame blown out
CUT_DIFFERENCE = 30.0  # mean absolute luma difference to a neighbour that is a jump
FADE_STEP = 2.0  # median luma change per frame, the same way on both sides, that is a fade
SHARPNESS_TOLERANCE = 0.2  # frames this close (relative) to the sharpest are as sharp

T = TypeVar("T")


def sharpness(luma: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: high for edges and texture, low for blur."""
    y = luma.astype(np.float64)
    if y.shape[0] < 3 or y.shape[1] < 3:
        return 0.0
    laplacian = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4 * y[1:-1, 1:-1]
    return float(laplacian.var())


def exposed(luma: np.ndarray, black: BlackFilter) -> bool:
    """Neither black (as the black-frame filter counts) nor blown out."""
    blown = 100.0 * np.count_nonzero(luma >= BLOWN_THRESHOLD) / luma.size
    return bool(images.black_share(luma, black.threshold) < black.level and blown < BLOWN_LEVEL)


def in_transition(before: np.ndarray | None, luma: np.ndarray, after: np.ndarray | None) -> bool:
    """A flash or a one-frame jump (far from both neighbours, which are nearer each other),
    or a fade (most of the picture moves the same way: the median change is FADE_STEP or
    more, the same way on both sides; a moving object leaves the median alone). A frame
    at the start or end of the video has one neighbour and is judged clear."""
    if before is None or after is None:
        return False
    here, previous, following = (a.astype(np.int16) for a in (luma, before, after))
    rise, next_rise = here - previous, following - here
    into, out_of = np.abs(rise).mean(), np.abs(next_rise).mean()
    across = np.abs(following - previous).mean()
    if into > CUT_DIFFERENCE and out_of > CUT_DIFFERENCE and across < min(into, out_of) / 2:
        return True
    up, next_up = _median(rise), _median(next_rise)
    return bool(abs(up) >= FADE_STEP and abs(next_up) >= FADE_STEP and up * next_up > 0)


def _median(steps: np.ndarray) -> float:
    """The median of luma steps (-255 to 255), counted rather than sorted: as np.median."""
    counts = np.cumsum(np.bincount(steps.ravel() + 255, minlength=511))
    total = int(counts[-1])
    low, high = np.searchsorted(counts, [(total - 1) // 2 + 1, total // 2 + 1])
    return (int(low) + int(high)) / 2 - 255


def judged(pictures: Iterable[np.ndarray], black: BlackFilter = BlackFilter()) -> Iterator[tuple[bool, float]]:
    """(clear, sharpness) of each picture in order, each judged with its neighbours."""
    before: np.ndarray | None = None
    here: np.ndarray | None = None
    for after in itertools.chain(pictures, [None]):
        if here is not None:
            yield exposed(here, black) and not in_transition(before, here, after), sharpness(here)
        before, here = here, after


def choose(
    pts: np.ndarray, clear: np.ndarray, sharp: np.ndarray, point: int, window: tuple[int, int]
) -> tuple[int, bool]:
    """(pts of the best frame, whether it is clear) among judged frames (pts ascending): the
    frames shown in `window` (first, last pts), chosen as a Chooser would; the frame shown at
    `point` when none is clear."""
    first, last = window
    start = max(0, int(np.searchsorted(pts, first, side="right")) - 1)  # the frame shown at `first`
    inside = np.arange(start, int(np.searchsorted(pts, last, side="right")))
    if not inside.size:
        raise ValueError("no frame in the window")
    good = inside[clear[inside]]
    if not good.size:
        shown = max(start, int(np.searchsorted(pts, point, side="right")) - 1)
        return int(pts[min(shown, inside[-1])]), False
    enough = good[sharp[good] >= (1 - SHARPNESS_TOLERANCE) * sharp[good].max()]
    chosen = min(enough.tolist(), key=lambda i: (abs(int(pts[i]) - point), int(pts[i])))
    return int(pts[chosen]), True


@dataclass(frozen=True)
class Candidate(Generic[T]):
    item: T
    pts: int
    distance: int  # from the point
    sharpness: float


@dataclass
class Chooser(Generic[T]):
    """Offer the window's frames in time order; `choice` is the best. Only the frames that
    could still win are kept: clear ones that no nearer frame at least as sharp beats."""

    point: int  # pts of the point
    black: BlackFilter = field(default_factory=BlackFilter)
    front: list[Candidate[T]] = field(default_factory=list)
    shown: Candidate[T] | None = None  # the frame shown at the point: the fallback
    sharpest: float = 0.0

    def offer(self, item: T, pts: int, before: np.ndarray | None, luma: np.ndarray, after: np.ndarray | None) -> None:
        candidate = Candidate(item, pts, abs(pts - self.point), sharpness(luma))
        if self.shown is None or pts <= self.point:
            self.shown = candidate
        if not exposed(luma, self.black) or in_transition(before, luma, after):
            return
        self.sharpest = max(self.sharpest, candidate.sharpness)
        self.front = [c for c in self.front if not _beats(candidate, c) and _sharp_enough(c, self.sharpest)]
        if not any(_beats(c, candidate) for c in self.front):
            self.front.append(candidate)

    def choice(self) -> tuple[T, bool]:
        """(the best frame, whether it is clear); the frame shown at the point when none is."""
        if self.front:
            enough = [c for c in self.front if _sharp_enough(c, self.sharpest)]
            return min(enough, key=lambda c: (c.distance, c.pts)).item, True
        if self.shown is None:
            raise ValueError("no frame was offered")
        return self.shown.item, False


def _beats(a: Candidate, b: Candidate) -> bool:
    """`a` wins over `b` whatever else comes: nearer (or as near and earlier) and as sharp."""
    return (a.distance, a.pts) < (b.distance, b.pts) and a.sharpness >= b.sharpness


def _sharp_enough(c: Candidate, sharpest: float) -> bool:
    return c.sharpness >= (1 - SHARPNESS_TOLERANCE) * sharpest
