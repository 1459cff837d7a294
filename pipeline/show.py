"""python -m pipeline.show PREFIX: a short table of the results in PREFIX-*.avro."""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Iterator

import fastavro
from apache_beam.io.filesystems import FileSystems

from snapshot.results import is_shard


def result_files(prefix: str) -> list[str]:
    """The result shards of a prefix."""
    name = posixpath.basename(prefix)
    matched = FileSystems.match([f"{prefix}-*-of-*.avro"])[0].metadata_list
    return sorted(m.path for m in matched if is_shard(posixpath.basename(m.path), name))


def results_of(prefix: str) -> Iterator[dict]:
    """The records of a prefix, file by file, as they are read."""
    for path in result_files(prefix):
        with FileSystems.open(path) as stream:
            yield from (record for record in fastavro.reader(stream) if isinstance(record, dict))


def read_results(prefix: str) -> list[dict]:
    """The records of a prefix, in manifest order."""
    return sorted(results_of(prefix), key=lambda r: (r["Source"].rsplit(":", 1)[0], int(r["Source"].rsplit(":", 1)[1])))


def table(records: list[dict]) -> str:
    rows = [("line", "job", "state", "code", "count", "outputs")]
    for r in records:
        names = [s["Object"] for s in r["Snapshots"] if s["Object"]]
        outputs = ", ".join(names[:2]) + (f", ... ({len(names)})" if len(names) > 2 else "")
        extras = [f"{len(r['Tiles'])} sheet(s)"] if r["Tiles"] else []
        extras += [r["Vtt"].rsplit("/", 1)[-1]] if r["Vtt"] else []
        outputs = " + ".join(part for part in (outputs, ", ".join(extras)) if part)
        rows.append((r["Source"], r["Id"][:8], r["State"], r["Code"] or "-", str(r["Count"]), outputs or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1] for row in rows
    )


if __name__ == "__main__":
    print(table(read_results(sys.argv[1])))
