"""ReadManifest: every non-blank line of the manifest files, with its file and number."""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from collections import Counter
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io import fileio

from snapshot.jobs import ManifestLine
from snapshot.parts import Part

_WILDCARD = re.compile(r"[*?\[]")
BOM = b"\xef\xbb\xbf"


def pattern_folder(pattern: str) -> str:
    """The folder a manifest pattern names before its first wildcard, ending in '/'."""
    wildcard = _WILDCARD.search(pattern)
    folder = posixpath.dirname(pattern[: wildcard.start()] if wildcard else pattern)
    if "://" not in pattern:
        folder = os.path.abspath(folder or ".")
    return folder.rstrip("/") + "/"


def source_name(path: str, folder: str) -> str:
    """A manifest's name in the results: its path below the pattern's folder, so two files of
    the same name in two folders of one glob stay apart (`a/jobs.jsonl`, `b/jobs.jsonl`),
    and a plain path gives its file name.

    Beam matches a local pattern's files by the pattern's own text (`in/a/jobs.jsonl`,
    `./in/a/jobs.jsonl`, `in/../in/a/jobs.jsonl`), so a local path is made absolute and
    normal first, as `pattern_folder` makes the folder: every form of a glob gives the same
    names."""
    if "://" not in path:
        path = os.path.abspath(path)
    return path[len(folder) :] if path.startswith(folder) else path.rpartition("/")[2]


def lines_of(stream) -> Iterator[tuple[int, str, bool]]:
    """(1-based number, text, is UTF-8) of each non-blank line of a manifest file.

    Read by `readline`: Beam opens a `.gz` or `.bz2` file as a `CompressedFile`, which has
    `readline` but cannot be iterated."""
    for number, raw in enumerate(iter(stream.readline, b""), start=1):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        try:
            text, utf8 = raw.decode("utf-8"), True
        except UnicodeDecodeError:
            text, utf8 = raw.decode("utf-8", errors="replace"), False
        text = text.strip()
        if text:
            yield number, text, utf8


def file_lines(stream, source: str) -> Iterator[ManifestLine]:
    """The lines of one manifest file named `source`, each with its occurrence: how many lines
    of the same text the file holds up to it (its job id depends on that, not on its number)."""
    seen: Counter[bytes] = Counter()
    for number, text, utf8 in lines_of(stream):
        key = hashlib.md5(text.encode("utf-8", "replace")).digest()[:8]  # a set of texts would hold the file
        seen[key] += 1
        yield ManifestLine(source, number, text, utf8, seen[key])


def numbered_lines(readable: fileio.ReadableFile, folder: str, part: Part | None = None) -> Iterator[ManifestLine]:
    source = source_name(readable.metadata.path, folder)
    if part is not None and source not in part.lines:
        return
    with readable.open() as stream:
        for line in file_lines(stream, source):
            if part is None or part.holds(source, line.number):
                yield line


class ReadManifest(beam.PTransform):
    """Lines of a manifest, each read whole with its position.

    Args:
        pattern: a manifest file, or a glob of them, local or gs://.
        part: only these lines of it (a local run in parts), or None for all.
    """

    def __init__(self, pattern: str, part: Part | None = None):
        super().__init__()
        self.pattern, self.part = pattern, part

    def expand(self, pbegin):
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self.pattern)
            | "Open" >> fileio.ReadMatches()
            | "Number" >> beam.FlatMap(numbered_lines, pattern_folder(self.pattern), self.part)
        )
