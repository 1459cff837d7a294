"""ParseJobs, PlanCaptures, Capture and AssembleResults: a job from its line to its result.

Each step is a few lines around a function of `snapshot.jobs`, `snapshot.guarded` or
`snapshot.assemble`; failures are data.
"""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from snapshot import assemble, guarded, jobs, results
from snapshot.limits import Limits
from snapshot.storage import Buckets
from snapshot.targets import Targets
from snapshot.tasks import CaptureTask

OUTCOMES = "outcomes"
PLAN_CHUNK = 1000  # jobs on one input planned in one call
_bytes_read = Metrics.counter("snapshot", "input_bytes_read")
_capture_ms = Metrics.distribution("snapshot", "capture_ms_per_snapshot")


class ParseJobs(beam.PTransform):
    """ManifestLine -> Job; an invalid request, or one naming an unknown PipelineId, carries its error.

    Args:
        targets: the deployment's notification targets; with them, a `PipelineId` that the
            pipelines file does not list fails its job. None checks no `PipelineId`.
    """

    def __init__(self, targets: Targets | None = None):
        super().__init__()
        self.targets = targets

    def expand(self, lines):
        parsed = lines | beam.Map(lambda line: jobs.read_job(line, results.utc_now()))
        if self.targets is None:
            return parsed
        return parsed | "KnownPipelines" >> beam.Map(jobs.admit, self.targets.check)


class _Decoding(beam.DoFn):
    """A step that decodes, in the decoding processes that the steps of its worker process
    share (guarded.shared_decoding_pool): held from `setup` to `teardown`, so bundles and the
    steps after it reuse them, and the last teardown ends them all."""

    def __init__(self, buckets: Buckets, limits: Limits):
        self.buckets, self.limits = buckets, limits

    def setup(self):
        self.pool = guarded.shared_decoding_pool(self.limits) if self.limits.isolate else None
        if self.pool is not None:
            self.pool.prestart(1)

    def teardown(self):
        if self.pool is not None:
            self.pool.release()


class _Plan(_Decoding):
    def process(self, keyed):
        """The jobs on one input, planned PLAN_CHUNK at a time: a hot input (thousands of jobs)
        never makes one huge call, at the cost of one probe per chunk."""
        _input, jobs_on_input = keyed
        chunk = []
        for job in jobs_on_input:
            chunk.append(job)
            if len(chunk) == PLAN_CHUNK:
                yield from self._plan(chunk)
                chunk = []
        if chunk:
            yield from self._plan(chunk)

    def _plan(self, chunk):
        outcomes, tasks = guarded.plan_input_guarded(chunk, self.buckets, self.limits, self.pool)
        for job_id, outcome in outcomes:
            _bytes_read.inc(outcome.bytes_read)
            yield pvalue.TaggedOutput(OUTCOMES, (job_id, outcome))
        yield from tasks


class PlanCaptures(beam.PTransform):
    """Jobs -> CaptureTasks (main output) and the (job id, Outcome) of each job's plan. Jobs on
    the same input are planned together, and their tasks share the decoding.

    Args:
        buckets: where each bucket lives, and the known roles.
        limits: the time limits and caps of the jobs and their decoding processes.
    """

    def __init__(self, buckets: Buckets, limits: Limits = Limits()):
        super().__init__()
        self.buckets, self.limits = buckets, limits

    def expand(self, parsed):
        return (
            parsed
            | "Valid" >> beam.Filter(lambda job: job.error is None)
            | "ByInput" >> beam.Map(lambda job: (jobs.input_key(job), job))
            | "GroupByInput" >> beam.GroupByKey()
            | "Plan" >> beam.ParDo(_Plan(self.buckets, self.limits)).with_outputs(OUTCOMES, main="tasks")
        )


class _Capture(_Decoding):
    def process(self, task: CaptureTask):
        started = time.monotonic()
        outcomes = guarded.run_task_guarded(task, self.buckets, self.limits, self.pool)
        _capture_ms.update(round((time.monotonic() - started) * 1000 / max(1, len(task.shots))))
        for job_id, outcome in outcomes:
            _bytes_read.inc(outcome.bytes_read)
            yield job_id, outcome


class Capture(beam.PTransform):
    """CaptureTask -> (job id, Outcome), the tasks spread over workers first.

    Args:
        buckets: where each bucket lives, and the known roles.
        limits: the time limits and caps of the jobs and their decoding processes.
    """

    def __init__(self, buckets: Buckets, limits: Limits = Limits()):
        super().__init__()
        self.buckets, self.limits = buckets, limits

    def expand(self, tasks):
        return tasks | "Spread" >> beam.Reshuffle() | "Decode" >> beam.ParDo(_Capture(self.buckets, self.limits))


class _Finish(_Decoding):
    """One result per job. Two lines that share an id (the same text and occurrence in files
    of the same name) are one request, captured once, and each line gets its result."""

    def setup(self):
        self.pool = guarded.shared_decoding_pool(self.limits) if self.limits.isolate else None  # for sheets

    def process(self, keyed):
        _job_id, grouped = keyed
        outcomes = list({outcome.seq: outcome for outcome in grouped[OUTCOMES]}.values())
        for job in grouped["job"]:
            yield assemble.finish_guarded(job, outcomes, self.buckets, self.limits, self.pool)


class AssembleResults(beam.PTransform):
    """(jobs, outcomes) -> exactly one JobResult per job, sprites and VTT written.

    Args:
        buckets: where each bucket lives, and the known roles.
        limits: the time limits and caps of the jobs and their decoding processes.
    """

    def __init__(self, buckets: Buckets, limits: Limits = Limits()):
        super().__init__()
        self.buckets, self.limits = buckets, limits

    def expand(self, inputs):
        parsed, outcomes = inputs
        keyed = parsed | "KeyJobs" >> beam.Map(lambda job: (job.id, job))
        return (
            {"job": keyed, OUTCOMES: outcomes}
            | "Group" >> beam.CoGroupByKey()
            | "Finish" >> beam.ParDo(_Finish(self.buckets, self.limits))
        )
