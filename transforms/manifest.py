"""ReadManifest: every non-blank line of the manifest files, with its file name and number."""
from __future__ import annotations

import posixpath

import apache_beam as beam
from apache_beam.io import fileio

from snapshot.jobs import ManifestLine


def numbered_lines(readable: fileio.ReadableFile):
    source = posixpath.basename(readable.metadata.path.replace("\\", "/"))
    with readable.open() as stream:
        for number, raw in enumerate(stream, start=1):
            text = raw.decode("utf-8", errors="replace").strip()
            if text:
                yield ManifestLine(source, number, text)


class ReadManifest(beam.PTransform):
    """Lines of a manifest (a path or glob), each read whole with its position."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def expand(self, pbegin):
        return (pbegin
                | "Match" >> fileio.MatchFiles(self.pattern)
                | "Open" >> fileio.ReadMatches()
                | "Number" >> beam.FlatMap(numbered_lines))
