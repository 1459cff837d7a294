"""ParseJobs, PlanCaptures, Capture and AssembleResults: a job from its line to its result.

Each step is a few lines around a function of `snapshot.jobs`, `snapshot.guarded` or
`snapshot.assemble`; failures are data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics import Metrics
from apache_beam.utils.windowed_value import WindowedValue

from snapshot import assemble, guarded, jobs, results, slots
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
    steps after it reuse them, and the last teardown ends them all.

    Its calls do not wait on each other: `process` hands an element's call to a thread, as many
    at once as the machine has decoding slots (snapshot.slots), and yields the outputs of the
    calls done meanwhile, waiting for one only when all are busy; `finish_bundle` yields the
    rest. One worker thread so keeps every decoding process busy. A subclass names the call
    (`call`) and turns its result into outputs (`outputs`, in the worker's thread, where Beam's
    metrics count)."""

    def __init__(self, buckets: Buckets, limits: Limits):
        self.buckets, self.limits = buckets, limits

    def setup(self):
        self.width = slots.count(self.limits.max_decoders)
        self.threads = futures.ThreadPoolExecutor(self.width, thread_name_prefix=type(self).__name__)
        self.calls: dict[futures.Future, WindowedValue] = {}
        self.pool = guarded.shared_decoding_pool(self.limits) if self.limits.isolate else None
        if self.pool is not None:
            self.pool.prestart(1)  # the others start when calls need them

    def start_bundle(self):
        self.calls = {}

    def process(self, element, windowed=beam.DoFn.WindowedValueParam):
        self.calls[self.threads.submit(self.call, element)] = windowed
        busy = len(self.calls) >= self.width
        done, _ = futures.wait(self.calls, timeout=None if busy else 0, return_when=futures.FIRST_COMPLETED)
        for future in done:
            yield from self._outputs_of(future)

    def finish_bundle(self):
        for future in futures.as_completed(list(self.calls)):
            yield from self._outputs_of(future)

    def teardown(self):
        self.threads.shutdown(wait=False, cancel_futures=True)  # a failed bundle's calls end with the pool
        if self.pool is not None:
            self.pool.release()

    def call(self, element) -> Any:
        """What `process` hands to a thread for `element`."""
        raise NotImplementedError

    def outputs(self, result) -> Iterator:
        """The outputs of a call's result."""
        raise NotImplementedError

    def _outputs_of(self, future: futures.Future) -> Iterator:
        """A done call's outputs, in the window and at the time of its element."""
        windowed = self.calls.pop(future)
        for output in self.outputs(future.result()):
            if isinstance(output, pvalue.TaggedOutput):
                yield pvalue.TaggedOutput(output.tag, windowed.with_value(output.value))
            else:
                yield windowed.with_value(output)


class _Plan(_Decoding):
    """The jobs on one input, planned PLAN_CHUNK at a time: a hot input (thousands of jobs)
    never makes one huge call, at the cost of one probe per chunk."""

    def process(self, keyed, windowed=beam.DoFn.WindowedValueParam):
        _input, jobs_on_input = keyed
        chunk: list = []
        for job in jobs_on_input:
            chunk.append(job)
            if len(chunk) == PLAN_CHUNK:
                yield from super().process(chunk, windowed)
                chunk = []
        if chunk:
            yield from super().process(chunk, windowed)

    def call(self, chunk):
        return guarded.plan_input_guarded(chunk, self.buckets, self.limits, self.pool)

    def outputs(self, result):
        outcomes, tasks = result
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
    def call(self, task: CaptureTask):
        started = time.monotonic()
        outcomes = guarded.run_task_guarded(task, self.buckets, self.limits, self.pool)
        return outcomes, round((time.monotonic() - started) * 1000 / max(1, len(task.shots)))

    def outputs(self, result):
        outcomes, ms_per_snapshot = result
        _capture_ms.update(ms_per_snapshot)
        for job_id, outcome in outcomes:
            _bytes_read.inc(outcome.bytes_read)
            yield job_id, outcome


class Capture(beam.PTransform):
    """CaptureTask -> (job id, Outcome), the tasks spread over workers first.

    Args:
        buckets: where each bucket lives, and the known roles.
        limits: the time limits and caps of the jobs and their decoding processes.
        spread: False for a runner with one worker: the tasks are not reshuffled, and Beam
            fuses their capture with their planning.
    """

    def __init__(self, buckets: Buckets, limits: Limits = Limits(), spread: bool = True):
        super().__init__()
        self.buckets, self.limits, self.spread = buckets, limits, spread

    def expand(self, tasks):
        if self.spread:
            tasks = tasks | "Spread" >> beam.Reshuffle()
        return tasks | "Decode" >> beam.ParDo(_Capture(self.buckets, self.limits))


class _Finish(_Decoding):
    """One result per job. Two lines that share an id (the same text and occurrence in files
    of the same name) are one request, captured once, and each line gets its result."""

    def process(self, keyed, windowed=beam.DoFn.WindowedValueParam):
        _job_id, pieces = keyed
        pieces = list(pieces)  # read here, in the worker's thread: Beam's iterables may be lazy
        jobs_of_id = [piece for piece in pieces if isinstance(piece, jobs.Job)]
        outcomes = [piece for piece in pieces if not isinstance(piece, jobs.Job)]
        yield from super().process((jobs_of_id, outcomes), windowed)

    def call(self, grouped):
        jobs_of_id, outcomes = grouped
        outcomes = list({outcome.seq: outcome for outcome in outcomes}.values())
        return [assemble.finish_guarded(job, outcomes, self.buckets, self.limits, self.pool) for job in jobs_of_id]

    def outputs(self, result):
        yield from result


class AssembleResults(beam.PTransform):
    """(jobs, outcomes, ...) -> exactly one JobResult per job, sprites and VTT written: the
    jobs and each (job id, Outcome) collection are joined on the job id by one Flatten and
    one GroupByKey (a CoGroupByKey would add a Flatten of its own, which Beam's local runner
    runs as a stage of its own).

    Args:
        buckets: where each bucket lives, and the known roles.
        limits: the time limits and caps of the jobs and their decoding processes.
    """

    def __init__(self, buckets: Buckets, limits: Limits = Limits()):
        super().__init__()
        self.buckets, self.limits = buckets, limits

    def expand(self, inputs):
        parsed, *outcomes = inputs
        keyed = parsed | "KeyJobs" >> beam.Map(lambda job: (job.id, job))
        return (
            (keyed, *outcomes)
            | "Join" >> beam.Flatten()
            | "Group" >> beam.GroupByKey()
            | "Finish" >> beam.ParDo(_Finish(self.buckets, self.limits))
        )
