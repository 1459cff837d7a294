"""CarryOver: with the results of an earlier run, the jobs that succeeded there are not run
again; their old records are carried into the new results, matched by job id (the request's
text and occurrence in its manifest file, not its line number), each with its line's `Source`
in this run."""

from __future__ import annotations

import apache_beam as beam
import fastavro
from apache_beam import pvalue
from apache_beam.io import fileio

from snapshot import results
from snapshot.parts import Part

CARRIED = "carried"


def _records(readable: fileio.ReadableFile):
    """The records of one results file, in this version's schema: fields added since the
    earlier run take their defaults."""
    with readable.open() as stream:
        yield from fastavro.reader(stream, reader_schema=results.load_schema())


def _split(keyed):
    """A job with an old Success record is carried (its record, at the job's line); any other
    is to run."""
    _job_id, grouped = keyed
    old = next(iter(grouped["old"]), None)
    for job in grouped["job"]:
        yield job if old is None else pvalue.TaggedOutput(CARRIED, {**old, "Source": job.source})


def _file(source: str) -> str:
    """The manifest file of a record's `Source` (`name:line`)."""
    return source.rpartition(":")[0]


class CarryOver(beam.PTransform):
    """Jobs -> the jobs still to run (main output) and the carried records (CARRIED).

    Args:
        previous: the results files of the earlier run, local or gs:// (pipeline.runs finds
            them: a prefix's committed results, and the done parts of a run that was stopped).
        part: the lines this run reads (a local run in parts), or None for all: the earlier
            records of other manifest files are left out.
    """

    def __init__(self, previous: list[str], part: Part | None = None):
        super().__init__()
        self.previous, self.part = previous, part

    def expand(self, parsed):
        part = self.part
        old = (
            parsed.pipeline
            | "PreviousFiles" >> beam.Create(self.previous)
            | "MatchPrevious" >> fileio.MatchAll()
            | "OpenPrevious" >> fileio.ReadMatches()
            | "ReadPrevious" >> beam.FlatMap(_records)
            | "Succeeded" >> beam.Filter(lambda record: record["State"] == results.State.SUCCESS)
            | "InPart" >> beam.Filter(lambda record: part is None or _file(record["Source"]) in part.lines)
            | "ById" >> beam.Map(lambda record: (record["Id"], record))
        )
        jobs = parsed | "JobsById" >> beam.Map(lambda job: (job.id, job))
        return (
            {"job": jobs, "old": old}
            | "Join" >> beam.CoGroupByKey()
            | "Split" >> beam.FlatMap(_split).with_outputs(CARRIED, main="todo")
        )
