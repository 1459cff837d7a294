"""ParseJobs, PlanCaptures, Capture and AssembleResults: a job from its line to its result."""
from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam import pvalue

from snapshot import jobs, results
from snapshot.errors import SnapshotError
from snapshot.jobs import CaptureTask, Job, ShotOutcome
from snapshot.storage import LocalBuckets

log = logging.getLogger(__name__)

OUTCOMES = "outcomes"


class ParseJobs(beam.PTransform):
    """ManifestLine -> Job (keyed by id); invalid requests carry their error."""

    def expand(self, lines):
        return lines | beam.Map(lambda line: jobs.read_job(line, results.utc_now()))


class _PlanDoFn(beam.DoFn):
    def __init__(self, buckets: LocalBuckets):
        self.buckets = buckets

    def process(self, job: Job):
        if job.error is not None:
            return
        try:
            yield from jobs.plan_tasks(job, self.buckets)
        except SnapshotError as error:
            yield pvalue.TaggedOutput(OUTCOMES, (job.id, ShotOutcome(0, error=error)))
        except Exception:  # noqa: BLE001 - one bad video must never stop the pipeline
            log.exception("planning failed for job %s", job.id)
            yield pvalue.TaggedOutput(OUTCOMES, (job.id, ShotOutcome(0, error=jobs.internal_error())))


class PlanCaptures(beam.PTransform):
    """Job -> CaptureTasks (main output) and planning failures as (job id, outcome)."""

    def __init__(self, buckets: LocalBuckets):
        super().__init__()
        self.buckets = buckets

    def expand(self, parsed):
        return parsed | beam.ParDo(_PlanDoFn(self.buckets)).with_outputs(OUTCOMES, main="tasks")


class _CaptureDoFn(beam.DoFn):
    def __init__(self, buckets: LocalBuckets):
        self.buckets = buckets

    def process(self, task: CaptureTask):
        for outcome in jobs.run_task(task, self.buckets):
            yield task.job_id, outcome


class Capture(beam.PTransform):
    """CaptureTask -> (job id, ShotOutcome), the tasks spread over workers first."""

    def __init__(self, buckets: LocalBuckets):
        super().__init__()
        self.buckets = buckets

    def expand(self, tasks):
        return (tasks
                | "Spread" >> beam.Reshuffle()
                | "Decode" >> beam.ParDo(_CaptureDoFn(self.buckets)))


def _assemble(grouped):
    """One result per job. Two identical lines at the same place of two manifests of the same
    name share an id; they are one request, captured once, and each gets its result."""
    outcomes = list({outcome.seq: outcome for outcome in grouped[OUTCOMES]}.values())
    for job in grouped["job"]:
        yield jobs.failed(job, job.error) if job.error is not None else jobs.assemble(job, outcomes)


class AssembleResults(beam.PTransform):
    """Jobs and their outcomes -> exactly one JobResult per job."""

    def expand(self, inputs):
        parsed, outcomes = inputs
        keyed = parsed | "KeyJobs" >> beam.Map(lambda job: (job.id, job))
        return ({"job": keyed, OUTCOMES: outcomes}
                | "Group" >> beam.CoGroupByKey()
                | "Assemble" >> beam.FlatMapTuple(lambda _id, grouped: _assemble(grouped)))
