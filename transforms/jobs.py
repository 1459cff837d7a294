"""ParseJobs, PlanCaptures, Capture and AssembleResults: a job from its line to its result."""
from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam import pvalue

from snapshot import jobs, results
from snapshot.errors import SnapshotError
from snapshot.jobs import CaptureTask, Job, Outcome
from snapshot.storage import LocalBuckets

log = logging.getLogger(__name__)

OUTCOMES = "outcomes"


class ParseJobs(beam.PTransform):
    """ManifestLine -> Job; an invalid request carries its error."""

    def expand(self, lines):
        return lines | beam.Map(lambda line: jobs.read_job(line, results.utc_now()))


class _PlanDoFn(beam.DoFn):
    def __init__(self, buckets: LocalBuckets):
        self.buckets = buckets

    def process(self, job: Job):
        if job.error is not None:
            return
        try:
            planned, tasks = jobs.plan_job(job, self.buckets)
        except SnapshotError as error:
            yield pvalue.TaggedOutput(OUTCOMES, (job.id, Outcome(0, error=error)))
            return
        except Exception:  # noqa: BLE001 - one bad video must never stop the pipeline
            log.exception("planning failed for job %s", job.id)
            yield pvalue.TaggedOutput(OUTCOMES, (job.id, Outcome(0, error=jobs.internal_error())))
            return
        yield pvalue.TaggedOutput(OUTCOMES, (job.id, Outcome(0, planned=planned)))
        yield from tasks


class PlanCaptures(beam.PTransform):
    """Job -> CaptureTasks (main output) and (job id, Outcome) of each plan."""

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
    """CaptureTask -> (job id, Outcome), the tasks spread over workers first."""

    def __init__(self, buckets: LocalBuckets):
        super().__init__()
        self.buckets = buckets

    def expand(self, tasks):
        return (tasks
                | "Spread" >> beam.Reshuffle()
                | "Decode" >> beam.ParDo(_CaptureDoFn(self.buckets)))


class _FinishDoFn(beam.DoFn):
    def __init__(self, buckets: LocalBuckets):
        self.buckets = buckets

    def process(self, keyed):
        """One result per job. Two identical lines at the same place of two manifests of the
        same name share an id: one request, captured once, and each line gets its result."""
        _job_id, grouped = keyed
        outcomes = list({outcome.seq: outcome for outcome in grouped[OUTCOMES]}.values())
        for job in grouped["job"]:
            yield jobs.finish(job, outcomes, self.buckets)


class AssembleResults(beam.PTransform):
    """(jobs, outcomes) -> exactly one JobResult per job, sprites and VTT written."""

    def __init__(self, buckets: LocalBuckets):
        super().__init__()
        self.buckets = buckets

    def expand(self, inputs):
        parsed, outcomes = inputs
        keyed = parsed | "KeyJobs" >> beam.Map(lambda job: (job.id, job))
        return ({"job": keyed, OUTCOMES: outcomes}
                | "Group" >> beam.CoGroupByKey()
                | "Finish" >> beam.ParDo(_FinishDoFn(self.buckets)))
