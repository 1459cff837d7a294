"""`FrameType: scene` (docs/contract.md#scenes): shot boundaries from small luma pictures of
the frames, and each frame's judgement (snapshot.best) to choose a shot's picture from. Pure
functions: the measures in, the shots out.

- A hard cut: the frame differs from the one before by CUT_MIN or more (mean absolute luma)
  and CUT_RATIO times the usual difference around it (so steady motion and fades are no
  cut), or CUT_RATIO_MOVED times when its histogram moved by CUT_HISTOGRAM too (a cut
  between two moving shots). Measures of a pass that left frames out are completed around
  each cut first (`completed`), so a cut is found at its own frame.
- A gradual transition (a fade through black, a dissolve): a run of frames whose histograms
  GRADUAL_MS before and after differ by GRADUAL_LOW, GRADUAL_HISTOGRAM somewhere, runs apart
  only by flat frames joined, no hard cut in that span; the boundary is the run's middle.
- A shot shorter than MIN_SHOT_MS joins its shorter neighbour.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np

from snapshot import best

DETECT_SIZE = (64, 36)  # width, height of the luma pictures the detector looks at
CUT_MIN = 12.0  # mean absolute luma difference below which no frame is a cut
CUT_RATIO = 3.0  # a cut differs this many times more than the median of its neighbours
CUT_RATIO_MOVED = 1.5  # or this many times, when its luma histogram moved too:
CUT_HISTOGRAM = 0.5  # by this much (L1 distance of shares, 0..2)
NEIGHBOURS = 5  # frames on each side whose differences make the usual level
GRADUAL_MS = 300  # a gradual transition compares frames this far before and after
GRADUAL_HISTOGRAM = 0.6  # histogram distance across 2 x GRADUAL_MS that is a transition
GRADUAL_LOW = 0.3  # and the distance that its run of frames keeps
FLAT_SHARE = 0.9  # a frame with this share of its pixels in one histogram bin is flat (black)
MIN_SHOT_MS = 1000  # a shorter shot joins a neighbour
BINS = 32


def histogram(luma: np.ndarray) -> np.ndarray:
    """Shares of the picture's pixels in BINS luma bins."""
    counts = np.bincount(luma.ravel().astype(np.int64) * BINS // 256, minlength=BINS)
    return counts / max(1, luma.size)


@dataclass(frozen=True)
class Measures:
    """What detection keeps of each frame, in time order: a few hundred bytes a frame. With
    each frame's judgement (snapshot.best), a shot's best frame is chosen from these too."""

    pts: np.ndarray
    times_ms: np.ndarray
    differences: np.ndarray  # mean absolute luma difference to the frame before (0 for the first)
    histograms: np.ndarray  # frames x BINS
    clear: np.ndarray  # best.judged: not black, not blown out, not in a transition
    sharpness: np.ndarray

    def best(self, window: tuple[int, int], point: int) -> tuple[int, bool]:
        """best.choose among the measured frames."""
        return best.choose(self.pts, self.clear, self.sharpness, point, window)


def measure(frames: Iterable[tuple[int, np.ndarray, np.ndarray]], to_ms: Callable[[int], float]) -> Measures:
    """Measures of (pts, luma picture of DETECT_SIZE, luma picture to judge at
    best.SCORE_WIDTH) triples, the pictures seen one at a time."""
    stamps: list[int] = []
    diffs: list[float] = []
    hists: list[np.ndarray] = []

    def judged_pictures() -> Iterator[np.ndarray]:
        previous: np.ndarray | None = None
        for pts, luma, picture in frames:
            here = luma.astype(np.int16)
            stamps.append(pts)
            diffs.append(float(np.abs(here - previous).mean()) if previous is not None else 0.0)
            hists.append(histogram(luma))
            previous = here
            yield picture

    judgements = list(best.judged(judged_pictures()))
    return Measures(
        np.array(stamps, np.int64),
        np.array([to_ms(pts) for pts in stamps], np.float64),
        np.array(diffs),
        np.array(hists).reshape(-1, BINS),
        np.array([clear for clear, _ in judgements], bool),
        np.array([sharp for _, sharp in judgements], np.float64),
    )


def completed(m: Measures, left_out: Iterable[int], span: Callable[[int, int], Measures]) -> Measures:
    """The measures of a pass that left frames out (their pts `left_out`), with every frame
    between each hard cut and the frame measured before it: `span(first, last)` measures the
    frames from pts `first` to `last`, both included. So a cut is found at its own frame."""
    skipped = np.sort(np.fromiter(left_out, np.int64))
    for j in reversed(hard_cuts(m)):
        first, last = int(m.pts[j - 1]), int(m.pts[j])
        if np.searchsorted(skipped, last) > np.searchsorted(skipped, first, side="right"):
            m = _spliced(m, j, span(first, last))
    return m


def _spliced(m: Measures, j: int, fine: Measures) -> Measures:
    """`m` with the frames of `fine` (from frame j - 1 to frame j of `m`) in between."""
    if len(fine.pts) < 2 or fine.pts[0] != m.pts[j - 1] or fine.pts[-1] != m.pts[j]:
        return m

    def join(coarse: np.ndarray, between: np.ndarray) -> np.ndarray:
        return np.concatenate([coarse[:j], between[1:], coarse[j + 1 :]])

    return Measures(*(join(getattr(m, f.name), getattr(fine, f.name)) for f in fields(Measures)))


def hard_cuts(m: Measures) -> list[int]:
    """Indices of the frames that start a shot after a hard cut."""
    diffs, hists = m.differences, m.histograms
    cuts = []
    for i in range(1, len(diffs)):
        if diffs[i] < CUT_MIN:
            continue
        around = np.concatenate([diffs[max(1, i - NEIGHBOURS) : i], diffs[i + 1 : i + 1 + NEIGHBOURS]])
        usual = float(np.median(around)) if around.size else 0.0
        moved = float(np.abs(hists[i] - hists[i - 1]).sum())
        if diffs[i] >= CUT_RATIO * usual or (diffs[i] >= CUT_RATIO_MOVED * usual and moved >= CUT_HISTOGRAM):
            cuts.append(i)
    return cuts


def gradual(m: Measures, cuts: Sequence[int]) -> list[tuple[int, int]]:
    """Gradual transitions: each run (first, last index) of frames whose histograms GRADUAL_MS
    before and after differ by GRADUAL_LOW, around a frame where they differ by
    GRADUAL_HISTOGRAM (the middle of a slow dissolve changes less), runs apart only by flat
    frames joined (the black middle of a fade: both sides look black there); runs with a hard
    cut within GRADUAL_MS are the cut's."""
    times, hists = m.times_ms, m.histograms
    before = np.searchsorted(times, times - GRADUAL_MS, side="left")
    after = np.searchsorted(times, times + GRADUAL_MS, side="right") - 1
    across = np.abs(hists[after] - hists[before]).sum(axis=1)
    flat = hists.max(axis=1) >= FLAT_SHARE
    runs: list[tuple[int, int]] = []
    for first, last in _runs(across >= GRADUAL_LOW):
        if across[first : last + 1].max() < GRADUAL_HISTOGRAM:
            continue
        if runs and flat[runs[-1][1] + 1 : first].all():
            first = runs.pop()[0]
        runs.append((first, last))
    return [(a, b) for a, b in runs if not any(before[a] <= c <= after[b] for c in cuts)]


def _runs(marked: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True."""
    edges = np.diff(np.concatenate([[0], marked.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) - 1).tolist(), strict=True))


def join_short(starts: list[int], times_ms: Sequence[float], end_ms: float, min_ms: float = MIN_SHOT_MS) -> list[int]:
    """The shot starts (indices, the first 0) once every shot shorter than `min_ms` has
    joined its shorter neighbour (the earlier on a tie), the shortest first."""
    starts = sorted(set(starts) | {0})
    while len(starts) > 1:
        lengths = _lengths(starts, times_ms, end_ms)
        k = min(range(len(starts)), key=lambda n: (lengths[n], n))
        if lengths[k] >= min_ms:
            break
        if k == 0:
            del starts[1]
        elif k == len(starts) - 1 or lengths[k - 1] <= lengths[k + 1]:
            del starts[k]
        else:
            del starts[k + 1]
    return starts


def _lengths(starts: list[int], times_ms: Sequence[float], end_ms: float) -> list[float]:
    ends = [times_ms[s] for s in starts[1:]] + [end_ms]
    return [end - times_ms[s] for s, end in zip(starts, ends, strict=True)]


@dataclass(frozen=True)
class Scene:
    """A shot, in ms: where it starts and ends, and its calm part (outside gradual
    transitions; the whole shot when it is all transition), where its frame is chosen."""

    start_ms: float
    end_ms: float
    calm: tuple[float, float]

    @property
    def length(self) -> float:
        return self.end_ms - self.start_ms


def detect(m: Measures, end_ms: float) -> list[Scene]:
    """The shots of the measured frames, in order, from the first frame to `end_ms`."""
    if not len(m.times_ms):
        return []
    times = [float(t) for t in m.times_ms]
    cuts = hard_cuts(m)
    runs = [(times[first], times[last]) for first, last in gradual(m, cuts)]
    middles = [int(np.searchsorted(m.times_ms, (a + b) / 2)) for a, b in runs]
    starts = [times[i] for i in join_short(cuts + middles, times, end_ms)]
    return [Scene(a, b, _calm(a, b, runs)) for a, b in zip(starts, [*starts[1:], end_ms], strict=True)]


def _calm(start: float, end: float, transitions: list[tuple[float, float]]) -> tuple[float, float]:
    first, last = start, end
    for a, b in transitions:
        if a <= first <= b:
            first = b
        if a <= last <= b:
            last = a
    return (first, last) if first < last else (start, end)


@dataclass(frozen=True)
class Found:
    """The shots found from a Time, and the measures of the frames they were found in."""

    scenes: list[Scene]
    measures: Measures


def longest(scenes: list[Scene], count: int | None) -> list[Scene]:
    """The `count` longest scenes (the earlier on a tie), in time order."""
    if count is None or count >= len(scenes):
        return scenes
    kept = sorted(range(len(scenes)), key=lambda n: (-round(scenes[n].length, 3), n))[:count]  # to the µs: ties
    return [scenes[n] for n in sorted(kept)]
