"""The WebVTT thumbnail track (SPEC.md section 2.3)."""
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
    """A WebVTT document: one cue per (time ms, target), from its time to the next one's,
    the last to `end_ms`. Points are taken in time order; a repeated time keeps the first."""
    ordered: list[tuple[int, str]] = []
    for time_ms, target in sorted(points, key=lambda point: point[0]):
        if not ordered or time_ms > ordered[-1][0]:
            ordered.append((time_ms, target))
    lines = ["WEBVTT", ""]
    for i, (start, target) in enumerate(ordered):
        end = ordered[i + 1][0] if i + 1 < len(ordered) else max(end_ms, start + 1)
        lines += [f"{timestamp(start)} --> {timestamp(end)}", target, ""]
    return "\n".join(lines)
