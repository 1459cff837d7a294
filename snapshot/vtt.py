"""The WebVTT thumbnail track (docs/contract.md#webvtt)."""

from __future__ import annotations

from collections.abc import Iterable


def timestamp(ms: float) -> str:
    """HH:MM:SS.mmm"""
    total = max(0, round(ms))
    hours, rest = divmod(total, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def track(points: Iterable[tuple[int, str]], end_ms: float) -> str:
    """A WebVTT document with one cue per (time ms, target), in time order. A cue lasts from
    its time to the next later time, the last one to `end_ms`; cues of the same time share
    that span. No cue starts at or after `end_ms`: a later time (an `intra` shot past the
    end shows the last keyframe) is taken as the last millisecond of the video."""
    end = max(1, round(end_ms))
    starts = sorted((min(max(0, time_ms), end - 1), target) for time_ms, target in points)
    distinct = sorted({start for start, _ in starts})
    following = dict(zip(distinct, [*distinct[1:], end], strict=True))
    lines = ["WEBVTT", ""]
    for start, target in starts:
        lines += [f"{timestamp(start)} --> {timestamp(following[start])}", target, ""]
    return "\n".join(lines)
