"""python -m pipeline.show RESULTS...: a short table of a run's results, or its records as JSON Lines.

RESULTS is a results prefix (the `--results` of a run, or `PREFIX-*.avro` as a run prints it),
an `.avro` results file or a glob of them.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import re
import shutil
import sys
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator

import fastavro
from apache_beam.io.filesystems import FileSystems

from pipeline import flags, runs
from snapshot import naming

SHARD_TAIL = "-*-of-*.avro"  # what a prefix's shards add to it
_SHARD = re.compile(r"-\d+-of-\d+\.avro$")
_GLOB = re.compile(r"[*?[]")
ALL_SHARDS = "-*.avro"  # how a run names its results: "results in PREFIX-*.avro"
MIN_MESSAGE_WIDTH = 40
RESULTS_HELP = "a results prefix (a run's --results, or PREFIX-*.avro), an .avro results file or a glob of them"


class NothingMatches(Exception):
    """A RESULTS argument names no results."""


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
    return in_manifest_order(runs.read_committed(prefix, records_of))


def in_manifest_order(records: list[dict]) -> list[dict]:
    """Records by manifest and line, whatever order their files hold them in."""
    return sorted(records, key=lambda r: (r["Source"].rsplit(":", 1)[0], int(r["Source"].rsplit(":", 1)[1])))


def read_any(name: str) -> list[dict]:
    """The records of a results prefix, of `PREFIX-*.avro` (the prefix's committed results),
    of one `.avro` file or of a glob of them; NothingMatches when there are none."""
    prefix = name.removesuffix(ALL_SHARDS)
    if prefix != name and not _GLOB.search(prefix):
        return read_any(prefix)
    if name.endswith(".avro"):
        files = [name] if FileSystems.exists(name) else sorted(_matches(name))
        if files:
            return in_manifest_order(records_of(files))
    records = read_results(name)
    if not records:
        raise NothingMatches(f"no results match {name!r}{_hint(name)}")
    return records


def _matches(pattern: str) -> list[str]:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - a pattern that matches nothing, in any way
        return []


def read_arguments(names: list[str]) -> tuple[list[dict], int]:
    """The records of RESULTS arguments and 0, or none and the exit status once one line on
    stderr has said why: 2 when an argument matches nothing or is not results, 1 when a
    commit is under way."""
    records: list[dict] = []
    try:
        for name in names:
            records += read_any(name)
    except NothingMatches as error:
        print(f"error: {error}", file=sys.stderr)
        return [], 2
    except runs.Committing as error:
        print(f"error: {error}; try again once it is done", file=sys.stderr)
        return [], 1
    except Exception as error:  # noqa: BLE001 - a file that is not results, a bucket that is not there
        print(f"error: cannot read {' '.join(names)}: {error}".splitlines()[0], file=sys.stderr)
        return [], 2
    return records, 0


def _hint(name: str) -> str:
    """Where the results are, when `name` is a folder that holds some."""
    try:
        found = FileSystems.match([posixpath.join(name, "*" + SHARD_TAIL)])[0].metadata_list
    except Exception:  # noqa: BLE001 - no hint is a fine answer to any error
        return ""
    prefixes = sorted({_SHARD.sub("", m.path) for m in found if _SHARD.search(m.path)})
    return f"; a prefix is a run's --results, such as {', '.join(prefixes[:3])}" if prefixes else ""


def warnings_of(record: dict) -> list[str]:
    """The record's warnings (results of older runs have none)."""
    return list(record.get("Warnings") or [])


def object_name(url: str, segments: int) -> str:
    """The last `segments` path segments of an object's URL: its name below the bucket."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path) if url.startswith("file://") else url
    return "/".join(path.split("/")[-segments:]) if segments > 0 else path


def input_name(record: dict) -> str:
    """The input's object name, percent-decoded as a job reads it (docs/contract.md#requests)."""
    return urllib.parse.unquote(str(_json(record.get("Input")).get("Object", "")), errors="replace")


def vtt_name(record: dict) -> str:
    """The WebVTT track's object name, with its folder: it lies beside the first sheet
    (`IsSptFrag`) or the first image (docs/contract.md#webvtt)."""
    vtt = record.get("Vtt") or ""
    first = next((s["Object"] for s in record["Snapshots"] if s["Object"]), "")
    config = _json(record.get("SnapshotConfig"))
    if str(_object(config, "SubOut").get("IsSptFrag", "")).lower() == "true" or not first:
        template = str(_object(config, "TileOutputFile").get("Object", ""))
        first = naming.expand(template, input_name(record))
    return object_name(vtt, first.count("/") + 1 if first else 0)


def _object(parent: dict, key: str) -> dict:
    found = parent.get(key)
    return found if isinstance(found, dict) else {}


def _json(text: str | None) -> dict:
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def outputs(record: dict) -> str:
    """The images (the first two and how many), the sheets and the WebVTT track of a record."""
    names = [s["Object"] for s in record["Snapshots"] if s["Object"]]
    shown = ", ".join(names[:2]) + (f", ... ({len(names)})" if len(names) > 2 else "")
    extras = [f"{len(record['Tiles'])} sheet(s)"] if record["Tiles"] else []
    extras += [vtt_name(record)] if record.get("Vtt") else []
    return " + ".join(part for part in (shown, ", ".join(extras)) if part) or "-"


def message(record: dict) -> str:
    """The failure's message, and the warnings, if any."""
    warnings = warnings_of(record)
    said = record["Message"]
    if warnings:
        said = (said + "; " if said else "") + "warning: " + "; ".join(warnings)
    return said or "-"


def display_width(text: str) -> int:
    """Columns a terminal gives `text`: wide and full-width characters (CJK) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, width: int) -> str:
    """`text` and spaces to fill `width` columns."""
    return text + " " * (width - display_width(text))


def shorten(text: str, width: int) -> str:
    """`text` in at most `width` columns, ending in "..." when cut."""
    if display_width(text) <= width:
        return text
    while text and display_width(text) > max(1, width - 3):
        text = text[:-1]
    return text + "..."


def table(records: list[dict], width: int = 0) -> Iterator[str]:
    """The lines of the table: line, job, state, code, count, outputs, message (shortened so a
    line fits `width` characters, if given)."""
    rows = [("line", "job", "state", "code", "count", "outputs", "message")]
    rows += [
        (r["Source"], r["Id"][:8], r["State"], r["Code"] or "-", str(r["Count"]), outputs(r), message(r))
        for r in records
    ]
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    room = max(MIN_MESSAGE_WIDTH, width - sum(widths) - 2 * len(widths)) if width else sys.maxsize
    for row in rows:
        cells = "  ".join(pad(cell, w) for cell, w in zip(row[:-1], widths, strict=True))
        yield cells + "  " + shorten(row[-1], room)


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        prog="python -m pipeline.show",
        description=__doc__.splitlines()[0],
        epilog="Exit 0 when results were found, 2 when an argument matches none, 1 when a commit is under way.",
    )
    made.add_argument("results", nargs="+", metavar="RESULTS", help=RESULTS_HELP)
    made.add_argument("--failed", action="store_true", help="only the jobs that failed")
    made.add_argument("--json", action="store_true", help="one JSON object per record (JSON Lines), in full")
    return made


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(flags.canonical(sys.argv[1:] if argv is None else argv))
    records, status = read_arguments(args.results)
    if status:
        return status
    if sys.stdout is None or sys.stdout.closed:  # `show ... >&-`: nowhere to print
        return 1
    if args.failed:
        records = [r for r in records if r["State"] != "Success"]
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 0  # a pipe gets whole messages
    lines = (json.dumps(r, ensure_ascii=False) for r in records) if args.json else table(records, width)
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:  # `show ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
