"""After a run: every manifest line has exactly one result, whatever the runner did.

The manifest is read again here, outside Beam, and the results' `Source` fields are compared
with its non-blank lines. A runner that drops or repeats an element cannot go unnoticed.
"""

from __future__ import annotations

from collections import Counter

from apache_beam.io.filesystems import FileSystems

from transforms.manifest import lines_of, pattern_folder, source_name


def manifest_sources(pattern: str) -> list[str]:
    """`file:line` of every non-blank line the manifest pattern names, as results name them."""
    folder = pattern_folder(pattern)
    sources = []
    for metadata in FileSystems.match([pattern])[0].metadata_list:
        name = source_name(metadata.path, folder)
        with FileSystems.open(metadata.path) as stream:
            sources += [f"{name}:{number}" for number, _, _ in lines_of(stream)]
    return sources


def unaccounted(pattern: str, records: list[dict]) -> str | None:
    """A one-line reason when some line has no result record, or more than one; None when all
    is well."""
    expected = Counter(manifest_sources(pattern))
    found = Counter(record["Source"] for record in records)
    missing = sorted((expected - found).elements())
    extra = sorted((found - expected).elements())
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} of {sum(expected.values())} lines have no result ({_some(missing)}): the runner lost them"
        )
    if extra:
        parts.append(f"{len(extra)} results more than lines ({_some(extra)})")
    return "; ".join(parts)


def _some(sources: list[str], shown: int = 5) -> str:
    return ", ".join(sources[:shown]) + (f" and {len(sources) - shown} more" if len(sources) > shown else "")
