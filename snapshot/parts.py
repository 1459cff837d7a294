"""Parts of a manifest: which lines one pipeline of a local run in parts reads
(pipeline.runs plans them)."""

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
