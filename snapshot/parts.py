"""Parts of a manifest: which lines one pipeline of a local run in parts reads
(pipeline.parts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """Some lines of a manifest: the first and last line number of each file, by the name
    the results give it (`Source` without its `:line`)."""

    lines: dict[str, tuple[int, int]]  # name -> (first, last)

    def holds(self, name: str, number: int) -> bool:
        first, last = self.lines.get(name, (0, -1))
        return first <= number <= last

    def holds_source(self, source: str) -> bool:
        """`source` is a result's `Source`, `name:line`."""
        name, _, number = source.rpartition(":")
        return number.isdigit() and self.holds(name, int(number))


def split(sources: list[str], size: int) -> list[Part | None]:
    """The parts of a manifest whose lines are `sources` (`name:line`, in the order read), at
    most `size` lines each; [None], one part of everything, when it has no more (or size is 0)."""
    if size <= 0 or len(sources) <= size:
        return [None]
    parts: list[Part | None] = []
    for start in range(0, len(sources), size):
        ranges: dict[str, tuple[int, int]] = {}
        for source in sources[start : start + size]:
            name, _, number = source.rpartition(":")
            ranges[name] = (ranges.get(name, (int(number), 0))[0], int(number))
        parts.append(Part(ranges))
    return parts
