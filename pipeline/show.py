"""python -m pipeline.show PREFIX: a short table of the results in PREFIX-*.avro."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator

import fastavro
from apache_beam.io.filesystems import FileSystems

from pipeline import runs


def each_record(files: Iterable[str]) -> Iterator[dict]:
    """The records of some results files, one at a time."""
    for path in files:
        with FileSystems.open(path) as stream:
            yield from (record for record in fastavro.reader(stream) if isinstance(record, dict))


def records_of(files: list[str]) -> list[dict]:
    """The records of some results files."""
    return list(each_record(files))


def read_results(prefix: str) -> list[dict]:
    """The committed records of a prefix, all of one run (pipeline.runs), in manifest order."""
    return sorted(
        runs.read_committed(prefix, records_of),
        key=lambda r: (r["Source"].rsplit(":", 1)[0], int(r["Source"].rsplit(":", 1)[1])),
    )


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
    try:
        print(table(read_results(sys.argv[1])))
    except runs.Committing as error:
        sys.exit(f"error: {error}; try again once it is done")
