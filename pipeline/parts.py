"""The files of a local run in parts (snapshot.parts): a manifest of more lines than
`--lines_per_part` runs as several pipelines of at most that many lines each, one after the
other, and their results join under the one prefix
(docs/operations.md#large-manifests-on-the-local-runner). A run of one part goes the same way.

The local runner holds every stage's data in memory and hands each worker its share of a stage
as one element, so its memory grows with the lines of a pipeline; in parts, with the lines of
a part, whatever the manifest's length. Each part's results are written under a temporary
folder beside the prefix and replace the prefix's results when the last part is done.
"""

from __future__ import annotations

import contextlib
import posixpath

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from pipeline.show import result_files

DEFAULT_LINES = 5_000  # lines per part: a worker process then peaks near 450 MB (docs/benchmarks.md#load)


def folder(results: str) -> str:
    """Where the parts of a run write their results: a temporary folder beside the prefix,
    which a failed run's clean-up removes with Beam's own (beam-temp-NAME-*)."""
    parent, name = posixpath.split(results)
    return posixpath.join(parent or ".", f"beam-temp-{name}-parts")


def prefix(results: str, index: int) -> str:
    return posixpath.join(folder(results), f"part{index:05d}")


def clear(results: str) -> None:
    """Remove what an earlier run in parts of this prefix left, if it was stopped: its shards
    would join the results of this one."""
    with contextlib.suppress(BeamIOError):  # nothing there
        FileSystems.delete([folder(results)])


def join(results: str, count: int) -> None:
    """Replace the results of the prefix with the shards of parts 0 .. count-1, numbered in
    order as PREFIX-SSSSS-of-NNNNN.avro, and remove the parts' folder. The earlier results go
    first: shards of another count would stay beside the new ones."""
    shards = [path for index in range(count) for path in result_files(prefix(results, index))]
    names = [f"{results}-{number:05d}-of-{len(shards):05d}.avro" for number in range(len(shards))]
    earlier = result_files(results)
    if earlier:
        FileSystems.delete(earlier)
    FileSystems.rename(shards, names)
    clear(results)
