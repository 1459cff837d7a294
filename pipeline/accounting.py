"""After each part of a run: every manifest line has exactly one result, whatever the runner did.

The manifest is read outside Beam, and the results are compared with its non-blank lines by
request, not by position: each line's `Source` (file:line) and its job id, which is derived
from the line's text. A runner that drops or repeats an element, or a manifest rewritten
during the run, cannot go unnoticed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from apache_beam.io.filesystems import FileSystems

from pipeline.show import each_record
from snapshot.jobs import ManifestLine
from transforms.manifest import file_lines, pattern_folder, source_name

# What the checks after a part keep of each record: a whole one takes about 3 KB of memory.
CHECKED = ("Id", "Source", "State", "Code", "Message", "FinishTime", "PipelineId", "MNSMessageResult")


def manifest_lines(pattern: str) -> list[ManifestLine]:
    """Every non-blank line the manifest pattern names, named as the results name them."""
    folder = pattern_folder(pattern)
    found: list[ManifestLine] = []
    for metadata in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        name = source_name(metadata.path, folder)
        with FileSystems.open(metadata.path) as stream:
            found += file_lines(stream, name)
    return found


def json_array(pattern: str, chunk: int = 4096) -> str | None:
    """The first manifest file the pattern names that starts with `[` (blanks aside): a JSON
    array, not JSON Lines. Only each file's first bytes are read, decompressed as the run reads them."""
    for metadata in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        with FileSystems.open(metadata.path) as stream:
            while (data := stream.read(chunk)) and not (start := data.lstrip(b"\xef\xbb\xbf \t\r\n")):
                pass
        if data and start.startswith(b"["):
            return metadata.path
    return None


def checked_records(paths: Iterable[str]) -> list[dict]:
    """The CHECKED fields of every record of some results files."""
    return [{f: record[f] for f in CHECKED} for record in each_record(paths)]


def unaccounted(expected: Iterable[tuple[str, str]], records: list[dict]) -> str | None:
    """A one-line reason when some line (Source, job id) has no result record, or more than
    one, or a result of another request; None when all is well."""
    wanted = Counter(expected)
    found = Counter((record["Source"], record["Id"]) for record in records)
    missing, extra = wanted - found, found - wanted
    if not missing and not extra:
        return None
    changed = sorted({source for source, _ in missing} & {source for source, _ in extra})
    if changed:
        return f"{len(changed)} lines changed during the run ({_some(changed)}): the manifest was rewritten"
    reasons = []
    if missing:
        sources = sorted(source for source, _ in missing.elements())
        reasons.append(
            f"{len(sources)} of {sum(wanted.values())} lines have no result ({_some(sources)}): the runner lost them"
        )
    if extra:
        sources = sorted(source for source, _ in extra.elements())
        reasons.append(f"{len(sources)} results more than lines ({_some(sources)})")
    return "; ".join(reasons)


def _some(sources: list[str], shown: int = 5) -> str:
    return ", ".join(sources[:shown]) + (f" and {len(sources) - shown} more" if len(sources) > shown else "")
