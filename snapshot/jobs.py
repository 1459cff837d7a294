"""A job's life, step by step, without Beam: read, plan, capture in tasks, assemble.

The pipeline's DoFns are thin wrappers around these functions; any other front end (a CLI,
a server) can chain them in-process.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Iterable

from snapshot import errors, images, media, naming, plan, results, spec
from snapshot.errors import SnapshotError
from snapshot.media import Probe, Shot
from snapshot.results import JobResult, SnapshotImage
from snapshot.spec import Echo, Request
from snapshot.storage import LocalBuckets

log = logging.getLogger(__name__)

MAX_SHOTS_PER_TASK = 16


@dataclass(frozen=True)
class ManifestLine:
    source: str   # the manifest file's name
    number: int   # 1-based line number
    text: str

    @property
    def job_id(self) -> str:
        """Deterministic: the same line at the same place gets the same id on every run."""
        return hashlib.md5(f"{self.source}\n{self.number}\n{self.text}".encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Job:
    id: str
    source: str
    created: str
    echo: Echo
    request: Request | None = None
    error: SnapshotError | None = None


@dataclass(frozen=True)
class CaptureTask:
    """Shots of one job that one worker captures, opening the video once."""
    job_id: str
    request: Request
    probe: Probe
    size: tuple[int, int]
    shots: tuple[Shot, ...]


@dataclass(frozen=True)
class ShotOutcome:
    """One shot of a task: the image written, or why it was not."""
    seq: int
    image: SnapshotImage | None = None
    error: SnapshotError | None = None


def read_job(line: ManifestLine, created: str) -> Job:
    echo = spec.decode_echo(line.text)
    source = f"{line.source}:{line.number}"
    try:
        return Job(line.job_id, source, created, echo, request=spec.parse_request(line.text))
    except SnapshotError as error:
        return Job(line.job_id, source, created, echo, error=error)


def plan_tasks(job: Job, buckets: LocalBuckets) -> list[CaptureTask]:
    """Probe the input and split the job's shots into tasks (contiguous in time)."""
    request = job.request
    path = buckets.input_path(request.input.bucket, request.input.name)
    probe = media.probe(path)
    shots = sorted(plan.shots(request.config, probe), key=lambda s: s.target_pts)
    size = plan.output_size(request.config, probe)
    return [CaptureTask(job.id, request, probe, size, tuple(shots[i:i + MAX_SHOTS_PER_TASK]))
            for i in range(0, len(shots), MAX_SHOTS_PER_TASK)]


def run_task(task: CaptureTask, buckets: LocalBuckets) -> list[ShotOutcome]:
    """Capture and write the task's images; a failure ends the task with one failed outcome."""
    request, outcomes = task.request, []
    output = request.config.output
    try:
        path = buckets.input_path(request.input.bucket, request.input.name)
        for captured in media.capture(path, task.shots, task.probe, task.size):
            shot = captured.shot
            name = naming.expand(output.name, request.input.name, shot.seq)
            url = buckets.write(output.bucket, name, images.encode_jpeg(captured.image))
            image = SnapshotImage(shot.seq, name, url, shot.requested_ms,
                                  round(task.probe.ms(captured.frame_pts)), *captured.image.size)
            outcomes.append(ShotOutcome(shot.seq, image=image))
    except SnapshotError as error:
        outcomes.append(ShotOutcome(_next_seq(task, outcomes), error=error))
    except Exception:  # noqa: BLE001 - one bad video must never stop the pipeline
        log.exception("capture failed for job %s", task.job_id)
        outcomes.append(ShotOutcome(_next_seq(task, outcomes), error=internal_error()))
    return outcomes


def assemble(job: Job, outcomes: Iterable[ShotOutcome]) -> JobResult:
    """The job's one result from the outcomes of its shots (a planning failure is seq 0)."""
    outcomes = sorted(outcomes, key=lambda o: o.seq)
    failures = [o.error for o in outcomes if o.error is not None]
    if not outcomes:
        failures = [internal_error()]
    result = failed(job, failures[0]) if failures else JobResult(
        job.id, job.source, results.SUCCESS, job.created, results.utc_now(), **_echo(job.echo))
    return replace(result, snapshots=tuple(o.image for o in outcomes if o.image is not None))


def failed(job: Job, error: SnapshotError) -> JobResult:
    return JobResult(job.id, job.source, results.FAIL, job.created, results.utc_now(),
                     code=error.code, message=error.message, **_echo(job.echo))


def internal_error() -> SnapshotError:
    return SnapshotError(errors.INTERNAL_ERROR, "an internal error occurred; see the worker logs")


def _echo(echo: Echo) -> dict:
    return {"input": echo.input, "snapshot_config": echo.config,
            "pipeline_id": echo.pipeline_id, "user_data": echo.user_data}


def _next_seq(task: CaptureTask, outcomes: list[ShotOutcome]) -> int:
    done = {o.seq for o in outcomes}
    return next((s.seq for s in task.shots if s.seq not in done), task.shots[0].seq)
